/* test_pipeline.c — the whole library pipeline on a small fixture, and the
 * same run with the Nth allocation failing, for every N until it succeeds.
 *
 * The pipeline (tests/fixtures/pipeline/, 9 districts and 174 complaints
 * over 12 weeks, written by gen.py there): boundaries read → complaints
 * read (CSV and NDJSON into one intake) → locate → weekly cube → GeoJSON,
 * CSV and summary out → snapshot write and read back → heat tile PNG →
 * choropleth tile PNG → Gi* over the districts → forecast → report PNG and
 * PDF into memory (pm_report_render), last because it is the slowest.
 *
 * The allocation-failure test (sqlite's and h3's approach): with
 * pm_alloc_fail_at(N) the Nth allocation and every later one fail; each
 * such run must stop with PM_E_NOMEM and a message, leave no temporary
 * (*.tmp.*) and no file of the stage that failed, and free everything
 * (ASan/LSan and valgrind see the leaks).  The normal run's figures are
 * checked first, so a pipeline that silently does nothing fails.
 *
 * Complaint texts and authors in the fixture hold canaries (CANARYTEXT,
 * CANARYAUTHOR): no output of the run may contain them.
 */
#include "../../engine/pm_alloc.h"
#include "../../engine/pm_cube.h"
#include "../../engine/pm_forecast.h"
#include "../../engine/pm_hotspot.h"
#include "../../engine/pm_locate.h"
#include "../../geodata/pm_boundaries.h"
#include "../../geodata/pm_complaints_in.h"
#include "../../geodata/pm_cube_out.h"
#include "../../render/pm_choro.h"
#include "../../render/pm_figure.h"
#include "../../render/pm_heat.h"
#include "../../render/pm_report.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#define FIX "tests/fixtures/pipeline/"
#define UTC7 25200L

/* The stages, in run order; a failed run says which one failed. */
typedef enum stage {
    ST_TOPICS, ST_BOUNDARIES, ST_INTAKE, ST_LOCATE, ST_CUBE, ST_QUERY, ST_GEOJSON, ST_CSV,
    ST_SUMMARY, ST_SNAPSHOT_WRITE, ST_SNAPSHOT_READ, ST_HEAT, ST_CHORO, ST_GISTAR, ST_FORECAST,
    ST_REPORT_PNG, ST_REPORT_PDF, ST_DONE
} stage;

static const char *const stage_names[] = {
    "topics", "boundaries", "intake", "locate", "cube", "query", "geojson", "csv",
    "summary", "snapshot write", "snapshot read", "heat tile", "choropleth tile", "gi*",
    "forecast", "report png", "report pdf", "done"};

/* The output file each writing stage makes (NULL: none). */
static const char *stage_file(stage s)
{
    switch (s) {
    case ST_GEOJSON: return "districts.geojson";
    case ST_CSV: return "districts.csv";
    case ST_SUMMARY: return "summary.json";
    case ST_SNAPSHOT_WRITE: return "cube.pmcube";
    default: return NULL;
    }
}

/* What a successful run found, checked against the fixture. */
typedef struct results {
    uint64_t read, accepted, rejected;
    size_t placed_inside;
    uint64_t cube_total, reread_total;
    size_t cells;
    uint64_t centre_count;       /* district P5 */
    uint64_t sum_district_counts;
    size_t heat_png_len, choro_png_len;
    int heat_empty, choro_empty;
    size_t forecast_rows, forecast_weeks;
    double centre_z;             /* Gi* z of P5 */
    double min_other_z;          /* the lowest z of the others (NAN if one is) */
    size_t gi_no_variance;
    size_t report_png_len, report_pdf_len;
    int report_png_magic, report_pdf_magic;
    int canary_in_memory;        /* a canary in a tile or report buffer */
} results;

static int count_reject(void *user, uint64_t line, const char *id, const char *field,
                        const char *reason)
{
    (void)line, (void)id, (void)field, (void)reason;
    (*(uint64_t *)user)++;
    return 0;
}

static int has_canary(const uint8_t *buf, size_t len)
{
    static const char *const marks[] = {"CANARYTEXT", "CANARYAUTHOR"};
    for (size_t m = 0; m < 2; m++) {
        size_t k = strlen(marks[m]);
        for (size_t i = 0; i + k <= len; i++)
            if (memcmp(buf + i, marks[m], k) == 0)
                return 1;
    }
    return 0;
}

