/* serve_state.c — what `problemap serve` serves: generations of the
 * dataset (loaded, shared by reference, swapped on reload) and the pool of
 * library contexts the worker threads render with (see serve.h). */
#include "serve.h"
#include "../engine/pm_alloc.h"

#include <pthread.h>
#include <stdarg.h>
#include <string.h>

void serve_log(const char *fmt, ...)
{
    char line[1024];
    int n = snprintf(line, sizeof line, "problemap serve: ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    strcat(line, "\n");
    fputs(line, stderr);   /* one write: lines from threads do not mix */
}

/* ---- generations ------------------------------------------------------------ */

static void gen_destroy(shared *sh)
{
    gen *g = (gen *)sh;
    lru_free(g->layers);      /* layers first: they point into the dataset */
    lru_free(g->responses);
    if (g->d)
        dataset_free(g->ctx, g->d);
    pm_ctx_free(g->ctx);
    pm_free(g);
}

/* One grid's points, built on a helper thread with its own context. */
typedef struct points_job {
    dataset *d;
    pm_ctx *ctx;
    int st;
} points_job;

static void *points_run(void *arg)
{
    points_job *j = arg;
    const pm_points *pts;
    j->st = dataset_points(j->ctx, j->d, PM_GRID_WORLDMERC, &pts);
    return NULL;
}

/* Builds what layers.h builds on first use, so threads can share it.  With
 * more than one thread, EPSG:3395's points are built on a helper thread
 * while this one builds the rest (one after the other, they took 3.5–5.3 s
 * each at 13.4 M complaints; together, ~6 s); a helper that cannot be set
 * up leaves its share to this thread. */
static int build_lazy_parts(pm_ctx *ctx, const serve_opts *o, dataset *d)
{
    /* a helper only for points still to build (a dataset snapshot has them) */
    points_job job = {d, o->threads > 1 && !d->points[PM_GRID_WORLDMERC] ? pm_ctx_new() : NULL,
                      PM_OK};
    if (job.ctx)
        pm_ctx_set_log(job.ctx, cli_warn_log, o->p.quiet ? (void *)&cli_quiet : NULL);
    pthread_t helper;
    int started = job.ctx && pthread_create(&helper, NULL, points_run, &job) == 0;
    const pm_weights *w;
    const pm_points *pts;
    const pm_choro *ch;
    int ex = EXIT_OK;
    if (dataset_weights(ctx, d, &w))
        ex = cli_fail(ctx, "preparing the hot-spot layer (district neighbours)");
    else if (dataset_points(ctx, d, PM_GRID_WEBMERC, &pts) ||
             (!started && dataset_points(ctx, d, PM_GRID_WORLDMERC, &pts)) ||
             dataset_choro(ctx, d, PM_GRID_WEBMERC, &ch) || dataset_choro(ctx, d, PM_GRID_WORLDMERC, &ch))
        ex = cli_fail(ctx, "preparing the map layers");
    if (started) {
        pthread_join(helper, NULL);
        if (job.st && !ex)
            ex = cli_fail(job.ctx, "preparing the map layers");
    }
    pm_ctx_free(job.ctx);
    return ex;
}

int gen_load(const serve_opts *o, uint64_t number, gen **out)
{
    *out = NULL;
    gen *g = pm_calloc(1, sizeof *g);
    if (!g || !(g->ctx = pm_ctx_new())) {
        pm_free(g);
        serve_log("cannot start GEOS/PROJ (out of memory?)");
        return EXIT_RUN;
    }
    shared_init(&g->sh, gen_destroy);
    g->number = number;
    pm_ctx_set_log(g->ctx, cli_warn_log, o->p.quiet ? (void *)&cli_quiet : NULL);
    int ex = o->dataset ? dataset_open(g->ctx, &o->p, o->dataset, o->period, &g->d)
                        : dataset_new(g->ctx, &o->p, o->period, 0, &g->d);
    if (!ex)
        ex = build_lazy_parts(g->ctx, o, g->d);
    if (!ex && (!(g->responses = lru_new(o->cache_bytes)) || !(g->layers = lru_new(SERVE_LAYERS_MAX)))) {
        serve_log("out of memory");
        ex = EXIT_RUN;
    }
    if (ex) {
        gen_unref(g);
        return ex;
    }
    g->loaded_at = time(NULL);
    *out = g;
    return EXIT_OK;
}

gen *server_gen(server *s)
{
    pthread_mutex_lock(&s->lock);
    gen *g = s->cur;
    shared_ref(&g->sh);
    pthread_mutex_unlock(&s->lock);
    return g;
}

void server_swap(server *s, gen *g)
{
    pthread_mutex_lock(&s->lock);
    gen *old = s->cur;
    s->cur = g;
    pthread_mutex_unlock(&s->lock);
    if (!old)
        return;
    lru_clear(old->responses);   /* its memory now; the data when the last request ends */
    gen_unref(old);
}

/* ---- contexts ---------------------------------------------------------------- */

int ctx_pool_init(ctx_pool *p, size_t n)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->freed, NULL);
    p->all = pm_calloc(n, sizeof *p->all);
    p->free = pm_calloc(n, sizeof *p->free);
    if (!p->all || !p->free) {
        ctx_pool_destroy(p);
        return PM_E_NOMEM;
    }
    for (; p->n < n; p->n++) {
        if (!(p->all[p->n] = pm_ctx_new())) {
            ctx_pool_destroy(p);
            return PM_E_NOMEM;
        }
        pm_ctx_set_log(p->all[p->n], cli_warn_log, NULL);
        p->free[p->n_free++] = p->all[p->n];
    }
    return PM_OK;
}

/* After the workers have stopped. */
void ctx_pool_destroy(ctx_pool *p)
{
    for (size_t i = 0; i < p->n; i++)
        pm_ctx_free(p->all[i]);
    pm_free(p->all);
    pm_free(p->free);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->freed);
    memset(p, 0, sizeof *p);
}

pm_ctx *ctx_pool_get(ctx_pool *p)
{
    pthread_mutex_lock(&p->lock);
    while (p->n_free == 0)   /* only when more requests run than workers */
        pthread_cond_wait(&p->freed, &p->lock);
    pm_ctx *ctx = p->free[--p->n_free];
    pthread_mutex_unlock(&p->lock);
    pm_ctx_clear_error(ctx);
    return ctx;
}

void ctx_pool_put(ctx_pool *p, pm_ctx *ctx)
{
    pthread_mutex_lock(&p->lock);
    p->free[p->n_free++] = ctx;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}
