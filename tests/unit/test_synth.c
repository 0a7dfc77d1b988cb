/* test_synth.c — the synthetic complaint generator (engine/synth.c).
 *
 * One run of 20 000 rows over twelve whole weeks in UTC+7, in two square
 * districts with five towns, is made once and checked by most tests:
 * determinism, counts, rhythms, shares, validity of clean rows and the
 * dirty kinds.  Smaller runs check errors, out-of-memory and golden rows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../engine/pm_alloc.h"
#include "../../engine/pm_synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_ROWS 20000
#define OFFSET_S (7 * 3600L)
/* 2025-01-06T00:00:00+07:00, a Monday. */
#define START_S (1736121600LL - OFFSET_S)
#define DAYS 84


static const char *const TOPICS[] = {"housing", "roads", "transport", "health",
                                     "social", "education", "ecology", "construction",
                                     "energy", "labour", "industry", "other"};
static const double WEIGHTS[] = {0.34, 0.18, 0.08, 0.08, 0.07, 0.06,
                                 0.06, 0.04, 0.04, 0.02, 0.01, 0.02};
#define N_TOPICS (sizeof TOPICS / sizeof TOPICS[0])

static const pm_synth_town TOWNS[] = {
    {86.10, 54.40, 1}, {86.50, 54.70, 1}, {86.90, 54.20, 1}, {87.30, 55.10, 1}, {87.70, 54.50, 1}};
#define N_TOWNS (sizeof TOWNS / sizeof TOWNS[0])

typedef struct rows {
    pm_synth_row *r;
    size_t n, cap, stop_after;
} rows;

typedef struct fixture {
    pm_ctx *ctx;
    pm_districts *ds;
    pm_synth_opts o;
    rows main;
} fixture;

static int collect(void *user, const pm_synth_row *row)
{
    rows *rs = user;
    if (rs->stop_after && rs->n == rs->stop_after)
        return 42;
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? 2 * rs->cap : 1024;
        rs->r = realloc(rs->r, rs->cap * sizeof *rs->r);
        assert_non_null(rs->r);
    }
    rs->r[rs->n++] = *row; /* its pointers are static, ours or the districts' */
    return 0;
}

static pm_districts *make_districts(pm_ctx *ctx)
{
    static const char *const wkt[2] = {
        "POLYGON((86 54, 87 54, 87 55, 86 55, 86 54))",
        "POLYGON((87 54, 88 54, 88 55.5, 87 55.5, 87 54))"};
    static const char *const ids[2] = {"RU-TST-001", "RU-TST-002"};
    GEOSContextHandle_t h = pm_ctx_geos(ctx);
    GEOSWKTReader *rd = GEOSWKTReader_create_r(h);
    pm_districts *ds = pm_districts_new(ctx);
    assert_non_null(ds);
    for (int i = 0; i < 2; i++) {
        GEOSGeometry *g = GEOSWKTReader_read_r(h, rd, wkt[i]);
        assert_non_null(g);
        assert_int_equal(pm_districts_add(ctx, ds, ids[i], NULL, "RU-TST", NAN, g), PM_OK);
    }
    GEOSWKTReader_destroy_r(h, rd);
    assert_int_equal(pm_districts_freeze(ctx, ds), PM_OK);
    return ds;
}

static int run(fixture *f, const pm_synth_opts *o, rows *out)
{
    memset(out, 0, sizeof *out);
    return pm_synth_run(f->ctx, o, TOWNS, N_TOWNS, f->ds, TOPICS, WEIGHTS, N_TOPICS, collect,
                        out);
}

static int group_setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->ctx = pm_ctx_new();
    f->ds = make_districts(f->ctx);
    pm_synth_opts_default(&f->o);
    f->o.seed = 20250106;
    f->o.n = N_ROWS;
    f->o.start = START_S;
    f->o.days = DAYS;
    f->o.utc_offset_s = OFFSET_S;
    f->o.no_coords_share = 0.05;
    f->o.dirty_share = 0.05;
    if (run(f, &f->o, &f->main) != PM_OK)
        return -1;
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    fixture *f = *state;
    free(f->main.r);
    pm_districts_free(f->ctx, f->ds);
    pm_ctx_free(f->ctx);
    free(f);
    return 0;
}

