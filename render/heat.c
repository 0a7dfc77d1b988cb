/* heat.c — heat-map layers and tiles: kernel density at pixel centres,
 * the layer's fixed colour scale, RGBA PNG (see pm_heat.h, heat_impl.h).
 *
 * Radius.  In metres (radius_m > 0) a point's kernel reaches R·k on the
 * grid, k the Mercator scale factor at the point's own latitude (so the
 * kernel is R on the ground whatever the latitude, and the brute-force
 * sum over all points with d < R·k is the exact definition).  In pixels
 * the kernel reaches radius_px pixels of a 256-px tile of the zoom, the
 * same on the grid for every point.  A point adds its weight w times
 * the kernel (pm_points_weight(); 1 unless the points were weighted).
 *
 * The filter.  pm_heat_match (heat_impl.h) is a filter ready for many
 * tests: a 65 536-flag topic table and the sources sorted for bsearch.  A
 * layer keeps one pass flag per point (pm_points_pass(), which the grid
 * cells use too); the report tests complaints with it directly, and so
 * does pm_heat_complaints_pass() for callers outside render/ (the grid
 * hot spots of `problemap analyze`).
 *
 * A tile.  Pixel (i, j) of a size-px tile z/x/y has its centre at
 * x = x0 + (i + ½)·w/size, y = y_top − (j + ½)·w/size (w the tile's
 * width); a 512-px tile has the pixel centres of its four 256-px children.
 * Its points are those of the tile's box grown by the reach of the
 * farthest kernel that can touch it (found by pm_points_ranges(), then
 * tested one by one); each adds w·K(d²/R²) to the pixel centres of its disc,
 * row by row over the chord, in a double accumulator.  The Gaussian is
 * separable: one exp per column and per row of the point's disc, not per
 * pixel.  The reach in metres: points poleward of the tile have larger k;
 * m = R·k(|y|max + m) is solved by iteration from m = R·k(|y|max), which
 * bounds the distance of every point that can touch the tile while
 * R·k′ < 1 up to the edge of the square (R < 550 km); beyond that the
 * reach is R·k at the square's edge, which bounds every point.
 *
 * The scale.  v_max is the 99th percentile (nearest rank) of the density
 * (weighted, as the tiles) at each point's own position over a sample of
 * the layer's points (each sampled once, whatever its weight): all
 * of them up to 10 000, else every (n/10 000)-th in Morton order, which
 * spreads the sample evenly over the map.  A density at a point is the
 * same sum over its neighbours, from the same index.  With a radius in
 * pixels the density depends on the zoom; the scale is then taken at zoom
 * VMAX_ZOOM (a city fills a few tiles): at lower zooms the map saturates,
 * at higher ones it fades, by 4× a zoom level.
 *
 * Colour.  Densities below v_max/1000 are transparent; above, entry
 * round(255·log(v/(v_max/1000))/log(1000)) of the ramp's table (entries
 * past v_max are clamped to the last), alpha rising from 0 to 230 — found
 * without a log: a binary search over the densities where the 255
 * entries after the first begin, computed once per layer.
 *
 * PNG.  libpng, RGBA 8-bit, no filtering, zlib level 1, written to a
 * growing memory buffer; its allocations go through pm_malloc so that
 * they can fail in tests.  libpng reports errors by longjmp to the
 * jmp_buf of the encode call, kept in a struct owned by the caller of the
 * function that calls setjmp (so that nothing it needs afterwards is
 * indeterminate).
 *
 * The count pyramid.  A tile whose exact sum would cost more than
 * EXACT_BUDGET point × pixel updates (millions of points at a low zoom, or
 * thousands of points whose discs cover the whole tile at a high one) is
 * drawn from a level of the layer's pyramid instead (heat_bins.c): the
 * points grouped by Morton cell, each group one point of the group's
 * weight at its weighted centroid.  With R the smallest grid radius that
 * can reach the tile in pixels R_px:
 *   stride s: the largest power of two <= R_px/8 (1 .. 32): the density is
 *     computed at every s-th pixel corner (a lattice, so that R spans >= 8
 *     lattice steps) and interpolated bilinearly between them;
 *   depth d: cells of side <= max(R/8, s·pixel/3), unless that costs more than
 *     PYRAMID_BUDGET: the cost of a level is its groups in the grown box
 *     (from the Morton ranges, an upper bound) times GROUP_COST plus the
 *     lattice nodes of a disc, and the depth is made coarser one level at
 *     a time (the stride following the cell side once the cell is wider)
 *     until it fits, at most down to the depth that fits even with every
 *     cell of the box occupied.  So a tile's cost is bounded whatever the
 *     number of points; sparse tiles keep their cells, dense ones at low
 *     zoom (R of a few pixels, every cell occupied) get coarser cells.
 * A group's error against its members is second order in its spread
 * ((h/R)² ≤ 1/64 of the kernel's curvature scale), the lattice's is
 * second order in s/R_px; tests/unit/test_heat.c holds the result to the
 * exact sum (relative error and colour entries).
 *
 * Dense tiles: deposit and convolve.  Splatting costs per group, and a
 * dense tile at z8–z12 has more groups than its grid has nodes.  Such a
 * tile (when R spans at least CONV_R_MIN nodes of its grid — the pixel
 * centres, or the lattice of stride s — and the cost model below says it
 * is cheaper than the splat's plan) takes the level with cells of at most
 * min(one node, R/8), spreads each group over the 4 × 4 nodes around it
 * with the weights of cubic Lagrange interpolation, on the grid grown by
 * the kernel's reach, and then sums at every node the kernel's taps over
 * the deposited nodes within R (R at the source row's northing), as
 * long vector loops over rows.  Its cost is groups × CONV_GROUP_COST plus
 * rows × nodes × taps × CONV_TAP_COST, bounded whatever N; its error is
 * the groups' spread (as above) plus the cubic interpolation of the
 * kernel between nodes, fourth order in 1/R (exact for the quartic's
 * polynomial, but for the disc's edge).  Levels are built when a
 * tile first needs them (one pass over the Morton-ordered points), under
 * the layer's lock, and kept with the layer; the layer's scale v_max is
 * taken from the pyramid too when the layer has more than
 * VMAX_EXACT_MAX points.  Small layers are always exact.
 *
 * A layer is read-only once built (but for its pyramid, built under its
 * lock): any number of threads may draw tiles of it at once, each with
 * its own pm_ctx. */
#include "heat_impl.h"
#include "../engine/pm_alloc.h"

#include <math.h>
#include <png.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define E_M PM_HEAT_HALF_WORLD_M
#define SAMPLE_MAX 10000
#define VMAX_ZOOM 10
#define VMIN_RATIO 1000.0
#define GAUSS_C 4.5            /* K(u) = exp(−u²/(2σ²)), σ = 1/3 */
#define MAX_TILE 512
#define MAX_ZOOM 24
/* Above this ground radius the reach iteration is not a bound (above). */
#define REACH_ITER_MAX_M 5.0e5
#define EXACT_BUDGET 2.0e6
#define VMAX_EXACT_MAX 200000
#define STRIDE_MAX 32
/* A pyramid tile's cost bound (same units as EXACT_BUDGET; about 0.25 ns
 * each on the bench machine for narrow discs, 0.8 ns for wide ones, with
 * the vector loops — 1.7 ns before them), and what one group costs beyond
 * its lattice nodes.  Lower budgets are faster and coarser at low zoom (measure with
 * PM_BENCH_CHECK in tools/bench_tiles.c): 16e6 keeps the accuracy of cells of R/8 on the
 * bench's data at 1 M points. */
