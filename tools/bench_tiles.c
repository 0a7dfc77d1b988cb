/* bench_tiles.c — `make bench`'s heat-tile timer: uncached 256-px heat
 * tiles (density + colour + PNG) at zooms 6, 10 and 14, as the server's
 * renderer draws them, without HTTP and without the cache.
 *
 * Reads the boundaries and complaints through the library as the program
 * does, places them (raster fast path), builds the points and one heat
 * layer (quartic kernel, radius RADIUS_M metres on the ground, the layer's
 * own scale), then draws TILES distinct tiles per zoom: the tiles of
 * complaints picked at random (seeded), so the tiles are where the data
 * are — the tiles people look at, and the expensive ones.  Prints
 *   layer_new SECONDS
 *   zZ tiles N p50_ms X p99_ms Y max_ms M tiles_per_s T bytes_mean B
 * for each zoom (first_ms: the zoom's first tile, drawn once before the
 * timed ones, which builds the pyramid level the zoom needs).
 *   bench_tiles BOUNDARIES.geojson ID_FIELD|- COMPLAINTS.csv TOPICS.json RADIUS_M TILES */
#include "bench_load.h"
#include "../render/heat_impl.h"
#include "../engine/pm_alloc.h"

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

static int time_zoom(pm_ctx *ctx, const pm_heat_layer *l, const pm_points *p, int z, size_t want)
{
    uint64_t *tiles = calloc(want, sizeof *tiles);
    double *ms = calloc(want, sizeof *ms);
    if (!tiles || !ms)
        return 1;
    size_t n = pick_tiles(p, z, want, tiles), bytes = 0;
    double total = 0, first = 0;
    for (size_t k = 0; k < n; k++) {
        if (k == 0) {   /* the first tile of a zoom builds the pyramid level it needs */
            uint8_t *png = NULL;
            size_t len = 0;
            int empty = 0;
            double s = now();
            if (pm_heat_tile_png(ctx, l, z, (uint32_t)(tiles[k] >> 32), (uint32_t)tiles[k], 256, &png,
                                 &len, &empty))
                return fail(ctx, "tile");
            first = (now() - s) * 1e3;
            pm_free(png);
        }
        uint8_t *png = NULL;
        size_t len = 0;
        int empty = 0;
        double s = now();
        if (pm_heat_tile_png(ctx, l, z, (uint32_t)(tiles[k] >> 32), (uint32_t)tiles[k], 256, &png,
                             &len, &empty))
            return fail(ctx, "tile");
        ms[k] = (now() - s) * 1e3;
        total += ms[k];
        bytes += len;
        pm_free(png);
    }
    qsort(ms, n, sizeof *ms, bench_cmp_double);
    if (n)
        printf("z%d tiles %zu p50_ms %.3f p99_ms %.3f max_ms %.3f tiles_per_s %.0f bytes_mean %zu "
               "first_ms %.3f\n", z, n, ms[n / 2], ms[(size_t)((double)(n - 1) * 0.99 + 0.5)], ms[n - 1],
               1e3 * (double)n / total, bytes / n, first);
    free(tiles);
    free(ms);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: bench_tiles BOUNDARIES ID_FIELD|- COMPLAINTS.csv TOPICS.json RADIUS_M TILES\n");
        return 2;
    }
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
    static const int zooms[] = {6, 10, 14};
    for (size_t k = 0; !rc && k < sizeof zooms / sizeof *zooms; k++)
        rc = time_zoom(ctx, l, pts, zooms[k], want);
    pm_heat_layer_free(l);
    pm_points_free(pts);
    pm_placed_free(pl);
    pm_locator_free(ctx, loc);
    bench_data_free(&b);
    return rc;
}
