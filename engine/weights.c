/* weights.c — spatial weights (pm_weights.h): queen contiguity between
 * districts with GEOS, distance-band and k-nearest-neighbour weights over
 * points on a plane, all stored as CSR rows.
 *
 * Queen.  Every district is prepared (GEOSPrepare) and put in an STRtree;
 * for district i the tree gives the districts whose envelope meets i's
 * (grown by the snapping tolerance), and each candidate j > i is tested
 * once: GEOSPreparedIntersects (any common point); with snapping, failing
 * that, GEOSPreparedDistanceWithin at a tolerance in degrees that is
 * generous at i's latitudes, confirmed by the geodesic distance between
 * the two nearest points.  Pairs found once give both rows.
 *
 * Points.  Both point weights use one index: the points sorted by square
 * cell (row, then column).  A distance band of d looks in the 3 × 3 cells
 * of side d around a point; k nearest neighbours look ring by ring around
 * the point's cell until the k-th best distance is below the distance to
 * the next ring.
 */
#include "pm_weights.h"
#include "pm_alloc.h"

#include <geodesic.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SNAP_M 10000.0
#define MIN_M_PER_DEG_LAT 110574.0
#define M_PER_DEG_EQUATOR 111320.0
#define MAX_LAT_FOR_SNAP 89.0
#define MAX_CELL_INDEX 4.0e18
#define ISLANDS_NAMED 5

struct pm_weights {
    size_t n;
    size_t *offset;      /* n + 1 */
    size_t *neighbour;   /* offset[n] */
    double *weight;      /* offset[n] */
    size_t islands;
    int row_standardised;
};

/* ---- pairs and CSR ---------------------------------------------------------- */

typedef struct pair {
    size_t a, b;
} pair;

typedef struct pairs {
    pair *v;
    size_t n, cap;
    int oom;
} pairs;

static void pairs_push(pairs *p, size_t a, size_t b)
{
    if (p->oom)
        return;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        pair *v = pm_reallocarray(p->v, cap, sizeof *v);
        if (!v) {
            p->oom = 1;
            return;
        }
        p->v = v;
        p->cap = cap;
    }
    p->v[p->n++] = (pair){a, b};
}

static int cmp_pair(const void *x, const void *y)
{
    const pair *p = x, *q = y;
    if (p->a != q->a)
        return p->a < q->a ? -1 : 1;
    return (p->b > q->b) - (p->b < q->b);
}

static int weights_alloc(pm_ctx *ctx, size_t n, size_t links, pm_weights **out)
{
    pm_weights *w = pm_calloc(1, sizeof *w);
    if (w) {
        w->n = n;
        w->offset = pm_calloc(n + 1, sizeof *w->offset);
        w->neighbour = pm_calloc(links ? links : 1, sizeof *w->neighbour);
        w->weight = pm_calloc(links ? links : 1, sizeof *w->weight);
    }
    if (!w || !w->offset || !w->neighbour || !w->weight) {
        pm_weights_free(w);
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory for weights of %zu units, %zu links", n,
                      links);
    }
    *out = w;
    return PM_OK;
}

static void count_islands(pm_weights *w)
{
    w->islands = 0;
    for (size_t i = 0; i < w->n; i++)
        w->islands += w->offset[i] == w->offset[i + 1];
}

/* Binary weights from directed pairs (row a, neighbour b); with symmetric,
 * every pair also gives (b, a).  Sorts and removes duplicates in p. */
static int weights_from_pairs(pm_ctx *ctx, size_t n, pairs *p, int symmetric, pm_weights **out)
{
    size_t m = p->n;
    if (symmetric) {
        for (size_t k = 0; k < m; k++)
            pairs_push(p, p->v[k].b, p->v[k].a);
        if (p->oom)
            return PM_ERR(ctx, PM_E_NOMEM, "out of memory for %zu neighbour pairs", 2 * m);
    }
    if (p->n)
        qsort(p->v, p->n, sizeof *p->v, cmp_pair);
    size_t u = 0;
    for (size_t k = 0; k < p->n; k++)
        if (u == 0 || cmp_pair(&p->v[u - 1], &p->v[k]) != 0)
            p->v[u++] = p->v[k];
    p->n = u;
    pm_weights *w;
    int rc = weights_alloc(ctx, n, u, &w);
    if (rc)
        return rc;
    for (size_t k = 0; k < u; k++) {
        w->offset[p->v[k].a + 1]++;
        w->neighbour[k] = p->v[k].b;
        w->weight[k] = 1.0;
    }
    for (size_t i = 0; i < n; i++)
        w->offset[i + 1] += w->offset[i];
    count_islands(w);
    *out = w;
    return PM_OK;
}

