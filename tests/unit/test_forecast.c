/* test_forecast.c — forecasts and surge alerts: quantiles worked by hand,
 * backtest coverage near nominal on seeded Poisson and over-dispersed
 * series, constant and short series, the surge rule and its minimum count,
 * series read from a weekly cube (counts, a planted surge flagged and
 * nothing else, the range option), usage errors and allocation failures.
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
#include "../../engine/pm_forecast.h"
#include "../../engine/pm_hotspot.h"
#include "../../engine/pm_locate.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WEEK_S (7 * 86400LL)

/* ---- a seeded generator (splitmix64) ------------------------------------------ */

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

/* Knuth's product method (rates here are <= 200). */
static uint64_t poisson(uint64_t *s, double rate)
{
    double limit = exp(-rate), prod = uniform(s);
    uint64_t k = 0;
    while (prod > limit) {
        prod *= uniform(s);
        k++;
    }
    return k;
}

static pm_forecast_row series_row(pm_ctx *ctx, const uint64_t *y, size_t n,
                                  const pm_forecast_opts *o)
{
    pm_forecast_row r;
    assert_int_equal(pm_forecast_series(ctx, y, n, o, &r), PM_OK);
    return r;
}

/* ---- quantiles ---------------------------------------------------------------- */

/* Poisson(2): CDF 0.135 0.406 0.677 0.857 0.947 0.983. */
static void quantile_poisson_by_hand(void **state)
{
    (void)state;
    assert_int_equal(pm_forecast_quantile(2, 0, 0.10), 0);
    assert_int_equal(pm_forecast_quantile(2, 0, 0.14), 1);
    assert_int_equal(pm_forecast_quantile(2, 0, 0.50), 2);
    assert_int_equal(pm_forecast_quantile(2, 0, 0.90), 4);
    assert_int_equal(pm_forecast_quantile(2, 0, 0.975), 5);
    assert_int_equal(pm_forecast_quantile(0, 0, 0.975), 0);
}

/* Dispersion 1 at mean 2 is the geometric with P(0) = 1/3:
 * CDF(y) = 1 − (2/3)^(y+1), so q(0.9) = 5 and q(0.975) = 9. */
static void quantile_negative_binomial_by_hand(void **state)
{
    (void)state;
    assert_int_equal(pm_forecast_quantile(2, 1, 0.30), 0);
    assert_int_equal(pm_forecast_quantile(2, 1, 0.34), 1);
    assert_int_equal(pm_forecast_quantile(2, 1, 0.90), 5);
    assert_int_equal(pm_forecast_quantile(2, 1, 0.975), 9);
}

/* A mean of 1000 starts the sum in log space (e^-1000 is below a double):
 * about 1000 ± 1.96 · 31.6.  Beyond a mean of 10⁶ the normal
 * approximation: 4·10⁶ ± 1.96 · 2000. */
static void quantile_large_mean_is_normal(void **state)
{
    (void)state;
    uint64_t q = pm_forecast_quantile(1000, 0, 0.975);
    assert_true(q >= 1060 && q <= 1064);
    q = pm_forecast_quantile(1000, 0, 0.025);
    assert_true(q >= 936 && q <= 940);
    uint64_t hi = pm_forecast_quantile(4e6, 0, 0.975), lo = pm_forecast_quantile(4e6, 0, 0.025);
    assert_true(hi >= 4003918 && hi <= 4003922);
    assert_true(lo >= 3996078 && lo <= 3996082);
}

/* ---- coverage -------------------------------------------------------------------- */

typedef struct pooled {
    size_t n, in80, in95, surges, series;
    double abs_err, abs_naive;
} pooled;

static void pool(pooled *p, const pm_forecast_row *r)
{
    p->n += r->bt_n;
    p->in80 += r->bt_in80;
    p->in95 += r->bt_in95;
    p->abs_err += r->bt_mae * (double)r->bt_n;
    p->abs_naive += r->bt_mae_naive * (double)r->bt_n;
    p->surges += (size_t)r->surge;
    p->series++;
}

static const double RATES[] = {1, 3, 8, 20, 50};

/* 400 series of two years, each at a constant rate picked from RATES;
 * mix_low > 0 makes every week's rate rate·mix_low or rate·(2 − mix_low)
 * at random (a gamma-free over-dispersed mixture). */
