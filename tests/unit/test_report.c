/* test_report.c — the one-page report (render/report.c): PNG, PDF and SVG
 * are written and valid (PNG decoded at the requested size, PDF converted
 * by pdftoppm, SVG looks like SVG); Cyrillic is drawn as glyphs (tesseract
 * reads Russian words off the PNG); the layout holds for 2 districts, the
 * 127 units of Moscow and the 86 regions of Russia (the page margins and
 * the gutter between map and side panel stay white); a golden PNG of a
 * small fixed scene compared on decoded pixels; every figure, suppressed
 * rows, an empty cube; usage and I/O errors; allocation failures.  The
 * analytics page (emerging hot spots, surge alerts): a second PDF page,
 * stacked under the report on a PNG or SVG sheet twice as high with the
 * report's page unchanged, its own golden image, its text read back
 * (pdftotext, tesseract), empty lists, more rows than shown, bad rows,
 * allocation failures.
 *
 * Scenes are built the way the program builds them: districts from WKT or
 * GeoJSON, seeded synthetic complaints, pm_locate_batch, pm_cube_add.
 * Runs from the repository root.  PM_REGEN_GOLDEN=1 rewrites the golden
 * image; PM_REPORT_KEEP_DIR=dir keeps every rendered page there (to look
 * at them).  Tests that need ../shared/data, tesseract or pdftoppm skip
 * with a message when those are absent.  An optional argument is a cmocka
 * test filter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../engine/pm_alloc.h"
#include "../../engine/pm_complaint.h"
#include "../../engine/pm_ctx.h"
#include "../../engine/pm_cube.h"
#include "../../engine/pm_district.h"
#include "../../engine/pm_hotspot.h"
#include "../../engine/pm_locate.h"
#include "../../geodata/pm_boundaries.h"
#include "../../geodata/pm_topics.h"
#include "../../render/pm_report.h"

#include <cairo.h>
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOPICS_JSON "data/topics.json"
#define GOLDEN "tests/fixtures/report/golden_small.png"
#define GOLDEN_HEAT "tests/fixtures/report/golden_heat.png"
#define GOLDEN_ANALYTICS "tests/fixtures/report/golden_analytics.png"
#define OUT_DIR "build/test-output"
#define SHARED "../shared/data/"
#define HOUR 3600
#define DAY 86400
#define T0 1762102800LL    /* 2025-11-03T00:00:00+07:00, Monday of 2025-W45 */
#define OFFSET (7L * HOUR) /* Kemerovo */

/* ---- scenes ------------------------------------------------------------ */

typedef struct scene {
    pm_ctx *ctx;
    pm_districts *ds;
    pm_topics *topics;
    pm_cube *cube;
    pm_complaints *cs;   /* the complaints of the cube, kept for the heat layer */
    pm_placed *pl;
    size_t n_made;       /* complaints made so far (their ids) */
    char dir[64];
    char path[160];
} scene;

static int setup(void **state)
{
    scene *s = calloc(1, sizeof *s);
    s->ctx = pm_ctx_new();
    s->ds = pm_districts_new(s->ctx);
    strcpy(s->dir, "/tmp/pm_test_report_XXXXXX");
    if (!s->ctx || !s->ds || !mkdtemp(s->dir) ||
        pm_topics_load(s->ctx, TOPICS_JSON, &s->topics) != PM_OK)
        return -1;
    *state = s;
    return 0;
}

static int files_in_dir(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static int teardown(void **state)
{
    scene *s = *state;
    DIR *d = opendir(s->dir);
    char p[400];
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", s->dir, e->d_name);
            unlink(p);
        }
    if (d)
        closedir(d);
    rmdir(s->dir);
    pm_cube_free(s->cube);
    pm_placed_free(s->pl);
    pm_complaints_free(s->cs);
    pm_topics_free(s->topics);
    pm_districts_free(s->ctx, s->ds);
    pm_ctx_free(s->ctx);
    free(s);
    return 0;
}

static const char *out_path(scene *s, const char *name)
{
    snprintf(s->path, sizeof s->path, "%s/%s", s->dir, name);
    return s->path;
}

static void add_wkt(scene *s, const char *id, const char *name, double pop, const char *wkt)
{
    GEOSContextHandle_t h = pm_ctx_geos(s->ctx);
    GEOSWKTReader *r = GEOSWKTReader_create_r(h);
    GEOSGeometry *g = GEOSWKTReader_read_r(h, r, wkt);
    GEOSWKTReader_destroy_r(h, r);
    assert_non_null(g);
    assert_int_equal(pm_districts_add(s->ctx, s->ds, id, name, "RU-TST", pop, g), PM_OK);
}

/* Three districts near Kemerovo: one with a hole, the enclave filling it
 * (a long name, to be shortened), and a northern one. */
static void three_districts(scene *s)
{
    add_wkt(s, "RU-TST-001", "Центральный район", 52000,
            "POLYGON((86 55, 86.7 55, 86.7 55.4, 86 55.4, 86 55),"
            "(86.25 55.12, 86.45 55.12, 86.45 55.28, 86.25 55.28, 86.25 55.12))");
    add_wkt(s, "RU-TST-002", "Северный городской округ", 18000,
            "POLYGON((86 55.4, 86.7 55.4, 86.95 55.75, 86.3 55.9, 86 55.4))");
    add_wkt(s, "RU-TST-003",
            "Южно-Заречный муниципальный округ имени очень длинного названия", 240000,
            "POLYGON((86.25 55.12, 86.45 55.12, 86.45 55.28, 86.25 55.28, 86.25 55.12))");
    assert_int_equal(pm_districts_freeze(s->ctx, s->ds), PM_OK);
}

/* Two districts, one with a name far too long for any column. */
static void two_districts(scene *s)
{
    add_wkt(s, "A", "Верхне-Среднекамский муниципальный округ Пермского края с очень длинным "
                    "официальным наименованием",
            30000, "POLYGON((60 58, 61 58, 61 59, 60 59, 60 58))");
    add_wkt(s, "B", "Б", 2000, "POLYGON((61 58, 62 58, 62 59, 61 59, 61 58))");
    assert_int_equal(pm_districts_freeze(s->ctx, s->ds), PM_OK);
}

/* Reads a GeoJSON file of districts; 0 (and a message) when it is absent. */
static int read_districts(scene *s, const char *path)
{
    if (access(path, R_OK) != 0) {
        print_message("skipped: %s is not here\n", path);
        return 0;
    }
    assert_int_equal(pm_boundaries_read_geojson(s->ctx, path, NULL, s->ds, NULL), PM_OK);
    assert_int_equal(pm_districts_freeze(s->ctx, s->ds), PM_OK);
    return 1;
}

static uint64_t rnd(uint64_t *st)
{
    *st ^= *st >> 12;
    *st ^= *st << 25;
    *st ^= *st >> 27;
    return *st * 2685821657736338717ULL;
}

static double unit(uint64_t *st) { return (double)(rnd(st) >> 11) / 9007199254740992.0; }

/* Complaint k of the scene: created in the four weeks from T0, topics
 * skewed, 90 % answered with mostly short delays. */
static void add_one(scene *s, uint64_t *st, double lon, double lat, const char *source)
{
    if (!s->cs)
        assert_non_null(s->cs = pm_complaints_new());
    size_t nt = pm_topics_count(s->topics), k = s->n_made++;
    char id[32];
    snprintf(id, sizeof id, "c%07zu", k);
    int64_t created = T0 + (int64_t)(unit(st) * 28 * DAY);
    double r = unit(st);
    int64_t delay = (int64_t)(r * r * r * 4 * DAY);
    uint16_t topic = (uint16_t)(nt * unit(st) * unit(st));
    pm_complaint c = {.id = id, .created_at = created,
                      .answered_at = unit(st) < 0.9 ? created + delay : PM_TIME_NONE,
                      .lon = lon, .lat = lat, .topic = topic, .source = source, .line = k + 2};
    assert_int_equal(pm_complaints_add(s->ctx, s->cs, &c), PM_OK);
}

/* Places the scene's complaints with the locator and adds them to a new
 * weekly cube; both are kept. */
static void make_cube(scene *s)
{
    pm_locator *loc = NULL;
    assert_int_equal(pm_locator_new(s->ctx, s->ds, -1, &loc), PM_OK);
    assert_int_equal(pm_locate_batch(s->ctx, loc, s->cs, 1, &s->pl), PM_OK);
    pm_cube_opts o = {PM_PERIOD_WEEK, OFFSET};
    assert_int_equal(pm_cube_new(s->ctx, s->ds, pm_topics_count(s->topics), &o, &s->cube), PM_OK);
    uint64_t added = 0;
    assert_int_equal(pm_cube_add(s->ctx, s->cube, s->cs, s->pl, NULL, NULL, &added), PM_OK);
    assert_true(added > 0);
    pm_locator_free(s->ctx, loc);
}

