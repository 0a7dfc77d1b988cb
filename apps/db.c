/* db.c — `problemap db`: PostGIS as the database of record (sql/pm_db.h).
 *   problemap db migrate [--db CONNINFO]
 *   problemap db load [--db CONNINFO] --boundaries B --complaints C [geocode options]
 * The connection is a libpq conninfo string or URI; without --db, the PG*
 * environment variables (as psql).  docs/postgis.md has the long form. */
#include "place.h"
#include "../sql/pm_db.h"

#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: problemap db migrate [--db CONNINFO]\n"
    "       problemap db load [--db CONNINFO] --boundaries B.geojson --complaints C.csv\n"
    "                         [--valid-from YYYY-MM-DD] [--batch N] [geocode options]\n"
    "\n"
    "migrate  applies the schema migrations not yet applied (running it twice changes\n"
    "         nothing) and prints the schema version.\n"
    "load     places the complaints (as 'geocode' does), then loads the topic catalogue,\n"
    "         the districts and regions (a generation valid from --valid-from, default\n"
    "         today) and the accepted complaints with their placement, in batches of\n"
    "         --batch (default 50000), one transaction each; complaints already in the\n"
    "         database (by id) are skipped, so re-loading a file changes nothing.  Rejects\n"
    "         go to the rejects table (and to --rejects FILE when given).\n"
    "\n"
    "  --db CONNINFO            e.g. \"host=/var/run/postgresql dbname=cur\" or\n"
    "                           postgresql://user@host/db (default: PG* variables)\n";

enum { O_VALID_FROM = OPT_PLACE_LAST, O_BATCH };

/* Rejects go to the database's rejects table as they come. */
typedef struct db_rejects {
    pm_ctx *ctx;
    pm_db *db;
    const char *source;
} db_rejects;

static int db_reject(void *user, uint64_t line, const char *id, const char *field, const char *reason)
{
    db_rejects *d = user;
    return pm_db_add_reject(d->ctx, d->db, d->source, line, id, field, reason);
}

static int cmd_migrate(pm_ctx *ctx, pm_db *db)
{
    int applied = 0, version = 0;
    if (pm_db_migrate(ctx, db, &applied) || pm_db_schema_version(ctx, db, &version))
        return cli_fail(ctx, "migrating");
    printf("schema version %d (%d migration%s applied now)\n", version, applied, applied == 1 ? "" : "s");
    return EXIT_OK;
}

static int cmd_load(pm_ctx *ctx, pm_db *db, place_opts *o, const char *valid_from, size_t batch)
{
    place_run r = {0};
    int applied = 0;
    if (pm_db_migrate(ctx, db, &applied)) /* the rejects table must exist */
        return cli_fail(ctx, "migrating");
    db_rejects dr = {ctx, db, o->complaints};
    o->also_reject = db_reject;
    o->also_reject_user = &dr;
    int ex = place_run_all(ctx, o, &r);
    if (!ex)
        ex = place_commit_rejects(ctx, &r);
    pm_db_load_report rep = {0};
    if (!ex && (pm_db_load_topics(ctx, db, r.t) ||
                pm_db_load_districts(ctx, db, r.ds, valid_from) ||
                pm_db_load_complaints(ctx, db, r.cs, r.pl, r.ds, r.t, batch, &rep)))
        ex = cli_fail(ctx, "loading into the database");
    if (!ex && !o->quiet)
        fprintf(stderr, "problemap: %s: read %llu, rejected %llu; loaded %llu new complaints in %llu "
                        "batches, %llu already in the database\n",
                o->complaints, (unsigned long long)r.ic.read, (unsigned long long)r.rejected,
                (unsigned long long)rep.inserted, (unsigned long long)rep.batches,
                (unsigned long long)rep.existing);
    place_free(ctx, &r);
    return ex;
}

int cmd_db(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "migrate") != 0 && strcmp(sub, "load") != 0)
        return cli_usage_error("db", "unknown subcommand '%s' (migrate or load)", sub);
    static const struct option longopts[] = {
        CLI_PLACE_OPTIONS,
        {"valid-from", required_argument, 0, O_VALID_FROM},
        {"batch", required_argument, 0, O_BATCH}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    place_opts o;
    place_opts_init(&o);
    const char *valid_from = NULL;
    size_t batch = 0;
    int opt, k;
    char *end;
    optind = 1;
    while ((opt = getopt_long(argc - 1, argv + 1, "qh", longopts, NULL)) != -1) {
        if ((k = place_option(&o, "db", opt, optarg)) < 0)
            return EXIT_USAGE;
        if (k)
            continue;
        switch (opt) {
        case O_VALID_FROM: valid_from = optarg; break;
        case O_BATCH:
            batch = strtoull(optarg, &end, 10);
            if (*end || optarg[0] == '-' || batch == 0 || batch > 10000000)
                return cli_usage_error("db", "--batch: '%s' is not a count from 1 to 10000000", optarg);
            break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: return cli_usage_error("db", "unknown option");
        }
    }
    if (optind < argc - 1)
        return cli_usage_error("db", "unexpected argument '%s'", argv[optind + 1]);
    int load = strcmp(sub, "load") == 0;
    int ex = load ? place_check_files(&o, "db load") : EXIT_OK;
    if (ex)
        return ex;
    pm_ctx *ctx = pm_ctx_new();
    if (!ctx)
        return EXIT_RUN;
    pm_ctx_set_log(ctx, cli_warn_log, NULL);
    pm_db *db = NULL;
    if (pm_db_open(ctx, o.db, &db))
        ex = cli_fail(ctx, "connecting to the database");
    else
        ex = load ? cmd_load(ctx, db, &o, valid_from, batch) : cmd_migrate(ctx, db);
    pm_db_close(db);
    pm_ctx_free(ctx);
    return ex;
}
