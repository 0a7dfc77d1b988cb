/* cube_out.c — the cube's rows as GeoJSON (RFC 7946), CSV and a JSON
 * summary (see pm_cube_out.h).  Each writer writes to a FILE (the
 * pm_cube_*_stream functions, used by `problemap serve` on memory
 * streams); the path functions wrap them in pm_out.h's temporary file and
 * rename.
 *
 * One table of columns (COLS) names every property, says how it is rounded
 * and is shared by the three writers, so GeoJSON, CSV and the summary
 * always agree.  Rounding, fixed per property so the bytes are stable:
 *   counts (complaints, answered, answered_within_24h, open, overdue,
 *   previous_complaints), rating_rank, change, population: integers;
 *   complaints_per_km2, answered_within_24h_share, overdue_share,
 *   rating_index: 4 decimals; complaints_per_10k,
 *   complaints_per_10k_smoothed, answer_time_median_h, answer_time_p90_h,
 *   change_pct: 2 decimals; area_km2: 3 decimals.
 * A value is rounded to k / 10^d (round half away from zero), -0 becomes 0,
 * and it is printed with at most d decimals and no exponent: JSON numbers
 * through jansson with 15 significant digits (exact for these magnitudes),
 * CSV numbers with "%.*f" and trailing zeros dropped.  NAN is null in JSON
 * and an empty CSV field; a rank of 0 (not rated) is null too.  A
 * suppressed row keeps its key columns, area_km2, population and
 * "suppressed": true; every other figure is null.
 *
 * Columns by level: DISTRICT id, name, region_id, region_name; REGION id,
 * name; EXECUTOR executor; TOPIC topic, topic_name_ru; TOTAL none; then the
 * figures complaints … rating_rank, then area_km2 and population (DISTRICT,
 * REGION and TOTAL only: executors and topics have no area) and
 * suppressed.  GeoJSON properties are sorted by name; CSV columns keep
 * this order.  (A JSON real always shows a fraction: 100.0 in JSON is 100
 * in CSV.)
 *
 * GeoJSON.  Written as text, one feature per line:
 *   {"type":"FeatureCollection","bbox":[…],"features":[
 *   {"type":"Feature","id":"…","bbox":[…],"properties":{…},"geometry":{…}},
 *   …
 *   ]}
 * Properties are a jansson object dumped with sorted keys; coordinates are
 * printed here, rounded to opts.decimals (6 or 7), so a file of thousands
 * of detailed districts never becomes one huge jansson tree.  After
 * rounding, repeated consecutive points are dropped, a ring left with fewer
 * than 4 points or no area is dropped (with its polygon when it is the
 * exterior), exterior rings are made counter-clockwise and holes clockwise
 * (signed area of the rounded ring, reversed when needed: GEOS 3.11 has no
 * GEOSOrientPolygons).  Bounding boxes are taken from the written
 * coordinates, so they match them exactly; a feature left without any
 * polygon gets a null geometry and no bbox.  Two passes: the first builds
 * each feature's geometry (union for a region, simplification) and its
 * bbox, the second writes.
 *
 * Simplification (opts.simplify_m > 0) is GEOSTopologyPreserveSimplify on
 * each geometry alone, with the tolerance converted to degrees by the
 * length of a degree of latitude at the centre of the geometry's envelope
 * (WGS84 meridian radius).  A degree of longitude is shorter by cos(lat),
 * so no vertex moves more than simplify_m in any direction (east–west the
 * effective tolerance is smaller).  GEOS 3.11 has no coverage
 * simplification: the shared border of two neighbours is simplified twice,
 * independently, so it may no longer coincide exactly (small slivers or
 * overlaps at web scale).
 *
 * NULL arguments: pm_cube_write_geojson() never uses cube (NULL is fine;
 * areas come from the rows).  pm_cube_write_csv() needs ds at the DISTRICT
 * and REGION levels, cube at the EXECUTOR level (executor names) and
 * topics at the TOPIC level; the others may be NULL.  pm_cube_write_summary()
 * needs ds, cube and topics; f may be NULL (no filter).  opts may be NULL
 * (defaults).  A missing argument that is needed is PM_E_USAGE.
 */
#include "pm_cube_out.h"
#include "pm_out.h"
#include "../engine/pm_alloc.h"

#include <inttypes.h>
#include <jansson.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------ columns */

typedef enum col {
    C_ID, C_NAME, C_REGION_ID, C_REGION_NAME, C_EXECUTOR, C_TOPIC, C_TOPIC_NAME_RU,
    C_COMPLAINTS, C_PER_KM2, C_PER_10K, C_PER_10K_SMOOTHED, C_ANSWERED, C_ANSWERED_24H,
    C_SHARE_24H, C_MEDIAN_H, C_P90_H, C_OPEN, C_OVERDUE, C_OVERDUE_SHARE, C_PREV, C_CHANGE,
    C_CHANGE_PCT, C_RATING_INDEX, C_RATING_RANK, C_AREA_KM2, C_POPULATION, C_SUPPRESSED,
    C_N
} col;

#define C_FIRST_FIGURE C_COMPLAINTS
#define C_LAST_FIGURE C_RATING_RANK

static const struct {
    const char *name;
    int decimals;   /* for real values */
} COLS[C_N] = {
    [C_ID] = {"id", 0},
    [C_NAME] = {"name", 0},
    [C_REGION_ID] = {"region_id", 0},
    [C_REGION_NAME] = {"region_name", 0},
    [C_EXECUTOR] = {"executor", 0},
    [C_TOPIC] = {"topic", 0},
    [C_TOPIC_NAME_RU] = {"topic_name_ru", 0},
    [C_COMPLAINTS] = {"complaints", 0},
    [C_PER_KM2] = {"complaints_per_km2", 4},
    [C_PER_10K] = {"complaints_per_10k", 2},
    [C_PER_10K_SMOOTHED] = {"complaints_per_10k_smoothed", 2},
    [C_ANSWERED] = {"answered", 0},
    [C_ANSWERED_24H] = {"answered_within_24h", 0},
    [C_SHARE_24H] = {"answered_within_24h_share", 4},
    [C_MEDIAN_H] = {"answer_time_median_h", 2},
    [C_P90_H] = {"answer_time_p90_h", 2},
    [C_OPEN] = {"open", 0},
    [C_OVERDUE] = {"overdue", 0},
    [C_OVERDUE_SHARE] = {"overdue_share", 4},
    [C_PREV] = {"previous_complaints", 0},
    [C_CHANGE] = {"change", 0},
    [C_CHANGE_PCT] = {"change_pct", 2},
    [C_RATING_INDEX] = {"rating_index", 4},
    [C_RATING_RANK] = {"rating_rank", 0},
    [C_AREA_KM2] = {"area_km2", 3},
    [C_POPULATION] = {"population", 0},
    [C_SUPPRESSED] = {"suppressed", 0},
};

