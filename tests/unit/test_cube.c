/* test_cube.c — the cube: counts against a brute-force loop over the
 * complaints (per district × topic, every level, every filter), roll-ups,
 * exact percentiles, overdue at a report time, Empirical-Bayes rates and
 * densities worked by hand, ratings with the minimum sample, change
 * against the previous range, incremental = full (rows and snapshot
 * bytes), duplicate ids, snapshot round trip and damage, and allocation
 * failures through every entry point.  An optional argument is a cmocka
 * test filter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../engine/pm_alloc.h"
#include "../../engine/pm_complaint.h"
#include "../../engine/pm_ctx.h"
#include "../../engine/pm_cube.h"
#include "../../engine/cube_impl.h"   /* the id set's size, for the adder's test */
#include "../../engine/pm_district.h"
#include "../../engine/pm_locate.h"

#include <geodesic.h>
#include <xxhash.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HOUR 3600
#define DAY 86400
#define N_TOPICS 5
#define T0 1735689600LL          /* 2025-01-01T00:00:00Z */
#define IRKUTSK (8L * HOUR)

/* ---- a world: four 1° squares in two regions ------------------------------ */

typedef struct dspec {
    const char *id, *parent;
    double pop, lon, lat;
} dspec;

/* After freeze: A=0, B=1, C=2, D=3; regions R1 = {A, B}, R2 = {C, D}. */
static const dspec DISTRICTS[] = {
    {"A", "R1", 10000, 100, 50},
    {"B", "R1", 20000, 101, 50},
    {"C", "R2", NAN, 100, 51},
    {"D", "R2", 50000, 101, 51},
};
#define N_DISTRICTS 4

typedef struct world {
    pm_ctx *ctx;
    pm_districts *ds;
    char dir[64];
} world;

static GEOSGeometry *square(pm_ctx *ctx, double lon, double lat)
{
    char wkt[256];
    snprintf(wkt, sizeof wkt, "POLYGON((%g %g, %g %g, %g %g, %g %g, %g %g))", lon, lat, lon + 1,
             lat, lon + 1, lat + 1, lon, lat + 1, lon, lat);
    GEOSWKTReader *r = GEOSWKTReader_create_r(pm_ctx_geos(ctx));
    GEOSGeometry *g = GEOSWKTReader_read_r(pm_ctx_geos(ctx), r, wkt);
    GEOSWKTReader_destroy_r(pm_ctx_geos(ctx), r);
    assert_non_null(g);
    return g;
}

static pm_districts *districts(pm_ctx *ctx, const dspec *d, size_t n)
{
    pm_districts *ds = pm_districts_new(ctx);
    assert_non_null(ds);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(pm_districts_add(ctx, ds, d[i].id, NULL, d[i].parent, d[i].pop,
                                          square(ctx, d[i].lon, d[i].lat)),
                         PM_OK);
    assert_int_equal(pm_districts_freeze(ctx, ds), PM_OK);
    return ds;
}

static void world_open(world *w)
{
    w->ctx = pm_ctx_new();
    assert_non_null(w->ctx);
    w->ds = districts(w->ctx, DISTRICTS, N_DISTRICTS);
    snprintf(w->dir, sizeof w->dir, "/tmp/pm_test_cube_XXXXXX");
    assert_non_null(mkdtemp(w->dir));
}

static const char *world_path(const world *w, const char *name, char *buf)
{
    snprintf(buf, 128, "%s/%s", w->dir, name);
    return buf;
}

static void world_close(world *w)
{
    static const char *const names[] = {"a.cube", "b.cube", "c.cube", "bad.cube"};
    char p[128];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        unlink(world_path(w, names[i], p));
    rmdir(w->dir);
    pm_districts_free(w->ctx, w->ds);
    pm_ctx_free(w->ctx);
}

static pm_cube *cube_new(world *w, pm_period_kind k, long off)
{
    pm_cube_opts o = {k, off};
    pm_cube *c = NULL;
    assert_int_equal(pm_cube_new(w->ctx, w->ds, N_TOPICS, &o, &c), PM_OK);
    return c;
}

/* ---- complaints ---------------------------------------------------------------- */

typedef struct spec {
    char id[16];
    int64_t created, answered;
    uint16_t topic;
    const char *source, *status, *executor;
    int32_t district;
    uint8_t placement;
} spec;

static const char *const SOURCES[] = {"vk", "telegram", "gosuslugi", NULL};
static const char *const STATUSES[] = {"answered", "open", "in_work"};
static const char *const EXECUTORS[] = {"ЖКХ", "Минтранс", "Администрация", "Водоканал", NULL};

typedef struct batch {
    pm_complaints *cs;
    pm_placed *pl;
} batch;

static batch make_batch(pm_ctx *ctx, const spec *s, size_t n)
{
    batch b = {pm_complaints_new(), pm_calloc(1, sizeof *b.pl)};
    assert_non_null(b.cs);
    assert_non_null(b.pl);
    b.pl->n = n;
    b.pl->district = pm_calloc(n ? n : 1, sizeof *b.pl->district);
    b.pl->placement = pm_calloc(n ? n : 1, sizeof *b.pl->placement);
    assert_true(b.pl->district && b.pl->placement);
    for (size_t i = 0; i < n; i++) {
        pm_complaint c = {.id = s[i].id, .created_at = s[i].created, .answered_at = s[i].answered,
                          .lon = NAN, .lat = NAN, .topic = s[i].topic, .source = s[i].source,
                          .status = s[i].status, .executor = s[i].executor, .line = i + 2};
        assert_int_equal(pm_complaints_add(ctx, b.cs, &c), PM_OK);
        b.pl->district[i] = s[i].district;
        b.pl->placement[i] = s[i].placement;
        b.pl->counts[s[i].placement]++;
    }
    return b;
}

static void batch_free(batch *b)
{
    pm_complaints_free(b->cs);
    pm_placed_free(b->pl);
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* n complaints with ids c<first>..., over 60 days, all kinds of placement. */
static spec *random_specs(uint64_t seed, size_t first, size_t n)
{
    spec *s = calloc(n ? n : 1, sizeof *s);
    assert_non_null(s);
    uint64_t st = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (size_t i = 0; i < n; i++) {
        spec *x = &s[i];
        snprintf(x->id, sizeof x->id, "c%07zu", first + i);
        x->created = T0 + (int64_t)(rnd(&st) % (60 * DAY));
        uint64_t r = rnd(&st) % 100;
        int64_t delay = rnd(&st) % 100 < 75 ? (int64_t)(rnd(&st) % (20 * HOUR))
                                             : (int64_t)(rnd(&st) % (10 * DAY));
        if (r % 17 == 0)
            delay = DAY;   /* exactly 24 h counts as within */
        if (r % 17 == 1)
            delay = DAY + 1;
        x->answered = r < 85 ? x->created + delay : PM_TIME_NONE;
        x->topic = (uint16_t)(rnd(&st) % N_TOPICS);
        x->source = SOURCES[rnd(&st) % 4];
        x->status = STATUSES[rnd(&st) % 3];
        x->executor = EXECUTORS[rnd(&st) % 5];
        uint64_t p = rnd(&st) % 100;
        x->placement = p < 5 ? PM_PLACE_OUTSIDE : p < 6 ? PM_PLACE_UNKNOWN_CODE
                     : p < 9 ? PM_PLACE_BORDER : p < 11 ? PM_PLACE_BY_CODE
                     : p < 12 ? PM_PLACE_SNAPPED : PM_PLACE_INSIDE;
        x->district = x->placement >= PM_PLACE_OUTSIDE ? -1 : (int32_t)(rnd(&st) % N_DISTRICTS);
    }
    return s;
}

static spec one(const char *id, int64_t created, int64_t answered, uint16_t topic, int32_t district)
{
    spec s = {.created = created, .answered = answered, .topic = topic, .source = "vk",
              .status = "answered", .executor = "ЖКХ", .district = district,
              .placement = district >= 0 ? PM_PLACE_INSIDE : PM_PLACE_OUTSIDE};
    snprintf(s.id, sizeof s.id, "%s", id);
    return s;
}

static void add_specs(world *w, pm_cube *c, const spec *s, size_t n)
{
    batch b = make_batch(w->ctx, s, n);
    assert_int_equal(pm_cube_add(w->ctx, c, b.cs, b.pl, NULL, NULL, NULL), PM_OK);
    batch_free(&b);
}

/* ---- the brute-force oracle ----------------------------------------------------- */

typedef struct bf_filter {
    int topic;                 /* -1: all */
    const char *source;        /* NULL: all; "" : without a source */
    const char *status;
    const char *executor;
    int has_range;
    int64_t from, to;
} bf_filter;

typedef struct bf_row {
    uint64_t count, answered, answered_24h, open;
    uint32_t *delays;
    size_t nd;
} bf_row;

static int str_is(const char *v, const char *want)
{
    return !want || strcmp(v ? v : "", want) == 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Rows by key at the level, straight from the complaints. */
static bf_row *brute(const world *w, const pm_cube *c, const spec *s, size_t n, pm_level lv,
                     const bf_filter *f, size_t nkeys)
{
    bf_row *rows = calloc(nkeys, sizeof *rows);
    assert_non_null(rows);
    const pm_cube_opts *o = pm_cube_options(c);
    for (size_t i = 0; i < n; i++) {
        const spec *x = &s[i];
        if (x->district < 0 || (f->topic >= 0 && x->topic != f->topic) ||
            !str_is(x->source, f->source) || !str_is(x->status, f->status) ||
            !str_is(x->executor, f->executor))
            continue;
        int64_t p = pm_period_of(o->period, x->created, o->utc_offset_s);
        if (f->has_range && (p < f->from || p > f->to))
            continue;
        long k = lv == PM_LEVEL_DISTRICT ? x->district
               : lv == PM_LEVEL_REGION   ? (long)pm_district_region(w->ds, (size_t)x->district)
               : lv == PM_LEVEL_TOPIC    ? x->topic
               : lv == PM_LEVEL_TOTAL    ? 0
               : x->executor ? pm_cube_dict_find(c, PM_DICT_EXECUTOR, x->executor) : -1;
        if (k < 0)
            continue;
        bf_row *r = &rows[k];
        r->count++;
        if (x->answered == PM_TIME_NONE) {
            r->open++;
            continue;
        }
        uint32_t d = (uint32_t)(x->answered - x->created);
        r->answered++;
        r->answered_24h += d <= DAY;
        r->delays = realloc(r->delays, (r->nd + 1) * sizeof *r->delays);
        r->delays[r->nd++] = d;
    }
    for (size_t k = 0; k < nkeys; k++)
        if (rows[k].nd)
            qsort(rows[k].delays, rows[k].nd, sizeof *rows[k].delays, cmp_u32);
    return rows;
}

static void brute_free(bf_row *rows, size_t nkeys)
{
    for (size_t k = 0; k < nkeys; k++)
        free(rows[k].delays);
    free(rows);
}

/* Nearest rank, by the definition: the smallest value with at least p·n
 * values at or below it. */
static double nearest_rank_h(const uint32_t *sorted, size_t n, double p)
{
    if (!n)
        return NAN;
    for (size_t i = 0; i < n; i++)
        if ((double)(i + 1) >= p * (double)n - 1e-9)
            return sorted[i] / 3600.0;
    return sorted[n - 1] / 3600.0;
}

static size_t level_keys(const world *w, const pm_cube *c, pm_level lv)
{
    return lv == PM_LEVEL_DISTRICT ? N_DISTRICTS
         : lv == PM_LEVEL_REGION   ? pm_regions_count(w->ds)
         : lv == PM_LEVEL_EXECUTOR ? pm_cube_dict_count(c, PM_DICT_EXECUTOR)
         : lv == PM_LEVEL_TOPIC    ? N_TOPICS
                                   : 1;
}

/* |a − b| <= eps (false for NaN). */
static void assert_near_at(double a, double b, double eps, int line)
{
    if (!(fabs(a - b) <= eps))
        fail_msg("line %d: %.17g != %.17g (tolerance %g)", line, a, b, eps);
}
#define assert_near(a, b, eps) assert_near_at((a), (b), (eps), __LINE__)

static void assert_same_double(double a, double b)
{
    if (isnan(a) || isnan(b)) {
        assert_true(isnan(a) && isnan(b));
        return;
    }
    if (a != b)
        fail_msg("%.17g != %.17g", a, b);
}

/* The query rows equal the oracle's (executor rows only where there are
 * complaints). */
static void check_against_brute(world *w, const pm_cube *c, const spec *s, size_t n, pm_level lv,
                                 const pm_filter *f, const bf_filter *bf)
{
    size_t nkeys = level_keys(w, c, lv);
    bf_row *want = brute(w, c, s, n, lv, bf, nkeys);
    pm_row *rows;
    size_t nr;
    assert_int_equal(pm_cube_query(w->ctx, c, lv, f, &rows, &nr), PM_OK);
    size_t r = 0;
    for (size_t k = 0; k < nkeys; k++) {
        if (lv == PM_LEVEL_EXECUTOR && want[k].count == 0)
            continue;
        assert_true(r < nr);
        assert_int_equal(rows[r].key, k);
        assert_int_equal(rows[r].count, want[k].count);
        assert_int_equal(rows[r].answered, want[k].answered);
        assert_int_equal(rows[r].answered_24h, want[k].answered_24h);
        assert_int_equal(rows[r].open, want[k].open);
        assert_same_double(rows[r].median_h, nearest_rank_h(want[k].delays, want[k].nd, 0.5));
        assert_same_double(rows[r].p90_h, nearest_rank_h(want[k].delays, want[k].nd, 0.9));
        r++;
    }
    assert_int_equal(r, nr);
    pm_free(rows);
    brute_free(want, nkeys);
}

/* ---- counts, roll-ups, filters --------------------------------------------------- */

#define N_RANDOM 3000

static void counts_match_brute_force(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    spec *s = random_specs(1, 1, N_RANDOM);
    pm_cube *c = cube_new(&w, PM_PERIOD_DAY, IRKUTSK);
    add_specs(&w, c, s, N_RANDOM);
    for (int lv = PM_LEVEL_DISTRICT; lv <= PM_LEVEL_TOTAL; lv++)
        for (int t = -1; t < N_TOPICS; t++) {
            uint16_t topic = (uint16_t)(t < 0 ? 0 : t);
            pm_filter f = {.topics = &topic, .n_topics = t >= 0};
            bf_filter bf = {.topic = t};
            check_against_brute(&w, c, s, N_RANDOM, (pm_level)lv, &f, &bf);
        }
    free(s);
    pm_cube_free(c);
    world_close(&w);
}

static void totals_count_placed_and_outside(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    spec *s = random_specs(2, 1, N_RANDOM);
    uint64_t placed = 0, outside = 0, open = 0;
    for (size_t i = 0; i < N_RANDOM; i++) {
        placed += s[i].district >= 0;
        outside += s[i].placement == PM_PLACE_OUTSIDE;
        open += s[i].district >= 0 && s[i].answered == PM_TIME_NONE;
    }
    pm_cube *c = cube_new(&w, PM_PERIOD_WEEK, IRKUTSK);
    batch b = make_batch(w.ctx, s, N_RANDOM);
    uint64_t added = 0;
    assert_int_equal(pm_cube_add(w.ctx, c, b.cs, b.pl, NULL, NULL, &added), PM_OK);
    assert_int_equal(added, placed);
    assert_int_equal(pm_cube_total(c), placed);
    assert_int_equal(pm_cube_outside(c), outside);
    assert_true(outside > 0 && placed > 2000);
    pm_row *rows;
    size_t n;
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_TOTAL, NULL, &rows, &n), PM_OK);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].count, placed);
    assert_int_equal(rows[0].open, open);
    pm_free(rows);
    int64_t first, last;
    assert_int_equal(pm_cube_period_span(c, &first, &last), 1);
    assert_int_equal(first, pm_period_of(PM_PERIOD_WEEK, T0, IRKUTSK));
    assert_int_equal(last, pm_period_of(PM_PERIOD_WEEK, T0 + 60 * DAY - 1, IRKUTSK));
    batch_free(&b);
    free(s);
    pm_cube_free(c);
    world_close(&w);
}

