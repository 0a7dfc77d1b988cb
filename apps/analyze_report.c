/* analyze_report.c — `problemap analyze --report FILE`: the report for
 * officials (render/pm_report.h) with its analytics page: the districts'
 * emerging hot-spot classes and the surge alerts, chosen and ordered here
 * as the page expects (pm_report_analytics). */
#include "analyze.h"
#include "../engine/pm_alloc.h"
#include "../engine/pm_civil.h"
#include "../render/pm_report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- the emerging hot and cold spots ------------------------------------------- */

static int is_hot(int cls) { return cls >= PM_EHS_NEW_HOT && cls <= PM_EHS_HISTORICAL_HOT; }

/* Hot before cold, then by class, then by |last z|, largest first; then by
 * district, so the order is total. */
static int cmp_hot(const void *a, const void *b)
{
    const pm_report_hotspot *x = a, *y = b;
    if (is_hot(x->ehs_class) != is_hot(y->ehs_class))
        return is_hot(x->ehs_class) ? -1 : 1;
    if (x->ehs_class != y->ehs_class)
        return x->ehs_class < y->ehs_class ? -1 : 1;
    double zx = isfinite(x->last_z) ? fabs(x->last_z) : -1, zy = isfinite(y->last_z) ? fabs(y->last_z) : -1;
    if (zx != zy)
        return zx > zy ? -1 : 1;
    return (x->district > y->district) - (x->district < y->district);
}

static int hot_rows(pm_ctx *ctx, const analyze_emerging *em, pm_report_hotspot **out, size_t *n)
{
    size_t units = em->e->n, k = 0;
    *out = pm_calloc(units ? units : 1, sizeof **out);
    if (!*out)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory for the report's hot spots");
    const pm_gistar *last = em->steps[em->n_steps - 1];
    for (size_t i = 0; i < units; i++)
        if (em->e->cls[i] != PM_EHS_NONE)
            (*out)[k++] = (pm_report_hotspot){i, em->e->cls[i], em->e->trend[i].z, last->z[i]};
    qsort(*out, k, sizeof **out, cmp_hot);
    *n = k;
    return PM_OK;
}

/* ---- the surge alerts ---------------------------------------------------------- */

/* How far above its forecast a week is (no forecast or 0 expected: first). */
static double excess(const pm_report_alert *a)
{
    return isfinite(a->expected) && a->expected > 0 ? a->observed / a->expected : INFINITY;
}

static int cmp_alert(const void *a, const void *b)
{
    const pm_report_alert *x = a, *y = b;
    double ex = excess(x), ey = excess(y);
    if (ex != ey)
        return ex > ey ? -1 : 1;
    if (x->district != y->district)
        return x->district < y->district ? -1 : 1;
    return (x->topic > y->topic) - (x->topic < y->topic);
}

static int alert_rows(pm_ctx *ctx, const pm_forecast *fc, pm_report_alert **out, size_t *n)
{
    size_t k = 0;
    *out = pm_calloc(fc->totals.surges ? fc->totals.surges : 1, sizeof **out);
    if (!*out)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory for the report's surge alerts");
    for (size_t r = 0; r < fc->n_rows && k < fc->totals.surges; r++) {
        const pm_forecast_row *row = &fc->rows[r];
        if (row->surge)
            (*out)[k++] = (pm_report_alert){row->district, row->topic, (double)row->last_count,
                                            row->last_expected, (double)row->last_hi95};
    }
    qsort(*out, k, sizeof **out, cmp_alert);
    *n = k;
    return PM_OK;
}

/* ---- the page ------------------------------------------------------------------ */

static const char *weeks_word(size_t n)
{
    size_t d = n % 10, h = n % 100;
    if (d == 1 && h != 11)
        return "неделя";
    if (d >= 2 && d <= 4 && (h < 12 || h > 14))
        return "недели";
    return "недель";
}

/* "8 недель по 02.03.2025": the weeks analysed and the last day of the last. */
static void period_label(const dataset *d, const analyze_emerging *em, char *buf, size_t cap)
{
    int64_t last = em->first_week + (int64_t)em->n_steps - 1;
    int64_t end = pm_period_start(PM_PERIOD_WEEK, last + 1, d->utc_offset_s) - 1;
    int64_t y;
    int m, day;
    pm_civil_from_days(pm_floor_div(end + d->utc_offset_s, 86400), &y, &m, &day);
    snprintf(buf, cap, "%zu %s по %02d.%02d.%04lld", em->n_steps, weeks_word(em->n_steps), day, m,
             (long long)y);
}

int analyze_report_write(pm_ctx *ctx, const char *path, const dataset *d, const layer_filters *lf,
                         const char *figure, const analyze_emerging *em, int fdr)
{
    pm_report_hotspot *hot = NULL;
    pm_report_alert *alerts = NULL;
    pm_forecast *fc = NULL;
    char label[64];
    pm_report_analytics an = {.fdr = fdr ? 0.05 : 0};
    int rc = hot_rows(ctx, em, &hot, &an.n_hot);
    if (!rc)
        rc = analyze_forecast_new(ctx, d, lf, fdr, &fc);
    if (!rc)
        rc = alert_rows(ctx, fc, &alerts, &an.n_alerts);
    if (!rc) {
        period_label(d, em, label, sizeof label);
        an.period_label = label;
        an.hot = hot;
        an.alerts = alerts;
        pm_report_opts o = {.figure = figure, .analytics = &an};
        rc = pm_report_write(ctx, path, (pm_report_format)pm_report_format_parse(NULL, path), d->run.ds,
                             d->cube, d->run.t, &lf->cube, &o);
    }
    pm_forecast_free(fc);
    pm_free(hot);
    pm_free(alerts);
    return rc;
}
