/* analyze_time.c — the time half of `problemap analyze`: next week's
 * forecast per district × topic with its backtest, surge alerts, and the
 * recurrence register (engine/pm_forecast.h, pm_recur.h; analyze.h). */
#include "analyze.h"
#include "../engine/pm_alloc.h"
#include "../engine/pm_forecast.h"
#include "../engine/pm_recur.h"
#include "../geodata/pm_complaints_in.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void analyze_more_init(analyze_more *m)
{
    memset(m, 0, sizeof *m);
}

int analyze_more_option(analyze_more *m, int which, const char *arg)
{
    char *end;
    switch (which) {
    case 0: m->forecast = arg; return EXIT_OK;
    case 1: m->alerts = arg; return EXIT_OK;
    case 2: m->recurrence = arg; return EXIT_OK;
    case 3: m->recurrence_csv = arg; return EXIT_OK;
    case 4:
        m->recur_m = strtod(arg, &end);
        if (*end || !(m->recur_m >= 1 && m->recur_m <= 100000))
            return cli_usage_error("analyze", "--recur-m: '%s' is not metres from 1 to 100000", arg);
        return EXIT_OK;
    case 5: {
        long w = strtol(arg, &end, 10);
        if (*end || w < 1 || w > 520)
            return cli_usage_error("analyze", "--recur-weeks: '%s' is not a number of weeks from 1 to 520", arg);
        m->recur_weeks = (int)w;
        return EXIT_OK;
    }
    }
    return EXIT_USAGE;
}

int analyze_more_wanted(const analyze_more *m)
{
    return m->forecast || m->alerts || m->recurrence || m->recurrence_csv;
}

#define num analyze_num

/* ---- forecast and alerts ------------------------------------------------------ */

static json_t *forecast_props(const dataset *d, const pm_forecast *fc, const pm_forecast_row *r)
{
    char week[16];
    pm_period_label(PM_PERIOD_WEEK, fc->last_week, week);
    double cov80 = r->bt_n ? (double)r->bt_in80 / (double)r->bt_n : NAN,
           cov95 = r->bt_n ? (double)r->bt_in95 / (double)r->bt_n : NAN;
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:o, s:o, s:I, s:o, s:o, s:o, s:o,"
                     " s:s, s:I, s:o, s:I, s:o, s:o, s:b}",
                     "district_id", pm_district_id(d->run.ds, r->district), "district_name",
                     pm_district_name(d->run.ds, r->district), "topic", pm_topic_code(d->run.t, r->topic),
                     "topic_name_ru", pm_topic_name_ru(d->run.t, r->topic), "expected", num(r->expected),
                     "lo80", (json_int_t)r->lo80, "hi80", (json_int_t)r->hi80, "lo95", (json_int_t)r->lo95,
                     "hi95", (json_int_t)r->hi95, "alpha", num(r->alpha), "dispersion", num(r->dispersion),
                     "backtest_weeks", (json_int_t)r->bt_n, "backtest_mae", num(r->bt_mae),
                     "backtest_mae_naive", num(r->bt_mae_naive), "backtest_coverage80", num(cov80),
                     "backtest_coverage95", num(cov95), "last_week", week, "last_count",
                     (json_int_t)r->last_count, "last_expected", num(r->last_expected), "last_hi95",
                     (json_int_t)r->last_hi95, "last_p", num(r->last_p), "last_q", num(r->last_q),
                     "surge", r->surge);
}

/* The rows of fc (surges only when only_surges) as CSV. */
static int write_forecast(pm_ctx *ctx, const char *path, const dataset *d, const pm_forecast *fc,
                          int only_surges)
{
    json_t **rows = pm_calloc(fc->n_rows ? fc->n_rows : 1, sizeof *rows);
    if (!rows)
        return PM_ERR(ctx, PM_E_NOMEM, "%s: out of memory", path);
    size_t n = 0;
    int rc = PM_OK;
    for (size_t i = 0; i < fc->n_rows && rc == PM_OK; i++) {
        if (only_surges && !fc->rows[i].surge)
            continue;
        if (!(rows[n++] = forecast_props(d, fc, &fc->rows[i])))
            rc = PM_ERR(ctx, PM_E_NOMEM, "%s: out of memory", path);
    }
    pm_forecast_row none = {0};   /* for the header when there is no row */
    json_t *sample = rc == PM_OK && n == 0 ? forecast_props(d, fc, &none) : NULL;
    if (rc == PM_OK)
        rc = analyze_write_csv(ctx, path, rows, n, sample);
    json_decref(sample);
    analyze_props_free(rows, n);
    return rc;
}

int analyze_forecast_new(pm_ctx *ctx, const dataset *d, const layer_filters *lf, int fdr,
                         pm_forecast **out)
{
    pm_forecast_opts o;
    pm_forecast_opts_default(&o);
    o.surge_fdr = fdr ? 0.05 : 0;
    if (lf->cube.has_range) {
        o.has_range = 1;
        o.first_week = lf->cube.period_from;
        o.last_week = lf->cube.period_to;
    }
    return pm_forecast_new(ctx, d->cube, &o, out);
}

