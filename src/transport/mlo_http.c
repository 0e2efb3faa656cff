/*
 * mlo_http.c - the HTTP transport over libcurl.  The only file of mlo that
 * includes <curl/curl.h>.
 *
 * What it owns
 *   An mlo_http owns one CURL easy handle for its whole life, with its
 *   connection cache (so a keep-alive connection is reused from call to
 *   call), its error buffer, six prebuilt header lists (GET, JSON body,
 *   octet-stream body; each with and without Authorization) and copies of
 *   every configured string.  The Authorization header is built once in
 *   mlo__http_new, lives only in those header lists (plus, for one call, a
 *   list made for a caller's content type; and in the copies kept to scrub
 *   messages), and is wiped in mlo__http_free.  No message this module
 *   writes contains a credential: messages name the method and API path
 *   (never the base URI or the query; an absolute URL without its user info
 *   and query), and every message passes through scrub() before it leaves
 *   (which also hides the query of the call's absolute URL, should curl
 *   quote it).
 *
 * Threads
 *   One mlo_http per thread: a handle is used by one thread at a time and
 *   nothing in it is shared, so there is no lock here.  Callbacks (on_retry,
 *   should_abort) run on the calling thread.  curl_global_init runs once per
 *   process (pthread_once); curl_global_cleanup is never called (the library
 *   may be unloaded while another user of curl in the process still needs it).
 *   CURLOPT_NOSIGNAL is set: no SIGALRM for DNS timeouts in a multithreaded
 *   host process.
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
 *     Retry-After (seconds or an HTTP date, <= 120 s) when respected and > 0.
 *   - One extra immediate retry, not counted in max_retries, without
 *     on_retry or backoff: a request on a reused connection that fails at
 *     once (send/recv error or empty reply, no response byte, < 1 s) met a
 *     keep-alive connection the server had closed while idle.  (libcurl
 *     itself resends transparently when a reused connection dies before any
 *     response byte, which is what the tests see; this covers what it does
 *     not.)
 *   - Sleeps run in slices of <= 50 ms polling should_abort; curl's progress
 *     callback polls it during transfers.  An attempt's CURLOPT_TIMEOUT_MS is
 *     cut to what is left before the deadline, and a retry whose wait would
 *     reach the deadline is not made: the call returns status 8 at once,
 *     keeping the last HTTP code and body.
 *   - Per-attempt limit.  In-memory requests: CURLOPT_TIMEOUT_MS = timeout_s
 *     for the whole attempt, as always.  Streamed requests (a body from in_fd
 *     or a response to out_fd: artifacts of any size): no total limit, which
 *     would cut a 2 GB upload on a slow link however healthy, but an idle
 *     limit: the progress callback fails the attempt when no byte moved in
 *     either direction for timeout_s (checked about once a second), and that
 *     counts as a per-attempt timeout (retried).  Not CURLOPT_LOW_SPEED_*:
 *     curl averages the speed over the last ~5 s, so a stall after a burst
 *     would only be noticed up to 5 s late, and "1 byte/s" is the same rule
 *     said less exactly.  The connect timeout is min(timeout_s, 10 s) for
 *     both, and the deadline bounds both.
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
 * Proxies: curl's usual http_proxy / https_proxy / no_proxy environment
 * variables apply, as they do for MLflow's Python client (requests).
 *
 * Requests: Accept: application/json and the configured User-Agent always;
 * POST bodies go out with Content-Type: application/json, PUT bodies with
 * application/octet-stream (or the caller's content_type), both with
 * "Expect:" (no 100-continue round trip) and never compressed.  In-memory POST
 * bodies go through CURLOPT_POSTFIELDS; PUT bodies and bodies from a file
 * through read_cb over a body_src (memory, or pread of a file region, so the
 * fd's offset is never moved and every attempt starts again at in_off), with
 * Content-Length, never chunked.
 *
 * Streaming and memory: nothing here is proportional to a streamed body.
 * curl's own buffers carry it (64 KiB upload buffer, <= 16 KiB write
 * callbacks); write_cb sends a 2xx body to out_fd with pwrite at an offset
 * that restarts at 0, after an ftruncate, on every attempt, so a retried
 * download never keeps bytes of an earlier one; a non-2xx body (the error
 * JSON) goes to res->body, capped at 1 MiB when out_fd is set.  A call that
 * fails leaves the response file empty.  The response's status code, needed
 * to pick the sink before the first body byte, comes from the status line
 * seen by header_cb, which also takes the ETag (multipart uploads need it).
 *
 * Absolute URLs (presigned, e.g. S3 multipart parts): used as they are, with
 * the header lists without Authorization, so neither the Bearer token nor
 * Basic credentials ever go to another host.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* strndup, nanosleep, clock_gettime */
#endif
#include "mlo_http.h"

#include "mlo.h"

