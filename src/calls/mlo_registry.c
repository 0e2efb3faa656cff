/*
 * mlo_registry.c - reading artifacts back and the model registry:
 * mlo_list_artifacts, mlo_download_artifacts, mlo_register_model,
 * mlo_set_model_alias.
 *
 * Every call here is synchronous and makes its own mlo_api (its own curl
 * handle) for the call, so several threads may download at once and none
 * of them holds the client's sync_lock (which mlo_start_run needs) while a
 * large file moves.
 *
 * Time limits.  Each metadata request (runs/get, model-versions/get,
 * registered-models calls, an artifact listing) gets a deadline of the client's
 * request timeout (MLFLOW_HTTP_REQUEST_TIMEOUT) from the
 * moment it starts, retries included.  A file download has no total
 * deadline: a model of several GB may rightly take longer than any fixed
 * bound.  The transport bounds each attempt instead by an idle limit (it
 * fails when no byte moved for timeout_s) and the number of retries, and
 * mlo_client_close's abort stops it.  mlo_register_model waits for the run
 * and its uploads at most timeout_s in total.
 *
 * Where artifacts are.  run_id names a location: a run id (the run's
 * artifact root), "runs:/<id>[/<path>]" (a path below it) or a model URI,
 * "models:/<name>/<version>" or "models:/<name>@<alias>", whose version's
 * source is resolved in turn (a "runs:/" URI, another "models:/" URI, or a
 * "mlflow-artifacts:" URI; other schemes cannot be reached through the
 * tracking server: MLO_ERR_ARTIFACTS_NOT_PROXIED).  URIs are parsed as
 * MLflow parses them (mlflow/store/artifact/utils/models.py and
 * runs_artifact_repo.py): a model name holds no '/', may hold '@' (the
 * alias is after the last one); "models:/<name>/<n>" with digits only is a
 * version.  Stages, "latest", model ids (MLflow 3's "models:/<id>") and
 * URIs naming another server ("models://profile@host/...") are refused as
 * MLO_ERR_INVALID_ARGUMENT, with a message.
 *
 * A location is kept as (root, prefix): root is the proxied artifact API's
 * path made by mlo__artifact_root, prefix a path below it ("" for a run's
 * root).  Listing paths and the download layout are relative to root/prefix
 * (what the URI names), as MLflow's artifact repositories do.
 *
 * Downloads never write outside dest_dir.  dest_dir is opened once
 * (O_DIRECTORY) and everything below it is reached with *at() calls from
 * directory descriptors: directories with mkdirat + openat(O_DIRECTORY |
 * O_NOFOLLOW), files created as "<name>.mlo-part" with O_CREAT | O_EXCL |
 * O_NOFOLLOW, written by the transport in chunks (memory stays bounded),
 * fdatasync'd, and renamed onto <name> with renameat.  Names from the
 * server are refused (MLO_ERR_INVALID_PATH) unless they are one plain path
 * segment: not "", ".", "..", no '/' or '\\'.  A symbolic link found in
 * dest_dir where a downloaded file or directory goes is never followed:
 * MLO_ERR_INVALID_PATH.  Directory depth is bounded (MAX_DEPTH) so a server
 * listing directories forever cannot exhaust descriptors or the stack.
 * What a failed download already wrote stays (complete files only; its
 * .mlo-part is removed).
 */
#define _GNU_SOURCE
#include "mlo_client.h"

#include "mlo_api.h"
#include "mlo_sha256.h"
#include "mlo_store.h"
#include "mlo_uploader.h"
#include "mlo_validate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PART_SUFFIX ".mlo-part"
#define MAX_DEPTH 64   /* directory levels below the download's top */
#define MAX_URI_HOPS 4 /* models:/ -> runs:/ ... resolutions */

/* ---- small helpers ---------------------------------------------------------- */

static int64_t timeout_ns(const mlo_client *c) {
    double t = mlo__client_env(c)->cfg->timeout_s > 0 ? mlo__client_env(c)->cfg->timeout_s : 120.0;
    return (int64_t)(t * 1e9);
}

