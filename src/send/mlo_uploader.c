/*
 * mlo_uploader.c - the artifact uploader: the worker (mlo_worker.h) that
 * sends the artifacts the log calls staged into the store (calls/
 * mlo_artifact.c) to the tracking server's proxied artifact API, and the
 * same once for `mlo sync` (mlo__uploader_sync).
 *
 * One worker per client with a store and a tracking URI.
 * Takes the manifests of its own client (handed over in memory by the log
 * calls) and, once at start, those of the dead processes its store claimed
 * when it opened (mlo__store_owns: the same rule as segment adoption, so one
 * uploader per manifest; each upload also holds an exclusive flock on the
 * manifest).  Per manifest: wait until the run has a server id (the
 * client's run table for its own runs, runs.map for others), get the run's
 * artifact URI once per run (runs/get, cached), map it to the proxied API
 * (mlo__artifact_root: an s3:// or file: root is reported once per run with
 * MLO_ERR_ARTIFACTS_NOT_PROXIED, and its artifacts are parked: kept, not
 * retried by this client), check the blob (unchanged since staging by what
 * the manifest records of its inode, times and boot: sent without reading
 * it first; else, e.g. after a reboot or from an old manifest, its SHA-256
 * is computed and a blob that does not match is refused as damaged), then
 * PUT it, or for
 * files of at least $MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE (500 MiB)
 * send it in parts of $MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE (100 MiB) through
 * mpu/create, the presigned part URLs and mpu/complete (mpu/abort on a
 * failure; a server without multipart, 501, gets a single PUT from then on;
 * $MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD=false turns multipart off).  Done:
 * manifest and blob removed, MLO_STAT_ARTIFACT_BYTES/FILES counted.
 * A large file the log call is still copying (mlo__uploader_stream_open) is
 * sent as it is copied when the worker is idle and none of the client's own
 * artifacts waits (one staged earlier must not land after it): the PUT
 * reads the blob as far as the copy has gone and waits for more (the
 * transport's in_ready, stream_ready); its outcome is kept until the
 * log call hands the manifest over, and an item whose blob went out whole
 * and unchanged is then done without a second PUT.  A stream that fails
 * (refused, a network error after the transport's retries, the copy
 * failed) is not retried itself: its item takes the usual way.
 * Transient failures (network, 5xx, 429, 401/403, unreadable answers) are
 * retried after a backoff (the client's backoff factor x 2^n, at most 60 s),
 * nothing lost; a permanent refusal (400, 404, a damaged blob) is reported,
 * counted in MLO_STAT_FAILED and the manifest renamed <id>.failed.  Idle,
 * the thread sleeps on a condition variable (woken by the log calls and
 * close), or until the next retry is due.
 * mlo_client_flush waits for the artifacts staged before it (parked and
 * failed ones count as settled); close gives them what is left of the close
 * timeout and leaves the rest in the store for the next client on the same
 * URI or `mlo sync` (mlo__artifacts_sync).
 *
 *
 * Threads: the log calls (hand-over), flush, wait_run from any thread; the
 * worker owns its mlo_api; the lists below are under the uploader's lock.
 */
#define _GNU_SOURCE
#include "mlo_uploader.h"

#include "mlo_api.h"
#include "mlo_fs.h"
#include "mlo_manifest.h"
#include "mlo_retry.h"
#include "mlo_sha256.h"
#include "mlo_worker.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define RUN_WAIT_MAX_NS 2000000000LL

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- state ------------------------------------------------------------------ */

enum { L_OWN = 0, L_ADOPTED = 1 };

typedef struct art_item {
    struct art_item *prev, *next;
    int list;     /* L_OWN, L_ADOPTED */
    uint64_t seq; /* own: staging order (flush) */
    char id[96];  /* file stem */
    char lid[33]; /* run local id ("" until the manifest is read) */
    int busy;     /* being uploaded */
    int parked;   /* its run's artifacts are not proxied: left in the store */
    int verified; /* the blob's SHA-256 was computed and matched */
    int fails, waits;
    int64_t retry_at;              /* CLOCK_MONOTONIC ns; 0 = now */
    char *failed_path;             /* refused for good: its artifact path (for settle) */
    struct mlo_art_stream *stream; /* sent while it was copied (a reference), or NULL */
} art_item;

/* An upload that follows the staging copy (mlo__uploader_stream_open): the
 * log call copies, the worker sends what is copied so far and waits for
 * more. */
enum { C_COPYING, C_DONE, C_FAILED };           /* the copy, as the log call says */
enum { U_QUEUED, U_SENDING, U_SENT, U_FAILED }; /* the upload */

struct mlo_art_stream {
    struct mlo_art_stream *next;
    char id[96];
    char lid[33];
    char *rel;
    int fd;         /* the blob being written, the uploader's own descriptor */
    int64_t size;   /* the source's size when the copy began: what is sent */
    int64_t copied; /* bytes of the blob complete */
    int copy, up;
    int refs; /* the log call until the hand-over, then its item; the worker while sending */
};

enum { RUN_UNKNOWN = 0, RUN_READY, RUN_NOT_PROXIED };

typedef struct art_run {
    struct art_run *next;
    char lid[33];
    int state;
    char *root;      /* RUN_READY: the proxied API path of its artifact root */
    int fail_status; /* an upload of the run was refused for good with it */
    char **failed;   /* the artifact paths refused for good */
    size_t nfailed;
} art_run;

