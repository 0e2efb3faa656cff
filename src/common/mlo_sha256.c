/*
 * mlo_sha256.c - SHA-256 over OpenSSL's EVP API: the only file of mlo that
 * includes an OpenSSL header.
 */
#define _GNU_SOURCE
#include "mlo_sha256.h"

#include "mlo_fs.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>

#define CHUNK (1u << 20)

struct mlo_sha256 {
    EVP_MD_CTX *md;
};

/* OpenSSL, when mlo is the first to initialise it, registers no atexit
 * cleanup: an exit() without mlo_client_close runs the atexit flush while
 * the uploader may still be hashing, and a cleaned-up libcrypto under it
 * would crash the exit (the memory is the OS's to take back). */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static void init_once(void) {
    OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
}
void mlo__sha256_global_init(void) {
    pthread_once(&once, init_once);
}

mlo_sha256 *mlo__sha256_new(void) {
    mlo_sha256 *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->md = EVP_MD_CTX_new();
    if (!s->md || EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1) {
        mlo__sha256_free(s);
        return NULL;
    }
    return s;
}

int mlo__sha256_update(mlo_sha256 *s, const void *p, size_t n) {
    return EVP_DigestUpdate(s->md, p, n) == 1 ? 0 : -1;
}

void mlo__sha256_hex(const unsigned char *d, size_t n, char *out) {
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[2 * n] = 0;
}

int mlo__sha256_final(mlo_sha256 *s, unsigned char out[32], char hex[65]) {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dl = 0;
    if (EVP_DigestFinal_ex(s->md, d, &dl) != 1 || dl != 32 ||
        EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1)
        return -1;
    if (out)
        for (int i = 0; i < 32; i++)
            out[i] = d[i];
    if (hex)
        mlo__sha256_hex(d, 32, hex);
    return 0;
}

void mlo__sha256_free(mlo_sha256 *s) {
    if (!s)
        return;
    EVP_MD_CTX_free(s->md);
    free(s);
}

int mlo__sha256_fd(int fd, char hex[65], int64_t *size) {
    *size = 0;
    mlo_sha256 *s = mlo__sha256_new();
    unsigned char *buf = malloc(CHUNK);
    if (!s || !buf) {
        mlo__sha256_free(s);
        free(buf);
        errno = ENOMEM;
        return -1;
    }
    int64_t off = 0;
    int rc = 0;
    for (;;) {
        ssize_t r = mlo__fs_pread_full(fd, buf, CHUNK, (uint64_t)off);
        if (r < 0) {
            rc = -1;
            break;
        }
        if (r == 0)
            break;
        if (mlo__sha256_update(s, buf, (size_t)r) != 0) {
            errno = ENOMEM;
            rc = -1;
            break;
        }
        off += r;
        if ((size_t)r < CHUNK)
            break;
    }
    if (rc == 0 && mlo__sha256_final(s, NULL, hex) != 0) {
        errno = ENOMEM;
        rc = -1;
    }
    mlo__sha256_free(s);
    free(buf);
    *size = off;
    return rc;
}
