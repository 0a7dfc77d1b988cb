/* cube.c — `problemap cube` (complaints → cube snapshot and tables) and
 * `problemap export` (snapshot → tables).  The figures: docs/cube.md.
 *
 * The report's heat layer needs the complaints themselves, so only `cube`
 * draws it, and only when the cube holds nothing but this run's
 * complaints (a grown snapshot's earlier complaints are not in memory);
 * it shows what the report's filter selects: the same topics, sources,
 * statuses, executors and days, and no complaint of a suppressed
 * district. */
#include "place.h"
#include "../sql/pm_db.h"
#include "../engine/pm_alloc.h"
#include "../engine/pm_cube.h"
#include "../geodata/pm_cube_out.h"
#include "../render/pm_report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_cube[] =
    "Usage: problemap cube --boundaries B.geojson --complaints C.csv [--cube cube.pmc]\n"
    "                      [--geojson districts.geojson] [--csv districts.csv]\n"
    "                      [--summary summary.json] [options]\n"
    "\n"
    "Places the complaints (as 'geocode' does) and aggregates them per district × topic ×\n"
    "period: counts, rates per km² and per 10 000 residents, answer times, open and overdue,\n"
    "change against the previous period, ratings.  With --cube the aggregate is kept in a\n"
    "snapshot file; when that file exists, the complaints are added to it (complaints it\n"
    "already holds, by id, are rejected), so a cube grows without re-reading old data.\n"
    "With --db (instead of --boundaries and --complaints) the districts and complaints come\n"
    "from PostGIS and the cube's cells replace those of its period kind and offset in\n"
    "problemap.cube_cells (docs/postgis.md).\n"
    "\n";
static const char usage_export[] =
    "Usage: problemap export --boundaries B.geojson --cube cube.pmc [--geojson F] [--csv F]\n"
    "                        [--summary F] [options]\n"
    "\n"
    "Writes the tables of an existing cube snapshot, with filters.  The boundaries must be\n"
    "the ones the cube was built over (with the same field options).\n"
    "\n"
    "Boundaries: --boundaries, --id-field, --name-field, --parent-field, --population-field,\n"
    "--regions, --crs, --no-topology-check as for 'geocode'; --topics FILE.\n";
static const char usage_common[] =
    "Cube:\n"
    "  --cube FILE              the snapshot (versioned, checksummed, replaced atomically)\n"
    "  --period day|week|month  the cube's period (default week; local days at --utc-offset)\n"
    "Tables:\n"
    "  --geojson FILE           one feature per district with its figures (RFC 7946)\n"
    "  --regions-geojson FILE   the same per region\n"
    "  --csv FILE               the district table for spreadsheets\n"
    "  --executors-csv FILE     answer figures and rating per executor\n"
    "  --topics-csv FILE        figures per topic\n"
    "  --summary FILE           JSON: period, totals, top districts, topics, slow executors\n"
    "  --report FILE            the one-page report for officials: .png, .pdf or .svg\n"
    "                           (repeat for several formats); 'cube' draws the density of\n"
    "                           the complaints over the map, 'export' cannot (a snapshot\n"
    "                           keeps no complaints)\n"
    "  --heat-radius METRES     'cube': the radius of the report's heat kernel (default\n"
    "                           1/60 of the map's larger side)\n"
    "  --report-figure NAME     the map's figure: complaints (default), complaints_per_10k,\n"
    "                           complaints_per_km2, answered_within_24h_share, change_pct,\n"
    "                           overdue_share, rating_index\n"
    "  --title TEXT             the report's title\n"
    "  --attribution TEXT       the boundaries' source, printed under the map\n"
    "                           (e.g. \"Границы: © участники OpenStreetMap\")\n"
    "  --dpi N                  PNG resolution (default 150)\n"
    "  --excel                  CSV with a UTF-8 BOM, ';' and decimal commas (Russian Excel)\n"
    "  --decimals 6|7           coordinate decimals in GeoJSON (default 6)\n"
    "  --simplify METRES        simplify geometries for the web (topology-preserving)\n"
    "Filters (repeat a flag for several values):\n"
    "  --topic T                topic code or Russian name\n"
    "  --source S, --status S, --executor E\n"
    "  --from YYYY-MM-DD        first day (local), rounded to its period\n"
    "  --to YYYY-MM-DD          last day (local), rounded to its period\n"
    "  --report-time TIME       'now' for open/overdue figures (default: end of the range)\n"
    "  --min-count K            hide the figures of rows with fewer than K complaints\n"
    "  --min-sample N           rate only rows with at least N complaints (default 30)\n"
    "  -h, --help               this help\n";

