/* canvas.c — what the choropleth and grid tiles share (choro_impl.h): a
 * tile's frame on the grid's plane, a cairo canvas over our own buffer,
 * rings thinned and clipped to the tile, and the canvas as PNG. */
#include "choro_impl.h"
#include "../engine/pm_alloc.h"

#include <math.h>
#include <string.h>

#define E_M PM_HEAT_HALF_WORLD_M

/* ---- the frame ------------------------------------------------------------ */

int pm_tile_frame_init(pm_ctx *ctx, const char *what, int z, uint32_t x, uint32_t y, int size,
                       pm_tile_frame *f)
{
    if (z < 0 || z > PM_TILE_MAX_ZOOM)
        return PM_ERR(ctx, PM_E_USAGE, "%s %d/%u/%u: zoom outside 0 .. %d", what, z, x, y,
                      PM_TILE_MAX_ZOOM);
    if (x >> z || y >> z)
        return PM_ERR(ctx, PM_E_USAGE, "%s %d/%u/%u: x or y outside 0 .. %lu", what, z, x, y,
                      (1ul << z) - 1);
    if (size != 256 && size != 512)
        return PM_ERR(ctx, PM_E_USAGE, "%s %d/%u/%u: size %d is not 256 or 512", what, z, x, y,
                      size);
    f->z = z;
    f->x = x;
    f->y = y;
    f->size = size;
    f->w = ldexp(2 * E_M, -z);
    f->x0 = -E_M + x * f->w;
    f->y_top = E_M - y * f->w;
    f->s = size / f->w;
    f->k = size / 256.0;
    double m = PM_TILE_MARGIN_PX / f->s;
    f->query = (pm_box){f->x0 - m, f->y_top - f->w - m, f->x0 + f->w + m, f->y_top + m};
    return PM_OK;
}

/* ---- the canvas ------------------------------------------------------------ */

int pm_canvas_open(pm_ctx *ctx, int size, pm_canvas *cv)
{
    memset(cv, 0, sizeof *cv);
    cv->size = size;
    cv->px = pm_calloc((size_t)size * size, 4);
    if (!cv->px)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory for a %d-px tile", size);
    cv->surface = cairo_image_surface_create_for_data(cv->px, CAIRO_FORMAT_ARGB32, size, size,
                                                      4 * size);
    cv->cr = cairo_create(cv->surface);
    cairo_status_t st = cairo_status(cv->cr);
    if (st != CAIRO_STATUS_SUCCESS)
        return PM_ERR(ctx, st == CAIRO_STATUS_NO_MEMORY ? PM_E_NOMEM : PM_E_RENDER,
                      "a %d-px tile: cairo: %s", size, cairo_status_to_string(st));
    cairo_set_antialias(cv->cr, CAIRO_ANTIALIAS_DEFAULT);
    cairo_set_line_join(cv->cr, CAIRO_LINE_JOIN_ROUND);
    return PM_OK;
}

void pm_canvas_close(pm_canvas *cv)
{
    if (cv->cr)
        cairo_destroy(cv->cr);
    if (cv->surface)
        cairo_surface_destroy(cv->surface);
    pm_free(cv->px);
    memset(cv, 0, sizeof *cv);
}

void pm_canvas_rgba(pm_canvas *cv, unsigned rgb, double a)
{
    cairo_set_source_rgba(cv->cr, ((rgb >> 16) & 255) / 255.0, ((rgb >> 8) & 255) / 255.0,
                          (rgb & 255) / 255.0, a);
}

/* ---- rings: thinned, clipped ------------------------------------------------ */

/* The streaming clipper: stage k (0 .. 3) keeps x ≥ lo_x, x ≤ hi_x,
 * y ≥ lo_y, y ≤ hi_y and passes its output to stage k + 1; stage 4 is
 * cairo.  Each stage remembers the first and the previous point it was
 * given; an edge (a, b) emits the crossing when a and b are on different
 * sides, then b when it is inside (so a stage emits its first point at
 * the closing edge: the same ring, rotated). */
typedef struct clip_stage {
    int on;
    double fx, fy, px, py;
} clip_stage;

typedef struct clipper {
    double lo, hi;          /* the box in pixels, the same for x and y */
    clip_stage st[4];
    cairo_t *cr;
    int started;
} clipper;

static int clip_inside(const clipper *c, int k, double x, double y)
{
    switch (k) {
    case 0: return x >= c->lo;
    case 1: return x <= c->hi;
    case 2: return y >= c->lo;
    default: return y <= c->hi;
    }
}

/* Where edge a–b crosses the bound of stage k, computed from the end with
 * the smaller coordinate across the bound, so that an edge shared by two
 * rings (drawn in opposite directions) is cut at the same point. */
