/* test_figure.c — the figures a map shows: lookup, values, quantile
 * classes, colours (reversed where higher is better), the fixed Gi* bin
 * classes (RdBu reversed, Russian labels), Russian numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../engine/pm_alloc.h"
#include "../../render/pm_figure.h"

#include <math.h>
#include <string.h>

static void test_every_figure_is_found_by_its_name(void **state)
{
    (void)state;
    assert_true(pm_figure_count() >= 9);
    for (size_t i = 0; i < pm_figure_count(); i++) {
        const pm_figure *f = pm_figure_at(i);
        assert_ptr_equal(pm_figure_find(pm_figure_name(f)), f);
        assert_non_null(strstr(pm_figure_names(), pm_figure_name(f)));
        assert_true(strlen(pm_figure_title_ru(f)) > 0);
    }
    assert_null(pm_figure_find("nope"));
    assert_null(pm_figure_find(NULL));
    assert_null(pm_figure_at(pm_figure_count()));
}

static void test_values_come_from_the_row_and_suppressed_rows_have_none(void **state)
{
    (void)state;
    pm_row r = {.count = 42, .share_24h = 0.75, .change_pct = -12.5};
    assert_true(pm_figure_value(pm_figure_find("complaints"), &r) == 42);
    assert_true(pm_figure_value(pm_figure_find("answered_within_24h_share"), &r) == 0.75);
    assert_true(pm_figure_value(pm_figure_find("change_pct"), &r) == -12.5);
    r.suppressed = 1;
    assert_true(isnan(pm_figure_value(pm_figure_find("complaints"), &r)));
}

static void test_quantile_classes_keep_equal_values_together(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    double v[] = {1, 1, 1, 1, 2, 3, 4, 5, 6, 100, NAN};
    pm_classes c;
    assert_int_equal(pm_classes_quantile(ctx, v, 11, &c), PM_OK);
    assert_true(c.n >= 2 && c.n <= 5);
    assert_true(c.has_nodata);
    assert_int_equal(pm_classes_of(&c, NAN), -1);
    for (size_t i = 0; i + 1 < 11; i++) {
        int k = pm_classes_of(&c, v[i]);
        assert_true(k >= 0 && (size_t)k < c.n);
        assert_true(c.lo[k] <= v[i] && v[i] <= c.hi[k]);
        if (v[i] == 1)
            assert_int_equal(k, 0);
    }
    for (size_t k = 1; k < c.n; k++)
        assert_true(c.hi[k - 1] < c.lo[k]);
    assert_int_equal(pm_classes_of(&c, 100), (int)c.n - 1);
    pm_classes none;
    double nan1[] = {NAN};
    assert_int_equal(pm_classes_quantile(ctx, nan1, 1, &none), PM_OK);
    assert_int_equal(none.n, 0);
    assert_int_equal(pm_classes_colour(&none, pm_classes_of(&none, 1)), PM_FIGURE_NODATA);
    pm_ctx_free(ctx);
}

static void test_red_is_where_it_is_worst(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    double v[] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0};
    pm_classes c;
    assert_int_equal(pm_classes_quantile(ctx, v, 10, &c), PM_OK);
    assert_int_equal(c.n, 5);
    unsigned low = pm_classes_colour(&c, 0), high = pm_classes_colour(&c, 4);
    assert_int_equal(low, 0xffffb2);   /* YlOrRd: pale for few complaints */
    assert_int_equal(high, 0xbd0026);  /* dark red for many */
    pm_classes_orient(&c, pm_figure_find("complaints"));
    assert_int_equal(pm_classes_colour(&c, 4), high);
    pm_classes_orient(&c, pm_figure_find("answered_within_24h_share"));
    assert_int_equal(pm_classes_colour(&c, 0), high);   /* few answered in time: red */
    assert_int_equal(pm_classes_colour(&c, 4), low);
    assert_int_equal(pm_classes_colour(&c, -1), PM_FIGURE_NODATA);
    pm_ctx_free(ctx);
}

static void test_gi_bins_are_seven_classes_holding_bins_minus_3_to_3(void **state)
{
    (void)state;
    pm_classes c;
    memset(&c, 0x55, sizeof c);
    pm_classes_gi_bins(&c);
    assert_int_equal(c.n, PM_GI_BINS);
    assert_int_equal(PM_GI_BINS, 7);
    assert_true(c.diverging);
    assert_false(c.has_nodata);
    assert_false(c.reversed);
    for (int bin = -3; bin <= 3; bin++) {
        assert_int_equal(pm_classes_of(&c, bin), bin + 3);
        assert_true(c.lo[bin + 3] == bin && c.hi[bin + 3] == bin);
    }
    assert_int_equal(pm_classes_of(&c, NAN), -1);
}

