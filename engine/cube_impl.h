/* cube_impl.h — internal: the structure of a pm_cube, shared by cube.c
 * (building, adding, querying) and cube_io.c (the snapshot).
 *
 * Cells live in one growable array, found through an open-addressing map
 * from key to cell index.  A cell's two lists (answer delays, open
 * creation times) are segments of two shared pools: a segment that fills
 * up moves to the end of its pool with twice the room, so appending is
 * O(1) amortised and there is one allocation per pool, not per cell or per
 * complaint.  The space a move leaves behind is reclaimed by compacting
 * the pool when it is mostly garbage.  Lists are kept unsorted; queries
 * and the snapshot sort copies.
 *
 * The ids of the complaints the cube has seen are kept as 64-bit hashes
 * in an open-addressing set (0 marks an empty slot; load at most 7/8). */
#ifndef PM_CUBE_IMPL_H
#define PM_CUBE_IMPL_H

#include "pm_cube.h"
#include "strtab.h"

#include <stddef.h>
#include <stdint.h>

/* The cube keeps dictionaries for the first three columns of pm_dict_col:
 * source, status, executor. */
#define PM_CUBE_NDICT 3

/* Fields ordered for size (24 bytes); the sort order is pm_cell_key_cmp's:
 * district, topic, period, source, status, executor. */
typedef struct pm_cell_key {
    uint32_t district;
    int32_t period;      /* complaints whose period does not fit are rejected */
    uint32_t source, status, executor;   /* cube dictionary index or PM_NONE */
    uint16_t topic;
} pm_cell_key;

/* A segment of a pool; pools hold at most UINT32_MAX elements. */
typedef struct pm_cell_list {
    uint32_t off;        /* first element in the pool */
    uint32_t len, cap;
} pm_cell_list;

typedef struct pm_cell {   /* 52 bytes */
    pm_cell_key key;
    uint32_t answered_24h;
    pm_cell_list delays;   /* answer delays, seconds (uint32) */
    pm_cell_list opens;    /* creation times of open complaints (int64) */
} pm_cell;

typedef struct pm_pool {
    void *v;
    size_t elem;         /* element size */
    size_t used, cap;    /* elements */
    size_t live;         /* elements reserved by live segments (their cap) */
} pm_pool;

typedef struct pm_cell_store {
    pm_cell *cells;
    size_t n, cap;
    uint32_t *slots;     /* cell index + 1; 0 = empty; nslots is a power of two */
    size_t nslots;
    pm_pool delays, opens;
} pm_cell_store;

typedef struct pm_idset {
    uint64_t *slots;     /* hash; 0 = empty */
    size_t nslots, n;
} pm_idset;

struct pm_cube {
    const pm_districts *ds;
    size_t n_districts, n_topics;
    pm_cube_opts opts;
    double *area_km2;
    pm_strtab *dict[PM_CUBE_NDICT];
    pm_cell_store st;
    pm_idset ids;
    uint64_t total, outside;
    int64_t first, last;   /* period span of the cells (valid when st.n > 0) */
    int no_ids;            /* pm_cube_keep_no_ids: ids is empty, one batch only */
    int took;              /* with no_ids: its batch has begun */
    const unsigned char *map;   /* a snapshot mapped for queries: the lists' pools point
                                 * into it (pm_cube_unmap); NULL otherwise */
    size_t map_size;
    int map_borrowed;           /* the mapping is the caller's (pm_cube_read_query_only_region):
                                 * never unmapped here */
};

/* Store: cells and their pools.  Functions returning int give 0 or -1
 * (out of memory); nothing changes on failure. */
void pm_store_init(pm_cell_store *st);
void pm_store_free(pm_cell_store *st);
/* Room for extra more cells without allocating. */
int pm_store_reserve_cells(pm_cell_store *st, size_t extra);
/* The same without the key map that finding a cell by its key needs: for
 * a cube read only to be queried, which never adds (its cells come
 * sorted, with no duplicate key).  A later pm_store_reserve_cells() builds
 * the map over every cell. */
int pm_store_reserve_unmapped(pm_cell_store *st, size_t extra);
/* Index of the new cell with key k (empty lists), put in the key map when
 * there is one; the key must be absent and room reserved. */
size_t pm_store_add_reserved(pm_cell_store *st, const pm_cell_key *k);
/* Room for extra more elements in the delays (which 0) or opens (1) pool. */
int pm_store_reserve_pool(pm_cell_store *st, int which, size_t extra);
/* Gives list l (empty, cap 0) a segment of exactly cap elements; room must
 * be reserved. */
void pm_store_place(pm_cell_store *st, int which, pm_cell_list *l, uint32_t cap);
static inline uint32_t *pm_store_delays(const pm_cell_store *st, const pm_cell *c)
{
    return st->delays.v ? (uint32_t *)st->delays.v + c->delays.off : NULL;
}
static inline int64_t *pm_store_opens(const pm_cell_store *st, const pm_cell *c)
{
    return st->opens.v ? (int64_t *)st->opens.v + c->opens.off : NULL;
}

int pm_cell_key_cmp(const pm_cell_key *a, const pm_cell_key *b);

/* Id set. */
void pm_idset_free(pm_idset *s);
int pm_idset_reserve(pm_idset *s, size_t extra);
int pm_idset_has(const pm_idset *s, uint64_t h);
/* Asks the cache for h's first slot (a hint; nothing changes). */
void pm_idset_prefetch(const pm_idset *s, uint64_t h);
/* The slot where h's probe starts: its top bits (nslots > 0).  A hash lies
 * at or after its home, wrapping past the last slot to the first. */
size_t pm_idset_home(const pm_idset *s, uint64_t h);
/* Adds h (not present; room reserved). */
void pm_idset_put(pm_idset *s, uint64_t h);
/* The same for hashes in increasing order into a set that was empty before
 * the first of them (*at = 0 then): each goes where pm_idset_put() would
 * put it, found without a probe — after the last one, or at its home. */
void pm_idset_put_ascending(pm_idset *s, uint64_t h, size_t *at);
/* The hash the cube keeps for a complaint id (never 0). */
uint64_t pm_id_hash(const char *id);

/* Exact sorts (LSD radix); tmp has room for n elements. */
void pm_sort_u32(uint32_t *a, uint32_t *tmp, size_t n);
void pm_sort_u64(uint64_t *a, uint64_t *tmp, size_t n);
/* The k-th smallest (from 0; k < n) of a's n values, found digit by digit
 * (MSD radix over the bits where the values differ, eleven at a time: a
 * counting pass, then the same over the values that share the digit
 * found); a is left alone, tmp has room for n. */
uint32_t pm_select_u32(const uint32_t *a, uint32_t *tmp, size_t n, size_t k);

/* Releases the snapshot mapping a cube read for queries keeps (nothing
 * when it keeps none); pm_cube_free() calls it first. */
void pm_cube_unmap(pm_cube *cube);

/* Recomputes total and the period span from the cells. */
void pm_cube_recount(pm_cube *cube);

#endif
