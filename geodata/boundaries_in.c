/* boundaries_in.c — district boundaries from GeoJSON (see pm_boundaries.h).
 *
 * The reader walks a jansson tree.  For every feature it maps the
 * properties (id, name, parent, population), builds the GEOS geometry ring
 * by ring (transformed to lon/lat by PROJ when the file is in another CRS),
 * validates and repairs it, and adds it to the district set.  A feature that
 * cannot be used is set aside with a warning; only a broken file, a bad CRS,
 * a GEOS failure or memory is an error.  Then, on request, the topology
 * check (overlapping pairs and gaps, in km² on WGS84), and the regions reader
 * that gives districts their parents from a second file.
 *
 * Indexes in messages are JSON array indexes (0-based): "feature 7" is
 * .features[7], "ring 1" is the first hole, "polygon 2" the third part of a
 * MultiPolygon.
 */
#include "pm_boundaries.h"
#include "json_err.h"
#include "../engine/pm_alloc.h"

#include <geodesic.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { REJECT = -1 };          /* a feature set aside; the reason is in reader.why */
enum { TOP_N = 3 };            /* overlaps and gaps named in the topology warnings */

static const double WGS84_A = 6378137.0, WGS84_F = 1 / 298.257223563;
static const double LONLAT_SLACK_DEG = 1e-7; /* rounding beyond ±180 / ±90 */

static const char *const ID_KEYS[] = {"code", "iso", "fips", "oktmo", "gid", "osm_id", NULL};
static const char *const NAME_KEYS[] = {"name", "name_ru", "NAME", "name_en", "title", NULL};
static const char *const PARENT_KEYS[] = {"region_iso", "parent", "parent_id", "region",
                                          "state_fips", NULL};
static const char *const POP_KEYS[] = {"population", "pop", "POP", "population_total", NULL};

typedef struct reader {
    pm_ctx *ctx;
    GEOSContextHandle_t gh;
    const char *file;              /* the path as shown in messages */
    const pm_boundary_opts *opts;
    PJ *pj;                        /* source CRS to lon/lat; NULL: already lon/lat */
    double *buf;                   /* one ring's coordinates, x y x y ... */
    size_t buf_points;
    char why[256];                 /* reason of the last REJECT */
} reader;

/* A property value as text: strings as they are, integers "%lld", other
 * numbers "%.17g" (so 12.0 is "12").  NULL for anything else or "". */
typedef struct text_value {
    const char *s;
    char num[32];
} text_value;

static const char *value_text(const json_t *v, text_value *out)
{
    out->s = NULL;
    if (json_is_string(v) && json_string_length(v) > 0)
        out->s = json_string_value(v);
    else if (json_is_integer(v)) {
        snprintf(out->num, sizeof out->num, "%lld", (long long)json_integer_value(v));
        out->s = out->num;
    } else if (json_is_real(v)) {
        snprintf(out->num, sizeof out->num, "%.17g", json_real_value(v));
        out->s = out->num;
    }
    return out->s;
}

/* The first key of keys present and not null in props; when field is set,
 * it is the only key tried. */
static json_t *prop_find(json_t *props, const char *field, const char *const *keys)
{
    if (field)
        return json_object_get(props, field);
    for (; *keys; keys++) {
        json_t *v = json_object_get(props, *keys);
        if (v && !json_is_null(v))
            return v;
    }
    return NULL;
}

/* ---------------------------------------------------------------- input */

static int load_json(pm_ctx *ctx, const char *path, const char *file, json_t **root)
{
    json_error_t err;
    *root = strcmp(path, "-") == 0 ? json_loadf(stdin, 0, &err) : json_load_file(path, 0, &err);
    if (*root)
        return PM_OK;
    switch (pm_json_error_status(&err)) {
    case PM_E_NOMEM:
        return PM_ERR(ctx, PM_E_NOMEM, "%s: out of memory reading JSON", file);
    case PM_E_IO:
        return PM_ERR(ctx, PM_E_IO, "%s: %s", file, err.text);
    default:
        return PM_ERR(ctx, PM_E_INPUT, "%s:%d:%d: %s", file, err.line, err.column, err.text);
    }
}

static int features_of(pm_ctx *ctx, const char *file, json_t *root, json_t **features)
{
    const char *type = json_string_value(json_object_get(root, "type"));
    if (!json_is_object(root))
        return PM_ERR(ctx, PM_E_INPUT, "%s: not a GeoJSON FeatureCollection (the top level is "
                      "not an object)", file);
    if (!type || strcmp(type, "FeatureCollection") != 0)
        return PM_ERR(ctx, PM_E_INPUT, "%s: not a GeoJSON FeatureCollection (type \"%s\")", file,
                      type ? type : "(none)");
    *features = json_object_get(root, "features");
    if (!json_is_array(*features))
        return PM_ERR(ctx, PM_E_INPUT, "%s: FeatureCollection without a \"features\" array", file);
    return PM_OK;
}

/* A field named in opts that no feature has is a mistake better said once
 * (PM_E_INPUT_FIELD) than in one warning per feature. */
static int fields_present(pm_ctx *ctx, const char *file, const pm_boundary_opts *o,
                          json_t *features)
{
    const char *field[] = {o->id_field, o->name_field, o->parent_field, o->population_field};
    const char *role[] = {"id", "name", "parent", "population"};
    size_t n = json_array_size(features);
    for (size_t k = 0; k < sizeof field / sizeof *field; k++) {
        if (!field[k] || n == 0)
            continue;
        size_t i = 0;
        while (i < n && !json_object_get(json_object_get(json_array_get(features, i),
                                                         "properties"), field[k]))
            i++;
        if (i == n)
            return PM_ERR(ctx, PM_E_INPUT_FIELD, "%s: no feature has the property \"%s\" "
                          "(the %s field)", file, field[k], role[k]);
    }
    return PM_OK;
}

