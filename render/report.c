/* report.c — the one-page report for officials (pm_report.h).
 *
 * Four steps: gather (query the cube for the district, topic and total
 * rows, pick the figure, cut it into classes, rank the districts), project
 * (every district ring through PROJ into a Lambert azimuthal equal-area
 * plane centred on the districts), the heat layer (when asked for: a
 * density raster on that plane), draw (one function, draw_page(), on a
 * cairo context whose user unit is the millimetre, whatever the surface)
 * into memory.  pm_report_write() renders to memory, then writes the
 * bytes to a temporary file renamed into place (pm_out.h): one drawing
 * path for files and for pm_report_render().
 *
 * Decisions, in one place:
 * - Units.  The page is laid out in millimetres; one cairo_scale() maps
 *   them to points (PDF, SVG: 72/25.4) or pixels (PNG: dpi/25.4).  Font
 *   sizes are given in points and set as absolute Pango sizes in mm, with
 *   hinted metrics off, so the three surfaces get the same layout.  Every
 *   size is multiplied by one factor f = min(W/297, H/210): the design is
 *   A4 landscape and scales with the page, so nothing spills on a small
 *   page either.
 * - Projection centre.  The centre of the districts' lon/lat extent.  When
 *   the longitudes span more than 180° (a region split at ±180°, such as
 *   Chukotka), that centre would be on the wrong side of the globe, so the
 *   longitude is then the circular mean of the vertices' longitudes.
 * - Scale bar.  LAEA is true to scale at its centre; over a region's
 *   extent the scale error grows as 1/cos(c/2) − 1 with the angular
 *   distance c from the centre: 0.1 % at 500 km, 1 % at 1 300 km.  One bar
 *   is therefore valid over the whole map of a region (not of Russia).
 * - Classes.  Quantile classes over the districts that have a value: 5
 *   (6 above 30 districts, 7 above 100), fewer when there are fewer
 *   distinct values; equal values always share a class.  The legend shows
 *   each class as the smallest and largest value in it, so no boundary is
 *   ambiguous.  Colours: ColorBrewer YlOrRd for the number of classes.
 *   No value (suppressed, no population, nothing answered ...) is grey
 *   with a hatch, legend entry "нет данных".
 * - Top districts (map labels, table): the highest values of the figure,
 *   among districts with at least one complaint (ties: more complaints,
 *   then the lower index).
 * - Heat layer.  The complaints placed with coordinates (inside, border,
 *   snapped) that pass heat_filter, in districts whose row is shown (a
 *   suppressed district keeps its complaints off the heat too), projected
 *   with the districts' own transform.  Quartic kernel (1 − d²/R²)², R on
 *   the ground (default: the larger side of the districts' extent / 60),
 *   raw sums, on a raster over the map frame at the output resolution
 *   (150 dpi for PDF and SVG) but at most 1 200 px a side, coarser still
 *   when R would exceed 40 px (cost: pixels with points × kernel area,
 *   whatever the number of complaints).  Points are counted into raster
 *   pixels first (a shift of at most half a pixel, R/30 or less).  The
 *   raster is masked by the shown districts (cairo coverage, so the heat
 *   ends at the region's border), coloured on a log scale from top/20 to
 *   top, top = the 99th percentile (nearest rank) of the non-zero values
 *   inside the mask, with inferno from transparent up to 0.9 of the ramp
 *   (its palest end vanishes on the light classes), alpha up to 0.85 —
 *   thin densities only tint the classes, the peaks glow.  It is drawn
 *   over the district fills, under the borders and labels, scaled up with
 *   cairo's bilinear filter; the legend gets a line "Плотность обращений:
 *   меньше … больше" (the map 5 mm shorter).  No point on the layer: no
 *   layer and no line (an INFO message says so).
 * - Analytics page (opts->analytics).  A second page of the same size and
 *   scale factor, drawn by draw_analytics_page(): the header, the map of
 *   emerging classes on the left (the page-1 map code: map_fill() with
 *   another colouring, map_end() for borders and labels of the first
 *   listed districts), the hot-spot and surge tables on the right (at most
 *   PM_REPORT_ANALYTICS_ROWS rows each, fewer when the page is too short,
 *   then "и ещё N"), a wrapped footnote across the bottom.  Class colours:
 *   Reds for hot, Blues for cold, darker for what weighs more now; the
 *   legend lists the classes present (more than 8: hot and cold in two
 *   columns by first word).  A trend is drawn when |Mann-Kendall z| >=
 *   1.96 (p < 0.05, as pm_ehs_opts).  PDF: cairo_show_page() between the
 *   pages.  PNG and SVG have one page, so the sheet is twice as high and
 *   the second page is drawn below the first (origin moved by the page
 *   height, a dashed rule at the join); page 1 is the same pixels as
 *   without analytics, and the 32 767 px limit counts the whole sheet.
 */
#include "pm_report.h"
#include "heat_impl.h"
#include "pm_figure.h"
#include "../engine/pm_alloc.h"
#include "../engine/pm_hotspot.h"
#include "../geodata/pm_out.h"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>
#include <errno.h>
#include <math.h>
#include <pango/pangocairo.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MM_PER_PT (25.4 / 72.0)
#define N_LABELS 5
#define N_TOP 10
#define LABEL_CHARS 24
#define FONT_FAMILY "DejaVu Sans"

/* ---- formats ------------------------------------------------------------ */

int pm_report_format_parse(const char *name, const char *path)
{
    static const char *const NAMES[] = {"png", "pdf", "svg"};
    const char *s = name;
    if (!s && path) {
        const char *slash = strrchr(path, '/');
        const char *dot = strrchr(slash ? slash : path, '.');
        s = dot ? dot + 1 : NULL;
    }
    for (int i = 0; s && i < 3; i++)
        if (strcasecmp(s, NAMES[i]) == 0)
            return i;
    return -1;
}

#define THIN_SPACE "\xe2\x80\x89"   /* U+2009 */
#define EN_DASH "\xe2\x80\x93"
#define NO_DATA "нет данных"

/* ---- the gathered report --------------------------------------------- */

typedef struct rect {
    double x, y, w, h;
} rect;

typedef struct page {
    double w_mm, h_mm, dpi;   /* one page */
    int n_pages;              /* 2 with the analytics page */
} page;

/* The heat layer, ready to draw: a premultiplied ARGB32 raster (cairo's
 * layout) covering the map frame. */
typedef struct heat_raster {
    uint8_t *argb;          /* NULL: no heat layer */
    int w, h, stride;
    rect frame;             /* the map frame it covers, mm */
    double px_mm;           /* raster pixels per mm of the page */
    uint8_t lut[256][4];    /* the colour of t = i/255: r, g, b, alpha */
} heat_raster;

typedef struct ranked {
    double v;
    uint64_t count;
    size_t idx;
} ranked;

/* Projected districts: rings of x,y in metres on the LAEA plane. */
typedef struct geo_map {
    double *xy;             /* vertices, x,y pairs */
    size_t n_pts;
    size_t *ring_end;       /* ring r ends before vertex ring_end[r] */
    size_t n_rings;
    size_t *dist_ring_end;  /* district i's rings end before ring dist_ring_end[i] */
    double *label_xy;       /* point on surface of district i (NAN: none) */
    double minx, miny, maxx, maxy;
    int have_extent;
} geo_map;

typedef struct report {
    const pm_districts *ds;
    const pm_topics *topics;
    const pm_figure *fig;
    const char *title;
    const char *attribution; /* NULL: none */
    char period[128];
    char generated[128];
    pm_row *drows, *trows, *total;
    size_t n_d, n_t, n_total;
    double *value;           /* per district, NAN: no data */
    int *cls;                /* per district, -1: no data */
    pm_classes classes;
    ranked *top;             /* districts with a value and complaints, best first */
    size_t n_top;
    ranked *topic_order;     /* topics with complaints, most first */
    size_t n_topic_order;
    geo_map map;
    PJ *laea;                /* lon/lat → the map's plane (x, y metres) */
    char laea_def[192];
    int heat_on;             /* the page has a heat layer and its legend */
    heat_raster heat;
    const pm_report_analytics *an;   /* the analytics page; NULL: none */
    unsigned char *ehs;      /* per district, its pm_ehs_class (analytics page) */
    size_t ehs_present[PM_EHS_CLASSES];   /* districts per class */
} report;

static void report_free(report *r)
{
    pm_free(r->drows);
    pm_free(r->trows);
    pm_free(r->total);
    pm_free(r->value);
    pm_free(r->cls);
    pm_free(r->top);
    pm_free(r->topic_order);
    pm_free(r->map.xy);
    pm_free(r->map.ring_end);
    pm_free(r->map.dist_ring_end);
    pm_free(r->map.label_xy);
    proj_destroy(r->laea);
    pm_free(r->heat.argb);
    pm_free(r->ehs);
}

/* A value as the report writes it, with " %" for shares when unit. */
static void fmt_value(const report *r, double v, int unit, char *buf, size_t cap)
{
    pm_figure_format(r->fig, &r->classes, v, unit, buf, cap);
}

/* Highest value first, then more complaints, then the lower index. */
static int cmp_ranked(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->v != y->v)
        return x->v < y->v ? 1 : -1;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Quantile classes of r->value (pm_figure.h), and each district's class. */
static int make_classes(pm_ctx *ctx, report *r)
{
    int rc = pm_classes_quantile(ctx, r->value, r->n_d, &r->classes);
    pm_classes_orient(&r->classes, r->fig);
    for (size_t i = 0; rc == PM_OK && i < r->n_d; i++)
        r->cls[i] = pm_classes_of(&r->classes, r->value[i]);
    return rc;
}

/* Districts by figure (r->top) and topics by count (r->topic_order). */
static int make_rankings(pm_ctx *ctx, report *r)
{
    r->top = pm_calloc(r->n_d, sizeof *r->top);
    r->topic_order = pm_calloc(r->n_t, sizeof *r->topic_order);
    if (!r->top || !r->topic_order)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory ranking districts and topics");
    for (size_t i = 0; i < r->n_d; i++)
        if (isfinite(r->value[i]) && r->drows[i].count > 0)
            r->top[r->n_top++] = (ranked){r->value[i], r->drows[i].count, i};
    qsort(r->top, r->n_top, sizeof *r->top, cmp_ranked);
    for (size_t t = 0; t < r->n_t; t++) {
        const pm_row *row = &r->trows[t];
        if (!row->suppressed && row->count > 0)
            r->topic_order[r->n_topic_order++] = (ranked){(double)row->count, row->count, row->key};
    }
    qsort(r->topic_order, r->n_topic_order, sizeof *r->topic_order, cmp_ranked);
    return PM_OK;
}

/* "Период: 2025-W45 — 2025-W48" from the filter's range or the cube's span. */
static void make_period_label(report *r, const pm_cube *cube, const pm_filter *f)
{
    int64_t a = 0, b = 0;
    int have = 1;
    if (f && f->has_range) {
        a = f->period_from;
        b = f->period_to;
    } else {
        have = pm_cube_period_span(cube, &a, &b);
    }
    if (!have) {
        snprintf(r->period, sizeof r->period, "Период: " NO_DATA);
        return;
    }
    pm_period_kind k = pm_cube_options(cube)->period;
    char la[16], lb[16];
    pm_period_label(k, a, la);
    pm_period_label(k, b, lb);
    if (a == b)
        snprintf(r->period, sizeof r->period, "Период: %s", la);
    else
        snprintf(r->period, sizeof r->period, "Период: %s — %s", la, lb);
}

static void make_generated_label(report *r, const char *generated)
{
    char today[32];
    if (!generated) {
        time_t now = time(NULL);
        struct tm tm;
        if (gmtime_r(&now, &tm) && strftime(today, sizeof today, "%Y-%m-%d", &tm) > 0)
            generated = today;
        else
            generated = "—";
    }
    snprintf(r->generated, sizeof r->generated, "Сформировано: %s", generated);
}

/* ---- projection -------------------------------------------------------- */

typedef int (*ring_fn)(void *user, GEOSContextHandle_t h, const GEOSGeometry *ring);

/* Calls fn on every ring (exterior, then holes) of a polygonal geometry. */
static int for_each_ring(GEOSContextHandle_t h, const GEOSGeometry *g, ring_fn fn, void *user)
{
    int type = GEOSGeomTypeId_r(h, g);
    if (type == GEOS_MULTIPOLYGON || type == GEOS_GEOMETRYCOLLECTION) {
        int n = GEOSGetNumGeometries_r(h, g);
        for (int i = 0; i < n; i++) {
            int rc = for_each_ring(h, GEOSGetGeometryN_r(h, g, i), fn, user);
            if (rc)
                return rc;
        }
        return 0;
    }
    if (type != GEOS_POLYGON || GEOSisEmpty_r(h, g) == 1)
        return 0;
    int rc = fn(user, h, GEOSGetExteriorRing_r(h, g));
    int holes = GEOSGetNumInteriorRings_r(h, g);
    for (int i = 0; !rc && i < holes; i++)
        rc = fn(user, h, GEOSGetInteriorRingN_r(h, g, i));
    return rc;
}

