/*
 * fuzz_config.c - libFuzzer target: the tracking URI and every other
 * configuration value, as a program passes them (the public mlo_options_*
 * setters) and as the environment does (MLFLOW_* variables), resolved by
 * mlo__config_resolve the way mlo_client_open does; plus MLflow's key and
 * value rules (mlo__validate_key / _value), which see every user string.
 *
 * Input: lines ('\n').  A line is one of
 *   MLFLOW_NAME=value  or  MLO_NAME=value   setenv (any such name, so new
 *                                           variables are covered unseen)
 *   @uri=V  @experiment_name=V  @experiment_id=V  @token=V  @ca=V
 *   @client_cert=V                          the string setters ("@uri" alone:
 *                                           NULL)
 *   @basic=USER:PASS  (@basic alone: NULL, NULL; no ':': USER, NULL)
 *   @insecure=N  @retries=N,F,F,F  @queue_bytes=N  @full_policy=N,N
 *   @close_timeout=N  @flush_interval=N     numeric setters (strtoll/strtod:
 *                                           nan, inf, hex, huge all reach them)
 *   @store_dir=V  @durable=N  @fsync=N,N    the store (durable run log)
 *   @callback  @nocallback                  error callback on / off
 *   @noopts                                 resolve without an options object
 *   @key=V  @value=V                        validate as a key / a value
 * Anything else is ignored.  Every variable set is unset again before the
 * next input, so each input is reproducible on its own.  The verdict the
 * replay checks against "ok-"/"bad-" file names (tests/fuzz_replay.c) is the
 * last @key/@value line's if there is one, else whether the config resolved.
 *
 * Checks (abort = a crash for libFuzzer):
 *  - every call returns a status the header lists for it;
 *  - a resolved config is sane: no URI (the local store) or an http(s) URI
 *    with a host part and no trailing '/', retries 0..10, finite non-negative backoff and jitter,
 *    a positive timeout, a power-of-two queue within bounds, ...;
 *  - the option set by the program wins over the environment;
 *  - a refusal comes with a message, and no message ever carries the token or
 *    the password (those with a '#': see no_secret);
 *  - key validation agrees with MLflow's rules on length and characters;
 *  - no leak, no memory or UB error.
 * Built with clang -fsanitize=fuzzer (tests/meson.build) and, with
 * tests/fuzz_replay.c, as a plain program replaying tests/corpus/config.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mlo.h"
#include "mlo_config.h"
#include "mlo_validate.h"

__attribute__((weak)) int mlo_fuzz_accepted;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_config: check failed: %s: ", #cond);                             \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_VARS 64
static char *set_names[MAX_VARS];
static size_t nset;

/* What the program set, to check that it wins. */
typedef struct expect {
    const char *uri; /* the last accepted @uri (non-NULL) */
    int retries;     /* the last accepted max_retries (>= 0), else -1 */
    const char *token, *password, *user;
    int callback;
    int noopts;
    const char *store_dir; /* the last accepted @store_dir (non-NULL) */
    int durable;           /* -1 unset, else the last @durable */
} expect;

static void on_error(void *user, mlo_status st, const char *msg) {
    (void)user;
    (void)st;
    (void)msg;
}

static int one_of(int st, const int *allowed, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (st == allowed[i])
            return 1;
    return 0;
}

#define ALLOWED(st, ...)                                                                           \
    do {                                                                                           \
        static const int ok_[] = {__VA_ARGS__};                                                    \
        CHECK(one_of((st), ok_, sizeof ok_ / sizeof ok_[0]), "%s returned %d", what, (st));        \
    } while (0)

/* Setters of strings: MLO_OK, NULL handle, bad UTF-8, OOM (+ per-setter). */
#define STR_STATUSES MLO_OK, MLO_ERR_INVALID_ARGUMENT, MLO_ERR_INVALID_UTF8, MLO_ERR_NO_MEMORY

static int is_pow2(size_t v) {
    return v && !(v & (v - 1));
}

