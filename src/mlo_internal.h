/*
 * mlo_internal.h - what the library's modules share.  Never installed.
 *
 * Modules (one file each):
 *   mlo_client.c    client and run handles, the log calls, statistics
 *   mlo_config.c    options and the MLflow environment variables
 *   mlo_validate.c  MLflow's key and value rules, UTF-8
 *   mlo_sysinfo.c   system tags (user, source, git)
 *   mlo_shipper.c   the writer thread: drains the ring into the run log
 *                   (or, without a store, straight to the sender core)
 *   mlo_sender.c    the sender: reads the run log, creates runs, groups
 *                   events per run into log-batch requests, acknowledges
 *   mlo_store.c     the store directory: layout, ring file, crash recovery,
 *                   acks, runs.map, adoption of dead processes, sync
 *   mlo_log.c       the run log's segment files (mlo_log.h)
 *   mlo_api.c       MLflow REST calls; with mlo_api_artifacts.c (the proxied
 *                   artifact API, multipart) and mlo_api_registry.c (model
 *                   registry) the only users of the generated protobuf code
 *                   (mlo_api_int.h)
 *   mlo_artifact.c  artifacts: staging into the store, the uploader thread
 *   mlo_registry.c  listing, downloads, models:/ and runs:/ URIs, registry
 *   mlo_dataset.c   mlo_log_dataset and content digests
 *   mlo_hist.c      histograms
 *   mlo_cli.c       the `mlo` tool (not in the library)
 *   mlo_pbjson.c    protobuf-c message <-> JSON, driven by descriptors
 *   mlo_http.c      libcurl transport (the only user of curl.h)
 *   mlo_queue_mutex.c, mlo_ring.c  the event queues (mlo_queue.h)
 */
#ifndef MLO_INTERNAL_H
#define MLO_INTERNAL_H

#include "mlo.h"
#include "mlo_buf.h"
#include "mlo_queue.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define MLO_MAX_KEY_CHARS 250
#define MLO_MAX_PARAM_CHARS 6000
#define MLO_MAX_TAG_CHARS 8000
#define MLO_BATCH_MAX_METRICS 1000
#define MLO_BATCH_MAX_PARAMS 100
#define MLO_BATCH_MAX_TAGS 100
#define MLO_BATCH_MAX_TOTAL 1000
#define MLO_BATCH_MAX_BYTES (900u * 1024u) /* under MLflow's documented 1 MB */
#define MLO_MAX_INFLIGHT_DEFAULT 4 /* log-batch requests in flight (README "Performance") */
#define MLO_MAX_INFLIGHT_LIMIT 16

#define MLO_CLIENT_MAGIC 0x6d6c6f43u /* "mloC" */
#define MLO_CLIENT_CLOSED_MAGIC 0x6d6c6f58u /* "mloX": a closed client's tombstone */
#define MLO_RUN_MAGIC 0x6d6c6f52u    /* "mloR" */

/* ---- time ---- */
int64_t mlo__now_ms(void);        /* CLOCK_REALTIME, ms since the epoch */
int64_t mlo__mono_ns(void);       /* CLOCK_MONOTONIC, ns */

/* ---- config (mlo_config.c) ---- */
typedef struct mlo_config {
    char *tracking_uri; /* without trailing slash */
    char *experiment_name;
    char *experiment_id;
    char *run_id_env; /* $MLFLOW_RUN_ID */
    char *token;
    char *user;
    char *password;
    int insecure_tls;
    char *ca_path;
    char *client_cert_path;
    int max_retries;
    double backoff_factor_s;
    double jitter_s;
    double timeout_s;
    int respect_retry_after;
    size_t queue_bytes;
    mlo_full_policy full_policy;
    unsigned full_wait_ms;
    unsigned close_timeout_ms;
    unsigned flush_interval_ms;
    mlo_error_fn error_fn;
    void *error_user;
    int queue_impl; /* 0 = lock-free ring, 1 = mutex queue (benchmark baseline) */
    char *store_dir;             /* the store directory (option, $MLO_STORE_DIR, ./mlo-store) */
    int durable;                 /* 1: ring in a file + run log (default); 0: memory only */
    int fsync_policy;            /* mlo_fsync_policy */
    unsigned fsync_interval_ms;
    int max_inflight;            /* log-batch requests in flight at once, 1..16 (mlo_sender.c) */
} mlo_config;

