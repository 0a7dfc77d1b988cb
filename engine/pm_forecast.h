/* pm_forecast.h — next week's complaints per district × topic, with
 * prediction intervals, a rolling-origin backtest and surge alerts.
 * docs/analytics.md has the long form.
 *
 * Series.  From a weekly cube (period kind week), the count of complaints
 * per district × topic × week over the history (by default the cube's whole
 * span), weeks without complaints counted as 0.  Only district × topic
 * pairs with at least one complaint in the history get a series.  The
 * series are read in one pass over the cells (pm_cube_each_cell), not by a
 * query per week: a query reads every cell, so W weekly queries would cost
 * W times as much.
 *
 * Method, per series y[0..n-1]:
 * - Simple exponential smoothing of the weekly mean: the level starts as
 *   the mean of the first 4 weeks (PM_FORECAST_INIT_WEEKS) and moves by
 *   level += alpha · (y[t] − level); the forecast of any later week is the
 *   level.  alpha is fitted per series by the least sum of squared
 *   one-step errors over the grid 0.05 0.1 0.2 0.3 0.5 0.8 (ties: the
 *   smaller), or fixed by the caller.
 * - Prediction intervals: quantiles of a negative binomial with that mean
 *   and variance mean + dispersion · mean², the dispersion estimated by
 *   moments from the one-step residuals, (Σ r² − Σ f) / Σ f²; when that is
 *   ≤ 0 (not over-dispersed) the distribution is Poisson.  The 80 %
 *   interval is [q(0.10), q(0.90)], the 95 % one [q(0.025), q(0.975)],
 *   q(p) the smallest count whose CDF is ≥ p — so each interval covers at
 *   least its nominal share of the model distribution.
 * - Every forecast, interval and alpha is fitted only on the weeks before
 *   the week forecast.
 * - Backtest: rolling origin, every week t from min_train to n − 1 is
 *   forecast from weeks 0..t−1 and compared with y[t]: mean absolute error
 *   (and the naive forecast's, last week's count, for scale) and the share
 *   of actuals inside the 80 % and 95 % intervals.
 * - Surge: the last week of the history (the last complete week) is a
 *   surge when its count is ≥ surge_min_count (default 5, so that 0 → 2
 *   is not an alert) and above the upper 95 % bound of the forecast made
 *   from the weeks before it.  It needs min_train weeks before it.
 *   With surge_fdr, the rule is instead: the count's upper-tail p-value
 *   under that forecast, P(Y ≥ count), Benjamini–Hochberg adjusted over
 *   every series, is ≤ surge_fdr — so that among many district × topic
 *   series the alerts are expected to hold at most that share of false
 *   ones (a region of 1 000 series gets about 25 noise alerts a week at the
 *   95 % bound, and about none at FDR 5 %).
 */
#ifndef PM_FORECAST_H
#define PM_FORECAST_H

#include "pm_ctx.h"
#include "pm_cube.h"
#include <stddef.h>
#include <stdint.h>

#define PM_FORECAST_INIT_WEEKS 4

typedef struct pm_forecast_opts {
    double alpha;               /* 0: fitted per series from the grid; else fixed, in (0, 1] */
    size_t min_train;           /* weeks before the first backtest forecast and
                                 * before a surge week; 0: 8; else >= 5 */
    uint64_t surge_min_count;   /* 0: 5 */
    double surge_fdr;           /* 0: the 95 % bound rule; else in (0, 0.5]: the FDR rule */
    int has_range;              /* else the cube's whole span */
    int64_t first_week, last_week;   /* week indexes, inclusive.  last_week must be
                                      * the last complete week: without a range the
                                      * cube's last week is taken as complete, so
                                      * pass one when the data runs into this week
                                      * (pm_period_of(now) − 1) */
} pm_forecast_opts;

/* One series: what is forecast, how well it did, and its last week. */
typedef struct pm_forecast_row {
    size_t district;            /* index in the cube's districts */
    uint16_t topic;
    /* next week (the week after the history) */
    double expected;            /* the forecast mean */
    uint64_t lo80, hi80, lo95, hi95;   /* prediction intervals, counts, inclusive */
    double alpha;               /* fitted (or fixed) alpha; NAN with too short a history */
    double dispersion;          /* negative-binomial dispersion; 0 = Poisson */
    /* backtest */
    size_t bt_n;                /* weeks forecast (0 when n <= min_train) */
    double bt_mae, bt_mae_naive;   /* NAN when bt_n is 0 */
    size_t bt_in80, bt_in95;    /* actuals inside the intervals */
    /* the last week of the history */
    uint64_t last_count;
    double last_expected;       /* forecast from the weeks before; NAN if too short */
    uint64_t last_hi95;
    double last_p;              /* P(Y >= last_count) under that forecast; NAN if too short */
    double last_q;              /* last_p, Benjamini–Hochberg adjusted over the rows */
    int surge;                  /* 1: the last week is a surge */
} pm_forecast_row;

/* Pooled over every series' backtest. */
typedef struct pm_forecast_totals {
    size_t series, surges;
    size_t bt_n;
    double bt_mae, bt_mae_naive;   /* NAN when bt_n is 0 */
    double coverage80, coverage95; /* shares in [0, 1]; NAN when bt_n is 0 */
} pm_forecast_totals;

typedef struct pm_forecast {
    int64_t first_week, last_week;   /* the history */
    size_t n_weeks;
    pm_forecast_row *rows;      /* n_rows, by district then topic */
    size_t n_rows;
    uint64_t *counts;           /* n_rows × n_weeks: row r's series at r · n_weeks */
    pm_forecast_totals totals;
} pm_forecast;

/* Sets the defaults (alpha fitted, min_train 8, surge_min_count 5, whole
 * span). */
void pm_forecast_opts_default(pm_forecast_opts *o);

/* Series, forecasts, backtests and surges of a weekly cube (opts may be
 * NULL: defaults).  Caller frees with pm_forecast_free().  An empty cube
 * or range gives no rows.  PM_E_USAGE when the cube is not weekly, for
 * bad options or an empty or reversed range; PM_E_NOMEM.  Read-only on
 * the cube. */
int pm_forecast_new(pm_ctx *ctx, const pm_cube *cube, const pm_forecast_opts *opts,
                    pm_forecast **out);
void pm_forecast_free(pm_forecast *f);

/* The same method on one series y[0..n-1] (n >= 1); fills every field of
 * *row but district and topic (set to 0).  Allocates nothing.  PM_E_USAGE
 * for n = 0 or bad options. */
int pm_forecast_series(pm_ctx *ctx, const uint64_t *y, size_t n, const pm_forecast_opts *opts,
                       pm_forecast_row *row);

/* The negative-binomial (dispersion 0: Poisson) quantile: the smallest
 * count whose CDF at that mean is >= p, p in (0, 1).  0 for a mean <= 0. */
uint64_t pm_forecast_quantile(double mean, double dispersion, double p);

#endif
