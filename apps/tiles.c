/* tiles.c — `problemap tiles`: a tile pyramid (z/x/y.png with TileJSON,
 * and/or MBTiles) of one map layer — heat map, choropleth, grid or hot
 * spots — over
 * the boundaries' extent, built as layers.h builds it for the server. */
#include "layers.h"
#include "../engine/pm_alloc.h"
#include "../geodata/pm_pyramid.h"
#include "../render/pm_figure.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "Usage: problemap tiles --boundaries B.geojson (--complaints C.csv | --dataset D.pmdata)\n"
    "                       --out DIR\n"
    "                       [--mbtiles FILE] [--layer heat|choropleth|grid|hotspots]\n"
    "                       [--min-zoom Z] [--max-zoom Z] [options]\n"
    "\n"
    "Places the complaints (as 'geocode' does) and renders map tiles for the boundaries'\n"
    "extent (transparent background): a z/x/y.png directory with tilejson.json for\n"
    "Leaflet/MapLibre, and/or an MBTiles file for QGIS.  Empty tiles are skipped.  The\n"
    "layer's legend is stored with the tiles (TileJSON/MBTiles \"problemap_legend\").\n"
    "\n";
static const char usage_tiles[] =
    "Tiles:\n"
    "  --out DIR                the z/x/y.png pyramid with tilejson.json\n"
    "  --mbtiles FILE           the same as MBTiles 1.3\n"
    "  --min-zoom Z, --max-zoom Z   zoom range (default 4 to 8; at most 18)\n"
    "  --size 256|512           tile size in pixels (512: the @2x tile; default 256)\n"
    "  --grid 3857|3395         Web Mercator (default), or World Mercator on the ellipsoid\n"
    "                           (the grid of Yandex maps)\n"
    "  --layer heat|choropleth|grid|hotspots   what the tiles show (default heat):\n"
    "                           heat: kernel density of the complaints, one fixed colour\n"
    "                             scale for every tile and zoom;\n"
    "                           choropleth: districts coloured by a cube figure (--figure),\n"
    "                             in quantile classes, as in the report;\n"
    "                           grid: complaints counted in equal-area square cells\n"
    "                             (--cell-m), in quantile classes;\n"
    "                           hotspots: districts coloured by the Getis-Ord Gi* bin of a\n"
    "                             cube figure (--figure) over queen neighbours: hot or cold\n"
    "                             spot at 90/95/99 % confidence, or not significant\n"
    "  --name TEXT, --attribution TEXT   for the TileJSON/MBTiles metadata\n"
    "  --dataset FILE           the placed complaints, heat-map points and cube from this snapshot\n"
    "                           ('problemap dataset') instead of --complaints\n"
    "Heat map:\n"
    "  --kernel quartic|gaussian   the density kernel (default quartic, as QGIS)\n"
    "  --radius-m M             kernel radius on the ground in metres (default: 1/150 of\n"
    "                           the districts' extent, 500 m to 100 km)\n"
    "  --radius-px P            kernel radius in pixels instead\n"
    "  --ramp inferno|viridis|ylorrd   colour ramp (default inferno)\n"
    "  --v-max V                the density at the top of the colour scale (default: the\n"
    "                           99th percentile of the data)\n"
    "Heat map and grid:\n"
    "  --weight one|open|overdue|wait_h   what a complaint counts for: 1 (default), 1 if\n"
    "                           still open, 1 if overdue (open more than 24 h), or the hours\n"
    "                           it waited for an answer; judged at the end of the period\n"
    "                           range, as the cube's tables do\n"
    "Grid:\n"
    "  --cell-m M               cell side in metres (default: 1/100 of the districts'\n"
    "                           extent, 1 km to 100 km; at least 100), on a\n"
    "                           Lambert equal-area plane centred on the districts\n"
    "Choropleth and hot spots:\n"
    "  --figure NAME            the cube figure (default complaints): complaints,\n"
    "                           complaints_per_10k, complaints_per_10k_smoothed,\n"
    "                           complaints_per_km2, answered_within_24h_share,\n"
    "                           answer_time_median_h, overdue_share, change_pct, rating_index\n"
    "  --period day|week|month  the cube's period (default week): --from/--to are rounded\n"
    "                           to it for the figures (change_pct compares with the range\n"
    "                           before), and --weight judges at the range's end\n"
    "Hot spots:\n"
    "  --fdr                    bins from Benjamini-Hochberg adjusted p-values (false\n"
    "                           discovery rate) instead of the plain p-values\n"
    "Filters (each filter makes its own layer):\n"
    "  --topic T                topic code or Russian name (repeat for several)\n"
    "  --source S               (repeat for several)\n"
    "  --from YYYY-MM-DD, --to YYYY-MM-DD   local days, at --utc-offset\n"
    "  -h, --help               this help\n";

