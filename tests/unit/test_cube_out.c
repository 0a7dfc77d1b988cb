/* test_cube_out.c — GeoJSON, CSV and summary writers of the cube
 * (geodata/cube_out.c): hand-made rows over the two districts of
 * tests/fixtures/cube_out/districts.tsv (see its README.md); written files
 * are read back with jansson, GEOS, GDAL's ogrinfo and geojsonhint (the
 * last two skipped when not installed).  Runs from the repository root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../engine/pm_alloc.h"
#include "../../engine/pm_ctx.h"
#include "../../engine/pm_cube.h"
#include "../../engine/pm_district.h"
#include "../../geodata/pm_boundaries.h"
#include "../../geodata/pm_cube_out.h"
#include "../../geodata/pm_topics.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define FIX(name) "tests/fixtures/cube_out/" name
#define GEOJSONHINT "build/npm/node_modules/@mapbox/geojsonhint/bin/geojsonhint"

/* ------------------------------------------------------------- harness */

typedef struct fixture {
    pm_ctx *ctx;
    pm_districts *ds;
    char dir[64];
    char path[128];   /* dir/out */
    pm_cube *cube;    /* for writers called through a write_fn */
    pm_topics *topics;
} fixture;

/* Reads districts.tsv: id, name, parent, population, WKT. */
static int load_districts(pm_ctx *ctx, pm_districts *ds)
{
    GEOSContextHandle_t h = pm_ctx_geos(ctx);
    GEOSWKTReader *rd = GEOSWKTReader_create_r(h);
    FILE *f = fopen(FIX("districts.tsv"), "r");
    if (!f || !rd)
        return -1;
    char line[2048];
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        line[strcspn(line, "\n")] = '\0';
        char *id = strtok(line, "\t"), *name = strtok(NULL, "\t"), *parent = strtok(NULL, "\t");
        char *pop = strtok(NULL, "\t"), *wkt = strtok(NULL, "\t");
        GEOSGeometry *g = wkt ? GEOSWKTReader_read_r(h, rd, wkt) : NULL;
        rc = g ? pm_districts_add(ctx, ds, id, name, parent, strcmp(pop, "-") ? atof(pop) : NAN, g) : -1;
    }
    fclose(f);
    GEOSWKTReader_destroy_r(h, rd);
    if (rc == 0)
        rc = pm_districts_name_region(ctx, ds, "RU-TST", "Тестовая область");
    return rc == 0 ? pm_districts_freeze(ctx, ds) : rc;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->ctx = pm_ctx_new();
    f->ds = pm_districts_new(f->ctx);
    strcpy(f->dir, "/tmp/pm_test_cube_out_XXXXXX");
    if (!f->ds || load_districts(f->ctx, f->ds) != 0 || !mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/out", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    DIR *d = opendir(f->dir);
    char p[400];
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
            unlink(p);
        }
    if (d)
        closedir(d);
    rmdir(f->dir);
    pm_cube_free(f->cube);
    pm_topics_free(f->topics);
    pm_districts_free(f->ctx, f->ds);
    pm_ctx_free(f->ctx);
    free(f);
    return 0;
}

static int files_in_dir(const fixture *f)
{
    DIR *d = opendir(f->dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The whole file (caller frees), NULL if absent; *len its size. */
static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    rewind(fp);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, fp);
    buf[got] = '\0';
    fclose(fp);
    if (len)
        *len = got;
    return buf;
}

/* Two rows: a full one for RU-TST-001 (change_pct NAN), a suppressed one
 * for RU-TST-002 whose figures are set but must not show. */
static void make_rows(pm_row r[2])
{
    memset(r, 0, 2 * sizeof *r);
    r[0] = (pm_row){.key = 0, .count = 120, .answered = 100, .answered_24h = 80, .open = 20,
                    .overdue = 3, .share_24h = 0.8, .median_h = 5.254999, .p90_h = 30.125,
                    .overdue_share = 0.025, .area_km2 = 7856.123456, .population = 12000,
                    .per_km2 = 120 / 7856.123456, .per_10k = 100, .eb_per_10k = 98.765432,
                    .prev_count = 0, .change_abs = 120, .change_pct = NAN, .index = 1.23456789,
                    .rank = 1};
    r[1] = (pm_row){.key = 1, .count = 3, .answered = 2, .answered_24h = 1, .open = 1,
                    .share_24h = 0.5, .median_h = 10, .p90_h = 12, .overdue_share = 0,
                    .area_km2 = 8000.5, .population = NAN, .per_km2 = 3 / 8000.5, .per_10k = NAN,
                    .eb_per_10k = 40, .prev_count = 2, .change_abs = 1, .change_pct = 50,
                    .index = NAN, .rank = 0, .suppressed = 1};
}

/* One region row over both districts. */
static void make_region_row(pm_row *r)
{
    *r = (pm_row){.key = 0, .count = 123, .answered = 102, .area_km2 = 15856.6, .population = 12000,
                  .share_24h = NAN, .median_h = NAN, .p90_h = NAN, .overdue_share = NAN,
                  .per_km2 = NAN, .per_10k = NAN, .eb_per_10k = NAN, .change_abs = NAN,
                  .change_pct = NAN, .index = NAN};
}

static json_t *write_and_load(fixture *f, pm_level level, const pm_row *rows, size_t n,
                              const pm_export_opts *opts)
{
    int rc = pm_cube_write_geojson(f->ctx, f->path, f->ds, NULL, level, rows, n, opts);
    if (rc != PM_OK)
        fail_msg("write: %s", pm_ctx_errmsg(f->ctx));
    json_error_t err;
    json_t *root = json_load_file(f->path, 0, &err);
    if (!root)
        fail_msg("%s:%d: %s", f->path, err.line, err.text);
    return root;
}

static json_t *district_collection(fixture *f, int decimals)
{
    pm_row rows[2];
    make_rows(rows);
    pm_export_opts o = {.decimals = decimals};
    return write_and_load(f, PM_LEVEL_DISTRICT, rows, 2, &o);
}

static json_t *feature(json_t *root, size_t i)
{
    return json_array_get(json_object_get(root, "features"), i);
}

static json_t *prop(json_t *root, size_t i, const char *name)
{
    return json_object_get(json_object_get(feature(root, i), "properties"), name);
}

/* Twice the signed area of a GeoJSON ring (> 0: counter-clockwise). */
static double ring_area2(json_t *ring)
{
    double a = 0;
    for (size_t i = 0; i + 1 < json_array_size(ring); i++) {
        json_t *p = json_array_get(ring, i), *q = json_array_get(ring, i + 1);
        a += json_number_value(json_array_get(p, 0)) * json_number_value(json_array_get(q, 1)) -
             json_number_value(json_array_get(q, 0)) * json_number_value(json_array_get(p, 1));
    }
    return a;
}

/* Checks RFC 7946 winding on every polygon of every feature; returns the
 * number of rings checked. */
