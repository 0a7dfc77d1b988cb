/* test_db.c — PostgreSQL + PostGIS as the database of record (sql/db.c):
 * the embedded migrations against the .sql files, connection errors,
 * migrations applied once, topics and districts (generations, hostile
 * names, areas, read-back), complaints in batches (idempotence, COPY
 * escaping of hostile strings, monthly partitions, read-back), rejects,
 * the SQL views against the engine's placement on > 100 000 points, the
 * period functions against engine/period.c, a backend killed in the
 * middle of a load, reconnection and allocation failures.
 *
 * The database tests need a throwaway cluster (tests/pg/cluster.sh, which
 * exports PGHOST & co.; tests/pg/run.sh does it all).  Without PGHOST they
 * print why and are skipped.  Every test that touches the database starts
 * from an empty schema.  Runs from the repository root; an optional
 * argument is a cmocka test filter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../engine/pm_alloc.h"
#include "../../engine/pm_civil.h"
#include "../../engine/pm_cube.h"
#include "../../engine/pm_synth.h"
#include "../../geodata/pm_boundaries.h"
#include "../../sql/migrations.h"
#include "../../sql/pm_db.h"

#include <glob.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TOPICS_JSON "data/topics.json"
#define RU_REGIONS "data/ru_regions.geojson"
#define APP_NAME "pm_test_db"

typedef struct fixture {
    pm_ctx *ctx;
    pm_db *db;   /* the library's connection (application_name APP_NAME) */
    PGconn *raw; /* the test's own, for checks */
    pm_topics *topics;
    pm_districts *regions; /* data/ru_regions.geojson, parents = federal districts */
} fixture;

/* ---- harness ------------------------------------------------------------- */

static int have_pg(void) { return getenv("PGHOST") && *getenv("PGHOST"); }

/* Skips a database test when there is no cluster. */
static fixture *need_pg(void **state)
{
    if (!*state)
        skip();
    return *state;
}

