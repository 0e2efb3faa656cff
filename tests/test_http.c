/*
 * test_http.c - the libcurl transport (src/mlo_http.c) against the loopback
 * MLflow-compatible test server (tests/mlflow_test_server.py through
 * tests/testsrv.h) and against two small servers of its own:
 *  - rawsrv: an in-process HTTP/1.1 server on a thread, for what the test
 *    server cannot show: the exact request header lines, and a keep-alive
 *    connection that the server closes when the next request arrives;
 *  - an HTTPS server (python3 ssl + a self-signed certificate made with the
 *    openssl command), for certificate verification.  Skipped when openssl
 *    is not installed.
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
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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
    int failed = 0;
    failed += cmocka_run_group_tests_name("http_standalone", standalone, NULL, NULL);
    failed += cmocka_run_group_tests_name("http_keepalive", keepalive, srv_up, srv_down);
    failed += cmocka_run_group_tests_name("http_close", closing, srv_up_close, srv_down);
    return failed ? 1 : 0;
}
