/* test_recur.c — the recurrence register: hand-made points placed with
 * geod_direct (49 m chain, 51 m apart, other topics, outside the time
 * window, A–B–C chains in space and in time), placement and district
 * majority, order and ids, a brute-force comparison on random points
 * (sparse, dense, across the antimeridian and near the pole), usage errors,
 * allocation failures and a timing run (PM_RECUR_BENCH=n sets its size).
 * An optional argument is a cmocka test filter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../engine/pm_alloc.h"
#include "../../engine/pm_complaint.h"
#include "../../engine/pm_ctx.h"
#include "../../engine/pm_locate.h"
#include "../../engine/pm_recur.h"

#include <geodesic.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY 86400LL
#define WEEK (7 * DAY)
#define T0 1735689600LL   /* 2025-01-01T00:00:00Z */
#define LON0 104.28       /* Irkutsk */
#define LAT0 52.29

static struct geod_geodesic G;

static void geod_setup(void)
{
    geod_init(&G, 6378137, 1 / 298.257223563);
}

/* The point s metres from (lon, lat) at azimuth az degrees. */
static void walk(double lon, double lat, double az, double s, double *lon2, double *lat2)
{
    geod_direct(&G, lat, lon, az, s, lat2, lon2, NULL);
}

typedef struct fix {
    pm_ctx *ctx;
    pm_complaints *cs;
    size_t n;
} fix;

static fix fix_open(void)
{
    geod_setup();
    fix f = {pm_ctx_new(), pm_complaints_new(), 0};
    assert_non_null(f.ctx);
    assert_non_null(f.cs);
    return f;
}

static void fix_close(fix *f)
{
    pm_complaints_free(f->cs);
    pm_ctx_free(f->ctx);
}

/* Adds a complaint; returns its index. */
static size_t add(fix *f, double lon, double lat, int64_t t, uint16_t topic)
{
    char id[24];
    snprintf(id, sizeof id, "r%zu", f->n);
    pm_complaint c = {.id = id, .created_at = t, .answered_at = PM_TIME_NONE, .lon = lon,
                      .lat = lat, .topic = topic, .line = f->n + 2};
    assert_int_equal(pm_complaints_add(f->ctx, f->cs, &c), PM_OK);
    return f->n++;
}

/* Adds a complaint s metres east of the base point. */
static size_t add_east(fix *f, double s, int64_t t, uint16_t topic)
{
    double lon, lat;
    walk(LON0, LAT0, 90, s, &lon, &lat);
    return add(f, lon, lat, t, topic);
}

static pm_recur *reg(fix *f, const pm_placed *pl, const pm_recur_opts *o)
{
    pm_recur *r = NULL;
    assert_int_equal(pm_recur_new(f->ctx, f->cs, pl, o, &r), PM_OK);
    assert_non_null(r);
    return r;
}

static const size_t *members(const pm_recur *r, size_t k)
{
    return r->member + r->clusters[k].members;
}

/* ---- hand-made points ---------------------------------------------------------------- */

/* A, B, C 49 m apart in a line (A–C 98 m) chain into one cluster;
 * D and E 51 m apart do not. */
