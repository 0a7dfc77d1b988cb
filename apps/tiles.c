/* tiles.c — `problemap tiles`: a heat-map tile pyramid (z/x/y.png with
 * TileJSON, and/or MBTiles) of the placed complaints over the boundaries'
 * extent. */
#include "place.h"
#include "../engine/pm_alloc.h"
#include "../engine/pm_civil.h"
#include "../geodata/pm_pyramid.h"
#include "../render/pm_heat.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "Usage: problemap tiles --boundaries B.geojson --complaints C.csv --out DIR\n"
    "                       [--mbtiles FILE] [--min-zoom Z] [--max-zoom Z] [options]\n"
    "\n"
    "Places the complaints (as 'geocode' does) and renders heat-map tiles (kernel density,\n"
    "one fixed colour scale for every tile and zoom, transparent background) for the\n"
    "boundaries' extent: a z/x/y.png directory with tilejson.json for Leaflet/MapLibre,\n"
    "and/or an MBTiles file for QGIS.  Empty tiles are skipped.\n"
    "\n";
static const char usage_tiles[] =
    "Tiles:\n"
    "  --out DIR                the z/x/y.png pyramid with tilejson.json\n"
    "  --mbtiles FILE           the same as MBTiles 1.3\n"
    "  --min-zoom Z, --max-zoom Z   zoom range (default 4 to 8; at most 18)\n"
    "  --size 256|512           tile size in pixels (512: the @2x tile; default 256)\n"
    "  --grid 3857|3395         Web Mercator (default), or World Mercator on the ellipsoid\n"
    "                           (the grid of Yandex maps)\n"
    "  --kernel quartic|gaussian   the density kernel (default quartic, as QGIS)\n"
    "  --radius-m M             kernel radius on the ground in metres (default 2000)\n"
    "  --radius-px P            kernel radius in pixels instead\n"
    "  --ramp inferno|viridis|ylorrd   colour ramp (default inferno)\n"
    "  --v-max V                the density at the top of the colour scale (default: the\n"
    "                           99th percentile of the data)\n"
    "  --name TEXT, --attribution TEXT   for the TileJSON/MBTiles metadata\n"
    "Filters (each filter makes its own layer):\n"
    "  --topic T                topic code or Russian name (repeat for several)\n"
    "  --source S               (repeat for several)\n"
    "  --from YYYY-MM-DD, --to YYYY-MM-DD   local days, at --utc-offset\n"
    "  -h, --help               this help\n";

#define MAX_VALUES 64

typedef struct tiles_job {
    place_opts p;
    const char *out, *mbtiles, *name, *attribution, *from, *to;
    int minz, maxz, size;
    pm_grid grid;
    pm_heat_opts heat;
    const char *topics[MAX_VALUES], *sources[MAX_VALUES];
    size_t n_topics, n_sources;
} tiles_job;

static int pick(const char *arg, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(arg, names[i]) == 0)
            return i;
    return -1;
}