/* ---- helpers: parse what the rows say -------------------------------- */

static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

typedef struct when {
    int64_t utc;   /* seconds */
    int wday;      /* local, Monday = 0 */
    int hour;      /* local */
    long off_s;
} when;

/* Parses 2025-03-01T09:15:42+07:00 strictly; 0 when it does not. */
static int parse_time(const char *s, when *w)
{
    int y, mo, d, h, mi, se, oh, om, len = 0;
    char sign;
    if (strlen(s) != 25 ||
        sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c%2d:%2d%n", &y, &mo, &d, &h, &mi, &se, &sign, &oh,
               &om, &len) != 9 || len != 25 || (sign != '+' && sign != '-'))
        return 0;
    int64_t day = days_from_civil(y, mo, d);
    w->off_s = (sign == '-' ? -1 : 1) * (oh * 3600L + om * 60L);
    w->utc = day * 86400 + h * 3600 + mi * 60 + se - w->off_s;
    w->wday = (int)(((day + 3) % 7 + 7) % 7);
    w->hour = h;
    return 1;
}

/* A coordinate written with exactly 6 decimals. */
static int parse_coord(const char *s, double *v)
{
    const char *dot = strchr(s, '.');
    char *end;
    *v = strtod(s, &end);
    return s[0] && *end == '\0' && dot && strlen(dot + 1) == 6;
}

static int is_clean(const pm_synth_row *r) { return r->dirty == PM_SYNTH_CLEAN; }

static void row_line(const pm_synth_row *r, char *buf, size_t size)
{
    snprintf(buf, size, "%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%d", r->id, r->created_at, r->lon,
             r->lat, r->topic, r->source, r->status, r->answered_at, r->executor,
             r->district_code, r->text, r->dirty);
}

static int rows_equal(const pm_synth_row *a, const pm_synth_row *b)
{
    char x[1024], y[1024];
    row_line(a, x, sizeof x);
    row_line(b, y, sizeof y);
    return strcmp(x, y) == 0;
}

/* ---- tests on the main run ------------------------------------------- */

static void test_same_seed_gives_identical_rows(void **state)
{
    fixture *f = *state;
    rows again;
    assert_int_equal(run(f, &f->o, &again), PM_OK);
    assert_int_equal(again.n, f->main.n);
    for (size_t i = 0; i < again.n; i++)
        assert_true(rows_equal(&again.r[i], &f->main.r[i]));
    free(again.r);
}

static void test_different_seed_gives_different_rows(void **state)
{
    fixture *f = *state;
    pm_synth_opts o = f->o;
    o.seed++;
    o.n = 1000;
    rows other;
    assert_int_equal(run(f, &o, &other), PM_OK);
    size_t same_time = 0;
    for (size_t i = 0; i < other.n; i++)
        same_time += strcmp(other.r[i].created_at, f->main.r[i].created_at) == 0;
    assert_true(same_time < 10);
    free(other.r);
}

static void test_rows_do_not_depend_on_n(void **state)
{
    fixture *f = *state;
    pm_synth_opts o = f->o;
    o.n = 300;
    rows few;
    assert_int_equal(run(f, &o, &few), PM_OK);
    assert_int_equal(few.n, 300);
    for (size_t i = 0; i < few.n; i++)
        assert_true(rows_equal(&few.r[i], &f->main.r[i]));
    free(few.r);
}

static void test_count_and_ids(void **state)
{
    fixture *f = *state;
    assert_int_equal(f->main.n, N_ROWS);
    assert_string_equal(f->main.r[0].id, "c0000001");
    assert_string_equal(f->main.r[N_ROWS - 1].id, "c0020000");
    for (size_t i = 0; i < f->main.n; i++) {
        char want[32];
        snprintf(want, sizeof want, "c%07zu", i + 1);
        if (f->main.r[i].dirty != PM_SYNTH_DUP_ID)
            assert_string_equal(f->main.r[i].id, want);
    }
}

