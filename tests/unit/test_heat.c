/* test_heat.c — heat-map tiles (render/points.c, heat.c, ramps.c).
 *
 * Numbers first: the projection (closed forms against PROJ, EPSG:3395
 * against 3857), the points kept and their Morton order, the Morton range
 * query against a linear scan, tile densities against a brute-force sum
 * over every point (both kernels, both radius modes, z6, z10, z14, both
 * grids), seams between a 2×2 block and its parent's 512-px tile, the
 * filter, the scale (v_max) against a brute-force percentile.  Weights:
 * open, overdue and waiting hours of hand-made complaints against the
 * report time (the cube's rules; open and overdue counts equal the cube's
 * own), weight-0 points left out, weighted densities and scale against the
 * brute-force weighted sum.  Then the images: the same density has the same colour on two tiles, the colour
 * scale's ends, empty tiles, and a golden PNG compared on decoded pixels
 * (PM_REGEN_GOLDEN=1 rewrites it; on failure the output and a diff image
 * go to build/test-output/).  Allocation failures through points
 * (weighted or not), layer and tile.  Timings are printed, not asserted (PM_HEAT_BENCH_N sets the
 * scenes' size: default 20 000, to keep the run short; 1000000 for the
 * real numbers; 0 skips).
 *
 * The scenes are seeded clusters around Kemerovo (86.09°E, 55.35°N).
 * An optional argument is a cmocka test filter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../engine/pm_alloc.h"
#include "../../engine/pm_complaint.h"
#include "../../engine/pm_ctx.h"
#include "../../engine/pm_cube.h"
#include "../../engine/pm_district.h"
#include "../../engine/pm_locate.h"
#include "../../render/heat_impl.h"
#include "../../render/pm_heat.h"
#include "golden.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define E_M PM_HEAT_HALF_WORLD_M
#define A_M 6378137.0
#define E2 0.0066943799901413165
#define DEG (M_PI / 180.0)
#define KEM_LON 86.087
#define KEM_LAT 55.355
#define GOLDEN "tests/fixtures/heat/kemerovo_z11_inferno.png"

/* ---- seeded randomness ------------------------------------------------------ */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r)   /* splitmix64 */
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

static double rng_gauss(rng *r)
{
    double u = rng_unit(r), v = rng_unit(r);
    return sqrt(-2 * log(u > 0 ? u : 1e-300)) * cos(2 * M_PI * v);
}

/* A point sigma_m metres (Gaussian, on the ground) around lon0/lat0. */
static void gauss_point(rng *r, double lon0, double lat0, double sigma_m, double *lon,
                        double *lat)
{
    *lat = lat0 + rng_gauss(r) * sigma_m / 111320.0;
    *lon = lon0 + rng_gauss(r) * sigma_m / (111320.0 * cos(lat0 * DEG));
}

/* The Kemerovo scene: a dense centre (core_m), the city (city_m), three
 * towns around, and a scatter over the region. */
static void kemerovo_spread(uint64_t seed, size_t n, double core_m, double city_m, double *lon,
                            double *lat)
{
    static const double towns[3][2] = {{86.16, 55.70}, {87.10, 54.90}, {86.75, 55.60}};
    rng r = {seed};
    for (size_t i = 0; i < n; i++) {
        double u = rng_unit(&r);
        if (u < 0.35)
            gauss_point(&r, KEM_LON, KEM_LAT, core_m, &lon[i], &lat[i]);
        else if (u < 0.65)
            gauss_point(&r, KEM_LON, KEM_LAT, city_m, &lon[i], &lat[i]);
        else if (u < 0.90) {
            const double *t = towns[rng_next(&r) % 3];
            gauss_point(&r, t[0], t[1], 3000, &lon[i], &lat[i]);
        } else {
            lon[i] = 84.5 + 3.5 * rng_unit(&r);
            lat[i] = 53.5 + 3.0 * rng_unit(&r);
        }
    }
}

/* The tests' scene: a third of the points within ~1 km of the centre (a
 * stress for the tiles there). */
static void kemerovo(uint64_t seed, size_t n, double *lon, double *lat)
{
    kemerovo_spread(seed, n, 600, 4000, lon, lat);
}

/* ---- batches of complaints ---------------------------------------------------- */

static const char *const SOURCES[3] = {"vk", "telegram", "hotline"};

typedef struct batch {
    pm_ctx *ctx;
    size_t n;
    double *lon, *lat;
    pm_complaints *cs;
    pm_placed *pl;
    pm_points *pts;
} batch;

/* A placement with every complaint inside district 0 (made the way
 * pm_locate_batch makes it, freed by pm_placed_free). */
static pm_placed *placed_inside(size_t n)
{
    pm_placed *p = pm_calloc(1, sizeof *p);
    assert_non_null(p);
    p->n = n;
    p->district = pm_calloc(n, sizeof *p->district);
    p->placement = pm_calloc(n, sizeof *p->placement);
    assert_true(p->district && p->placement);
    p->counts[PM_PLACE_INSIDE] = n;
    return p;
}

/* Complaint i: topic i % 5, source SOURCES[i % 3], created on day i % 7
 * (UTC noon). */
static pm_complaints *complaints_at(pm_ctx *ctx, const double *lon, const double *lat, size_t n)
{
    pm_complaints *cs = pm_complaints_new();
    assert_non_null(cs);
    for (size_t i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "c%zu", i);
        pm_complaint c = {.id = id,
                          .created_at = (int64_t)(i % 7) * 86400 + 43200,
                          .answered_at = PM_TIME_NONE,
                          .lon = lon[i],
                          .lat = lat[i],
                          .topic = (uint16_t)(i % 5),
                          .source = SOURCES[i % 3],
                          .line = i + 1};
        assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_OK);
    }
    return cs;
}

static void batch_points(batch *b, pm_grid grid)
{
    pm_points_free(b->pts);
    b->pts = NULL;
    int rc = pm_points_new(b->ctx, b->cs, b->pl, grid, 0, &b->pts);
    if (rc)
        fail_msg("pm_points_new: %s", pm_ctx_errmsg(b->ctx));
    assert_int_equal(pm_points_count(b->pts), b->n);
}

/* A batch of the given positions (copied), projected on grid. */
static void batch_of(batch *b, const double *lon, const double *lat, size_t n, pm_grid grid)
{
    memset(b, 0, sizeof *b);
    b->ctx = pm_ctx_new();
    assert_non_null(b->ctx);
    b->n = n;
    b->lon = malloc(n * sizeof *b->lon + 1);
    b->lat = malloc(n * sizeof *b->lat + 1);
    assert_true(b->lon && b->lat);
    memcpy(b->lon, lon, n * sizeof *lon);
    memcpy(b->lat, lat, n * sizeof *lat);
    b->cs = complaints_at(b->ctx, lon, lat, n);
    b->pl = placed_inside(n);
    batch_points(b, grid);
}

static void batch_spread(batch *b, uint64_t seed, size_t n, double core_m, double city_m,
                         pm_grid grid)
{
    double *lon = malloc(n * sizeof *lon + 1), *lat = malloc(n * sizeof *lat + 1);
    assert_true(lon && lat);
    kemerovo_spread(seed, n, core_m, city_m, lon, lat);
    batch_of(b, lon, lat, n, grid);
    free(lon);
    free(lat);
}

static void batch_kemerovo(batch *b, uint64_t seed, size_t n, pm_grid grid)
{
    batch_spread(b, seed, n, 600, 4000, grid);
}

static void batch_close(batch *b)
{
    pm_points_free(b->pts);
    pm_placed_free(b->pl);
    pm_complaints_free(b->cs);
    pm_ctx_free(b->ctx);
    free(b->lon);
    free(b->lat);
}

static pm_heat_layer *layer(batch *b, const pm_heat_filter *f, pm_kernel k, double radius_m,
                            double radius_px, pm_ramp ramp, double v_max)
{
    pm_heat_opts o = {k, radius_m, radius_px, ramp, v_max};
    pm_heat_layer *l = NULL;
    int rc = pm_heat_layer_new(b->ctx, b->pts, f, &o, &l);
    if (rc)
        fail_msg("pm_heat_layer_new: %s", pm_ctx_errmsg(b->ctx));
    return l;
}

/* ---- the truth: projection, tiles and densities, computed here --------------- */

static double scale_at(pm_grid g, double lat)
{
    double s = sin(lat * DEG), c = cos(lat * DEG);
    return g == PM_GRID_WEBMERC ? 1 / c : sqrt(1 - E2 * s * s) / c;
}

static PJ *proj_to(pm_ctx *ctx, const char *crs)
{
    PJ *op = proj_create_crs_to_crs(pm_ctx_proj(ctx), "EPSG:4326", crs, NULL);
    assert_non_null(op);
    PJ *pj = proj_normalize_for_visualization(pm_ctx_proj(ctx), op);
    proj_destroy(op);
    assert_non_null(pj);
    return pj;
}

static void proj_xy(PJ *pj, double lon, double lat, double *x, double *y)
{
    PJ_COORD c = proj_trans(pj, PJ_FWD, proj_coord(lon, lat, 0, 0));
    *x = c.xy.x;
    *y = c.xy.y;
}

/* Where a tile or box is looked up: the library's closed form on
 * EPSG:3857, held to PROJ by closed_forms_match_proj_within_a_micrometre. */
static void webmerc(double lon, double lat, double *x, double *y)
{
    pm_grid_forward(PM_GRID_WEBMERC, lon, lat, x, y);
}

/* Every point, projected here by PROJ, one point at a time. */
typedef struct truth {
    size_t n;
    double *x, *y, *k;
    const double *w;   /* the points' weights; NULL: every point 1 */
} truth;

static truth truth_of(batch *b, pm_grid g)
{
    truth t = {b->n, malloc(b->n * 8 + 8), malloc(b->n * 8 + 8), malloc(b->n * 8 + 8), NULL};
    assert_true(t.x && t.y && t.k);
    PJ *pj = proj_to(b->ctx, pm_grid_crs(g));
    for (size_t i = 0; i < b->n; i++) {
        proj_xy(pj, b->lon[i], b->lat[i], &t.x[i], &t.y[i]);
        t.k[i] = scale_at(g, b->lat[i]);
    }
    proj_destroy(pj);
    return t;
}

static void truth_free(truth *t)
{
    free(t->x);
    free(t->y);
    free(t->k);
}

static double tile_w(int z) { return ldexp(2 * E_M, -z); }

static void pixel_centre(int z, uint32_t x, uint32_t y, int size, int i, int j, double *cx,
                         double *cy)
{
    double w = tile_w(z), pix = w / size, x0 = -E_M + x * w, y_top = E_M - y * w;
    *cx = x0 + (i + 0.5) * pix;
    *cy = y_top - (j + 0.5) * pix;
}

