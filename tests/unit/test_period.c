/* test_period.c — local days, ISO weeks and months: the Irkutsk evening
 * that is already tomorrow, ISO week-numbering years around new year,
 * month boundaries in local time, period starts, and every day of
 * 1900–2100 against the C library's own calendar (gmtime_r, strftime
 * %G-W%V) as an independent oracle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../engine/pm_cube.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define HOUR 3600L
#define DAY 86400L

static const char *label(pm_period_kind k, int64_t t, long off, char *buf)
{
    pm_period_label(k, pm_period_of(k, t, off), buf);
    return buf;
}

static void irkutsk_evening_is_next_day(void **state)
{
    (void)state;
    char buf[16];
    int64_t t = 1740871800;   /* 2025-03-01T23:30:00Z */
    assert_string_equal(label(PM_PERIOD_DAY, t, 8 * HOUR, buf), "2025-03-02");
    assert_string_equal(label(PM_PERIOD_DAY, t, 0, buf), "2025-03-01");
    assert_int_equal(pm_period_of(PM_PERIOD_DAY, t, 0), 20148);
    assert_int_equal(pm_period_of(PM_PERIOD_DAY, t, 8 * HOUR), 20149);
}

static void iso_week_year_around_new_year(void **state)
{
    (void)state;
    char buf[16];
    /* 2024-12-30 (Monday) is in 2025-W01; 2024-12-29 (Sunday) in 2024-W52 */
    assert_string_equal(label(PM_PERIOD_WEEK, 1735560000, 0, buf), "2025-W01");
    assert_string_equal(label(PM_PERIOD_WEEK, 1735473600, 0, buf), "2024-W52");
    /* 2021-01-03 (Sunday) is in 2020-W53; 2021-01-04 starts 2021-W01 */
    assert_string_equal(label(PM_PERIOD_WEEK, 1609675200, 0, buf), "2020-W53");
    assert_string_equal(label(PM_PERIOD_WEEK, 1609718400, 0, buf), "2021-W01");
    /* one second before that Monday, UTC; but already Monday in Moscow */
    assert_string_equal(label(PM_PERIOD_WEEK, 1609718399, 0, buf), "2020-W53");
    assert_string_equal(label(PM_PERIOD_WEEK, 1609718399, 3 * HOUR, buf), "2021-W01");
}

static void week_zero_starts_monday_1970_01_05(void **state)
{
    (void)state;
    assert_int_equal(pm_period_start(PM_PERIOD_WEEK, 0, 0), 4 * DAY);
    assert_int_equal(pm_period_of(PM_PERIOD_WEEK, 4 * DAY, 0), 0);
    assert_int_equal(pm_period_of(PM_PERIOD_WEEK, 4 * DAY - 1, 0), -1);
    assert_int_equal(pm_period_start(PM_PERIOD_WEEK, 1, 7 * HOUR), 11 * DAY - 7 * HOUR);
}

static void month_boundaries_are_local(void **state)
{
    (void)state;
    char buf[16];
    /* 2025-01-31T20:00Z is 2025-02-01 03:00 in Novosibirsk (UTC+7) */
    assert_string_equal(label(PM_PERIOD_MONTH, 1738353600, 7 * HOUR, buf), "2025-02");
    assert_string_equal(label(PM_PERIOD_MONTH, 1738353600, 0, buf), "2025-01");
    /* 2025-03-01T03:00Z is still February at UTC-5 */
    assert_string_equal(label(PM_PERIOD_MONTH, 1740798000, -5 * HOUR, buf), "2025-02");
    assert_int_equal(pm_period_of(PM_PERIOD_MONTH, 1740798000, 0), 2025 * 12 + 2);
    /* the month starts at local midnight */
    assert_int_equal(pm_period_start(PM_PERIOD_MONTH, 2025 * 12 + 1, 7 * HOUR),
                     1738368000 - 7 * HOUR);   /* 2025-02-01T00:00Z − 7 h */
}

static void leap_days_and_before_1970(void **state)
{
    (void)state;
    char buf[16];
    assert_string_equal(label(PM_PERIOD_DAY, 951782400, 0, buf), "2000-02-29");
    assert_string_equal(label(PM_PERIOD_DAY, 4107538800 + HOUR, 0, buf), "2100-03-01");
    assert_string_equal(label(PM_PERIOD_DAY, -3600, 0, buf), "1969-12-31");
    assert_int_equal(pm_period_of(PM_PERIOD_DAY, -3600, 0), -1);
    assert_int_equal(pm_period_of(PM_PERIOD_DAY, -3600, 2 * HOUR), 0);
    assert_string_equal(label(PM_PERIOD_MONTH, -3600, 0, buf), "1969-12");
}