#define PYRAMID_BUDGET 16.0e6
#define GROUP_COST 16.0
/* Deposit and convolve (file comment) when it costs less than the
 * splat's plan: a group costs CONV_GROUP_COST to deposit (16 nodes), a
 * tap of a source row CONV_TAP_COST per node of the row it adds to (long
 * vector loops); only with at least CONV_R_MIN nodes to the radius (the
 * interpolation between nodes is then within ~1 %) and a margin of at
 * most CONV_MARGIN_MAX nodes. */
#define CONV_GROUP_COST 20.0
#define CONV_TAP_COST 0.125
#define CONV_R_MIN 5.0
#define CONV_MARGIN_MAX 40

/* The pyramid's levels, built on demand (a cache behind a const layer). */
typedef struct pyramid {
    pthread_mutex_t lock;
    pm_heat_bins *level[PM_HEAT_MORTON_ZOOM + 1];
} pyramid;

struct pm_heat_layer {
    const pm_points *pts;
    uint8_t *pass;          /* n flags; NULL: every point passes */
    size_t n_pass;
    pm_heat_opts o;
    double v_max;
    uint8_t lut[256][4];
    double th[256];         /* colour_thresholds() of v_max */
    int exact;              /* never the pyramid (pm_heat_layer_new_exact) */
    pyramid *pyr;
};

/* ---- radius and reach ------------------------------------------------------- */

typedef struct radius {
    double fixed_m;    /* > 0: every point's grid radius (radius in pixels) */
    double ground_m;   /* otherwise: a point's grid radius is ground_m·k */
} radius;

static radius radius_at_zoom(const pm_heat_opts *o, int z)
{
    if (o->radius_m > 0)
        return (radius){0, o->radius_m};
    return (radius){o->radius_px * ldexp(2 * E_M / 256, -z), 0};
}

/* What the sums run over: the layer's points, or a level of its pyramid
 * (the same fields; groups always pass, and carry their weight). */
typedef struct src {
    size_t n;
    const uint64_t *code;
    int shift;                  /* pm_codes_ranges(): 0 for points */
    const double *x, *y, *k;
    const float *wf;            /* points' weights (NULL: 1) ... */
    const double *wd;           /* ... or the groups' */
    const uint8_t *pass;        /* NULL: every entry */
} src;

static double src_weight(const src *s, size_t i) { return s->wd ? s->wd[i] : s->wf ? s->wf[i] : 1.0; }
static int src_passes(const src *s, size_t i) { return !s->pass || s->pass[i]; }

static double src_radius(const src *s, const radius *r, size_t i)
{
    return r->fixed_m > 0 ? r->fixed_m : r->ground_m * s->k[i];
}

/* How far (grid metres) a kernel can reach into a box whose farthest
 * northing from the equator is y_far (see the file comment). */
static double reach_m(pm_grid g, const radius *r, double y_far)
{
    if (r->fixed_m > 0)
        return r->fixed_m;
    double edge = r->ground_m * pm_grid_scale_at_y(g, E_M);
    if (r->ground_m >= REACH_ITER_MAX_M)
        return edge;
    double m = r->ground_m * pm_grid_scale_at_y(g, y_far);
    for (int it = 0; it < 100; it++) {
        double next = r->ground_m * pm_grid_scale_at_y(g, fmin(y_far + m, E_M));
        if (next - m <= 1e-12 * m)
            return fmin(edge, fmax(m, next) * (1 + 1e-6));
        m = next;
    }
    return edge;
}

static pm_box grow(double x0, double y0, double x1, double y1, double m)
{
    return (pm_box){x0 - m, y0 - m, x1 + m, y1 + m};
}

/* ---- the filter ---------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int check_filter(pm_ctx *ctx, const pm_heat_filter *f)
{
    if ((f->n_topics && !f->topics) || (f->n_sources && !f->sources))
        return PM_ERR(ctx, PM_E_USAGE, "heat layer: a filter set has a size but no elements");
    if (f->has_days && f->day_from > f->day_to)
        return PM_ERR(ctx, PM_E_USAGE, "heat layer: day range %lld .. %lld is empty",
                      (long long)f->day_from, (long long)f->day_to);
    return PM_OK;
}

int pm_heat_match_init(pm_ctx *ctx, const pm_heat_filter *f, pm_heat_match *m)
{
    memset(m, 0, sizeof *m);
    if (!f)
        return PM_OK;
    int st = check_filter(ctx, f);
    if (st)
        return st;
    m->has_days = f->has_days;
    m->day_from = f->day_from;
    m->day_to = f->day_to;
    if (f->n_topics && !(m->topic_on = pm_calloc(UINT16_MAX + 1, 1)))
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory for a heat-map filter");
    for (size_t i = 0; i < f->n_topics; i++)
        m->topic_on[f->topics[i]] = 1;
    if (!f->n_sources)
        return PM_OK;
    if (!(m->sources = pm_calloc(f->n_sources, sizeof *m->sources)))
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory for a heat-map filter");
    memcpy(m->sources, f->sources, f->n_sources * sizeof *m->sources);
    m->n_sources = f->n_sources;
    qsort(m->sources, m->n_sources, sizeof *m->sources, cmp_u32);
    return PM_OK;
}

void pm_heat_match_free(pm_heat_match *m)
{
    pm_free(m->topic_on);
    pm_free(m->sources);
    memset(m, 0, sizeof *m);
}

int pm_heat_match_all(const pm_heat_match *m)
{
    return !m->topic_on && !m->sources && !m->has_days;
}

int pm_heat_match_test(const pm_heat_match *m, uint16_t topic, uint32_t source, int64_t day)
{
    return (!m->topic_on || m->topic_on[topic]) &&
           (!m->sources || bsearch(&source, m->sources, m->n_sources, sizeof source, cmp_u32)) &&
           (!m->has_days || (day >= m->day_from && day <= m->day_to));
}

int pm_points_pass(pm_ctx *ctx, const pm_points *p, const pm_heat_filter *f, uint8_t **pass,
                   size_t *n_pass)
{
    *pass = NULL;
    *n_pass = p->n;
    pm_heat_match m;
    int st = pm_heat_match_init(ctx, f, &m);
    if (st || pm_heat_match_all(&m)) {
        pm_heat_match_free(&m);
        return st;
    }
    uint8_t *on = pm_calloc(p->n, 1);
    if (!on) {
        pm_heat_match_free(&m);
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory filtering %zu heat-map points", p->n);
    }
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++) {
        on[i] = (uint8_t)pm_heat_match_test(&m, p->topic[i], p->source[i], p->day[i]);
        n += on[i];
    }
    pm_heat_match_free(&m);
    *pass = on;
    *n_pass = n;
    return PM_OK;
}

int pm_heat_complaints_pass(pm_ctx *ctx, const pm_complaints *cs, const pm_placed *pl,
                            const pm_heat_filter *f, long utc_offset_s, uint8_t **pass,
                            size_t *n_pass)
{
    size_t n = pm_complaints_count(cs), k = 0;
    *pass = NULL;
    *n_pass = 0;
    if (!pl || pl->n != n)
        return PM_ERR(ctx, PM_E_USAGE, "heat-map filter: %zu placements for %zu complaints",
                      pl ? pl->n : 0, n);
    pm_heat_match m;
    int st = pm_heat_match_init(ctx, f, &m);
    uint8_t *on = st ? NULL : pm_calloc(n ? n : 1, 1);
    if (!st && !on)
        st = PM_ERR(ctx, PM_E_NOMEM, "out of memory filtering %zu complaints", n);
    pm_coord_column lon = pm_complaints_lon(cs), lat = pm_complaints_lat(cs);
    pm_created_column created = pm_complaints_created(cs);
    const uint16_t *topic = pm_complaints_topic(cs);
    pm_dict_column source = pm_complaints_dict(cs, PM_DICT_SOURCE);
    for (size_t i = 0; on && i < n; i++) {
        int32_t day = pm_heat_local_day(pm_created_at(created, i), utc_offset_s);
        on[i] = (uint8_t)(pm_heat_has_position(pl, i, pm_coord_at(lon, i), pm_coord_at(lat, i)) &&
                          pm_heat_match_test(&m, topic[i], pm_dict_column_at(source, i), day));
        k += on[i];
    }
    pm_heat_match_free(&m);
    *pass = on;
    *n_pass = k;
    return st;
}

static int passes(const pm_heat_layer *l, size_t i) { return !l->pass || l->pass[i]; }

/* ---- density at a point: the scale ------------------------------------------- */

