/* test_json_in.c — the JSON readers (pm_json_read: NDJSON, GeoJSON,
 * Open311, and choosing among them) and pm_records_read_path on JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../engine/pm_alloc.h"
#include "../../geodata/pm_record.h"
#include "record_collect.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURES "tests/fixtures/records/"



static int read_json_n(pm_ctx *ctx, const char *s, size_t n, pm_input_format fmt, collected *c)
{
    pm_record_sink sink = {on_record, on_reject, c};
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(fwrite(s, 1, n, f), n);
    rewind(f);
    int st = pm_json_read(ctx, f, "in.json", fmt, &sink);
    fclose(f);
    return st;
}

static int read_json(pm_ctx *ctx, const char *s, pm_input_format fmt, collected *c)
{
    return read_json_n(ctx, s, strlen(s), fmt, c);
}

static int read_path(pm_ctx *ctx, const char *path, pm_input_format fmt, collected *c)
{
    pm_record_sink sink = {on_record, on_reject, c};
    return pm_records_read_path(ctx, path, fmt, 0, &sink);
}

/* s, nested n levels deep in arrays, inside {"a": ...}. */
static char *deeply_nested(size_t n)
{
    char *s = malloc(2 * n + 16);
    size_t len = (size_t)sprintf(s, "{\"a\":");
    memset(s + len, '[', n);
    memset(s + len + n, ']', n);
    strcpy(s + len + 2 * n, "}");
    return s;
}

static int setup(void **state)
{
    *state = pm_ctx_new();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    pm_ctx_free(*state);
    return 0;
}

/* ---- NDJSON ---- */

static void ndjson_gives_scalar_members_by_line(void **state)
{
    collected c = {0};
    assert_int_equal(read_json(*state,
                               "{\"id\": \"a\", \"n\": 12, \"x\": 0.1, \"p\": 0.30000000000000004, \"big\": -9007199254740993,"
                               " \"t\": true, \"f\": false, \"z\": null, \"o\": {\"k\": 1},"
                               " \"arr\": [1], \"s\": \"Ёж\"}\n"
                               "\n"
                               "   \r\n"
                               "{\"id\": \"b\", \"id\": \"c\"}\r\n"
                               "{\"last\": 1}",
                               PM_FMT_NDJSON, &c),
                     PM_OK);
    assert_int_equal(c.nrej, 0);
    assert_int_equal(c.nrec, 3);
    assert_string_equal(c.recs[0], "L1 id=a|n=12|x=0.1|p=0.30000000000000004|big=-9007199254740993"
                                   "|t=true|f=false|z=|s=Ёж");
    assert_string_equal(c.recs[1], "L4 id=c"); /* a repeated member: the last wins */
    assert_string_equal(c.recs[2], "L5 last=1");
    collected_free(&c);
}

static void ndjson_bom_is_stripped(void **state)
{
    collected c = {0};
    assert_int_equal(read_json(*state, "\xEF\xBB\xBF{\"a\": 1}\n", PM_FMT_NDJSON, &c), PM_OK);
    assert_int_equal(c.nrej, 0);
    assert_string_equal(c.recs[0], "L1 a=1");
    collected_free(&c);
}

static void ndjson_bad_lines_are_rejected_alone(void **state)
{
    collected c = {0};
    assert_int_equal(read_json(*state,
                               "{\"id\": 1}\n"
                               "{\"id\": 2,, }\n"
                               "[1, 2]\n"
                               "\"text\"\n"
                               "{\"id\": 5} {\"id\": 6}\n"
                               "{\"id\": \"a\\u0000b\"}\n"
                               "{\"id\": 7}\n",
                               PM_FMT_NDJSON, &c),
                     PM_OK);
    assert_int_equal(c.nrec, 2);
    assert_string_equal(c.recs[0], "L1 id=1");
    assert_string_equal(c.recs[1], "L7 id=7");
    assert_int_equal(c.nrej, 5);
    assert_string_equal(c.rejs[0], "L2: not valid JSON: string or '}' expected at column 10");
    assert_string_equal(c.rejs[1], "L3: line is an array, expected an object");
    assert_string_equal(c.rejs[2], "L4: line is a string, expected an object");
    assert_string_equal(c.rejs[3], "L5: not valid JSON: end of file expected at column 11");
    assert_string_equal(c.rejs[4], "L6: member \"id\" contains a NUL character");
    collected_free(&c);
}

