/* db.c — PostgreSQL + PostGIS as the database of record (see pm_db.h).
 *
 * Connection and session (UTF-8, UTC, PostGIS's schema on the search
 * path), the embedded migrations (sql/migrations.c), loading topics,
 * districts and complaints, rejects, and reading districts and complaints
 * back.  Every statement is parameterised; complaints go through COPY
 * text rows escaped by copy_text().  libpq's notices are passed to the
 * context's log, never printed.
 *
 * Errors: PM_E_DB with what was being done and libpq's message; a failed
 * transaction is rolled back before returning.  A connection that was lost
 * is re-established at the start of the next call. */
#include "pm_db.h"
#include "migrations.h"

#include "../engine/pm_alloc.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_BATCH 50000
#define COPY_CHUNK (1 << 20)      /* bytes handed to PQputCopyData at a time */
#define FETCH_ROWS "10000"        /* rows per FETCH when reading complaints */
#define MIGRATE_LOCK "7054177, 0" /* pg_advisory_xact_lock key of pm_db_migrate */

struct pm_db {
    PGconn *conn;
    pm_ctx *ctx;    /* the caller's context during a call, for notices */
    char msg[1024]; /* libpq's message of the last failure, trimmed */
};

/* ---- libpq plumbing ------------------------------------------------------ */

/* Copies libpq's message (several lines, a trailing newline) into
 * db->msg as one line. */
static void keep_msg(pm_db *db, const char *m)
{
    if (!m || !*m)
        m = "no message from libpq";
    size_t n = 0;
    for (; *m && n + 1 < sizeof db->msg; m++)
        db->msg[n++] = (*m == '\n' || *m == '\r' || *m == '\t') ? ' ' : *m;
    while (n > 0 && db->msg[n - 1] == ' ')
        n--;
    db->msg[n] = '\0';
}

/* Checks a result against the expected status and clears it; -1 with
 * db->msg set when it failed. */
static int check(pm_db *db, PGresult *r, ExecStatusType want)
{
    int ok = r && PQresultStatus(r) == want;
    if (!ok) {
        const char *m = r ? PQresultErrorMessage(r) : "";
        keep_msg(db, *m ? m : PQerrorMessage(db->conn));
    }
    PQclear(r);
    return ok ? 0 : -1;
}

/* Statements without parameters, whose rows (if any) are not wanted. */
static int exec_cmd(pm_db *db, const char *sql)
{
    PGresult *r = PQexec(db->conn, sql);
    int rows = r && PQresultStatus(r) == PGRES_TUPLES_OK;
    return check(db, r, rows ? PGRES_TUPLES_OK : PGRES_COMMAND_OK);
}

/* A parameterised statement, text parameters (NULL: SQL NULL), text
 * results.  Returns the result (caller clears) or NULL with db->msg set. */
static PGresult *query(pm_db *db, const char *sql, int n, const char *const *params,
                       ExecStatusType want)
{
    PGresult *r = PQexecParams(db->conn, sql, n, NULL, params, NULL, NULL, 0);
    if (r && PQresultStatus(r) == want)
        return r;
    check(db, r, want);
    return NULL;
}

static int exec_params(pm_db *db, const char *sql, int n, const char *const *params)
{
    PGresult *r = query(db, sql, n, params, PGRES_COMMAND_OK);
    PQclear(r);
    return r ? 0 : -1;
}

/* Ends a failed transaction; keeps db->msg (the reason) as it is. */
static void rollback(pm_db *db)
{
    if (PQstatus(db->conn) != CONNECTION_OK)
        return;
    if (PQtransactionStatus(db->conn) != PQTRANS_IDLE)
        PQclear(PQexec(db->conn, "ROLLBACK"));
}

static const char *conn_name(const pm_db *db, char *buf, size_t size)
{
    const char *host = PQhost(db->conn), *port = PQport(db->conn), *name = PQdb(db->conn);
    snprintf(buf, size, "database \"%s\" on %s port %s", name ? name : "",
             host && *host ? host : "localhost", port && *port ? port : "5432");
    return buf;
}

static void notice(void *arg, const char *message)
{
    pm_db *db = arg;
    if (db->ctx)
        pm_ctx_log(db->ctx, PM_LOG_INFO, "PostgreSQL: %.*s", (int)strcspn(message, "\n"), message);
}

/* Session settings every call relies on; PM_E_DB when PostGIS is missing. */
static int session_setup(pm_ctx *ctx, pm_db *db)
{
    char where[512];
    if (PQsetClientEncoding(db->conn, "UTF8") != 0) {
        keep_msg(db, PQerrorMessage(db->conn));
        return PM_ERR(ctx, PM_E_DB, "%s: cannot use UTF-8: %s", conn_name(db, where, sizeof where),
                      db->msg);
    }
    PGresult *r = query(db,
                        "SELECT set_config('TimeZone', 'UTC', false),"
                        " set_config('client_min_messages', 'warning', false),"
                        " (SELECT set_config('search_path', format('%I', n.nspname), false)"
                        "  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
                        "  WHERE e.extname = 'postgis')",
                        0, NULL, PGRES_TUPLES_OK);
    if (!r)
        return PM_ERR(ctx, PM_E_DB, "%s: %s", conn_name(db, where, sizeof where), db->msg);
    int has_postgis = !PQgetisnull(r, 0, 2);
    PQclear(r);
    if (!has_postgis)
        return PM_ERR(ctx, PM_E_DB,
                      "PostGIS is not installed in %s (run CREATE EXTENSION postgis there)",
                      conn_name(db, where, sizeof where));
    return PM_OK;
}

/* Every public call starts here: remembers ctx for notices and
 * re-establishes a connection that was lost. */
