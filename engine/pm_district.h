/* pm_district.h — the set of districts (municipal units) and their regions.
 *
 * A pm_districts holds, for every district: its id (a string, unique),
 * name, parent region id, population (NAN when unknown) and its geometry,
 * a valid GEOS Polygon or MultiPolygon in lon/lat degrees (EPSG:4326,
 * x = lon, y = lat).  Districts are kept sorted by id in byte order
 * (strcmp), so "the lowest id" of the border rule is the lowest index.
 *
 * Regions are the roll-up level: every district has a parent index into
 * the region list (districts without a parent go to one region with an
 * empty id).  Regions carry an id and a name only.
 *
 * Geometries belong to the set and are created with the GEOS handle of the
 * context passed to pm_districts_new(); after pm_districts_freeze() they
 * are read-only.  GEOS 3.11 caches ring envelopes on first use, so
 * geometries are safe to read from several threads only once those caches
 * are filled: pm_locator_new() does that.
 */
#ifndef PM_DISTRICT_H
#define PM_DISTRICT_H

#include "pm_ctx.h"
#include <stddef.h>

typedef struct pm_districts pm_districts;

pm_districts *pm_districts_new(pm_ctx *ctx);
/* Frees the set and its geometries, with the handle of ctx. */
void pm_districts_free(pm_ctx *ctx, pm_districts *ds);

/* Adds a district; takes ownership of geom (also on failure).  Strings are
 * copied; name and parent_id may be NULL.  Fails with PM_E_INPUT_VALUE on a
 * duplicate id (checked in pm_districts_freeze). */
int pm_districts_add(pm_ctx *ctx, pm_districts *ds, const char *id, const char *name,
                     const char *parent_id, double population, GEOSGeometry *geom);

/* Sets the parent of district i (insertion order; only before freeze). */
int pm_districts_set_parent(pm_ctx *ctx, pm_districts *ds, size_t i, const char *parent_id);

/* Names a region (optional: a parent id without a name is named by its id). */
int pm_districts_name_region(pm_ctx *ctx, pm_districts *ds, const char *region_id,
                             const char *name);

/* Sorts by id, checks that ids are unique (PM_E_INPUT_VALUE naming the
 * duplicate), builds the region list and the id lookup.  Called once after
 * the last add; the set is read-only afterwards. */
int pm_districts_freeze(pm_ctx *ctx, pm_districts *ds);

/* Accessors.  Before pm_districts_freeze() indexes are in insertion order,
 * afterwards in id order. */
size_t pm_districts_count(const pm_districts *ds);
const char *pm_district_id(const pm_districts *ds, size_t i);
const char *pm_district_name(const pm_districts *ds, size_t i);     /* "" if none */
double pm_district_population(const pm_districts *ds, size_t i);    /* NAN if none */
size_t pm_district_region(const pm_districts *ds, size_t i);        /* after freeze */
const char *pm_district_parent_id(const pm_districts *ds, size_t i);  /* "" if none */
const GEOSGeometry *pm_district_geom_borrow(const pm_districts *ds, size_t i);

/* Index of the district with this id, or -1 (after freeze). */
long pm_districts_find(const pm_districts *ds, const char *id);

size_t pm_regions_count(const pm_districts *ds);
const char *pm_region_id(const pm_districts *ds, size_t r);
const char *pm_region_name(const pm_districts *ds, size_t r);

#endif