static double kernel(pm_kernel k, double u2)
{
    if (k == PM_KERNEL_GAUSSIAN)
        return exp(-GAUSS_C * u2);
    double v = 1 - u2;
    return v * v;
}

static src points_src(const pm_heat_layer *l)
{
    const pm_points *p = l->pts;
    return (src){p->n, p->code, 0, p->x_m, p->y_m, p->k, p->w, NULL, l->pass};
}

static src bins_src(const pm_heat_bins *b)
{
    return (src){b->n, b->code, 2 * (PM_HEAT_MORTON_ZOOM - b->depth), b->x_m, b->y_m, b->k, NULL, b->w, NULL};
}

/* The density of s at (qx, qy) with radius r. */
static double density_at(const src *s, pm_grid g, pm_kernel kern, const radius *r, double qx,
                         double qy)
{
    pm_box b = grow(qx, qy, qx, qy, reach_m(g, r, fabs(qy)));
    pm_range rg[PM_POINTS_MAX_RANGES];
    size_t n = pm_codes_ranges(s->code, s->n, s->shift, &b, PM_COVER_FINE, rg);
    double v = 0;
    for (size_t k = 0; k < n; k++)
        for (size_t i = rg[k].lo; i < rg[k].hi; i++) {
            double dx = s->x[i] - qx, dy = s->y[i] - qy, R = src_radius(s, r, i);
            double d2 = dx * dx + dy * dy, r2 = R * R;
            if (d2 < r2 && src_passes(s, i))   /* d < R: inside b */
                v += src_weight(s, i) * kernel(kern, d2 / r2);
        }
    return v;
}

/* ---- the pyramid ------------------------------------------------------------------ */

/* The depth whose cells have a side of at most h grid metres. */
static int depth_for(double h)
{
    double d = ceil(log2(2 * E_M / h));
    return d < 0 ? 0 : d > PM_HEAT_MORTON_ZOOM ? PM_HEAT_MORTON_ZOOM : (int)d;
}

/* The smallest grid radius of a kernel in a box whose northing nearest
 * the equator is y_near. */
static double radius_min(pm_grid g, const radius *r, double y_near)
{
    return r->fixed_m > 0 ? r->fixed_m : r->ground_m * pm_grid_scale_at_y(g, y_near);
}

static double box_y_near(const pm_box *b)
{
    return b->y0 <= 0 && b->y1 >= 0 ? 0 : fmin(fabs(b->y0), fabs(b->y1));
}

/* Level depth of the layer's pyramid, built on first use. */
static int layer_level(pm_ctx *ctx, const pm_heat_layer *l, int depth, const pm_heat_bins **out)
{
    pthread_mutex_lock(&l->pyr->lock);
    int st = PM_OK;
    if (!l->pyr->level[depth])
        st = pm_heat_bins_new(ctx, l->pts, l->pass, depth, &l->pyr->level[depth]);
    *out = l->pyr->level[depth];
    pthread_mutex_unlock(&l->pyr->lock);
    return st;
}

static int pyramid_new(pm_ctx *ctx, pm_heat_layer *l)
{
    if (!(l->pyr = pm_calloc(1, sizeof *l->pyr)))
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory for a heat layer");
    if (pthread_mutex_init(&l->pyr->lock, NULL) != 0) {
        pm_free(l->pyr);
        l->pyr = NULL;
        return PM_ERR(ctx, PM_E_NOMEM, "heat layer: no mutex");
    }
    return PM_OK;
}

