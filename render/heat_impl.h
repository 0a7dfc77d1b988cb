/* heat_impl.h — internal: what points.c (the projected, Morton-sorted
 * points), ramps.c (the colour tables) and heat.c (layers, filter,
 * density, colour, PNG) share with each other and with the other readers
 * of points (the grid cells, the report's heat layer), and what
 * tests/unit/test_heat.c checks directly.
 *
 * The tile grid.  Both grids use the XYZ scheme of OSM and Leaflet: at zoom
 * z the square [-PM_HEAT_HALF_WORLD_M, +PM_HEAT_HALF_WORLD_M]² of the grid's
 * plane (metres of EPSG:3857 or of EPSG:3395) is cut into 2^z × 2^z tiles,
 * x counted from the west, y from the north.  EPSG:3395 tiles (Yandex) use
 * the same square in its own metres, so they reach slightly further north
 * (85.08° instead of 85.05°).
 *
 * Points keep x, y as doubles in grid metres (exact PROJ output, so that a
 * brute-force sum over lon/lat gives the same densities to 1e-12), and the
 * Mercator scale factor k at their latitude (grid metres per ground metre).
 * They are sorted by the Morton code of their zoom-24 tile (x in the even
 * bits, y in the odd bits, 48 bits in all), ties in input order.  Their
 * weights (pm_weight) are sorted with them; w is NULL when every weight
 * is 1 (points of weight 0 are never kept). */
#ifndef PM_HEAT_IMPL_H
#define PM_HEAT_IMPL_H

#include "pm_heat.h"

#include <stddef.h>
#include <stdint.h>

#define PM_HEAT_HALF_WORLD_M 20037508.342789244
#define PM_HEAT_MORTON_ZOOM 24
/* WGS84, for the scale factors. */
#define PM_HEAT_WGS84_A 6378137.0
#define PM_HEAT_WGS84_E2 (0.0066943799901413165)   /* f (2 − f), f = 1/298.257223563 */

struct pm_points {
    size_t n;
    pm_grid grid;
    /* n each, in Morton order */
    double *x_m, *y_m;   /* on the grid's plane */
    double *k;           /* scale factor at the point: grid metres per ground metre */
    uint64_t *code;      /* Morton code of the zoom-24 tile */
    uint16_t *topic;
    int32_t *day;        /* local days since 1970-01-01 */
    uint32_t *source;    /* PM_DICT_SOURCE index or PM_NONE */
    float *w;            /* weight (> 0); NULL: every point weighs 1 */
    int borrowed;        /* the columns are a snapshot's (pm_points_snap_map) */
};

/* The weight of point i. */
static inline double pm_points_weight(const pm_points *p, size_t i)
{
    return p->w ? p->w[i] : 1.0;
}

/* Whether complaint i of a batch, at lon, lat, has a position the heat
 * map draws: placed inside, on a border or snapped, with finite lon and
 * lat. */
int pm_heat_has_position(const pm_placed *pl, size_t i, double lon, double lat);

/* The local day (days since 1970-01-01 at the offset, floored) of UTC
 * time t, clamped to int32. */
int32_t pm_heat_local_day(int64_t t, long utc_offset_s);

/* A pm_heat_filter made ready to test many points: a topic table and the
 * sources sorted.  pm_heat_match_init() checks f (PM_E_USAGE: a set with a
 * size and no elements, an empty day range; f NULL takes all) and
 * allocates (PM_E_NOMEM); free with pm_heat_match_free() (also after a
 * failed init). */
typedef struct pm_heat_match {
    uint8_t *topic_on;   /* UINT16_MAX + 1 flags; NULL: every topic */
    uint32_t *sources;   /* sorted; NULL: every source */
    size_t n_sources;
    int has_days;
    int64_t day_from, day_to;
} pm_heat_match;

int pm_heat_match_init(pm_ctx *ctx, const pm_heat_filter *f, pm_heat_match *m);
void pm_heat_match_free(pm_heat_match *m);
/* 1 when m takes every point. */
int pm_heat_match_all(const pm_heat_match *m);
/* 1 when a point of this topic, source and local day passes. */
int pm_heat_match_test(const pm_heat_match *m, uint16_t topic, uint32_t source, int64_t day);

/* Pass flags of the points under f: *pass (pm_free) gets n flags, or stays
 * NULL when f takes every point; *n_pass the number that pass.  Errors as
 * pm_heat_match_init(). */
int pm_points_pass(pm_ctx *ctx, const pm_points *p, const pm_heat_filter *f, uint8_t **pass,
                   size_t *n_pass);

/* A box on the grid's plane, closed: x0 <= x <= x1, y0 <= y <= y1. */
typedef struct pm_box {
    double x0, y0, x1, y1;
} pm_box;

static inline int pm_box_has(const pm_box *b, double x, double y)
{
    return x >= b->x0 && x <= b->x1 && y >= b->y0 && y <= b->y1;
}

/* Points lo .. hi − 1 (indexes in Morton order). */
typedef struct pm_range {
    size_t lo, hi;
} pm_range;

