/*
 * mlo_api.c - the MLflow REST calls mlo makes, and the meaning of the
 * server's answers.
 *
 * The only file that includes the generated protobuf-c code: every request is
 * built as an MLflow message and encoded by the generic codec (mlo_pbjson.c);
 * every answer is decoded into its Response message.  Error answers are read
 * as {error_code, message} when they are JSON, and classified by HTTP status
 * when they are not (an HTML page from a proxy, a wrong URL).
 *
 * Threads: an mlo_api belongs to one thread at a time (it owns an mlo_http,
 * that is one transport, and reusable buffers).
 */
#define _GNU_SOURCE
#include "mlo_api_int.h"
#include "mlo_http.h"
#include "mlo_payload.h"
#include "mlo_pbjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API "/api/2.0/mlflow/"

static void on_retry(void *ctx, long code, const char *msg) {
    mlo_api *a = ctx;
    mlo__env_stat(a->env, MLO_STAT_RETRIED, 1);
    if (a->env->on_retry) {
        a->env->on_retry(a->env->on_retry_user, code, msg);
        return;
    }
    /* one warning per spell of retries (every request of every thread may
     * be retrying during an outage); the counter counts them all */
    if (!atomic_exchange_explicit(&a->env->retrying, 1, memory_order_relaxed))
        mlo__env_report(a->env, MLO_WARN_RETRY, 1, "retrying (HTTP %ld): %s", code, msg);
}

static int should_abort(void *ctx) {
    mlo_api *a = ctx;
    int64_t d = a->deadline_ns;
    /* close may set the env's deadline while a request started earlier is
     * still in flight */
    int64_t ab = mlo__env_abort_at(a->env);
    if (ab && (!d || ab < d))
        d = ab;
    return d && mlo__env_mono(a->env) >= d;
}

/* Whether the server can be reached: a refused or timed-out connection
 * says no until the next answer. */
static void on_attempt(void *ctx, int outcome) {
    mlo_api *a = ctx;
    if (outcome == MLO_XF_RESPONSE)
        mlo__env_set_net_down(a->env, 0);
    else if (outcome == MLO_XF_CONNECT || outcome == MLO_XF_TIMEOUT)
        mlo__env_set_net_down(a->env, 1);
}

mlo_api *mlo__api_new(mlo_env *env) {
    const mlo_config *cfg = env->cfg;
    if (!cfg->tracking_uri)
        return NULL;
    mlo_api *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->env = env;
    char ua[64];
    snprintf(ua, sizeof ua, "mlo/%s", mlo_version());
    mlo_http_config hc = {
        .base_uri = cfg->tracking_uri,
        .token = cfg->token,
        .user = cfg->user,
        .password = cfg->password,
        .insecure_tls = cfg->insecure_tls,
        .ca_path = cfg->ca_path,
        .client_cert_path = cfg->client_cert_path,
        .max_retries = cfg->max_retries,
        .backoff_factor_s = cfg->backoff_factor_s,
        .jitter_s = cfg->jitter_s,
        .timeout_s = cfg->timeout_s,
        .respect_retry_after = cfg->respect_retry_after,
        .user_agent = ua,
        .on_retry = on_retry,
        .should_abort = should_abort,
        .on_attempt = on_attempt,
        .ctx = a,
        .new_transport = cfg->new_transport,
        .transport_user = cfg->transport_user,
        .clock = cfg->clock,
    };
    a->http = mlo__http_new(&hc);
    a->metrics = calloc(MLO_BATCH_MAX_METRICS, sizeof *a->metrics);
    a->pmetrics = calloc(MLO_BATCH_MAX_METRICS, sizeof *a->pmetrics);
    a->params = calloc(MLO_BATCH_MAX_PARAMS, sizeof *a->params);
    a->pparams = calloc(MLO_BATCH_MAX_PARAMS, sizeof *a->pparams);
    a->tags = calloc(MLO_BATCH_MAX_TAGS, sizeof *a->tags);
    a->ptags = calloc(MLO_BATCH_MAX_TAGS, sizeof *a->ptags);
    if (!a->http || !a->metrics || !a->pmetrics || !a->params || !a->pparams || !a->tags ||
        !a->ptags) {
        mlo__api_free(a);
        return NULL;
    }
    return a;
}