static void test_clean_rows_are_valid(void **state)
{
    fixture *f = *state;
    static const char *const sources[] = {"vk", "telegram", "ok", "gosuslugi", "reception",
                                          "hotline"};
    for (size_t i = 0; i < f->main.n; i++) {
        const pm_synth_row *r = &f->main.r[i];
        if (!is_clean(r))
            continue;
        when c, a;
        assert_true(parse_time(r->created_at, &c));
        assert_int_equal(c.off_s, OFFSET_S);
        assert_true(c.utc >= START_S && c.utc < START_S + DAYS * 86400LL);
        if (r->lon[0]) {
            double lon, lat;
            assert_true(parse_coord(r->lon, &lon));
            assert_true(parse_coord(r->lat, &lat));
            assert_true(lon >= -180 && lon <= 180 && lat >= -90 && lat <= 90);
            assert_string_equal(r->district_code, "");
        } else {
            assert_string_equal(r->lat, "");
            assert_true(strcmp(r->district_code, "RU-TST-001") == 0 ||
                        strcmp(r->district_code, "RU-TST-002") == 0);
        }
        if (strcmp(r->status, "answered") == 0) {
            assert_true(parse_time(r->answered_at, &a));
            assert_true(a.utc >= c.utc);
            assert_true(a.utc < START_S + DAYS * 86400LL);
        } else {
            assert_string_equal(r->status, "open");
            assert_string_equal(r->answered_at, "");
        }
        int known = 0;
        for (size_t k = 0; k < 6; k++)
            known |= strcmp(r->source, sources[k]) == 0;
        assert_true(known);
        assert_true(r->topic[0] && r->executor[0]);
        assert_true(strncmp(r->text, "Синтетическое обращение №", 24) == 0);
    }
}

static void test_topic_frequencies_match_weights(void **state)
{
    fixture *f = *state;
    size_t count[N_TOPICS] = {0}, clean = 0;
    for (size_t i = 0; i < f->main.n; i++) {
        if (!is_clean(&f->main.r[i]))
            continue;
        clean++;
        for (size_t k = 0; k < N_TOPICS; k++)
            if (strcmp(f->main.r[i].topic, TOPICS[k]) == 0)
                count[k]++;
    }
    for (size_t k = 0; k < N_TOPICS; k++) {
        double share = (double)count[k] / (double)clean;
        assert_true(fabs(share - WEIGHTS[k]) < 0.02);
    }
}

static void test_answers_mostly_within_24h(void **state)
{
    fixture *f = *state;
    size_t answered = 0, within_24h = 0, over_72h = 0;
    for (size_t i = 0; i < f->main.n; i++) {
        const pm_synth_row *r = &f->main.r[i];
        when c, a;
        if (!is_clean(r) || !r->answered_at[0])
            continue;
        assert_true(parse_time(r->created_at, &c));
        assert_true(parse_time(r->answered_at, &a));
        answered++;
        within_24h += a.utc - c.utc <= 86400;
        over_72h += a.utc - c.utc > 3 * 86400;
    }
    double share = (double)within_24h / (double)answered;
    assert_true(share >= 0.75 && share <= 0.90);
    assert_true((double)over_72h / (double)answered > 0.01);
}

static void test_open_rows_about_5_percent_and_late(void **state)
{
    fixture *f = *state;
    size_t clean = 0, open = 0, late = 0, late_open = 0;
    const int64_t last_day = START_S + (DAYS - 1) * 86400LL;
    for (size_t i = 0; i < f->main.n; i++) {
        const pm_synth_row *r = &f->main.r[i];
        when c;
        if (!is_clean(r))
            continue;
        assert_true(parse_time(r->created_at, &c));
        int is_open = strcmp(r->status, "open") == 0;
        clean++;
        open += is_open;
        if (c.utc >= last_day) {
            late++;
            late_open += is_open;
        }
    }
    double share = (double)open / (double)clean;
    assert_true(share >= 0.03 && share <= 0.07);
    assert_true(late > 50);
    assert_true((double)late_open / (double)late > 3 * share);
}

