/*
 * mlo_http.c - HTTP requests with MLflow's rules, over a transport
 * (mlo_transport.h: libcurl in mlo_transport_curl.c, or a test's).  Nothing
 * here knows curl: this file builds the URL and the header lines, runs the
 * attempts and the retry policy of mlo_retry.c, and writes the messages.
 *
 * What it owns
 *   An mlo_http owns one transport for its whole life (so a keep-alive
 *   connection is reused from call to call), six prebuilt header lists
 *   (GET, JSON body, octet-stream body; each with and without
 *   Authorization) and copies of every configured string.  The
 *   Authorization header is built once in mlo__http_new, lives only in
 *   those header lists (plus, for one call, a list made for a caller's
 *   content type; and in the copies kept to scrub messages), and is wiped
 *   in mlo__http_free.  No message this module
 *   writes contains a credential: messages name the method and API path
 *   (never the base URI or the query; an absolute URL without its user info
 *   and query), and every message passes through scrub() before it leaves
 *   (which also hides the query of the call's absolute URL, should curl
 *   quote it).
 *
 * Threads
 *   One mlo_http per thread: a handle is used by one thread at a time and
 *   nothing in it is shared, so there is no lock here.  Callbacks (on_retry,
 *   should_abort) run on the calling thread.
 *
 * Retries (MLflow's Python client rules, see MLFLOW.md "Retries")
 *   - HTTP 408, 429, 500, 502, 503, 504, every method (MLflow's POST calls
 *     are idempotent enough: the server stores a repeated metric point once).
 *   - Transport failures: couldn't resolve/connect, send/recv errors, an
 *     empty reply, a response cut short, the per-attempt timeout, and a TLS
 *     handshake that broke off (CURLE_SSL_CONNECT_ERROR, transient behind a
 *     loaded TLS terminator).  Certificate verification and other TLS set-up
 *     errors are not retried: status 10 at once, with a hint how to fix.
 *   - Retry n waits min(factor * 2^(n-1), 120) s + jitter in [0, jitter_s]
 *     (jitter from a per-handle xorshift64*, never rand()), or the server's
 *     Retry-After (seconds or an HTTP date, <= 120 s) when respected and > 0
 *     (mlo_retry.c).
 *   - One extra immediate retry, not counted in max_retries, without
 *     on_retry or backoff: a request on a reused connection that fails at
 *     once (send/recv error or empty reply, no response byte, < 1 s) met a
 *     keep-alive connection the server had closed while idle (the transport
 *     says so: reused_fast_fail).  libcurl itself resends transparently when
 *     a reused connection dies before any response byte; this covers what it
 *     does not.
 *   - Sleeps (through the clock, so tests sleep in virtual time) run in
 *     slices of <= 50 ms polling should_abort; the transport polls it during
 *     transfers.  An attempt's time limit is cut to what is left before the
 *     deadline, and a retry whose wait would reach the deadline is not made:
 *     the call returns status 8 at once, keeping the last HTTP code and body.
 *   - Per-attempt limit.  In-memory requests: timeout_s for the whole
 *     attempt.  Streamed requests (a body from in_fd or a response to
 *     out_fd: artifacts of any size): no total limit, which would cut a 2 GB
 *     upload on a slow link however healthy, but an idle limit: the attempt
 *     fails when no byte moved in either direction for timeout_s, and that
 *     counts as a per-attempt timeout (retried).  The connect timeout is
 *     min(timeout_s, 10 s) for both, and the deadline bounds both.
 *   - Local file failures are not transport failures: a short read of the
 *     body file (it shrank) or a failed read, and a failed write of the
 *     response file (ENOSPC, EFBIG, EIO) end the call at once with status 23
 *     (MLO_ERR_STORE) and a message naming the byte and errno; retrying
 *     would only fail again.
 *   - Redirects are never followed: a 3xx is returned as it is (status 0).
 *     Following one would turn a POST into a GET and could carry the
 *     Authorization header to another host; MLflow's API does not redirect.
 *
 * Statuses (mlo_status): 0 whenever an HTTP response came back, whatever its
 * code (the caller reads http_code and the body: MLflow's error JSON, or a
 * proxy's HTML); 9 when transport failures outlived the retries (a per-attempt
 * timeout included) or a transport error that retrying cannot fix; 8 when the
 * deadline passed, left no room for the next retry, or should_abort said
 * stop; 10 for TLS; 18 for a URL curl refuses (bad scheme or syntax); 23 for
 * the body or response file; 7 OOM.
 *
 * Requests: Accept: application/json always; POST bodies go out with
 * Content-Type: application/json, PUT bodies with application/octet-stream
 * (or the caller's content_type), both with "Expect:" (no 100-continue
 * round trip) and never compressed.  A failed download leaves the response
 * file empty.
 *
 * Absolute URLs (presigned, e.g. S3 multipart parts): used as they are, with
 * the header lists without Authorization, so neither the Bearer token nor
 * Basic credentials ever go to another host.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* strndup */
