/*
 * mlo_gate.c - the flush gate (mlo_gate.h).
 */
#define _GNU_SOURCE
#include "mlo_gate.h"

#include "mlo.h"
#include "mlo_clock.h"

#include <errno.h>

void mlo__gate_init(mlo_gate *g) {
    pthread_mutex_init(&g->lock, NULL);
    mlo__clock_cond_init(&g->cond);
    g->next = g->done = 0;
}

void mlo__gate_destroy(mlo_gate *g) {
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->cond);
}

uint64_t mlo__gate_ticket(mlo_gate *g) {
    pthread_mutex_lock(&g->lock);
    uint64_t s = ++g->next;
    pthread_mutex_unlock(&g->lock);
    return s;
}

void mlo__gate_done(mlo_gate *g, uint64_t seq) {
    pthread_mutex_lock(&g->lock);
    if (seq > g->done) {
        g->done = seq;
        pthread_cond_broadcast(&g->cond);
    }
    pthread_mutex_unlock(&g->lock);
}

int mlo__gate_wait(mlo_gate *g, uint64_t seq, int64_t deadline_ns) {
    struct timespec abs = mlo__clock_abs(deadline_ns);
    int st = MLO_OK;
    pthread_mutex_lock(&g->lock);
    while (g->done < seq) {
        if (pthread_cond_timedwait(&g->cond, &g->lock, &abs) == ETIMEDOUT && g->done < seq) {
            st = MLO_ERR_TIMEOUT;
            break;
        }
    }
    pthread_mutex_unlock(&g->lock);
    return st;
}
