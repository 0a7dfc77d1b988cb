/* analyze_grid.c — the grid half of `problemap analyze`: Getis-Ord Gi* hot
 * spots (and emerging hot spots) on an equal-area grid of square or
 * hexagonal cells over the districts (docs/analytics.md, "Hot spots on a
 * grid").
 *
 * The cells are the library's (engine/pm_cellgrid.h) on the LAEA plane at
 * the dataset's centre, the study area the cells whose centre is in a
 * district.  A cell's value is the number of complaints in it that the
 * heat map would draw under the request's filters (placed with
 * coordinates; pm_heat_complaints_pass()); complaints in cells outside the
 * study area are counted apart and reported.  Neighbours: a distance band
 * over the centres (by default just over the nearest ring: the 8 squares
 * around, or the 6 hexagons) or the k nearest centres; Gi* and its bins
 * (--fdr: Benjamini-Hochberg) as for districts.  The outputs are written
 * cell by cell in batches (a grid may hold two million cells), GeoJSON
 * polygons and CSV rows with the cell's centre.  No complaint text, author
 * or id is written. */
#include "analyze.h"
#include "../engine/pm_alloc.h"
#include "../engine/pm_cellgrid.h"
#include "../engine/pm_hotspot.h"
#include "../engine/pm_weights.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 4096
#define MAX_KNN 1000
#define BAND_MARGIN 1.0001   /* just over the ring's distance, whatever the rounding */

void analyze_grid_init(analyze_grid *g)
{
    memset(g, 0, sizeof *g);
    g->cell_m = 1000;
    g->shape = PM_CELL_SQUARE;
}

int analyze_grid_option(analyze_grid *g, int which, const char *arg)
{
    char *end;
    switch (which) {
    case 0: g->hotspots = arg; return EXIT_OK;
    case 1: g->hotspots_csv = arg; return EXIT_OK;
    case 2: g->emerging = arg; return EXIT_OK;
    case 3: g->emerging_csv = arg; return EXIT_OK;
    case 4:
        g->cell_m = strtod(arg, &end);
        if (*end || !(g->cell_m >= 10 && g->cell_m <= 1e6))
            return cli_usage_error("analyze", "--grid-m: '%s' is not metres from 10 to 1000000", arg);
        return EXIT_OK;
    case 5:
        if ((g->shape = pm_cell_shape_parse(arg)) < 0)
            return cli_usage_error("analyze", "--grid-shape: '%s' is not square or hex", arg);
        return EXIT_OK;
    case 6:
        g->band_m = strtod(arg, &end);
        if (*end || !(g->band_m > 0 && g->band_m <= 1e7))
            return cli_usage_error("analyze", "--grid-band-m: '%s' is not metres above 0", arg);
        return EXIT_OK;
    case 7: {
        long k = strtol(arg, &end, 10);
        if (*end || k < 1 || k > MAX_KNN)
            return cli_usage_error("analyze", "--grid-knn: '%s' is not a number from 1 to %d", arg,
                                   MAX_KNN);
        g->knn = (size_t)k;
        return EXIT_OK;
    }
    }
    return EXIT_USAGE;
}

int analyze_grid_wanted(const analyze_grid *g)
{
    return g->hotspots || g->hotspots_csv || g->emerging || g->emerging_csv;
}

/* ---- the cells and their complaints ------------------------------------------- */

typedef struct grid_run {
    const analyze_grid *o;
    const dataset *d;
    pm_cellgrid *cg;
    size_t n;                /* cells */
    pm_weights *w;
    double band_m;           /* 0 with knn */
    /* the complaints counted, in batch order: their cell and period */
    size_t m;
    size_t *cell;
    int64_t *week;
    size_t outside;          /* passing complaints in no cell of the study area */
    double *count;           /* per cell over the whole range */
    pm_gistar *gi;
    analyze_emerging em;
} grid_run;

static void grid_run_free(grid_run *r)
{
    pm_cellgrid_free(r->cg);
    pm_weights_free(r->w);
    pm_free(r->cell);
    pm_free(r->week);
    pm_free(r->count);
    pm_gistar_free(r->gi);
    analyze_emerging_free(&r->em);
}

