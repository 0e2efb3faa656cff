/*
 * mlo_runs.c - a client's run table (mlo_runs.h).
 */
#define _GNU_SOURCE
#include "mlo_runs.h"

#include "mlo.h"
#include "mlo_clock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

int mlo__runs_init(mlo_runs *t) {
    memset(t, 0, sizeof *t);
    t->lid_heads = calloc(MLO_RUNS_LID_BUCKETS, sizeof *t->lid_heads);
    if (!t->lid_heads)
        return -1;
    pthread_mutex_init(&t->lock, NULL);
    mlo__clock_cond_init(&t->cond);
    return 0;
}

void mlo__runs_destroy(mlo_runs *t) {
    for (size_t i = 0; i < MLO_RUN_CHUNKS; i++) {
        mlo_run *chunk = atomic_load_explicit(&t->chunks[i], memory_order_relaxed);
        if (!chunk)
            break;
        for (size_t j = 0; j < MLO_RUN_CHUNK; j++) {
            free(atomic_load_explicit(&chunk[j].server_id, memory_order_relaxed));
            free(atomic_load_explicit(&chunk[j].experiment_id, memory_order_relaxed));
            atomic_store_explicit(&chunk[j].server_id, NULL, memory_order_relaxed);
            atomic_store_explicit(&chunk[j].experiment_id, NULL, memory_order_relaxed);
        }
    }
    free(t->lid_heads);
    t->lid_heads = NULL;
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->cond);
}

static uint32_t lid_bucket(const char *lid) {
    uint32_t h = 2166136261u;
    for (int i = 0; i < 32 && lid[i]; i++)
        h = (h ^ (unsigned char)lid[i]) * 16777619u;
    return h & (MLO_RUNS_LID_BUCKETS - 1);
}

mlo_run *mlo__runs_add(mlo_runs *t, struct mlo_client *owner, const char *lid, const char *sid,
                       const char *exp) {
    pthread_mutex_lock(&t->lock);
    uint32_t idx = t->n;
    mlo_run *chunk = NULL;
    if (idx < (uint32_t)MLO_RUN_CHUNK * MLO_RUN_CHUNKS) {
        chunk = atomic_load_explicit(&t->chunks[idx / MLO_RUN_CHUNK], memory_order_relaxed);
        if (!chunk) {
            chunk = calloc(MLO_RUN_CHUNK, sizeof *chunk);
            /* release: the zeroed chunk is visible to whoever loads the pointer */
            if (chunk)
                atomic_store_explicit(&t->chunks[idx / MLO_RUN_CHUNK], chunk, memory_order_release);
        }
    }
    mlo_run *r = NULL;
    char *sidc = sid ? strdup(sid) : NULL, *expc = exp ? strdup(exp) : NULL;
    if (chunk && (!sid || sidc) && (!exp || expc)) {
        r = &chunk[idx % MLO_RUN_CHUNK];
        r->index = idx;
        r->client = owner;
        snprintf(r->local_id, sizeof r->local_id, "%.32s", lid);
        atomic_store_explicit(&r->server_id, sidc, memory_order_relaxed);
        atomic_store_explicit(&r->experiment_id, expc, memory_order_relaxed);
        atomic_store_explicit(&r->create_status, MLO_OK, memory_order_relaxed);
        uint32_t b = lid_bucket(r->local_id);
        r->lid_next = t->lid_heads[b];
        t->lid_heads[b] = idx + 1;
        r->magic = MLO_RUN_MAGIC;
        t->n++;
    } else {
        free(sidc);
        free(expc);
    }
    pthread_mutex_unlock(&t->lock);
    return r;
}

mlo_run *mlo__runs_find(mlo_runs *t, const char *lid) {
    mlo_run *found = NULL;
    pthread_mutex_lock(&t->lock);
    if (t->lid_heads)
        for (uint32_t i = t->lid_heads[lid_bucket(lid)]; i;) {
            mlo_run *r = mlo__runs_get(t, i - 1);
            if (!strncmp(r->local_id, lid, 32)) {
                found = r;
                break;
            }
            i = r->lid_next;
        }
    pthread_mutex_unlock(&t->lock);
    return found;
}

/* Sets *slot to a copy of v if it is still NULL (release: the string is
 * complete before the pointer is seen). */
static void set_once(_Atomic(char *) *slot, const char *v) {
    if (!v || atomic_load_explicit(slot, memory_order_acquire))
        return;
    char *copy = strdup(v);
    char *expected = NULL;
    if (!copy || !atomic_compare_exchange_strong_explicit(
                     slot, &expected, copy, memory_order_release, memory_order_acquire))
        free(copy);
}

void mlo__runs_created(mlo_runs *t, const char *lid, const char *sid, const char *exp, int st) {
    mlo_run *r = mlo__runs_find(t, lid);
    if (!r)
        return;
    pthread_mutex_lock(&t->lock);
    if (st == MLO_OK) {
        set_once(&r->server_id, sid);
        set_once(&r->experiment_id, exp);
    } else {
        atomic_store_explicit(&r->create_status, st, memory_order_release);
    }
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

int mlo__runs_wait(mlo_runs *t, mlo_run *r, int64_t deadline_ns, const char **sid) {
    const char *s = mlo__runs_sid(r);
    int st = MLO_OK;
    if (!s) {
        struct timespec abs = mlo__clock_abs(deadline_ns);
        pthread_mutex_lock(&t->lock);
        while (!(s = mlo__runs_sid(r)) &&
               (st = atomic_load_explicit(&r->create_status, memory_order_acquire)) == MLO_OK &&
               !t->closed) {
            if (pthread_cond_timedwait(&t->cond, &t->lock, &abs) == ETIMEDOUT) {
                s = mlo__runs_sid(r);
                st = atomic_load_explicit(&r->create_status, memory_order_acquire);
                break;
            }
        }
        int closed = t->closed;
        pthread_mutex_unlock(&t->lock);
        if (!s && st == MLO_OK)
            st = closed ? MLO_ERR_CLOSED : MLO_ERR_TIMEOUT;
    }
    if (sid)
        *sid = s;
    return s ? MLO_OK : st;
}

void mlo__runs_close(mlo_runs *t) {
    pthread_mutex_lock(&t->lock);
    t->closed = 1;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

void mlo__runs_new_id(char out[33]) {
    unsigned char b[16];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t n = getrandom(b + got, sizeof b - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got < sizeof b) {
        /* no entropy source: time, pid and a counter are unique enough here */
        static _Atomic uint64_t ctr;
        uint64_t x = (uint64_t)mlo__clock_now_ms(NULL) ^ ((uint64_t)getpid() << 40);
        uint64_t y = (uint64_t)mlo__clock_mono(NULL) ^ atomic_fetch_add(&ctr, 1);
        memcpy(b, &x, 8);
        memcpy(b + 8, &y, 8);
    }
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[32] = 0;
}