int pm_weights_from_csr(pm_ctx *ctx, size_t n, const size_t *offset, const size_t *neighbour,
                        const double *weight, pm_weights **out)
{
    *out = NULL;
    if (!offset || offset[0] != 0)
        return PM_ERR(ctx, PM_E_USAGE, "weights: offset[0] must be 0");
    for (size_t i = 0; i < n; i++) {
        if (offset[i + 1] < offset[i])
            return PM_ERR(ctx, PM_E_USAGE, "weights: row %zu ends before it starts", i);
        for (size_t k = offset[i]; k < offset[i + 1]; k++) {
            if (neighbour[k] >= n || neighbour[k] == i)
                return PM_ERR(ctx, PM_E_USAGE, "weights: row %zu: neighbour %zu is %s", i,
                              neighbour[k], neighbour[k] == i ? "the unit itself" : "out of range");
            if (k > offset[i] && neighbour[k] <= neighbour[k - 1])
                return PM_ERR(ctx, PM_E_USAGE, "weights: row %zu is not ascending", i);
            if (!(isfinite(weight[k]) && weight[k] > 0))
                return PM_ERR(ctx, PM_E_USAGE, "weights: row %zu: weight %g is not > 0", i,
                              weight[k]);
        }
    }
    pm_weights *w;
    int rc = weights_alloc(ctx, n, offset[n], &w);
    if (rc)
        return rc;
    memcpy(w->offset, offset, (n + 1) * sizeof *offset);
    if (offset[n]) {
        memcpy(w->neighbour, neighbour, offset[n] * sizeof *neighbour);
        memcpy(w->weight, weight, offset[n] * sizeof *weight);
    }
    count_islands(w);
    *out = w;
    return PM_OK;
}

void pm_weights_free(pm_weights *w)
{
    if (!w)
        return;
    pm_free(w->offset);
    pm_free(w->neighbour);
    pm_free(w->weight);
    pm_free(w);
}

void pm_weights_row_standardise(pm_weights *w)
{
    for (size_t i = 0; i < w->n; i++) {
        double sum = 0;
        for (size_t k = w->offset[i]; k < w->offset[i + 1]; k++)
            sum += w->weight[k];
        for (size_t k = w->offset[i]; k < w->offset[i + 1]; k++)
            w->weight[k] /= sum;
    }
    w->row_standardised = 1;
}

int pm_weights_is_row_standardised(const pm_weights *w) { return w->row_standardised; }
size_t pm_weights_count(const pm_weights *w) { return w->n; }
size_t pm_weights_links(const pm_weights *w) { return w->offset[w->n]; }
size_t pm_weights_islands(const pm_weights *w) { return w->islands; }

size_t pm_weights_row(const pm_weights *w, size_t i, const size_t **neighbour,
                      const double **weight)
{
    if (neighbour)
        *neighbour = w->neighbour + w->offset[i];
    if (weight)
        *weight = w->weight + w->offset[i];
    return w->offset[i + 1] - w->offset[i];
}

/* ---- queen contiguity ---------------------------------------------------------- */

typedef struct queen {
    pm_ctx *ctx;
    const pm_districts *ds;
    size_t n;
    double snap_m;
    GEOSSTRtree *tree;
    const GEOSPreparedGeometry **prep;   /* NULL for an empty geometry */
    size_t *item;                        /* item[i] == i: the tree's items */
    size_t *cand;                        /* one query's candidates */
    size_t n_cand, cap_cand;
    int oom;
    struct geod_geodesic geod;
} queen;

