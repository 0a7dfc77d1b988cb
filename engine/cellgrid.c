/* cellgrid.c — the equal-area grid of pm_cellgrid.h: square or pointy-top
 * hexagonal cells on a LAEA plane, kept where their centre is in a
 * district.
 *
 * Building.  The districts' extent on the plane is that of their exterior
 * rings, densified (a step of at most EXTENT_STEP_DEG degrees, so a long
 * straight edge in lon/lat bends on the plane as it should) and projected
 * with pm_lonlat_to_laea().  Every cell whose centre lies in that extent
 * is a candidate; a row of candidates is taken back to lon/lat in one
 * PROJ call and each centre located (pm_locate_point(): inside or on a
 * border keeps it).  Rows go upwards and cells eastwards, so the kept
 * cells come out in row-major order, sorted by their 64-bit key.
 *
 * Exact lattices.  Hexagon centres and corners are integer multiples of
 * two units, u = √3 s/2 across and v = s/2 up (centre (2q + r, 3r), corners
 * at (±1, ±1) and (0, ±2) from it), so a corner shared by neighbours is
 * the same double from either side; square corners are col·c, row·c.
 */
#include "pm_cellgrid.h"
#include "pm_alloc.h"
#include "pm_weights.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MIN_CELL_M 1.0
#define MAX_CELL_M 1.0e6
#define EXTENT_STEP_DEG 0.01
#define MAX_SUBSTEPS 10000
#define BAD_INDEX 1.0e9            /* grid indexes must stay well inside int32 */
#define ROW_BATCH 4096

struct pm_cellgrid {
    pm_cell_shape shape;
    double cell_m;
    double centre_lon, centre_lat;
    double ux, uy;       /* the lattice units: square c, c; hexagon √3 s/2, s/2 */
    size_t n, cap;
    int32_t *col, *row;
    uint64_t *key;       /* ascending */
    double *x, *y;
    size_t *district;
};

int pm_cell_shape_parse(const char *name)
{
    if (!strcmp(name, "square"))
        return PM_CELL_SQUARE;
    if (!strcmp(name, "hex") || !strcmp(name, "hexagon"))
        return PM_CELL_HEX;
    return -1;
}

const char *pm_cell_shape_name(pm_cell_shape s)
{
    return s == PM_CELL_HEX ? "hex" : "square";
}

/* The hexagon's side for a cell of area c². */
static double hex_side(double c)
{
    return c * sqrt(2.0 / (3.0 * sqrt(3.0)));
}

static uint64_t cell_key(int32_t col, int32_t row)
{
    return (uint64_t)((uint32_t)row ^ 0x80000000u) << 32 | ((uint32_t)col ^ 0x80000000u);
}

/* The centre of cell (col, row) on the plane. */
static void cell_centre(const pm_cellgrid *g, int32_t col, int32_t row, double *x, double *y)
{
    if (g->shape == PM_CELL_HEX) {
        *x = (2.0 * col + row) * g->ux;
        *y = 3.0 * row * g->uy;
    } else {
        *x = (col + 0.5) * g->ux;
        *y = (row + 0.5) * g->uy;
    }
}

/* The cell holding (x, y): squares by floor; hexagons by rounding the
 * fractional cube coordinates (the component that moved most is fixed). */
static void cell_of(const pm_cellgrid *g, double x, double y, double *col, double *row)
{
    if (g->shape != PM_CELL_HEX) {
        *col = floor(x / g->ux);
        *row = floor(y / g->uy);
        return;
    }
    double s = 2.0 * g->uy;
    double fr = (2.0 / 3.0) * y / s, fq = (sqrt(3.0) / 3.0 * x - y / 3.0) / s, fz = -fq - fr;
    double q = round(fq), r = round(fr), z = round(fz);
    double dq = fabs(q - fq), dr = fabs(r - fr), dz = fabs(z - fz);
    if (dq > dr && dq > dz)
        q = -r - z;
    else if (dr > dz)
        r = -q - z;
    *col = q;
    *row = r;
}

/* ---- PROJ -------------------------------------------------------------------------- */

/* The plane of pm_lonlat_to_laea(), for the inverse. */
static PJ *laea_new(pm_ctx *ctx, double lon0, double lat0)
{
    char def[256];
    snprintf(def, sizeof def,
             "+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad "
             "+step +proj=laea +lat_0=%.12g +lon_0=%.12g +ellps=WGS84",
             lat0, lon0);
    PJ *pj = proj_create(pm_ctx_proj(ctx), def);
    if (!pj)
        PM_ERR(ctx, PM_E_CRS, "equal-area grid: cannot create \"%s\": %s", def, pm_ctx_proj_msg(ctx));
    return pj;
}

