/*
 * mlo_transport.h - the seam under the HTTP layer: one attempt of one HTTP
 * request, whatever carries it.
 *
 * mlo_http.c (the request loop: URL, headers, auth, MLflow's retry policy
 * through mlo_retry.c, deadlines, messages without secrets) calls a
 * transport once per attempt.  The library's transport is libcurl
 * (mlo_transport_curl.c, the only file that includes curl.h); tests plug in
 * a scripted one (tests/mlo_fake_transport.c) through the same table, so
 * every rule above the wire runs without a socket.
 *
 * A transport reports what happened on the wire, not what it means: either a
 * response came back (http_code, headers, body) or the attempt failed in one
 * of the ways the retry policy tells apart (nothing sent / maybe delivered /
 * timed out / TLS / local file).  It never retries, sleeps or formats
 * credentials; its detail text may quote the URL (the caller scrubs it).
 *
 * Threads: one transport per thread (each owns its connection); the maker
 * may be called from any thread.
 */
#ifndef MLO_TRANSPORT_H
#define MLO_TRANSPORT_H

#include "mlo_buf.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* How an attempt ended. */
typedef enum mlo_xfer_outcome {
    MLO_XF_RESPONSE = 0,    /* an HTTP response came back (any code) */
    MLO_XF_CONNECT,         /* resolve or connect failed: the request was not sent */
    MLO_XF_LOST,            /* send/recv error, empty reply, a cut response: the request may
                               have reached the server */
    MLO_XF_TIMEOUT,         /* the attempt's time limit or idle limit ran out (may have been
                               delivered) */
    MLO_XF_TLS_HANDSHAKE,   /* the TLS handshake broke off: worth retrying */
    MLO_XF_TLS,             /* certificate or TLS set-up: retrying cannot help */
    MLO_XF_TLS_CLIENT_CERT, /* the server refused our client certificate */
    MLO_XF_URL,             /* URL or scheme refused */
    MLO_XF_BODY_FILE,       /* reading the body file failed or it shrank (file_errno: 0) */
    MLO_XF_RESPONSE_FILE,   /* writing the response file failed (file_errno) */
    MLO_XF_NO_MEMORY,
    MLO_XF_ABORTED, /* should_abort said stop */
    MLO_XF_FATAL,   /* anything else */
} mlo_xfer_outcome;

/* One attempt.  Everything is borrowed for the call. */
typedef struct mlo_xfer {
    const char *method;         /* upper-case token */
    const char *url;            /* absolute */
    const char *const *headers; /* "Name: value" lines (no CR/LF), nheaders of them */
    size_t nheaders;
    /* the body: in memory (body, len), or with in_fd >= 0 the bytes
     * [in_off, in_off + in_len) of that file (pread; Content-Length, never
     * chunked).  PUT and bodies from a file are uploads; POST/others with a
     * body send it as the request body. */
    const char *body;
    size_t len;
    int in_fd;
    int64_t in_off, in_len;
    /* with in_fd: NULL, or the file is still being written (mlo_http_req) */
    int64_t (*in_ready)(void *ctx, int64_t off);
    void *in_ctx;
    _Atomic int64_t *in_sent; /* with in_fd: NULL, or set as mlo_http_req says */
    /* >= 0: a 2xx response body goes to this file from offset 0 (pwrite); a
     * non-2xx one to the result's body (at most 1 MiB of it) */
    int out_fd;
    long timeout_ms; /* whole attempt, 0 = none */
    long connect_timeout_ms;
    int64_t idle_ns;      /* > 0: fail (MLO_XF_TIMEOUT) when no byte moved for this long */
    int fresh_connection; /* do not reuse a pooled connection (non-idempotent requests) */
    int (*should_abort)(void *ctx); /* polled during the transfer; may be NULL */
    void *ctx;
} mlo_xfer;

typedef struct mlo_xfer_result {
    mlo_xfer_outcome outcome;
    long http_code; /* MLO_XF_RESPONSE */
    mlo_buf *body;  /* the caller's sink for the response body (reset per attempt) */
    char content_type[64];
    char etag[128];       /* exactly as sent (quotes kept); "" if none or too long */
    char retry_after[64]; /* the Retry-After header's value as sent, "" if none (mlo_retry.c
                             reads it) */
    int new_connections;  /* connections this attempt opened */
    int reused_fast_fail; /* failed within 1 s on a reused connection with nothing
                             received: a keep-alive connection the server had closed */
    uint64_t bytes_sent, bytes_received;
    int file_errno;    /* MLO_XF_*_FILE: errno (0: the body file ended early) */
    uint64_t file_off; /* ... at this byte */
    char detail[256];  /* the transport's words for a failure (may quote the URL) */
} mlo_xfer_result;

typedef struct mlo_transport mlo_transport;
typedef struct mlo_transport_vtable {
    /* One attempt; fills r (r->body is the caller's).  Returns r->outcome. */
    int (*perform)(mlo_transport *t, const mlo_xfer *x, mlo_xfer_result *r);
    void (*free)(mlo_transport *t);
} mlo_transport_vtable;
struct mlo_transport {
    const mlo_transport_vtable *vt;
};

/* What a transport needs to know when it is made. */
typedef struct mlo_transport_opts {
    int insecure_tls;             /* no peer/host verification */
    const char *ca_path;          /* CA bundle or NULL */
    const char *client_cert_path; /* PEM certificate + key or NULL */
    const char *user_agent;
} mlo_transport_opts;

/* Makes a transport (one per thread that sends), or NULL. */
typedef mlo_transport *(*mlo_transport_new_fn)(const mlo_transport_opts *o, void *user);

/* libcurl's (mlo_transport_curl.c); user is unused. */
mlo_transport *mlo__transport_curl_new(const mlo_transport_opts *o, void *user);

static inline int mlo__transport_perform(mlo_transport *t, const mlo_xfer *x, mlo_xfer_result *r) {
    return t->vt->perform(t, x, r);
}
static inline void mlo__transport_free(mlo_transport *t) {
    if (t)
        t->vt->free(t);
}

#endif /* MLO_TRANSPORT_H */
