/*
 * mlo_manifest.c - artifact manifests (mlo_manifest.h).
 *
 * Text lines "key value", values percent-encoded where they could hold a
 * space, a control character or '%' (path, uri, error):
 *   mlo-artifact 1
 *   run <local id of the run>
 *   path <artifact path relative to the run's artifact root>
 *   size <bytes>
 *   sha256 <64 hex>, or 64 '-' while the log call still computes it
 *                                   (it then writes the digest over them in
 *                                   place, mlo__manifest_set_sha)
 *   created <ms since the epoch>
 *   uri <tracking URI it is bound for, "-" for a local store>
 *   error <why it failed>           (.failed manifests only)
 *   blob <boot id> <dev> <inode> <mtime ns> <ctime ns>
 *                                   (optional: what identifies the staged
 *                                   blob, mlo_manifest.h; absent, or not of
 *                                   this form: unknown, the uploader hashes
 *                                   the blob before sending it)
 * States are file names: <id>.art pending, <id>.failed refused for good
 * (the blob is kept; `mlo sync` tries again), no manifest = uploaded (the
 * blob goes right after the manifest; an orphan blob of a dead process is
 * removed by whoever claims that process).
 *
 */
#define _GNU_SOURCE
#include "mlo_manifest.h"

#include "mlo.h"
#include "mlo_buf.h"
#include "mlo_fs.h"
#include "mlo_validate.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *mlo__manifest_path(const char *dir, const char *id, const char *suffix) {
    char *p = NULL;
    if (asprintf(&p, "%s/%s%s", dir, id, suffix) < 0)
        return NULL;
    return p;
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

/* ---- the identity of a staged blob ------------------------------------------------- */

static char boot_id[37];
static pthread_once_t boot_once = PTHREAD_ONCE_INIT;

/* A boot id as the kernel writes it: 36 characters of hex digits and '-'. */
static int boot_id_ok(const char *s) {
    size_t n = strspn(s, "0123456789abcdef-");
    return n == 36 && s[n] == '\0';
}

static void boot_read(void) {
    char b[64] = "";
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t r = mlo__fs_pread_full(fd, b, sizeof b - 1, 0);
    close(fd);
    if (r <= 0)
        return;
    b[r] = '\0';
    b[strcspn(b, "\n")] = '\0';
    if (boot_id_ok(b))
        memcpy(boot_id, b, sizeof boot_id);
}

int mlo__manifest_ident_fd(int fd, mlo_blob_ident *id) {
    memset(id, 0, sizeof *id);
    pthread_once(&boot_once, boot_read);
    struct stat sb;
    if (!boot_id[0] || fstat(fd, &sb) != 0)
        return -1;
    id->dev = (uint64_t)sb.st_dev;
    id->ino = (uint64_t)sb.st_ino;
    id->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
    id->ctime_ns = (int64_t)sb.st_ctim.tv_sec * 1000000000 + sb.st_ctim.tv_nsec;
    memcpy(id->boot, boot_id, sizeof id->boot);
    id->set = 1;
    return 0;
}

int mlo__manifest_ident_same(const mlo_blob_ident *a, const mlo_blob_ident *b) {
    return a->set && b->set && a->dev == b->dev && a->ino == b->ino && a->mtime_ns == b->mtime_ns &&
           a->ctime_ns == b->ctime_ns && !strcmp(a->boot, b->boot);
}

/* "blob" line's value: set only when all of it is well-formed. */
static void ident_parse(const char *v, mlo_blob_ident *id) {
    memset(id, 0, sizeof *id);
    char boot[64];
    uint64_t dev, ino;
    int64_t mt, ct;
    int used = 0;
    if (sscanf(v, "%63s %" SCNu64 " %" SCNu64 " %" SCNd64 " %" SCNd64 "%n", boot, &dev, &ino, &mt,
               &ct, &used) != 5 ||
        v[used] != '\0' || !boot_id_ok(boot))
        return;
    memcpy(id->boot, boot, sizeof id->boot);
    id->dev = dev;
    id->ino = ino;
    id->mtime_ns = mt;
    id->ctime_ns = ct;
    id->set = 1;
}

