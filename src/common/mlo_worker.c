/*
 * mlo_worker.c - the background-worker primitive (mlo_worker.h).
 */
#define _GNU_SOURCE
#include "mlo_worker.h"

#include "mlo.h"

#include <errno.h>
#include <string.h>

/* The default sleep: on the worker's condition variable. */
static void own_sleep(mlo_worker *w, int64_t ns) {
    pthread_mutex_lock(&w->lock);
    if (!w->woken && !mlo__worker_stopping(w)) {
        if (ns == MLO_WORKER_IDLE) {
            pthread_cond_wait(&w->cond, &w->lock);
        } else {
            struct timespec abs = mlo__clock_abs(mlo__clock_mono(NULL) + ns);
            pthread_cond_timedwait(&w->cond, &w->lock, &abs);
        }
    }
    w->woken = 0;
    pthread_mutex_unlock(&w->lock);
}

static void do_sleep(mlo_worker *w, int64_t ns) {
    if (ns <= 0)
        return;
    if (w->ops->sleep)
        w->ops->sleep(w->ctx, ns);
    else
        own_sleep(w, ns);
}

static void *worker_main(void *arg) {
    mlo_worker *w = arg;
    for (;;) {
        int64_t t = w->ops->run(w->ctx, w);
        if (t == MLO_WORKER_EXIT)
            break;
        do_sleep(w, t);
    }
    return NULL;
}

int mlo__worker_start(mlo_worker *w, const mlo_worker_ops *ops, void *ctx) {
    w->ops = ops;
    w->ctx = ctx;
    w->started = 0;
    w->woken = 0;
    atomic_init(&w->stop, 0);
    atomic_init(&w->deadline_ns, 0);
    pthread_mutex_init(&w->lock, NULL);
    mlo__clock_cond_init(&w->cond);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
        return -1;
    if (ops->name)
        pthread_setname_np(w->thread, ops->name);
    w->started = 1;
    return 0;
}

void mlo__worker_wake(mlo_worker *w) {
    if (w->ops && w->ops->wake) {
        w->ops->wake(w->ctx);
        return;
    }
    pthread_mutex_lock(&w->lock);
    w->woken = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

void mlo__worker_request_stop(mlo_worker *w, int64_t deadline_ns) {
    if (!w->ops)
        return;
    atomic_store_explicit(&w->deadline_ns, deadline_ns, memory_order_release);
    atomic_store_explicit(&w->stop, 1, memory_order_release);
    mlo__worker_wake(w);
    if (w->ops->wake) {
        /* a worker with its own sleep may also be pausing on ours */
        pthread_mutex_lock(&w->lock);
        w->woken = 1;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
    }
}

void mlo__worker_join(mlo_worker *w, int64_t deadline_ns) {
    if (!w->ops)
        return;
    mlo__worker_request_stop(w, deadline_ns);
    if (w->started)
        pthread_join(w->thread, NULL);
    w->started = 0;
}

void mlo__worker_stop(mlo_worker *w, int64_t deadline_ns) {
    if (!w->ops)
        return;
    mlo__worker_join(w, deadline_ns);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    w->ops = NULL;
}

int mlo__worker_overdue(const mlo_worker *w) {
    if (!mlo__worker_stopping(w))
        return 0;
    int64_t d = mlo__worker_deadline(w);
    return d && mlo__clock_mono(w->clock) >= d;
}

int mlo__worker_pause(mlo_worker *w, int64_t ns) {
    if (w->clock) {
        /* a virtual clock: time passes by the clock's own sleep */
        if (!mlo__worker_stopping(w))
            mlo__clock_sleep(w->clock, ns);
    } else {
        own_sleep(w, ns);
    }
    return mlo__worker_stopping(w);
}
