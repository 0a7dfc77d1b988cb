/* test_weights.c — spatial weights (pm_weights.h): queen contiguity on
 * hand-made districts (a 3 × 3 lattice, a corner touch, an enclave, an
 * island, a small gap closed by snapping), distance bands and k nearest
 * neighbours on small grids with ties, CSR validation, row
 * standardisation, the equal-area plane, and allocation failures.
 * (pysal comparisons on real data: tests/analytics/.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../engine/pm_alloc.h"
#include "../../engine/pm_ctx.h"
#include "../../engine/pm_district.h"
#include "../../engine/pm_weights.h"

#include <geodesic.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------ */

/* cmocka 1.1.5 compares floats in single precision: this is double. */
#define assert_double_equal(a, b, eps)                                                           \
    do {                                                                                         \
        double a_ = (a), b_ = (b);                                                               \
        if (!(fabs(a_ - b_) <= (eps)))                                                           \
            fail_msg("%s = %.17g, expected %.17g (± %g)", #a, a_, b_, (double)(eps));           \
    } while (0)

typedef struct scene {
    pm_ctx *ctx;
    pm_districts *ds;
    char warning[512];
} scene;

static void log_warn(void *user, pm_log_level level, const char *msg)
{
    if (level == PM_LOG_WARN)
        snprintf(((scene *)user)->warning, sizeof ((scene *)user)->warning, "%s", msg);
}

static GEOSGeometry *wkt(pm_ctx *ctx, const char *s)
{
    GEOSWKTReader *r = GEOSWKTReader_create_r(pm_ctx_geos(ctx));
    GEOSGeometry *g = GEOSWKTReader_read_r(pm_ctx_geos(ctx), r, s);
    GEOSWKTReader_destroy_r(pm_ctx_geos(ctx), r);
    assert_non_null(g);
    return g;
}

static void box_wkt(char *buf, size_t len, double x0, double y0, double x1, double y1)
{
    snprintf(buf, len, "POLYGON((%.10g %.10g,%.10g %.10g,%.10g %.10g,%.10g %.10g,%.10g %.10g))",
             x0, y0, x1, y0, x1, y1, x0, y1, x0, y0);
}

static void scene_open(scene *s)
{
    memset(s, 0, sizeof *s);
    s->ctx = pm_ctx_new();
    assert_non_null(s->ctx);
    pm_ctx_set_log(s->ctx, log_warn, s);
    s->ds = pm_districts_new(s->ctx);
    assert_non_null(s->ds);
}

static void scene_add(scene *s, const char *id, const char *geom)
{
    assert_int_equal(pm_districts_add(s->ctx, s->ds, id, NULL, NULL, NAN, wkt(s->ctx, geom)), PM_OK);
}

static void scene_add_box(scene *s, const char *id, double x0, double y0, double x1, double y1)
{
    char buf[256];
    box_wkt(buf, sizeof buf, x0, y0, x1, y1);
    scene_add(s, id, buf);
}

static void scene_close(scene *s)
{
    pm_districts_free(s->ctx, s->ds);
    pm_ctx_free(s->ctx);
}

/* 3 × 3 unit squares at (lon0 + c, lat0 + r), ids "r<r>c<c>" (row-major
 * order = id order). */
static void scene_lattice(scene *s, double lon0, double lat0)
{
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++) {
            char id[32];
            snprintf(id, sizeof id, "r%dc%d", r, c);
            scene_add_box(s, id, lon0 + c, lat0 + r, lon0 + c + 1, lat0 + r + 1);
        }
}

/* Row i of w as "1,3,4". */
static const char *row_str(const pm_weights *w, size_t i, char *buf, size_t len)
{
    const size_t *nb;
    size_t k = pm_weights_row(w, i, &nb, NULL), used = 0;
    buf[0] = 0;
    for (size_t t = 0; t < k && used < len; t++)
        used += (size_t)snprintf(buf + used, len - used, "%s%zu", t ? "," : "", nb[t]);
    return buf;
}

#define assert_row(w, i, expect)                                                                 \
    do {                                                                                         \
        char rb_[256];                                                                           \
        assert_string_equal(row_str((w), (i), rb_, sizeof rb_), (expect));                       \
    } while (0)

/* ---- queen ------------------------------------------------------------------------- */