static void test_weekend_lower_than_weekdays(void **state)
{
    fixture *f = *state;
    size_t by_wday[7] = {0};
    for (size_t i = 0; i < f->main.n; i++) {
        when c;
        if (is_clean(&f->main.r[i]) && parse_time(f->main.r[i].created_at, &c))
            by_wday[c.wday]++;
    }
    double weekday = (by_wday[0] + by_wday[1] + by_wday[2] + by_wday[3] + by_wday[4]) / 5.0;
    double weekend = (by_wday[5] + by_wday[6]) / 2.0;
    assert_true(weekend / weekday > 0.5 && weekend / weekday < 0.7);
    for (int d = 1; d < 7; d++)
        assert_true(by_wday[0] > by_wday[d]); /* Monday highest */
}

static void test_daily_rhythm_in_local_time(void **state)
{
    fixture *f = *state;
    size_t by_hour[24] = {0};
    for (size_t i = 0; i < f->main.n; i++) {
        when c;
        if (is_clean(&f->main.r[i]) && parse_time(f->main.r[i].created_at, &c))
            by_hour[c.hour]++;
    }
    size_t night = by_hour[1] + by_hour[2] + by_hour[3] + by_hour[4];
    assert_true(by_hour[11] > 3 * night);
    assert_true(by_hour[11] > by_hour[15] && by_hour[19] > by_hour[15]);
    assert_true(by_hour[11] > by_hour[7] && by_hour[19] > by_hour[23]);
}

static void test_no_coords_share_as_configured(void **state)
{
    fixture *f = *state;
    size_t clean = 0, no_coords = 0;
    for (size_t i = 0; i < f->main.n; i++) {
        if (!is_clean(&f->main.r[i]))
            continue;
        clean++;
        no_coords += f->main.r[i].lon[0] == '\0';
    }
    double share = (double)no_coords / (double)clean;
    assert_true(fabs(share - f->o.no_coords_share) < 0.01);
}

/* Whether (lon, lat) is within 4 sigma of one of the towns. */
static int near_a_town(double lon, double lat, double sigma_m)
{
    for (size_t t = 0; t < N_TOWNS; t++) {
        double dx = (lon - TOWNS[t].lon) * 111320.0 * cos(TOWNS[t].lat * M_PI / 180);
        double dy = (lat - TOWNS[t].lat) * 111320.0;
        if (sqrt(dx * dx + dy * dy) < 4 * sigma_m)
            return 1;
    }
    return 0;
}

/* The share of clean rows with coordinates near a town. */
static double share_near_towns(const rows *g, double sigma_m)
{
    size_t with_coords = 0, near = 0;
    for (size_t i = 0; i < g->n; i++) {
        const pm_synth_row *r = &g->r[i];
        double lon, lat;
        if (!is_clean(r) || !r->lon[0])
            continue;
        assert_true(parse_coord(r->lon, &lon));
        assert_true(parse_coord(r->lat, &lat));
        with_coords++;
        near += near_a_town(lon, lat, sigma_m);
    }
    return (double)near / (double)with_coords;
}

/* The clustered rows, and the few background ones that fall near a town. */
static void test_cluster_share_as_configured(void **state)
{
    fixture *f = *state;
    double share = share_near_towns(&f->main, f->o.cluster_sigma_m);
    assert_true(share > f->o.cluster_share - 0.02 && share < f->o.cluster_share + 0.03);
}

static void test_dirty_rows_at_configured_share(void **state)
{
    fixture *f = *state;
    size_t by_kind[PM_SYNTH_DIRTY_N] = {0};
    for (size_t i = 0; i < f->main.n; i++)
        by_kind[f->main.r[i].dirty]++;
    double share = 1.0 - (double)by_kind[PM_SYNTH_CLEAN] / (double)f->main.n;
    assert_true(fabs(share - f->o.dirty_share) < 0.006);
    for (int k = 1; k < PM_SYNTH_DIRTY_N; k++)
        assert_true(by_kind[k] > 60); /* ≈ 143 each */
}