typedef struct tiles_job {
    place_opts p;
    layer_request req;
    const char *out, *mbtiles, *name, *attribution, *period;
    const char *dataset;     /* a dataset snapshot instead of --complaints */
    int minz, maxz, size;
    int have_figure, have_cell, have_fdr;
} tiles_job;

static int pick(const char *arg, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(arg, names[i]) == 0)
            return i;
    return -1;
}

enum {
    O_OUT = OPT_PLACE_LAST, O_MBTILES, O_MINZ, O_MAXZ, O_SIZE, O_GRID, O_KERNEL, O_RADIUS_M,
    O_RADIUS_PX, O_RAMP, O_VMAX, O_NAME, O_ATTR, O_LAYER,
    O_FIGURE, O_CELL, O_WEIGHT, O_PERIOD, O_FDR, O_DATASET, O_FILTER
};

/* The options that pick one of a few names. */
static int parse_choice(tiles_job *j, int opt, const char *arg)
{
    static const char *const grids[] = {"3857", "3395"}, *const kernels[] = {"quartic", "gaussian"},
                             *const ramps[] = {"inferno", "viridis", "ylorrd"};
    int k;
    switch (opt) {
    case O_GRID:
        if ((k = pick(arg, grids, 2)) < 0)
            return cli_usage_error("tiles", "--grid: '%s' is not 3857 or 3395", arg);
        j->req.grid = (pm_grid)k;
        return EXIT_OK;
    case O_KERNEL:
        if ((k = pick(arg, kernels, 2)) < 0)
            return cli_usage_error("tiles", "--kernel: '%s' is not quartic or gaussian", arg);
        j->req.heat.kernel = (pm_kernel)k;
        return EXIT_OK;
    case O_RAMP:
        if ((k = pick(arg, ramps, 3)) < 0)
            return cli_usage_error("tiles", "--ramp: '%s' is not inferno, viridis or ylorrd", arg);
        j->req.heat.ramp = (pm_ramp)k;
        return EXIT_OK;
    case O_LAYER:
        if ((k = layer_kind_parse(arg)) < 0)
            return cli_usage_error("tiles", "--layer: '%s' is not heat, choropleth, grid or "
                                            "hotspots", arg);
        j->req.kind = (layer_kind)k;
        return EXIT_OK;
    case O_WEIGHT:
        if ((k = pm_weight_parse(arg)) < 0)
            return cli_usage_error("tiles", "--weight: '%s' is not one, open, overdue or wait_h",
                                   arg);
        j->req.weight = (pm_weight)k;
        return EXIT_OK;
    case O_PERIOD:
        if (pm_period_kind_parse(arg) < 0)
            return cli_usage_error("tiles", "--period: '%s' is not day, week or month", arg);
        j->period = arg;
        return EXIT_OK;
    default:
        if (!pm_figure_find(arg))
            return cli_usage_error("tiles", "--figure: '%s' is not one of %s", arg,
                                   pm_figure_names());
        j->req.figure = arg;
        j->have_figure = 1;
        return EXIT_OK;
    }
}

/* The options that take a number. */
static int parse_number(tiles_job *j, int opt, const char *arg)
{
    char *end;
    if (opt == O_MINZ || opt == O_MAXZ || opt == O_SIZE) {
        long k = strtol(arg, &end, 10);
        if (opt == O_SIZE && (*end || (k != 256 && k != 512)))
            return cli_usage_error("tiles", "--size: '%s' is not 256 or 512", arg);
        if (opt != O_SIZE && (*end || k < 0 || k > 18))
            return cli_usage_error("tiles", "'%s' is not a zoom from 0 to 18", arg);
        *(opt == O_MINZ ? &j->minz : opt == O_MAXZ ? &j->maxz : &j->size) = (int)k;
        return EXIT_OK;
    }
    double v = strtod(arg, &end);
    if (*end || !(v > 0) || v > 1e9)
        return cli_usage_error("tiles", "'%s' is not a positive number", arg);
    if (opt == O_RADIUS_M)
        j->req.heat.radius_m = v, j->req.heat.radius_px = 0;
    else if (opt == O_RADIUS_PX)
        j->req.heat.radius_px = v, j->req.heat.radius_m = 0;
    else if (opt == O_VMAX)
        j->req.heat.v_max = v;
    else if (v < 100)
        return cli_usage_error("tiles", "--cell-m: %s m is below the smallest cell, 100 m", arg);
    else
        j->req.cell_m = v, j->have_cell = 1;
    return EXIT_OK;
}

