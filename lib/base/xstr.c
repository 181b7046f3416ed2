/* xstr.c - malloc'ing printf, strdup, error hand-over, trimming (see xstr.h). */
#include "xstr.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *xvfmt(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        abort();                    /* out of memory, as xstrdup */
    return s;
}

char *xfmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = xvfmt(fmt, ap);
    va_end(ap);
    return s;
}

char *xstrdup(const char *s)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

int xgrow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 4096;
    while (nc < need)
        nc *= 2;
    char *nb = realloc(*buf, nc);
    if (!nb)
        return -1;
    *buf = nb;
    *cap = nc;
    return 0;
}

void xerr_take(char **err, char *msg)
{
    if (err) {
        free(*err);
        *err = msg;
    } else {
        free(msg);
    }
}

void xerr_vset(char **err, const char *fmt, va_list ap)
{
    if (err)
        xerr_take(err, xvfmt(fmt, ap));
}

void xerr_set(char **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    xerr_vset(err, fmt, ap);
    va_end(ap);
}

void xerr_first(char **err, const char *fmt, ...)
{
    if (!err || *err)
        return;
    va_list ap;
    va_start(ap, fmt);
    xerr_vset(err, fmt, ap);
    va_end(ap);
}

char *xstr_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

bool xstr_dns_label(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
            return false;
    return true;
}
