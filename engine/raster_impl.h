/* raster_impl.h — internal: the locator's raster fast path (raster.c builds
 * it, locate.c reads it; docs/geocoding.md, "The raster").
 *
 * A regular lon/lat grid over the extent of the districts.  Every cell is
 * classified exactly with GEOS when the locator is built:
 * - a district index (>= 0): the closed cell lies in that district's
 *   interior (prepared ContainsProperly) and meets no other district, so
 *   every point of it is INSIDE that district, whatever the border rule;
 * - PM_RASTER_OUT: the closed cell meets no district: a point there is in
 *   no district (it goes on to snapping, or is outside);
 * - a list (<= PM_RASTER_LIST0): the districts whose closure meets the
 *   cell, ascending: every district that can hold a point of the cell is
 *   on it, so the exact test runs on the list instead of the STRtree's
 *   candidates.
 * Cells are grouped in tiles of PM_RASTER_TILE x PM_RASTER_TILE.  A tile
 * that is uniform is stored as one code in `block`; only the others have
 * their cells stored, so memory follows the length of the borders.
 *
 * Exactness of the lookup: cell (i, j) is the closed rectangle with
 * corners pm_raster_x(i), pm_raster_x(i + 1), pm_raster_y(j),
 * pm_raster_y(j + 1), the very doubles the classification used.  The
 * lookup computes (i, j) in floating point and then checks that the point
 * lies in that rectangle; when rounding put it in a neighbour, the answer
 * is PM_RASTER_EXACT (use the exact path), never a wrong cell.
 *
 * Read-only after pm_raster_new(): any number of threads may look up. */
#ifndef PM_RASTER_IMPL_H
#define PM_RASTER_IMPL_H

#include "pm_ctx.h"
#include "pm_district.h"

#include <stddef.h>
#include <stdint.h>

#define PM_RASTER_TILE_BITS 4
#define PM_RASTER_TILE (1u << PM_RASTER_TILE_BITS)
#define PM_RASTER_TILE_MASK (PM_RASTER_TILE - 1u)

/* At most about this many cells crossed by the boundaries (the cost of
 * the build, ~5 us a cell), but never fewer than PM_RASTER_MIN_SIDE cells
 * along the longer side. */
#define PM_RASTER_BUDGET 80000.0
#define PM_RASTER_MIN_SIDE 256.0

/* Lookup answers besides a district index (>= 0). */
#define PM_RASTER_OUT (-1)     /* no district meets the cell */
#define PM_RASTER_EXACT (-2)   /* off the grid or on a rounding edge: exact path */
#define PM_RASTER_LIST0 (-3)   /* code <= -3: candidate list at offset -3 - code */

typedef struct pm_raster_stats {
    size_t cells_inside;       /* cells with one district */
    size_t cells_out;          /* cells in no district */
    size_t cells_mixed;        /* cells with a candidate list */
    size_t tiles;              /* tiles stored cell by cell */
    size_t bytes;              /* memory of the raster */
} pm_raster_stats;

typedef struct pm_raster {
    double ext[4];             /* the districts' extent: x0, y0, x1, y1 */
    double x0, y0;             /* the grid's corner (lon, lat) */
    double dx, dy;             /* cell size, degrees */
    double inv_dx, inv_dy;
    uint32_t nx, ny;           /* cells */
    uint32_t bx, by;           /* tiles per row, per column */
    int32_t *block;            /* bx * by: district, PM_RASTER_OUT or -2 - tile */
    int32_t *cell;             /* tiles * TILE²: district, PM_RASTER_OUT or a list */
    size_t n_tiles, cap_cells;      /* tiles; room in cell, in cells */
    int32_t *list;             /* lists: count, then the districts ascending */
    size_t n_list, cap_list;
    pm_raster_stats stats;
} pm_raster;

/* Builds the raster over the districts of ds (frozen; borrowed) with
 * prep[i] the prepared geometry of district i (NULL: empty), used from
 * this thread only while building.  side is the number of cells along the
 * longer side of the extent (in metres: cells are about square on the
 * ground).  *out is NULL, and PM_OK returned, when there is nothing to
 * grid (no district, or an extent without area).  Caller frees with
 * pm_raster_free().  PM_E_NOMEM, PM_E_GEOM (naming the district). */
int pm_raster_new(pm_ctx *ctx, const pm_districts *ds, const GEOSPreparedGeometry *const *prep,
                  uint32_t side, pm_raster **out);
void pm_raster_free(pm_raster *r);

/* The edges of the cells: column i spans pm_raster_x(i)..pm_raster_x(i + 1). */
static inline double pm_raster_x(const pm_raster *r, uint32_t i)
{
    return r->x0 + (double)i * r->dx;
}

static inline double pm_raster_y(const pm_raster *r, uint32_t j)
{
    return r->y0 + (double)j * r->dy;
}

/* The code of cell (i, j), i < nx, j < ny. */
static inline int32_t pm_raster_cell(const pm_raster *r, uint32_t i, uint32_t j)
{
    int32_t b = r->block[(size_t)(j >> PM_RASTER_TILE_BITS) * r->bx + (i >> PM_RASTER_TILE_BITS)];
    if (b >= PM_RASTER_OUT)
        return b;
    return r->cell[((size_t)(-2 - b) << (2 * PM_RASTER_TILE_BITS)) +
                   ((j & PM_RASTER_TILE_MASK) << PM_RASTER_TILE_BITS) + (i & PM_RASTER_TILE_MASK)];
}

/* The code of the cell holding (lon, lat): a district, PM_RASTER_OUT, a
 * list (<= PM_RASTER_LIST0) or PM_RASTER_EXACT.  A point beyond the
 * districts' extent is PM_RASTER_OUT: it is in no district's envelope. */
static inline int32_t pm_raster_lookup(const pm_raster *r, double lon, double lat)
{
    if (lon < r->ext[0] || lat < r->ext[1] || lon > r->ext[2] || lat > r->ext[3])
        return PM_RASTER_OUT;
    double fx = (lon - r->x0) * r->inv_dx, fy = (lat - r->y0) * r->inv_dy;
    if (!(fx >= 0.0 && fx < (double)r->nx && fy >= 0.0 && fy < (double)r->ny))
        return PM_RASTER_EXACT;
    uint32_t i = (uint32_t)fx, j = (uint32_t)fy;
    if (!(pm_raster_x(r, i) <= lon && lon <= pm_raster_x(r, i + 1) && pm_raster_y(r, j) <= lat &&
          lat <= pm_raster_y(r, j + 1)))
        return PM_RASTER_EXACT;
    return pm_raster_cell(r, i, j);
}

/* The candidate list of a code <= PM_RASTER_LIST0: *n districts, ascending. */
static inline const int32_t *pm_raster_list(const pm_raster *r, int32_t code, size_t *n)
{
    const int32_t *l = r->list + (PM_RASTER_LIST0 - code);
    *n = (size_t)l[0];
    return l + 1;
}

#endif
