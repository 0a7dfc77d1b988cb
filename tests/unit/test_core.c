/* test_core.c — the engine core: context errors, allocator hook, string
 * table, district set, complaint batch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../engine/pm_alloc.h"
#include "../../engine/pm_complaint.h"
#include "../../engine/pm_ctx.h"
#include "../../engine/pm_district.h"
#include "../../engine/strtab.h"

#include <math.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

static void error_record_names_function_and_code(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    assert_non_null(ctx);
    assert_int_equal(pm_ctx_errcode(ctx), PM_OK);
    assert_string_equal(pm_ctx_errmsg(ctx), "");
    int rc = PM_ERR(ctx, PM_E_INPUT_VALUE, "file %s: line %d: bad", "a.csv", 7);
    assert_int_equal(rc, PM_E_INPUT_VALUE);
    assert_int_equal(pm_ctx_errcode(ctx), PM_E_INPUT_VALUE);
    assert_string_equal(pm_ctx_errmsg(ctx), "file a.csv: line 7: bad");
    assert_string_equal(pm_ctx_errfunc(ctx), "error_record_names_function_and_code");
    assert_string_equal(pm_status_name(PM_E_NOMEM), "out of memory");
    pm_ctx_clear_error(ctx);
    assert_int_equal(pm_ctx_errcode(ctx), PM_OK);
    pm_ctx_free(ctx);
}

static void calloc_refuses_overflow(void **state)
{
    (void)state;
    assert_null(pm_calloc(SIZE_MAX / 2, 4));
    assert_null(pm_reallocarray(NULL, SIZE_MAX / 8, 16));
}

static void alloc_hook_fails_at_n(void **state)
{
    (void)state;
    pm_alloc_fail_at(3);
    void *a = pm_malloc(8), *b = pm_malloc(8), *c = pm_malloc(8), *d = pm_malloc(8);
    pm_alloc_fail_at(0);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(c);
    assert_null(d);
    pm_free(a);
    pm_free(b);
}

static void strtab_dense_indexes(void **state)
{
    (void)state;
    pm_strtab *t = pm_strtab_new();
    assert_non_null(t);
    char buf[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(buf, sizeof buf, "s%d", i);
        int added = 0;
        assert_int_equal(pm_strtab_intern(t, buf, &added), i);
        assert_true(added);
    }
    int added = 1;
    assert_int_equal(pm_strtab_intern(t, "s1234", &added), 1234);
    assert_false(added);
    assert_int_equal(pm_strtab_find(t, "nope"), -1);
    assert_string_equal(pm_strtab_str(t, 4999), "s4999");
    assert_int_equal(pm_strtab_count(t), 5000);
    pm_strtab_free(t);
}

/* Through many grows (the slot's hash tag shrinks as the table grows):
 * every string keeps its index, near misses are not found, and a lookup's
 * position inserts where intern would. */
static void strtab_tags_across_grows(void **state)
{
    (void)state;
    pm_strtab *t = pm_strtab_new();
    assert_non_null(t);
    char buf[32];
    enum { N = 300000 };
    for (int i = 0; i < N; i++) {
        snprintf(buf, sizeof buf, "c%07d", i);
        pm_strtab_pos pos;
        assert_int_equal(pm_strtab_lookup(t, buf, &pos), -1);
        assert_int_equal(pm_strtab_insert(t, buf, &pos), i);
    }
    for (int i = 0; i < N; i += 7) {
        snprintf(buf, sizeof buf, "c%07d", i);
        assert_int_equal(pm_strtab_find(t, buf), i);
        snprintf(buf, sizeof buf, "c%07d ", i);   /* one byte more */
        assert_int_equal(pm_strtab_find(t, buf), -1);
    }
    assert_int_equal(pm_strtab_find(t, ""), -1);
    assert_string_equal(pm_strtab_str(t, N - 1), "c0299999");
    assert_int_equal(pm_strtab_count(t), N);
    pm_strtab_free(t);
}

/* Strings of every length, from none to more than a block, up to the
 * longest taken: each comes back where it was put, as it was, and by
 * its index; one byte longer is refused and changes nothing. */
