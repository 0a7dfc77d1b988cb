/* oracle_driver.c — prints what the library computes, as CSV, for
 * pysal_oracle.py to compare with libpysal (tests/analytics/run.sh builds
 * it against build/libproblemap.a).
 *
 *   oracle_driver districts FILE.geojson ID_FIELD SNAP_M
 *       nb,<id>,<neighbour id>      one line per (ordered) queen pair
 *       island,<id>
 *       value,<id>,<value>          the fixed count vector (below)
 *       gi,<id>,<z>                 Gi* z-score ("nan" when undefined)
 *       lisa,<id>,<I>,<quadrant>    local Moran's I
 *   oracle_driver points FILE.csv D_M K
 *       (FILE: lines "x,y" in metres)
 *       band,<i>,<j>                distance-band pairs (<= D_M)
 *       knn,<i>,<j>                 k nearest neighbours of i
 *   oracle_driver grid FILE.geojson ID_FIELD CELL_M SHAPE K CENTRE_LON CENTRE_LAT
 *       (the equal-area grid of pm_cellgrid.h; SHAPE square or hex)
 *       cell,<i>,<x>,<y>,<district id>  the cells' centres on the plane
 *       band_m,<d>                  the default band (just over the ring)
 *       band,<i>,<j> / knn,<i>,<j>  as for points, over the centres
 *       value,<i>,<v>               the cells' fixed count vector (below, >> 29)
 *       gi,<i>,<z> / giknn,<i>,<z>  Gi* z over the band / the k nearest
 *
 * The count vector: value_i = ((i + 1) · 2654435761 mod 2^32) >> 27, i in
 * id order — fixed, uneven, with ties. */
#include "../../engine/pm_cellgrid.h"
#include "../../engine/pm_ctx.h"
#include "../../engine/pm_district.h"
#include "../../engine/pm_hotspot.h"
#include "../../engine/pm_locate.h"
#include "../../engine/pm_weights.h"
#include "../../geodata/pm_boundaries.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(pm_ctx *ctx, const char *what)
{
    fprintf(stderr, "oracle_driver: %s: %s\n", what, pm_ctx_errmsg(ctx));
    return 1;
}

static void print_num(const char *tag, const char *id, double v)
{
    if (isnan(v))
        printf("%s,%s,nan\n", tag, id);
    else
        printf("%s,%s,%.17g\n", tag, id, v);
}

static int run_districts(pm_ctx *ctx, const char *path, const char *id_field, double snap_m)
{
    pm_districts *ds = pm_districts_new(ctx);
    pm_boundary_opts bo = {.id_field = id_field};
    pm_weights *w = NULL;
    pm_gistar *g = NULL;
    pm_moran *m = NULL;
    double *v = NULL;
    int ex = 1;
    if (!ds || pm_boundaries_read_geojson(ctx, path, &bo, ds, NULL) || pm_districts_freeze(ctx, ds)) {
        fail(ctx, path);
        goto done;
    }
    size_t n = pm_districts_count(ds);
    if (pm_weights_queen(ctx, ds, snap_m, &w)) {
        fail(ctx, "queen");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const size_t *nb;
        size_t k = pm_weights_row(w, i, &nb, NULL);
        if (k == 0)
            printf("island,%s\n", pm_district_id(ds, i));
        for (size_t t = 0; t < k; t++)
            printf("nb,%s,%s\n", pm_district_id(ds, i), pm_district_id(ds, nb[t]));
    }
    if (!(v = calloc(n, sizeof *v)))
        goto done;
    for (size_t i = 0; i < n; i++) {
        v[i] = (double)(((uint32_t)(i + 1) * 2654435761u) >> 27);
        print_num("value", pm_district_id(ds, i), v[i]);
    }
    pm_moran_opts mo;
    pm_moran_opts_default(&mo);
    mo.permutations = 0;
    if (pm_gistar_compute(ctx, w, v, n, NULL, &g) || pm_moran_local(ctx, w, v, n, &mo, &m)) {
        fail(ctx, "statistics");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        print_num("gi", pm_district_id(ds, i), g->z[i]);
        if (isnan(m->I[i]))
            printf("lisa,%s,nan,0\n", pm_district_id(ds, i));
        else
            printf("lisa,%s,%.17g,%d\n", pm_district_id(ds, i), m->I[i], m->quadrant[i]);
    }
    ex = 0;
done:
    free(v);
    pm_gistar_free(g);
    pm_moran_free(m);
    pm_weights_free(w);
    pm_districts_free(ctx, ds);
    return ex;
}

static void print_pairs(const char *tag, const pm_weights *w)
{
    for (size_t i = 0; i < pm_weights_count(w); i++) {
        const size_t *nb;
        size_t k = pm_weights_row(w, i, &nb, NULL);
        for (size_t t = 0; t < k; t++)
            printf("%s,%zu,%zu\n", tag, i, nb[t]);
    }
}

