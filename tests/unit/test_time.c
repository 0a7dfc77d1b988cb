/* test_time.c — ISO 8601 and strptime-like parsing, UTC formatting
 * (geodata/timeparse.c).  Expected epoch values were computed with Python's
 * calendar.timegm. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../geodata/pm_complaints_in.h"

#define T_2024_03_01_1200Z 1709294400LL
#define T_2024_03_01_0500Z 1709269200LL
#define T_2024_03_01_0000Z 1709251200LL

static int64_t iso(const char *s, long off)
{
    int64_t t = -12345;
    assert_int_equal(pm_time_parse_iso8601(s, off, &t), 0);
    return t;
}

static void iso_bad(const char *s)
{
    int64_t t = 0;
    if (pm_time_parse_iso8601(s, 0, &t) != -1)
        fail_msg("\"%s\" parsed to %lld", s, (long long)t);
}

static void test_iso_utc(void **state)
{
    (void)state;
    assert_int_equal(iso("2024-03-01T12:00:00Z", 0), T_2024_03_01_1200Z);
    assert_int_equal(iso("2024-03-01t12:00:00z", 3600), T_2024_03_01_1200Z);
    assert_int_equal(iso("2024-03-01T12:00:00+00:00", 3600), T_2024_03_01_1200Z);
}

static void test_iso_offset_forms(void **state)
{
    (void)state;
    assert_int_equal(iso("2024-03-01T12:00:00+07:00", 0), T_2024_03_01_0500Z);
    assert_int_equal(iso("2024-03-01T12:00:00+0700", 0), T_2024_03_01_0500Z);
    assert_int_equal(iso("2024-03-01T12:00:00+07", 0), T_2024_03_01_0500Z);
    assert_int_equal(iso("2024-03-01T00:00:00-05:00", 0), T_2024_03_01_0000Z + 5 * 3600);
    assert_int_equal(iso("2024-03-01T12:00:00+05:30", 0), T_2024_03_01_1200Z - 5 * 3600 - 1800);
    assert_int_equal(iso("2024-03-01T12:00:00+14:00", 0), T_2024_03_01_1200Z - 14 * 3600);
}

static void test_iso_default_offset(void **state)
{
    (void)state;
    assert_int_equal(iso("2024-03-01T12:00:00", 25200), T_2024_03_01_0500Z);
    assert_int_equal(iso("2024-03-01T12:00:00", 0), T_2024_03_01_1200Z);
    /* an explicit offset wins over the default */
    assert_int_equal(iso("2024-03-01T12:00:00Z", 25200), T_2024_03_01_1200Z);
}

static void test_iso_space_and_no_seconds(void **state)
{
    (void)state;
    assert_int_equal(iso("2024-03-01 12:00:00", 0), T_2024_03_01_1200Z);
    assert_int_equal(iso("2024-03-01T12:00", 0), T_2024_03_01_1200Z);
    assert_int_equal(iso("2024-03-01 12:00+07:00", 0), T_2024_03_01_0500Z);
}

static void test_iso_fraction_dropped(void **state)
{
    (void)state;
    assert_int_equal(iso("2024-03-01T12:00:00.999Z", 0), T_2024_03_01_1200Z);
    assert_int_equal(iso("2024-03-01T12:00:00,5+07:00", 0), T_2024_03_01_0500Z);
    assert_int_equal(iso("2024-03-01T12:00:00.123456789", 0), T_2024_03_01_1200Z);
}

static void test_iso_date_only_is_midnight(void **state)
{
    (void)state;
    assert_int_equal(iso("2024-03-01", 0), T_2024_03_01_0000Z);
    assert_int_equal(iso("2024-03-01", 25200), T_2024_03_01_0000Z - 25200);
}

static void test_iso_leap_days(void **state)
{
    (void)state;
    assert_int_equal(iso("2024-02-29", 0), 1709164800LL);
    assert_int_equal(iso("2000-02-29T12:00:00Z", 0), 951825600LL);
    iso_bad("2023-02-29");
    iso_bad("1900-02-29");   /* divisible by 100, not by 400 */
    iso_bad("2100-02-29");
}

static void test_iso_year_limits(void **state)
{
    (void)state;
    assert_int_equal(iso("1900-01-01T00:00:00Z", 0), -2208988800LL);
    assert_int_equal(iso("2200-12-31T23:59:59Z", 0), 7289654399LL);
    iso_bad("1899-12-31T23:59:59Z");
    iso_bad("2201-01-01");
    iso_bad("0000-01-01");
}

static void test_iso_field_ranges(void **state)
{
    (void)state;
    iso_bad("2024-00-10");
    iso_bad("2024-13-10");
    iso_bad("2024-04-31");
    iso_bad("2024-01-00");
    iso_bad("2024-01-32");
    iso_bad("2024-03-01T24:00:00");
    iso_bad("2024-03-01T12:60:00");
    iso_bad("2024-03-01T23:59:60Z");   /* leap seconds are rejected */
    iso_bad("2024-03-01T12:00:00+19:00");
    iso_bad("2024-03-01T12:00:00+07:60");
}

static void test_iso_syntax(void **state)
{
    (void)state;
    iso_bad("");
    iso_bad("yesterday");
    iso_bad("2024-3-1");
    iso_bad("24-03-01");
    iso_bad("2024/03/01");
    iso_bad("2024-03-01T");
    iso_bad("2024-03-01T12");
    iso_bad("2024-03-01T12:0");
    iso_bad("2024-03-01T12:00:00.");
    iso_bad("2024-03-01T12:00:00+7");
    iso_bad("2024-03-01T12:00:00+07:0");
    iso_bad("2024-03-01T12:00:00 ");
    iso_bad(" 2024-03-01");
    iso_bad("2024-03-01Z");
    iso_bad("2024-03-01T12:00:00Zjunk");
    iso_bad("2024-03-01X12:00:00");
    assert_int_equal(pm_time_parse_iso8601(NULL, 0, &(int64_t){0}), -1);
}