static int check_winding(json_t *root)
{
    int rings = 0;
    json_t *ft;
    size_t i;
    json_array_foreach(json_object_get(root, "features"), i, ft) {
        json_t *g = json_object_get(ft, "geometry");
        json_t *coords = json_object_get(g, "coordinates");
        int multi = strcmp(json_string_value(json_object_get(g, "type")), "MultiPolygon") == 0;
        for (size_t p = 0; p < (multi ? json_array_size(coords) : 1); p++) {
            json_t *poly = multi ? json_array_get(coords, p) : coords;
            for (size_t r = 0; r < json_array_size(poly); r++, rings++) {
                double a = ring_area2(json_array_get(poly, r));
                if (r == 0)
                    assert_true(a > 0);
                else
                    assert_true(a < 0);
            }
        }
    }
    return rings;
}

/* Compares a JSON ring with the expected points. */
static void assert_ring(json_t *ring, const double *xy, size_t n)
{
    assert_int_equal(json_array_size(ring), n);
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_array_get(ring, i);
        assert_int_equal(json_array_size(p), 2);
        assert_true(json_number_value(json_array_get(p, 0)) == xy[2 * i]);
        assert_true(json_number_value(json_array_get(p, 1)) == xy[2 * i + 1]);
    }
}

static void assert_bbox(json_t *bbox, double x0, double y0, double x1, double y1)
{
    assert_int_equal(json_array_size(bbox), 4);
    assert_true(json_number_value(json_array_get(bbox, 0)) == x0);
    assert_true(json_number_value(json_array_get(bbox, 1)) == y0);
    assert_true(json_number_value(json_array_get(bbox, 2)) == x1);
    assert_true(json_number_value(json_array_get(bbox, 3)) == y1);
}

/* ------------------------------------------------------------- GeoJSON */

static void geojson_starts_with_type_and_bbox(void **state)
{
    fixture *f = *state;
    json_decref(district_collection(f, 6));
    char *text = slurp(f->path, NULL);
    const char *head = "{\"type\":\"FeatureCollection\",\"bbox\":[30,50,32.7,51],\"features\":[\n"
                       "{\"type\":\"Feature\",\"id\":\"RU-TST-001\",\"bbox\":[30,50,31.002,51],"
                       "\"properties\":{\"answer_time_median_h\":5.25,";
    const char *tail = "]]]]}}\n]}\n"; /* MultiPolygon, geometry, feature, collection */
    assert_memory_equal(text, head, strlen(head));
    assert_string_equal(text + strlen(text) - strlen(tail), tail);
    free(text);
}

static void geojson_features_have_ids_and_types(void **state)
{
    fixture *f = *state;
    json_t *root = district_collection(f, 6);
    assert_string_equal(json_string_value(json_object_get(root, "type")), "FeatureCollection");
    assert_int_equal(json_array_size(json_object_get(root, "features")), 2);
    assert_string_equal(json_string_value(json_object_get(feature(root, 0), "id")), "RU-TST-001");
    assert_string_equal(json_string_value(json_object_get(feature(root, 1), "id")), "RU-TST-002");
    json_t *g0 = json_object_get(feature(root, 0), "geometry");
    json_t *g1 = json_object_get(feature(root, 1), "geometry");
    assert_string_equal(json_string_value(json_object_get(g0, "type")), "Polygon");
    assert_string_equal(json_string_value(json_object_get(g1, "type")), "MultiPolygon");
    assert_int_equal(json_array_size(json_object_get(g0, "coordinates")), 2);   /* exterior + hole */
    assert_int_equal(json_array_size(json_object_get(g1, "coordinates")), 2);   /* two parts */
    json_decref(root);
}

static void geojson_exterior_rings_ccw_and_holes_cw(void **state)
{
    fixture *f = *state;
    json_t *root = district_collection(f, 6);
    assert_int_equal(check_winding(root), 4); /* 001: exterior, hole; 002: two exteriors */
    json_decref(root);
}

static void geojson_rings_are_rounded_deduplicated_and_reoriented(void **state)
{
    fixture *f = *state;
    static const double ext6[] = {30, 50, 31, 50, 31.002, 50.25, 31, 50.5, 30.998, 50.75,
                                  31, 51, 30.123457, 51, 30, 51, 30, 50};
    static const double ext7[] = {30, 50, 31, 50, 31.002, 50.25, 31, 50.5, 30.998, 50.75,
                                  31, 51, 30.1234568, 51, 30, 51, 30, 50.0000002, 30, 50};
    static const double hole[] = {30.4, 50.4, 30.4, 50.6, 30.6, 50.6, 30.6, 50.4, 30.4, 50.4};
    static const double part1[] = {31, 50, 32, 50, 32, 51, 31, 51, 30.998, 50.75, 31, 50.5,
                                   31.002, 50.25, 31, 50};
    json_t *root = district_collection(f, 6);
    json_t *c0 = json_object_get(json_object_get(feature(root, 0), "geometry"), "coordinates");
    assert_ring(json_array_get(c0, 0), ext6, 9);
    assert_ring(json_array_get(c0, 1), hole, 5);
    json_t *c1 = json_object_get(json_object_get(feature(root, 1), "geometry"), "coordinates");
    assert_ring(json_array_get(json_array_get(c1, 0), 0), part1, 8);
    json_decref(root);
    root = district_collection(f, 7);
    c0 = json_object_get(json_object_get(feature(root, 0), "geometry"), "coordinates");
    assert_ring(json_array_get(c0, 0), ext7, 10);
    json_decref(root);
}

static void geojson_bboxes_match_coordinates(void **state)
{
    fixture *f = *state;
    json_t *root = district_collection(f, 6);
    assert_bbox(json_object_get(root, "bbox"), 30, 50, 32.7, 51);
    assert_bbox(json_object_get(feature(root, 0), "bbox"), 30, 50, 31.002, 51);
    assert_bbox(json_object_get(feature(root, 1), "bbox"), 30.998, 50, 32.7, 51);
    json_decref(root);
}