/* n complaints (add_one) around lon0, lat0, Gaussian with sigma_m metres. */
static void add_cluster(scene *s, double lon0, double lat0, double sigma_m, size_t n,
                        const char *source, uint64_t seed)
{
    uint64_t st = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (size_t k = 0; k < n; k++) {
        double u = fmax(unit(&st), 1e-300), v = unit(&st), g = sqrt(-2 * log(u));
        double dx = g * cos(2 * M_PI * v) * sigma_m, dy = g * sin(2 * M_PI * v) * sigma_m;
        add_one(s, &st, lon0 + dx / (111320.0 * cos(lat0 * M_PI / 180)), lat0 + dy / 111320.0,
                source);
    }
}

/* n complaints uniform in the box. */
static void add_uniform(scene *s, double lon0, double lat0, double lon1, double lat1, size_t n,
                        const char *source, uint64_t seed)
{
    uint64_t st = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (size_t k = 0; k < n; k++) {
        double lon = lon0 + unit(&st) * (lon1 - lon0), lat = lat0 + unit(&st) * (lat1 - lat0);
        add_one(s, &st, lon, lat, source);
    }
}

/* n complaints over the four weeks from T0 (add_one): districts weighted
 * unevenly (so the classes differ), points uniform in the district's
 * envelope.  Placed with the locator and added to a new weekly cube. */
static void add_complaints(scene *s, size_t n, uint64_t seed)
{
    GEOSContextHandle_t h = pm_ctx_geos(s->ctx);
    size_t nd = pm_districts_count(s->ds);
    double *cum = calloc(nd, sizeof *cum), tot = 0;
    for (size_t i = 0; i < nd; i++)
        cum[i] = tot += 1 + (double)((i * 7 + 3) % 11) * (double)((i * 7 + 3) % 11);
    uint64_t st = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (size_t k = 0; k < n; k++) {
        double u = unit(&st) * tot;
        size_t d = 0;
        while (d + 1 < nd && cum[d] < u)
            d++;
        const GEOSGeometry *g = pm_district_geom_borrow(s->ds, d);
        double x0, x1, y0, y1;
        GEOSGeom_getXMin_r(h, g, &x0);
        GEOSGeom_getXMax_r(h, g, &x1);
        GEOSGeom_getYMin_r(h, g, &y0);
        GEOSGeom_getYMax_r(h, g, &y1);
        /* the position's draws come after the complaint's own, as before */
        uint64_t own = st;
        for (int skip = 0; skip < 5; skip++)
            unit(&st);
        double lon = x0 + unit(&st) * (x1 - x0), lat = y0 + unit(&st) * (y1 - y0);
        add_one(s, &own, lon, lat, "vk");
    }
    free(cum);
    make_cube(s);
}

/* Writes the report, failing with the context's message. */
static void report(scene *s, const char *path, pm_report_format fmt, const pm_filter *f,
                   const pm_report_opts *o)
{
    int rc = pm_report_write(s->ctx, path, fmt, s->ds, s->cube, s->topics, f, o);
    if (rc != PM_OK)
        fail_msg("pm_report_write %s: %s", path, pm_ctx_errmsg(s->ctx));
    const char *keep = getenv("PM_REPORT_KEEP_DIR");
    if (keep && *keep) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s' '%s/'", keep, path, keep);
        assert_int_equal(system(cmd), 0);
    }
}

/* ---- images ------------------------------------------------------------ */

static cairo_surface_t *load_png(const char *path)
{
    cairo_surface_t *img = cairo_image_surface_create_from_png(path);
    if (cairo_surface_status(img) != CAIRO_STATUS_SUCCESS)
        fail_msg("%s: %s", path, cairo_status_to_string(cairo_surface_status(img)));
    return img;
}

static uint32_t pixel(cairo_surface_t *img, int x, int y)
{
    const unsigned char *p = cairo_image_surface_get_data(img);
    return *(const uint32_t *)(p + (size_t)y * (size_t)cairo_image_surface_get_stride(img) +
                               4 * (size_t)x) & 0xffffff;
}

/* Non-white pixels in [x0, x1) × [y0, y1). */
static long ink(cairo_surface_t *img, int x0, int y0, int x1, int y1)
{
    long n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            n += pixel(img, x, y) != 0xffffff;
    return n;
}

/* The page's outer margin (10 mm × f, less a pixel) and the gutter
 * between the map panel and the side panel (7 mm × f) must be white:
 * nothing drawn spills out of its frame.  The geometry is the design's
 * (render/report.c, layout_page). */
static void assert_margins_white(const char *path, double w_mm, double h_mm, double dpi)
{
    cairo_surface_t *img = load_png(path);
    int W = cairo_image_surface_get_width(img), H = cairo_image_surface_get_height(img);
    double f = fmin(w_mm / 297, h_mm / 210), px = dpi / 25.4;
    int m = (int)floor(10 * f * px) - 1;
    assert_true(m > 2);
    long out = ink(img, 0, 0, W, m) + ink(img, 0, H - m, W, H) + ink(img, 0, 0, m, H) +
               ink(img, W - m, 0, W, H);
    double cw = w_mm - 20 * f, side_x = w_mm - 10 * f - 0.35 * cw, gap = 7 * f;
    int gx0 = (int)ceil((side_x - gap) * px) + 1, gx1 = (int)floor(side_x * px) - 1;
    int gy0 = (int)ceil((10 + 18) * f * px), gy1 = H - m;
    long gutter = ink(img, gx0, gy0, gx1, gy1);
    long inside = ink(img, m, m, W - m, H - m);
    cairo_surface_destroy(img);
    if (out || gutter)
        fail_msg("%s: %ld ink pixels in the margin, %ld in the gutter", path, out, gutter);
    assert_true(inside > (long)W * H / 50);   /* something was drawn */
}

/* Runs a shell command; its exit status (-1: could not run). */
static int run(const char *cmd)
{
    int st = system(cmd);
    return st == -1 ? -1 : WEXITSTATUS(st);
}

static int have_tool(const char *name)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", name);
    return run(cmd) == 0;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    rewind(fp);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, fp);
    buf[got] = '\0';
    fclose(fp);
    if (len)
        *len = got;
    return buf;
}

/* ---- tests: formats ---------------------------------------------------- */

static void test_format_parse_by_name_and_extension(void **state)
{
    (void)state;
    assert_int_equal(pm_report_format_parse("png", NULL), PM_REPORT_PNG);
    assert_int_equal(pm_report_format_parse("PDF", "x.png"), PM_REPORT_PDF);
    assert_int_equal(pm_report_format_parse("svg", NULL), PM_REPORT_SVG);
    assert_int_equal(pm_report_format_parse(NULL, "out/report.PDF"), PM_REPORT_PDF);
    assert_int_equal(pm_report_format_parse(NULL, "report.svg"), PM_REPORT_SVG);
    assert_int_equal(pm_report_format_parse(NULL, "a.b/report.png"), PM_REPORT_PNG);
    assert_int_equal(pm_report_format_parse(NULL, "a.png/report"), -1);
    assert_int_equal(pm_report_format_parse("jpeg", NULL), -1);
    assert_int_equal(pm_report_format_parse(NULL, NULL), -1);
}

static void test_png_has_the_requested_size(void **state)
{
    scene *s = *state;
    three_districts(s);
    add_complaints(s, 600, 1);
    pm_report_opts o = {.dpi = 100, .generated = "2025-12-01"};
    report(s, out_path(s, "a.png"), PM_REPORT_PNG, NULL, &o);
    cairo_surface_t *img = load_png(s->path);
    assert_int_equal(cairo_image_surface_get_width(img), 1169);   /* 297 mm at 100 dpi */
    assert_int_equal(cairo_image_surface_get_height(img), 827);
    cairo_surface_destroy(img);
    o = (pm_report_opts){.width_mm = 210, .height_mm = 297, .dpi = 72};
    report(s, out_path(s, "portrait.png"), PM_REPORT_PNG, NULL, &o);
    img = load_png(s->path);
    assert_int_equal(cairo_image_surface_get_width(img), 595);
    assert_int_equal(cairo_image_surface_get_height(img), 842);
    cairo_surface_destroy(img);
    assert_margins_white(s->path, 210, 297, 72);
    assert_int_equal(files_in_dir(s->dir), 2);   /* no temporary file left */
}

static void test_pdf_is_valid_and_converts(void **state)
{
    scene *s = *state;
    three_districts(s);
    add_complaints(s, 600, 2);
    report(s, out_path(s, "a.pdf"), PM_REPORT_PDF, NULL, NULL);
    size_t len = 0;
    char *pdf = slurp(s->path, &len);
    assert_non_null(pdf);
    assert_true(len > 1000);
    assert_memory_equal(pdf, "%PDF-", 5);
    assert_non_null(strstr(pdf + len - 64 > pdf ? pdf + len - 64 : pdf, "%%EOF"));
    free(pdf);
    if (!have_tool("pdftoppm")) {
        print_message("skipped: pdftoppm (poppler-utils) is not installed\n");
        return;
    }
    char cmd[512];
    snprintf(cmd, sizeof cmd, "pdftoppm -png -r 50 -singlefile '%s' '%s/conv' 2>&1", s->path,
             s->dir);
    assert_int_equal(run(cmd), 0);
    char png[128];
    snprintf(png, sizeof png, "%s/conv.png", s->dir);
    cairo_surface_t *img = load_png(png);
    int W = cairo_image_surface_get_width(img), H = cairo_image_surface_get_height(img);
    assert_in_range(W, 584, 586);   /* 297 × 210 mm at 50 dpi, rounded either way */
    assert_in_range(H, 413, 414);
    assert_true(ink(img, 0, 0, W, H) > W * H / 50);
    cairo_surface_destroy(img);
}

