/* read.c - the exporter's readers (read.h) over lib/drstate: one dsi_read
 * of the DR records turned into the cache's snapshot (record data + its
 * source cluster per namespace), one dsi_read_primary of the primary's
 * claims.  A failed or malformed list fails the read as a whole (dsi_read's
 * rule), so a status is never computed from half the records. */
#include "read.h"

#include "drstate.h"
#include "log.h"
#include "xstr.h"

#include <stdio.h>
#include <string.h>

int exp_read_dr(void *ud, exp_dr_snapshot *out, char *err, size_t len)
{
    exp_clients *cl = ud;
    dsi_scope scope = { .state_ns = cl->cfg->state_namespace, .oadp_ns = cl->cfg->oadp_namespace };
    dsi_snapshot s;
    memset(&s, 0, sizeof s);
    k8s_error e;
    memset(&e, 0, sizeof e);
    if (dsi_read(cl->dr, &scope, &s, &e) != 0) {
        char buf[1400];
        snprintf(err, len, "DR cluster: %s", k8s_strerror(&e, buf, sizeof buf));
        dsi_snapshot_free(&s);
        return -1;
    }
    size_t i;
    json_t *w;
    json_array_foreach(s.warnings, i, w)
        LOGJ(LOGL_DEBUG, "DR record ignored", "{s:s}", "why", json_string_value(w));
    memset(out, 0, sizeof *out);
    out->records = json_object();
    const char *ns;
    json_t *cm;
    json_object_foreach(s.records, ns, cm) {
        json_t *src = json_object_get(json_object_get(json_object_get(cm, "metadata"),
                                                      "annotations"), "dr.ocpv.io/source-cluster");
        json_object_set_new(out->records, ns,
                            json_pack("{s:O?,s:O?}", "data", json_object_get(cm, "data"),
                                      "source_cluster", json_is_string(src) ? src : NULL));
    }
    out->pvs = s.pvs ? json_incref(s.pvs) : json_array();
    out->backups = json_incref(s.backups);
    out->backups_error = s.backups_error ? xstrdup(s.backups_error) : NULL;
    dsi_snapshot_free(&s);
    return 0;
}

int exp_read_primary(void *ud, const json_t *namespaces, json_t **inv, char *err, size_t len)
{
    exp_clients *cl = ud;
    k8s_error e;
    memset(&e, 0, sizeof e);
    *inv = NULL;
    if (dsi_read_primary(cl->primary, namespaces, inv, &e) != 0) {
        char buf[1400];
        snprintf(err, len, "primary cluster: %s", k8s_strerror(&e, buf, sizeof buf));
        return -1;
    }
    return 0;
}