/* The columns of a level, in CSV order; returns how many. */
static size_t level_columns(pm_level level, col out[C_N])
{
    size_t n = 0;
    switch (level) {
    case PM_LEVEL_DISTRICT:
        out[n++] = C_ID, out[n++] = C_NAME, out[n++] = C_REGION_ID, out[n++] = C_REGION_NAME;
        break;
    case PM_LEVEL_REGION:
        out[n++] = C_ID, out[n++] = C_NAME;
        break;
    case PM_LEVEL_EXECUTOR:
        out[n++] = C_EXECUTOR;
        break;
    case PM_LEVEL_TOPIC:
        out[n++] = C_TOPIC, out[n++] = C_TOPIC_NAME_RU;
        break;
    case PM_LEVEL_TOTAL:
        break;
    }
    for (int c = C_FIRST_FIGURE; c <= C_LAST_FIGURE; c++)
        out[n++] = (col)c;
    if (level == PM_LEVEL_DISTRICT || level == PM_LEVEL_REGION || level == PM_LEVEL_TOTAL)
        out[n++] = C_AREA_KM2, out[n++] = C_POPULATION;
    out[n++] = C_SUPPRESSED;
    return n;
}

/* ------------------------------------------------------------- values */

typedef enum vkind { V_NULL, V_INT, V_REAL, V_BOOL, V_TEXT } vkind;

typedef struct value {
    vkind kind;
    long long i;      /* V_INT, V_BOOL */
    double d;         /* V_REAL, already rounded */
    int decimals;     /* V_REAL */
    const char *s;    /* V_TEXT, borrowed */
} value;

/* Where the key columns get their strings. */
typedef struct source {
    pm_level level;
    const pm_districts *ds;
    const pm_cube *cube;
    const pm_topics *topics;
} source;

static double round_to(double x, int decimals)
{
    double p = pow(10.0, decimals);
    double r = round(x * p) / p;
    return r == 0.0 ? 0.0 : r; /* no "-0" */
}

static value v_text(const char *s)
{
    return s && *s ? (value){.kind = V_TEXT, .s = s} : (value){.kind = V_NULL};
}

static value v_count(uint64_t n)
{
    return (value){.kind = V_INT, .i = (long long)n};
}

static value v_real(double x, col c)
{
    if (!isfinite(x))
        return (value){.kind = V_NULL};
    if (COLS[c].decimals == 0)
        return (value){.kind = V_INT, .i = llround(x)};
    return (value){.kind = V_REAL, .d = round_to(x, COLS[c].decimals), .decimals = COLS[c].decimals};
}

static value key_value(const source *s, const pm_row *r, col c)
{
    switch (c) {
    case C_ID:
        return v_text(s->level == PM_LEVEL_REGION ? pm_region_id(s->ds, r->key)
                                                  : pm_district_id(s->ds, r->key));
    case C_NAME:
        return v_text(s->level == PM_LEVEL_REGION ? pm_region_name(s->ds, r->key)
                                                  : pm_district_name(s->ds, r->key));
    case C_REGION_ID:
        return v_text(pm_region_id(s->ds, pm_district_region(s->ds, r->key)));
    case C_REGION_NAME:
        return v_text(pm_region_name(s->ds, pm_district_region(s->ds, r->key)));
    case C_EXECUTOR:
        return v_text(pm_cube_dict_str(s->cube, PM_DICT_EXECUTOR, (uint32_t)r->key));
    case C_TOPIC:
        return v_text(pm_topic_code(s->topics, r->key));
    case C_TOPIC_NAME_RU:
        return v_text(pm_topic_name_ru(s->topics, r->key));
    default:
        return (value){.kind = V_NULL};
    }
}

/* The value of column c for row r. */
static value cell(const source *s, const pm_row *r, col c)
{
    if (c < C_FIRST_FIGURE)
        return key_value(s, r, c);
    if (c == C_SUPPRESSED)
        return (value){.kind = V_BOOL, .i = r->suppressed != 0};
    if (c == C_AREA_KM2)
        return v_real(r->area_km2, c);
    if (c == C_POPULATION)
        return v_real(r->population, c);
    if (r->suppressed)
        return (value){.kind = V_NULL};
    switch (c) {
    case C_COMPLAINTS: return v_count(r->count);
    case C_PER_KM2: return v_real(r->per_km2, c);
    case C_PER_10K: return v_real(r->per_10k, c);
    case C_PER_10K_SMOOTHED: return v_real(r->eb_per_10k, c);
    case C_ANSWERED: return v_count(r->answered);
    case C_ANSWERED_24H: return v_count(r->answered_24h);
    case C_SHARE_24H: return v_real(r->share_24h, c);
    case C_MEDIAN_H: return v_real(r->median_h, c);
    case C_P90_H: return v_real(r->p90_h, c);
    case C_OPEN: return v_count(r->open);
    case C_OVERDUE: return v_count(r->overdue);
    case C_OVERDUE_SHARE: return v_real(r->overdue_share, c);
    case C_PREV: return v_count(r->prev_count);
    case C_CHANGE: return v_real(r->change_abs, c);
    case C_CHANGE_PCT: return v_real(r->change_pct, c);
    case C_RATING_INDEX: return v_real(r->index, c);
    case C_RATING_RANK: return r->rank ? v_count(r->rank) : (value){.kind = V_NULL};
    default: return (value){.kind = V_NULL};
    }
}

/* A new reference, or NULL when jansson is out of memory (or a string is
 * not UTF-8). */
static json_t *value_json(const value *v)
{
    switch (v->kind) {
    case V_INT: return json_integer((json_int_t)v->i);
    case V_REAL: return json_real(v->d);
    case V_BOOL: return json_boolean(v->i);
    case V_TEXT: return json_string(v->s);
    default: return json_null();
    }
}

/* Prints x (already rounded to decimals) with at most that many decimals,
 * no trailing zeros and no exponent; dec is the decimal separator. */
