/* pm_heat.h — heat-map tiles: kernel density of complaints on the XYZ grid.
 *
 * Points.  pm_points keeps the placed complaints that have coordinates, as
 * positions on a tile grid (Web Mercator EPSG:3857, or World Mercator
 * EPSG:3395 on the ellipsoid, as Yandex uses) in metres, with topic, local
 * day and source, sorted by their Morton (Z-order) code at zoom 24, so the
 * points of any tile (plus the kernel's margin) are found by binary search
 * over a few contiguous ranges: a tile's cost does not grow with the total
 * number of points.  The forward projection is each grid's closed form
 * (Mercator on the sphere or on the ellipsoid), which a test holds to
 * PROJ's within 1e-6 m.
 *
 * Density.  At each pixel centre, V = Σ w·K(d/R) (w: the point's weight,
 * see pm_weight) over the points within R
 * (d in metres on the grid's plane, scaled to the ground by the Mercator
 * scale factor at the point's latitude when the radius is in metres):
 * quartic K(u) = (1 − u²)² (QGIS's default kernel, textbook form) or
 * Gaussian K(u) = exp(−u²/2·9) cut at u = 1 (σ = R/3).  Raw, unnormalised
 * sums: V is "complaints near here".  Points in neighbouring tiles within R
 * count, so tiles meet without seams.  A tile whose exact sum would be
 * costly (millions of points at a low zoom, discs wider than the tile at a
 * high one) is drawn from the layer's count pyramid instead: points grouped
 * by Morton cell at their weighted centroids, drawn one by one or, on
 * dense tiles, deposited on a grid and convolved with the kernel, the
 * density on a lattice interpolated between its nodes — within a few per
 * cent of the exact sum and 2 colour entries of 256 (heat.c;
 * tests/unit/test_heat.c).
 *
 * Colour.  A layer has one fixed scale: v_max from pm_heat_layer_new() (the
 * density at the 99th percentile of a fixed sample of the points, or the
 * caller's value), the same at every zoom and tile, so the same density has
 * the same colour everywhere.  Colours from a perceptually uniform ramp
 * (viridis, inferno, YlOrRd) on a log scale from v_max/1000 to v_max, with
 * alpha rising from 0 (transparent background) — the ramp's stops are
 * available for a legend.
 */
#ifndef PM_HEAT_H
#define PM_HEAT_H

#include "../engine/pm_complaint.h"
#include "../engine/pm_ctx.h"
#include "../engine/pm_locate.h"
#include "../engine/pm_snap.h"
#include <stddef.h>
#include <stdint.h>

typedef enum pm_grid { PM_GRID_WEBMERC = 0, PM_GRID_WORLDMERC = 1 } pm_grid;
/* The grid's CRS for PROJ: "EPSG:3857" or "EPSG:3395" (static). */
const char *pm_grid_crs(pm_grid g);
typedef enum pm_kernel { PM_KERNEL_QUARTIC = 0, PM_KERNEL_GAUSSIAN = 1 } pm_kernel;
typedef enum pm_ramp { PM_RAMP_INFERNO = 0, PM_RAMP_VIRIDIS = 1, PM_RAMP_YLORRD = 2 } pm_ramp;

typedef struct pm_points pm_points;

/* Points of the placed complaints of cs that have coordinates (placement
 * inside, border or snapped), projected to grid.  Local days at
 * utc_offset_s.  Caller frees with pm_points_free(). */
int pm_points_new(pm_ctx *ctx, const pm_complaints *cs, const pm_placed *pl, pm_grid grid,
                  long utc_offset_s, pm_points **out);
/* Weights: what a point counts for in the density (and in grid cells).
 * report_time (UTC) is when "open", "overdue" and "waiting" are judged —
 * the cube's report time, so the map and the tables agree.
 *   PM_WEIGHT_ONE      every complaint 1 (pm_points_new)
 *   PM_WEIGHT_OPEN     1 if it has no answer (the cube's "open":
 *                      report_time does not reopen one answered later), else 0
 *   PM_WEIGHT_OVERDUE  1 if open and created before report_time − 24 h
 *                      (strictly; the cube's "overdue"), else 0
 *   PM_WEIGHT_WAIT_H   hours from creation to the answer, or to
 *                      report_time while open (0 if created after it)
 * Points of weight 0 are left out. */
