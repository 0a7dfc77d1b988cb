/* pm_locate.h — point → district (geocoding), exact.
 *
 * Semantics (docs/geocoding.md has the long form):
 * - A point belongs to the district whose closure contains it.  Where
 *   several do (a shared border, a shared vertex, an overlap), it goes to
 *   the one with the lowest id in byte order: the same answer as PostGIS
 *   `ST_Intersects` joined with `DISTINCT ON (point) ORDER BY district id`.
 *   A point inside a hole belongs to the enclave that fills the hole.
 * - PM_PLACE_INSIDE when the chosen district's interior contains the point,
 *   PM_PLACE_BORDER when the point lies on its boundary.
 * - A point in no district but within snap_tolerance_m metres (geodesic,
 *   on the WGS84 ellipsoid) of one is snapped to the nearest such district
 *   (ties: lowest id) and flagged PM_PLACE_SNAPPED, with its distance.
 * - Beyond the tolerance: PM_PLACE_OUTSIDE, district -1.
 * - A complaint without coordinates is placed by its district code:
 *   PM_PLACE_BY_CODE (or PM_PLACE_UNKNOWN_CODE when no district has it).
 *
 * The locator is built once (STRtree over the districts, prepared
 * geometries, all indexes built eagerly) and is then read-only: any number
 * of threads may query it, each with its own pm_ctx.
 */
#ifndef PM_LOCATE_H
#define PM_LOCATE_H

#include "pm_complaint.h"
#include "pm_snap.h"
#include "pm_ctx.h"
#include "pm_district.h"
#include <stdint.h>

typedef enum pm_placement {
    PM_PLACE_INSIDE = 0,
    PM_PLACE_BORDER = 1,
    PM_PLACE_SNAPPED = 2,
    PM_PLACE_BY_CODE = 3,
    PM_PLACE_OUTSIDE = 4,
    PM_PLACE_UNKNOWN_CODE = 5,
    PM_PLACE_REJECTED = 6,   /* set by a caller that rejected the complaint after
                              * placing it (e.g. swapped coordinates): nothing
                              * downstream counts it */
    PM_PLACE_N = 7
} pm_placement;

/* "inside", "border", "snapped", "by_code", "outside", "unknown_code",
 * "rejected". */
const char *pm_placement_name(pm_placement p);
/* Whether a complaint so placed is in a district (inside, border, snapped,
 * by code): counted there, and its district index is set. */
static inline int pm_placement_in_district(unsigned p) { return p <= PM_PLACE_BY_CODE; }

typedef struct pm_locator pm_locator;

/* Builds the locator over ds (borrowed, frozen; must outlive the locator).
 * snap_tolerance_m < 0 means the default, 1000 m; 0 turns snapping off.
 * PM_E_USAGE when ds is not frozen or the tolerance is not finite. */
int pm_locator_new(pm_ctx *ctx, const pm_districts *ds, double snap_tolerance_m,
                   pm_locator **out);
void pm_locator_free(pm_ctx *ctx, pm_locator *loc);

/* The oracle: with on != 0 the locator answers by brute force (every point
 * against every district, unprepared GEOS predicates, same rules).  Slow;
 * for tests and `problemap geocode --brute-force`. */
void pm_locator_set_brute_force(pm_locator *loc, int on);

/* The raster fast path (docs/geocoding.md, "The raster"): a grid over the
 * districts whose cells are classified exactly at build time; a point in
 * a cell inside one district is answered without GEOS, a point in a
 * border cell is tested against that cell's districts only.  On by
 * default; with on == 0 every query takes the STRtree path.  The answers
 * are the same either way (tests compare them); for tests and
 * measurements.  Like pm_locator_set_brute_force(), call it before
 * sharing the locator between threads. */
void pm_locator_set_raster(pm_locator *loc, int on);

/* What the raster holds (all zero when the locator has none: no district
 * with an area). */
typedef struct pm_raster_info {
    uint32_t nx, ny;             /* cells */
    double lon0_deg, lat0_deg;   /* the grid's corner: cell edges are at
                                  * lon0_deg + i * cell_lon_deg, and so on */
    double cell_lon_deg, cell_lat_deg;
    size_t cells_inside;         /* wholly inside one district */
    size_t cells_outside;        /* meeting no district */
    size_t cells_border;         /* the rest: exact test on the cell's districts */
    size_t bytes;
} pm_raster_info;
void pm_locator_raster_info(const pm_locator *loc, pm_raster_info *info);

/* Locates one point.  *district is the index in ds or -1; *dist_m is the
 * snap distance in metres (0 unless snapped).  PM_E_INPUT_VALUE for a
 * non-finite or out-of-range lon/lat; PM_E_GEOM, PM_E_NOMEM. */
int pm_locate_point(pm_ctx *ctx, const pm_locator *loc, double lon, double lat,
                    int32_t *district, pm_placement *placement, double *dist_m);

/* The result of placing a batch: arrays of n, the first n complaints of
 * the batch (all of them after pm_locate_batch()). */
typedef struct pm_placed {
    size_t n;
    int32_t *district;       /* index into ds, -1 when none */
    uint8_t *placement;      /* pm_placement */
    size_t counts[PM_PLACE_N];   /* of the n */
    size_t cap;              /* room in the arrays */
    /* The snap distances of the snapped complaints only, by increasing
     * index (few are snapped): read them with pm_placed_snap_m. */
    uint32_t *snap_i;
    float *snap_d;
    size_t n_snap, snap_cap;
    int borrowed;            /* the arrays are a snapshot's (pm_placed_snap_map): read
                              * only, never grown or freed */
} pm_placed;

/* Complaint i's snap distance in metres: 0 unless it was snapped. */
float pm_placed_snap_m(const pm_placed *p, size_t i);

/* Writes the placement (districts, placements, snap distances) as
 * sections of w (pm_snap.h; docs/dataset.md). */
int pm_placed_snap_write(pm_ctx *ctx, const pm_placed *p, pm_snap_writer *w);
/* The placement of n complaints those sections of s hold, read in place
 * (s must outlive it; pm_placed_free() frees only the struct), its counts
 * made again.  Checked: placements known, districts below n_districts (or
 * none, and none only where not placed), snap distances finite, at
 * increasing indexes below n: PM_E_INPUT naming the section otherwise. */
int pm_placed_snap_map(pm_ctx *ctx, pm_snap *s, size_t n, size_t n_districts, pm_placed **out);

/* Places every complaint of cs, on n_threads threads (0: all cores).  The
 * result does not depend on the number of threads.  Caller frees with
 * pm_placed_free().  A complaint with lon or lat NaN is placed by its
 * district code.  On error *out is NULL and the message names the first
 * failing complaint in input order; PM_E_USAGE for n_threads < 0. */
int pm_locate_batch(pm_ctx *ctx, const pm_locator *loc, const pm_complaints *cs,
                    int n_threads, pm_placed **out);
/* An empty placement (n = 0), for pm_locate_more(); NULL when out of
 * memory.  Free with pm_placed_free(). */
pm_placed *pm_placed_new(void);
/* Places the complaints of cs that p does not hold yet, [p->n, count),
 * and appends them to p (its arrays grow; counts add up): a batch that is
 * still being read is placed block by block, with the same result as
 * pm_locate_batch() at the end.  On error p is as before (its arrays may
 * have grown) and the message names the first failing complaint;
 * PM_E_USAGE for n_threads < 0 or when p holds more than cs. */
int pm_locate_more(pm_ctx *ctx, const pm_locator *loc, const pm_complaints *cs, int n_threads,
                   pm_placed *p);
void pm_placed_free(pm_placed *p);

#endif
