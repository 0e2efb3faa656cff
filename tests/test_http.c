/*
 * test_http.c - the libcurl transport (src/mlo_http.c) against the loopback
 * MLflow-compatible test server (tests/mlflow_test_server.py through
 * tests/testsrv.h) and against two small servers of its own:
 *  - rawsrv: an in-process HTTP/1.1 server on a thread, for what the test
 *    server cannot show: the exact request header lines, and a keep-alive
 *    connection that the server closes when the next request arrives;
 *  - an HTTPS server (python3 ssl + a self-signed certificate made with the
 *    openssl command), for certificate verification.  Skipped when openssl
 *    is not installed;
 *  - blobsrv: another in-process server, for the streamed bodies of
 *    mlo__http_request (artifacts): it checks request bodies against a
 *    pseudo-random pattern as they arrive and generates response bodies from
 *    it, so that neither side holds a body in memory, and it follows a
 *    per-request script (status, ETag, cut or stalled bodies, dropped
 *    uploads).
 * Backoff factors are 0.01 s so that the suite stays fast.
 */
#define _GNU_SOURCE /* strcasestr, strncasecmp, mkdtemp */
/* cmocka.h needs these four first */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "mlo_http.h"
#include "testsrv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000LL

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- callbacks ---------------------------------------------------------- */

typedef struct cb_state {
    int retries_seen;
    long last_code;
    char last_msg[256];
    int64_t abort_at_ns; /* should_abort returns 1 from then on (0 = never) */
    int abort_polls;
} cb_state;

static void on_retry(void *ctx, long code, const char *msg) {
    cb_state *s = ctx;
    s->retries_seen++;
    s->last_code = code;
    snprintf(s->last_msg, sizeof s->last_msg, "%s", msg);
}

static int should_abort(void *ctx) {
    cb_state *s = ctx;
    s->abort_polls++;
    return s->abort_at_ns && now_ns() >= s->abort_at_ns;
}

static mlo_http_config base_cfg(const char *uri, cb_state *st) {
    mlo_http_config c;
    memset(&c, 0, sizeof c);
    c.base_uri = uri;
    c.max_retries = 3;
    c.backoff_factor_s = 0.01;
    c.jitter_s = 0.01;
    c.timeout_s = 10;
    c.respect_retry_after = 1;
    c.user_agent = "mlo-test/0.0";
    c.on_retry = on_retry;
    c.should_abort = should_abort;
    c.ctx = st;
    return c;
}

static mlo_http *new_http(const char *uri, cb_state *st) {
    mlo_http_config c = base_cfg(uri, st);
    mlo_http *h = mlo__http_new(&c);
    assert_non_null(h);
    return h;
}

/* ---- the test server ------------------------------------------------------ */

static testsrv *srv; /* of the running group */

static const char *srv_uri(void) {
    return testsrv_uri(srv);
}

static int srv_fault(const char *json) {
    return testsrv_fault(srv, json);
}

/* The requests the test server recorded (a JSON array), new reference. */
static json_t *server_requests(void) {
    long code = 0;
    char *body = testsrv_get(srv, "/_test/requests", &code);
    assert_int_equal(code, 200);
    assert_non_null(body);
    json_error_t err;
    json_t *j = json_loads(body, JSON_ALLOW_NUL, &err);
    free(body);
    assert_non_null(j);
    if (json_is_object(j)) {
        json_t *a = json_object_get(j, "requests");
        assert_non_null(a);
        json_incref(a);
        json_decref(j);
        j = a;
    }
    assert_true(json_is_array(j));
    return j;
}

/* Does the recorded request's path or query contain needle? */
static int request_matches(json_t *r, const char *needle) {
    const char *p = json_string_value(json_object_get(r, "path"));
    const char *q = json_string_value(json_object_get(r, "query"));
    return (p && strstr(p, needle)) || (q && strstr(q, needle));
}

/* Number of recorded requests matching needle, and in *conns how many
 * different connections they came on (the server numbers its connections). */
static size_t count_requests(const char *needle, size_t *conns) {
    json_t *a = server_requests();
    json_t *seen = json_object();
    size_t n = 0, i;
    json_t *r;
    json_array_foreach(a, i, r) {
        if (!request_matches(r, needle))
            continue;
        n++;
        char id[64];
        json_t *c = json_object_get(r, "conn");
        snprintf(id, sizeof id, "%lld",
                 json_is_integer(c) ? (long long)json_integer_value(c) : -1LL);
        json_object_set_new(seen, id, json_true());
    }
    if (conns)
        *conns = json_object_size(seen);
    json_decref(seen);
    json_decref(a);
    return n;
}

/* A copy of field `key` of the last recorded request whose path contains
 * needle ("" if the field is null), or NULL if there is none. */
static char *last_request_field(const char *needle, const char *key) {
    json_t *a = server_requests();
    char *out = NULL;
    for (size_t i = json_array_size(a); i-- > 0;) {
        json_t *r = json_array_get(a, i);
        if (request_matches(r, needle)) {
            const char *v = json_string_value(json_object_get(r, key));
            out = strdup(v ? v : "");
            break;
        }
    }
    json_decref(a);
    return out;
}

/* A port on 127.0.0.1 that nobody listens on. */
static int closed_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- rawsrv: a tiny in-process HTTP/1.1 server --------------------------- */

typedef struct rawsrv {
    int lfd;
    int port;
    int close_on_second; /* drop a connection, unanswered, when its 2nd request arrives */
    int ra_date_first;   /* answer the first request 503 with Retry-After: <HTTP date + 2 s> */
    pthread_t th;
    atomic_int stop;
    atomic_int requests;    /* requests read completely */
    atomic_int connections; /* connections accepted */
    pthread_mutex_t mu;
    char last_head[8192]; /* header block of the last request */
    size_t last_body_len;
} rawsrv;

/* Reads until buf holds a header block; returns its length incl. CRLFCRLF,
 * 0 on EOF / stop.  *have: bytes in buf. */
static size_t raw_read_head(rawsrv *s, int fd, char *buf, size_t cap, size_t *have) {
    for (;;) {
        buf[*have] = '\0';
        char *e = strstr(buf, "\r\n\r\n");
        if (e)
            return (size_t)(e - buf) + 4;
        if (*have + 1 >= cap || atomic_load(&s->stop))
            return 0;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t r = read(fd, buf + *have, cap - 1 - *have);
        if (r <= 0)
            return 0;
        *have += (size_t)r;
    }
}

static void raw_conn(rawsrv *s, int fd) {
    static char buf[16384];
    size_t have = 0;
    int nreq = 0;
    for (;;) {
        size_t hl = raw_read_head(s, fd, buf, sizeof buf, &have);
        if (hl == 0)
            return;
        size_t clen = 0;
        for (char *p = buf; p < buf + hl; p++)
            if (strncasecmp(p, "\r\nContent-Length:", 17) == 0)
                clen = strtoul(p + 17, NULL, 10);
        pthread_mutex_lock(&s->mu);
        memcpy(s->last_head, buf, hl < sizeof s->last_head ? hl : sizeof s->last_head - 1);
        s->last_head[hl < sizeof s->last_head ? hl : sizeof s->last_head - 1] = '\0';
        s->last_body_len = clen;
        pthread_mutex_unlock(&s->mu);
        /* consume the body: what is in buf already, then the socket */
        size_t inbuf = have - hl;
        size_t take = inbuf < clen ? inbuf : clen;
        size_t need = clen - take;
        memmove(buf, buf + hl + take, have - hl - take);
        have -= hl + take;
        while (need > 0) {
            char tmp[65536];
            ssize_t r = read(fd, tmp, need < sizeof tmp ? need : sizeof tmp);
            if (r <= 0)
                return;
            need -= (size_t)r;
        }
        nreq++;
        atomic_fetch_add(&s->requests, 1);
        if (s->close_on_second && nreq == 2)
            return; /* the caller closes fd: an idle keep-alive close that lost the race */
        if (s->ra_date_first && atomic_load(&s->requests) == 1) {
            char date[64], resp[256];
            time_t t = time(NULL) + 2;
            struct tm tm;
            gmtime_r(&t, &tm);
            strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
            int n = snprintf(resp, sizeof resp,
                             "HTTP/1.1 503 Service Unavailable\r\nRetry-After: %s\r\n"
                             "Content-Length: 0\r\n\r\n",
                             date);
            if (write(fd, resp, (size_t)n) != n)
                return;
            continue;
        }
        static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                   "Content-Length: 2\r\n\r\n{}";
        if (write(fd, resp, sizeof resp - 1) != (ssize_t)(sizeof resp - 1))
            return;
    }
}

static void *raw_main(void *arg) {
    rawsrv *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {.fd = s->lfd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        atomic_fetch_add(&s->connections, 1);
        raw_conn(s, fd);
        close(fd);
    }
    return NULL;
}

static void raw_start(rawsrv *s, int close_on_second, int ra_date_first) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->close_on_second = close_on_second;
    s->ra_date_first = ra_date_first;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->lfd, 16), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->th, NULL, raw_main, s), 0);
}

static void raw_stop(rawsrv *s) {
    atomic_store(&s->stop, 1);
    pthread_join(s->th, NULL);
    close(s->lfd);
    pthread_mutex_destroy(&s->mu);
}

/* ---- group setup ---------------------------------------------------------- */

static int srv_up(void **state) {
    (void)state;
    srv = testsrv_start("");
    return srv ? 0 : -1;
}

static int srv_up_close(void **state) {
    (void)state;
    srv = testsrv_start("--close");
    return srv ? 0 : -1;
}

static int srv_down(void **state) {
    (void)state;
    testsrv_stop(srv);
    srv = NULL;
    return 0;
}

/* Before each test: no data, no queued faults, an empty request log. */
static int srv_reset(void **state) {
    (void)state;
    long code = 0;
    free(testsrv_post(srv, "/_test/reset", "{}", &code));
    return code == 200 ? 0 : -1;
}

/* ---- tests against the test server --------------------------------------- */

