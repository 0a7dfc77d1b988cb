/* pm_recur.h — the recurrence register: complaints about the same problem
 * in the same place, again and again.  docs/analytics.md has the
 * long form.
 *
 * Two complaints are linked when they have the same topic, lie within
 * radius_m metres of each other (geodesic distance on the WGS84
 * ellipsoid, inclusive) and were created within weeks weeks of each other
 * (|Δt| <= weeks · 7 · 86 400 s).  A cluster is a connected component of
 * that relation (single linkage in space and time): A–B and B–C put A, B
 * and C in one cluster even when A and C are farther apart.  The register
 * lists the clusters of at least min_count complaints.
 *
 * Which complaints: those with coordinates; when a placement is given,
 * only those placed in a district (district >= 0 and not rejected).
 *
 * Privacy.  The register keeps, per cluster, the indexes of its member
 * complaints in the batch, for the caller to use or not; nothing else
 * about a complaint.  Complaint text and author never reach the engine
 * (pm_complaint.h); ids are only reachable through those indexes, so what
 * leaves the program — ids or not — is the caller's decision.
 *
 * Order.  Clusters are sorted by their first member's creation time, then
 * its input position; members likewise (creation time, input position).
 * Nothing else (threads, hashing) can change the result.
 *
 * Cost.  Points go into 3-D cells of radius_m metres over their
 * Earth-centred (ECEF) coordinates: the straight chord between two points
 * is never longer than the geodesic, so linked points are always in
 * neighbouring cells, anywhere on Earth (poles, the antimeridian).  The
 * cells are sorted and swept with one cursor per neighbour offset (27);
 * candidates within the time window are tested by chord, then exactly
 * with PROJ's geod_inverse.  O(n log n) plus the candidate pairs, with
 * stretches already in one cluster skipped: about 1.5 s and under 80 bytes
 * per complaint for a million (docs/analytics.md).
 */
#ifndef PM_RECUR_H
#define PM_RECUR_H

#include "pm_complaint.h"
#include "pm_ctx.h"
#include "pm_locate.h"
#include <stddef.h>
#include <stdint.h>

typedef struct pm_recur_opts {
    double radius_m;     /* 0: 50; else in [1, 100 000] */
    int weeks;           /* 0: 8; else 1 … 520 */
    size_t min_count;    /* 0: 2; a cluster of fewer is not listed */
} pm_recur_opts;

typedef struct pm_recur_cluster {
    uint32_t id;                 /* 1, 2, … in register order */
    uint16_t topic;
    int32_t district;            /* the district most members are in (ties: the lowest
                                  * index); -1 without a placement */
    int64_t first_at, last_at;   /* creation times (UTC) of the first and last member */
    size_t count;
    double lon, lat;             /* centroid, degrees: the mean of the members' lat and
                                  * of their lon unwrapped around the first member's */
    size_t members;              /* offset of its count members in pm_recur.member */
} pm_recur_cluster;

typedef struct pm_recur {
    pm_recur_cluster *clusters;  /* n_clusters, in register order */
    size_t n_clusters;
    size_t *member;              /* complaint indexes into the batch, cluster by cluster */
    size_t n_members;
    size_t n_points;             /* complaints considered */
    uint64_t n_geodesic;         /* pairs tested with geod_inverse (for benchmarks) */
} pm_recur;

void pm_recur_opts_default(pm_recur_opts *o);

/* The register of the complaints of cs (borrowed).  pl (may be NULL) is
 * their placement, of pm_complaints_count(cs) entries.  opts may be NULL
 * (defaults).  Caller frees with pm_recur_free().  PM_E_USAGE for options
 * out of range or pl not fitting cs; PM_E_NOMEM.  *out is NULL on error. */
int pm_recur_new(pm_ctx *ctx, const pm_complaints *cs, const pm_placed *pl,
                 const pm_recur_opts *opts, pm_recur **out);
void pm_recur_free(pm_recur *r);

#endif