static pooled simulate(pm_ctx *ctx, uint64_t seed, double mix_low)
{
    enum { N_SERIES = 400, N_WEEKS = 104 };
    uint64_t s = seed, y[N_WEEKS];
    pooled p = {0};
    for (size_t i = 0; i < N_SERIES; i++) {
        double rate = RATES[next_u64(&s) % 5];
        for (size_t t = 0; t < N_WEEKS; t++) {
            double f = mix_low > 0 ? (uniform(&s) < 0.5 ? mix_low : 2 - mix_low) : 1;
            y[t] = poisson(&s, rate * f);
        }
        pm_forecast_row r = series_row(ctx, y, N_WEEKS, NULL);
        pool(&p, &r);
    }
    return p;
}

static void poisson_series_cover_near_nominal(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    pooled p = simulate(ctx, 42, 0);
    double c80 = (double)p.in80 / (double)p.n, c95 = (double)p.in95 / (double)p.n;
    printf("# Poisson: %zu forecasts, coverage 80%%: %.3f, 95%%: %.3f, MAE %.3f (naive %.3f), "
           "surges %zu of %zu\n",
           p.n, c80, c95, p.abs_err / (double)p.n, p.abs_naive / (double)p.n, p.surges,
           p.series);
    assert_int_equal(p.n, 400 * (104 - 8));
    assert_true(c95 >= 0.93 && c95 <= 0.99);
    assert_true(c80 >= 0.77 && c80 <= 0.90);
    assert_true(p.abs_err < 0.8 * p.abs_naive);   /* smoothing beats last week's count */
    assert_true(p.surges <= 400 * 3 / 100);       /* the 97.5 % bound: ≈ 2.5 % false alarms */
    pm_ctx_free(ctx);
}

/* Variance rate + 0.25 rate²: Poisson intervals would cover far too
 * little at rate 50; the estimated dispersion keeps coverage near nominal. */
static void overdispersed_series_cover_near_nominal(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    pooled p = simulate(ctx, 7, 0.5);
    double c80 = (double)p.in80 / (double)p.n, c95 = (double)p.in95 / (double)p.n;
    printf("# over-dispersed: coverage 80%%: %.3f, 95%%: %.3f\n", c80, c95);
    assert_true(c95 >= 0.90 && c95 <= 0.99);
    assert_true(c80 >= 0.74 && c80 <= 0.90);
    uint64_t y[104], s = 3;
    for (size_t t = 0; t < 104; t++)
        y[t] = poisson(&s, 50 * (uniform(&s) < 0.5 ? 0.5 : 1.5));
    pm_forecast_row r = series_row(ctx, y, 104, NULL);
    assert_true(r.dispersion > 0.1 && r.dispersion < 0.5);   /* true: 0.25 */
    pm_ctx_free(ctx);
}

/* ---- simple series ------------------------------------------------------------------ */

/* Residuals are 0, so the spread is Poisson(7): CDF(1) = 0.0073,
 * CDF(2) = 0.0296, CDF(3) = 0.082, CDF(4) = 0.173, CDF(9) = 0.830,
 * CDF(10) = 0.901, CDF(12) = 0.973, CDF(13) = 0.987. */
static void constant_series(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    uint64_t y[30];
    for (size_t t = 0; t < 30; t++)
        y[t] = 7;
    pm_forecast_row r = series_row(ctx, y, 30, NULL);
    assert_float_equal(r.expected, 7, 1e-12);
    assert_float_equal(r.dispersion, 0, 0);
    assert_int_equal(r.lo95, 2);
    assert_int_equal(r.lo80, 4);
    assert_int_equal(r.hi80, 10);
    assert_int_equal(r.hi95, 13);
    assert_int_equal(r.bt_n, 22);
    assert_float_equal(r.bt_mae, 0, 0);
    assert_int_equal(r.bt_in95, 22);
    assert_int_equal(r.surge, 0);
    assert_float_equal(r.alpha, 0.05, 0);   /* every alpha ties: the smallest */
    for (size_t t = 0; t < 30; t++)
        y[t] = 0;
    r = series_row(ctx, y, 30, NULL);
    assert_float_equal(r.expected, 0, 0);
    assert_int_equal(r.hi95, 0);
    assert_int_equal(r.bt_in80, 22);
    pm_ctx_free(ctx);
}

