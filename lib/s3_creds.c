/* s3_creds.c - reads an AWS-style shared credentials file (the format of
 * ~/.aws/credentials and of Velero's `cloud` secret):
 *
 *   [default]
 *   aws_access_key_id = AKIA...
 *   aws_secret_access_key = ...
 *   aws_session_token = ...      (optional)
 *
 * Section headers may also be written `[profile name]`.  Values are never
 * put into error messages. */
#include "s3.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static void set_err(char **err, const char *fmt, const char *a, const char *b)
{
    if (err && asprintf(err, fmt, a, b) < 0)
        *err = NULL;
}

int s3_load_credentials(const char *path, const char *profile,
                        char **access_key, char **secret_key,
                        char **session_token, char **err)
{
    *access_key = *secret_key = NULL;
    if (session_token)
        *session_token = NULL;
    if (!profile || !*profile)
        profile = "default";
    FILE *f = fopen(path, "r");
    if (!f) {
        set_err(err, "cannot read credentials file %s: %s", path, strerror(errno));
        return S3_ERR;
    }
    char *line = NULL;
    size_t cap = 0;
    bool in_section = false, found = false;
    while (getline(&line, &cap, f) >= 0) {
        char *s = trim(line);
        if (*s == '\0' || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *end = strchr(s, ']');
            if (!end)
                continue;
            *end = '\0';
            char *name = trim(s + 1);
            if (strncmp(name, "profile ", 8) == 0)
                name = trim(name + 8);
            in_section = strcmp(name, profile) == 0;
            found = found || in_section;
            continue;
        }
        if (!in_section)
            continue;
        char *eq = strchr(s, '=');
        if (!eq)
            continue;
        *eq = '\0';
        char *k = trim(s), *v = trim(eq + 1);
        char **dst = strcmp(k, "aws_access_key_id") == 0 ? access_key
                   : strcmp(k, "aws_secret_access_key") == 0 ? secret_key
                   : strcmp(k, "aws_session_token") == 0 ? session_token : NULL;
        if (dst) {
            free(*dst);
            *dst = strdup(v);
        }
    }
    free(line);
    fclose(f);
    const char *missing = !found ? NULL
                        : !*access_key ? "aws_access_key_id"
                        : !*secret_key ? "aws_secret_access_key" : NULL;
    if (!found)
        set_err(err, "credentials file %s has no [%s] profile", path, profile);
    else if (missing)
        set_err(err, "credentials file %s: profile [%s] lacks ", path, profile);
    if (!found || missing) {
        if (missing && err && *err) {
            char *full = NULL;
            if (asprintf(&full, "%s%s", *err, missing) >= 0) {
                free(*err);
                *err = full;
            }
        }
        free(*access_key);
        free(*secret_key);
        *access_key = *secret_key = NULL;
        if (session_token) {
            free(*session_token);
            *session_token = NULL;
        }
        return S3_ERR;
    }
    return 0;
}
