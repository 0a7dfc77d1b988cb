/* synth.c — deterministic synthetic complaints (see pm_synth.h).
 *
 * Setup turns the caller's weights into cumulative tables (towns,
 * districts, hours of the period, topics); then every row is made from its
 * own PRNG stream, seeded from (seed, row index), and handed to emit.
 * The tables of sources, agencies and phrases below are the "realism": edit
 * them, not the code, to change what the rows look like.
 */
#include "pm_synth.h"
#include "pm_civil.h"
#include "pm_alloc.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- PRNG: splitmix64 to seed, xoshiro256** to draw ------------------ */

typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* One independent stream per (seed, stream id). */
static void rng_seed(rng *g, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ splitmix64(&stream);
    for (int k = 0; k < 4; k++)
        g->s[k] = splitmix64(&x);
}

static uint64_t rng_next(rng *g)
{
    uint64_t *s = g->s;
    uint64_t r = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* Uniform in [0, 1), 53 bits. */
static double rng_unit(rng *g) { return (double)(rng_next(g) >> 11) * 0x1.0p-53; }

/* Uniform integer in [0, n), 1 <= n < 2^52. */
static uint64_t rng_below(rng *g, uint64_t n)
{
    uint64_t k = (uint64_t)(rng_unit(g) * (double)n);
    return k < n ? k : n - 1;
}

/* Two independent standard normals (Marsaglia's polar method: sqrt and log
 * only). */
static void rng_normal2(rng *g, double *z1, double *z2)
{
    double u, v, s;
    do {
        u = 2.0 * rng_unit(g) - 1.0;
        v = 2.0 * rng_unit(g) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    double f = sqrt(-2.0 * log(s) / s);
    *z1 = u * f;
    *z2 = v * f;
}

/* ---- The realism tables --------------------------------------------- */

#define DAY_S 86400
#define HOUR_S 3600

/* Weekly rhythm by local weekday, Monday first: weekend ≈ 60 % of a weekday. */
static const double WEEKDAY_W[7] = {1.25, 1.10, 1.05, 1.00, 0.95, 0.65, 0.60};

/* Daily rhythm by local hour: quiet at night, peaks 10–12 and 18–21. */
static const double HOUR_W[24] = {
    0.25, 0.15, 0.10, 0.08, 0.08, 0.12, 0.30, 0.60, 1.00, 1.40, 1.80, 1.90,
    1.70, 1.40, 1.30, 1.30, 1.30, 1.40, 1.60, 1.75, 1.75, 1.50, 0.90, 0.50};

typedef struct source_def {
    const char *name;
    double weight;
    double delay_factor;   /* multiplies the answer delay */
} source_def;

/* Social networks dominate the incident flow of a ЦУР; formal appeals
 * (gosuslugi's feedback platform, the reception) take longer to answer,
 * the hotline is quickest. */
static const source_def SOURCES[] = {
    {"vk", 0.38, 1.0},        {"telegram", 0.17, 1.0},  {"ok", 0.10, 1.0},
    {"gosuslugi", 0.15, 1.6}, {"reception", 0.08, 2.5}, {"hotline", 0.12, 0.7},
};
#define N_SOURCES (sizeof SOURCES / sizeof SOURCES[0])

/* Answer delays: lognormal, median 5.5 h, sigma 1.35 (before the source
 * factor); clamped to [2 min, 60 days].  Never answered: 4 %. */
#define DELAY_MEDIAN_H 5.5
#define DELAY_SIGMA 1.35
#define DELAY_MIN_S 120.0
#define DELAY_MAX_S (60.0 * DAY_S)
#define LOST_SHARE 0.04

/* Pareto exponent of the town heavy tail, and its cap. */
#define TOWN_ALPHA 1.2
#define TOWN_FACTOR_MAX 1000.0

typedef struct topic_profile {
    const char *code;
    const char *executors[5];   /* NULL-terminated; the first ones likelier */
    const char *phrases[4];     /* NULL-terminated */
} topic_profile;

/* Looked up by topic code; an unknown code gets the last entry. */
static const topic_profile PROFILES[] = {
    {"housing",
     {"Управляющая компания", "Фонд капитального ремонта", "Государственная жилищная инспекция",
      "Ресурсоснабжающая организация", NULL},
     {"протекает крыша в подъезде", "нет горячей воды, просьба принять меры",
      "не убирают снег во дворе", NULL}},
    {"roads",
     {"Департамент дорожного хозяйства", "Администрация муниципального образования",
      "Управление автомобильных дорог", NULL},
     {"яма на проезжей части", "не работает светофор на перекрёстке",
      "дорогу не чистят от снега, проехать нельзя", NULL}},
    {"transport",
     {"Министерство транспорта", "Муниципальное транспортное предприятие",
      "Перевозчик по маршруту", NULL},
     {"автобус не пришёл по расписанию", "в маршрутке не принимают карту",
      "отменили пригородную электричку", NULL}},
    {"health",
     {"Министерство здравоохранения", "Городская поликлиника", "Территориальный фонд ОМС", NULL},
     {"нет записи к терапевту", "в аптеке нет льготного лекарства",
      "скорая ехала больше часа", NULL}},
    {"social",
     {"Министерство социальной защиты населения", "Отделение Социального фонда России",
      "Центр социального обслуживания", NULL},
     {"задерживают выплату пособия", "не могу оформить компенсацию за ЖКУ", NULL}},
    {"education",
     {"Министерство образования", "Управление образования администрации",
      "Образовательная организация", NULL},
     {"нет мест в детском саду", "в школе холодно в классах", NULL}},
    {"ecology",
     {"Региональный оператор по обращению с ТКО", "Министерство природных ресурсов и экологии",
      "Управление Росприроднадзора", NULL},
     {"не вывезен мусор с контейнерной площадки", "стихийная свалка у дороги",
      "запах гари по вечерам", NULL}},
    {"construction",
     {"Министерство строительства", "Инспекция государственного строительного надзора",
      "Застройщик", NULL},
     {"стройка шумит по ночам", "долгострой огорожен не полностью", NULL}},
    {"energy",
     {"Сетевая компания", "Министерство энергетики и ЖКХ", "Газораспределительная организация",
      NULL},
     {"отключили электричество без предупреждения", "не горят фонари на улице", NULL}},
    {"labour",
     {"Государственная инспекция труда", "Центр занятости населения", NULL},
     {"задерживают заработную плату", "не оформляют по трудовому договору", NULL}},
    {"industry",
     {"Министерство промышленности и торговли", "Управление Росприроднадзора", NULL},
     {"выбросы с предприятия ночью", "шум от завода", NULL}},
    {NULL, /* any other code */
     {"Администрация муниципального образования", "Правительство региона",
      "Центр управления регионом", NULL},
     {"прошу разобраться с ситуацией", "вопрос не решается второй месяц", NULL}},
};
#define N_PROFILES (sizeof PROFILES / sizeof PROFILES[0])

static const topic_profile *profile_for(const char *code)
{
    for (size_t k = 0; k + 1 < N_PROFILES; k++)
        if (strcmp(PROFILES[k].code, code) == 0)
            return &PROFILES[k];
    return &PROFILES[N_PROFILES - 1];
}

static const char *const DIRTY_NAMES[PM_SYNTH_DIRTY_N] = {
    "clean", "swapped", "no_topic", "unknown_topic", "bad_date", "answer_first", "dup_id",
    "lat_95"};

const char *pm_synth_dirty_name(int kind)
{
    return kind >= 0 && kind < PM_SYNTH_DIRTY_N ? DIRTY_NAMES[kind] : "unknown";
}

void pm_synth_opts_default(pm_synth_opts *o)
{
    memset(o, 0, sizeof *o);
    o->seed = 1;
    o->n = 1000;
    o->start = 1735689600; /* 2025-01-01T00:00:00Z */
    o->days = 90;
    o->utc_offset_s = 0;
    o->cluster_share = 0.8;
    o->cluster_sigma_m = 1500.0;
    o->no_coords_share = 0.03;
    o->dirty_share = 0.02;
    o->town_heavy_tail = 1;
}

/* ---- Setup: cumulative tables --------------------------------------- */

typedef struct synth {
    const pm_synth_opts *o;
    const pm_synth_town *towns;
    size_t n_towns;
    const pm_districts *ds;
    size_t n_districts;
    const char *const *topics;
    size_t n_topics;
    double *town_cum, *district_cum, *hour_cum, *topic_cum;
    double *env;            /* 4 per district: xmin, ymin, xmax, ymax */
    double bbox[4];         /* the towns', padded; used without districts */
    size_t n_hours;
    int64_t end;            /* start + days * 86400 */
} synth;

static void synth_free(synth *s)
{
    pm_free(s->town_cum);
    pm_free(s->district_cum);
    pm_free(s->hour_cum);
    pm_free(s->topic_cum);
    pm_free(s->env);
}

/* Index i with cum[i-1] <= u < cum[i], for u in [0, cum[n-1]); entries of
 * weight 0 are never chosen. */
static size_t pick_cum(const double *cum, size_t n, double u)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (u < cum[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static size_t draw_cum(rng *g, const double *cum, size_t n)
{
    return pick_cum(cum, n, rng_unit(g) * cum[n - 1]);
}

/* Cumulative sums of w (n >= 1): each finite and >= 0, the total > 0.
 * On success *out is owned by the caller. */
static int make_cum(pm_ctx *ctx, const double *w, size_t n, const char *what, double **out)
{
    double *cum = pm_calloc(n, sizeof *cum);
    if (!cum)
        return PM_ERR(ctx, PM_E_NOMEM, "synthetic complaints: out of memory for %zu %s", n, what);
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!(w[i] >= 0.0) || !isfinite(w[i])) {
            pm_free(cum);
            return PM_ERR(ctx, PM_E_USAGE, "synthetic complaints: %s %zu has weight %g "
                          "(must be finite and >= 0)", what, i, w[i]);
        }
        total += w[i];
        cum[i] = total;
    }
    if (!(total > 0.0) || !isfinite(total)) {
        pm_free(cum);
        return PM_ERR(ctx, PM_E_USAGE, "synthetic complaints: the %s weights add up to %g",
                      what, total);
    }
    *out = cum;
    return PM_OK;
}

/* The heavy-tail factor of town i: a Pareto(alpha) draw from a stream that
 * depends on i only, so the same towns dominate for every seed. */
static double town_factor(size_t i)
{
    rng g;
    rng_seed(&g, 0x746f776e73ull /* "towns" */, (uint64_t)i);
    double u = 1.0 - rng_unit(&g); /* (0, 1] */
    double f = exp(-log(u) / TOWN_ALPHA);
    return f < TOWN_FACTOR_MAX ? f : TOWN_FACTOR_MAX;
}

static int setup_towns(pm_ctx *ctx, synth *s)
{
    if (s->n_towns == 0)
        return PM_OK;
    double *w = pm_calloc(s->n_towns, sizeof *w);
    if (!w)
        return PM_ERR(ctx, PM_E_NOMEM, "synthetic complaints: out of memory for %zu towns",
                      s->n_towns);
    double *b = s->bbox;
    b[0] = b[1] = INFINITY;
    b[2] = b[3] = -INFINITY;
    for (size_t i = 0; i < s->n_towns; i++) {
        const pm_synth_town *t = &s->towns[i];
        if (!(fabs(t->lon) <= 180.0) || !(fabs(t->lat) <= 90.0)) {
            pm_free(w);
            return PM_ERR(ctx, PM_E_USAGE, "synthetic complaints: town %zu at (%g, %g) is not "
                          "a lon/lat position", i, t->lon, t->lat);
        }
        w[i] = s->o->town_heavy_tail ? t->weight * town_factor(i) : t->weight;
        b[0] = fmin(b[0], t->lon);
        b[1] = fmin(b[1], t->lat);
        b[2] = fmax(b[2], t->lon);
        b[3] = fmax(b[3], t->lat);
    }
    b[0] = fmax(b[0] - 0.1, -180.0);
    b[1] = fmax(b[1] - 0.1, -90.0);
    b[2] = fmin(b[2] + 0.1, 180.0);
    b[3] = fmin(b[3] + 0.1, 90.0);
    int rc = make_cum(ctx, w, s->n_towns, "town", &s->town_cum);
    pm_free(w);
    return rc;
}

/* Envelope and approximate area (deg² scaled by cos of the middle latitude)
 * of every district. */
static int setup_districts(pm_ctx *ctx, synth *s)
{
    if (!s->ds || s->n_districts == 0)
        return PM_OK;
    GEOSContextHandle_t h = pm_ctx_geos(ctx);
    size_t n = s->n_districts;
    double *w = pm_calloc(n, sizeof *w);
    s->env = pm_calloc(n, 4 * sizeof *s->env);
    if (!w || !s->env) {
        pm_free(w);
        return PM_ERR(ctx, PM_E_NOMEM, "synthetic complaints: out of memory for %zu districts",
                      n);
    }
    for (size_t i = 0; i < n; i++) {
        const GEOSGeometry *g = pm_district_geom_borrow(s->ds, i);
        double *e = &s->env[4 * i], area;
        if (!GEOSGeom_getXMin_r(h, g, &e[0]) || !GEOSGeom_getYMin_r(h, g, &e[1]) ||
            !GEOSGeom_getXMax_r(h, g, &e[2]) || !GEOSGeom_getYMax_r(h, g, &e[3]) ||
            !GEOSArea_r(h, g, &area)) {
            pm_free(w);
            return PM_ERR(ctx, PM_E_GEOM, "synthetic complaints: district %zu (id \"%s\"): "
                          "no envelope or area: %s", i, pm_district_id(s->ds, i),
                          pm_ctx_geos_msg(ctx));
        }
        w[i] = area * cos((e[1] + e[3]) * 0.5 * M_PI / 180.0);
    }
    int rc = make_cum(ctx, w, n, "district", &s->district_cum);
    pm_free(w);
    return rc;
}

/* The weight of every hour of the period by its local weekday and hour. */
static int setup_hours(pm_ctx *ctx, synth *s)
{
    s->n_hours = (size_t)s->o->days * 24;
    double *w = pm_calloc(s->n_hours, sizeof *w);
    if (!w)
        return PM_ERR(ctx, PM_E_NOMEM, "synthetic complaints: out of memory for %d days",
                      s->o->days);
    for (size_t k = 0; k < s->n_hours; k++) {
        int64_t local = s->o->start + (int64_t)k * HOUR_S + s->o->utc_offset_s;
        int64_t day = pm_floor_div(local, DAY_S);
        int wday = (int)((day % 7 + 7 + 3) % 7);   /* 1970-01-01 was a Thursday: 3 */
        int hour = (int)((local - day * DAY_S) / HOUR_S);
        w[k] = WEEKDAY_W[wday] * HOUR_W[hour];
    }
    int rc = make_cum(ctx, w, s->n_hours, "hour", &s->hour_cum);
    pm_free(w);
    return rc;
}

static int check_share(pm_ctx *ctx, const char *name, double v)
{
    if (v >= 0.0 && v <= 1.0)
        return PM_OK;
    return PM_ERR(ctx, PM_E_USAGE, "synthetic complaints: %s %g is not in [0, 1]", name, v);
}

/* 9999-12-31T23:59:59, the last second ISO 8601 writes with 4 digits. */
#define TIME_MAX_S 253402300799LL

static int check_opts(pm_ctx *ctx, const pm_synth_opts *o, size_t n_towns,
                      const pm_districts *ds, size_t n_topics)
{
    int rc;
    if ((rc = check_share(ctx, "cluster_share", o->cluster_share)) ||
        (rc = check_share(ctx, "no_coords_share", o->no_coords_share)) ||
        (rc = check_share(ctx, "dirty_share", o->dirty_share)))
        return rc;
    if (o->days < 1 || o->days > 36600)
        return PM_ERR(ctx, PM_E_USAGE, "synthetic complaints: days %d is not in [1, 36600]",
                      o->days);
    if (o->utc_offset_s % 60 != 0 || o->utc_offset_s < -14 * HOUR_S ||
        o->utc_offset_s > 14 * HOUR_S)
        return PM_ERR(ctx, PM_E_USAGE, "synthetic complaints: UTC offset %ld s is not whole "
                      "minutes within ±14 h", o->utc_offset_s);
    if (o->start < 0 || o->start > TIME_MAX_S - 14 * HOUR_S - (int64_t)o->days * DAY_S)
        return PM_ERR(ctx, PM_E_USAGE, "synthetic complaints: the period starting at %lld s "
                      "does not fit in the years 1970-9999", (long long)o->start);
    if (!(o->cluster_sigma_m > 0.0) || !isfinite(o->cluster_sigma_m))
        return PM_ERR(ctx, PM_E_USAGE, "synthetic complaints: cluster_sigma_m %g must be > 0",
                      o->cluster_sigma_m);
    if (n_topics == 0)
        return PM_ERR(ctx, PM_E_USAGE, "synthetic complaints: no topics");
    if (n_towns == 0 && (!ds || pm_districts_count(ds) == 0))
        return PM_ERR(ctx, PM_E_USAGE, "synthetic complaints: neither towns nor districts "
                      "to place complaints in");
    if (o->no_coords_share > 0.0 && (!ds || pm_districts_count(ds) == 0))
        return PM_ERR(ctx, PM_E_USAGE, "synthetic complaints: no_coords_share %g needs "
                      "districts (their codes place those complaints)", o->no_coords_share);
    return PM_OK;
}

static int check_topics(pm_ctx *ctx, const char *const *codes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!codes[i] || !codes[i][0])
            return PM_ERR(ctx, PM_E_USAGE, "synthetic complaints: topic %zu has no code", i);
    return PM_OK;
}

/* ---- Making one row -------------------------------------------------- */

/* t (UTC seconds) as local ISO 8601 with the offset: 2025-03-01T09:15:42+07:00. */
static void format_time(char *buf, size_t size, int64_t t, long off_s)
{
    int64_t local = t + off_s;
    int64_t day = pm_floor_div(local, DAY_S);
    int64_t sec = local - day * DAY_S;
    int64_t y;
    int m, d;
    pm_civil_from_days(day, &y, &m, &d);
    long a = off_s < 0 ? -off_s : off_s;   /* checked: within 14 h */
    int oh = (int)(a / HOUR_S % 24), om = (int)(a / 60 % 60);
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", (int)y, m, d,
             (int)(sec / HOUR_S), (int)(sec / 60 % 60), (int)(sec % 60), off_s < 0 ? '-' : '+',
             oh, om);
}

