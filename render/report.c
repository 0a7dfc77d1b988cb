/* report.c — the one-page report for officials (pm_report.h).
 *
 * Three steps: gather (query the cube for the district, topic and total
 * rows, pick the figure, cut it into classes, rank the districts), project
 * (every district ring through PROJ into a Lambert azimuthal equal-area
 * plane centred on the districts), draw (one function, draw_page(), on a
 * cairo context whose user unit is the millimetre, whatever the surface).
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
 */
#include "pm_report.h"
#include "../engine/pm_alloc.h"
#include "../geodata/pm_out.h"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>
#include <math.h>
#include <pango/pangocairo.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MM_PER_PT (25.4 / 72.0)
#define MAX_CLASSES 7
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

/* ---- figures ------------------------------------------------------------ */

typedef enum fig_id {
    F_COUNT, F_PER_10K, F_PER_10K_EB, F_PER_KM2, F_SHARE_24H, F_MEDIAN_H, F_OVERDUE_SHARE,
    F_CHANGE_PCT, F_RATING
} fig_id;

/* How values are written: integer, decimals by magnitude, percent of a
 * share, signed (decimals by magnitude), two decimals. */
typedef enum num_style { N_INT, N_AUTO, N_PERCENT, N_SIGNED, N_DEC2 } num_style;

typedef struct figure_def {
    const char *name;       /* property name of pm_cube_out.h */
    fig_id id;
    num_style style;
    const char *title_ru;   /* legend title */
    const char *column_ru;  /* column of the top-10 table */
} figure_def;

static const figure_def FIGURES[] = {
    {"complaints", F_COUNT, N_INT, "Обращений", "Обращений"},
    {"complaints_per_10k", F_PER_10K, N_AUTO, "Обращений на 10 тыс. жителей", "На 10 тыс."},
    {"complaints_per_10k_smoothed", F_PER_10K_EB, N_AUTO,
     "Обращений на 10 тыс. жителей (сглаженная оценка)", "На 10 тыс."},
    {"complaints_per_km2", F_PER_KM2, N_AUTO, "Обращений на 1 км²", "На 1 км²"},
    {"answered_within_24h_share", F_SHARE_24H, N_PERCENT, "Доля ответов за 24 ч", "За 24 ч"},
    {"answer_time_median_h", F_MEDIAN_H, N_AUTO, "Медианное время ответа, ч", "Медиана, ч"},
    {"overdue_share", F_OVERDUE_SHARE, N_PERCENT, "Доля просроченных", "Просрочено"},
    {"change_pct", F_CHANGE_PCT, N_SIGNED, "Изменение к прошлому периоду, %", "Изм., %"},
    {"rating_index", F_RATING, N_DEC2, "Индекс проблемности", "Индекс"},
};

static const figure_def *figure_find(const char *name)
{
    for (size_t i = 0; i < sizeof FIGURES / sizeof *FIGURES; i++)
        if (strcmp(FIGURES[i].name, name) == 0)
            return &FIGURES[i];
    return NULL;
}

/* The figure of a row; NAN when it has none or must not be shown. */
static double figure_value(fig_id id, const pm_row *r)
{
    if (r->suppressed)
        return NAN;
    switch (id) {
    case F_COUNT: return (double)r->count;
    case F_PER_10K: return r->per_10k;
    case F_PER_10K_EB: return r->eb_per_10k;
    case F_PER_KM2: return r->per_km2;
    case F_SHARE_24H: return r->share_24h;
    case F_MEDIAN_H: return r->median_h;
    case F_OVERDUE_SHARE: return r->overdue_share;
    case F_CHANGE_PCT: return r->change_pct;
    case F_RATING: return r->index;
    }
    return NAN;
}

/* ---- numbers: Russian style ------------------------------------------- */

#define THIN_SPACE "\xe2\x80\x89"   /* U+2009 */
#define MINUS "\xe2\x88\x92"        /* U+2212 */
#define EN_DASH "\xe2\x80\x93"
#define NO_DATA "нет данных"

/* v with `decimals` decimals, a decimal comma and thin spaces between
 * thousands; "+" before a positive value when plus. */
