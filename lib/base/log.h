/* log.h - structured JSON logs, one object per line on stderr (or a stream).
 *
 *   {"time":"2026-11-22T12:00:00.123Z","level":"info","component":"forwarder",
 *    "msg":"watch established","kind":"PersistentVolume","rv":"1234"}
 *
 * Fields are a jansson object built with json_pack(); LOGJ() skips building
 * it when the level is disabled.  Secrets: every value registered with
 * log_add_secret() is replaced by "********" (the rules of secrets.h: any
 * non-empty value, overlapping occurrences masked whole) in every string and
 * member name of the line BEFORE it is serialized (JSON escaping would turn a secret with
 * '"', '\\', control or non-ASCII characters into other bytes), whatever
 * field it reached (a server error that echoes a token, a URL with
 * credentials); its JSON-escaped forms are registered too and scrubbed from
 * the serialized text (a peer's JSON body quoted as text), so a secret never
 * reaches the log even by accident.  Thread-safe: a line is written with one
 * fwrite under a lock.
 */
#ifndef OCPVDR_LOG_H
#define OCPVDR_LOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

typedef enum { LOGL_DEBUG = 0, LOGL_INFO = 1, LOGL_WARN = 2, LOGL_ERROR = 3 } log_level;

void log_set_level(log_level lvl);
log_level log_get_level(void);
/* "debug", "info", "warn"/"warning", "error" (case-insensitive); -1 if unknown. */
int log_level_parse(const char *s, log_level *out);
const char *log_level_name(log_level lvl);
void log_set_stream(FILE *f);              /* default stderr */
void log_set_component(const char *name);  /* copied; default none */
bool log_enabled(log_level lvl);

/* Registers a secret to scrub (secrets_add: copied, with its JSON-escaped
 * spellings when they differ; the empty string is ignored). */
void log_add_secret(const char *secret);
void log_clear_secrets(void);

/* Writes one line.  fields may be NULL; it is stolen (decref'd). */
void log_j(log_level lvl, const char *msg, json_t *fields);

/* A malloc'd copy of s with every registered secret masked. */
char *log_scrub(const char *s);

#define LOGJ(lvl, msg, ...) \
    do { if (log_enabled(lvl)) log_j((lvl), (msg), json_pack(__VA_ARGS__)); } while (0)
#define LOG0(lvl, msg) \
    do { if (log_enabled(lvl)) log_j((lvl), (msg), NULL); } while (0)

#endif