static int run_forecast(pm_ctx *ctx, const analyze_more *m, const dataset *d, const layer_filters *lf,
                        int quiet)
{
    pm_forecast *fc = NULL;
    int rc = analyze_forecast_new(ctx, d, lf, m->fdr, &fc);
    if (!rc && m->forecast)
        rc = write_forecast(ctx, m->forecast, d, fc, 0);
    if (!rc && m->alerts)
        rc = write_forecast(ctx, m->alerts, d, fc, 1);
    if (!rc && !quiet) {
        const pm_forecast_totals *t = &fc->totals;
        fprintf(stderr, "problemap: forecast of %zu district x topic series over %zu weeks; backtest "
                        "MAE %.2f (seasonal-naive %.2f), 80 %% interval covers %.1f %%, 95 %% covers "
                        "%.1f %%; %zu surge alerts\n", t->series, fc->n_weeks, t->bt_mae,
                t->bt_mae_naive, 100 * t->coverage80, 100 * t->coverage95, t->surges);
    }
    pm_forecast_free(fc);
    return rc;
}

/* ---- the recurrence register --------------------------------------------------- */

static json_t *cluster_props(const dataset *d, const pm_recur_cluster *c)
{
    char first[40], last[40];
    pm_time_format_utc(c->first_at, first);
    pm_time_format_utc(c->last_at, last);
    const pm_districts *ds = d->run.ds;
    return json_pack("{s:I, s:s, s:s, s:s?, s:s?, s:s, s:s, s:I, s:o, s:o}", "cluster",
                     (json_int_t)c->id, "topic", pm_topic_code(d->run.t, c->topic), "topic_name_ru",
                     pm_topic_name_ru(d->run.t, c->topic), "district_id",
                     c->district >= 0 ? pm_district_id(ds, (size_t)c->district) : NULL, "district_name",
                     c->district >= 0 ? pm_district_name(ds, (size_t)c->district) : NULL, "first_at", first,
                     "last_at", last, "complaints", (json_int_t)c->count, "lon",
                     json_real(round(c->lon * 1e6) / 1e6), "lat", json_real(round(c->lat * 1e6) / 1e6));
}

/* The register as GeoJSON points (RFC 7946; the centroid of each cluster). */
static int write_register_geojson(pm_ctx *ctx, const char *path, json_t *const *props, size_t n)
{
    json_t *fc = json_pack("{s:s, s:[]}", "type", "FeatureCollection", "features");
    json_t *features = fc ? json_object_get(fc, "features") : NULL;
    int bad = !features;
    for (size_t i = 0; !bad && i < n; i++) {
        json_t *geom = json_pack("{s:s, s:[O, O]}", "type", "Point", "coordinates",
                                 json_object_get(props[i], "lon"), json_object_get(props[i], "lat"));
        json_t *f = geom ? json_pack("{s:s, s:I, s:o, s:O}", "type", "Feature", "id",
                                     json_integer_value(json_object_get(props[i], "cluster")),
                                     "geometry", geom, "properties", props[i])
                         : NULL;
        bad = !f || json_array_append_new(features, f) != 0;
    }
    pm_outfile *of = NULL;
    int rc = bad ? PM_ERR(ctx, PM_E_NOMEM, "%s: out of memory", path) : pm_outfile_open(ctx, path, &of);
    if (rc == PM_OK) {
        if (json_dumpf(fc, pm_outfile_stream(of), JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(10)) != 0)
            rc = PM_ERR(ctx, PM_E_IO, "%s: cannot write", path);
        rc = rc ? (pm_outfile_abort(of), rc) : pm_outfile_commit(ctx, of);
    }
    json_decref(fc);
    return rc;
}

static int run_recurrence(pm_ctx *ctx, const analyze_more *m, const dataset *d, int quiet)
{
    pm_recur_opts o;
    pm_recur_opts_default(&o);
    if (m->recur_m > 0)
        o.radius_m = m->recur_m;
    if (m->recur_weeks > 0)
        o.weeks = m->recur_weeks;
    pm_recur *r = NULL;
    int rc = pm_recur_new(ctx, d->run.cs, d->run.pl, &o, &r);
    json_t **props = NULL;
    if (!rc && !(props = pm_calloc(r->n_clusters ? r->n_clusters : 1, sizeof *props)))
        rc = PM_ERR(ctx, PM_E_NOMEM, "out of memory for %zu clusters", r->n_clusters);
    for (size_t i = 0; !rc && i < r->n_clusters; i++)
        if (!(props[i] = cluster_props(d, &r->clusters[i])))
            rc = PM_ERR(ctx, PM_E_NOMEM, "out of memory for %zu clusters", r->n_clusters);
    if (!rc && m->recurrence)
        rc = write_register_geojson(ctx, m->recurrence, props, r->n_clusters);
    if (!rc && m->recurrence_csv) {
        pm_recur_cluster none = {.district = -1};   /* for the header when there is no row */
        json_t *sample = r->n_clusters ? NULL : cluster_props(d, &none);
        rc = analyze_write_csv(ctx, m->recurrence_csv, props, r->n_clusters, sample);
        json_decref(sample);
    }
    if (!rc && !quiet)
        fprintf(stderr, "problemap: recurrence register: %zu places (%zu complaints) within %g m "
                        "and %d weeks\n", r->n_clusters, r->n_members, o.radius_m, o.weeks);
    analyze_props_free(props, r ? r->n_clusters : 0);
    pm_recur_free(r);
    return rc;
}

int analyze_more_run(pm_ctx *ctx, const analyze_more *m, const dataset *d, const layer_filters *lf,
                     int quiet)
{
    int rc = PM_OK;
    if (m->forecast || m->alerts)
        rc = run_forecast(ctx, m, d, lf, quiet);
    if (!rc && (m->recurrence || m->recurrence_csv))
        rc = run_recurrence(ctx, m, d, quiet);
    return rc;
}