static void check_key(const char *k) {
    size_t len = (size_t)-1;
    int st = mlo__validate_key(k, &len);
    CHECK(st == MLO_OK || st == MLO_ERR_INVALID_KEY || st == MLO_ERR_INVALID_UTF8,
          "validate_key returned %d", st);
    mlo_fuzz_accepted = st == MLO_OK;
    if (st != MLO_OK)
        return;
    size_t n = strlen(k);
    CHECK(len == n, "validate_key length %zu of %zu", len, n);
    CHECK(n > 0, "empty key accepted");
    CHECK(mlo__validate_utf8(k, n), "key with bad UTF-8 accepted");
    size_t chars = 0;
    for (size_t i = 0; i < n; i++)
        chars += ((unsigned char)k[i] & 0xC0) != 0x80;
    CHECK(chars <= MLO_MAX_KEY_CHARS, "key of %zu characters accepted", chars);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        CHECK(c >= 0x80 || strchr("_-. /:", c) || (c >= '0' && c <= '9') ||
                  (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'),
              "key with character 0x%02x accepted", c);
    }
    CHECK(k[0] != '/' && k[n - 1] != '/' && !strstr(k, "//"), "key %s is not normalized", k);
    CHECK(strncmp(k, "..", 2) && strcmp(k, ".") && !strstr(k, "/./") && !strstr(k, "/../") &&
              strncmp(k, "./", 2) && !(n >= 2 && !strcmp(k + n - 2, "/.")) &&
              !(n >= 3 && !strcmp(k + n - 3, "/..")),
          "key %s is not normalized", k);
}

static void check_value(const char *v) {
    size_t len = (size_t)-1;
    int trunc = -1;
    int st = mlo__validate_value(v, MLO_MAX_PARAM_CHARS, &len, &trunc);
    CHECK(st == MLO_OK || st == MLO_ERR_INVALID_UTF8, "validate_value returned %d", st);
    mlo_fuzz_accepted = st == MLO_OK;
    size_t n = strlen(v);
    CHECK(st == MLO_OK || !mlo__validate_utf8(v, n), "valid UTF-8 refused");
    if (st != MLO_OK)
        return;
    CHECK(mlo__validate_utf8(v, n), "bad UTF-8 accepted");
    CHECK(len <= n && (trunc == 0 || trunc == 1), "len %zu of %zu, truncated %d", len, n, trunc);
    CHECK(trunc || len == n, "shortened without saying so");
    CHECK(mlo__validate_utf8(v, len), "truncated inside a character");
}

/* Parses "a,b,c" numbers; missing ones stay as they are. */
static void nums(const char *s, double *out, size_t n) {
    for (size_t i = 0; i < n && s && *s; i++) {
        char *end;
        out[i] = strtod(s, &end);
        s = strchr(end, ',');
        if (s)
            s++;
    }
}