static void test_get_and_post(void **state) {
    (void)state;
    cb_state st = {0};
    mlo_http *h = new_http(srv_uri(), &st);
    mlo_http_result r;

    /* POST: create an experiment; JSON in, JSON out. */
    const char *body = "{\"name\":\"http-test-exp\"}";
    assert_int_equal(mlo__http_call(h, "POST", "/api/2.0/mlflow/experiments/create", NULL, body,
                                    strlen(body), 0, &r),
                     0);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.http_code, 200);
    assert_int_equal(r.retries, 0);
    assert_non_null(strstr(r.content_type, "application/json"));
    assert_true(r.body.len > 0);
    assert_non_null(strstr(r.body.data, "experiment_id"));
    assert_string_equal(r.message, "");
    mlo__http_result_free(&r);
    char *ct = last_request_field("experiments/create", "content_type");
    if (ct && *ct) /* recorded only if the server keeps it */
        assert_non_null(strstr(ct, "application/json"));
    free(ct);

    /* GET with an encoded query. */
    mlo_buf q;
    mlo__buf_init(&q);
    assert_int_equal(mlo__buf_appends(&q, "experiment_name="), 0);
    assert_int_equal(mlo__http_urlencode(h, "http-test-exp", &q), 0);
    assert_int_equal(
        mlo__http_call(h, "GET", "/api/2.0/mlflow/experiments/get-by-name", q.data, NULL, 0, 0, &r),
        0);
    assert_int_equal(r.http_code, 200);
    assert_non_null(strstr(r.body.data, "http-test-exp"));
    mlo__http_result_free(&r);

    /* A 404 (no such experiment) is an answer, not a failure: no retry. */
    mlo__buf_reset(&q);
    assert_int_equal(mlo__buf_appends(&q, "experiment_name="), 0);
    assert_int_equal(mlo__http_urlencode(h, "no such / experiment", &q), 0);
    assert_int_equal(
        mlo__http_call(h, "GET", "/api/2.0/mlflow/experiments/get-by-name", q.data, NULL, 0, 0, &r),
        0);
    assert_int_equal(r.http_code, 404);
    assert_int_equal(r.retries, 0);
    assert_int_equal(st.retries_seen, 0);
    mlo__http_result_free(&r);
    mlo__buf_free(&q);
    mlo__http_free(h);
}

static void test_503_twice_then_ok(void **state) {
    (void)state;
    cb_state st = {0};
    mlo_http *h = new_http(srv_uri(), &st);
    mlo_http_result r;
    assert_int_equal(srv_fault("{\"status\":503,\"count\":2}"), 0);
    const char *body = "{\"name\":\"http-test-503\"}";
    mlo__http_call(h, "POST", "/api/2.0/mlflow/experiments/create", NULL, body, strlen(body), 0,
                   &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.http_code, 200);
    assert_int_equal(r.retries, 2);
    assert_int_equal(st.retries_seen, 2);
    assert_int_equal(st.last_code, 503);
    assert_non_null(strstr(st.last_msg, "503"));
    assert_non_null(strstr(st.last_msg, "retry 2 of 3"));
    mlo__http_result_free(&r);
    mlo__http_free(h);
}

static void test_429_retry_after(void **state) {
    (void)state;
    cb_state st = {0};
    mlo_http *h = new_http(srv_uri(), &st);
    mlo_http_result r;
    assert_int_equal(srv_fault("{\"status\":429,\"count\":1,\"retry_after\":1}"), 0);
    int64_t t0 = now_ns();
    mlo__http_call(h, "GET", "/api/2.0/mlflow/experiments/get-by-name", "experiment_name=Default",
                   NULL, 0, 0, &r);
    int64_t el = now_ns() - t0;
    assert_int_equal(r.status, 0);
    assert_int_equal(r.http_code, 200);
    assert_int_equal(r.retries, 1);
    assert_int_equal(st.last_code, 429);
    assert_true(el >= 1000 * MS);
    assert_true(el < 3000 * MS);
    mlo__http_result_free(&r);
    mlo__http_free(h);
}

static void test_400_not_retried(void **state) {
    (void)state;
    cb_state st = {0};
    mlo_http *h = new_http(srv_uri(), &st);
    mlo_http_result r;
    assert_int_equal(srv_fault("{\"status\":400,\"count\":1}"), 0);
    mlo__http_call(h, "POST", "/api/2.0/mlflow/runs/log-batch", NULL, "{}", 2, 0, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.http_code, 400);
    assert_int_equal(r.retries, 0);
    assert_int_equal(st.retries_seen, 0);
    mlo__http_result_free(&r);
    /* the fault is used up: the same handle goes on working */
    mlo__http_call(h, "GET", "/api/2.0/mlflow/experiments/get-by-name", "experiment_name=Default",
                   NULL, 0, 0, &r);
    assert_int_equal(r.http_code, 200);
    mlo__http_result_free(&r);
    mlo__http_free(h);
}

static void test_drop_retried(void **state) {
    (void)state;
    cb_state st = {0};
    mlo_http *h = new_http(srv_uri(), &st); /* fresh: the first connection is new */
    mlo_http_result r;
    assert_int_equal(srv_fault("{\"drop\":true,\"count\":1}"), 0);
    mlo__http_call(h, "GET", "/api/2.0/mlflow/experiments/get-by-name", "experiment_name=Default",
                   NULL, 0, 0, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.http_code, 200);
    assert_int_equal(r.retries, 1);
    assert_int_equal(st.retries_seen, 1);
    assert_int_equal(st.last_code, 0);
    mlo__http_result_free(&r);
    mlo__http_free(h);
}

static void test_reset_mid_response_retried(void **state) {
    (void)state;
    cb_state st = {0};
    mlo_http *h = new_http(srv_uri(), &st);
    mlo_http_result r;
    assert_int_equal(srv_fault("{\"reset_mid_response\":true,\"count\":1}"), 0);
    mlo__http_call(h, "GET", "/api/2.0/mlflow/experiments/get-by-name", "experiment_name=Default",
                   NULL, 0, 0, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.http_code, 200);
    assert_int_equal(r.retries, 1);
    assert_non_null(strstr(r.body.data, "Default")); /* the whole second answer, not the cut one */
    mlo__http_result_free(&r);
    mlo__http_free(h);
}

static void test_retries_exhausted(void **state) {
    (void)state;
    cb_state st = {0};
    mlo_http_config c = base_cfg(srv_uri(), &st);
    c.max_retries = 2;
    mlo_http *h = mlo__http_new(&c);
    assert_non_null(h);
    mlo_http_result r;

    /* three 503s for 1 + 2 attempts: the last 503 is the answer */
    assert_int_equal(srv_fault("{\"status\":503,\"count\":3}"), 0);
    mlo__http_call(h, "POST", "/api/2.0/mlflow/runs/log-batch", NULL, "{}", 2, 0, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.http_code, 503);
    assert_int_equal(r.retries, 2);
    assert_int_equal(st.retries_seen, 2);
    mlo__http_result_free(&r);
    mlo__http_free(h);

    /* three dropped connections: a network failure */
    st = (cb_state){0};
    h = mlo__http_new(&c);
    assert_non_null(h);
    assert_int_equal(srv_fault("{\"drop\":true,\"count\":3}"), 0);
    mlo__http_call(h, "POST", "/api/2.0/mlflow/runs/log-batch", NULL, "{}", 2, 0, &r);
    assert_int_equal(r.status, 9);
    assert_int_equal(r.http_code, 0);
    assert_int_equal(r.retries, 2);
    assert_int_equal(st.retries_seen, 2);
    assert_true(strlen(r.message) > 0);
    assert_non_null(strstr(r.message, "log-batch"));
    mlo__http_result_free(&r);
    mlo__http_free(h);
}

static void test_deadline_cuts_slow_answer(void **state) {
    (void)state;
    cb_state st = {0};
    mlo_http *h = new_http(srv_uri(), &st);
    mlo_http_result r;
    assert_int_equal(srv_fault("{\"delay_ms\":3000,\"count\":1}"), 0);
    int64_t t0 = now_ns();
    mlo__http_call(h, "GET", "/api/2.0/mlflow/experiments/get-by-name", "experiment_name=Default",
                   NULL, 0, t0 + 500 * MS, &r);
    int64_t el = now_ns() - t0;
    assert_int_equal(r.status, 8);
    assert_true(el >= 450 * MS);
    assert_true(el < 800 * MS);
    assert_non_null(strstr(r.message, "deadline"));
    mlo__http_result_free(&r);
    mlo__http_free(h);
}

/* The per-attempt timeout is a retryable failure; when it outlives the
 * retries the call fails as a network failure (9), not as a deadline (8). */
static void test_attempt_timeout_retried(void **state) {
    (void)state;
    cb_state st = {0};
    mlo_http_config c = base_cfg(srv_uri(), &st);
    c.timeout_s = 0.3;
    c.max_retries = 1;
    mlo_http *h = mlo__http_new(&c);
    assert_non_null(h);
    mlo_http_result r;
    assert_int_equal(srv_fault("{\"delay_ms\":1500,\"count\":2}"), 0);
    int64_t t0 = now_ns();
    mlo__http_call(h, "GET", "/api/2.0/mlflow/experiments/get-by-name", "experiment_name=Default",
                   NULL, 0, 0, &r);
    int64_t el = now_ns() - t0;
    assert_int_equal(r.status, 9);
    assert_int_equal(r.retries, 1);
    assert_int_equal(st.retries_seen, 1);
    assert_true(el >= 550 * MS);
    /* each attempt was cut at 0.3 s: the server would have taken 2 x 1.5 s */
    assert_true(el < 2500 * MS);
    mlo__http_result_free(&r);
    /* a later attempt within the timeout works */
    mlo__http_call(h, "GET", "/api/2.0/mlflow/experiments/get-by-name", "experiment_name=Default",
                   NULL, 0, 0, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.http_code, 200);
    mlo__http_result_free(&r);
    mlo__http_free(h);
}

static void test_deadline_leaves_no_room_for_backoff(void **state) {
    (void)state;
    cb_state st = {0};
    mlo_http_config c = base_cfg(srv_uri(), &st);
    c.backoff_factor_s = 5;
    mlo_http *h = mlo__http_new(&c);
    assert_non_null(h);
    mlo_http_result r;
    assert_int_equal(srv_fault("{\"status\":503,\"count\":1}"), 0);
    int64_t t0 = now_ns();
    mlo__http_call(h, "POST", "/api/2.0/mlflow/runs/log-batch", NULL, "{}", 2, t0 + 1000 * MS, &r);
    int64_t el = now_ns() - t0;
    assert_int_equal(r.status, 8);
    assert_int_equal(r.http_code, 503); /* the last answer is kept */
    assert_int_equal(r.retries, 0);
    assert_int_equal(st.retries_seen, 0);
    assert_true(el < 500 * MS); /* gave up at once, did not sleep into the deadline */
    mlo__http_result_free(&r);
    mlo__http_free(h);
}

