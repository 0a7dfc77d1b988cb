/* bench_locate.c — `make bench`'s locate-only timer: the geocoder's own
 * throughput, without reading and checking the CSV (which dominates a
 * whole `problemap geocode` run).  Reads the boundaries and the complaints
 * through the library as the program does, then times pm_locator_new and
 * pm_locate_batch on all cores with the raster fast path on and off, and
 * checks that both give the same placement.
 *   bench_locate BOUNDARIES.geojson ID_FIELD|- COMPLAINTS.csv TOPICS.json RUNS
 * Prints "name seconds" lines (medians over RUNS). */
#include "bench_load.h"

#include <stdlib.h>

#define now bench_now

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
    qsort(t, (size_t)runs, sizeof *t, bench_cmp_double);
    *sec = t[runs / 2];
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: bench_locate BOUNDARIES ID_FIELD|- COMPLAINTS.csv TOPICS.json RUNS\n");
        return 2;
    }
    int runs = bench_runs(argv[5]);
    bench_data b;
    if (bench_load("bench_locate", argv[1], argv[2], argv[3], argv[4], &b))
        return 1;
    pm_ctx *ctx = b.ctx;
    const pm_districts *ds = b.ds;
    const pm_complaints *cs = b.cs;
    pm_locator *loc = NULL;
    double s = now();
    if (pm_locator_new(ctx, ds, -1, &loc))
        return bench_fail("bench_locate", ctx, "locator");
    printf("locator_new %.4f\n", now() - s);
    pm_placed *on = NULL, *off = NULL;
    double t_on, t_off;
    pm_locator_set_raster(loc, 1);
    if (time_batch(ctx, loc, cs, runs, &t_on, &on))
        return bench_fail("bench_locate", ctx, "locate (raster)");
    pm_locator_set_raster(loc, 0);
    if (time_batch(ctx, loc, cs, runs, &t_off, &off))
        return bench_fail("bench_locate", ctx, "locate (exact)");
    size_t n = on->n, diff = 0;
    for (size_t i = 0; i < n; i++)
        diff += on->district[i] != off->district[i] || on->placement[i] != off->placement[i];
    printf("points %zu\nlocate_raster %.4f\nlocate_exact %.4f\ndifferences %zu\n", n, t_on, t_off, diff);
    pm_placed_free(on);
    pm_placed_free(off);
    pm_locator_free(ctx, loc);
    bench_data_free(&b);
    return diff ? 1 : 0;
}
