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
#include "pm_heat.h"
#include <stddef.h>
#include <stdint.h>

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
} pm_report_opts;

/* Draws the report of the cube's rows under filter f (may be NULL) into
 * path.  PM_E_RENDER when cairo or Pango fails (the message says which),
 * PM_E_USAGE for an unknown figure. */
int pm_report_write(pm_ctx *ctx, const char *path, pm_report_format fmt, const pm_districts *ds,
                    const pm_cube *cube, const pm_topics *topics, const pm_filter *f,
                    const pm_report_opts *opts);

/* The same drawing into memory: *buf (free with pm_free) gets *len bytes
 * of the PNG, PDF or SVG file.  name is used in error messages only. */
int pm_report_render(pm_ctx *ctx, const char *name, pm_report_format fmt, const pm_districts *ds,
                     const pm_cube *cube, const pm_topics *topics, const pm_filter *f,
                     const pm_report_opts *opts, uint8_t **buf, size_t *len);

#endif
