/* dataset_io.c — the map's dataset as a snapshot file (layers.h,
 * docs/dataset.md): what placing and projecting made, kept so that a
 * server or a tile run starts from it in the time the mapping and its
 * checks take instead of reading and placing every complaint again.
 *
 * The file (pm_snap.h, magic "PMDATA") holds the placed complaints'
 * columns (pm_complaints_snap_write: not ids, input lines or texts), their
 * placement, both grids' heat-map points and the cube (kCUB: a cube
 * snapshot file, engine/cube_io.c, read in place), plus dMET: the UTC
 * offset the points' days were counted at, the counts of the run that made
 * it, and XXH3 fingerprints of the districts (ids and geometries, as WKB)
 * and of the topic codes.  The districts and topics themselves are read
 * from --boundaries and --topics as always, and must be the ones it was
 * made with.  A run with a --period other than the kept cube's makes its
 * cube again from the columns, as dataset_new() makes it. */
#include "layers.h"
#include "../engine/pm_alloc.h"
#include "../engine/pm_snap.h"

#include <inttypes.h>
#include <string.h>
#include <xxhash.h>

static const char MAGIC[8] = {'P', 'M', 'D', 'A', 'T', 'A', 0, 0};
#define VERSION 1
#define TAG_META PM_SNAP_TAG('d', 'M', 'E', 'T')
#define TAG_CUBE PM_SNAP_TAG('k', 'C', 'U', 'B')
enum { M_UTC_OFFSET, M_COMPLAINTS, M_DISTRICTS, M_DISTRICTS_HASH, M_TOPICS, M_TOPICS_HASH,
       M_READ, M_ACCEPTED, M_REJECTED, META_N };

/* The districts' fingerprint: each one's id and geometry (WKB). */
static int districts_hash(pm_ctx *ctx, const pm_districts *ds, uint64_t *out)
{
    GEOSContextHandle_t h = pm_ctx_geos(ctx);
    GEOSWKBWriter *wr = GEOSWKBWriter_create_r(h);
    XXH3_state_t *xs = XXH3_createState();
    int rc = wr && xs ? PM_OK : PM_ERR(ctx, PM_E_NOMEM, "out of memory hashing the districts");
    if (!rc)
        XXH3_64bits_reset(xs);
    for (size_t i = 0; !rc && i < pm_districts_count(ds); i++) {
        const char *id = pm_district_id(ds, i);
        size_t n = 0;
        unsigned char *wkb = GEOSWKBWriter_write_r(h, wr, pm_district_geom_borrow(ds, i), &n);
        if (!wkb) {
            rc = PM_ERR(ctx, PM_E_GEOM, "district %s: no WKB (%s)", id, pm_ctx_geos_msg(ctx));
            break;
        }
        XXH3_64bits_update(xs, id, strlen(id) + 1);
        XXH3_64bits_update(xs, wkb, n);
        GEOSFree_r(h, wkb);
    }
    *out = rc ? 0 : XXH3_64bits_digest(xs);
    XXH3_freeState(xs);
    if (wr)
        GEOSWKBWriter_destroy_r(h, wr);
    return rc;
}

/* The topic catalogue's fingerprint: its codes in order. */
static int topics_hash(pm_ctx *ctx, const pm_topics *t, uint64_t *out)
{
    XXH3_state_t *xs = XXH3_createState();
    if (!xs)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory hashing the topics");
    XXH3_64bits_reset(xs);
    for (size_t i = 0; i < pm_topics_count(t); i++) {
        const char *c = pm_topic_code(t, i);
        XXH3_64bits_update(xs, c, strlen(c) + 1);
    }
    *out = XXH3_64bits_digest(xs);
    XXH3_freeState(xs);
    return PM_OK;
}

