/* district.c — the district set (see pm_district.h). */
#include "pm_district.h"
#include "pm_alloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct district {
    char *id, *name, *parent_id;
    double population;
    GEOSGeometry *geom;
    size_t region;
} district;

typedef struct region {
    char *id, *name;
} region;

struct pm_districts {
    district *d;
    size_t n, cap;
    region *r;
    size_t nr, rcap;
    int frozen;
};

pm_districts *pm_districts_new(pm_ctx *ctx)
{
    (void)ctx;
    return pm_calloc(1, sizeof(pm_districts));
}

void pm_districts_free(pm_ctx *ctx, pm_districts *ds)
{
    if (!ds)
        return;
    for (size_t i = 0; i < ds->n; i++) {
        pm_free(ds->d[i].id);
        pm_free(ds->d[i].name);
        pm_free(ds->d[i].parent_id);
        if (ds->d[i].geom)
            GEOSGeom_destroy_r(pm_ctx_geos(ctx), ds->d[i].geom);
    }
    for (size_t r = 0; r < ds->nr; r++) {
        pm_free(ds->r[r].id);
        pm_free(ds->r[r].name);
    }
    pm_free(ds->d);
    pm_free(ds->r);
    pm_free(ds);
}

static char *dup_or_empty(const char *s) { return pm_strdup(s ? s : ""); }

int pm_districts_add(pm_ctx *ctx, pm_districts *ds, const char *id, const char *name,
                     const char *parent_id, double population, GEOSGeometry *geom)
{
    if (ds->frozen || !id || !geom) {
        if (geom)
            GEOSGeom_destroy_r(pm_ctx_geos(ctx), geom);
        return PM_ERR(ctx, PM_E_USAGE, "district %s: set frozen, or no id or geometry",
                      id ? id : "(null)");
    }
    if (ds->n == ds->cap) {
        size_t cap = ds->cap ? ds->cap * 2 : 64;
        district *d = pm_reallocarray(ds->d, cap, sizeof *d);
        if (!d) {
            GEOSGeom_destroy_r(pm_ctx_geos(ctx), geom);
            return PM_ERR(ctx, PM_E_NOMEM, "out of memory adding district %s", id);
        }
        ds->d = d;
        ds->cap = cap;
    }
    district *x = &ds->d[ds->n];
    x->id = pm_strdup(id);
    x->name = dup_or_empty(name);
    x->parent_id = dup_or_empty(parent_id);
    x->population = population;
    x->geom = geom;
    x->region = 0;
    if (!x->id || !x->name || !x->parent_id) {
        pm_free(x->id);
        pm_free(x->name);
        pm_free(x->parent_id);
        GEOSGeom_destroy_r(pm_ctx_geos(ctx), geom);
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory adding district %s", id);
    }
    ds->n++;
    return PM_OK;
}

int pm_districts_set_parent(pm_ctx *ctx, pm_districts *ds, size_t i, const char *parent_id)
{
    if (ds->frozen || i >= ds->n)
        return PM_ERR(ctx, PM_E_USAGE, "cannot set the parent of district %zu", i);
    char *p = dup_or_empty(parent_id);
    if (!p)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory");
    pm_free(ds->d[i].parent_id);
    ds->d[i].parent_id = p;
    return PM_OK;
}

/* Binary search by id in an array of structs whose first member is the
 * char *id, sorted by strcmp. */