/* jansson quotes the input near a syntax error; in a complaint file that
 * may be a citizen's text, which must never reach a reject reason. */
static void ndjson_reject_never_quotes_the_text(void **state)
{
    collected c = {0};
    assert_int_equal(read_json(*state, "{\"id\": 1, \"text\": \"PERSONAL-CANARY-7 \" x}\n",
                               PM_FMT_NDJSON, &c),
                     PM_OK);
    assert_int_equal(c.nrej, 1);
    assert_null(strstr(c.rejs[0], "CANARY"));
    assert_null(strstr(c.rejs[0], "near"));
    collected_free(&c);
    assert_int_equal(read_json(*state, "{\"type\": \"FeatureCollection\", \"features\": [\n"
                                       "{\"properties\": {\"text\": \"PERSONAL-CANARY-8\" x}}]}",
                               PM_FMT_GEOJSON, &c),
                     PM_E_INPUT);
    assert_null(strstr(pm_ctx_errmsg(*state), "CANARY"));
    collected_free(&c);
}

static void ndjson_invalid_utf8_rejects_only_that_line(void **state)
{
    collected c = {0};
    assert_int_equal(read_json(*state, "{\"t\": \"ok\"}\n{\"t\": \"\xff\"}\n{\"t\": \"ok2\"}\n",
                               PM_FMT_NDJSON, &c),
                     PM_OK);
    assert_int_equal(c.nrec, 2);
    assert_string_equal(c.recs[1], "L3 t=ok2");
    assert_int_equal(c.nrej, 1);
    assert_string_equal(c.rejs[0], "L2: not valid JSON: unable to decode byte 0xff at column 7");
    collected_free(&c);
}

static void ndjson_deep_nesting_is_rejected(void **state)
{
    char *deep = deeply_nested(100000);
    size_t n = strlen(deep);
    char *s = malloc(n + 32);
    sprintf(s, "%s\n{\"id\": 2}\n", deep);
    collected c = {0};
    assert_int_equal(read_json(*state, s, PM_FMT_NDJSON, &c), PM_OK);
    assert_int_equal(c.nrej, 1);
    assert_non_null(strstr(c.rejs[0], "L1: not valid JSON: maximum parsing depth reached"));
    assert_int_equal(c.nrec, 1);
    assert_string_equal(c.recs[0], "L2 id=2");
    free(deep);
    free(s);
    collected_free(&c);
}

static void ndjson_long_lines_across_blocks(void **state)
{
    size_t big = 3u << 20, n = 0;
    char *s = malloc(big + 64);
    n += (size_t)sprintf(s, "{\"id\": 1}\n{\"t\": \"");
    memset(s + n, 'y', big);
    n += big;
    n += (size_t)sprintf(s + n, "\"}\n{\"id\": 3}");
    collected c = {0};
    assert_int_equal(read_json_n(*state, s, n, PM_FMT_NDJSON, &c), PM_OK);
    assert_int_equal(c.nrec, 3);
    assert_int_equal(strlen(c.recs[1]), strlen("L2 t=") + big);
    assert_string_equal(c.recs[2], "L3 id=3");
    free(s);
    collected_free(&c);
}

/* ---- GeoJSON ---- */

