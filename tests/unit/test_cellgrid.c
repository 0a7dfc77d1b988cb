/* test_cellgrid.c — the equal-area grid (pm_cellgrid.h) on hand-made
 * districts near Kemerovo: cell areas on the ellipsoid, neighbours by the
 * distance band, the cell of a point (against a brute-force nearest
 * centre), the study area (centres inside districts only), the order,
 * shared corners, the cap on the cell count and allocation failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../engine/pm_alloc.h"
#include "../../engine/pm_cellgrid.h"
#include "../../engine/pm_ctx.h"
#include "../../engine/pm_district.h"
#include "../../engine/pm_locate.h"
#include "../../engine/pm_weights.h"

#include <geodesic.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define LON0 86.0
#define LAT0 55.0

#define assert_double_equal(a, b, eps)                                                           \
    do {                                                                                         \
        double a_ = (a), b_ = (b);                                                               \
        if (!(fabs(a_ - b_) <= (eps)))                                                           \
            fail_msg("%s = %.17g, expected %.17g (± %g)", #a, a_, b_, (double)(eps));           \
    } while (0)

typedef struct scene {
    pm_ctx *ctx;
    pm_districts *ds;
    pm_locator *loc;
} scene;

static GEOSGeometry *box(pm_ctx *ctx, double x0, double y0, double x1, double y1)
{
    char s[256];
    snprintf(s, sizeof s, "POLYGON((%.10g %.10g,%.10g %.10g,%.10g %.10g,%.10g %.10g,%.10g %.10g))",
             x0, y0, x1, y0, x1, y1, x0, y1, x0, y0);
    GEOSWKTReader *r = GEOSWKTReader_create_r(pm_ctx_geos(ctx));
    GEOSGeometry *g = GEOSWKTReader_read_r(pm_ctx_geos(ctx), r, s);
    GEOSWKTReader_destroy_r(pm_ctx_geos(ctx), r);
    assert_non_null(g);
    return g;
}

/* Two districts, a 0.1° gap between them: A west, B east. */
static void scene_open(scene *s)
{
    memset(s, 0, sizeof *s);
    assert_non_null(s->ctx = pm_ctx_new());
    assert_non_null(s->ds = pm_districts_new(s->ctx));
    assert_int_equal(pm_districts_add(s->ctx, s->ds, "A", NULL, NULL, NAN,
                                      box(s->ctx, 85.8, 54.9, 86.0, 55.1)), PM_OK);
    assert_int_equal(pm_districts_add(s->ctx, s->ds, "B", NULL, NULL, NAN,
                                      box(s->ctx, 86.1, 54.9, 86.3, 55.05)), PM_OK);
    assert_int_equal(pm_districts_freeze(s->ctx, s->ds), PM_OK);
    assert_int_equal(pm_locator_new(s->ctx, s->ds, -1, &s->loc), PM_OK);
}

static void scene_close(scene *s)
{
    pm_locator_free(s->ctx, s->loc);
    pm_districts_free(s->ctx, s->ds);
    pm_ctx_free(s->ctx);
}

static pm_cellgrid *grid_new(scene *s, pm_cell_shape shape, double cell_m)
{
    pm_cellgrid_opts o = {shape, cell_m, LON0, LAT0, 0};
    pm_cellgrid *g = NULL;
    int rc = pm_cellgrid_new(s->ctx, s->ds, s->loc, &o, &g);
    if (rc)
        fail_msg("pm_cellgrid_new: %s", pm_ctx_errmsg(s->ctx));
    return g;
}

/* ---- geometry ------------------------------------------------------------------ */

static void cells_have_the_area_of_the_square_on_the_ellipsoid(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    struct geod_geodesic geod;
    geod_init(&geod, 6378137.0, 1 / 298.257223563);
    for (int shape = 0; shape < 2; shape++) {
        pm_cellgrid *g = grid_new(&s, (pm_cell_shape)shape, 1000);
        size_t v = pm_cellgrid_vertices(g), n = pm_cellgrid_count(g);
        assert_int_equal(v, shape ? 6 : 4);
        double lon[6 * 50], lat[6 * 50];
        for (size_t first = 0; first < n; first += n / 7) {
            size_t m = n - first < 50 ? n - first : 50;
            assert_int_equal(pm_cellgrid_lonlat(s.ctx, g, first, m, 1, lon, lat), PM_OK);
            for (size_t k = 0; k < m; k++) {
                double area, perim;
                geod_polygonarea(&geod, lat + k * v, lon + k * v, (int)v, &area, &perim);
                /* counter-clockwise: positive; geodesic edges vs the plane's straight ones */
                assert_double_equal(area, 1.0e6, 1.0);
            }
        }
        pm_cellgrid_free(g);
    }
    scene_close(&s);
}

