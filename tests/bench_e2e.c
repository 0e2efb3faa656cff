/*
 * bench_e2e.c - how fast events leave the client: the shipper's pipeline on
 * one core, end to end to a server, and the memory it takes.
 *
 * Usage: bench_e2e [shipper|e2e|memory|inflight|all] [events]
 *
 * shipper  Ring to encoded log-batch bodies, the network replaced by a
 *          discard sink, on one core.  The benchmark reproduces the shipper's
 *          path (src/mlo_shipper.c as of this writing: its functions are
 *          static): records are pushed with mlo__ring_ops (untimed,
 *          500,000 per round, more than the caches hold), then drained in
 *          stages of 4096 records, each copied into the stage arena with its
 *          key NUL-terminated, grouped per run into batches within MLflow's
 *          limits (1000 metrics, ~900 KB; a batch never outlives its stage),
 *          each batch encoded by mlo__api_encode_log_batch into an mlo_buf
 *          that is then discarded.  Timed with CLOCK_MONOTONIC around each
 *          stage: events/s = events / time of drain + stage + group + encode.
 *          Also with the pushes counted in (one thread doing both ends).
 * e2e      200,000 metrics (default) through the public mlo_log_metric, then
 *          mlo_client_flush; events/s = events / (first call to flush's
 *          return).  Against the loopback MLflow test server (Python, sqlite)
 *          and against a null HTTP server (a child process that answers every
 *          request at once without parsing the body: the client's own
 *          ceiling), ring and mutex queue, median of 3 runs each; then 10x
 *          the events to the null server (200,000 events fill less than the
 *          quarter of the queue that wakes the shipper, so that figure
 *          includes up to one flush interval of waiting), and the time
 *          mlo_client_flush takes for a single event on an idle client.
 * inflight Requests in flight (mlo_options_set_max_inflight): R runs log M
 *          metrics each, interleaved (run 0..R-1, then again), through the
 *          public API, then mlo_client_flush; events/s = events / (first log
 *          call .. flush returned); runs created before the clock starts.
 *          Side by side in one process, N = 1, 2, 4, 8 requests in flight:
 *          against the test server with a fault rule delaying every
 *          log-batch by D ms (a server whose workers each take D ms per
 *          request: the test server is a ThreadingHTTPServer, so delays
 *          overlap as several workers' would), 16 runs x 2,000 metrics, D =
 *          50 and 20; then against the plain test server (no delay: the
 *          Python server's own speed, one process and one database lock) and
 *          the null server (10x the metrics), N = 1 and 4, 1, 16 and 64 runs,
 *          median of 3.
 * memory   The process's resident set (VmRSS) before opening a client, after
 *          a warm-up of 1,000,000 events, and after 10,000,000 more events
 *          (default queue size, default full policy: nothing dropped), sent
 *          to the null server.  Nothing may grow with the events logged.
 */
#define _GNU_SOURCE
#include "bench_common.h"
#include "mlo.h"
#include "mlo_api.h"
#include "mlo_config.h"
#include "mlo_env.h"
#include "mlo_payload.h"
#include "mlo_ring.h"
#include "testsrv.h"
#include <stdbool.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

static void die(const char *what, int st) {
    fprintf(stderr, "bench_e2e: %s: %s\n", what, st ? mlo_strerror(st) : strerror(errno));
    exit(1);
}

/* ==== The null HTTP server (a child process) ================================== */

#define SINK_CONNS 64
#define SINK_BUF (256 * 1024)

typedef struct sink_conn {
    int fd;
    size_t len;  /* bytes in buf */
    size_t skip; /* body bytes still to discard */
    int pending; /* a response to send once the body is in: 1..3 */
    char *buf;
} sink_conn;

static const char RUN_JSON[] =
    "{\"run\":{\"info\":{\"run_id\":\"0123456789abcdef0123456789abcdef\","
    "\"run_uuid\":\"0123456789abcdef0123456789abcdef\",\"experiment_id\":\"0\"},"
    "\"data\":{}}}";
static const char EXP_JSON[] = "{\"experiment\":{\"experiment_id\":\"0\",\"name\":\"Default\","
                               "\"lifecycle_stage\":\"active\"}}";