/* ------------------------------------------------------------------ CRS */

static int crs_error(reader *r, const char *crs, const char *what)
{
    return PM_ERR(r->ctx, PM_E_CRS, "%s: CRS \"%s\": %s (PROJ: %s)", r->file, crs, what,
                  pm_ctx_proj_msg(r->ctx));
}

/* The name in a GeoJSON-2008 "crs" member, or NULL when there is none. */
static int legacy_crs(reader *r, json_t *root, const char **crs)
{
    json_t *m = json_object_get(root, "crs");
    *crs = NULL;
    if (!m || json_is_null(m))
        return PM_OK;
    const char *type = json_string_value(json_object_get(m, "type"));
    const char *name = json_string_value(json_object_get(json_object_get(m, "properties"), "name"));
    if (!type || strcmp(type, "name") != 0 || !name)
        return PM_ERR(r->ctx, PM_E_CRS, "%s: unsupported \"crs\" member (only "
                      "{\"type\": \"name\", \"properties\": {\"name\": ...}} is read)", r->file);
    *crs = name;
    return PM_OK;
}

static int is_lonlat_wgs84(PJ *crs)
{
    const char *auth = proj_get_id_auth_name(crs, 0), *code = proj_get_id_code(crs, 0);
    if (!auth || !code)
        return 0;
    return (strcmp(auth, "EPSG") == 0 && strcmp(code, "4326") == 0) ||
           (strcmp(auth, "OGC") == 0 && strcmp(code, "CRS84") == 0);
}

/* Sets r->pj to the transform from the file's CRS (opts, else the legacy
 * member, else EPSG:4326) to lon/lat; NULL when none is needed. */
static int crs_open(reader *r, json_t *root)
{
    PJ_CONTEXT *pc = pm_ctx_proj(r->ctx);
    const char *crs = r->opts->crs;
    if (!crs) {
        int st = legacy_crs(r, root, &crs);
        if (st || !crs)
            return st;
    }
    PJ *src = proj_create(pc, crs);
    if (!src)
        return crs_error(r, crs, "unknown to PROJ");
    int is_crs = proj_is_crs(src), lonlat = is_crs && is_lonlat_wgs84(src);
    proj_destroy(src);
    if (!is_crs)
        return PM_ERR(r->ctx, PM_E_CRS, "%s: \"%s\" is not a coordinate reference system",
                      r->file, crs);
    if (lonlat)
        return PM_OK;
    PJ *op = proj_create_crs_to_crs(pc, crs, "EPSG:4326", NULL);
    if (!op)
        return crs_error(r, crs, "no transformation to EPSG:4326");
    r->pj = proj_normalize_for_visualization(pc, op);
    proj_destroy(op);
    if (!r->pj)
        return crs_error(r, crs, "cannot normalise the axis order");
    return PM_OK;
}

/* ------------------------------------------------------------- geometry */

static int reject(reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int reject(reader *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof r->why, fmt, ap);
    va_end(ap);
    return REJECT;
}

static void destroy_all(GEOSContextHandle_t gh, GEOSGeometry **g, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (g[i])
            GEOSGeom_destroy_r(gh, g[i]);
}

