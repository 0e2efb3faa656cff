/*
 * mlo_http.h - HTTP requests with MLflow's rules: URL, auth, headers,
 * retries (mlo_retry.c), deadlines, messages without secrets.  Each
 * mlo_http owns one transport (mlo_transport.h: libcurl, or a test's), so
 * one connection per sending thread.
 *
 * See the design comment at the top of mlo_http.c for the threading rules
 * (one mlo_http per thread) and for what is retried and how.
 */
#ifndef MLO_HTTP_H
#define MLO_HTTP_H

#include "mlo_buf.h"
#include "mlo_clock.h"
#include "mlo_transport.h"

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
    /* Called after every attempt with its outcome (mlo_xfer_outcome): the
     * caller learns that the server cannot be reached, or answers again.
     * May be NULL. */
    void (*on_attempt)(void *ctx, int outcome);
    void *ctx;
    /* The transport maker (NULL: libcurl's) and its argument, and the clock
     * that backoff sleeps and deadlines use (NULL: the system's). */
    mlo_transport_new_fn new_transport;
    void *transport_user;
    const mlo_clock *clock;
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
                              syntax refused by curl, 23 the body file could not be read (it
                              shrank, an I/O error) or the response file could not be written
                              (ENOSPC, EFBIG, EIO; never retried), 1 invalid arguments */
    long http_code;        /* HTTP status of the last attempt, 0 if it got none.  Also kept when
                              status is 8 because the deadline left no room to retry a 5xx/429. */
    mlo_buf body;          /* body of the last response (the call inits it; free with
                              mlo__http_result_free).  With req->out_fd >= 0 only a non-2xx
                              body lands here (at most 1 MiB of it; the rest is dropped). */
    char content_type[64]; /* of the last response, "" if none */
    char etag[128];        /* ETag header of the last response exactly as sent (quotes kept),
                              "" if none or if it does not fit */
    char message[256];     /* failures: what went wrong (curl's error text, the path, a hint);
                              never contains credentials nor the query of a URL.  "" when
                              status is 0. */
    int retries;           /* counted retries performed (each one preceded by on_retry) */
    int reconnects;        /* immediate, uncounted retries after a reused keep-alive
                              connection turned out dead (0 or 1) */
    /* Body bytes of the last attempt: request body sent, and response body
     * received (to the file or to body, dropped ones included). */
    uint64_t bytes_sent, bytes_received;
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
 * Threads: the thread that owns h.  Same as mlo__http_request with an
 * in-memory body and no files.
 */
int mlo__http_call(mlo_http *h, const char *method, const char *api_path, const char *query,
                   const char *body, size_t len, int64_t deadline_ns, mlo_http_result *res);
/*
 * One request, in full: what mlo__http_call does (it is a wrapper over this),
 * plus presigned URLs, custom content types and bodies streamed from and to
 * files with bounded memory (artifacts of any size).
 *
 * Start from MLO_HTTP_REQ_INIT: in_fd and out_fd must be -1 unless used (0 is
 * a valid descriptor, stdin, and would be taken at its word).
 */
typedef struct mlo_http_req {
    const char *method; /* "GET", "PUT", "POST", "DELETE", ... (upper-case token) */
    /* "/api/..." relative to base_uri, or an absolute "http://" / "https://" URL
     * (a presigned URL): that one is used as it is, base_uri's prefix is not
     * applied, query is ignored and NO Authorization header (neither Basic
     * nor Bearer) is sent.  Messages name such a URL without its query. */
    const char *path;
    const char *query; /* already URL-encoded "a=b&c=d" or NULL */
    /* In-memory body, borrowed for the call (as mlo__http_call), or ... */
    const char *body;
    size_t len;
    /* ... with in_fd >= 0 (and body NULL, len 0): the body is the bytes
     * [in_off, in_off + in_len) of that file, read with pread (the fd's own
     * offset is untouched), sent with Content-Length (never chunked) and read
     * again from in_off for every attempt.  If the file ends before in_off +
     * in_len (it shrank) or a read fails, the call stops with status 23, not
     * retried.  Not for GET. */
    int in_fd;
    int64_t in_off, in_len;
    /* ... NULL, or the file is still being written (an artifact uploaded
     * while it is staged): before reading at or beyond the end it last
     * gave, in_ready(in_ctx, off) is called, blocks until the file holds
     * more than off bytes, and returns how many it holds (> off); -1 stops
     * the body (status 23, as for a file that shrank).  Called on the
     * calling thread, from inside the transfer; it bounds its own wait. */
    int64_t (*in_ready)(void *ctx, int64_t off);
    void *in_ctx;
    /* ... NULL, or set (relaxed) to the file offset up to which the body
     * was handed to the connection: progress another thread may watch */
    _Atomic int64_t *in_sent;
    /* NULL: application/json for a body of a method other than PUT (as
     * mlo__http_call), application/octet-stream for PUT.  Sent only with a
     * body (or a PUT).  CR/LF is refused (status 1). */
    const char *content_type;
    /* >= 0 (a regular file open for writing): the file is truncated to 0 at
     * the start of every attempt, and a 2xx response body is written to it
     * from offset 0 with pwrite (so a retried download never leaves a
     * previous attempt's bytes); a non-2xx body still goes to res->body (the
     * error JSON) and nothing to the file.  When the call ends with a status
     * other than 0 the file is truncated to 0 again (best effort).  A failed
     * write (ENOSPC, EFBIG, EIO) stops the call at once with status 23.  No
     * fsync: that is the caller's business.  -1: everything into res->body. */
    int out_fd;
    int64_t deadline_ns; /* CLOCK_MONOTONIC deadline for the whole call, 0 = none */
    /* 1: the request creates something (runs/create) and repeating it after
     * it may have reached the server would create it twice.  A transport
     * failure after the request may have been delivered (the answer lost:
     * connection reset or closed, nothing received, timeout) then ends the
     * call at once with status 9 (message "... the request may have taken
     * effect") instead of being retried, so that the caller can look for
     * what it created first.  Failures before anything was sent (resolve,
     * connect) and HTTP 408/429/5xx answers are retried as usual. */
    int not_idempotent;
} mlo_http_req;

#define MLO_HTTP_REQ_INIT                                                                          \
    { .in_fd = -1, .out_fd = -1 }

/*
 * Performs req with the rules of mlo__http_call (retries, deadline, backoff,
 * should_abort, TLS, auth, statuses) and fills res the same way.
 *
 * Per-attempt time limit: a request with in_fd >= 0 or out_fd >= 0 is
 * "streamed" and its attempts have no total time limit (a 2 GB artifact may
 * take longer than timeout_s): an attempt fails instead when no byte moved
 * in either direction for timeout_s (an idle limit, checked about once a
 * second; a retryable timeout like any other).  Other requests keep the total
 * per-attempt limit of timeout_s.  The deadline bounds everything.  Memory
 * use does not depend on the size of a streamed body.
 *
 * res is initialised by the call and must be released with
 * mlo__http_result_free.  Returns res->status.  Threads: the thread that
 * owns h.
 */
int mlo__http_request(mlo_http *h, const mlo_http_req *req, mlo_http_result *res);

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
