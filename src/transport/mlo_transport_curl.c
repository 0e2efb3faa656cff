/*
 * mlo_transport_curl.c - the transport over libcurl: one attempt of one
 * request per call (mlo_transport.h).  The only file of mlo that includes
 * <curl/curl.h>.
 *
 * What it owns
 *   One CURL easy handle for its whole life, with its connection cache (a
 *   keep-alive connection is reused from attempt to attempt), its error
 *   buffer and copies of the TLS settings.  Header lines come with each
 *   attempt; the curl_slist made of them is wiped (it may hold the
 *   Authorization header) and freed when the attempt ends.
 *
 * Threads
 *   One transport per thread; nothing here is shared, so there is no lock.
 *   curl_global_init runs once per process (pthread_once) and
 *   curl_global_cleanup never (another user of curl in the process may still
 *   need it).  CURLOPT_NOSIGNAL: no SIGALRM for DNS timeouts in a
 *   multi-threaded host process.
 *
 * What an attempt does (the policy above it is mlo_http.c's)
 *   - Method and body: GET/HEAD without a body; PUT uploads the body (memory
 *     or a file region) with Content-Length; POST and other methods with a
 *     body send it as the request body (from memory with POSTFIELDS, from a
 *     file through read_cb); other methods without one as a custom request.
 *     Bodies from a file are read with pread at in_off + offset, so the fd's
 *     own offset is never moved and curl may rewind (seek_cb) when it resends
 *     on a dead connection.
 *   - Response: the status line picks the sink before the first body byte: a
 *     2xx body to out_fd (pwrite from 0, the file truncated first) when
 *     there is one, everything else to the caller's buffer (capped at 1 MiB
 *     when out_fd is set, so a huge error page cannot undo a bounded
 *     download).  ETag and Retry-After are kept as sent.
 *   - Limits: CURLOPT_TIMEOUT_MS for the attempt, CURLOPT_CONNECTTIMEOUT_MS;
 *     with idle_ns the progress callback fails the attempt when no byte moved
 *     either way for that long (not CURLOPT_LOW_SPEED_*, which averages over
 *     ~5 s).  The progress callback also polls should_abort.
 *   - Redirects are never followed (a POST would turn into a GET and could
 *     carry the Authorization header to another host).  Only http and https.
 *   - Outcomes: curl's error codes sorted into what the retry policy tells
 *     apart (mlo_xfer_outcome).  With TLS 1.3 a server refuses a client
 *     certificate after the handshake, in an alert that curl reports as a
 *     plain send/recv error: those alerts are recognised as
 *     MLO_XF_TLS_CLIENT_CERT.
 *
 * Proxies: curl's usual http_proxy / https_proxy / no_proxy environment
 * variables apply, as they do for MLflow's Python client (requests).
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "mlo_transport.h"

#include "mlo_clock.h"

#include <curl/curl.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define ERR_BODY_MAX (1u << 20)    /* non-2xx body kept in memory when out_fd is set */
#define REUSE_FAIL_FAST_US 1000000 /* "fails at once" on a reused connection */

/* A request body read by curl through read_cb: memory (data) or the file
 * region [base, base + len) of fd, read with pread. */
typedef struct body_src {
    const char *data;
    int fd;
    int64_t base;
    uint64_t len;
    uint64_t off; /* next byte to hand to curl */
    int err;      /* fd: errno of a failed pread, or -1 when the file ended early */
    /* a file still being written: how far it is complete (in_ready) */
    int64_t (*ready)(void *ctx, int64_t off);
    void *ready_ctx;
    int64_t avail;         /* file offset up to which it is complete, as last said */
    _Atomic int64_t *sent; /* progress for another thread, or NULL */
} body_src;

typedef struct curl_transport {
    mlo_transport base;
    CURL *curl;
    char *user_agent;
    char *ca_path;
    char *client_cert_path;
    int insecure_tls;

    /* the attempt in flight, written by the callbacks */
    const mlo_xfer *x;
    mlo_xfer_result *r;
    body_src src;
    int oom;          /* write_cb could not grow the body */
    int aborted;      /* xferinfo_cb saw should_abort */
    int idle_timeout; /* xferinfo_cb saw no byte move for idle_ns */
    int store_errno;  /* write_cb could not write out_fd */
    long resp_code;   /* status code of the response being received */
    int64_t out_off;  /* bytes written to out_fd */
    uint64_t received;
    curl_off_t last_dl, last_ul;
    int64_t last_move_ns;

    char errbuf[CURL_ERROR_SIZE];
} curl_transport;

