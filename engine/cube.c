/* cube.c — the cube: placed complaints aggregated into cells, and the
 * queries that roll cells up into the figures of a report (see pm_cube.h,
 * docs/cube.md for every formula).
 *
 * Adding a batch happens in three steps, so that a failure leaves the
 * cube as it was (only its dictionaries may have gained strings no cell
 * uses): the batch is first aggregated into cells of its own, then room is
 * reserved in the cube for all of them, then they are merged in, which
 * cannot fail.  An empty cube adopts the batch's cells and ids instead
 * (nothing to merge into).  The id sets and cells are far larger than the
 * caches on big batches: the loops over them fetch AHEAD elements early. */
#include "cube_impl.h"
#include "pm_alloc.h"
#include "../geodata/pm_boundaries.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DAY_S 86400
#define UNMAPPED (UINT32_MAX - 1)        /* batch → cube dictionary map: not yet */
#define MAX_OFFSET_S (18L * 3600)
#define QUERY_PERIOD_MAX ((int64_t)1 << 47)
#define DEFAULT_MIN_SAMPLE 30
#define POOL_MAX ((size_t)UINT32_MAX)     /* elements per pool: offsets are uint32 */
/* How many elements ahead the loops over tables far larger than the caches
 * (id sets, cells, lists) fetch what they will touch (a power of two). */
enum { AHEAD = 16 };

/* ---- hashing ------------------------------------------------------------ */

/* MurmurHash3's 64-bit finaliser: a bijection that spreads every input bit. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

uint64_t pm_id_hash(const char *id)
{
    uint64_t h = 1469598103934665603ULL;   /* FNV-1a 64 */
    for (const unsigned char *s = (const unsigned char *)id; *s; s++) {
        h ^= *s;
        h *= 1099511628211ULL;
    }
    h = mix64(h);
    return h ? h : 1;
}

static uint64_t key_hash(const pm_cell_key *k)
{
    uint64_t h = mix64(((uint64_t)k->district << 16) ^ k->topic);
    h = mix64(h ^ (uint64_t)(uint32_t)k->period);
    h = mix64(h ^ (((uint64_t)k->source << 32) | k->status));
    return mix64(h ^ k->executor);
}

static int key_eq(const pm_cell_key *a, const pm_cell_key *b)
{
    return a->district == b->district && a->topic == b->topic && a->period == b->period &&
           a->source == b->source && a->status == b->status && a->executor == b->executor;
}

#define CMP(x, y) ((x) < (y) ? -1 : (x) > (y) ? 1 : 0)

int pm_cell_key_cmp(const pm_cell_key *a, const pm_cell_key *b)
{
    int c;
    if ((c = CMP(a->district, b->district)) || (c = CMP(a->topic, b->topic)) ||
        (c = CMP(a->period, b->period)) || (c = CMP(a->source, b->source)) ||
        (c = CMP(a->status, b->status)))
        return c;
    return CMP(a->executor, b->executor);
}

/* ---- the cell store ----------------------------------------------------- */

void pm_store_init(pm_cell_store *st)
{
    memset(st, 0, sizeof *st);
    st->delays.elem = sizeof(uint32_t);
    st->opens.elem = sizeof(int64_t);
}

void pm_store_free(pm_cell_store *st)
{
    pm_free(st->cells);
    pm_free(st->slots);
    pm_free(st->delays.v);
    pm_free(st->opens.v);
    pm_store_init(st);
}

/* The slot holding k (hash h), or the empty slot where it would go. */
static size_t slot_at(const pm_cell_store *st, const pm_cell_key *k, uint64_t h)
{
    size_t mask = st->nslots - 1, i = (size_t)h & mask;
    while (st->slots[i] && !key_eq(&st->cells[st->slots[i] - 1].key, k))
        i = (i + 1) & mask;
    return i;
}

static size_t slot_of(const pm_cell_store *st, const pm_cell_key *k)
{
    return slot_at(st, k, key_hash(k));
}

int pm_store_reserve_unmapped(pm_cell_store *st, size_t extra)
{
    if (extra > UINT32_MAX - 2 - st->n)
        return -1;   /* cell indexes + 1 must fit the uint32 slots */
    size_t need = st->n + extra;
    if (need > st->cap) {
        size_t cap = st->cap ? st->cap + st->cap / 2 : 64;
        if (cap < need)
            cap = need;
        pm_cell *cells = pm_reallocarray(st->cells, cap, sizeof *cells);
        if (!cells)
            return -1;
        st->cells = cells;
        st->cap = cap;
    }
    return 0;
}

int pm_store_reserve_cells(pm_cell_store *st, size_t extra)
{
    if (pm_store_reserve_unmapped(st, extra) != 0)
        return -1;
    size_t need = st->n + extra;
    if (need * 2 <= st->nslots)
        return 0;
    size_t ns = st->nslots ? st->nslots : 64;
    while (ns < need * 2)
        ns *= 2;
    uint32_t *slots = pm_calloc(ns, sizeof *slots);
    if (!slots)
        return -1;
    pm_free(st->slots);
    st->slots = slots;
    st->nslots = ns;
    for (size_t c = 0; c < st->n; c++)
        st->slots[slot_of(st, &st->cells[c].key)] = (uint32_t)(c + 1);
    return 0;
}

size_t pm_store_add_reserved(pm_cell_store *st, const pm_cell_key *k)
{
    size_t c = st->n++;
    memset(&st->cells[c], 0, sizeof st->cells[c]);
    st->cells[c].key = *k;
    if (st->nslots)
        st->slots[slot_of(st, k)] = (uint32_t)(c + 1);
    return c;
}

/* Finds or adds the cell with key k (hash h); -1 when out of memory. */
static long store_get(pm_cell_store *st, const pm_cell_key *k, uint64_t h)
{
    size_t i = 0;
    if (st->nslots) {
        i = slot_at(st, k, h);
        if (st->slots[i])
            return (long)st->slots[i] - 1;
    }
    size_t nslots = st->nslots;
    if (pm_store_reserve_cells(st, 1) != 0)
        return -1;
    if (st->nslots != nslots)   /* a new table: probe again */
        i = slot_at(st, k, h);
    size_t c = st->n++;
    memset(&st->cells[c], 0, sizeof st->cells[c]);
    st->cells[c].key = *k;
    st->slots[i] = (uint32_t)(c + 1);
    return (long)c;
}

/* Asks the cache for the first slot of hash h (a hint). */
static void store_prefetch_slot(const pm_cell_store *st, uint64_t h)
{
    if (st->nslots)
        __builtin_prefetch(&st->slots[(size_t)h & (st->nslots - 1)]);
}

/* Asks the cache for the cell in the first slot of hash h (a hint). */
static void store_prefetch_cell(const pm_cell_store *st, uint64_t h)
{
    if (!st->nslots)
        return;
    uint32_t s = st->slots[(size_t)h & (st->nslots - 1)];
    if (s)
        __builtin_prefetch(&st->cells[s - 1]);
}

static pm_pool *pool_of(pm_cell_store *st, int which) { return which ? &st->opens : &st->delays; }
static pm_cell_list *list_of(pm_cell *c, int which) { return which ? &c->opens : &c->delays; }
static char *pool_at(const pm_pool *p, uint64_t off) { return (char *)p->v + off * p->elem; }

/* Moves every live segment into a new array of cap elements (caps kept). */
static int pool_compact(pm_cell_store *st, int which, size_t cap)
{
    pm_pool *p = pool_of(st, which);
    char *v = pm_reallocarray(NULL, cap, p->elem);
    if (!v)
        return -1;
    size_t used = 0;
    for (size_t c = 0; c < st->n; c++) {
        pm_cell_list *l = list_of(&st->cells[c], which);
        if (!l->cap)
            continue;
        memcpy(v + used * p->elem, pool_at(p, l->off), (size_t)l->len * p->elem);
        l->off = (uint32_t)used;
        used += l->cap;
    }
    pm_free(p->v);
    p->v = v;
    p->used = p->live = used;
    p->cap = cap;
    return 0;
}

