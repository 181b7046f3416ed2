/* secrets.h - the one set of rules that keeps secret values out of output:
 * the binary-module runtime's results (no_log parameters, keys a module read
 * from a file) and the forwarder's log lines both use it.  (Masking whole
 * fields of Kubernetes objects by their shape - a Secret's data - is
 * secret_mask.h; it writes the same SECRETS_MASK.)
 *
 * The rules:
 *   - What is a secret: every registered value of at least SECRETS_MIN_LEN
 *     (1) byte - Ansible scrubs every non-empty no_log value, and a short
 *     secret shown is still shown; the price is that a very short one masks
 *     ordinary text too.  Its JSON-escaped spellings are secrets as well when
 *     they differ (how a JSON string writes it, with and without \uXXXX for
 *     non-ASCII): a peer's JSON body echoing it and quoted as text.
 *   - The mask: SECRETS_MASK, "********" (Ansible's).
 *   - Replacement: every occurrence of every secret is located in the
 *     original text first; occurrences that overlap become one masked run,
 *     each run one mask.  So a secret containing a shorter one is masked
 *     whole (longest first, whatever the order of registration), and two
 *     secrets that overlap leave no byte of either.  Separate occurrences
 *     (even adjacent ones) get one mask each.
 *   - A string that masking would leave as invalid UTF-8 (a secret read from
 *     a file that starts or ends inside a multi-byte character) becomes the
 *     mask as a whole: a JSON string cannot hold it, and the original must
 *     not stay.
 *   - JSON values: every string and every member name, recursively; numbers
 *     and other scalars are kept.  JSON text: a text that may hold a secret
 *     (contains one literally, or any backslash escape, which could spell
 *     one) is parsed, scrubbed as a value and written back compact; any other
 *     text is kept byte for byte.
 *
 * Out of memory aborts: secrecy cannot be guaranteed without it.  A set is
 * not locked: share one between threads under the caller's lock (log.c). */
#ifndef OCPVDR_SECRETS_H
#define OCPVDR_SECRETS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define SECRETS_MASK "********"
#define SECRETS_MIN_LEN 1

/* The registered secrets; zero-initialised is an empty set. */
typedef struct secret_set {
    char **v;      /* private: values and escaped spellings, no duplicates */
    size_t n;
} secret_set;

/* Registers value (copied) and its JSON-escaped spellings.  Values shorter
 * than SECRETS_MIN_LEN (the empty string) and NULL are ignored, duplicates
 * too. */
void secrets_add(secret_set *s, const char *value);
/* Number of strings held (values plus escaped spellings). */
size_t secrets_count(const secret_set *s);
/* Forgets every secret (the strings are wiped before they are freed). */
void secrets_clear(secret_set *s);

/* Whether text (len bytes) contains a secret literally. */
bool secrets_in(const secret_set *s, const char *text, size_t len);

/* A malloc'd copy of the C string text with every secret masked (a copy
 * also when nothing matched). */
char *secrets_scrub_copy(const secret_set *s, const char *text);

/* Masks every secret in every string and member name of v, in place. */
void secrets_scrub_json(const secret_set *s, json_t *v);

/* JSON text (len bytes, one value): when it may hold a secret (see above),
 * the scrubbed value's compact text, malloc'd, its length in *outlen;
 * otherwise NULL - the text can be used as it is.  A text that does not
 * parse is scrubbed as plain bytes (and as JSON if that makes it parse). */
char *secrets_scrub_json_text(const secret_set *s, const char *text, size_t len, size_t *outlen);

#endif
