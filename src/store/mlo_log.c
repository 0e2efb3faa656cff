/*
 * mlo_log.c - the run log's segment files (interface: mlo_log.h).
 *
 * Owns: the byte format of a segment, its writer (one thread at a time, one
 * ZSTD_CCtx for the writer's life) and its readers (one thread each, one
 * ZSTD_DCtx for the reader's life).  The only file that includes the
 * generated mlo_log.pb-c.h (proto/mlo_log.proto).
 *
 * ==== The segment format, version 1 ====
 *
 * A segment is one file: a header, then blocks laid end to end, nothing else
 * (no padding, no trailer, no index).  All integers are little-endian.  Every
 * checksum is CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, initial
 * value and final xor 0xFFFFFFFF; crc32c("123456789") = 0xE3069283).
 *
 * Segment header (SEG_HDR_LEN = 32 bytes, at offset 0):
 *     off  size  field
 *       0     6  magic       "MLOSEG" (4D 4C 4F 53 45 47)
 *       6     2  version     1
 *       8     4  header_len  32 (offset of the first block)
 *      12     4  flags       0.  Bits 0-15 are "incompatible": a reader
 *                            rejects a segment with any it does not know.
 *                            Bits 16-31 are "compatible": readers ignore them.
 *      16     8  created     creation time, ms since the epoch (int64)
 *      24     4  reserved    0 (ignored by readers)
 *      28     4  header_crc  CRC-32C of bytes 0..27
 *
 * Block (BLK_HDR_LEN = 24 bytes of header, then the payload):
 *     off  size  field
 *       0     4  magic       "MLOB" (4D 4C 4F 42)
 *       4     4  comp_len    payload bytes that follow the header
 *       8     4  raw_len     bytes of the payload once decompressed
 *      12     4  count       events in the block (>= 1)
 *      16     4  data_crc    CRC-32C of the comp_len payload bytes
 *      20     4  header_crc  CRC-32C of bytes 0..19 of this header
 *      24  comp_len  payload: exactly one zstd frame (with its content size
 *                  set, without zstd's own checksum) that decompresses to
 *                  raw_len bytes: `count` frames laid end to end, each a
 *                  base-128 varint length (at most 5 bytes, < 2^32) followed
 *                  by that many bytes of a protobuf-encoded mlo.LogEvent.
 * Limits: 1 <= raw_len <= MLO_LOG_MAX_RAW (64 MiB), comp_len <= MAX_COMP,
 * 1 <= count <= raw_len, each frame's length <= 16 MiB.  A block offset (mlo_log_off) is the byte
 * offset of a block header; "block end" is offset + 24 + comp_len.
 *
 * LogEvent fields absent on the wire read as 0 / NULL: the writer leaves out
 * value_num, timestamp and step when they are 0 (bitwise, so -0.0 is kept)
 * and strings that are NULL.  type and run_id are always present.
 *
 * Versioning: `version` changes only when a version-1 reader could not read
 * the new files correctly; readers reject any version but their own with a
 * message that names it.  Compatible growth needs no new version: new
 * optional LogEvent fields (protobuf skips unknown ones), compatible flag
 * bits, a longer header (header_len > 32; v1 readers skip the extra bytes,
 * up to 4096).  Event types a reader does not know are returned to its
 * caller, which skips them.  So far: type 6 (DATASET, a dataset input:
 * key = name, value = source JSON, and the fields digest 11, source_type 12,
 * context 13 that only it uses) was added this way; segments from before it
 * read unchanged (those fields absent: NULL), and a reader from before it
 * skips DATASET events.  Likewise types 17 (METRIC_SUMMARY, with the fields
 * count 14, min 15, max 16) and 18 (SUMMARY_SOURCE), which only the run
 * summaries of <store>/summaries hold (same file format; mlo_retention.c).
 *
 * Writing: the header with one write() at create (the file is made O_EXCL,
 * mode 0600); then each commit compresses the pending events into one block
 * and writes the whole block with one pwrite() at the end of the file, so a
 * crash can tear only the last block.  A failed write or fdatasync is cut off
 * again (ftruncate to the old size) and the events stay pending for a retry.
 * The first commit with do_fsync also fsyncs the directory, once, so that the
 * file's name survives a power loss too.
 *
 * Reading, and what readers do with damage (every byte is untrusted):
 *  - The header must be complete, match magic, CRC, version, flags and
 *    32 <= header_len <= 4096, or open fails with a message.
 *  - Fewer than 24 bytes after a block offset, or a header that checks out
 *    but whose payload extends past the end of the file: "no complete block
 *    yet" (0): the writer may be appending.  A torn tail left by a crash
 *    looks the same to a reader; mlo__logw_reopen cuts it off.
 *  - Wrong block magic, header CRC mismatch, lengths out of the limits above
 *    (checked before anything is allocated, and comp_len against the file
 *    size), payload CRC mismatch (checked before decompressing), a payload
 *    that is not exactly one zstd frame of content size raw_len, a
 *    decompressed size other than raw_len, frame lengths that do not tile
 *    raw_len in exactly `count` frames, a frame protobuf-c cannot unpack
 *    (its allocations bounded per event; the common events are read without
 *    it, by decode_fast, which takes only frames it reads exactly as
 *    protobuf-c would), or without type / run_id: damage
 *    (-1, with the offset and the reason).  Intact blocks before it were
 *    returned; mlo__logr_skip_damage scans forward byte by byte for the next
 *    "MLOB" whose header CRC, lengths and payload CRC all check out (or
 *    whose header checks out and whose payload is still being written).
 *  - mlo__logw_reopen walks the blocks by header and payload CRC.  A torn or
 *    damaged last part with no intact block after it is cut off (ftruncate);
 *    damage followed by an intact block is not a torn tail: reopen refuses
 *    (the caller starts a new segment), and nothing is destroyed.
 *
 * Builds with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION (the libFuzzer
 * target) accept CRC mismatches, so that the fuzzer reaches zstd and protobuf.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* fdatasync, pread, pwrite */
