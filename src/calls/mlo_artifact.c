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

typedef struct walker {
    mlo_env *env;
    file_fn fn;
    void *ctx;
    char *root;   /* realpath of the directory */
    size_t root_len;
    mlo_buf rel;
    dev_t devs[MAX_DEPTH + 1];
    ino_t inos[MAX_DEPTH + 1];
    int depth;
    int st;
} walker;

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int inside(const walker *w, const char *p) {
    if (w->root_len == 1) /* the root directory "/" */
        return 1;
    return !strncmp(p, w->root, w->root_len) && (p[w->root_len] == '/' || !p[w->root_len]);
}

static int walk_dir(walker *w, int dfd, const char *real);

/* One entry of a directory.  rel already holds its artifact path. */
static int walk_entry(walker *w, int dfd, const char *real, const char *name) {
    mlo_env *env = w->env;
    char *child = NULL;
    if (asprintf(&child, "%s/%s", real, name) < 0)
        return MLO_ERR_NO_MEMORY;
    int st = MLO_OK;
    struct stat sb;
    if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT) {
            mlo__env_report(env, MLO_ERR_IO, 0, "log_artifact: cannot read %s: %s", child,
                        strerror(errno));
            st = MLO_ERR_IO;
        }
        free(child);
        return st; /* vanished meanwhile: nothing to log */
    }
    if (S_ISLNK(sb.st_mode)) {
        char *t = realpath(child, NULL);
        if (!t) {
            mlo__env_report(env, MLO_ERR_IO, 1, "log_artifact: %s is a dangling symbolic link: skipped",
                        child);
        } else if (!inside(w, t)) {
            mlo__env_report(env, MLO_ERR_INVALID_PATH, 1,
                        "log_artifact: %s is a symbolic link to %s, outside %s: skipped", child,
                        t, w->root);
        } else if (stat(t, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            int cfd = open(t, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (cfd < 0) {
                mlo__env_report(env, MLO_ERR_IO, 0, "log_artifact: cannot open %s: %s", child,
                            strerror(errno));
                st = MLO_ERR_IO;
            } else {
                st = walk_dir(w, cfd, t);
                close(cfd);
            }
        } else if (S_ISREG(sb.st_mode)) {
            int ffd = open(t, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
            if (ffd < 0) {
                mlo__env_report(env, MLO_ERR_IO, 0, "log_artifact: cannot open %s: %s", child,
                            strerror(errno));
                st = MLO_ERR_IO;
            } else {
                st = w->fn(w->ctx, ffd, child, w->rel.data);
                close(ffd);
            }
        } else {
            mlo__env_report(env, MLO_ERR_IO, 1,
                        "log_artifact: %s is not a regular file or directory: skipped", child);
        }
        free(t);
    } else if (S_ISDIR(sb.st_mode)) {
        int cfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (cfd < 0) {
            mlo__env_report(env, MLO_ERR_IO, 0, "log_artifact: cannot open %s: %s", child,
                        strerror(errno));
            st = MLO_ERR_IO;
        } else {
            st = walk_dir(w, cfd, child);
            close(cfd);
        }
    } else if (S_ISREG(sb.st_mode)) {
        int ffd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat fsb;
        if (ffd < 0 || fstat(ffd, &fsb) != 0 || !S_ISREG(fsb.st_mode)) {
            if (ffd < 0 && errno != ENOENT) {
                mlo__env_report(env, MLO_ERR_IO, 0, "log_artifact: cannot open %s: %s", child,
                            strerror(errno));
                st = MLO_ERR_IO;
            }
        } else {
            st = w->fn(w->ctx, ffd, child, w->rel.data);
        }
        if (ffd >= 0)
            close(ffd);
    } else {
        mlo__env_report(env, MLO_ERR_IO, 1,
                    "log_artifact: %s is not a regular file or directory: skipped", child);
    }
    free(child);
    return st;
}

static int walk_dir(walker *w, int dfd, const char *real) {
    mlo_env *env = w->env;
    struct stat dsb;
    if (fstat(dfd, &dsb) != 0)
        return MLO_ERR_IO;
    for (int i = 0; i < w->depth; i++)
        if (w->devs[i] == dsb.st_dev && w->inos[i] == dsb.st_ino) {
            mlo__env_report(env, MLO_ERR_INVALID_PATH, 1,
                        "log_artifact: %s leads back to a directory above it: skipped", real);
            return MLO_OK;
        }
    if (w->depth >= MAX_DEPTH) {
        mlo__env_report(env, MLO_ERR_INVALID_PATH, 1,
                    "log_artifact: %s is nested more than %d directories deep: skipped", real,
                    MAX_DEPTH);
        return MLO_OK;
    }
    int dup_fd = dup(dfd);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!d) {
        if (dup_fd >= 0)
            close(dup_fd);
        mlo__env_report(env, MLO_ERR_IO, 0, "log_artifact: cannot read directory %s: %s", real,
                    strerror(errno));
        return MLO_ERR_IO;
    }
    rewinddir(d);
    char **names = NULL;
    size_t n = 0, cap = 0;
    int st = MLO_OK;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 32;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                st = MLO_ERR_NO_MEMORY;
                break;
            }
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name))) {
            st = MLO_ERR_NO_MEMORY;
            break;
        }
        n++;
    }
    closedir(d);
    if (st == MLO_OK && n > 1)
        qsort(names, n, sizeof *names, cmp_name);
    w->devs[w->depth] = dsb.st_dev;
    w->inos[w->depth] = dsb.st_ino;
    w->depth++;
    size_t base = w->rel.len;
    for (size_t i = 0; i < n && st == MLO_OK; i++) {
        int pc = mlo__validate_artifact_path(names[i], 0);
        w->rel.len = base;
        if (w->rel.data)
            w->rel.data[base] = 0;
        if (pc == MLO_OK &&
            ((base && mlo__buf_appendc(&w->rel, '/')) || mlo__buf_appends(&w->rel, names[i]))) {
            st = MLO_ERR_NO_MEMORY;
            break;
        }
        if (pc == MLO_OK)
            pc = mlo__validate_artifact_path(w->rel.data, 0); /* length */
        if (pc != MLO_OK) {
            mlo__env_report(env, pc, 1,
                        "log_artifact: %s/%s: the name is not a valid artifact path (%s): "
                        "skipped",
                        real, pc == MLO_ERR_INVALID_UTF8 ? "(not UTF-8)" : names[i],
                        mlo_strerror(pc));
            continue;
        }
        st = walk_entry(w, dfd, real, names[i]);
    }
    w->rel.len = base;
    if (w->rel.data)
        w->rel.data[base] = 0;
    w->depth--;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return st;
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
        walker w = {.env = env, .fn = fn, .ctx = ctx};
        w.root = realpath(local_path, NULL);
        if (!w.root || (artifact_path && mlo__buf_appends(&w.rel, artifact_path))) {
            st = MLO_ERR_NO_MEMORY;
        } else {
            w.root_len = strlen(w.root);
            st = walk_dir(&w, fd, w.root);
        }
        free(w.root);
        mlo__buf_free(&w.rel);
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

