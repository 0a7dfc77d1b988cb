/* complaint.c — the columnar complaint batch (see pm_complaint.h). */
#include "pm_complaint.h"
#include "pm_alloc.h"
#include "pm_snap.h"
#include "strtab.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

/* The input lines, as runs rather than a column: complaint i of run r
 * (from[r] <= i < from[r + 1]) came from line first[r] + (i - from[r]) *
 * step[r], modulo 2^64; a run's second complaint sets its step, any step.
 * A file read whole is one run, and each record rejected or spanning
 * several lines starts another: a few bytes in all where a column took 8
 * a complaint.  Lines in no order (read back from the database by time)
 * would make a run of every two complaints, 10 bytes each: when the runs
 * would take more room than a column, they become one (dense, grown with
 * the columns from then on). */
typedef struct line_runs {
    uint64_t *first, *step;
    uint32_t *from;              /* complaint indexes fit 32 bits (the id table's) */
    size_t n, cap;
    uint64_t *dense;             /* the column instead, once it is lighter */
} line_runs;

enum { LINE_RUNS_MIN = 4096 };   /* room for this many runs never turns into a column */

/* The dictionary columns are as narrow as their indexes allow: 1 byte a
 * complaint while a column's dictionary has fewer than 255 values, 2 below
 * 65 535, else 4; the widest value of a width stands for PM_NONE.  A column
 * widens (a copy) when an index does not fit: sources and statuses stay at
 * one byte, executors at two, where each took four.
 *
 * Creation times are kept as int32_t seconds from the first complaint's
 * (created_base), half the room of the times: 68 years either way.
 * Should one lie further (from another source), they are kept whole from
 * then on, in a column of their own (created_wide).
 *
 * Answer times are kept as waits, answered - created in a uint32_t
 * (UINT32_MAX: not answered), half the room of the times: the intake
 * refuses an answer before its creation, and a wait of 136 years does not
 * happen.  Should one come anyway (from another source), the times are
 * kept whole from then on, in a column of their own (wide).
 *
 * Positions are kept as int32_t ten-millionths of a degree, half the room
 * of the doubles, as long as each one decodes to the very double it came
 * as (coord_e7: coordinates with up to seven decimals do, as OpenStreetMap
 * stores them).  From the first that would not, both are kept whole, in
 * columns of their own (lon_wide, lat_wide).
 *
 * A compact column stays in COLUMNS once its values are kept whole,
 * unused but grown with the others: the prefault helper may be touching
 * its pages, so it must not be freed while the batch is being read. */
struct pm_complaints {
    size_t n, cap;
    int32_t *lon, *lat;          /* degrees × 10^7, PM_COORD_E7_NONE: NAN */
    double *lon_wide, *lat_wide; /* NULL until a coordinate does not fit */
    int32_t *created;
    int64_t created_base;        /* the first complaint's creation time */
    int64_t *created_wide;       /* NULL until a creation time does not fit */
    uint32_t *wait;
    int64_t *wide;               /* NULL until a wait does not fit */
    uint16_t *topic;
    void *dict[PM_DICT_N];
    unsigned dict_w[PM_DICT_N];  /* bytes a complaint: 1, 2 or 4 */
    line_runs lines;
    pm_strtab *ids;              /* id i is string i: ids are unique */
    pm_strtab *dicts[PM_DICT_N];
    int view;                    /* the columns are a snapshot's (pm_complaints_snap_map) */
};

pm_complaints *pm_complaints_new(void)
{
    pm_complaints *cs = pm_calloc(1, sizeof *cs);
    if (!cs)
        return NULL;
    cs->ids = pm_strtab_new_ids();
    int ok = cs->ids != NULL;
    for (int k = 0; k < PM_DICT_N; k++) {
        cs->dicts[k] = pm_strtab_new();
        cs->dict_w[k] = 1;
        ok = ok && cs->dicts[k];
    }
    if (!ok) {
        pm_complaints_free(cs);
        return NULL;
    }
    return cs;
}

/* Every fixed-width column, once: what is done to each of them (freeing,
 * growing, faulting in) goes through this list, so no column can be left
 * out.  The dictionary columns, whose width changes, are handled apart. */
