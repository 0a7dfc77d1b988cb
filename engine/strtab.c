/* strtab.c — distinct strings with dense indexes (see strtab.h). */
#include "strtab.h"
#include "pm_alloc.h"

#include <string.h>

/* The strings lie in blocks of CHUNK bytes (a longer string gets a block
 * of whole CHUNKs of its own), numbered as one space: byte o of it is at
 * addr[o / CHUNK] + o % CHUNK, where addr holds each CHUNK's address (a
 * long block's CHUNKs follow each other).  A string's place there is
 * kept as 4 bytes: its offset from the first string of its group of GROUP
 * strings, whose own place takes 8 bytes a group (the 8-byte pointer each
 * string took before: 13.7 M ids, 55 MB).  A string never spans two
 * blocks, so the GROUP - 1 strings before one in its group take less than
 * GROUP · (STR_MAX + CHUNK) < 2^32 bytes. */
#define CHUNK_BITS 16
#define CHUNK ((size_t)1 << CHUNK_BITS)
#define GROUP_BITS 7
#define GROUP ((size_t)1 << GROUP_BITS)

typedef struct chunk {   /* a block, owned */
    struct chunk *next;
    char data[];
} chunk;

/* A slot is 0 when empty, else it holds the string's index + 1 in its low
 * `bits` bits (nslots = 2^bits; the table is at most half full, so the
 * index fits) and the top 32 - bits bits of the string's hash above them:
 * a probe compares strings only when those agree.  With 16 M strings
 * (2^25 slots) that is 7 bits, one needless comparison in 128, where each
 * comparison is two cache misses in a table of that size. */
struct pm_strtab {
    uint32_t *rel;         /* by index: offset from its group's first string */
    uint64_t *group;       /* by index / GROUP: where its first string lies */
    size_t n, cap;         /* strings; room in rel (and group) */
    char **addr;           /* by CHUNK: where it is */
    size_t n_addr, addr_cap;
    uint64_t end;          /* where the next string goes */
    uint32_t *slots;
    size_t nslots;         /* 2^bits */
    unsigned bits;
    chunk *chunks;
    int ids;               /* pm_strtab_new_ids: hashed with FNV-1a */
};

static uint32_t slot_make(unsigned bits, uint64_t h, size_t index)
{
    uint64_t tag = bits >= 32 ? 0 : h >> (32 + bits);
    return (uint32_t)(tag << bits | (index + 1));
}

/* The index in slot v (not empty). */
static size_t slot_index(unsigned bits, uint32_t v)
{
    return (bits >= 32 ? v : v & ((UINT32_C(1) << bits) - 1)) - 1;
}

static int slot_may_hold(unsigned bits, uint32_t v, uint64_t h)
{
    return bits >= 32 || v >> bits == (uint32_t)(h >> (32 + bits));
}

/* FNV-1a, for ids: its last bytes' weak mixing keeps ids that differ only
 * there ("c0000001", "c0000002", ...) within a few KiB of slots, so in a
 * table far bigger than the caches the next id's slot is most often
 * cached already (13.7 M sequential ids: 2.9 s to find them all, against
 * 4-5 s with the well-mixed hash below). */
static uint64_t hash_fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* For values (names run to tens of bytes, where FNV-1a's byte-wise
 * multiply chain was most of a lookup): eight bytes at a time, then
 * SplitMix64's finalizer, which spreads every bit over slot and tag. */
static uint64_t hash_words(const char *s)
{
    size_t n = strlen(s);
    uint64_t h = UINT64_C(0x9E3779B97F4A7C15) ^ n, w;
    for (; n >= 8; s += 8, n -= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * UINT64_C(0xBF58476D1CE4E5B9);
        h ^= h >> 31;
    }
    w = 0;
    for (size_t i = 0; i < n; i++)
        w |= (uint64_t)(unsigned char)s[i] << (8 * i);
    h ^= w;
    h ^= h >> 30;
    h *= UINT64_C(0xBF58476D1CE4E5B9);
    h ^= h >> 27;
    h *= UINT64_C(0x94D049BB133111EB);
    h ^= h >> 31;
    return h;
}

static uint64_t hash(const pm_strtab *t, const char *s)
{
    return t->ids ? hash_fnv(s) : hash_words(s);
}

static pm_strtab *strtab_new(int ids)
{
    pm_strtab *t = pm_calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ids = ids;
    t->nslots = 64;
    t->bits = 6;
    t->slots = pm_calloc(t->nslots, sizeof *t->slots);
    if (!t->slots) {
        pm_free(t);
        return NULL;
    }
    return t;
}

pm_strtab *pm_strtab_new(void) { return strtab_new(0); }
pm_strtab *pm_strtab_new_ids(void) { return strtab_new(1); }

void pm_strtab_free(pm_strtab *t)
{
    if (!t)
        return;
    for (chunk *c = t->chunks, *next; c; c = next) {
        next = c->next;
        pm_free(c);
    }
    pm_free(t->rel);
    pm_free(t->group);
    pm_free(t->addr);
    pm_free(t->slots);
    pm_free(t);
}

static const char *str_at(const pm_strtab *t, size_t idx)
{
    uint64_t o = t->group[idx >> GROUP_BITS] + t->rel[idx];
    return t->addr[o >> CHUNK_BITS] + (o & (CHUNK - 1));
}

/* Copies s (len bytes with its NUL) where the strings go, in a new block
 * when it does not fit the last; its place, or UINT64_MAX when out of
 * memory (nothing changed then). */
