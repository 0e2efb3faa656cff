/*
 * mlo_kv.h - a growable array of string pairs (tags, the experiment cache).
 */
#ifndef MLO_KV_H
#define MLO_KV_H

#include <stddef.h>

typedef struct mlo_kv {
    char *key;
    char *value;
} mlo_kv;

/* Appends copies of k and v to *kv (growing *n).  0, or -1 out of memory
 * (*kv and *n unchanged). */
int mlo__kv_push(mlo_kv **kv, size_t *n, const char *k, const char *v);
/* The value of the first pair with key k, or NULL. */
const char *mlo__kv_get(const mlo_kv *kv, size_t n, const char *k);
void mlo__kv_free(mlo_kv *kv, size_t n);

#endif /* MLO_KV_H */