static int run_points(pm_ctx *ctx, const char *path, double d_m, size_t k)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return 1;
    }
    size_t n = 0, cap = 0;
    double *x = NULL, *y = NULL, a, b;
    int ex = 1;
    while (fscanf(f, "%lf,%lf", &a, &b) == 2) {
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            double *nx = realloc(x, cap * sizeof *x), *ny = nx ? realloc(y, cap * sizeof *y) : NULL;
            if (nx)
                x = nx;
            if (ny)
                y = ny;
            if (!nx || !ny)
                goto done;
        }
        x[n] = a, y[n] = b, n++;
    }
    pm_weights *band = NULL, *knn = NULL;
    if (pm_weights_distance_band(ctx, x, y, n, d_m, &band) ||
        pm_weights_knn(ctx, x, y, n, k, &knn)) {
        fail(ctx, "point weights");
    } else {
        print_pairs("band", band);
        print_pairs("knn", knn);
        ex = 0;
    }
    pm_weights_free(band);
    pm_weights_free(knn);
done:
    fclose(f);
    free(x);
    free(y);
    return ex;
}

/* Gi* of v over w as "tag,<i>,<z>" lines. */
static int print_gi(pm_ctx *ctx, const char *tag, const pm_weights *w, const double *v, size_t n)
{
    pm_gistar *g = NULL;
    if (pm_gistar_compute(ctx, w, v, n, NULL, &g))
        return fail(ctx, tag);
    char id[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(id, sizeof id, "%zu", i);
        print_num(tag, id, g->z[i]);
    }
    pm_gistar_free(g);
    return 0;
}

static int run_grid(pm_ctx *ctx, char **argv)
{
    pm_districts *ds = pm_districts_new(ctx);
    pm_boundary_opts bo = {.id_field = argv[3]};
    pm_locator *loc = NULL;
    pm_cellgrid *cg = NULL;
    pm_weights *band = NULL, *knn = NULL;
    double *v = NULL;
    int ex = 1;
    pm_cellgrid_opts o = {(pm_cell_shape)pm_cell_shape_parse(argv[5]), strtod(argv[4], NULL),
                          strtod(argv[7], NULL), strtod(argv[8], NULL), 0};
    if (!ds || pm_boundaries_read_geojson(ctx, argv[2], &bo, ds, NULL) || pm_districts_freeze(ctx, ds) ||
        pm_locator_new(ctx, ds, -1, &loc) || pm_cellgrid_new(ctx, ds, loc, &o, &cg)) {
        fail(ctx, argv[2]);
        goto done;
    }
    size_t n = pm_cellgrid_count(cg);
    const double *x = pm_cellgrid_x(cg), *y = pm_cellgrid_y(cg);
    double ring = o.shape == PM_CELL_HEX ? pm_cellgrid_spacing_m(cg) : sqrt(2.0) * o.cell_m;
    double d = ring * 1.0001;   /* analyze's default band */
    if (pm_weights_distance_band(ctx, x, y, n, d, &band) ||
        pm_weights_knn(ctx, x, y, n, (size_t)strtoul(argv[6], NULL, 10), &knn)) {
        fail(ctx, "grid weights");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        printf("cell,%zu,%.17g,%.17g,%s\n", i, x[i], y[i], pm_district_id(ds, pm_cellgrid_district(cg, i)));
    printf("band_m,%.17g\n", d);
    print_pairs("band", band);
    print_pairs("knn", knn);
    if (!(v = calloc(n, sizeof *v)))
        goto done;
    for (size_t i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "%zu", i);
        v[i] = (double)(((uint32_t)(i + 1) * 2654435761u) >> 29);
        print_num("value", id, v[i]);
    }
    ex = print_gi(ctx, "gi", band, v, n) || print_gi(ctx, "giknn", knn, v, n);
done:
    free(v);
    pm_weights_free(band);
    pm_weights_free(knn);
    pm_cellgrid_free(cg);
    pm_locator_free(ctx, loc);
    pm_districts_free(ctx, ds);
    return ex;
}

int main(int argc, char **argv)
{
    int is_grid = argc == 9 && !strcmp(argv[1], "grid");
    if (!is_grid && (argc != 5 || (strcmp(argv[1], "districts") && strcmp(argv[1], "points")))) {
        fprintf(stderr, "usage: oracle_driver districts FILE ID_FIELD SNAP_M | points FILE D_M K"
                        " | grid FILE ID_FIELD CELL_M SHAPE K CENTRE_LON CENTRE_LAT\n");
        return 2;
    }
    pm_ctx *ctx = pm_ctx_new();
    if (!ctx)
        return 1;
    int ex = is_grid ? run_grid(ctx, argv)
             : !strcmp(argv[1], "districts")
                 ? run_districts(ctx, argv[2], argv[3], strtod(argv[4], NULL))
                 : run_points(ctx, argv[2], strtod(argv[3], NULL), (size_t)strtoul(argv[4], NULL, 10));
    pm_ctx_free(ctx);
    return ex;
}