static int sink_respond(int fd, int kind) {
    const char *body = kind == 2 ? RUN_JSON : kind == 3 ? EXP_JSON : "{}";
    char out[1024];
    int n = snprintf(out, sizeof out,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    for (int off = 0; off < n;) {
        ssize_t w = write(fd, out + off, (size_t)(n - off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        off += (int)w;
    }
    return 0;
}

/* Consumes what buf holds; -1 closes the connection. */
static int sink_process(sink_conn *c) {
    size_t pos = 0;
    for (;;) {
        if (c->skip) {
            size_t n = c->len - pos < c->skip ? c->len - pos : c->skip;
            pos += n;
            c->skip -= n;
            if (c->skip)
                break;
        }
        if (c->pending) {
            if (sink_respond(c->fd, c->pending))
                return -1;
            c->pending = 0;
        }
        char *start = c->buf + pos;
        char *end = memmem(start, c->len - pos, "\r\n\r\n", 4);
        if (!end)
            break;
        size_t hlen = (size_t)(end - start) + 4;
        /* the request line and headers, as one C string */
        char save = start[hlen - 1];
        start[hlen - 1] = 0;
        size_t clen = 0;
        for (char *h = strchr(start, '\n'); h; h = strchr(h + 1, '\n'))
            if (strncasecmp(h + 1, "content-length:", 15) == 0)
                clen = strtoul(h + 16, NULL, 10);
        if (strcasestr(start, "\nexpect: 100-continue")) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            if (write(c->fd, cont, sizeof cont - 1) != (ssize_t)sizeof cont - 1)
                return -1;
        }
        char *eol = strchr(start, '\n');
        if (eol)
            *eol = 0;
        c->pending = strstr(start, "runs/create") || strstr(start, "runs/get") ? 2
                     : strstr(start, "experiments/get-by-name")                ? 3
                                                                               : 1;
        if (eol)
            *eol = '\n';
        start[hlen - 1] = save;
        pos += hlen;
        c->skip = clen;
    }
    memmove(c->buf, c->buf + pos, c->len - pos);
    c->len -= pos;
    if (c->len == SINK_BUF) /* headers larger than the buffer */
        return -1;
    return 0;
}

static void sink_main(int port_pipe) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 64) ||
        getsockname(ls, (struct sockaddr *)&a, &al))
        _exit(1);
    int port = ntohs(a.sin_port);
    if (write(port_pipe, &port, sizeof port) != sizeof port)
        _exit(1);
    close(port_pipe);
    sink_conn conns[SINK_CONNS];
    int n = 0;
    struct pollfd pf[SINK_CONNS + 1];
    for (;;) {
        pf[0] = (struct pollfd){.fd = ls, .events = POLLIN};
        for (int i = 0; i < n; i++)
            pf[i + 1] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
        if (poll(pf, (nfds_t)n + 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            _exit(1);
        }
        for (int i = n - 1; i >= 0; i--) {
            if (!pf[i + 1].revents)
                continue;
            sink_conn *c = &conns[i];
            ssize_t r = read(c->fd, c->buf + c->len, SINK_BUF - c->len);
            if (r < 0 && errno == EINTR)
                continue;
            if (r > 0) {
                c->len += (size_t)r;
                if (sink_process(c) == 0)
                    continue;
            }
            close(c->fd);
            free(c->buf);
            conns[i] = conns[--n];
        }
        if ((pf[0].revents & POLLIN) && n < SINK_CONNS) {
            int fd = accept(ls, NULL, NULL);
            if (fd >= 0) {
                setsockopt(fd, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof one);
                conns[n] = (sink_conn){.fd = fd, .buf = malloc(SINK_BUF)};
                if (!conns[n].buf)
                    _exit(1);
                n++;
            }
        }
    }
}

static pid_t sink_pid;
static char sink_uri[64];

