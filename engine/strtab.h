/* strtab.h — internal: a table of distinct strings, each with a dense
 * index (0, 1, 2, ... in order of first insertion).  Open addressing;
 * strings live in one growing arena of chunks and stay where they are.
 * Used for the complaint dictionaries, the topics and the set of complaint
 * ids. */
#ifndef PM_STRTAB_H
#define PM_STRTAB_H

#include <stddef.h>
#include <stdint.h>

typedef struct pm_strtab pm_strtab;

/* A table of values (names, codes, dictionary values). */
pm_strtab *pm_strtab_new(void);
/* A table of ids, which often come in sequence: hashed so that such ids
 * sit near each other in the table (see strtab.c). */
pm_strtab *pm_strtab_new_ids(void);
void pm_strtab_free(pm_strtab *t);

/* Index of s, adding it when new; *added (may be NULL) says which.
 * Returns -1 when out of memory. */
int64_t pm_strtab_intern(pm_strtab *t, const char *s, int *added);
/* Index of s, or -1. */
int64_t pm_strtab_find(const pm_strtab *t, const char *s);

/* Where a lookup left off: pm_strtab_insert adds the string there without
 * hashing or probing again, provided the table has not changed since. */
typedef struct pm_strtab_pos {
    uint64_t hash;
    size_t slot;
} pm_strtab_pos;

/* Asks the cache for the slot where a lookup of s starts (a hint for a
 * lookup coming soon; nothing changes). */
void pm_strtab_prefetch(const pm_strtab *t, const char *s);
/* Index of s, or -1 with *pos set for pm_strtab_insert. */
int64_t pm_strtab_lookup(const pm_strtab *t, const char *s, pm_strtab_pos *pos);
/* The longest string a table takes, with its NUL: 16 MiB. */
#define PM_STRTAB_STR_MAX ((size_t)1 << 24)
/* Adds s, which the lookup that set pos did not find; its index, or -1
 * when out of memory or when s is longer than PM_STRTAB_STR_MAX. */
int64_t pm_strtab_insert(pm_strtab *t, const char *s, const pm_strtab_pos *pos);
/* Makes room for n strings in all, so that adding up to that many neither
 * rehashes nor moves the index; -1 when out of memory (nothing changed
 * then but perhaps the table's size). */
int pm_strtab_reserve(pm_strtab *t, size_t n);
const char *pm_strtab_str(const pm_strtab *t, size_t idx);
size_t pm_strtab_count(const pm_strtab *t);

#endif
