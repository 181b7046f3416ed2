/* xtime.c - RFC 3339 format and strict parse (see xtime.h).  Calendar
 * arithmetic is done here (days from civil, proleptic Gregorian) instead of
 * timegm/strptime: no locale, no leniency, the same on every libc. */
#include "xtime.h"

#include <stdio.h>
#include <string.h>

static long long days_from_civil(long long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

static void civil_from_days(long long z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long yy = (long long)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yy + (*m <= 2));
}

void xtime_rfc3339(time_t t, char out[XTIME_RFC3339_LEN])
{
    if (t < 0 || t > 253402300799LL)      /* 9999-12-31T23:59:59Z */
        t = 0;
    long long days = (long long)t / 86400, secs = (long long)t % 86400;
    int y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    /* every field is in range here: each writes exactly its width */
    char b[64];
    snprintf(b, sizeof b, "%04d-%02u-%02uT%02u:%02u:%02uZ", y % 10000, m % 100, d % 100,
             (unsigned)(secs / 3600), (unsigned)(secs / 60 % 60), (unsigned)(secs % 60));
    memcpy(out, b, XTIME_RFC3339_LEN - 1);
    out[XTIME_RFC3339_LEN - 1] = '\0';
}

/* n decimal digits at s (exactly n, all digits) into *v. */
static bool digits(const char *s, int n, unsigned *v)
{
    unsigned x = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        x = x * 10 + (unsigned)(s[i] - '0');
    }
    *v = x;
    return true;
}

static bool is_leap(unsigned y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool parse(const char *s, time_t *out, bool utc_only)
{
    if (!s)
        return false;
    unsigned y, mo, d, h, mi, se;
    if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-'
        || !digits(s + 8, 2, &d) || !(s[10] == 'T' || (!utc_only && s[10] == 't'))
        || !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':'
        || !digits(s + 17, 2, &se))
        return false;
    static const unsigned mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (y < 1970 || mo < 1 || mo > 12 || d < 1
        || d > mdays[mo - 1] + (mo == 2 && is_leap(y)) || h > 23 || mi > 59 || se > 60)
        return false;
    if (se == 60)
        se = 59;
    const char *r = s + 19;
    long off = 0;
    if (!utc_only && *r == '.') {
        if (r[1] < '0' || r[1] > '9')
            return false;
        for (r++; *r >= '0' && *r <= '9'; r++)
            ;
    }
    if (*r == 'Z' || (!utc_only && *r == 'z')) {
        r++;
    } else if (!utc_only && (*r == '+' || *r == '-')) {
        unsigned oh, om;
        if (!digits(r + 1, 2, &oh) || r[3] != ':' || !digits(r + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        off = ((long)oh * 3600 + (long)om * 60) * (*r == '+' ? 1 : -1);
        r += 6;
    } else {
        return false;
    }
    if (*r)
        return false;
    long long t = days_from_civil(y, mo, d) * 86400LL + h * 3600LL + mi * 60LL + se - off;
    if (t < 0)
        return false;
    *out = (time_t)t;
    return true;
}

bool xtime_parse(const char *s, time_t *out)
{
    return parse(s, out, false);
}

bool xtime_parse_utc(const char *s, time_t *out)
{
    return parse(s, out, true);
}
