/* forecast.c — weekly series per district × topic from the cube, simple
 * exponential smoothing with negative-binomial intervals, rolling-origin
 * backtest and surge alerts (pm_forecast.h; docs/analytics.md). */
#include "pm_forecast.h"
#include "pm_alloc.h"
#include "pm_hotspot.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

/* ---- quantiles ---------------------------------------------------------------- */

/* Above this mean the CDF is not summed from 0 but approximated by a
 * normal with the same mean and variance (a weekly count of a million per
 * district and topic does not happen; the guard bounds the work). */
#define SUM_MEAN_MAX 1e6

static double normal_cdf(double z)
{
    return 0.5 * erfc(-z / sqrt(2.0));
}

/* Bisection on the normal CDF: z with Φ(z) = p, to 1e-12. */
static double normal_inv(double p)
{
    double lo = -40, hi = 40;
    for (int i = 0; i < 100 && hi - lo > 1e-12; i++) {
        double mid = 0.5 * (lo + hi);
        if (normal_cdf(mid) < p)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

/* q[i] = the smallest count whose CDF is >= p[i]; p ascending in (0, 1).
 * The pmf is summed from 0 with the ratio
 * P(y+1)/P(y) = (1 + d·y)/(y + 1) · m/(1 + d·m), P(0) = (1 + d·m)^(-1/d)
 * (e^-m for d = 0, Poisson); in log space while P(y) is below the range
 * of a double, then by plain products. */
static void quantiles(double mean, double disp, const double *p, size_t np, uint64_t *q)
{
    if (!(mean > 0)) {
        for (size_t i = 0; i < np; i++)
            q[i] = 0;
        return;
    }
    if (mean > SUM_MEAN_MAX) {
        double sd = sqrt(mean + disp * mean * mean);
        for (size_t i = 0; i < np; i++) {
            double v = ceil(mean + normal_inv(p[i]) * sd - 0.5);
            q[i] = v > 0 ? (uint64_t)v : 0;
        }
        return;
    }
    double step = mean / (1 + disp * mean);
    double lp = disp > 0 ? -log1p(disp * mean) / disp : -mean, lstep = log(step);
    double pmf = 0, cdf = 0;   /* in log space P(y) < e^-700: left out of the sum */
    bool linear = false;
    /* beyond mean + 60 sd the CDF is 1 to double precision */
    double ymax = mean + 60 * sqrt(mean + disp * mean * mean) + 100;
    uint64_t y = 0;
    size_t i = 0;
    while (i < np) {
        if (!linear && lp > -700) {
            pmf = exp(lp);
            linear = true;
        }
        cdf += pmf;
        while (i < np && (cdf >= p[i] || (double)y >= ymax))
            q[i++] = y;
        double ratio = (1 + disp * (double)y) / ((double)y + 1);
        if (linear)
            pmf *= ratio * step;
        else
            lp += log(ratio) + lstep;
        y++;
    }
}

/* P(Y >= y) under the same distribution: the surge test's p-value.  The
 * pmf is summed as in quantiles(); 0 beyond mean + 60 sd. */
static double upper_tail(double mean, double disp, uint64_t y)
{
    if (y == 0)
        return 1;
    if (!(mean > 0))
        return 0;
    double sd = sqrt(mean + disp * mean * mean);
    if (mean > SUM_MEAN_MAX)
        return 1 - normal_cdf(((double)y - 0.5 - mean) / sd);
    if ((double)y > mean + 60 * sd + 100)
        return 0;
    double lstep = log(mean / (1 + disp * mean));
    double lp = disp > 0 ? -log1p(disp * mean) / disp : -mean, cdf = 0;
    for (uint64_t k = 0; k < y; k++) {
        cdf += exp(lp);
        lp += log((1 + disp * (double)k) / ((double)k + 1)) + lstep;
    }
    return cdf >= 1 ? 0 : 1 - cdf;
}

uint64_t pm_forecast_quantile(double mean, double dispersion, double p)
{
    uint64_t q = 0;
    quantiles(mean, dispersion > 0 ? dispersion : 0, &p, 1, &q);
    return q;
}

/* The two intervals of one forecast. */
typedef struct interval {
    uint64_t lo80, hi80, lo95, hi95;
} interval;

static interval intervals(double mean, double disp)
{
    static const double P[4] = {0.025, 0.10, 0.90, 0.975};
    uint64_t q[4];
    quantiles(mean, disp, P, 4, q);
    return (interval){q[1], q[2], q[0], q[3]};
}

/* ---- one series ------------------------------------------------------------------ */

static const double GRID[] = {0.05, 0.1, 0.2, 0.3, 0.5, 0.8};
#define N_GRID (sizeof GRID / sizeof *GRID)

/* A bank of smoothers, one per alpha, run side by side: the one-step
 * errors of a smoother up to week t depend only on weeks before t, so the
 * fit at every origin of the backtest is read off running sums. */
typedef struct bank {
    size_t n;
    double alpha[N_GRID], level[N_GRID];
    double sse[N_GRID], sum_f[N_GRID], sum_f2[N_GRID];   /* Σ r², Σ f, Σ f² */
    size_t n_res;
} bank;

/* The fitted model at the current origin. */
typedef struct model {
    double mean, alpha, disp;
} model;

static void bank_init(bank *b, const pm_forecast_opts *o, double level0)
{
    memset(b, 0, sizeof *b);
    b->n = o->alpha > 0 ? 1 : N_GRID;
    for (size_t g = 0; g < b->n; g++) {
        b->alpha[g] = o->alpha > 0 ? o->alpha : GRID[g];
        b->level[g] = level0;
    }
}

static model bank_model(const bank *b)
{
    if (b->n_res == 0)
        return (model){b->level[0], NAN, 0};
    size_t best = 0;
    for (size_t g = 1; g < b->n; g++)
        if (b->sse[g] < b->sse[best])
            best = g;
    double disp = 0;
    if (b->sum_f2[best] > 0)
        disp = (b->sse[best] - b->sum_f[best]) / b->sum_f2[best];
    return (model){b->level[best], b->alpha[best], disp > 0 ? disp : 0};
}

static void bank_update(bank *b, double y)
{
    for (size_t g = 0; g < b->n; g++) {
        double f = b->level[g], r = y - f;
        b->sse[g] += r * r;
        b->sum_f[g] += f;
        b->sum_f2[g] += f * f;
        b->level[g] = f + b->alpha[g] * r;
    }
    b->n_res++;
}

static const char *opts_problem(const pm_forecast_opts *o)
{
    if (!(o->alpha >= 0 && o->alpha <= 1))
        return "alpha must be 0 (fitted) or in (0, 1]";
    if (o->min_train < PM_FORECAST_INIT_WEEKS + 1)
        return "min_train must be at least 5 weeks";
    if (o->has_range && o->first_week > o->last_week)
        return "the range of weeks is empty (first after last)";
    if (!(o->surge_fdr >= 0 && o->surge_fdr <= 0.5))
        return "surge_fdr must be 0 (the 95 % bound) or in (0, 0.5]";
    return NULL;
}

/* o with its zeros replaced by the defaults. */
static pm_forecast_opts opts_resolve(const pm_forecast_opts *o)
{
    pm_forecast_opts r;
    pm_forecast_opts_default(&r);
    if (o) {
        r = *o;
        if (r.min_train == 0)
            r.min_train = 8;
        if (r.surge_min_count == 0)
            r.surge_min_count = 5;
    }
    return r;
}

void pm_forecast_opts_default(pm_forecast_opts *o)
{
    memset(o, 0, sizeof *o);
    o->min_train = 8;
    o->surge_min_count = 5;
}

static bool inside(uint64_t y, uint64_t lo, uint64_t hi)
{
    return y >= lo && y <= hi;
}

/* The method on y[0..n-1], options resolved and valid. */
static void run_series(const uint64_t *y, size_t n, const pm_forecast_opts *o,
                       pm_forecast_row *row)
{
    memset(row, 0, sizeof *row);
    size_t m = n < PM_FORECAST_INIT_WEEKS ? n : PM_FORECAST_INIT_WEEKS;
    double level0 = 0;
    for (size_t t = 0; t < m; t++)
        level0 += (double)y[t];
    level0 /= (double)m;
    bank b;
    bank_init(&b, o, level0);
    double abs_err = 0, abs_naive = 0;
    row->last_count = y[n - 1];
    row->last_expected = row->last_p = row->last_q = NAN;
    for (size_t t = m; t < n; t++) {
        if (t >= o->min_train) {
            model md = bank_model(&b);
            interval iv = intervals(md.mean, md.disp);
            row->bt_n++;
            abs_err += fabs((double)y[t] - md.mean);
            abs_naive += fabs((double)y[t] - (double)y[t - 1]);
            row->bt_in80 += inside(y[t], iv.lo80, iv.hi80);
            row->bt_in95 += inside(y[t], iv.lo95, iv.hi95);
            if (t == n - 1) {
                row->last_expected = md.mean;
                row->last_hi95 = iv.hi95;
                row->last_p = upper_tail(md.mean, md.disp, y[t]);
                row->surge = y[t] >= o->surge_min_count && y[t] > iv.hi95;
            }
        }
        bank_update(&b, (double)y[t]);
    }
    model md = bank_model(&b);
    interval iv = intervals(md.mean, md.disp);
    row->expected = md.mean;
    row->alpha = md.alpha;
    row->dispersion = md.disp;
    row->lo80 = iv.lo80;
    row->hi80 = iv.hi80;
    row->lo95 = iv.lo95;
    row->hi95 = iv.hi95;
    row->bt_mae = row->bt_n ? abs_err / (double)row->bt_n : NAN;
    row->bt_mae_naive = row->bt_n ? abs_naive / (double)row->bt_n : NAN;
}

int pm_forecast_series(pm_ctx *ctx, const uint64_t *y, size_t n, const pm_forecast_opts *opts,
                       pm_forecast_row *row)
{
    pm_forecast_opts o = opts_resolve(opts);
    const char *why = opts_problem(&o);
    if (why)
        return PM_ERR(ctx, PM_E_USAGE, "forecast: %s", why);
    if (n == 0 || !y)
        return PM_ERR(ctx, PM_E_USAGE, "forecast: the series is empty");
    run_series(y, n, &o, row);
    return PM_OK;
}

/* ---- series from the cube ------------------------------------------------------------ */

/* Three passes over the cells share this state: find the largest district
 * and topic in range, mark the pairs present, add the counts. */
typedef enum pass { PASS_EXTENT, PASS_MARK, PASS_FILL } pass;

typedef struct gather {
    pass pass;
    int64_t first, last;
    size_t max_district, n_topics;   /* n_topics = largest topic + 1 */
    bool any;
    uint32_t *slot;                  /* district × topic → row + 1, 0: none */
    uint64_t *counts;
    size_t n_weeks;
} gather;

static int gather_cell(void *user, const pm_cube_cell *c)
{
    gather *g = user;
    if (c->period < g->first || c->period > g->last)
        return 0;
    switch (g->pass) {
    case PASS_EXTENT:
        g->any = true;
        if (c->district > g->max_district)
            g->max_district = c->district;
        if ((size_t)c->topic + 1 > g->n_topics)
            g->n_topics = (size_t)c->topic + 1;
        break;
    case PASS_MARK:
        g->slot[c->district * g->n_topics + c->topic] = 1;
        break;
    case PASS_FILL: {
        size_t r = g->slot[c->district * g->n_topics + c->topic] - 1;
        g->counts[r * g->n_weeks + (size_t)(c->period - g->first)] += c->answered + c->open;
        break;
    }
    }
    return 0;
}

void pm_forecast_free(pm_forecast *f)
{
    if (!f)
        return;
    pm_free(f->rows);
    pm_free(f->counts);
    pm_free(f);
}

/* Gives every marked pair its row (district, then topic) and allocates the
 * rows and the series. */
static int number_rows(pm_ctx *ctx, gather *g, pm_forecast *f)
{
    size_t n_slots = (g->max_district + 1) * g->n_topics;
    for (size_t s = 0; s < n_slots; s++)
        if (g->slot[s])
            g->slot[s] = (uint32_t)++f->n_rows;
    f->rows = pm_calloc(f->n_rows, sizeof *f->rows);
    f->counts = pm_calloc(f->n_rows, f->n_weeks * sizeof *f->counts);
    if (!f->rows || !f->counts)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory for %zu weekly series of %zu weeks",
                      f->n_rows, f->n_weeks);
    for (size_t s = 0; s < n_slots; s++)
        if (g->slot[s]) {
            pm_forecast_row *r = &f->rows[g->slot[s] - 1];
            r->district = s / g->n_topics;
            r->topic = (uint16_t)(s % g->n_topics);
        }
    return PM_OK;
}

/* Forecasts every row from its series. */
static void forecast_rows(pm_forecast *f, const pm_forecast_opts *o)
{
    for (size_t r = 0; r < f->n_rows; r++) {
        pm_forecast_row *row = &f->rows[r];
        size_t district = row->district;
        uint16_t topic = row->topic;
        run_series(f->counts + r * f->n_weeks, f->n_weeks, o, row);
        row->district = district;
        row->topic = topic;
    }
}

/* The FDR surge rule (pm_forecast.h): q over the rows' last_p. */
static int surges_by_fdr(pm_ctx *ctx, pm_forecast *f, const pm_forecast_opts *o)
{
    double *p = pm_calloc(f->n_rows ? f->n_rows : 1, sizeof *p), *q = pm_calloc(f->n_rows ? f->n_rows : 1, sizeof *q);
    int rc = p && q ? PM_OK : PM_ERR(ctx, PM_E_NOMEM, "out of memory for %zu p-values", f->n_rows);
    for (size_t r = 0; rc == PM_OK && r < f->n_rows; r++)
        p[r] = f->rows[r].last_p;
    if (rc == PM_OK)
        rc = pm_fdr_bh(ctx, p, f->n_rows, q);
    for (size_t r = 0; rc == PM_OK && r < f->n_rows; r++) {
        pm_forecast_row *row = &f->rows[r];
        row->last_q = q[r];
        row->surge = row->last_count >= o->surge_min_count && q[r] <= o->surge_fdr;
    }
    pm_free(p);
    pm_free(q);
    return rc;
}

/* The backtests pooled over the rows. */
static pm_forecast_totals totals(const pm_forecast *f)
{
    pm_forecast_totals t = {.series = f->n_rows};
    double abs_err = 0, abs_naive = 0;
    size_t in80 = 0, in95 = 0;
    for (size_t r = 0; r < f->n_rows; r++) {
        const pm_forecast_row *row = &f->rows[r];
        t.surges += (size_t)row->surge;
        t.bt_n += row->bt_n;
        if (row->bt_n) {
            abs_err += row->bt_mae * (double)row->bt_n;
            abs_naive += row->bt_mae_naive * (double)row->bt_n;
        }
        in80 += row->bt_in80;
        in95 += row->bt_in95;
    }
    double n = (double)t.bt_n;
    t.bt_mae = t.bt_n ? abs_err / n : NAN;
    t.bt_mae_naive = t.bt_n ? abs_naive / n : NAN;
    t.coverage80 = t.bt_n ? (double)in80 / n : NAN;
    t.coverage95 = t.bt_n ? (double)in95 / n : NAN;
    return t;
}

/* The range of weeks: the caller's or the cube's span; false when empty. */
static bool history(const pm_cube *cube, const pm_forecast_opts *o, int64_t *first, int64_t *last)
{
    if (o->has_range) {
        *first = o->first_week;
        *last = o->last_week;
        return true;
    }
    return pm_cube_period_span(cube, first, last) != 0;
}

static int build(pm_ctx *ctx, const pm_cube *cube, const pm_forecast_opts *o, pm_forecast *f)
{
    gather g = {.pass = PASS_EXTENT};
    if (!history(cube, o, &g.first, &g.last))
        return PM_OK;
    f->first_week = g.first;
    f->last_week = g.last;
    uint64_t span = (uint64_t)g.last - (uint64_t)g.first + 1;
    if (span == 0 || span > SIZE_MAX / 16)
        return PM_ERR(ctx, PM_E_USAGE, "forecast: a history of %llu weeks is too long",
                      (unsigned long long)span);
    f->n_weeks = g.n_weeks = (size_t)span;
    pm_cube_each_cell(cube, gather_cell, &g);
    if (!g.any)
        return PM_OK;
    g.slot = pm_calloc(g.max_district + 1, g.n_topics * sizeof *g.slot);
    if (!g.slot)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory for %zu districts × %zu topics",
                      g.max_district + 1, g.n_topics);
    g.pass = PASS_MARK;
    pm_cube_each_cell(cube, gather_cell, &g);
    int rc = number_rows(ctx, &g, f);
    if (rc == PM_OK) {
        g.pass = PASS_FILL;
        g.counts = f->counts;
        pm_cube_each_cell(cube, gather_cell, &g);
        forecast_rows(f, o);
        if (o->surge_fdr > 0)
            rc = surges_by_fdr(ctx, f, o);
    }
    pm_free(g.slot);
    return rc;
}

int pm_forecast_new(pm_ctx *ctx, const pm_cube *cube, const pm_forecast_opts *opts,
                    pm_forecast **out)
{
    *out = NULL;
    pm_forecast_opts o = opts_resolve(opts);
    const char *why = opts_problem(&o);
    if (why)
        return PM_ERR(ctx, PM_E_USAGE, "forecast: %s", why);
    pm_period_kind k = pm_cube_options(cube)->period;
    if (k != PM_PERIOD_WEEK)
        return PM_ERR(ctx, PM_E_USAGE,
                      "forecast: the cube is by %s; forecasts need a weekly cube (period week)",
                      pm_period_kind_name(k));
    pm_forecast *f = pm_calloc(1, sizeof *f);
    if (!f)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory starting a forecast");
    int rc = build(ctx, cube, &o, f);
    if (rc != PM_OK) {
        pm_forecast_free(f);
        return rc;
    }
    f->totals = totals(f);
    *out = f;
    return PM_OK;
}