static void do_line(mlo_options_t *o, char *line, expect *ex) {
    char *eq = strchr(line, '=');
    const char *v = eq ? eq + 1 : NULL;
    if (eq)
        *eq = 0;
    const char *what = line;
    if (line[0] != '@') {
        if (!v || (strncmp(line, "MLFLOW_", 7) && strncmp(line, "MLO_", 4)) || nset >= MAX_VARS)
            return;
        if (setenv(line, v, 1) == 0) {
            set_names[nset] = strdup(line);
            if (set_names[nset])
                nset++;
            else
                unsetenv(line);
        }
        return;
    }
    const char *cmd = line + 1;
    int st;
    if (!strcmp(cmd, "uri")) {
        st = mlo_options_set_tracking_uri(o, v);
        /* MLO_ERR_INVALID_UTF8 is not listed by the header (finding; reported) */
        ALLOWED(st, MLO_OK, MLO_ERR_CONFIG, MLO_ERR_INVALID_UTF8, MLO_ERR_NO_MEMORY);
        if (st == MLO_OK)
            ex->uri = v;
    } else if (!strcmp(cmd, "experiment_name")) {
        st = mlo_options_set_experiment_name(o, v);
        ALLOWED(st, STR_STATUSES);
    } else if (!strcmp(cmd, "experiment_id")) {
        st = mlo_options_set_experiment_id(o, v);
        ALLOWED(st, STR_STATUSES);
    } else if (!strcmp(cmd, "token")) {
        st = mlo_options_set_token(o, v);
        ALLOWED(st, STR_STATUSES);
        if (st == MLO_OK) /* a refused call keeps the previous token */
            ex->token = v;
    } else if (!strcmp(cmd, "ca")) {
        st = mlo_options_set_ca_cert_path(o, v);
        ALLOWED(st, STR_STATUSES);
    } else if (!strcmp(cmd, "client_cert")) {
        st = mlo_options_set_client_cert_path(o, v);
        ALLOWED(st, STR_STATUSES);
    } else if (!strcmp(cmd, "basic")) {
        char *colon = v ? strchr(v, ':') : NULL;
        if (colon)
            *colon = 0;
        st = mlo_options_set_basic_auth(o, v, colon ? colon + 1 : NULL);
        ALLOWED(st, STR_STATUSES);
        /* a refused call keeps the previous credentials */
        if (st == MLO_OK) {
            ex->user = v;
            ex->password = colon ? colon + 1 : NULL;
        }
    } else if (!strcmp(cmd, "insecure")) {
        st = mlo_options_set_insecure_tls(o, v ? atoi(v) : 0);
        ALLOWED(st, MLO_OK);
    } else if (!strcmp(cmd, "retries")) {
        double a[4] = {-1, -1, -1, -1};
        nums(v, a, 4);
        int r = isnan(a[0]) ? 0 : a[0] > 1e6 ? 1000000 : a[0] < -1e6 ? -1000000 : (int)a[0];
        st = mlo_options_set_retries(o, r, a[1], a[2], a[3]);
        ALLOWED(st, MLO_OK, MLO_ERR_INVALID_ARGUMENT);
        if (st == MLO_OK) {
            CHECK(r <= 10, "max_retries %d accepted", r);
            ex->retries = r >= 0 ? r : -1; /* negative: back to env/default */
        }
    } else if (!strcmp(cmd, "queue_bytes")) {
        st = mlo_options_set_queue_bytes(o, v ? (size_t)strtoull(v, NULL, 0) : 0);
        ALLOWED(st, MLO_OK, MLO_ERR_INVALID_ARGUMENT);
    } else if (!strcmp(cmd, "full_policy")) {
        double a[2] = {0, 0};
        nums(v, a, 2);
        int pol = isnan(a[0]) || fabs(a[0]) > 1e6 ? 7 : (int)a[0];
        unsigned w = isnan(a[1]) || a[1] < 0 || a[1] > 4e9 ? 0xffffffffu : (unsigned)a[1];
        st = mlo_options_set_full_policy(o, (mlo_full_policy)pol, w);
        ALLOWED(st, MLO_OK, MLO_ERR_INVALID_ARGUMENT);
    } else if (!strcmp(cmd, "close_timeout")) {
        st = mlo_options_set_close_timeout_ms(o, v ? (unsigned)strtoul(v, NULL, 0) : 0);
        ALLOWED(st, MLO_OK, MLO_ERR_INVALID_ARGUMENT);
    } else if (!strcmp(cmd, "flush_interval")) {
        st = mlo_options_set_flush_interval_ms(o, v ? (unsigned)strtoul(v, NULL, 0) : 0);
        ALLOWED(st, MLO_OK, MLO_ERR_INVALID_ARGUMENT);
    } else if (!strcmp(cmd, "store_dir")) {
        st = mlo_options_set_store_dir(o, v);
        ALLOWED(st, STR_STATUSES);
        if (st == MLO_OK)
            ex->store_dir = v;
    } else if (!strcmp(cmd, "durable")) {
        st = mlo_options_set_durable(o, v ? atoi(v) : 0);
        ALLOWED(st, MLO_OK);
        ex->durable = v && atoi(v) ? 1 : 0;
    } else if (!strcmp(cmd, "fsync")) {
        double a[2] = {0, 0};
        nums(v, a, 2);
        int pol = isnan(a[0]) || fabs(a[0]) > 1e6 ? 7 : (int)a[0];
        unsigned ms = isnan(a[1]) || a[1] < 0 || a[1] > 4e9 ? 0xffffffffu : (unsigned)a[1];
        st = mlo_options_set_fsync(o, (mlo_fsync_policy)pol, ms);
        ALLOWED(st, MLO_OK, MLO_ERR_INVALID_ARGUMENT);
    } else if (!strcmp(cmd, "callback")) {
        st = mlo_options_set_error_callback(o, on_error, ex);
        ALLOWED(st, MLO_OK);
        ex->callback = 1;
    } else if (!strcmp(cmd, "nocallback")) {
        st = mlo_options_set_error_callback(o, NULL, NULL);
        ALLOWED(st, MLO_OK);
        ex->callback = 0;
    } else if (!strcmp(cmd, "noopts")) {
        ex->noopts = 1;
    } else if (!strcmp(cmd, "key") && v) {
        check_key(v);
    } else if (!strcmp(cmd, "value") && v) {
        check_value(v);
    }
}

