/*
 * mlo_api_read.c - the read calls of MLflow's tracking API that the `mlo`
 * tool makes (mlo_api_read.h): runs/get, runs/search, metrics/get-history,
 * experiments/get, artifacts/list, and the registry's model-versions/search.
 *
 * Same rules as mlo_api.c: every request is an MLflow message encoded by
 * mlo__api_post / mlo__api_get, every answer decoded into its Response
 * message; failures are classified into an mlo_api_error.  The answers are
 * copied into the plain structs of mlo_api_read.h and freed before
 * returning, so no protobuf type leaves this file.  Paged answers are
 * followed to the end (bounded: MAX_PAGES).
 *
 * Threads: as every mlo_api call, the thread that owns the api object.
 */
#define _GNU_SOURCE
#include "mlo_api_read.h"
#include "mlo_api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PAGES 100000 /* a server that hands out page tokens forever */

/* Copies of optional strings; *oom set when one could not be made. */
static char *dup_opt(const char *s, int *oom) {
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = 1;
    return d;
}

/* Array p (capacity *cap elements of size bytes) grown to hold need > *cap,
 * doubling from first: the new array, or NULL out of memory (p unchanged). */
static void *grow(void *p, size_t *cap, size_t need, size_t size, size_t first) {
    size_t nc = *cap ? *cap * 2 : first;
    while (nc < need)
        nc *= 2;
    void *g = realloc(p, nc * size);
    if (g)
        *cap = nc;
    return g;
}

/* What a page's answer goes to: take() copies what it keeps of message m
 * (MLO_OK, or a status with e set, e.g. by mlo__api_no_memory). */
typedef int (*page_take)(void *ctx, const ProtobufCMessage *m, const char *what, mlo_api_error *e);

/* The pages of a GET answer (descriptor d), followed to the end: query
 * parameters names[i]=values[i] (a NULL value leaves it out) and the page
 * token the previous answer gave (its field next_page_token, found by name). */
static int get_pages(mlo_api *a, const char *what, const char *const *names,
                     const char *const *values, size_t nparams, const ProtobufCMessageDescriptor *d,
                     page_take take, void *ctx, mlo_api_error *e) {
    const ProtobufCFieldDescriptor *next =
        protobuf_c_message_descriptor_get_field_by_name(d, "next_page_token");
    char *token = NULL;
    int st = MLO_OK;
    for (int page = 0; page < MAX_PAGES; page++) {
        mlo__buf_reset(&a->query);
        for (size_t i = 0; i < nparams && st == MLO_OK; i++)
            if (mlo__api_query(a, &a->query, names[i], values[i]))
                st = mlo__api_no_memory(e, what);
        if (st == MLO_OK && (mlo__api_query(a, &a->query, "page_token", token) ||
                             mlo__buf_appendc(&a->query, '\0')))
            st = mlo__api_no_memory(e, what);
        free(token);
        token = NULL;
        if (st != MLO_OK)
            break;
        ProtobufCMessage *m = NULL;
        st = mlo__api_get(a, what, a->query.data, d, &m, e);
        if (st != MLO_OK)
            break;
        st = take(ctx, m, what, e);
        const char *t = next ? *(char *const *)((const char *)m + next->offset) : NULL;
        if (st == MLO_OK && t && *t && !(token = strdup(t)))
            st = mlo__api_no_memory(e, what);
        protobuf_c_message_free_unpacked(m, NULL);
        if (st != MLO_OK || !token)
            break;
    }
    free(token);
    return st;
}

