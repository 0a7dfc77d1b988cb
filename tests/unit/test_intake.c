/* test_intake.c — records to checked complaints (geodata/intake.c): field
 * lookup, every check and its reject, mappings (the shipped NYC 311 one
 * included), counts, out of memory.  Most tests feed hand-built records to
 * the intake's sink; the last ones read the files in
 * tests/fixtures/intake/.  Run from the repository root.
 *
 * Build: tools/quicktest.sh test_intake geodata/intake.c geodata/topics.c
 *        geodata/timeparse.c geodata/records.c geodata/csv_in.c geodata/json_in.c
 *        geodata/json_err.c geodata/utf8.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../engine/pm_alloc.h"
#include "../../engine/strtab.h"
#include "../../geodata/pm_complaints_in.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CATALOGUE "data/topics.json"
#define NYC_MAPPING "data/mappings/nyc311.json"
#define FIXTURES "tests/fixtures/intake/"

enum { HOUSING = 0, ROADS = 1, ECOLOGY = 7, OTHER = 11 };   /* data/topics.json */

typedef struct rejected {
    uint64_t line;
    char id[64], field[32], reason[256];
    int has_id;
} rejected;

typedef struct fx {
    pm_ctx *ctx;
    pm_topics *t;
    pm_mapping *m;
    pm_complaints *cs;
    pm_intake *in;
    rejected rj[32];
    int nrj, nrj_checked;
    int stop_with;   /* what the reject callback returns */
    int warnings;
} fx;

static int on_reject(void *user, uint64_t line, const char *id, const char *field,
                     const char *reason)
{
    fx *f = user;
    {
        rejected *r = &f->rj[f->nrj % 32];   /* the last 32 */
        r->line = line;
        r->has_id = id != NULL;
        snprintf(r->id, sizeof r->id, "%s", id ? id : "");
        snprintf(r->field, sizeof r->field, "%s", field ? field : "");
        snprintf(r->reason, sizeof r->reason, "%s", reason);
    }
    f->nrj++;
    return f->stop_with;
}

static void on_log(void *user, pm_log_level level, const char *msg)
{
    (void)msg;
    fx *f = user;
    f->warnings += level == PM_LOG_WARN;
}

/* (Re)builds the intake on f->m. */
static void intake_start(fx *f)
{
    pm_intake_free(f->in);
    pm_complaints_free(f->cs);
    f->cs = pm_complaints_new();
    f->nrj = f->nrj_checked = 0;
    if (pm_intake_new(f->ctx, f->t, f->m, f->cs, on_reject, f, &f->in) != PM_OK)
        fail_msg("%s", pm_ctx_errmsg(f->ctx));
}

