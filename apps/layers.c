/* layers.c — the map's dataset and its layers (layers.h): what `problemap
 * tiles` and `problemap serve` draw, from a request in the user's terms.
 *
 * The dataset is the placed complaints, their cube (the choropleth's
 * figures) and, built on first use per grid, the heat map's points and
 * the projected districts.  A request becomes two filters, one in the
 * cube's indexes and periods, one in the batch's indexes and local days,
 * so that a choropleth and a heat map of the same request count the same
 * complaints.  Weighted heat and grid layers (open, overdue, waiting
 * hours) judge at the cube's report time of the request, the end of its
 * period range, as the tables do.  A hot-spot layer is a choropleth of
 * the Gi* bins of a figure, over the dataset's queen weights. */
#include "layers.h"
#include "../engine/pm_alloc.h"
#include "../engine/pm_civil.h"
#include "../engine/pm_hotspot.h"
#include "../render/pm_figure.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DAY_S 86400
#define NO_DATA_RU "нет данных"
#define EN_DASH "\xe2\x80\x93"

/* ---- the dataset ------------------------------------------------------------ */

/* Places the complaints into d->run and adds them to a new cube of period
 * kind `kind`, each placed block while the next ones are read, as
 * `problemap cube` does (place_cube_feed).  Unless keep_ids (for a cube to
 * be written: dataset_write), the cube keeps no ids (the intake refused
 * duplicates exactly, and the cube is never added to); what it rejects (a
 * date out of range) is counted as rejects. */
static int place_and_aggregate(pm_ctx *ctx, const place_opts *po, dataset *d, pm_period_kind kind,
                               int keep_ids)
{
    place_run *r = &d->run;
    place_cube_feed feed = {0};
    pm_cube_opts co = {kind, d->utc_offset_s};
    int ex = place_run_open(ctx, po, r);
    if (!ex && (pm_cube_new(ctx, r->ds, pm_topics_count(r->t), &co, &d->cube) ||
                (!keep_ids && pm_cube_keep_no_ids(ctx, d->cube))))
        ex = cli_fail(ctx, "making the cube");
    if (!ex) {
        feed.cube = d->cube;
        ex = place_run_read(ctx, po, r, place_cube_feed_block, &feed, "aggregating");
    }
    uint64_t added;
    return place_cube_feed_end(ctx, r, &feed, ex, &added);
}

/* The local days of the first and last complaint in a district. */
static void day_range(dataset *d)
{
    const pm_placed *pl = d->run.pl;
    pm_created_column created = pm_complaints_created(d->run.cs);
    int any = 0;
    d->day_first = d->day_last = 0;
    for (size_t i = 0; i < pl->n; i++) {
        if (pl->district[i] < 0 || pl->placement[i] == PM_PLACE_REJECTED)
            continue;
        int64_t day = pm_floor_div(pm_created_at(created, i) + d->utc_offset_s, DAY_S);
        d->day_first = any && d->day_first < day ? d->day_first : day;
        d->day_last = any && d->day_last > day ? d->day_last : day;
        any = 1;
    }
}

typedef struct lon_span {
    double w, e;
} lon_span;

static int cmp_span(const void *a, const void *b)
{
    double x = ((const lon_span *)a)->w, y = ((const lon_span *)b)->w;
    return (x > y) - (x < y);
}

/* The middle of the longitudes the spans cover, across the antimeridian
 * when that is shorter: opposite the largest gap between them (districts
 * split at ±180°, as Chukotka is, are spans on both sides). */
static double centre_lon(lon_span *s, size_t n, double arc[2])
{
    qsort(s, n, sizeof *s, cmp_span);
    double end = s[0].e, gap = -1, gap_end = 0;
    for (size_t i = 1; i < n; i++) {
        if (s[i].w > end && s[i].w - end > gap)
            gap = s[i].w - end, gap_end = s[i].w;
        end = fmax(end, s[i].e);
    }
    if (s[0].w + 360 - end > gap)   /* the gap across ±180° */
        gap = s[0].w + 360 - end, gap_end = s[0].w;
    if (gap <= 0) {
        arc[0] = s[0].w, arc[1] = end;
        return (s[0].w + end) / 2;
    }
    arc[0] = gap_end > 180 ? gap_end - 360 : gap_end;   /* the covered arc, west to east */
    arc[1] = arc[0] + 360 - gap;
    double c = gap_end + (360 - gap) / 2;   /* the middle of the covered arc */
    return c > 180 ? c - 360 : c;
}

