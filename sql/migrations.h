/* migrations.h — the schema migrations embedded in the library (internal).
 *
 * sql/migrations.c is generated from sql/migrations/NNN_name.sql by
 * tools/embed_sql.sh and checked in; test_db checks that it still equals
 * the .sql files byte for byte.  Versions are ascending. */
#ifndef PM_MIGRATIONS_H
#define PM_MIGRATIONS_H

#include <stddef.h>

typedef struct pm_migration {
    int version;        /* NNN of the file name */
    const char *file;   /* "001_schema.sql" */
    const char *sql;    /* the file's text */
} pm_migration;

extern const pm_migration pm_migrations[];
extern const size_t pm_migrations_n;

#endif
