/* analyze.h — what the parts of `problemap analyze` share: analyze.c
 * (options, hot spots, emerging hot spots, the tables), analyze_time.c
 * (forecasts, surge alerts, the recurrence register) and analyze_grid.c
 * (hot spots on an equal-area grid).  Program code. */
#ifndef PM_ANALYZE_H
#define PM_ANALYZE_H

#include "layers.h"
#include "../engine/pm_forecast.h"
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

/* The grid half's options (analyze_grid.c). */
typedef struct analyze_grid {
    const char *hotspots;        /* GeoJSON polygons: the cells with count, Gi* */
    const char *hotspots_csv;    /* the same with the centre's lon/lat */
    const char *emerging;        /* GeoJSON polygons: emerging classes per cell */
    const char *emerging_csv;
    double cell_m;               /* the square's side; hexagons of the same area */
    int shape;                   /* pm_cell_shape */
    double band_m;               /* 0: just over the nearest ring (8 squares, 6 hexagons) */
    size_t knn;                  /* > 0: k nearest instead of the band */
    int fdr;                     /* set from analyze_job.fdr */
    size_t weeks;                /* set from analyze_job.weeks */
} analyze_grid;

#define ANALYZE_GRID_N 8
#define ANALYZE_GRID_OPTIONS(base)                                                      \
    {"grid-hotspots", required_argument, 0, (base)},                                    \
    {"grid-hotspots-csv", required_argument, 0, (base) + 1},                            \
    {"grid-emerging", required_argument, 0, (base) + 2},                                \
    {"grid-emerging-csv", required_argument, 0, (base) + 3},                            \
    {"grid-m", required_argument, 0, (base) + 4},                                       \
    {"grid-shape", required_argument, 0, (base) + 5},                                   \
    {"grid-band-m", required_argument, 0, (base) + 6},                                  \
    {"grid-knn", required_argument, 0, (base) + 7}
#define ANALYZE_USAGE_GRID                                                              \
    "  --grid-hotspots FILE     Gi* on an equal-area grid: the cells whose centre is in a\n" \
    "                           district, with count, gi_z, gi_p, gi_p_fdr, gi_bin\n"  \
    "                           (GeoJSON polygons; --grid-hotspots-csv FILE: a table with\n" \
    "                           each cell's centre)\n"                                  \
    "  --grid-emerging FILE     emerging hot spots per cell over --weeks weeks (GeoJSON;\n" \
    "                           --grid-emerging-csv FILE for a table)\n"               \
    "  --grid-m M               the cell: a square of side M metres, or a hexagon of the\n" \
    "                           same area (default 1000)\n"                            \
    "  --grid-shape square|hex  the cells' shape (default square; hex: pointy-top)\n"  \
    "  --grid-band-m D          cells within D metres are neighbours (default: the nearest\n" \
    "                           ring, 8 squares or 6 hexagons)\n"                       \
    "  --grid-knn K             the K nearest cells are neighbours instead\n"

void analyze_grid_init(analyze_grid *g);
/* Option number which (0 .. ANALYZE_GRID_N − 1): an exit status. */
int analyze_grid_option(analyze_grid *g, int which, const char *arg);
int analyze_grid_wanted(const analyze_grid *g);
/* Runs and writes what g asks for: a pm_status. */
int analyze_grid_run(pm_ctx *ctx, const analyze_grid *g, const dataset *d, const layer_filters *lf,
                     int quiet);

typedef struct analyze_job {
    place_opts p;
    layer_request req;           /* the filters and the figure */
    const char *hotspots, *hotspots_csv, *emerging, *emerging_csv;
#define ANALYZE_REPORTS_MAX 3
    const char *reports[ANALYZE_REPORTS_MAX];   /* the report with its analytics page */
    size_t n_reports;
    size_t weeks;
    int fdr;
    double snap_m;
    pm_moran_opts moran;
    analyze_more more;
    analyze_grid grid;
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

/* ---- shared by the parts ---- */

/* The forecasts of every district × topic over the request's range (the
 * cube's span without one); surge alerts by the FDR rule when fdr. */
int analyze_forecast_new(pm_ctx *ctx, const dataset *d, const layer_filters *lf, int fdr,
                         pm_forecast **out);

/* A JSON number, or null when x is not finite. */
json_t *analyze_num(double x);

/* Emerging hot spots over n units: Gi* of each of the last `weeks` weeks
 * of range (its periods, or the cube's whole span), then the classes.
 * fn fills v[0..n-1] with the units' values of one week (a pm_status). */
typedef int (*analyze_week_fn)(pm_ctx *ctx, void *user, int64_t week, double *v);
typedef struct analyze_emerging {
    pm_gistar **steps;
    size_t n_steps;
    int64_t first_week;
    pm_emerging *e;
} analyze_emerging;
int analyze_emerging_compute(pm_ctx *ctx, const dataset *d, const pm_weights *w, size_t n,
                             const pm_filter *range, size_t weeks, int fdr, analyze_week_fn fn,
                             void *user, analyze_emerging *em);
void analyze_emerging_free(analyze_emerging *em);

/* The report for officials (analyze_report.c) into path (.png, .pdf or
 * .svg): the usual page of the cube under lf (the choropleth of figure,
 * NULL: complaints) and the analytics page — the districts' emerging
 * classes from em (district units) and the surge alerts of the forecast
 * (FDR rule when fdr), most pressing first.  A pm_status. */
int analyze_report_write(pm_ctx *ctx, const char *path, const dataset *d, const layer_filters *lf,
                         const char *figure, const analyze_emerging *em, int fdr);
/* Adds unit i's emerging_class, trend_z, trend_p, hot_weeks, cold_weeks
 * and last_gi_z to props: 0, or -1 when out of memory. */
int analyze_emerging_props(const analyze_emerging *em, size_t i, json_t *props);

/* A CSV table written row by row (for tables too large to hold): the
 * columns are the keys of `first`, sorted; values as analyze_write_csv()
 * writes them.  Commit or abort frees it. */
typedef struct analyze_csv analyze_csv;
int analyze_csv_open(pm_ctx *ctx, const char *path, const json_t *first, analyze_csv **out);
void analyze_csv_row(analyze_csv *c, const json_t *row);
int analyze_csv_commit(pm_ctx *ctx, analyze_csv *c);
void analyze_csv_abort(analyze_csv *c);

#endif
