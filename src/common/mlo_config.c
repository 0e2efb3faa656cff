/*
 * mlo_config.c - options set by the program, the MLflow environment variables
 * behind them, and the defaults behind those.
 *
 * An mlo_options_t only records what the program set (each field with a "set"
 * flag); mlo__config_resolve turns it into an mlo_config when a client opens,
 * reading the environment for everything left unset.  Secrets (token,
 * password) are copied once into the config and never formatted into a
 * message.  Threads: an options object belongs to one thread at a time;
 * resolve only reads it.
 */
#define _GNU_SOURCE
#include "mlo_config.h"
#include "mlo_buf.h"

#include "mlo_validate.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define OPTS_MAGIC 0x6d6c6f4fu /* "mloO" */

struct mlo_options {
    uint32_t magic;
    char *tracking_uri;
    int tracking_uri_set;
    char *experiment_name;
    char *experiment_id;
    char *token;
    char *user;
    char *password;
    int auth_basic_set;
    int insecure_tls; /* -1 unset */
    char *ca_path;
    char *client_cert_path;
    int max_retries; /* < 0 unset */
    double backoff_factor_s, jitter_s, timeout_s;
    size_t queue_bytes;
    int policy_set;
    mlo_full_policy full_policy;
    unsigned full_wait_ms;
    int close_timeout_set;
    unsigned close_timeout_ms;
    unsigned flush_interval_ms;
    mlo_error_fn error_fn;
    void *error_user;
    int queue_impl;
    char *store_dir;
    int durable; /* -1 unset */
    int fsync_set;
    int fsync_policy;
    unsigned fsync_interval_ms;
    int max_inflight; /* 0 unset */
    int retention_set;
    int64_t retention_s;
    int max_bytes_set;
    int64_t max_bytes;
    mlo_transport_new_fn new_transport;
    void *transport_user;
    const mlo_clock *clock;
    int sys_enabled;       /* -1 unset */
    double sys_interval_s; /* < 0 unset */
    int sys_samples;       /* < 0 unset */
    int sys_node_id_set;
    char *sys_node_id; /* "" none (wins over the environment) */
    char *sys_disk_path;
    char *sys_root;
    char *sys_nvml;
    int sys_nvml_set;
    int (*sys_statvfs)(const char *, struct statvfs *);
    int sys_manual;
};

static int set_str(char **dst, const char *v) {
    char *copy = NULL;
    if (v) {
        if (!mlo__validate_utf8(v, strlen(v)))
            return MLO_ERR_INVALID_UTF8;
        copy = strdup(v);
        if (!copy)
            return MLO_ERR_NO_MEMORY;
    }
    free(*dst);
    *dst = copy;
    return MLO_OK;
}

MLO_API mlo_options_t *mlo_options_new(void) {
    mlo_options_t *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->magic = OPTS_MAGIC;
    o->insecure_tls = -1;
    o->max_retries = -1;
    o->backoff_factor_s = o->jitter_s = o->timeout_s = -1;
    o->durable = -1;
    o->sys_enabled = -1;
    o->sys_interval_s = -1;
    o->sys_samples = -1;
    return o;
}

static void wipe_free(char *s) {
    if (s) {
        /* secrets do not linger in freed memory */
        volatile char *p = s;
        while (*p)
            *p++ = 0;
        free(s);
    }
}

MLO_API void mlo_options_free(mlo_options_t *o) {
    if (!o || o->magic != OPTS_MAGIC)
        return;
    free(o->tracking_uri);
    free(o->experiment_name);
    free(o->experiment_id);
    wipe_free(o->token);
    wipe_free(o->user);
    wipe_free(o->password);
    free(o->ca_path);
    free(o->client_cert_path);
    free(o->store_dir);
    free(o->sys_node_id);
    free(o->sys_disk_path);
    free(o->sys_root);
    free(o->sys_nvml);
    o->magic = 0;
    free(o);
}

#define CHECK_OPTS(o)                                                                              \
    do {                                                                                           \
        if (!(o) || (o)->magic != OPTS_MAGIC)                                                      \
            return MLO_ERR_INVALID_ARGUMENT;                                                       \
    } while (0)

