/* cells.c — grid tiles (pm_choro.h): the points counted in equal-area
 * square cells of a Lambert azimuthal equal-area plane, classed and drawn
 * on the XYZ tiles (choro_impl.h).
 *
 * Counting.  The points that pass the filter (pm_points_pass(), the heat
 * map's own test) are taken from the grid's plane to the LAEA plane by one
 * PROJ operation (EPSG:3857 or 3395 → +proj=laea on WGS84), in batches,
 * and counted (their weights summed) in cell (⌊x/cell⌋, ⌊y/cell⌋).  The
 * non-empty cells are kept sorted by row then column (one 64-bit key), so
 * the cells of a range of rows and columns are binary searches away.
 *
 * PROJ.  The operations are resolved once, with the database, when the
 * cells are built; what is kept is their PROJ string, which a tile or a
 * lookup instantiates in its own thread's PROJ context in microseconds.
 *
 * A tile.  Its LAEA box is the box of its edges, densified and projected,
 * grown by a cell (conservative: the image of the tile's interior is
 * bounded by the image of its edges; the tiles of zooms 0–2, whose edges
 * are meridians far from the centre, take every cell).  Each cell is its
 * four sides, SIDE_STEPS points each (one, its corners, while a cell is
 * under DENSE_MIN_PX pixels at the zoom's smallest scale, where a side's
 * bend is far below a pixel: the same choice for every tile of a zoom),
 * taken back to the grid: neighbours compute their shared side from the
 * same numbers, so they meet exactly.
 * The fills are drawn without antialiasing (pixel centres decide: no
 * seam between cells, no overlap), at FILL_ALPHA; when a cell is at least
 * OUTLINE_MIN_PX wide, a light antialiased outline goes over the fills. */
#include "choro_impl.h"
#include "../engine/pm_alloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_CELL_M 100.0
#define MAX_CELL_M 1.0e6
#define KEY_OFFSET 2147483648.0     /* 2^31: cell indexes as unsigned */
#define BATCH 4096                  /* points or cells per PROJ call */
#define SIDE_STEPS 8
#define OUTLINE_POINTS (4 * SIDE_STEPS)
#define DENSE_MIN_PX 16.0
#define EDGE_STEPS 16               /* per tile edge, for the tile's LAEA box */
#define ALL_CELLS_ZOOM 2
#define FILL_ALPHA 0.8
#define OUTLINE_RGB 0xffffffu
#define OUTLINE_ALPHA 0.5
#define OUTLINE_PX 0.75
#define OUTLINE_MIN_PX 6.0

struct pm_cells {
    pm_grid grid;
    double cell_m;
    char *grid_to_laea;      /* PROJ strings (see the file comment) */
    char *lonlat_to_laea;
    size_t n;
    uint64_t *key;           /* row + 2^31 in the high half, column + 2^31 in the low */
    double *count;
    double total;
    pm_classes classes;
};

/* ---- keys ------------------------------------------------------------------ */

/* The cell of LAEA point (x, y); 0 when it has none (not finite, or beyond
 * the 32-bit indexes). */
static int cell_of(double cell_m, double x, double y, int64_t *ix, int64_t *iy)
{
    double fx = floor(x / cell_m), fy = floor(y / cell_m);
    if (!(fabs(fx) < KEY_OFFSET - 1 && fabs(fy) < KEY_OFFSET - 1))
        return 0;
    *ix = (int64_t)fx;
    *iy = (int64_t)fy;
    return 1;
}

static uint64_t key_of(int64_t ix, int64_t iy)
{
    return (uint64_t)(iy + (int64_t)KEY_OFFSET) << 32 | (uint64_t)(ix + (int64_t)KEY_OFFSET);
}

static int64_t key_ix(uint64_t k) { return (int64_t)(k & 0xffffffffu) - (int64_t)KEY_OFFSET; }
static int64_t key_iy(uint64_t k) { return (int64_t)(k >> 32) - (int64_t)KEY_OFFSET; }

/* The first cell with key >= k. */
static size_t lower_bound(const pm_cells *c, uint64_t k)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->key[mid] < k)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- PROJ ------------------------------------------------------------------ */

