/* locate.c — point → district: the exact locator, its brute-force oracle
 * and the threaded batch (see pm_locate.h and docs/geocoding.md).
 *
 * Indexed path.  A GEOS STRtree over the district envelopes (items: the
 * district index) gives the candidates of a point; they are sorted by
 * index, and the first whose prepared geometry intersects the point wins
 * (districts are sorted by id, so this is the border rule).  The winner's
 * prepared Contains says INSIDE or BORDER.
 *
 * Raster.  Before all that, the point's cell in the raster (raster.c,
 * raster_impl.h) may answer: a cell inside one district gives INSIDE
 * without GEOS, a cell in no district skips to snapping, a border cell
 * gives its list of districts in place of the STRtree's candidates (a
 * superset of those whose closure holds the point, ascending, so the
 * first match is the same).  pm_locator_set_raster(loc, 0) turns it off.
 * It is built in pm_locator_new() on this thread with the locator's own
 * prepared geometries; the polygon predicates build GEOS's segment index
 * inside them then, and queries only ever use the point predicates.
 *
 * Oracle.  pm_locator_set_brute_force() makes every query test every
 * district in index order with the unprepared GEOSIntersects_r /
 * GEOSContains_r: no tree, no prepared geometry, and snapping scans every
 * segment (below).  The loop over the districts and the snapping
 * distance are shared: the distance must be the same number either way.
 *
 * Threads.  GEOS builds its indexes lazily on first use: the STRtree on
 * its first query, a prepared polygon's IndexedPointInAreaLocator (and the
 * interval tree inside it) on its first point test, and in GEOS 3.11 a
 * geometry caches the envelope of each component and ring when first
 * asked.  pm_locator_new() forces all of it: one tree query, one prepared
 * Intersects and Contains per district with a point inside its envelope,
 * and the extent of every ring.  Afterwards nothing in the locator or in
 * the districts is written, so any number of threads may query it, each
 * through its own pm_ctx (GEOS handle).  pm_locator_set_brute_force() and
 * pm_locator_set_raster() are the mutators; call them before sharing the
 * locator.  (GEOS 3.11 itself
 * still bumps a plain int, the reference count of its shared default
 * GeometryFactory, whenever any thread creates or destroys a geometry:
 * GEOS issue #847.  That factory is never freed, so the race is harmless,
 * but helgrind and TSan report it under GeometryFactory::addRef/dropRef;
 * in the oracle's RelateOp they also report the lazily built static
 * NodeFactory, a C++ function-local static, which is safe.)
 *
 * Snapping.  For a point in no district the nearest point of each
 * district's boundary is searched in a local frame around the point:
 * lon/lat scaled to metres by the WGS84 radii of curvature at the point's
 * latitude (a linear map, so the districts' edges, straight in lon/lat,
 * stay straight).  Its distance is then measured exactly with PROJ's
 * geod_inverse.  The found point is on the boundary, so the distance is
 * never less than the true geodesic distance; it exceeds it only by the
 * variation of the frame's scale over the distance d, eps = d/R*tan|lat|
 * (3e-4 at 1 km and 60°N): the excess is of order eps²·d (< 1 mm at
 * 1 km up to 80°; first-order bound 2·eps·d, 0.5 m at 60°N).  Searching
 * in plain degrees instead would overestimate by up to 17 % at 60°N (a
 * coast running at 45°), which is why GEOS's nearest-point functions are
 * not used.  Segments are taken in a canonical direction so that a border
 * shared by two districts gives both the same point.  A district's point
 * is the first segment's, in the order of walk_curves(), among those
 * nearest in the frame (a segment replaces the best only when strictly
 * nearer; an envelope is skipped only when it cannot be, see
 * box_beyond()).  The nearest district wins, ties to the lowest index.
 * The frame degenerates within ~1 km of the poles.
 *
 * The oracle scans every segment of every district, read from GEOS.  The
 * index (built when snapping is on) holds a flat copy of every ring's
 * points (16 bytes a point), cut into chunks of CHUNK_SEGS consecutive
 * segments, in a second STRtree over the chunk envelopes.  A query takes
 * the chunks that meet the snapping box (snap_box_at(): a box holding
 * every point within the tolerance, 5 % wider, in as many parts as the
 * longitudes need across ±180°) and scans only them, with the same
 * nearest_segment(), in the same frame and the same order (chunks sorted
 * by index are in district, ring and segment order).  Why this is the
 * oracle's answer, to the bit, for district i (oracle distance D from
 * point P, indexed distance D' from point P'):
 * - Whenever the oracle's segment S (the one P is on) is scanned, P' = P:
 *   the scanned segments are a subsequence of the oracle's holding S, so
 *   the first nearest among them is S again.
 * - D <= tolerance: P is within the tolerance, so inside the box, and
 *   S's chunk meets the box and is scanned: D' = D.
 * - D' <= tolerance and P' nearer in the frame than reach (the frame
 *   distance that every point outside the box exceeds: it is dlat away
 *   from the query point, or dlon modulo 360°): every segment outside
 *   the box is farther than P', so S, at most as far, was scanned:
 *   D' = D.  Otherwise (a frame far from geodesic: a huge tolerance near
 *   a pole) district i's full scan gives D' = D.
 * - Left: D' > tolerance, and then D > tolerance too (second point).
 *   A district beyond the tolerance in one answer is so in both, and
 *   one within it has the same distance in both: both pick the same
 *   district (the nearest, ties to the lowest index) or none.
 * The chunk tree is built eagerly too (one query), and read-only after.
 */
#include "pm_locate.h"
#include "pm_alloc.h"
#include "raster_impl.h"

#include <geodesic.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_SNAP_M 1000.0
#define TREE_NODE_CAPACITY 10
#define BATCH_CHUNK 4096
#define WGS84_A 6378137.0
#define WGS84_F (1.0 / 298.257223563)
#define DEG (M_PI / 180.0)
/* The shortest degree of latitude (at the equator), in metres. */
#define MIN_M_PER_DEG_LAT 110574.0
#define LOCAL_CANDS 64
/* Segments per chunk of the snapping index. */
#define CHUNK_SEGS 32
#define RASTER_SIDE 4096

/* CHUNK_SEGS consecutive segments of one ring (fewer at its end). */
typedef struct ring_chunk {
    int32_t self;        /* its own index; first, so that the tree's visitor
                            reads it as it reads a district item */
    int32_t district;
    uint32_t n_pts;      /* points: segments + 1 (1 for a lone point) */
    size_t off;          /* its first point in the locator's xy */
    double x0, y0, x1, y1;  /* envelope */
} ring_chunk;

struct pm_locator {
    const pm_districts *ds;
    size_t n;
    double snap_m;                       /* 0: snapping off */
    int brute;
    GEOSSTRtree *tree;
    size_t n_tree;                       /* districts in the tree (the non-empty) */
    const GEOSPreparedGeometry **prep;   /* n; NULL for an empty geometry */
    int32_t *item;                       /* item[i] == i: the tree's items */
    /* The snapping index (built only when snapping is on). */
    double *xy;                          /* every ring's points, (lon, lat) pairs */
    size_t n_pts;
    ring_chunk *chunks;                       /* in district, ring and segment order */
    size_t n_chunks;
    double lon_min, lon_max;             /* of all the points */
    GEOSSTRtree *chunk_tree;             /* items: &chunks[k] */
    struct geod_geodesic geod;
    pm_raster *raster;                   /* the fast path; NULL: nothing to grid */
    int use_raster;
};

