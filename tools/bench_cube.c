/* bench_cube.c — `make bench`'s snapshot timer: opening a cube snapshot
 * with each reader, and the first query after an open, without the rest of
 * a `problemap export` run (reading the boundaries, writing the table).
 *   bench_cube BOUNDARIES.geojson ID_FIELD|- SMALL.csv TOPICS.json SNAPSHOT RUNS
 * (SMALL.csv: any complaints file; bench_load reads one.)  Prints "name
 * seconds" lines, medians over RUNS opens (each maps the file anew; the
 * file is in the page cache after the first). */
#include "bench_load.h"
#include "../engine/pm_alloc.h"
#include "../engine/pm_cube.h"

#include <stdlib.h>

typedef int (*reader_fn)(pm_ctx *, const char *, const pm_districts *, size_t, pm_cube **);

/* Median seconds of runs opens with read (and of the query at the district
 * level after each, into *query when query is not NULL). */
static int time_open(bench_data *b, reader_fn read, const char *path, int runs, double *open,
                     double *query)
{
    double t[16], q[16];
    for (int r = 0; r < runs; r++) {
        pm_cube *c = NULL;
        pm_row *rows = NULL;
        size_t n = 0;
        double s = bench_now();
        if (read(b->ctx, path, b->ds, pm_topics_count(b->t), &c))
            return -1;
        t[r] = bench_now() - s;
        s = bench_now();
        int rc = pm_cube_query(b->ctx, c, PM_LEVEL_DISTRICT, NULL, &rows, &n);
        q[r] = bench_now() - s;
        pm_free(rows);
        pm_cube_free(c);
        if (rc)
            return -1;
    }
    qsort(t, (size_t)runs, sizeof *t, bench_cmp_double);
    qsort(q, (size_t)runs, sizeof *q, bench_cmp_double);
    *open = t[runs / 2];
    if (query)
        *query = q[runs / 2];
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: bench_cube BOUNDARIES ID_FIELD|- SMALL.csv TOPICS.json SNAPSHOT "
                        "RUNS\n");
        return 2;
    }
    int runs = bench_runs(argv[6]);
    bench_data b;
    if (bench_load("bench_cube", argv[1], argv[2], argv[3], argv[4], &b))
        return 1;
    double q_open, q_query, r_open;
    if (time_open(&b, pm_cube_read_query_only, argv[5], runs, &q_open, &q_query))
        return bench_fail("bench_cube", b.ctx, argv[5]);
    if (time_open(&b, pm_cube_read, argv[5], runs, &r_open, NULL))
        return bench_fail("bench_cube", b.ctx, argv[5]);
    printf("open_query_only %.4f\nfirst_query %.4f\nopen_read %.4f\n", q_open, q_query, r_open);
    bench_data_free(&b);
    return 0;
}