static void test_should_abort_interrupts_backoff(void **state) {
    (void)state;
    cb_state st = {0};
    mlo_http_config c = base_cfg(srv_uri(), &st);
    c.backoff_factor_s = 10;
    mlo_http *h = mlo__http_new(&c);
    assert_non_null(h);
    mlo_http_result r;
    assert_int_equal(srv_fault("{\"status\":503,\"count\":1}"), 0);
    int64_t t0 = now_ns();
    st.abort_at_ns = t0 + 300 * MS;
    mlo__http_call(h, "POST", "/api/2.0/mlflow/runs/log-batch", NULL, "{}", 2, 0, &r);
    int64_t el = now_ns() - t0;
    assert_int_equal(r.status, 8);
    assert_int_equal(st.retries_seen, 1); /* announced, then interrupted */
    assert_int_equal(r.retries, 0);
    assert_true(el >= 300 * MS);
    assert_true(el < 700 * MS);
    assert_non_null(strstr(r.message, "aborted"));
    mlo__http_result_free(&r);
    mlo__http_free(h);
}

static void test_should_abort_interrupts_transfer(void **state) {
    (void)state;
    cb_state st = {0};
    mlo_http *h = new_http(srv_uri(), &st);
    mlo_http_result r;
    assert_int_equal(srv_fault("{\"delay_ms\":2500,\"count\":1}"), 0);
    int64_t t0 = now_ns();
    st.abort_at_ns = t0 + 200 * MS;
    mlo__http_call(h, "GET", "/api/2.0/mlflow/experiments/get-by-name", "experiment_name=Default",
                   NULL, 0, 0, &r);
    int64_t el = now_ns() - t0;
    assert_int_equal(r.status, 8);
    /* curl polls its progress callback about once a second while idle */
    assert_true(el < 1600 * MS);
    mlo__http_result_free(&r);
    mlo__http_free(h);
}

static void check_auth_seen(const mlo_http_config *c, const char *marker, const char *want_auth) {
    mlo_http *h = mlo__http_new(c);
    assert_non_null(h);
    mlo_http_result r;
    char q[128];
    snprintf(q, sizeof q, "experiment_name=%s", marker);
    mlo__http_call(h, "GET", "/api/2.0/mlflow/experiments/get-by-name", q, NULL, 0, 0, &r);
    assert_int_equal(r.status, 0);
    mlo__http_result_free(&r);
    mlo__http_free(h);
    char *ua = last_request_field(marker, "user_agent");
    assert_non_null(ua);
    assert_string_equal(ua, "mlo-test/0.0");
    free(ua);
    char *auth = last_request_field(marker, "authorization");
    assert_non_null(auth);
    assert_string_equal(auth, want_auth);
    free(auth);
}

static void test_user_agent_and_auth(void **state) {
    (void)state;
    cb_state st = {0};
    mlo_http_config c = base_cfg(srv_uri(), &st);

    check_auth_seen(&c, "auth-none", "");

    c.token = "tok-123456";
    check_auth_seen(&c, "auth-bearer", "Bearer tok-123456");

    /* Basic wins over the token; base64("alice:s3cr3t:x") */
    c.user = "alice";
    c.password = "s3cr3t:x";
    check_auth_seen(&c, "auth-basic", "Basic YWxpY2U6czNjcjN0Ong=");
}

static void test_keepalive_reuse(void **state) {
    (void)state;
    cb_state st = {0};
    mlo_http *h = new_http(srv_uri(), &st);

    for (int i = 0; i < 30; i++) {
        char q[64];
        snprintf(q, sizeof q, "experiment_name=keepalive-%d", i);
        mlo_http_result r;
        mlo__http_call(h, "GET", "/api/2.0/mlflow/experiments/get-by-name", q, NULL, 0, 0, &r);
        assert_int_equal(r.status, 0);
        assert_int_equal(r.http_code, 404);
        mlo__http_result_free(&r);
    }
    size_t conns = 0;
    assert_int_equal(count_requests("keepalive-", &conns), 30);
    assert_int_equal(conns, 1);                 /* the server saw one connection, */
    assert_int_equal(mlo__http_connects(h), 1); /* and so did the client */
    mlo__http_free(h);
}

static void test_put_body(void **state) {
    (void)state;
    cb_state st = {0};
    mlo_http *h = new_http(srv_uri(), &st);
    mlo_http_result r;
    static const char bytes[] = "raw\0bytes\xff";
    mlo__http_call(h, "PUT", "/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/put-test.bin", NULL,
                   bytes, sizeof bytes - 1, 0, &r);
    assert_int_equal(r.status, 0);
    assert_true(r.http_code > 0); /* 200 with --serve-artifacts, else whatever the route says */
    mlo__http_result_free(&r);
    char *m = last_request_field("put-test.bin", "method");
    if (m && *m)
        assert_string_equal(m, "PUT");
    free(m);
    mlo__http_free(h);
}

static void test_close_mode(void **state) {
    (void)state;
    cb_state st = {0};
    mlo_http *h = new_http(srv_uri(), &st);
    for (int i = 0; i < 10; i++) {
        mlo_http_result r;
        char body[64];
        snprintf(body, sizeof body, "{\"name\":\"close-mode-%d\"}", i);
        mlo__http_call(h, "POST", "/api/2.0/mlflow/experiments/create", NULL, body, strlen(body), 0,
                       &r);
        assert_int_equal(r.status, 0);
        assert_int_equal(r.http_code, 200);
        assert_int_equal(r.retries, 0);
        assert_int_equal(r.reconnects, 0);
        mlo__http_result_free(&r);
    }
    assert_int_equal(mlo__http_connects(h), 10); /* Connection: close: one each */
    assert_int_equal(st.retries_seen, 0);
    size_t conns = 0;
    assert_int_equal(count_requests("experiments/create", &conns), 10);
    assert_int_equal(conns, 10);
    mlo__http_free(h);
}

/* ---- tests without the test server -------------------------------------- */

static void test_connection_refused(void **state) {
    (void)state;
    cb_state st = {0};
    char uri[128];
    snprintf(uri, sizeof uri, "http://bob:hunter2pw@127.0.0.1:%d/", closed_port());
    mlo_http_config c = base_cfg(uri, &st);
    c.max_retries = 2;
    c.token = "secret-token-xyz";
    mlo_http *h = mlo__http_new(&c);
    assert_non_null(h);
    mlo_http_result r;
    int64_t t0 = now_ns();
    mlo__http_call(h, "POST", "/api/2.0/mlflow/runs/log-batch", NULL, "{}", 2, 0, &r);
    assert_true(now_ns() - t0 < 2000 * MS);
    assert_int_equal(r.status, 9);
    assert_int_equal(r.http_code, 0);
    assert_int_equal(r.retries, 2);
    assert_int_equal(st.retries_seen, 2);
    assert_non_null(strstr(r.message, "log-batch"));
    assert_null(strstr(r.message, "hunter2pw"));
    assert_null(strstr(r.message, "secret-token-xyz"));
    assert_null(strstr(st.last_msg, "hunter2pw"));
    assert_null(strstr(st.last_msg, "secret-token-xyz"));
    mlo__http_result_free(&r);
    mlo__http_free(h);
}

static void test_bad_scheme_and_args(void **state) {
    (void)state;
    cb_state st = {0};
    mlo_http *h = new_http("ftp://127.0.0.1:1", &st);
    mlo_http_result r;
    mlo__http_call(h, "GET", "/x", NULL, NULL, 0, 0, &r);
    assert_int_equal(r.status, 18);
    assert_int_equal(r.retries, 0);
    mlo__http_result_free(&r);
    assert_int_equal(mlo__http_call(h, "get me", "/x", NULL, NULL, 0, 0, &r), 1);
    mlo__http_result_free(&r);
    assert_int_equal(mlo__http_call(h, "POST", "/x", NULL, NULL, 5, 0, &r), 1);
    mlo__http_result_free(&r);
    assert_int_equal(mlo__http_call(NULL, "GET", "/x", NULL, NULL, 0, 0, &r), 1);
    mlo__http_result_free(&r);
    mlo__http_free(h);
    mlo__http_free(NULL);
}

static void test_deadline_already_passed(void **state) {
    (void)state;
    cb_state st = {0};
    char uri[64];
    snprintf(uri, sizeof uri, "http://127.0.0.1:%d", closed_port());
    mlo_http *h = new_http(uri, &st);
    mlo_http_result r;
    mlo__http_call(h, "GET", "/x", NULL, NULL, 0, now_ns() - 1, &r);
    assert_int_equal(r.status, 8);
    mlo__http_result_free(&r);
    mlo__http_free(h);
}

static void test_urlencode(void **state) {
    (void)state;
    mlo_buf b;
    mlo__buf_init(&b);
    assert_int_equal(mlo__buf_appends(&b, "k="), 0);
    assert_int_equal(mlo__http_urlencode(NULL, "a b/c?d=e&f+g~h.i_j-k\xc3\xa9", &b), 0);
    assert_string_equal(b.data, "k=a%20b%2Fc%3Fd%3De%26f%2Bg~h.i_j-k%C3%A9");
    mlo__buf_reset(&b);
    assert_int_equal(mlo__http_urlencode(NULL, "", &b), 0);
    assert_int_equal(b.len, 0);
    mlo__buf_free(&b);
}