static void tile_of(double lon, double lat, int z, uint32_t *x, uint32_t *y)
{
    double mx, my;
    webmerc(lon, lat, &mx, &my);
    *x = (uint32_t)floor((mx + E_M) / tile_w(z));
    *y = (uint32_t)floor((E_M - my) / tile_w(z));
}

/* The grid radius of the point i: in pixels at zoom z, or in metres. */
static double truth_radius(const truth *t, size_t i, double radius_m, double radius_px, int z)
{
    return radius_m > 0 ? radius_m * t->k[i] : radius_px * tile_w(z) / 256;
}

/* Σ w·K over every point (with on[i], when on is given) within its radius. */
static double brute(const truth *t, const uint8_t *on, pm_kernel kern, double radius_m,
                    double radius_px, int z, double qx, double qy)
{
    double v = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (on && !on[i])
            continue;
        double R = truth_radius(t, i, radius_m, radius_px, z), r2 = R * R;
        double dx = t->x[i] - qx, dy = t->y[i] - qy, d2 = dx * dx + dy * dy;
        if (d2 < r2) {
            double u2 = d2 / r2, w = t->w ? t->w[i] : 1;
            v += w * (kern == PM_KERNEL_GAUSSIAN ? exp(-4.5 * u2) : (1 - u2) * (1 - u2));
        }
    }
    return v;
}

static int close_rel(double got, double want, double rel)
{
    return fabs(got - want) <= rel * fmax(fabs(got), fabs(want)) + 1e-9;
}

static float *density(batch *b, const pm_heat_layer *l, int z, uint32_t x, uint32_t y, int size)
{
    float *g = malloc((size_t)size * size * sizeof *g);
    assert_non_null(g);
    int rc = pm_heat_tile_density(b->ctx, l, z, x, y, size, g);
    if (rc)
        fail_msg("tile %d/%u/%u: %s", z, x, y, pm_ctx_errmsg(b->ctx));
    return g;
}

/* ---- PNG in the test: golden.h ------------------------------------------------ */

typedef golden_image image;

static uint8_t *tile_png(batch *b, const pm_heat_layer *l, int z, uint32_t x, uint32_t y,
                         int size, size_t *len, int *empty)
{
    uint8_t *png = NULL;
    int rc = pm_heat_tile_png(b->ctx, l, z, x, y, size, &png, len, empty);
    if (rc)
        fail_msg("png %d/%u/%u: %s", z, x, y, pm_ctx_errmsg(b->ctx));
    return png;
}

static image tile_image(batch *b, const pm_heat_layer *l, int z, uint32_t x, uint32_t y,
                        int size, int *empty)
{
    size_t len;
    uint8_t *png = tile_png(b, l, z, x, y, size, &len, empty);
    image im = golden_decode(png, len);
    pm_free(png);
    assert_int_equal(im.w, size);
    return im;
}

/* ---- projection ------------------------------------------------------------- */

/* pm_grid_forward() against PROJ: within 1e-6 m on the whole grid
 * (|lat| up to 85.06°), within 1e-12 relative beyond it (y grows without
 * bound: those points are on no tile either way), longitudes beyond ±180°
 * (wrapped) and the poles (infinite, on no tile). */
static void closed_forms_match_proj_within_a_micrometre(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    double worst = 0, worst_beyond = 0;
    for (int g = PM_GRID_WEBMERC; g <= PM_GRID_WORLDMERC; g++) {
        PJ *pj = proj_to(ctx, pm_grid_crs((pm_grid)g));
        for (double lat = -89.5; lat <= 89.5; lat += 0.37)
            for (double lon = -540; lon <= 540; lon += 7.3) {
                double x, y, px, py;
                pm_grid_forward((pm_grid)g, lon, lat, &x, &y);
                proj_xy(pj, lon, lat, &px, &py);
                double err = fmax(fabs(x - px), fabs(y - py));
                if (fabs(lat) <= 85.06)
                    worst = fmax(worst, err);
                else
                    worst_beyond = fmax(worst_beyond, err / fabs(py));
            }
        for (int pole = -1; pole <= 1; pole += 2) {
            double x, y, px, py;
            pm_grid_forward((pm_grid)g, 86, 90.0 * pole, &x, &y);
            proj_xy(pj, 86, 90.0 * pole, &px, &py);
            assert_false(isfinite(y) && fabs(y) <= E_M);
            assert_false(isfinite(py) && fabs(py) <= E_M);
        }
        proj_destroy(pj);
    }
    if (worst > 1e-6 || worst_beyond > 1e-12)
        fail_msg("closed form differs from PROJ by %.3g m on the grid, %.3g relative beyond it",
                 worst, worst_beyond);
    pm_ctx_free(ctx);
}

static void worldmerc_is_about_35_km_south_of_webmerc_at_55n(void **state)
{
    (void)state;
    double lon[1] = {KEM_LON}, lat[1] = {55.0};
    batch b;
    batch_of(&b, lon, lat, 1, PM_GRID_WEBMERC);
    double y_web = b.pts->y_m[0], x_web = b.pts->x_m[0];
    batch_points(&b, PM_GRID_WORLDMERC);
    double d = y_web - b.pts->y_m[0];
    if (!(d > 30000 && d < 40000))
        fail_msg("EPSG:3857 - EPSG:3395 northing at 55N: %.1f m", d);
    assert_true(fabs(x_web - b.pts->x_m[0]) < 1e-6);
    batch_close(&b);
}

static void scale_factor_from_northing_matches_latitude(void **state)
{
    (void)state;
    for (int g = 0; g < 2; g++)
        for (double lat = -85; lat <= 85; lat += 0.5) {
            double x, y;
            pm_grid_forward((pm_grid)g, 0, lat, &x, &y);
            double a = pm_grid_scale_at_y((pm_grid)g, y), want = scale_at((pm_grid)g, lat);
            if (!close_rel(a, want, 1e-9) || !close_rel(pm_grid_scale_at_lat((pm_grid)g, lat), want, 1e-12))
                fail_msg("grid %d lat %g: k(y) %.17g, k(lat) %.17g, want %.17g", g, lat, a,
                         pm_grid_scale_at_lat((pm_grid)g, lat), want);
        }
}

/* ---- points ------------------------------------------------------------------ */

static void points_keep_placed_complaints_with_coordinates(void **state)
{
    (void)state;
    double lon[8] = {86, 86.1, 86.2, 86.3, 86.4, 86.5, NAN, 86.7};
    double lat[8] = {55, 55.1, 55.2, 55.3, 55.4, 55.5, NAN, 89.9};
    batch b;
    memset(&b, 0, sizeof b);
    b.ctx = pm_ctx_new();
    b.cs = complaints_at(b.ctx, lon, lat, 8);
    b.pl = placed_inside(8);
    static const uint8_t how[8] = {PM_PLACE_INSIDE, PM_PLACE_BORDER, PM_PLACE_SNAPPED,
                                   PM_PLACE_OUTSIDE, PM_PLACE_REJECTED, PM_PLACE_UNKNOWN_CODE,
                                   PM_PLACE_BY_CODE, PM_PLACE_INSIDE};
    memcpy(b.pl->placement, how, 8);
    assert_int_equal(pm_points_new(b.ctx, b.cs, b.pl, PM_GRID_WEBMERC, 0, &b.pts), PM_OK);
    /* inside, border, snapped; not the one beyond 85.05° (off the grid) */
    assert_int_equal(pm_points_count(b.pts), 3);
    PJ *pj = proj_to(b.ctx, "EPSG:3857");
    int seen[3] = {0};
    for (size_t i = 0; i < 3; i++) {
        size_t in = b.pts->topic[i];   /* input i has topic i % 5 */
        assert_true(in < 3 && !seen[in]++);
        double x, y;
        proj_xy(pj, lon[in], lat[in], &x, &y);
        assert_true(fabs(b.pts->x_m[i] - x) < 1e-6 && fabs(b.pts->y_m[i] - y) < 1e-6);
        assert_true(b.pts->k[i] == pm_grid_scale_at_lat(PM_GRID_WEBMERC, lat[in]));
        assert_int_equal(b.pts->day[i], (int32_t)(in % 7));
        assert_string_equal(pm_complaints_dict_str(b.cs, PM_DICT_SOURCE, b.pts->source[i]),
                            SOURCES[in % 3]);
    }
    pm_placed *bad = placed_inside(7);
    pm_points *p = (pm_points *)&b;   /* must be reset to NULL */
    assert_int_equal(pm_points_new(b.ctx, b.cs, bad, PM_GRID_WEBMERC, 0, &p), PM_E_USAGE);
    assert_null(p);
    assert_int_equal(pm_points_new(b.ctx, b.cs, b.pl, (pm_grid)7, 0, &p), PM_E_USAGE);
    pm_placed_free(bad);
    b.n = 0;
    proj_destroy(pj);
    batch_close(&b);
}

static void local_day_is_floor_of_shifted_time(void **state)
{
    (void)state;
    static const int64_t t[4] = {-1, 0, 86400 * 3 - 3600, -86400 * 2 + 7 * 3600};
    static const long off[4] = {0, -1, 7 * 3600, -7 * 3600 - 1};
    static const int32_t want[4] = {-1, -1, 3, -3};
    for (int k = 0; k < 4; k++) {
        pm_ctx *ctx = pm_ctx_new();
        pm_complaints *cs = pm_complaints_new();
        pm_complaint c = {.id = "a", .created_at = t[k], .answered_at = PM_TIME_NONE,
                          .lon = KEM_LON, .lat = KEM_LAT};
        assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_OK);
        pm_placed *pl = placed_inside(1);
        pm_points *p;
        assert_int_equal(pm_points_new(ctx, cs, pl, PM_GRID_WEBMERC, off[k], &p), PM_OK);
        assert_int_equal(p->day[0], want[k]);
        assert_int_equal(p->source[0], PM_NONE);
        pm_points_free(p);
        pm_placed_free(pl);
        pm_complaints_free(cs);
        pm_ctx_free(ctx);
    }
}

/* No complaint with coordinates: no points, and every tile is empty. */
static void no_points_make_empty_tiles(void **state)
{
    (void)state;
    double lon[2] = {NAN, KEM_LON}, lat[2] = {NAN, KEM_LAT};
    batch b;
    memset(&b, 0, sizeof b);
    b.ctx = pm_ctx_new();
    b.cs = complaints_at(b.ctx, lon, lat, 2);
    b.pl = placed_inside(2);
    b.pl->placement[0] = PM_PLACE_BY_CODE;
    b.pl->placement[1] = PM_PLACE_OUTSIDE;
    assert_int_equal(pm_points_new(b.ctx, b.cs, b.pl, PM_GRID_WORLDMERC, 0, &b.pts), PM_OK);
    assert_int_equal(pm_points_count(b.pts), 0);
    pm_heat_layer *l = layer(&b, NULL, PM_KERNEL_GAUSSIAN, 100, 0, PM_RAMP_YLORRD, 0);
    assert_true(pm_heat_layer_vmax(l) > 0);
    int empty = 0;
    image im = tile_image(&b, l, 0, 0, 0, 256, &empty);
    assert_int_equal(empty, 1);
    free(im.rgba);
    pm_heat_layer_free(l);
    batch_close(&b);
}