const char *pm_placement_name(pm_placement p)
{
    switch (p) {
    case PM_PLACE_INSIDE: return "inside";
    case PM_PLACE_BORDER: return "border";
    case PM_PLACE_SNAPPED: return "snapped";
    case PM_PLACE_BY_CODE: return "by_code";
    case PM_PLACE_OUTSIDE: return "outside";
    case PM_PLACE_UNKNOWN_CODE: return "unknown_code";
    case PM_PLACE_REJECTED: return "rejected";
    default: return "?";
    }
}

/* ---- candidate lists ---------------------------------------------------- */

/* District indexes from tree queries; on the stack unless there are many. */
typedef struct cands {
    int32_t *v;
    size_t n, cap;
    int oom;
    int32_t local[LOCAL_CANDS];
} cands;

static void cands_init(cands *c)
{
    c->v = c->local;
    c->n = 0;
    c->cap = LOCAL_CANDS;
    c->oom = 0;
}

static void cands_free(cands *c)
{
    if (c->v != c->local)
        pm_free(c->v);
}

static void cands_push(cands *c, int32_t i)
{
    if (c->oom)
        return;
    if (c->n == c->cap) {
        int32_t *v = pm_reallocarray(c->v == c->local ? NULL : c->v, c->cap * 2, sizeof *v);
        if (!v) {
            c->oom = 1;
            return;
        }
        if (c->v == c->local)
            memcpy(v, c->local, sizeof c->local);
        c->v = v;
        c->cap *= 2;
    }
    c->v[c->n++] = i;
}

static void tree_visit(void *item, void *user) { cands_push(user, *(const int32_t *)item); }

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Ascending, without duplicates (a box query in two parts may repeat). */
static void cands_sort_unique(cands *c)
{
    qsort(c->v, c->n, sizeof *c->v, cmp_i32);
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++)
        if (k == 0 || c->v[k - 1] != c->v[i])
            c->v[k++] = c->v[i];
    c->n = k;
}

/* Appends the items (district or chunk indexes) of tree, which holds
 * n_items, whose envelope meets the envelope of q. */
static int query_geom(pm_ctx *ctx, GEOSSTRtree *tree, size_t n_items, const GEOSGeometry *q,
                      cands *c)
{
    if (n_items == 0)   /* GEOS would try to build an empty tree on every query */
        return PM_OK;
    GEOSSTRtree_query_r(pm_ctx_geos(ctx), tree, q, tree_visit, c);
    if (c->oom)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory collecting candidates");
    return PM_OK;
}

/* Appends the items of tree whose envelope meets the box. */
static int query_box(pm_ctx *ctx, GEOSSTRtree *tree, size_t n_items, double x0, double y0,
                     double x1, double y1, cands *c)
{
    GEOSContextHandle_t h = pm_ctx_geos(ctx);
    GEOSGeometry *q = GEOSGeom_createRectangle_r(h, x0, y0, x1, y1);
    if (!q)
        return PM_ERR(ctx, PM_E_GEOM, "cannot build the query box (%.9g, %.9g, %.9g, %.9g): %s",
                      x0, y0, x1, y1, pm_ctx_geos_msg(ctx));
    int rc = query_geom(ctx, tree, n_items, q, c);
    GEOSGeom_destroy_r(h, q);
    return rc;
}

/* ---- containment --------------------------------------------------------- */

enum { REL_OUTSIDE = 0, REL_BORDER = 1, REL_INSIDE = 2 };

/* Where pt lies relative to district i: prepared predicates, or the
 * unprepared ones for the oracle. */
static int relate_point(pm_ctx *ctx, const pm_locator *loc, size_t i, const GEOSGeometry *pt,
                        int brute, int *rel)
{
    GEOSContextHandle_t h = pm_ctx_geos(ctx);
    const GEOSGeometry *g = pm_district_geom_borrow(loc->ds, i);
    char in = brute ? GEOSIntersects_r(h, g, pt)
                    : (loc->prep[i] ? GEOSPreparedIntersects_r(h, loc->prep[i], pt) : 0);
    char inner = 0;
    if (in == 1)
        inner = brute ? GEOSContains_r(h, g, pt) : GEOSPreparedContains_r(h, loc->prep[i], pt);
    if (in == 2 || inner == 2)
        return PM_ERR(ctx, PM_E_GEOM, "district \"%s\": point-in-polygon test failed: %s",
                      pm_district_id(loc->ds, i), pm_ctx_geos_msg(ctx));
    *rel = in == 0 ? REL_OUTSIDE : inner ? REL_INSIDE : REL_BORDER;
    return PM_OK;
}

/* The first district of list (ascending; NULL: all districts) whose
 * closure holds pt, or -1. */
static int first_containing(pm_ctx *ctx, const pm_locator *loc, const GEOSGeometry *pt,
                            const int32_t *list, size_t n, int brute, int32_t *district,
                            pm_placement *placement)
{
    *district = -1;
    for (size_t k = 0; k < n; k++) {
        size_t i = list ? (size_t)list[k] : k;
        int rel = REL_OUTSIDE, rc = relate_point(ctx, loc, i, pt, brute, &rel);
        if (rc)
            return rc;
        if (rel != REL_OUTSIDE) {
            *district = (int32_t)i;
            *placement = rel == REL_INSIDE ? PM_PLACE_INSIDE : PM_PLACE_BORDER;
            return PM_OK;
        }
    }
    return PM_OK;
}

/* ---- snapping: nearest boundary point, geodesic distance ---------------- */

/* Metres per degree around the query point (WGS84 radii of curvature). */
typedef struct frame {
    double lon0, lat0;
    double mx, my;
} frame;

static frame frame_at(double lon, double lat)
{
    double e2 = WGS84_F * (2.0 - WGS84_F), s = sin(lat * DEG);
    double w = sqrt(1.0 - e2 * s * s);
    frame f = {lon, lat, WGS84_A / w * cos(lat * DEG) * DEG,
               WGS84_A * (1.0 - e2) / (w * w * w) * DEG};
    return f;
}

/* x - lon0 folded into [-180, 180). */
static double wrap_dlon(double d)
{
    return d - 360.0 * floor((d + 180.0) / 360.0);
}

/* Distance in degrees of longitude from lon to [xmin, xmax], across ±180°. */
static double lon_gap(double lon, double xmin, double xmax)
{
    double best = INFINITY;
    for (int k = -1; k <= 1; k++) {
        double x = lon + 360.0 * k;
        double g = x < xmin ? xmin - x : x > xmax ? x - xmax : 0.0;
        best = fmin(best, g);
    }
    return best;
}

/* The nearest boundary point found so far in one district. */
typedef struct nearest {
    double d2;          /* squared distance in the frame, m² */
    double lon, lat;
} nearest;

/* Offers the nearest point of segment a-b: it replaces *best only when
 * strictly nearer, so over a sequence of segments the first of the
 * nearest ones wins. */
static void nearest_segment(const frame *f, double ax, double ay, double bx, double by,
                            nearest *best)
{
    if (bx < ax || (bx == ax && by < ay)) { /* canonical direction */
        double tx = ax, ty = ay;
        ax = bx, ay = by, bx = tx, by = ty;
    }
    double ua = wrap_dlon(ax - f->lon0) * f->mx, va = (ay - f->lat0) * f->my;
    double dx = (bx - ax) * f->mx, dy = (by - ay) * f->my;
    double ub = ua + dx, vb = va + dy;
    double da = ua * ua + va * va, db = ub * ub + vb * vb;
    /* An endpoint wins over a projection that rounding puts next to it:
     * a vertex shared by two districts then gives both the same point. */
    if (da <= db) {
        if (da < best->d2)
            *best = (nearest){da, ax, ay};
    } else if (db < best->d2) {
        *best = (nearest){db, bx, by};
    }
    double l2 = dx * dx + dy * dy;
    double t = l2 > 0.0 ? -(ua * dx + va * dy) / l2 : 0.0;
    if (!(t > 0.0 && t < 1.0))
        return;
    double qx = ua + t * dx, qy = va + t * dy, d2 = qx * qx + qy * qy;
    if (d2 < best->d2 && d2 < da && d2 < db)
        *best = (nearest){d2, ax + t * (bx - ax), ay + t * (by - ay)};
}