static void queen_visit(void *item, void *user)
{
    queen *q = user;
    if (q->oom)
        return;
    if (q->n_cand == q->cap_cand) {
        size_t cap = q->cap_cand ? q->cap_cand * 2 : 32;
        size_t *v = pm_reallocarray(q->cand, cap, sizeof *v);
        if (!v) {
            q->oom = 1;
            return;
        }
        q->cand = v;
        q->cap_cand = cap;
    }
    q->cand[q->n_cand++] = *(const size_t *)item;
}

static void queen_release(queen *q)
{
    GEOSContextHandle_t h = pm_ctx_geos(q->ctx);
    if (q->tree)
        GEOSSTRtree_destroy_r(h, q->tree);
    for (size_t i = 0; q->prep && i < q->n; i++)
        if (q->prep[i])
            GEOSPreparedGeom_destroy_r(h, q->prep[i]);
    pm_free(q->prep);
    pm_free(q->item);
    pm_free(q->cand);
}

static int geos_fail(queen *q, size_t i, const char *what)
{
    return PM_ERR(q->ctx, PM_E_GEOM, "queen weights: district %zu (id \"%s\"): %s: %s", i,
                  pm_district_id(q->ds, i), what, pm_ctx_geos_msg(q->ctx));
}

static int queen_index(queen *q)
{
    GEOSContextHandle_t h = pm_ctx_geos(q->ctx);
    q->prep = pm_calloc(q->n ? q->n : 1, sizeof *q->prep);
    q->item = pm_calloc(q->n ? q->n : 1, sizeof *q->item);
    if (!q->prep || !q->item)
        return PM_ERR(q->ctx, PM_E_NOMEM, "out of memory indexing %zu districts", q->n);
    q->tree = GEOSSTRtree_create_r(h, 10);
    if (!q->tree)
        return PM_ERR(q->ctx, PM_E_GEOM, "queen weights: cannot create an STRtree: %s",
                      pm_ctx_geos_msg(q->ctx));
    for (size_t i = 0; i < q->n; i++) {
        const GEOSGeometry *g = pm_district_geom_borrow(q->ds, i);
        char empty = GEOSisEmpty_r(h, g);
        if (empty == 2)
            return geos_fail(q, i, "cannot test for emptiness");
        if (empty)
            continue;
        q->item[i] = i;
        if (!(q->prep[i] = GEOSPrepare_r(h, g)))
            return geos_fail(q, i, "cannot prepare the geometry");
        GEOSSTRtree_insert_r(h, q->tree, g, &q->item[i]);
    }
    return PM_OK;
}

/* The snapping tolerance of district i in degrees: snap_m as degrees of
 * longitude at the highest latitude of i's envelope (≥ the same distance in
 * degrees of latitude), so that every pair within snap_m is found. */
static double snap_deg(const queen *q, double ymin, double ymax)
{
    double lat = fmax(fabs(ymin), fabs(ymax)) + q->snap_m / MIN_M_PER_DEG_LAT;
    lat = fmin(lat, MAX_LAT_FOR_SNAP);
    return q->snap_m / (M_PER_DEG_EQUATOR * cos(lat * M_PI / 180.0));
}

/* The candidates of district i (j > i whose envelope meets i's, grown by
 * tol_deg), in q->cand. */
static int queen_candidates(queen *q, size_t i, double tol_deg)
{
    GEOSContextHandle_t h = pm_ctx_geos(q->ctx);
    const GEOSGeometry *g = pm_district_geom_borrow(q->ds, i);
    q->n_cand = 0;
    if (tol_deg == 0) {
        GEOSSTRtree_query_r(h, q->tree, g, queen_visit, q);
    } else {
        double x0, y0, x1, y1;
        if (!GEOSGeom_getXMin_r(h, g, &x0) || !GEOSGeom_getYMin_r(h, g, &y0) ||
            !GEOSGeom_getXMax_r(h, g, &x1) || !GEOSGeom_getYMax_r(h, g, &y1))
            return geos_fail(q, i, "cannot read the envelope");
        GEOSGeometry *box =
            GEOSGeom_createRectangle_r(h, x0 - tol_deg, y0 - tol_deg, x1 + tol_deg, y1 + tol_deg);
        if (!box)
            return geos_fail(q, i, "cannot build the query box");
        GEOSSTRtree_query_r(h, q->tree, box, queen_visit, q);
        GEOSGeom_destroy_r(h, box);
    }
    if (q->oom)
        return PM_ERR(q->ctx, PM_E_NOMEM, "out of memory collecting neighbour candidates");
    return PM_OK;
}

