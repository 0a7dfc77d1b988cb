/* recur.c — the recurrence register (pm_recur.h): single-linkage clusters
 * of same-topic complaints near in space (geodesic) and time.  Points are
 * put in 3-D cells of radius_m over their ECEF coordinates; the cells are
 * sorted and swept with one cursor per neighbour offset, candidates tested
 * by chord and then by geod_inverse, and linked with a union-find. */
#include "pm_recur.h"
#include "pm_alloc.h"

#include <geodesic.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WGS84_A 6378137.0
#define WGS84_F (1 / 298.257223563)
#define WEEK_S (7 * 86400LL)
/* A chord is computed from cell offsets kept as floats (error ~1e-5 m);
 * the test keeps a millimetre of slack so that it never drops a pair
 * geod_inverse would keep. */
#define CHORD_SLACK_M 1e-3

/* The points taken in are numbered by (created, input index): a point's
 * "position" is its rank in time, so "later" is "at a higher position".
 * stamp[pos] gives its time and input index. */
typedef struct stamp {
    int64_t t;
    size_t idx;
} stamp;

/* A point's cell and time, sorted by (topic, cell, position): equal
 * cells form runs, and a run lists its points in time order. */
typedef struct cellkey {
    int32_t cx, cy, cz;
    uint16_t topic;
    uint32_t pos;
    int64_t t;
    float fx, fy, fz;            /* offset in the cell, metres (to ~1e-5 m) */
} cellkey;

typedef struct work {
    pm_recur_opts o;
    struct geod_geodesic geod;
    pm_coord_column lon, lat;    /* the batch's columns */
    stamp *stamp;                /* n, by position */
    size_t n;
    cellkey *keys;               /* n, sorted */
    size_t *run_start;           /* n_runs + 1: run r is keys[run_start[r] .. run_start[r+1]) */
    size_t n_runs;
    size_t *parent;              /* union-find over positions; a root is its component's
                                  * lowest position */
    uint32_t *jump;              /* per key: the end of a stretch of its component (link_run) */
    uint64_t n_geodesic;
} work;

void pm_recur_opts_default(pm_recur_opts *o)
{
    o->radius_m = 50;
    o->weeks = 8;
    o->min_count = 2;
}

void pm_recur_free(pm_recur *r)
{
    if (!r)
        return;
    pm_free(r->clusters);
    pm_free(r->member);
    pm_free(r);
}

static void work_free(work *w)
{
    pm_free(w->stamp);
    pm_free(w->keys);
    pm_free(w->run_start);
    pm_free(w->parent);
    pm_free(w->jump);
}

/* ---- points ---------------------------------------------------------------------- */

static void ecef(double lon, double lat, double xyz[3])
{
    const double e2 = WGS84_F * (2 - WGS84_F);
    double phi = lat * (M_PI / 180), lam = lon * (M_PI / 180);
    double s = sin(phi), c = cos(phi);
    double nu = WGS84_A / sqrt(1 - e2 * s * s);
    xyz[0] = nu * c * cos(lam);
    xyz[1] = nu * c * sin(lam);
    xyz[2] = nu * (1 - e2) * s;
}

static int eligible(const work *w, const pm_placed *pl, size_t i)
{
    if (!(fabs(pm_coord_at(w->lon, i)) <= 180 && fabs(pm_coord_at(w->lat, i)) <= 90))
        return 0;   /* NaN (no coordinates) fails too */
    return !pl || (pl->district[i] >= 0 && pl->placement[i] != PM_PLACE_REJECTED);
}

static int cmp_stamp(const void *a, const void *b)
{
    const stamp *p = a, *q = b;
    if (p->t != q->t)
        return p->t < q->t ? -1 : 1;
    return (p->idx > q->idx) - (p->idx < q->idx);
}

/* Numbers the eligible complaints by (created, input index). */
static int collect(pm_ctx *ctx, work *w, const pm_complaints *cs, const pm_placed *pl)
{
    size_t n = pm_complaints_count(cs);
    w->stamp = pm_calloc(n ? n : 1, sizeof *w->stamp);
    if (!w->stamp)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory for %zu complaints", n);
    pm_created_column created = pm_complaints_created(cs);
    for (size_t i = 0; i < n; i++)
        if (eligible(w, pl, i))
            w->stamp[w->n++] = (stamp){pm_created_at(created, i), i};
    qsort(w->stamp, w->n, sizeof *w->stamp, cmp_stamp);
    return PM_OK;
}

/* ---- the cell index -------------------------------------------------------------- */

/* Orders cells by (topic, cx, cy, cz); adding the same offset to two cells
 * of a topic keeps their order, which the sweep in link_all relies on. */