/* The PROJ string of from → the LAEA plane at lon0, lat0 (pm_strdup). */
static int resolve(pm_ctx *ctx, const char *from, double lon0, double lat0, char **out)
{
    char laea[160];
    snprintf(laea, sizeof laea,
             "+proj=laea +lat_0=%.10g +lon_0=%.10g +x_0=0 +y_0=0 +ellps=WGS84 +units=m +type=crs",
             lat0, lon0);
    PJ_CONTEXT *pc = pm_ctx_proj(ctx);
    PJ *op = proj_create_crs_to_crs(pc, from, laea, NULL);
    PJ *pj = op ? proj_normalize_for_visualization(pc, op) : NULL;
    proj_destroy(op);
    if (!pj)
        return PM_ERR(ctx, PM_E_CRS, "grid cells: no transformation %s -> %s: %s", from, laea,
                      pm_ctx_proj_msg(ctx));
    PJ_PROJ_INFO info = proj_pj_info(pj);
    *out = info.definition ? pm_strdup(info.definition) : NULL;
    proj_destroy(pj);
    if (!info.definition)
        return PM_ERR(ctx, PM_E_CRS, "grid cells: PROJ gave no definition for %s -> %s", from,
                      laea);
    return *out ? PM_OK : PM_ERR(ctx, PM_E_NOMEM, "out of memory for a PROJ string");
}

static PJ *instantiate(pm_ctx *ctx, const char *def)
{
    PJ *pj = proj_create(pm_ctx_proj(ctx), def);
    if (!pj)
        PM_ERR(ctx, PM_E_CRS, "grid cells: PROJ cannot create \"%s\": %s", def,
               pm_ctx_proj_msg(ctx));
    return pj;
}

/* ---- counting --------------------------------------------------------------- */

typedef struct entry {
    uint64_t key;
    double w;
} entry;

static int cmp_entry(const void *a, const void *b)
{
    uint64_t x = ((const entry *)a)->key, y = ((const entry *)b)->key;
    return (x > y) - (x < y);
}

/* The (cell, weight) of every passing point, in *e (*n of them). */
static int point_entries(pm_ctx *ctx, pm_cells *c, const pm_points *p, const uint8_t *pass,
                         size_t n_pass, entry **e, size_t *n)
{
    *n = 0;
    *e = pm_calloc(n_pass ? n_pass : 1, sizeof **e);
    double *xy = pm_calloc(2 * BATCH, sizeof *xy);
    double *w = pm_calloc(BATCH, sizeof *w);
    PJ *pj = NULL;
    int st = PM_OK;
    if (!*e || !xy || !w)
        st = PM_ERR(ctx, PM_E_NOMEM, "out of memory counting %zu points in cells", n_pass);
    else if (!(pj = instantiate(ctx, c->grid_to_laea)))
        st = PM_E_CRS;
    size_t lost = 0;
    for (size_t i = 0; !st && i < p->n;) {
        size_t m = 0;
        for (; i < p->n && m < BATCH; i++)
            if (!pass || pass[i]) {
                xy[2 * m] = p->x_m[i];
                xy[2 * m + 1] = p->y_m[i];
                w[m++] = pm_points_weight(p, i);
            }
        proj_trans_generic(pj, PJ_FWD, xy, 2 * sizeof *xy, m, xy + 1, 2 * sizeof *xy, m, NULL, 0,
                           0, NULL, 0, 0);
        for (size_t k = 0; k < m; k++) {
            int64_t ix, iy;
            if (cell_of(c->cell_m, xy[2 * k], xy[2 * k + 1], &ix, &iy))
                (*e)[(*n)++] = (entry){key_of(ix, iy), w[k]};
            else
                lost++;
        }
    }
    if (lost)
        pm_ctx_log(ctx, PM_LOG_WARN,
                   "grid cells: %zu points cannot be projected to the cells' plane and are "
                   "left out", lost);
    proj_destroy(pj);
    pm_free(xy);
    pm_free(w);
    return st;
}