#include <curl/curl.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S 1000000000LL
#define NS_PER_MS 1000000LL
#define MAX_WAIT_S 120.0 /* cap of a backoff or a Retry-After */
#define SLEEP_SLICE_NS (50 * NS_PER_MS)
#define CONNECT_TIMEOUT_MAX_MS 10000L
#define DEFAULT_TIMEOUT_S 120.0
#define MAX_TIMEOUT_S 86400.0
#define REUSE_FAIL_FAST_US 1000000 /* "fails at once" on a reused connection */
#define NSECRETS 5
#define DEADLINE_SLACK_NS (20 * NS_PER_MS)
#define ERR_BODY_MAX (1u << 20) /* non-2xx body kept in memory when out_fd is set */

/* A request body read by curl through read_cb (PUT, and POST & co. from a
 * file); seek_cb rewinds it when curl has to send it again (a resend inside
 * curl on a dead connection).  Either memory (data) or the file region
 * [base, base + len) of fd, read with pread. */
typedef struct body_src {
    const char *data; /* in-memory body, when fd < 0 */
    int fd;           /* >= 0: the body is in this file */
    int64_t base;     /* file offset of the body's first byte */
    uint64_t len;
    uint64_t off; /* next byte to hand to curl */
    int err;      /* fd: errno of a failed pread, or -1 when the file ended early */
} body_src;

enum hdr_kind { HK_GET, HK_JSON, HK_OCTET, HK_N };

struct mlo_http {
    CURL *curl;
    char *base; /* base URI without trailing '/' */
    char *user_agent;
    char *ca_path;
    char *client_cert_path;
    char *auth;                       /* "Authorization: ..." or NULL */
    char *secrets[NSECRETS];          /* strings scrubbed from every message */
    struct curl_slist *hdrs[2][HK_N]; /* [0]: with Authorization (if any), [1]: without */
    int insecure_tls;
    int max_retries;
    int respect_retry_after;
    double backoff_factor_s, jitter_s, timeout_s;
    void (*on_retry)(void *ctx, long http_code, const char *message);
    int (*should_abort)(void *ctx);
    void *ctx;
    uint64_t rng;  /* xorshift64* state, never 0 */
    long connects; /* new connections opened, for tests and statistics */
    mlo_buf url;   /* reused from call to call */

    /* State of the call in flight. */
    mlo_http_result *res;          /* the caller's result */
    mlo_buf *sink;                 /* response body (&res->body) */
    int out_fd;                    /* 2xx bodies go to this file when >= 0 */
    const char *call_secret;       /* query of a presigned URL: scrubbed from messages */
    struct curl_slist *hdr_custom; /* this call's headers when content_type is given */
    int64_t idle_ns;               /* streamed: an attempt fails after this long idle */
    body_src src;                  /* request body read through read_cb */

    /* State of the attempt in flight, written by the callbacks. */
    int oom;           /* write_cb could not grow the body */
    int aborted;       /* xferinfo_cb saw should_abort */
    int idle_timeout;  /* xferinfo_cb saw no byte move for idle_ns */
    int store_errno;   /* write_cb could not write out_fd (errno) */
    long resp_code;    /* status code of the response being received */
    int64_t out_off;   /* bytes written to out_fd */
    uint64_t received; /* response body bytes seen by write_cb */
    curl_off_t last_dl, last_ul;
    int64_t last_move_ns; /* when a byte last moved (either direction) */
    double retry_after_s; /* Retry-After of the last response, < 0 if none */

    char errbuf[CURL_ERROR_SIZE]; /* CURLOPT_ERRORBUFFER, set once for the handle */
};

/* ---- small helpers ------------------------------------------------------ */

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

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

static void free_slist_wiped(struct curl_slist *l) {
    for (struct curl_slist *i = l; i; i = i->next)
        if (i->data)
            wipe(i->data, strlen(i->data));
    curl_slist_free_all(l);
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

/* Replaces every occurrence of each stored secret in msg (a C string in a
 * buffer of cap bytes) with "***".  Secrets shorter than 4 characters are
 * left alone: they would mangle ordinary text and reveal nothing. */
static void scrub(const mlo_http *h, char *msg, size_t cap) {
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
    (void)cap;
}

static uint64_t rng_next(mlo_http *h) {
    uint64_t x = h->rng; /* xorshift64* (Vigna) */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    h->rng = x;
    return x * 2685821657736338717ULL;
}

static double rng_unit(mlo_http *h) /* [0, 1) */
{
    return (double)(rng_next(h) >> 11) * (1.0 / 9007199254740992.0);
}

static uint64_t splitmix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int base64_append(mlo_buf *out, const unsigned char *in, size_t n) {
    if (mlo__buf_reserve(out, (n + 2) / 3 * 4) != 0)
        return -1;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        char q[4] = {b64chars[(v >> 18) & 63], b64chars[(v >> 12) & 63],
                     i + 1 < n ? b64chars[(v >> 6) & 63] : '=', i + 2 < n ? b64chars[v & 63] : '='};
        mlo__buf_append(out, q, 4); /* reserved above: cannot fail */
    }
    return 0;
}

