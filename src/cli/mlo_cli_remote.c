/*
 * mlo_cli_remote.c - runs read from a tracking server into the tool's run
 * model (mlo_cli.h), through the library's REST layer: the configuration
 * resolver (MLFLOW_TRACKING_* variables: credentials, TLS, retries), the api
 * object and its transport, and the read calls of src/mlo_api_read.c.
 *
 * Only cli_remote_open builds library objects (mlo__config_resolve,
 * mlo__api_new): when their construction changes, that function is the one
 * place to adapt.
 *
 * The tool fails fast where a logging client would wait: unless the
 * MLFLOW_HTTP_REQUEST_* variables say otherwise, a call is tried three
 * times (retries after 1 s and 2 s, no jitter) with 30 s per attempt.
 *
 * Threads: one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "mlo_api.h"
#include "mlo_api_read.h"
#include "mlo_cli.h"
#include "mlo_config.h"
#include "mlo_env.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ARTIFACT_DEPTH 16

struct cli_remote {
    mlo_config cfg;
    mlo_env env; /* the tool's own: no callback, its counters unused */
    mlo_api *api;
    char *where; /* the URI without user info, for messages */
};

/* The URI for messages: "scheme://user:pass@host/..." loses "user:pass@". */
static char *uri_for_messages(const char *uri) {
    const char *s = strstr(uri, "://");
    const char *host = s ? s + 3 : uri;
    const char *at = strchr(host, '@'), *slash = strchr(host, '/');
    if (!at || (slash && slash < at))
        return xstrdup(uri);
    mlo_buf b = {0};
    mlo__buf_printf(&b, "%.*s%s", (int)(host - uri), uri, at + 1);
    char *r = xstrdup(b.data ? b.data : uri);
    mlo__buf_free(&b);
    return r;
}

static double env_or(const char *name, double dflt) {
    const char *v = getenv(name);
    return v && *v ? -1.0 : dflt; /* -1: the library reads the variable */
}

cli_remote *cli_remote_open(const char *uri, char *err, size_t errlen) {
    mlo_options_t *o = mlo_options_new();
    if (!o) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cli_remote *rm = xcalloc(1, sizeof *rm);
    rm->where = uri_for_messages(uri);
    int st = mlo_options_set_tracking_uri(o, uri);
    if (st != MLO_OK) {
        snprintf(err, errlen, "%s: not a tracking URI (http:// or https://): %s", rm->where,
                 mlo_strerror(st));
        mlo_options_free(o);
        return NULL;
    }
    mlo_options_set_retries(o, (int)env_or("MLFLOW_HTTP_REQUEST_MAX_RETRIES", 2),
                            env_or("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", 1.0),
                            env_or("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", 0),
                            env_or("MLFLOW_HTTP_REQUEST_TIMEOUT", 30));
    char cerr[512] = "";
    st = mlo__config_resolve(o, &rm->cfg, cerr, sizeof cerr);
    mlo_options_free(o);
    if (st != MLO_OK) {
        snprintf(err, errlen, "%s", cerr[0] ? cerr : mlo_strerror(st));
        return NULL;
    }
    mlo__env_init(&rm->env, &rm->cfg);
    rm->api = mlo__api_new(&rm->env);
    if (!rm->api) {
        mlo__config_free(&rm->cfg);
        snprintf(err, errlen, "cannot set up the connection to %s (out of memory)", rm->where);
        return NULL;
    }
    return rm;
}

void cli_remote_close(cli_remote *rm) {
    if (!rm)
        return;
    mlo__api_free(rm->api);
    mlo__config_free(&rm->cfg);
    xfree(rm->where);
    xfree(rm);
}

static void fail(const cli_remote *rm, const mlo_api_error *e, char *err, size_t errlen) {
    snprintf(err, errlen, "%s: %s", rm->where,
             e->message[0] ? e->message : mlo_strerror(e->status));
}