void mlo__api_free(mlo_api *a) {
    if (!a)
        return;
    mlo__http_free(a->http);
    mlo__buf_free(&a->body);
    mlo__buf_free(&a->query);
    mlo__buf_free(&a->path);
    free(a->metrics);
    free(a->pmetrics);
    free(a->params);
    free(a->pparams);
    free(a->tags);
    free(a->ptags);
    free(a);
}

void mlo__api_set_deadline(mlo_api *a, int64_t deadline_ns) {
    a->deadline_ns = deadline_ns;
}

void mlo__api_watch_uploads(mlo_api *a, _Atomic int64_t *sent) {
    a->upload_sent = sent;
}

/* ---- answers ---------------------------------------------------------------- */

static int status_for_code(const char *ec, long http) {
    if (ec && *ec) {
        if (!strcmp(ec, "INVALID_PARAMETER_VALUE") || !strcmp(ec, "BAD_REQUEST") ||
            !strcmp(ec, "INVALID_STATE") || !strcmp(ec, "MALFORMED_REQUEST"))
            return MLO_ERR_SERVER_INVALID;
        if (!strcmp(ec, "RESOURCE_ALREADY_EXISTS"))
            return MLO_ERR_ALREADY_EXISTS;
        if (!strcmp(ec, "RESOURCE_DOES_NOT_EXIST") || !strcmp(ec, "ENDPOINT_NOT_FOUND"))
            return MLO_ERR_NOT_FOUND;
        if (!strcmp(ec, "PERMISSION_DENIED") || !strcmp(ec, "UNAUTHENTICATED"))
            return MLO_ERR_PERMISSION;
        if (!strcmp(ec, "REQUEST_LIMIT_EXCEEDED") || !strcmp(ec, "RESOURCE_EXHAUSTED"))
            return MLO_ERR_RATE_LIMITED;
        if (!strcmp(ec, "INTERNAL_ERROR") || !strcmp(ec, "TEMPORARILY_UNAVAILABLE"))
            return MLO_ERR_SERVER;
    }
    if (http == 401 || http == 403)
        return MLO_ERR_PERMISSION;
    if (http == 429)
        return MLO_ERR_RATE_LIMITED;
    if (http == 408 || http >= 500)
        return MLO_ERR_SERVER;
    if (ec && *ec && http == 400)
        return MLO_ERR_SERVER_INVALID;
    if (ec && *ec && http == 404)
        return MLO_ERR_NOT_FOUND;
    return MLO_ERR_PROTOCOL;
}

static int looks_json(const mlo_http_result *r) {
    return strstr(r->content_type, "json") != NULL || (r->body.len && (r->body.data[0] == '{'));
}

/* Turns a transport result into a status; fills e. */
int mlo__api_classify(const mlo_http_result *r, const char *what, mlo_api_error *e) {
    memset(e, 0, sizeof *e);
    e->http_code = r->http_code;
    if (r->status != MLO_OK) {
        e->status = r->status;
        snprintf(e->message, sizeof e->message, "%s: %s%s%s", what, mlo_strerror(r->status),
                 r->message[0] ? ": " : "", r->message);
        return e->status;
    }
    if (r->http_code >= 200 && r->http_code < 300)
        return e->status = MLO_OK;
    const char *smsg = "";
    Mlflow__ErrorResponse *er = NULL;
    if (looks_json(r)) {
        ProtobufCMessage *m = NULL;
        if (mlo__pbjson_decode(&mlflow__error_response__descriptor,
                               r->body.data ? r->body.data : "", r->body.len, &m, NULL, 0) == 0)
            er = (Mlflow__ErrorResponse *)m;
    }
    if (er && er->error_code)
        snprintf(e->error_code, sizeof e->error_code, "%s", er->error_code);
    if (er && er->message)
        smsg = er->message;
    e->status = status_for_code(e->error_code, r->http_code);
    if (e->error_code[0])
        snprintf(e->message, sizeof e->message, "%s: HTTP %ld %s: %.400s", what, r->http_code,
                 e->error_code, smsg);
    else
        snprintf(e->message, sizeof e->message, "%s: HTTP %ld with a non-JSON answer (%.40s)%s",
                 what, r->http_code, r->content_type[0] ? r->content_type : "no content type",
                 r->http_code == 404 || r->http_code == 405
                     ? ": is the tracking URI an MLflow server?"
                     : ": a proxy in the way, or not an MLflow server?");
    if (er)
        protobuf_c_message_free_unpacked(&er->base, NULL);
    return e->status;
}