static int count_ring(void *user, GEOSContextHandle_t h, const GEOSGeometry *ring)
{
    geo_map *m = user;
    int n = GEOSGeomGetNumPoints_r(h, ring);
    if (n < 0)
        return -1;
    m->n_pts += (size_t)n;
    m->n_rings++;
    return 0;
}

static int copy_ring(void *user, GEOSContextHandle_t h, const GEOSGeometry *ring)
{
    geo_map *m = user;
    const GEOSCoordSequence *seq = GEOSGeom_getCoordSeq_r(h, ring);
    unsigned int n = 0;
    if (!seq || !GEOSCoordSeq_getSize_r(h, seq, &n) ||
        (n > 0 && !GEOSCoordSeq_copyToBuffer_r(h, seq, m->xy + 2 * m->n_pts, 0, 0)))
        return -1;
    m->n_pts += n;
    m->ring_end[m->n_rings++] = m->n_pts;
    return 0;
}

/* Reads every district's rings (lon/lat) and point on surface into m. */
static int map_read(pm_ctx *ctx, const pm_districts *ds, geo_map *m)
{
    GEOSContextHandle_t h = pm_ctx_geos(ctx);
    size_t nd = pm_districts_count(ds);
    for (size_t i = 0; i < nd; i++)
        if (for_each_ring(h, pm_district_geom_borrow(ds, i), count_ring, m))
            return PM_ERR(ctx, PM_E_GEOM, "district %s: cannot read its rings: %s",
                          pm_district_id(ds, i), pm_ctx_geos_msg(ctx));
    m->xy = pm_calloc(m->n_pts, 2 * sizeof *m->xy);
    m->ring_end = pm_calloc(m->n_rings, sizeof *m->ring_end);
    m->dist_ring_end = pm_calloc(nd, sizeof *m->dist_ring_end);
    m->label_xy = pm_calloc(nd, 2 * sizeof *m->label_xy);
    if (!m->xy || !m->ring_end || !m->dist_ring_end || !m->label_xy)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory reading %zu district rings", m->n_rings);
    m->n_pts = m->n_rings = 0;
    for (size_t i = 0; i < nd; i++) {
        const GEOSGeometry *g = pm_district_geom_borrow(ds, i);
        if (for_each_ring(h, g, copy_ring, m))
            return PM_ERR(ctx, PM_E_GEOM, "district %s: cannot read its rings: %s",
                          pm_district_id(ds, i), pm_ctx_geos_msg(ctx));
        m->dist_ring_end[i] = m->n_rings;
        m->label_xy[2 * i] = m->label_xy[2 * i + 1] = NAN;
        GEOSGeometry *p = GEOSisEmpty_r(h, g) == 0 ? GEOSPointOnSurface_r(h, g) : NULL;
        if (p && GEOSisEmpty_r(h, p) == 0) {
            GEOSGeomGetX_r(h, p, &m->label_xy[2 * i]);
            GEOSGeomGetY_r(h, p, &m->label_xy[2 * i + 1]);
        }
        if (p)
            GEOSGeom_destroy_r(h, p);
    }
    return PM_OK;
}

/* The projection centre (see the file comment). */
static void map_centre(const geo_map *m, double *lon0, double *lat0)
{
    double minx = INFINITY, maxx = -INFINITY, miny = INFINITY, maxy = -INFINITY, s = 0, c = 0;
    for (size_t i = 0; i < m->n_pts; i++) {
        double lon = m->xy[2 * i], lat = m->xy[2 * i + 1];
        minx = fmin(minx, lon);
        maxx = fmax(maxx, lon);
        miny = fmin(miny, lat);
        maxy = fmax(maxy, lat);
        s += sin(lon * M_PI / 180);
        c += cos(lon * M_PI / 180);
    }
    if (m->n_pts == 0) {
        *lon0 = *lat0 = 0;
        return;
    }
    *lat0 = (miny + maxy) / 2;
    *lon0 = maxx - minx > 180 ? atan2(s, c) * 180 / M_PI : (minx + maxx) / 2;
}

/* The map's projection (r->laea), centred on the districts. */
static int make_laea(pm_ctx *ctx, report *r)
{
    double lon0, lat0;
    map_centre(&r->map, &lon0, &lat0);
    snprintf(r->laea_def, sizeof r->laea_def,
             "+proj=laea +lat_0=%.6f +lon_0=%.6f +datum=WGS84 +units=m +no_defs +type=crs", lat0,
             lon0);
    PJ_CONTEXT *pc = pm_ctx_proj(ctx);
    PJ *raw = proj_create_crs_to_crs(pc, "EPSG:4326", r->laea_def, NULL);
    r->laea = raw ? proj_normalize_for_visualization(pc, raw) : NULL;
    proj_destroy(raw);
    if (!r->laea)
        return PM_ERR(ctx, PM_E_CRS, "PROJ cannot build EPSG:4326 → %s: %s", r->laea_def,
                      pm_ctx_proj_msg(ctx));
    return PM_OK;
}

/* Projects n lon/lat pairs (xy[2i], xy[2i + 1]) in place with P. */
static void project_pairs(PJ *P, double *xy, size_t n)
{
    size_t st = 2 * sizeof(double);
    proj_trans_generic(P, PJ_FWD, xy, st, n, xy + 1, st, n, NULL, 0, 0, NULL, 0, 0);
}

/* Projects the rings and label points in place. */
static int map_project(pm_ctx *ctx, report *r)
{
    geo_map *m = &r->map;
    const pm_districts *ds = r->ds;
    const char *def = r->laea_def;
    int rc = make_laea(ctx, r);
    if (rc)
        return rc;
    size_t nd = pm_districts_count(ds);
    project_pairs(r->laea, m->xy, m->n_pts);
    project_pairs(r->laea, m->label_xy, nd);
    m->minx = m->miny = INFINITY;
    m->maxx = m->maxy = -INFINITY;
    size_t ring = 0, d = 0;
    for (size_t i = 0; i < m->n_pts; i++) {
        while (m->ring_end[ring] <= i)
            ring++;
        while (m->dist_ring_end[d] <= ring)
            d++;
        double x = m->xy[2 * i], y = m->xy[2 * i + 1];
        if (!isfinite(x) || !isfinite(y))   /* PROJ's HUGE_VAL is infinite */
            return PM_ERR(ctx, PM_E_CRS, "district %s: PROJ cannot project it to %s",
                          pm_district_id(ds, d), def);
        m->minx = fmin(m->minx, x);
        m->maxx = fmax(m->maxx, x);
        m->miny = fmin(m->miny, y);
        m->maxy = fmax(m->maxy, y);
    }
    for (size_t i = 0; i < 2 * nd; i++)
        if (!isfinite(m->label_xy[i]))
            m->label_xy[i & ~(size_t)1] = m->label_xy[i | 1] = NAN;
    m->have_extent = m->n_pts > 0;
    return PM_OK;
}

/* ---- gathering --------------------------------------------------------- */

static int report_build(pm_ctx *ctx, report *r, const pm_cube *cube, const pm_filter *f,
                        const pm_report_opts *o)
{
    int rc = pm_cube_query(ctx, cube, PM_LEVEL_DISTRICT, f, &r->drows, &r->n_d);
    if (!rc)
        rc = pm_cube_query(ctx, cube, PM_LEVEL_TOPIC, f, &r->trows, &r->n_t);
    if (!rc)
        rc = pm_cube_query(ctx, cube, PM_LEVEL_TOTAL, f, &r->total, &r->n_total);
    if (rc)
        return rc;
    if (r->n_d != pm_districts_count(r->ds) || r->n_total != 1)
        return PM_ERR(ctx, PM_E_USAGE, "the cube has %zu districts, the district set %zu", r->n_d,
                      pm_districts_count(r->ds));
    r->value = pm_calloc(r->n_d, sizeof *r->value);
    r->cls = pm_calloc(r->n_d, sizeof *r->cls);
    if (!r->value || !r->cls)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory for %zu district values", r->n_d);
    for (size_t i = 0; i < r->n_d; i++)
        r->value[i] = pm_figure_value(r->fig, &r->drows[i]);
    if ((rc = make_classes(ctx, r)) || (rc = make_rankings(ctx, r)))
        return rc;
    make_period_label(r, cube, f);
    make_generated_label(r, o->generated);
    if ((rc = map_read(ctx, r->ds, &r->map)))
        return rc;
    return map_project(ctx, r);
}

/* ---- the analytics page: its rows ------------------------------------- */

/* The Russian names of the emerging classes, in pm_ehs_class order. */
static const char *const EHS_RU[PM_EHS_CLASSES] = {
    "нет закономерности",
    "новая горячая точка", "последовательная горячая точка", "усиливающаяся горячая точка",
    "устойчивая горячая точка", "ослабевающая горячая точка", "спорадическая горячая точка",
    "колеблющаяся горячая точка", "историческая горячая точка",
    "новая холодная точка", "последовательная холодная точка", "усиливающаяся холодная точка",
    "устойчивая холодная точка", "ослабевающая холодная точка", "спорадическая холодная точка",
    "колеблющаяся холодная точка", "историческая холодная точка"};

/* Their colours: hot classes ColorBrewer Reds, cold ones Blues, darker
 * for what weighs more now (intensifying, persistent, consecutive, new,
 * diminishing, sporadic, oscillating, historical); no pattern pale grey. */
static const unsigned EHS_RGB[PM_EHS_CLASSES] = {
    0xf4f4f4u,
    0xef3b2cu, 0xcb181du, 0x67000du, 0xa50f15u, 0xfb6a4au, 0xfc9272u, 0xfcbba1u, 0xfee0d2u,
    0x4292c6u, 0x2171b5u, 0x08306bu, 0x08519cu, 0x6baed6u, 0x9ecae1u, 0xc6dbefu, 0xdeebf7u};

/* Checks the caller's analytics rows against the districts and topics,
 * and gives every district its class (r->ehs; none when not listed).
 * name: the output, for messages. */
static int analytics_build(pm_ctx *ctx, const char *name, report *r,
                           const pm_report_analytics *an)
{
    r->an = an;
    if (!an)
        return PM_OK;
    size_t nd = pm_districts_count(r->ds), nt = pm_topics_count(r->topics);
    if ((an->n_hot && !an->hot) || (an->n_alerts && !an->alerts))
        return PM_ERR(ctx, PM_E_USAGE, "%s: analytics: %zu hot-spot rows and %zu surge "
                      "alerts, but no array of them", name, an->n_hot, an->n_alerts);
    if (!(an->fdr >= 0 && an->fdr < 1))
        return PM_ERR(ctx, PM_E_USAGE, "%s: analytics: false discovery rate %g is not in "
                      "[0, 1)", name, an->fdr);
    for (size_t k = 0; k < an->n_alerts; k++) {
        const pm_report_alert *a = &an->alerts[k];
        if (a->district >= nd || a->topic >= nt)
            return PM_ERR(ctx, PM_E_USAGE, "%s: analytics: surge alert %zu: district %zu "
                          "and topic %u, of %zu districts and %zu topics", name, k, a->district,
                          (unsigned)a->topic, nd, nt);
    }
    for (size_t k = 0; k < an->n_hot; k++) {
        const pm_report_hotspot *h = &an->hot[k];
        if (h->district >= nd || h->ehs_class <= PM_EHS_NONE || h->ehs_class >= PM_EHS_CLASSES)
            return PM_ERR(ctx, PM_E_USAGE, "%s: analytics: hot-spot row %zu: district %zu "
                          "of %zu, class %d (1 to %d)", name, k, h->district, nd, h->ehs_class,
                          PM_EHS_CLASSES - 1);
    }
    r->ehs = pm_calloc(nd + 1, sizeof *r->ehs);
    if (!r->ehs)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory for %zu districts' classes", nd);
    for (size_t k = 0; k < an->n_hot; k++)
        r->ehs[an->hot[k].district] = (unsigned char)an->hot[k].ehs_class;
    for (size_t i = 0; i < nd; i++)
        r->ehs_present[r->ehs[i]]++;
    return PM_OK;
}

/* ---- drawing: text ---------------------------------------------------- */

/* Everything draw_page needs: the cairo context (user unit: mm), one
 * Pango layout reused for every text, the page and its scale factor. */
typedef struct draw {
    cairo_t *cr;
    PangoFontMap *fontmap;
    PangoContext *pango;
    PangoLayout *lay;
    PangoFontDescription *font;
    const report *r;
    double W, H;      /* page, mm */
    double f;         /* design scale (A4 landscape = 1) */
    double tol;       /* vertices closer than this (mm) to the last drawn are skipped */
} draw;