static void use_mapping(fx *f, const char *path)
{
    pm_mapping_free(f->m);
    if (pm_mapping_load(f->ctx, path, f->t, &f->m) != PM_OK)
        fail_msg("%s", pm_ctx_errmsg(f->ctx));
    intake_start(f);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->ctx = pm_ctx_new();
    pm_ctx_set_log(f->ctx, on_log, f);
    if (pm_topics_load(f->ctx, CATALOGUE, &f->t) != PM_OK)
        fail_msg("%s", pm_ctx_errmsg(f->ctx));
    assert_int_equal(pm_mapping_default(f->ctx, &f->m), PM_OK);
    intake_start(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    pm_intake_free(f->in);
    pm_complaints_free(f->cs);
    pm_mapping_free(f->m);
    pm_topics_free(f->t);
    pm_ctx_free(f->ctx);
    free(f);
    return 0;
}

/* Feeds one record: feed(f, line, "key", "value", ..., NULL). */
static int feed(fx *f, uint64_t line, ...)
{
    const char *keys[64], *vals[64];
    size_t n = 0;
    va_list ap;
    va_start(ap, line);
    const char *k;
    while ((k = va_arg(ap, const char *)) != NULL) {
        keys[n] = k;
        vals[n++] = va_arg(ap, const char *);
    }
    va_end(ap);
    pm_record rec = {.line = line, .n = n, .keys = keys, .values = vals};
    const pm_record_sink *sink = pm_intake_sink(f->in);
    return sink->record(sink->user, &rec);
}

/* A record with the canonical fields, lon/lat and topic as given. */
static int feed_basic(fx *f, const char *id, const char *lon, const char *lat, const char *topic)
{
    return feed(f, 7, "id", id, "created_at", "2024-03-01T12:00:00+07:00", "lon", lon, "lat", lat,
                "topic", topic, NULL);
}

/* The last feed was rejected (one more reject than at the last call) with
 * this field and reason. */
static void rejected_as(fx *f, const char *field, const char *reason)
{
    if (f->nrj != f->nrj_checked + 1)
        fail_msg("%d rejects since the last check, expected 1", f->nrj - f->nrj_checked);
    f->nrj_checked = f->nrj;
    const rejected *r = &f->rj[(f->nrj - 1) % 32];
    if (strcmp(r->field, field) != 0 || strcmp(r->reason, reason) != 0)
        fail_msg("rejected as [%s] %s, expected [%s] %s", r->field, r->reason, field, reason);
}

static void accepted(fx *f, size_t n)
{
    if (pm_complaints_count(f->cs) != n)
        fail_msg("%zu accepted, expected %zu; last reject: [%s] %s", pm_complaints_count(f->cs), n,
                 f->nrj ? f->rj[f->nrj - 1].field : "", f->nrj ? f->rj[f->nrj - 1].reason : "");
}

static void counts_are(fx *f, uint64_t read, uint64_t acc, uint64_t rej)
{
    pm_intake_counts c = pm_intake_counts_get(f->in);
    assert_int_equal(c.read, read);
    assert_int_equal(c.accepted, acc);
    assert_int_equal(c.rejected, rej);
    assert_int_equal(c.read, c.accepted + c.rejected);
}

/* ---- accepted records ---------------------------------------------------- */

static void test_canonical_fields(void **state)
{
    fx *f = *state;
    assert_int_equal(feed(f, 12, "id", "c1", "created_at", "2024-03-01T12:00:00+07:00", "lon", "86.0877",
                          "lat", "55.3547", "topic", "roads", "source", "ПОС", "status", "closed",
                          "answered_at", "2024-03-02T12:00:00+07:00", "executor", "Администрация",
                          "district_code", "RU-KEM-001", NULL),
                     PM_OK);
    accepted(f, 1);
    assert_string_equal(pm_complaints_id(f->cs, 0), "c1");
    assert_int_equal(pm_complaints_created_at(f->cs, 0), 1709269200LL);
    assert_int_equal(pm_complaints_answered_at(f->cs, 0), 1709269200LL + 86400);
    assert_true(pm_complaints_lon_at(f->cs, 0) == 86.0877);
    assert_true(pm_complaints_lat_at(f->cs, 0) == 55.3547);
    assert_int_equal(pm_complaints_topic(f->cs)[0], ROADS);
    assert_int_equal(pm_complaints_line(f->cs, 0), 12);
    static const struct { pm_dict_col col; const char *s; } dict[] = {
        {PM_DICT_SOURCE, "ПОС"}, {PM_DICT_STATUS, "closed"}, {PM_DICT_EXECUTOR, "Администрация"},
        {PM_DICT_DISTRICT_CODE, "RU-KEM-001"}};
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(pm_complaints_dict_str(f->cs, dict[i].col,
                                                   pm_complaints_dict_at(f->cs, dict[i].col, 0)),
                            dict[i].s);
    counts_are(f, 1, 1, 0);
}

static void test_values_trimmed_and_optional_absent(void **state)
{
    fx *f = *state;
    assert_int_equal(feed(f, 1, "id", "  c1 ", "created_at", " 2024-03-01 ", "lon", " 86.1 ",
                          "lat", "55.3\t", "topic", " ЖКХ ", "status", "", NULL),
                     PM_OK);
    accepted(f, 1);
    assert_string_equal(pm_complaints_id(f->cs, 0), "c1");
    assert_int_equal(pm_complaints_answered_at(f->cs, 0), PM_TIME_NONE);
    assert_int_equal(pm_complaints_dict_at(f->cs, PM_DICT_STATUS, 0), PM_NONE);
    assert_int_equal(pm_complaints_dict_at(f->cs, PM_DICT_SOURCE, 0), PM_NONE);
    assert_int_equal(pm_complaints_topic(f->cs)[0], HOUSING);
}

static void test_aliases_open311_names(void **state)
{
    fx *f = *state;
    assert_int_equal(feed(f, 1, "service_request_id", "638344", "requested_datetime",
                          "2010-04-14T06:37:38-08:00", "long", "-122.4651145", "lat", "37.762221815",
                          "service_name", "Дороги", "agency_responsible", "DPW", "closed_at",
                          "2010-04-15T06:37:38-08:00", "channel", "web", NULL),
                     PM_OK);
    accepted(f, 1);
    assert_string_equal(pm_complaints_id(f->cs, 0), "638344");
    assert_int_equal(pm_complaints_answered_at(f->cs, 0) - pm_complaints_created_at(f->cs, 0),
                     86400);
    assert_true(pm_complaints_lon_at(f->cs, 0) == -122.4651145);
    assert_string_equal(pm_complaints_dict_str(f->cs, PM_DICT_EXECUTOR,
                                               pm_complaints_dict_at(f->cs, PM_DICT_EXECUTOR, 0)),
                        "DPW");
    assert_string_equal(pm_complaints_dict_str(f->cs, PM_DICT_SOURCE,
                                               pm_complaints_dict_at(f->cs, PM_DICT_SOURCE, 0)),
                        "web");
}

static void test_aliases_case_insensitive(void **state)
{
    fx *f = *state;
    assert_int_equal(feed(f, 1, "UNIQUE KEY", "u1", "Created Date", "2024-03-01", "Longitude", "1.5",
                          "LATITUDE", "2.5", "Complaint Type", "ecology", "Agency", "DEP", "OKTMO",
                          "32701000", NULL),
                     PM_OK);
    assert_int_equal(feed(f, 2, "complaint_id", "u2", "date", "2024-03-01", "x", "1.5", "y", "2.5",
                          "category", "ecology", NULL),
                     PM_OK);
    assert_int_equal(feed(f, 3, "id", "u3", "created", "2024-03-01", "lng", "1.5", "latitude", "2.5",
                          "topic_code", "ecology", NULL),
                     PM_OK);
    accepted(f, 3);
    assert_int_equal(pm_complaints_topic(f->cs)[0], ECOLOGY);
    assert_string_equal(
        pm_complaints_dict_str(f->cs, PM_DICT_DISTRICT_CODE,
                               pm_complaints_dict_at(f->cs, PM_DICT_DISTRICT_CODE, 0)),
        "32701000");
}

static void test_exact_key_before_case_insensitive(void **state)
{
    fx *f = *state;
    assert_int_equal(feed(f, 1, "ID", "upper", "id", "lower", "created_at", "2024-03-01", "lon", "1",
                          "lat", "2", "topic", "other", NULL),
                     PM_OK);
    accepted(f, 1);
    assert_string_equal(pm_complaints_id(f->cs, 0), "lower");
}

static void test_canonical_before_alias_empty_falls_back(void **state)
{
    fx *f = *state;
    assert_int_equal(feed(f, 1, "id", "a", "created_at", "2024-03-01", "longitude", "9", "lon", "1",
                          "lat", "2", "topic", "other", NULL),
                     PM_OK);
    assert_int_equal(feed(f, 2, "id", "b", "created_at", "2024-03-01", "lon", "", "longitude", "9",
                          "lat", "2", "topic", "other", NULL),
                     PM_OK);
    accepted(f, 2);
    assert_true(pm_complaints_lon_at(f->cs, 0) == 1);
    assert_true(pm_complaints_lon_at(f->cs, 1) == 9);
}

static void test_topic_tries_each_candidate(void **state)
{
    fx *f = *state;
    assert_int_equal(feed(f, 1, "id", "a", "created_at", "2024-03-01", "lon", "1", "lat", "2",
                          "service_code", "006", "service_name", "Дороги", NULL),
                     PM_OK);
    accepted(f, 1);
    assert_int_equal(pm_complaints_topic(f->cs)[0], ROADS);
}

/* Topic values are answered from the ones seen before (intake.c's
 * topic_find): every repeat, in any order, gets the catalogue's answer,
 * and so does every value after the table of them is full. */
static void test_topic_answers_repeat(void **state)
{
    fx *f = *state;
    static const char *const vals[] = {"roads", "ROADS", "Дороги", "дороги", "ЖКХ", "ecology",
                                       "Potholes", "other", "006", "housing", "Roads"};
    static const char *const late[] = {"rOaDs", "ДОРОГИ", "Ecology", "Potholes!"};
    enum { NV = sizeof vals / sizeof *vals, NLATE = sizeof late / sizeof *late, FILL = 4200 };
    size_t accepted_n = 0;
    int line = 1;
    char id[32], val[32];
    for (int round = 0; round < 3; round++) {
        if (round == 2)   /* more distinct values than the table keeps */
            for (int i = 0; i < FILL; i++) {
                snprintf(id, sizeof id, "fill%d", i);
                snprintf(val, sizeof val, "unknown %d", i);
                assert_int_equal(feed_basic(f, id, "1", "2", val), PM_OK);
                f->nrj_checked = f->nrj;
            }
        for (size_t j = 0; j < NV + NLATE; j++) {
            /* backwards the second time; values first seen in the last */
            const char *v = j >= NV ? (round == 2 ? late[j - NV] : "roads")
                                    : vals[round == 1 ? NV - 1 - j : j];
            long want = pm_topics_find(f->t, v);
            snprintf(id, sizeof id, "t%d", line++);
            assert_int_equal(feed_basic(f, id, "1", "2", v), PM_OK);
            if (want < 0) {
                char reason[64];
                snprintf(reason, sizeof reason, "unknown topic \"%s\"", v);
                rejected_as(f, "topic", reason);
                continue;
            }
            accepted(f, ++accepted_n);
            if (pm_complaints_topic(f->cs)[accepted_n - 1] != want)
                fail_msg("round %d, \"%s\": topic %d, expected %ld", round, v,
                         pm_complaints_topic(f->cs)[accepted_n - 1], want);
        }
    }
    assert_true(accepted_n >= 30);
    counts_are(f, 3 * (NV + NLATE) + FILL, accepted_n, 3 * (NV + NLATE) + FILL - accepted_n);
}

static void test_text_and_author_never_read(void **state)
{
    fx *f = *state;
    assert_int_equal(feed(f, 1, "id", "a", "created_at", "2024-03-01", "lon", "1", "lat", "2",
                          "topic", "other", "text", "bad \xC0\xAF utf-8", "author", "\xFF", NULL),
                     PM_OK);
    accepted(f, 1);
}

/* Records with different key sets, interleaved (the lookup is cached). */
static void test_changing_key_sets(void **state)
{
    fx *f = *state;
    for (int i = 0; i < 3; i++) {
        char id1[16], id2[16];
        snprintf(id1, sizeof id1, "a%d", i);
        snprintf(id2, sizeof id2, "b%d", i);
        assert_int_equal(feed(f, 1, "id", id1, "created_at", "2024-03-01", "lon", "1", "lat", "2",
                              "topic", "roads", NULL),
                         PM_OK);
        assert_int_equal(feed(f, 2, "topic", "ecology", "lat", "4", "lon", "3", "id", id2,
                              "created_at", "2024-03-02", NULL),
                         PM_OK);
    }
    accepted(f, 6);
    for (size_t i = 0; i < 6; i += 2) {
        assert_true(pm_complaints_lon_at(f->cs, i) == 1 && pm_complaints_lat_at(f->cs, i) == 2);
        assert_true(pm_complaints_lon_at(f->cs, i + 1) == 3 &&
                    pm_complaints_lat_at(f->cs, i + 1) == 4);
        assert_int_equal(pm_complaints_topic(f->cs)[i + 1], ECOLOGY);
    }
}

/* ---- rejects, in the order of the checks --------------------------------- */

static void test_reject_missing_id(void **state)
{
    fx *f = *state;
    assert_int_equal(feed(f, 5, "created_at", "2024-03-01", "lon", "1", "lat", "2", "topic", "roads",
                          NULL),
                     PM_OK);
    rejected_as(f, "id", "missing value");
    assert_int_equal(f->rj[0].line, 5);
    assert_false(f->rj[0].has_id);
    assert_int_equal(feed(f, 6, "id", "   ", "created_at", "", NULL), PM_OK);
    rejected_as(f, "id", "missing value");
    counts_are(f, 2, 0, 2);
}

static void test_reject_bad_utf8(void **state)
{
    fx *f = *state;
    static const char *const bad[] = {
        "\xC0\xAF",          /* overlong '/' */
        "\xE0\x80\xAF",      /* overlong, 3 bytes */
        "\xED\xA0\x80",      /* surrogate U+D800 */
        "\xF4\x90\x80\x80",  /* U+110000 */
        "\xF8\x88\x80\x80\x80",
        "ab\xD0",            /* truncated */
        "\x80",              /* lone continuation byte */
        "\xFF",
        "abcdefghij\xC0\xAFklmnopqrstuv",   /* after and before runs of ASCII */
        "abcdefgh\xD0",      /* truncated after a run of eight */
        "\xD0\x96\xD0\x96" "abcdefgh" "\xED\xA0\x80",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(feed(f, 3, "id", "u", "created_at", "2024-03-01", "lon", "1", "lat", "2",
                              "topic", "roads", "executor", bad[i], NULL),
                         PM_OK);
        rejected_as(f, "executor", "bad UTF-8");
        assert_string_equal(f->rj[f->nrj - 1].id, "u");
    }
    /* a bad id is not given back */
    assert_int_equal(feed(f, 4, "id", "\xC3\x28", "created_at", "2024-03-01", NULL), PM_OK);
    rejected_as(f, "id", "bad UTF-8");
    assert_false(f->rj[f->nrj - 1].has_id);
    /* valid 2-, 3- and 4-byte characters pass */
    assert_int_equal(feed(f, 5, "id", "ok", "created_at", "2024-03-01", "lon", "1", "lat", "2",
                          "topic", "roads", "executor", "Ж€\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF",
                          "status", "Исполнено в срок (ответ дан заявителю)", NULL),
                     PM_OK);
    accepted(f, 1);
}

static void test_reject_created_at(void **state)
{
    fx *f = *state;
    assert_int_equal(feed(f, 1, "id", "a", "lon", "1", "lat", "2", "topic", "roads", NULL), PM_OK);
    rejected_as(f, "created_at", "missing value");
    assert_int_equal(feed(f, 2, "id", "b", "created_at", "yesterday", "lon", "1", "lat", "2", NULL),
                     PM_OK);
    rejected_as(f, "created_at", "unparsable date \"yesterday\"");
    assert_int_equal(feed(f, 3, "id", "c", "created_at", "2023-02-29", NULL), PM_OK);
    rejected_as(f, "created_at", "unparsable date \"2023-02-29\"");
    assert_string_equal(f->rj[f->nrj - 1].id, "c");
}

static void test_reject_long_value_quoted_short(void **state)
{
    fx *f = *state;
    char big[300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(feed(f, 1, "id", "a", "created_at", big, NULL), PM_OK);
    const char *reason = f->rj[f->nrj - 1].reason;
    assert_true(strlen(reason) < 100);
    assert_non_null(strstr(reason, "xxx...\""));
}

/* An id or a dictionary value the string tables cannot take is the
 * record's fault, not a lack of memory: it is rejected, the run goes on. */
static void test_reject_value_longer_than_16_mib(void **state)
{
    fx *f = *state;
    char *big = malloc(PM_STRTAB_STR_MAX + 1);
    assert_non_null(big);
    memset(big, 'x', PM_STRTAB_STR_MAX);
    big[PM_STRTAB_STR_MAX] = '\0';   /* with its NUL, one byte too many */
    assert_int_equal(feed_basic(f, big, "1", "2", "roads"), PM_OK);
    rejected_as(f, "id", "longer than 16 MiB");
    assert_false(f->rj[f->nrj - 1].has_id);
    assert_int_equal(feed(f, 2, "id", "a", "created_at", "2024-03-01", "lon", "1", "lat", "2",
                          "topic", "roads", "district_code", big, NULL),
                     PM_OK);
    rejected_as(f, "district_code", "longer than 16 MiB");
    assert_string_equal(f->rj[f->nrj - 1].id, "a");
    big[PM_STRTAB_STR_MAX - 1] = '\0';   /* the longest kept */
    assert_int_equal(feed(f, 3, "id", "b", "created_at", "2024-03-01", "lon", "1", "lat", "2",
                          "topic", "roads", "executor", big, NULL),
                     PM_OK);
    accepted(f, 1);
    assert_string_equal(
        pm_complaints_dict_str(f->cs, PM_DICT_EXECUTOR,
                               pm_complaints_dict_at(f->cs, PM_DICT_EXECUTOR, 0)), big);
    free(big);
}

static void test_no_coordinates(void **state)
{
    fx *f = *state;
    assert_int_equal(feed_basic(f, "a", "", "", "roads"), PM_OK);
    rejected_as(f, "lon,lat", "no coordinates and no district code");
    assert_int_equal(feed(f, 2, "id", "b", "created_at", "2024-03-01", "topic", "roads",
                          "district_code", "RU-KEM-004", NULL),
                     PM_OK);
    accepted(f, 1);
    assert_true(isnan(pm_complaints_lon_at(f->cs, 0)) && isnan(pm_complaints_lat_at(f->cs, 0)));
}

static void test_only_one_coordinate(void **state)
{
    fx *f = *state;
    assert_int_equal(feed_basic(f, "a", "86.1", "", "roads"), PM_OK);
    rejected_as(f, "lon,lat", "only one of lat/lon");
    assert_int_equal(feed(f, 1, "id", "b", "created_at", "2024-03-01", "lat", "55", "topic", "roads",
                          "district_code", "X", NULL),
                     PM_OK);
    rejected_as(f, "lon,lat", "only one of lat/lon");
}

static void test_unparsable_numbers(void **state)
{
    fx *f = *state;
    static const char *const bad[] = {"0x1p3", "1.2.3", "12abc", ".5", "5.", "1e", "1e+",
                                      "--1", "+-1", "1,5", "1 5", "abc", "1_000", "٣"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char reason[64];
        snprintf(reason, sizeof reason, "unparsable number \"%s\"", bad[i]);
        assert_int_equal(feed_basic(f, "a", bad[i], "55", "roads"), PM_OK);
        rejected_as(f, "lon", reason);
        assert_int_equal(feed_basic(f, "a", "86", bad[i], "roads"), PM_OK);
        rejected_as(f, "lat", reason);
    }
}

static void test_non_finite_numbers(void **state)
{
    fx *f = *state;
    static const char *const bad[] = {"NaN", "nan", "inf", "-Infinity", "1e999", "-1e400",
                                      "99999999999999999999e300"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char reason[64];
        snprintf(reason, sizeof reason, "not a finite number \"%s\"", bad[i]);
        assert_int_equal(feed_basic(f, "a", "86", bad[i], "roads"), PM_OK);
        rejected_as(f, "lat", reason);
    }
}

static void test_number_syntax_accepted(void **state)
{
    fx *f = *state;
    static const struct { const char *s; double v; } ok[] = {
        {"+86.5", 86.5},    {"-86.5", -86.5},  {"8.65e1", 86.5}, {"865E-1", 86.5},
        {"0086.50", 86.5},  {"1e+1", 10},      {"40.70827532593202", 40.70827532593202},
        {"-73.79160395779721", -73.79160395779721},
        {"55.35470000000000000001", 55.3547}};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        char id[8];
        snprintf(id, sizeof id, "n%zu", i);
        assert_int_equal(feed_basic(f, id, ok[i].s, "10", "roads"), PM_OK);
        accepted(f, i + 1);
        if (pm_complaints_lon_at(f->cs, i) != ok[i].v)
            fail_msg("%s read as %.17g", ok[i].s, pm_complaints_lon_at(f->cs, i));
    }
}

static void test_decimal_comma(void **state)
{
    fx *f = *state;
    pm_mapping_set_decimal_comma(f->m, 1);
    intake_start(f);
    assert_int_equal(feed_basic(f, "a", "86,0877", "55.3547", "roads"), PM_OK);
    accepted(f, 1);
    assert_true(pm_complaints_lon_at(f->cs, 0) == 86.0877);
    assert_int_equal(feed_basic(f, "b", "86,08,1", "55", "roads"), PM_OK);
    rejected_as(f, "lon", "unparsable number \"86,08,1\"");
    assert_int_equal(feed_basic(f, "c", "86,0.1", "55", "roads"), PM_OK);
    rejected_as(f, "lon", "unparsable number \"86,0.1\"");
}

static void test_swapped_coordinates(void **state)
{
    fx *f = *state;
    /* Khabarovsk (135.07 E, 48.48 N) written the wrong way round */
    assert_int_equal(feed_basic(f, "a", "48.48", "135.07", "roads"), PM_OK);
    rejected_as(f, "lat,lon", "lat/lon look swapped");
    /* Kemerovo swapped is still a valid point (86 N, 55 E): not detectable */
    assert_int_equal(feed_basic(f, "k", "55.3547", "86.0877", "roads"), PM_OK);
    accepted(f, 1);
    assert_int_equal(feed_basic(f, "b", "-55.3547", "-179.5", "roads"), PM_OK);
    rejected_as(f, "lat,lon", "lat/lon look swapped");
}

static void test_out_of_range(void **state)
{
    fx *f = *state;
    assert_int_equal(feed_basic(f, "a", "100", "95", "roads"), PM_OK);   /* |lon| > 90 */
    rejected_as(f, "lat", "lat out of range");
    assert_int_equal(feed_basic(f, "b", "10", "200", "roads"), PM_OK);   /* |lat| > 180 */
    rejected_as(f, "lat", "lat out of range");
    assert_int_equal(feed_basic(f, "c", "180.5", "55", "roads"), PM_OK);
    rejected_as(f, "lon", "lon out of range");
    assert_int_equal(feed_basic(f, "d", "-180", "-90", "roads"), PM_OK);
    accepted(f, 1);
}

static void test_null_island(void **state)
{
    fx *f = *state;
    assert_int_equal(feed_basic(f, "a", "0", "0.0", "roads"), PM_OK);
    rejected_as(f, "lon,lat", "lat/lon are 0,0 (null island)");
    assert_int_equal(feed_basic(f, "b", "-0", "0e5", "roads"), PM_OK);
    rejected_as(f, "lon,lat", "lat/lon are 0,0 (null island)");
    assert_int_equal(feed_basic(f, "c", "0", "1", "roads"), PM_OK);
    accepted(f, 1);
}

static void test_reject_topic(void **state)
{
    fx *f = *state;
    assert_int_equal(feed(f, 1, "id", "a", "created_at", "2024-03-01", "lon", "1", "lat", "2", NULL),
                     PM_OK);
    rejected_as(f, "topic", "missing value");
    assert_int_equal(feed_basic(f, "b", "1", "2", "Potholes"), PM_OK);
    rejected_as(f, "topic", "unknown topic \"Potholes\"");
    /* the first candidate is the one quoted */
    assert_int_equal(feed(f, 1, "id", "c", "created_at", "2024-03-01", "lon", "1", "lat", "2",
                          "service_code", "006", "service_name", "Pothole", NULL),
                     PM_OK);
    rejected_as(f, "topic", "unknown topic \"006\"");
}

static void test_reject_answered_at(void **state)
{
    fx *f = *state;
    assert_int_equal(feed(f, 1, "id", "a", "created_at", "2024-03-01T12:00:00Z", "lon", "1", "lat",
                          "2", "topic", "roads", "answered_at", "soon", NULL),
                     PM_OK);
    rejected_as(f, "answered_at", "unparsable date \"soon\"");
    assert_int_equal(feed(f, 1, "id", "a", "created_at", "2024-03-01T12:00:00Z", "lon", "1", "lat",
                          "2", "topic", "roads", "answered_at", "2024-03-01T11:59:59Z", NULL),
                     PM_OK);
    rejected_as(f, "answered_at", "answered before created");
    assert_int_equal(feed(f, 1, "id", "a", "created_at", "2024-03-01T12:00:00Z", "lon", "1", "lat",
                          "2", "topic", "roads", "answered_at", "2024-03-01T19:00:00+07:00", NULL),
                     PM_OK);
    accepted(f, 1);   /* answered the same second it was created */
}

static void test_reject_duplicate_id(void **state)
{
    fx *f = *state;
    assert_int_equal(feed_basic(f, "dup", "1", "2", "roads"), PM_OK);
    assert_int_equal(feed_basic(f, "dup", "3", "4", "ecology"), PM_OK);
    assert_int_equal(pm_complaints_count(f->cs), 1);
    assert_true(pm_complaints_lon_at(f->cs, 0) == 1);
    assert_int_equal(f->nrj, 1);
    assert_string_equal(f->rj[0].field, "id");
    assert_string_equal(f->rj[0].reason, "duplicate id");
    assert_string_equal(f->rj[0].id, "dup");
    assert_int_equal(pm_ctx_errcode(f->ctx), PM_OK);   /* a reject is not an error */
    counts_are(f, 2, 1, 1);
}

/* The first failing check is the one reported. */
static void test_first_failure_wins(void **state)
{
    fx *f = *state;
    assert_int_equal(feed(f, 1, "id", "a", "created_at", "bad", "lon", "x", "lat", "y", "topic", "?",
                          "answered_at", "bad", NULL),
                     PM_OK);
    rejected_as(f, "created_at", "unparsable date \"bad\"");
    assert_int_equal(feed(f, 1, "id", "a", "created_at", "2024-03-01", "lon", "x", "topic", "?",
                          "executor", "\xFF", NULL),
                     PM_OK);
    rejected_as(f, "executor", "bad UTF-8");
    assert_int_equal(feed(f, 1, "id", "a", "created_at", "2024-03-01", "lon", "200", "lat", "0",
                          "topic", "?", NULL),
                     PM_OK);
    rejected_as(f, "lon", "lon out of range");
}

/* ---- Open311 ------------------------------------------------------------- */

static int feed_open311(fx *f, const char *id, const char *status, const char *closed_at)
{
    return feed(f, 1, "service_request_id", id, "requested_datetime", "2010-04-14T06:37:38-08:00",
                "updated_datetime", "2010-04-14T15:37:38-08:00", "status", status, "closed_at",
                closed_at, "lat", "37.76", "long", "-122.46", "service_name", "Дороги", NULL);
}

static void test_open311_closed_uses_updated(void **state)
{
    fx *f = *state;
    assert_int_equal(feed_open311(f, "1", "closed", ""), PM_OK);
    assert_int_equal(feed_open311(f, "2", "CLOSED", ""), PM_OK);
    accepted(f, 2);
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(pm_complaints_answered_at(f->cs, i) - pm_complaints_created_at(f->cs, i),
                         9 * 3600);
}

static void test_open311_open_has_no_answer(void **state)
{
    fx *f = *state;
    assert_int_equal(feed_open311(f, "1", "open", ""), PM_OK);
    accepted(f, 1);
    assert_int_equal(pm_complaints_answered_at(f->cs, 0), PM_TIME_NONE);
}

static void test_open311_answered_at_wins(void **state)
{
    fx *f = *state;
    assert_int_equal(feed_open311(f, "1", "closed", "2010-04-14T07:37:38-08:00"), PM_OK);
    accepted(f, 1);
    assert_int_equal(pm_complaints_answered_at(f->cs, 0) - pm_complaints_created_at(f->cs, 0),
                     3600);
}

/* ---- counts and callbacks ------------------------------------------------ */

static void test_reader_rejects_counted(void **state)
{
    fx *f = *state;
    const pm_record_sink *sink = pm_intake_sink(f->in);
    assert_int_equal(sink->reject(sink->user, 9, NULL, NULL, "unterminated quote"), 0);
    assert_int_equal(feed_basic(f, "a", "1", "2", "roads"), PM_OK);
    counts_are(f, 2, 1, 1);
    assert_int_equal(f->rj[0].line, 9);
    assert_string_equal(f->rj[0].reason, "unterminated quote");
}

static void test_reject_callback_stops(void **state)
{
    fx *f = *state;
    f->stop_with = PM_E_IO;
    assert_int_equal(feed_basic(f, "a", "", "", "roads"), PM_E_IO);
    const pm_record_sink *sink = pm_intake_sink(f->in);
    assert_int_equal(sink->reject(sink->user, 9, NULL, NULL, "broken"), PM_E_IO);
    counts_are(f, 2, 0, 2);
}

static void test_counts_mixed(void **state)
{
    fx *f = *state;
    feed_basic(f, "a", "1", "2", "roads");
    feed_basic(f, "b", "1", "", "roads");
    feed_basic(f, "c", "1", "2", "nope");
    feed_basic(f, "a", "1", "2", "roads");
    feed_basic(f, "d", "1", "2", "ЖКХ");
    counts_are(f, 5, 2, 3);
    assert_int_equal(f->nrj, 3);
}

/* ---- mappings ------------------------------------------------------------ */

static void test_default_utc_offset(void **state)
{
    fx *f = *state;
    pm_mapping_set_utc_offset(f->m, 25200);
    intake_start(f);
    assert_int_equal(feed(f, 1, "id", "a", "created_at", "2024-03-01 12:00", "lon", "1", "lat", "2",
                          "topic", "roads", NULL),
                     PM_OK);
    accepted(f, 1);
    assert_int_equal(pm_complaints_created_at(f->cs, 0), 1709269200LL);   /* 05:00Z */
}

/* The row of nyc311_sample_2011.csv, with its real columns. */
static int feed_nyc(fx *f, const char *key, const char *created, const char *closed,
                    const char *type, const char *lat, const char *lon)
{
    return feed(f, 2, "Unique Key", key, "Created Date", created, "Closed Date", closed, "Agency",
                "NYPD", "Agency Name", "New York City Police Department", "Complaint Type", type,
                "Descriptor", "Loud Music/Party", "Location Type", "Residential Building/House",
                "Incident Zip", "11226", "Status", "Closed", "Due Date", "03/15/2011 07:44:00 AM",
                "Resolution Action Updated Date", "03/15/2011 01:30:00 AM", "Borough", "BROOKLYN",
                "X Coordinate (State Plane)", "996180", "Y Coordinate (State Plane)", "175470",
                "Open Data Channel Type", "PHONE", "Latitude", lat, "Longitude", lon, "Location",
                "(40.64, -73.96)", NULL);
}

static void test_nyc_mapping_row(void **state)
{
    fx *f = *state;
    use_mapping(f, NYC_MAPPING);
    assert_int_equal(feed_nyc(f, "19961837", "03/14/2011 11:44:00 PM", "03/15/2011 01:30:00 AM",
                              "Noise - Residential", "40.64102410484432", "-73.96226301733087"),
                     PM_OK);
    accepted(f, 1);
    char buf[21];
    pm_time_format_utc(pm_complaints_created_at(f->cs, 0), buf);
    assert_string_equal(buf, "2011-03-15T04:44:00Z");
    pm_time_format_utc(pm_complaints_answered_at(f->cs, 0), buf);
    assert_string_equal(buf, "2011-03-15T06:30:00Z");
    assert_int_equal(pm_complaints_topic(f->cs)[0], HOUSING);
    assert_true(pm_complaints_lat_at(f->cs, 0) == 40.64102410484432);
    assert_true(pm_complaints_lon_at(f->cs, 0) == -73.96226301733087);
    assert_string_equal(pm_complaints_id(f->cs, 0), "19961837");
    const pm_dict_col cols[] = {PM_DICT_SOURCE, PM_DICT_EXECUTOR, PM_DICT_STATUS};
    const char *want[] = {"nyc311", "NYPD", "Closed"};
    for (int i = 0; i < 3; i++)
        assert_string_equal(
            pm_complaints_dict_str(f->cs, cols[i], pm_complaints_dict_at(f->cs, cols[i], 0)),
            want[i]);
}

static void test_nyc_mapping_topics(void **state)
{
    fx *f = *state;
    use_mapping(f, NYC_MAPPING);
    static const struct { const char *type; int topic; } types[] = {
        {"Street Condition", ROADS},   {"Sanitation Condition", ECOLOGY}, {"HEATING", HOUSING},
        {"heating", HOUSING},          {"Some New Type", OTHER},          {"Дороги", ROADS},
    };
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        char key[8];
        snprintf(key, sizeof key, "k%zu", i);
        assert_int_equal(feed_nyc(f, key, "10/31/2013 02:08:41 AM", "", types[i].type, "40.7",
                                  "-73.8"),
                         PM_OK);
        accepted(f, i + 1);
        if (pm_complaints_topic(f->cs)[i] != types[i].topic)
            fail_msg("%s → topic %d", types[i].type, pm_complaints_topic(f->cs)[i]);
        assert_int_equal(pm_complaints_answered_at(f->cs, i), PM_TIME_NONE);
    }
}

