/* bench_locate.c — `make bench`'s locate-only timer: the geocoder's own
 * throughput, without reading and checking the CSV (which dominates a
 * whole `problemap geocode` run).  Reads the boundaries and the complaints
 * through the library as the program does, then times pm_locator_new and
 * pm_locate_batch on all cores with the raster fast path on and off, and
 * checks that both give the same placement.
 *   bench_locate BOUNDARIES.geojson ID_FIELD|- COMPLAINTS.csv TOPICS.json RUNS
 * Prints "name seconds" lines (medians over RUNS). */
#include "../engine/pm_locate.h"
#include "../geodata/pm_boundaries.h"
#include "../geodata/pm_complaints_in.h"
#include "../geodata/pm_topics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int no_reject(void *u, uint64_t l, const char *id, const char *f, const char *r)
{
    (void)u, (void)l, (void)id, (void)f, (void)r;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int fail(pm_ctx *ctx, const char *what)
{
    fprintf(stderr, "bench_locate: %s: %s\n", what, pm_ctx_errmsg(ctx));
    return 1;
}

/* Median seconds of runs batches; *out keeps the last placement. */
static int time_batch(pm_ctx *ctx, pm_locator *loc, const pm_complaints *cs, int runs, double *sec,
                      pm_placed **out)
{
    double t[16];
    for (int r = 0; r < runs; r++) {
        pm_placed *p = NULL;
        double s = now();
        if (pm_locate_batch(ctx, loc, cs, 0, &p))
            return -1;
        t[r] = now() - s;
        pm_placed_free(*out);
        *out = p;
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    *sec = t[runs / 2];
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: bench_locate BOUNDARIES ID_FIELD|- COMPLAINTS.csv TOPICS.json RUNS\n");
        return 2;
    }
    int runs = atoi(argv[5]);
    runs = runs < 1 ? 1 : runs > 15 ? 15 : runs;
    pm_ctx *ctx = pm_ctx_new();
    pm_districts *ds = pm_districts_new(ctx);
    pm_boundary_opts bo = {.id_field = strcmp(argv[2], "-") ? argv[2] : NULL};
    pm_topics *t = NULL;
    pm_mapping *m = NULL;
    pm_intake *in = NULL;
    pm_complaints *cs = pm_complaints_new();
    if (!ctx || !ds || !cs || pm_boundaries_read_geojson(ctx, argv[1], &bo, ds, NULL) ||
        pm_districts_freeze(ctx, ds))
        return fail(ctx, argv[1]);
    if (pm_topics_load(ctx, argv[4], &t) || pm_mapping_default(ctx, &m) ||
        pm_intake_new(ctx, t, m, cs, no_reject, NULL, &in) ||
        pm_intake_read_path(ctx, in, argv[3], PM_FMT_AUTO))
        return fail(ctx, argv[3]);
    pm_locator *loc = NULL;
    double s = now();
    if (pm_locator_new(ctx, ds, -1, &loc))
        return fail(ctx, "locator");
    printf("locator_new %.4f\n", now() - s);
    pm_placed *on = NULL, *off = NULL;
    double t_on, t_off;
    pm_locator_set_raster(loc, 1);
    if (time_batch(ctx, loc, cs, runs, &t_on, &on))
        return fail(ctx, "locate (raster)");
    pm_locator_set_raster(loc, 0);
    if (time_batch(ctx, loc, cs, runs, &t_off, &off))
        return fail(ctx, "locate (exact)");
    size_t n = on->n, diff = 0;
    for (size_t i = 0; i < n; i++)
        diff += on->district[i] != off->district[i] || on->placement[i] != off->placement[i];
    printf("points %zu\nlocate_raster %.4f\nlocate_exact %.4f\ndifferences %zu\n", n, t_on, t_off, diff);
    pm_placed_free(on);
    pm_placed_free(off);
    pm_locator_free(ctx, loc);
    pm_intake_free(in);
    pm_complaints_free(cs);
    pm_mapping_free(m);
    pm_topics_free(t);
    pm_districts_free(ctx, ds);
    pm_ctx_free(ctx);
    return diff ? 1 : 0;
}