static void set_rgb(cairo_t *cr, unsigned rgb)
{
    cairo_set_source_rgb(cr, ((rgb >> 16) & 255) / 255.0, ((rgb >> 8) & 255) / 255.0,
                         (rgb & 255) / 255.0);
}

/* Prepares the layout: text s at pt points (× f), bold or not, ellipsized
 * to w mm (w <= 0: no limit), aligned in that width. */
static void text_set(draw *d, const char *s, double pt, int bold, double w, PangoAlignment al)
{
    pango_font_description_set_weight(d->font, bold ? PANGO_WEIGHT_BOLD : PANGO_WEIGHT_NORMAL);
    pango_font_description_set_absolute_size(d->font, pt * d->f * MM_PER_PT * PANGO_SCALE);
    pango_layout_set_font_description(d->lay, d->font);
    pango_layout_set_width(d->lay, w > 0 ? (int)(w * PANGO_SCALE) : -1);
    pango_layout_set_ellipsize(d->lay, w > 0 ? PANGO_ELLIPSIZE_END : PANGO_ELLIPSIZE_NONE);
    pango_layout_set_alignment(d->lay, al);
    pango_layout_set_text(d->lay, s, -1);
}

/* The logical size of the prepared layout, mm. */
static void text_extent(const draw *d, double *w, double *h)
{
    PangoRectangle lg;
    pango_layout_get_extents(d->lay, NULL, &lg);
    if (w)
        *w = (double)lg.width / PANGO_SCALE;
    if (h)
        *h = (double)lg.height / PANGO_SCALE;
}

/* Draws s in box b, vertically centred, ellipsized to b.w. */
static void text_box(draw *d, const char *s, rect b, double pt, int bold, unsigned rgb,
                     PangoAlignment al)
{
    if (b.w <= 0)
        return;
    text_set(d, s, pt, bold, b.w, al);
    double h;
    text_extent(d, NULL, &h);
    set_rgb(d->cr, rgb);
    cairo_move_to(d->cr, b.x, b.y + (b.h - h) / 2);
    pango_cairo_show_layout(d->cr, d->lay);
}

/* Copies s cut to max_chars characters (UTF-8), "…" ending a cut one. */
static void shorten(const char *s, size_t max_chars, char *buf, size_t cap)
{
    size_t chars = 0, i = 0, cut = 0;
    for (; s[i]; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80 && chars++ == max_chars - 1)
            cut = i;
    if (chars <= max_chars || cap < 4) {
        snprintf(buf, cap, "%s", s);
        return;
    }
    while (cut > 0 && (s[cut - 1] == ' ' || s[cut - 1] == ',' || s[cut - 1] == '-'))
        cut--;
    if (cut + 4 > cap)
        cut = cap - 4;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    memcpy(buf, s, cut);
    memcpy(buf + cut, "\xe2\x80\xa6", 4);
}

/* ---- drawing: layout --------------------------------------------------- */

#define C_TEXT 0x222222u
#define C_GREY 0x666666u
#define C_RULE 0xbbbbbbu
#define C_BORDER 0x4d4d4du
#define C_HATCH 0x9e9e9eu
#define C_ZEBRA 0xf2f2f2u

/* Where everything goes, mm. */
typedef struct page_layout {
    rect header, map, legend, scale, side;
} page_layout;

#define STRIP_H 18.0      /* the legend and scale strip under the map, mm at f = 1 */
#define HEAT_ROW_H 5.0    /* the heat layer's legend line, under the classes */

static page_layout layout_page(const draw *d)
{
    double f = d->f, m = 10 * f;
    page_layout L;
    L.header = (rect){m, m, d->W - 2 * m, 14 * f};
    double top = m + 18 * f, bottom = d->H - m, cw = d->W - 2 * m;
    double side_w = 0.35 * cw, gap = 7 * f, strip = STRIP_H * f;
    double legend_h = strip + (d->r->heat_on ? HEAT_ROW_H * f : 0);
    L.side = (rect){d->W - m - side_w, top, side_w, bottom - top};
    double map_w = cw - side_w - gap;
    L.map = (rect){m, top, map_w, bottom - top - legend_h - 3 * f};
    double scale_w = fmin(48 * f, 0.3 * map_w);
    L.legend = (rect){m, bottom - legend_h, map_w - scale_w - 4 * f, legend_h};
    L.scale = (rect){m + map_w - scale_w, bottom - strip, scale_w, strip};
    return L;
}

/* A page's header: the title, under it the period (left) and the
 * generation date (right), and a rule. */
static void draw_header(draw *d, rect b, const char *title, const char *period)
{
    double f = d->f;
    text_box(d, title, (rect){b.x, b.y, b.w, 8 * f}, 16, 1, C_TEXT, PANGO_ALIGN_LEFT);
    rect sub = {b.x, b.y + 8.5 * f, b.w * 0.6, 4.5 * f};
    text_box(d, period, sub, 9, 0, C_TEXT, PANGO_ALIGN_LEFT);
    sub.x = b.x + b.w * 0.6;
    sub.w = b.w * 0.4;
    text_box(d, d->r->generated, sub, 9, 0, C_GREY, PANGO_ALIGN_RIGHT);
    set_rgb(d->cr, C_RULE);
    cairo_set_line_width(d->cr, 0.3 * f);
    cairo_move_to(d->cr, b.x, b.y + b.h + 1.5 * f);
    cairo_line_to(d->cr, b.x + b.w, b.y + b.h + 1.5 * f);
    cairo_stroke(d->cr);
}

/* ---- drawing: map ------------------------------------------------------ */

/* Projected metres → page mm: centre of the extent at the frame's centre. */
typedef struct map_fit {
    double s;              /* mm per metre */
    double cx, cy;         /* extent centre, metres */
    double fx, fy;         /* frame centre, mm */
} map_fit;

static map_fit fit_map(const geo_map *m, rect frame)
{
    map_fit t = {0, 0, 0, frame.x + frame.w / 2, frame.y + frame.h / 2};
    if (!m->have_extent)
        return t;
    double ew = m->maxx - m->minx, eh = m->maxy - m->miny, pad = 0.97;
    t.s = pad * fmin(ew > 0 ? frame.w / ew : INFINITY, eh > 0 ? frame.h / eh : INFINITY);
    if (!isfinite(t.s))
        t.s = 1e-3;   /* a single point: 1 mm per km */
    t.cx = (m->minx + m->maxx) / 2;
    t.cy = (m->miny + m->maxy) / 2;
    return t;
}

static double fx(const map_fit *t, double x) { return t->fx + (x - t->cx) * t->s; }
static double fy(const map_fit *t, double y) { return t->fy - (y - t->cy) * t->s; }

/* The path of district i (every ring; fill with the even-odd rule). */
static void path_district(draw *d, const map_fit *t, size_t i)
{
    const geo_map *m = &d->r->map;
    size_t r0 = i ? m->dist_ring_end[i - 1] : 0;
    for (size_t ring = r0; ring < m->dist_ring_end[i]; ring++) {
        size_t p0 = ring ? m->ring_end[ring - 1] : 0, p1 = m->ring_end[ring];
        double lx = 0, ly = 0;
        for (size_t p = p0; p < p1; p++) {
            double x = fx(t, m->xy[2 * p]), y = fy(t, m->xy[2 * p + 1]);
            if (p == p0) {
                cairo_move_to(d->cr, x, y);
            } else if (p + 1 == p1 || fabs(x - lx) + fabs(y - ly) >= d->tol) {
                cairo_line_to(d->cr, x, y);
            } else {
                continue;
            }
            lx = x;
            ly = y;
        }
        cairo_close_path(d->cr);
    }
}

/* The heat raster over the frame it was computed for, scaled up with
 * cairo's bilinear filter. */
static void draw_heat(draw *d)
{
    const heat_raster *h = &d->r->heat;
    if (!h->argb)
        return;
    cairo_t *cr = d->cr;
    cairo_surface_t *img =
        cairo_image_surface_create_for_data(h->argb, CAIRO_FORMAT_ARGB32, h->w, h->h, h->stride);
    cairo_save(cr);
    cairo_translate(cr, h->frame.x, h->frame.y);
    cairo_scale(cr, 1 / h->px_mm, 1 / h->px_mm);
    cairo_set_source_surface(cr, img, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_BILINEAR);
    cairo_paint(cr);
    cairo_restore(cr);
    cairo_surface_destroy(img);
}

/* Fills the current path grey with diagonal hatching ("нет данных"). */
static void fill_nodata(draw *d)
{
    cairo_t *cr = d->cr;
    set_rgb(cr, PM_FIGURE_NODATA);
    cairo_fill_preserve(cr);
    cairo_save(cr);
    cairo_clip(cr);
    double x0, y0, x1, y1, step = 1.2 * d->f;
    cairo_clip_extents(cr, &x0, &y0, &x1, &y1);
    for (double x = x0 - (y1 - y0); x < x1; x += step) {
        cairo_move_to(cr, x, y1);
        cairo_line_to(cr, x + (y1 - y0), y0);
    }
    set_rgb(cr, C_HATCH);
    cairo_set_line_width(cr, 0.15 * d->f);
    cairo_stroke(cr);
    cairo_restore(cr);
}