static void points_are_in_morton_order_ties_in_input_order(void **state)
{
    (void)state;
    enum { N = 5000 };
    static double lon[N], lat[N];
    kemerovo(7, N, lon, lat);
    for (size_t i = 10; i < N; i += 10) {   /* inputs 20k repeat input 0, 20k + 10 input 1 */
        lon[i] = lon[i % 20 ? 1 : 0];
        lat[i] = lat[i % 20 ? 1 : 0];
    }
    batch b;
    batch_of(&b, lon, lat, N, PM_GRID_WEBMERC);
    const pm_points *p = b.pts;
    for (size_t i = 1; i < p->n; i++)
        assert_true(p->code[i - 1] <= p->code[i]);
    /* the ties at input 0's place must come in input order 0, 20, 40, …:
     * input i carries day i % 7, so the k-th of them has day 20k % 7 */
    double x0, y0;
    webmerc(lon[0], lat[0], &x0, &y0);
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (fabs(p->x_m[i] - x0) > 1e-6 || fabs(p->y_m[i] - y0) > 1e-6)
            continue;
        size_t in = 20 * k++;
        assert_int_equal(p->topic[i], in % 5);
        assert_int_equal(p->day[i], (int32_t)(in % 7));
    }
    assert_int_equal(k, N / 20);
    batch_close(&b);
}

/* ---- the Morton range query ---------------------------------------------------- */

/* The indexes the ranges of a cover give inside bx equal those of a
 * linear scan; returns how many entries outside bx the ranges hold. */
static size_t assert_cover_exact(const pm_points *p, const pm_box *bx, pm_cover_parts parts)
{
    pm_range r[PM_POINTS_MAX_RANGES];
    size_t n = pm_points_ranges(p, bx, parts, r), held = 0;
    assert_true(n <= (size_t)(parts + 1) * (parts + 1));
    /* the cover's cells are under 2/parts of the box's larger side (or one
     * zoom-24 cell): no entry lies farther out than a cell and the box's
     * edges rounded out to whole zoom-24 cells */
    double side = fmax(bx->x1 - bx->x0, bx->y1 - bx->y0), cell = 2 * E_M / (1 << 24);
    double out = 2 * side / parts + 3 * cell;
    pm_box near = {bx->x0 - out, bx->y0 - out, bx->x1 + out, bx->y1 + out};
    size_t scan = 0;   /* next index the linear scan finds */
    for (size_t k = 0; k < n; k++) {
        assert_true(r[k].lo < r[k].hi && r[k].hi <= p->n);
        if (k)
            assert_true(r[k - 1].hi <= r[k].lo);
        for (size_t i = r[k].lo; i < r[k].hi; i++) {
            if (!pm_box_has(&near, p->x_m[i], p->y_m[i]))
                fail_msg("point %zu is %.0f m beyond the box, the cover's cells are under %.0f m",
                         i, fmax(fmax(bx->x0 - p->x_m[i], p->x_m[i] - bx->x1),
                                 fmax(bx->y0 - p->y_m[i], p->y_m[i] - bx->y1)), out);
            if (!pm_box_has(bx, p->x_m[i], p->y_m[i])) {
                held++;
                continue;
            }
            while (scan < p->n && !pm_box_has(bx, p->x_m[scan], p->y_m[scan]))
                scan++;
            assert_int_equal(i, scan);
            scan++;
        }
    }
    while (scan < p->n && !pm_box_has(bx, p->x_m[scan], p->y_m[scan]))
        scan++;
    if (scan != p->n)
        fail_msg("point %zu is inside the box but in no range", scan);
    return held;
}

/* Both covers find exactly the points in bx; the fine one holds no more
 * entries outside it than the coarse one.  Adds those to held[2]. */
static void assert_query_exact(const pm_points *p, const pm_box *bx, size_t held[2])
{
    size_t coarse = assert_cover_exact(p, bx, PM_COVER_COARSE);
    size_t fine = assert_cover_exact(p, bx, PM_COVER_FINE);
    assert_true(fine <= coarse);
    held[0] += coarse;
    held[1] += fine;
}

static void morton_ranges_find_exactly_the_points_in_a_box(void **state)
{
    (void)state;
    batch b;
    batch_kemerovo(&b, 11, 20000, PM_GRID_WEBMERC);
    double cx, cy;
    webmerc(KEM_LON, KEM_LAT, &cx, &cy);
    rng r = {5};
    size_t held[2] = {0, 0}, tiles[2] = {0, 0};   /* what the coarse and fine covers hold
                                                   * beyond the boxes */
    for (int k = 0; k < 400; k++) {
        double half = pow(10, 1 + 5 * rng_unit(&r));   /* 10 m .. 1000 km */
        double x = cx + (rng_unit(&r) - 0.5) * 4e5, y = cy + (rng_unit(&r) - 0.5) * 4e5;
        pm_box bx = {x - half, y - half * (0.2 + rng_unit(&r)), x + half * rng_unit(&r), y + half};
        assert_query_exact(b.pts, &bx, held);
    }
    pm_box world = {-E_M, -E_M, E_M, E_M};
    assert_query_exact(b.pts, &world, held);
    pm_heat_layer *l = layer(&b, NULL, PM_KERNEL_QUARTIC, 2000, 0, PM_RAMP_INFERNO, 1);
    for (int z = 0; z <= 16; z += 2)
        for (int dx = -1; dx <= 1; dx++) {
            uint32_t tx, ty;
            tile_of(KEM_LON, KEM_LAT, z, &tx, &ty);
            tx = (uint32_t)((int)tx + dx) & ((1u << z) - 1);
            pm_box g;
            pm_heat_tile_box(l, z, tx, ty, &g);
            assert_query_exact(b.pts, &g, tiles);
        }
    /* what the fine cover is for: far fewer entries to test in vain */
    printf("cover: coarse %zu, fine %zu entries beyond the boxes; %zu and %zu beyond the tiles\n",
           held[0], held[1], tiles[0], tiles[1]);
    assert_true(held[1] < held[0] * 0.6 && tiles[1] < tiles[0] * 0.6);
    pm_heat_layer_free(l);
    batch_close(&b);
}

/* The grown box reaches every point that can touch the tile: a point just
 * outside the reach contributes nothing, one just inside does. */
static void tile_box_reaches_the_farthest_kernel(void **state)
{
    (void)state;
    batch b;
    batch_kemerovo(&b, 12, 3000, PM_GRID_WEBMERC);
    truth t = truth_of(&b, PM_GRID_WEBMERC);
    pm_heat_layer *l = layer(&b, NULL, PM_KERNEL_QUARTIC, 20000, 0, PM_RAMP_INFERNO, 1);
    uint32_t tx, ty;
    tile_of(KEM_LON, KEM_LAT, 9, &tx, &ty);
    pm_box g;
    pm_heat_tile_box(l, 9, tx, ty, &g);
    double w = tile_w(9), x0 = -E_M + tx * w, y_top = E_M - ty * w;
    /* no point outside g is within its kernel's reach of the tile */
    for (size_t i = 0; i < t.n; i++) {
        if (pm_box_has(&g, t.x[i], t.y[i]))
            continue;
        double dx = fmax(fmax(x0 - t.x[i], t.x[i] - (x0 + w)), 0);
        double dy = fmax(fmax((y_top - w) - t.y[i], t.y[i] - y_top), 0);
        assert_true(dx * dx + dy * dy >= pow(20000 * t.k[i], 2));
    }
    /* and the margin on the poleward side is not much more than needed */
    double need = 20000 * pm_grid_scale_at_y(PM_GRID_WEBMERC, y_top);
    assert_true(g.y1 - y_top >= need && g.y1 - y_top < need * 1.01);
    pm_heat_layer_free(l);
    truth_free(&t);
    batch_close(&b);
}

/* ---- densities against brute force ---------------------------------------------- */

typedef struct combo {
    pm_grid grid;
    pm_kernel kernel;
    int metres;
    int z;
} combo;

/* Checks 200 of the densest pixels and 200 seeded random ones of the
 * Kemerovo tile at c.z, and every pixel of its first and last rows and
 * columns (where neighbours count). */
static void check_against_brute(batch *b, const truth *t, combo c)
{
    /* about 10 px of radius either way */
    double radius_px = 10, radius_m = 10 * tile_w(c.z) / 256 * cos(KEM_LAT * DEG);
    pm_heat_layer *l = layer(b, NULL, c.kernel, c.metres ? radius_m : 0, radius_px,
                             PM_RAMP_INFERNO, 1);
    uint32_t tx, ty;
    tile_of(KEM_LON + 0.001, KEM_LAT + 0.001, c.z, &tx, &ty);
    float *g = density(b, l, c.z, tx, ty, 256);
    size_t order[256 * 256], n = 0, nonzero = 0;
    for (size_t p = 0; p < 256 * 256; p++)
        order[p] = p;
    /* the 200 densest first (partial selection) */
    for (size_t k = 0; k < 200; k++)
        for (size_t p = k + 1; p < 256 * 256; p++)
            if (g[order[p]] > g[order[k]]) {
                size_t s = order[k];
                order[k] = order[p];
                order[p] = s;
            }
    rng r = {(uint64_t)c.z * 31 + c.kernel * 7 + c.metres};
    for (size_t k = 0; k < 1400; k++) {
        size_t p;
        if (k < 200)
            p = order[k];
        else if (k < 400)
            p = rng_next(&r) % (256 * 256);
        else {   /* the border: rows 0 and 255, columns 0 and 255 */
            size_t e = k - 400, side = e / 250, pos = e % 250 + 3;
            p = side == 0 ? pos : side == 1 ? 255 * 256 + pos : side == 2 ? pos * 256 : pos * 256 + 255;
        }
        int i = (int)(p % 256), j = (int)(p / 256);
        double cx, cy;
        pixel_centre(c.z, tx, ty, 256, i, j, &cx, &cy);
        double want = brute(t, NULL, c.kernel, c.metres ? radius_m : 0, radius_px, c.z, cx, cy);
        if (!close_rel(g[p], want, 1e-6))
            fail_msg("grid %d kernel %d %s z%d pixel (%d, %d): %.9g, brute force %.9g", c.grid,
                     c.kernel, c.metres ? "metres" : "pixels", c.z, i, j, g[p], want);
        nonzero += want > 0;
        n++;
    }
    assert_true(nonzero > 150);   /* the test looked at density, not at empty pixels */
    free(g);
    pm_heat_layer_free(l);
}