static void pyramid_free(pyramid *p)
{
    if (!p)
        return;
    for (int d = 0; d <= PM_HEAT_MORTON_ZOOM; d++)
        pm_heat_bins_free(p->level[d]);
    pthread_mutex_destroy(&p->lock);
    pm_free(p);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int compute_vmax(pm_ctx *ctx, pm_heat_layer *l)
{
    size_t m = l->n_pass, s = m < SAMPLE_MAX ? m : SAMPLE_MAX;
    if (!s) {
        l->v_max = 1;   /* nothing to draw: any scale */
        return PM_OK;
    }
    double *v = pm_calloc(s, sizeof *v);
    if (!v)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory for the heat layer's scale sample");
    radius r = radius_at_zoom(&l->o, VMAX_ZOOM);
    const pm_points *p = l->pts;
    src from = points_src(l);
    if (!l->exact && m > VMAX_EXACT_MAX) {   /* large: from the pyramid (file comment) */
        double y_near = INFINITY;
        for (size_t i = 0; i < p->n; i++)
            y_near = fmin(y_near, fabs(p->y_m[i]));
        const pm_heat_bins *b;
        int st = layer_level(ctx, l, depth_for(radius_min(p->grid, &r, y_near) / 8), &b);
        if (st) {
            pm_free(v);
            return st;
        }
        from = bins_src(b);
    }
    size_t rank = 0, k = 0;   /* sample k is the passing point of rank k·m/s */
    for (size_t i = 0; i < p->n && k < s; i++) {
        if (!passes(l, i))
            continue;
        if (rank == k * m / s)
            v[k++] = density_at(&from, p->grid, l->o.kernel, &r, p->x_m[i], p->y_m[i]);
        rank++;
    }
    qsort(v, s, sizeof *v, cmp_double);
    l->v_max = v[(99 * s + 99) / 100 - 1];
    pm_free(v);
    return PM_OK;
}

/* ---- the layer ------------------------------------------------------------------ */

/* The densities where the colour table's entries begin: entry k
 * (1 .. 255) from lo·VMIN_RATIO^((k − ½)/255) (the nearest entry on the
 * log scale), entry 0 from lo = v_max/VMIN_RATIO; below lo, none. */
static void colour_thresholds(double v_max, double th[256])
{
    double lo = v_max / VMIN_RATIO;
    th[0] = lo;
    for (int k = 1; k < 256; k++)
        th[k] = lo * pow(VMIN_RATIO, (k - 0.5) / 255);
}

static int check_opts(pm_ctx *ctx, const pm_heat_opts *o)
{
    if (o->kernel != PM_KERNEL_QUARTIC && o->kernel != PM_KERNEL_GAUSSIAN)
        return PM_ERR(ctx, PM_E_USAGE, "heat layer: unknown kernel %d", (int)o->kernel);
    if (o->ramp != PM_RAMP_INFERNO && o->ramp != PM_RAMP_VIRIDIS && o->ramp != PM_RAMP_YLORRD)
        return PM_ERR(ctx, PM_E_USAGE, "heat layer: unknown ramp %d", (int)o->ramp);
    if (!isfinite(o->radius_m) || o->radius_m < 0)
        return PM_ERR(ctx, PM_E_USAGE, "heat layer: radius %g m is not a distance", o->radius_m);
    if (o->radius_m == 0 && !(isfinite(o->radius_px) && o->radius_px > 0))
        return PM_ERR(ctx, PM_E_USAGE, "heat layer: no radius (%g m, %g px)", o->radius_m,
                      o->radius_px);
    if (!isfinite(o->v_max) || o->v_max < 0)
        return PM_ERR(ctx, PM_E_USAGE, "heat layer: v_max %g is not a density", o->v_max);
    return PM_OK;
}

static int layer_new(pm_ctx *ctx, const pm_points *pts, const pm_heat_filter *f,
                     const pm_heat_opts *o, int exact, pm_heat_layer **out)
{
    *out = NULL;
    if (!pts || !o)
        return PM_ERR(ctx, PM_E_USAGE, "heat layer: no points or no options");
    int st = check_opts(ctx, o);
    if (!st && f)
        st = check_filter(ctx, f);   /* before anything is allocated */
    if (st)
        return st;
    pm_heat_layer *l = pm_calloc(1, sizeof *l);
    if (!l)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory for a heat layer");
    l->pts = pts;
    l->o = *o;
    l->exact = exact;
    pm_heat_ramp_lut(o->ramp, l->lut);
    st = pyramid_new(ctx, l);
    if (!st)
        st = pm_points_pass(ctx, pts, f, &l->pass, &l->n_pass);
    if (!st && o->v_max > 0)
        l->v_max = o->v_max;
    else if (!st)
        st = compute_vmax(ctx, l);
    if (st) {
        pm_heat_layer_free(l);
        return st;
    }
    colour_thresholds(l->v_max, l->th);
    *out = l;
    return PM_OK;
}

int pm_heat_layer_new(pm_ctx *ctx, const pm_points *pts, const pm_heat_filter *f,
                      const pm_heat_opts *o, pm_heat_layer **out)
{
    return layer_new(ctx, pts, f, o, 0, out);
}

int pm_heat_layer_new_exact(pm_ctx *ctx, const pm_points *pts, const pm_heat_filter *f,
                            const pm_heat_opts *o, pm_heat_layer **out)
{
    return layer_new(ctx, pts, f, o, 1, out);
}

void pm_heat_layer_free(pm_heat_layer *l)
{
    if (!l)
        return;
    pyramid_free(l->pyr);
    pm_free(l->pass);
    pm_free(l);
}

double pm_heat_layer_vmax(const pm_heat_layer *l) { return l->v_max; }

/* ---- a tile's density ----------------------------------------------------------- */

typedef struct tile {
    int size;
    double x0, y_top, pix;   /* west and north edges, pixel size (grid metres) */
    double inv_pix;
    double cx[MAX_TILE], cy[MAX_TILE];   /* pixel centres */
    radius r;
    pm_box grown;
} tile;

static void tile_init(const pm_heat_layer *l, int z, uint32_t x, uint32_t y, int size, tile *t)
{
    double w = ldexp(2 * E_M, -z);
    t->size = size;
    t->x0 = -E_M + x * w;
    t->y_top = E_M - y * w;
    t->pix = w / size;
    t->inv_pix = size / w;
    for (int i = 0; i < size; i++) {
        t->cx[i] = t->x0 + (i + 0.5) * t->pix;
        t->cy[i] = t->y_top - (i + 0.5) * t->pix;
    }
    t->r = radius_at_zoom(&l->o, z);
    double y_far = fmax(fabs(t->y_top), fabs(t->y_top - w));
    t->grown = grow(t->x0, t->y_top - w, t->x0 + w, t->y_top, reach_m(l->pts->grid, &t->r, y_far));
}

void pm_heat_tile_box(const pm_heat_layer *l, int z, uint32_t x, uint32_t y, pm_box *grown)
{
    tile t;
    tile_init(l, z, x, y, 256, &t);
    *grown = t.grown;
}

static int check_tile(pm_ctx *ctx, const pm_heat_layer *l, int z, uint32_t x, uint32_t y,
                      int size)
{
    if (!l)
        return PM_ERR(ctx, PM_E_USAGE, "heat tile: no layer");
    if (z < 0 || z > MAX_ZOOM)
        return PM_ERR(ctx, PM_E_USAGE, "heat tile %d/%u/%u: zoom outside 0 .. %d", z, x, y,
                      MAX_ZOOM);
    if (x >> z || y >> z)
        return PM_ERR(ctx, PM_E_USAGE, "heat tile %d/%u/%u: x or y outside 0 .. %lu", z, x, y,
                      (1ul << z) - 1);
    if (size != 256 && size != 512)
        return PM_ERR(ctx, PM_E_USAGE, "heat tile %d/%u/%u: size %d is not 256 or 512", z, x, y,
                      size);
    return PM_OK;
}

/* The index span [*lo, *hi] of the pixel centres c0 + (i + ½)·pix (or
 * c0 − …, dir = −1) within h of v, widened by up to one index at each end
 * (so that rounding never loses one; the row kernels below test every
 * pixel against the disc exactly) and clipped to the tile; 0 when none
 * can be.  (int) truncates, which is floor() for the non-negative values
 * it is given. */
static inline int span(double c0, int dir, double inv_pix, int size, double v, double h,
                       int *lo, int *hi)
{
    double d = dir * (v - c0);
    double a = (d - h) * inv_pix - 0.5, b = (d + h) * inv_pix - 0.5;
    if (!(b >= 0) || !(a <= size - 1))   /* also NaN */
        return 0;
    *lo = a > 0 ? (int)a : 0;
    *hi = b + 1 < size - 1 ? (int)(b + 1) : size - 1;
    return *lo <= *hi;
}

/* The row kernels: pixels a .. b of a row at dy² from the point (px on
 * the row), each taking its term only where dx² + dy² < R² — the exact
 * disc, tested per pixel with a mask so that the loops have no branch.
 * Pixels outside add +0.0, which changes no sum.  Four at a time in GCC's
 * vector extension (SSE2 pairs by default, one AVX2 register in the
 * target clone of tile_accumulate()), the same expression per pixel as
 * the scalar tail, so the clones give identical sums. */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones) && __has_attribute(vector_size)
#define PM_HEAT_VECTOR 1
#endif
#endif

#ifdef PM_HEAT_VECTOR
typedef double v4d __attribute__((vector_size(32)));
typedef long long v4l __attribute__((vector_size(32)));
#define LOAD4(p, out) memcpy(&(out), (p), sizeof(v4d))
#endif