/* ---- global init -------------------------------------------------------- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init_once(void) {
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void mlo__http_global_init(void) {
    pthread_once(&global_once, global_init_once);
}

/* ---- curl callbacks ----------------------------------------------------- */

/* Response body bytes: a 2xx body to out_fd when there is one, everything
 * else to the result's body (capped at ERR_BODY_MAX when out_fd is set, so
 * that a huge error page cannot undo the bounded memory of a download). */
static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud) {
    mlo_http *h = ud;
    size_t n = size * nmemb;
    h->received += n;
    if (h->out_fd >= 0 && h->resp_code >= 200 && h->resp_code < 300) {
        size_t done = 0;
        while (done < n) {
            ssize_t w = pwrite(h->out_fd, ptr + done, n - done, (off_t)h->out_off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                h->store_errno = w < 0 ? errno : EIO;
                return 0; /* CURLE_WRITE_ERROR */
            }
            done += (size_t)w;
            h->out_off += w;
        }
        return n;
    }
    size_t take = n;
    if (h->out_fd >= 0)
        take = h->sink->len >= ERR_BODY_MAX      ? 0
               : n > ERR_BODY_MAX - h->sink->len ? ERR_BODY_MAX - h->sink->len
                                                 : n;
    if (mlo__buf_append(h->sink, ptr, take) != 0) {
        h->oom = 1;
        return 0; /* CURLE_WRITE_ERROR */
    }
    return n;
}