static void check_uri(const char *u, const expect *ex) {
    size_t n = strlen(u);
    size_t scheme = !strncasecmp(u, "http://", 7) ? 7 : !strncasecmp(u, "https://", 8) ? 8 : 0;
    if (!scheme && (!strcasecmp(u, "http:") || !strcasecmp(u, "https:")))
        scheme = n + 2; /* all slashes stripped: see the FINDING below */
    CHECK(scheme, "URI %s is not http(s)", u);
    /* curl reads "http:///host" as "http://host", but mlo refuses a URI whose
     * host is missing or starts with '/': "http:///" once passed and resolved to
     * "http:" (a fuzzing finding, now a CHECK; corpus/config/bad-uri-only-slashes). */
    /* a host must follow the scheme: "http:///" or "http:///x" is refused */
    CHECK(n > scheme && u[scheme] != '/' && u[scheme] != '?' && u[scheme] != '#',
          "URI %s names no host", u);
    CHECK(u[n - 1] != '/', "URI %s ends with '/'", u);
    CHECK(mlo__validate_utf8(u, n), "URI is not UTF-8");
    if (!ex->noopts && ex->uri) {
        size_t m = strlen(ex->uri);
        while (m > 0 && ex->uri[m - 1] == '/')
            m--;
        CHECK(n == m && !strncmp(u, ex->uri, m), "option URI %s lost to %s", ex->uri, u);
    }
}

static void check_config(const mlo_config *c, const expect *ex) {
    const char *u = c->tracking_uri;
    /* no URI: the local store (durable run log) is the destination */
    CHECK(u != NULL || ex->noopts || !ex->uri, "option URI %s lost", ex->uri);
    if (u)
        check_uri(u, ex);

    CHECK(c->max_retries >= 0 && c->max_retries <= 10, "max_retries %d", c->max_retries);
    if (!ex->noopts && ex->retries >= 0)
        CHECK(c->max_retries == ex->retries, "option retries %d lost to %d", ex->retries,
              c->max_retries);
    CHECK(isfinite(c->backoff_factor_s) && c->backoff_factor_s >= 0 && c->backoff_factor_s <= 3600,
          "backoff %g", c->backoff_factor_s);
    CHECK(isfinite(c->jitter_s) && c->jitter_s >= 0 && c->jitter_s <= 3600, "jitter %g",
          c->jitter_s);
    CHECK(isfinite(c->timeout_s) && c->timeout_s > 0 && c->timeout_s <= 86400, "timeout %g",
          c->timeout_s);
    CHECK(c->insecure_tls == 0 || c->insecure_tls == 1, "insecure %d", c->insecure_tls);
    CHECK(c->respect_retry_after == 0 || c->respect_retry_after == 1, "retry-after %d",
          c->respect_retry_after);
    CHECK(is_pow2(c->queue_bytes) && c->queue_bytes >= (64u << 10) && c->queue_bytes <= (1u << 30),
          "queue_bytes %zu", c->queue_bytes);
    CHECK(c->full_policy == MLO_FULL_WAIT || c->full_policy == MLO_FULL_DROP, "policy %d",
          (int)c->full_policy);
    CHECK(c->full_wait_ms <= 60000, "full_wait %u", c->full_wait_ms);
    CHECK(c->flush_interval_ms >= 1 && c->flush_interval_ms <= 60000, "flush %u",
          c->flush_interval_ms);
    CHECK((c->user == NULL) == (c->password == NULL), "user without password or the reverse");
    CHECK(!(c->user && c->token), "both basic auth and a token");
    if (!ex->noopts && ex->user && ex->password)
        CHECK(c->user && !strcmp(c->user, ex->user) && !strcmp(c->password, ex->password),
              "option basic auth lost");
    CHECK(ex->noopts || !ex->callback || c->error_fn == on_error, "callback lost");
    /* the store (durable run log) */
    CHECK(c->durable == 0 || c->durable == 1, "durable %d", c->durable);
    CHECK(c->tracking_uri || c->durable, "neither a tracking URI nor the store");
    if (!ex->noopts && ex->durable >= 0)
        CHECK(c->durable == ex->durable, "option durable %d lost", ex->durable);
    CHECK(c->store_dir && *c->store_dir, "no store directory");
    if (!ex->noopts && ex->store_dir)
        CHECK(!strcmp(c->store_dir, ex->store_dir), "option store dir %s lost to %s", ex->store_dir,
              c->store_dir);
    CHECK(c->fsync_policy >= MLO_FSYNC_NONE && c->fsync_policy <= MLO_FSYNC_ALWAYS, "fsync %d",
          c->fsync_policy);
    CHECK(c->fsync_policy != MLO_FSYNC_INTERVAL ||
              (c->fsync_interval_ms >= 1 && c->fsync_interval_ms <= 3600000),
          "fsync interval %u", c->fsync_interval_ms);
}

