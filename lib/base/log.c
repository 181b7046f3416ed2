/* log.c - structured JSON log lines with secret scrubbing (see log.h). */
#include "log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static log_level cur_level = LOGL_INFO;
static FILE *log_stream;
static char *component;
static char **secrets;
static size_t n_secrets;

void log_set_level(log_level lvl) { cur_level = lvl; }
log_level log_get_level(void) { return cur_level; }
bool log_enabled(log_level lvl) { return lvl >= cur_level; }

static const char *const names[] = { "debug", "info", "warn", "error" };

const char *log_level_name(log_level lvl)
{
    return (unsigned)lvl < 4 ? names[lvl] : "info";
}

int log_level_parse(const char *s, log_level *out)
{
    if (!s)
        return -1;
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, names[i]) == 0) {
            *out = (log_level)i;
            return 0;
        }
    if (strcasecmp(s, "warning") == 0) {
        *out = LOGL_WARN;
        return 0;
    }
    return -1;
}

void log_set_stream(FILE *f)
{
    pthread_mutex_lock(&log_mu);
    log_stream = f;
    pthread_mutex_unlock(&log_mu);
}

void log_set_component(const char *name)
{
    pthread_mutex_lock(&log_mu);
    free(component);
    component = name ? strdup(name) : NULL;
    pthread_mutex_unlock(&log_mu);
}

/* Caller holds log_mu. */
static void add_secret_locked(const char *secret)
{
    for (size_t i = 0; i < n_secrets; i++)
        if (!strcmp(secrets[i], secret))
            return;
    char **n = realloc(secrets, (n_secrets + 1) * sizeof *n);
    if (n) {
        secrets = n;
        secrets[n_secrets] = strdup(secret);
        if (secrets[n_secrets])
            n_secrets++;
    }
}

/* The secret as it reads inside a JSON string (quotes stripped), with or
 * without \uXXXX for non-ASCII: how a peer that echoes it in a JSON body
 * writes it, and how it would read in a dumped line.  NULL when it needs no
 * escaping (or is not UTF-8, which no JSON string can hold). */
static char *json_escaped(const char *secret, size_t flags)
{
    json_t *j = json_string(secret);
    char *d = j ? json_dumps(j, JSON_ENCODE_ANY | flags) : NULL;
    json_decref(j);
    size_t n = d ? strlen(d) : 0;
    if (n < 2 || !strncmp(d + 1, secret, n - 2)) {
        free(d);
        return NULL;
    }
    memmove(d, d + 1, n - 2);
    d[n - 2] = '\0';
    return d;
}

void log_add_secret(const char *secret)
{
    if (!secret || strlen(secret) < 4)
        return;
    char *esc = json_escaped(secret, JSON_ENSURE_ASCII);
    char *esc_utf8 = json_escaped(secret, 0);
    pthread_mutex_lock(&log_mu);
    add_secret_locked(secret);
    if (esc)
        add_secret_locked(esc);
    if (esc_utf8)
        add_secret_locked(esc_utf8);
    pthread_mutex_unlock(&log_mu);
    free(esc);
    free(esc_utf8);
}

void log_clear_secrets(void)
{
    pthread_mutex_lock(&log_mu);
    for (size_t i = 0; i < n_secrets; i++)
        free(secrets[i]);
    free(secrets);
    secrets = NULL;
    n_secrets = 0;
    free(component);
    component = NULL;
    pthread_mutex_unlock(&log_mu);
}

/* Caller holds log_mu. */
static char *scrub_locked(const char *s)
{
    char *out = strdup(s);
    for (size_t i = 0; out && i < n_secrets; i++) {
        const char *sec = secrets[i];
        size_t sl = strlen(sec);
        char *hit;
        while (out && (hit = strstr(out, sec)) != NULL) {
            size_t pre = (size_t)(hit - out), rest = strlen(hit + sl);
            char *n = malloc(pre + 3 + rest + 1);
            if (n) {
                memcpy(n, out, pre);
                memcpy(n + pre, "***", 3);
                memcpy(n + pre + 3, hit + sl, rest + 1);
            }
            free(out);
            out = n;
        }
    }
    return out;
}

/* Caller holds log_mu. */
static bool has_secret_locked(const char *s)
{
    for (size_t i = 0; s && i < n_secrets; i++)
        if (strstr(s, secrets[i]))
            return true;
    return false;
}

/* A copy of the value v with every registered secret replaced by "***" in
 * every string and member name, BEFORE the line is serialized: JSON escaping
 * rewrites a secret holding '"', '\\', control or non-ASCII characters, so
 * a scrub of the serialized text alone would miss it.  New reference; v is
 * not modified (callers may share parts of it).  Caller holds log_mu. */
static json_t *scrub_tree_locked(json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING: {
        const char *s = json_string_value(v);
        if (!has_secret_locked(s))
            return json_incref(v);
        char *c = scrub_locked(s);
        json_t *n = c ? json_string(c) : NULL;
        free(c);
        return n ? n : json_string("***");   /* a secret cut a UTF-8 sequence */
    }
    case JSON_OBJECT: {
        json_t *n = json_object();
        const char *k;
        json_t *m;
        json_object_foreach(v, k, m) {
            char *ck = has_secret_locked(k) ? scrub_locked(k) : NULL;
            json_object_set_new(n, ck ? ck : k, scrub_tree_locked(m));
            free(ck);
        }
        return n;
    }
    case JSON_ARRAY: {
        json_t *n = json_array();
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m)
            json_array_append_new(n, scrub_tree_locked(m));
        return n;
    }
    default:
        return json_incref(v);
    }
}

char *log_scrub(const char *s)
{
    if (!s)
        return NULL;
    pthread_mutex_lock(&log_mu);
    char *r = scrub_locked(s);
    pthread_mutex_unlock(&log_mu);
    return r;
}

void log_j(log_level lvl, const char *msg, json_t *fields)
{
    if (!log_enabled(lvl)) {
        json_decref(fields);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[80];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000) % 1000);

    json_t *line = json_object();
    json_object_set_new(line, "time", json_string(when));
    json_object_set_new(line, "level", json_string(log_level_name(lvl)));
    pthread_mutex_lock(&log_mu);
    if (component)
        json_object_set_new(line, "component", json_string(component));
    pthread_mutex_unlock(&log_mu);
    json_object_set_new(line, "msg", json_string(msg ? msg : ""));
    if (json_is_object(fields)) {
        const char *k;
        json_t *v;
        json_object_foreach(fields, k, v)
            if (!json_object_get(line, k))
                json_object_set(line, k, v);
    }
    json_decref(fields);
    pthread_mutex_lock(&log_mu);
    if (n_secrets) {   /* scrub the values first, then serialize (see scrub_tree_locked) */
        json_t *clean_line = scrub_tree_locked(line);
        json_decref(line);
        line = clean_line;
    }
    pthread_mutex_unlock(&log_mu);
    char *s = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(line);
    if (!s)
        return;
    pthread_mutex_lock(&log_mu);
    /* and the text: a secret's escaped form (registered with it) that was
     * already escaped in a value, e.g. a peer's JSON body quoted as text */
    char *clean = n_secrets ? scrub_locked(s) : s;
    FILE *f = log_stream ? log_stream : stderr;
    if (clean) {
        size_t n = strlen(clean);
        clean[n] = '\n';   /* overwrite the terminator: one fwrite per line */
        fwrite(clean, 1, n + 1, f);
        clean[n] = '\0';
        fflush(f);
    }
    pthread_mutex_unlock(&log_mu);
    if (clean != s)
        free(clean);
    free(s);
}
