/*
 * mlo.h - the public C ABI of mlo, an embeddable MLflow tracking client.
 *
 * A program opens a client (mlo_client_open), starts runs (mlo_start_run) and
 * logs params, metrics and tags to them.  A log call validates its arguments,
 * copies them into the client's event queue and returns: it never touches the
 * network.  A background thread (the shipper) drains the queue, groups events
 * per run into MLflow `runs/log-batch` requests and sends them to the tracking
 * server over HTTP(S).  mlo_client_flush waits for everything logged so far to
 * be acknowledged; mlo_client_close flushes with a bounded timeout and never
 * hangs when the server is gone.
 *
 * Conventions (the same for every function below):
 *  - Every function returns an mlo_status (0 = MLO_OK) unless said otherwise.
 *  - Strings passed in are NUL-terminated UTF-8 and are copied: the caller may
 *    free or reuse them as soon as the call returns.
 *  - Strings returned are borrowed from the handle they came from and stay
 *    valid until that handle is freed or closed, unless said otherwise.
 *  - Handles are opaque.  A client and its runs may be used from any number of
 *    threads at once, except where a function says otherwise.
 *  - Details of every failure (including those that happen later, on the
 *    shipper thread) go to the error callback, if one is set.
 *
 * This header includes nothing from mlo's dependencies.
 */
#ifndef MLO_H
#define MLO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define MLO_API
#elif defined(__GNUC__)
#define MLO_API __attribute__((visibility("default")))
#else
#define MLO_API
#endif

/* ---- Versions ------------------------------------------------------------ */

#define MLO_VERSION_MAJOR 0
#define MLO_VERSION_MINOR 1
#define MLO_VERSION_PATCH 0
/** 0xMMmmpp: major, minor, patch, one byte each. */
#define MLO_VERSION_NUMBER                                                                         \
    ((MLO_VERSION_MAJOR << 16) | (MLO_VERSION_MINOR << 8) | MLO_VERSION_PATCH)
#define MLO_AT_LEAST_VERSION(x, y, z) (MLO_VERSION_NUMBER >= (((x) << 16) | ((y) << 8) | (z)))

/**
 * The version of the library actually loaded, as "major.minor.patch".
 * Returns a static string.  Threads: any.
 */
MLO_API const char *mlo_version(void);

/** The version of the library actually loaded, as MLO_VERSION_NUMBER encodes it. Threads: any. */
MLO_API unsigned mlo_version_number(void);

/* ---- Statuses ------------------------------------------------------------ */

/**
 * What a call did.  Append-only: new codes are added last, none is ever
 * removed or renumbered.
 */
typedef enum mlo_status {
    MLO_OK = 0,
    /** A required pointer was NULL, a number out of range, or a handle invalid. */
    MLO_ERR_INVALID_ARGUMENT = 1,
    /** A metric, param or tag key the server would refuse (empty, over 250
     *  characters, a character outside MLflow's set, or not a normalized
     *  relative path such as "a//b", "../x", "/x", "a/"). */
    MLO_ERR_INVALID_KEY = 2,
    /** A string that is not valid UTF-8. */
    MLO_ERR_INVALID_UTF8 = 3,
    /** A run status outside RUNNING, SCHEDULED, FINISHED, FAILED, KILLED (or not
     *  allowed where given). */
    MLO_ERR_INVALID_STATUS = 4,
    /** The event queue was full and the event was dropped (counted in
     *  MLO_STAT_DROPPED). */
    MLO_ERR_QUEUE_FULL = 5,
    /** The client is closed or closing. */
    MLO_ERR_CLOSED = 6,
    /** Out of memory. */
    MLO_ERR_NO_MEMORY = 7,
    /** A timeout expired (flush, close, or a synchronous request). */
    MLO_ERR_TIMEOUT = 8,
    /** The server could not be reached (DNS, connect, reset) after the retries. */
    MLO_ERR_NETWORK = 9,
    /** TLS failed (certificate verification, client certificate). */
    MLO_ERR_TLS = 10,
    /** The server answered 400 INVALID_PARAMETER_VALUE or BAD_REQUEST. */
    MLO_ERR_SERVER_INVALID = 11,
    /** The server answered RESOURCE_ALREADY_EXISTS. */
    MLO_ERR_ALREADY_EXISTS = 12,
    /** The server answered 404 / RESOURCE_DOES_NOT_EXIST. */
    MLO_ERR_NOT_FOUND = 13,
    /** The server answered 401 UNAUTHENTICATED or 403 PERMISSION_DENIED. */
    MLO_ERR_PERMISSION = 14,
    /** The server kept answering 429 after the retries. */
    MLO_ERR_RATE_LIMITED = 15,
    /** The server kept answering 5xx (or 408) after the retries. */
    MLO_ERR_SERVER = 16,
    /** The server's answer could not be understood (not JSON, wrong shape, an
     *  HTML page from a proxy, an unexpected HTTP status). */
    MLO_ERR_PROTOCOL = 17,
    /** A configuration value (option or environment variable) is malformed or
     *  missing, e.g. an unsupported tracking URI scheme. */
    MLO_ERR_CONFIG = 18,
    /** The feature is declared but not implemented in this version. */
    MLO_ERR_NOT_SUPPORTED = 19,
    /** A bug in mlo: please report it. */
    MLO_ERR_INTERNAL = 20,
    /** Not an error: a param or tag value was longer than the server keeps
     *  (6000 / 8000 characters) and was truncated as the server would.  Only
     *  ever passed to the error callback; the log call itself returns MLO_OK. */
    MLO_WARN_TRUNCATED = 21,
    /** Not an error: a request is being retried.  Only passed to the error
     *  callback. */
    MLO_WARN_RETRY = 22,
    /** The store directory or a file in it cannot be used: unwritable,
     *  disk full, a damaged segment, locked by a live process.  Logging goes
     *  on (in memory) where it can; the message says what happened. */
    MLO_ERR_STORE = 23,
    /** A local file or directory could not be read (missing, unreadable, not
     *  a regular file or directory), or a downloaded file could not be
     *  written.  The message names the file and the reason. */
    MLO_ERR_IO = 24,
    /** An artifact path that could escape its root: "..", an absolute path,
     *  a backslash, an empty segment ("a//b"), or (from a server) a name that
     *  would land outside the download directory. */
    MLO_ERR_INVALID_PATH = 25,
    /** The run's artifact store cannot be reached through the tracking
     *  server (its artifact URI is, e.g., s3://... rather than
     *  mlflow-artifacts:): run the server with --serve-artifacts.  The
     *  artifacts stay in the store. */
    MLO_ERR_ARTIFACTS_NOT_PROXIED = 26,
} mlo_status;