static void regions_and_total_sum_their_districts(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    spec *s = random_specs(3, 1, N_RANDOM);
    pm_cube *c = cube_new(&w, PM_PERIOD_DAY, 0);
    add_specs(&w, c, s, N_RANDOM);
    pm_filter f = {.report_time = T0 + 40 * DAY};
    pm_row *d, *r, *t, *tp;
    size_t nd, nr, nt, ntp;
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_DISTRICT, &f, &d, &nd), PM_OK);
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_REGION, &f, &r, &nr), PM_OK);
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_TOTAL, &f, &t, &nt), PM_OK);
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_TOPIC, &f, &tp, &ntp), PM_OK);
    assert_int_equal(nd, N_DISTRICTS);
    assert_int_equal(nr, 2);
    assert_int_equal(ntp, N_TOPICS);
    for (size_t k = 0; k < nr; k++) {
        uint64_t count = 0, answered = 0, a24 = 0, open = 0, overdue = 0;
        double area = 0;
        for (size_t i = 0; i < nd; i++) {
            if (pm_district_region(w.ds, i) != k)
                continue;
            count += d[i].count;
            answered += d[i].answered;
            a24 += d[i].answered_24h;
            open += d[i].open;
            overdue += d[i].overdue;
            area += d[i].area_km2;
        }
        assert_int_equal(r[k].count, count);
        assert_int_equal(r[k].answered, answered);
        assert_int_equal(r[k].answered_24h, a24);
        assert_int_equal(r[k].open, open);
        assert_int_equal(r[k].overdue, overdue);
        assert_true(overdue > 0);
        assert_near(r[k].area_km2, area, 1e-9);
    }
    /* R1 = A + B (10 000 + 20 000); R2 = D only, C has no population */
    assert_near(r[0].population, 30000, 0);
    assert_near(r[1].population, 50000, 0);
    assert_near(t[0].population, 80000, 0);
    assert_true(isnan(d[2].population) && isnan(d[2].per_10k) && isnan(d[2].eb_per_10k));
    uint64_t sum = 0, tsum = 0;
    double area = 0;
    for (size_t i = 0; i < nd; i++) {
        sum += d[i].count;
        area += d[i].area_km2;
    }
    for (size_t i = 0; i < ntp; i++) {
        tsum += tp[i].count;
        assert_true(isnan(tp[i].area_km2) && isnan(tp[i].population));
    }
    assert_int_equal(t[0].count, sum);
    assert_int_equal(tsum, sum);
    assert_near(t[0].area_km2, area, 1e-9);
    pm_free(d);
    pm_free(r);
    pm_free(t);
    pm_free(tp);
    free(s);
    pm_cube_free(c);
    world_close(&w);
}

static void each_filter_matches_brute_force(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    spec *s = random_specs(4, 1, N_RANDOM);
    pm_cube *c = cube_new(&w, PM_PERIOD_DAY, IRKUTSK);
    add_specs(&w, c, s, N_RANDOM);
    for (int col = 0; col < 3; col++) {
        size_t nv = pm_cube_dict_count(c, col);
        assert_true(nv >= 3);
        for (size_t v = 0; v <= nv; v++) {
            uint32_t idx = v == nv ? PM_NONE : (uint32_t)v;
            const char *str = pm_cube_dict_str(c, col, idx);
            pm_filter f = {0};
            bf_filter bf = {.topic = -1};
            if (col == 0) {
                f.sources = &idx, f.n_sources = 1, bf.source = str;
            } else if (col == 1) {
                f.statuses = &idx, f.n_statuses = 1, bf.status = str;
            } else {
                f.executors = &idx, f.n_executors = 1, bf.executor = str;
            }
            check_against_brute(&w, c, s, N_RANDOM, PM_LEVEL_DISTRICT, &f, &bf);
            check_against_brute(&w, c, s, N_RANDOM, PM_LEVEL_EXECUTOR, &f, &bf);
        }
    }
    /* two values at once: every source but the absent one */
    uint32_t two[] = {0, 1, 2};
    pm_filter f = {.sources = two, .n_sources = 3};
    pm_row *rows, *all;
    size_t n, na;
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_TOTAL, &f, &rows, &n), PM_OK);
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_TOTAL, NULL, &all, &na), PM_OK);
    bf_filter none = {.topic = -1, .source = ""};
    bf_row *b = brute(&w, c, s, N_RANDOM, PM_LEVEL_TOTAL, &none, 1);
    assert_int_equal(rows[0].count + b[0].count, all[0].count);
    brute_free(b, 1);
    pm_free(rows);
    pm_free(all);
    /* period ranges, local days at UTC+8 */
    int64_t d0 = pm_period_of(PM_PERIOD_DAY, T0, IRKUTSK);
    const int64_t ranges[][2] = {{d0, d0}, {d0 + 3, d0 + 9}, {d0 - 5, d0 + 100}, {d0 + 59, d0 + 70}};
    for (size_t i = 0; i < sizeof ranges / sizeof *ranges; i++) {
        pm_filter fr = {.has_range = 1, .period_from = ranges[i][0], .period_to = ranges[i][1]};
        bf_filter bfr = {.topic = -1, .has_range = 1, .from = ranges[i][0], .to = ranges[i][1]};
        check_against_brute(&w, c, s, N_RANDOM, PM_LEVEL_DISTRICT, &fr, &bfr);
        check_against_brute(&w, c, s, N_RANDOM, PM_LEVEL_TOPIC, &fr, &bfr);
    }
    free(s);
    pm_cube_free(c);
    world_close(&w);
}

static void executor_rows_skip_complaints_without_one(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    spec s[] = {one("a", T0, T0 + HOUR, 0, 0), one("b", T0, T0 + HOUR, 0, 1),
                one("c", T0, T0 + HOUR, 0, 1), one("d", T0, PM_TIME_NONE, 0, 2)};
    s[1].executor = "Водоканал";
    s[2].executor = NULL;
    s[3].executor = "";
    pm_cube *c = cube_new(&w, PM_PERIOD_DAY, 0);
    add_specs(&w, c, s, 4);
    assert_int_equal(pm_cube_dict_count(c, PM_DICT_EXECUTOR), 2);
    assert_int_equal(pm_cube_dict_find(c, PM_DICT_EXECUTOR, "ЖКХ"), 0);
    assert_int_equal(pm_cube_dict_find(c, PM_DICT_EXECUTOR, "Водоканал"), 1);
    assert_int_equal(pm_cube_dict_find(c, PM_DICT_EXECUTOR, "nobody"), -1);
    assert_string_equal(pm_cube_dict_str(c, PM_DICT_EXECUTOR, 1), "Водоканал");
    assert_string_equal(pm_cube_dict_str(c, PM_DICT_EXECUTOR, PM_NONE), "");
    assert_null(pm_cube_dict_str(c, PM_DICT_EXECUTOR, 2));
    pm_row *rows;
    size_t n;
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_EXECUTOR, NULL, &rows, &n), PM_OK);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].key, 0);
    assert_int_equal(rows[0].count, 1);
    assert_int_equal(rows[1].key, 1);
    assert_int_equal(rows[1].count, 1);
    assert_true(isnan(rows[0].area_km2) && isnan(rows[0].population) && isnan(rows[0].eb_per_10k));
    pm_free(rows);
    /* the filter may ask for complaints without an executor */
    uint32_t none = PM_NONE;
    pm_filter f = {.executors = &none, .n_executors = 1};
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_TOTAL, &f, &rows, &n), PM_OK);
    assert_int_equal(rows[0].count, 2);
    assert_int_equal(rows[0].open, 1);
    pm_free(rows);
    pm_cube_free(c);
    world_close(&w);
}

/* ---- percentiles, overdue, change --------------------------------------------- */

static void percentiles_are_nearest_rank(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    /* district A: delays 1..10 h → median the 5th (5 h), p90 the 9th (9 h);
     * district B: 1..4 h → median the 2nd (2 h), p90 the 4th (4 h);
     * district C: one answer of 30 h → both 30 h, none within 24 h. */
    spec s[16];
    size_t n = 0;
    char id[16];
    for (int h = 10; h >= 1; h--) {
        snprintf(id, sizeof id, "a%d", h);
        s[n++] = one(id, T0, T0 + h * HOUR, 0, 0);
    }
    for (int h = 1; h <= 4; h++) {
        snprintf(id, sizeof id, "b%d", h);
        s[n++] = one(id, T0 + h, T0 + h + h * HOUR, (uint16_t)h, 1);
    }
    s[n++] = one("c1", T0, T0 + 30 * HOUR, 0, 2);
    s[n++] = one("c2", T0, PM_TIME_NONE, 0, 2);
    pm_cube *c = cube_new(&w, PM_PERIOD_DAY, 0);
    add_specs(&w, c, s, n);
    pm_row *r;
    size_t nr;
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_DISTRICT, NULL, &r, &nr), PM_OK);
    assert_near(r[0].median_h, 5, 0);
    assert_near(r[0].p90_h, 9, 0);
    assert_near(r[1].median_h, 2, 0);
    assert_near(r[1].p90_h, 4, 0);
    assert_near(r[2].median_h, 30, 0);
    assert_near(r[2].p90_h, 30, 0);
    assert_near(r[2].share_24h, 0, 0);
    assert_near(r[0].share_24h, 1, 0);
    assert_true(isnan(r[3].median_h) && isnan(r[3].share_24h) && isnan(r[3].overdue_share));
    assert_int_equal(r[3].count, 0);
    pm_free(r);
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_TOTAL, NULL, &r, &nr), PM_OK);
    /* all 15 answers: 1,1,2,2,3,3,4,4,5,6,7,8,9,10,30 → 8th = 4 h, 14th = 10 h */
    assert_int_equal(r[0].answered, 15);
    assert_near(r[0].median_h, 4, 0);
    assert_near(r[0].p90_h, 10, 0);
    pm_free(r);
    pm_cube_free(c);
    world_close(&w);
}

static void percentiles_match_sorted_arrays_on_random_data(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    spec *s = random_specs(5, 1, N_RANDOM);
    pm_cube *c = cube_new(&w, PM_PERIOD_MONTH, IRKUTSK);
    add_specs(&w, c, s, N_RANDOM);
    /* per district, answers sorted here with qsort */
    for (int32_t d = 0; d < N_DISTRICTS; d++) {
        uint32_t *v = calloc(N_RANDOM, sizeof *v);
        size_t k = 0;
        for (size_t i = 0; i < N_RANDOM; i++)
            if (s[i].district == d && s[i].answered != PM_TIME_NONE)
                v[k++] = (uint32_t)(s[i].answered - s[i].created);
        qsort(v, k, sizeof *v, cmp_u32);
        pm_row *r;
        size_t nr;
        assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_DISTRICT, NULL, &r, &nr), PM_OK);
        assert_true(k > 100);
        assert_near(r[d].median_h, v[(k + 1) / 2 - 1] / 3600.0, 0);
        assert_near(r[d].p90_h, v[(9 * k + 9) / 10 - 1] / 3600.0, 0);
        pm_free(r);
        free(v);
    }
    free(s);
    pm_cube_free(c);
    world_close(&w);
}

/* pm_select_u32 gives the sorted array's k-th value for every k, on
 * values whose digits spread over every byte, share the top ones, repeat
 * or are all equal; the input is left as it was. */
static void select_is_the_sorted_kth(void **state)
{
    (void)state;
    enum { N = 3000 };
    static const uint32_t masks[] = {UINT32_MAX, 0x0001FFFF, 0x000000FF, 0x0F0F0F0F, 0x80000003, 0};
    uint32_t *a = calloc(N, sizeof *a), *keep = calloc(N, sizeof *keep),
             *sorted = calloc(N, sizeof *sorted), *tmp = calloc(N, sizeof *tmp);
    assert_non_null(a && keep && sorted && tmp);
    uint64_t x = 88172645463325252u;   /* xorshift, fixed seed */
    for (size_t m = 0; m < sizeof masks / sizeof *masks; m++) {
        for (size_t n = 1; n <= N; n = n < 70 ? n + 1 : n * 3) {
            for (size_t i = 0; i < n; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                a[i] = (uint32_t)(x >> 11) & masks[m];
            }
            memcpy(keep, a, n * sizeof *a);
            memcpy(sorted, a, n * sizeof *a);
            qsort(sorted, n, sizeof *sorted, cmp_u32);
            for (size_t k = 0; k < n; k += n < 70 ? 1 : 37) {
                uint32_t got = pm_select_u32(a, tmp, n, k);
                if (got != sorted[k])
                    fail_msg("mask %08x, %zu values: the %zu-th is %u, not %u", masks[m], n, k,
                             sorted[k], got);
            }
            assert_int_equal(pm_select_u32(a, tmp, n, n - 1), sorted[n - 1]);
            assert_memory_equal(a, keep, n * sizeof *a);
        }
    }
    free(a);
    free(keep);
    free(sorted);
    free(tmp);
}