static const char *format_fixed(double x, int decimals, char dec, char buf[64])
{
    int len = snprintf(buf, 64, "%.*f", decimals, x);
    if (len <= 0 || len >= 64)
        return strcpy(buf, "");
    char *dot = strchr(buf, '.');
    if (dot) {
        char *end = buf + len;
        while (end > dot + 1 && end[-1] == '0')
            *--end = '\0';
        if (end == dot + 1)
            *dot = '\0';
        else
            *dot = dec;
    }
    return buf;
}

/* The CSV text of v (NULL for an empty field). */
static const char *value_text(const value *v, char dec, char buf[64])
{
    switch (v->kind) {
    case V_INT: snprintf(buf, 64, "%lld", v->i); return buf;
    case V_REAL: return format_fixed(v->d, v->decimals, dec, buf);
    case V_BOOL: return v->i ? "true" : "false";
    case V_TEXT: return v->s;
    default: return NULL;
    }
}

/* A JSON object of the columns cols of row r, named names[i] (NULL: the
 * column names); *out is a new reference. */
static int row_object(pm_ctx *ctx, const char *name, const source *s, const pm_row *r,
                      const col *cols, const char *const *names, size_t n, json_t **out)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < n; i++) {
        value v = cell(s, r, cols[i]);
        if (json_object_set_new(o, names ? names[i] : COLS[cols[i]].name, value_json(&v)) != 0) {
            json_decref(o);
            o = NULL;
        }
    }
    *out = o;
    return o ? PM_OK : PM_ERR(ctx, PM_E_NOMEM, "%s: out of memory (or a name that is not UTF-8)", name);
}

/* The error of a failed json_dumpf to f: a write error or no memory. */
static int dump_error(pm_ctx *ctx, const char *name, FILE *f)
{
    if (ferror(f))
        return PM_ERR(ctx, PM_E_IO, "error writing %s: %s", name, strerror(errno));
    return PM_ERR(ctx, PM_E_NOMEM, "%s: out of memory writing JSON", name);
}

/* Checks that every row's key exists at this level. */
static int check_keys(pm_ctx *ctx, const char *name, const source *s, const pm_row *rows, size_t n)
{
    size_t limit = 1;
    switch (s->level) {
    case PM_LEVEL_DISTRICT: limit = pm_districts_count(s->ds); break;
    case PM_LEVEL_REGION: limit = pm_regions_count(s->ds); break;
    case PM_LEVEL_EXECUTOR: limit = pm_cube_dict_count(s->cube, PM_DICT_EXECUTOR); break;
    case PM_LEVEL_TOPIC: limit = pm_topics_count(s->topics); break;
    case PM_LEVEL_TOTAL: break;
    }
    for (size_t i = 0; i < n; i++)
        if (rows[i].key >= limit)
            return PM_ERR(ctx, PM_E_USAGE, "%s: row %zu: key %zu out of range (%zu at this level)",
                          name, i, rows[i].key, limit);
    return PM_OK;
}

/* Checks that the level is known and its needed arguments are given. */
static int check_source(pm_ctx *ctx, const char *name, const source *s)
{
    const char *missing = NULL;
    switch (s->level) {
    case PM_LEVEL_DISTRICT:
    case PM_LEVEL_REGION: missing = s->ds ? NULL : "districts"; break;
    case PM_LEVEL_EXECUTOR: missing = s->cube ? NULL : "cube"; break;
    case PM_LEVEL_TOPIC: missing = s->topics ? NULL : "topics"; break;
    case PM_LEVEL_TOTAL: break;
    default: return PM_ERR(ctx, PM_E_USAGE, "%s: unknown level %d", name, (int)s->level);
    }
    if (missing)
        return PM_ERR(ctx, PM_E_USAGE, "%s: writing this level needs the %s", name, missing);
    return PM_OK;
}

/* Commits of when rc is PM_OK, else drops it; returns the first error. */
static int outfile_finish(pm_ctx *ctx, pm_outfile *of, int rc)
{
    if (rc == PM_OK)
        return pm_outfile_commit(ctx, of);
    pm_outfile_abort(of);
    return rc;
}

/* PM_E_IO when the stream saw a write error (a full disk, or no memory
 * for an open_memstream buffer). */
static int stream_check(pm_ctx *ctx, const char *name, FILE *f)
{
    return ferror(f) ? PM_ERR(ctx, PM_E_IO, "error writing %s: %s", name, strerror(errno)) : PM_OK;
}

/* ------------------------------------------------------------ GeoJSON */

typedef struct feature {
    GEOSGeometry *owned;        /* union or simplified copy, else NULL */
    const GEOSGeometry *g;      /* what is written */
    double bbox[4];             /* minlon, minlat, maxlon, maxlat of the written points */
    size_t n_polys;             /* polygons left after rounding */
} feature;

typedef struct gj_writer {
    pm_ctx *ctx;
    GEOSContextHandle_t h;
    const char *name;           /* the output's name, for messages */
    int decimals;
    FILE *f;                    /* NULL in the measuring pass */
    double *pts;                /* one ring, rounded: x0 y0 x1 y1 … */
    size_t cap;                 /* points pts can hold */
} gj_writer;

static void bbox_empty(double b[4])
{
    b[0] = b[1] = INFINITY;
    b[2] = b[3] = -INFINITY;
}

static void bbox_add(double b[4], double x, double y)
{
    b[0] = fmin(b[0], x), b[1] = fmin(b[1], y);
    b[2] = fmax(b[2], x), b[3] = fmax(b[3], y);
}

static void bbox_merge(double b[4], const double o[4])
{
    bbox_add(b, o[0], o[1]);
    bbox_add(b, o[2], o[3]);
}

static void put_num(gj_writer *w, double x)
{
    char buf[64];
    fputs(format_fixed(x, w->decimals, '.', buf), w->f);
}

static void put_bbox(gj_writer *w, const double b[4])
{
    fputs("\"bbox\":[", w->f);
    for (int i = 0; i < 4; i++) {
        if (i)
            putc(',', w->f);
        put_num(w, b[i]);
    }
    fputs("],", w->f);
}

/* Loads ring into w->pts rounded, without repeated points, oriented
 * counter-clockwise (ccw) or clockwise; *n = points kept, 0 when the ring
 * collapsed (fewer than 4 points or no area). */
