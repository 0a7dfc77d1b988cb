/* test_locate.c — point → district: the border rule on shared edges and
 * vertices, enclaves, islands, overlaps, snapping (geodesic distances,
 * across the antimeridian), placement by code, the brute-force oracle
 * against the index (grids, detailed jagged coastlines for the snapping
 * index, a huge tolerance near the pole), thread-count invariance and
 * allocation failures; the raster fast path against the STRtree path and
 * the oracle (cell edges and one ulp off them, vertices, holes, ±180°,
 * Russia's regions and Kemerovo's OSM districts when ../shared/data is
 * there).  Every single-point check also asks the oracle and the STRtree
 * path (raster off) and requires the same answer.  An optional argument
 * is a cmocka test filter (for helgrind). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../engine/pm_alloc.h"
#include "../../engine/pm_complaint.h"
#include "../../engine/pm_ctx.h"
#include "../../engine/pm_district.h"
#include "../../engine/pm_locate.h"
#include "../../engine/raster_impl.h"
#include "../../geodata/pm_boundaries.h"

#include <geodesic.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- scenes: districts from WKT ------------------------------------------ */

typedef struct scene {
    pm_ctx *ctx;
    pm_districts *ds;
    pm_locator *loc;
} scene;

static GEOSGeometry *wkt(pm_ctx *ctx, const char *s)
{
    GEOSWKTReader *r = GEOSWKTReader_create_r(pm_ctx_geos(ctx));
    GEOSGeometry *g = GEOSWKTReader_read_r(pm_ctx_geos(ctx), r, s);
    GEOSWKTReader_destroy_r(pm_ctx_geos(ctx), r);
    assert_non_null(g);
    return g;
}

static void scene_add(scene *s, const char *id, const char *w)
{
    assert_int_equal(pm_districts_add(s->ctx, s->ds, id, NULL, NULL, NAN, wkt(s->ctx, w)), PM_OK);
}

static void scene_begin(scene *s)
{
    s->ctx = pm_ctx_new();
    assert_non_null(s->ctx);
    s->ds = pm_districts_new(s->ctx);
    assert_non_null(s->ds);
    s->loc = NULL;
}

static void scene_build(scene *s, double tol_m)
{
    assert_int_equal(pm_districts_freeze(s->ctx, s->ds), PM_OK);
    assert_int_equal(pm_locator_new(s->ctx, s->ds, tol_m, &s->loc), PM_OK);
}

/* Districts given as {id, wkt} pairs, inserted in this order. */
static void scene_open(scene *s, const char *const (*dist)[2], size_t n, double tol_m)
{
    scene_begin(s);
    for (size_t i = 0; i < n; i++)
        scene_add(s, dist[i][0], dist[i][1]);
    scene_build(s, tol_m);
}

static void scene_close(scene *s)
{
    pm_locator_free(s->ctx, s->loc);
    pm_districts_free(s->ctx, s->ds);
    pm_ctx_free(s->ctx);
}

typedef struct where {
    int32_t district;
    pm_placement pl;
    double dist_m;
} where;

/* How to ask: the default (raster first), the oracle, the STRtree path. */
enum { VIA_RASTER = 0, VIA_BRUTE = 1, VIA_EXACT = 2 };

static where locate_one(scene *s, double lon, double lat, int via)
{
    where w;
    pm_locator_set_brute_force(s->loc, via == VIA_BRUTE);
    pm_locator_set_raster(s->loc, via == VIA_RASTER);
    int rc = pm_locate_point(s->ctx, s->loc, lon, lat, &w.district, &w.pl, &w.dist_m);
    pm_locator_set_brute_force(s->loc, 0);
    pm_locator_set_raster(s->loc, 1);
    if (rc)
        fail_msg("(%.17g, %.17g): %s", lon, lat, pm_ctx_errmsg(s->ctx));
    return w;
}

static int same(const where *a, const where *b)
{
    return a->district == b->district && a->pl == b->pl && a->dist_m == b->dist_m;
}

/* The default answer, after checking that the STRtree path and the
 * oracle agree. */
static where locate(scene *s, double lon, double lat)
{
    where a = locate_one(s, lon, lat, VIA_RASTER), b = locate_one(s, lon, lat, VIA_BRUTE);
    where c = locate_one(s, lon, lat, VIA_EXACT);
    assert_int_equal(a.district, b.district);
    assert_int_equal(a.pl, b.pl);
    assert_true(a.dist_m == b.dist_m);
    assert_true(same(&a, &c));
    return a;
}

static const char *id_of(const scene *s, int32_t district)
{
    return district < 0 ? "(none)" : pm_district_id(s->ds, (size_t)district);
}

static void assert_at(scene *s, double lon, double lat, const char *id, pm_placement pl)
{
    where w = locate(s, lon, lat);
    assert_string_equal(id_of(s, w.district), id ? id : "(none)");
    assert_string_equal(pm_placement_name(w.pl), pm_placement_name(pl));
    if (pl != PM_PLACE_SNAPPED)
        assert_true(w.dist_m == 0.0);
}

/* Asks the other way and fails, naming both answers, unless it gives a. */
static void assert_same(scene *s, double lon, double lat, const where *a, int via)
{
    static const char *const name[] = {"raster", "brute force", "STRtree"};
    where b = locate_one(s, lon, lat, via);
    if (!same(a, &b))
        fail_msg("(%.17g, %.17g): raster %s %s %.17g m, %s %s %s %.17g m", lon, lat,
                 id_of(s, a->district), pm_placement_name(a->pl), a->dist_m, name[via],
                 id_of(s, b.district), pm_placement_name(b.pl), b.dist_m);
}

/* A square cell with a vertex in the middle of each side: GEOS does not
 * take it for a rectangle, so the general point-in-area code runs. */
static void cell_wkt(char *buf, size_t size, double x0, double y0, double d)
{
    double x1 = x0 + d, y1 = y0 + d, xm = x0 + d / 2, ym = y0 + d / 2;
    snprintf(buf, size,
             "POLYGON((%.17g %.17g,%.17g %.17g,%.17g %.17g,%.17g %.17g,%.17g %.17g,"
             "%.17g %.17g,%.17g %.17g,%.17g %.17g,%.17g %.17g))",
             x0, y0, xm, y0, x1, y0, x1, ym, x1, y1, xm, y1, x0, y1, x0, ym, x0, y0);
}

/* A growing WKT string. */
typedef struct wkt_buf {
    char *s;
    size_t n, cap;
} wkt_buf;

static void wkt_put(wkt_buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        assert_true(k >= 0);
        if (b->s && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        b->cap = b->cap * 2 + (size_t)k + 1024;
        b->s = realloc(b->s, b->cap);
        assert_non_null(b->s);
    }
}

/* ---- geodesic truth ---------------------------------------------------- */

static struct geod_geodesic wgs84(void)
{
    struct geod_geodesic g;
    geod_init(&g, 6378137.0, 1.0 / 298.257223563);
    return g;
}

static double geod_dist(double lon1, double lat1, double lon2, double lat2)
{
    struct geod_geodesic g = wgs84();
    double s;
    geod_inverse(&g, lat1, lon1, lat2, lon2, &s, NULL, NULL);
    return s;
}

/* Geodesic distance from p to the segment a-b (straight in lon/lat), by
 * golden-section search along the segment. */
static double dist_to_segment(double px, double py, double ax, double ay, double bx, double by)
{
    double lo = 0, hi = 1, r = (sqrt(5.0) - 1) / 2;
    for (int k = 0; k < 200; k++) {
        double t1 = hi - r * (hi - lo), t2 = lo + r * (hi - lo);
        double d1 = geod_dist(px, py, ax + t1 * (bx - ax), ay + t1 * (by - ay));
        double d2 = geod_dist(px, py, ax + t2 * (bx - ax), ay + t2 * (by - ay));
        if (d1 < d2)
            hi = t2;
        else
            lo = t1;
    }
    double t = (lo + hi) / 2;
    return geod_dist(px, py, ax + t * (bx - ax), ay + t * (by - ay));
}

/* ---- the border rule on a grid ------------------------------------------ */

/* 3 x 3 cells of 0.125° from (37, 55); ids so that byte order ("10" <
 * "16" < "8" < "9") differs from numeric and from insertion order:
 *     r2:  15 16  8
 *     r1:  12 13 14
 *     r0:   9 10 11          */
