/* raster.c — builds the locator's raster fast path (raster_impl.h says
 * what a cell holds and why a lookup is exact).
 *
 * The classification is a quadtree descent, so its cost follows the
 * borders and not the area: a node (a block of cells, a closed rectangle
 * whose corners are grid coordinates) is tested against the districts
 * that met its parent.  Those whose closure it meets (prepared
 * Intersects) are kept; none: the whole node is PM_RASTER_OUT; exactly one
 * that contains it properly (prepared ContainsProperly: the closed node in
 * the interior, no boundary, no hole, no other part inside it): the whole
 * node is that district.  Otherwise the node is halved along its longer
 * side, down to single cells, which keep the list of the districts that
 * met them.  Above the tile size, halves are cut at tile boundaries, so a
 * uniform node fills whole tiles (one code each in `block`); the first
 * node that is one tile and not uniform gets its cells stored.
 *
 * The GEOS predicates are exact (robust orientation tests), and every
 * node's rectangle uses the doubles pm_raster_x()/pm_raster_y() of its
 * cells, so a child's rectangle lies in its parent's and a point in a
 * cell's rectangle lies in every rectangle that was tested for it. */
#include "raster_impl.h"
#include "pm_alloc.h"

#include <math.h>
#include <string.h>

#define DEG (M_PI / 180.0)
/* Cells no smaller than this (about 1 cm), so that rectangles never
 * collapse in rounding. */
#define MIN_CELL_DEG 1e-7

typedef struct builder {
    pm_ctx *ctx;
    const pm_districts *ds;
    const GEOSPreparedGeometry *const *prep;
    size_t n;
    double (*env)[4];          /* per district: x0, y0, x1, y1 */
    int32_t *scratch;          /* one list of n per level of the descent */
    size_t levels;
    size_t last_list;          /* offset of the latest list (to share it) */
    pm_raster *r;
} builder;

void pm_raster_free(pm_raster *r)
{
    if (!r)
        return;
    pm_free(r->block);
    pm_free(r->cell);
    pm_free(r->list);
    pm_free(r);
}

/* Room for need elements of size bytes at p, whose capacity *cap grows
 * by doubling (as locate.c's grow()).  NULL when out of memory (p is
 * then still valid). */
static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return p;
    size_t c = *cap ? *cap : 1024;
    while (c < need) {
        if (c > SIZE_MAX / 2)
            return NULL;
        c *= 2;
    }
    void *q = pm_reallocarray(p, c, size);
    if (q)
        *cap = c;
    return q;
}

/* ---- the grid ----------------------------------------------------------- */

/* The extent of the non-empty districts (each one's kept in b->env) and
 * the length of their boundaries in degrees; *any is 0 when there is none. */
static int extent(builder *b, double *x0, double *y0, double *x1, double *y1, double *len,
                  int *any)
{
    GEOSContextHandle_t h = pm_ctx_geos(b->ctx);
    *x0 = *y0 = INFINITY, *x1 = *y1 = -INFINITY;
    *len = 0.0;
    *any = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (!b->prep[i])
            continue;
        double *e = b->env[i], l;
        const GEOSGeometry *g = pm_district_geom_borrow(b->ds, i);
        if (!GEOSGeom_getExtent_r(h, g, &e[0], &e[1], &e[2], &e[3]) || !GEOSLength_r(h, g, &l))
            return PM_ERR(b->ctx, PM_E_GEOM, "district \"%s\": cannot measure it: %s",
                          pm_district_id(b->ds, i), pm_ctx_geos_msg(b->ctx));
        *len += l;
        *x0 = fmin(*x0, e[0]), *y0 = fmin(*y0, e[1]);
        *x1 = fmax(*x1, e[2]), *y1 = fmax(*y1, e[3]);
        *any = 1;
    }
    return PM_OK;
}

/* Cells about square on the ground (at the extent's middle latitude),
 * side of them along the longer side of the extent, fewer when the
 * boundaries (len degrees long) would cross more than PM_RASTER_BUDGET
 * cells: a cell of s degrees of latitude is crossed by at most
 * sqrt(2) len / s cells' worth of boundary. */