static void test_svg_is_svg(void **state)
{
    scene *s = *state;
    three_districts(s);
    add_complaints(s, 600, 3);
    report(s, out_path(s, "a.svg"), PM_REPORT_SVG, NULL, NULL);
    char *svg = slurp(s->path, NULL);
    assert_non_null(svg);
    assert_memory_equal(svg, "<?xml", 5);
    assert_non_null(strstr(svg, "<svg"));
    assert_non_null(strstr(svg, "width=\"841.88"));   /* 297 mm in points */
    assert_non_null(strstr(svg, "</svg>"));
    free(svg);
}

/* ---- tests: text ------------------------------------------------------- */

static void test_cyrillic_is_readable_by_ocr(void **state)
{
    scene *s = *state;
    three_districts(s);
    add_complaints(s, 800, 4);
    if (!have_tool("tesseract")) {
        print_message("skipped: tesseract is not installed\n");
        return;
    }
    if (run("tesseract --list-langs 2>/dev/null | grep -qx rus") != 0) {
        print_message("skipped: tesseract has no Russian (tesseract-ocr-rus)\n");
        return;
    }
    pm_report_opts o = {.title = "Обращения граждан Кузбасса", .dpi = 200,
                        .generated = "2025-12-01"};
    report(s, out_path(s, "ocr.png"), PM_REPORT_PNG, NULL, &o);
    char cmd[512], txt[128];
    snprintf(txt, sizeof txt, "%s/ocr", s->dir);
    snprintf(cmd, sizeof cmd, "tesseract '%s' '%s' -l rus >/dev/null 2>&1", s->path, txt);
    assert_int_equal(run(cmd), 0);
    strcat(txt, ".txt");
    char *text = slurp(txt, NULL);
    assert_non_null(text);
    static const char *const WORDS[] = {"Обращения", "Кузбасса", "Топ", "районов", "Период",
                                        "Сформировано", "Ответы", "темам", "Дороги"};
    for (size_t i = 0; i < sizeof WORDS / sizeof *WORDS; i++)
        if (!strstr(text, WORDS[i]))
            fail_msg("OCR did not find \"%s\" in:\n%s", WORDS[i], text);
    free(text);
}

/* ---- tests: layout ----------------------------------------------------- */

static void test_layout_holds_for_two_districts(void **state)
{
    scene *s = *state;
    two_districts(s);
    add_complaints(s, 300, 5);
    pm_report_opts o = {.title = "Очень длинный заголовок отчёта, который не помещается в одну "
                                 "строку страницы и должен быть сокращён многоточием без "
                                 "наложения на другие элементы страницы отчёта",
                        .figure = "complaints_per_10k", .dpi = 100};
    report(s, out_path(s, "two.png"), PM_REPORT_PNG, NULL, &o);
    assert_margins_white(s->path, 297, 210, 100);
    o.width_mm = 120;   /* a small page: everything scales down */
    o.height_mm = 90;
    report(s, out_path(s, "two_small.png"), PM_REPORT_PNG, NULL, &o);
    assert_margins_white(s->path, 120, 90, 100);
}

static void test_layout_holds_for_127_moscow_units(void **state)
{
    scene *s = *state;
    if (!read_districts(s, SHARED "ru_moscow_city_districts_osm.geojson"))
        return;
    assert_int_equal(pm_districts_count(s->ds), 127);
    add_complaints(s, 20000, 6);
    pm_report_opts o = {.title = "Обращения жителей Москвы", .dpi = 150,
                        .generated = "2025-12-01", .heat_cs = s->cs, .heat_pl = s->pl,
                        .heat_utc_offset_s = 3 * HOUR};
    report(s, out_path(s, "moscow.png"), PM_REPORT_PNG, NULL, &o);
    assert_margins_white(s->path, 297, 210, 150);
    o.figure = "answered_within_24h_share";
    report(s, out_path(s, "moscow_24h.png"), PM_REPORT_PNG, NULL, &o);
    assert_margins_white(s->path, 297, 210, 150);
}

/* Russia's regions span ±180° (Chukotka is split there): the map must
 * still come out whole, centred by the circular mean of longitudes. */
static void test_layout_holds_for_russia_across_the_antimeridian(void **state)
{
    scene *s = *state;
    if (!read_districts(s, "data/ru_regions.geojson"))
        return;
    add_complaints(s, 5000, 7);
    pm_report_opts o = {.title = "Обращения по регионам России", .dpi = 100,
                        .figure = "complaints_per_km2", .generated = "2025-12-01"};
    report(s, out_path(s, "russia.png"), PM_REPORT_PNG, NULL, &o);
    assert_margins_white(s->path, 297, 210, 100);
    /* The map fills its frame across (a centre on the wrong side of the
     * globe would fold the country into a narrow band). */
    cairo_surface_t *img = load_png(s->path);
    double px = 100 / 25.4, map_x1 = 10 + (277 - 0.35 * 277 - 7);
    int y0 = (int)(28 * px), y1 = (int)((200 - 21) * px), first = -1, last = -1;
    for (int x = (int)(10 * px); x < (int)(map_x1 * px); x++)
        if (ink(img, x, y0, x + 1, y1) > 0) {
            if (first < 0)
                first = x;
            last = x;
        }
    cairo_surface_destroy(img);
    assert_true(last - first > 0.9 * (map_x1 - 10) * px);
}

/* ---- tests: golden image ----------------------------------------------- */

/* Pixels whose largest channel difference exceeds `tol`, and the largest
 * difference; writes a diff image (red where changed) to diff_path. */
static long image_diff(cairo_surface_t *a, cairo_surface_t *b, int tol, int *max_diff,
                       const char *diff_path)
{
    int W = cairo_image_surface_get_width(a), H = cairo_image_surface_get_height(a);
    cairo_surface_t *d = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
    unsigned char *dp = cairo_image_surface_get_data(d);
    int ds = cairo_image_surface_get_stride(d);
    long changed = 0;
    *max_diff = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint32_t p = pixel(a, x, y), q = pixel(b, x, y);
            int m = 0;
            for (int c = 0; c < 24; c += 8) {
                int e = abs((int)((p >> c) & 255) - (int)((q >> c) & 255));
                m = e > m ? e : m;
            }
            *max_diff = m > *max_diff ? m : *max_diff;
            changed += m > tol;
            uint32_t grey = 0xff - ((p & 255) / 4);
            *(uint32_t *)(dp + (size_t)y * (size_t)ds + 4 * (size_t)x) =
                m > tol ? 0xff0000 : (grey << 16) | (grey << 8) | grey;
        }
    cairo_surface_mark_dirty(d);
    if (diff_path)
        cairo_surface_write_to_png(d, diff_path);
    cairo_surface_destroy(d);
    return changed;
}

/* Rows y0 .. y0 + h − 1 of img, as a new image. */
static cairo_surface_t *crop_rows(cairo_surface_t *img, int y0, int h)
{
    cairo_surface_t *c =
        cairo_image_surface_create(CAIRO_FORMAT_RGB24, cairo_image_surface_get_width(img), h);
    cairo_t *cr = cairo_create(c);
    cairo_set_source_surface(cr, img, 0, -y0);
    cairo_paint(cr);
    cairo_destroy(cr);
    return c;
}

/* Draws the report and compares it — its rows from y0 (h of them), or
 * the whole image when h is 0 — with the golden image golden (or
 * rewrites that with PM_REGEN_GOLDEN=1); on failure the output and a diff
 * go to OUT_DIR/report_<name>{,_diff}.png. */