static void overdue_counts_against_report_time(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    pm_cube *c = cube_new(&w, PM_PERIOD_DAY, IRKUTSK);
    int64_t d100 = pm_period_start(PM_PERIOD_DAY, 20100, IRKUTSK);
    int64_t d101 = pm_period_start(PM_PERIOD_DAY, 20101, IRKUTSK);
    spec s[] = {
        one("o1", d100 + HOUR, PM_TIME_NONE, 0, 0),        /* open 2 days */
        one("o2", d101 + HOUR, PM_TIME_NONE, 0, 0),        /* open since the last day */
        one("o3", d101 + 23 * HOUR, PM_TIME_NONE, 0, 0),
        one("a1", d100, d100 + 30 * HOUR, 0, 0),           /* answered late: not open */
        one("x1", d100 - 5 * DAY, PM_TIME_NONE, 0, 0),     /* before the range */
    };
    add_specs(&w, c, s, 5);
    pm_filter f = {.has_range = 1, .period_from = 20100, .period_to = 20101};
    pm_row *r;
    size_t n;
    /* default report time: the start of day 20102; overdue = created
     * before the start of day 20101 → o1 only */
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_DISTRICT, &f, &r, &n), PM_OK);
    assert_int_equal(r[0].count, 4);
    assert_int_equal(r[0].open, 3);
    assert_int_equal(r[0].overdue, 1);
    assert_near(r[0].overdue_share, 0.25, 0);
    pm_free(r);
    /* report at noon of day 20102: before noon of day 20101 → o1, o2 */
    f.report_time = d101 + DAY + 12 * HOUR;
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_DISTRICT, &f, &r, &n), PM_OK);
    assert_int_equal(r[0].overdue, 2);
    pm_free(r);
    /* exactly 24 h before the report is not yet overdue */
    f.report_time = d101 + 23 * HOUR + DAY;
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_DISTRICT, &f, &r, &n), PM_OK);
    assert_int_equal(r[0].overdue, 2);
    pm_free(r);
    f.report_time += 1;
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_DISTRICT, &f, &r, &n), PM_OK);
    assert_int_equal(r[0].overdue, 3);
    pm_free(r);
    pm_cube_free(c);
    world_close(&w);
}

static void change_against_previous_range(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    pm_cube *c = cube_new(&w, PM_PERIOD_DAY, 0);
    spec s[13];
    size_t n = 0;
    char id[16];
    int64_t day0 = pm_period_of(PM_PERIOD_DAY, T0, 0);
    const int days[] = {0, 3, 9, 9,  10, 11, 12, 15, 16, 19, 19,  20, 25};
    for (size_t i = 0; i < 13; i++) {
        snprintf(id, sizeof id, "p%zu", i);
        s[n++] = one(id, T0 + days[i] * DAY + HOUR, T0 + days[i] * DAY + 2 * HOUR, 0, 1);
    }
    add_specs(&w, c, s, n);
    pm_filter f = {.has_range = 1, .period_from = day0 + 10, .period_to = day0 + 19};
    pm_row *r;
    size_t nr;
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_DISTRICT, &f, &r, &nr), PM_OK);
    assert_int_equal(r[1].count, 7);
    assert_int_equal(r[1].prev_count, 4);
    assert_near(r[1].change_abs, 3, 0);
    assert_near(r[1].change_pct, 75, 0);
    assert_int_equal(r[0].prev_count, 0);
    assert_near(r[0].change_abs, 0, 0);
    assert_true(isnan(r[0].change_pct));
    pm_free(r);
    /* the first ten days: nothing before them */
    f.period_from = day0;
    f.period_to = day0 + 9;
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_DISTRICT, &f, &r, &nr), PM_OK);
    assert_int_equal(r[1].count, 4);
    assert_int_equal(r[1].prev_count, 0);
    assert_near(r[1].change_abs, 4, 0);
    assert_true(isnan(r[1].change_pct));
    pm_free(r);
    /* days 20..29 against 10..19: 2 vs 7 → −5, −71.43 % */
    f.period_from = day0 + 20;
    f.period_to = day0 + 29;
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_TOTAL, &f, &r, &nr), PM_OK);
    assert_near(r[0].change_abs, -5, 0);
    assert_near(r[0].change_pct, -500.0 / 7, 1e-12);
    pm_free(r);
    pm_cube_free(c);
    world_close(&w);
}

/* ---- rates, Empirical Bayes, ratings ------------------------------------------ */

/* n complaints in district d, answered after delay_h hours (open when < 0),
 * ids prefix-0, prefix-1, ... */
static size_t put_many(spec *s, size_t at, const char *prefix, size_t n, int32_t d, double delay_h,
                       const char *executor)
{
    char id[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(id, sizeof id, "%s-%zu", prefix, i);
        int64_t t = T0 + (int64_t)i * 60;
        s[at + i] = one(id, t, delay_h < 0 ? PM_TIME_NONE : t + (int64_t)(delay_h * HOUR), 0, d);
        s[at + i].executor = executor;
    }
    return at + n;
}

static double geodesic_square_km2(double lon, double lat)
{
    struct geod_geodesic g;
    struct geod_polygon p;
    double area = 0;
    geod_init(&g, 6378137, 1 / 298.257223563);
    geod_polygon_init(&p, 0);
    geod_polygon_addpoint(&g, &p, lat, lon);
    geod_polygon_addpoint(&g, &p, lat, lon + 1);
    geod_polygon_addpoint(&g, &p, lat + 1, lon + 1);
    geod_polygon_addpoint(&g, &p, lat + 1, lon);
    geod_polygon_compute(&g, &p, 0, 1, &area, NULL);
    return fabs(area) / 1e6;
}

static void rates_and_eb_by_hand(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    /* A: 5 complaints, population 10 000; B: 30, 20 000; C: 7, no
     * population; D: 40, 50 000.
     *   rates r = c/p: A 0.0005, B 0.0015, D 0.0008
     *   m  = Σc/Σp = 75/80 000 = 0.0009375
     *   s² = Σ p(r−m)² / Σp
     *      = (10 000·0.0004375² + 20 000·0.0005625² + 50 000·0.0001375²) / 80 000
     *      = (0.0019140625 + 0.006328125 + 0.0009453125) / 80 000 = 1.1484375e-7
     *   p̄  = 80 000 / 3;  m/p̄ = 3.515625e-8
     *   a  = s² − m/p̄ = 7.96875e-8
     *   w  = a / (a + m/p): A 7.96875/17.34375 = 17/37, B 7.96875/12.65625 = 17/27,
     *                       D 7.96875/9.84375 = 17/21
     *   r̃ ×10⁴ = w·r + (1−w)·m:  A (17·5 + 20·9.375)/37 = 545/74 = 7.3648648...
     *                            B (17·15 + 10·9.375)/27 = 155/12 = 12.91666...
     *                            D (17·8 + 4·9.375)/21 = 347/42 = 8.2619047...
     *   per_10k: A 5, B 15, D 8; C none.  per_km2 = count / geodesic area. */
    spec s[82];
    size_t n = 0;
    n = put_many(s, n, "a", 5, 0, 1, "x");
    n = put_many(s, n, "b", 30, 1, 1, "x");
    n = put_many(s, n, "c", 7, 2, 1, "x");
    n = put_many(s, n, "d", 40, 3, 1, "x");
    pm_cube *c = cube_new(&w, PM_PERIOD_DAY, 0);
    add_specs(&w, c, s, n);
    pm_row *r;
    size_t nr;
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_DISTRICT, NULL, &r, &nr), PM_OK);
    assert_near(r[0].per_10k, 5, 1e-12);
    assert_near(r[1].per_10k, 15, 1e-12);
    assert_near(r[3].per_10k, 8, 1e-12);
    assert_true(isnan(r[2].per_10k));
    assert_near(r[0].eb_per_10k, 545.0 / 74, 1e-9);
    assert_near(r[1].eb_per_10k, 155.0 / 12, 1e-9);
    assert_near(r[3].eb_per_10k, 347.0 / 42, 1e-9);
    assert_true(isnan(r[2].eb_per_10k));
    for (size_t d = 0; d < N_DISTRICTS; d++) {
        double km2 = geodesic_square_km2(DISTRICTS[d].lon, DISTRICTS[d].lat);
        assert_near(r[d].area_km2, km2, 1e-6);
        assert_near(pm_cube_district_area_km2(c, d), km2, 1e-6);
        assert_near(r[d].per_km2, (double)r[d].count / km2, 1e-12);
    }
    /* a 1° square at 50–51° N is about 7 900 km² */
    assert_true(r[0].area_km2 > 7800 && r[0].area_km2 < 8000);
    assert_true(isnan(pm_cube_district_area_km2(c, 99)));
    pm_free(r);
    pm_cube_free(c);
    world_close(&w);
}

static void eb_with_equal_rates_is_the_mean(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    /* counts proportional to population: s² = 0, a < 0 → 0, w = 0, r̃ = m */
    spec s[80];
    size_t n = 0;
    n = put_many(s, n, "a", 10, 0, 1, "x");
    n = put_many(s, n, "b", 20, 1, 1, "x");
    n = put_many(s, n, "d", 50, 3, 1, "x");
    pm_cube *c = cube_new(&w, PM_PERIOD_DAY, 0);
    add_specs(&w, c, s, n);
    pm_row *r;
    size_t nr;
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_DISTRICT, NULL, &r, &nr), PM_OK);
    for (size_t d = 0; d < N_DISTRICTS; d++)
        if (d != 2)
            assert_near(r[d].eb_per_10k, 10, 1e-12);
    pm_free(r);
    /* rates that differ less than chance explains: A 1/10 000, B 3/20 000,
     * D 4/50 000; m = 8/80 000 = 1e-4; s² = (20 000·(0.5e-4)² +
     * 50 000·(0.2e-4)²)/80 000 = 8.75e-10 < m/p̄ = 3.75e-9 → a = 0, w = 0,
     * every smoothed rate is m: 1 per 10 000 */
    pm_cube *low = cube_new(&w, PM_PERIOD_DAY, 0);
    n = 0;
    n = put_many(s, n, "a", 1, 0, 1, "x");
    n = put_many(s, n, "b", 3, 1, 1, "x");
    n = put_many(s, n, "d", 4, 3, 1, "x");
    add_specs(&w, low, s, n);
    assert_int_equal(pm_cube_query(w.ctx, low, PM_LEVEL_DISTRICT, NULL, &r, &nr), PM_OK);
    assert_near(r[0].per_10k, 1, 1e-12);
    assert_near(r[1].per_10k, 1.5, 1e-12);
    for (size_t d = 0; d < N_DISTRICTS; d++)
        if (d != 2)
            assert_near(r[d].eb_per_10k, 1, 1e-12);
    pm_free(r);
    pm_cube_free(low);
    /* an empty cube: m = 0, every smoothed rate 0 */
    pm_cube *e = cube_new(&w, PM_PERIOD_DAY, 0);
    assert_int_equal(pm_cube_query(w.ctx, e, PM_LEVEL_DISTRICT, NULL, &r, &nr), PM_OK);
    assert_int_equal(nr, N_DISTRICTS);
    assert_near(r[0].eb_per_10k, 0, 0);
    assert_int_equal(r[0].count, 0);
    assert_int_equal(r[0].rank, 0);
    pm_free(r);
    int64_t first, last;
    assert_int_equal(pm_cube_period_span(e, &first, &last), 0);
    pm_cube_free(e);
    pm_cube_free(c);
    world_close(&w);
}

static void executor_rating_by_hand(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    /* Executors X, Y, Z: 30 complaints each, answered in 1, 2, 3 h; W: 10
     * complaints (below the minimum sample of 30).  Speed z-scores over
     * X, Y, Z: mean 2, sd √(2/3) → −√1.5, 0, +√1.5; overdue shares all 0
     * (zero variance → 0).  Executors have no volume component, so
     * index = mean(z_speed, 0) = −√1.5/2, 0, +√1.5/2; Z ranks 1. */
    spec s[100];
    size_t n = 0;
    n = put_many(s, n, "x", 30, 0, 1, "X");
    n = put_many(s, n, "y", 30, 1, 2, "Y");
    n = put_many(s, n, "z", 30, 2, 3, "Z");
    n = put_many(s, n, "w", 10, 3, 9, "W");
    pm_cube *c = cube_new(&w, PM_PERIOD_DAY, 0);
    add_specs(&w, c, s, n);
    pm_row *r;
    size_t nr;
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_EXECUTOR, NULL, &r, &nr), PM_OK);
    assert_int_equal(nr, 4);
    double h = sqrt(1.5) / 2;
    assert_near(r[0].index, -h, 1e-12);
    assert_near(r[1].index, 0, 1e-12);
    assert_near(r[2].index, h, 1e-12);
    assert_int_equal(r[0].rank, 3);
    assert_int_equal(r[1].rank, 2);
    assert_int_equal(r[2].rank, 1);
    assert_true(isnan(r[3].index));
    assert_int_equal(r[3].rank, 0);
    pm_free(r);
    /* a smaller minimum sample rates W too: the slowest, rank 1 */
    pm_filter f = {.min_sample = 10};
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_EXECUTOR, &f, &r, &nr), PM_OK);
    assert_int_equal(r[3].rank, 1);
    assert_int_equal(r[2].rank, 2);
    pm_free(r);
    /* topic and total rows are never rated */
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_TOTAL, NULL, &r, &nr), PM_OK);
    assert_true(isnan(r[0].index));
    assert_int_equal(r[0].rank, 0);
    pm_free(r);
    pm_cube_free(c);
    world_close(&w);
}

/* z-scores over the rated rows, as docs/cube.md defines them. */
static void zscores(const pm_row *r, size_t n, const int *use, const double *x, double *zsum,
                    int *zn)
{
    double sum = 0, sq = 0;
    int k = 0;
    for (size_t i = 0; i < n; i++)
        if (use[i])
            sum += x[i], k++;
    if (!k)
        return;
    double mean = sum / k;
    for (size_t i = 0; i < n; i++)
        if (use[i])
            sq += (x[i] - mean) * (x[i] - mean);
    double sd = sqrt(sq / k);
    for (size_t i = 0; i < n; i++)
        if (use[i]) {
            zsum[i] += sd > 1e-12 * fabs(mean) && sd > 0 ? (x[i] - mean) / sd : 0;
            zn[i]++;
        }
    (void)r;
}