static void sql_exec(fixture *f, const char *sql)
{
    PGresult *r = PQexec(f->raw, sql);
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

/* A query's rows (caller clears). */
static PGresult *sql_rows(fixture *f, const char *sql)
{
    PGresult *r = PQexec(f->raw, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    return r;
}

/* The first value of a query, as an integer. */
static int64_t sql_int(fixture *f, const char *sql)
{
    PGresult *r = sql_rows(f, sql);
    assert_true(PQntuples(r) >= 1);
    int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

static void ok(fixture *f, int rc)
{
    if (rc != PM_OK)
        fail_msg("status %d: %s", rc, pm_ctx_errmsg(f->ctx));
}

/* An empty problemap schema at the newest version. */
static void fresh_schema(fixture *f)
{
    sql_exec(f, "DROP SCHEMA IF EXISTS problemap CASCADE");
    ok(f, pm_db_migrate(f->ctx, f->db, NULL));
    ok(f, pm_db_load_topics(f->ctx, f->db, f->topics));
}

static pm_districts *read_regions(pm_ctx *ctx)
{
    pm_districts *ds = pm_districts_new(ctx);
    pm_boundary_opts o = {.id_field = "iso", .parent_field = "federal_district"};
    assert_non_null(ds);
    if (pm_boundaries_read_geojson(ctx, RU_REGIONS, &o, ds, NULL) != PM_OK ||
        pm_districts_freeze(ctx, ds) != PM_OK)
        fail_msg("%s: %s", RU_REGIONS, pm_ctx_errmsg(ctx));
    return ds;
}

static int group_setup(void **state)
{
    *state = NULL;
    if (!have_pg()) {
        print_message("test_db: PGHOST is not set: the database tests are skipped "
                      "(tests/pg/run.sh runs them on a throwaway cluster)\n");
        return 0;
    }
    fixture *f = calloc(1, sizeof *f);
    if (!f || !(f->ctx = pm_ctx_new()))
        return -1;
    if (pm_db_open(f->ctx, "application_name=" APP_NAME, &f->db) != PM_OK) {
        fprintf(stderr, "test_db: %s\n", pm_ctx_errmsg(f->ctx));
        return -1;
    }
    f->raw = PQconnectdb("");
    if (PQstatus(f->raw) != CONNECTION_OK)
        return -1;
    PQclear(PQexec(f->raw, "SET client_min_messages = warning"));
    if (pm_topics_load(f->ctx, TOPICS_JSON, &f->topics) != PM_OK)
        return -1;
    f->regions = read_regions(f->ctx);
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    fixture *f = *state;
    if (!f)
        return 0;
    pm_districts_free(f->ctx, f->regions);
    pm_topics_free(f->topics);
    PQfinish(f->raw);
    pm_db_close(f->db);
    pm_ctx_free(f->ctx);
    free(f);
    return 0;
}

/* ---- data ---------------------------------------------------------------- */

static GEOSGeometry *wkt(pm_ctx *ctx, const char *s)
{
    GEOSWKTReader *r = GEOSWKTReader_create_r(pm_ctx_geos(ctx));
    GEOSGeometry *g = GEOSWKTReader_read_r(pm_ctx_geos(ctx), r, s);
    GEOSWKTReader_destroy_r(pm_ctx_geos(ctx), r);
    assert_non_null(g);
    return g;
}

typedef struct wkt_district {
    const char *id, *name, *parent, *wkt;
    double population;
} wkt_district;

static pm_districts *wkt_districts(pm_ctx *ctx, const wkt_district *d, size_t n)
{
    pm_districts *ds = pm_districts_new(ctx);
    assert_non_null(ds);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(pm_districts_add(ctx, ds, d[i].id, d[i].name, d[i].parent, d[i].population,
                                          wkt(ctx, d[i].wkt)),
                         PM_OK);
    assert_int_equal(pm_districts_freeze(ctx, ds), PM_OK);
    return ds;
}

/* 2025-03-01T09:15:42+07:00 → UTC seconds; "" → PM_TIME_NONE. */
static int64_t parse_iso(const char *s)
{
    int y, mo, d, h, mi, se, oh, om;
    char sign;
    if (!*s)
        return PM_TIME_NONE;
    int n = sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c%2d:%2d", &y, &mo, &d, &h, &mi, &se, &sign, &oh, &om);
    if (n != 9)
        fail_msg("bad synthetic time %s", s);
    long off = (sign == '-' ? -1 : 1) * (oh * 3600L + om * 60L);
    return pm_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off;
}

typedef struct sink {
    fixture *f;
    pm_complaints *cs;
} sink;

static int take_row(void *user, const pm_synth_row *row)
{
    sink *s = user;
    pm_complaint c = {
        .id = row->id,
        .created_at = parse_iso(row->created_at),
        .answered_at = parse_iso(row->answered_at),
        .lon = row->lon[0] ? strtod(row->lon, NULL) : NAN,
        .lat = row->lat[0] ? strtod(row->lat, NULL) : NAN,
        .topic = (uint16_t)pm_topics_find(s->f->topics, row->topic),
        .source = row->source,
        .status = row->status,
        .executor = row->executor,
        .district_code = row->district_code,
        .line = strtoull(row->id + 1, NULL, 10) + 1,
    };
    return pm_complaints_add(s->f->ctx, s->cs, &c);
}

/* n clean synthetic complaints over the Russian regions, in UTC+7, 3 %
 * without coordinates (placed by code).  Ids are c0000001, c0000002, ...
 * and row i does not depend on n. */
static pm_complaints *synth_complaints(fixture *f, size_t n, uint64_t seed, int days)
{
    size_t nt = pm_topics_count(f->topics);
    const char *codes[64];
    double w[64];
    assert_true(nt <= 64);
    for (size_t i = 0; i < nt; i++) {
        codes[i] = pm_topic_code(f->topics, i);
        w[i] = 1.0 + (double)(i % 3);
    }
    pm_synth_opts o;
    pm_synth_opts_default(&o);
    o.seed = seed;
    o.n = n;
    o.days = days;
    o.utc_offset_s = 7 * 3600;
    o.dirty_share = 0;
    o.no_coords_share = 0.03;
    sink s = {f, pm_complaints_new()};
    assert_non_null(s.cs);
    ok(f, pm_synth_run(f->ctx, &o, NULL, 0, f->regions, codes, w, nt, take_row, &s));
    assert_int_equal(pm_complaints_count(s.cs), n);
    return s.cs;
}

/* Appends complaints at vertices of the districts' outer rings (every
 * step-th vertex): points on borders, many shared by two regions. */
static void add_border_points(fixture *f, pm_complaints *cs, size_t step)
{
    GEOSContextHandle_t h = pm_ctx_geos(f->ctx);
    size_t k = 0;
    for (size_t d = 0; d < pm_districts_count(f->regions); d++) {
        const GEOSGeometry *g = pm_district_geom_borrow(f->regions, d);
        int np = GEOSGetNumGeometries_r(h, g);
        for (int p = 0; p < np; p++) {
            const GEOSGeometry *ring = GEOSGetExteriorRing_r(h, GEOSGetGeometryN_r(h, g, p));
            const GEOSCoordSequence *seq = GEOSGeom_getCoordSeq_r(h, ring);
            unsigned int nv;
            GEOSCoordSeq_getSize_r(h, seq, &nv);
            for (unsigned int v = 0; v < nv; v += (unsigned int)step) {
                char id[32];
                pm_complaint c = {.id = id,
                                  .created_at = 1740000000 + (int64_t)k * 37,
                                  .answered_at = k % 4
                                      ? 1740000000 + (int64_t)k * 37 + 3600 * (int64_t)(k % 30)
                                      : PM_TIME_NONE,
                                  .topic = (uint16_t)(k % pm_topics_count(f->topics)),
                                  .source = "vk",
                                  .line = k};
                snprintf(id, sizeof id, "b%07zu", k++);
                GEOSCoordSeq_getXY_r(h, seq, v, &c.lon, &c.lat);
                ok(f, pm_complaints_add(f->ctx, cs, &c));
            }
        }
    }
}

static pm_placed *place(fixture *f, const pm_complaints *cs)
{
    pm_locator *loc;
    pm_placed *pl;
    ok(f, pm_locator_new(f->ctx, f->regions, 0, &loc)); /* no snapping: the SQL does not snap */
    ok(f, pm_locate_batch(f->ctx, loc, cs, 0, &pl));
    pm_locator_free(f->ctx, loc);
    return pl;
}

static pm_db_load_report load(fixture *f, const pm_complaints *cs, const pm_placed *pl,
                              size_t batch)
{
    pm_db_load_report rep;
    ok(f, pm_db_load_complaints(f->ctx, f->db, cs, pl, f->regions, f->topics, batch, &rep));
    return rep;
}

static double now_s(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* ---- comparing batches --------------------------------------------------- */

typedef struct by_id {
    const char *id;
    size_t i;
} by_id;

static int cmp_by_id(const void *a, const void *b)
{
    return strcmp(((const by_id *)a)->id, ((const by_id *)b)->id);
}

static by_id *sorted_ids(const pm_complaints *cs)
{
    size_t n = pm_complaints_count(cs);
    by_id *v = calloc(n ? n : 1, sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = (by_id){pm_complaints_id(cs, i), i};
    qsort(v, n, sizeof *v, cmp_by_id);
    return v;
}

static int same_double(double a, double b) { return (isnan(a) && isnan(b)) || a == b; }

/* Every field of every complaint, matched by id. */
static void assert_same_complaints(const pm_complaints *a, const pm_complaints *b)
{
    static const pm_dict_col cols[4] = {PM_DICT_SOURCE, PM_DICT_STATUS, PM_DICT_EXECUTOR,
                                        PM_DICT_DISTRICT_CODE};
    size_t n = pm_complaints_count(a);
    assert_int_equal(pm_complaints_count(b), n);
    by_id *x = sorted_ids(a), *y = sorted_ids(b);
    for (size_t k = 0; k < n; k++) {
        size_t i = x[k].i, j = y[k].i;
        assert_string_equal(x[k].id, y[k].id);
        assert_true(pm_complaints_created_at(a, i) == pm_complaints_created_at(b, j));
        assert_true(pm_complaints_answered_at(a, i) == pm_complaints_answered_at(b, j));
        if (!same_double(pm_complaints_lon_at(a, i), pm_complaints_lon_at(b, j)) ||
            !same_double(pm_complaints_lat_at(a, i), pm_complaints_lat_at(b, j)))
            fail_msg("%s: (%.17g %.17g) came back as (%.17g %.17g)", x[k].id,
                     pm_complaints_lon_at(a, i), pm_complaints_lat_at(a, i),
                     pm_complaints_lon_at(b, j), pm_complaints_lat_at(b, j));
        assert_int_equal(pm_complaints_topic(a)[i], pm_complaints_topic(b)[j]);
        assert_int_equal(pm_complaints_line(a, i), pm_complaints_line(b, j));
        for (int c = 0; c < 4; c++)
            assert_string_equal(
                pm_complaints_dict_str(a, cols[c], pm_complaints_dict_at(a, cols[c], i)),
                pm_complaints_dict_str(b, cols[c], pm_complaints_dict_at(b, cols[c], j)));
    }
    free(x);
    free(y);
}

static GEOSGeometry *as_multi(pm_ctx *ctx, const GEOSGeometry *g)
{
    GEOSContextHandle_t h = pm_ctx_geos(ctx);
    GEOSGeometry *c = GEOSGeom_clone_r(h, g);
    if (GEOSGeomTypeId_r(h, c) == GEOS_POLYGON)
        c = GEOSGeom_createCollection_r(h, GEOS_MULTIPOLYGON, &c, 1);
    assert_non_null(c);
    return c;
}

/* Ids, names, parents, region names, populations and exact geometries. */
static void assert_same_districts(pm_ctx *ctx, const pm_districts *a, const pm_districts *b)
{
    GEOSContextHandle_t h = pm_ctx_geos(ctx);
    assert_int_equal(pm_districts_count(b), pm_districts_count(a));
    assert_int_equal(pm_regions_count(b), pm_regions_count(a));
    for (size_t i = 0; i < pm_districts_count(a); i++) {
        assert_string_equal(pm_district_id(b, i), pm_district_id(a, i));
        assert_string_equal(pm_district_name(b, i), pm_district_name(a, i));
        assert_string_equal(pm_district_parent_id(b, i), pm_district_parent_id(a, i));
        assert_true(same_double(pm_district_population(b, i), pm_district_population(a, i)));
        GEOSGeometry *ga = as_multi(ctx, pm_district_geom_borrow(a, i));
        if (GEOSEqualsExact_r(h, ga, pm_district_geom_borrow(b, i), 0) != 1)
            fail_msg("district %s: geometry changed", pm_district_id(a, i));
        GEOSGeom_destroy_r(h, ga);
    }
    for (size_t r = 0; r < pm_regions_count(a); r++) {
        assert_string_equal(pm_region_id(b, r), pm_region_id(a, r));
        assert_string_equal(pm_region_name(b, r), pm_region_name(a, r));
    }
}

/* ---- migrations and connection ------------------------------------------- */

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)n, fp), (size_t)n);
    s[n] = '\0';
    fclose(fp);
    return s;
}

static void test_embedded_migrations_equal_sql_files(void **state)
{
    (void)state;
    assert_true(pm_migrations_n >= 1);
    for (size_t i = 0; i < pm_migrations_n; i++) {
        char path[256];
        snprintf(path, sizeof path, "sql/migrations/%s", pm_migrations[i].file);
        char *text = slurp(path);
        if (!text)
            fail_msg("%s is embedded but missing", path);
        if (strcmp(text, pm_migrations[i].sql) != 0)
            fail_msg("%s differs from sql/migrations.c: run tools/embed_sql.sh", path);
        free(text);
        assert_int_equal(pm_migrations[i].version, atoi(pm_migrations[i].file));
        if (i > 0)
            assert_true(pm_migrations[i].version > pm_migrations[i - 1].version);
    }
    /* and no .sql file that is not embedded */
    glob_t g;
    assert_int_equal(glob("sql/migrations/*.sql", 0, NULL, &g), 0);
    assert_int_equal(g.gl_pathc, pm_migrations_n);
    globfree(&g);
}

static void test_open_reports_unreachable_server(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    pm_db *db = (pm_db *)1;
    assert_int_equal(pm_db_open(ctx, "host=/nonexistent/pm-socket port=5999 dbname=nowhere", &db),
                     PM_E_DB);
    assert_null(db);
    const char *m = pm_ctx_errmsg(ctx);
    if (!strstr(m, "cannot connect to database \"nowhere\" on /nonexistent/pm-socket port 5999: "))
        fail_msg("message: %s", m);
    pm_ctx_free(ctx);
}

static void test_open_reports_missing_postgis(void **state)
{
    fixture *f = need_pg(state);
    sql_exec(f, "DROP DATABASE IF EXISTS pm_no_postgis");
    sql_exec(f, "CREATE DATABASE pm_no_postgis");
    pm_db *db;
    assert_int_equal(pm_db_open(f->ctx, "dbname=pm_no_postgis", &db), PM_E_DB);
    if (!strstr(pm_ctx_errmsg(f->ctx), "PostGIS is not installed in database \"pm_no_postgis\""))
        fail_msg("message: %s", pm_ctx_errmsg(f->ctx));
    sql_exec(f, "DROP DATABASE pm_no_postgis");
}

static void test_migrate_applies_all_then_nothing(void **state)
{
    fixture *f = need_pg(state);
    int applied = -1, version = -1;
    sql_exec(f, "DROP SCHEMA IF EXISTS problemap CASCADE");
    ok(f, pm_db_schema_version(f->ctx, f->db, &version));
    assert_int_equal(version, 0);
    ok(f, pm_db_migrate(f->ctx, f->db, &applied));
    assert_int_equal(applied, (int)pm_migrations_n);
    ok(f, pm_db_schema_version(f->ctx, f->db, &version));
    assert_int_equal(version, pm_migrations[pm_migrations_n - 1].version);
    ok(f, pm_db_migrate(f->ctx, f->db, &applied));
    assert_int_equal(applied, 0);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM problemap.schema_version"),
                     (int64_t)pm_migrations_n);
    assert_int_equal(
        sql_int(f, "SELECT count(*) FROM problemap.schema_version WHERE applied_at <= now()"),
        (int64_t)pm_migrations_n);
    assert_int_equal(
        sql_int(f,
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'problemap' AND tablename IN"
                " ('regions', 'districts', 'topics', 'complaints', 'complaint_ids',"
                "  'complaints_default', 'rejects', 'cube_cells')"),
        8);
}

