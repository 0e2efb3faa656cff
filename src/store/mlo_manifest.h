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

/* The sha256 of a manifest whose digest the log call is still computing
 * (64 '-'): written over in place by mlo__manifest_set_sha. */
#define MLO_MANIFEST_SHA_PENDING "----------------------------------------------------------------"

/* What identifies a staged blob: its inode as fstat saw it right after the
 * blob got its name, and the boot it was staged in.  While all of it (and the
 * size) is unchanged, the blob holds what was hashed at staging: the page
 * cache of one boot is coherent, and any write or replacement changes the
 * inode, mtime or ctime.  After a reboot (a power loss may have left a blob
 * whose data never reached the disk) or for an old manifest without it, the
 * uploader hashes the blob before sending it. */
typedef struct mlo_blob_ident {
    int set; /* 0: unknown */
    uint64_t dev, ino;
    int64_t mtime_ns, ctime_ns;
    char boot[37]; /* /proc/sys/kernel/random/boot_id */
} mlo_blob_ident;

typedef struct mlo_manifest {
    char lid[33];
    char *path;
    int64_t size;
    char sha[65];
    int64_t created;
    char *uri;           /* NULL: local store */
    char *error;         /* NULL unless failed */
    mlo_blob_ident blob; /* optional ("blob" line) */
} mlo_manifest;

/* <dir>/<id><suffix>, malloc'd (NULL: out of memory). */
char *mlo__manifest_path(const char *dir, const char *id, const char *suffix);
/* Writes m as <dir>/<id><suffix> via a tmp file (+ fsync) + rename.  0 or
 * -1 (errno set). */
int mlo__manifest_write(const char *dir, const char *id, const char *suffix, const mlo_manifest *m,
                        int do_fsync);
/* Parses a manifest's text (modified).  0, or -1 when a field is missing or
 * wrong (m then holds nothing to free). */
int mlo__manifest_parse(char *text, mlo_manifest *m);
/* Reads (at most 16 KiB) and parses the manifest open as fd.  0 / -1. */
int mlo__manifest_read_fd(int fd, mlo_manifest *m);
void mlo__manifest_free(mlo_manifest *m);
/* Whether sha is a digest (64 lower-case hex), not MLO_MANIFEST_SHA_PENDING. */
int mlo__manifest_sha_known(const char *sha);
/* Writes the digest hex over the pending one of <dir>/<id>.art, in place
 * (the inode, and any flock on it, stay), then fsync's it if do_fsync; if
 * the manifest became <id>.failed meanwhile, into that one (rewritten); if
 * neither is there (uploaded), nothing.  Callers serialise it with whoever
 * renames .art to .failed (mlo__uploader_set_sha).  0 / -1 (errno). */
int mlo__manifest_set_sha(const char *dir, const char *id, const char hex[65], int do_fsync);
/* The identity of the file open as fd, now (fstat + this boot's id).  0, or
 * -1 (id->set = 0: no boot id, or fstat failed). */
int mlo__manifest_ident_fd(int fd, mlo_blob_ident *id);
/* Whether a and b are both known and the same blob, unchanged. */
int mlo__manifest_ident_same(const mlo_blob_ident *a, const mlo_blob_ident *b);
/* For tests/fuzz_manifest.c: mlo__manifest_parse with the fields handed
 * out (path, uri, error malloc'd, the caller frees). */
int mlo__manifest_parse_fields(char *text, char lid[33], char sha[65], int64_t *size,
                               int64_t *created, char **path, char **uri, char **error);

#endif /* MLO_MANIFEST_H */