static int rect_overlap(rect a, rect b)
{
    return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

/* The box of a w × h label centred at (x, y) shifted down by dy, moved
 * inside the frame; 0 when it clashes with one of the n placed. */
static int label_fits(rect frame, double x, double y, double w, double h, double dy,
                      const rect *placed, size_t n, rect *out)
{
    rect b = {x - w / 2, y - h / 2 + dy, w, h};
    b.x = fmin(fmax(b.x, frame.x), frame.x + frame.w - b.w);
    b.y = fmin(fmax(b.y, frame.y), frame.y + frame.h - b.h);
    for (size_t j = 0; j < n; j++)
        if (rect_overlap(b, placed[j]))
            return 0;
    *out = b;
    return 1;
}

/* Names of districts idx[0 .. n-1] (at most N_LABELS) at their points
 * on surface (or just above or below, if that is where they fit), with a
 * white halo; a label that would overlap one already placed is skipped. */
static void draw_labels(draw *d, const map_fit *t, rect frame, const size_t *idx, size_t n)
{
    const report *r = d->r;
    rect placed[N_LABELS];
    size_t n_placed = 0;
    for (size_t k = 0; k < n && k < N_LABELS; k++) {
        size_t i = idx[k];
        double lx = r->map.label_xy[2 * i], ly = r->map.label_xy[2 * i + 1];
        char name[128];
        shorten(pm_district_name(r->ds, i), LABEL_CHARS, name, sizeof name);
        if (!isfinite(lx) || !name[0])
            continue;
        text_set(d, name, 7, 1, 0, PANGO_ALIGN_LEFT);
        double w, h, pad = 0.4 * d->f;
        text_extent(d, &w, &h);
        w += 2 * pad;
        h += 2 * pad;
        if (w > frame.w || h > frame.h)
            continue;
        rect b;
        const double shifts[] = {0, -h, h};
        int ok = 0;
        for (size_t s = 0; s < 3 && !ok; s++)
            ok = label_fits(frame, fx(t, lx), fy(t, ly), w, h, shifts[s], placed, n_placed, &b);
        if (!ok)
            continue;
        placed[n_placed++] = b;
        cairo_move_to(d->cr, b.x + pad, b.y + pad);
        pango_cairo_layout_path(d->cr, d->lay);
        set_rgb(d->cr, 0xffffff);
        cairo_set_line_width(d->cr, 0.8 * d->f);
        cairo_set_line_join(d->cr, CAIRO_LINE_JOIN_ROUND);
        cairo_stroke(d->cr);
        cairo_move_to(d->cr, b.x + pad, b.y + pad);
        set_rgb(d->cr, C_TEXT);
        pango_cairo_show_layout(d->cr, d->lay);
    }
}

/* The colour of district i on a map: 1 and *rgb, or 0 for no data
 * (grey, hatched). */
typedef int (*district_colour_fn)(const report *r, size_t i, unsigned *rgb);

/* Every district filled with its colour, clipped to the frame (the clip
 * stays until map_end()). */
static void map_fill(draw *d, rect frame, const map_fit *t, district_colour_fn colour)
{
    cairo_t *cr = d->cr;
    cairo_save(cr);
    cairo_rectangle(cr, frame.x, frame.y, frame.w, frame.h);
    cairo_clip(cr);
    cairo_set_fill_rule(cr, CAIRO_FILL_RULE_EVEN_ODD);
    for (size_t i = 0; i < d->r->n_d; i++) {
        unsigned rgb;
        path_district(d, t, i);
        if (!colour(d->r, i, &rgb)) {
            fill_nodata(d);
        } else {
            set_rgb(cr, rgb);
            cairo_fill_preserve(cr);
        }
        cairo_new_path(cr);
    }
}

/* The borders over the fills, the labels of districts idx[0 .. n-1],
 * and the end of the frame's clip. */
static void map_end(draw *d, rect frame, const map_fit *t, const size_t *idx, size_t n)
{
    const report *r = d->r;
    cairo_t *cr = d->cr;
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_width(cr, (r->n_d > 60 ? 0.1 : 0.15) * d->f);
    set_rgb(cr, C_BORDER);
    for (size_t i = 0; i < r->n_d; i++)
        path_district(d, t, i);
    cairo_stroke(cr);
    draw_labels(d, t, frame, idx, n);
    cairo_restore(cr);
}

static int figure_colour(const report *r, size_t i, unsigned *rgb)
{
    if (r->cls[i] < 0)
        return 0;
    *rgb = pm_classes_colour(&r->classes, r->cls[i]);
    return 1;
}

/* The report's map: the figure's classes, the heat layer, the top
 * districts' names. */
static void draw_map(draw *d, rect frame, const map_fit *t)
{
    const report *r = d->r;
    size_t idx[N_LABELS], n = 0;
    for (; n < r->n_top && n < N_LABELS; n++)
        idx[n] = r->top[n].idx;
    map_fill(d, frame, t, figure_colour);
    draw_heat(d);
    map_end(d, frame, t, idx, n);
}

/* A legend entry: a swatch of colour rgb (has_colour 0: no data,
 * hatched) and its text. */
static void swatch_entry(draw *d, rect cell, int has_colour, unsigned rgb, const char *text)
{
    double f = d->f, sw = 5 * f, sh = 3.2 * f;
    cairo_rectangle(d->cr, cell.x, cell.y + (cell.h - sh) / 2, sw, sh);
    if (!has_colour) {
        fill_nodata(d);
    } else {
        set_rgb(d->cr, rgb);
        cairo_fill_preserve(d->cr);
    }
    set_rgb(d->cr, C_BORDER);
    cairo_set_line_width(d->cr, 0.15 * f);
    cairo_stroke(d->cr);
    rect tb = {cell.x + sw + 1.5 * f, cell.y, cell.w - sw - 3 * f, cell.h};
    text_box(d, text, tb, 7.5, 0, C_TEXT, PANGO_ALIGN_LEFT);
}

/* A legend entry of the figure's class cls (-1: no data). */
static void legend_entry(draw *d, rect cell, int cls, const char *text)
{
    swatch_entry(d, cell, cls >= 0, cls >= 0 ? pm_classes_colour(&d->r->classes, cls) : 0, text);
}

/* Draws s from x, vertically centred in row b, unshortened; returns
 * where it ends. */
static double text_run(draw *d, const char *s, double x, rect b, double pt, unsigned rgb)
{
    text_set(d, s, pt, 0, 0, PANGO_ALIGN_LEFT);
    double w, h;
    text_extent(d, &w, &h);
    set_rgb(d->cr, rgb);
    cairo_move_to(d->cr, x, b.y + (b.h - h) / 2);
    pango_cairo_show_layout(d->cr, d->lay);
    return x + w;
}

/* "Плотность обращений: меньше [ramp] больше" — the heat layer's ramp as
 * drawn on the map (over white). */
static void draw_heat_legend(draw *d, rect b)
{
    const heat_raster *h = &d->r->heat;
    double f = d->f, gap = 1.5 * f, bar_w = fmin(30 * f, 0.3 * b.w), bar_h = 3.2 * f;
    double x = text_run(d, "Плотность обращений:", b.x, b, 7.5, C_TEXT) + 2 * gap;
    x = text_run(d, "меньше", x, b, 7, C_GREY) + gap;
    cairo_pattern_t *g = cairo_pattern_create_linear(x, 0, x + bar_w, 0);
    for (int k = 0; k <= 16; k++) {
        const uint8_t *c = h->lut[k * 255 / 16];
        cairo_pattern_add_color_stop_rgba(g, k / 16.0, c[0] / 255.0, c[1] / 255.0, c[2] / 255.0,
                                          c[3] / 255.0);
    }
    cairo_rectangle(d->cr, x, b.y + (b.h - bar_h) / 2, bar_w, bar_h);
    cairo_set_source(d->cr, g);
    cairo_fill_preserve(d->cr);
    cairo_pattern_destroy(g);
    set_rgb(d->cr, C_BORDER);
    cairo_set_line_width(d->cr, 0.15 * f);
    cairo_stroke(d->cr);
    text_run(d, "больше", x + bar_w + gap, b, 7, C_GREY);
}

/* The legend: the figure's title, then the classes in up to three rows
 * per column, then the heat layer's line. */
static void draw_legend(draw *d, rect b)
{
    const report *r = d->r;
    double f = d->f, title_h = 4.5 * f, heat_h = r->heat_on ? HEAT_ROW_H * f : 0;
    text_box(d, pm_figure_title_ru(r->fig), (rect){b.x, b.y, b.w, title_h}, 8, 1, C_TEXT, PANGO_ALIGN_LEFT);
    if (heat_h > 0)
        draw_heat_legend(d, (rect){b.x, b.y + b.h - heat_h, b.w, heat_h});
    size_t n = r->classes.n + (r->classes.has_nodata ? 1 : 0), rows = 3;
    if (n == 0)
        return;
    size_t cols = (n + rows - 1) / rows;
    double cw = fmin(b.w / (double)cols, 48 * f), rh = (b.h - title_h - heat_h) / (double)rows;
    for (size_t e = 0; e < n; e++) {
        rect cell = {b.x + (double)(e / rows) * cw, b.y + title_h + (double)(e % rows) * rh, cw, rh};
        char text[160] = NO_DATA, lo[64], hi[64];
        int cls = -1;
        if (e < r->classes.n) {
            cls = (int)e;
            fmt_value(r, r->classes.lo[e], 0, lo, sizeof lo);
            fmt_value(r, r->classes.hi[e], 1, hi, sizeof hi);
            char lo_unit[64];
            fmt_value(r, r->classes.lo[e], 1, lo_unit, sizeof lo_unit);
            if (strcmp(lo_unit, hi) == 0)
                snprintf(text, sizeof text, "%s", hi);
            else
                snprintf(text, sizeof text, "%s " EN_DASH " %s", lo, hi);
        }
        legend_entry(d, cell, cls, text);
    }
}

/* A scale bar of a round length (1-2-5 series) at most b.w long. */
static void draw_scale_bar(draw *d, rect b, const map_fit *t)
{
    if (!(t->s > 0))
        return;
    double f = d->f, max_len = b.w - 2 * f, ground = max_len / t->s;   /* metres */
    double p = pow(10, floor(log10(ground))), m = ground / p;
    double len_m = (m >= 5 ? 5 : m >= 2 ? 2 : 1) * p, len = len_m * t->s;
    double x0 = b.x + b.w - len - 1 * f, bar_h = 1.4 * f, y = b.y + b.h - 5 * f;
    cairo_t *cr = d->cr;
    for (int k = 0; k < 2; k++) {
        cairo_rectangle(cr, x0 + k * len / 2, y, len / 2, bar_h);
        set_rgb(cr, k == 0 ? C_TEXT : 0xffffff);
        cairo_fill_preserve(cr);
        set_rgb(cr, C_TEXT);
        cairo_set_line_width(cr, 0.2 * f);
        cairo_stroke(cr);
    }
    char num[64], text[96];
    pm_format_number(len_m >= 1000 ? len_m / 1000 : len_m, 0, 0, num, sizeof num);
    snprintf(text, sizeof text, "%s %s", num, len_m >= 1000 ? "км" : "м");
    double th = 4 * f;
    text_box(d, "0", (rect){x0 - 5 * f, y - th - 0.5 * f, 10 * f, th}, 7, 0, C_TEXT,
             PANGO_ALIGN_CENTER);
    text_box(d, text, (rect){b.x, y - th - 0.5 * f, b.w, th}, 7, 0, C_TEXT, PANGO_ALIGN_RIGHT);
    if (d->r->attribution) /* under the bar, small and grey */
        text_box(d, d->r->attribution, (rect){b.x - b.w, y + bar_h + 0.6 * f, 2 * b.w, 3 * f}, 5.5, 0,
                 C_GREY, PANGO_ALIGN_RIGHT);
}

/* ---- drawing: side panel ---------------------------------------------- */

#define SEC_H 6.0     /* a section title, mm at f = 1 */
#define ROW_H 4.2     /* a table row */
#define SEC_GAP 4.0

static double section_title(draw *d, const char *s, rect b)
{
    text_box(d, s, (rect){b.x, b.y, b.w, SEC_H * d->f}, 10, 1, C_TEXT, PANGO_ALIGN_LEFT);
    return b.y + SEC_H * d->f;
}

/* A table row's colour square at x in the row from y: its side. */
static double row_square(draw *d, double x, double y, unsigned rgb)
{
    double f = d->f, rh = ROW_H * f, sq = 2.6 * f;
    cairo_rectangle(d->cr, x, y + (rh - sq) / 2, sq, sq);
    set_rgb(d->cr, rgb);
    cairo_fill_preserve(d->cr);
    set_rgb(d->cr, C_BORDER);
    cairo_set_line_width(d->cr, 0.1 * f);
    cairo_stroke(d->cr);
    return sq;
}

static double top_table_height(const draw *d)
{
    size_t n = d->r->n_top < N_TOP ? d->r->n_top : N_TOP;
    return (SEC_H + ROW_H * (double)(1 + (n ? n : 1))) * d->f;
}

/* "Топ-10 районов": rank, class swatch and name, complaints, figure. */
static void draw_top_table(draw *d, rect b)
{
    const report *r = d->r;
    double f = d->f, rh = ROW_H * f, y = section_title(d, "Топ-10 районов", b);
    int two = !pm_figure_is_count(r->fig);
    double w_rank = 6 * f, w_num = 19 * f, w_fig = two ? 19 * f : 0;
    double x_name = b.x + w_rank, w_name = b.w - w_rank - w_num - w_fig - 1 * f;
    double x_num = b.x + b.w - w_fig - w_num, x_fig = b.x + b.w - w_fig;
    text_box(d, "№", (rect){b.x, y, w_rank, rh}, 7, 0, C_GREY, PANGO_ALIGN_LEFT);
    text_box(d, "Район", (rect){x_name, y, w_name, rh}, 7, 0, C_GREY, PANGO_ALIGN_LEFT);
    text_box(d, "Обращений", (rect){x_num, y, w_num, rh}, 7, !two, C_GREY, PANGO_ALIGN_RIGHT);
    if (two)
        text_box(d, pm_figure_column_ru(r->fig), (rect){x_fig, y, w_fig, rh}, 7, 1, C_GREY,
                 PANGO_ALIGN_RIGHT);
    y += rh;
    set_rgb(d->cr, C_RULE);
    cairo_set_line_width(d->cr, 0.2 * f);
    cairo_move_to(d->cr, b.x, y);
    cairo_line_to(d->cr, b.x + b.w, y);
    cairo_stroke(d->cr);
    if (r->n_top == 0)
        text_box(d, NO_DATA, (rect){x_name, y, w_name, rh}, 7.5, 0, C_GREY, PANGO_ALIGN_LEFT);
    for (size_t k = 0; k < r->n_top && k < N_TOP; k++, y += rh) {
        size_t i = r->top[k].idx;
        if (k % 2) {
            cairo_rectangle(d->cr, b.x, y, b.w, rh);
            set_rgb(d->cr, C_ZEBRA);
            cairo_fill(d->cr);
        }
        char num[64];
        snprintf(num, sizeof num, "%zu", k + 1);
        text_box(d, num, (rect){b.x, y, w_rank, rh}, 7.5, 0, C_GREY, PANGO_ALIGN_LEFT);
        double sq = row_square(d, x_name, y, pm_classes_colour(&r->classes, r->cls[i]));
        const char *name = pm_district_name(r->ds, i);
        text_box(d, name[0] ? name : pm_district_id(r->ds, i),
                 (rect){x_name + sq + 1.2 * f, y, w_name - sq - 1.2 * f, rh}, 7.5, 0, C_TEXT,
                 PANGO_ALIGN_LEFT);
        pm_format_number((double)r->drows[i].count, 0, 0, num, sizeof num);
        text_box(d, num, (rect){x_num, y, w_num, rh}, 7.5, !two, C_TEXT, PANGO_ALIGN_RIGHT);
        if (two) {
            fmt_value(r, r->value[i], 1, num, sizeof num);
            text_box(d, num, (rect){x_fig, y, w_fig, rh}, 7.5, 1, C_TEXT, PANGO_ALIGN_RIGHT);
        }
    }
}

static unsigned parse_colour(const char *s)
{
    unsigned v = 0;
    if (!s || s[0] != '#' || strlen(s) != 7 || sscanf(s + 1, "%6x", &v) != 1)
        return 0x999999;
    return v;
}

/* One bar of the topic chart. */
static void topic_bar(draw *d, rect row, const char *name, unsigned colour, uint64_t count,
                      uint64_t max)
{
    double f = d->f, w_name = 0.38 * row.w, w_num = 15 * f;
    double x_bar = row.x + w_name + 1.5 * f, w_bar = row.w - w_name - w_num - 3 * f;
    text_box(d, name, (rect){row.x, row.y, w_name, row.h}, 7.5, 0, C_TEXT, PANGO_ALIGN_LEFT);
    double len = max ? w_bar * (double)count / (double)max : 0, bh = fmin(0.65 * row.h, 3.6 * f);
    cairo_rectangle(d->cr, x_bar, row.y + (row.h - bh) / 2, fmax(len, 0.3 * f), bh);
    set_rgb(d->cr, colour);
    cairo_fill(d->cr);
    char num[64];
    pm_format_number((double)count, 0, 0, num, sizeof num);
    text_box(d, num, (rect){x_bar + len + 1 * f, row.y, w_num, row.h}, 7.5, 0, C_TEXT,
             PANGO_ALIGN_LEFT);
}

/* "Обращения по темам": bars in the catalogue's colours, most first; what
 * does not fit in b is summed into one grey bar. */
static void draw_topics(draw *d, rect b)
{
    const report *r = d->r;
    double f = d->f, y = section_title(d, "Обращения по темам", b);
    double avail = b.y + b.h - y, min_h = 3.6 * f;
    size_t n = r->n_topic_order, fit = avail > min_h ? (size_t)(avail / min_h) : 0;
    if (n == 0) {
        text_box(d, NO_DATA, (rect){b.x, y, b.w, ROW_H * f}, 7.5, 0, C_GREY, PANGO_ALIGN_LEFT);
        return;
    }
    if (fit == 0)
        return;
    size_t shown = n <= fit ? n : fit - 1;
    double rh = fmin(5.0 * f, avail / (double)(shown + (shown < n)));
    uint64_t max = r->topic_order[0].count, rest = 0;
    size_t nt = pm_topics_count(r->topics);
    for (size_t k = 0; k < n; k++) {
        size_t t = r->topic_order[k].idx;
        if (k >= shown) {
            rest += r->topic_order[k].count;
            continue;
        }
        char fallback[32];
        snprintf(fallback, sizeof fallback, "тема %zu", t);
        const char *name = t < nt ? pm_topic_name_ru(r->topics, t) : fallback;
        unsigned colour = t < nt ? parse_colour(pm_topic_color(r->topics, t)) : 0x999999;
        topic_bar(d, (rect){b.x, y, b.w, rh}, name, colour, r->topic_order[k].count, max);
        y += rh;
    }
    if (shown < n) {
        char name[64];
        snprintf(name, sizeof name, "Остальные (%zu)", n - shown);
        topic_bar(d, (rect){b.x, y, b.w, rh}, name, 0xbbbbbb, rest, max > rest ? max : rest);
    }
}

#define ANSWER_ROWS 4

/* "Ответы": the figures of the total row. */
static void draw_answers(draw *d, rect b)
{
    const pm_row *t = d->r->total;
    double f = d->f, rh = ROW_H * f, y = section_title(d, "Ответы", b);
    char v[ANSWER_ROWS][64];
    int hidden = t->suppressed;
    pm_format_number(hidden ? NAN : (double)t->count, 0, 0, v[0], sizeof v[0]);
    pm_format_number(hidden ? NAN : 100 * t->share_24h, 1, 0, v[1], sizeof v[1]);
    if (isfinite(t->share_24h) && !hidden)
        strcat(v[1], " %");
    pm_format_number(hidden ? NAN : t->median_h, 1, 0, v[2], sizeof v[2]);
    if (isfinite(t->median_h) && !hidden)
        strcat(v[2], " ч");
    pm_format_number(hidden ? NAN : (double)t->overdue, 0, 0, v[3], sizeof v[3]);
    static const char *const LABELS[ANSWER_ROWS] = {
        "Всего обращений", "Доля ответов за 24 ч", "Медианное время ответа", "Просрочено"};
    for (int k = 0; k < ANSWER_ROWS; k++, y += rh) {
        text_box(d, LABELS[k], (rect){b.x, y, b.w * 0.65, rh}, 7.5, 0, C_TEXT, PANGO_ALIGN_LEFT);
        text_box(d, v[k], (rect){b.x + b.w * 0.65, y, b.w * 0.35, rh}, 7.5, 1, C_TEXT,
                 PANGO_ALIGN_RIGHT);
    }
}

/* Top table, topics in the room left, answers at the bottom. */
static void draw_side(draw *d, rect b)
{
    double f = d->f, gap = SEC_GAP * f;
    double top_h = top_table_height(d), ans_h = (SEC_H + ROW_H * ANSWER_ROWS) * f;
    draw_top_table(d, (rect){b.x, b.y, b.w, top_h});
    double ty = b.y + top_h + gap, th = b.h - top_h - ans_h - 2 * gap;
    if (th > 0)
        draw_topics(d, (rect){b.x, ty, b.w, th});
    draw_answers(d, (rect){b.x, b.y + b.h - ans_h, b.w, ans_h});
}

/* The whole page, in mm. */
static void draw_page(draw *d)
{
    cairo_t *cr = d->cr;
    set_rgb(cr, 0xffffff);
    cairo_paint(cr);
    page_layout L = layout_page(d);
    map_fit t = fit_map(&d->r->map, L.map);
    draw_header(d, L.header, d->r->title, d->r->period);
    draw_map(d, L.map, &t);
    draw_legend(d, L.legend);
    draw_scale_bar(d, L.scale, &t);
    draw_side(d, L.side);
}

/* ---- drawing: the analytics page --------------------------------------- */

#define AN_TITLE "Аналитика: появляющиеся горячие точки и всплески обращений"
#define NOT_FOUND "не выявлено"
#define MAX_COLS 7
#define TREND_Z 1.96   /* |Mann-Kendall z| of a trend (p < 0.05, as pm_ehs_opts) */

/* A table: its box and columns; the column sq_col (-1: none) starts with
 * a colour square. */
typedef struct table {
    rect b;
    size_t n;
    const char *head[MAX_COLS];
    double x[MAX_COLS], w[MAX_COLS];
    PangoAlignment al[MAX_COLS];
    int bold[MAX_COLS];
    int sq_col;
} table;

/* A column: heading, width in mm at f = 1 (0: the room left), alignment,
 * bold values. */
typedef struct column {
    const char *head;
    double w;
    PangoAlignment al;
    int bold;
} column;

static table table_of(const draw *d, rect b, const column *c, size_t n, int sq_col)
{
    table t = {.b = b, .n = n, .sq_col = sq_col};
    double fixed = 0, gap = 1 * d->f;
    for (size_t k = 0; k < n; k++)
        fixed += c[k].w * d->f + (k ? gap : 0);
    double x = b.x;
    for (size_t k = 0; k < n; k++) {
        t.head[k] = c[k].head;
        t.w[k] = c[k].w > 0 ? c[k].w * d->f : fmax(b.w - fixed, 0);
        t.x[k] = x;
        t.al[k] = c[k].al;
        t.bold[k] = c[k].bold;
        x += t.w[k] + gap;
    }
    return t;
}

/* The headings and the rule under them; the y below. */
static double table_head(draw *d, const table *t, double y)
{
    double f = d->f, rh = ROW_H * f;
    for (size_t k = 0; k < t->n; k++)
        text_box(d, t->head[k], (rect){t->x[k], y, t->w[k], rh}, 7, 0, C_GREY, t->al[k]);
    y += rh;
    set_rgb(d->cr, C_RULE);
    cairo_set_line_width(d->cr, 0.2 * f);
    cairo_move_to(d->cr, t->b.x, y);
    cairo_line_to(d->cr, t->b.x + t->b.w, y);
    cairo_stroke(d->cr);
    return y;
}

/* Row k (from 0; odd rows shaded) at y: cells[0] is the rank (grey). */
static void table_row(draw *d, const table *t, double y, size_t k, const char *const *cells,
                      unsigned sq_rgb)
{
    double f = d->f, rh = ROW_H * f;
    if (k % 2) {
        cairo_rectangle(d->cr, t->b.x, y, t->b.w, rh);
        set_rgb(d->cr, C_ZEBRA);
        cairo_fill(d->cr);
    }
    for (size_t c = 0; c < t->n; c++) {
        rect cell = {t->x[c], y, t->w[c], rh};
        if ((int)c == t->sq_col) {
            double sq = row_square(d, cell.x, y, sq_rgb) + 1.2 * f;
            cell.x += sq;
            cell.w -= sq;
        }
        text_box(d, cells[c], cell, 7.5, t->bold[c], c ? C_TEXT : C_GREY, t->al[c]);
    }
}

/* Rows a table of n entries shows in height h (its title and headings
 * included): at most PM_REPORT_ANALYTICS_ROWS, and when not all, room
 * for the line "и ещё N" under them. */
static size_t table_shown(const draw *d, size_t n, double h)
{
    double room = h / d->f - SEC_H - ROW_H;
    size_t fit = room > 0 ? (size_t)(room / ROW_H + 1e-9) : 0, cap = PM_REPORT_ANALYTICS_ROWS;
    if (n <= cap && n <= fit)
        return n;
    cap = cap < fit ? cap : fit > 0 ? fit - 1 : 0;
    return n < cap ? n : cap;
}

/* The height of a table of n entries with all its rows. */
static double table_height(const draw *d, size_t n)
{
    size_t cap = PM_REPORT_ANALYTICS_ROWS, rows = n == 0 ? 1 : n <= cap ? n : cap + 1;
    return (SEC_H + ROW_H * (double)(1 + rows)) * d->f;
}

/* The line under a table's rows: "не выявлено" when it has none, "и ещё
 * N" when not all are shown. */
static void table_tail(draw *d, const table *t, double y, size_t n, size_t shown)
{
    char more[64];
    const char *s = NULL;
    if (n == 0)
        s = NOT_FOUND;
    else if (shown < n && snprintf(more, sizeof more, "и ещё %zu", n - shown) > 0)
        s = more;
    if (s)
        text_box(d, s, (rect){t->x[1], y, t->b.x + t->b.w - t->x[1], ROW_H * d->f}, 7.5, 0,
                 C_GREY, PANGO_ALIGN_LEFT);
}

static const char *district_label(const report *r, size_t i)
{
    const char *name = pm_district_name(r->ds, i);
    return name[0] ? name : pm_district_id(r->ds, i);
}

/* The trend of a Gi* series as an arrow and a word. */
static const char *trend_word(double z)
{
    if (!isfinite(z))
        return "—";
    return z >= TREND_Z ? "↑ растёт" : z <= -TREND_Z ? "↓ снижается" : "→ без тренда";
}

/* "Появляющиеся горячие точки": rank, district (class colour), class,
 * trend, the last week's z. */
static void draw_hot_table(draw *d, rect b)
{
    const report *r = d->r;
    const pm_report_analytics *an = r->an;
    static const column COLS[] = {{"№", 6, PANGO_ALIGN_LEFT, 0},
                                  {"Район", 0, PANGO_ALIGN_LEFT, 0},
                                  {"Класс", 52, PANGO_ALIGN_LEFT, 0},
                                  {"Тренд", 25, PANGO_ALIGN_LEFT, 0},
                                  {"Сила (z)", 15, PANGO_ALIGN_RIGHT, 1}};
    table t = table_of(d, b, COLS, 5, 1);
    double y = table_head(d, &t, section_title(d, "Появляющиеся горячие точки", b));
    size_t shown = table_shown(d, an->n_hot, b.h);
    for (size_t k = 0; k < shown; k++, y += ROW_H * d->f) {
        const pm_report_hotspot *h = &an->hot[k];
        char num[24], z[64];
        snprintf(num, sizeof num, "%zu", k + 1);
        pm_format_number(h->last_z, 1, 1, z, sizeof z);
        const char *cells[] = {num, district_label(r, h->district), EHS_RU[h->ehs_class],
                               trend_word(h->trend_z), z};
        table_row(d, &t, y, k, cells, EHS_RGB[h->ehs_class]);
    }
    table_tail(d, &t, y, an->n_hot, shown);
}

/* A count as written: whole numbers without decimals, else one. */
static void fmt_count(double v, char *buf, size_t cap)
{
    pm_format_number(v, v == floor(v) ? 0 : 1, 0, buf, cap);
}

/* "Всплески обращений": rank, district, topic (its colour), this week,
 * expected, the upper 95 % bound, "+N %" over the expected. */
static void draw_alert_table(draw *d, rect b)
{
    const report *r = d->r;
    const pm_report_analytics *an = r->an;
    static const column COLS[] = {{"№", 6, PANGO_ALIGN_LEFT, 0},
                                  {"Район", 0, PANGO_ALIGN_LEFT, 0},
                                  {"Тема", 36, PANGO_ALIGN_LEFT, 0},
                                  {"За неделю", 17, PANGO_ALIGN_RIGHT, 0},
                                  {"Ожидалось", 17, PANGO_ALIGN_RIGHT, 0},
                                  {"Граница 95 %", 21, PANGO_ALIGN_RIGHT, 0},
                                  {"Прирост", 15, PANGO_ALIGN_RIGHT, 1}};
    table t = table_of(d, b, COLS, 7, 2);
    double y = table_head(d, &t, section_title(d, "Всплески обращений", b));
    size_t shown = table_shown(d, an->n_alerts, b.h);
    for (size_t k = 0; k < shown; k++, y += ROW_H * d->f) {
        const pm_report_alert *a = &an->alerts[k];
        char num[24], obs[64], exp[64], up[64], rise[72];
        snprintf(num, sizeof num, "%zu", k + 1);
        fmt_count(a->observed, obs, sizeof obs);
        pm_format_number(a->expected, 1, 0, exp, sizeof exp);
        fmt_count(a->upper95, up, sizeof up);
        double pct = a->expected > 0 ? 100 * (a->observed - a->expected) / a->expected : NAN;
        pm_format_number(pct, 0, 1, rise, sizeof rise);
        if (isfinite(pct))
            strcat(rise, " %");
        const char *cells[] = {num, district_label(r, a->district),
                               pm_topic_name_ru(r->topics, a->topic), obs, exp, up, rise};
        table_row(d, &t, y, k, cells, parse_colour(pm_topic_color(r->topics, a->topic)));
    }
    table_tail(d, &t, y, an->n_alerts, shown);
}

static int ehs_colour(const report *r, size_t i, unsigned *rgb)
{
    *rgb = EHS_RGB[r->ehs[i]];
    return 1;
}

#define LEGEND_ONE_COLUMN 8   /* more classes than this: hot and cold in two columns */

static int ehs_is_hot(int cls) { return cls >= PM_EHS_NEW_HOT && cls <= PM_EHS_HISTORICAL_HOT; }

/* The legend's layout: the classes present, hot ones then cold ones;
 * one column of full names, or, when there are many, a column of hot and
 * one of cold under the headings "горячие точки" and "холодные точки"
 * with only the first word of each name; "нет закономерности" last. */
typedef struct ehs_key {
    int cls[PM_EHS_CLASSES];
    size_t n, n_hot, n_cold;
    int none, two_cols;
    size_t rows;
} ehs_key;

static ehs_key ehs_key_of(const report *r)
{
    ehs_key k = {.none = r->ehs_present[PM_EHS_NONE] > 0};
    for (int c = 1; c < PM_EHS_CLASSES; c++)
        if (r->ehs_present[c]) {
            k.cls[k.n++] = c;
            k.n_hot += ehs_is_hot(c);
        }
    k.n_cold = k.n - k.n_hot;
    k.two_cols = k.n + (size_t)k.none > LEGEND_ONE_COLUMN;
    k.rows = k.two_cols ? 1 + (k.n_hot > k.n_cold ? k.n_hot : k.n_cold) + (size_t)k.none
                        : k.n + (size_t)k.none;
    return k;
}

static void ehs_legend(draw *d, rect b, const ehs_key *k)
{
    double rh = ROW_H * d->f, cw = k->two_cols ? b.w / 2 : b.w;
    size_t row[2] = {0, 0};
    if (k->two_cols) {
        text_box(d, "горячие точки:", (rect){b.x, b.y, cw, rh}, 7.5, 1, C_TEXT, PANGO_ALIGN_LEFT);
        text_box(d, "холодные точки:", (rect){b.x + cw, b.y, cw, rh}, 7.5, 1, C_TEXT,
                 PANGO_ALIGN_LEFT);
        row[0] = row[1] = 1;
    }
    for (size_t e = 0; e < k->n; e++) {
        int c = k->cls[e], col = k->two_cols && !ehs_is_hot(c);
        char word[64];
        const char *name = EHS_RU[c];
        if (k->two_cols) {   /* "новая горячая точка" → "новая" */
            snprintf(word, sizeof word, "%.*s", (int)strcspn(name, " "), name);
            name = word;
        }
        swatch_entry(d, (rect){b.x + col * cw, b.y + (double)row[col]++ * rh, cw, rh}, 1,
                     EHS_RGB[c], name);
    }
    if (k->none)
        swatch_entry(d, (rect){b.x, b.y + (double)(k->rows - 1) * rh, b.w, rh}, 1,
                     EHS_RGB[PM_EHS_NONE], EHS_RU[PM_EHS_NONE]);
}

/* The districts coloured by class, the listed ones named, the legend
 * under the map. */
static void draw_ehs_map(draw *d, rect b)
{
    const report *r = d->r;
    ehs_key key = ehs_key_of(r);
    double f = d->f, y = section_title(d, "Районы по классам", b);
    double legend_h = (double)key.rows * ROW_H * f;
    rect frame = {b.x, y + 1 * f, b.w, b.y + b.h - legend_h - 2 * f - (y + 1 * f)};
    if (frame.h > 10 * f) {
        map_fit t = fit_map(&r->map, frame);
        size_t idx[N_LABELS], n = 0;
        for (; n < r->an->n_hot && n < N_LABELS; n++)
            idx[n] = r->an->hot[n].district;
        map_fill(d, frame, &t, ehs_colour);
        map_end(d, frame, &t, idx, n);
    }
    ehs_legend(d, (rect){b.x, b.y + b.h - legend_h, b.w, legend_h}, &key);
}

/* The footnote: what the page shows, in plain words. */
static void footnote_text(const report *r, char *buf, size_t cap)
{
    char fdr[64] = "";
    if (r->an->fdr > 0) {
        char pct[32];
        double p = 100 * r->an->fdr;
        pm_format_number(p, p == floor(p) ? 0 : 1, 0, pct, sizeof pct);
        snprintf(fdr, sizeof fdr, "FDR %s %%", pct);
    }
    snprintf(buf, cap,
             "Как читать. Горячая точка — район, где вместе с соседними районами обращений "
             "заметно больше, чем в среднем по региону; холодная точка — заметно меньше. Класс "
             "говорит, как это менялось по неделям: новая — только на последней неделе; "
             "последовательная — несколько последних недель подряд; усиливающаяся, устойчивая, "
             "ослабевающая — почти все недели, и сила растёт, держится или спадает; "
             "спорадическая — то появляется, то пропадает; колеблющаяся — раньше район был "
             "точкой другого знака; историческая — почти все недели, но не на последней. "
             "Сила (z) — насколько необычна последняя неделя: от 1,65 по модулю — уверенность "
             "90 %%, от 1,96 — 95 %%, от 2,58 — 99 %%; тренд — рост или спад силы за период. "
             "Всплеск — район и тема, где обращений за последнюю неделю %s.%s%s%s",
             fdr[0] ? "слишком много для прогноза по предыдущим неделям"
                    : "больше верхней границы 95 % прогноза по предыдущим неделям",
             fdr[0] ? " Поправка на множественную проверку, " : "", fdr,
             fdr[0] ? ": среди выявленных точек и всплесков случайных в среднем не больше этой "
                      "доли." : "");
}

/* Draws s wrapped to b.w from the top of b; returns its height (nothing
 * is drawn when measure_only). */
static double text_para(draw *d, const char *s, rect b, double pt, unsigned rgb, int measure_only)
{
    text_set(d, s, pt, 0, b.w, PANGO_ALIGN_LEFT);
    pango_layout_set_ellipsize(d->lay, PANGO_ELLIPSIZE_NONE);
    double h;
    text_extent(d, NULL, &h);
    if (!measure_only) {
        set_rgb(d->cr, rgb);
        cairo_move_to(d->cr, b.x, b.y);
        pango_cairo_show_layout(d->cr, d->lay);
    }
    return h;
}

/* The analytics page, in mm (the page's own origin): header, the map of
 * classes on the left, the two tables on the right, the footnote across
 * the bottom. */
static void draw_analytics_page(draw *d)
{
    const report *r = d->r;
    double f = d->f, m = 10 * f, cw = d->W - 2 * m, top = m + 18 * f, gap = 7 * f;
    char period[256] = "", note[3072];
    if (r->an->period_label)
        snprintf(period, sizeof period, "Период анализа: %s", r->an->period_label);
    draw_header(d, (rect){m, m, cw, 14 * f}, AN_TITLE, period);
    footnote_text(r, note, sizeof note);
    rect foot = {m, 0, cw, 0};
    foot.h = text_para(d, note, foot, 7, C_GREY, 1);
    foot.y = d->H - m - foot.h;
    text_para(d, note, foot, 7, C_GREY, 0);
    double bottom = foot.y - 4 * f, map_w = 0.36 * cw;
    rect left = {m, top, map_w, bottom - top}, right = {m + map_w + gap, top, cw - map_w - gap,
                                                        bottom - top};
    draw_ehs_map(d, left);
    double hot_h = fmin(table_height(d, r->an->n_hot), right.h);
    draw_hot_table(d, (rect){right.x, right.y, right.w, hot_h});
    double ay = right.y + hot_h + SEC_GAP * f;
    if (right.y + right.h - ay > 0)
        draw_alert_table(d, (rect){right.x, ay, right.w, right.y + right.h - ay});
}

/* ---- the heat layer ---------------------------------------------------- */

#define HEAT_MAX_PX 1200        /* the raster's longer side, at most */
#define HEAT_MAX_RADIUS_PX 40   /* a wider kernel coarsens the raster instead */
#define HEAT_MIN_RADIUS_PX 1.5
#define HEAT_RADIUS_SHARE 60.0  /* default radius: the map's larger side / 60 */
#define HEAT_RANGE 20.0         /* colours from top / 20 to top (log scale) */
#define HEAT_TOP_PERMILLE 990   /* top: the 99th percentile of the raster */
#define HEAT_RAMP_TOP 0.9       /* the part of inferno used: 0 .. 0.9 */
#define HEAT_ALPHA 0.85         /* the ramp's alpha at its top */

/* What the heat layer reads of the batch. */
typedef struct heat_src {
    const pm_placed *pl;
    pm_coord_column lon, lat;
    pm_created_column created;
    const uint16_t *topic;
    pm_dict_column source;
    long utc_offset_s;
    pm_heat_match match;
} heat_src;

/* Whether complaint i is on the heat layer: placed with a position, in a
 * district whose row is shown (not suppressed), passing the filter. */
static int heat_takes(const report *r, const heat_src *s, size_t i)
{
    int32_t d = s->pl->district[i];
    return pm_heat_has_position(s->pl, i, pm_coord_at(s->lon, i), pm_coord_at(s->lat, i)) &&
           d >= 0 && (size_t)d < r->n_d &&
           !r->drows[d].suppressed &&
           pm_heat_match_test(&s->match, s->topic[i], pm_dict_column_at(s->source, i),
                              pm_heat_local_day(pm_created_at(s->created, i), s->utc_offset_s));
}

/* The raster: where it lies on the page and the kernel's radius in its
 * pixels (see the file comment). */
typedef struct heat_grid {
    rect frame;
    map_fit fit;
    double px_mm, r_px;
    int w, h;
} heat_grid;

/* The kernel's radius on the ground: the caller's, else a share of the
 * map's larger side (1 km for a map of one point). */
static double heat_radius(const report *r, double radius_m)
{
    const geo_map *m = &r->map;
    double side = fmax(m->maxx - m->minx, m->maxy - m->miny);
    return radius_m > 0 ? radius_m : side > 0 ? side / HEAT_RADIUS_SHARE : 1000;
}

static heat_grid heat_grid_of(const report *r, const page *pg, double R)
{
    draw d = {.r = r, .W = pg->w_mm, .H = pg->h_mm, .f = fmin(pg->w_mm / 297.0, pg->h_mm / 210.0)};
    heat_grid g = {.frame = layout_page(&d).map};
    g.fit = fit_map(&r->map, g.frame);
    g.px_mm = fmin(pg->dpi / 25.4, HEAT_MAX_PX / fmax(g.frame.w, g.frame.h));
    g.r_px = R * g.fit.s * g.px_mm;
    if (g.r_px > HEAT_MAX_RADIUS_PX) {
        g.px_mm *= HEAT_MAX_RADIUS_PX / g.r_px;
        g.r_px = HEAT_MAX_RADIUS_PX;
    }
    g.r_px = fmax(g.r_px, HEAT_MIN_RADIUS_PX);
    g.w = (int)ceil(g.frame.w * g.px_mm);
    g.h = (int)ceil(g.frame.h * g.px_mm);
    g.w = g.w < 1 ? 1 : g.w;
    g.h = g.h < 1 ? 1 : g.h;
    return g;
}

/* Counts the points into the raster's pixels (a point moves at most half
 * a pixel: a thirtieth of the kernel's radius or less). */
static void heat_bin(const heat_grid *g, const double *xy, size_t n, uint32_t *bins)
{
    for (size_t k = 0; k < n; k++) {
        double u = (fx(&g->fit, xy[2 * k]) - g->frame.x) * g->px_mm;
        double v = (fy(&g->fit, xy[2 * k + 1]) - g->frame.y) * g->px_mm;
        if (u >= 0 && v >= 0 && u < g->w && v < g->h)
            bins[(size_t)v * (size_t)g->w + (size_t)u]++;
    }
}

enum {
    HEAT_CHUNK = 1 << 16,      /* complaints projected at a time */
    HEAT_PART_MIN = 1 << 20,   /* complaints worth a thread of their own */
    HEAT_THREADS_MAX = 16
};

/* One thread's share of the heat layer's complaints, [i0, i1): projected
 * with its own PJ (a PJ and its context serve one thread at a time) and
 * counted into its own bins. */
typedef struct heat_part {
    const report *r;
    const heat_src *s;
    const heat_grid *g;
    PJ *P;
    size_t i0, i1, n;
    uint32_t *bins;
    int nomem;
} heat_part;

static void *heat_part_run(void *arg)
{
    heat_part *hp = arg;
    double *xy = pm_malloc(2 * HEAT_CHUNK * sizeof *xy);
    hp->nomem = xy == NULL;
    size_t k = 0;
    for (size_t i = hp->i0; xy && i <= hp->i1; i++) {
        if (i < hp->i1 && heat_takes(hp->r, hp->s, i)) {
            xy[2 * k] = pm_coord_at(hp->s->lon, i);
            xy[2 * k + 1] = pm_coord_at(hp->s->lat, i);
            k++;
        }
        if (k == HEAT_CHUNK || (i == hp->i1 && k)) {
            project_pairs(hp->P, xy, k);
            heat_bin(hp->g, xy, k, hp->bins);
            hp->n += k;
            k = 0;
        }
    }
    pm_free(xy);
    return NULL;
}

/* Threads for n complaints: as many as asked (want > 0), else one per core
 * with a million or more each; never more parts than complaints. */
static size_t heat_threads(size_t n, int want)
{
    size_t t;
    if (want > 0) {
        t = n < (size_t)want ? n : (size_t)want;
    } else {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        t = n / HEAT_PART_MIN;
        t = cores > 0 && (size_t)cores < t ? (size_t)cores : t;
    }
    return t < 1 ? 1 : t > HEAT_THREADS_MAX ? HEAT_THREADS_MAX : t;
}

/* Counts the heat layer's complaints in the pixels of grid g (bins, g's
 * w × h, zeroed by the caller); *n gets how many there are.  They are
 * projected a chunk at a time: no copy of every coordinate is held.  On
 * several cores, each thread takes a share of the complaints with its own
 * PROJ context and its own bins, added up after: the same counts (a
 * helper that cannot be set up leaves its share to the caller's thread). */
static int heat_points_bin(pm_ctx *ctx, const report *r, const pm_report_opts *o,
                           const heat_grid *g, uint32_t *bins, size_t *n)
{
    const pm_complaints *cs = o->heat_cs;
    const pm_placed *pl = o->heat_pl;
    *n = 0;
    if (!pl || pl->n != pm_complaints_count(cs))
        return PM_ERR(ctx, PM_E_USAGE, "report: the heat layer's placement is not that of its "
                      "complaints (%zu placed, %zu complaints)", pl ? pl->n : 0,
                      pm_complaints_count(cs));
    heat_src s = {pl, pm_complaints_lon(cs), pm_complaints_lat(cs), pm_complaints_created(cs),
                  pm_complaints_topic(cs), pm_complaints_dict(cs, PM_DICT_SOURCE),
                  o->heat_utc_offset_s, {0}};
    int rc = pm_heat_match_init(ctx, o->heat_filter, &s.match);
    if (rc)
        return rc;
    size_t nt = heat_threads(pl->n, o->threads), npx = (size_t)g->w * (size_t)g->h;
    heat_part part[HEAT_THREADS_MAX] = {{0}};
    PJ_CONTEXT *pc[HEAT_THREADS_MAX] = {0};
    pthread_t th[HEAT_THREADS_MAX];
    int started[HEAT_THREADS_MAX] = {0};
    for (size_t t = 0; t < nt; t++) {
        part[t] = (heat_part){r, &s, g, t ? NULL : r->laea, pl->n * t / nt, pl->n * (t + 1) / nt,
                              0, t ? NULL : bins, 0};
        if (t && (pc[t] = proj_context_create()) && (part[t].P = proj_clone(pc[t], r->laea)) &&
            (part[t].bins = pm_calloc(npx, sizeof *bins)))
            started[t] = pthread_create(&th[t], NULL, heat_part_run, &part[t]) == 0;
    }
    heat_part_run(&part[0]);
    for (size_t t = 1; t < nt; t++) {
        if (started[t]) {
            pthread_join(th[t], NULL);
            for (size_t i = 0; i < npx; i++)
                bins[i] += part[t].bins[i];
        } else {   /* not set up: the caller's thread does its share */
            heat_part own = part[t];
            own.P = r->laea;
            own.bins = bins;
            heat_part_run(&own);
            part[t].n = own.n;
            part[t].nomem = own.nomem;
        }
        part[0].nomem |= part[t].nomem;
        *n += part[t].n;
        pm_free(part[t].bins);
        proj_destroy(part[t].P);
        if (pc[t])
            proj_context_destroy(pc[t]);
    }
    *n += part[0].n;
    pm_heat_match_free(&s.match);
    return part[0].nomem ? PM_ERR(ctx, PM_E_NOMEM, "out of memory for the heat layer's points")
                         : PM_OK;
}

/* acc += every pixel's count times the quartic kernel (1 − d²/R²)² around
 * it; kern is (2k + 1)² scratch, k = ⌈R⌉. */
static void heat_spread(const heat_grid *g, const uint32_t *bins, double *kern, double *acc)
{
    int k = (int)ceil(g->r_px), side = 2 * k + 1;
    double r2 = g->r_px * g->r_px;
    for (int dy = -k; dy <= k; dy++)
        for (int dx = -k; dx <= k; dx++) {
            double u = 1 - (dx * dx + dy * dy) / r2;
            kern[(dy + k) * side + dx + k] = u > 0 ? u * u : 0;
        }
    for (int j = 0; j < g->h; j++)
        for (int i = 0; i < g->w; i++) {
            uint32_t c = bins[(size_t)j * (size_t)g->w + (size_t)i];
            if (!c)
                continue;
            int x0 = i - k < 0 ? 0 : i - k, x1 = i + k >= g->w ? g->w - 1 : i + k;
            for (int y = j - k < 0 ? 0 : j - k; y <= j + k && y < g->h; y++) {
                const double *kr = kern + (size_t)(y - j + k) * side + k - i;
                double *row = acc + (size_t)y * (size_t)g->w;
                for (int x = x0; x <= x1; x++)
                    row[x] += c * kr[x];
            }
        }
}

/* The coverage (0 .. 255) of the shown districts — every one whose row is
 * not suppressed — on the raster, drawn by cairo into *mask (A8). */
static cairo_status_t heat_mask(const report *r, const heat_grid *g, cairo_surface_t **mask)
{
    *mask = cairo_image_surface_create(CAIRO_FORMAT_A8, g->w, g->h);
    cairo_t *cr = cairo_create(*mask);
    cairo_scale(cr, g->px_mm, g->px_mm);
    cairo_translate(cr, -g->frame.x, -g->frame.y);
    cairo_set_fill_rule(cr, CAIRO_FILL_RULE_EVEN_ODD);
    draw d = {.cr = cr, .r = r, .tol = 0.25 / g->px_mm};
    for (size_t i = 0; i < r->n_d; i++)
        if (!r->drows[i].suppressed) {
            path_district(&d, &g->fit, i);
            cairo_fill(cr);
        }
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    cairo_surface_flush(*mask);
    return st ? st : cairo_surface_status(*mask);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The top of the colour scale: the 99th percentile (nearest rank) of the
 * densities above 0 inside the shown districts; 0 when there are none. */
static int heat_top(pm_ctx *ctx, const double *acc, const uint8_t *mask, int stride, int w, int h,
                    double *top)
{
    size_t n = 0;
    *top = 0;
    for (int j = 0; j < h; j++)
        for (int i = 0; i < w; i++)
            n += acc[(size_t)j * (size_t)w + (size_t)i] > 0 && mask[(size_t)j * (size_t)stride + (size_t)i];
    if (!n)
        return PM_OK;
    double *v = pm_calloc(n, sizeof *v);
    if (!v)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory for the heat layer's scale");
    size_t k = 0;
    for (int j = 0; j < h; j++)
        for (int i = 0; i < w; i++) {
            double a = acc[(size_t)j * (size_t)w + (size_t)i];
            if (a > 0 && mask[(size_t)j * (size_t)stride + (size_t)i])
                v[k++] = a;
        }
    qsort(v, n, sizeof *v, cmp_double);
    *top = v[(HEAT_TOP_PERMILLE * n + 999) / 1000 - 1];
    pm_free(v);
    return PM_OK;
}

/* The ramp of the report: inferno up to HEAT_RAMP_TOP (its palest end
 * would vanish on the light classes), alpha rising linearly to HEAT_ALPHA
 * so that thin densities only tint the classes and the peaks glow. */
static void heat_lut(uint8_t lut[256][4])
{
    uint8_t inferno[256][4];
    pm_heat_ramp_lut(PM_RAMP_INFERNO, inferno);
    for (int i = 0; i < 256; i++) {
        memcpy(lut[i], inferno[lround(i * HEAT_RAMP_TOP)], 3);
        lut[i][3] = (uint8_t)lround(i * HEAT_ALPHA);
    }
}

/* Density → premultiplied ARGB32, log scale from top / HEAT_RANGE to
 * top, alpha times the districts' coverage. */
static void heat_colour(const double *acc, const uint8_t *mask, int mstride, double top,
                        heat_raster *hr)
{
    double lo = top / HEAT_RANGE, span = log(HEAT_RANGE);
    for (int j = 0; j < hr->h; j++) {
        uint32_t *out = (uint32_t *)(hr->argb + (size_t)j * (size_t)hr->stride);
        for (int i = 0; i < hr->w; i++) {
            double v = acc[(size_t)j * (size_t)hr->w + (size_t)i];
            unsigned cov = mask[(size_t)j * (size_t)mstride + (size_t)i];
            out[i] = 0;
            if (!(top > 0 && v > lo && cov))
                continue;
            double t = log(v / lo) / span;
            const uint8_t *c = hr->lut[t >= 1 ? 255 : (int)lround(255 * t)];
            unsigned a = (unsigned)c[3] * cov / 255;
            out[i] = a << 24 | (c[0] * a / 255) << 16 | (c[1] * a / 255) << 8 | c[2] * a / 255;
        }
    }
}

/* Density, mask, scale and colours of the binned points on grid g into
 * r->heat. */
static int heat_paint(pm_ctx *ctx, report *r, const heat_grid *g, const uint32_t *bins)
{
    size_t npx = (size_t)g->w * (size_t)g->h, side = 2 * (size_t)ceil(g->r_px) + 1;
    heat_raster *hr = &r->heat;
    hr->w = g->w;
    hr->h = g->h;
    hr->stride = cairo_format_stride_for_width(CAIRO_FORMAT_ARGB32, g->w);
    hr->frame = g->frame;
    hr->px_mm = g->px_mm;
    double *kern = pm_calloc(side * side, sizeof *kern), *acc = pm_calloc(npx, sizeof *acc);
    hr->argb = pm_calloc((size_t)hr->stride, (size_t)g->h);
    cairo_surface_t *mask = NULL;
    int rc = PM_OK;
    if (!kern || !acc || !hr->argb) {
        rc = PM_ERR(ctx, PM_E_NOMEM, "out of memory for the heat layer (%d × %d px)", g->w, g->h);
        goto cleanup;
    }
    heat_spread(g, bins, kern, acc);
    cairo_status_t st = heat_mask(r, g, &mask);
    if (st) {
        rc = PM_ERR(ctx, PM_E_RENDER, "cairo failed drawing the heat layer's mask: %s",
                    cairo_status_to_string(st));
        goto cleanup;
    }
    const uint8_t *md = cairo_image_surface_get_data(mask);
    int ms = cairo_image_surface_get_stride(mask);
    double top;
    if (!(rc = heat_top(ctx, acc, md, ms, g->w, g->h, &top)))
        heat_colour(acc, md, ms, top, hr);
cleanup:
    cairo_surface_destroy(mask);
    pm_free(kern);
    pm_free(acc);
    return rc;
}

/* The heat layer of the options (none when o->heat_cs is NULL or no
 * complaint is on it). */
static int heat_build(pm_ctx *ctx, report *r, const pm_report_opts *o, const page *pg)
{
    if (!o->heat_cs)
        return PM_OK;
    if (!(isfinite(o->heat_radius_m) && o->heat_radius_m >= 0))
        return PM_ERR(ctx, PM_E_USAGE, "report: heat radius %g m is not a distance",
                      o->heat_radius_m);
    r->heat_on = 1;   /* the page's layout (the map's frame) has the heat legend */
    double R = heat_radius(r, o->heat_radius_m);
    heat_grid g = heat_grid_of(r, pg, R);
    uint32_t *bins = pm_calloc((size_t)g.w * (size_t)g.h, sizeof *bins);
    if (!bins) {
        r->heat_on = 0;
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory for the heat layer (%d × %d px)", g.w, g.h);
    }
    size_t n;
    int rc = heat_points_bin(ctx, r, o, &g, bins, &n);
    r->heat_on = !rc && n > 0;
    if (!rc && n == 0)
        pm_ctx_log(ctx, PM_LOG_INFO, "report: no complaint with coordinates passes the filter: "
                                     "no heat layer");
    if (r->heat_on) {
        heat_lut(r->heat.lut);
        pm_ctx_log(ctx, PM_LOG_INFO, "report: heat layer of %zu complaints, kernel radius %.0f m",
                   n, R);
        rc = heat_paint(ctx, r, &g, bins);
    }
    pm_free(bins);
    return rc;
}

/* ---- surfaces --------------------------------------------------------- */

/* Pango for one page: a font map of our own (not Pango's per-thread
 * default, which would outlive the call), a context following cr's
 * transform, one layout and the font.  Font options: no hinted metrics
 * and no hinting, so text measures the same on every surface.  0 when
 * something could not be made. */
static int text_begin(draw *d)
{
    d->fontmap = pango_cairo_font_map_new();
    d->pango = d->fontmap ? pango_font_map_create_context(d->fontmap) : NULL;
    d->font = pango_font_description_from_string(FONT_FAMILY);
    if (!d->pango || !d->font)
        return 0;
    pango_cairo_update_context(d->cr, d->pango);
    cairo_font_options_t *fo = cairo_font_options_create();
    cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF);
    cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_NONE);
    pango_cairo_context_set_font_options(d->pango, fo);
    cairo_font_options_destroy(fo);
    /* The user unit is a millimetre: rounding glyph positions to whole
     * units would wreck the letter spacing. */
    pango_context_set_round_glyph_positions(d->pango, FALSE);
    d->lay = pango_layout_new(d->pango);
    return d->lay != NULL;
}

