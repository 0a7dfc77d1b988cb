/* pm_weights.h — spatial weights: who is whose neighbour, for the local
 * statistics of pm_hotspot.h.
 *
 * A pm_weights holds, for n units, one row per unit: its neighbours (unit
 * indexes, ascending, never the unit itself) and a weight per neighbour,
 * stored as CSR (row i is entries offset[i] .. offset[i+1]-1).  A unit
 * with an empty row is an island.  Weights are binary (1) as built;
 * pm_weights_row_standardise() divides every row by its sum.
 *
 * Three ways to build them:
 * - queen contiguity between districts (GEOS): i and j are neighbours when
 *   their geometries share at least one point (a common border or a single
 *   common vertex; overlapping districts count too).  With snap_m > 0, two
 *   districts whose boundaries come within snap_m metres are neighbours as
 *   well — for real data whose shared borders have slivers and tiny gaps.
 *   docs/analytics.md says how this compares with pysal's Queen.
 * - distance band over points on a plane (metres): neighbours when the
 *   distance is at most d_m (binary).
 * - k nearest neighbours over points on a plane: the k nearest other
 *   points, ties broken by the lower index (so the result is deterministic
 *   and a row has exactly k entries when n > k).
 * Points on a plane are what pm_lonlat_to_laea() makes of lon/lat: an
 * equal-area (Lambert azimuthal) plane, where distances near the centre are
 * true to well under a percent over a region.
 *
 * A built pm_weights is read-only: several threads may use one at once.
 */
#ifndef PM_WEIGHTS_H
#define PM_WEIGHTS_H

#include "pm_ctx.h"
#include "pm_district.h"
#include <stddef.h>

typedef struct pm_weights pm_weights;

/* Queen contiguity of the districts of ds (frozen).  snap_m: 0 = exact
 * (shared points only), > 0 = also boundaries within snap_m metres (at
 * most 10 000).  Islands are reported with a warning naming them (at most
 * a few, then a count).  Caller frees with pm_weights_free().  PM_E_USAGE
 * for a bad snap_m, PM_E_GEOM when GEOS fails, PM_E_NOMEM. */
int pm_weights_queen(pm_ctx *ctx, const pm_districts *ds, double snap_m, pm_weights **out);

/* Binary distance-band weights over n points (x_m[i], y_m[i]) in metres:
 * i ≠ j are neighbours when their distance is at most d_m.
 * PM_E_USAGE for d_m not > 0 or a non-finite coordinate. */
int pm_weights_distance_band(pm_ctx *ctx, const double *x_m, const double *y_m, size_t n,
                             double d_m, pm_weights **out);

/* Binary k-nearest-neighbour weights (k >= 1; when k >= n every other
 * point).  Not symmetric in general.  PM_E_USAGE for k 0 or a non-finite
 * coordinate. */
int pm_weights_knn(pm_ctx *ctx, const double *x_m, const double *y_m, size_t n, size_t k,
                   pm_weights **out);

/* Weights given as CSR arrays (copied): offset has n + 1 entries starting
 * at 0, neighbour and weight offset[n] entries.  PM_E_USAGE when a row is
 * not ascending, names its own unit or an index >= n, or a weight is not
 * finite and > 0. */
int pm_weights_from_csr(pm_ctx *ctx, size_t n, const size_t *offset, const size_t *neighbour,
                        const double *weight, pm_weights **out);

void pm_weights_free(pm_weights *w);

/* Divides each row by its sum (islands stay empty).  Idempotent. */
void pm_weights_row_standardise(pm_weights *w);
int pm_weights_is_row_standardised(const pm_weights *w);

size_t pm_weights_count(const pm_weights *w);      /* units */
size_t pm_weights_links(const pm_weights *w);      /* entries over all rows */
size_t pm_weights_islands(const pm_weights *w);    /* units with an empty row */
/* Row i: returns its length and points *neighbour and *weight (either may
 * be NULL) at its entries (borrowed, valid as long as w). */
size_t pm_weights_row(const pm_weights *w, size_t i, const size_t **neighbour,
                      const double **weight);

/* lon/lat degrees → metres on the Lambert azimuthal equal-area plane
 * (WGS84) centred at centre_lon, centre_lat (PROJ).  x_m/y_m may be the
 * lon/lat arrays themselves.  PM_E_CRS when PROJ fails, PM_E_USAGE for a
 * non-finite coordinate. */
int pm_lonlat_to_laea(pm_ctx *ctx, const double *lon_deg, const double *lat_deg, size_t n,
                      double centre_lon, double centre_lat, double *x_m, double *y_m);

#endif