static inline __attribute__((always_inline)) void row_quartic(double *row, const double *cx,
                                                              int a, int b, double px,
                                                              double dy2, double r2, double inv,
                                                              double w)
{
    int i = a;
#ifdef PM_HEAT_VECTOR
    for (; i + 3 <= b; i += 4) {
        v4d c, r;
        LOAD4(cx + i, c);
        LOAD4(row + i, r);
        v4d dx = c - px, d2 = dx * dx + dy2, u = 1 - d2 * inv, add = w * (u * u);
        v4l in = d2 < r2;
        r += (v4d)((v4l)add & in);
        memcpy(row + i, &r, sizeof r);
    }
#endif
    for (; i <= b; i++) {
        double dx = cx[i] - px, d2 = dx * dx + dy2, u = 1 - d2 * inv;
        if (d2 < r2)
            row[i] += w * (u * u);
    }
}

static inline __attribute__((always_inline)) void row_gauss(double *row, const double *cx,
                                                            const double *gx, int a, int b,
                                                            double px, double dy2, double r2,
                                                            double gy)
{
    int i = a;
#ifdef PM_HEAT_VECTOR
    for (; i + 3 <= b; i += 4) {
        v4d c, g, r;
        LOAD4(cx + i, c);
        LOAD4(gx + i, g);
        LOAD4(row + i, r);
        v4d dx = c - px, add = g * gy;
        v4l in = dx * dx + dy2 < r2;
        r += (v4d)((v4l)add & in);
        memcpy(row + i, &r, sizeof r);
    }
#endif
    for (; i <= b; i++) {
        double dx = cx[i] - px;
        if (dx * dx + dy2 < r2)
            row[i] += gx[i] * gy;
    }
}

/* Adds point (px, py) of weight w with grid radius R to the accumulator:
 * row by row over a span a little wider than the disc's chord. */
static inline __attribute__((always_inline)) void splat(const tile *t, pm_kernel kern, double px,
                                                        double py, double R, double w,
                                                        double *acc)
{
    int i0, i1, j0, j1;
    if (!span(t->y_top, -1, t->inv_pix, t->size, py, R, &j0, &j1) ||
        !span(t->x0, 1, t->inv_pix, t->size, px, R, &i0, &i1))
        return;
    double r2 = R * R, inv = 1 / r2, gx[MAX_TILE];
    if (kern == PM_KERNEL_GAUSSIAN)
        for (int i = i0; i <= i1; i++) {
            double dx = t->cx[i] - px;
            gx[i] = exp(-GAUSS_C * dx * dx * inv);
        }
    for (int j = j0; j <= j1; j++) {
        double dy = t->cy[j] - py, dy2 = dy * dy;
        int a = i0, b = i1;
        if (dy2 >= r2)
            continue;
        /* a narrow disc takes its whole box (the masks cut it); a wider one
         * the span of the row's chord, within the columns gx has */
        if (i1 - i0 >= 8 && span(t->x0, 1, t->inv_pix, t->size, px, sqrt(r2 - dy2), &a, &b)) {
            a = a < i0 ? i0 : a;
            b = b > i1 ? i1 : b;
        }
        double *row = acc + (size_t)j * t->size;
        if (kern == PM_KERNEL_GAUSSIAN)
            row_gauss(row, t->cx, gx, a, b, px, dy2, r2, w * exp(-GAUSS_C * dy2 * inv));
        else
            row_quartic(row, t->cx, a, b, px, dy2, r2, inv, w);
    }
}

#ifdef PM_HEAT_VECTOR
__attribute__((target_clones("avx2", "default")))
#endif
static void tile_accumulate(const src *s, pm_kernel kern, const tile *t_in, double *acc)
{
    /* a copy the stores to acc cannot change (for the compiler, they could
     * change *t_in's doubles, which it would then read again after each) */
    const tile tl = *t_in, *t = &tl;
    pm_range rg[PM_POINTS_MAX_RANGES];
    size_t n = pm_codes_ranges(s->code, s->n, s->shift, &t->grown, PM_COVER_FINE, rg);
    for (size_t k = 0; k < n; k++)
        for (size_t i = rg[k].lo; i < rg[k].hi; i++)
            if (src_passes(s, i) && pm_box_has(&t->grown, s->x[i], s->y[i]))
                splat(t, kern, s->x[i], s->y[i], src_radius(s, &t->r, i), src_weight(s, i), acc);
}

/* The lattice of every stride-th pixel corner of t, as a tile whose pixel
 * centres are those corners: t->size/stride + 1 a side. */
static void lattice_init(const tile *t, int stride, tile *lat)
{
    *lat = *t;
    lat->size = t->size / stride + 1;
    lat->pix = t->pix * stride;
    lat->inv_pix = 1 / lat->pix;
    lat->x0 = t->x0 - 0.5 * lat->pix;
    lat->y_top = t->y_top + 0.5 * lat->pix;
    for (int i = 0; i < lat->size; i++) {
        lat->cx[i] = t->x0 + i * lat->pix;
        lat->cy[i] = t->y_top - i * lat->pix;
    }
}

/* Pixel centres of t from the lattice's values, bilinearly. */
static void lattice_interpolate(const tile *t, int stride, const tile *lat, const double *v,
                                double *acc)
{
    size_t ls = (size_t)lat->size;
    int col[MAX_TILE];       /* pixel i lies between lattice columns col[i] and col[i] + 1 */
    double frac[MAX_TILE];   /* at this fraction of the step */
    for (int i = 0; i < t->size; i++) {
        double f = (i + 0.5) / stride;
        col[i] = (int)f;
        frac[i] = f - col[i];
    }
    for (int j = 0; j < t->size; j++) {
        int b = col[j];
        double wy = frac[j];
        for (int i = 0; i < t->size; i++) {
            int a = col[i];
            double wx = frac[i];
            const double *r0 = v + (size_t)b * ls + a, *r1 = r0 + ls;
            acc[(size_t)j * t->size + i] = (1 - wy) * ((1 - wx) * r0[0] + wx * r0[1]) +
                                           wy * ((1 - wx) * r1[0] + wx * r1[1]);
        }
    }
}

/* The pyramid's cost of a tile, in the units of EXACT_BUDGET: each group
 * drawn (n of them) costs GROUP_COST plus the lattice nodes of its disc. */
static double pyramid_cost(double n, double r_px, int stride, int size)
{
    double disc = fmin(M_PI * (r_px / stride + 1) * (r_px / stride + 1),
                       (double)(size / stride + 1) * (size / stride + 1));
    return n * (GROUP_COST + disc);
}

/* The stride of the lattice: the largest power of two <= limit_px
 * (1 .. STRIDE_MAX) that leaves at least 8 steps across the tile. */
static int stride_for(double limit_px, int size)
{
    int stride = 1;
    while (stride < STRIDE_MAX && stride * 2 <= limit_px && size / (stride * 2) >= 8)
        stride *= 2;
    return stride;
}

/* How a pyramid tile is drawn: the level and the lattice's stride. */
typedef struct plan {
    const pm_heat_bins *b;
    int stride;
    double cost;   /* pyramid_cost() of it (the budget when the level was not counted) */
} plan;

/* The finest plan whose cost stays within PYRAMID_BUDGET (file comment):
 * from cells of max(R/8, stride/3) and a stride of R/8 (r_px: R in pixels), coarser by
 * one depth at a time, the stride following the cell side once it is
 * larger, down to the depth whose cost is within the budget even with
 * every cell of the grown box occupied. */
