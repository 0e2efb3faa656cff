/*
 * mlo_artifact.c - mlo_log_artifact / mlo_log_artifact_bytes: stage files
 * into the store for the uploader (send/mlo_uploader.c), or, without a
 * store, upload them in the call.
 *
 * ==== Staging (the log call, any thread) ====
 * Each file becomes <store>/artifacts/<id>.blob with at most one copy of its
 * bytes, made by the kernel where it can (mlo__artifact_copy):
 *   1. ioctl FICLONE: a reflink (btrfs, XFS, bcachefs...): nothing copied;
 *   2. else copy_file_range, 1 MiB at a time: the kernel copies;
 *   3. else (copy_file_range cannot copy between these file systems, or
 *      says a file with content is empty, as procfs files do) pread +
 *      pwrite through one 1 MiB buffer, the SHA-256 computed in that pass.
 * A file smaller than the buffer takes 3. at once: one pass, the digest known
 * before the hand-over.
 * The copy goes to <id>.blob.tmp, renamed <id>.blob; what identifies it
 * then (device, inode, mtime, ctime, boot id: mlo_manifest.h) goes into
 * the manifest <id>.art (run local id, artifact path, size, SHA-256, URI it
 * is bound for; format atop store/mlo_manifest.c), with the SHA-256 still
 * pending after a clone or a kernel copy.  The uploader gets the ids at once:
 * the upload starts as soon as the copy is complete, and, while the blob is
 * as staged, sends it without reading it first.
 * A single file of FOLLOW_MIN bytes or more (not a directory, which is all
 * or nothing; not a clone, which is instant) need not wait that long: after
 * the first piece of the copy the uploader is offered the blob as it grows
 * (mlo__uploader_stream_open) and, when it is idle, starts the PUT at once,
 * with the source's size as Content-Length, reading the blob only as far as
 * the copy has gone (each piece is final once copied: only this call
 * writes the blob).  When the copy ends (before the manifest is written) the
 * call says how: the upload is kept if the copy ended at the size it sends
 * (the hand-over then finds it sent, and nothing is sent again); a copy that
 * failed, or ended shorter, stops it mid-body (the server keeps nothing of
 * an interrupted PUT); a file that grew under the copy is sent again whole
 * the usual way.  A failure after the copy (the rename, the manifest) fails
 * the call as before, but the server may by then hold the file.
 * Meanwhile the log call finishes the staging:
 *   - first, for a large blob whose upload is under way (followed or not:
 *     mlo__uploader_progress), it may give way (give_way): when, at the
 *     rate the body goes, the upload will end before the digest and the
 *     fsyncs would (reckoned at the digest speed measured, HASH_BPS
 *     before any), the call waits for it instead, and the work below is
 *     then not needed and does not take the CPU from the upload; a stalled
 *     upload, a failed attempt, or one not taken up within a grace, is not
 *     waited for, and no wait is longer than the work it replaces;
 *   - the pending SHA-256: the blob read once (from the page cache the copy
 *     just filled) and hashed, the digest written into the manifest in place
 *     (mlo__uploader_set_sha); stopped as soon as the uploader has sent the
 *     blob, which then needs no digest;
 *   - unless the store's fsync policy is MLO_FSYNC_NONE: the blob written
 *     back piece by piece, then fsync of blob, manifest and directory, each
 *     step skipped once the blob is sent (on ext4 an fsync commits the
 *     journal, which waits for every file written lately on the file
 *     system: not worth paying for a blob already on the server).
 * The call returns after that: the content is on the server or safe in the
 * store, so the caller may delete or overwrite its file at once.  Memory:
 * one 1 MiB buffer, whatever the size.  The blob descriptors the log call
 * held are closed on the uploader's thread (mlo__uploader_close_later): the
 * last close of a sent blob frees its pages, which takes a while for a
 * large file.
 * Crashes: a kill -9 before the digest is written leaves a manifest with it
 * pending; the blob is intact (the page cache survives) and its identity
 * unchanged, so the next client sends it.  A power loss before the fsyncs
 * may leave a blob whose data never reached the disk: its manifest's boot
 * id no longer matches, so the uploader hashes it and refuses it as damaged
 * (or as unverifiable, with the digest still pending).
 *
 * A directory is walked (mlo__fs_walk: names sorted so the order is
 * deterministic); a symbolic link is followed only when realpath() puts it
 * inside the directory (loops are cut), others are skipped and reported, as
 * are special files and names that are not valid artifact paths.  A
 * directory is all or nothing: every blob is staged first, the manifests are
 * written and handed over after; on any failure what was staged is removed
 * and the call fails (a failure of the final fsync, after the hand-over,
 * removes the files too, but an upload already under way may complete).
 * Out of memory after the hand-over is not a failure (the upload may be
 * under way): a digest stays pending, and sync() stands in for the fsyncs.
 * id = <procid>-<8 digits>: the client's procid (mlo_store.c) says whose it
 * is; the counter is per process.
 *
 * Without a store (durability off) nothing is staged: the call uploads the
 * files itself, synchronously, and returns the upload's status.
 *
 * Threads: the log calls from any thread.
 */