static void geojson_properties_are_sorted_and_rounded(void **state)
{
    fixture *f = *state;
    json_t *root = district_collection(f, 6);
    json_t *p = json_object_get(feature(root, 0), "properties");
    static const char *const names[] = {
        "answer_time_median_h", "answer_time_p90_h", "answered", "answered_within_24h",
        "answered_within_24h_share", "area_km2", "change", "change_pct", "complaints",
        "complaints_per_10k", "complaints_per_10k_smoothed", "complaints_per_km2", "id", "name",
        "open", "overdue", "overdue_share", "population", "previous_complaints", "rating_index",
        "rating_rank", "region_id", "region_name", "suppressed"};
    assert_int_equal(json_object_size(p), 24);
    const char *key;
    json_t *v;
    size_t i = 0;
    json_object_foreach(p, key, v) /* file order, as written */
        assert_string_equal(key, names[i++]);
    assert_string_equal(json_string_value(json_object_get(p, "name")), "Центральный район");
    assert_string_equal(json_string_value(json_object_get(p, "region_id")), "RU-TST");
    assert_string_equal(json_string_value(json_object_get(p, "region_name")), "Тестовая область");
    assert_int_equal(json_integer_value(json_object_get(p, "complaints")), 120);
    assert_int_equal(json_integer_value(json_object_get(p, "answered_within_24h")), 80);
    assert_int_equal(json_integer_value(json_object_get(p, "previous_complaints")), 0);
    assert_int_equal(json_integer_value(json_object_get(p, "change")), 120);
    assert_int_equal(json_integer_value(json_object_get(p, "rating_rank")), 1);
    assert_int_equal(json_integer_value(json_object_get(p, "population")), 12000);
    assert_true(json_real_value(json_object_get(p, "answer_time_median_h")) == 5.25);
    assert_true(json_real_value(json_object_get(p, "answer_time_p90_h")) == 30.13); /* half away */
    assert_true(json_real_value(json_object_get(p, "complaints_per_km2")) == 0.0153);
    assert_true(json_real_value(json_object_get(p, "complaints_per_10k")) == 100);
    assert_true(json_real_value(json_object_get(p, "complaints_per_10k_smoothed")) == 98.77);
    assert_true(json_real_value(json_object_get(p, "answered_within_24h_share")) == 0.8);
    assert_true(json_real_value(json_object_get(p, "overdue_share")) == 0.025);
    assert_true(json_real_value(json_object_get(p, "rating_index")) == 1.2346);
    assert_true(json_real_value(json_object_get(p, "area_km2")) == 7856.123);
    assert_true(json_is_false(json_object_get(p, "suppressed")));
    json_decref(root);
}

static void geojson_nan_is_null(void **state)
{
    fixture *f = *state;
    json_t *root = district_collection(f, 6);
    assert_true(json_is_null(prop(root, 0, "change_pct")));    /* NAN in an unsuppressed row */
    assert_true(json_is_null(prop(root, 1, "population")));    /* unknown population */
    json_decref(root);
    pm_row r;
    make_region_row(&r);
    root = write_and_load(f, PM_LEVEL_REGION, &r, 1, NULL);
    static const char *const nan_props[] = {"answered_within_24h_share", "answer_time_median_h",
                                            "answer_time_p90_h", "overdue_share", "complaints_per_km2",
                                            "complaints_per_10k", "complaints_per_10k_smoothed",
                                            "change", "change_pct", "rating_index", "rating_rank"};
    for (size_t i = 0; i < sizeof nan_props / sizeof nan_props[0]; i++)
        if (!json_is_null(prop(root, 0, nan_props[i])))
            fail_msg("%s is not null", nan_props[i]);
    assert_int_equal(json_integer_value(prop(root, 0, "complaints")), 123);
    json_decref(root);
}

static void geojson_suppressed_row_shows_only_place(void **state)
{
    fixture *f = *state;
    json_t *root = district_collection(f, 6);
    json_t *p = json_object_get(feature(root, 1), "properties");
    const char *key;
    json_t *v;
    int shown = 0;
    json_object_foreach(p, key, v) {
        if (!json_is_null(v))
            shown++;
        if (strcmp(key, "suppressed") && strcmp(key, "id") && strcmp(key, "name") &&
            strcmp(key, "region_id") && strcmp(key, "region_name") && strcmp(key, "area_km2") &&
            !json_is_null(v))
            fail_msg("suppressed row shows %s", key);
    }
    assert_int_equal(shown, 6); /* id, name, region_id, region_name, area_km2, suppressed */
    assert_true(json_is_true(json_object_get(p, "suppressed")));
    assert_true(json_real_value(json_object_get(p, "area_km2")) == 8000.5);
    assert_true(json_is_null(json_object_get(p, "complaints")));
    json_decref(root);
}

static void geojson_second_write_is_byte_identical(void **state)
{
    fixture *f = *state;
    json_decref(district_collection(f, 6));
    size_t n1, n2;
    char *a = slurp(f->path, &n1);
    json_decref(district_collection(f, 6));
    char *b = slurp(f->path, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1);
    free(a);
    free(b);
}

static void geojson_keeps_cyrillic_as_utf8(void **state)
{
    fixture *f = *state;
    json_decref(district_collection(f, 6));
    char *text = slurp(f->path, NULL);
    /* "Заречный" as UTF-8 bytes, not \u escapes */
    assert_non_null(strstr(text, "\"name\":\"\xd0\x97\xd0\xb0\xd1\x80\xd0\xb5\xd1\x87\xd0\xbd\xd1\x8b\xd0\xb9 "));
    assert_null(strstr(text, "\\u"));
    free(text);
}

/* Checks the numbers of text[from, to): no exponent, at most d decimals;
 * returns how many. */
static int check_numbers(const char *from, const char *to, int d)
{
    int n = 0;
    for (const char *s = from; s < to; s++) {
        if (*s != '-' && (*s < '0' || *s > '9'))
            continue;
        size_t len = strspn(s, "-0123456789.eE+");
        const char *dot = memchr(s, '.', len);
        if (memchr(s, 'e', len) || memchr(s, 'E', len))
            fail_msg("exponent in %.*s", (int)len, s);
        if (dot && s + len - dot - 1 > d)
            fail_msg("more than %d decimals: %.*s", d, (int)len, s);
        n++;
        s += len - 1;
    }
    return n;
}

/* Every number of the bbox and coordinates members of a written file. */
static int check_coordinate_text(const char *text, int d)
{
    int n = 0;
    for (const char *s = text; (s = strstr(s, "\"bbox\":[")); s++)
        n += check_numbers(s, strchr(s, ']'), d);
    for (const char *s = text; (s = strstr(s, "\"coordinates\":")); s++)
        n += check_numbers(s, strchr(s, '\n'), d);
    return n;
}

static void geojson_coordinates_have_at_most_d_decimals(void **state)
{
    fixture *f = *state;
    for (int d = 6; d <= 7; d++) {
        json_decref(district_collection(f, d));
        char *text = slurp(f->path, NULL);
        /* 3 bboxes × 4 + (9 or 10 + 5 + 8 + 5) points × 2 */
        assert_int_equal(check_coordinate_text(text, d), 12 + 2 * (d == 6 ? 27 : 28));
        free(text);
    }
}

static void geojson_coordinates_round_trip_within_half_unit(void **state)
{
    fixture *f = *state;
    GEOSContextHandle_t h = pm_ctx_geos(f->ctx);
    for (int d = 6; d <= 7; d++) {
        json_t *root = district_collection(f, d);
        json_t *ring = json_array_get(json_object_get(json_object_get(feature(root, 0), "geometry"),
                                                      "coordinates"), 0);
        const GEOSCoordSequence *in =
            GEOSGeom_getCoordSeq_r(h, GEOSGetExteriorRing_r(h, pm_district_geom_borrow(f->ds, 0)));
        unsigned int n;
        GEOSCoordSeq_getSize_r(h, in, &n);
        size_t j = 0;
        double tol = 0.5 * pow(10, -d) + 1e-12;
        /* Every input point is within tol of its written point, which is
         * the same as the last one's when the input point was dropped as a
         * repeat after rounding. */
        for (unsigned int i = 0; i < n; i++) {
            double x, y;
            GEOSCoordSeq_getXY_r(h, in, i, &x, &y);
            json_t *p = json_array_get(ring, j);
            if (fabs(json_number_value(json_array_get(p, 0)) - x) > tol ||
                fabs(json_number_value(json_array_get(p, 1)) - y) > tol)
                p = json_array_get(ring, ++j);
            assert_true(fabs(json_number_value(json_array_get(p, 0)) - x) <= tol);
            assert_true(fabs(json_number_value(json_array_get(p, 1)) - y) <= tol);
        }
        assert_int_equal(j + 1, json_array_size(ring));
        json_decref(root);
    }
}

