/* dr_ping.c - test-only binary module (ocpv.dr.dr_ping) that proves the
 * collection mechanism end to end over real ansible-playbook: FQCN lookup,
 * delegate_to over SSH, check mode, diff mode, idempotency and no_log.
 *
 *   data    str, default "pong"      returned as `ping`
 *   secret  str, no_log              never shown; scrubbed even from `msg`
 *   path    path                     writes "<data>\n" there: changed when the
 *                                    content differs; check mode writes nothing
 *   fail    bool, default false      fails, with the secret in the message
 *                                    (proves scrubbing)
 *   warn    str                      adds it as a warning and a deprecation
 */
#include "module.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const mod_opt opts[] = {
    { .name = "data", .type = OPT_STR, .def = "\"pong\"" },
    { .name = "secret", .type = OPT_STR, .no_log = true, .env_fallback = "DR_PING_SECRET" },
    { .name = "path", .type = OPT_PATH, .aliases = (const char *[]){ "dest", NULL } },
    { .name = "fail", .type = OPT_BOOL, .def = "false" },
    { .name = "warn", .type = OPT_STR },
    { 0 }
};

static const mod_spec spec = {
    .name = "dr_ping",
    .opts = opts,
    .supports_check_mode = true,
};

/* Whole file content, or NULL when it does not exist (errno set). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 256, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

/* Writes content to path atomically (temp file + rename). */
static int write_file(const char *path, const char *content, char *err, size_t errlen)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.dr_ping.XXXXXX", path) >= (int)sizeof tmp) {
        snprintf(err, errlen, "path is too long");
        return -1;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a file next to path: %s", strerror(errno));
        return -1;
    }
    size_t len = strlen(content);
    ssize_t w = write(fd, content, len);
    if (w != (ssize_t)len || fchmod(fd, 0644) != 0 || close(fd) != 0) {
        snprintf(err, errlen, "cannot write path: %s", strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot rename into path: %s", strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    module m;
    mod_init(&m, &spec, argc, argv);
    const char *data = mod_str(&m, "data");
    const char *secret = mod_str(&m, "secret");
    const char *path = mod_str(&m, "path");

    if (mod_str(&m, "warn")) {
        mod_warn(&m, "%s", mod_str(&m, "warn"));
        mod_deprecate(&m, "dr_ping: %s", mod_str(&m, "warn"));
    }
    if (mod_bool(&m, "fail"))
        mod_fail(&m, "dr_ping failed as requested (secret was %s)", secret ? secret : "unset");

    mod_set(&m, "ping", json_string(data));
    mod_set(&m, "secret_given", json_boolean(secret != NULL));
    mod_set(&m, "check_mode", json_boolean(m.check_mode));
    if (path) {
        char *want = NULL;
        if (asprintf(&want, "%s\n", data) < 0)
            mod_fail(&m, "out of memory");
        char *have = slurp(path);
        if (!have && errno != ENOENT) {
            free(want);
            mod_fail(&m, "cannot read path %s: %s", path, strerror(errno));
        }
        bool changed = !have || strcmp(have, want) != 0;
        mod_set(&m, "path", json_string(path));
        mod_changed(&m, changed);
        if (changed)
            mod_diff(&m, json_string(have ? have : ""), json_string(want));
        free(have);
        if (changed && !m.check_mode) {
            char err[512];
            if (write_file(path, want, err, sizeof err) != 0) {
                free(want);
                mod_fail(&m, "%s (path %s)", err, path);
            }
        }
        free(want);
    }
    mod_exit(&m);
}