static void test_migrate_refuses_newer_schema(void **state)
{
    fixture *f = need_pg(state);
    fresh_schema(f);
    sql_exec(f, "INSERT INTO problemap.schema_version VALUES (9999, now())");
    assert_int_equal(pm_db_migrate(f->ctx, f->db, NULL), PM_E_DB);
    if (!strstr(pm_ctx_errmsg(f->ctx), "version 9999, newer than this build"))
        fail_msg("message: %s", pm_ctx_errmsg(f->ctx));
}

/* ---- topics and districts ------------------------------------------------ */

static void test_topics_load_as_the_catalogue(void **state)
{
    fixture *f = need_pg(state);
    fresh_schema(f);
    ok(f, pm_db_load_topics(f->ctx, f->db, f->topics)); /* twice: an upsert */
    PGresult *r = sql_rows(
        f, "SELECT code, index, name_ru, name_en, color FROM problemap.topics ORDER BY index");
    assert_int_equal(PQntuples(r), (int)pm_topics_count(f->topics));
    for (int i = 0; i < PQntuples(r); i++) {
        assert_string_equal(PQgetvalue(r, i, 0), pm_topic_code(f->topics, (size_t)i));
        assert_int_equal(atoi(PQgetvalue(r, i, 1)), i);
        assert_string_equal(PQgetvalue(r, i, 2), pm_topic_name_ru(f->topics, (size_t)i));
        assert_string_equal(PQgetvalue(r, i, 3), pm_topic_name_en(f->topics, (size_t)i));
        assert_string_equal(PQgetvalue(r, i, 4), pm_topic_color(f->topics, (size_t)i));
    }
    PQclear(r);
}

static void test_regions_load_and_read_back(void **state)
{
    fixture *f = need_pg(state);
    fresh_schema(f);
    ok(f, pm_db_load_districts(f->ctx, f->db, f->regions, "2000-01-01"));
    assert_int_equal(sql_int(f, "SELECT count(*) FROM problemap.districts"),
                     (int64_t)pm_districts_count(f->regions));
    /* the regions are the eight federal districts */
    assert_int_equal(sql_int(f, "SELECT count(*) FROM problemap.regions"), 8);
    pm_districts *back;
    ok(f, pm_db_read_districts(f->ctx, f->db, &back));
    assert_same_districts(f->ctx, f->regions, back);
    pm_districts_free(f->ctx, back);
}

static void test_district_areas_equal_geodesic_areas(void **state)
{
    fixture *f = need_pg(state);
    fresh_schema(f);
    ok(f, pm_db_load_districts(f->ctx, f->db, f->regions, "2000-01-01"));
    PGresult *r =
        sql_rows(f,
                 "SELECT id, area_km2, ST_Area(geom::geography) / 1e6 FROM problemap.districts"
                 " ORDER BY id COLLATE \"C\"");
    assert_int_equal(PQntuples(r), (int)pm_districts_count(f->regions));
    for (int i = 0; i < PQntuples(r); i++) {
        double km2, stored = strtod(PQgetvalue(r, i, 1), NULL),
                    st = strtod(PQgetvalue(r, i, 2), NULL);
        assert_string_equal(PQgetvalue(r, i, 0), pm_district_id(f->regions, (size_t)i));
        ok(f, pm_geom_area_km2(f->ctx, pm_district_geom_borrow(f->regions, (size_t)i), &km2));
        assert_true(km2 > 0);
        if (fabs(st - km2) > 1e-3 * km2 || stored != st)
            fail_msg("%s: ST_Area %.6f km², stored %.6f, PROJ %.6f", PQgetvalue(r, i, 0), st,
                     stored, km2);
    }
    PQclear(r);
}

static const wkt_district HOSTILE[] = {
    {"x'--", "'); DROP TABLE complaints; --", "R\"1\\",
     "POLYGON((100 10, 101 10, 101 11, 100 11, 100 10))", 1234.5},
    {"A\tB\nC", "name with\ttab, newline\nand \\backslash", "",
     "MULTIPOLYGON(((101 10, 102 10, 102 11, 101 11, 101 10)),"
     "((103 10, 104 10, 104 11, 103 10)))",
     NAN},
    {"Ё-район", "Ёлкинский район «Ель»", "R\"1\\",
     "POLYGON((100 11, 101 11, 101 12, 100 12, 100 11),"
     "(100.2 11.2, 100.4 11.2, 100.4 11.4, 100.2 11.2))",
     0},
};

static void test_hostile_districts_come_back_unchanged(void **state)
{
    fixture *f = need_pg(state);
    fresh_schema(f);
    pm_districts *ds = wkt_districts(f->ctx, HOSTILE, 3), *back;
    ok(f, pm_db_load_districts(f->ctx, f->db, ds, NULL));
    ok(f, pm_db_read_districts(f->ctx, f->db, &back));
    assert_same_districts(f->ctx, ds, back);
    assert_int_equal(
        sql_int(f, "SELECT count(*) FROM problemap.districts WHERE valid_from = current_date"), 3);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM problemap.complaints"), 0); /* still there */
    assert_int_equal(sql_int(f, "SELECT count(*) FROM problemap.regions WHERE id = 'R\"1\\'"), 1);
    pm_districts_free(f->ctx, back);
    pm_districts_free(f->ctx, ds);
}