/**
 * A static English description of a status ("invalid key", ...).
 * Never returns NULL; unknown codes give "unknown status".  Threads: any.
 */
MLO_API const char *mlo_strerror(int status);

/* ---- Options ------------------------------------------------------------- */

typedef struct mlo_options mlo_options_t;

/**
 * Called with the details of a failure or warning.  `message` is borrowed for
 * the duration of the call and never contains a token or password.  Called from
 * the thread that made the failing call, or from the library's own threads
 * for failures found while sending (retry warnings from the thread whose
 * request is retried, see mlo_options_set_max_inflight); may be called from
 * several threads at once; must not call mlo functions that wait (flush,
 * close).
 */
typedef void (*mlo_error_fn)(void *user_data, mlo_status status, const char *message);

/** What a log call does when the event queue is full. */
typedef enum mlo_full_policy {
    /** Wait up to the configured time (mlo_options_set_full_wait_ms) for room,
     *  then drop.  The default: a server that is briefly slow costs the caller
     *  a short pause instead of data. */
    MLO_FULL_WAIT = 0,
    /** Drop the new event at once (return MLO_ERR_QUEUE_FULL).  For callers that
     *  must never block, such as inference servers. */
    MLO_FULL_DROP = 1,
} mlo_full_policy;

/**
 * Creates an empty option set.  Every option left unset falls back to its
 * MLflow environment variable, then to its default.  Returns NULL when out of
 * memory.  Free with mlo_options_free.  Threads: an option set must not be
 * used from two threads at once.
 */
MLO_API mlo_options_t *mlo_options_new(void);

/** Frees an option set (NULL is a no-op).  Clients opened from it are unaffected. */
MLO_API void mlo_options_free(mlo_options_t *opts);

/**
 * Sets the tracking URI: "http://host:port[/prefix]" or "https://...".
 * Default: $MLFLOW_TRACKING_URI.  Statuses: MLO_OK, MLO_ERR_INVALID_ARGUMENT
 * (NULL opts), MLO_ERR_CONFIG (a scheme other than http/https),
 * MLO_ERR_NO_MEMORY.  NULL uri unsets it.
 */
MLO_API int mlo_options_set_tracking_uri(mlo_options_t *opts, const char *uri);

/** Default experiment name for mlo_start_run.  Default: $MLFLOW_EXPERIMENT_NAME,
 *  else the experiment of $MLFLOW_EXPERIMENT_ID, else "Default" (id "0").
 *  NULL: back to the default.  Statuses: MLO_OK, MLO_ERR_INVALID_ARGUMENT
 *  (NULL opts, ""), MLO_ERR_INVALID_UTF8, MLO_ERR_NO_MEMORY. */
MLO_API int mlo_options_set_experiment_name(mlo_options_t *opts, const char *name);

/** Default experiment id for mlo_start_run (wins over the name). Default:
 *  $MLFLOW_EXPERIMENT_ID.  Statuses: as mlo_options_set_experiment_name. */
MLO_API int mlo_options_set_experiment_id(mlo_options_t *opts, const char *experiment_id);

/** Bearer token.  Default: $MLFLOW_TRACKING_TOKEN.  Copied; never logged.
 *  Statuses: MLO_OK, MLO_ERR_INVALID_ARGUMENT (NULL opts, a character a
 *  header cannot carry), MLO_ERR_INVALID_UTF8, MLO_ERR_NO_MEMORY. */
MLO_API int mlo_options_set_token(mlo_options_t *opts, const char *token);

/** Basic auth (used when both are set; wins over a token).  Default:
 *  $MLFLOW_TRACKING_USERNAME and $MLFLOW_TRACKING_PASSWORD.  Copied; never logged.
 *  Statuses: MLO_OK, MLO_ERR_INVALID_ARGUMENT (NULL opts, only one of the two
 *  NULL, a ':' in user, a character a header cannot carry; the old pair is
 *  kept), MLO_ERR_INVALID_UTF8, MLO_ERR_NO_MEMORY. */
MLO_API int mlo_options_set_basic_auth(mlo_options_t *opts, const char *user, const char *password);

/** Disables TLS verification when `insecure` is non-zero.  Default:
 *  $MLFLOW_TRACKING_INSECURE_TLS ("true"/"1"), else verification on.
 *  Statuses: MLO_OK, MLO_ERR_INVALID_ARGUMENT (NULL opts). */
MLO_API int mlo_options_set_insecure_tls(mlo_options_t *opts, int insecure);

/** CA bundle (PEM) to verify the server with.  Default: $MLFLOW_TRACKING_SERVER_CERT_PATH.
 *  Read when the client opens.  Statuses: MLO_OK, MLO_ERR_INVALID_ARGUMENT
 *  (NULL opts), MLO_ERR_INVALID_UTF8, MLO_ERR_NO_MEMORY. */
MLO_API int mlo_options_set_ca_cert_path(mlo_options_t *opts, const char *path);

/** Client certificate (PEM, may hold the key too).  Default: $MLFLOW_TRACKING_CLIENT_CERT_PATH.
 *  Statuses: as mlo_options_set_ca_cert_path. */