/* Offers the segments of the n points xy (lon, lat pairs; a lone point
 * counts as a segment of length 0). */
static void nearest_in_points(const frame *f, const double *xy, size_t n, nearest *best)
{
    if (n == 1)
        nearest_segment(f, xy[0], xy[1], xy[0], xy[1], best);
    for (size_t k = 1; k < n; k++)
        nearest_segment(f, xy[2 * k - 2], xy[2 * k - 1], xy[2 * k], xy[2 * k + 1], best);
}

/* Whether no segment within the box [xmin, xmax] x [ymin, ymax] can be
 * offered as strictly nearer than d2.  The box's gap from the point,
 * shrunk by GAP_SLACK_DEG, is below the squared distance that
 * nearest_segment() computes for any of its points despite rounding
 * (ulp(360°) is 6e-14°), so a skip never changes which segment wins. */
#define GAP_SLACK_DEG 1e-9
static int box_beyond(const frame *f, double xmin, double ymin, double xmax, double ymax,
                      double d2)
{
    double gx = fmax(lon_gap(f->lon0, xmin, xmax) - GAP_SLACK_DEG, 0.0) * f->mx;
    double dy = f->lat0 < ymin ? ymin - f->lat0 : f->lat0 > ymax ? f->lat0 - ymax : 0.0;
    double gy = fmax(dy - GAP_SLACK_DEG, 0.0) * f->my;
    return gx * gx + gy * gy >= d2;
}

/* The geodesic distance from the frame's point to best (INFINITY: none). */
static double nearest_geodesic(const pm_locator *loc, const frame *f, const nearest *best)
{
    double d = INFINITY;
    if (best->d2 < INFINITY)
        geod_inverse(&loc->geod, f->lat0, f->lon0, best->lat, best->lon, &d, NULL, NULL);
    return d;
}

/* Calls fn on every non-empty ring, line and point of g in one fixed
 * order (shell, then holes; members in order): the order in which the
 * oracle scans the segments and in which the chunks are numbered. */
typedef int (*curve_fn)(pm_ctx *ctx, const GEOSGeometry *curve, void *user);

static int walk_curves(pm_ctx *ctx, const GEOSGeometry *g, curve_fn fn, void *user)
{
    GEOSContextHandle_t h = pm_ctx_geos(ctx);
    int type = GEOSGeomTypeId_r(h, g);
    if (type == GEOS_POLYGON) {
        const GEOSGeometry *shell = GEOSGetExteriorRing_r(h, g);
        int nh = GEOSGetNumInteriorRings_r(h, g);
        if (!shell || nh < 0)
            return PM_ERR(ctx, PM_E_GEOM, "cannot read a polygon's rings: %s",
                          pm_ctx_geos_msg(ctx));
        int rc = walk_curves(ctx, shell, fn, user);
        for (int k = 0; k < nh && !rc; k++)
            rc = walk_curves(ctx, GEOSGetInteriorRingN_r(h, g, k), fn, user);
        return rc;
    }
    if (type == GEOS_MULTIPOLYGON || type == GEOS_GEOMETRYCOLLECTION ||
        type == GEOS_MULTILINESTRING || type == GEOS_MULTIPOINT) {
        int ng = GEOSGetNumGeometries_r(h, g);
        for (int k = 0; k < ng; k++) {
            int rc = walk_curves(ctx, GEOSGetGeometryN_r(h, g, k), fn, user);
            if (rc)
                return rc;
        }
        return PM_OK;
    }
    if (type < 0)
        return PM_ERR(ctx, PM_E_GEOM, "cannot read a geometry's type: %s", pm_ctx_geos_msg(ctx));
    char empty = GEOSisEmpty_r(h, g);
    if (empty == 2)
        return PM_ERR(ctx, PM_E_GEOM, "cannot read a ring: %s", pm_ctx_geos_msg(ctx));
    return empty ? PM_OK : fn(ctx, g, user);
}

/* The oracle's scan: every segment of a curve, read from GEOS, unless its
 * envelope is too far. */
typedef struct curve_scan {
    const frame *f;
    nearest *best;
} curve_scan;

static int nearest_in_curve(pm_ctx *ctx, const GEOSGeometry *g, void *user)
{
    const curve_scan *s = user;
    GEOSContextHandle_t h = pm_ctx_geos(ctx);
    double xmin, ymin, xmax, ymax;
    if (!GEOSGeom_getExtent_r(h, g, &xmin, &ymin, &xmax, &ymax))
        return PM_ERR(ctx, PM_E_GEOM, "cannot read a ring's extent: %s", pm_ctx_geos_msg(ctx));
    if (box_beyond(s->f, xmin, ymin, xmax, ymax, s->best->d2))
        return PM_OK;
    const GEOSCoordSequence *cs = GEOSGeom_getCoordSeq_r(h, g);
    unsigned int n = 0;
    if (!cs || !GEOSCoordSeq_getSize_r(h, cs, &n))
        return PM_ERR(ctx, PM_E_GEOM, "cannot read a ring's coordinates: %s",
                      pm_ctx_geos_msg(ctx));
    double px = 0, py = 0;
    for (unsigned int k = 0; k < n; k++) {
        double x, y;
        if (!GEOSCoordSeq_getXY_r(h, cs, k, &x, &y))
            return PM_ERR(ctx, PM_E_GEOM, "cannot read a coordinate: %s", pm_ctx_geos_msg(ctx));
        if (k > 0 || n == 1)   /* as nearest_in_points() */
            nearest_segment(s->f, k > 0 ? px : x, k > 0 ? py : y, x, y, s->best);
        px = x, py = y;
    }
    return PM_OK;
}

/* Geodesic distance from the frame's point to district i's nearest
 * boundary point, scanning all of it (INFINITY for an empty district). */
static int district_distance(pm_ctx *ctx, const pm_locator *loc, const frame *f, size_t i,
                             double *dist_m)
{
    nearest best = {INFINITY, 0, 0};
    curve_scan s = {f, &best};
    int rc = walk_curves(ctx, pm_district_geom_borrow(loc->ds, i), nearest_in_curve, &s);
    if (rc)
        return rc;
    *dist_m = nearest_geodesic(loc, f, &best);
    return PM_OK;
}

/* The nearest district: offered in increasing index, ties to the first. */
typedef struct pick {
    double d;
    int32_t district;
} pick;

static void pick_offer(pick *p, size_t i, double d)
{
    if (d < p->d) {
        p->d = d;
        p->district = (int32_t)i;
    }
}

static void pick_result(const pick *p, double snap_m, int32_t *district, double *dist_m)
{
    *district = p->d <= snap_m ? p->district : -1;
    *dist_m = *district >= 0 ? p->d : 0.0;
}

/* The oracle: the nearest of all districts within the tolerance, or -1. */
static int nearest_district_brute(pm_ctx *ctx, const pm_locator *loc, double lon, double lat,
                                  int32_t *district, double *dist_m)
{
    frame f = frame_at(lon, lat);
    pick p = {INFINITY, -1};
    for (size_t i = 0; i < loc->n; i++) {
        double d;
        int rc = district_distance(ctx, loc, &f, i, &d);
        if (rc)
            return rc;
        pick_offer(&p, i, d);
    }
    pick_result(&p, loc->snap_m, district, dist_m);
    return PM_OK;
}