static const wkt_district GEN_A[] = {
    {"D1", "Old one", "R", "POLYGON((0 0, 1 0, 1 1, 0 1, 0 0))", 100},
    {"D2", "Two", "R", "POLYGON((1 0, 2 0, 2 1, 1 1, 1 0))", 200},
};
static const wkt_district GEN_B[] = {
    {"D1", "New one", "R", "POLYGON((0 0, 1.5 0, 1.5 1, 0 1, 0 0))", 150},
    {"D2", "Two", "R", "POLYGON((1.5 0, 2 0, 2 1, 1.5 1, 1.5 0))", 150},
};

/* valid_to of district id at generation from ("" when open). */
static void assert_valid_to(fixture *f, const char *id, const char *from, const char *to)
{
    const char *p[2] = {id, from};
    PGresult *r = PQexecParams(f->raw,
                               "SELECT coalesce(valid_to::text, '') FROM problemap.districts"
                               " WHERE id = $1 AND valid_from = $2::date",
                               2, NULL, p, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQgetvalue(r, 0, 0), to);
    PQclear(r);
}

static void test_district_generations_add_rows(void **state)
{
    fixture *f = need_pg(state);
    fresh_schema(f);
    pm_districts *a = wkt_districts(f->ctx, GEN_A, 2), *b = wkt_districts(f->ctx, GEN_B, 2), *back;
    ok(f, pm_db_load_districts(f->ctx, f->db, a, "2020-01-01"));
    ok(f, pm_db_load_districts(f->ctx, f->db, b, "2024-01-01"));
    assert_int_equal(sql_int(f, "SELECT count(*) FROM problemap.districts"), 4);
    assert_valid_to(f, "D1", "2020-01-01", "2024-01-01");
    assert_valid_to(f, "D1", "2024-01-01", "");
    ok(f, pm_db_read_districts(f->ctx, f->db, &back));
    assert_same_districts(f->ctx, b, back); /* the current map */
    pm_districts_free(f->ctx, back);

    /* a generation between the two is bounded on both sides */
    ok(f, pm_db_load_districts(f->ctx, f->db, a, "2022-01-01"));
    assert_valid_to(f, "D1", "2020-01-01", "2022-01-01");
    assert_valid_to(f, "D1", "2022-01-01", "2024-01-01");
    assert_valid_to(f, "D2", "2024-01-01", "");
    /* re-loading a generation changes nothing */
    ok(f, pm_db_load_districts(f->ctx, f->db, b, "2024-01-01"));
    assert_int_equal(sql_int(f, "SELECT count(*) FROM problemap.districts"), 6);
    ok(f, pm_db_read_districts(f->ctx, f->db, &back));
    assert_same_districts(f->ctx, b, back);
    pm_districts_free(f->ctx, back);

    assert_int_equal(pm_db_load_districts(f->ctx, f->db, a, "24-01-01"), PM_E_USAGE);
    assert_int_equal(pm_db_load_districts(f->ctx, f->db, a, "2024-13-01"), PM_E_DB);
    if (!strstr(pm_ctx_errmsg(f->ctx), "2024-13-01"))
        fail_msg("message: %s", pm_ctx_errmsg(f->ctx));
    assert_int_equal(sql_int(f, "SELECT count(*) FROM problemap.districts"), 6); /* rolled back */
    pm_districts_free(f->ctx, a);
    pm_districts_free(f->ctx, b);
}

/* ---- complaints ---------------------------------------------------------- */

typedef struct hostile_complaint {
    const char *id, *source, *status, *executor, *code;
    int64_t created, answered;
    double lon, lat;
} hostile_complaint;

static const hostile_complaint HOSTILE_C[] = {
    {"x'--", "'); DROP TABLE problemap.complaints; --", "open", "Exec\\", "x'--", -1, PM_TIME_NONE,
     100.5, 10.5},
    {"tab\there", "a\tb", "\\N", "\\.", NULL, 0, 0, -180, -90},
    {"nl\nhere", "line1\nline2\r\n", "", "back\\\\slash", "A\tB\nC", 1, 86401, 180, 90},
    {"\\N", "\\N", "\\t", "\\n", "\\r", 4102444799LL, 4102444799LL, NAN, NAN},
    {"\\.", "\\.\n\\.", "«кавычки»", "Ёлка ✓", "", -2208988800LL, PM_TIME_NONE, 37.617300000000001,
     55.7558},
    {"quote\"s", "|,;'\"`$1", "$1", "%s%n", NULL, 1740000000, 1740086400, 0.30000000000000004,
     -0.1},
    {"cr\rhere", "\r", "\r\r", "\t\t", "\n", 1740000001, 1740086402, 1e-300, -5e-324},
};
#define N_HOSTILE_C (sizeof HOSTILE_C / sizeof HOSTILE_C[0])

static void add_hostile_complaints(fixture *f, pm_complaints *cs)
{
    for (size_t i = 0; i < N_HOSTILE_C; i++) {
        const hostile_complaint *h = &HOSTILE_C[i];
        pm_complaint c = {h->id,     h->created, h->answered, h->lon,  h->lat, (uint16_t)(i % 3),
                          h->source, h->status,  h->executor, h->code, 900 + i};
        ok(f, pm_complaints_add(f->ctx, cs, &c));
    }
}

static void test_complaints_load_in_batches_once(void **state)
{
    fixture *f = need_pg(state);
    fresh_schema(f);
    ok(f, pm_db_load_districts(f->ctx, f->db, f->regions, "2000-01-01"));
    pm_complaints *cs = synth_complaints(f, 20000, 7, 90);
    pm_placed *pl = place(f, cs);
    pm_db_load_report rep = load(f, cs, pl, 3000);
    assert_int_equal(rep.inserted, 20000);
    assert_int_equal(rep.existing, 0);
    assert_int_equal(rep.batches, 7);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM problemap.complaints"), 20000);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM problemap.complaint_ids"), 20000);

    rep = load(f, cs, pl, 3000); /* the same again: nothing new */
    assert_int_equal(rep.inserted, 0);
    assert_int_equal(rep.existing, 20000);
    assert_int_equal(rep.batches, 7);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM problemap.complaints"), 20000);

    /* the placement is stored as the engine gave it */
    static const pm_placement kinds[] = {PM_PLACE_INSIDE, PM_PLACE_BORDER, PM_PLACE_BY_CODE,
                                         PM_PLACE_OUTSIDE};
    for (size_t k = 0; k < 4; k++) {
        char sql[160];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM problemap.complaints WHERE placement = '%s'",
                 pm_placement_name(kinds[k]));
        assert_int_equal(sql_int(f, sql), pl->counts[kinds[k]]);
    }
    assert_true(pl->counts[PM_PLACE_OUTSIDE] > 0 && pl->counts[PM_PLACE_BY_CODE] > 0);
    assert_int_equal(sql_int(f,
                             "SELECT count(*) FROM problemap.complaints WHERE (district_id IS NULL)"
                             " <> (placement = 'outside')"),
                     0);
    pm_placed_free(pl);
    pm_complaints_free(cs);

    /* a longer run of the same generator: its first 20 000 rows are the same */
    cs = synth_complaints(f, 25000, 7, 90);
    pl = place(f, cs);
    rep = load(f, cs, pl, 0);
    assert_int_equal(rep.inserted, 5000);
    assert_int_equal(rep.existing, 20000);
    assert_int_equal(rep.batches, 1);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM problemap.complaints"), 25000);
    pm_placed_free(pl);
    pm_complaints_free(cs);
}

