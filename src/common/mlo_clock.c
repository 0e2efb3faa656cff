/*
 * mlo_clock.c - the out-of-line part of mlo_clock.h: sleeping.
 */
#define _GNU_SOURCE
#include "mlo_clock.h"

void mlo__clock_sleep(const mlo_clock *c, int64_t ns) {
    if (ns <= 0)
        return;
    if (c) {
        c->sleep_ns(c->ctx, ns);
        return;
    }
    struct timespec ts = {(time_t)(ns / MLO_NS_PER_S), (long)(ns % MLO_NS_PER_S)};
    nanosleep(&ts, NULL);
}

void mlo__clock_cond_init(pthread_cond_t *c) {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
}
