/* geocode.c — `problemap geocode`: boundaries + complaints → placed CSV,
 * rejects CSV and a summary. */
#include "place.h"
#include "../engine/pm_alloc.h"
#include "../sql/pm_db.h"

#include <jansson.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: problemap geocode --boundaries B.geojson --complaints C.csv --output placed.csv\n"
    "                         [--rejects rejects.csv] [--snap-tolerance METRES] [options]\n"
    "\n"
    "Places every complaint in a district (point in polygon, GEOS) and writes one row per\n"
    "accepted complaint: id, created_at, lon, lat, topic, source, status, answered_at,\n"
    "executor, district_id, region_id, placement (inside, border, snapped, by_code,\n"
    "outside), snap_m.  Bad records go to the rejects file (line, id, field, reason).\n"
    "'-' means standard input or output.\n"
    "With --db (and no --boundaries/--complaints) the districts and complaints come from\n"
    "PostGIS and each complaint's placement is written back there (district_id,\n"
    "placement); --output is then optional.\n"
    "\n";
static const char usage_output[] =
    "Output:\n"
    "  --output FILE            placed complaints, CSV (required unless --db)\n"
    "  --rejects FILE           (default: OUTPUT with .rejects.csv; standard error when\n"
    "                           OUTPUT is '-')\n"
    "  --summary FILE           counts as JSON\n"
    "  -h, --help               this help\n";

/* v as r / 10^d with the fewest decimals d <= 9 when that division gives
 * back v exactly (how coordinates are written: 87.326624), into buf; 0
 * when it does not.  Then the text reads back as v (strtod and the
 * division both round the same exact quotient), and it is what "%.15g"
 * writes: at most 12 significant digits, no trailing zero (d would be
 * smaller), no exponent (1e-4 <= |v| < 1e6). */
static int fmt_decimals(char *buf, size_t n, double v)
{
    static const double p10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
    double a = fabs(v);
    if (!(a >= 1e-4 && a < 1e6))
        return 0;
    for (int d = 0; d <= 9; d++) {
        double r = nearbyint(a * p10[d]);
        if (r / p10[d] != a)
            continue;
        uint64_t q = (uint64_t)r, u = (uint64_t)p10[d];
        int w = d ? snprintf(buf, n, "%s%" PRIu64 ".%0*" PRIu64, v < 0 ? "-" : "", q / u, d, q % u)
                  : snprintf(buf, n, "%s%" PRIu64, v < 0 ? "-" : "", q);
        return w > 0 && (size_t)w < n;
    }
    return 0;
}