/* With PM_PIPELINE_KEEP_DIR set, the in-memory images are written there
 * to be looked at. */
static void keep(const char *name, const uint8_t *buf, size_t len)
{
    const char *dir = getenv("PM_PIPELINE_KEEP_DIR");
    if (!dir)
        return;
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (f) {
        fwrite(buf, 1, len, f);
        fclose(f);
    }
}

static void tile_of(double lon, double lat, int z, uint32_t *x, uint32_t *y)
{
    double n = ldexp(1.0, z), r = lat * M_PI / 180;
    *x = (uint32_t)floor((lon + 180) / 360 * n);
    *y = (uint32_t)floor((1 - log(tan(r) + 1 / cos(r)) / M_PI) / 2 * n);
}

/* Everything the run holds, so one function frees it whatever stage it
 * reached. */
typedef struct run {
    pm_topics *topics;
    pm_districts *ds;
    pm_mapping *map;
    pm_complaints *cs;
    pm_intake *in;
    pm_locator *loc;
    pm_placed *pl;
    pm_cube *cube, *cube2;
    pm_row *rows;
    size_t n_rows;
    pm_points *pts;
    pm_heat_layer *heat;
    pm_choro *choro;
    pm_choro_layer *chl;
    pm_gistar *gi;
    pm_forecast *fc;
    uint8_t *buf;
} run;

static void run_free(pm_ctx *ctx, run *r)
{
    pm_free(r->buf);
    pm_forecast_free(r->fc);
    pm_gistar_free(r->gi);
    pm_choro_layer_free(r->chl);
    pm_choro_free(r->choro);
    pm_heat_layer_free(r->heat);
    pm_points_free(r->pts);
    pm_free(r->rows);
    pm_cube_free(r->cube2);
    pm_cube_free(r->cube);
    pm_placed_free(r->pl);
    if (r->loc)
        pm_locator_free(ctx, r->loc);
    pm_intake_free(r->in);
    pm_complaints_free(r->cs);
    pm_mapping_free(r->map);
    if (r->ds)
        pm_districts_free(ctx, r->ds);
    pm_topics_free(r->topics);
    memset(r, 0, sizeof *r);
}

static void path_in(char *buf, size_t n, const char *dir, const char *name)
{
    snprintf(buf, n, "%s/%s", dir, name);
}

static int stage_tiles(pm_ctx *ctx, run *r, results *res, stage *st)
{
    uint32_t tx, ty;
    tile_of(86.15, 55.45, 10, &tx, &ty);
    size_t len;
    int empty, rc;
    *st = ST_HEAT;
    if ((rc = pm_points_new(ctx, r->cs, r->pl, PM_GRID_WEBMERC, UTC7, &r->pts)))
        return rc;
    pm_heat_filter hf = {0};
    pm_heat_opts ho = {.kernel = PM_KERNEL_QUARTIC, .radius_m = 1500, .ramp = PM_RAMP_INFERNO};
    if ((rc = pm_heat_layer_new(ctx, r->pts, &hf, &ho, &r->heat)) ||
        (rc = pm_heat_tile_png(ctx, r->heat, 10, tx, ty, 256, &r->buf, &len, &empty)))
        return rc;
    res->heat_png_len = len, res->heat_empty = empty;
    res->canary_in_memory |= has_canary(r->buf, len);
    keep("heat_tile.png", r->buf, len);
    pm_free(r->buf);
    r->buf = NULL;

    *st = ST_CHORO;
    size_t n = pm_districts_count(r->ds);
    double values[16];
    for (size_t i = 0; i < n; i++)
        values[i] = (double)r->rows[i].count;
    if ((rc = pm_choro_new(ctx, r->ds, PM_GRID_WEBMERC, &r->choro)) ||
        (rc = pm_choro_layer_new(ctx, r->choro, pm_figure_find("complaints"), values, n, &r->chl)) ||
        (rc = pm_choro_tile_png(ctx, r->chl, 10, tx, ty, 256, &r->buf, &len, &empty)))
        return rc;
    res->choro_png_len = len, res->choro_empty = empty;
    res->canary_in_memory |= has_canary(r->buf, len);
    keep("choropleth_tile.png", r->buf, len);
    pm_free(r->buf);
    r->buf = NULL;
    return PM_OK;
}