static void hexagon_spacing_and_side_follow_the_equal_area_rule(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    pm_cellgrid *g = grid_new(&s, PM_CELL_HEX, 1000);
    double side = 1000 * sqrt(2 / (3 * sqrt(3)));
    assert_double_equal(pm_cellgrid_spacing_m(g), sqrt(3) * side, 1e-9);
    assert_double_equal(pm_cellgrid_spacing_m(g), 1074.5699318, 1e-6);
    pm_cellgrid_free(g);
    scene_close(&s);
}

/* The number of cells with exactly `want` neighbours, and the largest row. */
static void band_rows(scene *s, const pm_cellgrid *g, double d, size_t want, size_t *with_want,
                      size_t *max_row)
{
    pm_weights *w = NULL;
    assert_int_equal(pm_weights_distance_band(s->ctx, pm_cellgrid_x(g), pm_cellgrid_y(g),
                                              pm_cellgrid_count(g), d, &w), PM_OK);
    *with_want = *max_row = 0;
    for (size_t i = 0; i < pm_weights_count(w); i++) {
        size_t len = pm_weights_row(w, i, NULL, NULL);
        *with_want += len == want;
        *max_row = len > *max_row ? len : *max_row;
    }
    pm_weights_free(w);
}

static void hexagons_have_six_neighbours_at_the_spacing(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    pm_cellgrid *g = grid_new(&s, PM_CELL_HEX, 1000);
    size_t six, max;
    double d = pm_cellgrid_spacing_m(g);
    band_rows(&s, g, d * 1.0001, 6, &six, &max);
    assert_int_equal(max, 6);
    assert_true(six > pm_cellgrid_count(g) * 6 / 10);
    band_rows(&s, g, d * 0.9999, 0, &six, &max);
    assert_int_equal(max, 0);
    pm_cellgrid_free(g);
    scene_close(&s);
}

static void squares_have_eight_neighbours_within_the_diagonal(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    pm_cellgrid *g = grid_new(&s, PM_CELL_SQUARE, 1000);
    size_t eight, max;
    band_rows(&s, g, sqrt(2) * 1000 * 1.0001, 8, &eight, &max);
    assert_int_equal(max, 8);
    assert_true(eight > pm_cellgrid_count(g) * 6 / 10);
    band_rows(&s, g, 1000 * 1.0001, 4, &eight, &max);
    assert_int_equal(max, 4);
    pm_cellgrid_free(g);
    scene_close(&s);
}

/* ---- finding cells --------------------------------------------------------------- */

static void a_known_point_lands_in_its_cell(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    pm_cellgrid *g = grid_new(&s, PM_CELL_SQUARE, 1000);
    int found;
    size_t cell;
    int32_t col, row;
    /* 5.5 km west and 3.5 km south of the centre on the plane: cell (-6, -4) of A */
    double lon = -5500, lat = -3500;
    PJ *pj = proj_create(pm_ctx_proj(s.ctx), "+proj=laea +lat_0=55 +lon_0=86 +ellps=WGS84");
    PJ_COORD c = proj_trans(pj, PJ_INV, proj_coord(lon, lat, 0, 0));
    proj_destroy(pj);
    lon = c.lp.lam * 180 / M_PI, lat = c.lp.phi * 180 / M_PI;
    assert_int_equal(pm_cellgrid_find_lonlat(s.ctx, g, lon + 1e-7, lat + 1e-7, &found, &cell), PM_OK);
    assert_true(found);
    pm_cellgrid_index(g, cell, &col, &row);
    assert_int_equal(col, -6);
    assert_int_equal(row, -4);
    assert_double_equal(pm_cellgrid_x(g)[cell], -5500, 1e-9);
    assert_double_equal(pm_cellgrid_y(g)[cell], -3500, 1e-9);
    assert_int_equal(pm_cellgrid_district(g, cell), 0);
    pm_cellgrid_free(g);
    scene_close(&s);
}

/* Every point goes to the nearest centre (hexagons: their Voronoi cells)
 * or to the square holding it, tested against all cells by brute force. */