static void grid_open(scene *s, double tol_m)
{
    static const char *ids[9] = {"9", "10", "11", "12", "13", "14", "15", "16", "8"};
    scene_begin(s);
    for (int k = 0; k < 9; k++) {
        char buf[512];
        cell_wkt(buf, sizeof buf, 37.0 + 0.125 * (k % 3), 55.0 + 0.125 * (k / 3), 0.125);
        scene_add(s, ids[k], buf);
    }
    scene_build(s, tol_m);
}

static void interior_point_is_inside(void **state)
{
    (void)state;
    scene s;
    grid_open(&s, 0);
    assert_at(&s, 37.3, 55.3, "8", PM_PLACE_INSIDE);
    assert_at(&s, 37.01, 55.01, "9", PM_PLACE_INSIDE);
    assert_at(&s, 37.2, 55.2, "13", PM_PLACE_INSIDE);
    scene_close(&s);
}

static void shared_edge_goes_to_lowest_id_as_border(void **state)
{
    (void)state;
    scene s;
    grid_open(&s, 0);
    assert_at(&s, 37.125, 55.0625, "10", PM_PLACE_BORDER);   /* 9 | 10 */
    assert_at(&s, 37.25, 55.3125, "16", PM_PLACE_BORDER);    /* 16 | 8 */
    assert_at(&s, 37.3, 55.25, "14", PM_PLACE_BORDER);       /* 14 / 8 */
    assert_at(&s, 37.0625, 55.125, "12", PM_PLACE_BORDER);   /* 9 / 12, on a mid-side vertex */
    assert_at(&s, 37.0, 55.0625, "9", PM_PLACE_BORDER);      /* outer edge */
    scene_close(&s);
}

static void shared_vertex_goes_to_lowest_of_four(void **state)
{
    (void)state;
    scene s;
    grid_open(&s, 0);
    assert_at(&s, 37.25, 55.25, "13", PM_PLACE_BORDER);    /* 13 14 16 8 */
    assert_at(&s, 37.125, 55.125, "10", PM_PLACE_BORDER);  /* 9 10 12 13 */
    assert_at(&s, 37.375, 55.375, "8", PM_PLACE_BORDER);   /* outer corner */
    scene_close(&s);
}

static void point_off_the_grid_is_outside(void **state)
{
    (void)state;
    scene s;
    grid_open(&s, 0);
    assert_at(&s, 36.9, 55.1, NULL, PM_PLACE_OUTSIDE);
    scene_close(&s);
}

/* ---- enclaves, islands, overlaps ---------------------------------------- */

static const char *const enclave[][2] = {
    {"K-02", "POLYGON((40.4 50.4,40.5 50.4,40.6 50.4,40.6 50.6,40.4 50.6,40.4 50.4))"},
    {"K-01", "POLYGON((40 50,41 50,41 51,40 51,40 50),"
             "(40.4 50.4,40.5 50.4,40.6 50.4,40.6 50.6,40.4 50.6,40.4 50.4))"},
};

static void point_in_hole_goes_to_enclave(void **state)
{
    (void)state;
    scene s;
    scene_open(&s, enclave, 2, 1000);
    assert_at(&s, 40.5, 50.5, "K-02", PM_PLACE_INSIDE);
    assert_at(&s, 40.2, 50.2, "K-01", PM_PLACE_INSIDE);
    scene_close(&s);
}

static void point_on_hole_ring_goes_to_lower_id(void **state)
{
    (void)state;
    scene s;
    scene_open(&s, enclave, 2, 1000);
    assert_at(&s, 40.4, 50.5, "K-01", PM_PLACE_BORDER);
    assert_at(&s, 40.5, 50.4, "K-01", PM_PLACE_BORDER);   /* a vertex of the ring */
    scene_close(&s);
}

static void multipolygon_island_belongs_to_its_district(void **state)
{
    (void)state;
    static const char *const d[][2] = {
        {"M", "MULTIPOLYGON(((42 50,43 50,43 51,42 51,42 50)),"
              "((43.5 50.2,43.7 50.2,43.6 50.4,43.5 50.2)))"},
        {"L", "POLYGON((41 50,42 50,42 51,41.5 51.2,41 51,41 50))"},
    };
    scene s;
    scene_open(&s, d, 2, 0);
    assert_at(&s, 43.6, 50.3, "M", PM_PLACE_INSIDE);
    assert_at(&s, 42.5, 50.5, "M", PM_PLACE_INSIDE);
    assert_at(&s, 43.3, 50.5, NULL, PM_PLACE_OUTSIDE);
    assert_at(&s, 42.0, 50.5, "L", PM_PLACE_BORDER);
    scene_close(&s);
}

static void overlap_goes_to_lowest_id(void **state)
{
    (void)state;
    static const char *const d[][2] = {
        {"O-2", "POLYGON((44 50,44.5 50,45 50,45 51,44 51,44 50))"},
        {"O-1", "POLYGON((44.5 50.5,45 50.5,45.5 50.5,45.5 51.5,44.5 51.5,44.5 50.5))"},
    };
    scene s;
    scene_open(&s, d, 2, 0);
    assert_at(&s, 44.75, 50.75, "O-1", PM_PLACE_INSIDE);
    assert_at(&s, 44.25, 50.25, "O-2", PM_PLACE_INSIDE);
    /* On O-1's edge, inside O-2: O-1 still has the lower id. */
    assert_at(&s, 44.5, 50.75, "O-1", PM_PLACE_BORDER);
    scene_close(&s);
}

/* 100 nested squares around (10, 10), half-size (k+1)/64, inserted from
 * the largest: more candidates than fit on the stack. */
static void nested_open(scene *s)
{
    scene_begin(s);
    for (int k = 99; k >= 0; k--) {
        char id[16], buf[512];
        double h = (k + 1) / 64.0;
        snprintf(id, sizeof id, "N%03d", k);
        cell_wkt(buf, sizeof buf, 10 - h, 10 - h, 2 * h);
        scene_add(s, id, buf);
    }
    scene_build(s, 1000);
}

static void many_overlaps_go_to_lowest_id(void **state)
{
    (void)state;
    scene s;
    nested_open(&s);
    assert_at(&s, 10.0, 10.0, "N000", PM_PLACE_INSIDE);
    assert_at(&s, 10.0 + 50 / 64.0, 10.0, "N049", PM_PLACE_BORDER);
    assert_at(&s, 10.0 + 50.5 / 64.0, 10.0, "N050", PM_PLACE_INSIDE);
    scene_close(&s);
}

/* ---- snapping ------------------------------------------------------------ */

/* Land south-east of the coast A-B, which runs north-east at 60°N (45° on
 * the ground), where distances in plain degrees are 17 % off. */
#define COAST_AX 30.0
#define COAST_AY 60.0
#define COAST_BX 30.04
#define COAST_BY 60.02
static const char *const coast[][2] = {
    {"C-1", "POLYGON((30 60,30.04 60.02,30.04 59.9,30 59.9,30 60))"},
};

/* The point off the middle of the coast, d metres out to sea. */
static void offshore(double d, double *lon, double *lat)
{
    struct geod_geodesic g = wgs84();
    double fx = (COAST_AX + COAST_BX) / 2, fy = (COAST_AY + COAST_BY) / 2, azi;
    geod_inverse(&g, fy, fx, COAST_BY, COAST_BX, NULL, &azi, NULL);
    geod_direct(&g, fy, fx, azi - 90.0, d, lat, lon, NULL);
}

static void snap_distance_is_geodesic(void **state)
{
    (void)state;
    scene s;
    scene_open(&s, coast, 1, 1000);
    double lon, lat;
    offshore(500, &lon, &lat);
    double truth = dist_to_segment(lon, lat, COAST_AX, COAST_AY, COAST_BX, COAST_BY);
    assert_true(fabs(truth - 500) < 5);
    where w = locate(&s, lon, lat);
    assert_string_equal(id_of(&s, w.district), "C-1");
    assert_int_equal(w.pl, PM_PLACE_SNAPPED);
    if (fabs(w.dist_m - truth) > 1.0)
        fail_msg("snap distance %.3f m, geodesic truth %.3f m", w.dist_m, truth);
    scene_close(&s);
}

static void beyond_tolerance_is_outside(void **state)
{
    (void)state;
    scene s;
    scene_open(&s, coast, 1, 1000);
    double lon, lat;
    offshore(1500, &lon, &lat);
    assert_at(&s, lon, lat, NULL, PM_PLACE_OUTSIDE);
    scene_close(&s);
}