/* Parses a Retry-After value: delta-seconds or an HTTP date.  < 0 if none. */
static double parse_retry_after(const char *v, size_t n) {
    char tmp[96];
    while (n && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    if (tmp[0] >= '0' && tmp[0] <= '9') {
        char *end;
        errno = 0;
        double s = strtod(tmp, &end);
        if (errno || *end)
            return -1;
        return s;
    }
    time_t t = curl_getdate(tmp, NULL);
    if (t == (time_t)-1)
        return -1;
    double d = difftime(t, time(NULL));
    return d > 0 ? d : 0;
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

static size_t header_cb(char *buf, size_t size, size_t nitems, void *ud) {
    mlo_http *h = ud;
    size_t n = size * nitems;
    /* A status line starts a new response (e.g. after a 100 Continue): forget
     * what the previous one said. */
    if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        h->retry_after_s = -1;
        h->res->etag[0] = '\0';
        h->resp_code = status_code(buf, n);
    } else if (n > 12 && strncasecmp(buf, "Retry-After:", 12) == 0) {
        h->retry_after_s = parse_retry_after(buf + 12, n - 12);
    } else if (n > 5 && strncasecmp(buf, "ETag:", 5) == 0) {
        const char *v = buf + 5;
        size_t vl = n - 5;
        while (vl && (*v == ' ' || *v == '\t')) {
            v++;
            vl--;
        }
        while (vl &&
               (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;
        char *dst = h->res->etag;
        if (vl >= sizeof h->res->etag)
            vl = 0; /* a cut ETag would be a wrong one */
        memcpy(dst, v, vl);
        dst[vl] = '\0';
    }
    return n;
}

/* Called by curl about once a second while idle and more often while data
 * moves: polls should_abort, and for streamed requests enforces the idle
 * limit (no byte moved either way for idle_ns). */
static int xferinfo_cb(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    (void)dltotal;
    (void)ultotal;
    mlo_http *h = ud;
    if (h->should_abort && h->should_abort(h->ctx)) {
        h->aborted = 1;
        return 1; /* CURLE_ABORTED_BY_CALLBACK */
    }
    if (h->idle_ns > 0) {
        int64_t now = mono_ns();
        if (dlnow != h->last_dl || ulnow != h->last_ul) {
            h->last_dl = dlnow;
            h->last_ul = ulnow;
            h->last_move_ns = now;
        } else if (now - h->last_move_ns >= h->idle_ns) {
            h->idle_timeout = 1;
            return 1; /* reported as a per-attempt timeout */
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
    ssize_t r;
    do
        r = pread(src->fd, buffer, n, (off_t)(src->base + (int64_t)src->off));
    while (r < 0 && errno == EINTR);
    if (r <= 0) { /* an error, or the file ended before the body did */
        src->err = r < 0 ? errno : -1;
        return CURL_READFUNC_ABORT;
    }
    src->off += (uint64_t)r;
    return (size_t)r;
}

static int seek_cb(void *ud, curl_off_t offset, int origin) {
    body_src *src = ud;
    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > src->len)
        return CURL_SEEKFUNC_CANTSEEK;
    src->off = (uint64_t)offset;
    return CURL_SEEKFUNC_OK;
}

/* ---- handle ------------------------------------------------------------- */

static struct curl_slist *make_headers(const char *auth, const char *content_type, int *oom) {
    struct curl_slist *l = NULL, *t;
    const char *lines[4];
    int n = 0;
    lines[n++] = "Accept: application/json";
    if (content_type) {
        lines[n++] = content_type;
        lines[n++] = "Expect:"; /* no "Expect: 100-continue" wait before the body */
    }
    if (auth)
        lines[n++] = auth;
    for (int i = 0; i < n; i++) {
        t = curl_slist_append(l, lines[i]);
        if (!t) {
            free_slist_wiped(l);
            *oom = 1;
            return NULL;
        }
        l = t;
    }
    return l;
}

/* Adds the password of user:password@ in the base URI to the secrets, so
 * that it is scrubbed too if curl ever quotes it. */
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
            rc |= base64_append(&b, (const unsigned char *)plain.data, plain.len);
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
    mlo__http_global_init();
    if (global_rc != CURLE_OK)
        return NULL;

    mlo_http *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    int oom = 0;
    mlo__buf_init(&h->url);
    h->base = dup_or_null(cfg->base_uri, &oom);
    h->user_agent = dup_or_null(cfg->user_agent ? cfg->user_agent : "mlo", &oom);
    h->ca_path = dup_or_null(cfg->ca_path, &oom);
    h->client_cert_path = dup_or_null(cfg->client_cert_path, &oom);
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
    }
    for (int na = 0; na < 2; na++) {
        const char *a = na ? NULL : h->auth;
        h->hdrs[na][HK_GET] = make_headers(a, NULL, &oom);
        h->hdrs[na][HK_JSON] = make_headers(a, "Content-Type: application/json", &oom);
        h->hdrs[na][HK_OCTET] = make_headers(a, "Content-Type: application/octet-stream", &oom);
    }
    if (oom)
        goto fail;

    h->insecure_tls = cfg->insecure_tls != 0;
    h->max_retries = cfg->max_retries < 0 ? 0 : cfg->max_retries > 10 ? 10 : cfg->max_retries;
    h->respect_retry_after = cfg->respect_retry_after != 0;
    h->backoff_factor_s = cfg->backoff_factor_s > 0 ? cfg->backoff_factor_s : 0;
    h->jitter_s = cfg->jitter_s > 0 ? cfg->jitter_s : 0;
    h->timeout_s = cfg->timeout_s > 0 ? cfg->timeout_s : DEFAULT_TIMEOUT_S;
    if (h->timeout_s > MAX_TIMEOUT_S)
        h->timeout_s = MAX_TIMEOUT_S;
    h->on_retry = cfg->on_retry;
    h->should_abort = cfg->should_abort;
    h->ctx = cfg->ctx;
    h->retry_after_s = -1;
    h->out_fd = -1;
    h->src.fd = -1;

    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    uint64_t seed =
        (uint64_t)mono_ns() ^ ((uint64_t)rt.tv_sec * 1000000007ULL + (uint64_t)rt.tv_nsec);
    seed ^= splitmix64((uint64_t)(uintptr_t)h);
    h->rng = splitmix64(seed);
    if (h->rng == 0)
        h->rng = 0x2545f4914f6cdd1dULL;

    h->curl = curl_easy_init();
    if (!h->curl)
        goto fail;
    CURL *c = h->curl;
    CURLcode rc = CURLE_OK;
    /* The options that must hold; a failure here leaves no usable handle. */
    rc |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    rc |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    rc |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    rc |= curl_easy_setopt(c, CURLOPT_USERAGENT, h->user_agent);
    rc |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    rc |= curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
    rc |= curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
    rc |= curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
    rc |= curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    rc |= curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
    rc |= curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
    rc |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, h->insecure_tls ? 0L : 1L);
    rc |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, h->insecure_tls ? 0L : 2L);
    if (h->ca_path)
        rc |= curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_path);
    if (h->client_cert_path) {
        rc |= curl_easy_setopt(c, CURLOPT_SSLCERT, h->client_cert_path);
        rc |= curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
    }
    if (rc != CURLE_OK)
        goto fail;
    /* Best effort: a build without them still works. */
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 15L);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    return h;

fail:
    mlo__http_free(h);
    return NULL;
}

