/*
 * mlo_artifact.c - mlo_log_artifact / mlo_log_artifact_bytes: stage files
 * into the store for the uploader (send/mlo_uploader.c), or, without a
 * store, upload them in the call.
 *
 * ==== Staging (the log call, any thread) ====
 * Each file is copied into <store>/artifacts/<id>.blob in 1 MiB chunks (the
 * only buffer: memory does not grow with the file) while its SHA-256 is
 * computed (mlo_sha256.c); it is written as <id>.blob.tmp, fsync'd
 * (unless the store's fsync policy is MLO_FSYNC_NONE) and renamed.  Then the
 * manifest <id>.art (run local id, artifact path, size, SHA-256, tracking URI
 * it is bound for; format below) is written the same way (tmp, fsync,
 * rename) and the directory fsync'd.  The call returns after that, so the
 * caller may delete or overwrite its file at once.  A directory is walked
 * recursively (openat + fdopendir, names sorted so the order is
 * deterministic); a symbolic link is followed only when realpath() puts it
 * inside the directory (loops are cut by the (dev, inode) of the
 * directories being walked), others are skipped and reported, as are
 * special files and names that are not valid artifact paths.  A directory is
 * all or nothing: every blob is staged first, the manifests are written
 * after; on any failure what was staged is removed and the call fails.
 * id = <procid>-<8 digits>: the client's procid (mlo_store.c) says whose it
 * is; the counter is per process.
 *
 * The manifest format is at the top of store/mlo_manifest.c; the uploader
 * that sends what is staged is send/mlo_uploader.c.
 *
 * Without a store (durability off) nothing is staged: the call uploads the
 * files itself, synchronously, and returns the upload's status.
 *
 * Threads: the log calls from any thread.
 */
#define _GNU_SOURCE
#include "mlo_client.h"

#include "mlo_api.h"
#include "mlo_fs.h"
#include "mlo_manifest.h"
#include "mlo_sha256.h"
#include "mlo_store.h"
#include "mlo_uploader.h"
#include "mlo_validate.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (1u << 20)
#define MAX_DEPTH 128

static _Atomic uint64_t id_counter;

/* ---- walking a file or a directory ------------------------------------------------ */

/* Called per regular file: fd open for reading, shown = its local path (for
 * messages), rel = its artifact path (checked).  Returns an mlo_status;
 * anything but MLO_OK stops the walk. */
typedef int (*file_fn)(void *ctx, int fd, const char *shown, const char *rel);

/* The walk of a directory (mlo__fs_walk), as the log call sees it: each
 * file's artifact path is the artifact_path given + its path below the
 * directory; names that are not valid artifact paths, links out of the
 * directory or to nothing, cycles, special files and too deep nesting are
 * skipped and reported. */
typedef struct walk_ctx {
    mlo_env *env;
    file_fn fn;
    void *ctx;
    const char *prefix; /* artifact_path, or NULL */
    mlo_buf full;
} walk_ctx;

/* prefix + "/" + rel, in x->full; NULL when out of memory. */
static const char *full_rel(walk_ctx *x, const char *rel) {
    mlo__buf_reset(&x->full);
    if (x->prefix && *x->prefix &&
        (mlo__buf_appends(&x->full, x->prefix) || mlo__buf_appendc(&x->full, '/')))
        return NULL;
    if (mlo__buf_appends(&x->full, rel) || mlo__buf_reserve(&x->full, 1))
        return NULL;
    return x->full.data;
}

static int walk_accept(void *ctx, const char *rel, const char *name, const char *path) {
    walk_ctx *x = ctx;
    int pc = mlo__validate_artifact_path(name, 0);
    const char *full = pc == MLO_OK ? full_rel(x, rel) : NULL;
    if (pc == MLO_OK && full)
        pc = mlo__validate_artifact_path(full, 0); /* its length */
    if (pc == MLO_OK && !full)
        return 0; /* out of memory: the file callback will say so */
    if (pc == MLO_OK)
        return 0;
    size_t dl = strlen(path) - strlen(name) - 1;
    mlo__env_report(x->env, pc, 1,
                    "log_artifact: %.*s/%s: the name is not a valid artifact path (%s): skipped",
                    (int)dl, path, pc == MLO_ERR_INVALID_UTF8 ? "(not UTF-8)" : name,
                    mlo_strerror(pc));
    return 1;
}

