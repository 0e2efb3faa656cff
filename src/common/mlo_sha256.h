/*
 * mlo_sha256.h - SHA-256, the one place mlo talks to libcrypto (artifact
 * checksums, dataset digests).
 *
 * Threads: a context belongs to one thread; the functions are reentrant.
 */
#ifndef MLO_SHA256_H
#define MLO_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct mlo_sha256 mlo_sha256;

/* Process-wide set-up of the crypto library, once; call before threads that
 * may use it start (mlo_client_open does). */
void mlo__sha256_global_init(void);
/* A new context, or NULL (out of memory). */
mlo_sha256 *mlo__sha256_new(void);
/* 0, or -1 (the library failed). */
int mlo__sha256_update(mlo_sha256 *s, const void *p, size_t n);
/* The digest: 32 bytes into out (may be NULL) and/or 64 lower-case hex + NUL
 * into hex (may be NULL).  The context is reset for a new digest.  0 / -1. */
int mlo__sha256_final(mlo_sha256 *s, unsigned char out[32], char hex[65]);
void mlo__sha256_free(mlo_sha256 *s);
/* SHA-256 of fd's content from offset 0 (pread in 1 MiB chunks, the fd's
 * offset untouched): hex, *size = bytes read.  0; -1 on a read error
 * (errno) or ENOMEM. */
int mlo__sha256_fd(int fd, char hex[65], int64_t *size);
/* Lower-case hex of n bytes into out (2n characters + NUL). */
void mlo__sha256_hex(const unsigned char *d, size_t n, char *out);

#endif /* MLO_SHA256_H */