static int plan_tile(pm_ctx *ctx, const pm_heat_layer *l, const tile *t, double r_min, plan *pl)
{
    double r_px = r_min * t->inv_pix, side_px = (t->grown.x1 - t->grown.x0) * t->inv_pix;
    int d = depth_for(fmax(r_min / 8, stride_for(r_px / 8, t->size) * t->pix / 3)), d_min = d;
    for (; d_min > 0; d_min--) {   /* the coarsest depth needed: every cell occupied */
        double h_px = ldexp(2 * E_M, -d_min) * t->inv_pix, cells = ceil(side_px / h_px) + 1;
        if (pyramid_cost(cells * cells, r_px, stride_for(fmax(r_px / 8, h_px), t->size),
                         t->size) <= PYRAMID_BUDGET)
            break;
    }
    for (;; d--) {
        int st = layer_level(ctx, l, d, &pl->b);
        if (st)
            return st;
        double h_px = ldexp(2 * E_M, -d) * t->inv_pix;
        pl->stride = stride_for(fmax(r_px / 8, h_px), t->size);
        pl->cost = PYRAMID_BUDGET;
        if (d <= d_min)
            return PM_OK;
        pm_range rg[PM_POINTS_MAX_RANGES];
        size_t nr = pm_codes_ranges(pl->b->code, pl->b->n, 2 * (PM_HEAT_MORTON_ZOOM - d), &t->grown,
                                    PM_COVER_COARSE, rg);
        double n = 0;
        for (size_t k = 0; k < nr; k++)
            n += (double)(rg[k].hi - rg[k].lo);
        if ((pl->cost = pyramid_cost(n, r_px, pl->stride, t->size)) <= PYRAMID_BUDGET)
            return PM_OK;
    }
}

/* ---- dense tiles: deposit and convolve ---------------------------------------- */

/* The convolution of a dense pyramid tile (file comment) on grid g (the
 * tile's pixel centres, or its lattice): the groups of a level with
 * cells of at most a node, each spread over the 4 × 4 nodes around it
 * with the weights of cubic Lagrange interpolation (so that a node's sum
 * below is the kernel interpolated cubically at the group, exact for the
 * quartic's polynomial but for the disc's edge), on g grown by a margin
 * of m nodes (as far as a kernel reaches, plus three: the stencil's
 * reach and a node of rounding); then each node of g sums the kernel's
 * taps over the nodes within R of it, R taken at the source node's
 * northing. */
typedef struct conv {
    int n, m, w;       /* nodes of g a side, the margin, the grown side n + 2m */
    double *in;        /* w × w deposited weights */
    int *lo, *hi;      /* per grown row: its first and last non-zero column (lo > hi: none),
                        * found after the deposit */
} conv;

static void conv_free(conv *c)
{
    pm_free(c->in);
    pm_free(c->lo);
    pm_free(c->hi);
}

static int conv_init(conv *c, int n, int m)
{
    c->n = n, c->m = m, c->w = n + 2 * m;
    c->in = pm_calloc((size_t)c->w * c->w, sizeof *c->in);
    c->lo = pm_malloc((size_t)c->w * sizeof *c->lo);
    c->hi = pm_malloc((size_t)c->w * sizeof *c->hi);
    return c->in && c->lo && c->hi ? 0 : -1;
}

/* The cubic Lagrange weights of nodes −1, 0, 1, 2 at t (0 <= t < 1). */
static void cubic_weights(double t, double w[4])
{
    w[0] = -t * (t - 1) * (t - 2) / 6;
    w[1] = (t + 1) * (t - 1) * (t - 2) / 2;
    w[2] = -(t + 1) * t * (t - 2) / 2;
    w[3] = (t + 1) * t * (t - 1) / 6;
}

#ifdef PM_HEAT_VECTOR
__attribute__((target_clones("avx2", "default")))
#endif
static void conv_deposit(conv *c, const tile *g, const src *s)
{
    pm_range rg[PM_POINTS_MAX_RANGES];
    size_t nr = pm_codes_ranges(s->code, s->n, s->shift, &g->grown, PM_COVER_FINE, rg);
    /* in locals: for the compiler, the stores below could change c's fields */
    const pm_box box = g->grown;
    const double x_first = g->cx[0], y_first = g->cy[0], inv = g->inv_pix, m = c->m;
    const double end = c->w - 2;   /* a group at fx takes nodes ⌊fx⌋ − 1 .. ⌊fx⌋ + 2 */
    const size_t w = (size_t)c->w;
    double *in = c->in;
    int *lo = c->lo, *hi = c->hi;
    for (size_t k = 0; k < nr; k++)
        for (size_t i = rg[k].lo; i < rg[k].hi; i++) {
            double x = s->x[i], y = s->y[i];
            if (!pm_box_has(&box, x, y))
                continue;
            double fx = (x - x_first) * inv + m, fy = (y_first - y) * inv + m;
            if (!(fx >= 1 && fy >= 1 && fx < end && fy < end))
                continue;   /* never within the grown box: the margin exceeds the reach */
            int a = (int)fx - 1, b = (int)fy - 1;
            double wx[4], wy[4], wt = src_weight(s, i);
            cubic_weights(fx - (a + 1), wx);
            cubic_weights(fy - (b + 1), wy);
            double *row = in + (size_t)b * w + a;
            for (int q = 0; q < 4; q++, row += w) {
                double wq = wt * wy[q];
#ifdef PM_HEAT_VECTOR
                v4d r, xv;
                LOAD4(row, r);
                LOAD4(wx, xv);
                r += wq * xv;
                memcpy(row, &r, sizeof r);
#else
                for (int e = 0; e < 4; e++)
                    row[e] += wq * wx[e];
#endif
            }
        }
    /* each row's first and last non-zero node (a node left at zero adds
     * nothing to a sum) */
    for (size_t j = 0; j < w; j++) {
        const double *r = in + j * w;
        int l = 0, h = (int)w - 1;
        while (l <= h && r[l] == 0)
            l++;
        while (h >= l && r[h] == 0)
            h--;
        lo[j] = l <= h ? l : (int)w;
        hi[j] = l <= h ? h : -1;
    }
}

/* out[i] += Σ k[d + h] · in[i + d] over d = −h .. h, for i = a .. b: a row
 * of taps, summed in registers (sixteen outputs at a time, then four), so
 * that each output is loaded and stored once per source row and offset dy. */
static inline __attribute__((always_inline)) void row_taps(double *out, const double *in,
                                                           const double *k, int h, int a, int b)
{
    int i = a;
#ifdef PM_HEAT_VECTOR
    for (; i + 15 <= b; i += 16) {   /* four sums at once: an FMA's latency hidden */
        v4d o0, o1, o2, o3, v0, v1, v2, v3;
        LOAD4(out + i, o0);
        LOAD4(out + i + 4, o1);
        LOAD4(out + i + 8, o2);
        LOAD4(out + i + 12, o3);
        for (int d = -h; d <= h; d++) {
            const double *p = in + i + d;
            double kd = k[d + h];
            LOAD4(p, v0);
            LOAD4(p + 4, v1);
            LOAD4(p + 8, v2);
            LOAD4(p + 12, v3);
            o0 += kd * v0;
            o1 += kd * v1;
            o2 += kd * v2;
            o3 += kd * v3;
        }
        memcpy(out + i, &o0, sizeof o0);
        memcpy(out + i + 4, &o1, sizeof o1);
        memcpy(out + i + 8, &o2, sizeof o2);
        memcpy(out + i + 12, &o3, sizeof o3);
    }
    for (; i + 3 <= b; i += 4) {
        v4d o, v;
        LOAD4(out + i, o);
        for (int d = -h; d <= h; d++) {
            LOAD4(in + i + d, v);
            o += k[d + h] * v;
        }
        memcpy(out + i, &o, sizeof o);
    }
#endif
    for (; i <= b; i++) {
        double o = out[i];
        for (int d = -h; d <= h; d++)
            o += k[d + h] * in[i + d];
        out[i] = o;
    }
}

