/* render.h - the status exporter's /metrics body: Prometheus text format
 * 0.0.4 from the per-namespace protection status (dst_result, computed by
 * the caller at scrape time with now = time(NULL)) and the exporter's own
 * read health.  Pure (no I/O, no clock): names, labels, HELP/TYPE and the
 * exact value formatting (+Inf, label escaping) are unit-tested
 * (tests/unit/test_exporter.c).  exporter/README.md lists the metrics. */
#ifndef OCPVDR_EXP_RENDER_H
#define OCPVDR_EXP_RENDER_H

#include "dr_status.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* One namespace: its computed status and the source cluster label value. */
typedef struct exp_ns {
    const dst_result *r;
    const char *source_cluster;    /* NULL or "" = unknown */
} exp_ns;

typedef struct exp_view {
    const exp_ns *ns;
    size_t n;
    bool primary_configured;       /* ocpv_dr_primary_up only when true */
    bool primary_up;
    const char *primary_cluster;   /* source_cluster label of ocpv_dr_primary_up */
    bool dr_up;                    /* the last read of the DR records succeeded */
    bool has_dr_read;              /* a read has ever succeeded */
    time_t last_dr_read;           /* when the last successful one started */
    unsigned long long dr_read_errors, primary_read_errors;
    const char *version;
} exp_view;

/* The families rendered, in order (name, HELP text, TYPE); the unit test and
 * the dashboard check read the same list. */
typedef struct exp_family { const char *name, *help, *type; } exp_family;
extern const exp_family exp_families[];
extern const size_t exp_n_families;

/* The body, malloc'd (length in *len); NULL only when out of memory. */
char *exp_render(const exp_view *v, size_t *len);

#endif
