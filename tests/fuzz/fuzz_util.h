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
#include "../../geodata/pm_complaints_in.h"
#include "../../geodata/pm_topics.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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

#endif
