/*
 * mlo_artifact.c - artifacts: mlo_log_artifact / mlo_log_artifact_bytes
 * stage files into the store; a background uploader per client sends them
 * to the tracking server's proxied artifact API.
 *
 * ==== Staging (the log call, any thread) ====
 * Each file is copied into <store>/artifacts/<id>.blob in 1 MiB chunks (the
 * only buffer: memory does not grow with the file) while its SHA-256 is
 * computed (libcrypto's EVP API); it is written as <id>.blob.tmp, fsync'd
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
 * ==== Manifest format ====
 * Text lines "key value", values percent-encoded where they could hold a
 * space, a control character or '%' (path, uri, error):
 *   mlo-artifact 1
 *   run <local id of the run>
 *   path <artifact path relative to the run's artifact root>
 *   size <bytes>
 *   sha256 <64 hex>
 *   created <ms since the epoch>
 *   uri <tracking URI it is bound for, "-" for a local store>
 *   error <why it failed>           (.failed manifests only)
 * States are file names: <id>.art pending, <id>.failed refused for good
 * (the blob is kept; `mlo sync` tries again), no manifest = uploaded (the
 * blob goes right after the manifest; an orphan blob of a dead process is
 * removed by whoever claims that process).
 *
 * ==== Uploading (one thread per client with a store and a tracking URI) ====
 * Takes the manifests of its own client (handed over in memory by the log
 * calls) and, once at start, those of the dead processes its store claimed
 * when it opened (mlo__store_owns: the same rule as segment adoption, so one
 * uploader per manifest; each upload also holds an exclusive flock on the
 * manifest).  Per manifest: wait until the run has a server id (the
 * client's run table for its own runs, runs.map for others), get the run's
 * artifact URI once per run (runs/get, cached), map it to the proxied API
 * (mlo__artifact_root: an s3:// or file: root is reported once per run with
 * MLO_ERR_ARTIFACTS_NOT_PROXIED, and its artifacts are parked: kept, not
 * retried by this client), check the blob's SHA-256, then PUT it, or for
 * files of at least $MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE (500 MiB)
 * send it in parts of $MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE (100 MiB) through
 * mpu/create, the presigned part URLs and mpu/complete (mpu/abort on a
 * failure; a server without multipart, 501, gets a single PUT from then on;
 * $MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD=false turns multipart off).  Done:
 * manifest and blob removed, MLO_STAT_ARTIFACT_BYTES/FILES counted.
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
 * Without a store (durability off) nothing is staged: the call uploads the
 * files itself, synchronously, and returns the upload's status.
 *
 * Threads: the log calls from any thread; the uploader owns its mlo_api; the
 * lists below are under mlo_arts.lock.
 */
#define _GNU_SOURCE
#include "mlo_artifact.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1u << 20)
#define ART_SUB "artifacts"
#define MPU_MIN_DEFAULT (500LL * 1024 * 1024)
#define MPU_CHUNK_DEFAULT (100LL * 1024 * 1024)
#define MPU_MAX_PARTS 10000
#define MAX_DEPTH 128
#define RUN_WAIT_MAX_NS 2000000000LL

/* ---- state ------------------------------------------------------------------ */

enum { L_OWN = 0, L_ADOPTED = 1 };

typedef struct art_item {
    struct art_item *prev, *next;
    int list;         /* L_OWN, L_ADOPTED */
    uint64_t seq;     /* own: staging order (flush) */
    char id[96];      /* file stem */
    char lid[33];     /* run local id ("" until the manifest is read) */
    int busy;         /* being uploaded */
    int parked;       /* its run's artifacts are not proxied: left in the store */
    int verified;     /* the blob's SHA-256 was checked */
    int fails, waits;
    int64_t retry_at; /* CLOCK_MONOTONIC ns; 0 = now */
    char *failed_path; /* refused for good: its artifact path (for settle) */
} art_item;

enum { RUN_UNKNOWN = 0, RUN_READY, RUN_NOT_PROXIED };

typedef struct art_run {
    struct art_run *next;
    char lid[33];
    int state;
    char *root;       /* RUN_READY: the proxied API path of its artifact root */
    int fail_status;  /* an upload of the run was refused for good with it */
    char **failed;    /* the artifact paths refused for good */
    size_t nfailed;
} art_run;

typedef struct mpu_cfg {
    int enabled;
    int64_t min_size, chunk;
} mpu_cfg;

typedef struct mlo_arts {
    struct mlo_arts *reg_next;
    mlo_client *c;
    mlo_store *store;
    char *dir; /* <store>/artifacts */
    pthread_mutex_t lock;
    pthread_cond_t cond;      /* work added, stop */
    pthread_cond_t done_cond; /* an own item settled */
    art_item *head[2], *tail[2];
    art_run *runs;
    uint64_t seq;
    int stop;
    int started;
    pthread_t thr;
    mpu_cfg mpu;
    int no_mpu; /* the server answered 501 to mpu/create (uploader thread only) */
} mlo_arts;

/* Clients with an uploader: a process-wide list (the client struct has no
 * room of its own for it). */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static mlo_arts *registry;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;
static _Atomic uint64_t id_counter;

static void reg_atfork_child(void) {
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    reg_lock = fresh; /* a parent thread may have held it at fork */
}
static void reg_init(void) {
    pthread_atfork(NULL, NULL, reg_atfork_child);
}

/* OpenSSL, when mlo is the first to initialise it, registers no atexit
 * cleanup: an exit() without mlo_client_close runs the atexit flush while
 * the uploader may still be hashing, and a cleaned-up libcrypto under it
 * would crash the exit (the memory is the OS's to take back). */
static pthread_once_t ossl_once = PTHREAD_ONCE_INIT;
static void ossl_init(void) {
    OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
}
void mlo__artifacts_global_init(void) {
    pthread_once(&ossl_once, ossl_init);
}