static void test_complaints_come_back_unchanged(void **state)
{
    fixture *f = need_pg(state);
    fresh_schema(f);
    pm_complaints *cs = synth_complaints(f, 3000, 3, 400), *back;
    add_hostile_complaints(f, cs);
    pm_db_load_report rep;
    ok(f, pm_db_load_complaints(f->ctx, f->db, cs, NULL, NULL, f->topics, 1000, &rep));
    assert_int_equal(rep.inserted, pm_complaints_count(cs));
    ok(f, pm_db_read_complaints(f->ctx, f->db, f->topics, &back));
    assert_same_complaints(cs, back);
    assert_int_equal(
        sql_int(f, "SELECT count(*) FROM problemap.complaints WHERE placement IS NULL"),
        (int64_t)pm_complaints_count(cs));
    pm_complaints_free(back);
    pm_complaints_free(cs);
}

static void test_complaints_need_known_topics_and_districts(void **state)
{
    fixture *f = need_pg(state);
    fresh_schema(f);
    pm_complaints *cs = pm_complaints_new();
    pm_complaint c = {.id = "t1",
                      .created_at = 1740000000,
                      .answered_at = PM_TIME_NONE,
                      .lon = NAN,
                      .lat = NAN,
                      .topic = (uint16_t)pm_topics_count(f->topics)};
    ok(f, pm_complaints_add(f->ctx, cs, &c));
    assert_int_equal(pm_db_load_complaints(f->ctx, f->db, cs, NULL, NULL, f->topics, 0, NULL),
                     PM_E_USAGE);
    if (!strstr(pm_ctx_errmsg(f->ctx), "complaint t1: topic"))
        fail_msg("message: %s", pm_ctx_errmsg(f->ctx));
    pm_complaints_free(cs);

    /* a row the database refuses fails its batch, named, and leaves nothing */
    cs = pm_complaints_new();
    c.topic = 0;
    c.answered_at = c.created_at - 1;
    ok(f, pm_complaints_add(f->ctx, cs, &c));
    assert_int_equal(pm_db_load_complaints(f->ctx, f->db, cs, NULL, NULL, f->topics, 0, NULL),
                     PM_E_DB);
    if (!strstr(pm_ctx_errmsg(f->ctx),
                "complaints batch 1 of 1 (complaints 1-1, from id \"t1\"): ") ||
        !strstr(pm_ctx_errmsg(f->ctx), "complaints_answered_after_created"))
        fail_msg("message: %s", pm_ctx_errmsg(f->ctx));
    assert_int_equal(sql_int(f, "SELECT count(*) FROM problemap.complaint_ids"), 0);
    pm_complaints_free(cs);
}

/* The partition holding complaint id ("" when none). */
static void assert_partition(fixture *f, const char *id, const char *table)
{
    const char *p[1] = {id};
    PGresult *r = PQexecParams(
        f->raw, "SELECT tableoid::regclass::text FROM problemap.complaints WHERE id = $1", 1, NULL,
        p, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQgetvalue(r, 0, 0), table);
    PQclear(r);
}

static void test_partitions_are_made_per_month(void **state)
{
    fixture *f = need_pg(state);
    fresh_schema(f);
    /* a complaint written around the loader lands in the default partition */
    sql_exec(f,
             "INSERT INTO problemap.complaints (id, created_at, topic)"
             " VALUES ('direct', '2030-06-10T00:00:00Z', 'roads')");
    assert_int_equal(sql_int(f, "SELECT count(*) FROM problemap.complaints_default"), 1);
    static const struct {
        const char *id;
        int64_t t;
    } rows[] = {
        {"jan", 1736899200},     /* 2025-01-15T00:00:00Z */
        {"mar-end", 1743465599}, /* 2025-03-31T23:59:59Z */
        {"apr", 1743465600},     /* 2025-04-01T00:00:00Z */
        {"jun30", 1907712000},   /* 2030-06-14T00:00:00Z */
    };
    pm_complaints *cs = pm_complaints_new();
    for (size_t i = 0; i < 4; i++) {
        pm_complaint c = {.id = rows[i].id,
                          .created_at = rows[i].t,
                          .answered_at = PM_TIME_NONE,
                          .lon = 30,
                          .lat = 60,
                          .topic = 1};
        ok(f, pm_complaints_add(f->ctx, cs, &c));
    }
    pm_db_load_report rep;
    ok(f, pm_db_load_complaints(f->ctx, f->db, cs, NULL, NULL, f->topics, 0, &rep));
    assert_int_equal(rep.inserted, 4);
    assert_partition(f, "jan", "problemap.complaints_2025_01");
    assert_partition(f, "mar-end", "problemap.complaints_2025_03");
    assert_partition(f, "apr", "problemap.complaints_2025_04");
    assert_partition(f, "jun30", "problemap.complaints_2030_06");
    assert_partition(f, "direct", "problemap.complaints_2030_06"); /* moved out of the default */
    assert_int_equal(sql_int(f, "SELECT count(*) FROM problemap.complaints_default"), 0);
    assert_int_equal(sql_int(f,
                             "SELECT count(*) FROM pg_inherits"
                             " WHERE inhparent = 'problemap.complaints'::regclass"),
                     5);
    /* the moved-into partition has the parent's indexes */
    assert_int_equal(sql_int(f,
                             "SELECT count(*) FROM pg_indexes WHERE schemaname = 'problemap'"
                             " AND tablename = 'complaints_2030_06'"),
                     2);
    pm_complaints_free(cs);
}

static void test_rejects_are_recorded(void **state)
{
    fixture *f = need_pg(state);
    fresh_schema(f);
    ok(f,
       pm_db_add_reject(f->ctx, f->db, "file\t'x'.csv", 42, "x'--", "created_at",
                        "unparsable date \"\\N\"\n"));
    ok(f, pm_db_add_reject(f->ctx, f->db, "file.csv", 43, NULL, NULL, "empty line"));
    PGresult *r = sql_rows(f,
                           "SELECT source, line, coalesce(id, '-'), coalesce(field, '-'), reason,"
                           " loaded_at <= now() FROM problemap.rejects ORDER BY line");
    assert_int_equal(PQntuples(r), 2);
    assert_string_equal(PQgetvalue(r, 0, 0), "file\t'x'.csv");
    assert_string_equal(PQgetvalue(r, 0, 1), "42");
    assert_string_equal(PQgetvalue(r, 0, 2), "x'--");
    assert_string_equal(PQgetvalue(r, 0, 3), "created_at");
    assert_string_equal(PQgetvalue(r, 0, 4), "unparsable date \"\\N\"\n");
    assert_string_equal(PQgetvalue(r, 0, 5), "t");
    assert_string_equal(PQgetvalue(r, 1, 2), "-");
    assert_string_equal(PQgetvalue(r, 1, 3), "-");
    PQclear(r);
}

/* ---- the views against the engine ---------------------------------------- */

typedef struct cell {
    int32_t d;
    uint16_t t;
    int64_t p;
    uint64_t n, answered, a24, open;
} cell;

static int cmp_cell(const void *a, const void *b)
{
    const cell *x = a, *y = b;
    if (x->d != y->d)
        return x->d < y->d ? -1 : 1;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->p < y->p ? -1 : x->p > y->p;
}

/* The engine's cells (district × topic × period) of the placed complaints. */
static cell *engine_cells(const pm_complaints *cs, const pm_placed *pl, pm_period_kind k, long off,
                          size_t *n_out)
{
    size_t n = pm_complaints_count(cs), m = 0;
    cell *v = calloc(n, sizeof *v);
    assert_non_null(v);
    pm_created_column cr = pm_complaints_created(cs);
    for (size_t i = 0; i < n; i++) {
        if (pl->district[i] < 0)
            continue;
        int64_t at = pm_complaints_answered_at(cs, i);
        int answered = at != PM_TIME_NONE;
        v[m++] = (cell){pl->district[i],
                        pm_complaints_topic(cs)[i],
                        pm_period_of(k, pm_created_at(cr, i), off),
                        1,
                        (uint64_t)answered,
                        (uint64_t)(answered && at - pm_created_at(cr, i) <= 86400),
                        (uint64_t)!answered};
    }
    qsort(v, m, sizeof *v, cmp_cell);
    size_t u = 0;
    for (size_t i = 0; i < m; i++) {
        if (u > 0 && cmp_cell(&v[u - 1], &v[i]) == 0) {
            v[u - 1].n++;
            v[u - 1].answered += v[i].answered;
            v[u - 1].a24 += v[i].a24;
            v[u - 1].open += v[i].open;
        } else {
            v[u++] = v[i];
        }
    }
    *n_out = u;
    return v;
}

