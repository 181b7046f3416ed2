/* dir_stats.h - what a directory tree holds (entries, regular files, bytes),
 * read on this host without following symlinks: the DR storage host's view
 * of a volume's copy (nfs_rsync_sync state=inspect, failover checks).
 */
#ifndef OCPVDR_DIR_STATS_H
#define OCPVDR_DIR_STATS_H

typedef struct ds_stats {
    long long entries;   /* everything below dir (files, dirs, links, ...) */
    long long files;     /* regular files */
    long long dirs;      /* directories below dir */
    long long bytes;     /* sum of the regular files' sizes */
} ds_stats;

/* Walks the tree below `dir` (an existing directory; itself not counted).
 * Symlinks are counted as entries, never followed; the walk stays below dir
 * (openat on directory fds, O_NOFOLLOW).  0, or -1 with a malloc'd *err
 * naming the path that could not be read (st then holds what was counted). */
int ds_walk(const char *dir, ds_stats *st, char **err);

#endif
