/*
 * mlo_api_artifacts.c - the REST calls of MLflow's proxied artifact API
 * (a tracking server started with --serve-artifacts):
 *
 *   PUT  /api/2.0/mlflow-artifacts/artifacts/<root>/<rel>      upload a file
 *   GET  /api/2.0/mlflow-artifacts/artifacts/<root>/<rel>      download it
 *   GET  /api/2.0/mlflow-artifacts/artifacts?path=<root>/<rel> list a directory
 *   POST /api/2.0/mlflow-artifacts/mpu/create/<root>/<dir>     {path: <file name>, num_parts}
 *   PUT  <presigned URL of each part>                          (no credentials)
 *   POST /api/2.0/mlflow-artifacts/mpu/complete/<root>/<dir>   {path, upload_id, parts}
 *   POST /api/2.0/mlflow-artifacts/mpu/abort/<root>/<dir>      {path, upload_id}
 *
 * As MLflow's own HTTP artifact repository does it, the multipart calls
 * name the file's directory in the URL and the file's name in the body.
 * <root> comes from the run's artifact URI, "mlflow-artifacts:/<exp>/<run>/
 * artifacts" (or "mlflow-artifacts://host:port/..."; the host is ignored:
 * the proxied API is always the tracking server's).  Path segments are
 * percent-encoded.  Bodies are streamed from and to files by the transport
 * (mlo__http_request), so memory does not grow with the artifact.
 *
 * Threads: as mlo_api.c, an mlo_api belongs to one thread at a time.
 */
#define _GNU_SOURCE
#include "mlo_api_int.h"
#include "mlo_validate.h"

#include <errno.h>
#include <strings.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ART_API "/api/2.0/mlflow-artifacts/artifacts"
#define MPU_API "/api/2.0/mlflow-artifacts/mpu/"

int mlo__api_artifact_root(const char *uri, char **root) {
    static const char scheme[] = "mlflow-artifacts:";
    *root = NULL;
    if (!uri || strncmp(uri, scheme, sizeof scheme - 1) != 0)
        return MLO_ERR_ARTIFACTS_NOT_PROXIED;
    const char *p = uri + sizeof scheme - 1;
    if (p[0] == '/' && p[1] == '/') { /* an authority: skip it */
        p += 2;
        while (*p && *p != '/')
            p++;
    }
    while (*p == '/')
        p++;
    size_t n = strlen(p);
    while (n && p[n - 1] == '/')
        n--;
    *root = strndup(p, n);
    return *root ? MLO_OK : MLO_ERR_NO_MEMORY;
}

/* Appends "/"-separated segments of s, each percent-encoded, after a '/'
 * (nothing for an empty s). */
static int append_path(mlo_api *a, mlo_buf *b, const char *s) {
    if (!s || !*s)
        return 0;
    char seg[4097];
    while (*s) {
        size_t n = strcspn(s, "/");
        if (n >= sizeof seg)
            return -1;
        memcpy(seg, s, n);
        seg[n] = '\0';
        if (n && (mlo__buf_appendc(b, '/') || mlo__http_urlencode(a->http, seg, b)))
            return -1;
        s += n;
        while (*s == '/')
            s++;
    }
    return 0;
}

/* prefix + "/" + root + "/" + rel, encoded, into b. */
static int url_of(mlo_api *a, mlo_buf *b, const char *prefix, const char *root, const char *rel) {
    mlo__buf_reset(b);
    return mlo__buf_appends(b, prefix) || append_path(a, b, root) || append_path(a, b, rel);
}

/* Classifies a transport result (counts the request, frees r). */
static int done(mlo_api *a, mlo_http_result *r, const char *what, mlo_api_error *e) {
    mlo__env_stat(a->env, MLO_STAT_REQUESTS, 1 + (uint64_t)r->retries);
    int st = mlo__api_classify(r, what, e);
    mlo__http_result_free(r);
    return st;
}

static int put_file(mlo_api *a, const char *root, const char *rel, int fd, int64_t off, int64_t len,
                    int64_t (*ready)(void *, int64_t), void *ctx, mlo_api_error *e) {
    mlo_buf url = {0};
    if (url_of(a, &url, ART_API, root, rel)) {
        mlo__buf_free(&url);
        return mlo__api_no_memory(e, "artifact upload");
    }
    mlo_http_req req = MLO_HTTP_REQ_INIT;
    req.method = "PUT";
    req.path = url.data;
    req.in_fd = fd;
    req.in_off = off;
    req.in_len = len;
    req.in_ready = ready;
    req.in_ctx = ctx;
    req.in_sent = a->upload_sent;
    req.deadline_ns = a->deadline_ns;
    mlo_http_result r;
    mlo__http_request(a->http, &req, &r);
    int st = done(a, &r, "artifact upload", e);
    mlo__buf_free(&url);
    return st;
}