void mlo__http_free(mlo_http *h) {
    if (!h)
        return;
    if (h->curl)
        curl_easy_cleanup(h->curl);
    for (int na = 0; na < 2; na++)
        for (int k = 0; k < HK_N; k++)
            free_slist_wiped(h->hdrs[na][k]);
    free_slist_wiped(h->hdr_custom);
    free_secret(h->auth);
    for (int i = 0; i < NSECRETS; i++)
        free_secret(h->secrets[i]);
    free_secret(h->base); /* may hold user:password@ */
    free(h->user_agent);
    free(h->ca_path);
    free(h->client_cert_path);
    if (h->url.data)
        wipe(h->url.data, h->url.cap);
    mlo__buf_free(&h->url);
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

enum failure_kind {
    FK_RETRYABLE,     /* transport failure worth another attempt */
    FK_TLS_RETRYABLE, /* TLS handshake broke off: retry, but report status 10 at the end */
    FK_TLS,           /* certificate / TLS set-up problem: status 10 now */
    FK_CONFIG,        /* URL or scheme refused: status 18 now */
    FK_FATAL,         /* anything else: status 9 now */
};

static enum failure_kind classify(CURLcode rc) {
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_QUIC_CONNECT_ERROR:
        return FK_RETRYABLE;
    case CURLE_SSL_CONNECT_ERROR:
        return FK_TLS_RETRYABLE;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_USE_SSL_FAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
        return FK_TLS;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return FK_CONFIG;
    default:
        return FK_FATAL;
    }
}

static int retryable_http(long code) {
    return code == 408 || code == 429 || code == 500 || code == 502 || code == 503 || code == 504;
}

/* curl's words for the failure: the error buffer, or the generic text. */
static const char *curl_text(const mlo_http *h, CURLcode rc) {
    return h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc);
}

/* The TLS failure, curl's words first, then how to fix it (the path is left
 * out: a TLS failure is about the server, and the hint must fit). */
/* With TLS 1.3 a server that refuses the client certificate says so after
 * the handshake, in an alert that curl reports as a recv/send error. */
/* With TLS 1.3 a server refuses a client certificate after the handshake,
 * with an alert that curl reports as a plain send/recv error: recognise the
 * alerts that mean "your certificate" ("bad certificate", "certificate
 * required", "unknown ca", ...) so the caller gets a TLS status and a hint
 * instead of network retries. */
static int client_cert_refused(const mlo_http *h, CURLcode rc) {
    if (rc != CURLE_RECV_ERROR && rc != CURLE_SEND_ERROR)
        return 0;
    if (!strstr(h->errbuf, "alert"))
        return 0;
    return strstr(h->errbuf, "certificate") || strstr(h->errbuf, "unknown ca") ||
           strstr(h->errbuf, "access denied") || strstr(h->errbuf, "handshake failure");
}

static void tls_message(const mlo_http *h, CURLcode rc, char *dst, size_t cap) {
    const char *hint;
    if (rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_CLIENTCERT || client_cert_refused(h, rc))
        hint = "check MLFLOW_TRACKING_CLIENT_CERT_PATH (one PEM file with the client "
               "certificate and its key)";
    else
        hint = "set MLFLOW_TRACKING_SERVER_CERT_PATH to the server's CA bundle, or "
               "MLFLOW_TRACKING_INSECURE_TLS=true to skip verification (unsafe)";
    msgf(dst, cap, "%.100s; %s", curl_text(h, rc), hint);
}

/* Sleeps until the monotonic time `until`, in slices of <= 50 ms, polling
 * should_abort before each.  0 slept, -1 aborted. */
static int sleep_until(mlo_http *h, int64_t until) {
    for (;;) {
        if (h->should_abort && h->should_abort(h->ctx))
            return -1;
        int64_t now = mono_ns();
        if (now >= until)
            return 0;
        int64_t d = until - now;
        if (d > SLEEP_SLICE_NS)
            d = SLEEP_SLICE_NS;
        struct timespec ts = {.tv_sec = (time_t)(d / NS_PER_S), .tv_nsec = (long)(d % NS_PER_S)};
        nanosleep(&ts, NULL); /* EINTR: the loop re-checks the clock */
    }
}

/* Seconds to wait before counted retry number n (1-based). */
static double retry_wait_s(mlo_http *h, int n, int use_retry_after) {
    if (use_retry_after && h->respect_retry_after && h->retry_after_s > 0)
        return h->retry_after_s < MAX_WAIT_S ? h->retry_after_s : MAX_WAIT_S;
    double w = h->backoff_factor_s * (double)(1ULL << (n - 1 < 20 ? n - 1 : 20));
    if (w > MAX_WAIT_S)
        w = MAX_WAIT_S;
    return w + h->jitter_s * rng_unit(h);
}

/* Sets method, body and headers of the request on the handle.  absolute: a
 * presigned URL, sent without the Authorization header. */
