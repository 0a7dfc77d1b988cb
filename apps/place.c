/* place.c — the placing pipeline shared by geocode and cube (see place.h). */
#include "place.h"
#include "../engine/pm_alloc.h"
#include "../sql/pm_db.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char place_usage[] =
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
    "  --utc-offset +HH:MM      the region's offset: for times written without one\n"
    "                           (default: the mapping's, else +00:00)\n"
    "  --rejects FILE           rejected records, CSV: line, id, field, reason\n"
    "Placing:\n"
    "  --snap-tolerance METRES  snap points outside all districts within this distance\n"
    "                           (geodesic; default 1000, 0 turns snapping off)\n"
    "  --threads N              worker threads (default: all cores)\n"
    "  --block-size N           complaints placed (and for 'cube' aggregated) per block\n"
    "                           while the rest of the file is read (default 262144)\n"
    "  --brute-force            test every point against every district (the oracle; slow)\n"
    "  -q, --quiet              no progress or counts on standard error\n"
    "Database (docs/postgis.md):\n"
    "  --db CONNINFO            read the boundaries (the current generation) and the\n"
    "                           complaints from PostGIS instead of files (a libpq conninfo\n"
    "                           or URI; \"\" uses the PG* variables); give neither\n"
    "                           --boundaries nor --complaints then\n";

void place_opts_init(place_opts *o)
{
    memset(o, 0, sizeof *o);
    o->b.opts.check_topology = 1;
    o->snap_m = -1;
    o->block = PLACE_BLOCK_DEFAULT;
}

int place_option(place_opts *o, const char *cmd, int opt, const char *arg)
{
    char *end;
    int ok;
    if (cli_boundary_option(&o->b, opt, arg))
        return 1;
    switch (opt) {
    case OPT_COMPLAINTS: o->complaints = arg; return 1;
    case OPT_FORMAT:
        if (pm_input_format_parse(arg) < 0) {
            cli_usage_error(cmd, "--format: '%s' is not csv, ndjson, geojson or open311", arg);
            return -1;
        }
        o->format = arg;
        return 1;
    case OPT_MAPPING: o->mapping = arg; return 1;
    case OPT_TOPICS: o->topics = arg; return 1;
    case OPT_REJECTS: o->rejects = arg; return 1;
    case OPT_BRUTE: o->brute = 1; return 1;
    case OPT_DB: o->db = arg; return 1;
    case 'q': o->quiet = o->b.quiet = 1; return 1;
    case OPT_UTC_OFFSET:
        o->utc_offset = cli_parse_utc_offset(arg, &ok);
        o->have_offset = 1;
        if (!ok) {
            cli_usage_error(cmd, "--utc-offset: '%s' is not an offset like +07:00", arg);
            return -1;
        }
        return 1;
    case OPT_SNAP:
        o->snap_m = strtod(arg, &end);
        if (*end || !(o->snap_m >= 0) || o->snap_m > 1e6) {
            cli_usage_error(cmd, "--snap-tolerance: '%s' is not a distance in metres (0 to 1000000)", arg);
            return -1;
        }
        return 1;
    case OPT_BLOCK:
        o->block = strtoul(arg, &end, 10);
        if (*end || *arg == '-' || o->block < 1 || o->block > 1000000000) {
            cli_usage_error(cmd, "--block-size: '%s' is not a number from 1 to 1000000000", arg);
            return -1;
        }
        return 1;
    case OPT_THREADS:
        o->threads = (int)strtol(arg, &end, 10);
        if (*end || o->threads < 0 || o->threads > 256) {
            cli_usage_error(cmd, "--threads: '%s' is not a number from 0 to 256", arg);
            return -1;
        }
        return 1;
    default: return 0;
    }
}

int place_from_db(const place_opts *o)
{
    return o->db && !o->b.path && !o->complaints;
}

const char *place_source_name(const place_opts *o)
{
    return place_from_db(o) ? "database" : o->complaints;
}

int place_check(const place_opts *o, const char *cmd)
{
    if (place_from_db(o)) {
        if (o->format || o->mapping || o->b.regions_path)
            return cli_usage_error(cmd, "--format, --mapping and --regions are for files; with "
                                        "--db the complaints and districts come from the database");
        return EXIT_OK;
    }
    if (o->db)
        return cli_usage_error(cmd, "--db reads both the boundaries and the complaints from the "
                                    "database: give neither --boundaries nor --complaints with it "
                                    "(files go into the database with 'problemap db load')");
    return place_check_files(o, cmd);
}