/* Arms the deadline of the next metadata request. */
static void arm(mlo_api *a, const mlo_client *c) {
    mlo__api_set_deadline(a, mlo__env_mono(mlo__client_env(c)) + timeout_ns(c));
}

/* a + "/" + b, either may be NULL or "" (malloc'd, never NULL unless OOM). */
static char *join(const char *a, const char *b) {
    if (!a)
        a = "";
    if (!b)
        b = "";
    char *out;
    int n = *a && *b ? asprintf(&out, "%s/%s", a, b) : asprintf(&out, "%s", *a ? a : b);
    return n < 0 ? NULL : out;
}

static int check_str(const char *s) {
    if (!s || !*s)
        return MLO_ERR_INVALID_ARGUMENT;
    if (!mlo__validate_utf8(s, strlen(s)))
        return MLO_ERR_INVALID_UTF8;
    return MLO_OK;
}

static int blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' && s[i] != '\f' &&
            s[i] != '\v')
            return 0;
    return 1;
}

/* One plain path segment from a server: something we may create in a
 * directory we own. */
static int name_ok(const char *n) {
    return n && *n && strcmp(n, ".") != 0 && strcmp(n, "..") != 0 && !strchr(n, '/') &&
           !strchr(n, '\\');
}

static int need_uri(mlo_client *c, const char *fn) {
    if (mlo__client_env(c)->cfg->tracking_uri)
        return MLO_OK;
    mlo__env_report(
        mlo__client_env(c), MLO_ERR_CONFIG, 0,
        "%s: no tracking URI (set MLFLOW_TRACKING_URI or mlo_options_set_tracking_uri): "
        "this call talks to the server",
        fn);
    return MLO_ERR_CONFIG;
}

static int fail_api(mlo_client *c, const char *fn, const mlo_api_error *e, int st) {
    mlo__env_report(mlo__client_env(c), st, 0, "%s: %s", fn,
                    e->message[0] ? e->message : mlo_strerror(st));
    return st;
}

/* ---- URIs ------------------------------------------------------------------- */

typedef struct mlo_loc {
    char *root;   /* path of the proxied artifact API (mlo__artifact_root) */
    char *prefix; /* path below root that the URI names ("": root itself) */
} mlo_loc;

static void loc_free(mlo_loc *l) {
    free(l->root);
    free(l->prefix);
    l->root = l->prefix = NULL;
}

typedef struct mlo_ctx {
    mlo_client *c;
    mlo_api *a;
    const char *fn; /* the public function, for messages */
} mlo_ctx;

static int bad_uri(mlo_ctx *x, const char *uri, const char *why) {
    mlo__env_report(mlo__client_env(x->c), MLO_ERR_INVALID_ARGUMENT, 0, "%s: \"%.300s\": %s", x->fn,
                    uri, why);
    return MLO_ERR_INVALID_ARGUMENT;
}

/* s: what follows "scheme:".  An authority ("//host") must be empty, as
 * this client only talks to its own tracking server.  Returns the path
 * (normally starting with '/'), or NULL when there is an authority. */
static const char *uri_path(const char *s) {
    if (s[0] == '/' && s[1] == '/') {
        const char *p = s + 2;
        const char *slash = strchr(p, '/');
        if (slash != p) /* "//host/..." or "//host" */
            return NULL;
        return slash;
    }
    return s;
}

static int resolve(mlo_ctx *x, const char *id, mlo_loc *out, int hops);

/* The run's artifact root (+ prefix). */
static int resolve_run(mlo_ctx *x, const char *run_id, const char *prefix, mlo_loc *out) {
    char *uri = NULL;
    mlo_api_error e;
    memset(&e, 0, sizeof e);
    arm(x->a, x->c);
    int st = mlo__api_get_run_info(x->a, run_id, NULL, &uri, &e);
    if (st != MLO_OK)
        return fail_api(x->c, x->fn, &e, st);
    st = mlo__api_artifact_root(uri, &out->root);
    if (st == MLO_ERR_ARTIFACTS_NOT_PROXIED)
        mlo__env_report(
            mlo__client_env(x->c), st, 0,
            "%s: run %.64s keeps its artifacts at %.300s, which the client cannot reach "
            "through the tracking server: run the server with --serve-artifacts",
            x->fn, run_id, uri);
    free(uri);
    if (st != MLO_OK)
        return st;
    out->prefix = strdup(prefix ? prefix : "");
    if (!out->prefix) {
        loc_free(out);
        return MLO_ERR_NO_MEMORY;
    }
    return MLO_OK;
}

