/*
 * mlo_requests.c - one request of the sender and the meaning of its answer
 * (mlo_requests.h).
 *
 * A batch the server refuses as invalid (400) stores nothing: it is split in
 * halves and resent until the offending entries stand alone; those are
 * reported and counted as failed, every other entry is delivered.  A
 * transient failure (mlo__retry_permanent says which are not) is returned
 * to the caller when it keeps an outbox (the stage is sent again later,
 * resending is safe), and counted as failed without one.
 *
 * Reports go through the error callback at once, or, on an in-flight
 * worker's thread, into the job's buffer for the sender's thread (defer).
 */
#include "mlo_requests.h"

#include "mlo_api_read.h"
#include "mlo_retry.h"
#include "mlo_sender.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void count_sent(mlo_reqctx *x, const mlo_rec *const *recs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (recs[i]->size & MLO_SENDER_ADOPTED)
            x->adopted++;
        else
            x->sent++;
    }
}

/* Deferred reports of one job: at most this much text (the callback is
 * rate-limited to 20 messages a second anyway; the counters count all). */
#define DEFER_MAX (32u * 1024u)

/* Reports a failure found while sending: at once on the sender's thread, or
 * queued in the job for it (a worker). */
static void cx_report(mlo_reqctx *x, int st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void cx_report(mlo_reqctx *x, int st, const char *fmt, ...) {
    if (!x->env->cfg->error_fn)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!x->defer) {
        mlo__env_report(x->env, st, 1, "%s", msg);
        return;
    }
    int32_t s32 = st;
    if (x->defer->len < DEFER_MAX && mlo__buf_append(x->defer, &s32, sizeof s32) == 0 &&
        mlo__buf_append(x->defer, msg, strlen(msg) + 1) != 0)
        x->defer->len -= sizeof s32; /* out of memory: the message is lost, not the count */
}

/* Sends recs[0..n) of the run with server id sid; on a 400 splits to
 * isolate the bad entries.  MLO_OK, or a transient status (keep only). */
int mlo__requests_batch(mlo_reqctx *x, const char *sid, const mlo_rec *const *recs, size_t n) {
    if (n == 0)
        return MLO_OK;
    mlo_api_error e;
    mlo__api_set_deadline(x->api, mlo__env_abort_at(x->env));
    int st = mlo__api_log_batch(x->api, sid, recs, n, &e);
    if (st == MLO_OK) {
        count_sent(x, recs, n);
        return MLO_OK;
    }
    if (st == MLO_ERR_SERVER_INVALID && n > 1) {
        size_t h = n / 2;
        int a = mlo__requests_batch(x, sid, recs, h);
        if (a != MLO_OK)
            return a;
        return mlo__requests_batch(x, sid, recs + h, n - h);
    }
    if (!mlo__retry_permanent(st) && x->keep)
        return st;
    x->failed += n;
    if (n == 1) {
        const mlo_rec *r = recs[0];
        const char *kind = r->type == MLO_REC_METRIC  ? "metric"
                           : r->type == MLO_REC_PARAM ? "param"
                                                      : "tag";
        cx_report(x, st, "run %s: %s \"%.250s\" refused: %s", sid, kind, mlo__payload_staged_key(r),
                  e.message[0] ? e.message : mlo_strerror(st));
    } else {
        cx_report(x, st, "run %s: %zu events not delivered: %s", sid, n,
                  e.message[0] ? e.message : mlo_strerror(st));
    }
    return MLO_OK;
}

/* runs/update for an END_RUN record. */
int mlo__requests_end(mlo_reqctx *x, const char *sid, const mlo_rec *r) {
    mlo_api_error e;
    mlo__api_set_deadline(x->api, mlo__env_abort_at(x->env));
    int st = mlo__api_update_run(x->api, sid, (int)r->value, r->timestamp, &e);
    if (st == MLO_OK) {
        count_sent(x, &r, 1);
        return MLO_OK;
    }
    if (!mlo__retry_permanent(st) && x->keep)
        return st;
    x->failed++;
    cx_report(x, st, "run %s: end run failed: %s", sid,
              e.message[0] ? e.message : mlo_strerror(st));
    return MLO_OK;
}