MLO_API int mlo_options_set_client_cert_path(mlo_options_t *opts, const char *path);

/**
 * Retry settings, as MLflow's clients name them.  Pass a negative value to
 * keep the environment's or default value.  max_retries: $MLFLOW_HTTP_REQUEST_MAX_RETRIES
 * (default 5, at most 10).  backoff_factor_s: $MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR
 * (default 2; the n-th retry waits about factor * 2^(n-1) s, at most 120 s).
 * jitter_s: $MLFLOW_HTTP_REQUEST_BACKOFF_JITTER (default 1.0).  timeout_s: per
 * request, $MLFLOW_HTTP_REQUEST_TIMEOUT (default 120).  Retry-After is honoured
 * unless $MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER is "false".
 * Statuses: MLO_OK, MLO_ERR_INVALID_ARGUMENT (NULL opts, a NaN, max_retries
 * over 10, backoff or jitter over 3600 s, a timeout of 0 or over 86400 s).
 */
MLO_API int mlo_options_set_retries(mlo_options_t *opts, int max_retries, double backoff_factor_s,
                                    double jitter_s, double timeout_s);

/** Size of the event queue in bytes (rounded up to a power of two, at least
 *  64 KiB, at most 1 GiB).  Default 8 MiB: about 100,000 metric events.
 *  With the store the queue is a file of that size, reserved when the client
 *  opens (in /dev/shm when there is one, linked from the store's rings/).
 *  Statuses: MLO_OK, MLO_ERR_INVALID_ARGUMENT (NULL opts, out of range). */
MLO_API int mlo_options_set_queue_bytes(mlo_options_t *opts, size_t bytes);

/** What a log call does when the queue is full, and how long MLO_FULL_WAIT
 *  waits (milliseconds, default 100, at most 60,000).  Statuses: MLO_OK,
 *  MLO_ERR_INVALID_ARGUMENT (NULL opts, an unknown policy, wait_ms too long). */
MLO_API int mlo_options_set_full_policy(mlo_options_t *opts, mlo_full_policy policy,
                                        unsigned wait_ms);

/** How long mlo_client_close waits for unsent events (milliseconds; default
 *  10,000).  With a store (the default), events still unsent then stay in the
 *  store for the next client that opens it with the same tracking URI, or for
 *  `mlo sync`; without one they are counted as failed.  Statuses: MLO_OK,
 *  MLO_ERR_INVALID_ARGUMENT (NULL opts). */
MLO_API int mlo_options_set_close_timeout_ms(mlo_options_t *opts, unsigned timeout_ms);

/**
 * How often the shipper collects events when they trickle in (milliseconds,
 * 1 to 60,000; default 100).  An event reaches the server within about this
 * interval plus the request time; a burst that fills a quarter of the queue is
 * sent at once.  Log calls never wake the shipper themselves except after a
 * second without events, so steady logging costs them no system call.
 * Statuses: MLO_OK, MLO_ERR_INVALID_ARGUMENT.
 */
MLO_API int mlo_options_set_flush_interval_ms(mlo_options_t *opts, unsigned interval_ms);

/** The error callback and its user data (NULL: none).  Statuses: MLO_OK,
 *  MLO_ERR_INVALID_ARGUMENT (NULL opts). */
MLO_API int mlo_options_set_error_callback(mlo_options_t *opts, mlo_error_fn fn, void *user_data);

/**
 * How many `log-batch` requests the sender keeps in flight at once, 1 to 16.
 * Default: $MLO_MAX_INFLIGHT, else 4 (MLflow's server runs 4 workers by
 * default).  Requests of different runs overlap, each on its own connection
 * and thread, while the sender groups and encodes the next ones, so a server
 * with several workers is used fully when several runs log at once.  The
 * requests of one run are always sent one after the other, in the order the
 * events were logged (a tag ends with its last value, a conflicting param is
 * isolated in its own batch).  1: one request at a time on the sender's own
 * thread.  Statuses: MLO_OK, MLO_ERR_INVALID_ARGUMENT (NULL opts, n outside
 * 1..16).
 */
MLO_API int mlo_options_set_max_inflight(mlo_options_t *opts, unsigned n);

/**
 * The store directory: the durable run log that is the local store (no
 * tracking URI), the outbox (with one: what the server has not acknowledged
 * yet) and the crash journal (the event queue lives in a file there, so
 * events whose log call returned survive kill -9 and are recovered by the
 * next client that opens the store, or by `mlo sync`).  Default:
 * $MLO_STORE_DIR, else "./mlo-store" (relative to the working directory when
 * the client opens).  Created with mode 0700 (files 0600) if missing.  Any
 * number of processes may use one store at once.  If it cannot be used
 * (unwritable, disk full) mlo_client_open still succeeds, says so through the
 * error callback and keeps events in memory only.  NULL: back to the default.
 * Statuses: MLO_OK, MLO_ERR_INVALID_ARGUMENT (NULL opts, empty dir),
 * MLO_ERR_INVALID_UTF8, MLO_ERR_NO_MEMORY.
 */
MLO_API int mlo_options_set_store_dir(mlo_options_t *opts, const char *dir);

/**
 * Turns the store off (durable = 0) or on (1, the default).  Off: events
 * live in memory only, as an asynchronous client without a disk queue: a
 * server outage longer than the retries or a crash loses what is queued, and
 * a tracking URI is required (mlo_client_open: MLO_ERR_CONFIG without one).
 * Statuses: MLO_OK, MLO_ERR_INVALID_ARGUMENT.
 */
MLO_API int mlo_options_set_durable(mlo_options_t *opts, int durable);