static int grid_weights(pm_ctx *ctx, grid_run *r)
{
    const double *x = pm_cellgrid_x(r->cg), *y = pm_cellgrid_y(r->cg);
    if (r->o->knn)
        return pm_weights_knn(ctx, x, y, r->n, r->o->knn, &r->w);
    double ring = pm_cellgrid_shape(r->cg) == PM_CELL_HEX ? pm_cellgrid_spacing_m(r->cg)
                                                          : sqrt(2.0) * pm_cellgrid_cell_m(r->cg);
    r->band_m = r->o->band_m > 0 ? r->o->band_m : ring * BAND_MARGIN;
    return pm_weights_distance_band(ctx, x, y, r->n, r->band_m, &r->w);
}

/* The complaints that pass the filter, their cells and weeks; counts. */
static int grid_complaints(pm_ctx *ctx, grid_run *r, const layer_filters *lf)
{
    const pm_complaints *cs = r->d->run.cs;
    uint8_t *pass = NULL;
    size_t np = 0;
    int rc = pm_heat_complaints_pass(ctx, cs, r->d->run.pl, &lf->heat, r->d->utc_offset_s, &pass, &np);
    double *x = NULL, *y = NULL;
    if (!rc) {
        x = pm_calloc(np ? np : 1, sizeof *x), y = pm_calloc(np ? np : 1, sizeof *y);
        r->cell = pm_calloc(np ? np : 1, sizeof *r->cell);
        r->week = pm_calloc(np ? np : 1, sizeof *r->week);
        r->count = pm_calloc(r->n, sizeof *r->count);
        if (!x || !y || !r->cell || !r->week || !r->count)
            rc = PM_ERR(ctx, PM_E_NOMEM, "out of memory for %zu complaints on the grid", np);
    }
    pm_coord_column lon = pm_complaints_lon(cs), lat = pm_complaints_lat(cs);
    pm_created_column created = pm_complaints_created(cs);
    size_t k = 0;
    for (size_t i = 0; !rc && i < pm_complaints_count(cs); i++)
        if (pass[i])
            x[k] = pm_coord_at(lon, i), y[k] = pm_coord_at(lat, i),
            r->week[k++] = (int64_t)i;   /* the index, for now */
    double clon, clat;
    pm_cellgrid_centre(r->cg, &clon, &clat);
    if (!rc)
        rc = pm_lonlat_to_laea(ctx, x, y, np, clon, clat, x, y);
    const pm_cube_opts *co = pm_cube_options(r->d->cube);
    for (size_t t = 0; !rc && t < np; t++) {
        size_t c;
        if (!pm_cellgrid_find_xy(r->cg, x[t], y[t], &c)) {
            r->outside++;
            continue;
        }
        r->count[c] += 1;
        r->cell[r->m] = c;
        r->week[r->m++] =
            pm_period_of(co->period, pm_created_at(created, r->week[t]), co->utc_offset_s);
    }
    pm_free(pass);
    pm_free(x);
    pm_free(y);
    return rc;
}

/* One week's counts per cell (analyze_week_fn). */
static int grid_week_values(pm_ctx *ctx, void *user, int64_t week, double *v)
{
    (void)ctx;
    const grid_run *r = user;
    memset(v, 0, r->n * sizeof *v);
    for (size_t k = 0; k < r->m; k++)
        if (r->week[k] == week)
            v[r->cell[k]] += 1;
    return PM_OK;
}

/* ---- writing -------------------------------------------------------------------- */

/* The properties of cell i: its place, then what the table adds. */
static json_t *cell_props(const grid_run *r, size_t i, int emerging)
{
    const pm_districts *ds = r->d->run.ds;
    size_t di = pm_cellgrid_district(r->cg, i);
    int32_t col, row;
    pm_cellgrid_index(r->cg, i, &col, &row);
    json_t *p = json_pack("{s:I, s:i, s:i, s:s, s:s, s:o}", "cell", (json_int_t)i, "col", (int)col,
                          "row", (int)row, "district_id", pm_district_id(ds, di), "district_name",
                          pm_district_name(ds, di), "count", json_integer((json_int_t)r->count[i]));
    if (p && emerging && analyze_emerging_props(&r->em, i, p) != 0) {
        json_decref(p);
        return NULL;
    }
    if (p && !emerging) {
        const pm_gistar *g = r->gi;
        json_t *add = json_pack("{s:o, s:o, s:o, s:i}", "gi_z", analyze_num(g->z[i]), "gi_p",
                                analyze_num(g->p[i]), "gi_p_fdr", analyze_num(g->p_fdr[i]), "gi_bin",
                                (int)g->bin[i]);
        int bad = !add || json_object_update(p, add) != 0;
        json_decref(add);
        if (bad) {
            json_decref(p);
            return NULL;
        }
    }
    return p;
}