static void test_nyc_mapping_rejects(void **state)
{
    fx *f = *state;
    use_mapping(f, NYC_MAPPING);
    assert_int_equal(feed_nyc(f, "1", "03/14/2011 11:44:00 PM", "", "Noise", "", ""), PM_OK);
    rejected_as(f, "lon,lat", "no coordinates and no district code");
    assert_int_equal(feed_nyc(f, "2", "2011-03-14 23:44", "", "Noise", "40.7", "-73.9"), PM_OK);
    accepted(f, 1);   /* ISO 8601 is still understood */
    assert_int_equal(pm_complaints_created_at(f->cs, 0), 1300164240LL);
    assert_int_equal(feed_nyc(f, "3", "14/03/2011 11:44:00 PM", "", "Noise", "40.7", "-73.9"), PM_OK);
    assert_string_equal(f->rj[f->nrj - 1].reason, "unparsable date \"14/03/2011 11:44:00 PM\"");
    assert_int_equal(feed_nyc(f, "4", "03/14/2011 11:44:00 PM", "03/14/2011 11:43:59 PM", "Noise",
                              "40.7", "-73.9"),
                     PM_OK);
    assert_string_equal(f->rj[f->nrj - 1].reason, "answered before created");
}

static void test_mapped_column_missing_warns_once(void **state)
{
    fx *f = *state;
    use_mapping(f, NYC_MAPPING);
    f->warnings = 0;
    for (int i = 0; i < 3; i++)
        feed(f, 1, "Unique Key", "1", "Created Date", "03/14/2011 11:44:00 PM", NULL);
    assert_int_equal(f->warnings, 6);   /* once each: lon, lat, topic, status, answered_at, executor */
    assert_int_equal(f->nrj, 3);
}