struct mlo_uploader {
    mlo_env *env;
    mlo_store *store;
    mlo_runs *client_runs; /* the client's run table (NULL: sync) */
    char *dir;             /* <store>/artifacts */
    pthread_mutex_t lock;
    pthread_cond_t done_cond; /* an own item settled */
    pthread_cond_t grow_cond; /* a stream's copy went on (or ended) */
    struct mlo_art_stream *streams;
    /* the upload in flight, for mlo__uploader_progress: its id ("": none,
     * under lock), how far its body went (the transport's, relaxed) */
    char cur_id[96];
    _Atomic int64_t cur_sent;
    /* a pending digest written into a manifest (mlo__uploader_set_sha) vs.
     * that manifest renamed .failed (mark_failed): one at a time */
    pthread_mutex_t sha_lock;
    int *to_close; /* descriptors of mlo__uploader_close_later */
    size_t nclose, capclose;
    art_item *head[2], *tail[2];
    art_run *runs;
    uint64_t seq;
    mlo_worker w;
    int started;
    int scanned;  /* the claimed processes' manifests were listed */
    mlo_api *api; /* the worker's (NULL: out of memory, nothing is uploaded) */
    mlo_mpu_cfg mpu;
};

static void list_push(mlo_uploader *a, art_item *it) {
    int l = it->list;
    it->next = NULL;
    it->prev = a->tail[l];
    if (a->tail[l])
        a->tail[l]->next = it;
    else
        a->head[l] = it;
    a->tail[l] = it;
}

static void list_remove(mlo_uploader *a, art_item *it) {
    int l = it->list;
    if (it->prev)
        it->prev->next = it->next;
    else
        a->head[l] = it->next;
    if (it->next)
        it->next->prev = it->prev;
    else
        a->tail[l] = it->prev;
    it->prev = it->next = NULL;
}

static art_run *run_entry(mlo_uploader *a, const char *lid, int create) {
    for (art_run *r = a->runs; r; r = r->next)
        if (!strncmp(r->lid, lid, 32))
            return r;
    if (!create)
        return NULL;
    art_run *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    snprintf(r->lid, sizeof r->lid, "%.32s", lid);
    r->next = a->runs;
    a->runs = r;
    return r;
}

/* Under a->lock: fd closed on the worker's thread (the last close of a sent,
 * unlinked blob frees its pages: slow for a large file). */
static void close_locked(mlo_uploader *a, int fd) {
    if (a->nclose == a->capclose) {
        size_t nc = a->capclose ? 2 * a->capclose : 8;
        int *nv = realloc(a->to_close, nc * sizeof *nv);
        if (!nv) {
            close(fd);
            return;
        }
        a->to_close = nv;
        a->capclose = nc;
    }
    a->to_close[a->nclose++] = fd;
}