/* Plane → lon/lat in place, n points. */
static int laea_inverse(pm_ctx *ctx, PJ *pj, double *x, double *y, size_t n)
{
    proj_trans_generic(pj, PJ_INV, x, sizeof *x, n, y, sizeof *y, n, NULL, 0, 0, NULL, 0, 0);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]) || !isfinite(y[i]))
            return PM_ERR(ctx, PM_E_CRS, "equal-area grid: a point of the plane has no lon/lat: %s",
                          pm_ctx_proj_msg(ctx));
    return PM_OK;
}

/* ---- the extent ---------------------------------------------------------------------- */

typedef struct extent {
    double x0, y0, x1, y1;
    double *lon, *lat;   /* scratch */
    size_t cap;
} extent;

static int scratch_reserve(pm_ctx *ctx, extent *e, size_t n)
{
    if (n <= e->cap)
        return PM_OK;
    size_t cap = n > 2 * e->cap ? n : 2 * e->cap;
    double *lon = pm_reallocarray(e->lon, cap, sizeof *lon);
    if (lon)
        e->lon = lon;
    double *lat = lon ? pm_reallocarray(e->lat, cap, sizeof *lat) : NULL;
    if (lat)
        e->lat = lat;
    if (!lon || !lat)
        return PM_ERR(ctx, PM_E_NOMEM, "equal-area grid: out of memory for %zu vertices", cap);
    e->cap = cap;
    return PM_OK;
}

/* Grows e by one exterior ring, densified and projected. */
static int extent_ring(pm_ctx *ctx, const pm_cellgrid *g, const GEOSGeometry *ring, extent *e)
{
    GEOSContextHandle_t h = pm_ctx_geos(ctx);
    const GEOSCoordSequence *cs = GEOSGeom_getCoordSeq_r(h, ring);
    unsigned int nv = 0;
    if (!cs || !GEOSCoordSeq_getSize_r(h, cs, &nv))
        return PM_ERR(ctx, PM_E_GEOM, "equal-area grid: cannot read a ring: %s", pm_ctx_geos_msg(ctx));
    size_t m = 0;
    double plon = 0, plat = 0;
    for (unsigned int k = 0; k < nv; k++) {
        double lon, lat;
        if (!GEOSCoordSeq_getXY_r(h, cs, k, &lon, &lat))
            return PM_ERR(ctx, PM_E_GEOM, "equal-area grid: cannot read a vertex: %s",
                          pm_ctx_geos_msg(ctx));
        double span = k ? fmax(fabs(lon - plon), fabs(lat - plat)) : 0;
        size_t steps = (size_t)fmin(ceil(span / EXTENT_STEP_DEG), MAX_SUBSTEPS);
        steps = steps ? steps : 1;
        int rc = scratch_reserve(ctx, e, m + steps);
        if (rc)
            return rc;
        for (size_t t = k ? 1 : steps; t <= steps; t++, m++) {
            e->lon[m] = plon + (lon - plon) * (double)t / (double)steps;
            e->lat[m] = plat + (lat - plat) * (double)t / (double)steps;
        }
        plon = lon, plat = lat;
    }
    int rc = pm_lonlat_to_laea(ctx, e->lon, e->lat, m, g->centre_lon, g->centre_lat, e->lon, e->lat);
    for (size_t i = 0; !rc && i < m; i++) {
        e->x0 = fmin(e->x0, e->lon[i]), e->x1 = fmax(e->x1, e->lon[i]);
        e->y0 = fmin(e->y0, e->lat[i]), e->y1 = fmax(e->y1, e->lat[i]);
    }
    return rc;
}

/* The extent of every district's exterior rings on the plane. */
static int extent_of(pm_ctx *ctx, const pm_cellgrid *g, const pm_districts *ds, extent *e)
{
    GEOSContextHandle_t h = pm_ctx_geos(ctx);
    e->x0 = e->y0 = INFINITY;
    e->x1 = e->y1 = -INFINITY;
    int rc = PM_OK;
    for (size_t i = 0; !rc && i < pm_districts_count(ds); i++) {
        const GEOSGeometry *geom = pm_district_geom_borrow(ds, i);
        int parts = geom ? GEOSGetNumGeometries_r(h, geom) : 0;
        for (int p = 0; !rc && p < parts; p++) {
            const GEOSGeometry *poly = GEOSGetGeometryN_r(h, geom, p);
            const GEOSGeometry *ring = poly && GEOSGeomTypeId_r(h, poly) == GEOS_POLYGON
                                           ? GEOSGetExteriorRing_r(h, poly) : NULL;
            if (ring)
                rc = extent_ring(ctx, g, ring, e);
        }
    }
    return rc;
}