static int walk_file(void *ctx, int fd, const char *rel, const char *path, int64_t size) {
    (void)size;
    walk_ctx *x = ctx;
    const char *full = full_rel(x, rel);
    return full ? x->fn(x->ctx, fd, path, full) : MLO_ERR_NO_MEMORY;
}

static int walk_skip(void *ctx, int why, const char *rel, const char *path) {
    (void)rel;
    walk_ctx *x = ctx;
    switch (why) {
    case MLO_WALK_BROKEN:
        mlo__env_report(x->env, MLO_ERR_IO, 1,
                        "log_artifact: %s is a dangling symbolic link: skipped", path);
        break;
    case MLO_WALK_OUTSIDE:
        mlo__env_report(x->env, MLO_ERR_INVALID_PATH, 1,
                        "log_artifact: %s is a symbolic link to outside the directory: skipped",
                        path);
        break;
    case MLO_WALK_CYCLE:
        mlo__env_report(x->env, MLO_ERR_INVALID_PATH, 1,
                        "log_artifact: %s leads back to a directory above it: skipped", path);
        break;
    case MLO_WALK_TOO_DEEP:
        mlo__env_report(x->env, MLO_ERR_INVALID_PATH, 1,
                        "log_artifact: %s is nested more than %d directories deep: skipped", path,
                        MAX_DEPTH);
        break;
    default:
        mlo__env_report(x->env, MLO_ERR_IO, 1,
                        "log_artifact: %s is not a regular file or directory: skipped", path);
        break;
    }
    return 0;
}

/* The artifact path of a single file: artifact_path + "/" + its base name. */
static char *file_rel(const char *local_path, const char *artifact_path) {
    size_t l = strlen(local_path);
    while (l > 1 && local_path[l - 1] == '/')
        l--;
    size_t b = l;
    while (b > 0 && local_path[b - 1] != '/')
        b--;
    char *r = NULL;
    if (asprintf(&r, "%s%s%.*s", artifact_path && *artifact_path ? artifact_path : "",
                 artifact_path && *artifact_path ? "/" : "", (int)(l - b), local_path + b) < 0)
        return NULL;
    return r;
}

/* Calls fn for local_path (a file) or every file under it (a directory). */
static int for_each_file(mlo_env *env, const char *local_path, const char *artifact_path,
                         file_fn fn, void *ctx) {
    int fd = open(local_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        int e = errno;
        mlo__env_report(env, MLO_ERR_IO, 0, "log_artifact: cannot open %s: %s", local_path,
                    strerror(e));
        if (fd >= 0)
            close(fd);
        return MLO_ERR_IO;
    }
    int st;
    if (S_ISREG(sb.st_mode)) {
        char *rel = file_rel(local_path, artifact_path);
        st = rel ? mlo__validate_artifact_path(rel, 0) : MLO_ERR_NO_MEMORY;
        if (st == MLO_ERR_INVALID_PATH || st == MLO_ERR_INVALID_UTF8)
            mlo__env_report(env, st, 0, "log_artifact: the file name of %s is not a valid artifact path",
                        local_path);
        if (st == MLO_OK)
            st = fn(ctx, fd, local_path, rel);
        free(rel);
    } else if (S_ISDIR(sb.st_mode)) {
        walk_ctx x = {.env = env, .fn = fn, .ctx = ctx, .prefix = artifact_path};
        mlo_walk w = {.follow = MLO_WALK_FOLLOW_INSIDE,
                      .max_depth = MAX_DEPTH - 1,
                      .accept = walk_accept,
                      .file = walk_file,
                      .skip = walk_skip,
                      .ctx = &x};
        st = mlo__fs_walk(&w, local_path);
        if (st == -1) {
            st = w.err == ENOMEM ? MLO_ERR_NO_MEMORY : MLO_ERR_IO;
            if (st == MLO_ERR_IO)
                mlo__env_report(env, st, 0, "log_artifact: cannot read %s: %s", w.where,
                                strerror(w.err));
        }
        mlo__buf_free(&x.full);
    } else {
        mlo__env_report(env, MLO_ERR_IO, 0, "log_artifact: %s is not a regular file or directory",
                    local_path);
        st = MLO_ERR_IO;
    }
    close(fd);
    return st;
}

/* ---- staging into the store ---------------------------------------------------------- */

typedef struct staged {
    char id[96];
    char *rel;
    int64_t size;
    char sha[65];
} staged;