static void format_coord(char *buf, size_t size, double v) { snprintf(buf, size, "%.6f", v); }

/* Index in [0, n) by the weights w (a linear walk: for short tables). */
static size_t pick_index(rng *g, const double *w, size_t n)
{
    double total = 0.0;
    for (size_t k = 0; k < n; k++)
        total += w[k];
    double u = rng_unit(g) * total;
    for (size_t k = 0; k + 1 < n; k++) {
        u -= w[k];
        if (u < 0.0)
            return k;
    }
    return n - 1;
}

#define MAX_LISTED 8

/* An entry of a NULL-terminated list (at most MAX_LISTED); entry k has
 * weight 1/(k+1), so the first ones are likelier. */
static const char *pick_listed(rng *g, const char *const *list)
{
    double w[MAX_LISTED];
    size_t n = 0;
    while (list[n] && n < MAX_LISTED) {
        w[n] = 1.0 / (double)(n + 1);
        n++;
    }
    return list[pick_index(g, w, n)];
}

static const source_def *pick_source(rng *g)
{
    double w[N_SOURCES];
    for (size_t k = 0; k < N_SOURCES; k++)
        w[k] = SOURCES[k].weight;
    return &SOURCES[pick_index(g, w, N_SOURCES)];
}

/* A point around town t: Gaussian offset of sigma metres, converted with
 * the local metres per degree of the WGS84 ellipsoid (series form). */