static int cmp_cell(const cellkey *p, const cellkey *q)
{
    if (p->topic != q->topic)
        return p->topic < q->topic ? -1 : 1;
    if (p->cx != q->cx)
        return p->cx < q->cx ? -1 : 1;
    if (p->cy != q->cy)
        return p->cy < q->cy ? -1 : 1;
    if (p->cz != q->cz)
        return p->cz < q->cz ? -1 : 1;
    return 0;
}

static int cmp_key(const void *a, const void *b)
{
    const cellkey *p = a, *q = b;
    int c = cmp_cell(p, q);
    return c ? c : (p->pos > q->pos) - (p->pos < q->pos);
}

static int index_cells(pm_ctx *ctx, work *w, const uint16_t *topic)
{
    double side = w->o.radius_m;
    w->keys = pm_calloc(w->n ? w->n : 1, sizeof *w->keys);
    w->run_start = pm_calloc(w->n + 1, sizeof *w->run_start);
    if (!w->keys || !w->run_start)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory indexing %zu complaints", w->n);
    for (size_t a = 0; a < w->n; a++) {
        size_t i = w->stamp[a].idx;
        double xyz[3];
        ecef(pm_coord_at(w->lon, i), pm_coord_at(w->lat, i), xyz);
        double cx = floor(xyz[0] / side), cy = floor(xyz[1] / side), cz = floor(xyz[2] / side);
        w->keys[a] = (cellkey){(int32_t)cx, (int32_t)cy, (int32_t)cz, topic[i], (uint32_t)a,
                               w->stamp[a].t, (float)(xyz[0] - cx * side),
                               (float)(xyz[1] - cy * side), (float)(xyz[2] - cz * side)};
    }
    qsort(w->keys, w->n, sizeof *w->keys, cmp_key);
    for (size_t k = 0; k < w->n; k++)
        if (k == 0 || cmp_cell(&w->keys[k - 1], &w->keys[k]) != 0)
            w->run_start[w->n_runs++] = k;
    w->run_start[w->n_runs] = w->n;
    return PM_OK;
}

/* ---- linking ----------------------------------------------------------------------- */

static size_t find(size_t *parent, size_t a)
{
    while (parent[a] != a) {
        parent[a] = parent[parent[a]];
        a = parent[a];
    }
    return a;
}

static void unite(size_t *parent, size_t a, size_t b)
{
    a = find(parent, a);
    b = find(parent, b);
    if (a < b)
        parent[b] = a;
    else if (b < a)
        parent[a] = b;
}

/* The points of keys p and q within the radius: by chord first (never
 * longer than the geodesic), then exactly. */
static int near(work *w, const cellkey *p, const cellkey *q)
{
    double side = w->o.radius_m;
    double dx = (double)(p->cx - q->cx) * side + ((double)p->fx - (double)q->fx);
    double dy = (double)(p->cy - q->cy) * side + ((double)p->fy - (double)q->fy);
    double dz = (double)(p->cz - q->cz) * side + ((double)p->fz - (double)q->fz);
    double lim = w->o.radius_m + CHORD_SLACK_M;
    if (dx * dx + dy * dy + dz * dz > lim * lim)
        return 0;
    size_t i = w->stamp[p->pos].idx, j = w->stamp[q->pos].idx;
    double s12 = INFINITY;
    w->n_geodesic++;
    geod_inverse(&w->geod, pm_coord_at(w->lat, i), pm_coord_at(w->lon, i), pm_coord_at(w->lat, j),
                 pm_coord_at(w->lon, j), &s12, NULL, NULL);
    return s12 <= w->o.radius_m;
}

/* Links the point of key ka with the later points of run r within the
 * time window.  Keys already in a's component are skipped in stretches:
 * jump[k] > k says that keys k … jump[k] − 1 are all in key k's component
 * (components only grow, so this stays true), and the stretches are
 * joined as they are found — so a spot with thousands of complaints on a
 * topic costs about one step per complaint, not one per pair. */
