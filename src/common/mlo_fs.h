/*
 * mlo_fs.h - small file-system helpers every stage needs once: whole
 * reads and writes that survive EINTR and short transfers, a directory
 * fsync, mkdir -p, reading a small file, and the directory walker of
 * artifacts and dataset digests.
 *
 * Threads: any; nothing here keeps state between calls.
 */
#ifndef MLO_FS_H
#define MLO_FS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* write(2) until all n bytes are written.  0, or -1 with errno. */
int mlo__fs_write_all(int fd, const void *p, size_t n);
/* read(2) retrying EINTR/EAGAIN: bytes read, 0 at the end, -1 with errno. */
ssize_t mlo__fs_read_some(int fd, void *p, size_t n);
/* pread(2) of the whole range: bytes read (< n only at the end of the
 * file), or -1 with errno. */
ssize_t mlo__fs_pread_full(int fd, void *buf, size_t n, uint64_t off);
/* pwrite(2) of the whole range.  0, or -1 with errno (ENOSPC for a write
 * that made no progress). */
int mlo__fs_pwrite_full(int fd, const void *buf, size_t n, uint64_t off);
/* The whole file, NUL-terminated, malloc'd; *len (may be NULL) gets its
 * length.  NULL with errno on failure. */
char *mlo__fs_read_file(const char *path, size_t *len);
/* fsync of a directory, so a rename or create in it is durable.  Best effort. */
void mlo__fs_fsync_dir(const char *dir);
/* mkdir -p with mode for every directory created.  0, or -1 with errno. */
int mlo__fs_mkdir_p(const char *dir, mode_t mode);

#endif /* MLO_FS_H */
