/*
 * mlo_manifest.c - artifact manifests (mlo_manifest.h).
 *
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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


void mlo__manifest_free(mlo_manifest *m) {
    free(m->path);
    free(m->uri);
    free(m->error);
    memset(m, 0, sizeof *m);
}

/* Writes m as <dir>/<id><suffix> via a tmp file + fsync + rename.  0 or -1
 * (errno set). */
int mlo__manifest_write(const char *dir, const char *id, const char *suffix,
                          const mlo_manifest *m, int do_fsync) {
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
        }
    }
    if (version != 1 || !m->lid[0] || !m->path || m->size < 0 || strlen(m->sha) != 64 ||
        mlo__validate_artifact_path(m->path, 0) != MLO_OK) {
        mlo__manifest_free(m);
        return -1;
    }
    return 0;
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

