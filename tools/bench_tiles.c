/* bench_tiles.c — `make bench`'s heat-tile timer: uncached 256-px heat
 * tiles (density + colour + PNG) at zooms 6, 8, 10, 12 and 14, as the server's
 * renderer draws them, without HTTP and without the cache.
 *
 * Reads the boundaries and complaints through the library as the program
 * does, places them (raster fast path), builds the points and one heat
 * layer (quartic kernel, radius RADIUS_M metres on the ground, the layer's
 * own scale), then draws TILES tiles per zoom: up to TILES distinct tiles
 * of complaints picked at random (seeded), so the tiles are where the
 * data are — the tiles people look at, and the expensive ones — cycled
 * through when a zoom has fewer (z6 over one region has a handful), so
 * that p99 is over TILES draws.  Prints
 *   layer_new SECONDS
 *   zZ tiles N p50_ms X p99_ms Y max_ms M tiles_per_s T bytes_mean B first_ms F draws D
 * for each zoom (N distinct tiles, D draws; first_ms: the zoom's first
 * tile, drawn once before the timed ones, which builds the pyramid levels
 * the zoom needs).  With PM_BENCH_CHECK=K in the environment it times
 * nothing and compares the first K tiles of each zoom with the exact sum
 * instead (check_zoom()).
 *   bench_tiles BOUNDARIES.geojson ID_FIELD|- COMPLAINTS.csv TOPICS.json RADIUS_M TILES */
#include "bench_load.h"
#include "../render/heat_impl.h"
#include "../engine/pm_alloc.h"

#include <math.h>
#include <stdlib.h>

#define now bench_now

static int fail(pm_ctx *ctx, const char *what) { return bench_fail("bench_tiles", ctx, what); }

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Distinct tiles (x << 32 | y) of zoom z under up to `want` points picked
 * with a fixed LCG; returns how many. */
static size_t pick_tiles(const pm_points *p, int z, size_t want, uint64_t *tiles)
{
    uint64_t s = 42;
    size_t n = 0;
    double side = 2 * PM_HEAT_HALF_WORLD_M / (double)(1u << z);
    for (size_t tries = 0; n < want && tries < want * 50 && p->n; tries++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        size_t i = (size_t)((s >> 17) % p->n);
        uint64_t x = (uint64_t)((p->x_m[i] + PM_HEAT_HALF_WORLD_M) / side);
        uint64_t y = (uint64_t)((PM_HEAT_HALF_WORLD_M - p->y_m[i]) / side);
        uint64_t t = x << 32 | y;
        int seen = 0;
        for (size_t k = 0; k < n && !seen; k++)
            seen = tiles[k] == t;
        if (!seen)
            tiles[n++] = t;
    }
    qsort(tiles, n, sizeof *tiles, cmp_u64);
    return n;
}

static int draw(pm_ctx *ctx, const pm_heat_layer *l, int z, uint64_t t, double *ms, size_t *len)
{
    uint8_t *png = NULL;
    int empty = 0;
    double s = now();
    if (pm_heat_tile_png(ctx, l, z, (uint32_t)(t >> 32), (uint32_t)t, 256, &png, len, &empty))
        return fail(ctx, "tile");
    *ms = (now() - s) * 1e3;
    pm_free(png);
    return 0;
}

/* Times `want` draws of the zoom's tiles (cycling through them when there
 * are fewer distinct tiles than that). */
static int time_zoom(pm_ctx *ctx, const pm_heat_layer *l, const pm_points *p, int z, size_t want)
{
    uint64_t *tiles = calloc(want, sizeof *tiles);
    double *ms = calloc(want, sizeof *ms);
    if (!tiles || !ms)
        return 1;
    size_t n = pick_tiles(p, z, want, tiles), bytes = 0, len = 0;
    double total = 0, first = 0;
    /* the first tile of a zoom builds the pyramid levels it needs */
    if (n && draw(ctx, l, z, tiles[0], &first, &len))
        return 1;
    for (size_t k = 0; n && k < want; k++) {
        if (draw(ctx, l, z, tiles[k % n], &ms[k], &len))
            return 1;
        total += ms[k];
        bytes += len;
    }
    qsort(ms, want, sizeof *ms, bench_cmp_double);
    if (n)
        printf("z%d tiles %zu p50_ms %.3f p99_ms %.3f max_ms %.3f tiles_per_s %.0f bytes_mean %zu "
               "first_ms %.3f draws %zu\n", z, n, ms[want / 2], ms[(size_t)((double)(want - 1) * 0.99 + 0.5)],
               ms[want - 1], 1e3 * (double)want / total, bytes / want, first, want);
    free(tiles);
    free(ms);
    return 0;
}

