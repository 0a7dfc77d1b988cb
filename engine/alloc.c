/* alloc.c — the allocator with its failure hook (see pm_alloc.h). */
#include "pm_alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

void *pm_malloc(size_t size)
{
    if (should_fail())
        return NULL;
    return malloc(size ? size : 1);
}

void *pm_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    if (should_fail())
        return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

void *pm_realloc(void *p, size_t size)
{
    if (should_fail())
        return NULL;
    return realloc(p, size ? size : 1);
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