static int parse_args(int argc, char **argv, tiles_job *j)
{
    enum { O_OUT = OPT_PLACE_LAST, O_MBTILES, O_MINZ, O_MAXZ, O_SIZE, O_GRID, O_KERNEL, O_RADIUS_M,
           O_RADIUS_PX, O_RAMP, O_VMAX, O_NAME, O_ATTR, O_TOPIC, O_SOURCE, O_FROM, O_TO };
    static const struct option longopts[] = {
        CLI_PLACE_OPTIONS,
        {"out", required_argument, 0, O_OUT}, {"mbtiles", required_argument, 0, O_MBTILES},
        {"min-zoom", required_argument, 0, O_MINZ}, {"max-zoom", required_argument, 0, O_MAXZ},
        {"size", required_argument, 0, O_SIZE}, {"grid", required_argument, 0, O_GRID},
        {"kernel", required_argument, 0, O_KERNEL},
        {"radius-m", required_argument, 0, O_RADIUS_M},
        {"radius-px", required_argument, 0, O_RADIUS_PX}, {"ramp", required_argument, 0, O_RAMP},
        {"v-max", required_argument, 0, O_VMAX}, {"name", required_argument, 0, O_NAME},
        {"attribution", required_argument, 0, O_ATTR}, {"topic", required_argument, 0, O_TOPIC},
        {"source", required_argument, 0, O_SOURCE}, {"from", required_argument, 0, O_FROM},
        {"to", required_argument, 0, O_TO}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    static const char *const grids[] = {"3857", "3395"}, *const kernels[] = {"quartic", "gaussian"},
                             *const ramps[] = {"inferno", "viridis", "ylorrd"};
    int opt, k;
    char *end;
    double v;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        if ((k = place_option(&j->p, "tiles", opt, optarg)) < 0)
            return EXIT_USAGE;
        if (k)
            continue;
        switch (opt) {
        case O_OUT: j->out = optarg; break;
        case O_MBTILES: j->mbtiles = optarg; break;
        case O_NAME: j->name = optarg; break;
        case O_ATTR: j->attribution = optarg; break;
        case O_FROM: j->from = optarg; break;
        case O_TO: j->to = optarg; break;
        case O_MINZ:
        case O_MAXZ:
            k = (int)strtol(optarg, &end, 10);
            if (*end || k < 0 || k > 18)
                return cli_usage_error("tiles", "'%s' is not a zoom from 0 to 18", optarg);
            *(opt == O_MINZ ? &j->minz : &j->maxz) = k;
            break;
        case O_SIZE:
            j->size = (int)strtol(optarg, &end, 10);
            if (*end || (j->size != 256 && j->size != 512))
                return cli_usage_error("tiles", "--size: '%s' is not 256 or 512", optarg);
            break;
        case O_GRID:
            if ((k = pick(optarg, grids, 2)) < 0)
                return cli_usage_error("tiles", "--grid: '%s' is not 3857 or 3395", optarg);
            j->grid = (pm_grid)k;
            break;
        case O_KERNEL:
            if ((k = pick(optarg, kernels, 2)) < 0)
                return cli_usage_error("tiles", "--kernel: '%s' is not quartic or gaussian", optarg);
            j->heat.kernel = (pm_kernel)k;
            break;
        case O_RAMP:
            if ((k = pick(optarg, ramps, 3)) < 0)
                return cli_usage_error("tiles", "--ramp: '%s' is not inferno, viridis or ylorrd", optarg);
            j->heat.ramp = (pm_ramp)k;
            break;
        case O_RADIUS_M:
        case O_RADIUS_PX:
        case O_VMAX:
            v = strtod(optarg, &end);
            if (*end || !(v > 0) || v > 1e9)
                return cli_usage_error("tiles", "'%s' is not a positive number", optarg);
            if (opt == O_RADIUS_M)
                j->heat.radius_m = v, j->heat.radius_px = 0;
            else if (opt == O_RADIUS_PX)
                j->heat.radius_px = v, j->heat.radius_m = 0;
            else
                j->heat.v_max = v;
            break;
        case O_TOPIC:
        case O_SOURCE:
            if ((opt == O_TOPIC ? j->n_topics : j->n_sources) == MAX_VALUES)
                return cli_usage_error("tiles", "at most %d values per filter", MAX_VALUES);
            if (opt == O_TOPIC)
                j->topics[j->n_topics++] = optarg;
            else
                j->sources[j->n_sources++] = optarg;
            break;
        case 'h': printf("%s%s%s", usage, place_usage, usage_tiles); return -1;
        default: return cli_usage_error("tiles", "unknown option");
        }
    }
    if (optind < argc)
        return cli_usage_error("tiles", "unexpected argument '%s'", argv[optind]);
    if (j->minz > j->maxz)
        return cli_usage_error("tiles", "--min-zoom is above --max-zoom");
    if (!j->out && !j->mbtiles)
        return cli_usage_error("tiles", "give --out DIR and/or --mbtiles FILE");
    return place_check(&j->p, "tiles");
}

/* The districts' extent in lon/lat. */
static int districts_extent(pm_ctx *ctx, const pm_districts *ds, double b[4])
{
    b[0] = b[1] = INFINITY;
    b[2] = b[3] = -INFINITY;
    for (size_t i = 0; i < pm_districts_count(ds); i++) {
        double x0, y0, x1, y1;
        if (!GEOSGeom_getExtent_r(pm_ctx_geos(ctx), pm_district_geom_borrow(ds, i), &x0, &y0, &x1, &y1))
            continue;
        b[0] = fmin(b[0], x0), b[1] = fmin(b[1], y0), b[2] = fmax(b[2], x1), b[3] = fmax(b[3], y1);
    }
    return isfinite(b[0]) ? PM_OK : PM_ERR(ctx, PM_E_GEOM, "the districts have no extent");
}

