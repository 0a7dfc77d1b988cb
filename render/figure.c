/* figure.c — the cube figures a map can show: names, values, quantile
 * classes, the fixed Gi* bin classes, colours and Russian number
 * formatting (pm_figure.h). */
#include "pm_figure.h"
#include "../engine/pm_alloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum fig_id {
    F_COUNT, F_PER_10K, F_PER_10K_EB, F_PER_KM2, F_SHARE_24H, F_MEDIAN_H, F_OVERDUE_SHARE,
    F_CHANGE_PCT, F_RATING
} fig_id;

/* How values are written: integer, three significant digits, percent of a
 * share, signed, two decimals. */
typedef enum num_style { N_INT, N_AUTO, N_PERCENT, N_SIGNED, N_DEC2 } num_style;

struct pm_figure {
    const char *name;       /* property name of pm_cube_out.h */
    fig_id id;
    num_style style;
    const char *title_ru;   /* legend title */
    const char *column_ru;  /* column of a table */
};

static const pm_figure FIGURES[] = {
    {"complaints", F_COUNT, N_INT, "Обращений", "Обращений"},
    {"complaints_per_10k", F_PER_10K, N_AUTO, "Обращений на 10 тыс. жителей", "На 10 тыс."},
    {"complaints_per_10k_smoothed", F_PER_10K_EB, N_AUTO,
     "Обращений на 10 тыс. жителей (сглаженная оценка)", "На 10 тыс."},
    {"complaints_per_km2", F_PER_KM2, N_AUTO, "Обращений на 1 км²", "На 1 км²"},
    {"answered_within_24h_share", F_SHARE_24H, N_PERCENT, "Доля ответов за 24 ч", "За 24 ч"},
    {"answer_time_median_h", F_MEDIAN_H, N_AUTO, "Медианное время ответа, ч", "Медиана, ч"},
    {"overdue_share", F_OVERDUE_SHARE, N_PERCENT, "Доля просроченных", "Просрочено"},
    {"change_pct", F_CHANGE_PCT, N_SIGNED, "Изменение к прошлому периоду, %", "Изм., %"},
    {"rating_index", F_RATING, N_DEC2, "Индекс проблемности", "Индекс"},
};
#define N_FIGURES (sizeof FIGURES / sizeof *FIGURES)

const pm_figure *pm_figure_find(const char *name)
{
    for (size_t i = 0; name && i < N_FIGURES; i++)
        if (strcmp(FIGURES[i].name, name) == 0)
            return &FIGURES[i];
    return NULL;
}

size_t pm_figure_count(void) { return N_FIGURES; }
const pm_figure *pm_figure_at(size_t i) { return i < N_FIGURES ? &FIGURES[i] : NULL; }

const char *pm_figure_names(void)
{
    return "complaints, complaints_per_10k, complaints_per_10k_smoothed, complaints_per_km2, "
           "answered_within_24h_share, answer_time_median_h, overdue_share, change_pct, "
           "rating_index";
}

const char *pm_figure_name(const pm_figure *f) { return f->name; }
const char *pm_figure_title_ru(const pm_figure *f) { return f->title_ru; }
const char *pm_figure_column_ru(const pm_figure *f) { return f->column_ru; }
int pm_figure_is_count(const pm_figure *f) { return f->id == F_COUNT; }
int pm_figure_higher_is_better(const pm_figure *f) { return f->id == F_SHARE_24H; }

double pm_figure_value(const pm_figure *f, const pm_row *r)
{
    if (r->suppressed)
        return NAN;
    switch (f->id) {
    case F_COUNT: return (double)r->count;
    case F_PER_10K: return r->per_10k;
    case F_PER_10K_EB: return r->eb_per_10k;
    case F_PER_KM2: return r->per_km2;
    case F_SHARE_24H: return r->share_24h;
    case F_MEDIAN_H: return r->median_h;
    case F_OVERDUE_SHARE: return r->overdue_share;
    case F_CHANGE_PCT: return r->change_pct;
    case F_RATING: return r->index;
    }
    return NAN;
}