static void chain_at_49_m_and_not_at_51_m(void **state)
{
    (void)state;
    fix f = fix_open();
    size_t a = add_east(&f, 0, T0, 1), b = add_east(&f, 49, T0 + DAY, 1),
           c = add_east(&f, 98, T0 + 2 * DAY, 1);
    add_east(&f, 1000, T0, 1);
    add_east(&f, 1051, T0 + DAY, 1);
    pm_recur *r = reg(&f, NULL, NULL);
    assert_int_equal(r->n_points, 5);
    assert_int_equal(r->n_clusters, 1);
    const pm_recur_cluster *cl = &r->clusters[0];
    assert_int_equal(cl->id, 1);
    assert_int_equal(cl->count, 3);
    assert_int_equal(cl->topic, 1);
    assert_int_equal(cl->district, -1);
    assert_int_equal(cl->first_at, T0);
    assert_int_equal(cl->last_at, T0 + 2 * DAY);
    assert_int_equal(members(r, 0)[0], a);
    assert_int_equal(members(r, 0)[1], b);
    assert_int_equal(members(r, 0)[2], c);
    double s12;   /* the centroid is B, the middle of the line, to a few cm */
    geod_inverse(&G, cl->lat, cl->lon, pm_complaints_lat_at(f.cs, b), pm_complaints_lon_at(f.cs, b),
                 &s12, NULL, NULL);
    assert_true(s12 < 0.05);
    assert_float_equal(cl->lat, (pm_complaints_lat_at(f.cs, a) + pm_complaints_lat_at(f.cs, b) +
                                 pm_complaints_lat_at(f.cs, c)) / 3, 1e-12);
    pm_recur_free(r);
    fix_close(&f);
}

static void radius_is_inclusive_to_the_centimetre(void **state)
{
    (void)state;
    fix f = fix_open();
    add_east(&f, 0, T0, 0);
    add_east(&f, 49.99, T0, 0);
    add_east(&f, 5000, T0, 0);
    add_east(&f, 5050.01, T0, 0);
    pm_recur *r = reg(&f, NULL, NULL);
    assert_int_equal(r->n_clusters, 1);
    assert_int_equal(members(r, 0)[0], 0);
    assert_int_equal(members(r, 0)[1], 1);
    pm_recur_free(r);
    pm_recur_opts o = {.radius_m = 100};
    r = reg(&f, NULL, &o);
    assert_int_equal(r->n_clusters, 2);
    pm_recur_free(r);
    fix_close(&f);
}

static void other_topics_do_not_link(void **state)
{
    (void)state;
    fix f = fix_open();
    add_east(&f, 0, T0, 0);
    add_east(&f, 10, T0, 1);
    add_east(&f, 20, T0, 2);
    pm_recur *r = reg(&f, NULL, NULL);
    assert_int_equal(r->n_clusters, 0);
    assert_int_equal(r->n_members, 0);
    assert_int_equal(r->n_points, 3);
    pm_recur_free(r);
    fix_close(&f);
}

/* Exactly 8 weeks apart links, 8 weeks and a second does not. */
static void time_window_is_inclusive(void **state)
{
    (void)state;
    fix f = fix_open();
    add_east(&f, 0, T0, 0);
    add_east(&f, 10, T0 + 8 * WEEK, 0);
    add_east(&f, 3000, T0, 0);
    add_east(&f, 3010, T0 + 8 * WEEK + 1, 0);
    pm_recur *r = reg(&f, NULL, NULL);
    assert_int_equal(r->n_clusters, 1);
    assert_int_equal(members(r, 0)[0], 0);
    assert_int_equal(members(r, 0)[1], 1);
    pm_recur_free(r);
    pm_recur_opts o = {.weeks = 7};
    r = reg(&f, NULL, &o);
    assert_int_equal(r->n_clusters, 0);
    pm_recur_free(r);
    fix_close(&f);
}

/* The same spot at weeks 0, 7 and 14: A–C is 14 weeks, still one cluster;
 * a fourth at week 23 is 9 weeks after C and alone. */
static void chain_in_time(void **state)
{
    (void)state;
    fix f = fix_open();
    add_east(&f, 0, T0 + 14 * WEEK, 3);
    add_east(&f, 0, T0, 3);
    add_east(&f, 5, T0 + 7 * WEEK, 3);
    add_east(&f, 0, T0 + 23 * WEEK, 3);
    pm_recur *r = reg(&f, NULL, NULL);
    assert_int_equal(r->n_clusters, 1);
    assert_int_equal(r->clusters[0].count, 3);
    assert_int_equal(members(r, 0)[0], 1);   /* time order, not input order */
    assert_int_equal(members(r, 0)[1], 2);
    assert_int_equal(members(r, 0)[2], 0);
    assert_int_equal(r->clusters[0].last_at, T0 + 14 * WEEK);
    pm_recur_free(r);
    fix_close(&f);
}