static int stage_analysis(pm_ctx *ctx, run *r, results *res, stage *st)
{
    int rc;
    size_t n = pm_districts_count(r->ds);
    double values[16];
    for (size_t i = 0; i < n; i++)
        values[i] = (double)r->rows[i].count;
    *st = ST_GISTAR;
    pm_gistar_opts go = {0};
    if ((rc = pm_gistar_districts(ctx, r->ds, values, &go, &r->gi)))
        return rc;
    long centre = pm_districts_find(r->ds, "P5");
    res->centre_z = centre >= 0 ? r->gi->z[centre] : NAN;
    res->gi_no_variance = r->gi->n_no_variance;
    res->min_other_z = INFINITY;
    for (size_t i = 0; i < n; i++)
        if ((long)i != centre && !(r->gi->z[i] >= res->min_other_z))
            res->min_other_z = r->gi->z[i];

    *st = ST_FORECAST;
    if ((rc = pm_forecast_new(ctx, r->cube, NULL, &r->fc)))
        return rc;
    res->forecast_rows = r->fc->n_rows, res->forecast_weeks = r->fc->n_weeks;
    return PM_OK;
}

static int stage_report(pm_ctx *ctx, run *r, results *res, stage *st)
{
    pm_heat_filter hf = {0};
    pm_report_opts o = {.generated = "2025-03-24", .dpi = 50, .heat_cs = r->cs, .heat_pl = r->pl,
                        .heat_filter = &hf, .heat_utc_offset_s = UTC7};
    size_t len;
    int rc;
    *st = ST_REPORT_PNG;
    if ((rc = pm_report_render(ctx, "report.png", PM_REPORT_PNG, r->ds, r->cube, r->topics, NULL,
                               &o, &r->buf, &len)))
        return rc;
    res->report_png_len = len;
    res->report_png_magic = len > 8 && memcmp(r->buf, "\x89PNG", 4) == 0;
    res->canary_in_memory |= has_canary(r->buf, len);
    keep("report.png", r->buf, len);
    pm_free(r->buf);
    r->buf = NULL;
    *st = ST_REPORT_PDF;
    if ((rc = pm_report_render(ctx, "report.pdf", PM_REPORT_PDF, r->ds, r->cube, r->topics, NULL,
                               &o, &r->buf, &len)))
        return rc;
    res->report_pdf_len = len;
    res->report_pdf_magic = len > 8 && memcmp(r->buf, "%PDF-", 5) == 0;
    res->canary_in_memory |= has_canary(r->buf, len);
    pm_free(r->buf);
    r->buf = NULL;
    return PM_OK;
}

static int stage_outputs(pm_ctx *ctx, run *r, const char *dir, results *res, stage *st)
{
    char p[512];
    int rc;
    *st = ST_GEOJSON;
    path_in(p, sizeof p, dir, stage_file(ST_GEOJSON));
    if ((rc = pm_cube_write_geojson(ctx, p, r->ds, r->cube, PM_LEVEL_DISTRICT, r->rows,
                                    r->n_rows, NULL)))
        return rc;
    *st = ST_CSV;
    path_in(p, sizeof p, dir, stage_file(ST_CSV));
    if ((rc = pm_cube_write_csv(ctx, p, r->ds, r->cube, r->topics, PM_LEVEL_DISTRICT, r->rows,
                                r->n_rows, NULL)))
        return rc;
    *st = ST_SUMMARY;
    path_in(p, sizeof p, dir, stage_file(ST_SUMMARY));
    if ((rc = pm_cube_write_summary(ctx, p, r->ds, r->cube, r->topics, NULL)))
        return rc;
    *st = ST_SNAPSHOT_WRITE;
    path_in(p, sizeof p, dir, stage_file(ST_SNAPSHOT_WRITE));
    if ((rc = pm_cube_write(ctx, r->cube, p)))
        return rc;
    *st = ST_SNAPSHOT_READ;
    if ((rc = pm_cube_read(ctx, p, r->ds, pm_topics_count(r->topics), &r->cube2)))
        return rc;
    res->reread_total = pm_cube_total(r->cube2);
    return PM_OK;
}