#define COLUMNS(X) X(lon) X(lat) X(created) X(wait) X(topic)

void pm_complaints_free(pm_complaints *cs)
{
    if (!cs)
        return;
    if (cs->view) {   /* the columns are the snapshot's; the dictionaries are ours */
        for (int k = 0; k < PM_DICT_N; k++)
            pm_strtab_free(cs->dicts[k]);
        pm_strtab_free(cs->ids);
        pm_free(cs);
        return;
    }
#define FREE(col) pm_free(cs->col);
    COLUMNS(FREE)
#undef FREE
    for (int k = 0; k < PM_DICT_N; k++)
        pm_free(cs->dict[k]);
    pm_free(cs->wide);
    pm_free(cs->created_wide);
    pm_free(cs->lon_wide);
    pm_free(cs->lat_wide);
    pm_free(cs->lines.first);
    pm_free(cs->lines.step);
    pm_free(cs->lines.from);
    pm_free(cs->lines.dense);
    for (int k = 0; k < PM_DICT_N; k++)
        pm_strtab_free(cs->dicts[k]);
    pm_strtab_free(cs->ids);
    pm_free(cs);
}

static int grow_columns(pm_complaints *cs, size_t cap)
{
#define GROW(col)                                                              \
    do {                                                                       \
        void *p_ = pm_reallocarray(cs->col, cap, sizeof *cs->col);             \
        if (!p_)                                                               \
            return -1;                                                         \
        cs->col = p_;                                                          \
    } while (0);
    COLUMNS(GROW)
    if (cs->lines.dense)
        GROW(lines.dense)
    if (cs->wide)
        GROW(wide)
    if (cs->created_wide)
        GROW(created_wide)
    if (cs->lon_wide) {
        GROW(lon_wide)
        GROW(lat_wide)
    }
#undef GROW
    for (int k = 0; k < PM_DICT_N; k++) {
        void *p = pm_reallocarray(cs->dict[k], cap, cs->dict_w[k]);
        if (!p)
            return -1;
        cs->dict[k] = p;
    }
    cs->cap = cap;
    return 0;
}

static void dict_put(void *v, unsigned w, size_t i, uint32_t idx)
{
    if (w == 1)
        ((uint8_t *)v)[i] = idx == PM_NONE ? UINT8_MAX : (uint8_t)idx;
    else if (w == 2)
        ((uint16_t *)v)[i] = idx == PM_NONE ? UINT16_MAX : (uint16_t)idx;
    else
        ((uint32_t *)v)[i] = idx;
}

/* Whether creation time t fits the column of creation times (the first
 * one sets its base). */
static int created_fits(const pm_complaints *cs, int64_t t)
{
    int64_t d;
    return cs->n == 0 ||
           (!__builtin_sub_overflow(t, cs->created_base, &d) && d >= INT32_MIN && d <= INT32_MAX);
}

/* The times `at` gives for the complaints so far, kept whole in a column
 * of the capacity: for a time the compact column cannot hold (NULL when
 * out of memory). */
static int64_t *whole_times(const pm_complaints *cs,
                            int64_t (*at)(const pm_complaints *, size_t))
{
    int64_t *w = pm_reallocarray(NULL, cs->cap, sizeof *w);
    for (size_t i = 0; w && i < cs->n; i++)
        w[i] = at(cs, i);
    return w;
}

/* Coordinate x in the compact column: 1 with *e7 set when it decodes to
 * x bit for bit (NAN too), else 0. */
static int coord_e7(double x, int32_t *e7)
{
    int32_t k = PM_COORD_E7_NONE;
    if (!isnan(x)) {
        if (!(fabs(x) <= 214.0))   /* beyond int32 at 10^7; ±180 fits */
            return 0;
        k = (int32_t)llrint(x * 1e7);
    }
    double back = pm_coord_at((pm_coord_column){&k, NULL}, 0);
    *e7 = k;
    return memcmp(&back, &x, sizeof x) == 0;
}

/* The coordinates `at` gives for the complaints so far, kept whole in a
 * column of the capacity (NULL when out of memory). */
static double *whole_coords(const pm_complaints *cs, double (*at)(const pm_complaints *, size_t))
{
    double *w = pm_reallocarray(NULL, cs->cap, sizeof *w);
    for (size_t i = 0; w && i < cs->n; i++)
        w[i] = at(cs, i);
    return w;
}