/* Under a->lock: drops a reference to s, freed with the last. */
static void stream_unref(mlo_uploader *a, mlo_art_stream *s) {
    if (--s->refs > 0)
        return;
    for (mlo_art_stream **p = &a->streams; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    if (s->fd >= 0)
        close_locked(a, s->fd);
    free(s->rel);
    free(s);
}

/* ---- the uploader ------------------------------------------------------------------------ */

enum {
    R_DONE,     /* uploaded: manifest and blob removed */
    R_GONE,     /* no manifest any more */
    R_RETRY,    /* transient failure: back off */
    R_BUSY,     /* someone else holds its manifest */
    R_WAIT_RUN, /* the run has no server id yet */
    R_PARKED,   /* the run's artifacts are not proxied */
    R_FAILED,   /* refused for good: <id>.failed */
};

/* The server id of run lid: MLO_OK (*sid malloc'd), MLO_ERR_TIMEOUT (not
 * yet), or the status the server refused the run with. */
static int run_sid(mlo_uploader *a, const char *lid, char **sid) {
    *sid = NULL;
    mlo_run *r = a->client_runs ? mlo__runs_find(a->client_runs, lid) : NULL;
    if (r) {
        const char *s = mlo__runs_sid(r);
        if (s) {
            *sid = strdup(s);
            return *sid ? MLO_OK : MLO_ERR_NO_MEMORY;
        }
        int st = atomic_load_explicit(&r->create_status, memory_order_acquire);
        if (st != MLO_OK)
            return st;
    }
    if (mlo__store_map_get(a->store, lid, sid))
        return MLO_OK;
    return MLO_ERR_TIMEOUT;
}

/* Renames the manifest <id><suffix> (open as mfd) to <id>.failed with the
 * reason. */
static void mark_failed(mlo_uploader *a, const char *id, const char *suffix, int mfd,
                        mlo_manifest *m, int st, const char *why) {
    free(m->error);
    m->error = strdup(why);
    pthread_mutex_lock(&a->sha_lock);
    if (!mlo__manifest_sha_known(m->sha)) {
        /* the log call may have written the digest since it was read */
        mlo_manifest now;
        if (mlo__manifest_read_fd(mfd, &now) == 0) {
            if (mlo__manifest_sha_known(now.sha))
                memcpy(m->sha, now.sha, sizeof m->sha);
            mlo__manifest_free(&now);
        }
    }
    if (mlo__manifest_write(a->dir, id, ".failed", m, 1) == 0) {
        if (strcmp(suffix, ".failed")) {
            char *p = mlo__manifest_path(a->dir, id, suffix);
            if (p)
                unlink(p);
            free(p);
        }
    }
    pthread_mutex_unlock(&a->sha_lock);
    mlo__env_stat(a->env, MLO_STAT_FAILED, 1);
    mlo__env_report(
        a->env, st, 0,
        "artifact \"%s\" of run %s refused for good: %s; kept in %s/%s.blob (`mlo sync` "
        "tries again)",
        m->path, m->lid, why, a->dir, id);
}

/* The artifact root of run lid (whose server id is sid), from the cache or
 * runs/get.  MLO_OK (*root borrowed: lives as long as a), or a status;
 * MLO_ERR_ARTIFACTS_NOT_PROXIED is reported once per run. */
static int run_root(mlo_uploader *a, mlo_api *api, const char *lid, const char *sid,
                    const char **root, mlo_api_error *e) {
    memset(e, 0, sizeof *e);
    pthread_mutex_lock(&a->lock);
    art_run *ar = run_entry(a, lid, 1);
    int state = ar ? ar->state : RUN_UNKNOWN;
    *root = ar ? ar->root : NULL;
    pthread_mutex_unlock(&a->lock);
    if (!ar)
        return e->status = MLO_ERR_NO_MEMORY;
    if (state == RUN_READY)
        return MLO_OK;
    if (state == RUN_NOT_PROXIED)
        return e->status = MLO_ERR_ARTIFACTS_NOT_PROXIED;
    char *uri = NULL, *r = NULL;
    int st = mlo__api_get_run_info(api, sid, NULL, &uri, e);
    if (st != MLO_OK)
        return st;
    st = mlo__api_artifact_root(uri, &r);
    pthread_mutex_lock(&a->lock);
    if (st == MLO_OK) {
        ar->root = r;
        ar->state = RUN_READY;
        *root = r;
    } else if (st == MLO_ERR_ARTIFACTS_NOT_PROXIED) {
        ar->state = RUN_NOT_PROXIED;
    }
    pthread_mutex_unlock(&a->lock);
    if (st == MLO_ERR_ARTIFACTS_NOT_PROXIED) {
        mlo__env_report(a->env, st, 0,
                        "run %s stores its artifacts at %s, which the tracking server does not "
                        "serve: start the server with --serve-artifacts (mlflow server "
                        "--serve-artifacts) to upload them through it; its artifacts stay in the "
                        "store %s",
                        sid, uri && *uri ? uri : "(no artifact URI)", a->dir);
        snprintf(e->message, sizeof e->message,
                 "run %s stores its artifacts at %.300s, which the tracking server does not "
                 "serve (start it with --serve-artifacts)",
                 sid, uri && *uri ? uri : "(no artifact URI)");
        e->status = st;
    }
    free(uri);
    return st;
}

/* A sent blob, removed once flush has been told (its pages are freed when
 * its last descriptor closes: up to a tenth of a second for a large file). */
typedef struct sent_blob {
    char *path;
    int fd;
} sent_blob;

static void sent_blob_remove(sent_blob *b) {
    if (b->path)
        unlink(b->path);
    if (b->fd >= 0)
        close(b->fd);
    free(b->path);
    b->path = NULL;
    b->fd = -1;
}

/* The upload of blob id starts (id NULL: it ended). */
static void set_current(mlo_uploader *a, const char *id) {
    pthread_mutex_lock(&a->lock);
    snprintf(a->cur_id, sizeof a->cur_id, "%s", id ? id : "");
    atomic_store_explicit(&a->cur_sent, 0, memory_order_relaxed);
    pthread_mutex_unlock(&a->lock);
}

int mlo__uploader_progress(mlo_uploader *a, const char *id, int64_t *sent) {
    pthread_mutex_lock(&a->lock);
    int on = a->cur_id[0] && !strcmp(a->cur_id, id);
    if (on)
        *sent = atomic_load_explicit(&a->cur_sent, memory_order_relaxed);
    pthread_mutex_unlock(&a->lock);
    return on;
}

/* Whether item it was sent whole while it was copied: the stream's upload
 * succeeded, the copy ended at the size it sent, and the manifest and the
 * blob (same: as staged) are what was sent. */
static int stream_sent(mlo_uploader *a, const art_item *it, const mlo_manifest *m, int same) {
    mlo_art_stream *s = it->stream;
    if (!s || !same)
        return 0;
    pthread_mutex_lock(&a->lock);
    int ok = s->up == U_SENT && s->copy == C_DONE && s->size == m->size && s->rel &&
             !strcmp(s->rel, m->path);
    pthread_mutex_unlock(&a->lock);
    return ok;
}

/* Uploads the artifact <id><suffix> (".art", or ".failed" for sync).
 * *status gets the failure's status; msg (may be NULL) its message.  With
 * sent != NULL, a blob sent is left for the caller to remove (after
 * settle()); else it is removed here. */
static int process(mlo_uploader *a, mlo_api *api, art_item *it, const char *suffix, int *status,
                   char *msg, size_t msglen, sent_blob *sent) {
    *status = MLO_OK;
    if (msg && msglen)
        msg[0] = 0;
    char *mpath = mlo__manifest_path(a->dir, it->id, suffix);
    char *bpath = mlo__manifest_path(a->dir, it->id, ".blob");
    if (!mpath || !bpath) {
        free(mpath);
        free(bpath);
        *status = MLO_ERR_NO_MEMORY;
        return R_RETRY;
    }
    int res;
    mlo_manifest m = {0};
    int bfd = -1;
    char *sid = NULL;
    int mfd = open(mpath, O_RDWR | O_CLOEXEC);
    if (mfd < 0) {
        res = errno == ENOENT ? R_GONE : R_RETRY;
        *status = MLO_ERR_STORE;
        goto out;
    }
    if (flock(mfd, LOCK_EX | LOCK_NB) != 0) {
        res = R_BUSY;
        goto out;
    }
    struct stat msb;
    if (fstat(mfd, &msb) != 0 || msb.st_nlink == 0) {
        res = R_GONE; /* uploaded by whoever held it before us */
        goto out;
    }
    if (mlo__manifest_read_fd(mfd, &m) != 0) {
        memset(&m, 0, sizeof m);
        m.path = strdup("?");
        snprintf(m.lid, sizeof m.lid, "?");
        *status = MLO_ERR_STORE;
        mlo__env_stat(a->env, MLO_STAT_FAILED, 1);
        mlo__env_report(a->env, MLO_ERR_STORE, 0,
                        "artifact manifest %s is unreadable: left as it is", mpath);
        res = R_PARKED;
        goto out;
    }
    if (!it->lid[0])
        snprintf(it->lid, sizeof it->lid, "%s", m.lid);
    int st = run_sid(a, m.lid, &sid);
    if (st == MLO_ERR_TIMEOUT) {
        *status = st;
        if (msg)
            snprintf(msg, msglen, "run %s of artifact \"%s\" is not on the server", m.lid, m.path);
        res = R_WAIT_RUN;
        goto out;
    }
    if (st != MLO_OK) {
        if (st == MLO_ERR_NO_MEMORY) {
            *status = st;
            res = R_RETRY;
            goto out;
        }
        *status = st;
        char why[256];
        snprintf(why, sizeof why, "its run was refused by the server (%s)", mlo_strerror(st));
        mark_failed(a, it->id, suffix, mfd, &m, st, why);
        if (msg)
            snprintf(msg, msglen, "artifact \"%.150s\": %.300s", m.path, why);
        res = R_FAILED;
        goto out;
    }
    const char *root = NULL;
    mlo_api_error e;
    st = run_root(a, api, m.lid, sid, &root, &e);
    if (st == MLO_ERR_ARTIFACTS_NOT_PROXIED) {
        *status = st;
        if (msg)
            snprintf(msg, msglen, "%s", e.message);
        res = R_PARKED;
        goto out;
    }
    if (st != MLO_OK) {
        *status = st;
        if (msg)
            snprintf(msg, msglen, "%s", e.message[0] ? e.message : mlo_strerror(st));
        if (mlo__retry_permanent(st)) {
            mark_failed(a, it->id, suffix, mfd, &m, st,
                        e.message[0] ? e.message : mlo_strerror(st));
            res = R_FAILED;
        } else {
            res = R_RETRY;
        }
        goto out;
    }
    bfd = open(bpath, O_RDONLY | O_CLOEXEC);
    struct stat bsb;
    if (bfd < 0 || fstat(bfd, &bsb) != 0 || bsb.st_size != m.size) {
        char why[512];
        snprintf(why, sizeof why, "its content %s is %s", bpath,
                 bfd < 0 ? "missing" : "damaged (its size changed)");
        *status = MLO_ERR_STORE;
        mark_failed(a, it->id, suffix, mfd, &m, MLO_ERR_STORE, why);
        if (msg)
            snprintf(msg, msglen, "artifact \"%.150s\": %.300s", m.path, why);
        res = R_FAILED;
        goto out;
    }
    /* the blob as staged (same inode, times, size, boot): what was hashed
     * at staging, sent without reading it first; else hashed once */
    mlo_blob_ident now;
    int same = mlo__manifest_ident_fd(bfd, &now) == 0 && mlo__manifest_ident_same(&m.blob, &now);
    if (!same && !it->verified) {
        char hex[65] = "";
        int64_t got = 0;
        int known = mlo__manifest_sha_known(m.sha);
        int rc = known ? mlo__sha256_fd(bfd, hex, &got) : 0;
        if (rc != 0 && errno == ENOMEM) {
            *status = MLO_ERR_NO_MEMORY;
            res = R_RETRY;
            goto out;
        }
        if (!known || rc != 0 || got != m.size || strcmp(hex, m.sha)) {
            /* no digest: its log call died before computing it, and the blob
             * changed since (or the machine restarted): nothing says what
             * it should hold */
            char why[512];
            snprintf(why, sizeof why, "its content %s is damaged (%s)", bpath,
                     known ? "SHA-256 mismatch"
                           : "changed since it was staged, and its SHA-256 was never recorded");
            *status = MLO_ERR_STORE;
            mark_failed(a, it->id, suffix, mfd, &m, MLO_ERR_STORE, why);
            if (msg)
                snprintf(msg, msglen, "artifact \"%.150s\": %.300s", m.path, why);
            res = R_FAILED;
            goto out;
        }
        it->verified = 1;
    }
    if (stream_sent(a, it, &m, same)) {
        st = MLO_OK; /* sent while it was copied */
    } else {
        set_current(a, it->id);
        st = mlo__api_artifact_upload(api, &a->mpu, root, m.path, bfd, m.size, &e);
        set_current(a, NULL);
    }
    if (st == MLO_OK) {
        /* the manifest first: a blob without one is an orphan, removed later */
        unlink(mpath);
        if (sent) {
            sent->path = bpath;
            sent->fd = bfd;
            bpath = NULL;
            bfd = -1;
        } else {
            unlink(bpath);
        }
        mlo__env_stat(a->env, MLO_STAT_ARTIFACT_BYTES, (uint64_t)m.size);
        mlo__env_stat(a->env, MLO_STAT_ARTIFACT_FILES, 1);
        res = R_DONE;
        goto out;
    }
    *status = st;
    if (msg)
        snprintf(msg, msglen, "artifact \"%.150s\": %.300s", m.path,
                 e.message[0] ? e.message : mlo_strerror(st));
    if (mlo__retry_permanent(st)) {
        mark_failed(a, it->id, suffix, mfd, &m, st, e.message[0] ? e.message : mlo_strerror(st));
        res = R_FAILED;
    } else {
        mlo__env_report(a->env, st, 1,
                        "artifact \"%s\" of run %s: upload failed (%s); kept in the store, "
                        "retried later",
                        m.path, sid, e.message[0] ? e.message : mlo_strerror(st));
        res = R_RETRY;
    }
out:
    if (res == R_FAILED && m.path && !it->failed_path)
        it->failed_path = strdup(m.path); /* NULL on OOM: counts for the whole run */
    if (bfd >= 0)
        close(bfd);
    if (mfd >= 0)
        close(mfd); /* releases the flock */
    mlo__manifest_free(&m);
    free(sid);
    free(mpath);
    free(bpath);
    return res;
}

static int own_pending(const mlo_uploader *a, uint64_t upto, const char *lid) {
    /* the own list is in staging order: stop at the first one staged later */
    for (const art_item *it = a->head[L_OWN]; it && it->seq <= upto; it = it->next) {
        if (it->parked)
            continue;
        if (!lid || !strncmp(it->lid, lid, 32))
            return 1;
    }
    return 0;
}

/* Under a->lock: what process() said about it. */
static void settle(mlo_uploader *a, art_item *it, int res, int status) {
    int64_t now = mlo__env_mono(a->env);
    switch (res) {
    case R_RETRY:
        it->retry_at = now + mlo__retry_backoff_ns(a->env->cfg->backoff_factor_s, it->fails++);
        return;
    case R_BUSY:
        it->retry_at = now + 1000000000;
        return;
    case R_WAIT_RUN: {
        int64_t w = 50000000LL << (it->waits < 6 ? it->waits : 6);
        it->waits++;
        it->retry_at = now + (w < RUN_WAIT_MAX_NS ? w : RUN_WAIT_MAX_NS);
        return;
    }
    case R_PARKED:
        it->parked = 1;
        pthread_cond_broadcast(&a->done_cond);
        return;
    case R_FAILED: {
        art_run *ar = it->lid[0] ? run_entry(a, it->lid, 1) : NULL;
        if (ar && !ar->fail_status)
            ar->fail_status = status != MLO_OK ? status : MLO_ERR_SERVER_INVALID;
        if (ar) {
            char **nf = realloc(ar->failed, (ar->nfailed + 1) * sizeof *nf);
            if (nf) {
                ar->failed = nf;
                /* NULL (unknown path): the whole run counts as failed */
                ar->failed[ar->nfailed++] = it->failed_path;
                it->failed_path = NULL;
            }
        }
        break;
    }
    default:
        break;
    }
    list_remove(a, it);
    if (it->stream)
        stream_unref(a, it->stream);
    free(it->failed_path);
    free(it);
    pthread_cond_broadcast(&a->done_cond);
}

/* Under a->lock: the next item due (own ones first), or NULL with *next the
 * time the first waiting one is due (INT64_MAX: none). */
static art_item *pick(mlo_uploader *a, int64_t now, int64_t *next) {
    *next = INT64_MAX;
    for (int l = 0; l < 2; l++)
        for (art_item *it = a->head[l]; it; it = it->next) {
            if (it->busy || it->parked || (it->stream && it->stream->up == U_SENDING))
                continue;
            if (it->retry_at <= now)
                return it;
            if (it->retry_at < *next)
                *next = it->retry_at;
        }
    return NULL;
}

/* Procid of an artifact id "<procid>-<n>". */
static int procid_of(const char *name, size_t len, char *out, size_t cap) {
    const char *dash = NULL;
    for (size_t i = 0; i < len; i++)
        if (name[i] == '-')
            dash = name + i;
    if (!dash || (size_t)(dash - name) >= cap || dash == name)
        return -1;
    memcpy(out, name, (size_t)(dash - name));
    out[dash - name] = 0;
    return 0;
}

static int has_suffix(const char *s, size_t l, const char *suf) {
    size_t n = strlen(suf);
    return l > n && !strcmp(s + l - n, suf);
}

/* The files of the dead processes this store claimed: adds their pending
 * manifests to the adopted list (cleanup: removes their unfinished tmp
 * files and orphan blobs), or, with ids != NULL (sync), collects pending and
 * failed manifests' names.  Sorted by name. */
static void scan_claimed(mlo_uploader *a, char ***ids, size_t *nids) {
    DIR *d = opendir(a->dir);
    if (!d)
        return;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        char procid[64];
        if (l > 200 || procid_of(e->d_name, l, procid, sizeof procid) != 0 ||
            strcmp(procid, mlo__store_procid(a->store)) == 0 || !mlo__store_owns(a->store, procid))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 32;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn)
                break;
            names = nn;
        }
        if ((names[n] = strdup(e->d_name)))
            n++;
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof *names, cmp_name);
    for (size_t i = 0; i < n; i++) {
        char *nm = names[i];
        size_t l = strlen(nm);
        if (has_suffix(nm, l, ".tmp")) {
            char *p = mlo__manifest_path(a->dir, nm, "");
            if (p)
                unlink(p); /* a staging that died half-way */
            free(p);
        } else if (has_suffix(nm, l, ".blob")) {
            nm[l - 5] = 0;
            char *m1 = mlo__manifest_path(a->dir, nm, ".art"),
                 *m2 = mlo__manifest_path(a->dir, nm, ".failed");
            struct stat sb;
            if (m1 && m2 && stat(m1, &sb) != 0 && errno == ENOENT && stat(m2, &sb) != 0 &&
                errno == ENOENT) {
                char *p = mlo__manifest_path(a->dir, nm, ".blob");
                if (p)
                    unlink(p); /* uploaded (manifest gone) or never committed */
                free(p);
            }
            free(m1);
            free(m2);
        } else if (has_suffix(nm, l, ".art") || (ids && has_suffix(nm, l, ".failed"))) {
            if (ids) {
                char **v = realloc(*ids, (*nids + 1) * sizeof *v);
                if (v) {
                    *ids = v;
                    v[(*nids)++] = nm;
                    names[i] = NULL;
                }
                continue;
            }
            art_item *it = calloc(1, sizeof *it);
            if (!it)
                continue;
            it->list = L_ADOPTED;
            snprintf(it->id, sizeof it->id, "%.*s", (int)(l - 4), nm);
            pthread_mutex_lock(&a->lock);
            list_push(a, it);
            pthread_mutex_unlock(&a->lock);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Closes the descriptors handed to mlo__uploader_close_later. */
static void close_pending(mlo_uploader *a) {
    pthread_mutex_lock(&a->lock);
    int *v = a->to_close;
    size_t n = a->nclose;
    a->to_close = NULL;
    a->nclose = a->capclose = 0;
    pthread_mutex_unlock(&a->lock);
    for (size_t i = 0; i < n; i++)
        close(v[i]);
    free(v);
}

void mlo__uploader_close_later(mlo_uploader *a, int fd) {
    if (!a) {
        close(fd);
        return;
    }
    pthread_mutex_lock(&a->lock);
    close_locked(a, fd);
    pthread_mutex_unlock(&a->lock);
    mlo__worker_wake(&a->w);
}

/* ---- uploads that follow the copy ---------------------------------------------------- */

/* Under a->lock: a stream to send now, claimed (U_SENDING, a reference), or
 * NULL.  Only while its copy runs (a complete copy takes the usual way), and
 * only when none of the client's own artifacts waits: one staged before it
 * (say, an earlier version at the same path, retrying) must not land after
 * it. */
static mlo_art_stream *stream_claim(mlo_uploader *a) {
    for (const art_item *it = a->head[L_OWN]; it; it = it->next)
        if (!it->parked)
            return NULL;
    for (mlo_art_stream *s = a->streams; s; s = s->next)
        if (s->up == U_QUEUED && s->copy == C_COPYING) {
            s->up = U_SENDING;
            s->refs++;
            return s;
        }
    return NULL;
}

typedef struct grow_ctx {
    mlo_uploader *a;
    mlo_art_stream *s;
} grow_ctx;

/* The transport's in_ready: waits until the blob holds more than off bytes.
 * Gives up (-1) when the copy failed, the uploader stops, or the copy made
 * no progress for the request timeout. */
static int64_t stream_ready(void *ctx, int64_t off) {
    grow_ctx *g = ctx;
    mlo_uploader *a = g->a;
    mlo_art_stream *s = g->s;
    double t = a->env->cfg->timeout_s > 1 ? a->env->cfg->timeout_s : 1;
    const int64_t idle = (int64_t)(t * (double)MLO_NS_PER_S);
    int64_t got = -1;
    pthread_mutex_lock(&a->lock);
    int64_t seen = s->copied, since = mlo__clock_mono(NULL);
    for (;;) {
        if (s->copied > off) {
            got = s->copied;
            break;
        }
        if (s->copy != C_COPYING || mlo__worker_stopping(&a->w))
            break;
        int64_t now = mlo__clock_mono(NULL);
        if (s->copied != seen) {
            seen = s->copied;
            since = now;
        }
        if (now - since > idle)
            break;
        struct timespec ts = mlo__clock_abs(now + 100000000);
        pthread_cond_timedwait(&a->grow_cond, &a->lock, &ts);
    }
    pthread_mutex_unlock(&a->lock);
    return got;
}

/* Sends stream s (claimed) as far as it is copied, following the copy.
 * What fails is left to the item the log call hands over afterwards: no
 * report, no retry here. */
static void stream_send(mlo_uploader *a, mlo_art_stream *s) {
    char *sid = NULL;
    const char *root = NULL;
    mlo_api_error e;
    int st = run_sid(a, s->lid, &sid);
    if (st == MLO_OK)
        st = run_root(a, a->api, s->lid, sid, &root, &e);
    if (st == MLO_OK) {
        grow_ctx g = {a, s};
        set_current(a, s->id);
        st = mlo__api_artifact_put_growing(a->api, root, s->rel, s->fd, s->size, stream_ready, &g,
                                           &e);
        set_current(a, NULL);
    }
    free(sid);
    pthread_mutex_lock(&a->lock);
    s->up = st == MLO_OK ? U_SENT : U_FAILED;
    stream_unref(a, s);
    pthread_mutex_unlock(&a->lock);
}

mlo_art_stream *mlo__uploader_stream_open(mlo_uploader *a, const char *lid, const char *id,
                                          const char *rel, int fd, int64_t size, int64_t copied) {
    /* not what goes through multipart (read-only settings: no race) */
    if (!a || !a->api || size <= 0 || (a->mpu.enabled && size >= a->mpu.min_size))
        return NULL;
    mlo_art_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->rel = strdup(rel);
    s->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (!s->rel || s->fd < 0) {
        if (s->fd >= 0)
            close(s->fd);
        free(s->rel);
        free(s);
        return NULL;
    }
    snprintf(s->id, sizeof s->id, "%s", id);
    snprintf(s->lid, sizeof s->lid, "%.32s", lid);
    s->size = size;
    s->copied = copied;
    s->copy = C_COPYING;
    s->up = U_QUEUED;
    s->refs = 1;
    pthread_mutex_lock(&a->lock);
    s->next = a->streams;
    a->streams = s;
    pthread_mutex_unlock(&a->lock);
    mlo__worker_wake(&a->w);
    return s;
}

void mlo__uploader_stream_grow(mlo_uploader *a, mlo_art_stream *s, int64_t copied) {
    pthread_mutex_lock(&a->lock);
    s->copied = copied;
    pthread_cond_broadcast(&a->grow_cond);
    pthread_mutex_unlock(&a->lock);
}

void mlo__uploader_stream_copied(mlo_uploader *a, mlo_art_stream *s, int ok, int64_t size) {
    pthread_mutex_lock(&a->lock);
    s->copy = ok && size == s->size ? C_DONE : C_FAILED;
    if (s->copy == C_DONE)
        s->copied = size;
    if (s->up == U_QUEUED)
        s->up = U_FAILED; /* not started: the blob takes the usual way */
    pthread_cond_broadcast(&a->grow_cond);
    pthread_mutex_unlock(&a->lock);
}

void mlo__uploader_stream_release(mlo_uploader *a, mlo_art_stream *s) {
    pthread_mutex_lock(&a->lock);
    if (s->copy == C_COPYING) { /* the call failed mid-copy: stop the upload */
        s->copy = C_FAILED;
        if (s->up == U_QUEUED)
            s->up = U_FAILED;
        pthread_cond_broadcast(&a->grow_cond);
    }
    stream_unref(a, s);
    pthread_mutex_unlock(&a->lock);
    mlo__worker_wake(&a->w); /* a descriptor to close, maybe */
}

static int64_t uploader_run(void *ctx, mlo_worker *wk) {
    mlo_uploader *a = ctx;
    close_pending(a);
    if (!a->scanned) {
        a->scanned = 1;
        if (a->api)
            scan_claimed(a, NULL, NULL);
    }
    pthread_mutex_lock(&a->lock);
    mlo_art_stream *str = a->api && !mlo__worker_stopping(wk) ? stream_claim(a) : NULL;
    pthread_mutex_unlock(&a->lock);
    if (str) {
        stream_send(a, str);
        return 0;
    }
    pthread_mutex_lock(&a->lock);
    int64_t now = mlo__env_mono(a->env), next = INT64_MAX;
    art_item *it = a->api && !mlo__worker_stopping(wk) ? pick(a, now, &next) : NULL;
    if (!it) {
        pthread_mutex_unlock(&a->lock);
        if (mlo__worker_stopping(wk))
            return MLO_WORKER_EXIT;
        return next == INT64_MAX ? MLO_WORKER_IDLE : next - now;
    }
    it->busy = 1;
    pthread_mutex_unlock(&a->lock);
    int status;
    sent_blob sent = {NULL, -1};
    int res = process(a, a->api, it, ".art", &status, NULL, 0, &sent);
    pthread_mutex_lock(&a->lock);
    it->busy = 0;
    settle(a, it, res, status);
    pthread_mutex_unlock(&a->lock);
    sent_blob_remove(&sent);
    return 0;
}

static const mlo_worker_ops uploader_ops = {"mlo-uploader", uploader_run, NULL, NULL};

static void arts_free(mlo_uploader *a) {
    close_pending(a);
    for (int l = 0; l < 2; l++)
        while (a->head[l]) {
            art_item *it = a->head[l];
            list_remove(a, it);
            free(it->failed_path);
            free(it);
        }
    while (a->streams) { /* every log call has returned: what is left is ours */
        mlo_art_stream *st = a->streams;
        a->streams = st->next;
        if (st->fd >= 0)
            close(st->fd);
        free(st->rel);
        free(st);
    }
    while (a->runs) {
        art_run *r = a->runs;
        a->runs = r->next;
        for (size_t i = 0; i < r->nfailed; i++)
            free(r->failed[i]);
        free(r->failed);
        free(r->root);
        free(r);
    }
    mlo__api_free(a->api);
    pthread_mutex_destroy(&a->lock);
    pthread_mutex_destroy(&a->sha_lock);
    pthread_cond_destroy(&a->done_cond);
    pthread_cond_destroy(&a->grow_cond);
    free(a->dir);
    free(a);
}

static mlo_uploader *arts_new(mlo_env *env, mlo_store *s, mlo_runs *runs) {
    mlo_uploader *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->env = env;
    a->store = s;
    a->client_runs = runs;
    if (asprintf(&a->dir, "%s/" MLO_ARTIFACTS_SUB, mlo__store_dir(s)) < 0) {
        free(a);
        return NULL;
    }
    pthread_mutex_init(&a->lock, NULL);
    pthread_mutex_init(&a->sha_lock, NULL);
    mlo__clock_cond_init(&a->done_cond);
    mlo__clock_cond_init(&a->grow_cond);
    mlo__api_mpu_cfg_read(&a->mpu);
    return a;
}

mlo_uploader *mlo__uploader_start(mlo_env *env, mlo_store *st, mlo_runs *runs) {
    mlo_uploader *a = arts_new(env, st, runs);
    if (!a)
        return NULL;
    a->api = mlo__api_new(env);
    if (a->api)
        mlo__api_watch_uploads(a->api, &a->cur_sent);
    if (!a->api)
        mlo__env_report(env, MLO_ERR_NO_MEMORY, 0,
                        "artifact uploader: out of memory; artifacts stay in the store");
    if (mlo__worker_start(&a->w, &uploader_ops, a) != 0) {
        mlo__worker_stop(&a->w, 0);
        arts_free(a);
        return NULL;
    }
    a->started = 1;
    return a;
}

int mlo__uploader_hand_over(mlo_uploader *a, const char *lid, const char *const *ids,
                            mlo_art_stream *const *streams, size_t n) {
    art_item **items = calloc(n ? n : 1, sizeof *items);
    if (!items)
        return MLO_ERR_NO_MEMORY;
    for (size_t i = 0; i < n; i++)
        if (!(items[i] = calloc(1, sizeof **items))) {
            for (size_t k = 0; k < i; k++)
                free(items[k]);
            free(items);
            return MLO_ERR_NO_MEMORY;
        }
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < n; i++) {
        art_item *it = items[i];
        it->list = L_OWN;
        it->seq = ++a->seq;
        snprintf(it->id, sizeof it->id, "%s", ids[i]);
        snprintf(it->lid, sizeof it->lid, "%.32s", lid);
        it->stream = streams ? streams[i] : NULL; /* the log call's reference */
        list_push(a, it);
    }
    pthread_mutex_unlock(&a->lock);
    free(items);
    mlo__worker_wake(&a->w);
    return MLO_OK;
}

int mlo__uploader_set_sha(mlo_uploader *a, const char *dir, const char *id, const char hex[65],
                          int do_fsync) {
    if (!a)
        return mlo__manifest_set_sha(dir, id, hex, do_fsync);
    pthread_mutex_lock(&a->sha_lock);
    int rc = mlo__manifest_set_sha(dir, id, hex, do_fsync);
    int e = errno;
    pthread_mutex_unlock(&a->sha_lock);
    errno = e;
    return rc;
}

/* Waits until no own item staged up to seq `upto` (of run lid, if given) is
 * pending.  MLO_OK or MLO_ERR_TIMEOUT. */
static int wait_own(mlo_uploader *a, uint64_t upto, const char *lid, int64_t deadline_ns) {
    struct timespec abs = {deadline_ns / 1000000000, deadline_ns % 1000000000};
    int st = MLO_OK;
    while (own_pending(a, upto, lid)) {
        if (pthread_cond_timedwait(&a->done_cond, &a->lock, &abs) == ETIMEDOUT &&
            own_pending(a, upto, lid)) {
            st = MLO_ERR_TIMEOUT;
            break;
        }
    }
    return st;
}

int mlo__uploader_flush(mlo_uploader *a, int64_t deadline_ns) {
    if (!a)
        return MLO_OK;
    pthread_mutex_lock(&a->lock);
    int st = wait_own(a, a->seq, NULL, deadline_ns);
    pthread_mutex_unlock(&a->lock);
    return st;
}

/* Whether artifact path p is under prefix (NULL or "": everything). */
static int under(const char *p, const char *prefix) {
    if (!prefix || !*prefix || !p)
        return 1;
    size_t n = strlen(prefix);
    return !strncmp(p, prefix, n) && (p[n] == '\0' || p[n] == '/');
}

int mlo__uploader_wait_run(mlo_uploader *a, const char *lid, const char *path,
                           int64_t deadline_ns) {
    if (!lid)
        return MLO_ERR_INVALID_ARGUMENT;
    if (!a)
        return MLO_OK;
    pthread_mutex_lock(&a->lock);
    int st = wait_own(a, UINT64_MAX, lid, deadline_ns);
    if (st == MLO_OK) {
        art_run *ar = run_entry(a, lid, 0);
        int hit = 0;
        for (size_t i = 0; ar && i < ar->nfailed && !hit; i++)
            hit = under(ar->failed[i], path);
        if (hit)
            st = ar->fail_status;
        else if (ar && ar->state == RUN_NOT_PROXIED)
            st = MLO_ERR_ARTIFACTS_NOT_PROXIED;
    }
    pthread_mutex_unlock(&a->lock);
    return st;
}

int mlo__uploader_stop(mlo_uploader *a, int64_t deadline_ns) {
    if (!a)
        return MLO_OK;
    pthread_mutex_lock(&a->lock);
    int st = wait_own(a, a->seq, NULL, deadline_ns);
    pthread_mutex_unlock(&a->lock);
    /* an upload in flight gives up at the env's abort deadline (close set
     * it): the join is bounded */
    mlo__worker_stop(&a->w, deadline_ns);
    arts_free(a);
    return st;
}

/* ---- mlo sync ----------------------------------------------------------------------------- */

int mlo__uploader_sync(mlo_env *env, mlo_store *s, char *err, size_t errlen) {
    mlo_uploader *a = arts_new(env, s, NULL);
    if (!a)
        return MLO_ERR_NO_MEMORY;
    char **ids = NULL;
    size_t n = 0;
    scan_claimed(a, &ids, &n);
    int result = MLO_OK;
    size_t failed = 0;
    char first[600] = "";
    mlo_api *api = n ? mlo__api_new(env) : NULL;
    if (n && !api)
        result = MLO_ERR_NO_MEMORY;
    for (size_t i = 0; i < n && api; i++) {
        size_t l = strlen(ids[i]);
        const char *suffix = has_suffix(ids[i], l, ".art") ? ".art" : ".failed";
        art_item it = {0};
        snprintf(it.id, sizeof it.id, "%.*s", (int)(l - strlen(suffix)), ids[i]);
        char msg[512];
        int status = MLO_OK, res;
        for (int tries = 0;; tries++) {
            res = process(a, api, &it, suffix, &status, msg, sizeof msg, NULL);
            if (res != R_RETRY || tries >= 2)
                break;
            mlo__clock_sleep(mlo__env_clock(env), mlo__retry_sync_pause_ns(status, tries + 1));
        }
        free(it.failed_path); /* process() keeps it for the client's settle() */
        if (res == R_DONE || res == R_GONE)
            continue;
        failed++;
        if (result == MLO_OK) {
            result = status != MLO_OK ? status : MLO_ERR_STORE;
            snprintf(first, sizeof first, "%s",
                     msg[0]          ? msg
                     : res == R_BUSY ? "a manifest is in use"
                                     : mlo_strerror(status));
        }
    }
    if (failed && err && errlen)
        snprintf(err, errlen,
                 "%zu artifact%s not uploaded (first: %s); %s in the store: run sync again "
                 "later",
                 failed, failed == 1 ? " was" : "s were", first,
                 failed == 1 ? "it stays" : "they stay");
    mlo__api_free(api);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    arts_free(a);
    return result;
}