static void fmt_num(double v, int decimals, int plus, char *buf, size_t cap)
{
    if (!isfinite(v)) {
        snprintf(buf, cap, "—");
        return;
    }
    if (fabs(v) >= 1e15) {
        snprintf(buf, cap, "%.3g", v);
        return;
    }
    char digits[64];
    snprintf(digits, sizeof digits, "%.*f", decimals, fabs(v));
    int zero = digits[strspn(digits, "0.")] == '\0';
    const char *sign = zero ? "" : v < 0 ? MINUS : plus ? "+" : "";
    size_t int_len = strcspn(digits, "."), n = 0;
    n += (size_t)snprintf(buf, cap, "%s", sign);
    for (size_t i = 0; i < int_len && n + 8 < cap; i++) {
        if (i > 0 && int_len >= 4 && (int_len - i) % 3 == 0)
            n += (size_t)snprintf(buf + n, cap - n, THIN_SPACE);
        buf[n++] = digits[i];
    }
    buf[n] = '\0';
    if (digits[int_len] == '.' && n + 2 + strlen(digits + int_len + 1) < cap)
        snprintf(buf + n, cap - n, ",%s", digits + int_len + 1);
}

/* Decimals that give v three significant digits (none from 100 up). */
static int sig_decimals(double v)
{
    double a = fabs(v);
    if (!(a > 0) || a >= 100)
        return 0;
    int d = 2 - (int)floor(log10(a));
    return d < 0 ? 0 : d > 6 ? 6 : d;
}

/* ---- the gathered report --------------------------------------------- */

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
    const figure_def *fig;
    const char *title;
    const char *attribution; /* NULL: none */
    char period[128];
    char generated[128];
    pm_row *drows, *trows, *total;
    size_t n_d, n_t, n_total;
    double *value;           /* per district, NAN: no data */
    int *cls;                /* per district, -1: no data */
    size_t n_classes;
    double cls_lo[MAX_CLASSES], cls_hi[MAX_CLASSES];
    int has_nodata;
    int decimals;            /* for N_SIGNED: 1, or 0 when a value reaches 100 */
    ranked *top;             /* districts with a value and complaints, best first */
    size_t n_top;
    ranked *topic_order;     /* topics with complaints, most first */
    size_t n_topic_order;
    geo_map map;
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
}