/* Clusters by their first complaint (time, then input position); ids
 * follow; min_count drops the small ones. */
static void order_ids_and_min_count(void **state)
{
    (void)state;
    fix f = fix_open();
    add_east(&f, 2000, T0 + 5 * DAY, 0);   /* cluster of the 2 km spot: first at day 3 */
    add_east(&f, 2001, T0 + 3 * DAY, 0);
    add_east(&f, 2002, T0 + 4 * DAY, 0);
    add_east(&f, 0, T0 + 3 * DAY, 1);      /* same first time, later input: after it */
    add_east(&f, 1, T0 + 9 * DAY, 1);
    add_east(&f, 4000, T0, 2);             /* the earliest */
    add_east(&f, 4001, T0, 2);
    pm_recur *r = reg(&f, NULL, NULL);
    assert_int_equal(r->n_clusters, 3);
    assert_int_equal(r->n_members, 7);
    assert_int_equal(r->clusters[0].topic, 2);
    assert_int_equal(r->clusters[1].topic, 0);
    assert_int_equal(r->clusters[2].topic, 1);
    for (uint32_t k = 0; k < 3; k++)
        assert_int_equal(r->clusters[k].id, k + 1);
    assert_int_equal(members(r, 1)[0], 1);
    assert_int_equal(members(r, 1)[1], 2);
    assert_int_equal(members(r, 1)[2], 0);
    assert_int_equal(r->clusters[1].members, 2);
    pm_recur_free(r);
    pm_recur_opts o = {.min_count = 3};
    r = reg(&f, NULL, &o);
    assert_int_equal(r->n_clusters, 1);
    assert_int_equal(r->clusters[0].id, 1);
    assert_int_equal(r->clusters[0].topic, 0);
    pm_recur_free(r);
    fix_close(&f);
}

static pm_placed *placed(size_t n, const int32_t *district, const uint8_t *placement)
{
    pm_placed *pl = pm_calloc(1, sizeof *pl);
    pl->n = n;
    pl->district = pm_calloc(n, sizeof *pl->district);
    pl->placement = pm_calloc(n, sizeof *pl->placement);
    memcpy(pl->district, district, n * sizeof *district);
    memcpy(pl->placement, placement, n);
    return pl;
}

/* With a placement: outside and rejected complaints stay out, complaints
 * without coordinates too; the district is the members' majority. */
static void placement_filters_and_district_majority(void **state)
{
    (void)state;
    fix f = fix_open();
    add_east(&f, 0, T0, 0);
    add_east(&f, 10, T0, 0);
    add_east(&f, 20, T0, 0);
    add_east(&f, 30, T0, 0);    /* outside: its link to the next is lost */
    add_east(&f, 75, T0, 0);    /* 45 m from it, 55 m from the last one kept: alone */
    add_east(&f, 1000, T0, 0);
    add_east(&f, 1010, T0, 0);  /* rejected */
    add(&f, NAN, NAN, T0, 0);   /* by code */
    add_east(&f, 3000, T0, 0);
    add_east(&f, 3010, T0, 0);
    static const int32_t D[] = {2, 1, 2, -1, 4, 5, 5, 3, 7, 6};
    static const uint8_t P[] = {PM_PLACE_INSIDE, PM_PLACE_BORDER,   PM_PLACE_SNAPPED,
                                PM_PLACE_OUTSIDE, PM_PLACE_INSIDE,  PM_PLACE_INSIDE,
                                PM_PLACE_REJECTED, PM_PLACE_BY_CODE, PM_PLACE_INSIDE,
                                PM_PLACE_INSIDE};
    pm_placed *pl = placed(10, D, P);
    pm_recur *r = reg(&f, pl, NULL);
    assert_int_equal(r->n_points, 7);
    assert_int_equal(r->n_clusters, 2);
    assert_int_equal(r->clusters[0].count, 3);
    assert_int_equal(r->clusters[0].district, 2);
    assert_int_equal(r->clusters[1].count, 2);
    assert_int_equal(r->clusters[1].district, 6);   /* a tie of 7 and 6: the lowest */
    pm_recur_free(r);
    r = reg(&f, NULL, NULL);   /* without: every complaint with coordinates */
    assert_int_equal(r->n_points, 9);
    assert_int_equal(r->n_clusters, 3);
    assert_int_equal(r->clusters[0].count, 5);
    assert_int_equal(r->clusters[0].district, -1);
    pm_recur_free(r);
    pl->n = 9;
    pm_recur *bad = (pm_recur *)1;
    assert_int_equal(pm_recur_new(f.ctx, f.cs, pl, NULL, &bad), PM_E_USAGE);
    assert_null(bad);
    assert_non_null(strstr(pm_ctx_errmsg(f.ctx), "placement has 9 entries for 10"));
    pm_placed_free(pl);
    fix_close(&f);
}