static void geojson_region_is_union_of_districts(void **state)
{
    fixture *f = *state;
    pm_row r;
    make_region_row(&r);
    json_t *root = write_and_load(f, PM_LEVEL_REGION, &r, 1, NULL);
    json_t *ft = feature(root, 0);
    assert_string_equal(json_string_value(json_object_get(ft, "id")), "RU-TST");
    assert_string_equal(json_string_value(prop(root, 0, "name")), "Тестовая область");
    assert_null(prop(root, 0, "region_id")); /* no such column at region level */
    json_t *g = json_object_get(ft, "geometry");
    assert_string_equal(json_string_value(json_object_get(g, "type")), "MultiPolygon");
    json_t *c = json_object_get(g, "coordinates");
    assert_int_equal(json_array_size(c), 2);
    /* the big part keeps the hole; GEOS puts the island first */
    assert_int_equal(json_array_size(json_array_get(c, 0)), 1);
    assert_int_equal(json_array_size(json_array_get(c, 1)), 2);
    assert_int_equal(check_winding(root), 3);
    /* area: [30,32]×[50,51] − hole 0.04 + island 0.04 = 2 (planar, degrees²) */
    double a = 0;
    for (size_t p = 0; p < 2; p++)
        for (size_t k = 0; k < json_array_size(json_array_get(c, p)); k++)
            a += ring_area2(json_array_get(json_array_get(c, p), k)) / 2;
    assert_true(fabs(a - 2.0) < 1e-9);
    assert_bbox(json_object_get(ft, "bbox"), 30, 50, 32.7, 51);
    json_decref(root);
}

/* The geometry of feature i of the written file, through GEOS's reader. */
static GEOSGeometry *read_back_geometry(fixture *f, json_t *root, size_t i)
{
    GEOSContextHandle_t h = pm_ctx_geos(f->ctx);
    char *text = json_dumps(json_object_get(feature(root, i), "geometry"), 0);
    GEOSGeoJSONReader *rd = GEOSGeoJSONReader_create_r(h);
    GEOSGeometry *g = GEOSGeoJSONReader_readGeometry_r(h, rd, text);
    GEOSGeoJSONReader_destroy_r(h, rd);
    free(text);
    assert_non_null(g);
    return g;
}

static void geojson_simplified_neighbours_still_touch(void **state)
{
    fixture *f = *state;
    GEOSContextHandle_t h = pm_ctx_geos(f->ctx);
    pm_row rows[2];
    make_rows(rows);
    pm_export_opts o = {.simplify_m = 1000};
    json_t *root = write_and_load(f, PM_LEVEL_DISTRICT, rows, 2, &o);
    GEOSGeometry *a = read_back_geometry(f, root, 0), *b = read_back_geometry(f, root, 1);
    assert_int_equal(GEOSisValid_r(h, a), 1);
    assert_int_equal(GEOSisValid_r(h, b), 1);
    assert_int_equal(GEOSIntersects_r(h, a, b), 1);
    /* the wiggles are gone: fewer points than the 10 + 5 and 8 + 5 of the input */
    assert_true(GEOSGetNumCoordinates_r(h, a) < 15);
    assert_true(GEOSGetNumCoordinates_r(h, b) < 13);
    assert_int_equal(GEOSGetNumInteriorRings_r(h, a), 1); /* the hole is kept */
    assert_int_equal(check_winding(root), 4);
    assert_bbox(json_object_get(feature(root, 0), "bbox"), 30, 50, 31, 51);
    GEOSGeom_destroy_r(h, a);
    GEOSGeom_destroy_r(h, b);
    json_decref(root);
}

