/* geocode.c — `problemap geocode`: boundaries + complaints → placed CSV,
 * rejects CSV and a summary. */
#include "cli.h"
#include "../engine/pm_alloc.h"
#include "../engine/pm_complaint.h"
#include "../engine/pm_locate.h"
#include "../geodata/pm_complaints_in.h"
#include "../geodata/pm_out.h"

#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "Usage: problemap geocode --boundaries B.geojson --complaints C.csv --output placed.csv\n"
    "                         [--rejects rejects.csv] [--snap-tolerance METRES] [options]\n"
    "\n"
    "Places every complaint in a district (point in polygon, GEOS) and writes one row per\n"
    "accepted complaint: id, created_at, lon, lat, topic, source, status, answered_at,\n"
    "executor, district_id, region_id, placement (inside, border, snapped, by_code,\n"
    "outside), snap_m.  Bad records go to the rejects file (line, id, field, reason).\n"
    "'-' means standard input or output.\n"
    "\n"
    "Boundaries:\n"
    "  --boundaries FILE        GeoJSON FeatureCollection of (Multi)Polygons (required)\n"
    "  --id-field NAME          property holding the district id (default: auto)\n"
    "  --name-field NAME        property holding the name (default: auto)\n"
    "  --parent-field NAME      property holding the parent region id (default: auto)\n"
    "  --population-field NAME  property holding the population (default: auto)\n"
    "  --regions FILE           second-level polygons: each district's parent region\n"
    "  --crs EPSG:NNNN          CRS of the boundary file (default EPSG:4326)\n"
    "  --no-topology-check      skip the overlap and gap summary\n"
    "Complaints:\n"
    "  --complaints FILE        CSV, NDJSON, GeoJSON points or Open311 JSON (required)\n"
    "  --format FMT             csv, ndjson, geojson or open311 (default: by name/content)\n"
    "  --mapping FILE|NAME      column mapping (JSON), e.g. 'nyc311' for the shipped one\n"
    "  --topics FILE            topic catalogue (default: the shipped topics.json)\n"
    "  --utc-offset +HH:MM      offset for times written without one (default +00:00)\n"
    "Output:\n"
    "  --output FILE            placed complaints, CSV (required)\n"
    "  --rejects FILE           rejected records, CSV (default: OUTPUT with .rejects.csv;\n"
    "                           standard error when OUTPUT is '-')\n"
    "  --summary FILE           counts as JSON\n"
    "  --snap-tolerance METRES  snap points outside all districts within this distance\n"
    "                           (geodesic; default 1000, 0 turns snapping off)\n"
    "  --threads N              worker threads (default: all cores)\n"
    "  --brute-force            test every point against every district (the oracle; slow)\n"
    "  -q, --quiet              no progress or summary on standard error\n"
    "  -h, --help               this help\n";

enum {
    OPT_COMPLAINTS = OPT_FIRST_LOCAL, OPT_FORMAT, OPT_MAPPING, OPT_OUTPUT, OPT_REJECTS,
    OPT_SUMMARY, OPT_SNAP, OPT_THREADS, OPT_BRUTE
};

typedef struct job {
    cli_boundaries b;
    const char *complaints, *format, *mapping, *topics, *output, *rejects, *summary;
    long utc_offset;
    double snap_m;
    int threads, brute, quiet, have_offset;
} job;

/* Rejects: one CSV row each, as they come. */
typedef struct rejects {
    FILE *f;
    uint64_t n;
} rejects;

static int write_reject(void *user, uint64_t line, const char *id, const char *field,
                        const char *reason)
{
    rejects *r = user;
    char ln[24];
    snprintf(ln, sizeof ln, "%llu", (unsigned long long)line);
    const char *row[] = {ln, id ? id : "", field ? field : "", reason};
    pm_csv_write_row(r->f, ',', 4, row);
    r->n++;
    return 0;
}

/* Progress on a terminal: a sink in front of the intake's, printing a
 * count every million records when standard error is a terminal. */
typedef struct progress {
    const pm_record_sink *inner;
    uint64_t n;
} progress;

static int progress_record(void *user, const pm_record *rec)
{
    progress *p = user;
    if (++p->n % 1000000 == 0)
        fprintf(stderr, "\rproblemap: %llu million records read", (unsigned long long)(p->n / 1000000));
    return p->inner->record(p->inner->user, rec);
}