static void strtab_keeps_strings_of_any_length_in_place(void **state)
{
    (void)state;
    pm_strtab *t = pm_strtab_new();
    assert_non_null(t);
    enum { N = 5000 };
    char **want = calloc(N, sizeof *want);
    const char **where = calloc(N, sizeof *where);
    assert_true(want && where);
    for (int i = 0; i < N; i++) {
        /* lengths 0..499, and every 700th past a block (64 KiB) */
        size_t len = i % 700 == 699 ? 70000 + (size_t)i : (size_t)(i * 7919) % 500;
        want[i] = malloc(len + 16);
        assert_non_null(want[i]);
        int k = snprintf(want[i], 16, "%d:", i);
        memset(want[i] + k, 'a' + i % 26, len);
        want[i][k + len] = '\0';
        int added;
        assert_int_equal(pm_strtab_intern(t, want[i], &added), i);
        assert_true(added);
        where[i] = pm_strtab_str(t, (size_t)i);
    }
    for (int i = 0; i < N; i++) {
        assert_ptr_equal(pm_strtab_str(t, (size_t)i), where[i]);   /* never moved */
        assert_string_equal(where[i], want[i]);
        assert_int_equal(pm_strtab_find(t, want[i]), i);
        free(want[i]);
    }
    char *big = malloc(PM_STRTAB_STR_MAX + 1);
    assert_non_null(big);
    memset(big, 'z', PM_STRTAB_STR_MAX);
    big[PM_STRTAB_STR_MAX] = '\0';   /* with its NUL, one byte too many */
    assert_int_equal(pm_strtab_intern(t, big, NULL), -1);
    assert_int_equal(pm_strtab_count(t), N);
    big[PM_STRTAB_STR_MAX - 1] = '\0';   /* the longest taken */
    assert_int_equal(pm_strtab_intern(t, big, NULL), N);
    assert_int_equal(pm_strtab_intern(t, "after", NULL), N + 1);
    assert_string_equal(pm_strtab_str(t, N), big);
    assert_string_equal(pm_strtab_str(t, N + 1), "after");
    assert_ptr_equal(pm_strtab_str(t, 0), where[0]);
    free(big);
    free(want);
    free(where);
    pm_strtab_free(t);
    /* a block's last bytes: 655 strings of 100 bytes leave 36 of 64 KiB;
     * 36 take them all, 37 go to the next block (a NUL past the end would
     * be an invalid write for valgrind and ASan) */
    for (size_t last = 36; last <= 37; last++) {
        t = pm_strtab_new();
        char s[128];
        for (int i = 0; i < 655; i++) {
            snprintf(s, sizeof s, "%099d", i);
            assert_int_equal(pm_strtab_intern(t, s, NULL), i);
        }
        memset(s, 'e', last - 1);
        s[last - 1] = '\0';
        assert_int_equal(pm_strtab_intern(t, s, NULL), 655);
        assert_string_equal(pm_strtab_str(t, 655), s);
        assert_int_equal(pm_strtab_intern(t, "next", NULL), 656);
        snprintf(s, sizeof s, "%099d", 654);
        assert_string_equal(pm_strtab_str(t, 654), s);
        pm_strtab_free(t);
    }
}

static GEOSGeometry *wkt(pm_ctx *ctx, const char *s)
{
    GEOSWKTReader *r = GEOSWKTReader_create_r(pm_ctx_geos(ctx));
    GEOSGeometry *g = GEOSWKTReader_read_r(pm_ctx_geos(ctx), r, s);
    GEOSWKTReader_destroy_r(pm_ctx_geos(ctx), r);
    return g;
}

static void districts_sorted_by_id_bytes_with_regions(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    pm_districts *ds = pm_districts_new(ctx);
    const char *sq = "POLYGON((0 0,1 0,1 1,0 1,0 0))";
    assert_int_equal(pm_districts_add(ctx, ds, "9", "Nine", "B", 100, wkt(ctx, sq)), PM_OK);
    assert_int_equal(pm_districts_add(ctx, ds, "10", "Ten", "A", NAN, wkt(ctx, sq)), PM_OK);
    assert_int_equal(pm_districts_add(ctx, ds, "Ё", "Yo", NULL, 5, wkt(ctx, sq)), PM_OK);
    assert_int_equal(pm_districts_name_region(ctx, ds, "A", "Region A"), PM_OK);
    assert_int_equal(pm_districts_freeze(ctx, ds), PM_OK);
    assert_int_equal(pm_districts_count(ds), 3);
    assert_string_equal(pm_district_id(ds, 0), "10"); /* "10" < "9" in bytes */
    assert_string_equal(pm_district_id(ds, 1), "9");
    assert_string_equal(pm_district_id(ds, 2), "Ё");
    assert_int_equal(pm_districts_find(ds, "9"), 1);
    assert_int_equal(pm_districts_find(ds, "8"), -1);
    assert_true(isnan(pm_district_population(ds, 0)));
    /* regions: "", "A", "B" */
    assert_int_equal(pm_regions_count(ds), 3);
    assert_string_equal(pm_region_id(ds, pm_district_region(ds, 0)), "A");
    assert_string_equal(pm_region_name(ds, pm_district_region(ds, 0)), "Region A");
    assert_string_equal(pm_region_name(ds, pm_district_region(ds, 1)), "B");
    assert_string_equal(pm_region_id(ds, pm_district_region(ds, 2)), "");
    pm_districts_free(ctx, ds);
    pm_ctx_free(ctx);
}

static void districts_duplicate_id_is_an_error(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    pm_districts *ds = pm_districts_new(ctx);
    const char *sq = "POLYGON((0 0,1 0,1 1,0 1,0 0))";
    pm_districts_add(ctx, ds, "a", "", NULL, NAN, wkt(ctx, sq));
    pm_districts_add(ctx, ds, "a", "", NULL, NAN, wkt(ctx, sq));
    assert_int_equal(pm_districts_freeze(ctx, ds), PM_E_INPUT_VALUE);
    assert_non_null(strstr(pm_ctx_errmsg(ctx), "duplicate district id \"a\""));
    pm_districts_free(ctx, ds);
    pm_ctx_free(ctx);
}