/* Runs cmd, captures its output; returns its exit status. */
static int run(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int have_ogrinfo(void)
{
    if (system("command -v ogrinfo >/dev/null 2>&1") == 0)
        return 1;
    print_message("ogrinfo not installed: GDAL check skipped\n");
    return 0;
}

static int have_geojsonhint(void)
{
    if (access(GEOJSONHINT, R_OK) == 0 && system("command -v node >/dev/null 2>&1") == 0)
        return 1;
    print_message("geojsonhint not installed (npm install --prefix build/npm "
                  "@mapbox/geojsonhint@2.0.1): check skipped\n");
    return 0;
}

/* ogrinfo's summary of path in out; fails the test unless it exits 0,
 * reports features features and no error or warning. */
static void assert_ogrinfo_reads(const char *path, size_t features, char *out, size_t cap)
{
    char cmd[300], count[64];
    snprintf(cmd, sizeof cmd, "ogrinfo -ro -al -so %s 2>&1", path);
    snprintf(count, sizeof count, "Feature Count: %zu\n", features);
    int st = run(cmd, out, cap);
    if (st != 0 || !strstr(out, count) || strstr(out, "ERROR") || strstr(out, "Warning"))
        fail_msg("ogrinfo (status %d) says:\n%s", st, out);
}

static void assert_geojsonhint_clean(const char *path)
{
    char cmd[400], out[8192];
    snprintf(cmd, sizeof cmd, "node " GEOJSONHINT " %s 2>&1", path);
    int st = run(cmd, out, sizeof out);
    if (st != 0 || out[0])
        fail_msg("geojsonhint (status %d): %s", st, out);
}

static void geojson_passes_ogrinfo(void **state)
{
    fixture *f = *state;
    if (!have_ogrinfo())
        skip();
    json_decref(district_collection(f, 6));
    char out[8192];
    assert_ogrinfo_reads(f->path, 2, out, sizeof out);
    if (!strstr(out, "Extent: (30.000000, 50.000000) - (32.700000, 51.000000)") ||
        !strstr(out, "complaints: Integer") || !strstr(out, "complaints_per_10k: Real") ||
        !strstr(out, "suppressed: Integer(Boolean)"))
        fail_msg("ogrinfo says:\n%s", out);
}

static void geojson_passes_geojsonhint(void **state)
{
    fixture *f = *state;
    if (!have_geojsonhint())
        skip();
    pm_row r;
    make_region_row(&r);
    json_decref(district_collection(f, 7));
    assert_geojsonhint_clean(f->path);
    json_decref(write_and_load(f, PM_LEVEL_REGION, &r, 1, NULL));
    assert_geojsonhint_clean(f->path);
}

/* Real OSM districts (enclaves, detailed borders): every writer option
 * gives a file that GDAL and geojsonhint accept, with RFC 7946 winding. */
static void real_districts_give_valid_geojson(void **state)
{
    fixture *f = *state;
    const char *src = "../shared/data/ru_kemerovo_districts_osm.geojson";
    if (access(src, R_OK) != 0) {
        print_message("%s absent: real-data check skipped\n", src);
        skip();
    }
    pm_districts *ds = pm_districts_new(f->ctx);
    assert_int_equal(pm_boundaries_read_geojson(f->ctx, src, NULL, ds, NULL), PM_OK);
    assert_int_equal(pm_districts_freeze(f->ctx, ds), PM_OK);
    size_t n = pm_districts_count(ds);
    pm_row *rows = calloc(n, sizeof *rows);
    for (size_t i = 0; i < n; i++)
        rows[i] = (pm_row){.key = i, .count = i, .area_km2 = NAN, .population = NAN, .index = NAN};
    static const pm_export_opts variants[] = {{.decimals = 7}, {.simplify_m = 200}};
    for (size_t v = 0; v < 2; v++) {
        assert_int_equal(pm_cube_write_geojson(f->ctx, f->path, ds, NULL, PM_LEVEL_DISTRICT, rows, n,
                                               &variants[v]), PM_OK);
        json_t *root = json_load_file(f->path, 0, NULL);
        assert_non_null(root);
        assert_int_equal(json_array_size(json_object_get(root, "features")), n);
        assert_true(check_winding(root) >= (int)n);
        json_decref(root);
        char out[8192];
        if (have_ogrinfo())
            assert_ogrinfo_reads(f->path, n, out, sizeof out);
        if (have_geojsonhint())
            assert_geojsonhint_clean(f->path);
    }
    assert_int_equal(pm_regions_count(ds), 1);
    pm_row region = {.key = 0, .area_km2 = NAN, .population = NAN};
    assert_int_equal(pm_cube_write_geojson(f->ctx, f->path, ds, NULL, PM_LEVEL_REGION, &region, 1, NULL),
                     PM_OK);
    json_t *root = json_load_file(f->path, 0, NULL);
    assert_true(check_winding(root) >= 1);
    json_decref(root);
    if (have_geojsonhint())
        assert_geojsonhint_clean(f->path);
    free(rows);
    pm_districts_free(f->ctx, ds);
}

static void geojson_rejects_bad_arguments(void **state)
{
    fixture *f = *state;
    pm_row rows[2];
    make_rows(rows);
    pm_export_opts five = {.decimals = 5}, neg = {.simplify_m = -1};
    assert_int_equal(pm_cube_write_geojson(f->ctx, f->path, f->ds, NULL, PM_LEVEL_TOPIC, rows, 2, NULL),
                     PM_E_USAGE);
    assert_int_equal(pm_cube_write_geojson(f->ctx, f->path, f->ds, NULL, PM_LEVEL_DISTRICT, rows, 2, &five),
                     PM_E_USAGE);
    assert_non_null(strstr(pm_ctx_errmsg(f->ctx), "6 or 7"));
    assert_int_equal(pm_cube_write_geojson(f->ctx, f->path, f->ds, NULL, PM_LEVEL_DISTRICT, rows, 2, &neg),
                     PM_E_USAGE);
    assert_int_equal(pm_cube_write_geojson(f->ctx, f->path, NULL, NULL, PM_LEVEL_DISTRICT, rows, 2, NULL),
                     PM_E_USAGE);
    rows[1].key = 2;
    assert_int_equal(pm_cube_write_geojson(f->ctx, f->path, f->ds, NULL, PM_LEVEL_DISTRICT, rows, 2, NULL),
                     PM_E_USAGE);
    assert_non_null(strstr(pm_ctx_errmsg(f->ctx), "row 1: key 2 out of range"));
    rows[1].key = 1;
    assert_int_equal(pm_cube_write_geojson(f->ctx, f->path, f->ds, NULL, PM_LEVEL_REGION, rows, 2, NULL),
                     PM_E_USAGE); /* one region only */
    assert_int_equal(files_in_dir(f), 0);
}

static void geojson_without_rows_is_an_empty_collection(void **state)
{
    fixture *f = *state;
    assert_int_equal(pm_cube_write_geojson(f->ctx, f->path, f->ds, NULL, PM_LEVEL_DISTRICT, NULL, 0, NULL),
                     PM_OK);
    char *text = slurp(f->path, NULL);
    assert_string_equal(text, "{\"type\":\"FeatureCollection\",\"features\":[\n]}\n");
    free(text);
}

/* ----------------------------------------------------------------- CSV */

static const char *CSV_HEADER =
    "id,name,region_id,region_name,complaints,complaints_per_km2,complaints_per_10k,"
    "complaints_per_10k_smoothed,answered,answered_within_24h,answered_within_24h_share,"
    "answer_time_median_h,answer_time_p90_h,open,overdue,overdue_share,previous_complaints,"
    "change,change_pct,rating_index,rating_rank,area_km2,population,suppressed\n";

static void csv_district_rows_read_back(void **state)
{
    fixture *f = *state;
    pm_row rows[2];
    make_rows(rows);
    assert_int_equal(pm_cube_write_csv(f->ctx, f->path, f->ds, NULL, NULL, PM_LEVEL_DISTRICT, rows, 2, NULL),
                     PM_OK);
    char *text = slurp(f->path, NULL);
    char expected[2048];
    snprintf(expected, sizeof expected, "%s%s", CSV_HEADER,
             "RU-TST-001,Центральный район,RU-TST,Тестовая область,120,0.0153,100,98.77,100,80,0.8,"
             "5.25,30.13,20,3,0.025,0,120,,1.2346,1,7856.123,12000,false\n"
             "RU-TST-002,Заречный район,RU-TST,Тестовая область,,,,,,,,,,,,,,,,,,8000.5,,true\n");
    assert_string_equal(text, expected);
    free(text);
}

static void csv_bom_semicolon_and_decimal_comma(void **state)
{
    fixture *f = *state;
    pm_row rows[2];
    make_rows(rows);
    pm_export_opts o = {.csv_bom = 1, .csv_delim = ';'};
    assert_int_equal(pm_cube_write_csv(f->ctx, f->path, f->ds, NULL, NULL, PM_LEVEL_DISTRICT, rows, 1, &o),
                     PM_OK);
    size_t len;
    char *text = slurp(f->path, &len);
    assert_memory_equal(text, "\xEF\xBB\xBF", 3);
    char *line2 = strchr(text, '\n') + 1;
    assert_memory_equal(text + 3, "id;name;region_id;", 18);
    assert_string_equal(line2, "RU-TST-001;Центральный район;RU-TST;Тестовая область;120;0,0153;100;98,77;"
                               "100;80;0,8;5,25;30,13;20;3;0,025;0;120;;1,2346;1;7856,123;12000;false\n");
    free(text);
    o.csv_delim = '\t';
    assert_int_equal(pm_cube_write_csv(f->ctx, f->path, f->ds, NULL, NULL, PM_LEVEL_DISTRICT, rows, 1, &o),
                     PM_E_USAGE);
}

static void csv_total_level_has_figures_only(void **state)
{
    fixture *f = *state;
    pm_row r;
    make_region_row(&r);
    r.change_pct = -0.001; /* rounds to 0: written "0", never "-0" */
    assert_int_equal(pm_cube_write_csv(f->ctx, f->path, NULL, NULL, NULL, PM_LEVEL_TOTAL, &r, 1, NULL), PM_OK);
    char *text = slurp(f->path, NULL);
    assert_string_equal(text, "complaints,complaints_per_km2,complaints_per_10k,complaints_per_10k_smoothed,"
                              "answered,answered_within_24h,answered_within_24h_share,answer_time_median_h,"
                              "answer_time_p90_h,open,overdue,overdue_share,previous_complaints,change,"
                              "change_pct,rating_index,rating_rank,area_km2,population,suppressed\n"
                              "123,,,,102,0,,,,0,0,,0,,0,,,15856.6,12000,false\n");
    free(text);
}

static void csv_topic_level_uses_catalogue(void **state)
{
    fixture *f = *state;
    pm_topics *t;
    assert_int_equal(pm_topics_load(f->ctx, "data/topics.json", &t), PM_OK);
    pm_row r[2] = {{.key = 0, .count = 7, .per_10k = 5.8333333, .share_24h = NAN, .median_h = NAN,
                    .p90_h = NAN, .overdue_share = 0, .area_km2 = 100, .population = NAN, .per_km2 = 0.07,
                    .eb_per_10k = NAN, .change_abs = NAN, .change_pct = NAN, .index = NAN},
                   {.key = 1, .count = 2, .suppressed = 1, .area_km2 = 100, .population = NAN}};
    assert_int_equal(pm_cube_write_csv(f->ctx, f->path, NULL, NULL, t, PM_LEVEL_TOPIC, r, 2, NULL), PM_OK);
    char *text = slurp(f->path, NULL);
    char expected[1024];
    snprintf(expected, sizeof expected,
             "topic,topic_name_ru,complaints,complaints_per_km2,complaints_per_10k,"
             "complaints_per_10k_smoothed,answered,answered_within_24h,answered_within_24h_share,"
             "answer_time_median_h,answer_time_p90_h,open,overdue,overdue_share,previous_complaints,"
             "change,change_pct,rating_index,rating_rank,suppressed\n"
             "%s,%s,7,0.07,5.83,,0,0,,,,0,0,0,0,,,,,false\n"
             "%s,%s,,,,,,,,,,,,,,,,,,true\n",
             pm_topic_code(t, 0), pm_topic_name_ru(t, 0), pm_topic_code(t, 1), pm_topic_name_ru(t, 1));
    assert_string_equal(text, expected);
    free(text);
    assert_int_equal(pm_cube_write_csv(f->ctx, f->path, NULL, NULL, NULL, PM_LEVEL_TOPIC, r, 2, NULL),
                     PM_E_USAGE);
    assert_non_null(strstr(pm_ctx_errmsg(f->ctx), "needs the topics"));
    pm_topics_free(t);
}

static void csv_executor_level_needs_cube(void **state)
{
    fixture *f = *state;
    pm_row r = {.key = 0, .count = 1};
    assert_int_equal(pm_cube_write_csv(f->ctx, f->path, f->ds, NULL, NULL, PM_LEVEL_EXECUTOR, &r, 1, NULL),
                     PM_E_USAGE);
    assert_non_null(strstr(pm_ctx_errmsg(f->ctx), "needs the cube"));
    assert_int_equal(files_in_dir(f), 0);
}

/* ----------------------------------------------------- through the cube */

enum { T0_MARCH = 1741564800, T0_FEBRUARY = 1739145600 }; /* 2025-03-10, 2025-02-10 00:00 UTC */

/* A monthly cube at UTC+7 over the fixture districts: RU-TST-001 has 40
 * complaints in March 2025 (topic 0, executor "ЖЭУ № 1"; 35 answered after
 * 1.5 … 35.5 h, 5 open since March 10) and 10 in February; RU-TST-002
 * has 3 in March (topic 1, executor "Водоканал", answered after 2 h). */
static void build_cube(fixture *f, pm_topics **topics, pm_cube **cube)
{
    assert_int_equal(pm_topics_load(f->ctx, "data/topics.json", topics), PM_OK);
    pm_cube_opts co = {.period = PM_PERIOD_MONTH, .utc_offset_s = 7 * 3600};
    assert_int_equal(pm_cube_new(f->ctx, f->ds, pm_topics_count(*topics), &co, cube), PM_OK);
    pm_complaints *cs = pm_complaints_new();
    enum { N = 53 };
    int32_t district[N];
    uint8_t placement[N];
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof id, "c%d", i);
        pm_complaint c = {.id = id, .lon = NAN, .lat = NAN, .answered_at = PM_TIME_NONE,
                          .source = "portal", .line = (uint64_t)i + 2};
        if (i < 40) {
            c.created_at = T0_MARCH;
            c.executor = "ЖЭУ № 1";
            if (i < 35)
                c.answered_at = T0_MARCH + 3600 * (i + 1) + 1800;
        } else if (i < 50) {
            c.created_at = T0_FEBRUARY;
            c.answered_at = T0_FEBRUARY + 3600;
            c.executor = "ЖЭУ № 1";
        } else {
            c.created_at = T0_MARCH;
            c.answered_at = T0_MARCH + 7200;
            c.topic = 1;
            c.executor = "Водоканал";
        }
        assert_int_equal(pm_complaints_add(f->ctx, cs, &c), PM_OK);
        district[i] = i < 50 ? 0 : 1;
        placement[i] = PM_PLACE_INSIDE;
    }
    pm_placed pl = {.n = N, .district = district, .placement = placement,
                    .counts = {[PM_PLACE_INSIDE] = N}};
    uint64_t added;
    assert_int_equal(pm_cube_add(f->ctx, *cube, cs, &pl, NULL, NULL, &added), PM_OK);
    assert_int_equal(added, N);
    pm_complaints_free(cs);
}

