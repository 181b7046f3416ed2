/* watch_raw.h - the object's JSON text inside a watch event line, so that
 * an event can carry the object as the API server wrote it (event.h:
 * fwd_event_new_raw) instead of serializing it again.  Pure; used by
 * watcher.c and the fuzz target tests/fuzz/fuzz_watch_lines.c. */
#ifndef OCPVDR_FWD_WATCH_RAW_H
#define OCPVDR_FWD_WATCH_RAW_H

#include <stddef.h>

/* line (len bytes, a whole event that parsed as JSON) written as
 * {"type":"<type>","object":{...}}: returns the start of the object's text
 * and its length in *rawlen.  NULL when the line has any other shape (the
 * caller then serializes the parsed object). */
const char *fwd_raw_object(const char *type, const char *line, size_t len, size_t *rawlen);

#endif