static void geojson_points_give_properties_and_lon_lat(void **state)
{
    collected c = {0};
    assert_int_equal(read_path(*state, FIXTURES "points.geojson", PM_FMT_AUTO, &c), PM_OK);
    assert_int_equal(c.nrec, 2);
    assert_string_equal(c.recs[0], "L1 created_at=2024-03-01T10:00:00+07:00|topic=roads|votes=12"
                                   "|score=0.5|urgent=true|author=|lon=86.0833"
                                   "|lat=55.3547|id=F1");
    /* a null geometry: no lon/lat; the properties' id is kept */
    assert_string_equal(c.recs[1], "L2 id=P2|created_at=2024-03-02|topic=heating"
                                   "|district_code=RU-KEM-001");
    assert_int_equal(c.nrej, 2);
    assert_string_equal(c.rejs[0], "L3 [3]: feature 3: geometry is a LineString, expected Point");
    assert_string_equal(c.rejs[1],
                        "L4 [4]: feature 4: Point coordinates are not [lon, lat] numbers");
    collected_free(&c);
}

static void geojson_coordinates_round_trip(void **state)
{
    collected c = {0};
    assert_int_equal(read_json(*state,
                               "{\"type\":\"FeatureCollection\",\"features\":[{\"type\":\"Feature\","
                               "\"geometry\":{\"type\":\"Point\",\"coordinates\":[37.6176,55.7558,"
                               "120]},\"properties\":{\"lon\":\"old\",\"id\":7}}]}",
                               PM_FMT_GEOJSON, &c),
                     PM_OK);
    assert_int_equal(c.nrec, 1);
    assert_string_equal(c.recs[0], "L1 lon=37.6176|id=7|lat=55.7558");
    collected_free(&c);
}

static void geojson_feature_problems_are_rejected(void **state)
{
    collected c = {0};
    assert_int_equal(read_json(*state,
                               "{\"type\":\"FeatureCollection\",\"features\":["
                               "5,"
                               "{\"type\":\"Polygon\",\"properties\":{}},"
                               "{\"type\":\"Feature\",\"properties\":[1]},"
                               "{\"type\":\"Feature\",\"geometry\":\"x\"},"
                               "{\"type\":\"Feature\",\"geometry\":{\"type\":\"Point\","
                               "\"coordinates\":[1]}},"
                               "{\"type\":\"Feature\",\"geometry\":{\"type\":\"Point\","
                               "\"coordinates\":[]},\"properties\":{\"k\":\"empty point\"}}"
                               "]}",
                               PM_FMT_GEOJSON, &c),
                     PM_OK);
    assert_int_equal(c.nrej, 5);
    assert_string_equal(c.rejs[0], "L1: feature 1: is a number, expected an object");
    assert_string_equal(c.rejs[1], "L2: feature 2: type is not \"Feature\"");
    assert_string_equal(c.rejs[2], "L3: feature 3: properties is an array, expected an object");
    assert_string_equal(c.rejs[3], "L4: feature 4: geometry is a string, expected an object");
    assert_string_equal(c.rejs[4],
                        "L5: feature 5: Point coordinates are not [lon, lat] numbers");
    assert_int_equal(c.nrec, 1);
    assert_string_equal(c.recs[0], "L6 k=empty point");
    collected_free(&c);
}

static void geojson_top_level_must_be_feature_collection(void **state)
{
    collected c = {0};
    assert_int_equal(read_json(*state, "{\"type\":\"Feature\",\"geometry\":null,\"properties\":{}}",
                               PM_FMT_GEOJSON, &c),
                     PM_E_INPUT);
    assert_string_equal(pm_ctx_errmsg(*state),
                        "in.json: top level is a Feature, expected a FeatureCollection");
    assert_int_equal(read_json(*state, "{\"type\":\"FeatureCollection\"}", PM_FMT_GEOJSON, &c),
                     PM_E_INPUT);
    assert_string_equal(pm_ctx_errmsg(*state),
                        "in.json: FeatureCollection has no \"features\" array");
    assert_int_equal(c.nrec + c.nrej, 0);
}

