/* choro.c — choropleth tiles (pm_choro.h): the districts projected once to
 * the tile grid's plane, found per tile through a packed R-tree of their
 * boxes, filled by class and bordered with cairo (choro_impl.h).
 *
 * Projection.  Every ring of every district is read from GEOS into one
 * array and projected in place by one proj_trans_generic() call (EPSG:4326
 * → EPSG:3857 or 3395, normalised for visualisation).  Latitudes are first
 * clamped to ±MAX_LAT_DEG, just beyond the tile square, so that polar
 * vertices stay finite (Mercator sends ±90° to infinity).  Each ring keeps
 * its box, so a tile skips the rings (islands) it does not meet.
 *
 * Index.  An STR-packed R-tree (Leutenegger et al. 1997) over the
 * districts' boxes: leaves sorted into slices by centre x, each slice by
 * centre y, NODE_CAP boxes a node, parents built on the children in order.
 * Read-only once built, so tiles may be drawn from many threads.
 *
 * A tile.  The districts whose box meets the tile (grown by the margin)
 * are drawn in index order: all fills first (the even-odd rule over the
 * district's rings: holes stay empty), a district without a value grey
 * with diagonal hatching anchored to the zoom's whole pixel grid (so it
 * runs on across tiles), then every border over the fills, thinner at
 * low zooms. */
#include "choro_impl.h"
#include "../engine/pm_alloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LAT_DEG 85.1
#define NODE_CAP 16
#define MAX_LEVELS 16
#define BORDER_RGB 0x4d4d4du
#define BORDER_PX 1.0          /* from BORDER_FULL_ZOOM; thinner below (see border_px) */
#define BORDER_FULL_ZOOM 8
#define HATCH_RGB 0x9e9e9eu
#define HATCH_STEP_PX 6.0
#define HATCH_PX 0.75

/* ---- the packed R-tree -------------------------------------------------------- */

typedef struct box_tree {
    size_t n;                    /* leaves */
    uint32_t *item;              /* n: the item of each leaf, in tree order */
    pm_box *box;                 /* every level: leaves first, the root last */
    size_t start[MAX_LEVELS], count[MAX_LEVELS];
    int levels;
} box_tree;

typedef struct sort_key {
    double key;
    uint32_t item;
} sort_key;

static int cmp_key(const void *a, const void *b)
{
    const sort_key *x = a, *y = b;
    if (x->key != y->key)
        return (x->key > y->key) - (x->key < y->key);
    return (x->item > y->item) - (x->item < y->item);
}

static pm_box box_union(pm_box a, const pm_box *b)
{
    return (pm_box){fmin(a.x0, b->x0), fmin(a.y0, b->y0), fmax(a.x1, b->x1), fmax(a.y1, b->y1)};
}

static int box_meets(const pm_box *a, const pm_box *b)
{
    return a->x0 <= b->x1 && b->x0 <= a->x1 && a->y0 <= b->y1 && b->y0 <= a->y1;
}

/* The leaves in STR order: by centre x into slices of `slice` boxes, each
 * slice by centre y. */
static void str_order(const pm_box *boxes, sort_key *k, size_t n, uint32_t *item)
{
    for (size_t i = 0; i < n; i++)
        k[i] = (sort_key){(boxes[i].x0 + boxes[i].x1) / 2, (uint32_t)i};
    qsort(k, n, sizeof *k, cmp_key);
    size_t leaves = (n + NODE_CAP - 1) / NODE_CAP;
    size_t slices = (size_t)ceil(sqrt((double)leaves)), slice = slices * NODE_CAP;
    for (size_t s0 = 0; s0 < n; s0 += slice) {
        size_t m = n - s0 < slice ? n - s0 : slice;
        for (size_t i = s0; i < s0 + m; i++)
            k[i].key = (boxes[k[i].item].y0 + boxes[k[i].item].y1) / 2;
        qsort(k + s0, m, sizeof *k, cmp_key);
    }
    for (size_t i = 0; i < n; i++)
        item[i] = k[i].item;
}

static size_t tree_boxes(size_t n)
{
    size_t total = 0;
    for (size_t m = n; ; m = (m + NODE_CAP - 1) / NODE_CAP) {
        total += m;
        if (m <= 1)
            return total;
    }
}