static void test_request_headers_exact(void **state) {
    (void)state;
    rawsrv s;
    raw_start(&s, 0, 0);
    char uri[64];
    snprintf(uri, sizeof uri, "http://127.0.0.1:%d/prefix/", s.port);
    cb_state st = {0};
    mlo_http_config c = base_cfg(uri, &st);
    c.token = "tok-abcdef";
    mlo_http *h = mlo__http_new(&c);
    assert_non_null(h);

    /* a 2 MB POST goes out without "Expect: 100-continue" (checked on the header
     * block below; the time limit is only a sanity bound) */
    size_t n = 2u << 20;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'x', n);
    mlo_http_result r;
    int64_t t0 = now_ns();
    mlo__http_call(h, "POST", "/api/2.0/mlflow/runs/log-batch", NULL, big, n, 0, &r);
    assert_true(now_ns() - t0 < 5000 * MS);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.http_code, 200);
    mlo__http_result_free(&r);
    pthread_mutex_lock(&s.mu);
    assert_int_equal(s.last_body_len, n);
    assert_non_null(strstr(s.last_head, "POST /prefix/api/2.0/mlflow/runs/log-batch HTTP/1.1\r\n"));
    assert_non_null(strstr(s.last_head, "\r\nUser-Agent: mlo-test/0.0\r\n"));
    assert_non_null(strstr(s.last_head, "\r\nAccept: application/json\r\n"));
    assert_non_null(strstr(s.last_head, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(s.last_head, "\r\nAuthorization: Bearer tok-abcdef\r\n"));
    assert_null(strcasestr(s.last_head, "Expect:"));
    assert_null(strcasestr(s.last_head, "Content-Encoding"));
    pthread_mutex_unlock(&s.mu);
    free(big);

    /* PUT: octet-stream with a Content-Length; then GET carries no body
     * headers left over from the PUT */
    mlo__http_call(h, "PUT", "/api/2.0/mlflow-artifacts/artifacts/a.bin", NULL, "abc", 3, 0, &r);
    assert_int_equal(r.http_code, 200);
    mlo__http_result_free(&r);
    pthread_mutex_lock(&s.mu);
    assert_non_null(strstr(s.last_head, "PUT /prefix/api/2.0/mlflow-artifacts/artifacts/a.bin "));
    assert_non_null(strstr(s.last_head, "\r\nContent-Type: application/octet-stream\r\n"));
    assert_non_null(strstr(s.last_head, "\r\nContent-Length: 3\r\n"));
    assert_null(strcasestr(s.last_head, "Expect:"));
    pthread_mutex_unlock(&s.mu);

    mlo__http_call(h, "GET", "/api/2.0/mlflow/runs/get", "run_id=abc", NULL, 0, 0, &r);
    assert_int_equal(r.http_code, 200);
    mlo__http_result_free(&r);
    pthread_mutex_lock(&s.mu);
    assert_non_null(strstr(s.last_head, "GET /prefix/api/2.0/mlflow/runs/get?run_id=abc HTTP/1.1"));
    assert_null(strcasestr(s.last_head, "Content-Type"));
    assert_null(strcasestr(s.last_head, "Content-Length"));
    pthread_mutex_unlock(&s.mu);

    assert_int_equal(mlo__http_connects(h), 1);
    mlo__http_free(h);
    raw_stop(&s);
}

/* The server closes an idle keep-alive connection just as the next request
 * arrives on it: the call must still succeed, without a counted retry. */
static void test_reused_connection_closed(void **state) {
    (void)state;
    rawsrv s;
    raw_start(&s, 1, 0);
    char uri[64];
    snprintf(uri, sizeof uri, "http://127.0.0.1:%d", s.port);
    cb_state st = {0};
    mlo_http *h = new_http(uri, &st);
    mlo_http_result r;
    for (int i = 0; i < 3; i++) {
        const char *b = "{\"run_id\":\"r\"}";
        mlo__http_call(h, "POST", "/api/2.0/mlflow/runs/log-batch", NULL, b, strlen(b), 0, &r);
        assert_int_equal(r.status, 0);
        assert_int_equal(r.http_code, 200);
        assert_int_equal(r.retries, 0);
        mlo__http_result_free(&r);
    }
    assert_int_equal(st.retries_seen, 0);
    /* conn 1: req 1 answered, req 2 dropped; conn 2: req 2 again, req 3 dropped;
     * conn 3: req 3 again */
    assert_int_equal(atomic_load(&s.requests), 5);
    assert_int_equal(atomic_load(&s.connections), 3);
    mlo__http_free(h);
    raw_stop(&s);
}

/* Retry-After as an HTTP date (RFC 9110 IMF-fixdate) is honoured too. */
static void test_retry_after_http_date(void **state) {
    (void)state;
    rawsrv s;
    raw_start(&s, 0, 1);
    char uri[64];
    snprintf(uri, sizeof uri, "http://127.0.0.1:%d", s.port);
    cb_state st = {0};
    mlo_http *h = new_http(uri, &st);
    mlo_http_result r;
    int64_t t0 = now_ns();
    mlo__http_call(h, "GET", "/api/2.0/mlflow/runs/get", "run_id=x", NULL, 0, 0, &r);
    int64_t el = now_ns() - t0;
    assert_int_equal(r.status, 0);
    assert_int_equal(r.http_code, 200);
    assert_int_equal(r.retries, 1);
    assert_int_equal(st.last_code, 503);
    /* date + 2 s at one-second resolution: at least ~1 s, at most ~2 s */
    assert_true(el >= 900 * MS);
    assert_true(el < 2600 * MS);
    mlo__http_result_free(&r);
    mlo__http_free(h);
    raw_stop(&s);
}

/* ---- TLS ---------------------------------------------------------------- */

typedef struct tls_srv {
    pid_t pid;
    int port;
    char dir[64];
    char cert[128];
    char client_pem[128]; /* client certificate + key in one PEM file */
} tls_srv;

/* Makes a self-signed certificate + key for 127.0.0.1 in dir/<name>.crt and
 * dir/<name>.key. */
static int make_cert(const char *dir, const char *name) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1 -keyout %s/%s.key -out %s/%s.crt "
             ">/dev/null 2>&1",
             dir, name, dir, name);
    return system(cmd) == 0 ? 0 : -1;
}

static const char tls_py[] = "import http.server, ssl, sys\n"
                             "class H(http.server.BaseHTTPRequestHandler):\n"
                             "    protocol_version = 'HTTP/1.1'\n"
                             "    def log_message(self, *a): pass\n"
                             "    def do_GET(self):\n"
                             "        self.send_response(200)\n"
                             "        self.send_header('Content-Type', 'application/json')\n"
                             "        self.send_header('Content-Length', '2')\n"
                             "        self.end_headers()\n"
                             "        self.wfile.write(b'{}')\n"
                             "s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)\n"
                             "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
                             "ctx.load_cert_chain(sys.argv[1], sys.argv[2])\n"
                             "if len(sys.argv) > 3:\n"
                             "    ctx.verify_mode = ssl.CERT_REQUIRED\n"
                             "    ctx.load_verify_locations(sys.argv[3])\n"
                             "s.socket = ctx.wrap_socket(s.socket, server_side=True)\n"
                             "print(s.server_address[1], flush=True)\n"
                             "s.serve_forever()\n";

/* Starts an HTTPS server with a self-signed certificate; with
 * require_client_cert it also demands a client certificate (t->client_pem). */
static int tls_start(tls_srv *t, int require_client_cert) {
    memset(t, 0, sizeof *t);
    if (system("command -v openssl >/dev/null 2>&1") != 0)
        return -1;
    snprintf(t->dir, sizeof t->dir, "/tmp/mlo_tls_XXXXXX");
    if (!mkdtemp(t->dir))
        return -1;
    char cmd[1024], key[128], py[128], client_crt[128];
    snprintf(t->cert, sizeof t->cert, "%s/server.crt", t->dir);
    snprintf(key, sizeof key, "%s/server.key", t->dir);
    snprintf(client_crt, sizeof client_crt, "%s/client.crt", t->dir);
    snprintf(t->client_pem, sizeof t->client_pem, "%s/client.pem", t->dir);
    snprintf(py, sizeof py, "%s/srv.py", t->dir);
    if (make_cert(t->dir, "server") != 0)
        return -1;
    if (require_client_cert) {
        snprintf(cmd, sizeof cmd, "cat %s/client.crt %s/client.key > %s", t->dir, t->dir,
                 t->client_pem);
        if (make_cert(t->dir, "client") != 0 || system(cmd) != 0)
            return -1;
    }
    FILE *f = fopen(py, "w");
    if (!f)
        return -1;
    fputs(tls_py, f);
    fclose(f);
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execlp("python3", "python3", py, t->cert, key,
               require_client_cert ? client_crt : (char *)NULL, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    FILE *in = fdopen(p[0], "r");
    int port = 0;
    int ok = in && fscanf(in, "%d", &port) == 1;
    if (in)
        fclose(in);
    t->pid = pid;
    t->port = port;
    return ok ? 0 : -1;
}

static void tls_stop(tls_srv *t) {
    if (t->pid > 0) {
        kill(t->pid, SIGTERM);
        waitpid(t->pid, NULL, 0);
    }
    if (t->dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", t->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", t->dir);
    }
}

static void test_tls_verification(void **state) {
    (void)state;
    tls_srv t;
    if (tls_start(&t, 0) != 0) {
        tls_stop(&t);
        skip();
    }
    char uri[64];
    snprintf(uri, sizeof uri, "https://127.0.0.1:%d", t.port);
    cb_state st = {0};
    mlo_http_config c = base_cfg(uri, &st);
    mlo_http_result r;

    /* default: verification on, the self-signed certificate is refused at once */
    mlo_http *h = mlo__http_new(&c);
    assert_non_null(h);
    mlo__http_call(h, "GET", "/api/2.0/mlflow/experiments/get-by-name", "experiment_name=x", NULL,
                   0, 0, &r);
    assert_int_equal(r.status, 10);
    assert_int_equal(r.retries, 0);
    assert_non_null(strstr(r.message, "MLFLOW_TRACKING_SERVER_CERT_PATH"));
    assert_non_null(strstr(r.message, "MLFLOW_TRACKING_INSECURE_TLS"));
    mlo__http_result_free(&r);
    mlo__http_free(h);

    /* the CA bundle given: verified */
    c.ca_path = t.cert;
    h = mlo__http_new(&c);
    assert_non_null(h);
    mlo__http_call(h, "GET", "/api/2.0/mlflow/experiments/get-by-name", "experiment_name=x", NULL,
                   0, 0, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.http_code, 200);
    mlo__http_result_free(&r);
    mlo__http_free(h);

    /* insecure: no verification */
    c.ca_path = NULL;
    c.insecure_tls = 1;
    h = mlo__http_new(&c);
    assert_non_null(h);
    mlo__http_call(h, "GET", "/api/2.0/mlflow/experiments/get-by-name", "experiment_name=x", NULL,
                   0, 0, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.http_code, 200);
    mlo__http_result_free(&r);
    mlo__http_free(h);
    tls_stop(&t);
}

static void test_tls_client_certificate(void **state) {
    (void)state;
    tls_srv t;
    if (tls_start(&t, 1) != 0) {
        tls_stop(&t);
        skip();
    }
    char uri[64];
    snprintf(uri, sizeof uri, "https://127.0.0.1:%d", t.port);
    cb_state st = {0};
    mlo_http_config c = base_cfg(uri, &st);
    c.ca_path = t.cert;
    c.max_retries = 1;
    mlo_http_result r;

    /* without a client certificate the server refuses the connection */
    mlo_http *h = mlo__http_new(&c);
    assert_non_null(h);
    mlo__http_call(h, "GET", "/api/2.0/mlflow/runs/get", "run_id=x", NULL, 0, 0, &r);
    assert_int_not_equal(r.status, 0);
    mlo__http_result_free(&r);
    mlo__http_free(h);

    /* with it (certificate and key in one PEM file) it is let in */
    c.client_cert_path = t.client_pem;
    h = mlo__http_new(&c);
    assert_non_null(h);
    mlo__http_call(h, "GET", "/api/2.0/mlflow/runs/get", "run_id=x", NULL, 0, 0, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.http_code, 200);
    mlo__http_result_free(&r);
    mlo__http_free(h);

    /* a client certificate file that does not exist: status 10 and a hint */
    c.client_cert_path = "/nonexistent/client.pem";
    h = mlo__http_new(&c);
    assert_non_null(h);
    mlo__http_call(h, "GET", "/api/2.0/mlflow/runs/get", "run_id=x", NULL, 0, 0, &r);
    assert_int_equal(r.status, 10);
    assert_non_null(strstr(r.message, "MLFLOW_TRACKING_CLIENT_CERT_PATH"));
    mlo__http_result_free(&r);
    mlo__http_free(h);
    tls_stop(&t);
}

