/* serve_api.c — the endpoints of `problemap serve` (docs/server.md): the
 * query's filters turned into a layer_request, map layers from the
 * generation's layer cache, and bodies (tiles, TileJSON, the districts'
 * GeoJSON, the summary, reports, metadata) from its response cache.
 *
 * Filters.  topic=CODE|name (repeatable), source=NAME (repeatable),
 * from=, to=YYYY-MM-DD, figure=NAME, weight=one|open|overdue|wait_h,
 * grid=3857|3395, fdr=0|1 (hot spots); token= is the access token and no filter; any other
 * name, a value given twice, an empty or overlong value is a 400.  The
 * filters are normalised — topics as codes in catalogue order, sources in
 * byte order, duplicates and default values dropped — into one query
 * string, which keys the caches and is what TileJSON puts in its tile URLs,
 * so equal requests share one layer and one cached tile.
 *
 * Every body is built in memory (open_memstream for the cube's writers),
 * cached under "<what>?<normalised query>" with its ETag, and never holds
 * a complaint's text or author: the data has none (pm_complaint.h). */
#include "serve.h"
#include "../engine/pm_alloc.h"
#include "../engine/pm_civil.h"
#include "../geodata/pm_cube_out.h"
#include "../render/pm_figure.h"
#include "../render/pm_report.h"

#include <math.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#define SIMPLIFY_M 300            /* districts' GeoJSON for the web */
#define ENTRY_OVERHEAD 160        /* bytes a cache entry costs beside its body and key */
#define CACHE_REVALIDATE "no-cache"
#define DEFAULT_TITLE "Обращения граждан"

/* A 1×1 transparent PNG: the answer for a tile with nothing on it. */
static const unsigned char EMPTY_PNG[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
    0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f,
    0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0b, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x60,
    0x00, 0x02, 0x00, 0x00, 0x05, 0x00, 0x01, 0xe9, 0xfa, 0xdc, 0xd8, 0x00, 0x00, 0x00, 0x00,
    0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

static const char *const WEIGHT_NAMES[] = {"one", "open", "overdue", "wait_h"};

/* ---- filters ------------------------------------------------------------------ */

typedef struct query {
    layer_request lr;        /* strings point into the dataset, the figure table or here */
    char from[11], to[11];
    char norm[2048];         /* the normalised query, without '?' */
    int overflow;            /* norm did not fit */
    unsigned seen;           /* the single-valued parameters met, as bits */
} query;

/* A value as an error message may quote it: at most 40 bytes (cut at a
 * UTF-8 boundary), control bytes as '?'. */
static const char *shown(const char *v, char buf[48])
{
    size_t n = strlen(v);
    if (n > 40) {
        n = 40;
        while (n && ((unsigned char)v[n] & 0xc0) == 0x80)
            n--;
    }
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)v[i] < 0x20 || v[i] == 0x7f ? '?' : v[i];
    strcpy(buf + n, strlen(v) > n ? "..." : "");
    return buf;
}

/* A real day written YYYY-MM-DD (years 1900 to 2199). */
static int valid_day(const char *s)
{
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return 0;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return 0;
    int64_t y = atoi(s), y2;
    int m = atoi(s + 5), d = atoi(s + 8), m2, d2;
    if (y < 1900 || y > 2199 || m < 1 || m > 12 || d < 1 || d > 31)
        return 0;
    pm_civil_from_days(pm_days_from_civil(y, m, d), &y2, &m2, &d2);
    return y2 == y && m2 == m && d2 == d;
}

/* Appends key=value (value percent-encoded) to the normalised query;
 * q->overflow when it does not fit (the request is then refused: a cut
 * key could name another request's cached answer). */