int place_check_files(const place_opts *o, const char *cmd)
{
    if (!o->b.path)
        return cli_usage_error(cmd, "--boundaries is required");
    if (!o->complaints)
        return cli_usage_error(cmd, "--complaints is required");
    return EXIT_OK;
}

int place_check_dataset(const place_opts *o, const char *cmd)
{
    if (!o->b.path)
        return cli_usage_error(cmd, "--boundaries is required (the ones the dataset was made with)");
    if (o->complaints || o->db || o->format || o->mapping || o->rejects)
        return cli_usage_error(cmd, "--dataset holds the complaints, placed: give none of "
                                    "--complaints, --db, --format, --mapping or --rejects with it");
    return EXIT_OK;
}

int place_reject(void *user, uint64_t line, const char *id, const char *field, const char *reason)
{
    place_rejects *r = user;
    char ln[24];
    snprintf(ln, sizeof ln, "%llu", (unsigned long long)line);
    const char *row[] = {ln, id ? id : "", field ? field : "", reason};
    pm_csv_write_row(r->f, ',', 4, row);
    r->n++;
    return r->also ? r->also(r->also_user, line, id, field, reason) : 0;
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

/* After placing: complaints that cannot stand are rejected here, with the
 * same reasons format as the intake's.  A point outside every district
 * whose swapped coordinates fall inside one looks swapped; a district code
 * that names no district is unknown. */
static int post_checks(pm_ctx *ctx, place_run *r, size_t from, size_t to)
{
    const pm_complaints *cs = r->cs;
    pm_placed *pl = r->pl;
    pm_coord_column lon = pm_complaints_lon(cs), lat = pm_complaints_lat(cs);
    pm_dict_column code = pm_complaints_dict(cs, PM_DICT_DISTRICT_CODE);
    for (size_t i = from; i < to; i++) {
        char reason[256];
        const char *field = NULL;
        if (pl->placement[i] == PM_PLACE_UNKNOWN_CODE) {
            snprintf(reason, sizeof reason, "unknown district code \"%s\"",
                     pm_complaints_dict_str(cs, PM_DICT_DISTRICT_CODE,
                                            pm_dict_column_at(code, i)));
            field = "district_code";
        } else if (pl->placement[i] == PM_PLACE_OUTSIDE && fabs(pm_coord_at(lon, i)) <= 90) {
            int32_t d;
            pm_placement p;
            double m;
            int rc = pm_locate_point(ctx, r->loc, pm_coord_at(lat, i), pm_coord_at(lon, i), &d, &p,
                                     &m);
            if (rc)
                return rc;
            if (d >= 0 && (p == PM_PLACE_INSIDE || p == PM_PLACE_BORDER)) {
                snprintf(reason, sizeof reason,
                         "lat/lon look swapped: outside every district, but swapped it lies in %s",
                         pm_district_id(r->ds, (size_t)d));
                field = "lat,lon";
            }
        }
        if (!field)
            continue;
        place_reject(&r->rj, pm_complaints_line(cs, i), pm_complaints_id(cs, i), field, reason);
        pl->counts[pl->placement[i]]--;
        pl->counts[PM_PLACE_REJECTED]++;
        pl->district[i] = -1;
        pl->placement[i] = PM_PLACE_REJECTED;
        r->post_rejected++;
    }
    return PM_OK;
}

/* ---- blocks ------------------------------------------------------------- */

/* What place_run_read does with each block of complaints. */
typedef struct block_job {
    pm_ctx *ctx;
    place_run *r;
    place_block_fn fn;
    void *user;
    const char *fn_stage;
    int threads;          /* for placing; 1 while a reader thread is busy */
    const char *failed;   /* the stage that failed, for the message */
} block_job;

/* Complaints [from, to) are read and complete: they are placed, checked
 * after placing and handed to the command.  A PM_E_* code. */
static int run_block(block_job *bj, size_t from, size_t to)
{
    place_run *r = bj->r;
    bj->failed = "geocoding";
    if (pm_locate_more(bj->ctx, r->loc, r->cs, bj->threads, r->pl) != PM_OK)
        return pm_ctx_errcode(bj->ctx);
    if (r->pl->n != to)
        return PM_ERR(bj->ctx, PM_E_USAGE, "block %zu to %zu: %zu complaints placed", from, to,
                      r->pl->n);
    if (from == to) {   /* nothing left after the last block */
        bj->failed = NULL;
        return PM_OK;
    }
    if (post_checks(bj->ctx, r, from, to) != PM_OK)
        return pm_ctx_errcode(bj->ctx);
    bj->failed = bj->fn_stage;
    int rc = bj->fn ? bj->fn(bj->user, bj->ctx, r, from, to) : PM_OK;
    if (rc == PM_OK)
        bj->failed = NULL;
    return rc;
}

static int on_block(void *user, size_t from, size_t to)
{
    return run_block(user, from, to);
}

/* Progress on a terminal: a count every million records. */
static void progress(void *user, uint64_t n)
{
    (void)user;
    fprintf(stderr, "\rproblemap: %llu million records read", (unsigned long long)(n / 1000000));
}

/* Reading and checking run on a thread of their own beside the one adding
 * complaints, unless --threads 1. */
static int read_complaints(pm_ctx *ctx, pm_intake *in, const char *path, pm_input_format fmt,
                           const place_opts *o, block_job *bj)
{
    int show = !o->quiet && isatty(2);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = o->threads ? o->threads : (int)(cores > 0 ? cores : 1);
    pm_intake_set_threads(in, threads);
    /* the reader thread takes a core: blocks are placed on this one */
    bj->threads = 1;
    pm_intake_set_block(in, o->block, on_block, bj);
    if (show)
        pm_intake_set_progress(in, 1000000, progress, NULL);
    int rc = pm_intake_read_path(ctx, in, path, fmt);
    if (show && pm_intake_counts_get(in).read >= 1000000)
        fputc('\n', stderr);
    return rc;
}

/* The database as the source: the connection and the current districts. */
static int open_db(pm_ctx *ctx, const place_opts *o, place_run *r)
{
    if (pm_db_open(ctx, o->db, &r->db))
        return cli_fail(ctx, "connecting to the database");
    if (pm_db_read_districts(ctx, r->db, &r->ds))
        return cli_fail(ctx, "reading districts from the database");
    if (pm_districts_count(r->ds) == 0) {
        fprintf(stderr, "problemap: the database has no districts (load them with "
                        "'problemap db load')\n");
        return EXIT_RUN;
    }
    if (!o->quiet)
        fprintf(stderr, "problemap: database: %zu districts\n", pm_districts_count(r->ds));
    return EXIT_OK;
}

int place_run_open(pm_ctx *ctx, const place_opts *o, place_run *r)
{
    int ex;
    if (o->quiet)
        pm_ctx_set_log(ctx, cli_warn_log, (void *)&cli_quiet);
    if (place_from_db(o))
        ex = (ex = cli_load_topics(ctx, o->topics, &r->t)) ? ex : open_db(ctx, o, r);
    else
        ex = cli_load_districts(ctx, &o->b, &r->ds);
    if (ex || (!r->t && (ex = cli_load_topics(ctx, o->topics, &r->t))) ||
        (ex = load_mapping(ctx, o->mapping, r->t, &r->m)))
        return ex;
    if (o->have_offset) /* else the mapping's own offset (default +00:00) */
        pm_mapping_set_utc_offset(r->m, o->utc_offset);
    if (o->rejects) {
        if (pm_outfile_open(ctx, o->rejects, &r->rof))
            return cli_fail(ctx, "rejects");
        r->rj.f = pm_outfile_stream(r->rof);
    } else {
        r->rj.f = stderr;
    }
    r->rj.also = o->also_reject;
    r->rj.also_user = o->also_reject_user;
    static const char *const rheader[] = {"line", "id", "field", "reason"};
    pm_csv_write_row(r->rj.f, ',', 4, rheader);
    if (pm_locator_new(ctx, r->ds, o->snap_m, &r->loc))
        return cli_fail(ctx, "building the locator");
    pm_locator_set_brute_force(r->loc, o->brute);
    if (!(r->pl = pm_placed_new())) {
        fprintf(stderr, "problemap: out of memory\n");
        return EXIT_RUN;
    }
    return EXIT_OK;
}

int place_run_read(pm_ctx *ctx, const place_opts *o, place_run *r, place_block_fn fn, void *user,
                   const char *fn_stage)
{
    block_job bj = {.ctx = ctx, .r = r, .fn = fn, .user = user, .fn_stage = fn_stage};
    int rc;
    if (r->db) {
        /* checked when they were loaded: every one was accepted then */
        if (pm_db_read_complaints(ctx, r->db, r->t, &r->cs))
            return cli_fail(ctx, "reading complaints from the database");
        r->ic.read = r->ic.accepted = pm_complaints_count(r->cs);
    } else {
        pm_intake *in = NULL;
        if (!(r->cs = pm_complaints_new())) {
            fprintf(stderr, "problemap: out of memory\n");
            return EXIT_RUN;
        }
        if (pm_intake_new(ctx, r->t, r->m, r->cs, place_reject, &r->rj, &in))
            return cli_fail(ctx, "intake");
        pm_input_format fmt = o->format ? (pm_input_format)pm_input_format_parse(o->format) : PM_FMT_AUTO;
        rc = read_complaints(ctx, in, o->complaints, fmt, o, &bj);
        r->ic = pm_intake_counts_get(in);
        pm_intake_free(in);
        if (rc && bj.failed)   /* a block's placing or the command's work */
            return cli_fail(ctx, bj.failed);
        if (rc) {
            char what[4200];
            snprintf(what, sizeof what, "reading complaints %s", o->complaints);
            return cli_fail(ctx, what);
        }
    }
    /* the rest after the last block (all of it from the database), on every core */
    bj.threads = o->threads;
    if ((rc = run_block(&bj, r->pl->n, pm_complaints_count(r->cs))))
        return cli_fail(ctx, bj.failed ? bj.failed : "geocoding");
    r->accepted = r->ic.accepted - r->post_rejected;
    r->rejected = r->ic.rejected + r->post_rejected;
    return EXIT_OK;
}

int place_run_all(pm_ctx *ctx, const place_opts *o, place_run *r)
{
    int ex = place_run_open(ctx, o, r);
    return ex ? ex : place_run_read(ctx, o, r, NULL, NULL, NULL);
}

int place_commit_rejects(pm_ctx *ctx, place_run *r)
{
    if (!r->rof)
        return EXIT_OK;
    int rc = pm_outfile_commit(ctx, r->rof);
    r->rof = NULL;
    return rc ? cli_fail(ctx, "writing rejects") : EXIT_OK;
}

int place_cube_feed_block(void *user, pm_ctx *ctx, place_run *r, size_t from, size_t to)
{
    place_cube_feed *f = user;
    int rc = f->adder ? PM_OK : pm_cube_adder_new(ctx, f->cube, r->cs, from, &f->adder);
    uint64_t before = r->rj.n;
    if (rc == PM_OK)
        rc = pm_cube_adder_take(ctx, f->adder, r->pl, to, place_reject, &r->rj);
    f->rejected += r->rj.n - before;
    return rc;
}

int place_cube_feed_end(pm_ctx *ctx, place_run *r, place_cube_feed *f, int ex, uint64_t *added)
{
    *added = 0;
    if (!ex && f->adder && pm_cube_adder_finish(ctx, f->adder, added))
        ex = cli_fail(ctx, "aggregating");
    pm_cube_adder_free(f->adder);
    f->adder = NULL;
    if (ex)
        return ex;
    r->accepted -= f->rejected;   /* complaints the cube already held are rejected too */
    r->rejected += f->rejected;
    return place_commit_rejects(ctx, r);
}

void place_free(pm_ctx *ctx, place_run *r)
{
    pm_outfile_abort(r->rof);
    pm_placed_free(r->pl);
    pm_locator_free(ctx, r->loc);
    pm_complaints_free(r->cs);
    pm_mapping_free(r->m);
    pm_topics_free(r->t);
    pm_districts_free(ctx, r->ds);
    pm_db_close(r->db);
    memset(r, 0, sizeof *r);
}

void place_print_counts(const place_opts *o, const place_run *r)
{
    if (o->quiet)
        return;
    const size_t *c = r->pl->counts;
    uint64_t placed = c[PM_PLACE_INSIDE] + c[PM_PLACE_BORDER] + c[PM_PLACE_SNAPPED] + c[PM_PLACE_BY_CODE];
    fprintf(stderr,
            "problemap: %s: read %llu, accepted %llu, rejected %llu; placed %llu "
            "(inside %zu, border %zu, snapped %zu, by code %zu), outside %zu\n",
            place_source_name(o), (unsigned long long)r->ic.read, (unsigned long long)r->accepted,
            (unsigned long long)r->rejected, (unsigned long long)placed, c[PM_PLACE_INSIDE],
            c[PM_PLACE_BORDER], c[PM_PLACE_SNAPPED], c[PM_PLACE_BY_CODE], c[PM_PLACE_OUTSIDE]);
}
