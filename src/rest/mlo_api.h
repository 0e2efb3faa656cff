/*
 * mlo_api.h - the MLflow REST calls mlo makes (mlo_api.c, with the artifact
 * calls of mlo_api_artifacts.c and the registry calls of
 * mlo_api_registry.c): requests built from MLflow's protobuf messages,
 * answers decoded and classified into mlo statuses.
 *
 * Threads: an mlo_api belongs to one thread at a time (it owns an mlo_http,
 * that is one transport and one connection).
 */
#ifndef MLO_API_H
#define MLO_API_H

#include "mlo.h"
#include "mlo_buf.h"
#include "mlo_env.h"
#include "mlo_kv.h"
#include "mlo_queue.h"

#include <stddef.h>
#include <stdint.h>

typedef struct mlo_api mlo_api; /* one per thread that sends */

typedef struct mlo_api_error {
    int status; /* mlo_status */
    long http_code;
    char error_code[48]; /* MLflow error_code, "" if none */
    char message[512];
} mlo_api_error;

/* An api object over env's configuration (tracking URI, auth, TLS, retries,
 * the transport maker and the clock): requests are counted in env's
 * statistics, retries reported through its callback, and every call gives up
 * at env's network deadline.  NULL when out of memory or without a tracking
 * URI. */
mlo_api *mlo__api_new(mlo_env *env);
void mlo__api_free(mlo_api *a);
/* Deadline for the calls of this api object (CLOCK_MONOTONIC ns, 0 = none). */
void mlo__api_set_deadline(mlo_api *a, int64_t deadline_ns);
/* From now on the artifact uploads of a (PUTs and multipart parts) set
 * *sent (relaxed) to the file offset up to which their body was handed to
 * the connection, for another thread to watch; NULL: no more. */
void mlo__api_watch_uploads(mlo_api *a, _Atomic int64_t *sent);

int mlo__api_get_experiment_by_name(mlo_api *a, const char *name, char **exp_id, mlo_api_error *e);
int mlo__api_create_experiment(mlo_api *a, const char *name, char **exp_id, mlo_api_error *e);
int mlo__api_create_run(mlo_api *a, const char *exp_id, const char *run_name, int64_t start_ms,
                        const mlo_kv *tags, size_t ntags, char **run_id, mlo_api_error *e);
int mlo__api_get_run(mlo_api *a, const char *run_id, char **exp_id, mlo_api_error *e);
/* runs/get: the run's experiment id and artifact URI (each may be NULL: not
 * wanted; both malloc'd). */
int mlo__api_get_run_info(mlo_api *a, const char *run_id, char **exp_id, char **artifact_uri,
                          mlo_api_error *e);
/* runs/log-inputs with one dataset; context (NULL or "": none) becomes the
 * input tag mlflow.data.context, as MLflow's log_input does. */
int mlo__api_log_inputs(mlo_api *a, const char *run_id, const char *name, const char *digest,
                        const char *source_type, const char *source, const char *context,
                        mlo_api_error *e);
int mlo__api_update_run(mlo_api *a, const char *run_id, int status, int64_t end_ms,
                        mlo_api_error *e);
/* runs/delete (MLflow keeps a deleted run restorable until gc). */
int mlo__api_delete_run(mlo_api *a, const char *run_id, mlo_api_error *e);
/* runs/set-tag. */
int mlo__api_set_tag(mlo_api *a, const char *run_id, const char *key, const char *value,
                     mlo_api_error *e);
/* The id of an active run of experiment exp_id whose tag `key` equals value
 * (runs/search).  MLO_OK (*run_id set, malloc'd), MLO_ERR_NOT_FOUND (none),
 * or the call's failure. */
int mlo__api_search_run_by_tag(mlo_api *a, const char *exp_id, const char *key, const char *value,
                               char **run_id, mlo_api_error *e);
/* recs: staged records (key and value NUL-terminated, laid out as
 * mlo__payload_staged_key/_val read them) of one run, within MLflow's batch
 * limits. */
int mlo__api_log_batch(mlo_api *a, const char *run_id, const mlo_rec *const *recs, size_t n,
                       mlo_api_error *e);
/* Encodes the log-batch body without sending (benchmarks, tests). */
int mlo__api_encode_log_batch(mlo_api *a, const char *run_id, const mlo_rec *const *recs, size_t n,
                              mlo_buf *out);

/* ---- artifact REST calls (mlo_api_artifacts.c) ----
 * root: the run's artifact root as a path of the proxied artifact API,
 * made by mlo__api_artifact_root from the run's artifact URI
 * ("mlflow-artifacts:/0/<run>/artifacts" -> "0/<run>/artifacts").  rel: a
 * path below it, checked by mlo__validate_artifact_path ("" or NULL: the root). */