typedef struct stager {
    mlo_env *env;
    mlo_run *r;
    char *dir;
    const char *procid;
    unsigned char *buf;
    staged *v;
    size_t n, cap;
    int do_fsync;
    /* mlo_log_artifact_bytes: the content comes from memory */
    const unsigned char *mem;
    size_t mem_len;
} stager;

/* Copies fd (or the stager's memory when fd < 0) into a new blob. */
static int stage_one(stager *s, int fd, const char *shown, const char *rel) {
    mlo_env *env = s->env;
    if (s->n == s->cap) {
        size_t nc = s->cap ? 2 * s->cap : 8;
        staged *nv = realloc(s->v, nc * sizeof *nv);
        if (!nv)
            return MLO_ERR_NO_MEMORY;
        s->v = nv;
        s->cap = nc;
    }
    staged *g = &s->v[s->n];
    memset(g, 0, sizeof *g);
    snprintf(g->id, sizeof g->id, "%s-%08" PRIu64, s->procid,
             atomic_fetch_add(&id_counter, 1) + 1);
    g->rel = strdup(rel);
    char *blob = mlo__manifest_path(s->dir, g->id, ".blob");
    char *tmp = mlo__manifest_path(s->dir, g->id, ".blob.tmp");
    mlo_sha256 *x = mlo__sha256_new();
    if (!g->rel || !blob || !tmp || !x) {
        free(g->rel);
        free(blob);
        free(tmp);
        mlo__sha256_free(x);
        return MLO_ERR_NO_MEMORY;
    }
    int st = MLO_OK;
    int out = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (out < 0) {
        mlo__env_report(env, MLO_ERR_STORE, 0, "log_artifact: cannot create %s: %s", tmp,
                    strerror(errno));
        st = MLO_ERR_STORE;
    }
    size_t mem_off = 0;
    while (st == MLO_OK) {
        ssize_t r;
        const unsigned char *p;
        if (fd >= 0) {
            r = mlo__fs_read_some(fd, s->buf, CHUNK);
            p = s->buf;
            if (r < 0) {
                mlo__env_report(env, MLO_ERR_IO, 0, "log_artifact: cannot read %s: %s", shown,
                            strerror(errno));
                st = MLO_ERR_IO;
                break;
            }
        } else {
            r = (ssize_t)(s->mem_len - mem_off < CHUNK ? s->mem_len - mem_off : CHUNK);
            p = s->mem + mem_off;
            mem_off += (size_t)r;
        }
        if (r == 0)
            break;
        if (mlo__sha256_update(x, p, (size_t)r) != 0) {
            st = MLO_ERR_NO_MEMORY;
            break;
        }
        if (mlo__fs_write_all(out, p, (size_t)r) != 0) {
            mlo__env_report(env, MLO_ERR_STORE, 0, "log_artifact: cannot write %s: %s", tmp,
                        strerror(errno));
            st = MLO_ERR_STORE;
            break;
        }
        g->size += r;
    }
    if (st == MLO_OK && s->do_fsync && fsync(out) != 0) {
        mlo__env_report(env, MLO_ERR_STORE, 0, "log_artifact: cannot write %s: %s", tmp,
                    strerror(errno));
        st = MLO_ERR_STORE;
    }
    if (out >= 0)
        close(out);
    if (st == MLO_OK && mlo__sha256_final(x, NULL, g->sha) != 0)
        st = MLO_ERR_INTERNAL;
    mlo__sha256_free(x);
    if (st == MLO_OK) {
        if (rename(tmp, blob) != 0) {
            mlo__env_report(env, MLO_ERR_STORE, 0, "log_artifact: cannot rename %s: %s", tmp,
                        strerror(errno));
            st = MLO_ERR_STORE;
        }
    }
    if (st != MLO_OK) {
        unlink(tmp);
        free(g->rel);
    } else {
        s->n++;
    }
    free(blob);
    free(tmp);
    return st;
}

static int stage_fn(void *ctx, int fd, const char *shown, const char *rel) {
    return stage_one(ctx, fd, shown, rel);
}

/* Removes what a failed call staged. */
static void stage_rollback(stager *s, size_t manifests) {
    for (size_t i = 0; i < s->n; i++) {
        char *p = mlo__manifest_path(s->dir, s->v[i].id, ".blob");
        if (p)
            unlink(p);
        free(p);
        if (i < manifests) {
            p = mlo__manifest_path(s->dir, s->v[i].id, ".art");
            if (p)
                unlink(p);
            free(p);
        }
    }
}