/* Sorts the entries and sums them per cell into c. */
static int make_cells(pm_ctx *ctx, pm_cells *c, entry *e, size_t n)
{
    qsort(e, n, sizeof *e, cmp_entry);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += i == 0 || e[i].key != e[i - 1].key;
    c->key = pm_calloc(m ? m : 1, sizeof *c->key);
    c->count = pm_calloc(m ? m : 1, sizeof *c->count);
    if (!c->key || !c->count)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory for %zu grid cells", m);
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || e[i].key != e[i - 1].key)
            c->key[c->n++] = e[i].key;
        c->count[c->n - 1] += e[i].w;
        c->total += e[i].w;
    }
    return pm_classes_quantile(ctx, c->count, c->n, &c->classes);
}

static int check_args(pm_ctx *ctx, const pm_points *pts, double lon0, double lat0, double cell_m)
{
    if (!pts)
        return PM_ERR(ctx, PM_E_USAGE, "grid cells: no points");
    if (!(cell_m >= MIN_CELL_M && cell_m <= MAX_CELL_M))
        return PM_ERR(ctx, PM_E_USAGE, "grid cells: a cell of %g m is not %g .. %g m", cell_m,
                      MIN_CELL_M, MAX_CELL_M);
    if (!(fabs(lon0) <= 180 && fabs(lat0) <= 90))
        return PM_ERR(ctx, PM_E_USAGE, "grid cells: centre %g, %g is not a longitude, latitude",
                      lon0, lat0);
    return PM_OK;
}

int pm_cells_new(pm_ctx *ctx, const pm_points *pts, const pm_heat_filter *f, double centre_lon,
                 double centre_lat, double cell_m, pm_cells **out)
{
    *out = NULL;
    int st = check_args(ctx, pts, centre_lon, centre_lat, cell_m);
    if (st)
        return st;
    pm_cells *c = pm_calloc(1, sizeof *c);
    if (!c)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory for grid cells");
    c->grid = pts->grid;
    c->cell_m = cell_m;
    uint8_t *pass = NULL;
    size_t n_pass = 0, n = 0;
    entry *e = NULL;
    st = resolve(ctx, pm_grid_crs(c->grid), centre_lon, centre_lat, &c->grid_to_laea);
    if (!st)
        st = resolve(ctx, "EPSG:4326", centre_lon, centre_lat, &c->lonlat_to_laea);
    if (!st)
        st = pm_points_pass(ctx, pts, f, &pass, &n_pass);
    if (!st)
        st = point_entries(ctx, c, pts, pass, n_pass, &e, &n);
    if (!st)
        st = make_cells(ctx, c, e, n);
    pm_free(e);
    pm_free(pass);
    if (st) {
        pm_cells_free(c);
        return st;
    }
    *out = c;
    return PM_OK;
}

void pm_cells_free(pm_cells *c)
{
    if (!c)
        return;
    pm_free(c->grid_to_laea);
    pm_free(c->lonlat_to_laea);
    pm_free(c->key);
    pm_free(c->count);
    pm_free(c);
}

size_t pm_cells_count(const pm_cells *c) { return c->n; }
double pm_cells_total(const pm_cells *c) { return c->total; }
const pm_classes *pm_cells_classes(const pm_cells *c) { return &c->classes; }

double pm_cells_at(const pm_cells *c, pm_ctx *ctx, double lon, double lat)
{
    PJ *pj = instantiate(ctx, c->lonlat_to_laea);
    if (!pj)
        return NAN;
    PJ_COORD p = proj_trans(pj, PJ_FWD, proj_coord(lon, lat, 0, 0));
    proj_destroy(pj);
    int64_t ix, iy;
    if (!cell_of(c->cell_m, p.xy.x, p.xy.y, &ix, &iy))
        return 0;
    uint64_t k = key_of(ix, iy);
    size_t i = lower_bound(c, k);
    return i < c->n && c->key[i] == k ? c->count[i] : 0;
}

/* ---- a tile ------------------------------------------------------------------ */

/* The cells whose LAEA box meets the tile's, in key order, into *idx (*n;
 * pm_free).  Every cell at zooms 0 .. ALL_CELLS_ZOOM, or when an edge
 * point has no LAEA position. */