int mlo__api_artifact_put(mlo_api *a, const char *root, const char *rel, int fd, int64_t off,
                          int64_t len, mlo_api_error *e) {
    return put_file(a, root, rel, fd, off, len, NULL, NULL, e);
}

int mlo__api_artifact_put_growing(mlo_api *a, const char *root, const char *rel, int fd,
                                  int64_t len, int64_t (*ready)(void *ctx, int64_t off), void *ctx,
                                  mlo_api_error *e) {
    return put_file(a, root, rel, fd, 0, len, ready, ctx, e);
}

int mlo__api_artifact_get(mlo_api *a, const char *root, const char *rel, int fd, int64_t *size,
                          mlo_api_error *e) {
    mlo_buf url = {0};
    if (url_of(a, &url, ART_API, root, rel)) {
        mlo__buf_free(&url);
        return mlo__api_no_memory(e, "artifact download");
    }
    mlo_http_req req = MLO_HTTP_REQ_INIT;
    req.method = "GET";
    req.path = url.data;
    req.out_fd = fd;
    req.deadline_ns = a->deadline_ns;
    mlo_http_result r;
    mlo__http_request(a->http, &req, &r);
    if (size)
        *size = (int64_t)r.bytes_received;
    int st = done(a, &r, "artifact download", e);
    mlo__buf_free(&url);
    return st;
}

int mlo__api_artifact_list(mlo_api *a, const char *root, const char *rel,
                           int (*fn)(void *ctx, const char *name, int is_dir, int64_t size),
                           void *ctx, mlo_api_error *e) {
    mlo_buf path = {0}, q = {0};
    int bad = mlo__buf_appends(&path, root ? root : "");
    if (!bad && rel && *rel)
        bad = (path.len && mlo__buf_appendc(&path, '/')) || mlo__buf_appends(&path, rel);
    if (!bad)
        bad = mlo__api_query(a, &q, "path", path.data ? path.data : "");
    int st;
    if (bad) {
        st = mlo__api_no_memory(e, "artifact listing");
    } else {
        ProtobufCMessage *m = NULL;
        st = mlo__api_get(a, ART_API, q.data, &mlflow__list_artifacts__response__descriptor, &m, e);
        if (st == MLO_OK) {
            Mlflow__ListArtifacts__Response *r = (Mlflow__ListArtifacts__Response *)m;
            for (size_t i = 0; i < r->n_files; i++) {
                const Mlflow__FileInfo *f = r->files[i];
                if (!f->path)
                    continue;
                if (fn(ctx, f->path, f->has_is_dir && f->is_dir,
                       f->has_file_size && !(f->has_is_dir && f->is_dir) ? f->file_size : -1))
                    break;
            }
            protobuf_c_message_free_unpacked(m, NULL);
        }
    }
    mlo__buf_free(&path);
    mlo__buf_free(&q);
    return st;
}

/* ---- multipart ---------------------------------------------------------------- */

/* rel = "<dir>/<name>": the URL names root + dir, the body name. */
static int mpu_url(mlo_api *a, mlo_buf *b, const char *op, const char *root, const char *rel,
                   const char **name) {
    const char *slash = strrchr(rel, '/');
    *name = slash ? slash + 1 : rel;
    char *dir = slash ? strndup(rel, (size_t)(slash - rel)) : strdup("");
    if (!dir)
        return -1;
    char prefix[64];
    snprintf(prefix, sizeof prefix, MPU_API "%s", op);
    int bad = url_of(a, b, prefix, root, dir);
    free(dir);
    return bad;
}

void mlo__api_mpu_free(mlo_mpu *m) {
    if (!m)
        return;
    for (size_t i = 0; i < m->nparts; i++) {
        if (m->urls)
            free(m->urls[i]);
        if (m->etags)
            free(m->etags[i]);
    }
    free(m->urls);
    free(m->etags);
    free(m->upload_id);
    memset(m, 0, sizeof *m);
}

