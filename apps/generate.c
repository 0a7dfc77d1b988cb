/* generate.c — `problemap generate`: a deterministic synthetic complaint CSV
 * over real boundaries, clustered around real towns (engine/pm_synth.h). */
#include "cli.h"
#include "../engine/pm_alloc.h"
#include "../engine/pm_locate.h"
#include "../engine/pm_synth.h"
#include "../geodata/pm_complaints_in.h"
#include "../geodata/pm_out.h"
#include "../geodata/pm_record.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: problemap generate --boundaries B.geojson --output C.csv [options]\n"
    "\n"
    "Writes N synthetic complaints in the canonical CSV layout (id, created_at, lon, lat,\n"
    "topic, source, status, answered_at, executor, district_code, text), the same for the\n"
    "same seed.  Most fall around the towns that lie inside the boundaries; the rest are\n"
    "spread over the districts.  No real person is in them.\n"
    "\n"
    "  --boundaries FILE      districts (and the boundary flags of 'geocode')\n"
    "  --towns FILE           CSV with name, lon, lat (default: the shipped ru_towns.csv)\n"
    "  --output FILE          the complaint CSV ('-' for standard output; required)\n"
    "  --n N                  number of complaints (default 10000)\n"
    "  --seed S               seed (default 1)\n"
    "  --start YYYY-MM-DD     first day (default 2025-01-01)\n"
    "  --days D               length of the period in days (default 90)\n"
    "  --utc-offset +HH:MM    the region's offset, for the daily rhythm (default +03:00)\n"
    "  --cluster-share X      share around towns, 0..1 (default 0.8)\n"
    "  --no-coords-share X    share with only a district code, 0..1 (default 0.03)\n"
    "  --dirty-share X        share of deliberately bad records, 0..1 (default 0.02)\n"
    "  -h, --help             this help\n";

/* Realistic shares of the industry blocks in ЦУР statistics (approximate). */
static double topic_weight(const char *code)
{
    static const struct { const char *code; double w; } w[] = {
        {"housing", 0.34}, {"roads", 0.18}, {"transport", 0.08}, {"health", 0.08},
        {"social", 0.07}, {"education", 0.06}, {"ecology", 0.06}, {"construction", 0.04},
        {"energy", 0.04}, {"labour", 0.02}, {"industry", 0.01}, {"other", 0.02}};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
        if (strcmp(w[i].code, code) == 0)
            return w[i].w;
    return 0.01;
}

/* Towns: the rows of a CSV with lon and lat columns that lie in a district. */
typedef struct towns {
    pm_ctx *ctx;
    const pm_locator *loc;
    pm_synth_town *t;
    size_t n, cap;
    uint64_t skipped;
} towns;

static int town_record(void *user, const pm_record *rec)
{
    towns *tw = user;
    const char *x = pm_record_get(rec, "lon"), *y = pm_record_get(rec, "lat");
    char *ex, *ey;
    double lon = x ? strtod(x, &ex) : NAN, lat = y ? strtod(y, &ey) : NAN;
    if (!x || !y || *ex || *ey || !isfinite(lon) || !isfinite(lat)) {
        tw->skipped++;
        return 0;
    }
    int32_t d;
    pm_placement p;
    double m;
    int rc = pm_locate_point(tw->ctx, tw->loc, lon, lat, &d, &p, &m);
    if (rc)
        return rc;
    if (d < 0 || p == PM_PLACE_SNAPPED)
        return 0;
    if (tw->n == tw->cap) {
        size_t cap = tw->cap ? tw->cap * 2 : 256;
        pm_synth_town *t = pm_reallocarray(tw->t, cap, sizeof *t);
        if (!t)
            return PM_ERR(tw->ctx, PM_E_NOMEM, "out of memory reading towns");
        tw->t = t;
        tw->cap = cap;
    }
    tw->t[tw->n++] = (pm_synth_town){lon, lat, 1.0};
    return 0;
}

static int town_reject(void *user, uint64_t line, const char *id, const char *field,
                       const char *reason)
{
    (void)line, (void)id, (void)field, (void)reason;
    ((towns *)user)->skipped++;
    return 0;
}

static int emit_row(void *user, const pm_synth_row *r)
{
    FILE *f = user;
    const char *row[] = {r->id, r->created_at, r->lon, r->lat, r->topic, r->source,
                         r->status, r->answered_at, r->executor, r->district_code, r->text};
    pm_csv_write_row(f, ',', 11, row);
    return ferror(f) ? PM_E_IO : 0;
}

static int parse_share(const char *arg, double *out)
{
    char *end;
    *out = strtod(arg, &end);
    return !*end && *out >= 0 && *out <= 1;
}