/* Appends the lon spans of the polygons of g. */
static void polygon_spans(GEOSContextHandle_t h, const GEOSGeometry *g, lon_span *s, size_t *n,
                          size_t cap)
{
    int type = GEOSGeomTypeId_r(h, g);
    if (type == GEOS_MULTIPOLYGON || type == GEOS_GEOMETRYCOLLECTION) {
        for (int i = 0; i < GEOSGetNumGeometries_r(h, g); i++)
            polygon_spans(h, GEOSGetGeometryN_r(h, g, i), s, n, cap);
        return;
    }
    double x0, y0, x1, y1;
    if (*n < cap && GEOSisEmpty_r(h, g) == 0 && GEOSGeom_getExtent_r(h, g, &x0, &y0, &x1, &y1))
        s[(*n)++] = (lon_span){x0, x1};
}

static size_t polygon_count(GEOSContextHandle_t h, const GEOSGeometry *g)
{
    int type = GEOSGeomTypeId_r(h, g);
    if (type != GEOS_MULTIPOLYGON && type != GEOS_GEOMETRYCOLLECTION)
        return 1;
    size_t n = 0;
    for (int i = 0; i < GEOSGetNumGeometries_r(h, g); i++)
        n += polygon_count(h, GEOSGetGeometryN_r(h, g, i));
    return n;
}

/* The districts' bounds and centre (exit status). */
static int extent(pm_ctx *ctx, dataset *d)
{
    GEOSContextHandle_t h = pm_ctx_geos(ctx);
    const pm_districts *ds = d->run.ds;
    size_t cap = 0, n = 0;
    for (size_t i = 0; i < pm_districts_count(ds); i++)
        cap += polygon_count(h, pm_district_geom_borrow(ds, i));
    lon_span *s = pm_calloc(cap ? cap : 1, sizeof *s);
    if (!s) {
        fprintf(stderr, "problemap: out of memory\n");
        return EXIT_RUN;
    }
    double *b = d->bounds;
    b[0] = b[1] = INFINITY;
    b[2] = b[3] = -INFINITY;
    for (size_t i = 0; i < pm_districts_count(ds); i++) {
        const GEOSGeometry *g = pm_district_geom_borrow(ds, i);
        double x0, y0, x1, y1;
        if (GEOSisEmpty_r(h, g) != 0 || !GEOSGeom_getExtent_r(h, g, &x0, &y0, &x1, &y1))
            continue;
        b[0] = fmin(b[0], x0), b[1] = fmin(b[1], y0), b[2] = fmax(b[2], x1), b[3] = fmax(b[3], y1);
        polygon_spans(h, g, s, &n, cap);
    }
    int ok = n > 0;
    if (ok) {
        double arc[2];
        d->centre_lon = centre_lon(s, n, arc);
        d->centre_lat = (b[1] + b[3]) / 2;
        memcpy(d->view_bounds, b, sizeof d->view_bounds);
        if (arc[1] - arc[0] < b[2] - b[0])
            d->view_bounds[0] = arc[0], d->view_bounds[2] = arc[1];
        /* metres on the ground: width at the mid latitude, height along a meridian */
        const double m_per_deg = 111320.0;
        double w = (d->view_bounds[2] - d->view_bounds[0]) * m_per_deg *
                   cos(d->centre_lat * M_PI / 180), ht = (b[3] - b[1]) * m_per_deg;
        d->extent_m = fmax(w, ht);
    }
    pm_free(s);
    if (!ok) {
        fprintf(stderr, "problemap: the districts have no extent\n");
        return EXIT_RUN;
    }
    return EXIT_OK;
}

int dataset_alloc(const char *period, pm_period_kind *kind, dataset **out)
{
    *out = NULL;
    int k = period ? pm_period_kind_parse(period) : PM_PERIOD_WEEK;
    if (k < 0) {
        fprintf(stderr, "problemap: --period: '%s' is not day, week or month\n", period);
        return EXIT_USAGE;
    }
    *kind = (pm_period_kind)k;
    if (!(*out = pm_calloc(1, sizeof **out))) {
        fprintf(stderr, "problemap: out of memory\n");
        return EXIT_RUN;
    }
    return EXIT_OK;
}

