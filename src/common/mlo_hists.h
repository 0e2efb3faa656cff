/*
 * mlo_hists.h - the histogram engine (mlo_hists.c): a client's set of
 * histograms, their intervals and summaries.  The public calls that check
 * run handles (mlo_histogram_new/free) are in calls/mlo_hist.c;
 * mlo_histogram_record is in mlo_hists.c (it needs no client).
 */
#ifndef MLO_HISTS_H
#define MLO_HISTS_H

#include "mlo.h"
#include "mlo_env.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define MLO_HIST_MAX_KEY 240 /* so that "<key>.count" fits MLflow's 250 */
#define MLO_HIST_MIN_INTERVAL_MS 100u
#define MLO_HIST_MAX_INTERVAL_MS 3600000u

struct mlo_client;

/* A client's histograms. */
typedef struct mlo_hists {
    pthread_mutex_t lock;
    struct mlo_histogram *head;
    mlo_env *env;
} mlo_hists;

/* The six metric suffixes of an interval: .p50 .p95 .p99 .max .count .rate */
extern const char *const mlo__hists_suffix[6];

/* Where an interval's metrics go: run index, key, value, step, timestamp.
 * Returns an mlo_status (the first failure is passed on). */
typedef int (*mlo_hists_emit_fn)(void *ctx, uint32_t run, const char *key, size_t klen,
                                 double value, int64_t step, int64_t ts_ms);

void mlo__hists_init(mlo_hists *set, mlo_env *env);
void mlo__hists_destroy(mlo_hists *set);
/* A new histogram of run `run` (index) in set, linked.  key: klen bytes,
 * checked by the caller.  NULL when out of memory. */
mlo_histogram_t *mlo__hists_create(mlo_hists *set, struct mlo_client *owner, uint32_t run,
                                   const char *key, size_t klen, int64_t interval_ns);
/* MLO_OK, MLO_ERR_INVALID_ARGUMENT (not a histogram) or MLO_ERR_CLOSED
 * (inherited across fork()). */
int mlo__hists_check(const mlo_histogram_t *h);
struct mlo_client *mlo__hists_owner(const mlo_histogram_t *h);
/* Takes h out of its set (the ticker never sees it again).  1, or 0 when it
 * was not in it. */
int mlo__hists_unlink(mlo_histogram_t *h);
/* An unlinked h: emits what is left (pending interval, then the current
 * one) and frees h.  Returns the first failure of emit. */
int mlo__hists_finish(mlo_histogram_t *h, mlo_hists_emit_fn emit, void *ctx);
/* The writer: emits every interval due at now_ns (CLOCK_MONOTONIC of the
 * env's clock); returns the ns until the next is due (INT64_MAX: none). */
int64_t mlo__hists_tick(mlo_hists *set, int64_t now_ns, mlo_hists_emit_fn emit, void *ctx);
/* Close: unlinks and finishes every histogram left. */
void mlo__hists_free_all(mlo_hists *set, mlo_hists_emit_fn emit, void *ctx);

#endif /* MLO_HISTS_H */