static void district_rating_uses_min_sample(void **state)
{
    (void)state;
    /* the world and a fifth district E (R2, population 40 000) */
    world w;
    world_open(&w);
    pm_districts_free(w.ctx, w.ds);
    dspec five[N_DISTRICTS + 1];
    memcpy(five, DISTRICTS, sizeof DISTRICTS);
    five[N_DISTRICTS] = (dspec){"E", "R2", 40000, 102, 50};
    w.ds = districts(w.ctx, five, N_DISTRICTS + 1);
    /* A: 30 fast (30 per 10 000); B: 80 slow (40); C (no population): 50,
     * medium, 10 of them open for long; D: 100 quick (20), the densest;
     * E: 5 complaints only — below 30, not rated. */
    spec s[270];
    size_t n = 0;
    n = put_many(s, n, "a", 30, 0, 0.5, "x");
    n = put_many(s, n, "b", 80, 1, 20, "x");
    n = put_many(s, n, "c", 40, 2, 5, "x");
    n = put_many(s, n, "co", 10, 2, -1, "x");
    n = put_many(s, n, "d", 100, 3, 2, "x");
    n = put_many(s, n, "e", 5, 4, 100, "x");
    pm_cube *c = cube_new(&w, PM_PERIOD_DAY, 0);
    add_specs(&w, c, s, n);
    pm_filter f = {.report_time = T0 + 10 * DAY};
    pm_row *r;
    size_t nr;
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_DISTRICT, &f, &r, &nr), PM_OK);
    assert_int_equal(nr, 5);
    assert_int_equal(r[4].rank, 0);
    assert_true(isnan(r[4].index));
    assert_int_equal(r[2].overdue, 10);
    /* the index again, from the row figures: volume = smoothed rate among
     * A, B, D (with population), density for C alone (one value: z 0);
     * speed and overdue share among A, B, C, D */
    int use_pop[5] = {1, 1, 0, 1, 0}, use_area[5] = {0, 0, 1, 0, 0}, use_all[5] = {1, 1, 1, 1, 0};
    double eb[5], km2[5], med[5], od[5], zsum[5] = {0};
    int zn[5] = {0};
    for (int i = 0; i < 5; i++) {
        eb[i] = r[i].eb_per_10k;
        km2[i] = r[i].per_km2;
        med[i] = r[i].median_h;
        od[i] = r[i].overdue_share;
    }
    zscores(r, 5, use_pop, eb, zsum, zn);
    zscores(r, 5, use_area, km2, zsum, zn);
    zscores(r, 5, use_all, med, zsum, zn);
    zscores(r, 5, use_all, od, zsum, zn);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(zn[i], 3);
        assert_near(r[i].index, zsum[i] / zn[i], 1e-12);
    }
    /* D is the densest but its rate is the lowest: by rate it is not
     * the worst on volume */
    assert_true(r[3].per_km2 > r[1].per_km2 && r[3].eb_per_10k < r[1].eb_per_10k);
    /* B: highest rate and slowest → worst; C: open ones overdue → second;
     * A and D: quick, moderate rates */
    assert_int_equal(r[1].rank, 1);
    assert_int_equal(r[2].rank, 2);
    assert_true(r[0].rank >= 3 && r[3].rank >= 3);
    pm_free(r);
    /* suppression hides nothing from the query, it only flags */
    f.min_count = 30;
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_DISTRICT, &f, &r, &nr), PM_OK);
    assert_int_equal(r[0].suppressed, 0);
    assert_int_equal(r[4].suppressed, 1);
    assert_int_equal(r[4].count, 5);
    pm_free(r);
    f.min_count = 31;
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_DISTRICT, &f, &r, &nr), PM_OK);
    assert_int_equal(r[0].suppressed, 1);
    assert_int_equal(r[0].count, 30);
    assert_int_equal(r[1].suppressed, 0);
    pm_free(r);
    pm_cube_free(c);
    world_close(&w);
}

static void rank_ties_go_to_the_lower_key(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    /* executors Q (first seen: key 0) and P (key 1) alike in every
     * component: equal index 0, Q ranks first by its key */
    spec s[60];
    size_t n = 0;
    n = put_many(s, n, "q", 30, 0, 2, "Q");
    n = put_many(s, n, "p", 30, 1, 2, "P");
    pm_cube *c = cube_new(&w, PM_PERIOD_DAY, 0);
    add_specs(&w, c, s, n);
    pm_row *r;
    size_t nr;
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_EXECUTOR, NULL, &r, &nr), PM_OK);
    assert_int_equal(nr, 2);
    assert_string_equal(pm_cube_dict_str(c, PM_DICT_EXECUTOR, 0), "Q");
    assert_near(r[0].index, 0, 0);
    assert_near(r[1].index, 0, 0);
    assert_int_equal(r[0].rank, 1);
    assert_int_equal(r[1].rank, 2);
    pm_free(r);
    pm_cube_free(c);
    world_close(&w);
}

/* ---- incremental, duplicates, snapshot -------------------------------------------- */

static void assert_rows_equal(const pm_row *a, const pm_row *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(a[i].key, b[i].key);
        assert_int_equal(a[i].count, b[i].count);
        assert_int_equal(a[i].answered, b[i].answered);
        assert_int_equal(a[i].answered_24h, b[i].answered_24h);
        assert_int_equal(a[i].open, b[i].open);
        assert_int_equal(a[i].overdue, b[i].overdue);
        assert_int_equal(a[i].prev_count, b[i].prev_count);
        assert_int_equal(a[i].rank, b[i].rank);
        assert_int_equal(a[i].suppressed, b[i].suppressed);
        const double *x[] = {&a[i].share_24h, &a[i].median_h, &a[i].p90_h, &a[i].overdue_share,
                             &a[i].area_km2, &a[i].population, &a[i].per_km2, &a[i].per_10k,
                             &a[i].eb_per_10k, &a[i].change_abs, &a[i].change_pct, &a[i].index};
        const double *y[] = {&b[i].share_24h, &b[i].median_h, &b[i].p90_h, &b[i].overdue_share,
                             &b[i].area_km2, &b[i].population, &b[i].per_km2, &b[i].per_10k,
                             &b[i].eb_per_10k, &b[i].change_abs, &b[i].change_pct, &b[i].index};
        for (size_t k = 0; k < sizeof x / sizeof *x; k++)
            assert_same_double(*x[k], *y[k]);
    }
}