static int tile_cells(pm_ctx *ctx, const pm_cells *c, PJ *pj, const pm_tile_frame *f,
                      size_t **idx, size_t *n)
{
    double xy[2 * 4 * EDGE_STEPS];
    for (int i = 0; i < 4 * EDGE_STEPS; i++) {
        double t = (double)(i % EDGE_STEPS) / EDGE_STEPS, side = i / EDGE_STEPS;
        double u = side == 0 ? t : side == 1 ? 1 : side == 2 ? 1 - t : 0;
        double v = side == 0 ? 0 : side == 1 ? t : side == 2 ? 1 : 1 - t;
        xy[2 * i] = f->x0 + u * f->w;
        xy[2 * i + 1] = f->y_top - f->w + v * f->w;
    }
    proj_trans_generic(pj, PJ_FWD, xy, 2 * sizeof *xy, 4 * EDGE_STEPS, xy + 1, 2 * sizeof *xy,
                       4 * EDGE_STEPS, NULL, 0, 0, NULL, 0, 0);
    pm_box b = {INFINITY, INFINITY, -INFINITY, -INFINITY};
    int all = f->z <= ALL_CELLS_ZOOM;
    for (int i = 0; i < 4 * EDGE_STEPS && !all; i++) {
        double x = xy[2 * i], y = xy[2 * i + 1];
        all = !isfinite(x) || !isfinite(y) || fabs(x) > 1e8 || fabs(y) > 1e8;
        b = (pm_box){fmin(b.x0, x), fmin(b.y0, y), fmax(b.x1, x), fmax(b.y1, y)};
    }
    *n = 0;
    *idx = pm_calloc(c->n ? c->n : 1, sizeof **idx);
    if (!*idx)
        return PM_ERR(ctx, PM_E_NOMEM, "grid tile %d/%u/%u: out of memory", f->z, f->x, f->y);
    if (all) {
        for (size_t i = 0; i < c->n; i++)
            (*idx)[(*n)++] = i;
        return PM_OK;
    }
    double m = c->cell_m + 0.01 * fmax(b.x1 - b.x0, b.y1 - b.y0);
    int64_t ix0, iy0, ix1, iy1;
    if (!cell_of(c->cell_m, b.x0 - m, b.y0 - m, &ix0, &iy0) ||
        !cell_of(c->cell_m, b.x1 + m, b.y1 + m, &ix1, &iy1))
        return PM_OK;
    if (!c->n || iy1 < key_iy(c->key[0]) || iy0 > key_iy(c->key[c->n - 1]))
        return PM_OK;
    iy0 = iy0 > key_iy(c->key[0]) ? iy0 : key_iy(c->key[0]);
    iy1 = iy1 < key_iy(c->key[c->n - 1]) ? iy1 : key_iy(c->key[c->n - 1]);
    for (int64_t iy = iy0; iy <= iy1; iy++)
        for (size_t i = lower_bound(c, key_of(ix0, iy)); i < c->n && c->key[i] <= key_of(ix1, iy);
             i++)
            (*idx)[(*n)++] = i;
    return PM_OK;
}

/* The outline of cell i: its four sides counter-clockwise on the LAEA
 * plane, `steps` points each, as x, y pairs. */
static void cell_outline(const pm_cells *c, size_t i, int steps, double *xy)
{
    double ix = (double)key_ix(c->key[i]), iy = (double)key_iy(c->key[i]);
    for (int k = 0; k < 4 * steps; k++) {
        double t = (double)(k % steps) / steps;
        int side = k / steps;
        double u = side == 0 ? t : side == 1 ? 1 : side == 2 ? 1 - t : 0;
        double v = side == 0 ? 0 : side == 1 ? t : side == 2 ? 1 : 1 - t;
        xy[2 * k] = (ix + u) * c->cell_m;
        xy[2 * k + 1] = (iy + v) * c->cell_m;
    }
}

/* One pass over the cells idx[0 .. n): fills (stroke 0), or every outline
 * in one path stroked at the end (stroke 1: shared sides once).  xy has
 * room for BATCH points. */