static void norm_add(query *q, const char *key, const char *value)
{
    size_t at = strlen(q->norm), cap = sizeof q->norm;
    int n = snprintf(q->norm + at, cap - at, "%s%s=", at ? "&" : "", key);
    if (n < 0 || (size_t)n >= cap - at) {
        q->overflow = 1;
        return;
    }
    at += (size_t)n;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (at + 4 > cap) {
            q->overflow = 1;
            break;
        }
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p))
            q->norm[at++] = (char)*p;
        else
            at += (size_t)snprintf(q->norm + at, cap - at, "%%%02X", *p);
    }
    q->norm[at] = '\0';
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts and drops repeats; returns the count left. */
static size_t sort_unique(void *v, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    qsort(v, n, size, cmp);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || cmp((char *)v + i * size, (char *)v + (k - 1) * size) != 0)
            memmove((char *)v + k++ * size, (char *)v + i * size, size);
    return k;
}

/* One parameter into q; 0 with a 400 in r when it is not acceptable.
 * topics/sources collect indexes, sorted later. */
static int take_param(const api_call *a, const param *p, query *q, long *topics, long *sources,
                      reply *r)
{
    const dataset *d = a->g->d;
    layer_request *lr = &q->lr;
    char b1[48], b2[48];
    long k;
    if (!p->value || !*p->value || p->value_len != strlen(p->value) || p->value_len > SERVE_VALUE_MAX) {
        reply_error(r, MHD_HTTP_BAD_REQUEST, "parameter \"%s\" needs a value (at most %d bytes)",
                    shown(p->key, b1), SERVE_VALUE_MAX);
        return 0;
    }
    const char *key = p->key, *v = p->value;
    static const char *const SINGLE[] = {"from", "to", "figure", "weight", "grid", "fdr"};
    for (unsigned i = 0; i < sizeof SINGLE / sizeof *SINGLE; i++) {
        if (strcmp(key, SINGLE[i]) != 0)
            continue;
        if (q->seen & 1u << i) {
            reply_error(r, MHD_HTTP_BAD_REQUEST, "parameter \"%s\" given twice", key);
            return 0;
        }
        q->seen |= 1u << i;
    }
    if (strcmp(key, "topic") == 0) {
        if ((k = pm_topics_find(d->run.t, v)) < 0) {
            reply_error(r, MHD_HTTP_BAD_REQUEST, "unknown topic \"%s\"", shown(v, b1));
            return 0;
        }
        topics[lr->n_topics++] = k;
    } else if (strcmp(key, "source") == 0) {
        if ((k = pm_cube_dict_find(d->cube, PM_DICT_SOURCE, v)) < 0) {
            reply_error(r, MHD_HTTP_BAD_REQUEST, "unknown source \"%s\"", shown(v, b1));
            return 0;
        }
        sources[lr->n_sources++] = k;
    } else if (strcmp(key, "from") == 0 || strcmp(key, "to") == 0) {
        char *day = key[0] == 'f' ? q->from : q->to;
        if (!valid_day(v)) {
            reply_error(r, MHD_HTTP_BAD_REQUEST, "%s: \"%s\" is not a day like 2025-03-01", key, shown(v, b1));
            return 0;
        }
        memcpy(day, v, 11);
    } else if (strcmp(key, "figure") == 0) {
        const pm_figure *f = pm_figure_find(v);
        if (!f) {
            reply_error(r, MHD_HTTP_BAD_REQUEST, "unknown figure \"%s\" (one of: %s)", shown(v, b1),
                        pm_figure_names());
            return 0;
        }
        lr->figure = pm_figure_name(f);
    } else if (strcmp(key, "weight") == 0) {
        int w = pm_weight_parse(v);
        if (w < 0) {
            reply_error(r, MHD_HTTP_BAD_REQUEST, "weight: \"%s\" is not one, open, overdue or wait_h", shown(v, b1));
            return 0;
        }
        lr->weight = (pm_weight)w;
    } else if (strcmp(key, "grid") == 0) {
        if (strcmp(v, "3857") != 0 && strcmp(v, "3395") != 0) {
            reply_error(r, MHD_HTTP_BAD_REQUEST, "grid: \"%s\" is not 3857 or 3395", shown(v, b1));
            return 0;
        }
        lr->grid = strcmp(v, "3395") == 0 ? PM_GRID_WORLDMERC : PM_GRID_WEBMERC;
    } else if (strcmp(key, "fdr") == 0) {
        if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0) {
            reply_error(r, MHD_HTTP_BAD_REQUEST, "fdr: \"%s\" is not 0 or 1", shown(v, b1));
            return 0;
        }
        lr->fdr = v[0] == '1';
    } else if (strcmp(key, "g") == 0) {
        /* the data generation the TileJSON named: it makes a tile's URL new
         * after a reload (browsers keep tiles for max-age); the answer does
         * not depend on it */
        if (strspn(v, "0123456789") != strlen(v) || strlen(v) > 19) {
            reply_error(r, MHD_HTTP_BAD_REQUEST, "g: \"%s\" is not a generation number", shown(v, b1));
            return 0;
        }
    } else {
        reply_error(r, MHD_HTTP_BAD_REQUEST, "unknown parameter \"%s\"", shown(key, b2));
        return 0;
    }
    return 1;
}