static mlo_arts *arts_of(const mlo_client *c) {
    pthread_mutex_lock(&reg_lock);
    mlo_arts *a = registry;
    while (a && a->c != c)
        a = a->reg_next;
    pthread_mutex_unlock(&reg_lock);
    return a;
}

static void list_push(mlo_arts *a, art_item *it) {
    int l = it->list;
    it->next = NULL;
    it->prev = a->tail[l];
    if (a->tail[l])
        a->tail[l]->next = it;
    else
        a->head[l] = it;
    a->tail[l] = it;
}

static void list_remove(mlo_arts *a, art_item *it) {
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

static art_run *run_entry(mlo_arts *a, const char *lid, int create) {
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

static void mpu_cfg_read(mpu_cfg *m) {
    m->enabled = !env_bool_false(getenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD"));
    m->min_size = env_size("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", MPU_MIN_DEFAULT);
    m->chunk = env_size("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", MPU_CHUNK_DEFAULT);
}

/* ---- small file helpers ------------------------------------------------------ */

static int write_all(int fd, const void *p, size_t n) {
    const char *q = p;
    while (n) {
        ssize_t w = write(fd, q, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        q += w;
        n -= (size_t)w;
    }
    return 0;
}

static ssize_t read_some(int fd, void *p, size_t n) {
    for (;;) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        return r;
    }
}

static void fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* <dir>/<id><suffix>, malloc'd. */
static char *art_file(const char *dir, const char *id, const char *suffix) {
    char *p = NULL;
    if (asprintf(&p, "%s/%s%s", dir, id, suffix) < 0)
        return NULL;
    return p;
}

static void hex_of(const unsigned char *d, unsigned n, char *out) {
    static const char hx[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[2 * n] = 0;
}

/* Percent-encodes bytes <= 0x20, 0x7f and '%'. */
static int enc_append(mlo_buf *b, const char *s) {
    static const char hx[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= 0x20 || *p == 0x7f || *p == '%') {
            char e[3] = {'%', hx[*p >> 4], hx[*p & 15]};
            if (mlo__buf_append(b, e, 3))
                return -1;
        } else if (mlo__buf_appendc(b, (char)*p)) {
            return -1;
        }
    }
    return 0;
}

static int hexval(int ch) {
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Decodes in place. */
static void dec_inplace(char *s) {
    char *w = s;
    for (char *r = s; *r; r++) {
        int h, l;
        if (*r == '%' && (h = hexval(r[1])) >= 0 && (l = hexval(r[2])) >= 0) {
            *w++ = (char)(h * 16 + l);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
}

/* ---- manifests --------------------------------------------------------------- */

typedef struct manifest {
    char lid[33];
    char *path;
    int64_t size;
    char sha[65];
    int64_t created;
    char *uri;   /* NULL: local store */
    char *error; /* NULL unless failed */
} manifest;

static void manifest_free(manifest *m) {
    free(m->path);
    free(m->uri);
    free(m->error);
    memset(m, 0, sizeof *m);
}

/* Writes m as <dir>/<id><suffix> via a tmp file + fsync + rename.  0 or -1
 * (errno set). */
static int manifest_write(const char *dir, const char *id, const char *suffix,
                          const manifest *m, int do_fsync) {
    mlo_buf b = {0};
    int bad = mlo__buf_printf(&b, "mlo-artifact 1\nrun %s\npath ", m->lid) ||
              enc_append(&b, m->path) ||
              mlo__buf_printf(&b, "\nsize %" PRId64 "\nsha256 %s\ncreated %" PRId64 "\nuri ",
                              m->size, m->sha, m->created) ||
              (m->uri && *m->uri ? enc_append(&b, m->uri) : mlo__buf_appendc(&b, '-')) ||
              mlo__buf_appendc(&b, '\n');
    if (!bad && m->error)
        bad = mlo__buf_appends(&b, "error ") || enc_append(&b, m->error) ||
              mlo__buf_appendc(&b, '\n');
    char *tmp = NULL, *dst = art_file(dir, id, suffix);
    if (bad || !dst || asprintf(&tmp, "%s.tmp", dst) < 0) {
        mlo__buf_free(&b);
        free(dst);
        errno = ENOMEM;
        return -1;
    }
    int rc = -1;
    int fd = open(tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (fd >= 0) {
        rc = write_all(fd, b.data, b.len);
        if (rc == 0 && do_fsync && fsync(fd) != 0)
            rc = -1;
        int e = errno;
        close(fd);
        errno = e;
        if (rc == 0 && rename(tmp, dst) != 0)
            rc = -1;
        if (rc != 0) {
            e = errno;
            unlink(tmp);
            errno = e;
        }
    }
    mlo__buf_free(&b);
    free(tmp);
    free(dst);
    return rc;
}

/* Parses a manifest's text.  0, or -1 when a field is missing. */
static int manifest_parse(char *text, manifest *m) {
    memset(m, 0, sizeof *m);
    m->size = -1;
    int version = 0;
    for (char *line = text, *nl; line && *line; line = nl) {
        nl = strchr(line, '\n');
        if (nl)
            *nl++ = 0;
        char *sp = strchr(line, ' ');
        if (!sp)
            continue;
        *sp = 0;
        char *v = sp + 1;
        if (!strcmp(line, "mlo-artifact"))
            version = atoi(v);
        else if (!strcmp(line, "run"))
            snprintf(m->lid, sizeof m->lid, "%.32s", v);
        else if (!strcmp(line, "path")) {
            dec_inplace(v);
            free(m->path);
            m->path = strdup(v);
        } else if (!strcmp(line, "size"))
            m->size = strtoll(v, NULL, 10);
        else if (!strcmp(line, "sha256"))
            snprintf(m->sha, sizeof m->sha, "%.64s", v);
        else if (!strcmp(line, "created"))
            m->created = strtoll(v, NULL, 10);
        else if (!strcmp(line, "uri")) {
            dec_inplace(v);
            free(m->uri);
            m->uri = strcmp(v, "-") ? strdup(v) : NULL;
        } else if (!strcmp(line, "error")) {
            dec_inplace(v);
            free(m->error);
            m->error = strdup(v);
        }
    }
    if (version != 1 || !m->lid[0] || !m->path || m->size < 0 || strlen(m->sha) != 64 ||
        mlo__artifact_path_check(m->path, 0) != MLO_OK) {
        manifest_free(m);
        return -1;
    }
    return 0;
}

/* For tests/fuzz_manifest.c (declared in mlo_internal.h): manifest_parse
 * with its fields handed out (path, uri, error malloc'd, the caller frees). */
int mlo__artifact_manifest_parse(char *text, char lid[33], char sha[65], int64_t *size,
                                 int64_t *created, char **path, char **uri, char **error) {
    manifest m;
    if (manifest_parse(text, &m) != 0)
        return -1;
    memcpy(lid, m.lid, sizeof m.lid);
    memcpy(sha, m.sha, sizeof m.sha);
    *size = m.size;
    *created = m.created;
    *path = m.path;
    *uri = m.uri;
    *error = m.error;
    return 0;
}

static int manifest_read_fd(int fd, manifest *m) {
    char buf[16384];
    size_t n = 0;
    for (;;) {
        ssize_t r = pread(fd, buf + n, sizeof buf - 1 - n, (off_t)n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0 || n + (size_t)r >= sizeof buf - 1) {
            n += (size_t)r;
            break;
        }
        n += (size_t)r;
    }
    buf[n] = 0;
    return manifest_parse(buf, m);
}

/* ---- SHA-256 over a file ------------------------------------------------------ */

/* SHA-256 of fd's content from offset 0 (pread, 1 MiB at a time); *size gets
 * the bytes read.  0, or -1 on a read error. */
static int sha_fd(int fd, unsigned char *buf, char hex[65], int64_t *size) {
    EVP_MD_CTX *x = EVP_MD_CTX_new();
    if (!x || EVP_DigestInit_ex(x, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(x);
        return -1;
    }
    int64_t off = 0;
    int rc = 0;
    for (;;) {
        ssize_t r = pread(fd, buf, CHUNK, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -1;
            break;
        }
        if (r == 0)
            break;
        EVP_DigestUpdate(x, buf, (size_t)r);
        off += r;
    }
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dl = 0;
    if (rc == 0 && EVP_DigestFinal_ex(x, d, &dl) == 1)
        hex_of(d, dl, hex);
    else
        rc = -1;
    EVP_MD_CTX_free(x);
    *size = off;
    return rc;
}

/* ---- uploading one file --------------------------------------------------------- */

/* Sends bytes [0, size) of fd as rel below root: multipart when configured
 * and large enough, else one PUT. */
static int upload_fd(mlo_api *api, const mpu_cfg *mc, int *no_mpu, const char *root,
                     const char *rel, int fd, int64_t size, mlo_api_error *e) {
    if (mc->enabled && !*no_mpu && size >= mc->min_size && size > 0) {
        int64_t chunk = mc->chunk;
        if ((size + chunk - 1) / chunk > MPU_MAX_PARTS)
            chunk = (size + MPU_MAX_PARTS - 1) / MPU_MAX_PARTS;
        size_t nparts = (size_t)((size + chunk - 1) / chunk);
        mlo_mpu m;
        int st = mlo__api_mpu_create(api, root, rel, nparts, &m, e);
        if (st == MLO_ERR_NOT_SUPPORTED) {
            *no_mpu = 1; /* this server has no multipart: single PUTs from now on */
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
            mlo__mpu_free(&m);
            return st;
        }
    }
    return mlo__api_artifact_put(api, root, rel, fd, 0, size, e);
}

/* A failure that trying again will not fix. */
static int permanent(int st) {
    return st == MLO_ERR_SERVER_INVALID || st == MLO_ERR_NOT_FOUND ||
           st == MLO_ERR_ALREADY_EXISTS || st == MLO_ERR_INVALID_PATH ||
           st == MLO_ERR_STORE || st == MLO_ERR_IO || st == MLO_ERR_INVALID_ARGUMENT;
}

/* ---- walking a file or a directory ------------------------------------------------ */

/* Called per regular file: fd open for reading, shown = its local path (for
 * messages), rel = its artifact path (checked).  Returns an mlo_status;
 * anything but MLO_OK stops the walk. */
typedef int (*file_fn)(void *ctx, int fd, const char *shown, const char *rel);

typedef struct walker {
    mlo_client *c;
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
    mlo_client *c = w->c;
    char *child = NULL;
    if (asprintf(&child, "%s/%s", real, name) < 0)
        return MLO_ERR_NO_MEMORY;
    int st = MLO_OK;
    struct stat sb;
    if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT) {
            mlo__report(c, MLO_ERR_IO, 0, "log_artifact: cannot read %s: %s", child,
                        strerror(errno));
            st = MLO_ERR_IO;
        }
        free(child);
        return st; /* vanished meanwhile: nothing to log */
    }
    if (S_ISLNK(sb.st_mode)) {
        char *t = realpath(child, NULL);
        if (!t) {
            mlo__report(c, MLO_ERR_IO, 1, "log_artifact: %s is a dangling symbolic link: skipped",
                        child);
        } else if (!inside(w, t)) {
            mlo__report(c, MLO_ERR_INVALID_PATH, 1,
                        "log_artifact: %s is a symbolic link to %s, outside %s: skipped", child,
                        t, w->root);
        } else if (stat(t, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            int cfd = open(t, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (cfd < 0) {
                mlo__report(c, MLO_ERR_IO, 0, "log_artifact: cannot open %s: %s", child,
                            strerror(errno));
                st = MLO_ERR_IO;
            } else {
                st = walk_dir(w, cfd, t);
                close(cfd);
            }
        } else if (S_ISREG(sb.st_mode)) {
            int ffd = open(t, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
            if (ffd < 0) {
                mlo__report(c, MLO_ERR_IO, 0, "log_artifact: cannot open %s: %s", child,
                            strerror(errno));
                st = MLO_ERR_IO;
            } else {
                st = w->fn(w->ctx, ffd, child, w->rel.data);
                close(ffd);
            }
        } else {
            mlo__report(c, MLO_ERR_IO, 1,
                        "log_artifact: %s is not a regular file or directory: skipped", child);
        }
        free(t);
    } else if (S_ISDIR(sb.st_mode)) {
        int cfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (cfd < 0) {
            mlo__report(c, MLO_ERR_IO, 0, "log_artifact: cannot open %s: %s", child,
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
                mlo__report(c, MLO_ERR_IO, 0, "log_artifact: cannot open %s: %s", child,
                            strerror(errno));
                st = MLO_ERR_IO;
            }
        } else {
            st = w->fn(w->ctx, ffd, child, w->rel.data);
        }
        if (ffd >= 0)
            close(ffd);
    } else {
        mlo__report(c, MLO_ERR_IO, 1,
                    "log_artifact: %s is not a regular file or directory: skipped", child);
    }
    free(child);
    return st;
}

static int walk_dir(walker *w, int dfd, const char *real) {
    mlo_client *c = w->c;
    struct stat dsb;
    if (fstat(dfd, &dsb) != 0)
        return MLO_ERR_IO;
    for (int i = 0; i < w->depth; i++)
        if (w->devs[i] == dsb.st_dev && w->inos[i] == dsb.st_ino) {
            mlo__report(c, MLO_ERR_INVALID_PATH, 1,
                        "log_artifact: %s leads back to a directory above it: skipped", real);
            return MLO_OK;
        }
    if (w->depth >= MAX_DEPTH) {
        mlo__report(c, MLO_ERR_INVALID_PATH, 1,
                    "log_artifact: %s is nested more than %d directories deep: skipped", real,
                    MAX_DEPTH);
        return MLO_OK;
    }
    int dup_fd = dup(dfd);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!d) {
        if (dup_fd >= 0)
            close(dup_fd);
        mlo__report(c, MLO_ERR_IO, 0, "log_artifact: cannot read directory %s: %s", real,
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
        int pc = mlo__artifact_path_check(names[i], 0);
        w->rel.len = base;
        if (w->rel.data)
            w->rel.data[base] = 0;
        if (pc == MLO_OK &&
            ((base && mlo__buf_appendc(&w->rel, '/')) || mlo__buf_appends(&w->rel, names[i]))) {
            st = MLO_ERR_NO_MEMORY;
            break;
        }
        if (pc == MLO_OK)
            pc = mlo__artifact_path_check(w->rel.data, 0); /* length */
        if (pc != MLO_OK) {
            mlo__report(c, pc, 1,
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
static int for_each_file(mlo_client *c, const char *local_path, const char *artifact_path,
                         file_fn fn, void *ctx) {
    int fd = open(local_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        int e = errno;
        mlo__report(c, MLO_ERR_IO, 0, "log_artifact: cannot open %s: %s", local_path,
                    strerror(e));
        if (fd >= 0)
            close(fd);
        return MLO_ERR_IO;
    }
    int st;
    if (S_ISREG(sb.st_mode)) {
        char *rel = file_rel(local_path, artifact_path);
        st = rel ? mlo__artifact_path_check(rel, 0) : MLO_ERR_NO_MEMORY;
        if (st == MLO_ERR_INVALID_PATH || st == MLO_ERR_INVALID_UTF8)
            mlo__report(c, st, 0, "log_artifact: the file name of %s is not a valid artifact path",
                        local_path);
        if (st == MLO_OK)
            st = fn(ctx, fd, local_path, rel);
        free(rel);
    } else if (S_ISDIR(sb.st_mode)) {
        walker w = {.c = c, .fn = fn, .ctx = ctx};
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
        mlo__report(c, MLO_ERR_IO, 0, "log_artifact: %s is not a regular file or directory",
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
    mlo_client *c;
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
    mlo_client *c = s->c;
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
    char *blob = art_file(s->dir, g->id, ".blob");
    char *tmp = art_file(s->dir, g->id, ".blob.tmp");
    EVP_MD_CTX *x = EVP_MD_CTX_new();
    if (!g->rel || !blob || !tmp || !x || EVP_DigestInit_ex(x, EVP_sha256(), NULL) != 1) {
        free(g->rel);
        free(blob);
        free(tmp);
        EVP_MD_CTX_free(x);
        return MLO_ERR_NO_MEMORY;
    }
    int st = MLO_OK;
    int out = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (out < 0) {
        mlo__report(c, MLO_ERR_STORE, 0, "log_artifact: cannot create %s: %s", tmp,
                    strerror(errno));
        st = MLO_ERR_STORE;
    }
    size_t mem_off = 0;
    while (st == MLO_OK) {
        ssize_t r;
        const unsigned char *p;
        if (fd >= 0) {
            r = read_some(fd, s->buf, CHUNK);
            p = s->buf;
            if (r < 0) {
                mlo__report(c, MLO_ERR_IO, 0, "log_artifact: cannot read %s: %s", shown,
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
        EVP_DigestUpdate(x, p, (size_t)r);
        if (write_all(out, p, (size_t)r) != 0) {
            mlo__report(c, MLO_ERR_STORE, 0, "log_artifact: cannot write %s: %s", tmp,
                        strerror(errno));
            st = MLO_ERR_STORE;
            break;
        }
        g->size += r;
    }
    if (st == MLO_OK && s->do_fsync && fsync(out) != 0) {
        mlo__report(c, MLO_ERR_STORE, 0, "log_artifact: cannot write %s: %s", tmp,
                    strerror(errno));
        st = MLO_ERR_STORE;
    }
    if (out >= 0)
        close(out);
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dl = 0;
    if (st == MLO_OK && EVP_DigestFinal_ex(x, d, &dl) != 1)
        st = MLO_ERR_INTERNAL;
    EVP_MD_CTX_free(x);
    if (st == MLO_OK) {
        hex_of(d, dl, g->sha);
        if (rename(tmp, blob) != 0) {
            mlo__report(c, MLO_ERR_STORE, 0, "log_artifact: cannot rename %s: %s", tmp,
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
        char *p = art_file(s->dir, s->v[i].id, ".blob");
        if (p)
            unlink(p);
        free(p);
        if (i < manifests) {
            p = art_file(s->dir, s->v[i].id, ".art");
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
    mlo_arts *a = arts_of(c);
    if (!a)
        return MLO_OK;
    art_item **items = calloc(s->n ? s->n : 1, sizeof *items);
    if (!items)
        return MLO_ERR_NO_MEMORY;
    for (size_t i = 0; i < s->n; i++)
        if (!(items[i] = calloc(1, sizeof **items))) {
            for (size_t k = 0; k < i; k++)
                free(items[k]);
            free(items);
            return MLO_ERR_NO_MEMORY;
        }
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < s->n; i++) {
        art_item *it = items[i];
        it->list = L_OWN;
        it->seq = ++a->seq;
        snprintf(it->id, sizeof it->id, "%s", s->v[i].id);
        snprintf(it->lid, sizeof it->lid, "%.32s", lid);
        list_push(a, it);
    }
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
    free(items);
    return MLO_OK;
}

/* Stages local_path (mem == NULL) or the bytes mem[0..len) as rel. */
static int stage(mlo_run *r, const char *local_path, const char *artifact_path,
                 const void *mem, size_t len, const char *rel) {
    mlo_client *c = r->client;
    stager s = {.c = c, .r = r, .procid = mlo__store_procid(c->store)};
    s.do_fsync = mlo__store_fsync_policy(c->store) != MLO_FSYNC_NONE;
    if (asprintf(&s.dir, "%s/" ART_SUB, mlo__store_dir(c->store)) < 0) {
        s.dir = NULL;
        return MLO_ERR_NO_MEMORY;
    }
    int st;
    if (mkdir(s.dir, 0700) != 0 && errno != EEXIST) {
        mlo__report(c, MLO_ERR_STORE, 0, "log_artifact: cannot create %s: %s", s.dir,
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
        st = s.buf ? for_each_file(c, local_path, artifact_path, stage_fn, &s)
                   : MLO_ERR_NO_MEMORY;
    }
    size_t written = 0;
    if (st == MLO_OK) {
        const char *uri = mlo__store_uri(c->store);
        for (; written < s.n; written++) {
            manifest m = {.path = s.v[written].rel,
                          .size = s.v[written].size,
                          .created = mlo__now_ms(),
                          .uri = (char *)uri};
            snprintf(m.lid, sizeof m.lid, "%.32s", r->local_id);
            memcpy(m.sha, s.v[written].sha, sizeof m.sha);
            if (manifest_write(s.dir, s.v[written].id, ".art", &m, s.do_fsync) != 0) {
                mlo__report(c, MLO_ERR_STORE, 0, "log_artifact: cannot write a manifest in %s: %s",
                            s.dir, strerror(errno));
                st = MLO_ERR_STORE;
                break;
            }
        }
    }
    if (st == MLO_OK && s.n) {
        if (s.do_fsync)
            fsync_dir(s.dir);
        st = hand_over(c, r->local_id, &s);
    }
    if (st != MLO_OK)
        stage_rollback(&s, written);
    stage_free(&s);
    return st;
}

/* ---- without a store: uploading in the call ------------------------------------------ */

typedef struct direct {
    mlo_client *c;
    mlo_api *api;
    const char *root;
    mpu_cfg mpu;
    int no_mpu;
} direct;

static int direct_fn(void *ctx, int fd, const char *shown, const char *rel) {
    direct *d = ctx;
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return MLO_ERR_IO;
    mlo_api_error e;
    int st = upload_fd(d->api, &d->mpu, &d->no_mpu, d->root, rel, fd, (int64_t)sb.st_size, &e);
    if (st == MLO_ERR_STORE)
        st = MLO_ERR_IO; /* the transport could not read the caller's file */
    if (st == MLO_OK) {
        mlo__stat_add(d->c, MLO_STAT_ARTIFACT_BYTES, (uint64_t)sb.st_size);
        mlo__stat_add(d->c, MLO_STAT_ARTIFACT_FILES, 1);
    } else {
        mlo__report(d->c, st, 0, "log_artifact: %s as %s: %s", shown, rel,
                    e.message[0] ? e.message : mlo_strerror(st));
    }
    return st;
}

/* The run's server id, waiting for the sender to create it (at most the
 * request timeout).  MLO_OK (*sid malloc'd), MLO_ERR_TIMEOUT or the status
 * the server refused the run with. */
static int wait_server_id(mlo_run *r, char **sid) {
    mlo_client *c = r->client;
    int64_t until = mlo__mono_ns() + (int64_t)((c->cfg.timeout_s > 0 ? c->cfg.timeout_s : 120) * 1e9);
    struct timespec abs = {until / 1000000000, until % 1000000000};
    pthread_mutex_lock(&c->runs_lock);
    const char *s;
    int st;
    while (!(s = atomic_load_explicit(&r->server_id, memory_order_acquire)) &&
           (st = atomic_load_explicit(&r->create_status, memory_order_acquire)) == MLO_OK &&
           !atomic_load_explicit(&c->closing, memory_order_acquire)) {
        if (pthread_cond_timedwait(&c->runs_cond, &c->runs_lock, &abs) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&c->runs_lock);
    s = atomic_load_explicit(&r->server_id, memory_order_acquire);
    if (s) {
        *sid = strdup(s);
        return *sid ? MLO_OK : MLO_ERR_NO_MEMORY;
    }
    st = atomic_load_explicit(&r->create_status, memory_order_acquire);
    return st != MLO_OK ? st : MLO_ERR_TIMEOUT;
}

static int upload_direct(mlo_run *r, const char *local_path, const char *artifact_path,
                         const void *mem, size_t len, const char *rel) {
    mlo_client *c = r->client;
    if (!c->cfg.tracking_uri) {
        mlo__report(c, MLO_ERR_STORE, 0,
                    "log_artifact: no store and no tracking URI: the artifact has nowhere to go");
        return MLO_ERR_STORE;
    }
    char *sid = NULL, *uri = NULL, *root = NULL;
    int st = wait_server_id(r, &sid);
    if (st != MLO_OK) {
        mlo__report(c, st, 0, "log_artifact: run %s is not on the server: %s", r->local_id,
                    mlo_strerror(st));
        return st;
    }
    direct d = {.c = c};
    mpu_cfg_read(&d.mpu);
    d.api = mlo__api_new(&c->cfg, c);
    if (!d.api) {
        free(sid);
        return MLO_ERR_NO_MEMORY;
    }
    mlo_api_error e;
    st = mlo__api_get_run_info(d.api, sid, NULL, &uri, &e);
    if (st != MLO_OK) {
        mlo__report(c, st, 0, "log_artifact: run %s: %s", sid,
                    e.message[0] ? e.message : mlo_strerror(st));
    } else {
        st = mlo__artifact_root(uri, &root);
        if (st == MLO_ERR_ARTIFACTS_NOT_PROXIED)
            mlo__report(c, st, 0,
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
            if (fd < 0 || (len && write_all(fd, mem, len) != 0)) {
                st = fd < 0 ? MLO_ERR_NO_MEMORY : MLO_ERR_NO_MEMORY;
            } else {
                st = direct_fn(&d, fd, rel, rel);
            }
            if (fd >= 0)
                close(fd);
        } else {
            st = for_each_file(c, local_path, artifact_path, direct_fn, &d);
        }
    }
    mlo__api_free(d.api);
    free(sid);
    free(uri);
    free(root);
    return st;
}

/* ---- the public calls ------------------------------------------------------------------ */

static int log_common(mlo_run *r, const char *local_path, const char *artifact_path,
                      const void *mem, size_t len, const char *rel) {
    mlo_client *c = r->client;
    if (c->store)
        return stage(r, local_path, artifact_path, mem, len, rel);
    return upload_direct(r, local_path, artifact_path, mem, len, rel);
}

MLO_API int mlo_log_artifact(mlo_run_t *r, const char *local_path, const char *artifact_path) {
    int st = mlo__run_check(r);
    if (st != MLO_OK)
        return st;
    if (!local_path || !*local_path)
        return MLO_ERR_INVALID_ARGUMENT;
    if (!mlo__utf8_valid(local_path, strlen(local_path)))
        return MLO_ERR_INVALID_UTF8;
    st = mlo__artifact_path_check(artifact_path, 1);
    if (st != MLO_OK) {
        mlo__stat_add(r->client, MLO_STAT_REJECTED, 1);
        return st;
    }
    return log_common(r, local_path, artifact_path, NULL, 0, NULL);
}

MLO_API int mlo_log_artifact_bytes(mlo_run_t *r, const void *data, size_t len,
                                   const char *artifact_path) {
    int st = mlo__run_check(r);
    if (st != MLO_OK)
        return st;
    if (!artifact_path || (!data && len))
        return MLO_ERR_INVALID_ARGUMENT;
    st = mlo__artifact_path_check(artifact_path, 0);
    if (st != MLO_OK) {
        mlo__stat_add(r->client, MLO_STAT_REJECTED, 1);
        return st;
    }
    return log_common(r, NULL, NULL, data, len, artifact_path);
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
static int run_sid(mlo_arts *a, const char *lid, char **sid) {
    *sid = NULL;
    mlo_run *r = a->c->lid_heads ? mlo__client_run_by_lid(a->c, lid) : NULL;
    if (r) {
        const char *s = atomic_load_explicit(&r->server_id, memory_order_acquire);
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

/* Renames the manifest <id><suffix> to <id>.failed with the reason. */
static void mark_failed(mlo_arts *a, const char *id, const char *suffix, manifest *m, int st,
                        const char *why) {
    mlo_client *c = a->c;
    free(m->error);
    m->error = strdup(why);
    if (manifest_write(a->dir, id, ".failed", m, 1) == 0) {
        if (strcmp(suffix, ".failed")) {
            char *p = art_file(a->dir, id, suffix);
            if (p)
                unlink(p);
            free(p);
        }
    }
    mlo__stat_add(c, MLO_STAT_FAILED, 1);
    mlo__report(c, st, 0,
                "artifact \"%s\" of run %s refused for good: %s; kept in %s/%s.blob (`mlo sync` "
                "tries again)",
                m->path, m->lid, why, a->dir, id);
}

/* The artifact root of run lid (whose server id is sid), from the cache or
 * runs/get.  MLO_OK (*root borrowed: lives as long as a), or a status;
 * MLO_ERR_ARTIFACTS_NOT_PROXIED is reported once per run. */
static int run_root(mlo_arts *a, mlo_api *api, const char *lid, const char *sid,
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
    st = mlo__artifact_root(uri, &r);
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
        mlo__report(a->c, st, 0,
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

/* Uploads the artifact <id><suffix> (".art", or ".failed" for sync).
 * *status gets the failure's status; msg (may be NULL) its message. */
static int process(mlo_arts *a, mlo_api *api, art_item *it, const char *suffix, int *status,
                   char *msg, size_t msglen) {
    mlo_client *c = a->c;
    *status = MLO_OK;
    if (msg && msglen)
        msg[0] = 0;
    char *mpath = art_file(a->dir, it->id, suffix);
    char *bpath = art_file(a->dir, it->id, ".blob");
    if (!mpath || !bpath) {
        free(mpath);
        free(bpath);
        *status = MLO_ERR_NO_MEMORY;
        return R_RETRY;
    }
    int res;
    manifest m = {0};
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
    if (manifest_read_fd(mfd, &m) != 0) {
        memset(&m, 0, sizeof m);
        m.path = strdup("?");
        snprintf(m.lid, sizeof m.lid, "?");
        *status = MLO_ERR_STORE;
        mlo__stat_add(c, MLO_STAT_FAILED, 1);
        mlo__report(c, MLO_ERR_STORE, 0, "artifact manifest %s is unreadable: left as it is",
                    mpath);
        res = R_PARKED;
        goto out;
    }
    if (!it->lid[0])
        snprintf(it->lid, sizeof it->lid, "%s", m.lid);
    int st = run_sid(a, m.lid, &sid);
    if (st == MLO_ERR_TIMEOUT) {
        *status = st;
        if (msg)
            snprintf(msg, msglen, "run %s of artifact \"%s\" is not on the server", m.lid,
                     m.path);
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
        mark_failed(a, it->id, suffix, &m, st, why);
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
        if (permanent(st)) {
            mark_failed(a, it->id, suffix, &m, st, e.message[0] ? e.message : mlo_strerror(st));
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
        mark_failed(a, it->id, suffix, &m, MLO_ERR_STORE, why);
        if (msg)
            snprintf(msg, msglen, "artifact \"%.150s\": %.300s", m.path, why);
        res = R_FAILED;
        goto out;
    }
    if (!it->verified) {
        unsigned char *buf = malloc(CHUNK);
        char hex[65] = "";
        int64_t got = 0;
        int rc = buf ? sha_fd(bfd, buf, hex, &got) : -1;
        free(buf);
        if (!buf) {
            *status = MLO_ERR_NO_MEMORY;
            res = R_RETRY;
            goto out;
        }
        if (rc != 0 || got != m.size || strcmp(hex, m.sha)) {
            char why[512];
            snprintf(why, sizeof why, "its content %s is damaged (SHA-256 mismatch)", bpath);
            *status = MLO_ERR_STORE;
            mark_failed(a, it->id, suffix, &m, MLO_ERR_STORE, why);
            if (msg)
                snprintf(msg, msglen, "artifact \"%.150s\": %.300s", m.path, why);
            res = R_FAILED;
            goto out;
        }
        it->verified = 1;
    }
    st = upload_fd(api, &a->mpu, &a->no_mpu, root, m.path, bfd, m.size, &e);
    if (st == MLO_OK) {
        /* the manifest first: a blob without one is an orphan, removed later */
        unlink(mpath);
        unlink(bpath);
        mlo__stat_add(c, MLO_STAT_ARTIFACT_BYTES, (uint64_t)m.size);
        mlo__stat_add(c, MLO_STAT_ARTIFACT_FILES, 1);
        res = R_DONE;
        goto out;
    }
    *status = st;
    if (msg)
        snprintf(msg, msglen, "artifact \"%.150s\": %.300s", m.path,
                 e.message[0] ? e.message : mlo_strerror(st));
    if (permanent(st)) {
        mark_failed(a, it->id, suffix, &m, st, e.message[0] ? e.message : mlo_strerror(st));
        res = R_FAILED;
    } else {
        mlo__report(c, st, 1, "artifact \"%s\" of run %s: upload failed (%s); kept in the store, "
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
    manifest_free(&m);
    free(sid);
    free(mpath);
    free(bpath);
    return res;
}

static int64_t backoff_ns(const mlo_client *c, int k) {
    double f = c->cfg.backoff_factor_s > 0 ? c->cfg.backoff_factor_s : 0.05;
    double secs = f * (double)(1u << (k < 10 ? k : 10));
    if (secs < 0.05)
        secs = 0.05;
    if (secs > 60)
        secs = 60;
    return (int64_t)(secs * 1e9);
}

static int own_pending(const mlo_arts *a, uint64_t upto, const char *lid) {
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
static void settle(mlo_arts *a, art_item *it, int res, int status) {
    int64_t now = mlo__mono_ns();
    switch (res) {
    case R_RETRY:
        it->retry_at = now + backoff_ns(a->c, it->fails++);
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
    free(it->failed_path);
    free(it);
    pthread_cond_broadcast(&a->done_cond);
}

/* Under a->lock: the next item due (own ones first), or NULL with *next the
 * time the first waiting one is due (INT64_MAX: none). */
static art_item *pick(mlo_arts *a, int64_t now, int64_t *next) {
    *next = INT64_MAX;
    for (int l = 0; l < 2; l++)
        for (art_item *it = a->head[l]; it; it = it->next) {
            if (it->busy || it->parked)
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
static void scan_claimed(mlo_arts *a, char ***ids, size_t *nids) {
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
            strcmp(procid, mlo__store_procid(a->store)) == 0 ||
            !mlo__store_owns(a->store, procid))
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
            char *p = art_file(a->dir, nm, "");
            if (p)
                unlink(p); /* a staging that died half-way */
            free(p);
        } else if (has_suffix(nm, l, ".blob")) {
            nm[l - 5] = 0;
            char *m1 = art_file(a->dir, nm, ".art"), *m2 = art_file(a->dir, nm, ".failed");
            struct stat sb;
            if (m1 && m2 && stat(m1, &sb) != 0 && errno == ENOENT && stat(m2, &sb) != 0 &&
                errno == ENOENT) {
                char *p = art_file(a->dir, nm, ".blob");
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

static void *uploader_main(void *arg) {
    mlo_arts *a = arg;
    mlo_client *c = a->c;
    mlo_api *api = mlo__api_new(&c->cfg, c);
    if (!api)
        mlo__report(c, MLO_ERR_NO_MEMORY, 0,
                    "artifact uploader: out of memory; artifacts stay in the store");
    else
        scan_claimed(a, NULL, NULL);
    pthread_mutex_lock(&a->lock);
    while (!a->stop) {
        int64_t now = mlo__mono_ns(), next;
        art_item *it = api ? pick(a, now, &next) : NULL;
        if (!it) {
            if (!api || next == INT64_MAX) {
                pthread_cond_wait(&a->cond, &a->lock);
            } else {
                struct timespec ts = {next / 1000000000, next % 1000000000};
                pthread_cond_timedwait(&a->cond, &a->lock, &ts);
            }
            continue;
        }
        it->busy = 1;
        pthread_mutex_unlock(&a->lock);
        int status;
        int res = process(a, api, it, ".art", &status, NULL, 0);
        pthread_mutex_lock(&a->lock);
        it->busy = 0;
        settle(a, it, res, status);
    }
    pthread_mutex_unlock(&a->lock);
    mlo__api_free(api);
    return NULL;
}

static void arts_free(mlo_arts *a) {
    for (int l = 0; l < 2; l++)
        while (a->head[l]) {
            art_item *it = a->head[l];
            list_remove(a, it);
            free(it->failed_path);
            free(it);
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
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->cond);
    pthread_cond_destroy(&a->done_cond);
    free(a->dir);
    free(a);
}

static mlo_arts *arts_new(mlo_client *c, mlo_store *s) {
    mlo_arts *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->c = c;
    a->store = s;
    if (asprintf(&a->dir, "%s/" ART_SUB, mlo__store_dir(s)) < 0) {
        free(a);
        return NULL;
    }
    pthread_mutex_init(&a->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->cond, &ca);
    pthread_cond_init(&a->done_cond, &ca);
    pthread_condattr_destroy(&ca);
    mpu_cfg_read(&a->mpu);
    return a;
}

int mlo__artifacts_start(mlo_client *c) {
    if (!c->store || !c->cfg.tracking_uri)
        return MLO_OK;
    pthread_once(&reg_once, reg_init);
    mlo_arts *a = arts_new(c, c->store);
    if (!a)
        return MLO_ERR_NO_MEMORY;
    if (pthread_create(&a->thr, NULL, uploader_main, a) != 0) {
        arts_free(a);
        return MLO_ERR_NO_MEMORY;
    }
    a->started = 1;
    pthread_mutex_lock(&reg_lock);
    a->reg_next = registry;
    registry = a;
    pthread_mutex_unlock(&reg_lock);
    return MLO_OK;
}

/* Waits until no own item staged up to seq `upto` (of run lid, if given) is
 * pending.  MLO_OK or MLO_ERR_TIMEOUT. */
static int wait_own(mlo_arts *a, uint64_t upto, const char *lid, int64_t deadline_ns) {
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

int mlo__artifacts_flush(mlo_client *c, int64_t deadline_ns) {
    mlo_arts *a = arts_of(c);
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

int mlo__artifacts_wait_run(mlo_client *c, const char *lid, const char *path,
                            int64_t deadline_ns) {
    if (!lid)
        return MLO_ERR_INVALID_ARGUMENT;
    mlo_arts *a = arts_of(c);
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

int mlo__artifacts_stop(mlo_client *c, int64_t deadline_ns) {
    mlo_arts *a = arts_of(c);
    if (!a)
        return MLO_OK;
    pthread_mutex_lock(&a->lock);
    int st = wait_own(a, a->seq, NULL, deadline_ns);
    a->stop = 1;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
    /* an upload in flight gives up at the client's abort deadline (close
     * set it): the join is bounded */
    pthread_join(a->thr, NULL);
    pthread_mutex_lock(&reg_lock);
    for (mlo_arts **p = &registry; *p; p = &(*p)->reg_next)
        if (*p == a) {
            *p = a->reg_next;
            break;
        }
    pthread_mutex_unlock(&reg_lock);
    arts_free(a);
    return st;
}

/* ---- mlo sync ----------------------------------------------------------------------------- */

int mlo__artifacts_sync(mlo_client *c, mlo_store *s, char *err, size_t errlen) {
    mlo_arts *a = arts_new(c, s);
    if (!a)
        return MLO_ERR_NO_MEMORY;
    char **ids = NULL;
    size_t n = 0;
    scan_claimed(a, &ids, &n);
    int result = MLO_OK;
    size_t failed = 0;
    char first[600] = "";
    mlo_api *api = n ? mlo__api_new(&c->cfg, c) : NULL;
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
            res = process(a, api, &it, suffix, &status, msg, sizeof msg);
            if (res != R_RETRY || tries >= 2)
                break;
            struct timespec ts = {tries + 1, 0};
            nanosleep(&ts, NULL);
        }
        if (res == R_DONE || res == R_GONE)
            continue;
        failed++;
        if (result == MLO_OK) {
            result = status != MLO_OK ? status : MLO_ERR_STORE;
            snprintf(first, sizeof first, "%s",
                     msg[0] ? msg : res == R_BUSY ? "a manifest is in use" : mlo_strerror(status));
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