static void grid_size(pm_raster *r, double x0, double y0, double x1, double y1, double len,
                      uint32_t side)
{
    double k = fmax(cos((y0 + y1) / 2 * DEG), 0.05), span = fmax((x1 - x0) * k, y1 - y0);
    double s = fmax(span / side, MIN_CELL_DEG);
    s = fmax(s, fmin(M_SQRT2 * len / PM_RASTER_BUDGET, span / PM_RASTER_MIN_SIDE));
    r->ext[0] = x0, r->ext[1] = y0, r->ext[2] = x1, r->ext[3] = y1;
    r->x0 = x0, r->y0 = y0;
    r->dy = s, r->dx = s / k;
    r->inv_dx = 1.0 / r->dx, r->inv_dy = 1.0 / r->dy;
    r->nx = (uint32_t)fmax(ceil((x1 - x0) / r->dx), 1.0);
    r->ny = (uint32_t)fmax(ceil((y1 - y0) / r->dy), 1.0);
    while (pm_raster_x(r, r->nx) < x1)   /* rounding: the grid must cover the extent */
        r->nx++;
    while (pm_raster_y(r, r->ny) < y1)
        r->ny++;
    r->bx = (r->nx + PM_RASTER_TILE - 1) >> PM_RASTER_TILE_BITS;
    r->by = (r->ny + PM_RASTER_TILE - 1) >> PM_RASTER_TILE_BITS;
}

static size_t ceil_log2(size_t v)
{
    size_t k = 0;
    while (((size_t)1 << k) < v)
        k++;
    return k;
}

/* ---- classification -------------------------------------------------------- */

typedef struct node {
    uint32_t i0, j0, i1, j1;   /* cells [i0, i1) x [j0, j1) */
} node;

/* The districts of cand whose closure meets the node's rectangle, into
 * hit (ascending as cand); *inside when there is exactly one and it
 * contains the rectangle properly. */
static int meeting(builder *b, const node *nd, const int32_t *cand, size_t nc, int32_t *hit,
                   size_t *nh, int *inside)
{
    GEOSContextHandle_t h = pm_ctx_geos(b->ctx);
    const pm_raster *r = b->r;
    double x0 = pm_raster_x(r, nd->i0), x1 = pm_raster_x(r, nd->i1);
    double y0 = pm_raster_y(r, nd->j0), y1 = pm_raster_y(r, nd->j1);
    *nh = 0;
    *inside = 0;
    GEOSGeometry *rect = NULL;
    int rc = PM_OK;
    for (size_t k = 0; k < nc && !rc; k++) {
        const double *e = b->env[cand[k]];
        if (e[0] > x1 || e[2] < x0 || e[1] > y1 || e[3] < y0)
            continue;
        if (!rect && !(rect = GEOSGeom_createRectangle_r(h, x0, y0, x1, y1)))
            return PM_ERR(b->ctx, PM_E_GEOM, "cannot build a raster cell (%.9g, %.9g, %.9g, "
                          "%.9g): %s", x0, y0, x1, y1, pm_ctx_geos_msg(b->ctx));
        char m = GEOSPreparedIntersects_r(h, b->prep[cand[k]], rect);
        if (m == 1)
            hit[(*nh)++] = cand[k];
        else if (m == 2)
            rc = PM_ERR(b->ctx, PM_E_GEOM, "district \"%s\": raster cell test failed: %s",
                        pm_district_id(b->ds, (size_t)cand[k]), pm_ctx_geos_msg(b->ctx));
    }
    if (!rc && *nh == 1) {
        char c = GEOSPreparedContainsProperly_r(h, b->prep[hit[0]], rect);
        if (c == 2)
            rc = PM_ERR(b->ctx, PM_E_GEOM, "district \"%s\": raster cell test failed: %s",
                        pm_district_id(b->ds, (size_t)hit[0]), pm_ctx_geos_msg(b->ctx));
        *inside = c == 1;
    }
    if (rect)
        GEOSGeom_destroy_r(h, rect);
    return rc;
}

static int32_t *tile_cells(const pm_raster *r, size_t tile)
{
    return r->cell + (tile << (2 * PM_RASTER_TILE_BITS));
}

/* Gives every cell of the node the code: whole tiles in `block` above the
 * tile level (tile == SIZE_MAX), else cells of the tile. */
