/*
 * mlo_sync.h - `mlo sync` (mlo_sync.c): every local run and unsent event of
 * a store, uploaded.
 */
#ifndef MLO_SYNC_H
#define MLO_SYNC_H

#include <stddef.h>
#include <stdint.h>

/* Uploads every local run and unsent event of the store at store_dir to uri
 * (NULL: $MLFLOW_TRACKING_URI), then the artifacts.  progress (may be NULL)
 * gets segment bytes done and in total.  MLO_OK, or a status with a message
 * in err. */
int mlo__sync_store(const char *store_dir, const char *uri,
                    void (*progress)(void *ctx, uint64_t done, uint64_t total), void *ctx,
                    char *err, size_t errlen);

#endif /* MLO_SYNC_H */