static void density_equals_brute_force_sum(void **state)
{
    (void)state;
    batch b;
    batch_kemerovo(&b, 21, 3000, PM_GRID_WEBMERC);
    truth t = truth_of(&b, PM_GRID_WEBMERC);
    static const int zs[3] = {6, 10, 14};
    for (int zi = 0; zi < 3; zi++)
        for (int k = 0; k < 2; k++)
            for (int m = 0; m < 2; m++)
                check_against_brute(&b, &t, (combo){PM_GRID_WEBMERC, (pm_kernel)k, m, zs[zi]});
    truth_free(&t);
    batch_points(&b, PM_GRID_WORLDMERC);
    t = truth_of(&b, PM_GRID_WORLDMERC);
    for (int k = 0; k < 2; k++)
        check_against_brute(&b, &t, (combo){PM_GRID_WORLDMERC, (pm_kernel)k, 1, 10});
    truth_free(&t);
    batch_close(&b);
}

/* ---- the count pyramid ------------------------------------------------------------- */

/* A layer that never uses the pyramid, v_max 1 with a radius in pixels
 * (tiles are compared as densities), from its points with one in metres. */
static pm_heat_layer *exact_layer(batch *b, pm_kernel k, double radius_m, double radius_px)
{
    pm_heat_opts o = {k, radius_m, radius_px, PM_RAMP_INFERNO, radius_m > 0 ? 0 : 1};
    pm_heat_layer *l = NULL;
    if (pm_heat_layer_new_exact(b->ctx, b->pts, NULL, &o, &l))
        fail_msg("pm_heat_layer_new_exact: %s", pm_ctx_errmsg(b->ctx));
    return l;
}

/* Pyramid tile against the exact sum of the same layer: every pixel
 * whose density is above floor × the tile's peak within rel, and the
 * colour entries (log scale over 3 decades, 256 entries) within 2.
 * Returns how the fast layer drew the tile.  pyramid_close(): above 1/1000
 * of the peak, where the colour scale begins. */
static pm_heat_method pyramid_close_above(batch *b, pm_heat_layer *fast, pm_heat_layer *exact,
                                          int z, double rel, double floor)
{
    uint32_t tx, ty;
    tile_of(KEM_LON + 0.001, KEM_LAT + 0.001, z, &tx, &ty);
    float *got = malloc(256 * 256 * sizeof *got), *want = density(b, exact, z, tx, ty, 256);
    assert_non_null(got);
    pm_heat_method how;
    if (pm_heat_tile_density_how(b->ctx, fast, z, tx, ty, 256, got, &how))
        fail_msg("tile %d/%u/%u: %s", z, tx, ty, pm_ctx_errmsg(b->ctx));
    double peak = 0;
    for (size_t p = 0; p < 256 * 256; p++)
        peak = fmax(peak, want[p]);
    assert_true(peak > 0);
    int differs = 0;
    for (size_t p = 0; p < 256 * 256; p++) {
        differs |= got[p] != want[p];
        if (want[p] < peak * floor)
            continue;
        double entries = fabs(log((double)got[p] / want[p])) * 255 / log(1000.0);
        if (!close_rel(got[p], want[p], rel) || entries > 2)
            fail_msg("z%d pixel (%zu, %zu): pyramid %.6g, exact %.6g (method %d)", z, p % 256,
                     p / 256, (double)got[p], (double)want[p], (int)how);
    }
    free(got);
    free(want);
    assert_int_equal(differs, how != PM_HEAT_EXACT);
    return how;
}

static pm_heat_method pyramid_close(batch *b, pm_heat_layer *fast, pm_heat_layer *exact, int z,
                                    double rel)
{
    return pyramid_close_above(b, fast, exact, z, rel, 1e-3);
}

/* Many points under small discs (a low zoom) and few points under
 * discs larger than the tile (a high zoom): both costly exactly, both
 * drawn from the pyramid, both close to the exact sum. */
static void pyramid_tiles_follow_the_exact_sum(void **state)
{
    (void)state;
    batch b;
    batch_kemerovo(&b, 5, 150000, PM_GRID_WEBMERC);
    for (int k = 0; k < 2; k++) {
        pm_heat_layer *fast = layer(&b, NULL, (pm_kernel)k, 0, 1.5, PM_RAMP_INFERNO, 1);
        pm_heat_layer *exact = exact_layer(&b, (pm_kernel)k, 0, 1.5);
        assert_int_equal(pyramid_close(&b, fast, exact, 6, 0.05), PM_HEAT_SPLAT);
        assert_int_equal(pyramid_close(&b, fast, exact, 8, 0.05), PM_HEAT_SPLAT);
        pm_heat_layer_free(fast);
        pm_heat_layer_free(exact);
    }
    batch_close(&b);
    batch_kemerovo(&b, 6, 4000, PM_GRID_WEBMERC);
    for (int k = 0; k < 2; k++) {
        pm_heat_layer *fast = layer(&b, NULL, (pm_kernel)k, 1000, 0, PM_RAMP_INFERNO, 1);
        pm_heat_layer *exact = exact_layer(&b, (pm_kernel)k, 1000, 0);
        for (int z = 12; z <= 16; z += 2)
            assert_int_not_equal(pyramid_close(&b, fast, exact, z, 0.05), PM_HEAT_EXACT);
        pm_heat_layer_free(fast);
        pm_heat_layer_free(exact);
    }
    batch_close(&b);
}

/* The convolved tile of pyramid_close() with its allocations failing one
 * after another: PM_E_NOMEM each time, then the same tile (ASan: no leak). */
static void convolved_tile_survives_alloc_failures(batch *b, const pm_heat_layer *l)
{
    uint32_t tx, ty;
    tile_of(KEM_LON + 0.001, KEM_LAT + 0.001, 8, &tx, &ty);
    float *want = density(b, l, 8, tx, ty, 256), *got = malloc(256 * 256 * sizeof *got);
    assert_non_null(got);
    int failed = 0, rc;
    for (long n = 1;; n++) {
        pm_heat_method how;
        pm_alloc_fail_at(n);
        rc = pm_heat_tile_density_how(b->ctx, l, 8, tx, ty, 256, got, &how);
        pm_alloc_fail_at(0);
        if (!rc)
            break;
        assert_int_equal(rc, PM_E_NOMEM);
        failed++;
    }
    assert_true(failed >= 5);   /* tile, accumulator, grid, lattice values, conv arrays */
    assert_memory_equal(got, want, 256 * 256 * sizeof *got);
    free(got);
    free(want);
}

/* Dense tiles whose kernels span several pixels (or lattice nodes) are
 * deposited and convolved: on the pixels (6 px) and on a lattice of
 * stride 2 (24 px), both kernels, close to the exact sum. */
static void dense_tiles_are_convolved_close_to_the_exact_sum(void **state)
{
    (void)state;
    batch b;
    batch_kemerovo(&b, 5, 150000, PM_GRID_WEBMERC);
    const double radius_px[] = {6, 24};
    for (int k = 0; k < 2; k++)
        for (int r = 0; r < 2; r++) {
            pm_heat_layer *fast = layer(&b, NULL, (pm_kernel)k, 0, radius_px[r], PM_RAMP_INFERNO, 1);
            pm_heat_layer *exact = exact_layer(&b, (pm_kernel)k, 0, radius_px[r]);
            assert_int_equal(pyramid_close(&b, fast, exact, 8, 0.05), PM_HEAT_CONVOLVE);
            if (k == 0 && r == 1)
                convolved_tile_survives_alloc_failures(&b, fast);
            pm_heat_layer_free(fast);
            pm_heat_layer_free(exact);
        }
    batch_close(&b);
}

/* Dense points filling a block in the middle of the convolved tile, the
 * grid's rows and columns empty up to its edges: the density is within
 * 2 % of the exact sum inside the block and along its edges.  Compared
 * above a tenth of the peak: in the outer rim of a sharp edge the density
 * comes from the edges of the points' discs, where the interpolated
 * kernel is least exact (up to 18 % off, 7 colour entries, at 1/500 of
 * the peak). */
static void convolved_block_keeps_its_edges(void **state)
{
    (void)state;
    const int z = 8;
    uint32_t tx, ty;
    tile_of(KEM_LON + 0.001, KEM_LAT + 0.001, z, &tx, &ty);   /* pyramid_close()'s tile */
    double w = tile_w(z), x0 = -E_M + tx * w, y_top = E_M - ty * w;
    size_t n = 150000;
    double *lon = malloc(n * sizeof *lon), *lat = malloc(n * sizeof *lat);
    assert_non_null(lon);
    assert_non_null(lat);
    rng r = {17};
    for (size_t i = 0; i < n; i++) {
        double x = x0 + w * (0.35 + 0.3 * rng_unit(&r)), y = y_top - w * (0.3 + 0.4 * rng_unit(&r));
        lon[i] = x / A_M / DEG;
        lat[i] = atan(sinh(y / A_M)) / DEG;
    }
    batch b;
    batch_of(&b, lon, lat, n, PM_GRID_WEBMERC);
    free(lon);
    free(lat);
    for (int k = 0; k < 2; k++) {
        pm_heat_layer *fast = layer(&b, NULL, (pm_kernel)k, 0, 24, PM_RAMP_INFERNO, 1);
        pm_heat_layer *exact = exact_layer(&b, (pm_kernel)k, 0, 24);
        assert_int_equal(pyramid_close_above(&b, fast, exact, z, 0.02, 0.1), PM_HEAT_CONVOLVE);
        pm_heat_layer_free(fast);
        pm_heat_layer_free(exact);
    }
    batch_close(&b);
}

/* A layer of more than 200 000 points takes its scale from the pyramid:
 * within 2 % of the exact 99th percentile. */
static void pyramid_scale_is_close_to_the_exact_one(void **state)
{
    (void)state;
    batch b;
    batch_kemerovo(&b, 7, 210000, PM_GRID_WEBMERC);
    pm_heat_layer *fast = layer(&b, NULL, PM_KERNEL_QUARTIC, 2000, 0, PM_RAMP_INFERNO, 0);
    pm_heat_layer *exact = exact_layer(&b, PM_KERNEL_QUARTIC, 2000, 0);
    double v = pm_heat_layer_vmax(fast), w = pm_heat_layer_vmax(exact);
    assert_true(close_rel(v, w, 0.02));
    assert_true(v != w);   /* it did come from the pyramid */
    pm_heat_layer_free(fast);
    pm_heat_layer_free(exact);
    batch_close(&b);
}

/* ---- seams ---------------------------------------------------------------------- */

/* Points around the shared corner of the four children of the z-1 tile
 * holding Kemerovo. */