static void bad_options_are_usage_errors(void **state)
{
    (void)state;
    fix f = fix_open();
    pm_recur *r = (pm_recur *)1;
    pm_recur_opts o = {.radius_m = 0.5};
    assert_int_equal(pm_recur_new(f.ctx, f.cs, NULL, &o, &r), PM_E_USAGE);
    assert_null(r);
    assert_non_null(strstr(pm_ctx_errmsg(f.ctx), "radius_m"));
    o = (pm_recur_opts){.weeks = -1};
    assert_int_equal(pm_recur_new(f.ctx, f.cs, NULL, &o, &r), PM_E_USAGE);
    o = (pm_recur_opts){.radius_m = NAN};
    assert_int_equal(pm_recur_new(f.ctx, f.cs, NULL, &o, &r), PM_E_USAGE);
    r = reg(&f, NULL, NULL);   /* an empty batch */
    assert_int_equal(r->n_points, 0);
    assert_int_equal(r->n_clusters, 0);
    pm_recur_free(r);
    fix_close(&f);
}

/* ---- against brute force ------------------------------------------------------------- */

static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *s)
{
    return (double)(next_u64(s) >> 11) * 0x1.0p-53;
}

/* n points uniform within side_m metres of (lon, lat) (a rough box in
 * degrees), on 3 topics, over 40 weeks. */
static void random_points(fix *f, uint64_t seed, size_t n, double lon, double lat, double side_m)
{
    uint64_t s = seed;
    double dlat = side_m / 111000, dlon = dlat / cos(lat * M_PI / 180);
    for (size_t i = 0; i < n; i++) {
        double x = lon + (uniform(&s) - 0.5) * dlon, y = lat + (uniform(&s) - 0.5) * dlat;
        x += x > 180 ? -360 : x < -180 ? 360 : 0;
        add(f, x, y, T0 + (int64_t)(next_u64(&s) % (40 * WEEK)), (uint16_t)(next_u64(&s) % 3));
    }
}

static size_t uf_find(size_t *p, size_t a)
{
    while (p[a] != a)
        a = p[a] = p[p[a]];
    return a;
}