/* "runs:/<run_id>[/<path>]" (s: after "runs:"). */
static int resolve_runs_uri(mlo_ctx *x, const char *uri, const char *s, mlo_loc *out) {
    const char *p = uri_path(s);
    if (!p || p[0] != '/' || !p[1])
        return bad_uri(x, uri, "not a runs:/<run_id>[/<path>] URI");
    if (strpbrk(p, "?#"))
        return bad_uri(x, uri, "a query or fragment is not allowed in a runs:/ URI");
    p++;
    size_t n = strcspn(p, "/");
    if (n == 0)
        return bad_uri(x, uri, "no run id");
    char *rid = strndup(p, n);
    if (!rid)
        return MLO_ERR_NO_MEMORY;
    const char *path = p[n] ? p + n + 1 : "";
    int st = mlo__validate_artifact_path(path, 1);
    if (st != MLO_OK) {
        mlo__env_report(mlo__client_env(x->c), st, 0,
                        "%s: \"%.300s\": the path is not a relative artifact path", x->fn, uri);
        free(rid);
        return st;
    }
    st = resolve_run(x, rid, path, out);
    free(rid);
    return st;
}

/* "models:/<name>/<version>" or "models:/<name>@<alias>" (s: after
 * "models:"): the version's source, resolved. */
static int resolve_models_uri(mlo_ctx *x, const char *uri, const char *s, mlo_loc *out, int hops) {
    const char *p = uri_path(s);
    if (!p)
        return bad_uri(x, uri,
                       "a models URI naming another registry (models://...) is not "
                       "supported");
    if (p[0] != '/' || !p[1])
        return bad_uri(x, uri, "not a models:/<name>/<version> or models:/<name>@<alias> URI");
    if (strchr(p, '?'))
        return bad_uri(x, uri, "a query is not allowed in a models:/ URI");
    while (*p == '/')
        p++;
    const char *slash = strchr(p, '/');
    if (slash && strchr(slash + 1, '/'))
        return bad_uri(x, uri, "too many path segments (a model name holds no '/')");
    char *name = NULL, *version = NULL, *alias = NULL;
    if (slash) {
        const char *suf = slash + 1;
        if (blank(p, (size_t)(slash - p)) || blank(suf, strlen(suf)))
            return bad_uri(x, uri, "no model name or no version");
        if (strspn(suf, "0123456789") != strlen(suf))
            return bad_uri(x, uri,
                           "only a version number or an alias is supported (not a "
                           "stage, not \"latest\")");
        name = strndup(p, (size_t)(slash - p));
        version = strdup(suf);
    } else {
        const char *at = strrchr(p, '@');
        if (!at)
            return bad_uri(x, uri,
                           "a model id is not supported: give models:/<name>/<version> "
                           "or models:/<name>@<alias>");
        if (blank(p, (size_t)(at - p)) || blank(at + 1, strlen(at + 1)))
            return bad_uri(x, uri, "no model name or no alias");
        name = strndup(p, (size_t)(at - p));
        alias = strdup(at + 1);
    }
    if (!name || (!version && !alias)) {
        free(name);
        free(version);
        free(alias);
        return MLO_ERR_NO_MEMORY;
    }
    char *source = NULL;
    mlo_api_error e;
    memset(&e, 0, sizeof e);
    arm(x->a, x->c);
    int st = mlo__api_get_model_version(x->a, name, version, alias, &source, NULL, NULL, &e);
    if (st != MLO_OK) {
        fail_api(x->c, x->fn, &e, st);
    } else if (!*source) {
        mlo__env_report(mlo__client_env(x->c), MLO_ERR_PROTOCOL, 0,
                        "%s: model version %.300s has no source", x->fn, uri);
        st = MLO_ERR_PROTOCOL;
    } else {
        st = resolve(x, source, out, hops + 1);
    }
    free(source);
    free(name);
    free(version);
    free(alias);
    return st;
}

