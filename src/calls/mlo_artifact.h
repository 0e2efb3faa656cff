/*
 * mlo_artifact.h - the staging copy of mlo_log_artifact (mlo_artifact.c),
 * reachable by its tests.
 *
 * Threads: any; nothing is shared.
 */
#ifndef MLO_ARTIFACT_H
#define MLO_ARTIFACT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* How a file may be copied into its blob, tried in this order. */
enum {
    MLO_COPY_CLONE = 1,  /* ioctl FICLONE: a reflink, no bytes copied */
    MLO_COPY_RANGE = 2,  /* copy_file_range: the kernel copies */
    MLO_COPY_BUFFER = 4, /* pread + pwrite through the caller's buffer */
    MLO_COPY_ALL = 7,
};

/*
 * Copies the file open as src (from offset 0 to its end) into dst (empty,
 * open for reading and writing) by the first of `methods` that works: a
 * clone; else copy_file_range, bufsz bytes at a time; else, from where
 * copy_file_range could not go on (EXDEV, EINVAL, EOPNOTSUPP, ENOSYS, EBADF,
 * or an end it reports where pread still finds bytes), pread + pwrite
 * through buf.  When every byte went through buf, its SHA-256 is computed in
 * the same pass into hex; else hex is "" (mlo__artifact_hash, later).  src's
 * file offset is not moved.  progress (may be NULL) is called with the bytes
 * copied so far after every piece copied by copy_file_range or the buffer
 * (not after a clone): dst holds them, final, from then on.
 * Returns 0 (*size = bytes, *used = the methods that copied something: 0
 * for an empty file unless cloned), or -1 with errno and *side = 0 when
 * reading src failed, 1 when writing dst did.
 */
int mlo__artifact_copy(int src, int dst, unsigned methods, unsigned char *buf, size_t bufsz,
                       char hex[65], int64_t *size, unsigned *used, int *side,
                       void (*progress)(void *ctx, int64_t copied), void *ctx);

/*
 * The SHA-256 of the staged blob open as fd (read through buf), or of
 * mem[0..len) when mem is not NULL, into hex.  With sent != NULL, sent(ctx)
 * is asked before the first piece and then every few MiB: non-zero (the
 * uploader has sent the blob, no digest is needed) stops it, returning 1.
 * 0, 1, or -1 with errno.
 */
int mlo__artifact_hash(int fd, const void *mem, size_t len, unsigned char *buf, size_t bufsz,
                       char hex[65], int (*sent)(void *ctx), void *ctx);

/* Tests only (NULL otherwise): called by the log call after each piece of
 * the copy of a file whose upload may follow the copy, with the source's
 * descriptor, the bytes copied (offered to the upload already) and the
 * source's size when the copy began.
 * Lets a test pause the copy, or change the source under it. */
extern void (*mlo__artifact_piece_hook)(int src, int64_t copied, int64_t size);
/* Tests only: the SHA-256 speed (bytes/s) the log call reckons with when it
 * weighs waiting for an upload under way against computing the digest (0:
 * what it measured, else its default), and how many digests log calls computed after the
 * hand-over (not given up because the upload was done first). */
extern double mlo__artifact_hash_bps;
extern _Atomic uint64_t mlo__artifact_late_digests;
/* The SHA-256 speed (bytes/s) the log calls of this process measured on
 * their last digest of a large blob, which they reckon with from then on;
 * 0 before any. */
int64_t mlo__artifact_hash_rate(void);

#endif /* MLO_ARTIFACT_H */
