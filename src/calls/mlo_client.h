/*
 * mlo_client.h - what the public calls outside mlo_client.c (histograms,
 * artifacts, datasets, the registry) may ask of a client and its runs.
 * struct mlo_client itself is private to mlo_client.c.
 */
#ifndef MLO_CLIENT_H
#define MLO_CLIENT_H

#include "mlo.h"
#include "mlo_env.h"
#include "mlo_hists.h"
#include "mlo_runs.h"

#include <stddef.h>
#include <stdint.h>

typedef struct mlo_client mlo_client;
struct mlo_store;
struct mlo_uploader;
struct mlo_sysmetrics;

/* MLO_OK when the handle may be used: else MLO_ERR_CLOSED (closed, closing,
 * or inherited across fork) or MLO_ERR_INVALID_ARGUMENT (NULL, not a handle).
 * Any thread. */
int mlo__client_check(const mlo_client *c);
int mlo__client_run_check(const mlo_run *r);

mlo_env *mlo__client_env(const mlo_client *c);
mlo_runs *mlo__client_runs(mlo_client *c);
mlo_hists *mlo__client_hists(mlo_client *c);
/* The store, or NULL (durability off, or the store was unusable). */
struct mlo_store *mlo__client_store(mlo_client *c);
/* The artifact uploader, or NULL (no store or no tracking URI). */
struct mlo_uploader *mlo__client_uploader(mlo_client *c);
/* The system-metrics sampler (tests drive its rounds with cfg->sys_manual). */
struct mlo_sysmetrics *mlo__client_sysmetrics(mlo_client *c);
/* Ends the writer's sleep (a new due time, a record that should not wait). */
void mlo__client_wake(mlo_client *c);

/* Pushes a record of `type` (mlo_rec_type) for run r with the client's full
 * policy (a drop is counted and reported), as the log calls do.  No
 * validation.  Returns an mlo_status. */
int mlo__client_run_push(mlo_run *r, int type, const char *key, size_t klen, const char *val,
                         size_t vlen, int64_t ts, int64_t step, double value);
/* A metric of run index `run`, pushed as above (mlo_hists_emit_fn: ctx is
 * the client). */
int mlo__client_emit_metric(void *ctx, uint32_t run, const char *key, size_t klen, double value,
                            int64_t step, int64_t ts_ms);

#endif /* MLO_CLIENT_H */