enum {
    O_CUBE = OPT_PLACE_LAST, O_PERIOD, O_GEOJSON, O_REGIONS_GEOJSON, O_CSV, O_EXEC_CSV,
    O_TOPICS_CSV, O_SUMMARY, O_EXCEL, O_DECIMALS, O_SIMPLIFY, O_TOPIC, O_SOURCE, O_STATUS,
    O_EXECUTOR, O_FROM, O_TO, O_REPORT, O_MIN_COUNT, O_MIN_SAMPLE, O_REPORT_FILE, O_FIGURE,
    O_TITLE, O_ATTRIBUTION, O_DPI, O_HEAT_RADIUS
};
#define MAX_VALUES 64

typedef struct values {
    const char *v[MAX_VALUES];
    size_t n;
} values;

typedef struct cube_job {
    place_opts p;
    const char *cube, *geojson, *regions_geojson, *csv, *exec_csv, *topics_csv, *summary;
    const char *from, *to, *report;
    int period, have_period;
    pm_export_opts ex;
    values topic, source, status, executor, reports;
    pm_report_opts rep;
    uint64_t min_count, min_sample;
} cube_job;

static int add_value(values *v, const char *cmd, const char *flag, const char *arg)
{
    if (v->n == MAX_VALUES)
        return cli_usage_error(cmd, "%s: at most %d values", flag, MAX_VALUES);
    v->v[v->n++] = arg;
    return EXIT_OK;
}

static int parse_count(const char *cmd, const char *flag, const char *arg, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (*end || arg[0] == '-' || errno)
        return cli_usage_error(cmd, "%s: '%s' is not a count", flag, arg);
    *out = v;
    return EXIT_OK;
}