#endif
#include "mlo_log.h"

#include "mlo_buf.h"
#include "mlo_clock.h"
#include "mlo_fs.h"
#include "mlo_log.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#define SEG_MAGIC "MLOSEG"
#define SEG_VERSION 1u
#define SEG_HDR_LEN 32u
#define SEG_HDR_MAX 4096u
#define SEG_FLAGS_INCOMPAT_MASK 0xFFFFu
#define SEG_FLAGS_KNOWN 0u

#define BLK_MAGIC "MLOB"
#define BLK_HDR_LEN 24u
#define MLO_LOG_MAX_RAW (64u << 20)
/* ZSTD_COMPRESSBOUND(64 MiB) is 64 MiB + 256 KiB + a little; a round bound. */
#define MAX_COMP ((64u << 20) + (1u << 20))
#define ZSTD_LEVEL 1

/* One event's frame is at most MAX_EVENT bytes, and unpacking it may allocate
 * at most ARENA_BASE + ARENA_PER_BYTE * its length (real events need about
 * their length plus ~100 bytes of structs; a hostile frame of empty repeated
 * tags would need ~28 bytes per byte and fails to parse instead). */
#define MAX_EVENT (16u << 20)
#define ARENA_PER_BYTE 16u
#define ARENA_BASE (64u * 1024u)

_Static_assert(MAX_COMP >= ZSTD_COMPRESSBOUND(MLO_LOG_MAX_RAW), "MAX_COMP bound");

/* ------------------------------------------------------------------ */
/* little-endian helpers                                               */

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put64(uint8_t *p, uint64_t v) {
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}
static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint16_t get16(const uint8_t *p) {
    return (uint16_t)(p[0] | p[1] << 8);
}

/* ------------------------------------------------------------------ */
/* CRC-32C: SSE4.2 instruction when the CPU has it, else slicing-by-8.  */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static bool crc_hw;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xFF];
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc32c_sw(uint32_t crc, const uint8_t *p, size_t n) {
    while (n >= 8) {
        uint32_t lo = crc ^ get32(p), hi = get32(p + 4);
        crc = crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^
              crc_table[5][(lo >> 16) & 0xFF] ^ crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xFF] ^
              crc_table[2][(hi >> 8) & 0xFF] ^ crc_table[1][(hi >> 16) & 0xFF] ^
              crc_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xFF];
    return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p,
                                                            size_t n) {
    uint64_t c = crc;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

/* Exposed to the tests through the check value (test_log.c declares it). */
uint32_t mlo__log_crc32c(const void *data, size_t n);
uint32_t mlo__log_crc32c(const void *data, size_t n) {
    pthread_once(&crc_once, crc_init);
    uint32_t crc = 0xFFFFFFFFu;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (crc_hw)
        return ~crc32c_hw(crc, data, n);
#endif
    return ~crc32c_sw(crc, data, n);
}

static bool crc_ok(uint32_t want, const void *data, size_t n) {
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    (void)want;
    (void)data;
    (void)n;
    return true;
#else
    return mlo__log_crc32c(data, n) == want;
#endif
}

/* ------------------------------------------------------------------ */
/* headers                                                             */

static void seg_header(uint8_t h[SEG_HDR_LEN], int64_t created_ms) {
    memset(h, 0, SEG_HDR_LEN);
    memcpy(h, SEG_MAGIC, 6);
    put16(h + 6, SEG_VERSION);
    put32(h + 8, SEG_HDR_LEN);
    put32(h + 12, 0);
    put64(h + 16, (uint64_t)created_ms);
    put32(h + 24, 0);
    put32(h + 28, mlo__log_crc32c(h, 28));
}

/* Checks a segment header; on success *hdr_len gets the first block offset.
 * n = bytes available at h. */
static int seg_header_check(const uint8_t *h, size_t n, uint64_t *hdr_len, char *err,
                            size_t errlen) {
    if (n < SEG_HDR_LEN) {
        snprintf(err, errlen, "not a segment: %zu bytes, shorter than the %u-byte header", n,
                 SEG_HDR_LEN);
        return -1;
    }
    if (memcmp(h, SEG_MAGIC, 6) != 0) {
        snprintf(err, errlen, "not a segment: no MLOSEG magic");
        return -1;
    }
    if (!crc_ok(get32(h + 28), h, 28)) {
        snprintf(err, errlen, "segment header checksum mismatch");
        return -1;
    }
    uint16_t ver = get16(h + 6);
    if (ver != SEG_VERSION) {
        snprintf(err, errlen, "segment format version %u, this mlo reads version %u", ver,
                 SEG_VERSION);
        return -1;
    }
    uint32_t hl = get32(h + 8), flags = get32(h + 12);
    if (hl < SEG_HDR_LEN || hl > SEG_HDR_MAX) {
        snprintf(err, errlen, "segment header length %u out of range", hl);
        return -1;
    }
    if (flags & SEG_FLAGS_INCOMPAT_MASK & ~SEG_FLAGS_KNOWN) {
        snprintf(err, errlen, "segment uses unknown format flags 0x%x", flags);
        return -1;
    }
    *hdr_len = hl;
    return 0;
}

typedef struct blk_hdr {
    uint32_t comp_len, raw_len, count, data_crc;
} blk_hdr;

/* 0 = a plausible block header (magic, CRC, limits), -1 otherwise with why. */
static int blk_header_check(const uint8_t *h, blk_hdr *b, const char **why) {
    if (memcmp(h, BLK_MAGIC, 4) != 0) {
        *why = "bad block magic";
        return -1;
    }
    if (!crc_ok(get32(h + 20), h, 20)) {
        *why = "block header checksum mismatch";
        return -1;
    }
    b->comp_len = get32(h + 4);
    b->raw_len = get32(h + 8);
    b->count = get32(h + 12);
    b->data_crc = get32(h + 16);
    if (b->raw_len == 0 || b->raw_len > MLO_LOG_MAX_RAW || b->comp_len == 0 ||
        b->comp_len > MAX_COMP || b->count == 0 || b->count > b->raw_len) {
        *why = "block lengths out of range";
        return -1;
    }
    return 0;
}

/* Reads a base-128 varint of at most 5 bytes (< 2^32) from p[0..n).
 * Returns the bytes used, 0 if malformed or truncated. */
static size_t varint_get(const uint8_t *p, size_t n, uint32_t *v) {
    uint64_t x = 0;
    for (size_t i = 0; i < n && i < 5; i++) {
        x |= (uint64_t)(p[i] & 0x7F) << (7 * i);
        if (!(p[i] & 0x80)) {
            if (x > UINT32_MAX)
                return 0;
            *v = (uint32_t)x;
            return i + 1;
        }
    }
    return 0;
}

static size_t varint_put(uint8_t *p, uint32_t v) {
    size_t i = 0;
    while (v >= 0x80) {
        p[i++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[i++] = (uint8_t)v;
    return i;
}

static int grow(uint8_t **buf, size_t *cap, size_t need) {
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    uint8_t *p = realloc(*buf, n);
    if (!p) {
        errno = ENOMEM;
        return -1;
    }
    *buf = p;
    *cap = n;
    return 0;
}

/* ------------------------------------------------------------------ */
/* writer                                                              */

struct mlo_logw {
    int fd;
    char *path;
    uint64_t size; /* bytes in the file that belong to it (header + committed blocks) */
    ZSTD_CCtx *cctx;
    mlo_buf raw; /* pending frames */
    size_t pending;
    uint8_t *out; /* block header + compressed payload */
    size_t out_cap;
    Mlo__LogTag *tagv;
    Mlo__LogTag **tagp;
    size_t tag_cap;
    bool dir_synced;
};

static mlo_logw *logw_new(int fd, const char *path, char *err, size_t errlen) {
    mlo_logw *w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(path)) || !(w->cctx = ZSTD_createCCtx())) {
        snprintf(err, errlen, "out of memory");
        if (w) {
            free(w->path);
            free(w);
        }
        return NULL;
    }
    w->fd = fd;
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, ZSTD_LEVEL);
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 0);
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_contentSizeFlag, 1);
    mlo__buf_init(&w->raw);
    return w;
}