static int stage_inputs(pm_ctx *ctx, run *r, results *res, stage *st)
{
    int rc;
    *st = ST_TOPICS;
    if ((rc = pm_topics_load(ctx, "data/topics.json", &r->topics)))
        return rc;
    *st = ST_BOUNDARIES;
    if (!(r->ds = pm_districts_new(ctx)))
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory (districts)");
    pm_boundary_opts bo = {.check_topology = 1};
    if ((rc = pm_boundaries_read_geojson(ctx, FIX "boundaries.geojson", &bo, r->ds, NULL)) ||
        (rc = pm_districts_freeze(ctx, r->ds)))
        return rc;
    *st = ST_INTAKE;
    if (!(r->cs = pm_complaints_new()))
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory (complaints)");
    if ((rc = pm_mapping_default(ctx, &r->map)))
        return rc;
    pm_mapping_set_utc_offset(r->map, UTC7);
    if ((rc = pm_intake_new(ctx, r->topics, r->map, r->cs, count_reject, &res->rejected, &r->in)) ||
        (rc = pm_intake_read_path(ctx, r->in, FIX "complaints.csv", PM_FMT_AUTO)) ||
        (rc = pm_intake_read_path(ctx, r->in, FIX "complaints.ndjson", PM_FMT_AUTO)))
        return rc;
    pm_intake_counts c = pm_intake_counts_get(r->in);
    res->read = c.read, res->accepted = c.accepted;
    return PM_OK;
}

/* The whole run; *st is the stage reached (ST_DONE on success). */
static int pipeline(pm_ctx *ctx, const char *dir, results *res, stage *st)
{
    run r = {0};
    memset(res, 0, sizeof *res);
    int rc = stage_inputs(ctx, &r, res, st);
    if (rc)
        goto done;
    *st = ST_LOCATE;
    if ((rc = pm_locator_new(ctx, r.ds, -1, &r.loc)) ||
        (rc = pm_locate_batch(ctx, r.loc, r.cs, 2, &r.pl)))
        goto done;
    res->placed_inside = r.pl->counts[PM_PLACE_INSIDE];
    *st = ST_CUBE;
    pm_cube_opts co = {.period = PM_PERIOD_WEEK, .utc_offset_s = UTC7};
    if ((rc = pm_cube_new(ctx, r.ds, pm_topics_count(r.topics), &co, &r.cube)) ||
        (rc = pm_cube_add(ctx, r.cube, r.cs, r.pl, NULL, NULL, NULL)))
        goto done;
    res->cube_total = pm_cube_total(r.cube);
    res->cells = pm_cube_cells(r.cube);
    *st = ST_QUERY;
    if ((rc = pm_cube_query(ctx, r.cube, PM_LEVEL_DISTRICT, NULL, &r.rows, &r.n_rows)))
        goto done;
    for (size_t i = 0; i < r.n_rows; i++) {
        res->sum_district_counts += r.rows[i].count;
        if (strcmp(pm_district_id(r.ds, r.rows[i].key), "P5") == 0)
            res->centre_count = r.rows[i].count;
    }
    if ((rc = stage_outputs(ctx, &r, dir, res, st)) || (rc = stage_tiles(ctx, &r, res, st)) ||
        (rc = stage_analysis(ctx, &r, res, st)) || (rc = stage_report(ctx, &r, res, st)))
        goto done;
    *st = ST_DONE;
done:
    run_free(ctx, &r);
    return rc;
}

/* ---- the output directory ------------------------------------------------------- */

static void make_dir(char *dir, size_t n)
{
    snprintf(dir, n, "/tmp/pm_pipeline_XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            path_in(p, sizeof p, dir, e->d_name);
            unlink(p);
        }
    closedir(d);
}

/* Fails on a temporary left behind or a name no stage writes; returns
 * the number of files. */