static void compare_golden_rows(scene *s, const char *golden, const char *name,
                                const pm_filter *f, const pm_report_opts *o, int y0, int h)
{
    const char *regen = getenv("PM_REGEN_GOLDEN");
    report(s, out_path(s, "golden.png"), PM_REPORT_PNG, f, o);
    cairo_surface_t *got = load_png(s->path);
    if (h > 0) {
        cairo_surface_t *part = crop_rows(got, y0, h);
        cairo_surface_destroy(got);
        got = part;
    }
    if (regen && strcmp(regen, "1") == 0) {
        assert_int_equal(cairo_surface_write_to_png(got, golden), CAIRO_STATUS_SUCCESS);
        cairo_surface_destroy(got);
        print_message("rewrote %s\n", golden);
        return;
    }
    cairo_surface_t *want = load_png(golden);
    int W = cairo_image_surface_get_width(want), H = cairo_image_surface_get_height(want);
    assert_int_equal(cairo_image_surface_get_width(got), W);
    assert_int_equal(cairo_image_surface_get_height(got), H);
    int max_diff = 0;
    long changed = image_diff(got, want, 16, &max_diff, NULL);
    double share = (double)changed / ((double)W * H);
    char out[256], diff[256];
    snprintf(out, sizeof out, OUT_DIR "/report_%s.png", name);
    snprintf(diff, sizeof diff, OUT_DIR "/report_%s_diff.png", name);
    if (share > 0.01) {
        mkdir("build", 0777);
        mkdir(OUT_DIR, 0777);
        cairo_surface_write_to_png(got, out);
        image_diff(got, want, 16, &max_diff, diff);
    }
    cairo_surface_destroy(got);
    cairo_surface_destroy(want);
    if (share > 0.01)
        fail_msg("%s: %ld pixels (%.2f %%) differ by more than 16 (largest difference %d); see "
                 "%s and %s; PM_REGEN_GOLDEN=1 rewrites",
                 golden, changed, 100 * share, max_diff, out, diff);
}

static void compare_golden(scene *s, const char *golden, const char *name, const pm_filter *f,
                           const pm_report_opts *o)
{
    compare_golden_rows(s, golden, name, f, o, 0, 0);
}

static void test_golden_small_scene(void **state)
{
    scene *s = *state;
    three_districts(s);
    add_complaints(s, 900, 8);
    pm_report_opts o = {.title = "Обращения граждан: тестовая сцена", .dpi = 80,
                        .generated = "2025-12-01"};
    pm_filter f = {.has_range = 1};
    assert_int_equal(pm_cube_period_span(s->cube, &f.period_from, &f.period_to), 1);
    compare_golden(s, GOLDEN, "golden_small", &f, &o);
}

/* The same scene with a town (a dense cluster) in the central district
 * and the heat layer over it. */
static void test_golden_heat_scene(void **state)
{
    scene *s = *state;
    three_districts(s);
    add_cluster(s, 86.12, 55.30, 3000, 600, "vk", 31);
    add_cluster(s, 86.55, 55.62, 2000, 250, "vk", 32);
    add_complaints(s, 900, 8);
    pm_report_opts o = {.title = "Обращения граждан: тестовая сцена", .dpi = 80,
                        .generated = "2025-12-01", .heat_cs = s->cs, .heat_pl = s->pl,
                        .heat_utc_offset_s = OFFSET};
    pm_filter f = {.has_range = 1};
    assert_int_equal(pm_cube_period_span(s->cube, &f.period_from, &f.period_to), 1);
    compare_golden(s, GOLDEN_HEAT, "golden_heat", &f, &o);
}

/* ---- tests: figures and data ------------------------------------------ */

static void test_every_figure_renders(void **state)
{
    scene *s = *state;
    three_districts(s);
    add_complaints(s, 900, 9);
    static const char *const FIGS[] = {
        "complaints", "complaints_per_10k", "complaints_per_10k_smoothed", "complaints_per_km2",
        "answered_within_24h_share", "answer_time_median_h", "change_pct", "overdue_share",
        "rating_index"};
    int64_t a, b;
    assert_int_equal(pm_cube_period_span(s->cube, &a, &b), 1);
    pm_filter f = {.has_range = 1, .period_from = a + 2, .period_to = b, .min_sample = 10};
    for (size_t i = 0; i < sizeof FIGS / sizeof *FIGS; i++) {
        pm_report_opts o = {.figure = FIGS[i], .dpi = 60};
        char name[64];
        snprintf(name, sizeof name, "fig_%s.png", FIGS[i]);
        report(s, out_path(s, name), PM_REPORT_PNG, &f, &o);
        assert_margins_white(s->path, 297, 210, 60);
    }
}

/* A suppressed district is grey and hatched, not a colour of the scale. */
static void test_suppressed_rows_are_no_data(void **state)
{
    scene *s = *state;
    two_districts(s);
    add_complaints(s, 300, 10);
    pm_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(pm_cube_query(s->ctx, s->cube, PM_LEVEL_DISTRICT, NULL, &rows, &n), PM_OK);
    assert_int_equal(n, 2);
    uint64_t lo = rows[0].count < rows[1].count ? rows[0].count : rows[1].count;
    size_t small = rows[0].count < rows[1].count ? 0 : 1;
    pm_free(rows);
    pm_filter f = {.min_count = lo + 1};
    pm_report_opts o = {.dpi = 50};
    report(s, out_path(s, "supp.png"), PM_REPORT_PNG, &f, &o);
    /* The centre of the suppressed district's square: the no-data grey or
     * its hatch, never a YlOrRd colour. */
    cairo_surface_t *img = load_png(s->path);
    double px = 50 / 25.4, map_w = 277 - 0.35 * 277 - 7, mid_x = 10 + map_w / 2;
    double cx = mid_x + (small == 0 ? -1 : 1) * map_w / 4.2;
    int found_grey = 0;
    for (int dy = -4; dy <= 4; dy++)
        for (int dx = -4; dx <= 4; dx++) {
            uint32_t p = pixel(img, (int)(cx * px) + dx, (int)(95 * px) + dy);
            int r = (int)(p >> 16), g = (int)((p >> 8) & 255), b = (int)(p & 255);
            found_grey |= abs(r - g) < 8 && abs(g - b) < 8 && r < 0xf0;
            assert_true(abs(r - g) < 40);   /* no yellow-orange-red */
        }
    cairo_surface_destroy(img);
    assert_true(found_grey);
}

static void test_empty_cube_renders_no_data(void **state)
{
    scene *s = *state;
    three_districts(s);
    pm_cube_opts co = {PM_PERIOD_DAY, 0};
    assert_int_equal(pm_cube_new(s->ctx, s->ds, pm_topics_count(s->topics), &co, &s->cube), PM_OK);
    report(s, out_path(s, "empty.png"), PM_REPORT_PNG, NULL, &(pm_report_opts){.dpi = 60});
    assert_margins_white(s->path, 297, 210, 60);
    report(s, out_path(s, "empty.pdf"), PM_REPORT_PDF, NULL, NULL);
}

/* ---- tests: the heat layer ---------------------------------------------- */

/* Where lon/lat lands on the page of two_districts(), in pixels: the
 * design of render/report.c (LAEA at the centre of the extent, the map
 * frame of layout_page(), 5 mm shorter with the heat legend line, the
 * extent fitted at 97 %). */
static void page_xy(scene *s, double lon, double lat, int heat, double dpi, double *px,
                    double *py)
{
    static const double corners[6][2] = {{60, 58}, {61, 58}, {61, 59}, {60, 59}, {62, 58}, {62, 59}};
    char def[160];
    snprintf(def, sizeof def, "+proj=laea +lat_0=58.5 +lon_0=61 +datum=WGS84 +units=m +no_defs "
                              "+type=crs");
    PJ *raw = proj_create_crs_to_crs(pm_ctx_proj(s->ctx), "EPSG:4326", def, NULL);
    PJ *P = proj_normalize_for_visualization(pm_ctx_proj(s->ctx), raw);
    proj_destroy(raw);
    assert_non_null(P);
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int k = 0; k < 6; k++) {
        PJ_COORD c = proj_trans(P, PJ_FWD, proj_coord(corners[k][0], corners[k][1], 0, 0));
        x0 = fmin(x0, c.xy.x);
        x1 = fmax(x1, c.xy.x);
        y0 = fmin(y0, c.xy.y);
        y1 = fmax(y1, c.xy.y);
    }
    PJ_COORD c = proj_trans(P, PJ_FWD, proj_coord(lon, lat, 0, 0));
    proj_destroy(P);
    double cw = 277, map_w = cw - 0.35 * cw - 7, top = 28;
    double map_h = 200 - top - 18 - (heat ? 5 : 0) - 3;
    double sc = 0.97 * fmin(map_w / (x1 - x0), map_h / (y1 - y0));
    double mx = 10 + map_w / 2 + (c.xy.x - (x0 + x1) / 2) * sc;
    double my = top + map_h / 2 - (c.xy.y - (y0 + y1) / 2) * sc;
    *px = mx * dpi / 25.4;
    *py = my * dpi / 25.4;
}

/* The largest channel difference of two pixels. */
static int channel_diff(uint32_t p, uint32_t q)
{
    int m = 0;
    for (int c = 0; c < 24; c += 8) {
        int e = abs((int)((p >> c) & 255) - (int)((q >> c) & 255));
        m = e > m ? e : m;
    }
    return m;
}

/* The pixel at lon/lat of the page at path. */
static uint32_t pixel_at(scene *s, const char *path, double lon, double lat, int heat, double dpi)
{
    double x, y;
    page_xy(s, lon, lat, heat, dpi, &x, &y);
    cairo_surface_t *img = load_png(path);
    uint32_t p = pixel(img, (int)x, (int)y);
    cairo_surface_destroy(img);
    return p;
}

#define CLUSTER_LON 60.3
#define CLUSTER_LAT 58.3

