/* velero_path.c - classifies tar entry paths of a Velero backup
 * (resources/<gr>/[<ver>[-preferredversion]/]{namespaces/<ns>,cluster}/<name>.json,
 * metadata/version) and rejects unsafe ones (absolute, "..").  Pure string
 * work, no allocation. */
#include "velero_backup.h"

#include <stdio.h>
#include <string.h>

#define MAX_SEGS 8

const char *vb_printable(const char *s, char *buf, size_t len)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (o + 4 >= len) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        buf[o++] = (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\') ? (char)*p : '?';
    }
    buf[o] = '\0';
    return buf;
}

static bool copy_seg(char *dst, size_t cap, const char *s, size_t n)
{
    if (n == 0 || n >= cap)
        return false;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return true;
}

vb_path_kind vb_path_parse(const char *path, vb_path *out)
{
    memset(out, 0, sizeof *out);
    if (!path || !*path) {
        out->why = "empty path";
        return VB_PATH_UNSAFE;
    }
    if (path[0] == '/') {
        out->why = "absolute path";
        return VB_PATH_UNSAFE;
    }
    /* Split into segments, checking every one for "..". */
    const char *seg[MAX_SEGS];
    size_t seglen[MAX_SEGS];
    size_t n = 0;
    bool too_many = false;
    const char *p = path;
    while (strncmp(p, "./", 2) == 0)
        p += 2;
    for (const char *s = p;;) {
        const char *e = strchr(s, '/');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        if (l == 2 && s[0] == '.' && s[1] == '.') {
            out->why = "path has a '..' segment";
            return VB_PATH_UNSAFE;
        }
        if (l > 0 && !(l == 1 && s[0] == '.')) {
            if (n < MAX_SEGS) {
                seg[n] = s;
                seglen[n] = l;
                n++;
            } else {
                too_many = true;
            }
        }
        if (!e)
            break;
        s = e + 1;
    }
    if (n == 0)
        return VB_PATH_OTHER;
    if (n == 2 && seglen[0] == 8 && memcmp(seg[0], "metadata", 8) == 0 &&
        seglen[1] == 7 && memcmp(seg[1], "version", 7) == 0)
        return VB_PATH_VERSION;
    if (!(seglen[0] == 9 && memcmp(seg[0], "resources", 9) == 0))
        return VB_PATH_OTHER;
    if (p[strlen(p) - 1] == '/')          /* a directory name */
        return VB_PATH_OTHER;
    if (too_many || n < 4) {
        out->why = "not a resources/<resource>/{namespaces/<ns>,cluster}/<name>.json path";
        return VB_PATH_DIR_LIKE;
    }
    size_t i = 2;
    if (!copy_seg(out->resource, sizeof out->resource, seg[1], seglen[1])) {
        out->why = "resource directory name too long";
        return VB_PATH_DIR_LIKE;
    }
    bool scope_here = (seglen[2] == 10 && memcmp(seg[2], "namespaces", 10) == 0) ||
                      (seglen[2] == 7 && memcmp(seg[2], "cluster", 7) == 0);
    if (!scope_here) {
        static const char suffix[] = "-preferredversion";
        size_t sl = sizeof suffix - 1, vl = seglen[2];
        if (vl > sl && memcmp(seg[2] + vl - sl, suffix, sl) == 0) {
            out->preferred = true;
            vl -= sl;
        }
        if (!copy_seg(out->version, sizeof out->version, seg[2], vl)) {
            out->why = "version directory name too long";
            return VB_PATH_DIR_LIKE;
        }
        i = 3;
    }
    size_t want;
    if (seglen[i] == 7 && memcmp(seg[i], "cluster", 7) == 0) {
        out->cluster = true;
        want = i + 2;
    } else if (seglen[i] == 10 && memcmp(seg[i], "namespaces", 10) == 0) {
        want = i + 3;
        if (n == want && !copy_seg(out->ns, sizeof out->ns, seg[i + 1], seglen[i + 1])) {
            out->why = "namespace name too long";
            return VB_PATH_DIR_LIKE;
        }
    } else {
        out->why = "expected 'namespaces' or 'cluster' under the resource directory";
        return VB_PATH_DIR_LIKE;
    }
    if (n != want) {
        out->why = "not a resources/<resource>/{namespaces/<ns>,cluster}/<name>.json path";
        return VB_PATH_DIR_LIKE;
    }
    const char *file = seg[n - 1];
    size_t fl = seglen[n - 1];
    if (fl <= 5 || memcmp(file + fl - 5, ".json", 5) != 0) {
        out->why = "not a .json file";
        return VB_PATH_DIR_LIKE;
    }
    if (!copy_seg(out->name, sizeof out->name, file, fl - 5)) {
        out->why = "object name too long";
        return VB_PATH_DIR_LIKE;
    }
    return VB_PATH_ITEM;
}