#define _GNU_SOURCE
#include "mlo_client.h"

#include "mlo_api.h"
#include "mlo_artifact.h"
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
#include <linux/fs.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (1u << 20)
#define MAX_DEPTH 128
/* Files from this size on may be uploaded while they are copied. */
#define FOLLOW_MIN (8u << 20)

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
    mlo__env_report(
        x->env, pc, 1, "log_artifact: %.*s/%s: the name is not a valid artifact path (%s): skipped",
        (int)dl, path, pc == MLO_ERR_INVALID_UTF8 ? "(not UTF-8)" : name, mlo_strerror(pc));
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
            mlo__env_report(env, st, 0,
                            "log_artifact: the file name of %s is not a valid artifact path",
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

/* ---- the staging copy ---------------------------------------------------------------- */

/* copy_file_range cannot copy this pair of files (or is not there): the
 * buffer can. */
static int range_unsupported(int e) {
    return e == EXDEV || e == EINVAL || e == EOPNOTSUPP || e == ENOSYS || e == EBADF;
}

/* The errors of a write: the store's side. */
static int write_side(int e) {
    return e == ENOSPC || e == EDQUOT || e == EFBIG || e == EROFS;
}

int mlo__artifact_copy(int src, int dst, unsigned methods, unsigned char *buf, size_t bufsz,
                       char hex[65], int64_t *size, unsigned *used, int *side,
                       void (*progress)(void *ctx, int64_t copied), void *ctx) {
    *size = 0;
    *used = 0;
    *side = 0;
    hex[0] = '\0';
    if ((methods & MLO_COPY_CLONE) && ioctl(dst, FICLONE, src) == 0) {
        struct stat sb;
        if (fstat(dst, &sb) != 0) {
            *side = 1;
            return -1;
        }
        *used = MLO_COPY_CLONE;
        *size = (int64_t)sb.st_size;
        return 0;
    }
    if ((methods & MLO_COPY_CLONE) && ftruncate(dst, 0) != 0) { /* whatever a failed clone left */
        *side = 1;
        return -1;
    }
    /* the digest, while every byte so far went through buf */
    mlo_sha256 *x = (methods & MLO_COPY_BUFFER) ? mlo__sha256_new() : NULL;
    uint64_t off = 0;
    int rc = 0;
    int range = (methods & MLO_COPY_RANGE) != 0;
    for (;;) {
        ssize_t r;
        if (range) {
            loff_t so = (loff_t)off, d = (loff_t)off;
            r = copy_file_range(src, &so, dst, &d, bufsz, 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0 && range_unsupported(errno) && (methods & MLO_COPY_BUFFER)) {
                range = 0; /* the buffer takes over from here */
                continue;
            }
            if (r < 0) {
                *side = write_side(errno);
                rc = -1;
                break;
            }
            if (r == 0) {
                /* the end, unless the file only says so to copy_file_range
                 * (procfs, sysfs: size 0, content for read) */
                do
                    r = pread(src, buf, 1, (off_t)off);
                while (r < 0 && errno == EINTR);
                if (r < 0) {
                    rc = -1;
                    break;
                }
                if (r == 0)
                    break;
                if (!(methods & MLO_COPY_BUFFER)) {
                    errno = EOPNOTSUPP;
                    rc = -1;
                    break;
                }
                range = 0;
                continue;
            }
            *used |= MLO_COPY_RANGE;
            mlo__sha256_free(x); /* these bytes did not pass through buf */
            x = NULL;
        } else if (methods & MLO_COPY_BUFFER) {
            do
                r = pread(src, buf, bufsz, (off_t)off);
            while (r < 0 && errno == EINTR);
            if (r < 0) {
                rc = -1;
                break;
            }
            if (r == 0)
                break;
            if (x && mlo__sha256_update(x, buf, (size_t)r) != 0) {
                mlo__sha256_free(x);
                x = NULL; /* computed afterwards */
            }
            if (mlo__fs_pwrite_full(dst, buf, (size_t)r, off) != 0) {
                *side = 1;
                rc = -1;
                break;
            }
            *used |= MLO_COPY_BUFFER;
        } else {
            errno = EOPNOTSUPP;
            rc = -1;
            break;
        }
        off += (uint64_t)r;
        if (progress)
            progress(ctx, (int64_t)off);
    }
    if (rc == 0 && x && mlo__sha256_final(x, NULL, hex) != 0)
        hex[0] = '\0';
    mlo__sha256_free(x);
    *size = (int64_t)off;
    return rc;
}

/* How often a digest that may become needless is checked for it. */
#define SENT_CHECK_EVERY (4u << 20)

int mlo__artifact_hash(int fd, const void *mem, size_t len, unsigned char *buf, size_t bufsz,
                       char hex[65], int (*sent)(void *ctx), void *ctx) {
    hex[0] = '\0';
    mlo_sha256 *x = mlo__sha256_new();
    if (!x) {
        errno = ENOMEM;
        return -1;
    }
    int rc = 0;
    uint64_t off = 0, checked = 0;
    for (;;) {
        if (sent && (off == 0 || off - checked >= SENT_CHECK_EVERY)) {
            if (sent(ctx)) {
                rc = 1;
                break;
            }
            checked = off;
        }
        const void *p;
        size_t n;
        if (mem) {
            n = len - off < bufsz ? (size_t)(len - off) : bufsz;
            p = (const unsigned char *)mem + off;
        } else {
            ssize_t r = mlo__fs_pread_full(fd, buf, bufsz, off);
            if (r < 0) {
                rc = -1;
                break;
            }
            n = (size_t)r;
            p = buf;
        }
        if (n == 0)
            break;
        if (mlo__sha256_update(x, p, n) != 0) {
            errno = ENOMEM;
            rc = -1;
            break;
        }
        off += n;
    }
    if (rc == 0 && mlo__sha256_final(x, NULL, hex) != 0) {
        errno = ENOMEM;
        rc = -1;
    }
    mlo__sha256_free(x);
    return rc;
}

/* ---- staging into the store ---------------------------------------------------------- */

typedef struct staged {
    char id[96];
    char *rel;
    mlo_art_stream *stream; /* the upload that followed its copy, until the hand-over */
    int64_t size;
    char sha[65]; /* "": computed after the hand-over */
    mlo_blob_ident ident;
} staged;

typedef struct stager {
    mlo_env *env;
    mlo_run *r;
    mlo_uploader *u; /* NULL: none (a local store) */
    char *dir;
    const char *procid;
    unsigned char *buf;
    staged *v;
    size_t n, cap;
    int do_fsync;
    int may_stream; /* one file (not a directory: all or nothing), an uploader */
    /* mlo_log_artifact_bytes: the content comes from memory */
    const unsigned char *mem;
    size_t mem_len;
} stager;

/* Whether the uploader has sent a staged blob: its manifest is gone, and
 * not because it was refused for good (<id>.failed keeps the digest). */
typedef struct sent_ctx {
    const stager *s;
    const staged *g;
} sent_ctx;

static int blob_sent(void *ctx) {
    const sent_ctx *x = ctx;
    struct stat sb;
    int gone = 1;
    static const char *const suffix[] = {".art", ".failed"};
    for (int i = 0; i < 2 && gone; i++) {
        char *p = mlo__manifest_path(x->s->dir, x->g->id, suffix[i]);
        gone = p && stat(p, &sb) != 0 && errno == ENOENT;
        free(p);
    }
    return gone;
}

/* The SHA-256 speed the log calls of this process measured, bytes/s (0:
 * none yet): give_way's reckoning (it is the speed under the same load,
 * since the digest runs beside the upload it is weighed against). */
static _Atomic int64_t hash_bps_seen;

/* The SHA-256 of staged blob g (of the stager's memory if it came from
 * there) into g->sha.  After the hand-over (may_skip), the digest is not
 * computed any further once the uploader has sent the blob (*sent = 1).
 * A complete digest of a large blob records its speed (hash_bps_seen).
 * MLO_OK, MLO_ERR_NO_MEMORY, MLO_ERR_STORE (reported). */
static int stage_hash(stager *s, staged *g, int may_skip, int *sent) {
    *sent = 0;
    char *p = mlo__manifest_path(s->dir, g->id, ".blob");
    if (!p)
        return MLO_ERR_NO_MEMORY;
    sent_ctx sx = {s, g};
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    int rc = -1, e = errno;
    if (fd >= 0) {
        int64_t t0 = mlo__clock_mono(NULL);
        rc = mlo__artifact_hash(fd, s->mem, s->mem ? s->mem_len : 0, s->buf, CHUNK, g->sha,
                                may_skip ? blob_sent : NULL, &sx);
        e = errno;
        int64_t ns = mlo__clock_mono(NULL) - t0;
        if (rc == 0 && g->size >= (int64_t)FOLLOW_MIN && ns > 0)
            atomic_store_explicit(&hash_bps_seen,
                                  (int64_t)((double)g->size * (double)MLO_NS_PER_S / (double)ns),
                                  memory_order_relaxed);
        /* if the blob was sent, this may be its last descriptor */
        mlo__uploader_close_later(may_skip ? s->u : NULL, fd);
    } else if (e == ENOENT && may_skip && blob_sent(&sx)) {
        rc = 1;
    }
    int st = MLO_OK;
    if (rc == 1) {
        *sent = 1;
    } else if (rc != 0) {
        st = e == ENOMEM ? MLO_ERR_NO_MEMORY : MLO_ERR_STORE;
        if (st == MLO_ERR_STORE)
            mlo__env_report(s->env, st, 0, "log_artifact: cannot read %s: %s", p, strerror(e));
    }
    free(p);
    return st;
}

/* The upload that follows the copy of one large file (stage_one). */
typedef struct follow {
    stager *s;
    staged *g;
    int src, out; /* the caller's file, the blob being written */
    int64_t size; /* the source's size when the copy began */
    int asked;
} follow;

void (*mlo__artifact_piece_hook)(int src, int64_t copied, int64_t size);

static void follow_progress(void *ctx, int64_t copied) {
    follow *f = ctx;
    if (!f->asked) {
        f->asked = 1;
        f->g->stream = mlo__uploader_stream_open(f->s->u, f->s->r->local_id, f->g->id, f->g->rel,
                                                 f->out, f->size, copied);
    } else if (f->g->stream) {
        mlo__uploader_stream_grow(f->s->u, f->g->stream, copied);
    }
    if (mlo__artifact_piece_hook)
        mlo__artifact_piece_hook(f->src, copied, f->size);
}

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
    snprintf(g->id, sizeof g->id, "%s-%08" PRIu64, s->procid, atomic_fetch_add(&id_counter, 1) + 1);
    g->rel = strdup(rel);
    char *blob = mlo__manifest_path(s->dir, g->id, ".blob");
    char *tmp = mlo__manifest_path(s->dir, g->id, ".blob.tmp");
    if (!g->rel || !blob || !tmp) {
        free(g->rel);
        free(blob);
        free(tmp);
        return MLO_ERR_NO_MEMORY;
    }
    int st = MLO_OK;
    int out = open(tmp, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    if (out < 0) {
        mlo__env_report(env, MLO_ERR_STORE, 0, "log_artifact: cannot create %s: %s", tmp,
                        strerror(errno));
        st = MLO_ERR_STORE;
    } else if (fd >= 0) {
        /* a file that fits the buffer: one pass, copied and hashed at once
         * (no digest left pending, nothing read again) */
        struct stat sb;
        int known = fstat(fd, &sb) == 0;
        unsigned methods = known && sb.st_size < (off_t)CHUNK ? MLO_COPY_BUFFER : MLO_COPY_ALL;
        /* a large file: the uploader may send it while it is copied (after
         * the first piece: not when it is cloned, which costs nothing) */
        follow f = {.s = s, .g = g, .src = fd, .out = out, .size = known ? (int64_t)sb.st_size : 0};
        int follows = s->may_stream && known && sb.st_size >= (off_t)FOLLOW_MIN;
        unsigned used;
        int side;
        int rc = mlo__artifact_copy(fd, out, methods, s->buf, CHUNK, g->sha, &g->size, &used, &side,
                                    follows ? follow_progress : NULL, &f);
        int e = errno;
        if (g->stream) /* before the manifest says the blob is complete */
            mlo__uploader_stream_copied(s->u, g->stream, rc == 0, g->size);
        if (rc != 0) {
            st = side ? MLO_ERR_STORE : MLO_ERR_IO;
            mlo__env_report(env, st, 0, "log_artifact: cannot %s %s: %s", side ? "write" : "read",
                            side ? tmp : shown, strerror(e));
        }
    } else if (s->mem_len && mlo__fs_write_all(out, s->mem, s->mem_len) != 0) {
        st = MLO_ERR_STORE;
        mlo__env_report(env, st, 0, "log_artifact: cannot write %s: %s", tmp, strerror(errno));
    } else {
        g->size = (int64_t)s->mem_len;
        /* bytes that fit the buffer: hashed now (a large one after the
         * hand-over, while it is sent) */
        if (s->mem_len < CHUNK &&
            mlo__artifact_hash(-1, s->mem ? s->mem : (const void *)"", s->mem_len, NULL, CHUNK,
                               g->sha, NULL, NULL) != 0)
            g->sha[0] = '\0';
    }
    if (st == MLO_OK && rename(tmp, blob) != 0) {
        mlo__env_report(env, MLO_ERR_STORE, 0, "log_artifact: cannot rename %s: %s", tmp,
                        strerror(errno));
        st = MLO_ERR_STORE;
    }
    /* after the rename, which sets the ctime on most file systems */
    if (st == MLO_OK && mlo__manifest_ident_fd(out, &g->ident) != 0 && !g->sha[0]) {
        /* unknown identity (no boot id): the uploader hashes the blob before
         * sending it, so the digest must be in the manifest from the start */
        int sent;
        st = stage_hash(s, g, 0, &sent);
    }
    if (out >= 0)
        close(out);
    if (st != MLO_OK) {
        unlink(tmp);
        unlink(blob);
        free(g->rel);
        if (g->stream)
            mlo__uploader_stream_release(s->u, g->stream);
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
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].rel);
        if (s->v[i].stream) /* not handed over: the call failed */
            mlo__uploader_stream_release(s->u, s->v[i].stream);
    }
    free(s->v);
    free(s->dir);
    free(s->buf);
}