static void complaints_columns_and_dictionaries(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    pm_complaints *cs = pm_complaints_new();
    pm_complaint c = {.id = "c1", .created_at = 100, .answered_at = PM_TIME_NONE,
                      .lon = 37.6, .lat = 55.7, .topic = 2, .source = "vk",
                      .status = "open", .line = 2};
    assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_OK);
    c.id = "c2";
    c.source = "telegram";
    c.line = 3;
    c.lon = c.lat = NAN;
    c.district_code = "RU-KEM-001";
    assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_OK);
    c.id = "c1";
    assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_E_INPUT_VALUE);
    assert_non_null(strstr(pm_ctx_errmsg(ctx), "duplicate id \"c1\""));
    assert_int_equal(pm_complaints_count(cs), 2);
    assert_string_equal(pm_complaints_id(cs, 1), "c2");
    assert_true(isnan(pm_complaints_lon_at(cs, 1)));
    assert_int_equal(pm_complaints_line(cs, 1), 3);
    pm_dict_column src = pm_complaints_dict(cs, PM_DICT_SOURCE);
    assert_string_equal(pm_complaints_dict_str(cs, PM_DICT_SOURCE, pm_dict_column_at(src, 1)),
                        "telegram");
    pm_dict_column code = pm_complaints_dict(cs, PM_DICT_DISTRICT_CODE);
    assert_int_equal(pm_dict_column_at(code, 0), PM_NONE);
    uint32_t code1 = pm_dict_column_at(code, 1);
    assert_string_equal(pm_complaints_dict_str(cs, PM_DICT_DISTRICT_CODE, code1), "RU-KEM-001");
    assert_int_equal(pm_complaints_dict_count(cs, PM_DICT_STATUS), 1);
    pm_complaints_free(cs);
    pm_ctx_free(ctx);
}

/* Known dictionary indexes are used as given, PM_DICT_LOOKUP ones are
 * looked up (and returned); a duplicate or an index the column lacks
 * changes nothing, not even idx. */
static void complaints_add_indexed_uses_known_indexes(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    pm_complaints *cs = pm_complaints_new();
    pm_complaint c = {.id = "c1", .answered_at = PM_TIME_NONE, .source = "vk",
                      .status = "open", .executor = "УК"};
    assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_OK);
    c = (pm_complaint){.id = "c2", .answered_at = PM_TIME_NONE, .source = "ignored",
                       .status = "answered", .executor = ""};
    uint32_t idx[PM_DICT_N] = {0, PM_DICT_LOOKUP, PM_DICT_LOOKUP, PM_NONE};
    assert_int_equal(pm_complaints_add_indexed(ctx, cs, &c, idx), PM_OK);
    assert_int_equal(idx[0], 0);
    assert_int_equal(idx[1], 1);          /* "answered": new */
    assert_int_equal(idx[2], PM_NONE);    /* "" */
    assert_int_equal(idx[3], PM_NONE);
    assert_int_equal(pm_complaints_dict_at(cs, PM_DICT_SOURCE, 1), 0);
    assert_int_equal(pm_complaints_dict_count(cs, PM_DICT_SOURCE), 1);   /* "ignored" not added */
    assert_string_equal(pm_complaints_dict_str(cs, PM_DICT_STATUS,
                                               pm_complaints_dict_at(cs, PM_DICT_STATUS, 1)),
                        "answered");
    uint32_t bad[PM_DICT_N] = {1, PM_DICT_LOOKUP, PM_NONE, PM_NONE};   /* source has only 0 */
    c.id = "c3";
    assert_int_equal(pm_complaints_add_indexed(ctx, cs, &c, bad), PM_E_USAGE);
    assert_non_null(strstr(pm_ctx_errmsg(ctx), "no value 1 in dictionary column 0"));
    assert_int_equal(bad[0], 1);
    assert_int_equal(bad[1], PM_DICT_LOOKUP);
    uint32_t dup[PM_DICT_N] = {PM_DICT_LOOKUP, PM_DICT_LOOKUP, PM_DICT_LOOKUP, PM_DICT_LOOKUP};
    c.id = "c1";
    c.status = "closed";
    assert_int_equal(pm_complaints_add_indexed(ctx, cs, &c, dup), PM_E_INPUT_VALUE);
    assert_int_equal(dup[1], PM_DICT_LOOKUP);
    assert_int_equal(pm_complaints_dict_count(cs, PM_DICT_STATUS), 2);   /* "closed" not added */
    assert_int_equal(pm_complaints_count(cs), 2);
    pm_complaints_free(cs);
    pm_ctx_free(ctx);
}

/* Whether the page holding p is in memory. */
static int resident(const void *p)
{
    long ps = sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p & ~((uintptr_t)ps - 1);
    unsigned char v = 0;
    assert_int_equal(mincore((void *)a, (size_t)ps, &v), 0);
    return v & 1;
}

/* pm_complaints_prefault faults the columns' pages in for the complaints
 * asked (and no further than the next huge page), changing nothing. */
static void complaints_prefault_faults_the_pages_in(void **state)
{
    (void)state;
#ifdef MADV_POPULATE_WRITE
    long ps = sysconf(_SC_PAGESIZE);
    void *probe = mmap(NULL, (size_t)ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
    assert_true(probe != MAP_FAILED);
    int supported = madvise(probe, (size_t)ps, MADV_POPULATE_WRITE) == 0 && resident(probe);
    munmap(probe, (size_t)ps);
    if (!supported)   /* an older kernel, or valgrind (mincore sees nothing there) */
        skip();
    pm_ctx *ctx = pm_ctx_new();
    pm_complaints *cs = pm_complaints_new();
    pm_complaint c = {.id = "c0", .answered_at = PM_TIME_NONE, .lon = 86.1, .lat = 55.3};
    assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_OK);
    size_t n = 1 << 21;   /* 8 MiB of longitudes: a block of its own, not yet touched */
    assert_int_equal(pm_complaints_reserve(ctx, cs, n), PM_OK);
    const int32_t *lon = pm_complaints_lon(cs).e7;
    const int32_t *created = pm_complaints_created(cs).rel;
    assert_false(resident(lon + n / 2));
    assert_false(resident(created + n / 2));
    pm_complaints_prefault(cs, 1, n / 4);
    assert_true(resident(lon + n / 8));
    assert_true(resident(created + n / 4 - 1));
    assert_false(resident(lon + n / 2));
    assert_false(resident(created + n / 2));
    assert_true(pm_complaints_lon_at(cs, 0) == 86.1);   /* what was there stays */
    pm_complaints_prefault(cs, n / 4, SIZE_MAX);   /* up to the capacity's last whole page */
    assert_true(resident(lon + n - 1024));
    assert_int_equal(pm_complaints_count(cs), 1);
    pm_complaints_free(cs);
    pm_ctx_free(ctx);
#else
    skip();
#endif
}