static void fill(builder *b, const node *nd, size_t tile, int32_t code)
{
    pm_raster *r = b->r;
    size_t cells = (size_t)(nd->i1 - nd->i0) * (nd->j1 - nd->j0);
    if (code >= 0)
        r->stats.cells_inside += cells;
    else if (code == PM_RASTER_OUT)
        r->stats.cells_out += cells;
    else
        r->stats.cells_mixed += cells;
    if (tile == SIZE_MAX) {
        uint32_t ti1 = (nd->i1 + PM_RASTER_TILE - 1) >> PM_RASTER_TILE_BITS;
        uint32_t tj1 = (nd->j1 + PM_RASTER_TILE - 1) >> PM_RASTER_TILE_BITS;
        for (uint32_t tj = nd->j0 >> PM_RASTER_TILE_BITS; tj < tj1; tj++)
            for (uint32_t ti = nd->i0 >> PM_RASTER_TILE_BITS; ti < ti1; ti++)
                r->block[(size_t)tj * r->bx + ti] = code;
        return;
    }
    int32_t *c = tile_cells(r, tile);
    for (uint32_t j = nd->j0; j < nd->j1; j++) {
        int32_t *row = c + ((j & PM_RASTER_TILE_MASK) << PM_RASTER_TILE_BITS);
        for (uint32_t i = nd->i0; i < nd->i1; i++)
            row[i & PM_RASTER_TILE_MASK] = code;
    }
}

/* The code of a candidate list (shared with the previous cell when equal). */
static int list_code(builder *b, const int32_t *hit, size_t nh, int32_t *code)
{
    pm_raster *r = b->r;
    if (r->n_list > 0 && (size_t)r->list[b->last_list] == nh &&
        memcmp(r->list + b->last_list + 1, hit, nh * sizeof *hit) == 0) {
        *code = PM_RASTER_LIST0 - (int32_t)b->last_list;
        return PM_OK;
    }
    if (r->n_list + nh + 1 > (size_t)INT32_MAX + PM_RASTER_LIST0) {
        *code = PM_RASTER_EXACT;   /* the pool is full: such cells take the exact path */
        return PM_OK;
    }
    int32_t *l = grow(r->list, &r->cap_list, r->n_list + nh + 1, sizeof *l);
    if (!l)
        return PM_ERR(b->ctx, PM_E_NOMEM, "out of memory building the raster's cell lists");
    r->list = l;
    b->last_list = r->n_list;
    r->list[r->n_list++] = (int32_t)nh;
    memcpy(r->list + r->n_list, hit, nh * sizeof *hit);
    r->n_list += nh;
    *code = PM_RASTER_LIST0 - (int32_t)b->last_list;
    return PM_OK;
}

/* A new tile for the block at cell (i, j), its cells PM_RASTER_OUT. */
static int tile_new(builder *b, uint32_t i, uint32_t j, size_t *tile)
{
    pm_raster *r = b->r;
    size_t per = (size_t)1 << (2 * PM_RASTER_TILE_BITS);
    if (r->n_tiles >= (size_t)INT32_MAX - 2)
        return PM_ERR(b->ctx, PM_E_USAGE, "the raster has too many tiles");
    int32_t *cells = grow(r->cell, &r->cap_cells, (r->n_tiles + 1) * per, sizeof *cells);
    if (!cells)
        return PM_ERR(b->ctx, PM_E_NOMEM, "out of memory building the raster's tiles");
    r->cell = cells;
    *tile = r->n_tiles++;
    int32_t *c = tile_cells(r, *tile);
    for (size_t k = 0; k < per; k++)
        c[k] = PM_RASTER_OUT;
    r->block[(size_t)(j >> PM_RASTER_TILE_BITS) * r->bx + (i >> PM_RASTER_TILE_BITS)] =
        -2 - (int32_t)*tile;
    return PM_OK;
}

/* Where to halve a node: above the tile level at a tile boundary, along
 * the side with more tiles; within a tile along the longer side. */
static void split(const node *nd, size_t tile, node *a, node *c)
{
    uint32_t w = nd->i1 - nd->i0, hgt = nd->j1 - nd->j0;
    *a = *c = *nd;
    if (tile == SIZE_MAX) {
        uint32_t tw = (w + PM_RASTER_TILE - 1) >> PM_RASTER_TILE_BITS;
        uint32_t th = (hgt + PM_RASTER_TILE - 1) >> PM_RASTER_TILE_BITS;
        if (tw >= th)
            a->i1 = c->i0 = nd->i0 + ((tw + 1) / 2 << PM_RASTER_TILE_BITS);
        else
            a->j1 = c->j0 = nd->j0 + ((th + 1) / 2 << PM_RASTER_TILE_BITS);
    } else if (w >= hgt) {
        a->i1 = c->i0 = nd->i0 + w / 2;
    } else {
        a->j1 = c->j0 = nd->j0 + hgt / 2;
    }
}