/* Forks the null server; call before any thread is started. */
static void sink_start(void) {
    int p[2];
    if (pipe(p))
        die("pipe", 0);
    sink_pid = fork();
    if (sink_pid < 0)
        die("fork", 0);
    if (sink_pid == 0) {
        close(p[0]);
        sink_main(p[1]);
        _exit(0);
    }
    close(p[1]);
    int port = 0;
    if (read(p[0], &port, sizeof port) != sizeof port)
        die("null server did not start", 0);
    close(p[0]);
    snprintf(sink_uri, sizeof sink_uri, "http://127.0.0.1:%d", port);
}

static void sink_stop(void) {
    if (sink_pid > 0) {
        kill(sink_pid, SIGTERM);
        waitpid(sink_pid, NULL, 0);
        sink_pid = 0;
    }
}

/* ==== shipper: ring -> encoded bodies, one core ================================ */

#define STAGE_MAX 4096 /* as src/mlo_shipper.c */

typedef struct pipe_state {
    mlo_buf stage;
    size_t offs[STAGE_MAX];
    size_t nstaged;
    const mlo_rec *recs[MLO_BATCH_MAX_TOTAL];
    size_t nrecs, nbytes;
    mlo_api *api;
    mlo_buf body;
    const char *run_id;
    uint64_t bodies, body_bytes, events;
    int64_t t_stage, t_encode;
} pipe_state;

/* As the shipper's stage_cb: header, key, NUL, value, NUL, aligned. */
static void stage_cb(void *ctx, const mlo_rec *r) {
    pipe_state *s = ctx;
    size_t need = sizeof(mlo_rec) + r->key_len + 1 + r->val_len + 1;
    need = (need + MLO_REC_ALIGN - 1) & ~(size_t)(MLO_REC_ALIGN - 1);
    if (mlo__buf_reserve(&s->stage, need) != 0)
        die("stage", MLO_ERR_NO_MEMORY);
    char *p = s->stage.data + s->stage.len;
    memcpy(p, r, sizeof *r);
    memcpy(p + sizeof *r, mlo__rec_key(r), r->key_len);
    p[sizeof *r + r->key_len] = 0;
    memcpy(p + sizeof *r + r->key_len + 1, mlo__rec_val(r), r->val_len);
    p[sizeof *r + r->key_len + 1 + r->val_len] = 0;
    s->offs[s->nstaged++] = s->stage.len;
    s->stage.len += need;
}

static void encode_batch(pipe_state *s) {
    if (!s->nrecs)
        return;
    mlo__buf_reset(&s->body);
    if (mlo__api_encode_log_batch(s->api, s->run_id, s->recs, s->nrecs, &s->body) != MLO_OK)
        die("encode", MLO_ERR_NO_MEMORY);
    s->bodies++;
    s->body_bytes += s->body.len;
    s->events += s->nrecs;
    s->nrecs = s->nbytes = 0; /* the body is discarded: the network's place */
}

/* One run, metrics only: the shipper's grouping reduces to these limits. */
static void process_stage(pipe_state *s) {
    for (size_t i = 0; i < s->nstaged; i++) {
        const mlo_rec *r = (const mlo_rec *)(s->stage.data + s->offs[i]);
        size_t bytes = (size_t)r->key_len + r->val_len + 96;
        if (s->nrecs + 1 > MLO_BATCH_MAX_METRICS || s->nbytes + bytes > MLO_BATCH_MAX_BYTES)
            encode_batch(s);
        s->recs[s->nrecs++] = r;
        s->nbytes += bytes;
    }
    encode_batch(s); /* a batch never outlives its stage */
    s->nstaged = 0;
    mlo__buf_reset(&s->stage);
}

static const char *const KEYS[8] = {"train/loss",        "train/accuracy",
                                    "val/loss",          "learning_rate",
                                    "grad_norm",         "throughput/samples_per_sec",
                                    "gpu/0/utilization", "epoch"};