#endif
#include "mlo_http.h"

#include "mlo.h"
#include "mlo_retry.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define SLEEP_SLICE_NS (50 * MLO_NS_PER_MS)
#define CONNECT_TIMEOUT_MAX_MS 10000L
#define DEFAULT_TIMEOUT_S 120.0
#define MAX_TIMEOUT_S 86400.0
#define NSECRETS 5
#define DEADLINE_SLACK_NS (20 * MLO_NS_PER_MS)
#define MAX_HDRS 4

enum hdr_kind { HK_GET, HK_JSON, HK_OCTET, HK_N };

/* Header lines of one kind of request: pointers into `lines` below. */
typedef struct hdr_set {
    const char *v[MAX_HDRS];
    size_t n;
} hdr_set;

struct mlo_http {
    mlo_transport *t;
    const mlo_clock *clock;
    char *base;              /* base URI without trailing '/' */
    char *auth;              /* "Authorization: ..." or NULL */
    char *secrets[NSECRETS]; /* strings scrubbed from every message */
    hdr_set hdrs[2][HK_N];   /* [0]: with Authorization (if any), [1]: without */
    mlo_retry_policy policy;
    double timeout_s;
    void (*on_retry)(void *ctx, long http_code, const char *message);
    int (*should_abort)(void *ctx);
    void (*on_attempt)(void *ctx, int outcome);
    void *ctx;
    mlo_rng rng;
    long connects;           /* new connections opened, for tests and statistics */
    mlo_buf url;             /* reused from call to call */
    mlo_buf ctype;           /* this call's "Content-Type: ..." line when content_type is given */
    const char *call_secret; /* query of a presigned URL: scrubbed from messages */
};

/* ---- small helpers ------------------------------------------------------ */

static char *dup_or_null(const char *s, int *oom) {
    if (!s)
        return NULL;
    char *p = strdup(s);
    if (!p)
        *oom = 1;
    return p;
}

/* memset that the compiler may not drop: credentials must not linger. */
static void wipe(void *p, size_t n) {
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

static void free_secret(char *s) {
    if (s) {
        wipe(s, strlen(s));
        free(s);
    }
}

/* vsnprintf behind a va_list, so long inputs truncate quietly (and gcc's
 * -Wformat-truncation has nothing to guess about). */
__attribute__((format(printf, 3, 4))) static void msgf(char *dst, size_t cap, const char *fmt,
                                                       ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
    if (n < 0 && cap)
        dst[0] = '\0';
}

/* Replaces every occurrence of each stored secret in msg with "***".
 * Secrets shorter than 4 characters are left alone: they would mangle
 * ordinary text and reveal nothing. */
static void scrub(const mlo_http *h, char *msg) {
    for (int i = 0; i <= NSECRETS; i++) {
        const char *s = i < NSECRETS ? h->secrets[i] : h->call_secret;
        size_t sl = s ? strlen(s) : 0;
        if (sl < 4)
            continue;
        char *p;
        while ((p = strstr(msg, s)) != NULL) {
            size_t tail = strlen(p + sl);
            memcpy(p, "***", 3);
            memmove(p + 3, p + sl, tail + 1); /* sl >= 4 > 3: never grows */
        }
    }
}

static void global_init_once(void) {
    /* making (and dropping) a transport runs the library's global set-up */
    mlo_transport_opts o = {0};
    mlo__transport_free(mlo__transport_curl_new(&o, NULL));
}

void mlo__http_global_init(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, global_init_once);
}