/* Keeps the coordinates whole from now on; 0, or -1 when out of memory
 * (nothing changed then). */
static int coords_to_wide(pm_complaints *cs)
{
    double *lon = whole_coords(cs, pm_complaints_lon_at);
    double *lat = lon ? whole_coords(cs, pm_complaints_lat_at) : NULL;
    if (!lat) {
        pm_free(lon);
        return -1;
    }
    cs->lon_wide = lon;
    cs->lat_wide = lat;
    return 0;
}

/* Whether an answer time fits a wait after created. */
static int wait_fits(int64_t created, int64_t answered)
{
    return answered == PM_TIME_NONE ||
           (answered >= created && (uint64_t)answered - (uint64_t)created < UINT32_MAX);
}

/* Makes dictionary column k wide enough for index idx (PM_NONE fits any
 * width); 0, or -1 when out of memory (nothing changed then). */
static int dict_fit(pm_complaints *cs, int k, uint32_t idx)
{
    unsigned w = idx == PM_NONE || idx < UINT8_MAX ? 1 : idx < UINT16_MAX ? 2 : 4;
    if (w <= cs->dict_w[k])
        return 0;
    void *p = pm_reallocarray(NULL, cs->cap, w);
    if (!p)
        return -1;
    pm_dict_column old = {cs->dict[k], cs->dict_w[k]};
    for (size_t i = 0; i < cs->n; i++)
        dict_put(p, w, i, pm_dict_column_at(old, i));
    pm_free(cs->dict[k]);
    cs->dict[k] = p;
    cs->dict_w[k] = w;
    return 0;
}

/* The runs' lines as a column of cs->cap (0, or -1 when out of memory:
 * nothing changed then). */
static int lines_to_dense(pm_complaints *cs)
{
    line_runs *r = &cs->lines;
    uint64_t *d = pm_reallocarray(NULL, cs->cap, sizeof *d);
    if (!d)
        return -1;
    for (size_t j = 0; j < r->n; j++) {
        size_t end = j + 1 < r->n ? r->from[j + 1] : cs->n;
        for (size_t i = r->from[j]; i < end; i++)
            d[i] = r->first[j] + (uint64_t)(i - r->from[j]) * r->step[j];
    }
    pm_free(r->first);
    pm_free(r->step);
    pm_free(r->from);
    *r = (line_runs){.dense = d};
    return 0;
}

/* Room for the line of complaint cs->n (the columns have room for it). */
static int lines_room(pm_complaints *cs)
{
    line_runs *r = &cs->lines;
    if (r->dense || r->n < r->cap)
        return 0;
    size_t cap = r->cap ? r->cap * 2 : 16;
    if (cap > LINE_RUNS_MIN && cap * 20 > cs->n * 8)   /* 20 bytes a run, 8 a line */
        return lines_to_dense(cs);
    uint64_t *first = pm_reallocarray(r->first, cap, sizeof *first);
    if (first)
        r->first = first;
    uint64_t *step = first ? pm_reallocarray(r->step, cap, sizeof *step) : NULL;
    if (step)
        r->step = step;
    uint32_t *from = step ? pm_reallocarray(r->from, cap, sizeof *from) : NULL;
    if (!from)
        return -1;
    r->from = from;
    r->cap = cap;
    return 0;
}

/* Records complaint i's line (i == cs->n, room made by lines_room). */
static void lines_put(pm_complaints *cs, size_t i, uint64_t line)
{
    line_runs *r = &cs->lines;
    if (r->dense) {
        r->dense[i] = line;
        return;
    }
    if (r->n) {
        size_t j = r->n - 1;
        uint64_t k = i - r->from[j];
        if (k == 1) {
            r->step[j] = line - r->first[j];
            return;
        }
        if (line == r->first[j] + k * r->step[j])
            return;
    }
    r->first[r->n] = line;
    r->step[r->n] = 0;
    r->from[r->n] = (uint32_t)i;
    r->n++;
}

static int reserve(pm_complaints *cs)
{
    if (cs->n < cs->cap)
        return 0;
    return grow_columns(cs, cs->cap ? cs->cap * 2 : 1024);
}

