/* pm_choro.h — choropleth tiles and grid tiles on the XYZ grids of
 * pm_heat.h (EPSG:3857, or EPSG:3395 for Yandex), PNG with a transparent
 * background, encoded as the heat tiles are.
 *
 * Choropleth.  Districts filled by the class of one cube figure (the
 * classes and colours of pm_figure.h, so a tile and the report show the
 * same colour for the same district), no value grey and hatched, with the
 * district borders drawn over the fills.  The districts are projected to
 * the grid's plane once (PROJ) and kept with an index, so a tile draws only
 * the districts that meet it (plus the border width).
 *
 * Grid.  Equal-area square cells: cell_m × cell_m on a Lambert azimuthal
 * equal-area plane (PROJ +proj=laea) centred where the caller says (the
 * districts' centre, so every filter of a region uses the same cells),
 * each coloured by the (weighted) count of the points in it, classed as
 * the figures are (pm_classes_quantile over the non-empty cells).  Empty
 * cells are transparent.  A cell is drawn on a tile as its four corners
 * projected to the grid, each side densified so that cells meet exactly.
 *
 * Both are read-only once built: several threads may render tiles of one
 * layer at once, each with its own ctx.
 */
#ifndef PM_CHORO_H
#define PM_CHORO_H

#include "../engine/pm_ctx.h"
#include "../engine/pm_district.h"
#include "pm_figure.h"
#include "pm_heat.h"
#include <stddef.h>
#include <stdint.h>

/* ---- choropleth ---------------------------------------------------------- */

typedef struct pm_choro pm_choro;

/* The districts (borrowed; must outlive the result) projected to grid. */
int pm_choro_new(pm_ctx *ctx, const pm_districts *ds, pm_grid grid, pm_choro **out);
void pm_choro_free(pm_choro *c);

typedef struct pm_choro_layer pm_choro_layer;

/* A layer of values[i] for district i (n must be the districts' count;
 * NAN: no data) of figure f (may be NULL; pm_classes_orient()).  The
 * values are copied and classed once. */
int pm_choro_layer_new(pm_ctx *ctx, const pm_choro *c, const pm_figure *f, const double *values,
                       size_t n, pm_choro_layer **out);
/* The same with the classes given (copied; e.g. pm_classes_gi_bins(), the
 * values then being bins): each district is in pm_classes_of(cls, value);
 * the layer's classes have has_nodata set when some value is not finite. */
int pm_choro_layer_new_classed(pm_ctx *ctx, const pm_choro *c, const pm_classes *cls,
                               const double *values, size_t n, pm_choro_layer **out);
void pm_choro_layer_free(pm_choro_layer *l);
const pm_classes *pm_choro_layer_classes(const pm_choro_layer *l);

/* The tile z/x/y (size 256 or 512) as PNG (*png: pm_free); *empty is 1
 * when no district meets the tile.  PM_E_USAGE for a tile off the grid. */
int pm_choro_tile_png(pm_ctx *ctx, const pm_choro_layer *l, int z, uint32_t x, uint32_t y,
                      int size, uint8_t **png, size_t *len, int *empty);

/* ---- grid ---------------------------------------------------------------- */

typedef struct pm_cells pm_cells;

/* Counts of the points (borrowed only during the call) under filter f (may
 * be NULL) in square cells of side cell_m metres (≥ 100) on the LAEA plane
 * centred at centre_lon, centre_lat. */
int pm_cells_new(pm_ctx *ctx, const pm_points *pts, const pm_heat_filter *f, double centre_lon,
                 double centre_lat, double cell_m, pm_cells **out);
void pm_cells_free(pm_cells *c);
size_t pm_cells_count(const pm_cells *c);          /* non-empty cells */
double pm_cells_total(const pm_cells *c);          /* sum of the counts */
const pm_classes *pm_cells_classes(const pm_cells *c);
/* The count of the cell containing lon/lat (0 if empty). */
double pm_cells_at(const pm_cells *c, pm_ctx *ctx, double lon, double lat);

int pm_cells_tile_png(pm_ctx *ctx, const pm_cells *c, int z, uint32_t x, uint32_t y, int size,
                      uint8_t **png, size_t *len, int *empty);

#endif
