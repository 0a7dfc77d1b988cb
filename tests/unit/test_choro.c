/* test_choro.c — choropleth and grid tiles (render/choro.c, cells.c,
 * canvas.c).
 *
 * Choropleth: a scene of four districts near Kemerovo (A and B side by
 * side, C below them with a hole filled by the enclave D; C has no value),
 * positions computed here with PROJ.  A district's interior pixel has its
 * class colour; C is grey and hatched; the A|B border is dark; a tile off
 * the region is empty; a 2×2 block of tiles equals the parent's 512-px
 * tile wherever the fill is flat; 900 small districts are all found
 * through the index; bad arguments are PM_E_USAGE.  A layer with given
 * classes (the Gi* bins: A hot at 99 %, B cold at 95 %, D not significant,
 * C undefined) colours each district by its bin, hatches C, and keeps
 * failing cleanly.
 *
 * Grid: counts per cell against a brute-force count over the complaints'
 * own lon/lat, projected here (independently) to the LAEA plane, with a
 * filter; cells are the LAEA squares (points at a cell's four inner
 * corners are counted together) and equal-area (geodesic area of the
 * corners within 0.1 % of cell²); a cell's pixel has its class colour at
 * 80 % alpha; the 2×2 block equals the 512-px tile.
 *
 * Golden PNGs of one tile of each kind (PM_REGEN_GOLDEN=1 rewrites them),
 * and every step under allocation failures.  An optional argument is a
 * cmocka test filter.  Runs from the repository root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../engine/pm_alloc.h"
#include "../../engine/pm_complaint.h"
#include "../../engine/pm_ctx.h"
#include "../../engine/pm_locate.h"
#include "../../render/pm_choro.h"
#include "golden.h"

#include <geodesic.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define E_M 20037508.342789244
#define CHORO_GOLDEN "tests/fixtures/choro/choropleth_z8.png"
#define GRID_GOLDEN "tests/fixtures/choro/grid_z10.png"
#define CENTRE_LON 86.0
#define CENTRE_LAT 55.0

/* ---- positions on the tile grid, computed here ----------------------------------- */

static PJ *pj_between(pm_ctx *ctx, const char *from, const char *to)
{
    PJ *op = proj_create_crs_to_crs(pm_ctx_proj(ctx), from, to, NULL);
    assert_non_null(op);
    PJ *pj = proj_normalize_for_visualization(pm_ctx_proj(ctx), op);
    proj_destroy(op);
    assert_non_null(pj);
    return pj;
}

typedef struct spot {
    int z;
    uint32_t tx, ty;   /* the tile */
    int px, py;        /* the pixel of a 256-px tile (or 512 when asked) */
} spot;

static spot spot_of(pm_ctx *ctx, double lon, double lat, int z, int size)
{
    PJ *pj = pj_between(ctx, "EPSG:4326", "EPSG:3857");
    PJ_COORD c = proj_trans(pj, PJ_FWD, proj_coord(lon, lat, 0, 0));
    proj_destroy(pj);
    double w = ldexp(2 * E_M, -z);
    spot s = {z, (uint32_t)floor((c.xy.x + E_M) / w), (uint32_t)floor((E_M - c.xy.y) / w), 0, 0};
    s.px = (int)floor((c.xy.x - (-E_M + s.tx * w)) * size / w);
    s.py = (int)floor(((E_M - s.ty * w) - c.xy.y) * size / w);
    return s;
}

static const uint8_t *pixel(const golden_image *im, int x, int y)
{
    assert_true(x >= 0 && y >= 0 && x < im->w && y < im->h);
    return im->rgba + 4 * ((size_t)y * im->w + x);
}

static void assert_rgb(const uint8_t *p, unsigned rgb, int alpha, int tol)
{
    int want[4] = {(int)(rgb >> 16) & 255, (int)(rgb >> 8) & 255, (int)rgb & 255, alpha};
    for (int c = 0; c < 4; c++)
        if (abs(p[c] - want[c]) > tol)
            fail_msg("pixel %02x%02x%02x/%d, expected %06x/%d", p[0], p[1], p[2], p[3], rgb, alpha);
}

/* ---- the choropleth scene ----------------------------------------------------------- */

typedef struct scene {
    pm_ctx *ctx;
    pm_districts *ds;
    pm_choro *choro;
    pm_choro_layer *layer;
} scene;

static const char *const SCENE_WKT[4] = {
    "POLYGON((86 55, 87 55, 87 56, 86 56, 86 55))",
    "POLYGON((87 55, 88 55, 88 56, 87 56, 87 55))",
    "POLYGON((86 54, 88 54, 88 55, 86 55, 86 54), "
    "(86.8 54.4, 87.2 54.4, 87.2 54.6, 86.8 54.6, 86.8 54.4))",
    "POLYGON((86.8 54.4, 87.2 54.4, 87.2 54.6, 86.8 54.6, 86.8 54.4))",
};
/* Classes of {10, 50, 100}: three, YlOrRd 3. */
#define A_RGB 0xffeda0u
#define B_RGB 0xfeb24cu
#define D_RGB 0xf03b20u

static void add_district(pm_ctx *ctx, pm_districts *ds, const char *id, const char *wkt)
{
    GEOSContextHandle_t h = pm_ctx_geos(ctx);
    GEOSWKTReader *r = GEOSWKTReader_create_r(h);
    GEOSGeometry *g = GEOSWKTReader_read_r(h, r, wkt);
    GEOSWKTReader_destroy_r(h, r);
    assert_non_null(g);
    assert_int_equal(pm_districts_add(ctx, ds, id, id, NULL, NAN, g), PM_OK);
}

