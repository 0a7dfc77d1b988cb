/* complaint.c — the columnar complaint batch (see pm_complaint.h). */
#include "pm_complaint.h"
#include "pm_alloc.h"
#include "strtab.h"

#include <inttypes.h>
#include <string.h>

struct pm_complaints {
    size_t n, cap;
    double *lon, *lat;
    int64_t *created, *answered;
    uint16_t *topic;
    uint64_t *line;
    uint32_t *dict[PM_DICT_N];
    pm_strtab *ids;              /* id i is string i: ids are unique */
    pm_strtab *dicts[PM_DICT_N];
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
        ok = ok && cs->dicts[k];
    }
    if (!ok) {
        pm_complaints_free(cs);
        return NULL;
    }
    return cs;
}

/* Every column, once: what is done to each of them (freeing, growing,
 * faulting in) goes through this list, so no column can be left out. */
#define COLUMNS(X)                                                             \
    X(lon) X(lat) X(created) X(answered) X(topic) X(line)                      \
    X(dict[PM_DICT_SOURCE]) X(dict[PM_DICT_STATUS])                            \
    X(dict[PM_DICT_EXECUTOR]) X(dict[PM_DICT_DISTRICT_CODE])
_Static_assert(PM_DICT_N == 4, "COLUMNS lists every dictionary column");

void pm_complaints_free(pm_complaints *cs)
{
    if (!cs)
        return;
#define FREE(col) pm_free(cs->col);
    COLUMNS(FREE)
#undef FREE
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
#undef GROW
    cs->cap = cap;
    return 0;
}

static int reserve(pm_complaints *cs)
{
    if (cs->n < cs->cap)
        return 0;
    return grow_columns(cs, cs->cap ? cs->cap * 2 : 1024);
}

int pm_complaints_reserve(pm_ctx *ctx, pm_complaints *cs, size_t n)
{
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
    if (reserve(cs) != 0)
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
    if (pm_strtab_insert(cs->ids, c->id, &id_pos) < 0)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory adding complaint %s", c->id);
    size_t i = cs->n++;
    cs->lon[i] = c->lon;
    cs->lat[i] = c->lat;
    cs->created[i] = c->created_at;
    cs->answered[i] = c->answered_at;
    cs->topic[i] = c->topic;
    cs->line[i] = c->line;
    for (int k = 0; k < PM_DICT_N; k++) {
        cs->dict[k][i] = got[k];
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
    if (from >= to)
        return;
    size_t n = to - from;
#define PREFAULT(col) pm_alloc_prefault(cs->col + from, n * sizeof *cs->col);
    COLUMNS(PREFAULT)
#undef PREFAULT
}

size_t pm_complaints_count(const pm_complaints *cs) { return cs->n; }
size_t pm_complaints_capacity(const pm_complaints *cs) { return cs->cap; }
const double *pm_complaints_lon(const pm_complaints *cs) { return cs->lon; }
const double *pm_complaints_lat(const pm_complaints *cs) { return cs->lat; }
const int64_t *pm_complaints_created(const pm_complaints *cs) { return cs->created; }
const int64_t *pm_complaints_answered(const pm_complaints *cs) { return cs->answered; }
const uint16_t *pm_complaints_topic(const pm_complaints *cs) { return cs->topic; }
const uint32_t *pm_complaints_dict(const pm_complaints *cs, pm_dict_col col) { return cs->dict[col]; }
const uint64_t *pm_complaints_line(const pm_complaints *cs) { return cs->line; }
const char *pm_complaints_id(const pm_complaints *cs, size_t i) { return pm_strtab_str(cs->ids, i); }

const char *pm_complaints_dict_str(const pm_complaints *cs, pm_dict_col col, uint32_t idx)
{
    return idx == PM_NONE ? "" : pm_strtab_str(cs->dicts[col], idx);
}

size_t pm_complaints_dict_count(const pm_complaints *cs, pm_dict_col col)
{
    return pm_strtab_count(cs->dicts[col]);
}