/* The tile range of zoom z over a lon/lat extent, through PROJ. */
static int tile_range(pm_ctx *ctx, pm_grid grid, const double b[4], int z, uint32_t r[4])
{
    PJ *pj = proj_create_crs_to_crs(pm_ctx_proj(ctx), "EPSG:4326",
                                    grid == PM_GRID_WEBMERC ? "EPSG:3857" : "EPSG:3395", NULL);
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

static char *legend_json(const pm_heat_layer *l)
{
    pm_heat_stop s[16];
    size_t n = pm_heat_legend(l, s, 16);
    size_t cap = 64 + n * 96;
    char *buf = pm_malloc(cap);
    if (!buf)
        return NULL;
    size_t len = (size_t)snprintf(buf, cap, "{\"v_max\": %.6g, \"stops\": [", pm_heat_layer_vmax(l));
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s{\"value\": %.6g, \"color\": \"#%02x%02x%02x\", \"alpha\": %u}",
                                i ? ", " : "", s[i].value, s[i].r, s[i].g, s[i].b, s[i].a);
    snprintf(buf + len, cap - len, "]}");
    return buf;
}

static int render_all(pm_ctx *ctx, const tiles_job *j, const pm_heat_layer *l, pm_pyramid *pyr,
                      const double b[4])
{
    int tty = !j->p.quiet && isatty(2);
    for (int z = j->minz; z <= j->maxz; z++) {
        uint32_t r[4];
        int rc = tile_range(ctx, j->grid, b, z, r);
        if (rc)
            return rc;
        for (uint32_t x = r[0]; x <= r[2]; x++)
            for (uint32_t y = r[1]; y <= r[3]; y++) {
                uint8_t *png = NULL;
                size_t len = 0;
                int empty = 1;
                rc = pm_heat_tile_png(ctx, l, z, x, y, j->size, &png, &len, &empty);
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

int cmd_tiles(int argc, char **argv)
{
    tiles_job j;
    memset(&j, 0, sizeof j);
    place_opts_init(&j.p);
    j.minz = 4, j.maxz = 8, j.size = 256, j.heat.radius_m = 2000;
    int ex = parse_args(argc, argv, &j);
    if (ex)
        return ex < 0 ? EXIT_OK : ex;
    pm_ctx *ctx = pm_ctx_new();
    if (!ctx)
        return EXIT_RUN;
    pm_ctx_set_log(ctx, cli_warn_log, NULL);
    place_run r = {0};
    pm_points *pts = NULL;
    pm_heat_layer *layer = NULL;
    pm_pyramid *pyr = NULL;
    char *legend = NULL;
    uint16_t topics[MAX_VALUES];
    uint32_t sources[MAX_VALUES];
    pm_heat_filter f = {0};
    double bounds[4];
    if ((ex = place_run_all(ctx, &j.p, &r)) || (ex = place_commit_rejects(ctx, &r)))
        goto done;
    ex = EXIT_USAGE;
    for (size_t i = 0; i < j.n_topics; i++) {
        long k = pm_topics_find(r.t, j.topics[i]);
        if (k < 0) {
            cli_usage_error("tiles", "--topic: unknown topic '%s'", j.topics[i]);
            goto done;
        }
        topics[i] = (uint16_t)k;
    }
    for (size_t i = 0; i < j.n_sources; i++) {
        size_t n = pm_complaints_dict_count(r.cs, PM_DICT_SOURCE), k = 0;
        while (k < n && strcmp(pm_complaints_dict_str(r.cs, PM_DICT_SOURCE, (uint32_t)k), j.sources[i]))
            k++;
        if (k == n) {
            cli_usage_error("tiles", "--source: no complaint has source '%s'", j.sources[i]);
            goto done;
        }
        sources[i] = (uint32_t)k;
    }
    f.topics = topics, f.n_topics = j.n_topics, f.sources = sources, f.n_sources = j.n_sources;
    if (j.from || j.to) {
        long off = j.p.have_offset ? j.p.utc_offset : 0;
        int64_t t0 = 0, t1 = 0;
        if ((j.from && pm_time_parse_iso8601(j.from, off, &t0)) || (j.to && pm_time_parse_iso8601(j.to, off, &t1))) {
            cli_usage_error("tiles", "--from/--to: not a date like 2025-03-01");
            goto done;
        }
        f.has_days = 1;
        f.day_from = j.from ? pm_floor_div(t0 + off, 86400) : INT32_MIN;
        f.day_to = j.to ? pm_floor_div(t1 + off, 86400) : INT32_MAX;
    }
    ex = EXIT_RUN;
    pm_pyramid_meta meta = {j.name ? j.name : "problemap heat map", "Complaints: kernel density",
                            j.attribution, j.minz, j.maxz, {0, 0, 0, 0}, j.size, NULL};
    if (pm_points_new(ctx, r.cs, r.pl, j.grid, j.p.have_offset ? j.p.utc_offset : 0, &pts) ||
        pm_heat_layer_new(ctx, pts, &f, &j.heat, &layer) || districts_extent(ctx, r.ds, bounds)) {
        ex = cli_fail(ctx, "preparing the heat map");
        goto done;
    }
    memcpy(meta.bounds, bounds, sizeof bounds);
    if (!(legend = legend_json(layer)))
        goto done;
    meta.legend_json = legend;
    if (pm_pyramid_open(ctx, j.out, j.mbtiles, &meta, &pyr) || render_all(ctx, &j, layer, pyr, bounds)) {
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
        fprintf(stderr, "problemap: %zu tiles, zoom %d to %d, %zu points, colour scale 0 .. %.4g\n", n,
                j.minz, j.maxz, pm_points_count(pts), pm_heat_layer_vmax(layer));
    ex = EXIT_OK;
done:
    pm_pyramid_abort(pyr);
    pm_free(legend);
    pm_heat_layer_free(layer);
    pm_points_free(pts);
    place_free(ctx, &r);
    pm_ctx_free(ctx);
    return ex;
}