mlo_logw *mlo__logw_create(const char *path, char *err, size_t errlen) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    /* 0600 exactly, whatever the umask: runs may hold private data. */
    uint8_t h[SEG_HDR_LEN];
    seg_header(h, mlo__clock_now_ms(NULL));
    if (fchmod(fd, 0600) != 0 || mlo__fs_pwrite_full(fd, h, sizeof h, 0) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return NULL;
    }
    mlo_logw *w = logw_new(fd, path, err, errlen);
    if (!w) {
        close(fd);
        unlink(path);
        return NULL;
    }
    w->size = SEG_HDR_LEN;
    return w;
}

/* Checks the block at off of a file of `size` bytes by header and payload CRC
 * (no decompression).  1 = intact, *end = its end; 0 = incomplete (the file
 * ends inside it); -1 = damaged; -2 = read error. */
static int probe_block(int fd, uint64_t off, uint64_t size, uint8_t **buf, size_t *cap,
                       uint64_t *end) {
    uint8_t h[BLK_HDR_LEN];
    if (size < off || size - off < BLK_HDR_LEN)
        return 0;
    ssize_t k = mlo__fs_pread_full(fd, h, BLK_HDR_LEN, off);
    if (k < 0)
        return -2;
    if ((size_t)k < BLK_HDR_LEN)
        return 0;
    blk_hdr b;
    const char *why;
    if (blk_header_check(h, &b, &why) != 0)
        return -1;
    if (b.comp_len > size - off - BLK_HDR_LEN)
        return 0;
    if (grow(buf, cap, b.comp_len) != 0)
        return -2;
    k = mlo__fs_pread_full(fd, *buf, b.comp_len, off + BLK_HDR_LEN);
    if (k < 0)
        return -2;
    if ((size_t)k < b.comp_len)
        return 0;
    if (!crc_ok(b.data_crc, *buf, b.comp_len))
        return -1;
    *end = off + BLK_HDR_LEN + b.comp_len;
    return 1;
}

/* Is there an intact block starting anywhere in (from, size)? */
static int intact_block_after(int fd, uint64_t from, uint64_t size, uint8_t **buf, size_t *cap) {
    uint8_t win[65536 + BLK_HDR_LEN];
    for (uint64_t pos = from + 1; pos + BLK_HDR_LEN <= size;) {
        size_t want = sizeof win;
        if (size - pos < want)
            want = (size_t)(size - pos);
        ssize_t k = mlo__fs_pread_full(fd, win, want, pos);
        if (k < (ssize_t)BLK_HDR_LEN)
            return 0;
        for (size_t i = 0; i + BLK_HDR_LEN <= (size_t)k; i++) {
            if (win[i] != 'M' || memcmp(win + i, BLK_MAGIC, 4) != 0)
                continue;
            uint64_t end;
            if (probe_block(fd, pos + i, size, buf, cap, &end) == 1)
                return 1;
        }
        pos += (uint64_t)k - (BLK_HDR_LEN - 1);
    }
    return 0;
}