/* District i's id: "A", "B", ... for the scene, "S0000" ... beyond. */
static void id_of(size_t i, char *buf, size_t cap)
{
    if (i < 26)
        snprintf(buf, cap, "%c", 'A' + (int)i);
    else
        snprintf(buf, cap, "S%04zu", i);
}

static pm_districts *districts_of(pm_ctx *ctx, const char *const *wkt, size_t n)
{
    pm_districts *ds = pm_districts_new(ctx);
    assert_non_null(ds);
    for (size_t i = 0; i < n; i++) {
        char id[16];
        id_of(i, id, sizeof id);
        add_district(ctx, ds, id, wkt[i]);
    }
    assert_int_equal(pm_districts_freeze(ctx, ds), PM_OK);
    return ds;
}

static void scene_open(scene *s)
{
    static const double values[4] = {10, 50, NAN, 100};
    memset(s, 0, sizeof *s);
    s->ctx = pm_ctx_new();
    assert_non_null(s->ctx);
    s->ds = districts_of(s->ctx, SCENE_WKT, 4);
    assert_int_equal(pm_choro_new(s->ctx, s->ds, PM_GRID_WEBMERC, &s->choro), PM_OK);
    assert_int_equal(pm_choro_layer_new(s->ctx, s->choro, NULL, values, 4, &s->layer), PM_OK);
}

static void scene_close(scene *s)
{
    pm_choro_layer_free(s->layer);
    pm_choro_free(s->choro);
    pm_districts_free(s->ctx, s->ds);
    pm_ctx_free(s->ctx);
}

static uint8_t *choro_png(scene *s, int z, uint32_t x, uint32_t y, int size, size_t *len,
                          int *empty)
{
    uint8_t *png = NULL;
    int rc = pm_choro_tile_png(s->ctx, s->layer, z, x, y, size, &png, len, empty);
    if (rc)
        fail_msg("choropleth tile %d/%u/%u: %s", z, x, y, pm_ctx_errmsg(s->ctx));
    return png;
}

static golden_image choro_image(scene *s, int z, uint32_t x, uint32_t y, int size, int *empty)
{
    size_t len;
    uint8_t *png = choro_png(s, z, x, y, size, &len, empty);
    golden_image im = golden_decode(png, len);
    pm_free(png);
    assert_int_equal(im.w, size);
    return im;
}

/* The pixel at lon/lat on its zoom-z tile. */
static golden_image image_at(scene *s, double lon, double lat, int z, spot *sp)
{
    *sp = spot_of(s->ctx, lon, lat, z, 256);
    int empty;
    golden_image im = choro_image(s, z, sp->tx, sp->ty, 256, &empty);
    assert_int_equal(empty, 0);
    return im;
}

/* ---- choropleth tests --------------------------------------------------------------- */

static void classes_are_those_of_the_values(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    const pm_classes *c = pm_choro_layer_classes(s.layer);
    assert_int_equal(c->n, 3);
    assert_true(c->has_nodata);
    assert_int_equal(pm_classes_colour(c, 0), A_RGB);
    assert_int_equal(pm_classes_colour(c, 1), B_RGB);
    assert_int_equal(pm_classes_colour(c, 2), D_RGB);
    scene_close(&s);
}

static void interior_pixels_have_their_class_colour(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    const struct { double lon, lat; unsigned rgb; } at[] = {
        {86.5, 55.5, A_RGB}, {87.5, 55.5, B_RGB}, {87.0, 54.5, D_RGB}, {86.2, 55.9, A_RGB}};
    for (size_t k = 0; k < sizeof at / sizeof *at; k++) {
        spot sp;
        golden_image im = image_at(&s, at[k].lon, at[k].lat, 8, &sp);
        assert_rgb(pixel(&im, sp.px, sp.py), at[k].rgb, 255, 0);
        free(im.rgba);
    }
    scene_close(&s);
}

static void no_data_is_grey_and_hatched(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    spot sp;
    golden_image im = image_at(&s, 86.4, 54.25, 8, &sp);
    int grey = 0, hatch = 0, n = 0;
    for (int y = sp.py - 8; y <= sp.py + 8; y++)
        for (int x = sp.px - 8; x <= sp.px + 8; x++, n++) {
            const uint8_t *p = pixel(&im, x, y);
            assert_int_equal(p[3], 255);
            assert_true(p[0] == p[1] && p[1] == p[2]);         /* grey */
            assert_true(p[0] >= 0x9e - 1 && p[0] <= 0xd9);     /* between hatch and fill */
            grey += p[0] == 0xd9;
            hatch += p[0] <= 0xc0;
        }
    assert_true(grey * 10 >= n * 4);   /* mostly the fill ... */
    assert_true(hatch * 20 >= n);      /* ... with lines across it */
    free(im.rgba);
    scene_close(&s);
}

/* Hatching lines run at 45° through the zoom's whole pixel grid: the
 * first column of a tile continues the last column of its west
 * neighbour one row down. */
static void hatching_runs_on_across_tiles(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    spot sp = spot_of(s.ctx, 87.1875 + 1e-6, 54.3, 8, 256);   /* a tile edge inside C */
    assert_true(sp.px <= 1);
    int empty;
    golden_image east = choro_image(&s, 8, sp.tx, sp.ty, 256, &empty);
    golden_image west = choro_image(&s, 8, sp.tx - 1, sp.ty, 256, &empty);
    int lines = 0;
    for (int y = sp.py - 20; y <= sp.py + 20; y++) {
        const uint8_t *e = pixel(&east, 0, y), *w = pixel(&west, 255, y + 1);
        if (abs(e[0] - w[0]) > 2)
            fail_msg("row %d: east tile's first column %d, west tile's last column %d", y, e[0],
                     w[0]);
        lines += e[0] < 0xc8;
    }
    assert_true(lines >= 5);   /* the comparison saw lines, not only the fill */
    free(east.rgba);
    free(west.rgba);
    scene_close(&s);
}