static void geojson_syntax_error_gives_line_and_column(void **state)
{
    collected c = {0};
    assert_int_equal(read_json(*state, "{\"type\": \"FeatureCollection\",\n \"features\": [\n  {,}\n]}",
                               PM_FMT_GEOJSON, &c),
                     PM_E_INPUT);
    assert_string_equal(pm_ctx_errmsg(*state), "in.json: not valid JSON at line 3, column 4: "
                                               "string or '}' expected");
    assert_int_equal(c.nrec + c.nrej, 0);
}

static void geojson_invalid_utf8_is_an_input_error(void **state)
{
    collected c = {0};
    assert_int_equal(read_json(*state, "{\"type\": \"FeatureCollection\", \"features\": [\n"
                                       "{\"type\": \"Feature\", \"properties\": {\"t\": \"\xc3\x28\"}}]}",
                               PM_FMT_GEOJSON, &c),
                     PM_E_INPUT);
    assert_string_equal(pm_ctx_errmsg(*state),
                        "in.json: not valid JSON at line 2, column 41: unable to decode byte 0xc3");
    assert_int_equal(c.nrec + c.nrej, 0);
}

static void geojson_deep_nesting_is_a_clean_error(void **state)
{
    char *s = deeply_nested(1000000);
    collected c = {0};
    assert_int_equal(read_json(*state, s, PM_FMT_GEOJSON, &c), PM_E_INPUT);
    assert_non_null(strstr(pm_ctx_errmsg(*state), "maximum parsing depth reached"));
    free(s);
}

/* ---- Open311 ---- */

static void open311_elements_are_records(void **state)
{
    collected c = {0};
    assert_int_equal(read_path(*state, FIXTURES "requests_open311.json", PM_FMT_AUTO, &c), PM_OK);
    assert_int_equal(c.nrec, 2);
    assert_string_equal(c.recs[0], "L1 service_request_id=638344|status=closed"
                                   "|service_name=Cans left out 24x7"
                                   "|requested_datetime=2010-04-14T06:37:38-08:00"
                                   "|lat=37.76201920035647|long=-122.42730642251331|media_url=");
    assert_string_equal(c.recs[1], "L3 service_request_id=638349|status=open"
                                   "|service_name=Abandoned Vehicle"
                                   "|requested_datetime=2010-04-19T06:37:38-08:00"
                                   "|lat=37.762|long=-122.427");
    assert_int_equal(c.nrej, 1);
    assert_string_equal(c.rejs[0], "L2: element 2: is a number, expected an object");
    collected_free(&c);
}

static void open311_needs_an_array(void **state)
{
    collected c = {0};
    assert_int_equal(read_json(*state, "{\"service_request_id\": 1}", PM_FMT_OPEN311, &c),
                     PM_E_INPUT);
    assert_string_equal(pm_ctx_errmsg(*state),
                        "in.json: top level is an object, expected an array of service requests");
    assert_int_equal(read_json(*state, "[{\"a\": \"x\\u0000\"}]", PM_FMT_OPEN311, &c), PM_OK);
    assert_int_equal(c.nrej, 1);
    assert_string_equal(c.rejs[0], "L1: element 1: member \"a\" contains a NUL character");
    collected_free(&c);
}

/* ---- choosing the format ---- */

static void auto_decides_from_the_content(void **state)
{
    collected c = {0};
    assert_int_equal(read_json(*state, "\xEF\xBB\xBF [{\"a\": 1}]\n", PM_FMT_AUTO, &c), PM_OK);
    assert_string_equal(c.recs[0], "L1 a=1");
    collected_free(&c);
    assert_int_equal(read_json(*state,
                               "{\"type\": \"FeatureCollection\", \"features\": [\n"
                               "{\"type\": \"Feature\", \"geometry\": null, \"properties\": {\"a\": 2}}]}\n",
                               PM_FMT_AUTO, &c),
                     PM_OK);
    assert_string_equal(c.recs[0], "L1 a=2");
    collected_free(&c);
    assert_int_equal(read_json(*state, "\n{\"a\": 3}\n\n{\"a\": 4}\n", PM_FMT_AUTO, &c), PM_OK);
    assert_int_equal(c.nrec, 2);
    assert_string_equal(c.recs[0], "L2 a=3");  /* NDJSON: numbered by line */
    assert_string_equal(c.recs[1], "L4 a=4");
    collected_free(&c);
    assert_int_equal(read_json(*state, "{\"a\": 5}", PM_FMT_AUTO, &c), PM_OK);
    assert_string_equal(c.recs[0], "L1 a=5");
    collected_free(&c);
}