/* The request's parameters as a normalised layer request; with filters 0
 * only the token is allowed.  0 with a 400 in r when they are not good. */
static int query_parse(const api_call *a, int filters, query *q, reply *r)
{
    memset(q, 0, sizeof *q);
    layer_request_init(&q->lr);
    long topics[SERVE_PARAMS_MAX], sources[SERVE_PARAMS_MAX];
    const pm_topics *t = a->g->d->run.t;
    for (size_t i = 0; i < a->ps->n; i++) {
        const param *p = &a->ps->v[i];
        if (strcmp(p->key, "token") == 0)
            continue;
        if (!filters) {
            char b[48];
            reply_error(r, MHD_HTTP_BAD_REQUEST, "unknown parameter \"%s\" (this endpoint takes none)",
                        shown(p->key, b));
            return 0;
        }
        if (!take_param(a, p, q, topics, sources, r))
            return 0;
    }
    if (q->from[0] && q->to[0] && strcmp(q->from, q->to) > 0) {
        reply_error(r, MHD_HTTP_BAD_REQUEST, "to %s is before from %s", q->to, q->from);
        return 0;
    }
    layer_request *lr = &q->lr;
    lr->n_topics = sort_unique(topics, lr->n_topics, sizeof *topics, cmp_long);
    for (size_t i = 0; i < lr->n_topics; i++) {
        lr->topics[i] = pm_topic_code(t, (size_t)topics[i]);
        norm_add(q, "topic", lr->topics[i]);
    }
    for (size_t i = 0; i < lr->n_sources; i++)
        lr->sources[i] = pm_cube_dict_str(a->g->d->cube, PM_DICT_SOURCE, (uint32_t)sources[i]);
    lr->n_sources = sort_unique(lr->sources, lr->n_sources, sizeof *lr->sources, cmp_str);
    for (size_t i = 0; i < lr->n_sources; i++)
        norm_add(q, "source", lr->sources[i]);
    if (q->from[0])
        norm_add(q, "from", lr->from = q->from);
    if (q->to[0])
        norm_add(q, "to", lr->to = q->to);
    if (lr->figure && strcmp(lr->figure, "complaints") != 0)
        norm_add(q, "figure", lr->figure);
    if (lr->weight != PM_WEIGHT_ONE)
        norm_add(q, "weight", WEIGHT_NAMES[lr->weight]);
    if (lr->grid == PM_GRID_WORLDMERC)
        norm_add(q, "grid", "3395");
    if (lr->fdr)
        norm_add(q, "fdr", "1");
    if (q->overflow) {
        reply_error(r, MHD_HTTP_BAD_REQUEST, "the filters are too long together");
        return 0;
    }
    return 1;
}

/* ---- bodies ---------------------------------------------------------------------- */

/* The answer for a library error: the request's fault (400, the message
 * says what), no memory (503), or ours (500; the detail goes to the log). */
static void fail(const api_call *a, reply *r, int rc, const char *what)
{
    if (rc == PM_E_USAGE) {
        reply_error(r, MHD_HTTP_BAD_REQUEST, "%s", pm_ctx_errmsg(a->ctx));
    } else if (rc == PM_E_NOMEM) {
        serve_log("%s: out of memory", what);
        reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory, try again later");
    } else {
        serve_log("%s: %s (%s)", what, pm_ctx_errmsg(a->ctx), pm_status_name(rc));
        reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error");
    }
}