static void borders_are_dark_over_the_fills(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    spot sp;
    golden_image im = image_at(&s, 87.0, 55.5, 8, &sp);
    for (int y = sp.py - 10; y <= sp.py + 10; y++) {
        int darkest = 255;
        for (int x = sp.px - 1; x <= sp.px + 1; x++)
            darkest = pixel(&im, x, y)[0] < darkest ? pixel(&im, x, y)[0] : darkest;
        if (darkest > 200)
            fail_msg("row %d: no dark border pixel near column %d (darkest red %d)", y, sp.px,
                     darkest);
        assert_rgb(pixel(&im, sp.px - 6, y), A_RGB, 255, 0);   /* fills either side */
        assert_rgb(pixel(&im, sp.px + 6, y), B_RGB, 255, 0);
    }
    free(im.rgba);
    scene_close(&s);
}

static void tile_off_the_region_is_empty(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    int empty = 0;
    golden_image im = choro_image(&s, 8, 128, 128, 256, &empty);   /* lon 0, lat 0 */
    assert_int_equal(empty, 1);
    for (size_t p = 0; p < 256 * 256; p++)
        assert_int_equal(im.rgba[4 * p + 3], 0);
    free(im.rgba);
    spot sp = spot_of(s.ctx, 87, 55, 8, 256);
    im = choro_image(&s, 8, sp.tx, sp.ty, 256, &empty);
    assert_int_equal(empty, 0);
    free(im.rgba);
    scene_close(&s);
}

/* The 2×2 block of 256-px tiles at z + 1 under tile z/x/y, stitched. */
typedef golden_image (*tile_fn)(void *user, int z, uint32_t x, uint32_t y, int size);

static golden_image block_of(tile_fn fn, void *user, int z, uint32_t x, uint32_t y)
{
    golden_image b = {512, 512, malloc(512 * 512 * 4)};
    assert_non_null(b.rgba);
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < 2; i++) {
            golden_image t = fn(user, z + 1, 2 * x + i, 2 * y + j, 256);
            for (int row = 0; row < 256; row++)
                memcpy(b.rgba + 4 * ((size_t)(256 * j + row) * 512 + 256 * i),
                       t.rgba + 4 * (size_t)row * 256, 256 * 4);
            free(t.rgba);
        }
    return b;
}

/* Pixel p of im and its neighbours within 2 px all have the same colour,
 * one of flat[0 .. n) (0xRRGGBB, alpha 255) or transparent. */
static int flat_at(const golden_image *im, int x, int y, const unsigned *flat, size_t n)
{
    const uint8_t *p = pixel(im, x, y);
    int ok = p[3] == 0;
    for (size_t k = 0; !ok && k < n; k++)
        ok = p[3] == 255 && p[0] == (flat[k] >> 16 & 255) && p[1] == (flat[k] >> 8 & 255) &&
             p[2] == (flat[k] & 255);
    for (int dy = -2; ok && dy <= 2; dy++)
        for (int dx = -2; ok && dx <= 2; dx++) {
            int xx = x + dx, yy = y + dy;
            if (xx >= 0 && yy >= 0 && xx < im->w && yy < im->h)
                ok = memcmp(pixel(im, xx, yy), p, 4) == 0;
        }
    return ok;
}

/* Where the 512-px tile is flat, the stitched block equals it; returns
 * how many pixels were compared. */
static size_t assert_block_matches(const golden_image *big, const golden_image *block,
                                   const unsigned *flat, size_t n_flat, int tol)
{
    size_t compared = 0;
    for (int y = 0; y < 512; y++)
        for (int x = 0; x < 512; x++) {
            if (!flat_at(big, x, y, flat, n_flat))
                continue;
            compared++;
            const uint8_t *a = pixel(big, x, y), *b = pixel(block, x, y);
            for (int c = 0; c < 4; c++)
                if (abs(a[c] - b[c]) > tol)
                    fail_msg("pixel %d, %d: 512-px tile %02x%02x%02x/%d, 2x2 block "
                             "%02x%02x%02x/%d", x, y, a[0], a[1], a[2], a[3], b[0], b[1], b[2],
                             b[3]);
        }
    return compared;
}

static golden_image choro_tile(void *user, int z, uint32_t x, uint32_t y, int size)
{
    int empty;
    return choro_image(user, z, x, y, size, &empty);
}

static void choropleth_tiles_meet_without_seams(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    const unsigned flat[] = {A_RGB, B_RGB, D_RGB};
    for (int z = 7; z <= 9; z++) {
        spot sp = spot_of(s.ctx, 87.0, 55.0, z, 256);   /* where A, B and C meet */
        golden_image big = choro_tile(&s, z, sp.tx, sp.ty, 512);
        golden_image block = block_of(choro_tile, &s, z, sp.tx, sp.ty);
        size_t n = assert_block_matches(&big, &block, flat, 3, 1);
        if (n * 4 < 512 * 512)
            fail_msg("zoom %d: only %zu flat pixels to compare", z, n);
        free(big.rgba);
        free(block.rgba);
    }
    scene_close(&s);
}