/* ---- handle ------------------------------------------------------------- */

static void set_headers(hdr_set *s, const char *auth, const char *content_type) {
    s->n = 0;
    s->v[s->n++] = "Accept: application/json";
    if (content_type) {
        s->v[s->n++] = content_type;
        s->v[s->n++] = "Expect:"; /* no "Expect: 100-continue" wait before the body */
    }
    if (auth)
        s->v[s->n++] = auth;
}

/* Adds the password of user:password@ in the base URI to the secrets, so
 * that it is scrubbed too if the transport ever quotes it. */
static void uri_secret(mlo_http *h, int slot, int *oom) {
    const char *p = strstr(h->base, "://");
    if (!p)
        return;
    p += 3;
    const char *end = p + strcspn(p, "/?#");
    const char *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    if (!at)
        return;
    const char *colon = memchr(p, ':', (size_t)(at - p));
    const char *s = colon ? colon + 1 : p;
    h->secrets[slot] = strndup(s, (size_t)(at - s));
    if (!h->secrets[slot])
        *oom = 1;
}

static int build_auth(mlo_http *h, const mlo_http_config *cfg) {
    mlo_buf b;
    mlo__buf_init(&b);
    int rc = 0;
    if (cfg->user && cfg->password) {
        mlo_buf plain;
        mlo__buf_init(&plain);
        rc |= mlo__buf_appends(&plain, cfg->user);
        rc |= mlo__buf_appends(&plain, ":");
        rc |= mlo__buf_appends(&plain, cfg->password);
        rc |= mlo__buf_appends(&b, "Authorization: Basic ");
        if (rc == 0)
            rc |= mlo__buf_base64(&b, plain.data, plain.len);
        if (plain.data)
            wipe(plain.data, plain.cap);
        mlo__buf_free(&plain);
    } else if (cfg->token) {
        rc |= mlo__buf_appends(&b, "Authorization: Bearer ");
        rc |= mlo__buf_appends(&b, cfg->token);
    } else {
        return 0;
    }
    if (rc != 0) {
        if (b.data)
            wipe(b.data, b.cap);
        mlo__buf_free(&b);
        return -1;
    }
    h->auth = b.data; /* ownership moves to h (NUL-terminated, len > 0) */
    return 0;
}

/* A header value with CR or LF would inject header lines. */
static int header_safe(const char *s) {
    return !s || strpbrk(s, "\r\n") == NULL;
}