static int ring_load(gj_writer *w, const GEOSGeometry *ring, int ccw, size_t *n)
{
    *n = 0;
    unsigned int size;
    const GEOSCoordSequence *seq = GEOSGeom_getCoordSeq_r(w->h, ring);
    if (!seq || !GEOSCoordSeq_getSize_r(w->h, seq, &size))
        return PM_ERR(w->ctx, PM_E_GEOM, "%s: cannot read a ring: %s", w->name,
                      pm_ctx_geos_msg(w->ctx));
    if (size > w->cap) {
        double *p = pm_reallocarray(w->pts, size, 2 * sizeof *p);
        if (!p)
            return PM_ERR(w->ctx, PM_E_NOMEM, "%s: out of memory (ring of %u points)", w->name, size);
        w->pts = p;
        w->cap = size;
    }
    size_t k = 0;
    for (unsigned int i = 0; i < size; i++) {
        double x, y;
        if (!GEOSCoordSeq_getXY_r(w->h, seq, i, &x, &y))
            return PM_ERR(w->ctx, PM_E_GEOM, "%s: cannot read a point: %s", w->name,
                          pm_ctx_geos_msg(w->ctx));
        x = round_to(x, w->decimals);
        y = round_to(y, w->decimals);
        if (k && w->pts[2 * k - 2] == x && w->pts[2 * k - 1] == y)
            continue;
        w->pts[2 * k] = x;
        w->pts[2 * k + 1] = y;
        k++;
    }
    if (k < 4)
        return PM_OK;
    /* twice the signed area (shoelace), relative to the first point so
     * that a small ring far from (0, 0) keeps its sign */
    const double *p = w->pts;
    double area2 = 0;
    for (size_t i = 1; i + 1 < k; i++)
        area2 += (p[2 * i] - p[0]) * (p[2 * i + 3] - p[1]) - (p[2 * i + 2] - p[0]) * (p[2 * i + 1] - p[1]);
    if (area2 == 0)
        return PM_OK;
    if ((area2 > 0) != (ccw != 0)) {
        for (size_t i = 0, j = k - 1; i < j; i++, j--) {
            double tx = w->pts[2 * i], ty = w->pts[2 * i + 1];
            w->pts[2 * i] = w->pts[2 * j], w->pts[2 * i + 1] = w->pts[2 * j + 1];
            w->pts[2 * j] = tx, w->pts[2 * j + 1] = ty;
        }
    }
    *n = k;
    return PM_OK;
}

static void put_ring(gj_writer *w, size_t n)
{
    putc('[', w->f);
    for (size_t i = 0; i < n; i++) {
        fputs(i ? ",[" : "[", w->f);
        put_num(w, w->pts[2 * i]);
        putc(',', w->f);
        put_num(w, w->pts[2 * i + 1]);
        putc(']', w->f);
    }
    putc(']', w->f);
}

/* One polygon: in the measuring pass extends ft->bbox and counts it, in the
 * writing pass prints its rings (preceded by a comma unless it is the
 * first). */
static int polygon_out(gj_writer *w, const GEOSGeometry *poly, feature *ft, size_t *seen)
{
    if (GEOSisEmpty_r(w->h, poly) == 1)
        return PM_OK;
    const GEOSGeometry *ext = GEOSGetExteriorRing_r(w->h, poly);
    int holes = GEOSGetNumInteriorRings_r(w->h, poly);
    if (!ext || holes < 0)
        return PM_ERR(w->ctx, PM_E_GEOM, "%s: cannot read a polygon: %s", w->name,
                      pm_ctx_geos_msg(w->ctx));
    size_t n;
    int rc = ring_load(w, ext, 1, &n);
    if (rc != PM_OK || n == 0)
        return rc;
    if (!w->f) {
        for (size_t i = 0; i < n; i++)
            bbox_add(ft->bbox, w->pts[2 * i], w->pts[2 * i + 1]);
        ft->n_polys++;
        return PM_OK;
    }
    if ((*seen)++)
        putc(',', w->f);
    putc('[', w->f);
    put_ring(w, n);
    for (int i = 0; i < holes; i++) {
        rc = ring_load(w, GEOSGetInteriorRingN_r(w->h, poly, i), 0, &n);
        if (rc != PM_OK)
            return rc;
        if (n) {
            putc(',', w->f);
            put_ring(w, n);
        }
    }
    putc(']', w->f);
    return PM_OK;
}

/* Every polygon of g, in order (multi-polygons and collections walked). */
static int polygons_out(gj_writer *w, const GEOSGeometry *g, feature *ft, size_t *seen)
{
    int type = GEOSGeomTypeId_r(w->h, g);
    if (type == GEOS_POLYGON)
        return polygon_out(w, g, ft, seen);
    if (type != GEOS_MULTIPOLYGON && type != GEOS_GEOMETRYCOLLECTION)
        return PM_OK; /* points or lines: not part of an area */
    int parts = GEOSGetNumGeometries_r(w->h, g);
    for (int i = 0; i < parts; i++) {
        int rc = polygons_out(w, GEOSGetGeometryN_r(w->h, g, i), ft, seen);
        if (rc != PM_OK)
            return rc;
    }
    return PM_OK;
}

static int geometry_out(gj_writer *w, feature *ft)
{
    if (ft->n_polys == 0) {
        fputs("null", w->f);
        return PM_OK;
    }
    int multi = ft->n_polys > 1;
    fputs(multi ? "{\"type\":\"MultiPolygon\",\"coordinates\":[" : "{\"type\":\"Polygon\",\"coordinates\":",
          w->f);
    size_t seen = 0;
    int rc = polygons_out(w, ft->g, ft, &seen);
    fputs(multi ? "]}" : "}", w->f);
    return rc;
}

/* Length of one degree of latitude at lat_deg on WGS84, metres (the
 * meridian radius of curvature × π/180). */
static double degree_of_latitude_m(double lat_deg)
{
    const double a = 6378137.0, e2 = 0.00669437999014;
    double s = sin(lat_deg * M_PI / 180.0);
    return a * (1 - e2) / pow(1 - e2 * s * s, 1.5) * M_PI / 180.0;
}