/* The snapping box: it holds every point within the tolerance.  A
 * geodesic of length s moves the latitude by at most s / (a(1-e²)) rad
 * (110574 m per degree at the equator) and the longitude by at most
 * s / (a cos lat_max), both taken 5 % wider.  Its parts x0[k]..x1[k] x
 * y0..y1 are lon0 ± dlon shifted by every multiple of 360° that meets
 * the boundaries' longitudes (lon_min..lon_max, which may pass ±180° by
 * a rounding), or, near a pole, one band over all of them.  reach2 is a
 * squared distance in the frame below which no point outside the box
 * lies: a point outside is dlat beyond lat0 (v = dlat my) or, modulo
 * 360°, dlon beyond lon0 (|u| >= dlon mx); less 2 % for rounding. */
#define MAX_BOX_PARTS 3
typedef struct snap_box {
    int n_parts;
    double x0[MAX_BOX_PARTS], x1[MAX_BOX_PARTS], y0, y1;
    double reach2;
} snap_box;

static snap_box snap_box_at(const pm_locator *loc, const frame *f)
{
    double dlat = loc->snap_m / MIN_M_PER_DEG_LAT * 1.05 + 1e-9;
    double lat_max = fabs(f->lat0) + dlat;
    double dlon = lat_max >= 89.9 ? 360.0 : dlat / cos(lat_max * DEG);
    snap_box b = {.n_parts = 0, .y0 = f->lat0 - dlat, .y1 = f->lat0 + dlat};
    double reach = fmin(dlat * f->my, dlon * f->mx);
    double m0 = ceil((loc->lon_min - (f->lon0 + dlon)) / 360.0);
    double m1 = floor((loc->lon_max - (f->lon0 - dlon)) / 360.0);
    if (loc->n_chunks == 0) {
        /* no parts: nothing to find */
    } else if (dlon >= 180.0 || m1 - m0 >= MAX_BOX_PARTS) {
        b.x0[0] = loc->lon_min, b.x1[0] = loc->lon_max, b.n_parts = 1;
        reach = dlat * f->my;
    } else {
        for (double m = m0; m <= m1; m++) {
            b.x0[b.n_parts] = f->lon0 - dlon + 360.0 * m;
            b.x1[b.n_parts++] = f->lon0 + dlon + 360.0 * m;
        }
    }
    b.reach2 = 0.98 * reach * reach;
    return b;
}

/* Offers the segments of the chunks list[*k], list[*k + 1], ... that
 * belong to the district of the first (list ascending, so in the full
 * scan's order), and moves *k past them. */
static void nearest_in_chunks(const pm_locator *loc, const frame *f, const int32_t *list,
                              size_t n, size_t *k, nearest *best)
{
    int32_t district = loc->chunks[list[*k]].district;
    for (; *k < n && loc->chunks[list[*k]].district == district; ++*k) {
        const ring_chunk *c = &loc->chunks[list[*k]];
        if (!box_beyond(f, c->x0, c->y0, c->x1, c->y1, best->d2))
            nearest_in_points(f, loc->xy + 2 * c->off, c->n_pts, best);
    }
}

/* The indexed snap: only the chunks that meet the snapping box.  When a
 * district's nearest point among them is within the tolerance but not
 * certainly nearer than everything outside the box (a frame far from
 * geodesic: huge tolerances near the poles), its full scan decides. */
static int nearest_district_indexed(pm_ctx *ctx, const pm_locator *loc, double lon, double lat,
                                    int32_t *district, double *dist_m)
{
    frame f = frame_at(lon, lat);
    snap_box b = snap_box_at(loc, &f);
    cands c;
    cands_init(&c);
    int rc = PM_OK;
    for (int k = 0; k < b.n_parts && !rc; k++)
        rc = query_box(ctx, loc->chunk_tree, loc->n_chunks, b.x0[k], b.y0, b.x1[k], b.y1, &c);
    if (!rc)
        cands_sort_unique(&c);
    pick p = {INFINITY, -1};
    for (size_t k = 0; !rc && k < c.n;) {
        size_t i = (size_t)loc->chunks[c.v[k]].district;
        nearest best = {INFINITY, 0, 0};
        nearest_in_chunks(loc, &f, c.v, c.n, &k, &best);
        double d = nearest_geodesic(loc, &f, &best);
        if (d <= loc->snap_m && !(best.d2 < b.reach2))
            rc = district_distance(ctx, loc, &f, i, &d);
        pick_offer(&p, i, d);
    }
    cands_free(&c);
    if (!rc)
        pick_result(&p, loc->snap_m, district, dist_m);
    return rc;
}

/* ---- one point ------------------------------------------------------------ */

static int check_point(pm_ctx *ctx, double lon, double lat)
{
    if (!isfinite(lon) || !isfinite(lat))
        return PM_ERR(ctx, PM_E_INPUT_VALUE, "point (%g, %g): coordinates are not finite", lon,
                      lat);
    if (fabs(lon) > 180.0 || fabs(lat) > 90.0)
        return PM_ERR(ctx, PM_E_INPUT_VALUE, "point (%.9g, %.9g): lon/lat out of range", lon, lat);
    return PM_OK;
}

static int point_new(pm_ctx *ctx, double lon, double lat, GEOSGeometry **pt)
{
    *pt = GEOSGeom_createPointFromXY_r(pm_ctx_geos(ctx), lon, lat);
    if (!*pt)
        return PM_ERR(ctx, PM_E_GEOM, "point (%.9g, %.9g): cannot build it: %s", lon, lat,
                      pm_ctx_geos_msg(ctx));
    return PM_OK;
}

/* The first district of list (ascending; NULL: the tree's candidates)
 * whose closure holds the point, or -1. */
static int containing(pm_ctx *ctx, const pm_locator *loc, double lon, double lat,
                      const int32_t *list, size_t n, int32_t *district, pm_placement *placement)
{
    GEOSGeometry *pt;
    int rc = point_new(ctx, lon, lat, &pt);
    if (rc)
        return rc;
    if (list) {
        rc = first_containing(ctx, loc, pt, list, n, 0, district, placement);
    } else {
        cands c;
        cands_init(&c);
        rc = query_geom(ctx, loc->tree, loc->n_tree, pt, &c);
        if (!rc) {
            cands_sort_unique(&c);
            rc = first_containing(ctx, loc, pt, c.v, c.n, 0, district, placement);
        }
        cands_free(&c);
    }
    GEOSGeom_destroy_r(pm_ctx_geos(ctx), pt);
    return rc;
}

static int locate_brute(pm_ctx *ctx, const pm_locator *loc, double lon, double lat,
                        int32_t *district, pm_placement *placement, double *dist_m)
{
    GEOSGeometry *pt;
    int rc = point_new(ctx, lon, lat, &pt);
    if (!rc)
        rc = first_containing(ctx, loc, pt, NULL, loc->n, 1, district, placement);
    GEOSGeom_destroy_r(pm_ctx_geos(ctx), pt);
    if (rc || *district >= 0 || loc->snap_m <= 0.0)
        return rc;
    rc = nearest_district_brute(ctx, loc, lon, lat, district, dist_m);
    if (!rc && *district >= 0)
        *placement = PM_PLACE_SNAPPED;
    return rc;
}

/* The raster first (raster_impl.h): a cell inside one district answers
 * at once; a cell in no district skips to snapping; a border cell gives
 * the candidates; off the grid, the STRtree does. */