mlo_http *mlo__http_new(const mlo_http_config *cfg) {
    if (!cfg || !cfg->base_uri || !header_safe(cfg->token) || !header_safe(cfg->user) ||
        !header_safe(cfg->password) || !header_safe(cfg->user_agent))
        return NULL;
    mlo_http *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    int oom = 0;
    mlo__buf_init(&h->url);
    mlo__buf_init(&h->ctype);
    h->base = dup_or_null(cfg->base_uri, &oom);
    h->secrets[0] = dup_or_null(cfg->token, &oom);
    h->secrets[1] = dup_or_null(cfg->password, &oom);
    if (oom)
        goto fail;
    size_t bl = strlen(h->base);
    while (bl > 0 && h->base[bl - 1] == '/')
        h->base[--bl] = '\0';
    uri_secret(h, 2, &oom);
    if (oom || build_auth(h, cfg) != 0)
        goto fail;
    if (h->auth) {
        /* the header's credential part, and for Basic its base64 alone */
        const char *sp = strchr(h->auth + strlen("Authorization: "), ' ');
        h->secrets[3] = dup_or_null(sp ? sp + 1 : h->auth, &oom);
        if (oom)
            goto fail;
    }
    for (int na = 0; na < 2; na++) {
        const char *a = na ? NULL : h->auth;
        set_headers(&h->hdrs[na][HK_GET], a, NULL);
        set_headers(&h->hdrs[na][HK_JSON], a, "Content-Type: application/json");
        set_headers(&h->hdrs[na][HK_OCTET], a, "Content-Type: application/octet-stream");
    }
    h->policy.max_retries = cfg->max_retries < 0                       ? 0
                            : cfg->max_retries > MLO_RETRY_MAX_RETRIES ? MLO_RETRY_MAX_RETRIES
                                                                       : cfg->max_retries;
    h->policy.respect_retry_after = cfg->respect_retry_after != 0;
    h->policy.factor_s = cfg->backoff_factor_s > 0 ? cfg->backoff_factor_s : 0;
    h->policy.jitter_s = cfg->jitter_s > 0 ? cfg->jitter_s : 0;
    h->timeout_s = cfg->timeout_s > 0 ? cfg->timeout_s : DEFAULT_TIMEOUT_S;
    if (h->timeout_s > MAX_TIMEOUT_S)
        h->timeout_s = MAX_TIMEOUT_S;
    h->on_retry = cfg->on_retry;
    h->should_abort = cfg->should_abort;
    h->on_attempt = cfg->on_attempt;
    h->ctx = cfg->ctx;
    h->clock = cfg->clock;
    mlo__retry_rng_seed(&h->rng, (uint64_t)mlo__clock_mono(NULL) ^
                                     ((uint64_t)mlo__clock_now_ms(NULL) * 1000003ULL) ^
                                     (uint64_t)(uintptr_t)h);
    mlo_transport_opts to = {.insecure_tls = cfg->insecure_tls != 0,
                             .ca_path = cfg->ca_path,
                             .client_cert_path = cfg->client_cert_path,
                             .user_agent = cfg->user_agent ? cfg->user_agent : "mlo"};
    mlo_transport_new_fn make = cfg->new_transport ? cfg->new_transport : mlo__transport_curl_new;
    h->t = make(&to, cfg->transport_user);
    if (!h->t)
        goto fail;
    return h;

fail:
    mlo__http_free(h);
    return NULL;
}

void mlo__http_free(mlo_http *h) {
    if (!h)
        return;
    mlo__transport_free(h->t);
    free_secret(h->auth);
    for (int i = 0; i < NSECRETS; i++)
        free_secret(h->secrets[i]);
    free_secret(h->base); /* may hold user:password@ */
    if (h->url.data)
        wipe(h->url.data, h->url.cap);
    mlo__buf_free(&h->url);
    mlo__buf_free(&h->ctype);
    free(h);
}

long mlo__http_connects(const mlo_http *h) {
    return h ? h->connects : 0;
}

void mlo__http_result_free(mlo_http_result *r) {
    if (r)
        mlo__buf_free(&r->body);
}

int mlo__http_urlencode(mlo_http *h, const char *s, mlo_buf *out) {
    (void)h;
    static const char hex[] = "0123456789ABCDEF";
    if (!s || !out)
        return -1;
    size_t n = strlen(s);
    if (mlo__buf_reserve(out, n * 3) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            out->data[out->len++] = (char)ch;
        } else {
            out->data[out->len++] = '%';
            out->data[out->len++] = hex[ch >> 4];
            out->data[out->len++] = hex[ch & 15];
        }
    }
    out->data[out->len] = '\0';
    return 0;
}

/* ---- one call ----------------------------------------------------------- */

/* The TLS failure, the transport's words first, then how to fix it. */
static void tls_message(const mlo_xfer_result *x, char *dst, size_t cap) {
    const char *hint;
    if (x->outcome == MLO_XF_TLS_CLIENT_CERT)
        hint = "check MLFLOW_TRACKING_CLIENT_CERT_PATH (one PEM file with the client "
               "certificate and its key)";
    else
        hint = "set MLFLOW_TRACKING_SERVER_CERT_PATH to the server's CA bundle, or "
               "MLFLOW_TRACKING_INSECURE_TLS=true to skip verification (unsafe)";
    msgf(dst, cap, "%.100s; %s", x->detail, hint);
}