static int tree_build(pm_ctx *ctx, const pm_box *boxes, size_t n, box_tree *t)
{
    memset(t, 0, sizeof *t);
    t->n = n;
    if (!n)
        return PM_OK;
    sort_key *k = pm_calloc(n, sizeof *k);
    t->item = pm_calloc(n, sizeof *t->item);
    t->box = pm_calloc(tree_boxes(n), sizeof *t->box);
    if (!k || !t->item || !t->box) {
        pm_free(k);
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory indexing %zu districts", n);
    }
    str_order(boxes, k, n, t->item);
    pm_free(k);
    for (size_t i = 0; i < n; i++)
        t->box[i] = boxes[t->item[i]];
    t->count[0] = n;
    size_t at = n;
    for (int l = 0; t->count[l] > 1 && l + 1 < MAX_LEVELS; l++) {
        t->start[l + 1] = at;
        t->count[l + 1] = (t->count[l] + NODE_CAP - 1) / NODE_CAP;
        for (size_t j = 0; j < t->count[l + 1]; j++) {
            size_t c0 = t->start[l] + j * NODE_CAP, c1 = t->start[l] + t->count[l];
            c1 = c0 + NODE_CAP < c1 ? c0 + NODE_CAP : c1;
            pm_box b = t->box[c0];
            for (size_t c = c0 + 1; c < c1; c++)
                b = box_union(b, &t->box[c]);
            t->box[at++] = b;
        }
        t->levels = l + 1;
    }
    t->levels++;
    return PM_OK;
}

static void tree_free(box_tree *t)
{
    pm_free(t->item);
    pm_free(t->box);
}

