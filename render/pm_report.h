/* pm_report.h — the one-page report for officials: PNG, PDF or SVG, drawn
 * once with cairo on the matching surface.
 *
 * The page (A4 landscape by default): the region's map in an equal-area
 * projection centred on the region (PROJ: +proj=laea at the centre of the
 * districts' extent — not Web Mercator, which at 61°N doubles lengths),
 * districts coloured by one cube figure with their borders, labels of the
 * top districts, a legend with values, a scale bar; title, period and
 * generation date; a side panel with the top-10 districts table,
 * complaints per topic as a bar chart, and the response figures (share
 * answered within 24 h, median time to answer, overdue).  Text through
 * Pango with a Debian font found by fontconfig (DejaVu Sans), so Cyrillic
 * renders as glyphs, not boxes.  Long names are shortened with an
 * ellipsis, never overlapping; the layout holds for 2 districts and 130.
 * The file is written to a temporary name and renamed.
 *
 * With opts->analytics, a second page follows: "Аналитика: появляющиеся
 * горячие точки и всплески обращений" — the districts' map coloured by
 * emerging hot-spot class (hot classes in reds, cold in blues, no pattern
 * pale), a table of the hot and cold spots (district, class in Russian,
 * trend as an arrow and a word, the last week's Gi* z), a table of the
 * surge alerts (district, topic, this week's count, expected, upper 95 %
 * bound, "+N %" over the expected) and a footnote in plain words.  PDF
 * gets two pages; PNG and SVG, single-page formats, get both pages
 * stacked on one sheet twice as high (the report first, a thin rule
 * where the second page begins), so a PNG at 150 dpi is 1754 × 2480 px.
 */
#ifndef PM_REPORT_H
#define PM_REPORT_H

#include "../engine/pm_ctx.h"
#include "../engine/pm_cube.h"
#include "../engine/pm_district.h"
#include "../geodata/pm_topics.h"
#include "pm_heat.h"
#include <stddef.h>
#include <stdint.h>

typedef enum pm_report_format { PM_REPORT_PNG = 0, PM_REPORT_PDF = 1, PM_REPORT_SVG = 2 } pm_report_format;

/* "png", "pdf", "svg" → format; by the path's extension when name is NULL; -1 if unknown. */
int pm_report_format_parse(const char *name, const char *path);

/* The analytics page (pm_report_analytics).  Rows come chosen and
 * ordered by the caller; each table lists the first PM_REPORT_ANALYTICS_ROWS
 * of them and then a line "и ещё N". */
#define PM_REPORT_ANALYTICS_ROWS 10

/* A district with an emerging hot- or cold-spot class (pm_hotspot.h). */
typedef struct pm_report_hotspot {
    size_t district;   /* index in ds (and in the cube) */
    int ehs_class;     /* pm_ehs_class, PM_EHS_NEW_HOT .. PM_EHS_HISTORICAL_COLD (not NONE) */
    double trend_z;    /* Mann-Kendall z of the district's Gi* series (pm_emerging.trend[i].z);
                        * |z| >= 1.96 is drawn as a trend (↑ растёт, ↓ снижается); NAN: "—" */
    double last_z;     /* the Gi* z of the last week; NAN: "—" */
} pm_report_hotspot;

/* A surge alert: a district × topic whose last week is a surge
 * (pm_forecast.h: pm_forecast_row with surge set). */
typedef struct pm_report_alert {
    size_t district;   /* index in ds */
    uint16_t topic;    /* index in the pm_topics */
    double observed;   /* the last week's count (last_count) */
    double expected;   /* its forecast from the weeks before (last_expected) */
    double upper95;    /* the upper 95 % bound of that forecast (last_hi95) */
} pm_report_alert;

/* The analytics page.  hot: every district with a class other than
 * PM_EHS_NONE (the map colours all of them; the table lists the first
 * rows), in the order to list them — suggested: hot before cold, then by
 * class in pm_ehs_class order, then by |last_z|, largest first.  alerts:
 * the surges, most pressing first — suggested: by observed / expected,
 * largest first.  Either list may be empty ("не выявлено").  A district,
 * class or topic out of range is PM_E_USAGE. */
typedef struct pm_report_analytics {
    const char *period_label;          /* under the title, e.g. "8 недель по 02.03.2025";
                                        * NULL: none */
    const pm_report_hotspot *hot;      /* n_hot rows (may be NULL when 0) */
    size_t n_hot;
    const pm_report_alert *alerts;     /* n_alerts rows (may be NULL when 0) */
    size_t n_alerts;
    double fdr;                        /* 0: bins at 90/95/99 % and alerts above the 95 %
                                        * bound; else the false discovery rate both were
                                        * held to (analyze --fdr: 0.05, "FDR 5 %") */
} pm_report_analytics;

typedef struct pm_report_opts {
    const char *title;        /* NULL: "Обращения граждан" */
    const char *figure;       /* the choropleth figure, a property name of
                               * pm_cube_out.h: "complaints" (default),
                               * "complaints_per_10k", "complaints_per_km2",
                               * "answered_within_24h_share", "change_pct",
                               * "overdue_share", "rating_index" */
    double width_mm, height_mm;   /* 0: 297 × 210 */
    double dpi;               /* PNG resolution; 0: 150 */
    const char *generated;    /* the generation date printed; NULL: today (UTC) */
    const char *attribution;  /* printed small under the scale bar, e.g.
                               * "Границы: © участники OpenStreetMap" (ODbL
                               * data must say so); NULL: none */
    /* The heat layer: the kernel density of the complaints themselves,
     * drawn half-transparent over the coloured districts (computed on the
     * report's own equal-area plane, so it is true to the ground).  Drawn
     * when heat_cs is not NULL; heat_filter (may be NULL: all) should
     * select what f selects, so the heat and the districts tell one story.
     * Complaints of suppressed districts are left off the heat, and the
     * layer ends at the districts' borders. */
    const pm_complaints *heat_cs;
    const pm_placed *heat_pl;
    const pm_heat_filter *heat_filter;   /* indexes of heat_cs's dictionaries */
    long heat_utc_offset_s;              /* for heat_filter's local days */
    double heat_radius_m;                /* kernel radius; 0: 1/60 of the map's larger side */
    int threads;              /* threads projecting the heat layer's complaints: 0, one per
                               * core for a million complaints or more each; else at most
                               * this many.  The picture is the same either way. */
    /* The analytics page after the report (see above); NULL: the one-page
     * report.  Borrowed for the call. */
    const pm_report_analytics *analytics;
} pm_report_opts;

/* Draws the report of the cube's rows under filter f (may be NULL) into
 * path.  PM_E_RENDER when cairo or Pango fails (the message says which),
 * PM_E_USAGE for an unknown figure, a bad page size or analytics row. */
int pm_report_write(pm_ctx *ctx, const char *path, pm_report_format fmt, const pm_districts *ds,
                    const pm_cube *cube, const pm_topics *topics, const pm_filter *f,
                    const pm_report_opts *opts);

/* The same drawing into memory: *buf (free with pm_free) gets *len bytes
 * of the PNG, PDF or SVG file.  name is used in error messages only. */
int pm_report_render(pm_ctx *ctx, const char *name, pm_report_format fmt, const pm_districts *ds,
                     const pm_cube *cube, const pm_topics *topics, const pm_filter *f,
                     const pm_report_opts *opts, uint8_t **buf, size_t *len);

#endif