static void test_ru_mapping_fixture(void **state)
{
    fx *f = *state;
    use_mapping(f, FIXTURES "ru_region.json");
    assert_int_equal(feed(f, 4, "Номер обращения", "ПОС-2024-000017", "Дата регистрации",
                          "01.03.2024 12:00", "Дата ответа", "04.03.2024 09:15", "Долгота",
                          "86,0877", "Широта", "55,3547", "Тематика", "Благоустройство территории",
                          "Исполнитель", "Администрация г. Кемерово", "Текст обращения",
                          "не читается \xFF", NULL),
                     PM_OK);
    accepted(f, 1);
    assert_int_equal(pm_complaints_created_at(f->cs, 0), 1709269200LL);
    assert_true(pm_complaints_lon_at(f->cs, 0) == 86.0877);
    assert_int_equal(pm_complaints_topic(f->cs)[0], HOUSING);
    assert_string_equal(pm_complaints_dict_str(f->cs, PM_DICT_SOURCE,
                                               pm_complaints_dict_at(f->cs, PM_DICT_SOURCE, 0)),
                        "ПОС");
}

/* Loading text as a mapping fails with code; the message names the file
 * and holds frag. */
static void mapping_fails(fx *f, const char *text, int code, const char *frag)
{
    char path[64];
    strcpy(path, "/tmp/pm_test_mapping_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "w");
    fputs(text, fp);
    fclose(fp);
    pm_mapping *m = (pm_mapping *)&m;
    int rc = pm_mapping_load(f->ctx, path, f->t, &m);
    const char *msg = pm_ctx_errmsg(f->ctx);
    if (rc != code || m != NULL || !strstr(msg, path) || !strstr(msg, frag))
        fail_msg("rc %d (expected %d): %s", rc, code, msg);
    unlink(path);
}

static void test_mapping_load_errors(void **state)
{
    fx *f = *state;
    mapping_fails(f, "[]", PM_E_INPUT, "not a JSON object");
    mapping_fails(f, "{\"colums\": {}}", PM_E_INPUT_VALUE, "unknown member \"colums\"");
    mapping_fails(f, "{\"columns\": {\"identifier\": \"Key\"}}", PM_E_INPUT_VALUE,
                  "unknown field \"identifier\"");
    mapping_fails(f, "{\"columns\": {\"id\": 3}}", PM_E_INPUT_VALUE, "\"id\" is not a non-empty string");
    mapping_fails(f, "{\"time_format\": \"%H:%M\"}", PM_E_INPUT_VALUE, "time_format");
    mapping_fails(f, "{\"time_format\": \"%Y-%m-%d %I:%M\"}", PM_E_INPUT_VALUE, "time_format");
    mapping_fails(f, "{\"time_format\": \"%Y-%m-%d %k\"}", PM_E_INPUT_VALUE, "time_format");
    mapping_fails(f, "{\"utc_offset\": \"7\"}", PM_E_INPUT_VALUE, "utc_offset");
    mapping_fails(f, "{\"utc_offset\": \"+25:00\"}", PM_E_INPUT_VALUE, "utc_offset");
    mapping_fails(f, "{\"decimal_comma\": 1}", PM_E_INPUT_VALUE, "decimal_comma");
    mapping_fails(f, "{\"topics\": {\"Pothole\": \"potholes\"}}", PM_E_INPUT_VALUE,
                  "topics: category \"Pothole\": no topic with code \"potholes\"");
    mapping_fails(f, "{\"default_topic\": \"misc\"}", PM_E_INPUT_VALUE, "default_topic \"misc\"");
    mapping_fails(f, "{\n\"source\": \"x\",\n}", PM_E_INPUT, ":3:");
}

static void test_mapping_offsets(void **state)
{
    fx *f = *state;
    static const char *const forms[] = {"{\"utc_offset\": \"+07:00\"}", "{\"utc_offset\": \"+0700\"}",
                                        "{\"utc_offset\": 25200}"};
    for (size_t i = 0; i < 3; i++) {
        char path[64];
        strcpy(path, "/tmp/pm_test_mapping_XXXXXX");
        int fd = mkstemp(path);
        FILE *fp = fdopen(fd, "w");
        fputs(forms[i], fp);
        fclose(fp);
        pm_mapping_free(f->m);
        assert_int_equal(pm_mapping_load(f->ctx, path, f->t, &f->m), PM_OK);
        unlink(path);
        intake_start(f);
        assert_int_equal(feed(f, 1, "id", "a", "created_at", "2024-03-01 12:00", "lon", "1", "lat",
                              "2", "topic", "roads", NULL),
                         PM_OK);
        assert_int_equal(pm_complaints_created_at(f->cs, 0), 1709269200LL);
    }
}

static void test_mapping_missing_file(void **state)
{
    fx *f = *state;
    pm_mapping *m = NULL;
    assert_int_equal(pm_mapping_load(f->ctx, "/nonexistent/map.json", f->t, &m), PM_E_IO);
    assert_null(m);
}

static void test_field_names(void **state)
{
    (void)state;
    assert_string_equal(pm_field_name(PM_F_ID), "id");
    assert_string_equal(pm_field_name(PM_F_CREATED_AT), "created_at");
    assert_string_equal(pm_field_name(PM_F_DISTRICT_CODE), "district_code");
    assert_string_equal(pm_field_name(PM_F_ANSWERED_AT), "answered_at");
}

/* ---- out of memory ------------------------------------------------------- */

static void test_record_out_of_memory(void **state)
{
    fx *f = *state;
    int rc = PM_E_NOMEM;
    long n = 1;
    for (; rc == PM_E_NOMEM; n++) {
        intake_start(f);
        pm_alloc_fail_at(n);
        rc = feed_basic(f, "a", "1", "2", "roads");
        pm_alloc_fail_at(0);
        if (rc == PM_E_NOMEM)
            counts_are(f, 0, 0, 0);
    }
    assert_int_equal(rc, PM_OK);
    assert_true(n > 2);
    counts_are(f, 1, 1, 0);
}

static void test_mapping_and_intake_out_of_memory(void **state)
{
    fx *f = *state;
    int rc = PM_E_NOMEM;
    for (long n = 1; rc == PM_E_NOMEM; n++) {
        pm_mapping *m = NULL;
        pm_intake *in = NULL;
        pm_topics *t = NULL;
        assert_int_equal(pm_topics_load(f->ctx, CATALOGUE, &t), PM_OK);
        pm_alloc_fail_at(n);
        rc = pm_mapping_load(f->ctx, NYC_MAPPING, t, &m);
        if (rc == PM_OK) {
            rc = pm_intake_new(f->ctx, t, m, f->cs, NULL, NULL, &in);
            if (rc == PM_E_NOMEM)
                assert_null(in);
        } else {
            assert_null(m);
        }
        pm_alloc_fail_at(0);
        pm_intake_free(in);
        pm_mapping_free(m);
        pm_topics_free(t);
    }
    assert_int_equal(rc, PM_OK);
}

/* A record split on ';' (a Russian Excel export, also from standard input)
 * has decimal commas; one split on ',' does not. */
static void test_semicolon_record_has_decimal_comma(void **state)
{
    fx *f = *state;
    const char *keys[] = {"id", "created_at", "lon", "lat", "topic"};
    const char *vals[] = {"s1", "2024-03-01T12:00:00+07:00", "86,0877", "55,3547", "roads"};
    pm_record rec = {.line = 2, .n = 5, .keys = keys, .values = vals, .delim = ';'};
    const pm_record_sink *sink = pm_intake_sink(f->in);
    assert_int_equal(sink->record(sink->user, &rec), PM_OK);
    assert_true(pm_complaints_lon_at(f->cs, 0) == 86.0877);
    rec.delim = ',';
    vals[0] = "s2";
    assert_int_equal(sink->record(sink->user, &rec), PM_OK);
    assert_int_equal(pm_complaints_count(f->cs), 1);
    assert_string_equal(f->rj[f->nrj - 1].reason, "unparsable number \"86,0877\"");
}

/* ---- reading files (needs geodata/records.c, csv_in.c, json_in.c) -------- */

static void test_read_semicolon_csv(void **state)
{
    fx *f = *state;
    assert_int_equal(pm_intake_read_path(f->ctx, f->in, FIXTURES "semicolon.csv", PM_FMT_AUTO), PM_OK);
    counts_are(f, 4, 3, 1);
    assert_true(pm_complaints_lon_at(f->cs, 0) == 86.0877);
    assert_true(pm_complaints_lat_at(f->cs, 0) == 55.3547);
    assert_int_equal(pm_complaints_topic(f->cs)[1], ROADS);
    assert_int_equal(pm_complaints_line(f->cs, 1), 3);
    assert_true(isnan(pm_complaints_lon_at(f->cs, 2)));
    assert_int_equal(f->rj[0].line, 4);
    assert_string_equal(f->rj[0].reason, "only one of lat/lon");
    /* the decimal comma was for that file only */
    assert_int_equal(feed_basic(f, "z", "1,5", "2", "roads"), PM_OK);
    assert_string_equal(f->rj[f->nrj - 1].reason, "unparsable number \"1,5\"");
}

static void test_read_ndjson(void **state)
{
    fx *f = *state;
    assert_int_equal(pm_intake_read_path(f->ctx, f->in, FIXTURES "complaints.ndjson", PM_FMT_AUTO),
                     PM_OK);
    counts_are(f, 4, 2, 2);
    assert_string_equal(pm_complaints_id(f->cs, 1), "n3");
    assert_int_equal(pm_complaints_topic(f->cs)[1], ROADS);
    assert_true(pm_complaints_answered_at(f->cs, 1) != PM_TIME_NONE);
    assert_string_equal(f->rj[0].reason, "unknown topic \"no such topic\"");
    assert_int_equal(f->rj[1].line, 3);   /* from the reader */
}

static void test_read_open311(void **state)
{
    fx *f = *state;
    use_mapping(f, FIXTURES "open311_mapping.json");
    assert_int_equal(pm_intake_read_path(f->ctx, f->in, FIXTURES "open311.json", PM_FMT_OPEN311),
                     PM_OK);
    counts_are(f, 4, 2, 2);
    assert_string_equal(pm_complaints_id(f->cs, 0), "638344");
    assert_int_equal(pm_complaints_topic(f->cs)[0], ROADS);
    assert_int_equal(pm_complaints_answered_at(f->cs, 0) - pm_complaints_created_at(f->cs, 0),
                     9 * 3600);
    assert_int_equal(pm_complaints_topic(f->cs)[1], OTHER);
    assert_int_equal(pm_complaints_answered_at(f->cs, 1), PM_TIME_NONE);
    assert_string_equal(f->rj[0].id, "638350");
    assert_string_equal(f->rj[0].reason, "answered before created");
}

static void test_read_missing_file(void **state)
{
    fx *f = *state;
    assert_int_equal(pm_intake_read_path(f->ctx, f->in, "/nonexistent.csv", PM_FMT_AUTO), PM_E_IO);
    counts_are(f, 0, 0, 0);
}

/* The real NYC samples, when the shared data is there. */
static void test_read_nyc_samples(void **state)
{
    fx *f = *state;
    static const struct { const char *path; uint64_t rows, no_coords; } files[] = {
        {"../shared/data/nyc311_sample_2011.csv", 999, 294},
        {"../shared/data/nyc311_sample_2013.csv", 199, 6},
    };
    if (access(files[0].path, R_OK) != 0) {
        print_message("skipped: ../shared/data not here\n");
        skip();
    }
    for (size_t i = 0; i < 2; i++) {
        use_mapping(f, NYC_MAPPING);
        assert_int_equal(pm_intake_read_path(f->ctx, f->in, files[i].path, PM_FMT_AUTO), PM_OK);
        pm_intake_counts c = pm_intake_counts_get(f->in);
        assert_int_equal(c.read, files[i].rows);
        assert_int_equal(c.rejected, files[i].no_coords);
        for (int r = 0; r < f->nrj && r < 32; r++)
            assert_string_equal(f->rj[r].reason, "no coordinates and no district code");
        const uint16_t *tp = pm_complaints_topic(f->cs);
        size_t other = 0;
        for (size_t k = 0; k < pm_complaints_count(f->cs); k++)
            other += tp[k] == OTHER;
        assert_true(other < pm_complaints_count(f->cs) / 4);
    }
}

/* ---- reading on two threads (pm_intake_set_threads) ------------------------ */

/* The file at path, emptied, with a CSV header line written. */
static FILE *open_csv(const char *path, const char *header)
{
    FILE *out = fopen(path, "wb");
    assert_non_null(out);
    fprintf(out, "%s\n", header);
    return out;
}

/* A CSV of n rows over several reader batches, with every kind of reject
 * spread through it: duplicate ids, bad dates, unknown topics, answers
 * before creation, rows the reader rejects itself, a NUL byte. */
static void write_mixed_csv(const char *path, int n)
{
    FILE *out = open_csv(path, "id,created_at,lon,lat,topic,source,status,answered_at,executor");
    for (int i = 0; i < n; i++) {
        int id = i % 997 == 5 ? i - 3 : i;   /* a duplicate now and then */
        const char *topic = i % 13 == 0 ? "roads" : i % 409 == 1 ? "no such topic" : "housing";
        const char *created = i % 311 == 2 ? "not a date" : "2024-03-01T12:00:00+07:00";
        const char *answered = i % 7 == 0 ? "" : i % 503 == 3 ? "2024-02-01T00:00:00Z"
                                                              : "2024-03-02T09:30:00+07:00";
        if (i % 2003 == 4)
            fprintf(out, "q%d,\"unterminated,1,2\n", i);   /* the reader's own reject */
        else if (i % 1999 == 6)
            fprintf(out, "z%d,a,b,c,d,e,f,g,h,i,j,k\n", i);   /* too many fields */
        else
            fprintf(out, "c%d,%s,%.6f,%.6f,%s,%s,%s,%s,\"Exec, %d\"\n", id, created,
                    86 + (i % 1000) * 1e-3, 55 + (i % 777) * 1e-3, topic,
                    i % 3 ? "vk" : "gosuslugi", i % 7 ? "answered" : "open", answered, i % 5);
    }
    fclose(out);
}

/* Every reject, in order, folded into one hash. */
typedef struct reject_trace {
    uint64_t n, hash;
    int stop_at;     /* return 7 at this reject (1-based), 0: never */
} reject_trace;

static void trace_add(reject_trace *t, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)(s ? s : "(null)"); ; p++) {
        t->hash = (t->hash ^ *p) * 1099511628211ULL;
        if (!*p)
            break;
    }
}