static int locate_indexed(pm_ctx *ctx, const pm_locator *loc, double lon, double lat,
                          int32_t *district, pm_placement *placement, double *dist_m)
{
    int32_t code = loc->raster && loc->use_raster ? pm_raster_lookup(loc->raster, lon, lat)
                                                  : PM_RASTER_EXACT;
    if (code >= 0) {
        *district = code;
        *placement = PM_PLACE_INSIDE;
        return PM_OK;
    }
    int rc = PM_OK;
    if (code <= PM_RASTER_LIST0) {
        size_t n;
        const int32_t *list = pm_raster_list(loc->raster, code, &n);
        rc = containing(ctx, loc, lon, lat, list, n, district, placement);
    } else if (code == PM_RASTER_EXACT) {
        rc = containing(ctx, loc, lon, lat, NULL, 0, district, placement);
    }
    if (rc || *district >= 0 || loc->snap_m <= 0.0)
        return rc;
    rc = nearest_district_indexed(ctx, loc, lon, lat, district, dist_m);
    if (!rc && *district >= 0)
        *placement = PM_PLACE_SNAPPED;
    return rc;
}

int pm_locate_point(pm_ctx *ctx, const pm_locator *loc, double lon, double lat,
                    int32_t *district, pm_placement *placement, double *dist_m)
{
    *district = -1;
    *placement = PM_PLACE_OUTSIDE;
    *dist_m = 0.0;
    int rc = check_point(ctx, lon, lat);
    if (rc)
        return rc;
    rc = loc->brute ? locate_brute(ctx, loc, lon, lat, district, placement, dist_m)
                    : locate_indexed(ctx, loc, lon, lat, district, placement, dist_m);
    if (rc) {
        *district = -1;
        *placement = PM_PLACE_OUTSIDE;
        *dist_m = 0.0;
    }
    return rc;
}

/* ---- building the locator ------------------------------------------------- */

/* Asks for the extent of every component and ring, so that GEOS caches
 * them now and not later, from several threads. */
static int cache_envelopes(pm_ctx *ctx, const GEOSGeometry *g)
{
    GEOSContextHandle_t h = pm_ctx_geos(ctx);
    double x0, y0, x1, y1;
    char empty = GEOSisEmpty_r(h, g);
    if (empty == 1)
        return PM_OK;
    if (empty == 2 || !GEOSGeom_getExtent_r(h, g, &x0, &y0, &x1, &y1))
        return PM_ERR(ctx, PM_E_GEOM, "cannot compute an extent: %s", pm_ctx_geos_msg(ctx));
    int type = GEOSGeomTypeId_r(h, g), rc = PM_OK;
    if (type == GEOS_POLYGON) {
        rc = cache_envelopes(ctx, GEOSGetExteriorRing_r(h, g));
        int nh = GEOSGetNumInteriorRings_r(h, g);
        for (int k = 0; k < nh && !rc; k++)
            rc = cache_envelopes(ctx, GEOSGetInteriorRingN_r(h, g, k));
    } else if (type == GEOS_MULTIPOLYGON || type == GEOS_GEOMETRYCOLLECTION ||
               type == GEOS_MULTILINESTRING || type == GEOS_MULTIPOINT) {
        int ng = GEOSGetNumGeometries_r(h, g);
        for (int k = 0; k < ng && !rc; k++)
            rc = cache_envelopes(ctx, GEOSGetGeometryN_r(h, g, k));
    }
    return rc;
}

/* Prepares district i and runs one Intersects and one Contains with the
 * centre of its envelope, which passes the envelope test and so builds
 * the point-in-area locator and its index.  Leaves prep[i] NULL for an
 * empty geometry, which holds no point. */
static int prepare_district(pm_ctx *ctx, pm_locator *loc, size_t i)
{
    GEOSContextHandle_t h = pm_ctx_geos(ctx);
    const GEOSGeometry *g = pm_district_geom_borrow(loc->ds, i);
    const char *id = pm_district_id(loc->ds, i);
    char empty = GEOSisEmpty_r(h, g);
    if (empty == 2)
        return PM_ERR(ctx, PM_E_GEOM, "district \"%s\": cannot read its geometry: %s", id,
                      pm_ctx_geos_msg(ctx));
    if (empty == 1)
        return PM_OK;
    int rc = cache_envelopes(ctx, g);
    if (rc)
        return PM_ERR(ctx, rc, "district \"%s\": %s", id, pm_ctx_errmsg(ctx));
    double x0, y0, x1, y1;
    GEOSGeom_getExtent_r(h, g, &x0, &y0, &x1, &y1);
    loc->prep[i] = GEOSPrepare_r(h, g);
    if (!loc->prep[i])
        return PM_ERR(ctx, PM_E_GEOM, "district \"%s\": cannot prepare its geometry: %s", id,
                      pm_ctx_geos_msg(ctx));
    GEOSSTRtree_insert_r(h, loc->tree, g, &loc->item[i]);
    loc->n_tree++;
    GEOSGeometry *pt = GEOSGeom_createPointFromXY_r(h, (x0 + x1) / 2, (y0 + y1) / 2);
    if (!pt)
        return PM_ERR(ctx, PM_E_GEOM, "district \"%s\": cannot build a test point: %s", id,
                      pm_ctx_geos_msg(ctx));
    char a = GEOSPreparedIntersects_r(h, loc->prep[i], pt);
    char b = GEOSPreparedContains_r(h, loc->prep[i], pt);
    GEOSGeom_destroy_r(h, pt);
    if (a == 2 || b == 2)
        return PM_ERR(ctx, PM_E_GEOM, "district \"%s\": point-in-polygon test failed: %s", id,
                      pm_ctx_geos_msg(ctx));
    return PM_OK;
}

/* Room for need elements of size bytes at p, whose capacity *cap grows
 * by doubling.  NULL when out of memory (p is then still valid). */
static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return p;
    size_t c = *cap ? *cap : 256;
    while (c < need) {
        if (c > SIZE_MAX / 2)
            return NULL;
        c *= 2;
    }
    void *q = pm_reallocarray(p, c, size);
    if (q)
        *cap = c;
    return q;
}

/* Flattening the rings of one district into the locator's xy and chunks. */
typedef struct flattening {
    pm_locator *loc;
    int32_t district;
    size_t cap_pts, cap_chunks;
} flattening;

static int flatten_curve(pm_ctx *ctx, const GEOSGeometry *g, void *user)
{
    flattening *fl = user;
    pm_locator *loc = fl->loc;
    GEOSContextHandle_t h = pm_ctx_geos(ctx);
    const GEOSCoordSequence *cs = GEOSGeom_getCoordSeq_r(h, g);
    unsigned int n = 0;
    if (!cs || !GEOSCoordSeq_getSize_r(h, cs, &n))
        return PM_ERR(ctx, PM_E_GEOM, "cannot read a ring's coordinates: %s",
                      pm_ctx_geos_msg(ctx));
    if (n == 0)
        return PM_OK;
    size_t n_new = n == 1 ? 1 : (n - 2) / CHUNK_SEGS + 1;   /* ceil((n - 1) / CHUNK_SEGS) */
    if (loc->n_chunks + n_new > INT32_MAX)
        return PM_ERR(ctx, PM_E_USAGE, "the boundaries have too many points to index (more "
                      "than %d chunks of %d segments)", INT32_MAX, CHUNK_SEGS);
    double *xy = grow(loc->xy, &fl->cap_pts, loc->n_pts + n, 2 * sizeof *xy);
    if (!xy)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory copying the boundaries for snapping");
    loc->xy = xy;
    ring_chunk *ch = grow(loc->chunks, &fl->cap_chunks, loc->n_chunks + n_new, sizeof *ch);
    if (!ch)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory indexing the boundaries for snapping");
    loc->chunks = ch;
    xy += 2 * loc->n_pts;
    if (!GEOSCoordSeq_copyToBuffer_r(h, cs, xy, 0, 0))
        return PM_ERR(ctx, PM_E_GEOM, "cannot copy a ring's coordinates: %s",
                      pm_ctx_geos_msg(ctx));
    for (size_t j = 0; j < n_new; j++) {
        size_t first = j * CHUNK_SEGS;
        size_t last = first + CHUNK_SEGS < n - 1 ? first + CHUNK_SEGS : n - 1;
        ring_chunk c = {(int32_t)loc->n_chunks, fl->district, (uint32_t)(last - first + 1),
                        loc->n_pts + first, INFINITY, INFINITY, -INFINITY, -INFINITY};
        for (size_t k = first; k <= last; k++) {
            c.x0 = fmin(c.x0, xy[2 * k]), c.x1 = fmax(c.x1, xy[2 * k]);
            c.y0 = fmin(c.y0, xy[2 * k + 1]), c.y1 = fmax(c.y1, xy[2 * k + 1]);
        }
        loc->chunks[loc->n_chunks++] = c;
    }
    loc->n_pts += n;
    return PM_OK;
}