/* ---- the cells ------------------------------------------------------------------------ */

static int cells_push(pm_ctx *ctx, pm_cellgrid *g, int32_t col, int32_t row, double x, double y,
                      size_t district)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 1024;
        int32_t *c = pm_reallocarray(g->col, cap, sizeof *c);
        if (c)
            g->col = c;
        int32_t *r = c ? pm_reallocarray(g->row, cap, sizeof *r) : NULL;
        if (r)
            g->row = r;
        uint64_t *k = r ? pm_reallocarray(g->key, cap, sizeof *k) : NULL;
        if (k)
            g->key = k;
        double *xs = k ? pm_reallocarray(g->x, cap, sizeof *xs) : NULL;
        if (xs)
            g->x = xs;
        double *ys = xs ? pm_reallocarray(g->y, cap, sizeof *ys) : NULL;
        if (ys)
            g->y = ys;
        size_t *d = ys ? pm_reallocarray(g->district, cap, sizeof *d) : NULL;
        if (d)
            g->district = d;
        if (!d)
            return PM_ERR(ctx, PM_E_NOMEM, "equal-area grid: out of memory for %zu cells", cap);
        g->cap = cap;
    }
    g->col[g->n] = col, g->row[g->n] = row, g->key[g->n] = cell_key(col, row);
    g->x[g->n] = x, g->y[g->n] = y, g->district[g->n] = district;
    g->n++;
    return PM_OK;
}

/* The candidate rows and, per row, columns whose centres lie in e. */
typedef struct span {
    double row0, row1;
} span;

static span rows_of(const pm_cellgrid *g, const extent *e)
{
    double step = g->shape == PM_CELL_HEX ? 3.0 * g->uy : g->uy,
           off = g->shape == PM_CELL_HEX ? 0.0 : 0.5;
    return (span){ceil(e->y0 / step - off), floor(e->y1 / step - off)};
}

static span cols_of(const pm_cellgrid *g, const extent *e, double row)
{
    if (g->shape == PM_CELL_HEX)
        return (span){ceil((e->x0 / g->ux - row) / 2.0), floor((e->x1 / g->ux - row) / 2.0)};
    return (span){ceil(e->x0 / g->ux - 0.5), floor(e->x1 / g->ux - 0.5)};
}

/* The number of candidate centres in e (a double: it may be huge). */
static double candidates(const pm_cellgrid *g, const extent *e)
{
    span rs = rows_of(g, e);
    double n = 0;
    for (double r = rs.row0; r <= rs.row1 && n < 1e15; r++) {
        span cs = cols_of(g, e, r);
        n += cs.row1 >= cs.row0 ? cs.row1 - cs.row0 + 1 : 0;
    }
    return n;
}

static int too_many(pm_ctx *ctx, const pm_cellgrid *g, double n, size_t max, const char *what)
{
    return PM_ERR(ctx, PM_E_USAGE, "a grid of %g m %s cells would have %s%.0f cells %s(at most %zu): "
                                   "choose a larger cell", g->cell_m, pm_cell_shape_name(g->shape),
                  what[0] ? "about " : "", n, what, max);
}

/* Locates the centres of row `row` (columns cs), keeping those in a district. */
static int scan_row(pm_ctx *ctx, pm_cellgrid *g, const pm_locator *loc, PJ *pj, double row, span cs,
                    double *lon, double *lat)
{
    for (double c0 = cs.row0; c0 <= cs.row1; c0 += ROW_BATCH) {
        size_t m = (size_t)fmin(ROW_BATCH, cs.row1 - c0 + 1);
        for (size_t k = 0; k < m; k++)
            cell_centre(g, (int32_t)(c0 + (double)k), (int32_t)row, &lon[k], &lat[k]);
        int rc = laea_inverse(ctx, pj, lon, lat, m);
        for (size_t k = 0; !rc && k < m; k++) {
            int32_t d;
            pm_placement pl;
            double dist;
            if ((rc = pm_locate_point(ctx, loc, lon[k], lat[k], &d, &pl, &dist)) ||
                d < 0 || (pl != PM_PLACE_INSIDE && pl != PM_PLACE_BORDER))
                continue;
            int32_t col = (int32_t)(c0 + (double)k);
            double x, y;
            cell_centre(g, col, (int32_t)row, &x, &y);
            rc = cells_push(ctx, g, col, (int32_t)row, x, y, (size_t)d);
        }
        if (rc)
            return rc;
    }
    return PM_OK;
}