/* Whether districts i and j come within snap_m metres (i's tolerance in
 * degrees is tol_deg): *near = 1 or 0. */
static int queen_near(queen *q, size_t i, size_t j, double tol_deg, int *near)
{
    GEOSContextHandle_t h = pm_ctx_geos(q->ctx);
    const GEOSGeometry *gj = pm_district_geom_borrow(q->ds, j);
    *near = 0;
    char within = GEOSPreparedDistanceWithin_r(h, q->prep[i], gj, tol_deg);
    if (within == 2)
        return geos_fail(q, i, "distance test failed");
    if (!within)
        return PM_OK;
    GEOSCoordSequence *cs = GEOSPreparedNearestPoints_r(h, q->prep[i], gj);
    double x0, y0, x1, y1;
    int ok = cs && GEOSCoordSeq_getXY_r(h, cs, 0, &x0, &y0) && GEOSCoordSeq_getXY_r(h, cs, 1, &x1, &y1);
    if (cs)
        GEOSCoordSeq_destroy_r(h, cs);
    if (!ok)
        return geos_fail(q, i, "nearest points failed");
    double s12;
    geod_inverse(&q->geod, y0, x0, y1, x1, &s12, NULL, NULL);
    *near = s12 <= q->snap_m;
    return PM_OK;
}

static int queen_pairs(queen *q, pairs *out)
{
    GEOSContextHandle_t h = pm_ctx_geos(q->ctx);
    for (size_t i = 0; i < q->n; i++) {
        if (!q->prep[i])
            continue;
        double tol = 0;
        if (q->snap_m > 0) {
            const GEOSGeometry *g = pm_district_geom_borrow(q->ds, i);
            double y0, y1;
            if (!GEOSGeom_getYMin_r(h, g, &y0) || !GEOSGeom_getYMax_r(h, g, &y1))
                return geos_fail(q, i, "cannot read the envelope");
            tol = snap_deg(q, y0, y1);
        }
        int rc = queen_candidates(q, i, tol);
        if (rc)
            return rc;
        for (size_t c = 0; c < q->n_cand; c++) {
            size_t j = q->cand[c];
            if (j <= i)
                continue;
            char meets = GEOSPreparedIntersects_r(h, q->prep[i], pm_district_geom_borrow(q->ds, j));
            if (meets == 2)
                return geos_fail(q, i, "intersection test failed");
            int near = meets;
            if (!meets && q->snap_m > 0 && (rc = queen_near(q, i, j, tol, &near)))
                return rc;
            if (near)
                pairs_push(out, i, j);
        }
        if (out->oom)
            return PM_ERR(q->ctx, PM_E_NOMEM, "out of memory collecting neighbour pairs");
    }
    return PM_OK;
}

static void warn_islands(pm_ctx *ctx, const pm_districts *ds, const pm_weights *w)
{
    if (w->islands == 0)
        return;
    char names[256] = "";
    size_t len = 0, named = 0;
    for (size_t i = 0; i < w->n && named < ISLANDS_NAMED; i++) {
        if (w->offset[i] != w->offset[i + 1])
            continue;
        int k = snprintf(names + len, sizeof names - len, "%s\"%s\"", named ? ", " : "",
                         pm_district_id(ds, i));
        if (k < 0 || (size_t)k >= sizeof names - len)
            break;
        len += (size_t)k;
        named++;
    }
    pm_ctx_log(ctx, PM_LOG_WARN, "queen weights: %zu district%s without neighbours (islands): %s%s",
               w->islands, w->islands == 1 ? "" : "s", names, w->islands > named ? ", ..." : "");
}