/* Up to 4 weeks: the mean, Poisson, no alpha, no backtest. */
static void short_series_use_the_mean(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    uint64_t y[] = {3, 5, 10};
    pm_forecast_row r = series_row(ctx, y, 3, NULL);
    assert_float_equal(r.expected, 6, 1e-12);
    assert_true(isnan(r.alpha));
    assert_int_equal(r.bt_n, 0);
    assert_true(isnan(r.bt_mae));
    assert_true(isnan(r.last_expected));
    assert_int_equal(r.last_count, 10);
    assert_int_equal(r.hi95, pm_forecast_quantile(6, 0, 0.975));
    pm_ctx_free(ctx);
}

/* A fixed alpha: level 4 (mean of 2 4 4 6), then 4 + 0.5 (8 − 4) = 6. */
static void fixed_alpha_smooths_by_hand(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    uint64_t y[] = {2, 4, 4, 6, 8};
    pm_forecast_opts o;
    pm_forecast_opts_default(&o);
    o.alpha = 0.5;
    pm_forecast_row r = series_row(ctx, y, 5, &o);
    assert_float_equal(r.expected, 6, 1e-12);
    assert_float_equal(r.alpha, 0.5, 0);
    /* one residual, 4: dispersion (16 − 4) / 16 */
    assert_float_equal(r.dispersion, 0.75, 1e-12);
    pm_ctx_free(ctx);
}

static void bad_options_are_usage_errors(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    uint64_t y[] = {1, 2, 3};
    pm_forecast_row r;
    pm_forecast_opts o;
    pm_forecast_opts_default(&o);
    o.alpha = 1.5;
    assert_int_equal(pm_forecast_series(ctx, y, 3, &o, &r), PM_E_USAGE);
    assert_non_null(strstr(pm_ctx_errmsg(ctx), "alpha"));
    pm_forecast_opts_default(&o);
    o.min_train = 4;
    assert_int_equal(pm_forecast_series(ctx, y, 3, &o, &r), PM_E_USAGE);
    assert_non_null(strstr(pm_ctx_errmsg(ctx), "min_train"));
    assert_int_equal(pm_forecast_series(ctx, y, 0, NULL, &r), PM_E_USAGE);
    pm_ctx_free(ctx);
}

/* ---- the surge rule ------------------------------------------------------------------ */

static pm_forecast_row with_last(pm_ctx *ctx, uint64_t base, uint64_t last)
{
    uint64_t y[20];
    for (size_t t = 0; t < 19; t++)
        y[t] = base + (t % 3);   /* 10 11 12 10 ...: a little spread */
    y[19] = last;
    return series_row(ctx, y, 20, NULL);
}

static void surge_needs_the_upper_bound_and_the_minimum(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    pm_forecast_row r = with_last(ctx, 10, 40);
    assert_int_equal(r.surge, 1);
    assert_int_equal(r.last_count, 40);
    assert_true(r.last_expected > 10 && r.last_expected < 12);
    assert_true(r.last_hi95 >= 17 && r.last_hi95 < 40);
    r = with_last(ctx, 10, r.last_hi95);   /* at the bound: not above it */
    assert_int_equal(r.surge, 0);
    r = with_last(ctx, 10, r.last_hi95 + 1);
    assert_int_equal(r.surge, 1);
    r = with_last(ctx, 0, 4);   /* 0 0 1 2 0 ... then 4: above the bound, under 5 */
    assert_true(r.last_hi95 < 4);
    assert_int_equal(r.surge, 0);
    r = with_last(ctx, 0, 5);
    assert_int_equal(r.surge, 1);
    pm_forecast_opts o;
    pm_forecast_opts_default(&o);
    o.surge_min_count = 6;
    uint64_t y[20] = {0};
    y[19] = 5;
    assert_int_equal(pm_forecast_series(ctx, y, 20, &o, &r), PM_OK);
    assert_int_equal(r.surge, 0);
    pm_ctx_free(ctx);
}

/* ---- from a cube ---------------------------------------------------------------------- */

#define N_D 4
#define N_T 3
#define N_W 40
#define W0 2817   /* the ISO week of Monday 2024-01-01 */

static GEOSGeometry *square(pm_ctx *ctx, double lon, double lat)
{
    char wkt[200];
    snprintf(wkt, sizeof wkt, "POLYGON((%g %g,%g %g,%g %g,%g %g,%g %g))", lon, lat, lon + 1, lat,
             lon + 1, lat + 1, lon, lat + 1, lon, lat);
    GEOSWKTReader *rd = GEOSWKTReader_create_r(pm_ctx_geos(ctx));
    GEOSGeometry *g = GEOSWKTReader_read_r(pm_ctx_geos(ctx), rd, wkt);
    GEOSWKTReader_destroy_r(pm_ctx_geos(ctx), rd);
    assert_non_null(g);
    return g;
}