/* The first query builds a GEOS tree. */
static int build_tree(pm_ctx *ctx, GEOSSTRtree *tree, size_t n_items)
{
    cands c;
    cands_init(&c);
    int rc = query_box(ctx, tree, n_items, 0.0, 0.0, 1.0, 1.0, &c);
    cands_free(&c);
    return rc;
}

/* The snapping index: every ring copied into xy, cut into chunks of
 * CHUNK_SEGS segments, and a tree over the chunk envelopes. */
static int index_chunks(pm_ctx *ctx, pm_locator *loc)
{
    flattening fl = {loc, 0, 0, 0};
    for (size_t i = 0; i < loc->n; i++) {
        fl.district = (int32_t)i;
        int rc = walk_curves(ctx, pm_district_geom_borrow(loc->ds, i), flatten_curve, &fl);
        if (rc)
            return PM_ERR(ctx, rc, "district \"%s\": %s", pm_district_id(loc->ds, i),
                          pm_ctx_errmsg(ctx));
    }
    loc->lon_min = INFINITY, loc->lon_max = -INFINITY;
    for (size_t k = 0; k < loc->n_chunks; k++) {
        loc->lon_min = fmin(loc->lon_min, loc->chunks[k].x0);
        loc->lon_max = fmax(loc->lon_max, loc->chunks[k].x1);
    }
    GEOSContextHandle_t h = pm_ctx_geos(ctx);
    loc->chunk_tree = GEOSSTRtree_create_r(h, TREE_NODE_CAPACITY);
    if (!loc->chunk_tree)
        return PM_ERR(ctx, PM_E_GEOM, "cannot create the STRtree: %s", pm_ctx_geos_msg(ctx));
    for (size_t k = 0; k < loc->n_chunks; k++) {
        ring_chunk *c = &loc->chunks[k];
        GEOSGeometry *env = GEOSGeom_createRectangle_r(h, c->x0, c->y0, c->x1, c->y1);
        if (!env)
            return PM_ERR(ctx, PM_E_GEOM, "cannot build a chunk's envelope: %s",
                          pm_ctx_geos_msg(ctx));
        GEOSSTRtree_insert_r(h, loc->chunk_tree, env, c);   /* the tree copies the envelope */
        GEOSGeom_destroy_r(h, env);
    }
    return build_tree(ctx, loc->chunk_tree, loc->n_chunks);
}

/* Cells along the longer side of the raster (docs/geocoding.md). */
static uint32_t raster_side(size_t n_districts)
{
    (void)n_districts;
    return RASTER_SIDE;
}

int pm_locator_new(pm_ctx *ctx, const pm_districts *ds, double snap_tolerance_m,
                   pm_locator **out)
{
    *out = NULL;
    if (isnan(snap_tolerance_m) || isinf(snap_tolerance_m))
        return PM_ERR(ctx, PM_E_USAGE, "snap tolerance %g m is not finite", snap_tolerance_m);
    /* A frozen set has at least one region; before freeze it reports none. */
    if (pm_districts_count(ds) > 0 && pm_regions_count(ds) == 0)
        return PM_ERR(ctx, PM_E_USAGE, "the district set is not frozen");
    if (pm_districts_count(ds) > INT32_MAX)
        return PM_ERR(ctx, PM_E_USAGE, "too many districts (%zu)", pm_districts_count(ds));
    pm_locator *loc = pm_calloc(1, sizeof *loc);
    if (!loc)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory building the locator");
    loc->ds = ds;
    loc->n = pm_districts_count(ds);
    loc->snap_m = snap_tolerance_m < 0.0 ? DEFAULT_SNAP_M : snap_tolerance_m;
    geod_init(&loc->geod, WGS84_A, WGS84_F);
    loc->prep = pm_calloc(loc->n, sizeof *loc->prep);
    loc->item = pm_calloc(loc->n, sizeof *loc->item);
    if (!loc->prep || !loc->item) {
        pm_locator_free(ctx, loc);
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory building the locator");
    }
    loc->tree = GEOSSTRtree_create_r(pm_ctx_geos(ctx), TREE_NODE_CAPACITY);
    if (!loc->tree) {
        pm_locator_free(ctx, loc);
        return PM_ERR(ctx, PM_E_GEOM, "cannot create the STRtree: %s", pm_ctx_geos_msg(ctx));
    }
    for (size_t i = 0; i < loc->n; i++) {
        loc->item[i] = (int32_t)i;
        int rc = prepare_district(ctx, loc, i);
        if (rc) {
            pm_locator_free(ctx, loc);
            return rc;
        }
    }
    int rc = build_tree(ctx, loc->tree, loc->n_tree);
    if (!rc && loc->snap_m > 0.0)
        rc = index_chunks(ctx, loc);
    if (!rc)
        rc = pm_raster_new(ctx, ds, loc->prep, raster_side(loc->n), &loc->raster);
    loc->use_raster = 1;
    if (rc) {
        pm_locator_free(ctx, loc);
        return rc;
    }
    *out = loc;
    return PM_OK;
}

void pm_locator_free(pm_ctx *ctx, pm_locator *loc)
{
    if (!loc)
        return;
    GEOSContextHandle_t h = pm_ctx_geos(ctx);
    if (loc->tree)
        GEOSSTRtree_destroy_r(h, loc->tree);
    if (loc->chunk_tree)
        GEOSSTRtree_destroy_r(h, loc->chunk_tree);
    pm_free(loc->xy);
    pm_free(loc->chunks);
    for (size_t i = 0; loc->prep && i < loc->n; i++)
        if (loc->prep[i])
            GEOSPreparedGeom_destroy_r(h, loc->prep[i]);
    pm_free(loc->prep);
    pm_free(loc->item);
    pm_raster_free(loc->raster);
    pm_free(loc);
}

void pm_locator_set_brute_force(pm_locator *loc, int on) { loc->brute = on != 0; }

void pm_locator_set_raster(pm_locator *loc, int on) { loc->use_raster = on != 0; }

void pm_locator_raster_info(const pm_locator *loc, pm_raster_info *info)
{
    memset(info, 0, sizeof *info);
    if (!loc->raster)
        return;
    const pm_raster *r = loc->raster;
    const pm_raster_stats *st = &r->stats;
    *info = (pm_raster_info){.nx = r->nx, .ny = r->ny, .lon0_deg = r->x0, .lat0_deg = r->y0,
                             .cell_lon_deg = r->dx, .cell_lat_deg = r->dy,
                             .cells_inside = st->cells_inside, .cells_outside = st->cells_out,
                             .cells_border = st->cells_mixed, .bytes = st->bytes};
}

/* ---- the batch ----------------------------------------------------------- */

