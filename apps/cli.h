/* cli.h — what the subcommands of the problemap program share: option
 * parsing of the boundary flags, data-file lookup, messages, exit codes.
 * Program code only; the library never includes this. */
#ifndef PM_CLI_H
#define PM_CLI_H

#include "../engine/pm_ctx.h"
#include "../engine/pm_district.h"
#include "../geodata/pm_boundaries.h"
#include "../geodata/pm_topics.h"

/* Exit statuses (docs/errors.md). */
enum { EXIT_OK = 0, EXIT_RUN = 1, EXIT_USAGE = 2 };

/* The boundary options every subcommand that reads boundaries takes. */
typedef struct cli_boundaries {
    const char *path;
    const char *regions_path;
    pm_boundary_opts opts;
    int quiet;               /* no report line */
} cli_boundaries;

/* Long options shared by subcommands, for getopt_long tables. */
enum {
    OPT_BOUNDARIES = 1000, OPT_REGIONS, OPT_ID_FIELD, OPT_NAME_FIELD, OPT_PARENT_FIELD,
    OPT_POPULATION_FIELD, OPT_CRS, OPT_NO_TOPOLOGY, OPT_TOPICS, OPT_UTC_OFFSET,
    OPT_FIRST_LOCAL
};
#define CLI_BOUNDARY_OPTIONS                                                   \
    {"boundaries", required_argument, 0, OPT_BOUNDARIES},                      \
    {"regions", required_argument, 0, OPT_REGIONS},                            \
    {"id-field", required_argument, 0, OPT_ID_FIELD},                          \
    {"name-field", required_argument, 0, OPT_NAME_FIELD},                      \
    {"parent-field", required_argument, 0, OPT_PARENT_FIELD},                  \
    {"population-field", required_argument, 0, OPT_POPULATION_FIELD},          \
    {"crs", required_argument, 0, OPT_CRS},                                    \
    {"no-topology-check", no_argument, 0, OPT_NO_TOPOLOGY}

/* Handles one of the boundary options; returns 1 if opt was one. */
int cli_boundary_option(cli_boundaries *b, int opt, const char *arg);
/* Reads, repairs, checks and freezes the districts; prints the report. */
int cli_load_districts(pm_ctx *ctx, const cli_boundaries *b, pm_districts **out);

/* Finds a shipped data file (topics.json, mappings/NAME.json):
 * $PROBLEMAP_DATA, then the build tree's data/, then the installed share
 * directory.  Returns a malloc'd path or NULL. */
char *cli_data_path(const char *rel);
int cli_load_topics(pm_ctx *ctx, const char *path, pm_topics **out);

/* "+07:00", "-5", "UTC+3", "0" → seconds east of UTC; -1 on error
 * (*ok == 0). */
long cli_parse_utc_offset(const char *s, int *ok);

/* Messages on stderr, prefixed "problemap: ".  The log callback for
 * pm_ctx_set_log(): with user == &cli_quiet (-q) only warnings are shown. */
extern const int cli_quiet;
void cli_warn_log(void *user, pm_log_level level, const char *msg);
int cli_fail(pm_ctx *ctx, const char *what);
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int cmd_geocode(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_topics(int argc, char **argv);
int cmd_cube(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_tiles(int argc, char **argv);
int cmd_db(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_dataset(int argc, char **argv);
int cmd_analyze(int argc, char **argv);

#endif
