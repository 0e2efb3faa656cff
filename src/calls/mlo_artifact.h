/*
 * mlo_artifact.h - artifact staging and uploads (mlo_artifact.c), the hooks
 * the client calls, and the store functions they use (mlo_store.c).
 * Never installed.  mlo__artifacts_wait_run is in mlo_internal.h.
 */
#ifndef MLO_ARTIFACT_H
#define MLO_ARTIFACT_H

#include "mlo_internal.h"

/* mlo_client_open, first (before anything initialises curl or OpenSSL):
 * process-wide set-up, once. */
void mlo__artifacts_global_init(void);
/* mlo_client_open, last: starts the client's uploader thread when it has a
 * store and a tracking URI (else does nothing).  MLO_OK or MLO_ERR_NO_MEMORY. */
int mlo__artifacts_start(mlo_client *c);
/* mlo_client_flush: waits until every artifact this client staged before
 * the call is uploaded, refused for good, or parked (its run's artifact
 * store is not proxied), or deadline_ns (CLOCK_MONOTONIC) passes.  MLO_OK or
 * MLO_ERR_TIMEOUT; MLO_OK at once without an uploader. */
int mlo__artifacts_flush(mlo_client *c, int64_t deadline_ns);
/* mlo_client_close, after the events' flush: waits for the uploads as
 * mlo__artifacts_flush, then stops and joins the uploader; what is left
 * stays in the store.  MLO_OK or MLO_ERR_TIMEOUT. */
int mlo__artifacts_stop(mlo_client *c, int64_t deadline_ns);
/* mlo__store_sync, after the segments: uploads every artifact of the dead
 * processes the sync store has claimed (pending and failed ones) to the
 * client's tracking URI.  MLO_OK, or the first failure with a message in
 * err (what was not uploaded stays in the store). */
int mlo__artifacts_sync(mlo_client *c, mlo_store *s, char *err, size_t errlen);

/* ---- store functions for artifacts (mlo_store.c) ---- */
/* The store's directory (absolute). */
const char *mlo__store_dir(const mlo_store *s);
/* 1 when the files of procid belong to this store handle: its own procid,
 * or a dead process it claimed (adopted) when it was opened; else 0. */
int mlo__store_owns(const mlo_store *s, const char *procid);

#endif /* MLO_ARTIFACT_H */
