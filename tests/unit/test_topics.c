/* test_topics.c — the topic catalogue: loading, lookups by code, name,
 * alias and source category, load errors (geodata/topics.c).  Run from the
 * repository root (it reads data/topics.json). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../engine/pm_alloc.h"
#include "../../geodata/pm_topics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CATALOGUE "data/topics.json"

typedef struct fx {
    pm_ctx *ctx;
    pm_topics *t;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->ctx = pm_ctx_new();
    assert_non_null(f->ctx);
    if (pm_topics_load(f->ctx, CATALOGUE, &f->t) != PM_OK)
        fail_msg("%s", pm_ctx_errmsg(f->ctx));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    pm_topics_free(f->t);
    pm_ctx_free(f->ctx);
    free(f);
    return 0;
}

static long code_index(const pm_topics *t, const char *code)
{
    for (size_t i = 0; i < pm_topics_count(t); i++)
        if (strcmp(pm_topic_code(t, i), code) == 0)
            return (long)i;
    fail_msg("no topic %s", code);
    return -1;
}

/* ---- the shipped catalogue ----------------------------------------------- */

static void test_shipped_codes_in_order(void **state)
{
    fx *f = *state;
    static const char *const codes[] = {"housing", "roads", "social", "health", "transport",
                                        "education", "labour", "ecology", "construction",
                                        "energy", "industry", "other"};
    assert_int_equal(pm_topics_count(f->t), 12);
    for (size_t i = 0; i < 12; i++)
        assert_string_equal(pm_topic_code(f->t, i), codes[i]);
    assert_string_equal(pm_topic_name_ru(f->t, 0), "ЖКХ");
    assert_string_equal(pm_topic_name_en(f->t, 0), "Housing and utilities");
    assert_string_equal(pm_topic_name_ru(f->t, 1), "Дороги");
}

static void test_shipped_colours_distinct(void **state)
{
    fx *f = *state;
    size_t n = pm_topics_count(f->t);
    for (size_t i = 0; i < n; i++) {
        const char *c = pm_topic_color(f->t, i);
        assert_int_equal(strlen(c), 7);
        assert_int_equal(c[0], '#');
        assert_int_equal(strspn(c + 1, "0123456789abcdef"), 6);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(c, pm_topic_color(f->t, j));
    }
}

/* ---- lookups ------------------------------------------------------------- */

static void test_find_by_code_case_insensitive(void **state)
{
    fx *f = *state;
    assert_int_equal(pm_topics_find(f->t, "housing"), 0);
    assert_int_equal(pm_topics_find(f->t, "HOUSING"), 0);
    assert_int_equal(pm_topics_find(f->t, " roads\t"), 1);
    assert_int_equal(pm_topics_find(f->t, "Other"), code_index(f->t, "other"));
}

static void test_find_cyrillic_names(void **state)
{
    fx *f = *state;
    assert_int_equal(pm_topics_find(f->t, "ЖКХ"), 0);
    assert_int_equal(pm_topics_find(f->t, "жкх"), 0);
    assert_int_equal(pm_topics_find(f->t, "Жкх"), 0);
    assert_int_equal(pm_topics_find(f->t, "Дороги"), 1);
    assert_int_equal(pm_topics_find(f->t, "ДОРОГИ"), 1);
    assert_int_equal(pm_topics_find(f->t, "  дороги "), 1);
    assert_int_equal(pm_topics_find(f->t, "ТРУД И ЗАНЯТОСТЬ"), code_index(f->t, "labour"));
    assert_int_equal(pm_topics_find(f->t, "экология"), code_index(f->t, "ecology"));
}

static void test_find_english_names(void **state)
{
    fx *f = *state;
    assert_int_equal(pm_topics_find(f->t, "Housing and utilities"), 0);
    assert_int_equal(pm_topics_find(f->t, "HOUSING AND UTILITIES"), 0);
    assert_int_equal(pm_topics_find(f->t, "labour and employment"), code_index(f->t, "labour"));
}

static void test_find_aliases(void **state)
{
    fx *f = *state;
    assert_int_equal(pm_topics_find(f->t, "жилищно-коммунальное хозяйство"), 0);
    assert_int_equal(pm_topics_find(f->t, "Жилищно-коммунальное хозяйство"), 0);
    assert_int_equal(pm_topics_find(f->t, "БЛАГОУСТРОЙСТВО"), 0);
    assert_int_equal(pm_topics_find(f->t, "Дорожное хозяйство"), 1);
    assert_int_equal(pm_topics_find(f->t, "медицина"), code_index(f->t, "health"));
}

