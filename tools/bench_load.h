/* bench_load.h — what the benchmark drivers (bench_locate.c,
 * bench_tiles.c, bench_cube.c) share: a clock, a median's comparison, the
 * number of runs, and reading the boundaries and complaints through the
 * library as the program does.
 * Header-only: each driver is compiled alone against libproblemap.a. */
#ifndef PM_BENCH_LOAD_H
#define PM_BENCH_LOAD_H

#include "../engine/pm_locate.h"
#include "../geodata/pm_boundaries.h"
#include "../geodata/pm_complaints_in.h"
#include "../geodata/pm_topics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A driver's RUNS argument: 1 to 15 (its arrays of timings hold 15). */
static inline int bench_runs(const char *arg)
{
    int runs = atoi(arg);
    return runs < 1 ? 1 : runs > 15 ? 15 : runs;
}

static int bench_fail(const char *prog, pm_ctx *ctx, const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", prog, what, ctx ? pm_ctx_errmsg(ctx) : "out of memory");
    return 1;
}

static int bench_no_reject(void *u, uint64_t l, const char *id, const char *f, const char *r)
{
    (void)u, (void)l, (void)id, (void)f, (void)r;
    return 0;
}

/* What a driver reads; bench_data_free() frees what is set. */
typedef struct bench_data {
    pm_ctx *ctx;
    pm_districts *ds;
    pm_topics *t;
    pm_mapping *m;
    pm_intake *in;
    pm_complaints *cs;
} bench_data;

static void bench_data_free(bench_data *b)
{
    pm_intake_free(b->in);
    pm_complaints_free(b->cs);
    pm_mapping_free(b->m);
    pm_topics_free(b->t);
    if (b->ds)
        pm_districts_free(b->ctx, b->ds);
    pm_ctx_free(b->ctx);
}

/* The boundaries (id_field "-": auto), frozen, and the complaints read
 * with the default mapping (rejects dropped: the data are generated clean).
 * 0, or 1 with the message printed. */
static int bench_load(const char *prog, const char *boundaries, const char *id_field,
                      const char *complaints, const char *topics, bench_data *b)
{
    memset(b, 0, sizeof *b);
    b->ctx = pm_ctx_new();
    b->ds = b->ctx ? pm_districts_new(b->ctx) : NULL;
    b->cs = pm_complaints_new();
    pm_boundary_opts bo = {.id_field = strcmp(id_field, "-") ? id_field : NULL};
    if (!b->ctx || !b->ds || !b->cs || pm_boundaries_read_geojson(b->ctx, boundaries, &bo, b->ds, NULL) ||
        pm_districts_freeze(b->ctx, b->ds))
        return bench_fail(prog, b->ctx, boundaries);
    if (pm_topics_load(b->ctx, topics, &b->t) || pm_mapping_default(b->ctx, &b->m) ||
        pm_intake_new(b->ctx, b->t, b->m, b->cs, bench_no_reject, NULL, &b->in) ||
        pm_intake_read_path(b->ctx, b->in, complaints, PM_FMT_AUTO))
        return bench_fail(prog, b->ctx, complaints);
    return 0;
}

#endif
