/*
 * mlo_sync.h - `mlo sync` (mlo_sync.c): every local run and unsent event of
 * a store, uploaded.
 */
#ifndef MLO_SYNC_H
#define MLO_SYNC_H

#include <stddef.h>
#include <stdint.h>

/* How far a sync is: segment bytes, events and runs (a run is done once
 * its last unsent event is), each done and in total. */
typedef struct mlo_sync_progress {
    uint64_t bytes_done, bytes_total;
    uint64_t events_done, events_total;
    size_t runs_done, runs_total;
} mlo_sync_progress;

typedef struct mlo_sync_opts {
    const char *store_dir;
    const char *uri;  /* NULL: $MLFLOW_TRACKING_URI */
    int max_inflight; /* requests in flight, 1..16; 0: $MLO_MAX_INFLIGHT or the default */
    /* May be NULL.  progress: after the store is scanned and after each
     * stage the server acknowledged.  retry: one line per request the
     * server answered with a retryable status (5xx, 429, 408) or that
     * could not connect, before it is retried. */
    void (*progress)(void *ctx, const mlo_sync_progress *p);
    void (*retry)(void *ctx, const char *message);
    void *ctx;
} mlo_sync_opts;

/* Uploads every local run and unsent event of the store, then the
 * artifacts.  Statuses: MLO_OK; MLO_ERR_NETWORK when the server cannot be
 * reached (connection refused, name not resolved, no answer: within about
 * 10 s) or kept failing after the retries, MLO_ERR_TIMEOUT likewise;
 * MLO_ERR_SERVER_INVALID when it refused events or artifacts for good
 * (everything else uploaded); MLO_ERR_CONFIG, MLO_ERR_STORE, ...  A message
 * in err says what failed, that nothing is lost and how to go on. */
int mlo__sync_run(const mlo_sync_opts *o, char *err, size_t errlen);

/* mlo__sync_run with byte progress only (done, total). */
int mlo__sync_store(const char *store_dir, const char *uri,
                    void (*progress)(void *ctx, uint64_t done, uint64_t total), void *ctx,
                    char *err, size_t errlen);

#endif /* MLO_SYNC_H */