static int set_request(mlo_http *h, const mlo_http_req *req, int absolute) {
    CURL *c = h->curl;
    CURLcode rc = CURLE_OK;
    const char *method = req->method;
    const int from_fd = req->in_fd >= 0;
    const int has_body = from_fd || req->len > 0;
    const int is_get = strcmp(method, "GET") == 0, is_head = strcmp(method, "HEAD") == 0;
    const int is_put = strcmp(method, "PUT") == 0, is_post = strcmp(method, "POST") == 0;
    /* Undo whatever the previous call set (HTTPGET resets the method, upload
     * and nobody flags; POSTFIELDS would point at the previous body). */
    rc |= curl_easy_setopt(c, CURLOPT_POSTFIELDS, (char *)NULL);
    rc |= curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
    /* libcurl silently sends a request again on a new connection when a
     * reused one dies before any answer: a non-idempotent request (which the
     * server may have carried out before dying) gets a fresh connection, on
     * which curl never does that. */
    rc |= curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, req->not_idempotent ? 1L : 0L);
    rc |= curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, (char *)NULL);
    rc |= curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);

    h->src = (body_src){.data = req->body ? req->body : "",
                        .fd = from_fd ? req->in_fd : -1,
                        .base = from_fd ? req->in_off : 0,
                        .len = from_fd ? (uint64_t)req->in_len : (req->body ? req->len : 0)};
    enum hdr_kind kind = HK_GET;
    if (is_get || is_head) {
        if (is_head)
            rc |= curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (is_put) {
        kind = HK_OCTET;
        rc |= curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        rc |= curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)h->src.len);
    } else if (is_post || has_body) {
        kind = HK_JSON;
        if (from_fd) {
            rc |= curl_easy_setopt(c, CURLOPT_POST, 1L);
            rc |= curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)h->src.len);
        } else {
            rc |= curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->len);
            rc |= curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        }
        if (!is_post)
            rc |= curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    } else {
        rc |= curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    if (is_put || from_fd) {
        rc |= curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
        rc |= curl_easy_setopt(c, CURLOPT_READDATA, &h->src);
        rc |= curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, seek_cb);
        rc |= curl_easy_setopt(c, CURLOPT_SEEKDATA, &h->src);
    }

    struct curl_slist *hdr = h->hdrs[absolute ? 1 : 0][kind];
    if (kind != HK_GET && req->content_type) {
        mlo_buf ct;
        mlo__buf_init(&ct);
        int oom =
            mlo__buf_appends(&ct, "Content-Type: ") | mlo__buf_appends(&ct, req->content_type);
        if (!oom)
            h->hdr_custom = make_headers(absolute ? NULL : h->auth, ct.data, &oom);
        mlo__buf_free(&ct);
        if (oom)
            return -1;
        hdr = h->hdr_custom;
    }
    rc |= curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    return rc == CURLE_OK ? 0 : -1;
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

