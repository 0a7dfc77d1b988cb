/* timeparse.c — timestamps to seconds since the epoch, and back (see
 * pm_complaints_in.h).
 *
 * Pure arithmetic: no mktime, no TZ, no locale.  Civil dates are turned
 * into day numbers with Howard Hinnant's days_from_civil / civil_from_days
 * (proleptic Gregorian calendar).
 *
 * Choices:
 * - years 1900..2200 only: anything else is garbage in a complaint file;
 * - seconds 0..59: a leap second (":60") is rejected, complaint systems
 *   never write one; hour 24 is rejected too;
 * - offsets up to ±18:00 (the widest any system accepts), written
 *   "Z", "+07", "+0700" or "+07:00";
 * - the parsers are strict: no surrounding blanks (the intake trims).
 */
#include "pm_complaints_in.h"
#include "../engine/pm_civil.h"

#define YEAR_MIN 1900
#define YEAR_MAX 2200
#define OFFSET_MAX_S (18 * 3600)

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

typedef struct civil {
    int y, mo, d, h, mi, s;
} civil;

/* Checks the ranges and gives seconds since the epoch at offset_s. */
static int civil_to_epoch(const civil *c, long offset_s, int64_t *out)
{
    if (c->y < YEAR_MIN || c->y > YEAR_MAX || c->mo < 1 || c->mo > 12 || c->d < 1 ||
        c->d > days_in_month(c->y, c->mo) || c->h > 23 || c->mi > 59 || c->s > 59)
        return -1;
    if (offset_s < -OFFSET_MAX_S || offset_s > OFFSET_MAX_S)
        return -1;
    int64_t days = pm_days_from_civil(c->y, c->mo, c->d);
    *out = days * 86400 + c->h * 3600 + c->mi * 60 + c->s - (int64_t)offset_s;
    return 0;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Exactly n digits at *p, advancing *p. -1 if not. */
static int digits_exact(const char **p, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit((*p)[i]))
            return -1;
        x = x * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *v = x;
    return 0;
}

/* min..max digits at *p (at most 4), advancing *p. -1 if fewer than min. */
static int digits_range(const char **p, int min, int max, int *v)
{
    int x = 0, i = 0;
    for (; i < max && is_digit((*p)[i]); i++)
        x = x * 10 + ((*p)[i] - '0');
    if (i < min)
        return -1;
    *p += i;
    *v = x;
    return 0;
}

/* "Z", "+HH", "+HHMM" or "+HH:MM" (or '-'), the whole of what is left at
 * *p.  Advances *p past it. */
static int parse_offset(const char **p, long *offset_s)
{
    const char *s = *p;
    if (*s == 'Z' || *s == 'z') {
        *p = s + 1;
        *offset_s = 0;
        return 0;
    }
    if (*s != '+' && *s != '-')
        return -1;
    long sign = *s++ == '-' ? -1 : 1;
    int h, m = 0;
    if (digits_exact(&s, 2, &h) != 0)
        return -1;
    if (*s == ':') {
        s++;
        if (digits_exact(&s, 2, &m) != 0)
            return -1;
    } else if (is_digit(*s) && digits_exact(&s, 2, &m) != 0) {
        return -1;
    }
    if (m > 59 || h * 3600L + m * 60L > OFFSET_MAX_S)
        return -1;
    *p = s;
    *offset_s = sign * (h * 3600L + m * 60L);
    return 0;
}

int pm_time_parse_iso8601(const char *s, long default_offset_s, int64_t *out)
{
    civil c = {0};
    if (!s || digits_exact(&s, 4, &c.y) || *s++ != '-' || digits_exact(&s, 2, &c.mo) ||
        *s++ != '-' || digits_exact(&s, 2, &c.d))
        return -1;
    long offset = default_offset_s;
    if (*s) {
        if (*s != 'T' && *s != 't' && *s != ' ')
            return -1;
        s++;
        if (digits_exact(&s, 2, &c.h) || *s++ != ':' || digits_exact(&s, 2, &c.mi))
            return -1;
        if (*s == ':') {
            s++;
            if (digits_exact(&s, 2, &c.s))
                return -1;
            if (*s == '.' || *s == ',') {   /* fractional seconds: dropped */
                s++;
                if (!is_digit(*s))
                    return -1;
                while (is_digit(*s))
                    s++;
            }
        }
        if (*s && parse_offset(&s, &offset) != 0)
            return -1;
        if (*s)
            return -1;
    }
    return civil_to_epoch(&c, offset, out);
}