int pm_weights_queen(pm_ctx *ctx, const pm_districts *ds, double snap_m, pm_weights **out)
{
    *out = NULL;
    if (!(snap_m >= 0 && snap_m <= MAX_SNAP_M))
        return PM_ERR(ctx, PM_E_USAGE, "queen weights: snapping tolerance %g m is not in 0..%g",
                      snap_m, MAX_SNAP_M);
    queen q = {.ctx = ctx, .ds = ds, .n = pm_districts_count(ds), .snap_m = snap_m};
    geod_init(&q.geod, 6378137.0, 1 / 298.257223563);
    pairs p = {0};
    int rc = queen_index(&q);
    if (!rc)
        rc = queen_pairs(&q, &p);
    if (!rc)
        rc = weights_from_pairs(ctx, q.n, &p, 1, out);
    queen_release(&q);
    pm_free(p.v);
    if (!rc)
        warn_islands(ctx, ds, *out);
    return rc;
}

/* ---- points: the cell index --------------------------------------------------- */

typedef struct cell_pt {
    int64_t cy, cx;
    size_t i;
} cell_pt;

typedef struct cell_index {
    const double *x, *y;
    size_t n;
    double x0, y0, side;
    cell_pt *pt;    /* sorted by (cy, cx, i) */
} cell_index;

static int cmp_cell(const void *a, const void *b)
{
    const cell_pt *p = a, *q = b;
    if (p->cy != q->cy)
        return p->cy < q->cy ? -1 : 1;
    if (p->cx != q->cx)
        return p->cx < q->cx ? -1 : 1;
    return (p->i > q->i) - (p->i < q->i);
}

static int check_points(pm_ctx *ctx, const char *what, const double *x, const double *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]) || !isfinite(y[i]))
            return PM_ERR(ctx, PM_E_USAGE, "%s: point %zu has a non-finite coordinate", what, i);
    return PM_OK;
}

/* The index of n points in cells of side `side`, from the points' lower
 * left corner. */
static int cell_index_build(pm_ctx *ctx, const char *what, const double *x, const double *y,
                            size_t n, double side, cell_index *ci)
{
    *ci = (cell_index){.x = x, .y = y, .n = n, .side = side};
    double x0 = INFINITY, y0 = INFINITY, x1 = -INFINITY, y1 = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        x0 = fmin(x0, x[i]), y0 = fmin(y0, y[i]);
        x1 = fmax(x1, x[i]), y1 = fmax(y1, y[i]);
    }
    if (n && !((x1 - x0) / side < MAX_CELL_INDEX && (y1 - y0) / side < MAX_CELL_INDEX))
        return PM_ERR(ctx, PM_E_USAGE, "%s: a distance of %g m is too small for an extent of %g m",
                      what, side, fmax(x1 - x0, y1 - y0));
    ci->x0 = x0, ci->y0 = y0;
    ci->pt = pm_calloc(n ? n : 1, sizeof *ci->pt);
    if (!ci->pt)
        return PM_ERR(ctx, PM_E_NOMEM, "%s: out of memory indexing %zu points", what, n);
    for (size_t i = 0; i < n; i++)
        ci->pt[i] = (cell_pt){(int64_t)floor((y[i] - y0) / side),
                              (int64_t)floor((x[i] - x0) / side), i};
    if (n)
        qsort(ci->pt, n, sizeof *ci->pt, cmp_cell);
    return PM_OK;
}