/* How finely a box is covered by Morton cells: by cells of at least
 * 1/parts of its larger side, so at most (parts + 1)² of them.  The coarse
 * cover is cheap to find and over-counts (its cells can cover several
 * times the box): the heat tiles' cost model counts with it, its budgets
 * were set against those counts.  The fine cover reaches at most a
 * quarter of the box's side beyond it (test_heat: a third as many entries
 * beyond the boxes as the coarse one): the loops over the entries run on
 * it. */
typedef enum pm_cover_parts { PM_COVER_COARSE = 4, PM_COVER_FINE = 16 } pm_cover_parts;
#define PM_POINTS_MAX_RANGES ((PM_COVER_FINE + 1) * (PM_COVER_FINE + 1))

/* The ranges of points whose zoom-24 tile meets a cell of b's cover:
 * disjoint, ascending, at most PM_POINTS_MAX_RANGES.  Every point inside b
 * is in one of them (test each with pm_box_has(); some outside b are too).
 * Returns their number. */
size_t pm_points_ranges(const pm_points *p, const pm_box *b, pm_cover_parts parts, pm_range *r);

/* The same over any ascending array of zoom-24 codes, each entry standing
 * for the cell of 2^shift codes that begins at it (shift even; 0 for
 * points, 2·(24 − d) for the groups of depth d of pm_heat_bins): the
 * ranges of entries whose cell meets the cover. */
size_t pm_codes_ranges(const uint64_t *code, size_t n, int shift, const pm_box *b,
                       pm_cover_parts parts, pm_range *r);

/* heat_bins.c: one level of a layer's count pyramid.  The points that
 * pass (pass NULL: all) grouped by their Morton cell at depth d (side
 * 2·PM_HEAT_HALF_WORLD_M / 2^d on the grid), each group as one point at
 * the weighted centroid of its points, with the sum of their weights and
 * the scale factor at the centroid.  Groups in Morton order; code[i] is
 * the group's cell as the zoom-24 code where it begins (pm_codes_ranges
 * with shift 2·(24 − d)). */
typedef struct pm_heat_bins {
    int depth;
    size_t n;
    uint64_t *code;
    double *x_m, *y_m, *w, *k;
} pm_heat_bins;

/* Tests and benchmarks: a layer as pm_heat_layer_new() makes, whose tiles
 * and scale are always the exact sums over the points, never the pyramid
 * (heat.c). */
int pm_heat_layer_new_exact(pm_ctx *ctx, const pm_points *pts, const pm_heat_filter *f,
                            const pm_heat_opts *o, pm_heat_layer **out);

/* Tests and benchmarks: how a tile was drawn — the exact sum over the
 * points, a pyramid level's groups splatted one by one, or deposited on
 * a grid and convolved (heat.c) — with pm_heat_tile_density(). */
typedef enum pm_heat_method {
    PM_HEAT_EXACT = 0, PM_HEAT_SPLAT = 1, PM_HEAT_CONVOLVE = 2
} pm_heat_method;
int pm_heat_tile_density_how(pm_ctx *ctx, const pm_heat_layer *l, int z, uint32_t x,
                             uint32_t y, int size, float *grid, pm_heat_method *how);

int pm_heat_bins_new(pm_ctx *ctx, const pm_points *p, const uint8_t *pass, int depth,
                     pm_heat_bins **out);
void pm_heat_bins_free(pm_heat_bins *b);

/* The scale factor k (grid metres per ground metre) at latitude lat_deg,
 * or at northing y_m: 1/cos φ on EPSG:3857's sphere, √(1 − e² sin² φ)/cos φ
 * on EPSG:3395's ellipsoid.  Even in φ and y, growing with |φ|, |y|. */
double pm_grid_scale_at_lat(pm_grid g, double lat_deg);
double pm_grid_scale_at_y(pm_grid g, double y_m);

/* Longitude and latitude (degrees) onto grid g's plane, in closed form:
 * x = aλ on both; y = a·atanh(sin φ) on EPSG:3857's sphere, a·(atanh(sin φ)
 * − e·atanh(e sin φ)) on EPSG:3395's ellipsoid; a longitude beyond ±180°
 * wrapped as PROJ wraps it.  The points' hot path; test_heat holds it to
 * PROJ's EPSG:4326 → 3857 and → 3395 within 1e-6 m, over the whole grid
 * and beyond it.  ±90° gives an infinite y, as PROJ's does: on no tile. */
void pm_grid_forward(pm_grid g, double lon_deg, double lat_deg, double *x_m, double *y_m);

/* The grown box of tile z/x/y: its extent plus the reach of the farthest
 * kernel that can touch it (arguments already checked). */
void pm_heat_tile_box(const pm_heat_layer *l, int z, uint32_t x, uint32_t y, pm_box *grown);

/* An RGBA image (size × size, rows from the top) as PNG: libpng, zlib
 * level 1, no filtering.  *png from pm_malloc (pm_free).  PM_E_NOMEM,
 * PM_E_RENDER. */
int pm_heat_png_encode(pm_ctx *ctx, const uint8_t *rgba, int size, uint8_t **png, size_t *len);

/* ramps.c: the layer's colour table.  Entry i (0 .. 255) is the colour at
 * t = i/255 along the ramp, alpha round(230 i/255). */
#define PM_HEAT_ALPHA_MAX 230
void pm_heat_ramp_lut(pm_ramp ramp, uint8_t lut[256][4]);

#endif