/* Resolves opts (may be NULL) + environment + defaults into cfg.  On failure
 * returns a status and writes a message into err. */
int mlo__config_resolve(const mlo_options_t *opts, mlo_config *cfg, char *err, size_t errlen);
void mlo__config_free(mlo_config *cfg);
/* Test/benchmark hook: choose the queue implementation (0 ring, 1 mutex). */
int mlo__options_set_queue_impl(mlo_options_t *opts, int impl);

/* ---- validation (mlo_validate.c) ---- */
/* Returns MLO_OK, MLO_ERR_INVALID_KEY or MLO_ERR_INVALID_UTF8; *len gets strlen. */
int mlo__validate_key(const char *key, size_t *len);
/* Validates UTF-8 and truncates to max_chars code points: *len gets the byte
 * length to keep, *truncated 1 when shorter than the string. */
int mlo__validate_value(const char *v, size_t max_chars, size_t *len, int *truncated);
int mlo__utf8_valid(const char *s, size_t n);

/* ---- system tags (mlo_sysinfo.c) ---- */
typedef struct mlo_kv {
    char *key;
    char *value;
} mlo_kv;
/* Appends MLflow's system tags to *tags (growing *n); 0 or -1 on OOM. */
int mlo__sysinfo_tags(mlo_kv **tags, size_t *n);
int mlo__kv_push(mlo_kv **tags, size_t *n, const char *k, const char *v);
void mlo__kv_free(mlo_kv *tags, size_t n);

/* ---- staged records ----
 * The sender copies each event it sends into a stage as: the mlo_rec header,
 * the key, NUL, the value, NUL (so the protobuf messages built by mlo_api.c
 * can point at them).  One layout, read by both through these. */
static inline char *mlo__staged_key(const mlo_rec *r) {
    return (char *)(r + 1);
}
static inline char *mlo__staged_val(const mlo_rec *r) {
    return (char *)(r + 1) + r->key_len + 1;
}

/* ---- REST API (mlo_api.c) ---- */
typedef struct mlo_http mlo_http;
typedef struct mlo_api mlo_api; /* one per thread that sends */

typedef struct mlo_api_error {
    int status;          /* mlo_status */
    long http_code;
    char error_code[48]; /* MLflow error_code, "" if none */
    char message[512];
} mlo_api_error;

mlo_api *mlo__api_new(const mlo_config *cfg, struct mlo_client *client);
void mlo__api_free(mlo_api *a);
/* Deadline for the calls of this api object (CLOCK_MONOTONIC ns, 0 = none). */
void mlo__api_set_deadline(mlo_api *a, int64_t deadline_ns);

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
/* The id of an active run of experiment exp_id whose tag `key` equals value
 * (runs/search).  MLO_OK (*run_id set, malloc'd), MLO_ERR_NOT_FOUND (none),
 * or the call's failure. */
int mlo__api_search_run_by_tag(mlo_api *a, const char *exp_id, const char *key,
                               const char *value, char **run_id, mlo_api_error *e);
/* recs: staged records (key and value NUL-terminated, laid out as mlo__staged_key/_val read them) of
 * one run, within MLflow's batch limits. */
int mlo__api_log_batch(mlo_api *a, const char *run_id, const mlo_rec *const *recs, size_t n,
                       mlo_api_error *e);
/* Encodes the log-batch body without sending (benchmarks, tests). */
int mlo__api_encode_log_batch(mlo_api *a, const char *run_id, const mlo_rec *const *recs,
                              size_t n, mlo_buf *out);

/* ---- artifact REST calls (mlo_api_artifacts.c) ----
 * root: the run's artifact root as a path of the proxied artifact API,
 * made by mlo__artifact_root from the run's artifact URI
 * ("mlflow-artifacts:/0/<run>/artifacts" -> "0/<run>/artifacts").  rel: a
 * path below it, checked by mlo__artifact_path_check ("" or NULL: the root). */
/* MLO_OK (*root malloc'd), MLO_ERR_ARTIFACTS_NOT_PROXIED (another scheme:
 * s3://, file://, ...), MLO_ERR_NO_MEMORY. */
int mlo__artifact_root(const char *artifact_uri, char **root);
/* PUT bytes [off, off+len) of fd as the file rel (streamed). */
int mlo__api_artifact_put(mlo_api *a, const char *root, const char *rel, int fd, int64_t off,
                          int64_t len, mlo_api_error *e);
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
    char **urls;      /* part i+1's presigned URL */
    char **etags;     /* filled by mlo__api_mpu_put_part */
} mlo_mpu;
int mlo__api_mpu_create(mlo_api *a, const char *root, const char *rel, size_t nparts,
                        mlo_mpu *out, mlo_api_error *e);