/* A source given as "mlflow-artifacts:/..." (or another scheme). */
static int resolve_artifact_uri(mlo_ctx *x, const char *uri, mlo_loc *out) {
    char *root = NULL;
    int st = mlo__api_artifact_root(uri, &root);
    if (st == MLO_ERR_ARTIFACTS_NOT_PROXIED) {
        mlo__env_report(mlo__client_env(x->c), st, 0,
                        "%s: the artifacts are at %.300s, which the client cannot reach through "
                        "the tracking server: run the server with --serve-artifacts",
                        x->fn, uri);
        return st;
    }
    if (st != MLO_OK)
        return st;
    /* Keep the last segment as the prefix, so that what the URI names is
     * looked up in its parent's listing (a file or a directory). */
    char *slash = strrchr(root, '/');
    if (!*root || mlo__validate_artifact_path(root, 0) != MLO_OK) {
        mlo__env_report(mlo__client_env(x->c), MLO_ERR_INVALID_PATH, 0,
                        "%s: unusable artifact location %.300s", x->fn, uri);
        free(root);
        return MLO_ERR_INVALID_PATH;
    }
    if (slash) {
        out->prefix = strdup(slash + 1);
        *slash = '\0';
        out->root = root;
    } else {
        out->prefix = strdup("");
        out->root = root;
    }
    if (!out->prefix) {
        loc_free(out);
        return MLO_ERR_NO_MEMORY;
    }
    return MLO_OK;
}

/* A run id or a runs:/ or models:/ URI (or, from a model version's source,
 * an artifact URI) -> location. */
static int resolve(mlo_ctx *x, const char *id, mlo_loc *out, int hops) {
    memset(out, 0, sizeof *out);
    if (hops > MAX_URI_HOPS)
        return bad_uri(x, id, "model version sources refer to each other too deeply");
    if (!strncmp(id, "runs:", 5))
        return resolve_runs_uri(x, id, id + 5, out);
    if (!strncmp(id, "models:", 7))
        return resolve_models_uri(x, id, id + 7, out, hops);
    if (hops > 0) /* a model version's source */
        return resolve_artifact_uri(x, id, out);
    if (strpbrk(id, "/:?#"))
        return bad_uri(x, id, "neither a run id nor a runs:/ or models:/ URI");
    return resolve_run(x, id, NULL, out);
}

static int begin(mlo_client *c, const char *fn, const char *run_id, const char *artifact_path,
                 mlo_ctx *x) {
    int st = mlo__client_check(c);
    if (st != MLO_OK)
        return st;
    if ((st = check_str(run_id)) != MLO_OK)
        return st;
    if ((st = mlo__validate_artifact_path(artifact_path, 1)) != MLO_OK)
        return st;
    if ((st = need_uri(c, fn)) != MLO_OK)
        return st;
    x->c = c;
    x->fn = fn;
    x->a = mlo__api_new(mlo__client_env(c));
    return x->a ? MLO_OK : MLO_ERR_NO_MEMORY;
}

/* ---- listing ---------------------------------------------------------------- */

typedef struct list_ctx {
    mlo_ctx *x;
    const char *base; /* the caller's artifact_path (the prefix of every path) */
    mlo_artifact_fn fn;
    void *user;
    int status;
    mlo_buf path;
} list_ctx;

static int list_cb(void *vctx, const char *name, int is_dir, int64_t size) {
    list_ctx *l = vctx;
    if (!name_ok(name)) {
        mlo__env_report(mlo__client_env(l->x->c), MLO_ERR_INVALID_PATH, 0,
                        "%s: the server listed an entry named \"%.200s\": refused", l->x->fn, name);
        l->status = MLO_ERR_INVALID_PATH;
        return 1;
    }
    mlo__buf_reset(&l->path);
    if ((*l->base && (mlo__buf_appends(&l->path, l->base) || mlo__buf_appendc(&l->path, '/'))) ||
        mlo__buf_appends(&l->path, name)) {
        l->status = MLO_ERR_NO_MEMORY;
        return 1;
    }
    return l->fn(l->user, l->path.data, is_dir ? 1 : 0, is_dir ? -1 : size) != 0;
}

