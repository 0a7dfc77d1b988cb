/* alloc.c — the allocator with its failure hook (see pm_alloc.h). */
#include "pm_alloc.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#ifdef __GLIBC__   /* defined by the headers above */
#include <malloc.h>
#endif

static atomic_long fail_at;   /* 0: never fail */
static atomic_long count;

static int should_fail(void)
{
    long n = atomic_fetch_add_explicit(&count, 1, memory_order_relaxed) + 1;
    long at = atomic_load_explicit(&fail_at, memory_order_relaxed);
    return at > 0 && n >= at;
}

void pm_alloc_fail_at(long n)
{
    atomic_store(&count, 0);
    atomic_store(&fail_at, n);
}

long pm_alloc_count(void) { return atomic_load(&count); }

void pm_alloc_keep_freed(void)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 2 << 20);   /* bigger blocks: mmap'd, unmapped on free */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}

/* Big blocks (columns of millions of complaints, hash tables larger than
 * the caches) ask for transparent huge pages: their random accesses then
 * miss the TLB far less, and they fault in 2 MiB at a time (glibc's
 * malloc.hugetlb tunable, which does the same for every mmap'd block, took
 * 17 % off the CPU time of `cube` on 13.7 M complaints).  A hint: the
 * kernel may refuse it, and with THP off it does nothing. */
#define HUGE_PAGE ((uintptr_t)2 << 20)

static void *advise_huge(void *p, size_t size)
{
#ifdef MADV_HUGEPAGE
    if (p && size >= 2 * HUGE_PAGE) {
        uintptr_t a = ((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
        uintptr_t e = ((uintptr_t)p + size) & ~(HUGE_PAGE - 1);
        if (e > a)
            madvise((void *)a, e - a, MADV_HUGEPAGE);
    }
#endif
    return p;
}

void *pm_malloc(size_t size)
{
    if (should_fail())
        return NULL;
    return advise_huge(malloc(size ? size : 1), size);
}

void *pm_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    if (should_fail())
        return NULL;
    return advise_huge(calloc(n ? n : 1, size ? size : 1), n * size);
}

void *pm_realloc(void *p, size_t size)
{
    if (should_fail())
        return NULL;
    return advise_huge(realloc(p, size ? size : 1), size);
}

void *pm_reallocarray(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    return pm_realloc(p, n * size);
}

char *pm_strndup(const char *s, size_t n)
{
    char *d = pm_malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *pm_strdup(const char *s) { return pm_strndup(s, strlen(s)); }

void pm_free(void *p) { free(p); }

void pm_alloc_prefault(void *p, size_t size)
{
#ifdef MADV_POPULATE_WRITE
    long ps = sysconf(_SC_PAGESIZE);
    uintptr_t page = ps > 0 ? (uintptr_t)ps : 4096;
    uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t e = ((uintptr_t)p + size) & ~(page - 1);
    /* a signal arriving meanwhile interrupts it: try again, a few times */
    for (int tries = 0; p && e > a && tries < 8; tries++)
        if (madvise((void *)a, e - a, MADV_POPULATE_WRITE) == 0 || errno != EINTR)
            break;
#else
    (void)p;
    (void)size;
#endif
}