static void many_districts_are_all_found(void **state)
{
    (void)state;
    enum { SIDE = 30, N = SIDE * SIDE };
    char **wkt = malloc(N * sizeof *wkt);
    double *v = malloc(N * sizeof *v);
    assert_true(wkt && v);
    for (int i = 0; i < N; i++) {   /* 0.05° squares */
        double x0 = 86 + 0.05 * (i % SIDE), y0 = 54 + 0.05 * (i / SIDE);
        wkt[i] = malloc(160);
        snprintf(wkt[i], 160, "POLYGON((%.2f %.2f, %.2f %.2f, %.2f %.2f, %.2f %.2f, %.2f %.2f))",
                 x0, y0, x0 + 0.05, y0, x0 + 0.05, y0 + 0.05, x0, y0 + 0.05, x0, y0);
    }
    pm_ctx *ctx = pm_ctx_new();
    pm_districts *ds = districts_of(ctx, (const char *const *)wkt, N);
    size_t *index = malloc(N * sizeof *index);   /* square i is district index[i] */
    assert_non_null(index);
    for (int i = 0; i < N; i++) {
        char id[16];
        id_of((size_t)i, id, sizeof id);
        index[i] = (size_t)pm_districts_find(ds, id);
        v[index[i]] = i % 7;   /* seven classes */
    }
    pm_choro *c = NULL;
    pm_choro_layer *l = NULL;
    assert_int_equal(pm_choro_new(ctx, ds, PM_GRID_WEBMERC, &c), PM_OK);
    assert_int_equal(pm_choro_layer_new(ctx, c, NULL, v, N, &l), PM_OK);
    const pm_classes *cl = pm_choro_layer_classes(l);
    assert_int_equal(cl->n, 7);
    for (int i = 0; i < N; i++) {
        size_t d = index[i];
        double lon = 86 + 0.05 * (i % SIDE) + 0.025, lat = 54 + 0.05 * (i / SIDE) + 0.025;
        spot sp = spot_of(ctx, lon, lat, 11, 256);
        uint8_t *png = NULL;
        size_t len;
        int empty;
        assert_int_equal(pm_choro_tile_png(ctx, l, 11, sp.tx, sp.ty, 256, &png, &len, &empty),
                         PM_OK);
        golden_image im = golden_decode(png, len);
        assert_rgb(pixel(&im, sp.px, sp.py), pm_classes_colour(cl, pm_classes_of(cl, v[d])), 255,
                   0);
        free(im.rgba);
        pm_free(png);
    }
    pm_choro_layer_free(l);
    pm_choro_free(c);
    pm_districts_free(ctx, ds);
    pm_ctx_free(ctx);
    for (int i = 0; i < N; i++)
        free(wkt[i]);
    free(wkt);
    free(index);
    free(v);
}

static void bad_arguments_are_usage_errors(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    uint8_t *png = (uint8_t *)"x";
    size_t len = 1;
    int empty = 0;
    const struct { int z; uint32_t x, y; int size; } bad[] = {
        {25, 0, 0, 256}, {-1, 0, 0, 256}, {3, 8, 0, 256}, {3, 0, 8, 256}, {3, 0, 0, 300}};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        assert_int_equal(pm_choro_tile_png(s.ctx, s.layer, bad[k].z, bad[k].x, bad[k].y,
                                           bad[k].size, &png, &len, &empty),
                         PM_E_USAGE);
        assert_null(png);
        assert_int_equal(len, 0);
    }
    double three[3] = {1, 2, 3};
    pm_choro_layer *l = (pm_choro_layer *)&s;
    assert_int_equal(pm_choro_layer_new(s.ctx, s.choro, NULL, three, 3, &l), PM_E_USAGE);
    assert_null(l);
    assert_non_null(strstr(pm_ctx_errmsg(s.ctx), "3 values for 4 districts"));
    pm_choro *c = (pm_choro *)&s;
    assert_int_equal(pm_choro_new(s.ctx, s.ds, (pm_grid)7, &c), PM_E_USAGE);
    assert_null(c);
    scene_close(&s);
}

/* ---- a layer of given classes: the Gi* bins ---------------------------------------------- */

/* The scene's districts as Gi* bins: A hot 99 %, B cold 95 %, C undefined,
 * D not significant. */
static pm_choro_layer *gi_layer(scene *s)
{
    static const double bins[4] = {3, -2, NAN, 0};
    pm_classes gi;
    pm_classes_gi_bins(&gi);
    pm_choro_layer *l = NULL;
    assert_int_equal(pm_choro_layer_new_classed(s->ctx, s->choro, &gi, bins, 4, &l), PM_OK);
    return l;
}

static void classed_layer_keeps_the_given_classes(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    pm_choro_layer *l = gi_layer(&s);
    const pm_classes *c = pm_choro_layer_classes(l);
    assert_int_equal(c->n, 7);
    assert_true(c->diverging);
    assert_true(c->has_nodata);   /* C */
    assert_true(c->lo[0] == -3 && c->hi[6] == 3);
    pm_choro_layer_free(l);
    scene_close(&s);
}

static void gi_bin_districts_have_the_bin_colour(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    pm_choro_layer_free(s.layer);
    s.layer = gi_layer(&s);
    const struct { double lon, lat; unsigned rgb; } at[] = {
        {86.5, 55.5, 0xb2182bu},    /* A: hot spot, 99 % */
        {87.5, 55.5, 0x67a9cfu},    /* B: cold spot, 95 % */
        {87.0, 54.5, 0xf7f7f7u}};   /* D: not significant */
    for (size_t k = 0; k < sizeof at / sizeof *at; k++) {
        spot sp;
        golden_image im = image_at(&s, at[k].lon, at[k].lat, 8, &sp);
        assert_rgb(pixel(&im, sp.px, sp.py), at[k].rgb, 255, 0);
        free(im.rgba);
    }
    spot sp;   /* C: no Gi*, grey and hatched as the choropleth's no data */
    golden_image im = image_at(&s, 86.4, 54.25, 8, &sp);
    int grey = 0, hatch = 0;
    for (int x = sp.px - 8; x <= sp.px + 8; x++) {
        const uint8_t *p = pixel(&im, x, sp.py);
        assert_true(p[0] == p[1] && p[1] == p[2] && p[3] == 255);
        grey += p[0] == 0xd9;
        hatch += p[0] <= 0xc0;
    }
    assert_true(grey > 0 && hatch > 0);
    free(im.rgba);
    scene_close(&s);
}