/* runs/log-inputs for a DATASET record (key = name) whose payload is ds. */
int mlo__requests_dataset(mlo_reqctx *x, const char *sid, const mlo_rec *r,
                          const mlo_dataset_payload *ds) {
    mlo_api_error e;
    memset(&e, 0, sizeof e);
    mlo__api_set_deadline(x->api, mlo__env_abort_at(x->env));
    int st = mlo__api_log_inputs(x->api, sid, mlo__payload_staged_key(r), ds->digest,
                                 ds->source_type, ds->source, ds->context, &e);
    if (st == MLO_OK) {
        count_sent(x, &r, 1);
        return MLO_OK;
    }
    if (!mlo__retry_permanent(st) && x->keep)
        return st;
    x->failed++;
    cx_report(x, st, "run %s: dataset \"%.250s\" (digest %s) refused: %s", sid,
              mlo__payload_staged_key(r), ds->digest, e.message[0] ? e.message : mlo_strerror(st));
    return MLO_OK;
}

/* ---- copies of a run created late --------------------------------------------- */

static int empty_copy(const mlo_read_run *r, const char *lid) {
    if (r->nmetrics || r->nparams || r->ndatasets)
        return 0;
    for (size_t i = 0; i < r->ntags; i++) {
        const char *k = r->tags[i].key;
        if (strncmp(k, "mlflow.", 7) && strcmp(k, "mlo.local_id"))
            return 0;
        if (!strcmp(k, "mlo.local_id") && strcmp(r->tags[i].value, lid))
            return 0;
    }
    return 1;
}

void mlo__requests_sweep(mlo_reqctx *x, const char *exp, const char *lid, const char *sid) {
    char filter[128];
    snprintf(filter, sizeof filter, "tags.`mlo.local_id` = '%.32s'", lid);
    mlo__api_set_deadline(x->api, mlo__env_abort_at(x->env));
    mlo_read_run *runs = NULL;
    size_t n = 0;
    mlo_api_error e;
    memset(&e, 0, sizeof e);
    int st = mlo__api_read_search(x->api, exp ? exp : "0", filter, 100, &runs, &n, &e);
    if (st != MLO_OK) {
        cx_report(x, st, "run %s: cannot look for copies created late: %s", sid,
                  e.message[0] ? e.message : mlo_strerror(st));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const mlo_read_run *r = &runs[i];
        if (!r->run_id || !strcmp(r->run_id, sid))
            continue;
        if (!empty_copy(r, lid)) {
            cx_report(x, MLO_ERR_ALREADY_EXISTS,
                      "run %s has a copy %s (same mlo.local_id) that holds data: left alone", sid,
                      r->run_id);
            continue;
        }
        st = mlo__api_delete_run(x->api, r->run_id, &e);
        if (st == MLO_OK) {
            cx_report(x, MLO_WARN_RETRY,
                      "run %s: deleted the empty copy %s the server created late", sid, r->run_id);
            continue;
        }
        /* deletion refused: end it, and say what it is */
        int a = mlo__api_set_tag(x->api, r->run_id, "mlo.duplicate_of", sid, &e);
        int b = mlo__api_update_run(x->api, r->run_id, MLO_RUN_KILLED, -1, &e);
        cx_report(x, a == MLO_OK && b == MLO_OK ? MLO_WARN_RETRY : b,
                  "run %s: the empty copy %s the server created late could not be deleted; "
                  "%s",
                  sid, r->run_id,
                  a == MLO_OK && b == MLO_OK ? "ended as KILLED, tagged mlo.duplicate_of"
                                             : "left as it is");
    }
    mlo__api_read_runs_free(runs, n);
}