/* PM_E_GEOM: "FILE: GEOS could not <what>: <GEOS message>" */
static int geos_error(reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int geos_error(reader *r, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return PM_ERR(r->ctx, PM_E_GEOM, "%s: GEOS could not %s: %s", r->file, what,
                  pm_ctx_geos_msg(r->ctx));
}

/* "ring 2" or "polygon 1 ring 2" */
static const char *ring_name(char *buf, size_t size, long part, size_t k)
{
    if (part < 0)
        snprintf(buf, size, "ring %zu", k);
    else
        snprintf(buf, size, "polygon %ld ring %zu", part, k);
    return buf;
}

static int ring_buffer(reader *r, size_t n)
{
    if (n <= r->buf_points)
        return PM_OK;
    double *b = pm_reallocarray(r->buf, n, 2 * sizeof *b);
    if (!b)
        return PM_ERR(r->ctx, PM_E_NOMEM, "%s: out of memory for a ring of %zu points", r->file, n);
    r->buf = b;
    r->buf_points = n;
    return PM_OK;
}

/* Reads the positions of a ring into r->buf (x y pairs); checks its size,
 * numbers and closure. */
static int ring_read(reader *r, json_t *pts, const char *rn, size_t *n_out)
{
    if (!json_is_array(pts))
        return reject(r, "%s is not an array of positions", rn);
    size_t n = json_array_size(pts);
    if (n < 4)
        return reject(r, "%s has %zu points, fewer than 4", rn, n);
    int st = ring_buffer(r, n);
    if (st)
        return st;
    for (size_t j = 0; j < n; j++) {
        json_t *p = json_array_get(pts, j);
        json_t *x = json_array_get(p, 0), *y = json_array_get(p, 1);
        if (!json_is_number(x) || !json_is_number(y) || !isfinite(json_number_value(x)) ||
            !isfinite(json_number_value(y)))
            return reject(r, "%s point %zu is not a position of two numbers", rn, j);
        r->buf[2 * j] = json_number_value(x);
        r->buf[2 * j + 1] = json_number_value(y);
    }
    if (r->buf[0] != r->buf[2 * n - 2] || r->buf[1] != r->buf[2 * n - 1])
        return reject(r, "%s is not closed", rn);
    *n_out = n;
    return PM_OK;
}

/* Transforms r->buf to lon/lat in place (when the file is not lon/lat) and
 * checks that every point is a finite lon/lat. */
static int ring_to_lonlat(reader *r, size_t n, const char *rn)
{
    if (r->pj) {
        size_t stride = 2 * sizeof(double);
        proj_trans_generic(r->pj, PJ_FWD, r->buf, stride, n, r->buf + 1, stride, n, NULL, 0, 0,
                           NULL, 0, 0);
    }
    for (size_t j = 0; j < n; j++) {
        double lon = r->buf[2 * j], lat = r->buf[2 * j + 1];
        if (!isfinite(lon) || !isfinite(lat) || lon == HUGE_VAL || lat == HUGE_VAL)
            return reject(r, "%s point %zu cannot be transformed to lon/lat", rn, j);
        if (fabs(lon) > 180 + LONLAT_SLACK_DEG || fabs(lat) > 90 + LONLAT_SLACK_DEG)
            return reject(r, "%s point %zu (%.9g, %.9g) is not a lon/lat (is the CRS right?)",
                          rn, j, lon, lat);
    }
    return PM_OK;
}

static int ring_from_json(reader *r, json_t *pts, long part, size_t k, GEOSGeometry **out)
{
    char rn[64];
    size_t n = 0;
    ring_name(rn, sizeof rn, part, k);
    int st = ring_read(r, pts, rn, &n);
    if (!st)
        st = ring_to_lonlat(r, n, rn);
    if (st)
        return st;
    GEOSCoordSequence *seq = GEOSCoordSeq_copyFromBuffer_r(r->gh, r->buf, (unsigned)n, 0, 0);
    if (!seq)
        return geos_error(r, "build a ring");
    *out = GEOSGeom_createLinearRing_r(r->gh, seq); /* owns seq, also on failure */
    return *out ? PM_OK : geos_error(r, "build a ring");
}

/* One polygon's rings; *out stays NULL for an empty polygon ([]). */
static int polygon_from_json(reader *r, json_t *rings, long part, GEOSGeometry **out)
{
    *out = NULL;
    if (!json_is_array(rings)) {
        if (part < 0)
            return reject(r, "coordinates are not an array of rings");
        return reject(r, "polygon %ld is not an array of rings", part);
    }
    size_t n = json_array_size(rings);
    if (n == 0)
        return PM_OK;
    GEOSGeometry **lr = pm_calloc(n, sizeof *lr);
    if (!lr)
        return PM_ERR(r->ctx, PM_E_NOMEM, "%s: out of memory", r->file);
    int st = PM_OK;
    for (size_t k = 0; k < n && !st; k++)
        st = ring_from_json(r, json_array_get(rings, k), part, k, &lr[k]);
    if (!st) {
        /* GEOS owns the rings from here, also when it fails */
        *out = GEOSGeom_createPolygon_r(r->gh, lr[0], lr + 1, (unsigned)(n - 1));
        if (!*out)
            st = geos_error(r, "build a polygon");
    } else
        destroy_all(r->gh, lr, n);
    pm_free(lr);
    return st;
}

static int multipolygon_from_json(reader *r, json_t *coords, GEOSGeometry **out)
{
    *out = NULL;
    if (!json_is_array(coords))
        return reject(r, "coordinates are not an array of polygons");
    size_t n = json_array_size(coords), np = 0;
    if (n == 0)
        return PM_OK;
    GEOSGeometry **parts = pm_calloc(n, sizeof *parts);
    if (!parts)
        return PM_ERR(r->ctx, PM_E_NOMEM, "%s: out of memory", r->file);
    int st = PM_OK;
    for (size_t k = 0; k < n && !st; k++) {
        st = polygon_from_json(r, json_array_get(coords, k), (long)k, &parts[np]);
        if (!st && parts[np])
            np++;
    }
    if (!st && np > 0) {
        *out = GEOSGeom_createCollection_r(r->gh, GEOS_MULTIPOLYGON, parts, (unsigned)np);
        if (!*out)
            st = geos_error(r, "build a multipolygon");
    } else
        destroy_all(r->gh, parts, np);
    pm_free(parts);
    return st;
}

static int geometry_from_json(reader *r, json_t *geom, GEOSGeometry **out)
{
    *out = NULL;
    if (!geom || json_is_null(geom))
        return reject(r, "geometry is null");
    const char *type = json_string_value(json_object_get(geom, "type"));
    if (!type)
        return reject(r, "geometry has no type");
    json_t *coords = json_object_get(geom, "coordinates");
    int st;
    if (strcmp(type, "Polygon") == 0)
        st = polygon_from_json(r, coords, -1, out);
    else if (strcmp(type, "MultiPolygon") == 0)
        st = multipolygon_from_json(r, coords, out);
    else
        return reject(r, "geometry type %s is not polygonal", type);
    if (!st && !*out)
        return reject(r, "geometry is empty");
    return st;
}

/* Polygons in g, recursively (counted when dst is NULL, else cloned into dst). */
static int collect_polygons(GEOSContextHandle_t gh, const GEOSGeometry *g, GEOSGeometry **dst,
                            size_t *n)
{
    int type = GEOSGeomTypeId_r(gh, g);
    if (type == GEOS_POLYGON) {
        if (GEOSisEmpty_r(gh, g) != 0)
            return 0;
        if (dst && !(dst[*n] = GEOSGeom_clone_r(gh, g)))
            return -1;
        (*n)++;
        return 0;
    }
    if (type != GEOS_MULTIPOLYGON && type != GEOS_GEOMETRYCOLLECTION)
        return 0;
    int parts = GEOSGetNumGeometries_r(gh, g);
    for (int k = 0; k < parts; k++)
        if (collect_polygons(gh, GEOSGetGeometryN_r(gh, g, k), dst, n) != 0)
            return -1;
    return 0;
}

/* The polygonal part of g (consumed) as a Polygon or MultiPolygon, or
 * *out = NULL when nothing polygonal is left. */
static int polygonal_part(reader *r, GEOSGeometry *g, GEOSGeometry **out)
{
    GEOSContextHandle_t gh = r->gh;
    int type = GEOSGeomTypeId_r(gh, g);
    *out = NULL;
    if (type == GEOS_POLYGON || type == GEOS_MULTIPOLYGON) {
        if (GEOSisEmpty_r(gh, g) == 0)
            *out = g;
        else
            GEOSGeom_destroy_r(gh, g);
        return PM_OK;
    }
    size_t n = 0;
    collect_polygons(gh, g, NULL, &n);
    if (n == 0) {
        GEOSGeom_destroy_r(gh, g);
        return PM_OK;
    }
    GEOSGeometry **polys = pm_calloc(n, sizeof *polys);
    if (!polys) {
        GEOSGeom_destroy_r(gh, g);
        return PM_ERR(r->ctx, PM_E_NOMEM, "%s: out of memory", r->file);
    }
    size_t got = 0;
    int failed = collect_polygons(gh, g, polys, &got);
    GEOSGeom_destroy_r(gh, g);
    int st = PM_OK;
    if (failed) {
        destroy_all(gh, polys, got);
        st = geos_error(r, "copy a polygon");
    } else if (n == 1)
        *out = polys[0];
    else if (!(*out = GEOSGeom_createCollection_r(gh, GEOS_MULTIPOLYGON, polys, (unsigned)n)))
        st = geos_error(r, "build a multipolygon");
    pm_free(polys);
    return st;
}

/* GEOSMakeValid with the "structure" method: shells are unioned and holes
 * subtracted, so a ring that crosses itself keeps the area it encloses (the
 * default "linework" method turns loops and overlapping holes into holes:
 * on Irkutsk raion it opens a 1.8 km² hole no district covers). */
static GEOSGeometry *make_valid(GEOSContextHandle_t gh, const GEOSGeometry *g)
{
    GEOSMakeValidParams *p = GEOSMakeValidParams_create_r(gh);
    if (!p)
        return NULL;
    GEOSGeometry *fixed = NULL;
    if (GEOSMakeValidParams_setMethod_r(gh, p, GEOS_MAKE_VALID_STRUCTURE) &&
        GEOSMakeValidParams_setKeepCollapsed_r(gh, p, 0))
        fixed = GEOSMakeValidWithParams_r(gh, g, p);
    GEOSMakeValidParams_destroy_r(gh, p);
    return fixed;
}

/* Validates *g; an invalid geometry is replaced by its repair (polygonal
 * part of make_valid).  reason gets the GEOS reason when it was invalid. */
static int geometry_validate(reader *r, GEOSGeometry **g, char *reason, size_t size)
{
    reason[0] = '\0';
    char valid = GEOSisValid_r(r->gh, *g);
    if (valid == 1)
        return PM_OK;
    if (valid != 0)
        return reject(r, "GEOS could not validate it: %s", pm_ctx_geos_msg(r->ctx));
    char *why = GEOSisValidReason_r(r->gh, *g);
    snprintf(reason, size, "%s", why ? why : "reason unknown");
    if (why)
        GEOSFree_r(r->gh, why);
    GEOSGeometry *fixed = make_valid(r->gh, *g);
    if (!fixed)
        return reject(r, "invalid (%s) and GEOS could not repair it: %s", reason,
                      pm_ctx_geos_msg(r->ctx));
    GEOSGeometry *poly = NULL;
    int st = polygonal_part(r, fixed, &poly);
    if (st)
        return st;
    if (!poly)
        return reject(r, "invalid (%s), nothing polygonal left after repair", reason);
    if (GEOSisValid_r(r->gh, poly) != 1) {
        GEOSGeom_destroy_r(r->gh, poly);
        return reject(r, "invalid (%s), still invalid after repair", reason);
    }
    GEOSGeom_destroy_r(r->gh, *g);
    *g = poly;
    return PM_OK;
}

/* -------------------------------------------------------------- features */

typedef struct feature {
    size_t index;
    text_value id, name, parent;
    char label[320];      /* feature 7 (id "X", name "Y") */
} feature;

static void feature_label(feature *f)
{
    int n = snprintf(f->label, sizeof f->label, "feature %zu", f->index);
    if (n < 0 || (size_t)n >= sizeof f->label)
        return;
    if (f->id.s && f->name.s)
        snprintf(f->label + n, sizeof f->label - (size_t)n, " (id \"%s\", name \"%s\")", f->id.s,
                 f->name.s);
    else if (f->id.s)
        snprintf(f->label + n, sizeof f->label - (size_t)n, " (id \"%s\")", f->id.s);
    else if (f->name.s)
        snprintf(f->label + n, sizeof f->label - (size_t)n, " (name \"%s\")", f->name.s);
}

static void feature_fields(reader *r, json_t *obj, feature *f)
{
    const pm_boundary_opts *o = r->opts;
    json_t *props = json_object_get(obj, "properties");
    if (o->id_field)
        value_text(json_object_get(props, o->id_field), &f->id);
    else if (!value_text(json_object_get(props, "id"), &f->id) &&
             !value_text(json_object_get(obj, "id"), &f->id))
        value_text(prop_find(props, NULL, ID_KEYS), &f->id);
    value_text(prop_find(props, o->name_field, NAME_KEYS), &f->name);
    value_text(prop_find(props, o->parent_field, PARENT_KEYS), &f->parent);
    feature_label(f);
}

/* Population from a number or a numeric string; NAN when absent, and NAN
 * with a warning when it cannot be used. */
static double feature_population(reader *r, json_t *obj, const feature *f)
{
    json_t *v = prop_find(json_object_get(obj, "properties"), r->opts->population_field, POP_KEYS);
    double pop = NAN;
    if (!v || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0))
        return NAN;
    if (json_is_number(v))
        pop = json_number_value(v);
    else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        pop = strtod(s, &end);
        while (*end == ' ' || *end == '\t')
            end++;
        if (end == s || *end)
            pop = NAN;
    }
    if (!isfinite(pop) || pop < 0) {
        pm_ctx_log(r->ctx, PM_LOG_WARN, "%s: %s: population is not a count — left unknown",
                   r->file, f->label);
        return NAN;
    }
    return pop;
}