#ifdef PM_HEAT_VECTOR
__attribute__((target_clones("avx2", "default")))
#endif
static void conv_sum(const conv *c, const tile *g, pm_grid grid, pm_kernel kern, double *out)
{
    double gk[CONV_MARGIN_MAX + 1], k[2 * CONV_MARGIN_MAX + 1];
    for (int jj = 0; jj < c->w; jj++) {
        if (c->lo[jj] > c->hi[jj])
            continue;
        double y = g->cy[0] - (jj - c->m) * g->pix;
        double rn = (g->r.fixed_m > 0 ? g->r.fixed_m : g->r.ground_m * pm_grid_scale_at_y(grid, y)) *
                    g->inv_pix, r2 = rn * rn;
        int dmax = rn < c->m - 1 ? (int)rn : c->m - 1;   /* compared before the cast */
        if (kern == PM_KERNEL_GAUSSIAN)
            for (int d = 0; d <= dmax; d++)
                gk[d] = exp(-GAUSS_C * d * d / r2);
        /* out node i reads the grown node i + m + dx */
        const double *irow = c->in + (size_t)jj * c->w + c->m;
        for (int dy = -dmax; dy <= dmax; dy++) {
            int j = jj - c->m - dy;
            double dy2 = (double)dy * dy;
            if (j < 0 || j >= c->n || dy2 >= r2)
                continue;
            double h = sqrt(r2 - dy2);
            int dx0 = h < dmax ? (int)h : dmax;
            double gy = kern == PM_KERNEL_GAUSSIAN ? gk[dy < 0 ? -dy : dy] : 0;
            for (int dx = -dx0; dx <= dx0; dx++) {
                double d2 = dx * dx + dy2, u = 1 - d2 / r2;
                k[dx + dx0] = d2 >= r2                     ? 0
                              : kern == PM_KERNEL_GAUSSIAN ? gk[dx < 0 ? -dx : dx] * gy
                                                           : u * u;
            }
            /* the outputs that a non-zero node of the row reaches */
            int a = c->lo[jj] - c->m - dx0, b = c->hi[jj] - c->m + dx0;
            a = a < 0 ? 0 : a;
            b = b > c->n - 1 ? c->n - 1 : b;
            if (a <= b)
                row_taps(out + (size_t)j * c->n, irow, k, dx0, a, b);
        }
    }
}

/* The convolution's grid for tile t: the pixel centres (stride 1) or the
 * lattice of stride s, and its margin; 0 when it cannot be used (a radius
 * under CONV_R_MIN nodes, or a reach beyond CONV_MARGIN_MAX). */
static int conv_grid(const tile *t, int stride, double r_min, tile *g, int *margin)
{
    if (stride == 1)
        *g = *t;
    else
        lattice_init(t, stride, g);
    double reach = t->grown.x1 - (t->x0 + t->size * t->pix);
    double m = ceil(reach * g->inv_pix) + 3;
    if (r_min * g->inv_pix < CONV_R_MIN || !(m <= CONV_MARGIN_MAX))
        return 0;
    *margin = (int)m;
    return 1;
}

/* Groups of level b in the grown box of t (an upper bound, from the
 * Morton ranges). */
static double groups_in(const pm_heat_bins *b, const tile *t)
{
    pm_range rg[PM_POINTS_MAX_RANGES];
    size_t nr = pm_codes_ranges(b->code, b->n, 2 * (PM_HEAT_MORTON_ZOOM - b->depth), &t->grown,
                                PM_COVER_COARSE, rg);
    double n = 0;
    for (size_t k = 0; k < nr; k++)
        n += (double)(rg[k].hi - rg[k].lo);
    return n;
}

/* The tile from the pyramid when its exact sum would cost more than
 * EXACT_BUDGET (file comment); *how PM_HEAT_EXACT (nothing drawn) when
 * the exact sum is cheap. */
static int tile_from_pyramid(pm_ctx *ctx, const pm_heat_layer *l, const tile *t, double *acc,
                             pm_heat_method *how)
{
    *how = PM_HEAT_EXACT;
    const pm_points *p = l->pts;
    pm_range rg[PM_POINTS_MAX_RANGES];
    size_t n = pm_points_ranges(p, &t->grown, PM_COVER_COARSE, rg);
    double pts = 0;
    for (size_t k = 0; k < n; k++)
        pts += (double)(rg[k].hi - rg[k].lo);
    double r_min = radius_min(p->grid, &t->r, box_y_near(&t->grown)), r_px = r_min * t->inv_pix;
    double disc = fmin(M_PI * (r_px + 1) * (r_px + 1), (double)t->size * t->size);
    if (l->exact || pts * disc <= EXACT_BUDGET)
        return PM_OK;
    plan pl;
    int st = plan_tile(ctx, l, t, r_min, &pl);
    if (st)
        return st;
    int stride = pl.stride, margin = 0, use_conv = 0;
    tile *g = pm_malloc(sizeof *g);
    if (!g)
        return PM_ERR(ctx, PM_E_NOMEM, "heat tile: out of memory");
    const pm_heat_bins *cb = NULL;
    int cs = stride_for(r_px / 8, t->size);
    if (conv_grid(t, cs, r_min, g, &margin) &&
        (st = layer_level(ctx, l, depth_for(fmin(g->pix, r_min / 8)), &cb)) == PM_OK) {
        double rn = r_min * g->inv_pix, side = g->size + 2.0 * margin;
        double cost = groups_in(cb, g) * CONV_GROUP_COST +
                      side * g->size * M_PI * rn * rn * CONV_TAP_COST;
        use_conv = cost < pl.cost;
    }
    if (st) {
        pm_free(g);
        return st;
    }
    *how = use_conv ? PM_HEAT_CONVOLVE : PM_HEAT_SPLAT;
    if (use_conv)
        stride = cs;
    else if (stride > 1)
        lattice_init(t, stride, g);
    else
        *g = *t;
    double *v = stride == 1 ? acc : pm_calloc((size_t)g->size * g->size, sizeof *v);
    conv c = {0};
    int ok = v != NULL;
    if (ok && use_conv && (ok = conv_init(&c, g->size, margin) == 0)) {
        src from = bins_src(cb);
        conv_deposit(&c, g, &from);
        conv_sum(&c, g, p->grid, l->o.kernel, v);
    } else if (ok && !use_conv) {
        src from = bins_src(pl.b);
        tile_accumulate(&from, l->o.kernel, g, v);
    }
    if (ok && stride > 1)
        lattice_interpolate(t, stride, g, v, acc);
    conv_free(&c);
    if (v != acc)
        pm_free(v);
    pm_free(g);
    return ok ? PM_OK : PM_ERR(ctx, PM_E_NOMEM, "heat tile: out of memory");
}

/* Checks the arguments and computes the tile's density into a new
 * accumulator (*acc, size² doubles, pm_free) and *t, saying *how. */