/* ---- global init ------------------------------------------------------------- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init_once(void) {
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- small helpers ----------------------------------------------------------- */

/* memset that the compiler may not drop: header lines may hold credentials. */
static void wipe(void *p, size_t n) {
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

static void free_slist_wiped(struct curl_slist *l) {
    for (struct curl_slist *i = l; i; i = i->next)
        if (i->data)
            wipe(i->data, strlen(i->data));
    curl_slist_free_all(l);
}

/* Copies "Name: value" (n bytes) into dst (cap bytes), trimmed; "" if it
 * does not fit (a cut value would be a wrong one). */
static void header_value(const char *v, size_t n, char *dst, size_t cap) {
    while (n && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n >= cap)
        n = 0;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

/* The code of a status line "HTTP/1.1 200 OK" / "HTTP/2 404", 0 if unreadable. */
static long status_code(const char *line, size_t n) {
    const char *sp = memchr(line, ' ', n);
    if (!sp || (size_t)(sp - line) + 4 > n)
        return 0;
    long c = 0;
    for (int i = 1; i <= 3; i++) {
        char d = sp[i];
        if (d < '0' || d > '9')
            return 0;
        c = c * 10 + (d - '0');
    }
    return c;
}

/* ---- curl callbacks ---------------------------------------------------------- */

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud) {
    curl_transport *t = ud;
    size_t n = size * nmemb;
    t->received += n;
    if (t->x->out_fd >= 0 && t->resp_code >= 200 && t->resp_code < 300) {
        size_t done = 0;
        while (done < n) {
            ssize_t w = pwrite(t->x->out_fd, ptr + done, n - done, (off_t)t->out_off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                t->store_errno = w < 0 ? errno : EIO;
                return 0; /* CURLE_WRITE_ERROR */
            }
            done += (size_t)w;
            t->out_off += w;
        }
        return n;
    }
    mlo_buf *sink = t->r->body;
    size_t take = n;
    if (t->x->out_fd >= 0)
        take = sink->len >= ERR_BODY_MAX      ? 0
               : n > ERR_BODY_MAX - sink->len ? ERR_BODY_MAX - sink->len
                                              : n;
    if (mlo__buf_append(sink, ptr, take) != 0) {
        t->oom = 1;
        return 0; /* CURLE_WRITE_ERROR */
    }
    return n;
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *ud) {
    curl_transport *t = ud;
    size_t n = size * nitems;
    /* A status line starts a new response (e.g. after a 100 Continue): forget
     * what the previous one said. */
    if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        t->r->retry_after[0] = '\0';
        t->r->etag[0] = '\0';
        t->resp_code = status_code(buf, n);
    } else if (n > 12 && strncasecmp(buf, "Retry-After:", 12) == 0) {
        header_value(buf + 12, n - 12, t->r->retry_after, sizeof t->r->retry_after);
    } else if (n > 5 && strncasecmp(buf, "ETag:", 5) == 0) {
        header_value(buf + 5, n - 5, t->r->etag, sizeof t->r->etag);
    }
    return n;
}

static int xferinfo_cb(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    (void)dltotal;
    (void)ultotal;
    curl_transport *t = ud;
    if (t->x->should_abort && t->x->should_abort(t->x->ctx)) {
        t->aborted = 1;
        return 1; /* CURLE_ABORTED_BY_CALLBACK */
    }
    if (t->x->idle_ns > 0) {
        int64_t now = mlo__clock_mono(NULL);
        if (dlnow != t->last_dl || ulnow != t->last_ul) {
            t->last_dl = dlnow;
            t->last_ul = ulnow;
            t->last_move_ns = now;
        } else if (now - t->last_move_ns >= t->x->idle_ns) {
            t->idle_timeout = 1;
            return 1;
        }
    }
    return 0;
}