static void ok(reply *r, blob *b, const char *cache)
{
    r->status = MHD_HTTP_OK;
    r->body = b;
    r->cache = cache;
}

/* Answers from the response cache if key is there. */
static int cached(const api_call *a, const char *key, const char *cache, reply *r)
{
    blob *b = (blob *)lru_get(a->g->responses, key);
    if (b)
        ok(r, b, cache);
    return b != NULL;
}

/* Caches b (NULL: out of memory) and answers with it. */
static void store(const api_call *a, const char *key, blob *b, const char *cache, reply *r)
{
    if (!b) {
        reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory, try again later");
        return;
    }
    size_t cost = b->len + strlen(key) + ENTRY_OVERHEAD;
    ok(r, (blob *)lru_put(a->g->responses, key, &b->sh, cost), cache);
}

/* root (taken) as a JSON body; NULL when out of memory. */
static blob *json_blob(const api_call *a, json_t *root, const char *key)
{
    char *text = root ? json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(root);
    if (!text)
        return NULL;
    blob *b = blob_copy(text, strlen(text), "application/json", a->g->number, key);
    free(text);   /* jansson's allocator */
    return b;
}

/* root with "attribution" when --attribution was given (NULL when out of
 * memory; root is taken). */
static json_t *with_attribution(const api_call *a, json_t *root)
{
    const char *text = a->srv->o.attribution;
    if (root && text && json_object_set_new(root, "attribution", json_string(text))) {
        json_decref(root);
        return NULL;
    }
    return root;
}

static const char *tile_cache(const api_call *a)
{
    /* With a token, shared caches must not keep what needs it. */
    return a->srv->o.token ? "private, max-age=300" : "public, max-age=300";
}

/* ---- layers ------------------------------------------------------------------------ */

static void layer_ref_destroy(shared *sh)
{
    layer_ref *lr = (layer_ref *)sh;
    map_layer_free(lr->l);
    pm_free(lr);
}

/* The layer of q, from the cache or built now (a reference, or NULL with
 * the error in r). */
static layer_ref *layer_get(const api_call *a, const query *q, reply *r)
{
    char key[sizeof q->norm + 32];
    snprintf(key, sizeof key, "%s?%s", layer_kind_name(q->lr.kind), q->norm);
    layer_ref *lr = (layer_ref *)lru_get(a->g->layers, key);
    if (lr)
        return lr;
    map_layer *l;
    int rc = map_layer_new(a->ctx, a->g->d, &q->lr, &l);
    if (rc) {
        fail(a, r, rc, "building a map layer");
        return NULL;
    }
    if (!(lr = pm_calloc(1, sizeof *lr))) {
        map_layer_free(l);
        reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory, try again later");
        return NULL;
    }
    shared_init(&lr->sh, layer_ref_destroy);
    lr->l = l;
    /* a weighted layer carries its own copy of the points */
    size_t cost = q->lr.weight == PM_WEIGHT_ONE || q->lr.kind == LAYER_CHOROPLETH ||
                  q->lr.kind == LAYER_HOTSPOTS ? 1 : 4;
    return (layer_ref *)lru_put(a->g->layers, key, &lr->sh, cost);
}

void api_tile(const api_call *a, layer_kind k, int z, uint32_t x, uint32_t y, int size, reply *r)
{
    query q;
    if (!query_parse(a, 1, &q, r))
        return;
    q.lr.kind = k;
    char key[sizeof q.norm + 64];
    snprintf(key, sizeof key, "tile/%s/%d/%u/%u@%d?%s", layer_kind_name(k), z, x, y, size, q.norm);
    if (cached(a, key, tile_cache(a), r))
        return;
    layer_ref *lr = layer_get(a, &q, r);
    if (!lr)
        return;
    uint8_t *png = NULL;
    size_t len = 0;
    int empty = 1;
    int rc = map_layer_tile_png(a->ctx, lr->l, z, x, y, size, &png, &len, &empty);
    shared_unref(&lr->sh);
    if (rc) {
        pm_free(png);
        fail(a, r, rc, "rendering a tile");
        return;
    }
    blob *b;
    if (empty) {
        pm_free(png);
        b = blob_copy(EMPTY_PNG, sizeof EMPTY_PNG, "image/png", a->g->number, key);
    } else {
        b = blob_adopt(png, len, "image/png", a->g->number, key);
    }
    store(a, key, b, tile_cache(a), r);
}