static void draw_pass(pm_canvas *cv, const pm_tile_frame *f, const pm_cells *c, PJ *pj,
                      const size_t *idx, size_t n, double *xy, int stroke)
{
    cairo_t *cr = cv->cr;
    int steps = c->cell_m * f->s >= DENSE_MIN_PX ? SIDE_STEPS : 1, np = 4 * steps;
    size_t per_batch = BATCH / (size_t)np;
    for (size_t b0 = 0; b0 < n; b0 += per_batch) {
        size_t m = n - b0 < per_batch ? n - b0 : per_batch;
        for (size_t k = 0; k < m; k++)
            cell_outline(c, idx[b0 + k], steps, xy + 2 * (size_t)np * k);
        proj_trans_generic(pj, PJ_INV, xy, 2 * sizeof *xy, m * np, xy + 1, 2 * sizeof *xy,
                           m * np, NULL, 0, 0, NULL, 0, 0);
        for (size_t k = 0; k < m; k++) {
            const double *o = xy + 2 * (size_t)np * k;
            int finite = 1;
            for (int p = 0; p < 2 * np; p++)
                finite = finite && isfinite(o[p]);
            if (!finite)
                continue;
            pm_canvas_ring(cv, f, o, (size_t)np, 0);
            if (stroke)
                continue;
            size_t i = idx[b0 + k];
            pm_canvas_rgba(cv, pm_classes_colour(&c->classes, pm_classes_of(&c->classes,
                                                                           c->count[i])),
                           FILL_ALPHA);
            cairo_fill(cr);
        }
    }
    if (stroke) {
        pm_canvas_rgba(cv, OUTLINE_RGB, OUTLINE_ALPHA);
        cairo_set_line_width(cr, OUTLINE_PX * f->k);
        cairo_stroke(cr);
    }
}

/* How wide a cell is on the tile, in pixels (at the tile's centre). */
static double cell_px(const pm_cells *c, const pm_tile_frame *f)
{
    return c->cell_m * pm_grid_scale_at_y(c->grid, f->y_top - f->w / 2) * f->s;
}

static int draw_cells(pm_ctx *ctx, pm_canvas *cv, const pm_tile_frame *f, const pm_cells *c)
{
    PJ *pj = instantiate(ctx, c->grid_to_laea);
    if (!pj)
        return PM_E_CRS;
    size_t *idx = NULL, n = 0;
    double *xy = NULL;
    int st = tile_cells(ctx, c, pj, f, &idx, &n);
    if (!st && n && !(xy = pm_calloc(2 * BATCH, sizeof *xy)))
        st = PM_ERR(ctx, PM_E_NOMEM, "grid tile %d/%u/%u: out of memory", f->z, f->x, f->y);
    if (!st && n) {
        cairo_set_antialias(cv->cr, CAIRO_ANTIALIAS_NONE);
        draw_pass(cv, f, c, pj, idx, n, xy, 0);
        cairo_set_antialias(cv->cr, CAIRO_ANTIALIAS_DEFAULT);
        if (cell_px(c, f) >= OUTLINE_MIN_PX * f->k)
            draw_pass(cv, f, c, pj, idx, n, xy, 1);
    }
    pm_free(xy);
    pm_free(idx);
    proj_destroy(pj);
    return st;
}

int pm_cells_tile_png(pm_ctx *ctx, const pm_cells *c, int z, uint32_t x, uint32_t y, int size,
                      uint8_t **png, size_t *len, int *empty)
{
    *png = NULL;
    *len = 0;
    *empty = 1;
    if (!c)
        return PM_ERR(ctx, PM_E_USAGE, "grid tile: no cells");
    pm_tile_frame f;
    int st = pm_tile_frame_init(ctx, "grid tile", z, x, y, size, &f);
    if (st)
        return st;
    pm_canvas cv;
    st = pm_canvas_open(ctx, size, &cv);
    if (!st)
        st = draw_cells(ctx, &cv, &f, c);
    if (!st)
        st = pm_canvas_png(ctx, &cv, &f, "grid tile", png, len, empty);
    pm_canvas_close(&cv);
    return st;
}