/* *out = the union of the districts of region r (new geometry). */
static int region_union(gj_writer *w, const pm_districts *ds, size_t r, size_t feat, GEOSGeometry **out)
{
    *out = NULL;
    size_t nd = pm_districts_count(ds), k = 0;
    GEOSGeometry **parts = pm_calloc(nd ? nd : 1, sizeof *parts);
    if (!parts)
        return PM_ERR(w->ctx, PM_E_NOMEM, "%s: out of memory (%zu districts)", w->name, nd);
    int cloned = 1;
    for (size_t i = 0; i < nd && cloned; i++)
        if (pm_district_region(ds, i) == r)
            cloned = (parts[k++] = GEOSGeom_clone_r(w->h, pm_district_geom_borrow(ds, i))) != NULL;
    GEOSGeometry *coll = NULL;
    if (cloned) /* takes the parts (GEOS 3.11 owns them even when it fails) */
        coll = GEOSGeom_createCollection_r(w->h, GEOS_GEOMETRYCOLLECTION, parts, (unsigned)k);
    else /* parts[k - 1] is the clone that failed */
        for (size_t i = 0; i + 1 < k; i++)
            GEOSGeom_destroy_r(w->h, parts[i]);
    if (coll) {
        *out = GEOSUnaryUnion_r(w->h, coll);
        GEOSGeom_destroy_r(w->h, coll);
    }
    pm_free(parts);
    if (!*out)
        return PM_ERR(w->ctx, PM_E_GEOM, "%s: feature %zu (id \"%s\"): union of the districts failed: %s",
                      w->name, feat, pm_region_id(ds, r), pm_ctx_geos_msg(w->ctx));
    return PM_OK;
}

/* Builds the geometry of feature i (union, simplification) and measures
 * its bbox and polygons. */
static int feature_prepare(gj_writer *w, const pm_districts *ds, pm_level level, const pm_row *row,
                           size_t i, double simplify_m, feature *ft)
{
    const char *id = level == PM_LEVEL_REGION ? pm_region_id(ds, row->key) : pm_district_id(ds, row->key);
    bbox_empty(ft->bbox);
    if (level == PM_LEVEL_REGION) {
        int rc = region_union(w, ds, row->key, i, &ft->owned);
        if (rc != PM_OK)
            return rc;
        ft->g = ft->owned;
    } else {
        ft->g = pm_district_geom_borrow(ds, row->key);
    }
    if (simplify_m > 0 && GEOSisEmpty_r(w->h, ft->g) == 0) {
        double ymin, ymax;
        if (!GEOSGeom_getYMin_r(w->h, ft->g, &ymin) || !GEOSGeom_getYMax_r(w->h, ft->g, &ymax))
            return PM_ERR(w->ctx, PM_E_GEOM, "%s: feature %zu (id \"%s\"): no envelope: %s", w->name, i,
                          id, pm_ctx_geos_msg(w->ctx));
        double tol = simplify_m / degree_of_latitude_m((ymin + ymax) / 2);
        GEOSGeometry *s = GEOSTopologyPreserveSimplify_r(w->h, ft->g, tol);
        if (!s)
            return PM_ERR(w->ctx, PM_E_GEOM, "%s: feature %zu (id \"%s\"): simplification failed: %s",
                          w->name, i, id, pm_ctx_geos_msg(w->ctx));
        GEOSGeom_destroy_r(w->h, ft->owned);
        ft->owned = s;
        ft->g = s;
    }
    size_t seen = 0;
    return polygons_out(w, ft->g, ft, &seen);
}

/* Writes s as a JSON string. */
static int put_json_string(gj_writer *w, const char *s)
{
    json_t *j = json_string(s ? s : "");
    if (!j)
        return PM_ERR(w->ctx, PM_E_NOMEM, "%s: cannot encode \"%s\" (out of memory or not UTF-8)",
                      w->name, s);
    int rc = json_dumpf(j, w->f, JSON_ENCODE_ANY) == 0 ? PM_OK : dump_error(w->ctx, w->name, w->f);
    json_decref(j);
    return rc;
}

/* One feature: id, bbox, the caller's properties, the geometry. */
static int feature_write(gj_writer *w, const char *id, json_t *props, feature *ft)
{
    fputs("{\"type\":\"Feature\",\"id\":", w->f);
    int rc = put_json_string(w, id);
    if (rc == PM_OK) {
        putc(',', w->f);
        if (ft->n_polys)
            put_bbox(w, ft->bbox);
        fputs("\"properties\":", w->f);
        if (json_dumpf(props, w->f, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15)) != 0)
            rc = dump_error(w->ctx, w->name, w->f);
    }
    if (rc != PM_OK)
        return rc;
    fputs(",\"geometry\":", w->f);
    rc = geometry_out(w, ft);
    putc('}', w->f);
    return rc;
}

static int write_features(gj_writer *w, const char *const *ids, json_t *const *props, feature *fts,
                          size_t n)
{
    double all[4];
    bbox_empty(all);
    size_t with_geom = 0;
    for (size_t i = 0; i < n; i++)
        if (fts[i].n_polys) {
            bbox_merge(all, fts[i].bbox);
            with_geom++;
        }
    fputs("{\"type\":\"FeatureCollection\",", w->f);
    if (with_geom)
        put_bbox(w, all);
    fputs("\"features\":[\n", w->f);
    for (size_t i = 0; i < n; i++) {
        int rc = feature_write(w, ids[i], props[i], &fts[i]);
        if (rc != PM_OK)
            return rc;
        fputs(i + 1 < n ? ",\n" : "\n", w->f);
    }
    fputs("]}\n", w->f);
    return PM_OK;
}

static int check_export_opts(pm_ctx *ctx, const char *name, const pm_export_opts *opts, int *decimals)
{
    *decimals = opts && opts->decimals ? opts->decimals : 6;
    if (*decimals != 6 && *decimals != 7)
        return PM_ERR(ctx, PM_E_USAGE, "%s: coordinate decimals must be 6 or 7, not %d", name, *decimals);
    if (opts && !(opts->simplify_m >= 0 && isfinite(opts->simplify_m)))
        return PM_ERR(ctx, PM_E_USAGE, "%s: simplification tolerance must be a finite number >= 0", name);
    return PM_OK;
}

/* The features of rows (district or region keys) with props[i] each: the
 * geometry pass, then the collection.  ids and props are the caller's. */
static int collection_stream(gj_writer *w, const pm_districts *ds, pm_level level, const pm_row *rows,
                             const char *const *ids, json_t *const *props, size_t n,
                             const pm_export_opts *opts)
{
    int rc = check_export_opts(w->ctx, w->name, opts, &w->decimals);
    if (rc != PM_OK)
        return rc;
    feature *fts = pm_calloc(n ? n : 1, sizeof *fts);
    if (!fts)
        return PM_ERR(w->ctx, PM_E_NOMEM, "%s: out of memory (%zu features)", w->name, n);
    double simplify_m = opts ? opts->simplify_m : 0;
    FILE *f = w->f;
    w->f = NULL;   /* the measuring pass */
    for (size_t i = 0; i < n && rc == PM_OK; i++)
        rc = feature_prepare(w, ds, level, &rows[i], i, simplify_m, &fts[i]);
    if (rc == PM_OK) {
        w->f = f;
        rc = write_features(w, ids, props, fts, n);
    }
    if (rc == PM_OK)
        rc = stream_check(w->ctx, w->name, f);
    for (size_t i = 0; i < n; i++)
        GEOSGeom_destroy_r(w->h, fts[i].owned);
    pm_free(fts);
    pm_free(w->pts);
    w->pts = NULL;
    return rc;
}

