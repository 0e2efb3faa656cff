/*
 * mlo_kv.c - see mlo_kv.h.
 */
#define _GNU_SOURCE
#include "mlo_kv.h"

#include <stdlib.h>
#include <string.h>

int mlo__kv_push(mlo_kv **tags, size_t *n, const char *k, const char *v) {
    mlo_kv *t = realloc(*tags, (*n + 1) * sizeof **tags);
    if (!t)
        return -1;
    *tags = t;
    t[*n].key = strdup(k);
    t[*n].value = strdup(v);
    if (!t[*n].key || !t[*n].value) {
        free(t[*n].key);
        free(t[*n].value);
        return -1;
    }
    (*n)++;
    return 0;
}

void mlo__kv_free(mlo_kv *tags, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(tags[i].key);
        free(tags[i].value);
    }
    free(tags);
}

const char *mlo__kv_get(const mlo_kv *kv, size_t n, const char *k) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(kv[i].key, k))
            return kv[i].value;
    return NULL;
}
