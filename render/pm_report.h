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
 */
#ifndef PM_REPORT_H
#define PM_REPORT_H

#include "../engine/pm_ctx.h"
#include "../engine/pm_cube.h"
#include "../engine/pm_district.h"
#include "../geodata/pm_topics.h"

typedef enum pm_report_format { PM_REPORT_PNG = 0, PM_REPORT_PDF = 1, PM_REPORT_SVG = 2 } pm_report_format;

/* "png", "pdf", "svg" → format; by the path's extension when name is NULL; -1 if unknown. */
int pm_report_format_parse(const char *name, const char *path);

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
} pm_report_opts;

/* Draws the report of the cube's rows under filter f (may be NULL) into
 * path.  PM_E_RENDER when cairo or Pango fails (the message says which),
 * PM_E_USAGE for an unknown figure. */
int pm_report_write(pm_ctx *ctx, const char *path, pm_report_format fmt, const pm_districts *ds,
                    const pm_cube *cube, const pm_topics *topics, const pm_filter *f,
                    const pm_report_opts *opts);

#endif
