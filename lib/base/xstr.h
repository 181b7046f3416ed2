/* xstr.h - the small string helpers every C file here needs: a malloc'ing
 * printf, a strdup that passes NULL through, growing a buffer, handing a formatted error message to an optional out-parameter,
 * and trimming ASCII space.  Part of the runtime library (jansson + libc only). */
#ifndef OCPVDR_XSTR_H
#define OCPVDR_XSTR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* vasprintf into a new string; out of memory aborts (as xstrdup), so the
 * result is never NULL. */
char *xfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvfmt(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* A copy of s; NULL when s is NULL.  Aborts when out of memory (callers
 * cannot tell that NULL from "absent"). */
char *xstrdup(const char *s);

/* Makes room for need bytes in the malloc'd buffer *buf of capacity *cap
 * (doubling from 4096).  0, or -1 when out of memory (buffer unchanged). */
int xgrow(char **buf, size_t *cap, size_t need);

/* Stores msg (malloc'd, taken over) in *err, freeing what was there; frees
 * msg when err is NULL. */
void xerr_take(char **err, char *msg);

/* Formats a message into *err, replacing (and freeing) what was there; a
 * no-op when err is NULL.  Out of memory leaves *err NULL. */
void xerr_set(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void xerr_vset(char **err, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Like xerr_set, but keeps the first message: a no-op when *err is set. */
void xerr_first(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Trims ASCII space (isspace) from both ends of s in place: returns a pointer
 * into s, past the leading space, and cuts the trailing space with a NUL. */
char *xstr_trim(char *s);

/* s is an RFC 1123 DNS label (what a Kubernetes namespace name must be):
 * 1-63 characters of [a-z0-9-], starting and ending alphanumeric. */
bool xstr_dns_label(const char *s);

#endif