/* ---- classes ------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int pm_classes_quantile(pm_ctx *ctx, const double *values, size_t n_values, pm_classes *out)
{
    memset(out, 0, sizeof *out);
    double *v = pm_calloc(n_values ? n_values : 1, sizeof *v);
    if (!v)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory classifying %zu values", n_values);
    size_t n = 0;
    for (size_t i = 0; i < n_values; i++)
        if (isfinite(values[i]))
            v[n++] = values[i];
    out->has_nodata = n < n_values;
    qsort(v, n, sizeof *v, cmp_double);
    size_t k = n <= 30 ? 5 : n <= 100 ? 6 : 7, nu = 0;
    for (size_t c = 1; c < k && n > 0; c++) {
        double u = v[c * n / k - (c * n / k > 0)];
        if (u < v[n - 1] && (nu == 0 || u > out->upper[nu - 1]))
            out->upper[nu++] = u;
    }
    out->n = n > 0 ? nu + 1 : 0;
    out->decimals = n > 0 && fmax(fabs(v[0]), fabs(v[n - 1])) >= 100 ? 0 : 1;
    pm_free(v);
    for (size_t c = 0; c < out->n; c++) {
        out->lo[c] = INFINITY;
        out->hi[c] = -INFINITY;
    }
    for (size_t i = 0; i < n_values; i++) {
        int c = pm_classes_of(out, values[i]);
        if (c >= 0) {
            out->lo[c] = fmin(out->lo[c], values[i]);
            out->hi[c] = fmax(out->hi[c], values[i]);
        }
    }
    return PM_OK;
}

void pm_classes_gi_bins(pm_classes *out)
{
    memset(out, 0, sizeof *out);
    out->n = PM_GI_BINS;
    out->diverging = 1;
    for (int c = 0; c < PM_GI_BINS; c++) {
        out->lo[c] = out->hi[c] = c - PM_GI_BINS / 2;
        out->upper[c] = c - PM_GI_BINS / 2 + 0.5;
    }
}

const char *pm_gi_bin_label_ru(int bin)
{
    static const char *const LABELS[PM_GI_BINS] = {
        "холодная точка, 99 %", "холодная точка, 95 %", "холодная точка, 90 %", "не значимо",
        "горячая точка, 90 %", "горячая точка, 95 %", "горячая точка, 99 %"};
    if (bin < -PM_GI_BINS / 2 || bin > PM_GI_BINS / 2)
        return "";
    return LABELS[bin + PM_GI_BINS / 2];
}

void pm_classes_orient(pm_classes *c, const pm_figure *f)
{
    c->reversed = f && pm_figure_higher_is_better(f);
}

int pm_classes_of(const pm_classes *c, double v)
{
    if (!isfinite(v) || c->n == 0)
        return -1;
    size_t k = 0;
    while (k + 1 < c->n && v > c->upper[k])
        k++;
    return (int)k;
}

unsigned pm_classes_colour(const pm_classes *c, int cls)
{
    static const unsigned YLORRD[PM_CLASSES_MAX][PM_CLASSES_MAX] = {
        {0xffeda0},
        {0xffeda0, 0xf03b20},
        {0xffeda0, 0xfeb24c, 0xf03b20},
        {0xffffb2, 0xfecc5c, 0xfd8d3c, 0xe31a1c},
        {0xffffb2, 0xfecc5c, 0xfd8d3c, 0xf03b20, 0xbd0026},
        {0xffffb2, 0xfed976, 0xfeb24c, 0xfd8d3c, 0xf03b20, 0xbd0026},
        {0xffffb2, 0xfed976, 0xfeb24c, 0xfd8d3c, 0xfc4e2a, 0xe31a1c, 0xb10026},
    };
    /* ColorBrewer RdBu 7, reversed; its middle #f7f7f7 is "not significant" */
    static const unsigned RDBU_R[PM_GI_BINS] = {0x2166ac, 0x67a9cf, 0xd1e5f0, 0xf7f7f7,
                                                0xfddbc7, 0xef8a62, 0xb2182b};
    if (cls < 0 || c->n < 1 || c->n > PM_CLASSES_MAX || (size_t)cls >= c->n)
        return PM_FIGURE_NODATA;
    if (c->diverging)
        return c->n == PM_GI_BINS ? RDBU_R[cls] : PM_FIGURE_NODATA;
    return YLORRD[c->n - 1][c->reversed ? (int)c->n - 1 - cls : cls];
}

/* ---- numbers: Russian style --------------------------------------------- */

#define THIN_SPACE "\xe2\x80\x89"   /* U+2009 */
#define MINUS "\xe2\x88\x92"        /* U+2212 */

void pm_format_number(double v, int decimals, int plus, char *buf, size_t cap)
{
    if (!isfinite(v)) {
        snprintf(buf, cap, "—");
        return;
    }
    if (fabs(v) >= 1e15) {
        snprintf(buf, cap, "%.3g", v);
        return;
    }
    char digits[64];
    snprintf(digits, sizeof digits, "%.*f", decimals, fabs(v));
    int zero = digits[strspn(digits, "0.")] == '\0';
    const char *sign = zero ? "" : v < 0 ? MINUS : plus ? "+" : "";
    size_t int_len = strcspn(digits, "."), n = 0;
    n += (size_t)snprintf(buf, cap, "%s", sign);
    for (size_t i = 0; i < int_len && n + 8 < cap; i++) {
        if (i > 0 && int_len >= 4 && (int_len - i) % 3 == 0)
            n += (size_t)snprintf(buf + n, cap - n, THIN_SPACE);
        buf[n++] = digits[i];
    }
    buf[n] = '\0';
    if (digits[int_len] == '.' && n + 2 + strlen(digits + int_len + 1) < cap)
        snprintf(buf + n, cap - n, ",%s", digits + int_len + 1);
}

/* Decimals that give v three significant digits (none from 100 up). */
static int sig_decimals(double v)
{
    double a = fabs(v);
    if (!(a > 0) || a >= 100)
        return 0;
    int d = 2 - (int)floor(log10(a));
    return d < 0 ? 0 : d > 6 ? 6 : d;
}

void pm_figure_format(const pm_figure *f, const pm_classes *c, double v, int unit, char *buf,
                      size_t cap)
{
    switch (f->style) {
    case N_INT: pm_format_number(v, 0, 0, buf, cap); return;
    case N_AUTO: pm_format_number(v, sig_decimals(v), 0, buf, cap); return;
    case N_SIGNED: pm_format_number(v, c ? c->decimals : 1, 1, buf, cap); return;
    case N_DEC2: pm_format_number(v, 2, 0, buf, cap); return;
    case N_PERCENT:
        pm_format_number(100 * v, 1, 0, buf, cap);
        if (unit && isfinite(v))
            snprintf(buf + strlen(buf), cap - strlen(buf), " %%");
        return;
    }
}
