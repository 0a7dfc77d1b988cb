/* test_pyramid.c — tile pyramids: z/x/y.png + TileJSON and MBTiles,
 * written beside the targets and moved into place at commit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../engine/pm_alloc.h"
#include "../../geodata/pm_pyramid.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[] = "/tmp/pm_test_pyramid_XXXXXX";

#define LEGEND "{\"title\": \"Complaints per 10 000\", \"stops\": [[0, \"#fff\"], [5, \"#f00\"]]}"

static const pm_pyramid_meta META = {
    "complaints", "Complaints by district", "(c) OpenStreetMap contributors", 0, 3,
    {86.0, 54.9, 86.2, 55.5}, 256, LEGEND};

/* Tiles put by make_pyramid: (z, x, y). */
static const int TILES[][3] = {{0, 0, 0}, {1, 1, 0}, {2, 3, 1}, {3, 5, 2}, {3, 5, 3}};
#define NTILES (sizeof TILES / sizeof TILES[0])

/* Fixed bytes for a tile: the PNG signature, then its z, x, y and tag
 * (the module never decodes them). */
static size_t tile_bytes(int z, int x, int y, int tag, uint8_t *buf)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memcpy(buf, sig, 8);
    buf[8] = (uint8_t)z;
    buf[9] = (uint8_t)x;
    buf[10] = (uint8_t)y;
    buf[11] = (uint8_t)tag;
    size_t len = 12 + (size_t)(x + y); /* lengths differ too */
    memset(buf + 12, 0xa5, len - 12);
    return len;
}