int pm_store_reserve_pool(pm_cell_store *st, int which, size_t extra)
{
    pm_pool *p = pool_of(st, which);
    if (p->cap - p->used >= extra)
        return 0;
    if (extra > POOL_MAX - p->live)
        return -1;
    size_t want = p->live + extra;
    /* much space left behind by moved segments: compact (amortised O(1):
     * the moves that left it copied at least as much) */
    if (p->used - p->live > p->live / 2 + 1024 || extra > POOL_MAX - p->used)
        return pool_compact(st, which, want / 2 < POOL_MAX - want ? want + want / 2 : POOL_MAX);
    size_t cap = p->cap ? p->cap * 2 : 1024;
    if (cap < p->used + extra)
        cap = p->used + extra;
    if (cap > POOL_MAX)
        cap = POOL_MAX;
    void *v = pm_reallocarray(p->v, cap, p->elem);
    if (!v)
        return -1;
    p->v = v;
    p->cap = cap;
    return 0;
}

void pm_store_place(pm_cell_store *st, int which, pm_cell_list *l, uint32_t cap)
{
    pm_pool *p = pool_of(st, which);
    l->off = (uint32_t)p->used;
    l->len = 0;
    l->cap = cap;
    p->used += cap;
    p->live += cap;
}

/* The room a list gets when it must hold need elements and has cap. */
static uint32_t grown_cap(uint32_t cap, uint64_t need)
{
    uint64_t c = (uint64_t)cap * 2;
    if (c < need)
        c = need;
    return c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
}

/* Room the pool needs for list l to take add more elements. */
static size_t append_need(const pm_cell_list *l, uint32_t add)
{
    uint64_t need = (uint64_t)l->len + add;
    return need > l->cap ? grown_cap(l->cap, need) : 0;
}

/* Appends n elements to l, moving it to the end of its pool when full;
 * room reserved with append_need(). */
static void list_append(pm_cell_store *st, int which, pm_cell_list *l, const void *src, uint32_t n)
{
    pm_pool *p = pool_of(st, which);
    if (!n)
        return;
    if ((uint64_t)l->len + n > l->cap) {
        uint32_t cap = grown_cap(l->cap, (uint64_t)l->len + n);
        memcpy(pool_at(p, p->used), pool_at(p, l->off), (size_t)l->len * p->elem);
        l->off = (uint32_t)p->used;
        p->used += cap;
        p->live += cap - l->cap;
        l->cap = cap;
    }
    memcpy(pool_at(p, l->off + l->len), src, (size_t)n * p->elem);
    l->len += n;
}

/* ---- the id set ------------------------------------------------------------ */

void pm_idset_free(pm_idset *s)
{
    pm_free(s->slots);
    memset(s, 0, sizeof *s);
}

/* The hashes a set of ns slots holds at most.  Linear probing stays short
 * up to a load of 7/8 when a probe compares 8 hashes per cache line, and
 * the set is the largest table of a cube (8 bytes a complaint at best). */
static size_t idset_room(size_t ns)
{
    return ns / 8 * 7;
}

/* Puts every hash of src into s (none there yet; room reserved), each
 * slot fetched AHEAD hashes early. */
static void idset_put_all(pm_idset *s, const pm_idset *src)
{
    uint64_t ring[AHEAD];   /* the k-th hash at k % AHEAD */
    size_t k = 0;
    for (size_t i = 0; i < src->nslots; i++) {
        uint64_t h = src->slots[i];
        if (!h)
            continue;
        if (k >= AHEAD)
            pm_idset_put(s, ring[k % AHEAD]);
        ring[k % AHEAD] = h;
        pm_idset_prefetch(s, h);
        k++;
    }
    for (size_t j = k > AHEAD ? k - AHEAD : 0; j < k; j++)
        pm_idset_put(s, ring[j % AHEAD]);
}

int pm_idset_reserve(pm_idset *s, size_t extra)
{
    size_t need = s->n + extra;
    if (s->nslots && need <= idset_room(s->nslots))
        return 0;
    size_t ns = s->nslots ? s->nslots : 64;
    while (need > idset_room(ns))
        ns *= 2;
    uint64_t *slots = pm_calloc(ns, sizeof *slots);
    if (!slots)
        return -1;
    pm_idset old = *s;
    s->slots = slots;
    s->nslots = ns;
    s->n = 0;
    idset_put_all(s, &old);
    pm_free(old.slots);
    return 0;
}

/* Where h's probe starts: its top bits, so that hashes in increasing
 * order (a snapshot's) fill the table front to back, one pass over the
 * memory instead of a cache miss each (nslots > 0, a power of two >= 64). */
size_t pm_idset_home(const pm_idset *s, uint64_t h)
{
    return (size_t)(h >> (64 - __builtin_ctzll((unsigned long long)s->nslots)));
}

/* The slot holding h, or the empty slot where it would go (nslots > 0). */
static size_t idset_slot(const pm_idset *s, uint64_t h)
{
    size_t mask = s->nslots - 1, i = pm_idset_home(s, h);
    while (s->slots[i] && s->slots[i] != h)
        i = (i + 1) & mask;
    return i;
}

int pm_idset_has(const pm_idset *s, uint64_t h)
{
    return s->nslots && s->slots[idset_slot(s, h)];
}

void pm_idset_prefetch(const pm_idset *s, uint64_t h)
{
    if (s->nslots)
        __builtin_prefetch(&s->slots[pm_idset_home(s, h)]);
}

void pm_idset_put(pm_idset *s, uint64_t h)
{
    size_t mask = s->nslots - 1, i = pm_idset_home(s, h);
    while (s->slots[i])
        i = (i + 1) & mask;
    s->slots[i] = h;
    s->n++;
}

void pm_idset_put_ascending(pm_idset *s, uint64_t h, size_t *at)
{
    size_t i = pm_idset_home(s, h);
    if (i < *at)
        i = *at;   /* [home, *at) holds the hashes before h: its probe would pass them */
    if (i >= s->nslots) {
        pm_idset_put(s, h);   /* the run reached the last slot: the probe wraps */
        return;
    }
    s->slots[i] = h;
    s->n++;
    *at = i + 1;
}

/* ---- sorting -------------------------------------------------------------- */

#define RADIX_SORT(NAME, T, BITS)                                              \
    void NAME(T *a, T *tmp, size_t n)                                          \
    {                                                                          \
        if (n < 64) { /* insertion sort */                                     \
            for (size_t i = 1; i < n; i++) {                                   \
                T v = a[i];                                                    \
                size_t j = i;                                                  \
                for (; j > 0 && a[j - 1] > v; j--)                             \
                    a[j] = a[j - 1];                                           \
                a[j] = v;                                                      \
            }                                                                  \
            return;                                                            \
        }                                                                      \
        T *src = a, *dst = tmp;                                                \
        for (int shift = 0; shift < (BITS); shift += 8) {                      \
            size_t cnt[256] = {0};                                             \
            for (size_t i = 0; i < n; i++)                                     \
                cnt[(src[i] >> shift) & 255]++;                                \
            if (cnt[(src[0] >> shift) & 255] == n)                             \
                continue; /* one digit value: the pass changes nothing */      \
            size_t sum = 0;                                                    \
            for (int d = 0; d < 256; d++) {                                    \
                size_t c = cnt[d];                                             \
                cnt[d] = sum;                                                  \
                sum += c;                                                      \
            }                                                                  \
            for (size_t i = 0; i < n; i++)                                     \
                dst[cnt[(src[i] >> shift) & 255]++] = src[i];                  \
            T *t = src;                                                        \
            src = dst;                                                         \
            dst = t;                                                           \
        }                                                                      \
        if (src != a)                                                          \
            memcpy(a, src, n * sizeof *a);                                     \
    }

RADIX_SORT(pm_sort_u32, uint32_t, 32)
RADIX_SORT(pm_sort_u64, uint64_t, 64)