static void point_near_town(rng *g, const pm_synth_town *t, double sigma_m, double *lon,
                            double *lat)
{
    double phi = t->lat * M_PI / 180.0;
    double m_per_deg_lat = 111132.954 - 559.822 * cos(2 * phi) + 1.175 * cos(4 * phi);
    double m_per_deg_lon = 111412.84 * cos(phi) - 93.5 * cos(3 * phi);
    double zx, zy;
    rng_normal2(g, &zx, &zy);
    *lon = t->lon + zx * sigma_m / fmax(m_per_deg_lon, 1.0);
    *lat = t->lat + zy * sigma_m / m_per_deg_lat;
    if (*lon > 180.0)
        *lon -= 360.0;
    if (*lon < -180.0)
        *lon += 360.0;
    *lat = fmax(-90.0, fmin(90.0, *lat));
}

static void point_in_box(rng *g, const double *e, double *lon, double *lat)
{
    *lon = e[0] + rng_unit(g) * (e[2] - e[0]);
    *lat = e[1] + rng_unit(g) * (e[3] - e[1]);
}

/* Where: coordinates (around a town or in the background) or, for a clean
 * row with no_coords_share, only a district code. */
static void place(const synth *s, rng *g, int dirty, pm_synth_row *r)
{
    const pm_synth_opts *o = s->o;
    double lon, lat;
    r->district_code = "";
    if (!dirty && s->district_cum && rng_unit(g) < o->no_coords_share) {
        size_t d = draw_cum(g, s->district_cum, s->n_districts);
        r->district_code = pm_district_id(s->ds, d);
        return;
    }
    if (s->town_cum && rng_unit(g) < o->cluster_share) {
        size_t t = draw_cum(g, s->town_cum, s->n_towns);
        point_near_town(g, &s->towns[t], o->cluster_sigma_m, &lon, &lat);
    } else if (s->district_cum) {
        size_t d = draw_cum(g, s->district_cum, s->n_districts);
        point_in_box(g, &s->env[4 * d], &lon, &lat);
    } else {
        point_in_box(g, s->bbox, &lon, &lat);   /* no districts: the towns' box */
    }
    format_coord(r->lon, sizeof r->lon, lon);
    format_coord(r->lat, sizeof r->lat, lat);
}