typedef struct batch {
    const pm_locator *loc;
    const pm_complaints *cs;
    const int32_t *by_code;     /* district of each district-code dictionary entry */
    pm_placed *out;
    size_t from, to;            /* the complaints to place */
    size_t n_chunks;
    atomic_size_t next;         /* next chunk to take */
    atomic_size_t stop;         /* lowest chunk that failed; SIZE_MAX: none */
} batch;

/* Snap distances found by one worker, by increasing index. */
typedef struct snaps {
    uint32_t *i;
    float *d;
    size_t n, cap;
    size_t taken;               /* merged into the placement so far */
} snaps;

typedef struct worker {
    batch *b;
    pm_ctx *ctx;
    snaps snapped;
    size_t err_chunk;           /* SIZE_MAX: no error */
    pthread_t thread;
    int started;
} worker;

/* Room for n snap distances in the two arrays (0, or -1 when out of
 * memory; what they held stays). */
static int snaps_room(uint32_t **ix, float **d, size_t *cap, size_t n)
{
    if (n <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < n)
        c *= 2;
    uint32_t *a = pm_reallocarray(*ix, c, sizeof *a);
    if (a)
        *ix = a;
    float *b = a ? pm_reallocarray(*d, c, sizeof *b) : NULL;
    if (!b)
        return -1;
    *d = b;
    *cap = c;
    return 0;
}

static int place_one(worker *w, size_t i)
{
    pm_ctx *ctx = w->ctx;
    const batch *b = w->b;
    const pm_complaints *cs = b->cs;
    double lon = pm_complaints_lon_at(cs, i), lat = pm_complaints_lat_at(cs, i);
    pm_placed *o = b->out;
    if (isnan(lon) || isnan(lat)) {
        uint32_t code = pm_complaints_dict_at(cs, PM_DICT_DISTRICT_CODE, i);
        o->district[i] = code == PM_NONE ? -1 : b->by_code[code];
        o->placement[i] = o->district[i] >= 0 ? PM_PLACE_BY_CODE : PM_PLACE_UNKNOWN_CODE;
        return PM_OK;
    }
    pm_placement pl;
    double d;
    int rc = pm_locate_point(ctx, b->loc, lon, lat, &o->district[i], &pl, &d);
    if (rc)
        return PM_ERR(ctx, rc, "complaint \"%s\" (line %" PRIu64 "): %s", pm_complaints_id(cs, i),
                      pm_complaints_line(cs, i), pm_ctx_errmsg(ctx));
    o->placement[i] = (uint8_t)pl;
    if (pl == PM_PLACE_SNAPPED) {
        snaps *s = &w->snapped;
        if (snaps_room(&s->i, &s->d, &s->cap, s->n + 1) != 0)
            return PM_ERR(ctx, PM_E_NOMEM, "complaint \"%s\" (line %" PRIu64 "): out of memory",
                          pm_complaints_id(cs, i), pm_complaints_line(cs, i));
        s->i[s->n] = (uint32_t)i;
        s->d[s->n++] = (float)d;
    }
    return PM_OK;
}

/* Lowers b->stop to chunk: later chunks are not started any more. */
static void stop_at(batch *b, size_t chunk)
{
    size_t cur = atomic_load(&b->stop);
    while (chunk < cur && !atomic_compare_exchange_weak(&b->stop, &cur, chunk))
        ;
}

/* Takes chunks in increasing order until none is left or one failed
 * before; so every chunk below the lowest failing one is always done. */
static void *work(void *arg)
{
    worker *w = arg;
    batch *b = w->b;
    for (;;) {
        size_t c = atomic_fetch_add(&b->next, 1);
        if (c >= b->n_chunks || c > atomic_load(&b->stop))
            break;
        size_t start = b->from + c * BATCH_CHUNK;
        size_t end = b->to - start > BATCH_CHUNK ? start + BATCH_CHUNK : b->to;
        for (size_t i = start; i < end; i++)
            if (place_one(w, i)) {
                w->err_chunk = c;
                stop_at(b, c);
                return NULL;
            }
    }
    return NULL;
}

/* District index of every district-code dictionary entry (-1: unknown). */
static int32_t *code_table(const pm_locator *loc, const pm_complaints *cs)
{
    size_t n = pm_complaints_dict_count(cs, PM_DICT_DISTRICT_CODE);
    int32_t *t = pm_calloc(n, sizeof *t);
    for (size_t k = 0; t && k < n; k++)
        t[k] = (int32_t)pm_districts_find(
            loc->ds, pm_complaints_dict_str(cs, PM_DICT_DISTRICT_CODE, (uint32_t)k));
    return t;
}

pm_placed *pm_placed_new(void) { return pm_calloc(1, sizeof(pm_placed)); }

/* Room for n complaints in p's arrays; 0, or -1 when out of memory (p
 * unchanged then, but for arrays that already grew). */
static int placed_reserve(pm_placed *p, size_t n)
{
    if (n <= p->cap)
        return 0;
    int32_t *d = pm_reallocarray(p->district, n, sizeof *d);
    if (d)
        p->district = d;
    uint8_t *pl = d ? pm_reallocarray(p->placement, n, sizeof *pl) : NULL;
    if (!pl)
        return -1;
    p->placement = pl;
    p->cap = n;
    return 0;
}

void pm_placed_free(pm_placed *p)
{
    if (!p)
        return;
    if (p->borrowed) {
        pm_free(p);
        return;
    }
    pm_free(p->district);
    pm_free(p->placement);
    pm_free(p->snap_i);
    pm_free(p->snap_d);
    pm_free(p);
}

float pm_placed_snap_m(const pm_placed *p, size_t i)
{
    size_t lo = 0, hi = p->n_snap;   /* the first snapped index >= i */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->snap_i[mid] < i)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < p->n_snap && p->snap_i[lo] == i ? p->snap_d[lo] : 0.0f;
}

/* Appends the workers' snap distances to p's in index order: each
 * worker's are in order (it takes chunks in order), so a merge.  0, or -1
 * when out of memory (p's as before then). */
static int snaps_merge(pm_placed *p, worker *w, size_t nw)
{
    size_t total = 0;
    for (size_t k = 0; k < nw; k++)
        total += w[k].snapped.n;
    if (snaps_room(&p->snap_i, &p->snap_d, &p->snap_cap, p->n_snap + total) != 0)
        return -1;
    for (size_t m = 0; m < total; m++) {
        snaps *best = NULL;
        for (size_t k = 0; k < nw; k++) {
            snaps *s = &w[k].snapped;
            if (s->taken < s->n && (!best || s->i[s->taken] < best->i[best->taken]))
                best = s;
        }
        p->snap_i[p->n_snap] = best->i[best->taken];
        p->snap_d[p->n_snap++] = best->d[best->taken++];
    }
    return 0;
}

/* Runs the workers: worker 0 on this thread, the others on new threads.
 * A thread that cannot start is only a warning: the others take its
 * chunks.  Returns the worker with the lowest failing chunk, or NULL. */
static worker *run_workers(pm_ctx *ctx, worker *w, size_t nw)
{
    for (size_t k = 1; k < nw; k++) {
        w[k].started = pthread_create(&w[k].thread, NULL, work, &w[k]) == 0;
        if (!w[k].started)
            pm_ctx_log(ctx, PM_LOG_WARN, "could not start locator thread %zu of %zu; going on "
                       "with fewer", k + 1, nw);
    }
    work(&w[0]);
    worker *failed = NULL;
    for (size_t k = 0; k < nw; k++) {
        if (k > 0 && w[k].started)
            pthread_join(w[k].thread, NULL);
        if (w[k].err_chunk != SIZE_MAX && (!failed || w[k].err_chunk < failed->err_chunk))
            failed = &w[k];
    }
    return failed;
}