static void queen_lattice_counts_corners_edges_and_centre(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    scene_lattice(&s, 30, 50);
    assert_int_equal(pm_districts_freeze(s.ctx, s.ds), PM_OK);
    pm_weights *w;
    assert_int_equal(pm_weights_queen(s.ctx, s.ds, 0, &w), PM_OK);
    assert_int_equal(pm_weights_count(w), 9);
    assert_row(w, 0, "1,3,4");               /* corner: two edges, one vertex */
    assert_row(w, 1, "0,2,3,4,5");
    assert_row(w, 4, "0,1,2,3,5,6,7,8");
    assert_row(w, 8, "4,5,7");
    assert_int_equal(pm_weights_links(w), 4 * 3 + 4 * 5 + 8);
    assert_int_equal(pm_weights_islands(w), 0);
    assert_false(pm_weights_is_row_standardised(w));
    const double *wt;
    pm_weights_row(w, 4, NULL, &wt);
    assert_true(wt[0] == 1.0 && wt[7] == 1.0);
    pm_weights_free(w);
    scene_close(&s);
}

static void queen_single_shared_vertex_is_a_neighbour(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    scene_add_box(&s, "a", 0, 0, 1, 1);
    scene_add_box(&s, "b", 1, 1, 2, 2);      /* touches a at (1,1) only */
    scene_add_box(&s, "c", 1.5, 0, 2.5, 0.5); /* 0.5° from both */
    assert_int_equal(pm_districts_freeze(s.ctx, s.ds), PM_OK);
    pm_weights *w;
    assert_int_equal(pm_weights_queen(s.ctx, s.ds, 0, &w), PM_OK);
    assert_row(w, 0, "1");
    assert_row(w, 1, "0");
    assert_row(w, 2, "");
    assert_int_equal(pm_weights_islands(w), 1);
    assert_non_null(strstr(s.warning, "1 district without neighbours"));
    assert_non_null(strstr(s.warning, "\"c\""));
    pm_weights_free(w);
    scene_close(&s);
}

static void queen_enclave_neighbours_its_surrounding_district(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    scene_add(&s, "outer", "POLYGON((0 0,4 0,4 4,0 4,0 0),(1 1,1 3,3 3,3 1,1 1))");
    scene_add_box(&s, "town", 1, 1, 3, 3);
    scene_add_box(&s, "far", 10, 10, 11, 11);
    assert_int_equal(pm_districts_freeze(s.ctx, s.ds), PM_OK);
    pm_weights *w;
    assert_int_equal(pm_weights_queen(s.ctx, s.ds, 0, &w), PM_OK);
    /* ids sorted: far, outer, town */
    assert_string_equal(pm_district_id(s.ds, 1), "outer");
    assert_row(w, 1, "2");
    assert_row(w, 2, "1");
    assert_row(w, 0, "");
    pm_weights_free(w);
    scene_close(&s);
}

/* Two districts 1e-4° of longitude apart at 60° N: a gap of about 5.6 m. */
static void queen_snapping_closes_a_small_gap_only(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    scene_add_box(&s, "a", 30, 60, 31, 61);
    scene_add_box(&s, "b", 31.0001, 60, 32, 61);
    assert_int_equal(pm_districts_freeze(s.ctx, s.ds), PM_OK);
    struct geod_geodesic g;
    double gap;
    geod_init(&g, 6378137.0, 1 / 298.257223563);
    geod_inverse(&g, 61, 31, 61, 31.0001, &gap, NULL, NULL);   /* the narrowest: at 61° */
    assert_true(gap > 5.3 && gap < 5.5);
    double snaps[] = {0, 5.0, 6.0, 100.0};
    size_t links[] = {0, 0, 2, 2};
    for (size_t k = 0; k < 4; k++) {
        pm_weights *w;
        assert_int_equal(pm_weights_queen(s.ctx, s.ds, snaps[k], &w), PM_OK);
        assert_int_equal(pm_weights_links(w), links[k]);
        pm_weights_free(w);
    }
    pm_weights *w = (pm_weights *)1;
    assert_int_equal(pm_weights_queen(s.ctx, s.ds, -1, &w), PM_E_USAGE);
    assert_null(w);
    assert_int_equal(pm_weights_queen(s.ctx, s.ds, NAN, &w), PM_E_USAGE);
    scene_close(&s);
}

static void queen_survives_allocation_failures(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    scene_lattice(&s, 0, 0);
    assert_int_equal(pm_districts_freeze(s.ctx, s.ds), PM_OK);
    int failures = 0;
    for (long n = 1;; n++) {
        pm_weights *w = (pm_weights *)1;
        pm_alloc_fail_at(n);
        int rc = pm_weights_queen(s.ctx, s.ds, n % 2 ? 0 : 1000, &w);
        pm_alloc_fail_at(0);
        if (rc == PM_OK) {
            assert_int_equal(pm_weights_links(w), 40);
            pm_weights_free(w);
            break;
        }
        failures++;
        assert_int_equal(rc, PM_E_NOMEM);
        assert_null(w);
    }
    assert_true(failures >= 5);
    scene_close(&s);
}

