/* analyze.h — what the two halves of `problemap analyze` share: analyze.c
 * (options, hot spots, emerging hot spots, the tables) and analyze_time.c
 * (forecasts, surge alerts, the recurrence register).  Program code. */
#ifndef PM_ANALYZE_H
#define PM_ANALYZE_H

#include "layers.h"
#include "../engine/pm_hotspot.h"

#include <jansson.h>

/* The time half's options. */
typedef struct analyze_more {
    const char *forecast;        /* CSV: district × topic, next week, intervals, backtest */
    const char *alerts;          /* CSV: the surge alerts */
    const char *recurrence;      /* GeoJSON points: the recurrence register */
    const char *recurrence_csv;
    double recur_m;              /* 0: the library's default (50 m) */
    int recur_weeks;             /* 0: the library's default (8) */
    int fdr;                     /* surge alerts by the false discovery rate (5 %) */
} analyze_more;

#define ANALYZE_MORE_N 6
#define ANALYZE_MORE_OPTIONS(base)                                                      \
    {"forecast", required_argument, 0, (base)}, {"alerts", required_argument, 0, (base) + 1}, \
    {"recurrence", required_argument, 0, (base) + 2},                                   \
    {"recurrence-csv", required_argument, 0, (base) + 3},                               \
    {"recur-m", required_argument, 0, (base) + 4},                                      \
    {"recur-weeks", required_argument, 0, (base) + 5}
#define ANALYZE_USAGE_MORE                                                              \
    "  --forecast FILE          per district x topic: next week's expected count with 80 %\n" \
    "                           and 95 % intervals, and the backtest (MAE, coverage) (CSV)\n" \
    "  --alerts FILE            surge alerts: the last complete week above the 95 % bound\n" \
    "                           of its forecast, or with --fdr at a false discovery rate\n" \
    "                           of 5 % over all series (CSV)\n"                         \
    "  --recurrence FILE        the recurrence register: one topic at one place again and\n" \
    "                           again (GeoJSON points; --recurrence-csv FILE for a table)\n" \
    "  --recur-m M, --recur-weeks N   'one place' and 'again' (default 50 m, 8 weeks)\n"

typedef struct analyze_job {
    place_opts p;
    layer_request req;           /* the filters and the figure */
    const char *hotspots, *hotspots_csv, *emerging, *emerging_csv;
    size_t weeks;
    int fdr;
    double snap_m;
    pm_moran_opts moran;
    analyze_more more;
} analyze_job;

void analyze_more_init(analyze_more *m);
/* Option number which (0 .. ANALYZE_MORE_N − 1): an exit status. */
int analyze_more_option(analyze_more *m, int which, const char *arg);
int analyze_more_wanted(const analyze_more *m);
/* Runs and writes what m asks for: a pm_status. */
int analyze_more_run(pm_ctx *ctx, const analyze_more *m, const dataset *d, const layer_filters *lf,
                     int quiet);

/* Rows of JSON objects as CSV: a header of the first row's keys (of
 * sample when there is no row), sorted; strings as they are, numbers as
 * JSON writes them, null as empty. */
int analyze_write_csv(pm_ctx *ctx, const char *path, json_t *const *rows, size_t n,
                      const json_t *sample);
void analyze_props_free(json_t **p, size_t n);
int analyze_cmp_str(const void *a, const void *b);

#endif