int pm_complaints_reserve(pm_ctx *ctx, pm_complaints *cs, size_t n)
{
    if (cs->view)
        return PM_ERR(ctx, PM_E_USAGE, "a snapshot's complaints cannot be added to");
    size_t want = cs->n + n;
    if (want < cs->n || want >= UINT32_MAX - 1)   /* ids are 32-bit: more could never be added */
        return PM_ERR(ctx, PM_E_NOMEM, "no room for %zu more complaints: at most %" PRIu32,
                      n, UINT32_MAX - 2);
    if ((want > cs->cap && grow_columns(cs, want) != 0) || pm_strtab_reserve(cs->ids, want) != 0)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory making room for %zu complaints", n);
    return PM_OK;
}

int pm_complaints_add(pm_ctx *ctx, pm_complaints *cs, const pm_complaint *c)
{
    uint32_t idx[PM_DICT_N] = {PM_DICT_LOOKUP, PM_DICT_LOOKUP, PM_DICT_LOOKUP, PM_DICT_LOOKUP};
    return pm_complaints_add_indexed(ctx, cs, c, idx);
}

int pm_complaints_add_indexed(pm_ctx *ctx, pm_complaints *cs, const pm_complaint *c,
                              uint32_t idx[PM_DICT_N])
{
    if (cs->view)
        return PM_ERR(ctx, PM_E_USAGE, "a snapshot's complaints cannot be added to");
    if (!c->id || !c->id[0])
        return PM_ERR(ctx, PM_E_INPUT_VALUE, "complaint without an id");
    for (int k = 0; k < PM_DICT_N; k++)
        if (idx[k] != PM_NONE && idx[k] != PM_DICT_LOOKUP &&
            idx[k] >= pm_strtab_count(cs->dicts[k]))
            return PM_ERR(ctx, PM_E_USAGE, "complaint %s: no value %" PRIu32 " in dictionary "
                          "column %d", c->id, idx[k], k);
    pm_strtab_pos id_pos;   /* valid until cs->ids changes: only the dicts change below */
    if (pm_strtab_lookup(cs->ids, c->id, &id_pos) >= 0)
        return PM_ERR(ctx, PM_E_INPUT_VALUE, "duplicate id \"%s\"", c->id);
    if (reserve(cs) != 0 || lines_room(cs) != 0)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory adding complaint %s", c->id);
    const char *vals[PM_DICT_N] = {c->source, c->status, c->executor, c->district_code};
    uint32_t got[PM_DICT_N];
    for (int k = 0; k < PM_DICT_N; k++) {
        got[k] = idx[k];
        if (idx[k] != PM_DICT_LOOKUP)
            continue;
        if (!vals[k] || !vals[k][0]) {
            got[k] = PM_NONE;
            continue;
        }
        int64_t i = pm_strtab_intern(cs->dicts[k], vals[k], NULL);
        if (i < 0)
            return PM_ERR(ctx, PM_E_NOMEM, "out of memory adding complaint %s", c->id);
        got[k] = (uint32_t)i;
    }
    for (int k = 0; k < PM_DICT_N; k++)
        if (dict_fit(cs, k, got[k]) != 0)
            return PM_ERR(ctx, PM_E_NOMEM, "out of memory adding complaint %s", c->id);
    /* a time the compact columns cannot hold: they are kept whole from now on */
    if (!cs->wide && !wait_fits(c->created_at, c->answered_at) &&
        !(cs->wide = whole_times(cs, pm_complaints_answered_at)))
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory adding complaint %s", c->id);
    if (!cs->created_wide && !created_fits(cs, c->created_at) &&
        !(cs->created_wide = whole_times(cs, pm_complaints_created_at)))
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory adding complaint %s", c->id);
    int32_t lon_e7 = PM_COORD_E7_NONE, lat_e7 = PM_COORD_E7_NONE;
    if (!cs->lon_wide && !(coord_e7(c->lon, &lon_e7) && coord_e7(c->lat, &lat_e7)) &&
        coords_to_wide(cs) != 0)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory adding complaint %s", c->id);
    if (pm_strtab_insert(cs->ids, c->id, &id_pos) < 0)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory adding complaint %s", c->id);
    size_t i = cs->n++;
    if (cs->lon_wide) {
        cs->lon_wide[i] = c->lon;
        cs->lat_wide[i] = c->lat;
    } else {
        cs->lon[i] = lon_e7;
        cs->lat[i] = lat_e7;
    }
    if (i == 0)
        cs->created_base = c->created_at;
    if (cs->created_wide)
        cs->created_wide[i] = c->created_at;
    else
        cs->created[i] = (int32_t)(c->created_at - cs->created_base);
    if (cs->wide)
        cs->wide[i] = c->answered_at;
    else
        cs->wait[i] = c->answered_at == PM_TIME_NONE
                          ? UINT32_MAX
                          : (uint32_t)((uint64_t)c->answered_at - (uint64_t)c->created_at);
    cs->topic[i] = c->topic;
    lines_put(cs, i, c->line);
    for (int k = 0; k < PM_DICT_N; k++) {
        dict_put(cs->dict[k], cs->dict_w[k], i, got[k]);
        idx[k] = got[k];
    }
    return PM_OK;
}