/* MLO_OK (*root malloc'd), MLO_ERR_ARTIFACTS_NOT_PROXIED (another scheme:
 * s3://, file://, ...), MLO_ERR_NO_MEMORY. */
int mlo__api_artifact_root(const char *artifact_uri, char **root);
/* PUT bytes [off, off+len) of fd as the file rel (streamed). */
int mlo__api_artifact_put(mlo_api *a, const char *root, const char *rel, int fd, int64_t off,
                          int64_t len, mlo_api_error *e);
/* PUT bytes [0, len) of fd as the file rel while fd is still being
 * written: ready(ctx, off) blocks until fd holds more than off bytes and
 * says how many (mlo_http_req's in_ready); -1 stops the upload
 * (MLO_ERR_STORE). */
int mlo__api_artifact_put_growing(mlo_api *a, const char *root, const char *rel, int fd,
                                  int64_t len, int64_t (*ready)(void *ctx, int64_t off), void *ctx,
                                  mlo_api_error *e);
/* GET the file rel into fd (from offset 0; truncated first).  *size gets the
 * bytes written (may be NULL). */
int mlo__api_artifact_get(mlo_api *a, const char *root, const char *rel, int fd, int64_t *size,
                          mlo_api_error *e);
/* Lists the directory rel: fn(ctx, name (basename, as the server gives it),
 * is_dir, size or -1) per entry; fn returns non-zero to stop.  A missing
 * directory lists nothing (MLO_OK). */
int mlo__api_artifact_list(mlo_api *a, const char *root, const char *rel,
                           int (*fn)(void *ctx, const char *name, int is_dir, int64_t size),
                           void *ctx, mlo_api_error *e);
/* Multipart upload (proxied mpu API).  create: *upload_id and the nparts
 * part URLs (all malloc'd; free with mlo__mpu_free).  A server without
 * multipart answers 501 NOT_IMPLEMENTED: MLO_ERR_NOT_SUPPORTED. */
typedef struct mlo_mpu {
    char *upload_id;
    size_t nparts;
    char **urls;  /* part i+1's presigned URL */
    char **etags; /* filled by mlo__api_mpu_put_part */
} mlo_mpu;
int mlo__api_mpu_create(mlo_api *a, const char *root, const char *rel, size_t nparts, mlo_mpu *out,
                        mlo_api_error *e);
/* PUT part `part` (1-based) = bytes [off, off+len) of fd to its URL (no
 * credentials sent to it); records the answer's ETag. */
int mlo__api_mpu_put_part(mlo_api *a, mlo_mpu *m, size_t part, int fd, int64_t off, int64_t len,
                          mlo_api_error *e);
int mlo__api_mpu_complete(mlo_api *a, const char *root, const char *rel, const mlo_mpu *m,
                          mlo_api_error *e);
int mlo__api_mpu_abort(mlo_api *a, const char *root, const char *rel, const char *upload_id,
                       mlo_api_error *e);
void mlo__api_mpu_free(mlo_mpu *m);
/* Multipart settings, as MLflow's client reads them:
 * $MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD (default on here),
 * $MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE (500 MiB),
 * $MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE (100 MiB). */
typedef struct mlo_mpu_cfg {
    int enabled;
    int64_t min_size, chunk;
    int unsupported; /* the server answered 501 to mpu/create: single PUTs from then on */
} mlo_mpu_cfg;
void mlo__api_mpu_cfg_read(mlo_mpu_cfg *m);
/* Sends bytes [0, size) of fd as rel below root: multipart when configured
 * and large enough (parts of the chunk size, at most 10,000), else one PUT. */
int mlo__api_artifact_upload(mlo_api *a, mlo_mpu_cfg *mc, const char *root, const char *rel, int fd,
                             int64_t size, mlo_api_error *e);

/* ---- registry REST calls (mlo_api_registry.c) ---- */
/* registered-models/create; an existing model is not an error (MLO_OK). */
int mlo__api_create_registered_model(mlo_api *a, const char *name, mlo_api_error *e);
/* model-versions/create: *version (malloc'd) gets the new version. */
int mlo__api_create_model_version(mlo_api *a, const char *name, const char *source,
                                  const char *run_id, char **version, mlo_api_error *e);
int mlo__api_set_model_alias(mlo_api *a, const char *name, const char *alias, const char *version,
                             mlo_api_error *e);
/* models:/name/version or models:/name@alias (alias != NULL): the version's
 * source and run id (each may be NULL: not wanted; malloc'd; run id "" when
 * none) and, for an alias, *version_out (may be NULL). */
int mlo__api_get_model_version(mlo_api *a, const char *name, const char *version, const char *alias,
                               char **source, char **run_id, char **version_out, mlo_api_error *e);

#endif /* MLO_API_H */
