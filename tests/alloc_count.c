/*
 * alloc_count.c - a heap allocation counting interposer for benchmarks.
 *
 * Linked into a benchmark executable (link time, not LD_PRELOAD), its
 * malloc, calloc, realloc, reallocarray, free, memalign, aligned_alloc,
 * posix_memalign, valloc and pvalloc replace glibc's for the whole process:
 * the executable's definitions win the dynamic symbol lookup, so calls from
 * libmlo, libcurl and glibc itself (strdup, fopen, ...) come here too.  Each
 * counts, then forwards to glibc's allocator through its exported __libc_*
 * entry points (no dlsym, so nothing to bootstrap).
 *
 * Two kinds of counters:
 *  - per thread (thread-local, initial-exec TLS: no allocation on first use):
 *    counted only between alloc_count_thread_begin() and _end() on that
 *    thread.  This is how a benchmark asks "does *this call* allocate?"
 *    without seeing the background threads.
 *  - process-wide (relaxed atomics): counted only while
 *    alloc_count_global_begin() .. _end() is open, every thread included.
 *
 * Built in the plain build only (tests/meson.build: no benchmark exists in a
 * sanitizer build, whose runtime owns malloc).
 *
 * alloc_count_selftest() checks that the interposer is really in the path
 * (a benchmark reporting "0 allocations" through a dead interposer would
 * lie).  Not thread-safe to nest begin/end on one thread.
 */
#define _GNU_SOURCE
#include "alloc_count.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

static __thread alloc_counts tls_counts __attribute__((tls_model("initial-exec")));
static __thread int tls_on __attribute__((tls_model("initial-exec")));

static _Atomic int global_on;
static _Atomic uint64_t g_allocs, g_frees, g_bytes;

static inline void count_alloc(size_t bytes) {
    if (tls_on) {
        tls_counts.allocs++;
        tls_counts.bytes += bytes;
    }
    /* relaxed: counters publish nothing */
    if (atomic_load_explicit(&global_on, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&g_allocs, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&g_bytes, bytes, memory_order_relaxed);
    }
}

static inline void count_free(void *p) {
    if (!p)
        return;
    if (tls_on)
        tls_counts.frees++;
    if (atomic_load_explicit(&global_on, memory_order_relaxed))
        atomic_fetch_add_explicit(&g_frees, 1, memory_order_relaxed);
}

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

void *malloc(size_t n) {
    count_alloc(n);
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t m) {
    count_alloc(n * m);
    return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n) {
    /* a realloc is one allocation event (it may move the block) */
    count_alloc(n);
    return __libc_realloc(p, n);
}

void *reallocarray(void *p, size_t n, size_t m) {
    if (m && n > SIZE_MAX / m) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, n * m);
}

void free(void *p) {
    count_free(p);
    __libc_free(p);
}

void *memalign(size_t align, size_t n) {
    count_alloc(n);
    return __libc_memalign(align, n);
}

void *aligned_alloc(size_t align, size_t n) {
    return memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n) {
    if (align < sizeof(void *) || (align & (align - 1)))
        return EINVAL;
    void *p = memalign(align, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

void *valloc(size_t n) {
    return memalign((size_t)sysconf(_SC_PAGESIZE), n);
}

void *pvalloc(size_t n) {
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    return memalign(pg, (n + pg - 1) & ~(pg - 1));
}

void alloc_count_thread_begin(void) {
    tls_counts = (alloc_counts){0, 0, 0};
    tls_on = 1;
}

alloc_counts alloc_count_thread_end(void) {
    tls_on = 0;
    return tls_counts;
}

void alloc_count_global_begin(void) {
    atomic_store(&g_allocs, 0);
    atomic_store(&g_frees, 0);
    atomic_store(&g_bytes, 0);
    atomic_store(&global_on, 1);
}

alloc_counts alloc_count_global_end(void) {
    atomic_store(&global_on, 0);
    return (alloc_counts){atomic_load(&g_allocs), atomic_load(&g_frees), atomic_load(&g_bytes)};
}

int alloc_count_selftest(void) {
    /* through a volatile pointer, so the compiler cannot elide the pair */
    void *(*volatile m)(size_t) = malloc;
    void (*volatile f)(void *) = free;
    alloc_count_thread_begin();
    void *p = m(24);
    f(p);
    alloc_counts c = alloc_count_thread_end();
    return c.allocs == 1 && c.frees == 1 ? 0 : -1;
}