static uint64_t store(pm_strtab *t, const char *s, size_t len)
{
    uint64_t o = t->end;
    if ((uint64_t)t->n_addr * CHUNK - o < len) {
        size_t m = (len + CHUNK - 1) / CHUNK;   /* CHUNKs of the new block */
        if (t->n_addr + m > t->addr_cap) {
            size_t cap = t->addr_cap ? t->addr_cap * 2 : 16;
            cap = cap > t->n_addr + m ? cap : t->n_addr + m;
            char **a = pm_reallocarray(t->addr, cap, sizeof *a);
            if (!a)
                return UINT64_MAX;
            t->addr = a;
            t->addr_cap = cap;
        }
        chunk *c = pm_malloc(sizeof *c + m * CHUNK);
        if (!c)
            return UINT64_MAX;
        c->next = t->chunks;
        t->chunks = c;
        o = (uint64_t)t->n_addr * CHUNK;
        for (size_t k = 0; k < m; k++)
            t->addr[t->n_addr++] = c->data + k * CHUNK;
    }
    memcpy(t->addr[o >> CHUNK_BITS] + (o & (CHUNK - 1)), s, len);
    t->end = o + len;
    return o;
}

/* The slot holding s (hash h), or the empty slot where it would go. */
static size_t probe(const pm_strtab *t, const char *s, uint64_t h)
{
    size_t mask = t->nslots - 1, i = (size_t)h & mask;
    for (uint32_t v; (v = t->slots[i]) != 0; i = (i + 1) & mask)
        if (slot_may_hold(t->bits, v, h) && strcmp(str_at(t, slot_index(t->bits, v)), s) == 0)
            break;
    return i;
}

/* Rehashes into a table of 2^bits slots (bits > t->bits). */
static int grow_to(pm_strtab *t, unsigned bits)
{
    size_t ns = (size_t)1 << bits;
    uint32_t *slots = pm_calloc(ns, sizeof *slots);
    if (!slots)
        return -1;
    enum { AHEAD = 16 };   /* slots fetched ahead: the table outgrows the caches */
    uint64_t ahead[AHEAD];
    for (size_t k = 0; k < t->n + AHEAD; k++) {
        uint64_t h = k >= AHEAD ? ahead[k % AHEAD] : 0;   /* of string k - AHEAD */
        if (k < t->n) {
            ahead[k % AHEAD] = hash(t, str_at(t, k));
            __builtin_prefetch(&slots[ahead[k % AHEAD] & (ns - 1)], 1);
        }
        if (k < AHEAD)
            continue;
        size_t i = (size_t)h & (ns - 1);
        while (slots[i])
            i = (i + 1) & (ns - 1);
        slots[i] = slot_make(bits, h, k - AHEAD);
    }
    pm_free(t->slots);
    t->slots = slots;
    t->nslots = ns;
    t->bits = bits;
    return 0;
}

static int grow(pm_strtab *t) { return grow_to(t, t->bits + 1); }

static int strs_reserve(pm_strtab *t, size_t cap)
{
    if (cap <= t->cap)
        return 0;
    uint64_t *group = pm_reallocarray(t->group, (cap + GROUP - 1) / GROUP, sizeof *group);
    if (!group)
        return -1;
    t->group = group;
    uint32_t *rel = pm_reallocarray(t->rel, cap, sizeof *rel);
    if (!rel)
        return -1;
    t->rel = rel;
    t->cap = cap;
    return 0;
}

int pm_strtab_reserve(pm_strtab *t, size_t n)
{
    if (n >= UINT32_MAX - 1)
        return -1;
    unsigned bits = t->bits;
    while (((size_t)1 << bits) < n * 2)   /* insert keeps the table at most half full */
        bits++;
    if (bits > t->bits && grow_to(t, bits) != 0)
        return -1;
    return strs_reserve(t, n);
}

int64_t pm_strtab_find(const pm_strtab *t, const char *s)
{
    pm_strtab_pos pos;
    return pm_strtab_lookup(t, s, &pos);
}

void pm_strtab_prefetch(const pm_strtab *t, const char *s)
{
    __builtin_prefetch(&t->slots[hash(t, s) & (t->nslots - 1)]);
}

int64_t pm_strtab_lookup(const pm_strtab *t, const char *s, pm_strtab_pos *pos)
{
    pos->hash = hash(t, s);
    pos->slot = probe(t, s, pos->hash);
    uint32_t v = t->slots[pos->slot];
    return v ? (int64_t)slot_index(t->bits, v) : -1;
}

int64_t pm_strtab_insert(pm_strtab *t, const char *s, const pm_strtab_pos *pos)
{
    size_t i = pos->slot;
    size_t len = strlen(s) + 1;
    if (t->n >= UINT32_MAX - 1 || len > PM_STRTAB_STR_MAX)
        return -1;
    if ((t->n + 1) * 2 > t->nslots) {
        if (grow(t) != 0)
            return -1;
        i = probe(t, s, pos->hash);
    }
    if (t->n == t->cap && strs_reserve(t, t->cap ? t->cap * 2 : 64) != 0)
        return -1;
    uint64_t o = store(t, s, len);
    if (o == UINT64_MAX)
        return -1;
    if (t->n % GROUP == 0)
        t->group[t->n / GROUP] = o;
    t->rel[t->n] = (uint32_t)(o - t->group[t->n / GROUP]);
    t->slots[i] = slot_make(t->bits, pos->hash, t->n);
    return (int64_t)t->n++;
}

int64_t pm_strtab_intern(pm_strtab *t, const char *s, int *added)
{
    pm_strtab_pos pos;
    int64_t k = pm_strtab_lookup(t, s, &pos);
    if (added)
        *added = 0;
    if (k >= 0)
        return k;
    k = pm_strtab_insert(t, s, &pos);
    if (added)
        *added = k >= 0;
    return k;
}

const char *pm_strtab_str(const pm_strtab *t, size_t idx) { return str_at(t, idx); }
size_t pm_strtab_count(const pm_strtab *t) { return t->n; }
