/* analyze.c — `problemap analyze`: statistics a coordination centre can
 * trust and explain (docs/analytics.md).
 *   hot spots        Getis-Ord Gi* and local Moran's I per district, on a
 *                    cube figure over the chosen range (queen neighbours);
 *   emerging         Gi* per week over the last --weeks weeks, a
 *                    Mann-Kendall trend, and the emerging-hot-spot class;
 *   forecast         next week's count per district × topic with intervals,
 *                    backtested, and surge alerts;
 *   recurrence       complaints on one topic at one place again and again;
 *   grid hot spots   Gi* (and emerging hot spots) on equal-area square or
 *                    hexagonal cells (analyze_grid.c).
 * The work is the library's (engine/pm_hotspot.h, pm_weights.h,
 * pm_forecast.h, pm_recur.h); this file picks the values from the cube and
 * writes GeoJSON and CSV.  No complaint text, author or id is written. */
#include "analyze.h"
#include "../geodata/pm_out.h"
#include "../engine/pm_alloc.h"
#include "../engine/pm_hotspot.h"
#include "../engine/pm_weights.h"
#include "../geodata/pm_cube_out.h"
#include "../render/pm_figure.h"
#include "../render/pm_report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: problemap analyze --boundaries B.geojson --complaints C.csv [outputs] [options]\n"
    "\n"
    "Statistics over the placed complaints (docs/analytics.md):\n"
    "  hot spots   Getis-Ord Gi* z-scores, p-values and confidence bins (99/95/90 %), and\n"
    "              local Moran's I clusters (HH, LL, HL, LH; permutation p-values), per\n"
    "              district, with neighbours that share a border (queen contiguity)\n"
    "  emerging    the same Gi* for each of the last --weeks weeks, a Mann-Kendall trend,\n"
    "              and the class: new, consecutive, intensifying, persistent, diminishing,\n"
    "              sporadic, oscillating or historical hot (cold) spot, or none\n"
    "  grid        Gi* hot spots (and emerging ones) on equal-area square or hexagonal\n"
    "              cells over the districts, neighbours within a distance or the k nearest\n"
    "\n";
static const char usage_analyze[] =
    "Outputs (GeoJSON for GIS tools, CSV for spreadsheets; at least one):\n"
    "  --hotspots FILE          districts with value, gi_z, gi_p, gi_p_fdr, gi_bin,\n"
    "                           moran_i, moran_p, moran_cluster (GeoJSON)\n"
    "  --hotspots-csv FILE      the same table as CSV\n"
    "  --emerging FILE          districts with emerging_class, trend_z, trend_p,\n"
    "                           hot_weeks, cold_weeks, last_gi_z (GeoJSON)\n"
    "  --emerging-csv FILE      the same table as CSV\n"
    "  --report FILE            the report for officials (.png, .pdf or .svg; repeat for\n"
    "                           several formats): the usual page\n"
    "                           (the choropleth of --figure) and a page of the emerging hot\n"
    "                           spots and the surge alerts, in Russian\n"
    ANALYZE_USAGE_MORE
    ANALYZE_USAGE_GRID
    "Filters:\n"
    "  --topic T, --source S    (repeat for several)\n"
    "  --from YYYY-MM-DD, --to YYYY-MM-DD   the range (default: the whole data)\n"
    "Options:\n"
    "  --figure NAME            the value per district (default complaints; see 'cube')\n"
    "  --weeks N                weeks of the emerging analysis (default 8, at least 4)\n"
    "  --fdr                    Gi* bins and surge alerts from Benjamini-Hochberg adjusted\n"
    "                           p-values (a false discovery rate of 5 %), for many districts\n"
    "                           or grid cells\n"
    "  --permutations N         local Moran's permutations (default 999)\n"
    "  --seed N                 their seed (default 12345): the same seed, the same output\n"
    "  --snap-m M               districts whose borders come within M metres are neighbours\n"
    "                           (gaps in real boundary data; default 0)\n"
    "  -h, --help               this help\n";