typedef struct world {
    pm_ctx *ctx;
    pm_districts *ds;
    pm_complaints *cs;
    pm_placed *pl;
    uint64_t want[N_D][N_T][N_W];
} world;

/* Poisson weekly counts per district × topic at rates 2 … 14; with
 * surge, district 2 topic 1 gets four times its rate in the last week. */
static void world_open(world *w, uint64_t seed, int surge)
{
    memset(w, 0, sizeof *w);
    w->ctx = pm_ctx_new();
    w->ds = pm_districts_new(w->ctx);
    for (int d = 0; d < N_D; d++) {
        char id[16];
        snprintf(id, sizeof id, "D%d", d);
        assert_int_equal(pm_districts_add(w->ctx, w->ds, id, NULL, "R", NAN,
                                          square(w->ctx, 100 + d, 50)),
                         PM_OK);
    }
    assert_int_equal(pm_districts_freeze(w->ctx, w->ds), PM_OK);
    assert_int_equal(pm_period_of(PM_PERIOD_WEEK, 1704067200, 0), W0);
    uint64_t s = seed;
    size_t n = 0;
    for (int d = 0; d < N_D; d++)
        for (int t = 0; t < N_T; t++)
            for (int k = 0; k < N_W; k++) {
                double rate = 2 + 4 * t + d;
                if (surge && d == 2 && t == 1 && k == N_W - 1)
                    rate *= 4;
                w->want[d][t][k] = poisson(&s, rate);
                n += w->want[d][t][k];
            }
    w->cs = pm_complaints_new();
    w->pl = pm_calloc(1, sizeof *w->pl);
    w->pl->district = pm_calloc(n, sizeof *w->pl->district);
    w->pl->placement = pm_calloc(n, sizeof *w->pl->placement);
    w->pl->n = n;
    w->pl->counts[PM_PLACE_INSIDE] = n;
    size_t i = 0;
    for (int d = 0; d < N_D; d++)
        for (int t = 0; t < N_T; t++)
            for (int k = 0; k < N_W; k++)
                for (uint64_t j = 0; j < w->want[d][t][k]; j++, i++) {
                    char id[16];
                    snprintf(id, sizeof id, "c%zu", i);
                    int64_t at = pm_period_start(PM_PERIOD_WEEK, W0 + k, 0) +
                                 (int64_t)(next_u64(&s) % WEEK_S);
                    pm_complaint c = {.id = id, .created_at = at, .answered_at = PM_TIME_NONE,
                                      .lon = NAN, .lat = NAN, .topic = (uint16_t)t, .line = i};
                    assert_int_equal(pm_complaints_add(w->ctx, w->cs, &c), PM_OK);
                    w->pl->district[i] = d;
                }
}

static pm_cube *world_cube(world *w, pm_period_kind k)
{
    pm_cube_opts o = {k, 0};
    pm_cube *c = NULL;
    assert_int_equal(pm_cube_new(w->ctx, w->ds, N_T, &o, &c), PM_OK);
    assert_int_equal(pm_cube_add(w->ctx, c, w->cs, w->pl, NULL, NULL, NULL), PM_OK);
    return c;
}

static void world_close(world *w)
{
    pm_placed_free(w->pl);
    pm_complaints_free(w->cs);
    pm_districts_free(w->ctx, w->ds);
    pm_ctx_free(w->ctx);
}

static void cube_series_are_the_weekly_counts(void **state)
{
    (void)state;
    world w;
    world_open(&w, 11, 0);
    pm_cube *c = world_cube(&w, PM_PERIOD_WEEK);
    pm_forecast *f = NULL;
    assert_int_equal(pm_forecast_new(w.ctx, c, NULL, &f), PM_OK);
    assert_int_equal(f->n_rows, N_D * N_T);
    assert_int_equal(f->n_weeks, N_W);
    assert_int_equal(f->first_week, W0);
    assert_int_equal(f->last_week, W0 + N_W - 1);
    for (size_t r = 0; r < f->n_rows; r++) {
        const pm_forecast_row *row = &f->rows[r];
        assert_int_equal(row->district, r / N_T);
        assert_int_equal(row->topic, r % N_T);
        assert_memory_equal(f->counts + r * N_W, w.want[row->district][row->topic],
                            N_W * sizeof(uint64_t));
        pm_forecast_row one;
        assert_int_equal(pm_forecast_series(w.ctx, f->counts + r * N_W, N_W, NULL, &one), PM_OK);
        assert_float_equal(row->expected, one.expected, 0);
        assert_int_equal(row->hi95, one.hi95);
    }
    assert_int_equal(f->totals.series, N_D * N_T);
    assert_int_equal(f->totals.bt_n, N_D * N_T * (N_W - 8));
    assert_true(f->totals.coverage95 >= 0.88 && f->totals.coverage95 <= 1);
    pm_forecast_free(f);
    pm_cube_free(c);
    world_close(&w);
}