static void stage_free(stager *s) {
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].rel);
    free(s->v);
    free(s->dir);
    free(s->buf);
}

/* Hands the staged files of run lid over to the uploader (if any). */
static int hand_over(mlo_client *c, const char *lid, const stager *s) {
    mlo_uploader *u = mlo__client_uploader(c);
    if (!u || !s->n)
        return MLO_OK;
    const char **ids = calloc(s->n, sizeof *ids);
    if (!ids)
        return MLO_ERR_NO_MEMORY;
    for (size_t i = 0; i < s->n; i++)
        ids[i] = s->v[i].id;
    int st = mlo__uploader_hand_over(u, lid, ids, s->n);
    free(ids);
    return st;
}

/* Stages local_path (mem == NULL) or the bytes mem[0..len) as rel. */
static int stage(mlo_run *r, const char *local_path, const char *artifact_path,
                 const void *mem, size_t len, const char *rel) {
    mlo_client *c = r->client;
    mlo_env *env = mlo__client_env(c);
    mlo_store *store = mlo__client_store(c);
    stager s = {.env = env, .r = r, .procid = mlo__store_procid(store)};
    s.do_fsync = mlo__store_fsync_policy(store) != MLO_FSYNC_NONE;
    if (asprintf(&s.dir, "%s/" MLO_ARTIFACTS_SUB, mlo__store_dir(store)) < 0) {
        s.dir = NULL;
        return MLO_ERR_NO_MEMORY;
    }
    int st;
    if (mkdir(s.dir, 0700) != 0 && errno != EEXIST) {
        mlo__env_report(env, MLO_ERR_STORE, 0, "log_artifact: cannot create %s: %s", s.dir,
                    strerror(errno));
        stage_free(&s);
        return MLO_ERR_STORE;
    }
    if (rel) {
        s.mem = mem;
        s.mem_len = len;
        st = stage_one(&s, -1, rel, rel);
    } else {
        s.buf = malloc(CHUNK);
        st = s.buf ? for_each_file(env, local_path, artifact_path, stage_fn, &s)
                   : MLO_ERR_NO_MEMORY;
    }
    size_t written = 0;
    if (st == MLO_OK) {
        const char *uri = mlo__store_uri(store);
        for (; written < s.n; written++) {
            mlo_manifest m = {.path = s.v[written].rel,
                              .size = s.v[written].size,
                              .created = mlo__env_now_ms(env),
                              .uri = (char *)uri};
            snprintf(m.lid, sizeof m.lid, "%.32s", r->local_id);
            memcpy(m.sha, s.v[written].sha, sizeof m.sha);
            if (mlo__manifest_write(s.dir, s.v[written].id, ".art", &m, s.do_fsync) != 0) {
                mlo__env_report(env, MLO_ERR_STORE, 0, "log_artifact: cannot write a manifest in %s: %s",
                            s.dir, strerror(errno));
                st = MLO_ERR_STORE;
                break;
            }
        }
    }
    if (st == MLO_OK && s.n) {
        if (s.do_fsync)
            mlo__fs_fsync_dir(s.dir);
        st = hand_over(c, r->local_id, &s);
    }
    if (st != MLO_OK)
        stage_rollback(&s, written);
    stage_free(&s);
    return st;
}

/* ---- without a store: uploading in the call ------------------------------------------ */

typedef struct direct {
    mlo_env *env;
    mlo_api *api;
    const char *root;
    mlo_mpu_cfg mpu;
} direct;

static int direct_fn(void *ctx, int fd, const char *shown, const char *rel) {
    direct *d = ctx;
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return MLO_ERR_IO;
    mlo_api_error e;
    int st = mlo__api_artifact_upload(d->api, &d->mpu, d->root, rel, fd, (int64_t)sb.st_size, &e);
    if (st == MLO_ERR_STORE)
        st = MLO_ERR_IO; /* the transport could not read the caller's file */
    if (st == MLO_OK) {
        mlo__env_stat(d->env, MLO_STAT_ARTIFACT_BYTES, (uint64_t)sb.st_size);
        mlo__env_stat(d->env, MLO_STAT_ARTIFACT_FILES, 1);
    } else {
        mlo__env_report(d->env, st, 0, "log_artifact: %s as %s: %s", shown, rel,
                    e.message[0] ? e.message : mlo_strerror(st));
    }
    return st;
}

