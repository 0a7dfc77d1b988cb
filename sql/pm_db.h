/* pm_db.h — PostgreSQL + PostGIS as the database of record (libpq).
 *
 * Connection: a libpq conninfo string or URI ("" or NULL: the PG*
 * environment variables, as psql does).  Every statement is parameterised
 * (PQexecParams / prepared statements, or COPY with rows escaped by the
 * COPY text rules); no SQL is ever built from data.
 *
 * Schema: versioned migrations (sql/migrations/NNN_name.sql, embedded in
 * the library at build time), applied in order inside one transaction
 * each; the applied versions are recorded in problemap.schema_version, so
 * running pm_db_migrate() twice changes nothing.
 *
 * Loading: complaints are loaded with COPY in batches, one transaction per
 * batch, idempotent by complaint id (INSERT … ON CONFLICT DO NOTHING from
 * a temporary staging table): re-loading the same file changes nothing.
 * Rejects go to problemap.rejects with source, line, id, field and reason
 * (never the complaint text).  Boundaries are loaded as MultiPolygon 4326 with
 * their generation (valid_from) so a municipal reform adds rows instead of
 * rewriting history.
 */
#ifndef PM_DB_H
#define PM_DB_H

#include "../engine/pm_complaint.h"
#include "../engine/pm_ctx.h"
#include "../engine/pm_cube.h"
#include "../engine/pm_district.h"
#include "../engine/pm_locate.h"
#include "../geodata/pm_topics.h"
#include <stddef.h>
#include <stdint.h>

typedef struct pm_db pm_db;

/* Connects and checks that PostGIS is there (PM_E_DB with a message that
 * says "cannot connect to …: <libpq's reason>" or "PostGIS is not
 * installed in database …"). Caller frees with pm_db_close(). */
int pm_db_open(pm_ctx *ctx, const char *conninfo, pm_db **out);
void pm_db_close(pm_db *db);

/* Applies the migrations not yet applied; *applied (may be NULL) gets how
 * many were applied now. */
int pm_db_migrate(pm_ctx *ctx, pm_db *db, int *applied);
int pm_db_schema_version(pm_ctx *ctx, pm_db *db, int *version);

/* Loads the topic catalogue (upsert by code). */
int pm_db_load_topics(pm_ctx *ctx, pm_db *db, const pm_topics *t);
/* Loads districts and regions (upsert by id for the generation valid_from,
 * an ISO date; NULL: today). */
int pm_db_load_districts(pm_ctx *ctx, pm_db *db, const pm_districts *ds, const char *valid_from);

typedef struct pm_db_load_report {
    uint64_t inserted;      /* new rows */
    uint64_t existing;      /* ids already in the table (skipped) */
    uint64_t batches;
} pm_db_load_report;

/* Loads the accepted complaints of cs with their placement (pl may be
 * NULL: placed later in the database) in batches of batch_size (0: 50 000),
 * each batch one transaction. */
int pm_db_load_complaints(pm_ctx *ctx, pm_db *db, const pm_complaints *cs, const pm_placed *pl,
                          const pm_districts *ds, const pm_topics *t, size_t batch_size,
                          pm_db_load_report *rep);

/* Records one reject (line, id, field, reason) in problemap.rejects for
 * the load named by source (e.g. the file name). */
int pm_db_add_reject(pm_ctx *ctx, pm_db *db, const char *source, uint64_t line, const char *id,
                     const char *field, const char *reason);

/* Writes the engine's placement of cs (complaints read from or loaded into
 * the database, matched by id) back into problemap.complaints: district_id
 * and placement (NULL for complaints not placed: rejected after placing,
 * unknown district code), in one transaction.  *updated (may be NULL) gets
 * the rows whose placement changed. */
int pm_db_write_placements(pm_ctx *ctx, pm_db *db, const pm_complaints *cs, const pm_placed *pl,
                           const pm_districts *ds, uint64_t *updated);

/* Replaces the cells of the cube's period kind and UTC offset in
 * problemap.cube_cells with the cube's (loading the topic catalogue
 * first), in one transaction: readers see the old cells or the new, never
 * a mix.  *rows (may be NULL) gets the cells written. */
int pm_db_write_cube(pm_ctx *ctx, pm_db *db, const pm_cube *cube, const pm_districts *ds,
                     const pm_topics *t, uint64_t *rows);

/* Reads the districts back (geometry as WKB → GEOS), frozen. */
int pm_db_read_districts(pm_ctx *ctx, pm_db *db, pm_districts **out);
/* Reads complaints back into a batch (topics by code through t). */
int pm_db_read_complaints(pm_ctx *ctx, pm_db *db, const pm_topics *t, pm_complaints **out);

#endif