static int feature_geometry(reader *r, json_t *obj, const feature *f, GEOSGeometry **g,
                            int *repaired)
{
    char reason[200];
    *repaired = 0;
    int st = geometry_from_json(r, json_object_get(obj, "geometry"), g);
    if (st)
        return st;
    st = geometry_validate(r, g, reason, sizeof reason);
    if (st) {
        GEOSGeom_destroy_r(r->gh, *g);
        *g = NULL;
        return st;
    }
    if (reason[0]) {
        *repaired = 1;
        pm_ctx_log(r->ctx, PM_LOG_WARN, "%s: %s: invalid (%s) — repaired", r->file, f->label,
                   reason);
    }
    return PM_OK;
}

static int read_feature(reader *r, size_t i, json_t *obj, pm_districts *ds,
                        pm_boundary_report *rep)
{
    feature f = {.index = i};
    int st = PM_OK, repaired = 0;
    GEOSGeometry *g = NULL;
    const char *type = json_string_value(json_object_get(obj, "type"));
    feature_fields(r, obj, &f);
    if (!type || strcmp(type, "Feature") != 0)
        st = reject(r, "not a GeoJSON Feature");
    else if (!f.id.s && r->opts->id_field)
        st = reject(r, "no \"%s\" property to use as id", r->opts->id_field);
    else if (!f.id.s)
        st = reject(r, "no id");
    else
        st = feature_geometry(r, obj, &f, &g, &repaired);
    if (st == REJECT) {
        pm_ctx_log(r->ctx, PM_LOG_WARN, "%s: %s: %s — skipped", r->file, f.label, r->why);
        rep->rejected++;
        return PM_OK;
    }
    if (st)
        return st;
    double pop = feature_population(r, obj, &f);
    st = pm_districts_add(r->ctx, ds, f.id.s, f.name.s, f.parent.s, pop, g);
    if (st)
        return st;
    rep->accepted++;
    rep->repaired += (size_t)repaired;
    return PM_OK;
}

