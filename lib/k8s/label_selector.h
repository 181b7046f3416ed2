/* label_selector.h - Kubernetes label selectors ("a=b,c!=d,e in (x,y),
 * f notin (z),g,!h") parsed once and matched against metadata.labels.
 * Generic (no Velero in it); the vb_ prefix is historical (it was
 * velero_select.c), used by the backup collector and oadp_parse. */
#ifndef OCPVDR_LABEL_SELECTOR_H
#define OCPVDR_LABEL_SELECTOR_H

#include <jansson.h>
#include <stdbool.h>

typedef struct vb_selector vb_selector;

/* Kubernetes label selector syntax: "a=b,c!=d,e in (x,y),f notin (z),g,!h"
 * ("==" too).  "" selects everything.  NULL with *err on a syntax error. */
vb_selector *vb_selector_parse(const char *text, char **err);
/* labels: the object's metadata.labels (may be NULL). */
bool vb_selector_match(const vb_selector *s, json_t *labels);
void vb_selector_free(vb_selector *s);

#endif