static void bench_shipper(long events) {
    const long per_round = 500000;
    if (events < per_round)
        events = per_round;
    long rounds = events / per_round;
    mlo_options_t *o = mlo_options_new();
    mlo_options_set_tracking_uri(o, "http://127.0.0.1:9");
    mlo_config cfg;
    char err[256];
    int st = mlo__config_resolve(o, &cfg, err, sizeof err);
    mlo_options_free(o);
    if (st)
        die(err, st);
    pipe_state *s = calloc(1, sizeof *s);
    static mlo_env env;
    mlo__env_init(&env, &cfg);
    s->api = mlo__api_new(&env);
    if (!s->api)
        die("api", MLO_ERR_NO_MEMORY);
    s->run_id = "0123456789abcdef0123456789abcdef";
    const mlo_queue_ops *ops = &mlo__ring_ops;
    mlo_queue *q = ops->create((size_t)64 << 20, 0);
    if (!q)
        die("ring", MLO_ERR_NO_MEMORY);

    printf("shipper pipeline: ring (64 MiB) -> stage (%d records) -> batches of <= %d -> "
           "mlo__api_encode_log_batch\n  -> discarded, one thread; %ld rounds of %ld metric "
           "records (8 keys of 5-26 characters,\n  full-precision values, ms timestamps, "
           "increasing steps), pushed untimed, then drained timed.\n",
           STAGE_MAX, MLO_BATCH_MAX_METRICS, rounds + 1, per_round);
    int64_t ts0 = (int64_t)1764000000000;
    long seq = 0;
    int64_t t_push = 0, t_drain = 0;
    uint64_t ev_timed = 0, bodies0 = 0, bytes0 = 0;
    for (long round = 0; round <= rounds; round++) { /* round 0 warms up */
        int64_t a = bench_mono_ns();
        for (long i = 0; i < per_round; i++, seq++) {
            const char *key = KEYS[seq & 7];
            mlo_rec h = {.type = MLO_REC_METRIC,
                         .key_len = (uint16_t)strlen(key),
                         .timestamp = ts0 + seq / 1000,
                         .step = seq / 8,
                         .value = 0.5 + 1.0 / (double)(seq + 3)};
            if (ops->push(q, &h, key, "") != MLO_Q_OK)
                die("push: ring full", 0);
        }
        int64_t b = bench_mono_ns();
        uint64_t ev0 = s->events;
        if (round == 1) {
            bodies0 = s->bodies;
            bytes0 = s->body_bytes;
        }
        for (;;) {
            int64_t t0 = bench_mono_ns();
            size_t n = ops->drain(q, STAGE_MAX, stage_cb, s);
            int64_t t1 = bench_mono_ns();
            if (!n)
                break;
            process_stage(s);
            int64_t t2 = bench_mono_ns();
            if (round) {
                s->t_stage += t1 - t0;
                s->t_encode += t2 - t1;
            }
        }
        int64_t c = bench_mono_ns();
        if (round) {
            t_push += b - a;
            t_drain += c - b;
            ev_timed += s->events - ev0;
        }
    }
    double ev = (double)ev_timed;
    uint64_t bodies = s->bodies - bodies0, bytes = s->body_bytes - bytes0;
    printf("  events %.0f, bodies %lu (mean %.0f events), %.1f bytes of JSON per event\n", ev,
           (unsigned long)bodies, ev / (double)bodies, (double)bytes / ev);
    printf("  per event: drain + copy into the stage %.1f ns, group + encode %.1f ns; "
           "push (producer side) %.1f ns\n",
           (double)s->t_stage / ev, (double)s->t_encode / ev, (double)t_push / ev);
    double rate = ev / ((double)t_drain / 1e9);
    printf("  shipper throughput, ring -> encoded bodies: %.3g metrics/s (%.0f MB/s of JSON)\n",
           rate, (double)bytes / ((double)t_drain / 1e9) / 1e6);
    printf("  the same with the pushes on the same core:  %.3g metrics/s\n",
           ev / ((double)(t_drain + t_push) / 1e9));
    printf("  target >= 1,000,000 metrics/s on one core: %s\n", rate >= 1e6 ? "MET" : "MISSED");
    ops->destroy(q);
    mlo__api_free(s->api);
    mlo__buf_free(&s->stage);
    mlo__buf_free(&s->body);
    mlo__config_free(&cfg);
    free(s);
}

/* ==== end to end through the public API ======================================= */

typedef struct e2e_result {
    double rate, log_s, total_s;
    uint64_t sent, dropped, failed, requests;
} e2e_result;