/* ---- points -------------------------------------------------------------------------- */

/* A 3 × 3 grid with 1 m spacing, index = 3 row + column. */
static void grid9(double *x, double *y)
{
    for (int i = 0; i < 9; i++)
        x[i] = 100.0 + i % 3, y[i] = -50.0 + i / 3;
}

static void distance_band_includes_the_exact_distance(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    double x[9], y[9];
    grid9(x, y);
    pm_weights *w;
    assert_int_equal(pm_weights_distance_band(ctx, x, y, 9, 1.0, &w), PM_OK);
    assert_row(w, 0, "1,3");
    assert_row(w, 4, "1,3,5,7");
    assert_int_equal(pm_weights_links(w), 24);
    pm_weights_free(w);
    assert_int_equal(pm_weights_distance_band(ctx, x, y, 9, 1.5, &w), PM_OK);
    assert_row(w, 4, "0,1,2,3,5,6,7,8");
    assert_row(w, 2, "1,4,5");
    pm_weights_free(w);
    assert_int_equal(pm_weights_distance_band(ctx, x, y, 9, 0.5, &w), PM_OK);
    assert_int_equal(pm_weights_islands(w), 9);
    pm_weights_free(w);
    assert_int_equal(pm_weights_distance_band(ctx, x, y, 9, 0, &w), PM_E_USAGE);
    y[3] = NAN;
    assert_int_equal(pm_weights_distance_band(ctx, x, y, 9, 1, &w), PM_E_USAGE);
    assert_non_null(strstr(pm_ctx_errmsg(ctx), "point 3"));
    pm_ctx_free(ctx);
}

static void knn_breaks_ties_by_the_lower_index(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    double x[9], y[9];
    grid9(x, y);
    pm_weights *w;
    assert_int_equal(pm_weights_knn(ctx, x, y, 9, 2, &w), PM_OK);
    assert_row(w, 4, "1,3");          /* 1, 3, 5, 7 all at 1 m */
    assert_row(w, 8, "5,7");
    assert_int_equal(pm_weights_links(w), 18);
    pm_weights_free(w);
    assert_int_equal(pm_weights_knn(ctx, x, y, 9, 3, &w), PM_OK);
    assert_row(w, 0, "1,3,4");        /* then the diagonal at 1.41 m */
    assert_row(w, 4, "1,3,5");
    pm_weights_free(w);
    assert_int_equal(pm_weights_knn(ctx, x, y, 9, 50, &w), PM_OK);   /* k >= n: all others */
    assert_row(w, 4, "0,1,2,3,5,6,7,8");
    pm_weights_free(w);
    assert_int_equal(pm_weights_knn(ctx, x, y, 9, 0, &w), PM_E_USAGE);
    pm_ctx_free(ctx);
}

/* Far and clustered points: the ring search must reach past empty cells. */
static void knn_matches_brute_force_on_clusters(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    enum { N = 300, K = 4 };
    double x[N], y[N];
    uint64_t r = 99;
    for (int i = 0; i < N; i++) {
        r = r * 6364136223846793005u + 1442695040888963407u;
        double u = (double)(r >> 11) / 9007199254740992.0;
        r = r * 6364136223846793005u + 1442695040888963407u;
        double v = (double)(r >> 11) / 9007199254740992.0;
        double cx = i % 3 == 0 ? 0 : i % 3 == 1 ? 50000 : -80000;
        x[i] = cx + u * (i % 3 == 2 ? 100000 : 300), y[i] = v * 500 + (i % 3) * 7000;
    }
    pm_weights *w;
    assert_int_equal(pm_weights_knn(ctx, x, y, N, K, &w), PM_OK);
    for (int i = 0; i < N; i++) {
        /* the K-th smallest distance by brute force */
        double d[N];
        for (int j = 0; j < N; j++)
            d[j] = j == i ? INFINITY : hypot(x[j] - x[i], y[j] - y[i]);
        const size_t *nb;
        assert_int_equal(pm_weights_row(w, (size_t)i, &nb, NULL), K);
        double worst = 0;
        for (int t = 0; t < K; t++)
            worst = fmax(worst, d[nb[t]]);
        int closer = 0;
        for (int j = 0; j < N; j++)
            closer += d[j] < worst;
        assert_true(closer <= K - 1);
    }
    pm_weights_free(w);
    pm_ctx_free(ctx);
}