static int tile_density(pm_ctx *ctx, const pm_heat_layer *l, int z, uint32_t x, uint32_t y,
                        int size, tile *t, double **acc, pm_heat_method *how)
{
    *acc = NULL;
    int st = check_tile(ctx, l, z, x, y, size);
    if (st)
        return st;
    *acc = pm_calloc((size_t)size * size, sizeof **acc);
    if (!*acc)
        return PM_ERR(ctx, PM_E_NOMEM, "heat tile %d/%u/%u: out of memory", z, x, y);
    tile_init(l, z, x, y, size, t);
    if ((st = tile_from_pyramid(ctx, l, t, *acc, how)) == PM_OK && *how == PM_HEAT_EXACT) {
        src from = points_src(l);
        tile_accumulate(&from, l->o.kernel, t, *acc);
    }
    if (st) {
        pm_free(*acc);
        *acc = NULL;
    }
    return st;
}

int pm_heat_tile_density(pm_ctx *ctx, const pm_heat_layer *l, int z, uint32_t x, uint32_t y,
                         int size, float *grid)
{
    pm_heat_method how;
    return pm_heat_tile_density_how(ctx, l, z, x, y, size, grid, &how);
}

int pm_heat_tile_density_how(pm_ctx *ctx, const pm_heat_layer *l, int z, uint32_t x,
                             uint32_t y, int size, float *grid, pm_heat_method *how)
{
    tile *t = pm_malloc(sizeof *t);
    if (!t)
        return PM_ERR(ctx, PM_E_NOMEM, "heat tile %d/%u/%u: out of memory", z, x, y);
    double *acc;
    int st = tile_density(ctx, l, z, x, y, size, t, &acc, how);
    if (!st)
        for (size_t i = 0; i < (size_t)size * size; i++)
            grid[i] = (float)acc[i];
    pm_free(acc);
    pm_free(t);
    return st;
}

/* ---- colour -------------------------------------------------------------------- */

/* The table entry of density v by binary search over th; -1 below the
 * scale (transparent). */
static int lut_index(const double th[256], double v)
{
    if (!(v >= th[0]))
        return -1;
    int k = 0;
    for (int step = 128; step; step >>= 1)
        k += v >= th[k + step] ? step : 0;
    return k;
}

/* RGBA of the densities; returns 1 when no pixel has a colour. */
static int colourize(const pm_heat_layer *l, const double *acc, size_t n, uint8_t *rgba)
{
    int empty = 1;
    for (size_t i = 0; i < n; i++) {
        int k = lut_index(l->th, acc[i]);
        if (k < 0) {
            memset(rgba + 4 * i, 0, 4);
            continue;
        }
        memcpy(rgba + 4 * i, l->lut[k], 4);
        empty = empty && !l->lut[k][3];
    }
    return empty;
}

size_t pm_heat_legend(const pm_heat_layer *l, pm_heat_stop *stops, size_t max)
{
    size_t n = max < 16 ? max : 16;
    for (size_t k = 0; k < n; k++) {
        double t = n > 1 ? (double)k / (double)(n - 1) : 1.0;
        int e = (int)lround(255 * t);
        stops[k] = (pm_heat_stop){l->v_max / VMIN_RATIO * pow(VMIN_RATIO, t), l->lut[e][0],
                                  l->lut[e][1], l->lut[e][2], l->lut[e][3]};
    }
    return n;
}

/* ---- PNG ------------------------------------------------------------------------ */

typedef struct png_sink {
    png_structp png;
    png_infop info;
    uint8_t *buf;
    size_t len, cap;
    int nomem;
    char msg[160];
    jmp_buf jump;
} png_sink;

static void sink_error(png_structp png, png_const_charp msg)
{
    png_sink *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    longjmp(s->jump, 1);
}

static void sink_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static png_voidp sink_alloc(png_structp png, png_alloc_size_t size)
{
    void *p = pm_malloc(size);
    if (!p)
        ((png_sink *)png_get_mem_ptr(png))->nomem = 1;
    return p;
}

static void sink_free(png_structp png, png_voidp p)
{
    (void)png;
    pm_free(p);
}

static void sink_write(png_structp png, png_bytep data, png_size_t n)
{
    png_sink *s = png_get_io_ptr(png);
    if (s->cap - s->len < n) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap - s->len < n)
            cap *= 2;
        uint8_t *b = pm_realloc(s->buf, cap);
        if (!b) {
            s->nomem = 1;
            png_error(png, "out of memory");
        }
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
}

static void sink_flush(png_structp png) { (void)png; }

/* Everything libpng does, under one setjmp; -1 when libpng failed. */
static int png_write_all(png_sink *s, const uint8_t *rgba, int size)
{
    if (setjmp(s->jump))
        return -1;
    s->png = png_create_write_struct_2(PNG_LIBPNG_VER_STRING, s, sink_error, sink_warning, s,
                                       sink_alloc, sink_free);
    if (!s->png || !(s->info = png_create_info_struct(s->png))) {
        s->nomem = 1;
        return -1;
    }
    png_set_write_fn(s->png, s, sink_write, sink_flush);
    png_set_compression_level(s->png, 1);
    png_set_filter(s->png, PNG_FILTER_TYPE_BASE, PNG_FILTER_NONE);
    png_set_IHDR(s->png, s->info, (png_uint_32)size, (png_uint_32)size, 8, PNG_COLOR_TYPE_RGBA,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_BASE, PNG_FILTER_TYPE_BASE);
    png_write_info(s->png, s->info);
    for (const uint8_t *row = rgba; row < rgba + (size_t)size * size * 4; row += (size_t)size * 4)
        png_write_row(s->png, row);
    png_write_end(s->png, NULL);
    return 0;
}

int pm_heat_png_encode(pm_ctx *ctx, const uint8_t *rgba, int size, uint8_t **png, size_t *len)
{
    *png = NULL;
    *len = 0;
    png_sink s;
    memset(&s, 0, sizeof s);
    int rc = png_write_all(&s, rgba, size);
    if (s.png)
        png_destroy_write_struct(&s.png, &s.info);
    if (rc) {
        pm_free(s.buf);
        if (s.nomem)
            return PM_ERR(ctx, PM_E_NOMEM, "PNG of %d px: out of memory", size);
        return PM_ERR(ctx, PM_E_RENDER, "PNG of %d px: libpng: %s", size, s.msg);
    }
    *png = s.buf;
    *len = s.len;
    return PM_OK;
}

int pm_heat_tile_png(pm_ctx *ctx, const pm_heat_layer *l, int z, uint32_t x, uint32_t y,
                     int size, uint8_t **png, size_t *len, int *empty)
{
    *png = NULL;
    *len = 0;
    *empty = 1;
    tile *t = pm_malloc(sizeof *t);
    if (!t)
        return PM_ERR(ctx, PM_E_NOMEM, "heat tile %d/%u/%u: out of memory", z, x, y);
    double *acc;
    uint8_t *rgba = NULL;
    pm_heat_method how;
    int st = tile_density(ctx, l, z, x, y, size, t, &acc, &how);
    if (!st && !(rgba = pm_malloc((size_t)size * size * 4)))
        st = PM_ERR(ctx, PM_E_NOMEM, "heat tile %d/%u/%u: out of memory", z, x, y);
    if (!st) {
        int e = colourize(l, acc, (size_t)size * size, rgba);
        st = pm_heat_png_encode(ctx, rgba, size, png, len);
        if (!st)
            *empty = e;
    }
    pm_free(rgba);
    pm_free(acc);
    pm_free(t);
    return st;
}