/* A GeoJSON polygon of v corners (closed here). */
static json_t *polygon(const double *lon, const double *lat, size_t v)
{
    json_t *ring = json_array();
    for (size_t c = 0; ring && c <= v; c++) {
        json_t *pt = json_pack("[f, f]", lon[c % v], lat[c % v]);
        if (!pt || json_array_append_new(ring, pt) != 0) {
            json_decref(ring);
            return NULL;
        }
    }
    return ring ? json_pack("{s:s, s:[o]}", "type", "Polygon", "coordinates", ring) : NULL;
}

typedef struct grid_out {
    pm_outfile *geo;
    analyze_csv *csv;
    const char *geo_path, *csv_path;
    size_t written;
} grid_out;

static int out_open(pm_ctx *ctx, grid_out *go, const json_t *first)
{
    int rc = go->geo_path ? pm_outfile_open(ctx, go->geo_path, &go->geo) : PM_OK;
    if (!rc && go->geo)
        fputs("{\"type\":\"FeatureCollection\",\"features\":[\n", pm_outfile_stream(go->geo));
    if (!rc && go->csv_path) {
        json_t *cols = json_deep_copy(first);
        int bad = !cols || json_object_update_new(cols, json_pack("{s:f, s:f}", "lon", 0.0, "lat", 0.0));
        rc = bad ? PM_ERR(ctx, PM_E_NOMEM, "%s: out of memory", go->csv_path)
                 : analyze_csv_open(ctx, go->csv_path, cols, &go->csv);
        json_decref(cols);
    }
    return rc;
}

/* Cell i (props p, centre and corners) into the open outputs. */
static int out_cell(pm_ctx *ctx, grid_out *go, size_t i, json_t *p, double clon, double clat,
                    const double *lon, const double *lat, size_t v)
{
    if (go->geo) {
        json_t *geom = polygon(lon, lat, v);
        json_t *f = geom ? json_pack("{s:s, s:I, s:o, s:O}", "type", "Feature", "id", (json_int_t)i,
                                     "geometry", geom, "properties", p)
                         : NULL;
        FILE *s = pm_outfile_stream(go->geo);
        if (go->written)
            fputs(",\n", s);
        int bad = !f || json_dumpf(f, s, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(10)) != 0;
        json_decref(f);
        if (bad)
            return PM_ERR(ctx, PM_E_NOMEM, "%s: cell %zu: cannot write", go->geo_path, i);
    }
    if (go->csv) {
        json_t *lonlat = json_pack("{s:f, s:f}", "lon", round(clon * 1e7) / 1e7, "lat",
                                   round(clat * 1e7) / 1e7);
        if (!lonlat || json_object_update(p, lonlat) != 0) {
            json_decref(lonlat);
            return PM_ERR(ctx, PM_E_NOMEM, "%s: out of memory", go->csv_path);
        }
        json_decref(lonlat);
        analyze_csv_row(go->csv, p);
    }
    go->written++;
    return PM_OK;
}

static int out_close(pm_ctx *ctx, grid_out *go, int rc)
{
    if (go->geo && !rc)
        fputs("\n]}\n", pm_outfile_stream(go->geo));
    int rc2 = !go->geo ? PM_OK : rc ? (pm_outfile_abort(go->geo), PM_OK) : pm_outfile_commit(ctx, go->geo);
    int rc3 = !go->csv ? PM_OK : rc || rc2 ? (analyze_csv_abort(go->csv), PM_OK)
                                           : analyze_csv_commit(ctx, go->csv);
    return rc ? rc : rc2 ? rc2 : rc3;
}