/* PM_BENCH_CHECK=K: the densities of the first K tiles of each zoom
 * against the exact sum (a layer that never uses the pyramid, same
 * scale): the largest relative error and colour-entry difference over
 * the pixels with a colour (density >= v_max/1000).  Costly at high zooms
 * on many points: the exact sums are what the pyramid avoids. */
static int check_zoom(pm_ctx *ctx, const pm_heat_layer *l, const pm_points *p, double radius,
                      int z, size_t k)
{
    pm_heat_opts o = {.kernel = PM_KERNEL_QUARTIC, .radius_m = radius,
                      .ramp = PM_RAMP_INFERNO, .v_max = pm_heat_layer_vmax(l)};
    pm_heat_layer *ex = NULL;
    uint64_t *tiles = calloc(k, sizeof *tiles);
    float *a = malloc(256 * 256 * sizeof *a), *b = malloc(256 * 256 * sizeof *b);
    if (!tiles || !a || !b || pm_heat_layer_new_exact(ctx, p, NULL, &o, &ex))
        return fail(ctx, "check");
    size_t n = pick_tiles(p, z, k, tiles), px = 0;
    double rel = 0, entries = 0, lo = o.v_max / 1000;
    for (size_t i = 0; i < n; i++) {
        uint32_t x = (uint32_t)(tiles[i] >> 32), y = (uint32_t)tiles[i];
        if (pm_heat_tile_density(ctx, l, z, x, y, 256, a) || pm_heat_tile_density(ctx, ex, z, x, y, 256, b))
            return fail(ctx, "check tile");
        for (size_t q = 0; q < 256 * 256; q++) {
            if (b[q] < lo)
                continue;
            px++;
            rel = fmax(rel, fabs(a[q] - b[q]) / b[q]);
            /* entries of the colour table, both ends clamped as colourize() does */
            entries = fmax(entries, fabs(log(fmin(fmax(a[q], lo), o.v_max) / fmin(b[q], o.v_max))) *
                                        255 / log(1000.0));
        }
    }
    printf("z%d check tiles %zu pixels %zu max_rel %.4f max_entries %.2f\n", z, n, px, rel, entries);
    pm_heat_layer_free(ex);
    free(tiles);
    free(a);
    free(b);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: bench_tiles BOUNDARIES ID_FIELD|- COMPLAINTS.csv TOPICS.json RADIUS_M TILES\n");
        return 2;
    }
    pm_alloc_keep_freed();   /* as problemap's main does */
    double radius = atof(argv[5]);
    size_t want = (size_t)atol(argv[6]);
    bench_data b;
    if (radius <= 0 || want < 1) {
        fprintf(stderr, "bench_tiles: RADIUS_M and TILES must be positive\n");
        return 2;
    }
    if (bench_load("bench_tiles", argv[1], argv[2], argv[3], argv[4], &b))
        return 1;
    pm_ctx *ctx = b.ctx;
    const pm_districts *ds = b.ds;
    const pm_complaints *cs = b.cs;
    pm_locator *loc = NULL;
    pm_placed *pl = NULL;
    pm_points *pts = NULL;
    pm_heat_layer *l = NULL;
    if (pm_locator_new(ctx, ds, -1, &loc) || pm_locate_batch(ctx, loc, cs, 0, &pl))
        return fail(ctx, "locate");
    if (pm_points_new(ctx, cs, pl, PM_GRID_WEBMERC, 0, &pts))
        return fail(ctx, "points");
    pm_heat_opts o = {.kernel = PM_KERNEL_QUARTIC, .radius_m = radius, .ramp = PM_RAMP_INFERNO};
    double s = now();
    if (pm_heat_layer_new(ctx, pts, NULL, &o, &l))
        return fail(ctx, "layer");
    printf("points %zu\nlayer_new %.4f\n", pm_points_count(pts), now() - s);
    int rc = 0;
    static const int zooms[] = {6, 8, 10, 12, 14};
    const char *check = getenv("PM_BENCH_CHECK");
    for (size_t k = 0; !rc && k < sizeof zooms / sizeof *zooms; k++)
        rc = check ? check_zoom(ctx, l, pts, radius, zooms[k], (size_t)atol(check))
                   : time_zoom(ctx, l, pts, zooms[k], want);
    pm_heat_layer_free(l);
    pm_points_free(pts);
    pm_placed_free(pl);
    pm_locator_free(ctx, loc);
    bench_data_free(&b);
    return rc;
}