MLO_API int mlo_list_artifacts(mlo_client_t *c, const char *run_id, const char *artifact_path,
                               mlo_artifact_fn fn, void *user_data) {
    mlo_ctx x;
    int st = mlo__client_check(c);
    if (st != MLO_OK)
        return st;
    if (!fn)
        return MLO_ERR_INVALID_ARGUMENT;
    if ((st = begin(c, "mlo_list_artifacts", run_id, artifact_path, &x)) != MLO_OK)
        return st;
    mlo_loc loc;
    st = resolve(&x, run_id, &loc, 0);
    if (st == MLO_OK) {
        char *rel = join(loc.prefix, artifact_path);
        if (!rel) {
            st = MLO_ERR_NO_MEMORY;
        } else {
            list_ctx l = {
                .x = &x, .base = artifact_path ? artifact_path : "", .fn = fn, .user = user_data};
            mlo_api_error e;
            memset(&e, 0, sizeof e);
            arm(x.a, c);
            st = mlo__api_artifact_list(x.a, loc.root, rel, list_cb, &l, &e);
            if (st != MLO_OK)
                fail_api(c, x.fn, &e, st);
            else
                st = l.status;
            mlo__buf_free(&l.path);
            free(rel);
        }
        loc_free(&loc);
    }
    mlo__api_free(x.a);
    return st;
}

/* ---- download --------------------------------------------------------------- */

typedef struct entry {
    char *name;
    int is_dir;
    int64_t size;
} entry;

typedef struct entries {
    entry *v;
    size_t n, cap;
    int status;       /* MLO_OK, or why collecting stopped */
    const char *want; /* collect only this name (a lookup), or NULL: all */
} entries;

static void entries_free(entries *es) {
    for (size_t i = 0; i < es->n; i++)
        free(es->v[i].name);
    free(es->v);
    memset(es, 0, sizeof *es);
}

static int collect_cb(void *vctx, const char *name, int is_dir, int64_t size) {
    entries *es = vctx;
    if (es->want && strcmp(name, es->want) != 0)
        return 0;
    if (!name_ok(name)) {
        es->status = MLO_ERR_INVALID_PATH;
        if (!es->v) { /* keep the name for the message */
            es->v = calloc(1, sizeof *es->v);
            if (es->v && (es->v[0].name = strdup(name)))
                es->n = 1;
        }
        return 1;
    }
    if (es->n == es->cap) {
        size_t cap = es->cap ? es->cap * 2 : 16;
        entry *v = realloc(es->v, cap * sizeof *v);
        if (!v) {
            es->status = MLO_ERR_NO_MEMORY;
            return 1;
        }
        es->v = v;
        es->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) {
        es->status = MLO_ERR_NO_MEMORY;
        return 1;
    }
    es->v[es->n++] = (entry){copy, is_dir ? 1 : 0, size};
    return es->want != NULL; /* a lookup stops at its name */
}

/* Lists root/rel into es.  Reports failures. */
static int list_dir(mlo_ctx *x, const char *root, const char *rel, entries *es) {
    mlo_api_error e;
    memset(&e, 0, sizeof e);
    arm(x->a, x->c);
    int st = mlo__api_artifact_list(x->a, root, rel, collect_cb, es, &e);
    if (st != MLO_OK)
        return fail_api(x->c, x->fn, &e, st);
    if (es->status == MLO_ERR_INVALID_PATH)
        mlo__env_report(mlo__client_env(x->c), MLO_ERR_INVALID_PATH, 0,
                        "%s: the server listed an entry named \"%.200s\" in \"%.300s\": refused, "
                        "nothing is written outside the download directory",
                        x->fn, es->n ? es->v[0].name : "", rel);
    return es->status;
}

static int io_fail(mlo_ctx *x, const char *what, const char *name, int err) {
    mlo__env_report(mlo__client_env(x->c), MLO_ERR_IO, 0, "%s: %s \"%.300s\": %s", x->fn, what,
                    name, strerror(err));
    return MLO_ERR_IO;
}

