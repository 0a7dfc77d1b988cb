/* period.c — days, ISO weeks and months in a region's local time, by pure
 * integer civil-date arithmetic (no mktime, no TZ: the offset is fixed,
 * Russia has no DST).  See pm_cube.h for the period indexes.
 *
 * Civil dates use the proleptic Gregorian calendar (Howard Hinnant's
 * days_from_civil / civil_from_days).  Every function is total: period
 * indexes are clamped to ±PERIOD_MAX and offsets to ±OFFSET_MAX so that no
 * input overflows (a day index of 2^40 is three billion years away). */
#include "pm_cube.h"
#include "pm_civil.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define DAY_S 86400
#define PERIOD_MAX ((int64_t)1 << 40)
#define OFFSET_MAX (7L * DAY_S)

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* The local day of UTC time t, without overflow for any t. */
static int64_t local_day(int64_t t, long utc_offset_s)
{
    int64_t off = clamp64(utc_offset_s, -OFFSET_MAX, OFFSET_MAX);
    return pm_floor_div(t, DAY_S) + pm_floor_div(pm_floor_mod(t, DAY_S) + off, DAY_S);
}

int pm_period_kind_parse(const char *s)
{
    static const char *const names[] = {"day", "week", "month"};
    for (int k = 0; s && k < 3; k++)
        if (strcmp(s, names[k]) == 0)
            return k;
    return -1;
}

const char *pm_period_kind_name(pm_period_kind k)
{
    switch (k) {
    case PM_PERIOD_DAY: return "day";
    case PM_PERIOD_WEEK: return "week";
    case PM_PERIOD_MONTH: return "month";
    }
    return "unknown";
}

int64_t pm_period_of(pm_period_kind k, int64_t t, long utc_offset_s)
{
    int64_t day = local_day(t, utc_offset_s);
    if (k == PM_PERIOD_WEEK)
        return pm_floor_div(day - 4, 7);   /* 1970-01-05, day 4, was a Monday */
    if (k == PM_PERIOD_MONTH) {
        int64_t y;
        int m, d;
        pm_civil_from_days(day, &y, &m, &d);
        return y * 12 + (m - 1);
    }
    return day;
}

/* The local day on which period p starts. */
static int64_t first_day(pm_period_kind k, int64_t p)
{
    p = clamp64(p, -PERIOD_MAX, PERIOD_MAX);
    if (k == PM_PERIOD_WEEK)
        return 4 + 7 * p;
    if (k == PM_PERIOD_MONTH)
        return pm_days_from_civil(pm_floor_div(p, 12), (int)pm_floor_mod(p, 12) + 1, 1);
    return p;
}

int64_t pm_period_start(pm_period_kind k, int64_t p, long utc_offset_s)
{
    return first_day(k, p) * DAY_S - clamp64(utc_offset_s, -OFFSET_MAX, OFFSET_MAX);
}

void pm_period_label(pm_period_kind k, int64_t p, char *buf)
{
    char s[64];   /* room for any year; buf gets at most 15 characters */
    int64_t y;
    int m, d;
    if (k == PM_PERIOD_WEEK) {
        /* The ISO week-numbering year is the year of the week's Thursday. */
        int64_t thursday = first_day(k, p) + 3;
        pm_civil_from_days(thursday, &y, &m, &d);
        int64_t week = (thursday - pm_days_from_civil(y, 1, 1)) / 7 + 1;
        snprintf(s, sizeof s, "%04" PRId64 "-W%02d", y, (int)week);
    } else if (k == PM_PERIOD_MONTH) {
        p = clamp64(p, -PERIOD_MAX, PERIOD_MAX);
        snprintf(s, sizeof s, "%04" PRId64 "-%02d", pm_floor_div(p, 12), (int)pm_floor_mod(p, 12) + 1);
    } else {
        pm_civil_from_days(first_day(k, p), &y, &m, &d);
        snprintf(s, sizeof s, "%04" PRId64 "-%02d-%02d", y, m, d);
    }
    size_t n = strlen(s) < 15 ? strlen(s) : 15;
    memcpy(buf, s, n);
    buf[n] = '\0';
}
