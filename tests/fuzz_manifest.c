/*
 * fuzz_manifest.c - libFuzzer target: artifact manifests
 * (<store>/artifacts/<id>.art and .failed; format at the top of
 * src/mlo_artifact.c) as the uploader and `mlo sync` read them back after a
 * crash, a full disk, a bit flip or tampering.  A manifest names the file
 * the uploader PUTs to the server: whatever its bytes, the path it yields
 * must stay inside the run's artifact root.
 *
 * Input: the bytes of a manifest file.  As manifest_read_fd does, at most
 * 16383 bytes are read and NUL-terminated (a NUL inside ends the text), then
 * mlo__artifact_manifest_parse (the uploader's own parser) runs on them.
 * Checks (abort = a crash for libFuzzer):
 *  - accepted: lid of 1..32 bytes, sha256 of exactly 64, size >= 0, path a
 *    valid relative artifact path (mlo__artifact_path_check: no "..", not
 *    absolute, no backslash, no empty segment, UTF-8, at most 4096 bytes);
 *    every string NUL-terminated (each is read through: ASan sees an
 *    over-read);
 *  - accepted: written again by the writer's rules (percent-encoding of
 *    bytes <= 0x20, 0x7f and '%' in path, uri and error; uri "" or absent as
 *    "-") and parsed again, it gives the same fields: the writer and the
 *    reader agree, so a .failed manifest rewritten by the uploader keeps what
 *    the .art said;
 *  - refused: nothing handed out (LeakSanitizer sees a leak).
 * mlo_fuzz_accepted = 1 when accepted, else 0: the corpus's ok-/bad- names
 * (tests/fuzz_replay.c) are decisions.
 *
 * The optional "blob" line (what identifies the staged blob) is all or
 * nothing: set with a boot id of 36 hex digits and dashes, else unset;
 * written again, it reads back the same.
 * Seeds: tests/corpus/manifest, written by tests/corpus/gen_seeds.py (the
 * first ok- ones are what the library wrote for tests/cli_mkstore.c --api;
 * the bad- ones hold traversal, encoded traversal, absolute, backslash,
 * invalid UTF-8 and over-long paths, missing fields, a NUL); dictionary
 * tests/fuzz_manifest.dict.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlo.h"
#include "mlo_manifest.h"
#include "mlo_validate.h"

/* defined by fuzz_replay.c; libFuzzer builds get this weak one */
__attribute__((weak)) int mlo_fuzz_accepted;

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_manifest: check failed: %s (line %d)\n", #c, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_TEXT 16383 /* manifest_read_fd's buffer, less the NUL */

typedef struct fields {
    char lid[33], sha[65];
    int64_t size, created;
    char *path, *uri, *error;
} fields;

static int parse(char *text, fields *f) {
    memset(f, 0x5a, sizeof *f); /* nothing may be left unset on success */
    int rc = mlo__manifest_parse_fields(text, f->lid, f->sha, &f->size, &f->created, &f->path,
                                        &f->uri, &f->error);
    CHECK(rc == 0 || rc == -1);
    return rc;
}

static void fields_free(fields *f) {
    free(f->path);
    free(f->uri);
    free(f->error);
}

/* the writer's encoding (manifest_write / enc_append in src/mlo_artifact.c) */
static char *enc(char *o, const char *s) {
    static const char hx[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= 0x20 || *p == 0x7f || *p == '%') {
            *o++ = '%';
            *o++ = hx[*p >> 4];
            *o++ = hx[*p & 15];
        } else {
            *o++ = (char)*p;
        }
    }
    return o;
}