/* Room made ahead: adding that many moves no column, and a table that
 * grew to make room (rehashing what it held) still finds everything. */
/* pm_alloc_keep_freed: a 1 MiB block, a heat tile's accumulator, comes
 * from malloc's heap and is reused, not mapped and unmapped each time
 * (glibc; ASan has its own allocator).  Runs first: a block freed earlier
 * may have moved glibc's own threshold already. */
static void keep_freed_serves_a_mebibyte_from_the_heap(void **state)
{
    (void)state;
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
    pm_alloc_keep_freed();
    struct mallinfo2 before = mallinfo2();
    void *p = malloc(1 << 20);
    assert_non_null(p);
    struct mallinfo2 after = mallinfo2();
    free(p);
    assert_int_equal(after.hblks, before.hblks);
#else
    skip();
#endif
}

static void complaints_reserve_keeps_columns_in_place(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    pm_complaints *cs = pm_complaints_new();
    pm_complaint c = {.answered_at = PM_TIME_NONE, .source = "vk"};
    char id[16];
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "c%d", i);
        c.id = id;
        c.line = (uint64_t)i;
        assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_OK);
    }
    assert_int_equal(pm_complaints_reserve(ctx, cs, 70000), PM_OK);
    const int32_t *lon = pm_complaints_lon(cs).e7;
    const uint16_t *topic = pm_complaints_topic(cs);
    for (int i = 100; i < 70100; i++) {
        snprintf(id, sizeof id, "c%d", i);
        c.id = id;
        c.line = (uint64_t)i;
        assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_OK);
    }
    assert_ptr_equal(pm_complaints_lon(cs).e7, lon);
    assert_ptr_equal(pm_complaints_topic(cs), topic);
    c.id = "c42";   /* added before the table grew */
    assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_E_INPUT_VALUE);
    c.id = "c70099";
    assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_E_INPUT_VALUE);
    assert_int_equal(pm_complaints_count(cs), 70100);
    assert_string_equal(pm_complaints_id(cs, 54321), "c54321");
    assert_int_equal(pm_complaints_line(cs, 54321), 54321);
    /* beyond the room made, it grows as before */
    c.id = "one more";
    assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_OK);
    assert_int_equal(pm_complaints_reserve(ctx, cs, SIZE_MAX), PM_E_NOMEM);
    pm_alloc_fail_at(0);   /* counts allocations: more ids than 32 bits allocate nothing */
    assert_int_equal(pm_complaints_reserve(ctx, cs, (size_t)UINT32_MAX), PM_E_NOMEM);
    assert_int_equal(pm_alloc_count(), 0);
    assert_int_equal(pm_complaints_count(cs), 70101);
    pm_complaints_free(cs);
    pm_ctx_free(ctx);
}

static void strtab_reserve_rehashes_what_it_holds(void **state)
{
    (void)state;
    pm_strtab *t = pm_strtab_new();
    char buf[16];
    for (int i = 0; i < 1000; i++) {
        snprintf(buf, sizeof buf, "s%d", i);
        assert_int_equal(pm_strtab_intern(t, buf, NULL), i);
    }
    assert_int_equal(pm_strtab_reserve(t, 500000), 0);
    assert_int_equal(pm_strtab_reserve(t, 10), 0);   /* less than it has: nothing to do */
    for (int i = 0; i < 1000; i++) {
        snprintf(buf, sizeof buf, "s%d", i);
        assert_int_equal(pm_strtab_find(t, buf), i);
    }
    for (int i = 1000; i < 300000; i++) {
        snprintf(buf, sizeof buf, "s%d", i);
        assert_int_equal(pm_strtab_intern(t, buf, NULL), i);
    }
    assert_int_equal(pm_strtab_find(t, "s299999"), 299999);
    assert_int_equal(pm_strtab_find(t, "s300000"), -1);
    assert_int_equal(pm_strtab_reserve(t, UINT32_MAX), -1);
    assert_int_equal(pm_strtab_count(t), 300000);
    pm_strtab_free(t);
}

/* Adds n complaints "<prefix><i>" with line line[i]. */
static void add_with_lines(pm_ctx *ctx, pm_complaints *cs, const char *prefix, const uint64_t *line,
                           size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "%s%zu", prefix, i);
        pm_complaint c = {.id = id, .answered_at = PM_TIME_NONE, .line = line[i]};
        assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_OK);
    }
}

/* The lines are kept as runs (a file read whole takes a few bytes for them
 * all), never more than a column of 8 bytes a complaint would take, and
 * every complaint's line comes back as it was given, whatever the order. */