/* The table of every cell (Gi* or emerging columns) as GeoJSON and/or CSV. */
static int write_cells(pm_ctx *ctx, const grid_run *r, int emerging, const char *geo_path,
                       const char *csv_path)
{
    if (!geo_path && !csv_path)
        return PM_OK;
    size_t v = pm_cellgrid_vertices(r->cg);
    grid_out go = {.geo_path = geo_path, .csv_path = csv_path};
    double *lon = pm_calloc(BATCH * v, sizeof *lon), *lat = pm_calloc(BATCH * v, sizeof *lat);
    double *clon = pm_calloc(BATCH, sizeof *clon), *clat = pm_calloc(BATCH, sizeof *clat);
    json_t *first = cell_props(r, 0, emerging);
    int rc = lon && lat && clon && clat && first ? out_open(ctx, &go, first)
                                                 : PM_ERR(ctx, PM_E_NOMEM, "out of memory writing cells");
    json_decref(first);
    for (size_t i0 = 0; !rc && i0 < r->n; i0 += BATCH) {
        size_t m = r->n - i0 < BATCH ? r->n - i0 : BATCH;
        rc = pm_cellgrid_lonlat(ctx, r->cg, i0, m, 1, lon, lat);
        if (!rc)
            rc = pm_cellgrid_lonlat(ctx, r->cg, i0, m, 0, clon, clat);
        for (size_t k = 0; !rc && k < m; k++) {
            json_t *p = cell_props(r, i0 + k, emerging);
            rc = p ? out_cell(ctx, &go, i0 + k, p, clon[k], clat[k], lon + k * v, lat + k * v, v)
                   : PM_ERR(ctx, PM_E_NOMEM, "out of memory writing cells");
            json_decref(p);
        }
    }
    pm_free(lon);
    pm_free(lat);
    pm_free(clon);
    pm_free(clat);
    return out_close(ctx, &go, rc);
}

/* ---- the run --------------------------------------------------------------------- */

static void report(const grid_run *r, int fdr)
{
    fprintf(stderr, "problemap: grid of %zu %s cells of %g m, neighbours ", r->n,
            pm_cell_shape_name(pm_cellgrid_shape(r->cg)), pm_cellgrid_cell_m(r->cg));
    if (r->o->knn)
        fprintf(stderr, "the %zu nearest", r->o->knn);
    else
        fprintf(stderr, "within %.1f m", r->band_m);
    fprintf(stderr, ": %zu complaints in the cells, %zu outside the study area\n", r->m, r->outside);
    if (r->gi) {
        size_t hot = 0, cold = 0;
        for (size_t i = 0; i < r->n; i++)
            hot += r->gi->bin[i] >= 2, cold += r->gi->bin[i] <= -2;
        fprintf(stderr, "problemap: grid hot spots (Gi*, 95 %%%s): %zu hot, %zu cold of %zu cells; "
                        "%zu without neighbours\n", fdr ? ", FDR" : "", hot, cold, r->n,
                r->gi->n_island);
    }
    if (r->em.e) {
        fprintf(stderr, "problemap: grid emerging hot spots over %zu weeks:", r->em.n_steps);
        for (int c = 1; c < PM_EHS_CLASSES; c++)
            if (r->em.e->count[c])
                fprintf(stderr, " %s %zu,", pm_ehs_class_name((pm_ehs_class)c), r->em.e->count[c]);
        fprintf(stderr, " none %zu\n", r->em.e->count[PM_EHS_NONE]);
    }
}

int analyze_grid_run(pm_ctx *ctx, const analyze_grid *g, const dataset *d, const layer_filters *lf,
                     int quiet)
{
    grid_run r = {.o = g, .d = d};
    pm_cellgrid_opts co = {(pm_cell_shape)g->shape, g->cell_m, d->centre_lon, d->centre_lat, 0};
    int rc = pm_cellgrid_new(ctx, d->run.ds, d->run.loc, &co, &r.cg);
    if (!rc) {
        r.n = pm_cellgrid_count(r.cg);
        rc = grid_weights(ctx, &r);
    }
    if (!rc)
        rc = grid_complaints(ctx, &r, lf);
    pm_gistar_opts go = {g->fdr, 0};
    if (!rc && (g->hotspots || g->hotspots_csv) &&
        !(rc = pm_gistar_compute(ctx, r.w, r.count, r.n, &go, &r.gi)))
        rc = write_cells(ctx, &r, 0, g->hotspots, g->hotspots_csv);
    if (!rc && (g->emerging || g->emerging_csv) &&
        !(rc = analyze_emerging_compute(ctx, d, r.w, r.n, &lf->cube, g->weeks, g->fdr,
                                        grid_week_values, &r, &r.em)))
        rc = write_cells(ctx, &r, 1, g->emerging, g->emerging_csv);
    if (!rc && !quiet)
        report(&r, g->fdr);
    grid_run_free(&r);
    return rc;
}