/* The request path: API<path>, or path itself when it starts with '/'. */
static const char *full_path(mlo_api *a, const char *path) {
    if (path[0] == '/')
        return path;
    mlo__buf_reset(&a->path);
    if (mlo__buf_appends(&a->path, API) || mlo__buf_appends(&a->path, path))
        return NULL;
    return a->path.data;
}

int mlo__api_no_memory(mlo_api_error *e, const char *what) {
    memset(e, 0, sizeof *e);
    e->status = MLO_ERR_NO_MEMORY;
    snprintf(e->message, sizeof e->message, "%s: out of memory", what);
    return e->status;
}

/* Decodes a 2xx answer into *resp when rdesc is given. */
static int finish(mlo_api *a, mlo_http_result *r, const char *what,
                  const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **resp,
                  mlo_api_error *e) {
    mlo__env_stat(a->env, MLO_STAT_REQUESTS, 1 + (uint64_t)r->retries);
    int st = mlo__api_classify(r, what, e);
    if (st == MLO_OK && atomic_load_explicit(&a->env->retrying, memory_order_relaxed))
        atomic_store_explicit(&a->env->retrying, 0, memory_order_relaxed); /* the spell is over */
    if (st == MLO_OK && !rdesc) {
        /* MLflow answers every successful call with a JSON object ("{}" for
         * writes).  A 2xx with anything else (a proxy's login page, a
         * truncated or garbage body) is not an acknowledgement: the server
         * may have stored nothing.  Any object will do: unknown members are
         * ignored. */
        ProtobufCMessage *m = NULL;
        int rc = mlo__pbjson_decode(&mlflow__error_response__descriptor,
                                    r->body.data ? r->body.data : "", r->body.len, &m, NULL, 0);
        if (rc == -2) {
            /* the server answered 2xx; the body could not be checked for want
             * of memory.  A JSON answer is taken as the acknowledgement it
             * almost surely is (sending again could store twice) */
            if (!strstr(r->content_type, "json"))
                st = mlo__api_no_memory(e, what);
        } else if (rc != 0) {
            e->status = st = MLO_ERR_PROTOCOL;
            snprintf(e->message, sizeof e->message,
                     "%s: HTTP %ld with a body that is not a JSON object (%.40s): a proxy in the "
                     "way, or not an MLflow server?",
                     what, r->http_code, r->content_type[0] ? r->content_type : "no content type");
        } else {
            protobuf_c_message_free_unpacked(m, NULL);
        }
    }
    if (st == MLO_OK && rdesc) {
        char err[128] = "";
        int rc = mlo__pbjson_decode(rdesc, r->body.data ? r->body.data : "", r->body.len, resp, err,
                                    sizeof err);
        if (rc == -2) {
            st = mlo__api_no_memory(e, what);
        } else if (rc != 0) {
            e->status = st = MLO_ERR_PROTOCOL;
            snprintf(e->message, sizeof e->message, "%s: unreadable answer: %s", what, err);
        }
    }
    mlo__http_result_free(r);
    return st;
}

int mlo__api_post(mlo_api *a, const char *path, const ProtobufCMessage *msg,
                  const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **resp,
                  mlo_api_error *e) {
    mlo__buf_reset(&a->body);
    const char *full = full_path(a, path);
    if (!full || mlo__pbjson_encode(msg, &a->body) != 0)
        return mlo__api_no_memory(e, path);
    mlo_http_req req = MLO_HTTP_REQ_INIT;
    req.method = "POST";
    req.path = full;
    req.body = a->body.data;
    req.len = a->body.len;
    req.deadline_ns = a->deadline_ns;
    req.not_idempotent = a->not_idempotent;
    a->not_idempotent = 0;
    mlo_http_result r;
    mlo__http_request(a->http, &req, &r);
    return finish(a, &r, path, rdesc, resp, e);
}

int mlo__api_get(mlo_api *a, const char *path, const char *query,
                 const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **resp,
                 mlo_api_error *e) {
    const char *full = full_path(a, path);
    if (!full)
        return mlo__api_no_memory(e, path);
    mlo_http_result r;
    mlo__http_call(a->http, "GET", full, query, NULL, 0, a->deadline_ns, &r);
    return finish(a, &r, path, rdesc, resp, e);
}