/* An answer delay in seconds. */
static double answer_delay(rng *g, const source_def *src)
{
    double z, unused;
    rng_normal2(g, &z, &unused);
    double d = DELAY_MEDIAN_H * HOUR_S * src->delay_factor * exp(DELAY_SIGMA * z);
    return fmin(fmax(d, DELAY_MIN_S), DELAY_MAX_S);
}

/* Spoils a finished row in the way `kind` says (see pm_synth_dirty). */
static void spoil(rng *g, size_t i, int kind, int64_t created, long off_s, pm_synth_row *r)
{
    char tmp[sizeof r->lon];
    switch (kind) {
    case PM_SYNTH_SWAPPED:
        memcpy(tmp, r->lon, sizeof tmp);
        memcpy(r->lon, r->lat, sizeof tmp);
        memcpy(r->lat, tmp, sizeof tmp);
        break;
    case PM_SYNTH_NO_TOPIC:
        r->topic = "";
        break;
    case PM_SYNTH_UNKNOWN_TOPIC:
        r->topic = "unknown_topic";
        break;
    case PM_SYNTH_BAD_DATE:
        snprintf(r->created_at, sizeof r->created_at, "%s", "не указано");
        break;
    case PM_SYNTH_ANSWER_FIRST:
        format_time(r->answered_at, sizeof r->answered_at,
                    created - HOUR_S - (int64_t)rng_below(g, 2 * DAY_S), off_s);
        r->status = "answered";
        break;
    case PM_SYNTH_DUP_ID:
        snprintf(r->id, sizeof r->id, "c%07llu", (unsigned long long)rng_below(g, i) + 1);
        break;
    case PM_SYNTH_LAT_95:
        snprintf(r->lat, sizeof r->lat, "%s", "95.000000");
        break;
    default:
        break;
    }
}