void pm_complaints_prefetch_id(const pm_complaints *cs, const char *id)
{
    pm_strtab_prefetch(cs->ids, id);
}

void pm_complaints_prefault(const pm_complaints *cs, size_t from, size_t to)
{
    if (to > cs->cap)
        to = cs->cap;
    if (cs->view || from >= to)
        return;
    size_t n = to - from;
#define PREFAULT(col) pm_alloc_prefault(cs->col + from, n * sizeof *cs->col);
    COLUMNS(PREFAULT)
#undef PREFAULT
}

size_t pm_complaints_count(const pm_complaints *cs) { return cs->n; }
size_t pm_complaints_capacity(const pm_complaints *cs) { return cs->cap; }
pm_coord_column pm_complaints_lon(const pm_complaints *cs)
{
    return (pm_coord_column){cs->lon, cs->lon_wide};
}

pm_coord_column pm_complaints_lat(const pm_complaints *cs)
{
    return (pm_coord_column){cs->lat, cs->lat_wide};
}

double pm_complaints_lon_at(const pm_complaints *cs, size_t i)
{
    return pm_coord_at(pm_complaints_lon(cs), i);
}

double pm_complaints_lat_at(const pm_complaints *cs, size_t i)
{
    return pm_coord_at(pm_complaints_lat(cs), i);
}

pm_created_column pm_complaints_created(const pm_complaints *cs)
{
    return (pm_created_column){cs->created, cs->created_base, cs->created_wide};
}

int64_t pm_complaints_created_at(const pm_complaints *cs, size_t i)
{
    return pm_created_at(pm_complaints_created(cs), i);
}

pm_answered_column pm_complaints_answered(const pm_complaints *cs)
{
    return (pm_answered_column){pm_complaints_created(cs), cs->wait, cs->wide};
}

int64_t pm_complaints_answered_at(const pm_complaints *cs, size_t i)
{
    return pm_answered_at(pm_complaints_answered(cs), i);
}

const uint16_t *pm_complaints_topic(const pm_complaints *cs) { return cs->topic; }
pm_dict_column pm_complaints_dict(const pm_complaints *cs, pm_dict_col col)
{
    return (pm_dict_column){cs->dict[col], cs->dict_w[col]};
}

uint32_t pm_complaints_dict_at(const pm_complaints *cs, pm_dict_col col, size_t i)
{
    return pm_dict_column_at(pm_complaints_dict(cs, col), i);
}

uint64_t pm_complaints_line(const pm_complaints *cs, size_t i)
{
    const line_runs *r = &cs->lines;
    if (cs->view)
        return 0;
    if (r->dense)
        return r->dense[i];
    size_t lo = 0, hi = r->n;   /* the last run starting at or before i */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->from[mid] <= i)
            lo = mid;
        else
            hi = mid;
    }
    return r->first[lo] + (uint64_t)(i - r->from[lo]) * r->step[lo];
}

size_t pm_complaints_line_bytes(const pm_complaints *cs)
{
    const line_runs *r = &cs->lines;
    return r->dense ? cs->cap * sizeof *r->dense
                    : r->cap * (sizeof *r->first + sizeof *r->step + sizeof *r->from);
}
const char *pm_complaints_id(const pm_complaints *cs, size_t i)
{
    return cs->view ? "" : pm_strtab_str(cs->ids, i);
}