static void text_end(draw *d)
{
    if (d->lay)
        g_object_unref(d->lay);
    if (d->pango)
        g_object_unref(d->pango);
    if (d->fontmap)
        g_object_unref(d->fontmap);
    if (d->font)
        pango_font_description_free(d->font);
}

/* Ends the report's page before the analytics page: a new PDF page, or,
 * on a sheet of stacked pages, a dashed rule across where the next page
 * begins and the origin moved there. */
static void next_page(draw *d, int stacked)
{
    cairo_t *cr = d->cr;
    if (!stacked) {
        cairo_show_page(cr);
        return;
    }
    double dash[] = {2 * d->f, 1.5 * d->f};
    cairo_save(cr);
    cairo_set_dash(cr, dash, 2, 0);
    cairo_set_line_width(cr, 0.3 * d->f);
    set_rgb(cr, C_RULE);
    cairo_move_to(cr, 0, d->H);
    cairo_line_to(cr, d->W, d->H);
    cairo_stroke(cr);
    cairo_restore(cr);
    cairo_translate(cr, 0, d->H);
}

/* Draws the report (and the analytics page, after a new page or below
 * it when stacked) on surface s whose unit is 1/k mm; the status of the
 * drawing (cairo's, checked once here). */
static cairo_status_t draw_on(cairo_surface_t *s, const report *r, const page *pg, double k,
                              double tol_mm, int stacked)
{
    cairo_t *cr = cairo_create(s);
    cairo_scale(cr, k, k);
    draw d = {.cr = cr, .r = r, .W = pg->w_mm, .H = pg->h_mm, .tol = tol_mm,
              .f = fmin(pg->w_mm / 297.0, pg->h_mm / 210.0)};
    int text_ok = cairo_status(cr) == CAIRO_STATUS_SUCCESS && text_begin(&d);
    if (text_ok) {
        draw_page(&d);
        if (r->an) {
            next_page(&d, stacked);
            draw_analytics_page(&d);
        }
    }
    text_end(&d);
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    if (st == CAIRO_STATUS_SUCCESS && !text_ok)
        st = CAIRO_STATUS_NO_MEMORY;   /* Pango could not start */
    return st;
}