static void planted_surge_is_the_only_alert(void **state)
{
    (void)state;
    world w;
    world_open(&w, 5, 1);
    pm_cube *c = world_cube(&w, PM_PERIOD_WEEK);
    pm_forecast *f = NULL;
    assert_int_equal(pm_forecast_new(w.ctx, c, NULL, &f), PM_OK);
    assert_int_equal(f->totals.surges, 1);
    const pm_forecast_row *row = &f->rows[2 * N_T + 1];
    assert_int_equal(row->district, 2);
    assert_int_equal(row->topic, 1);
    assert_int_equal(row->surge, 1);
    assert_int_equal(row->last_count, w.want[2][1][N_W - 1]);
    assert_true(row->last_count > row->last_hi95);
    pm_forecast_free(f);
    /* the history ending a week earlier has no surge */
    pm_forecast_opts o;
    pm_forecast_opts_default(&o);
    o.has_range = 1;
    o.first_week = W0;
    o.last_week = W0 + N_W - 2;
    assert_int_equal(pm_forecast_new(w.ctx, c, &o, &f), PM_OK);
    assert_int_equal(f->n_weeks, N_W - 1);
    assert_int_equal(f->totals.surges, 0);
    pm_forecast_free(f);
    pm_cube_free(c);
    world_close(&w);
}

/* The p-value agrees with the interval: the 95 % interval's upper bound is
 * the smallest count with P(Y <= count) >= 0.975, so P(Y >= hi95) > 0.025
 * and P(Y >= hi95 + 1) <= 0.025. */
static void surge_p_value_agrees_with_the_bound(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    pm_forecast_row r = with_last(ctx, 10, 12);
    uint64_t hi = r.last_hi95;
    r = with_last(ctx, 10, hi);
    assert_true(r.last_p > 0.025 && r.last_p < 0.2);
    r = with_last(ctx, 10, hi + 1);
    assert_true(r.last_p <= 0.025 && r.last_p > 0);
    r = with_last(ctx, 10, 0);
    assert_true(r.last_p == 1);
    r = with_last(ctx, 10, 400);
    assert_true(r.last_p >= 0 && r.last_p < 1e-12);
    pm_ctx_free(ctx);
}

/* Many clean series and one planted surge: the 95 % bound rule raises
 * noise alerts among 400 series, the FDR rule only the planted one. */
static void fdr_rule_keeps_only_the_planted_surge(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    enum { N_SERIES = 400, N_WEEKS = 30 };
    uint64_t s = 7, y[N_WEEKS];
    size_t noise = 0;
    double *p = calloc(N_SERIES, sizeof *p), *q = calloc(N_SERIES, sizeof *q);
    assert_non_null(p);
    assert_non_null(q);
    for (size_t i = 0; i < N_SERIES; i++) {
        double rate = RATES[next_u64(&s) % 5];
        for (size_t t = 0; t < N_WEEKS; t++)
            y[t] = poisson(&s, rate);
        if (i == 123)
            y[N_WEEKS - 1] = poisson(&s, rate) + 60;
        pm_forecast_row r = series_row(ctx, y, N_WEEKS, NULL);
        noise += r.surge && i != 123;
        p[i] = r.last_p;
    }
    assert_int_equal(pm_fdr_bh(ctx, p, N_SERIES, q), PM_OK);
    size_t flagged = 0;
    for (size_t i = 0; i < N_SERIES; i++)
        flagged += q[i] <= 0.05;
    printf("# 400 series: %zu noise alerts at the 95 %% bound, %zu flagged at FDR 5 %%\n", noise,
           flagged);
    assert_true(noise >= 1);
    assert_true(q[123] <= 0.05);
    assert_int_equal(flagged, 1);
    free(p);
    free(q);
    pm_ctx_free(ctx);
}

