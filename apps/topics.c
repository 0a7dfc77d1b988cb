/* topics.c — `problemap topics`: the catalogue as a table. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>

int cmd_topics(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"topics", required_argument, 0, OPT_TOPICS}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *path = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (opt == OPT_TOPICS)
            path = optarg;
        else if (opt == 'h') {
            puts("Usage: problemap topics [--topics FILE]\n\n"
                 "Lists the topic catalogue: index, code, colour, Russian and English names.");
            return EXIT_OK;
        } else
            return cli_usage_error("topics", "unknown option");
    }
    pm_ctx *ctx = pm_ctx_new();
    if (!ctx)
        return EXIT_RUN;
    pm_topics *t = NULL;
    int ex = cli_load_topics(ctx, path, &t);
    if (ex == EXIT_OK) {
        for (size_t i = 0; i < pm_topics_count(t); i++)
            printf("%zu\t%s\t%s\t%s\t%s\n", i, pm_topic_code(t, i), pm_topic_color(t, i),
                   pm_topic_name_ru(t, i), pm_topic_name_en(t, i));
        pm_topics_free(t);
    }
    pm_ctx_free(ctx);
    return ex;
}