const char *pm_complaints_dict_str(const pm_complaints *cs, pm_dict_col col, uint32_t idx)
{
    return idx == PM_NONE ? "" : pm_strtab_str(cs->dicts[col], idx);
}

size_t pm_complaints_dict_count(const pm_complaints *cs, pm_dict_col col)
{
    return pm_strtab_count(cs->dicts[col]);
}

/* ---- snapshots ------------------------------------------------------------------ */

/* The sections (pm_snap.h).  cMET holds META_N u64: the count, the base of
 * the creation times, which columns are kept whole (1) or compact (0), and
 * the dictionary columns' widths and sizes.  cSTR holds the dictionaries'
 * strings, NUL-terminated, column after column. */
#define TAG_META PM_SNAP_TAG('c', 'M', 'E', 'T')
#define TAG_LON PM_SNAP_TAG('c', 'L', 'O', 'N')
#define TAG_LAT PM_SNAP_TAG('c', 'L', 'A', 'T')
#define TAG_CREATED PM_SNAP_TAG('c', 'C', 'R', 'E')
#define TAG_WAIT PM_SNAP_TAG('c', 'W', 'A', 'I')
#define TAG_TOPIC PM_SNAP_TAG('c', 'T', 'O', 'P')
#define TAG_DICT(k) PM_SNAP_TAG('c', 'D', 'C', '0' + (k))
#define TAG_STRINGS PM_SNAP_TAG('c', 'S', 'T', 'R')
enum { M_N, M_CREATED_BASE, M_COORDS_WIDE, M_CREATED_WIDE, M_WAIT_WIDE, M_DICT_W,
       M_DICT_COUNT = M_DICT_W + PM_DICT_N, META_N = M_DICT_COUNT + PM_DICT_N };

/* Times the snapshot's reader takes: ±31 700 years, so that no sum or
 * difference of two overflows (the intake reads years 0 to 9999). */
#define TIME_LIMIT INT64_C(1000000000000)

int pm_complaints_snap_write(pm_ctx *ctx, const pm_complaints *cs, pm_snap_writer *w)
{
    size_t n = cs->n;
    uint64_t meta[META_N] = {n, (uint64_t)cs->created_base, cs->lon_wide != NULL,
                             cs->created_wide != NULL, cs->wide != NULL};
    for (int k = 0; k < PM_DICT_N; k++) {
        meta[M_DICT_W + k] = cs->dict_w[k];
        meta[M_DICT_COUNT + k] = pm_strtab_count(cs->dicts[k]);
    }
    int rc = pm_snap_put(ctx, w, TAG_META, meta, sizeof *meta, META_N);
    if (cs->lon_wide) {
        rc = rc ? rc : pm_snap_put(ctx, w, TAG_LON, cs->lon_wide, sizeof *cs->lon_wide, n);
        rc = rc ? rc : pm_snap_put(ctx, w, TAG_LAT, cs->lat_wide, sizeof *cs->lat_wide, n);
    } else {
        rc = rc ? rc : pm_snap_put(ctx, w, TAG_LON, cs->lon, sizeof *cs->lon, n);
        rc = rc ? rc : pm_snap_put(ctx, w, TAG_LAT, cs->lat, sizeof *cs->lat, n);
    }
    if (cs->created_wide)
        rc = rc ? rc : pm_snap_put(ctx, w, TAG_CREATED, cs->created_wide, sizeof *cs->created_wide, n);
    else
        rc = rc ? rc : pm_snap_put(ctx, w, TAG_CREATED, cs->created, sizeof *cs->created, n);
    if (cs->wide)
        rc = rc ? rc : pm_snap_put(ctx, w, TAG_WAIT, cs->wide, sizeof *cs->wide, n);
    else
        rc = rc ? rc : pm_snap_put(ctx, w, TAG_WAIT, cs->wait, sizeof *cs->wait, n);
    rc = rc ? rc : pm_snap_put(ctx, w, TAG_TOPIC, cs->topic, sizeof *cs->topic, n);
    for (int k = 0; k < PM_DICT_N; k++)
        rc = rc ? rc : pm_snap_put(ctx, w, TAG_DICT(k), cs->dict[k], cs->dict_w[k], n);
    rc = rc ? rc : pm_snap_begin(ctx, w, TAG_STRINGS, 1);
    for (int k = 0; k < PM_DICT_N; k++)
        for (size_t i = 0; !rc && i < pm_strtab_count(cs->dicts[k]); i++) {
            const char *str = pm_strtab_str(cs->dicts[k], i);
            rc = pm_snap_append(ctx, w, str, strlen(str) + 1);
        }
    return rc ? rc : pm_snap_end(ctx, w);
}

