/*
 * mlo_http.h - the HTTP transport: one libcurl easy handle per sending
 * thread, MLflow's retry rules, deadlines, TLS and auth options.
 *
 * mlo_http.c is the only file of the library that includes <curl/curl.h>;
 * nothing of curl appears here.  See the design comment at the top of
 * mlo_http.c for the threading rules (one mlo_http per thread) and for what
 * is retried and how.
 */
#ifndef MLO_HTTP_H
#define MLO_HTTP_H

#include "mlo_buf.h"

#include <stddef.h>
#include <stdint.h>

typedef struct mlo_http_config {
    const char *base_uri;         /* tracking URI, e.g. "http://127.0.0.1:5000" or
                                     "https://h/prefix" (trailing slashes are ignored) */
    const char *token;            /* Bearer token or NULL */
    const char *user, *password;  /* Basic auth when both non-NULL (wins over token) */
    int insecure_tls;             /* 1: no peer/host verification */
    const char *ca_path;          /* CA bundle or NULL */
    const char *client_cert_path; /* PEM client cert (+key in the same file) or NULL */
    int max_retries;              /* 0..10 (clamped) */
    double backoff_factor_s;      /* retry n waits ~ factor * 2^(n-1) s, capped at 120 s, */
    double jitter_s;              /* plus random jitter in [0, jitter_s] */
    double timeout_s;             /* per attempt; <= 0 means 120 s; connect timeout
                                     min(timeout, 10 s) */
    int respect_retry_after;      /* honour Retry-After (seconds or HTTP date), capped at 120 s */
    const char *user_agent;       /* e.g. "mlo/0.1.0"; NULL -> "mlo" */
    /* Called on the calling thread before each counted retry with a short
     * message (no secrets): for the error callback and statistics.  May be NULL. */
    void (*on_retry)(void *ctx, long http_code, const char *message);
    /* Polled during backoff sleeps (every <= 50 ms) and during transfers (curl's
     * progress callback, about once a second while idle, more often while
     * data moves); non-zero aborts the call with status 8.  May be NULL. */
    int (*should_abort)(void *ctx);
    void *ctx;
} mlo_http_config;

/* One per sending thread: owns one CURL easy handle whose connection is
 * reused (keep-alive) from call to call.  Not thread-safe. */
typedef struct mlo_http mlo_http;

/* Copies every string of cfg (cfg may be freed afterwards).  Calls
 * mlo__http_global_init() itself.  NULL on OOM, when curl cannot make a
 * handle, or when base_uri is NULL or the token, user, password or user
 * agent holds a CR or LF (it would inject header lines: validate config
 * first).  Threads: any; the handle then belongs to one thread at a time. */
mlo_http *mlo__http_new(const mlo_http_config *cfg);
/* Frees the handle, closes its connection, wipes the stored credentials.
 * NULL is fine. */
void mlo__http_free(mlo_http *h);

typedef struct mlo_http_result {
    int status;            /* 0 (MLO_OK) = got an HTTP response (any code); else an mlo_status:
                              9 network failure after the retries (or a transport error that
                              retrying cannot fix), 10 TLS failure, 8 deadline passed / too close
                              for the next retry, or should_abort, 7 no memory, 18 URL scheme or
                              syntax refused by curl, 1 invalid arguments */
    long http_code;        /* HTTP status of the last attempt, 0 if it got none.  Also kept when
                              status is 8 because the deadline left no room to retry a 5xx/429. */
    mlo_buf body;          /* body of the last response (the call inits it; free with
                              mlo__http_result_free) */
    char content_type[64]; /* of the last response, "" if none */
    char message[256];     /* failures: what went wrong (curl's error text, the path, a hint);
                              never contains credentials.  "" when status is 0. */
    int retries;           /* counted retries performed (each one preceded by on_retry) */
    int reconnects;        /* immediate, uncounted retries after a reused keep-alive
                              connection turned out dead (0 or 1) */
} mlo_http_result;

/*
 * Performs one request with MLflow's retry rules.
 *
 * method: "GET", "POST", "PUT" (any other token, e.g. "DELETE", is sent as a
 * custom method, with body/len as a POST body when len > 0).
 * api_path: relative to base_uri, starting with '/', e.g.
 * "/api/2.0/mlflow/runs/log-batch".  query: already URL-encoded "a=b&c=d" or
 * NULL.  body/len: for POST (Content-Type: application/json) and PUT
 * (application/octet-stream); never compressed; borrowed for the call only.
 * deadline_ns: CLOCK_MONOTONIC deadline for the whole call including retries
 * and backoff, 0 = none; no attempt and no sleep goes past it.
 *
 * Retries (MLflow's own client rules): HTTP 408, 429, 500, 502, 503, 504 and
 * connection failures (couldn't connect or resolve, send/recv errors, empty
 * reply, a response cut short, the per-attempt timeout), every method, up to
 * max_retries, waiting factor * 2^(n-1) s (<= 120 s) + jitter, or the
 * server's Retry-After when respect_retry_after.  Plus one immediate retry,
 * not counted, when a request on a reused connection fails at once with a
 * send/recv error or an empty reply.  Other HTTP codes (400, 401, 403, 404,
 * 3xx: redirects are never followed) return at once with status 0.
 *
 * res is initialised by the call (its previous content is not freed) and
 * must be released with mlo__http_result_free.  Returns res->status.
 * Threads: the thread that owns h.
 */
int mlo__http_call(mlo_http *h, const char *method, const char *api_path, const char *query,
                   const char *body, size_t len, int64_t deadline_ns, mlo_http_result *res);
/* Frees res->body; res can be reused afterwards.  NULL is fine. */
void mlo__http_result_free(mlo_http_result *r);

/* Appends s percent-encoded (RFC 3986: everything but ALPHA DIGIT - . _ ~)
 * to out, for query values and path segments.  h may be NULL.  0 / -1 on OOM. */
int mlo__http_urlencode(mlo_http *h, const char *s, mlo_buf *out);

/* curl_global_init, once per process (pthread_once).  Call before starting
 * threads that use curl in other ways; mlo__http_new calls it too. */
void mlo__http_global_init(void);

/* Test and statistics hook: new connections this handle has opened so far
 * (a keep-alive connection reused from call to call counts once). */
long mlo__http_connects(const mlo_http *h);

#endif /* MLO_HTTP_H */