/* ---- blobsrv: streamed bodies (mlo__http_request) ------------------------ */

/* Byte i of the pattern `seed`: pseudo-random, so that a body shifted,
 * repeated or cut anywhere does not match. */
static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void pat_fill(uint64_t seed, uint64_t off, unsigned char *buf, size_t n) {
    size_t k = 0;
    while (k < n) {
        uint64_t i = off + k;
        uint64_t w = mix64(seed * 0x100000001b3ULL + (i >> 3));
        for (unsigned b = (unsigned)(i & 7); b < 8 && k < n; b++)
            buf[k++] = (unsigned char)(w >> (b * 8));
    }
}

/* What blobsrv answers to one request. */
typedef struct bs_resp {
    int status;       /* 0: 200 */
    const char *etag; /* ETag header value, NULL: none */
    const char *body; /* literal body; NULL: pat_len bytes of pattern pat_seed */
    uint64_t pat_len, pat_seed;
    uint64_t cut_after;   /* > 0: close after this many body bytes (of a longer body) */
    uint64_t stall_after; /* > 0: after this many body bytes send nothing for stall_ms, close */
    int stall_ms;
    int chunk_delay_ms;   /* > 0: 16 KiB chunks with this pause between them */
    int drop_mid_body;    /* read half the request body, then close */
    int close_after;      /* Connection: close after the response */
    uint64_t expect_seed; /* the request body must be pattern expect_seed ... */
    uint64_t expect_off;  /* ... from this offset on */
} bs_resp;

/* What blobsrv saw of one request. */
typedef struct bs_seen {
    char method[16];
    char target[512];
    char head[4096];   /* header block */
    long long clen;    /* Content-Length, -1 if none */
    uint64_t body_len; /* body bytes read */
    int match;         /* every byte read equals the expected pattern */
    char small[256];   /* the first bytes of the body, NUL-terminated */
} bs_seen;

#define BS_MAX 8

typedef struct blobsrv {
    int lfd, port;
    pthread_t th;
    atomic_int stop;
    pthread_mutex_t mu;
    bs_resp script[BS_MAX]; /* request n gets script[min(n, nscript - 1)] */
    int nscript;
    bs_seen seen[BS_MAX]; /* under mu */
    int nseen;            /* under mu */
    int nreq;             /* server thread only */
} blobsrv;

static int bs_send_all(blobsrv *s, int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        if (atomic_load(&s->stop))
            return -1;
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Sleeps ms, in slices, unless the server stops.  -1 if it stopped. */
static int bs_pause(blobsrv *s, int ms) {
    for (int t = 0; t < ms; t += 20) {
        if (atomic_load(&s->stop))
            return -1;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* Reads at most n bytes, waiting in slices of 100 ms for the stop flag. */
static ssize_t bs_read(blobsrv *s, int fd, void *buf, size_t n) {
    for (;;) {
        if (atomic_load(&s->stop))
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = poll(&p, 1, 100);
        if (pr < 0 && errno != EINTR)
            return -1;
        if (pr <= 0)
            continue;
        ssize_t r = read(fd, buf, n);
        if (r < 0 && errno == EINTR)
            continue;
        return r;
    }
}

/* Sends the body of r; -1: the connection is to be closed. */
static int bs_send_body(blobsrv *s, int fd, const bs_resp *r) {
    if (r->body)
        return bs_send_all(s, fd, r->body, strlen(r->body));
    unsigned char *buf = malloc(65536);
    assert_non_null(buf);
    uint64_t off = 0;
    int rc = 0;
    size_t step = r->chunk_delay_ms > 0 ? 16384 : 65536;
    while (off < r->pat_len) {
        uint64_t end = r->pat_len;
        if (r->cut_after && end > r->cut_after)
            end = r->cut_after;
        if (r->stall_after && end > r->stall_after)
            end = r->stall_after;
        if (off >= end) {
            if (r->stall_after && off == r->stall_after)
                bs_pause(s, r->stall_ms);
            rc = -1; /* cut or stalled: close with the body unfinished */
            break;
        }
        size_t n = end - off < step ? (size_t)(end - off) : step;
        pat_fill(r->pat_seed, off, buf, n);
        if (bs_send_all(s, fd, buf, n) != 0) {
            rc = -1;
            break;
        }
        off += n;
        if (r->chunk_delay_ms > 0 && off < r->pat_len && bs_pause(s, r->chunk_delay_ms) != 0) {
            rc = -1;
            break;
        }
    }
    free(buf);
    return rc;
}

/* Serves the requests of one connection; returns when it is to be closed. */
static void bs_conn(blobsrv *s, int fd) {
    char head[8192];
    unsigned char *body = malloc(65536);
    unsigned char *want = malloc(65536);
    assert_non_null(body);
    assert_non_null(want);
    size_t have = 0;
    for (;;) {
        /* the header block (curl sends nothing after it but the body) */
        char *eoh = NULL;
        while (!eoh) {
            head[have] = '\0';
            eoh = strstr(head, "\r\n\r\n");
            if (eoh)
                break;
            if (have + 1 >= sizeof head)
                goto out;
            ssize_t r = bs_read(s, fd, head + have, sizeof head - 1 - have);
            if (r <= 0)
                goto out;
            have += (size_t)r;
        }
        size_t hl = (size_t)(eoh - head) + 4;
        const bs_resp *rs = &s->script[s->nreq < s->nscript ? s->nreq : s->nscript - 1];
        s->nreq++;
        bs_seen sn;
        memset(&sn, 0, sizeof sn);
        sn.clen = -1;
        sscanf(head, "%15s %511s", sn.method, sn.target);
        memcpy(sn.head, head, hl < sizeof sn.head ? hl : sizeof sn.head - 1);
        for (char *p = head; p < head + hl; p++)
            if (strncasecmp(p, "\r\nContent-Length:", 17) == 0)
                sn.clen = strtoll(p + 17, NULL, 10);
        sn.match = 1;
        /* the body: checked against the pattern as it arrives, never kept */
        uint64_t need = sn.clen > 0 ? (uint64_t)sn.clen : 0;
        uint64_t stop_at = rs->drop_mid_body ? need / 2 : need;
        size_t inbuf = have - hl;
        int closed = 0;
        while (sn.body_len < stop_at) {
            size_t n;
            if (inbuf > 0) {
                n = inbuf < 65536 ? inbuf : 65536;
                memcpy(body, head + hl, n);
                memmove(head + hl, head + hl + n, inbuf - n);
                inbuf -= n;
            } else {
                uint64_t left = stop_at - sn.body_len;
                ssize_t r = bs_read(s, fd, body, left < 65536 ? (size_t)left : 65536);
                if (r <= 0) {
                    closed = 1;
                    break;
                }
                n = (size_t)r;
            }
            if (sn.body_len + n > stop_at)
                n = (size_t)(stop_at - sn.body_len); /* only from the buffered rest */
            pat_fill(rs->expect_seed, rs->expect_off + sn.body_len, want, n);
            if (memcmp(body, want, n) != 0)
                sn.match = 0;
            if (sn.body_len < sizeof sn.small - 1) {
                size_t k = sizeof sn.small - 1 - sn.body_len;
                memcpy(sn.small + sn.body_len, body, n < k ? n : k);
            }
            sn.body_len += n;
        }
        memmove(head, head + hl, inbuf);
        have = inbuf;
        pthread_mutex_lock(&s->mu);
        if (s->nseen < BS_MAX)
            s->seen[s->nseen++] = sn;
        pthread_mutex_unlock(&s->mu);
        if (closed || rs->drop_mid_body)
            goto out;

        int status = rs->status ? rs->status : 200;
        uint64_t blen = rs->body ? strlen(rs->body) : rs->pat_len;
        char resp[512];
        int n =
            snprintf(resp, sizeof resp,
                     "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %llu\r\n%s%s%s%s\r\n",
                     status, rs->body ? "application/json" : "application/octet-stream",
                     (unsigned long long)blen, rs->etag ? "ETag: " : "", rs->etag ? rs->etag : "",
                     rs->etag ? "\r\n" : "", rs->close_after ? "Connection: close\r\n" : "");
        if (bs_send_all(s, fd, resp, (size_t)n) != 0 || bs_send_body(s, fd, rs) != 0 ||
            rs->close_after)
            goto out;
    }
out:
    free(body);
    free(want);
}

static void *bs_main(void *arg) {
    blobsrv *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {.fd = s->lfd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        struct timeval tv = {10, 0};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        bs_conn(s, fd);
        close(fd);
    }
    return NULL;
}

/* Starts blobsrv with a script of n responses (copied).  On the heap: a
 * failed test leaves it running (cmocka jumps out), not on a dead stack. */
static blobsrv *bs_start(const bs_resp *script, int n) {
    blobsrv *s = calloc(1, sizeof *s);
    assert_non_null(s);
    assert_true(n >= 1 && n <= BS_MAX);
    memcpy(s->script, script, (size_t)n * sizeof *script);
    s->nscript = n;
    pthread_mutex_init(&s->mu, NULL);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->lfd, 16), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->th, NULL, bs_main, s), 0);
    return s;
}

