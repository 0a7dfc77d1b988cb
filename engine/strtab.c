/* strtab.c — distinct strings with dense indexes (see strtab.h). */
#include "strtab.h"
#include "pm_alloc.h"

#include <string.h>

#define CHUNK (64 * 1024)

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    char data[];
} chunk;

struct pm_strtab {
    const char **strs;     /* by index */
    size_t n, cap;
    uint32_t *slots;       /* index + 1, 0 = empty */
    size_t nslots;         /* power of two */
    chunk *chunks;
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

pm_strtab *pm_strtab_new(void)
{
    pm_strtab *t = pm_calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->nslots = 64;
    t->slots = pm_calloc(t->nslots, sizeof *t->slots);
    if (!t->slots) {
        pm_free(t);
        return NULL;
    }
    return t;
}

void pm_strtab_free(pm_strtab *t)
{
    if (!t)
        return;
    for (chunk *c = t->chunks, *next; c; c = next) {
        next = c->next;
        pm_free(c);
    }
    pm_free(t->strs);
    pm_free(t->slots);
    pm_free(t);
}

static char *store(pm_strtab *t, const char *s)
{
    size_t len = strlen(s) + 1;
    chunk *c = t->chunks;
    if (!c || c->cap - c->used < len) {
        size_t cap = len > CHUNK ? len : CHUNK;
        c = pm_malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->next = t->chunks;
        c->used = 0;
        c->cap = cap;
        t->chunks = c;
    }
    char *d = c->data + c->used;
    memcpy(d, s, len);
    c->used += len;
    return d;
}

static size_t probe(const pm_strtab *t, const char *s, uint64_t h)
{
    size_t mask = t->nslots - 1, i = (size_t)h & mask;
    while (t->slots[i] && strcmp(t->strs[t->slots[i] - 1], s) != 0)
        i = (i + 1) & mask;
    return i;
}

static int grow(pm_strtab *t)
{
    size_t ns = t->nslots * 2;
    uint32_t *slots = pm_calloc(ns, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t k = 0; k < t->n; k++) {
        size_t i = (size_t)hash(t->strs[k]) & (ns - 1);
        while (slots[i])
            i = (i + 1) & (ns - 1);
        slots[i] = (uint32_t)(k + 1);
    }
    pm_free(t->slots);
    t->slots = slots;
    t->nslots = ns;
    return 0;
}

int64_t pm_strtab_find(const pm_strtab *t, const char *s)
{
    size_t i = probe(t, s, hash(s));
    return t->slots[i] ? (int64_t)t->slots[i] - 1 : -1;
}

int64_t pm_strtab_intern(pm_strtab *t, const char *s, int *added)
{
    uint64_t h = hash(s);
    size_t i = probe(t, s, h);
    if (added)
        *added = 0;
    if (t->slots[i])
        return (int64_t)t->slots[i] - 1;
    if (t->n >= UINT32_MAX - 1)
        return -1;
    if ((t->n + 1) * 2 > t->nslots) {
        if (grow(t) != 0)
            return -1;
        i = probe(t, s, h);
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        const char **strs = pm_reallocarray(t->strs, cap, sizeof *strs);
        if (!strs)
            return -1;
        t->strs = strs;
        t->cap = cap;
    }
    char *d = store(t, s);
    if (!d)
        return -1;
    t->strs[t->n] = d;
    t->slots[i] = (uint32_t)(t->n + 1);
    if (added)
        *added = 1;
    return (int64_t)t->n++;
}

const char *pm_strtab_str(const pm_strtab *t, size_t idx) { return t->strs[idx]; }
size_t pm_strtab_count(const pm_strtab *t) { return t->n; }