static void make_row(const synth *s, size_t i, pm_synth_row *r)
{
    const pm_synth_opts *o = s->o;
    rng g;
    rng_seed(&g, o->seed, (uint64_t)i);
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "c%07llu", (unsigned long long)i + 1);

    int dirty = PM_SYNTH_CLEAN;
    if (rng_unit(&g) < o->dirty_share)
        dirty = 1 + (int)rng_below(&g, PM_SYNTH_DIRTY_N - 1);
    if (dirty == PM_SYNTH_DUP_ID && i == 0)
        dirty = PM_SYNTH_NO_TOPIC;
    r->dirty = dirty;

    r->topic = s->topics[draw_cum(&g, s->topic_cum, s->n_topics)];
    const topic_profile *p = profile_for(r->topic);
    const source_def *src = pick_source(&g);
    r->source = src->name;
    r->executor = pick_listed(&g, p->executors);

    size_t h = draw_cum(&g, s->hour_cum, s->n_hours);
    int64_t created = o->start + (int64_t)h * HOUR_S + (int64_t)rng_below(&g, HOUR_S);
    format_time(r->created_at, sizeof r->created_at, created, o->utc_offset_s);

    place(s, &g, dirty, r);

    int lost = rng_unit(&g) < LOST_SHARE;
    int64_t answered = created + (int64_t)answer_delay(&g, src);
    if (lost || answered >= s->end) {
        r->status = "open";
    } else {
        r->status = "answered";
        format_time(r->answered_at, sizeof r->answered_at, answered, o->utc_offset_s);
    }

    snprintf(r->text, sizeof r->text, "Синтетическое обращение №%llu: %s.",
             (unsigned long long)i + 1, pick_listed(&g, p->phrases));
    spoil(&g, i, dirty, created, o->utc_offset_s, r);
}