static void bs_stop(blobsrv *s) {
    atomic_store(&s->stop, 1);
    pthread_join(s->th, NULL);
    close(s->lfd);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* A copy of what the server saw of request i (0-based); fails if none. */
static bs_seen bs_get(blobsrv *s, int i) {
    bs_seen out;
    pthread_mutex_lock(&s->mu);
    int n = s->nseen;
    if (i < n)
        out = s->seen[i];
    pthread_mutex_unlock(&s->mu);
    assert_true(i < n);
    return out;
}

static int bs_count(blobsrv *s) {
    pthread_mutex_lock(&s->mu);
    int n = s->nseen;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* The value of header `name` in a header block ("" if absent), in out. */
static const char *head_value(const char *head, const char *name, char *out, size_t cap) {
    size_t nl = strlen(name);
    out[0] = '\0';
    for (const char *p = head; (p = strstr(p, "\r\n")) != NULL; p += 2) {
        if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':') {
            const char *v = p + 3 + nl;
            while (*v == ' ')
                v++;
            size_t vl = strcspn(v, "\r\n");
            snprintf(out, cap, "%.*s", (int)(vl < cap ? vl : cap - 1), v);
            break;
        }
    }
    return out;
}

/* An anonymous temporary file (already unlinked) holding n bytes of pattern seed. */
static int pattern_file(uint64_t seed, uint64_t n) {
    char path[] = "/tmp/mlo_http_stream_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    unsigned char *buf = malloc(1 << 20);
    assert_non_null(buf);
    for (uint64_t off = 0; off < n;) {
        size_t k = n - off < (1u << 20) ? (size_t)(n - off) : (1u << 20);
        pat_fill(seed, off, buf, k);
        assert_int_equal(pwrite(fd, buf, k, (off_t)off), (ssize_t)k);
        off += k;
    }
    free(buf);
    return fd;
}

/* An empty temporary file (unlinked) holding `old` (NULL: nothing). */
static int scratch_file(const char *old) {
    char path[] = "/tmp/mlo_http_stream_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    if (old)
        assert_int_equal(write(fd, old, strlen(old)), (ssize_t)strlen(old));
    return fd;
}

static long long file_size(int fd) {
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    return (long long)st.st_size;
}

/* Is the file exactly n bytes of pattern seed? */
static int file_is_pattern(int fd, uint64_t seed, uint64_t n) {
    if (file_size(fd) != (long long)n)
        return 0;
    unsigned char *got = malloc(1 << 20), *want = malloc(1 << 20);
    assert_non_null(got);
    assert_non_null(want);
    int ok = 1;
    for (uint64_t off = 0; ok && off < n;) {
        size_t k = n - off < (1u << 20) ? (size_t)(n - off) : (1u << 20);
        ok = pread(fd, got, k, (off_t)off) == (ssize_t)k;
        pat_fill(seed, off, want, k);
        ok = ok && memcmp(got, want, k) == 0;
        off += k;
    }
    free(got);
    free(want);
    return ok;
}

static void bs_uri(const blobsrv *s, const char *suffix, char *out, size_t cap) {
    snprintf(out, cap, "http://127.0.0.1:%d%s", s->port, suffix);
}

static void test_request_bad_args(void **state) {
    (void)state;
    cb_state st = {0};
    mlo_http *h = new_http("http://127.0.0.1:1", &st);
    mlo_http_result r;
    int fd = scratch_file("abc");
    mlo_http_req q = MLO_HTTP_REQ_INIT;
    q.method = "PUT";
    q.path = "/x";

    assert_int_equal(mlo__http_request(h, NULL, &r), 1);
    mlo__http_result_free(&r);
    q.in_fd = fd; /* a body from a file and from memory at once */
    q.body = "x";
    q.len = 1;
    assert_int_equal(mlo__http_request(h, &q, &r), 1);
    mlo__http_result_free(&r);
    q.body = NULL;
    q.len = 0;
    q.in_off = -1;
    assert_int_equal(mlo__http_request(h, &q, &r), 1);
    mlo__http_result_free(&r);
    q.in_off = 1;
    q.in_len = INT64_MAX;
    assert_int_equal(mlo__http_request(h, &q, &r), 1);
    mlo__http_result_free(&r);
    q.in_len = 1;
    q.method = "GET"; /* a GET has no body */
    assert_int_equal(mlo__http_request(h, &q, &r), 1);
    mlo__http_result_free(&r);
    q.method = "PUT";
    q.content_type = "text/plain\r\nX-Injected: 1";
    assert_int_equal(mlo__http_request(h, &q, &r), 1);
    assert_string_equal(r.message, "invalid arguments to the HTTP call");
    mlo__http_result_free(&r);
    close(fd);
    mlo__http_free(h);
}

/* A region of a file (in_off > 0) arrives byte-exact, with Content-Length and
 * not chunked, and the fd's own offset is left alone; a POST from a file gets
 * the given content type; the ETag and byte counts come back. */
static void test_stream_put_region(void **state) {
    (void)state;
    const uint64_t fsize = (3u << 20) + 77, off = 100003, len = (2u << 20) + 5;
    bs_resp script[] = {
        {.etag = "\"put-etag-1\"", .body = "{}", .expect_seed = 11, .expect_off = off},
        {.body = "{\"ok\":true}", .expect_seed = 11, .expect_off = 7},
        {.body = "{}"},
    };
    blobsrv *s = bs_start(script, 3);
    char uri[64];
    bs_uri(s, "/prefix", uri, sizeof uri);
    cb_state st = {0};
    mlo_http_config c = base_cfg(uri, &st);
    c.token = "tok-stream";
    mlo_http *h = mlo__http_new(&c);
    assert_non_null(h);
    int fd = pattern_file(11, fsize);
    assert_int_equal(lseek(fd, 5, SEEK_SET), 5);

    mlo_http_req q = MLO_HTTP_REQ_INIT;
    q.method = "PUT";
    q.path = "/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/region.bin";
    q.in_fd = fd;
    q.in_off = (int64_t)off;
    q.in_len = (int64_t)len;
    mlo_http_result r;
    assert_int_equal(mlo__http_request(h, &q, &r), 0);
    assert_int_equal(r.http_code, 200);
    assert_int_equal(r.retries, 0);
    assert_string_equal(r.etag, "\"put-etag-1\"");
    assert_true(r.bytes_sent == len);
    assert_true(r.bytes_received == 2);
    assert_string_equal(r.body.data, "{}");
    mlo__http_result_free(&r);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 5);

    bs_seen sn = bs_get(s, 0);
    char v[256];
    assert_string_equal(sn.method, "PUT");
    assert_string_equal(sn.target,
                        "/prefix/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/region.bin");
    assert_true(sn.clen == (long long)len);
    assert_true(sn.body_len == len);
    assert_true(sn.match);
    assert_string_equal(head_value(sn.head, "Transfer-Encoding", v, sizeof v), "");
    assert_string_equal(head_value(sn.head, "Expect", v, sizeof v), "");
    assert_string_equal(head_value(sn.head, "Content-Type", v, sizeof v),
                        "application/octet-stream");
    assert_string_equal(head_value(sn.head, "Authorization", v, sizeof v), "Bearer tok-stream");

    /* POST of a small region with a content type of its own */
    q.method = "POST";
    q.in_off = 7;
    q.in_len = 1000;
    q.content_type = "application/x-ndjson";
    assert_int_equal(mlo__http_request(h, &q, &r), 0);
    assert_int_equal(r.http_code, 200);
    assert_true(r.bytes_sent == 1000);
    assert_string_equal(r.etag, "");
    mlo__http_result_free(&r);
    sn = bs_get(s, 1);
    assert_string_equal(sn.method, "POST");
    assert_true(sn.clen == 1000 && sn.body_len == 1000 && sn.match);
    assert_string_equal(head_value(sn.head, "Content-Type", v, sizeof v), "application/x-ndjson");
    assert_string_equal(head_value(sn.head, "Transfer-Encoding", v, sizeof v), "");

    /* the in-memory path afterwards: no body headers left over, byte counts */
    assert_int_equal(
        mlo__http_call(h, "GET", "/api/2.0/mlflow/runs/get", "run_id=1", NULL, 0, 0, &r), 0);
    assert_true(r.bytes_sent == 0 && r.bytes_received == 2);
    mlo__http_result_free(&r);
    sn = bs_get(s, 2);
    assert_string_equal(sn.method, "GET");
    assert_string_equal(head_value(sn.head, "Content-Type", v, sizeof v), "");
    assert_string_equal(head_value(sn.head, "Content-Length", v, sizeof v), "");
    assert_int_equal(mlo__http_connects(h), 1); /* streamed calls keep the connection too */

    close(fd);
    mlo__http_free(h);
    bs_stop(s);
}

/* A retried upload sends the same bytes again: after a 503 that came once
 * the whole body was read, and after the connection dropped half-way. */
static void test_stream_put_retry_resends(void **state) {
    (void)state;
    const uint64_t off = 4099, len = 3u << 20;
    bs_resp script[] = {
        {.status = 503,
         .body = "{\"error_code\":\"TEMPORARILY_UNAVAILABLE\"}",
         .close_after = 1,
         .expect_seed = 12,
         .expect_off = off},
        {.drop_mid_body = 1, .expect_seed = 12, .expect_off = off},
        {.etag = "\"third\"", .body = "{}", .expect_seed = 12, .expect_off = off},
    };
    blobsrv *s = bs_start(script, 3);
    char uri[64];
    bs_uri(s, "", uri, sizeof uri);
    cb_state st = {0};
    mlo_http *h = new_http(uri, &st);
    int fd = pattern_file(12, off + len + 1000);

    mlo_http_req q = MLO_HTTP_REQ_INIT;
    q.method = "PUT";
    q.path = "/api/2.0/mlflow-artifacts/artifacts/retry.bin";
    q.in_fd = fd;
    q.in_off = (int64_t)off;
    q.in_len = (int64_t)len;
    mlo_http_result r;
    assert_int_equal(mlo__http_request(h, &q, &r), 0);
    assert_int_equal(r.http_code, 200);
    assert_int_equal(r.retries, 2);
    assert_int_equal(st.retries_seen, 2);
    assert_string_equal(r.etag, "\"third\"");
    assert_true(r.bytes_sent == len);
    mlo__http_result_free(&r);

    assert_int_equal(bs_count(s), 3);
    bs_seen a = bs_get(s, 0), b = bs_get(s, 1), c = bs_get(s, 2);
    assert_true(a.body_len == len && a.match);
    assert_true(b.body_len == len / 2 && b.match); /* the dropped one, as far as it went */
    assert_true(c.clen == (long long)len && c.body_len == len && c.match);
    close(fd);
    mlo__http_free(h);
    bs_stop(s);
}

/* A download into a file: byte-exact, and a retry after a body cut short
 * rewrites the file instead of appending to the first attempt's bytes. */
