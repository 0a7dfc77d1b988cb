/* choro_impl.h — internal: what choro.c (choropleth tiles) and cells.c
 * (grid tiles) share, implemented in canvas.c: the frame of a tile on the
 * grid's plane, a cairo canvas over a buffer of our own, and rings drawn
 * on it.
 *
 * A tile z/x/y of `size` pixels covers the square of heat_impl.h: its west
 * edge is x0 = −E + x·w, its north edge y_top = E − y·w (w = 2E / 2^z), and
 * grid point (X, Y) is at pixel ((X − x0)·s, (y_top − Y)·s), s = size / w,
 * so a 512-px tile has the pixels of its four 256-px children.  Line widths
 * and patterns are given in pixels of a 256-px tile and scaled by size/256
 * (the @2x tile looks like the 256-px one, sharper).
 *
 * Rings are drawn clipped to the tile grown by PM_TILE_MARGIN_PX (a
 * streaming Sutherland–Hodgman clip in pixel space: cairo's fixed-point
 * coordinates overflow near ±8·10⁶ px, a district at zoom 18 reaches far
 * beyond), after dropping vertices closer than PM_TILE_THIN_PX to the last
 * one kept (if asked).  Both depend only on the ring and the pixel scale, not on the
 * tile, so neighbouring tiles draw the same edges: no seams.  The clipped
 * path's extra edges lie on the grown box, outside the tile.
 *
 * The canvas is premultiplied ARGB32 (cairo's) in a buffer from pm_calloc;
 * pm_canvas_png() turns it into straight RGBA in place and encodes it as
 * the heat tiles are (pm_heat_png_encode). */
#ifndef PM_CHORO_IMPL_H
#define PM_CHORO_IMPL_H

#include "heat_impl.h"
#include "pm_choro.h"

#include <cairo.h>
#include <stddef.h>
#include <stdint.h>

#define PM_TILE_MAX_ZOOM 24
#define PM_TILE_MARGIN_PX 8.0
#define PM_TILE_THIN_PX 0.3

typedef struct pm_tile_frame {
    int z;
    uint32_t x, y;
    int size;
    double x0, y_top, w;   /* west and north edges, width: grid metres */
    double s;              /* pixels per grid metre */
    double k;              /* size / 256: the scale of widths and patterns */
    pm_box query;          /* the tile grown by PM_TILE_MARGIN_PX (grid metres) */
} pm_tile_frame;

/* Checks z/x/y and size (PM_E_USAGE naming `what`, e.g. "choropleth
 * tile") and fills f. */
int pm_tile_frame_init(pm_ctx *ctx, const char *what, int z, uint32_t x, uint32_t y, int size,
                       pm_tile_frame *f);

typedef struct pm_canvas {
    int size;
    uint8_t *px;           /* size² × 4 bytes */
    cairo_surface_t *surface;
    cairo_t *cr;
} pm_canvas;

/* A transparent size × size canvas, antialiased.  PM_E_NOMEM,
 * PM_E_RENDER.  pm_canvas_close() in every case. */
int pm_canvas_open(pm_ctx *ctx, int size, pm_canvas *cv);
void pm_canvas_close(pm_canvas *cv);

/* Adds ring xy[0 .. n) (x, y pairs in grid metres; a last point equal to
 * the first is ignored) to the current path as one closed sub-path,
 * clipped as the file comment says; thinned when thin is 1 (not for rings
 * filled without antialiasing, whose shared edges must stay identical). */
void pm_canvas_ring(pm_canvas *cv, const pm_tile_frame *f, const double *xy, size_t n, int thin);

/* Sets the source colour 0xRRGGBB with alpha a (0 .. 1). */
void pm_canvas_rgba(pm_canvas *cv, unsigned rgb, double a);

/* Checks cairo's status, then encodes the canvas: *png (pm_free), *empty 1
 * when no pixel has any alpha.  The canvas is unusable afterwards (its
 * pixels are straight RGBA); close it. */
int pm_canvas_png(pm_ctx *ctx, pm_canvas *cv, const pm_tile_frame *f, const char *what,
                  uint8_t **png, size_t *len, int *empty);

#endif