static int symlink_fail(mlo_ctx *x, const char *rel) {
    mlo__env_report(mlo__client_env(x->c), MLO_ERR_INVALID_PATH, 0,
                    "%s: \"%.300s\" is a symbolic link in the download directory: not followed",
                    x->fn, rel);
    return MLO_ERR_INVALID_PATH;
}

/* Downloads root/rel into the file `name` of directory dfd.  rel is for
 * messages too. */
static int get_file(mlo_ctx *x, const char *root, const char *rel, int dfd, const char *name) {
    struct stat sb;
    if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(sb.st_mode))
            return symlink_fail(x, rel);
        if (S_ISDIR(sb.st_mode))
            return io_fail(x, "cannot write the file", rel, EISDIR);
    }
    char *part = NULL;
    if (asprintf(&part, "%s" PART_SUFFIX, name) < 0)
        return MLO_ERR_NO_MEMORY;
    /* a part left by an earlier, interrupted download (unlinkat never
     * follows a link: a planted one goes, its target stays) */
    if (unlinkat(dfd, part, 0) != 0 && errno != ENOENT && errno != EISDIR) {
        int err = errno;
        free(part);
        return io_fail(x, "cannot replace the partial file of", rel, err);
    }
    int fd = openat(dfd, part, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0) {
        int err = errno;
        free(part);
        return io_fail(x, "cannot create the partial file of", rel, err);
    }
    mlo_api_error e;
    memset(&e, 0, sizeof e);
    mlo__api_set_deadline(x->a, 0); /* bounded per attempt by the transport: see the top */
    int64_t got = 0;
    int st = mlo__api_artifact_get(x->a, root, rel, fd, &got, &e);
    if (st != MLO_OK) {
        if (st == MLO_ERR_STORE) /* the transport could not write the file */
            st = MLO_ERR_IO;
        fail_api(x->c, x->fn, &e, st);
    } else if (fdatasync(fd) != 0) {
        st = io_fail(x, "cannot write", rel, errno);
    }
    if (close(fd) != 0 && st == MLO_OK)
        st = io_fail(x, "cannot write", rel, errno);
    if (st == MLO_OK && renameat(dfd, part, dfd, name) != 0)
        st = io_fail(x, "cannot rename the downloaded file onto", rel, errno);
    if (st != MLO_OK)
        unlinkat(dfd, part, 0);
    free(part);
    return st;
}

/* Opens (creating it if missing) the subdirectory `name` of dfd, never
 * through a symbolic link.  -1 with *st set on failure. */
static int open_subdir(mlo_ctx *x, int dfd, const char *name, const char *rel, int *st) {
    if (mkdirat(dfd, name, 0777) != 0 && errno != EEXIST) {
        *st = io_fail(x, "cannot create the directory", rel, errno);
        return -1;
    }
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0)
        return fd;
    int err = errno;
    struct stat sb;
    if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(sb.st_mode))
        *st = symlink_fail(x, rel);
    else
        *st = io_fail(x, "cannot open the directory", rel, err);
    return -1;
}

static int sync_dir(mlo_ctx *x, int dfd, const char *what) {
    if (fsync(dfd) != 0 && errno != EINVAL && errno != EROFS)
        return io_fail(x, "cannot sync the directory", what, errno);
    return MLO_OK;
}

/* Downloads the directory root/rel (rel may be "") into dfd. */
static int get_dir(mlo_ctx *x, const char *root, const char *rel, int dfd, int depth) {
    if (depth > MAX_DEPTH) {
        mlo__env_report(mlo__client_env(x->c), MLO_ERR_INVALID_PATH, 0,
                        "%s: \"%.300s\" is more than %d directories deep: refused", x->fn, rel,
                        MAX_DEPTH);
        return MLO_ERR_INVALID_PATH;
    }
    entries es = {0};
    int st = list_dir(x, root, rel, &es);
    for (size_t i = 0; st == MLO_OK && i < es.n; i++) {
        char *sub = join(rel, es.v[i].name);
        if (!sub) {
            st = MLO_ERR_NO_MEMORY;
            break;
        }
        if (mlo__validate_artifact_path(sub, 0) != MLO_OK) { /* too long, not UTF-8 */
            mlo__env_report(mlo__client_env(x->c), MLO_ERR_INVALID_PATH, 0,
                            "%s: unusable artifact path \"%.300s\"", x->fn, sub);
            st = MLO_ERR_INVALID_PATH;
        } else if (es.v[i].is_dir) {
            int sfd = open_subdir(x, dfd, es.v[i].name, sub, &st);
            if (sfd >= 0) {
                st = get_dir(x, root, sub, sfd, depth + 1);
                close(sfd);
            }
        } else {
            st = get_file(x, root, sub, dfd, es.v[i].name);
        }
        free(sub);
    }
    entries_free(&es);
    if (st == MLO_OK) /* the renames and new directories in it */
        st = sync_dir(x, dfd, *rel ? rel : "(the download directory)");
    return st;
}