static void complaints_keep_lines_as_runs(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    enum { N = 100000 };
    uint64_t *line = malloc(N * sizeof *line);
    assert_non_null(line);
    uint64_t s = 42;
    /* a file read whole: header on line 1, a record a line */
    for (size_t i = 0; i < N; i++)
        line[i] = i + 2;
    pm_complaints *cs = pm_complaints_new();
    add_with_lines(ctx, cs, "a", line, N);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(pm_complaints_line(cs, i), line[i]);
    assert_true(pm_complaints_line_bytes(cs) <= 16 * 20);
    pm_complaints_free(cs);
    /* a dirty file: 1 record in 20 rejected or spanning several lines */
    for (size_t i = 0, l = 2; i < N; i++) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        l += (s >> 33) % 20 == 0 ? 1 + (s >> 40) % 5 : 1;
        line[i] = l;
    }
    cs = pm_complaints_new();
    add_with_lines(ctx, cs, "b", line, N);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(pm_complaints_line(cs, i), line[i]);
    assert_true(pm_complaints_line_bytes(cs) < N * 8 / 4);
    pm_complaints_free(cs);
    /* no order at all (read back by time), with the extremes and steps
     * down: a column, no bigger than one */
    for (size_t i = 0; i < N; i++) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        line[i] = i % 3 == 0 ? s : i % 3 == 1 ? UINT64_MAX - i : i;
    }
    line[0] = 0;
    line[1] = UINT64_MAX;
    cs = pm_complaints_new();
    add_with_lines(ctx, cs, "c", line, N);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(pm_complaints_line(cs, i), line[i]);
    assert_true(pm_complaints_line_bytes(cs) <= pm_complaints_capacity(cs) * 8);
    /* a duplicate id records no line: the next one is where it belongs */
    pm_complaint c = {.id = "c5", .answered_at = PM_TIME_NONE, .line = 7};
    assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_E_INPUT_VALUE);
    c.id = "c-last";
    assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_OK);
    assert_int_equal(pm_complaints_line(cs, N), 7);
    assert_int_equal(pm_complaints_line(cs, N - 1), line[N - 1]);
    pm_complaints_free(cs);
    /* runs with steps other than one, and the one-complaint run at the end */
    for (size_t i = 0; i < 10; i++)
        line[i] = i < 4 ? 100 - 10 * i : i < 9 ? 1000 + 2 * i : 5;
    cs = pm_complaints_new();
    add_with_lines(ctx, cs, "d", line, 10);
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(pm_complaints_line(cs, i), line[i]);
    pm_complaints_free(cs);
    free(line);
    pm_ctx_free(ctx);
}

/* A dictionary column is one byte a complaint until its dictionary has
 * 255 values, two until 65 535, then four; the widest value of a width is
 * "none", never a value, and widening keeps every complaint's value. */
static void complaints_dict_columns_widen(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    pm_complaints *cs = pm_complaints_new();
    enum { N = 100000 };   /* 66 667 executors */
    char id[16], ex[16];
    size_t values = 0;   /* executors so far: complaint i has "e<i>", or none when i % 3 == 2 */
    for (size_t i = 0; i < N; i++) {
        snprintf(id, sizeof id, "c%zu", i);
        snprintf(ex, sizeof ex, "e%zu", i);
        pm_complaint c = {.id = id, .answered_at = PM_TIME_NONE, .source = "vk",
                          .executor = i % 3 == 2 ? NULL : ex};
        assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_OK);
        values += i % 3 != 2;
        unsigned want = values <= 255 ? 1 : values <= 65535 ? 2 : 4;
        if (values == 255 || values == 256 || values == 65535 || values == 65536 || i == N - 1) {
            assert_int_equal(pm_complaints_dict(cs, PM_DICT_EXECUTOR).width, want);
            assert_int_equal(pm_complaints_dict_at(cs, PM_DICT_EXECUTOR, i),
                             i % 3 == 2 ? PM_NONE : values - 1);
        }
    }
    assert_int_equal(pm_complaints_dict(cs, PM_DICT_EXECUTOR).width, 4);
    assert_int_equal(pm_complaints_dict(cs, PM_DICT_SOURCE).width, 1);
    assert_int_equal(pm_complaints_dict(cs, PM_DICT_STATUS).width, 1);
    pm_dict_column col = pm_complaints_dict(cs, PM_DICT_EXECUTOR);
    for (size_t i = 0; i < N; i++) {
        uint32_t v = pm_dict_column_at(col, i);
        assert_int_equal(pm_complaints_dict_at(cs, PM_DICT_EXECUTOR, i), v);
        assert_int_equal(pm_complaints_dict_at(cs, PM_DICT_STATUS, i), PM_NONE);
        snprintf(ex, sizeof ex, "e%zu", i);
        assert_string_equal(pm_complaints_dict_str(cs, PM_DICT_EXECUTOR, v), i % 3 == 2 ? "" : ex);
    }
    /* a known index past a width: the column widens for it too */
    pm_complaints *small = pm_complaints_new();
    pm_complaint c = {.id = "s0", .answered_at = PM_TIME_NONE, .executor = "x"};
    assert_int_equal(pm_complaints_add(ctx, small, &c), PM_OK);
    for (size_t i = 1; i < 300; i++) {
        snprintf(id, sizeof id, "s%zu", i);
        snprintf(ex, sizeof ex, "x%zu", i);
        c = (pm_complaint){.id = id, .answered_at = PM_TIME_NONE, .executor = ex};
        assert_int_equal(pm_complaints_add(ctx, small, &c), PM_OK);
    }
    uint32_t idx[PM_DICT_N] = {PM_NONE, PM_NONE, 299, PM_NONE};
    c = (pm_complaint){.id = "known", .answered_at = PM_TIME_NONE};
    assert_int_equal(pm_complaints_add_indexed(ctx, small, &c, idx), PM_OK);
    assert_int_equal(pm_complaints_dict_at(small, PM_DICT_EXECUTOR, 300), 299);
    assert_string_equal(pm_complaints_dict_str(small, PM_DICT_EXECUTOR, 299), "x299");
    pm_complaints_free(small);
    pm_complaints_free(cs);
    pm_ctx_free(ctx);
}