/** When the run log is forced to the disk (fdatasync). */
typedef enum mlo_fsync_policy {
    /** Never: the operating system writes it back when it likes.  Survives
     *  the process dying (kill -9, a crash, OOM): the data is in the page
     *  cache.  A power loss or kernel crash may lose the last ~30 s. */
    MLO_FSYNC_NONE = 0,
    /** At most every interval_ms, on the writer thread, never on a log call
     *  (the default, 1000 ms): a power loss loses at most about the last
     *  interval plus what was still in the queue. */
    MLO_FSYNC_INTERVAL = 1,
    /** After every block written (each drain of the queue, about every flush
     *  interval): a power loss loses only what was still in the queue. */
    MLO_FSYNC_ALWAYS = 2,
} mlo_fsync_policy;

/** Sets the fsync policy; interval_ms (1 to 3,600,000) is used by
 *  MLO_FSYNC_INTERVAL only.  Statuses: MLO_OK, MLO_ERR_INVALID_ARGUMENT. */
MLO_API int mlo_options_set_fsync(mlo_options_t *opts, mlo_fsync_policy policy,
                                  unsigned interval_ms);

/* ---- System metrics ------------------------------------------------------ */

/*
 * System metrics, as MLflow's SystemMetricsMonitor logs them: a sampler
 * thread of the client reads the machine's state every sampling interval
 * and, every `samples_before_logging` samples, logs the averages as
 * metrics of each run that asked for them, under MLflow's names
 * ("system/cpu_utilization_percentage", ...; README "System metrics" has
 * the table), with steps 0, 1, 2, ... (a resumed run continues after the
 * last system step the server has).  The sampler never runs on a log call
 * and starts with the first run that asks for it.
 */

/**
 * Whether runs started (or resumed) by clients opened from opts log system
 * metrics, as mlflow.enable_system_metrics_logging() (enable != 0) and
 * mlflow.disable_system_metrics_logging() (0).  Default:
 * $MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING ("true"/"1"), else off.  A run can
 * be switched on or off on its own (mlo_run_set_system_metrics).
 * Statuses: MLO_OK, MLO_ERR_INVALID_ARGUMENT (NULL opts).
 */
MLO_API int mlo_options_set_system_metrics(mlo_options_t *opts, int enable);

/**
 * How often the machine is sampled (interval_s, seconds, 0.001 to 86400;
 * default $MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL, else 10) and how many
 * samples are averaged into one logged step (samples_before_logging, 1 to
 * 1,000,000; default $MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING, else 1).
 * Pass a negative value to keep the environment's or default value.  Statuses:
 * MLO_OK, MLO_ERR_INVALID_ARGUMENT (NULL opts, NaN, 0 or out of range).
 */
MLO_API int mlo_options_set_system_metrics_sampling(mlo_options_t *opts, double interval_s,
                                                    int samples_before_logging);

/**
 * A node id for multi-node jobs: metrics are then named
 * "system/<node_id>/cpu_utilization_percentage", ...  Default:
 * $MLFLOW_SYSTEM_METRICS_NODE_ID, else none.  NULL: back to the default;
 * "": no node id whatever the environment says.  Copied.  Statuses: MLO_OK,
 * MLO_ERR_INVALID_ARGUMENT (NULL opts), MLO_ERR_INVALID_KEY (the metric
 * names would not be valid MLflow keys), MLO_ERR_INVALID_UTF8,
 * MLO_ERR_NO_MEMORY.
 */
MLO_API int mlo_options_set_system_metrics_node_id(mlo_options_t *opts, const char *node_id);

/**
 * The path whose file system the disk metrics describe (statvfs).
 * Default: the store directory (mlo_options_set_store_dir), or "/" without
 * a store.  NULL: back to the default.  Copied.  Statuses: MLO_OK,
 * MLO_ERR_INVALID_ARGUMENT (NULL opts, empty path), MLO_ERR_INVALID_UTF8,
 * MLO_ERR_NO_MEMORY.
 */
MLO_API int mlo_options_set_system_metrics_disk_path(mlo_options_t *opts, const char *path);

/* ---- The store's size ---------------------------------------------------- */

/**
 * How long the store keeps what the server has acknowledged: a segment of
 * the run log whose every event the server acknowledged is removed
 * `seconds` after that acknowledgement (before that, each of its runs' state
 * is folded into a small per-run summary that `mlo ls`, `mlo show` and
 * `mlo gate` keep reading: params, tags, status, datasets and each metric's
 * latest value, count, min and max).  0: at once; -1: forever (the store
 * then keeps every segment, as before).  Events the server has not
 * acknowledged, and runs of a local store (no tracking URI), are never
 * removed by retention (`mlo rm RUN` removes a run).  Default:
 * $MLO_STORE_RETENTION (seconds, or a number with s, m, h or d), else 7
 * days.  Applied by the writer thread about once a minute and by `mlo gc`.
 * Statuses: MLO_OK, MLO_ERR_INVALID_ARGUMENT (NULL opts, seconds < -1).
 * Threads: the thread that owns opts.
 */
MLO_API int mlo_options_set_store_retention(mlo_options_t *opts, int64_t seconds);

/**
 * A cap on the store's size in bytes (its regular files: segments, acks,
 * summaries, staged artifacts; not the event queue's file).  Over the cap,
 * acknowledged segments are removed oldest acknowledgement first, before
 * their retention is up, then the summaries of runs with nothing else left;
 * never anything the server has not acknowledged.  When what is left is
 * still over the cap (unsent events alone exceed it: the server has been
 * away), the client says so through the error callback (MLO_ERR_STORE, at
 * most once every 10 minutes) and goes on logging as before (the full
 * policy still applies to the queue).  0: no cap.  Default:
 * $MLO_STORE_MAX_BYTES (bytes, or a number with K, M, G or T: powers of
 * 1024), else no cap.  Statuses: MLO_OK, MLO_ERR_INVALID_ARGUMENT (NULL
 * opts, bytes < 0).  Threads: the thread that owns opts.
 */
MLO_API int mlo_options_set_store_max_bytes(mlo_options_t *opts, int64_t bytes);

/* ---- Client -------------------------------------------------------------- */