/* Sleeps until the monotonic time `until`, in slices of <= 50 ms, polling
 * should_abort before each.  0 slept, -1 aborted. */
static int sleep_until(mlo_http *h, int64_t until) {
    for (;;) {
        if (h->should_abort && h->should_abort(h->ctx))
            return -1;
        int64_t now = mlo__clock_mono(h->clock);
        if (now >= until)
            return 0;
        int64_t d = until - now;
        mlo__clock_sleep(h->clock, d > SLEEP_SLICE_NS ? SLEEP_SLICE_NS : d);
    }
}

static int valid_method(const char *m) {
    if (!m || !*m || strlen(m) > 16)
        return 0;
    for (const char *p = m; *p; p++)
        if (*p < 'A' || *p > 'Z')
            return 0;
    return 1;
}

static int is_absolute_url(const char *p) {
    return strncasecmp(p, "http://", 7) == 0 || strncasecmp(p, "https://", 8) == 0;
}

/* How messages name the request target: the API path, or an absolute URL
 * without its user info, query and fragment (a presigned URL's signature). */
static void describe_target(const char *path, int absolute, char *dst, size_t cap) {
    if (!absolute) {
        msgf(dst, cap, "%.100s", path);
        return;
    }
    const char *rest = strstr(path, "://") + 3;
    size_t auth_len = strcspn(rest, "/?#");
    const char *at = NULL;
    for (const char *q = rest; q < rest + auth_len; q++)
        if (*q == '@')
            at = q;
    const char *host = at ? at + 1 : rest;
    size_t scheme_len = (size_t)(rest - path);
    size_t keep = strcspn(host, "?#");
    msgf(dst, cap, "%.*s%.*s", (int)scheme_len, path, (int)(keep < 100 ? keep : 100), host);
}

static int finish(mlo_http *h, const mlo_http_req *req, mlo_http_result *res, int status) {
    res->status = status;
    if (status == MLO_OK)
        res->message[0] = '\0';
    else
        scrub(h, res->message);
    /* A failed download leaves an empty file, not a part of one. */
    if (status != MLO_OK && req->out_fd >= 0 && ftruncate(req->out_fd, 0) != 0) {
        /* best effort: the status already says the file is not the body */
    }
    if (h->ctype.data)
        wipe(h->ctype.data, h->ctype.cap);
    mlo__buf_reset(&h->ctype);
    h->call_secret = NULL;
    return status;
}

static int valid_request(const mlo_http_req *req) {
    if (!req || !valid_method(req->method) || !req->path || (!req->body && req->len > 0) ||
        !header_safe(req->content_type))
        return 0;
    if (req->in_fd >= 0) {
        if (req->body || req->len || req->in_off < 0 || req->in_len < 0 ||
            req->in_len > INT64_MAX - req->in_off || strcmp(req->method, "GET") == 0 ||
            strcmp(req->method, "HEAD") == 0)
            return 0;
    }
    return 1;
}

/* The header lines of req: a prebuilt set, or one with the caller's content
 * type (into *tmp). */
static const hdr_set *headers_for(mlo_http *h, const mlo_http_req *req, int absolute,
                                  hdr_set *tmp) {
    const char *m = req->method;
    const int has_body = req->in_fd >= 0 || req->len > 0;
    enum hdr_kind kind = HK_GET;
    if (!strcmp(m, "PUT"))
        kind = HK_OCTET;
    else if (strcmp(m, "GET") && strcmp(m, "HEAD") && (!strcmp(m, "POST") || has_body))
        kind = HK_JSON;
    if (kind == HK_GET || !req->content_type)
        return &h->hdrs[absolute ? 1 : 0][kind];
    mlo__buf_reset(&h->ctype);
    if (mlo__buf_appends(&h->ctype, "Content-Type: ") ||
        mlo__buf_appends(&h->ctype, req->content_type))
        return NULL;
    set_headers(tmp, absolute ? NULL : h->auth, h->ctype.data);
    return tmp;
}

