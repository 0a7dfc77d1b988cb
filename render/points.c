/* points.c — the heat map's points: placed complaints projected once onto
 * the tile grid's plane and sorted by Morton code, so that the
 * points near any box are a few binary searches away (see heat_impl.h).
 *
 * Build.  The complaints placed inside, on a border or snapped that have
 * coordinates and a weight above 0 are gathered as whole records
 * (position, scale factor, day, topic, source, weight) in input order,
 * projected as they are gathered (pm_grid_forward(): the closed forms of
 * both grids, held to PROJ within 1e-6 m by test_heat; PROJ's
 * proj_trans_generic() took 1.5 of the 5–6 s that 13.4 M points took to
 * build), given their zoom-24 Morton code and sorted by it with an LSD
 * radix sort, 12 bits a pass (4 passes over a code's 48 bits; with 8 bits
 * all 6 passes ran for one region), skipping the passes where every code
 * has the same digit: stable, so ties keep their input order; the columns
 * are then written in one sequential pass.
 * (Sorting (code, index) pairs and gathering the columns at random
 * afterwards measured the same on 1 M points, and ~1.6× slower on 13.4 M:
 * 8–10 s against 5–5.7 s a grid, both grids at once.)  Points that project
 * outside the tile square (|lat| beyond ~85°) lie on no tile and are
 * dropped with a warning.  The weight column is kept only when some weight
 * is not 1.
 *
 * Weights (pm_weight, judged at report_time T) follow the cube
 * (engine/cube.c, docs/cube.md), so the map and the tables agree: a
 * complaint is open when it has no answer (as the data says; T does not
 * reopen one answered later); overdue when open and created strictly
 * before T − 24 h; waiting, the hours from creation to the answer or,
 * while open, to T (0 when created after T or answered at creation).
 *
 * Query.  A box is covered by the quadtree cells of the level whose cell
 * is at least a quarter of the box's larger side: at most 5 × 5 cells,
 * each a contiguous run of Morton codes; runs that touch are merged and
 * each is found by two binary searches. */
#include "heat_impl.h"
#include "../engine/pm_alloc.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WORLD_CELLS ((uint32_t)1 << PM_HEAT_MORTON_ZOOM)
#define DEG (M_PI / 180.0)

/* ---- grid geometry -------------------------------------------------------- */

const char *pm_grid_crs(pm_grid g) { return g == PM_GRID_WORLDMERC ? "EPSG:3395" : "EPSG:3857"; }

double pm_grid_scale_at_lat(pm_grid g, double lat_deg)
{
    double phi = lat_deg * DEG, c = cos(phi);
    if (g == PM_GRID_WEBMERC)
        return 1.0 / c;
    double s = sin(phi);
    return sqrt(1.0 - PM_HEAT_WGS84_E2 * s * s) / c;
}

/* The geodetic latitude of northing y on EPSG:3395: from the isometric
 * latitude ψ = y/a, φ = asin(tanh(ψ + e·atanh(e sin φ))), a contraction by
 * e² per step. */
static double worldmerc_lat(double y_m)
{
    double psi = y_m / PM_HEAT_WGS84_A, e = sqrt(PM_HEAT_WGS84_E2);
    double phi = asin(tanh(psi));
    for (int i = 0; i < 12; i++)
        phi = asin(tanh(psi + e * atanh(e * sin(phi))));
    return phi;
}

void pm_grid_forward(pm_grid g, double lon_deg, double lat_deg, double *x_m, double *y_m)
{
    double lam = lon_deg * DEG;
    if (fabs(lam) >= M_PI + 1e-12)   /* as PROJ's adjlon(): into [−π, π) */
        lam = lam + M_PI - 2 * M_PI * floor((lam + M_PI) / (2 * M_PI)) - M_PI;
    double s = sin(lat_deg * DEG), y = atanh(s);
    if (g == PM_GRID_WORLDMERC) {
        double e = sqrt(PM_HEAT_WGS84_E2);
        y -= e * atanh(e * s);
    }
    *x_m = PM_HEAT_WGS84_A * lam;
    *y_m = PM_HEAT_WGS84_A * y;
}

double pm_grid_scale_at_y(pm_grid g, double y_m)
{
    if (g == PM_GRID_WEBMERC)
        return cosh(y_m / PM_HEAT_WGS84_A);
    return pm_grid_scale_at_lat(g, worldmerc_lat(y_m) / DEG);
}

