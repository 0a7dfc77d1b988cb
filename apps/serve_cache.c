/* serve_cache.c — reference-counted objects, response bodies with their
 * ETags, and the LRU caches of `problemap serve` (see serve.h).
 *
 * The LRU is a hash table (chaining, doubled when it holds as many entries
 * as buckets) threaded on a doubly linked list, most recent first.  The
 * cache holds one reference to each object; an evicted object lives on
 * until the responses still sending it let go.  Objects are released
 * outside the lock: freeing a map layer may take a while. */
#include "serve.h"
#include "../engine/pm_alloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ---- shared objects ------------------------------------------------------- */

void shared_init(shared *s, void (*destroy)(shared *s))
{
    atomic_init(&s->refs, 1);
    s->destroy = destroy;
}

shared *shared_ref(shared *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void shared_unref(shared *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        s->destroy(s);
}

uint64_t serve_hash(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* ---- blobs ------------------------------------------------------------------ */

static void blob_destroy(shared *s)
{
    blob *b = (blob *)s;
    pm_free(b->data);
    pm_free(b);
}

blob *blob_adopt(uint8_t *data, size_t len, const char *type, uint64_t generation, const char *key)
{
    blob *b = pm_calloc(1, sizeof *b);
    if (!b) {
        pm_free(data);
        return NULL;
    }
    shared_init(&b->sh, blob_destroy);
    b->data = data;
    b->len = len;
    b->type = type;
    uint64_t h = serve_hash(SERVE_HASH_SEED, &generation, sizeof generation);
    h = serve_hash(h, key, strlen(key) + 1);
    h = serve_hash(h, data, len);
    snprintf(b->etag, sizeof b->etag, "\"%016" PRIx64 "\"", h);
    return b;
}

blob *blob_copy(const void *data, size_t len, const char *type, uint64_t generation, const char *key)
{
    uint8_t *copy = pm_malloc(len);
    if (!copy)
        return NULL;
    if (len)
        memcpy(copy, data, len);
    return blob_adopt(copy, len, type, generation, key);
}

/* ---- LRU ------------------------------------------------------------------- */

typedef struct entry {
    struct entry *chain;          /* next in the bucket */
    struct entry *prev, *next;    /* recency list: prev is more recent */
    uint64_t hash;
    shared *v;
    size_t cost;
    char key[];
} entry;

struct lru {
    pthread_mutex_t lock;
    entry **buckets;
    size_t n_buckets;             /* a power of two */
    entry *head, *tail;           /* most and least recent */
    size_t n, cost, max_cost;
};

lru *lru_new(size_t max_cost)
{
    lru *c = pm_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->n_buckets = 64;
    c->buckets = pm_calloc(c->n_buckets, sizeof *c->buckets);
    if (!c->buckets) {
        pm_free(c);
        return NULL;
    }
    c->max_cost = max_cost;
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

static uint64_t key_hash(const char *key)
{
    return serve_hash(SERVE_HASH_SEED, key, strlen(key));
}

static entry *find(lru *c, const char *key, uint64_t h)
{
    for (entry *e = c->buckets[h & (c->n_buckets - 1)]; e; e = e->chain)
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static void list_unlink(lru *c, entry *e)
{
    *(e->prev ? &e->prev->next : &c->head) = e->next;
    *(e->next ? &e->next->prev : &c->tail) = e->prev;
    e->prev = e->next = NULL;
}

static void list_push_front(lru *c, entry *e)
{
    e->prev = NULL;
    e->next = c->head;
    *(c->head ? &c->head->prev : &c->tail) = e;
    c->head = e;
}

/* Takes e out of the table and the list; the caller releases it. */
static void remove_entry(lru *c, entry *e)
{
    entry **p = &c->buckets[e->hash & (c->n_buckets - 1)];
    while (*p != e)
        p = &(*p)->chain;
    *p = e->chain;
    list_unlink(c, e);
    c->n--;
    c->cost -= e->cost;
}

/* Doubles the table (when memory allows: a full table is only slower). */
static void grow(lru *c)
{
    size_t nb = c->n_buckets * 2;
    entry **b = pm_calloc(nb, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < c->n_buckets; i++)
        for (entry *e = c->buckets[i], *next; e; e = next) {
            next = e->chain;
            e->chain = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    pm_free(c->buckets);
    c->buckets = b;
    c->n_buckets = nb;
}

/* Releases a list of removed entries (linked through chain). */
static void release(entry *e)
{
    while (e) {
        entry *next = e->chain;
        shared_unref(e->v);
        pm_free(e);
        e = next;
    }
}

shared *lru_get(lru *c, const char *key)
{
    uint64_t h = key_hash(key);
    pthread_mutex_lock(&c->lock);
    entry *e = find(c, key, h);
    shared *v = NULL;
    if (e) {
        list_unlink(c, e);
        list_push_front(c, e);
        v = shared_ref(e->v);
    }
    pthread_mutex_unlock(&c->lock);
    return v;
}

shared *lru_put(lru *c, const char *key, shared *v, size_t cost)
{
    if (cost > c->max_cost)
        return v;
    size_t klen = strlen(key);
    entry *fresh = pm_malloc(sizeof *fresh + klen + 1);
    if (!fresh)
        return v;
    uint64_t h = key_hash(key);
    entry *evicted = NULL;
    pthread_mutex_lock(&c->lock);
    entry *e = find(c, key, h);
    if (e) { /* another request cached it first: everyone shares that one */
        list_unlink(c, e);
        list_push_front(c, e);
        shared *kept = shared_ref(e->v);
        pthread_mutex_unlock(&c->lock);
        pm_free(fresh);
        shared_unref(v);
        return kept;
    }
    *fresh = (entry){.hash = h, .v = shared_ref(v), .cost = cost};
    memcpy(fresh->key, key, klen + 1);
    if (c->n >= c->n_buckets)
        grow(c);
    fresh->chain = c->buckets[h & (c->n_buckets - 1)];
    c->buckets[h & (c->n_buckets - 1)] = fresh;
    list_push_front(c, fresh);
    c->n++;
    c->cost += cost;
    while (c->cost > c->max_cost && c->tail != fresh) {
        entry *old = c->tail;
        remove_entry(c, old);
        old->chain = evicted;
        evicted = old;
    }
    pthread_mutex_unlock(&c->lock);
    release(evicted);
    return v;
}

void lru_clear(lru *c)
{
    pthread_mutex_lock(&c->lock);
    entry *all = NULL;
    while (c->head) {
        entry *e = c->head;
        remove_entry(c, e);
        e->chain = all;
        all = e;
    }
    pthread_mutex_unlock(&c->lock);
    release(all);
}

void lru_free(lru *c)
{
    if (!c)
        return;
    lru_clear(c);
    pthread_mutex_destroy(&c->lock);
    pm_free(c->buckets);
    pm_free(c);
}

size_t lru_count(lru *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = c->n;
    pthread_mutex_unlock(&c->lock);
    return n;
}

size_t lru_cost(lru *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = c->cost;
    pthread_mutex_unlock(&c->lock);
    return n;
}
