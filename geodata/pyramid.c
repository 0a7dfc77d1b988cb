/* pyramid.c — a tile pyramid written beside its targets and moved into
 * place at commit (see pm_pyramid.h): a z/x/y.png directory with a
 * TileJSON 3.0.0 tilejson.json, and/or an MBTiles 1.3 file.
 *
 * Temporaries are named <target>.tmp.XXXXXX (and, while an old directory
 * is being replaced, <target>.old.tmp.XXXXXX); open removes siblings with
 * exactly those names, left by a run that crashed. */
#include "pm_pyramid.h"
#include "../engine/pm_alloc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_ZOOM 24
#define TMP_SUFFIX ".tmp.XXXXXX"
#define OLD_SUFFIX ".old.tmp.XXXXXX"
#define TILE_NAME_MAX 40 /* "/24/16777215/16777215.png", "/tilejson.json" */

struct pm_pyramid {
    char *dir, *dir_tmp;    /* target directory, its temporary (NULL: none) */
    char *dir_old;          /* mkdtemp template for moving an old target aside */
    char *path;             /* scratch: dir_tmp + a tile or file name */
    size_t dir_tmp_len;
    char *mb, *mb_tmp;      /* target .mbtiles, its temporary */
    sqlite3 *db;
    sqlite3_stmt *ins;      /* INSERT INTO tiles */
    char *name, *description, *attribution;
    json_t *legend;         /* NULL when none */
    int minzoom, maxzoom, tile_size;
    double bounds[4];
    size_t count;
    int broken;             /* a put failed half-way: commit refuses */
};

/* ---- files and directories ---------------------------------------- */

static mode_t current_umask(void)
{
    mode_t um = umask(0);
    umask(um);
    return um;
}

static char *concat(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *s = pm_malloc(na + nb + 1);
    if (s) {
        memcpy(s, a, na);
        memcpy(s + na, b, nb + 1);
    }
    return s;
}

/* Removes name (relative to dirfd) and, for a directory, everything in
 * it; symbolic links are removed, never followed.  0 when it is gone. */
static int remove_tree_at(int dirfd, const char *name)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlinkat(dirfd, name, 0);
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            remove_tree_at(fd, e->d_name);
    closedir(d);
    return unlinkat(dirfd, name, AT_REMOVEDIR);
}

static int remove_tree(const char *path) { return remove_tree_at(AT_FDCWD, path); }

/* name is base + ".tmp." or ".old.tmp." + six letters or digits. */
static int is_temp_of(const char *name, const char *base)
{
    size_t n = strlen(base);
    if (strncmp(name, base, n) != 0)
        return 0;
    const char *rest = name + n;
    if (strncmp(rest, ".old.tmp.", 9) == 0)
        rest += 9;
    else if (strncmp(rest, ".tmp.", 5) == 0)
        rest += 5;
    else
        return 0;
    if (strlen(rest) != 6)
        return 0;
    for (; *rest; rest++)
        if (!isalnum((unsigned char)*rest))
            return 0;
    return 1;
}

/* Removes temporaries of target left beside it by a crashed run. */
static int remove_stale(pm_ctx *ctx, const char *target)
{
    const char *slash = strrchr(target, '/');
    const char *base = slash ? slash + 1 : target;
    char *parent = slash ? pm_strndup(target, (size_t)(base - target)) : pm_strdup(".");
    if (!parent)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory opening %s", target);
    DIR *d = opendir(parent);
    if (d) { /* a missing parent is reported when the temporary is made */
        for (struct dirent *e; (e = readdir(d));) {
            if (!is_temp_of(e->d_name, base))
                continue;
            if (remove_tree_at(dirfd(d), e->d_name) == 0)
                pm_ctx_log(ctx, PM_LOG_INFO, "removed %s%s, left by an earlier run", parent,
                           e->d_name);
            else
                pm_ctx_log(ctx, PM_LOG_WARN, "cannot remove %s%s: %s", parent, e->d_name,
                           strerror(errno));
        }
        closedir(d);
    }
    pm_free(parent);
    return PM_OK;
}