static int begin_call(pm_ctx *ctx, pm_db *db)
{
    db->ctx = ctx;
    if (PQstatus(db->conn) == CONNECTION_OK)
        return PM_OK;
    PQreset(db->conn);
    if (PQstatus(db->conn) != CONNECTION_OK) {
        char where[512];
        keep_msg(db, PQerrorMessage(db->conn));
        return PM_ERR(ctx, PM_E_DB, "lost the connection to %s and cannot reconnect: %s",
                      conn_name(db, where, sizeof where), db->msg);
    }
    return session_setup(ctx, db);
}

/* ---- connection ---------------------------------------------------------- */

int pm_db_open(pm_ctx *ctx, const char *conninfo, pm_db **out)
{
    *out = NULL;
    pm_db *db = pm_calloc(1, sizeof *db);
    if (!db)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory opening the database");
    db->ctx = ctx;
    db->conn = PQconnectdb(conninfo ? conninfo : "");
    if (!db->conn) {
        pm_free(db);
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory in libpq opening the database");
    }
    PQsetNoticeProcessor(db->conn, notice, db);
    int rc;
    if (PQstatus(db->conn) != CONNECTION_OK) {
        char where[512];
        keep_msg(db, PQerrorMessage(db->conn));
        rc = PM_ERR(ctx, PM_E_DB, "cannot connect to %s: %s", conn_name(db, where, sizeof where),
                    db->msg);
    } else {
        rc = session_setup(ctx, db);
    }
    if (rc != PM_OK) {
        pm_db_close(db);
        return rc;
    }
    *out = db;
    return PM_OK;
}

void pm_db_close(pm_db *db)
{
    if (!db)
        return;
    PQfinish(db->conn);
    pm_free(db);
}

/* ---- migrations ---------------------------------------------------------- */

/* The highest version in problemap.schema_version, 0 without the table. */
static int read_version(pm_db *db, int *version)
{
    PGresult *r = query(db, "SELECT to_regclass('problemap.schema_version') IS NOT NULL", 0, NULL,
                        PGRES_TUPLES_OK);
    if (!r)
        return -1;
    int exists = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    *version = 0;
    if (!exists)
        return 0;
    r = query(db, "SELECT coalesce(max(version), 0) FROM problemap.schema_version", 0, NULL,
              PGRES_TUPLES_OK);
    if (!r)
        return -1;
    *version = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

int pm_db_schema_version(pm_ctx *ctx, pm_db *db, int *version)
{
    int rc = begin_call(ctx, db);
    if (rc)
        return rc;
    if (read_version(db, version) != 0)
        return PM_ERR(ctx, PM_E_DB, "reading the schema version: %s", db->msg);
    return PM_OK;
}

/* In the migration's transaction, under the lock: creates the schema and
 * the version table when missing, and says whether m is applied. */
static int migration_applied(pm_db *db, const pm_migration *m, int *applied)
{
    int v;
    if (read_version(db, &v) != 0)
        return -1;
    if (v == 0 &&
        exec_cmd(db,
                 "CREATE SCHEMA IF NOT EXISTS problemap;"
                 "CREATE TABLE IF NOT EXISTS problemap.schema_version ("
                 " version integer PRIMARY KEY,"
                 " applied_at timestamptz NOT NULL DEFAULT now())") != 0)
        return -1;
    char num[16];
    snprintf(num, sizeof num, "%d", m->version);
    const char *p[1] = {num};
    PGresult *r = query(db, "SELECT 1 FROM problemap.schema_version WHERE version = $1", 1, p,
                        PGRES_TUPLES_OK);
    if (!r)
        return -1;
    *applied = PQntuples(r) > 0;
    PQclear(r);
    return 0;
}

/* Applies m in one transaction unless it is there; *done = 1 if applied now. */
static int migrate_one(pm_ctx *ctx, pm_db *db, const pm_migration *m, int *done)
{
    static const char record[] =
        "INSERT INTO problemap.schema_version (version, applied_at) VALUES ($1, now())";
    char num[16];
    snprintf(num, sizeof num, "%d", m->version);
    const char *p[1] = {num};
    int applied = 0;
    *done = 0;
    if (exec_cmd(db, "BEGIN") != 0 ||
        exec_cmd(db, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ")") != 0 ||
        migration_applied(db, m, &applied) != 0)
        goto fail;
    if (!applied && (exec_cmd(db, m->sql) != 0 || exec_params(db, record, 1, p) != 0))
        goto fail;
    if (exec_cmd(db, "COMMIT") != 0)
        goto fail;
    *done = !applied;
    return PM_OK;
fail:
    rollback(db);
    return PM_ERR(ctx, PM_E_DB, "migration %s: %s", m->file, db->msg);
}

int pm_db_migrate(pm_ctx *ctx, pm_db *db, int *applied)
{
    int rc = begin_call(ctx, db), now = 0, v = 0;
    if (applied)
        *applied = 0;
    if (rc)
        return rc;
    if (read_version(db, &v) != 0)
        return PM_ERR(ctx, PM_E_DB, "reading the schema version: %s", db->msg);
    int newest = pm_migrations[pm_migrations_n - 1].version;
    if (v > newest)
        return PM_ERR(ctx, PM_E_DB, "the database's schema is at version %d, newer than "
                      "this build knows (%d): upgrade problemap", v, newest);
    for (size_t i = 0; i < pm_migrations_n; i++) {
        int done;
        if ((rc = migrate_one(ctx, db, &pm_migrations[i], &done)) != PM_OK)
            return rc;
        now += done;
        if (done)
            pm_ctx_log(ctx, PM_LOG_INFO, "applied migration %s", pm_migrations[i].file);
    }
    if (applied)
        *applied = now;
    return PM_OK;
}

/* ---- topics -------------------------------------------------------------- */

int pm_db_load_topics(pm_ctx *ctx, pm_db *db, const pm_topics *t)
{
    static const char sql[] =
        "INSERT INTO problemap.topics (code, index, name_ru, name_en, color)"
        " VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (code) DO UPDATE SET index = EXCLUDED.index, name_ru = EXCLUDED.name_ru,"
        " name_en = EXCLUDED.name_en, color = EXCLUDED.color";
    int rc = begin_call(ctx, db);
    if (rc)
        return rc;
    if (exec_cmd(db, "BEGIN") != 0)
        return PM_ERR(ctx, PM_E_DB, "loading topics: %s", db->msg);
    for (size_t i = 0; i < pm_topics_count(t); i++) {
        char idx[32];
        snprintf(idx, sizeof idx, "%zu", i);
        const char *p[5] = {pm_topic_code(t, i), idx, pm_topic_name_ru(t, i),
                            pm_topic_name_en(t, i), pm_topic_color(t, i)};
        if (exec_params(db, sql, 5, p) != 0) {
            rollback(db);
            return PM_ERR(ctx, PM_E_DB, "loading topic %zu (\"%s\"): %s", i, p[0], db->msg);
        }
    }
    if (exec_cmd(db, "COMMIT") != 0) {
        rollback(db);
        return PM_ERR(ctx, PM_E_DB, "loading topics: %s", db->msg);
    }
    return PM_OK;
}

/* ---- districts ----------------------------------------------------------- */

/* An ISO date YYYY-MM-DD (the database checks the calendar). */
static int is_iso_date(const char *s)
{
    static const char shape[] = "dddd-dd-dd";
    if (strlen(s) != sizeof shape - 1)
        return 0;
    for (size_t i = 0; shape[i]; i++)
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != '-')
            return 0;
    return 1;
}

