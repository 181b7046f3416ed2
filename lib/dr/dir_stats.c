/* dir_stats.c - counts a directory tree's entries and bytes on this host
 * without following symlinks (see dir_stats.h).  Descends by directory file
 * descriptors (openat with O_NOFOLLOW), so a symlink or a rename during the
 * walk can never lead it outside the tree.
 */
#include "dir_stats.h"
#include "xstr.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DS_MAX_DEPTH 256

static int walk_fd(int fd, const char *path, int depth, ds_stats *st, char **err)
{
    if (depth > DS_MAX_DEPTH) {
        xerr_set(err, "%s: more than %d directory levels", path, DS_MAX_DEPTH);
        close(fd);
        return -1;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        xerr_set(err, "%s: cannot read the directory: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        st->entries++;
        struct stat sb;
        if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT)           /* gone meanwhile */
                continue;
            xerr_set(err, "%s/%s: %s", path, e->d_name, strerror(errno));
            rc = -1;
            break;
        }
        if (S_ISREG(sb.st_mode)) {
            st->files++;
            st->bytes += (long long)sb.st_size;
        } else if (S_ISDIR(sb.st_mode)) {
            st->dirs++;
            int cfd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            char *cpath = xfmt("%s/%s", path, e->d_name);
            if (cfd < 0) {
                xerr_set(err, "%s: cannot open the directory: %s", cpath ? cpath : path,
                         strerror(errno));
                rc = -1;
            } else {
                rc = walk_fd(cfd, cpath ? cpath : path, depth + 1, st, err);
            }
            free(cpath);
            if (rc < 0)
                break;
        }
        errno = 0;
    }
    if (rc == 0 && errno) {
        xerr_set(err, "%s: cannot read the directory: %s", path, strerror(errno));
        rc = -1;
    }
    closedir(d);
    return rc;
}

int ds_walk(const char *dir, ds_stats *st, char **err)
{
    memset(st, 0, sizeof *st);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        xerr_set(err, "%s: cannot open the directory: %s", dir, strerror(errno));
        return -1;
    }
    return walk_fd(fd, dir, 0, st, err);
}