static int trace_reject(void *user, uint64_t line, const char *id, const char *field,
                        const char *reason)
{
    reject_trace *t = user;
    char ln[24];
    snprintf(ln, sizeof ln, "%llu", (unsigned long long)line);
    trace_add(t, ln);
    trace_add(t, id);
    trace_add(t, field);
    trace_add(t, reason);
    return ++t->n == (uint64_t)t->stop_at ? 7 : 0;
}

typedef struct read_result {
    int rc;
    char msg[512];
    pm_intake_counts counts;
    pm_complaints *cs;
    reject_trace trace;
} read_result;

/* Reads path into a new intake; allocation fail_at > 0 fails from then on
 * during the read. */
static void read_with(fx *f, const char *path, int threads, int stop_at, long fail_at,
                      read_result *r)
{
    memset(r, 0, sizeof *r);
    r->trace.stop_at = stop_at;
    r->cs = pm_complaints_new();
    pm_intake *in = NULL;
    assert_int_equal(pm_intake_new(f->ctx, f->t, f->m, r->cs, trace_reject, &r->trace, &in), PM_OK);
    pm_intake_set_threads(in, threads);
    pm_alloc_fail_at(fail_at);
    r->rc = pm_intake_read_path(f->ctx, in, path, PM_FMT_AUTO);
    pm_alloc_fail_at(0);
    snprintf(r->msg, sizeof r->msg, "%s", r->rc ? pm_ctx_errmsg(f->ctx) : "");
    r->counts = pm_intake_counts_get(in);
    pm_intake_free(in);
}

