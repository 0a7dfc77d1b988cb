/* pm_cellgrid.h — an equal-area grid over the districts: square or
 * hexagonal cells on a Lambert azimuthal equal-area plane, the units of the
 * grid hot spots (pm_hotspot.h, docs/analytics.md "Hot spots on a grid").
 *
 * The plane is PROJ's +proj=laea on the WGS84 ellipsoid centred where the
 * caller says (the same plane as pm_lonlat_to_laea()), so every cell has
 * the same area on the ground.  Cells, with c = cell_m:
 * - square: side c, cell (col, row) = [col·c, (col+1)·c) × [row·c,
 *   (row+1)·c), centre ((col + ½)c, (row + ½)c) — the cells of the map's
 *   grid layer (render/cells.c) on the same centre;
 * - hexagon, pointy-top (a vertex due north and one due south, flat sides
 *   east and west), of the same AREA as the square: side
 *   s = c·√(2/(3√3)) ≈ 0.6204 c; centres on a triangular lattice,
 *   x = √3 s (col + row/2), y = 1.5 s row (axial coordinates), so each
 *   cell has six neighbours at √3 s ≈ 1.0746 c.
 * pm_cellgrid_spacing_m() gives the distance between neighbouring centres
 * (c for squares' side neighbours; √2 c to the diagonal ones).
 *
 * The study area: the cells whose centre lies inside a district or on its
 * border (pm_locate_point() says PM_PLACE_INSIDE or PM_PLACE_BORDER; a
 * snapped centre does not count).  A cell of the study area stays in it
 * whatever the data: a cell without complaints is a zero, and zeros are
 * what Gi* compares a hot spot with.  Cells are kept in row-major order of
 * their grid index (row ascending, then col): the order does not depend
 * on threads or on the data.
 *
 * A built pm_cellgrid is read-only: threads may share it.  Projections
 * (forward and inverse) are PROJ's, in the caller's context.
 */
#ifndef PM_CELLGRID_H
#define PM_CELLGRID_H

#include "pm_ctx.h"
#include "pm_district.h"
#include "pm_locate.h"
#include <stddef.h>
#include <stdint.h>

typedef enum pm_cell_shape { PM_CELL_SQUARE = 0, PM_CELL_HEX = 1 } pm_cell_shape;

/* "square", "hex" → shape; -1 if unknown. */
int pm_cell_shape_parse(const char *name);
const char *pm_cell_shape_name(pm_cell_shape s);

#define PM_CELLGRID_MAX_CELLS 2000000

typedef struct pm_cellgrid_opts {
    pm_cell_shape shape;
    double cell_m;                 /* the square's side (hexagons: the same area); 1 .. 1e6 */
    double centre_lon, centre_lat; /* the plane's centre, degrees */
    size_t max_cells;              /* 0: PM_CELLGRID_MAX_CELLS */
} pm_cellgrid_opts;

typedef struct pm_cellgrid pm_cellgrid;

/* The grid over the districts of ds (frozen), the study area tested with
 * loc (a locator over the same ds; borrowed, only during the call).
 * PM_E_USAGE for a bad cell size or centre, and when the study area
 * would hold more than max_cells cells (the message says how many and to
 * choose a larger cell); PM_E_INPUT_EMPTY when no cell centre falls in a
 * district (cells larger than the districts); PM_E_CRS, PM_E_GEOM,
 * PM_E_NOMEM.  Caller frees with pm_cellgrid_free(). */
int pm_cellgrid_new(pm_ctx *ctx, const pm_districts *ds, const pm_locator *loc,
                    const pm_cellgrid_opts *o, pm_cellgrid **out);
void pm_cellgrid_free(pm_cellgrid *g);

size_t pm_cellgrid_count(const pm_cellgrid *g);
pm_cell_shape pm_cellgrid_shape(const pm_cellgrid *g);
double pm_cellgrid_cell_m(const pm_cellgrid *g);
/* Distance between the centres of side-neighbouring cells, metres. */
double pm_cellgrid_spacing_m(const pm_cellgrid *g);
/* 4 for squares, 6 for hexagons. */
size_t pm_cellgrid_vertices(const pm_cellgrid *g);

/* The cells' centres on the plane, metres, count entries each (borrowed,
 * valid as long as g): what pm_weights_distance_band() and
 * pm_weights_knn() take. */
const double *pm_cellgrid_x(const pm_cellgrid *g);
const double *pm_cellgrid_y(const pm_cellgrid *g);
/* The district (index in ds) holding cell i's centre. */
size_t pm_cellgrid_district(const pm_cellgrid *g, size_t i);
/* Cell i's grid index (square: col, row as above; hexagon: axial q, r). */
void pm_cellgrid_index(const pm_cellgrid *g, size_t i, int32_t *col, int32_t *row);

/* The cell of the study area holding point (x_m, y_m) of the plane: 1 and
 * *cell, or 0 when that cell is not in the study area (or the point is
 * not finite).  A point on the edge between two cells goes to one of them,
 * always the same.  Allocates nothing. */
int pm_cellgrid_find_xy(const pm_cellgrid *g, double x_m, double y_m, size_t *cell);
/* The same for lon/lat degrees (projected with PROJ): *found 0 or 1.
 * PM_E_INPUT_VALUE for a non-finite or out-of-range lon/lat, PM_E_CRS.
 * For many points, project them once with pm_lonlat_to_laea() (centre:
 * pm_cellgrid_centre()) and use pm_cellgrid_find_xy(). */
int pm_cellgrid_find_lonlat(pm_ctx *ctx, const pm_cellgrid *g, double lon, double lat,
                            int *found, size_t *cell);
void pm_cellgrid_centre(const pm_cellgrid *g, double *centre_lon, double *centre_lat);

/* Cells first .. first + n − 1 in lon/lat (PROJ's inverse): their centres
 * into lon[k], lat[k] (k = 0 .. n − 1), or with corners != 0 their
 * polygons: pm_cellgrid_vertices(g) corners each, counter-clockwise from
 * the south-west (square) or south (hexagon) corner, cell k's at
 * lon[k·v .. k·v + v − 1] (not closed).  Neighbours get bit-identical
 * shared corners.  PM_E_USAGE for a range beyond the count, PM_E_CRS. */
int pm_cellgrid_lonlat(pm_ctx *ctx, const pm_cellgrid *g, size_t first, size_t n, int corners,
                       double *lon, double *lat);

#endif