int mlo__api_query(mlo_api *a, mlo_buf *q, const char *key, const char *val) {
    if (!val)
        return 0;
    if ((q->len && mlo__buf_appendc(q, '&')) || mlo__buf_appends(q, key) ||
        mlo__buf_appendc(q, '=') || mlo__http_urlencode(a->http, val, q))
        return -1;
    return 0;
}

static int post(mlo_api *a, const char *path, const ProtobufCMessage *msg,
                const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **resp,
                mlo_api_error *e) {
    return mlo__api_post(a, path, msg, rdesc, resp, e);
}

static int get(mlo_api *a, const char *path, const char *qkey, const char *qval,
               const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **resp, mlo_api_error *e) {
    mlo__buf_reset(&a->query);
    if (mlo__api_query(a, &a->query, qkey, qval))
        return mlo__api_no_memory(e, path);
    return mlo__api_get(a, path, a->query.data, rdesc, resp, e);
}

int mlo__api_missing(mlo_api_error *e, const char *what) {
    e->status = MLO_ERR_PROTOCOL;
    snprintf(e->message, sizeof e->message, "%s: the answer lacks the expected fields", what);
    return e->status;
}

int mlo__api_dup(char **out, const char *s, mlo_api_error *e) {
    *out = strdup(s);
    if (!*out) {
        e->status = MLO_ERR_NO_MEMORY;
        return e->status;
    }
    return MLO_OK;
}

/* ---- calls ------------------------------------------------------------------ */

int mlo__api_get_experiment_by_name(mlo_api *a, const char *name, char **exp_id, mlo_api_error *e) {
    ProtobufCMessage *m = NULL;
    int st = get(a, "experiments/get-by-name", "experiment_name", name,
                 &mlflow__get_experiment_by_name__response__descriptor, &m, e);
    if (st != MLO_OK)
        return st;
    Mlflow__GetExperimentByName__Response *r = (Mlflow__GetExperimentByName__Response *)m;
    st = r->experiment && r->experiment->experiment_id
             ? mlo__api_dup(exp_id, r->experiment->experiment_id, e)
             : mlo__api_missing(e, "experiments/get-by-name");
    protobuf_c_message_free_unpacked(m, NULL);
    return st;
}

int mlo__api_create_experiment(mlo_api *a, const char *name, char **exp_id, mlo_api_error *e) {
    Mlflow__CreateExperiment req = MLFLOW__CREATE_EXPERIMENT__INIT;
    req.name = (char *)name;
    ProtobufCMessage *m = NULL;
    int st = post(a, "experiments/create", &req.base,
                  &mlflow__create_experiment__response__descriptor, &m, e);
    if (st != MLO_OK)
        return st;
    Mlflow__CreateExperiment__Response *r = (Mlflow__CreateExperiment__Response *)m;
    st = r->experiment_id ? mlo__api_dup(exp_id, r->experiment_id, e)
                          : mlo__api_missing(e, "experiments/create");
    protobuf_c_message_free_unpacked(m, NULL);
    return st;
}

int mlo__api_create_run(mlo_api *a, const char *exp_id, const char *run_name, int64_t start_ms,
                        const mlo_kv *tags, size_t ntags, char **run_id, mlo_api_error *e) {
    Mlflow__CreateRun req = MLFLOW__CREATE_RUN__INIT;
    req.experiment_id = (char *)exp_id;
    req.run_name = (char *)run_name;
    req.has_start_time = 1;
    req.start_time = start_ms;
    for (size_t i = 0; i < ntags; i++)
        if (!strcmp(tags[i].key, "mlflow.user"))
            req.user_id = tags[i].value; /* as MLflow's client sends it */
    Mlflow__RunTag *t = calloc(ntags ? ntags : 1, sizeof *t);
    Mlflow__RunTag **pt = calloc(ntags ? ntags : 1, sizeof *pt);
    if (!t || !pt) {
        free(t);
        free(pt);
        memset(e, 0, sizeof *e);
        return e->status = MLO_ERR_NO_MEMORY;
    }
    for (size_t i = 0; i < ntags; i++) {
        mlflow__run_tag__init(&t[i]);
        t[i].key = tags[i].key;
        t[i].value = tags[i].value;
        pt[i] = &t[i];
    }
    req.n_tags = ntags;
    req.tags = pt;
    ProtobufCMessage *m = NULL;
    /* a lost answer must not create the run twice: the caller searches for
     * the run's mlo.local_id tag before trying again */
    a->not_idempotent = 1;
    int st = post(a, "runs/create", &req.base, &mlflow__create_run__response__descriptor, &m, e);
    free(t);
    free(pt);
    if (st != MLO_OK)
        return st;
    Mlflow__CreateRun__Response *r = (Mlflow__CreateRun__Response *)m;
    const char *id = r->run && r->run->info
                         ? (r->run->info->run_id ? r->run->info->run_id : r->run->info->run_uuid)
                         : NULL;
    st = id ? mlo__api_dup(run_id, id, e) : mlo__api_missing(e, "runs/create");
    protobuf_c_message_free_unpacked(m, NULL);
    return st;
}