static int check_uri(const char *uri) {
    size_t skip;
    if (strncasecmp(uri, "http://", 7) == 0)
        skip = 7;
    else if (strncasecmp(uri, "https://", 8) == 0)
        skip = 8;
    else
        return MLO_ERR_CONFIG;
    /* a host must follow: "http:///x" or "http://?q" name none */
    char c = uri[skip];
    if (c == 0 || c == '/' || c == '?' || c == '#')
        return MLO_ERR_CONFIG;
    return MLO_OK;
}

/* A credential goes into an HTTP header: CR or LF would forge headers. */
static int header_safe(const char *v) {
    return !v || strpbrk(v, "\r\n") == NULL;
}

/* Validates a secret, then replaces *dst, wiping the old one; a refused
 * value leaves what was set before. */
static int set_secret(char **dst, const char *v) {
    if (v && !mlo__validate_utf8(v, strlen(v)))
        return MLO_ERR_INVALID_UTF8;
    if (!header_safe(v))
        return MLO_ERR_INVALID_ARGUMENT;
    char *copy = NULL;
    if (v && !(copy = strdup(v)))
        return MLO_ERR_NO_MEMORY;
    wipe_free(*dst);
    *dst = copy;
    return MLO_OK;
}

MLO_API int mlo_options_set_tracking_uri(mlo_options_t *o, const char *uri) {
    CHECK_OPTS(o);
    if (uri && check_uri(uri) != MLO_OK)
        return MLO_ERR_CONFIG;
    int st = set_str(&o->tracking_uri, uri);
    if (st == MLO_OK)
        o->tracking_uri_set = 1;
    return st;
}

MLO_API int mlo_options_set_experiment_name(mlo_options_t *o, const char *name) {
    CHECK_OPTS(o);
    if (name && !*name)
        return MLO_ERR_INVALID_ARGUMENT;
    return set_str(&o->experiment_name, name);
}

MLO_API int mlo_options_set_experiment_id(mlo_options_t *o, const char *id) {
    CHECK_OPTS(o);
    if (id && !*id)
        return MLO_ERR_INVALID_ARGUMENT;
    return set_str(&o->experiment_id, id);
}

MLO_API int mlo_options_set_token(mlo_options_t *o, const char *token) {
    CHECK_OPTS(o);
    return set_secret(&o->token, token);
}

MLO_API int mlo_options_set_basic_auth(mlo_options_t *o, const char *user, const char *password) {
    CHECK_OPTS(o);
    if ((user == NULL) != (password == NULL))
        return MLO_ERR_INVALID_ARGUMENT;
    /* validate both before touching either: a refused pair keeps the old one */
    if (user && (!mlo__validate_utf8(user, strlen(user)) ||
                 !mlo__validate_utf8(password, strlen(password))))
        return MLO_ERR_INVALID_UTF8;
    if (!header_safe(user) || !header_safe(password) || (user && strchr(user, ':')))
        return MLO_ERR_INVALID_ARGUMENT;
    char *nu = NULL, *np = NULL;
    if (user && (!(nu = strdup(user)) || !(np = strdup(password)))) {
        free(nu);
        return MLO_ERR_NO_MEMORY;
    }
    wipe_free(o->user);
    wipe_free(o->password);
    o->user = nu;
    o->password = np;
    o->auth_basic_set = user != NULL;
    return MLO_OK;
}

MLO_API int mlo_options_set_insecure_tls(mlo_options_t *o, int insecure) {
    CHECK_OPTS(o);
    o->insecure_tls = insecure ? 1 : 0;
    return MLO_OK;
}

MLO_API int mlo_options_set_ca_cert_path(mlo_options_t *o, const char *path) {
    CHECK_OPTS(o);
    return set_str(&o->ca_path, path);
}

MLO_API int mlo_options_set_client_cert_path(mlo_options_t *o, const char *path) {
    CHECK_OPTS(o);
    return set_str(&o->client_cert_path, path);
}