static void auto_rejects_what_is_none_of_them(void **state)
{
    collected c = {0};
    assert_int_equal(read_json(*state, "{\n\"type\": \"Feature\"\n}\n", PM_FMT_AUTO, &c),
                     PM_E_INPUT);
    assert_string_equal(pm_ctx_errmsg(*state),
                        "in.json: top level is a Feature, expected a FeatureCollection");
    assert_int_equal(read_json(*state, "[1,\n2]\n[3]\n", PM_FMT_AUTO, &c), PM_E_INPUT);
    assert_string_equal(pm_ctx_errmsg(*state),
                        "in.json: not valid JSON at line 3, column 1: end of file expected");
    assert_int_equal(read_json(*state, "id,name\n", PM_FMT_AUTO, &c), PM_E_INPUT);
    assert_int_equal(read_json(*state, "", PM_FMT_AUTO, &c), PM_E_INPUT);
    assert_int_equal(c.nrec + c.nrej, 0);
    assert_int_equal(read_json(*state, "a,b\n", PM_FMT_CSV, &c), PM_E_USAGE);
}

static void read_path_chooses_by_extension_then_content(void **state)
{
    collected c = {0};
    assert_int_equal(read_path(*state, FIXTURES "complaints.ndjson", PM_FMT_AUTO, &c), PM_OK);
    assert_int_equal(c.nrec, 3);
    assert_string_equal(c.recs[2], "L5 id=n3|created_at=2024-03-03T10:00:00Z|topic=water"
                                   "|district_code=RU-KEM-002");
    assert_int_equal(c.nrej, 1);
    assert_string_equal(c.rejs[0], "L4: not valid JSON: invalid token at column 3");
    collected_free(&c);
    /* the same lines in a .json file: NDJSON by content */
    assert_int_equal(read_path(*state, FIXTURES "complaints_lines.json", PM_FMT_AUTO, &c), PM_OK);
    assert_int_equal(c.nrec, 3);
    assert_string_equal(c.recs[1], "L3 id=n2|created_at=2024-03-02T10:00:00Z|topic=heating"
                                   "|lat=55.36|lon=86.09");
    collected_free(&c);
    /* a format given by the caller wins over the extension */
    assert_int_equal(read_path(*state, FIXTURES "points.geojson", PM_FMT_OPEN311, &c), PM_E_INPUT);
    assert_int_equal(c.nrec + c.nrej, 0);
}