/* Answer times are kept as waits after creation while they fit one, and
 * come back exact; the first that does not fit (answered before created,
 * or 2^32 s or more after) turns them into whole times, with every one
 * kept as it was. */
static void complaints_keep_answer_times_as_waits(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    static const struct { int64_t created, answered; } fit[] = {
        {1700000000, PM_TIME_NONE},
        {1700000000, 1700000000},
        {1700000000, 1700000001},
        {1700000000, 1700000000 + (int64_t)UINT32_MAX - 1},   /* the longest wait kept */
        {-86400, 0},                                            /* 1969 */
        {INT64_MAX - 10, INT64_MAX},
        {INT64_MIN + 1, INT64_MIN + 2},
    };
    static const struct { int64_t created, answered; } wide[] = {
        {1700000000, 1700000000 + (int64_t)UINT32_MAX},   /* UINT32_MAX is "not answered" */
        {1700000000, 1699999999},                          /* before its creation */
        {INT64_MAX, INT64_MIN + 5},   /* 6 after, counted modulo 2^64: still before */
    };
    size_t nf = sizeof fit / sizeof *fit;
    for (size_t w = 0; w < sizeof wide / sizeof *wide; w++) {
        pm_complaints *cs = pm_complaints_new();
        char id[16];
        for (size_t i = 0; i < nf; i++) {
            snprintf(id, sizeof id, "f%zu", i);
            pm_complaint c = {.id = id, .created_at = fit[i].created,
                              .answered_at = fit[i].answered};
            assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_OK);
        }
        assert_null(pm_complaints_answered(cs).wide);
        for (size_t i = 0; i < nf; i++)
            assert_true(pm_complaints_answered_at(cs, i) == fit[i].answered);
        pm_complaint c = {.id = "w", .created_at = wide[w].created,
                          .answered_at = wide[w].answered};
        assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_OK);
        assert_non_null(pm_complaints_answered(cs).wide);
        c = (pm_complaint){.id = "after", .created_at = 5, .answered_at = PM_TIME_NONE};
        assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_OK);
        pm_answered_column col = pm_complaints_answered(cs);
        for (size_t i = 0; i < nf; i++)
            assert_true(pm_answered_at(col, i) == fit[i].answered);
        assert_true(pm_answered_at(col, nf) == wide[w].answered);
        assert_true(pm_answered_at(col, nf + 1) == PM_TIME_NONE);
        assert_true(pm_complaints_created_at(cs, nf) == wide[w].created);
        pm_complaints_free(cs);
    }
    pm_ctx_free(ctx);
}

/* Whether x and y are the same double, bit for bit (NAN and -0 too). */
static int same_bits(double x, double y) { return memcmp(&x, &y, sizeof x) == 0; }

/* Adds complaint "c<n>" at lon, lat. */
static void add_at(pm_ctx *ctx, pm_complaints *cs, double lon, double lat)
{
    char id[24];
    snprintf(id, sizeof id, "c%zu", pm_complaints_count(cs));
    pm_complaint c = {.id = id, .answered_at = PM_TIME_NONE, .lon = lon, .lat = lat};
    assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_OK);
}

/* Positions are kept in ten-millionths of a degree while each comes back
 * bit for bit; the first that would not turns both columns into degrees,
 * every value the same double as given. */
