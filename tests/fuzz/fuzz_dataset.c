/* fuzz_dataset.c — the map's dataset snapshot (pm_snap_open and the parts'
 * readers: pm_complaints_snap_map, pm_placed_snap_map, pm_points_snap_map
 * for both grids) over three districts and the three-topic catalogue, as
 * the seeds were written (`problemap dataset`, tests/fuzz/make_corpus.sh).
 * So that the fuzzer gets past the frame, the input's size field and the
 * checksums of every section the table places within it, then the
 * header's, are set to match before reading: what is fuzzed is everything
 * behind them.  What reads is used as the map uses it: the heat map's
 * points are made again from the complaints and their placement, and a
 * cube of them must count every complaint placed in a district, and the
 * cube kept in the snapshot (kCUB, read in place, its own frame resealed
 * too) must add up to its total. */
#include "fuzz_util.h"
#include "../../engine/pm_cube.h"
#include "../../engine/pm_snap.h"
#include "../../render/pm_heat.h"


static const char MAGIC[8] = {'P', 'M', 'D', 'A', 'T', 'A', 0, 0};
enum { VERSION = 1, N_TOPICS = 3, HEADER_SIZE = 4096, FILE_SIZE_AT = 16, TABLE_AT = 24,
       HEADER_HASH_AT = TABLE_AT + PM_SNAP_MAX_SECTIONS * 32 };

/* The snapshot made to pass its frame's checks: its size field, the cube
 * kept inside it (kCUB: its own frame), then every section's XXH3-64 and
 * the header's. */
static void reseal(uint8_t *p, size_t size)
{
    fuzz_le_put(p + FILE_SIZE_AT, size, 8);
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < PM_SNAP_MAX_SECTIONS; i++) {
            uint8_t *e = p + TABLE_AT + 32 * i;
            uint64_t off = fuzz_le_get(e + 8, 8), len = fuzz_le_get(e + 16, 8);
            if (off > size || len > size - off)
                continue;
            if (pass == 0 && fuzz_le_get(e, 4) == PM_SNAP_TAG('k', 'C', 'U', 'B'))
                fuzz_cube_reseal(p + off, (size_t)len);
            if (pass == 1)
                fuzz_le_put(e + 24, XXH3_64bits(p + off, (size_t)len), 8);
        }
    fuzz_le_put(p + HEADER_HASH_AT, XXH3_64bits(p, HEADER_HASH_AT), 8);
}

static int add_cell(void *user, const pm_cube_cell *c)
{
    *(uint64_t *)user += c->answered + c->open;
    return 0;
}

static void use_kept_cube(pm_ctx *ctx, pm_snap *s, const pm_districts *ds)
{
    const unsigned char *p;
    size_t n;
    pm_cube *cube = NULL;
    if (pm_snap_section(ctx, s, PM_SNAP_TAG('k', 'C', 'U', 'B'), 1, SIZE_MAX, (const void **)&p, &n) ||
        pm_cube_read_query_only_region(ctx, "kCUB", p, n, ds, N_TOPICS, &cube))
        return;
    uint64_t sum = 0;
    pm_cube_each_cell(cube, add_cell, &sum);
    FUZZ_CHECK(sum == pm_cube_total(cube));
    pm_cube_free(cube);
}

static void use(pm_ctx *ctx, const pm_districts *ds, const pm_complaints *cs, const pm_placed *pl)
{
    pm_points *pts = NULL;
    if (pm_points_new(ctx, cs, pl, PM_GRID_WORLDMERC, 0, &pts) == PM_OK)
        FUZZ_CHECK(pm_points_count(pts) <= pm_complaints_count(cs));
    pm_points_free(pts);
    pm_cube_opts o = {PM_PERIOD_WEEK, 0};
    pm_cube *cube = NULL;
    uint64_t added = 0;
    if (pm_cube_new(ctx, ds, N_TOPICS, &o, &cube) == PM_OK && pm_cube_keep_no_ids(ctx, cube) == PM_OK &&
        pm_cube_add_range(ctx, cube, cs, pl, 0, pm_complaints_count(cs), NULL, NULL, &added) == PM_OK) {
        size_t in = 0;
        for (int k = 0; k < PM_PLACE_N; k++)
            in += pm_placement_in_district((unsigned)k) ? pl->counts[k] : 0;
        FUZZ_CHECK(pm_cube_total(cube) == in);
    }
    pm_cube_free(cube);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    pm_ctx *ctx = copy ? pm_ctx_new() : NULL;
    pm_districts *ds = ctx ? fuzz_three_districts(ctx) : NULL;
    int fd;
    char path[64];
    if (ds) {
        memcpy(copy, data, size);
        if (size >= HEADER_SIZE)
            reseal(copy, size);
        if (fuzz_file(copy, size, &fd, path) == 0) {
            pm_snap *s = NULL;
            pm_complaints *cs = NULL;
            pm_placed *pl = NULL;
            pm_points *pts[2] = {NULL, NULL};
            int rc = pm_snap_open(ctx, path, MAGIC, VERSION, &s);
            rc = rc ? rc : pm_complaints_snap_map(ctx, s, N_TOPICS, &cs);
            rc = rc ? rc : pm_placed_snap_map(ctx, s, pm_complaints_count(cs), 3, &pl);
            for (int g = 0; g < 2; g++)
                rc = rc ? rc : pm_points_snap_map(ctx, s, (pm_grid)g, N_TOPICS,
                                                  pm_complaints_dict_count(cs, PM_DICT_SOURCE), &pts[g]);
            fuzz_check_status(ctx, rc);
            if (rc == PM_OK)
                use(ctx, ds, cs, pl);
            if (s)
                use_kept_cube(ctx, s, ds);
            for (int g = 0; g < 2; g++)
                pm_points_free(pts[g]);
            pm_placed_free(pl);
            pm_complaints_free(cs);
            pm_snap_free(s);
            close(fd);
        }
    }
    pm_districts_free(ctx, ds);
    pm_ctx_free(ctx);
    free(copy);
    return 0;
}