int cmd_generate(int argc, char **argv)
{
    enum { O_TOWNS = OPT_FIRST_LOCAL, O_OUTPUT, O_N, O_SEED, O_START, O_DAYS, O_CLUSTER,
           O_NOCOORDS, O_DIRTY };
    static const struct option longopts[] = {
        CLI_BOUNDARY_OPTIONS,
        {"towns", required_argument, 0, O_TOWNS}, {"output", required_argument, 0, O_OUTPUT},
        {"n", required_argument, 0, O_N}, {"seed", required_argument, 0, O_SEED},
        {"start", required_argument, 0, O_START}, {"days", required_argument, 0, O_DAYS},
        {"utc-offset", required_argument, 0, OPT_UTC_OFFSET},
        {"topics", required_argument, 0, OPT_TOPICS},
        {"cluster-share", required_argument, 0, O_CLUSTER},
        {"no-coords-share", required_argument, 0, O_NOCOORDS},
        {"dirty-share", required_argument, 0, O_DIRTY},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    cli_boundaries b = {.opts.check_topology = 0};
    const char *towns_path = NULL, *output = NULL, *topics_path = NULL;
    pm_synth_opts o;
    pm_synth_opts_default(&o);
    o.n = 10000;
    o.utc_offset_s = 3 * 3600;
    int opt, ok;
    char *end;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (cli_boundary_option(&b, opt, optarg))
            continue;
        switch (opt) {
        case O_TOWNS: towns_path = optarg; break;
        case O_OUTPUT: output = optarg; break;
        case OPT_TOPICS: topics_path = optarg; break;
        case O_N:
            o.n = strtoull(optarg, &end, 10);
            if (*end || optarg[0] == '-' || o.n == 0 || o.n > 100000000)
                return cli_usage_error("generate", "--n: '%s' is not a count from 1 to 100000000", optarg);
            break;
        case O_SEED:
            o.seed = strtoull(optarg, &end, 10);
            if (*end || optarg[0] == '-')
                return cli_usage_error("generate", "--seed: '%s' is not a non-negative integer", optarg);
            break;
        case O_START:
            if (pm_time_parse_iso8601(optarg, 0, &o.start) != 0)
                return cli_usage_error("generate", "--start: '%s' is not a date like 2025-01-01", optarg);
            break;
        case O_DAYS:
            o.days = (int)strtol(optarg, &end, 10);
            if (*end || o.days < 1 || o.days > 36600)
                return cli_usage_error("generate", "--days: '%s' is not a number of days", optarg);
            break;
        case OPT_UTC_OFFSET:
            o.utc_offset_s = cli_parse_utc_offset(optarg, &ok);
            if (!ok)
                return cli_usage_error("generate", "--utc-offset: '%s' is not an offset like +07:00", optarg);
            break;
        case O_CLUSTER:
        case O_NOCOORDS:
        case O_DIRTY:
            if (!parse_share(optarg, opt == O_CLUSTER ? &o.cluster_share
                                     : opt == O_NOCOORDS ? &o.no_coords_share
                                                         : &o.dirty_share))
                return cli_usage_error("generate", "'%s' is not a share from 0 to 1", optarg);
            break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: return cli_usage_error("generate", "unknown option");
        }
    }
    if (optind < argc)
        return cli_usage_error("generate", "unexpected argument '%s'", argv[optind]);
    if (!b.path || !output)
        return cli_usage_error("generate", "--boundaries and --output are required");
    o.start -= o.utc_offset_s; /* the first day in the region's local time */

    pm_ctx *ctx = pm_ctx_new();
    if (!ctx)
        return EXIT_RUN;
    pm_ctx_set_log(ctx, cli_warn_log, NULL);
    pm_districts *ds = NULL;
    pm_topics *t = NULL;
    pm_locator *loc = NULL;
    towns tw = {ctx, NULL, NULL, 0, 0, 0};
    char *found = NULL;
    const char **codes = NULL;
    double *weights = NULL;
    pm_outfile *of = NULL;
    int ex = cli_load_districts(ctx, &b, &ds);
    if (!ex)
        ex = cli_load_topics(ctx, topics_path, &t);
    if (ex)
        goto done;
    ex = EXIT_RUN;
    if (pm_locator_new(ctx, ds, 0, &loc)) {
        ex = cli_fail(ctx, "building the locator");
        goto done;
    }
    tw.loc = loc;
    if (!towns_path && !(towns_path = found = cli_data_path("ru_towns.csv"))) {
        fprintf(stderr, "problemap: cannot find the shipped ru_towns.csv (give --towns FILE)\n");
        goto done;
    }
    pm_record_sink sink = {town_record, town_reject, &tw};
    if (pm_records_read_path(ctx, towns_path, PM_FMT_CSV, 0, &sink)) {
        ex = cli_fail(ctx, "reading towns");
        goto done;
    }
    fprintf(stderr, "problemap: %s: %zu towns inside the districts (%llu rows without usable "
                    "coordinates skipped)\n", towns_path, tw.n, (unsigned long long)tw.skipped);
    size_t nt = pm_topics_count(t);
    codes = pm_calloc(nt, sizeof *codes);
    weights = pm_calloc(nt, sizeof *weights);
    if (!codes || !weights) {
        fprintf(stderr, "problemap: out of memory\n");
        goto done;
    }
    for (size_t i = 0; i < nt; i++) {
        codes[i] = pm_topic_code(t, i);
        weights[i] = topic_weight(codes[i]);
    }
    if (pm_outfile_open(ctx, output, &of)) {
        ex = cli_fail(ctx, "output");
        goto done;
    }
    static const char *const header[] = {"id", "created_at", "lon", "lat", "topic", "source",
                                         "status", "answered_at", "executor", "district_code",
                                         "text"};
    pm_csv_write_row(pm_outfile_stream(of), ',', 11, header);
    int rc = pm_synth_run(ctx, &o, tw.t, tw.n, ds, codes, weights, nt, emit_row,
                          pm_outfile_stream(of));
    if (rc == PM_E_IO)
        rc = PM_ERR(ctx, PM_E_IO, "error writing %s", output);
    if (rc) {
        ex = cli_fail(ctx, "generating complaints");
        goto done;
    }
    rc = pm_outfile_commit(ctx, of);
    of = NULL;
    if (rc) {
        ex = cli_fail(ctx, "writing complaints");
        goto done;
    }
    ex = EXIT_OK;
done:
    pm_outfile_abort(of);
    pm_free(codes);
    pm_free(weights);
    pm_free(found);
    pm_free(tw.t);
    pm_locator_free(ctx, loc);
    pm_topics_free(t);
    pm_districts_free(ctx, ds);
    pm_ctx_free(ctx);
    return ex;
}