static e2e_result e2e_once(const char *uri, int impl, long n) {
    mlo_options_t *o = mlo_options_new();
    mlo_options_set_tracking_uri(o, uri);
    mlo_options_set_store_dir(o, bench_store_dir());
    mlo_options_set_queue_bytes(o, (size_t)64 << 20);
    mlo__config_set_queue_impl(o, impl);
    mlo_client_t *c;
    int st = mlo_client_open(o, &c);
    mlo_options_free(o);
    if (st)
        die("mlo_client_open", st);
    mlo_run_t *run;
    st = mlo_start_run(c, "bench_e2e", impl ? "mutex" : "ring", NULL, &run);
    if (st)
        die("mlo_start_run", st);
    int64_t t0 = bench_mono_ns();
    for (long i = 0; i < n; i++)
        mlo_log_metric(run, KEYS[i & 7], 0.5 + 1.0 / (double)(i + 3), i / 8);
    int64_t t1 = bench_mono_ns();
    st = mlo_client_flush(c, 600000);
    int64_t t2 = bench_mono_ns();
    if (st)
        die("mlo_client_flush", st);
    e2e_result r = {.log_s = (double)(t1 - t0) / 1e9, .total_s = (double)(t2 - t0) / 1e9};
    r.rate = (double)n / r.total_s;
    mlo_client_stat(c, MLO_STAT_SENT, &r.sent);
    mlo_client_stat(c, MLO_STAT_DROPPED, &r.dropped);
    mlo_client_stat(c, MLO_STAT_FAILED, &r.failed);
    mlo_client_stat(c, MLO_STAT_REQUESTS, &r.requests);
    mlo_client_close(c);
    return r;
}

static void bench_e2e(long n, const char *test_uri) {
    printf("end to end: %ld x mlo_log_metric (8 keys) then mlo_client_flush, 64 MiB queue, "
           "default full\n  policy, default durable store (temporary directory); events/s = "
           "events / (first call ..\n  flush returned); median of 3 runs\n",
           n);
    printf("%-26s %-6s | %12s %9s %9s | %8s %8s %7s %8s\n", "server", "queue", "events/s", "log s",
           "total s", "sent", "requests", "ev/req", "dropped");
    struct {
        const char *name, *uri;
    } servers[2] = {{"test server (Python)", test_uri}, {"null server (C, no parse)", sink_uri}};
    double rate[2][2] = {{0, 0}, {0, 0}};
    for (int sv = 0; sv < 2; sv++)
        for (int q = 0; q < 2; q++) {
            e2e_result r[3];
            double rates[3];
            for (int k = 0; k < 3; k++) {
                r[k] = e2e_once(servers[sv].uri, q, n);
                rates[k] = r[k].rate;
            }
            double med = bench_median(rates, 3);
            int m = 0;
            for (int k = 0; k < 3; k++)
                if (r[k].rate == med)
                    m = k;
            rate[sv][q] = med;
            printf("%-26s %-6s | %12.4g %9.3f %9.3f | %8lu %8lu %7.0f %8lu\n", servers[sv].name,
                   q ? "mutex" : "ring", med, r[m].log_s, r[m].total_s, (unsigned long)r[m].sent,
                   (unsigned long)r[m].requests,
                   (double)r[m].sent / (double)(r[m].requests ? r[m].requests : 1),
                   (unsigned long)r[m].dropped);
            if (r[m].failed)
                printf("  !! %lu events failed\n", (unsigned long)r[m].failed);
        }
    printf("  ring / mutex: test server %.2fx, null server %.2fx\n", rate[0][0] / rate[0][1],
           rate[1][0] / rate[1][1]);

    /* 200,000 events are ~11 MB: less than the quarter of the queue that
     * wakes the shipper, so the figure above includes waiting for its timer.
     * Sustained: 10x more, to the null server. */
    long big = n * 10;
    for (int q = 0; q < 2; q++) {
        e2e_result r[3];
        double rates[3];
        for (int k = 0; k < 3; k++) {
            r[k] = e2e_once(sink_uri, q, big);
            rates[k] = r[k].rate;
        }
        double med = bench_median(rates, 3);
        int m = 0;
        for (int k = 0; k < 3; k++)
            if (r[k].rate == med)
                m = k;
        printf("%-26s %-6s | %12.4g %9.3f %9.3f | %8lu %8lu %7.0f %8lu\n",
               "null server, 10x events", q ? "mutex" : "ring", med, r[m].log_s, r[m].total_s,
               (unsigned long)r[m].sent, (unsigned long)r[m].requests,
               (double)r[m].sent / (double)(r[m].requests ? r[m].requests : 1),
               (unsigned long)r[m].dropped);
    }

    /* What a flush costs when there is almost nothing to send. */
    for (int q = 0; q < 2; q++) {
        mlo_options_t *o = mlo_options_new();
        mlo_options_set_tracking_uri(o, sink_uri);
        mlo_options_set_store_dir(o, bench_store_dir());
        mlo__config_set_queue_impl(o, q);
        mlo_client_t *c;
        mlo_run_t *run;
        int st = mlo_client_open(o, &c);
        mlo_options_free(o);
        if (st || (st = mlo_start_run(c, "bench_e2e", "flush", NULL, &run)))
            die("open", st);
        double ms[21];
        for (int k = 0; k < 21; k++) {
            struct timespec gap = {0, 37000000}; /* not a multiple of the interval */
            nanosleep(&gap, NULL);
            mlo_log_metric(run, "flush/probe", (double)k, k);
            int64_t t0 = bench_mono_ns();
            if ((st = mlo_client_flush(c, 10000)))
                die("mlo_client_flush", st);
            ms[k] = (double)(bench_mono_ns() - t0) / 1e6;
        }
        double med = bench_median(ms, 21);
        printf("flush of 1 event, %-5s: median %.1f ms, min %.1f, max %.1f (21 tries; flush "
               "interval 100 ms)\n",
               q ? "mutex" : "ring", med, ms[0], ms[20]);
        mlo_client_close(c);
    }
}

