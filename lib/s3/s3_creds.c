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
#include "xstr.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_err(char **err, const char *path, const char *profile, const char *missing)
{
    if (missing)
        xerr_set(err, "credentials file %s: profile [%s] has no %s", path, profile, missing);
    else
        xerr_set(err, "credentials file %s has no [%s] profile", path, profile);
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
        xerr_set(err, "cannot read credentials file %s: %s", path, strerror(errno));
        return S3_ERR;
    }
    char *line = NULL;
    size_t cap = 0;
    bool in_section = false, found = false;
    while (getline(&line, &cap, f) >= 0) {
        char *s = xstr_trim(line);
        if (*s == '\0' || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *end = strchr(s, ']');
            if (!end)
                continue;
            *end = '\0';
            char *name = xstr_trim(s + 1);
            if (strncmp(name, "profile ", 8) == 0)
                name = xstr_trim(name + 8);
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
        char *k = xstr_trim(s), *v = xstr_trim(eq + 1);
        char **dst = strcmp(k, "aws_access_key_id") == 0 ? access_key
                   : strcmp(k, "aws_secret_access_key") == 0 ? secret_key
                   : strcmp(k, "aws_session_token") == 0 ? session_token : NULL;
        if (dst) {
            free(*dst);
            *dst = strdup(v);
        }
    }
    if (line)
        memset(line, 0, cap);         /* it held the secret */
    free(line);
    fclose(f);
    const char *missing = !found ? NULL
                        : !*access_key ? "aws_access_key_id"
                        : !*secret_key ? "aws_secret_access_key" : NULL;
    if (!found || missing) {
        set_err(err, path, profile, missing);
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
