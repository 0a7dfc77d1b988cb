/* heat_bins.c — one level of a heat layer's count pyramid (heat_impl.h):
 * the layer's points grouped by their Morton cell at a depth, each group
 * kept as one weighted point at the weighted centroid of its members.
 *
 * The points are already in Morton order, so the members of a cell are a
 * contiguous run and a level is one pass: count the groups, then sum.
 * Replacing a group by its centroid moves no first moment, so the density
 * it adds differs from its members' only by a second-order term in the
 * spread of the group (heat.c says how the depth is chosen from that). */
#include "heat_impl.h"
#include "../engine/pm_alloc.h"

#include <string.h>

void pm_heat_bins_free(pm_heat_bins *b)
{
    if (!b)
        return;
    pm_free(b->code);
    pm_free(b->x_m);
    pm_free(b->y_m);
    pm_free(b->w);
    pm_free(b->k);
    pm_free(b);
}

static int on(const uint8_t *pass, size_t i) { return !pass || pass[i]; }

int pm_heat_bins_new(pm_ctx *ctx, const pm_points *p, const uint8_t *pass, int depth,
                     pm_heat_bins **out)
{
    *out = NULL;
    if (depth < 0 || depth > PM_HEAT_MORTON_ZOOM)
        return PM_ERR(ctx, PM_E_USAGE, "heat pyramid: depth %d outside 0 .. %d", depth,
                      PM_HEAT_MORTON_ZOOM);
    int shift = 2 * (PM_HEAT_MORTON_ZOOM - depth);
    size_t n = 0;
    uint64_t last = 0;
    for (size_t i = 0; i < p->n; i++)
        if (on(pass, i)) {
            uint64_t c = p->code[i] >> shift;
            n += !n || c != last;
            last = c;
        }
    pm_heat_bins *b = pm_calloc(1, sizeof *b);
    size_t m = n ? n : 1;
    if (!b || !(b->code = pm_calloc(m, sizeof *b->code)) || !(b->x_m = pm_calloc(m, sizeof *b->x_m)) ||
        !(b->y_m = pm_calloc(m, sizeof *b->y_m)) || !(b->w = pm_calloc(m, sizeof *b->w)) ||
        !(b->k = pm_calloc(m, sizeof *b->k))) {
        pm_heat_bins_free(b);
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory for %zu heat pyramid cells at depth %d", n,
                      depth);
    }
    b->depth = depth;
    size_t g = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (!on(pass, i))
            continue;
        uint64_t c = p->code[i] >> shift;
        if (g == 0 || b->code[g - 1] != c << shift)
            b->code[g++] = c << shift;
        double w = pm_points_weight(p, i);
        b->x_m[g - 1] += w * p->x_m[i];
        b->y_m[g - 1] += w * p->y_m[i];
        b->w[g - 1] += w;
    }
    for (size_t k = 0; k < n; k++) {
        b->x_m[k] /= b->w[k];
        b->y_m[k] /= b->w[k];
        b->k[k] = pm_grid_scale_at_y(p->grid, b->y_m[k]);
    }
    b->n = n;
    *out = b;
    return PM_OK;
}
