/*
 * mlo_env.h - the environment an engine runs in.
 *
 * The engines (the writer, the sender and its in-flight pool, the artifact
 * uploader, the registry calls, `sync`) never see the client.  They get an
 * mlo_env: the configuration, the statistics counters, error reporting
 * through the program's callback (rate-limited), the network deadline that
 * close sets, the clock and the transport maker (both in the config: tests
 * put a virtual clock and a scripted transport there).  A client owns one
 * for its whole life; `mlo sync` and the `mlo` tool make their own.
 *
 * Threads: everything here from any thread (counters and the deadline are
 * atomics; the callback is called on the reporting thread).
 */
#ifndef MLO_ENV_H
#define MLO_ENV_H

#include "mlo.h"
#include "mlo_clock.h"
#include "mlo_config.h"

#include <stdatomic.h>
#include <stdint.h>

#define MLO_STAT_COUNT 12

typedef struct mlo_env {
    const mlo_config *cfg;
    _Atomic uint64_t st[MLO_STAT_COUNT];
    /* network work (requests, retries, backoff) gives up at this
     * CLOCK_MONOTONIC time; 0 = never.  Set by close. */
    _Atomic int64_t abort_at_ns;
    /* the last attempt to reach the server could not connect (refused,
     * timed out); cleared by any answer.  A hint: mlo_start_run does not
     * wait for a server that is down. */
    _Atomic int net_down;
    /* requests are being retried: the warning was given (until one succeeds) */
    _Atomic int retrying;
    /* set before any engine starts (sync does): every retry, instead of one
     * warning per spell; code 0 when nothing answered (refused, not
     * resolved, reset, timed out), `what` ends in "; retry n of m in s" */
    void (*on_retry)(void *user, long code, const char *what);
    void *on_retry_user;
    /* error callback rate limiting: at most 20 messages a second */
    _Atomic int64_t err_window_s;
    _Atomic uint32_t err_in_window;
} mlo_env;

/* Zeroes e and points it at cfg (which must outlive it). */
void mlo__env_init(mlo_env *e, const mlo_config *cfg);

static inline void mlo__env_stat(mlo_env *e, mlo_stat which, uint64_t n) {
    /* relaxed: counters publish nothing but themselves */
    atomic_fetch_add_explicit(&e->st[which], n, memory_order_relaxed);
}
static inline uint64_t mlo__env_stat_get(const mlo_env *e, mlo_stat which) {
    return atomic_load_explicit(&((mlo_env *)e)->st[which], memory_order_relaxed);
}

/* Reports through the error callback (if any); rate_limited != 0: at most
 * 20 such messages a second (warnings and background errors; the counters
 * count them all). */
void mlo__env_report(mlo_env *e, int status, int rate_limited, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline const mlo_clock *mlo__env_clock(const mlo_env *e) {
    return e->cfg->clock;
}
static inline int64_t mlo__env_mono(const mlo_env *e) {
    return mlo__clock_mono(e->cfg->clock);
}
/* A deadline on the env's clock as a CLOCK_MONOTONIC one, for waits on a
 * condition variable (mlo__clock_abs): the same in production; with a test's
 * virtual clock, which may stand still, the time left is waited for real. */
static inline int64_t mlo__env_real_deadline(const mlo_env *e, int64_t deadline_ns) {
    int64_t left = deadline_ns - mlo__env_mono(e);
    return mlo__clock_mono(NULL) + (left > 0 ? left : 0);
}
static inline int64_t mlo__env_now_ms(const mlo_env *e) {
    return mlo__clock_now_ms(e->cfg->clock);
}
/* The network deadline (0 = none).  Acquire: pairs with close's release
 * store; close may set it while a request started earlier is in flight. */
static inline int64_t mlo__env_abort_at(const mlo_env *e) {
    return atomic_load_explicit(&((mlo_env *)e)->abort_at_ns, memory_order_acquire);
}
static inline void mlo__env_set_abort_at(mlo_env *e, int64_t deadline_ns) {
    atomic_store_explicit(&e->abort_at_ns, deadline_ns, memory_order_release);
}
static inline int mlo__env_net_down(const mlo_env *e) {
    return atomic_load_explicit(&((mlo_env *)e)->net_down, memory_order_relaxed);
}
static inline void mlo__env_set_net_down(mlo_env *e, int down) {
    /* relaxed: a hint, publishing nothing else */
    if (atomic_load_explicit(&e->net_down, memory_order_relaxed) != down)
        atomic_store_explicit(&e->net_down, down, memory_order_relaxed);
}
/* 1 once the network deadline has passed. */
static inline int mlo__env_aborted(const mlo_env *e) {
    int64_t ab = mlo__env_abort_at(e);
    return ab && mlo__env_mono(e) >= ab;
}

#endif /* MLO_ENV_H */