static size_t read_cb(char *buffer, size_t size, size_t nitems, void *ud) {
    body_src *src = ud;
    size_t room = size * nitems;
    uint64_t left = src->len - src->off;
    size_t n = left < room ? (size_t)left : room;
    if (n == 0)
        return 0;
    if (src->fd < 0) {
        memcpy(buffer, src->data + src->off, n);
        src->off += n;
        return n;
    }
    int64_t at = src->base + (int64_t)src->off;
    if (src->ready && at >= src->avail) {
        src->avail = src->ready(src->ready_ctx, at);
        if (src->avail <= at) {
            src->err = ECANCELED; /* the writer gave up */
            return CURL_READFUNC_ABORT;
        }
    }
    if (src->ready && (uint64_t)(src->avail - at) < n)
        n = (size_t)(src->avail - at);
    ssize_t r;
    do
        r = pread(src->fd, buffer, n, (off_t)at);
    while (r < 0 && errno == EINTR);
    if (r <= 0) { /* an error, or the file ended before the body did */
        src->err = r < 0 ? errno : -1;
        return CURL_READFUNC_ABORT;
    }
    src->off += (uint64_t)r;
    if (src->sent)
        atomic_store_explicit(src->sent, at + (int64_t)r, memory_order_relaxed);
    return (size_t)r;
}

static int seek_cb(void *ud, curl_off_t offset, int origin) {
    body_src *src = ud;
    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > src->len)
        return CURL_SEEKFUNC_CANTSEEK;
    src->off = (uint64_t)offset;
    return CURL_SEEKFUNC_OK;
}

/* ---- one attempt ------------------------------------------------------------- */

static mlo_xfer_outcome classify(CURLcode rc) {
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
        return MLO_XF_CONNECT;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_QUIC_CONNECT_ERROR:
        return MLO_XF_LOST;
    case CURLE_OPERATION_TIMEDOUT:
        return MLO_XF_TIMEOUT;
    case CURLE_SSL_CONNECT_ERROR:
        return MLO_XF_TLS_HANDSHAKE;
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CLIENTCERT:
        return MLO_XF_TLS_CLIENT_CERT;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CIPHER:
    case CURLE_USE_SSL_FAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        return MLO_XF_TLS;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return MLO_XF_URL;
    case CURLE_OUT_OF_MEMORY:
        return MLO_XF_NO_MEMORY;
    default:
        return MLO_XF_FATAL;
    }
}

/* A TLS 1.3 alert about our certificate, reported as a send/recv error. */
static int client_cert_refused(const curl_transport *t, CURLcode rc) {
    if (rc != CURLE_RECV_ERROR && rc != CURLE_SEND_ERROR)
        return 0;
    if (!strstr(t->errbuf, "alert"))
        return 0;
    return strstr(t->errbuf, "certificate") || strstr(t->errbuf, "unknown ca") ||
           strstr(t->errbuf, "access denied") || strstr(t->errbuf, "handshake failure");
}

/* Method, body and headers of the attempt. */
static CURLcode set_request(curl_transport *t, const mlo_xfer *x, struct curl_slist *hdr) {
    CURL *c = t->curl;
    CURLcode rc = CURLE_OK;
    const char *method = x->method;
    const int from_fd = x->in_fd >= 0;
    const int has_body = from_fd || x->len > 0;
    const int is_get = strcmp(method, "GET") == 0, is_head = strcmp(method, "HEAD") == 0;
    const int is_put = strcmp(method, "PUT") == 0, is_post = strcmp(method, "POST") == 0;
    /* Undo whatever the previous attempt set (HTTPGET resets the method,
     * upload and nobody flags; POSTFIELDS would point at the previous body). */
    rc |= curl_easy_setopt(c, CURLOPT_POSTFIELDS, (char *)NULL);
    rc |= curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
    /* libcurl silently sends a request again on a new connection when a
     * reused one dies before any answer: a non-idempotent request (which the
     * server may have carried out before dying) gets a fresh connection, on
     * which curl never does that. */
    rc |= curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, x->fresh_connection ? 1L : 0L);
    rc |= curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, (char *)NULL);
    rc |= curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    t->src = (body_src){.data = x->body ? x->body : "",
                        .fd = from_fd ? x->in_fd : -1,
                        .base = from_fd ? x->in_off : 0,
                        .len = from_fd ? (uint64_t)x->in_len : (x->body ? x->len : 0),
                        .ready = from_fd ? x->in_ready : NULL,
                        .ready_ctx = x->in_ctx,
                        .sent = from_fd ? x->in_sent : NULL};
    if (is_get || is_head) {
        if (is_head)
            rc |= curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (is_put) {
        rc |= curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        rc |= curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)t->src.len);
    } else if (is_post || has_body) {
        if (from_fd) {
            rc |= curl_easy_setopt(c, CURLOPT_POST, 1L);
            rc |= curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)t->src.len);
        } else {
            rc |= curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->len);
            rc |= curl_easy_setopt(c, CURLOPT_POSTFIELDS, x->body ? x->body : "");
        }
        if (!is_post)
            rc |= curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    } else {
        rc |= curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    if (is_put || from_fd) {
        rc |= curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
        rc |= curl_easy_setopt(c, CURLOPT_READDATA, &t->src);
        rc |= curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, seek_cb);
        rc |= curl_easy_setopt(c, CURLOPT_SEEKDATA, &t->src);
    }
    rc |= curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    rc |= curl_easy_setopt(c, CURLOPT_URL, x->url);
    rc |= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, x->timeout_ms);
    rc |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, x->connect_timeout_ms);
    return rc;
}