static void read_path_without_extension_sniffs_json(void **state)
{
    char path[] = "/tmp/pm_test_json_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("\n  [{\"a\": 1}, {\"a\": 2}]\n", f);
    fclose(f);
    collected c = {0};
    assert_int_equal(read_path(*state, path, PM_FMT_AUTO, &c), PM_OK);
    assert_int_equal(c.nrec, 2);
    assert_string_equal(c.recs[1], "L2 a=2");
    collected_free(&c);
    /* stdin ("-") is read the same way */
    assert_non_null(freopen(path, "r", stdin));
    assert_int_equal(read_path(*state, "-", PM_FMT_AUTO, &c), PM_OK);
    assert_int_equal(c.nrec, 2);
    collected_free(&c);
    remove(path);
}

/* ---- stopping, I/O, memory ---- */

static void read_error_is_an_io_error(void **state)
{
    const pm_input_format fmts[] = {PM_FMT_NDJSON, PM_FMT_GEOJSON, PM_FMT_AUTO};
    for (size_t i = 0; i < sizeof fmts / sizeof *fmts; i++) {
        FILE *dir = fopen(".", "r"); /* opens, but reading a directory fails */
        assert_non_null(dir);
        collected c = {0};
        pm_record_sink sink = {on_record, on_reject, &c};
        assert_int_equal(pm_json_read(*state, dir, "somedir", fmts[i], &sink), PM_E_IO);
        assert_non_null(strstr(pm_ctx_errmsg(*state), "somedir: read error"));
        fclose(dir);
    }
}

static void sink_status_stops_reading(void **state)
{
    collected c = {.stop_after = 1};
    assert_int_equal(read_json(*state, "{\"a\":1}\n{\"a\":2}\n", PM_FMT_NDJSON, &c),
                     PM_E_INPUT_VALUE);
    assert_int_equal(c.nrec, 1);
    collected_free(&c);
    c.stop_after = 1;
    assert_int_equal(read_path(*state, FIXTURES "points.geojson", PM_FMT_AUTO, &c),
                     PM_E_INPUT_VALUE);
    assert_int_equal(c.nrec, 1);
    collected_free(&c);
}

static void out_of_memory_is_clean(void **state)
{
    const char *inputs[] = {
        "{\"a\": 1, \"b\": 2}\n{\"c\": 3}\n",
        ("{\"type\":\"FeatureCollection\",\"features\":[{\"type\":\"Feature\",\"id\":1,"
         "\"geometry\":{\"type\":\"Point\",\"coordinates\":[1,2]},\"properties\":{\"a\":1}}]}"),
        "[{\"a\": 1}]",
    };
    for (size_t k = 0; k < sizeof inputs / sizeof *inputs; k++) {
        int done = 0;
        for (long at = 1; !done && at < 100; at++) {
            collected c = {0};
            pm_alloc_fail_at(at);
            int st = read_json(*state, inputs[k], PM_FMT_AUTO, &c);
            pm_alloc_fail_at(0);
            assert_true(st == PM_OK || st == PM_E_NOMEM);
            done = st == PM_OK;
            if (done)
                assert_true(c.nrec >= 1);
            collected_free(&c);
        }
        assert_true(done);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ndjson_gives_scalar_members_by_line),
        cmocka_unit_test(ndjson_bom_is_stripped),
        cmocka_unit_test(ndjson_bad_lines_are_rejected_alone),
        cmocka_unit_test(ndjson_reject_never_quotes_the_text),
        cmocka_unit_test(ndjson_invalid_utf8_rejects_only_that_line),
        cmocka_unit_test(ndjson_deep_nesting_is_rejected),
        cmocka_unit_test(ndjson_long_lines_across_blocks),
        cmocka_unit_test(geojson_points_give_properties_and_lon_lat),
        cmocka_unit_test(geojson_coordinates_round_trip),
        cmocka_unit_test(geojson_feature_problems_are_rejected),
        cmocka_unit_test(geojson_top_level_must_be_feature_collection),
        cmocka_unit_test(geojson_syntax_error_gives_line_and_column),
        cmocka_unit_test(geojson_invalid_utf8_is_an_input_error),
        cmocka_unit_test(geojson_deep_nesting_is_a_clean_error),
        cmocka_unit_test(open311_elements_are_records),
        cmocka_unit_test(open311_needs_an_array),
        cmocka_unit_test(auto_decides_from_the_content),
        cmocka_unit_test(auto_rejects_what_is_none_of_them),
        cmocka_unit_test(read_path_chooses_by_extension_then_content),
        cmocka_unit_test(read_path_without_extension_sniffs_json),
        cmocka_unit_test(read_error_is_an_io_error),
        cmocka_unit_test(sink_status_stops_reading),
        cmocka_unit_test(out_of_memory_is_clean),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
