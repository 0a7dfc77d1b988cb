/* pm_ctx.h — the context every libproblemap call takes.
 *
 * A pm_ctx holds one thread's GEOS handle, PROJ context and error record
 * (GEOS reentrant API, PROJ "one context per thread").  Nothing in the
 * library keeps mutable global state, so several contexts may run in
 * several threads at once.  A context itself is not shared between threads.
 *
 * Errors: fallible functions return a pm_status (0 = PM_OK) and give their
 * results through out-parameters.  Details (message, input file, line or
 * feature, the C function) go into the context's error record, read with
 * pm_ctx_errmsg().  Codes come in families, as in PROJ: the hundreds digit
 * names the family.
 *
 * Warnings (a repaired polygon, overlaps between districts) go to a log
 * callback; the library never prints.
 */
#ifndef PM_CTX_H
#define PM_CTX_H

#define GEOS_USE_ONLY_R_API
#include <geos_c.h>
#include <proj.h>
#include <stdarg.h>
#include <stddef.h>

typedef enum pm_status {
    PM_OK = 0,
    /* input: the data the user gave us */
    PM_E_INPUT = 100,          /* malformed input (syntax, structure)       */
    PM_E_INPUT_FIELD = 101,    /* a required field or column is missing     */
    PM_E_INPUT_VALUE = 102,    /* a value that cannot be used               */
    PM_E_INPUT_EMPTY = 103,    /* nothing usable in the input               */
    /* geometry: GEOS and PROJ */
    PM_E_GEOM = 200,           /* GEOS failed or a geometry is unusable     */
    PM_E_CRS = 201,            /* PROJ could not build or run a transform   */
    /* database: libpq, PostGIS */
    PM_E_DB = 300,
    /* render: cairo, PNG */
    PM_E_RENDER = 400,
    /* system: memory, files, threads */
    PM_E_NOMEM = 500,
    PM_E_IO = 501,
    PM_E_THREAD = 502,
    /* usage: the caller's arguments */
    PM_E_USAGE = 600
} pm_status;

/* A short lower-case name for a status ("input", "out of memory", ...). */
const char *pm_status_name(int status);

typedef struct pm_ctx pm_ctx;

typedef enum pm_log_level { PM_LOG_INFO = 0, PM_LOG_WARN = 1 } pm_log_level;
typedef void (*pm_log_fn)(void *user, pm_log_level level, const char *msg);

/* New context with its own GEOS handle and PROJ context.  NULL when out
 * of memory or when GEOS/PROJ could not start.  Free with pm_ctx_free(). */
pm_ctx *pm_ctx_new(void);
void pm_ctx_free(pm_ctx *ctx);

/* Borrowed; valid as long as ctx. */
GEOSContextHandle_t pm_ctx_geos(pm_ctx *ctx);
PJ_CONTEXT *pm_ctx_proj(pm_ctx *ctx);

/* Warnings and progress go to fn (NULL: dropped). */
void pm_ctx_set_log(pm_ctx *ctx, pm_log_fn fn, void *user);
/* What pm_ctx_set_log set (for a helper thread's own context). */
void pm_ctx_get_log(const pm_ctx *ctx, pm_log_fn *fn, void **user);
void pm_ctx_log(pm_ctx *ctx, pm_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The last error: its code (PM_OK when none), its message ("" when none)
 * and the library function that set it. Borrowed strings. */
int pm_ctx_errcode(const pm_ctx *ctx);
const char *pm_ctx_errmsg(const pm_ctx *ctx);
const char *pm_ctx_errfunc(const pm_ctx *ctx);
void pm_ctx_clear_error(pm_ctx *ctx);

/* The last message GEOS sent to this context's handle (borrowed), to be
 * quoted in an error that says what was being done. */
const char *pm_ctx_geos_msg(const pm_ctx *ctx);
/* Likewise the last error PROJ logged on this context. */
const char *pm_ctx_proj_msg(const pm_ctx *ctx);

/* Set the error record and return code.  Use through PM_ERR so that the
 * function name is filled in by the compiler, never typed by hand. */
int pm_ctx_set_error(pm_ctx *ctx, int code, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define PM_ERR(ctx, code, ...) pm_ctx_set_error((ctx), (code), __func__, __VA_ARGS__)

#endif