mlo_logw *mlo__logw_reopen(const char *path, char *err, size_t errlen) {
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    uint8_t h[SEG_HDR_LEN];
    uint64_t hdr_len = 0;
    ssize_t k;
    if (fstat(fd, &st) != 0 || (k = mlo__fs_pread_full(fd, h, sizeof h, 0)) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    char why[200];
    if (seg_header_check(h, (size_t)k, &hdr_len, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", path, why);
        close(fd);
        return NULL;
    }
    uint64_t size = (uint64_t)st.st_size, off = hdr_len;
    if (size < hdr_len) {
        snprintf(err, errlen, "%s: shorter than its header", path);
        close(fd);
        return NULL;
    }
    uint8_t *buf = NULL;
    size_t cap = 0;
    int rc;
    uint64_t end;
    while ((rc = probe_block(fd, off, size, &buf, &cap, &end)) == 1)
        off = end;
    if (rc == -2 || (rc == -1 && intact_block_after(fd, off, size, &buf, &cap))) {
        if (rc == -2)
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
        else
            snprintf(err, errlen,
                     "%s: damaged block at offset %llu with intact blocks after it; "
                     "not appending (start a new segment)",
                     path, (unsigned long long)off);
        free(buf);
        close(fd);
        return NULL;
    }
    free(buf);
    if (off < size && ftruncate(fd, (off_t)off) != 0) {
        snprintf(err, errlen, "%s: cutting the torn tail at %llu: %s", path,
                 (unsigned long long)off, strerror(errno));
        close(fd);
        return NULL;
    }
    mlo_logw *w = logw_new(fd, path, err, errlen);
    if (!w) {
        close(fd);
        return NULL;
    }
    w->size = off;
    return w;
}

int mlo__logw_add(mlo_logw *w, const mlo_log_event *ev) {
    if (!w || !ev || !ev->run_id || (ev->ntags && (!ev->tag_keys || !ev->tag_values))) {
        errno = EINVAL;
        return -1;
    }
    Mlo__LogEvent m = MLO__LOG_EVENT__INIT;
    m.has_type = 1;
    m.type = ev->type;
    /* protobuf-c's message structs hold char *; pack only reads them. */
    m.run_id = (char *)ev->run_id;
    m.key = (char *)ev->key;
    m.value = (char *)ev->value;
    uint64_t bits;
    memcpy(&bits, &ev->value_num, sizeof bits);
    if (bits) {
        m.has_value_num = 1;
        m.value_num = ev->value_num;
    }
    if (ev->timestamp) {
        m.has_timestamp = 1;
        m.timestamp = ev->timestamp;
    }
    if (ev->step) {
        m.has_step = 1;
        m.step = ev->step;
    }
    m.experiment_id = (char *)ev->experiment_id;
    m.parent_run_id = (char *)ev->parent_run_id;
    m.digest = (char *)ev->digest;
    m.source_type = (char *)ev->source_type;
    m.context = (char *)ev->context;
    if (ev->count) {
        m.has_count = 1;
        m.count = ev->count;
    }
    memcpy(&bits, &ev->min, sizeof bits);
    if (bits) {
        m.has_min = 1;
        m.min = ev->min;
    }
    memcpy(&bits, &ev->max, sizeof bits);
    if (bits) {
        m.has_max = 1;
        m.max = ev->max;
    }
    if (ev->ntags) {
        if (ev->ntags > w->tag_cap) {
            size_t n = ev->ntags < 16 ? 16 : ev->ntags;
            Mlo__LogTag *tv = realloc(w->tagv, n * sizeof *tv);
            if (!tv)
                return -1;
            w->tagv = tv;
            Mlo__LogTag **tp = realloc(w->tagp, n * sizeof *tp);
            if (!tp)
                return -1;
            w->tagp = tp;
            w->tag_cap = n;
        }
        for (size_t i = 0; i < ev->ntags; i++) {
            if (!ev->tag_keys[i] || !ev->tag_values[i]) {
                errno = EINVAL;
                return -1;
            }
            Mlo__LogTag t = MLO__LOG_TAG__INIT;
            t.key = (char *)ev->tag_keys[i];
            t.value = (char *)ev->tag_values[i];
            w->tagv[i] = t;
            w->tagp[i] = &w->tagv[i];
        }
        m.n_tags = ev->ntags;
        m.tags = w->tagp;
    }
    size_t sz = protobuf_c_message_get_packed_size(&m.base);
    if (sz > MAX_EVENT || w->raw.len + 5 + sz > MLO_LOG_MAX_RAW) {
        errno = EFBIG; /* commit first, or the event can never fit a block */
        return -1;
    }
    if (mlo__buf_reserve(&w->raw, 5 + sz) != 0)
        return -1;
    uint8_t *p = (uint8_t *)w->raw.data + w->raw.len;
    size_t vl = varint_put(p, (uint32_t)sz);
    size_t packed = protobuf_c_message_pack(&m.base, p + vl);
    if (packed != sz) {
        errno = EIO;
        return -1;
    }
    w->raw.len += vl + sz;
    w->pending++;
    return 0;
}

static void sync_dir(const char *path) {
    char *d = strdup(path);
    if (!d)
        return;
    char *slash = strrchr(d, '/');
    const char *dir = ".";
    if (slash) {
        *(slash == d ? slash + 1 : slash) = '\0';
        dir = d;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd); /* some file systems refuse; the data itself is synced */
        close(fd);
    }
    free(d);
}

int mlo__logw_commit(mlo_logw *w, int do_fsync, mlo_log_off *end) {
    if (!w) {
        errno = EINVAL;
        return -1;
    }
    if (w->pending == 0) {
        if (end)
            *end = w->size;
        return 0;
    }
    size_t bound = ZSTD_compressBound(w->raw.len);
    if (grow(&w->out, &w->out_cap, BLK_HDR_LEN + bound) != 0)
        return -1;
    size_t c = ZSTD_compress2(w->cctx, w->out + BLK_HDR_LEN, bound, w->raw.data, w->raw.len);
    if (ZSTD_isError(c)) {
        ZSTD_CCtx_reset(w->cctx, ZSTD_reset_session_only);
        errno = EIO;
        return -1;
    }
    uint8_t *h = w->out;
    memcpy(h, BLK_MAGIC, 4);
    put32(h + 4, (uint32_t)c);
    put32(h + 8, (uint32_t)w->raw.len);
    put32(h + 12, (uint32_t)w->pending);
    put32(h + 16, mlo__log_crc32c(w->out + BLK_HDR_LEN, c));
    put32(h + 20, mlo__log_crc32c(h, 20));
    if (mlo__fs_pwrite_full(w->fd, w->out, BLK_HDR_LEN + c, w->size) != 0 ||
        (do_fsync && fdatasync(w->fd) != 0)) {
        int e = errno;
        /* Cut what may have reached the file; the block stays pending. */
        (void)ftruncate(w->fd, (off_t)w->size);
        errno = e;
        return -1;
    }
    w->size += BLK_HDR_LEN + c;
    if (do_fsync && !w->dir_synced) {
        sync_dir(w->path);
        w->dir_synced = true;
    }
    mlo__buf_reset(&w->raw);
    w->pending = 0;
    if (end)
        *end = w->size;
    return 0;
}

mlo_log_off mlo__logw_size(const mlo_logw *w) {
    return w ? w->size : 0;
}

size_t mlo__logw_pending(const mlo_logw *w) {
    return w ? w->pending : 0;
}

void mlo__logw_close(mlo_logw *w) {
    if (!w)
        return;
    close(w->fd);
    ZSTD_freeCCtx(w->cctx);
    mlo__buf_free(&w->raw);
    free(w->out);
    free(w->tagv);
    free(w->tagp);
    free(w->path);
    free(w);
}

/* ------------------------------------------------------------------ */
/* reader                                                              */

/* A bump allocator for protobuf-c's unpack, reset before every event, with a
 * hard limit so that a hostile frame cannot make the reader allocate much
 * more than its own size. */
typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t cap, used;
    max_align_t data[];
} arena_chunk;