static int parse_args(int argc, char **argv, const char *cmd, cube_job *j)
{
    static const struct option longopts[] = {
        CLI_PLACE_OPTIONS,
        {"cube", required_argument, 0, O_CUBE}, {"period", required_argument, 0, O_PERIOD},
        {"geojson", required_argument, 0, O_GEOJSON},
        {"regions-geojson", required_argument, 0, O_REGIONS_GEOJSON},
        {"csv", required_argument, 0, O_CSV}, {"executors-csv", required_argument, 0, O_EXEC_CSV},
        {"topics-csv", required_argument, 0, O_TOPICS_CSV},
        {"summary", required_argument, 0, O_SUMMARY}, {"excel", no_argument, 0, O_EXCEL},
        {"decimals", required_argument, 0, O_DECIMALS},
        {"simplify", required_argument, 0, O_SIMPLIFY}, {"topic", required_argument, 0, O_TOPIC},
        {"source", required_argument, 0, O_SOURCE}, {"status", required_argument, 0, O_STATUS},
        {"executor", required_argument, 0, O_EXECUTOR}, {"from", required_argument, 0, O_FROM},
        {"to", required_argument, 0, O_TO}, {"report-time", required_argument, 0, O_REPORT},
        {"min-count", required_argument, 0, O_MIN_COUNT},
        {"min-sample", required_argument, 0, O_MIN_SAMPLE},
        {"report", required_argument, 0, O_REPORT_FILE},
        {"report-figure", required_argument, 0, O_FIGURE}, {"title", required_argument, 0, O_TITLE},
        {"attribution", required_argument, 0, O_ATTRIBUTION},
        {"dpi", required_argument, 0, O_DPI},
        {"heat-radius", required_argument, 0, O_HEAT_RADIUS}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int opt, ex = EXIT_OK;
    char *end;
    optind = 1;
    while (ex == EXIT_OK && (opt = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        int k = place_option(&j->p, cmd, opt, optarg);
        if (k < 0)
            return EXIT_USAGE;
        if (k)
            continue;
        switch (opt) {
        case O_CUBE: j->cube = optarg; break;
        case O_PERIOD:
            if ((j->period = pm_period_kind_parse(optarg)) < 0)
                return cli_usage_error(cmd, "--period: '%s' is not day, week or month", optarg);
            j->have_period = 1;
            break;
        case O_GEOJSON: j->geojson = optarg; break;
        case O_REGIONS_GEOJSON: j->regions_geojson = optarg; break;
        case O_CSV: j->csv = optarg; break;
        case O_EXEC_CSV: j->exec_csv = optarg; break;
        case O_TOPICS_CSV: j->topics_csv = optarg; break;
        case O_SUMMARY: j->summary = optarg; break;
        case O_EXCEL: j->ex.csv_bom = 1; j->ex.csv_delim = ';'; break;
        case O_DECIMALS:
            j->ex.decimals = (int)strtol(optarg, &end, 10);
            if (*end || (j->ex.decimals != 6 && j->ex.decimals != 7))
                return cli_usage_error(cmd, "--decimals: '%s' is not 6 or 7", optarg);
            break;
        case O_SIMPLIFY:
            j->ex.simplify_m = strtod(optarg, &end);
            if (*end || !(j->ex.simplify_m >= 0) || j->ex.simplify_m > 1e5)
                return cli_usage_error(cmd, "--simplify: '%s' is not a distance in metres", optarg);
            break;
        case O_TOPIC: ex = add_value(&j->topic, cmd, "--topic", optarg); break;
        case O_SOURCE: ex = add_value(&j->source, cmd, "--source", optarg); break;
        case O_STATUS: ex = add_value(&j->status, cmd, "--status", optarg); break;
        case O_EXECUTOR: ex = add_value(&j->executor, cmd, "--executor", optarg); break;
        case O_FROM: j->from = optarg; break;
        case O_TO: j->to = optarg; break;
        case O_REPORT: j->report = optarg; break;
        case O_MIN_COUNT: ex = parse_count(cmd, "--min-count", optarg, &j->min_count); break;
        case O_MIN_SAMPLE: ex = parse_count(cmd, "--min-sample", optarg, &j->min_sample); break;
        case O_REPORT_FILE:
            if (pm_report_format_parse(NULL, optarg) < 0)
                return cli_usage_error(cmd, "--report: '%s' does not end in .png, .pdf or .svg", optarg);
            ex = add_value(&j->reports, cmd, "--report", optarg);
            break;
        case O_FIGURE: j->rep.figure = optarg; break;
        case O_TITLE: j->rep.title = optarg; break;
        case O_ATTRIBUTION: j->rep.attribution = optarg; break;
        case O_DPI:
            j->rep.dpi = strtod(optarg, &end);
            if (*end || !(j->rep.dpi >= 30 && j->rep.dpi <= 1200))
                return cli_usage_error(cmd, "--dpi: '%s' is not a resolution from 30 to 1200", optarg);
            break;
        case O_HEAT_RADIUS:
            j->rep.heat_radius_m = strtod(optarg, &end);
            if (*end || !(j->rep.heat_radius_m > 0 && j->rep.heat_radius_m <= 1e6))
                return cli_usage_error(cmd, "--heat-radius: '%s' is not a distance in metres", optarg);
            break;
        case 'h':
            printf("%s%s%s", strcmp(cmd, "cube") == 0 ? usage_cube : usage_export,
                   strcmp(cmd, "cube") == 0 ? place_usage : "", usage_common);
            return -1;
        default: return cli_usage_error(cmd, "unknown option");
        }
    }
    if (ex)
        return ex;
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    return EXIT_OK;
}

/* Turns names into the indexes a pm_filter takes; unknown names are usage
 * errors that name the value. */
typedef struct filter_buf {
    uint16_t topics[MAX_VALUES];
    uint32_t dict[3][MAX_VALUES];
} filter_buf;

/* The period of a local day, in the cube's own period kind and offset. */
static int local_day_period(const char *cmd, const pm_cube *cube, const char *flag,
                            const char *day, int64_t *p)
{
    const pm_cube_opts *o = pm_cube_options(cube);
    int64_t t;
    if (pm_time_parse_iso8601(day, o->utc_offset_s, &t) != 0)
        return cli_usage_error(cmd, "%s: '%s' is not a date like 2025-03-01", flag, day);
    *p = pm_period_of(o->period, t, o->utc_offset_s);
    return EXIT_OK;
}

static int make_filter(const cube_job *j, const char *cmd, const pm_topics *t, const pm_cube *cube,
                       filter_buf *fb, pm_filter *f)
{
    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < j->topic.n; i++) {
        long k = pm_topics_find(t, j->topic.v[i]);
        if (k < 0)
            return cli_usage_error(cmd, "--topic: unknown topic '%s' (see 'problemap topics')", j->topic.v[i]);
        fb->topics[i] = (uint16_t)k;
    }
    f->topics = fb->topics;
    f->n_topics = j->topic.n;
    const values *vs[3] = {&j->source, &j->status, &j->executor};
    const pm_dict_col cols[3] = {PM_DICT_SOURCE, PM_DICT_STATUS, PM_DICT_EXECUTOR};
    const char *flags[3] = {"--source", "--status", "--executor"};
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < vs[k]->n; i++) {
            long idx = pm_cube_dict_find(cube, cols[k], vs[k]->v[i]);
            if (idx < 0)
                return cli_usage_error(cmd, "%s: no complaint in the cube has '%s'", flags[k], vs[k]->v[i]);
            fb->dict[k][i] = (uint32_t)idx;
        }
    f->sources = fb->dict[0], f->n_sources = j->source.n;
    f->statuses = fb->dict[1], f->n_statuses = j->status.n;
    f->executors = fb->dict[2], f->n_executors = j->executor.n;
    int64_t first = 0, last = 0;
    pm_cube_period_span(cube, &first, &last);
    if (j->from || j->to) {
        f->has_range = 1;
        f->period_from = first;
        f->period_to = last;
        if ((j->from && local_day_period(cmd, cube, "--from", j->from, &f->period_from)) ||
            (j->to && local_day_period(cmd, cube, "--to", j->to, &f->period_to)))
            return EXIT_USAGE;
        if (f->period_to < f->period_from)
            return cli_usage_error(cmd, "--to is before --from");
    }
    if (j->report &&
        pm_time_parse_iso8601(j->report, pm_cube_options(cube)->utc_offset_s, &f->report_time) != 0)
        return cli_usage_error(cmd, "--report-time: '%s' is not a time like 2025-03-01T12:00:00+07:00", j->report);
    f->min_count = j->min_count;
    f->min_sample = j->min_sample;
    return EXIT_OK;
}