/* ==== requests in flight ===================================================== */

typedef struct inflight_result {
    double rate, total_s;
    uint64_t sent, failed, requests;
} inflight_result;

static inflight_result inflight_once(const char *uri, unsigned n, int runs, int per_run) {
    mlo_options_t *o = mlo_options_new();
    mlo_options_set_tracking_uri(o, uri);
    mlo_options_set_store_dir(o, bench_store_dir());
    mlo_options_set_queue_bytes(o, (size_t)64 << 20);
    mlo_options_set_max_inflight(o, n);
    mlo_client_t *c;
    int st = mlo_client_open(o, &c);
    mlo_options_free(o);
    if (st)
        die("mlo_client_open", st);
    mlo_run_t **r = calloc((size_t)runs, sizeof *r);
    for (int k = 0; k < runs; k++)
        if ((st = mlo_start_run(c, "bench_inflight", NULL, NULL, &r[k])))
            die("mlo_start_run", st);
    if ((st = mlo_client_flush(c, 600000)))
        die("mlo_client_flush", st);
    uint64_t req0;
    mlo_client_stat(c, MLO_STAT_REQUESTS, &req0);
    int64_t t0 = bench_mono_ns();
    for (int i = 0; i < per_run; i++)
        for (int k = 0; k < runs; k++)
            mlo_log_metric(r[k], KEYS[i & 7], 0.5 + 1.0 / (double)(i + 3), i / 8);
    st = mlo_client_flush(c, 1200000);
    int64_t t1 = bench_mono_ns();
    if (st)
        die("mlo_client_flush", st);
    inflight_result res = {.total_s = (double)(t1 - t0) / 1e9};
    res.rate = (double)runs * per_run / res.total_s;
    mlo_client_stat(c, MLO_STAT_SENT, &res.sent);
    mlo_client_stat(c, MLO_STAT_FAILED, &res.failed);
    mlo_client_stat(c, MLO_STAT_REQUESTS, &res.requests);
    res.requests -= req0;
    mlo_client_close(c);
    free(r);
    return res;
}