/* A row-standardised copy of w: local Moran's I needs one, Gi* refuses it. */
static int weights_standardised(pm_ctx *ctx, const pm_weights *w, pm_weights **out)
{
    size_t n = pm_weights_count(w), m = pm_weights_links(w), k = 0;
    size_t *off = pm_calloc(n + 1, sizeof *off), *nb = pm_calloc(m ? m : 1, sizeof *nb);
    double *wt = pm_calloc(m ? m : 1, sizeof *wt);
    int rc = off && nb && wt ? PM_OK : PM_ERR(ctx, PM_E_NOMEM, "out of memory for %zu links", m);
    for (size_t i = 0; rc == PM_OK && i < n; i++) {
        const size_t *ni;
        const double *wi;
        size_t len = pm_weights_row(w, i, &ni, &wi);
        memcpy(nb + k, ni, len * sizeof *nb);
        memcpy(wt + k, wi, len * sizeof *wt);
        off[i + 1] = k += len;
    }
    if (rc == PM_OK && (rc = pm_weights_from_csr(ctx, n, off, nb, wt, out)) == PM_OK)
        pm_weights_row_standardise(*out);
    pm_free(off);
    pm_free(nb);
    pm_free(wt);
    return rc;
}

/* ---- hot spots ---------------------------------------------------------------- */

typedef struct hotspots {
    double *value;
    pm_gistar *gi;
    pm_moran *moran;
} hotspots;

static void hotspots_free(hotspots *h)
{
    pm_free(h->value);
    pm_gistar_free(h->gi);
    pm_moran_free(h->moran);
}

static int hotspots_compute(pm_ctx *ctx, const analyze_job *j, const dataset *d,
                            const pm_weights *w, const pm_weights *w_std, const pm_filter *f,
                            const pm_figure *fig, hotspots *h)
{
    size_t nd = pm_districts_count(d->run.ds);
    if (!(h->value = pm_calloc(nd ? nd : 1, sizeof *h->value)))
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory for %zu district values", nd);
    pm_gistar_opts go = {j->fdr, j->snap_m};
    int rc = dataset_district_values(ctx, d, f, fig, h->value);
    if (!rc)
        rc = pm_gistar_compute(ctx, w, h->value, nd, &go, &h->gi);
    if (!rc)
        rc = pm_moran_local(ctx, w_std, h->value, nd, &j->moran, &h->moran);
    return rc;
}

/* ---- emerging hot spots ------------------------------------------------------- */

void analyze_emerging_free(analyze_emerging *em)
{
    for (size_t t = 0; em->steps && t < em->n_steps; t++)
        pm_gistar_free(em->steps[t]);
    pm_free(em->steps);
    pm_emerging_free(em->e);
    memset(em, 0, sizeof *em);
}

int analyze_emerging_compute(pm_ctx *ctx, const dataset *d, const pm_weights *w, size_t n,
                             const pm_filter *range, size_t weeks, int fdr, analyze_week_fn fn,
                             void *user, analyze_emerging *em)
{
    int64_t first = 0, last = 0;
    if (range->has_range)
        first = range->period_from, last = range->period_to;
    else
        pm_cube_period_span(d->cube, &first, &last);
    if (last - first + 1 < (int64_t)weeks)
        return PM_ERR(ctx, PM_E_USAGE, "the range holds %lld weeks; the emerging analysis needs "
                                       "--weeks %zu (widen --from/--to or lower --weeks)",
                      (long long)(last - first + 1), weeks);
    em->n_steps = weeks;
    em->first_week = last - (int64_t)weeks + 1;
    em->steps = pm_calloc(em->n_steps, sizeof *em->steps);
    double *v = pm_calloc(n ? n : 1, sizeof *v);
    int rc = em->steps && v ? PM_OK : PM_ERR(ctx, PM_E_NOMEM, "out of memory for %zu weeks", weeks);
    pm_gistar_opts go = {fdr, 0};
    for (size_t t = 0; rc == PM_OK && t < em->n_steps; t++) {
        rc = fn(ctx, user, em->first_week + (int64_t)t, v);
        if (!rc)
            rc = pm_gistar_compute(ctx, w, v, n, &go, &em->steps[t]);
    }
    pm_free(v);
    pm_ehs_opts eo;
    pm_ehs_opts_default(&eo);
    if (!rc)
        rc = pm_emerging_compute(ctx, (const pm_gistar *const *)em->steps, em->n_steps, &eo, &em->e);
    return rc;
}

/* The districts' values of one week: the figure under the range's filters. */
typedef struct district_week {
    const dataset *d;
    const pm_filter *range;
    const pm_figure *fig;
} district_week;