/* March 2025, at least 5 complaints to show a row. */
static pm_filter march_filter(void)
{
    int64_t march = 2025 * 12 + 2;
    return (pm_filter){.has_range = 1, .period_from = march, .period_to = march, .min_count = 5};
}

static void geojson_from_cube_query(void **state)
{
    fixture *f = *state;
    pm_topics *t;
    pm_cube *cube;
    build_cube(f, &t, &cube);
    pm_filter flt = march_filter();
    pm_row *rows;
    size_t n;
    assert_int_equal(pm_cube_query(f->ctx, cube, PM_LEVEL_DISTRICT, &flt, &rows, &n), PM_OK);
    assert_int_equal(n, 2);
    assert_int_equal(pm_cube_write_geojson(f->ctx, f->path, f->ds, cube, PM_LEVEL_DISTRICT, rows, n, NULL),
                     PM_OK);
    json_t *root = json_load_file(f->path, 0, NULL);
    assert_non_null(root);
    assert_int_equal(json_integer_value(prop(root, 0, "complaints")), 40);
    assert_int_equal(json_integer_value(prop(root, 0, "previous_complaints")), 10);
    assert_int_equal(json_integer_value(prop(root, 0, "change")), 30);
    assert_true(json_real_value(prop(root, 0, "change_pct")) == 300);
    assert_int_equal(json_integer_value(prop(root, 0, "answered_within_24h")), 23);
    assert_true(json_real_value(prop(root, 0, "answer_time_median_h")) == 18.5);
    assert_true(json_real_value(prop(root, 0, "answer_time_p90_h")) == 32.5);
    assert_int_equal(json_integer_value(prop(root, 0, "overdue")), 5);
    assert_true(json_real_value(prop(root, 0, "overdue_share")) == 0.125);
    assert_true(json_real_value(prop(root, 0, "complaints_per_10k")) == 33.33);
    assert_true(fabs(json_real_value(prop(root, 0, "area_km2")) - pm_cube_district_area_km2(cube, 0)) <= 0.0005);
    assert_true(json_is_true(prop(root, 1, "suppressed")));
    assert_true(json_is_null(prop(root, 1, "complaints")));
    json_decref(root);
    pm_free(rows);
    pm_cube_free(cube);
    pm_topics_free(t);
}