static void assert_cube_counts_equal_engine(fixture *f, const pm_complaints *cs,
                                            const pm_placed *pl, pm_period_kind k, long off)
{
    size_t n;
    cell *e = engine_cells(cs, pl, k, off, &n);
    char offs[32];
    snprintf(offs, sizeof offs, "%ld", off);
    const char *p[2] = {pm_period_kind_name(k), offs};
    PGresult *r = PQexecParams(f->raw,
                               "SELECT c.district_id, c.topic, c.period, c.complaints, c.answered,"
                               " c.answered_24h, c.open FROM problemap.cube_counts($1, $2) c"
                               " JOIN problemap.topics t ON t.code = c.topic"
                               " ORDER BY c.district_id COLLATE \"C\", t.index, c.period",
                               2, NULL, p, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal((size_t)PQntuples(r), n);
    for (size_t i = 0; i < n; i++) {
        int row = (int)i;
        const cell *c = &e[i];
        if (strcmp(PQgetvalue(r, row, 0), pm_district_id(f->regions, (size_t)c->d)) != 0 ||
            strcmp(PQgetvalue(r, row, 1), pm_topic_code(f->topics, c->t)) != 0 ||
            strtoll(PQgetvalue(r, row, 2), NULL, 10) != c->p ||
            strtoull(PQgetvalue(r, row, 3), NULL, 10) != c->n ||
            strtoull(PQgetvalue(r, row, 4), NULL, 10) != c->answered ||
            strtoull(PQgetvalue(r, row, 5), NULL, 10) != c->a24 ||
            strtoull(PQgetvalue(r, row, 6), NULL, 10) != c->open)
            fail_msg("%s cell %zu: SQL %s %s %s: %s %s %s %s, engine %s %s %" PRId64 ": %" PRIu64
                     " %" PRIu64 " %" PRIu64 " %" PRIu64,
                     p[0], i, PQgetvalue(r, row, 0), PQgetvalue(r, row, 1), PQgetvalue(r, row, 2),
                     PQgetvalue(r, row, 3), PQgetvalue(r, row, 4), PQgetvalue(r, row, 5),
                     PQgetvalue(r, row, 6), pm_district_id(f->regions, (size_t)c->d),
                     pm_topic_code(f->topics, c->t), c->p, c->n, c->answered, c->a24, c->open);
    }
    PQclear(r);
    free(e);
}

static void test_sql_counts_equal_engine_placement(void **state)
{
    fixture *f = need_pg(state);
    fresh_schema(f);
    ok(f, pm_db_load_districts(f->ctx, f->db, f->regions, "2000-01-01"));
    /* 1 M points by default (the issue's oracle size); the sanitizer run
     * sets PM_DB_ORACLE_N lower.  About 1/5 fall outside every region. */
    const char *env = getenv("PM_DB_ORACLE_N");
    size_t n_synth = env && atol(env) > 0 ? (size_t)atol(env) : 1000000;
    pm_complaints *cs = synth_complaints(f, n_synth, 11, 120);
    add_border_points(f, cs, 20);
    pm_placed *pl = place(f, cs);
    size_t n = pm_complaints_count(cs), nd = pm_districts_count(f->regions),
           nt = pm_topics_count(f->topics);
    double t0 = now_s();
    pm_db_load_report rep = load(f, cs, pl, 0);
    double dt = now_s() - t0;
    print_message("test_db: loaded %zu complaints in %.2f s (%.0f rows/s)\n", n, dt, n / dt);
    assert_int_equal(rep.inserted, n);
    sql_exec(f, "ANALYZE problemap.complaints");
    assert_true(pl->counts[PM_PLACE_BORDER] >= 100); /* the border rule is exercised */

    uint64_t *eng = calloc(nd * nt, sizeof *eng), *sql = calloc(nd * nt, sizeof *sql), placed = 0;
    assert_true(eng && sql);
    for (size_t i = 0; i < n; i++)
        if (pl->district[i] >= 0) {
            eng[(size_t)pl->district[i] * nt + pm_complaints_topic(cs)[i]]++;
            placed++;
        }
    print_message("test_db: %" PRIu64 " of %zu placed, %zu on a border\n", placed, n,
                  pl->counts[PM_PLACE_BORDER]);
    assert_true(placed >= n_synth * 7 / 10);
    PGresult *r =
        sql_rows(f, "SELECT district_id, topic, complaints FROM problemap.complaint_counts");
    for (int i = 0; i < PQntuples(r); i++) {
        long d = pm_districts_find(f->regions, PQgetvalue(r, i, 0)),
             t = pm_topics_find(f->topics, PQgetvalue(r, i, 1));
        assert_true(d >= 0 && t >= 0);
        sql[(size_t)d * nt + (size_t)t] += strtoull(PQgetvalue(r, i, 2), NULL, 10);
    }
    PQclear(r);
    for (size_t k = 0; k < nd * nt; k++)
        if (eng[k] != sql[k])
            fail_msg("%s × %s: engine %" PRIu64 ", SQL %" PRIu64,
                     pm_district_id(f->regions, k / nt), pm_topic_code(f->topics, k % nt), eng[k],
                     sql[k]);
    free(eng);
    free(sql);
    assert_cube_counts_equal_engine(f, cs, pl, PM_PERIOD_WEEK, 7 * 3600);
    assert_cube_counts_equal_engine(f, cs, pl, PM_PERIOD_DAY, -(3 * 3600 + 1800));
    pm_placed_free(pl);
    pm_complaints_free(cs);
}

/* The database as the source: complaints loaded unplaced, read back, placed
 * by the engine, placements written back; they then agree with PostGIS's
 * own ST_Intersects answer (the complaint_district view) on every
 * complaint the database can place, and a second write changes nothing. */
static void test_placements_written_back_agree_with_postgis(void **state)
{
    fixture *f = need_pg(state);
    fresh_schema(f);
    ok(f, pm_db_load_districts(f->ctx, f->db, f->regions, "2000-01-01"));
    pm_complaints *cs = synth_complaints(f, 20000, 17, 60), *back;
    add_border_points(f, cs, 40);
    ok(f, pm_db_load_complaints(f->ctx, f->db, cs, NULL, NULL, f->topics, 0, NULL));
    pm_districts *ds;
    ok(f, pm_db_read_districts(f->ctx, f->db, &ds));
    ok(f, pm_db_read_complaints(f->ctx, f->db, f->topics, &back));
    pm_locator *loc;
    pm_placed *pl;
    ok(f, pm_locator_new(f->ctx, ds, 0, &loc));
    ok(f, pm_locate_batch(f->ctx, loc, back, 0, &pl));
    pm_locator_free(f->ctx, loc);
    uint64_t updated = 0, placed = 0;
    for (size_t i = 0; i < pl->n; i++)
        placed += pl->district[i] >= 0;
    ok(f, pm_db_write_placements(f->ctx, f->db, back, pl, ds, &updated));
    assert_int_equal(updated, pm_complaints_count(back)); /* every row got a placement */
    assert_int_equal(sql_int(f, "SELECT count(*) FROM problemap.complaints"
                                " WHERE district_id IS NOT NULL"),
                     (int64_t)placed);
    assert_true(pl->counts[PM_PLACE_BORDER] >= 10);
    /* PostGIS's own answer for the points it can place (no snapping there) */
    assert_int_equal(sql_int(f, "SELECT count(*) FROM problemap.complaints c"
                                " JOIN problemap.complaint_district v USING (id)"
                                " WHERE c.district_id IS DISTINCT FROM v.district_id"),
                     0);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM problemap.complaint_district"),
                     (int64_t)(pl->counts[PM_PLACE_INSIDE] + pl->counts[PM_PLACE_BORDER] +
                               pl->counts[PM_PLACE_BY_CODE]));
    ok(f, pm_db_write_placements(f->ctx, f->db, back, pl, ds, &updated));
    assert_int_equal(updated, 0);
    pm_placed_free(pl);
    pm_districts_free(f->ctx, ds);
    pm_complaints_free(back);
    pm_complaints_free(cs);
}