typedef struct arena {
    arena_chunk *head; /* newest first; the last one is kept across resets */
    size_t total;      /* bytes handed out since the reset */
    size_t limit;
    bool oom; /* an allocation failed for want of memory since the reset */
} arena;

static void *arena_alloc(void *ad, size_t n) {
    arena *a = ad;
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    if (n > a->limit || a->total > a->limit - n)
        return NULL;
    arena_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        arena_chunk *nc = malloc(sizeof *nc + cap);
        if (!nc) {
            a->oom = true;
            return NULL;
        }
        nc->next = c;
        nc->cap = cap;
        nc->used = 0;
        a->head = c = nc;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    a->total += n;
    return p;
}

static void arena_free(void *ad, void *p) {
    (void)ad;
    (void)p; /* freed all at once by arena_reset */
}

static void arena_reset(arena *a, size_t limit) {
    while (a->head && a->head->next) {
        arena_chunk *n = a->head->next;
        free(a->head);
        a->head = n;
    }
    if (a->head)
        a->head->used = 0;
    a->total = 0;
    a->limit = limit;
    a->oom = false;
}

static void arena_destroy(arena *a) {
    arena_reset(a, 0);
    free(a->head);
    a->head = NULL;
}

struct mlo_logr {
    int fd;             /* -1: reading mem */
    const uint8_t *mem; /* mlo__log_parse_buffer */
    size_t mem_len;
    uint64_t hdr_len;
    uint64_t off; /* next block to load (when !loaded) */
    bool loaded;  /* a block is decompressed in raw */
    uint64_t blk_off, blk_end;
    uint32_t left; /* events of the loaded block not returned yet */
    size_t raw_len, raw_pos;
    uint64_t last_end; /* block end of the last event returned */
    int last_at_end;
    ZSTD_DCtx *dctx;
    uint8_t *comp;
    size_t comp_cap;
    uint8_t *raw;
    size_t raw_cap;
    arena ar;
    ProtobufCAllocator alloc;
    const char **tagk, **tagv;
    size_t tag_cap;
    char *str; /* the fast path's strings, NUL-terminated (decode_fast) */
    size_t str_cap;
};

static int rd_size(mlo_logr *r, uint64_t *size) {
    if (r->fd < 0) {
        *size = r->mem_len;
        return 0;
    }
    struct stat st;
    if (fstat(r->fd, &st) != 0)
        return -1;
    *size = (uint64_t)st.st_size;
    return 0;
}

/* Pointer to n bytes at off: into mem, or read into *buf.  NULL with
 * *short_read = 1 when the file ends first, NULL with 0 on error. */
static const uint8_t *rd_get(mlo_logr *r, uint64_t off, size_t n, uint8_t **buf, size_t *cap,
                             int *short_read) {
    *short_read = 0;
    if (r->fd < 0) {
        if (off > r->mem_len || n > r->mem_len - off) {
            *short_read = 1;
            return NULL;
        }
        return r->mem + off;
    }
    if (grow(buf, cap, n ? n : 1) != 0)
        return NULL;
    ssize_t k = mlo__fs_pread_full(r->fd, *buf, n, off);
    if (k < 0)
        return NULL;
    if ((size_t)k < n) {
        *short_read = 1;
        return NULL;
    }
    return *buf;
}

static mlo_logr *logr_new(void) {
    mlo_logr *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->fd = -1;
    if (!(r->dctx = ZSTD_createDCtx())) {
        free(r);
        return NULL;
    }
    r->alloc.alloc = arena_alloc;
    r->alloc.free = arena_free;
    r->alloc.allocator_data = &r->ar;
    return r;
}

static int logr_start(mlo_logr *r, char *err, size_t errlen) {
    uint8_t *hb = NULL;
    size_t cap = 0;
    int shrt;
    uint64_t size;
    if (rd_size(r, &size) != 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }
    size_t n = size < SEG_HDR_LEN ? (size_t)size : SEG_HDR_LEN;
    const uint8_t *h = rd_get(r, 0, n, &hb, &cap, &shrt);
    int rc = -1;
    if (!h && !shrt)
        snprintf(err, errlen, "%s", strerror(errno));
    else if (!h)
        snprintf(err, errlen, "not a segment: the file shrank while opening it");
    else
        rc = seg_header_check(h, n, &r->hdr_len, err, errlen);
    free(hb);
    if (rc == 0)
        r->off = r->last_end = r->hdr_len;
    return rc;
}