/* Writes len bytes to a new file at path; excl: the file must not exist
 * (a tile put twice is a usage error).  A partial file is removed. */
static int write_file(pm_ctx *ctx, const char *path, const void *data, size_t len, int excl)
{
    FILE *f = fopen(path, excl ? "wbx" : "wb");
    if (!f) {
        int e = errno;
        return PM_ERR(ctx, excl && e == EEXIST ? PM_E_USAGE : PM_E_IO, "cannot create %s: %s",
                      path, e == EEXIST ? "tile put twice" : strerror(e));
    }
    int bad = fwrite(data, 1, len, f) != len;
    int e = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        unlink(path);
        return PM_ERR(ctx, PM_E_IO, "cannot write %s: %s", path, strerror(e));
    }
    return PM_OK;
}

/* mkdir that accepts an existing directory. */
static int make_dir(pm_ctx *ctx, const char *path)
{
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return PM_ERR(ctx, PM_E_IO, "cannot create directory %s: %s", path, strerror(errno));
    return PM_OK;
}

/* An existing target directory is replaced only if it is a pyramid (has
 * tilejson.json) or empty: a mistyped path must not delete someone's
 * files. */
static int check_dir_target(pm_ctx *ctx, const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return PM_OK; /* will be created */
    if (!S_ISDIR(st.st_mode))
        return PM_ERR(ctx, PM_E_USAGE, "%s exists and is not a directory", dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return PM_ERR(ctx, PM_E_IO, "cannot read %s: %s", dir, strerror(errno));
    if (fstatat(fd, "tilejson.json", &st, 0) == 0) {
        close(fd);
        return PM_OK;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return PM_ERR(ctx, PM_E_IO, "cannot read %s: %s", dir, strerror(errno));
    }
    int empty = 1;
    for (struct dirent *e; empty && (e = readdir(d));)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty ? PM_OK
                 : PM_ERR(ctx, PM_E_USAGE,
                          "%s is neither empty nor a tile pyramid (no tilejson.json): "
                          "refusing to replace it",
                          dir);
}

/* ---- open ----------------------------------------------------------- */

static int check_meta(pm_ctx *ctx, const pm_pyramid_meta *m)
{
    if (!m->name || !*m->name)
        return PM_ERR(ctx, PM_E_USAGE, "pyramid: the layer needs a name");
    if (m->minzoom < 0 || m->minzoom > m->maxzoom || m->maxzoom > MAX_ZOOM)
        return PM_ERR(ctx, PM_E_USAGE, "pyramid %s: zoom range %d..%d is not within 0..%d",
                      m->name, m->minzoom, m->maxzoom, MAX_ZOOM);
    if (m->tile_size != 256 && m->tile_size != 512)
        return PM_ERR(ctx, PM_E_USAGE, "pyramid %s: tile size %d is not 256 or 512", m->name,
                      m->tile_size);
    const double *b = m->bounds;
    for (int i = 0; i < 4; i++)
        if (!isfinite(b[i]))
            return PM_ERR(ctx, PM_E_USAGE, "pyramid %s: bounds are not finite", m->name);
    if (!(-180 <= b[0] && b[0] < b[2] && b[2] <= 180 && -90 <= b[1] && b[1] < b[3] && b[3] <= 90))
        return PM_ERR(ctx, PM_E_USAGE,
                      "pyramid %s: bounds %g,%g,%g,%g are not west,south,east,north in degrees",
                      m->name, b[0], b[1], b[2], b[3]);
    return PM_OK;
}

static int copy_meta(pm_ctx *ctx, pm_pyramid *p, const pm_pyramid_meta *m)
{
    p->name = pm_strdup(m->name);
    p->description = m->description ? pm_strdup(m->description) : NULL;
    p->attribution = m->attribution ? pm_strdup(m->attribution) : NULL;
    if (!p->name || (m->description && !p->description) || (m->attribution && !p->attribution))
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory opening pyramid %s", m->name);
    p->minzoom = m->minzoom;
    p->maxzoom = m->maxzoom;
    p->tile_size = m->tile_size;
    memcpy(p->bounds, m->bounds, sizeof p->bounds);
    if (m->legend_json) {
        json_error_t err;
        p->legend = json_loads(m->legend_json, JSON_DECODE_ANY, &err);
        if (!p->legend)
            return PM_ERR(ctx, PM_E_USAGE, "pyramid %s: legend: line %d column %d: %s", m->name,
                          err.line, err.column, err.text);
    }
    return PM_OK;
}

/* The target without trailing slashes (so the temporary is a sibling). */
static int set_dir_target(pm_ctx *ctx, pm_pyramid *p, const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    const char *base = dir + n;
    while (base > dir && base[-1] != '/')
        base--;
    size_t nb = (size_t)(dir + n - base);
    if (nb == 0 || (nb == 1 && base[0] == '.') || (nb == 2 && base[0] == '.' && base[1] == '.'))
        return PM_ERR(ctx, PM_E_USAGE, "%s cannot be a tile directory (name a subdirectory)", dir);
    p->dir = pm_strndup(dir, n);
    return p->dir ? PM_OK : PM_ERR(ctx, PM_E_NOMEM, "out of memory opening %s", dir);
}

static int open_dir(pm_ctx *ctx, pm_pyramid *p, const char *dir)
{
    int rc = set_dir_target(ctx, p, dir);
    if (!rc)
        rc = check_dir_target(ctx, p->dir);
    if (!rc)
        rc = remove_stale(ctx, p->dir);
    if (rc)
        return rc;
    char *tmp = concat(p->dir, TMP_SUFFIX);
    p->dir_tmp_len = strlen(p->dir) + strlen(TMP_SUFFIX);
    p->path = pm_malloc(p->dir_tmp_len + TILE_NAME_MAX);
    p->dir_old = concat(p->dir, OLD_SUFFIX); /* now: commit allocates nothing */
    if (!tmp || !p->path || !p->dir_old) {
        pm_free(tmp);
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory opening %s", p->dir);
    }
    if (!mkdtemp(tmp)) {
        int e = errno;
        pm_free(tmp);
        return PM_ERR(ctx, PM_E_IO, "cannot create a temporary directory beside %s: %s", p->dir,
                      strerror(e));
    }
    p->dir_tmp = tmp;
    chmod(tmp, 0777 & ~current_umask()); /* mkdtemp makes 0700 */
    return PM_OK;
}

static int sql_error(pm_ctx *ctx, const pm_pyramid *p, const char *what)
{
    return PM_ERR(ctx, PM_E_IO, "%s: %s: %s", p->mb, what,
                  p->db ? sqlite3_errmsg(p->db) : "out of memory");
}

static const char MB_SCHEMA[] =
    "PRAGMA journal_mode=OFF;"
    "BEGIN;"
    "CREATE TABLE metadata (name text, value text);"
    "CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, "
    "tile_data blob);"
    "CREATE UNIQUE INDEX tile_index on tiles (zoom_level, tile_column, tile_row);";

static int open_mbtiles(pm_ctx *ctx, pm_pyramid *p, const char *mb)
{
    struct stat st;
    if (stat(mb, &st) == 0 && S_ISDIR(st.st_mode))
        return PM_ERR(ctx, PM_E_USAGE, "%s is a directory, not an MBTiles file", mb);
    p->mb = pm_strdup(mb);
    if (!p->mb)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory opening %s", mb);
    int rc = remove_stale(ctx, p->mb);
    if (rc)
        return rc;
    char *tmp = concat(mb, TMP_SUFFIX);
    if (!tmp)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory opening %s", mb);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        pm_free(tmp);
        return PM_ERR(ctx, PM_E_IO, "cannot create a temporary file beside %s: %s", mb,
                      strerror(e));
    }
    p->mb_tmp = tmp;
    fchmod(fd, 0666 & ~current_umask()); /* mkstemp makes 0600 */
    close(fd);
    if (sqlite3_open_v2(tmp, &p->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        return sql_error(ctx, p, "cannot open");
    if (sqlite3_exec(p->db, MB_SCHEMA, NULL, NULL, NULL) != SQLITE_OK)
        return sql_error(ctx, p, "cannot create the tables");
    if (sqlite3_prepare_v2(p->db,
                           "INSERT INTO tiles (zoom_level, tile_column, tile_row, tile_data) "
                           "VALUES (?, ?, ?, ?)",
                           -1, &p->ins, NULL) != SQLITE_OK)
        return sql_error(ctx, p, "cannot prepare the tile insert");
    return PM_OK;
}

int pm_pyramid_open(pm_ctx *ctx, const char *dir, const char *mbtiles, const pm_pyramid_meta *meta,
                    pm_pyramid **out)
{
    *out = NULL;
    if (!dir && !mbtiles)
        return PM_ERR(ctx, PM_E_USAGE, "pyramid: neither a directory nor an MBTiles file given");
    if (!meta)
        return PM_ERR(ctx, PM_E_USAGE, "pyramid: no metadata given");
    int rc = check_meta(ctx, meta);
    if (rc)
        return rc;
    pm_pyramid *p = pm_calloc(1, sizeof *p);
    if (!p)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory opening pyramid %s", meta->name);
    rc = copy_meta(ctx, p, meta);
    if (!rc && dir)
        rc = open_dir(ctx, p, dir);
    if (!rc && mbtiles)
        rc = open_mbtiles(ctx, p, mbtiles);
    if (rc) {
        pm_pyramid_abort(p);
        return rc;
    }
    *out = p;
    return PM_OK;
}

/* ---- put ------------------------------------------------------------ */

static int put_file(pm_ctx *ctx, pm_pyramid *p, int z, uint32_t x, uint32_t y, const uint8_t *png,
                    size_t len)
{
    char *end = p->path + p->dir_tmp_len;
    memcpy(p->path, p->dir_tmp, p->dir_tmp_len);
    snprintf(end, TILE_NAME_MAX, "/%d", z);
    int rc = make_dir(ctx, p->path);
    if (rc)
        return rc;
    snprintf(end, TILE_NAME_MAX, "/%d/%u", z, (unsigned)x);
    rc = make_dir(ctx, p->path);
    if (rc)
        return rc;
    snprintf(end, TILE_NAME_MAX, "/%d/%u/%u.png", z, (unsigned)x, (unsigned)y);
    return write_file(ctx, p->path, png, len, 1);
}

static int put_row(pm_ctx *ctx, pm_pyramid *p, int z, uint32_t x, uint32_t y, const uint8_t *png,
                   size_t len)
{
    sqlite3_stmt *s = p->ins;
    sqlite3_bind_int(s, 1, z);
    sqlite3_bind_int64(s, 2, x);
    sqlite3_bind_int64(s, 3, ((int64_t)1 << z) - 1 - y); /* TMS row */
    sqlite3_bind_blob64(s, 4, png, len, SQLITE_STATIC);
    int step = sqlite3_step(s);
    int rc = PM_OK;
    if (step == SQLITE_CONSTRAINT)
        rc = PM_ERR(ctx, PM_E_USAGE, "%s: tile %d/%u/%u put twice", p->mb, z, (unsigned)x,
                    (unsigned)y);
    else if (step != SQLITE_DONE)
        rc = sql_error(ctx, p, "cannot insert a tile");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

int pm_pyramid_put(pm_ctx *ctx, pm_pyramid *p, int z, uint32_t x, uint32_t y, const uint8_t *png,
                   size_t len)
{
    if (!p || !png || len == 0)
        return PM_ERR(ctx, PM_E_USAGE, "pyramid: no tile data");
    if (z < 0 || z > MAX_ZOOM || x >= (UINT64_C(1) << z) || y >= (UINT64_C(1) << z))
        return PM_ERR(ctx, PM_E_USAGE, "pyramid %s: no tile %d/%u/%u", p->name, z, (unsigned)x,
                      (unsigned)y);
    int rc = p->dir_tmp ? put_file(ctx, p, z, x, y, png, len) : PM_OK;
    if (!rc && p->db)
        rc = put_row(ctx, p, z, x, y, png, len);
    if (rc == PM_OK)
        p->count++;
    else if (rc != PM_E_USAGE)
        p->broken = 1;
    return rc;
}

size_t pm_pyramid_count(const pm_pyramid *p) { return p ? p->count : 0; }

/* ---- commit --------------------------------------------------------- */

static void free_json_string(char *s)
{
    json_free_t f;
    json_get_alloc_funcs(NULL, &f);
    f(s);
}

static json_t *tilejson(const pm_pyramid *p)
{
    json_t *o = json_object();
    json_t *tiles = json_array(), *bounds = json_array(), *center = json_array();
    int bad = !o || json_array_append_new(tiles, json_string("{z}/{x}/{y}.png"));
    for (int i = 0; i < 4; i++)
        bad |= json_array_append_new(bounds, json_real(p->bounds[i]));
    bad |= json_array_append_new(center, json_real((p->bounds[0] + p->bounds[2]) / 2));
    bad |= json_array_append_new(center, json_real((p->bounds[1] + p->bounds[3]) / 2));
    bad |= json_array_append_new(center, json_integer(p->minzoom));
    bad |= json_object_set_new(o, "tilejson", json_string("3.0.0"));
    bad |= json_object_set_new(o, "tiles", tiles);
    bad |= json_object_set_new(o, "name", json_string(p->name));
    if (p->description)
        bad |= json_object_set_new(o, "description", json_string(p->description));
    if (p->attribution)
        bad |= json_object_set_new(o, "attribution", json_string(p->attribution));
    bad |= json_object_set_new(o, "minzoom", json_integer(p->minzoom));
    bad |= json_object_set_new(o, "maxzoom", json_integer(p->maxzoom));
    bad |= json_object_set_new(o, "bounds", bounds);
    bad |= json_object_set_new(o, "center", center);
    bad |= json_object_set_new(o, "scheme", json_string("xyz"));
    /* TileJSON 3 has no tile size member */
    bad |= json_object_set_new(o, "problemap_tile_size", json_integer(p->tile_size));
    if (p->legend)
        bad |= json_object_set(o, "problemap_legend", p->legend);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int write_tilejson(pm_ctx *ctx, pm_pyramid *p)
{
    json_t *o = tilejson(p);
    char *s = o ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(o);
    if (!s)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory writing %s/tilejson.json", p->dir);
    memcpy(p->path, p->dir_tmp, p->dir_tmp_len);
    snprintf(p->path + p->dir_tmp_len, TILE_NAME_MAX, "/tilejson.json");
    int rc = write_file(ctx, p->path, s, strlen(s), 0);
    free_json_string(s);
    return rc;
}

static int put_meta(pm_ctx *ctx, pm_pyramid *p, sqlite3_stmt *s, const char *name,
                    const char *value)
{
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
    int step = sqlite3_step(s);
    sqlite3_reset(s);
    return step == SQLITE_DONE ? PM_OK : sql_error(ctx, p, "cannot write the metadata");
}

static int put_all_meta(pm_ctx *ctx, pm_pyramid *p, sqlite3_stmt *s)
{
    const double *b = p->bounds;
    char bounds[128], center[96], minz[16], maxz[16];
    snprintf(bounds, sizeof bounds, "%.15g,%.15g,%.15g,%.15g", b[0], b[1], b[2], b[3]);
    snprintf(center, sizeof center, "%.15g,%.15g,%d", (b[0] + b[2]) / 2, (b[1] + b[3]) / 2,
             p->minzoom);
    snprintf(minz, sizeof minz, "%d", p->minzoom);
    snprintf(maxz, sizeof maxz, "%d", p->maxzoom);
    const char *rows[][2] = {
        {"name", p->name},       {"format", "png"},     {"bounds", bounds},
        {"center", center},      {"minzoom", minz},     {"maxzoom", maxz},
        {"type", "overlay"},     {"version", "1.3"},    {"description", p->description},
        {"attribution", p->attribution},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int rc = rows[i][1] ? put_meta(ctx, p, s, rows[i][0], rows[i][1]) : PM_OK;
        if (rc)
            return rc;
    }
    if (!p->legend)
        return PM_OK;
    char *legend = json_dumps(p->legend, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!legend)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory writing %s", p->mb);
    int rc = put_meta(ctx, p, s, "problemap_legend", legend);
    free_json_string(legend);
    return rc;
}

/* Metadata, COMMIT and close: the temporary file is complete. */
static int finish_mbtiles(pm_ctx *ctx, pm_pyramid *p)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(p->db, "INSERT INTO metadata (name, value) VALUES (?, ?)", -1, &s,
                           NULL) != SQLITE_OK)
        return sql_error(ctx, p, "cannot prepare the metadata insert");
    int rc = put_all_meta(ctx, p, s);
    sqlite3_finalize(s);
    if (rc)
        return rc;
    if (sqlite3_exec(p->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        return sql_error(ctx, p, "cannot commit");
    sqlite3_finalize(p->ins);
    p->ins = NULL;
    if (sqlite3_close(p->db) != SQLITE_OK)
        return sql_error(ctx, p, "cannot close");
    p->db = NULL;
    return PM_OK;
}

static int install_mbtiles(pm_ctx *ctx, pm_pyramid *p)
{
    if (rename(p->mb_tmp, p->mb) != 0)
        return PM_ERR(ctx, PM_E_IO, "cannot rename %s to %s: %s", p->mb_tmp, p->mb,
                      strerror(errno));
    pm_free(p->mb_tmp);
    p->mb_tmp = NULL;
    return PM_OK;
}

/* Moves an existing target aside, the temporary into place, and removes
 * the old one; on failure the old one is put back. */
static int install_dir(pm_ctx *ctx, pm_pyramid *p)
{
    struct stat st;
    const char *old = NULL;
    if (lstat(p->dir, &st) == 0) {
        old = p->dir_old;
        /* reserve a unique name: rename() replaces an empty directory */
        if (!mkdtemp(p->dir_old))
            return PM_ERR(ctx, PM_E_IO, "cannot create a temporary directory beside %s: %s",
                          p->dir, strerror(errno));
        if (rename(p->dir, old) != 0) {
            int rc = PM_ERR(ctx, PM_E_IO, "cannot move %s aside: %s", p->dir, strerror(errno));
            rmdir(old);
            return rc;
        }
    }
    if (rename(p->dir_tmp, p->dir) != 0) {
        int rc = PM_ERR(ctx, PM_E_IO, "cannot rename %s to %s: %s", p->dir_tmp, p->dir,
                        strerror(errno));
        if (old)
            rename(old, p->dir);
        return rc;
    }
    pm_free(p->dir_tmp);
    p->dir_tmp = NULL;
    if (old && remove_tree(old) != 0)
        pm_ctx_log(ctx, PM_LOG_WARN, "cannot remove the previous pyramid %s: %s", old,
                   strerror(errno));
    return PM_OK;
}

int pm_pyramid_commit(pm_ctx *ctx, pm_pyramid *p)
{
    if (!p)
        return PM_ERR(ctx, PM_E_USAGE, "pyramid: nothing to commit");
    int rc = PM_OK;
    if (p->broken)
        rc = PM_ERR(ctx, PM_E_IO, "%s: not written, a tile could not be stored",
                    p->dir ? p->dir : p->mb);
    if (!rc && p->dir)
        rc = write_tilejson(ctx, p);
    if (!rc && p->mb)
        rc = finish_mbtiles(ctx, p);
    if (!rc && p->mb)
        rc = install_mbtiles(ctx, p);
    if (!rc && p->dir)
        rc = install_dir(ctx, p);
    pm_pyramid_abort(p); /* frees; removes whatever temporary is left */
    return rc;
}

void pm_pyramid_abort(pm_pyramid *p)
{
    if (!p)
        return;
    sqlite3_finalize(p->ins);
    sqlite3_close(p->db);
    if (p->mb_tmp)
        unlink(p->mb_tmp);
    if (p->dir_tmp)
        remove_tree(p->dir_tmp);
    json_decref(p->legend);
    pm_free(p->dir);
    pm_free(p->dir_tmp);
    pm_free(p->dir_old);
    pm_free(p->path);
    pm_free(p->mb);
    pm_free(p->mb_tmp);
    pm_free(p->name);
    pm_free(p->description);
    pm_free(p->attribution);
    pm_free(p);
}