/* "AM"/"PM" in any case at *p: 0 for AM, 1 for PM, -1 otherwise. */
static int parse_ampm(const char **p)
{
    char a = (*p)[0];
    int pm;
    if (a == 'A' || a == 'a')
        pm = 0;
    else if (a == 'P' || a == 'p')
        pm = 1;
    else
        return -1;
    if ((*p)[1] != 'M' && (*p)[1] != 'm')
        return -1;
    *p += 2;
    return pm;
}

int pm_time_parse_format(const char *s, const char *fmt, long offset_s, int64_t *out)
{
    civil c = {0};
    int have_y = 0, have_m = 0, have_d = 0, hour12 = -1, ampm = -1;
    long offset = offset_s;
    if (!s || !fmt)
        return -1;
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            if (*s++ != *f)
                return -1;
            continue;
        }
        int ok = 0;
        switch (*++f) {
        case 'Y': ok = digits_exact(&s, 4, &c.y) == 0; have_y = 1; break;
        case 'm': ok = digits_range(&s, 1, 2, &c.mo) == 0; have_m = 1; break;
        case 'd': ok = digits_range(&s, 1, 2, &c.d) == 0; have_d = 1; break;
        case 'H': ok = digits_range(&s, 1, 2, &c.h) == 0; break;
        case 'I': ok = digits_range(&s, 1, 2, &hour12) == 0; break;
        case 'M': ok = digits_range(&s, 1, 2, &c.mi) == 0; break;
        case 'S': ok = digits_range(&s, 1, 2, &c.s) == 0; break;
        case 'p': ok = (ampm = parse_ampm(&s)) >= 0; break;
        case 'z': ok = parse_offset(&s, &offset) == 0; break;
        case '%': ok = *s++ == '%'; break;
        default: return -1;   /* unknown directive, or a lone '%' at the end */
        }
        if (!ok)
            return -1;
    }
    if (*s || !have_y || !have_m || !have_d)
        return -1;
    if ((hour12 >= 0) != (ampm >= 0))   /* %I and %p go together */
        return -1;
    if (hour12 >= 0) {
        if (hour12 < 1 || hour12 > 12)
            return -1;
        c.h = hour12 % 12 + (ampm ? 12 : 0);
    }
    return civil_to_epoch(&c, offset, out);
}

/* n as exactly w decimal digits at p. */
static char *put_digits(char *p, int64_t n, int w)
{
    for (int i = w - 1; i >= 0; i--, n /= 10)
        p[i] = (char)('0' + n % 10);
    return p + w;
}

/* Times outside years 0000..9999 are clamped so that the text always has
 * the same 20 characters. */
void pm_time_format_utc(int64_t t, char *buf)
{
    const int64_t t_min = -62167219200LL;   /* 0000-01-01T00:00:00Z */
    const int64_t t_max = 253402300799LL;   /* 9999-12-31T23:59:59Z */
    t = t < t_min ? t_min : t > t_max ? t_max : t;
    int64_t days = t / 86400, secs = t % 86400;
    if (secs < 0) {
        secs += 86400;
        days--;
    }
    int64_t y;
    int m, d;
    pm_civil_from_days(days, &y, &m, &d);
    char *p = put_digits(buf, y, 4);
    *p++ = '-';
    p = put_digits(p, m, 2);
    *p++ = '-';
    p = put_digits(p, d, 2);
    *p++ = 'T';
    p = put_digits(p, secs / 3600, 2);
    *p++ = ':';
    p = put_digits(p, secs / 60 % 60, 2);
    *p++ = ':';
    p = put_digits(p, secs % 60, 2);
    *p++ = 'Z';
    *p = '\0';
}
