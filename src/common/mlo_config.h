/*
 * mlo_config.h - a client's configuration, resolved once at open from the
 * program's options (mlo_options_t), the MLflow environment variables and
 * the defaults (mlo_config.c), and MLflow's limits that go with it.
 */
#ifndef MLO_CONFIG_H
#define MLO_CONFIG_H

#include "mlo.h"
#include "mlo_clock.h"
#include "mlo_transport.h"

#include <stddef.h>
#include <stdint.h>

struct statvfs;

/* MLflow's limits (../shared/MLFLOW.md) */
#define MLO_MAX_KEY_CHARS 250
#define MLO_MAX_PARAM_CHARS 6000
#define MLO_MAX_TAG_CHARS 8000
#define MLO_BATCH_MAX_METRICS 1000
#define MLO_BATCH_MAX_PARAMS 100
#define MLO_BATCH_MAX_TAGS 100
#define MLO_BATCH_MAX_TOTAL 1000
#define MLO_BATCH_MAX_BYTES (900u * 1024u) /* under MLflow's documented 1 MB */
#define MLO_MAX_INFLIGHT_DEFAULT 4         /* log-batch requests in flight (README "Performance") */
#define MLO_MAX_INFLIGHT_LIMIT 16
/* system metrics (mlo_sysmetrics.c) */
#define MLO_SYS_MIN_INTERVAL_S 0.001
#define MLO_SYS_MAX_INTERVAL_S 86400.0
#define MLO_SYS_MAX_SAMPLES 1000000
#define MLO_SYS_MAX_GPUS 16                           /* GPUs beyond are not sampled */
#define MLO_STORE_RETENTION_DEFAULT_S (7 * 24 * 3600) /* MLO_STORE_RETENTION */

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
    int queue_impl;   /* 0 = lock-free ring, 1 = mutex queue (benchmark baseline) */
    char *store_dir;  /* the store directory (option, $MLO_STORE_DIR, ./mlo-store) */
    int durable;      /* 1: ring in a file + run log (default); 0: memory only */
    int fsync_policy; /* mlo_fsync_policy */
    unsigned fsync_interval_ms;
    int max_inflight; /* log-batch requests in flight at once, 1..16 (mlo_sender.c) */
    /* system metrics (common/mlo_sysmetrics.c), as MLflow's variables name them */
    int sys_enabled;       /* default of new runs: $MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING */
    double sys_interval_s; /* $MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL, default 10 */
    int sys_samples;       /* $MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING, default 1 */
    char *sys_node_id;     /* $MLFLOW_SYSTEM_METRICS_NODE_ID, NULL: none */
    char *sys_disk_path;   /* NULL: the store's file system, else "/" */
    /* their seams for tests: where /proc and /sys are ("" the real ones),
     * the NVML library (NULL libnvidia-ml.so.1, "" none), statvfs, and no
     * sampler thread (the test calls mlo__sysmetrics_tick) */
    char *sys_root;
    char *sys_nvml;
    int (*sys_statvfs)(const char *path, struct statvfs *out);
    int sys_manual;

    /* the store's retention and size cap (store/mlo_retention.c) */
    int64_t store_retention_ms; /* acknowledged data kept this long; -1 forever, 0 at once */
    int64_t store_max_bytes;    /* 0: no cap */
    /* seams for tests (never set by a program): NULL = libcurl / the system clock */
    mlo_transport_new_fn new_transport;
    void *transport_user;
    const mlo_clock *clock;
} mlo_config;

/* Resolves opts (may be NULL) + environment + defaults into cfg.  On failure
 * returns a status and writes a message into err. */
int mlo__config_resolve(const mlo_options_t *opts, mlo_config *cfg, char *err, size_t errlen);
void mlo__config_free(mlo_config *cfg);
/* Every environment variable that changes a client's behaviour: those
 * mlo__config_resolve reads (an assertion there keeps this list whole) and
 * the multipart settings (rest/mlo_api_artifacts.c).  NULL-terminated.  Tests
 * clear them, so that the environment they run in cannot change what they
 * check. */
extern const char *const mlo__config_env[];

/* Test and benchmark hooks on options (not in the public header). */
/* The queue implementation: 0 ring, 1 mutex. */
int mlo__config_set_queue_impl(mlo_options_t *opts, int impl);
/* The transport every request of the client goes through, and the clock it
 * and the engines use (tests/mlo_fake_transport.c). */
int mlo__config_set_transport(mlo_options_t *opts, mlo_transport_new_fn fn, void *user);
int mlo__config_set_clock(mlo_options_t *opts, const mlo_clock *clock);
/* The system-metrics sampler's sources (mlo_sysmetrics.c): root ("" or NULL:
 * the real /proc and /sys), the NVML library to load (NULL:
 * libnvidia-ml.so.1, "": none), statvfs (NULL: the system's), and manual =
 * 1: no sampler thread, the test drives mlo__sysmetrics_tick. */
int mlo__config_set_sysmetrics_sources(mlo_options_t *opts, const char *root, const char *nvml,
                                       int (*statvfs_fn)(const char *, struct statvfs *),
                                       int manual);

#endif /* MLO_CONFIG_H */