static int classify(builder *b, const node *nd, const int32_t *cand, size_t nc, size_t level,
                    size_t tile)
{
    int32_t *hit = b->scratch + level * b->n;
    size_t nh;
    int inside;
    int rc = meeting(b, nd, cand, nc, hit, &nh, &inside);
    if (rc)
        return rc;
    if (nh == 0 || inside) {
        fill(b, nd, tile, nh == 0 ? PM_RASTER_OUT : hit[0]);
        return PM_OK;
    }
    uint32_t w = nd->i1 - nd->i0, hgt = nd->j1 - nd->j0;
    if (w == 1 && hgt == 1) {
        int32_t code = PM_RASTER_EXACT;
        rc = list_code(b, hit, nh, &code);
        if (!rc)
            fill(b, nd, tile, code);
        return rc;
    }
    if (tile == SIZE_MAX && w <= PM_RASTER_TILE && hgt <= PM_RASTER_TILE) {
        rc = tile_new(b, nd->i0, nd->j0, &tile);
        if (rc)
            return rc;
    }
    if (level + 1 >= b->levels)   /* cannot happen: levels covers every halving */
        return PM_ERR(b->ctx, PM_E_USAGE, "raster descent too deep");
    node a, c;
    split(nd, tile, &a, &c);
    rc = classify(b, &a, hit, nh, level + 1, tile);
    return rc ? rc : classify(b, &c, hit, nh, level + 1, tile);
}

/* ---- building ------------------------------------------------------------- */

static int build(builder *b, uint32_t side, pm_raster **out)
{
    double x0, y0, x1, y1, len;
    int any;
    int rc = extent(b, &x0, &y0, &x1, &y1, &len, &any);
    if (rc || !any || !(x1 > x0) || !(y1 > y0))
        return rc;   /* nothing to grid: *out stays NULL */
    pm_raster *r = b->r = pm_calloc(1, sizeof *r);
    if (!r)
        return PM_ERR(b->ctx, PM_E_NOMEM, "out of memory building the raster");
    grid_size(r, x0, y0, x1, y1, len, side);
    b->levels = ceil_log2(r->bx) + ceil_log2(r->by) + 2 * PM_RASTER_TILE_BITS + 2;
    r->block = pm_calloc((size_t)r->bx * r->by, sizeof *r->block);
    b->scratch = pm_calloc(b->levels + 1, b->n * sizeof *b->scratch);
    int32_t *all = pm_calloc(b->n, sizeof *all);
    if (!r->block || !b->scratch || !all) {
        pm_free(all);
        pm_raster_free(r);
        return PM_ERR(b->ctx, PM_E_NOMEM, "out of memory building the raster");
    }
    size_t na = 0;
    for (size_t i = 0; i < b->n; i++)
        if (b->prep[i])
            all[na++] = (int32_t)i;
    node root = {0, 0, r->nx, r->ny};
    rc = classify(b, &root, all, na, 0, SIZE_MAX);
    pm_free(all);
    if (rc) {
        pm_raster_free(r);
        return rc;
    }
    r->stats.tiles = r->n_tiles;
    r->stats.bytes =
        sizeof *r + ((size_t)r->bx * r->by + r->cap_cells + r->cap_list) * sizeof(int32_t);
    *out = r;
    return PM_OK;
}

int pm_raster_new(pm_ctx *ctx, const pm_districts *ds, const GEOSPreparedGeometry *const *prep,
                  uint32_t side, pm_raster **out)
{
    *out = NULL;
    builder b = {.ctx = ctx, .ds = ds, .prep = prep, .n = pm_districts_count(ds)};
    if (b.n == 0)
        return PM_OK;
    b.env = pm_calloc(b.n, sizeof *b.env);
    if (!b.env)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory building the raster");
    int rc = build(&b, side ? side : 1, out);
    pm_free(b.scratch);
    pm_free(b.env);
    return rc;
}