static void corner_scene(batch *b, int z, size_t n, double sigma_m)
{
    uint32_t px, py;
    tile_of(KEM_LON, KEM_LAT, z - 1, &px, &py);
    double w = tile_w(z - 1), cx = -E_M + (px + 0.5) * w, cy = E_M - (py + 0.5) * w;
    double lon0 = cx / A_M / DEG, lat0 = atan(sinh(cy / A_M)) / DEG;
    double *lon = malloc(n * 8), *lat = malloc(n * 8);
    rng r = {99};
    for (size_t i = 0; i < n; i++)
        gauss_point(&r, lon0, lat0, sigma_m, &lon[i], &lat[i]);
    batch_of(b, lon, lat, n, PM_GRID_WEBMERC);
    free(lon);
    free(lat);
}

/* The 512-px tile of z-1 (layer big) against its four 256-px children at
 * z (layer small): pixel (i, j) of the big one is pixel (i % 256, j % 256)
 * of child (i / 256, j / 256). */
static void assert_seamless(batch *b, const pm_heat_layer *big, const pm_heat_layer *small, int z)
{
    uint32_t px, py;
    tile_of(KEM_LON, KEM_LAT, z - 1, &px, &py);
    float *parent = density(b, big, z - 1, px, py, 512);
    size_t compared = 0, across = 0;
    for (int c = 0; c < 4; c++) {
        uint32_t cx = 2 * px + (c & 1), cy = 2 * py + (c >> 1);
        float *child = density(b, small, z, cx, cy, 256);
        for (int j = 0; j < 256; j++)
            for (int i = 0; i < 256; i++) {
                float a = child[j * 256 + i];
                float p = parent[(size_t)(j + 256 * (c >> 1)) * 512 + i + 256 * (c & 1)];
                if (!close_rel(a, p, 1e-4))
                    fail_msg("child %d/%u/%u pixel (%d, %d): %.9g, parent's 512 tile %.9g", z,
                             cx, cy, i, j, a, p);
                compared += a > 0;
                /* the pixels next to the children's shared edges */
                across += a > 0 && (i == 0 || i == 255) && (j == 0 || j == 255);
            }
        free(child);
    }
    assert_true(compared > 20000);
    assert_true(across >= 4);
    free(parent);
}

static void tiles_meet_without_seams(void **state)
{
    (void)state;
    batch b;
    corner_scene(&b, 13, 4000, 700);
    for (int k = 0; k < 2; k++) {
        /* metres: one layer serves both zooms */
        pm_heat_layer *l = layer(&b, NULL, (pm_kernel)k, 150, 0, PM_RAMP_INFERNO, 1);
        assert_seamless(&b, l, l, 13);
        pm_heat_layer_free(l);
        /* pixels: a radius of ρ px at z-1 is 2ρ px at z */
        pm_heat_layer *big = layer(&b, NULL, (pm_kernel)k, 0, 8, PM_RAMP_INFERNO, 1);
        pm_heat_layer *small = layer(&b, NULL, (pm_kernel)k, 0, 16, PM_RAMP_INFERNO, 1);
        assert_seamless(&b, big, small, 13);
        pm_heat_layer_free(big);
        pm_heat_layer_free(small);
    }
    batch_close(&b);
}

/* ---- the filter ----------------------------------------------------------------- */

static void filter_counts_only_matching_points(void **state)
{
    (void)state;
    batch b;
    batch_kemerovo(&b, 31, 4000, PM_GRID_WEBMERC);
    truth t = truth_of(&b, PM_GRID_WEBMERC);
    pm_dict_column src = pm_complaints_dict(b.cs, PM_DICT_SOURCE);
    uint16_t topics[2] = {1, 3};
    /* complaint i has source SOURCES[i % 3] */
    uint32_t vk = pm_dict_column_at(src, 0), hotline = pm_dict_column_at(src, 2);
    uint32_t sources[2] = {hotline, vk};
    pm_heat_filter f = {topics, 2, sources, 2, 1, 2, 5};
    uint8_t *on = malloc(b.n);
    size_t n_on = 0;
    for (size_t i = 0; i < b.n; i++) {
        int topic = (int)(i % 5), day = (int)(i % 7);
        on[i] = (topic == 1 || topic == 3) && (i % 3 != 1) && day >= 2 && day <= 5;
        n_on += on[i];
    }
    assert_true(n_on > 300 && n_on < b.n / 4);
    pm_heat_layer *l = layer(&b, &f, PM_KERNEL_QUARTIC, 0, 12, PM_RAMP_VIRIDIS, 0);
    uint32_t tx, ty;
    tile_of(KEM_LON, KEM_LAT, 10, &tx, &ty);
    float *g = density(&b, l, 10, tx, ty, 256);
    size_t hits = 0;
    for (int p = 0; p < 256 * 256; p += 37) {
        double cx, cy;
        pixel_centre(10, tx, ty, 256, p % 256, p / 256, &cx, &cy);
        double want = brute(&t, on, PM_KERNEL_QUARTIC, 0, 12, 10, cx, cy);
        if (!close_rel(g[p], want, 1e-6))
            fail_msg("pixel %d: %.9g, brute force over the filtered points %.9g", p, g[p], want);
        hits += want > 0;
    }
    assert_true(hits > 100);
    free(g);
    pm_heat_layer_free(l);
    /* an empty day range is refused */
    pm_heat_filter bad = {NULL, 0, NULL, 0, 1, 5, 4};
    pm_heat_opts o = {PM_KERNEL_QUARTIC, 0, 12, PM_RAMP_VIRIDIS, 0};
    assert_int_equal(pm_heat_layer_new(b.ctx, b.pts, &bad, &o, &l), PM_E_USAGE);
    assert_null(l);
    free(on);
    truth_free(&t);
    batch_close(&b);
}

/* ---- the scale -------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The 99th percentile (nearest rank) of the densities at the sample:
 * every point when n <= 10 000, else the point of rank ⌊k n / 10 000⌋ in
 * Morton order (b->pts's order; densities from the truth's projection). */
static double brute_vmax(batch *b, const truth *t, pm_kernel kern, double radius_m, double radius_px)
{
    size_t n = b->pts->n, s = n < 10000 ? n : 10000;
    double *v = malloc(s * sizeof *v);
    for (size_t k = 0; k < s; k++) {
        size_t i = k * n / s;
        v[k] = brute(t, NULL, kern, radius_m, radius_px, 10, b->pts->x_m[i], b->pts->y_m[i]);
    }
    qsort(v, s, sizeof *v, cmp_double);
    double r = v[(99 * s + 99) / 100 - 1];
    free(v);
    return r;
}

static void vmax_is_99th_percentile_of_point_densities(void **state)
{
    (void)state;
    static const size_t sizes[2] = {3000, 12000};
    for (int si = 0; si < 2; si++) {
        batch b;
        batch_kemerovo(&b, 41 + si, sizes[si], PM_GRID_WEBMERC);
        truth t = truth_of(&b, PM_GRID_WEBMERC);
        for (int m = 0; m < 2; m++) {
            pm_kernel kern = m ? PM_KERNEL_GAUSSIAN : PM_KERNEL_QUARTIC;
            double radius_m = m ? 300 : 0;
            pm_heat_layer *l = layer(&b, NULL, kern, radius_m, 15, PM_RAMP_INFERNO, 0);
            double want = brute_vmax(&b, &t, kern, radius_m, 15);
            if (!close_rel(pm_heat_layer_vmax(l), want, 1e-9))
                fail_msg("%zu points, %s: v_max %.12g, brute force %.12g", sizes[si],
                         m ? "gaussian 300 m" : "quartic 15 px", pm_heat_layer_vmax(l), want);
            assert_true(want > 10);   /* a dense scene, not self-contributions only */
            pm_heat_layer_free(l);
        }
        pm_heat_layer *l = layer(&b, NULL, PM_KERNEL_QUARTIC, 0, 15, PM_RAMP_INFERNO, 42.5);
        assert_true(pm_heat_layer_vmax(l) == 42.5);
        pm_heat_layer_free(l);
        truth_free(&t);
        batch_close(&b);
    }
}

/* ---- colour ---------------------------------------------------------------------- */

static void legend_runs_log_from_vmax_over_1000_to_vmax(void **state)
{
    (void)state;
    batch b;
    batch_kemerovo(&b, 51, 500, PM_GRID_WEBMERC);
    pm_heat_layer *l = layer(&b, NULL, PM_KERNEL_QUARTIC, 0, 10, PM_RAMP_INFERNO, 200);
    pm_heat_stop s[20];
    size_t n = pm_heat_legend(l, s, 20);
    assert_int_equal(n, 16);
    assert_true(close_rel(s[0].value, 0.2, 1e-12) && close_rel(s[15].value, 200, 1e-12));
    assert_int_equal(s[0].a, 0);
    assert_int_equal(s[15].a, PM_HEAT_ALPHA_MAX);
    for (size_t k = 1; k < n; k++) {
        assert_true(close_rel(s[k].value / s[k - 1].value, pow(1000, 1.0 / 15), 1e-12));
        assert_true(s[k].a > s[k - 1].a);
    }
    /* inferno: black-violet at the bottom, pale yellow at the top */
    assert_true(s[0].r < 10 && s[0].g < 10 && s[15].r > 240 && s[15].g > 240 && s[15].b > 150);
    assert_int_equal(pm_heat_legend(l, s, 3), 3);
    assert_true(close_rel(s[1].value, 200 / sqrt(1000), 1e-12));
    pm_heat_layer_free(l);
    uint8_t lut[256][4];
    pm_heat_ramp_lut(PM_RAMP_YLORRD, lut);
    assert_true(lut[0][0] == 0xff && lut[0][1] == 0xff && lut[0][2] == 0xcc);
    assert_true(lut[255][0] == 0x80 && lut[255][1] == 0x00 && lut[255][2] == 0x26);
    pm_heat_ramp_lut(PM_RAMP_VIRIDIS, lut);
    assert_true(lut[255][0] == 0xfd && lut[255][1] == 0xe7 && lut[255][2] == 0x25);
    batch_close(&b);
}

/* The PNG's pixels are the density's colours: transparent below
 * v_max/1000, the ramp's top at v_max and above. */