/* Per-feature arrays: ids (borrowed strings) and props (owned objects). */
typedef struct feature_props {
    const char **ids;
    json_t **props;
    size_t n;
} feature_props;

static void feature_props_free(feature_props *fp)
{
    for (size_t i = 0; fp->props && i < fp->n; i++)
        json_decref(fp->props[i]);
    pm_free(fp->props);
    pm_free(fp->ids);
}

static int feature_props_alloc(pm_ctx *ctx, const char *name, size_t n, feature_props *fp)
{
    fp->n = n;
    fp->ids = pm_calloc(n ? n : 1, sizeof *fp->ids);
    fp->props = pm_calloc(n ? n : 1, sizeof *fp->props);
    return fp->ids && fp->props ? PM_OK : PM_ERR(ctx, PM_E_NOMEM, "%s: out of memory (%zu features)", name, n);
}

int pm_cube_geojson_stream(pm_ctx *ctx, FILE *f, const char *name, const pm_districts *ds,
                           const pm_cube *cube, pm_level level, const pm_row *rows, size_t n,
                           const pm_export_opts *opts)
{
    source src = {level, ds, cube, NULL};
    if (level != PM_LEVEL_DISTRICT && level != PM_LEVEL_REGION)
        return PM_ERR(ctx, PM_E_USAGE, "%s: GeoJSON is written for districts or regions only", name);
    gj_writer w = {ctx, pm_ctx_geos(ctx), name, 6, f, NULL, 0};
    int rc = check_source(ctx, name, &src);
    if (rc == PM_OK)
        rc = check_keys(ctx, name, &src, rows, n);
    if (rc != PM_OK)
        return rc;
    feature_props fp = {0};
    col cols[C_N];
    size_t nc = level_columns(level, cols);
    rc = feature_props_alloc(ctx, name, n, &fp);
    for (size_t i = 0; i < n && rc == PM_OK; i++) {
        fp.ids[i] = level == PM_LEVEL_REGION ? pm_region_id(ds, rows[i].key) : pm_district_id(ds, rows[i].key);
        rc = row_object(ctx, name, &src, &rows[i], cols, NULL, nc, &fp.props[i]);
    }
    if (rc == PM_OK)
        rc = collection_stream(&w, ds, level, rows, fp.ids, fp.props, n, opts);
    feature_props_free(&fp);
    return rc;
}

int pm_districts_geojson_stream(pm_ctx *ctx, FILE *f, const char *name, const pm_districts *ds,
                                const size_t *keys, json_t *const *props, size_t n,
                                const pm_export_opts *opts)
{
    size_t nd = pm_districts_count(ds);
    for (size_t i = 0; i < n; i++)
        if (keys[i] >= nd || !json_is_object(props[i]))
            return PM_ERR(ctx, PM_E_USAGE, "%s: feature %zu: district %zu of %zu, or properties that "
                                           "are not an object", name, i, keys[i], nd);
    gj_writer w = {ctx, pm_ctx_geos(ctx), name, 6, f, NULL, 0};
    pm_row *rows = pm_calloc(n ? n : 1, sizeof *rows);
    const char **ids = pm_calloc(n ? n : 1, sizeof *ids);
    int rc = rows && ids ? PM_OK : PM_ERR(ctx, PM_E_NOMEM, "%s: out of memory (%zu features)", name, n);
    for (size_t i = 0; i < n && rc == PM_OK; i++) {
        rows[i].key = keys[i];
        ids[i] = pm_district_id(ds, keys[i]);
    }
    if (rc == PM_OK)
        rc = collection_stream(&w, ds, PM_LEVEL_DISTRICT, rows, ids, props, n, opts);
    pm_free(rows);
    pm_free(ids);
    return rc;
}

int pm_districts_write_geojson(pm_ctx *ctx, const char *path, const pm_districts *ds,
                               const size_t *keys, json_t *const *props, size_t n,
                               const pm_export_opts *opts)
{
    pm_outfile *of;
    int rc = pm_outfile_open(ctx, path, &of);
    if (rc != PM_OK)
        return rc;
    return outfile_finish(ctx, of, pm_districts_geojson_stream(ctx, pm_outfile_stream(of), path, ds,
                                                               keys, props, n, opts));
}

int pm_cube_write_geojson(pm_ctx *ctx, const char *path, const pm_districts *ds,
                          const pm_cube *cube, pm_level level, const pm_row *rows, size_t n,
                          const pm_export_opts *opts)
{
    pm_outfile *of;
    int rc = pm_outfile_open(ctx, path, &of);
    if (rc != PM_OK)
        return rc;
    return outfile_finish(ctx, of, pm_cube_geojson_stream(ctx, pm_outfile_stream(of), path, ds, cube,
                                                          level, rows, n, opts));
}

/* ---------------------------------------------------------------- CSV */

static void csv_row(FILE *f, char delim, const source *s, const pm_row *r, const col *cols, size_t n)
{
    char bufs[C_N][64];
    const char *fields[C_N];
    char dec = delim == ';' ? ',' : '.';
    for (size_t i = 0; i < n; i++) {
        value v = cell(s, r, cols[i]);
        fields[i] = value_text(&v, dec, bufs[i]);
    }
    pm_csv_write_row(f, delim, n, fields);
}

int pm_cube_csv_stream(pm_ctx *ctx, FILE *f, const char *name, const pm_districts *ds,
                       const pm_cube *cube, const pm_topics *topics, pm_level level,
                       const pm_row *rows, size_t n, const pm_export_opts *opts)
{
    source src = {level, ds, cube, topics};
    char delim = opts && opts->csv_delim ? opts->csv_delim : ',';
    if (delim != ',' && delim != ';')
        return PM_ERR(ctx, PM_E_USAGE, "%s: CSV delimiter must be ',' or ';'", name);
    int rc = check_source(ctx, name, &src);
    if (rc == PM_OK)
        rc = check_keys(ctx, name, &src, rows, n);
    if (rc != PM_OK)
        return rc;
    col cols[C_N];
    const char *names[C_N];
    size_t nc = level_columns(level, cols);
    for (size_t i = 0; i < nc; i++)
        names[i] = COLS[cols[i]].name;
    if (opts && opts->csv_bom)
        fputs("\xEF\xBB\xBF", f);
    pm_csv_write_row(f, delim, nc, names);
    for (size_t i = 0; i < n; i++)
        csv_row(f, delim, &src, &rows[i], cols, nc);
    return stream_check(ctx, name, f);
}