/* Folds a run read from the server into s. */
static int add_run(cli_remote *rm, store *s, const mlo_read_run *rr, const char *asked,
                   bool history, run **out, char *err, size_t errlen) {
    run *r = cli_store_run(s, rr->run_id ? rr->run_id : asked);
    r->keep_hist = history;
    if (rr->run_name && *rr->run_name)
        cli_set_str(&r->name, rr->run_name);
    if (rr->experiment_id)
        cli_set_str(&r->exp_id, rr->experiment_id);
    r->started = true;
    r->start = rr->start_time;
    r->status = rr->status;
    r->ended = rr->status > 0 && rr->status != MLO_RUN_RUNNING;
    r->end = rr->end_time;
    for (size_t i = 0; i < rr->nparams; i++)
        cli_kvs_set(&r->params, rr->params[i].key, rr->params[i].value);
    for (size_t i = 0; i < rr->ntags; i++)
        cli_kvs_set(&r->tags, rr->tags[i].key, rr->tags[i].value);
    const char *parent = cli_kvs_get(&r->tags, "mlflow.parentRunId");
    if (parent)
        cli_set_str(&r->parent, parent);
    for (size_t i = 0; i < rr->nmetrics; i++) {
        const mlo_read_metric *m = &rr->metrics[i];
        if (!history) {
            cli_run_point(r, m->key, (point){m->last.step, m->last.timestamp, m->last.value});
            continue;
        }
        mlo_read_point *pts = NULL;
        size_t n = 0;
        mlo_api_error e;
        if (mlo__api_read_history(rm->api, r->id, m->key, &pts, &n, &e) != MLO_OK) {
            fail(rm, &e, err, errlen);
            return -1;
        }
        cli_run_metric(r, m->key, true);
        for (size_t k = 0; k < n; k++)
            cli_run_point(r, m->key, (point){pts[k].step, pts[k].timestamp, pts[k].value});
        free(pts);
    }
    for (size_t i = 0; i < rr->ndatasets; i++) {
        const mlo_read_dataset *d = &rr->datasets[i];
        if (r->nds == r->capds) {
            r->capds = r->capds ? r->capds * 2 : 4;
            r->ds = xrealloc(r->ds, r->capds * sizeof *r->ds);
        }
        dataset *o = &r->ds[r->nds++];
        o->name = xstrdup(d->name);
        o->digest = xstrdup(d->digest);
        o->source_type = xstrdup(d->source_type);
        o->source = xstrdup(d->source);
        o->context = xstrdup(d->context ? d->context : "");
    }
    if (out)
        *out = r;
    return 0;
}

int cli_remote_get_run(cli_remote *rm, store *s, const char *run_id, bool history, run **out,
                       char *err, size_t errlen) {
    mlo_read_run rr;
    mlo_api_error e;
    int st = mlo__api_read_run(rm->api, run_id, &rr, &e);
    if (st == MLO_ERR_NOT_FOUND) {
        snprintf(err, errlen, "no run '%s' on %s", run_id, rm->where);
        return -2;
    }
    if (st != MLO_OK) {
        fail(rm, &e, err, errlen);
        return -1;
    }
    int rc = add_run(rm, s, &rr, run_id, history, out, err, errlen);
    mlo__api_read_run_free(&rr);
    return rc;
}