#define EDGE_LON 60.02   /* a cluster 1 km inside A's western border */
#define EDGE_LAT 58.6

/* Two districts: a dense cluster (source "vk") in A and one at its
 * western border, complaints spread over B ("telegram"). */
static void cluster_scene(scene *s)
{
    two_districts(s);
    add_cluster(s, CLUSTER_LON, CLUSTER_LAT, 2500, 700, "vk", 21);
    add_cluster(s, EDGE_LON, EDGE_LAT, 1000, 200, "vk", 23);
    add_uniform(s, 61.05, 58.05, 61.95, 58.95, 300, "telegram", 22);
    make_cube(s);
}

static pm_report_opts heat_opts(scene *s, const pm_heat_filter *f)
{
    return (pm_report_opts){.dpi = 100, .generated = "2025-12-01", .heat_cs = s->cs,
                            .heat_pl = s->pl, .heat_filter = f, .heat_utc_offset_s = OFFSET};
}

/* The heat is drawn over the cluster, where the map put it, and nowhere
 * far from every complaint; the page without heat shows the class colour
 * there. */
static void test_heat_layer_marks_the_dense_place(void **state)
{
    scene *s = *state;
    cluster_scene(s);
    pm_report_opts plain = {.dpi = 100, .generated = "2025-12-01"};
    report(s, out_path(s, "plain.png"), PM_REPORT_PNG, NULL, &plain);
    char plain_path[160];
    strcpy(plain_path, s->path);
    pm_report_opts o = heat_opts(s, NULL);
    report(s, out_path(s, "heat.png"), PM_REPORT_PNG, NULL, &o);
    assert_margins_white(s->path, 297, 210, 100);
    uint32_t hot = pixel_at(s, s->path, CLUSTER_LON, CLUSTER_LAT, 1, 100);
    uint32_t class_a = pixel_at(s, plain_path, CLUSTER_LON, CLUSTER_LAT, 0, 100);
    if (channel_diff(hot, class_a) < 60)
        fail_msg("the cluster: %06x with heat, %06x without", hot, class_a);
    /* 40 km from the cluster, nothing near: the class colour shows through */
    uint32_t far = pixel_at(s, s->path, 60.85, 58.85, 1, 100);
    assert_true(channel_diff(far, pixel_at(s, plain_path, 60.85, 58.85, 0, 100)) <= 2);
    /* the heat ends at the border: inside it glows, outside (where the
     * kernels of the snapped and inside points reach) the page is white */
    assert_true(channel_diff(pixel_at(s, s->path, EDGE_LON, EDGE_LAT, 1, 100),
                             pixel_at(s, plain_path, EDGE_LON, EDGE_LAT, 0, 100)) > 40);
    for (double lat = EDGE_LAT - 0.01; lat <= EDGE_LAT + 0.01; lat += 0.005)
        for (double lon = 59.97; lon <= 59.99; lon += 0.01) {
            uint32_t p = pixel_at(s, s->path, lon, lat, 1, 100);
            if (p != 0xffffff)
                fail_msg("outside A at %.3f, %.3f: %06x", lon, lat, p);
        }
    /* the legend line under the classes has ink */
    cairo_surface_t *img = load_png(s->path);
    double px = 100 / 25.4;
    assert_true(ink(img, (int)(10 * px), (int)(195 * px), (int)(120 * px), (int)(199 * px)) > 200);
    cairo_surface_destroy(img);
}

/* The heat filter picks the points: only B's source, then nothing (no
 * layer: the page is the plain page, byte for byte). */
static void test_heat_filter_selects_the_points(void **state)
{
    scene *s = *state;
    cluster_scene(s);
    pm_report_opts plain = {.dpi = 100, .generated = "2025-12-01"};
    report(s, out_path(s, "plain.png"), PM_REPORT_PNG, NULL, &plain);
    size_t plain_len;
    char *plain_png = slurp(s->path, &plain_len);
    char plain_path[160];
    strcpy(plain_path, s->path);
    uint32_t telegram = 0;
    for (uint32_t k = 0; k < pm_complaints_dict_count(s->cs, PM_DICT_SOURCE); k++)
        if (strcmp(pm_complaints_dict_str(s->cs, PM_DICT_SOURCE, k), "telegram") == 0)
            telegram = k;
    pm_heat_filter f = {.sources = &telegram, .n_sources = 1};
    pm_report_opts o = heat_opts(s, &f);
    report(s, out_path(s, "b_only.png"), PM_REPORT_PNG, NULL, &o);
    uint32_t cluster = pixel_at(s, s->path, CLUSTER_LON, CLUSTER_LAT, 1, 100);
    assert_true(channel_diff(cluster, pixel_at(s, plain_path, CLUSTER_LON, CLUSTER_LAT, 0, 100)) <= 2);
    /* B has heat: a good part of a grid of its pixels differs */
    long changed = 0;
    for (int i = 0; i < 20; i++)
        for (int j = 0; j < 20; j++) {
            double lon = 61.05 + 0.045 * i, lat = 58.05 + 0.045 * j;
            changed += channel_diff(pixel_at(s, s->path, lon, lat, 1, 100),
                                    pixel_at(s, plain_path, lon, lat, 0, 100)) > 20;
        }
    if (changed < 100)
        fail_msg("%ld of 400 pixels of B have heat", changed);
    /* days before the complaints: no layer, no legend line */
    int64_t day0 = (T0 + OFFSET) / DAY;
    f = (pm_heat_filter){.has_days = 1, .day_from = day0 - 10, .day_to = day0 - 1};
    report(s, out_path(s, "none.png"), PM_REPORT_PNG, NULL, &o);
    size_t len;
    char *png = slurp(s->path, &len);
    assert_int_equal(len, plain_len);
    assert_memory_equal(png, plain_png, len);
    free(png);
    free(plain_png);
}

/* A suppressed district shows no data: no heat of its complaints there,
 * while the others keep theirs. */
static void test_heat_leaves_suppressed_districts_out(void **state)
{
    scene *s = *state;
    cluster_scene(s);
    pm_filter f = {.min_count = 500};   /* A has the 700 of the cluster, B 300 */
    pm_report_opts o = heat_opts(s, NULL);
    report(s, out_path(s, "supp.png"), PM_REPORT_PNG, &f, &o);
    for (int i = 0; i < 20; i++)
        for (int j = 0; j < 20; j++) {
            uint32_t p = pixel_at(s, s->path, 61.05 + 0.045 * i, 58.05 + 0.045 * j, 1, 100);
            int r = (int)(p >> 16), g = (int)((p >> 8) & 255), b = (int)(p & 255);
            if (!(abs(r - g) < 8 && abs(g - b) < 8))   /* grey or its hatch, not heat */
                fail_msg("suppressed B at (%d, %d) is %06x", i, j, p);
        }
    uint32_t hot = pixel_at(s, s->path, CLUSTER_LON, CLUSTER_LAT, 1, 100);
    int r = (int)(hot >> 16), b = (int)(hot & 255);
    assert_true(r - b > 40);   /* the cluster in A still glows */
}

/* pm_report_render draws what pm_report_write writes. */
static void test_render_to_memory_equals_the_file(void **state)
{
    scene *s = *state;
    cluster_scene(s);
    pm_report_opts o = heat_opts(s, NULL);
    report(s, out_path(s, "file.png"), PM_REPORT_PNG, NULL, &o);
    size_t len;
    char *file = slurp(s->path, &len);
    uint8_t *buf = NULL;
    size_t n = 0;
    assert_int_equal(pm_report_render(s->ctx, "memory", PM_REPORT_PNG, s->ds, s->cube, s->topics,
                                      NULL, &o, &buf, &n),
                     PM_OK);
    assert_int_equal(n, len);
    assert_memory_equal(buf, file, len);
    pm_free(buf);
    free(file);
    assert_int_equal(pm_report_render(s->ctx, "memory", PM_REPORT_PDF, s->ds, s->cube, s->topics,
                                      NULL, &o, &buf, &n),
                     PM_OK);
    assert_true(n > 1000);
    assert_memory_equal(buf, "%PDF-", 5);
    pm_free(buf);
    assert_int_equal(pm_report_render(s->ctx, "memory", PM_REPORT_SVG, s->ds, s->cube, s->topics,
                                      NULL, &o, &buf, &n),
                     PM_OK);
    assert_memory_equal(buf, "<?xml", 5);
    assert_non_null(strstr((char *)buf, "<image"));   /* the heat raster */
    pm_free(buf);
    buf = (uint8_t *)s;   /* must be reset */
    assert_int_equal(pm_report_render(s->ctx, "memory", (pm_report_format)5, s->ds, s->cube,
                                      s->topics, NULL, &o, &buf, &n),
                     PM_E_USAGE);
    assert_null(buf);
    assert_int_equal(n, 0);
}

/* The heat layer projected on several threads (each its own PROJ context
 * and bins) is the same picture, byte for byte, as on one. */