/* The geometry of a district as hex WKB of a 2D MultiPolygon (a Polygon is
 * wrapped in one).  Caller frees with pm_free. */
static int geom_hex(pm_ctx *ctx, GEOSWKBWriter *w, const GEOSGeometry *g, const char *id,
                    char **out)
{
    GEOSContextHandle_t h = pm_ctx_geos(ctx);
    GEOSGeometry *multi = NULL;
    int type = GEOSGeomTypeId_r(h, g);
    *out = NULL;
    if (type == GEOS_POLYGON) {
        /* the collection owns the clone, even when it fails (GEOS 3.11) */
        GEOSGeometry *part = GEOSGeom_clone_r(h, g);
        multi = part ? GEOSGeom_createCollection_r(h, GEOS_MULTIPOLYGON, &part, 1) : NULL;
        if (!multi)
            return PM_ERR(ctx, PM_E_GEOM, "district \"%s\": cannot make a MultiPolygon: %s", id,
                          pm_ctx_geos_msg(ctx));
    } else if (type != GEOS_MULTIPOLYGON) {
        return PM_ERR(ctx, PM_E_GEOM, "district \"%s\": geometry is not polygonal", id);
    }
    size_t size = 0;
    unsigned char *hex = GEOSWKBWriter_writeHEX_r(h, w, multi ? multi : g, &size);
    if (multi)
        GEOSGeom_destroy_r(h, multi);
    if (!hex)
        return PM_ERR(ctx, PM_E_GEOM, "district \"%s\": cannot write WKB: %s", id,
                      pm_ctx_geos_msg(ctx));
    *out = pm_strndup((const char *)hex, size);
    GEOSFree_r(h, hex);
    return *out ? PM_OK : PM_ERR(ctx, PM_E_NOMEM, "out of memory writing district \"%s\"", id);
}

static int load_regions(pm_ctx *ctx, pm_db *db, const pm_districts *ds)
{
    static const char sql[] = "INSERT INTO problemap.regions (id, name) VALUES ($1, $2)"
                              " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name";
    for (size_t r = 0; r < pm_regions_count(ds); r++) {
        const char *p[2] = {pm_region_id(ds, r), pm_region_name(ds, r)};
        if (!p[0][0])
            continue; /* districts without a region keep region_id NULL */
        if (exec_params(db, sql, 2, p) != 0)
            return PM_ERR(ctx, PM_E_DB, "loading region \"%s\": %s", p[0], db->msg);
    }
    return PM_OK;
}

/* Upserts generation valid_from of every district, closes the generation
 * before it and bounds it by the next one if that is already there. */
static int load_district_rows(pm_ctx *ctx, pm_db *db, const pm_districts *ds,
                              const char *valid_from)
{
    static const char sql[] =
        "WITH closed AS ("
        "  UPDATE problemap.districts SET valid_to = $2::date"
        "  WHERE id = $1 AND valid_from < $2::date AND (valid_to IS NULL OR valid_to > $2::date)),"
        " g AS (SELECT ST_GeomFromWKB(decode($6, 'hex'), 4326) AS geom)"
        " INSERT INTO problemap.districts"
        "  (id, valid_from, valid_to, name, region_id, population, area_km2, geom)"
        " SELECT $1, $2::date,"
        "  (SELECT min(valid_from) FROM problemap.districts"
        "   WHERE id = $1 AND valid_from > $2::date),"
        "  $3, $4, $5::double precision, ST_Area(g.geom::geography) / 1e6, g.geom FROM g"
        " ON CONFLICT (id, valid_from) DO UPDATE SET valid_to = EXCLUDED.valid_to,"
        "  name = EXCLUDED.name, region_id = EXCLUDED.region_id,"
        "  population = EXCLUDED.population, area_km2 = EXCLUDED.area_km2, geom = EXCLUDED.geom";
    GEOSContextHandle_t h = pm_ctx_geos(ctx);
    GEOSWKBWriter *w = GEOSWKBWriter_create_r(h);
    if (!w)
        return PM_ERR(ctx, PM_E_GEOM, "cannot create a WKB writer: %s", pm_ctx_geos_msg(ctx));
    GEOSWKBWriter_setOutputDimension_r(h, w, 2);
    int rc = PM_OK;
    for (size_t i = 0; i < pm_districts_count(ds) && rc == PM_OK; i++) {
        const char *id = pm_district_id(ds, i), *parent = pm_district_parent_id(ds, i);
        char pop[40], *hex;
        double pv = pm_district_population(ds, i);
        snprintf(pop, sizeof pop, "%.17g", pv);
        if ((rc = geom_hex(ctx, w, pm_district_geom_borrow(ds, i), id, &hex)) != PM_OK)
            break;
        const char *p[6] = {id, valid_from, pm_district_name(ds, i), parent[0] ? parent : NULL,
                            isnan(pv) ? NULL : pop, hex};
        if (exec_params(db, sql, 6, p) != 0)
            rc = PM_ERR(ctx, PM_E_DB, "loading district %zu (\"%s\"): %s", i, id, db->msg);
        pm_free(hex);
    }
    GEOSWKBWriter_destroy_r(h, w);
    return rc;
}