int cli_remote_search(cli_remote *rm, store *s, const char *exp, size_t max_runs, bool history,
                      char *err, size_t errlen) {
    mlo_api_error e;
    char *exp_id = NULL, *exp_name = NULL;
    int st = MLO_OK;
    if (!exp && rm->cfg.experiment_id)
        exp_id = strdup(rm->cfg.experiment_id);
    else if (exp || rm->cfg.experiment_name) {
        const char *name = exp ? exp : rm->cfg.experiment_name;
        st = mlo__api_get_experiment_by_name(rm->api, name, &exp_id, &e);
        if (st == MLO_ERR_NOT_FOUND) {
            snprintf(err, errlen, "no experiment '%s' on %s", name, rm->where);
            return -1;
        }
        exp_name = strdup(name);
    } else
        exp_id = strdup("0");
    if (st != MLO_OK || !exp_id) {
        if (st == MLO_OK)
            snprintf(err, errlen, "out of memory");
        else
            fail(rm, &e, err, errlen);
        free(exp_name);
        return -1;
    }
    if (!exp_name && mlo__api_read_experiment(rm->api, exp_id, &exp_name, &e) != MLO_OK)
        exp_name = NULL; /* shown as "id N" */
    mlo_read_run *runs = NULL;
    size_t n = 0;
    st = mlo__api_read_search(rm->api, exp_id, NULL, max_runs, &runs, &n, &e);
    int rc = 0;
    if (st != MLO_OK) {
        fail(rm, &e, err, errlen);
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        run *r = NULL;
        rc = add_run(rm, s, &runs[i], runs[i].run_id ? runs[i].run_id : "?", history, &r, err,
                     errlen);
        if (rc == 0 && exp_name)
            cli_set_str(&r->exp_name, exp_name);
    }
    mlo__api_read_runs_free(runs, n);
    free(exp_id);
    free(exp_name);
    return rc;
}

static int list_dir(cli_remote *rm, run *r, const char *path, int depth, size_t max, size_t *cap,
                    char *err, size_t errlen) {
    mlo_read_file *files = NULL;
    size_t n = 0;
    mlo_api_error e;
    if (mlo__api_read_artifacts(rm->api, r->id, path, &files, &n, &e) != MLO_OK) {
        fail(rm, &e, err, errlen);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0 && r->nart < max; i++) {
        if (files[i].is_dir) {
            if (depth < MAX_ARTIFACT_DEPTH)
                rc = list_dir(rm, r, files[i].path, depth + 1, max, cap, err, errlen);
            continue;
        }
        if (r->nart == *cap) {
            *cap = *cap ? *cap * 2 : 16;
            r->art = xrealloc(r->art, *cap * sizeof *r->art);
        }
        artifact *a = &r->art[r->nart++];
        a->path = xstrdup(files[i].path);
        a->size = files[i].size;
        a->state = ART_UPLOADED;
        a->detail = xstrdup("");
    }
    mlo__api_read_files_free(files, n);
    return rc;
}

int cli_remote_artifacts(cli_remote *rm, run *r, size_t max, char *err, size_t errlen) {
    size_t cap = r->nart;
    r->art_known = true;
    return list_dir(rm, r, "", 0, max, &cap, err, errlen);
}

int cli_remote_model_versions(cli_remote *rm, run *r, char *err, size_t errlen) {
    mlo_read_model_version *v = NULL;
    size_t n = 0;
    mlo_api_error e;
    if (mlo__api_read_model_versions(rm->api, r->id, &v, &n, &e) != MLO_OK) {
        fail(rm, &e, err, errlen);
        return -1;
    }
    r->mv_known = true;
    r->mv = n ? xcalloc(n, sizeof *r->mv) : NULL;
    r->nmv = n;
    for (size_t i = 0; i < n; i++) {
        modelver *m = &r->mv[i];
        m->name = xstrdup(v[i].name);
        m->version = xstrdup(v[i].version);
        m->status = xstrdup(v[i].status ? v[i].status : "");
        size_t len = 1;
        for (size_t k = 0; k < v[i].naliases; k++)
            len += strlen(v[i].aliases[k]) + 2;
        m->aliases = xmalloc(len);
        m->aliases[0] = '\0';
        for (size_t k = 0; k < v[i].naliases; k++) {
            if (k)
                strcat(m->aliases, ", ");
            strcat(m->aliases, v[i].aliases[k]);
        }
    }
    mlo__api_read_model_versions_free(v, n);
    return 0;
}