int dataset_new(pm_ctx *ctx, const place_opts *po, const char *period, int keep_ids,
                dataset **out)
{
    pm_period_kind kind;
    dataset *d;
    int ex = dataset_alloc(period, &kind, &d);
    *out = NULL;
    if (ex)
        return ex;
    d->utc_offset_s = po->have_offset ? po->utc_offset : 0;
    ex = place_and_aggregate(ctx, po, d, kind, keep_ids);
    ex = ex ? ex : dataset_finish(ctx, d, kind);
    if (ex) {
        dataset_free(ctx, d);
        return ex;
    }
    *out = d;
    return EXIT_OK;
}

int dataset_finish(pm_ctx *ctx, dataset *d, pm_period_kind kind)
{
    if (!d->cube) {
        place_run *r = &d->run;
        pm_cube_opts co = {kind, d->utc_offset_s};
        uint64_t added;
        /* what the cube rejects (a date out of range) was counted when the
         * complaints were placed */
        if (pm_cube_new(ctx, r->ds, pm_topics_count(r->t), &co, &d->cube) ||
            pm_cube_keep_no_ids(ctx, d->cube) ||
            pm_cube_add_range(ctx, d->cube, r->cs, r->pl, 0, pm_complaints_count(r->cs), NULL,
                              NULL, &added))
            return cli_fail(ctx, "aggregating");
    }
    int ex = extent(ctx, d);
    if (!ex)
        day_range(d);
    return ex;
}

void dataset_free(pm_ctx *ctx, dataset *d)
{
    if (!d)
        return;
    for (int g = 0; g < 2; g++) {
        pm_points_free(d->points[g]);
        pm_choro_free(d->choro[g]);
    }
    pm_weights_free(d->weights);
    pm_cube_free(d->cube);
    place_free(ctx, &d->run);
    pm_snap_free(d->snap);   /* after everything that reads from it */
    pm_free(d);
}

static int check_grid(pm_ctx *ctx, pm_grid grid)
{
    if (grid != PM_GRID_WEBMERC && grid != PM_GRID_WORLDMERC)
        return PM_ERR(ctx, PM_E_USAGE, "unknown grid %d", (int)grid);
    return PM_OK;
}

int dataset_points(pm_ctx *ctx, dataset *d, pm_grid grid, const pm_points **out)
{
    int st = check_grid(ctx, grid);
    if (!st && !d->points[grid])
        st = pm_points_new(ctx, d->run.cs, d->run.pl, grid, d->utc_offset_s, &d->points[grid]);
    *out = st ? NULL : d->points[grid];
    return st;
}

int dataset_choro(pm_ctx *ctx, dataset *d, pm_grid grid, const pm_choro **out)
{
    int st = check_grid(ctx, grid);
    if (!st && !d->choro[grid])
        st = pm_choro_new(ctx, d->run.ds, grid, &d->choro[grid]);
    *out = st ? NULL : d->choro[grid];
    return st;
}

int dataset_weights(pm_ctx *ctx, dataset *d, const pm_weights **out)
{
    int st = d->weights ? PM_OK : pm_weights_queen(ctx, d->run.ds, 0, &d->weights);
    *out = st ? NULL : d->weights;
    return st;
}

int dataset_district_values(pm_ctx *ctx, const dataset *d, const pm_filter *f,
                            const pm_figure *fig, double *v)
{
    size_t nd = pm_districts_count(d->run.ds), n = 0;
    pm_row *rows = NULL;
    int st = pm_cube_query(ctx, d->cube, PM_LEVEL_DISTRICT, f, &rows, &n);
    for (size_t i = 0; st == PM_OK && i < nd; i++)
        v[i] = NAN;
    for (size_t k = 0; st == PM_OK && k < n; k++)
        if (rows[k].key < nd)
            v[rows[k].key] = pm_figure_value(fig, &rows[k]);
    for (size_t i = 0; st == PM_OK && i < nd; i++)
        if (!isfinite(v[i]))
            st = PM_ERR(ctx, PM_E_INPUT_VALUE,
                        "district \"%s\" has no %s (no population for a rate, nothing "
                        "answered, no earlier period ...): choose another figure",
                        pm_district_id(d->run.ds, i), pm_figure_name(fig));
    pm_free(rows);
    return st;
}

/* ---- requests ------------------------------------------------------------------ */

static const char *const KIND_NAMES[LAYER_KINDS] = {"heat", "choropleth", "grid", "hotspots"};

int layer_kind_parse(const char *name)
{
    for (int i = 0; name && i < LAYER_KINDS; i++)
        if (strcmp(name, KIND_NAMES[i]) == 0)
            return i;
    return -1;
}