static int district_week_values(pm_ctx *ctx, void *user, int64_t week, double *v)
{
    const district_week *dw = user;
    pm_filter f = *dw->range;
    f.has_range = 1;
    f.period_from = f.period_to = week;
    f.report_time = 0;
    return dataset_district_values(ctx, dw->d, &f, dw->fig, v);
}

/* ---- tables ------------------------------------------------------------------ */

#define num analyze_num

/* The properties of district i in the hot-spot table. */
static json_t *hotspot_props(const dataset *d, const hotspots *h, size_t i)
{
    const pm_districts *ds = d->run.ds;
    const pm_gistar *g = h->gi;
    const pm_moran *m = h->moran;
    return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:i, s:o, s:o, s:s}", "id",
                     pm_district_id(ds, i), "name", pm_district_name(ds, i), "value", num(h->value[i]),
                     "gi_z", num(g->z[i]), "gi_p", num(g->p[i]), "gi_p_fdr", num(g->p_fdr[i]),
                     "gi_bin", (int)g->bin[i], "moran_i", num(m->I[i]), "moran_p", num(m->p[i]),
                     "moran_cluster", pm_quadrant_name((pm_quadrant)m->cluster[i]));
}

json_t *analyze_num(double x) { return isfinite(x) ? json_real(x) : json_null(); }

int analyze_emerging_props(const analyze_emerging *em, size_t i, json_t *props)
{
    int hot = 0, cold = 0;
    for (size_t t = 0; t < em->n_steps; t++) {
        hot += em->steps[t]->bin[i] > 0;
        cold += em->steps[t]->bin[i] < 0;
    }
    const pm_mk *mk = &em->e->trend[i];
    json_t *add = json_pack("{s:s, s:o, s:o, s:i, s:i, s:o}", "emerging_class",
                            pm_ehs_class_name((pm_ehs_class)em->e->cls[i]), "trend_z", num(mk->z),
                            "trend_p", num(mk->p), "hot_weeks", hot, "cold_weeks", cold, "last_gi_z",
                            num(em->steps[em->n_steps - 1]->z[i]));
    int bad = !add || json_object_update(props, add) != 0;
    json_decref(add);
    return bad ? -1 : 0;
}

static json_t *emerging_props(const dataset *d, const analyze_emerging *em, size_t i)
{
    json_t *p = json_pack("{s:s, s:s}", "id", pm_district_id(d->run.ds, i), "name",
                          pm_district_name(d->run.ds, i));
    if (p && analyze_emerging_props(em, i, p) != 0) {
        json_decref(p);
        return NULL;
    }
    return p;
}

typedef json_t *(*props_fn)(const dataset *d, const void *what, size_t i);
static json_t *hotspot_props_v(const dataset *d, const void *h, size_t i) { return hotspot_props(d, h, i); }
static json_t *emerging_props_v(const dataset *d, const void *e, size_t i) { return emerging_props(d, e, i); }

/* One JSON object per district, in district order (NULL: out of memory). */
static json_t **table_props(const dataset *d, props_fn fn, const void *what)
{
    size_t nd = pm_districts_count(d->run.ds);
    json_t **p = pm_calloc(nd ? nd : 1, sizeof *p);
    for (size_t i = 0; p && i < nd; i++)
        if (!(p[i] = fn(d, what, i))) {
            analyze_props_free(p, i);
            return NULL;
        }
    return p;
}

void analyze_props_free(json_t **p, size_t n)
{
    for (size_t i = 0; p && i < n; i++)
        json_decref(p[i]);
    pm_free(p);
}

/* The table as GeoJSON (path_geojson) and/or CSV (path_csv), columns in the
 * order of the first object's keys as json_pack made them, sorted. */
static int write_table(pm_ctx *ctx, const dataset *d, props_fn fn, const void *what,
                       const char *path_geojson, const char *path_csv)
{
    if (!path_geojson && !path_csv)
        return PM_OK;
    size_t nd = pm_districts_count(d->run.ds);
    json_t **props = table_props(d, fn, what);
    size_t *keys = pm_calloc(nd ? nd : 1, sizeof *keys);
    int rc = props && keys ? PM_OK : PM_ERR(ctx, PM_E_NOMEM, "out of memory for %zu rows", nd);
    for (size_t i = 0; keys && i < nd; i++)
        keys[i] = i;
    pm_export_opts eo = {.simplify_m = 0};
    if (!rc && path_geojson)
        rc = pm_districts_write_geojson(ctx, path_geojson, d->run.ds, keys, props, nd, &eo);
    if (!rc && path_csv)
        rc = analyze_write_csv(ctx, path_csv, props, nd, NULL);
    pm_free(keys);
    analyze_props_free(props, nd);
    return rc;
}