/* The cube written to cube_cells: per district × topic × period the same
 * counts as the engine's, the exact lists behind the medians, and a second
 * write (or another period kind) replaces or adds, never duplicates. */
static void test_cube_written_back(void **state)
{
    fixture *f = need_pg(state);
    fresh_schema(f);
    pm_complaints *cs = synth_complaints(f, 20000, 19, 90);
    pm_placed *pl = place(f, cs);
    const long off = 3 * 3600;
    pm_cube_opts co = {PM_PERIOD_WEEK, off};
    pm_cube *cube;
    ok(f, pm_cube_new(f->ctx, f->regions, pm_topics_count(f->topics), &co, &cube));
    ok(f, pm_cube_add(f->ctx, cube, cs, pl, NULL, NULL, NULL));
    uint64_t rows = 0;
    ok(f, pm_db_write_cube(f->ctx, f->db, cube, f->regions, f->topics, &rows));
    assert_int_equal(rows, pm_cube_cells(cube));
    size_t n;
    cell *e = engine_cells(cs, pl, PM_PERIOD_WEEK, off, &n);
    PGresult *r = sql_rows(f, "SELECT district_id, topic, period, sum(count), sum(answered),"
                              " sum(answered_24h), sum(open),"
                              " sum(cardinality(delays_s)), sum(cardinality(open_created_at))"
                              " FROM problemap.cube_cells c JOIN problemap.topics t ON t.code = c.topic"
                              " WHERE period_kind = 'week' AND utc_offset_s = 10800"
                              " GROUP BY district_id, topic, t.index, period"
                              " ORDER BY district_id COLLATE \"C\", t.index, period");
    assert_int_equal((size_t)PQntuples(r), n);
    for (size_t i = 0; i < n; i++) {
        int row = (int)i;
        const cell *c = &e[i];
        assert_string_equal(PQgetvalue(r, row, 0), pm_district_id(f->regions, (size_t)c->d));
        assert_string_equal(PQgetvalue(r, row, 1), pm_topic_code(f->topics, c->t));
        assert_int_equal(strtoll(PQgetvalue(r, row, 2), NULL, 10), c->p);
        assert_int_equal(strtoull(PQgetvalue(r, row, 3), NULL, 10), c->n);
        assert_int_equal(strtoull(PQgetvalue(r, row, 4), NULL, 10), c->answered);
        assert_int_equal(strtoull(PQgetvalue(r, row, 5), NULL, 10), c->a24);
        assert_int_equal(strtoull(PQgetvalue(r, row, 6), NULL, 10), c->open);
        assert_int_equal(strtoull(PQgetvalue(r, row, 7), NULL, 10), c->answered);
        assert_int_equal(strtoull(PQgetvalue(r, row, 8), NULL, 10), c->open);
    }
    PQclear(r);
    free(e);
    /* the delays are the complaints' own: their sum equals the engine's */
    int64_t delay_sum = 0;
    pm_created_column cr = pm_complaints_created(cs);
    for (size_t i = 0; i < pl->n; i++)
        if (pl->district[i] >= 0 && pm_complaints_answered_at(cs, i) != PM_TIME_NONE)
            delay_sum += pm_complaints_answered_at(cs, i) - pm_created_at(cr, i);
    assert_int_equal(sql_int(f, "SELECT sum(x) FROM problemap.cube_cells, unnest(delays_s) x"),
                     delay_sum);
    ok(f, pm_db_write_cube(f->ctx, f->db, cube, f->regions, f->topics, &rows));
    assert_int_equal(sql_int(f, "SELECT count(*) FROM problemap.cube_cells"),
                     (int64_t)pm_cube_cells(cube));
    pm_cube *daily;
    pm_cube_opts cd = {PM_PERIOD_DAY, off};
    ok(f, pm_cube_new(f->ctx, f->regions, pm_topics_count(f->topics), &cd, &daily));
    ok(f, pm_cube_add(f->ctx, daily, cs, pl, NULL, NULL, NULL));
    ok(f, pm_db_write_cube(f->ctx, f->db, daily, f->regions, f->topics, NULL));
    assert_int_equal(sql_int(f, "SELECT count(*) FROM problemap.cube_cells"),
                     (int64_t)(pm_cube_cells(cube) + pm_cube_cells(daily)));
    pm_cube_free(daily);
    pm_cube_free(cube);
    pm_placed_free(pl);
    pm_complaints_free(cs);
}

/* problemap.period_of / period_label against pm_period_of / pm_period_label
 * on times from 1897 to 2201 and offsets of both signs. */
static void test_period_functions_equal_engine(void **state)
{
    fixture *f = need_pg(state);
    fresh_schema(f);
    enum { N = 2000 };
    static const long offsets[] = {-43200, -12600, 0, 20700, 25200, 50400};
    int64_t *t = calloc(N, sizeof *t);
    char *arr = calloc(N, 24);
    assert_true(t && arr);
    uint64_t x = 88172645463325252ULL;
    size_t len = 0;
    arr[len++] = '{';
    for (int i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        /* half random, half near a local midnight */
        t[i] = i % 2
            ? -2300000000LL + (int64_t)(x % 9600000000ULL)
            : (int64_t)(x % 100000) * 86400 - 2300000000LL / 86400 * 86400 + (int64_t)(x % 3) - 1;
        len += (size_t)sprintf(arr + len, "%s%" PRId64, i ? "," : "", t[i]);
    }
    arr[len++] = '}';
    for (int k = 0; k < 3; k++)
        for (size_t o = 0; o < sizeof offsets / sizeof offsets[0]; o++) {
            char offs[32];
            snprintf(offs, sizeof offs, "%ld", offsets[o]);
            const char *p[3] = {pm_period_kind_name((pm_period_kind)k), offs, arr};
            PGresult *r = PQexecParams(
                f->raw,
                "SELECT problemap.period_of($1, to_timestamp(u.t), $2::integer),"
                " problemap.period_label($1, problemap.period_of($1, to_timestamp(u.t), $2::integer))"
                " FROM unnest($3::bigint[]) WITH ORDINALITY AS u(t, k) ORDER BY u.k",
                3, NULL, p, NULL, NULL, 0);
            assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
            assert_int_equal(PQntuples(r), N);
            for (int i = 0; i < N; i++) {
                int64_t want = pm_period_of((pm_period_kind)k, t[i], offsets[o]);
                char label[32];
                pm_period_label((pm_period_kind)k, want, label);
                if (strtoll(PQgetvalue(r, i, 0), NULL, 10) != want ||
                    strcmp(PQgetvalue(r, i, 1), label) != 0)
                    fail_msg("%s of %" PRId64 " at %+ld s: SQL %s %s, engine %" PRId64 " %s", p[0],
                             t[i], offsets[o], PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), want,
                             label);
            }
            PQclear(r);
        }
    free(t);
    free(arr);
    PGresult *r = PQexec(f->raw, "SELECT * FROM problemap.cube_counts('year', 0)");
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    assert_non_null(strstr(PQresultErrorMessage(r), "unknown period kind \"year\""));
    PQclear(r);
}