/* Every dirty row is bad in the documented way. */
static void test_dirty_rows_are_bad(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < f->main.n; i++) {
        const pm_synth_row *r = &f->main.r[i];
        double lon, lat;
        when c, a;
        switch (r->dirty) {
        case PM_SYNTH_SWAPPED: /* towns are at 86-88 E, 54-55 N: lon now < lat */
            assert_true(parse_coord(r->lon, &lon));
            assert_true(parse_coord(r->lat, &lat));
            assert_true(lon < lat);
            break;
        case PM_SYNTH_NO_TOPIC:
            assert_string_equal(r->topic, "");
            break;
        case PM_SYNTH_UNKNOWN_TOPIC:
            assert_string_equal(r->topic, "unknown_topic");
            break;
        case PM_SYNTH_BAD_DATE:
            assert_false(parse_time(r->created_at, &c));
            break;
        case PM_SYNTH_ANSWER_FIRST:
            assert_true(parse_time(r->created_at, &c));
            assert_true(parse_time(r->answered_at, &a));
            assert_true(a.utc < c.utc);
            break;
        case PM_SYNTH_DUP_ID:
            assert_true(i > 0 && strcmp(r->id, "c0000001") >= 0);
            assert_true(strtoul(r->id + 1, NULL, 10) <= i);
            break;
        case PM_SYNTH_LAT_95:
            assert_string_equal(r->lat, "95.000000");
            break;
        default:
            assert_int_equal(r->dirty, PM_SYNTH_CLEAN);
        }
    }
    assert_string_equal(pm_synth_dirty_name(PM_SYNTH_DUP_ID), "dup_id");
}

/* ---- small runs ---------------------------------------------------------- */

/* Pins the algorithm: these bytes must come out on every platform (rows of
 * the main run: clean, placed by code, and one of several dirty kinds). */
static const struct {
    size_t i;
    const char *line;
} GOLDEN[] = {
    {0, "c0000001|2025-03-10T11:54:37+07:00|86.908355|54.202813|transport|vk|answered|"
        "2025-03-10T21:31:27+07:00|Муниципальное транспортное предприятие||"
        "Синтетическое обращение №1: отменили пригородную электричку.|0"},
    {1, "c0000002|2025-01-07T21:42:20+07:00|86.101842|54.380106|roads|gosuslugi|answered|"
        "2025-01-07T23:26:01+07:00|Управление автомобильных дорог||"
        "Синтетическое обращение №2: яма на проезжей части.|0"},
    {5, "c0000006|2025-03-15T15:39:42+07:00|||ecology|vk|answered|2025-03-19T10:53:35+07:00|"
        "Региональный оператор по обращению с ТКО|RU-TST-002|"
        "Синтетическое обращение №6: запах гари по вечерам.|0"},
    {81, "c0000034|2025-03-28T09:08:19+07:00|86.142670|54.370607|roads|telegram|answered|"
         "2025-03-28T22:41:54+07:00|Департамент дорожного хозяйства||"
         "Синтетическое обращение №82: не работает светофор на перекрёстке.|6"},
    {122, "c0000123|2025-03-19T17:17:33+07:00|86.007524|95.000000|housing|gosuslugi|answered|"
          "2025-03-20T01:32:36+07:00|Государственная жилищная инспекция||"
          "Синтетическое обращение №123: протекает крыша в подъезде.|7"},
    {152, "c0000153|2025-02-08T11:08:13+07:00|86.106889|54.398413|housing|reception|answered|"
          "2025-02-07T18:29:07+07:00|Фонд капитального ремонта||"
          "Синтетическое обращение №153: протекает крыша в подъезде.|5"},
    {184, "c0000185|2025-03-05T23:30:05+07:00|86.123955|54.398267|unknown_topic|vk|answered|"
          "2025-03-08T04:34:01+07:00|Фонд капитального ремонта||"
          "Синтетическое обращение №185: протекает крыша в подъезде.|3"},
    {257, "c0000258|2025-02-23T09:33:08+07:00|54.233643|87.425086|housing|vk|answered|"
          "2025-02-23T14:40:38+07:00|Управляющая компания||"
          "Синтетическое обращение №258: нет горячей воды, просьба принять меры.|1"},
};

