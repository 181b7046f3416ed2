/* fuzz_retry_after.c - libFuzzer target for `Retry-After` (lib/k8s/k8s_http.c):
 * the header line as curl hands it to the header callback
 * (k8s_resp_header: name match, copy into a bounded buffer), the value parser
 * (k8s_parse_retry_after: delta seconds or an HTTP date via curl_getdate)
 * and the delay the client then sleeps (k8s_backoff_ms).  Used by the
 * Kubernetes client and its batches when an API server (or a proxy) answers
 * 429 / 503.
 *
 * Input: the header value (also fed as a whole "Retry-After: <value>\r\n"
 * line and, raw, as an arbitrary header line).
 *
 * Checked beyond "no crash, no leak, no UB": the parsed value is -1 or not
 * negative, the header callback consumes the whole line and stores what the
 * parser says, and the delay is within [0, 120 s + jitter]. */
#include "k8s_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const time_t NOW = 1700000000;   /* fixed: the answer must not depend on the clock */

static void check_delay(long secs, unsigned rnd)
{
    for (int attempt = 0; attempt < 40; attempt += 13) {
        long ms = k8s_backoff_ms(attempt, secs, rnd);
        if (ms < 0 || ms > 120 * 1000 + 250)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *v = strndup((const char *)data, size);
    if (!v)
        return 0;
    long secs = k8s_parse_retry_after(v, NOW);
    if (secs < -1)
        abort();
    if (k8s_parse_retry_after(v, NOW) != secs)
        abort();
    check_delay(secs, size ? data[0] * 16777619u : 0);

    /* the header line: "Retry-After: " + value + CRLF, and the raw bytes */
    static const char name[] = "Retry-After: ";
    char *line = malloc(sizeof name + size + 2);
    if (!line)
        abort();
    memcpy(line, name, sizeof name - 1);
    memcpy(line + sizeof name - 1, data, size);
    memcpy(line + sizeof name - 1 + size, "\r\n", 2);
    size_t ll = sizeof name - 1 + size + 2;
    k8s_resp r = { .retry_after_s = -1 };
    if (k8s_resp_header(line, 1, ll, &r) != ll || r.retry_after_s < -1)
        abort();
    check_delay(r.retry_after_s, 7);
    k8s_resp raw = { .retry_after_s = -1 };
    if (k8s_resp_header((char *)data, 1, size, &raw) != size || raw.retry_after_s < -1)
        abort();
    free(line);
    free(v);
    return 0;
}