const char *layer_kind_name(layer_kind k)
{
    return (unsigned)k < LAYER_KINDS ? KIND_NAMES[k] : "?";
}

void layer_request_init(layer_request *r)
{
    memset(r, 0, sizeof *r);
    r->kind = LAYER_HEAT;
    r->grid = PM_GRID_WEBMERC;
    r->weight = PM_WEIGHT_ONE;
    r->heat = (pm_heat_opts){PM_KERNEL_QUARTIC, 0, 0, PM_RAMP_INFERNO, 0};
    r->cell_m = 0;
}

int layer_filter_option(layer_request *r, const char *cmd, int which, const char *arg)
{
    switch (which) {
    case LAYER_OPT_TOPIC: case LAYER_OPT_SOURCE: {
        const char **v = which == LAYER_OPT_TOPIC ? r->topics : r->sources;
        size_t *n = which == LAYER_OPT_TOPIC ? &r->n_topics : &r->n_sources;
        if (*n == LAYER_MAX_VALUES)
            return cli_usage_error(cmd, "at most %d values per filter", LAYER_MAX_VALUES);
        v[(*n)++] = arg;
        return EXIT_OK;
    }
    case LAYER_OPT_FROM: r->from = arg; return EXIT_OK;
    case LAYER_OPT_TO: r->to = arg; return EXIT_OK;
    }
    return cli_usage_error(cmd, "unknown option");
}

double layer_auto_scale_m(const dataset *d, double divisor)
{
    double x = d->extent_m / divisor;
    if (!(x >= 500))
        return 500;
    if (x >= 100000)
        return 100000;
    double p = pow(10, floor(log10(x))), m = x / p;
    return (m >= 5 ? 5 : m >= 2 ? 2 : 1) * p;
}

/* Topic names → indexes. */
static int topics_make(pm_ctx *ctx, const dataset *d, const layer_request *r, layer_filters *out)
{
    for (size_t i = 0; i < r->n_topics; i++) {
        long k = pm_topics_find(d->run.t, r->topics[i]);
        if (k < 0)
            return PM_ERR(ctx, PM_E_USAGE, "unknown topic \"%s\" (see 'problemap topics')",
                          r->topics[i]);
        out->topic_buf[i] = (uint16_t)k;
    }
    out->cube.topics = out->heat.topics = out->topic_buf;
    out->cube.n_topics = out->heat.n_topics = r->n_topics;
    return PM_OK;
}

/* Source names → the cube's and the batch's indexes.  The cube holds the
 * sources of the complaints in a district, and the map shows no others. */
static int sources_make(pm_ctx *ctx, const dataset *d, const layer_request *r, layer_filters *out)
{
    const pm_complaints *cs = d->run.cs;
    size_t n_batch = pm_complaints_dict_count(cs, PM_DICT_SOURCE);
    for (size_t i = 0; i < r->n_sources; i++) {
        long k = pm_cube_dict_find(d->cube, PM_DICT_SOURCE, r->sources[i]);
        size_t b = 0;
        while (b < n_batch && strcmp(pm_complaints_dict_str(cs, PM_DICT_SOURCE, (uint32_t)b),
                                     r->sources[i]) != 0)
            b++;
        if (k < 0 || b == n_batch)
            return PM_ERR(ctx, PM_E_USAGE, "unknown source \"%s\" (no complaint in a district "
                                           "has it)", r->sources[i]);
        out->cube_source_buf[i] = (uint32_t)k;
        out->heat_source_buf[i] = (uint32_t)b;
    }
    out->cube.sources = out->cube_source_buf;
    out->heat.sources = out->heat_source_buf;
    out->cube.n_sources = out->heat.n_sources = r->n_sources;
    return PM_OK;
}

/* A YYYY-MM-DD local day → its start (UTC) and its day number. */
static int parse_day(pm_ctx *ctx, const dataset *d, const char *s, const char *flag, int64_t *t,
                     int64_t *day)
{
    if (strlen(s) != 10 || pm_time_parse_iso8601(s, d->utc_offset_s, t) != 0)
        return PM_ERR(ctx, PM_E_USAGE, "bad date \"%s\" for %s (a day like 2025-03-01)", s, flag);
    *day = pm_floor_div(*t + d->utc_offset_s, DAY_S);
    return PM_OK;
}