/* Every level, with and without a range, gives equal rows in both cubes. */
static void assert_cubes_query_equal(world *w, const pm_cube *a, const pm_cube *b)
{
    int64_t first, last;
    assert_int_equal(pm_cube_period_span(a, &first, &last), 1);
    pm_filter fs[] = {{.min_sample = 20},
                      {.has_range = 1, .period_from = first + (last - first) / 3,
                       .period_to = first + 2 * (last - first) / 3,
                       .min_count = 3, .min_sample = 5}};
    for (size_t k = 0; k < 2; k++)
        for (int lv = PM_LEVEL_DISTRICT; lv <= PM_LEVEL_TOTAL; lv++) {
            pm_row *ra, *rb;
            size_t na, nb;
            assert_int_equal(pm_cube_query(w->ctx, a, lv, &fs[k], &ra, &na), PM_OK);
            assert_int_equal(pm_cube_query(w->ctx, b, lv, &fs[k], &rb, &nb), PM_OK);
            assert_int_equal(na, nb);
            assert_true(na > 0);
            assert_rows_equal(ra, rb, na);
            pm_free(ra);
            pm_free(rb);
        }
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(len ? (size_t)len : 1);
    assert_int_equal(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static void assert_files_equal(const char *p, const char *q)
{
    size_t n, m;
    unsigned char *a = slurp(p, &n), *b = slurp(q, &m);
    assert_int_equal(n, m);
    assert_memory_equal(a, b, n);
    free(a);
    free(b);
}

static void incremental_equals_full(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    spec *s = random_specs(6, 1, N_RANDOM);
    size_t half = N_RANDOM / 2;
    batch a = make_batch(w.ctx, s, half), b = make_batch(w.ctx, s + half, N_RANDOM - half);
    batch all = make_batch(w.ctx, s, N_RANDOM);
    pm_cube *inc = cube_new(&w, PM_PERIOD_DAY, IRKUTSK), *full = cube_new(&w, PM_PERIOD_DAY, IRKUTSK);
    assert_int_equal(pm_cube_add(w.ctx, inc, a.cs, a.pl, NULL, NULL, NULL), PM_OK);
    assert_int_equal(pm_cube_add(w.ctx, inc, b.cs, b.pl, NULL, NULL, NULL), PM_OK);
    assert_int_equal(pm_cube_add(w.ctx, full, all.cs, all.pl, NULL, NULL, NULL), PM_OK);
    assert_int_equal(pm_cube_total(inc), pm_cube_total(full));
    assert_int_equal(pm_cube_outside(inc), pm_cube_outside(full));
    assert_int_equal(pm_cube_cells(inc), pm_cube_cells(full));
    assert_cubes_query_equal(&w, inc, full);
    char p1[128], p2[128];
    assert_int_equal(pm_cube_write(w.ctx, inc, world_path(&w, "a.cube", p1)), PM_OK);
    assert_int_equal(pm_cube_write(w.ctx, full, world_path(&w, "b.cube", p2)), PM_OK);
    assert_files_equal(p1, p2);
    /* many small batches too (cells grow and move in their pools) */
    pm_cube *small = cube_new(&w, PM_PERIOD_DAY, IRKUTSK);
    for (size_t i = 0; i < N_RANDOM; i += 97) {
        size_t k = N_RANDOM - i < 97 ? N_RANDOM - i : 97;
        add_specs(&w, small, s + i, k);
    }
    assert_cubes_query_equal(&w, small, full);
    assert_int_equal(pm_cube_write(w.ctx, small, world_path(&w, "c.cube", p1)), PM_OK);
    assert_files_equal(p1, p2);
    pm_cube_free(small);
    batch_free(&a);
    batch_free(&b);
    batch_free(&all);
    free(s);
    pm_cube_free(inc);
    pm_cube_free(full);
    world_close(&w);
}

/* Few cells that grow batch after batch: their lists move in the pools
 * again and again, and the pools are compacted. */
static void many_small_batches_equal_one(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    spec *s = random_specs(15, 1, 4000);
    for (size_t i = 0; i < 4000; i++) {
        s[i].district = s[i].district < 0 ? -1 : (int32_t)(i % 2);
        s[i].source = "vk";
        s[i].status = "answered";
        s[i].executor = "ЖКХ";
        s[i].topic = 0;
    }
    pm_cube *one_go = cube_new(&w, PM_PERIOD_MONTH, 0), *drip = cube_new(&w, PM_PERIOD_MONTH, 0);
    add_specs(&w, one_go, s, 4000);
    for (size_t i = 0; i < 4000; i += 7)
        add_specs(&w, drip, s + i, 4000 - i < 7 ? 4000 - i : 7);
    assert_true(pm_cube_cells(drip) <= 2 * 3);
    assert_cubes_query_equal(&w, drip, one_go);
    char p1[128], p2[128];
    assert_int_equal(pm_cube_write(w.ctx, one_go, world_path(&w, "a.cube", p1)), PM_OK);
    assert_int_equal(pm_cube_write(w.ctx, drip, world_path(&w, "b.cube", p2)), PM_OK);
    assert_files_equal(p1, p2);
    free(s);
    pm_cube_free(one_go);
    pm_cube_free(drip);
    world_close(&w);
}

typedef struct rejects {
    size_t n;
    uint64_t line_sum;
    int bad;
    int stop_at;   /* > 0: return an error on that reject */
} rejects;

static int on_reject(void *user, uint64_t line, const char *id, const char *field, const char *reason)
{
    rejects *r = user;
    r->n++;
    r->line_sum += line;
    if (!id || strcmp(field, "id") != 0 || strcmp(reason, "duplicate id (already in the cube)") != 0)
        r->bad = 1;
    return r->stop_at && (int)r->n == r->stop_at ? PM_E_IO : 0;
}

typedef struct rejects_seen {
    size_t n;
    uint64_t line;
    char field[32], reason[64];
} rejects_seen;

static int on_any_reject(void *user, uint64_t line, const char *id, const char *field,
                         const char *reason)
{
    rejects_seen *r = user;
    (void)id;
    r->n++;
    r->line = line;
    snprintf(r->field, sizeof r->field, "%s", field);
    snprintf(r->reason, sizeof r->reason, "%s", reason);
    return 0;
}

/* Every reject's line and reason, in order. */
typedef struct reject_log {
    uint64_t line[N_RANDOM];
    char reason[N_RANDOM][48];
    size_t n;
} reject_log;

static int log_reject(void *user, uint64_t line, const char *id, const char *field,
                      const char *reason)
{
    reject_log *r = user;
    (void)id;
    (void)field;
    assert_true(r->n < N_RANDOM);
    r->line[r->n] = line;
    snprintf(r->reason[r->n++], sizeof r->reason[0], "%s", reason);
    return 0;
}

/* Complaints added to a batch that grows, and taken block by block while
 * it does (as 'problemap cube' does while reading), end in the same cube
 * as one add of the whole batch, with the same rejects in the same order:
 * into an empty cube and into one that already holds some of the ids. */
static void adder_blocks_equal_one_add(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    spec *s = random_specs(21, 1, N_RANDOM);
    s[N_RANDOM / 2].created = INT64_C(1) << 60;   /* a period beyond 32 bits: rejected */
    batch all = make_batch(w.ctx, s, N_RANDOM);
    static const size_t blocks[] = {1, 2, 7, 97, 500, 1000, 0};   /* then the rest */
    for (int held = 0; held < 2; held++) {
        pm_cube *one = cube_new(&w, PM_PERIOD_DAY, IRKUTSK);
        pm_cube *blk = cube_new(&w, PM_PERIOD_DAY, IRKUTSK);
        if (held) {   /* every third complaint is already in both */
            for (size_t i = 0; i < N_RANDOM; i += 3) {
                add_specs(&w, one, s + i, 1);
                add_specs(&w, blk, s + i, 1);
            }
        }
        static reject_log want, got;
        memset(&want, 0, sizeof want);
        memset(&got, 0, sizeof got);
        uint64_t added_one = 0, added_blk = 0;
        assert_int_equal(pm_cube_add(w.ctx, one, all.cs, all.pl, log_reject, &want, &added_one),
                         PM_OK);

        /* the growing batch: complaints and placements appended block by block,
         * into columns with room to spare (as the intake makes from a file's size) */
        pm_complaints *cs = pm_complaints_new();
        assert_int_equal(pm_complaints_reserve(w.ctx, cs, 2 * N_RANDOM), PM_OK);
        pm_cube_adder *a;
        assert_int_equal(pm_cube_adder_new(w.ctx, blk, cs, 0, &a), PM_OK);
        pm_placed pl = *all.pl;   /* borrows all's arrays: pl.n says how many are there */
        size_t to = 0;
        for (size_t k = 0; to < N_RANDOM; k++) {
            size_t len = blocks[k] ? blocks[k] : N_RANDOM;
            size_t end = to + len < N_RANDOM ? to + len : N_RANDOM;
            for (; to < end; to++) {
                pm_complaint c = {.id = s[to].id, .created_at = s[to].created,
                                  .answered_at = s[to].answered, .lon = NAN, .lat = NAN,
                                  .topic = s[to].topic, .source = s[to].source,
                                  .status = s[to].status, .executor = s[to].executor,
                                  .line = to + 2};
                assert_int_equal(pm_complaints_add(w.ctx, cs, &c), PM_OK);
            }
            pl.n = to;
            assert_int_equal(pm_cube_adder_take(w.ctx, a, &pl, to, log_reject, &got), PM_OK);
            /* nothing enters the cube before the end */
            assert_int_equal(pm_cube_total(blk), held ? pm_cube_total(one) - added_one : 0);
        }
        assert_int_equal(pm_cube_adder_finish(w.ctx, a, &added_blk), PM_OK);
        pm_cube_adder_free(a);
        assert_int_equal(added_blk, added_one);
        assert_true(added_one > 0);
        assert_int_equal(got.n, want.n);
        assert_true(want.n > (held ? N_RANDOM / 4 : 0));
        for (size_t i = 0; i < want.n; i++) {
            assert_int_equal(got.line[i], want.line[i]);
            assert_string_equal(got.reason[i], want.reason[i]);
        }
        assert_cubes_query_equal(&w, blk, one);
        /* the id set took no more memory than one add's: it grew with the ids,
         * not with the columns' spare room */
        assert_int_equal(blk->ids.nslots, one->ids.nslots);
        char p1[128], p2[128];
        assert_int_equal(pm_cube_write(w.ctx, blk, world_path(&w, "blk.cube", p1)), PM_OK);
        assert_int_equal(pm_cube_write(w.ctx, one, world_path(&w, "one.cube", p2)), PM_OK);
        assert_files_equal(p1, p2);
        pm_complaints_free(cs);
        pm_cube_free(one);
        pm_cube_free(blk);
    }
    batch_free(&all);
    free(s);
    world_close(&w);
}

/* Takes must go forward and stay within the batch and its placement; after
 * a failed one the adder only frees, and the cube never changed. */
static void adder_refuses_bad_takes(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    spec *s = random_specs(22, 1, 100);
    batch b = make_batch(w.ctx, s, 100);
    pm_cube *c = cube_new(&w, PM_PERIOD_DAY, 0);
    pm_cube_adder *a;
    assert_int_equal(pm_cube_adder_new(w.ctx, c, b.cs, 101, &a), PM_E_USAGE);
    assert_null(a);
    assert_int_equal(pm_cube_adder_new(w.ctx, c, b.cs, 10, &a), PM_OK);
    pm_placed pl = *b.pl;
    pl.n = 50;
    assert_int_equal(pm_cube_adder_take(w.ctx, a, &pl, 40, NULL, NULL), PM_OK);
    assert_int_equal(pm_cube_adder_take(w.ctx, a, &pl, 60, NULL, NULL), PM_E_USAGE);  /* unplaced */
    assert_int_equal(pm_cube_adder_take(w.ctx, a, &pl, 50, NULL, NULL), PM_E_USAGE);  /* failed before */
    assert_int_equal(pm_cube_adder_finish(w.ctx, a, NULL), PM_E_USAGE);
    pm_cube_adder_free(a);
    assert_int_equal(pm_cube_adder_new(w.ctx, c, b.cs, 10, &a), PM_OK);
    assert_int_equal(pm_cube_adder_take(w.ctx, a, &pl, 40, NULL, NULL), PM_OK);
    assert_int_equal(pm_cube_adder_take(w.ctx, a, &pl, 39, NULL, NULL), PM_E_USAGE);  /* backwards */
    pm_cube_adder_free(a);
    assert_int_equal(pm_cube_total(c), 0);
    assert_int_equal(pm_cube_cells(c), 0);
    /* a range: complaints 10 to 40 only */
    uint64_t added = 0;
    assert_int_equal(pm_cube_add_range(w.ctx, c, b.cs, b.pl, 10, 40, NULL, NULL, &added), PM_OK);
    size_t want = 0;
    for (size_t i = 10; i < 40; i++)
        want += s[i].placement <= PM_PLACE_BY_CODE;
    assert_int_equal(added, want);
    assert_int_equal(pm_cube_total(c), want);
    pm_cube_free(c);
    batch_free(&b);
    free(s);
    world_close(&w);
}

static void readding_a_batch_changes_nothing(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    spec *s = random_specs(7, 1, 500);
    batch b = make_batch(w.ctx, s, 500);
    pm_cube *c = cube_new(&w, PM_PERIOD_DAY, 0);
    uint64_t added;
    rejects rj = {0};
    assert_int_equal(pm_cube_add(w.ctx, c, b.cs, b.pl, on_reject, &rj, &added), PM_OK);
    assert_int_equal(rj.n, 0);
    uint64_t total = pm_cube_total(c), outside = pm_cube_outside(c);
    size_t taken = 0, lines = 0;   /* placed or outside: every one is remembered */
    for (size_t i = 0; i < 500; i++)
        if (s[i].placement != PM_PLACE_UNKNOWN_CODE) {
            taken++;
            lines += i + 2;
        }
    char p1[128], p2[128];
    assert_int_equal(pm_cube_write(w.ctx, c, world_path(&w, "a.cube", p1)), PM_OK);
    assert_int_equal(pm_cube_add(w.ctx, c, b.cs, b.pl, on_reject, &rj, &added), PM_OK);
    assert_int_equal(added, 0);
    assert_int_equal(rj.n, taken);
    assert_int_equal(rj.line_sum, lines);
    assert_int_equal(rj.bad, 0);
    assert_int_equal(pm_cube_total(c), total);
    assert_int_equal(pm_cube_outside(c), outside);
    assert_int_equal(pm_cube_write(w.ctx, c, world_path(&w, "b.cube", p2)), PM_OK);
    assert_files_equal(p1, p2);
    /* a batch overlapping the cube: only the new ones enter */
    spec *more = random_specs(7, 1, 600);   /* same first 500, 100 new */
    batch m = make_batch(w.ctx, more, 600);
    rejects rj2 = {0};
    assert_int_equal(pm_cube_add(w.ctx, c, m.cs, m.pl, on_reject, &rj2, &added), PM_OK);
    assert_int_equal(rj2.n, taken);
    uint64_t placed_new = 0;
    for (size_t i = 500; i < 600; i++)
        placed_new += more[i].district >= 0;
    assert_int_equal(added, placed_new);
    assert_int_equal(pm_cube_total(c), total + placed_new);
    /* a reject callback that fails stops the add and leaves the cube alone */
    spec *other = random_specs(8, 1, 50);   /* ids c0000001.. again, other content */
    batch o = make_batch(w.ctx, other, 50);
    rejects stop = {.stop_at = 3};
    assert_int_equal(pm_cube_add(w.ctx, c, o.cs, o.pl, on_reject, &stop, &added), PM_E_IO);
    assert_int_equal(added, 0);
    assert_int_equal(pm_cube_total(c), total + placed_new);
    batch_free(&o);
    free(other);
    batch_free(&m);
    free(more);
    batch_free(&b);
    free(s);
    pm_cube_free(c);
    world_close(&w);
}

/* A fingerprint of the cells in the cube's own order, lists unsorted: two
 * cubes that agree here hold the same cells and lists in the same order. */
static void fold(uint64_t *h, const void *p, size_t n)
{
    for (const unsigned char *b = p; n--; b++)
        *h = (*h ^ *b) * 1099511628211ULL;
}

static void fold_str(uint64_t *h, const char *s)
{
    fold(h, s ? s : "\x01", s ? strlen(s) + 1 : 1);
}

static int fold_cell(void *user, const pm_cube_cell *c)
{
    uint64_t *h = user;
    fold(h, &c->district, sizeof c->district);
    fold(h, &c->topic, sizeof c->topic);
    fold(h, &c->period, sizeof c->period);
    fold_str(h, c->source);
    fold_str(h, c->status);
    fold_str(h, c->executor);
    fold(h, &c->answered, sizeof c->answered);
    fold(h, &c->answered_24h, sizeof c->answered_24h);
    fold(h, &c->open, sizeof c->open);
    fold(h, c->delays_s, c->answered * sizeof *c->delays_s);
    fold(h, c->open_created, c->open * sizeof *c->open_created);
    return 0;
}

static uint64_t cells_fingerprint(const pm_cube *c)
{
    uint64_t h = 1469598103934665603ULL;
    assert_int_equal(pm_cube_each_cell(c, fold_cell, &h), 0);
    return h;
}

/* The first add into an empty cube adopts the batch's cells and ids; a
 * second batch with duplicates must then merge into them exactly as into
 * a cube built batch by batch (here in chunks of 97: only the first chunk
 * is adopted). */
static void adopting_then_merging_equals_chunks(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    spec *s = random_specs(21, 1, 900);   /* 1..600 first, 301..900 second */
    batch first = make_batch(w.ctx, s, 600), second = make_batch(w.ctx, s + 300, 600);
    pm_cube *adopted = cube_new(&w, PM_PERIOD_DAY, IRKUTSK);
    rejects rj1 = {0}, rj2 = {0};
    uint64_t added1, added2;
    assert_int_equal(pm_cube_add(w.ctx, adopted, first.cs, first.pl, on_reject, &rj1, &added1),
                     PM_OK);
    assert_int_equal(rj1.n, 0);
    assert_int_equal(pm_cube_add(w.ctx, adopted, second.cs, second.pl, on_reject, &rj2, &added2),
                     PM_OK);
    size_t dups = 0, lines = 0;   /* 301..600 taken by the first batch come back */
    for (size_t i = 300; i < 600; i++)
        if (s[i].placement != PM_PLACE_UNKNOWN_CODE) {
            dups++;
            lines += i - 300 + 2;
        }
    assert_int_equal(rj2.n, dups);
    assert_int_equal(rj2.line_sum, lines);
    assert_int_equal(rj2.bad, 0);
    pm_cube *chunks = cube_new(&w, PM_PERIOD_DAY, IRKUTSK);
    for (size_t i = 0; i < 900; i += 97)
        add_specs(&w, chunks, s + i, 900 - i < 97 ? 900 - i : 97);
    assert_int_equal(pm_cube_total(adopted), pm_cube_total(chunks));
    assert_int_equal(added1 + added2, pm_cube_total(chunks));
    assert_int_equal(pm_cube_outside(adopted), pm_cube_outside(chunks));
    assert_int_equal(pm_cube_cells(adopted), pm_cube_cells(chunks));
    assert_true(cells_fingerprint(adopted) == cells_fingerprint(chunks));
    assert_cubes_query_equal(&w, adopted, chunks);
    char p1[128], p2[128];
    assert_int_equal(pm_cube_write(w.ctx, adopted, world_path(&w, "a.cube", p1)), PM_OK);
    assert_int_equal(pm_cube_write(w.ctx, chunks, world_path(&w, "b.cube", p2)), PM_OK);
    assert_files_equal(p1, p2);
    batch_free(&first);
    batch_free(&second);
    free(s);
    pm_cube_free(adopted);
    pm_cube_free(chunks);
    world_close(&w);
}

/* A cube that so far holds only outside complaints has no cells but does
 * have ids: it is not adopted over, and those ids are still duplicates. */
static void outside_only_cube_keeps_its_ids(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    spec out[] = {one("a", T0, T0 + HOUR, 0, -1), one("b", T0, PM_TIME_NONE, 1, -1)};
    spec in[] = {one("b", T0, T0 + HOUR, 0, 0), one("c", T0 + DAY, PM_TIME_NONE, 1, 2),
                 one("a", T0, T0 + HOUR, 0, 1)};
    pm_cube *c = cube_new(&w, PM_PERIOD_DAY, 0);
    add_specs(&w, c, out, 2);
    assert_int_equal(pm_cube_cells(c), 0);
    assert_int_equal(pm_cube_outside(c), 2);
    batch b = make_batch(w.ctx, in, 3);
    rejects rj = {0};
    uint64_t added;
    assert_int_equal(pm_cube_add(w.ctx, c, b.cs, b.pl, on_reject, &rj, &added), PM_OK);
    assert_int_equal(added, 1);
    assert_int_equal(rj.n, 2);
    assert_int_equal(rj.line_sum, 2 + 4);
    assert_int_equal(pm_cube_total(c), 1);
    assert_int_equal(pm_cube_cells(c), 1);
    assert_int_equal(pm_cube_outside(c), 2);
    batch_free(&b);
    pm_cube_free(c);
    world_close(&w);
}

static void snapshot_round_trip(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    spec *s = random_specs(9, 1, N_RANDOM);
    pm_cube *c = cube_new(&w, PM_PERIOD_WEEK, IRKUTSK);
    add_specs(&w, c, s, N_RANDOM);
    char p1[128], p2[128];
    assert_int_equal(pm_cube_write(w.ctx, c, world_path(&w, "a.cube", p1)), PM_OK);
    pm_cube *r = NULL;
    assert_int_equal(pm_cube_read(w.ctx, p1, w.ds, N_TOPICS, &r), PM_OK);
    assert_non_null(r);
    assert_int_equal(pm_cube_total(r), pm_cube_total(c));
    assert_int_equal(pm_cube_outside(r), pm_cube_outside(c));
    assert_int_equal(pm_cube_cells(r), pm_cube_cells(c));
    assert_int_equal(pm_cube_options(r)->period, PM_PERIOD_WEEK);
    assert_int_equal(pm_cube_options(r)->utc_offset_s, IRKUTSK);
    int64_t f1, l1, f2, l2;
    assert_int_equal(pm_cube_period_span(c, &f1, &l1), 1);
    assert_int_equal(pm_cube_period_span(r, &f2, &l2), 1);
    assert_int_equal(f1, f2);
    assert_int_equal(l1, l2);
    for (int col = 0; col < 3; col++) {
        assert_int_equal(pm_cube_dict_count(r, col), pm_cube_dict_count(c, col));
        for (uint32_t i = 0; i < pm_cube_dict_count(c, col); i++)
            assert_string_equal(pm_cube_dict_str(r, col, i), pm_cube_dict_str(c, col, i));
    }
    assert_cubes_query_equal(&w, c, r);
    assert_int_equal(pm_cube_write(w.ctx, r, world_path(&w, "b.cube", p2)), PM_OK);
    assert_files_equal(p1, p2);
    /* the read cube remembers the ids: adding the batch again adds nothing */
    batch b = make_batch(w.ctx, s, N_RANDOM);
    uint64_t added = 1;
    assert_int_equal(pm_cube_add(w.ctx, r, b.cs, b.pl, NULL, NULL, &added), PM_OK);
    assert_int_equal(added, 0);
    /* ... and takes new ones like the original */
    spec *more = random_specs(10, N_RANDOM + 1, 400);
    add_specs(&w, r, more, 400);
    add_specs(&w, c, more, 400);
    assert_cubes_query_equal(&w, c, r);
    free(more);
    batch_free(&b);
    free(s);
    pm_cube_free(r);
    pm_cube_free(c);
    world_close(&w);
}

/* The reader for queries gives the cube pm_cube_read() gives, without the
 * ids: it answers every query alike, and refuses to add or be written. */
/* How many of this process's mappings are of the file at path (its
 * absolute form; "(deleted)" after it was removed counts too). */
static int mappings_of(const char *path)
{
    char abs[PATH_MAX + 1] = "", line[PATH_MAX + 256];
    if (path[0] != '/') {
        assert_non_null(getcwd(abs, sizeof abs - strlen(path) - 2));
        strcat(abs, "/");
    }
    strcat(abs, path);
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        char *name = strchr(line, '/');
        size_t len = strlen(abs);
        if (name && strncmp(name, abs, len) == 0 && (name[len] == '\n' || name[len] == ' '))
            n++;
    }
    fclose(f);
    return n;
}

/* A snapshot kept inside another file: written to a stream, read from
 * memory that the caller keeps (the lists stay in it, it is never freed or
 * unmapped by the cube), the same bytes and the same answers as the file's. */
static void snapshot_in_memory(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    spec *s = random_specs(12, 1, N_RANDOM);
    pm_cube *c = cube_new(&w, PM_PERIOD_WEEK, IRKUTSK);
    add_specs(&w, c, s, N_RANDOM);
    char p[128];
    assert_int_equal(pm_cube_write(w.ctx, c, world_path(&w, "a.cube", p)), PM_OK);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(pm_cube_write_stream(w.ctx, c, f, "memory"), PM_OK);
    assert_int_equal(fclose(f), 0);
    FILE *ff = fopen(p, "rb");
    assert_non_null(ff);
    unsigned char *file = malloc(len + 1);
    assert_non_null(file);
    assert_int_equal(fread(file, 1, len + 1, ff), len);   /* the whole file, no more */
    fclose(ff);
    assert_memory_equal(file, buf, len);
    /* in place from an aligned copy (malloc's: never to be unmapped) */
    unsigned char *region = aligned_alloc(64, (len + 63) / 64 * 64);
    assert_non_null(region);
    memcpy(region, buf, len);
    pm_cube *q = NULL;
    assert_int_equal(pm_cube_read_query_only_region(w.ctx, "region", region, len, w.ds, N_TOPICS, &q),
                     PM_OK);
    assert_true(q->map == region && q->map_borrowed);
    assert_cubes_query_equal(&w, c, q);
    pm_cube_free(q);
    assert_memory_equal(region, buf, len);   /* left as it was, still ours */
    /* damage is named with the name given; an odd address is refused */
    region[len / 2] ^= 1;
    assert_int_equal(pm_cube_read_query_only_region(w.ctx, "region", region, len, w.ds, N_TOPICS, &q),
                     PM_E_INPUT);
    assert_null(q);
    assert_non_null(strstr(pm_ctx_errmsg(w.ctx), "region"));
    memcpy(region + 8, buf, len - 8);
    assert_int_equal(pm_cube_read_query_only_region(w.ctx, "odd", region + 4, len - 8, w.ds,
                                                    N_TOPICS, &q), PM_E_USAGE);
    free(region);
    free(file);
    free(buf);
    free(s);
    pm_cube_free(c);
    world_close(&w);
}

static void snapshot_read_for_queries(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    spec *s = random_specs(9, 1, N_RANDOM);
    pm_cube *c = cube_new(&w, PM_PERIOD_WEEK, IRKUTSK);
    add_specs(&w, c, s, N_RANDOM);
    char p[128];
    assert_int_equal(pm_cube_write(w.ctx, c, world_path(&w, "a.cube", p)), PM_OK);
    pm_cube *q = NULL;
    assert_int_equal(pm_cube_read_query_only(w.ctx, p, w.ds, N_TOPICS, &q), PM_OK);
    assert_int_equal(pm_cube_total(q), pm_cube_total(c));
    assert_int_equal(pm_cube_outside(q), pm_cube_outside(c));
    assert_int_equal(pm_cube_cells(q), pm_cube_cells(c));
    assert_int_equal(pm_cube_options(q)->utc_offset_s, IRKUTSK);
    assert_cubes_query_equal(&w, c, q);
    /* it never adds: no id set, no key map of its cells */
    assert_int_equal(q->ids.nslots, 0);
    assert_int_equal(q->st.nslots, 0);
    /* it keeps no ids, so it can neither check a batch nor be written */
    batch b = make_batch(w.ctx, s, 10);
    uint64_t added = 7;
    assert_int_equal(pm_cube_add(w.ctx, q, b.cs, b.pl, NULL, NULL, &added), PM_E_USAGE);
    assert_non_null(strstr(pm_ctx_errmsg(w.ctx), "keeps no ids"));
    char p2[128];
    assert_int_equal(pm_cube_write(w.ctx, q, world_path(&w, "b.cube", p2)), PM_E_USAGE);
    assert_int_equal(access(p2, F_OK), -1);
    assert_cubes_query_equal(&w, c, q);   /* nothing changed */
    /* its lists are the file's, in place: the file stays mapped while the
     * cube lives (removed meanwhile, it still answers), and no longer after */
    assert_int_equal(mappings_of(p), 1);
    assert_int_equal(unlink(p), 0);
    assert_cubes_query_equal(&w, c, q);
    pm_cube_free(q);
    assert_int_equal(mappings_of(p), 0);
    /* a cube read to be added to keeps no mapping */
    assert_int_equal(pm_cube_write(w.ctx, c, p), PM_OK);
    pm_cube *r = NULL;
    assert_int_equal(pm_cube_read(w.ctx, p, w.ds, N_TOPICS, &r), PM_OK);
    assert_int_equal(mappings_of(p), 0);
    pm_cube_free(r);
    batch_free(&b);
    free(s);
    pm_cube_free(c);
    world_close(&w);
}

/* A snapshot of format version 1 (tests/fixtures/cube: one CRC-32 over
 * the file, written by the build before version 2) reads as it did, with
 * both readers, and written again (version 2) reads back the same. */
static void snapshot_version_1_still_reads(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    static const dspec abc[] = {{"A", "R", 1000, 0, 0}, {"B", "R", 1000, 1, 0},
                                {"C", "R", 1000, 2, 0}};
    pm_districts *ds = districts(w.ctx, abc, 3);
    const char *v1 = "tests/fixtures/cube/v1_week.pmc";
    size_t n;
    unsigned char *b = slurp(v1, &n);
    assert_memory_equal(b, "PMCUBE\0\0\1\0\0\0", 12);
    free(b);
    pm_cube *c = NULL, *q = NULL, *again = NULL;
    assert_int_equal(pm_cube_read(w.ctx, v1, ds, 3, &c), PM_OK);
    assert_int_equal(pm_cube_total(c), 4);
    assert_int_equal(pm_cube_outside(c), 1);
    assert_int_equal(pm_cube_options(c)->period, PM_PERIOD_WEEK);
    assert_int_equal(pm_cube_read_query_only(w.ctx, v1, ds, 3, &q), PM_OK);
    assert_int_equal(mappings_of(v1), 0);   /* version 1: the lists are copied */
    assert_cubes_query_equal(&w, c, q);
    char p[128];
    assert_int_equal(pm_cube_write(w.ctx, c, world_path(&w, "v2.cube", p)), PM_OK);
    assert_int_equal(pm_cube_read(w.ctx, p, ds, 3, &again), PM_OK);
    assert_int_equal(pm_cube_total(again), 4);
    assert_int_equal(pm_cube_outside(again), 1);
    assert_int_equal(pm_cube_cells(again), pm_cube_cells(c));
    assert_cubes_query_equal(&w, c, again);
    /* a version 1 file damaged is refused as before */
    b = slurp(v1, &n);
    b[n / 2] ^= 0x10;
    char bad[128];
    spit(world_path(&w, "v1bad.cube", bad), b, n);
    pm_cube *r = (pm_cube *)1;
    assert_int_equal(pm_cube_read_query_only(w.ctx, bad, ds, 3, &r), PM_E_INPUT);
    assert_non_null(strstr(pm_ctx_errmsg(w.ctx), "checksum mismatch — the file is damaged"));
    assert_null(r);
    free(b);
    pm_cube_free(again);
    pm_cube_free(q);
    pm_cube_free(c);
    pm_districts_free(w.ctx, ds);
    world_close(&w);
}

/* Hashes in increasing order go where pm_idset_put() puts them, also
 * when the last ones crowd the top of the table and wrap to its start. */
static void idset_ascending_puts_as_put_does(void **state)
{
    (void)state;
    enum { N = 900 };
    uint64_t *h = malloc(N * sizeof *h);
    uint64_t x = 88172645463325292ull;
    for (int i = 0; i < N; i++) {   /* xorshift64; a third crowd the top 1/64 */
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        h[i] = i % 3 ? x : x | ~(UINT64_MAX >> 6);
        h[i] |= 1;
    }
    qsort(h, N, sizeof *h, cmp_u64);   /* repeats are skipped below */
    pm_idset a = {0}, b = {0};
    assert_int_equal(pm_idset_reserve(&a, N), 0);
    assert_int_equal(pm_idset_reserve(&b, N), 0);
    assert_int_equal(a.nslots, b.nslots);
    size_t at = 0, n = 0;
    for (int i = 0; i < N; i++) {
        if (i && h[i] == h[i - 1])
            continue;
        pm_idset_put(&a, h[i]);
        pm_idset_put_ascending(&b, h[i], &at);
        n++;
    }
    assert_int_equal(b.n, n);
    assert_true(b.slots[0] != 0);   /* the crowd at the top wrapped */
    assert_memory_equal(a.slots, b.slots, a.nslots * sizeof *a.slots);
    for (int i = 0; i < N; i++)
        assert_true(pm_idset_has(&b, h[i]));
    assert_false(pm_idset_has(&b, 2));
    pm_idset_free(&a);
    pm_idset_free(&b);
    free(h);
}

static void long_strings_survive_the_snapshot(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    char *longname = malloc(5001);
    memset(longname, 'x', 5000);
    longname[5000] = '\0';
    spec s[] = {one("a", T0, T0 + HOUR, 0, 0), one("b", T0, T0 + HOUR, 0, 1)};
    s[1].executor = longname;
    pm_cube *c = cube_new(&w, PM_PERIOD_DAY, 0);
    add_specs(&w, c, s, 2);
    char p[128];
    assert_int_equal(pm_cube_write(w.ctx, c, world_path(&w, "a.cube", p)), PM_OK);
    pm_cube *r;
    assert_int_equal(pm_cube_read(w.ctx, p, w.ds, N_TOPICS, &r), PM_OK);
    assert_string_equal(pm_cube_dict_str(r, PM_DICT_EXECUTOR, 1), longname);
    pm_cube_free(r);
    pm_cube_free(c);
    free(longname);
    world_close(&w);
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Version 2 (docs/cube.md): the header's fields (96 bytes), a table of five
 * sections (offset, length, XXH3-64 each) and the header's XXH3-64. */
enum { SEC_STRINGS, SEC_CELLS, SEC_DELAYS, SEC_OPENS, SEC_IDS, N_SEC, TABLE = 96,
       HEADER_HASH = TABLE + 24 * N_SEC };
static size_t sec_off(const unsigned char *b, int i)
{
    return (size_t)get64(b + TABLE + 24 * i);
}

static size_t sec_len(const unsigned char *b, int i)
{
    return (size_t)get64(b + TABLE + 24 * i + 8);
}

/* Fresh hashes for every section that lies within the n bytes, then for
 * the header: what a crafted file would carry. */
static void reseal(unsigned char *b, size_t n)
{
    for (int i = 0; i < N_SEC; i++)
        if (sec_off(b, i) <= n && sec_len(b, i) <= n - sec_off(b, i))
            put64(b + TABLE + 24 * i + 16, XXH3_64bits(b + sec_off(b, i), sec_len(b, i)));
    put64(b + HEADER_HASH, XXH3_64bits(b, HEADER_HASH));
}

/* Writes b (n bytes) to bad.cube, resealed when reseal, and reads it with
 * both readers: the status, and the message must contain want.  But when
 * only_full, the damage is in what the reader for queries does not read
 * (the id hashes): it must read the file, and equal what good_path gives. */
static void expect_read(world *w, unsigned char *b, size_t n, int reseal_it, int code,
                        const char *want, int only_full)
{
    char p[128];
    if (reseal_it)
        reseal(b, n);
    spit(world_path(w, "bad.cube", p), b, n);
    for (int query_only = 0; query_only < 2; query_only++) {
        pm_cube *c = (pm_cube *)1;
        int rc = (query_only ? pm_cube_read_query_only : pm_cube_read)(w->ctx, p, w->ds, N_TOPICS,
                                                                        &c);
        if (query_only && only_full) {
            assert_int_equal(rc, PM_OK);
            assert_true(pm_cube_total(c) > 0);
            pm_cube_free(c);
            continue;
        }
        if (rc != code || !strstr(pm_ctx_errmsg(w->ctx), want))
            fail_msg("%s: status %d, message \"%s\"; wanted %d and \"%s\"",
                     query_only ? "pm_cube_read_query_only" : "pm_cube_read", rc,
                     pm_ctx_errmsg(w->ctx), code, want);
        assert_null(c);
    }
}

static void expect_read_error(world *w, unsigned char *b, size_t n, int reseal_it, int code,
                              const char *want)
{
    expect_read(w, b, n, reseal_it, code, want, 0);
}

static void snapshot_damage_is_refused(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    spec *s = random_specs(11, 1, 800);
    pm_cube *c = cube_new(&w, PM_PERIOD_DAY, IRKUTSK);
    add_specs(&w, c, s, 800);
    char p[128];
    assert_int_equal(pm_cube_write(w.ctx, c, world_path(&w, "a.cube", p)), PM_OK);
    size_t n;
    unsigned char *good = slurp(p, &n), *b = malloc(n);
    /* the header's hash and each section's; the header names the size */
    assert_memory_equal(good, "PMCUBE\0\0\2\0\0\0", 12);
    assert_int_equal(get64(good + 16), n);
    assert_true(get64(good + HEADER_HASH) == XXH3_64bits(good, HEADER_HASH));
    for (int i = 0; i < N_SEC; i++) {
        assert_int_equal(sec_off(good, i) % 8, 0);
        assert_true(get64(good + TABLE + 24 * i + 16) ==
                    XXH3_64bits(good + sec_off(good, i), sec_len(good, i)));
    }
    assert_int_equal(sec_off(good, SEC_IDS) + sec_len(good, SEC_IDS), n);

    static const char *const where[N_SEC] = {"strings", "cells", "answer times", "open times",
                                            "id hashes"};
    for (int i = 0; i < N_SEC; i++) {   /* one bit in each section */
        char want[96];
        snprintf(want, sizeof want, "checksum mismatch — the file is damaged (in its %s)",
                 where[i]);
        memcpy(b, good, n);
        b[sec_off(good, i) + sec_len(good, i) / 2] ^= 0x10;
        expect_read(&w, b, n, 0, PM_E_INPUT, want, i == SEC_IDS);
    }
    memcpy(b, good, n);
    b[44] ^= 1;   /* the cells' count */
    expect_read_error(&w, b, n, 0, PM_E_INPUT, "checksum mismatch — the file is damaged (in its "
                                               "header)");
    memcpy(b, good, n);
    expect_read_error(&w, b, n - 100, 0, PM_E_INPUT, "truncated");
    expect_read_error(&w, b, 50, 0, PM_E_INPUT, "truncated");
    expect_read_error(&w, b, 200, 0, PM_E_INPUT, "truncated (200 bytes, less than a header)");
    memcpy(b, good, n);
    b[0] = 'X';
    expect_read_error(&w, b, n, 0, PM_E_INPUT, "not a problemap cube");
    expect_read_error(&w, (unsigned char *)"{\"type\": \"Feature\"}", 19, 0, PM_E_INPUT,
                      "not a problemap cube");
    memcpy(b, good, n);
    b[8] = 3;
    expect_read_error(&w, b, n, 0, PM_E_INPUT, "version 3 is not supported");
    /* the zeros between sections are checked too (no hash covers them) */
    size_t gap = sec_off(good, SEC_STRINGS) + sec_len(good, SEC_STRINGS);
    assert_true(gap < sec_off(good, SEC_CELLS));   /* this cube's strings leave a gap */
    memcpy(b, good, n);
    b[gap] = 1;
    expect_read_error(&w, b, n, 0, PM_E_INPUT, "padding after the strings is not zero");
    /* a section table that disagrees with the counts, under valid hashes */
    memcpy(b, good, n);
    put64(b + TABLE + 24 * SEC_OPENS, sec_off(good, SEC_OPENS) + 8);
    expect_read_error(&w, b, n, 1, PM_E_INPUT, "the open times are not where the counts put them");
    memcpy(b, good, n);
    put64(b + TABLE + 8, sec_len(good, SEC_STRINGS) - 8);   /* the strings' length */
    expect_read_error(&w, b, n, 1, PM_E_INPUT, "the cells are not where the counts put them");
    /* absurd counts under a valid checksum: refused before any allocation */
    memcpy(b, good, n);
    put64(b + 40, UINT64_MAX / 2);   /* cells */
    expect_read_error(&w, b, n, 1, PM_E_INPUT, "cells do not fit");
    memcpy(b, good, n);
    put64(b + 48, (uint64_t)1 << 61);   /* answered */
    expect_read_error(&w, b, n, 1, PM_E_INPUT, "do not fit");
    memcpy(b, good, n);
    put64(b + 64, (uint64_t)1 << 62);   /* ids */
    expect_read_error(&w, b, n, 1, PM_E_INPUT, "damaged cube");
    memcpy(b, good, n);
    put32(b + 80, 0xFFFFFFF0u);   /* sources */
    expect_read_error(&w, b, n, 1, PM_E_INPUT, "damaged cube");
    free(b);
    free(good);
    /* other districts: one more, or the same count with another id */
    static const dspec other[] = {{"A", "R1", 1, 100, 50}, {"B", "R1", 1, 101, 50},
                                  {"C", "R2", 1, 100, 51}, {"E", "R2", 1, 101, 51}};
    pm_districts *ds2 = districts(w.ctx, other, 4);
    pm_cube *r = (pm_cube *)1;
    assert_int_equal(pm_cube_read(w.ctx, p, ds2, N_TOPICS, &r), PM_E_INPUT_VALUE);
    assert_non_null(strstr(pm_ctx_errmsg(w.ctx), "built over other districts"));
    assert_non_null(strstr(pm_ctx_errmsg(w.ctx), "\"D\", here \"E\""));
    assert_null(r);
    pm_districts_free(w.ctx, ds2);
    pm_districts *ds3 = districts(w.ctx, DISTRICTS, 3);
    assert_int_equal(pm_cube_read(w.ctx, p, ds3, N_TOPICS, &r), PM_E_INPUT_VALUE);
    assert_non_null(strstr(pm_ctx_errmsg(w.ctx), "built over other districts (4 districts, here 3)"));
    pm_districts_free(w.ctx, ds3);
    assert_int_equal(pm_cube_read(w.ctx, p, w.ds, N_TOPICS + 1, &r), PM_E_INPUT_VALUE);
    assert_non_null(strstr(pm_ctx_errmsg(w.ctx), "topics"));
    assert_int_equal(pm_cube_read(w.ctx, "/nonexistent/x.cube", w.ds, N_TOPICS, &r), PM_E_IO);
    assert_non_null(strstr(pm_ctx_errmsg(w.ctx), "/nonexistent/x.cube"));
    /* the file is mapped: an empty one, and one that is not a file */
    expect_read_error(&w, (unsigned char *)"", 0, 0, PM_E_INPUT, "truncated (0 bytes");
    char elsewhere[128];   /* the world's directory, then a FIFO in it */
    world_path(&w, "", elsewhere);
    assert_int_equal(pm_cube_read(w.ctx, elsewhere, w.ds, N_TOPICS, &r), PM_E_IO);
    assert_non_null(strstr(pm_ctx_errmsg(w.ctx), "not a regular file"));
    assert_null(r);
    assert_int_equal(mkfifo(world_path(&w, "fifo", elsewhere), 0600), 0);   /* no writer: no wait */
    alarm(10);   /* a reader that waits for a writer is killed, not hung */
    assert_int_equal(pm_cube_read(w.ctx, elsewhere, w.ds, N_TOPICS, &r), PM_E_IO);
    alarm(0);
    assert_non_null(strstr(pm_ctx_errmsg(w.ctx), "not a regular file"));
    unlink(elsewhere);
    free(s);
    pm_cube_free(c);
    world_close(&w);
}

/* A crafted file with a valid checksum whose cells break the rules. */
static void snapshot_inconsistent_cells_are_refused(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    spec s[] = {one("a", T0, T0 + HOUR, 1, 0), one("b", T0 + DAY, PM_TIME_NONE, 2, 3)};
    pm_cube *c = cube_new(&w, PM_PERIOD_DAY, 0);
    add_specs(&w, c, s, 2);
    char p[128];
    assert_int_equal(pm_cube_write(w.ctx, c, world_path(&w, "a.cube", p)), PM_OK);
    size_t n;
    unsigned char *good = slurp(p, &n), *b = malloc(n);
    size_t cells = sec_off(good, SEC_CELLS), delays = sec_off(good, SEC_DELAYS);
    memcpy(b, good, n);
    put32(b + cells, 7);   /* district 7 of 4 */
    expect_read_error(&w, b, n, 1, PM_E_INPUT, "refers to what the cube has not");
    memcpy(b, good, n);
    put32(b + cells + 40, 0);   /* second cell now sorts before the first */
    b[cells + 40 + 4] = 0;
    expect_read_error(&w, b, n, 1, PM_E_INPUT, "out of order");
    memcpy(b, good, n);
    put32(b + cells + 28, 5);   /* answered within 24 h > answered */
    expect_read_error(&w, b, n, 1, PM_E_INPUT, "refers to what the cube has not");
    memcpy(b, good, n);
    put32(b + delays, 90000);   /* the one delay: now beyond 24 h */
    expect_read_error(&w, b, n, 1, PM_E_INPUT, "answered within 24 h does not match");
    /* the two id hashes (the last section) swapped, or the same twice: only
     * the reader that keeps them reads them */
    assert_int_equal(sec_off(good, SEC_IDS), n - 16);
    unsigned char *ids = b + n - 16;
    memcpy(b, good, n);
    memcpy(ids, good + n - 8, 8);
    memcpy(ids + 8, good + n - 16, 8);
    expect_read(&w, b, n, 1, PM_E_INPUT, "id hashes out of order", 1);
    memcpy(b, good, n);
    memcpy(ids, ids + 8, 8);
    expect_read(&w, b, n, 1, PM_E_INPUT, "id hashes out of order", 1);
    free(b);
    free(good);
    pm_cube_free(c);
    world_close(&w);
}

/* ---- locate → cube ------------------------------------------------------------ */

static void placed_by_the_locator(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    pm_complaints *cs = pm_complaints_new();
    const double pts[][2] = {{100.5, 50.5}, {101.5, 50.5}, {101.5, 51.5}, {101.5, 51.6},
                             {120, 10}};
    for (size_t i = 0; i < 5; i++) {
        char id[8];
        snprintf(id, sizeof id, "L%zu", i);
        pm_complaint cp = {.id = id, .created_at = T0, .answered_at = PM_TIME_NONE,
                           .lon = pts[i][0], .lat = pts[i][1], .topic = 1, .line = i + 1};
        assert_int_equal(pm_complaints_add(w.ctx, cs, &cp), PM_OK);
    }
    pm_locator *loc;
    pm_placed *pl;
    assert_int_equal(pm_locator_new(w.ctx, w.ds, 0, &loc), PM_OK);
    assert_int_equal(pm_locate_batch(w.ctx, loc, cs, 1, &pl), PM_OK);
    pm_cube *c = cube_new(&w, PM_PERIOD_MONTH, 0);
    assert_int_equal(pm_cube_add(w.ctx, c, cs, pl, NULL, NULL, NULL), PM_OK);
    assert_int_equal(pm_cube_total(c), 4);
    assert_int_equal(pm_cube_outside(c), 1);
    pm_row *r;
    size_t n;
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_DISTRICT, NULL, &r, &n), PM_OK);
    assert_int_equal(r[0].count, 1);
    assert_int_equal(r[1].count, 1);
    assert_int_equal(r[2].count, 0);
    assert_int_equal(r[3].count, 2);
    pm_free(r);
    pm_cube_free(c);
    pm_placed_free(pl);
    pm_locator_free(w.ctx, loc);
    pm_complaints_free(cs);
    world_close(&w);
}

