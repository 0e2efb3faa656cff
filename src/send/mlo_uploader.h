/*
 * mlo_uploader.h - the artifact uploader (mlo_uploader.c).
 */
#ifndef MLO_UPLOADER_H
#define MLO_UPLOADER_H

#include "mlo_env.h"
#include "mlo_runs.h"
#include "mlo_store.h"

#include <stddef.h>
#include <stdint.h>

typedef struct mlo_uploader mlo_uploader;
typedef struct mlo_art_stream mlo_art_stream;

/* Starts the uploader of a client with a store and a tracking URI: its own
 * staged artifacts (handed over) and those of the dead processes the store
 * claimed.  runs: the client's run table (server ids).  NULL when out of
 * memory. */
mlo_uploader *mlo__uploader_start(mlo_env *env, mlo_store *st, mlo_runs *runs);
/* The log call: files ids[0..n) (ids "<procid>-<n>", staged with their
 * manifests) of run lid are to be uploaded; streams (NULL, or NULL
 * entries) the uploads that followed their copies
 * (mlo__uploader_stream_open), taken over on success.  MLO_OK or
 * MLO_ERR_NO_MEMORY. */
int mlo__uploader_hand_over(mlo_uploader *u, const char *lid, const char *const *ids,
                            mlo_art_stream *const *streams, size_t n);
/* Uploading a large file while the log call copies it into its blob (the
 * upload starts with the copy instead of after it).  The log call, once the
 * copy of a file (blob id, run lid, artifact path rel, the blob open as fd:
 * duplicated) is under way, with `copied` of the source's `size` bytes
 * done: the uploader may start sending, reading the blob only as far as
 * it is copied.  NULL: not offered (no uploader, multipart size, out of
 * memory): the usual hand-over only.  Then _grow as the copy goes on, and
 * _copied (ok: the copy succeeded, at `size` bytes) when it ends, before
 * the manifest is written.  The handle then goes with the hand-over (the
 * upload is not repeated when the blob was sent whole and is unchanged),
 * or, if the call fails before, to _release.  An upload not yet started
 * when the copy ends is not started (the usual way is as fast then); one
 * under way when the copy fails is stopped. */
mlo_art_stream *mlo__uploader_stream_open(mlo_uploader *u, const char *lid, const char *id,
                                          const char *rel, int fd, int64_t size, int64_t copied);
void mlo__uploader_stream_grow(mlo_uploader *u, mlo_art_stream *s, int64_t copied);
void mlo__uploader_stream_copied(mlo_uploader *u, mlo_art_stream *s, int ok, int64_t size);
void mlo__uploader_stream_release(mlo_uploader *u, mlo_art_stream *s);
/* Whether blob id is being uploaded now (followed or not), with how far its
 * body went (*sent: the file offset handed to the connection): the log call
 * weighs waiting for it against computing the digest. */
int mlo__uploader_progress(mlo_uploader *u, const char *id, int64_t *sent);
/* The log call, once it has computed the SHA-256 of staged file id (its
 * manifest was handed over with the digest pending, so the upload could start
 * at once): writes it into the manifest (mlo__manifest_set_sha), serialised
 * with a refusal for good that turns the manifest into <id>.failed meanwhile.
 * u may be NULL (no uploader: the manifest is written directly).  0 / -1
 * (errno). */
int mlo__uploader_set_sha(mlo_uploader *u, const char *dir, const char *id, const char hex[65],
                          int do_fsync);
/* Closes fd (a staged blob the log call read) on the uploader's thread:
 * when the blob was sent and unlinked meanwhile, the last close frees its
 * pages, which for a large file takes a while the log call should not
 * spend.  u NULL: closed at once. */
void mlo__uploader_close_later(mlo_uploader *u, int fd);
/* mlo_client_flush: waits until every artifact handed over before the call
 * is uploaded, refused for good, or parked (its run's artifact store is not
 * proxied), or deadline_ns (CLOCK_MONOTONIC) passes.  MLO_OK or
 * MLO_ERR_TIMEOUT; MLO_OK at once for NULL. */
int mlo__uploader_flush(mlo_uploader *u, int64_t deadline_ns);
/* Waits until no artifact of the run with local id lid is pending, or
 * deadline_ns passes.  MLO_OK, MLO_ERR_TIMEOUT, MLO_ERR_ARTIFACTS_NOT_PROXIED,
 * or the status with which an artifact of the run under path (NULL or "":
 * any) was refused for good.  MLO_OK at once for NULL. */
int mlo__uploader_wait_run(mlo_uploader *u, const char *lid, const char *path, int64_t deadline_ns);
/* mlo_client_close, after the events' flush: waits as mlo__uploader_flush,
 * then stops the worker and frees u; what is left stays in the store.
 * MLO_OK or MLO_ERR_TIMEOUT. */
int mlo__uploader_stop(mlo_uploader *u, int64_t deadline_ns);
/* `mlo sync`, after the segments: uploads every artifact of the dead
 * processes the store has claimed (pending and failed ones) to env's
 * tracking URI.  MLO_OK, or the first failure with a message in err (what
 * was not uploaded stays in the store). */
int mlo__uploader_sync(mlo_env *env, mlo_store *st, char *err, size_t errlen);

#endif /* MLO_UPLOADER_H */
