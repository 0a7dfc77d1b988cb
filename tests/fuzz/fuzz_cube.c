/* fuzz_cube.c — the cube snapshot reader (pm_cube_read) over three
 * districts "A", "B", "C" and three topics, as the seeds were written
 * (tests/fuzz/make_corpus.sh).  So that the fuzzer gets past the frame, the
 * input's file-size field and checksums are set to match it before
 * reading: version 1's CRC-32 of the file; version 2's hash of each
 * section the table places within the input, then the header's.  What is
 * fuzzed is everything behind the checksums.  A cube that reads is
 * queried, and its cells must add up to its total.  The reader for queries
 * (pm_cube_read_query_only) must read what pm_cube_read reads, and the same
 * cube; it may read a version 2 file that pm_cube_read refuses, for it
 * never reads the id hashes (then the refusal must be about them). */
#include "fuzz_util.h"
#include "../../engine/pm_cube.h"
#include "../../engine/pm_district.h"

#include <string.h>
#include <xxhash.h>

enum { HEADER_SIZE = 96, FILE_SIZE_AT = 16, N_TOPICS = 3,
       N_SECTIONS = 5, TABLE_AT = 96, HEADER_HASH_AT = TABLE_AT + 24 * N_SECTIONS };

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Version 2: every section the table places within the input, then the
 * header. */
static void reseal_v2(uint8_t *p, size_t size)
{
    if (size < HEADER_HASH_AT + 8)
        return;
    for (int i = 0; i < N_SECTIONS; i++) {
        uint64_t off = get_le(p + TABLE_AT + 24 * i, 8);
        uint64_t len = get_le(p + TABLE_AT + 24 * i + 8, 8);
        if (off <= size && len <= size - off)
            put_le(p + TABLE_AT + 24 * i + 16, XXH3_64bits(p + off, (size_t)len), 8);
    }
    put_le(p + HEADER_HASH_AT, XXH3_64bits(p, HEADER_HASH_AT), 8);
}

static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xFFFFFFFFu;
}

static pm_districts *three_districts(pm_ctx *ctx)
{
    static const char *const wkt[3] = {"POLYGON((0 0,1 0,1 1,0 1,0 0))",
                                       "POLYGON((1 0,2 0,2 1,1 1,1 0))",
                                       "POLYGON((2 0,3 0,3 1,2 1,2 0))"};
    static const char *const ids[3] = {"A", "B", "C"};
    GEOSContextHandle_t h = pm_ctx_geos(ctx);
    GEOSWKTReader *rd = GEOSWKTReader_create_r(h);
    pm_districts *ds = rd ? pm_districts_new(ctx) : NULL;
    int ok = ds != NULL;
    for (int i = 0; i < 3 && ok; i++) {
        GEOSGeometry *g = GEOSWKTReader_read_r(h, rd, wkt[i]);
        ok = g && pm_districts_add(ctx, ds, ids[i], NULL, "R", 1000, g) == PM_OK;
    }
    if (rd)
        GEOSWKTReader_destroy_r(h, rd);
    if (ok && pm_districts_freeze(ctx, ds) == PM_OK)
        return ds;
    pm_districts_free(ctx, ds);
    return NULL;
}

static int add_cell(void *user, const pm_cube_cell *c)
{
    *(uint64_t *)user += c->answered + c->open;
    return 0;
}

static void use_cube(pm_ctx *ctx, const pm_cube *cube)
{
    uint64_t sum = 0;
    pm_cube_each_cell(cube, add_cell, &sum);
    FUZZ_CHECK(sum == pm_cube_total(cube));
    pm_row *rows = NULL;
    size_t n = 0;
    if (pm_cube_query(ctx, cube, PM_LEVEL_DISTRICT, NULL, &rows, &n) == PM_OK)
        FUZZ_CHECK(n == 3);   /* one row per district, empty ones too */
    pm_free(rows);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    pm_ctx *ctx = copy ? pm_ctx_new() : NULL;
    pm_districts *ds = ctx ? three_districts(ctx) : NULL;
    int fd;
    char path[64];
    if (ds) {
        memcpy(copy, data, size);
        if (size >= HEADER_SIZE + 4) {
            put_le(copy + FILE_SIZE_AT, size, 8);
            if (get_le(copy + 8, 4) == 1)
                put_le(copy + size - 4, crc32_ieee(copy, size - 4), 4);
            else
                reseal_v2(copy, size);
        }
        if (fuzz_file(copy, size, &fd, path) == 0) {
            pm_cube *cube = NULL, *queried = NULL;
            int rc = pm_cube_read(ctx, path, ds, N_TOPICS, &cube);
            fuzz_check_status(ctx, rc);
            if (rc == PM_OK)
                use_cube(ctx, cube);
            /* the reader for queries checks the same bytes, but for the id
             * hashes: the same verdict, or a read where only those are bad */
            char why[512];
            snprintf(why, sizeof why, "%s", rc == PM_OK ? "" : pm_ctx_errmsg(ctx));
            int rq = pm_cube_read_query_only(ctx, path, ds, N_TOPICS, &queried);
            FUZZ_CHECK(rq == rc || (rq == PM_OK && get_le(copy + 8, 4) == 2 &&
                                    strstr(why, "id hashes")));
            if (rq == PM_OK && rc == PM_OK) {
                FUZZ_CHECK(pm_cube_total(queried) == pm_cube_total(cube));
                FUZZ_CHECK(pm_cube_cells(queried) == pm_cube_cells(cube));
            }
            if (rq == PM_OK)
                use_cube(ctx, queried);
            pm_cube_free(queried);
            pm_cube_free(cube);
            close(fd);
        }
    }
    pm_districts_free(ctx, ds);
    pm_ctx_free(ctx);
    free(copy);
    return 0;
}