typedef enum pm_weight {
    PM_WEIGHT_ONE = 0, PM_WEIGHT_OPEN = 1, PM_WEIGHT_OVERDUE = 2, PM_WEIGHT_WAIT_H = 3
} pm_weight;
/* "one", "open", "overdue", "wait_h" → weight; -1 if unknown. */
int pm_weight_parse(const char *name);
int pm_points_new_weighted(pm_ctx *ctx, const pm_complaints *cs, const pm_placed *pl,
                           pm_grid grid, long utc_offset_s, pm_weight w, int64_t report_time,
                           pm_points **out);
void pm_points_free(pm_points *p);
size_t pm_points_count(const pm_points *p);
/* Writes the points (positions, scale factors, Morton codes, topics, days,
 * sources, weights) as sections of w (pm_snap.h; docs/dataset.md), tagged
 * by their grid, so that one snapshot holds both grids'. */
int pm_points_snap_write(pm_ctx *ctx, const pm_points *p, pm_snap_writer *w);
/* The points of grid that s holds, read in place (s must outlive them;
 * pm_points_free() frees only the struct).  Checked: each point on the
 * grid's square, its code that of its position and the codes in order,
 * its scale factor one the grid has, its topic below n_topics, its source
 * below n_sources (or none), its weight above 0: PM_E_INPUT naming the
 * section and point otherwise. */
int pm_points_snap_map(pm_ctx *ctx, pm_snap *s, pm_grid grid, size_t n_topics, size_t n_sources,
                       pm_points **out);

/* Which points a layer shows: empty sets mean all. */
typedef struct pm_heat_filter {
    const uint16_t *topics; size_t n_topics;
    const uint32_t *sources; size_t n_sources;   /* the batch's PM_DICT_SOURCE indexes */
    int has_days;
    int64_t day_from, day_to;                    /* local days since 1970-01-01, inclusive */
} pm_heat_filter;

/* The complaints of cs that a heat map under f draws: placed with a
 * position (inside, on a border or snapped, finite lon and lat; pl is the
 * placement of cs) and passing f, their local days at utc_offset_s (f NULL:
 * every one with a position).  *pass (pm_free) gets pm_complaints_count(cs)
 * flags, *n_pass how many are set.  PM_E_USAGE for a bad filter or a
 * placement of another batch; PM_E_NOMEM. */
int pm_heat_complaints_pass(pm_ctx *ctx, const pm_complaints *cs, const pm_placed *pl,
                            const pm_heat_filter *f, long utc_offset_s, uint8_t **pass,
                            size_t *n_pass);

typedef struct pm_heat_opts {
    pm_kernel kernel;
    double radius_m;        /* > 0: radius on the ground in metres ... */
    double radius_px;       /* ... or, when radius_m is 0, in pixels of a 256-px tile */
    pm_ramp ramp;
    double v_max;           /* 0: from the data (see above) */
} pm_heat_opts;

typedef struct pm_heat_layer pm_heat_layer;

/* A layer: points (borrowed), filter (copied), options, fixed scale. */
int pm_heat_layer_new(pm_ctx *ctx, const pm_points *pts, const pm_heat_filter *f,
                      const pm_heat_opts *o, pm_heat_layer **out);
void pm_heat_layer_free(pm_heat_layer *l);
double pm_heat_layer_vmax(const pm_heat_layer *l);

/* Density grid of tile z/x/y, size×size floats row by row from the top
 * (size 256 or 512; 512 is the @2x tile of the same area).  PM_E_USAGE for
 * z > 24 or x, y outside 0 .. 2^z − 1. */
int pm_heat_tile_density(pm_ctx *ctx, const pm_heat_layer *l, int z, uint32_t x, uint32_t y,
                         int size, float *grid);

/* The tile as PNG (RGBA, transparent where nothing is), encoded with
 * libpng at a fast setting.  *png is malloc'd with pm_malloc (free with
 * pm_free); *empty is 1 when no pixel has a colour (callers skip such
 * tiles). */
int pm_heat_tile_png(pm_ctx *ctx, const pm_heat_layer *l, int z, uint32_t x, uint32_t y,
                     int size, uint8_t **png, size_t *len, int *empty);

/* The ramp as n stops (value, r, g, b, a) for a legend; n ≤ 16. */
typedef struct pm_heat_stop { double value; uint8_t r, g, b, a; } pm_heat_stop;
size_t pm_heat_legend(const pm_heat_layer *l, pm_heat_stop *stops, size_t max);

#endif