static void test_gi_bins_are_coloured_rdbu_reversed_cold_blue_hot_red(void **state)
{
    (void)state;
    static const unsigned want[7] = {0x2166ac, 0x67a9cf, 0xd1e5f0, 0xf7f7f7,
                                     0xfddbc7, 0xef8a62, 0xb2182b};
    pm_classes c;
    pm_classes_gi_bins(&c);
    for (int k = 0; k < 7; k++)
        assert_int_equal(pm_classes_colour(&c, k), want[k]);
    assert_int_equal(pm_classes_colour(&c, -1), PM_FIGURE_NODATA);
    assert_int_equal(pm_classes_colour(&c, 7), PM_FIGURE_NODATA);
    /* not significant is a very light grey, lighter than no data */
    unsigned ns = pm_classes_colour(&c, 3);
    assert_true((ns & 0xff) > (PM_FIGURE_NODATA & 0xff));
    /* the quantile classes keep YlOrRd */
    c.diverging = 0;
    assert_int_equal(pm_classes_colour(&c, 6), 0xb10026);
}

static void test_gi_bins_have_russian_labels(void **state)
{
    (void)state;
    assert_string_equal(pm_gi_bin_label_ru(3), "горячая точка, 99 %");
    assert_string_equal(pm_gi_bin_label_ru(2), "горячая точка, 95 %");
    assert_string_equal(pm_gi_bin_label_ru(1), "горячая точка, 90 %");
    assert_string_equal(pm_gi_bin_label_ru(0), "не значимо");
    assert_string_equal(pm_gi_bin_label_ru(-1), "холодная точка, 90 %");
    assert_string_equal(pm_gi_bin_label_ru(-2), "холодная точка, 95 %");
    assert_string_equal(pm_gi_bin_label_ru(-3), "холодная точка, 99 %");
    assert_string_equal(pm_gi_bin_label_ru(4), "");
    assert_string_equal(pm_gi_bin_label_ru(-4), "");
}

static void test_numbers_are_written_the_russian_way(void **state)
{
    (void)state;
    char b[64];
    pm_format_number(1234567.891, 2, 0, b, sizeof b);
    assert_string_equal(b, "1\xe2\x80\x89" "234\xe2\x80\x89" "567,89");
    pm_format_number(-4.25, 1, 1, b, sizeof b);
    assert_string_equal(b, "\xe2\x88\x92" "4,2");   /* true minus; %.1f rounds half to even */
    pm_format_number(3, 0, 1, b, sizeof b);
    assert_string_equal(b, "+3");
    pm_format_number(NAN, 1, 0, b, sizeof b);
    assert_string_equal(b, "—");
    pm_figure_format(pm_figure_find("answered_within_24h_share"), NULL, 0.825, 1, b, sizeof b);
    assert_string_equal(b, "82,5 %");
    pm_figure_format(pm_figure_find("complaints_per_10k"), NULL, 0.012345, 0, b, sizeof b);
    assert_string_equal(b, "0,0123");
}

static void test_allocation_failure_is_clean(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    double v[] = {1, 2, 3};
    pm_classes c;
    pm_alloc_fail_at(1);
    assert_int_equal(pm_classes_quantile(ctx, v, 3, &c), PM_E_NOMEM);
    pm_alloc_fail_at(0);
    pm_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_figure_is_found_by_its_name),
        cmocka_unit_test(test_values_come_from_the_row_and_suppressed_rows_have_none),
        cmocka_unit_test(test_quantile_classes_keep_equal_values_together),
        cmocka_unit_test(test_red_is_where_it_is_worst),
        cmocka_unit_test(test_gi_bins_are_seven_classes_holding_bins_minus_3_to_3),
        cmocka_unit_test(test_gi_bins_are_coloured_rdbu_reversed_cold_blue_hot_red),
        cmocka_unit_test(test_gi_bins_have_russian_labels),
        cmocka_unit_test(test_numbers_are_written_the_russian_way),
        cmocka_unit_test(test_allocation_failure_is_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