struct analyze_csv {
    pm_outfile *of;
    const char *path;
    json_t *first;        /* holds the keys */
    const char **keys, **cells;
    char (*buf)[64];
    size_t nk;
};

void analyze_csv_abort(analyze_csv *c)
{
    if (!c)
        return;
    pm_outfile_abort(c->of);
    json_decref(c->first);
    pm_free(c->keys);
    pm_free(c->cells);
    pm_free(c->buf);
    pm_free(c);
}

int analyze_csv_open(pm_ctx *ctx, const char *path, const json_t *first, analyze_csv **out)
{
    analyze_csv *c = pm_calloc(1, sizeof *c);
    size_t nk = first ? json_object_size(first) : 0;
    *out = NULL;
    if (c) {
        c->path = path;
        c->nk = nk;
        c->first = json_incref((json_t *)first);
        c->keys = pm_calloc(nk ? nk : 1, sizeof *c->keys);
        c->cells = pm_calloc(nk ? nk : 1, sizeof *c->cells);
        c->buf = pm_calloc(nk ? nk : 1, sizeof *c->buf);
    }
    if (!c || !c->keys || !c->cells || !c->buf) {
        analyze_csv_abort(c);
        return PM_ERR(ctx, PM_E_NOMEM, "%s: out of memory", path);
    }
    int rc = pm_outfile_open(ctx, path, &c->of);
    if (rc) {
        analyze_csv_abort(c);
        return rc;
    }
    size_t k = 0;
    const char *key;
    json_t *v;
    json_object_foreach(c->first, key, v) c->keys[k++] = key;
    qsort(c->keys, nk, sizeof *c->keys, analyze_cmp_str);
    pm_csv_write_row(pm_outfile_stream(c->of), ',', nk, c->keys);
    *out = c;
    return PM_OK;
}

void analyze_csv_row(analyze_csv *c, const json_t *row)
{
    for (size_t k = 0; k < c->nk; k++) {
        json_t *v = json_object_get(row, c->keys[k]);
        c->cells[k] = NULL;
        if (json_is_string(v))
            c->cells[k] = json_string_value(v);
        else if (json_is_integer(v))
            snprintf(c->buf[k], sizeof c->buf[k], "%lld", (long long)json_integer_value(v)),
                c->cells[k] = c->buf[k];
        else if (json_is_real(v))
            snprintf(c->buf[k], sizeof c->buf[k], "%.10g", json_real_value(v)), c->cells[k] = c->buf[k];
        else if (json_is_boolean(v))
            c->cells[k] = json_is_true(v) ? "true" : "false";
    }
    pm_csv_write_row(pm_outfile_stream(c->of), ',', c->nk, c->cells);
}

int analyze_csv_commit(pm_ctx *ctx, analyze_csv *c)
{
    pm_outfile *of = c->of;
    c->of = NULL;
    analyze_csv_abort(c);
    return pm_outfile_commit(ctx, of);
}

int analyze_write_csv(pm_ctx *ctx, const char *path, json_t *const *rows, size_t n,
                      const json_t *sample)
{
    analyze_csv *c;
    int rc = analyze_csv_open(ctx, path, n ? rows[0] : sample, &c);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++)
        analyze_csv_row(c, rows[i]);
    return analyze_csv_commit(ctx, c);
}

int analyze_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ---- the command ------------------------------------------------------------- */

static int parse_count(const char *flag, const char *arg, unsigned long long lo, unsigned long long hi,
                       unsigned long long *out)
{
    char *end;
    *out = strtoull(arg, &end, 10);
    if (*end || arg[0] == '-' || !arg[0] || *out < lo || *out > hi)
        return cli_usage_error("analyze", "%s: '%s' is not a whole number from %llu to %llu", flag, arg,
                               lo, hi);
    return EXIT_OK;
}