/* ----------------------------------------------------------------- area */

/* Area enclosed by one ring, in m² (geodesic edges, either orientation). */
static double ring_area_m2(GEOSContextHandle_t gh, const struct geod_geodesic *gd,
                           const GEOSGeometry *ring, int *ok)
{
    const GEOSCoordSequence *seq = GEOSGeom_getCoordSeq_r(gh, ring);
    unsigned n = 0;
    if (!seq || !GEOSCoordSeq_getSize_r(gh, seq, &n)) {
        *ok = 0;
        return 0;
    }
    struct geod_polygon p;
    geod_polygon_init(&p, 0);
    for (unsigned j = 0; j < n; j++) {
        double x, y;
        if (!GEOSCoordSeq_getXY_r(gh, seq, j, &x, &y)) {
            *ok = 0;
            return 0;
        }
        geod_polygon_addpoint(gd, &p, y, x);
    }
    double area = 0;
    geod_polygon_compute(gd, &p, 0, 1, &area, NULL);
    return fabs(area);
}

/* Area of the polygonal parts of g (exteriors minus holes), in m². */
static double geom_area_m2(GEOSContextHandle_t gh, const struct geod_geodesic *gd,
                           const GEOSGeometry *g, int *ok)
{
    int type = GEOSGeomTypeId_r(gh, g);
    double sum = 0;
    if (type == GEOS_MULTIPOLYGON || type == GEOS_GEOMETRYCOLLECTION) {
        int n = GEOSGetNumGeometries_r(gh, g);
        for (int k = 0; k < n; k++)
            sum += geom_area_m2(gh, gd, GEOSGetGeometryN_r(gh, g, k), ok);
        return sum;
    }
    if (type != GEOS_POLYGON || GEOSisEmpty_r(gh, g) != 0)
        return 0;
    sum = ring_area_m2(gh, gd, GEOSGetExteriorRing_r(gh, g), ok);
    int holes = GEOSGetNumInteriorRings_r(gh, g);
    for (int k = 0; k < holes; k++)
        sum -= ring_area_m2(gh, gd, GEOSGetInteriorRingN_r(gh, g, k), ok);
    return sum;
}

