/* test_snap.c — snapshot files of sections (engine/snap.c) and what the
 * map's dataset keeps in them: the complaints' columns (complaint.c), their
 * placement (locate.c) and the heat map's points (render/points.c).
 *
 * The container: sections read back in place and aligned, a section
 * written in pieces equals one written whole, misuse of the writer is
 * refused and sticks (no file is left), and every kind of damage is named:
 * the header's checksum, a section's, a file cut short, another magic or
 * version, a missing section, wrong element sizes and counts.  The parts:
 * each reads back equal to what was written, accessor by accessor, in the
 * compact columns and in the whole ones; values no batch, placement or
 * point set can hold are refused naming their section (crafted with the
 * tags docs/dataset.md gives); allocation failures while writing and
 * reading leave no file and no leak. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../engine/pm_alloc.h"
#include "../../engine/pm_complaint.h"
#include "../../engine/pm_ctx.h"
#include "../../engine/pm_locate.h"
#include "../../engine/pm_snap.h"
#include "../../render/heat_impl.h"
#include "../../render/pm_heat.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

static const char MAGIC[8] = {'P', 'M', 'T', 'E', 'S', 'T', 0, 0};
#define T_A PM_SNAP_TAG('t', 'A', 'A', 'A')
#define T_B PM_SNAP_TAG('t', 'B', 'B', 'B')
#define T_C PM_SNAP_TAG('t', 'C', 'C', 'C')

typedef struct dir {
    char path[64];
    pm_ctx *ctx;
} dir;

static void dir_open(dir *d)
{
    snprintf(d->path, sizeof d->path, "/tmp/pm-test-snap-XXXXXX");
    assert_non_null(mkdtemp(d->path));
    d->ctx = pm_ctx_new();
    assert_non_null(d->ctx);
}

static const char *dir_file(const dir *d, const char *name, char out[128])
{
    snprintf(out, 128, "%s/%s", d->path, name);
    return out;
}

/* Removes the files (there must be none but those named) and the directory. */
static void dir_close(dir *d, const char *const *names, size_t n)
{
    char p[128];
    for (size_t i = 0; i < n; i++)
        unlink(dir_file(d, names[i], p));
    assert_int_equal(rmdir(d->path), 0);   /* no temporary left behind */
    pm_ctx_free(d->ctx);
}