/* PUT part `part` (1-based) = bytes [off, off+len) of fd to its URL (no
 * credentials sent to it); records the answer's ETag. */
int mlo__api_mpu_put_part(mlo_api *a, mlo_mpu *m, size_t part, int fd, int64_t off, int64_t len,
                          mlo_api_error *e);
int mlo__api_mpu_complete(mlo_api *a, const char *root, const char *rel, const mlo_mpu *m,
                          mlo_api_error *e);
int mlo__api_mpu_abort(mlo_api *a, const char *root, const char *rel, const char *upload_id,
                       mlo_api_error *e);
void mlo__mpu_free(mlo_mpu *m);

/* ---- registry REST calls (mlo_api_registry.c) ---- */
/* registered-models/create; an existing model is not an error (MLO_OK). */
int mlo__api_create_registered_model(mlo_api *a, const char *name, mlo_api_error *e);
/* model-versions/create: *version (malloc'd) gets the new version. */
int mlo__api_create_model_version(mlo_api *a, const char *name, const char *source,
                                  const char *run_id, char **version, mlo_api_error *e);
int mlo__api_set_model_alias(mlo_api *a, const char *name, const char *alias,
                             const char *version, mlo_api_error *e);
/* models:/name/version or models:/name@alias (alias != NULL): the version's
 * source and run id (each may be NULL: not wanted; malloc'd; run id "" when
 * none) and, for an alias, *version_out (may be NULL). */
int mlo__api_get_model_version(mlo_api *a, const char *name, const char *version,
                               const char *alias, char **source, char **run_id,
                               char **version_out, mlo_api_error *e);

/* ---- artifact paths (mlo_validate.c) ---- */
/* A relative artifact path: UTF-8, no NUL (by construction), no backslash,
 * not absolute, no "." or ".." segment, no empty segment ("a//b", "a/"),
 * at most 4096 bytes.  allow_empty: NULL and "" are fine (the root).
 * MLO_OK, MLO_ERR_INVALID_PATH, MLO_ERR_INVALID_UTF8. */
int mlo__artifact_path_check(const char *p, int allow_empty);

/* ---- artifact uploads (mlo_artifact.c) ---- */
/* Waits until no artifact of the run with local id lid is pending upload in
 * this client, or deadline_ns (CLOCK_MONOTONIC) passes.  MLO_OK,
 * MLO_ERR_TIMEOUT, MLO_ERR_ARTIFACTS_NOT_PROXIED, or the status with which
 * an artifact of the run under path (NULL or "": any) was refused for good. */
int mlo__artifacts_wait_run(struct mlo_client *c, const char *lid, const char *path,
                            int64_t deadline_ns);
/* Fuzzing and tests (tests/fuzz_manifest.c): parses the text of an artifact
 * manifest (<store>/artifacts/<id>.art, format at the top of
 * mlo_artifact.c) as the uploader does; text is modified.  0 with the fields
 * set (*path, *uri, *error malloc'd, *uri and *error NULL when absent: the
 * caller frees them), or -1 when it is not a usable manifest. */
int mlo__artifact_manifest_parse(char *text, char lid[33], char sha[65], int64_t *size,
                                 int64_t *created, char **path, char **uri, char **error);

/* ---- client internals shared with the shipper ---- */
typedef struct mlo_run {
    uint32_t magic;
    uint32_t index;
    struct mlo_client *client;
    char local_id[33];            /* 32 hex: the run's id in the store */
    /* Set once (by the sender when it has created or found the run on the
     * server; by start/resume when known at once), freed at close. */
    _Atomic(char *) server_id;
    _Atomic(char *) experiment_id;
    _Atomic int create_status;    /* MLO_OK until the server refused the run for good */
    uint32_t lid_next;            /* local-id hash chain (client's lid table), under runs_lock */
} mlo_run;

#define MLO_RUN_CHUNK 256
#define MLO_RUN_CHUNKS 1024 /* at most 262,144 runs per client */
#define MLO_STAT_COUNT 12
#define LID_BUCKETS 4096

