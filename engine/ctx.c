/* ctx.c — the per-thread context: GEOS handle, PROJ context, error record. */
#include "pm_ctx.h"
#include "pm_alloc.h"

#include <stdio.h>
#include <string.h>

struct pm_ctx {
    GEOSContextHandle_t geos;
    PJ_CONTEXT *proj;
    pm_log_fn log;
    void *log_user;
    int errcode;
    const char *errfunc;
    char errmsg[1024];
    char geos_msg[512];
    char proj_msg[512];
};

static void proj_message(void *user, int level, const char *msg)
{
    pm_ctx *ctx = user;
    if (level <= PJ_LOG_ERROR)
        snprintf(ctx->proj_msg, sizeof ctx->proj_msg, "%s", msg);
}

static void geos_message(const char *msg, void *user)
{
    pm_ctx *ctx = user;
    /* Kept for the caller, who wraps it with what it was doing. */
    snprintf(ctx->geos_msg, sizeof ctx->geos_msg, "%s", msg);
}

static void geos_notice(const char *msg, void *user)
{
    (void)msg;
    (void)user; /* GEOS notices (e.g. "Self-intersection at") are reported by our own checks */
}

pm_ctx *pm_ctx_new(void)
{
    pm_ctx *ctx = pm_calloc(1, sizeof *ctx);
    if (!ctx)
        return NULL;
    ctx->geos = GEOS_init_r();
    if (!ctx->geos) {
        pm_free(ctx);
        return NULL;
    }
    GEOSContext_setErrorMessageHandler_r(ctx->geos, geos_message, ctx);
    GEOSContext_setNoticeMessageHandler_r(ctx->geos, geos_notice, ctx);
    ctx->proj = proj_context_create();
    if (!ctx->proj) {
        GEOS_finish_r(ctx->geos);
        pm_free(ctx);
        return NULL;
    }
    proj_log_func(ctx->proj, ctx, proj_message);
    proj_log_level(ctx->proj, PJ_LOG_ERROR);
    return ctx;
}

void pm_ctx_free(pm_ctx *ctx)
{
    if (!ctx)
        return;
    proj_context_destroy(ctx->proj);
    GEOS_finish_r(ctx->geos);
    pm_free(ctx);
}

GEOSContextHandle_t pm_ctx_geos(pm_ctx *ctx) { return ctx->geos; }
PJ_CONTEXT *pm_ctx_proj(pm_ctx *ctx) { return ctx->proj; }

void pm_ctx_set_log(pm_ctx *ctx, pm_log_fn fn, void *user)
{
    ctx->log = fn;
    ctx->log_user = user;
}

void pm_ctx_get_log(const pm_ctx *ctx, pm_log_fn *fn, void **user)
{
    *fn = ctx->log;
    *user = ctx->log_user;
}

void pm_ctx_log(pm_ctx *ctx, pm_log_level level, const char *fmt, ...)
{
    if (!ctx->log)
        return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ctx->log(ctx->log_user, level, buf);
}

const char *pm_ctx_geos_msg(const pm_ctx *ctx)
{
    return ctx->geos_msg[0] ? ctx->geos_msg : "no message from GEOS";
}

const char *pm_ctx_proj_msg(const pm_ctx *ctx)
{
    return ctx->proj_msg[0] ? ctx->proj_msg : "no message from PROJ";
}

int pm_ctx_errcode(const pm_ctx *ctx) { return ctx->errcode; }
const char *pm_ctx_errmsg(const pm_ctx *ctx) { return ctx->errcode ? ctx->errmsg : ""; }
const char *pm_ctx_errfunc(const pm_ctx *ctx) { return ctx->errfunc ? ctx->errfunc : ""; }

void pm_ctx_clear_error(pm_ctx *ctx)
{
    ctx->errcode = PM_OK;
    ctx->errfunc = NULL;
    ctx->errmsg[0] = '\0';
}

int pm_ctx_set_error(pm_ctx *ctx, int code, const char *func, const char *fmt, ...)
{
    char buf[sizeof ctx->errmsg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    memcpy(ctx->errmsg, buf, sizeof buf);
    ctx->errcode = code;
    ctx->errfunc = func;
    return code;
}

const char *pm_status_name(int status)
{
    switch (status) {
    case PM_OK: return "ok";
    case PM_E_INPUT: return "malformed input";
    case PM_E_INPUT_FIELD: return "missing field";
    case PM_E_INPUT_VALUE: return "bad value";
    case PM_E_INPUT_EMPTY: return "no usable input";
    case PM_E_GEOM: return "geometry error";
    case PM_E_CRS: return "coordinate transform error";
    case PM_E_DB: return "database error";
    case PM_E_RENDER: return "render error";
    case PM_E_NOMEM: return "out of memory";
    case PM_E_IO: return "i/o error";
    case PM_E_THREAD: return "thread error";
    case PM_E_USAGE: return "usage error";
    default: return "unknown error";
    }
}