typedef struct mlo_client mlo_client_t;
typedef struct mlo_run mlo_run_t;

/**
 * Opens a client: reads the options (and the environment for those unset),
 * opens the store (mlo_options_set_store_dir), recovers what dead processes
 * left in it and starts the background threads: the writer, which drains
 * the queue into the store's run log, and, with a tracking URI, the sender,
 * which sends the run log to the server (and what earlier processes that sent
 * to the same URI left unsent).  Does not contact the server itself.
 * Without a tracking URI runs are recorded in the local store only (upload
 * them later with `mlo sync`).  `opts` may be NULL (environment and defaults
 * only) and may be freed right after.
 * Statuses: MLO_OK (*out set), MLO_ERR_INVALID_ARGUMENT (out NULL),
 * MLO_ERR_CONFIG (a malformed tracking URI or retry variable; no tracking
 * URI with the store turned off), MLO_ERR_NO_MEMORY.  Threads: any.
 */
MLO_API int mlo_client_open(const mlo_options_t *opts, mlo_client_t **out);

/**
 * Waits until every event accepted before the call has been acknowledged by
 * the server (or has been refused by it for good), or, without a tracking
 * URI, written to the store's run log; or until timeout_ms passes.  While the
 * server is unreachable events wait in the store and flush times out.
 * Statuses: MLO_OK, MLO_ERR_TIMEOUT, MLO_ERR_INVALID_ARGUMENT, MLO_ERR_CLOSED.
 * Threads: any, except the error callback.
 */
MLO_API int mlo_client_flush(mlo_client_t *client, unsigned timeout_ms);

/**
 * Flushes with the close timeout, stops the background threads, frees the
 * client and all its runs.  Everything queued is written to the store first
 * (local disk, not bounded by the timeout); what the server has not
 * acknowledged by the deadline stays in the store for the next client that
 * opens it with the same URI, or for `mlo sync`.  Runs still RUNNING are left
 * RUNNING on the server (end them first).
 * Statuses: MLO_OK, MLO_ERR_TIMEOUT (some events were not delivered yet; with
 * a store they are kept, without one counted as failed),
 * MLO_ERR_INVALID_ARGUMENT (NULL).  The handle is invalid
 * after the call, whatever it returns.  Threads: call once, from one thread,
 * after every other thread has stopped using the client and its runs.
 */
MLO_API int mlo_client_close(mlo_client_t *client);

/** Counters read by mlo_client_stat. */
typedef enum mlo_stat {
    MLO_STAT_ACCEPTED = 0, /**< events accepted by log calls */
    MLO_STAT_SENT = 1,     /**< events of this client acknowledged by the server */
    MLO_STAT_DROPPED = 2,  /**< events dropped because the queue was full */
    MLO_STAT_RETRIED = 3,  /**< HTTP requests retried */
    /** events refused by the server as invalid (a changed param, a deleted
     *  run); without a store (or with no way to store them) also events that
     *  could not be sent.  With a store an unreachable server fails nothing:
     *  events wait in the store. */
    MLO_STAT_FAILED = 4,
    MLO_STAT_TRUNCATED = 5, /**< param/tag values truncated to the server's limit */
    MLO_STAT_REQUESTS = 6,  /**< HTTP requests sent (retries included) */
    MLO_STAT_REJECTED = 7,  /**< log calls refused at the call (bad key, bad UTF-8, ...) */
    /** events of dead processes recovered from their queue files into the
     *  store when this client opened it */
    MLO_STAT_RECOVERED = 8,
    /** events that earlier processes left unsent in the store, delivered by
     *  this client (not counted in SENT) */
    MLO_STAT_ADOPTED = 9,
    /** artifact content bytes acknowledged by the server (each file counted
     *  once, retries not counted) */
    MLO_STAT_ARTIFACT_BYTES = 10,
    /** artifact files acknowledged by the server */
    MLO_STAT_ARTIFACT_FILES = 11,
} mlo_stat;

/**
 * Reads one counter into *value.  Counters only grow.  Once a flush has
 * returned MLO_OK with a server, ACCEPTED == SENT + FAILED for the events
 * accepted before it (DROPPED events were never accepted).  Statuses: MLO_OK,
 * MLO_ERR_INVALID_ARGUMENT.  Threads: any.
 */
MLO_API int mlo_client_stat(const mlo_client_t *client, mlo_stat which, uint64_t *value);

/* ---- Runs ---------------------------------------------------------------- */

/** Run statuses, as MLflow names them. */
typedef enum mlo_run_status {
    MLO_RUN_RUNNING = 1,
    MLO_RUN_SCHEDULED = 2,
    MLO_RUN_FINISHED = 3,
    MLO_RUN_FAILED = 4,
    MLO_RUN_KILLED = 5,
} mlo_run_status;

/**
 * Starts a run: gives it a local id at once and records its start (time,
 * experiment, name, system tags, parent) in the store; the sender then finds
 * the experiment by name (creating it if missing; two processes creating it
 * at once both succeed) and creates the run on the server with the system
 * tags MLflow's Python client sets (mlflow.user, mlflow.source.name,
 * mlflow.source.type=LOCAL, mlflow.runName, and mlflow.source.git.commit/
 * .branch/.repoURL inside a git work tree; mlflow.parentRunId for a nested
 * run) plus `mlo.local_id`, by which a run whose creation was not recorded
 * before a crash is found again instead of created twice.
 *
 * With a tracking URI the call waits for the server's run id, at most
 * min(request timeout, 10 s) (0.2 s while the sender is already failing to
 * reach the server).  If the server does not answer in that time
 * (unreachable, or the sender busy with a backlog) it returns MLO_OK anyway
 * with an offline run: mlo_run_id() gives its local id until the run exists
 * on the server, created later (by this client, the next one, or `mlo sync`)
 * with its original start time, name and tags.  Without a tracking URI the
 * run is local and the call does not wait.
 *
 * experiment_name: NULL for the client's default (options, then environment,
 *   then "Default").
 * run_name: NULL to let the server pick one.
 * parent: NULL, or a run of the same client to nest this run under.
 * When $MLFLOW_RUN_ID is set and parent is NULL, that existing run is resumed
 * instead (its status is set back to RUNNING) and experiment_name/run_name are
 * ignored.
 *
 * Statuses: MLO_OK (*out set), MLO_ERR_INVALID_ARGUMENT, MLO_ERR_INVALID_UTF8,
 * MLO_ERR_QUEUE_FULL, MLO_ERR_CLOSED, a server status when the server refused
 * the run for good (MLO_ERR_SERVER_INVALID, MLO_ERR_NOT_FOUND for an unknown
 * experiment id, ...), MLO_ERR_NO_MEMORY; when resuming (MLFLOW_RUN_ID),
 * those of mlo_resume_run.  The run handle stays valid until the
 * client is closed.  Threads: any.
 */