int pm_geom_area_km2(pm_ctx *ctx, const GEOSGeometry *g, double *km2)
{
    struct geod_geodesic gd;
    int ok = 1;
    *km2 = 0;
    if (!g)
        return PM_ERR(ctx, PM_E_USAGE, "no geometry");
    geod_init(&gd, WGS84_A, WGS84_F);
    double m2 = geom_area_m2(pm_ctx_geos(ctx), &gd, g, &ok);
    if (!ok)
        return PM_ERR(ctx, PM_E_GEOM, "GEOS could not read the coordinates: %s",
                      pm_ctx_geos_msg(ctx));
    *km2 = m2 / 1e6;
    return PM_OK;
}

/* ------------------------------------------------------------- topology */

typedef struct top_item {
    double km2;
    size_t a, b;            /* overlap: the two districts */
    double lon, lat;        /* gap: centre of its bounding box */
} top_item;

/* Keeps the n largest items, largest first. */
static void top_add(top_item *top, size_t n, top_item it)
{
    for (size_t k = 0; k < n; k++)
        if (it.km2 > top[k].km2) {
            memmove(top + k + 1, top + k, (n - k - 1) * sizeof *top);
            top[k] = it;
            return;
        }
}

/* "0.031", "7803.2": two significant digits below 10 km², else one decimal. */
static const char *km2_text(char *buf, size_t size, double km2)
{
    snprintf(buf, size, km2 < 10 ? "%.2g" : "%.1f", km2);
    return buf;
}

typedef struct candidates {
    size_t *j, n, cap, self;
    int nomem;
} candidates;

static void candidate_found(void *item, void *user)
{
    candidates *c = user;
    size_t j = *(const size_t *)item;
    if (j <= c->self || c->nomem)
        return;
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        size_t *p = pm_reallocarray(c->j, cap, sizeof *p);
        if (!p) {
            c->nomem = 1;
            return;
        }
        c->j = p;
        c->cap = cap;
    }
    c->j[c->n++] = j;
}

/* Area in km² where districts a and b of ds overlap (0 when they only touch). */
static int overlap_km2(reader *r, const pm_districts *ds, size_t a, size_t b,
                       const GEOSPreparedGeometry *pa, double *km2)
{
    const GEOSGeometry *ga = pm_district_geom_borrow(ds, a), *gb = pm_district_geom_borrow(ds, b);
    *km2 = 0;
    char hit = GEOSPreparedIntersects_r(r->gh, pa, gb);
    char touch = hit == 1 ? GEOSPreparedTouches_r(r->gh, pa, gb) : 0;
    if (hit == 2 || touch == 2)
        return geos_error(r, "compare \"%s\" and \"%s\"", pm_district_id(ds, a),
                          pm_district_id(ds, b));
    if (hit != 1 || touch == 1)
        return PM_OK;
    GEOSGeometry *x = GEOSIntersection_r(r->gh, ga, gb), *poly = NULL;
    if (!x)
        return geos_error(r, "intersect \"%s\" and \"%s\"", pm_district_id(ds, a),
                          pm_district_id(ds, b));
    int st = polygonal_part(r, x, &poly);
    if (st || !poly)
        return st;
    st = pm_geom_area_km2(r->ctx, poly, km2);
    GEOSGeom_destroy_r(r->gh, poly);
    return st;
}

/* Overlapping pairs among the n geometries g (districts first.. of ds), via
 * an STRtree of their envelopes and prepared geometries. */
static int topology_overlaps(reader *r, const pm_districts *ds, size_t first,
                             const GEOSGeometry *const *g, size_t n, pm_boundary_report *rep,
                             top_item *top)
{
    size_t *idx = pm_calloc(n, sizeof *idx);
    GEOSSTRtree *tree = idx ? GEOSSTRtree_create_r(r->gh, 10) : NULL;
    candidates c = {0};
    int st = PM_OK;
    if (!idx)
        return PM_ERR(r->ctx, PM_E_NOMEM, "%s: out of memory", r->file);
    if (!tree) {
        pm_free(idx);
        return geos_error(r, "build an STRtree");
    }
    for (size_t i = 0; i < n; i++) {
        idx[i] = i;
        GEOSSTRtree_insert_r(r->gh, tree, g[i], &idx[i]);
    }
    for (size_t i = 0; i < n && !st; i++) {
        c.n = 0;
        c.self = i;
        GEOSSTRtree_query_r(r->gh, tree, g[i], candidate_found, &c);
        if (c.nomem) {
            st = PM_ERR(r->ctx, PM_E_NOMEM, "%s: out of memory", r->file);
            break;
        }
        const GEOSPreparedGeometry *pi = GEOSPrepare_r(r->gh, g[i]);
        if (!pi) {
            st = geos_error(r, "prepare \"%s\"", pm_district_id(ds, first + i));
            break;
        }
        for (size_t k = 0; k < c.n && !st; k++) {
            double km2 = 0;
            st = overlap_km2(r, ds, first + i, first + c.j[k], pi, &km2);
            if (!st && km2 > 0) {
                rep->overlap_pairs++;
                rep->overlap_km2 += km2;
                top_add(top, TOP_N, (top_item){.km2 = km2, .a = i, .b = c.j[k]});
            }
        }
        GEOSPreparedGeom_destroy_r(r->gh, pi);
    }
    GEOSSTRtree_destroy_r(r->gh, tree);
    pm_free(c.j);
    pm_free(idx);
    return st;
}