static void classed_layer_bad_arguments_are_usage_errors(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    pm_classes gi;
    pm_classes_gi_bins(&gi);
    double bins[4] = {0, 0, 0, 0};
    pm_choro_layer *l = (pm_choro_layer *)&s;
    assert_int_equal(pm_choro_layer_new_classed(s.ctx, s.choro, NULL, bins, 4, &l), PM_E_USAGE);
    assert_null(l);
    l = (pm_choro_layer *)&s;
    assert_int_equal(pm_choro_layer_new_classed(s.ctx, s.choro, &gi, bins, 3, &l), PM_E_USAGE);
    assert_null(l);
    assert_non_null(strstr(pm_ctx_errmsg(s.ctx), "3 values for 4 districts"));
    gi.n = PM_CLASSES_MAX + 1;
    assert_int_equal(pm_choro_layer_new_classed(s.ctx, s.choro, &gi, bins, 4, &l), PM_E_USAGE);
    scene_close(&s);
}

static void classed_layer_survives_alloc_failures(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    pm_classes gi;
    pm_classes_gi_bins(&gi);
    static const double bins[4] = {3, -2, NAN, 0};
    int failed = 0, done = 0;
    for (long n = 1; n < 100 && !done; n++) {
        pm_choro_layer *l = (pm_choro_layer *)&s;
        pm_alloc_fail_at(n);
        int rc = pm_choro_layer_new_classed(s.ctx, s.choro, &gi, bins, 4, &l);
        pm_alloc_fail_at(0);
        if (rc) {
            assert_int_equal(rc, PM_E_NOMEM);
            assert_null(l);
            failed++;
        } else {
            assert_int_equal(pm_choro_layer_classes(l)->n, 7);
            done = 1;
        }
        pm_choro_layer_free(rc ? NULL : l);
    }
    assert_true(done);
    assert_int_equal(failed, 3);   /* the layer, its values, its classes */
    scene_close(&s);
}

/* ---- points for the grid ------------------------------------------------------------- */

static const char *const SOURCES[3] = {"vk", "telegram", "hotline"};

typedef struct rng {
    uint64_t s;
} rng;

static double rng_unit(rng *r)   /* splitmix64 */
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
}

typedef struct cloud {
    pm_ctx *ctx;
    size_t n;
    double *lon, *lat;
    pm_complaints *cs;
    pm_placed *pl;
    pm_points *pts;
} cloud;

/* n points: a dense core around Kemerovo, a wider spread, and extra
 * points appended by the caller (lon/lat arrays have room for n + extra). */
static void cloud_open(cloud *c, size_t n, const double *extra, size_t n_extra)
{
    memset(c, 0, sizeof *c);
    c->ctx = pm_ctx_new();
    c->n = n + n_extra;
    c->lon = malloc(c->n * sizeof *c->lon);
    c->lat = malloc(c->n * sizeof *c->lat);
    assert_true(c->ctx && c->lon && c->lat);
    rng r = {7};
    for (size_t i = 0; i < n; i++) {
        double s = i % 3 ? 0.05 : 0.6;
        c->lon[i] = 86.1 + s * (rng_unit(&r) + rng_unit(&r) - 1) * 1.7;
        c->lat[i] = 55.35 + s * (rng_unit(&r) + rng_unit(&r) - 1);
    }
    for (size_t i = 0; i < n_extra; i++) {
        c->lon[n + i] = extra[2 * i];
        c->lat[n + i] = extra[2 * i + 1];
    }
    c->cs = pm_complaints_new();
    assert_non_null(c->cs);
    for (size_t i = 0; i < c->n; i++) {   /* topic i % 5, source i % 3, day i % 7 */
        char id[32];
        snprintf(id, sizeof id, "c%zu", i);
        pm_complaint m = {.id = id, .created_at = (int64_t)(i % 7) * 86400 + 43200,
                          .answered_at = PM_TIME_NONE, .lon = c->lon[i], .lat = c->lat[i],
                          .topic = (uint16_t)(i % 5), .source = SOURCES[i % 3], .line = i + 1};
        assert_int_equal(pm_complaints_add(c->ctx, c->cs, &m), PM_OK);
    }
    c->pl = pm_calloc(1, sizeof *c->pl);   /* every complaint inside district 0 */
    assert_non_null(c->pl);
    c->pl->n = c->n;
    c->pl->district = pm_calloc(c->n, sizeof *c->pl->district);
    c->pl->placement = pm_calloc(c->n, sizeof *c->pl->placement);
    assert_true(c->pl->district && c->pl->placement);
    assert_int_equal(pm_points_new(c->ctx, c->cs, c->pl, PM_GRID_WEBMERC, 0, &c->pts), PM_OK);
}

static void cloud_close(cloud *c)
{
    pm_points_free(c->pts);
    pm_placed_free(c->pl);
    pm_complaints_free(c->cs);
    pm_ctx_free(c->ctx);
    free(c->lon);
    free(c->lat);
}

static pm_cells *cells_of(cloud *c, const pm_heat_filter *f, double cell_m)
{
    pm_cells *cells = NULL;
    int rc = pm_cells_new(c->ctx, c->pts, f, CENTRE_LON, CENTRE_LAT, cell_m, &cells);
    if (rc)
        fail_msg("pm_cells_new: %s", pm_ctx_errmsg(c->ctx));
    return cells;
}

/* The test's own LAEA plane at the centre, from lon/lat. */
static PJ *laea(pm_ctx *ctx)
{
    char def[200];
    snprintf(def, sizeof def, "+proj=laea +lat_0=%g +lon_0=%g +x_0=0 +y_0=0 +datum=WGS84 "
             "+units=m +no_defs +type=crs", CENTRE_LAT, CENTRE_LON);
    return pj_between(ctx, "EPSG:4326", def);
}