static const char *uri_of(const fields *f) {
    return f->uri && *f->uri ? f->uri : NULL; /* "" is written as "-": no URI */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t n = size < MAX_TEXT ? size : MAX_TEXT;
    char *text = malloc(n + 1);
    CHECK(text != NULL);
    memcpy(text, data, n);
    text[n] = 0;
    char *text2 = strdup(text);
    CHECK(text2 != NULL);
    fields f;
    int rc = parse(text, &f);
    free(text);
    mlo_fuzz_accepted = rc == 0;
    /* the staged blob's identity ("blob" line, optional): all of it or
     * nothing, the boot id as the kernel writes it */
    mlo_manifest m;
    int rcm = mlo__manifest_parse(text2, &m);
    free(text2);
    CHECK(rcm == rc);
    if (rcm == 0) {
        if (m.blob.set)
            CHECK(strlen(m.blob.boot) == 36 && strspn(m.blob.boot, "0123456789abcdef-") == 36);
        else
            CHECK(m.blob.boot[0] == 0 && m.blob.ino == 0 && m.blob.dev == 0);
    }
    if (rc != 0)
        return 0;

    /* what the uploader relies on */
    size_t ll = strnlen(f.lid, sizeof f.lid);
    CHECK(ll >= 1 && ll <= 32);
    CHECK(strnlen(f.sha, sizeof f.sha) == 64);
    CHECK(f.size >= 0);
    CHECK(f.path != NULL);
    size_t pl = strlen(f.path);
    CHECK(pl >= 1 && pl <= 4096);
    CHECK(mlo__validate_artifact_path(f.path, 0) == MLO_OK);
    CHECK(f.path[0] != '/' && strcmp(f.path, "..") != 0 && strncmp(f.path, "../", 3) != 0 &&
          !strstr(f.path, "/../") && !strchr(f.path, '\\'));
    size_t ul = f.uri ? strlen(f.uri) : 0, el = f.error ? strlen(f.error) : 0;

    /* written again and read back: the same fields */
    char *out = malloc(300 + ll + 64 + 3 * (pl + ul + el));
    CHECK(out != NULL);
    char *o = out;
    o += sprintf(o, "mlo-artifact 1\nrun %s\npath ", f.lid);
    o = enc(o, f.path);
    o += sprintf(o, "\nsize %" PRId64 "\nsha256 %s\ncreated %" PRId64 "\nuri ", f.size, f.sha,
                 f.created);
    if (uri_of(&f))
        o = enc(o, f.uri);
    else
        *o++ = '-';
    *o++ = '\n';
    if (f.error) {
        o += sprintf(o, "error ");
        o = enc(o, f.error);
        *o++ = '\n';
    }
    if (m.blob.set)
        o += sprintf(o, "blob %s %" PRIu64 " %" PRIu64 " %" PRId64 " %" PRId64 "\n", m.blob.boot,
                     m.blob.dev, m.blob.ino, m.blob.mtime_ns, m.blob.ctime_ns);
    *o = 0;
    char *out2 = strdup(out);
    CHECK(out2 != NULL);
    fields g;
    int rc2 = parse(out, &g);
    if (rc2 != 0)
        fprintf(stderr, "fuzz_manifest: rewritten manifest refused:\n%s\n", out);
    CHECK(rc2 == 0);
    free(out);
    mlo_manifest m2;
    CHECK(mlo__manifest_parse(out2, &m2) == 0);
    free(out2);
    CHECK(m.blob.set == m2.blob.set);
    CHECK(!m.blob.set || mlo__manifest_ident_same(&m.blob, &m2.blob));
    mlo__manifest_free(&m);
    mlo__manifest_free(&m2);
    /* a lid or sha holding a newline or NUL cannot survive a rewrite, but the
     * parser takes each from one line, so neither can hold one */
    CHECK(!strcmp(f.lid, g.lid));
    CHECK(!strcmp(f.sha, g.sha));
    CHECK(f.size == g.size && f.created == g.created);
    CHECK(!strcmp(f.path, g.path));
    CHECK((uri_of(&f) == NULL) == (uri_of(&g) == NULL));
    CHECK(!uri_of(&f) || !strcmp(f.uri, g.uri));
    CHECK((f.error == NULL) == (g.error == NULL));
    CHECK(!f.error || !strcmp(f.error, g.error));
    fields_free(&f);
    fields_free(&g);
    return 0;
}