/* Runs one query and hands the rows to a writer. */
static int write_level(pm_ctx *ctx, const cube_job *j, const pm_districts *ds, const pm_topics *t,
                       const pm_cube *cube, const pm_filter *f, pm_level level, const char *path,
                       int geojson)
{
    if (!path)
        return EXIT_OK;
    pm_row *rows = NULL;
    size_t n = 0;
    int rc = pm_cube_query(ctx, cube, level, f, &rows, &n);
    if (!rc)
        rc = geojson ? pm_cube_write_geojson(ctx, path, ds, cube, level, rows, n, &j->ex)
                     : pm_cube_write_csv(ctx, path, ds, cube, t, level, rows, n, &j->ex);
    pm_free(rows);
    if (rc) {
        char what[4200];
        snprintf(what, sizeof what, "writing %s", path);
        return cli_fail(ctx, what);
    }
    return EXIT_OK;
}

/* ---- the report's heat layer ------------------------------------------------- */

/* The report filter in the batch's terms (its dictionaries differ from
 * the cube's): topics and sources for the heat filter, statuses and
 * executors applied to a copy of the placement (a complaint they leave
 * out is marked rejected there, so the heat layer skips it). */
typedef struct heat_buf {
    uint16_t topics[MAX_VALUES];
    uint32_t sources[MAX_VALUES];
    pm_heat_filter f;
    pm_placed pl;
} heat_buf;