static void test_stream_get_to_file(void **state) {
    (void)state;
    const uint64_t n = (3u << 20) + 1;
    bs_resp script[] = {
        {.pat_len = n, .pat_seed = 21, .cut_after = 1u << 20, .etag = "\"first\""},
        {.status = 503, .body = "{\"error_code\":\"TEMPORARILY_UNAVAILABLE\"}"},
        {.pat_len = n, .pat_seed = 21, .etag = "\"d41d8cd98f00b204e9800998ecf8427e-3\""},
        {.pat_len = 1000, .pat_seed = 22},
    };
    blobsrv *s = bs_start(script, 4);
    char uri[64];
    bs_uri(s, "", uri, sizeof uri);
    cb_state st = {0};
    mlo_http *h = new_http(uri, &st);
    int out = scratch_file("stale bytes of an earlier download");

    mlo_http_req q = MLO_HTTP_REQ_INIT;
    q.method = "GET";
    q.path = "/api/2.0/mlflow-artifacts/artifacts/model.bin";
    q.out_fd = out;
    mlo_http_result r;
    assert_int_equal(mlo__http_request(h, &q, &r), 0);
    assert_int_equal(r.http_code, 200);
    assert_int_equal(r.retries, 2);
    assert_int_equal(st.last_code, 503);
    assert_int_equal(r.body.len, 0); /* the body went to the file, the 503's is gone */
    assert_true(r.bytes_received == n);
    assert_string_equal(r.etag, "\"d41d8cd98f00b204e9800998ecf8427e-3\"");
    assert_non_null(strstr(r.content_type, "application/octet-stream"));
    mlo__http_result_free(&r);
    assert_true(file_is_pattern(out, 21, n));
    assert_int_equal(bs_count(s), 3);

    /* a smaller body into the same file: the file is that body, nothing more */
    assert_int_equal(mlo__http_request(h, &q, &r), 0);
    assert_true(r.bytes_received == 1000);
    mlo__http_result_free(&r);
    assert_true(file_is_pattern(out, 22, 1000));

    close(out);
    mlo__http_free(h);
    bs_stop(s);
}

/* A 404 with out_fd set: the error JSON in res->body, nothing in the file. */
static void test_stream_get_404_to_file(void **state) {
    (void)state;
    static const char err[] = "{\"error_code\":\"RESOURCE_DOES_NOT_EXIST\",\"message\":\"no such "
                              "artifact\"}";
    bs_resp script[] = {{.status = 404, .body = err}};
    blobsrv *s = bs_start(script, 1);
    char uri[64];
    bs_uri(s, "", uri, sizeof uri);
    cb_state st = {0};
    mlo_http *h = new_http(uri, &st);
    int out = scratch_file(NULL);

    mlo_http_req q = MLO_HTTP_REQ_INIT;
    q.method = "GET";
    q.path = "/api/2.0/mlflow-artifacts/artifacts/missing.bin";
    q.out_fd = out;
    mlo_http_result r;
    assert_int_equal(mlo__http_request(h, &q, &r), 0);
    assert_int_equal(r.http_code, 404);
    assert_int_equal(r.retries, 0);
    assert_string_equal(r.body.data, err);
    assert_true(r.bytes_received == strlen(err));
    mlo__http_result_free(&r);
    assert_int_equal(file_size(out), 0);

    close(out);
    mlo__http_free(h);
    bs_stop(s);
}

/* Presigned URLs: used as they are (no base prefix, no query), and no
 * Authorization header, neither Bearer nor Basic; relative paths on the same
 * handle still carry it.  Messages leave the URL's query (the signature) out. */
static void test_absolute_url_no_auth(void **state) {
    (void)state;
    bs_resp script[] = {{.body = "{}", .etag = "\"part-1\"", .expect_seed = 31}};
    blobsrv *s = bs_start(script, 1);
    char base[64], abs_url[256], v[256];
    bs_uri(s, "/prefix", base, sizeof base);
    snprintf(abs_url, sizeof abs_url,
             "http://127.0.0.1:%d/bucket/key.bin?partNumber=1&X-Amz-Signature=sig0123456789",
             s->port);
    int fd = pattern_file(31, 5000);
    int nreq = 0;
    for (int mode = 0; mode < 2; mode++) {
        cb_state st = {0};
        mlo_http_config c = base_cfg(base, &st);
        c.token = "tok-never-to-s3";
        if (mode == 1) {
            c.user = "alice";
            c.password = "pw-never-to-s3";
        }
        mlo_http *h = mlo__http_new(&c);
        assert_non_null(h);

        mlo_http_req q = MLO_HTTP_REQ_INIT;
        q.method = "PUT";
        q.path = abs_url;
        q.query = "ignored=1";
        q.in_fd = fd;
        q.in_len = 5000;
        mlo_http_result r;
        assert_int_equal(mlo__http_request(h, &q, &r), 0);
        assert_int_equal(r.http_code, 200);
        assert_string_equal(r.etag, "\"part-1\"");
        mlo__http_result_free(&r);
        bs_seen sn = bs_get(s, nreq++);
        assert_string_equal(sn.target,
                            "/bucket/key.bin?partNumber=1&X-Amz-Signature=sig0123456789");
        assert_true(sn.body_len == 5000 && sn.match);
        assert_null(strcasestr(sn.head, "Authorization"));

        /* a GET to a presigned URL too */
        mlo_http_req g = MLO_HTTP_REQ_INIT;
        g.method = "GET";
        g.path = abs_url;
        assert_int_equal(mlo__http_request(h, &g, &r), 0);
        mlo__http_result_free(&r);
        sn = bs_get(s, nreq++);
        assert_null(strcasestr(sn.head, "Authorization"));

        /* the tracking API on the same handle still authenticates */
        assert_int_equal(
            mlo__http_call(h, "GET", "/api/2.0/mlflow/runs/get", "run_id=1", NULL, 0, 0, &r), 0);
        mlo__http_result_free(&r);
        sn = bs_get(s, nreq++);
        assert_string_equal(sn.target, "/prefix/api/2.0/mlflow/runs/get?run_id=1");
        assert_string_equal(head_value(sn.head, "Authorization", v, sizeof v),
                            mode ? "Basic YWxpY2U6cHctbmV2ZXItdG8tczM=" : "Bearer tok-never-to-s3");
        mlo__http_free(h);
    }

    /* a failure names the URL without its query */
    cb_state st = {0};
    mlo_http_config c = base_cfg(base, &st);
    c.max_retries = 1;
    mlo_http *h = mlo__http_new(&c);
    snprintf(abs_url, sizeof abs_url,
             "http://user:pw1234@127.0.0.1:%d/bucket/k?X-Amz-Signature=topsecretsig",
             closed_port());
    mlo_http_req g = MLO_HTTP_REQ_INIT;
    g.method = "GET";
    g.path = abs_url;
    mlo_http_result r;
    assert_int_equal(mlo__http_request(h, &g, &r), 9);
    assert_non_null(strstr(r.message, "/bucket/k"));
    assert_null(strstr(r.message, "topsecretsig"));
    assert_null(strstr(r.message, "pw1234"));
    assert_null(strstr(st.last_msg, "topsecretsig"));
    mlo__http_result_free(&r);
    mlo__http_free(h);
    close(fd);
    bs_stop(s);
}

/* The ETag as sent (quotes, W/ kept); "" when the next response has none. */
static void test_etag_captured(void **state) {
    (void)state;
    bs_resp script[] = {{.body = "{}", .etag = "W/\"abc-123\""}, {.body = "{}"}};
    blobsrv *s = bs_start(script, 2);
    char uri[64];
    bs_uri(s, "", uri, sizeof uri);
    cb_state st = {0};
    mlo_http *h = new_http(uri, &st);
    mlo_http_result r;
    assert_int_equal(mlo__http_call(h, "GET", "/a", NULL, NULL, 0, 0, &r), 0);
    assert_string_equal(r.etag, "W/\"abc-123\"");
    mlo__http_result_free(&r);
    assert_int_equal(mlo__http_call(h, "GET", "/b", NULL, NULL, 0, 0, &r), 0);
    assert_string_equal(r.etag, "");
    mlo__http_result_free(&r);
    mlo__http_free(h);
    bs_stop(s);
}

/* The body file is shorter than in_off + in_len (it shrank): status 23 at
 * once, not retried. */
static void test_stream_body_file_shrank(void **state) {
    (void)state;
    bs_resp script[] = {{.body = "{}", .expect_seed = 41, .expect_off = 1000}};
    blobsrv *s = bs_start(script, 1);
    char uri[64];
    bs_uri(s, "", uri, sizeof uri);
    cb_state st = {0};
    mlo_http *h = new_http(uri, &st);
    int fd = pattern_file(41, 200000);

    mlo_http_req q = MLO_HTTP_REQ_INIT;
    q.method = "PUT";
    q.path = "/api/2.0/mlflow-artifacts/artifacts/shrunk.bin";
    q.in_fd = fd;
    q.in_off = 1000;
    q.in_len = 300000; /* 100000 bytes past the end */
    mlo_http_result r;
    assert_int_equal(mlo__http_request(h, &q, &r), 23);
    assert_int_equal(r.retries, 0);
    assert_int_equal(st.retries_seen, 0);
    assert_non_null(strstr(r.message, "shrank"));
    assert_non_null(strstr(r.message, "shrunk.bin"));
    mlo__http_result_free(&r);

    /* the handle goes on working */
    q.in_len = 5000;
    assert_int_equal(mlo__http_request(h, &q, &r), 0);
    assert_int_equal(r.http_code, 200);
    mlo__http_result_free(&r);
    close(fd);
    mlo__http_free(h);
    bs_stop(s);
}

/* Writing the download fails (here EFBIG under RLIMIT_FSIZE, as ENOSPC
 * would): status 23 at once, not retried, and the file is left empty. */
static void test_stream_out_file_write_fails(void **state) {
    (void)state;
    bs_resp script[] = {{.pat_len = 2u << 20, .pat_seed = 51}};
    blobsrv *s = bs_start(script, 1);
    char uri[64];
    bs_uri(s, "", uri, sizeof uri);
    cb_state st = {0};
    mlo_http *h = new_http(uri, &st);
    int out = scratch_file(NULL);

    mlo_http_req q = MLO_HTTP_REQ_INIT;
    q.method = "GET";
    q.path = "/api/2.0/mlflow-artifacts/artifacts/big.bin";
    q.out_fd = out;
    mlo_http_result r;
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 256 * 1024;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = mlo__http_request(h, &q, &r);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(rc, 23);
    assert_int_equal(r.retries, 0);
    assert_int_equal(st.retries_seen, 0);
    assert_non_null(strstr(r.message, "cannot write"));
    assert_non_null(strstr(r.message, strerror(EFBIG)));
    mlo__http_result_free(&r);
    assert_int_equal(file_size(out), 0);
    assert_int_equal(bs_count(s), 1);
    close(out);

    /* a descriptor that is no file to write: 23 too, before any request */
    int ro = open("/dev/null", O_RDONLY);
    assert_true(ro >= 0);
    q.out_fd = ro;
    assert_int_equal(mlo__http_request(h, &q, &r), 23);
    mlo__http_result_free(&r);
    close(ro);
    assert_int_equal(bs_count(s), 1);
    mlo__http_free(h);
    bs_stop(s);
}