/* label[i]: the lowest index of i's cluster, or SIZE_MAX when alone. */
static size_t *brute_labels(const fix *f, const pm_recur_opts *o)
{
    size_t n = f->n, *p = malloc(n * sizeof *p), *size = calloc(n, sizeof *size);
    assert_true(p && size);
    pm_coord_column lon = pm_complaints_lon(f->cs), lat = pm_complaints_lat(f->cs);
    pm_created_column t = pm_complaints_created(f->cs);
    const uint16_t *topic = pm_complaints_topic(f->cs);
    for (size_t i = 0; i < n; i++)
        p[i] = i;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            int64_t dt = pm_created_at(t, i) - pm_created_at(t, j);
            if (topic[i] != topic[j] || llabs(dt) > o->weeks * WEEK)
                continue;
            double s12;
            geod_inverse(&G, pm_coord_at(lat, i), pm_coord_at(lon, i), pm_coord_at(lat, j),
                         pm_coord_at(lon, j), &s12, NULL, NULL);
            if (s12 <= o->radius_m) {
                size_t a = uf_find(p, i), b = uf_find(p, j);
                p[a > b ? a : b] = a < b ? a : b;
            }
        }
    for (size_t i = 0; i < n; i++)
        size[uf_find(p, i)]++;
    size_t *label = malloc(n * sizeof *label);
    assert_non_null(label);
    for (size_t i = 0; i < n; i++) {
        size_t root = uf_find(p, i);
        label[i] = size[root] >= 2 ? root : SIZE_MAX;   /* roots are the lowest index */
    }
    free(size);
    free(p);
    return label;
}

static void assert_same_as_brute(fix *f, const pm_recur_opts *o, size_t *n_clusters)
{
    size_t *want = brute_labels(f, o);
    pm_recur *r = reg(f, NULL, o);
    size_t *got = malloc(f->n * sizeof *got);
    assert_non_null(got);
    for (size_t i = 0; i < f->n; i++)
        got[i] = SIZE_MAX;
    for (size_t k = 0; k < r->n_clusters; k++) {
        const pm_recur_cluster *c = &r->clusters[k];
        size_t low = SIZE_MAX;
        for (size_t m = 0; m < c->count; m++)
            low = members(r, k)[m] < low ? members(r, k)[m] : low;
        for (size_t m = 0; m < c->count; m++)
            got[members(r, k)[m]] = low;
        if (k)
            assert_true(c->first_at >= r->clusters[k - 1].first_at);
    }
    for (size_t i = 0; i < f->n; i++)
        assert_int_equal(got[i], want[i]);
    *n_clusters = r->n_clusters;
    free(got);
    free(want);
    pm_recur_free(r);
}

static void brute_force_agrees_on_random_points(void **state)
{
    (void)state;
    fix f = fix_open();
    random_points(&f, 17, 3000, LON0, LAT0, 1500);
    size_t nc;
    pm_recur_opts o = {.radius_m = 50, .weeks = 8};
    assert_same_as_brute(&f, &o, &nc);
    printf("# 3000 points, 50 m, 8 weeks: %zu clusters\n", nc);
    assert_true(nc > 50);   /* a test with something to find */
    o = (pm_recur_opts){.radius_m = 23.5, .weeks = 3};
    assert_same_as_brute(&f, &o, &nc);
    assert_true(nc > 10);
    fix_close(&f);
}

/* 1500 points in 150 m on 3 topics: big clusters, so the stretches that
 * link_run skips are long; weeks 2 leaves gaps in time. */
static void brute_force_agrees_on_dense_points(void **state)
{
    (void)state;
    fix f = fix_open();
    random_points(&f, 23, 1500, LON0, LAT0, 150);
    size_t nc;
    pm_recur_opts o = {.radius_m = 20, .weeks = 2};
    assert_same_as_brute(&f, &o, &nc);
    assert_true(nc > 20 && nc < 500);
    o = (pm_recur_opts){.radius_m = 50, .weeks = 8};
    assert_same_as_brute(&f, &o, &nc);
    assert_int_equal(nc, 3);   /* one per topic */
    fix_close(&f);
}

/* Where degrees lie: across the antimeridian and 30 km from the pole. */
static void brute_force_agrees_at_the_antimeridian_and_pole(void **state)
{
    (void)state;
    fix f = fix_open();
    random_points(&f, 3, 800, 180, 64.7, 600);
    random_points(&f, 4, 800, 10, 89.73, 600);
    size_t nc;
    pm_recur_opts o = {.radius_m = 50, .weeks = 8};
    assert_same_as_brute(&f, &o, &nc);
    assert_true(nc > 50);
    fix_close(&f);
}