/* The dictionaries from cSTR: each string in its place, once. */
static int map_strings(pm_ctx *ctx, pm_snap *s, pm_complaints *cs, const uint64_t *meta)
{
    const char *p;
    size_t len;
    int rc = pm_snap_section(ctx, s, TAG_STRINGS, 1, SIZE_MAX, (const void **)&p, &len);
    size_t at = 0;
    for (int k = 0; !rc && k < PM_DICT_N; k++)
        for (uint64_t i = 0; !rc && i < meta[M_DICT_COUNT + k]; i++) {
            const char *end = memchr(p + at, 0, len - at);
            if (!end)
                return pm_snap_damaged(ctx, s, TAG_STRINGS, "%d dictionaries' strings run past "
                                       "its end", PM_DICT_N);
            int added = 0;
            int64_t idx = pm_strtab_intern(cs->dicts[k], p + at, &added);
            if (idx < 0)
                return PM_ERR(ctx, PM_E_NOMEM, "out of memory reading %s", pm_snap_path(s));
            if (!added)
                return pm_snap_damaged(ctx, s, TAG_STRINGS, "\"%s\" twice in dictionary %d",
                                       p + at, k);
            at = (size_t)(end - p) + 1;
        }
    if (!rc && at != len)
        rc = pm_snap_damaged(ctx, s, TAG_STRINGS, "%zu bytes left over", len - at);
    return rc;
}

/* A column of n elements, compact (narrow bytes each: *narrow_out) or
 * whole (whole bytes: *wide_out) as the metadata says; the other is NULL. */
static int map_column(pm_ctx *ctx, pm_snap *s, uint32_t tag, int wide, size_t narrow, size_t whole,
                      size_t n, const void **narrow_out, const void **wide_out)
{
    const void *p;
    int rc = pm_snap_section(ctx, s, tag, wide ? whole : narrow, n, &p, NULL);
    *narrow_out = wide ? NULL : p;
    *wide_out = wide ? p : NULL;
    return rc;
}

/* Every value as the intake leaves it, so that nothing downstream meets
 * one it was not written for (a topic past the catalogue, an index past a
 * dictionary, a time that overflows a difference, a position off the
 * globe). */
static int check_values(pm_ctx *ctx, pm_snap *s, const pm_complaints *cs, size_t n_topics)
{
    pm_coord_column lons = pm_complaints_lon(cs), lats = pm_complaints_lat(cs);
    pm_created_column created = pm_complaints_created(cs);
    pm_answered_column answered = pm_complaints_answered(cs);
    pm_dict_column dict[PM_DICT_N];
    size_t dict_n[PM_DICT_N];
    for (int k = 0; k < PM_DICT_N; k++) {
        dict[k] = pm_complaints_dict(cs, (pm_dict_col)k);
        dict_n[k] = pm_strtab_count(cs->dicts[k]);
    }
    for (size_t i = 0; i < cs->n; i++) {
        double lon = pm_coord_at(lons, i), lat = pm_coord_at(lats, i);
        if (isnan(lon) != isnan(lat) || (!isnan(lon) && !(fabs(lon) <= 180 && fabs(lat) <= 90)))
            return pm_snap_damaged(ctx, s, TAG_LON, "complaint %zu at %g, %g", i, lon, lat);
        int64_t c = pm_created_at(created, i), a = pm_answered_at(answered, i);
        if (c < -TIME_LIMIT || c > TIME_LIMIT)
            return pm_snap_damaged(ctx, s, TAG_CREATED, "complaint %zu at %" PRId64 " s", i, c);
        if (a != PM_TIME_NONE && (a < -TIME_LIMIT || a > TIME_LIMIT))
            return pm_snap_damaged(ctx, s, TAG_WAIT, "complaint %zu answered at %" PRId64 " s", i, a);
        if (cs->topic[i] >= n_topics)
            return pm_snap_damaged(ctx, s, TAG_TOPIC, "complaint %zu: topic %u of %zu", i,
                                   cs->topic[i], n_topics);
        for (int k = 0; k < PM_DICT_N; k++) {
            uint32_t idx = pm_dict_column_at(dict[k], i);
            if (idx != PM_NONE && idx >= dict_n[k])
                return pm_snap_damaged(ctx, s, TAG_DICT(k), "complaint %zu: value %" PRIu32
                                       " of %zu", i, idx, dict_n[k]);
        }
    }
    return PM_OK;
}