/* A streamed transfer that takes longer than timeout_s as a whole but never
 * stalls for that long is not cut (the idle limit, not a total one). */
static void test_stream_outlives_timeout(void **state) {
    (void)state;
    const uint64_t n = 12 * 16384;
    bs_resp script[] = {{.pat_len = n, .pat_seed = 61, .chunk_delay_ms = 200}};
    blobsrv *s = bs_start(script, 1);
    char uri[64];
    bs_uri(s, "", uri, sizeof uri);
    cb_state st = {0};
    mlo_http_config c = base_cfg(uri, &st);
    c.timeout_s = 1;
    c.max_retries = 0;
    mlo_http *h = mlo__http_new(&c);
    int out = scratch_file(NULL);
    mlo_http_req q = MLO_HTTP_REQ_INIT;
    q.method = "GET";
    q.path = "/slow.bin";
    q.out_fd = out;
    mlo_http_result r;
    int64_t t0 = now_ns();
    assert_int_equal(mlo__http_request(h, &q, &r), 0);
    assert_true(now_ns() - t0 > 1000 * MS); /* it did outlive timeout_s */
    assert_int_equal(r.http_code, 200);
    mlo__http_result_free(&r);
    assert_true(file_is_pattern(out, 61, n));
    close(out);
    mlo__http_free(h);
    bs_stop(s);
}

/* A streamed transfer that stalls longer than timeout_s fails as a timeout
 * (retryable; here with no retries left: status 9), and the file is emptied. */
static void test_stream_idle_timeout(void **state) {
    (void)state;
    bs_resp script[] = {
        {.pat_len = 1u << 20, .pat_seed = 71, .stall_after = 65536, .stall_ms = 10000}};
    blobsrv *s = bs_start(script, 1);
    char uri[64];
    bs_uri(s, "", uri, sizeof uri);
    cb_state st = {0};
    mlo_http_config c = base_cfg(uri, &st);
    c.timeout_s = 1;
    c.max_retries = 0;
    mlo_http *h = mlo__http_new(&c);
    int out = scratch_file(NULL);
    mlo_http_req q = MLO_HTTP_REQ_INIT;
    q.method = "GET";
    q.path = "/stall.bin";
    q.out_fd = out;
    mlo_http_result r;
    int64_t t0 = now_ns();
    assert_int_equal(mlo__http_request(h, &q, &r), 9);
    /* the server would have stalled for 10 s: the idle limit ended it */
    assert_true(now_ns() - t0 < 7000 * MS);
    assert_non_null(strstr(r.message, "no data moved"));
    mlo__http_result_free(&r);
    assert_int_equal(file_size(out), 0);
    close(out);
    mlo__http_free(h);
    bs_stop(s);
}

/* should_abort is polled during a long transfer: status 8. */
static void test_stream_should_abort(void **state) {
    (void)state;
    bs_resp script[] = {
        {.pat_len = 4u << 20, .pat_seed = 81, .stall_after = 1u << 20, .stall_ms = 10000}};
    blobsrv *s = bs_start(script, 1);
    char uri[64];
    bs_uri(s, "", uri, sizeof uri);
    cb_state st = {0};
    mlo_http *h = new_http(uri, &st); /* timeout_s 10 */
    int out = scratch_file(NULL);
    mlo_http_req q = MLO_HTTP_REQ_INIT;
    q.method = "GET";
    q.path = "/stall.bin";
    q.out_fd = out;
    mlo_http_result r;
    int64_t t0 = now_ns();
    st.abort_at_ns = t0 + 300 * MS;
    assert_int_equal(mlo__http_request(h, &q, &r), 8);
    assert_true(now_ns() - t0 < 5000 * MS);
    assert_non_null(strstr(r.message, "aborted"));
    mlo__http_result_free(&r);
    assert_int_equal(file_size(out), 0);
    close(out);
    mlo__http_free(h);
    bs_stop(s);
}

/* kB of a /proc/self/status field ("VmHWM", "VmRSS"), -1 if unknown. */
static long proc_kb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kb = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':')
            kb = strtol(line + fl + 1, NULL, 10);
    fclose(f);
    return kb;
}

/* 64 MiB up from a file and 64 MiB down into one: byte-exact, and the
 * process's peak RSS grows by far less than the body (no buffer in
 * proportion to its size: the body would show as >= 64 MiB). */
static void test_stream_64mb_bounded_memory(void **state) {
    (void)state;
    const uint64_t n = 64u << 20;
    const long max_growth_kb = 16 * 1024;
    bs_resp script[] = {
        {.body = "{}", .expect_seed = 91}, /* warm-up */
        {.body = "{}", .expect_seed = 91, .etag = "\"up\""},
        {.pat_len = n, .pat_seed = 92},
    };
    blobsrv *s = bs_start(script, 3);
    char uri[64];
    bs_uri(s, "", uri, sizeof uri);
    cb_state st = {0};
    mlo_http *h = new_http(uri, &st);
    int in = pattern_file(91, n);
    int out = scratch_file(NULL);
    mlo_http_req up = MLO_HTTP_REQ_INIT;
    up.method = "PUT";
    up.path = "/big-up.bin";
    up.in_fd = in;
    up.in_len = 1 << 20;
    mlo_http_result r;
    assert_int_equal(mlo__http_request(h, &up, &r), 0); /* curl's buffers exist from here on */
    mlo__http_result_free(&r);

    FILE *cr = fopen("/proc/self/clear_refs", "w"); /* "5": reset the peak to the current RSS */
    if (cr) {
        fputs("5", cr);
        fclose(cr);
    }
    long base_kb = proc_kb("VmHWM");
    if (base_kb < 0)
        skip();

    up.in_len = (int64_t)n;
    assert_int_equal(mlo__http_request(h, &up, &r), 0);
    assert_int_equal(r.http_code, 200);
    assert_true(r.bytes_sent == n);
    mlo__http_result_free(&r);
    bs_seen sn = bs_get(s, 1);
    assert_true(sn.body_len == n && sn.match);

    mlo_http_req down = MLO_HTTP_REQ_INIT;
    down.method = "GET";
    down.path = "/big-down.bin";
    down.out_fd = out;
    assert_int_equal(mlo__http_request(h, &down, &r), 0);
    assert_int_equal(r.http_code, 200);
    assert_true(r.bytes_received == n);
    assert_int_equal(r.body.len, 0);
    mlo__http_result_free(&r);

    long peak_kb = proc_kb("VmHWM");
    print_message("peak RSS growth over 2 x 64 MiB streamed: %ld kB\n", peak_kb - base_kb);
    assert_true(peak_kb - base_kb < max_growth_kb);
    assert_true(file_is_pattern(out, 92, n));
    close(in);
    close(out);
    mlo__http_free(h);
    bs_stop(s);
}

int main(void) {
    /* loopback traffic must not go through a proxy from the environment */
    unsetenv("http_proxy");
    unsetenv("https_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("HTTPS_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    signal(SIGPIPE, SIG_IGN);
    mlo__http_global_init();

    const struct CMUnitTest standalone[] = {
        cmocka_unit_test(test_urlencode),
        cmocka_unit_test(test_bad_scheme_and_args),
        cmocka_unit_test(test_deadline_already_passed),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_request_headers_exact),
        cmocka_unit_test(test_reused_connection_closed),
        cmocka_unit_test(test_retry_after_http_date),
        cmocka_unit_test(test_tls_verification),
        cmocka_unit_test(test_tls_client_certificate),
    };
    const struct CMUnitTest keepalive[] = {
        cmocka_unit_test_setup(test_get_and_post, srv_reset),
        cmocka_unit_test_setup(test_503_twice_then_ok, srv_reset),
        cmocka_unit_test_setup(test_429_retry_after, srv_reset),
        cmocka_unit_test_setup(test_400_not_retried, srv_reset),
        cmocka_unit_test_setup(test_drop_retried, srv_reset),
        cmocka_unit_test_setup(test_reset_mid_response_retried, srv_reset),
        cmocka_unit_test_setup(test_retries_exhausted, srv_reset),
        cmocka_unit_test_setup(test_deadline_cuts_slow_answer, srv_reset),
        cmocka_unit_test_setup(test_attempt_timeout_retried, srv_reset),
        cmocka_unit_test_setup(test_deadline_leaves_no_room_for_backoff, srv_reset),
        cmocka_unit_test_setup(test_should_abort_interrupts_backoff, srv_reset),
        cmocka_unit_test_setup(test_should_abort_interrupts_transfer, srv_reset),
        cmocka_unit_test_setup(test_user_agent_and_auth, srv_reset),
        cmocka_unit_test_setup(test_keepalive_reuse, srv_reset),
        cmocka_unit_test_setup(test_put_body, srv_reset),
    };
    const struct CMUnitTest closing[] = {
        cmocka_unit_test_setup(test_close_mode, srv_reset),
    };
    const struct CMUnitTest streaming[] = {
        cmocka_unit_test(test_request_bad_args),
        cmocka_unit_test(test_stream_put_region),
        cmocka_unit_test(test_stream_put_retry_resends),
        cmocka_unit_test(test_stream_get_to_file),
        cmocka_unit_test(test_stream_get_404_to_file),
        cmocka_unit_test(test_absolute_url_no_auth),
        cmocka_unit_test(test_etag_captured),
        cmocka_unit_test(test_stream_body_file_shrank),
        cmocka_unit_test(test_stream_out_file_write_fails),
        cmocka_unit_test(test_stream_outlives_timeout),
        cmocka_unit_test(test_stream_idle_timeout),
        cmocka_unit_test(test_stream_should_abort),
        cmocka_unit_test(test_stream_64mb_bounded_memory),
    };
    int failed = 0;
    failed += cmocka_run_group_tests_name("http_standalone", standalone, NULL, NULL);
    failed += cmocka_run_group_tests_name("http_keepalive", keepalive, srv_up, srv_down);
    failed += cmocka_run_group_tests_name("http_close", closing, srv_up_close, srv_down);
    failed += cmocka_run_group_tests_name("http_stream", streaming, NULL, NULL);
    return failed ? 1 : 0;
}