static void zero_tolerance_disables_snapping(void **state)
{
    (void)state;
    scene s;
    scene_open(&s, coast, 1, 0);
    double lon, lat;
    offshore(500, &lon, &lat);
    assert_at(&s, lon, lat, NULL, PM_PLACE_OUTSIDE);
    scene_close(&s);
}

static void negative_tolerance_means_1000_m(void **state)
{
    (void)state;
    scene s;
    scene_open(&s, coast, 1, -1);
    double lon, lat;
    offshore(990, &lon, &lat);
    assert_at(&s, lon, lat, "C-1", PM_PLACE_SNAPPED);
    offshore(1010, &lon, &lat);
    assert_at(&s, lon, lat, NULL, PM_PLACE_OUTSIDE);
    scene_close(&s);
}

static void tolerance_is_inclusive(void **state)
{
    (void)state;
    double lon, lat;
    offshore(700, &lon, &lat);
    scene s;
    scene_open(&s, coast, 1, 1000);
    double d = locate(&s, lon, lat).dist_m;
    scene_close(&s);
    scene_open(&s, coast, 1, d);
    assert_at(&s, lon, lat, "C-1", PM_PLACE_SNAPPED);
    scene_close(&s);
    scene_open(&s, coast, 1, nextafter(d, 0));
    assert_at(&s, lon, lat, NULL, PM_PLACE_OUTSIDE);
    scene_close(&s);
}

static void snap_tie_goes_to_lowest_id(void **state)
{
    (void)state;
    /* Two districts touching at (50, 50); the point is due south of that
     * vertex, equally near both. */
    static const char *const d[][2] = {
        {"T-2", "POLYGON((50 50,50.1 50,50.1 50.1,50 50.1,50 50))"},
        {"T-1", "POLYGON((49.9 50,50 50,50 50.1,49.9 50.1,49.9 50))"},
    };
    scene s;
    scene_open(&s, d, 2, 1000);
    where w = locate(&s, 50.0, 49.996);
    assert_string_equal(id_of(&s, w.district), "T-1");
    assert_int_equal(w.pl, PM_PLACE_SNAPPED);
    assert_true(fabs(w.dist_m - geod_dist(50, 49.996, 50, 50)) < 1e-6);
    scene_close(&s);
}

/* ---- antimeridian ---------------------------------------------------------- */

static const char *const antimeridian[][2] = {
    {"A-1", "MULTIPOLYGON(((179.9 64.9,180 64.9,180 65.1,179.9 65.1,179.9 64.9)),"
            "((-180 64.9,-179.9 64.9,-179.9 65.1,-180 65.1,-180 64.9)))"},
    {"A-2", "POLYGON((-180 60,-179.9 60,-179.9 60.1,-180 60.1,-180 60))"},
    {"A-3", "POLYGON((179.9 70,180 70,180 70.1,179.9 70.1,179.9 70))"},
};

static void antimeridian_points_are_placed(void **state)
{
    (void)state;
    scene s;
    scene_open(&s, antimeridian, 3, 1000);
    assert_at(&s, 179.99, 65.0, "A-1", PM_PLACE_INSIDE);
    assert_at(&s, -179.99, 65.0, "A-1", PM_PLACE_INSIDE);
    assert_at(&s, 180.0, 65.0, "A-1", PM_PLACE_BORDER);
    assert_at(&s, -180.0, 65.0, "A-1", PM_PLACE_BORDER);
    scene_close(&s);
}

static void snap_across_antimeridian(void **state)
{
    (void)state;
    scene s;
    scene_open(&s, antimeridian, 3, 1000);
    where w = locate(&s, 179.995, 60.05);  /* A-2 is on the -180 side only */
    assert_string_equal(id_of(&s, w.district), "A-2");
    assert_int_equal(w.pl, PM_PLACE_SNAPPED);
    assert_true(fabs(w.dist_m - dist_to_segment(179.995, 60.05, -180, 60, -180, 60.1)) < 1.0);
    assert_true(w.dist_m > 200 && w.dist_m < 300);
    w = locate(&s, -179.995, 70.05);       /* A-3 is on the +180 side only */
    assert_string_equal(id_of(&s, w.district), "A-3");
    assert_int_equal(w.pl, PM_PLACE_SNAPPED);
    assert_true(fabs(w.dist_m - dist_to_segment(-179.995, 70.05, 180, 70, 180, 70.1)) < 1.0);
    scene_close(&s);
}

/* An edge of many vertices that rounding put just east of 180° (the
 * boundary reader allows 1e-7°): still found from the -180° side. */
static void snap_to_edge_rounded_past_antimeridian(void **state)
{
    (void)state;
    wkt_buf b = {0};
    wkt_put(&b, "POLYGON((179.9 65");
    for (int k = 0; k <= 100; k++)
        wkt_put(&b, ",%.17g %.17g", 180.00000005, 65 + k / 100.0);
    wkt_put(&b, ",179.9 66,179.9 65))");
    scene s;
    scene_begin(&s);
    scene_add(&s, "E-1", b.s);
    free(b.s);
    scene_build(&s, 1000);
    where w = locate(&s, -179.995, 65.505);
    assert_string_equal(id_of(&s, w.district), "E-1");
    assert_int_equal(w.pl, PM_PLACE_SNAPPED);
    double truth = dist_to_segment(-179.995, 65.505, 180.00000005, 65.5, 180.00000005, 65.51);
    assert_true(fabs(w.dist_m - truth) < 1.0);
    scene_close(&s);
}

/* ---- bad input and usage ------------------------------------------------ */

static void bad_coordinates_are_refused(void **state)
{
    (void)state;
    scene s;
    grid_open(&s, 1000);
    int32_t d;
    pm_placement pl;
    double m;
    assert_int_equal(pm_locate_point(s.ctx, s.loc, NAN, 55, &d, &pl, &m), PM_E_INPUT_VALUE);
    assert_non_null(strstr(pm_ctx_errmsg(s.ctx), "not finite"));
    assert_int_equal(d, -1);
    assert_int_equal(pm_locate_point(s.ctx, s.loc, 37, INFINITY, &d, &pl, &m), PM_E_INPUT_VALUE);
    assert_int_equal(pm_locate_point(s.ctx, s.loc, 181, 55, &d, &pl, &m), PM_E_INPUT_VALUE);
    assert_non_null(strstr(pm_ctx_errmsg(s.ctx), "out of range"));
    scene_close(&s);
}

static void unfrozen_districts_are_refused(void **state)
{
    (void)state;
    scene s;
    scene_begin(&s);
    scene_add(&s, "X", "POLYGON((0 0,1 0,1 1,0 0))");
    assert_int_equal(pm_locator_new(s.ctx, s.ds, 0, &s.loc), PM_E_USAGE);
    assert_null(s.loc);
    scene_close(&s);
}

/* ---- batches --------------------------------------------------------------- */

static void add_complaint(pm_ctx *ctx, pm_complaints *cs, size_t i, double lon, double lat,
                          const char *code)
{
    char id[32];
    snprintf(id, sizeof id, "c%zu", i);
    pm_complaint c = {.id = id, .created_at = 0, .answered_at = PM_TIME_NONE, .lon = lon,
                      .lat = lat, .district_code = code, .line = i + 2};
    assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_OK);
}

static void no_coordinates_placed_by_code(void **state)
{
    (void)state;
    scene s;
    grid_open(&s, 1000);
    pm_complaints *cs = pm_complaints_new();
    assert_non_null(cs);
    add_complaint(s.ctx, cs, 0, NAN, NAN, "9");
    add_complaint(s.ctx, cs, 1, NAN, NAN, "nope");
    add_complaint(s.ctx, cs, 2, NAN, NAN, NULL);
    add_complaint(s.ctx, cs, 3, 37.3, NAN, "16");       /* half a position: by code */
    add_complaint(s.ctx, cs, 4, 37.3, 55.3, "9");       /* coordinates win over the code */
    add_complaint(s.ctx, cs, 5, 37.125, 55.0625, NULL);
    pm_placed *p = NULL;
    assert_int_equal(pm_locate_batch(s.ctx, s.loc, cs, 2, &p), PM_OK);
    assert_int_equal(p->n, 6);
    const uint8_t want_pl[6] = {PM_PLACE_BY_CODE, PM_PLACE_UNKNOWN_CODE, PM_PLACE_UNKNOWN_CODE,
                                PM_PLACE_BY_CODE, PM_PLACE_INSIDE, PM_PLACE_BORDER};
    const char *want_id[6] = {"9", "(none)", "(none)", "16", "8", "10"};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(p->placement[i], want_pl[i]);
        assert_string_equal(id_of(&s, p->district[i]), want_id[i]);
        assert_true(pm_placed_snap_m(p, i) == 0.0f);
    }
    assert_int_equal(p->counts[PM_PLACE_BY_CODE], 2);
    assert_int_equal(p->counts[PM_PLACE_UNKNOWN_CODE], 2);
    assert_int_equal(p->counts[PM_PLACE_INSIDE], 1);
    assert_int_equal(p->counts[PM_PLACE_BORDER], 1);
    assert_int_equal(p->counts[PM_PLACE_SNAPPED] + p->counts[PM_PLACE_OUTSIDE], 0);
    pm_placed_free(p);
    pm_complaints_free(cs);
    scene_close(&s);
}