typedef struct mlo_client {
    uint32_t magic;
    unsigned gen;                 /* fork generation it was opened in (mlo_client.c) */
    struct mlo_client *reg_next;  /* the process's client registry */
    _Atomic int closing;
    mlo_config cfg;
    const mlo_queue_ops *qops;
    mlo_queue *queue;

    /* runs: chunks never move once published, so the shipper may read a run
     * by index without a lock (the record that names it was pushed after the
     * run was stored: the queue's publication orders the two). */
    pthread_mutex_t runs_lock;
    pthread_cond_t runs_cond;     /* a run got its server id or failed */
    mlo_run *_Atomic run_chunks[MLO_RUN_CHUNKS];
    uint32_t nruns;
    uint32_t *lid_heads;          /* local id -> run index + 1, chained; LID_BUCKETS */

    /* synchronous calls (start_run) share one api object under a lock */
    pthread_mutex_t sync_lock;
    mlo_api *sync_api;
    mlo_kv *exp_cache; /* experiment name -> id, under sync_lock */
    size_t nexp_cache;

    /* flush: sequence numbers handed out and completed by the shipper */
    pthread_mutex_t flush_lock;
    pthread_cond_t flush_cond;
    uint64_t flush_next;
    uint64_t flush_done;

    pthread_t shipper;
    int shipper_started;

    /* the durable pipeline (mlo_store.c, mlo_shipper.c, mlo_sender.c) */
    struct mlo_store *store;      /* NULL: memory only (durability off or store unusable) */
    struct mlo_pipe *pipe;        /* writer -> sender hand-over; NULL without a store */
    pthread_t sender;
    int sender_started;
    _Atomic int ring_left;        /* the writer exited with records left in the ring */
    _Atomic int sender_failing;   /* the sender's last attempt failed (server down) */
    _Atomic int stop;           /* shipper: drain what is left, then exit */
    _Atomic int64_t abort_at_ns; /* shipper: give up sending after this (0 = never) */

    /* statistics: written by few threads, read by any */
    _Atomic uint64_t st[MLO_STAT_COUNT];

    /* histograms (mlo_hist.c): registered under hist_lock, ticked by the shipper */
    pthread_mutex_t hist_lock;
    struct mlo_histogram *hists;

    /* error callback rate limiting */
    _Atomic int64_t err_window_start_ms;
    _Atomic uint32_t err_in_window;
} mlo_client;

/* The process's fork generation (mlo_client.c): a client opened in another
 * generation was inherited across fork() and must not be touched (its
 * threads do not exist here, its locks may be held forever). */
extern _Atomic unsigned mlo__fork_gen;
static inline int mlo__client_forked(const mlo_client *c) {
    return c->gen != atomic_load_explicit(&mlo__fork_gen, memory_order_relaxed);
}

void mlo__stat_add(mlo_client *c, mlo_stat which, uint64_t n);
/* Reports through the error callback (if any), rate-limited per second for
 * warnings and shipper errors (rate_limited != 0). */
