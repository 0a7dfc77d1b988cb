/* fuzz_topics.c — the topic catalogue (pm_topics_load), then a look-up of
 * every topic by its code and names. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pm_ctx *ctx = pm_ctx_new();
    if (!ctx)
        return 0;
    int fd;
    char path[64];
    if (fuzz_file(data, size, &fd, path) == 0) {
        pm_topics *t = NULL;
        int rc = pm_topics_load(ctx, path, &t);
        fuzz_check_status(ctx, rc);
        if (rc == PM_OK) {
            for (size_t i = 0; i < pm_topics_count(t); i++) {
                FUZZ_CHECK(pm_topics_find(t, pm_topic_code(t, i)) == (long)i);
                pm_topics_find(t, pm_topic_name_ru(t, i));
                pm_topics_find(t, pm_topic_name_en(t, i));
                FUZZ_CHECK(strlen(pm_topic_color(t, i)) == 7);
            }
        }
        pm_topics_free(t);
        close(fd);
    }
    pm_ctx_free(ctx);
    return 0;
}