/* ---- usage errors ------------------------------------------------------------------ */

static void bad_arguments_are_usage_errors(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    pm_cube *c = NULL;
    pm_cube_opts bad_kind = {(pm_period_kind)7, 0}, bad_off = {PM_PERIOD_DAY, 20 * HOUR};
    assert_int_equal(pm_cube_new(w.ctx, w.ds, 0, NULL, &c), PM_E_USAGE);
    assert_int_equal(pm_cube_new(w.ctx, w.ds, 70000, NULL, &c), PM_E_USAGE);
    assert_int_equal(pm_cube_new(w.ctx, w.ds, N_TOPICS, &bad_kind, &c), PM_E_USAGE);
    assert_int_equal(pm_cube_new(w.ctx, w.ds, N_TOPICS, &bad_off, &c), PM_E_USAGE);
    assert_null(c);
    c = cube_new(&w, PM_PERIOD_DAY, 0);
    spec s[] = {one("a", T0, T0 + HOUR, 1, 0), one("b", T0, T0 + HOUR, 1, 1)};
    add_specs(&w, c, s, 2);
    pm_row *r = (pm_row *)1;
    size_t n = 9;
    uint16_t topic = N_TOPICS;
    uint32_t src = 5;
    pm_filter ft = {.topics = &topic, .n_topics = 1}, fs = {.sources = &src, .n_sources = 1},
              fr = {.has_range = 1, .period_from = 5, .period_to = 4};
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_DISTRICT, &ft, &r, &n), PM_E_USAGE);
    assert_null(r);
    assert_int_equal(n, 0);
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_DISTRICT, &fs, &r, &n), PM_E_USAGE);
    assert_non_null(strstr(pm_ctx_errmsg(w.ctx), "source"));
    assert_int_equal(pm_cube_query(w.ctx, c, PM_LEVEL_DISTRICT, &fr, &r, &n), PM_E_USAGE);
    assert_non_null(strstr(pm_ctx_errmsg(w.ctx), "empty"));
    assert_int_equal(pm_cube_query(w.ctx, c, (pm_level)9, NULL, &r, &n), PM_E_USAGE);
    /* a batch whose placement does not fit */
    batch b = make_batch(w.ctx, s, 2);
    b.pl->district[1] = 4;
    assert_int_equal(pm_cube_add(w.ctx, c, b.cs, b.pl, NULL, NULL, NULL), PM_E_USAGE);
    b.pl->district[1] = -1;   /* inside, but in no district */
    assert_int_equal(pm_cube_add(w.ctx, c, b.cs, b.pl, NULL, NULL, NULL), PM_E_USAGE);
    b.pl->n = 1;
    assert_int_equal(pm_cube_add(w.ctx, c, b.cs, b.pl, NULL, NULL, NULL), PM_E_USAGE);
    b.pl->n = 2;
    batch_free(&b);
    spec t[] = {one("t", T0, T0, N_TOPICS, 0)};
    batch bt = make_batch(w.ctx, t, 1);
    assert_int_equal(pm_cube_add(w.ctx, c, bt.cs, bt.pl, NULL, NULL, NULL), PM_E_USAGE);
    assert_non_null(strstr(pm_ctx_errmsg(w.ctx), "line 2: topic 5"));
    batch_free(&bt);
    assert_int_equal(pm_cube_total(c), 2);
    pm_cube_free(c);
    world_close(&w);
}