int pm_cube_write_csv(pm_ctx *ctx, const char *path, const pm_districts *ds,
                      const pm_cube *cube, const pm_topics *topics, pm_level level,
                      const pm_row *rows, size_t n, const pm_export_opts *opts)
{
    pm_outfile *of;
    int rc = pm_outfile_open(ctx, path, &of);
    if (rc != PM_OK)
        return rc;
    return outfile_finish(ctx, of, pm_cube_csv_stream(ctx, pm_outfile_stream(of), path, ds, cube,
                                                      topics, level, rows, n, opts));
}

/* ------------------------------------------------------------ summary */

enum { TOP_N = 10, DEFAULT_MIN_SAMPLE = 30 /* pm_filter: 0 means 30 */ };

/* Owns the query results the summary is built from. */
typedef struct summary {
    pm_ctx *ctx;
    const char *name;           /* the output's name, for messages */
    const pm_districts *ds;
    const pm_cube *cube;
    const pm_topics *topics;
    const pm_filter *f;
    pm_row *rows[PM_LEVEL_TOTAL + 1];
    size_t n[PM_LEVEL_TOTAL + 1];
} summary;

static int nomem(summary *s)
{
    return PM_ERR(s->ctx, PM_E_NOMEM, "%s: out of memory", s->name);
}

/* o[name] = v (stolen); PM_E_NOMEM when v is NULL or the set fails. */
static int set(summary *s, json_t *o, const char *name, json_t *v)
{
    return json_object_set_new(o, name, v) == 0 ? PM_OK : nomem(s);
}

static json_t *period_label_json(pm_period_kind k, int64_t p)
{
    char buf[32];
    pm_period_label(k, p, buf);
    return json_string(buf);
}

/* "2025-03-01T00:00:00Z" (new reference; NULL when t cannot be written). */
static json_t *iso_time_json(int64_t t)
{
    char iso[32];
    struct tm tm;
    time_t tt = (time_t)t;
    if (!gmtime_r(&tt, &tm) || !strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm))
        return NULL;
    return json_string(iso);
}

/* period: kind, first and last label, report time (null for an empty cube). */
static int period_json(summary *s, json_t *root)
{
    const pm_cube_opts *co = pm_cube_options(s->cube);
    int64_t first = 0, last = 0;
    int have = 1;
    if (s->f->has_range)
        first = s->f->period_from, last = s->f->period_to;
    else
        have = pm_cube_period_span(s->cube, &first, &last) != 0;
    int64_t t = s->f->report_time;
    if (!t && have)
        t = pm_period_start(co->period, last + 1, co->utc_offset_s);
    json_t *p = json_object();
    int rc = set(s, root, "period", p);
    if (rc == PM_OK)
        rc = set(s, p, "kind", json_string(pm_period_kind_name(co->period)));
    if (rc == PM_OK)
        rc = set(s, p, "first", have ? period_label_json(co->period, first) : json_null());
    if (rc == PM_OK)
        rc = set(s, p, "last", have ? period_label_json(co->period, last) : json_null());
    if (rc == PM_OK)
        rc = set(s, p, "report_time", t || have ? iso_time_json(t) : json_null());
    return rc;
}

/* A JSON array of the dictionary strings of idx (cube column col). */
static int dict_list(summary *s, json_t *o, const char *name, pm_dict_col dcol, const uint32_t *idx,
                     size_t n)
{
    json_t *a = json_array();
    int rc = set(s, o, name, a);
    for (size_t i = 0; i < n && rc == PM_OK; i++) {
        if (idx[i] >= pm_cube_dict_count(s->cube, dcol))
            return PM_ERR(s->ctx, PM_E_USAGE, "%s: filter %s: unknown index %" PRIu32, s->name, name,
                          idx[i]);
        rc = json_array_append_new(a, json_string(pm_cube_dict_str(s->cube, dcol, idx[i]))) == 0
                 ? PM_OK
                 : nomem(s);
    }
    return rc;
}

static int filter_json(summary *s, json_t *root)
{
    const pm_filter *f = s->f;
    json_t *o = json_object(), *t = json_array();
    int rc = set(s, root, "filter", o);
    if (rc == PM_OK)
        rc = set(s, o, "topics", t);
    else
        json_decref(t);
    for (size_t i = 0; i < f->n_topics && rc == PM_OK; i++) {
        if (f->topics[i] >= pm_topics_count(s->topics))
            return PM_ERR(s->ctx, PM_E_USAGE, "%s: filter topics: unknown index %u", s->name,
                          (unsigned)f->topics[i]);
        rc = json_array_append_new(t, json_string(pm_topic_code(s->topics, f->topics[i]))) == 0
                 ? PM_OK
                 : nomem(s);
    }
    if (rc == PM_OK)
        rc = dict_list(s, o, "sources", PM_DICT_SOURCE, f->sources, f->n_sources);
    if (rc == PM_OK)
        rc = dict_list(s, o, "statuses", PM_DICT_STATUS, f->statuses, f->n_statuses);
    if (rc == PM_OK)
        rc = dict_list(s, o, "executors", PM_DICT_EXECUTOR, f->executors, f->n_executors);
    if (rc == PM_OK)
        rc = set(s, o, "min_count", json_integer((json_int_t)f->min_count));
    if (rc == PM_OK)
        rc = set(s, o, "min_sample", json_integer((json_int_t)(f->min_sample ? f->min_sample : DEFAULT_MIN_SAMPLE)));
    return rc;
}

/* A list of the summary: which rows, in which order, with which fields. */
typedef struct list_spec {
    const char *name;
    pm_level level;
    int (*pick)(const pm_row *r);
    int (*cmp)(const void *a, const void *b);   /* NULL: key order */
    size_t limit;
    size_t n_fields;
    const char *names[6];
    col cols[6];
} list_spec;

static int by_count_desc(const void *a, const void *b)
{
    const pm_row *x = *(const pm_row *const *)a, *y = *(const pm_row *const *)b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return x->key < y->key ? -1 : x->key > y->key;
}

static int by_rank(const void *a, const void *b)
{
    const pm_row *x = *(const pm_row *const *)a, *y = *(const pm_row *const *)b;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    return x->key < y->key ? -1 : x->key > y->key;
}