static void link_run(work *w, const cellkey *ka, size_t r)
{
    size_t a = ka->pos, end = w->run_start[r + 1];
    int64_t window = (int64_t)w->o.weeks * WEEK_S;
    int64_t until = ka->t > INT64_MAX - window ? INT64_MAX : ka->t + window;
    size_t lo = w->run_start[r], hi = end;
    while (lo < hi) {   /* the first key at a position after a */
        size_t mid = lo + (hi - lo) / 2;
        if (w->keys[mid].pos <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t k = lo;
    while (k < end && w->keys[k].t <= until) {
        size_t b = w->keys[k].pos;
        if (find(w->parent, a) != find(w->parent, b)) {
            if (!near(w, ka, &w->keys[k])) {
                k++;
                continue;
            }
            unite(w->parent, a, b);
        }
        size_t root = find(w->parent, a), j = w->jump[k];
        while (j < end && w->keys[j].t <= until && find(w->parent, w->keys[j].pos) == root)
            j = w->jump[j];
        while (k < j) {   /* path compression: every key passed now jumps to j */
            size_t next = w->jump[k];
            w->jump[k] = (uint32_t)j;
            k = next;
        }
    }
}

/* Visits the runs in order with one cursor per neighbour offset (27): the
 * neighbour cell at an offset grows with the run, so each cursor only
 * moves forward — a merge of sorted lists instead of a hash lookup per
 * point, reading memory in order. */
static int link_all(pm_ctx *ctx, work *w)
{
    w->parent = pm_calloc(w->n ? w->n : 1, sizeof *w->parent);
    w->jump = pm_calloc(w->n ? w->n : 1, sizeof *w->jump);
    if (!w->parent || !w->jump)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory linking %zu complaints", w->n);
    for (size_t a = 0; a < w->n; a++) {
        w->parent[a] = a;
        w->jump[a] = (uint32_t)(a + 1);
    }
    size_t cursor[27] = {0};
    for (size_t r = 0; r < w->n_runs; r++) {
        const cellkey *cell = &w->keys[w->run_start[r]];
        size_t o = 0;
        for (int dx = -1; dx <= 1; dx++)
            for (int dy = -1; dy <= 1; dy++)
                for (int dz = -1; dz <= 1; dz++, o++) {
                    cellkey nb = {.cx = cell->cx + dx, .cy = cell->cy + dy, .cz = cell->cz + dz,
                                  .topic = cell->topic};
                    size_t *c = &cursor[o];
                    while (*c < w->n_runs && cmp_cell(&w->keys[w->run_start[*c]], &nb) < 0)
                        (*c)++;
                    if (*c == w->n_runs || cmp_cell(&w->keys[w->run_start[*c]], &nb) != 0)
                        continue;
                    for (size_t k = w->run_start[r]; k < w->run_start[r + 1]; k++)
                        link_run(w, &w->keys[k], *c);
                }
    }
    return PM_OK;
}

/* ---- the register -------------------------------------------------------------------- */

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

/* The most frequent value of v[0..n-1] (sorted here); ties: the lowest. */
static int32_t mode(int32_t *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_i32);
    int32_t best = v[0];
    size_t best_n = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && v[j] == v[i])
            j++;
        if (j - i > best_n) {
            best = v[i];
            best_n = j - i;
        }
        i = j;
    }
    return best;
}

/* Cluster c's figures from its members (input indexes m[0..count-1], in
 * time order); scratch holds count districts. */
static void describe(const work *w, const pm_complaints *cs, const pm_placed *pl,
                     pm_recur_cluster *c, const size_t *m, int32_t *scratch)
{
    pm_created_column created = pm_complaints_created(cs);
    double lon0 = pm_coord_at(w->lon, m[0]), sum_lat = 0, sum_dlon = 0;
    for (size_t k = 0; k < c->count; k++) {
        double d = pm_coord_at(w->lon, m[k]) - lon0;
        d += d > 180 ? -360 : d < -180 ? 360 : 0;
        sum_dlon += d;
        sum_lat += pm_coord_at(w->lat, m[k]);
        scratch[k] = pl ? pl->district[m[k]] : -1;
    }
    double lon = lon0 + sum_dlon / (double)c->count;
    c->lon = lon > 180 ? lon - 360 : lon < -180 ? lon + 360 : lon;
    c->lat = sum_lat / (double)c->count;
    c->topic = pm_complaints_topic(cs)[m[0]];
    c->first_at = pm_created_at(created, m[0]);
    c->last_at = pm_created_at(created, m[c->count - 1]);
    c->district = mode(scratch, c->count);
}

/* Numbers the components of at least min_count points by their first
 * (lowest) position and lays their members out in time order.  parent[]
 * must point straight at the roots. */