static void dates_beyond_the_periods_are_rejected(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    /* day 2^40 does not fit a cell's 32-bit period: rejected, not kept */
    spec s[] = {one("far", (int64_t)1 << 56, PM_TIME_NONE, 0, 0), one("near", T0, T0 + HOUR, 0, 0)};
    batch b = make_batch(w.ctx, s, 2);
    pm_cube *c = cube_new(&w, PM_PERIOD_DAY, 0);
    rejects_seen rj = {0};
    uint64_t added;
    assert_int_equal(pm_cube_add(w.ctx, c, b.cs, b.pl, on_any_reject, &rj, &added), PM_OK);
    assert_int_equal(added, 1);
    assert_int_equal(rj.n, 1);
    assert_string_equal(rj.field, "created_at");
    assert_string_equal(rj.reason, "date out of range");
    assert_int_equal(rj.line, 2);
    batch_free(&b);
    pm_cube_free(c);
    world_close(&w);
}

/* ---- allocation failures ----------------------------------------------------------- */

static void new_survives_alloc_failures(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    int failures = 0;
    for (long n = 1;; n++) {
        pm_cube *c = (pm_cube *)1;
        pm_alloc_fail_at(n);
        int rc = pm_cube_new(w.ctx, w.ds, N_TOPICS, NULL, &c);
        long made = pm_alloc_count();
        pm_alloc_fail_at(0);
        if (rc == PM_OK) {
            pm_cube_free(c);
            if (n > made)
                break;
            continue;
        }
        failures++;
        assert_int_equal(rc, PM_E_NOMEM);
        assert_null(c);
    }
    assert_true(failures >= 4);
    world_close(&w);
}

/* How add_under_every_failure adds: PM_OK or the error, *added set. */
typedef int (*add_fn)(world *w, pm_cube *c, const batch *b, uint64_t *added);

static int add_whole(world *w, pm_cube *c, const batch *b, uint64_t *added)
{
    return pm_cube_add(w->ctx, c, b->cs, b->pl, NULL, NULL, added);
}

/* Through an adder, in blocks of 37. */
static int add_in_blocks(world *w, pm_cube *c, const batch *b, uint64_t *added)
{
    *added = 0;
    size_t n = pm_complaints_count(b->cs);
    pm_cube_adder *ad = NULL;
    int rc = pm_cube_adder_new(w->ctx, c, b->cs, 0, &ad);
    for (size_t to = 0; rc == PM_OK && to < n;) {
        to = to + 37 < n ? to + 37 : n;
        rc = pm_cube_adder_take(w->ctx, ad, b->pl, to, NULL, NULL);
    }
    if (rc == PM_OK)
        rc = pm_cube_adder_finish(w->ctx, ad, added);
    pm_cube_adder_free(ad);
    return rc;
}