static void test_golden_rows(void **state)
{
    fixture *f = *state;
    for (size_t k = 0; k < sizeof GOLDEN / sizeof GOLDEN[0]; k++) {
        char line[1024];
        row_line(&f->main.r[GOLDEN[k].i], line, sizeof line);
        assert_string_equal(line, GOLDEN[k].line);
    }
}

static void test_negative_offset_is_written(void **state)
{
    fixture *f = *state;
    pm_synth_opts o = f->o;
    o.n = 50;
    o.utc_offset_s = -(5 * 3600L + 30 * 60);
    rows g;
    assert_int_equal(run(f, &o, &g), PM_OK);
    when c;
    assert_true(parse_time(g.r[0].created_at, &c));
    assert_int_equal(c.off_s, o.utc_offset_s);
    assert_non_null(strstr(g.r[0].created_at, "-05:30"));
    free(g.r);
}

/* Without districts the background is the towns' bounding box. */
static void test_towns_only(void **state)
{
    fixture *f = *state;
    pm_synth_opts o = f->o;
    o.n = 2000;
    o.no_coords_share = 0;
    o.cluster_share = 0.5;
    rows g;
    memset(&g, 0, sizeof g);
    assert_int_equal(pm_synth_run(f->ctx, &o, TOWNS, N_TOWNS, NULL, TOPICS, WEIGHTS, N_TOPICS,
                                  collect, &g), PM_OK);
    assert_int_equal(g.n, 2000);
    double share = share_near_towns(&g, o.cluster_sigma_m);
    assert_true(share > 0.45 && share < 0.6);
    for (size_t i = 0; i < g.n; i++) {
        double lon, lat;
        if (g.r[i].dirty)
            continue;
        assert_true(parse_coord(g.r[i].lon, &lon));
        assert_true(parse_coord(g.r[i].lat, &lat));
        assert_true(lon > 85.9 && lon < 87.9 && lat > 54.0 && lat < 55.3);
    }
    free(g.r);
}

/* Without towns every point is in a district's envelope. */
static void test_districts_only(void **state)
{
    fixture *f = *state;
    pm_synth_opts o = f->o;
    o.n = 500;
    rows g;
    memset(&g, 0, sizeof g);
    assert_int_equal(pm_synth_run(f->ctx, &o, NULL, 0, f->ds, TOPICS, WEIGHTS, N_TOPICS,
                                  collect, &g), PM_OK);
    size_t in_second = 0, with_coords = 0;
    for (size_t i = 0; i < g.n; i++) {
        double lon, lat;
        if (g.r[i].dirty || !g.r[i].lon[0])
            continue;
        with_coords++;
        assert_true(parse_coord(g.r[i].lon, &lon));
        assert_true(parse_coord(g.r[i].lat, &lat));
        assert_true(lon >= 86 && lon <= 88 && lat >= 54 && lat <= 55.5);
        in_second += lon >= 87;
    }
    /* the second district is 1.5 times the first: 60 % of the points */
    assert_true(in_second > 0.53 * with_coords && in_second < 0.67 * with_coords);
    free(g.r);
}

static void expect_usage(fixture *f, const pm_synth_opts *o, const pm_synth_town *towns,
                         size_t nt, const pm_districts *ds, size_t n_topics)
{
    rows g;
    memset(&g, 0, sizeof g);
    pm_ctx_clear_error(f->ctx);
    int rc = pm_synth_run(f->ctx, o, towns, nt, ds, TOPICS, WEIGHTS, n_topics, collect, &g);
    assert_int_equal(rc, PM_E_USAGE);
    assert_int_equal(pm_ctx_errcode(f->ctx), PM_E_USAGE);
    assert_true(strlen(pm_ctx_errmsg(f->ctx)) > 10);
    assert_int_equal(g.n, 0);
}