static void no_secret(const char *msg, const char *secret) {
    /* A secret that is a word of the fixed text ("MLFLOW_TRACKI") would match by
     * chance: only secrets with a '#', which no message template has, are looked for. */
    if (secret && strlen(secret) >= 6 && strchr(secret, '#'))
        CHECK(!strstr(msg, secret), "message carries a secret: %s", msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mlo_fuzz_accepted = -1;
    /* whatever the surrounding environment holds must not leak into an input */
    for (size_t i = 0; mlo__config_env[i]; i++)
        unsetenv(mlo__config_env[i]);

    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;

    mlo_options_t *o = mlo_options_new();
    CHECK(o != NULL, "mlo_options_new returned NULL");
    expect ex = {.retries = -1, .durable = -1};
    /* strsep keeps empty lines, strtok would merge them */
    char *save = text;
    for (char *line; (line = strsep(&save, "\n")) != NULL;)
        do_line(o, line, &ex);

    /* a NULL options handle is refused by every setter */
    {
        const char *what = "setter with NULL options";
        ALLOWED(mlo_options_set_tracking_uri(NULL, "http://x"), MLO_ERR_INVALID_ARGUMENT);
        ALLOWED(mlo_options_set_retries(NULL, 1, 1, 1, 1), MLO_ERR_INVALID_ARGUMENT);
    }

    mlo_config cfg;
    char err[256];
    memset(err, 0, sizeof err);
    int st = mlo__config_resolve(ex.noopts ? NULL : o, &cfg, err, sizeof err);
    const char *what = "mlo__config_resolve";
    ALLOWED(st, MLO_OK, MLO_ERR_CONFIG, MLO_ERR_INVALID_ARGUMENT, MLO_ERR_NO_MEMORY);
    if (mlo_fuzz_accepted == -1)
        mlo_fuzz_accepted = st == MLO_OK;
    if (st == MLO_OK) {
        check_config(&cfg, &ex);
        mlo__config_free(&cfg);
    } else {
        CHECK(err[0] != 0, "refused (%d) without a message", st);
    }
    CHECK(memchr(err, 0, sizeof err) != NULL, "message not terminated");
    no_secret(err, ex.token);
    no_secret(err, ex.password);
    no_secret(err, getenv("MLFLOW_TRACKING_TOKEN"));
    no_secret(err, getenv("MLFLOW_TRACKING_PASSWORD"));

    mlo_options_free(o);
    for (size_t i = 0; i < nset; i++) {
        unsetenv(set_names[i]);
        free(set_names[i]);
    }
    nset = 0;
    free(text);
    return 0;
}