/* Slowest first: median, then 90th percentile, descending; then key. */
static int by_median_desc(const void *a, const void *b)
{
    const pm_row *x = *(const pm_row *const *)a, *y = *(const pm_row *const *)b;
    if (x->median_h != y->median_h)
        return x->median_h < y->median_h ? 1 : -1;
    if (x->p90_h != y->p90_h)
        return x->p90_h < y->p90_h ? 1 : -1;
    return x->key < y->key ? -1 : x->key > y->key;
}

static int pick_counted(const pm_row *r) { return !r->suppressed && r->count > 0; }
static int pick_rated(const pm_row *r) { return !r->suppressed && r->rank > 0; }
static int pick_timed(const pm_row *r) { return pick_rated(r) && isfinite(r->median_h); }
static int pick_all(const pm_row *r) { (void)r; return 1; }

static const list_spec LISTS[] = {
    {"top_districts_by_count", PM_LEVEL_DISTRICT, pick_counted, by_count_desc, TOP_N, 3,
     {"id", "name", "complaints"}, {C_ID, C_NAME, C_COMPLAINTS}},
    {"top_districts_by_rating", PM_LEVEL_DISTRICT, pick_rated, by_rank, TOP_N, 6,
     {"id", "name", "rating_rank", "rating_index", "complaints", "complaints_per_10k"},
     {C_ID, C_NAME, C_RATING_RANK, C_RATING_INDEX, C_COMPLAINTS, C_PER_10K}},
    {"topics", PM_LEVEL_TOPIC, pick_all, NULL, SIZE_MAX, 3,
     {"code", "name_ru", "complaints"}, {C_TOPIC, C_TOPIC_NAME_RU, C_COMPLAINTS}},
    {"slowest_executors", PM_LEVEL_EXECUTOR, pick_timed, by_median_desc, TOP_N, 5,
     {"executor", "answer_time_median_h", "answer_time_p90_h", "answered", "complaints"},
     {C_EXECUTOR, C_MEDIAN_H, C_P90_H, C_ANSWERED, C_COMPLAINTS}},
};

static int list_json(summary *s, json_t *root, const list_spec *l)
{
    size_t n = s->n[l->level];
    const pm_row **picked = pm_calloc(n ? n : 1, sizeof *picked);
    if (!picked)
        return nomem(s);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (l->pick(&s->rows[l->level][i]))
            picked[k++] = &s->rows[l->level][i];
    if (l->cmp)
        qsort(picked, k, sizeof *picked, l->cmp);
    source src = {l->level, s->ds, s->cube, s->topics};
    json_t *a = json_array();
    int rc = set(s, root, l->name, a);
    for (size_t i = 0; i < k && i < l->limit && rc == PM_OK; i++) {
        json_t *o;
        rc = row_object(s->ctx, s->name, &src, picked[i], l->cols, l->names, l->n_fields, &o);
        if (rc == PM_OK && json_array_append_new(a, o) != 0)
            rc = nomem(s);
    }
    pm_free(picked);
    return rc;
}

static int totals_json(summary *s, json_t *root)
{
    if (s->n[PM_LEVEL_TOTAL] != 1)
        return PM_ERR(s->ctx, PM_E_USAGE, "%s: the total query gave %zu rows", s->name, s->n[PM_LEVEL_TOTAL]);
    source src = {PM_LEVEL_TOTAL, s->ds, s->cube, s->topics};
    col cols[C_N];
    size_t nc = level_columns(PM_LEVEL_TOTAL, cols);
    json_t *o;
    int rc = row_object(s->ctx, s->name, &src, s->rows[PM_LEVEL_TOTAL], cols, NULL, nc, &o);
    return rc == PM_OK ? set(s, root, "totals", o) : rc;
}

static int summary_json(summary *s, json_t *root)
{
    int rc = period_json(s, root);
    if (rc == PM_OK)
        rc = filter_json(s, root);
    if (rc == PM_OK)
        rc = totals_json(s, root);
    for (size_t i = 0; i < sizeof LISTS / sizeof LISTS[0] && rc == PM_OK; i++)
        rc = list_json(s, root, &LISTS[i]);
    return rc;
}

static int summary_dump(summary *s, json_t *root, FILE *f)
{
    if (json_dumpf(root, f, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(15)) != 0)
        return dump_error(s->ctx, s->name, f);
    putc('\n', f);
    return stream_check(s->ctx, s->name, f);
}

int pm_cube_summary_stream(pm_ctx *ctx, FILE *f, const char *name, const pm_districts *ds,
                           const pm_cube *cube, const pm_topics *topics, const pm_filter *flt)
{
    if (!ds || !cube || !topics)
        return PM_ERR(ctx, PM_E_USAGE, "%s: the summary needs the districts, the cube and the topics", name);
    pm_filter none = {0};
    summary s = {ctx, name, ds, cube, topics, flt ? flt : &none, {NULL}, {0}};
    static const pm_level levels[] = {PM_LEVEL_DISTRICT, PM_LEVEL_EXECUTOR, PM_LEVEL_TOPIC, PM_LEVEL_TOTAL};
    int rc = PM_OK;
    for (size_t i = 0; i < sizeof levels / sizeof levels[0] && rc == PM_OK; i++) {
        source src = {levels[i], ds, cube, topics};
        rc = pm_cube_query(ctx, cube, levels[i], s.f, &s.rows[levels[i]], &s.n[levels[i]]);
        if (rc == PM_OK) /* e.g. a catalogue with fewer topics than the cube */
            rc = check_keys(ctx, name, &src, s.rows[levels[i]], s.n[levels[i]]);
    }
    json_t *root = NULL;
    if (rc == PM_OK) {
        root = json_object();
        rc = root ? summary_json(&s, root) : nomem(&s);
    }
    if (rc == PM_OK)
        rc = summary_dump(&s, root, f);
    json_decref(root);
    for (size_t i = 0; i <= PM_LEVEL_TOTAL; i++)
        pm_free(s.rows[i]);
    return rc;
}

int pm_cube_write_summary(pm_ctx *ctx, const char *path, const pm_districts *ds,
                          const pm_cube *cube, const pm_topics *topics, const pm_filter *f)
{
    pm_outfile *of;
    int rc = pm_outfile_open(ctx, path, &of);
    if (rc != PM_OK)
        return rc;
    return outfile_finish(ctx, of, pm_cube_summary_stream(ctx, pm_outfile_stream(of), path, ds, cube,
                                                          topics, f));
}