MLO_API int mlo_start_run(mlo_client_t *client, const char *experiment_name, const char *run_name,
                          mlo_run_t *parent, mlo_run_t **out);

/**
 * Attaches to an existing run by id (like MLflow's start_run(run_id=...)):
 * with a tracking URI, checks synchronously that it exists and sets it
 * RUNNING; without one, attaches to that local (or later-synced) run id
 * unchecked.  Statuses: MLO_OK, MLO_ERR_INVALID_ARGUMENT,
 * MLO_ERR_INVALID_UTF8, MLO_ERR_NOT_FOUND, MLO_ERR_NO_MEMORY, any
 * network/server status.  Threads: any.
 */
MLO_API int mlo_resume_run(mlo_client_t *client, const char *run_id, mlo_run_t **out);

/** The run's server id (32 hex characters) once the run exists on the
 *  server; before that (an offline or local run) its local id, also 32 hex
 *  characters (`mlo ls` shows both).  Borrowed until the client is closed.
 *  NULL for a NULL run.  Threads: any. */
MLO_API const char *mlo_run_id(const mlo_run_t *run);

/** The run's experiment id; NULL while it is not known (a run of a named
 *  experiment not yet created on the server, or in the local store).
 *  Borrowed until the client is closed.  Threads: any. */
MLO_API const char *mlo_run_experiment_id(const mlo_run_t *run);

/**
 * Ends a run: queues `runs/update` with the status and the current time as
 * end_time, after every event already logged to the run (system metrics
 * are turned off first: none follows the end).  status is
 * MLO_RUN_FINISHED, MLO_RUN_FAILED or MLO_RUN_KILLED.  Does not wait (flush to
 * wait).  The handle stays valid (logging to an ended run is allowed, as on the
 * server).  Statuses: MLO_OK, MLO_ERR_INVALID_ARGUMENT, MLO_ERR_INVALID_STATUS,
 * MLO_ERR_QUEUE_FULL, MLO_ERR_CLOSED.  Threads: any.
 */
MLO_API int mlo_end_run(mlo_run_t *run, mlo_run_status status);

/**
 * Turns system metrics on (enable != 0) or off for one run, whatever the
 * client's default (mlo_options_set_system_metrics) said when the run
 * started: as MLflow's start_run(log_system_metrics=...).  On: the run
 * gets a sample at each of the sampler's ticks from the next one on, and
 * its averages every samples_before_logging samples, at the next step of
 * its own (0 for a new run; for a resumed run, one after the highest step
 * of its "system/" metrics on the server when it was resumed).  Off: no
 * more system metrics for the run; a partial average is dropped, as
 * MLflow drops it.  mlo_end_run turns them off.  Does not wait for the
 * sampler beyond a tick in progress.  Statuses: MLO_OK,
 * MLO_ERR_INVALID_ARGUMENT, MLO_ERR_CLOSED, MLO_ERR_NO_MEMORY (no memory or
 * no thread for the sampler).  Threads: any.
 */
MLO_API int mlo_run_set_system_metrics(mlo_run_t *run, int enable);

/* ---- Logging (never touches the network) -------------------------------- */

/**
 * Logs one metric point with the current time (milliseconds since the epoch).
 * value: any double; NaN and +-Infinity are kept (sent as MLflow expects).
 * step: any int64 (MLflow's default is 0).
 * Statuses: MLO_OK, MLO_ERR_INVALID_ARGUMENT (NULL run/key),
 * MLO_ERR_INVALID_KEY, MLO_ERR_INVALID_UTF8, MLO_ERR_QUEUE_FULL,
 * MLO_ERR_CLOSED.  Refused calls queue nothing.  Threads: any.
 */
MLO_API int mlo_log_metric(mlo_run_t *run, const char *key, double value, int64_t step);

/** As mlo_log_metric with an explicit timestamp in ms since the epoch
 *  (must be >= 0, else MLO_ERR_INVALID_ARGUMENT). */
MLO_API int mlo_log_metric_ts(mlo_run_t *run, const char *key, double value, int64_t step,
                              int64_t timestamp_ms);

/**
 * Logs a param.  Params are immutable on the server: logging the same key
 * again with a different value fails later, on the shipper, and is reported
 * through the error callback (MLO_ERR_SERVER_INVALID) and MLO_STAT_FAILED
 * without affecting the other events.  A value longer than 6000 characters is
 * truncated as the server does (MLO_WARN_TRUNCATED to the callback).
 * Statuses as mlo_log_metric (value NULL is MLO_ERR_INVALID_ARGUMENT).
 */
MLO_API int mlo_log_param(mlo_run_t *run, const char *key, const char *value);

/** Sets a tag (last write wins).  Values over 8000 characters are truncated
 *  as the server does.  Statuses as mlo_log_param. */
MLO_API int mlo_set_tag(mlo_run_t *run, const char *key, const char *value);