uint32_t pm_select_u32(const uint32_t *a, uint32_t *tmp, size_t n, size_t k)
{
    enum { DIGIT = 11 };   /* bits per round */
    const uint32_t *src = a;
    for (;;) {
        /* the digit: the top DIGIT bits of those that differ between the
         * values (answer delays share most of their high bits) */
        uint32_t lo = src[0], hi = src[0];
        for (size_t i = 1; i < n; i++) {
            lo = src[i] < lo ? src[i] : lo;
            hi = src[i] > hi ? src[i] : hi;
        }
        if (lo == hi)
            return lo;
        int top = 32 - __builtin_clz(lo ^ hi), shift = top > DIGIT ? top - DIGIT : 0;
        uint32_t base = lo >> shift;
        size_t cnt[1u << DIGIT] = {0};
        for (size_t i = 0; i < n; i++)
            cnt[(src[i] >> shift) - base]++;
        uint32_t d = 0;
        while (k >= cnt[d])
            k -= cnt[d++];
        if (shift == 0)
            return base + d;
        size_t m = 0;   /* the values with digit d go to tmp, in place once there */
        for (size_t i = 0; i < n; i++)
            if ((src[i] >> shift) - base == d)
                tmp[m++] = src[i];
        src = tmp;
        n = m;
    }
}

/* ---- new, free, accessors --------------------------------------------------- */

int pm_cube_new(pm_ctx *ctx, const pm_districts *ds, size_t n_topics, const pm_cube_opts *opts,
                pm_cube **out)
{
    pm_cube_opts o = opts ? *opts : (pm_cube_opts){PM_PERIOD_DAY, 0};
    *out = NULL;
    if (!ds || n_topics == 0 || n_topics > (size_t)UINT16_MAX + 1)
        return PM_ERR(ctx, PM_E_USAGE, "a cube needs districts and 1 to 65536 topics (got %zu)",
                      n_topics);
    if ((int)o.period < PM_PERIOD_DAY || o.period > PM_PERIOD_MONTH)
        return PM_ERR(ctx, PM_E_USAGE, "unknown period kind %d", (int)o.period);
    if (o.utc_offset_s < -MAX_OFFSET_S || o.utc_offset_s > MAX_OFFSET_S)
        return PM_ERR(ctx, PM_E_USAGE, "UTC offset %ld s is beyond ±18 h", o.utc_offset_s);
    size_t nd = pm_districts_count(ds);
    if (nd > UINT32_MAX - 1)
        return PM_ERR(ctx, PM_E_USAGE, "too many districts (%zu)", nd);
    pm_cube *c = pm_calloc(1, sizeof *c);
    if (!c)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory making a cube");
    c->ds = ds;
    c->n_districts = nd;
    c->n_topics = n_topics;
    c->opts = o;
    pm_store_init(&c->st);
    c->area_km2 = pm_calloc(nd ? nd : 1, sizeof *c->area_km2);
    int ok = c->area_km2 != NULL;
    for (int k = 0; k < PM_CUBE_NDICT; k++) {
        c->dict[k] = pm_strtab_new();
        ok = ok && c->dict[k];
    }
    if (!ok) {
        pm_cube_free(c);
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory making a cube");
    }
    for (size_t d = 0; d < nd; d++) {
        int rc = pm_geom_area_km2(ctx, pm_district_geom_borrow(ds, d), &c->area_km2[d]);
        if (rc != PM_OK) {
            pm_cube_free(c);
            return PM_ERR(ctx, rc, "district %s: cannot measure its area: %s", pm_district_id(ds, d),
                          pm_ctx_errmsg(ctx));
        }
    }
    *out = c;
    return PM_OK;
}

void pm_cube_free(pm_cube *cube)
{
    if (!cube)
        return;
    pm_free(cube->area_km2);
    for (int k = 0; k < PM_CUBE_NDICT; k++)
        pm_strtab_free(cube->dict[k]);
    pm_cube_unmap(cube);
    pm_store_free(&cube->st);
    pm_idset_free(&cube->ids);
    pm_free(cube);
}

uint64_t pm_cube_total(const pm_cube *cube) { return cube->total; }
uint64_t pm_cube_outside(const pm_cube *cube) { return cube->outside; }
size_t pm_cube_cells(const pm_cube *cube) { return cube->st.n; }
const pm_cube_opts *pm_cube_options(const pm_cube *cube) { return &cube->opts; }

int pm_cube_period_span(const pm_cube *cube, int64_t *first, int64_t *last)
{
    int any = cube->st.n > 0;
    *first = any ? cube->first : 0;
    *last = any ? cube->last : 0;
    return any;
}

double pm_cube_district_area_km2(const pm_cube *cube, size_t district)
{
    return district < cube->n_districts ? cube->area_km2[district] : NAN;
}

static int dict_col_ok(pm_dict_col col) { return (int)col >= 0 && (int)col < PM_CUBE_NDICT; }

size_t pm_cube_dict_count(const pm_cube *cube, pm_dict_col col)
{
    return dict_col_ok(col) ? pm_strtab_count(cube->dict[col]) : 0;
}

const char *pm_cube_dict_str(const pm_cube *cube, pm_dict_col col, uint32_t idx)
{
    if (idx == PM_NONE)
        return "";
    if (!dict_col_ok(col) || idx >= pm_strtab_count(cube->dict[col]))
        return NULL;
    return pm_strtab_str(cube->dict[col], idx);
}

long pm_cube_dict_find(const pm_cube *cube, pm_dict_col col, const char *s)
{
    if (!dict_col_ok(col) || !s)
        return -1;
    return (long)pm_strtab_find(cube->dict[col], s);
}

void pm_cube_recount(pm_cube *cube)
{
    cube->total = 0;
    for (size_t c = 0; c < cube->st.n; c++) {
        const pm_cell *cell = &cube->st.cells[c];
        cube->total += (uint64_t)cell->delays.len + cell->opens.len;
        if (c == 0 || cell->key.period < cube->first)
            cube->first = cell->key.period;
        if (c == 0 || cell->key.period > cube->last)
            cube->last = cell->key.period;
    }
}

/* ---- adding a batch ----------------------------------------------------- */

typedef struct batch {
    pm_cell_store st;      /* the batch's own cells, lists sized exactly */
    pm_idset ids;          /* ids of the complaints taken (placed and outside) */
    uint32_t *map[PM_CUBE_NDICT];   /* batch dictionary index → cube's, or UNMAPPED */
    size_t from, to;       /* the complaints of cs taken so far */
    uint32_t *cell_of;     /* complaint from + k → batch cell (at k), PM_NONE when not entering */
    size_t cell_cap;       /* room in cell_of */
    size_t map_n[PM_CUBE_NDICT];    /* entries in map[k] */
    uint32_t *dest;        /* batch cell → cube cell, PM_NONE when new (in cell_of's room) */
    uint64_t entered, outside;
    int no_ids;            /* the cube keeps no ids: ids stays empty */
} batch;

static void batch_free(batch *b)
{
    pm_store_free(&b->st);
    pm_idset_free(&b->ids);
    for (int k = 0; k < PM_CUBE_NDICT; k++)
        pm_free(b->map[k]);
    pm_free(b->cell_of);
}

/* The range must be placed; its placement must fit the districts and the
 * topics. */
static int batch_check(pm_ctx *ctx, const pm_cube *cube, const pm_complaints *cs,
                       const pm_placed *pl, size_t from, size_t to)
{
    size_t n = pm_complaints_count(cs);
    if (!pl || from > to || to > n || to > pl->n)
        return PM_ERR(ctx, PM_E_USAGE, "complaints %zu to %zu: the placement has %zu, the batch %zu",
                      from, to, pl ? pl->n : 0, n);
    const uint16_t *topic = pm_complaints_topic(cs);
    for (size_t i = from; i < to; i++) {
        int32_t d = pl->district[i];
        if (pl->placement[i] >= PM_PLACE_N || (pm_placement_in_district(pl->placement[i]) && d < 0) ||
            (d >= 0 && (size_t)d >= cube->n_districts))
            return PM_ERR(ctx, PM_E_USAGE, "line %" PRIu64 ": placement %u in district %" PRId32
                          " does not fit %zu districts", pm_complaints_line(cs, i),
                          pl->placement[i], d, cube->n_districts);
        if (topic[i] >= cube->n_topics)
            return PM_ERR(ctx, PM_E_USAGE, "line %" PRIu64 ": topic %u is beyond the %zu topics",
                          pm_complaints_line(cs, i), topic[i], cube->n_topics);
    }
    return PM_OK;
}