static void complaints_keep_coordinates_in_ten_millionths(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    /* up to seven decimals, the ends of the range, no position */
    static const struct { double lon, lat; int32_t lon_e7, lat_e7; } fit[] = {
        {86.0877, 55.3547, 860877000, 553547000},
        {-179.9999999, -89.9999999, -1799999999, -899999999},
        {180, 90, 1800000000, 900000000},
        {-180, -90, -1800000000, -900000000},
        {0, 1e-7, 0, 1},
        {213.9999999, -213.9999999, 2139999999, -2139999999},
        {87.326624, 53.593139, 873266240, 535931390},
        {NAN, NAN, PM_COORD_E7_NONE, PM_COORD_E7_NONE},
    };
    size_t nf = sizeof fit / sizeof fit[0];
    /* each would not come back from the int32 column */
    static const double misfit[] = {87.32662417, -0.0, 214.0000001, -215, 1e300, INFINITY};
    for (size_t m = 0; m < sizeof misfit / sizeof misfit[0] * 2 + 1; m++) {
        pm_complaints *cs = pm_complaints_new();
        for (size_t k = 0; k < nf; k++)
            add_at(ctx, cs, fit[k].lon, fit[k].lat);
        pm_coord_column lon = pm_complaints_lon(cs), lat = pm_complaints_lat(cs);
        assert_null(lon.wide);
        assert_null(lat.wide);
        for (size_t k = 0; k < nf; k++) {
            assert_int_equal(lon.e7[k], fit[k].lon_e7);
            assert_int_equal(lat.e7[k], fit[k].lat_e7);
            assert_true(same_bits(pm_complaints_lon_at(cs, k), fit[k].lon));
            assert_true(same_bits(pm_complaints_lat_at(cs, k), fit[k].lat));
        }
        if (m == sizeof misfit / sizeof misfit[0] * 2) {   /* a NAN of another sign */
            add_at(ctx, cs, 86.1, -NAN);
        } else {   /* each misfit, as a longitude then as a latitude */
            double x = misfit[m / 2];
            add_at(ctx, cs, m % 2 ? 86.1 : x, m % 2 ? x : 55.1);
        }
        lon = pm_complaints_lon(cs);
        lat = pm_complaints_lat(cs);
        assert_non_null(lon.wide);
        assert_non_null(lat.wide);
        for (size_t k = 0; k < nf; k++) {
            assert_true(same_bits(pm_complaints_lon_at(cs, k), fit[k].lon));
            assert_true(same_bits(pm_complaints_lat_at(cs, k), fit[k].lat));
        }
        double want_lon = m == 2 * (sizeof misfit / sizeof misfit[0]) ? 86.1
                          : m % 2 ? 86.1 : misfit[m / 2];
        double want_lat = m == 2 * (sizeof misfit / sizeof misfit[0]) ? -NAN
                          : m % 2 ? misfit[m / 2] : 55.1;
        assert_true(same_bits(pm_complaints_lon_at(cs, nf), want_lon));
        assert_true(same_bits(pm_complaints_lat_at(cs, nf), want_lat));
        /* the whole columns grow with the others; what fits is kept whole too */
        for (size_t k = 0; k < 3000; k++)
            add_at(ctx, cs, (860000000 + (double)k) / 1e7, (550000000 - (double)k) / 1e7);
        for (size_t k = 0; k < 3000; k++) {
            assert_true(pm_complaints_lon_at(cs, nf + 1 + k) == (860000000 + (double)k) / 1e7);
            assert_true(pm_complaints_lat_at(cs, nf + 1 + k) == (550000000 - (double)k) / 1e7);
        }
        pm_complaints_free(cs);
    }
    pm_ctx_free(ctx);
}

/* Creation times are kept as seconds from the first one while they lie
 * within 2^31 s of it, and come back exact (answer times too, which are
 * kept after them); the first that lies further turns them into whole
 * times, every one kept as it was. */
static void complaints_keep_creation_times_from_the_first(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    const int64_t base = 1700000000;
    const int64_t fit[] = {base, base + INT32_MAX, base + INT32_MIN, base - 1, base + 1};
    const int64_t far[] = {base + (int64_t)INT32_MAX + 1, base + (int64_t)INT32_MIN - 1,
                           INT64_MIN + 1};
    size_t nf = sizeof fit / sizeof *fit;
    for (size_t w = 0; w < sizeof far / sizeof *far; w++) {
        pm_complaints *cs = pm_complaints_new();
        char id[32];
        for (size_t i = 0; i < nf; i++) {
            snprintf(id, sizeof id, "f%zu", i);
            pm_complaint c = {.id = id, .created_at = fit[i],
                              .answered_at = i % 2 ? PM_TIME_NONE : fit[i] + 60};
            assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_OK);
        }
        assert_null(pm_complaints_created(cs).wide);
        for (size_t i = 0; i < nf; i++)
            assert_true(pm_complaints_created_at(cs, i) == fit[i]);
        pm_complaint c = {.id = "far", .created_at = far[w], .answered_at = far[w] + 7};
        assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_OK);
        assert_non_null(pm_complaints_created(cs).wide);
        c = (pm_complaint){.id = "after", .created_at = 5, .answered_at = 6};
        assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_OK);
        pm_created_column cr = pm_complaints_created(cs);
        pm_answered_column an = pm_complaints_answered(cs);
        for (size_t i = 0; i < nf; i++) {
            assert_true(pm_created_at(cr, i) == fit[i]);
            assert_true(pm_answered_at(an, i) == (i % 2 ? PM_TIME_NONE : fit[i] + 60));
        }
        assert_true(pm_created_at(cr, nf) == far[w]);
        assert_true(pm_answered_at(an, nf) == far[w] + 7);
        assert_true(pm_created_at(cr, nf + 1) == 5 && pm_answered_at(an, nf + 1) == 6);
        for (int64_t i = 0; i < 3000; i++) {   /* the whole times grow with the columns */
            snprintf(id, sizeof id, "g%" PRId64, i);
            c = (pm_complaint){.id = id, .created_at = i * 1000, .answered_at = i * 1000 + i};
            assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_OK);
        }
        for (int64_t i = 0; i < 3000; i++) {
            assert_true(pm_complaints_created_at(cs, nf + 2 + (size_t)i) == i * 1000);
            assert_true(pm_complaints_answered_at(cs, nf + 2 + (size_t)i) == i * 1000 + i);
        }
        assert_true(pm_complaints_created_at(cs, 0) == fit[0]);
        pm_complaints_free(cs);
    }
    /* times a subtraction would wrap from one end of int64_t to the other */
    pm_complaints *cs = pm_complaints_new();
    pm_complaint c = {.id = "top", .created_at = INT64_MAX - 5, .answered_at = PM_TIME_NONE};
    assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_OK);
    c = (pm_complaint){.id = "bottom", .created_at = INT64_MIN + 5, .answered_at = PM_TIME_NONE};
    assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_OK);
    assert_true(pm_complaints_created_at(cs, 0) == INT64_MAX - 5);
    assert_true(pm_complaints_created_at(cs, 1) == INT64_MIN + 5);
    pm_complaints_free(cs);
    pm_ctx_free(ctx);
}