/* mkdir -p dir, then opens it. */
static int open_dest(mlo_ctx *x, const char *dir, int *st) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0)
        return fd;
    if (errno != ENOENT) {
        *st = io_fail(x, "cannot open the download directory", dir, errno);
        return -1;
    }
    char *p = strdup(dir);
    if (!p) {
        *st = MLO_ERR_NO_MEMORY;
        return -1;
    }
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            *st = io_fail(x, "cannot create the download directory", p, errno);
            free(p);
            return -1;
        }
        *s = '/';
    }
    free(p);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        *st = io_fail(x, "cannot create the download directory", dir, errno);
        return -1;
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        *st = io_fail(x, "cannot open the download directory", dir, errno);
    return fd;
}

MLO_API int mlo_download_artifacts(mlo_client_t *c, const char *run_id, const char *artifact_path,
                                   const char *dest_dir) {
    mlo_ctx x;
    int st = mlo__client_check(c);
    if (st != MLO_OK)
        return st;
    if (!dest_dir || !*dest_dir)
        return MLO_ERR_INVALID_ARGUMENT;
    if ((st = begin(c, "mlo_download_artifacts", run_id, artifact_path, &x)) != MLO_OK)
        return st;
    mlo_loc loc;
    st = resolve(&x, run_id, &loc, 0);
    if (st != MLO_OK) {
        mlo__api_free(x.a);
        return st;
    }
    char *target = join(loc.prefix, artifact_path);
    int is_dir = 1;
    if (!target) {
        st = MLO_ERR_NO_MEMORY;
    } else if (*target) {
        /* a file or a directory?  Its parent's listing says (MLflow's
         * proxied listing of a file path is empty, like a missing one's) */
        char *slash = strrchr(target, '/');
        const char *base = slash ? slash + 1 : target;
        char *parent = slash ? strndup(target, (size_t)(slash - target)) : strdup("");
        entries es = {.want = base};
        if (!parent) {
            st = MLO_ERR_NO_MEMORY;
        } else {
            st = list_dir(&x, loc.root, parent, &es);
            if (st == MLO_OK && es.n == 0) {
                mlo__env_report(mlo__client_env(c), MLO_ERR_NOT_FOUND, 0,
                                "%s: no artifact \"%.300s\" at %.300s", x.fn,
                                *target ? target : "(root)", run_id);
                st = MLO_ERR_NOT_FOUND;
            } else if (st == MLO_OK) {
                is_dir = es.v[0].is_dir;
            }
        }
        free(parent);
        entries_free(&es);
    }
    int dfd = st == MLO_OK ? open_dest(&x, dest_dir, &st) : -1;
    if (dfd >= 0) {
        if (is_dir) {
            st = get_dir(&x, loc.root, target, dfd, 0);
        } else {
            const char *slash = strrchr(target, '/');
            st = get_file(&x, loc.root, target, dfd, slash ? slash + 1 : target);
        }
        if (st == MLO_OK && !is_dir)
            st = sync_dir(&x, dfd, dest_dir);
        close(dfd);
    }
    free(target);
    loc_free(&loc);
    mlo__api_free(x.a);
    return st;
}

/* ---- the model registry ----------------------------------------------------- */

/* Waits until the run has its server id (the sender creates it), as
 * mlo_start_run does, at most until deadline_ns. */