static int msg_has(const pm_ctx *ctx, const char *s)
{
    if (strstr(pm_ctx_errmsg(ctx), s))
        return 1;
    fprintf(stderr, "message \"%s\" lacks \"%s\"\n", pm_ctx_errmsg(ctx), s);
    return 0;
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n ? *n : 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static void spill(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* ---- the container ------------------------------------------------------------ */

static const uint32_t A_VALUES[5] = {1, 2, 3, 0xdeadbeef, 5};
static const double B_VALUES[3] = {0.5, -1e300, NAN};

/* tAAA: 5 u32 (written whole); tCCC: empty, so that tBBB starts where it
 * does; tBBB: 3 doubles (in pieces). */
static void write_abc(dir *d, const char *path)
{
    pm_snap_writer *w;
    assert_int_equal(pm_snap_writer_new(d->ctx, path, MAGIC, 3, &w), PM_OK);
    assert_int_equal(pm_snap_put(d->ctx, w, T_A, A_VALUES, 4, 5), PM_OK);
    assert_int_equal(pm_snap_put(d->ctx, w, T_C, NULL, 2, 0), PM_OK);
    assert_int_equal(pm_snap_begin(d->ctx, w, T_B, 8), PM_OK);
    assert_int_equal(pm_snap_append(d->ctx, w, B_VALUES, 8), PM_OK);
    assert_int_equal(pm_snap_append(d->ctx, w, B_VALUES + 1, 16), PM_OK);
    assert_int_equal(pm_snap_end(d->ctx, w), PM_OK);
    assert_int_equal(pm_snap_writer_commit(d->ctx, w), PM_OK);
}

static void sections_read_back_in_place(void **state)
{
    (void)state;
    dir d;
    dir_open(&d);
    char p[128];
    write_abc(&d, dir_file(&d, "a.snap", p));
    pm_snap *s;
    assert_int_equal(pm_snap_open(d.ctx, p, MAGIC, 3, &s), PM_OK);
    const void *v;
    size_t n;
    assert_int_equal(pm_snap_section(d.ctx, s, T_A, 4, SIZE_MAX, &v, &n), PM_OK);
    assert_int_equal(n, 5);
    assert_memory_equal(v, A_VALUES, sizeof A_VALUES);
    assert_int_equal((uintptr_t)v % 64, 0);   /* aligned for any column */
    assert_int_equal(pm_snap_section(d.ctx, s, T_B, 8, 3, &v, &n), PM_OK);
    assert_memory_equal(v, B_VALUES, sizeof B_VALUES);   /* NaN's bits too */
    assert_int_equal((uintptr_t)v % 64, 0);
    assert_int_equal(pm_snap_section(d.ctx, s, T_C, 2, 0, &v, &n), PM_OK);
    assert_int_equal(n, 0);
    /* a second look (checksum already checked) gives the same */
    assert_int_equal(pm_snap_section(d.ctx, s, T_A, 4, 5, &v, NULL), PM_OK);
    assert_memory_equal(v, A_VALUES, sizeof A_VALUES);
    pm_snap_free(s);
    static const char *const names[] = {"a.snap"};
    dir_close(&d, names, 1);
}

static void writer_refuses_misuse_and_it_sticks(void **state)
{
    (void)state;
    dir d;
    dir_open(&d);
    char p[128];
    pm_snap_writer *w;
    assert_int_equal(pm_snap_writer_new(d.ctx, "-", MAGIC, 1, &w), PM_E_USAGE);
    assert_null(w);
    /* a tag twice */
    assert_int_equal(pm_snap_writer_new(d.ctx, dir_file(&d, "x.snap", p), MAGIC, 1, &w), PM_OK);
    assert_int_equal(pm_snap_put(d.ctx, w, T_A, A_VALUES, 4, 5), PM_OK);
    assert_int_equal(pm_snap_put(d.ctx, w, T_A, A_VALUES, 4, 5), PM_E_USAGE);
    assert_true(msg_has(d.ctx, "'tAAA' written twice"));
    /* sticky: a good section fails now, and so does the commit */
    assert_int_equal(pm_snap_put(d.ctx, w, T_B, B_VALUES, 8, 3), PM_E_USAGE);
    assert_int_equal(pm_snap_writer_commit(d.ctx, w), PM_E_USAGE);
    assert_int_equal(access(p, F_OK), -1);
    /* bytes that are not whole elements; a section inside another; too many */
    assert_int_equal(pm_snap_writer_new(d.ctx, p, MAGIC, 1, &w), PM_OK);
    assert_int_equal(pm_snap_begin(d.ctx, w, T_A, 4), PM_OK);
    assert_int_equal(pm_snap_append(d.ctx, w, A_VALUES, 3), PM_OK);
    assert_int_equal(pm_snap_end(d.ctx, w), PM_E_USAGE);
    assert_true(msg_has(d.ctx, "not whole elements of 4"));
    pm_snap_writer_free(w);
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(pm_snap_writer_new(d.ctx, p, MAGIC, 1, &w), PM_OK);
    assert_int_equal(pm_snap_begin(d.ctx, w, T_A, 4), PM_OK);
    assert_int_equal(pm_snap_begin(d.ctx, w, T_B, 4), PM_E_USAGE);
    pm_snap_writer_free(w);
    assert_int_equal(pm_snap_writer_new(d.ctx, p, MAGIC, 1, &w), PM_OK);
    int rc = PM_OK;
    for (uint32_t i = 0; i <= PM_SNAP_MAX_SECTIONS && rc == PM_OK; i++)
        rc = pm_snap_put(d.ctx, w, PM_SNAP_TAG('n', i & 0xff, i >> 8, 0), A_VALUES, 4, 1);
    assert_int_equal(rc, PM_E_USAGE);
    assert_true(msg_has(d.ctx, "more than"));
    /* a section begun and never ended */
    pm_snap_writer_free(w);
    assert_int_equal(pm_snap_writer_new(d.ctx, p, MAGIC, 1, &w), PM_OK);
    assert_int_equal(pm_snap_begin(d.ctx, w, T_A, 4), PM_OK);
    assert_int_equal(pm_snap_writer_commit(d.ctx, w), PM_E_USAGE);
    assert_int_equal(access(p, F_OK), -1);
    dir_close(&d, NULL, 0);
}

/* The header's table entry i: offset, length, hash. */
#define TABLE_AT 24
static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Sets the header's checksum again after a change to it. */
static void reseal_header(unsigned char *b)
{
    size_t at = TABLE_AT + PM_SNAP_MAX_SECTIONS * 32;
    put_u64(b + at, XXH3_64bits(b, at));
}

static int open_fails(dir *d, const char *path, uint32_t version, const char *why)
{
    pm_snap *s = (pm_snap *)1;
    int rc = pm_snap_open(d->ctx, path, MAGIC, version, &s);
    return rc == PM_E_INPUT && s == NULL && msg_has(d->ctx, why) && msg_has(d->ctx, path);
}

static void damage_is_named(void **state)
{
    (void)state;
    dir d;
    dir_open(&d);
    char p[128], q[128];
    write_abc(&d, dir_file(&d, "a.snap", p));
    dir_file(&d, "b.snap", q);
    size_t n;
    unsigned char *good = slurp(p, &n), *b = malloc(n);
    assert_non_null(b);
    /* a byte of tBBB: that section is refused, the others still read */
    memcpy(b, good, n);
    b[get_u64(good + TABLE_AT + 2 * 32 + 8) + 3] ^= 1;
    spill(q, b, n);
    pm_snap *s;
    const void *v;
    assert_int_equal(pm_snap_open(d.ctx, q, MAGIC, 3, &s), PM_OK);
    assert_int_equal(pm_snap_section(d.ctx, s, T_B, 8, 3, &v, NULL), PM_E_INPUT);
    assert_null(v);
    assert_true(msg_has(d.ctx, "section 'tBBB': its checksum does not match"));
    assert_int_equal(pm_snap_section(d.ctx, s, T_A, 4, 5, &v, NULL), PM_OK);
    /* what is not there, or not as asked */
    assert_int_equal(pm_snap_section(d.ctx, s, PM_SNAP_TAG('z', 'z', 'z', 1), 4, 5, &v, NULL),
                     PM_E_INPUT);
    assert_true(msg_has(d.ctx, "section 'zzz?': missing"));
    assert_int_equal(pm_snap_section(d.ctx, s, T_A, 8, SIZE_MAX, &v, NULL), PM_E_INPUT);
    assert_true(msg_has(d.ctx, "elements of 4 bytes, not 8"));
    assert_int_equal(pm_snap_section(d.ctx, s, T_A, 4, 6, &v, NULL), PM_E_INPUT);
    assert_true(msg_has(d.ctx, "5 elements where 6 belong"));
    pm_snap_free(s);
    /* the header */
    memcpy(b, good, n);
    b[TABLE_AT + 8] ^= 1;
    spill(q, b, n);
    assert_true(open_fails(&d, q, 3, "the header's checksum does not match"));
    spill(q, good, n - 1);
    assert_true(open_fails(&d, q, 3, "cut short"));
    spill(q, good, 100);
    assert_true(open_fails(&d, q, 3, "not a problemap snapshot"));
    assert_true(open_fails(&d, p, 4, "version 3; this problemap reads version 4"));
    memcpy(b, good, n);
    b[0] = 'X';
    spill(q, b, n);
    assert_true(open_fails(&d, q, 3, "not a problemap snapshot"));
    /* a table that places a section outside the file, or over another */
    memcpy(b, good, n);
    put_u64(b + TABLE_AT + 16, n);   /* tAAA's length */
    reseal_header(b);
    spill(q, b, n);
    assert_true(open_fails(&d, q, 3, "outside the file"));
    memcpy(b, good, n);
    put_u64(b + TABLE_AT + 2 * 32 + 8, get_u64(b + TABLE_AT + 8));   /* tBBB at tAAA */
    reseal_header(b);
    spill(q, b, n);
    assert_true(open_fails(&d, q, 3, "overlap"));
    /* the table in another order (tBBB's entry before the empty tCCC's, at
     * the same offset) is the same file */
    memcpy(b, good, n);
    memcpy(b + TABLE_AT + 32, good + TABLE_AT + 2 * 32, 32);
    memcpy(b + TABLE_AT + 2 * 32, good + TABLE_AT + 32, 32);
    reseal_header(b);
    spill(q, b, n);
    assert_int_equal(pm_snap_open(d.ctx, q, MAGIC, 3, &s), PM_OK);
    assert_int_equal(pm_snap_section(d.ctx, s, T_B, 8, 3, &v, NULL), PM_OK);
    assert_int_equal(pm_snap_section(d.ctx, s, T_C, 2, 0, &v, NULL), PM_OK);
    pm_snap_free(s);
    /* a missing file, and a directory */
    assert_int_equal(pm_snap_open(d.ctx, dir_file(&d, "none", q), MAGIC, 3, &s), PM_E_IO);
    assert_int_equal(pm_snap_open(d.ctx, d.path, MAGIC, 3, &s), PM_E_IO);
    free(b);
    free(good);
    static const char *const names[] = {"a.snap", "b.snap"};
    dir_close(&d, names, 2);
}

/* ---- the complaints --------------------------------------------------------------- */

static const char *const SOURCES[3] = {"vk", "telegram", "hotline"};

/* n complaints of varied values; wide: one of them makes every column
 * keep its values whole (eight decimals, a time 70 years on, an answer
 * before its creation). */
static pm_complaints *varied(pm_ctx *ctx, size_t n, int wide)
{
    pm_complaints *cs = pm_complaints_new();
    assert_non_null(cs);
    for (size_t i = 0; i < n; i++) {
        char id[32], exec[32];
        snprintf(id, sizeof id, "id-%zu", i);
        snprintf(exec, sizeof exec, "executor %zu", i % 300);   /* a 2-byte column */
        int64_t t = 1700000000 + (int64_t)i * 3600;
        pm_complaint c = {.id = id, .created_at = t,
                          .answered_at = i % 4 ? t + (int64_t)(i % 50) * 600 : PM_TIME_NONE,
                          .lon = i % 9 ? 86.0 + (double)i * 1e-4 : NAN,
                          .lat = i % 9 ? 55.0 + (double)i * 1e-4 : NAN,
                          .topic = (uint16_t)(i % 5), .source = i % 7 ? SOURCES[i % 3] : NULL,
                          .status = i % 2 ? "closed" : "new", .executor = exec,
                          .district_code = i % 9 ? NULL : "4200000", .line = i + 2};
        if (wide && i == n / 2) {
            c.lon = 86.123456789;
            c.created_at = t + (int64_t)70 * 365 * 86400;
            c.answered_at = c.created_at - 60;
        }
        assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_OK);
    }
    return cs;
}

static void assert_same_complaints(const pm_complaints *a, const pm_complaints *b)
{
    size_t n = pm_complaints_count(a);
    assert_int_equal(pm_complaints_count(b), n);
    for (int k = 0; k < PM_DICT_N; k++) {
        assert_int_equal(pm_complaints_dict_count(b, k), pm_complaints_dict_count(a, k));
        for (size_t j = 0; j < pm_complaints_dict_count(a, k); j++)
            assert_string_equal(pm_complaints_dict_str(b, k, j), pm_complaints_dict_str(a, k, j));
    }
    for (size_t i = 0; i < n; i++) {
        double x = pm_complaints_lon_at(a, i), y = pm_complaints_lon_at(b, i);
        assert_true(x == y || (isnan(x) && isnan(y)));
        x = pm_complaints_lat_at(a, i), y = pm_complaints_lat_at(b, i);
        assert_true(x == y || (isnan(x) && isnan(y)));
        assert_int_equal(pm_complaints_created_at(b, i), pm_complaints_created_at(a, i));
        assert_int_equal(pm_complaints_answered_at(b, i), pm_complaints_answered_at(a, i));
        assert_int_equal(pm_complaints_topic(b)[i], pm_complaints_topic(a)[i]);
        for (int k = 0; k < PM_DICT_N; k++)
            assert_int_equal(pm_complaints_dict_at(b, k, i), pm_complaints_dict_at(a, k, i));
    }
}

/* Writes cs (and, when given, pl and points) to path. */
static void write_parts(pm_ctx *ctx, const char *path, const pm_complaints *cs, const pm_placed *pl,
                        pm_points *const *pts, size_t n_pts)
{
    pm_snap_writer *w;
    assert_int_equal(pm_snap_writer_new(ctx, path, MAGIC, 1, &w), PM_OK);
    if (cs)
        assert_int_equal(pm_complaints_snap_write(ctx, cs, w), PM_OK);
    if (pl)
        assert_int_equal(pm_placed_snap_write(ctx, pl, w), PM_OK);
    for (size_t g = 0; g < n_pts; g++)
        assert_int_equal(pm_points_snap_write(ctx, pts[g], w), PM_OK);
    assert_int_equal(pm_snap_writer_commit(ctx, w), PM_OK);
}

static void complaints_read_back(void **state)
{
    (void)state;
    dir d;
    dir_open(&d);
    char p[128];
    for (int wide = 0; wide < 2; wide++) {
        pm_complaints *cs = varied(d.ctx, 700, wide);
        assert_int_equal(pm_complaints_dict(cs, PM_DICT_EXECUTOR).width, 2);
        write_parts(d.ctx, dir_file(&d, "c.snap", p), cs, NULL, NULL, 0);
        pm_snap *s;
        pm_complaints *m;
        assert_int_equal(pm_snap_open(d.ctx, p, MAGIC, 1, &s), PM_OK);
        assert_int_equal(pm_complaints_snap_map(d.ctx, s, 5, &m), PM_OK);
        assert_same_complaints(cs, m);
        /* whole columns where the batch kept them whole, compact ones otherwise */
        assert_int_equal(pm_complaints_lon(m).wide != NULL, wide);
        assert_int_equal(pm_complaints_created(m).wide != NULL, wide);
        assert_int_equal(pm_complaints_answered(m).wide != NULL, wide);
        /* no ids or lines, and no adding */
        assert_string_equal(pm_complaints_id(m, 3), "");
        assert_int_equal(pm_complaints_line(m, 3), 0);
        pm_complaint c = {.id = "new", .created_at = 0, .answered_at = PM_TIME_NONE, .lon = NAN,
                          .lat = NAN};
        assert_int_equal(pm_complaints_add(d.ctx, m, &c), PM_E_USAGE);
        assert_int_equal(pm_complaints_reserve(d.ctx, m, 10), PM_E_USAGE);
        /* a catalogue with fewer topics than the batch uses */
        pm_complaints *none = (pm_complaints *)1;
        assert_int_equal(pm_complaints_snap_map(d.ctx, s, 4, &none), PM_E_INPUT);
        assert_null(none);
        assert_true(msg_has(d.ctx, "section 'cTOP': complaint 4: topic 4 of 4"));
        pm_complaints_free(m);
        pm_snap_free(s);
        pm_complaints_free(cs);
    }
    static const char *const names[] = {"c.snap"};
    dir_close(&d, names, 1);
}

/* A crafted complaints snapshot of one complaint (the tags and cMET's
 * fields as docs/dataset.md gives them), with lon, the source index and
 * the dictionaries' strings as given. */
static int map_crafted(dir *d, double lon, uint8_t source, const char *strings, size_t strings_len)
{
    char p[128];
    pm_snap_writer *w;
    uint64_t meta[13] = {1, 1700000000, 1, 0, 0, 1, 1, 1, 1, 2, 0, 0, 0};
    double lat = 55;
    int32_t zero = 0;
    uint32_t wait = UINT32_MAX;
    uint16_t topic = 0;
    uint8_t none = UINT8_MAX;
    assert_int_equal(pm_snap_writer_new(d->ctx, dir_file(d, "k.snap", p), MAGIC, 1, &w), PM_OK);
    assert_int_equal(pm_snap_put(d->ctx, w, PM_SNAP_TAG('c', 'M', 'E', 'T'), meta, 8, 13), PM_OK);
    assert_int_equal(pm_snap_put(d->ctx, w, PM_SNAP_TAG('c', 'L', 'O', 'N'), &lon, 8, 1), PM_OK);
    assert_int_equal(pm_snap_put(d->ctx, w, PM_SNAP_TAG('c', 'L', 'A', 'T'), &lat, 8, 1), PM_OK);
    assert_int_equal(pm_snap_put(d->ctx, w, PM_SNAP_TAG('c', 'C', 'R', 'E'), &zero, 4, 1), PM_OK);
    assert_int_equal(pm_snap_put(d->ctx, w, PM_SNAP_TAG('c', 'W', 'A', 'I'), &wait, 4, 1), PM_OK);
    assert_int_equal(pm_snap_put(d->ctx, w, PM_SNAP_TAG('c', 'T', 'O', 'P'), &topic, 2, 1), PM_OK);
    assert_int_equal(pm_snap_put(d->ctx, w, PM_SNAP_TAG('c', 'D', 'C', '0'), &source, 1, 1), PM_OK);
    for (char k = '1'; k <= '3'; k++)
        assert_int_equal(pm_snap_put(d->ctx, w, PM_SNAP_TAG('c', 'D', 'C', k), &none, 1, 1), PM_OK);
    assert_int_equal(pm_snap_put(d->ctx, w, PM_SNAP_TAG('c', 'S', 'T', 'R'), strings, 1, strings_len),
                     PM_OK);
    assert_int_equal(pm_snap_writer_commit(d->ctx, w), PM_OK);
    pm_snap *s;
    pm_complaints *cs = NULL;
    assert_int_equal(pm_snap_open(d->ctx, p, MAGIC, 1, &s), PM_OK);
    int rc = pm_complaints_snap_map(d->ctx, s, 5, &cs);
    if (rc == PM_OK) {
        assert_int_equal(pm_complaints_count(cs), 1);
        assert_string_equal(pm_complaints_dict_str(cs, PM_DICT_SOURCE, 1), "tg");
    }
    pm_complaints_free(cs);
    pm_snap_free(s);
    unlink(p);
    return rc;
}

static void complaints_values_are_checked(void **state)
{
    (void)state;
    dir d;
    dir_open(&d);
    static const char two[] = "vk\0tg";   /* with its final NUL: 6 bytes */
    assert_int_equal(map_crafted(&d, 86, 1, two, sizeof two), PM_OK);
    assert_int_equal(map_crafted(&d, 200, 1, two, sizeof two), PM_E_INPUT);
    assert_true(msg_has(d.ctx, "section 'cLON': complaint 0 at 200, 55"));
    assert_int_equal(map_crafted(&d, 86, 2, two, sizeof two), PM_E_INPUT);
    assert_true(msg_has(d.ctx, "section 'cDC0': complaint 0: value 2 of 2"));
    assert_int_equal(map_crafted(&d, 86, 1, two, sizeof two - 1), PM_E_INPUT);
    assert_true(msg_has(d.ctx, "section 'cSTR'"));
    assert_int_equal(map_crafted(&d, 86, 1, "vk\0vk", 6), PM_E_INPUT);
    assert_true(msg_has(d.ctx, "\"vk\" twice"));
    static const char three[] = "vk\0tg\0ok";
    assert_int_equal(map_crafted(&d, 86, 1, three, sizeof three), PM_E_INPUT);
    assert_true(msg_has(d.ctx, "3 bytes left over"));
    dir_close(&d, NULL, 0);
}

/* ---- the placement and the points ------------------------------------------------- */

/* Complaint i in district i % 3, inside, but every eleventh snapped
 * (i / 10 m) and every thirteenth outside. */
static pm_placed *placement(size_t n)
{
    pm_placed *p = pm_calloc(1, sizeof *p);
    assert_non_null(p);
    p->n = p->cap = n;
    p->district = pm_calloc(n, sizeof *p->district);
    p->placement = pm_calloc(n, sizeof *p->placement);
    p->snap_i = pm_calloc(n, sizeof *p->snap_i);
    p->snap_d = pm_calloc(n, sizeof *p->snap_d);
    assert_true(p->district && p->placement && p->snap_i && p->snap_d);
    for (size_t i = 0; i < n; i++) {
        p->district[i] = (int32_t)(i % 3);
        p->placement[i] = PM_PLACE_INSIDE;
        if (i % 13 == 0) {
            p->district[i] = -1;
            p->placement[i] = PM_PLACE_OUTSIDE;
        } else if (i % 11 == 0) {
            p->placement[i] = PM_PLACE_SNAPPED;
            p->snap_i[p->n_snap] = (uint32_t)i;
            p->snap_d[p->n_snap++] = (float)i / 10;
        }
        p->counts[p->placement[i]]++;
    }
    return p;
}

static void placement_reads_back_and_is_checked(void **state)
{
    (void)state;
    dir d;
    dir_open(&d);
    char p[128];
    pm_placed *pl = placement(500);
    write_parts(d.ctx, dir_file(&d, "p.snap", p), NULL, pl, NULL, 0);
    pm_snap *s;
    pm_placed *m;
    assert_int_equal(pm_snap_open(d.ctx, p, MAGIC, 1, &s), PM_OK);
    assert_int_equal(pm_placed_snap_map(d.ctx, s, 500, 3, &m), PM_OK);
    assert_int_equal(m->n, 500);
    assert_memory_equal(m->district, pl->district, 500 * sizeof *m->district);
    assert_memory_equal(m->placement, pl->placement, 500);
    assert_memory_equal(m->counts, pl->counts, sizeof m->counts);   /* made again */
    assert_int_equal(m->n_snap, pl->n_snap);
    for (size_t i = 0; i < 500; i++)
        assert_true(pm_placed_snap_m(m, i) == pm_placed_snap_m(pl, i));
    pm_placed_free(m);
    pm_placed *none = (pm_placed *)1;
    assert_int_equal(pm_placed_snap_map(d.ctx, s, 500, 2, &none), PM_E_INPUT);
    assert_null(none);
    assert_true(msg_has(d.ctx, "section 'pDIS': complaint 2: district 2 of 2 (placement inside)"));
    assert_int_equal(pm_placed_snap_map(d.ctx, s, 499, 3, &none), PM_E_INPUT);
    assert_true(msg_has(d.ctx, "section 'pDIS': 500 elements where 499 belong"));
    pm_snap_free(s);
    /* inside with no district; snaps out of order */
    pl->district[5] = -1;
    write_parts(d.ctx, p, NULL, pl, NULL, 0);
    assert_int_equal(pm_snap_open(d.ctx, p, MAGIC, 1, &s), PM_OK);
    assert_int_equal(pm_placed_snap_map(d.ctx, s, 500, 3, &none), PM_E_INPUT);
    assert_true(msg_has(d.ctx, "complaint 5: district -1 of 3 (placement inside)"));
    pm_snap_free(s);
    pl->district[5] = 2;
    uint32_t t = pl->snap_i[0];
    pl->snap_i[0] = pl->snap_i[1], pl->snap_i[1] = t;
    write_parts(d.ctx, p, NULL, pl, NULL, 0);
    assert_int_equal(pm_snap_open(d.ctx, p, MAGIC, 1, &s), PM_OK);
    assert_int_equal(pm_placed_snap_map(d.ctx, s, 500, 3, &none), PM_E_INPUT);
    assert_true(msg_has(d.ctx, "section 'pSNI': entry 1"));
    pm_snap_free(s);
    pm_placed_free(pl);
    static const char *const names[] = {"p.snap"};
    dir_close(&d, names, 1);
}

static void assert_same_points(const pm_points *a, const pm_points *b)
{
    size_t n = a->n;
    assert_int_equal(b->n, n);
    assert_int_equal(b->grid, a->grid);
    assert_memory_equal(b->x_m, a->x_m, n * sizeof *a->x_m);
    assert_memory_equal(b->y_m, a->y_m, n * sizeof *a->y_m);
    assert_memory_equal(b->k, a->k, n * sizeof *a->k);
    assert_memory_equal(b->code, a->code, n * sizeof *a->code);
    assert_memory_equal(b->topic, a->topic, n * sizeof *a->topic);
    assert_memory_equal(b->day, a->day, n * sizeof *a->day);
    assert_memory_equal(b->source, a->source, n * sizeof *a->source);
    assert_int_equal(b->w != NULL, a->w != NULL);
    if (a->w)
        assert_memory_equal(b->w, a->w, n * sizeof *a->w);
}

/* Writes pts (both grids') and maps grid g back with n_sources sources:
 * the status; *out the points on success. */
static int points_round_trip(dir *d, pm_points *const *pts, pm_grid g, size_t n_sources,
                             pm_snap **s, pm_points **out)
{
    char p[128];
    write_parts(d->ctx, dir_file(d, "h.snap", p), NULL, NULL, pts, 2);
    assert_int_equal(pm_snap_open(d->ctx, p, MAGIC, 1, s), PM_OK);
    return pm_points_snap_map(d->ctx, *s, g, 5, n_sources, out);
}

static void points_read_back_and_are_checked(void **state)
{
    (void)state;
    dir d;
    dir_open(&d);
    pm_complaints *cs = varied(d.ctx, 700, 0);
    pm_placed *pl = placement(700);
    pm_points *pts[2], *m;
    for (int g = 0; g < 2; g++)
        assert_int_equal(pm_points_new(d.ctx, cs, pl, (pm_grid)g, 10800, &pts[g]), PM_OK);
    pm_points *wt;
    assert_int_equal(pm_points_new_weighted(d.ctx, cs, pl, PM_GRID_WEBMERC, 10800,
                                            PM_WEIGHT_WAIT_H, 1800000000, &wt), PM_OK);
    assert_non_null(wt->w);
    pm_snap *s;
    for (int g = 0; g < 2; g++) {
        assert_int_equal(points_round_trip(&d, pts, (pm_grid)g, 3, &s, &m), PM_OK);
        assert_true(m->n > 500);
        assert_same_points(pts[g], m);
        pm_box bx = {m->x_m[0] - 5000, m->y_m[0] - 5000, m->x_m[0] + 5000, m->y_m[0] + 5000};
        pm_range ra[PM_POINTS_MAX_RANGES], rb[PM_POINTS_MAX_RANGES];
        size_t na = pm_points_ranges(pts[g], &bx, PM_COVER_FINE, ra);
        assert_int_equal(pm_points_ranges(m, &bx, PM_COVER_FINE, rb), na);
        assert_memory_equal(ra, rb, na * sizeof *ra);
        pm_points_free(m);
        pm_snap_free(s);
    }
    /* weights, as a weighted layer's points have them */
    pm_points *with_w[2] = {wt, pts[1]};
    assert_int_equal(points_round_trip(&d, with_w, PM_GRID_WEBMERC, 3, &s, &m), PM_OK);
    assert_same_points(wt, m);
    pm_points_free(m);
    pm_snap_free(s);
    /* what no point set holds */
    m = (pm_points *)1;
    assert_int_equal(points_round_trip(&d, pts, PM_GRID_WORLDMERC, 2, &s, &m), PM_E_INPUT);
    assert_null(m);
    assert_true(msg_has(d.ctx, "section 'h1SR'"));
    pm_snap_free(s);
    pts[0]->code[1] ^= 1;
    assert_int_equal(points_round_trip(&d, pts, PM_GRID_WEBMERC, 3, &s, &m), PM_E_INPUT);
    assert_true(msg_has(d.ctx, "section 'h0CD': point 1"));
    pm_snap_free(s);
    pts[0]->code[1] ^= 1;
    uint64_t c = pts[0]->code[1];   /* the right codes, out of order */
    double x = pts[0]->x_m[1], y = pts[0]->y_m[1];
    pts[0]->code[1] = pts[0]->code[2], pts[0]->x_m[1] = pts[0]->x_m[2], pts[0]->y_m[1] = pts[0]->y_m[2];
    pts[0]->code[2] = c, pts[0]->x_m[2] = x, pts[0]->y_m[2] = y;
    if (pts[0]->code[1] != pts[0]->code[2]) {
        assert_int_equal(points_round_trip(&d, pts, PM_GRID_WEBMERC, 3, &s, &m), PM_E_INPUT);
        assert_true(msg_has(d.ctx, "section 'h0CD': point 2"));
        pm_snap_free(s);
    }
    pts[0]->k[3] = 0.5;
    pts[0]->x_m[0] = NAN;
    assert_int_equal(points_round_trip(&d, pts, PM_GRID_WEBMERC, 3, &s, &m), PM_E_INPUT);
    assert_true(msg_has(d.ctx, "section 'h0XM': point 0"));
    pm_snap_free(s);
    pm_points_free(pts[0]);
    assert_int_equal(pm_points_new(d.ctx, cs, pl, PM_GRID_WEBMERC, 10800, &pts[0]), PM_OK);
    pts[0]->k[3] = 0.5;
    assert_int_equal(points_round_trip(&d, pts, PM_GRID_WEBMERC, 3, &s, &m), PM_E_INPUT);
    assert_true(msg_has(d.ctx, "section 'h0KS': point 3: scale factor 0.5"));
    pm_snap_free(s);
    wt->w[4] = 0;
    assert_int_equal(points_round_trip(&d, with_w, PM_GRID_WEBMERC, 3, &s, &m), PM_E_INPUT);
    assert_true(msg_has(d.ctx, "section 'h0WT': point 4: weight 0"));
    pm_snap_free(s);
    assert_int_equal(pm_points_snap_map(d.ctx, NULL, (pm_grid)7, 5, 3, &m), PM_E_USAGE);
    for (int g = 0; g < 2; g++)
        pm_points_free(pts[g]);
    pm_points_free(wt);
    pm_placed_free(pl);
    pm_complaints_free(cs);
    static const char *const names[] = {"h.snap"};
    dir_close(&d, names, 1);
}

/* ---- allocation failures ------------------------------------------------------------ */

static void write_and_map_survive_alloc_failures(void **state)
{
    (void)state;
    dir d;
    dir_open(&d);
    char p[128];
    pm_complaints *cs = varied(d.ctx, 300, 1);
    pm_placed *pl = placement(300);
    pm_points *pts[2];
    for (int g = 0; g < 2; g++)
        assert_int_equal(pm_points_new(d.ctx, cs, pl, (pm_grid)g, 0, &pts[g]), PM_OK);
    dir_file(&d, "f.snap", p);
    int failures = 0;
    for (long n = 1;; n++) {
        pm_snap_writer *w = NULL;
        pm_alloc_fail_at(n);
        int rc = pm_snap_writer_new(d.ctx, p, MAGIC, 1, &w);
        rc = rc ? rc : pm_complaints_snap_write(d.ctx, cs, w);
        rc = rc ? rc : pm_placed_snap_write(d.ctx, pl, w);
        for (int g = 0; g < 2; g++)
            rc = rc ? rc : pm_points_snap_write(d.ctx, pts[g], w);
        if (rc)
            pm_snap_writer_free(w);
        else
            rc = pm_snap_writer_commit(d.ctx, w);
        long made = pm_alloc_count();
        pm_alloc_fail_at(0);
        if (rc == PM_OK) {
            if (n > made)
                break;
            continue;
        }
        failures++;
        assert_int_equal(rc, PM_E_NOMEM);
        assert_int_equal(access(p, F_OK), -1);   /* nothing half-written */
    }
    assert_true(failures >= 2);
    failures = 0;
    for (long n = 1;; n++) {
        pm_snap *s = NULL;
        pm_complaints *m = NULL;
        pm_placed *mp = NULL;
        pm_points *mh = NULL;
        pm_alloc_fail_at(n);
        int rc = pm_snap_open(d.ctx, p, MAGIC, 1, &s);
        rc = rc ? rc : pm_complaints_snap_map(d.ctx, s, 5, &m);
        rc = rc ? rc : pm_placed_snap_map(d.ctx, s, 300, 3, &mp);
        rc = rc ? rc : pm_points_snap_map(d.ctx, s, PM_GRID_WORLDMERC, 5, 3, &mh);
        long made = pm_alloc_count();
        pm_alloc_fail_at(0);
        if (rc == PM_OK) {
            assert_same_complaints(cs, m);
            assert_same_points(pts[1], mh);
        } else {
            failures++;
            assert_int_equal(rc, PM_E_NOMEM);
        }
        pm_points_free(mh);
        pm_placed_free(mp);
        pm_complaints_free(m);
        pm_snap_free(s);
        if (rc == PM_OK && n > made)
            break;
    }
    assert_true(failures >= 4);
    for (int g = 0; g < 2; g++)
        pm_points_free(pts[g]);
    pm_placed_free(pl);
    pm_complaints_free(cs);
    static const char *const names[] = {"f.snap"};
    dir_close(&d, names, 1);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sections_read_back_in_place),
        cmocka_unit_test(writer_refuses_misuse_and_it_sticks),
        cmocka_unit_test(damage_is_named),
        cmocka_unit_test(complaints_read_back),
        cmocka_unit_test(complaints_values_are_checked),
        cmocka_unit_test(placement_reads_back_and_is_checked),
        cmocka_unit_test(points_read_back_and_are_checked),
        cmocka_unit_test(write_and_map_survive_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