static int finish(curl_transport *t, mlo_xfer_result *r, mlo_xfer_outcome o) {
    r->outcome = o;
    if (o != MLO_XF_RESPONSE) {
        mlo__buf_reset(r->body);
        r->content_type[0] = '\0';
        r->etag[0] = '\0';
        r->retry_after[0] = '\0';
    }
    /* the header list may hold credentials: gone with the attempt */
    curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    t->x = NULL;
    t->r = NULL;
    t->src = (body_src){.fd = -1};
    return o;
}

static int perform(mlo_transport *base, const mlo_xfer *x, mlo_xfer_result *r) {
    curl_transport *t = (curl_transport *)base;
    mlo_buf *sink = r->body;
    memset(r, 0, sizeof *r);
    r->body = sink;
    mlo__buf_reset(sink);
    t->x = x;
    t->r = r;
    t->errbuf[0] = '\0';
    t->oom = t->aborted = t->idle_timeout = t->store_errno = 0;
    t->resp_code = 0;
    t->out_off = 0;
    t->received = 0;
    t->last_dl = t->last_ul = 0;
    t->last_move_ns = mlo__clock_mono(NULL);

    struct curl_slist *hdr = NULL;
    for (size_t i = 0; i < x->nheaders; i++) {
        struct curl_slist *n = curl_slist_append(hdr, x->headers[i]);
        if (!n) {
            free_slist_wiped(hdr);
            snprintf(r->detail, sizeof r->detail, "out of memory for the request headers");
            return finish(t, r, MLO_XF_NO_MEMORY);
        }
        hdr = n;
    }
    if (set_request(t, x, hdr) != CURLE_OK) {
        free_slist_wiped(hdr);
        snprintf(r->detail, sizeof r->detail, "out of memory setting up the request");
        return finish(t, r, MLO_XF_NO_MEMORY);
    }
    if (x->out_fd >= 0 && ftruncate(x->out_fd, 0) != 0) {
        r->file_errno = errno;
        free_slist_wiped(hdr);
        snprintf(r->detail, sizeof r->detail, "cannot truncate the file for the response");
        return finish(t, r, MLO_XF_RESPONSE_FILE);
    }

    CURLcode rc = curl_easy_perform(t->curl);

    long code = 0, nconn = 0, hdr_bytes = 0;
    curl_off_t total_us = 0, up = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(t->curl, CURLINFO_NUM_CONNECTS, &nconn);
    curl_easy_getinfo(t->curl, CURLINFO_HEADER_SIZE, &hdr_bytes);
    curl_easy_getinfo(t->curl, CURLINFO_TOTAL_TIME_T, &total_us);
    curl_easy_getinfo(t->curl, CURLINFO_SIZE_UPLOAD_T, &up);
    curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    free_slist_wiped(hdr);
    r->new_connections = (int)nconn;
    r->bytes_sent = up > 0 ? (uint64_t)up : 0;
    r->bytes_received = t->received;

    if (rc == CURLE_OK) {
        r->http_code = code;
        char *ct = NULL;
        if (curl_easy_getinfo(t->curl, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
            snprintf(r->content_type, sizeof r->content_type, "%s", ct);
        return finish(t, r, MLO_XF_RESPONSE);
    }
    snprintf(r->detail, sizeof r->detail, "%s", t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
    /* the files first: their failures end the call, retrying cannot help */
    if (t->store_errno) {
        r->file_errno = t->store_errno;
        r->file_off = (uint64_t)t->out_off;
        return finish(t, r, MLO_XF_RESPONSE_FILE);
    }
    if (t->src.err) {
        r->file_errno = t->src.err < 0 ? 0 : t->src.err;
        r->file_off = t->src.off;
        return finish(t, r, MLO_XF_BODY_FILE);
    }
    if (rc == CURLE_OUT_OF_MEMORY || (rc == CURLE_WRITE_ERROR && t->oom))
        return finish(t, r, MLO_XF_NO_MEMORY);
    if (t->aborted)
        return finish(t, r, MLO_XF_ABORTED);
    if (rc == CURLE_ABORTED_BY_CALLBACK && t->idle_timeout) {
        snprintf(r->detail, sizeof r->detail, "no data moved for %.1f s", (double)x->idle_ns / 1e9);
        return finish(t, r, MLO_XF_TIMEOUT);
    }
    if (rc == CURLE_ABORTED_BY_CALLBACK)
        return finish(t, r, MLO_XF_ABORTED);
    if (client_cert_refused(t, rc))
        return finish(t, r, MLO_XF_TLS_CLIENT_CERT);
    mlo_xfer_outcome o = classify(rc);
    if (o == MLO_XF_LOST && nconn == 0 && hdr_bytes == 0 && total_us < REUSE_FAIL_FAST_US &&
        (rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING))
        r->reused_fast_fail = 1;
    return finish(t, r, o);
}

/* ---- the handle -------------------------------------------------------------- */

static void curl_transport_free(mlo_transport *base) {
    curl_transport *t = (curl_transport *)base;
    if (!t)
        return;
    if (t->curl)
        curl_easy_cleanup(t->curl);
    free(t->user_agent);
    free(t->ca_path);
    free(t->client_cert_path);
    free(t);
}

static const mlo_transport_vtable curl_vtable = {perform, curl_transport_free};

static char *dup_or_null(const char *s, int *oom) {
    if (!s)
        return NULL;
    char *p = strdup(s);
    if (!p)
        *oom = 1;
    return p;
}

mlo_transport *mlo__transport_curl_new(const mlo_transport_opts *o, void *user) {
    (void)user;
    pthread_once(&global_once, global_init_once);
    if (global_rc != CURLE_OK)
        return NULL;
    curl_transport *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->base.vt = &curl_vtable;
    t->src.fd = -1;
    int oom = 0;
    t->user_agent = dup_or_null(o->user_agent ? o->user_agent : "mlo", &oom);
    t->ca_path = dup_or_null(o->ca_path, &oom);
    t->client_cert_path = dup_or_null(o->client_cert_path, &oom);
    t->insecure_tls = o->insecure_tls != 0;
    if (oom)
        goto fail;
    t->curl = curl_easy_init();
    if (!t->curl)
        goto fail;
    CURL *c = t->curl;
    CURLcode rc = CURLE_OK;
    /* The options that must hold; a failure here leaves no usable handle. */
    rc |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, t->errbuf);
    rc |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    rc |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    rc |= curl_easy_setopt(c, CURLOPT_USERAGENT, t->user_agent);
    rc |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    rc |= curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
    rc |= curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
    rc |= curl_easy_setopt(c, CURLOPT_HEADERDATA, t);
    rc |= curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    rc |= curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
    rc |= curl_easy_setopt(c, CURLOPT_XFERINFODATA, t);
    rc |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, t->insecure_tls ? 0L : 1L);
    rc |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, t->insecure_tls ? 0L : 2L);
    if (t->ca_path)
        rc |= curl_easy_setopt(c, CURLOPT_CAINFO, t->ca_path);
    if (t->client_cert_path) {
        rc |= curl_easy_setopt(c, CURLOPT_SSLCERT, t->client_cert_path);
        rc |= curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
    }
    if (rc != CURLE_OK)
        goto fail;
    /* Best effort: a build without them still works. */
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 15L);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    return &t->base;
fail:
    curl_transport_free(&t->base);
    return NULL;
}
