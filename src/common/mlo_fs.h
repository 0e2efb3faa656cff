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

/*
 * The directory walker (artifacts, dataset digests): every regular file
 * below a directory, in bytewise order of its path relative to that
 * directory ('/'-separated: a directory's entries sort as "name/"), each
 * handed over open.
 *
 * Symbolic links are followed everywhere (MLO_WALK_FOLLOW_ALL) or only when
 * realpath() puts their target inside the walked directory
 * (MLO_WALK_FOLLOW_INSIDE).  What is not walked goes to skip(): a link out
 * of the directory or to nothing, a directory already being walked (a
 * cycle, by device and inode), one deeper than max_depth, a FIFO, socket or
 * device.  An entry that vanished while the walk went on is passed over.
 */
enum {
    MLO_WALK_FOLLOW_ALL = 0,
    MLO_WALK_FOLLOW_INSIDE = 1,
};
enum {
    MLO_WALK_OUTSIDE = 1, /* a link leading out of the directory (FOLLOW_INSIDE) */
    MLO_WALK_BROKEN,      /* a link to nothing */
    MLO_WALK_CYCLE,       /* a directory that leads back to one being walked */
    MLO_WALK_TOO_DEEP,    /* deeper than max_depth */
    MLO_WALK_SPECIAL,     /* FIFO, socket, device */
};
typedef struct mlo_walk {
    int follow;    /* MLO_WALK_FOLLOW_* */
    int max_depth; /* directory levels below the root, at most 256 */
    /* Optional: whether to take the entry `name` whose relative path would
     * be rel; non-zero passes over it (the callback says why itself). */
    int (*accept)(void *ctx, const char *rel, const char *name, const char *path);
    /* Per regular file: fd open for reading (closed after the call), rel,
     * path (the real path of its directory + its name: for messages), size
     * (fstat).  Non-zero stops the walk; mlo__fs_walk returns it. */
    int (*file)(void *ctx, int fd, const char *rel, const char *path, int64_t size);
    /* Per entry not walked (MLO_WALK_*).  Non-zero stops the walk. */
    int (*skip)(void *ctx, int why, const char *rel, const char *path);
    void *ctx;
    /* When mlo__fs_walk returns -1: errno, and the path (with rel) where. */
    int err;
    char where[600];
    char where_rel[600];
} mlo_walk;
/* Walks the directory at path (its real path is the root).  0 when done,
 * -1 on a failure (w->err, w->where: ENOMEM, a directory or file that cannot
 * be opened or read), or the non-zero value a callback stopped with. */
int mlo__fs_walk(mlo_walk *w, const char *path);

#endif /* MLO_FS_H */