static void points_go_to_the_nearest_centre(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    for (int shape = 0; shape < 2; shape++) {
        pm_cellgrid *g = grid_new(&s, (pm_cell_shape)shape, 1500);
        const double *x = pm_cellgrid_x(g), *y = pm_cellgrid_y(g);
        size_t n = pm_cellgrid_count(g), hits = 0;
        uint64_t seed = 42;
        for (int t = 0; t < 2000; t++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            double px = -14000 + (double)(seed >> 11) / 9007199254740992.0 * 34000;
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            double py = -12000 + (double)(seed >> 11) / 9007199254740992.0 * 24000;
            size_t best = 0, cell;
            double bd = INFINITY;
            for (size_t i = 0; i < n; i++) {
                double d = shape ? hypot(px - x[i], py - y[i])
                                 : fmax(fabs(px - x[i]), fabs(py - y[i]));
                if (d < bd)
                    bd = d, best = i;
            }
            int inside = shape ? bd < pm_cellgrid_spacing_m(g) / 2 : bd < 750;
            int found = pm_cellgrid_find_xy(g, px, py, &cell);
            if (inside) {
                assert_true(found);
                assert_int_equal(cell, best);
                hits++;
            } else if (found) {
                /* a cell at least as near as the brute force's */
                double d = shape ? hypot(px - x[cell], py - y[cell])
                                 : fmax(fabs(px - x[cell]), fabs(py - y[cell]));
                assert_true(d <= bd + 1e-9);
            }
        }
        assert_true(hits > 500);
        pm_cellgrid_free(g);
    }
    scene_close(&s);
}

static void centres_round_trip_through_lonlat(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    pm_cellgrid *g = grid_new(&s, PM_CELL_HEX, 2000);
    size_t n = pm_cellgrid_count(g);
    double *lon = pm_calloc(n, sizeof *lon), *lat = pm_calloc(n, sizeof *lat);
    assert_int_equal(pm_cellgrid_lonlat(s.ctx, g, 0, n, 0, lon, lat), PM_OK);
    for (size_t i = 0; i < n; i++) {
        int found;
        size_t cell;
        assert_int_equal(pm_cellgrid_find_lonlat(s.ctx, g, lon[i], lat[i], &found, &cell), PM_OK);
        assert_true(found);
        assert_int_equal(cell, i);
    }
    assert_int_equal(pm_cellgrid_lonlat(s.ctx, g, n - 1, 2, 0, lon, lat), PM_E_USAGE);
    pm_free(lon);
    pm_free(lat);
    pm_cellgrid_free(g);
    scene_close(&s);
}

/* ---- the study area ---------------------------------------------------------------- */

static void study_area_holds_the_cells_centred_in_a_district(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    GEOSContextHandle_t h = pm_ctx_geos(s.ctx);
    for (int shape = 0; shape < 2; shape++) {
        pm_cellgrid *g = grid_new(&s, (pm_cell_shape)shape, 1000);
        size_t n = pm_cellgrid_count(g), per[2] = {0, 0};
        double *lon = pm_calloc(n, sizeof *lon), *lat = pm_calloc(n, sizeof *lat);
        assert_int_equal(pm_cellgrid_lonlat(s.ctx, g, 0, n, 0, lon, lat), PM_OK);
        for (size_t i = 0; i < n; i++) {
            size_t d = pm_cellgrid_district(g, i);
            assert_true(d < 2);
            per[d]++;
            GEOSGeometry *pt = GEOSGeom_createPointFromXY_r(h, lon[i], lat[i]);
            assert_int_equal(GEOSIntersects_r(h, pm_district_geom_borrow(s.ds, d), pt), 1);
            GEOSGeom_destroy_r(h, pt);
            assert_false(lon[i] > 86.0 && lon[i] < 86.1);   /* nothing in the gap */
        }
        /* about the districts' areas: A 0.2° × 0.2°, B 0.2° × 0.15° at 55° N */
        double a_km2 = 0.2 * 111.32 * cos(55 * M_PI / 180) * 0.2 * 111.25;
        assert_true(fabs((double)per[0] - a_km2) < 0.05 * a_km2);
        assert_true(fabs((double)per[1] - 0.75 * a_km2) < 0.05 * a_km2);
        pm_free(lon);
        pm_free(lat);
        pm_cellgrid_free(g);
    }
    scene_close(&s);
}

static void cells_are_in_row_major_order(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    for (int shape = 0; shape < 2; shape++) {
        pm_cellgrid *g = grid_new(&s, (pm_cell_shape)shape, 700);
        int32_t pc, pr, c, r;
        pm_cellgrid_index(g, 0, &pc, &pr);
        for (size_t i = 1; i < pm_cellgrid_count(g); i++) {
            pm_cellgrid_index(g, i, &c, &r);
            assert_true(r > pr || (r == pr && c > pc));
            assert_true(pm_cellgrid_y(g)[i] >= pm_cellgrid_y(g)[i - 1]);
            pc = c, pr = r;
        }
        pm_cellgrid_free(g);
    }
    scene_close(&s);
}