/* The batch's index of the cube's dictionary entry idx: PM_NONE for
 * PM_NONE, the batch's count (an index nothing has) when the batch lacks
 * the string. */
static uint32_t batch_index(const pm_complaints *cs, const pm_cube *cube, pm_dict_col col,
                            uint32_t idx)
{
    if (idx == PM_NONE)
        return PM_NONE;
    const char *want = pm_cube_dict_str(cube, col, idx);
    size_t n = pm_complaints_dict_count(cs, col);
    for (uint32_t k = 0; want && k < n; k++)
        if (strcmp(pm_complaints_dict_str(cs, col, k), want) == 0)
            return k;
    return (uint32_t)n;
}

/* Whether complaint i's value in col is one of the set (cube indexes). */
static int in_set(const pm_complaints *cs, const pm_cube *cube, pm_dict_col col,
                  const uint32_t *set, size_t n, size_t i)
{
    uint32_t v = pm_complaints_dict_at(cs, col, i);
    for (size_t k = 0; k < n; k++)
        if (batch_index(cs, cube, col, set[k]) == v)
            return 1;
    return n == 0;
}

/* Local day of UTC time t (floored). */
static int64_t local_day(int64_t t, long utc_offset_s)
{
    int64_t s = t + utc_offset_s;
    return s / 86400 - (s % 86400 < 0);
}

/* Fills hb from the report filter f; 0, or an exit status. */
static int heat_filter_make(const pm_complaints *cs, const pm_placed *pl, const pm_cube *cube,
                            const pm_filter *f, heat_buf *hb)
{
    memset(hb, 0, sizeof *hb);
    for (size_t k = 0; k < f->n_topics; k++)
        hb->topics[k] = f->topics[k];
    hb->f.topics = hb->topics;
    hb->f.n_topics = f->n_topics;
    for (size_t k = 0; k < f->n_sources; k++)
        hb->sources[k] = batch_index(cs, cube, PM_DICT_SOURCE, f->sources[k]);
    hb->f.sources = hb->sources;
    hb->f.n_sources = f->n_sources;
    const pm_cube_opts *co = pm_cube_options(cube);
    if (f->has_range) {
        hb->f.has_days = 1;
        hb->f.day_from = local_day(pm_period_start(co->period, f->period_from, co->utc_offset_s),
                                   co->utc_offset_s);
        hb->f.day_to = local_day(pm_period_start(co->period, f->period_to + 1, co->utc_offset_s),
                                 co->utc_offset_s) - 1;
    }
    hb->pl = *pl;
    if (!f->n_statuses && !f->n_executors)
        return EXIT_OK;
    if (!(hb->pl.placement = pm_malloc(pl->n))) {
        fprintf(stderr, "problemap: out of memory for the report's heat layer\n");
        return EXIT_RUN;
    }
    for (size_t i = 0; i < pl->n; i++)
        hb->pl.placement[i] =
            in_set(cs, cube, PM_DICT_STATUS, f->statuses, f->n_statuses, i) &&
                    in_set(cs, cube, PM_DICT_EXECUTOR, f->executors, f->n_executors, i)
                ? pl->placement[i]
                : PM_PLACE_REJECTED;
    return EXIT_OK;
}

static void heat_filter_free(heat_buf *hb, const pm_placed *pl)
{
    if (hb->pl.placement != pl->placement)
        pm_free(hb->pl.placement);
}

/* The complaints of this run, when the report can draw them. */
typedef struct heat_src {
    const pm_complaints *cs;
    const pm_placed *pl;
} heat_src;