MLO_API int mlo_options_set_retries(mlo_options_t *o, int max_retries, double backoff_factor_s,
                                    double jitter_s, double timeout_s) {
    CHECK_OPTS(o);
    if (isnan(backoff_factor_s) || isnan(jitter_s) || isnan(timeout_s) || max_retries > 10 ||
        backoff_factor_s > 3600 || jitter_s > 3600 || timeout_s > 86400 || timeout_s == 0)
        return MLO_ERR_INVALID_ARGUMENT;
    o->max_retries = max_retries < 0 ? -1 : max_retries;
    o->backoff_factor_s = backoff_factor_s < 0 ? -1 : backoff_factor_s;
    o->jitter_s = jitter_s < 0 ? -1 : jitter_s;
    o->timeout_s = timeout_s < 0 ? -1 : timeout_s;
    return MLO_OK;
}

MLO_API int mlo_options_set_queue_bytes(mlo_options_t *o, size_t bytes) {
    CHECK_OPTS(o);
    if (bytes < (64u << 10) || bytes > (1u << 30))
        return MLO_ERR_INVALID_ARGUMENT;
    size_t p = 64u << 10;
    while (p < bytes)
        p <<= 1;
    o->queue_bytes = p;
    return MLO_OK;
}

MLO_API int mlo_options_set_full_policy(mlo_options_t *o, mlo_full_policy policy,
                                        unsigned wait_ms) {
    CHECK_OPTS(o);
    if (policy != MLO_FULL_WAIT && policy != MLO_FULL_DROP)
        return MLO_ERR_INVALID_ARGUMENT;
    if (wait_ms > 60000)
        return MLO_ERR_INVALID_ARGUMENT;
    o->policy_set = 1;
    o->full_policy = policy;
    o->full_wait_ms = wait_ms;
    return MLO_OK;
}

MLO_API int mlo_options_set_close_timeout_ms(mlo_options_t *o, unsigned timeout_ms) {
    CHECK_OPTS(o);
    o->close_timeout_set = 1;
    o->close_timeout_ms = timeout_ms;
    return MLO_OK;
}

MLO_API int mlo_options_set_flush_interval_ms(mlo_options_t *o, unsigned interval_ms) {
    CHECK_OPTS(o);
    if (interval_ms < 1 || interval_ms > 60000)
        return MLO_ERR_INVALID_ARGUMENT;
    o->flush_interval_ms = interval_ms;
    return MLO_OK;
}

MLO_API int mlo_options_set_error_callback(mlo_options_t *o, mlo_error_fn fn, void *user_data) {
    CHECK_OPTS(o);
    o->error_fn = fn;
    o->error_user = fn ? user_data : NULL;
    return MLO_OK;
}

MLO_API int mlo_options_set_store_dir(mlo_options_t *o, const char *dir) {
    CHECK_OPTS(o);
    if (dir && !*dir)
        return MLO_ERR_INVALID_ARGUMENT;
    return set_str(&o->store_dir, dir);
}

MLO_API int mlo_options_set_durable(mlo_options_t *o, int durable) {
    CHECK_OPTS(o);
    o->durable = durable ? 1 : 0;
    return MLO_OK;
}

MLO_API int mlo_options_set_fsync(mlo_options_t *o, mlo_fsync_policy policy, unsigned interval_ms) {
    CHECK_OPTS(o);
    if (policy != MLO_FSYNC_NONE && policy != MLO_FSYNC_INTERVAL && policy != MLO_FSYNC_ALWAYS)
        return MLO_ERR_INVALID_ARGUMENT;
    if (policy == MLO_FSYNC_INTERVAL && (interval_ms < 1 || interval_ms > 3600000))
        return MLO_ERR_INVALID_ARGUMENT;
    o->fsync_set = 1;
    o->fsync_policy = policy;
    o->fsync_interval_ms = interval_ms;
    return MLO_OK;
}

MLO_API int mlo_options_set_max_inflight(mlo_options_t *o, unsigned n) {
    CHECK_OPTS(o);
    if (n < 1 || n > MLO_MAX_INFLIGHT_LIMIT)
        return MLO_ERR_INVALID_ARGUMENT;
    o->max_inflight = (int)n;
    return MLO_OK;
}

MLO_API int mlo_options_set_system_metrics(mlo_options_t *o, int enable) {
    CHECK_OPTS(o);
    o->sys_enabled = enable ? 1 : 0;
    return MLO_OK;
}

