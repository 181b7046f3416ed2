/* jsonx.h - small conveniences on top of jansson used everywhere.
 *
 * Dotted paths ("metadata.name", "spec.claimRef.namespace") address nested
 * objects; a path segment never indexes arrays.  Getters return NULL / the
 * fallback when any segment is missing or of the wrong type; nothing here
 * allocates unless its name says so.
 */
#ifndef OCPVDR_JSONX_H
#define OCPVDR_JSONX_H

#include <jansson.h>
#include <stdbool.h>

json_t     *jx_get(json_t *root, const char *path);                  /* borrowed */
const char *jx_str(json_t *root, const char *path);                  /* NULL unless a string */
const char *jx_str_or(json_t *root, const char *path, const char *fallback);
long long   jx_int(json_t *root, const char *path, long long fallback);
bool        jx_bool(json_t *root, const char *path, bool fallback);

/* Sets root.path = value (steals value), creating intermediate objects.
 * Returns 0, or -1 when an intermediate exists and is not an object. */
int jx_set(json_t *root, const char *path, json_t *value);
/* Removes root.path; returns true when something was removed. */
bool jx_del(json_t *root, const char *path);

/* Canonical compact serialization (sorted keys): stable for hashing and
 * comparison.  malloc'd. */
char *jx_canonical(const json_t *v);

/* lowercase hex SHA-256 of jx_canonical(v) into out[65]. */
void jx_sha256(const json_t *v, char out[65]);

/* Reads a whole JSON file; NULL with *err (malloc'd) naming file, line and column. */
json_t *jx_load_file(const char *path, char **err);

/* "ns/name" or "name" for an object, for messages.  Writes into buf. */
const char *jx_ref(json_t *obj, char *buf, size_t len);

#endif
