/* mlo_buf: growable byte buffer (see mlo_buf.h for the invariants).
 * Growth doubles the capacity (at least 64 bytes) so appending n bytes one
 * at a time costs O(n) amortised. */
#include "mlo_buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

void mlo__buf_init(mlo_buf *b) {
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void mlo__buf_free(mlo_buf *b) {
    free(b->data);
    mlo__buf_init(b);
}

int mlo__buf_grow(mlo_buf *b, size_t extra) {
    /* need = len + extra + 1 (the NUL), checked for overflow */
    if (extra > SIZE_MAX - 1 - b->len)
        return -1;
    size_t need = b->len + extra + 1;
    if (b->data && need <= b->cap)
        return 0;
    size_t cap = b->cap < 64 ? 64 : b->cap;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    if (!b->data)
        p[0] = '\0';
    b->data = p;
    b->cap = cap;
    return 0;
}

int mlo__buf_printf(mlo_buf *b, const char *fmt, ...) {
    va_list ap;
    char tmp[256];

    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof tmp)
        return mlo__buf_append(b, tmp, (size_t)n);

    /* Did not fit in the stack buffer: format again straight into b. */
    if (mlo__buf_reserve(b, (size_t)n) != 0)
        return -1;
    va_start(ap, fmt);
    int m = vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    if (m != n) {
        b->data[b->len] = '\0';
        return -1;
    }
    b->len += (size_t)n;
    return 0;
}

int mlo__buf_base64(mlo_buf *out, const void *p, size_t n) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *in = p;
    if (mlo__buf_reserve(out, (n + 2) / 3 * 4) != 0)
        return -1;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        char q[4] = {b64[(v >> 18) & 63], b64[(v >> 12) & 63], i + 1 < n ? b64[(v >> 6) & 63] : '=',
                     i + 2 < n ? b64[v & 63] : '='};
        mlo__buf_append(out, q, 4); /* reserved above: cannot fail */
    }
    return 0;
}

void mlo__buf_errf(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}