/* The bytes of the file, as cairo writes them; grown with pm_realloc. */
typedef struct membuf {
    uint8_t *p;
    size_t len, cap;
    int nomem;
} membuf;

static cairo_status_t mem_write(void *closure, const unsigned char *data, unsigned int n)
{
    membuf *m = closure;
    if (m->cap - m->len < n) {
        size_t cap = m->cap ? m->cap : 65536;
        while (cap - m->len < n)
            cap *= 2;
        uint8_t *p = pm_realloc(m->p, cap);
        if (!p) {
            m->nomem = 1;
            return CAIRO_STATUS_NO_MEMORY;
        }
        m->p = p;
        m->cap = cap;
    }
    memcpy(m->p + m->len, data, n);
    m->len += n;
    return CAIRO_STATUS_SUCCESS;
}

/* The height of the sheet, mm: PDF has a page per page, PNG and SVG
 * stack them. */
static double sheet_h_mm(pm_report_format fmt, const page *pg)
{
    return fmt == PM_REPORT_PDF ? pg->h_mm : pg->h_mm * pg->n_pages;
}

/* The surface of the format writing to m; *k is its units per mm, *tol
 * the path simplification tolerance (mm). */
static cairo_surface_t *surface_new(pm_report_format fmt, const report *r, const page *pg,
                                    membuf *m, double *k, double *tol)
{
    if (fmt == PM_REPORT_PNG) {
        *k = pg->dpi / 25.4;
        *tol = 0.4 * 25.4 / pg->dpi;
        return cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)lround(pg->w_mm * *k),
                                          (int)lround(sheet_h_mm(fmt, pg) * *k));
    }
    double w = pg->w_mm / MM_PER_PT, h = sheet_h_mm(fmt, pg) / MM_PER_PT;
    *k = 1 / MM_PER_PT;
    *tol = 0.05;
    if (fmt == PM_REPORT_SVG) {
        cairo_surface_t *s = cairo_svg_surface_create_for_stream(mem_write, m, w, h);
        cairo_svg_surface_set_document_unit(s, CAIRO_SVG_UNIT_PT);
        return s;
    }
    cairo_surface_t *s = cairo_pdf_surface_create_for_stream(mem_write, m, w, h);
    cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_TITLE, r->title);
    cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_CREATOR, "problemap");
    return s;
}