/* ---- the random scene: oracle, threads --------------------------------- */

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static double uniform(uint64_t *s, double lo, double hi)
{
    return lo + (hi - lo) * (double)(xorshift(s) >> 11) / 9007199254740992.0;
}

#define RG 20            /* grid cells per side */
#define RCELL 0.125
#define RX0 37.0
#define RY0 55.0
#define RTRI 30
#define RN (RG * RG + RTRI + 2)
#define RPOINTS 50000

/* A 20 x 20 grid, 30 random triangles over it and an enclave pair, with
 * ids a random permutation of 1..RN (so byte order mixes them all). */
static void random_open(scene *s, uint64_t seed)
{
    int perm[RN];
    for (int k = 0; k < RN; k++)
        perm[k] = k + 1;
    for (int k = RN - 1; k > 0; k--) {
        int j = (int)(xorshift(&seed) % (uint64_t)(k + 1)), t = perm[k];
        perm[k] = perm[j];
        perm[j] = t;
    }
    scene_begin(s);
    char id[16], buf[1024];
    int k = 0;
    for (; k < RG * RG; k++) {
        cell_wkt(buf, sizeof buf, RX0 + RCELL * (k % RG), RY0 + RCELL * (k / RG), RCELL);
        snprintf(id, sizeof id, "%d", perm[k]);
        scene_add(s, id, buf);
    }
    double span = RG * RCELL;
    for (; k < RG * RG + RTRI; k++) {
        double x = uniform(&seed, RX0, RX0 + span), y = uniform(&seed, RY0, RY0 + span);
        double x1 = x + uniform(&seed, 0.05, 0.4), y2 = y + uniform(&seed, 0.05, 0.4);
        snprintf(buf, sizeof buf, "POLYGON((%.17g %.17g,%.17g %.17g,%.17g %.17g,%.17g %.17g))", x,
                 y, x1, y + uniform(&seed, -0.1, 0.1), x + uniform(&seed, -0.1, 0.1), y2, x, y);
        snprintf(id, sizeof id, "%d", perm[k]);
        scene_add(s, id, buf);
    }
    snprintf(id, sizeof id, "%d", perm[k++]);
    scene_add(s, id, "POLYGON((38 56,38.5 56,38.5 56.5,38 56.5,38 56),"
                     "(38.125 56.125,38.3 56.2,38.25 56.375,38.125 56.125))");
    snprintf(id, sizeof id, "%d", perm[k++]);
    scene_add(s, id, "POLYGON((38.125 56.125,38.3 56.2,38.25 56.375,38.125 56.125))");
    scene_build(s, 1000);
}

/* Points over the grid and a margin of ~3 km; one third put exactly on
 * grid lines, half of those on grid vertices. */
static void random_points(uint64_t seed, double *lon, double *lat, size_t n)
{
    double m = 0.05, span = RG * RCELL;
    for (size_t i = 0; i < n; i++) {
        lon[i] = uniform(&seed, RX0 - m, RX0 + span + m);
        lat[i] = uniform(&seed, RY0 - m, RY0 + span + m);
        if (i % 3 == 0)
            lon[i] = RX0 + RCELL * round((lon[i] - RX0) / RCELL);
        if (i % 6 == 0)
            lat[i] = RY0 + RCELL * round((lat[i] - RY0) / RCELL);
    }
}

static void brute_force_agrees_with_index(void **state)
{
    (void)state;
    scene s;
    random_open(&s, 0x9E3779B97F4A7C15ull);
    double *lon = malloc(RPOINTS * sizeof *lon), *lat = malloc(RPOINTS * sizeof *lat);
    assert_non_null(lon);
    assert_non_null(lat);
    random_points(42, lon, lat, RPOINTS);
    size_t count[PM_PLACE_N] = {0};
    for (size_t i = 0; i < RPOINTS; i++) {
        where a = locate_one(&s, lon[i], lat[i], VIA_RASTER);
        assert_same(&s, lon[i], lat[i], &a, VIA_BRUTE);
        assert_same(&s, lon[i], lat[i], &a, VIA_EXACT);
        count[a.pl]++;
    }
    /* The scene must exercise every outcome. */
    assert_true(count[PM_PLACE_INSIDE] > 10000);
    assert_true(count[PM_PLACE_BORDER] > 5000);
    assert_true(count[PM_PLACE_SNAPPED] > 500);
    assert_true(count[PM_PLACE_OUTSIDE] > 500);
    free(lon);
    free(lat);
    scene_close(&s);
}

static pm_complaints *random_complaints(pm_ctx *ctx, size_t n)
{
    double *lon = malloc(n * sizeof *lon), *lat = malloc(n * sizeof *lat);
    assert_non_null(lon);
    assert_non_null(lat);
    random_points(7, lon, lat, n);
    pm_complaints *cs = pm_complaints_new();
    assert_non_null(cs);
    char code[16];
    for (size_t i = 0; i < n; i++) {
        snprintf(code, sizeof code, "%zu", i % (RN + 50));
        if (i % 97 == 0)
            add_complaint(ctx, cs, i, NAN, NAN, code);
        else
            add_complaint(ctx, cs, i, lon[i], lat[i], NULL);
    }
    free(lon);
    free(lat);
    return cs;
}

static void assert_placed_equal(const pm_placed *a, const pm_placed *b)
{
    assert_int_equal(a->n, b->n);
    assert_memory_equal(a->district, b->district, a->n * sizeof *a->district);
    assert_memory_equal(a->placement, b->placement, a->n * sizeof *a->placement);
    assert_int_equal(a->n_snap, b->n_snap);
    assert_memory_equal(a->snap_i, b->snap_i, a->n_snap * sizeof *a->snap_i);
    assert_memory_equal(a->snap_d, b->snap_d, a->n_snap * sizeof *a->snap_d);
    for (size_t i = 1; i < a->n_snap; i++)   /* by increasing index, each snapped */
        assert_true(a->snap_i[i - 1] < a->snap_i[i]);
    for (size_t i = 0; i < a->n_snap; i++)
        assert_int_equal(a->placement[a->snap_i[i]], PM_PLACE_SNAPPED);
    assert_memory_equal(a->counts, b->counts, sizeof a->counts);
}

static void batch_does_not_depend_on_thread_count(void **state)
{
    (void)state;
    scene s;
    random_open(&s, 12345);
    size_t n = 30000;
    pm_complaints *cs = random_complaints(s.ctx, n);
    pm_placed *p1 = NULL, *p2 = NULL, *p7 = NULL;
    assert_int_equal(pm_locate_batch(s.ctx, s.loc, cs, 1, &p1), PM_OK);
    assert_int_equal(pm_locate_batch(s.ctx, s.loc, cs, 2, &p2), PM_OK);
    assert_int_equal(pm_locate_batch(s.ctx, s.loc, cs, 7, &p7), PM_OK);
    assert_placed_equal(p1, p2);
    assert_placed_equal(p1, p7);
    /* ... and equals the single-point answers. */
    pm_coord_column lon = pm_complaints_lon(cs), lat = pm_complaints_lat(cs);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += 1;
        if (isnan(pm_coord_at(lon, i)))
            continue;
        where w = locate_one(&s, pm_coord_at(lon, i), pm_coord_at(lat, i), VIA_RASTER);
        assert_int_equal(p1->district[i], w.district);
        assert_int_equal(p1->placement[i], w.pl);
        assert_true(pm_placed_snap_m(p1, i) == (float)w.dist_m);
    }
    size_t sum = 0;
    for (int k = 0; k < PM_PLACE_N; k++)
        sum += p1->counts[k];
    assert_int_equal(sum, total);
    assert_true(p1->counts[PM_PLACE_BY_CODE] > 0 && p1->counts[PM_PLACE_UNKNOWN_CODE] > 0);
    pm_placed_free(p1);
    pm_placed_free(p2);
    pm_placed_free(p7);
    pm_complaints_free(cs);
    scene_close(&s);
}

