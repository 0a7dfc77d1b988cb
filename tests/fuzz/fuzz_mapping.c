/* fuzz_mapping.c — a column mapping file (pm_mapping_load) over the small
 * catalogue of fuzz_util.h, then an intake built with it reading one fixed
 * CSV record, so the mapping's time format and topics are used. */
#include "fuzz_util.h"

static const char RECORD[] = "Unique Key,Created Date,Latitude,Longitude,Complaint Type,id,"
                             "created_at,lat,lon,topic\n"
                             "1,03/01/2024 10:00:00 AM,55.75,37.61,Noise,2,2024-03-01,55.75,"
                             "37.61,roads\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pm_ctx *ctx = pm_ctx_new();
    if (!ctx)
        return 0;
    pm_topics *t = fuzz_topics(ctx);
    pm_mapping *m = NULL;
    pm_complaints *cs = pm_complaints_new();
    int fd;
    char path[64];
    if (t && cs && fuzz_file(data, size, &fd, path) == 0) {
        int rc = pm_mapping_load(ctx, path, t, &m);
        fuzz_check_status(ctx, rc);
        close(fd);
        pm_intake *in = NULL;
        FILE *f = fmemopen((void *)RECORD, sizeof RECORD - 1, "r");
        if (rc == PM_OK && f && pm_intake_new(ctx, t, m, cs, NULL, NULL, &in) == PM_OK) {
            fuzz_check_status(ctx, pm_csv_read(ctx, f, "in.csv", 0, pm_intake_sink(in), NULL));
            pm_intake_counts c = pm_intake_counts_get(in);
            FUZZ_CHECK(c.read == c.accepted + c.rejected);
        }
        if (f)
            fclose(f);
        pm_intake_free(in);
    }
    pm_mapping_free(m);
    pm_complaints_free(cs);
    pm_topics_free(t);
    pm_ctx_free(ctx);
    return 0;
}