static void period_start_round_trips(void **state)
{
    (void)state;
    const long offsets[] = {0, 3 * HOUR, 8 * HOUR, 12 * HOUR, -5 * HOUR, 5 * HOUR + 30 * 60};
    for (int k = PM_PERIOD_DAY; k <= PM_PERIOD_MONTH; k++)
        for (size_t o = 0; o < sizeof offsets / sizeof *offsets; o++)
            for (int64_t p = -3000; p <= 30000; p += 7) {
                int64_t s = pm_period_start(k, p, offsets[o]);
                assert_int_equal(pm_period_of(k, s, offsets[o]), p);
                assert_int_equal(pm_period_of(k, s - 1, offsets[o]), p - 1);
                assert_true(pm_period_start(k, p + 1, offsets[o]) > s);
            }
}

/* Every day of 1900–2100, at several offsets, against gmtime_r/strftime. */
static void labels_match_the_c_library(void **state)
{
    (void)state;
    const long offsets[] = {0, 7 * HOUR, -3 * HOUR - 30 * 60};
    char want[32], got[16];
    for (size_t o = 0; o < sizeof offsets / sizeof *offsets; o++)
        for (int64_t t = -2208988800LL + 13 * HOUR; t < 4102444800LL; t += DAY) {
            time_t local = (time_t)(t + offsets[o]);
            struct tm tm;
            assert_non_null(gmtime_r(&local, &tm));
            strftime(want, sizeof want, "%Y-%m-%d", &tm);
            assert_string_equal(label(PM_PERIOD_DAY, t, offsets[o], got), want);
            strftime(want, sizeof want, "%G-W%V", &tm);
            assert_string_equal(label(PM_PERIOD_WEEK, t, offsets[o], got), want);
            strftime(want, sizeof want, "%Y-%m", &tm);
            assert_string_equal(label(PM_PERIOD_MONTH, t, offsets[o], got), want);
            assert_int_equal(pm_period_of(PM_PERIOD_MONTH, t, offsets[o]),
                             (tm.tm_year + 1900) * 12 + tm.tm_mon);
        }
}

static void kind_names_parse(void **state)
{
    (void)state;
    assert_int_equal(pm_period_kind_parse("day"), PM_PERIOD_DAY);
    assert_int_equal(pm_period_kind_parse("week"), PM_PERIOD_WEEK);
    assert_int_equal(pm_period_kind_parse("month"), PM_PERIOD_MONTH);
    assert_int_equal(pm_period_kind_parse("year"), -1);
    assert_int_equal(pm_period_kind_parse(NULL), -1);
    assert_string_equal(pm_period_kind_name(PM_PERIOD_WEEK), "week");
    assert_string_equal(pm_period_kind_name(PM_PERIOD_MONTH), "month");
}

static void extreme_inputs_do_not_overflow(void **state)
{
    (void)state;
    char buf[16];
    /* under UBSan: no signed overflow anywhere */
    int64_t p = pm_period_of(PM_PERIOD_MONTH, INT64_MAX, 14 * HOUR);
    pm_period_label(PM_PERIOD_MONTH, p, buf);
    pm_period_label(PM_PERIOD_WEEK, pm_period_of(PM_PERIOD_WEEK, INT64_MIN, -14 * HOUR), buf);
    pm_period_label(PM_PERIOD_DAY, INT64_MAX, buf);
    assert_true(pm_period_start(PM_PERIOD_MONTH, INT64_MAX, 0) > 0);
    assert_true(pm_period_start(PM_PERIOD_WEEK, INT64_MIN, 0) < 0);
    assert_true(strlen(buf) < 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(irkutsk_evening_is_next_day),
        cmocka_unit_test(iso_week_year_around_new_year),
        cmocka_unit_test(week_zero_starts_monday_1970_01_05),
        cmocka_unit_test(month_boundaries_are_local),
        cmocka_unit_test(leap_days_and_before_1970),
        cmocka_unit_test(period_start_round_trips),
        cmocka_unit_test(labels_match_the_c_library),
        cmocka_unit_test(kind_names_parse),
        cmocka_unit_test(extreme_inputs_do_not_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