static int export_all(pm_ctx *ctx, const cube_job *j, const char *cmd, const pm_districts *ds,
                      const pm_topics *t, const pm_cube *cube, const heat_src *heat)
{
    filter_buf fb;
    pm_filter f;
    int ex = make_filter(j, cmd, t, cube, &fb, &f);
    if (!ex)
        ex = write_level(ctx, j, ds, t, cube, &f, PM_LEVEL_DISTRICT, j->geojson, 1);
    if (!ex)
        ex = write_level(ctx, j, ds, t, cube, &f, PM_LEVEL_REGION, j->regions_geojson, 1);
    if (!ex)
        ex = write_level(ctx, j, ds, t, cube, &f, PM_LEVEL_DISTRICT, j->csv, 0);
    if (!ex)
        ex = write_level(ctx, j, ds, t, cube, &f, PM_LEVEL_EXECUTOR, j->exec_csv, 0);
    if (!ex)
        ex = write_level(ctx, j, ds, t, cube, &f, PM_LEVEL_TOPIC, j->topics_csv, 0);
    if (!ex && j->summary && pm_cube_write_summary(ctx, j->summary, ds, cube, t, &f))
        ex = cli_fail(ctx, "writing the summary");
    pm_report_opts rep = j->rep;
    heat_buf hb;
    int have_heat = !ex && j->reports.n && heat && heat->cs;
    if (have_heat && (ex = heat_filter_make(heat->cs, heat->pl, cube, &f, &hb)))
        have_heat = 0;
    if (have_heat) {
        rep.heat_cs = heat->cs;
        rep.heat_pl = &hb.pl;
        rep.heat_filter = &hb.f;
        rep.heat_utc_offset_s = pm_cube_options(cube)->utc_offset_s;
        rep.threads = j->p.threads;   /* --threads, as for placing */
    }
    for (size_t i = 0; !ex && i < j->reports.n; i++) {
        const char *path = j->reports.v[i];
        if (pm_report_write(ctx, path, (pm_report_format)pm_report_format_parse(NULL, path), ds,
                            cube, t, &f, &rep))
            ex = cli_fail(ctx, "writing the report");   /* the message names the file */
    }
    if (have_heat)
        heat_filter_free(&hb, heat->pl);
    return ex;
}

static int setup(int argc, char **argv, const char *cmd, cube_job *j, pm_ctx **ctx)
{
    memset(j, 0, sizeof *j);
    place_opts_init(&j->p);
    j->period = PM_PERIOD_WEEK;
    int ex = parse_args(argc, argv, cmd, j);
    if (ex)
        return ex;
    if (!(*ctx = pm_ctx_new())) {
        fprintf(stderr, "problemap: cannot start GEOS/PROJ (out of memory?)\n");
        return EXIT_RUN;
    }
    pm_ctx_set_log(*ctx, cli_warn_log, j->p.quiet ? (void *)&cli_quiet : NULL);
    return EXIT_OK;
}

/* Opens the snapshot at path when it exists, else a new cube.  For export
 * the snapshot must exist, and is only queried: it keeps no id set. */
static int open_cube(pm_ctx *ctx, const cube_job *j, const pm_districts *ds, size_t n_topics,
                     pm_cube **cube, int for_export)
{
    if (j->cube && access(j->cube, F_OK) == 0) {
        if ((for_export ? pm_cube_read_query_only : pm_cube_read)(ctx, j->cube, ds, n_topics, cube))
            return cli_fail(ctx, "reading the cube");
        /* A cube keeps its period and offset: flags that say otherwise are an error. */
        const pm_cube_opts *o = pm_cube_options(*cube);
        if ((j->p.have_offset && o->utc_offset_s != j->p.utc_offset) ||
            (j->have_period && (int)o->period != j->period)) {
            fprintf(stderr, "problemap: %s was built with --period %s and --utc-offset %+ld s; "
                            "give the same (or a new cube file)\n",
                    j->cube, pm_period_kind_name(o->period), o->utc_offset_s);
            return EXIT_USAGE;
        }
        return EXIT_OK;
    }
    if (for_export) {
        fprintf(stderr, "problemap: %s: no such cube (build one with 'problemap cube')\n",
                j->cube ? j->cube : "--cube");
        return EXIT_USAGE;
    }
    pm_cube_opts co = {(pm_period_kind)j->period, j->p.utc_offset};
    if (pm_cube_new(ctx, ds, n_topics, &co, cube))
        return cli_fail(ctx, "making the cube");
    return EXIT_OK;
}