int pm_complaints_snap_map(pm_ctx *ctx, pm_snap *s, size_t n_topics, pm_complaints **out)
{
    *out = NULL;
    const uint64_t *meta;
    int rc = pm_snap_section(ctx, s, TAG_META, sizeof *meta, META_N, (const void **)&meta, NULL);
    if (rc)
        return rc;
    if (meta[M_N] >= UINT32_MAX - 1 || meta[M_COORDS_WIDE] > 1 || meta[M_CREATED_WIDE] > 1 ||
        meta[M_WAIT_WIDE] > 1)
        return pm_snap_damaged(ctx, s, TAG_META, "impossible counts or flags");
    for (int k = 0; k < PM_DICT_N; k++) {
        uint64_t wd = meta[M_DICT_W + k];
        /* the widest index of a width is PM_NONE: a dictionary fills one less */
        uint64_t room = wd == 1 ? UINT8_MAX : wd == 2 ? UINT16_MAX : UINT32_MAX;
        if ((wd != 1 && wd != 2 && wd != 4) || meta[M_DICT_COUNT + k] > room)
            return pm_snap_damaged(ctx, s, TAG_META, "dictionary %d: width %" PRIu64 " for %"
                                   PRIu64 " values", k, wd, meta[M_DICT_COUNT + k]);
    }
    pm_complaints *cs = pm_complaints_new();
    if (!cs)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory reading %s", pm_snap_path(s));
    cs->view = 1;
    size_t n = (size_t)meta[M_N];
    cs->n = cs->cap = n;
    cs->created_base = (int64_t)meta[M_CREATED_BASE];
    const void *a = NULL, *b = NULL;
    rc = map_column(ctx, s, TAG_LON, (int)meta[M_COORDS_WIDE], 4, 8, n, &a, &b);
    cs->lon = (int32_t *)a, cs->lon_wide = (double *)b;
    rc = rc ? rc : map_column(ctx, s, TAG_LAT, (int)meta[M_COORDS_WIDE], 4, 8, n, &a, &b);
    cs->lat = (int32_t *)a, cs->lat_wide = (double *)b;
    rc = rc ? rc : map_column(ctx, s, TAG_CREATED, (int)meta[M_CREATED_WIDE], 4, 8, n, &a, &b);
    cs->created = (int32_t *)a, cs->created_wide = (int64_t *)b;
    rc = rc ? rc : map_column(ctx, s, TAG_WAIT, (int)meta[M_WAIT_WIDE], 4, 8, n, &a, &b);
    cs->wait = (uint32_t *)a, cs->wide = (int64_t *)b;
    rc = rc ? rc : pm_snap_section(ctx, s, TAG_TOPIC, 2, n, (const void **)&cs->topic, NULL);
    for (int k = 0; !rc && k < PM_DICT_N; k++) {
        cs->dict_w[k] = (unsigned)meta[M_DICT_W + k];
        rc = pm_snap_section(ctx, s, TAG_DICT(k), cs->dict_w[k], n, (const void **)&cs->dict[k], NULL);
    }
    rc = rc ? rc : map_strings(ctx, s, cs, meta);
    rc = rc ? rc : check_values(ctx, s, cs, n_topics);
    if (rc) {
        pm_complaints_free(cs);
        return rc;
    }
    *out = cs;
    return PM_OK;
}