/* Adds `add` into a fresh cube (period k) that holds `first` beforehand
 * (NULL: an empty cube, the adopting path), making the Nth allocation fail
 * for every N until the add needs fewer: a failure must be a clean
 * PM_E_NOMEM that leaves the cube as it was, and adding again must give
 * the snapshot at ref byte for byte.  Returns how many adds failed. */
static int add_under_every_failure(world *w, pm_period_kind k, const batch *first,
                                   const batch *add, const char *ref, add_fn how)
{
    char p[128];
    int failures = 0;
    for (long n = 1;; n++) {
        pm_cube *c = cube_new(w, k, IRKUTSK);
        if (first)
            assert_int_equal(pm_cube_add(w->ctx, c, first->cs, first->pl, NULL, NULL, NULL), PM_OK);
        uint64_t total = pm_cube_total(c), outside = pm_cube_outside(c);
        size_t cells = pm_cube_cells(c);
        uint64_t added = 99;
        pm_alloc_fail_at(n);
        int rc = how(w, c, add, &added);
        long made = pm_alloc_count();
        pm_alloc_fail_at(0);
        if (rc != PM_OK) {
            failures++;
            assert_int_equal(rc, PM_E_NOMEM);
            assert_int_equal(added, 0);
            assert_int_equal(pm_cube_total(c), total);
            assert_int_equal(pm_cube_outside(c), outside);
            assert_int_equal(pm_cube_cells(c), cells);
            assert_int_equal(pm_cube_add(w->ctx, c, add->cs, add->pl, NULL, NULL, NULL), PM_OK);
        }
        assert_int_equal(pm_cube_write(w->ctx, c, world_path(w, "b.cube", p)), PM_OK);
        assert_files_equal(ref, p);
        pm_cube_free(c);
        if (rc == PM_OK && n > made)
            return failures;
    }
}

/* A failed add leaves the cube as it was; adding again then gives the
 * same cube, byte for byte, as without the failure. */
static void add_survives_alloc_failures(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    spec *s = random_specs(12, 1, 400);
    batch a = make_batch(w.ctx, s, 200), b = make_batch(w.ctx, s + 200, 200);
    char ref[128];
    pm_cube *want = cube_new(&w, PM_PERIOD_DAY, IRKUTSK);
    assert_int_equal(pm_cube_add(w.ctx, want, a.cs, a.pl, NULL, NULL, NULL), PM_OK);
    assert_int_equal(pm_cube_add(w.ctx, want, b.cs, b.pl, NULL, NULL, NULL), PM_OK);
    assert_int_equal(pm_cube_write(w.ctx, want, world_path(&w, "a.cube", ref)), PM_OK);
    assert_true(add_under_every_failure(&w, PM_PERIOD_DAY, &a, &b, ref, add_whole) >= 5);
    batch_free(&a);
    batch_free(&b);
    free(s);
    pm_cube_free(want);
    world_close(&w);
}

/* The adder taking blocks of 37 under every allocation failure (in a
 * take or in the finish), into a cube holding some complaints and into an
 * empty one: the cube is as before, and adding again gives the cube made
 * without failures, byte for byte. */
static void adder_survives_alloc_failures(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    spec *s = random_specs(14, 1, 300);
    batch a = make_batch(w.ctx, s, 100), b = make_batch(w.ctx, s + 100, 200);
    char ref[128], ref_b[128];
    pm_cube *want = cube_new(&w, PM_PERIOD_DAY, IRKUTSK), *want_b = cube_new(&w, PM_PERIOD_DAY, IRKUTSK);
    assert_int_equal(pm_cube_add(w.ctx, want, a.cs, a.pl, NULL, NULL, NULL), PM_OK);
    assert_int_equal(pm_cube_add(w.ctx, want, b.cs, b.pl, NULL, NULL, NULL), PM_OK);
    assert_int_equal(pm_cube_add(w.ctx, want_b, b.cs, b.pl, NULL, NULL, NULL), PM_OK);
    assert_int_equal(pm_cube_write(w.ctx, want, world_path(&w, "a.cube", ref)), PM_OK);
    assert_int_equal(pm_cube_write(w.ctx, want_b, world_path(&w, "ab.cube", ref_b)), PM_OK);
    assert_true(add_under_every_failure(&w, PM_PERIOD_DAY, &a, &b, ref, add_in_blocks) >= 5);
    assert_true(add_under_every_failure(&w, PM_PERIOD_DAY, NULL, &b, ref_b, add_in_blocks) >= 5);
    batch_free(&a);
    batch_free(&b);
    free(s);
    pm_cube_free(want);
    pm_cube_free(want_b);
    world_close(&w);
}

/* The same for the first add into an empty cube (the adopting path): a
 * failure leaves it empty. */
static void first_add_survives_alloc_failures(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    spec *s = random_specs(13, 1, 300);
    batch a = make_batch(w.ctx, s, 300);
    char ref[128];
    pm_cube *want = cube_new(&w, PM_PERIOD_WEEK, IRKUTSK);
    assert_int_equal(pm_cube_add(w.ctx, want, a.cs, a.pl, NULL, NULL, NULL), PM_OK);
    assert_int_equal(pm_cube_write(w.ctx, want, world_path(&w, "a.cube", ref)), PM_OK);
    assert_true(add_under_every_failure(&w, PM_PERIOD_WEEK, NULL, &a, ref, add_whole) >= 5);
    batch_free(&a);
    free(s);
    pm_cube_free(want);
    world_close(&w);
}

static void query_survives_alloc_failures(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    spec *s = random_specs(13, 1, 500);
    pm_cube *c = cube_new(&w, PM_PERIOD_DAY, 0);
    add_specs(&w, c, s, 500);
    uint16_t topics[] = {1, 2};
    uint32_t src = 0;
    pm_filter f = {.topics = topics, .n_topics = 2, .sources = &src, .n_sources = 1,
                   .min_sample = 5};
    for (int lv = PM_LEVEL_DISTRICT; lv <= PM_LEVEL_TOTAL; lv++) {
        pm_row *want;
        size_t nw;
        assert_int_equal(pm_cube_query(w.ctx, c, lv, &f, &want, &nw), PM_OK);
        int failures = 0;
        for (long n = 1;; n++) {
            pm_row *r = (pm_row *)1;
            size_t nr = 9;
            pm_alloc_fail_at(n);
            int rc = pm_cube_query(w.ctx, c, lv, &f, &r, &nr);
            long made = pm_alloc_count();
            pm_alloc_fail_at(0);
            if (rc == PM_OK) {
                assert_int_equal(nr, nw);
                assert_rows_equal(r, want, nr);
                pm_free(r);
                if (n > made)
                    break;
                continue;
            }
            failures++;
            assert_int_equal(rc, PM_E_NOMEM);
            assert_null(r);
            assert_int_equal(nr, 0);
        }
        assert_true(failures >= 4);
        pm_free(want);
    }
    free(s);
    pm_cube_free(c);
    world_close(&w);
}

static void write_and_read_survive_alloc_failures(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    spec *s = random_specs(14, 1, 500);
    pm_cube *c = cube_new(&w, PM_PERIOD_DAY, 0);
    add_specs(&w, c, s, 500);
    char ref[128], p[128];
    assert_int_equal(pm_cube_write(w.ctx, c, world_path(&w, "a.cube", ref)), PM_OK);
    world_path(&w, "b.cube", p);
    int failures = 0;
    for (long n = 1;; n++) {
        unlink(p);
        pm_alloc_fail_at(n);
        int rc = pm_cube_write(w.ctx, c, p);
        long made = pm_alloc_count();
        pm_alloc_fail_at(0);
        if (rc == PM_OK) {
            assert_files_equal(ref, p);
            if (n > made)
                break;
            continue;
        }
        failures++;
        assert_int_equal(rc, PM_E_NOMEM);
        assert_int_equal(access(p, F_OK), -1);   /* nothing half-written */
    }
    assert_true(failures >= 3);
    failures = 0;
    for (long n = 1;; n++) {
        pm_cube *r = (pm_cube *)1;
        pm_alloc_fail_at(n);
        int rc = pm_cube_read(w.ctx, ref, w.ds, N_TOPICS, &r);
        long made = pm_alloc_count();
        pm_alloc_fail_at(0);
        if (rc == PM_OK) {
            assert_int_equal(pm_cube_write(w.ctx, r, p), PM_OK);
            assert_files_equal(ref, p);
            pm_cube_free(r);
            if (n > made)
                break;
            continue;
        }
        failures++;
        assert_int_equal(rc, PM_E_NOMEM);
        assert_null(r);
    }
    assert_true(failures >= 5);
    free(s);
    pm_cube_free(c);
    world_close(&w);
}

/* A cube that keeps no ids (one batch, never written) is the same cube
 * as one that does, cell for cell and row for row, with the same rejects;
 * it holds no id, and refuses a second batch and being written. */
static void cube_keeping_no_ids_is_the_same_cube(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    spec *s = random_specs(31, 1, N_RANDOM);
    s[N_RANDOM / 3].created = INT64_C(1) << 60;   /* a period beyond 32 bits: rejected */
    batch all = make_batch(w.ctx, s, N_RANDOM);
    pm_cube *ids = cube_new(&w, PM_PERIOD_WEEK, IRKUTSK);
    pm_cube *none = cube_new(&w, PM_PERIOD_WEEK, IRKUTSK);
    assert_int_equal(pm_cube_keep_no_ids(w.ctx, none), PM_OK);
    static reject_log want, got;
    memset(&want, 0, sizeof want);
    memset(&got, 0, sizeof got);
    uint64_t added_ids = 0, added_none = 0;
    assert_int_equal(pm_cube_add(w.ctx, ids, all.cs, all.pl, log_reject, &want, &added_ids),
                     PM_OK);
    /* block by block, as 'problemap cube' adds */
    pm_cube_adder *a;
    assert_int_equal(pm_cube_adder_new(w.ctx, none, all.cs, 0, &a), PM_OK);
    assert_int_equal(pm_cube_adder_take(w.ctx, a, all.pl, N_RANDOM / 2, log_reject, &got), PM_OK);
    assert_int_equal(pm_cube_adder_take(w.ctx, a, all.pl, N_RANDOM, log_reject, &got), PM_OK);
    assert_int_equal(pm_cube_adder_finish(w.ctx, a, &added_none), PM_OK);
    pm_cube_adder_free(a);
    assert_int_equal(added_none, added_ids);
    assert_int_equal(pm_cube_total(none), pm_cube_total(ids));
    assert_int_equal(pm_cube_outside(none), pm_cube_outside(ids));
    assert_int_equal(pm_cube_cells(none), pm_cube_cells(ids));
    assert_true(cells_fingerprint(none) == cells_fingerprint(ids));
    assert_cubes_query_equal(&w, none, ids);
    assert_int_equal(got.n, 1);
    assert_int_equal(want.n, 1);
    assert_int_equal(got.line[0], want.line[0]);
    assert_string_equal(got.reason[0], "date out of range");
    assert_int_equal(none->ids.n, 0);
    assert_true(ids->ids.n > 0);
    /* one batch only, and no snapshot */
    uint64_t total = pm_cube_total(none);
    assert_int_equal(pm_cube_add(w.ctx, none, all.cs, all.pl, NULL, NULL, NULL), PM_E_USAGE);
    assert_int_equal(pm_cube_adder_new(w.ctx, none, all.cs, 0, &a), PM_E_USAGE);
    assert_int_equal(pm_cube_total(none), total);
    char path[128];
    assert_int_equal(pm_cube_write(w.ctx, none, world_path(&w, "none.cube", path)), PM_E_USAGE);
    assert_int_equal(access(path, F_OK), -1);
    /* only a cube that has taken nothing */
    assert_int_equal(pm_cube_keep_no_ids(w.ctx, ids), PM_E_USAGE);
    pm_cube *outside = cube_new(&w, PM_PERIOD_WEEK, IRKUTSK);
    spec out = one("o", T0, PM_TIME_NONE, 0, -1);
    add_specs(&w, outside, &out, 1);
    assert_int_equal(pm_cube_keep_no_ids(w.ctx, outside), PM_E_USAGE);
    pm_cube_free(outside);
    pm_cube_free(ids);
    pm_cube_free(none);
    batch_free(&all);
    free(s);
    world_close(&w);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counts_match_brute_force),
        cmocka_unit_test(totals_count_placed_and_outside),
        cmocka_unit_test(regions_and_total_sum_their_districts),
        cmocka_unit_test(each_filter_matches_brute_force),
        cmocka_unit_test(executor_rows_skip_complaints_without_one),
        cmocka_unit_test(percentiles_are_nearest_rank),
        cmocka_unit_test(percentiles_match_sorted_arrays_on_random_data),
        cmocka_unit_test(select_is_the_sorted_kth),
        cmocka_unit_test(overdue_counts_against_report_time),
        cmocka_unit_test(change_against_previous_range),
        cmocka_unit_test(rates_and_eb_by_hand),
        cmocka_unit_test(eb_with_equal_rates_is_the_mean),
        cmocka_unit_test(executor_rating_by_hand),
        cmocka_unit_test(district_rating_uses_min_sample),
        cmocka_unit_test(rank_ties_go_to_the_lower_key),
        cmocka_unit_test(incremental_equals_full),
        cmocka_unit_test(adder_blocks_equal_one_add),
        cmocka_unit_test(adder_refuses_bad_takes),
        cmocka_unit_test(many_small_batches_equal_one),
        cmocka_unit_test(readding_a_batch_changes_nothing),
        cmocka_unit_test(adopting_then_merging_equals_chunks),
        cmocka_unit_test(outside_only_cube_keeps_its_ids),
        cmocka_unit_test(cube_keeping_no_ids_is_the_same_cube),
        cmocka_unit_test(snapshot_round_trip),
        cmocka_unit_test(snapshot_read_for_queries),
        cmocka_unit_test(snapshot_in_memory),
        cmocka_unit_test(snapshot_version_1_still_reads),
        cmocka_unit_test(idset_ascending_puts_as_put_does),
        cmocka_unit_test(long_strings_survive_the_snapshot),
        cmocka_unit_test(snapshot_damage_is_refused),
        cmocka_unit_test(snapshot_inconsistent_cells_are_refused),
        cmocka_unit_test(placed_by_the_locator),
        cmocka_unit_test(bad_arguments_are_usage_errors),
        cmocka_unit_test(dates_beyond_the_periods_are_rejected),
        cmocka_unit_test(new_survives_alloc_failures),
        cmocka_unit_test(add_survives_alloc_failures),
        cmocka_unit_test(first_add_survives_alloc_failures),
        cmocka_unit_test(adder_survives_alloc_failures),
        cmocka_unit_test(query_survives_alloc_failures),
        cmocka_unit_test(write_and_read_survive_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