static void path_in(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", base, name);
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    b[*len] = 0;
    fclose(f);
    return b;
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Entries of base whose name contains ".tmp.". */
static int temporaries(void)
{
    DIR *d = opendir(base);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

/* Puts TILES with tag into a new pyramid and commits it. */
static int make_pyramid(pm_ctx *ctx, const char *dir, const char *mb, const pm_pyramid_meta *m,
                        int tag)
{
    pm_pyramid *p;
    int rc = pm_pyramid_open(ctx, dir, mb, m, &p);
    if (rc)
        return rc;
    for (size_t i = 0; i < NTILES; i++) {
        uint8_t buf[64];
        size_t len = tile_bytes(TILES[i][0], TILES[i][1], TILES[i][2], tag, buf);
        rc = pm_pyramid_put(ctx, p, TILES[i][0], (uint32_t)TILES[i][1], (uint32_t)TILES[i][2],
                            buf, len);
        if (rc) {
            pm_pyramid_abort(p);
            return rc;
        }
    }
    if (pm_pyramid_count(p) != NTILES) {
        pm_pyramid_abort(p);
        return -1;
    }
    return pm_pyramid_commit(ctx, p);
}

static void assert_tile_file(const char *dir, int z, int x, int y, int tag)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%d/%d/%d.png", dir, z, x, y);
    uint8_t want[64];
    size_t want_len = tile_bytes(z, x, y, tag, want), len;
    uint8_t *got = read_all(path, &len);
    assert_non_null(got);
    assert_int_equal(len, want_len);
    assert_memory_equal(got, want, len);
    free(got);
}

static void directory_holds_every_tile_at_z_x_y(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    char dir[256], mb[256];
    path_in(dir, sizeof dir, "a");
    path_in(mb, sizeof mb, "a.mbtiles");
    assert_int_equal(make_pyramid(ctx, dir, mb, &META, 1), PM_OK);
    for (size_t i = 0; i < NTILES; i++)
        assert_tile_file(dir, TILES[i][0], TILES[i][1], TILES[i][2], 1);
    char path[300];
    snprintf(path, sizeof path, "%s/2/3/2.png", dir);
    assert_false(exists(path)); /* only what was put */
    assert_int_equal(temporaries(), 0);
    pm_ctx_free(ctx);
}

static void tilejson_has_the_tilejson3_members(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    char dir[256], path[300];
    path_in(dir, sizeof dir, "tj");
    assert_int_equal(make_pyramid(ctx, dir, NULL, &META, 1), PM_OK);
    snprintf(path, sizeof path, "%s/tilejson.json", dir);
    json_error_t err;
    json_t *tj = json_load_file(path, 0, &err);
    assert_non_null(tj);
    assert_string_equal(json_string_value(json_object_get(tj, "tilejson")), "3.0.0");
    json_t *tiles = json_object_get(tj, "tiles");
    assert_int_equal(json_array_size(tiles), 1);
    assert_string_equal(json_string_value(json_array_get(tiles, 0)), "{z}/{x}/{y}.png");
    assert_string_equal(json_string_value(json_object_get(tj, "name")), "complaints");
    assert_string_equal(json_string_value(json_object_get(tj, "description")),
                        "Complaints by district");
    assert_string_equal(json_string_value(json_object_get(tj, "attribution")),
                        "(c) OpenStreetMap contributors");
    assert_int_equal(json_integer_value(json_object_get(tj, "minzoom")), 0);
    assert_int_equal(json_integer_value(json_object_get(tj, "maxzoom")), 3);
    json_t *b = json_object_get(tj, "bounds");
    assert_int_equal(json_array_size(b), 4);
    for (size_t i = 0; i < 4; i++)
        assert_true(fabs(json_number_value(json_array_get(b, i)) - META.bounds[i]) < 1e-12);
    json_t *c = json_object_get(tj, "center");
    assert_int_equal(json_array_size(c), 3);
    assert_true(fabs(json_real_value(json_array_get(c, 0)) - 86.1) < 1e-12);
    assert_true(fabs(json_real_value(json_array_get(c, 1)) - 55.2) < 1e-12);
    assert_int_equal(json_integer_value(json_array_get(c, 2)), 0);
    assert_string_equal(json_string_value(json_object_get(tj, "scheme")), "xyz");
    assert_int_equal(json_integer_value(json_object_get(tj, "problemap_tile_size")), 256);
    json_t *legend = json_loads(LEGEND, 0, &err);
    assert_true(json_equal(json_object_get(tj, "problemap_legend"), legend));
    json_decref(legend);
    json_decref(tj);
    pm_ctx_free(ctx);
}

static void tilejson_leaves_out_what_was_not_given(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    char dir[256], path[300];
    path_in(dir, sizeof dir, "bare");
    pm_pyramid_meta m = META;
    m.description = m.attribution = m.legend_json = NULL;
    m.tile_size = 512;
    assert_int_equal(make_pyramid(ctx, dir, NULL, &m, 1), PM_OK);
    snprintf(path, sizeof path, "%s/tilejson.json", dir);
    json_error_t err;
    json_t *tj = json_load_file(path, 0, &err);
    assert_non_null(tj);
    assert_null(json_object_get(tj, "description"));
    assert_null(json_object_get(tj, "attribution"));
    assert_null(json_object_get(tj, "problemap_legend"));
    assert_int_equal(json_integer_value(json_object_get(tj, "problemap_tile_size")), 512);
    json_decref(tj);
    pm_ctx_free(ctx);
}

/* The single text value of a one-row query, or NULL. */
static char *query_text(sqlite3 *db, const char *sql, const char *param)
{
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    if (param)
        sqlite3_bind_text(s, 1, param, -1, SQLITE_STATIC);
    char *v = NULL;
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
        v = strdup((const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return v;
}

static void assert_meta(sqlite3 *db, const char *name, const char *want)
{
    char *v = query_text(db, "SELECT value FROM metadata WHERE name = ?", name);
    if (!want) {
        assert_null(v);
        return;
    }
    assert_non_null(v);
    assert_string_equal(v, want);
    free(v);
}

static void mbtiles_rows_use_tms_numbering(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    char mb[256];
    path_in(mb, sizeof mb, "rows.mbtiles");
    assert_int_equal(make_pyramid(ctx, NULL, mb, &META, 7), PM_OK);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(mb, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    char *n = query_text(db, "SELECT count(*) FROM tiles", NULL);
    assert_string_equal(n, "5");
    free(n);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT tile_data FROM tiles WHERE zoom_level = ? AND "
                                        "tile_column = ? AND tile_row = ?",
                                        -1, &s, NULL),
                     SQLITE_OK);
    for (size_t i = 0; i < NTILES; i++) {
        int z = TILES[i][0], x = TILES[i][1], y = TILES[i][2];
        sqlite3_bind_int(s, 1, z);
        sqlite3_bind_int(s, 2, x);
        sqlite3_bind_int(s, 3, (1 << z) - 1 - y);
        assert_int_equal(sqlite3_step(s), SQLITE_ROW);
        uint8_t want[64];
        size_t len = tile_bytes(z, x, y, 7, want);
        assert_int_equal(sqlite3_column_bytes(s, 0), len);
        assert_memory_equal(sqlite3_column_blob(s, 0), want, len);
        sqlite3_reset(s);
    }
    /* z 2, x 3, XYZ row 1 is TMS row 2 and nothing is at TMS row 1 */
    sqlite3_bind_int(s, 1, 2);
    sqlite3_bind_int(s, 2, 3);
    sqlite3_bind_int(s, 3, 1);
    assert_int_equal(sqlite3_step(s), SQLITE_DONE);
    sqlite3_finalize(s);
    sqlite3_close(db);
    pm_ctx_free(ctx);
}

static void mbtiles_has_the_schema_and_metadata(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    char mb[256];
    path_in(mb, sizeof mb, "meta.mbtiles");
    assert_int_equal(make_pyramid(ctx, NULL, mb, &META, 1), PM_OK);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(mb, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    char *sql = query_text(db, "SELECT sql FROM sqlite_master WHERE name = ?", "tile_index");
    assert_string_equal(sql,
                        "CREATE UNIQUE INDEX tile_index on tiles (zoom_level, tile_column, "
                        "tile_row)");
    free(sql);
    sql = query_text(db, "SELECT sql FROM sqlite_master WHERE name = ?", "metadata");
    assert_string_equal(sql, "CREATE TABLE metadata (name text, value text)");
    free(sql);
    assert_meta(db, "name", "complaints");
    assert_meta(db, "format", "png");
    assert_meta(db, "bounds", "86,54.9,86.2,55.5");
    assert_meta(db, "center", "86.1,55.2,0");
    assert_meta(db, "minzoom", "0");
    assert_meta(db, "maxzoom", "3");
    assert_meta(db, "type", "overlay");
    assert_meta(db, "version", "1.3");
    assert_meta(db, "description", "Complaints by district");
    assert_meta(db, "attribution", "(c) OpenStreetMap contributors");
    char *legend = query_text(db, "SELECT value FROM metadata WHERE name = ?", "problemap_legend");
    json_error_t err;
    json_t *got = json_loads(legend, 0, &err), *want = json_loads(LEGEND, 0, &err);
    assert_true(json_equal(got, want));
    json_decref(got);
    json_decref(want);
    free(legend);
    sqlite3_close(db);
    pm_ctx_free(ctx);
}

static void mbtiles_without_optional_metadata_has_no_such_rows(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    char mb[256];
    path_in(mb, sizeof mb, "bare.mbtiles");
    pm_pyramid_meta m = META;
    m.description = m.attribution = m.legend_json = NULL;
    assert_int_equal(make_pyramid(ctx, NULL, mb, &m, 1), PM_OK);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(mb, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_meta(db, "description", NULL);
    assert_meta(db, "attribution", NULL);
    assert_meta(db, "problemap_legend", NULL);
    assert_meta(db, "name", "complaints");
    sqlite3_close(db);
    pm_ctx_free(ctx);
}

/* GDAL's MBTiles driver opens it as a raster with our metadata.  (ogrinfo
 * cannot: it opens vector data sources only, and a png MBTiles has none.) */
static void gdal_reads_the_mbtiles(void **state)
{
    (void)state;
    if (system("command -v gdalinfo >/dev/null 2>&1") != 0) {
        print_message("gdalinfo not installed: skipping\n");
        skip();
    }
    pm_ctx *ctx = pm_ctx_new();
    char mb[256], cmd[400];
    path_in(mb, sizeof mb, "gdal.mbtiles");
    assert_int_equal(make_pyramid(ctx, NULL, mb, &META, 1), PM_OK);
    snprintf(cmd, sizeof cmd, "gdalinfo '%s' 2>&1", mb);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    static char out[65536];
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = 0;
    int status = pclose(f);
    assert_int_equal(status, 0);
    assert_non_null(strstr(out, "Driver: MBTiles/MBTiles"));
    assert_non_null(strstr(out, "name=complaints"));
    assert_non_null(strstr(out, "bounds=86,54.9,86.2,55.5"));
    assert_non_null(strstr(out, "ZOOM_LEVEL=3"));
    pm_ctx_free(ctx);
}

static void recommit_replaces_the_previous_pyramid(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    char dir[256], mb[256], path[300];
    path_in(dir, sizeof dir, "re");
    path_in(mb, sizeof mb, "re.mbtiles");
    assert_int_equal(make_pyramid(ctx, dir, mb, &META, 1), PM_OK);
    pm_pyramid *p;
    assert_int_equal(pm_pyramid_open(ctx, dir, mb, &META, &p), PM_OK);
    uint8_t buf[64];
    size_t len = tile_bytes(1, 0, 1, 2, buf);
    assert_int_equal(pm_pyramid_put(ctx, p, 1, 0, 1, buf, len), PM_OK);
    assert_int_equal(pm_pyramid_commit(ctx, p), PM_OK);
    assert_tile_file(dir, 1, 0, 1, 2);
    snprintf(path, sizeof path, "%s/0/0/0.png", dir);
    assert_false(exists(path)); /* the old tiles are gone */
    snprintf(path, sizeof path, "%s/tilejson.json", dir);
    assert_true(exists(path));
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(mb, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    char *n = query_text(db, "SELECT count(*) FROM tiles", NULL);
    assert_string_equal(n, "1");
    free(n);
    n = query_text(db, "SELECT count(*) FROM metadata WHERE name = ?", "name");
    assert_string_equal(n, "1");
    free(n);
    sqlite3_close(db);
    assert_int_equal(temporaries(), 0);
    pm_ctx_free(ctx);
}

/* The bytes of the pyramid's files, to compare before and after. */
typedef struct snapshot {
    uint8_t *tj, *tile, *mb;
    size_t tj_len, tile_len, mb_len;
} snapshot;

static void snap(const char *dir, const char *mb, snapshot *s)
{
    char path[300];
    snprintf(path, sizeof path, "%s/tilejson.json", dir);
    s->tj = read_all(path, &s->tj_len);
    snprintf(path, sizeof path, "%s/3/5/3.png", dir);
    s->tile = read_all(path, &s->tile_len);
    s->mb = read_all(mb, &s->mb_len);
    assert_non_null(s->tj);
    assert_non_null(s->tile);
    assert_non_null(s->mb);
}

static void assert_unchanged(const char *dir, const char *mb, snapshot *before)
{
    snapshot now;
    snap(dir, mb, &now);
    assert_int_equal(now.tj_len, before->tj_len);
    assert_memory_equal(now.tj, before->tj, now.tj_len);
    assert_int_equal(now.tile_len, before->tile_len);
    assert_memory_equal(now.tile, before->tile, now.tile_len);
    assert_int_equal(now.mb_len, before->mb_len);
    assert_memory_equal(now.mb, before->mb, now.mb_len);
    free(now.tj);
    free(now.tile);
    free(now.mb);
}

static void abort_leaves_the_previous_pyramid_byte_identical(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    char dir[256], mb[256];
    path_in(dir, sizeof dir, "keep");
    path_in(mb, sizeof mb, "keep.mbtiles");
    assert_int_equal(make_pyramid(ctx, dir, mb, &META, 1), PM_OK);
    snapshot before;
    snap(dir, mb, &before);
    pm_pyramid *p;
    assert_int_equal(pm_pyramid_open(ctx, dir, mb, &META, &p), PM_OK);
    uint8_t buf[64];
    size_t len = tile_bytes(3, 5, 3, 9, buf);
    assert_int_equal(pm_pyramid_put(ctx, p, 3, 5, 3, buf, len), PM_OK);
    assert_int_equal(temporaries(), 2); /* the directory and the file */
    assert_unchanged(dir, mb, &before);  /* nothing visible before commit */
    pm_pyramid_abort(p);
    assert_unchanged(dir, mb, &before);
    assert_int_equal(temporaries(), 0);
    pm_pyramid_abort(NULL);
    free(before.tj);
    free(before.tile);
    free(before.mb);
    pm_ctx_free(ctx);
}

static void write_error_midway_keeps_the_previous_pyramid(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    char dir[256], mb[256];
    path_in(dir, sizeof dir, "full");
    path_in(mb, sizeof mb, "full.mbtiles");
    assert_int_equal(make_pyramid(ctx, dir, mb, &META, 1), PM_OK);
    snapshot before;
    snap(dir, mb, &before);
    pm_pyramid *p;
    assert_int_equal(pm_pyramid_open(ctx, dir, mb, &META, &p), PM_OK);
    uint8_t small[64];
    size_t len = tile_bytes(0, 0, 0, 3, small);
    assert_int_equal(pm_pyramid_put(ctx, p, 0, 0, 0, small, len), PM_OK);
    /* RLIMIT_FSIZE stands in for a full disk: a 64 KiB tile cannot be written */
    size_t big_len = 65536;
    uint8_t *big = calloc(1, big_len);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim.rlim_cur = 4096;
    lim.rlim_max = old.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = pm_pyramid_put(ctx, p, 1, 1, 1, big, big_len);
    setrlimit(RLIMIT_FSIZE, &old);
    free(big);
    assert_int_equal(rc, PM_E_IO);
    assert_non_null(strstr(pm_ctx_errmsg(ctx), "/1/1/1.png"));
    assert_int_equal(pm_pyramid_count(p), 1);
    assert_int_equal(pm_pyramid_commit(ctx, p), PM_E_IO); /* refuses, and frees */
    assert_non_null(strstr(pm_ctx_errmsg(ctx), dir));
    assert_unchanged(dir, mb, &before);
    assert_int_equal(temporaries(), 0);
    free(before.tj);
    free(before.tile);
    free(before.mb);
    pm_ctx_free(ctx);
}

static void stale_temporaries_are_removed_on_open(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    char dir[256], mb[256], path[300];
    path_in(dir, sizeof dir, "st");
    path_in(mb, sizeof mb, "st.mbtiles");
    const char *stale[] = {"st.tmp.ABC123", "st.old.tmp.x9Y8z7", "st.mbtiles.tmp.ABC123"};
    const char *kept[] = {"st.tmp.keep", "st.tmp.ABC1234", "stx.tmp.ABC123", "st.tmp.AB-123"};
    for (size_t i = 0; i < 2; i++) {
        path_in(path, sizeof path, stale[i]);
        assert_int_equal(mkdir(path, 0700), 0);
        strcat(path, "/0");
        assert_int_equal(mkdir(path, 0700), 0);
        strcat(path, "/0.png");
        fclose(fopen(path, "w"));
    }
    path_in(path, sizeof path, stale[2]);
    fclose(fopen(path, "w"));
    for (size_t i = 0; i < 4; i++) {
        path_in(path, sizeof path, kept[i]);
        fclose(fopen(path, "w"));
    }
    pm_pyramid *p;
    assert_int_equal(pm_pyramid_open(ctx, dir, mb, &META, &p), PM_OK);
    for (size_t i = 0; i < 3; i++) {
        path_in(path, sizeof path, stale[i]);
        assert_false(exists(path));
    }
    for (size_t i = 0; i < 4; i++) {
        path_in(path, sizeof path, kept[i]);
        assert_true(exists(path));
        unlink(path);
    }
    pm_pyramid_abort(p);
    assert_int_equal(temporaries(), 0);
    pm_ctx_free(ctx);
}

/* open, put, commit with the n-th allocation failing: 1 done, 0 failed. */
static int pyramid_with_failure_at(pm_ctx *ctx, const char *dir, const char *mb, long n,
                                   long *made)
{
    pm_alloc_fail_at(n);
    int rc = make_pyramid(ctx, dir, mb, &META, 4);
    *made = pm_alloc_count();
    pm_alloc_fail_at(0);
    if (rc == PM_OK)
        return 1;
    assert_int_equal(rc, PM_E_NOMEM);
    return 0;
}

static void allocation_failures_leave_no_temporary(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    char dir[256], mb[256];
    path_in(dir, sizeof dir, "oom");
    path_in(mb, sizeof mb, "oom.mbtiles");
    assert_int_equal(make_pyramid(ctx, dir, mb, &META, 1), PM_OK); /* to be replaced */
    int failures = 0;
    for (long n = 1;; n++) {
        long made;
        int ok = pyramid_with_failure_at(ctx, dir, mb, n, &made);
        assert_int_equal(temporaries(), 0);
        if (!ok)
            assert_tile_file(dir, 3, 5, 3, 1); /* the previous one, whole */
        if (ok) {
            assert_true(n > made); /* succeeds only once nothing failed */
            break;
        }
        failures++;
    }
    assert_true(failures >= 5);
    assert_tile_file(dir, 3, 5, 3, 4);
    pm_ctx_free(ctx);
}

static void bad_metadata_is_a_usage_error(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    char dir[256];
    path_in(dir, sizeof dir, "bad");
    pm_pyramid *p = (pm_pyramid *)1;
    assert_int_equal(pm_pyramid_open(ctx, NULL, NULL, &META, &p), PM_E_USAGE);
    assert_null(p);
    assert_int_equal(pm_pyramid_open(ctx, dir, NULL, NULL, &p), PM_E_USAGE);
    pm_pyramid_meta m[9];
    for (int i = 0; i < 9; i++)
        m[i] = META;
    m[0].name = NULL;
    m[1].minzoom = 4;               /* above maxzoom */
    m[2].maxzoom = 25;
    m[3].minzoom = -1;
    m[4].tile_size = 300;
    m[5].bounds[0] = 87;            /* west of east */
    m[6].bounds[3] = NAN;
    m[7].bounds[1] = -91;
    m[8].legend_json = "{\"title\": ";
    for (int i = 0; i < 9; i++) {
        assert_int_equal(pm_pyramid_open(ctx, dir, NULL, &m[i], &p), PM_E_USAGE);
        assert_null(p);
    }
    assert_non_null(strstr(pm_ctx_errmsg(ctx), "legend"));
    assert_int_equal(temporaries(), 0);
    assert_false(exists(dir));
    pm_ctx_free(ctx);
}

static void tiles_outside_the_pyramid_are_usage_errors(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    char dir[256], mb[256];
    path_in(dir, sizeof dir, "badput");
    path_in(mb, sizeof mb, "badput.mbtiles");
    pm_pyramid *p;
    assert_int_equal(pm_pyramid_open(ctx, dir, mb, &META, &p), PM_OK);
    uint8_t buf[64];
    size_t len = tile_bytes(0, 0, 0, 1, buf);
    assert_int_equal(pm_pyramid_put(ctx, p, -1, 0, 0, buf, len), PM_E_USAGE);
    assert_int_equal(pm_pyramid_put(ctx, p, 25, 0, 0, buf, len), PM_E_USAGE);
    assert_int_equal(pm_pyramid_put(ctx, p, 1, 2, 0, buf, len), PM_E_USAGE);
    assert_int_equal(pm_pyramid_put(ctx, p, 1, 0, 2, buf, len), PM_E_USAGE);
    assert_int_equal(pm_pyramid_put(ctx, p, 0, 0, 0, buf, 0), PM_E_USAGE);
    assert_int_equal(pm_pyramid_put(ctx, p, 0, 0, 0, NULL, len), PM_E_USAGE);
    assert_int_equal(pm_pyramid_put(ctx, p, 24, 16777215, 16777215, buf, len), PM_OK);
    assert_int_equal(pm_pyramid_put(ctx, p, 0, 0, 0, buf, len), PM_OK);
    assert_int_equal(pm_pyramid_put(ctx, p, 0, 0, 0, buf, len), PM_E_USAGE); /* twice */
    assert_non_null(strstr(pm_ctx_errmsg(ctx), "twice"));
    assert_int_equal(pm_pyramid_count(p), 2);
    assert_int_equal(pm_pyramid_commit(ctx, p), PM_OK); /* usage errors do not spoil it */
    assert_tile_file(dir, 0, 0, 0, 1);
    pm_ctx_free(ctx);
}

static void mbtiles_alone_rejects_a_tile_put_twice(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    char mb[256];
    path_in(mb, sizeof mb, "twice.mbtiles");
    pm_pyramid *p;
    assert_int_equal(pm_pyramid_open(ctx, NULL, mb, &META, &p), PM_OK);
    uint8_t buf[64];
    size_t len = tile_bytes(2, 1, 1, 1, buf);
    assert_int_equal(pm_pyramid_put(ctx, p, 2, 1, 1, buf, len), PM_OK);
    assert_int_equal(pm_pyramid_put(ctx, p, 2, 1, 1, buf, len), PM_E_USAGE);
    assert_int_equal(pm_pyramid_count(p), 1);
    pm_pyramid_abort(p);
    assert_false(exists(mb));
    assert_int_equal(temporaries(), 0);
    pm_ctx_free(ctx);
}

static void directory_alone_rejects_a_tile_put_twice(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    char dir[256];
    path_in(dir, sizeof dir, "twice");
    pm_pyramid *p;
    assert_int_equal(pm_pyramid_open(ctx, dir, NULL, &META, &p), PM_OK);
    uint8_t buf[64], other[64];
    size_t len = tile_bytes(2, 1, 1, 1, buf), other_len = tile_bytes(2, 1, 1, 2, other);
    assert_int_equal(pm_pyramid_put(ctx, p, 2, 1, 1, buf, len), PM_OK);
    assert_int_equal(pm_pyramid_put(ctx, p, 2, 1, 1, other, other_len), PM_E_USAGE);
    assert_non_null(strstr(pm_ctx_errmsg(ctx), "/2/1/1.png"));
    assert_int_equal(pm_pyramid_count(p), 1);
    assert_int_equal(pm_pyramid_commit(ctx, p), PM_OK);
    assert_tile_file(dir, 2, 1, 1, 1); /* the first one stays */
    pm_ctx_free(ctx);
}

static void targets_that_are_not_pyramids_are_refused(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    char dir[256], path[300];
    pm_pyramid *p;
    /* a plain file where the directory should be */
    path_in(dir, sizeof dir, "plainfile");
    fclose(fopen(dir, "w"));
    assert_int_equal(pm_pyramid_open(ctx, dir, NULL, &META, &p), PM_E_USAGE);
    assert_non_null(strstr(pm_ctx_errmsg(ctx), dir));
    /* a directory with someone's files and no tilejson.json */
    path_in(dir, sizeof dir, "home");
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/thesis.txt", dir);
    fclose(fopen(path, "w"));
    assert_int_equal(pm_pyramid_open(ctx, dir, NULL, &META, &p), PM_E_USAGE);
    assert_true(exists(path));
    /* a directory where the MBTiles file should be */
    assert_int_equal(pm_pyramid_open(ctx, NULL, dir, &META, &p), PM_E_USAGE);
    assert_int_equal(pm_pyramid_open(ctx, "/", NULL, &META, &p), PM_E_USAGE);
    assert_int_equal(temporaries(), 0);
    /* an empty directory is fine, and a trailing slash keeps the temporary beside it */
    path_in(dir, sizeof dir, "empty/");
    mkdir(dir, 0700);
    assert_int_equal(pm_pyramid_open(ctx, dir, NULL, &META, &p), PM_OK);
    assert_int_equal(temporaries(), 1);
    assert_int_equal(pm_pyramid_commit(ctx, p), PM_OK);
    snprintf(path, sizeof path, "%stilejson.json", dir);
    assert_true(exists(path));
    assert_int_equal(temporaries(), 0);
    pm_ctx_free(ctx);
}

static void missing_parent_directory_is_an_io_error_naming_it(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    pm_pyramid *p;
    assert_int_equal(pm_pyramid_open(ctx, "/nonexistent/dir/tiles", NULL, &META, &p), PM_E_IO);
    assert_non_null(strstr(pm_ctx_errmsg(ctx), "/nonexistent/dir/tiles"));
    assert_int_equal(pm_pyramid_open(ctx, NULL, "/nonexistent/x.mbtiles", &META, &p), PM_E_IO);
    assert_non_null(strstr(pm_ctx_errmsg(ctx), "/nonexistent/x.mbtiles"));
    pm_ctx_free(ctx);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(base) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    return system(cmd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(directory_holds_every_tile_at_z_x_y),
        cmocka_unit_test(tilejson_has_the_tilejson3_members),
        cmocka_unit_test(tilejson_leaves_out_what_was_not_given),
        cmocka_unit_test(mbtiles_rows_use_tms_numbering),
        cmocka_unit_test(mbtiles_has_the_schema_and_metadata),
        cmocka_unit_test(mbtiles_without_optional_metadata_has_no_such_rows),
        cmocka_unit_test(gdal_reads_the_mbtiles),
        cmocka_unit_test(recommit_replaces_the_previous_pyramid),
        cmocka_unit_test(abort_leaves_the_previous_pyramid_byte_identical),
        cmocka_unit_test(write_error_midway_keeps_the_previous_pyramid),
        cmocka_unit_test(stale_temporaries_are_removed_on_open),
        cmocka_unit_test(allocation_failures_leave_no_temporary),
        cmocka_unit_test(bad_metadata_is_a_usage_error),
        cmocka_unit_test(tiles_outside_the_pyramid_are_usage_errors),
        cmocka_unit_test(mbtiles_alone_rejects_a_tile_put_twice),
        cmocka_unit_test(directory_alone_rejects_a_tile_put_twice),
        cmocka_unit_test(targets_that_are_not_pyramids_are_refused),
        cmocka_unit_test(missing_parent_directory_is_an_io_error_naming_it),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