static int build_register(pm_ctx *ctx, const work *w, const pm_complaints *cs,
                          const pm_placed *pl, pm_recur *r)
{
    int rc = PM_OK;
    size_t *size = pm_calloc(w->n ? w->n : 1, sizeof *size);   /* per root; then cluster + 1 */
    int32_t *scratch = pm_calloc(w->n ? w->n : 1, sizeof *scratch);
    if (!size || !scratch) {
        rc = PM_ERR(ctx, PM_E_NOMEM, "out of memory listing clusters of %zu complaints", w->n);
        goto cleanup;
    }
    for (size_t a = 0; a < w->n; a++)
        size[w->parent[a]]++;
    for (size_t a = 0; a < w->n; a++)
        if (w->parent[a] == a && size[a] >= w->o.min_count) {
            r->n_clusters++;
            r->n_members += size[a];
        }
    r->clusters = pm_calloc(r->n_clusters ? r->n_clusters : 1, sizeof *r->clusters);
    r->member = pm_calloc(r->n_members ? r->n_members : 1, sizeof *r->member);
    if (!r->clusters || !r->member) {
        rc = PM_ERR(ctx, PM_E_NOMEM, "out of memory for %zu clusters", r->n_clusters);
        goto cleanup;
    }
    size_t next = 0, off = 0;
    for (size_t a = 0; a < w->n; a++) {   /* roots in time order: clusters in register order */
        if (w->parent[a] != a)
            continue;
        if (size[a] < w->o.min_count) {
            size[a] = 0;
            continue;
        }
        pm_recur_cluster *c = &r->clusters[next];
        c->id = (uint32_t)(next + 1);
        c->members = off;
        off += size[a];
        size[a] = ++next;
    }
    for (size_t a = 0; a < w->n; a++) {   /* in time order: members come out sorted */
        size_t k = size[w->parent[a]];
        if (!k)
            continue;
        pm_recur_cluster *c = &r->clusters[k - 1];
        r->member[c->members + c->count++] = w->stamp[a].idx;
    }
    for (size_t k = 0; k < r->n_clusters; k++)
        describe(w, cs, pl, &r->clusters[k], r->member + r->clusters[k].members, scratch);
cleanup:
    pm_free(size);
    pm_free(scratch);
    return rc;
}

/* ---- entry -------------------------------------------------------------------------- */

static const char *opts_problem(const pm_recur_opts *o)
{
    if (!(o->radius_m >= 1 && o->radius_m <= 100000))
        return "radius_m must be in [1, 100000] metres";
    if (o->weeks < 1 || o->weeks > 520)
        return "weeks must be in 1 … 520";
    return NULL;
}

static pm_recur_opts opts_resolve(const pm_recur_opts *o)
{
    pm_recur_opts r;
    pm_recur_opts_default(&r);
    if (o) {
        if (o->radius_m != 0)
            r.radius_m = o->radius_m;
        if (o->weeks != 0)
            r.weeks = o->weeks;
        if (o->min_count != 0)
            r.min_count = o->min_count;
    }
    return r;
}

static int run(pm_ctx *ctx, work *w, const pm_complaints *cs, const pm_placed *pl, pm_recur *r)
{
    int rc = collect(ctx, w, cs, pl);
    if (rc == PM_OK)
        rc = index_cells(ctx, w, pm_complaints_topic(cs));
    if (rc == PM_OK)
        rc = link_all(ctx, w);
    if (rc == PM_OK) {
        pm_free(w->keys);   /* the index is done with: lower the peak */
        pm_free(w->jump);
        w->keys = NULL;
        w->jump = NULL;
        for (size_t a = 0; a < w->n; a++)
            w->parent[a] = find(w->parent, a);
        rc = build_register(ctx, w, cs, pl, r);
    }
    r->n_points = w->n;
    r->n_geodesic = w->n_geodesic;
    return rc;
}

int pm_recur_new(pm_ctx *ctx, const pm_complaints *cs, const pm_placed *pl,
                 const pm_recur_opts *opts, pm_recur **out)
{
    *out = NULL;
    work w = {.o = opts_resolve(opts), .lon = pm_complaints_lon(cs), .lat = pm_complaints_lat(cs)};
    const char *why = opts_problem(&w.o);
    if (why)
        return PM_ERR(ctx, PM_E_USAGE, "recurrence register: %s", why);
    if (pl && pl->n != pm_complaints_count(cs))
        return PM_ERR(ctx, PM_E_USAGE,
                      "recurrence register: the placement has %zu entries for %zu complaints",
                      pl->n, pm_complaints_count(cs));
    if (pm_complaints_count(cs) >= UINT32_MAX)
        return PM_ERR(ctx, PM_E_USAGE, "recurrence register: more than %lu complaints",
                      (unsigned long)UINT32_MAX - 1);
    geod_init(&w.geod, WGS84_A, WGS84_F);
    pm_recur *r = pm_calloc(1, sizeof *r);
    if (!r)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory starting the recurrence register");
    int rc = run(ctx, &w, cs, pl, r);
    work_free(&w);
    if (rc != PM_OK) {
        pm_recur_free(r);
        return rc;
    }
    *out = r;
    return PM_OK;
}