int pm_db_load_districts(pm_ctx *ctx, pm_db *db, const pm_districts *ds, const char *valid_from)
{
    if (valid_from && !is_iso_date(valid_from))
        return PM_ERR(ctx, PM_E_USAGE, "valid_from \"%s\" is not an ISO date (YYYY-MM-DD)",
                      valid_from);
    if (pm_regions_count(ds) == 0 && pm_districts_count(ds) > 0)
        return PM_ERR(ctx, PM_E_USAGE, "the district set is not frozen");
    int rc = begin_call(ctx, db);
    if (rc)
        return rc;
    char today[16];
    if (!valid_from) {
        PGresult *r = query(db, "SELECT current_date::text", 0, NULL, PGRES_TUPLES_OK);
        if (!r)
            return PM_ERR(ctx, PM_E_DB, "loading districts: %s", db->msg);
        snprintf(today, sizeof today, "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        valid_from = today;
    }
    if (exec_cmd(db, "BEGIN") != 0)
        return PM_ERR(ctx, PM_E_DB, "loading districts: %s", db->msg);
    if ((rc = load_regions(ctx, db, ds)) != PM_OK ||
        (rc = load_district_rows(ctx, db, ds, valid_from)) != PM_OK) {
        rollback(db);
        return rc;
    }
    if (exec_cmd(db, "COMMIT") != 0) {
        rollback(db);
        return PM_ERR(ctx, PM_E_DB, "loading districts (generation %s): %s", valid_from, db->msg);
    }
    return PM_OK;
}

/* ---- complaints: COPY rows ----------------------------------------------- */

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static int buf_add(buf *b, const char *s, size_t n)
{
    if (n > b->cap - b->n) {
        size_t cap = b->cap ? b->cap : 4096;
        while (n > cap - b->n) {
            if (cap > SIZE_MAX / 2)
                return -1;
            cap *= 2;
        }
        char *p = pm_realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    return 0;
}

/* The COPY text escape of c, or NULL when c stands for itself. */
static const char *copy_escape(char c)
{
    switch (c) {
    case '\\': return "\\\\";
    case '\t': return "\\t";
    case '\n': return "\\n";
    case '\r': return "\\r";
    default: return NULL;
    }
}

/* One field by the COPY text rules, then the delimiter (tab or newline):
 * NULL or "" is \N; backslash, tab, newline and CR are escaped. */
static int copy_text(buf *b, const char *s, char delim)
{
    if (!s || !*s) {
        if (buf_add(b, "\\N", 2) != 0)
            return -1;
        return buf_add(b, &delim, 1);
    }
    for (const char *run = s;; s++) {
        const char *esc = copy_escape(*s);
        if (!esc && *s)
            continue;
        if (buf_add(b, run, (size_t)(s - run)) != 0 || (esc && buf_add(b, esc, 2) != 0))
            return -1;
        if (!*s)
            return buf_add(b, &delim, 1);
        run = s + 1;
    }
}

static int copy_i64(buf *b, int64_t v, int none, char delim)
{
    char num[32];
    snprintf(num, sizeof num, "%" PRId64, v);
    return copy_text(b, none ? NULL : num, delim);
}

static int copy_f64(buf *b, double v, char delim)
{
    char num[40];
    snprintf(num, sizeof num, "%.17g", v);
    return copy_text(b, isfinite(v) ? num : NULL, delim);
}

/* What a batch is made from. */
typedef struct batch_src {
    const pm_complaints *cs;
    const pm_placed *pl;
    const pm_districts *ds;
    const pm_topics *t;
} batch_src;

/* Complaints placed as unknown_code or rejected are not loaded (as in the
 * cube: nothing downstream counts them). */
static int loadable(const batch_src *s, size_t i)
{
    return !s->pl ||
        (s->pl->placement[i] != PM_PLACE_UNKNOWN_CODE && s->pl->placement[i] != PM_PLACE_REJECTED);
}

/* The COPY rows of complaints [from, to) into b; *rows gets how many. */
static int batch_rows(const batch_src *s, size_t from, size_t to, buf *b, size_t *rows)
{
    pm_created_column created = pm_complaints_created(s->cs);
    pm_answered_column answered = pm_complaints_answered(s->cs);
    pm_coord_column lon_col = pm_complaints_lon(s->cs), lat_col = pm_complaints_lat(s->cs);
    const uint16_t *topic = pm_complaints_topic(s->cs);
    static const pm_dict_col cols[4] = {PM_DICT_SOURCE, PM_DICT_STATUS, PM_DICT_EXECUTOR,
                                        PM_DICT_DISTRICT_CODE};
    *rows = 0;
    for (size_t i = from; i < to; i++) {
        if (!loadable(s, i))
            continue;
        double lon = pm_coord_at(lon_col, i), lat = pm_coord_at(lat_col, i);
        int no_xy = !isfinite(lon) || !isfinite(lat);
        int32_t d = s->pl ? s->pl->district[i] : -1;
        int64_t at = pm_answered_at(answered, i);
        if (copy_text(b, pm_complaints_id(s->cs, i), '\t') != 0 ||
            copy_i64(b, pm_created_at(created, i), 0, '\t') != 0 ||
            copy_i64(b, at, at == PM_TIME_NONE, '\t') != 0 ||
            copy_f64(b, no_xy ? NAN : lon, '\t') != 0 ||
            copy_f64(b, no_xy ? NAN : lat, '\t') != 0 ||
            copy_text(b, pm_topic_code(s->t, topic[i]), '\t') != 0)
            return -1;
        for (int k = 0; k < 4; k++) {
            uint32_t v = pm_complaints_dict_at(s->cs, cols[k], i);
            if (copy_text(b, pm_complaints_dict_str(s->cs, cols[k], v), '\t') != 0)
                return -1;
        }
        if (copy_text(b, d >= 0 ? pm_district_id(s->ds, (size_t)d) : NULL, '\t') != 0 ||
            copy_text(b, s->pl ? pm_placement_name(s->pl->placement[i]) : NULL, '\t') != 0 ||
            copy_i64(b, (int64_t)pm_complaints_line(s->cs, i), 0, '\n') != 0)
            return -1;
        (*rows)++;
    }
    return 0;
}

/* ---- complaints: one batch, one transaction ------------------------------ */

static const char STAGE_SQL[] =
    "CREATE TEMP TABLE pm_stage (id text COLLATE \"C\", created_s bigint, answered_s bigint,"
    " lon double precision, lat double precision, topic text, source text, status text,"
    " executor text, district_code text, district_id text, placement text, line bigint)"
    " ON COMMIT DROP";

static const char PARTITIONS_SQL[] =
    "SELECT problemap.ensure_month_partition(m) FROM"
    " (SELECT DISTINCT date_trunc('month', to_timestamp(created_s), 'UTC') AS m"
    "  FROM pg_temp.pm_stage) months";

static const char INSERT_SQL[] =
    "WITH fresh AS ("
    "  INSERT INTO problemap.complaint_ids (id, created_at)"
    "  SELECT id, to_timestamp(created_s) FROM pg_temp.pm_stage"
    "  ON CONFLICT (id) DO NOTHING RETURNING id)"
    " INSERT INTO problemap.complaints (id, created_at, answered_at, topic, source, status,"
    "  executor, district_code, district_id, placement, line, geom)"
    " SELECT s.id, to_timestamp(s.created_s), to_timestamp(s.answered_s), s.topic, s.source,"
    "  s.status, s.executor, s.district_code, s.district_id, s.placement, s.line,"
    "  CASE WHEN s.lon IS NULL OR s.lat IS NULL THEN NULL"
    "   ELSE ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326) END"
    " FROM pg_temp.pm_stage s JOIN fresh USING (id)";

/* Sends b by COPY into a staging table (copy_sql: "COPY pg_temp.x FROM
 * STDIN"); -1 with db->msg set. */
static int copy_in(pm_db *db, const char *copy_sql, const buf *b)
{
    PGresult *r = PQexec(db->conn, copy_sql);
    if (!r || PQresultStatus(r) != PGRES_COPY_IN)
        return check(db, r, PGRES_COPY_IN);
    PQclear(r);
    int ok = 1;
    for (size_t off = 0; ok && off < b->n; off += COPY_CHUNK) {
        size_t n = b->n - off < COPY_CHUNK ? b->n - off : COPY_CHUNK;
        ok = PQputCopyData(db->conn, b->p + off, (int)n) == 1;
    }
    if (!ok)
        keep_msg(db, PQerrorMessage(db->conn));
    if (PQputCopyEnd(db->conn, ok ? NULL : "client error") != 1 && ok) {
        keep_msg(db, PQerrorMessage(db->conn));
        ok = 0;
    }
    /* drain every result; the first failure is the reason */
    while ((r = PQgetResult(db->conn)) != NULL) {
        if (ok && PQresultStatus(r) != PGRES_COMMAND_OK) {
            keep_msg(db, PQresultErrorMessage(r));
            ok = 0;
        }
        PQclear(r);
    }
    return ok ? 0 : -1;
}

/* Runs one staged transaction: stage_sql (a temporary table), COPY b into
 * it with copy_sql, then the apply_sql statements, each with the same
 * n_params params (the last one's row count into *rows); -1 with db->msg
 * set, after a rollback. */
static int staged(pm_db *db, const char *stage_sql, const char *copy_sql, const buf *b,
                  const char *const *apply_sql, size_t n_apply, int n_params,
                  const char *const *params, uint64_t *rows)
{
    PGresult *r = NULL;
    if (exec_cmd(db, "BEGIN; SET LOCAL work_mem = '64MB'; SET LOCAL jit = off") != 0 ||
        exec_cmd(db, stage_sql) != 0 || copy_in(db, copy_sql, b) != 0)
        goto fail;
    for (size_t k = 0; k < n_apply; k++) {
        r = PQexecParams(db->conn, apply_sql[k], n_params, NULL, params, NULL, NULL, 0);
        if (!r || (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)) {
            check(db, r, PGRES_COMMAND_OK);
            goto fail;
        }
        if (rows && k + 1 == n_apply)
            *rows = strtoull(PQcmdTuples(r), NULL, 10);
        PQclear(r);
    }
    if (exec_cmd(db, "COMMIT") != 0)
        goto fail;
    return 0;
fail:
    rollback(db);
    return -1;
}

/* Runs one batch (rows already in b) as one transaction; *inserted gets
 * the rows that were new.  The staging table gets statistics so that the
 * planner hashes instead of sorting. */
static int run_batch(pm_db *db, const buf *b, uint64_t *inserted)
{
    const char *apply[] = {"ANALYZE pg_temp.pm_stage", PARTITIONS_SQL, INSERT_SQL};
    return staged(db, STAGE_SQL, "COPY pg_temp.pm_stage FROM STDIN", b, apply, 3, 0, NULL, inserted);
}

static int check_load_args(pm_ctx *ctx, const batch_src *s)
{
    size_t n = pm_complaints_count(s->cs), nt = pm_topics_count(s->t);
    const uint16_t *topic = pm_complaints_topic(s->cs);
    if (s->pl && (s->pl->n != n || !s->ds))
        return PM_ERR(ctx, PM_E_USAGE, "placement of %zu complaints for %zu, or no districts",
                      s->pl->n, n);
    for (size_t i = 0; i < n; i++) {
        if (topic[i] >= nt)
            return PM_ERR(ctx, PM_E_USAGE,
                          "complaint %s: topic %u is not in the catalogue (%zu topics)",
                          pm_complaints_id(s->cs, i), (unsigned)topic[i], nt);
        if (s->pl && s->pl->district[i] >= 0 &&
            (size_t)s->pl->district[i] >= pm_districts_count(s->ds))
            return PM_ERR(ctx, PM_E_USAGE, "complaint %s: district %" PRId32 " is not in the set",
                          pm_complaints_id(s->cs, i), s->pl->district[i]);
    }
    return PM_OK;
}

int pm_db_load_complaints(pm_ctx *ctx, pm_db *db, const pm_complaints *cs, const pm_placed *pl,
                          const pm_districts *ds, const pm_topics *t, size_t batch_size,
                          pm_db_load_report *rep)
{
    pm_db_load_report local = {0};
    batch_src s = {cs, pl, ds, t};
    size_t n = pm_complaints_count(cs);
    if (!rep)
        rep = &local;
    memset(rep, 0, sizeof *rep);
    if (batch_size == 0)
        batch_size = DEFAULT_BATCH;
    int rc = check_load_args(ctx, &s);
    if (rc || (rc = begin_call(ctx, db)))
        return rc;
    size_t nb = (n + batch_size - 1) / batch_size;
    buf b = {0};
    for (size_t k = 0; k < nb && rc == PM_OK; k++) {
        size_t from = k * batch_size, to = n - from < batch_size ? n : from + batch_size, rows;
        uint64_t ins = 0;
        b.n = 0;
        if (batch_rows(&s, from, to, &b, &rows) != 0) {
            rc = PM_ERR(ctx, PM_E_NOMEM, "out of memory preparing complaints batch %zu of %zu",
                        k + 1, nb);
        } else if (rows > 0 && run_batch(db, &b, &ins) != 0) {
            rc = PM_ERR(ctx, PM_E_DB,
                        "complaints batch %zu of %zu (complaints %zu-%zu, from id \"%s\"): %s",
                        k + 1, nb, from + 1, to, pm_complaints_id(cs, from), db->msg);
        } else {
            rep->inserted += ins;
            rep->existing += rows - ins;
            rep->batches++;
        }
    }
    pm_free(b.p);
    return rc;
}

int pm_db_add_reject(pm_ctx *ctx, pm_db *db, const char *source, uint64_t line, const char *id,
                     const char *field, const char *reason)
{
    int rc = begin_call(ctx, db);
    if (rc)
        return rc;
    char num[32];
    snprintf(num, sizeof num, "%" PRIu64, line);
    const char *p[5] = {source ? source : "", num, id, field, reason ? reason : ""};
    if (exec_params(db,
                    "INSERT INTO problemap.rejects (source, line, id, field, reason)"
                    " VALUES ($1, $2, $3, $4, $5)",
                    5, p) != 0)
        return PM_ERR(ctx, PM_E_DB, "recording a reject of %s line %" PRIu64 ": %s", p[0], line,
                      db->msg);
    return PM_OK;
}

/* ---- writing back: placements and the cube -------------------------------- */

static const char PLACE_STAGE_SQL[] =
    "CREATE TEMP TABLE pm_place (id text COLLATE \"C\", district_id text COLLATE \"C\","
    " placement text) ON COMMIT DROP";
static const char PLACE_UPDATE_SQL[] =
    "UPDATE problemap.complaints c SET district_id = s.district_id, placement = s.placement"
    " FROM pg_temp.pm_place s WHERE c.id = s.id"
    " AND (c.district_id IS DISTINCT FROM s.district_id"
    "  OR c.placement IS DISTINCT FROM s.placement)";

/* The placement as the table keeps it: NULL when not placed. */
static const char *placement_column(pm_placement p)
{
    return p == PM_PLACE_REJECTED || p == PM_PLACE_UNKNOWN_CODE ? NULL : pm_placement_name(p);
}

int pm_db_write_placements(pm_ctx *ctx, pm_db *db, const pm_complaints *cs, const pm_placed *pl,
                           const pm_districts *ds, uint64_t *updated)
{
    size_t n = pm_complaints_count(cs);
    uint64_t local = 0;
    if (!updated)
        updated = &local;
    *updated = 0;
    if (!pl || pl->n != n || !ds)
        return PM_ERR(ctx, PM_E_USAGE, "writing placements: placement of %zu complaints for %zu",
                      pl ? pl->n : 0, n);
    int rc = begin_call(ctx, db);
    if (rc)
        return rc;
    buf b = {0};
    for (size_t i = 0; i < n && rc == PM_OK; i++) {
        int32_t d = pl->district[i];
        const char *place = placement_column(pl->placement[i]);
        if ((d >= 0 && (size_t)d >= pm_districts_count(ds)))
            rc = PM_ERR(ctx, PM_E_USAGE, "complaint %s: district %" PRId32 " is not in the set",
                        pm_complaints_id(cs, i), d);
        else if (copy_text(&b, pm_complaints_id(cs, i), '\t') != 0 ||
                 copy_text(&b, d >= 0 && place ? pm_district_id(ds, (size_t)d) : NULL, '\t') != 0 ||
                 copy_text(&b, place, '\n') != 0)
            rc = PM_ERR(ctx, PM_E_NOMEM, "out of memory preparing the placements of %zu complaints", n);
    }
    const char *apply[] = {"ANALYZE pg_temp.pm_place", PLACE_UPDATE_SQL};
    if (rc == PM_OK && n > 0 &&
        staged(db, PLACE_STAGE_SQL, "COPY pg_temp.pm_place FROM STDIN", &b, apply, 2, 0, NULL, updated) != 0)
        rc = PM_ERR(ctx, PM_E_DB, "writing the placements of %zu complaints: %s", n, db->msg);
    pm_free(b.p);
    return rc;
}

static const char CUBE_STAGE_SQL[] =
    "CREATE TEMP TABLE pm_cells (district_id text COLLATE \"C\", topic text COLLATE \"C\","
    " period bigint, source text, status text, executor text, answered bigint,"
    " answered_24h bigint, open bigint, delays_s bigint[], open_s bigint[]) ON COMMIT DROP";

/* What a cell row needs besides the cell. */
typedef struct cube_rows {
    buf b;
    const pm_districts *ds;
    const pm_topics *t;
    uint64_t n;
} cube_rows;

/* A bigint[] literal in COPY text: {1,2,3} (no element needs quoting). */
static int copy_i64_array(buf *b, const void *v, int is64, uint64_t n, char delim)
{
    if (buf_add(b, "{", 1) != 0)
        return -1;
    for (uint64_t k = 0; k < n; k++) {
        char num[32];
        int64_t x = is64 ? ((const int64_t *)v)[k] : (int64_t)((const uint32_t *)v)[k];
        int len = snprintf(num, sizeof num, "%s%" PRId64, k ? "," : "", x);
        if (buf_add(b, num, (size_t)len) != 0)
            return -1;
    }
    return buf_add(b, "}", 1) != 0 || buf_add(b, &delim, 1) != 0 ? -1 : 0;
}

static int cube_row(void *user, const pm_cube_cell *c)
{
    cube_rows *cr = user;
    buf *b = &cr->b;
    cr->n++;
    if (copy_text(b, pm_district_id(cr->ds, c->district), '\t') != 0 ||
        copy_text(b, pm_topic_code(cr->t, c->topic), '\t') != 0 ||
        copy_i64(b, c->period, 0, '\t') != 0 || copy_text(b, c->source, '\t') != 0 ||
        copy_text(b, c->status, '\t') != 0 || copy_text(b, c->executor, '\t') != 0 ||
        copy_i64(b, (int64_t)c->answered, 0, '\t') != 0 ||
        copy_i64(b, (int64_t)c->answered_24h, 0, '\t') != 0 ||
        copy_i64(b, (int64_t)c->open, 0, '\t') != 0 ||
        copy_i64_array(b, c->delays_s, 0, c->answered, '\t') != 0 ||
        copy_i64_array(b, c->open_created, 1, c->open, '\n') != 0)
        return -1;
    return 0;
}

int pm_db_write_cube(pm_ctx *ctx, pm_db *db, const pm_cube *cube, const pm_districts *ds,
                     const pm_topics *t, uint64_t *rows)
{
    uint64_t local = 0;
    if (!rows)
        rows = &local;
    *rows = 0;
    const pm_cube_opts *o = pm_cube_options(cube);
    int rc = pm_db_load_topics(ctx, db, t);
    if (rc)
        return rc;
    cube_rows cr = {.ds = ds, .t = t};
    if (pm_cube_each_cell(cube, cube_row, &cr) != 0) {
        pm_free(cr.b.p);
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory preparing %zu cube cells", pm_cube_cells(cube));
    }
    static const char del[] =
        "DELETE FROM problemap.cube_cells WHERE period_kind = $1 AND utc_offset_s = $2::integer";
    static const char ins[] =
        "INSERT INTO problemap.cube_cells (period_kind, utc_offset_s, district_id, topic,"
        " period, source, status, executor, count, answered, answered_24h, open, delays_s,"
        " open_created_at)"
        " SELECT $1, $2::integer, district_id, topic, period, source, status, executor,"
        "  answered + open, answered, answered_24h, open, delays_s,"
        "  ARRAY(SELECT to_timestamp(x) FROM unnest(open_s) WITH ORDINALITY u(x, k) ORDER BY k)"
        " FROM pg_temp.pm_cells";
    char offset[32];
    snprintf(offset, sizeof offset, "%ld", o->utc_offset_s);
    const char *params[2] = {pm_period_kind_name(o->period), offset};
    const char *apply[] = {del, ins};
    if (staged(db, CUBE_STAGE_SQL, "COPY pg_temp.pm_cells FROM STDIN", &cr.b, apply, 2, 2, params, rows) != 0)
        rc = PM_ERR(ctx, PM_E_DB, "writing %" PRIu64 " cube cells: %s", cr.n, db->msg);
    pm_free(cr.b.p);
    return rc;
}

/* ---- reading back -------------------------------------------------------- */

/* Adds district row i of r (id, name, region_id, population, hex WKB). */
static int add_district_row(pm_ctx *ctx, GEOSWKBReader *rd, PGresult *r, int i, pm_districts *ds)
{
    GEOSContextHandle_t h = pm_ctx_geos(ctx);
    const char *id = PQgetvalue(r, i, 0), *hex = PQgetvalue(r, i, 4);
    GEOSGeometry *g = GEOSWKBReader_readHEX_r(h, rd, (const unsigned char *)hex, strlen(hex));
    if (!g)
        return PM_ERR(ctx, PM_E_GEOM, "district \"%s\" from the database: unreadable WKB: %s", id,
                      pm_ctx_geos_msg(ctx));
    double pop = PQgetisnull(r, i, 3) ? NAN : strtod(PQgetvalue(r, i, 3), NULL);
    return pm_districts_add(ctx, ds, id, PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), pop, g);
}

static int read_district_rows(pm_ctx *ctx, pm_db *db, pm_districts *ds)
{
    PGresult *r = query(db,
                        "SELECT id, name, coalesce(region_id, ''), population,"
                        " encode(ST_AsBinary(geom), 'hex')"
                        " FROM problemap.current_districts ORDER BY id COLLATE \"C\"",
                        0, NULL, PGRES_TUPLES_OK);
    if (!r)
        return PM_ERR(ctx, PM_E_DB, "reading districts: %s", db->msg);
    GEOSWKBReader *rd = GEOSWKBReader_create_r(pm_ctx_geos(ctx));
    int rc = rd ? PM_OK : PM_ERR(ctx, PM_E_GEOM, "cannot create a WKB reader");
    for (int i = 0; rc == PM_OK && i < PQntuples(r); i++)
        rc = add_district_row(ctx, rd, r, i, ds);
    if (rd)
        GEOSWKBReader_destroy_r(pm_ctx_geos(ctx), rd);
    PQclear(r);
    if (rc)
        return rc;
    r = query(db,
              "SELECT id, name FROM problemap.regions WHERE id IN"
              " (SELECT region_id FROM problemap.current_districts) ORDER BY id COLLATE \"C\"",
              0, NULL, PGRES_TUPLES_OK);
    if (!r)
        return PM_ERR(ctx, PM_E_DB, "reading regions: %s", db->msg);
    for (int i = 0; rc == PM_OK && i < PQntuples(r); i++)
        rc = pm_districts_name_region(ctx, ds, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
    PQclear(r);
    return rc;
}

int pm_db_read_districts(pm_ctx *ctx, pm_db *db, pm_districts **out)
{
    *out = NULL;
    int rc = begin_call(ctx, db);
    if (rc)
        return rc;
    pm_districts *ds = pm_districts_new(ctx);
    if (!ds)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory reading districts");
    if ((rc = read_district_rows(ctx, db, ds)) != PM_OK ||
        (rc = pm_districts_freeze(ctx, ds)) != PM_OK) {
        pm_districts_free(ctx, ds);
        return rc;
    }
    *out = ds;
    return PM_OK;
}

static const char READ_COMPLAINTS_SQL[] =
    "DECLARE pm_read NO SCROLL CURSOR FOR"
    " SELECT id, floor(extract(epoch FROM created_at))::bigint,"
    "  floor(extract(epoch FROM answered_at))::bigint, ST_X(geom), ST_Y(geom), topic,"
    "  source, status, executor, district_code, line"
    " FROM problemap.complaints ORDER BY created_at, id COLLATE \"C\"";

static const char *col(PGresult *r, int i, int j)
{
    return PQgetisnull(r, i, j) ? NULL : PQgetvalue(r, i, j);
}

/* Adds complaint row i of a FETCH result to cs. */
static int add_complaint_row(pm_ctx *ctx, const pm_topics *t, PGresult *r, int i, pm_complaints *cs)
{
    const char *id = PQgetvalue(r, i, 0), *code = PQgetvalue(r, i, 5);
    long topic = pm_topics_find(t, code);
    if (topic < 0 || strcmp(pm_topic_code(t, (size_t)topic), code) != 0)
        return PM_ERR(ctx, PM_E_INPUT_VALUE,
                      "complaint \"%s\" from the database: topic \"%s\" is not in the catalogue",
                      id, code);
    pm_complaint c = {
        .id = id,
        .created_at = strtoll(PQgetvalue(r, i, 1), NULL, 10),
        .answered_at = col(r, i, 2) ? strtoll(col(r, i, 2), NULL, 10) : PM_TIME_NONE,
        .lon = col(r, i, 3) ? strtod(col(r, i, 3), NULL) : NAN,
        .lat = col(r, i, 4) ? strtod(col(r, i, 4), NULL) : NAN,
        .topic = (uint16_t)topic,
        .source = col(r, i, 6),
        .status = col(r, i, 7),
        .executor = col(r, i, 8),
        .district_code = col(r, i, 9),
        .line = col(r, i, 10) ? strtoull(col(r, i, 10), NULL, 10) : 0,
    };
    return pm_complaints_add(ctx, cs, &c);
}

/* Reads through the cursor into cs, FETCH_ROWS at a time. */
static int fetch_complaints(pm_ctx *ctx, pm_db *db, const pm_topics *t, pm_complaints *cs)
{
    for (;;) {
        static const char fetch[] = "FETCH FORWARD " FETCH_ROWS " FROM pm_read";
        PGresult *r = query(db, fetch, 0, NULL, PGRES_TUPLES_OK);
        if (!r)
            return PM_ERR(ctx, PM_E_DB, "reading complaints: %s", db->msg);
        int n = PQntuples(r), rc = PM_OK;
        for (int i = 0; rc == PM_OK && i < n; i++)
            rc = add_complaint_row(ctx, t, r, i, cs);
        PQclear(r);
        if (rc || n == 0)
            return rc;
    }
}

int pm_db_read_complaints(pm_ctx *ctx, pm_db *db, const pm_topics *t, pm_complaints **out)
{
    *out = NULL;
    int rc = begin_call(ctx, db);
    if (rc)
        return rc;
    pm_complaints *cs = pm_complaints_new();
    if (!cs)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory reading complaints");
    if (exec_cmd(db, "BEGIN READ ONLY") != 0 || exec_cmd(db, READ_COMPLAINTS_SQL) != 0)
        rc = PM_ERR(ctx, PM_E_DB, "reading complaints: %s", db->msg);
    else
        rc = fetch_complaints(ctx, db, t, cs);
    if (rc == PM_OK && exec_cmd(db, "COMMIT") != 0)
        rc = PM_ERR(ctx, PM_E_DB, "reading complaints: %s", db->msg);
    if (rc) {
        rollback(db);
        pm_complaints_free(cs);
        return rc;
    }
    *out = cs;
    return PM_OK;
}
