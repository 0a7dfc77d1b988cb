/* dataset.c — `problemap dataset`: places and aggregates the complaints,
 * projects them onto both tile grids and writes the map's dataset as a
 * snapshot (dataset_io.c, docs/dataset.md), which `problemap serve
 * --dataset` and `problemap tiles --dataset` start from without placing or
 * aggregating anything. */
#include "layers.h"
#include "../engine/pm_alloc.h"

#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: problemap dataset --boundaries B.geojson --complaints C.csv --out D.pmdata\n"
    "                         [options]\n"
    "\n"
    "Places the complaints (as 'geocode' does), aggregates them (as 'cube' does), projects\n"
    "them onto both tile grids and writes what the map is drawn from to one snapshot file:\n"
    "the placed complaints' positions, times, topics and sources (no ids, texts or\n"
    "authors), their districts, the heat-map points and the cube.  'problemap serve\n"
    "--dataset D.pmdata' and 'problemap tiles --dataset D.pmdata', given the same\n"
    "--boundaries and --topics, start from it without placing or aggregating, and draw the\n"
    "same map.  Layout: docs/dataset.md.\n"
    "\n";
static const char usage_out[] =
    "Output:\n"
    "  --out FILE               the snapshot (written under a temporary name, then renamed)\n"
    "  --period day|week|month  the period of the cube it keeps (default week); a server or\n"
    "                           tile run with another --period makes its cube again\n"
    "  -h, --help               this help\n";

int cmd_dataset(int argc, char **argv)
{
    enum { O_OUT = OPT_PLACE_LAST, O_PERIOD };
    static const struct option longopts[] = {
        CLI_PLACE_OPTIONS, {"out", required_argument, 0, O_OUT},
        {"period", required_argument, 0, O_PERIOD}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    place_opts po;
    place_opts_init(&po);
    const char *out = NULL, *period = NULL;
    int opt, k;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        if ((k = place_option(&po, "dataset", opt, optarg)) < 0)
            return EXIT_USAGE;
        if (k)
            continue;
        switch (opt) {
        case O_OUT: out = optarg; break;
        case O_PERIOD:
            if (pm_period_kind_parse(optarg) < 0)
                return cli_usage_error("dataset", "--period: '%s' is not day, week or month", optarg);
            period = optarg;
            break;
        case 'h': printf("%s%s%s", usage, place_usage, usage_out); return EXIT_OK;
        default: return cli_usage_error("dataset", "unknown option");
        }
    }
    if (optind < argc)
        return cli_usage_error("dataset", "unexpected argument '%s'", argv[optind]);
    if (!out)
        return cli_usage_error("dataset", "--out is required");
    int ex = place_check(&po, "dataset");
    if (ex)
        return ex;
    pm_ctx *ctx = pm_ctx_new();
    if (!ctx)
        return EXIT_RUN;
    pm_ctx_set_log(ctx, cli_warn_log, NULL);
    dataset *d = NULL;
    ex = dataset_new(ctx, &po, period, 1, &d);   /* the cube keeps its ids, to be written */
    if (!ex) {
        place_print_counts(&po, &d->run);
        ex = dataset_write(ctx, d, out);
    }
    if (!ex && !po.quiet)
        fprintf(stderr, "problemap: wrote %s: %llu complaints, %zu heat-map points, a cube of "
                "%zu cells\n", out, (unsigned long long)d->run.accepted,
                pm_points_count(d->points[PM_GRID_WEBMERC]), pm_cube_cells(d->cube));
    dataset_free(ctx, d);
    pm_ctx_free(ctx);
    return ex;
}
