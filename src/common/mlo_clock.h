/*
 * mlo_clock.h - time, read and slept through one seam.
 *
 * Every module that reads the time or sleeps does it through an mlo_clock:
 * NULL means the system's (CLOCK_MONOTONIC, CLOCK_REALTIME, nanosleep), and
 * tests pass a virtual clock whose sleep only advances the time, so retry
 * and backoff rules run in microseconds (tests/mlo_fake_transport.c).  The
 * NULL case is inlined: the log calls read the real-time clock through here
 * at the cost of clock_gettime alone.
 *
 * Threads: the system clock from any thread; a virtual clock is the test's
 * business (tests/mlo_fake_transport.c's is thread-safe).
 */
#ifndef MLO_CLOCK_H
#define MLO_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#define MLO_NS_PER_MS 1000000LL
#define MLO_NS_PER_S 1000000000LL

typedef struct mlo_clock {
    int64_t (*mono_ns)(void *ctx);           /* monotonic, ns */
    int64_t (*real_ms)(void *ctx);           /* wall clock, ms since the epoch */
    void (*sleep_ns)(void *ctx, int64_t ns); /* sleeps (a virtual clock: advances) */
    void *ctx;
} mlo_clock;

static inline int64_t mlo__clock_mono(const mlo_clock *c) {
    if (c)
        return c->mono_ns(c->ctx);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * MLO_NS_PER_S + ts.tv_nsec;
}

static inline int64_t mlo__clock_now_ms(const mlo_clock *c) {
    if (c)
        return c->real_ms(c->ctx);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps ns (<= 0: returns at once); EINTR ends it early, which callers
 * that loop on a deadline do not mind. */
void mlo__clock_sleep(const mlo_clock *c, int64_t ns);

/* Initialises a condition variable whose timed waits take CLOCK_MONOTONIC
 * deadlines (mlo__clock_abs). */
void mlo__clock_cond_init(pthread_cond_t *c);

/* A CLOCK_MONOTONIC deadline as the struct timespec pthread_cond_timedwait
 * wants (condition variables set up with pthread_condattr_setclock). */
static inline struct timespec mlo__clock_abs(int64_t mono_ns) {
    struct timespec ts = {(time_t)(mono_ns / MLO_NS_PER_S), (long)(mono_ns % MLO_NS_PER_S)};
    return ts;
}

#endif /* MLO_CLOCK_H */