/* A batch that grows while it is placed (as 'problemap' places blocks
 * while reading): pm_locate_more() block by block, on one thread or two,
 * ends as pm_locate_batch() of the whole; district codes first seen in a
 * later block are found too. */
static void placing_block_by_block_equals_the_batch(void **state)
{
    (void)state;
    scene s;
    random_open(&s, 777);
    size_t n = 20000;
    pm_complaints *all = random_complaints(s.ctx, n);
    pm_placed *want = NULL;
    assert_int_equal(pm_locate_batch(s.ctx, s.loc, all, 2, &want), PM_OK);
    static const size_t blocks[] = {1, 3, 96, 4000, 0};   /* then the rest */
    for (int threads = 1; threads <= 2; threads++) {
        pm_complaints *cs = pm_complaints_new();
        pm_placed *p = pm_placed_new();
        assert_non_null(cs);
        assert_non_null(p);
        pm_coord_column lon = pm_complaints_lon(all), lat = pm_complaints_lat(all);
        pm_dict_column code = pm_complaints_dict(all, PM_DICT_DISTRICT_CODE);
        size_t to = 0;
        for (size_t k = 0; to < n; k++) {
            size_t end = blocks[k] && to + blocks[k] < n ? to + blocks[k] : n;
            for (; to < end; to++)
                add_complaint(s.ctx, cs, to, pm_coord_at(lon, to), pm_coord_at(lat, to),
                              pm_dict_column_at(code, to) == PM_NONE
                                  ? NULL
                                  : pm_complaints_dict_str(all, PM_DICT_DISTRICT_CODE,
                                                           pm_dict_column_at(code, to)));
            assert_int_equal(pm_locate_more(s.ctx, s.loc, cs, threads, p), PM_OK);
            assert_int_equal(p->n, to);
            assert_true(p->cap >= to);
        }
        assert_int_equal(pm_locate_more(s.ctx, s.loc, cs, threads, p), PM_OK);   /* nothing new */
        assert_placed_equal(p, want);
        /* a placement holding more than the batch is refused, and kept */
        pm_complaints *fewer = pm_complaints_new();
        add_complaint(s.ctx, fewer, 0, pm_coord_at(lon, 1), pm_coord_at(lat, 1), NULL);
        assert_int_equal(pm_locate_more(s.ctx, s.loc, fewer, threads, p), PM_E_USAGE);
        assert_int_equal(pm_locate_more(s.ctx, s.loc, cs, -1, p), PM_E_USAGE);
        assert_placed_equal(p, want);
        pm_complaints_free(fewer);
        pm_placed_free(p);
        pm_complaints_free(cs);
    }
    /* an empty batch still gets arrays (callers copy from them) */
    pm_complaints *none = pm_complaints_new();
    pm_placed *e = NULL;
    assert_int_equal(pm_locate_batch(s.ctx, s.loc, none, 1, &e), PM_OK);
    assert_int_equal(e->n, 0);
    assert_true(e->district && e->placement && e->cap >= 1);
    pm_placed_free(e);
    pm_complaints_free(none);
    pm_placed_free(want);
    pm_complaints_free(all);
    scene_close(&s);
}

static void brute_force_batch_agrees_on_threads(void **state)
{
    (void)state;
    scene s;
    random_open(&s, 777);
    pm_complaints *cs = random_complaints(s.ctx, 9000);
    pm_placed *a = NULL, *b = NULL;
    assert_int_equal(pm_locate_batch(s.ctx, s.loc, cs, 3, &a), PM_OK);
    pm_locator_set_brute_force(s.loc, 1);
    assert_int_equal(pm_locate_batch(s.ctx, s.loc, cs, 3, &b), PM_OK);
    pm_locator_set_brute_force(s.loc, 0);
    assert_placed_equal(a, b);
    pm_placed_free(a);
    pm_placed_free(b);
    pm_complaints_free(cs);
    scene_close(&s);
}

/* Two bad points in different chunks: the error always names the first. */
static void batch_error_names_first_bad_complaint(void **state)
{
    (void)state;
    scene s;
    grid_open(&s, 1000);
    pm_complaints *cs = pm_complaints_new();
    assert_non_null(cs);
    for (size_t i = 0; i < 20000; i++) {
        double lon = i == 5000 || i == 9000 ? INFINITY : 37.0 + (double)(i % 300) / 1000.0;
        add_complaint(s.ctx, cs, i, lon, 55.1, NULL);
    }
    const int threads[] = {1, 2, 7, 0};
    for (int t = 0; t < 4; t++) {
        pm_placed stale, *p = &stale;   /* must come back NULL */
        assert_int_equal(pm_locate_batch(s.ctx, s.loc, cs, threads[t], &p), PM_E_INPUT_VALUE);
        assert_null(p);
        assert_string_equal(pm_ctx_errmsg(s.ctx),
                            "complaint \"c5000\" (line 5002): point (inf, 55.1): coordinates are "
                            "not finite");
        pm_ctx_clear_error(s.ctx);
    }
    pm_placed *p = NULL;
    assert_int_equal(pm_locate_batch(s.ctx, s.loc, cs, -1, &p), PM_E_USAGE);
    pm_complaints_free(cs);
    scene_close(&s);
}

/* ---- detailed coastlines: the snapping index ------------------------------ */

/* The rings of a scene, kept to aim points at their segments. */
#define MAX_RINGS 64
typedef struct rings {
    double *xy[MAX_RINGS];   /* closed: n + 1 points */
    size_t n[MAX_RINGS];
    size_t count;
} rings;

/* A closed star-shaped ring of n vertices around (cx, cy), radius r
 * degrees of latitude, jagged by two waves and random noise: simple,
 * and detailed like a coastline.  Appended to b as "(x y,...)". */
static void jagged_ring(wkt_buf *b, rings *rs, uint64_t *seed, double cx, double cy, double r,
                        size_t n)
{
    assert_true(rs->count < MAX_RINGS);
    double *xy = malloc(2 * (n + 1) * sizeof *xy), k_lon = 1.0 / cos(cy * M_PI / 180.0);
    assert_non_null(xy);
    double phase = uniform(seed, 0, 6.28);
    for (size_t k = 0; k < n; k++) {
        double a = 2 * M_PI * (double)k / (double)n;
        double f = 1 + 0.2 * sin(5 * a + phase) + 0.1 * sin(37 * a) + 0.06 * uniform(seed, -1, 1);
        xy[2 * k] = cx + r * f * cos(a) * k_lon;
        xy[2 * k + 1] = cy + r * f * sin(a);
    }
    xy[2 * n] = xy[0], xy[2 * n + 1] = xy[1];
    wkt_put(b, "(");
    for (size_t k = 0; k <= n; k++)
        wkt_put(b, "%s%.17g %.17g", k ? "," : "", xy[2 * k], xy[2 * k + 1]);
    wkt_put(b, ")");
    rs->xy[rs->count] = xy;
    rs->n[rs->count++] = n;
}

static void rings_free(rings *rs)
{
    for (size_t k = 0; k < rs->count; k++)
        free(rs->xy[k]);
}

/* Inserted as J-2, J-1, J-3 (ids out of order): two large overlapping
 * stars of 4000 and 3000 vertices, the first with a jagged lake of 600,
 * and an archipelago of 30 small jagged islands (rings shorter and longer
 * than a chunk). */