int pm_synth_run(pm_ctx *ctx, const pm_synth_opts *o, const pm_synth_town *towns,
                 size_t n_towns, const pm_districts *ds, const char *const *topic_codes,
                 const double *topic_weights, size_t n_topics,
                 int (*emit)(void *user, const pm_synth_row *row), void *user)
{
    if (!o || !emit || (n_towns && !towns) || (n_topics && (!topic_codes || !topic_weights)))
        return PM_ERR(ctx, PM_E_USAGE, "synthetic complaints: missing argument");
    int rc = check_opts(ctx, o, n_towns, ds, n_topics);
    if (rc || (rc = check_topics(ctx, topic_codes, n_topics)))
        return rc;

    synth s = {
        .o = o, .towns = towns, .n_towns = n_towns, .ds = ds,
        .n_districts = ds ? pm_districts_count(ds) : 0,
        .topics = topic_codes, .n_topics = n_topics,
        .end = o->start + (int64_t)o->days * DAY_S,
    };
    if ((rc = make_cum(ctx, topic_weights, n_topics, "topic", &s.topic_cum)) ||
        (rc = setup_towns(ctx, &s)) || (rc = setup_districts(ctx, &s)) ||
        (rc = setup_hours(ctx, &s)))
        goto cleanup;

    pm_synth_row row;
    for (size_t i = 0; i < o->n; i++) {
        make_row(&s, i, &row);
        if ((rc = emit(user, &row)) != 0)
            break;
    }
cleanup:
    synth_free(&s);
    return rc;
}