int cmd_cube(int argc, char **argv)
{
    cube_job j;
    pm_ctx *ctx = NULL;
    int ex = setup(argc, argv, "cube", &j, &ctx);
    if (ex)
        return ex < 0 ? EXIT_OK : ex;
    if ((ex = place_check(&j.p, "cube"))) {
        pm_ctx_free(ctx);
        return ex;
    }
    /* When the mapping gives the offset, periods still need one: the flag. */
    place_run r = {0};
    pm_cube *cube = NULL;
    place_cube_feed feed = {0};
    ex = place_run_open(ctx, &j.p, &r);
    if (!ex)
        ex = open_cube(ctx, &j, r.ds, pm_topics_count(r.t), &cube, 0);
    /* without --cube the cube is not kept, so the ids need no set of their own */
    if (!ex && !j.cube && pm_cube_keep_no_ids(ctx, cube))
        ex = cli_fail(ctx, "making the cube");
    if (!ex) {   /* each block enters the cube while the next ones are read */
        feed.cube = cube;
        ex = place_run_read(ctx, &j.p, &r, place_cube_feed_block, &feed, "aggregating");
    }
    uint64_t added = 0;
    ex = place_cube_feed_end(ctx, &r, &feed, ex, &added);
    if (!ex && j.cube && pm_cube_write(ctx, cube, j.cube))
        ex = cli_fail(ctx, "writing the cube");
    uint64_t db_cells = 0;
    if (!ex && r.db && pm_db_write_cube(ctx, r.db, cube, r.ds, r.t, &db_cells))
        ex = cli_fail(ctx, "writing the cube's cells to the database");
    if (!ex && r.db && !j.p.quiet)
        fprintf(stderr, "problemap: database: %llu cells written to problemap.cube_cells\n",
                (unsigned long long)db_cells);
    /* the heat layer only when every complaint of the cube is in memory */
    heat_src heat = {cube && pm_cube_total(cube) == added ? r.cs : NULL, r.pl};
    if (!ex && j.reports.n && !heat.cs)
        fprintf(stderr, "problemap: warning: the report has no heat layer: %s holds complaints of "
                        "earlier runs, which are not in memory\n", j.cube);
    if (!ex)
        ex = export_all(ctx, &j, "cube", r.ds, r.t, cube, &heat);
    if (!ex && !j.p.quiet)
        fprintf(stderr,
                "problemap: %s: read %llu, accepted %llu (%llu into the cube, the rest outside "
                "every district), rejected %llu; the cube now holds %llu complaints in %zu cells\n",
                place_source_name(&j.p), (unsigned long long)r.ic.read,
                (unsigned long long)r.accepted, (unsigned long long)added, (unsigned long long)r.rejected,
                (unsigned long long)pm_cube_total(cube), pm_cube_cells(cube));
    pm_cube_free(cube);
    place_free(ctx, &r);
    pm_ctx_free(ctx);
    return ex;
}

int cmd_export(int argc, char **argv)
{
    cube_job j;
    pm_ctx *ctx = NULL;
    int ex = setup(argc, argv, "export", &j, &ctx);
    if (ex)
        return ex < 0 ? EXIT_OK : ex;
    pm_districts *ds = NULL;
    pm_topics *t = NULL;
    pm_cube *cube = NULL;
    if (!j.p.b.path || !j.cube)
        ex = cli_usage_error("export", "--boundaries and --cube are required");
    if (!ex)
        ex = cli_load_districts(ctx, &j.p.b, &ds);
    if (!ex)
        ex = cli_load_topics(ctx, j.p.topics, &t);
    if (!ex)
        ex = open_cube(ctx, &j, ds, pm_topics_count(t), &cube, 1);
    if (!ex)
        ex = export_all(ctx, &j, "export", ds, t, cube, NULL);
    pm_cube_free(cube);
    pm_topics_free(t);
    pm_districts_free(ctx, ds);
    pm_ctx_free(ctx);
    return ex;
}
