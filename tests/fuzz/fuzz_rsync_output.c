/* fuzz_rsync_output.c - libFuzzer target for reading rsync's output back
 * (lib/dr/rsync_cmd.c): the --stats and "@%i" lines of one run (rc_stats_line,
 * what nfs_rsync_sync's single-volume runs feed), the "@%i %b %l %n" lines of
 * a batch run matched back to their volume (rc_item_parse + rc_item_owner),
 * and the stderr tail quoted in errors (lib/base/spawn.c: spawn_last_lines).
 *
 * The input is rsync's stdout (one line per '\n', as lib/base/spawn.c hands them
 * to the callback: NUL-terminated, without the newline).
 *
 * Checked beyond "no crash, no leak, no UB": counters never go negative; an
 * itemized line's flags are its 11 characters, its name lies inside the line
 * and is not empty, its figures are not negative; the owner found is a volume
 * the name lies in; the tail has at most the asked number of lines. */
#include "rsync_cmd.h"
#include "spawn.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const rels[] = { "vm-prod/disk-a", "vm-prod/disk-b", "vm-dev/pvc-1", "x" };
#define NRELS (sizeof rels / sizeof *rels)

static void line(rc_stats *st, const char *l)
{
    rc_stats_line(st, l);
    if (st->items < 0 || st->deletions < 0 || st->files_transferred < 0 ||
        st->files_created < 0 || st->files_deleted < 0 || st->bytes_sent < 0 ||
        st->bytes_received < 0 || st->transferred_size < 0 || st->deletions > st->items)
        abort();
    rc_item it;
    if (rc_item_parse(l, &it) == 0) {
        size_t n = strlen(l);
        if (it.flags != l + 1 || it.name <= it.flags + 11 || it.name >= l + n || !*it.name ||
            it.bytes < 0 || it.length < 0)
            abort();
        long o = rc_item_owner(it.name, rels, NRELS);
        if (o < -1 || o >= (long)NRELS)
            abort();
        if (o >= 0) {
            size_t rl = strlen(rels[o]);
            if (strncmp(it.name, rels[o], rl) || (it.name[rl] && it.name[rl] != '/'))
                abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    rc_stats st = { 0 };
    char *p = text, *end = text + size;
    while (p <= end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl)
            *nl = '\0';
        line(&st, p);
        if (!nl)
            break;
        p = nl + 1;
    }
    /* the stderr tail: the original text (newlines restored) */
    memcpy(text, data, size);
    for (int max = 0; max <= 3; max++) {
        char *t = spawn_last_lines(text, max);
        if (!t)
            abort();
        int lines = 1;
        for (const char *q = t; *q; q++)
            lines += *q == '\n';
        if (strlen(t) > strlen(text) || (max > 0 && lines > max) || (max == 0 && *t))
            abort();
        free(t);
    }
    free(text);
    return 0;
}
