/*
 * mlo_worker.h - the background-worker primitive every thread of mlo is
 * written with (the writer, the sender, the in-flight request workers, the
 * artifact uploader), after sentry-native's bgworker: start, wake, stop
 * with a deadline.
 *
 * A worker runs ops->run over and over on its own thread.  run does one
 * round of work and says how long the thread may sleep before the next: 0
 * (at once), a number of ns, MLO_WORKER_IDLE (until woken), or
 * MLO_WORKER_EXIT.  mlo__worker_wake ends a sleep early (a wake that comes
 * while run is working is kept, so the next sleep returns at once: no lost
 * wake-up).  mlo__worker_stop asks the worker to finish with a deadline
 * (run reads mlo__worker_stopping/mlo__worker_deadline and decides what
 * finishing means: the writer empties its queue, the sender stops at the
 * deadline or when caught up), wakes it and joins it.  A worker that needs
 * its own kind of sleep (the writer sleeps on the event queue, so that log
 * calls never pay for a wake-up system call) passes ops->sleep and
 * ops->wake; otherwise the worker sleeps on its own condition variable.
 *
 * "Flush with a timeout" is the gate of mlo_gate.h that the work passes.
 *
 * Threads: start/stop from one controlling thread; wake and stopping from
 * any.
 */
#ifndef MLO_WORKER_H
#define MLO_WORKER_H

#include "mlo_clock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define MLO_WORKER_IDLE INT64_MAX
#define MLO_WORKER_EXIT ((int64_t)-1)

typedef struct mlo_worker mlo_worker;

typedef struct mlo_worker_ops {
    const char *name; /* the thread's name (at most 15 characters) */
    /* One round of work: the sleep before the next round (ns, 0: at once),
     * MLO_WORKER_IDLE, or MLO_WORKER_EXIT. */
    int64_t (*run)(void *ctx, mlo_worker *w);
    /* Optional: sleep at most ns (MLO_WORKER_IDLE: no limit) unless woken,
     * and the matching wake (both or neither). */
    void (*sleep)(void *ctx, int64_t ns);
    void (*wake)(void *ctx);
} mlo_worker_ops;

struct mlo_worker {
    const mlo_worker_ops *ops;
    void *ctx;
    const mlo_clock *clock; /* deadlines of the default sleep are CLOCK_MONOTONIC */
    pthread_t thread;
    int started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int woken; /* a wake since the last sleep began, under lock */
    _Atomic int stop;
    _Atomic int64_t deadline_ns;
};

/* Starts the thread.  0, or -1 (no thread: the worker can still be
 * stopped, which does nothing). */
int mlo__worker_start(mlo_worker *w, const mlo_worker_ops *ops, void *ctx);
/* Ends the current or next sleep.  Any thread. */
void mlo__worker_wake(mlo_worker *w);
/* Asks the worker to finish by deadline_ns (CLOCK_MONOTONIC, 0: none) and
 * wakes it; does not wait. */
void mlo__worker_request_stop(mlo_worker *w, int64_t deadline_ns);
/* mlo__worker_request_stop, then joins the thread and frees the worker's
 * lock.  The controlling thread, once. */
void mlo__worker_stop(mlo_worker *w, int64_t deadline_ns);
/* mlo__worker_request_stop, then joins the thread; the worker can still be
 * woken (a no-op) until mlo__worker_stop frees it: for owners that must
 * silence other threads' wake-ups in between. */
void mlo__worker_join(mlo_worker *w, int64_t deadline_ns);
/* For run: 1 once a stop was asked for. */
static inline int mlo__worker_stopping(const mlo_worker *w) {
    /* acquire: pairs with request_stop's release; what the controller did
     * before asking (e.g. closing the queue) is visible */
    return atomic_load_explicit(&((mlo_worker *)w)->stop, memory_order_acquire);
}
/* For run: the stop deadline (0: none or not stopping). */
static inline int64_t mlo__worker_deadline(const mlo_worker *w) {
    return atomic_load_explicit(&((mlo_worker *)w)->deadline_ns, memory_order_acquire);
}
/* For run: 1 once stopping and the stop deadline has passed. */
int mlo__worker_overdue(const mlo_worker *w);
/* For run, mid-round: sleeps like the worker would (ns at most, woken
 * early by wake or stop).  Returns 1 when a stop was asked for. */
int mlo__worker_pause(mlo_worker *w, int64_t ns);

#endif /* MLO_WORKER_H */