/* A zoom at which the bounds fill a screen of a few tiles. */
static int fit_zoom(const double b[4])
{
    double span = fmax(b[2] - b[0], 2 * (b[3] - b[1]));
    if (!(span > 0))
        return SERVE_MAX_ZOOM;
    return (int)fmin(SERVE_MAX_ZOOM, fmax(0, floor(log2(360 / span)) + 1));
}

void api_tilejson(const api_call *a, layer_kind k, reply *r)
{
    query q;
    if (!query_parse(a, 1, &q, r))
        return;
    q.lr.kind = k;
    char key[sizeof q.norm + 32];
    snprintf(key, sizeof key, "tilejson/%s?%s", layer_kind_name(k), q.norm);
    if (cached(a, key, CACHE_REVALIDATE, r))
        return;
    layer_ref *lr = layer_get(a, &q, r);
    if (!lr)
        return;
    json_t *legend = map_layer_legend(lr->l);
    shared_unref(&lr->sh);
    char url[sizeof q.norm + 96], name[256];
    snprintf(url, sizeof url, "/tiles/%s/{z}/{x}/{y}.png?%s%sg=%llu", layer_kind_name(k), q.norm,
             q.norm[0] ? "&" : "", (unsigned long long)a->g->number);
    const serve_opts *o = &a->srv->o;
    snprintf(name, sizeof name, "%s: %s", o->title ? o->title : DEFAULT_TITLE, layer_kind_name(k));
    const double *bd = a->g->d->view_bounds;
    json_t *root = json_pack("{s:s, s:s, s:s, s:[s], s:i, s:i, s:[f,f,f,f], s:[f,f,i], s:o}",
                             "tilejson", "3.0.0", "name", name, "scheme", "xyz", "tiles", url,
                             "minzoom", 0, "maxzoom", SERVE_MAX_ZOOM, "bounds", bd[0], bd[1], bd[2],
                             bd[3], "center", a->g->d->centre_lon, a->g->d->centre_lat, fit_zoom(bd),
                             "problemap_legend", legend);
    store(a, key, json_blob(a, with_attribution(a, root), key), CACHE_REVALIDATE, r);
}

/* ---- tables and reports ------------------------------------------------------------- */

/* Writes one body for the filters to f. */
typedef int (*stream_fn)(const api_call *a, const layer_filters *lf, FILE *f);

static int districts_stream(const api_call *a, const layer_filters *lf, FILE *f)
{
    const dataset *d = a->g->d;
    pm_row *rows = NULL;
    size_t n = 0;
    int rc = pm_cube_query(a->ctx, d->cube, PM_LEVEL_DISTRICT, &lf->cube, &rows, &n);
    pm_export_opts eo = {.simplify_m = SIMPLIFY_M};
    if (!rc)
        rc = pm_cube_geojson_stream(a->ctx, f, "districts.geojson", d->run.ds, d->cube, PM_LEVEL_DISTRICT,
                                    rows, n, &eo);
    pm_free(rows);
    return rc;
}

static int summary_stream(const api_call *a, const layer_filters *lf, FILE *f)
{
    const dataset *d = a->g->d;
    return pm_cube_summary_stream(a->ctx, f, "summary.json", d->run.ds, d->cube, d->run.t, &lf->cube);
}