/* The cube's index of batch dictionary value idx, interned on first use. */
static int map_dict(pm_cube *cube, batch *b, const pm_complaints *cs, int col, uint32_t idx,
                    uint32_t *out)
{
    if (idx == PM_NONE) {
        *out = PM_NONE;
        return 0;
    }
    if (b->map[col][idx] == UNMAPPED) {
        int64_t k = pm_strtab_intern(cube->dict[col], pm_complaints_dict_str(cs, col, idx), NULL);
        if (k < 0)
            return -1;
        b->map[col][idx] = (uint32_t)k;
    }
    *out = b->map[col][idx];
    return 0;
}

/* Room in b for complaints up to to (cell_of, the id set) and for every
 * dictionary value cs has now (the maps); -1 when out of memory.  With
 * exact, cell_of gets just the room asked; else the room of the batch's
 * columns (a batch still being read makes it once, from its file's size),
 * at least doubling.  The id set grows by doubling as ids come: sized by
 * the columns' room (which has a margin) it could take twice the memory. */
static int batch_grow(const pm_complaints *cs, batch *b, size_t to, int exact)
{
    size_t n = to - b->from;
    if (n > b->cell_cap || !b->cell_of) {
        size_t cap = n;
        if (!exact) {
            cap = pm_complaints_capacity(cs) - b->from;
            cap = cap > 2 * b->cell_cap ? cap : 2 * b->cell_cap;
            cap = cap > n ? cap : n;
        }
        cap = cap ? cap : 1;
        uint32_t *c = pm_reallocarray(b->cell_of, cap, sizeof *c);
        if (!c)
            return -1;
        b->cell_of = c;
        b->cell_cap = cap;
    }
    if (!b->no_ids && pm_idset_reserve(&b->ids, to - b->to) != 0)
        return -1;
    for (int k = 0; k < PM_CUBE_NDICT; k++) {
        size_t m = pm_complaints_dict_count(cs, k);
        if (b->map[k] && m <= b->map_n[k])
            continue;
        uint32_t *mp = pm_reallocarray(b->map[k], m ? m : 1, sizeof *mp);
        if (!mp)
            return -1;
        for (size_t j = b->map_n[k]; j < m; j++)
            mp[j] = UNMAPPED;
        b->map[k] = mp;
        b->map_n[k] = m;
    }
    return 0;
}

static uint32_t delay_s(int64_t created, int64_t answered)
{
    if (answered <= created)
        return 0;
    uint64_t d = (uint64_t)answered - (uint64_t)created;
    return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

/* The columns batch_collect reads. */
typedef struct cols {
    pm_created_column created;
    pm_answered_column answered;
    const uint16_t *topic;
    pm_dict_column dict[PM_CUBE_NDICT];
} cols;

/* What the first pass works out for a complaint some complaints early,
 * so that the memory it will touch is fetched meanwhile. */
typedef struct ahead {
    uint64_t id;         /* id hash */
    int64_t period;      /* valid unless the complaint is skipped */
    int keyed;           /* key and kh valid: placed, period fits, values mapped */
    pm_cell_key key;
    uint64_t kh;         /* key_hash(&key) */
} ahead;

static int skipped(uint8_t p) { return p == PM_PLACE_UNKNOWN_CODE || p == PM_PLACE_REJECTED; }

/* Fills a for complaint i and prefetches its id slots and cell slot.  Has
 * no effect on the batch: a dictionary value not yet mapped leaves the key
 * to collect_one. */
static void look_ahead(const pm_cube *cube, const batch *b, const pm_complaints *cs,
                       const pm_placed *pl, const cols *c, size_t i, ahead *a)
{
    if (!b->no_ids) {
        a->id = pm_id_hash(pm_complaints_id(cs, i));
        pm_idset_prefetch(&cube->ids, a->id);
        pm_idset_prefetch(&b->ids, a->id);
    }
    a->keyed = 0;
    if (skipped(pl->placement[i]))
        return;
    a->period =
        pm_period_of(cube->opts.period, pm_created_at(c->created, i), cube->opts.utc_offset_s);
    if (!pm_placement_in_district(pl->placement[i]) || a->period < INT32_MIN || a->period > INT32_MAX)
        return;
    uint32_t v[PM_CUBE_NDICT];
    for (int k = 0; k < PM_CUBE_NDICT; k++) {
        uint32_t idx = pm_dict_column_at(c->dict[k], i);
        v[k] = idx == PM_NONE ? PM_NONE : b->map[k][idx];
        if (v[k] == UNMAPPED)
            return;
    }
    a->key = (pm_cell_key){.district = (uint32_t)pl->district[i], .topic = c->topic[i],
                           .period = (int32_t)a->period, .source = v[0], .status = v[1],
                           .executor = v[2]};
    a->kh = key_hash(&a->key);
    a->keyed = 1;
    store_prefetch_slot(&b->st, a->kh);
}

/* Complaint i (worked out ahead in a) of the first pass: a duplicate,
 * outside, or counted in its cell. */
static int collect_one(pm_ctx *ctx, pm_cube *cube, const pm_complaints *cs, const pm_placed *pl,
                       const cols *c, size_t i, const ahead *a, pm_cube_reject_fn reject,
                       void *reject_user, batch *b)
{
    b->cell_of[i - b->from] = PM_NONE;
    if (skipped(pl->placement[i]))
        return PM_OK;   /* rejected by the caller; never part of a cube */
    size_t slot = b->no_ids ? 0 : idset_slot(&b->ids, a->id);
    if (!b->no_ids && (pm_idset_has(&cube->ids, a->id) || b->ids.slots[slot]))
        return reject ? reject(reject_user, pm_complaints_line(cs, i), pm_complaints_id(cs, i),
                               "id", "duplicate id (already in the cube)") : 0;
    if (a->period < INT32_MIN || a->period > INT32_MAX)
        return reject ? reject(reject_user, pm_complaints_line(cs, i), pm_complaints_id(cs, i),
                               "created_at", "date out of range") : 0;
    if (!b->no_ids) {
        b->ids.slots[slot] = a->id;
        b->ids.n++;
    }
    if (!pm_placement_in_district(pl->placement[i])) {
        b->outside++;
        return PM_OK;
    }
    pm_cell_key key = a->key;
    uint64_t kh = a->kh;
    if (!a->keyed) {
        key = (pm_cell_key){.district = (uint32_t)pl->district[i], .topic = c->topic[i],
                            .period = (int32_t)a->period};
        uint32_t *val[PM_CUBE_NDICT] = {&key.source, &key.status, &key.executor};
        for (int k = 0; k < PM_CUBE_NDICT; k++)
            if (map_dict(cube, b, cs, k, pm_dict_column_at(c->dict[k], i), val[k]) != 0)
                return PM_ERR(ctx, PM_E_NOMEM, "out of memory adding line %" PRIu64,
                              pm_complaints_line(cs, i));
        kh = key_hash(&key);
    }
    long ci = store_get(&b->st, &key, kh);
    if (ci < 0)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory adding line %" PRIu64,
                      pm_complaints_line(cs, i));
    pm_cell *cell = &b->st.cells[ci];
    int64_t answered = pm_answered_at(c->answered, i);
    if (answered == PM_TIME_NONE)
        cell->opens.len++;
    else {
        cell->delays.len++;
        cell->answered_24h += delay_s(pm_created_at(c->created, i), answered) <= DAY_S;
    }
    b->cell_of[i - b->from] = (uint32_t)ci;
    b->entered++;
    return PM_OK;
}

/* First pass: duplicates, outside ones, and the cell of each entering
 * complaint, with its lists counted (len) but not yet placed.  The id sets
 * and the cells are far larger than the caches, so the pass is a pipeline:
 * complaint i is looked at ahead (hashes; id and cell slots fetched),
 * then, AHEAD / 2 later, its cell is fetched, and AHEAD later it is
 * collected. */