/* Checks what the options say together. */
static int check_args(const tiles_job *j)
{
    if (j->minz > j->maxz)
        return cli_usage_error("tiles", "--min-zoom is above --max-zoom");
    if (!j->out && !j->mbtiles)
        return cli_usage_error("tiles", "give --out DIR and/or --mbtiles FILE");
    int by_district = j->req.kind == LAYER_CHOROPLETH || j->req.kind == LAYER_HOTSPOTS;
    if (j->have_figure && !by_district)
        return cli_usage_error("tiles", "--figure is for --layer choropleth or hotspots");
    if (j->have_fdr && j->req.kind != LAYER_HOTSPOTS)
        return cli_usage_error("tiles", "--fdr is for --layer hotspots");
    if (j->have_cell && j->req.kind != LAYER_GRID)
        return cli_usage_error("tiles", "--cell-m is for --layer grid");
    if (j->req.weight != PM_WEIGHT_ONE && by_district)
        return cli_usage_error("tiles", "--weight is for --layer heat or grid (a district "
                                        "layer shows a --figure)");
    return j->dataset ? place_check_dataset(&j->p, "tiles") : place_check(&j->p, "tiles");
}

static int parse_args(int argc, char **argv, tiles_job *j)
{
    static const struct option longopts[] = {
        CLI_PLACE_OPTIONS,
        {"out", required_argument, 0, O_OUT}, {"mbtiles", required_argument, 0, O_MBTILES},
        {"min-zoom", required_argument, 0, O_MINZ}, {"max-zoom", required_argument, 0, O_MAXZ},
        {"size", required_argument, 0, O_SIZE}, {"grid", required_argument, 0, O_GRID},
        {"kernel", required_argument, 0, O_KERNEL},
        {"radius-m", required_argument, 0, O_RADIUS_M},
        {"radius-px", required_argument, 0, O_RADIUS_PX}, {"ramp", required_argument, 0, O_RAMP},
        {"v-max", required_argument, 0, O_VMAX}, {"name", required_argument, 0, O_NAME},
        {"attribution", required_argument, 0, O_ATTR}, LAYER_FILTER_OPTIONS(O_FILTER),
        {"layer", required_argument, 0, O_LAYER},
        {"figure", required_argument, 0, O_FIGURE}, {"cell-m", required_argument, 0, O_CELL},
        {"weight", required_argument, 0, O_WEIGHT}, {"period", required_argument, 0, O_PERIOD},
        {"fdr", no_argument, 0, O_FDR}, {"dataset", required_argument, 0, O_DATASET},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int opt, ex = EXIT_OK;
    optind = 1;
    while (ex == EXIT_OK && (opt = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        int k = place_option(&j->p, "tiles", opt, optarg);
        if (k < 0)
            return EXIT_USAGE;
        if (k)
            continue;
        if (opt >= O_FILTER && opt < O_FILTER + LAYER_FILTER_N) {
            ex = layer_filter_option(&j->req, "tiles", opt - O_FILTER, optarg);
            continue;
        }
        switch (opt) {
        case O_OUT: j->out = optarg; break;
        case O_DATASET: j->dataset = optarg; break;
        case O_MBTILES: j->mbtiles = optarg; break;
        case O_NAME: j->name = optarg; break;
        case O_ATTR: j->attribution = optarg; break;
        case O_FDR: j->req.fdr = j->have_fdr = 1; break;
        case O_GRID: case O_KERNEL: case O_RAMP: case O_LAYER: case O_WEIGHT: case O_PERIOD:
        case O_FIGURE:
            ex = parse_choice(j, opt, optarg);
            break;
        case O_MINZ: case O_MAXZ: case O_SIZE: case O_RADIUS_M: case O_RADIUS_PX: case O_VMAX:
        case O_CELL:
            ex = parse_number(j, opt, optarg);
            break;
        case 'h': printf("%s%s%s", usage, place_usage, usage_tiles); return -1;
        default: return cli_usage_error("tiles", "unknown option");
        }
    }
    if (ex)
        return ex;
    if (optind < argc)
        return cli_usage_error("tiles", "unexpected argument '%s'", argv[optind]);
    return check_args(j);
}

/* The tile range of zoom z over a lon/lat extent, through PROJ. */
static int tile_range(pm_ctx *ctx, pm_grid grid, const double b[4], int z, uint32_t r[4])
{
    PJ *pj = proj_create_crs_to_crs(pm_ctx_proj(ctx), "EPSG:4326", pm_grid_crs(grid), NULL);
    PJ *norm = pj ? proj_normalize_for_visualization(pm_ctx_proj(ctx), pj) : NULL;
    proj_destroy(pj);
    if (!norm)
        return PM_ERR(ctx, PM_E_CRS, "cannot build the tile grid's transform: %s", pm_ctx_proj_msg(ctx));
    const double half = 20037508.342789244, lat_max = 85.0511;
    double x[2] = {b[0], b[2]}, y[2] = {fmax(b[1], -lat_max), fmin(b[3], lat_max)};
    proj_trans_generic(norm, PJ_FWD, x, sizeof *x, 2, y, sizeof *y, 2, NULL, 0, 0, NULL, 0, 0);
    proj_destroy(norm);
    double n = ldexp(1.0, z);
    for (int k = 0; k < 2; k++) {
        double tx = floor((x[k] + half) / (2 * half) * n), ty = floor((half - y[k]) / (2 * half) * n);
        r[k == 0 ? 0 : 2] = (uint32_t)fmin(fmax(tx, 0), n - 1);
        r[k == 0 ? 3 : 1] = (uint32_t)fmin(fmax(ty, 0), n - 1);
    }
    return PM_OK;   /* r: x0, y0 (north), x1, y1 (south) */
}

static int render_all(pm_ctx *ctx, const tiles_job *j, const map_layer *l, pm_pyramid *pyr,
                      const double b[4])
{
    int tty = !j->p.quiet && isatty(2);
    for (int z = j->minz; z <= j->maxz; z++) {
        uint32_t r[4];
        int rc = tile_range(ctx, j->req.grid, b, z, r);
        if (rc)
            return rc;
        for (uint32_t x = r[0]; x <= r[2]; x++)
            for (uint32_t y = r[1]; y <= r[3]; y++) {
                uint8_t *png = NULL;
                size_t len = 0;
                int empty = 1;
                rc = map_layer_tile_png(ctx, l, z, x, y, j->size, &png, &len, &empty);
                if (!rc && !empty)
                    rc = pm_pyramid_put(ctx, pyr, z, x, y, png, len);
                pm_free(png);
                if (rc)
                    return rc;
            }
        if (tty)
            fprintf(stderr, "\rproblemap: zoom %d done, %zu tiles so far", z, pm_pyramid_count(pyr));
    }
    if (tty)
        fputc('\n', stderr);
    return PM_OK;
}

/* Builds what the layer draws on (exit status). */
static int prepare(pm_ctx *ctx, const tiles_job *j, dataset *d, map_layer **layer)
{
    const pm_points *pts;
    const pm_choro *ch;
    const pm_weights *w;
    int by_district = j->req.kind == LAYER_CHOROPLETH || j->req.kind == LAYER_HOTSPOTS;
    int rc = by_district ? dataset_choro(ctx, d, j->req.grid, &ch)
                         : dataset_points(ctx, d, j->req.grid, &pts);
    if (!rc && j->req.kind == LAYER_HOTSPOTS)
        rc = dataset_weights(ctx, d, &w);
    if (!rc)
        rc = map_layer_new(ctx, d, &j->req, layer);
    if (rc == PM_E_USAGE)
        return cli_usage_error("tiles", "%s", pm_ctx_errmsg(ctx));
    return rc ? cli_fail(ctx, "preparing the map layer") : EXIT_OK;
}

/* ": 3 hot, 2 cold, 1 without Gi*" from the hot-spot legend's counts. */
static void print_bins(const json_t *legend)
{
    json_int_t hot = 0, cold = 0;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(legend, "classes"), i, c) {
        json_int_t bin = json_integer_value(json_object_get(c, "bin"));
        json_int_t n = json_integer_value(json_object_get(c, "count"));
        hot += bin > 0 ? n : 0;
        cold += bin < 0 ? n : 0;
    }
    int fdr = json_is_true(json_object_get(legend, "fdr"));
    fprintf(stderr, "%s: %lld hot and %lld cold districts", fdr ? " with FDR" : "",
            (long long)hot, (long long)cold);
}

static void print_done(const tiles_job *j, const dataset *d, const json_t *legend, size_t n)
{
    fprintf(stderr, "problemap: %zu tiles, zoom %d to %d, %s layer", n, j->minz, j->maxz,
            layer_kind_name(j->req.kind));
    if (j->req.kind == LAYER_HEAT && j->req.weight == PM_WEIGHT_ONE)
        fprintf(stderr, ", %zu points", pm_points_count(d->points[j->req.grid]));
    if (j->req.kind == LAYER_HEAT)
        fprintf(stderr, ", colour scale 0 .. %.4g",
                json_real_value(json_object_get(legend, "v_max")));
    else if (j->req.kind == LAYER_CHOROPLETH || j->req.kind == LAYER_HOTSPOTS)
        fprintf(stderr, " of %s", j->req.figure ? j->req.figure : "complaints");
    if (j->req.kind == LAYER_HOTSPOTS)
        print_bins(legend);
    else
        fprintf(stderr, ", cells of %g m",
                j->req.cell_m > 0 ? j->req.cell_m : layer_auto_scale_m(d, 100));
    fputc('\n', stderr);
}

int cmd_tiles(int argc, char **argv)
{
    static const char *const names[LAYER_KINDS] = {"problemap heat map", "problemap choropleth",
                                                   "problemap grid", "problemap hot spots"};
    static const char *const descriptions[LAYER_KINDS] = {
        "Complaints: kernel density", "Complaints: a cube figure per district",
        "Complaints per equal-area cell", "Complaints: Getis-Ord Gi* hot and cold spots"};
    tiles_job j;
    memset(&j, 0, sizeof j);
    place_opts_init(&j.p);
    layer_request_init(&j.req);
    j.minz = 4, j.maxz = 8, j.size = 256;
    int ex = parse_args(argc, argv, &j);
    if (ex)
        return ex < 0 ? EXIT_OK : ex;
    pm_ctx *ctx = pm_ctx_new();
    if (!ctx)
        return EXIT_RUN;
    pm_ctx_set_log(ctx, cli_warn_log, NULL);
    dataset *d = NULL;
    map_layer *layer = NULL;
    pm_pyramid *pyr = NULL;
    json_t *legend = NULL;
    char *legend_text = NULL;
    if ((ex = j.dataset ? dataset_open(ctx, &j.p, j.dataset, j.period, &d)
                        : dataset_new(ctx, &j.p, j.period, 0, &d)) ||
        (ex = prepare(ctx, &j, d, &layer)))
        goto done;
    ex = EXIT_RUN;
    legend = map_layer_legend(layer);
    if (!legend || !(legend_text = json_dumps(legend, JSON_COMPACT | JSON_SORT_KEYS))) {
        fprintf(stderr, "problemap: out of memory\n");
        goto done;
    }
    pm_pyramid_meta meta = {j.name ? j.name : names[j.req.kind], descriptions[j.req.kind],
                            j.attribution, j.minz, j.maxz, {0, 0, 0, 0}, j.size, legend_text};
    memcpy(meta.bounds, d->bounds, sizeof meta.bounds);
    if (pm_pyramid_open(ctx, j.out, j.mbtiles, &meta, &pyr) ||
        render_all(ctx, &j, layer, pyr, d->bounds)) {
        ex = cli_fail(ctx, "rendering tiles");
        goto done;
    }
    size_t n = pm_pyramid_count(pyr);
    int rc = pm_pyramid_commit(ctx, pyr);
    pyr = NULL;
    if (rc) {
        ex = cli_fail(ctx, "writing the tile pyramid");
        goto done;
    }
    if (!j.p.quiet)
        print_done(&j, d, legend, n);
    ex = EXIT_OK;
done:
    pm_pyramid_abort(pyr);
    free(legend_text);
    json_decref(legend);
    map_layer_free(layer);
    dataset_free(ctx, d);
    pm_ctx_free(ctx);
    return ex;
}