/* ---- Morton codes ----------------------------------------------------------- */

/* The zoom-24 column of x and row of y (rows from the north), clamped to
 * the world: monotonic in x and in −y, so a box's cells bound its points'. */
static uint32_t cell_x(double x_m)
{
    double c = floor((x_m + PM_HEAT_HALF_WORLD_M) * (WORLD_CELLS / (2 * PM_HEAT_HALF_WORLD_M)));
    return c < 0 ? 0 : c >= WORLD_CELLS ? WORLD_CELLS - 1 : (uint32_t)c;
}

static uint32_t cell_y(double y_m)
{
    return cell_x(-y_m);
}

/* The 24 low bits of v spread to the even bits. */
static uint64_t spread(uint32_t v)
{
    uint64_t x = v & 0xffffffu;
    x = (x | (x << 16)) & 0x0000ffff0000ffffull;
    x = (x | (x << 8)) & 0x00ff00ff00ff00ffull;
    x = (x | (x << 4)) & 0x0f0f0f0f0f0f0f0full;
    x = (x | (x << 2)) & 0x3333333333333333ull;
    x = (x | (x << 1)) & 0x5555555555555555ull;
    return x;
}

static uint64_t morton(uint32_t cx, uint32_t cy) { return spread(cx) | spread(cy) << 1; }

/* ---- the radix sort ----------------------------------------------------------- */

/* A point while it is built: gathered (and projected) in input order,
 * sorted whole, so that the last copy into the columns reads in order. */
typedef struct rec {
    uint64_t code;
    double x, y;         /* on the grid's plane, metres */
    double k;
    int32_t day;
    uint32_t source;
    float w;
    uint16_t topic;
} rec;

#define RADIX_BITS 12
#define RADIX (1u << RADIX_BITS)

/* Sorts a[0 .. n) by code, stably, with tmp of n; returns where the
 * result is (a or tmp).  Passes where every code has the same digit (the
 * high ones, for one region) are skipped. */