static void neighbours_share_bit_identical_corners(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    pm_cellgrid *g = grid_new(&s, PM_CELL_HEX, 1000);
    /* cells i and i + 1 in a row are east-west neighbours: i's east side
     * (corners 1, 2) is i+1's west side (corners 5, 4) */
    double lon[12], lat[12];
    size_t checked = 0;
    for (size_t i = 0; i + 1 < pm_cellgrid_count(g); i += 37) {
        int32_t c0, r0, c1, r1;
        pm_cellgrid_index(g, i, &c0, &r0);
        pm_cellgrid_index(g, i + 1, &c1, &r1);
        if (r0 != r1 || c1 != c0 + 1)
            continue;
        assert_int_equal(pm_cellgrid_lonlat(s.ctx, g, i, 2, 1, lon, lat), PM_OK);
        assert_true(lon[1] == lon[6 + 5] && lat[1] == lat[6 + 5]);
        assert_true(lon[2] == lon[6 + 4] && lat[2] == lat[6 + 4]);
        checked++;
    }
    assert_true(checked > 10);
    pm_cellgrid_free(g);
    scene_close(&s);
}

/* ---- errors ----------------------------------------------------------------------------- */

static void too_many_cells_is_a_usage_error_with_the_count(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    pm_cellgrid *g = (pm_cellgrid *)1;
    pm_cellgrid_opts o = {PM_CELL_SQUARE, 1000, LON0, LAT0, 500};
    assert_int_equal(pm_cellgrid_new(s.ctx, s.ds, s.loc, &o, &g), PM_E_USAGE);
    assert_null(g);
    /* A ≈ 283 km², B ≈ 212 km²: about 495 cells, fewer than 4 × 500
     * candidates, so the count is exact */
    pm_cellgrid *ok = grid_new(&s, PM_CELL_SQUARE, 1000);
    o.max_cells = pm_cellgrid_count(ok) - 1;
    char want[160];
    snprintf(want, sizeof want, "would have %zu cells (at most %zu): choose a larger cell",
             pm_cellgrid_count(ok), o.max_cells);
    assert_int_equal(pm_cellgrid_new(s.ctx, s.ds, s.loc, &o, &g), PM_E_USAGE);
    if (!strstr(pm_ctx_errmsg(s.ctx), want))
        fail_msg("message \"%s\" lacks \"%s\"", pm_ctx_errmsg(s.ctx), want);
    pm_cellgrid_free(ok);
    /* far beyond: the extent's estimate */
    o.cell_m = 5, o.max_cells = 0;
    assert_int_equal(pm_cellgrid_new(s.ctx, s.ds, s.loc, &o, &g), PM_E_USAGE);
    assert_non_null(strstr(pm_ctx_errmsg(s.ctx), "about"));
    o.cell_m = 0.5;
    assert_int_equal(pm_cellgrid_new(s.ctx, s.ds, s.loc, &o, &g), PM_E_USAGE);
    o.cell_m = 100000;   /* no centre in a district */
    assert_int_equal(pm_cellgrid_new(s.ctx, s.ds, s.loc, &o, &g), PM_E_INPUT_EMPTY);
    scene_close(&s);
}

static void allocation_failures_end_cleanly(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    for (int shape = 0; shape < 2; shape++) {
        int failures = 0;
        for (long n = 1;; n++) {
            pm_cellgrid *g = (pm_cellgrid *)1;
            pm_cellgrid_opts o = {(pm_cell_shape)shape, 300, LON0, LAT0, 0};
            pm_alloc_fail_at(n);
            int rc = pm_cellgrid_new(s.ctx, s.ds, s.loc, &o, &g);
            pm_alloc_fail_at(0);
            if (rc == PM_OK) {
                assert_true(pm_cellgrid_count(g) > 4000);
                pm_cellgrid_free(g);
                break;
            }
            failures++;
            assert_int_equal(rc, PM_E_NOMEM);
            assert_null(g);
        }
        assert_true(failures >= 8);
    }
    scene_close(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cells_have_the_area_of_the_square_on_the_ellipsoid),
        cmocka_unit_test(hexagon_spacing_and_side_follow_the_equal_area_rule),
        cmocka_unit_test(hexagons_have_six_neighbours_at_the_spacing),
        cmocka_unit_test(squares_have_eight_neighbours_within_the_diagonal),
        cmocka_unit_test(a_known_point_lands_in_its_cell),
        cmocka_unit_test(points_go_to_the_nearest_centre),
        cmocka_unit_test(centres_round_trip_through_lonlat),
        cmocka_unit_test(study_area_holds_the_cells_centred_in_a_district),
        cmocka_unit_test(cells_are_in_row_major_order),
        cmocka_unit_test(neighbours_share_bit_identical_corners),
        cmocka_unit_test(too_many_cells_is_a_usage_error_with_the_count),
        cmocka_unit_test(allocation_failures_end_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
