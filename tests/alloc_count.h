/* alloc_count.h - heap allocation counters of tests/alloc_count.c (a
 * link-time malloc/calloc/realloc/free interposer for benchmarks). */
#ifndef MLO_ALLOC_COUNT_H
#define MLO_ALLOC_COUNT_H

#include <stdint.h>

typedef struct alloc_counts {
    uint64_t allocs; /* malloc, calloc, realloc, memalign, ... calls */
    uint64_t frees;  /* free of a non-NULL pointer */
    uint64_t bytes;  /* bytes requested */
} alloc_counts;

/* This thread only, between begin and end. */
void alloc_count_thread_begin(void);
alloc_counts alloc_count_thread_end(void);
/* Every thread of the process, between begin and end. */
void alloc_count_global_begin(void);
alloc_counts alloc_count_global_end(void);
/* 0 when the interposer really sees this program's malloc/free, else -1. */
int alloc_count_selftest(void);

#endif