static int progress_reject(void *user, uint64_t line, const char *id, const char *field,
                           const char *reason)
{
    progress *p = user;
    return p->inner->reject(p->inner->user, line, id, field, reason);
}

static int read_complaints(pm_ctx *ctx, pm_intake *in, const char *path, pm_input_format fmt,
                           int quiet)
{
    if (quiet || !isatty(2))
        return pm_intake_read_path(ctx, in, path, fmt);
    progress pg = {pm_intake_sink(in), 0};
    pm_record_sink sink = {progress_record, progress_reject, &pg};
    int rc = pm_records_read_path(ctx, path, fmt, 0, &sink);
    if (pg.n >= 1000000)
        fputc('\n', stderr);
    return rc;
}

/* Shortest decimal that reads back as the same double. */
static void fmt_coord(char *buf, size_t n, double v)
{
    if (isnan(v)) {
        buf[0] = '\0';
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static void fmt_time(char *buf, int64_t t)
{
    if (t == PM_TIME_NONE)
        buf[0] = '\0';
    else
        pm_time_format_utc(t, buf);
}

static const char *const placed_header[] = {
    "id", "created_at", "lon", "lat", "topic", "source", "status", "answered_at",
    "executor", "district_id", "region_id", "placement", "snap_m"};

static int write_placed(pm_ctx *ctx, const job *j, const pm_districts *ds, const pm_topics *t,
                        const pm_complaints *cs, const pm_placed *pl, const uint8_t *dropped)
{
    pm_outfile *of;
    int rc = pm_outfile_open(ctx, j->output, &of);
    if (rc)
        return rc;
    FILE *f = pm_outfile_stream(of);
    pm_csv_write_row(f, ',', 13, placed_header);
    const double *lon = pm_complaints_lon(cs), *lat = pm_complaints_lat(cs);
    const int64_t *cr = pm_complaints_created(cs), *an = pm_complaints_answered(cs);
    const uint16_t *tp = pm_complaints_topic(cs);
    const uint32_t *src = pm_complaints_dict(cs, PM_DICT_SOURCE);
    const uint32_t *st = pm_complaints_dict(cs, PM_DICT_STATUS);
    const uint32_t *ex = pm_complaints_dict(cs, PM_DICT_EXECUTOR);
    for (size_t i = 0; i < pl->n; i++) {
        if (dropped[i])
            continue;
        char c[24], a[24], x[32], y[32], snap[32];
        fmt_time(c, cr[i]);
        fmt_time(a, an[i]);
        fmt_coord(x, sizeof x, lon[i]);
        fmt_coord(y, sizeof y, lat[i]);
        int32_t d = pl->district[i];
        if (pl->placement[i] == PM_PLACE_SNAPPED)
            snprintf(snap, sizeof snap, "%.1f", pl->snap_m[i]);
        else
            snap[0] = '\0';
        const char *row[] = {
            pm_complaints_id(cs, i), c, x, y, pm_topic_code(t, tp[i]),
            pm_complaints_dict_str(cs, PM_DICT_SOURCE, src[i]),
            pm_complaints_dict_str(cs, PM_DICT_STATUS, st[i]), a,
            pm_complaints_dict_str(cs, PM_DICT_EXECUTOR, ex[i]),
            d >= 0 ? pm_district_id(ds, (size_t)d) : "",
            d >= 0 ? pm_region_id(ds, pm_district_region(ds, (size_t)d)) : "",
            pm_placement_name((pm_placement)pl->placement[i]), snap};
        pm_csv_write_row(f, ',', 13, row);
    }
    return pm_outfile_commit(ctx, of);
}

/* After placing: complaints that cannot stand are rejected here, with the
 * same reasons format as the intake's.  A point outside every district
 * whose swapped coordinates fall inside one looks swapped; a district code
 * that names no district is unknown. */
static int post_checks(pm_ctx *ctx, const pm_locator *loc, const pm_districts *ds,
                       const pm_complaints *cs, pm_placed *pl, uint8_t *dropped, rejects *rj,
                       uint64_t *n_dropped)
{
    const double *lon = pm_complaints_lon(cs), *lat = pm_complaints_lat(cs);
    const uint64_t *line = pm_complaints_line(cs);
    const uint32_t *code = pm_complaints_dict(cs, PM_DICT_DISTRICT_CODE);
    for (size_t i = 0; i < pl->n; i++) {
        char reason[256];
        const char *field = NULL;
        if (pl->placement[i] == PM_PLACE_UNKNOWN_CODE) {
            snprintf(reason, sizeof reason, "unknown district code \"%s\"",
                     pm_complaints_dict_str(cs, PM_DICT_DISTRICT_CODE, code[i]));
            field = "district_code";
        } else if (pl->placement[i] == PM_PLACE_OUTSIDE && fabs(lon[i]) <= 90) {
            int32_t d;
            pm_placement p;
            double m;
            int rc = pm_locate_point(ctx, loc, lat[i], lon[i], &d, &p, &m);
            if (rc)
                return rc;
            if (d >= 0 && (p == PM_PLACE_INSIDE || p == PM_PLACE_BORDER)) {
                snprintf(reason, sizeof reason,
                         "lat/lon look swapped: outside every district, but swapped it lies in %s",
                         pm_district_id(ds, (size_t)d));
                field = "lat,lon";
            }
        }
        if (!field)
            continue;
        write_reject(rj, line[i], pm_complaints_id(cs, i), field, reason);
        pl->counts[pl->placement[i]]--;
        dropped[i] = 1;
        (*n_dropped)++;
    }
    return PM_OK;
}

static int write_summary(pm_ctx *ctx, const char *path, const pm_intake_counts *ic,
                         uint64_t accepted, uint64_t rejected, const pm_placed *pl)
{
    json_t *o = json_object(), *pm = json_object();
    if (!o || !pm) {
        json_decref(o);
        json_decref(pm);
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory");
    }
    uint64_t placed = 0;
    for (int p = 0; p < PM_PLACE_N; p++) {
        if (p == PM_PLACE_UNKNOWN_CODE)
            continue;
        json_object_set_new(pm, pm_placement_name((pm_placement)p),
                            json_integer((json_int_t)pl->counts[p]));
        if (p != PM_PLACE_OUTSIDE)
            placed += pl->counts[p];
    }
    json_object_set_new(o, "read", json_integer((json_int_t)ic->read));
    json_object_set_new(o, "accepted", json_integer((json_int_t)accepted));
    json_object_set_new(o, "rejected", json_integer((json_int_t)rejected));
    json_object_set_new(o, "placed", json_integer((json_int_t)placed));
    json_object_set_new(o, "outside", json_integer((json_int_t)pl->counts[PM_PLACE_OUTSIDE]));
    json_object_set_new(o, "placement", pm);
    pm_outfile *of;
    int rc = pm_outfile_open(ctx, path, &of);
    if (rc == PM_OK) {
        json_dumpf(o, pm_outfile_stream(of), JSON_INDENT(2) | JSON_SORT_KEYS);
        fputc('\n', pm_outfile_stream(of));
        rc = pm_outfile_commit(ctx, of);
    }
    json_decref(o);
    return rc;
}

static int parse_args(int argc, char **argv, job *j)
{
    static const struct option longopts[] = {
        CLI_BOUNDARY_OPTIONS,
        {"complaints", required_argument, 0, OPT_COMPLAINTS},
        {"format", required_argument, 0, OPT_FORMAT},
        {"mapping", required_argument, 0, OPT_MAPPING},
        {"topics", required_argument, 0, OPT_TOPICS},
        {"utc-offset", required_argument, 0, OPT_UTC_OFFSET},
        {"output", required_argument, 0, OPT_OUTPUT},
        {"rejects", required_argument, 0, OPT_REJECTS},
        {"summary", required_argument, 0, OPT_SUMMARY},
        {"snap-tolerance", required_argument, 0, OPT_SNAP},
        {"threads", required_argument, 0, OPT_THREADS},
        {"brute-force", no_argument, 0, OPT_BRUTE},
        {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int opt, ok;
    char *end;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        if (cli_boundary_option(&j->b, opt, optarg))
            continue;
        switch (opt) {
        case OPT_COMPLAINTS: j->complaints = optarg; break;
        case OPT_FORMAT: j->format = optarg; break;
        case OPT_MAPPING: j->mapping = optarg; break;
        case OPT_TOPICS: j->topics = optarg; break;
        case OPT_OUTPUT: j->output = optarg; break;
        case OPT_REJECTS: j->rejects = optarg; break;
        case OPT_SUMMARY: j->summary = optarg; break;
        case OPT_BRUTE: j->brute = 1; break;
        case 'q': j->quiet = 1; break;
        case OPT_UTC_OFFSET:
            j->utc_offset = cli_parse_utc_offset(optarg, &ok);
            j->have_offset = 1;
            if (!ok)
                return cli_usage_error("geocode", "--utc-offset: '%s' is not an offset like +07:00", optarg);
            break;
        case OPT_SNAP:
            j->snap_m = strtod(optarg, &end);
            if (*end || !(j->snap_m >= 0) || j->snap_m > 1e6)
                return cli_usage_error("geocode", "--snap-tolerance: '%s' is not a distance in metres (0 to 1000000)", optarg);
            break;
        case OPT_THREADS:
            j->threads = (int)strtol(optarg, &end, 10);
            if (*end || j->threads < 0 || j->threads > 256)
                return cli_usage_error("geocode", "--threads: '%s' is not a number from 0 to 256", optarg);
            break;
        case 'h': fputs(usage, stdout); return -1;
        default: return cli_usage_error("geocode", "unknown option");
        }
    }
    if (optind < argc)
        return cli_usage_error("geocode", "unexpected argument '%s'", argv[optind]);
    if (!j->b.path)
        return cli_usage_error("geocode", "--boundaries is required");
    if (!j->complaints)
        return cli_usage_error("geocode", "--complaints is required");
    if (!j->output)
        return cli_usage_error("geocode", "--output is required");
    if (j->format && pm_input_format_parse(j->format) < 0)
        return cli_usage_error("geocode", "--format: '%s' is not csv, ndjson, geojson or open311", j->format);
    return EXIT_OK;
}

static int load_mapping(pm_ctx *ctx, const char *name, pm_topics *t, pm_mapping **m)
{
    if (!name)
        return pm_mapping_default(ctx, m) == PM_OK ? EXIT_OK : cli_fail(ctx, "mapping");
    char *found = NULL;
    if (!strchr(name, '/') && !strstr(name, ".json")) {
        char rel[256];
        snprintf(rel, sizeof rel, "mappings/%s.json", name);
        found = cli_data_path(rel);
        if (!found) {
            fprintf(stderr, "problemap: no shipped mapping named '%s'\n", name);
            return EXIT_USAGE;
        }
    }
    int rc = pm_mapping_load(ctx, found ? found : name, t, m);
    pm_free(found);
    return rc == PM_OK ? EXIT_OK : cli_fail(ctx, "reading the column mapping");
}

static char *default_rejects_path(const char *output)
{
    size_t n = strlen(output);
    if (n > 4 && strcmp(output + n - 4, ".csv") == 0)
        n -= 4;
    char *p = pm_malloc(n + sizeof ".rejects.csv");
    if (p) {
        memcpy(p, output, n);
        memcpy(p + n, ".rejects.csv", sizeof ".rejects.csv");
    }
    return p;
}

int cmd_geocode(int argc, char **argv)
{
    job j = {.b.opts.check_topology = 1, .snap_m = -1};
    int ex = parse_args(argc, argv, &j);
    if (ex != EXIT_OK)
        return ex < 0 ? EXIT_OK : ex;

    pm_ctx *ctx = pm_ctx_new();
    if (!ctx) {
        fprintf(stderr, "problemap: cannot start GEOS/PROJ (out of memory?)\n");
        return EXIT_RUN;
    }
    pm_ctx_set_log(ctx, cli_warn_log, NULL);
    pm_districts *ds = NULL;
    pm_topics *t = NULL;
    pm_mapping *m = NULL;
    pm_complaints *cs = NULL;
    pm_intake *in = NULL;
    pm_locator *loc = NULL;
    pm_placed *pl = NULL;
    pm_outfile *rof = NULL;
    uint8_t *dropped = NULL;
    char *rpath = NULL;
    rejects rj = {0};

    if ((ex = cli_load_districts(ctx, &j.b, &ds)) || (ex = cli_load_topics(ctx, j.topics, &t)) ||
        (ex = load_mapping(ctx, j.mapping, t, &m)))
        goto done;
    if (j.have_offset) /* else the mapping's own offset (default +00:00) */
        pm_mapping_set_utc_offset(m, j.utc_offset);

    ex = EXIT_RUN;
    if (!j.rejects && strcmp(j.output, "-") != 0 && !(rpath = default_rejects_path(j.output)))
        goto oom;
    const char *rejects_path = j.rejects ? j.rejects : rpath;
    if (rejects_path) {
        if (pm_outfile_open(ctx, rejects_path, &rof)) {
            ex = cli_fail(ctx, "rejects");
            goto done;
        }
        rj.f = pm_outfile_stream(rof);
    } else {
        rj.f = stderr;
    }
    static const char *const rheader[] = {"line", "id", "field", "reason"};
    pm_csv_write_row(rj.f, ',', 4, rheader);

    if (!(cs = pm_complaints_new()))
        goto oom;
    if (pm_intake_new(ctx, t, m, cs, write_reject, &rj, &in)) {
        ex = cli_fail(ctx, "intake");
        goto done;
    }
    pm_input_format fmt = j.format ? (pm_input_format)pm_input_format_parse(j.format) : PM_FMT_AUTO;
    int rc = read_complaints(ctx, in, j.complaints, fmt, j.quiet);
    if (rc) {
        char what[4200];
        snprintf(what, sizeof what, "reading complaints %s", j.complaints);
        ex = cli_fail(ctx, what);
        goto done;
    }
    pm_intake_counts ic = pm_intake_counts_get(in);

    if (pm_locator_new(ctx, ds, j.snap_m, &loc)) {
        ex = cli_fail(ctx, "building the locator");
        goto done;
    }
    pm_locator_set_brute_force(loc, j.brute);
    if (pm_locate_batch(ctx, loc, cs, j.threads, &pl)) {
        ex = cli_fail(ctx, "geocoding");
        goto done;
    }
    if (!(dropped = pm_calloc(pl->n ? pl->n : 1, 1)))
        goto oom;
    uint64_t n_dropped = 0;
    if (post_checks(ctx, loc, ds, cs, pl, dropped, &rj, &n_dropped)) {
        ex = cli_fail(ctx, "geocoding");
        goto done;
    }
    uint64_t accepted = ic.accepted - n_dropped, rejected = ic.rejected + n_dropped;
    if (write_placed(ctx, &j, ds, t, cs, pl, dropped)) {
        ex = cli_fail(ctx, "writing placed complaints");
        goto done;
    }
    if (rof) {
        rc = pm_outfile_commit(ctx, rof);
        rof = NULL;
        if (rc) {
            ex = cli_fail(ctx, "writing rejects");
            goto done;
        }
    }
    if (j.summary && write_summary(ctx, j.summary, &ic, accepted, rejected, pl)) {
        ex = cli_fail(ctx, "writing the summary");
        goto done;
    }
    if (!j.quiet) {
        uint64_t placed = pl->counts[PM_PLACE_INSIDE] + pl->counts[PM_PLACE_BORDER] +
                          pl->counts[PM_PLACE_SNAPPED] + pl->counts[PM_PLACE_BY_CODE];
        fprintf(stderr,
                "problemap: %s: read %llu, accepted %llu, rejected %llu; placed %llu "
                "(inside %zu, border %zu, snapped %zu, by code %zu), outside %zu\n",
                j.complaints, (unsigned long long)ic.read, (unsigned long long)accepted,
                (unsigned long long)rejected, (unsigned long long)placed,
                pl->counts[PM_PLACE_INSIDE], pl->counts[PM_PLACE_BORDER],
                pl->counts[PM_PLACE_SNAPPED], pl->counts[PM_PLACE_BY_CODE],
                pl->counts[PM_PLACE_OUTSIDE]);
    }
    ex = EXIT_OK;
    goto done;
oom:
    fprintf(stderr, "problemap: out of memory\n");
    ex = EXIT_RUN;
done:
    pm_outfile_abort(rof);
    pm_free(rpath);
    pm_free(dropped);
    pm_placed_free(pl);
    pm_locator_free(ctx, loc);
    pm_intake_free(in);
    pm_complaints_free(cs);
    pm_mapping_free(m);
    pm_topics_free(t);
    pm_districts_free(ctx, ds);
    pm_ctx_free(ctx);
    return ex;
}