static long find_by_id(const void *base, size_t n, size_t size, const char *id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(*(char *const *)((const char *)base + mid * size), id);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static long region_find(const pm_districts *ds, const char *id)
{
    return find_by_id(ds->r, ds->nr, sizeof *ds->r, id);
}

/* Regions may be named before or after freeze: names given before are kept
 * in a pending list (regions without districts yet) and merged at freeze. */
int pm_districts_name_region(pm_ctx *ctx, pm_districts *ds, const char *region_id,
                             const char *name)
{
    if (ds->frozen) {
        long r = region_find(ds, region_id);
        if (r < 0)
            return PM_OK; /* a region without districts is not kept */
        char *nm = dup_or_empty(name);
        if (!nm)
            return PM_ERR(ctx, PM_E_NOMEM, "out of memory");
        pm_free(ds->r[r].name);
        ds->r[r].name = nm;
        return PM_OK;
    }
    if (ds->nr == ds->rcap) {
        size_t cap = ds->rcap ? ds->rcap * 2 : 16;
        region *r = pm_reallocarray(ds->r, cap, sizeof *r);
        if (!r)
            return PM_ERR(ctx, PM_E_NOMEM, "out of memory");
        ds->r = r;
        ds->rcap = cap;
    }
    ds->r[ds->nr].id = dup_or_empty(region_id);
    ds->r[ds->nr].name = dup_or_empty(name);
    if (!ds->r[ds->nr].id || !ds->r[ds->nr].name) {
        pm_free(ds->r[ds->nr].id);
        pm_free(ds->r[ds->nr].name);
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory");
    }
    ds->nr++;
    return PM_OK;
}

static int cmp_district(const void *a, const void *b)
{
    return strcmp(((const district *)a)->id, ((const district *)b)->id);
}

static int cmp_region(const void *a, const void *b)
{
    return strcmp(((const region *)a)->id, ((const region *)b)->id);
}

int pm_districts_freeze(pm_ctx *ctx, pm_districts *ds)
{
    if (ds->frozen)
        return PM_OK;
    if (ds->n == 0)
        return PM_ERR(ctx, PM_E_INPUT_EMPTY, "no districts");
    qsort(ds->d, ds->n, sizeof *ds->d, cmp_district);
    for (size_t i = 1; i < ds->n; i++)
        if (strcmp(ds->d[i - 1].id, ds->d[i].id) == 0)
            return PM_ERR(ctx, PM_E_INPUT_VALUE, "duplicate district id \"%s\"", ds->d[i].id);

    /* Named regions so far (pending), then one per distinct parent id. */
    size_t named = ds->nr;
    region *all = pm_calloc(named + ds->n, sizeof *all);
    if (!all)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory");
    size_t na = 0;
    for (size_t i = 0; i < ds->n; i++) {
        all[na].id = ds->d[i].parent_id;
        all[na].name = NULL;
        na++;
    }
    qsort(all, na, sizeof *all, cmp_region);
    size_t nu = 0;
    for (size_t i = 0; i < na; i++)
        if (nu == 0 || strcmp(all[nu - 1].id, all[i].id) != 0)
            all[nu++] = all[i];
    region *r = pm_calloc(nu, sizeof *r);
    if (!r) {
        pm_free(all);
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory");
    }
    for (size_t k = 0; k < nu; k++) {
        const char *nm = all[k].id;
        for (size_t j = 0; j < named; j++)
            if (strcmp(ds->r[j].id, all[k].id) == 0) {
                nm = ds->r[j].name[0] ? ds->r[j].name : all[k].id;
                break;
            }
        r[k].id = pm_strdup(all[k].id);
        r[k].name = pm_strdup(nm);
        if (!r[k].id || !r[k].name) {
            for (size_t j = 0; j <= k; j++) {
                pm_free(r[j].id);
                pm_free(r[j].name);
            }
            pm_free(r);
            pm_free(all);
            return PM_ERR(ctx, PM_E_NOMEM, "out of memory");
        }
    }
    pm_free(all);
    for (size_t j = 0; j < named; j++) {
        pm_free(ds->r[j].id);
        pm_free(ds->r[j].name);
    }
    pm_free(ds->r);
    ds->r = r;
    ds->nr = ds->rcap = nu;
    ds->frozen = 1;
    for (size_t i = 0; i < ds->n; i++)
        ds->d[i].region = (size_t)region_find(ds, ds->d[i].parent_id);
    return PM_OK;
}

size_t pm_districts_count(const pm_districts *ds) { return ds->n; }
const char *pm_district_id(const pm_districts *ds, size_t i) { return ds->d[i].id; }
const char *pm_district_name(const pm_districts *ds, size_t i) { return ds->d[i].name; }
double pm_district_population(const pm_districts *ds, size_t i) { return ds->d[i].population; }
size_t pm_district_region(const pm_districts *ds, size_t i) { return ds->d[i].region; }
const char *pm_district_parent_id(const pm_districts *ds, size_t i) { return ds->d[i].parent_id; }
const GEOSGeometry *pm_district_geom_borrow(const pm_districts *ds, size_t i) { return ds->d[i].geom; }

long pm_districts_find(const pm_districts *ds, const char *id)
{
    return find_by_id(ds->d, ds->n, sizeof *ds->d, id);
}

size_t pm_regions_count(const pm_districts *ds) { return ds->frozen ? ds->nr : 0; }
const char *pm_region_id(const pm_districts *ds, size_t r) { return ds->r[r].id; }
const char *pm_region_name(const pm_districts *ds, size_t r) { return ds->r[r].name; }