/* Draws the report into a new buffer: *buf (pm_free), *len bytes. */
static int render(pm_ctx *ctx, const char *name, pm_report_format fmt, const report *r,
                  const page *pg, uint8_t **buf, size_t *len)
{
    membuf m = {0};
    double k, tol;
    cairo_surface_t *s = surface_new(fmt, r, pg, &m, &k, &tol);
    cairo_status_t st = draw_on(s, r, pg, k, tol, fmt != PM_REPORT_PDF);
    if (!st && fmt == PM_REPORT_PNG)
        st = cairo_surface_write_to_png_stream(s, mem_write, &m);
    cairo_surface_finish(s);   /* PDF and SVG write their last bytes here */
    if (!st)
        st = cairo_surface_status(s);
    cairo_surface_destroy(s);
    if (st || m.nomem) {
        pm_free(m.p);
        if (m.nomem)
            return PM_ERR(ctx, PM_E_NOMEM, "%s: out of memory for the report's bytes", name);
        return PM_ERR(ctx, PM_E_RENDER, "%s: cairo failed drawing the report: %s", name,
                      cairo_status_to_string(st));
    }
    *buf = m.p;
    *len = m.len;
    return PM_OK;
}

/* Writes the bytes to path atomically (pm_out.h). */
static int write_bytes(pm_ctx *ctx, const char *path, const uint8_t *buf, size_t len)
{
    pm_outfile *of = NULL;
    int rc = pm_outfile_open(ctx, path, &of);
    if (rc)
        return rc;
    if (fwrite(buf, 1, len, pm_outfile_stream(of)) != len) {
        int e = errno;
        pm_outfile_abort(of);
        return PM_ERR(ctx, PM_E_IO, "error writing %s: %s", path, strerror(e));
    }
    return pm_outfile_commit(ctx, of);
}