void mlo__manifest_free(mlo_manifest *m) {
    free(m->path);
    free(m->uri);
    free(m->error);
    memset(m, 0, sizeof *m);
}

int mlo__manifest_sha_known(const char *sha) {
    return strspn(sha, "0123456789abcdef") == 64 && sha[64] == '\0';
}

/* Writes m as <dir>/<id><suffix> via a tmp file + fsync + rename.  0 or -1
 * (errno set). */
int mlo__manifest_write(const char *dir, const char *id, const char *suffix, const mlo_manifest *m,
                        int do_fsync) {
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
    if (!bad && m->blob.set)
        bad = mlo__buf_printf(&b, "blob %s %" PRIu64 " %" PRIu64 " %" PRId64 " %" PRId64 "\n",
                              m->blob.boot, m->blob.dev, m->blob.ino, m->blob.mtime_ns,
                              m->blob.ctime_ns);
    char *tmp = NULL, *dst = mlo__manifest_path(dir, id, suffix);
    if (bad || !dst || asprintf(&tmp, "%s.tmp", dst) < 0) {
        mlo__buf_free(&b);
        free(dst);
        errno = ENOMEM;
        return -1;
    }
    int rc = -1;
    int fd = open(tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (fd >= 0) {
        rc = mlo__fs_write_all(fd, b.data, b.len);
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
int mlo__manifest_parse(char *text, mlo_manifest *m) {
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
        } else if (!strcmp(line, "blob")) {
            ident_parse(v, &m->blob);
        }
    }
    if (version != 1 || !m->lid[0] || !m->path || m->size < 0 || strlen(m->sha) != 64 ||
        mlo__validate_artifact_path(m->path, 0) != MLO_OK) {
        mlo__manifest_free(m);
        return -1;
    }
    return 0;
}

int mlo__manifest_set_sha(const char *dir, const char *id, const char hex[65], int do_fsync) {
    char *p = mlo__manifest_path(dir, id, ".art");
    if (!p) {
        errno = ENOMEM;
        return -1;
    }
    int fd = open(p, O_RDWR | O_CLOEXEC);
    free(p);
    if (fd >= 0) {
        char buf[16384];
        ssize_t n = mlo__fs_pread_full(fd, buf, sizeof buf - 1, 0);
        int rc = -1;
        if (n >= 0) {
            buf[n] = '\0';
            /* the first such line: "run" holds no newline, "path" is encoded */
            char *at = strstr(buf, "\nsha256 ");
            if (at && strlen(at + 8) >= 65 && at[8 + 64] == '\n') {
                at += 8;
                rc = mlo__fs_pwrite_full(fd, hex, 64, (uint64_t)(at - buf));
                if (rc == 0 && do_fsync)
                    rc = fsync(fd);
            } else {
                errno = EINVAL;
            }
        }
        int e = errno;
        close(fd);
        errno = e;
        return rc;
    }
    if (errno != ENOENT)
        return -1;
    /* refused for good meanwhile: the .failed manifest gets it */
    p = mlo__manifest_path(dir, id, ".failed");
    if (!p) {
        errno = ENOMEM;
        return -1;
    }
    fd = open(p, O_RDONLY | O_CLOEXEC);
    free(p);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1; /* sent: nothing to keep */
    mlo_manifest m;
    int rc = mlo__manifest_read_fd(fd, &m);
    close(fd);
    if (rc != 0) {
        errno = EINVAL;
        return -1;
    }
    if (!mlo__manifest_sha_known(m.sha)) {
        memcpy(m.sha, hex, 65);
        rc = mlo__manifest_write(dir, id, ".failed", &m, do_fsync);
    }
    mlo__manifest_free(&m);
    return rc;
}

int mlo__manifest_parse_fields(char *text, char lid[33], char sha[65], int64_t *size,
                               int64_t *created, char **path, char **uri, char **error) {
    mlo_manifest m;
    if (mlo__manifest_parse(text, &m) != 0)
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

int mlo__manifest_read_fd(int fd, mlo_manifest *m) {
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
    return mlo__manifest_parse(buf, m);
}
