/* mlo_buf: a small growable byte buffer, used by every module that builds
 * request bodies, URLs or messages.
 *
 * Invariants: data is NULL or a malloc'd block of cap bytes; len < cap
 * whenever data != NULL, and data[len] == '\0' after every call below, so
 * data can be used as a C string once anything was appended. A zeroed
 * struct (or mlo__buf_init) is an empty buffer. Not thread-safe: a buffer
 * belongs to one thread at a time.
 *
 * The append calls are static inline with an out-of-line slow path
 * (mlo__buf_grow) because they sit on the shipper's hot path. */
#ifndef MLO_BUF_H
#define MLO_BUF_H

#include <stddef.h>
#include <string.h>

typedef struct mlo_buf {
    char *data; /* NUL-terminated when len > 0 */
    size_t len;
    size_t cap;
} mlo_buf;

void mlo__buf_init(mlo_buf *b);
/* Frees the memory; the buffer is empty and reusable afterwards. */
void mlo__buf_free(mlo_buf *b);
/* Out-of-line slow path of mlo__buf_reserve: makes room for extra more bytes
 * plus the terminating NUL. 0 ok, -1 out of memory or size overflow (the
 * buffer is then unchanged). */
int mlo__buf_grow(mlo_buf *b, size_t extra);
/* Appends printf-style formatted text. 0 ok, -1 ENOMEM or format error. */
int mlo__buf_printf(mlo_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Formats a message into a caller's buffer err[errlen] (NULL or 0: nothing). */
void mlo__buf_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends n bytes of p as base64 (RFC 4648, with padding). 0 ok, -1 ENOMEM. */
int mlo__buf_base64(mlo_buf *b, const void *p, size_t n);

/* len = 0, keeps the memory. */
static inline void mlo__buf_reset(mlo_buf *b) {
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

/* Ensures extra more bytes (plus the NUL) fit without reallocation.
 * 0 ok, -1 ENOMEM. */
static inline int mlo__buf_reserve(mlo_buf *b, size_t extra) {
    if (b->data && extra < b->cap - b->len)
        return 0;
    return mlo__buf_grow(b, extra);
}

static inline int mlo__buf_append(mlo_buf *b, const void *p, size_t n) {
    if (mlo__buf_reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static inline int mlo__buf_appendc(mlo_buf *b, char c) {
    if (mlo__buf_reserve(b, 1) != 0)
        return -1;
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
    return 0;
}

static inline int mlo__buf_appends(mlo_buf *b, const char *s) {
    return mlo__buf_append(b, s, strlen(s));
}

#endif /* MLO_BUF_H */