/* ---- the entry point -------------------------------------------------- */

/* The page from the options: defaults, and limits that keep the layout
 * and cairo's image size (32 767 px) sane. */
static int page_from_opts(pm_ctx *ctx, const pm_report_opts *o, pm_report_format fmt, page *pg)
{
    pg->w_mm = o->width_mm != 0 ? o->width_mm : 297;
    pg->h_mm = o->height_mm != 0 ? o->height_mm : 210;
    pg->dpi = o->dpi != 0 ? o->dpi : 150;
    if (!(pg->w_mm >= 50 && pg->w_mm <= 2000 && pg->h_mm >= 50 && pg->h_mm <= 2000))
        return PM_ERR(ctx, PM_E_USAGE, "page size %g × %g mm: each side must be 50 to 2000 mm",
                      pg->w_mm, pg->h_mm);
    if (!(pg->dpi >= 20 && pg->dpi <= 1200))
        return PM_ERR(ctx, PM_E_USAGE, "resolution %g dpi: must be 20 to 1200", pg->dpi);
    pg->n_pages = o->analytics ? 2 : 1;
    double side = fmax(pg->w_mm, sheet_h_mm(fmt, pg)), px = side / 25.4 * pg->dpi;
    if (fmt == PM_REPORT_PNG && px > 32767)
        return PM_ERR(ctx, PM_E_USAGE, "a %g mm %s at %g dpi is %.0f pixels wide, more than "
                      "32767", side, pg->n_pages > 1 ? "sheet of two pages" : "page", pg->dpi, px);
    return PM_OK;
}

int pm_report_render(pm_ctx *ctx, const char *name, pm_report_format fmt, const pm_districts *ds,
                     const pm_cube *cube, const pm_topics *topics, const pm_filter *f,
                     const pm_report_opts *opts, uint8_t **buf, size_t *len)
{
    if (buf)
        *buf = NULL;
    if (len)
        *len = 0;
    name = name ? name : "report";
    if (!ds || !cube || !topics || !buf || !len)
        return PM_ERR(ctx, PM_E_USAGE, "report: districts, cube, topics and the buffer are required");
    if (fmt != PM_REPORT_PNG && fmt != PM_REPORT_PDF && fmt != PM_REPORT_SVG)
        return PM_ERR(ctx, PM_E_USAGE, "%s: unknown report format %d", name, (int)fmt);
    pm_report_opts o = opts ? *opts : (pm_report_opts){0};
    const char *fig_name = o.figure ? o.figure : "complaints";
    const pm_figure *fig = pm_figure_find(fig_name);
    if (!fig)
        return PM_ERR(ctx, PM_E_USAGE, "%s: unknown figure \"%s\" (%s)", name, fig_name,
                      pm_figure_names());
    page pg = {0};
    int rc = page_from_opts(ctx, &o, fmt, &pg);
    if (rc)
        return rc;
    report r = {.ds = ds, .topics = topics, .fig = fig,
                .title = o.title ? o.title : "Обращения граждан",
                .attribution = o.attribution};
    rc = analytics_build(ctx, name, &r, o.analytics);
    if (!rc)
        rc = report_build(ctx, &r, cube, f, &o);
    if (!rc)
        rc = heat_build(ctx, &r, &o, &pg);
    if (!rc)
        rc = render(ctx, name, fmt, &r, &pg, buf, len);
    report_free(&r);
    return rc;
}

int pm_report_write(pm_ctx *ctx, const char *path, pm_report_format fmt, const pm_districts *ds,
                    const pm_cube *cube, const pm_topics *topics, const pm_filter *f,
                    const pm_report_opts *opts)
{
    if (!path)
        return PM_ERR(ctx, PM_E_USAGE, "report: path, districts, cube and topics are required");
    uint8_t *buf;
    size_t len;
    int rc = pm_report_render(ctx, path, fmt, ds, cube, topics, f, opts, &buf, &len);
    if (!rc)
        rc = write_bytes(ctx, path, buf, len);
    pm_free(buf);
    return rc;
}