/* The union of the n geometries g. */
static int union_of(reader *r, const GEOSGeometry *const *g, size_t n, GEOSGeometry **out)
{
    GEOSGeometry **copies = pm_calloc(n, sizeof *copies);
    *out = NULL;
    if (!copies)
        return PM_ERR(r->ctx, PM_E_NOMEM, "%s: out of memory", r->file);
    for (size_t i = 0; i < n; i++)
        if (!(copies[i] = GEOSGeom_clone_r(r->gh, g[i]))) {
            destroy_all(r->gh, copies, i);
            pm_free(copies);
            return geos_error(r, "copy a district");
        }
    GEOSGeometry *all = GEOSGeom_createCollection_r(r->gh, GEOS_GEOMETRYCOLLECTION, copies,
                                                    (unsigned)n);
    pm_free(copies);
    if (!all)
        return geos_error(r, "collect the districts");
    *out = GEOSUnaryUnion_r(r->gh, all);
    GEOSGeom_destroy_r(r->gh, all);
    return *out ? PM_OK : geos_error(r, "union the districts");
}

/* Every hole of a polygon of the union is a gap. */
static int topology_gaps(reader *r, const GEOSGeometry *const *g, size_t n,
                         pm_boundary_report *rep, top_item *top)
{
    GEOSGeometry *u = NULL;
    int st = union_of(r, g, n, &u);
    if (st)
        return st;
    struct geod_geodesic gd;
    geod_init(&gd, WGS84_A, WGS84_F);
    int ok = 1;
    int single = GEOSGeomTypeId_r(r->gh, u) == GEOS_POLYGON;
    int parts = single ? 1 : GEOSGetNumGeometries_r(r->gh, u);
    for (int p = 0; p < parts; p++) {
        const GEOSGeometry *poly = single ? u : GEOSGetGeometryN_r(r->gh, u, p);
        if (GEOSGeomTypeId_r(r->gh, poly) != GEOS_POLYGON)
            continue;
        int holes = GEOSGetNumInteriorRings_r(r->gh, poly);
        for (int k = 0; k < holes; k++) {
            const GEOSGeometry *ring = GEOSGetInteriorRingN_r(r->gh, poly, k);
            top_item it = {.km2 = ring_area_m2(r->gh, &gd, ring, &ok) / 1e6};
            double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
            GEOSGeom_getExtent_r(r->gh, ring, &x0, &y0, &x1, &y1);
            it.lon = (x0 + x1) / 2;
            it.lat = (y0 + y1) / 2;
            rep->gaps++;
            rep->gap_km2 += it.km2;
            top_add(top, TOP_N, it);
        }
    }
    GEOSGeom_destroy_r(r->gh, u);
    return ok ? PM_OK : geos_error(r, "read a gap");
}

static void topology_log(reader *r, const pm_districts *ds, size_t first,
                         const pm_boundary_report *rep, const top_item *ov, const top_item *gap)
{
    char a[32], b[32];
    if (rep->overlap_pairs == 0 && rep->gaps == 0) {
        pm_ctx_log(r->ctx, PM_LOG_INFO, "%s: no overlapping districts, no gaps", r->file);
        return;
    }
    pm_ctx_log(r->ctx, PM_LOG_WARN, "%s: %zu overlapping pairs (%s km²), %zu gaps (%s km²)",
               r->file, rep->overlap_pairs, km2_text(a, sizeof a, rep->overlap_km2), rep->gaps,
               km2_text(b, sizeof b, rep->gap_km2));
    for (size_t k = 0; k < TOP_N && ov[k].km2 > 0; k++)
        pm_ctx_log(r->ctx, PM_LOG_WARN, "%s: \"%s\" and \"%s\" overlap by %s km²", r->file,
                   pm_district_id(ds, first + ov[k].a), pm_district_id(ds, first + ov[k].b),
                   km2_text(a, sizeof a, ov[k].km2));
    for (size_t k = 0; k < TOP_N && gap[k].km2 > 0; k++)
        pm_ctx_log(r->ctx, PM_LOG_WARN, "%s: gap of %s km² around (%.5f, %.5f)", r->file,
                   km2_text(a, sizeof a, gap[k].km2), gap[k].lon, gap[k].lat);
}

/* Overlaps and gaps among the districts first.. of ds (those of this file). */
static int topology_check(reader *r, const pm_districts *ds, size_t first,
                          pm_boundary_report *rep)
{
    size_t n = pm_districts_count(ds) - first;
    const GEOSGeometry **g = pm_calloc(n, sizeof *g);
    top_item ov[TOP_N] = {{0}}, gap[TOP_N] = {{0}};
    if (!g)
        return PM_ERR(r->ctx, PM_E_NOMEM, "%s: out of memory", r->file);
    for (size_t i = 0; i < n; i++)
        g[i] = pm_district_geom_borrow(ds, first + i);
    int st = topology_overlaps(r, ds, first, g, n, rep, ov);
    if (!st)
        st = topology_gaps(r, g, n, rep, gap);
    pm_free(g);
    if (!st)
        topology_log(r, ds, first, rep, ov, gap);
    return st;
}

/* ------------------------------------------------------------ the reader */

static const char *display_name(const char *path) { return strcmp(path, "-") == 0 ? "stdin" : path; }