static int wait_server_id(mlo_run *r, int64_t deadline_ns, const char **sid) {
    mlo_client *c = r->client;
    if (!mlo__runs_sid(r))
        mlo__client_wake(c); /* the writer may be asleep for a flush interval */
    return mlo__runs_wait(mlo__client_runs(c), r, deadline_ns, sid);
}

MLO_API int mlo_register_model(mlo_run_t *r, const char *artifact_path, const char *name,
                               int64_t *version) {
    static const char fn[] = "mlo_register_model";
    int st = mlo__client_run_check(r);
    if (st != MLO_OK)
        return st;
    mlo_client *c = r->client;
    if ((st = check_str(name)) != MLO_OK)
        return st;
    if ((st = mlo__validate_artifact_path(artifact_path, 1)) != MLO_OK)
        return st;
    if ((st = need_uri(c, fn)) != MLO_OK)
        return st;
    int64_t deadline = mlo__env_mono(mlo__client_env(c)) + timeout_ns(c);
    const char *sid = NULL;
    st = wait_server_id(r, deadline, &sid);
    if (st != MLO_OK) {
        mlo__env_report(mlo__client_env(c), st, 0, "%s: run %s %s", fn, r->local_id,
                        st == MLO_ERR_TIMEOUT ? "is not on the server yet"
                                              : "could not be created on the server");
        return st;
    }
    st = mlo__uploader_wait_run(mlo__client_uploader(c), r->local_id, artifact_path, deadline);
    if (st != MLO_OK) {
        mlo__env_report(mlo__client_env(c), st, 0, "%s: the artifacts of run %s %s", fn, sid,
                        st == MLO_ERR_TIMEOUT ? "are not all uploaded yet"
                                              : "could not all be uploaded");
        return st;
    }
    mlo_api *a = mlo__api_new(mlo__client_env(c));
    if (!a)
        return MLO_ERR_NO_MEMORY;
    mlo_api_error e;
    memset(&e, 0, sizeof e);
    char *uri = NULL, *source = NULL, *ver = NULL;
    arm(a, c);
    st = mlo__api_get_run_info(a, sid, NULL, &uri, &e);
    if (st == MLO_OK) {
        size_t n = strlen(uri);
        while (n && uri[n - 1] == '/')
            n--;
        uri[n] = '\0';
        source = join(uri, artifact_path);
        if (!source)
            st = MLO_ERR_NO_MEMORY;
    }
    if (st == MLO_OK) {
        arm(a, c);
        st = mlo__api_create_registered_model(a, name, &e);
    }
    if (st == MLO_OK) {
        arm(a, c);
        st = mlo__api_create_model_version(a, name, source, sid, &ver, &e);
    }
    if (st == MLO_OK) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(ver, &end, 10);
        if (errno || end == ver || *end || v <= 0) {
            mlo__env_report(mlo__client_env(c), MLO_ERR_PROTOCOL, 0,
                            "%s: the server gave version \"%.64s\"", fn, ver);
            st = MLO_ERR_PROTOCOL;
        } else if (version) {
            *version = (int64_t)v;
        }
    } else {
        fail_api(c, fn, &e, st);
    }
    free(uri);
    free(source);
    free(ver);
    mlo__api_free(a);
    return st;
}

MLO_API int mlo_set_model_alias(mlo_client_t *c, const char *name, const char *alias,
                                int64_t version) {
    static const char fn[] = "mlo_set_model_alias";
    int st = mlo__client_check(c);
    if (st != MLO_OK)
        return st;
    if ((st = check_str(name)) != MLO_OK || (st = check_str(alias)) != MLO_OK)
        return st;
    if (version <= 0)
        return MLO_ERR_INVALID_ARGUMENT;
    if ((st = need_uri(c, fn)) != MLO_OK)
        return st;
    mlo_api *a = mlo__api_new(mlo__client_env(c));
    if (!a)
        return MLO_ERR_NO_MEMORY;
    char ver[24];
    snprintf(ver, sizeof ver, "%lld", (long long)version);
    mlo_api_error e;
    memset(&e, 0, sizeof e);
    arm(a, c);
    st = mlo__api_set_model_alias(a, name, alias, ver, &e);
    if (st != MLO_OK)
        fail_api(c, fn, &e, st);
    mlo__api_free(a);
    return st;
}