int mlo__api_mpu_create(mlo_api *a, const char *root, const char *rel, size_t nparts, mlo_mpu *out,
                        mlo_api_error *e) {
    memset(out, 0, sizeof *out);
    mlo_buf url = {0};
    const char *name;
    if (mpu_url(a, &url, "create", root, rel, &name)) {
        mlo__buf_free(&url);
        return mlo__api_no_memory(e, "mpu/create");
    }
    Mlflow__CreateMultipartUpload req = MLFLOW__CREATE_MULTIPART_UPLOAD__INIT;
    req.path = (char *)name;
    req.has_num_parts = 1;
    req.num_parts = (int64_t)nparts;
    ProtobufCMessage *m = NULL;
    int st = mlo__api_post(a, url.data, &req.base,
                           &mlflow__create_multipart_upload__response__descriptor, &m, e);
    mlo__buf_free(&url);
    if (st != MLO_OK) {
        /* MLflow: 501 NOT_IMPLEMENTED "Multipart upload is not supported for
         * the current artifact repository" (a local artifact store) */
        if (e->http_code == 501 || !strcmp(e->error_code, "NOT_IMPLEMENTED"))
            e->status = st = MLO_ERR_NOT_SUPPORTED;
        return st;
    }
    Mlflow__CreateMultipartUpload__Response *r = (Mlflow__CreateMultipartUpload__Response *)m;
    if (!r->upload_id || r->n_credentials != nparts) {
        st = mlo__api_missing(e, "mpu/create");
        goto out;
    }
    out->upload_id = strdup(r->upload_id);
    out->urls = calloc(nparts, sizeof *out->urls);
    out->etags = calloc(nparts, sizeof *out->etags);
    out->nparts = nparts;
    if (!out->upload_id || !out->urls || !out->etags) {
        st = mlo__api_no_memory(e, "mpu/create");
        goto out;
    }
    for (size_t i = 0; i < r->n_credentials; i++) {
        const Mlflow__MultipartUploadCredential *c = r->credentials[i];
        int64_t pn = c->has_part_number ? c->part_number : (int64_t)i + 1;
        if (pn < 1 || (uint64_t)pn > nparts || !c->url || out->urls[pn - 1] ||
            (strncmp(c->url, "http://", 7) && strncmp(c->url, "https://", 8))) {
            st = mlo__api_missing(e, "mpu/create (part URLs)");
            goto out;
        }
        if (!(out->urls[pn - 1] = strdup(c->url))) {
            st = mlo__api_no_memory(e, "mpu/create");
            goto out;
        }
    }
out:
    protobuf_c_message_free_unpacked(m, NULL);
    if (st != MLO_OK)
        mlo__api_mpu_free(out);
    return st;
}

int mlo__api_mpu_put_part(mlo_api *a, mlo_mpu *m, size_t part, int fd, int64_t off, int64_t len,
                          mlo_api_error *e) {
    if (part < 1 || part > m->nparts || !m->urls[part - 1]) {
        memset(e, 0, sizeof *e);
        e->status = MLO_ERR_INVALID_ARGUMENT;
        snprintf(e->message, sizeof e->message, "mpu part %zu: no such part", part);
        return e->status;
    }
    mlo_http_req req = MLO_HTTP_REQ_INIT;
    req.method = "PUT";
    req.path = m->urls[part - 1]; /* absolute: no credentials go to it */
    req.in_fd = fd;
    req.in_off = off;
    req.in_len = len;
    req.in_sent = a->upload_sent;
    req.deadline_ns = a->deadline_ns;
    mlo_http_result r;
    mlo__http_request(a->http, &req, &r);
    char etag[sizeof r.etag];
    memcpy(etag, r.etag, sizeof etag);
    int st = done(a, &r, "mpu part upload", e);
    if (st != MLO_OK)
        return st;
    free(m->etags[part - 1]);
    if (!(m->etags[part - 1] = strdup(etag)))
        return mlo__api_no_memory(e, "mpu part upload");
    return MLO_OK;
}