static void clip_cut(const clipper *c, int k, double ax, double ay, double bx, double by,
                     double *x, double *y)
{
    double bound = (k == 0 || k == 2) ? c->lo : c->hi;
    if (k < 2) {
        if (ax > bx) {
            double t = ax; ax = bx; bx = t;
            t = ay; ay = by; by = t;
        }
        *x = bound;
        *y = ay + (by - ay) * ((bound - ax) / (bx - ax));
    } else {
        if (ay > by) {
            double t = ax; ax = bx; bx = t;
            t = ay; ay = by; by = t;
        }
        *y = bound;
        *x = ax + (bx - ax) * ((bound - ay) / (by - ay));
    }
}

static void clip_point(clipper *c, int k, double x, double y);

static void clip_edge(clipper *c, int k, double ax, double ay, double bx, double by)
{
    int a_in = clip_inside(c, k, ax, ay), b_in = clip_inside(c, k, bx, by);
    if (a_in != b_in) {
        double ix, iy;
        clip_cut(c, k, ax, ay, bx, by, &ix, &iy);
        clip_point(c, k + 1, ix, iy);
    }
    if (b_in)
        clip_point(c, k + 1, bx, by);
}

static void clip_point(clipper *c, int k, double x, double y)
{
    if (k == 4) {
        if (c->started)
            cairo_line_to(c->cr, x, y);
        else
            cairo_move_to(c->cr, x, y);
        c->started = 1;
        return;
    }
    clip_stage *s = &c->st[k];
    if (s->on)
        clip_edge(c, k, s->px, s->py, x, y);
    else
        s->on = 1, s->fx = x, s->fy = y;
    s->px = x;
    s->py = y;
}

static void clip_close(clipper *c, int k)
{
    if (k == 4) {
        if (c->started)
            cairo_close_path(c->cr);
        c->started = 0;
        return;
    }
    clip_stage *s = &c->st[k];
    if (s->on)
        clip_edge(c, k, s->px, s->py, s->fx, s->fy);
    s->on = 0;
    clip_close(c, k + 1);
}

void pm_canvas_ring(pm_canvas *cv, const pm_tile_frame *f, const double *xy, size_t n, int thin)
{
    if (n > 1 && xy[0] == xy[2 * (n - 1)] && xy[1] == xy[2 * (n - 1) + 1])
        n--;
    if (n < 3)
        return;
    clipper c;
    memset(&c, 0, sizeof c);
    c.lo = -PM_TILE_MARGIN_PX;
    c.hi = f->size + PM_TILE_MARGIN_PX;
    c.cr = cv->cr;
    double lx = 0, ly = 0;
    for (size_t i = 0; i < n; i++) {
        double x = (xy[2 * i] - f->x0) * f->s, y = (f->y_top - xy[2 * i + 1]) * f->s;
        if (thin && i > 0 && fabs(x - lx) + fabs(y - ly) < PM_TILE_THIN_PX)
            continue;
        clip_point(&c, 0, x, y);
        lx = x;
        ly = y;
    }
    clip_close(&c, 0);
}

/* ---- PNG ------------------------------------------------------------------- */

/* Premultiplied native-endian ARGB32 → straight RGBA bytes, in place;
 * returns 1 when every pixel is fully transparent. */
static int unpremultiply(uint8_t *px, size_t n)
{
    int empty = 1;
    for (size_t i = 0; i < n; i++) {
        uint32_t v;
        memcpy(&v, px + 4 * i, 4);
        unsigned a = v >> 24, r = (v >> 16) & 255, g = (v >> 8) & 255, b = v & 255;
        uint8_t *o = px + 4 * i;
        if (a == 0) {
            memset(o, 0, 4);
            continue;
        }
        empty = 0;
        o[0] = (uint8_t)((r * 255 + a / 2) / a);
        o[1] = (uint8_t)((g * 255 + a / 2) / a);
        o[2] = (uint8_t)((b * 255 + a / 2) / a);
        o[3] = (uint8_t)a;
    }
    return empty;
}

int pm_canvas_png(pm_ctx *ctx, pm_canvas *cv, const pm_tile_frame *f, const char *what,
                  uint8_t **png, size_t *len, int *empty)
{
    cairo_status_t st = cairo_status(cv->cr);
    if (st != CAIRO_STATUS_SUCCESS)
        return PM_ERR(ctx, st == CAIRO_STATUS_NO_MEMORY ? PM_E_NOMEM : PM_E_RENDER,
                      "%s %d/%u/%u: cairo: %s", what, f->z, f->x, f->y,
                      cairo_status_to_string(st));
    cairo_surface_flush(cv->surface);
    int e = unpremultiply(cv->px, (size_t)cv->size * cv->size);
    int rc = pm_heat_png_encode(ctx, cv->px, cv->size, png, len);
    if (!rc)
        *empty = e;
    return rc;
}