/* Shortest decimal that reads back as the same double. */
static void fmt_coord(char *buf, size_t n, double v)
{
    if (isnan(v)) {
        buf[0] = '\0';
        return;
    }
    if (fmt_decimals(buf, n, v))
        return;
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

static int write_placed(pm_ctx *ctx, const char *output, const place_run *r)
{
    pm_outfile *of;
    int rc = pm_outfile_open(ctx, output, &of);
    if (rc)
        return rc;
    FILE *f = pm_outfile_stream(of);
    pm_csv_write_row(f, ',', 13, placed_header);
    const pm_complaints *cs = r->cs;
    const pm_placed *pl = r->pl;
    pm_coord_column lon = pm_complaints_lon(cs), lat = pm_complaints_lat(cs);
    pm_created_column cr = pm_complaints_created(cs);
    pm_answered_column an = pm_complaints_answered(cs);
    const uint16_t *tp = pm_complaints_topic(cs);
    pm_dict_column src = pm_complaints_dict(cs, PM_DICT_SOURCE);
    pm_dict_column st = pm_complaints_dict(cs, PM_DICT_STATUS);
    pm_dict_column ex = pm_complaints_dict(cs, PM_DICT_EXECUTOR);
    for (size_t i = 0; i < pl->n; i++) {
        if (pl->placement[i] == PM_PLACE_REJECTED)
            continue;
        char c[24], a[24], x[32], y[32], snap[32];
        fmt_time(c, pm_created_at(cr, i));
        fmt_time(a, pm_answered_at(an, i));
        fmt_coord(x, sizeof x, pm_coord_at(lon, i));
        fmt_coord(y, sizeof y, pm_coord_at(lat, i));
        int32_t d = pl->district[i];
        if (pl->placement[i] == PM_PLACE_SNAPPED)
            snprintf(snap, sizeof snap, "%.1f", pm_placed_snap_m(pl, i));
        else
            snap[0] = '\0';
        const char *row[] = {
            pm_complaints_id(cs, i), c, x, y, pm_topic_code(r->t, tp[i]),
            pm_complaints_dict_str(cs, PM_DICT_SOURCE, pm_dict_column_at(src, i)),
            pm_complaints_dict_str(cs, PM_DICT_STATUS, pm_dict_column_at(st, i)), a,
            pm_complaints_dict_str(cs, PM_DICT_EXECUTOR, pm_dict_column_at(ex, i)),
            d >= 0 ? pm_district_id(r->ds, (size_t)d) : "",
            d >= 0 ? pm_region_id(r->ds, pm_district_region(r->ds, (size_t)d)) : "",
            pm_placement_name((pm_placement)pl->placement[i]), snap};
        pm_csv_write_row(f, ',', 13, row);
    }
    return pm_outfile_commit(ctx, of);
}

static int write_summary(pm_ctx *ctx, const char *path, const place_run *r)
{
    json_t *o = json_object(), *pm = json_object();
    if (!o || !pm) {
        json_decref(o);
        json_decref(pm);
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory");
    }
    const size_t *c = r->pl->counts;
    uint64_t placed = 0;
    for (int p = 0; p < PM_PLACE_N; p++) {
        if (p == PM_PLACE_UNKNOWN_CODE || p == PM_PLACE_REJECTED)
            continue;
        json_object_set_new(pm, pm_placement_name((pm_placement)p), json_integer((json_int_t)c[p]));
        if (p != PM_PLACE_OUTSIDE)
            placed += c[p];
    }
    json_object_set_new(o, "read", json_integer((json_int_t)r->ic.read));
    json_object_set_new(o, "accepted", json_integer((json_int_t)r->accepted));
    json_object_set_new(o, "rejected", json_integer((json_int_t)r->rejected));
    json_object_set_new(o, "placed", json_integer((json_int_t)placed));
    json_object_set_new(o, "outside", json_integer((json_int_t)c[PM_PLACE_OUTSIDE]));
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
    enum { OPT_OUTPUT = OPT_PLACE_LAST, OPT_SUMMARY };
    static const struct option longopts[] = {
        CLI_PLACE_OPTIONS,
        {"output", required_argument, 0, OPT_OUTPUT},
        {"summary", required_argument, 0, OPT_SUMMARY},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    place_opts o;
    place_opts_init(&o);
    const char *output = NULL, *summary = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        int k = place_option(&o, "geocode", opt, optarg);
        if (k < 0)
            return EXIT_USAGE;
        if (k)
            continue;
        switch (opt) {
        case OPT_OUTPUT: output = optarg; break;
        case OPT_SUMMARY: summary = optarg; break;
        case 'h': printf("%s%s%s", usage, place_usage, usage_output); return EXIT_OK;
        default: return cli_usage_error("geocode", "unknown option");
        }
    }
    if (optind < argc)
        return cli_usage_error("geocode", "unexpected argument '%s'", argv[optind]);
    int ex = place_check(&o, "geocode");
    if (ex)
        return ex;
    if (!output && !place_from_db(&o))
        return cli_usage_error("geocode", "--output is required");
    char *rpath = NULL;
    if (!o.rejects && output && strcmp(output, "-") != 0) {
        if (!(rpath = default_rejects_path(output)))
            return EXIT_RUN;
        o.rejects = rpath;
    }

    pm_ctx *ctx = pm_ctx_new();
    if (!ctx) {
        pm_free(rpath);
        fprintf(stderr, "problemap: cannot start GEOS/PROJ (out of memory?)\n");
        return EXIT_RUN;
    }
    pm_ctx_set_log(ctx, cli_warn_log, NULL);
    place_run r = {0};
    ex = place_run_all(ctx, &o, &r);
    if (!ex && output && write_placed(ctx, output, &r))
        ex = cli_fail(ctx, "writing placed complaints");
    uint64_t updated = 0;
    if (!ex && r.db && pm_db_write_placements(ctx, r.db, r.cs, r.pl, r.ds, &updated))
        ex = cli_fail(ctx, "writing the placements to the database");
    if (!ex && r.db && !o.quiet)
        fprintf(stderr, "problemap: database: placements written, %llu changed\n",
                (unsigned long long)updated);
    if (!ex)
        ex = place_commit_rejects(ctx, &r);
    if (!ex && summary && write_summary(ctx, summary, &r))
        ex = cli_fail(ctx, "writing the summary");
    if (!ex)
        place_print_counts(&o, &r);
    place_free(ctx, &r);
    pm_ctx_free(ctx);
    pm_free(rpath);
    return ex;
}