static void png_colours_follow_the_density(void **state)
{
    (void)state;
    batch b;
    batch_kemerovo(&b, 61, 5000, PM_GRID_WEBMERC);
    pm_heat_layer *l = layer(&b, NULL, PM_KERNEL_QUARTIC, 0, 12, PM_RAMP_YLORRD, 0);
    double vmax = pm_heat_layer_vmax(l);
    uint32_t tx, ty;
    tile_of(KEM_LON, KEM_LAT, 10, &tx, &ty);
    float *g = density(&b, l, 10, tx, ty, 256);
    int empty;
    image im = tile_image(&b, l, 10, tx, ty, 256, &empty);
    assert_int_equal(empty, 0);
    uint8_t lut[256][4];
    pm_heat_ramp_lut(PM_RAMP_YLORRD, lut);
    size_t top = 0, clear = 0, mid = 0;
    for (size_t p = 0; p < 256 * 256; p++) {
        const uint8_t *c = im.rgba + 4 * p;
        if (g[p] < vmax / 1000 * (1 - 1e-6)) {
            assert_true(c[0] == 0 && c[1] == 0 && c[2] == 0 && c[3] == 0);
            clear++;
        } else if (g[p] >= vmax * (1 + 1e-6)) {
            assert_memory_equal(c, lut[255], 4);
            top++;
        } else if (g[p] > vmax / 100) {
            double t = log(g[p] / (vmax / 1000)) / log(1000);
            int e = (int)lround(255 * t), near = 0;   /* float rounding: ±1 entry */
            for (int d = -1; d <= 1; d++)
                near += e + d >= 0 && e + d <= 255 && !memcmp(c, lut[e + d], 4);
            assert_true(near > 0);
            mid++;
        }
    }
    if (!(top > 0 && clear > 0 && mid > 1000))
        fail_msg("%zu pixels at the top, %zu clear, %zu between", top, clear, mid);
    free(im.rgba);
    free(g);
    pm_heat_layer_free(l);
    batch_close(&b);
}

/* Cluster C around a point of tile T1 at z12 and its copy one tile east
 * (in T2), plus a far denser cluster D elsewhere in T2: the pixels of C
 * and C' have equal densities and must have equal colours, although T2's
 * densities reach far higher (a per-tile scale would recolour them). */
static void same_density_same_colour_on_two_tiles(void **state)
{
    (void)state;
    enum { NC = 1500, ND = 6000 };
    const int z = 12;
    uint32_t tx, ty;
    tile_of(KEM_LON, KEM_LAT, z, &tx, &ty);
    double w = tile_w(z), x0 = -E_M + tx * w, y_top = E_M - ty * w;
    double c_lon = (x0 + 0.3 * w) / A_M / DEG, c_lat = atan(sinh((y_top - 0.5 * w) / A_M)) / DEG;
    double d_lon = (x0 + w + 0.8 * w) / A_M / DEG, d_lat = atan(sinh((y_top - 0.2 * w) / A_M)) / DEG;
    static double lon[2 * NC + ND], lat[2 * NC + ND];
    rng r = {71};
    for (size_t i = 0; i < NC; i++) {
        gauss_point(&r, c_lon, c_lat, 250, &lon[i], &lat[i]);
        lon[NC + i] = lon[i] + 360.0 / 4096;   /* exactly one z12 tile east */
        lat[NC + i] = lat[i];
    }
    for (size_t i = 2 * NC; i < 2 * NC + ND; i++)
        gauss_point(&r, d_lon, d_lat, 100, &lon[i], &lat[i]);
    batch b;
    batch_of(&b, lon, lat, 2 * NC + ND, PM_GRID_WEBMERC);
    /* exact sums: the pyramid's groups are the same a tile east, but their
     * centroids differ in the last bits */
    pm_heat_opts o = {PM_KERNEL_GAUSSIAN, 0, 10, PM_RAMP_VIRIDIS, 0};
    pm_heat_layer *l = NULL;
    assert_int_equal(pm_heat_layer_new_exact(b.ctx, b.pts, NULL, &o, &l), PM_OK);
    float *g1 = density(&b, l, z, tx, ty, 256), *g2 = density(&b, l, z, tx + 1, ty, 256);
    int e1, e2;
    image i1 = tile_image(&b, l, z, tx, ty, 256, &e1), i2 = tile_image(&b, l, z, tx + 1, ty, 256, &e2);
    float max1 = 0, max2 = 0;
    size_t equal = 0;
    for (size_t p = 0; p < 256 * 256; p++) {
        max1 = fmaxf(max1, g1[p]);
        max2 = fmaxf(max2, g2[p]);
        if (g1[p] > 0 && close_rel(g1[p], g2[p], 1e-7)) {
            assert_memory_equal(i1.rgba + 4 * p, i2.rgba + 4 * p, 4);
            equal += i1.rgba[4 * p + 3] > 0;
        }
    }
    assert_true(equal > 2000);
    assert_true(max2 > 3 * max1);
    free(i1.rgba);
    free(i2.rgba);
    free(g1);
    free(g2);
    pm_heat_layer_free(l);
    batch_close(&b);
}

static void tile_without_points_is_empty(void **state)
{
    (void)state;
    batch b;
    batch_kemerovo(&b, 81, 2000, PM_GRID_WEBMERC);
    pm_heat_layer *l = layer(&b, NULL, PM_KERNEL_QUARTIC, 0, 10, PM_RAMP_INFERNO, 0);
    uint32_t tx, ty;
    tile_of(37.6, 55.75, 10, &tx, &ty);   /* Moscow */
    int empty = 0;
    image im = tile_image(&b, l, 10, tx, ty, 512, &empty);
    assert_int_equal(empty, 1);
    for (size_t p = 0; p < 512 * 512 * 4; p++)
        assert_int_equal(im.rgba[p], 0);
    free(im.rgba);
    tile_of(KEM_LON, KEM_LAT, 10, &tx, &ty);
    im = tile_image(&b, l, 10, tx, ty, 256, &empty);
    assert_int_equal(empty, 0);
    free(im.rgba);
    pm_heat_layer_free(l);
    batch_close(&b);
}

static void bad_arguments_are_refused(void **state)
{
    (void)state;
    batch b;
    batch_kemerovo(&b, 91, 100, PM_GRID_WEBMERC);
    pm_heat_layer *l = layer(&b, NULL, PM_KERNEL_QUARTIC, 0, 10, PM_RAMP_INFERNO, 0);
    float *g = malloc(512 * 512 * sizeof *g);
    assert_int_equal(pm_heat_tile_density(b.ctx, l, 25, 0, 0, 256, g), PM_E_USAGE);
    assert_int_equal(pm_heat_tile_density(b.ctx, l, -1, 0, 0, 256, g), PM_E_USAGE);
    assert_int_equal(pm_heat_tile_density(b.ctx, l, 3, 8, 0, 256, g), PM_E_USAGE);
    assert_int_equal(pm_heat_tile_density(b.ctx, l, 3, 0, 8, 256, g), PM_E_USAGE);
    assert_int_equal(pm_heat_tile_density(b.ctx, l, 3, 0, 0, 300, g), PM_E_USAGE);
    assert_int_equal(pm_heat_tile_density(b.ctx, l, 24, (1u << 24) - 1, 0, 256, g), PM_OK);
    assert_int_equal(pm_heat_tile_density(b.ctx, l, 0, 0, 0, 512, g), PM_OK);
    uint8_t *png = (uint8_t *)g;
    size_t len = 1;
    int empty = 0;
    assert_int_equal(pm_heat_tile_png(b.ctx, l, 24, 1u << 24, 0, 256, &png, &len, &empty),
                     PM_E_USAGE);
    assert_null(png);
    assert_string_equal(pm_ctx_errmsg(b.ctx), "heat tile 24/16777216/0: x or y outside 0 .. 16777215");
    static const pm_heat_opts bad[5] = {{(pm_kernel)2, 0, 10, PM_RAMP_INFERNO, 0},
                                        {PM_KERNEL_QUARTIC, 0, 10, (pm_ramp)3, 0},
                                        {PM_KERNEL_QUARTIC, -1, 10, PM_RAMP_INFERNO, 0},
                                        {PM_KERNEL_QUARTIC, 0, 0, PM_RAMP_INFERNO, 0},
                                        {PM_KERNEL_QUARTIC, 0, 10, PM_RAMP_INFERNO, NAN}};
    for (int k = 0; k < 5; k++) {
        pm_heat_layer *x = l;
        assert_int_equal(pm_heat_layer_new(b.ctx, b.pts, NULL, &bad[k], &x), PM_E_USAGE);
        assert_null(x);
    }
    free(g);
    pm_heat_layer_free(l);
    batch_close(&b);
}

/* ---- weights ------------------------------------------------------------------------ */

#define HOUR 3600
#define T_REPORT 1762102800LL   /* 2025-11-03T00:00:00+07:00 */

/* A hand-made complaint and the weight it must get under each pm_weight. */
typedef struct timed {
    int64_t created, answered;
    uint8_t placement;
    double want[4];   /* ONE, OPEN, OVERDUE, WAIT_H; -1: never a point */
} timed;

#define NONE PM_TIME_NONE
static const timed TIMED[] = {
    {T_REPORT - 48 * HOUR, NONE, PM_PLACE_INSIDE, {1, 1, 1, 48}},
    {T_REPORT - 24 * HOUR, NONE, PM_PLACE_INSIDE, {1, 1, 0, 24}},   /* not strictly before */
    {T_REPORT - 24 * HOUR - 1, NONE, PM_PLACE_BORDER, {1, 1, 1, 24 + 1.0 / HOUR}},
    {T_REPORT - 10 * HOUR, T_REPORT - 5 * HOUR, PM_PLACE_SNAPPED, {1, 0, 0, 5}},
    /* answered after the report time: answered, as the cube counts it */
    {T_REPORT - 30 * HOUR, T_REPORT + 2 * HOUR, PM_PLACE_INSIDE, {1, 0, 0, 32}},
    {T_REPORT + HOUR, NONE, PM_PLACE_INSIDE, {1, 1, 0, 0}},          /* created after it */
    {T_REPORT - 3 * HOUR, T_REPORT - 3 * HOUR, PM_PLACE_INSIDE, {1, 0, 0, 0}},
    {T_REPORT - 100 * HOUR, T_REPORT - 99 * HOUR - 1800, PM_PLACE_INSIDE, {1, 0, 0, 0.5}},
    {T_REPORT - 50 * HOUR, NONE, PM_PLACE_OUTSIDE, {-1, -1, -1, -1}},
    {T_REPORT - 50 * HOUR, NONE, PM_PLACE_REJECTED, {-1, -1, -1, -1}},
};
#undef NONE
#define N_TIMED (sizeof TIMED / sizeof *TIMED)