/**
 * Logs n metric points at once (vectorised).  keys[i], values[i]; steps and
 * timestamps_ms may each be NULL (step 0; the current time).  Each entry is
 * validated on its own: invalid ones are refused (and reported through the
 * error callback), valid ones are queued.  Returns MLO_OK when all were
 * queued, else the status of the first refused entry.  Threads: any.
 */
MLO_API int mlo_log_metrics(mlo_run_t *run, size_t n, const char *const *keys, const double *values,
                            const int64_t *steps, const int64_t *timestamps_ms);

/** Logs n params at once; per-entry validation as mlo_log_metrics (each
 *  entry's statuses as mlo_log_param's). */
MLO_API int mlo_log_params(mlo_run_t *run, size_t n, const char *const *keys,
                           const char *const *values);

/** Sets n tags at once; per-entry validation as mlo_log_metrics (each
 *  entry's statuses as mlo_set_tag's). */
MLO_API int mlo_set_tags(mlo_run_t *run, size_t n, const char *const *keys,
                         const char *const *values);

/* ---- Artifacts, models and datasets ------------------------------------- */

/**
 * Logs a local file, or a directory with everything under it, as artifacts
 * of the run, placed under artifact_path (NULL: the run's artifact root),
 * keeping the file's name: mlo_log_artifact(run, "out/model.bin", "model")
 * gives "model/model.bin"; a directory "out" gives "model/<files under out>"
 * (its own name is not kept, as MLflow's log_artifacts).
 *
 * The call returns once the content is safe: in the store (a reflink or a
 * kernel copy, its SHA-256 recorded; forced to disk unless the fsync policy
 * is MLO_FSYNC_NONE; memory stays bounded), or already on the server, as the
 * upload of a single large file follows the copy as it is made (others
 * start once it is made): the caller may delete or overwrite its file at
 * once.  The sender uploads it in the background
 * (PUT to the server's proxied artifact API; files of at least
 * $MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE bytes (default 500 MiB) in
 * parts of $MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE (default 100 MiB) through
 * its multipart API when the server offers it -- on by default, unlike
 * MLflow's client; $MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD=false turns it
 * off -- else one streamed PUT); an upload interrupted by a server outage or
 * a crash resumes later (this client, the next one on the store, or
 * `mlo sync`).  An artifact the server refuses for good, or one of a run
 * whose artifact store is not proxied (MLO_ERR_ARTIFACTS_NOT_PROXIED), is
 * reported through the error callback, counted in MLO_STAT_FAILED and kept
 * in the store (`mlo show` lists it; `mlo sync` tries again); flush does not
 * wait for those.  Without a tracking URI artifacts wait in the store for
 * `mlo sync`.  Without a store (mlo_options_set_durable(opts, 0)) the call
 * uploads synchronously and returns the upload's status.
 * mlo_client_flush waits for artifact uploads too.
 *
 * In a directory, symbolic links that resolve outside it are skipped (and
 * reported through the error callback); other special files are skipped.
 * Statuses: MLO_OK, MLO_ERR_INVALID_ARGUMENT (NULL run or local_path),
 * MLO_ERR_INVALID_PATH (artifact_path with "..", an absolute path, a
 * backslash, a control character, an empty segment), MLO_ERR_INVALID_UTF8,
 * MLO_ERR_IO (local_path
 * missing or unreadable), MLO_ERR_STORE (the store cannot take it: disk
 * full), MLO_ERR_CLOSED, MLO_ERR_NO_MEMORY.  Threads: any.
 */
MLO_API int mlo_log_artifact(mlo_run_t *run, const char *local_path, const char *artifact_path);

/**
 * Logs len bytes from memory as the artifact file artifact_path (a file
 * path, e.g. "model/weights.bin"; required).  Same semantics as
 * mlo_log_artifact: the bytes are in the store when the call returns.
 * data may be NULL when len is 0 (an empty file).  Statuses as
 * mlo_log_artifact (MLO_ERR_INVALID_ARGUMENT also for a NULL artifact_path).
 */
MLO_API int mlo_log_artifact_bytes(mlo_run_t *run, const void *data, size_t len,
                                   const char *artifact_path);

/** Called once per entry by mlo_list_artifacts: path relative to the run's
 *  artifact root ("model/weights.bin"), whether it is a directory, and the
 *  file size in bytes (-1 for a directory).  Strings are borrowed for the
 *  call.  Return 0 to go on, non-zero to stop the listing. */
typedef int (*mlo_artifact_fn)(void *user_data, const char *path, int is_dir, int64_t size);

/**
 * Lists the artifacts of a run directly under artifact_path (NULL: the
 * root), as the server has them (uploads still pending are not shown).
 * run_id: a run id, or a URI as mlo_download_artifacts takes.  Synchronous;
 * needs a tracking URI.  Statuses: MLO_OK (also for a path that does not
 * exist: no entries), MLO_ERR_INVALID_ARGUMENT, MLO_ERR_INVALID_PATH,
 * MLO_ERR_CONFIG (no tracking URI), MLO_ERR_NOT_FOUND (unknown run or
 * model), MLO_ERR_ARTIFACTS_NOT_PROXIED, network and server statuses,
 * MLO_ERR_CLOSED, MLO_ERR_NO_MEMORY.  Threads: any.
 */
MLO_API int mlo_list_artifacts(mlo_client_t *client, const char *run_id, const char *artifact_path,
                               mlo_artifact_fn fn, void *user_data);

/**
 * Downloads artifacts into dest_dir (created if missing): the file or the
 * whole directory tree at artifact_path (NULL: everything), keeping the
 * relative layout below artifact_path.  Each file is streamed to
 * "<name>.mlo-part" and renamed when complete.  Nothing is ever written
 * outside dest_dir, whatever names the server returns
 * (MLO_ERR_INVALID_PATH).  run_id is a run id or one of the URIs MLflow
 * understands: "runs:/<run_id>[/<path>]", "models:/<name>/<version>",
 * "models:/<name>@<alias>" (the model version's source; artifact_path is then
 * relative to it).  Synchronous; needs a tracking URI.  Statuses: as
 * mlo_list_artifacts, plus MLO_ERR_IO (dest_dir not writable, disk full).
 * Threads: any.
 */