static int scan(pm_ctx *ctx, pm_cellgrid *g, const pm_locator *loc, const extent *e, size_t max)
{
    PJ *pj = laea_new(ctx, g->centre_lon, g->centre_lat);
    double *lon = pm_calloc(ROW_BATCH, sizeof *lon), *lat = pm_calloc(ROW_BATCH, sizeof *lat);
    int rc = !pj ? PM_E_CRS : lon && lat ? PM_OK
                                         : PM_ERR(ctx, PM_E_NOMEM, "equal-area grid: out of memory");
    span rs = rows_of(g, e);
    for (double r = rs.row0; !rc && r <= rs.row1; r++) {
        rc = scan_row(ctx, g, loc, pj, r, cols_of(g, e, r), lon, lat);
        if (!rc && g->n > max) {
            /* count the rest without keeping it, for the message */
            size_t kept = g->n;
            for (double r2 = r + 1; !rc && r2 <= rs.row1; r2++) {
                g->n = 0;
                rc = scan_row(ctx, g, loc, pj, r2, cols_of(g, e, r2), lon, lat);
                kept += g->n;
            }
            rc = rc ? rc : too_many(ctx, g, (double)kept, max, "");
        }
    }
    pm_free(lon);
    pm_free(lat);
    if (pj)
        proj_destroy(pj);
    return rc;
}

/* ---- the API --------------------------------------------------------------------------- */

int pm_cellgrid_new(pm_ctx *ctx, const pm_districts *ds, const pm_locator *loc,
                    const pm_cellgrid_opts *o, pm_cellgrid **out)
{
    *out = NULL;
    if (!(o->cell_m >= MIN_CELL_M && o->cell_m <= MAX_CELL_M))
        return PM_ERR(ctx, PM_E_USAGE, "equal-area grid: a cell of %g m (from %g to %g m)", o->cell_m,
                      MIN_CELL_M, MAX_CELL_M);
    if (o->shape != PM_CELL_SQUARE && o->shape != PM_CELL_HEX)
        return PM_ERR(ctx, PM_E_USAGE, "equal-area grid: unknown cell shape %d", (int)o->shape);
    pm_cellgrid *g = pm_calloc(1, sizeof *g);
    if (!g)
        return PM_ERR(ctx, PM_E_NOMEM, "equal-area grid: out of memory");
    g->shape = o->shape;
    g->cell_m = o->cell_m;
    g->centre_lon = o->centre_lon, g->centre_lat = o->centre_lat;
    double s = hex_side(o->cell_m);
    g->ux = o->shape == PM_CELL_HEX ? sqrt(3.0) * s / 2.0 : o->cell_m;
    g->uy = o->shape == PM_CELL_HEX ? s / 2.0 : o->cell_m;
    size_t max = o->max_cells ? o->max_cells : PM_CELLGRID_MAX_CELLS;
    extent e = {0};
    int rc = extent_of(ctx, g, ds, &e);
    pm_free(e.lon);
    pm_free(e.lat);
    if (!rc && !(e.x0 <= e.x1 && e.y0 <= e.y1))
        rc = PM_ERR(ctx, PM_E_INPUT_EMPTY, "equal-area grid: the districts have no area");
    if (!rc && fmax(fmax(fabs(e.x0), fabs(e.x1)), fmax(fabs(e.y0), fabs(e.y1))) / g->uy > BAD_INDEX)
        rc = too_many(ctx, g, INFINITY, max, "");
    double cand = rc ? 0 : candidates(g, &e);
    if (!rc && cand > 4.0 * (double)max)
        rc = too_many(ctx, g, cand, max, "over the districts' extent ");
    if (!rc)
        rc = scan(ctx, g, loc, &e, max);
    if (!rc && !g->n)
        rc = PM_ERR(ctx, PM_E_INPUT_EMPTY, "equal-area grid: no centre of a %g m cell falls in a "
                                           "district: choose a smaller cell", g->cell_m);
    if (rc) {
        pm_cellgrid_free(g);
        return rc;
    }
    *out = g;
    return PM_OK;
}