/* The cube as section kCUB: its snapshot file's bytes, made in memory. */
static int put_cube(pm_ctx *ctx, pm_snap_writer *w, const pm_cube *cube, const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory writing the cube of %s", path);
    int rc = pm_cube_write_stream(ctx, cube, f, path);
    if (fclose(f) != 0)
        rc = rc ? rc : PM_ERR(ctx, PM_E_NOMEM, "out of memory writing the cube of %s", path);
    rc = rc ? rc : pm_snap_put(ctx, w, TAG_CUBE, buf, 1, len);
    free(buf);   /* open_memstream's: the C library's allocation */
    return rc;
}

int dataset_write(pm_ctx *ctx, dataset *d, const char *path)
{
    const place_run *r = &d->run;
    const pm_points *pts[2];
    uint64_t meta[META_N] = {(uint64_t)(int64_t)d->utc_offset_s, pm_complaints_count(r->cs),
                             pm_districts_count(r->ds), 0, pm_topics_count(r->t), 0,
                             r->ic.read, r->accepted, r->rejected};
    pm_snap_writer *w = NULL;
    int rc = dataset_points(ctx, d, PM_GRID_WEBMERC, &pts[0]);
    rc = rc ? rc : dataset_points(ctx, d, PM_GRID_WORLDMERC, &pts[1]);
    rc = rc ? rc : districts_hash(ctx, r->ds, &meta[M_DISTRICTS_HASH]);
    rc = rc ? rc : topics_hash(ctx, r->t, &meta[M_TOPICS_HASH]);
    rc = rc ? rc : pm_snap_writer_new(ctx, path, MAGIC, VERSION, &w);
    rc = rc ? rc : pm_snap_put(ctx, w, TAG_META, meta, sizeof *meta, META_N);
    rc = rc ? rc : pm_complaints_snap_write(ctx, r->cs, w);
    rc = rc ? rc : pm_placed_snap_write(ctx, r->pl, w);
    for (int g = 0; g < 2; g++)
        rc = rc ? rc : pm_points_snap_write(ctx, pts[g], w);
    rc = rc ? rc : put_cube(ctx, w, d->cube, path);
    if (rc) {
        pm_snap_writer_free(w);
        return cli_fail(ctx, "writing the dataset");
    }
    return pm_snap_writer_commit(ctx, w) ? cli_fail(ctx, "writing the dataset") : EXIT_OK;
}

/* The snapshot's counts and fingerprints against the districts and topics
 * given now. */
static int check_meta(pm_ctx *ctx, const pm_snap *s, const uint64_t *meta, const dataset *d)
{
    const char *path = pm_snap_path(s);
    uint64_t hash, topics;
    int rc = districts_hash(ctx, d->run.ds, &hash);
    rc = rc ? rc : topics_hash(ctx, d->run.t, &topics);
    if (rc)
        return rc;
    if (meta[M_DISTRICTS] != pm_districts_count(d->run.ds) || meta[M_DISTRICTS_HASH] != hash)
        return PM_ERR(ctx, PM_E_INPUT_VALUE, "%s was made with other boundaries (%" PRIu64
                      " districts) than these (%zu): make it again with `problemap dataset`",
                      path, meta[M_DISTRICTS], pm_districts_count(d->run.ds));
    if (meta[M_TOPICS] != pm_topics_count(d->run.t) || meta[M_TOPICS_HASH] != topics)
        return PM_ERR(ctx, PM_E_INPUT_VALUE, "%s was made with another topic catalogue (%" PRIu64
                      " topics) than this one (%zu): make it again with `problemap dataset`",
                      path, meta[M_TOPICS], pm_topics_count(d->run.t));
    int64_t off = (int64_t)meta[M_UTC_OFFSET];
    if (off < -86400 || off > 86400 || meta[M_ACCEPTED] > meta[M_READ] ||
        meta[M_REJECTED] > meta[M_READ])
        return pm_snap_damaged(ctx, s, TAG_META, "impossible offset or counts");
    return PM_OK;
}

/* The kept cube, when it is of period kind (else d->cube stays NULL, for
 * dataset_finish() to make). */