static int batch_collect(pm_ctx *ctx, pm_cube *cube, const pm_complaints *cs, const pm_placed *pl,
                         size_t from, size_t to, pm_cube_reject_fn reject, void *reject_user,
                         batch *b)
{
    size_t n = to - from;
    cols c = {pm_complaints_created(cs), pm_complaints_answered(cs), pm_complaints_topic(cs),
              {{0}}};
    for (int k = 0; k < PM_CUBE_NDICT; k++)
        c.dict[k] = pm_complaints_dict(cs, k);
    ahead ring[AHEAD];   /* complaint from + i at i % AHEAD */
    for (size_t i = 0; i < n + AHEAD; i++) {
        ahead *a = &ring[i % AHEAD];
        if (i >= AHEAD) {
            int rc = collect_one(ctx, cube, cs, pl, &c, from + i - AHEAD, a, reject,
                                 reject_user, b);
            if (rc)
                return rc;
        }
        if (i < n)
            look_ahead(cube, b, cs, pl, &c, from + i, a);
        const ahead *m = &ring[(i - AHEAD / 2) % AHEAD];
        if (i >= AHEAD / 2 && i - AHEAD / 2 < n && m->keyed)
            store_prefetch_cell(&b->st, m->kh);
    }
    return PM_OK;
}

/* Where the next element of a cell's opens (open) or delays list goes. */
static const void *list_end(const pm_cell_store *st, const pm_cell *c, int open)
{
    return open ? (const void *)(pm_store_opens(st, c) + c->opens.len)
                : (const void *)(pm_store_delays(st, c) + c->delays.len);
}

/* Second pass: each batch cell gets lists of exactly its size, filled. */
static int batch_fill(const pm_complaints *cs, batch *b)
{
    size_t nd = 0, no = 0;
    for (size_t c = 0; c < b->st.n; c++) {
        nd += b->st.cells[c].delays.len;
        no += b->st.cells[c].opens.len;
    }
    if (pm_store_reserve_pool(&b->st, 0, nd) != 0 || pm_store_reserve_pool(&b->st, 1, no) != 0)
        return -1;
    for (size_t c = 0; c < b->st.n; c++) {
        pm_cell *cell = &b->st.cells[c];
        pm_store_place(&b->st, 0, &cell->delays, cell->delays.len);
        pm_store_place(&b->st, 1, &cell->opens, cell->opens.len);
    }
    /* cell_of from the range's first complaint on */
    pm_created_column created = pm_complaints_created(cs);
    pm_answered_column answered = pm_complaints_answered(cs);
    size_t n = b->to - b->from;
    for (size_t i = 0; i < n; i++) {
        /* cells and lists are scattered: fetch complaint i + AHEAD's cell,
         * and the list end of complaint i + AHEAD / 2 */
        if (i + AHEAD < n && b->cell_of[i + AHEAD] != PM_NONE)
            __builtin_prefetch(&b->st.cells[b->cell_of[i + AHEAD]]);
        size_t j = i + AHEAD / 2;
        if (j < n && b->cell_of[j] != PM_NONE)
            __builtin_prefetch(
                list_end(&b->st, &b->st.cells[b->cell_of[j]],
                         pm_answered_at(answered, b->from + j) == PM_TIME_NONE), 1);
        if (b->cell_of[i] == PM_NONE)
            continue;
        pm_cell *cell = &b->st.cells[b->cell_of[i]];
        int64_t at = pm_answered_at(answered, b->from + i);
        if (at == PM_TIME_NONE)
            pm_store_opens(&b->st, cell)[cell->opens.len++] = pm_created_at(created, b->from + i);
        else
            pm_store_delays(&b->st, cell)[cell->delays.len++] =
                delay_s(pm_created_at(created, b->from + i), at);
    }
    return 0;
}

/* out[c]: the index in st of the cell with the key of cells[c], or
 * PM_NONE; slots and cells are fetched ahead. */
static void store_find_all(const pm_cell_store *st, const pm_cell *cells, size_t n, uint32_t *out)
{
    uint64_t h[AHEAD];   /* cell c's key hash at c % AHEAD */
    for (size_t i = 0; i < n + AHEAD; i++) {
        if (i >= AHEAD) {
            size_t c = i - AHEAD;
            uint32_t s = st->nslots ? st->slots[slot_at(st, &cells[c].key, h[i % AHEAD])] : 0;
            out[c] = s ? s - 1 : PM_NONE;
        }
        if (i < n) {
            h[i % AHEAD] = key_hash(&cells[i].key);
            store_prefetch_slot(st, h[i % AHEAD]);
        }
        if (i >= AHEAD / 2 && i - AHEAD / 2 < n)
            store_prefetch_cell(st, h[(i - AHEAD / 2) % AHEAD]);
    }
}

/* Reserves in the cube everything the merge of b will need, and finds
 * where each batch cell goes (b->dest). */
static int merge_reserve(pm_ctx *ctx, pm_cube *cube, batch *b)
{
    size_t new_cells = 0, need[2] = {0, 0};
    b->dest = b->cell_of;   /* free since batch_fill, and long enough */
    store_find_all(&cube->st, b->st.cells, b->st.n, b->dest);
    for (size_t c = 0; c < b->st.n; c++) {
        const pm_cell *bc = &b->st.cells[c];
        pm_cell empty = {0};
        pm_cell *cell = b->dest[c] != PM_NONE ? &cube->st.cells[b->dest[c]] : &empty;
        new_cells += b->dest[c] == PM_NONE;
        for (int w = 0; w < 2; w++) {
            const pm_cell_list *l = list_of(cell, w);
            uint32_t add = list_of((pm_cell *)bc, w)->len;
            if ((uint64_t)l->len + add > UINT32_MAX)
                return PM_ERR(ctx, PM_E_USAGE, "a cell of district %s would hold more than "
                              "%" PRIu32 " complaints", pm_district_id(cube->ds, bc->key.district),
                              UINT32_MAX);
            need[w] += append_need(l, add);
        }
    }
    if (pm_store_reserve_cells(&cube->st, new_cells) != 0 ||
        pm_store_reserve_pool(&cube->st, 0, need[0]) != 0 ||
        pm_store_reserve_pool(&cube->st, 1, need[1]) != 0 ||
        pm_idset_reserve(&cube->ids, b->ids.n) != 0)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory adding %zu cells to the cube", b->st.n);
    return PM_OK;
}

/* Merges b into the cube; room reserved, cannot fail. */
static void merge_commit(pm_cube *cube, const batch *b)
{
    int any = cube->st.n > 0;
    for (size_t c = 0; c < b->st.n; c++) {
        const pm_cell *bc = &b->st.cells[c];
        size_t j = b->dest[c] != PM_NONE ? b->dest[c] : pm_store_add_reserved(&cube->st, &bc->key);
        pm_cell *cell = &cube->st.cells[j];
        cell->answered_24h += bc->answered_24h;
        list_append(&cube->st, 0, &cell->delays, pm_store_delays(&b->st, bc), bc->delays.len);
        list_append(&cube->st, 1, &cell->opens, pm_store_opens(&b->st, bc), bc->opens.len);
        int64_t p = bc->key.period;
        cube->first = any && cube->first < p ? cube->first : p;
        cube->last = any && cube->last > p ? cube->last : p;
        any = 1;
    }
    idset_put_all(&cube->ids, &b->ids);
    cube->total += b->entered;
    cube->outside += b->outside;
}

/* An empty cube (no cells, no ids) takes b's cells and ids as they are:
 * its lists already have exactly the caps merge_commit would give them,
 * and nothing is copied or rehashed.  Cannot fail. */
static void adopt(pm_cube *cube, batch *b)
{
    pm_store_free(&cube->st);
    pm_idset_free(&cube->ids);
    cube->st = b->st;
    cube->ids = b->ids;
    pm_store_init(&b->st);
    memset(&b->ids, 0, sizeof b->ids);
    pm_cube_recount(cube);
    cube->outside += b->outside;
}