void mlo__report(mlo_client *c, int status, int rate_limited, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
mlo_run *mlo__client_run(mlo_client *c, uint32_t index);
/* The client's run whose local id is lid, or NULL.  Any thread. */
mlo_run *mlo__client_run_by_lid(mlo_client *c, const char *lid);
/* Sender: the run with local id lid now has a server id (or, with st !=
 * MLO_OK, was refused for good); wakes mlo_start_run.  No-op for runs of
 * other processes. */
void mlo__client_run_created(mlo_client *c, const char *lid, const char *server_id,
                             const char *exp_id, int st);
/* MLO_OK when the handle may be used: else MLO_ERR_CLOSED (closed, closing,
 * or inherited across fork) or MLO_ERR_INVALID_ARGUMENT (NULL, not a handle).
 * For public functions outside mlo_client.c.  Any thread. */
int mlo__client_check(const mlo_client *c);
int mlo__run_check(const mlo_run *r);
/* Pushes a record of `type` (mlo_rec_type) for run r with the client's full
 * policy (a drop is counted and reported), as the log calls do.  No
 * validation.  Returns an mlo_status. */
int mlo__run_push(mlo_run *r, int type, const char *key, size_t klen, const char *val,
                  size_t vlen, int64_t ts, int64_t step, double value);
/* A fresh local id: 32 lower-case hex characters + NUL. */
void mlo__new_local_id(char out[33]);

/* Producer path for library-made events (histograms): validates nothing,
 * pushes a metric record for run `run` with the queue's full policy.  Any
 * thread but the shipper.  Returns an mlo_status. */
int mlo__client_push_metric(mlo_client *c, uint32_t run, const char *key, size_t klen,
                            double value, int64_t step, int64_t ts_ms);

/* ---- histograms (mlo_hist.c) ---- */
/* How the shipper receives the metrics a histogram emits on its tick. */
typedef void (*mlo_emit_fn)(void *ctx, uint32_t run, const char *key, double value, int64_t step,
                            int64_t ts_ms);
/* Shipper thread: emits every histogram whose interval is due at now_ns
 * (CLOCK_MONOTONIC) through emit; returns the ns until the next is due
 * (INT64_MAX when there is none). */
int64_t mlo__hist_tick(mlo_client *c, int64_t now_ns, mlo_emit_fn emit, void *ctx);
/* mlo_client_close: frees the histograms the program did not free. */
void mlo__hist_free_all(mlo_client *c);

/* ---- the ring's consumer extras (mlo_ring.c), for a ring laid over a file ---- */
/* Consumer: the ring's head (where a peek starts). */
uint64_t mlo__ring_head_sc(mlo_queue *q);
/* Consumer: calls fn on up to max_records published records from *pos on,
 * without giving their space back; *pos moves past them.  Returns the count. */
size_t mlo__ring_peek_sc(mlo_queue *q, uint64_t *pos, size_t max_records, mlo_rec_fn fn,
                         void *ctx);
/* Consumer: the records before pos are safe elsewhere: mark them committed
 * (crash recovery will not hand them out again), then free their space. */
void mlo__ring_release_sc(mlo_queue *q, uint64_t pos);
/* Crash recovery of the ring block of a dead process: calls fn on every
 * published, uncommitted record in order, stepping over records whose
 * producer died before publishing (counted in *skipped, may be NULL).
 * Returns the number of records, or -1 if mem is not a ring block. */
long mlo__ring_recover(void *mem, size_t bytes, mlo_rec_fn fn, void *ctx, uint64_t *skipped);

/* ---- START_RUN payload (mlo_sender.c) ----
 * In the ring and the sender's stage a START_RUN record has the local id as
 * key and, as value, NUL-terminated strings one after the other:
 * experiment name, experiment id, run name, parent local id (each "" when
 * absent), then tag key, tag value pairs; timestamp = start time. */
#define MLO_START_MAX_TAGS 64
typedef struct mlo_startrun {
    const char *exp_name, *exp_id, *run_name, *parent; /* NULL when absent */
    size_t ntags;
    const char *keys[MLO_START_MAX_TAGS];
    const char *values[MLO_START_MAX_TAGS];
} mlo_startrun;
/* 0, or -1 if the payload is malformed. */
int mlo__startrun_parse(const char *payload, size_t len, mlo_startrun *out);
/* Appends the payload to out (reset first by the caller).  0 or -1 (OOM). */
int mlo__startrun_encode(mlo_buf *out, const mlo_startrun *in);

/* ---- store (mlo_store.c) ---- */
typedef struct mlo_store mlo_store;
/* An adopted or own segment the sender goes through, in order. */
typedef struct mlo_seg_ref {
    char procid[48];
    uint32_t n;
    int adopted; /* 1: written by an earlier (dead) process */
} mlo_seg_ref;

/* Opens (creating, 0700) the store at dir for a client sending to uri (NULL:
 * local store): takes a process id, recovers the rings of dead processes,
 * creates this process's ring file (ring_bytes = mlo__ring_bytes(capacity))
 * and claims the segments of dead processes that sent to the same uri.
 * MLO_OK or a status with a message in err. */
int mlo__store_open(const char *dir, const char *uri, size_t capacity, int64_t full_wait_ns,
                    mlo_client *c, mlo_store **out, char *err, size_t errlen);
/* The queue laid over this process's ring file, or NULL if the ring could
 * not be put in a file (then the caller allocates one in memory). */
mlo_queue *mlo__store_ring(mlo_store *s);
const char *mlo__store_procid(const mlo_store *s);
/* Writes the local id of run `index` into this process's run table. */
int mlo__store_set_run(mlo_store *s, uint32_t index, const char *lid);
/* Path of segment n of procid (malloc'd). */
char *mlo__store_seg_path(const mlo_store *s, const char *procid, uint32_t n);
/* Segments of the adopted (dead) processes, in order (borrowed). */
const mlo_seg_ref *mlo__store_adopted(const mlo_store *s, size_t *n);
/* Acknowledged offset of a segment (0 when none). */
uint64_t mlo__store_ack_get(mlo_store *s, const char *procid, uint32_t n);
int mlo__store_ack_set(mlo_store *s, const char *procid, uint32_t n, uint64_t off, int do_fsync);
/* runs.map: looks lid up for this store's uri (reading lines other
 * processes appended since the last call).  1 found (*sid malloc'd), 0 not. */
int mlo__store_map_get(mlo_store *s, const char *lid, char **sid);
/* Appends "<lid> <sid> <uri>" and fdatasyncs.  0 or -1. */
int mlo__store_map_put(mlo_store *s, const char *lid, const char *sid);
const char *mlo__store_uri(const mlo_store *s);
int mlo__store_fsync_policy(const mlo_store *s);
/* Closes the store; removes this process's ring and run table when
 * ring_empty (everything in them is in a segment). */
void mlo__store_close(mlo_store *s, int ring_empty);
/* Upload every local run and unsent event of the store at store_dir to uri
 * (see mlo_store.c).  progress (may be NULL) gets segment bytes done and in
 * total.  MLO_OK, or a status with a message in err. */
int mlo__store_sync(const char *store_dir, const char *uri,
                    void (*progress)(void *ctx, uint64_t done, uint64_t total), void *ctx,
                    char *err, size_t errlen);

/* ---- writer -> sender hand-over (mlo_shipper.c / mlo_sender.c) ---- */
typedef struct mlo_flush_target {
    uint64_t seq;
    uint32_t seg;
    uint64_t off;
} mlo_flush_target;
#define MLO_PIPE_TARGETS 256
typedef struct mlo_pipe {
    pthread_mutex_t lock;
    pthread_cond_t cond;     /* writer committed / target added / stop */
    uint32_t seg;            /* the writer's current segment number (0: none yet) */
    uint64_t committed;      /* end of committed blocks in it */
    int writer_done;         /* the writer has exited: seg/committed are final */
    int stop;                /* close: exit once caught up, or at abort_at_ns */
    mlo_flush_target targets[MLO_PIPE_TARGETS];
    size_t ntargets;
    /* sender progress on own segments, for flush */
    uint32_t acked_seg;
    uint64_t acked_off;
} mlo_pipe;

/* ---- sender (mlo_sender.c) ---- */
typedef struct mlo_sender mlo_sender;
/* keep: 1 = an outbox (transient failures keep the stage for a retry);
 * 0 = memory only (they count as failed, as before the store). */
mlo_sender *mlo__sender_new(mlo_client *c, mlo_store *st, int keep);
void mlo__sender_free(mlo_sender *s);
/* Stages one event (copied).  lid: the run's local id.  flags: 1 = from an
 * earlier process.  0 or -1 (OOM). */
int mlo__sender_add(mlo_sender *s, int type, const char *lid, const char *key, size_t klen,
                    const char *val, size_t vlen, double num, int64_t ts, int64_t step,
                    int flags);
size_t mlo__sender_staged(const mlo_sender *s);
/* Sends the stage.  MLO_OK: done (refused entries counted as failed);
 * else a transient status: nothing counted, the caller resends the stage
 * later (keep = 1).  The stage is emptied either way. */
int mlo__sender_process(mlo_sender *s);
/* The outbox thread (a client with a store and a server). */
void *mlo__sender_main(void *client);
/* mlo__store_sync's loop over a store's segments. */
int mlo__sender_drain_segments(mlo_sender *s, const mlo_seg_ref *segs, size_t n,
                               void (*progress)(void *ctx, uint64_t done, uint64_t total),
                               void *ctx, char *err, size_t errlen);

/* ---- shipper (mlo_shipper.c) ---- */
void *mlo__shipper_main(void *client);
struct mlo_logw;
/* Converts one ring record of the run with local id lid into a log event and
 * adds it to w (scratch: the caller's reusable buffer).  1 added, 0 skipped
 * (FLUSH, unknown type), -1 out of memory. */
int mlo__writer_add_rec(struct mlo_logw *w, const mlo_rec *r, const char *lid, mlo_buf *scratch);
/* Writer: wakes the sender (own segment committed, flush target). */
void mlo__pipe_signal(mlo_pipe *p);

#endif /* MLO_INTERNAL_H */