static void test_bad_options_are_usage_errors(void **state)
{
    fixture *f = *state;
    pm_synth_opts o = f->o;
    o.dirty_share = 1.5;
    expect_usage(f, &o, TOWNS, N_TOWNS, f->ds, N_TOPICS);
    o = f->o;
    o.days = 0;
    expect_usage(f, &o, TOWNS, N_TOWNS, f->ds, N_TOPICS);
    o = f->o;
    o.utc_offset_s = 7 * 3600 + 1;
    expect_usage(f, &o, TOWNS, N_TOWNS, f->ds, N_TOPICS);
    o = f->o;
    expect_usage(f, &o, TOWNS, N_TOWNS, f->ds, 0);             /* no topics */
    expect_usage(f, &o, NULL, 0, NULL, N_TOPICS);              /* nowhere to place */
    expect_usage(f, &o, TOWNS, N_TOWNS, NULL, N_TOPICS);       /* no_coords without ds */
    pm_synth_town bad = {200, 54, 1};
    o.no_coords_share = 0;
    expect_usage(f, &o, &bad, 1, NULL, N_TOPICS);
    assert_non_null(strstr(pm_ctx_errmsg(f->ctx), "town 0"));
}

static void test_emit_error_stops_the_run(void **state)
{
    fixture *f = *state;
    rows g;
    memset(&g, 0, sizeof g);
    g.stop_after = 10;
    int rc = pm_synth_run(f->ctx, &f->o, TOWNS, N_TOWNS, f->ds, TOPICS, WEIGHTS, N_TOPICS,
                          collect, &g);
    assert_int_equal(rc, 42);
    assert_int_equal(g.n, 10);
    free(g.r);
}

static void test_out_of_memory_fails_cleanly(void **state)
{
    fixture *f = *state;
    pm_synth_opts o = f->o;
    o.n = 20;
    int rc = PM_E_NOMEM;
    long k;
    for (k = 1; k < 100 && rc == PM_E_NOMEM; k++) {
        rows g;
        memset(&g, 0, sizeof g);
        pm_alloc_fail_at(k);
        rc = pm_synth_run(f->ctx, &o, TOWNS, N_TOWNS, f->ds, TOPICS, WEIGHTS, N_TOPICS,
                          collect, &g);
        pm_alloc_fail_at(0);
        if (rc == PM_E_NOMEM)
            assert_int_equal(g.n, 0);
        free(g.r);
    }
    assert_int_equal(rc, PM_OK);
    assert_true(k > 5); /* the topic, town, district and hour tables were each refused */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_gives_identical_rows),
        cmocka_unit_test(test_different_seed_gives_different_rows),
        cmocka_unit_test(test_rows_do_not_depend_on_n),
        cmocka_unit_test(test_count_and_ids),
        cmocka_unit_test(test_clean_rows_are_valid),
        cmocka_unit_test(test_topic_frequencies_match_weights),
        cmocka_unit_test(test_answers_mostly_within_24h),
        cmocka_unit_test(test_open_rows_about_5_percent_and_late),
        cmocka_unit_test(test_weekend_lower_than_weekdays),
        cmocka_unit_test(test_daily_rhythm_in_local_time),
        cmocka_unit_test(test_no_coords_share_as_configured),
        cmocka_unit_test(test_cluster_share_as_configured),
        cmocka_unit_test(test_dirty_rows_at_configured_share),
        cmocka_unit_test(test_dirty_rows_are_bad),
        cmocka_unit_test(test_golden_rows),
        cmocka_unit_test(test_negative_offset_is_written),
        cmocka_unit_test(test_towns_only),
        cmocka_unit_test(test_districts_only),
        cmocka_unit_test(test_bad_options_are_usage_errors),
        cmocka_unit_test(test_emit_error_stops_the_run),
        cmocka_unit_test(test_out_of_memory_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
