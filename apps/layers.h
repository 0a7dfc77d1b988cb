/* layers.h — the map as `problemap tiles` and `problemap serve` build it:
 * one dataset (districts, topics, placed complaints, the cube), and layers
 * over it — heat, choropleth, grid or hot spots — chosen by a request in the user's
 * own terms (topic codes or Russian names, source names, local days, a
 * figure), so the two commands draw the same tile for the same request.
 *
 * Program code (apps/), built on the library's pm_heat.h, pm_choro.h,
 * pm_figure.h and pm_cube.h.  A dataset and its layers are read-only once
 * built: server threads share them, each with its own pm_ctx.
 */
#ifndef PM_LAYERS_H
#define PM_LAYERS_H

#include "place.h"
#include "../engine/pm_cube.h"
#include "../engine/pm_snap.h"
#include "../engine/pm_weights.h"
#include "../render/pm_choro.h"
#include "../render/pm_heat.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the dataset ---------------------------------------------------------- */

typedef struct dataset {
    place_run run;           /* districts, topics, complaints, placement (owned) */
    pm_cube *cube;           /* the cube of the placed complaints (owned) */
    pm_points *points[2];    /* per pm_grid, built on first use by dataset_points() */
    pm_choro *choro[2];      /* per pm_grid, built on first use by dataset_choro() */
    pm_weights *weights;     /* queen contiguity of the districts, built on first use by
                              * dataset_weights() */
    long utc_offset_s;
    int64_t day_first, day_last;   /* local days of the earliest and latest complaint */
    double centre_lon, centre_lat; /* of the districts' extent (grid cells, projections) */
    double bounds[4];              /* lon/lat of the districts: west, south, east, north */
    double view_bounds[4];         /* the same for a map view: across ±180° when that is
                                    * narrower (then east > 180, e.g. Russia 19.6 .. 190.4) */
    double extent_m;               /* the larger side of view_bounds on the ground, metres */
    pm_snap *snap;                 /* the snapshot the columns and points are read from, when
                                    * opened by dataset_open() (owned, freed last) */
} dataset;

/* Places the complaints (rejects as usual) and builds the cube with period
 * kind `period` (NULL: "week"), each placed block entering it while the
 * rest is read (place_cube_feed, as in `problemap cube`); the cube keeps
 * the complaints' id hashes only with keep_ids (what dataset_write needs
 * to write it).  Returns an exit status (message printed), as
 * place_run_all() does; *out is NULL on failure. */
int dataset_new(pm_ctx *ctx, const place_opts *po, const char *period, int keep_ids,
                dataset **out);
void dataset_free(pm_ctx *ctx, dataset *d);

/* The dataset's snapshot (docs/dataset.md; dataset_io.c).  dataset_write
 * builds both grids' points if they are not yet, and writes the placed
 * complaints' columns (no ids, lines or texts), their placement, the
 * points and the cube (which must keep its ids: dataset_new's keep_ids) to
 * path (a temporary name, renamed): an exit status, the message printed.
 * dataset_open reads one back in place, over the districts and topics of
 * po (--boundaries, --topics; they must be the ones it was made with, and
 * --utc-offset, when given, its offset), with the cube of period kind
 * `period`: the snapshot's, or made again from the columns when that is of
 * another kind.  The same tiles, tables and reports as dataset_new()
 * gives, without reading or placing a complaint.  Every section is checked
 * (its checksum and its values) before it is used. */
int dataset_write(pm_ctx *ctx, dataset *d, const char *path);
int dataset_open(pm_ctx *ctx, const place_opts *po, const char *path, const char *period,
                 dataset **out);
/* For dataset_open, the parts it shares with dataset_new(): a zeroed
 * dataset and the period kind of `period` (NULL: week; an exit status,
 * the message printed); and what dataset_new() makes after placing (the
 * cube of kind, when d has none yet; the extent; the day range). */
int dataset_alloc(const char *period, pm_period_kind *kind, dataset **out);
int dataset_finish(pm_ctx *ctx, dataset *d, pm_period_kind kind);
/* Built once per grid.  Not thread-safe on first use: a server calls both
 * for both grids before sharing the dataset. */
int dataset_points(pm_ctx *ctx, dataset *d, pm_grid grid, const pm_points **out);
int dataset_choro(pm_ctx *ctx, dataset *d, pm_grid grid, const pm_choro **out);
/* The districts' queen contiguity (exact: shared points only, as `problemap
 * analyze` without --snap-m), for the hot-spot layer.  Built once; not
 * thread-safe on first use either: a server calls it before sharing. */
int dataset_weights(pm_ctx *ctx, dataset *d, const pm_weights **out);
/* v[i] = figure fig of district i (v has the districts' count) in the
 * cube under filter f (may be NULL): what Gi* is computed on.  Every
 * district must have a value: PM_E_INPUT_VALUE naming the first that has
 * none (no population for a rate, nothing answered ...). */
int dataset_district_values(pm_ctx *ctx, const dataset *d, const pm_filter *f,
                            const pm_figure *fig, double *v);

/* ---- requests --------------------------------------------------------------- */

typedef enum layer_kind {
    LAYER_HEAT = 0, LAYER_CHOROPLETH = 1, LAYER_GRID = 2, LAYER_HOTSPOTS = 3
} layer_kind;
#define LAYER_KINDS 4
/* "heat", "choropleth", "grid", "hotspots" → kind; -1 if unknown. */
int layer_kind_parse(const char *name);
const char *layer_kind_name(layer_kind k);