#define JX 60.0
#define JY 62.0
static void jagged_open(scene *s, rings *rs, double tol_m)
{
    uint64_t seed = 0xC0A57u;
    scene_begin(s);
    rs->count = 0;
    wkt_buf b = {0};
    wkt_put(&b, "POLYGON(");
    jagged_ring(&b, rs, &seed, JX + 1.6, JY + 0.3, 0.8, 3000);
    wkt_put(&b, ")");
    scene_add(s, "J-2", b.s);
    b.n = 0;
    wkt_put(&b, "POLYGON(");
    jagged_ring(&b, rs, &seed, JX, JY, 1.0, 4000);
    wkt_put(&b, ",");
    jagged_ring(&b, rs, &seed, JX + 0.1, JY + 0.05, 0.2, 600);
    wkt_put(&b, ")");
    scene_add(s, "J-1", b.s);
    b.n = 0;
    wkt_put(&b, "MULTIPOLYGON(");
    for (int k = 0; k < 30; k++) {
        double cx = JX - 1.5 + 0.25 * (k % 10), cy = JY - 1.6 - 0.12 * (k / 10);
        wkt_put(&b, "%s(", k ? "," : "");
        jagged_ring(&b, rs, &seed, cx, cy, uniform(&seed, 0.01, 0.04), 8 + (size_t)k * 3);
        wkt_put(&b, ")");
    }
    wkt_put(&b, ")");
    scene_add(s, "J-3", b.s);
    free(b.s);
    scene_build(s, tol_m);
}

/* Points: 2/5 near a random boundary segment (up to 2.5 km away in any
 * direction), 1/10 exactly on a vertex, the rest anywhere over the scene
 * with a margin (far from any boundary, in bays and lakes). */
static void jagged_points(const rings *rs, uint64_t seed, double *lon, double *lat, size_t n)
{
    struct geod_geodesic g = wgs84();
    for (size_t i = 0; i < n; i++) {
        size_t r = (size_t)(xorshift(&seed) % rs->count), k = xorshift(&seed) % rs->n[r];
        const double *a = rs->xy[r] + 2 * k;
        if (i % 10 < 4) {
            double t = uniform(&seed, 0, 1), x = a[0] + t * (a[2] - a[0]);
            double y = a[1] + t * (a[3] - a[1]);
            geod_direct(&g, y, x, uniform(&seed, -180, 180), uniform(&seed, 0, 2500), &lat[i],
                        &lon[i], NULL);
        } else if (i % 10 == 4) {
            lon[i] = a[0], lat[i] = a[1];
        } else {
            lon[i] = uniform(&seed, JX - 2.5, JX + 3.5);
            lat[i] = uniform(&seed, JY - 2.2, JY + 1.5);
        }
    }
}

#define JPOINTS 6000

static void jagged_coast_index_agrees_with_brute_force(void **state)
{
    (void)state;
    scene s;
    rings rs;
    jagged_open(&s, &rs, 1000);
    double *lon = malloc(JPOINTS * sizeof *lon), *lat = malloc(JPOINTS * sizeof *lat);
    assert_non_null(lon);
    assert_non_null(lat);
    jagged_points(&rs, 5, lon, lat, JPOINTS);
    size_t count[PM_PLACE_N] = {0}, per_district[3] = {0};
    for (size_t i = 0; i < JPOINTS; i++) {
        where a = locate_one(&s, lon[i], lat[i], VIA_RASTER);
        assert_same(&s, lon[i], lat[i], &a, VIA_BRUTE);
        assert_same(&s, lon[i], lat[i], &a, VIA_EXACT);
        count[a.pl]++;
        if (a.pl == PM_PLACE_SNAPPED) {
            assert_true(a.dist_m > 0 && a.dist_m <= 1000);
            per_district[a.district]++;
        }
    }
    assert_true(count[PM_PLACE_INSIDE] > 1500);
    assert_true(count[PM_PLACE_BORDER] > 300);
    assert_true(count[PM_PLACE_SNAPPED] > 700);
    assert_true(count[PM_PLACE_OUTSIDE] > 1500);
    for (int d = 0; d < 3; d++)   /* snaps to every district */
        assert_true(per_district[d] > 40);
    free(lon);
    free(lat);
    rings_free(&rs);
    scene_close(&s);
}

static void jagged_coast_batch_does_not_depend_on_threads(void **state)
{
    (void)state;
    scene s;
    rings rs;
    jagged_open(&s, &rs, 1000);
    size_t n = 12000;   /* three batch chunks */
    double *lon = malloc(n * sizeof *lon), *lat = malloc(n * sizeof *lat);
    assert_non_null(lon);
    assert_non_null(lat);
    jagged_points(&rs, 11, lon, lat, n);
    pm_complaints *cs = pm_complaints_new();
    assert_non_null(cs);
    for (size_t i = 0; i < n; i++)
        add_complaint(s.ctx, cs, i, lon[i], lat[i], NULL);
    pm_placed *p1 = NULL, *p3 = NULL;
    assert_int_equal(pm_locate_batch(s.ctx, s.loc, cs, 1, &p1), PM_OK);
    assert_int_equal(pm_locate_batch(s.ctx, s.loc, cs, 3, &p3), PM_OK);
    assert_placed_equal(p1, p3);
    for (size_t i = 0; i < n; i += 7) {   /* the brute force on a sample: it is slow here */
        where w = locate_one(&s, lon[i], lat[i], VIA_BRUTE);
        assert_int_equal(p1->district[i], w.district);
        assert_int_equal(p1->placement[i], w.pl);
        assert_true(pm_placed_snap_m(p1, i) == (float)w.dist_m);
    }
    assert_true(p1->counts[PM_PLACE_SNAPPED] > 800 && p1->counts[PM_PLACE_OUTSIDE] > 1500);
    pm_placed_free(p1);
    pm_placed_free(p3);
    pm_complaints_free(cs);
    free(lon);
    free(lat);
    rings_free(&rs);
    scene_close(&s);
}

/* A band from (x0, y0), w degrees of longitude wide, its northern edge
 * jagged around y0 + h. */
static void jagged_band(wkt_buf *b, uint64_t *seed, double x0, double w, double y0, double h)
{
    wkt_put(b, "((%.17g %.17g", x0, y0);
    for (int k = 0; k <= 400; k++)
        wkt_put(b, ",%.17g %.17g", x0 + w / 400 * k, y0 + h + uniform(seed, -0.05, 0.05));
    wkt_put(b, ",%.17g %.17g,%.17g %.17g))", x0 + w, y0, x0, y0);
}

/* A 300 km tolerance near the north pole: the box is a whole band of
 * latitude, and across the pole the local frame is far from geodesic.
 * P-1 has a cap at 120..130°E, 88.2..89°N and a band at 90..30°W up to
 * 86°N.  Seen from about (55°W, 88.9°N) the band is the nearer in the
 * frame but lies outside the box and beyond the tolerance (330 km),
 * while the cap across the pole is within it (235 km) but farther in the
 * frame than the box guarantees: the index must fall back to P-1's full
 * scan, which picks the band, as the oracle does: outside. */
static void huge_tolerance_near_pole_agrees_with_brute_force(void **state)
{
    (void)state;
    scene s;
    scene_begin(&s);
    uint64_t seed = 31;
    wkt_buf b = {0};
    wkt_put(&b, "POLYGON");
    jagged_band(&b, &seed, 60, 60, 86.5, 0.8);
    scene_add(&s, "P-2", b.s);
    b.n = 0;
    wkt_put(&b, "MULTIPOLYGON(");
    jagged_band(&b, &seed, 120, 10, 88.2, 0.8);
    wkt_put(&b, ",");
    jagged_band(&b, &seed, -90, 60, 85.45, 0.5);
    wkt_put(&b, ")");
    scene_add(&s, "P-1", b.s);
    free(b.s);
    scene_build(&s, 300000);
    size_t snapped = 0, fallback_outside = 0;
    for (int i = 0; i < 4000; i++) {
        double lon = uniform(&seed, -180, 180), lat = uniform(&seed, 86, 90);
        if (i % 4 == 0)
            lon = uniform(&seed, -60, -50), lat = uniform(&seed, 88.85, 88.95);
        where w = locate(&s, lon, lat);
        snapped += w.pl == PM_PLACE_SNAPPED;
        fallback_outside += i % 4 == 0 && w.pl == PM_PLACE_OUTSIDE;
    }
    assert_true(snapped > 1000);
    assert_true(fallback_outside > 500);
    scene_close(&s);
}

/* ---- the raster against the STRtree path and the oracle ------------------ */

/* A growing list of query points. */
typedef struct pts {
    double *lon, *lat;
    size_t n, cap;
} pts;