void pm_cellgrid_free(pm_cellgrid *g)
{
    if (!g)
        return;
    pm_free(g->col);
    pm_free(g->row);
    pm_free(g->key);
    pm_free(g->x);
    pm_free(g->y);
    pm_free(g->district);
    pm_free(g);
}

size_t pm_cellgrid_count(const pm_cellgrid *g) { return g->n; }
pm_cell_shape pm_cellgrid_shape(const pm_cellgrid *g) { return g->shape; }
double pm_cellgrid_cell_m(const pm_cellgrid *g) { return g->cell_m; }
size_t pm_cellgrid_vertices(const pm_cellgrid *g) { return g->shape == PM_CELL_HEX ? 6 : 4; }
const double *pm_cellgrid_x(const pm_cellgrid *g) { return g->x; }
const double *pm_cellgrid_y(const pm_cellgrid *g) { return g->y; }
size_t pm_cellgrid_district(const pm_cellgrid *g, size_t i) { return g->district[i]; }

double pm_cellgrid_spacing_m(const pm_cellgrid *g)
{
    return g->shape == PM_CELL_HEX ? 2.0 * g->ux : g->cell_m;
}

void pm_cellgrid_index(const pm_cellgrid *g, size_t i, int32_t *col, int32_t *row)
{
    *col = g->col[i];
    *row = g->row[i];
}

void pm_cellgrid_centre(const pm_cellgrid *g, double *centre_lon, double *centre_lat)
{
    *centre_lon = g->centre_lon;
    *centre_lat = g->centre_lat;
}

int pm_cellgrid_find_xy(const pm_cellgrid *g, double x_m, double y_m, size_t *cell)
{
    double col, row;
    if (!isfinite(x_m) || !isfinite(y_m))
        return 0;
    cell_of(g, x_m, y_m, &col, &row);
    if (!(fabs(col) < BAD_INDEX && fabs(row) < BAD_INDEX))
        return 0;
    uint64_t key = cell_key((int32_t)col, (int32_t)row);
    size_t lo = 0, hi = g->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (g->key[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == g->n || g->key[lo] != key)
        return 0;
    *cell = lo;
    return 1;
}

int pm_cellgrid_find_lonlat(pm_ctx *ctx, const pm_cellgrid *g, double lon, double lat, int *found,
                            size_t *cell)
{
    *found = 0;
    if (!(isfinite(lon) && isfinite(lat) && fabs(lon) <= 360 && fabs(lat) <= 90))
        return PM_ERR(ctx, PM_E_INPUT_VALUE, "equal-area grid: no such point %g, %g", lon, lat);
    double x, y;
    int rc = pm_lonlat_to_laea(ctx, &lon, &lat, 1, g->centre_lon, g->centre_lat, &x, &y);
    if (!rc)
        *found = pm_cellgrid_find_xy(g, x, y, cell);
    return rc;
}

/* Corner k of cell i on the plane. */
static void cell_corner(const pm_cellgrid *g, size_t i, int k, double *x, double *y)
{
    static const int hx[6] = {0, 1, 1, 0, -1, -1}, hy[6] = {-2, -1, 1, 2, 1, -1};
    static const int sx[4] = {0, 1, 1, 0}, sy[4] = {0, 0, 1, 1};
    double col = g->col[i], row = g->row[i];
    if (g->shape == PM_CELL_HEX) {
        *x = (2.0 * col + row + hx[k]) * g->ux;
        *y = (3.0 * row + hy[k]) * g->uy;
    } else {
        *x = (col + sx[k]) * g->ux;
        *y = (row + sy[k]) * g->uy;
    }
}

int pm_cellgrid_lonlat(pm_ctx *ctx, const pm_cellgrid *g, size_t first, size_t n, int corners,
                       double *lon, double *lat)
{
    if (first > g->n || n > g->n - first)
        return PM_ERR(ctx, PM_E_USAGE, "equal-area grid: cells %zu .. %zu of %zu", first, first + n,
                      g->n);
    size_t v = corners ? pm_cellgrid_vertices(g) : 1;
    for (size_t k = 0; k < n; k++)
        for (size_t c = 0; c < v; c++) {
            if (corners)
                cell_corner(g, first + k, (int)c, &lon[k * v + c], &lat[k * v + c]);
            else
                lon[k] = g->x[first + k], lat[k] = g->y[first + k];
        }
    PJ *pj = laea_new(ctx, g->centre_lon, g->centre_lat);
    if (!pj)
        return PM_E_CRS;
    int rc = laea_inverse(ctx, pj, lon, lat, n * v);
    proj_destroy(pj);
    return rc;
}