int mlo__api_mpu_complete(mlo_api *a, const char *root, const char *rel, const mlo_mpu *m,
                          mlo_api_error *e) {
    mlo_buf url = {0};
    const char *name;
    Mlflow__MultipartUploadPart *parts = calloc(m->nparts ? m->nparts : 1, sizeof *parts);
    Mlflow__MultipartUploadPart **pp = calloc(m->nparts ? m->nparts : 1, sizeof *pp);
    int st;
    if (!parts || !pp || mpu_url(a, &url, "complete", root, rel, &name)) {
        st = mlo__api_no_memory(e, "mpu/complete");
        goto out;
    }
    for (size_t i = 0; i < m->nparts; i++) {
        mlflow__multipart_upload_part__init(&parts[i]);
        parts[i].has_part_number = 1;
        parts[i].part_number = (int64_t)i + 1;
        parts[i].etag = m->etags[i] ? m->etags[i] : "";
        parts[i].url = m->urls[i];
        pp[i] = &parts[i];
    }
    Mlflow__CompleteMultipartUpload req = MLFLOW__COMPLETE_MULTIPART_UPLOAD__INIT;
    req.path = (char *)name;
    req.upload_id = m->upload_id;
    req.n_parts = m->nparts;
    req.parts = pp;
    st = mlo__api_post(a, url.data, &req.base, NULL, NULL, e);
out:
    free(parts);
    free(pp);
    mlo__buf_free(&url);
    return st;
}

int mlo__api_mpu_abort(mlo_api *a, const char *root, const char *rel, const char *upload_id,
                       mlo_api_error *e) {
    mlo_buf url = {0};
    const char *name;
    if (mpu_url(a, &url, "abort", root, rel, &name)) {
        mlo__buf_free(&url);
        return mlo__api_no_memory(e, "mpu/abort");
    }
    Mlflow__AbortMultipartUpload req = MLFLOW__ABORT_MULTIPART_UPLOAD__INIT;
    req.path = (char *)name;
    req.upload_id = (char *)upload_id;
    int st = mlo__api_post(a, url.data, &req.base, NULL, NULL, e);
    mlo__buf_free(&url);
    return st;
}

/* ---- uploading a file: one PUT or multipart ---------------------------------- */

#define MPU_MIN_DEFAULT (500LL * 1024 * 1024)
#define MPU_CHUNK_DEFAULT (100LL * 1024 * 1024)
#define MPU_MAX_PARTS 10000

static int env_bool_false(const char *v) {
    return v && (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no") ||
                 !strcasecmp(v, "off"));
}

static int64_t env_size(const char *name, int64_t def) {
    const char *v = getenv(name);
    if (!v || !*v)
        return def;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || *end || n <= 0)
        return def;
    return n;
}

/* (these variables are in mlo__config_env too) */
void mlo__api_mpu_cfg_read(mlo_mpu_cfg *m) {
    m->enabled = !env_bool_false(getenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD"));
    m->min_size = env_size("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", MPU_MIN_DEFAULT);
    m->chunk = env_size("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", MPU_CHUNK_DEFAULT);
    m->unsupported = 0;
}

int mlo__api_artifact_upload(mlo_api *api, mlo_mpu_cfg *mc, const char *root, const char *rel,
                             int fd, int64_t size, mlo_api_error *e) {
    if (mc->enabled && !mc->unsupported && size >= mc->min_size && size > 0) {
        int64_t chunk = mc->chunk;
        if ((size + chunk - 1) / chunk > MPU_MAX_PARTS)
            chunk = (size + MPU_MAX_PARTS - 1) / MPU_MAX_PARTS;
        size_t nparts = (size_t)((size + chunk - 1) / chunk);
        mlo_mpu m;
        int st = mlo__api_mpu_create(api, root, rel, nparts, &m, e);
        if (st == MLO_ERR_NOT_SUPPORTED) {
            mc->unsupported = 1; /* this server has no multipart: single PUTs from now on */
        } else if (st != MLO_OK) {
            return st;
        } else {
            for (size_t i = 0; i < nparts && st == MLO_OK; i++) {
                int64_t off = (int64_t)i * chunk;
                int64_t len = size - off < chunk ? size - off : chunk;
                st = mlo__api_mpu_put_part(api, &m, i + 1, fd, off, len, e);
            }
            if (st == MLO_OK)
                st = mlo__api_mpu_complete(api, root, rel, &m, e);
            if (st != MLO_OK) {
                mlo_api_error e2;
                mlo__api_mpu_abort(api, root, rel, m.upload_id, &e2);
            }
            mlo__api_mpu_free(&m);
            return st;
        }
    }
    return mlo__api_artifact_put(api, root, rel, fd, 0, size, e);
}