int mlo__api_get_run_info(mlo_api *a, const char *run_id, char **exp_id, char **artifact_uri,
                          mlo_api_error *e) {
    ProtobufCMessage *m = NULL;
    int st = get(a, "runs/get", "run_id", run_id, &mlflow__get_run__response__descriptor, &m, e);
    if (st != MLO_OK)
        return st;
    Mlflow__GetRun__Response *r = (Mlflow__GetRun__Response *)m;
    const Mlflow__RunInfo *info = r->run ? r->run->info : NULL;
    if (!info || !info->experiment_id || (artifact_uri && !info->artifact_uri)) {
        st = mlo__api_missing(e, "runs/get");
    } else {
        st = exp_id ? mlo__api_dup(exp_id, info->experiment_id, e) : MLO_OK;
        if (st == MLO_OK && artifact_uri) {
            st = mlo__api_dup(artifact_uri, info->artifact_uri, e);
            if (st != MLO_OK && exp_id) {
                free(*exp_id);
                *exp_id = NULL;
            }
        }
    }
    protobuf_c_message_free_unpacked(m, NULL);
    return st;
}

int mlo__api_get_run(mlo_api *a, const char *run_id, char **exp_id, mlo_api_error *e) {
    return mlo__api_get_run_info(a, run_id, exp_id, NULL, e);
}

int mlo__api_log_inputs(mlo_api *a, const char *run_id, const char *name, const char *digest,
                        const char *source_type, const char *source, const char *context,
                        mlo_api_error *e) {
    Mlflow__Dataset ds = MLFLOW__DATASET__INIT;
    ds.name = (char *)name;
    ds.digest = (char *)digest;
    ds.source_type = (char *)source_type;
    ds.source = (char *)source;
    Mlflow__InputTag tag = MLFLOW__INPUT_TAG__INIT;
    Mlflow__InputTag *ptag = &tag;
    tag.key = "mlflow.data.context";
    tag.value = (char *)context;
    Mlflow__DatasetInput in = MLFLOW__DATASET_INPUT__INIT;
    in.dataset = &ds;
    if (context && *context) {
        in.n_tags = 1;
        in.tags = &ptag;
    }
    Mlflow__DatasetInput *pin = &in;
    Mlflow__LogInputs req = MLFLOW__LOG_INPUTS__INIT;
    req.run_id = (char *)run_id;
    req.n_datasets = 1;
    req.datasets = &pin;
    return post(a, "runs/log-inputs", &req.base, NULL, NULL, e);
}

int mlo__api_update_run(mlo_api *a, const char *run_id, int status, int64_t end_ms,
                        mlo_api_error *e) {
    Mlflow__UpdateRun req = MLFLOW__UPDATE_RUN__INIT;
    req.run_id = (char *)run_id;
    req.has_status = 1;
    req.status = (Mlflow__RunStatus)status;
    if (end_ms >= 0) {
        req.has_end_time = 1;
        req.end_time = end_ms;
    }
    return post(a, "runs/update", &req.base, NULL, NULL, e);
}

int mlo__api_delete_run(mlo_api *a, const char *run_id, mlo_api_error *e) {
    Mlflow__DeleteRun req = MLFLOW__DELETE_RUN__INIT;
    req.run_id = (char *)run_id;
    return post(a, "runs/delete", &req.base, NULL, NULL, e);
}