/* The first point in a cell >= (cy, cx). */
static size_t cell_lower(const cell_index *ci, int64_t cy, int64_t cx)
{
    size_t lo = 0, hi = ci->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const cell_pt *p = &ci->pt[mid];
        if (p->cy < cy || (p->cy == cy && p->cx < cx))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

typedef void (*cell_visit_fn)(void *user, size_t j);

/* Calls fn for every point in the cells (cy, cx0..cx1). */
static void cell_row_visit(const cell_index *ci, int64_t cy, int64_t cx0, int64_t cx1,
                           cell_visit_fn fn, void *user)
{
    for (size_t k = cell_lower(ci, cy, cx0); k < ci->n && ci->pt[k].cy == cy && ci->pt[k].cx <= cx1;
         k++)
        fn(user, ci->pt[k].i);
}

/* ---- distance band ---------------------------------------------------------- */

typedef struct band {
    const cell_index *ci;
    size_t i;
    double d2;
    pairs *p;
} band;

static void band_visit(void *user, size_t j)
{
    band *b = user;
    if (j == b->i)
        return;
    double dx = b->ci->x[j] - b->ci->x[b->i], dy = b->ci->y[j] - b->ci->y[b->i];
    if (dx * dx + dy * dy <= b->d2)
        pairs_push(b->p, b->i, j);
}

int pm_weights_distance_band(pm_ctx *ctx, const double *x_m, const double *y_m, size_t n,
                             double d_m, pm_weights **out)
{
    static const char what[] = "distance-band weights";
    *out = NULL;
    if (!(d_m > 0 && isfinite(d_m)))
        return PM_ERR(ctx, PM_E_USAGE, "%s: distance %g m is not > 0", what, d_m);
    int rc = check_points(ctx, what, x_m, y_m, n);
    cell_index ci = {0};
    if (!rc)
        rc = cell_index_build(ctx, what, x_m, y_m, n, d_m, &ci);
    pairs p = {0};
    for (size_t k = 0; !rc && k < n && !p.oom; k++) {
        const cell_pt *c = &ci.pt[k];
        band b = {&ci, c->i, d_m * d_m, &p};
        for (int64_t dy = -1; dy <= 1; dy++)
            cell_row_visit(&ci, c->cy + dy, c->cx - 1, c->cx + 1, band_visit, &b);
    }
    if (!rc && p.oom)
        rc = PM_ERR(ctx, PM_E_NOMEM, "%s: out of memory collecting neighbour pairs", what);
    if (!rc)
        rc = weights_from_pairs(ctx, n, &p, 0, out);
    pm_free(p.v);
    pm_free(ci.pt);
    return rc;
}

/* ---- k nearest neighbours --------------------------------------------------------- */

typedef struct best {
    double d2;
    size_t j;
} best;

typedef struct knn {
    const cell_index *ci;
    size_t i, k, have;
    best *b;    /* have <= k, ascending by (d2, j) */
} knn;

static int best_before(double d2, size_t j, const best *b)
{
    return d2 < b->d2 || (d2 == b->d2 && j < b->j);
}

static void knn_visit(void *user, size_t j)
{
    knn *s = user;
    if (j == s->i)
        return;
    double dx = s->ci->x[j] - s->ci->x[s->i], dy = s->ci->y[j] - s->ci->y[s->i];
    double d2 = dx * dx + dy * dy;
    if (s->have == s->k && !best_before(d2, j, &s->b[s->k - 1]))
        return;
    size_t at = s->have < s->k ? s->have++ : s->k - 1;
    while (at > 0 && best_before(d2, j, &s->b[at - 1])) {
        s->b[at] = s->b[at - 1];
        at--;
    }
    s->b[at] = (best){d2, j};
}

/* Visits Chebyshev ring r around cell (cy, cx). */
static void knn_ring(knn *s, int64_t cy, int64_t cx, int64_t r)
{
    if (r == 0) {
        cell_row_visit(s->ci, cy, cx, cx, knn_visit, s);
        return;
    }
    cell_row_visit(s->ci, cy - r, cx - r, cx + r, knn_visit, s);
    cell_row_visit(s->ci, cy + r, cx - r, cx + r, knn_visit, s);
    for (int64_t y = cy - r + 1; y <= cy + r - 1; y++) {
        cell_row_visit(s->ci, y, cx - r, cx - r, knn_visit, s);
        cell_row_visit(s->ci, y, cx + r, cx + r, knn_visit, s);
    }
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

int pm_weights_knn(pm_ctx *ctx, const double *x_m, const double *y_m, size_t n, size_t k,
                   pm_weights **out)
{
    static const char what[] = "k-nearest-neighbour weights";
    *out = NULL;
    if (k == 0)
        return PM_ERR(ctx, PM_E_USAGE, "%s: k must be at least 1", what);
    int rc = check_points(ctx, what, x_m, y_m, n);
    if (rc)
        return rc;
    if (k > (n ? n - 1 : 0))
        k = n ? n - 1 : 0;
    double x0 = INFINITY, y0 = INFINITY, x1 = -INFINITY, y1 = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        x0 = fmin(x0, x_m[i]), y0 = fmin(y0, y_m[i]);
        x1 = fmax(x1, x_m[i]), y1 = fmax(y1, y_m[i]);
    }
    /* About k points per cell: ceil(sqrt(n / k)) cells along the longer side. */
    double span = n ? fmax(x1 - x0, y1 - y0) : 0;
    double side = k ? span / ceil(sqrt((double)n / (double)k)) : 1;
    if (!(side > 0))
        side = 1;
    int64_t rings = (int64_t)ceil(span / side) + 1;
    if (k && n > SIZE_MAX / k)
        return PM_ERR(ctx, PM_E_NOMEM, "%s: %zu points × %zu neighbours is too many", what, n, k);
    cell_index ci = {0};
    pm_weights *w = NULL;
    best *b = NULL;
    if ((rc = cell_index_build(ctx, what, x_m, y_m, n, side, &ci)) ||
        (rc = weights_alloc(ctx, n, n * k, &w)))
        goto cleanup;
    if (!(b = pm_calloc(k ? k : 1, sizeof *b))) {
        rc = PM_ERR(ctx, PM_E_NOMEM, "%s: out of memory", what);
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        knn s = {&ci, i, k, 0, b};
        int64_t cy = (int64_t)floor((y_m[i] - y0) / side), cx = (int64_t)floor((x_m[i] - x0) / side);
        for (int64_t r = 0; k && r <= rings; r++) {
            knn_ring(&s, cy, cx, r);
            /* Points beyond ring r are at least r·side away. */
            double reach = (double)r * side;
            if (s.have == k && b[k - 1].d2 < reach * reach)
                break;
        }
        size_t *row = w->neighbour + i * k;
        for (size_t t = 0; t < k; t++) {
            row[t] = b[t].j;
            w->weight[i * k + t] = 1.0;
        }
        qsort(row, k, sizeof *row, cmp_size);
        w->offset[i + 1] = (i + 1) * k;
    }
    count_islands(w);
    *out = w;
    w = NULL;
cleanup:
    pm_weights_free(w);
    pm_free(ci.pt);
    pm_free(b);
    return rc;
}

/* ---- projection ---------------------------------------------------------------- */

int pm_lonlat_to_laea(pm_ctx *ctx, const double *lon_deg, const double *lat_deg, size_t n,
                      double centre_lon, double centre_lat, double *x_m, double *y_m)
{
    if (!(fabs(centre_lon) <= 360 && fabs(centre_lat) <= 90))
        return PM_ERR(ctx, PM_E_USAGE, "equal-area plane: bad centre %g, %g", centre_lon,
                      centre_lat);
    int rc = check_points(ctx, "equal-area plane", lon_deg, lat_deg, n);
    if (rc)
        return rc;
    char def[256];
    snprintf(def, sizeof def,
             "+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad "
             "+step +proj=laea +lat_0=%.12g +lon_0=%.12g +ellps=WGS84",
             centre_lat, centre_lon);
    PJ *pj = proj_create(pm_ctx_proj(ctx), def);
    if (!pj)
        return PM_ERR(ctx, PM_E_CRS, "equal-area plane: cannot create \"%s\": %s", def,
                      pm_ctx_proj_msg(ctx));
    for (size_t i = 0; i < n; i++) {
        PJ_COORD c = proj_coord(lon_deg[i], lat_deg[i], 0, 0);
        c = proj_trans(pj, PJ_FWD, c);
        if (!isfinite(c.xy.x) || !isfinite(c.xy.y)) {
            proj_destroy(pj);
            return PM_ERR(ctx, PM_E_CRS, "equal-area plane: point %zu (%.7f, %.7f) cannot be "
                          "projected: %s", i, lon_deg[i], lat_deg[i], pm_ctx_proj_msg(ctx));
        }
        x_m[i] = c.xy.x;
        y_m[i] = c.xy.y;
    }
    proj_destroy(pj);
    return PM_OK;
}