static void point_weights_survive_allocation_failures(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    double x[9], y[9];
    grid9(x, y);
    for (int kind = 0; kind < 2; kind++) {
        int failures = 0;
        for (long n = 1;; n++) {
            pm_weights *w = (pm_weights *)1;
            pm_alloc_fail_at(n);
            int rc = kind ? pm_weights_knn(ctx, x, y, 9, 3, &w)
                          : pm_weights_distance_band(ctx, x, y, 9, 1.5, &w);
            pm_alloc_fail_at(0);
            if (rc == PM_OK) {
                assert_int_equal(pm_weights_links(w), kind ? 27 : 40);
                pm_weights_free(w);
                break;
            }
            failures++;
            assert_int_equal(rc, PM_E_NOMEM);
            assert_null(w);
        }
        assert_true(failures >= 3);
    }
    pm_ctx_free(ctx);
}

/* ---- CSR, row standardisation, the plane ------------------------------------------ */

static void csr_is_validated_and_rows_standardise_to_one(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    size_t off[] = {0, 2, 3, 3}, nb[] = {1, 2, 0};
    double wt[] = {1, 3, 2};
    pm_weights *w;
    assert_int_equal(pm_weights_from_csr(ctx, 3, off, nb, wt, &w), PM_OK);
    assert_int_equal(pm_weights_islands(w), 1);
    pm_weights_row_standardise(w);
    pm_weights_row_standardise(w);   /* idempotent */
    const double *v;
    assert_int_equal(pm_weights_row(w, 0, NULL, &v), 2);
    assert_double_equal(v[0], 0.25, 1e-15);
    assert_double_equal(v[1], 0.75, 1e-15);
    assert_int_equal(pm_weights_row(w, 1, NULL, &v), 1);
    assert_double_equal(v[0], 1.0, 1e-15);
    assert_true(pm_weights_is_row_standardised(w));
    pm_weights_free(w);
    size_t self[] = {0, 2, 0};
    assert_int_equal(pm_weights_from_csr(ctx, 3, off, self, wt, &w), PM_E_USAGE);
    assert_non_null(strstr(pm_ctx_errmsg(ctx), "the unit itself"));
    size_t desc[] = {2, 1, 0};
    assert_int_equal(pm_weights_from_csr(ctx, 3, off, desc, wt, &w), PM_E_USAGE);
    double neg[] = {1, -1, 1};
    assert_int_equal(pm_weights_from_csr(ctx, 3, off, nb, neg, &w), PM_E_USAGE);
    pm_ctx_free(ctx);
}

static void laea_keeps_distances_near_the_centre(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    double lon[] = {86.0, 86.1, 86.0}, lat[] = {54.0, 54.0, 54.1}, x[3], y[3];
    assert_int_equal(pm_lonlat_to_laea(ctx, lon, lat, 3, 86.0, 54.0, x, y), PM_OK);
    assert_double_equal(x[0], 0, 1e-6);
    assert_double_equal(y[0], 0, 1e-6);
    struct geod_geodesic g;
    geod_init(&g, 6378137.0, 1 / 298.257223563);
    for (int k = 1; k < 3; k++) {
        double s;
        geod_inverse(&g, lat[0], lon[0], lat[k], lon[k], &s, NULL, NULL);
        assert_double_equal(hypot(x[k] - x[0], y[k] - y[0]), s, s * 1e-4);
    }
    assert_true(x[1] > 6000 && fabs(y[1]) < 100 && y[2] > 11000);
    /* in place */
    assert_int_equal(pm_lonlat_to_laea(ctx, lon, lat, 3, 86.0, 54.0, lon, lat), PM_OK);
    assert_double_equal(lon[2], x[2], 1e-9);
    assert_double_equal(lat[2], y[2], 1e-9);
    lat[1] = INFINITY;
    assert_int_equal(pm_lonlat_to_laea(ctx, lon, lat, 3, 86.0, 54.0, x, y), PM_E_USAGE);
    pm_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(queen_lattice_counts_corners_edges_and_centre),
        cmocka_unit_test(queen_single_shared_vertex_is_a_neighbour),
        cmocka_unit_test(queen_enclave_neighbours_its_surrounding_district),
        cmocka_unit_test(queen_snapping_closes_a_small_gap_only),
        cmocka_unit_test(queen_survives_allocation_failures),
        cmocka_unit_test(distance_band_includes_the_exact_distance),
        cmocka_unit_test(knn_breaks_ties_by_the_lower_index),
        cmocka_unit_test(knn_matches_brute_force_on_clusters),
        cmocka_unit_test(point_weights_survive_allocation_failures),
        cmocka_unit_test(csr_is_validated_and_rows_standardise_to_one),
        cmocka_unit_test(laea_keeps_distances_near_the_centre),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