static void csv_executor_level_through_cube(void **state)
{
    fixture *f = *state;
    pm_topics *t;
    pm_cube *cube;
    build_cube(f, &t, &cube);
    pm_filter flt = march_filter();
    flt.min_count = 0;
    pm_row *rows;
    size_t n;
    assert_int_equal(pm_cube_query(f->ctx, cube, PM_LEVEL_EXECUTOR, &flt, &rows, &n), PM_OK);
    assert_int_equal(n, 2);
    pm_export_opts o = {.csv_delim = ';'};
    assert_int_equal(pm_cube_write_csv(f->ctx, f->path, NULL, cube, NULL, PM_LEVEL_EXECUTOR, rows, n, &o),
                     PM_OK);
    char *text = slurp(f->path, NULL);
    assert_memory_equal(text, "executor;complaints;", 20);
    assert_null(strstr(text, "area_km2"));
    assert_non_null(strstr(text, "\nВодоканал;3;;;;3;3;1;2;2;0;0;0;0;3;;;;false\n"));
    assert_non_null(strstr(text, "\nЖЭУ № 1;40;;;;35;23;0,6571;18,5;32,5;5;5;0,125;10;30;300;"));
    free(text);
    pm_free(rows);
    pm_cube_free(cube);
    pm_topics_free(t);
}

static json_t *write_summary(fixture *f, const pm_cube *cube, const pm_topics *t, const pm_filter *flt)
{
    int rc = pm_cube_write_summary(f->ctx, f->path, f->ds, cube, t, flt);
    if (rc != PM_OK)
        fail_msg("summary: %s", pm_ctx_errmsg(f->ctx));
    json_t *root = json_load_file(f->path, 0, NULL);
    assert_non_null(root);
    return root;
}

static void summary_has_period_filter_and_totals(void **state)
{
    fixture *f = *state;
    pm_topics *t;
    pm_cube *cube;
    build_cube(f, &t, &cube);
    pm_filter flt = march_filter();
    uint16_t topic0 = 0;
    flt.topics = &topic0, flt.n_topics = 1;
    json_t *root = write_summary(f, cube, t, &flt);
    json_t *p = json_object_get(root, "period");
    assert_string_equal(json_string_value(json_object_get(p, "kind")), "month");
    assert_string_equal(json_string_value(json_object_get(p, "first")), "2025-03");
    assert_string_equal(json_string_value(json_object_get(p, "last")), "2025-03");
    /* the end of March at UTC+7 */
    assert_string_equal(json_string_value(json_object_get(p, "report_time")), "2025-03-31T17:00:00Z");
    json_t *fl = json_object_get(root, "filter");
    assert_string_equal(json_string_value(json_array_get(json_object_get(fl, "topics"), 0)), pm_topic_code(t, 0));
    assert_int_equal(json_array_size(json_object_get(fl, "executors")), 0);
    assert_int_equal(json_integer_value(json_object_get(fl, "min_count")), 5);
    assert_int_equal(json_integer_value(json_object_get(fl, "min_sample")), 30);
    json_t *tot = json_object_get(root, "totals");
    assert_int_equal(json_integer_value(json_object_get(tot, "complaints")), 40); /* topic 0 only */
    assert_int_equal(json_integer_value(json_object_get(tot, "population")), 12000);
    assert_true(json_is_false(json_object_get(tot, "suppressed")));
    json_decref(root);
    pm_cube_free(cube);
    pm_topics_free(t);
}

static void summary_lists_top_districts_topics_and_executors(void **state)
{
    fixture *f = *state;
    pm_topics *t;
    pm_cube *cube;
    build_cube(f, &t, &cube);
    pm_filter flt = march_filter();
    json_t *root = write_summary(f, cube, t, &flt);
    json_t *top = json_object_get(root, "top_districts_by_count");
    assert_int_equal(json_array_size(top), 1); /* RU-TST-002 is suppressed */
    json_t *e = json_array_get(top, 0);
    assert_string_equal(json_string_value(json_object_get(e, "id")), "RU-TST-001");
    assert_string_equal(json_string_value(json_object_get(e, "name")), "Центральный район");
    assert_int_equal(json_integer_value(json_object_get(e, "complaints")), 40);
    json_t *rated = json_object_get(root, "top_districts_by_rating");
    assert_int_equal(json_array_size(rated), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rated, 0), "rating_rank")), 1);
    json_t *topics = json_object_get(root, "topics");
    assert_int_equal(json_array_size(topics), pm_topics_count(t));
    assert_string_equal(json_string_value(json_object_get(json_array_get(topics, 1), "code")), pm_topic_code(t, 1));
    assert_string_equal(json_string_value(json_object_get(json_array_get(topics, 0), "name_ru")),
                        pm_topic_name_ru(t, 0));
    assert_int_equal(json_integer_value(json_object_get(json_array_get(topics, 0), "complaints")), 40);
    assert_true(json_is_null(json_object_get(json_array_get(topics, 1), "complaints"))); /* 3 < 5 */
    json_t *slow = json_object_get(root, "slowest_executors");
    assert_int_equal(json_array_size(slow), 1); /* Водоканал has 3 < 30 complaints: not rated */
    assert_string_equal(json_string_value(json_object_get(json_array_get(slow, 0), "executor")), "ЖЭУ № 1");
    assert_true(json_real_value(json_object_get(json_array_get(slow, 0), "answer_time_median_h")) == 18.5);
    json_decref(root);
    pm_cube_free(cube);
    pm_topics_free(t);
}

static void summary_is_sorted_indented_and_stable(void **state)
{
    fixture *f = *state;
    pm_topics *t;
    pm_cube *cube;
    build_cube(f, &t, &cube);
    json_decref(write_summary(f, cube, t, NULL));
    size_t n1, n2;
    char *a = slurp(f->path, &n1);
    assert_memory_equal(a, "{\n  \"filter\": {\n    \"executors\": [],\n", 37);
    assert_non_null(strstr(a, "\"first\": \"2025-02\""));   /* no range: the whole cube */
    assert_non_null(strstr(a, "\"slowest_executors\": ["));
    assert_int_equal(a[n1 - 1], '\n');
    json_decref(write_summary(f, cube, t, NULL));
    char *b = slurp(f->path, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1);
    free(a);
    free(b);
    pm_cube_free(cube);
    pm_topics_free(t);
}

