/* log.c - structured JSON log lines with secret scrubbing (see log.h; the
 * rules are lib/base/secrets.c's). */
#include "log.h"
#include "secrets.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static log_level cur_level = LOGL_INFO;
static FILE *log_stream;
static char *component;
static secret_set secrets;

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

void log_add_secret(const char *secret)
{
    pthread_mutex_lock(&log_mu);
    secrets_add(&secrets, secret);
    pthread_mutex_unlock(&log_mu);
}

void log_clear_secrets(void)
{
    pthread_mutex_lock(&log_mu);
    secrets_clear(&secrets);
    free(component);
    component = NULL;
    pthread_mutex_unlock(&log_mu);
}

char *log_scrub(const char *s)
{
    if (!s)
        return NULL;
    pthread_mutex_lock(&log_mu);
    char *r = secrets_scrub_copy(&secrets, s);
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
    if (secrets_count(&secrets)) {
        /* the values first, then serialize: JSON escaping rewrites a secret
         * holding '"', '\\', control or non-ASCII characters, so a scrub of
         * the serialized text alone would miss it.  A copy: the caller's
         * fields may be shared. */
        json_t *clean_line = json_deep_copy(line);
        json_decref(line);
        line = clean_line;
        secrets_scrub_json(&secrets, line);
    }
    pthread_mutex_unlock(&log_mu);
    char *s = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(line);
    if (!s)
        return;
    pthread_mutex_lock(&log_mu);
    /* and the text: a secret's escaped form (registered with it) that was
     * already escaped in a value, e.g. a peer's JSON body quoted as text */
    char *clean = secrets_count(&secrets) ? secrets_scrub_copy(&secrets, s) : s;
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