MLO_API int mlo_options_set_system_metrics_sampling(mlo_options_t *o, double interval_s,
                                                    int samples_before_logging) {
    CHECK_OPTS(o);
    if (isnan(interval_s) ||
        (interval_s >= 0 &&
         (interval_s < MLO_SYS_MIN_INTERVAL_S || interval_s > MLO_SYS_MAX_INTERVAL_S)) ||
        samples_before_logging == 0 || samples_before_logging > MLO_SYS_MAX_SAMPLES)
        return MLO_ERR_INVALID_ARGUMENT;
    o->sys_interval_s = interval_s < 0 ? -1 : interval_s;
    o->sys_samples = samples_before_logging < 0 ? -1 : samples_before_logging;
    return MLO_OK;
}

/* MLO_OK when every metric name under node id `node` is a key MLflow takes. */
static int check_node_id(const char *node) {
    char key[MLO_MAX_KEY_CHARS * 4 + 64];
    if (strlen(node) > MLO_MAX_KEY_CHARS)
        return MLO_ERR_INVALID_KEY;
    snprintf(key, sizeof key, "system/%s/gpu_%d_power_usage_percentage", node,
             MLO_SYS_MAX_GPUS - 1);
    size_t len;
    return mlo__validate_key(key, &len);
}

MLO_API int mlo_options_set_system_metrics_node_id(mlo_options_t *o, const char *node_id) {
    CHECK_OPTS(o);
    if (node_id && *node_id) {
        int st = check_node_id(node_id);
        if (st != MLO_OK)
            return st;
    }
    int st = set_str(&o->sys_node_id, node_id);
    if (st == MLO_OK)
        o->sys_node_id_set = node_id != NULL;
    return st;
}

MLO_API int mlo_options_set_system_metrics_disk_path(mlo_options_t *o, const char *path) {
    CHECK_OPTS(o);
    if (path && !*path)
        return MLO_ERR_INVALID_ARGUMENT;
    return set_str(&o->sys_disk_path, path);
}

int mlo__config_set_sysmetrics_sources(mlo_options_t *o, const char *root, const char *nvml,
                                       int (*statvfs_fn)(const char *, struct statvfs *),
                                       int manual) {
    CHECK_OPTS(o);
    int st = set_str(&o->sys_root, root);
    if (st == MLO_OK)
        st = set_str(&o->sys_nvml, nvml);
    if (st != MLO_OK)
        return st;
    o->sys_nvml_set = nvml != NULL;
    o->sys_statvfs = statvfs_fn;
    o->sys_manual = manual;
    return MLO_OK;
}

MLO_API int mlo_options_set_store_retention(mlo_options_t *o, int64_t seconds) {
    CHECK_OPTS(o);
    if (seconds < -1)
        return MLO_ERR_INVALID_ARGUMENT;
    o->retention_set = 1;
    o->retention_s = seconds;
    return MLO_OK;
}

MLO_API int mlo_options_set_store_max_bytes(mlo_options_t *o, int64_t bytes) {
    CHECK_OPTS(o);
    if (bytes < 0)
        return MLO_ERR_INVALID_ARGUMENT;
    o->max_bytes_set = 1;
    o->max_bytes = bytes;
    return MLO_OK;
}

int mlo__config_set_queue_impl(mlo_options_t *o, int impl) {
    CHECK_OPTS(o);
    if (impl != 0 && impl != 1)
        return MLO_ERR_INVALID_ARGUMENT;
    o->queue_impl = impl;
    return MLO_OK;
}

int mlo__config_set_transport(mlo_options_t *o, mlo_transport_new_fn fn, void *user) {
    CHECK_OPTS(o);
    o->new_transport = fn;
    o->transport_user = user;
    return MLO_OK;
}

int mlo__config_set_clock(mlo_options_t *o, const mlo_clock *clock) {
    CHECK_OPTS(o);
    o->clock = clock;
    return MLO_OK;
}

/* ---- resolution ---------------------------------------------------------- */