static int cube_is_empty(const pm_cube *cube) { return cube->st.n == 0 && cube->ids.n == 0; }

int pm_cube_keep_no_ids(pm_ctx *ctx, pm_cube *cube)
{
    if (!cube_is_empty(cube) || cube->took)   /* an outside complaint is in ids too */
        return PM_ERR(ctx, PM_E_USAGE, "only a cube that has taken nothing can keep no ids");
    cube->no_ids = 1;
    return PM_OK;
}

struct pm_cube_adder {
    pm_cube *cube;
    const pm_complaints *cs;
    batch b;
    int failed;          /* a take failed: the adder can only be freed */
};

int pm_cube_adder_new(pm_ctx *ctx, pm_cube *cube, const pm_complaints *cs, size_t from,
                      pm_cube_adder **out)
{
    *out = NULL;
    if (from > pm_complaints_count(cs))
        return PM_ERR(ctx, PM_E_USAGE, "adding from complaint %zu of a batch of %zu", from,
                      pm_complaints_count(cs));
    if (cube->no_ids && cube->took)
        return PM_ERR(ctx, PM_E_USAGE, "the cube keeps no ids: it takes one batch, and has");
    pm_cube_adder *a = pm_calloc(1, sizeof *a);
    if (!a)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory adding to the cube");
    cube->took = cube->no_ids;
    a->cube = cube;
    a->cs = cs;
    a->b.from = a->b.to = from;
    a->b.no_ids = cube->no_ids;
    pm_store_init(&a->b.st);
    *out = a;
    return PM_OK;
}

void pm_cube_adder_free(pm_cube_adder *a)
{
    if (!a)
        return;
    batch_free(&a->b);
    pm_free(a);
}

static int adder_take(pm_ctx *ctx, pm_cube_adder *a, const pm_placed *pl, size_t to,
                      pm_cube_reject_fn reject, void *reject_user, int exact)
{
    batch *b = &a->b;
    if (a->failed)
        return PM_ERR(ctx, PM_E_USAGE, "an earlier block failed to enter the cube");
    int rc = to < b->to ? PM_ERR(ctx, PM_E_USAGE, "complaints up to %zu were taken, not %zu",
                                 b->to, to)
                        : batch_check(ctx, a->cube, a->cs, pl, b->to, to);
    if (rc == PM_OK && batch_grow(a->cs, b, to, exact) != 0)
        rc = PM_ERR(ctx, PM_E_NOMEM, "out of memory adding %zu complaints to the cube",
                    to - b->from);
    if (rc == PM_OK)
        rc = batch_collect(ctx, a->cube, a->cs, pl, b->to, to, reject, reject_user, b);
    if (rc != PM_OK) {
        a->failed = 1;
        return rc;
    }
    b->to = to;
    return PM_OK;
}

int pm_cube_adder_take(pm_ctx *ctx, pm_cube_adder *a, const pm_placed *pl, size_t to,
                       pm_cube_reject_fn reject, void *reject_user)
{
    return adder_take(ctx, a, pl, to, reject, reject_user, 0);
}

int pm_cube_adder_finish(pm_ctx *ctx, pm_cube_adder *a, uint64_t *added)
{
    if (added)
        *added = 0;
    batch *b = &a->b;
    pm_cube *cube = a->cube;
    if (a->failed)
        return PM_ERR(ctx, PM_E_USAGE, "an earlier block failed to enter the cube");
    a->failed = 1;   /* finished: nothing more to take */
    int rc = PM_OK;
    if (pm_idset_reserve(&b->ids, 0) != 0 || batch_fill(a->cs, b) != 0)
        rc = PM_ERR(ctx, PM_E_NOMEM, "out of memory adding %zu complaints to the cube",
                    b->to - b->from);
    int empty = cube_is_empty(cube);
    if (rc == PM_OK && !empty)
        rc = merge_reserve(ctx, cube, b);
    if (rc == PM_OK) {
        if (empty)
            adopt(cube, b);
        else
            merge_commit(cube, b);
        if (added)
            *added = b->entered;
    }
    return rc;
}

int pm_cube_add_range(pm_ctx *ctx, pm_cube *cube, const pm_complaints *cs, const pm_placed *pl,
                      size_t from, size_t to, pm_cube_reject_fn reject, void *reject_user,
                      uint64_t *added)
{
    if (added)
        *added = 0;
    pm_cube_adder *a;
    int rc = pm_cube_adder_new(ctx, cube, cs, from, &a);
    if (rc == PM_OK)
        rc = adder_take(ctx, a, pl, to, reject, reject_user, 1);
    if (rc == PM_OK)
        rc = pm_cube_adder_finish(ctx, a, added);
    pm_cube_adder_free(a);
    return rc;
}

int pm_cube_add(pm_ctx *ctx, pm_cube *cube, const pm_complaints *cs, const pm_placed *pl,
                pm_cube_reject_fn reject, void *reject_user, uint64_t *added)
{
    return pm_cube_add_range(ctx, cube, cs, pl, 0, pm_complaints_count(cs), reject, reject_user,
                             added);
}

/* ---- queries ------------------------------------------------------------ */

/* A validated filter: membership tables (NULL = all) and the ranges. */
typedef struct query {
    const pm_cube *cube;
    pm_level level;
    uint8_t *mem;                      /* one block for the tables below */
    const uint8_t *topic;
    const uint8_t *dict[PM_CUBE_NDICT];   /* index count stands for PM_NONE */
    size_t dict_n[PM_CUBE_NDICT];
    int64_t from, to, prev_from, prev_to;
    int64_t overdue_before;            /* open and created before this: overdue */
    uint64_t min_count, min_sample;
    size_t nkeys;
} query;

/* Per row key, while cells are read. */
typedef struct acc {
    uint64_t count, answered, answered_24h, open, overdue, prev;
    size_t off, fill;     /* this key's answer delays in the gathered buffer */
} acc;

static int set_check(pm_ctx *ctx, const char *what, const uint32_t *v, size_t n, size_t limit)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] != PM_NONE && v[i] >= limit)
            return PM_ERR(ctx, PM_E_USAGE, "unknown %s index %" PRIu32 " (the cube has %zu)", what,
                          v[i], limit);
    return PM_OK;
}