static void kv_free(mlo_read_kv *kv, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

void mlo__api_read_run_free(mlo_read_run *r) {
    if (!r)
        return;
    free(r->run_id);
    free(r->run_name);
    free(r->experiment_id);
    free(r->user_id);
    free(r->artifact_uri);
    free(r->lifecycle_stage);
    kv_free(r->params, r->nparams);
    kv_free(r->tags, r->ntags);
    for (size_t i = 0; i < r->nmetrics; i++)
        free(r->metrics[i].key);
    free(r->metrics);
    for (size_t i = 0; i < r->ndatasets; i++) {
        mlo_read_dataset *d = &r->datasets[i];
        free(d->name);
        free(d->digest);
        free(d->source_type);
        free(d->source);
        free(d->context);
    }
    free(r->datasets);
    memset(r, 0, sizeof *r);
}

void mlo__api_read_runs_free(mlo_read_run *runs, size_t n) {
    for (size_t i = 0; runs && i < n; i++)
        mlo__api_read_run_free(&runs[i]);
    free(runs);
}

void mlo__api_read_files_free(mlo_read_file *files, size_t n) {
    for (size_t i = 0; files && i < n; i++)
        free(files[i].path);
    free(files);
}

static mlo_read_point point_of(const Mlflow__Metric *m) {
    mlo_read_point p = {0, 0, 0.0};
    p.step = m->has_step ? m->step : 0;
    p.timestamp = m->has_timestamp ? m->timestamp : 0;
    p.value = m->has_value ? m->value : 0.0;
    return p;
}

/* Copies a decoded Run into out.  0, or -1 when out of memory (out freed). */
static int copy_run(const Mlflow__Run *src, mlo_read_run *out) {
    int oom = 0;
    memset(out, 0, sizeof *out);
    const Mlflow__RunInfo *info = src->info;
    if (info) {
        out->run_id = dup_opt(info->run_id ? info->run_id : info->run_uuid, &oom);
        out->run_name = dup_opt(info->run_name, &oom);
        out->experiment_id = dup_opt(info->experiment_id, &oom);
        out->user_id = dup_opt(info->user_id, &oom);
        out->artifact_uri = dup_opt(info->artifact_uri, &oom);
        out->lifecycle_stage = dup_opt(info->lifecycle_stage, &oom);
        out->status = info->has_status ? (int)info->status : 0;
        out->start_time = info->has_start_time ? info->start_time : 0;
        out->end_time = info->has_end_time ? info->end_time : 0;
    }
    const Mlflow__RunData *d = src->data;
    if (d && d->n_params && (out->params = calloc(d->n_params, sizeof *out->params))) {
        for (size_t i = 0; i < d->n_params; i++, out->nparams++) {
            out->params[i].key = dup_opt(d->params[i]->key ? d->params[i]->key : "", &oom);
            out->params[i].value = dup_opt(d->params[i]->value ? d->params[i]->value : "", &oom);
        }
    } else if (d && d->n_params) {
        oom = 1;
    }
    if (d && d->n_tags && (out->tags = calloc(d->n_tags, sizeof *out->tags))) {
        for (size_t i = 0; i < d->n_tags; i++, out->ntags++) {
            out->tags[i].key = dup_opt(d->tags[i]->key ? d->tags[i]->key : "", &oom);
            out->tags[i].value = dup_opt(d->tags[i]->value ? d->tags[i]->value : "", &oom);
        }
    } else if (d && d->n_tags) {
        oom = 1;
    }
    if (d && d->n_metrics && (out->metrics = calloc(d->n_metrics, sizeof *out->metrics))) {
        for (size_t i = 0; i < d->n_metrics; i++) {
            if (!d->metrics[i]->key)
                continue;
            mlo_read_metric *m = &out->metrics[out->nmetrics++];
            m->key = dup_opt(d->metrics[i]->key, &oom);
            m->last = point_of(d->metrics[i]);
        }
    } else if (d && d->n_metrics) {
        oom = 1;
    }
    const Mlflow__RunInputs *in = src->inputs;
    if (in && in->n_dataset_inputs &&
        (out->datasets = calloc(in->n_dataset_inputs, sizeof *out->datasets))) {
        for (size_t i = 0; i < in->n_dataset_inputs; i++) {
            const Mlflow__DatasetInput *di = in->dataset_inputs[i];
            if (!di->dataset || !di->dataset->name)
                continue;
            mlo_read_dataset *o = &out->datasets[out->ndatasets++];
            o->name = dup_opt(di->dataset->name, &oom);
            o->digest = dup_opt(di->dataset->digest ? di->dataset->digest : "", &oom);
            o->source_type =
                dup_opt(di->dataset->source_type ? di->dataset->source_type : "", &oom);
            o->source = dup_opt(di->dataset->source ? di->dataset->source : "", &oom);
            for (size_t k = 0; k < di->n_tags; k++)
                if (di->tags[k]->key && di->tags[k]->value && !o->context &&
                    strcmp(di->tags[k]->key, "mlflow.data.context") == 0)
                    o->context = dup_opt(di->tags[k]->value, &oom);
        }
    } else if (in && in->n_dataset_inputs) {
        oom = 1;
    }
    if (oom) {
        mlo__api_read_run_free(out);
        return -1;
    }
    return 0;
}

int mlo__api_read_run(mlo_api *a, const char *run_id, mlo_read_run *out, mlo_api_error *e) {
    const char *what = "runs/get";
    memset(out, 0, sizeof *out);
    mlo__buf_reset(&a->query);
    if (mlo__api_query(a, &a->query, "run_id", run_id) || mlo__buf_appendc(&a->query, '\0'))
        return mlo__api_no_memory(e, what);
    ProtobufCMessage *m = NULL;
    int st = mlo__api_get(a, what, a->query.data, &mlflow__get_run__response__descriptor, &m, e);
    if (st != MLO_OK)
        return st;
    const Mlflow__GetRun__Response *r = (const Mlflow__GetRun__Response *)m;
    if (!r->run || !r->run->info)
        st = mlo__api_missing(e, what);
    else if (copy_run(r->run, out) != 0)
        st = mlo__api_no_memory(e, what);
    protobuf_c_message_free_unpacked(m, NULL);
    return st;
}

int mlo__api_read_search(mlo_api *a, const char *experiment_id, const char *filter, size_t max_runs,
                         mlo_read_run **runs, size_t *n, mlo_api_error *e) {
    const char *what = "runs/search";
    mlo_read_run *all = NULL;
    size_t count = 0, cap = 0;
    char *token = NULL;
    int st = MLO_OK;
    *runs = NULL;
    *n = 0;
    for (int page = 0; page < MAX_PAGES; page++) {
        Mlflow__SearchRuns req = MLFLOW__SEARCH_RUNS__INIT;
        char *ids[1] = {(char *)experiment_id};
        req.n_experiment_ids = 1;
        req.experiment_ids = ids;
        req.filter = filter && *filter ? (char *)filter : NULL;
        req.has_max_results = 1;
        size_t want = max_runs ? max_runs - count : 1000;
        req.max_results = (int32_t)(want < 1000 ? want : 1000);
        req.page_token = token;
        ProtobufCMessage *m = NULL;
        st = mlo__api_post(a, what, &req.base, &mlflow__search_runs__response__descriptor, &m, e);
        free(token);
        token = NULL;
        if (st != MLO_OK)
            break;
        const Mlflow__SearchRuns__Response *r = (const Mlflow__SearchRuns__Response *)m;
        if (count + r->n_runs > cap) {
            mlo_read_run *g = grow(all, &cap, count + r->n_runs, sizeof *all, 64);
            if (!g) {
                protobuf_c_message_free_unpacked(m, NULL);
                st = mlo__api_no_memory(e, what);
                break;
            }
            all = g;
        }
        for (size_t i = 0; i < r->n_runs && st == MLO_OK; i++) {
            if (max_runs && count == max_runs)
                break;
            if (copy_run(r->runs[i], &all[count]) != 0)
                st = mlo__api_no_memory(e, what);
            else
                count++;
        }
        if (st == MLO_OK && r->next_page_token && *r->next_page_token &&
            !(max_runs && count >= max_runs) && !(token = strdup(r->next_page_token)))
            st = mlo__api_no_memory(e, what);
        protobuf_c_message_free_unpacked(m, NULL);
        if (st != MLO_OK || !token)
            break;
    }
    free(token);
    if (st != MLO_OK) {
        mlo__api_read_runs_free(all, count);
        return st;
    }
    *runs = all;
    *n = count;
    return MLO_OK;
}

typedef struct points {
    mlo_read_point *all;
    size_t count, cap;
} points;

static int take_points(void *ctx, const ProtobufCMessage *m, const char *what, mlo_api_error *e) {
    points *p = ctx;
    const Mlflow__GetMetricHistory__Response *r = (const Mlflow__GetMetricHistory__Response *)m;
    if (p->count + r->n_metrics > p->cap) {
        void *g = grow(p->all, &p->cap, p->count + r->n_metrics, sizeof *p->all, 256);
        if (!g)
            return mlo__api_no_memory(e, what);
        p->all = g;
    }
    for (size_t i = 0; i < r->n_metrics; i++)
        p->all[p->count++] = point_of(r->metrics[i]);
    return MLO_OK;
}

int mlo__api_read_history(mlo_api *a, const char *run_id, const char *key, mlo_read_point **pts,
                          size_t *n, mlo_api_error *e) {
    static const char *const names[] = {"run_id", "metric_key"};
    const char *values[] = {run_id, key};
    points p = {0};
    *pts = NULL;
    *n = 0;
    int st = get_pages(a, "metrics/get-history", names, values, 2,
                       &mlflow__get_metric_history__response__descriptor, take_points, &p, e);
    if (st != MLO_OK) {
        free(p.all);
        return st;
    }
    *pts = p.all;
    *n = p.count;
    return MLO_OK;
}

int mlo__api_read_experiment(mlo_api *a, const char *experiment_id, char **name, mlo_api_error *e) {
    const char *what = "experiments/get";
    mlo__buf_reset(&a->query);
    if (mlo__api_query(a, &a->query, "experiment_id", experiment_id) ||
        mlo__buf_appendc(&a->query, '\0'))
        return mlo__api_no_memory(e, what);
    ProtobufCMessage *m = NULL;
    int st =
        mlo__api_get(a, what, a->query.data, &mlflow__get_experiment__response__descriptor, &m, e);
    if (st != MLO_OK)
        return st;
    const Mlflow__GetExperiment__Response *r = (const Mlflow__GetExperiment__Response *)m;
    st = r->experiment && r->experiment->name ? mlo__api_dup(name, r->experiment->name, e)
                                              : mlo__api_missing(e, what);
    protobuf_c_message_free_unpacked(m, NULL);
    return st;
}

typedef struct files {
    mlo_read_file *all;
    size_t count, cap;
} files;

static int take_files(void *ctx, const ProtobufCMessage *m, const char *what, mlo_api_error *e) {
    files *fs = ctx;
    const Mlflow__ListArtifacts__Response *r = (const Mlflow__ListArtifacts__Response *)m;
    if (fs->count + r->n_files > fs->cap) {
        void *g = grow(fs->all, &fs->cap, fs->count + r->n_files, sizeof *fs->all, 32);
        if (!g)
            return mlo__api_no_memory(e, what);
        fs->all = g;
    }
    for (size_t i = 0; i < r->n_files; i++) {
        const Mlflow__FileInfo *f = r->files[i];
        if (!f->path)
            continue;
        mlo_read_file *o = &fs->all[fs->count];
        if (!(o->path = strdup(f->path)))
            return mlo__api_no_memory(e, what);
        o->is_dir = f->has_is_dir && f->is_dir;
        o->size = f->has_file_size && !o->is_dir ? f->file_size : -1;
        fs->count++;
    }
    return MLO_OK;
}

int mlo__api_read_artifacts(mlo_api *a, const char *run_id, const char *path, mlo_read_file **out,
                            size_t *n, mlo_api_error *e) {
    static const char *const names[] = {"run_id", "path"};
    const char *values[] = {run_id, path && *path ? path : NULL};
    files fs = {0};
    *out = NULL;
    *n = 0;
    int st = get_pages(a, "artifacts/list", names, values, 2,
                       &mlflow__list_artifacts__response__descriptor, take_files, &fs, e);
    if (st != MLO_OK) {
        mlo__api_read_files_free(fs.all, fs.count);
        return st;
    }
    *out = fs.all;
    *n = fs.count;
    return MLO_OK;
}

void mlo__api_read_model_versions_free(mlo_read_model_version *v, size_t n) {
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].name);
        free(v[i].version);
        free(v[i].status);
        for (size_t k = 0; k < v[i].naliases; k++)
            free(v[i].aliases[k]);
        free(v[i].aliases);
    }
    free(v);
}