const char *const mlo__config_env[] = {"MLFLOW_TRACKING_URI",
                                       "MLFLOW_EXPERIMENT_NAME",
                                       "MLFLOW_EXPERIMENT_ID",
                                       "MLFLOW_RUN_ID",
                                       "MLFLOW_TRACKING_TOKEN",
                                       "MLFLOW_TRACKING_USERNAME",
                                       "MLFLOW_TRACKING_PASSWORD",
                                       "MLFLOW_TRACKING_INSECURE_TLS",
                                       "MLFLOW_TRACKING_SERVER_CERT_PATH",
                                       "MLFLOW_TRACKING_CLIENT_CERT_PATH",
                                       "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
                                       "MLFLOW_HTTP_REQUEST_TIMEOUT",
                                       "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
                                       "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER",
                                       "MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER",
                                       "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD",
                                       "MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE",
                                       "MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE",
                                       "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING",
                                       "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL",
                                       "MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING",
                                       "MLFLOW_SYSTEM_METRICS_NODE_ID",
                                       "MLO_STORE_DIR",
                                       "MLO_STORE_RETENTION",
                                       "MLO_STORE_MAX_BYTES",
                                       "MLO_MAX_INFLIGHT",
                                       NULL};

static int env_listed(const char *name) {
    for (size_t i = 0; mlo__config_env[i]; i++)
        if (!strcmp(mlo__config_env[i], name))
            return 1;
    return 0;
}

static const char *env(const char *name) {
    assert(env_listed(name) && "add it to mlo__config_env");
    (void)env_listed;
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int env_bool(const char *name, int dflt, int *out) {
    const char *v = env(name);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes")) {
        *out = 1;
        return 0;
    }
    if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no")) {
        *out = 0;
        return 0;
    }
    return -1;
}

static int env_double(const char *name, double dflt, double lo, double hi, double *out) {
    const char *v = env(name);
    if (!v) {
        *out = dflt;
        return 0;
    }
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || isnan(d) || d < lo || d > hi)
        return -1;
    *out = d;
    return 0;
}

/* "<integer><unit>": *out = integer * the unit's factor (units[i] names
 * the unit of factors[i]; no unit: factor 1).  -1 when malformed or out of
 * range. */
static int parse_scaled(const char *v, const char *const *units, const int64_t *factors,
                        size_t nunits, int64_t *out) {
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v)
        return -1;
    int64_t f = 1;
    if (*end) {
        size_t i = 0;
        while (i < nunits && strcasecmp(end, units[i]) != 0)
            i++;
        if (i == nunits)
            return -1;
        f = factors[i];
    }
    if (n > 0 && n > INT64_MAX / f)
        return -1;
    *out = (int64_t)n * f;
    return 0;
}

/* MLO_STORE_RETENTION: seconds, or with s/m/h/d; -1 forever.  The option
 * wins.  Result in ms (-1: forever). */
static int resolve_retention(const mlo_options_t *o, int64_t *ms) {
    int64_t s = MLO_STORE_RETENTION_DEFAULT_S;
    if (o->retention_set) {
        s = o->retention_s;
    } else if (env("MLO_STORE_RETENTION")) {
        static const char *const u[] = {"s", "m", "h", "d"};
        static const int64_t f[] = {1, 60, 3600, 86400};
        if (parse_scaled(env("MLO_STORE_RETENTION"), u, f, 4, &s) != 0 || s < -1)
            return -1;
    }
    *ms = s < 0 ? -1 : s > INT64_MAX / 1000 ? INT64_MAX : s * 1000;
    return 0;
}

/* MLO_STORE_MAX_BYTES: bytes, or with K/M/G/T (powers of 1024, "KiB" and
 * "KB" alike); 0 no cap.  The option wins. */
static int resolve_max_bytes(const mlo_options_t *o, int64_t *bytes) {
    *bytes = 0;
    if (o->max_bytes_set) {
        *bytes = o->max_bytes;
    } else if (env("MLO_STORE_MAX_BYTES")) {
        static const char *const u[] = {"k",  "m",   "g",   "t",   "kb",  "mb", "gb",
                                        "tb", "kib", "mib", "gib", "tib", "b"};
#define KI 1024LL
        static const int64_t f[] = {KI, KI * KI, KI * KI * KI, KI * KI * KI * KI,
                                    KI, KI * KI, KI * KI * KI, KI * KI * KI * KI,
                                    KI, KI * KI, KI * KI * KI, KI * KI * KI * KI,
                                    1};
#undef KI
        if (parse_scaled(env("MLO_STORE_MAX_BYTES"), u, f, 13, bytes) != 0 || *bytes < 0)
            return -1;
    }
    return 0;
}

