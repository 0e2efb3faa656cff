/*
 * mlo_fs.c - see mlo_fs.h.
 */
#define _GNU_SOURCE
#include "mlo_fs.h"

#include "mlo_buf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int mlo__fs_write_all(int fd, const void *p, size_t n) {
    const char *q = p;
    while (n) {
        ssize_t w = write(fd, q, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        q += w;
        n -= (size_t)w;
    }
    return 0;
}

ssize_t mlo__fs_read_some(int fd, void *p, size_t n) {
    for (;;) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        return r;
    }
}

ssize_t mlo__fs_pread_full(int fd, void *buf, size_t n, uint64_t off) {
    size_t done = 0;
    while (done < n) {
        ssize_t k = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (k == 0)
            break;
        done += (size_t)k;
    }
    return (ssize_t)done;
}

int mlo__fs_pwrite_full(int fd, const void *buf, size_t n, uint64_t off) {
    size_t done = 0;
    while (done < n) {
        ssize_t k = pwrite(fd, (const char *)buf + done, n - done, (off_t)(off + done));
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (k == 0) {
            errno = ENOSPC;
            return -1;
        }
        done += (size_t)k;
    }
    return 0;
}

char *mlo__fs_read_file(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    mlo_buf b = {0};
    char tmp[4096];
    ssize_t n;
    while ((n = mlo__fs_read_some(fd, tmp, sizeof tmp)) > 0)
        if (mlo__buf_append(&b, tmp, (size_t)n) != 0) {
            errno = ENOMEM;
            n = -1;
            break;
        }
    int e = errno;
    close(fd);
    if (n < 0) {
        mlo__buf_free(&b);
        errno = e;
        return NULL;
    }
    if (!b.data && mlo__buf_reserve(&b, 1) != 0) {
        errno = ENOMEM;
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.data;
}

void mlo__fs_fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int mlo__fs_mkdir_p(const char *dir, mode_t mode) {
    char *p = strdup(dir);
    if (!p)
        return -1;
    for (char *q = p + 1; *q; q++) {
        if (*q == '/') {
            *q = 0;
            if (mkdir(p, mode) != 0 && errno != EEXIST) {
                int e = errno;
                free(p);
                errno = e;
                return -1;
            }
            *q = '/';
        }
    }
    int rc = mkdir(p, mode) != 0 && errno != EEXIST ? -1 : 0;
    int e = errno;
    free(p);
    errno = e;
    return rc;
}

/* ---- the walker ---------------------------------------------------------- */

#define WALK_DEPTH_MAX 256

typedef struct walker {
    mlo_walk *w;
    char *root; /* realpath of the directory */
    size_t root_len;
    mlo_buf rel;
    dev_t devs[WALK_DEPTH_MAX + 1];
    ino_t inos[WALK_DEPTH_MAX + 1];
    int depth;
} walker;

typedef struct dentry {
    char *key; /* name, plus '/' for a directory: sorting these orders full paths */
    int is_dir;
} dentry;

static int by_key(const void *a, const void *b) {
    return strcmp(((const dentry *)a)->key, ((const dentry *)b)->key);
}

static int inside(const walker *k, const char *p) {
    if (k->root_len == 1) /* the root directory "/" */
        return 1;
    return !strncmp(p, k->root, k->root_len) && (p[k->root_len] == '/' || !p[k->root_len]);
}

static int fail(walker *k, int e, const char *path) {
    k->w->err = e;
    snprintf(k->w->where, sizeof k->w->where, "%s", path ? path : k->root);
    snprintf(k->w->where_rel, sizeof k->w->where_rel, "%s", k->rel.data ? k->rel.data : "");
    return -1;
}

static int walk_dir(walker *k, int dfd, const char *real);

/* One entry of a directory; k->rel holds its relative path. */
static int walk_entry(walker *k, int dfd, const char *real, const char *name) {
    mlo_walk *w = k->w;
    char *child = NULL;
    if (asprintf(&child, "%s/%s", real, name) < 0)
        return fail(k, ENOMEM, real);
    const char *rel = k->rel.data;
    int rc = 0;
    struct stat sb;
    int nofollow = w->follow == MLO_WALK_FOLLOW_INSIDE ? AT_SYMLINK_NOFOLLOW : 0;
    if (fstatat(dfd, name, &sb, nofollow) != 0) {
        if (errno == ENOENT && !nofollow && w->skip) {
            struct stat lsb; /* followed: a link to nothing, or gone meanwhile */
            if (fstatat(dfd, name, &lsb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(lsb.st_mode))
                rc = w->skip(w->ctx, MLO_WALK_BROKEN, rel, child);
        } else if (errno != ENOENT) {
            rc = fail(k, errno, child);
        }
        free(child);
        return rc; /* vanished meanwhile: nothing to walk */
    }
    char *target = NULL; /* FOLLOW_INSIDE: where a link leads */
    const char *open_path = NULL;
    if (S_ISLNK(sb.st_mode)) {
        target = realpath(child, NULL);
        if (!target) {
            rc = w->skip ? w->skip(w->ctx, MLO_WALK_BROKEN, rel, child) : 0;
            goto out;
        }
        if (!inside(k, target)) {
            rc = w->skip ? w->skip(w->ctx, MLO_WALK_OUTSIDE, rel, child) : 0;
            goto out;
        }
        if (stat(target, &sb) != 0)
            goto out; /* gone meanwhile */
        open_path = target;
    }
    if (S_ISDIR(sb.st_mode)) {
        int cfd = open_path
                      ? open(open_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                      : openat(dfd, name,
                               O_RDONLY | O_DIRECTORY | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0));
        if (cfd < 0) {
            if (errno != ENOENT)
                rc = fail(k, errno, child);
            goto out;
        }
        rc = walk_dir(k, cfd, open_path ? open_path : child);
        close(cfd);
    } else if (S_ISREG(sb.st_mode)) {
        int ffd = open_path ? open(open_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
                            : openat(dfd, name,
                                     O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY |
                                         (nofollow ? O_NOFOLLOW : 0));
        struct stat fsb;
        if (ffd < 0) {
            if (errno != ENOENT)
                rc = fail(k, errno, child);
            goto out;
        }
        if (fstat(ffd, &fsb) != 0 || !S_ISREG(fsb.st_mode)) {
            close(ffd); /* replaced by something else since it was listed */
            goto out;
        }
        int fl = fcntl(ffd, F_GETFL);
        if (fl >= 0)
            (void)fcntl(ffd, F_SETFL, fl & ~O_NONBLOCK);
        rc = w->file(w->ctx, ffd, rel, child, (int64_t)fsb.st_size);
        close(ffd);
    } else {
        rc = w->skip ? w->skip(w->ctx, MLO_WALK_SPECIAL, rel, child) : 0;
    }
out:
    free(target);
    free(child);
    return rc;
}

static void free_entries(dentry *e, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(e[i].key);
    free(e);
}

/* The directory open as dfd (not closed here), whose real path is real and
 * relative path k->rel. */
static int walk_dir(walker *k, int dfd, const char *real) {
    mlo_walk *w = k->w;
    struct stat dsb;
    if (fstat(dfd, &dsb) != 0)
        return fail(k, errno, real);
    for (int i = 0; i < k->depth; i++)
        if (k->devs[i] == dsb.st_dev && k->inos[i] == dsb.st_ino)
            return w->skip ? w->skip(w->ctx, MLO_WALK_CYCLE, k->rel.data, real) : 0;
    if (k->depth > w->max_depth)
        return w->skip ? w->skip(w->ctx, MLO_WALK_TOO_DEEP, k->rel.data, real) : 0;
    int dup_fd = dup(dfd);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!d) {
        int e = errno;
        if (dup_fd >= 0)
            close(dup_fd);
        return fail(k, e, real);
    }
    rewinddir(d);
    dentry *ents = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno)
                rc = fail(k, errno, real);
            break;
        }
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        int is_dir = 0;
        struct stat sb;
        int nofollow = w->follow == MLO_WALK_FOLLOW_INSIDE ? AT_SYMLINK_NOFOLLOW : 0;
        if (fstatat(dfd, de->d_name, &sb, nofollow) == 0)
            is_dir = S_ISDIR(sb.st_mode);
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 32;
            dentry *ne = realloc(ents, nc * sizeof *ne);
            if (!ne) {
                rc = fail(k, ENOMEM, real);
                break;
            }
            ents = ne;
            cap = nc;
        }
        size_t l = strlen(de->d_name);
        char *key = malloc(l + 2);
        if (!key) {
            rc = fail(k, ENOMEM, real);
            break;
        }
        memcpy(key, de->d_name, l);
        key[l] = is_dir ? '/' : 0;
        key[l + 1] = 0;
        ents[n].key = key;
        ents[n++].is_dir = is_dir;
    }
    closedir(d);
    if (rc == 0 && n > 1)
        qsort(ents, n, sizeof *ents, by_key);
    k->devs[k->depth] = dsb.st_dev;
    k->inos[k->depth] = dsb.st_ino;
    k->depth++;
    size_t base = k->rel.len;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t kl = strlen(ents[i].key);
        if (ents[i].is_dir)
            ents[i].key[--kl] = 0; /* the name again */
        k->rel.len = base;
        if (k->rel.data)
            k->rel.data[base] = 0;
        if ((base && mlo__buf_appendc(&k->rel, '/') != 0) ||
            mlo__buf_append(&k->rel, ents[i].key, kl) != 0) {
            rc = fail(k, ENOMEM, real);
            break;
        }
        if (w->accept) {
            char *child = NULL;
            if (asprintf(&child, "%s/%s", real, ents[i].key) < 0) {
                rc = fail(k, ENOMEM, real);
                break;
            }
            int take = w->accept(w->ctx, k->rel.data, ents[i].key, child) == 0;
            free(child);
            if (!take)
                continue;
        }
        rc = walk_entry(k, dfd, real, ents[i].key);
    }
    k->rel.len = base;
    if (k->rel.data)
        k->rel.data[base] = 0;
    k->depth--;
    free_entries(ents, n);
    return rc;
}

int mlo__fs_walk(mlo_walk *w, const char *path) {
    walker k = {.w = w};
    mlo__buf_init(&k.rel);
    if (w->max_depth > WALK_DEPTH_MAX - 1)
        w->max_depth = WALK_DEPTH_MAX - 1;
    w->err = 0;
    w->where[0] = w->where_rel[0] = 0;
    int rc;
    k.root = realpath(path, NULL);
    int fd = k.root ? open(k.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (!k.root || fd < 0) {
        rc = fail(&k, errno, path);
    } else {
        k.root_len = strlen(k.root);
        if (mlo__buf_reserve(&k.rel, 1) != 0)
            rc = fail(&k, ENOMEM, path);
        else
            rc = walk_dir(&k, fd, k.root);
    }
    if (fd >= 0)
        close(fd);
    free(k.root);
    mlo__buf_free(&k.rel);
    return rc;
}