/* --from/--to → local days (points) and the periods holding them (cube). */
static int days_make(pm_ctx *ctx, const dataset *d, const layer_request *r, layer_filters *out)
{
    if (!r->from && !r->to)
        return PM_OK;
    const pm_cube_opts *o = pm_cube_options(d->cube);
    int64_t first = 0, last = 0, t;
    pm_cube_period_span(d->cube, &first, &last);
    out->heat.has_days = out->cube.has_range = 1;
    out->heat.day_from = INT32_MIN;
    out->heat.day_to = INT32_MAX;
    out->cube.period_from = first;
    out->cube.period_to = last;
    int st = PM_OK;
    if (r->from && !(st = parse_day(ctx, d, r->from, "--from", &t, &out->heat.day_from)))
        out->cube.period_from = pm_period_of(o->period, t, o->utc_offset_s);
    if (!st && r->to && !(st = parse_day(ctx, d, r->to, "--to", &t, &out->heat.day_to)))
        out->cube.period_to = pm_period_of(o->period, t, o->utc_offset_s);
    if (!st && out->heat.day_from > out->heat.day_to)
        st = PM_ERR(ctx, PM_E_USAGE, "--to %s is before --from %s", r->to, r->from);
    if (!st && out->cube.period_from > out->cube.period_to)   /* an open end past the data */
        out->cube.period_from = out->cube.period_to = r->from ? out->cube.period_from
                                                              : out->cube.period_to;
    return st;
}

int layer_filters_make(pm_ctx *ctx, const dataset *d, const layer_request *r, layer_filters *out)
{
    memset(out, 0, sizeof *out);
    if (r->n_topics > LAYER_MAX_VALUES || r->n_sources > LAYER_MAX_VALUES)
        return PM_ERR(ctx, PM_E_USAGE, "at most %d values per filter", LAYER_MAX_VALUES);
    int st = topics_make(ctx, d, r, out);
    if (!st)
        st = sources_make(ctx, d, r, out);
    if (!st)
        st = days_make(ctx, d, r, out);
    return st;
}

/* ---- layers ---------------------------------------------------------------------- */

struct map_layer {
    layer_kind kind;
    pm_weight weight;
    const pm_figure *fig;      /* choropleth and hotspots */
    double cell_m;             /* grid */
    int fdr;                   /* hotspots */
    size_t bin_count[PM_GI_BINS];   /* hotspots: districts per Gi* bin (−3 .. 3) */
    pm_points *own_points;     /* weighted points of a heat layer */
    pm_heat_layer *heat;
    pm_choro_layer *choro;     /* choropleth and hotspots */
    pm_cells *cells;
};

/* When a weighted layer judges "open" and "overdue": the cube's report
 * time for the filter (the start of the period after its range). */
static int64_t report_time(const dataset *d, const pm_filter *f)
{
    int64_t first = 0, last = 0;
    pm_cube_period_span(d->cube, &first, &last);
    const pm_cube_opts *o = pm_cube_options(d->cube);
    return pm_period_start(o->period, (f->has_range ? f->period_to : last) + 1, o->utc_offset_s);
}

/* The points a heat or grid layer counts: the dataset's, or weighted ones
 * made for the layer (*own, to be freed by the caller). */
static int layer_points(pm_ctx *ctx, const dataset *d, const layer_request *r,
                        const layer_filters *lf, const pm_points **pts, pm_points **own)
{
    *own = NULL;
    if (r->weight != PM_WEIGHT_ONE) {
        int st = pm_points_new_weighted(ctx, d->run.cs, d->run.pl, r->grid, d->utc_offset_s,
                                        r->weight, report_time(d, &lf->cube), own);
        *pts = *own;
        return st;
    }
    if (!(*pts = d->points[r->grid]))
        return PM_ERR(ctx, PM_E_USAGE, "the dataset has no points on grid %d yet "
                                       "(dataset_points first)", (int)r->grid);
    return PM_OK;
}

/* The districts that meet the tiles of r->grid, or a usage error. */
static int layer_choro(pm_ctx *ctx, const dataset *d, const layer_request *r, const pm_choro **c)
{
    if (!(*c = d->choro[r->grid]))
        return PM_ERR(ctx, PM_E_USAGE, "the dataset has no districts on grid %d yet "
                                       "(dataset_choro first)", (int)r->grid);
    return PM_OK;
}