int mlo__http_request(mlo_http *h, const mlo_http_req *req, mlo_http_result *res) {
    if (!res)
        return MLO_ERR_INVALID_ARGUMENT;
    memset(res, 0, sizeof *res);
    mlo__buf_init(&res->body);
    if (!h || !valid_request(req)) {
        res->status = MLO_ERR_INVALID_ARGUMENT;
        msgf(res->message, sizeof res->message, "invalid arguments to the HTTP call");
        return res->status;
    }
    const char *method = req->method;
    const int64_t deadline_ns = req->deadline_ns;
    const int absolute = is_absolute_url(req->path);
    char where[128];
    describe_target(req->path, absolute, where, sizeof where);

    mlo__buf_reset(&h->url);
    int brc = 0;
    if (absolute) {
        brc |= mlo__buf_appends(&h->url, req->path);
    } else {
        brc |= mlo__buf_appends(&h->url, h->base);
        if (req->path[0] != '/')
            brc |= mlo__buf_appends(&h->url, "/");
        brc |= mlo__buf_appends(&h->url, req->path);
        if (req->query && *req->query) {
            brc |= mlo__buf_appends(&h->url, "?");
            brc |= mlo__buf_appends(&h->url, req->query);
        }
    }
    hdr_set custom;
    const hdr_set *hs = brc ? NULL : headers_for(h, req, absolute, &custom);
    if (!hs) {
        msgf(res->message, sizeof res->message, "out of memory setting up %s %s", method, where);
        return finish(h, req, res, MLO_ERR_NO_MEMORY);
    }
    if (absolute) {
        const char *q = strchr(h->url.data, '?');
        h->call_secret = q ? q + 1 : NULL;
    }

    /* Streamed bodies have no total per-attempt limit, only the idle limit;
     * in-memory ones keep timeout_s for the whole attempt. */
    const int streamed = req->in_fd >= 0 || req->out_fd >= 0;
    const long attempt_ms_cfg = (long)(h->timeout_s * 1000.0);
    mlo_xfer x = {.method = method,
                  .url = h->url.data,
                  .headers = hs->v,
                  .nheaders = hs->n,
                  .body = req->body,
                  .len = req->len,
                  .in_fd = req->in_fd,
                  .in_off = req->in_off,
                  .in_len = req->in_len,
                  .in_ready = req->in_fd >= 0 ? req->in_ready : NULL,
                  .in_ctx = req->in_ctx,
                  .in_sent = req->in_fd >= 0 ? req->in_sent : NULL,
                  .out_fd = req->out_fd >= 0 ? req->out_fd : -1,
                  .idle_ns = streamed ? (int64_t)(h->timeout_s * (double)MLO_NS_PER_S) : 0,
                  .fresh_connection = req->not_idempotent,
                  .should_abort = h->should_abort,
                  .ctx = h->ctx};
    mlo_xfer_result xr;
    int reconnect_used = 0;
    for (;;) {
        if (h->should_abort && h->should_abort(h->ctx)) {
            msgf(res->message, sizeof res->message, "%s %s aborted", method, where);
            return finish(h, req, res, MLO_ERR_TIMEOUT);
        }
        long total_ms = streamed ? 0 : attempt_ms_cfg > 0 ? attempt_ms_cfg : 1; /* 0: none */
        long conn_ms = attempt_ms_cfg > 0 ? attempt_ms_cfg : 1;
        if (conn_ms > CONNECT_TIMEOUT_MAX_MS)
            conn_ms = CONNECT_TIMEOUT_MAX_MS;
        int deadline_limited = 0;
        if (deadline_ns) {
            int64_t left = deadline_ns - mlo__clock_mono(h->clock);
            if (left < MLO_NS_PER_MS) {
                msgf(res->message, sizeof res->message, "%s %s: deadline passed%s", method, where,
                     res->retries || res->reconnects ? " while retrying" : "");
                return finish(h, req, res, MLO_ERR_TIMEOUT);
            }
            long left_ms =
                left / MLO_NS_PER_MS > LONG_MAX ? LONG_MAX : (long)(left / MLO_NS_PER_MS);
            if (total_ms == 0 || left_ms < total_ms) {
                total_ms = left_ms;
                deadline_limited = 1;
            }
            if (left_ms < conn_ms)
                conn_ms = left_ms;
        }
        x.timeout_ms = total_ms;
        x.connect_timeout_ms = conn_ms;
        res->http_code = 0;
        res->content_type[0] = '\0';
        res->etag[0] = '\0';
        xr.body = &res->body;
        int o = mlo__transport_perform(h->t, &x, &xr);
        h->connects += xr.new_connections;
        if (h->on_attempt)
            h->on_attempt(h->ctx, o);
        res->bytes_sent = xr.bytes_sent;
        res->bytes_received = xr.bytes_received;

        if (o == MLO_XF_RESPONSE) {
            long code = xr.http_code;
            res->http_code = code;
            memcpy(res->content_type, xr.content_type, sizeof res->content_type);
            memcpy(res->etag, xr.etag, sizeof res->etag);
            if (!mlo__retry_http_code(code) || res->retries >= h->policy.max_retries)
                return finish(h, req, res, MLO_OK);
            double ra = mlo__retry_after_parse(xr.retry_after, mlo__clock_now_ms(h->clock) / 1000);
            double w =
                mlo__retry_wait_s(&h->policy, res->retries + 1, ra, mlo__retry_rng_unit(&h->rng));
            int64_t until = mlo__clock_mono(h->clock) + (int64_t)(w * (double)MLO_NS_PER_S);
            if (deadline_ns && until >= deadline_ns) {
                msgf(res->message, sizeof res->message,
                     "HTTP %ld from %s %s and the deadline leaves no time to retry "
                     "(next retry in %.2f s)",
                     code, method, where, w);
                return finish(h, req, res, MLO_ERR_TIMEOUT);
            }
            char m[256];
            msgf(m, sizeof m, "HTTP %ld from %s %s; retry %d of %d in %.2f s", code, method, where,
                 res->retries + 1, h->policy.max_retries, w);
            scrub(h, m);
            if (h->on_retry)
                h->on_retry(h->ctx, code, m);
            if (sleep_until(h, until) != 0) {
                msgf(res->message, sizeof res->message,
                     "%s %s aborted while waiting to retry after HTTP %ld", method, where, code);
                return finish(h, req, res, MLO_ERR_TIMEOUT);
            }
            res->retries++;
            continue;
        }

        /* The attempt failed: the result describes no response.  Local
         * files first: their failures end the call, retrying cannot help. */
        mlo__buf_reset(&res->body);
        switch (o) {
        case MLO_XF_RESPONSE_FILE:
            msgf(res->message, sizeof res->message,
                 "%s %s: cannot write the response body to the file (at byte %llu): %s", method,
                 where, (unsigned long long)xr.file_off, strerror(xr.file_errno));
            return finish(h, req, res, MLO_ERR_STORE);
        case MLO_XF_BODY_FILE:
            if (!xr.file_errno)
                msgf(res->message, sizeof res->message,
                     "%s %s: the body file ended after %llu of %llu bytes (from offset %lld): "
                     "it shrank",
                     method, where, (unsigned long long)xr.file_off,
                     (unsigned long long)req->in_len, (long long)req->in_off);
            else
                msgf(res->message, sizeof res->message,
                     "%s %s: cannot read the body file at byte %llu: %s", method, where,
                     (unsigned long long)xr.file_off, strerror(xr.file_errno));
            return finish(h, req, res, MLO_ERR_STORE);
        case MLO_XF_NO_MEMORY:
            msgf(res->message, sizeof res->message, "out of memory during %s %s", method, where);
            return finish(h, req, res, MLO_ERR_NO_MEMORY);
        case MLO_XF_ABORTED:
            msgf(res->message, sizeof res->message, "%s %s aborted", method, where);
            return finish(h, req, res, MLO_ERR_TIMEOUT);
        case MLO_XF_TLS:
        case MLO_XF_TLS_CLIENT_CERT:
            tls_message(&xr, res->message, sizeof res->message);
            return finish(h, req, res, MLO_ERR_TLS);
        case MLO_XF_URL:
            msgf(res->message, sizeof res->message, "%s %s: %.120s (check the tracking URI)",
                 method, where, xr.detail);
            return finish(h, req, res, MLO_ERR_CONFIG);
        case MLO_XF_FATAL:
            msgf(res->message, sizeof res->message, "%s %s: %.140s", method, where, xr.detail);
            return finish(h, req, res, MLO_ERR_NETWORK);
        default:
            break;
        }
        /* The attempt's time limit was cut to the deadline and ran out (allow
         * for the ms rounding; a connect timeout further off retries). */
        if (o == MLO_XF_TIMEOUT && deadline_limited &&
            mlo__clock_mono(h->clock) >= deadline_ns - DEADLINE_SLACK_NS) {
            msgf(res->message, sizeof res->message, "%s %s: deadline passed (%.120s)", method,
                 where, xr.detail);
            return finish(h, req, res, MLO_ERR_TIMEOUT);
        }
        /* A keep-alive connection the server closed while idle: once, at once. */
        if (!reconnect_used && !req->not_idempotent && xr.reused_fast_fail) {
            reconnect_used = 1;
            res->reconnects++;
            continue;
        }
        if (req->not_idempotent && o != MLO_XF_CONNECT && o != MLO_XF_TLS_HANDSHAKE) {
            msgf(res->message, sizeof res->message,
                 "%s %s: %.120s: the request may have taken effect, not repeated", method, where,
                 xr.detail);
            return finish(h, req, res, MLO_ERR_NETWORK);
        }
        if (res->retries >= h->policy.max_retries) {
            if (o == MLO_XF_TLS_HANDSHAKE) {
                tls_message(&xr, res->message, sizeof res->message);
                return finish(h, req, res, MLO_ERR_TLS);
            }
            msgf(res->message, sizeof res->message, "%s %s: %.120s (after %d retries)", method,
                 where, xr.detail, res->retries);
            return finish(h, req, res, MLO_ERR_NETWORK);
        }
        double w =
            mlo__retry_wait_s(&h->policy, res->retries + 1, -1, mlo__retry_rng_unit(&h->rng));
        int64_t until = mlo__clock_mono(h->clock) + (int64_t)(w * (double)MLO_NS_PER_S);
        if (deadline_ns && until >= deadline_ns) {
            msgf(res->message, sizeof res->message,
                 "%s %s: %.120s; the deadline leaves no time to retry", method, where, xr.detail);
            return finish(h, req, res, MLO_ERR_TIMEOUT);
        }
        char m[256];
        msgf(m, sizeof m, "%s %s: %.100s; retry %d of %d in %.2f s", method, where, xr.detail,
             res->retries + 1, h->policy.max_retries, w);
        scrub(h, m);
        if (h->on_retry)
            h->on_retry(h->ctx, 0, m);
        if (sleep_until(h, until) != 0) {
            msgf(res->message, sizeof res->message, "%s %s aborted while waiting to retry", method,
                 where);
            return finish(h, req, res, MLO_ERR_TIMEOUT);
        }
        res->retries++;
    }
}

int mlo__http_call(mlo_http *h, const char *method, const char *api_path, const char *query,
                   const char *body, size_t len, int64_t deadline_ns, mlo_http_result *res) {
    mlo_http_req req = MLO_HTTP_REQ_INIT;
    req.method = method;
    req.path = api_path;
    req.query = query;
    req.body = body;
    req.len = len;
    req.deadline_ns = deadline_ns;
    return mlo__http_request(h, &req, res);
}
