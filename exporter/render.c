/* render.c - Prometheus text exposition of the protection status (render.h).
 * Families are written whole, in exp_families order, each with HELP and
 * TYPE; series per namespace in the order given.  Enum-like values are
 * kube-state-metrics style: every state and every reason code is always
 * present, 1 for the current/active ones, 0 for the others.  A timestamp or
 * age that does not exist (no full sync, no backup) has no series; RPO is
 * +Inf when a volume has no usable DR copy. */
#include "render.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    F_STATE, F_REASON, F_RPO, F_RPO_TARGET, F_RTO_TARGET, F_FULL_START, F_FULL_END, F_FULL_OK,
    F_BACKUP_START, F_BACKUP_AGE, F_BACKUP_MAX_AGE, F_CLAIMS, F_CLAIMS_NO_COPY, F_FAILOVER_RTO,
    F_VOL_START, F_VOL_OK, F_VOL_BYTES, F_VOL_RPO, F_PRIMARY_UP, F_DR_UP, F_LAST_READ,
    F_READ_ERRORS, F_BUILD_INFO, F_N
};

const exp_family exp_families[F_N] = {
    [F_STATE] = { "ocpv_dr_namespace_state",
                  "Protection state of the namespace, computed at scrape time from the DR records: "
                  "1 for the current state, 0 for the other states.", "gauge" },
    [F_REASON] = { "ocpv_dr_namespace_reason",
                   "Why the namespace is in its state: 1 for each active reason code, 0 for the others.",
                   "gauge" },
    [F_RPO] = { "ocpv_dr_namespace_rpo_seconds",
                "Data RPO now: age of the oldest last successful sync start among the namespace's "
                "volumes (+Inf when a volume has no usable DR copy, 0 with no volumes).", "gauge" },
    [F_RPO_TARGET] = { "ocpv_dr_namespace_rpo_target_seconds",
                       "RPO target in force (the record's, else the exporter's default).", "gauge" },
    [F_RTO_TARGET] = { "ocpv_dr_namespace_rto_target_seconds",
                       "RTO target in force (the record's, else the exporter's default).", "gauge" },
    [F_FULL_START] = { "ocpv_dr_namespace_last_full_sync_start_timestamp_seconds",
                       "Start of the last full (mode two) sync recorded.", "gauge" },
    [F_FULL_END] = { "ocpv_dr_namespace_last_full_sync_end_timestamp_seconds",
                     "End of the last full (mode two) sync recorded.", "gauge" },
    [F_FULL_OK] = { "ocpv_dr_namespace_last_full_sync_success",
                    "1 when the last full (mode two) sync succeeded, 0 when it failed.", "gauge" },
    [F_BACKUP_START] = { "ocpv_dr_namespace_backup_start_timestamp_seconds",
                         "Start of the newest Completed Velero backup covering the namespace.",
                         "gauge" },
    [F_BACKUP_AGE] = { "ocpv_dr_namespace_backup_age_seconds",
                       "Age of the newest Completed Velero backup covering the namespace (from its "
                       "start): the RPO of the VM definitions.", "gauge" },
    [F_BACKUP_MAX_AGE] = { "ocpv_dr_namespace_backup_max_age_seconds",
                           "Limit on the backup age in force.", "gauge" },
    [F_CLAIMS] = { "ocpv_dr_namespace_claims",
                   "Bound claims of the namespace in scope (primary, else as recorded).", "gauge" },
    [F_CLAIMS_NO_COPY] = { "ocpv_dr_namespace_claims_without_dr_copy",
                           "Bound claims with no usable DR copy.", "gauge" },
    [F_FAILOVER_RTO] = { "ocpv_dr_namespace_last_failover_rto_seconds",
                         "Duration of the last completed failover (measured RTO).", "gauge" },
    [F_VOL_START] = { "ocpv_dr_volume_last_sync_start_timestamp_seconds",
                      "Start of the volume's last successful sync (its data is at least this "
                      "fresh, no fresher).", "gauge" },
    [F_VOL_OK] = { "ocpv_dr_volume_last_sync_success",
                   "1 when the volume's last sync attempt succeeded, 0 when it failed.", "gauge" },
    [F_VOL_BYTES] = { "ocpv_dr_volume_last_sync_bytes",
                      "Bytes the volume's last successful sync sent.", "gauge" },
    [F_VOL_RPO] = { "ocpv_dr_volume_rpo_seconds",
                    "Age of the volume's DR copy now (+Inf without a usable copy).", "gauge" },
    [F_PRIMARY_UP] = { "ocpv_dr_primary_up",
                       "1 when the last read of the primary cluster's claims succeeded.", "gauge" },
    [F_DR_UP] = { "ocpv_dr_status_dr_up",
                  "1 when the exporter's last read of the DR records succeeded (0: it serves the "
                  "last records it read).", "gauge" },
    [F_LAST_READ] = { "ocpv_dr_status_last_dr_read_timestamp_seconds",
                      "When the last successful read of the DR records started.", "gauge" },
    [F_READ_ERRORS] = { "ocpv_dr_status_read_errors_total",
                        "Failed reads of the DR records (cluster=\"dr\") or of the primary's "
                        "claims (cluster=\"primary\").", "counter" },
    [F_BUILD_INFO] = { "ocpv_dr_status_build_info",
                       "Version of ocpv-dr-status-exporter (always 1).", "gauge" },
};
const size_t exp_n_families = F_N;