static void weights_follow_the_cubes_rules(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    pm_complaints *cs = pm_complaints_new();
    pm_placed *pl = placed_inside(N_TIMED);
    for (size_t i = 0; i < N_TIMED; i++) {
        char id[16];
        snprintf(id, sizeof id, "t%zu", i);
        /* one position for all: Morton ties keep the input order */
        pm_complaint c = {.id = id, .created_at = TIMED[i].created,
                          .answered_at = TIMED[i].answered, .lon = KEM_LON, .lat = KEM_LAT,
                          .topic = (uint16_t)i};
        assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_OK);
        pl->placement[i] = TIMED[i].placement;
    }
    for (int w = 0; w < 4; w++) {
        pm_points *p = NULL;
        assert_int_equal(pm_points_new_weighted(ctx, cs, pl, PM_GRID_WEBMERC, 0, (pm_weight)w,
                                                T_REPORT, &p),
                         PM_OK);
        size_t k = 0;
        for (size_t i = 0; i < N_TIMED; i++) {
            double want = TIMED[i].want[w];
            if (want <= 0)   /* weight 0 and no position: left out */
                continue;
            if (k >= p->n)
                fail_msg("weight %d: complaint %zu is missing", w, i);
            assert_int_equal(p->topic[k], i);
            if (fabs(pm_points_weight(p, k) - want) > 1e-6 * want)
                fail_msg("weight %d, complaint %zu: %.9g, want %.9g", w, i,
                         pm_points_weight(p, k), want);
            k++;
        }
        assert_int_equal(p->n, k);
        /* a weight column only when some weight is not 1 */
        if (w == PM_WEIGHT_WAIT_H)
            assert_non_null(p->w);
        else
            assert_null(p->w);
        pm_points_free(p);
    }
    /* pm_points_new is the weight ONE */
    pm_points *p = NULL;
    assert_int_equal(pm_points_new(ctx, cs, pl, PM_GRID_WEBMERC, 0, &p), PM_OK);
    assert_int_equal(p->n, N_TIMED - 2);
    pm_points_free(p);
    p = (pm_points *)cs;
    assert_int_equal(pm_points_new_weighted(ctx, cs, pl, PM_GRID_WEBMERC, 0, (pm_weight)4,
                                            T_REPORT, &p),
                     PM_E_USAGE);
    assert_null(p);
    pm_placed_free(pl);
    pm_complaints_free(cs);
    pm_ctx_free(ctx);
}

static void weight_names_parse(void **state)
{
    (void)state;
    assert_int_equal(pm_weight_parse("one"), PM_WEIGHT_ONE);
    assert_int_equal(pm_weight_parse("open"), PM_WEIGHT_OPEN);
    assert_int_equal(pm_weight_parse("overdue"), PM_WEIGHT_OVERDUE);
    assert_int_equal(pm_weight_parse("wait_h"), PM_WEIGHT_WAIT_H);
    assert_int_equal(pm_weight_parse("Open"), -1);
    assert_int_equal(pm_weight_parse(""), -1);
    assert_int_equal(pm_weight_parse(NULL), -1);
}

/* Complaint i of the Kemerovo scene gets times that give every kind of
 * weight against T_REPORT: open (a quarter), answered after 0 .. 12 h
 * (0: at creation), created up to six days before T_REPORT or after it.
 * want[i] is its WAIT_H weight, computed here (float precision). */
static pm_complaints *timed_complaints(pm_ctx *ctx, const double *lon, const double *lat,
                                       size_t n, double *want)
{
    pm_complaints *cs = pm_complaints_new();
    assert_non_null(cs);
    for (size_t i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "w%zu", i);
        int64_t created = T_REPORT - (int64_t)(i % 7) * 86400 + 43200 - (int64_t)(i % 11) * 600;
        int64_t answered = i % 4 == 0 ? PM_TIME_NONE : created + (int64_t)(i % 13) * HOUR;
        int64_t end = answered == PM_TIME_NONE ? T_REPORT : answered;
        /* kept as a float, as the points keep it */
        want[i] = end > created ? (float)((double)(end - created) / HOUR) : 0;
        pm_complaint c = {.id = id, .created_at = created, .answered_at = answered,
                          .lon = lon[i], .lat = lat[i], .topic = (uint16_t)(i % 5),
                          .source = SOURCES[i % 3], .line = i + 1};
        assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_OK);
    }
    return cs;
}

/* The sum of the points' weights. */
static double weight_sum(const pm_points *p)
{
    double v = 0;
    for (size_t i = 0; i < p->n; i++)
        v += pm_points_weight(p, i);
    return v;
}

/* Open and overdue points are the cube's open and overdue complaints, at
 * three report times (one district round the scene, every complaint in
 * it). */
static void open_and_overdue_points_match_the_cube(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    size_t n = 2000;
    double *lon = malloc(n * sizeof *lon), *lat = malloc(n * sizeof *lat);
    double *want = malloc(n * sizeof *want);
    kemerovo(63, n, lon, lat);
    pm_complaints *cs = timed_complaints(ctx, lon, lat, n, want);
    pm_placed *pl = placed_inside(n);
    pm_districts *ds = pm_districts_new(ctx);
    GEOSContextHandle_t h = pm_ctx_geos(ctx);
    GEOSWKTReader *rd = GEOSWKTReader_create_r(h);
    GEOSGeometry *g = GEOSWKTReader_read_r(h, rd, "POLYGON((80 50, 95 50, 95 60, 80 60, 80 50))");
    GEOSWKTReader_destroy_r(h, rd);
    assert_int_equal(pm_districts_add(ctx, ds, "D", "D", "R", NAN, g), PM_OK);
    assert_int_equal(pm_districts_freeze(ctx, ds), PM_OK);
    pm_cube *cube = NULL;
    pm_cube_opts co = {PM_PERIOD_DAY, 0};
    assert_int_equal(pm_cube_new(ctx, ds, 5, &co, &cube), PM_OK);
    assert_int_equal(pm_cube_add(ctx, cube, cs, pl, NULL, NULL, NULL), PM_OK);
    static const int64_t at[3] = {T_REPORT, T_REPORT - 2 * 86400 - 1, T_REPORT + 43200};
    for (int k = 0; k < 3; k++) {
        pm_filter f = {.report_time = at[k]};
        pm_row *rows = NULL;
        size_t nr = 0;
        assert_int_equal(pm_cube_query(ctx, cube, PM_LEVEL_TOTAL, &f, &rows, &nr), PM_OK);
        pm_points *open = NULL, *overdue = NULL;
        assert_int_equal(pm_points_new_weighted(ctx, cs, pl, PM_GRID_WEBMERC, 0, PM_WEIGHT_OPEN,
                                                at[k], &open),
                         PM_OK);
        assert_int_equal(pm_points_new_weighted(ctx, cs, pl, PM_GRID_WEBMERC, 0,
                                                PM_WEIGHT_OVERDUE, at[k], &overdue),
                         PM_OK);
        assert_true(rows[0].overdue > 0 && rows[0].overdue < rows[0].open);
        assert_true(weight_sum(open) == (double)rows[0].open);
        assert_true(weight_sum(overdue) == (double)rows[0].overdue);
        pm_points_free(open);
        pm_points_free(overdue);
        pm_free(rows);
    }
    pm_cube_free(cube);
    pm_districts_free(ctx, ds);
    pm_placed_free(pl);
    pm_complaints_free(cs);
    free(lon);
    free(lat);
    free(want);
    pm_ctx_free(ctx);
}

/* The waiting-time density of tiles and the scale against the brute-force
 * weighted sum over every complaint (weight 0 ones adding nothing). */
static void weighted_density_equals_brute_force_sum(void **state)
{
    (void)state;
    batch b;
    memset(&b, 0, sizeof b);
    b.ctx = pm_ctx_new();
    b.n = 3000;
    b.lon = malloc(b.n * sizeof *b.lon);
    b.lat = malloc(b.n * sizeof *b.lat);
    double *want = malloc(b.n * sizeof *want);
    kemerovo(61, b.n, b.lon, b.lat);
    b.cs = timed_complaints(b.ctx, b.lon, b.lat, b.n, want);
    b.pl = placed_inside(b.n);
    assert_int_equal(pm_points_new_weighted(b.ctx, b.cs, b.pl, PM_GRID_WEBMERC, 0,
                                            PM_WEIGHT_WAIT_H, T_REPORT, &b.pts),
                     PM_OK);
    size_t kept = 0;
    for (size_t i = 0; i < b.n; i++)
        kept += want[i] > 0;
    assert_true(kept > b.n / 2 && kept < b.n);   /* some weights are 0 */
    assert_int_equal(pm_points_count(b.pts), kept);
    truth t = truth_of(&b, PM_GRID_WEBMERC);
    t.w = want;
    for (int k = 0; k < 2; k++) {
        pm_heat_layer *l = layer(&b, NULL, (pm_kernel)k, k ? 400 : 0, 12, PM_RAMP_INFERNO, 0);
        double vmax = brute_vmax(&b, &t, (pm_kernel)k, k ? 400 : 0, 12);
        if (!close_rel(pm_heat_layer_vmax(l), vmax, 1e-9))
            fail_msg("kernel %d: v_max %.12g, brute force %.12g", k, pm_heat_layer_vmax(l), vmax);
        uint32_t tx, ty;
        tile_of(KEM_LON, KEM_LAT, 11, &tx, &ty);
        float *g = density(&b, l, 11, tx, ty, 256);
        size_t hits = 0;
        for (int px = 0; px < 256 * 256; px += 29) {
            double cx, cy;
            pixel_centre(11, tx, ty, 256, px % 256, px / 256, &cx, &cy);
            double v = brute(&t, NULL, (pm_kernel)k, k ? 400 : 0, 12, 11, cx, cy);
            if (!close_rel(g[px], v, 1e-6))
                fail_msg("kernel %d pixel %d: %.9g, brute force %.9g", k, px, g[px], v);
            hits += v > 0;
        }
        assert_true(hits > 300);
        free(g);
        pm_heat_layer_free(l);
    }
    truth_free(&t);
    free(want);
    batch_close(&b);
}

/* ---- the golden image -------------------------------------------------------------- */

static void golden_tile_matches_reference(void **state)
{
    (void)state;
    batch b;
    batch_kemerovo(&b, 2025, 20000, PM_GRID_WEBMERC);
    pm_heat_layer *l = layer(&b, NULL, PM_KERNEL_QUARTIC, 0, 16, PM_RAMP_INFERNO, 0);
    uint32_t tx, ty;
    tile_of(KEM_LON, KEM_LAT, 11, &tx, &ty);
    size_t len;
    int empty;
    uint8_t *png = tile_png(&b, l, 11, tx, ty, 256, &len, &empty);
    assert_int_equal(empty, 0);
    golden_check(GOLDEN, "heat_golden", png, len, 0.005, 8);
    pm_free(png);
    pm_heat_layer_free(l);
    batch_close(&b);
}

/* ---- allocation failures ---------------------------------------------------------- */

/* Every step, with the n-th allocation from its start failing; the
 * points weighted by w (judged at day 8: every complaint of the scene
 * open, waiting 3.5 to 8.5 days). */