static void inflight_row(const char *server, const char *uri, unsigned n, int runs, int per_run,
                         int reps, double *rate_out) {
    inflight_result r[3];
    double rates[3];
    for (int k = 0; k < reps; k++) {
        r[k] = inflight_once(uri, n, runs, per_run);
        rates[k] = r[k].rate;
    }
    double med = reps > 1 ? bench_median(rates, reps) : rates[0];
    int m = 0;
    for (int k = 0; k < reps; k++)
        if (r[k].rate == med)
            m = k;
    printf("%-30s %4d x %-6d %3u | %12.4g %9.3f | %8lu %8lu %7.0f\n", server, runs, per_run, n, med,
           r[m].total_s, (unsigned long)r[m].sent, (unsigned long)r[m].requests,
           (double)r[m].sent / (double)(r[m].requests ? r[m].requests : 1));
    if (r[m].failed)
        printf("  !! %lu events failed\n", (unsigned long)r[m].failed);
    *rate_out = med;
}

static void bench_inflight(const testsrv *srv) {
    const char *test_uri = testsrv_uri(srv);
    printf("requests in flight: R runs x M metrics (interleaved across the runs), then "
           "mlo_client_flush;\n  events/s = events / (first log call .. flush returned); "
           "default durable store, 64 MiB queue;\n  N = mlo_options_set_max_inflight; "
           "requests = all HTTP requests of the timed part\n");
    printf("%-30s %13s %3s | %12s %9s | %8s %8s %7s\n", "server", "runs x metrics", "N", "events/s",
           "total s", "sent", "requests", "ev/req");
    static const int delays[2] = {50, 20};
    static const unsigned ns[4] = {1, 2, 4, 8};
    for (int d = 0; d < 2; d++) {
        char rule[160], name[64];
        snprintf(rule, sizeof rule,
                 "{\"path_prefix\": \"runs/log-batch\", \"delay_ms\": %d, \"count\": -1}",
                 delays[d]);
        snprintf(name, sizeof name, "test server, %d ms/log-batch", delays[d]);
        double rate[4];
        for (int i = 0; i < 4; i++) {
            free(testsrv_post(srv, "/_test/faults/clear", "{}", NULL));
            if (testsrv_fault(srv, rule) != 0)
                die("fault rule", MLO_ERR_INTERNAL);
            inflight_row(name, test_uri, ns[i], 16, 2000, 1, &rate[i]);
        }
        free(testsrv_post(srv, "/_test/faults/clear", "{}", NULL));
        free(testsrv_post(srv, "/_test/reset", "{}", NULL));
        printf("  %d ms per request: N=2 %.2fx, N=4 %.2fx, N=8 %.2fx the events/s of N=1\n",
               delays[d], rate[1] / rate[0], rate[2] / rate[0], rate[3] / rate[0]);
    }
    struct {
        const char *name, *uri;
    } servers[2] = {{"test server (Python), no delay", test_uri},
                    {"null server (C, no parse)", sink_uri}};
    /* one run: its requests never overlap, so N cannot help (nor should it cost) */
    static const int shapes[3][2] = {{1, 32000}, {16, 2000}, {64, 500}};
    for (int sv = 0; sv < 2; sv++)
        for (int sh = 0; sh < 3; sh++) {
            double r1, r4;
            int per_run = shapes[sh][1] * (sv ? 10 : 1); /* the null server: 10x, to time it */
            inflight_row(servers[sv].name, servers[sv].uri, 1, shapes[sh][0], per_run, 3, &r1);
            inflight_row(servers[sv].name, servers[sv].uri, 4, shapes[sh][0], per_run, 3, &r4);
            printf("  N=4 / N=1: %.2fx\n", r4 / r1);
            if (sv == 0)
                free(testsrv_post(srv, "/_test/reset", "{}", NULL));
        }
}

/* ==== memory ================================================================== */

