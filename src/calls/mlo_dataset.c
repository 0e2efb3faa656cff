/*
 * mlo_dataset.c - mlo_log_dataset: a run's dataset inputs (MLflow's
 * log_input, the run's "Datasets used"), and the content digest of a local
 * file or directory.
 *
 * The call checks its arguments, works out the source type and MLflow's
 * source JSON, computes the digest when none is given, and queues one
 * MLO_REC_DATASET record (key = name, value = the payload of mlo_queue.h).
 * From there it travels as every event does: ring, run log (LogEvent type 6,
 * fields digest/source_type/context), sender, which sends `runs/log-inputs`
 * after the run's earlier events (mlo_sender.c).
 *
 * Source, as MLflow's dataset sources resolve a string:
 *   - "<scheme>:/..." (a URI: a letter, then letters, digits, "+-.", then
 *     ":/"): source type = the scheme in lower case, except http and https
 *     which are "http" (MLflow's HTTPDatasetSource); "file:" is "local".
 *     The JSON is {"uri": "<as given>"}, or {"url": "<as given>"} for http(s),
 *     which is the key HTTPDatasetSource writes and reads back.
 *   - anything else is a local path: source type "local", JSON
 *     {"uri": "<absolute path>"}: an absolute path as given; a relative one
 *     resolved with realpath() when it exists, else joined to the working
 *     directory.
 *   The JSON is written as Python's json.dumps writes it (", "/": "
 *   separators, every non-ASCII character as \uXXXX), so the same dataset
 *   logged by MLflow's Python client has the same source text.
 *
 * Digest (digest NULL; only for a local source), given as the first 32 hex
 * characters (lower case) of a SHA-256 (mlo_sha256.c), read in 1 MiB chunks:
 *   - a regular file: SHA-256 of its content (so `sha256sum FILE | cut -c1-32`);
 *   - a directory: SHA-256 over every regular file below it, in bytewise
 *     order of its path relative to the directory ('/'-separated), each as
 *     the relative path, a NUL byte, the file's size as 8 bytes little-endian,
 *     then its content.  Symbolic links are followed (a dataset directory may
 *     link into a cache, as DVC does), except a link back to a directory
 *     being walked (a cycle: skipped); other special files (FIFOs, sockets,
 *     devices) and empty directories add nothing; at most 256 levels deep.
 *   Anything that cannot be opened or read (missing, permissions, a link to
 *   nothing, a file that changes size while read) is MLO_ERR_IO, with the
 *   path and the reason in the callback's message.  The digest is computed
 *   on the calling thread, before anything is queued.
 *
 * Limits checked at the call, as MLflow's server and its SQL store do (a
 * value they refuse would only fail later, or be retried forever when a
 * database rejects it with a 500): name 1..500 characters, digest 1..36,
 * source type (the scheme) at most 36, source JSON at most 65535; and the
 * record must fit the event queue (at most half of it: only a queue set
 * below 256 KiB can be too small).
 */
#define _GNU_SOURCE
#include "mlo_client.h"

#include "mlo_fs.h"
#include "mlo_payload.h"
#include "mlo_sha256.h"
#include "mlo_validate.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define DS_MAX_NAME_CHARS 500
#define DS_MAX_DIGEST_CHARS 36
#define DS_MAX_TYPE_CHARS 36
#define DS_MAX_SOURCE_CHARS 65535
#define DS_DIGEST_HEX 32
#define DS_CHUNK (1u << 20)
#define DS_MAX_DEPTH 256