int mlo__api_set_tag(mlo_api *a, const char *run_id, const char *key, const char *value,
                     mlo_api_error *e) {
    Mlflow__SetTag req = MLFLOW__SET_TAG__INIT;
    req.run_id = (char *)run_id;
    req.key = (char *)key;
    req.value = (char *)value;
    return post(a, "runs/set-tag", &req.base, NULL, NULL, e);
}

static void build_batch(mlo_api *a, Mlflow__LogBatch *req, const char *run_id,
                        const mlo_rec *const *recs, size_t n) {
    mlflow__log_batch__init(req);
    req->run_id = (char *)run_id;
    size_t nm = 0, np = 0, nt = 0;
    for (size_t i = 0; i < n; i++) {
        const mlo_rec *r = recs[i];
        if (r->type == MLO_REC_METRIC && nm < MLO_BATCH_MAX_METRICS) {
            Mlflow__Metric *m = &a->metrics[nm];
            mlflow__metric__init(m);
            m->key = mlo__payload_staged_key(r);
            m->has_value = 1;
            m->value = r->value;
            m->has_timestamp = 1;
            m->timestamp = r->timestamp;
            m->has_step = 1;
            m->step = r->step;
            a->pmetrics[nm++] = m;
        } else if (r->type == MLO_REC_PARAM && np < MLO_BATCH_MAX_PARAMS) {
            Mlflow__Param *p = &a->params[np];
            mlflow__param__init(p);
            p->key = mlo__payload_staged_key(r);
            p->value = mlo__payload_staged_val(r);
            a->pparams[np++] = p;
        } else if (r->type == MLO_REC_TAG && nt < MLO_BATCH_MAX_TAGS) {
            Mlflow__RunTag *t = &a->tags[nt];
            mlflow__run_tag__init(t);
            t->key = mlo__payload_staged_key(r);
            t->value = mlo__payload_staged_val(r);
            a->ptags[nt++] = t;
        }
    }
    req->n_metrics = nm;
    req->metrics = a->pmetrics;
    req->n_params = np;
    req->params = a->pparams;
    req->n_tags = nt;
    req->tags = a->ptags;
}

int mlo__api_encode_log_batch(mlo_api *a, const char *run_id, const mlo_rec *const *recs, size_t n,
                              mlo_buf *out) {
    Mlflow__LogBatch req;
    build_batch(a, &req, run_id, recs, n);
    return mlo__pbjson_encode(&req.base, out) == 0 ? MLO_OK : MLO_ERR_NO_MEMORY;
}

int mlo__api_log_batch(mlo_api *a, const char *run_id, const mlo_rec *const *recs, size_t n,
                       mlo_api_error *e) {
    Mlflow__LogBatch req;
    build_batch(a, &req, run_id, recs, n);
    return post(a, "runs/log-batch", &req.base, NULL, NULL, e);
}

int mlo__api_search_run_by_tag(mlo_api *a, const char *exp_id, const char *key, const char *value,
                               char **run_id, mlo_api_error *e) {
    /* Only called with mlo's own tag keys and hex values: no quoting needed
     * beyond the backticks that let a key hold dots. */
    char filter[256];
    snprintf(filter, sizeof filter, "tags.`%s` = '%s'", key, value);
    Mlflow__SearchRuns req = MLFLOW__SEARCH_RUNS__INIT;
    char *ids[1] = {(char *)exp_id};
    req.n_experiment_ids = 1;
    req.experiment_ids = ids;
    req.filter = filter;
    req.has_max_results = 1;
    req.max_results = 1;
    ProtobufCMessage *m = NULL;
    int st = post(a, "runs/search", &req.base, &mlflow__search_runs__response__descriptor, &m, e);
    if (st != MLO_OK)
        return st;
    Mlflow__SearchRuns__Response *r = (Mlflow__SearchRuns__Response *)m;
    if (r->n_runs == 0) {
        memset(e, 0, sizeof *e);
        e->status = st = MLO_ERR_NOT_FOUND;
    } else {
        const Mlflow__RunInfo *info = r->runs[0]->info;
        const char *id = info ? (info->run_id ? info->run_id : info->run_uuid) : NULL;
        st = id ? mlo__api_dup(run_id, id, e) : mlo__api_missing(e, "runs/search");
    }
    protobuf_c_message_free_unpacked(m, NULL);
    return st;
}