static void bench_memory(long events) {
    long rss0 = bench_status_kb("VmRSS");
    mlo_options_t *o = mlo_options_new();
    mlo_options_set_tracking_uri(o, sink_uri);
    mlo_options_set_store_dir(o, bench_store_dir());
    mlo_client_t *c;
    int st = mlo_client_open(o, &c);
    mlo_options_free(o);
    if (st)
        die("mlo_client_open", st);
    mlo_run_t *run;
    if ((st = mlo_start_run(c, "bench_e2e", "memory", NULL, &run)))
        die("mlo_start_run", st);
    long rss1 = bench_status_kb("VmRSS");
    long i = 0;
    for (; i < 1000000; i++)
        mlo_log_metric(run, KEYS[i & 7], 0.5 + 1.0 / (double)(i + 3), i / 8);
    if ((st = mlo_client_flush(c, 600000)))
        die("mlo_client_flush", st);
    long rss2 = bench_status_kb("VmRSS");
    int64_t t0 = bench_mono_ns();
    for (long k = 0; k < events; k++, i++)
        mlo_log_metric(run, KEYS[i & 7], 0.5 + 1.0 / (double)(i + 3), i / 8);
    if ((st = mlo_client_flush(c, 600000)))
        die("mlo_client_flush", st);
    double secs = (double)(bench_mono_ns() - t0) / 1e9;
    long rss3 = bench_status_kb("VmRSS");
    long hwm = bench_status_kb("VmHWM");
    uint64_t sent, dropped;
    mlo_client_stat(c, MLO_STAT_SENT, &sent);
    mlo_client_stat(c, MLO_STAT_DROPPED, &dropped);
    mlo_client_close(c);
    long rss4 = bench_status_kb("VmRSS");
    printf("memory: default queue (8 MiB = 8192 kB), default full policy, default durable "
           "store, null server\n");
    printf("  VmRSS before mlo_client_open            %8ld kB\n", rss0);
    printf("  after open + start_run                  %8ld kB  (+%ld)\n", rss1, rss1 - rss0);
    printf("  after 1,000,000 events + flush          %8ld kB  (+%ld over before open)\n", rss2,
           rss2 - rss0);
    printf("  after %ld more events + flush    %8ld kB  (%+ld over the previous line)\n", events,
           rss3, rss3 - rss2);
    printf("  peak (VmHWM) %ld kB; after close %ld kB; sent %lu, dropped %lu, %.3g events/s\n", hwm,
           rss4, (unsigned long)sent, (unsigned long)dropped, (double)events / secs);
    printf("  client footprint = queue + %ld kB; growth over %ld events: %ld kB (%s)\n",
           rss2 - rss0 - 8192, events, rss3 - rss2,
           rss3 - rss2 <= 1024 ? "nothing grows: MET" : "GROWS: MISSED");
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *what = argc > 1 ? argv[1] : "all";
    long n = argc > 2 ? atol(argv[2]) : 0;
    bool all = strcmp(what, "all") == 0;
    bool ship = all || !strcmp(what, "shipper"), e2e = all || !strcmp(what, "e2e"),
         mem = all || !strcmp(what, "memory"), infl = all || !strcmp(what, "inflight");
    if (!ship && !e2e && !mem && !infl) {
        fprintf(stderr, "usage: bench_e2e [shipper|e2e|memory|inflight|all] [events]\n");
        return 2;
    }
    bench_print_machine();
    bench_print_load();
    if (e2e || mem || infl)
        sink_start(); /* fork before any thread exists */
    bench_load l;
    /* memory first: the other parts would raise the baseline and the peak */
    if (mem) {
        bench_load_begin(&l, sink_pid, 0);
        bench_memory(n ? n : 10000000);
        bench_load_end(&l, "memory");
    }
    if (ship) {
        bench_load_begin(&l, 0, 0);
        bench_shipper(n ? n : 5000000);
        bench_load_end(&l, "the shipper pipeline");
    }
    if (e2e) {
        testsrv *srv = testsrv_start("");
        if (!srv)
            die("cannot start the test server", MLO_ERR_INTERNAL);
        bench_load_begin(&l, testsrv_pid(srv), sink_pid);
        bench_e2e(n ? n : 200000, testsrv_uri(srv));
        bench_load_end(&l, "end to end");
        testsrv_stop(srv);
    }
    if (infl) {
        testsrv *srv = testsrv_start("");
        if (!srv)
            die("cannot start the test server", MLO_ERR_INTERNAL);
        bench_load_begin(&l, testsrv_pid(srv), sink_pid);
        bench_inflight(srv);
        bench_load_end(&l, "requests in flight");
        testsrv_stop(srv);
    }

    sink_stop();
    bench_store_cleanup();
    return 0;
}
