/* xstr.c - malloc'ing printf and error hand-over (see xstr.h). */
#include "xstr.h"

#include <stdio.h>
#include <stdlib.h>

char *xvfmt(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
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

void xerr_take(char **err, char *msg)
{
    if (err) {
        free(*err);
        *err = msg;
    } else {
        free(msg);
    }
}