static int map_cube(pm_ctx *ctx, pm_snap *s, dataset *d, pm_period_kind kind)
{
    const unsigned char *p;
    size_t n;
    int rc = pm_snap_section(ctx, s, TAG_CUBE, 1, SIZE_MAX, (const void **)&p, &n);
    rc = rc ? rc : pm_cube_read_query_only_region(ctx, pm_snap_path(s), p, n, d->run.ds,
                                                  pm_topics_count(d->run.t), &d->cube);
    if (rc)
        return rc;
    const pm_cube_opts *o = pm_cube_options(d->cube);
    if (o->utc_offset_s != d->utc_offset_s)
        return pm_snap_damaged(ctx, s, TAG_CUBE, "a cube at UTC offset %ld s, the points at %ld s",
                               o->utc_offset_s, d->utc_offset_s);
    if (o->period != kind) {
        pm_cube_free(d->cube);
        d->cube = NULL;
    }
    return PM_OK;
}

/* The parts of d from s, read in place. */
static int map_parts(pm_ctx *ctx, pm_snap *s, dataset *d, long want_offset, int have_offset,
                     pm_period_kind kind)
{
    const uint64_t *meta;
    int rc = pm_snap_section(ctx, s, TAG_META, sizeof *meta, META_N, (const void **)&meta, NULL);
    rc = rc ? rc : check_meta(ctx, s, meta, d);
    if (rc)
        return rc;
    d->utc_offset_s = (long)(int64_t)meta[M_UTC_OFFSET];
    if (have_offset && want_offset != d->utc_offset_s)
        return PM_ERR(ctx, PM_E_USAGE, "%s counts days at UTC offset %ld s, not the %ld s of "
                      "--utc-offset: make it again with that offset", pm_snap_path(s),
                      d->utc_offset_s, want_offset);
    place_run *r = &d->run;
    size_t nt = pm_topics_count(r->t);
    r->ic.read = meta[M_READ];
    r->ic.accepted = r->accepted = meta[M_ACCEPTED];
    r->rejected = meta[M_REJECTED];
    rc = pm_complaints_snap_map(ctx, s, nt, &r->cs);
    if (!rc && pm_complaints_count(r->cs) != meta[M_COMPLAINTS])
        rc = pm_snap_damaged(ctx, s, TAG_META, "%" PRIu64 " complaints, the columns hold %zu",
                             meta[M_COMPLAINTS], pm_complaints_count(r->cs));
    rc = rc ? rc : pm_placed_snap_map(ctx, s, pm_complaints_count(r->cs),
                                      pm_districts_count(r->ds), &r->pl);
    for (int g = 0; g < 2; g++)
        rc = rc ? rc : pm_points_snap_map(ctx, s, (pm_grid)g, nt,
                                          pm_complaints_dict_count(r->cs, PM_DICT_SOURCE),
                                          &d->points[g]);
    return rc ? rc : map_cube(ctx, s, d, kind);
}

int dataset_open(pm_ctx *ctx, const place_opts *po, const char *path, const char *period,
                 dataset **out)
{
    pm_period_kind kind;
    dataset *d;
    int ex = dataset_alloc(period, &kind, &d);
    *out = NULL;
    if (ex)
        return ex;
    if (po->quiet)
        pm_ctx_set_log(ctx, cli_warn_log, (void *)&cli_quiet);
    ex = cli_load_districts(ctx, &po->b, &d->run.ds);
    ex = ex ? ex : cli_load_topics(ctx, po->topics, &d->run.t);
    if (!ex && (pm_snap_open(ctx, path, MAGIC, VERSION, &d->snap) ||
                map_parts(ctx, d->snap, d, po->utc_offset, po->have_offset, kind)))
        ex = cli_fail(ctx, "reading the dataset");
    ex = ex ? ex : dataset_finish(ctx, d, kind);
    if (ex) {
        dataset_free(ctx, d);
        return ex;
    }
    *out = d;
    return EXIT_OK;
}