static const char *mv_status(const Mlflow__ModelVersion *mv) {
    if (!mv->has_status)
        return NULL;
    const ProtobufCEnumValue *ev =
        protobuf_c_enum_descriptor_get_value(&mlflow__model_version_status__descriptor, mv->status);
    return ev ? ev->name : NULL;
}

static int copy_model_version(const Mlflow__ModelVersion *src, mlo_read_model_version *o) {
    int oom = 0;
    memset(o, 0, sizeof *o);
    o->name = dup_opt(src->name, &oom);
    o->version = dup_opt(src->version, &oom);
    o->status = dup_opt(mv_status(src), &oom);
    if (!oom && src->n_aliases && !(o->aliases = calloc(src->n_aliases, sizeof *o->aliases)))
        oom = 1;
    for (size_t k = 0; !oom && k < src->n_aliases; k++)
        if ((o->aliases[k] = dup_opt(src->aliases[k], &oom)))
            o->naliases++;
    return oom ? -1 : 0;
}

typedef struct versions {
    mlo_read_model_version *all;
    size_t count, cap;
} versions;

static int take_versions(void *ctx, const ProtobufCMessage *m, const char *what, mlo_api_error *e) {
    versions *v = ctx;
    const Mlflow__SearchModelVersions__Response *r =
        (const Mlflow__SearchModelVersions__Response *)m;
    if (v->count + r->n_model_versions > v->cap) {
        void *g = grow(v->all, &v->cap, v->count + r->n_model_versions, sizeof *v->all, 8);
        if (!g)
            return mlo__api_no_memory(e, what);
        v->all = g;
    }
    for (size_t i = 0; i < r->n_model_versions; i++) {
        const Mlflow__ModelVersion *mv = r->model_versions[i];
        if (!mv->name || !mv->version)
            continue;
        if (copy_model_version(mv, &v->all[v->count++]) != 0) /* freed by the caller, in part */
            return mlo__api_no_memory(e, what);
    }
    return MLO_OK;
}

int mlo__api_read_model_versions(mlo_api *a, const char *run_id, mlo_read_model_version **out,
                                 size_t *n, mlo_api_error *e) {
    *out = NULL;
    *n = 0;
    if (!run_id || !*run_id ||
        strspn(run_id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                       "0123456789-_") != strlen(run_id))
        return MLO_OK;
    char filter[300];
    if (snprintf(filter, sizeof filter, "run_id='%s'", run_id) >= (int)sizeof filter)
        return MLO_OK;
    static const char *const names[] = {"filter"};
    const char *values[] = {filter};
    versions v = {0};
    int st = get_pages(a, "model-versions/search", names, values, 1,
                       &mlflow__search_model_versions__response__descriptor, take_versions, &v, e);
    if (st != MLO_OK) {
        mlo__api_read_model_versions_free(v.all, v.count);
        return st;
    }
    *out = v.all;
    *n = v.count;
    return MLO_OK;
}