/* Hands the staged files of run lid over to the uploader (if any). */
static int hand_over(mlo_client *c, const char *lid, stager *s) {
    mlo_uploader *u = mlo__client_uploader(c);
    if (!u || !s->n)
        return MLO_OK;
    const char **ids = calloc(s->n, sizeof *ids);
    mlo_art_stream **streams = calloc(s->n, sizeof *streams);
    int st = MLO_ERR_NO_MEMORY;
    if (ids && streams) {
        for (size_t i = 0; i < s->n; i++) {
            ids[i] = s->v[i].id;
            streams[i] = s->v[i].stream;
        }
        st = mlo__uploader_hand_over(u, lid, ids, streams, s->n);
    }
    if (st == MLO_OK)
        for (size_t i = 0; i < s->n; i++)
            s->v[i].stream = NULL; /* the uploader's now */
    free(ids);
    free(streams);
    return st;
}

/* fsync of <dir>/<id><suffix>; one the uploader already removed (sent) is
 * fine.  0 / -1 (errno). */
static int fsync_path(const char *dir, const char *id, const char *suffix) {
    char *p = mlo__manifest_path(dir, id, suffix);
    if (!p) {
        errno = ENOMEM;
        return -1;
    }
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    free(p);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* Writes a staged blob back to the disk piece by piece (the next piece
 * starts while the one before is awaited), then fsync for what is left
 * (metadata, the device's cache): skipped, or given up, as soon as the
 * uploader has sent the blob (*sent = 1).  0 / -1 (errno). */
#define SYNC_PIECE (16 << 20)
static int blob_durable(stager *s, staged *g, int *sent) {
    sent_ctx sx = {s, g};
    *sent = blob_sent(&sx);
    if (*sent)
        return 0;
    char *p = mlo__manifest_path(s->dir, g->id, ".blob");
    if (!p) {
        errno = ENOMEM;
        return -1;
    }
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    free(p);
    if (fd < 0) {
        if (errno != ENOENT)
            return -1;
        *sent = 1;
        return 0;
    }
    int rc = 0;
    for (int64_t off = 0; off < g->size && !*sent; off += SYNC_PIECE) {
        /* start this piece, wait for the one before (EINVAL, ENOSYS, ...:
         * fsync alone does it) */
        if (sync_file_range(fd, off, SYNC_PIECE, SYNC_FILE_RANGE_WRITE) != 0)
            break;
        if (off > 0 && sync_file_range(fd, off - SYNC_PIECE, SYNC_PIECE,
                                       SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                           SYNC_FILE_RANGE_WAIT_AFTER) != 0)
            break;
        *sent = blob_sent(&sx);
    }
    if (!*sent)
        rc = fsync(fd);
    int e = errno;
    mlo__uploader_close_later(s->u, fd); /* if sent, maybe its last descriptor */
    errno = e;
    return rc;
}

/* How fast the log call reckons its SHA-256 goes until it has measured it
 * (hash_bps_seen): a core with SHA extensions (this VM: 200 MiB in
 * 0.12 s). */
#define HASH_BPS 1.5e9
#define GIVE_WAY_SLICE_NS 2000000LL
/* Patience: for the uploader to take the blob up, for a stalled upload to
 * move again, before guessing a rate: a twentieth of the work at stake, at
 * least this. */
#define GIVE_WAY_GRACE_NS 10000000LL

double mlo__artifact_hash_bps;
_Atomic uint64_t mlo__artifact_late_digests;

int64_t mlo__artifact_hash_rate(void) {
    return atomic_load_explicit(&hash_bps_seen, memory_order_relaxed);
}

/* Before computing the pending digest of a large blob g (and forcing it to
 * disk): if its upload is under way and, at the rate it goes, will end
 * before that work would, wait for it instead (the digest, and the fsyncs,
 * are then not needed, and do not take the CPU from the upload).  The wait
 * is never longer than the work it replaces would take, as reckoned at the
 * digest speed measured (HASH_BPS before any; twice the time with fsyncs):
 * a slow upload, or none, is not waited for. */
static void give_way(stager *s, staged *g) {
    if (!s->u || g->size < (int64_t)FOLLOW_MIN)
        return;
    int64_t seen = atomic_load_explicit(&hash_bps_seen, memory_order_relaxed);
    double bps = mlo__artifact_hash_bps > 0 ? mlo__artifact_hash_bps
                 : seen > 0                 ? (double)seen
                                            : HASH_BPS;
    double work_ns = (double)g->size / bps * 1e9 * (s->do_fsync ? 2 : 1);
    int64_t grace = work_ns / 20 > GIVE_WAY_GRACE_NS ? (int64_t)(work_ns / 20) : GIVE_WAY_GRACE_NS;
    sent_ctx sx = {s, g};
    const int64_t t0 = mlo__clock_mono(NULL);
    /* the body's progress as seen here: the last offset, when it last
     * moved, and the bytes and time of the spells in which it moved (its
     * rate while moving: a pause of the server's does not make it look
     * slow; a pause as long as the grace ends the wait) */
    int64_t last = -1, moved = t0, prev = t0, active = 0, bytes = 0;
    for (;;) {
        if (blob_sent(&sx))
            return;
        int64_t now = mlo__clock_mono(NULL), waited = now - t0, sent = 0;
        if (!mlo__uploader_progress(s->u, g->id, &sent)) {
            /* not taken up (busy, down, refused), or ended and not said to
             * be sent (a failure, or the blob is about to be removed) */
            if (last < 0 ? waited >= grace : now - moved >= grace)
                return;
        } else {
            if (sent < last)
                return; /* an attempt failed: the transport tries again; no bet on it */
            if (sent > last) {
                if (last >= 0) {
                    active += now - prev;
                    bytes += sent - last;
                }
                last = sent;
                moved = now;
            } else if (now - moved >= grace) {
                return; /* stalled (an answer awaited, a backoff, a slow server) */
            }
            if (active >= GIVE_WAY_GRACE_NS && bytes > 0) {
                double eta = (double)(g->size - sent) * (double)active / (double)bytes;
                if ((double)waited + eta > work_ns)
                    return;
            }
        }
        prev = now;
        if ((double)waited > work_ns)
            return;
        mlo__clock_sleep(NULL, GIVE_WAY_SLICE_NS);
    }
}

/* After the hand-over, while the uploader sends: the pending digests into
 * the manifests, then (do_fsync) blobs, manifests and the directory to the
 * disk.  What the uploader has sent meanwhile needs none of it: each step
 * asks first.  (On ext4, fsync commits the journal, which first writes out
 * the data of every file written lately on that file system, not only
 * ours: a step skipped is worth it.) */
static int stage_finish(stager *s) {
    int left = 0; /* staged files not sent yet */
    for (size_t i = 0; i < s->n; i++) {
        staged *g = &s->v[i];
        sent_ctx sx = {s, g};
        int sent = 0, st = MLO_OK;
        const char *what = "";
        if (!g->sha[0]) {
            give_way(s, g);
            st = stage_hash(s, g, 1, &sent);
            if (st == MLO_OK && !sent)
                atomic_fetch_add(&mlo__artifact_late_digests, 1);
            if (st == MLO_OK && !sent &&
                mlo__uploader_set_sha(s->u, s->dir, g->id, g->sha, 0) != 0) {
                st = errno == ENOMEM ? MLO_ERR_NO_MEMORY : MLO_ERR_STORE;
                what = "write the SHA-256 into";
            }
        }
        if (st == MLO_OK && !sent && s->do_fsync && blob_durable(s, g, &sent) != 0) {
            st = errno == ENOMEM ? MLO_ERR_NO_MEMORY : MLO_ERR_STORE;
            what = "force to the disk the blob of";
        }
        if (st == MLO_OK && !sent && s->do_fsync && !(sent = blob_sent(&sx)) &&
            (fsync_path(s->dir, g->id, ".art") != 0 || fsync_path(s->dir, g->id, ".failed") != 0)) {
            st = errno == ENOMEM ? MLO_ERR_NO_MEMORY : MLO_ERR_STORE;
            what = "force to the disk the manifest of";
        }
        if (st != MLO_OK) {
            if (what[0] && st != MLO_ERR_NO_MEMORY) /* the caller copes with that */
                mlo__env_report(s->env, st, 0, "log_artifact: cannot %s %s/%s: %s", what, s->dir,
                                g->id, strerror(errno));
            return st;
        }
        left += !sent;
    }
    if (s->do_fsync && left)
        mlo__fs_fsync_dir(s->dir);
    return MLO_OK;
}

/* Stages local_path (mem == NULL) or the bytes mem[0..len) as rel. */
static int stage(mlo_run *r, const char *local_path, const char *artifact_path, const void *mem,
                 size_t len, const char *rel) {
    mlo_client *c = r->client;
    mlo_env *env = mlo__client_env(c);
    mlo_store *store = mlo__client_store(c);
    stager s = {
        .env = env, .r = r, .u = mlo__client_uploader(c), .procid = mlo__store_procid(store)};
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
    struct stat sb;
    s.may_stream = s.u && !rel && stat(local_path, &sb) == 0 && S_ISREG(sb.st_mode);
    s.buf = malloc(CHUNK);
    if (!s.buf) {
        st = MLO_ERR_NO_MEMORY;
    } else if (rel) {
        s.mem = mem;
        s.mem_len = len;
        st = stage_one(&s, -1, rel, rel);
    } else {
        st = for_each_file(env, local_path, artifact_path, stage_fn, &s);
    }
    size_t written = 0;
    if (st == MLO_OK) {
        const char *uri = mlo__store_uri(store);
        for (; written < s.n; written++) {
            staged *g = &s.v[written];
            mlo_manifest m = {.path = g->rel,
                              .size = g->size,
                              .created = mlo__env_now_ms(env),
                              .uri = (char *)uri,
                              .blob = g->ident};
            snprintf(m.lid, sizeof m.lid, "%.32s", r->local_id);
            snprintf(m.sha, sizeof m.sha, "%s", g->sha[0] ? g->sha : MLO_MANIFEST_SHA_PENDING);
            /* to the disk in stage_finish, once the upload is under way */
            if (mlo__manifest_write(s.dir, g->id, ".art", &m, 0) != 0) {
                mlo__env_report(env, MLO_ERR_STORE, 0,
                                "log_artifact: cannot write a manifest in %s: %s", s.dir,
                                strerror(errno));
                st = MLO_ERR_STORE;
                break;
            }
        }
    }
    if (st == MLO_OK && s.n) {
        st = hand_over(c, r->local_id, &s);
        if (st == MLO_OK && (st = stage_finish(&s)) == MLO_ERR_NO_MEMORY && s.u) {
            /* Handed over: the upload may be under way, and a call that
             * fails must have queued nothing, so this one cannot fail any
             * more.  What memory kept from being done: a digest left pending
             * (the uploader sends the blob as staged, or hashes it), and
             * the fsyncs, done for every file system at once (sync needs no
             * memory). */
            if (s.do_fsync)
                sync();
            st = MLO_OK;
        }
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
