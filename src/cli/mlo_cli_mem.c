/*
 * mlo_cli_mem.c - the `mlo` tool's allocator.
 *
 * Every allocation of the tool goes through these and is linked into one
 * list, which main frees after the command (xfree_all): commands return from
 * anywhere without leaking (LeakSanitizer runs the tests).  Out of memory
 * ends the tool with exit status 2.  Threads: one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* MADV_POPULATE_WRITE */
#endif
#include "mlo_cli.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

typedef union blk {
    struct {
        union blk *prev, *next;
    } l;
    max_align_t align;
} blk;

static blk g_blocks = {{&g_blocks, &g_blocks}};

void cli_oom(void) {
    fprintf(stderr, "mlo: out of memory\n");
    exit(EXIT_ERROR);
}

static void blk_link(blk *b) {
    b->l.prev = &g_blocks;
    b->l.next = g_blocks.l.next;
    g_blocks.l.next->l.prev = b;
    g_blocks.l.next = b;
}

static void blk_unlink(blk *b) {
    b->l.prev->l.next = b->l.next;
    b->l.next->l.prev = b->l.prev;
}

void *xmalloc(size_t n) {
    if (n > SIZE_MAX - sizeof(blk))
        cli_oom();
    blk *b = malloc(sizeof *b + n);
    if (!b)
        cli_oom();
    blk_link(b);
    return b + 1;
}

void *xcalloc(size_t n, size_t size) {
    if (size && n > (SIZE_MAX - sizeof(blk)) / size)
        cli_oom();
    void *p = xmalloc(n * size);
    memset(p, 0, n * size);
    return p;
}

void *xrealloc(void *p, size_t n) {
    if (!p)
        return xmalloc(n);
    if (n > SIZE_MAX - sizeof(blk))
        cli_oom();
    blk *b = (blk *)p - 1;
    blk_unlink(b);
    blk *nb = realloc(b, sizeof *nb + n);
    if (!nb) {
        blk_link(b);
        cli_oom();
    }
    blk_link(nb);
    return nb + 1;
}

/* Past GROW_POPULATE bytes, an array that grows goes to a new block whose
 * pages the copy will write are populated first, with one
 * madvise(MADV_POPULATE_WRITE) rather than a page fault per 4 KiB (on a
 * virtual machine a fault costs microseconds; a store of 10 million points
 * copies hundreds of MB into fresh pages as its histories grow).  The pages
 * beyond the copy fault in when used, as usual; so do all of them where the
 * kernel does not know the advice (before Linux 5.14). */
#define GROW_POPULATE (64u * 1024u)
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

void *xgrow(void *p, size_t used, size_t n) {
    if (!p || used < GROW_POPULATE)
        return xrealloc(p, n);
    if (used > n)
        used = n;
    char *np = xmalloc(n);
    uintptr_t page = 4096, lo = ((uintptr_t)np + page - 1) & ~(page - 1),
              hi = ((uintptr_t)np + used) & ~(page - 1);
    if (hi > lo)
        (void)madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE);
    memcpy(np, p, used);
    xfree(p);
    return np;
}

void xfree(void *p) {
    if (!p)
        return;
    blk *b = (blk *)p - 1;
    blk_unlink(b);
    free(b);
}

void xfree_all(void) {
    while (g_blocks.l.next != &g_blocks) {
        blk *b = g_blocks.l.next;
        blk_unlink(b);
        free(b);
    }
}

char *xstrdup(const char *s) {
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

void cli_set_str(char **dst, const char *s) {
    xfree(*dst);
    *dst = xstrdup(s);
}