static void pts_add(pts *p, double lon, double lat)
{
    if (!(fabs(lon) <= 180.0 && fabs(lat) <= 90.0))
        return;
    if (p->n == p->cap) {
        p->cap = p->cap * 2 + 1024;
        p->lon = realloc(p->lon, p->cap * sizeof *p->lon);
        p->lat = realloc(p->lat, p->cap * sizeof *p->lat);
        assert_true(p->lon && p->lat);
    }
    p->lon[p->n] = lon, p->lat[p->n++] = lat;
}

static void pts_free(pts *p)
{
    free(p->lon);
    free(p->lat);
}

static pm_raster_info raster_of(const scene *s)
{
    pm_raster_info ri;
    pm_locator_raster_info(s->loc, &ri);
    assert_true(ri.nx > 0 && ri.ny > 0);
    assert_int_equal(ri.cells_inside + ri.cells_outside + ri.cells_border,
                     (size_t)ri.nx * ri.ny);
    return ri;
}

/* Points on the raster's cell edges and corners (the doubles the cells
 * were classified with), and uniform ones over the grid and a margin. */
static void raster_points(const pm_raster_info *ri, uint64_t seed, size_t n, pts *p)
{
    for (size_t k = 0; k < n; k++) {
        uint32_t i = (uint32_t)(xorshift(&seed) % (ri->nx + 1));
        uint32_t j = (uint32_t)(xorshift(&seed) % (ri->ny + 1));
        double ex = ri->lon0_deg + (double)i * ri->cell_lon_deg;
        double ey = ri->lat0_deg + (double)j * ri->cell_lat_deg;
        double ux = ri->lon0_deg + uniform(&seed, -0.02, 1.02) * ri->nx * ri->cell_lon_deg;
        double uy = ri->lat0_deg + uniform(&seed, -0.02, 1.02) * ri->ny * ri->cell_lat_deg;
        switch (k % 4) {
        case 0: pts_add(p, ex, uy); break;
        case 1: pts_add(p, ux, ey); break;
        case 2: pts_add(p, ex, ey); break;
        default: pts_add(p, ux, uy); break;
        }
    }
}

/* Every step-th vertex of every ring (holes too), the middle of its
 * segment, and a point up to 0.002° around it: borders, both sides of
 * them, enclaves and holes. */
static void vertex_points(scene *s, size_t step, uint64_t seed, pts *p)
{
    GEOSContextHandle_t h = pm_ctx_geos(s->ctx);
    for (size_t d = 0; d < pm_districts_count(s->ds); d++) {
        const GEOSGeometry *g = pm_district_geom_borrow(s->ds, d);
        for (int m = 0; m < GEOSGetNumGeometries_r(h, g); m++) {
            const GEOSGeometry *poly = GEOSGetGeometryN_r(h, g, m);
            int nh = GEOSGetNumInteriorRings_r(h, poly);
            for (int r = -1; r < nh; r++) {
                const GEOSGeometry *ring = r < 0 ? GEOSGetExteriorRing_r(h, poly)
                                                 : GEOSGetInteriorRingN_r(h, poly, r);
                const GEOSCoordSequence *cs = GEOSGeom_getCoordSeq_r(h, ring);
                unsigned int n = 0;
                assert_true(cs && GEOSCoordSeq_getSize_r(h, cs, &n));
                for (unsigned int k = 0; k + 1 < n; k += (unsigned int)step) {
                    double x, y, x1, y1;
                    assert_true(GEOSCoordSeq_getXY_r(h, cs, k, &x, &y));
                    assert_true(GEOSCoordSeq_getXY_r(h, cs, k + 1, &x1, &y1));
                    pts_add(p, x, y);
                    pts_add(p, (x + x1) / 2, (y + y1) / 2);
                    double jx = uniform(&seed, -0.002, 0.002), jy = uniform(&seed, -0.002, 0.002);
                    pts_add(p, x + jx, y + jy);
                }
            }
        }
    }
}

/* Every point: raster = STRtree path; every brute_step-th: = oracle too.
 * Counts the placements. */
static void assert_raster_agrees(scene *s, const pts *p, size_t brute_step,
                                 size_t count[PM_PLACE_N])
{
    for (size_t i = 0; i < p->n; i++) {
        where a = locate_one(s, p->lon[i], p->lat[i], VIA_RASTER);
        assert_same(s, p->lon[i], p->lat[i], &a, VIA_EXACT);
        if (i % brute_step == 0)
            assert_same(s, p->lon[i], p->lat[i], &a, VIA_BRUTE);
        count[a.pl]++;
    }
}

static void raster_classifies_every_cell(void **state)
{
    (void)state;
    scene s;
    grid_open(&s, 1000);
    pm_raster_info ri = raster_of(&s);
    /* The 3 x 3 grid of 0.125° fills the extent: cells in one district and
     * on the grid lines, none outside. */
    assert_true(ri.cells_inside > ri.cells_border);
    assert_true(ri.cells_border > 0);
    assert_true(ri.bytes > 0);
    assert_true(ri.lon0_deg == 37.0 && ri.lat0_deg == 55.0);
    assert_true(ri.nx * ri.cell_lon_deg >= 0.375 && ri.ny * ri.cell_lat_deg >= 0.375);
    scene_close(&s);
}

static void raster_cell_edges_agree_with_exact_path(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        scene s;
        random_open(&s, 4242);
        if (k == 1) {   /* again with snapping off */
            pm_locator_free(s.ctx, s.loc);
            assert_int_equal(pm_locator_new(s.ctx, s.ds, 0, &s.loc), PM_OK);
        }
        pm_raster_info ri = raster_of(&s);
        pts p = {0};
        raster_points(&ri, 17, 20000, &p);
        double lon[5000], lat[5000];   /* a third on the districts' grid lines */
        random_points(23, lon, lat, 5000);
        for (size_t i = 0; i < 5000; i++)
            pts_add(&p, lon[i], lat[i]);
        size_t count[PM_PLACE_N] = {0};
        assert_raster_agrees(&s, &p, 10, count);
        assert_true(count[PM_PLACE_INSIDE] > 5000 && count[PM_PLACE_BORDER] > 500);
        assert_true(count[PM_PLACE_SNAPPED] == 0 ? k == 1 : k == 0);
        assert_true(count[PM_PLACE_OUTSIDE] > 50);
        pts_free(&p);
        scene_close(&s);
    }
}

/* Whether the closed rectangle of cell (i, j) or of a neighbour holds
 * the point and has the code. */
static int code_near(const pm_raster *r, uint32_t i, uint32_t j, double lon, double lat,
                     int32_t code)
{
    for (uint32_t a = i ? i - 1 : 0; a <= i + 1 && a < r->nx; a++)
        for (uint32_t b = j ? j - 1 : 0; b <= j + 1 && b < r->ny; b++)
            if (pm_raster_x(r, a) <= lon && lon <= pm_raster_x(r, a + 1) &&
                pm_raster_y(r, b) <= lat && lat <= pm_raster_y(r, b + 1) &&
                pm_raster_cell(r, a, b) == code)
                return 1;
    return 0;
}

/* A lookup on a cell edge, or one ulp either side of it, answers with
 * the code of a cell whose closed rectangle holds the point, or sends the
 * point to the exact path when rounding put it in the wrong cell. */
static void raster_lookup_never_trusts_a_rounded_cell(void **state)
{
    (void)state;
    scene s;
    random_open(&s, 4242);
    GEOSContextHandle_t h = pm_ctx_geos(s.ctx);
    size_t n = pm_districts_count(s.ds);
    const GEOSPreparedGeometry **prep = calloc(n, sizeof *prep);
    assert_non_null(prep);
    for (size_t i = 0; i < n; i++)
        assert_non_null(prep[i] = GEOSPrepare_r(h, pm_district_geom_borrow(s.ds, i)));
    pm_raster *r = NULL;
    assert_int_equal(pm_raster_new(s.ctx, s.ds, prep, 1000, &r), PM_OK);
    assert_non_null(r);
    uint64_t seed = 5;
    size_t exact = 0, trusted = 0;
    for (int k = 0; k < 400000; k++) {
        uint32_t i = (uint32_t)(xorshift(&seed) % r->nx), j = (uint32_t)(xorshift(&seed) % r->ny);
        double lon = pm_raster_x(r, i), lat = pm_raster_y(r, j);
        int sx = (int)(xorshift(&seed) % 3), sy = (int)(xorshift(&seed) % 3);
        lon = sx == 0 ? lon : nextafter(lon, sx == 1 ? -INFINITY : INFINITY);
        lat = sy == 0 ? lat : nextafter(lat, sy == 1 ? -INFINITY : INFINITY);
        int32_t code = pm_raster_lookup(r, lon, lat);
        if (code == PM_RASTER_EXACT) {
            exact++;
        } else if (lon >= r->ext[0] && lat >= r->ext[1]) {
            if (!code_near(r, i, j, lon, lat, code))
                fail_msg("(%.17g, %.17g): code %d from a cell that does not hold it", lon, lat,
                         code);
            trusted++;
        }
    }
    assert_true(trusted > 300000 && exact + trusted <= 400000);
    pm_raster_free(r);
    for (size_t i = 0; i < n; i++)
        GEOSPreparedGeom_destroy_r(h, prep[i]);
    free(prep);
    scene_close(&s);
}

