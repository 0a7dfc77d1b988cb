/* cli.c — helpers shared by the subcommands (see cli.h). */
#include "cli.h"
#include "../engine/pm_alloc.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PM_DATADIR
#define PM_DATADIR "/usr/local/share/problemap"
#endif

const int cli_quiet = 1;

void cli_warn_log(void *user, pm_log_level level, const char *msg)
{
    if (user == &cli_quiet && level == PM_LOG_INFO)
        return;
    fprintf(stderr, "problemap: %s%s\n", level == PM_LOG_WARN ? "warning: " : "", msg);
}

int cli_fail(pm_ctx *ctx, const char *what)
{
    fprintf(stderr, "problemap: %s: %s (%s)\n", what, pm_ctx_errmsg(ctx),
            pm_status_name(pm_ctx_errcode(ctx)));
    return pm_ctx_errcode(ctx) == PM_E_USAGE ? EXIT_USAGE : EXIT_RUN;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "problemap %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'problemap %s --help'.\n", cmd);
    va_end(ap);
    return EXIT_USAGE;
}

int cli_boundary_option(cli_boundaries *b, int opt, const char *arg)
{
    switch (opt) {
    case OPT_BOUNDARIES: b->path = arg; return 1;
    case OPT_REGIONS: b->regions_path = arg; return 1;
    case OPT_ID_FIELD: b->opts.id_field = arg; return 1;
    case OPT_NAME_FIELD: b->opts.name_field = arg; return 1;
    case OPT_PARENT_FIELD: b->opts.parent_field = arg; return 1;
    case OPT_POPULATION_FIELD: b->opts.population_field = arg; return 1;
    case OPT_CRS: b->opts.crs = arg; return 1;
    case OPT_NO_TOPOLOGY: b->opts.check_topology = 0; return 1;
    default: return 0;
    }
}

int cli_load_districts(pm_ctx *ctx, const cli_boundaries *b, pm_districts **out)
{
    *out = NULL;
    pm_districts *ds = pm_districts_new(ctx);
    if (!ds) {
        fprintf(stderr, "problemap: out of memory\n");
        return EXIT_RUN;
    }
    pm_boundary_report rep = {0};
    int rc = pm_boundaries_read_geojson(ctx, b->path, &b->opts, ds, &rep);
    if (rc == PM_OK && b->regions_path) {
        pm_boundary_opts ro = b->opts;
        ro.id_field = ro.name_field = ro.parent_field = ro.population_field = NULL;
        ro.check_topology = 0;
        rc = pm_boundaries_read_regions(ctx, b->regions_path, &ro, ds);
    }
    if (rc == PM_OK)
        rc = pm_districts_freeze(ctx, ds);
    if (rc != PM_OK) {
        pm_districts_free(ctx, ds);
        char what[PATH_MAX + 32];
        snprintf(what, sizeof what, "reading boundaries %s", b->path);
        return cli_fail(ctx, what);
    }
    if (!b->quiet)
        fprintf(stderr,
                "problemap: %s: %zu features, %zu districts in %zu regions, %zu repaired, %zu rejected\n",
                b->path, rep.features, pm_districts_count(ds), pm_regions_count(ds), rep.repaired,
                rep.rejected);
    *out = ds;
    return EXIT_OK;
}

static int readable(const char *p) { return access(p, R_OK) == 0; }

static char *join(const char *dir, const char *rel)
{
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = pm_malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, rel);
    return p;
}

char *cli_data_path(const char *rel)
{
    const char *env = getenv("PROBLEMAP_DATA");
    char *p;
    if (env && *env) {
        p = join(env, rel);
        if (p && readable(p))
            return p;
        pm_free(p);
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            const char *tries[] = {"/../data", "/../share/problemap"};
            for (size_t i = 0; i < 2; i++) {
                char dir[PATH_MAX + 32], real[PATH_MAX];
                snprintf(dir, sizeof dir, "%s%s", exe, tries[i]);
                if (!realpath(dir, real))
                    continue;
                p = join(real, rel);
                if (p && readable(p))
                    return p;
                pm_free(p);
            }
        }
    }
    p = join(PM_DATADIR, rel);
    if (p && readable(p))
        return p;
    pm_free(p);
    return NULL;
}

int cli_load_topics(pm_ctx *ctx, const char *path, pm_topics **out)
{
    char *found = NULL;
    if (!path) {
        found = cli_data_path("topics.json");
        if (!found) {
            fprintf(stderr, "problemap: cannot find the topic catalogue topics.json "
                            "(set PROBLEMAP_DATA or give --topics FILE)\n");
            return EXIT_RUN;
        }
        path = found;
    }
    int rc = pm_topics_load(ctx, path, out);
    pm_free(found);
    return rc == PM_OK ? EXIT_OK : cli_fail(ctx, "reading the topic catalogue");
}

long cli_parse_utc_offset(const char *s, int *ok)
{
    *ok = 0;
    if (strncmp(s, "UTC", 3) == 0)
        s += 3;
    if (!*s) {
        *ok = 1;
        return 0;
    }
    int sign = 1;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    if (!isdigit((unsigned char)*s))
        return -1;
    long h = 0, m = 0;
    int digits = 0;
    while (isdigit((unsigned char)*s) && digits < 4) {
        h = h * 10 + (*s++ - '0');
        digits++;
    }
    if (digits == 4) { /* +0700 */
        m = h % 100;
        h /= 100;
    } else if (digits == 3) {
        return -1;
    } else if (*s == ':') {
        s++;
        if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]))
            return -1;
        m = (s[0] - '0') * 10 + (s[1] - '0');
        s += 2;
    }
    if (*s || h > 14 || m > 59)
        return -1;
    *ok = 1;
    return sign * (h * 3600 + m * 60);
}