static void summary_of_empty_cube_has_null_period(void **state)
{
    fixture *f = *state;
    pm_topics *t;
    pm_cube *cube;
    assert_int_equal(pm_topics_load(f->ctx, "data/topics.json", &t), PM_OK);
    pm_cube_opts co = {.period = PM_PERIOD_WEEK};
    assert_int_equal(pm_cube_new(f->ctx, f->ds, pm_topics_count(t), &co, &cube), PM_OK);
    json_t *root = write_summary(f, cube, t, NULL);
    json_t *p = json_object_get(root, "period");
    assert_string_equal(json_string_value(json_object_get(p, "kind")), "week");
    assert_true(json_is_null(json_object_get(p, "first")));
    assert_true(json_is_null(json_object_get(p, "report_time")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(root, "totals"), "complaints")), 0);
    assert_int_equal(json_array_size(json_object_get(root, "top_districts_by_count")), 0);
    json_decref(root);
    assert_int_equal(pm_cube_write_summary(f->ctx, f->path, NULL, cube, t, NULL), PM_E_USAGE);
    pm_cube_free(cube);
    pm_topics_free(t);
}

/* -------------------------------------------------- allocation failures */

typedef int (*write_fn)(fixture *f);

static int write_districts_simplified(fixture *f)
{
    pm_row rows[2];
    make_rows(rows);
    pm_export_opts o = {.simplify_m = 1000, .decimals = 7};
    return pm_cube_write_geojson(f->ctx, f->path, f->ds, NULL, PM_LEVEL_DISTRICT, rows, 2, &o);
}

static int write_region(fixture *f)
{
    pm_row r;
    make_region_row(&r);
    return pm_cube_write_geojson(f->ctx, f->path, f->ds, NULL, PM_LEVEL_REGION, &r, 1, NULL);
}

static int write_csv(fixture *f)
{
    pm_row rows[2];
    make_rows(rows);
    pm_export_opts o = {.csv_bom = 1};
    return pm_cube_write_csv(f->ctx, f->path, f->ds, NULL, NULL, PM_LEVEL_DISTRICT, rows, 2, &o);
}

/* Makes allocation 1, 2, … fail until fn succeeds: each failure is a clean
 * PM_E_NOMEM that leaves no file behind (ASan checks for leaks). */
static void fail_each_allocation(fixture *f, write_fn fn)
{
    long n;
    for (n = 1; n < 1000; n++) {
        pm_alloc_fail_at(n);
        int rc = fn(f);
        pm_alloc_fail_at(0);
        if (rc == PM_OK)
            break;
        if (rc != PM_E_NOMEM)
            fail_msg("allocation %ld: status %d (%s)", n, rc, pm_ctx_errmsg(f->ctx));
        assert_int_equal(files_in_dir(f), 0);
    }
    assert_true(n > 2 && n < 1000);
    assert_int_equal(files_in_dir(f), 1);
    unlink(f->path);
}

static int write_summary_file(fixture *f)
{
    pm_filter flt = march_filter();
    return pm_cube_write_summary(f->ctx, f->path, f->ds, f->cube, f->topics, &flt);
}

static void writers_fail_cleanly_when_out_of_memory(void **state)
{
    fixture *f = *state;
    fail_each_allocation(f, write_districts_simplified);
    fail_each_allocation(f, write_region);
    fail_each_allocation(f, write_csv);
    build_cube(f, &f->topics, &f->cube);
    fail_each_allocation(f, write_summary_file);
}

/* Districts with the caller's properties (analysis layers): the same
 * geometry and id as the cube's GeoJSON, the properties as given. */
static void districts_geojson_carries_given_properties(void **state)
{
    fixture *f = *state;
    json_t *cube_root = district_collection(f, 6);
    size_t keys[2] = {1, 0};
    json_t *props[2] = {json_pack("{s:f, s:s}", "gi_z", 2.5, "class", "new hot spot"),
                        json_pack("{s:f, s:s}", "gi_z", -1.0, "class", "no pattern")};
    pm_export_opts o = {.decimals = 6};
    assert_int_equal(pm_districts_write_geojson(f->ctx, f->path, f->ds, keys, props, 2, &o), PM_OK);
    json_error_t err;
    json_t *root = json_load_file(f->path, 0, &err);
    assert_non_null(root);
    assert_int_equal(json_array_size(json_object_get(root, "features")), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *ft = feature(root, i), *same = feature(cube_root, keys[i]);
        assert_string_equal(json_string_value(json_object_get(ft, "id")), pm_district_id(f->ds, keys[i]));
        assert_true(json_equal(json_object_get(ft, "geometry"), json_object_get(same, "geometry")));
        assert_true(json_equal(json_object_get(ft, "properties"), props[i]));
    }
    json_t *bad = json_string("not an object");
    size_t out_of_range = 99;
    assert_int_equal(pm_districts_write_geojson(f->ctx, f->path, f->ds, &out_of_range, props, 1, &o),
                     PM_E_USAGE);
    assert_int_equal(pm_districts_write_geojson(f->ctx, f->path, f->ds, keys, &bad, 1, &o), PM_E_USAGE);
    json_decref(bad);
    json_decref(props[0]);
    json_decref(props[1]);
    json_decref(root);
    json_decref(cube_root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(geojson_starts_with_type_and_bbox),
        T(geojson_features_have_ids_and_types),
        T(geojson_exterior_rings_ccw_and_holes_cw),
        T(geojson_rings_are_rounded_deduplicated_and_reoriented),
        T(geojson_bboxes_match_coordinates),
        T(geojson_properties_are_sorted_and_rounded),
        T(geojson_nan_is_null),
        T(geojson_suppressed_row_shows_only_place),
        T(geojson_second_write_is_byte_identical),
        T(geojson_keeps_cyrillic_as_utf8),
        T(geojson_coordinates_have_at_most_d_decimals),
        T(geojson_coordinates_round_trip_within_half_unit),
        T(geojson_region_is_union_of_districts),
        T(geojson_simplified_neighbours_still_touch),
        T(geojson_passes_ogrinfo),
        T(geojson_passes_geojsonhint),
        T(real_districts_give_valid_geojson),
        T(geojson_rejects_bad_arguments),
        T(geojson_without_rows_is_an_empty_collection),
        T(csv_district_rows_read_back),
        T(csv_bom_semicolon_and_decimal_comma),
        T(csv_total_level_has_figures_only),
        T(csv_topic_level_uses_catalogue),
        T(csv_executor_level_needs_cube),
        T(geojson_from_cube_query),
        T(csv_executor_level_through_cube),
        T(summary_has_period_filter_and_totals),
        T(summary_lists_top_districts_topics_and_executors),
        T(summary_is_sorted_indented_and_stable),
        T(summary_of_empty_cube_has_null_period),
        T(writers_fail_cleanly_when_out_of_memory),
        T(districts_geojson_carries_given_properties),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