int pm_boundaries_read_geojson(pm_ctx *ctx, const char *path, const pm_boundary_opts *opts,
                               pm_districts *ds, pm_boundary_report *rep)
{
    static const pm_boundary_opts defaults;
    pm_boundary_report report = {0};
    json_t *root = NULL, *features = NULL;
    if (!path || !ds)
        return PM_ERR(ctx, PM_E_USAGE, "no path or no district set");
    reader r = {.ctx = ctx, .gh = pm_ctx_geos(ctx), .file = display_name(path),
                .opts = opts ? opts : &defaults};
    size_t first = pm_districts_count(ds);
    int st = load_json(ctx, path, r.file, &root);
    if (!st)
        st = features_of(ctx, r.file, root, &features);
    if (!st)
        st = fields_present(ctx, r.file, r.opts, features);
    if (!st)
        st = crs_open(&r, root);
    if (!st) {
        report.features = json_array_size(features);
        for (size_t i = 0; i < report.features && !st; i++)
            st = read_feature(&r, i, json_array_get(features, i), ds, &report);
    }
    if (!st && report.accepted == 0)
        st = PM_ERR(ctx, PM_E_INPUT_EMPTY, "%s: no usable feature (%zu features, %zu rejected)",
                    r.file, report.features, report.rejected);
    if (!st && r.opts->check_topology)
        st = topology_check(&r, ds, first, &report);
    json_decref(root);
    if (r.pj)
        proj_destroy(r.pj);
    pm_free(r.buf);
    if (rep)
        *rep = report;
    return st;
}

/* -------------------------------------------------------------- regions */

/* The region (index in rs) whose polygon holds pt; the lowest id on ties;
 * -1 when none does. */
static int region_of(pm_ctx *ctx, const pm_districts *rs, const GEOSPreparedGeometry *const *prep,
                     const GEOSGeometry *pt, long *best)
{
    *best = -1;
    for (size_t k = 0; k < pm_districts_count(rs); k++) {
        char in = GEOSPreparedIntersects_r(pm_ctx_geos(ctx), prep[k], pt);
        if (in == 2)
            return PM_ERR(ctx, PM_E_GEOM, "GEOS could not test a point in region \"%s\": %s",
                          pm_district_id(rs, k), pm_ctx_geos_msg(ctx));
        if (in == 1 && (*best < 0 || strcmp(pm_district_id(rs, k),
                                            pm_district_id(rs, (size_t)*best)) < 0))
            *best = (long)k;
    }
    return PM_OK;
}

static int assign_parents(pm_ctx *ctx, const char *file, const pm_districts *rs,
                          const GEOSPreparedGeometry *const *prep, pm_districts *ds)
{
    GEOSContextHandle_t gh = pm_ctx_geos(ctx);
    for (size_t i = 0; i < pm_districts_count(ds); i++) {
        if (pm_district_parent_id(ds, i)[0])
            continue;
        GEOSGeometry *pt = GEOSPointOnSurface_r(gh, pm_district_geom_borrow(ds, i));
        if (!pt)
            return PM_ERR(ctx, PM_E_GEOM, "GEOS could not find a point in district \"%s\": %s",
                          pm_district_id(ds, i), pm_ctx_geos_msg(ctx));
        long best = -1;
        int st = region_of(ctx, rs, prep, pt, &best);
        if (!st && best >= 0)
            st = pm_districts_set_parent(ctx, ds, i, pm_district_id(rs, (size_t)best));
        else if (!st) {
            double x = 0, y = 0;
            GEOSGeomGetX_r(gh, pt, &x);
            GEOSGeomGetY_r(gh, pt, &y);
            const char *name = pm_district_name(ds, i);
            pm_ctx_log(ctx, PM_LOG_WARN, "%s: district \"%s\"%s%s%s is in no region (its point "
                       "(%.5f, %.5f)) — left without a parent", file, pm_district_id(ds, i),
                       name[0] ? " (" : "", name, name[0] ? ")" : "", x, y);
        }
        GEOSGeom_destroy_r(gh, pt);
        if (st)
            return st;
    }
    return PM_OK;
}

static int name_regions(pm_ctx *ctx, const pm_districts *rs, pm_districts *ds)
{
    for (size_t k = 0; k < pm_districts_count(rs); k++) {
        const char *name = pm_district_name(rs, k);
        int st = name[0] ? pm_districts_name_region(ctx, ds, pm_district_id(rs, k), name) : PM_OK;
        if (st)
            return st;
    }
    return PM_OK;
}

int pm_boundaries_read_regions(pm_ctx *ctx, const char *path, const pm_boundary_opts *opts,
                               pm_districts *ds)
{
    pm_boundary_opts ro = {0};
    if (opts)
        ro = *opts;
    ro.check_topology = 0;
    if (!path || !ds)
        return PM_ERR(ctx, PM_E_USAGE, "no path or no district set");
    pm_districts *rs = pm_districts_new(ctx);
    if (!rs)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory");
    const GEOSPreparedGeometry **prep = NULL;
    size_t n = 0;
    int st = pm_boundaries_read_geojson(ctx, path, &ro, rs, NULL);
    if (!st) {
        n = pm_districts_count(rs);
        prep = pm_calloc(n, sizeof *prep);
        if (!prep)
            st = PM_ERR(ctx, PM_E_NOMEM, "%s: out of memory", display_name(path));
    }
    for (size_t k = 0; k < n && !st; k++)
        if (!(prep[k] = GEOSPrepare_r(pm_ctx_geos(ctx), pm_district_geom_borrow(rs, k))))
            st = PM_ERR(ctx, PM_E_GEOM, "%s: GEOS could not prepare region \"%s\": %s",
                        display_name(path), pm_district_id(rs, k), pm_ctx_geos_msg(ctx));
    if (!st)
        st = assign_parents(ctx, display_name(path), rs, prep, ds);
    if (!st)
        st = name_regions(ctx, rs, ds);
    for (size_t k = 0; prep && k < n; k++)
        if (prep[k])
            GEOSPreparedGeom_destroy_r(pm_ctx_geos(ctx), prep[k]);
    pm_free(prep);
    pm_districts_free(ctx, rs);
    return st;
}