/* A value as the report writes it, with " %" for shares when unit. */
static void fmt_value(const report *r, double v, int unit, char *buf, size_t cap)
{
    switch (r->fig->style) {
    case N_INT: fmt_num(v, 0, 0, buf, cap); return;
    case N_AUTO: fmt_num(v, sig_decimals(v), 0, buf, cap); return;
    case N_SIGNED: fmt_num(v, r->decimals, 1, buf, cap); return;
    case N_DEC2: fmt_num(v, 2, 0, buf, cap); return;
    case N_PERCENT:
        fmt_num(100 * v, 1, 0, buf, cap);
        if (unit && isfinite(v))
            snprintf(buf + strlen(buf), cap - strlen(buf), " %%");
        return;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
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

/* Quantile classes of r->value (see the file comment). */
static int make_classes(pm_ctx *ctx, report *r)
{
    double *v = pm_calloc(r->n_d, sizeof *v);
    if (!v)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory classifying %zu districts", r->n_d);
    size_t n = 0;
    for (size_t i = 0; i < r->n_d; i++)
        if (isfinite(r->value[i]))
            v[n++] = r->value[i];
    r->has_nodata = n < r->n_d;
    qsort(v, n, sizeof *v, cmp_double);
    size_t k = n <= 30 ? 5 : n <= 100 ? 6 : 7;
    double upper[MAX_CLASSES];   /* upper bounds of all classes but the last */
    size_t nu = 0;
    for (size_t c = 1; c < k && n > 0; c++) {
        double u = v[c * n / k - (c * n / k > 0)];
        if (u < v[n - 1] && (nu == 0 || u > upper[nu - 1]))
            upper[nu++] = u;
    }
    r->n_classes = n > 0 ? nu + 1 : 0;
    r->decimals = n > 0 && fmax(fabs(v[0]), fabs(v[n - 1])) >= 100 ? 0 : 1;
    pm_free(v);
    for (size_t c = 0; c < r->n_classes; c++) {
        r->cls_lo[c] = INFINITY;
        r->cls_hi[c] = -INFINITY;
    }
    for (size_t i = 0; i < r->n_d; i++) {
        double x = r->value[i];
        if (!isfinite(x)) {
            r->cls[i] = -1;
            continue;
        }
        size_t c = 0;
        while (c < nu && x > upper[c])
            c++;
        r->cls[i] = (int)c;
        r->cls_lo[c] = fmin(r->cls_lo[c], x);
        r->cls_hi[c] = fmax(r->cls_hi[c], x);
    }
    return PM_OK;
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

/* Projects the rings and label points in place with PROJ. */
static int map_project(pm_ctx *ctx, const pm_districts *ds, geo_map *m)
{
    double lon0, lat0;
    map_centre(m, &lon0, &lat0);
    char def[192];
    snprintf(def, sizeof def,
             "+proj=laea +lat_0=%.6f +lon_0=%.6f +datum=WGS84 +units=m +no_defs +type=crs", lat0,
             lon0);
    PJ_CONTEXT *pc = pm_ctx_proj(ctx);
    PJ *raw = proj_create_crs_to_crs(pc, "EPSG:4326", def, NULL);
    PJ *P = raw ? proj_normalize_for_visualization(pc, raw) : NULL;
    proj_destroy(raw);
    if (!P)
        return PM_ERR(ctx, PM_E_CRS, "PROJ cannot build EPSG:4326 → %s: %s", def,
                      pm_ctx_proj_msg(ctx));
    size_t nd = pm_districts_count(ds), st = 2 * sizeof(double);
    proj_trans_generic(P, PJ_FWD, m->xy, st, m->n_pts, m->xy + 1, st, m->n_pts, NULL, 0, 0,
                       NULL, 0, 0);
    proj_trans_generic(P, PJ_FWD, m->label_xy, st, nd, m->label_xy + 1, st, nd, NULL, 0, 0,
                       NULL, 0, 0);
    proj_destroy(P);
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
        r->value[i] = figure_value(r->fig->id, &r->drows[i]);
    if ((rc = make_classes(ctx, r)) || (rc = make_rankings(ctx, r)))
        return rc;
    make_period_label(r, cube, f);
    make_generated_label(r, o->generated);
    if ((rc = map_read(ctx, r->ds, &r->map)))
        return rc;
    return map_project(ctx, r->ds, &r->map);
}

/* ---- drawing: text ---------------------------------------------------- */

typedef struct rect {
    double x, y, w, h;
} rect;

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
#define C_NODATA 0xd9d9d9u
#define C_HATCH 0x9e9e9eu
#define C_ZEBRA 0xf2f2f2u

/* Where everything goes, mm. */
typedef struct page_layout {
    rect header, map, legend, scale, side;
} page_layout;

static page_layout layout_page(const draw *d)
{
    double f = d->f, m = 10 * f;
    page_layout L;
    L.header = (rect){m, m, d->W - 2 * m, 14 * f};
    double top = m + 18 * f, bottom = d->H - m, cw = d->W - 2 * m;
    double side_w = 0.35 * cw, gap = 7 * f, strip = 18 * f;
    L.side = (rect){d->W - m - side_w, top, side_w, bottom - top};
    double map_w = cw - side_w - gap;
    L.map = (rect){m, top, map_w, bottom - top - strip - 3 * f};
    double scale_w = fmin(48 * f, 0.3 * map_w);
    L.legend = (rect){m, bottom - strip, map_w - scale_w - 4 * f, strip};
    L.scale = (rect){m + map_w - scale_w, bottom - strip, scale_w, strip};
    return L;
}

static void draw_header(draw *d, rect b)
{
    const report *r = d->r;
    double f = d->f;
    text_box(d, r->title, (rect){b.x, b.y, b.w, 8 * f}, 16, 1, C_TEXT, PANGO_ALIGN_LEFT);
    rect sub = {b.x, b.y + 8.5 * f, b.w * 0.6, 4.5 * f};
    text_box(d, r->period, sub, 9, 0, C_TEXT, PANGO_ALIGN_LEFT);
    sub.x = b.x + b.w * 0.6;
    sub.w = b.w * 0.4;
    text_box(d, r->generated, sub, 9, 0, C_GREY, PANGO_ALIGN_RIGHT);
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

/* ColorBrewer YlOrRd with k classes (k = 1 and 2: the ends of the 3-class
 * scheme, so one class of zeros is not painted alarming orange). */
static unsigned class_colour(size_t k, size_t c)
{
    static const unsigned YLORRD[MAX_CLASSES][MAX_CLASSES] = {
        {0xffeda0},
        {0xffeda0, 0xf03b20},
        {0xffeda0, 0xfeb24c, 0xf03b20},
        {0xffffb2, 0xfecc5c, 0xfd8d3c, 0xe31a1c},
        {0xffffb2, 0xfecc5c, 0xfd8d3c, 0xf03b20, 0xbd0026},
        {0xffffb2, 0xfed976, 0xfeb24c, 0xfd8d3c, 0xf03b20, 0xbd0026},
        {0xffffb2, 0xfed976, 0xfeb24c, 0xfd8d3c, 0xfc4e2a, 0xe31a1c, 0xb10026},
    };
    if (k < 1 || k > MAX_CLASSES || c >= k)
        return C_NODATA;
    return YLORRD[k - 1][c];
}

/* Fills the current path grey with diagonal hatching ("нет данных"). */
static void fill_nodata(draw *d)
{
    cairo_t *cr = d->cr;
    set_rgb(cr, C_NODATA);
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

/* Names of the top districts at their points on surface (or just above
 * or below, if that is where they fit), with a white halo; a label that
 * would overlap one already placed is skipped. */
static void draw_labels(draw *d, const map_fit *t, rect frame)
{
    const report *r = d->r;
    rect placed[N_LABELS];
    size_t n_placed = 0;
    for (size_t k = 0; k < r->n_top && k < N_LABELS; k++) {
        size_t i = r->top[k].idx;
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

static void draw_map(draw *d, rect frame, const map_fit *t)
{
    const report *r = d->r;
    cairo_t *cr = d->cr;
    cairo_save(cr);
    cairo_rectangle(cr, frame.x, frame.y, frame.w, frame.h);
    cairo_clip(cr);
    cairo_set_fill_rule(cr, CAIRO_FILL_RULE_EVEN_ODD);
    for (size_t i = 0; i < r->n_d; i++) {
        path_district(d, t, i);
        if (r->cls[i] < 0) {
            fill_nodata(d);
        } else {
            set_rgb(cr, class_colour(r->n_classes, (size_t)r->cls[i]));
            cairo_fill_preserve(cr);
        }
        cairo_new_path(cr);
    }
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_width(cr, (r->n_d > 60 ? 0.1 : 0.15) * d->f);
    set_rgb(cr, C_BORDER);
    for (size_t i = 0; i < r->n_d; i++)
        path_district(d, t, i);
    cairo_stroke(cr);
    draw_labels(d, t, frame);
    cairo_restore(cr);
}

/* A legend entry: swatch (no data: hatched) and its text. */
static void legend_entry(draw *d, rect cell, int cls, const char *text)
{
    double f = d->f, sw = 5 * f, sh = 3.2 * f;
    cairo_rectangle(d->cr, cell.x, cell.y + (cell.h - sh) / 2, sw, sh);
    if (cls < 0) {
        fill_nodata(d);
    } else {
        set_rgb(d->cr, class_colour(d->r->n_classes, (size_t)cls));
        cairo_fill_preserve(d->cr);
    }
    set_rgb(d->cr, C_BORDER);
    cairo_set_line_width(d->cr, 0.15 * f);
    cairo_stroke(d->cr);
    rect tb = {cell.x + sw + 1.5 * f, cell.y, cell.w - sw - 3 * f, cell.h};
    text_box(d, text, tb, 7.5, 0, C_TEXT, PANGO_ALIGN_LEFT);
}

/* The legend: the figure's title, then the classes in up to three rows
 * per column. */
static void draw_legend(draw *d, rect b)
{
    const report *r = d->r;
    double f = d->f, title_h = 4.5 * f;
    text_box(d, r->fig->title_ru, (rect){b.x, b.y, b.w, title_h}, 8, 1, C_TEXT, PANGO_ALIGN_LEFT);
    size_t n = r->n_classes + (r->has_nodata ? 1 : 0), rows = 3;
    if (n == 0)
        return;
    size_t cols = (n + rows - 1) / rows;
    double cw = fmin(b.w / (double)cols, 48 * f), rh = (b.h - title_h) / (double)rows;
    for (size_t e = 0; e < n; e++) {
        rect cell = {b.x + (double)(e / rows) * cw, b.y + title_h + (double)(e % rows) * rh, cw, rh};
        char text[160] = NO_DATA, lo[64], hi[64];
        int cls = -1;
        if (e < r->n_classes) {
            cls = (int)e;
            fmt_value(r, r->cls_lo[e], 0, lo, sizeof lo);
            fmt_value(r, r->cls_hi[e], 1, hi, sizeof hi);
            char lo_unit[64];
            fmt_value(r, r->cls_lo[e], 1, lo_unit, sizeof lo_unit);
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
    fmt_num(len_m >= 1000 ? len_m / 1000 : len_m, 0, 0, num, sizeof num);
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
    int two = r->fig->id != F_COUNT;
    double w_rank = 6 * f, w_num = 19 * f, w_fig = two ? 19 * f : 0;
    double x_name = b.x + w_rank, w_name = b.w - w_rank - w_num - w_fig - 1 * f;
    double x_num = b.x + b.w - w_fig - w_num, x_fig = b.x + b.w - w_fig;
    text_box(d, "№", (rect){b.x, y, w_rank, rh}, 7, 0, C_GREY, PANGO_ALIGN_LEFT);
    text_box(d, "Район", (rect){x_name, y, w_name, rh}, 7, 0, C_GREY, PANGO_ALIGN_LEFT);
    text_box(d, "Обращений", (rect){x_num, y, w_num, rh}, 7, !two, C_GREY, PANGO_ALIGN_RIGHT);
    if (two)
        text_box(d, r->fig->column_ru, (rect){x_fig, y, w_fig, rh}, 7, 1, C_GREY,
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
        double sq = 2.6 * f;
        cairo_rectangle(d->cr, x_name, y + (rh - sq) / 2, sq, sq);
        set_rgb(d->cr, class_colour(r->n_classes, (size_t)r->cls[i]));
        cairo_fill_preserve(d->cr);
        set_rgb(d->cr, C_BORDER);
        cairo_set_line_width(d->cr, 0.1 * f);
        cairo_stroke(d->cr);
        const char *name = pm_district_name(r->ds, i);
        text_box(d, name[0] ? name : pm_district_id(r->ds, i),
                 (rect){x_name + sq + 1.2 * f, y, w_name - sq - 1.2 * f, rh}, 7.5, 0, C_TEXT,
                 PANGO_ALIGN_LEFT);
        fmt_num((double)r->drows[i].count, 0, 0, num, sizeof num);
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
    fmt_num((double)count, 0, 0, num, sizeof num);
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
    fmt_num(hidden ? NAN : (double)t->count, 0, 0, v[0], sizeof v[0]);
    fmt_num(hidden ? NAN : 100 * t->share_24h, 1, 0, v[1], sizeof v[1]);
    if (isfinite(t->share_24h) && !hidden)
        strcat(v[1], " %");
    fmt_num(hidden ? NAN : t->median_h, 1, 0, v[2], sizeof v[2]);
    if (isfinite(t->median_h) && !hidden)
        strcat(v[2], " ч");
    fmt_num(hidden ? NAN : (double)t->overdue, 0, 0, v[3], sizeof v[3]);
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
    draw_header(d, L.header);
    draw_map(d, L.map, &t);
    draw_legend(d, L.legend);
    draw_scale_bar(d, L.scale, &t);
    draw_side(d, L.side);
}

/* ---- surfaces --------------------------------------------------------- */

typedef struct page {
    double w_mm, h_mm, dpi;
} page;

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

/* Draws the report on surface s whose unit is 1/k mm; the status of the
 * drawing (cairo's, checked once here). */
static cairo_status_t draw_on(cairo_surface_t *s, const report *r, const page *pg, double k,
                              double tol_mm)
{
    cairo_t *cr = cairo_create(s);
    cairo_scale(cr, k, k);
    draw d = {.cr = cr, .r = r, .W = pg->w_mm, .H = pg->h_mm, .tol = tol_mm,
              .f = fmin(pg->w_mm / 297.0, pg->h_mm / 210.0)};
    int text_ok = cairo_status(cr) == CAIRO_STATUS_SUCCESS && text_begin(&d);
    if (text_ok)
        draw_page(&d);
    text_end(&d);
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    if (st == CAIRO_STATUS_SUCCESS && !text_ok)
        st = CAIRO_STATUS_NO_MEMORY;   /* Pango could not start */
    return st;
}

typedef struct sink {
    FILE *f;
    int failed;
} sink;

static cairo_status_t sink_write(void *closure, const unsigned char *data, unsigned int len)
{
    sink *k = closure;
    if (fwrite(data, 1, len, k->f) != len) {
        k->failed = 1;
        return CAIRO_STATUS_WRITE_ERROR;
    }
    return CAIRO_STATUS_SUCCESS;
}

static int render_error(pm_ctx *ctx, const char *path, cairo_status_t st, const sink *k)
{
    if (k && k->failed)
        return PM_ERR(ctx, PM_E_IO, "%s: error writing the report", path);
    return PM_ERR(ctx, PM_E_RENDER, "%s: cairo failed drawing the report: %s", path,
                  cairo_status_to_string(st));
}

static int write_png(pm_ctx *ctx, const char *path, const report *r, const page *pg)
{
    int w = (int)lround(pg->w_mm / 25.4 * pg->dpi), h = (int)lround(pg->h_mm / 25.4 * pg->dpi);
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    cairo_status_t st = draw_on(s, r, pg, pg->dpi / 25.4, 0.4 * 25.4 / pg->dpi);
    if (st) {
        cairo_surface_destroy(s);
        return render_error(ctx, path, st, NULL);
    }
    pm_outfile *of = NULL;
    int rc = pm_outfile_open(ctx, path, &of);
    if (rc) {
        cairo_surface_destroy(s);
        return rc;
    }
    sink k = {pm_outfile_stream(of), 0};
    st = cairo_surface_write_to_png_stream(s, sink_write, &k);
    cairo_surface_destroy(s);
    if (st) {
        pm_outfile_abort(of);
        return render_error(ctx, path, st, &k);
    }
    return pm_outfile_commit(ctx, of);
}

/* PDF or SVG: the surface writes to the temporary file while drawing. */
static int write_vector(pm_ctx *ctx, const char *path, pm_report_format fmt, const report *r,
                        const page *pg)
{
    pm_outfile *of = NULL;
    int rc = pm_outfile_open(ctx, path, &of);
    if (rc)
        return rc;
    sink k = {pm_outfile_stream(of), 0};
    double w = pg->w_mm / MM_PER_PT, h = pg->h_mm / MM_PER_PT;
    cairo_surface_t *s;
    if (fmt == PM_REPORT_PDF) {
        s = cairo_pdf_surface_create_for_stream(sink_write, &k, w, h);
        cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_TITLE, r->title);
        cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_CREATOR, "problemap");
    } else {
        s = cairo_svg_surface_create_for_stream(sink_write, &k, w, h);
        cairo_svg_surface_set_document_unit(s, CAIRO_SVG_UNIT_PT);
    }
    cairo_status_t st = draw_on(s, r, pg, 1 / MM_PER_PT, 0.05);
    cairo_surface_finish(s);
    if (!st)
        st = cairo_surface_status(s);
    cairo_surface_destroy(s);
    if (st) {
        pm_outfile_abort(of);
        return render_error(ctx, path, st, &k);
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
    double px = fmax(pg->w_mm, pg->h_mm) / 25.4 * pg->dpi;
    if (fmt == PM_REPORT_PNG && px > 32767)
        return PM_ERR(ctx, PM_E_USAGE, "a %g mm page at %g dpi is %.0f pixels wide, more than "
                      "32767", fmax(pg->w_mm, pg->h_mm), pg->dpi, px);
    return PM_OK;
}

int pm_report_write(pm_ctx *ctx, const char *path, pm_report_format fmt, const pm_districts *ds,
                    const pm_cube *cube, const pm_topics *topics, const pm_filter *f,
                    const pm_report_opts *opts)
{
    if (!path || !ds || !cube || !topics)
        return PM_ERR(ctx, PM_E_USAGE, "report: path, districts, cube and topics are required");
    if (fmt != PM_REPORT_PNG && fmt != PM_REPORT_PDF && fmt != PM_REPORT_SVG)
        return PM_ERR(ctx, PM_E_USAGE, "%s: unknown report format %d", path, (int)fmt);
    pm_report_opts o = opts ? *opts : (pm_report_opts){0};
    const char *fig_name = o.figure ? o.figure : "complaints";
    const figure_def *fig = figure_find(fig_name);
    if (!fig)
        return PM_ERR(ctx, PM_E_USAGE, "%s: unknown figure \"%s\" (complaints, "
                      "complaints_per_10k, complaints_per_km2, answered_within_24h_share, "
                      "change_pct, overdue_share, rating_index ...)", path, fig_name);
    page pg;
    int rc = page_from_opts(ctx, &o, fmt, &pg);
    if (rc)
        return rc;
    report r = {.ds = ds, .topics = topics, .fig = fig,
                .title = o.title ? o.title : "Обращения граждан",
                .attribution = o.attribution};
    rc = report_build(ctx, &r, cube, f, &o);
    if (!rc)
        rc = fmt == PM_REPORT_PNG ? write_png(ctx, path, &r, &pg)
                                  : write_vector(ctx, path, fmt, &r, &pg);
    report_free(&r);
    return rc;
}
