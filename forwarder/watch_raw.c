/* watch_raw.c - finds the object's text in a watch event line (watch_raw.h).
 *
 * The line parsed as JSON, so its brackets balance outside strings: the
 * object's text ends at the bracket that closes the one it starts with, and
 * that must be the line's last member (the next byte the line's closing
 * brace, the last byte).  Anything else, e.g. members after the object or a
 * second "object" key, would otherwise be spliced into the webhook payload
 * after the `resource` member, where it could override header fields. */
#include "watch_raw.h"

#include <stdbool.h>
#include <string.h>

/* Length of the JSON object or array at p (p[0] is '{' or '['), from valid
 * JSON text; 0 when it does not close within n bytes. */
static size_t value_len(const char *p, size_t n)
{
    size_t depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if ((c == '}' || c == ']') && --depth == 0) {
            return i + 1;
        }
    }
    return 0;
}

const char *fwd_raw_object(const char *type, const char *line, size_t len, size_t *rawlen)
{
    static const char pre[] = "{\"type\":\"", mid[] = "\",\"object\":";
    size_t tl = strlen(type), off = sizeof pre - 1 + tl + sizeof mid - 1;
    if (len < off + 3 || memcmp(line, pre, sizeof pre - 1) ||
        memcmp(line + sizeof pre - 1, type, tl) || memcmp(line + sizeof pre - 1 + tl, mid, sizeof mid - 1))
        return NULL;
    if (line[off] != '{' || line[len - 1] != '}')
        return NULL;
    size_t n = value_len(line + off, len - 1 - off);
    if (n != len - 1 - off)
        return NULL;   /* more after the object */
    *rawlen = n;
    return line + off;
}