static int choropleth_new(pm_ctx *ctx, const dataset *d, const layer_request *r,
                          const layer_filters *lf, map_layer *l)
{
    const pm_choro *c;
    if (layer_choro(ctx, d, r, &c))
        return PM_E_USAGE;
    size_t nd = pm_districts_count(d->run.ds), n = 0;
    pm_row *rows = NULL;
    double *v = pm_calloc(nd ? nd : 1, sizeof *v);
    if (!v)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory for %zu district values", nd);
    int st = pm_cube_query(ctx, d->cube, PM_LEVEL_DISTRICT, &lf->cube, &rows, &n);
    if (!st) {
        for (size_t i = 0; i < nd; i++)
            v[i] = NAN;
        for (size_t k = 0; k < n; k++)
            if (rows[k].key < nd)
                v[rows[k].key] = pm_figure_value(l->fig, &rows[k]);
        st = pm_choro_layer_new(ctx, c, l->fig, v, nd, &l->choro);
    }
    pm_free(rows);
    pm_free(v);
    return st;
}

/* Gi* of the request's figure → v[i] = district i's bin, NAN where Gi* is
 * undefined (islands, no variance); counts the bins. */
static int gi_bins(pm_ctx *ctx, const dataset *d, const layer_request *r,
                   const layer_filters *lf, map_layer *l, double *v)
{
    size_t nd = pm_districts_count(d->run.ds);
    int st = dataset_district_values(ctx, d, &lf->cube, l->fig, v);
    if (st == PM_E_INPUT_VALUE) {   /* the request chose the figure: its fault */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", pm_ctx_errmsg(ctx));
        return PM_ERR(ctx, PM_E_USAGE, "hot spots: %s", msg);
    }
    pm_gistar *gi = NULL;
    pm_gistar_opts go = {r->fdr, 0};
    if (!st)
        st = pm_gistar_compute(ctx, d->weights, v, nd, &go, &gi);
    for (size_t i = 0; !st && i < nd; i++) {
        v[i] = isfinite(gi->z[i]) ? gi->bin[i] : NAN;
        if (isfinite(v[i]))
            l->bin_count[gi->bin[i] + PM_GI_BINS / 2]++;
    }
    pm_gistar_free(gi);
    return st;
}

static int hotspots_new(pm_ctx *ctx, const dataset *d, const layer_request *r,
                        const layer_filters *lf, map_layer *l)
{
    const pm_choro *c;
    int st = layer_choro(ctx, d, r, &c);
    if (st)
        return st;
    if (!d->weights)
        return PM_ERR(ctx, PM_E_USAGE, "the dataset has no district weights yet "
                                       "(dataset_weights first)");
    size_t nd = pm_districts_count(d->run.ds);
    double *v = pm_calloc(nd ? nd : 1, sizeof *v);
    if (!v)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory for %zu district values", nd);
    l->fdr = r->fdr;
    st = gi_bins(ctx, d, r, lf, l, v);
    if (!st) {
        pm_classes bins;
        pm_classes_gi_bins(&bins);
        st = pm_choro_layer_new_classed(ctx, c, &bins, v, nd, &l->choro);
    }
    pm_free(v);
    return st;
}

static int check_request(pm_ctx *ctx, const layer_request *r, map_layer *l)
{
    if ((unsigned)r->kind >= LAYER_KINDS)
        return PM_ERR(ctx, PM_E_USAGE, "unknown layer kind %d", (int)r->kind);
    if (check_grid(ctx, r->grid))
        return PM_E_USAGE;
    if (r->weight != PM_WEIGHT_ONE && r->weight != PM_WEIGHT_OPEN &&
        r->weight != PM_WEIGHT_OVERDUE && r->weight != PM_WEIGHT_WAIT_H)
        return PM_ERR(ctx, PM_E_USAGE, "unknown weight %d", (int)r->weight);
    l->fig = pm_figure_find(r->figure ? r->figure : "complaints");
    if (!l->fig)
        return PM_ERR(ctx, PM_E_USAGE, "unknown figure \"%s\" (one of: %s)", r->figure,
                      pm_figure_names());
    return PM_OK;
}