static int query_prepare(pm_ctx *ctx, const pm_cube *cube, pm_level level, const pm_filter *f,
                         query *q)
{
    static const char *const names[PM_CUBE_NDICT] = {"source", "status", "executor"};
    const uint32_t *sets[PM_CUBE_NDICT] = {f->sources, f->statuses, f->executors};
    size_t set_n[PM_CUBE_NDICT] = {f->n_sources, f->n_statuses, f->n_executors};
    memset(q, 0, sizeof *q);
    q->cube = cube;
    q->level = level;
    if ((int)level < PM_LEVEL_DISTRICT || level > PM_LEVEL_TOTAL)
        return PM_ERR(ctx, PM_E_USAGE, "unknown query level %d", (int)level);
    for (size_t i = 0; i < f->n_topics; i++)
        if (f->topics[i] >= cube->n_topics)
            return PM_ERR(ctx, PM_E_USAGE, "unknown topic index %u (the cube has %zu)",
                          f->topics[i], cube->n_topics);
    size_t bytes = f->n_topics ? cube->n_topics : 0;
    for (int k = 0; k < PM_CUBE_NDICT; k++) {
        q->dict_n[k] = pm_strtab_count(cube->dict[k]);
        int rc = set_check(ctx, names[k], sets[k], set_n[k], q->dict_n[k]);
        if (rc != PM_OK)
            return rc;
        bytes += set_n[k] ? q->dict_n[k] + 1 : 0;
    }
    if (f->has_range) {
        if (f->period_from > f->period_to)
            return PM_ERR(ctx, PM_E_USAGE, "empty period range %" PRId64 "..%" PRId64,
                          f->period_from, f->period_to);
        if (f->period_from < -QUERY_PERIOD_MAX || f->period_to > QUERY_PERIOD_MAX)
            return PM_ERR(ctx, PM_E_USAGE, "period range %" PRId64 "..%" PRId64 " is out of bounds",
                          f->period_from, f->period_to);
        q->from = f->period_from;
        q->to = f->period_to;
    } else if (!pm_cube_period_span(cube, &q->from, &q->to)) {
        q->from = q->to = 0;
    }
    int64_t len = q->to - q->from + 1;
    q->prev_from = q->from - len;
    q->prev_to = q->from - 1;
    int64_t report = f->report_time ? f->report_time
                                    : pm_period_start(cube->opts.period, q->to + 1,
                                                      cube->opts.utc_offset_s);
    q->overdue_before = report < INT64_MIN + DAY_S ? INT64_MIN : report - DAY_S;
    q->min_count = f->min_count;
    q->min_sample = f->min_sample ? f->min_sample : DEFAULT_MIN_SAMPLE;
    q->nkeys = level == PM_LEVEL_DISTRICT ? cube->n_districts
             : level == PM_LEVEL_REGION   ? pm_regions_count(cube->ds)
             : level == PM_LEVEL_EXECUTOR ? q->dict_n[PM_DICT_EXECUTOR]
             : level == PM_LEVEL_TOPIC    ? cube->n_topics
                                          : 1;
    if (!bytes)
        return PM_OK;
    q->mem = pm_calloc(bytes, 1);
    if (!q->mem)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory preparing a query");
    uint8_t *p = q->mem;
    if (f->n_topics) {
        for (size_t i = 0; i < f->n_topics; i++)
            p[f->topics[i]] = 1;
        q->topic = p;
        p += cube->n_topics;
    }
    for (int k = 0; k < PM_CUBE_NDICT; k++) {
        if (!set_n[k])
            continue;
        for (size_t i = 0; i < set_n[k]; i++)
            p[sets[k][i] == PM_NONE ? q->dict_n[k] : sets[k][i]] = 1;
        q->dict[k] = p;
        p += q->dict_n[k] + 1;
    }
    return PM_OK;
}

static int cell_matches(const query *q, const pm_cell_key *k)
{
    if (q->topic && !q->topic[k->topic])
        return 0;
    const uint32_t v[PM_CUBE_NDICT] = {k->source, k->status, k->executor};
    for (int c = 0; c < PM_CUBE_NDICT; c++)
        if (q->dict[c] && !q->dict[c][v[c] == PM_NONE ? q->dict_n[c] : v[c]])
            return 0;
    return 1;
}

/* The row key of a cell, or -1 when it has none at this level. */
static long row_key(const query *q, const pm_cell_key *k)
{
    switch (q->level) {
    case PM_LEVEL_DISTRICT: return (long)k->district;
    case PM_LEVEL_REGION: return (long)pm_district_region(q->cube->ds, k->district);
    case PM_LEVEL_EXECUTOR: return k->executor == PM_NONE ? -1 : (long)k->executor;
    case PM_LEVEL_TOPIC: return (long)k->topic;
    case PM_LEVEL_TOTAL: return 0;
    }
    return -1;
}

/* 1: in the range, 2: in the previous range, 0: neither. */
static int cell_range(const query *q, const pm_cell *c)
{
    int64_t p = c->key.period;
    return p >= q->from && p <= q->to ? 1 : p >= q->prev_from && p <= q->prev_to ? 2 : 0;
}

/* Counts per row key; the total of answered complaints in the range. */
static size_t accumulate(const query *q, acc *a)
{
    const pm_cell_store *st = &q->cube->st;
    size_t answered = 0;
    for (size_t c = 0; c < st->n; c++) {
        const pm_cell *cell = &st->cells[c];
        int r = cell_range(q, cell);
        long k = r ? row_key(q, &cell->key) : -1;
        if (k < 0 || !cell_matches(q, &cell->key))
            continue;
        acc *x = &a[k];
        uint64_t count = (uint64_t)cell->delays.len + cell->opens.len;
        if (r == 2) {
            x->prev += count;
            continue;
        }
        x->count += count;
        x->answered += cell->delays.len;
        x->answered_24h += cell->answered_24h;
        x->open += cell->opens.len;
        const int64_t *t = pm_store_opens(st, cell);
        for (uint32_t i = 0; i < cell->opens.len; i++)
            x->overdue += t[i] < q->overdue_before;
        answered += cell->delays.len;
    }
    return answered;
}

/* Copies the delays of the range into buf, grouped by row key; returns the
 * largest group. */
static size_t gather(const query *q, acc *a, uint32_t *buf)
{
    size_t off = 0, largest = 0;
    for (size_t k = 0; k < q->nkeys; k++) {
        a[k].off = off;
        off += a[k].answered;
        largest = a[k].answered > largest ? a[k].answered : largest;
    }
    const pm_cell_store *st = &q->cube->st;
    for (size_t c = 0; c < st->n; c++) {
        const pm_cell *cell = &st->cells[c];
        long k = cell_range(q, cell) == 1 ? row_key(q, &cell->key) : -1;
        if (k < 0 || !cell->delays.len || !cell_matches(q, &cell->key))
            continue;
        memcpy(buf + a[k].off + a[k].fill, pm_store_delays(st, cell),
               cell->delays.len * sizeof *buf);
        a[k].fill += cell->delays.len;
    }
    return largest;
}

/* The nearest-rank p-th percentile (p = num/den) of n delays in seconds:
 * the ceil(p·n)-th smallest, in hours; tmp has room for n. */
static double percentile_h(const uint32_t *delays, uint32_t *tmp, size_t n, unsigned num,
                           unsigned den)
{
    if (!n)
        return NAN;
    size_t rank = (n * num + den - 1) / den;
    return pm_select_u32(delays, tmp, n, rank ? rank - 1 : 0) / 3600.0;
}

/* Area and population of row key k (NAN where the level has none). */
static void key_size(const query *q, size_t k, double *area, double *pop)
{
    const pm_cube *cube = q->cube;
    *area = *pop = NAN;
    if (q->level != PM_LEVEL_DISTRICT && q->level != PM_LEVEL_REGION && q->level != PM_LEVEL_TOTAL)
        return;
    double a = 0, p = 0;
    int has_pop = 0;
    size_t d0 = q->level == PM_LEVEL_DISTRICT ? k : 0;
    size_t d1 = q->level == PM_LEVEL_DISTRICT ? k + 1 : cube->n_districts;
    for (size_t d = d0; d < d1; d++) {
        if (q->level == PM_LEVEL_REGION && pm_district_region(cube->ds, d) != k)
            continue;
        a += cube->area_km2[d];
        double dp = pm_district_population(cube->ds, d);
        if (isfinite(dp)) {
            p += dp;
            has_pop = 1;
        }
    }
    *area = a;
    *pop = has_pop ? p : NAN;
}

static void fill_row(const query *q, pm_row *r, size_t k, const acc *x, const uint32_t *delays,
                     uint32_t *tmp)
{
    memset(r, 0, sizeof *r);
    r->key = k;
    r->count = x->count;
    r->answered = x->answered;
    r->answered_24h = x->answered_24h;
    r->open = x->open;
    r->overdue = x->overdue;
    r->share_24h = x->answered ? (double)x->answered_24h / (double)x->answered : NAN;
    r->median_h = percentile_h(delays, tmp, x->answered, 1, 2);
    r->p90_h = percentile_h(delays, tmp, x->answered, 9, 10);
    r->overdue_share = x->count ? (double)x->overdue / (double)x->count : NAN;
    key_size(q, k, &r->area_km2, &r->population);
    r->per_km2 = r->area_km2 > 0 ? (double)x->count / r->area_km2 : NAN;
    r->per_10k = r->population > 0 ? (double)x->count / r->population * 1e4 : NAN;
    r->eb_per_10k = NAN;
    r->prev_count = x->prev;
    r->change_abs = (double)x->count - (double)x->prev;
    r->change_pct = x->prev ? 100.0 * r->change_abs / (double)x->prev : NAN;
    r->index = NAN;
    r->rank = 0;
    r->suppressed = x->count < q->min_count;
}

/* Marshall's global Empirical-Bayes estimate over the rows with a
 * population (docs/cube.md). */