static int parse_args(int argc, char **argv, analyze_job *j)
{
    enum { O_HOT = OPT_PLACE_LAST, O_HOT_CSV, O_EM, O_EM_CSV, O_FIGURE, O_WEEKS, O_FDR, O_PERMS,
           O_SEED, O_SNAP, O_REPORT, O_FILTER, O_MORE = O_FILTER + LAYER_FILTER_N,
           O_GRID = O_MORE + ANALYZE_MORE_N };
    static const struct option longopts[] = {
        CLI_PLACE_OPTIONS,
        {"hotspots", required_argument, 0, O_HOT}, {"hotspots-csv", required_argument, 0, O_HOT_CSV},
        {"emerging", required_argument, 0, O_EM}, {"emerging-csv", required_argument, 0, O_EM_CSV},
        LAYER_FILTER_OPTIONS(O_FILTER), {"figure", required_argument, 0, O_FIGURE}, {"weeks", required_argument, 0, O_WEEKS},
        {"fdr", no_argument, 0, O_FDR}, {"permutations", required_argument, 0, O_PERMS},
        {"seed", required_argument, 0, O_SEED}, {"snap-m", required_argument, 0, O_SNAP},
        {"report", required_argument, 0, O_REPORT}, ANALYZE_MORE_OPTIONS(O_MORE), ANALYZE_GRID_OPTIONS(O_GRID),
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int opt, ex = EXIT_OK;
    unsigned long long u;
    char *end;
    optind = 1;
    while (ex == EXIT_OK && (opt = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        int k = place_option(&j->p, "analyze", opt, optarg);
        if (k < 0)
            return EXIT_USAGE;
        if (k)
            continue;
        if (opt >= O_FILTER && opt < O_FILTER + LAYER_FILTER_N) {
            ex = layer_filter_option(&j->req, "analyze", opt - O_FILTER, optarg);
            continue;
        }
        if (opt >= O_MORE && opt < O_MORE + ANALYZE_MORE_N) {
            ex = analyze_more_option(&j->more, opt - O_MORE, optarg);
            continue;
        }
        if (opt >= O_GRID && opt < O_GRID + ANALYZE_GRID_N) {
            ex = analyze_grid_option(&j->grid, opt - O_GRID, optarg);
            continue;
        }
        switch (opt) {
        case O_HOT: j->hotspots = optarg; break;
        case O_HOT_CSV: j->hotspots_csv = optarg; break;
        case O_EM: j->emerging = optarg; break;
        case O_EM_CSV: j->emerging_csv = optarg; break;
        case O_REPORT:
            if (pm_report_format_parse(NULL, optarg) < 0)
                return cli_usage_error("analyze", "--report: '%s' does not end in .png, .pdf or .svg", optarg);
            if (j->n_reports == ANALYZE_REPORTS_MAX)
                return cli_usage_error("analyze", "--report: at most %d files", ANALYZE_REPORTS_MAX);
            j->reports[j->n_reports++] = optarg;
            break;
        case O_FIGURE:
            if (!pm_figure_find(optarg))
                return cli_usage_error("analyze", "--figure: unknown figure '%s' (%s)", optarg,
                                       pm_figure_names());
            j->req.figure = optarg;
            break;
        case O_WEEKS: ex = parse_count("--weeks", optarg, 4, 520, &u); j->weeks = (size_t)u; break;
        case O_PERMS: ex = parse_count("--permutations", optarg, 0, 99999, &u); j->moran.permutations = (unsigned)u; break;
        case O_SEED: ex = parse_count("--seed", optarg, 0, UINT64_MAX, &u); j->moran.seed = u; break;
        case O_FDR: j->fdr = 1; break;
        case O_SNAP:
            j->snap_m = strtod(optarg, &end);
            if (*end || !(j->snap_m >= 0 && j->snap_m <= 10000))
                return cli_usage_error("analyze", "--snap-m: '%s' is not metres from 0 to 10000", optarg);
            break;
        case 'h': printf("%s%s%s", usage, place_usage, usage_analyze); return -1;
        default: return cli_usage_error("analyze", "unknown option");
        }
    }
    if (ex)
        return ex;
    if (optind < argc)
        return cli_usage_error("analyze", "unexpected argument '%s'", argv[optind]);
    if (!j->hotspots && !j->hotspots_csv && !j->emerging && !j->emerging_csv && !j->n_reports &&
        !analyze_more_wanted(&j->more) && !analyze_grid_wanted(&j->grid))
        return cli_usage_error("analyze", "no output asked for (--hotspots, --emerging, --report, "
                                          "--grid-hotspots, ...)");
    return place_check(&j->p, "analyze");
}

static int run(pm_ctx *ctx, analyze_job *j, dataset *d)
{
    const pm_figure *fig = pm_figure_find(j->req.figure ? j->req.figure : "complaints");
    layer_filters lf;
    pm_weights *w = NULL, *w_std = NULL;
    hotspots h = {0};
    analyze_emerging em = {0};
    district_week dw = {d, &lf.cube, fig};
    int emerging = j->emerging || j->emerging_csv || j->n_reports;
    int spatial = j->hotspots || j->hotspots_csv || emerging;
    int rc = layer_filters_make(ctx, d, &j->req, &lf);
    if (rc == PM_E_USAGE)
        return cli_usage_error("analyze", "%s", pm_ctx_errmsg(ctx));
    if (!rc && spatial && !(rc = pm_weights_queen(ctx, d->run.ds, j->snap_m, &w)))
        rc = weights_standardised(ctx, w, &w_std);
    if (!rc && (j->hotspots || j->hotspots_csv) &&
        !(rc = hotspots_compute(ctx, j, d, w, w_std, &lf.cube, fig, &h)))
        rc = write_table(ctx, d, hotspot_props_v, &h, j->hotspots, j->hotspots_csv);
    if (!rc && emerging &&
        !(rc = analyze_emerging_compute(ctx, d, w, pm_districts_count(d->run.ds), &lf.cube, j->weeks,
                                        j->fdr, district_week_values, &dw, &em)))
        rc = write_table(ctx, d, emerging_props_v, &em, j->emerging, j->emerging_csv);
    for (size_t i = 0; !rc && i < j->n_reports; i++)
        rc = analyze_report_write(ctx, j->reports[i], d, &lf, j->req.figure, &em, j->fdr);
    if (!rc && !j->p.quiet && h.gi) {
        size_t hot = 0, cold = 0;
        for (size_t i = 0; i < h.gi->n; i++)
            hot += h.gi->bin[i] >= 2, cold += h.gi->bin[i] <= -2;
        fprintf(stderr, "problemap: hot spots (Gi*, 95 %%%s): %zu hot, %zu cold of %zu districts; "
                        "%zu without neighbours\n", j->fdr ? ", FDR" : "", hot, cold, h.gi->n,
                h.gi->n_island);
    }
    if (!rc && !j->p.quiet && em.e) {
        fprintf(stderr, "problemap: emerging hot spots over %zu weeks:", em.n_steps);
        for (int c = 1; c < PM_EHS_CLASSES; c++)
            if (em.e->count[c])
                fprintf(stderr, " %s %zu,", pm_ehs_class_name((pm_ehs_class)c), em.e->count[c]);
        fprintf(stderr, " none %zu\n", em.e->count[PM_EHS_NONE]);
    }
    j->more.fdr = j->fdr;
    if (!rc)
        rc = analyze_more_run(ctx, &j->more, d, &lf, j->p.quiet);
    j->grid.fdr = j->fdr;
    j->grid.weeks = j->weeks;
    if (!rc && analyze_grid_wanted(&j->grid))
        rc = analyze_grid_run(ctx, &j->grid, d, &lf, j->p.quiet);
    hotspots_free(&h);
    analyze_emerging_free(&em);
    pm_weights_free(w);
    pm_weights_free(w_std);
    if (rc == PM_E_USAGE)
        return cli_usage_error("analyze", "%s", pm_ctx_errmsg(ctx));
    return rc == PM_OK ? EXIT_OK : cli_fail(ctx, "analysing");
}

int cmd_analyze(int argc, char **argv)
{
    analyze_job j;
    memset(&j, 0, sizeof j);
    place_opts_init(&j.p);
    layer_request_init(&j.req);
    pm_moran_opts_default(&j.moran);
    analyze_more_init(&j.more);
    analyze_grid_init(&j.grid);
    j.weeks = 8;
    int ex = parse_args(argc, argv, &j);
    if (ex)
        return ex < 0 ? EXIT_OK : ex;
    pm_ctx *ctx = pm_ctx_new();
    if (!ctx)
        return EXIT_RUN;
    pm_ctx_set_log(ctx, cli_warn_log, j.p.quiet ? (void *)&cli_quiet : NULL);
    dataset *d = NULL;
    ex = dataset_new(ctx, &j.p, "week", 0, &d);
    if (!ex)
        ex = run(ctx, &j, d);
    dataset_free(ctx, d);
    pm_ctx_free(ctx);
    return ex;
}
