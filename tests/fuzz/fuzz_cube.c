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

#include <string.h>
#include <xxhash.h>

enum { N_TOPICS = 3 };

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
    pm_districts *ds = ctx ? fuzz_three_districts(ctx) : NULL;
    int fd;
    char path[64];
    if (ds) {
        memcpy(copy, data, size);
        if (size >= FUZZ_CUBE_HEADER_V1 + 4) {
            if (fuzz_le_get(copy + 8, 4) == 1) {
                fuzz_le_put(copy + FUZZ_CUBE_FILE_SIZE_AT, size, 8);
                fuzz_le_put(copy + size - 4, crc32_ieee(copy, size - 4), 4);
            } else {
                fuzz_cube_reseal(copy, size);
            }
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
            FUZZ_CHECK(rq == rc || (rq == PM_OK && fuzz_le_get(copy + 8, 4) == 2 &&
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