static int dup_or(char **dst, const char *a, const char *b) {
    const char *v = a ? a : b;
    *dst = NULL;
    if (!v)
        return 0;
    *dst = strdup(v);
    return *dst ? 0 : -1;
}

int mlo__config_resolve(const mlo_options_t *o, mlo_config *c, char *err, size_t errlen) {
    static const mlo_options_t empty = {.magic = OPTS_MAGIC,
                                        .durable = -1,
                                        .insecure_tls = -1,
                                        .max_retries = -1,
                                        .backoff_factor_s = -1,
                                        .jitter_s = -1,
                                        .timeout_s = -1,
                                        .sys_enabled = -1,
                                        .sys_interval_s = -1,
                                        .sys_samples = -1};
    memset(c, 0, sizeof *c);
    if (!o)
        o = &empty;
    if (o->magic != OPTS_MAGIC) {
        mlo__buf_errf(err, errlen, "invalid options handle");
        return MLO_ERR_INVALID_ARGUMENT;
    }
    int st = MLO_ERR_NO_MEMORY;
    const char *uri = o->tracking_uri_set ? o->tracking_uri : env("MLFLOW_TRACKING_URI");
    c->durable = o->durable >= 0 ? o->durable : 1;
    if (!uri && !c->durable) {
        mlo__buf_errf(err, errlen,
                      "no tracking URI and the store is turned off: set MLFLOW_TRACKING_URI or "
                      "mlo_options_set_tracking_uri, or keep the store on (local runs)");
        st = MLO_ERR_CONFIG;
        goto fail;
    }
    if (dup_or(&c->store_dir, o->store_dir, env("MLO_STORE_DIR")) ||
        (!c->store_dir && !(c->store_dir = strdup("./mlo-store"))))
        goto fail;
    c->fsync_policy = o->fsync_set ? o->fsync_policy : MLO_FSYNC_INTERVAL;
    c->fsync_interval_ms = o->fsync_set ? o->fsync_interval_ms : 1000;
    if (!uri)
        goto no_uri;
    if (check_uri(uri) != MLO_OK) {
        mlo__buf_errf(err, errlen, "tracking URI must start with http:// or https://");
        st = MLO_ERR_CONFIG;
        goto fail;
    }
    if (!mlo__validate_utf8(uri, strlen(uri))) {
        mlo__buf_errf(err, errlen, "tracking URI is not valid UTF-8");
        st = MLO_ERR_CONFIG;
        goto fail;
    }
    c->tracking_uri = strdup(uri);
    if (!c->tracking_uri)
        goto fail;
    size_t ul = strlen(c->tracking_uri);
    while (ul > 0 && c->tracking_uri[ul - 1] == '/')
        c->tracking_uri[--ul] = 0;
no_uri:

    if (dup_or(&c->experiment_name, o->experiment_name, env("MLFLOW_EXPERIMENT_NAME")) ||
        dup_or(&c->experiment_id, o->experiment_id, env("MLFLOW_EXPERIMENT_ID")) ||
        dup_or(&c->run_id_env, NULL, env("MLFLOW_RUN_ID")) ||
        dup_or(&c->ca_path, o->ca_path, env("MLFLOW_TRACKING_SERVER_CERT_PATH")) ||
        dup_or(&c->client_cert_path, o->client_cert_path, env("MLFLOW_TRACKING_CLIENT_CERT_PATH")))
        goto fail;
    if (o->auth_basic_set) {
        if (dup_or(&c->user, o->user, NULL) || dup_or(&c->password, o->password, NULL))
            goto fail;
    } else if (env("MLFLOW_TRACKING_USERNAME") && env("MLFLOW_TRACKING_PASSWORD")) {
        if (dup_or(&c->user, env("MLFLOW_TRACKING_USERNAME"), NULL) ||
            dup_or(&c->password, env("MLFLOW_TRACKING_PASSWORD"), NULL))
            goto fail;
    }
    if (!c->user && dup_or(&c->token, o->token, env("MLFLOW_TRACKING_TOKEN")))
        goto fail;
    if (!header_safe(c->token) || !header_safe(c->user) || !header_safe(c->password) ||
        (c->user && strchr(c->user, ':'))) {
        mlo__buf_errf(err, errlen,
                      "the tracking credentials (MLFLOW_TRACKING_TOKEN, _USERNAME, _PASSWORD) "
                      "must not contain line breaks, nor the username a colon");
        st = MLO_ERR_CONFIG;
        goto fail;
    }

    if (o->insecure_tls >= 0)
        c->insecure_tls = o->insecure_tls;
    else if (env_bool("MLFLOW_TRACKING_INSECURE_TLS", 0, &c->insecure_tls)) {
        mlo__buf_errf(err, errlen, "MLFLOW_TRACKING_INSECURE_TLS must be true or false");
        st = MLO_ERR_CONFIG;
        goto fail;
    }
    double d;
    if (o->max_retries >= 0)
        c->max_retries = o->max_retries;
    else if (env_double("MLFLOW_HTTP_REQUEST_MAX_RETRIES", 5, 0, 1e9, &d) ||
             d != (double)(long long)d) {
        mlo__buf_errf(err, errlen,
                      "MLFLOW_HTTP_REQUEST_MAX_RETRIES must be a non-negative integer");
        st = MLO_ERR_CONFIG;
        goto fail;
    } else
        c->max_retries = d > 10 ? 10 : (int)d; /* MLflow caps it at 10 */
    if (o->backoff_factor_s >= 0)
        c->backoff_factor_s = o->backoff_factor_s;
    else if (env_double("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", 2, 0, 3600, &c->backoff_factor_s)) {
        mlo__buf_errf(err, errlen,
                      "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR must be a number of seconds");
        st = MLO_ERR_CONFIG;
        goto fail;
    }
    if (o->jitter_s >= 0)
        c->jitter_s = o->jitter_s;
    else if (env_double("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", 1.0, 0, 3600, &c->jitter_s)) {
        mlo__buf_errf(err, errlen,
                      "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER must be a number of seconds");
        st = MLO_ERR_CONFIG;
        goto fail;
    }
    if (o->timeout_s > 0)
        c->timeout_s = o->timeout_s;
    else if (env_double("MLFLOW_HTTP_REQUEST_TIMEOUT", 120, 0.001, 86400, &c->timeout_s)) {
        mlo__buf_errf(err, errlen,
                      "MLFLOW_HTTP_REQUEST_TIMEOUT must be a positive number of seconds");
        st = MLO_ERR_CONFIG;
        goto fail;
    }
    if (env_bool("MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER", 1, &c->respect_retry_after)) {
        mlo__buf_errf(err, errlen, "MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER must be true or false");
        st = MLO_ERR_CONFIG;
        goto fail;
    }
    c->queue_bytes = o->queue_bytes ? o->queue_bytes : (8u << 20);
    c->full_policy = o->policy_set ? o->full_policy : MLO_FULL_WAIT;
    c->full_wait_ms = o->policy_set ? o->full_wait_ms : 100;
    c->close_timeout_ms = o->close_timeout_set ? o->close_timeout_ms : 10000;
    c->flush_interval_ms = o->flush_interval_ms ? o->flush_interval_ms : 100;
    c->error_fn = o->error_fn;
    c->error_user = o->error_user;
    c->queue_impl = o->queue_impl;
    c->new_transport = o->new_transport;
    c->transport_user = o->transport_user;
    c->clock = o->clock;
    if (o->max_inflight)
        c->max_inflight = o->max_inflight;
    else if (env_double("MLO_MAX_INFLIGHT", MLO_MAX_INFLIGHT_DEFAULT, 1, MLO_MAX_INFLIGHT_LIMIT,
                        &d) ||
             d != (double)(int)d) {
        mlo__buf_errf(err, errlen, "MLO_MAX_INFLIGHT must be an integer from 1 to %d",
                      MLO_MAX_INFLIGHT_LIMIT);
        st = MLO_ERR_CONFIG;
        goto fail;
    } else
        c->max_inflight = (int)d;

    /* system metrics: MLflow's variables, where 0 or empty mean the default
     * as in MLflow (`env.get() or default`) */
    if (o->sys_enabled >= 0)
        c->sys_enabled = o->sys_enabled;
    else if (env_bool("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", 0, &c->sys_enabled)) {
        mlo__buf_errf(err, errlen, "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING must be true or false");
        st = MLO_ERR_CONFIG;
        goto fail;
    }
    if (o->sys_interval_s > 0)
        c->sys_interval_s = o->sys_interval_s;
    else if (env_double("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", 10, 0, MLO_SYS_MAX_INTERVAL_S,
                        &c->sys_interval_s) ||
             (c->sys_interval_s > 0 && c->sys_interval_s < MLO_SYS_MIN_INTERVAL_S)) {
        mlo__buf_errf(err, errlen,
                      "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL must be a number of seconds from "
                      "%g to %g",
                      MLO_SYS_MIN_INTERVAL_S, MLO_SYS_MAX_INTERVAL_S);
        st = MLO_ERR_CONFIG;
        goto fail;
    } else if (c->sys_interval_s == 0)
        c->sys_interval_s = 10;
    if (o->sys_samples > 0)
        c->sys_samples = o->sys_samples;
    else if (env_double("MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING", 1, 0, MLO_SYS_MAX_SAMPLES,
                        &d) ||
             d != (double)(int)d) {
        mlo__buf_errf(err, errlen,
                      "MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING must be an integer from 1 "
                      "to %d",
                      MLO_SYS_MAX_SAMPLES);
        st = MLO_ERR_CONFIG;
        goto fail;
    } else
        c->sys_samples = d == 0 ? 1 : (int)d;
    const char *node = o->sys_node_id_set ? o->sys_node_id : env("MLFLOW_SYSTEM_METRICS_NODE_ID");
    if (node && *node) {
        if (check_node_id(node) != MLO_OK) {
            mlo__buf_errf(err, errlen,
                          "MLFLOW_SYSTEM_METRICS_NODE_ID must make metric keys MLflow accepts "
                          "(system/<node id>/...: letters, digits, _ - . space /)");
            st = MLO_ERR_CONFIG;
            goto fail;
        }
        if (!(c->sys_node_id = strdup(node))) {
            st = MLO_ERR_NO_MEMORY;
            goto fail;
        }
    }
    if (dup_or(&c->sys_disk_path, o->sys_disk_path, NULL) ||
        dup_or(&c->sys_root, o->sys_root, NULL) ||
        (o->sys_nvml_set && dup_or(&c->sys_nvml, o->sys_nvml, NULL)))
        goto fail;
    c->sys_statvfs = o->sys_statvfs;
    c->sys_manual = o->sys_manual;
    if (resolve_retention(o, &c->store_retention_ms) != 0) {
        mlo__buf_errf(err, errlen,
                      "MLO_STORE_RETENTION must be -1 (forever) or a number of "
                      "seconds, optionally with s, m, h or d (e.g. 7d)");
        st = MLO_ERR_CONFIG;
        goto fail;
    }
    if (resolve_max_bytes(o, &c->store_max_bytes) != 0) {
        mlo__buf_errf(err, errlen,
                      "MLO_STORE_MAX_BYTES must be 0 (no cap) or a number of bytes, "
                      "optionally with K, M, G or T (e.g. 500M)");
        st = MLO_ERR_CONFIG;
        goto fail;
    }
    return MLO_OK;
fail:
    if (st == MLO_ERR_NO_MEMORY)
        mlo__buf_errf(err, errlen, "out of memory");
    mlo__config_free(c);
    return st;
}

void mlo__config_free(mlo_config *c) {
    free(c->tracking_uri);
    free(c->experiment_name);
    free(c->experiment_id);
    free(c->run_id_env);
    wipe_free(c->token);
    wipe_free(c->user);
    wipe_free(c->password);
    free(c->ca_path);
    free(c->client_cert_path);
    free(c->store_dir);
    free(c->sys_node_id);
    free(c->sys_disk_path);
    free(c->sys_root);
    free(c->sys_nvml);
    memset(c, 0, sizeof *c);
}