static int finish(mlo_http *h, mlo_http_result *res, int status) {
    res->status = status;
    if (status == MLO_OK)
        res->message[0] = '\0';
    else
        scrub(h, res->message, sizeof res->message);
    /* A failed download leaves an empty file, not a part of one. */
    if (status != MLO_OK && h->out_fd >= 0 && ftruncate(h->out_fd, 0) != 0) {
        /* best effort: the status already says the file is not the body */
    }
    if (h->hdr_custom) {
        curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, h->hdrs[0][HK_GET]);
        free_slist_wiped(h->hdr_custom);
        h->hdr_custom = NULL;
    }
    h->sink = NULL;
    h->res = NULL;
    h->out_fd = -1;
    h->call_secret = NULL;
    h->idle_ns = 0;
    h->src = (body_src){.fd = -1};
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
    h->res = res;
    h->sink = &res->body;

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
    if (brc != 0) {
        msgf(res->message, sizeof res->message, "out of memory building the URL");
        return finish(h, res, MLO_ERR_NO_MEMORY);
    }
    if (absolute) {
        const char *q = strchr(h->url.data, '?');
        h->call_secret = q ? q + 1 : NULL;
    }
    if (curl_easy_setopt(h->curl, CURLOPT_URL, h->url.data) != CURLE_OK ||
        set_request(h, req, absolute) != 0) {
        msgf(res->message, sizeof res->message, "out of memory setting up %s %s", method, where);
        return finish(h, res, MLO_ERR_NO_MEMORY);
    }
    h->out_fd = req->out_fd >= 0 ? req->out_fd : -1;

    /* Streamed bodies have no total per-attempt limit, only the idle limit
     * (xferinfo_cb); in-memory ones keep CURLOPT_TIMEOUT_MS = timeout_s. */
    const int streamed = req->in_fd >= 0 || req->out_fd >= 0;
    const long attempt_ms_cfg = (long)(h->timeout_s * 1000.0);
    int reconnect_used = 0;
    for (;;) {
        if (h->should_abort && h->should_abort(h->ctx)) {
            msgf(res->message, sizeof res->message, "%s %s aborted", method, where);
            return finish(h, res, MLO_ERR_TIMEOUT);
        }
        long total_ms = streamed ? 0 : attempt_ms_cfg > 0 ? attempt_ms_cfg : 1; /* 0: none */
        long conn_ms = attempt_ms_cfg > 0 ? attempt_ms_cfg : 1;
        if (conn_ms > CONNECT_TIMEOUT_MAX_MS)
            conn_ms = CONNECT_TIMEOUT_MAX_MS;
        int deadline_limited = 0;
        if (deadline_ns) {
            int64_t left = deadline_ns - mono_ns();
            if (left < NS_PER_MS) {
                msgf(res->message, sizeof res->message, "%s %s: deadline passed%s", method, where,
                     res->retries || res->reconnects ? " while retrying" : "");
                return finish(h, res, MLO_ERR_TIMEOUT);
            }
            long left_ms = left / NS_PER_MS > LONG_MAX ? LONG_MAX : (long)(left / NS_PER_MS);
            if (total_ms == 0 || left_ms < total_ms) {
                total_ms = left_ms;
                deadline_limited = 1;
            }
            if (left_ms < conn_ms)
                conn_ms = left_ms;
        }
        curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, total_ms);
        curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT_MS, conn_ms);

        mlo__buf_reset(&res->body);
        res->http_code = 0;
        res->content_type[0] = '\0';
        res->etag[0] = '\0';
        res->bytes_sent = res->bytes_received = 0;
        h->errbuf[0] = '\0';
        h->oom = 0;
        h->aborted = 0;
        h->idle_timeout = 0;
        h->store_errno = 0;
        h->resp_code = 0;
        h->out_off = 0;
        h->received = 0;
        h->retry_after_s = -1;
        h->src.off = 0;
        h->src.err = 0;
        h->idle_ns = streamed ? (int64_t)(h->timeout_s * (double)NS_PER_S) : 0;
        h->last_dl = h->last_ul = 0;
        h->last_move_ns = mono_ns();
        if (h->out_fd >= 0 && ftruncate(h->out_fd, 0) != 0) {
            msgf(res->message, sizeof res->message,
                 "%s %s: cannot truncate the file for the response: %s", method, where,
                 strerror(errno));
            return finish(h, res, MLO_ERR_STORE);
        }

        CURLcode rc = curl_easy_perform(h->curl);

        long code = 0, nconn = 0, hdr_bytes = 0;
        curl_off_t total_us = 0, up = 0;
        curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(h->curl, CURLINFO_NUM_CONNECTS, &nconn);
        curl_easy_getinfo(h->curl, CURLINFO_HEADER_SIZE, &hdr_bytes);
        curl_easy_getinfo(h->curl, CURLINFO_TOTAL_TIME_T, &total_us);
        curl_easy_getinfo(h->curl, CURLINFO_SIZE_UPLOAD_T, &up);
        h->connects += nconn;
        res->bytes_sent = up > 0 ? (uint64_t)up : 0;
        res->bytes_received = h->received;

        if (rc == CURLE_OK) {
            res->http_code = code;
            char *ct = NULL;
            if (curl_easy_getinfo(h->curl, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
                msgf(res->content_type, sizeof res->content_type, "%s", ct);
            if (!retryable_http(code) || res->retries >= h->max_retries)
                return finish(h, res, MLO_OK);
            double w = retry_wait_s(h, res->retries + 1, 1);
            int64_t until = mono_ns() + (int64_t)(w * (double)NS_PER_S);
            if (deadline_ns && until >= deadline_ns) {
                msgf(res->message, sizeof res->message,
                     "HTTP %ld from %s %s and the deadline leaves no time to retry "
                     "(next retry in %.2f s)",
                     code, method, where, w);
                return finish(h, res, MLO_ERR_TIMEOUT);
            }
            char m[256];
            msgf(m, sizeof m, "HTTP %ld from %s %s; retry %d of %d in %.2f s", code, method, where,
                 res->retries + 1, h->max_retries, w);
            scrub(h, m, sizeof m);
            if (h->on_retry)
                h->on_retry(h->ctx, code, m);
            if (sleep_until(h, until) != 0) {
                msgf(res->message, sizeof res->message,
                     "%s %s aborted while waiting to retry after HTTP %ld", method, where, code);
                return finish(h, res, MLO_ERR_TIMEOUT);
            }
            res->retries++;
            continue;
        }

        /* Transport failure: the result describes no response. */
        mlo__buf_reset(&res->body);
        res->content_type[0] = '\0';
        res->etag[0] = '\0';
        /* The files first: their failures end the call, retrying cannot help. */
        if (h->store_errno) {
            msgf(res->message, sizeof res->message,
                 "%s %s: cannot write the response body to the file (at byte %lld): %s", method,
                 where, (long long)h->out_off, strerror(h->store_errno));
            return finish(h, res, MLO_ERR_STORE);
        }
        if (h->src.err) {
            if (h->src.err < 0)
                msgf(res->message, sizeof res->message,
                     "%s %s: the body file ended after %llu of %llu bytes (from offset %lld): "
                     "it shrank",
                     method, where, (unsigned long long)h->src.off, (unsigned long long)h->src.len,
                     (long long)h->src.base);
            else
                msgf(res->message, sizeof res->message,
                     "%s %s: cannot read the body file at byte %llu: %s", method, where,
                     (unsigned long long)h->src.off, strerror(h->src.err));
            return finish(h, res, MLO_ERR_STORE);
        }
        if (rc == CURLE_OUT_OF_MEMORY || (rc == CURLE_WRITE_ERROR && h->oom)) {
            msgf(res->message, sizeof res->message, "out of memory during %s %s", method, where);
            return finish(h, res, MLO_ERR_NO_MEMORY);
        }
        if (h->aborted) {
            msgf(res->message, sizeof res->message, "%s %s aborted", method, where);
            return finish(h, res, MLO_ERR_TIMEOUT);
        }
        if (rc == CURLE_ABORTED_BY_CALLBACK && h->idle_timeout) {
            /* the idle limit of a streamed body: a per-attempt timeout */
            rc = CURLE_OPERATION_TIMEDOUT;
            msgf(h->errbuf, sizeof h->errbuf, "no data moved for %.1f s", h->timeout_s);
        }
        if (rc == CURLE_ABORTED_BY_CALLBACK) {
            msgf(res->message, sizeof res->message, "%s %s aborted", method, where);
            return finish(h, res, MLO_ERR_TIMEOUT);
        }
        /* The attempt's timeout was cut to the deadline and ran out (allow
         * for curl's ms rounding; a connect timeout further off retries). */
        if (rc == CURLE_OPERATION_TIMEDOUT && deadline_limited &&
            mono_ns() >= deadline_ns - DEADLINE_SLACK_NS) {
            msgf(res->message, sizeof res->message, "%s %s: deadline passed (%.120s)", method,
                 where, curl_text(h, rc));
            return finish(h, res, MLO_ERR_TIMEOUT);
        }
        enum failure_kind fk = client_cert_refused(h, rc) ? FK_TLS : classify(rc);
        if (fk == FK_TLS) {
            tls_message(h, rc, res->message, sizeof res->message);
            return finish(h, res, MLO_ERR_TLS);
        }
        if (fk == FK_CONFIG) {
            msgf(res->message, sizeof res->message, "%s %s: %.120s (check the tracking URI)",
                 method, where, curl_text(h, rc));
            return finish(h, res, MLO_ERR_CONFIG);
        }
        if (fk == FK_FATAL) {
            msgf(res->message, sizeof res->message, "%s %s: %.140s", method, where,
                 curl_text(h, rc));
            return finish(h, res, MLO_ERR_NETWORK);
        }
        /* A keep-alive connection the server closed while idle: once, at once. */
        if (!reconnect_used && !req->not_idempotent && nconn == 0 && hdr_bytes == 0 &&
            total_us < REUSE_FAIL_FAST_US &&
            (rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING)) {
            reconnect_used = 1;
            res->reconnects++;
            continue;
        }
        if (req->not_idempotent && rc != CURLE_COULDNT_RESOLVE_HOST &&
            rc != CURLE_COULDNT_RESOLVE_PROXY && rc != CURLE_COULDNT_CONNECT &&
            fk != FK_TLS_RETRYABLE) {
            msgf(res->message, sizeof res->message,
                 "%s %s: %.120s: the request may have taken effect, not repeated", method, where,
                 curl_text(h, rc));
            return finish(h, res, MLO_ERR_NETWORK);
        }
        if (res->retries >= h->max_retries) {
            if (fk == FK_TLS_RETRYABLE) {
                tls_message(h, rc, res->message, sizeof res->message);
                return finish(h, res, MLO_ERR_TLS);
            }
            msgf(res->message, sizeof res->message, "%s %s: %.120s (after %d retries)", method,
                 where, curl_text(h, rc), res->retries);
            return finish(h, res, MLO_ERR_NETWORK);
        }
        double w = retry_wait_s(h, res->retries + 1, 0);
        int64_t until = mono_ns() + (int64_t)(w * (double)NS_PER_S);
        if (deadline_ns && until >= deadline_ns) {
            msgf(res->message, sizeof res->message,
                 "%s %s: %.120s; the deadline leaves no time to retry", method, where,
                 curl_text(h, rc));
            return finish(h, res, MLO_ERR_TIMEOUT);
        }
        char m[256];
        msgf(m, sizeof m, "%s %s: %.100s; retry %d of %d in %.2f s", method, where,
             curl_text(h, rc), res->retries + 1, h->max_retries, w);
        scrub(h, m, sizeof m);
        if (h->on_retry)
            h->on_retry(h->ctx, 0, m);
        if (sleep_until(h, until) != 0) {
            msgf(res->message, sizeof res->message, "%s %s aborted while waiting to retry", method,
                 where);
            return finish(h, res, MLO_ERR_TIMEOUT);
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
