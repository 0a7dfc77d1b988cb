/* pm_alloc.h — the one allocator of libproblemap.
 *
 * Every allocation in the library goes through these functions so that a
 * test can make the Nth allocation fail (pm_alloc_fail_at) and check that
 * every failure ends in a clean error (the approach of sqlite's and h3's
 * harnesses).  Sizes are overflow-checked: pm_calloc(n, size) and
 * pm_reallocarray() return NULL instead of wrapping.
 *
 * The failure hook is the only process-wide state in the library; it is a
 * test facility, read with relaxed atomics, and off unless a test sets it.
 */
#ifndef PM_ALLOC_H
#define PM_ALLOC_H

#include <stddef.h>

void *pm_malloc(size_t size);
void *pm_calloc(size_t n, size_t size);
void *pm_realloc(void *p, size_t size);
void *pm_reallocarray(void *p, size_t n, size_t size);
char *pm_strdup(const char *s);
char *pm_strndup(const char *s, size_t n);
void pm_free(void *p);

/* Test hook: the n-th allocation from now (1-based) and every later one
 * fails; 0 turns failures off.  pm_alloc_count() is the number of
 * allocations made since the last call of pm_alloc_fail_at(). */
void pm_alloc_fail_at(long n);
long pm_alloc_count(void);

/* For a program's main, never for the library: process-wide, it tells
 * glibc's malloc to keep freed blocks under 2 MiB in its heap for reuse
 * (up to 64 MiB of free memory at the heap's top) instead of handing them
 * back to the kernel and faulting them in again.  A heat tile allocates and
 * frees the same few hundred KiB every time; with glibc's default, whose
 * thresholds follow what was freed before, the same z8 tile took 2 or 5 ms
 * depending on how the complaints had been read (docs/benchmarks.md).
 * Does nothing without glibc. */
void pm_alloc_keep_freed(void);

/* Faults in the whole pages within [p, p + size) of a block from this
 * allocator, writable, without changing a byte (Linux's
 * MADV_POPULATE_WRITE), so that a later first write there finds them in
 * place.  The kernel's zeroing of fresh pages is a fixed cost, and this
 * lets another thread pay it.  A hint: an older kernel ignores it. */
void pm_alloc_prefault(void *p, size_t size);

#endif