static int check_dir_clean(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (strstr(e->d_name, ".tmp."))
            fail_msg("temporary file left behind: %s/%s", dir, e->d_name);
        int known = 0;
        for (stage s = 0; s < ST_DONE; s++)
            known |= stage_file(s) && strcmp(stage_file(s), e->d_name) == 0;
        if (!known)
            fail_msg("unexpected file %s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

static int file_exists(const char *dir, const char *name)
{
    char p[512];
    struct stat sb;
    path_in(p, sizeof p, dir, name);
    return stat(p, &sb) == 0;
}

static int file_has_canary(const char *dir, const char *name)
{
    char p[512];
    path_in(p, sizeof p, dir, name);
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    static uint8_t buf[1 << 20];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return has_canary(buf, len);
}

/* ---- tests ----------------------------------------------------------------------- */

static void full_run_gives_the_fixture_figures(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    char dir[64];
    make_dir(dir, sizeof dir);
    results res;
    stage st;
    int rc = pipeline(ctx, dir, &res, &st);
    if (rc)
        fail_msg("stage %s: %s", stage_names[st], pm_ctx_errmsg(ctx));
    assert_int_equal(st, ST_DONE);
    /* gen.py: 174 complaints, all valid, inside the 3 x 3 grid. */
    assert_int_equal(res.read, 174);
    assert_int_equal(res.accepted, 174);
    assert_int_equal(res.rejected, 0);
    assert_int_equal(res.placed_inside, 174);
    assert_int_equal(res.cube_total, 174);
    assert_int_equal(res.reread_total, 174);
    assert_int_equal(res.sum_district_counts, 174);
    assert_true(res.cells > 9);
    /* 40 % of the points fall in the centre square on top of its 1/9 share. */
    assert_true(res.centre_count > 174 / 3);
    /* Gi*: the centre's queen neighbourhood is every district, so its z is
     * undefined; every other district borders the busy centre: z > 0. */
    assert_true(isnan(res.centre_z));
    assert_int_equal(res.gi_no_variance, 1);
    assert_true(res.min_other_z > 0.3);
    assert_int_equal(res.heat_empty, 0);
    assert_int_equal(res.choro_empty, 0);
    assert_true(res.heat_png_len > 100 && res.choro_png_len > 100);
    assert_true(res.forecast_weeks >= 12);
    assert_true(res.forecast_rows >= 9);
    assert_true(res.report_png_magic && res.report_pdf_magic);
    assert_true(res.report_png_len > 10000 && res.report_pdf_len > 1000);
    assert_int_equal(res.canary_in_memory, 0);
    /* Every output file is there, and none holds a complaint's text or author. */
    assert_int_equal(check_dir_clean(dir), 4);
    for (stage s = 0; s < ST_DONE; s++)
        if (stage_file(s))
            assert_int_equal(file_has_canary(dir, stage_file(s)), 0);
    empty_dir(dir);
    rmdir(dir);
    pm_ctx_free(ctx);
}

/* PM_PIPELINE_FAIL_STEP=k tries every kth N only (valgrind runs use it:
 * the full loop is thousands of runs). */
static long fail_step(void)
{
    const char *s = getenv("PM_PIPELINE_FAIL_STEP");
    long k = s ? strtol(s, NULL, 10) : 1;
    return k > 0 ? k : 1;
}

static void every_allocation_failure_is_a_clean_error(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    char dir[64];
    make_dir(dir, sizeof dir);
    results res;
    long failures = 0, step = fail_step();
    int stages_failed[ST_DONE + 1] = {0};
    for (long n = 1;; n += step) {
        stage st = ST_TOPICS;
        empty_dir(dir);
        pm_ctx_clear_error(ctx);
        pm_alloc_fail_at(n);
        int rc = pipeline(ctx, dir, &res, &st);
        pm_alloc_fail_at(0);
        if (rc == PM_OK) {
            assert_int_equal(st, ST_DONE);
            assert_int_equal(res.cube_total, 174);
            break;
        }
        failures++;
        stages_failed[st]++;
        if (rc != PM_E_NOMEM)
            fail_msg("allocation %ld, stage %s: status %d (%s), not out of memory: %s", n,
                     stage_names[st], rc, pm_status_name(rc), pm_ctx_errmsg(ctx));
        if (pm_ctx_errcode(ctx) != PM_E_NOMEM || !pm_ctx_errmsg(ctx)[0])
            fail_msg("allocation %ld, stage %s: the error record says %d \"%s\"", n,
                     stage_names[st], pm_ctx_errcode(ctx), pm_ctx_errmsg(ctx));
        check_dir_clean(dir);
        if (stage_file(st) && file_exists(dir, stage_file(st)))
            fail_msg("allocation %ld: stage %s failed but left %s", n, stage_names[st],
                     stage_file(st));
    }
    /* Every stage allocates, so with step 1 every one must have failed. */
    if (step == 1)
        for (stage s = 0; s < ST_DONE; s++)
            if (!stages_failed[s])
                fail_msg("no allocation failure in stage %s", stage_names[s]);
    assert_true(failures * step > 100);
    print_message("%ld allocation failures, all clean; per stage:", failures);
    for (stage s = 0; s < ST_DONE; s++)
        print_message(" %s %d%s", stage_names[s], stages_failed[s], s + 1 < ST_DONE ? "," : "\n");
    empty_dir(dir);
    rmdir(dir);
    pm_ctx_free(ctx);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_run_gives_the_fixture_figures),
        cmocka_unit_test(every_allocation_failure_is_a_clean_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