static void test_heat_threads_draw_the_same(void **state)
{
    scene *s = *state;
    cluster_scene(s);
    pm_report_opts o = heat_opts(s, NULL);
    uint8_t *one = NULL, *many = NULL;
    size_t n_one = 0, n_many = 0;
    o.threads = 1;
    assert_int_equal(pm_report_render(s->ctx, "one", PM_REPORT_PNG, s->ds, s->cube, s->topics,
                                      NULL, &o, &one, &n_one),
                     PM_OK);
    for (int t = 2; t <= 5; t += 3) {
        o.threads = t;
        assert_int_equal(pm_report_render(s->ctx, "many", PM_REPORT_PNG, s->ds, s->cube,
                                          s->topics, NULL, &o, &many, &n_many),
                         PM_OK);
        assert_int_equal(n_many, n_one);
        assert_memory_equal(many, one, n_one);
        pm_free(many);
    }
    pm_free(one);
}

static void test_heat_usage_errors(void **state)
{
    scene *s = *state;
    cluster_scene(s);
    const char *p = out_path(s, "x.png");
    pm_report_opts o = heat_opts(s, NULL);
    o.heat_radius_m = -5;
    assert_int_equal(pm_report_write(s->ctx, p, PM_REPORT_PNG, s->ds, s->cube, s->topics, NULL, &o),
                     PM_E_USAGE);
    assert_non_null(strstr(pm_ctx_errmsg(s->ctx), "radius"));
    o = heat_opts(s, NULL);
    o.heat_pl = NULL;
    assert_int_equal(pm_report_write(s->ctx, p, PM_REPORT_PNG, s->ds, s->cube, s->topics, NULL, &o),
                     PM_E_USAGE);
    pm_heat_filter f = {.has_days = 1, .day_from = 5, .day_to = 4};
    o = heat_opts(s, &f);
    assert_int_equal(pm_report_write(s->ctx, p, PM_REPORT_PNG, s->ds, s->cube, s->topics, NULL, &o),
                     PM_E_USAGE);
    assert_int_equal(files_in_dir(s->dir), 0);
}

/* ---- tests: the analytics page ------------------------------------------- */

/* The hot and cold spots of the three-district scene. */
static const pm_report_hotspot HOT3[] = {
    {0, PM_EHS_INTENSIFYING_HOT, 2.91, 3.42},
    {2, PM_EHS_NEW_HOT, NAN, 2.05},
    {1, PM_EHS_PERSISTENT_COLD, -0.4, -2.2},
};

/* n surge alerts over the scene's districts and topics, most pressing
 * first (observed / expected falling). */
static pm_report_alert *make_alerts(scene *s, size_t n)
{
    pm_report_alert *a = calloc(n ? n : 1, sizeof *a);
    size_t nd = pm_districts_count(s->ds), nt = pm_topics_count(s->topics);
    for (size_t k = 0; k < n; k++) {
        double expected = 3.5 + 1.5 * (double)k;
        a[k] = (pm_report_alert){(k * 2 + 2) % nd, (uint16_t)(k % nt), 0, expected, 0};
        a[k].upper95 = ceil(expected * 1.9 + 2);
        a[k].observed = ceil(a[k].upper95 * (2.6 - 0.1 * (double)k));
    }
    return a;
}

static pm_report_analytics analytics_of(const pm_report_alert *alerts, size_t n_alerts)
{
    return (pm_report_analytics){.period_label = "8 недель по 30.11.2025", .hot = HOT3,
                                 .n_hot = 3, .alerts = alerts, .n_alerts = n_alerts};
}

/* The pages of a PDF: pdfinfo's count, else the page objects in the
 * file (cairo writes them uncompressed). */
static int pdf_pages(const char *path)
{
    char cmd[400];
    if (have_tool("pdfinfo")) {
        snprintf(cmd, sizeof cmd, "pdfinfo '%s' | awk '/^Pages:/ {print $2}'", path);
        FILE *p = popen(cmd, "r");
        int n = -1;
        assert_non_null(p);
        if (fscanf(p, "%d", &n) != 1)
            n = -1;
        pclose(p);
        return n;
    }
    size_t len;
    char *pdf = slurp(path, &len);
    int n = 0;
    for (const char *q = pdf; (q = strstr(q, "/Type /Page")) != NULL; q++)
        n += q[11] != 's';
    free(pdf);
    return n;
}

static void test_analytics_pdf_has_two_pages(void **state)
{
    scene *s = *state;
    three_districts(s);
    add_complaints(s, 600, 51);
    pm_report_alert *al = make_alerts(s, 4);
    pm_report_analytics an = analytics_of(al, 4);
    pm_report_opts o = {.generated = "2025-12-01", .analytics = &an};
    report(s, out_path(s, "an.pdf"), PM_REPORT_PDF, NULL, &o);
    assert_int_equal(pdf_pages(s->path), 2);
    report(s, out_path(s, "plain.pdf"), PM_REPORT_PDF, NULL, NULL);
    assert_int_equal(pdf_pages(s->path), 1);
    free(al);
}

/* Ink pixels in the margins of page p (0 or 1) of a stacked sheet; the
 * two pixel rows at the page boundary (the dashed rule) are left out. */
static long page_margin_ink(cairo_surface_t *img, int page, double w_mm, double h_mm, double dpi)
{
    double f = fmin(w_mm / 297, h_mm / 210), px = dpi / 25.4;
    int W = cairo_image_surface_get_width(img), H = cairo_image_surface_get_height(img);
    int m = (int)floor(10 * f * px) - 1, y0 = (int)ceil(page * h_mm * px);
    int y1 = (int)floor((page + 1) * h_mm * px);
    y1 = y1 < H ? y1 : H;
    int top = page ? y0 + 2 : 0, bottom = page ? y1 : y1 - 2;
    return ink(img, 0, top, W, y0 + m) + ink(img, 0, y1 - m, W, bottom) +
           ink(img, 0, top, m, bottom) + ink(img, W - m, top, W, bottom);
}

/* PNG and SVG stack the pages on a sheet twice as high; the report's
 * page on it is the one-page report, pixel for pixel. */
static void test_analytics_stacks_pages_on_png_and_svg(void **state)
{
    scene *s = *state;
    three_districts(s);
    add_complaints(s, 600, 52);
    pm_report_alert *al = make_alerts(s, 4);
    pm_report_analytics an = analytics_of(al, 4);
    pm_report_opts o = {.dpi = 100, .generated = "2025-12-01"};
    report(s, out_path(s, "one.png"), PM_REPORT_PNG, NULL, &o);
    cairo_surface_t *one = load_png(s->path);
    o.analytics = &an;
    report(s, out_path(s, "two.png"), PM_REPORT_PNG, NULL, &o);
    cairo_surface_t *two = load_png(s->path);
    assert_int_equal(cairo_image_surface_get_width(two), 1169);
    assert_int_equal(cairo_image_surface_get_height(two), 1654);   /* 420 mm at 100 dpi */
    assert_int_equal(cairo_image_surface_get_height(one), 827);
    long differ = 0;
    for (int y = 0; y < 825; y++)
        for (int x = 0; x < 1169; x++)
            differ += pixel(one, x, y) != pixel(two, x, y);
    assert_int_equal(differ, 0);
    assert_int_equal(page_margin_ink(two, 0, 297, 210, 100), 0);
    assert_int_equal(page_margin_ink(two, 1, 297, 210, 100), 0);
    assert_true(ink(two, 0, 827, 1169, 1654) > 1169 * 827 / 50);   /* page 2 has content */
    assert_true(ink(two, 0, 826, 1169, 828) > 300);                /* the dashed rule */
    cairo_surface_destroy(one);
    cairo_surface_destroy(two);
    report(s, out_path(s, "two.svg"), PM_REPORT_SVG, NULL, &o);
    char *svg = slurp(s->path, NULL);
    assert_non_null(strstr(svg, "width=\"841.88"));
    assert_non_null(strstr(svg, "height=\"1190.55"));   /* 420 mm in points */
    free(svg);
    free(al);
}

/* The analytics page of the small scene: three classes on the map, 12
 * surge alerts of which 10 are listed and "и ещё 2", FDR 5 %. */
static void test_golden_analytics_page(void **state)
{
    scene *s = *state;
    three_districts(s);
    add_complaints(s, 900, 8);
    pm_report_alert *al = make_alerts(s, 12);
    pm_report_analytics an = analytics_of(al, 12);
    an.fdr = 0.05;
    pm_report_opts o = {.title = "Обращения граждан: тестовая сцена", .dpi = 80,
                        .generated = "2025-12-01", .analytics = &an};
    int page_px = (int)lround(210 * 80 / 25.4);
    compare_golden_rows(s, GOLDEN_ANALYTICS, "golden_analytics", NULL, &o, page_px, page_px);
    free(al);
}

/* Text of page `page` of the PDF at path (pdftotext); NULL if the tool
 * is absent. */