/* Label value escaping of the text format: \ " and newline. */
static void put_escaped(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '\\')
            fputs("\\\\", f);
        else if (*s == '"')
            fputs("\\\"", f);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

/* HELP text escaping: \ and newline. */
static void put_help(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", f);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

static void put_value(FILE *f, double v)
{
    if (isnan(v))
        fputs("NaN", f);
    else if (isinf(v))
        fputs(v > 0 ? "+Inf" : "-Inf", f);
    else if (v == floor(v) && fabs(v) < 1e15)
        fprintf(f, "%.0f", v);
    else
        fprintf(f, "%.17g", v);
}

/* name{protected_namespace="..",source_cluster=".."[,k1="v1"[,k2="v2"]]} value */
static void sample(FILE *f, int fam, const exp_ns *n, const char *k1, const char *v1,
                   const char *k2, const char *v2, double value)
{
    fputs(exp_families[fam].name, f);
    fputs("{protected_namespace=\"", f);
    put_escaped(f, n->r->ns);
    fputs("\",source_cluster=\"", f);
    put_escaped(f, n->source_cluster ? n->source_cluster : "");
    fputc('"', f);
    if (k1) {
        fprintf(f, ",%s=\"", k1);
        put_escaped(f, v1 ? v1 : "");
        fputc('"', f);
    }
    if (k2) {
        fprintf(f, ",%s=\"", k2);
        put_escaped(f, v2 ? v2 : "");
        fputc('"', f);
    }
    fputs("} ", f);
    put_value(f, value);
    fputc('\n', f);
}

/* A series without the namespace labels: name[{k="v"}] value. */
static void plain(FILE *f, int fam, const char *k, const char *v, double value)
{
    fputs(exp_families[fam].name, f);
    if (k) {
        fprintf(f, "{%s=\"", k);
        put_escaped(f, v ? v : "");
        fputs("\"}", f);
    }
    fputc(' ', f);
    put_value(f, value);
    fputc('\n', f);
}

/* The volume's last attempt as 1/0, or -1 = no series (nothing attempted
 * that concerns this copy). */
static int vol_success(const dst_volume *v)
{
    if (v->cls == DST_VOL_OK)
        return 1;
    if (v->cls == DST_VOL_FAILING)
        return 0;
    if ((v->cls == DST_VOL_MISSING || v->cls == DST_VOL_UNRECORDED) && v->has_attempt
        && !v->attempt_ok)
        return 0;
    return -1;
}

static void family(FILE *f, int fam, const exp_view *v)
{
    fprintf(f, "# HELP %s ", exp_families[fam].name);
    put_help(f, exp_families[fam].help);
    fprintf(f, "\n# TYPE %s %s\n", exp_families[fam].name, exp_families[fam].type);
    switch (fam) {
    case F_PRIMARY_UP:
        if (v->primary_configured)
            plain(f, fam, "source_cluster", v->primary_cluster ? v->primary_cluster : "",
                  v->primary_up);
        return;
    case F_DR_UP:
        plain(f, fam, NULL, NULL, v->dr_up);
        return;
    case F_LAST_READ:
        if (v->has_dr_read)
            plain(f, fam, NULL, NULL, (double)v->last_dr_read);
        return;
    case F_READ_ERRORS:
        plain(f, fam, "cluster", "dr", (double)v->dr_read_errors);
        if (v->primary_configured)
            plain(f, fam, "cluster", "primary", (double)v->primary_read_errors);
        return;
    case F_BUILD_INFO:
        plain(f, fam, "version", v->version ? v->version : "", 1);
        return;
    default:
        break;
    }
    for (size_t i = 0; i < v->n; i++) {
        const exp_ns *n = &v->ns[i];
        const dst_result *r = n->r;
        switch (fam) {
        case F_STATE:
            for (int s = 0; s < DST_N_STATES; s++)
                sample(f, fam, n, "state", dst_states[s], NULL, NULL, r->state == (dst_state)s);
            break;
        case F_REASON:
            for (int c = 0; c < DST_N_REASONS; c++)
                sample(f, fam, n, "reason", dst_reason_codes[c], NULL, NULL, r->active[c]);
            break;
        case F_RPO:
            sample(f, fam, n, NULL, NULL, NULL, NULL, r->rpo_s);
            break;
        case F_RPO_TARGET:
            sample(f, fam, n, NULL, NULL, NULL, NULL, r->targets.rpo_s);
            break;
        case F_RTO_TARGET:
            sample(f, fam, n, NULL, NULL, NULL, NULL, r->targets.rto_s);
            break;
        case F_FULL_START:
            if (r->rec.full_sync.has_start)
                sample(f, fam, n, NULL, NULL, NULL, NULL, (double)r->rec.full_sync.start);
            break;
        case F_FULL_END:
            if (r->rec.full_sync.has_end)
                sample(f, fam, n, NULL, NULL, NULL, NULL, (double)r->rec.full_sync.end);
            break;
        case F_FULL_OK:
            if (r->rec.full_sync.has_result)
                sample(f, fam, n, NULL, NULL, NULL, NULL, r->rec.full_sync.ok);
            break;
        case F_BACKUP_START:
            if (r->has_backup)
                sample(f, fam, n, NULL, NULL, NULL, NULL, (double)r->backup_started);
            break;
        case F_BACKUP_AGE:
            if (r->has_backup)
                sample(f, fam, n, NULL, NULL, NULL, NULL, r->backup_age_s);
            break;
        case F_BACKUP_MAX_AGE:
            sample(f, fam, n, NULL, NULL, NULL, NULL, r->targets.backup_max_age_s);
            break;
        case F_CLAIMS:
            sample(f, fam, n, NULL, NULL, NULL, NULL, (double)r->claims_bound);
            break;
        case F_CLAIMS_NO_COPY:
            sample(f, fam, n, NULL, NULL, NULL, NULL, (double)r->claims_without_dr_copy);
            break;
        case F_FAILOVER_RTO:
            if (r->rec.action.kind == DRR_ACT_FAILOVER && r->rec.action.phase == DRR_PH_COMPLETED
                && r->rec.action.rto_s >= 0)
                sample(f, fam, n, NULL, NULL, NULL, NULL, (double)r->rec.action.rto_s);
            break;
        default:   /* per volume */
            for (size_t k = 0; k < r->n_vols; k++) {
                const dst_volume *vol = &r->vols[k];
                double val;
                if (fam == F_VOL_START) {
                    if (!vol->has_start)
                        continue;
                    val = (double)vol->last_sync_start;
                } else if (fam == F_VOL_OK) {
                    int ok = vol_success(vol);
                    if (ok < 0)
                        continue;
                    val = ok;
                } else if (fam == F_VOL_BYTES) {
                    if (vol->bytes < 0 || !vol->has_start)
                        continue;
                    val = (double)vol->bytes;
                } else {
                    val = vol->age_s;
                }
                sample(f, fam, n, "persistentvolume", vol->pv, "persistentvolumeclaim",
                       vol->claim, val);
            }
            break;
        }
    }
}

char *exp_render(const exp_view *v, size_t *len)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return NULL;
    for (int fam = 0; fam < F_N; fam++)
        family(f, fam, v);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    if (len)
        *len = size;
    return buf;
}