static void test_find_unknown(void **state)
{
    fx *f = *state;
    assert_int_equal(pm_topics_find(f->t, "Noise - Residential"), -1);
    assert_int_equal(pm_topics_find(f->t, "housin"), -1);
    assert_int_equal(pm_topics_find(f->t, "жкхх"), -1);
    assert_int_equal(pm_topics_find(f->t, ""), -1);
    assert_int_equal(pm_topics_find(f->t, "   "), -1);
    assert_int_equal(pm_topics_find(f->t, NULL), -1);
    char big[2000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(pm_topics_find(f->t, big), -1);
}

/* ---- source categories --------------------------------------------------- */

static void test_category_exact_and_folded(void **state)
{
    fx *f = *state;
    assert_int_equal(pm_topics_add_category(f->ctx, f->t, "Noise - Residential", "housing"), PM_OK);
    assert_int_equal(pm_topics_find(f->t, "Noise - Residential"), 0);
    assert_int_equal(pm_topics_find(f->t, " Noise - Residential  "), 0);
    assert_int_equal(pm_topics_find(f->t, "NOISE - RESIDENTIAL"), 0);
    assert_int_equal(pm_topics_add_category(f->ctx, f->t, "Ямы на дорогах", "ROADS"), PM_OK);
    assert_int_equal(pm_topics_find(f->t, "ЯМЫ НА ДОРОГАХ"), 1);
}

static void test_category_to_unknown_code(void **state)
{
    fx *f = *state;
    assert_int_equal(pm_topics_add_category(f->ctx, f->t, "Potholes", "potholes"), PM_E_INPUT_VALUE);
    assert_non_null(strstr(pm_ctx_errmsg(f->ctx), "potholes"));
    assert_int_equal(pm_topics_find(f->t, "Potholes"), -1);
    /* a name is not a code */
    assert_int_equal(pm_topics_add_category(f->ctx, f->t, "Potholes", "Дороги"), PM_E_INPUT_VALUE);
}

static void test_category_mapped_twice(void **state)
{
    fx *f = *state;
    assert_int_equal(pm_topics_add_category(f->ctx, f->t, "Taxi", "transport"), PM_OK);
    assert_int_equal(pm_topics_add_category(f->ctx, f->t, "Taxi", "transport"), PM_OK);
    assert_int_equal(pm_topics_add_category(f->ctx, f->t, "Taxi", "roads"), PM_E_INPUT_VALUE);
    assert_non_null(strstr(pm_ctx_errmsg(f->ctx), "already mapped to topic \"transport\""));
    assert_int_equal(pm_topics_find(f->t, "Taxi"), code_index(f->t, "transport"));
}

/* The mapping wins on an exact match, the catalogue on a folded one. */
static void test_category_clashing_with_catalogue(void **state)
{
    fx *f = *state;
    long transport = code_index(f->t, "transport");
    assert_int_equal(pm_topics_add_category(f->ctx, f->t, "ROADS", "transport"), PM_OK);
    assert_int_equal(pm_topics_find(f->t, "ROADS"), transport);
    assert_int_equal(pm_topics_find(f->t, "Roads"), 1);
}

static void test_category_blank(void **state)
{
    fx *f = *state;
    assert_int_equal(pm_topics_add_category(f->ctx, f->t, "  ", "housing"), PM_E_INPUT_VALUE);
}

/* ---- load errors --------------------------------------------------------- */

/* Writes text to a temporary file; its path goes to path[64]. */
static void write_tmp(char *path, const char *text)
{
    strcpy(path, "/tmp/pm_test_topics_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "w");
    fputs(text, fp);
    fclose(fp);
}

#define ENTRY(code, color) \
    "{\"code\": \"" code "\", \"name_ru\": \"Имя " code "\", \"name_en\": \"Name " code "\", \"color\": \"" color "\"}"

/* Loading text fails with code, and the message holds the file name and
 * every one of the given fragments. */
static void load_fails(const char *text, int code, const char *frag1, const char *frag2)
{
    char path[64];
    write_tmp(path, text);
    pm_ctx *ctx = pm_ctx_new();
    pm_topics *t = (pm_topics *)&t;
    int rc = pm_topics_load(ctx, path, &t);
    const char *msg = pm_ctx_errmsg(ctx);
    if (rc != code || t != NULL || !strstr(msg, path) || (frag1 && !strstr(msg, frag1)) ||
        (frag2 && !strstr(msg, frag2)))
        fail_msg("rc %d (expected %d), message: %s", rc, code, msg);
    pm_ctx_free(ctx);
    unlink(path);
}

static void test_load_missing_code(void **state)
{
    (void)state;
    load_fails("{\"topics\": [" ENTRY("a", "#000000") ", {\"name_ru\": \"x\"}]}", PM_E_INPUT_FIELD,
               "topic 2", "missing code");
}

static void test_load_duplicate_code(void **state)
{
    (void)state;
    load_fails("{\"topics\": [" ENTRY("a", "#000000") ", " ENTRY("b", "#000001") ", " ENTRY("A", "#000002") "]}",
               PM_E_INPUT_VALUE, "topic 3 (\"A\")", "duplicate code");
}

static void test_load_bad_colour(void **state)
{
    (void)state;
    load_fails("{\"topics\": [" ENTRY("a", "#12345") "]}", PM_E_INPUT_VALUE, "topic 1 (\"a\")",
               "bad colour \"#12345\"");
    load_fails("{\"topics\": [" ENTRY("a", "red") "]}", PM_E_INPUT_VALUE, "bad colour", NULL);
    load_fails("{\"topics\": [" ENTRY("a", "#gg0000") "]}", PM_E_INPUT_VALUE, "bad colour", NULL);
    load_fails("{\"topics\": [{\"code\": \"a\", \"name_ru\": \"a\", \"name_en\": \"a\"}]}",
               PM_E_INPUT_FIELD, "missing color", NULL);
}

static void test_load_entry_not_object(void **state)
{
    (void)state;
    load_fails("{\"topics\": [" ENTRY("a", "#000000") ", \"b\"]}", PM_E_INPUT, "topic 2",
               "not an object");
}

static void test_load_alias_names_two_topics(void **state)
{
    (void)state;
    load_fails("{\"topics\": [" ENTRY("a", "#000000") ", {\"code\": \"b\", \"name_ru\": \"б\", "
               "\"name_en\": \"b\", \"color\": \"#000000\", \"aliases\": [\"ИМЯ A\"]}]}",
               PM_E_INPUT_VALUE, "topic 2 (\"b\")", "already names topic \"a\"");
}

static void test_load_bad_code_and_names(void **state)
{
    (void)state;
    load_fails("{\"topics\": [" ENTRY("жкх", "#000000") "]}", PM_E_INPUT_VALUE,
               "not an ASCII identifier", NULL);
    load_fails("{\"topics\": [{\"code\": \"a\", \"name_ru\": \"\", \"name_en\": \"a\", \"color\": \"#000000\"}]}",
               PM_E_INPUT_VALUE, "name_ru", NULL);
    load_fails("{\"topics\": [{\"code\": \"a\", \"name_ru\": \"a\", \"name_en\": \"a\", \"color\": \"#000000\", "
               "\"aliases\": \"x\"}]}",
               PM_E_INPUT_VALUE, "aliases is not an array", NULL);
}

static void test_load_file_level_errors(void **state)
{
    (void)state;
    load_fails("[]", PM_E_INPUT, "not a JSON object", NULL);
    load_fails("{\"topics\": []}", PM_E_INPUT_EMPTY, "empty", NULL);
    load_fails("{\"version\": 2, \"topics\": [" ENTRY("a", "#000000") "]}", PM_E_INPUT_VALUE,
               "version", NULL);
    load_fails("{\"topics\": [\n" ENTRY("a", "#000000") ",\n]}", PM_E_INPUT, ":3:", NULL);
}

static void test_load_missing_file(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    pm_topics *t = NULL;
    assert_int_equal(pm_topics_load(ctx, "/nonexistent/topics.json", &t), PM_E_IO);
    assert_null(t);
    assert_non_null(strstr(pm_ctx_errmsg(ctx), "/nonexistent/topics.json"));
    pm_ctx_free(ctx);
}

/* A catalogue of n generated topics. */
static char *many_topics(size_t n)
{
    size_t cap = 64 + n * 96;
    char *s = malloc(cap), *p = s;
    p += sprintf(p, "{\"topics\": [");
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s{\"code\": \"t%zu\", \"name_ru\": \"т%zu\", \"name_en\": \"T%zu\", \"color\": \"#000000\"}",
                     i ? "," : "", i, i, i);
    sprintf(p, "]}");
    return s;
}

static void test_load_too_many_topics(void **state)
{
    (void)state;
    char *text = many_topics(65536);
    load_fails(text, PM_E_INPUT_VALUE, "65536 topics, more than 65535", NULL);
    free(text);
}

static void test_load_most_topics(void **state)
{
    (void)state;
    char *text = many_topics(65535);
    char path[64];
    write_tmp(path, text);
    free(text);
    pm_ctx *ctx = pm_ctx_new();
    pm_topics *t = NULL;
    assert_int_equal(pm_topics_load(ctx, path, &t), PM_OK);
    assert_int_equal(pm_topics_count(t), 65535);
    assert_int_equal(pm_topics_find(t, "T65534"), 65534);
    assert_int_equal(pm_topics_find(t, "Т65534"), 65534);   /* Cyrillic capital Т */
    pm_topics_free(t);
    pm_ctx_free(ctx);
    unlink(path);
}

/* Ё folds to ё like the other Cyrillic capitals. */
static void test_fold_yo(void **state)
{
    (void)state;
    char path[64];
    write_tmp(path, "{\"topics\": [{\"code\": \"trees\", \"name_ru\": \"Ёлки\", \"name_en\": \"Trees\", "
                    "\"color\": \"#00FF00\", \"aliases\": [\"Озеленение\"]}]}");
    pm_ctx *ctx = pm_ctx_new();
    pm_topics *t = NULL;
    assert_int_equal(pm_topics_load(ctx, path, &t), PM_OK);
    assert_int_equal(pm_topics_find(t, "ёлки"), 0);
    assert_int_equal(pm_topics_find(t, "ЁЛКИ"), 0);
    assert_int_equal(pm_topics_find(t, "елки"), -1);   /* е and ё stay distinct */
    assert_int_equal(pm_topics_find(t, "ОЗЕЛЕНЕНИЕ"), 0);
    assert_string_equal(pm_topic_color(t, 0), "#00ff00");
    pm_topics_free(t);
    pm_ctx_free(ctx);
    unlink(path);
}

/* Every allocation failure ends in PM_E_NOMEM, nothing half-built. */
static void test_load_out_of_memory(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    int rc = PM_E_NOMEM;
    long n = 1;
    for (; rc == PM_E_NOMEM; n++) {
        pm_topics *t = (pm_topics *)&t;
        pm_alloc_fail_at(n);
        rc = pm_topics_load(ctx, CATALOGUE, &t);
        pm_alloc_fail_at(0);
        if (rc == PM_E_NOMEM)
            assert_null(t);
        else
            assert_int_equal(pm_topics_add_category(ctx, t, "Noise", "housing"), PM_OK);
        pm_topics_free(rc == PM_OK ? t : NULL);
    }
    assert_int_equal(rc, PM_OK);
    assert_true(n > 10);
    pm_ctx_free(ctx);
}

static void test_add_category_out_of_memory(void **state)
{
    fx *f = *state;
    int rc = PM_E_NOMEM;
    for (long n = 1; rc == PM_E_NOMEM; n++) {
        pm_alloc_fail_at(n);
        rc = pm_topics_add_category(f->ctx, f->t, "Noise - Vehicle", "housing");
        pm_alloc_fail_at(0);
    }
    assert_int_equal(rc, PM_OK);
    assert_int_equal(pm_topics_find(f->t, "noise - vehicle"), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_shipped_codes_in_order),
        T(test_shipped_colours_distinct),
        T(test_find_by_code_case_insensitive),
        T(test_find_cyrillic_names),
        T(test_find_english_names),
        T(test_find_aliases),
        T(test_find_unknown),
        T(test_category_exact_and_folded),
        T(test_category_to_unknown_code),
        T(test_category_mapped_twice),
        T(test_category_clashing_with_catalogue),
        T(test_category_blank),
        cmocka_unit_test(test_load_missing_code),
        cmocka_unit_test(test_load_duplicate_code),
        cmocka_unit_test(test_load_bad_colour),
        cmocka_unit_test(test_load_entry_not_object),
        cmocka_unit_test(test_load_alias_names_two_topics),
        cmocka_unit_test(test_load_bad_code_and_names),
        cmocka_unit_test(test_load_file_level_errors),
        cmocka_unit_test(test_load_missing_file),
        cmocka_unit_test(test_load_too_many_topics),
        cmocka_unit_test(test_load_most_topics),
        cmocka_unit_test(test_fold_yo),
        cmocka_unit_test(test_load_out_of_memory),
        T(test_add_category_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