typedef struct cell_key {
    int64_t ix, iy;
} cell_key;

static int cmp_cell_key(const void *a, const void *b)
{
    const cell_key *x = a, *y = b;
    if (x->iy != y->iy)
        return (x->iy > y->iy) - (x->iy < y->iy);
    return (x->ix > y->ix) - (x->ix < y->ix);
}

static cell_key key_at(PJ *pj, double lon, double lat, double cell_m)
{
    PJ_COORD p = proj_trans(pj, PJ_FWD, proj_coord(lon, lat, 0, 0));
    return (cell_key){(int64_t)floor(p.xy.x / cell_m), (int64_t)floor(p.xy.y / cell_m)};
}

/* ---- grid tests --------------------------------------------------------------------- */

static uint32_t batch_source(const pm_complaints *cs, const char *name)
{
    for (uint32_t k = 0; k < pm_complaints_dict_count(cs, PM_DICT_SOURCE); k++)
        if (strcmp(pm_complaints_dict_str(cs, PM_DICT_SOURCE, k), name) == 0)
            return k;
    fail_msg("no source %s", name);
    return 0;
}

static void cells_count_like_brute_force_over_lonlat(void **state)
{
    (void)state;
    cloud c;
    cloud_open(&c, 6000, NULL, 0);
    uint16_t topics[2] = {1, 3};
    uint32_t sources[2] = {batch_source(c.cs, "telegram"), batch_source(c.cs, "vk")};
    pm_heat_filter filters[2] = {{NULL, 0, NULL, 0, 0, 0, 0}, {topics, 2, sources, 2, 1, 2, 5}};
    PJ *pj = laea(c.ctx);
    cell_key *keys = malloc(c.n * sizeof *keys);
    size_t *of = malloc(c.n * sizeof *of);
    assert_true(keys && of);
    for (int k = 0; k < 2; k++) {
        const pm_heat_filter *f = &filters[k];
        pm_cells *cells = cells_of(&c, k ? f : NULL, 2000);
        size_t m = 0;
        for (size_t i = 0; i < c.n; i++) {   /* the filter, written out */
            int day = (int)(i % 7), src = (int)(i % 3), topic = (int)(i % 5);
            if (k && !((topic == 1 || topic == 3) && (src == 1 || src == 0) && day >= 2 &&
                       day <= 5))
                continue;
            of[m] = i;
            keys[m++] = key_at(pj, c.lon[i], c.lat[i], 2000);
        }
        assert_true(m > 100);
        assert_true(fabs(pm_cells_total(cells) - (double)m) < 1e-9);
        cell_key *sorted = malloc(m * sizeof *sorted);
        memcpy(sorted, keys, m * sizeof *keys);
        qsort(sorted, m, sizeof *sorted, cmp_cell_key);
        size_t distinct = 0;
        for (size_t i = 0; i < m; i++)
            distinct += i == 0 || cmp_cell_key(&sorted[i], &sorted[i - 1]) != 0;
        assert_int_equal(pm_cells_count(cells), distinct);
        for (size_t i = 0; i < m; i++) {   /* each point's cell holds the brute-force count */
            size_t lo = 0, hi = m;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (cmp_cell_key(&sorted[mid], &keys[i]) < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            size_t end = lo;
            while (end < m && cmp_cell_key(&sorted[end], &keys[i]) == 0)
                end++;
            double got = pm_cells_at(cells, c.ctx, c.lon[of[i]], c.lat[of[i]]);
            if (got != (double)(end - lo))
                fail_msg("point %zu (%.6f, %.6f): cell count %g, brute force %zu", of[i],
                         c.lon[of[i]], c.lat[of[i]], got, end - lo);
        }
        assert_true(pm_cells_at(cells, c.ctx, 20.0, 60.0) == 0);   /* no point there */
        free(sorted);
        pm_cells_free(cells);
    }
    free(keys);
    free(of);
    proj_destroy(pj);
    cloud_close(&c);
}

/* The lon/lat of LAEA point (x, y). */
static void lonlat_of(PJ *pj, double x, double y, double *lon, double *lat)
{
    PJ_COORD p = proj_trans(pj, PJ_INV, proj_coord(x, y, 0, 0));
    *lon = p.lp.lam;
    *lat = p.lp.phi;
}

static void cells_are_equal_area_squares(void **state)
{
    (void)state;
    const double cell_m = 5000, inset = 1.0;
    /* three cells: near the centre, 1500 km east, 1000 km south-west */
    const double at[3][2] = {{86.3, 55.2}, {110.0, 58.0}, {75.0, 48.0}};
    pm_ctx *ctx = pm_ctx_new();
    PJ *pj = laea(ctx);
    double extra[3 * 4 * 2];
    cell_key keys[3];
    for (int k = 0; k < 3; k++) {
        keys[k] = key_at(pj, at[k][0], at[k][1], cell_m);
        double x0 = keys[k].ix * cell_m, y0 = keys[k].iy * cell_m;
        double cx[4] = {x0 + inset, x0 + cell_m - inset, x0 + cell_m - inset, x0 + inset};
        double cy[4] = {y0 + inset, y0 + inset, y0 + cell_m - inset, y0 + cell_m - inset};
        double lon[4], lat[4];
        for (int v = 0; v < 4; v++) {
            lonlat_of(pj, cx[v], cy[v], &lon[v], &lat[v]);
            extra[2 * (4 * k + v)] = lon[v];
            extra[2 * (4 * k + v) + 1] = lat[v];
        }
        /* the corners themselves: the geodesic area of the cell */
        for (int v = 0; v < 4; v++)
            lonlat_of(pj, v == 1 || v == 2 ? x0 + cell_m : x0, v >= 2 ? y0 + cell_m : y0,
                      &lon[v], &lat[v]);
        struct geod_geodesic g;
        geod_init(&g, 6378137.0, 1 / 298.257223563);
        double area, perimeter;
        geod_polygonarea(&g, lat, lon, 4, &area, &perimeter);
        if (fabs(fabs(area) - cell_m * cell_m) > 1e-3 * cell_m * cell_m)
            fail_msg("cell at %g, %g: geodesic area %.1f m², expected %.1f", at[k][0], at[k][1],
                     fabs(area), cell_m * cell_m);
    }
    proj_destroy(pj);
    pm_ctx_free(ctx);
    cloud c;
    cloud_open(&c, 0, extra, 12);
    pm_cells *cells = cells_of(&c, NULL, cell_m);
    assert_int_equal(pm_cells_count(cells), 3);   /* the four inner corners share one cell */
    for (int k = 0; k < 3; k++)
        assert_true(pm_cells_at(cells, c.ctx, at[k][0], at[k][1]) == 4);
    pm_cells_free(cells);
    cloud_close(&c);
}

static golden_image grid_image(pm_ctx *ctx, const pm_cells *cells, int z, uint32_t x, uint32_t y,
                               int size, int *empty)
{
    uint8_t *png = NULL;
    size_t len;
    int rc = pm_cells_tile_png(ctx, cells, z, x, y, size, &png, &len, empty);
    if (rc)
        fail_msg("grid tile %d/%u/%u: %s", z, x, y, pm_ctx_errmsg(ctx));
    golden_image im = golden_decode(png, len);
    pm_free(png);
    return im;
}

static void cell_pixels_have_their_class_colour(void **state)
{
    (void)state;
    cloud c;
    cloud_open(&c, 6000, NULL, 0);
    pm_cells *cells = cells_of(&c, NULL, 2000);
    const pm_classes *cl = pm_cells_classes(cells);
    assert_true(cl->n >= 3);
    PJ *pj = laea(c.ctx);
    int checked = 0;
    for (size_t i = 0; i < c.n && checked < 40; i += 97) {   /* cells of some points */
        cell_key k = key_at(pj, c.lon[i], c.lat[i], 2000);
        double lon, lat;
        lonlat_of(pj, (k.ix + 0.5) * 2000, (k.iy + 0.5) * 2000, &lon, &lat);
        double count = pm_cells_at(cells, c.ctx, lon, lat);
        assert_true(count >= 1);
        spot sp = spot_of(c.ctx, lon, lat, 11, 256);
        int empty;
        golden_image im = grid_image(c.ctx, cells, 11, sp.tx, sp.ty, 256, &empty);
        assert_int_equal(empty, 0);
        assert_rgb(pixel(&im, sp.px, sp.py), pm_classes_colour(cl, pm_classes_of(cl, count)),
                   204, 1);
        free(im.rgba);
        checked++;
    }
    int empty;
    golden_image im = grid_image(c.ctx, cells, 11, 1024, 1024, 256, &empty);
    assert_int_equal(empty, 1);
    free(im.rgba);
    proj_destroy(pj);
    pm_cells_free(cells);
    cloud_close(&c);
}

typedef struct grid_user {
    pm_ctx *ctx;
    const pm_cells *cells;
} grid_user;

static golden_image grid_tile(void *user, int z, uint32_t x, uint32_t y, int size)
{
    grid_user *u = user;
    int empty;
    return grid_image(u->ctx, u->cells, z, x, y, size, &empty);
}

static void grid_tiles_meet_without_seams(void **state)
{
    (void)state;
    cloud c;
    cloud_open(&c, 6000, NULL, 0);
    pm_cells *cells = cells_of(&c, NULL, 400);   /* under 6 px at z10: no outlines */
    grid_user u = {c.ctx, cells};
    spot sp = spot_of(c.ctx, 86.1, 55.35, 9, 256);
    golden_image big = grid_tile(&u, 9, sp.tx, sp.ty, 512);
    golden_image block = block_of(grid_tile, &u, 9, sp.tx, sp.ty);
    size_t differ = 0, drawn = 0;
    for (size_t p = 0; p < 512 * 512; p++) {
        differ += golden_pixel_diff(&big, &block, p) > 1;
        drawn += big.rgba[4 * p + 3] > 0;
    }
    assert_true(drawn > 512 * 512 / 20);
    if (differ * 1000 > 512 * 512)
        fail_msg("%zu of %d pixels differ between the 512-px tile and its 2x2 block", differ,
                 512 * 512);
    free(big.rgba);
    free(block.rgba);
    pm_cells_free(cells);
    cloud_close(&c);
}

static void grid_bad_arguments_are_usage_errors(void **state)
{
    (void)state;
    cloud c;
    cloud_open(&c, 100, NULL, 0);
    pm_cells *cells = (pm_cells *)&c;
    assert_int_equal(pm_cells_new(c.ctx, c.pts, NULL, CENTRE_LON, CENTRE_LAT, 99, &cells),
                     PM_E_USAGE);
    assert_null(cells);
    assert_int_equal(pm_cells_new(c.ctx, c.pts, NULL, 200, CENTRE_LAT, 1000, &cells), PM_E_USAGE);
    uint16_t topic = 1;
    pm_heat_filter f = {&topic, 1, NULL, 0, 1, 5, 2};   /* empty day range */
    assert_int_equal(pm_cells_new(c.ctx, c.pts, &f, CENTRE_LON, CENTRE_LAT, 1000, &cells),
                     PM_E_USAGE);
    cells = cells_of(&c, NULL, 1000);
    uint8_t *png = NULL;
    size_t len;
    int empty;
    assert_int_equal(pm_cells_tile_png(c.ctx, cells, 25, 0, 0, 256, &png, &len, &empty),
                     PM_E_USAGE);
    assert_int_equal(pm_cells_tile_png(c.ctx, cells, 2, 4, 0, 256, &png, &len, &empty),
                     PM_E_USAGE);
    assert_int_equal(pm_cells_tile_png(c.ctx, cells, 2, 0, 0, 128, &png, &len, &empty),
                     PM_E_USAGE);
    assert_null(png);
    pm_cells_free(cells);
    cloud_close(&c);
}

/* ---- golden images ----------------------------------------------------------------------- */

static void golden_tiles_match_references(void **state)
{
    (void)state;
    scene s;
    scene_open(&s);
    spot sp = spot_of(s.ctx, 87.0, 54.6, 8, 256);   /* C, its hole and the enclave D */
    size_t len;
    int empty;
    uint8_t *png = choro_png(&s, 8, sp.tx, sp.ty, 256, &len, &empty);
    golden_check(CHORO_GOLDEN, "choro_golden", png, len, 0.005, 8);
    pm_free(png);
    scene_close(&s);

    cloud c;
    cloud_open(&c, 6000, NULL, 0);
    pm_cells *cells = cells_of(&c, NULL, 2000);   /* about 23 px at z10: outlined */
    sp = spot_of(c.ctx, 86.1, 55.35, 10, 256);
    assert_int_equal(pm_cells_tile_png(c.ctx, cells, 10, sp.tx, sp.ty, 256, &png, &len, &empty),
                     PM_OK);
    golden_check(GRID_GOLDEN, "grid_golden", png, len, 0.005, 8);
    pm_free(png);
    pm_cells_free(cells);
    cloud_close(&c);
}

/* ---- allocation failures ------------------------------------------------------------------ */

/* Every step with the n-th allocation from its start failing: 1 when n
 * was beyond the last allocation, 0 after a clean failure (stage set),
 * and the whole run succeeded otherwise. */
static int build_and_draw(pm_ctx *ctx, const pm_districts *ds, const pm_points *pts, long n,
                          int *stage)
{
    static const double values[4] = {10, 50, NAN, 100};
    pm_choro *c = NULL;
    pm_choro_layer *l = NULL;
    pm_cells *cells = NULL;
    uint8_t *png = NULL, *png2 = NULL;
    size_t len;
    int empty, rc;
    spot sp = spot_of(ctx, 87.0, 55.0, 8, 256), sg = spot_of(ctx, 86.1, 55.35, 10, 256);
    *stage = 0;
    pm_alloc_fail_at(n);
    rc = pm_choro_new(ctx, ds, PM_GRID_WEBMERC, &c);
    if (!rc && ++*stage)
        rc = pm_choro_layer_new(ctx, c, NULL, values, 4, &l);
    if (!rc && ++*stage)
        rc = pm_choro_tile_png(ctx, l, 8, sp.tx, sp.ty, 256, &png, &len, &empty);
    if (!rc && ++*stage)
        rc = pm_cells_new(ctx, pts, NULL, CENTRE_LON, CENTRE_LAT, 2000, &cells);
    if (!rc && ++*stage)
        rc = pm_cells_tile_png(ctx, cells, 10, sg.tx, sg.ty, 256, &png2, &len, &empty);
    long made = pm_alloc_count();
    pm_alloc_fail_at(0);
    if (rc) {
        assert_int_equal(rc, PM_E_NOMEM);
        void *const out[5] = {c, l, png, cells, png2};
        assert_null(out[*stage]);
    }
    pm_free(png);
    pm_free(png2);
    pm_cells_free(cells);
    pm_choro_layer_free(l);
    pm_choro_free(c);
    return rc ? 0 : n > made ? 1 : 2;
}

static void every_step_survives_alloc_failures(void **state)
{
    (void)state;
    cloud c;
    cloud_open(&c, 300, NULL, 0);
    pm_districts *ds = districts_of(c.ctx, SCENE_WKT, 4);
    int failures[5] = {0}, done = 0;
    for (long n = 1; n < 100000 && !done; n++) {
        int stage, r = build_and_draw(c.ctx, ds, c.pts, n, &stage);
        done = r == 1;
        if (r == 0)
            failures[stage]++;
    }
    assert_true(done);
    for (int k = 0; k < 5; k++)
        if (failures[k] < 1)
            fail_msg("step %d never failed", k);
    pm_districts_free(c.ctx, ds);
    cloud_close(&c);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(classes_are_those_of_the_values),
        cmocka_unit_test(interior_pixels_have_their_class_colour),
        cmocka_unit_test(no_data_is_grey_and_hatched),
        cmocka_unit_test(hatching_runs_on_across_tiles),
        cmocka_unit_test(borders_are_dark_over_the_fills),
        cmocka_unit_test(tile_off_the_region_is_empty),
        cmocka_unit_test(choropleth_tiles_meet_without_seams),
        cmocka_unit_test(many_districts_are_all_found),
        cmocka_unit_test(bad_arguments_are_usage_errors),
        cmocka_unit_test(classed_layer_keeps_the_given_classes),
        cmocka_unit_test(gi_bin_districts_have_the_bin_colour),
        cmocka_unit_test(classed_layer_bad_arguments_are_usage_errors),
        cmocka_unit_test(classed_layer_survives_alloc_failures),
        cmocka_unit_test(cells_count_like_brute_force_over_lonlat),
        cmocka_unit_test(cells_are_equal_area_squares),
        cmocka_unit_test(cell_pixels_have_their_class_colour),
        cmocka_unit_test(grid_tiles_meet_without_seams),
        cmocka_unit_test(grid_bad_arguments_are_usage_errors),
        cmocka_unit_test(golden_tiles_match_references),
        cmocka_unit_test(every_step_survives_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