static rec *radix_sort(rec *a, rec *tmp, size_t n)
{
    size_t count[RADIX];
    for (int shift = 0; shift < 2 * PM_HEAT_MORTON_ZOOM; shift += RADIX_BITS) {
        memset(count, 0, sizeof count);
        for (size_t i = 0; i < n; i++)
            count[(a[i].code >> shift) & (RADIX - 1)]++;
        if (n && count[(a[0].code >> shift) & (RADIX - 1)] == n)
            continue;
        size_t sum = 0;
        for (size_t d = 0; d < RADIX; d++) {
            size_t c = count[d];
            count[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            tmp[count[(a[i].code >> shift) & (RADIX - 1)]++] = a[i];
        rec *t = a;
        a = tmp;
        tmp = t;
    }
    return a;
}

/* ---- build -------------------------------------------------------------------- */

int pm_heat_has_position(const pm_placed *pl, size_t i, double lon, double lat)
{
    uint8_t p = pl->placement[i];
    return (p == PM_PLACE_INSIDE || p == PM_PLACE_BORDER || p == PM_PLACE_SNAPPED) &&
           isfinite(lon) && isfinite(lat);
}

int32_t pm_heat_local_day(int64_t t, long utc_offset_s)
{
    int64_t s = t + utc_offset_s;
    int64_t d = s / 86400 - (s % 86400 < 0);
    return d < INT32_MIN ? INT32_MIN : d > INT32_MAX ? INT32_MAX : (int32_t)d;
}

/* ---- weights -------------------------------------------------------------------- */

#define HOUR_S 3600
#define DAY_S 86400

int pm_weight_parse(const char *name)
{
    static const char *const NAMES[] = {"one", "open", "overdue", "wait_h"};
    for (int i = 0; name && i < 4; i++)
        if (strcmp(name, NAMES[i]) == 0)
            return i;
    return -1;
}

/* The weight of a complaint created at c and answered at a (PM_TIME_NONE:
 * never) under w, judged at t (see the file comment). */
static double weight_of(pm_weight w, int64_t c, int64_t a, int64_t t)
{
    int open = a == PM_TIME_NONE;
    switch (w) {
    case PM_WEIGHT_ONE: return 1;
    case PM_WEIGHT_OPEN: return open;
    case PM_WEIGHT_OVERDUE: return open && t >= INT64_MIN + DAY_S && c < t - DAY_S;
    case PM_WEIGHT_WAIT_H: {
        int64_t end = open ? t : a;
        return end > c ? (double)((uint64_t)end - (uint64_t)c) / HOUR_S : 0;
    }
    }
    return 0;
}

/* ---- build -------------------------------------------------------------------- */

/* What gather() reads: the batch's columns and the weighting. */
typedef struct source_cols {
    pm_coord_column lon, lat;
    pm_created_column created;
    pm_answered_column answered;
    const uint16_t *topic;
    pm_dict_column source;
    pm_weight w;
    int64_t report_time;
} source_cols;

/* The weight of complaint i; 0 when it has no position. */
static double complaint_weight(const source_cols *c, const pm_placed *pl, size_t i)
{
    if (!pm_heat_has_position(pl, i, pm_coord_at(c->lon, i), pm_coord_at(c->lat, i)))
        return 0;
    return weight_of(c->w, pm_created_at(c->created, i), pm_answered_at(c->answered, i),
                     c->report_time);
}

/* The records of the complaints with a position and a weight, in input
 * order, projected onto the grid. */
static rec *gather(pm_ctx *ctx, const source_cols *c, const pm_placed *pl, pm_grid grid,
                   long utc_offset_s, size_t *n)
{
    size_t m = 0;
    for (size_t i = 0; i < pl->n; i++)
        m += complaint_weight(c, pl, i) > 0;
    rec *r = pm_calloc(m, sizeof *r);
    if (!r) {
        PM_ERR(ctx, PM_E_NOMEM, "out of memory for %zu heat-map points", m);
        return NULL;
    }
    size_t j = 0;
    for (size_t i = 0; i < pl->n; i++) {
        double w = complaint_weight(c, pl, i);
        if (!(w > 0))
            continue;
        double lat = pm_coord_at(c->lat, i), x, y;
        pm_grid_forward(grid, pm_coord_at(c->lon, i), lat, &x, &y);
        r[j++] = (rec){0, x, y, pm_grid_scale_at_lat(grid, lat),
                       pm_heat_local_day(pm_created_at(c->created, i), utc_offset_s),
                       pm_dict_column_at(c->source, i), (float)w, c->topic[i]};
    }
    *n = m;
    return r;
}

static int on_grid(double x, double y)
{
    return isfinite(x) && isfinite(y) && fabs(x) <= PM_HEAT_HALF_WORLD_M &&
           fabs(y) <= PM_HEAT_HALF_WORLD_M;
}

/* Keeps the records on the grid, in order, with their codes. */
static size_t encode(rec *r, size_t n)
{
    size_t m = 0;
    for (size_t j = 0; j < n; j++)
        if (on_grid(r[j].x, r[j].y)) {
            r[m] = r[j];
            r[m++].code = morton(cell_x(r[j].x), cell_y(r[j].y));
        }
    return m;
}

/* Whether some record weighs other than 1. */
static int weighted(const rec *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (r[i].w != 1.0f)
            return 1;
    return 0;
}

static pm_points *points_alloc(pm_grid grid, size_t n, int with_w)
{
    pm_points *p = pm_calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->grid = grid;
    p->n = n;
    p->x_m = pm_calloc(n, sizeof *p->x_m);
    p->y_m = pm_calloc(n, sizeof *p->y_m);
    p->k = pm_calloc(n, sizeof *p->k);
    p->code = pm_calloc(n, sizeof *p->code);
    p->topic = pm_calloc(n, sizeof *p->topic);
    p->day = pm_calloc(n, sizeof *p->day);
    p->source = pm_calloc(n, sizeof *p->source);
    p->w = with_w ? pm_calloc(n, sizeof *p->w) : NULL;
    if (!p->x_m || !p->y_m || !p->k || !p->code || !p->topic || !p->day || !p->source ||
        (with_w && !p->w)) {
        pm_points_free(p);
        return NULL;
    }
    return p;
}

static void fill(pm_points *p, const rec *r)
{
    for (size_t i = 0; i < p->n; i++) {
        p->x_m[i] = r[i].x;
        p->y_m[i] = r[i].y;
        p->k[i] = r[i].k;
        p->code[i] = r[i].code;
        p->topic[i] = r[i].topic;
        p->day[i] = r[i].day;
        p->source[i] = r[i].source;
        if (p->w)
            p->w[i] = r[i].w;
    }
}

/* Sorts the projected records r (taken: freed here) and makes the
 * pm_points of those on the grid.  The sort's spare buffer is freed before
 * the columns are made, so that the three are never all held: the peak is
 * two records a point (96 bytes), not two and the columns (138). */
static int build(pm_ctx *ctx, rec *r, size_t n, pm_grid grid, pm_points **out)
{
    size_t m = encode(r, n);
    if (m < n)
        pm_ctx_log(ctx, PM_LOG_WARN,
                   "heat map: %zu of %zu points are outside the tile square of %s (|lat| > ~85°) "
                   "and are left out",
                   n - m, n, pm_grid_crs(grid));
    rec *tmp = pm_calloc(m, sizeof *tmp);
    if (!tmp) {
        pm_free(r);
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory sorting %zu heat-map points", m);
    }
    rec *sorted = radix_sort(r, tmp, m);
    pm_free(sorted == r ? tmp : r);
    pm_points *p = points_alloc(grid, m, weighted(sorted, m));
    if (p)
        fill(p, sorted);
    pm_free(sorted);
    if (!p)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory for %zu heat-map points", m);
    *out = p;
    return PM_OK;
}

int pm_points_new(pm_ctx *ctx, const pm_complaints *cs, const pm_placed *pl, pm_grid grid,
                  long utc_offset_s, pm_points **out)
{
    return pm_points_new_weighted(ctx, cs, pl, grid, utc_offset_s, PM_WEIGHT_ONE, 0, out);
}

int pm_points_new_weighted(pm_ctx *ctx, const pm_complaints *cs, const pm_placed *pl,
                           pm_grid grid, long utc_offset_s, pm_weight w, int64_t report_time,
                           pm_points **out)
{
    *out = NULL;
    if (!cs || !pl || pl->n != pm_complaints_count(cs))
        return PM_ERR(ctx, PM_E_USAGE, "heat map: the placement is not that of the complaints "
                                       "(%zu placed, %zu complaints)",
                      pl ? pl->n : 0, cs ? pm_complaints_count(cs) : 0);
    if (grid != PM_GRID_WEBMERC && grid != PM_GRID_WORLDMERC)
        return PM_ERR(ctx, PM_E_USAGE, "heat map: unknown grid %d", (int)grid);
    if (w != PM_WEIGHT_ONE && w != PM_WEIGHT_OPEN && w != PM_WEIGHT_OVERDUE && w != PM_WEIGHT_WAIT_H)
        return PM_ERR(ctx, PM_E_USAGE, "heat map: unknown weight %d", (int)w);
    source_cols c = {pm_complaints_lon(cs), pm_complaints_lat(cs), pm_complaints_created(cs),
                     pm_complaints_answered(cs), pm_complaints_topic(cs),
                     pm_complaints_dict(cs, PM_DICT_SOURCE), w, report_time};
    size_t n = 0;
    rec *r = gather(ctx, &c, pl, grid, utc_offset_s, &n);
    return r ? build(ctx, r, n, grid, out) : PM_E_NOMEM;
}

void pm_points_free(pm_points *p)
{
    if (!p)
        return;
    if (p->borrowed) {
        pm_free(p);
        return;
    }
    pm_free(p->x_m);
    pm_free(p->y_m);
    pm_free(p->k);
    pm_free(p->code);
    pm_free(p->topic);
    pm_free(p->day);
    pm_free(p->source);
    pm_free(p->w);
    pm_free(p);
}

size_t pm_points_count(const pm_points *p) { return p ? p->n : 0; }

/* ---- snapshots ------------------------------------------------------------------ */

/* Section tags: 'h', the grid's digit, two letters. */
#define TAG(grid, a, b) PM_SNAP_TAG('h', '0' + (grid), a, b)

int pm_points_snap_write(pm_ctx *ctx, const pm_points *p, pm_snap_writer *w)
{
    pm_grid g = p->grid;
    size_t n = p->n;
    int rc = pm_snap_put(ctx, w, TAG(g, 'X', 'M'), p->x_m, sizeof *p->x_m, n);
    rc = rc ? rc : pm_snap_put(ctx, w, TAG(g, 'Y', 'M'), p->y_m, sizeof *p->y_m, n);
    rc = rc ? rc : pm_snap_put(ctx, w, TAG(g, 'K', 'S'), p->k, sizeof *p->k, n);
    rc = rc ? rc : pm_snap_put(ctx, w, TAG(g, 'C', 'D'), p->code, sizeof *p->code, n);
    rc = rc ? rc : pm_snap_put(ctx, w, TAG(g, 'T', 'P'), p->topic, sizeof *p->topic, n);
    rc = rc ? rc : pm_snap_put(ctx, w, TAG(g, 'D', 'Y'), p->day, sizeof *p->day, n);
    rc = rc ? rc : pm_snap_put(ctx, w, TAG(g, 'S', 'R'), p->source, sizeof *p->source, n);
    return rc ? rc : pm_snap_put(ctx, w, TAG(g, 'W', 'T'), p->w, sizeof *p->w, p->w ? n : 0);
}

/* The largest scale factor on the tile square: at |y| = the half world
 * (85.05° on EPSG:3857, cosh(π) = 11.59; a little less on EPSG:3395). */
#define MAX_SCALE 11.6

static int check_points(pm_ctx *ctx, pm_snap *s, const pm_points *p, size_t n_topics,
                        size_t n_sources)
{
    pm_grid g = p->grid;
    for (size_t i = 0; i < p->n; i++) {
        double x = p->x_m[i], y = p->y_m[i];
        if (!on_grid(x, y))
            return pm_snap_damaged(ctx, s, TAG(g, 'X', 'M'), "point %zu at %g, %g m: off the "
                                   "grid", i, x, y);
        if (p->code[i] != morton(cell_x(x), cell_y(y)) || (i && p->code[i] < p->code[i - 1]))
            return pm_snap_damaged(ctx, s, TAG(g, 'C', 'D'), "point %zu: code %#" PRIx64 " is "
                                   "not that of its position, in order", i, p->code[i]);
        if (!(p->k[i] >= 1 && p->k[i] <= MAX_SCALE))
            return pm_snap_damaged(ctx, s, TAG(g, 'K', 'S'), "point %zu: scale factor %g", i, p->k[i]);
        if (p->topic[i] >= n_topics)
            return pm_snap_damaged(ctx, s, TAG(g, 'T', 'P'), "point %zu: topic %u of %zu", i,
                                   p->topic[i], n_topics);
        if (p->source[i] != PM_NONE && p->source[i] >= n_sources)
            return pm_snap_damaged(ctx, s, TAG(g, 'S', 'R'), "point %zu: source %" PRIu32 " of %zu",
                                   i, p->source[i], n_sources);
        if (p->w && !(p->w[i] > 0 && isfinite(p->w[i])))
            return pm_snap_damaged(ctx, s, TAG(g, 'W', 'T'), "point %zu: weight %g", i,
                                   (double)p->w[i]);
    }
    return PM_OK;
}

int pm_points_snap_map(pm_ctx *ctx, pm_snap *s, pm_grid grid, size_t n_topics, size_t n_sources,
                       pm_points **out)
{
    *out = NULL;
    if (grid != PM_GRID_WEBMERC && grid != PM_GRID_WORLDMERC)
        return PM_ERR(ctx, PM_E_USAGE, "heat map: unknown grid %d", (int)grid);
    pm_points *p = pm_calloc(1, sizeof *p);
    if (!p)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory reading %s", pm_snap_path(s));
    p->borrowed = 1;
    p->grid = grid;
    size_t n = 0, n_w = 0;
    int rc = pm_snap_section(ctx, s, TAG(grid, 'X', 'M'), sizeof *p->x_m, SIZE_MAX,
                             (const void **)&p->x_m, &n);
    p->n = n;
#define COLUMN(col, a, b)                                                                        \
    rc = rc ? rc : pm_snap_section(ctx, s, TAG(grid, a, b), sizeof *p->col, n,                   \
                                   (const void **)&p->col, NULL);
    COLUMN(y_m, 'Y', 'M')
    COLUMN(k, 'K', 'S')
    COLUMN(code, 'C', 'D')
    COLUMN(topic, 'T', 'P')
    COLUMN(day, 'D', 'Y')
    COLUMN(source, 'S', 'R')
#undef COLUMN
    rc = rc ? rc : pm_snap_section(ctx, s, TAG(grid, 'W', 'T'), sizeof *p->w, SIZE_MAX,
                                   (const void **)&p->w, &n_w);
    if (!rc && n_w != 0 && n_w != n)
        rc = pm_snap_damaged(ctx, s, TAG(grid, 'W', 'T'), "%zu weights for %zu points", n_w, n);
    if (!rc && n_w == 0)
        p->w = NULL;
    rc = rc ? rc : check_points(ctx, s, p, n_topics, n_sources);
    if (rc) {
        pm_points_free(p);
        return rc;
    }
    *out = p;
    return PM_OK;
}

/* ---- query -------------------------------------------------------------------- */

/* The first index in [lo, hi) whose code is >= c. */
static size_t lower_bound(const uint64_t *code, size_t lo, size_t hi, uint64_t c)
{
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (code[mid] < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

typedef struct code_run {
    uint64_t lo, hi;   /* codes lo .. hi − 1 */
} code_run;

/* A box's cells (zoom-24 columns cx0 .. cx1, rows cy0 .. cy1) and the
 * Morton runs of its cover, appended in code order. */
typedef struct cover {
    uint32_t cx0, cx1, cy0, cy1;
    int s_min;
    code_run *run;
    size_t n;
} cover;

/* Covers what the aligned cell (cx, cy) of side 2^s shares with the box:
 * the whole cell when it lies inside the box or is of side 2^s_min, else
 * its four quarters in Morton order (x the even bit), so the runs come
 * out ascending and adjacent ones merge. */
static void cover_cell(cover *c, uint32_t cx, uint32_t cy, int s)
{
    uint32_t ex = cx + ((1u << s) - 1), ey = cy + ((1u << s) - 1);
    if (ex < c->cx0 || cx > c->cx1 || ey < c->cy0 || cy > c->cy1)
        return;
    if (s > c->s_min && !(cx >= c->cx0 && ex <= c->cx1 && cy >= c->cy0 && ey <= c->cy1)) {
        uint32_t h = 1u << (s - 1);
        for (uint32_t q = 0; q < 4; q++)
            cover_cell(c, cx + (q & 1) * h, cy + (q >> 1) * h, s - 1);
        return;
    }
    uint64_t lo = morton(cx, cy), hi = lo + ((uint64_t)1 << (2 * s));
    if (c->n && c->run[c->n - 1].hi == lo)
        c->run[c->n - 1].hi = hi;
    else
        c->run[c->n++] = (code_run){lo, hi};
}

/* The first index in [lo, n) whose code is >= c, found by galloping from
 * lo (the runs come in order, mostly close to each other). */
static size_t gallop(const uint64_t *code, size_t lo, size_t n, uint64_t c)
{
    size_t step = 1, hi = lo;
    while (hi < n && code[hi] < c) {
        lo = hi + 1;
        hi += step;
        step *= 2;
    }
    return lower_bound(code, lo, hi < n ? hi : n, c);
}

size_t pm_codes_ranges(const uint64_t *code, size_t n_code, int shift, const pm_box *b,
                       pm_cover_parts parts, pm_range *r)
{
    if (!n_code || !(b->x0 <= b->x1 && b->y0 <= b->y1))
        return 0;
    code_run run[PM_POINTS_MAX_RANGES];
    cover c = {cell_x(b->x0), cell_x(b->x1), cell_y(b->y1), cell_y(b->y0), 0, run, 0};
    uint32_t span = (c.cx1 - c.cx0 > c.cy1 - c.cy0 ? c.cx1 - c.cx0 : c.cy1 - c.cy0) + 1;
    /* the finest cells: of 2^s_min >= span/parts, at most parts + 1 a side */
    while (c.s_min < PM_HEAT_MORTON_ZOOM && ((uint64_t)parts << c.s_min) < span)
        c.s_min++;
    int top = c.s_min;   /* the smallest aligned cell holding the box */
    while (top < PM_HEAT_MORTON_ZOOM &&
           (c.cx0 >> top != c.cx1 >> top || c.cy0 >> top != c.cy1 >> top))
        top++;
    cover_cell(&c, c.cx0 >> top << top, c.cy0 >> top << top, top);
    size_t n = 0, from = 0;
    for (size_t i = 0; i < c.n; i++) {
        /* widened to whole entries: an entry's cell may begin before the run */
        uint64_t lo_c = run[i].lo >> shift << shift, hi_c = ((run[i].hi - 1) >> shift << shift) + 1;
        size_t lo = gallop(code, from, n_code, lo_c);
        size_t hi = gallop(code, lo, n_code, hi_c);
        if (hi > lo) {
            if (n && r[n - 1].hi == lo)
                r[n - 1].hi = hi;
            else
                r[n++] = (pm_range){lo, hi};
        }
        from = hi;
    }
    return n;
}

size_t pm_points_ranges(const pm_points *p, const pm_box *b, pm_cover_parts parts, pm_range *r)
{
    return pm_codes_ranges(p->code, p->n, 0, b, parts, r);
}