static void eb_smooth(pm_row *rows, size_t n)
{
    double sc = 0, sp = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (rows[i].population > 0) {
            sc += (double)rows[i].count;
            sp += rows[i].population;
            k++;
        }
    if (!k)
        return;
    double m = sc / sp, pbar = sp / (double)k, s2 = 0;
    for (size_t i = 0; i < n; i++)
        if (rows[i].population > 0) {
            double d = (double)rows[i].count / rows[i].population - m;
            s2 += rows[i].population * d * d;
        }
    s2 /= sp;
    double a = s2 - m / pbar;
    if (a < 0)
        a = 0;
    for (size_t i = 0; i < n; i++) {
        double p = rows[i].population;
        if (!(p > 0))
            continue;
        double den = a + m / p, w = den > 0 ? a / den : 0;
        rows[i].eb_per_10k = (w * ((double)rows[i].count / p) + (1 - w) * m) * 1e4;
    }
}

/* Adds the z-score of x[i] to zsum[i] (and counts it in zn[i]) for every
 * rated row with a finite x; equal values everywhere give 0. */
static void add_zscores(const double *x, const uint8_t *rated, size_t n, double *zsum,
                        unsigned *zn)
{
    double sum = 0, lo = INFINITY, hi = -INFINITY;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (rated[i] && isfinite(x[i])) {
            sum += x[i];
            lo = x[i] < lo ? x[i] : lo;
            hi = x[i] > hi ? x[i] : hi;
            k++;
        }
    if (!k)
        return;
    double mean = sum / (double)k, var = 0;
    for (size_t i = 0; i < n; i++)
        if (rated[i] && isfinite(x[i]))
            var += (x[i] - mean) * (x[i] - mean);
    double sd = sqrt(var / (double)k);
    for (size_t i = 0; i < n; i++)
        if (rated[i] && isfinite(x[i])) {
            zsum[i] += lo == hi ? 0 : (x[i] - mean) / sd;
            zn[i]++;
        }
}

static int rank_cmp(const void *a, const void *b)
{
    const pm_row *x = *(const pm_row *const *)a, *y = *(const pm_row *const *)b;
    if (x->index != y->index)
        return x->index > y->index ? -1 : 1;
    return CMP(x->key, y->key);
}

/* The rating index and rank of the rows with at least min_sample
 * complaints (docs/cube.md). */
static int rate(pm_ctx *ctx, const query *q, pm_row *rows, size_t n)
{
    if (q->level != PM_LEVEL_DISTRICT && q->level != PM_LEVEL_REGION &&
        q->level != PM_LEVEL_EXECUTOR)
        return PM_OK;
    if (!n)
        return PM_OK;
    double *x = pm_calloc(n, 2 * sizeof *x);
    unsigned *zn = pm_calloc(n, sizeof *zn);
    uint8_t *rated = pm_calloc(n, 1);
    const pm_row **order = pm_calloc(n, sizeof *order);
    int rc = PM_OK;
    if (!x || !zn || !rated || !order) {
        rc = PM_ERR(ctx, PM_E_NOMEM, "out of memory rating %zu rows", n);
        goto cleanup;
    }
    double *zsum = x + n;
    for (size_t i = 0; i < n; i++)
        rated[i] = rows[i].count >= q->min_sample;
    if (q->level != PM_LEVEL_EXECUTOR) {
        /* volume: smoothed rate among rows with a population, density among
         * the others — each row compared with rows of its own kind */
        for (size_t i = 0; i < n; i++)
            x[i] = rows[i].population > 0 ? rows[i].eb_per_10k : NAN;
        add_zscores(x, rated, n, zsum, zn);
        for (size_t i = 0; i < n; i++)
            x[i] = rows[i].population > 0 ? NAN : rows[i].per_km2;
        add_zscores(x, rated, n, zsum, zn);
    }
    for (size_t i = 0; i < n; i++)
        x[i] = rows[i].median_h;
    add_zscores(x, rated, n, zsum, zn);
    for (size_t i = 0; i < n; i++)
        x[i] = rows[i].overdue_share;
    add_zscores(x, rated, n, zsum, zn);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (rated[i] && zn[i]) {
            rows[i].index = zsum[i] / zn[i];
            order[k++] = &rows[i];
        }
    qsort(order, k, sizeof *order, rank_cmp);
    for (size_t r = 0; r < k; r++)
        rows[order[r] - rows].rank = (uint32_t)(r + 1);
cleanup:
    pm_free(x);
    pm_free(zn);
    pm_free(rated);
    pm_free(order);
    return rc;
}

/* The rows of a prepared query; a, buf and tmp are its scratch. */
static int query_rows(pm_ctx *ctx, const query *q, acc *a, pm_row **rows, size_t *n)
{
    size_t answered = accumulate(q, a);
    uint32_t *buf = pm_calloc(answered ? answered : 1, sizeof *buf);
    size_t largest = buf ? gather(q, a, buf) : 0;
    uint32_t *tmp = buf ? pm_calloc(largest ? largest : 1, sizeof *tmp) : NULL;
    size_t nrows = 0;
    for (size_t k = 0; k < q->nkeys; k++)
        nrows += q->level != PM_LEVEL_EXECUTOR || a[k].count > 0;
    pm_row *out = tmp ? pm_calloc(nrows ? nrows : 1, sizeof *out) : NULL;
    int rc = PM_OK;
    if (!out) {
        rc = PM_ERR(ctx, PM_E_NOMEM, "out of memory running a query over %zu cells",
                    q->cube->st.n);
        goto cleanup;
    }
    size_t r = 0;
    for (size_t k = 0; k < q->nkeys; k++) {
        if (q->level == PM_LEVEL_EXECUTOR && a[k].count == 0)
            continue;
        fill_row(q, &out[r++], k, &a[k], buf + a[k].off, tmp);
    }
    eb_smooth(out, nrows);
    rc = rate(ctx, q, out, nrows);
    if (rc != PM_OK) {
        pm_free(out);
        goto cleanup;
    }
    *rows = out;
    *n = nrows;
cleanup:
    pm_free(buf);
    pm_free(tmp);
    return rc;
}

int pm_cube_query(pm_ctx *ctx, const pm_cube *cube, pm_level level, const pm_filter *f,
                  pm_row **rows, size_t *n)
{
    static const pm_filter all = {0};
    *rows = NULL;
    *n = 0;
    query q;
    int rc = query_prepare(ctx, cube, level, f ? f : &all, &q);
    if (rc != PM_OK) {
        pm_free(q.mem);
        return rc;
    }
    acc *a = pm_calloc(q.nkeys ? q.nkeys : 1, sizeof *a);
    rc = a ? query_rows(ctx, &q, a, rows, n)
           : PM_ERR(ctx, PM_E_NOMEM, "out of memory running a query over %zu cells", cube->st.n);
    pm_free(q.mem);
    pm_free(a);
    return rc;
}

/* ---- cells ---------------------------------------------------------------- */

int pm_cube_each_cell(const pm_cube *cube, pm_cube_cell_fn fn, void *user)
{
    const pm_cell_store *st = &cube->st;
    for (size_t i = 0; i < st->n; i++) {
        const pm_cell *c = &st->cells[i];
        const pm_cell_key *k = &c->key;
        pm_cube_cell out = {
            .district = k->district, .topic = k->topic, .period = k->period,
            .source = k->source == PM_NONE ? NULL : pm_cube_dict_str(cube, PM_DICT_SOURCE, k->source),
            .status = k->status == PM_NONE ? NULL : pm_cube_dict_str(cube, PM_DICT_STATUS, k->status),
            .executor = k->executor == PM_NONE ? NULL
                                               : pm_cube_dict_str(cube, PM_DICT_EXECUTOR, k->executor),
            .answered = c->delays.len, .answered_24h = c->answered_24h, .open = c->opens.len,
            .delays_s = pm_store_delays(st, c), .open_created = pm_store_opens(st, c)};
        int rc = fn(user, &out);
        if (rc)
            return rc;
    }
    return 0;
}