/* Code points in valid UTF-8. */
static size_t utf8_chars(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* Length of the scheme when s starts with "<scheme>:/", else 0. */
static size_t uri_scheme(const char *s) {
    size_t i = 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return 0;
    for (i = 1; s[i]; i++) {
        char ch = s[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '+' || ch == '-' || ch == '.')
            continue;
        break;
    }
    return s[i] == ':' && s[i + 1] == '/' ? i : 0;
}

/* Appends s (valid UTF-8) as a JSON string, as Python's json.dumps with
 * ensure_ascii: ", \, \b \f \n \r \t escaped by name, every other character
 * outside ' '..'~' as \uXXXX (a surrogate pair above U+FFFF). */
static int json_string(mlo_buf *b, const char *s) {
    static const char hex[] = "0123456789abcdef";
    if (mlo__buf_appendc(b, '"') != 0)
        return -1;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t cp;
        int len;
        if (*p < 0x80) {
            cp = *p;
            len = 1;
        } else if (*p < 0xE0) {
            cp = (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F);
            len = 2;
        } else if (*p < 0xF0) {
            cp = (uint32_t)(p[0] & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
            len = 3;
        } else {
            cp = (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3F) << 12 |
                 (uint32_t)(p[2] & 0x3F) << 6 | (p[3] & 0x3F);
            len = 4;
        }
        p += len;
        const char *named = cp == '"'    ? "\\\""
                            : cp == '\\' ? "\\\\"
                            : cp == '\b' ? "\\b"
                            : cp == '\f' ? "\\f"
                            : cp == '\n' ? "\\n"
                            : cp == '\r' ? "\\r"
                            : cp == '\t' ? "\\t"
                                         : NULL;
        int rc;
        if (named) {
            rc = mlo__buf_appends(b, named);
        } else if (cp >= 0x20 && cp <= 0x7E) {
            rc = mlo__buf_appendc(b, (char)cp);
        } else {
            uint32_t units[2];
            int nu = 1;
            units[0] = cp;
            if (cp > 0xFFFF) {
                cp -= 0x10000;
                units[0] = 0xD800 | (cp >> 10);
                units[1] = 0xDC00 | (cp & 0x3FF);
                nu = 2;
            }
            rc = 0;
            for (int i = 0; i < nu && rc == 0; i++) {
                char e[6] = {'\\',
                             'u',
                             hex[units[i] >> 12 & 0xF],
                             hex[units[i] >> 8 & 0xF],
                             hex[units[i] >> 4 & 0xF],
                             hex[units[i] & 0xF]};
                rc = mlo__buf_append(b, e, sizeof e);
            }
        }
        if (rc != 0)
            return -1;
    }
    return mlo__buf_appendc(b, '"');
}

/* ---- digest ------------------------------------------------------------------ */

typedef struct digest_walk {
    mlo_sha256 *md;
    unsigned char *buf; /* DS_CHUNK */
    const char *root;
    int st; /* MLO_OK, MLO_ERR_IO, MLO_ERR_NO_MEMORY */
    char *err;
    size_t errlen;
} digest_walk;

/* Records the first failure (at the relative path rel, may be NULL). */
static int walk_fail(digest_walk *w, int st, const char *rel, const char *what, int e) {
    if (w->st == MLO_OK) {
        w->st = st;
        if (rel && *rel)
            snprintf(w->err, w->errlen, "%s/%s: %s", w->root, rel, what ? what : strerror(e));
        else
            snprintf(w->err, w->errlen, "%s: %s", w->root, what ? what : strerror(e));
    }
    return -1;
}

/* Hashes the content of the open regular file fd (size bytes per fstat). */
static int hash_content(digest_walk *w, int fd, uint64_t size, const char *rel) {
    uint64_t done = 0;
    for (;;) {
        ssize_t k = mlo__fs_read_some(fd, w->buf, DS_CHUNK);
        if (k < 0)
            return walk_fail(w, MLO_ERR_IO, rel, NULL, errno);
        if (k == 0)
            break;
        done += (uint64_t)k;
        if (done > size)
            break;
        if (mlo__sha256_update(w->md, w->buf, (size_t)k) != 0)
            return walk_fail(w, MLO_ERR_NO_MEMORY, rel, "SHA-256 failed", 0);
    }
    if (done != size)
        return walk_fail(w, MLO_ERR_IO, rel, "the file changed size while it was read", 0);
    return 0;
}

/* A file below the directory: its relative path, a NUL, its size (8 bytes
 * little-endian), its content. */
static int digest_file(void *ctx, int fd, const char *rel, const char *path, int64_t size) {
    (void)path;
    digest_walk *w = ctx;
    uint8_t len8[8];
    for (int b = 0; b < 8; b++)
        len8[b] = (uint8_t)((uint64_t)size >> (8 * b));
    if (mlo__sha256_update(w->md, rel, strlen(rel) + 1) != 0 || /* + the NUL */
        mlo__sha256_update(w->md, len8, sizeof len8) != 0)
        return walk_fail(w, MLO_ERR_NO_MEMORY, rel, "SHA-256 failed", 0);
    return hash_content(w, fd, (uint64_t)size, rel);
}

/* Cycles and special files add nothing; a link to nothing and too deep a
 * tree are failures. */
static int digest_skip(void *ctx, int why, const char *rel, const char *path) {
    (void)path;
    digest_walk *w = ctx;
    if (why == MLO_WALK_BROKEN)
        return walk_fail(w, MLO_ERR_IO, rel, "a symbolic link to nothing", 0);
    if (why == MLO_WALK_TOO_DEEP)
        return walk_fail(w, MLO_ERR_IO, rel, "more than 256 directory levels", 0);
    return 0;
}

/* The digest of the local file or directory at path: DS_DIGEST_HEX lower-case
 * hex characters + NUL into hex.  MLO_OK, MLO_ERR_IO or MLO_ERR_NO_MEMORY
 * with a message in err.  Exposed to the tests (test_dataset.c declares it). */
int mlo__dataset_digest(const char *path, char hex[DS_DIGEST_HEX + 1], char *err, size_t errlen);
int mlo__dataset_digest(const char *path, char hex[DS_DIGEST_HEX + 1], char *err, size_t errlen) {
    digest_walk w = {.root = path, .err = err, .errlen = errlen, .st = MLO_OK};
    w.md = mlo__sha256_new();
    w.buf = malloc(DS_CHUNK);
    if (!w.md || !w.buf) {
        mlo__sha256_free(w.md);
        free(w.buf);
        snprintf(err, errlen, "out of memory (SHA-256)");
        return MLO_ERR_NO_MEMORY;
    }
    struct stat sb;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 || fstat(fd, &sb) != 0) {
        walk_fail(&w, MLO_ERR_IO, NULL, NULL, errno);
    } else if (S_ISREG(sb.st_mode)) {
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
            (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
        hash_content(&w, fd, (uint64_t)sb.st_size, NULL);
    } else if (S_ISDIR(sb.st_mode)) {
        mlo_walk wk = {.follow = MLO_WALK_FOLLOW_ALL,
                       .max_depth = DS_MAX_DEPTH - 1,
                       .file = digest_file,
                       .skip = digest_skip,
                       .ctx = &w};
        if (mlo__fs_walk(&wk, path) == -1)
            walk_fail(&w, wk.err == ENOMEM ? MLO_ERR_NO_MEMORY : MLO_ERR_IO, wk.where_rel, NULL,
                      wk.err);
    } else {
        walk_fail(&w, MLO_ERR_IO, NULL, "not a regular file or a directory", 0);
    }
    if (fd >= 0)
        close(fd);
    unsigned char md[32];
    if (w.st == MLO_OK && mlo__sha256_final(w.md, md, NULL) != 0)
        walk_fail(&w, MLO_ERR_NO_MEMORY, NULL, "SHA-256 failed", 0);
    if (w.st == MLO_OK)
        mlo__sha256_hex(md, DS_DIGEST_HEX / 2, hex);
    mlo__sha256_free(w.md);
    free(w.buf);
    return w.st;
}

/* ---- the call ------------------------------------------------------------------ */

static int refuse(mlo_client *c, int st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(mlo_client *c, int st, const char *fmt, ...) {
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* one line of UTF-8, whatever the file names under a directory are */
    size_t n = strlen(msg);
    for (int k = 0; k < 3 && n && (unsigned char)msg[n - 1] >= 0x80 && !mlo__validate_utf8(msg, n);
         k++)
        msg[--n] = 0; /* vsnprintf may have cut a character */
    int utf8 = mlo__validate_utf8(msg, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)msg[i];
        if (ch < 0x20 || ch == 0x7F || (!utf8 && ch >= 0x80))
            msg[i] = '?';
    }
    mlo__env_stat(mlo__client_env(c), MLO_STAT_REJECTED, 1);
    mlo__env_report(mlo__client_env(c), st, 1, "log_dataset: %s", msg);
    return st;
}

static int hexval(char ch) {
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = (char)(ch | 0x20);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* A local path for a "file:" URI ("file:///p", "file://localhost/p",
 * "file:/p"), percent-decoded (but never into a NUL); NULL when it names
 * another host, or out of memory. */
static char *file_uri_path(const char *uri) {
    const char *p = uri + 5; /* past "file:" */
    if (!strncmp(p, "//", 2)) {
        p += 2;
        if (!strncmp(p, "localhost/", 10))
            p += 9;
        else if (*p != '/')
            return NULL;
    }
    char *out = malloc(strlen(p) + 1), *o = out;
    if (!out)
        return NULL;
    for (; *p && *p != '?' && *p != '#'; p++) {
        int hi = *p == '%' ? hexval(p[1]) : -1;
        int lo = hi >= 0 ? hexval(p[2]) : -1;
        if (lo >= 0 && (hi || lo)) {
            *o++ = (char)(hi << 4 | lo);
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = 0;
    return out;
}

/* The absolute form of a local path source: as given when absolute, else
 * realpath() when it exists, else the working directory joined to it.
 * malloc'd, or NULL (errno set). */
static char *absolute_path(const char *src) {
    if (src[0] == '/')
        return strdup(src);
    char *rp = realpath(src, NULL);
    if (rp)
        return rp;
    char *cwd = getcwd(NULL, 0);
    if (!cwd)
        return NULL;
    while (src[0] == '.' && src[1] == '/') {
        src += 2;
        while (*src == '/')
            src++;
    }
    size_t a = strlen(cwd), b = strlen(src);
    char *out = malloc(a + 1 + b + 1);
    if (out) {
        memcpy(out, cwd, a);
        size_t k = a;
        if (!(a && cwd[a - 1] == '/'))
            out[k++] = '/';
        memcpy(out + k, src, b + 1);
    }
    free(cwd);
    return out;
}

MLO_API int mlo_log_dataset(mlo_run_t *r, const char *name, const char *source,
                            const char *digest) {
    int st = mlo__client_run_check(r);
    if (st != MLO_OK)
        return st;
    mlo_client *c = r->client;
    if (!name)
        return refuse(c, MLO_ERR_INVALID_ARGUMENT, "name is NULL");
    if (!source)
        return refuse(c, MLO_ERR_INVALID_ARGUMENT, "source is NULL");
    size_t nlen = strlen(name);
    if (!nlen)
        return refuse(c, MLO_ERR_INVALID_ARGUMENT, "the name is empty");
    if (!mlo__validate_utf8(name, nlen))
        return refuse(c, MLO_ERR_INVALID_UTF8, "the name is not valid UTF-8");
    if (utf8_chars(name) > DS_MAX_NAME_CHARS)
        return refuse(c, MLO_ERR_INVALID_ARGUMENT,
                      "the name is over 500 characters (MLflow's limit)");
    if (!source[0])
        return refuse(c, MLO_ERR_INVALID_ARGUMENT, "the source is empty");
    if (!mlo__validate_utf8(source, strlen(source)))
        return refuse(c, MLO_ERR_INVALID_UTF8, "the source is not valid UTF-8");
    if (digest) {
        if (!digest[0])
            return refuse(c, MLO_ERR_INVALID_ARGUMENT, "the digest is empty (NULL computes one)");
        if (!mlo__validate_utf8(digest, strlen(digest)))
            return refuse(c, MLO_ERR_INVALID_UTF8, "the digest is not valid UTF-8");
        if (utf8_chars(digest) > DS_MAX_DIGEST_CHARS)
            return refuse(c, MLO_ERR_INVALID_ARGUMENT,
                          "the digest is over 36 characters (MLflow's limit)");
    }

    /* source type, location, and the path to read (local sources) */
    char type[DS_MAX_TYPE_CHARS + 1];
    char *loc = NULL, *fs_path = NULL;
    int url_key = 0;
    size_t sl = uri_scheme(source);
    if (sl == 4 && !strncasecmp(source, "file", 4)) {
        snprintf(type, sizeof type, "local");
        loc = strdup(source);
        fs_path = digest ? NULL : file_uri_path(source);
        if (!digest && !fs_path && loc) {
            free(loc);
            return refuse(c, MLO_ERR_INVALID_ARGUMENT,
                          "no digest given and \"%.300s\" is not a local path", source);
        }
    } else if (sl) {
        if (sl > DS_MAX_TYPE_CHARS)
            return refuse(c, MLO_ERR_INVALID_ARGUMENT,
                          "the scheme of \"%.300s\" is over 36 characters (MLflow "
                          "keeps at most 36 for a source type)",
                          source);
        for (size_t i = 0; i < sl; i++)
            type[i] = (char)(source[i] >= 'A' && source[i] <= 'Z' ? source[i] + 32 : source[i]);
        type[sl] = 0;
        if (!strcmp(type, "http") || !strcmp(type, "https")) {
            snprintf(type, sizeof type, "http");
            url_key = 1;
        }
        if (!digest)
            return refuse(c, MLO_ERR_INVALID_ARGUMENT,
                          "no digest given and \"%.300s\" is not a local file or "
                          "directory to compute one from",
                          source);
        loc = strdup(source);
    } else {
        snprintf(type, sizeof type, "local");
        loc = absolute_path(source);
        if (loc && !mlo__validate_utf8(loc, strlen(loc))) {
            free(loc);
            return refuse(c, MLO_ERR_INVALID_UTF8,
                          "the absolute path of \"%.300s\" is not valid UTF-8", source);
        }
        if (!digest && loc && !(fs_path = strdup(source))) {
            free(loc);
            loc = NULL;
        }
    }
    if (!loc) {
        free(fs_path);
        mlo__env_report(mlo__client_env(c), MLO_ERR_NO_MEMORY, 1, "log_dataset: out of memory");
        return MLO_ERR_NO_MEMORY;
    }

    char hex[DS_DIGEST_HEX + 1];
    if (!digest) {
        char err[1024];
        st = mlo__dataset_digest(fs_path, hex, err, sizeof err);
        free(fs_path);
        if (st != MLO_OK) {
            free(loc);
            if (st == MLO_ERR_NO_MEMORY) {
                mlo__env_report(mlo__client_env(c), st, 1, "log_dataset: %s", err);
                return st;
            }
            return refuse(c, st, "cannot compute the digest: %s", err);
        }
        digest = hex;
    }

    /* payload: source JSON, digest, source type, context (mlo_queue.h) */
    mlo_buf p;
    mlo__buf_init(&p);
    int oom = mlo__buf_appends(&p, url_key ? "{\"url\": " : "{\"uri\": ") != 0 ||
              json_string(&p, loc) != 0 || mlo__buf_appendc(&p, '}') != 0;
    free(loc);
    if (!oom && p.len > DS_MAX_SOURCE_CHARS) { /* the JSON is ASCII: bytes = characters */
        mlo__buf_free(&p);
        return refuse(c, MLO_ERR_INVALID_ARGUMENT,
                      "the source is over MLflow's 65535 characters once written "
                      "as JSON");
    }
    oom = oom || mlo__buf_append(&p, "", 1) != 0 ||
          mlo__buf_append(&p, digest, strlen(digest) + 1) ||
          mlo__buf_append(&p, type, strlen(type) + 1) != 0 ||
          mlo__buf_appends(&p, "") != 0; /* context: none (MLflow's log_input default) */
    if (oom) {
        mlo__buf_free(&p);
        mlo__env_report(mlo__client_env(c), MLO_ERR_NO_MEMORY, 1, "log_dataset: out of memory");
        return MLO_ERR_NO_MEMORY;
    }
    /* a queue takes records up to half its capacity (a power of two) */
    size_t qcap = 1;
    while (qcap < mlo__client_env(c)->cfg->queue_bytes && qcap < ((size_t)1 << 40))
        qcap <<= 1;
    if (sizeof(mlo_rec) + nlen + p.len > qcap / 2) {
        size_t need = sizeof(mlo_rec) + nlen + p.len;
        mlo__buf_free(&p);
        return refuse(c, MLO_ERR_INVALID_ARGUMENT,
                      "the dataset's record (%zu bytes) is larger than half the event queue "
                      "(%zu bytes; mlo_options_set_queue_bytes)",
                      need, qcap);
    }
    st = mlo__client_run_push(r, MLO_REC_DATASET, name, nlen, p.data, p.len,
                              mlo__env_now_ms(mlo__client_env(c)), 0, 0.0);
    mlo__buf_free(&p);
    return st;
}