static char *pdf_text(scene *s, const char *path, int page)
{
    if (!have_tool("pdftotext")) {
        print_message("skipped: pdftotext (poppler-utils) is not installed\n");
        return NULL;
    }
    char cmd[600], txt[160];
    snprintf(txt, sizeof txt, "%s/page%d.txt", s->dir, page);
    snprintf(cmd, sizeof cmd, "pdftotext -f %d -l %d '%s' '%s'", page, page, path, txt);
    assert_int_equal(run(cmd), 0);
    char *text = slurp(txt, NULL);
    unlink(txt);
    assert_non_null(text);
    return text;
}

static void assert_has_words(const char *text, const char *const *words, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strstr(text, words[i]))
            fail_msg("no \"%s\" in:\n%s", words[i], text);
}

/* The words of the analytics page are on page 2 of the PDF (and not on
 * page 1), long names shortened; tesseract reads the title and a
 * district's name off the PNG. */
static void test_analytics_text_is_readable(void **state)
{
    scene *s = *state;
    three_districts(s);
    add_complaints(s, 600, 53);
    pm_report_alert *al = make_alerts(s, 12);
    pm_report_analytics an = analytics_of(al, 12);
    an.fdr = 0.05;
    pm_report_opts o = {.generated = "2025-12-01", .analytics = &an};
    report(s, out_path(s, "an.pdf"), PM_REPORT_PDF, NULL, &o);
    char *p2 = pdf_text(s, s->path, 2), *p1 = pdf_text(s, s->path, 1);
    if (p2) {
        static const char *const WORDS[] = {
            "Аналитика: появляющиеся горячие точки и всплески обращений",
            "Период анализа: 8 недель по 30.11.2025", "Появляющиеся горячие точки",
            "Всплески обращений", "Центральный район", "усиливающаяся горячая точка",
            "новая горячая точка", "устойчивая холодная точка", "↑ растёт", "+3,4", "Южно-",
            "ЖКХ", "Дороги", "и ещё 2", "FDR 5 %", "Прирост"};
        assert_has_words(p2, WORDS, sizeof WORDS / sizeof *WORDS);
        assert_null(strstr(p1, "Аналитика"));
        assert_null(strstr(p2, "не выявлено"));
    }
    free(p1);
    free(p2);
    if (!have_tool("tesseract") || run("tesseract --list-langs 2>/dev/null | grep -qx rus") != 0) {
        print_message("skipped: tesseract with Russian is not installed\n");
        free(al);
        return;
    }
    o.dpi = 200;
    report(s, out_path(s, "an.png"), PM_REPORT_PNG, NULL, &o);
    char cmd[512], txt[128];
    snprintf(txt, sizeof txt, "%s/ocr", s->dir);
    snprintf(cmd, sizeof cmd, "tesseract '%s' '%s' -l rus >/dev/null 2>&1", s->path, txt);
    assert_int_equal(run(cmd), 0);
    strcat(txt, ".txt");
    char *text = slurp(txt, NULL);
    assert_non_null(text);
    static const char *const OCR[] = {"Аналитика", "появляющиеся", "всплески", "Всплески",
                                      "Центральный", "горячая"};
    assert_has_words(text, OCR, sizeof OCR / sizeof *OCR);
    free(text);
    free(al);
}

/* No hot spot and no alert: both tables say "не выявлено", the map is
 * all "нет закономерности". */
static void test_analytics_empty_lists(void **state)
{
    scene *s = *state;
    three_districts(s);
    add_complaints(s, 300, 54);
    pm_report_analytics an = {0};
    pm_report_opts o = {.dpi = 60, .generated = "2025-12-01", .analytics = &an};
    report(s, out_path(s, "empty.png"), PM_REPORT_PNG, NULL, &o);
    cairo_surface_t *img = load_png(s->path);
    assert_int_equal(page_margin_ink(img, 1, 297, 210, 60), 0);
    cairo_surface_destroy(img);
    report(s, out_path(s, "empty.pdf"), PM_REPORT_PDF, NULL, &o);
    char *text = pdf_text(s, s->path, 2);
    if (text) {
        const char *a = strstr(text, "не выявлено");
        assert_non_null(a);
        assert_non_null(strstr(a + 1, "не выявлено"));
        assert_non_null(strstr(text, "нет закономерности"));
        assert_null(strstr(text, "горячая точка,"));
        assert_null(strstr(text, "FDR"));
        free(text);
    }
}

/* Long names, a small page and 127 Moscow districts with every class:
 * nothing spills into the margins of either page. */
static void test_analytics_layout_holds(void **state)
{
    scene *s = *state;
    two_districts(s);
    add_complaints(s, 300, 55);
    pm_report_hotspot hot[2] = {{0, PM_EHS_OSCILLATING_COLD, -2.5, -1.7},
                                {1, PM_EHS_SPORADIC_HOT, 0.3, 1.8}};
    pm_report_alert al[2] = {{0, 3, 41, 12.25, 20}, {1, 11, 7, 0, 2}};
    pm_report_analytics an = {.period_label = "очень длинная подпись периода анализа, которая "
                                              "не должна наезжать на дату формирования отчёта "
                                              "справа в шапке страницы",
                              .hot = hot, .n_hot = 2, .alerts = al, .n_alerts = 2};
    pm_report_opts o = {.dpi = 100, .analytics = &an, .generated = "2025-12-01"};
    report(s, out_path(s, "two.png"), PM_REPORT_PNG, NULL, &o);
    cairo_surface_t *img = load_png(s->path);
    assert_int_equal(page_margin_ink(img, 1, 297, 210, 100), 0);
    cairo_surface_destroy(img);
    o.width_mm = 120;
    o.height_mm = 90;
    report(s, out_path(s, "two_small.png"), PM_REPORT_PNG, NULL, &o);
    img = load_png(s->path);
    assert_int_equal(page_margin_ink(img, 0, 120, 90, 100), 0);
    assert_int_equal(page_margin_ink(img, 1, 120, 90, 100), 0);
    cairo_surface_destroy(img);
}

static void test_analytics_layout_holds_for_127_moscow_units(void **state)
{
    scene *s = *state;
    if (!read_districts(s, SHARED "ru_moscow_city_districts_osm.geojson"))
        return;
    add_complaints(s, 5000, 56);
    size_t nd = pm_districts_count(s->ds), n = 0;
    pm_report_hotspot *hot = calloc(nd, sizeof *hot);
    for (size_t i = 0; i < nd; i++)
        if (i % 3 == 0)   /* every class, some districts with none */
            hot[n++] = (pm_report_hotspot){i, 1 + (int)(n % (PM_EHS_CLASSES - 1)),
                                           (double)(i % 7) - 3, (double)(i % 9) - 4};
    pm_report_alert *al = make_alerts(s, 40);
    pm_report_analytics an = {.period_label = "8 недель по 30.11.2025", .hot = hot, .n_hot = n,
                              .alerts = al, .n_alerts = 40, .fdr = 0.05};
    pm_report_opts o = {.dpi = 100, .analytics = &an, .generated = "2025-12-01"};
    report(s, out_path(s, "moscow_an.png"), PM_REPORT_PNG, NULL, &o);
    cairo_surface_t *img = load_png(s->path);
    assert_int_equal(page_margin_ink(img, 1, 297, 210, 100), 0);
    cairo_surface_destroy(img);
    free(hot);
    free(al);
}

static void test_analytics_usage_errors(void **state)
{
    scene *s = *state;
    three_districts(s);
    add_complaints(s, 100, 57);
    const char *p = out_path(s, "x.pdf");
    pm_report_hotspot bad_hot[4] = {{3, PM_EHS_NEW_HOT, 0, 0}, {0, PM_EHS_NONE, 0, 0},
                                    {0, PM_EHS_CLASSES, 0, 0}, {0, -1, 0, 0}};
    for (int k = 0; k < 4; k++) {
        pm_report_analytics an = {.hot = &bad_hot[k], .n_hot = 1};
        pm_report_opts o = {.analytics = &an};
        assert_int_equal(pm_report_write(s->ctx, p, PM_REPORT_PDF, s->ds, s->cube, s->topics,
                                         NULL, &o),
                         PM_E_USAGE);
        assert_non_null(strstr(pm_ctx_errmsg(s->ctx), "hot-spot row 0"));
    }
    pm_report_alert bad_al[2] = {{3, 0, 5, 1, 2}, {0, 12, 5, 1, 2}};
    for (int k = 0; k < 2; k++) {
        pm_report_analytics an = {.alerts = &bad_al[k], .n_alerts = 1};
        pm_report_opts o = {.analytics = &an};
        assert_int_equal(pm_report_write(s->ctx, p, PM_REPORT_PDF, s->ds, s->cube, s->topics,
                                         NULL, &o),
                         PM_E_USAGE);
        assert_non_null(strstr(pm_ctx_errmsg(s->ctx), "surge alert 0"));
    }
    pm_report_analytics an = {.n_hot = 2};
    pm_report_opts o = {.analytics = &an};
    assert_int_equal(pm_report_write(s->ctx, p, PM_REPORT_PDF, s->ds, s->cube, s->topics, NULL, &o),
                     PM_E_USAGE);
    an = (pm_report_analytics){.fdr = NAN};
    assert_int_equal(pm_report_write(s->ctx, p, PM_REPORT_PDF, s->ds, s->cube, s->topics, NULL, &o),
                     PM_E_USAGE);
    /* the sheet of two pages counts against cairo's 32 767 px */
    an = (pm_report_analytics){0};
    o = (pm_report_opts){.width_mm = 1000, .height_mm = 1000, .dpi = 500, .analytics = &an};
    assert_int_equal(pm_report_write(s->ctx, out_path(s, "x.png"), PM_REPORT_PNG, s->ds, s->cube,
                                     s->topics, NULL, &o),
                     PM_E_USAGE);
    assert_non_null(strstr(pm_ctx_errmsg(s->ctx), "two pages"));
    assert_int_equal(files_in_dir(s->dir), 0);
}

