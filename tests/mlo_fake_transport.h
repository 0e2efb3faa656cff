/*
 * mlo_fake_transport.h - a scripted transport and a virtual clock for
 * in-process tests of everything above the wire (the HTTP layer's retry
 * rules, the REST calls, the sender), through the same seam libcurl sits
 * behind (src/transport/mlo_transport.h).
 *
 * The fake is a small MLflow server in memory: experiments (get-by-name,
 * create), runs (create, search by tag, update, get with the latest
 * metrics), log-batch with
 * MLflow's limits and param immutability, log-inputs, metric history.  Every
 * request is recorded (method, path, body, virtual start time, the thread's
 * connection).  Faults are scripted per path: the next N requests to a path
 * answer with a status (and a Retry-After), or end with a transport outcome
 * (before the server saw them, or after it carried them out: a lost
 * answer).  A handler may delay requests in real time, to make requests in
 * flight overlap.
 *
 * The virtual clock starts at an arbitrary time; sleeping on it advances
 * it at once (no real waiting), so backoff and Retry-After rules are checked
 * by how much virtual time passed.
 *
 * Threads: every function may be called from any thread (a mutex inside).
 */
#ifndef MLO_FAKE_TRANSPORT_H
#define MLO_FAKE_TRANSPORT_H

#include "mlo_clock.h"
#include "mlo_transport.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the virtual clock ---- */
typedef struct fake_clock {
    _Atomic int64_t mono_ns;
    _Atomic int64_t slept_ns; /* total of every sleep */
    mlo_clock clock;          /* point the config at &fc->clock */
} fake_clock;
void fake_clock_init(fake_clock *fc);

/* ---- the fake server ---- */
typedef struct fake_req {
    char method[16];
    char path[256]; /* e.g. "/api/2.0/mlflow/runs/log-batch" (no query) */
    char query[512];
    char *body;     /* NUL-terminated; "" without a body */
    json_t *json;   /* the body parsed (NULL when not JSON) */
    int64_t t_ns;   /* virtual time when it arrived */
    int conn;       /* which transport (connection) sent it */
    int status;     /* HTTP status answered, or -outcome for a transport failure */
    char auth[256]; /* the Authorization header, "" if none */
} fake_req;

/* A scripted fault: the next `times` requests whose path ends with `path`
 * answer `status` (with Retry-After `retry_after` when not NULL and a body
 * `body` when not NULL), or, with outcome != MLO_XF_RESPONSE, fail with that
 * transport outcome; `executed` says whether the server carried the request
 * out before failing (a lost answer). */
typedef struct fake_fault {
    char path[128];
    int times;
    int status;
    const char *retry_after;
    const char *body;
    int outcome;
    int executed; /* 1: carried out before the failure; 2: carried out late, after
                     `defer` more requests have reached the server */
    int defer;
    int reused; /* a failure on a reused keep-alive connection, at once */
} fake_fault;

typedef struct fake_server fake_server;

/* A server stamping requests with fc's virtual time (fc may be NULL: 0). */
fake_server *fake_server_new(fake_clock *fc);
void fake_server_free(fake_server *fs);
/* Adds a fault (copied). */
void fake_fault_add(fake_server *fs, const fake_fault *f);
/* Removes every scripted fault (the server is back). */
void fake_fault_clear(fake_server *fs);
/* Random faults: each request to a path ending with `path` fails with
 * probability permille / 1000, picking one of the kinds in turn: 503, 429
 * (Retry-After 0), an HTML 502, a 200 that is not JSON, a connection reset
 * before the server saw it, one after it carried it out. */
void fake_fault_random(fake_server *fs, const char *path, int permille, uint64_t seed);
/* Requests to paths ending with `path` take `ms` of real time (0: none). */
void fake_delay(fake_server *fs, const char *path, int ms);
/* Param keys the server refuses as invalid (400 INVALID_PARAMETER_VALUE for
 * the whole batch that holds one). */
void fake_refuse_param(fake_server *fs, const char *key);

/* What was received: the count, and request i (borrowed). */
size_t fake_nreq(fake_server *fs);
const fake_req *fake_req_at(fake_server *fs, size_t i);
/* Requests whose path ends with suffix. */
size_t fake_count(fake_server *fs, const char *suffix);
/* Connections opened (transports made). */
int fake_connections(fake_server *fs);
/* The most requests to paths ending with suffix in flight at once, overall
 * and for one run (run_id NULL: any).  log-batch requests holding params or
 * tags count under "<path>#kv" (and not under the path). */
int fake_max_inflight(fake_server *fs, const char *suffix, const char *run_id);

/* What the server holds. */
size_t fake_runs(fake_server *fs);
/* The server id of the run whose tag key has value, or NULL (borrowed). */
const char *fake_run_by_tag(fake_server *fs, const char *key, const char *value);
/* Runs carrying the tag (duplicates show as > 1). */
size_t fake_runs_with_tag(fake_server *fs, const char *key, const char *value);
/* Points of metric key stored for run, params/tags values (NULL if none),
 * the run's status ("RUNNING", "FINISHED", ...). */
size_t fake_metric_points(fake_server *fs, const char *run, const char *key);
/* Point i (in the order stored) of metric key of run: 1 and its value, step
 * and timestamp (each may be NULL), or 0 when there is no such point. */
int fake_metric_get(fake_server *fs, const char *run, const char *key, size_t i, double *value,
                    int64_t *step, int64_t *ts);
/* How many distinct metric keys of run start with prefix. */
size_t fake_metric_keys(fake_server *fs, const char *run, const char *prefix);
const char *fake_param(fake_server *fs, const char *run, const char *key);
const char *fake_tag(fake_server *fs, const char *run, const char *key);
const char *fake_status(fake_server *fs, const char *run);
size_t fake_inputs(fake_server *fs, const char *run);
/* Metric points received for run in log-batch requests, duplicates
 * included (what the server stored is fake_metric_points). */
size_t fake_points_received(fake_server *fs, const char *run);
/* Live (not deleted) runs carrying the tag. */
size_t fake_live_runs_with_tag(fake_server *fs, const char *key, const char *value);

/* The transport maker: new_transport = fake_transport_new, transport_user =
 * the fake server. */
mlo_transport *fake_transport_new(const mlo_transport_opts *o, void *user);

#endif /* MLO_FAKE_TRANSPORT_H */