static int build_and_draw(batch *b, pm_weight w, long n, int *stage)
{
    pm_points *p = NULL;
    pm_heat_layer *l = NULL;
    uint8_t *png = NULL;
    uint16_t topics[1] = {2};
    pm_heat_filter f = {topics, 1, NULL, 0, 0, 0, 0};
    pm_heat_opts o = {PM_KERNEL_GAUSSIAN, 300, 0, PM_RAMP_VIRIDIS, 0};
    uint32_t tx, ty;
    tile_of(KEM_LON, KEM_LAT, 12, &tx, &ty);
    size_t len;
    int empty, rc;
    float *grid = malloc(256 * 256 * sizeof *grid);
    *stage = 0;
    pm_alloc_fail_at(n);
    rc = pm_points_new_weighted(b->ctx, b->cs, b->pl, PM_GRID_WEBMERC, 0, w, 8 * 86400, &p);
    if (!rc) {
        *stage = 1;
        rc = pm_heat_layer_new(b->ctx, p, &f, &o, &l);
    }
    if (!rc) {
        *stage = 2;
        rc = pm_heat_tile_png(b->ctx, l, 12, tx, ty, 256, &png, &len, &empty);
    }
    if (!rc) {
        *stage = 3;
        rc = pm_heat_tile_density(b->ctx, l, 12, tx, ty, 256, grid);
    }
    long made = pm_alloc_count();
    pm_alloc_fail_at(0);
    if (rc) {
        assert_int_equal(rc, PM_E_NOMEM);
        if (*stage == 0)
            assert_null(p);
        if (*stage == 1)
            assert_null(l);
        if (*stage == 2)
            assert_null(png);
    } else {
        assert_int_equal(empty, 0);
    }
    pm_free(png);
    pm_heat_layer_free(l);
    pm_points_free(p);
    free(grid);
    return rc ? -1 : n > made;
}

static void points_layer_and_tile_survive_alloc_failures(void **state)
{
    (void)state;
    batch b;
    batch_kemerovo(&b, 101, 800, PM_GRID_WEBMERC);
    int failures[2][4] = {{0}};
    for (int k = 0; k < 2; k++) {
        pm_weight w = k ? PM_WEIGHT_WAIT_H : PM_WEIGHT_ONE;
        for (long n = 1; n < 100000; n++) {
            int stage, r = build_and_draw(&b, w, n, &stage);
            if (r == 1)
                break;
            if (r < 0)
                failures[k][stage]++;
        }
    }
    /* points: gather + sort + arrays; layer: pass flags and sample; tile:
     * accumulator, RGBA and libpng's own allocations */
    for (int k = 0; k < 2; k++)
        assert_true(failures[k][0] >= 8 && failures[k][1] >= 3 && failures[k][2] >= 5 &&
                    failures[k][3] >= 2);
    assert_int_equal(failures[1][0], failures[0][0] + 1);   /* the weight column */
    batch_close(&b);
}

/* ---- timings (printed, not asserted) ------------------------------------------------- */

/* CPU time of this thread: the library draws on the caller's thread, and
 * wall time on a shared machine measures the neighbours. */
static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return v[n / 2];
}

/* p50 of the 5 × 5 tiles around Kemerovo at z, p50 of those with any
 * density, and the largest (ms). */
static void time_tiles(batch *b, const pm_heat_layer *l, int z, const char *what)
{
    uint32_t tx, ty;
    tile_of(KEM_LON, KEM_LAT, z, &tx, &ty);
    double all[25], busy[25], mx = 0;
    float *g = malloc(256 * 256 * sizeof *g);
    size_t n = 0, nb = 0;
    for (int dy = -2; dy <= 2; dy++)
        for (int dx = -2; dx <= 2; dx++) {
            double t0 = now_s();
            assert_int_equal(pm_heat_tile_density(b->ctx, l, z, tx + dx, ty + dy, 256, g), PM_OK);
            double ms = (now_s() - t0) * 1e3;
            all[n++] = ms;
            mx = fmax(mx, ms);
            int any = 0;
            for (size_t p = 0; p < 256 * 256 && !any; p++)
                any = g[p] > 0;
            if (any)
                busy[nb++] = ms;
        }
    printf("  z%-2d %-15s tile p50 %8.3f ms; p50 of the %2zu with points %8.3f ms; max %8.3f ms\n",
           z, what, median(all, n), nb, nb ? median(busy, nb) : 0.0, mx);
    free(g);
}

/* Median time of encoding an RGBA tile (ms). */
static double time_encode(batch *b, const pm_heat_layer *l, int z, int size, size_t *bytes)
{
    uint32_t tx, ty;
    tile_of(KEM_LON, KEM_LAT, z, &tx, &ty);
    int empty;
    image im = tile_image(b, l, z, tx, ty, size, &empty);
    double ms[41];
    for (int k = 0; k < 41; k++) {
        uint8_t *png;
        double t0 = now_s();
        assert_int_equal(pm_heat_png_encode(b->ctx, im.rgba, size, &png, bytes), PM_OK);
        ms[k] = (now_s() - t0) * 1e3;
        pm_free(png);
    }
    free(im.rgba);
    return median(ms, 41);
}

static double time_z10_tile(batch *b, const pm_heat_layer *l)
{
    uint32_t tx, ty;
    tile_of(KEM_LON, KEM_LAT, 10, &tx, &ty);
    float *g = malloc(256 * 256 * sizeof *g);
    double ms[9];
    for (int k = 0; k < 9; k++) {
        double t0 = now_s();
        assert_int_equal(pm_heat_tile_density(b->ctx, l, 10, tx, ty, 256, g), PM_OK);
        ms[k] = (now_s() - t0) * 1e3;
    }
    free(g);
    return median(ms, 9);
}

/* Build, scale and tiles of one scene of n points. */
static void time_scene(size_t n, double core_m, double city_m, int full)
{
    batch b;
    batch_spread(&b, 7, n, core_m, city_m, PM_GRID_WEBMERC);
    double build[3];
    for (int k = 0; k < 3; k++) {   /* the first also pays the page faults */
        double t = now_s();
        batch_points(&b, PM_GRID_WEBMERC);
        build[k] = now_s() - t;
    }
    double t0 = now_s();
    pm_heat_layer *l = layer(&b, NULL, PM_KERNEL_QUARTIC, 0, 20, PM_RAMP_INFERNO, 0);
    double lay = now_s() - t0;
    printf("  %zu points, core sigma %.0f m, city sigma %.0f m (CPU times)\n"
           "  pm_points_new %.1f, %.1f, %.1f ms (three builds); layer with v_max %.1f ms\n",
           n, core_m, city_m, build[0] * 1e3, build[1] * 1e3, build[2] * 1e3, lay * 1e3);
    for (int z = 6; z <= 14; z += 4)
        time_tiles(&b, l, z, "quartic 20 px");
    if (full) {
        pm_heat_layer *lm = layer(&b, NULL, PM_KERNEL_GAUSSIAN, 500, 0, PM_RAMP_INFERNO, 0);
        for (int z = 6; z <= 14; z += 4)
            time_tiles(&b, lm, z, "gaussian 500 m");
        pm_heat_layer_free(lm);
        size_t bytes;
        double enc = time_encode(&b, l, 12, 256, &bytes);
        printf("  PNG encode of a 256 px tile (z12, dense): %.3f ms, %zu bytes\n", enc, bytes);
        enc = time_encode(&b, l, 12, 512, &bytes);
        printf("  PNG encode of a 512 px tile (z12, dense): %.3f ms, %zu bytes\n", enc, bytes);
    }
    pm_heat_layer_free(l);
    batch_close(&b);
}

/* The z10 tile of Kemerovo with n points (same scene), and with n/10
 * points there and the rest around Moscow. */
static void time_independence(size_t n)
{
    size_t small = n / 10;
    double ms[3];
    for (int k = 0; k < 3; k++) {
        size_t m = k == 1 ? small : n, here = k == 0 ? n : small;
        double *lon = malloc(m * 8 + 8), *lat = malloc(m * 8 + 8);
        kemerovo(7, here, lon, lat);
        rng r = {3};
        for (size_t i = here; i < m; i++)
            gauss_point(&r, 37.6, 55.75, 20000, &lon[i], &lat[i]);
        batch b;
        batch_of(&b, lon, lat, m, PM_GRID_WEBMERC);
        free(lon);
        free(lat);
        pm_heat_layer *l = layer(&b, NULL, PM_KERNEL_QUARTIC, 0, 20, PM_RAMP_INFERNO, 1);
        ms[k] = time_z10_tile(&b, l);
        pm_heat_layer_free(l);
        batch_close(&b);
    }
    printf("  z10 Kemerovo tile, quartic 20 px: %zu points %.3f ms; %zu points (same scene) "
           "%.3f ms; %zu here + %zu around Moscow %.3f ms\n",
           small, ms[1], n, ms[0], small, n - small, ms[2]);
}

static void timings(void **state)
{
    (void)state;
    const char *env = getenv("PM_HEAT_BENCH_N");
    size_t n = env ? (size_t)strtoull(env, NULL, 10) : 20000;
    if (!n) {
        printf("  timings skipped (PM_HEAT_BENCH_N=0)\n");
        return;
    }
    time_scene(n, 600, 4000, 1);   /* the tests' scene: a third within ~1 km */
    time_scene(n, 3000, 8000, 0);  /* a city's spread */
    time_independence(n);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(closed_forms_match_proj_within_a_micrometre),
        cmocka_unit_test(worldmerc_is_about_35_km_south_of_webmerc_at_55n),
        cmocka_unit_test(scale_factor_from_northing_matches_latitude),
        cmocka_unit_test(points_keep_placed_complaints_with_coordinates),
        cmocka_unit_test(local_day_is_floor_of_shifted_time),
        cmocka_unit_test(no_points_make_empty_tiles),
        cmocka_unit_test(points_are_in_morton_order_ties_in_input_order),
        cmocka_unit_test(morton_ranges_find_exactly_the_points_in_a_box),
        cmocka_unit_test(tile_box_reaches_the_farthest_kernel),
        cmocka_unit_test(density_equals_brute_force_sum),
        cmocka_unit_test(pyramid_tiles_follow_the_exact_sum),
        cmocka_unit_test(dense_tiles_are_convolved_close_to_the_exact_sum),
        cmocka_unit_test(convolved_block_keeps_its_edges),
        cmocka_unit_test(pyramid_scale_is_close_to_the_exact_one),
        cmocka_unit_test(tiles_meet_without_seams),
        cmocka_unit_test(filter_counts_only_matching_points),
        cmocka_unit_test(vmax_is_99th_percentile_of_point_densities),
        cmocka_unit_test(legend_runs_log_from_vmax_over_1000_to_vmax),
        cmocka_unit_test(png_colours_follow_the_density),
        cmocka_unit_test(same_density_same_colour_on_two_tiles),
        cmocka_unit_test(tile_without_points_is_empty),
        cmocka_unit_test(bad_arguments_are_refused),
        cmocka_unit_test(weights_follow_the_cubes_rules),
        cmocka_unit_test(weight_names_parse),
        cmocka_unit_test(open_and_overdue_points_match_the_cube),
        cmocka_unit_test(weighted_density_equals_brute_force_sum),
        cmocka_unit_test(golden_tile_matches_reference),
        cmocka_unit_test(points_layer_and_tile_survive_alloc_failures),
        cmocka_unit_test(timings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