/* An endpoint whose body one of the cube's writers makes. */
static void stream_endpoint(const api_call *a, const char *name, const char *type, stream_fn fn, reply *r)
{
    query q;
    if (!query_parse(a, 1, &q, r))
        return;
    char key[sizeof q.norm + 32];
    snprintf(key, sizeof key, "%s?%s", name, q.norm);
    if (cached(a, key, CACHE_REVALIDATE, r))
        return;
    layer_filters lf;
    int rc = layer_filters_make(a->ctx, a->g->d, &q.lr, &lf);
    if (rc) {
        fail(a, r, rc, name);
        return;
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory, try again later");
        return;
    }
    rc = fn(a, &lf, f);
    if (fclose(f) != 0 && !rc)
        rc = PM_ERR(a->ctx, PM_E_NOMEM, "%s: out of memory", name);
    if (rc)
        fail(a, r, rc, name);
    else
        store(a, key, blob_copy(buf, len, type, a->g->number, key), CACHE_REVALIDATE, r);
    free(buf);   /* open_memstream's */
}

void api_districts(const api_call *a, reply *r)
{
    stream_endpoint(a, "districts.geojson", "application/geo+json", districts_stream, r);
}

void api_summary(const api_call *a, reply *r)
{
    stream_endpoint(a, "summary.json", "application/json", summary_stream, r);
}

void api_report(const api_call *a, int pdf, reply *r)
{
    query q;
    if (!query_parse(a, 1, &q, r))
        return;
    const char *name = pdf ? "report.pdf" : "report.png";
    char key[sizeof q.norm + 32];
    snprintf(key, sizeof key, "%s?%s", name, q.norm);
    if (cached(a, key, CACHE_REVALIDATE, r))
        return;
    layer_filters lf;
    int rc = layer_filters_make(a->ctx, a->g->d, &q.lr, &lf);
    if (rc) {
        fail(a, r, rc, name);
        return;
    }
    const dataset *d = a->g->d;
    const serve_opts *o = &a->srv->o;
    pm_report_opts ro = {.title = o->title, .figure = q.lr.figure, .attribution = o->attribution,
                         .heat_cs = d->run.cs, .heat_pl = d->run.pl, .heat_filter = &lf.heat,
                         .heat_utc_offset_s = d->utc_offset_s};
    uint8_t *buf = NULL;
    size_t len = 0;
    /* One at a time: a report is most of a second of CPU, and Pango is not
     * something to bet on from several threads.  The one who waited may
     * find it drawn already. */
    pthread_mutex_lock(&a->srv->report_lock);
    if (cached(a, key, CACHE_REVALIDATE, r)) {
        pthread_mutex_unlock(&a->srv->report_lock);
        return;
    }
    rc = pm_report_render(a->ctx, name, pdf ? PM_REPORT_PDF : PM_REPORT_PNG, d->run.ds, d->cube, d->run.t,
                          &lf.cube, &ro, &buf, &len);
    if (rc) {
        pthread_mutex_unlock(&a->srv->report_lock);
        pm_free(buf);
        fail(a, r, rc, name);
        return;
    }
    store(a, key, blob_adopt(buf, len, pdf ? "application/pdf" : "image/png", a->g->number, key),
          CACHE_REVALIDATE, r);
    pthread_mutex_unlock(&a->srv->report_lock);
}

/* ---- health and metadata ------------------------------------------------------------ */

static void iso_time(time_t t, char buf[32])
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
        strcpy(buf, "");
}

void api_health(const api_call *a, reply *r)
{
    query q;
    if (!query_parse(a, 0, &q, r))
        return;
    char when[32];
    iso_time(a->g->loaded_at, when);
    json_t *root = json_pack("{s:s, s:I, s:I, s:I, s:s}", "status", "ok", "generation",
                             (json_int_t)a->g->number, "complaints", (json_int_t)pm_cube_total(a->g->d->cube),
                             "districts", (json_int_t)pm_districts_count(a->g->d->run.ds), "loaded_at", when);
    blob *b = json_blob(a, root, "health");
    if (!b)
        reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory, try again later");
    else
        ok(r, b, "no-store");
}

static json_t *day_json(int64_t day)
{
    int64_t y;
    int m, d;
    char buf[32];
    pm_civil_from_days(day, &y, &m, &d);
    snprintf(buf, sizeof buf, "%04lld-%02d-%02d", (long long)y, m, d);
    return json_string(buf);
}