static size_t thread_count(int n_threads, size_t n_chunks)
{
    size_t nt = (size_t)n_threads;
    if (n_threads == 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        nt = nc > 0 ? (size_t)nc : 1;
    }
    if (nt > n_chunks)
        nt = n_chunks;
    return nt ? nt : 1;
}

int pm_locate_more(pm_ctx *ctx, const pm_locator *loc, const pm_complaints *cs, int n_threads,
                   pm_placed *p)
{
    if (n_threads < 0)
        return PM_ERR(ctx, PM_E_USAGE, "thread count %d is negative", n_threads);
    if (p->borrowed)
        return PM_ERR(ctx, PM_E_USAGE, "a snapshot's placement cannot be added to");
    size_t from = p->n, to = pm_complaints_count(cs);
    if (from > to)
        return PM_ERR(ctx, PM_E_USAGE, "the placement holds %zu complaints, the batch only %zu",
                      from, to);
    if (to > p->cap || !p->cap) {
        /* the room of the batch's columns (made once when the intake could
         * tell the file's size), else doubling; never no arrays */
        size_t want = pm_complaints_capacity(cs);
        want = want > 2 * p->cap ? want : 2 * p->cap;
        want = want > to ? want : to;
        want = want ? want : 1;
        if (placed_reserve(p, want) != 0 && placed_reserve(p, to ? to : 1) != 0)
            return PM_ERR(ctx, PM_E_NOMEM, "out of memory placing %zu complaints", to);
    }
    if (from == to)
        return PM_OK;
    batch b = {.loc = loc, .cs = cs, .from = from, .to = to,
               .n_chunks = (to - from + BATCH_CHUNK - 1) / BATCH_CHUNK};
    atomic_init(&b.next, 0);
    atomic_init(&b.stop, SIZE_MAX);
    size_t nw = thread_count(n_threads, b.n_chunks);
    int32_t *by_code = code_table(loc, cs);
    worker *w = pm_calloc(nw, sizeof *w);
    int rc = PM_OK;
    for (size_t k = 0; w && k < nw; k++) {
        w[k].b = &b;
        w[k].err_chunk = SIZE_MAX;
        w[k].ctx = pm_ctx_new();
        if (!w[k].ctx)
            rc = PM_ERR(ctx, PM_E_NOMEM, "out of memory creating a thread context");
    }
    if (!by_code || !w)
        rc = PM_ERR(ctx, PM_E_NOMEM, "out of memory placing %zu complaints", to - from);
    if (!rc) {
        b.by_code = by_code;
        b.out = p;
        worker *failed = run_workers(ctx, w, nw);
        if (failed)
            rc = pm_ctx_set_error(ctx, pm_ctx_errcode(failed->ctx), pm_ctx_errfunc(failed->ctx),
                                  "%s", pm_ctx_errmsg(failed->ctx));
        else if (snaps_merge(p, w, nw) != 0)
            rc = PM_ERR(ctx, PM_E_NOMEM, "out of memory placing %zu complaints", to - from);
    }
    for (size_t k = 0; w && k < nw; k++) {
        pm_ctx_free(w[k].ctx);
        pm_free(w[k].snapped.i);
        pm_free(w[k].snapped.d);
    }
    pm_free(w);
    pm_free(by_code);
    if (rc)
        return rc;
    for (size_t i = from; i < to; i++)
        p->counts[p->placement[i]]++;
    p->n = to;
    return PM_OK;
}

int pm_locate_batch(pm_ctx *ctx, const pm_locator *loc, const pm_complaints *cs,
                    int n_threads, pm_placed **out)
{
    *out = NULL;
    pm_placed *p = pm_placed_new();
    if (!p)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory placing %zu complaints",
                      pm_complaints_count(cs));
    int rc = pm_locate_more(ctx, loc, cs, n_threads, p);
    if (rc) {
        pm_placed_free(p);
        return rc;
    }
    *out = p;
    return PM_OK;
}

/* ---- snapshots -------------------------------------------------------------------- */

#define TAG_DISTRICT PM_SNAP_TAG('p', 'D', 'I', 'S')
#define TAG_PLACEMENT PM_SNAP_TAG('p', 'P', 'L', 'A')
#define TAG_SNAP_I PM_SNAP_TAG('p', 'S', 'N', 'I')
#define TAG_SNAP_D PM_SNAP_TAG('p', 'S', 'N', 'D')

int pm_placed_snap_write(pm_ctx *ctx, const pm_placed *p, pm_snap_writer *w)
{
    int rc = pm_snap_put(ctx, w, TAG_DISTRICT, p->district, sizeof *p->district, p->n);
    rc = rc ? rc : pm_snap_put(ctx, w, TAG_PLACEMENT, p->placement, sizeof *p->placement, p->n);
    rc = rc ? rc : pm_snap_put(ctx, w, TAG_SNAP_I, p->snap_i, sizeof *p->snap_i, p->n_snap);
    return rc ? rc : pm_snap_put(ctx, w, TAG_SNAP_D, p->snap_d, sizeof *p->snap_d, p->n_snap);
}

static int check_placed(pm_ctx *ctx, pm_snap *s, pm_placed *p, size_t n_districts)
{
    for (size_t i = 0; i < p->n; i++) {
        uint8_t k = p->placement[i];
        int32_t d = p->district[i];
        if (k >= PM_PLACE_N)
            return pm_snap_damaged(ctx, s, TAG_PLACEMENT, "complaint %zu: placement %u", i, k);
        if (d < -1 || (d >= 0 && (size_t)d >= n_districts) || (d < 0 && pm_placement_in_district(k)))
            return pm_snap_damaged(ctx, s, TAG_DISTRICT, "complaint %zu: district %" PRId32
                                   " of %zu (placement %s)", i, d, n_districts,
                                   pm_placement_name((pm_placement)k));
        p->counts[k]++;
    }
    for (size_t j = 0; j < p->n_snap; j++) {
        if (p->snap_i[j] >= p->n || (j && p->snap_i[j] <= p->snap_i[j - 1]))
            return pm_snap_damaged(ctx, s, TAG_SNAP_I, "entry %zu: complaint %" PRIu32
                                   " (of %zu, in increasing order)", j, p->snap_i[j], p->n);
        if (!(p->snap_d[j] >= 0 && isfinite(p->snap_d[j])))
            return pm_snap_damaged(ctx, s, TAG_SNAP_D, "entry %zu: %g m", j, (double)p->snap_d[j]);
    }
    return PM_OK;
}

int pm_placed_snap_map(pm_ctx *ctx, pm_snap *s, size_t n, size_t n_districts, pm_placed **out)
{
    *out = NULL;
    pm_placed *p = pm_placed_new();
    if (!p)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory reading %s", pm_snap_path(s));
    p->borrowed = 1;
    p->n = p->cap = n;
    size_t n_snap = 0, n_snap_d = 0;
    int rc = pm_snap_section(ctx, s, TAG_DISTRICT, sizeof *p->district, n,
                             (const void **)&p->district, NULL);
    rc = rc ? rc : pm_snap_section(ctx, s, TAG_PLACEMENT, sizeof *p->placement, n,
                                   (const void **)&p->placement, NULL);
    rc = rc ? rc : pm_snap_section(ctx, s, TAG_SNAP_I, sizeof *p->snap_i, SIZE_MAX,
                                   (const void **)&p->snap_i, &n_snap);
    rc = rc ? rc : pm_snap_section(ctx, s, TAG_SNAP_D, sizeof *p->snap_d, n_snap,
                                   (const void **)&p->snap_d, &n_snap_d);
    p->n_snap = p->snap_cap = n_snap;
    rc = rc ? rc : check_placed(ctx, s, p, n_districts);
    if (rc) {
        pm_placed_free(p);
        return rc;
    }
    *out = p;
    return PM_OK;
}