/* The same cube without the planted surge: no alert at all. */
static void clean_cube_has_no_alert(void **state)
{
    (void)state;
    world w;
    world_open(&w, 5, 0);
    pm_cube *c = world_cube(&w, PM_PERIOD_WEEK);
    pm_forecast *f = NULL;
    assert_int_equal(pm_forecast_new(w.ctx, c, NULL, &f), PM_OK);
    assert_int_equal(f->totals.surges, 0);
    pm_forecast_free(f);
    pm_cube_free(c);
    world_close(&w);
}

static void cube_errors_and_empty_ranges(void **state)
{
    (void)state;
    world w;
    world_open(&w, 1, 0);
    pm_cube *c = world_cube(&w, PM_PERIOD_DAY);
    pm_forecast *f = (pm_forecast *)1;
    assert_int_equal(pm_forecast_new(w.ctx, c, NULL, &f), PM_E_USAGE);
    assert_null(f);
    assert_non_null(strstr(pm_ctx_errmsg(w.ctx), "weekly cube"));
    pm_cube_free(c);
    c = world_cube(&w, PM_PERIOD_WEEK);
    pm_forecast_opts o;
    pm_forecast_opts_default(&o);
    o.has_range = 1;
    o.first_week = W0 + 5;
    o.last_week = W0 + 4;
    assert_int_equal(pm_forecast_new(w.ctx, c, &o, &f), PM_E_USAGE);
    o.first_week = W0 - 30;   /* before every complaint: no series */
    o.last_week = W0 - 1;
    assert_int_equal(pm_forecast_new(w.ctx, c, &o, &f), PM_OK);
    assert_int_equal(f->n_rows, 0);
    assert_int_equal(f->n_weeks, 30);
    assert_true(isnan(f->totals.coverage95));
    pm_forecast_free(f);
    pm_cube_free(c);
    pm_cube_opts co = {PM_PERIOD_WEEK, 0};
    assert_int_equal(pm_cube_new(w.ctx, w.ds, N_T, &co, &c), PM_OK);   /* empty */
    assert_int_equal(pm_forecast_new(w.ctx, c, NULL, &f), PM_OK);
    assert_int_equal(f->n_rows, 0);
    pm_forecast_free(f);
    pm_cube_free(c);
    world_close(&w);
}

static void forecast_survives_alloc_failures(void **state)
{
    (void)state;
    world w;
    world_open(&w, 5, 1);
    pm_cube *c = world_cube(&w, PM_PERIOD_WEEK);
    int failures = 0;
    for (long n = 1;; n++) {
        pm_forecast *f = (pm_forecast *)1;
        pm_alloc_fail_at(n);
        int rc = pm_forecast_new(w.ctx, c, NULL, &f);
        long made = pm_alloc_count();
        pm_alloc_fail_at(0);
        if (rc == PM_OK) {
            assert_int_equal(f->totals.surges, 1);
            pm_forecast_free(f);
            if (n > made)
                break;
            continue;
        }
        failures++;
        assert_int_equal(rc, PM_E_NOMEM);
        assert_null(f);
    }
    assert_int_equal(failures, 4);
    pm_cube_free(c);
    world_close(&w);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quantile_poisson_by_hand),
        cmocka_unit_test(quantile_negative_binomial_by_hand),
        cmocka_unit_test(quantile_large_mean_is_normal),
        cmocka_unit_test(poisson_series_cover_near_nominal),
        cmocka_unit_test(overdispersed_series_cover_near_nominal),
        cmocka_unit_test(constant_series),
        cmocka_unit_test(short_series_use_the_mean),
        cmocka_unit_test(fixed_alpha_smooths_by_hand),
        cmocka_unit_test(bad_options_are_usage_errors),
        cmocka_unit_test(surge_needs_the_upper_bound_and_the_minimum),
        cmocka_unit_test(cube_series_are_the_weekly_counts),
        cmocka_unit_test(planted_surge_is_the_only_alert),
        cmocka_unit_test(clean_cube_has_no_alert),
        cmocka_unit_test(surge_p_value_agrees_with_the_bound),
        cmocka_unit_test(fdr_rule_keeps_only_the_planted_surge),
        cmocka_unit_test(cube_errors_and_empty_ranges),
        cmocka_unit_test(forecast_survives_alloc_failures),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