mlo_logr *mlo__logr_open(const char *path, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    mlo_logr *r = logr_new();
    if (!r) {
        snprintf(err, errlen, "out of memory");
        close(fd);
        return NULL;
    }
    r->fd = fd;
    char why[200];
    if (logr_start(r, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", path, why);
        mlo__logr_close(r);
        return NULL;
    }
    return r;
}

int mlo__logr_seek(mlo_logr *r, mlo_log_off off) {
    if (!r)
        return -1;
    if (off == 0)
        off = r->hdr_len;
    if (off < r->hdr_len)
        return -1;
    r->off = r->last_end = off;
    r->loaded = false;
    r->left = 0;
    r->last_at_end = 0;
    return 0;
}

#define DAMAGE(...)                                                                                \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return -1;                                                                                 \
    } while (0)
/* out of memory: nothing moves, the same call may be made again */
#define NOMEM(o)                                                                                   \
    do {                                                                                           \
        snprintf(err, errlen, "offset %llu: out of memory", (o));                                  \
        return -2;                                                                                 \
    } while (0)

/* Loads the block at r->off: 1 loaded, 0 not complete yet, -1 damage, -2
 * out of memory. */
static int load_block(mlo_logr *r, char *err, size_t errlen) {
    uint64_t size, off = r->off;
    unsigned long long o = (unsigned long long)off;
    if (rd_size(r, &size) != 0)
        DAMAGE("offset %llu: %s", o, strerror(errno));
    if (size < off || size - off < BLK_HDR_LEN)
        return 0;
    int shrt;
    uint8_t hb[BLK_HDR_LEN];
    const uint8_t *h;
    if (r->fd < 0) {
        h = r->mem + off;
    } else {
        ssize_t k = mlo__fs_pread_full(r->fd, hb, BLK_HDR_LEN, off);
        if (k < 0)
            DAMAGE("offset %llu: %s", o, strerror(errno));
        if ((size_t)k < BLK_HDR_LEN)
            return 0;
        h = hb;
    }
    blk_hdr b;
    const char *why;
    if (blk_header_check(h, &b, &why) != 0)
        DAMAGE("offset %llu: %s", o, why);
    if (b.comp_len > size - off - BLK_HDR_LEN)
        return 0; /* the writer may still be writing it */
    const uint8_t *comp = rd_get(r, off + BLK_HDR_LEN, b.comp_len, &r->comp, &r->comp_cap, &shrt);
    if (!comp) {
        if (shrt)
            return 0;
        if (errno == ENOMEM)
            NOMEM(o);
        DAMAGE("offset %llu: %s", o, strerror(errno));
    }
    if (!crc_ok(b.data_crc, comp, b.comp_len))
        DAMAGE("offset %llu: block checksum mismatch", o);
    if (ZSTD_findFrameCompressedSize(comp, b.comp_len) != b.comp_len)
        DAMAGE("offset %llu: payload is not one zstd frame", o);
    if (ZSTD_getFrameContentSize(comp, b.comp_len) != b.raw_len)
        DAMAGE("offset %llu: zstd frame size does not match the block header", o);
    if (grow(&r->raw, &r->raw_cap, b.raw_len) != 0)
        NOMEM(o);
    size_t d = ZSTD_decompressDCtx(r->dctx, r->raw, b.raw_len, comp, b.comp_len);
    if (ZSTD_isError(d) || d != b.raw_len)
        DAMAGE("offset %llu: decompression failed: %s", o,
               ZSTD_isError(d) ? ZSTD_getErrorName(d) : "wrong size");
    /* The frames must tile raw_len in exactly count frames. */
    size_t pos = 0;
    uint32_t n = 0;
    while (pos < b.raw_len) {
        uint32_t len;
        size_t vl = varint_get(r->raw + pos, b.raw_len - pos, &len);
        if (vl == 0 || len > b.raw_len - pos - vl || len > MAX_EVENT || n == b.count)
            DAMAGE("offset %llu: bad frame %u in block", o, n);
        pos += vl + len;
        n++;
    }
    if (n != b.count)
        DAMAGE("offset %llu: block holds %u events, header says %u", o, n, b.count);
    r->loaded = true;
    r->blk_off = off;
    r->blk_end = off + BLK_HDR_LEN + b.comp_len;
    r->left = b.count;
    r->raw_len = b.raw_len;
    r->raw_pos = 0;
    return 1;
}

/* ---- the fast path: the common events without protobuf-c ----
 * Most events are METRIC (and PARAM, TAG, END_RUN): a handful of scalar and
 * string fields.  decode_fast reads those directly from the frame: no
 * allocation (strings are copied, NUL-terminated, into r->str, which grows
 * to the frame's length once), no descriptor walk.  It takes only what it
 * can read exactly as protobuf-c would: fields 1-15 with one-byte keys and
 * their declared wire types, varints protobuf-c accepts unchanged, lengths
 * within the frame, type and run_id present, no tags (field 10).  For
 * anything else (tags, a field it does not know, an unusual encoding,
 * damage) it declines (0), and the frame goes through protobuf-c's unpack,
 * which decides; so both paths return the same event for every frame
 * (mlo__log_decode_compare checks this for the tests).  Duplicated fields:
 * the last one wins, as in protobuf-c. */

/* A varint of at most max bytes: the bytes used, 0 if longer or cut short. */
static size_t fast_varint(const uint8_t *p, size_t n, size_t max, uint64_t *v) {
    uint64_t x = 0;
    for (size_t i = 0; i < n && i < max; i++) {
        x |= (uint64_t)(p[i] & 0x7F) << (7 * i);
        if (!(p[i] & 0x80)) {
            *v = x;
            return i + 1;
        }
    }
    return 0;
}

