/* test_lru.c — the caches of `problemap serve` (apps/serve_cache.c): LRU
 * order, the cost bound, races on one key, references that outlive
 * eviction, table growth, ETags, and out of memory.  Built and run by
 * tests/serve/run.sh against apps/serve_cache.c and engine/alloc.c only
 * (the program's files are not in the library the unit tests link). */
#include "../../apps/serve.h"
#include "../../engine/pm_alloc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

/* A counted object: how many were destroyed. */
typedef struct item {
    shared sh;
    int *destroyed;
} item;

static void item_destroy(shared *s)
{
    item *it = (item *)s;
    (*it->destroyed)++;
    pm_free(it);
}

static shared *item_new(int *destroyed)
{
    item *it = pm_calloc(1, sizeof *it);
    assert_non_null(it);
    shared_init(&it->sh, item_destroy);
    it->destroyed = destroyed;
    return &it->sh;
}

/* Puts a new item under key and drops the caller's reference. */
static shared *put(lru *c, const char *key, size_t cost, int *destroyed)
{
    shared *v = lru_put(c, key, item_new(destroyed), cost);
    shared_unref(v);
    return v;
}

static int cached(lru *c, const char *key)
{
    shared *v = lru_get(c, key);
    shared_unref(v);
    return v != NULL;
}

static void least_recent_goes_first(void **state)
{
    (void)state;
    int d = 0;
    lru *c = lru_new(25);
    put(c, "a", 10, &d);
    put(c, "b", 10, &d);
    assert_true(cached(c, "a"));   /* a is now more recent than b */
    put(c, "c", 10, &d);
    assert_true(cached(c, "a"));
    assert_false(cached(c, "b"));
    assert_true(cached(c, "c"));
    assert_int_equal(d, 1);
    assert_int_equal(lru_count(c), 2);
    assert_int_equal(lru_cost(c), 20);
    lru_free(c);
    assert_int_equal(d, 3);
}

static void second_put_of_a_key_returns_the_first(void **state)
{
    (void)state;
    int d = 0;
    lru *c = lru_new(100);
    shared *first = lru_put(c, "k", item_new(&d), 1);
    shared *second = lru_put(c, "k", item_new(&d), 1);
    assert_ptr_equal(first, second);
    assert_int_equal(d, 1);          /* the loser was dropped */
    assert_int_equal(lru_count(c), 1);
    shared_unref(first);
    shared_unref(second);
    lru_free(c);
    assert_int_equal(d, 2);
}

static void evicted_object_lives_while_referenced(void **state)
{
    (void)state;
    int d = 0;
    lru *c = lru_new(10);
    shared *held = lru_put(c, "a", item_new(&d), 10);
    put(c, "b", 10, &d);             /* evicts a from the cache */
    assert_false(cached(c, "a"));
    assert_int_equal(d, 0);          /* still held */
    shared_unref(held);
    assert_int_equal(d, 1);
    lru_free(c);
}

static void too_dear_is_returned_uncached(void **state)
{
    (void)state;
    int d = 0;
    lru *c = lru_new(10);
    put(c, "small", 5, &d);
    shared *big = lru_put(c, "big", item_new(&d), 11);
    assert_non_null(big);
    assert_false(cached(c, "big"));
    assert_true(cached(c, "small"));  /* and nothing was evicted for it */
    shared_unref(big);
    assert_int_equal(d, 1);
    lru_free(c);
}

static void clear_empties_and_table_grows(void **state)
{
    (void)state;
    int d = 0;
    lru *c = lru_new(1000000);
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "tile/heat/%d", i);
        put(c, key, 1, &d);
    }
    assert_int_equal(lru_count(c), 5000);
    for (int i = 0; i < 5000; i += 499) {
        snprintf(key, sizeof key, "tile/heat/%d", i);
        assert_true(cached(c, key));
    }
    assert_false(cached(c, "tile/heat/5000"));
    lru_clear(c);
    assert_int_equal(lru_count(c), 0);
    assert_int_equal(lru_cost(c), 0);
    assert_int_equal(d, 5000);
    lru_free(c);
}

static void etag_depends_on_generation_key_and_bytes(void **state)
{
    (void)state;
    blob *a = blob_copy("png", 3, "image/png", 1, "tile/1");
    blob *same = blob_copy("png", 3, "image/png", 1, "tile/1");
    blob *other_gen = blob_copy("png", 3, "image/png", 2, "tile/1");
    blob *key = blob_copy("png", 3, "image/png", 1, "tile/2");
    blob *bytes = blob_copy("pnG", 3, "image/png", 1, "tile/1");
    assert_string_equal(a->etag, same->etag);
    assert_string_not_equal(a->etag, other_gen->etag);
    assert_string_not_equal(a->etag, key->etag);
    assert_string_not_equal(a->etag, bytes->etag);
    assert_int_equal(strlen(a->etag), 18);   /* "…16 hex…" */
    assert_true(a->etag[0] == '"' && a->etag[17] == '"');
    blob_unref(a), blob_unref(same), blob_unref(other_gen), blob_unref(key), blob_unref(bytes);
}

static void out_of_memory_leaves_the_object_uncached(void **state)
{
    (void)state;
    int d = 0;
    lru *c = lru_new(100);
    shared *v = item_new(&d);
    pm_alloc_fail_at(1);             /* the entry's allocation */
    shared *got = lru_put(c, "k", v, 1);
    pm_alloc_fail_at(0);
    assert_ptr_equal(got, v);
    assert_false(cached(c, "k"));
    shared_unref(got);
    assert_int_equal(d, 1);
    pm_alloc_fail_at(1);
    assert_null(blob_copy("x", 1, "text/plain", 0, "k"));
    pm_alloc_fail_at(0);
    lru_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(least_recent_goes_first),
        cmocka_unit_test(second_put_of_a_key_returns_the_first),
        cmocka_unit_test(evicted_object_lives_while_referenced),
        cmocka_unit_test(too_dear_is_returned_uncached),
        cmocka_unit_test(clear_empties_and_table_grows),
        cmocka_unit_test(etag_depends_on_generation_key_and_bytes),
        cmocka_unit_test(out_of_memory_leaves_the_object_uncached),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