/* The positions of complaint i below: six decimals, none every 97th, and
 * nine at 1100 (the columns kept whole from there). */
static double fail_lon(int i)
{
    return i % 97 == 5 ? NAN : i == 1100 ? 86.123456789 : (86000000 + i) / 1e6;
}

static double fail_lat(int i) { return i % 97 == 5 ? NAN : (55000000 - i) / 1e6; }

static void complaints_survive_every_allocation_failure(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    int add_failed = 0;   /* times an add failed: the retries below were tried */
    /* the n-th allocation of the run below, and those after it, fail; until
     * a run has no failure: every allocation of it failed in one run */
    for (long n = 1, failed = 1; failed; n++) {
        pm_alloc_fail_at(n);
        pm_complaints *cs = pm_complaints_new();
        failed = cs == NULL;
        if (cs) {   /* a failed reserve leaves the batch as it was: adding goes on */
            int rc = pm_complaints_reserve(ctx, cs, 1200);
            assert_true(rc == PM_OK || rc == PM_E_NOMEM);
            failed = rc != PM_OK;
        }
        for (int i = 0; cs && i < 1500; i++) {   /* on after a failure, allocating again */
            char id[16];
            snprintf(id, sizeof id, "c%d", i);
            pm_complaint c = {.id = id, .source = id, .line = (uint64_t)(i * 3 + i / 7),
                              .created_at = 1000, .answered_at = 1000 + i,   /* a run every 7 */
                              .lon = fail_lon(i), .lat = fail_lat(i)};
            if (i == 1000)   /* answered before created: the times kept whole from here */
                c.answered_at = 999;
            if (i == 1300) {   /* created 2^40 s later: likewise */
                c.created_at = INT64_C(1) << 40;
                c.answered_at = PM_TIME_NONE;
            }
            int rc = pm_complaints_add(ctx, cs, &c);
            assert_true(rc == PM_OK || rc == PM_E_NOMEM);
            if (rc != PM_OK) {
                assert_int_equal(pm_complaints_count(cs), (size_t)i);
                pm_alloc_fail_at(0);
                add_failed++;
                failed = 1;
                assert_int_equal(pm_complaints_add(ctx, cs, &c), PM_OK);
            }
        }
        for (size_t i = 0; cs && i < pm_complaints_count(cs); i++) {   /* all there, as given */
            char id[24];
            snprintf(id, sizeof id, "c%zu", i);
            assert_string_equal(pm_complaints_id(cs, i), id);
            assert_string_equal(   /* its own source: the column widened past 255 */
                pm_complaints_dict_str(cs, PM_DICT_SOURCE,
                                       pm_complaints_dict_at(cs, PM_DICT_SOURCE, i)), id);
            assert_int_equal(pm_complaints_line(cs, i), i * 3 + i / 7);
            assert_int_equal(pm_complaints_answered_at(cs, i),
                             i == 1000 ? 999 : i == 1300 ? PM_TIME_NONE : 1000 + (int64_t)i);
            assert_int_equal(pm_complaints_created_at(cs, i),
                             i == 1300 ? INT64_C(1) << 40 : 1000);
            assert_true(same_bits(pm_complaints_lon_at(cs, i), fail_lon((int)i)));
            assert_true(same_bits(pm_complaints_lat_at(cs, i), fail_lat((int)i)));
        }
        assert_true(!cs || pm_complaints_count(cs) == 1500);
        pm_complaints_free(cs);
        pm_alloc_fail_at(0);
    }
    assert_true(add_failed >= 20);
    pm_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keep_freed_serves_a_mebibyte_from_the_heap),
        cmocka_unit_test(error_record_names_function_and_code),
        cmocka_unit_test(calloc_refuses_overflow),
        cmocka_unit_test(alloc_hook_fails_at_n),
        cmocka_unit_test(strtab_dense_indexes),
        cmocka_unit_test(strtab_tags_across_grows),
        cmocka_unit_test(strtab_keeps_strings_of_any_length_in_place),
        cmocka_unit_test(districts_sorted_by_id_bytes_with_regions),
        cmocka_unit_test(districts_duplicate_id_is_an_error),
        cmocka_unit_test(complaints_columns_and_dictionaries),
        cmocka_unit_test(complaints_add_indexed_uses_known_indexes),
        cmocka_unit_test(complaints_prefault_faults_the_pages_in),
        cmocka_unit_test(complaints_reserve_keeps_columns_in_place),
        cmocka_unit_test(complaints_keep_lines_as_runs),
        cmocka_unit_test(complaints_dict_columns_widen),
        cmocka_unit_test(complaints_keep_answer_times_as_waits),
        cmocka_unit_test(complaints_keep_creation_times_from_the_first),
        cmocka_unit_test(complaints_keep_coordinates_in_ten_millionths),
        cmocka_unit_test(strtab_reserve_rehashes_what_it_holds),
        cmocka_unit_test(complaints_survive_every_allocation_failure),
    };
    return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
