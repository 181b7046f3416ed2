/* xtime.h - RFC 3339 timestamps: one formatter and two strict parsers, pure
 * (libc only, no locale, no timezone database, no strptime).
 *
 * Format (what ocpv-dr writes): UTC, whole seconds, floored:
 * "2026-12-03T13:00:07Z" (20 characters + NUL).
 *
 * Parsing - two strictness levels, both reject garbage (whitespace, missing
 * or extra digits, out-of-range fields, trailing text, years < 1970):
 *   xtime_parse      full RFC 3339 as the Kubernetes API and Velero write it:
 *                    "T"/"t", optional fraction (floored: errs towards older),
 *                    "Z"/"z" or a numeric offset "+hh:mm"/"-hh:mm" (converted
 *                    to UTC).  For timestamps other programs wrote.
 *   xtime_parse_utc  only the form xtime_rfc3339 writes: "YYYY-MM-DDTHH:MM:SSZ".
 *                    Offsets and fractions are REFUSED.  For the dr.ocpv.io
 *                    records (only our writers produce them; anything else
 *                    there is a hand edit or corruption and is reported).
 * Leap second ":60" is accepted as ":59" of that minute (floored). */
#ifndef OCPVDR_XTIME_H
#define OCPVDR_XTIME_H

#include <stdbool.h>
#include <time.h>

#define XTIME_RFC3339_LEN 21   /* buffer size for xtime_rfc3339, NUL included */

/* t (epoch seconds, >= 0) as "YYYY-MM-DDTHH:MM:SSZ" into out.  A negative t or
 * a year above 9999 gives "1970-01-01T00:00:00Z" (never happens for clocks). */
void xtime_rfc3339(time_t t, char out[XTIME_RFC3339_LEN]);

/* Full RFC 3339 (see above) to epoch seconds; false (and *out untouched) when
 * s is NULL or not such a time. */
bool xtime_parse(const char *s, time_t *out);

/* Only "YYYY-MM-DDTHH:MM:SSZ"; false otherwise. */
bool xtime_parse_utc(const char *s, time_t *out);

#endif