static void results_equal(const read_result *a, const read_result *b)
{
    assert_int_equal(a->rc, b->rc);
    assert_string_equal(a->msg, b->msg);
    assert_int_equal(a->counts.read, b->counts.read);
    assert_int_equal(a->counts.accepted, b->counts.accepted);
    assert_int_equal(a->counts.rejected, b->counts.rejected);
    assert_int_equal(a->trace.n, b->trace.n);
    assert_true(a->trace.hash == b->trace.hash);
    size_t n = pm_complaints_count(a->cs);
    assert_int_equal(n, pm_complaints_count(b->cs));
    for (size_t i = 0; i < n; i++) {
        double xa = pm_complaints_lon_at(a->cs, i), xb = pm_complaints_lon_at(b->cs, i);
        double ya = pm_complaints_lat_at(a->cs, i), yb = pm_complaints_lat_at(b->cs, i);
        assert_memory_equal(&xa, &xb, sizeof xa);
        assert_memory_equal(&ya, &yb, sizeof ya);
    }
    for (size_t i = 0; i < n; i++)
        assert_true(pm_complaints_created_at(a->cs, i) == pm_complaints_created_at(b->cs, i));
    for (size_t i = 0; i < n; i++)
        assert_true(pm_complaints_answered_at(a->cs, i) == pm_complaints_answered_at(b->cs, i));
    assert_memory_equal(pm_complaints_topic(a->cs), pm_complaints_topic(b->cs), n * 2);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(pm_complaints_line(a->cs, i), pm_complaints_line(b->cs, i));
    for (int k = 0; k < PM_DICT_N; k++) {
        pm_dict_column da = pm_complaints_dict(a->cs, k), db = pm_complaints_dict(b->cs, k);
        assert_int_equal(da.width, db.width);
        assert_memory_equal(da.v, db.v, n * da.width);
        assert_int_equal(pm_complaints_dict_count(a->cs, k), pm_complaints_dict_count(b->cs, k));
        for (size_t j = 0; j < pm_complaints_dict_count(a->cs, k); j++)
            assert_string_equal(pm_complaints_dict_str(a->cs, k, (uint32_t)j),
                                pm_complaints_dict_str(b->cs, k, (uint32_t)j));
    }
    for (size_t i = 0; i < n; i++)
        assert_string_equal(pm_complaints_id(a->cs, i), pm_complaints_id(b->cs, i));
}