/* Appends the items under node j of level l whose box meets q. */
static void tree_visit(const box_tree *t, int l, size_t j, const pm_box *q, uint32_t *hits,
                       size_t *n)
{
    if (!box_meets(&t->box[t->start[l] + j], q))
        return;
    if (l == 0) {
        hits[(*n)++] = t->item[j];
        return;
    }
    size_t c1 = (j + 1) * NODE_CAP < t->count[l - 1] ? (j + 1) * NODE_CAP : t->count[l - 1];
    for (size_t c = j * NODE_CAP; c < c1; c++)
        tree_visit(t, l - 1, c, q, hits, n);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The items whose box meets q, ascending; hits has room for every item. */
static size_t tree_query(const box_tree *t, const pm_box *q, uint32_t *hits)
{
    size_t n = 0;
    if (t->n)
        tree_visit(t, t->levels - 1, 0, q, hits, &n);
    qsort(hits, n, sizeof *hits, cmp_u32);
    return n;
}

/* ---- the districts, projected ------------------------------------------------ */

struct pm_choro {
    const pm_districts *ds;
    pm_grid grid;
    size_t n_d, n_rings, n_pts;
    double *xy;              /* n_pts (x, y): grid metres */
    size_t *ring_end;        /* n_rings: one past the ring's last point */
    pm_box *ring_box;        /* n_rings */
    size_t *dist_ring_end;   /* n_d: one past the district's last ring */
    box_tree tree;
};

/* Counts (copy 0) or copies (copy 1) the rings of a polygonal geometry. */
static int read_rings(GEOSContextHandle_t h, const GEOSGeometry *g, pm_choro *c, int copy);

static int read_ring(GEOSContextHandle_t h, const GEOSGeometry *ring, pm_choro *c, int copy)
{
    const GEOSCoordSequence *seq = GEOSGeom_getCoordSeq_r(h, ring);
    unsigned int n = 0;
    if (!seq || !GEOSCoordSeq_getSize_r(h, seq, &n))
        return -1;
    if (copy && n && !GEOSCoordSeq_copyToBuffer_r(h, seq, c->xy + 2 * c->n_pts, 0, 0))
        return -1;
    c->n_pts += n;
    if (copy)
        c->ring_end[c->n_rings] = c->n_pts;
    c->n_rings++;
    return 0;
}

static int read_rings(GEOSContextHandle_t h, const GEOSGeometry *g, pm_choro *c, int copy)
{
    int type = GEOSGeomTypeId_r(h, g);
    if (type == GEOS_MULTIPOLYGON || type == GEOS_GEOMETRYCOLLECTION) {
        int n = GEOSGetNumGeometries_r(h, g);
        for (int i = 0; i < n; i++)
            if (read_rings(h, GEOSGetGeometryN_r(h, g, i), c, copy))
                return -1;
        return 0;
    }
    if (type != GEOS_POLYGON || GEOSisEmpty_r(h, g) == 1)
        return 0;
    if (read_ring(h, GEOSGetExteriorRing_r(h, g), c, copy))
        return -1;
    int holes = GEOSGetNumInteriorRings_r(h, g);
    for (int i = 0; i < holes; i++)
        if (read_ring(h, GEOSGetInteriorRingN_r(h, g, i), c, copy))
            return -1;
    return 0;
}

static int read_all(pm_ctx *ctx, pm_choro *c)
{
    GEOSContextHandle_t h = pm_ctx_geos(ctx);
    for (int copy = 0; copy < 2; copy++) {
        c->n_pts = c->n_rings = 0;
        for (size_t i = 0; i < c->n_d; i++) {
            if (read_rings(h, pm_district_geom_borrow(c->ds, i), c, copy))
                return PM_ERR(ctx, PM_E_GEOM, "district %s: cannot read its rings: %s",
                              pm_district_id(c->ds, i), pm_ctx_geos_msg(ctx));
            if (copy)
                c->dist_ring_end[i] = c->n_rings;
        }
        if (copy)
            break;
        c->xy = pm_calloc(c->n_pts ? c->n_pts : 1, 2 * sizeof *c->xy);
        c->ring_end = pm_calloc(c->n_rings ? c->n_rings : 1, sizeof *c->ring_end);
        c->ring_box = pm_calloc(c->n_rings ? c->n_rings : 1, sizeof *c->ring_box);
        c->dist_ring_end = pm_calloc(c->n_d ? c->n_d : 1, sizeof *c->dist_ring_end);
        if (!c->xy || !c->ring_end || !c->ring_box || !c->dist_ring_end)
            return PM_ERR(ctx, PM_E_NOMEM, "out of memory for %zu district vertices", c->n_pts);
    }
    return PM_OK;
}

static int project(pm_ctx *ctx, pm_choro *c)
{
    for (size_t i = 0; i < c->n_pts; i++)
        c->xy[2 * i + 1] = fmax(-MAX_LAT_DEG, fmin(MAX_LAT_DEG, c->xy[2 * i + 1]));
    PJ_CONTEXT *pc = pm_ctx_proj(ctx);
    const char *crs = pm_grid_crs(c->grid);
    PJ *op = proj_create_crs_to_crs(pc, "EPSG:4326", crs, NULL);
    PJ *pj = op ? proj_normalize_for_visualization(pc, op) : NULL;
    proj_destroy(op);
    if (!pj)
        return PM_ERR(ctx, PM_E_CRS, "choropleth: no transformation EPSG:4326 -> %s: %s", crs,
                      pm_ctx_proj_msg(ctx));
    size_t st = 2 * sizeof(double);
    if (c->n_pts)
        proj_trans_generic(pj, PJ_FWD, c->xy, st, c->n_pts, c->xy + 1, st, c->n_pts, NULL, 0, 0,
                           NULL, 0, 0);
    proj_destroy(pj);
    return PM_OK;
}

/* The rings' boxes; PM_E_CRS naming the district of a vertex PROJ could
 * not project. */
static int ring_boxes(pm_ctx *ctx, pm_choro *c)
{
    size_t d = 0;
    for (size_t r = 0; r < c->n_rings; r++) {
        while (d < c->n_d && c->dist_ring_end[d] <= r)
            d++;
        size_t p0 = r ? c->ring_end[r - 1] : 0;
        pm_box b = {INFINITY, INFINITY, -INFINITY, -INFINITY};
        for (size_t p = p0; p < c->ring_end[r]; p++) {
            double x = c->xy[2 * p], y = c->xy[2 * p + 1];
            if (!isfinite(x) || !isfinite(y))
                return PM_ERR(ctx, PM_E_CRS, "district %s: vertex %zu cannot be projected to %s",
                              pm_district_id(c->ds, d), p - p0, pm_grid_crs(c->grid));
            b = box_union(b, &(pm_box){x, y, x, y});
        }
        c->ring_box[r] = b;
    }
    return PM_OK;
}

/* The districts' boxes (empty districts: an empty box no query meets). */
static int index_districts(pm_ctx *ctx, pm_choro *c)
{
    pm_box *b = pm_calloc(c->n_d ? c->n_d : 1, sizeof *b);
    if (!b)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory indexing %zu districts", c->n_d);
    for (size_t i = 0; i < c->n_d; i++) {
        b[i] = (pm_box){INFINITY, INFINITY, -INFINITY, -INFINITY};
        for (size_t r = i ? c->dist_ring_end[i - 1] : 0; r < c->dist_ring_end[i]; r++)
            b[i] = box_union(b[i], &c->ring_box[r]);
    }
    int st = tree_build(ctx, b, c->n_d, &c->tree);
    pm_free(b);
    return st;
}

int pm_choro_new(pm_ctx *ctx, const pm_districts *ds, pm_grid grid, pm_choro **out)
{
    *out = NULL;
    if (!ds)
        return PM_ERR(ctx, PM_E_USAGE, "choropleth: no districts");
    if (grid != PM_GRID_WEBMERC && grid != PM_GRID_WORLDMERC)
        return PM_ERR(ctx, PM_E_USAGE, "choropleth: unknown grid %d", (int)grid);
    if (pm_districts_count(ds) > UINT32_MAX)
        return PM_ERR(ctx, PM_E_USAGE, "choropleth: %zu districts are too many",
                      pm_districts_count(ds));
    pm_choro *c = pm_calloc(1, sizeof *c);
    if (!c)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory for a choropleth");
    c->ds = ds;
    c->grid = grid;
    c->n_d = pm_districts_count(ds);
    int st = read_all(ctx, c);
    if (!st)
        st = project(ctx, c);
    if (!st)
        st = ring_boxes(ctx, c);
    if (!st)
        st = index_districts(ctx, c);
    if (st) {
        pm_choro_free(c);
        return st;
    }
    *out = c;
    return PM_OK;
}

void pm_choro_free(pm_choro *c)
{
    if (!c)
        return;
    pm_free(c->xy);
    pm_free(c->ring_end);
    pm_free(c->ring_box);
    pm_free(c->dist_ring_end);
    tree_free(&c->tree);
    pm_free(c);
}

/* ---- layers ------------------------------------------------------------------- */

struct pm_choro_layer {
    const pm_choro *c;
    double *values;
    int *cls;                /* class of each district, −1: no value */
    pm_classes classes;
};

/* A layer holding a copy of the values, its classes still to be set. */
static int layer_alloc(pm_ctx *ctx, const pm_choro *c, const double *values, size_t n,
                       pm_choro_layer **out)
{
    *out = NULL;
    if (!c || (n && !values))
        return PM_ERR(ctx, PM_E_USAGE, "choropleth layer: no districts or no values");
    if (n != c->n_d)
        return PM_ERR(ctx, PM_E_USAGE, "choropleth layer: %zu values for %zu districts", n,
                      c->n_d);
    pm_choro_layer *l = pm_calloc(1, sizeof *l);
    if (l) {
        l->values = pm_calloc(n ? n : 1, sizeof *l->values);
        l->cls = pm_calloc(n ? n : 1, sizeof *l->cls);
    }
    if (!l || !l->values || !l->cls) {
        pm_choro_layer_free(l);
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory for a choropleth layer of %zu values", n);
    }
    l->c = c;
    if (n)
        memcpy(l->values, values, n * sizeof *values);
    *out = l;
    return PM_OK;
}

/* Each district's class, once the classes are set. */
static void layer_class_all(pm_choro_layer *l)
{
    for (size_t i = 0; i < l->c->n_d; i++)
        l->cls[i] = pm_classes_of(&l->classes, l->values[i]);
}

int pm_choro_layer_new(pm_ctx *ctx, const pm_choro *c, const pm_figure *f, const double *values,
                       size_t n, pm_choro_layer **out)
{
    *out = NULL;
    pm_choro_layer *l;
    int st = layer_alloc(ctx, c, values, n, &l);
    if (st)
        return st;
    st = pm_classes_quantile(ctx, l->values, n, &l->classes);
    pm_classes_orient(&l->classes, f);
    if (st) {
        pm_choro_layer_free(l);
        return st;
    }
    layer_class_all(l);
    *out = l;
    return PM_OK;
}

int pm_choro_layer_new_classed(pm_ctx *ctx, const pm_choro *c, const pm_classes *cls,
                               const double *values, size_t n, pm_choro_layer **out)
{
    *out = NULL;
    if (!cls || cls->n > PM_CLASSES_MAX)
        return PM_ERR(ctx, PM_E_USAGE, "choropleth layer: no classes, or more than %d",
                      PM_CLASSES_MAX);
    pm_choro_layer *l;
    int st = layer_alloc(ctx, c, values, n, &l);
    if (st)
        return st;
    l->classes = *cls;
    l->classes.has_nodata = 0;
    for (size_t i = 0; i < n; i++)
        l->classes.has_nodata |= !isfinite(values[i]);
    layer_class_all(l);
    *out = l;
    return PM_OK;
}

void pm_choro_layer_free(pm_choro_layer *l)
{
    if (!l)
        return;
    pm_free(l->values);
    pm_free(l->cls);
    pm_free(l);
}

const pm_classes *pm_choro_layer_classes(const pm_choro_layer *l) { return &l->classes; }

/* ---- a tile --------------------------------------------------------------------- */

/* District i's rings that meet the tile, as one path. */
static void path_district(pm_canvas *cv, const pm_tile_frame *f, const pm_choro *c, size_t i)
{
    for (size_t r = i ? c->dist_ring_end[i - 1] : 0; r < c->dist_ring_end[i]; r++) {
        if (!box_meets(&c->ring_box[r], &f->query))
            continue;
        size_t p0 = r ? c->ring_end[r - 1] : 0;
        pm_canvas_ring(cv, f, c->xy + 2 * p0, c->ring_end[r] - p0, 1);
    }
}

/* Fills the current path grey and hatches it with lines x + y = n·step in
 * the zoom's global pixels, so the hatching continues from tile to tile. */
static void fill_nodata(pm_canvas *cv, const pm_tile_frame *f)
{
    cairo_t *cr = cv->cr;
    pm_canvas_rgba(cv, PM_FIGURE_NODATA, 1);
    cairo_fill_preserve(cr);
    cairo_save(cr);
    cairo_clip(cr);
    double step = HATCH_STEP_PX * f->k, n = f->size;
    double phase = fmod(((double)f->x + (double)f->y) * n, step);   /* global x + y of pixel 0, 0 */
    for (double d = -phase; d <= 2 * n + step; d += step) {    /* px + py = d */
        cairo_move_to(cr, d + 1, -1);
        cairo_line_to(cr, d - 2 * n - 1, 2 * n + 1);
    }
    pm_canvas_rgba(cv, HATCH_RGB, 1);
    cairo_set_line_width(cr, HATCH_PX * f->k);
    cairo_stroke(cr);
    cairo_restore(cr);
}

/* The border width in pixels of a 256-px tile: 1 px from zoom 8, thinner
 * at the zooms where a region's small districts are a few pixels wide
 * (0.75 px at zooms 6–7, 0.5 px up to 5), so borders do not bury them. */
static double border_px(int z)
{
    return BORDER_PX * (z >= BORDER_FULL_ZOOM ? 1 : z >= BORDER_FULL_ZOOM - 2 ? 0.75 : 0.5);
}

static void draw_districts(pm_canvas *cv, const pm_tile_frame *f, const pm_choro_layer *l,
                           const uint32_t *hits, size_t n)
{
    cairo_t *cr = cv->cr;
    cairo_set_fill_rule(cr, CAIRO_FILL_RULE_EVEN_ODD);
    for (size_t k = 0; k < n; k++) {
        path_district(cv, f, l->c, hits[k]);
        int cls = l->cls[hits[k]];
        if (cls < 0) {
            fill_nodata(cv, f);
        } else {
            pm_canvas_rgba(cv, pm_classes_colour(&l->classes, cls), 1);
            cairo_fill_preserve(cr);
        }
        cairo_new_path(cr);
    }
    for (size_t k = 0; k < n; k++)
        path_district(cv, f, l->c, hits[k]);
    pm_canvas_rgba(cv, BORDER_RGB, 1);
    cairo_set_line_width(cr, border_px(f->z) * f->k);
    cairo_stroke(cr);
}

int pm_choro_tile_png(pm_ctx *ctx, const pm_choro_layer *l, int z, uint32_t x, uint32_t y,
                      int size, uint8_t **png, size_t *len, int *empty)
{
    *png = NULL;
    *len = 0;
    *empty = 1;
    if (!l)
        return PM_ERR(ctx, PM_E_USAGE, "choropleth tile: no layer");
    pm_tile_frame f;
    int st = pm_tile_frame_init(ctx, "choropleth tile", z, x, y, size, &f);
    if (st)
        return st;
    const pm_choro *c = l->c;
    uint32_t *hits = pm_calloc(c->n_d ? c->n_d : 1, sizeof *hits);
    if (!hits)
        return PM_ERR(ctx, PM_E_NOMEM, "choropleth tile %d/%u/%u: out of memory", z, x, y);
    pm_canvas cv;
    st = pm_canvas_open(ctx, size, &cv);
    if (!st) {
        draw_districts(&cv, &f, l, hits, tree_query(&c->tree, &f.query, hits));
        st = pm_canvas_png(ctx, &cv, &f, "choropleth tile", png, len, empty);
    }
    pm_canvas_close(&cv);
    pm_free(hits);
    return st;
}