static void test_analytics_allocation_failures_are_clean(void **state)
{
    scene *s = *state;
    three_districts(s);
    add_complaints(s, 300, 58);
    pm_report_alert *al = make_alerts(s, 12);
    pm_report_analytics an = analytics_of(al, 12);
    pm_report_opts o = {.dpi = 25, .analytics = &an};
    for (int fmt = 0; fmt < 2; fmt++) {
        const char *p = out_path(s, fmt == 0 ? "oom.png" : "oom.pdf");
        int rc = PM_E_NOMEM;
        long n;
        for (n = 1; n < 10000; n++) {
            pm_alloc_fail_at(n);
            rc = pm_report_write(s->ctx, p, (pm_report_format)fmt, s->ds, s->cube, s->topics, NULL,
                                 &o);
            pm_alloc_fail_at(0);
            if (rc == PM_OK)
                break;
            if (rc != PM_E_NOMEM)
                fail_msg("allocation %ld: %d %s", n, rc, pm_ctx_errmsg(s->ctx));
            assert_int_equal(files_in_dir(s->dir), 0);
        }
        assert_int_equal(rc, PM_OK);
        assert_true(n > 5);
        unlink(p);
    }
    free(al);
}

/* ---- tests: errors ----------------------------------------------------- */

static void test_usage_errors(void **state)
{
    scene *s = *state;
    three_districts(s);
    add_complaints(s, 100, 11);
    const char *p = out_path(s, "x.png");
    pm_report_opts o = {.figure = "complaints_per_hour"};
    assert_int_equal(pm_report_write(s->ctx, p, PM_REPORT_PNG, s->ds, s->cube, s->topics, NULL, &o),
                     PM_E_USAGE);
    assert_non_null(strstr(pm_ctx_errmsg(s->ctx), "complaints_per_hour"));
    o = (pm_report_opts){.width_mm = 10};
    assert_int_equal(pm_report_write(s->ctx, p, PM_REPORT_PNG, s->ds, s->cube, s->topics, NULL, &o),
                     PM_E_USAGE);
    o = (pm_report_opts){.dpi = NAN};
    assert_int_equal(pm_report_write(s->ctx, p, PM_REPORT_PNG, s->ds, s->cube, s->topics, NULL, &o),
                     PM_E_USAGE);
    o = (pm_report_opts){.width_mm = 2000, .height_mm = 2000, .dpi = 1200};
    assert_int_equal(pm_report_write(s->ctx, p, PM_REPORT_PNG, s->ds, s->cube, s->topics, NULL, &o),
                     PM_E_USAGE);
    assert_non_null(strstr(pm_ctx_errmsg(s->ctx), "32767"));
    assert_int_equal(pm_report_write(s->ctx, p, (pm_report_format)7, s->ds, s->cube, s->topics,
                                     NULL, NULL),
                     PM_E_USAGE);
    assert_int_equal(pm_report_write(s->ctx, p, PM_REPORT_PNG, s->ds, NULL, s->topics, NULL, NULL),
                     PM_E_USAGE);
    pm_filter f = {.has_range = 1, .period_from = 5, .period_to = 4};
    assert_int_equal(pm_report_write(s->ctx, p, PM_REPORT_PNG, s->ds, s->cube, s->topics, &f, NULL),
                     PM_E_USAGE);
    assert_int_equal(files_in_dir(s->dir), 0);
}

static void test_unwritable_path_is_an_io_error(void **state)
{
    scene *s = *state;
    three_districts(s);
    add_complaints(s, 100, 12);
    for (int fmt = 0; fmt < 3; fmt++) {
        int rc = pm_report_write(s->ctx, "/nonexistent-dir/report.out", (pm_report_format)fmt,
                                 s->ds, s->cube, s->topics, NULL, NULL);
        assert_int_equal(rc, PM_E_IO);
        assert_non_null(strstr(pm_ctx_errmsg(s->ctx), "/nonexistent-dir/report.out"));
    }
}

static void test_allocation_failures_are_clean(void **state)
{
    scene *s = *state;
    three_districts(s);
    add_complaints(s, 300, 13);
    uint16_t topics[3] = {0, 1, 2};
    pm_heat_filter hf = {.topics = topics, .n_topics = 3};
    pm_report_opts o = {.dpi = 25, .heat_cs = s->cs, .heat_pl = s->pl, .heat_filter = &hf};
    for (int fmt = 0; fmt < 3; fmt++) {
        o.threads = fmt == 0 ? 3 : 0;   /* the PNG: a helper thread's failures too */
        const char *p = out_path(s, fmt == 0 ? "oom.png" : fmt == 1 ? "oom.pdf" : "oom.svg");
        int rc = PM_E_NOMEM;
        long n;
        for (n = 1; n < 10000; n++) {
            pm_alloc_fail_at(n);
            rc = pm_report_write(s->ctx, p, (pm_report_format)fmt, s->ds, s->cube, s->topics, NULL,
                                 &o);
            pm_alloc_fail_at(0);
            if (rc == PM_OK)
                break;
            if (rc != PM_E_NOMEM)
                fail_msg("allocation %ld: %d %s", n, rc, pm_ctx_errmsg(s->ctx));
            assert_int_equal(files_in_dir(s->dir), 0);
        }
        assert_int_equal(rc, PM_OK);
        assert_true(n > 5);   /* the loop went through the report's own allocations */
        unlink(p);
    }
}

/* ---- the real Kemerovo districts --------------------------------------- */

static void test_kemerovo_report(void **state)
{
    scene *s = *state;
    if (!read_districts(s, SHARED "ru_kemerovo_districts_osm.geojson"))
        return;
    /* the towns: Kemerovo, Novokuznetsk, Prokopyevsk, Mezhdurechensk */
    add_cluster(s, 86.087, 55.355, 4000, 5000, "vk", 41);
    add_cluster(s, 87.11, 53.76, 4000, 4000, "vk", 42);
    add_cluster(s, 86.75, 53.89, 2500, 1500, "vk", 43);
    add_cluster(s, 88.06, 53.69, 2000, 1000, "vk", 44);
    add_complaints(s, 12000, 2025);
    pm_report_opts o = {.title = "Обращения граждан — Кемеровская область",
                        .generated = "2025-12-01", .heat_cs = s->cs, .heat_pl = s->pl,
                        .heat_utc_offset_s = OFFSET};
    report(s, out_path(s, "report_kemerovo.png"), PM_REPORT_PNG, NULL, &o);
    assert_margins_white(s->path, 297, 210, 150);
    report(s, out_path(s, "report_kemerovo.pdf"), PM_REPORT_PDF, NULL, &o);
}

/* Under ASan: fontconfig leaks a few hundred bytes once while parsing its
 * configuration (FcInitLoadConfigAndFonts, in Pango's font-loading
 * thread); not ours, so not reported.  Unused in other builds. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libfontconfig.so\n"; }

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_parse_by_name_and_extension),
        T(test_png_has_the_requested_size),
        T(test_pdf_is_valid_and_converts),
        T(test_svg_is_svg),
        T(test_cyrillic_is_readable_by_ocr),
        T(test_layout_holds_for_two_districts),
        T(test_layout_holds_for_127_moscow_units),
        T(test_layout_holds_for_russia_across_the_antimeridian),
        T(test_golden_small_scene),
        T(test_golden_heat_scene),
        T(test_every_figure_renders),
        T(test_suppressed_rows_are_no_data),
        T(test_empty_cube_renders_no_data),
        T(test_heat_layer_marks_the_dense_place),
        T(test_heat_filter_selects_the_points),
        T(test_heat_leaves_suppressed_districts_out),
        T(test_render_to_memory_equals_the_file),
        T(test_heat_threads_draw_the_same),
        T(test_heat_usage_errors),
        T(test_usage_errors),
        T(test_unwritable_path_is_an_io_error),
        T(test_allocation_failures_are_clean),
        T(test_analytics_pdf_has_two_pages),
        T(test_analytics_stacks_pages_on_png_and_svg),
        T(test_golden_analytics_page),
        T(test_analytics_text_is_readable),
        T(test_analytics_empty_lists),
        T(test_analytics_layout_holds),
        T(test_analytics_layout_holds_for_127_moscow_units),
        T(test_analytics_usage_errors),
        T(test_analytics_allocation_failures_are_clean),
        T(test_kemerovo_report),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
