/*
 * mlo_fs.c - see mlo_fs.h.
 */
#define _GNU_SOURCE
#include "mlo_fs.h"

#include "mlo_buf.h"

#include <errno.h>
#include <fcntl.h>
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