int map_layer_new(pm_ctx *ctx, const dataset *d, const layer_request *r, map_layer **out)
{
    *out = NULL;
    map_layer *l = pm_calloc(1, sizeof *l);
    if (!l)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory for a map layer");
    l->kind = r->kind;
    l->weight = r->weight;
    layer_filters lf;
    const pm_points *pts = NULL;
    pm_points *own = NULL;
    int st = check_request(ctx, r, l);
    l->cell_m = r->cell_m > 0 ? r->cell_m : layer_auto_scale_m(d, 100);
    pm_heat_opts heat = r->heat;
    if (!(heat.radius_m > 0) && !(heat.radius_px > 0))
        heat.radius_m = layer_auto_scale_m(d, 150);
    if (!st)
        st = layer_filters_make(ctx, d, r, &lf);
    if (!st && r->kind == LAYER_CHOROPLETH)
        st = choropleth_new(ctx, d, r, &lf, l);
    else if (!st && r->kind == LAYER_HOTSPOTS)
        st = hotspots_new(ctx, d, r, &lf, l);
    else if (!st)
        st = layer_points(ctx, d, r, &lf, &pts, &own);
    if (!st && r->kind == LAYER_HEAT) {
        st = pm_heat_layer_new(ctx, pts, &lf.heat, &heat, &l->heat);
        l->own_points = own;   /* the heat layer borrows them */
        own = NULL;
    } else if (!st && r->kind == LAYER_GRID) {
        st = pm_cells_new(ctx, pts, &lf.heat, d->centre_lon, d->centre_lat, l->cell_m, &l->cells);
    }
    pm_points_free(own);
    if (st) {
        map_layer_free(l);
        return st;
    }
    *out = l;
    return PM_OK;
}

void map_layer_free(map_layer *l)
{
    if (!l)
        return;
    pm_heat_layer_free(l->heat);
    pm_points_free(l->own_points);
    pm_choro_layer_free(l->choro);
    pm_cells_free(l->cells);
    pm_free(l);
}

int map_layer_tile_png(pm_ctx *ctx, const map_layer *l, int z, uint32_t x, uint32_t y, int size,
                       uint8_t **png, size_t *len, int *empty)
{
    switch (l->kind) {
    case LAYER_CHOROPLETH:
    case LAYER_HOTSPOTS: return pm_choro_tile_png(ctx, l->choro, z, x, y, size, png, len, empty);
    case LAYER_GRID: return pm_cells_tile_png(ctx, l->cells, z, x, y, size, png, len, empty);
    default: return pm_heat_tile_png(ctx, l->heat, z, x, y, size, png, len, empty);
    }
}

/* ---- the legend ------------------------------------------------------------------- */

static void colour_hex(unsigned rgb, char buf[8])
{
    snprintf(buf, 8, "#%06x", rgb & 0xffffffu);
}

/* A number with three significant digits (none from 100 up), Russian style. */
static void format_sig(double v, char *buf, size_t cap)
{
    double a = fabs(v);
    int dec = !(a > 0) || a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
    pm_format_number(v, dec, 0, buf, cap);
}

/* What a point counts for, in the titles. */
static const char *weight_title(pm_weight w, int grid)
{
    switch (w) {
    case PM_WEIGHT_OPEN: return grid ? "Открытых обращений" : "Плотность открытых обращений";
    case PM_WEIGHT_OVERDUE:
        return grid ? "Просроченных обращений" : "Плотность просроченных обращений";
    case PM_WEIGHT_WAIT_H: return grid ? "Часов ожидания ответа" : "Плотность ожидания ответа, ч";
    default: return grid ? "Обращений" : "Плотность обращений";
    }
}

static json_t *heat_legend(const map_layer *l)
{
    pm_heat_stop s[16];
    size_t n = pm_heat_legend(l->heat, s, 16);
    json_t *stops = json_array();
    for (size_t i = 0; stops && i < n; i++) {
        char label[64], hex[8];
        format_sig(s[i].value, label, sizeof label);
        colour_hex((unsigned)s[i].r << 16 | (unsigned)s[i].g << 8 | s[i].b, hex);
        if (json_array_append_new(stops, json_pack("{s:f, s:s, s:s, s:i}", "value", s[i].value,
                                                   "label", label, "color", hex, "alpha",
                                                   (int)s[i].a))) {
            json_decref(stops);
            return NULL;
        }
    }
    if (!stops)
        return NULL;
    return json_pack("{s:s, s:s, s:o, s:f}", "kind", "heat", "title",
                     weight_title(l->weight, 0), "stops", stops, "v_max",
                     pm_heat_layer_vmax(l->heat));
}

/* Class labels as the report writes them: "lo – hi" ("hi" alone when
 * they read the same), the unit after hi; values by fmt. */
typedef void (*value_fmt)(const map_layer *l, const pm_classes *c, double v, int unit, char *buf,
                          size_t cap);

static void figure_fmt(const map_layer *l, const pm_classes *c, double v, int unit, char *buf,
                       size_t cap)
{
    pm_figure_format(l->fig, c, v, unit, buf, cap);
}