static int upload_direct(mlo_run *r, const char *local_path, const char *artifact_path,
                         const void *mem, size_t len, const char *rel) {
    mlo_client *c = r->client;
    mlo_env *env = mlo__client_env(c);
    if (!env->cfg->tracking_uri) {
        mlo__env_report(env, MLO_ERR_STORE, 0,
                        "log_artifact: no store and no tracking URI: the artifact has nowhere to "
                        "go");
        return MLO_ERR_STORE;
    }
    char *uri = NULL, *root = NULL;
    const char *sid = NULL;
    double t = env->cfg->timeout_s > 0 ? env->cfg->timeout_s : 120;
    int st = mlo__runs_wait(mlo__client_runs(c), r, mlo__env_mono(env) + (int64_t)(t * 1e9), &sid);
    if (st == MLO_ERR_CLOSED)
        st = MLO_ERR_TIMEOUT;
    if (st != MLO_OK) {
        mlo__env_report(env, st, 0, "log_artifact: run %s is not on the server: %s", r->local_id,
                        mlo_strerror(st));
        return st;
    }
    direct d = {.env = env};
    mlo__api_mpu_cfg_read(&d.mpu);
    d.api = mlo__api_new(env);
    if (!d.api)
        return MLO_ERR_NO_MEMORY;
    mlo_api_error e;
    st = mlo__api_get_run_info(d.api, sid, NULL, &uri, &e);
    if (st != MLO_OK) {
        mlo__env_report(env, st, 0, "log_artifact: run %s: %s", sid,
                    e.message[0] ? e.message : mlo_strerror(st));
    } else {
        st = mlo__api_artifact_root(uri, &root);
        if (st == MLO_ERR_ARTIFACTS_NOT_PROXIED)
            mlo__env_report(env, st, 0,
                        "log_artifact: run %s stores its artifacts at %s, which the tracking "
                        "server does not serve: start it with --serve-artifacts",
                        sid, uri ? uri : "(none)");
    }
    if (st == MLO_OK) {
        d.root = root;
        if (rel) {
            /* bytes from memory: through a memory file, as the transport
             * streams from a descriptor */
            int fd = memfd_create("mlo-artifact", MFD_CLOEXEC);
            if (fd < 0 || (len && mlo__fs_write_all(fd, mem, len) != 0)) {
                st = fd < 0 ? MLO_ERR_NO_MEMORY : MLO_ERR_NO_MEMORY;
            } else {
                st = direct_fn(&d, fd, rel, rel);
            }
            if (fd >= 0)
                close(fd);
        } else {
            st = for_each_file(env, local_path, artifact_path, direct_fn, &d);
        }
    }
    mlo__api_free(d.api);
    free(uri);
    free(root);
    return st;
}

/* ---- the public calls ------------------------------------------------------------------ */

static int log_common(mlo_run *r, const char *local_path, const char *artifact_path,
                      const void *mem, size_t len, const char *rel) {
    if (mlo__client_store(r->client))
        return stage(r, local_path, artifact_path, mem, len, rel);
    return upload_direct(r, local_path, artifact_path, mem, len, rel);
}

MLO_API int mlo_log_artifact(mlo_run_t *r, const char *local_path, const char *artifact_path) {
    int st = mlo__client_run_check(r);
    if (st != MLO_OK)
        return st;
    if (!local_path || !*local_path)
        return MLO_ERR_INVALID_ARGUMENT;
    if (!mlo__validate_utf8(local_path, strlen(local_path)))
        return MLO_ERR_INVALID_UTF8;
    st = mlo__validate_artifact_path(artifact_path, 1);
    if (st != MLO_OK) {
        mlo__env_stat(mlo__client_env(r->client), MLO_STAT_REJECTED, 1);
        return st;
    }
    return log_common(r, local_path, artifact_path, NULL, 0, NULL);
}

MLO_API int mlo_log_artifact_bytes(mlo_run_t *r, const void *data, size_t len,
                                   const char *artifact_path) {
    int st = mlo__client_run_check(r);
    if (st != MLO_OK)
        return st;
    if (!artifact_path || (!data && len))
        return MLO_ERR_INVALID_ARGUMENT;
    st = mlo__validate_artifact_path(artifact_path, 0);
    if (st != MLO_OK) {
        mlo__env_stat(mlo__client_env(r->client), MLO_STAT_REJECTED, 1);
        return st;
    }
    return log_common(r, NULL, NULL, data, len, artifact_path);
}