static double fast_double(const uint8_t *p) {
    uint64_t b = (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

/* 1 = *ev filled from the frame, 0 = declined (*ev and r->str may hold
 * parts of it: the caller fills *ev with protobuf-c's reading instead). */
static int decode_fast(mlo_logr *r, const uint8_t *p, size_t n, mlo_log_event *ev) {
    if (n + 1 > r->str_cap) {
        size_t cap = n + 1 < 256 ? 256 : n + 1;
        char *s = realloc(r->str, cap);
        if (!s)
            return 0; /* protobuf-c's path says whether memory is short */
        r->str = s;
        r->str_cap = cap;
    }
    static const mlo_log_event zero;
    mlo_log_event *e = ev;
    *e = zero;
    bool has_type = false;
    uint64_t type = 0;
    char *out = r->str;
    size_t i = 0;
    while (i < n) {
        uint8_t key = p[i++];
        unsigned field = key >> 3, wt = key & 7;
        if (key & 0x80 || field == 0 || field == 10)
            return 0;
        uint64_t v;
        size_t k;
        switch (field) {
        case 1:  /* type: uint32 */
        case 6:  /* timestamp: int64 */
        case 7:  /* step: int64 */
        case 14: /* count: uint64 */
            if (wt != 0 || !(k = fast_varint(p + i, n - i, field == 1 ? 5 : 10, &v)))
                return 0;
            if (field == 1 && v > UINT32_MAX)
                return 0;
            if (k == 10 && p[i + 9] > 1)
                return 0; /* bits past 64: protobuf-c's business */
            i += k;
            if (field == 1) {
                has_type = true;
                type = v;
            } else if (field == 6) {
                e->timestamp = (int64_t)v;
            } else if (field == 7) {
                e->step = (int64_t)v;
            } else {
                e->count = v;
            }
            break;
        case 5: /* value_num, min: double */
        case 15:
            if (wt != 1 || n - i < 8)
                return 0;
            if (field == 5)
                e->value_num = fast_double(p + i);
            else
                e->min = fast_double(p + i);
            i += 8;
            break;
        case 2:
        case 3:
        case 4:
        case 8:
        case 9:
        case 11:
        case 12:
        case 13: {
            if (wt != 2 || !(k = fast_varint(p + i, n - i, 5, &v)) || v > n - i - k)
                return 0;
            i += k;
            /* k + 1 bytes of key and length went by: out cannot pass n + 1 */
            char *s = out;
            memcpy(s, p + i, (size_t)v);
            s[v] = '\0';
            out += v + 1;
            i += (size_t)v;
            const char **dst = field == 2    ? &e->run_id
                               : field == 3  ? &e->key
                               : field == 4  ? &e->value
                               : field == 8  ? &e->experiment_id
                               : field == 9  ? &e->parent_run_id
                               : field == 11 ? &e->digest
                               : field == 12 ? &e->source_type
                                             : &e->context;
            *dst = s;
            break;
        }
        default:
            return 0;
        }
    }
    if (!has_type || !e->run_id)
        return 0;
    e->type = type > UINT16_MAX ? UINT16_MAX : (uint16_t)type;
    return 1;
}

/* The frame through protobuf-c (every event decode_fast declines).
 * 1 = *ev filled, -1 = damage (*why says what), -2 = out of memory. */
static int decode_pb(mlo_logr *r, const uint8_t *fr, size_t len, mlo_log_event *ev,
                     const char **why) {
    arena_reset(&r->ar, ARENA_BASE + len * ARENA_PER_BYTE);
    Mlo__LogEvent *m = mlo__log_event__unpack(&r->alloc, len, fr);
    if (!m && r->ar.oom)
        return -2;
    if (!m) {
        *why = "an event in the block does not parse";
        return -1;
    }
    if (!m->has_type || !m->run_id) {
        *why = "an event without type or run id";
        return -1;
    }
    if (m->n_tags > r->tag_cap) {
        const char **k = realloc(r->tagk, m->n_tags * sizeof *k);
        if (k)
            r->tagk = k;
        const char **v = k ? realloc(r->tagv, m->n_tags * sizeof *v) : NULL;
        if (v)
            r->tagv = v;
        if (!k || !v)
            return -2;
        r->tag_cap = m->n_tags;
    }
    for (size_t i = 0; i < m->n_tags; i++) {
        r->tagk[i] = m->tags[i]->key;
        r->tagv[i] = m->tags[i]->value ? m->tags[i]->value : "";
        if (!r->tagk[i]) {
            *why = "a tag without a key";
            return -1;
        }
    }
    memset(ev, 0, sizeof *ev);
    ev->type = m->type > UINT16_MAX ? UINT16_MAX : (uint16_t)m->type;
    ev->run_id = m->run_id;
    ev->key = m->key;
    ev->value = m->value;
    ev->value_num = m->has_value_num ? m->value_num : 0.0;
    ev->timestamp = m->has_timestamp ? m->timestamp : 0;
    ev->step = m->has_step ? m->step : 0;
    ev->experiment_id = m->experiment_id;
    ev->parent_run_id = m->parent_run_id;
    ev->ntags = m->n_tags;
    ev->tag_keys = m->n_tags ? r->tagk : NULL;
    ev->tag_values = m->n_tags ? r->tagv : NULL;
    ev->digest = m->digest;
    ev->source_type = m->source_type;
    ev->context = m->context;
    ev->count = m->has_count ? m->count : 0;
    ev->min = m->has_min ? m->min : 0.0;
    ev->max = m->has_max ? m->max : 0.0;
    return 1;
}

static bool str_same(const char *a, const char *b) {
    return a == b || (a && b && strcmp(a, b) == 0);
}

int mlo__log_decode_compare(const uint8_t *frame, size_t len) {
    mlo_logr *r = logr_new();
    if (!r)
        return -2;
    mlo_log_event f, s;
    const char *why;
    int rc = 0;
    if (decode_fast(r, frame, len, &f) == 1) {
        int pb = decode_pb(r, frame, len, &s, &why);
        rc = pb == -2 ? -2
             : pb == 1 && f.type == s.type && str_same(f.run_id, s.run_id) &&
                     str_same(f.key, s.key) && str_same(f.value, s.value) &&
                     !memcmp(&f.value_num, &s.value_num, sizeof f.value_num) &&
                     f.timestamp == s.timestamp && f.step == s.step &&
                     str_same(f.experiment_id, s.experiment_id) &&
                     str_same(f.parent_run_id, s.parent_run_id) && s.ntags == 0 &&
                     str_same(f.digest, s.digest) && str_same(f.source_type, s.source_type) &&
                     str_same(f.context, s.context) && f.count == s.count &&
                     !memcmp(&f.min, &s.min, sizeof f.min) && !memcmp(&f.max, &s.max, sizeof f.max)
                 ? 1
                 : -1;
    }
    mlo__logr_close(r);
    return rc;
}

int mlo__logr_next(mlo_logr *r, mlo_log_event *ev, char *err, size_t errlen) {
    char dummy[8];
    if (!err) {
        err = dummy;
        errlen = sizeof dummy;
    }
    if (!r || !ev) {
        snprintf(err, errlen, "invalid argument");
        return -1;
    }
    if (!r->loaded) {
        int rc = load_block(r, err, errlen);
        if (rc != 1)
            return rc;
    }
    unsigned long long o = (unsigned long long)r->blk_off;
    uint32_t len = 0;
    size_t vl = varint_get(r->raw + r->raw_pos, r->raw_len - r->raw_pos, &len);
    if (vl == 0) { /* cannot happen: load_block checked the framing */
        r->loaded = false;
        DAMAGE("offset %llu: bad frame", o);
    }
    const uint8_t *fr = r->raw + r->raw_pos + vl;
    if (decode_fast(r, fr, len, ev) != 1) {
        const char *why = NULL;
        int rc = decode_pb(r, fr, len, ev, &why);
        if (rc == -2)
            NOMEM(o); /* the block stays loaded: the same event next time */
        if (rc != 1) {
            r->loaded = false;
            DAMAGE("offset %llu: %s", o, why);
        }
    }
    r->raw_pos += vl + len;
    r->last_end = r->blk_end;
    r->last_at_end = --r->left == 0;
    if (r->last_at_end) {
        r->loaded = false;
        r->off = r->blk_end;
    }
    return 1;
}

mlo_log_off mlo__logr_block_end(const mlo_logr *r) {
    return r ? r->last_end : 0;
}

int mlo__logr_at_block_end(const mlo_logr *r) {
    return r ? r->last_at_end : 0;
}

/* Is there a block at pos that a reader should resume at: header plausible
 * and payload CRC good, or header plausible and payload not all written yet. */
static int resumable_at(mlo_logr *r, uint64_t pos, uint64_t size, const uint8_t *h) {
    blk_hdr b;
    const char *why;
    if (blk_header_check(h, &b, &why) != 0)
        return 0;
    if (b.comp_len > size - pos - BLK_HDR_LEN)
        return 1;
    int shrt;
    const uint8_t *c = rd_get(r, pos + BLK_HDR_LEN, b.comp_len, &r->comp, &r->comp_cap, &shrt);
    if (!c)
        return shrt;
    return crc_ok(b.data_crc, c, b.comp_len);
}

int mlo__logr_skip_damage(mlo_logr *r) {
    if (!r)
        return 0;
    uint64_t start = (r->loaded ? r->blk_off : r->off) + 1, size;
    if (rd_size(r, &size) != 0)
        return 0;
    uint8_t win[65536 + BLK_HDR_LEN];
    for (uint64_t pos = start; pos < size && size - pos >= BLK_HDR_LEN;) {
        size_t k;
        const uint8_t *w;
        if (r->fd < 0) {
            w = r->mem + pos;
            k = (size_t)(size - pos);
        } else {
            size_t want = sizeof win;
            if (size - pos < want)
                want = (size_t)(size - pos);
            ssize_t got = mlo__fs_pread_full(r->fd, win, want, pos);
            if (got < (ssize_t)BLK_HDR_LEN)
                return 0;
            w = win;
            k = (size_t)got;
        }
        for (size_t i = 0; i + BLK_HDR_LEN <= k; i++) {
            const uint8_t *m = memchr(w + i, 'M', k - BLK_HDR_LEN + 1 - i);
            if (!m)
                break;
            i = (size_t)(m - w);
            if (memcmp(m, BLK_MAGIC, 4) != 0)
                continue;
            uint8_t h[BLK_HDR_LEN];
            memcpy(h, m, BLK_HDR_LEN); /* resumable_at may reuse r->comp, not win */
            if (resumable_at(r, pos + i, size, h)) {
                r->off = pos + i;
                r->loaded = false;
                r->left = 0;
                return 1;
            }
        }
        if (r->fd < 0)
            break;
        pos += k - (BLK_HDR_LEN - 1);
    }
    return 0;
}

void mlo__logr_close(mlo_logr *r) {
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    ZSTD_freeDCtx(r->dctx);
    free(r->comp);
    free(r->raw);
    free(r->tagk);
    free(r->tagv);
    free(r->str);
    arena_destroy(&r->ar);
    free(r);
}

size_t mlo__log_parse_buffer(const uint8_t *data, size_t len,
                             void (*fn)(void *ctx, const mlo_log_event *ev), void *ctx) {
    mlo_logr *r = logr_new();
    if (!r)
        return 0;
    r->mem = data ? data : (const uint8_t *)"";
    r->mem_len = data ? len : 0;
    char err[200];
    size_t n = 0;
    if (logr_start(r, err, sizeof err) == 0) {
        mlo_log_event ev;
        while (mlo__logr_next(r, &ev, err, sizeof err) == 1) {
            if (fn)
                fn(ctx, &ev);
            n++;
        }
    }
    mlo__logr_close(r);
    return n;
}