/* ---- allocation failures and speed ---------------------------------------------------------- */

static void register_survives_alloc_failures(void **state)
{
    (void)state;
    fix f = fix_open();
    random_points(&f, 8, 300, LON0, LAT0, 500);
    pm_recur *want = reg(&f, NULL, NULL);
    int failures = 0;
    for (long n = 1;; n++) {
        pm_recur *r = (pm_recur *)1;
        pm_alloc_fail_at(n);
        int rc = pm_recur_new(f.ctx, f.cs, NULL, NULL, &r);
        long made = pm_alloc_count();
        pm_alloc_fail_at(0);
        if (rc == PM_OK) {
            assert_int_equal(r->n_clusters, want->n_clusters);
            assert_memory_equal(r->member, want->member, want->n_members * sizeof *r->member);
            pm_recur_free(r);
            if (n > made)
                break;
            continue;
        }
        failures++;
        assert_int_equal(rc, PM_E_NOMEM);
        assert_null(r);
    }
    assert_int_equal(failures, 10);
    pm_recur_free(want);
    fix_close(&f);
}

/* 70 % of the points around 40 towns (Gaussian, σ 1.5 km, as pm_synth
 * makes them), 30 % at 20 000 addresses (5 m of jitter: the same building
 * complained about again); 20 topics, one year.  Prints the time;
 * PM_RECUR_BENCH=n sets n. */
static void timing_run(void **state)
{
    (void)state;
    const char *env = getenv("PM_RECUR_BENCH");
    size_t n = env ? (size_t)strtoull(env, NULL, 10) : 100000;
    fix f = fix_open();
    uint64_t s = 99;
    for (size_t i = 0; i < n; i++) {
        int at_address = uniform(&s) < 0.3;
        uint64_t place = at_address ? next_u64(&s) % 20000 : 0, ps = place * 7919 + 1;
        uint64_t town = (at_address ? next_u64(&ps) : next_u64(&s)) % 40;
        double u1 = (at_address ? uniform(&ps) : uniform(&s)) + 1e-300;
        double u2 = at_address ? uniform(&ps) : uniform(&s);
        double lon, lat;
        walk(100 + (double)town * 0.1, 52 + fmod((double)town * 0.37, 2), 360 * u2,
             1500 * sqrt(-2 * log(u1)), &lon, &lat);
        if (at_address)
            walk(lon, lat, 360 * uniform(&s), 5 * uniform(&s), &lon, &lat);
        add(&f, lon, lat, T0 + (int64_t)(next_u64(&s) % (365 * DAY)),
            (uint16_t)(next_u64(&s) % 20));
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pm_recur *r = reg(&f, NULL, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double sec = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("# %zu complaints: %zu clusters, %zu members, %llu geodesics, %.2f s\n", n,
           r->n_clusters, r->n_members, (unsigned long long)r->n_geodesic, sec);
    assert_int_equal(r->n_points, n);
    assert_true(r->n_clusters > 0);
    pm_recur_free(r);
    fix_close(&f);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chain_at_49_m_and_not_at_51_m),
        cmocka_unit_test(radius_is_inclusive_to_the_centimetre),
        cmocka_unit_test(other_topics_do_not_link),
        cmocka_unit_test(time_window_is_inclusive),
        cmocka_unit_test(chain_in_time),
        cmocka_unit_test(order_ids_and_min_count),
        cmocka_unit_test(placement_filters_and_district_majority),
        cmocka_unit_test(bad_options_are_usage_errors),
        cmocka_unit_test(brute_force_agrees_on_random_points),
        cmocka_unit_test(brute_force_agrees_on_dense_points),
        cmocka_unit_test(brute_force_agrees_at_the_antimeridian_and_pole),
        cmocka_unit_test(register_survives_alloc_failures),
        cmocka_unit_test(timing_run),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