static void count_fmt(const map_layer *l, const pm_classes *c, double v, int unit, char *buf,
                      size_t cap)
{
    (void)l, (void)c, (void)unit;
    if (v == floor(v))
        pm_format_number(v, 0, 0, buf, cap);
    else
        format_sig(v, buf, cap);
}

static json_t *class_list(const map_layer *l, const pm_classes *c, value_fmt fmt)
{
    json_t *a = json_array();
    for (size_t k = 0; a && k < c->n; k++) {
        char lo[64], hi[64], lo_unit[64], label[160], hex[8];
        fmt(l, c, c->lo[k], 0, lo, sizeof lo);
        fmt(l, c, c->lo[k], 1, lo_unit, sizeof lo_unit);
        fmt(l, c, c->hi[k], 1, hi, sizeof hi);
        if (strcmp(lo_unit, hi) == 0)
            snprintf(label, sizeof label, "%s", hi);
        else
            snprintf(label, sizeof label, "%s " EN_DASH " %s", lo, hi);
        colour_hex(pm_classes_colour(c, (int)k), hex);
        if (json_array_append_new(a, json_pack("{s:f, s:f, s:s, s:s}", "lo", c->lo[k], "hi",
                                               c->hi[k], "label", label, "color", hex))) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* o (taken) with "nodata" when c has it and "classes" was made; NULL when
 * out of memory. */
static json_t *with_nodata(json_t *o, const pm_classes *c)
{
    if (o && c->has_nodata) {
        char hex[8];
        colour_hex(PM_FIGURE_NODATA, hex);
        if (json_object_set_new(o, "nodata",
                                json_pack("{s:s, s:s}", "label", NO_DATA_RU, "color", hex))) {
            json_decref(o);
            return NULL;
        }
    }
    if (o && !json_object_get(o, "classes")) {   /* the class list failed */
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *classes_legend(const map_layer *l, const char *title, const pm_classes *c,
                              value_fmt fmt)
{
    return with_nodata(json_pack("{s:s, s:s, s:o*}", "kind", layer_kind_name(l->kind), "title",
                                 title, "classes", class_list(l, c, fmt)), c);
}

/* The seven Gi* bins, cold to hot, with their districts' counts. */
static json_t *hotspots_legend(const map_layer *l)
{
    const pm_classes *c = pm_choro_layer_classes(l->choro);
    json_t *a = json_array();
    for (int k = 0; a && k < PM_GI_BINS; k++) {
        char hex[8];
        int bin = k - PM_GI_BINS / 2;
        colour_hex(pm_classes_colour(c, k), hex);
        if (json_array_append_new(a, json_pack("{s:i, s:s, s:s, s:I}", "bin", bin, "label",
                                               pm_gi_bin_label_ru(bin), "color", hex, "count",
                                               (json_int_t)l->bin_count[k]))) {
            json_decref(a);
            a = NULL;
        }
    }
    char title[256];
    snprintf(title, sizeof title, "Горячие точки (Gi*) по показателю «%s»%s",
             pm_figure_title_ru(l->fig), l->fdr ? ", поправка FDR" : "");
    return with_nodata(json_pack("{s:s, s:s, s:s, s:b, s:o*}", "kind", "hotspots", "title", title,
                                 "figure", pm_figure_name(l->fig), "fdr", l->fdr, "classes", a),
                       c);
}

/* "Обращений в ячейке 5 км × 5 км". */
static void grid_title(const map_layer *l, char *buf, size_t cap)
{
    char side[32];
    int km = l->cell_m >= 1000;
    double v = km ? l->cell_m / 1000 : l->cell_m;
    pm_format_number(v, v == floor(v) ? 0 : 1, 0, side, sizeof side);
    snprintf(buf, cap, "%s в ячейке %s %s × %s %s", weight_title(l->weight, 1), side,
             km ? "км" : "м", side, km ? "км" : "м");
}

json_t *map_layer_legend(const map_layer *l)
{
    switch (l->kind) {
    case LAYER_CHOROPLETH:
        return classes_legend(l, pm_figure_title_ru(l->fig), pm_choro_layer_classes(l->choro),
                              figure_fmt);
    case LAYER_HOTSPOTS: return hotspots_legend(l);
    case LAYER_GRID: {
        char title[160];
        grid_title(l, title, sizeof title);
        return classes_legend(l, title, pm_cells_classes(l->cells), count_fmt);
    }
    default: return heat_legend(l);
    }
}
