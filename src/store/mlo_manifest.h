/*
 * mlo_manifest.h - the manifest of a staged artifact (<store>/artifacts/
 * <id>.art, pending; <id>.failed, refused for good): what the log call
 * writes next to the staged content and what the uploader and `mlo sync`
 * read back.  Format at the top of mlo_manifest.c; read from disk, so
 * untrusted: tests/fuzz_manifest.c fuzzes the parser.
 */
#ifndef MLO_MANIFEST_H
#define MLO_MANIFEST_H

#include <stdint.h>

/* <store>/artifacts: staged blobs and their manifests */
#define MLO_ARTIFACTS_SUB "artifacts"

typedef struct mlo_manifest {
    char lid[33];
    char *path;
    int64_t size;
    char sha[65];
    int64_t created;
    char *uri;   /* NULL: local store */
    char *error; /* NULL unless failed */
} mlo_manifest;

/* <dir>/<id><suffix>, malloc'd (NULL: out of memory). */
char *mlo__manifest_path(const char *dir, const char *id, const char *suffix);
/* Writes m as <dir>/<id><suffix> via a tmp file (+ fsync) + rename.  0 or
 * -1 (errno set). */
int mlo__manifest_write(const char *dir, const char *id, const char *suffix,
                        const mlo_manifest *m, int do_fsync);
/* Parses a manifest's text (modified).  0, or -1 when a field is missing or
 * wrong (m then holds nothing to free). */
int mlo__manifest_parse(char *text, mlo_manifest *m);
/* Reads (at most 16 KiB) and parses the manifest open as fd.  0 / -1. */
int mlo__manifest_read_fd(int fd, mlo_manifest *m);
void mlo__manifest_free(mlo_manifest *m);
/* For tests/fuzz_manifest.c: mlo__manifest_parse with the fields handed
 * out (path, uri, error malloc'd, the caller frees). */
int mlo__manifest_parse_fields(char *text, char lid[33], char sha[65], int64_t *size,
                               int64_t *created, char **path, char **uri, char **error);

#endif /* MLO_MANIFEST_H */