/* Real districts from path (skipped when absent), snapping on and off:
 * cell edges, uniform points, vertices and their surroundings, and the
 * points given. */
static void real_raster_agrees(const char *path, const char *id_field, const pts *extra,
                               size_t brute_step)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        print_message("skipped: %s is absent\n", path);
        return;
    }
    fclose(f);
    const double tols[2] = {1000, 0};
    for (int k = 0; k < 2; k++) {
        scene s;
        scene_begin(&s);
        pm_boundary_opts o = {.id_field = id_field};
        assert_int_equal(pm_boundaries_read_geojson(s.ctx, path, &o, s.ds, NULL), PM_OK);
        scene_build(&s, tols[k]);
        pm_raster_info ri = raster_of(&s);
        assert_true(ri.cells_inside > ri.cells_border);
        pts p = {0};
        raster_points(&ri, 99, 6000, &p);
        vertex_points(&s, 97, 5, &p);
        for (size_t i = 0; extra && i < extra->n; i++)
            pts_add(&p, extra->lon[i], extra->lat[i]);
        size_t count[PM_PLACE_N] = {0};
        assert_raster_agrees(&s, &p, brute_step, count);
        assert_true(count[PM_PLACE_INSIDE] > 1000 && count[PM_PLACE_BORDER] > 100);
        assert_true(count[PM_PLACE_OUTSIDE] > 100);
        assert_true(k == 0 ? count[PM_PLACE_SNAPPED] > 10 : count[PM_PLACE_SNAPPED] == 0);
        pts_free(&p);
        scene_close(&s);
    }
}

/* Russia's regions: Chukotka is split at ±180° (points on both sides and
 * on the meridian itself), Moscow fills a hole of Moscow Oblast. */
static void raster_agrees_on_russian_regions(void **state)
{
    (void)state;
    pts extra = {0};
    uint64_t seed = 180;
    for (int k = 0; k < 400; k++) {
        double lat = uniform(&seed, 64.0, 72.0);
        pts_add(&extra, k % 2 ? 180.0 : -180.0, lat);
        pts_add(&extra, k % 2 ? 179.99999 : -179.99999, lat);
        pts_add(&extra, uniform(&seed, -180.0, -168.0), lat);
    }
    for (int k = 0; k < 400; k++)   /* Moscow and around */
        pts_add(&extra, uniform(&seed, 36.8, 38.0), uniform(&seed, 55.1, 56.1));
    real_raster_agrees("data/ru_regions.geojson", "iso", &extra, 40);
    pts_free(&extra);
}

/* Kemerovo's OSM districts: detailed borders, city okrugs in holes. */
static void raster_agrees_on_kemerovo_osm_districts(void **state)
{
    (void)state;
    real_raster_agrees("../shared/data/ru_kemerovo_districts_osm.geojson", NULL, NULL, 25);
}

/* ---- allocation failures ---------------------------------------------- */

static void locator_new_survives_alloc_failures(void **state)
{
    (void)state;
    scene s;
    grid_open(&s, 1000);
    for (long n = 1;; n++) {
        pm_locator *loc = NULL;
        pm_alloc_fail_at(n);
        int rc = pm_locator_new(s.ctx, s.ds, 1000, &loc);
        long made = pm_alloc_count();
        pm_alloc_fail_at(0);
        if (rc == PM_OK) {
            pm_locator_free(s.ctx, loc);
            if (n > made)
                break;
            continue;
        }
        assert_int_equal(rc, PM_E_NOMEM);
        assert_null(loc);
    }
    scene_close(&s);
}

static void batch_survives_alloc_failures(void **state)
{
    (void)state;
    scene s;
    random_open(&s, 99);
    pm_complaints *cs = random_complaints(s.ctx, 6000);   /* two chunks, two threads */
    pm_placed *want = NULL;
    assert_int_equal(pm_locate_batch(s.ctx, s.loc, cs, 2, &want), PM_OK);
    int failures = 0;
    for (long n = 1;; n++) {
        pm_placed *p = NULL;
        pm_alloc_fail_at(n);
        int rc = pm_locate_batch(s.ctx, s.loc, cs, 2, &p);
        long made = pm_alloc_count();
        pm_alloc_fail_at(0);
        if (rc == PM_OK) {
            assert_placed_equal(p, want);
            pm_placed_free(p);
            if (n > made)
                break;
            continue;
        }
        failures++;
        assert_int_equal(rc, PM_E_NOMEM);
        assert_null(p);
    }
    assert_true(failures >= 5);
    pm_placed_free(want);
    pm_complaints_free(cs);
    scene_close(&s);
}

static void many_candidates_survive_alloc_failure(void **state)
{
    (void)state;
    scene s;
    nested_open(&s);
    int32_t d;
    pm_placement pl;
    double m;
    pm_locator_set_raster(s.loc, 0);   /* the STRtree's candidate list; the raster's needs none */
    pm_alloc_fail_at(1);
    int rc = pm_locate_point(s.ctx, s.loc, 10.0, 10.0, &d, &pl, &m);
    pm_alloc_fail_at(0);
    assert_int_equal(rc, PM_E_NOMEM);
    assert_int_equal(d, -1);
    scene_close(&s);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(interior_point_is_inside),
        cmocka_unit_test(shared_edge_goes_to_lowest_id_as_border),
        cmocka_unit_test(shared_vertex_goes_to_lowest_of_four),
        cmocka_unit_test(point_off_the_grid_is_outside),
        cmocka_unit_test(point_in_hole_goes_to_enclave),
        cmocka_unit_test(point_on_hole_ring_goes_to_lower_id),
        cmocka_unit_test(multipolygon_island_belongs_to_its_district),
        cmocka_unit_test(overlap_goes_to_lowest_id),
        cmocka_unit_test(many_overlaps_go_to_lowest_id),
        cmocka_unit_test(snap_distance_is_geodesic),
        cmocka_unit_test(beyond_tolerance_is_outside),
        cmocka_unit_test(zero_tolerance_disables_snapping),
        cmocka_unit_test(negative_tolerance_means_1000_m),
        cmocka_unit_test(tolerance_is_inclusive),
        cmocka_unit_test(snap_tie_goes_to_lowest_id),
        cmocka_unit_test(antimeridian_points_are_placed),
        cmocka_unit_test(snap_across_antimeridian),
        cmocka_unit_test(snap_to_edge_rounded_past_antimeridian),
        cmocka_unit_test(bad_coordinates_are_refused),
        cmocka_unit_test(unfrozen_districts_are_refused),
        cmocka_unit_test(no_coordinates_placed_by_code),
        cmocka_unit_test(brute_force_agrees_with_index),
        cmocka_unit_test(batch_does_not_depend_on_thread_count),
        cmocka_unit_test(placing_block_by_block_equals_the_batch),
        cmocka_unit_test(brute_force_batch_agrees_on_threads),
        cmocka_unit_test(batch_error_names_first_bad_complaint),
        cmocka_unit_test(jagged_coast_index_agrees_with_brute_force),
        cmocka_unit_test(jagged_coast_batch_does_not_depend_on_threads),
        cmocka_unit_test(huge_tolerance_near_pole_agrees_with_brute_force),
        cmocka_unit_test(raster_classifies_every_cell),
        cmocka_unit_test(raster_cell_edges_agree_with_exact_path),
        cmocka_unit_test(raster_lookup_never_trusts_a_rounded_cell),
        cmocka_unit_test(raster_agrees_on_russian_regions),
        cmocka_unit_test(raster_agrees_on_kemerovo_osm_districts),
        cmocka_unit_test(locator_new_survives_alloc_failures),
        cmocka_unit_test(batch_survives_alloc_failures),
        cmocka_unit_test(many_candidates_survive_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
