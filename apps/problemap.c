/* problemap.c — the program: dispatches to the subcommands. */
#include "cli.h"
#include "../engine/pm_alloc.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#define PM_VERSION "0.1.0"

static const char usage[] =
    "Usage: problemap COMMAND [options]\n"
    "\n"
    "The map of a region's citizen complaints: geocoding against municipal boundaries,\n"
    "aggregation, maps and exports.\n"
    "\n"
    "Commands:\n"
    "  geocode    place complaints in districts (point in polygon); rejects with reasons\n"
    "  cube       aggregate per district x topic x period: counts, rates, answer times,\n"
    "             ratings; GeoJSON, CSV and a summary; an incremental snapshot\n"
    "  export     the tables of an existing cube snapshot, with filters\n"
    "  tiles      heat-map tiles: a z/x/y.png pyramid with TileJSON, and MBTiles\n"
    "  serve      the web map: an HTTP server of live tiles, tables and reports\n"
    "  dataset    the map's placed complaints and heat-map points as one snapshot file,\n"
    "             for 'serve' and 'tiles' to start from\n"
    "  analyze    hot spots (Gi*, local Moran), emerging hot spots, forecasts and surge\n"
    "             alerts, the recurrence register\n"
    "  db         PostGIS as the database of record: migrate, load\n"
    "  generate   write a deterministic synthetic complaint CSV over real boundaries\n"
    "  topics     list the topic catalogue\n"
    "\n"
    "'problemap COMMAND --help' explains each command's options.\n"
    "Exit status: 0 done (even with rejected records), 1 could not complete (the message\n"
    "names the file and the reason), 2 bad command line.\n";

int main(int argc, char **argv)
{
    /* Past a file-size limit (ulimit -f) a write fails with EFBIG and the
     * writer reports it and removes its temporary, instead of the default
     * SIGXFSZ killing the program midway. */
    signal(SIGXFSZ, SIG_IGN);
    pm_alloc_keep_freed();   /* tiles reuse their buffers instead of faulting them in */
    if (argc < 2) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("problemap %s\n", PM_VERSION);
        return EXIT_OK;
    }
    if (strcmp(cmd, "geocode") == 0)
        return cmd_geocode(argc - 1, argv + 1);
    if (strcmp(cmd, "generate") == 0)
        return cmd_generate(argc - 1, argv + 1);
    if (strcmp(cmd, "cube") == 0)
        return cmd_cube(argc - 1, argv + 1);
    if (strcmp(cmd, "export") == 0)
        return cmd_export(argc - 1, argv + 1);
    if (strcmp(cmd, "tiles") == 0)
        return cmd_tiles(argc - 1, argv + 1);
    if (strcmp(cmd, "analyze") == 0)
        return cmd_analyze(argc - 1, argv + 1);
    if (strcmp(cmd, "db") == 0)
        return cmd_db(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "dataset") == 0)
        return cmd_dataset(argc - 1, argv + 1);
    if (strcmp(cmd, "topics") == 0)
        return cmd_topics(argc - 1, argv + 1);
    fprintf(stderr, "problemap: unknown command '%s'\n\n%s", cmd, usage);
    return EXIT_USAGE;
}