#define LAYER_MAX_VALUES 64

typedef struct layer_request {
    layer_kind kind;
    pm_grid grid;
    const char *topics[LAYER_MAX_VALUES];    /* codes or Russian names; none: all */
    size_t n_topics;
    const char *sources[LAYER_MAX_VALUES];   /* none: all */
    size_t n_sources;
    const char *from, *to;                   /* YYYY-MM-DD local days, inclusive; NULL: open */
    const char *figure;                      /* choropleth and hotspots: pm_figure.h name;
                                              * NULL: "complaints" */
    int fdr;                                 /* hotspots: Gi* bins from Benjamini–Hochberg
                                              * adjusted p-values */
    pm_weight weight;                        /* heat and grid */
    pm_heat_opts heat;                       /* heat; radius_m and radius_px both 0: by
                                              * the extent (layer_auto_scale_m) */
    double cell_m;                           /* grid: cell side; 0: by the extent */
} layer_request;

/* heat, 3857, quartic, inferno, radius and cell by the extent. */
void layer_request_init(layer_request *r);

/* The filter options of every map command (--topic and --source, each
 * repeatable, --from, --to), as getopt_long entries numbered from base. */
enum { LAYER_OPT_TOPIC, LAYER_OPT_SOURCE, LAYER_OPT_FROM, LAYER_OPT_TO, LAYER_FILTER_N };
#define LAYER_FILTER_OPTIONS(base)                                                      \
    {"topic", required_argument, 0, (base) + LAYER_OPT_TOPIC},                          \
    {"source", required_argument, 0, (base) + LAYER_OPT_SOURCE},                        \
    {"from", required_argument, 0, (base) + LAYER_OPT_FROM},                            \
    {"to", required_argument, 0, (base) + LAYER_OPT_TO}
/* Handles filter option which (LAYER_OPT_*) of command cmd: an exit
 * status (the message printed).  Names are checked later, against the
 * data, by layer_filters_make(). */
int layer_filter_option(layer_request *r, const char *cmd, int which, const char *arg);
/* The automatic heat radius (divisor 150) or grid cell (divisor 100): the
 * dataset's extent over the divisor, rounded down to 1, 2 or 5 × 10^k,
 * between 500 m and 100 km — so a heat map of a city, a region or the
 * whole country is visible at the zoom that shows it, and the figure
 * keeps its meaning on the ground at every zoom. */
double layer_auto_scale_m(const dataset *d, double divisor);

/* The request's filters in the library's indexes.  A name that is not in
 * the data is PM_E_USAGE with a message naming it ("unknown topic
 * \"xyz\"", "bad date \"2024-13-01\" for --from").  The filters point
 * into the buffer, which must outlive them. */
typedef struct layer_filters {
    pm_filter cube;                /* for pm_cube_query(): cube dictionary indexes, periods */
    pm_heat_filter heat;           /* for points: batch dictionary indexes, local days */
    uint16_t topic_buf[LAYER_MAX_VALUES];
    uint32_t cube_source_buf[LAYER_MAX_VALUES], heat_source_buf[LAYER_MAX_VALUES];
} layer_filters;
int layer_filters_make(pm_ctx *ctx, const dataset *d, const layer_request *r, layer_filters *out);

/* ---- layers ------------------------------------------------------------------ */

typedef struct map_layer map_layer;

/* Builds the layer (the heat layer's scale, the choropleth's classes, the
 * grid's cells, the hot spots' Gi*).  d must have points/choro built for
 * r->grid (and weights for hotspots).  PM_E_USAGE for a bad request
 * (message says what; also a hot-spot figure some district has no value
 * of).
 *
 * Hot spots: the districts coloured by the Gi* confidence bin (queen
 * contiguity, pm_hotspot.h) of the request's figure under its filters —
 * the classes of pm_classes_gi_bins(), drawn as the choropleth is; an
 * island or an undefined Gi* is "нет данных", grey and hatched. */
int map_layer_new(pm_ctx *ctx, const dataset *d, const layer_request *r, map_layer **out);
void map_layer_free(map_layer *l);
/* As pm_heat_tile_png() for the layer's kind. */
int map_layer_tile_png(pm_ctx *ctx, const map_layer *l, int z, uint32_t x, uint32_t y, int size,
                       uint8_t **png, size_t *len, int *empty);
/* The legend as JSON (new reference): {"kind": "heat"|"choropleth"|"grid",
 * "title": Russian title, "stops": [{"value": v, "label": "1,5", "color":
 * "#rrggbb", "alpha": a}...]} for heat; for choropleth and grid "classes":
 * [{"lo": v, "hi": v, "label": "10–25", "color": "#rrggbb"}...] and
 * "nodata": {"label": "нет данных", "color": "#d9d9d9"} when some district
 * has no value.  For hotspots {"kind": "hotspots", "title": ..., "figure":
 * name, "fdr": bool, "classes": [{"bin": -3, "label": "холодная точка,
 * 99 %", "color": "#2166ac", "count": districts}...] (bins −3 .. 3) and
 * "nodata" as above (islands, undefined Gi*).  The same JSON goes into
 * TileJSON/MBTiles as "problemap_legend". */
json_t *map_layer_legend(const map_layer *l);

#endif