MLO_API int mlo_download_artifacts(mlo_client_t *client, const char *run_id,
                                   const char *artifact_path, const char *dest_dir);

/**
 * Registers the run's artifact directory artifact_path (e.g. "model") as a
 * new version of the registered model `name`, creating the registered model
 * if it does not exist yet (as MLflow's register_model).  Waits first for
 * the run to exist on the server and for its pending artifact uploads (at
 * most the request timeout), so the version points at uploaded files.  The
 * version's source is "<run's artifact URI>/<artifact_path>", its run_id the
 * run's.  *version (may be NULL) gets the new version number.  Synchronous;
 * needs a tracking URI.  Statuses: MLO_OK, MLO_ERR_INVALID_ARGUMENT,
 * MLO_ERR_INVALID_PATH, MLO_ERR_CONFIG (no tracking URI), MLO_ERR_TIMEOUT
 * (the run or its uploads are not on the server yet), network and server
 * statuses, MLO_ERR_CLOSED, MLO_ERR_NO_MEMORY.  Threads: any.
 */
MLO_API int mlo_register_model(mlo_run_t *run, const char *artifact_path, const char *name,
                               int64_t *version);

/**
 * Points alias (e.g. "champion") of registered model `name` at version
 * (moving it if it pointed elsewhere), so "models:/<name>@<alias>" resolves
 * to it.  Synchronous.  Statuses: MLO_OK, MLO_ERR_INVALID_ARGUMENT,
 * MLO_ERR_CONFIG, MLO_ERR_NOT_FOUND, MLO_ERR_SERVER_INVALID (an alias the
 * server refuses: "latest", "v1"), network and server statuses,
 * MLO_ERR_CLOSED, MLO_ERR_NO_MEMORY.  Threads: any.
 */
MLO_API int mlo_set_model_alias(mlo_client_t *client, const char *name, const char *alias,
                                int64_t version);

/**
 * Records that the run used a dataset (MLflow's log_input: the run's
 * "Datasets used"), for auditing which data trained which model.
 * name: the dataset's name.  source: where it lives: a local path, a URL
 * ("https://...", "s3://...") or a versioned reference ("dvc://...",
 * "lakefs://..."); sent as MLflow's source JSON, {"url": ...} for http(s)
 * (as MLflow's HTTPDatasetSource) and {"uri": ...} otherwise, with the
 * scheme ("http" for both http and https; "local" for a path or file:) as
 * source type.  A relative path is made absolute.  digest: the content digest, or NULL
 * to have mlo compute one from a local file or directory source by reading
 * it (SHA-256 over the content, in chunks; for a directory over its sorted
 * relative paths and files' contents), given as its first 32 hex characters.
 * The record goes through the queue and the store like a tag (no network
 * on the call; works offline, uploaded by `mlo sync`).
 * Statuses: MLO_OK, MLO_ERR_INVALID_ARGUMENT (NULL or empty run, name,
 * source or digest; a name over 500 characters, a digest over 36, a URI
 * scheme over 36, a source over 65535 once in its JSON, a record over half
 * the event queue; a NULL digest with a source that is a URI, not a local
 * path), MLO_ERR_INVALID_UTF8, MLO_ERR_IO (a NULL digest and the local
 * source is missing, unreadable or not a regular file or directory),
 * MLO_ERR_QUEUE_FULL, MLO_ERR_CLOSED, MLO_ERR_NO_MEMORY (computing a
 * digest).  Threads: any.
 */
MLO_API int mlo_log_dataset(mlo_run_t *run, const char *name, const char *source,
                            const char *digest);

/* ---- Histograms (latency and other value streams) ----------------------- */

typedef struct mlo_histogram mlo_histogram_t;

/**
 * Creates a histogram that aggregates a stream of non-negative values (for
 * example request latencies in milliseconds) recorded from any number of
 * threads, and every interval_ms emits them as metrics of `run`:
 * `<key>.p50`, `<key>.p95`, `<key>.p99`, `<key>.max`, `<key>.count` (values in
 * the interval) and `<key>.rate` (values per second), with the interval's
 * number as step.  Intervals without values emit nothing.  Quantiles carry a
 * relative error of at most 1% (logarithmic buckets, as DDSketch).
 * key: a valid metric key of at most 240 characters.  interval_ms: 100 to
 * 3,600,000.  Statuses: MLO_OK (*out set), MLO_ERR_INVALID_ARGUMENT,
 * MLO_ERR_INVALID_KEY, MLO_ERR_INVALID_UTF8, MLO_ERR_NO_MEMORY.  The histogram
 * belongs to the run's client; free it with mlo_histogram_free before closing
 * the client.  Threads: any.
 */
MLO_API int mlo_histogram_new(mlo_run_t *run, const char *key, unsigned interval_ms,
                              mlo_histogram_t **out);

/**
 * Records one value: no lock, no allocation, no system call.  Negative and
 * NaN values are refused (MLO_ERR_INVALID_ARGUMENT); values below 1e-9 count
 * as 0; +Infinity is kept in max only.  A histogram inherited across fork()
 * answers MLO_ERR_CLOSED (here and in mlo_histogram_new/_free).  Threads:
 * any number at once.
 */
MLO_API int mlo_histogram_record(mlo_histogram_t *h, double value);

/**
 * Emits what was recorded since the last interval, stops the histogram and
 * frees it.  NULL is a no-op returning MLO_OK.  Threads: once, after every
 * thread has stopped recording into it.
 */
MLO_API int mlo_histogram_free(mlo_histogram_t *h);

#ifdef __cplusplus
}
#endif
#endif /* MLO_H */