static void results_free(read_result *a, read_result *b)
{
    pm_complaints_free(a->cs);
    pm_complaints_free(b->cs);
}

/* Reads path on one thread into *one and on two into *two, and checks
 * that they agree in everything. */
static void read_both(fx *f, const char *path, int stop_at, read_result *one, read_result *two)
{
    read_with(f, path, 1, stop_at, 0, one);
    read_with(f, path, 2, stop_at, 0, two);
    results_equal(one, two);
}

static void temp_path(char *path, size_t n)
{
    snprintf(path, n, "/tmp/pm_test_intake_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
}

/* read_both on the temporary file at path, which is then removed; both
 * reads succeed. */
static void read_both_ok(fx *f, const char *path, read_result *one, read_result *two)
{
    read_both(f, path, 0, one, two);
    unlink(path);
    assert_int_equal(one->rc, PM_OK);
}

static void test_threaded_read_equals_one_thread(void **state)
{
    fx *f = *state;
    char path[64];
    temp_path(path, sizeof path);
    write_mixed_csv(path, 30000);
    read_result one, two;
    read_both_ok(f, path, &one, &two);
    assert_true(one.counts.rejected > 100 && one.counts.accepted > 25000);
    results_free(&one, &two);
}

/* The reader sends a dictionary value's string once, then its index in
 * its list of values seen: two threads build the same dictionaries as
 * one, in the same order, also when a value is first seen on a row that
 * the adding thread rejects (a duplicate id: the value must not be added
 * then), when the reader's list is full (more than 65 535 executors) and
 * for empty values. */
static void test_threaded_read_dictionaries_equal_one_thread(void **state)
{
    fx *f = *state;
    char path[64];
    temp_path(path, sizeof path);
    FILE *out = open_csv(path, "id,created_at,lon,lat,topic,source,status,executor,district_code");
    int n = 70000;
    for (int i = 0; i < n; i++) {
        const char *source = i == 10 || i == 20 ? "first on a duplicate"
                             : i == 15          ? "later"
                             : i % 2            ? "vk"
                                                : "ok";
        char exec[32] = "", code[16] = "";
        if (i >= 100)
            snprintf(exec, sizeof exec, "Исполнитель %d", i);
        else if (i % 2)
            snprintf(exec, sizeof exec, "E%d", i % 7);
        if (i % 3)
            snprintf(code, sizeof code, "K%d", i % 4);
        fprintf(out, "d%d,2024-03-01T12:00:00Z,86.1,55.3,housing,%s,open,%s,%s\n",
                i == 10 ? 3 : i, source, exec, code);
    }
    fclose(out);
    read_result one, two;
    read_both_ok(f, path, &one, &two);
    assert_int_equal(one.counts.rejected, 1);
    const char *want[] = {"ok", "vk", "later", "first on a duplicate"};
    assert_int_equal(pm_complaints_dict_count(two.cs, PM_DICT_SOURCE), 4);
    for (uint32_t k = 0; k < 4; k++)
        assert_string_equal(pm_complaints_dict_str(two.cs, PM_DICT_SOURCE, k), want[k]);
    assert_int_equal(pm_complaints_dict_count(two.cs, PM_DICT_EXECUTOR), 7 + (n - 100));
    assert_int_equal(pm_complaints_dict_count(two.cs, PM_DICT_DISTRICT_CODE), 4);
    assert_int_equal(pm_complaints_dict_at(two.cs, PM_DICT_EXECUTOR, 0), PM_NONE);
    assert_int_equal(pm_complaints_dict_at(two.cs, PM_DICT_DISTRICT_CODE, 0), PM_NONE);
    results_free(&one, &two);
}

/* A file whose first MiB misleads (long texts, then short rows): the
 * room made from it runs out, and the columns grow during the read.  The
 * helper that faults the columns in ahead stops before that, and the read
 * is the same as on one thread. */
static void test_threaded_read_grows_past_its_estimate(void **state)
{
    fx *f = *state;
    char path[64];
    temp_path(path, sizeof path);
    FILE *out = open_csv(path, "id,created_at,lon,lat,topic,source,text");
    char text[1001];
    memset(text, 'x', 1000);
    text[1000] = '\0';
    int n = 120000;
    for (int i = 0; i < n; i++)
        fprintf(out, "g%d,2024-03-01T12:00:00Z,%.4f,55.3,housing,vk,%s\n", i,
                86 + i % 1000 * 1e-4, i < 1500 ? text : "");
    fclose(out);
    assert_true(pm_records_estimate(path, PM_FMT_AUTO) < (uint64_t)n / 10);
    read_result one, two;
    read_both_ok(f, path, &one, &two);
    assert_int_equal(one.counts.accepted, n);
    results_free(&one, &two);
}

/* JSON goes through the same two threads. */
static void test_threaded_read_ndjson_equals_one_thread(void **state)
{
    fx *f = *state;
    read_result one, two;
    read_both(f, FIXTURES "complaints.ndjson", 0, &one, &two);
    assert_int_equal(one.counts.read, 4);
    results_free(&one, &two);
}

/* A reject callback that stops the read (a rejects file that cannot be
 * written) stops it at the same record, with its code. */
static void test_threaded_read_stops_where_one_thread_stops(void **state)
{
    fx *f = *state;
    char path[64];
    temp_path(path, sizeof path);
    write_mixed_csv(path, 30000);
    read_result one, two;
    read_both(f, path, 150, &one, &two);
    unlink(path);
    assert_int_equal(one.rc, 7);
    assert_int_equal(one.trace.n, 150);
    assert_true(one.counts.read < 30000);
    results_free(&one, &two);
}

static void test_threaded_read_missing_file(void **state)
{
    fx *f = *state;
    read_result one, two;
    read_both(f, "/nonexistent.csv", 0, &one, &two);
    assert_int_equal(two.rc, PM_E_IO);
    results_free(&one, &two);
}

/* Out of memory on either thread, at any point: a clean PM_E_NOMEM (no
 * leak, no hang: the tests run under ASan), and in the end a full read. */
static void test_threaded_read_survives_every_allocation_failure(void **state)
{
    fx *f = *state;
    char path[64];
    temp_path(path, sizeof path);
    write_mixed_csv(path, 9000);
    read_result want;
    read_with(f, path, 1, 0, 0, &want);
    int rc = PM_E_NOMEM;
    long n = 1;
    for (; rc != PM_OK && n < 100000; n += 1 + n / 16) {
        read_result got;
        read_with(f, path, 2, 0, n, &got);
        rc = got.rc;
        if (rc == PM_OK)
            results_equal(&want, &got);
        else
            assert_int_equal(rc, PM_E_NOMEM);
        pm_complaints_free(got.cs);
    }
    unlink(path);
    assert_int_equal(rc, PM_OK);
    pm_complaints_free(want.cs);
}

/* The intake looks a CSV file's columns up once (the reader says the keys
 * stay the same); a second file through the same sink, with its columns in
 * another order, is looked up afresh. */
/* What the block callback saw. */
typedef struct block_seen {
    const pm_complaints *cs;
    size_t calls, next;   /* next: where the next block must start */
    int bad;              /* a block out of order, or not complete when handed over */
    size_t fail_on;       /* return PM_E_IO on this call (1-based), 0: never */
} block_seen;

static int on_block(void *user, size_t from, size_t to)
{
    block_seen *b = user;
    b->calls++;
    if (from != b->next || to - from != 1000 || pm_complaints_count(b->cs) != to)
        b->bad = 1;
    b->next = to;
    return b->calls == b->fail_on ? PM_E_IO : PM_OK;
}

/* Blocks come in order, each of the size asked and complete, on one thread
 * and on two; the rest (fewer than a block) is left to the caller; a
 * failing callback stops the read with its code. */
static void test_blocks_are_handed_over_while_reading(void **state)
{
    fx *f = *state;
    char path[64];
    temp_path(path, sizeof path);
    write_mixed_csv(path, 30000);
    for (int threads = 1; threads <= 2; threads++) {
        for (int fail = 0; fail < 2; fail++) {
            pm_complaints *cs = pm_complaints_new();
            pm_intake *in = NULL;
            reject_trace tr = {0};
            assert_int_equal(pm_intake_new(f->ctx, f->t, f->m, cs, trace_reject, &tr, &in),
                             PM_OK);
            pm_intake_set_threads(in, threads);
            block_seen b = {.cs = cs, .fail_on = fail ? 5 : 0};
            pm_intake_set_block(in, 1000, on_block, &b);
            int rc = pm_intake_read_path(f->ctx, in, path, PM_FMT_AUTO);
            assert_false(b.bad);
            if (fail) {
                assert_int_equal(rc, PM_E_IO);
                assert_int_equal(b.calls, 5);
            } else {
                assert_int_equal(rc, PM_OK);
                size_t n = pm_complaints_count(cs);
                assert_true(n > 25000);
                assert_int_equal(b.calls, n / 1000);
                assert_int_equal(b.next, n / 1000 * 1000);
            }
            pm_intake_free(in);
            pm_complaints_free(cs);
        }
    }
    unlink(path);
}

static void test_columns_are_looked_up_again_for_each_file(void **state)
{
    fx *f = *state;
    static const char *const files[] = {
        "id,created_at,lon,lat,topic\n"
        "a,2024-03-01T12:00:00+07:00,86.1,55.3,roads\n"
        "b,2024-03-01T12:00:00+07:00,86.2,55.4,roads\n",
        "topic,lat,lon,created_at,id\n"
        "roads,54.1,87.1,2024-03-01T12:00:00+07:00,c\n"
        "roads,54.2,87.2,2024-03-01T12:00:00+07:00,d\n",
    };
    for (int i = 0; i < 2; i++) {
        FILE *in = tmpfile();
        assert_non_null(in);
        fputs(files[i], in);
        rewind(in);
        assert_int_equal(pm_csv_read(f->ctx, in, "in.csv", 0, pm_intake_sink(f->in), NULL), PM_OK);
        fclose(in);
    }
    accepted(f, 4);
    const double want_lon[] = {86.1, 86.2, 87.1, 87.2}, want_lat[] = {55.3, 55.4, 54.1, 54.2};
    for (size_t i = 0; i < 4; i++) {
        assert_float_equal(pm_complaints_lon_at(f->cs, i), want_lon[i], 1e-12);
        assert_float_equal(pm_complaints_lat_at(f->cs, i), want_lat[i], 1e-12);
    }
    assert_string_equal(pm_complaints_id(f->cs, 3), "d");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/* An optional argument is a cmocka test filter (tools/valgrind.sh). */
int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        T(test_columns_are_looked_up_again_for_each_file),
        T(test_blocks_are_handed_over_while_reading),
        T(test_threaded_read_equals_one_thread),
        T(test_threaded_read_dictionaries_equal_one_thread),
        T(test_threaded_read_grows_past_its_estimate),
        T(test_threaded_read_ndjson_equals_one_thread),
        T(test_threaded_read_stops_where_one_thread_stops),
        T(test_threaded_read_missing_file),
        T(test_threaded_read_survives_every_allocation_failure),
        T(test_canonical_fields),
        T(test_values_trimmed_and_optional_absent),
        T(test_aliases_open311_names),
        T(test_aliases_case_insensitive),
        T(test_exact_key_before_case_insensitive),
        T(test_canonical_before_alias_empty_falls_back),
        T(test_topic_tries_each_candidate),
        T(test_topic_answers_repeat),
        T(test_text_and_author_never_read),
        T(test_changing_key_sets),
        T(test_reject_missing_id),
        T(test_reject_bad_utf8),
        T(test_reject_created_at),
        T(test_reject_long_value_quoted_short),
        T(test_no_coordinates),
        T(test_only_one_coordinate),
        T(test_unparsable_numbers),
        T(test_non_finite_numbers),
        T(test_number_syntax_accepted),
        T(test_decimal_comma),
        T(test_swapped_coordinates),
        T(test_out_of_range),
        T(test_null_island),
        T(test_reject_topic),
        T(test_reject_answered_at),
        T(test_reject_duplicate_id),
        T(test_first_failure_wins),
        T(test_open311_closed_uses_updated),
        T(test_open311_open_has_no_answer),
        T(test_open311_answered_at_wins),
        T(test_reader_rejects_counted),
        T(test_reject_value_longer_than_16_mib),
        T(test_reject_callback_stops),
        T(test_counts_mixed),
        T(test_default_utc_offset),
        T(test_nyc_mapping_row),
        T(test_nyc_mapping_topics),
        T(test_nyc_mapping_rejects),
        T(test_mapped_column_missing_warns_once),
        T(test_ru_mapping_fixture),
        T(test_mapping_load_errors),
        T(test_mapping_offsets),
        T(test_mapping_missing_file),
        T(test_field_names),
        T(test_record_out_of_memory),
        T(test_mapping_and_intake_out_of_memory),
        T(test_read_semicolon_csv),
        T(test_semicolon_record_has_decimal_comma),
        T(test_read_ndjson),
        T(test_read_open311),
        T(test_read_missing_file),
        T(test_read_nyc_samples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