#define NYC_FMT "%m/%d/%Y %I:%M:%S %p"

static void test_format_nyc(void **state)
{
    (void)state;
    int64_t t = 0;
    assert_int_equal(pm_time_parse_format("03/14/2011 11:44:00 PM", NYC_FMT, -18000, &t), 0);
    assert_int_equal(t, 1300164240LL);   /* 2011-03-15T04:44:00Z */
    assert_int_equal(pm_time_parse_format("03/01/2024 12:00:00 PM", NYC_FMT, 0, &t), 0);
    assert_int_equal(t, T_2024_03_01_1200Z);
    assert_int_equal(pm_time_parse_format("03/01/2024 12:00:00 am", NYC_FMT, 0, &t), 0);
    assert_int_equal(t, T_2024_03_01_0000Z);
    assert_int_equal(pm_time_parse_format("3/1/2024 1:05:09 AM", NYC_FMT, 0, &t), 0);
    assert_int_equal(t, T_2024_03_01_0000Z + 3600 + 5 * 60 + 9);
}

static void test_format_other_directives(void **state)
{
    (void)state;
    int64_t t = 0;
    assert_int_equal(pm_time_parse_format("01.03.2024 12:00", "%d.%m.%Y %H:%M", 25200, &t), 0);
    assert_int_equal(t, T_2024_03_01_0500Z);
    assert_int_equal(pm_time_parse_format("2024-03-01 12:00:00 +0700", "%Y-%m-%d %H:%M:%S %z", 0, &t), 0);
    assert_int_equal(t, T_2024_03_01_0500Z);
    assert_int_equal(pm_time_parse_format("100% 2024-03-01", "100%% %Y-%m-%d", 0, &t), 0);
    assert_int_equal(t, T_2024_03_01_0000Z);
}

static void format_bad(const char *s, const char *fmt)
{
    int64_t t = 0;
    if (pm_time_parse_format(s, fmt, 0, &t) != -1)
        fail_msg("\"%s\" by \"%s\" parsed to %lld", s, fmt, (long long)t);
}

static void test_format_rejects(void **state)
{
    (void)state;
    format_bad("13/14/2011 11:44:00 PM", NYC_FMT);    /* month 13 */
    format_bad("02/29/2023 11:44:00 PM", NYC_FMT);    /* not a leap year */
    format_bad("03/14/2011 13:44:00 PM", NYC_FMT);    /* %I is 1..12 */
    format_bad("03/14/2011 00:44:00 AM", NYC_FMT);
    format_bad("03/14/2011 11:44:00 XM", NYC_FMT);
    format_bad("03/14/2011 11:44:00 PM junk", NYC_FMT);
    format_bad("03/14/2011 11:44:00", NYC_FMT);
    format_bad("", NYC_FMT);
    format_bad("03/14/2011 11:44", "%m/%d/%Y %I:%M");  /* %I without %p */
    format_bad("03/14 11:44", "%m/%d %H:%M");          /* no year */
    format_bad("2024-03-01", "%Y-%m-%Q");               /* unknown directive */
    format_bad("2024-03-01", "%Y-%m-%d%");
}

static void test_format_utc(void **state)
{
    (void)state;
    char buf[21];
    pm_time_format_utc(0, buf);
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
    pm_time_format_utc(-1, buf);
    assert_string_equal(buf, "1969-12-31T23:59:59Z");
    pm_time_format_utc(1300164240LL, buf);
    assert_string_equal(buf, "2011-03-15T04:44:00Z");
    pm_time_format_utc(1709164800LL, buf);
    assert_string_equal(buf, "2024-02-29T00:00:00Z");
    pm_time_format_utc(-2208988800LL, buf);
    assert_string_equal(buf, "1900-01-01T00:00:00Z");
    pm_time_format_utc(INT64_MAX, buf);
    assert_string_equal(buf, "9999-12-31T23:59:59Z");
    pm_time_format_utc(INT64_MIN, buf);
    assert_string_equal(buf, "0000-01-01T00:00:00Z");
}

/* Formatting and parsing agree over the whole accepted range. */
static void test_format_parse_round_trip(void **state)
{
    (void)state;
    char buf[21];
    for (int64_t t = -2208988800LL; t < 7289654399LL; t += 86400LL * 7 + 3607) {
        int64_t back = 0;
        pm_time_format_utc(t, buf);
        assert_int_equal(pm_time_parse_iso8601(buf, 0, &back), 0);
        assert_int_equal(back, t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iso_utc),
        cmocka_unit_test(test_iso_offset_forms),
        cmocka_unit_test(test_iso_default_offset),
        cmocka_unit_test(test_iso_space_and_no_seconds),
        cmocka_unit_test(test_iso_fraction_dropped),
        cmocka_unit_test(test_iso_date_only_is_midnight),
        cmocka_unit_test(test_iso_leap_days),
        cmocka_unit_test(test_iso_year_limits),
        cmocka_unit_test(test_iso_field_ranges),
        cmocka_unit_test(test_iso_syntax),
        cmocka_unit_test(test_format_nyc),
        cmocka_unit_test(test_format_other_directives),
        cmocka_unit_test(test_format_rejects),
        cmocka_unit_test(test_format_utc),
        cmocka_unit_test(test_format_parse_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