/* [{"code", "name_ru", "color", "count"}] over the whole catalogue. */
static json_t *topics_json(const api_call *a, int *rc)
{
    const dataset *d = a->g->d;
    pm_row *rows = NULL;
    size_t n = 0;
    if ((*rc = pm_cube_query(a->ctx, d->cube, PM_LEVEL_TOPIC, NULL, &rows, &n)))
        return NULL;
    json_t *list = json_array();
    for (size_t i = 0; list && i < pm_topics_count(d->run.t); i++) {
        uint64_t count = 0;
        for (size_t k = 0; k < n; k++)
            if (rows[k].key == i)
                count = rows[k].count;
        if (json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:I}", "code", pm_topic_code(d->run.t, i),
                                                  "name_ru", pm_topic_name_ru(d->run.t, i), "color",
                                                  pm_topic_color(d->run.t, i), "count", (json_int_t)count))) {
            json_decref(list);
            list = NULL;
        }
    }
    pm_free(rows);
    *rc = list ? PM_OK : PM_E_NOMEM;
    return list;
}

/* [{"name", "count"}]: the sources in the cube, each counted. */
static json_t *sources_json(const api_call *a, int *rc)
{
    const pm_cube *cube = a->g->d->cube;
    json_t *list = json_array();
    *rc = list ? PM_OK : PM_E_NOMEM;
    for (size_t i = 0; !*rc && i < pm_cube_dict_count(cube, PM_DICT_SOURCE); i++) {
        const char *name = pm_cube_dict_str(cube, PM_DICT_SOURCE, (uint32_t)i);
        uint32_t idx = (uint32_t)i;
        pm_filter f = {.sources = &idx, .n_sources = 1};
        pm_row *rows = NULL;
        size_t n = 0;
        if (!name || !*name || (*rc = pm_cube_query(a->ctx, cube, PM_LEVEL_TOTAL, &f, &rows, &n)))
            continue;
        json_int_t count = n ? (json_int_t)rows[0].count : 0;
        pm_free(rows);
        if (json_array_append_new(list, json_pack("{s:s, s:I}", "name", name, "count", count)))
            *rc = PM_E_NOMEM;
    }
    if (*rc) {
        json_decref(list);
        list = NULL;
    }
    return list;
}

static json_t *figures_json(void)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < pm_figure_count(); i++) {
        const pm_figure *f = pm_figure_at(i);
        if (json_array_append_new(list, json_pack("{s:s, s:s}", "name", pm_figure_name(f), "title_ru",
                                                  pm_figure_title_ru(f)))) {
            json_decref(list);
            list = NULL;
        }
    }
    return list;
}

void api_meta(const api_call *a, reply *r)
{
    query q;
    if (!query_parse(a, 0, &q, r))
        return;
    if (cached(a, "meta", CACHE_REVALIDATE, r))
        return;
    const dataset *d = a->g->d;
    int rc_t = PM_OK, rc_s = PM_OK;
    json_t *topics = topics_json(a, &rc_t), *sources = sources_json(a, &rc_s);
    if (rc_t || rc_s) {
        json_decref(topics);
        json_decref(sources);
        fail(a, r, rc_t ? rc_t : rc_s, "meta.json");
        return;
    }
    int have_days = pm_cube_total(d->cube) > 0;
    json_t *days = json_pack("{s:o, s:o}", "first", have_days ? day_json(d->day_first) : json_null(), "last",
                             have_days ? day_json(d->day_last) : json_null());
    const char *title = a->srv->o.title ? a->srv->o.title : DEFAULT_TITLE;
    json_t *root = json_pack("{s:s, s:[f,f,f,f], s:[f,f], s:o, s:o, s:o, s:o, s:[s,s,s,s], s:I}", "title",
                             title, "bounds", d->view_bounds[0], d->view_bounds[1], d->view_bounds[2], d->view_bounds[3], "center",
                             d->centre_lon, d->centre_lat, "topics", topics, "sources", sources, "days", days,
                             "figures", figures_json(), "layers", "heat", "choropleth", "grid", "hotspots", "generation",
                             (json_int_t)a->g->number);
    store(a, "meta", json_blob(a, with_attribution(a, root), "meta"), CACHE_REVALIDATE, r);
}
