/* pm_cube_out.h — the cube's tables for people and GIS tools: GeoJSON
 * (RFC 7946), CSV for spreadsheets, and a JSON summary.
 *
 * The rows come from pm_cube_query() (PM_LEVEL_DISTRICT or
 * PM_LEVEL_REGION for GeoJSON; any level for CSV).  Every file is written
 * to a temporary name and renamed (pm_out.h); the same input gives
 * byte-identical files (sorted keys, fixed precision).  Each writer also
 * has a stream variant (pm_cube_*_stream) that writes the same bytes to an
 * open FILE — an open_memstream() buffer for a web server — and which the
 * path variant calls between pm_outfile_open() and pm_outfile_commit().  No complaint text
 * or author exists at this level, so none can be written.
 *
 * Property names explain themselves and are the same in GeoJSON and CSV
 * (docs/cube.md lists them): id, name, region_id, region_name, complaints,
 * complaints_per_km2, complaints_per_10k, complaints_per_10k_smoothed,
 * answered, answered_within_24h, answered_within_24h_share,
 * answer_time_median_h, answer_time_p90_h, open, overdue, overdue_share,
 * previous_complaints, change, change_pct, rating_index, rating_rank,
 * area_km2, population, suppressed.  A suppressed row (fewer complaints
 * than --min-count) has null figures and "suppressed": true — never a zero
 * that could be read as "no complaints".  A figure without a value is
 * null in GeoJSON and empty in CSV.
 */
#ifndef PM_CUBE_OUT_H
#define PM_CUBE_OUT_H

#include "../engine/pm_ctx.h"
#include "../engine/pm_cube.h"
#include "../engine/pm_district.h"
#include "pm_topics.h"
#include <stddef.h>
#include <jansson.h>
#include <stdio.h>

/* Arguments that may be NULL: cube for GeoJSON; CSV needs ds (DISTRICT,
 * REGION), cube (EXECUTOR) and topics (TOPIC); the summary needs all three,
 * f may be NULL; opts may be NULL everywhere.  A missing one that is
 * needed: PM_E_USAGE.  EXECUTOR and TOPIC rows have no area_km2 or
 * population columns. */
typedef struct pm_export_opts {
    int decimals;          /* coordinate decimals, 6 or 7 (0: 6) */
    double simplify_m;     /* > 0: simplify geometries for the web, tolerance in metres */
    int csv_bom;           /* CSV: UTF-8 byte-order mark (Excel) */
    char csv_delim;        /* CSV: ',' (0) or ';' (Russian Excel) */
} pm_export_opts;

/* GeoJSON FeatureCollection, RFC 7946: lon/lat WGS84, exterior rings
 * counter-clockwise and holes clockwise, a bbox on the collection and on
 * every feature, a feature "id" equal to the district (region) id, one
 * feature per row.  level is PM_LEVEL_DISTRICT or PM_LEVEL_REGION (a
 * region's geometry is the union of its districts). */
int pm_cube_write_geojson(pm_ctx *ctx, const char *path, const pm_districts *ds,
                          const pm_cube *cube, pm_level level, const pm_row *rows, size_t n,
                          const pm_export_opts *opts);

/* A FeatureCollection of districts with the caller's properties (analysis
 * layers: hot spots, emerging classes): feature i is district keys[i] with
 * props[i] (a JSON object, borrowed), geometry, bbox and id as in
 * pm_cube_write_geojson(). */
int pm_districts_write_geojson(pm_ctx *ctx, const char *path, const pm_districts *ds,
                               const size_t *keys, json_t *const *props, size_t n,
                               const pm_export_opts *opts);
int pm_districts_geojson_stream(pm_ctx *ctx, FILE *f, const char *name, const pm_districts *ds,
                                const size_t *keys, json_t *const *props, size_t n,
                                const pm_export_opts *opts);

/* CSV with a header of the property names (for PM_LEVEL_EXECUTOR the key
 * columns are executor; for PM_LEVEL_TOPIC topic, topic_name_ru). */
int pm_cube_write_csv(pm_ctx *ctx, const char *path, const pm_districts *ds,
                      const pm_cube *cube, const pm_topics *topics, pm_level level,
                      const pm_row *rows, size_t n, const pm_export_opts *opts);

/* JSON summary: the period (kind, first and last label, report time), the
 * filter, totals (the PM_LEVEL_TOTAL row), the top 10 districts by count
 * and by rating, complaints per topic, the 10 slowest executors (by median
 * answer time, rated ones only). */
int pm_cube_write_summary(pm_ctx *ctx, const char *path, const pm_districts *ds,
                          const pm_cube *cube, const pm_topics *topics, const pm_filter *f);

/* The stream variants: the same content written to f, which stays open
 * (the caller flushes and closes it); name stands for the output in error
 * messages.  Nothing is written when the arguments are wrong, but after a
 * later error (out of memory, GEOS) f may hold a partial document, which
 * the caller drops.  A write error on f (ferror) is PM_E_IO. */
int pm_cube_geojson_stream(pm_ctx *ctx, FILE *f, const char *name, const pm_districts *ds,
                           const pm_cube *cube, pm_level level, const pm_row *rows, size_t n,
                           const pm_export_opts *opts);
int pm_cube_csv_stream(pm_ctx *ctx, FILE *f, const char *name, const pm_districts *ds,
                       const pm_cube *cube, const pm_topics *topics, pm_level level,
                       const pm_row *rows, size_t n, const pm_export_opts *opts);
int pm_cube_summary_stream(pm_ctx *ctx, FILE *f, const char *name, const pm_districts *ds,
                           const pm_cube *cube, const pm_topics *topics, const pm_filter *flt);

#endif