/* ---- faults -------------------------------------------------------------- */

enum { FAULT_N = 200000, FAULT_BATCH = 20000 };

typedef struct fault_result {
    int rc;
    char msg[1024];
} fault_result;

/* The child: loads cs on its own connection and reports through fd. */
static void fault_child(fixture *f, const pm_complaints *cs, int fd)
{
    fault_result res = {0};
    pm_db *db;
    res.rc = pm_db_open(f->ctx, "application_name=pm_fault_loader", &db);
    if (res.rc == PM_OK)
        res.rc = pm_db_load_complaints(f->ctx, db, cs, NULL, NULL, f->topics, FAULT_BATCH, NULL);
    snprintf(res.msg, sizeof res.msg, "%s", pm_ctx_errmsg(f->ctx));
    ssize_t w = write(fd, &res, sizeof res);
    _exit(w == (ssize_t)sizeof res ? 0 : 1);
}

/* Waits until the loader has committed a batch and is in COPY again, then
 * terminates its backend; returns 1 if it found it. */
static int kill_loader_in_copy(fixture *f)
{
    for (int tries = 0; tries < 20000; tries++) {
        int committed = sql_int(f, "SELECT count(*) FROM problemap.complaint_ids") >= FAULT_BATCH;
        PGresult *r =
            sql_rows(f,
                     "SELECT pid FROM pg_stat_activity WHERE application_name = 'pm_fault_loader'"
                     " AND state = 'active' AND query LIKE 'COPY%'");
        int found = committed && PQntuples(r) == 1;
        if (found) {
            char sql[128];
            snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%s, 10000)",
                     PQgetvalue(r, 0, 0));
            sql_exec(f, sql);
        }
        PQclear(r);
        if (found)
            return 1;
        usleep(200);
    }
    return 0;
}

static void test_killed_backend_leaves_whole_batches(void **state)
{
    fixture *f = need_pg(state);
    fresh_schema(f);
    pm_complaints *cs = synth_complaints(f, FAULT_N, 5, 60);
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fd[0]);
        fault_child(f, cs, fd[1]);
    }
    close(fd[1]);
    int killed = kill_loader_in_copy(f);
    fault_result res;
    ssize_t got = read(fd[0], &res, sizeof res);
    close(fd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(killed);
    assert_int_equal(got, (ssize_t)sizeof res);
    assert_int_equal(res.rc, PM_E_DB);
    if (!strstr(res.msg, "complaints batch ") ||
        (!strstr(res.msg, "terminating connection") &&
         !strstr(res.msg, "server closed the connection")))
        fail_msg("message: %s", res.msg);

    int64_t ids = sql_int(f, "SELECT count(*) FROM problemap.complaint_ids"),
            rows = sql_int(f, "SELECT count(*) FROM problemap.complaints");
    assert_int_equal(ids, rows);
    assert_true(rows >= FAULT_BATCH && rows < FAULT_N);
    assert_int_equal(rows % FAULT_BATCH, 0); /* no partial batch */
    assert_int_equal(
        sql_int(f,
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pm_fault_loader'"),
        0);

    pm_db_load_report rep;
    ok(f, pm_db_load_complaints(f->ctx, f->db, cs, NULL, NULL, f->topics, FAULT_BATCH, &rep));
    assert_int_equal(rep.inserted, (uint64_t)(FAULT_N - rows));
    assert_int_equal(rep.existing, (uint64_t)rows);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM problemap.complaints"), FAULT_N);
    assert_int_equal(sql_int(f, "SELECT count(DISTINCT id) FROM problemap.complaints"), FAULT_N);
    pm_complaints_free(cs);
}

static void test_lost_connection_is_reestablished(void **state)
{
    fixture *f = need_pg(state);
    int v;
    ok(f, pm_db_schema_version(f->ctx, f->db, &v));
    sql_exec(f,
             "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity"
             " WHERE application_name = '" APP_NAME "'");
    assert_int_equal(pm_db_schema_version(f->ctx, f->db, &v), PM_E_DB);
    ok(f, pm_db_schema_version(f->ctx, f->db, &v)); /* reconnected */
    assert_int_equal(v, pm_migrations[pm_migrations_n - 1].version);
}

/* Runs call with the n-th allocation failing, n = 1, 2, ... until it
 * succeeds; every failure must be PM_E_NOMEM. */
#define SWEEP(f, call)                                                                             \
    do {                                                                                           \
        for (long n_ = 1;; n_++) {                                                                 \
            pm_alloc_fail_at(n_);                                                                  \
            int rc_ = (call);                                                                      \
            pm_alloc_fail_at(0);                                                                   \
            if (rc_ == PM_OK)                                                                      \
                break;                                                                             \
            if (rc_ != PM_E_NOMEM)                                                                 \
                fail_msg("%s, allocation %ld: %d %s", #call, n_, rc_, pm_ctx_errmsg((f)->ctx));    \
            assert_true(n_ < 100000);                                                              \
        }                                                                                          \
    } while (0)

static void test_allocation_failures_end_cleanly(void **state)
{
    fixture *f = need_pg(state);
    fresh_schema(f);
    pm_districts *ds = wkt_districts(f->ctx, HOSTILE, 3), *back = NULL;
    pm_complaints *cs = synth_complaints(f, 40, 9, 30), *cback = NULL;
    add_hostile_complaints(f, cs);
    pm_db *db = NULL;
    SWEEP(f, pm_db_load_districts(f->ctx, f->db, ds, "2001-02-03"));
    SWEEP(f, pm_db_load_complaints(f->ctx, f->db, cs, NULL, NULL, f->topics, 7, NULL));
    assert_int_equal(sql_int(f, "SELECT count(*) FROM problemap.complaints"),
                     (int64_t)pm_complaints_count(cs));
    SWEEP(f, pm_db_read_districts(f->ctx, f->db, &back));
    assert_same_districts(f->ctx, ds, back);
    SWEEP(f, pm_db_read_complaints(f->ctx, f->db, f->topics, &cback));
    assert_same_complaints(cs, cback);
    SWEEP(f, pm_db_open(f->ctx, NULL, &db));
    int v;
    ok(f, pm_db_schema_version(f->ctx, db, &v)); /* and the session still works */
    pm_db_close(db);
    pm_districts_free(f->ctx, back);
    pm_districts_free(f->ctx, ds);
    pm_complaints_free(cback);
    pm_complaints_free(cs);
}

/* An optional argument is a cmocka test filter ("test_killed*"). */
int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embedded_migrations_equal_sql_files),
        cmocka_unit_test(test_open_reports_unreachable_server),
        cmocka_unit_test(test_open_reports_missing_postgis),
        cmocka_unit_test(test_migrate_applies_all_then_nothing),
        cmocka_unit_test(test_migrate_refuses_newer_schema),
        cmocka_unit_test(test_topics_load_as_the_catalogue),
        cmocka_unit_test(test_regions_load_and_read_back),
        cmocka_unit_test(test_district_areas_equal_geodesic_areas),
        cmocka_unit_test(test_hostile_districts_come_back_unchanged),
        cmocka_unit_test(test_district_generations_add_rows),
        cmocka_unit_test(test_complaints_load_in_batches_once),
        cmocka_unit_test(test_complaints_come_back_unchanged),
        cmocka_unit_test(test_complaints_need_known_topics_and_districts),
        cmocka_unit_test(test_partitions_are_made_per_month),
        cmocka_unit_test(test_rejects_are_recorded),
        cmocka_unit_test(test_sql_counts_equal_engine_placement),
        cmocka_unit_test(test_placements_written_back_agree_with_postgis),
        cmocka_unit_test(test_cube_written_back),
        cmocka_unit_test(test_period_functions_equal_engine),
        cmocka_unit_test(test_killed_backend_leaves_whole_batches),
        cmocka_unit_test(test_lost_connection_is_reestablished),
        cmocka_unit_test(test_allocation_failures_end_cleanly),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
