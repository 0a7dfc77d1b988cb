/* pm_boundaries.h — reading district boundaries (GeoJSON) into a pm_districts.
 *
 * Input: a GeoJSON FeatureCollection of Polygon / MultiPolygon features, in
 * any CRS PROJ knows (opts.crs, default EPSG:4326); coordinates are
 * transformed to lon/lat degrees with the axis order normalised
 * (proj_normalize_for_visualization), so an EPSG:4326 file is read lon,lat
 * as RFC 7946 says.
 *
 * Field mapping: opts.id_field, name_field, parent_field, population_field
 * name feature properties.  NULL means auto-detection:
 *   id:         property "id", then the feature's "id" member, then the
 *               first of "code", "iso", "fips", "oktmo", "gid", "osm_id"
 *   name:       "name", "name_ru", "NAME", "name_en", "title"
 *   parent:     "region_iso", "parent", "parent_id", "region", "state_fips"
 *   population: "population", "pop", "POP", "population_total"
 * Ids are strings; a number is written without a fraction (12 → "12").
 *
 * Every geometry is validated with GEOS.  An invalid one is repaired with
 * GEOSMakeValid, "structure" method (polygonal part kept; the default
 * "linework" method can drop a loop and open a gap) and a warning names
 * the feature; an
 * empty or null geometry, a non-polygonal one, or a feature without an id
 * is rejected with a warning naming the feature (index and id), and the
 * others go on.  No usable feature at all is an error (PM_E_INPUT_EMPTY).
 * A ring that is not closed, has fewer than 4 points, non-numeric or
 * untransformable coordinates, or is not lon/lat after the transform also
 * rejects its feature.  Feature and ring numbers in messages are 0-based
 * JSON indexes.  A field named in opts that no feature has is an error
 * (PM_E_INPUT_FIELD), not thousands of warnings.
 *
 * With opts.check_topology, overlaps between districts and gaps inside the
 * union (holes not filled by another district) are measured, in km² on the
 * ellipsoid, and summarised in the report and a warning.  The check covers
 * the districts of this file only.
 */
#ifndef PM_BOUNDARIES_H
#define PM_BOUNDARIES_H

#include "../engine/pm_ctx.h"
#include "../engine/pm_district.h"
#include <stddef.h>

typedef struct pm_boundary_opts {
    const char *id_field;
    const char *name_field;
    const char *parent_field;
    const char *population_field;
    const char *crs;          /* e.g. "EPSG:3857"; NULL: EPSG:4326 */
    int check_topology;       /* measure overlaps and gaps */
} pm_boundary_opts;

typedef struct pm_boundary_report {
    size_t features;          /* features in the file */
    size_t accepted;          /* districts added */
    size_t repaired;          /* invalid geometries repaired */
    size_t rejected;          /* features set aside (each named in a warning) */
    size_t overlap_pairs;     /* with check_topology */
    double overlap_km2;
    size_t gaps;
    double gap_km2;
} pm_boundary_report;

/* Reads path ("-" is stdin) and adds its districts to ds (not frozen; the
 * caller freezes after adding every file).  rep may be NULL. */
int pm_boundaries_read_geojson(pm_ctx *ctx, const char *path, const pm_boundary_opts *opts,
                               pm_districts *ds, pm_boundary_report *rep);

/* Second-level file: regions read from path become the parents of the
 * districts of ds that have none (the region containing each district's
 * point on surface; the lowest id on ties).  Region names come from the
 * file's name field. */
int pm_boundaries_read_regions(pm_ctx *ctx, const char *path, const pm_boundary_opts *opts,
                               pm_districts *ds);

/* Geodesic area of a lon/lat (multi)polygon in km², on WGS84 (PROJ's
 * geod_polygonarea); holes subtracted. */
int pm_geom_area_km2(pm_ctx *ctx, const GEOSGeometry *g, double *km2);

#endif
