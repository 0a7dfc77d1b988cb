/* fuzz_util.h — what the fuzz targets share: the input as a file (an
 * in-memory memfd, named /proc/self/fd/N, since most readers take a path),
 * a fresh context per input, a small topic catalogue, and an intake that
 * checks read = accepted + rejected.  Test code, included by each target. */
#ifndef PM_FUZZ_UTIL_H
#define PM_FUZZ_UTIL_H
#define _GNU_SOURCE   /* memfd_create */
#include "../../engine/pm_alloc.h"
#include "../../engine/pm_complaint.h"
#include "../../engine/pm_ctx.h"
#include "../../engine/pm_district.h"
#include "../../geodata/pm_complaints_in.h"
#include "../../geodata/pm_topics.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as a file: *fd is the memfd (close it), path its name.
 * Returns 0, or -1 when the memfd could not be made (the input is skipped). */
static inline int fuzz_file(const uint8_t *data, size_t size, int *fd, char path[64])
{
    *fd = memfd_create("pm-fuzz", 0);
    if (*fd < 0)
        return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(*fd, data + done, size - done);
        if (n <= 0) {
            close(*fd);
            return -1;
        }
        done += (size_t)n;
    }
    snprintf(path, 64, "/proc/self/fd/%d", *fd);
    return 0;
}

/* A finding that the sanitizers would not see: stop loudly. */
#define FUZZ_CHECK(cond)                                                          \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                              \
        }                                                                         \
    } while (0)

/* Every error leaves a message (printed with PM_FUZZ_VERBOSE=1). */
static inline void fuzz_check_status(const pm_ctx *ctx, int rc)
{
    if (getenv("PM_FUZZ_VERBOSE"))
        fprintf(stderr, "status %d: %s\n", rc, pm_ctx_errmsg(ctx));
    if (rc != PM_OK)
        FUZZ_CHECK(pm_ctx_errmsg(ctx)[0] != '\0');
}

/* A catalogue of three topics, with an alias in Russian. */
static const char FUZZ_TOPICS[] =
    "{\"version\": 1, \"topics\": ["
    "{\"code\": \"housing\", \"name_ru\": \"ЖКХ\", \"name_en\": \"Housing\", \"color\": \"#1f77b4\","
    " \"aliases\": [\"жилищно-коммунальное хозяйство\"]},"
    "{\"code\": \"roads\", \"name_ru\": \"Дороги\", \"name_en\": \"Roads\", \"color\": \"#ff7f0e\"},"
    "{\"code\": \"other\", \"name_ru\": \"Прочее\", \"name_en\": \"Other\", \"color\": \"#7f7f7f\"}]}";

static inline pm_topics *fuzz_topics(pm_ctx *ctx)
{
    int fd;
    char path[64];
    pm_topics *t = NULL;
    if (fuzz_file((const uint8_t *)FUZZ_TOPICS, sizeof FUZZ_TOPICS - 1, &fd, path) != 0)
        return NULL;
    if (pm_topics_load(ctx, path, &t) != PM_OK)
        t = NULL;
    close(fd);
    return t;
}

/* The input read as complaints of format fmt, through the intake with the
 * built-in mapping; checks that nothing is lost on the way. */
static inline int fuzz_complaints(const uint8_t *data, size_t size, pm_input_format fmt)
{
    pm_ctx *ctx = pm_ctx_new();
    if (!ctx)
        return 0;
    pm_topics *t = fuzz_topics(ctx);
    pm_mapping *m = NULL;
    pm_complaints *cs = pm_complaints_new();
    pm_intake *in = NULL;
    int fd = -1;
    char path[64];
    if (t && cs && pm_mapping_default(ctx, &m) == PM_OK &&
        pm_intake_new(ctx, t, m, cs, NULL, NULL, &in) == PM_OK &&
        fuzz_file(data, size, &fd, path) == 0) {
        FILE *f = fopen(path, "rb");
        if (f) {
            int rc = fmt == PM_FMT_CSV ? pm_csv_read(ctx, f, "in.csv", 0, pm_intake_sink(in), NULL)
                                       : pm_json_read(ctx, f, "in.json", fmt, pm_intake_sink(in));
            fuzz_check_status(ctx, rc);
            fclose(f);
            pm_intake_counts c = pm_intake_counts_get(in);
            FUZZ_CHECK(c.read == c.accepted + c.rejected);
            FUZZ_CHECK(c.accepted == pm_complaints_count(cs));
        }
        close(fd);
    }
    pm_intake_free(in);
    pm_complaints_free(cs);
    pm_mapping_free(m);
    pm_topics_free(t);
    pm_ctx_free(ctx);
    return 0;
}

/* Districts "A", "B", "C": the 1° squares east of (0, 0), as the cube and
 * dataset seeds were made over (tests/fuzz/make_corpus.sh); NULL on failure. */
static inline pm_districts *fuzz_three_districts(pm_ctx *ctx)
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

/* Little-endian fields of n bytes. */
static inline void fuzz_le_put(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t fuzz_le_get(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* The cube snapshot's frame (engine/cube_io.c, docs/cube.md). */
enum { FUZZ_CUBE_HEADER_V1 = 96, FUZZ_CUBE_FILE_SIZE_AT = 16, FUZZ_CUBE_SECTIONS = 5,
       FUZZ_CUBE_TABLE_AT = 96, FUZZ_CUBE_HASH_AT = FUZZ_CUBE_TABLE_AT + 24 * FUZZ_CUBE_SECTIONS };

/* A version 2 cube snapshot of size bytes made to pass its frame's checks:
 * its size field, the XXH3-64 of every section the table places within it,
 * then the header's; so that a fuzzer gets behind them. */
static inline void fuzz_cube_reseal(uint8_t *p, size_t size)
{
    if (size < FUZZ_CUBE_HASH_AT + 8)
        return;
    fuzz_le_put(p + FUZZ_CUBE_FILE_SIZE_AT, size, 8);
    for (int i = 0; i < FUZZ_CUBE_SECTIONS; i++) {
        uint8_t *e = p + FUZZ_CUBE_TABLE_AT + 24 * i;
        uint64_t off = fuzz_le_get(e, 8), len = fuzz_le_get(e + 8, 8);
        if (off <= size && len <= size - off)
            fuzz_le_put(e + 16, XXH3_64bits(p + off, (size_t)len), 8);
    }
    fuzz_le_put(p + FUZZ_CUBE_HASH_AT, XXH3_64bits(p, FUZZ_CUBE_HASH_AT), 8);
}

#endif
