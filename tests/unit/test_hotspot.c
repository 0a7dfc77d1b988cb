/* test_hotspot.c — local statistics (pm_hotspot.h): Gi* on a 3 × 3
 * lattice computed by hand, undefined units, Benjamini–Hochberg, local
 * Moran's I (a value by hand, a significant cluster, seeded determinism),
 * Mann-Kendall on hand-checked series, one constructed series per
 * emerging hot spot class, and allocation failures.
 * (pysal comparisons on real data: tests/analytics/.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../engine/pm_alloc.h"
#include "../../engine/pm_ctx.h"
#include "../../engine/pm_hotspot.h"
#include "../../engine/pm_weights.h"

#include <math.h>
#include <string.h>

/* cmocka 1.1.5 compares floats in single precision: this is double. */
#define assert_double_equal(a, b, eps)                                                           \
    do {                                                                                         \
        double a_ = (a), b_ = (b);                                                               \
        if (!(fabs(a_ - b_) <= (eps)))                                                           \
            fail_msg("%s = %.17g, expected %.17g (± %g)", #a, a_, b_, (double)(eps));           \
    } while (0)

/* Queen weights of a side × side lattice (unit index = side·row + col):
 * a distance band of 1.5 over the cell centres. */
static pm_weights *lattice(pm_ctx *ctx, int side)
{
    double x[100], y[100];
    for (int i = 0; i < side * side; i++)
        x[i] = i % side, y[i] = i / side;
    pm_weights *w;
    assert_int_equal(pm_weights_distance_band(ctx, x, y, (size_t)(side * side), 1.5, &w), PM_OK);
    return w;
}

/* ---- Gi* ------------------------------------------------------------------------ */

/* Values 1..9 on the lattice: mean 5, S² = 60/9.
 * Corner 0 (value 1): itself and 1, 3, 4: W = S1 = 4, Σ = 1+2+4+5 = 12,
 *   z = (12 − 5·4) / (√(60/9) · √((9·4 − 16)/8)) = −8/√(150/9) = −1.959592,
 *   p = 0.05004 (just above 0.05: bin −1).
 * Edge 1 (value 2): itself and 0, 2, 3, 4, 5: W = 6, Σ = 21,
 *   z = −9 / (√(60/9) · √(18/8)) = −9/√15 = −2.323790, p = 0.0201: bin −2.
 * Edge 3 (value 4): Σ = 4+1+2+5+7+8 = 27, z = −3/√15 = −0.774597: bin 0.
 * Centre 4: its neighbourhood is every unit (n S1 − W² = 0): undefined. */
static void gistar_lattice_matches_hand_values(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    pm_weights *w = lattice(ctx, 3);
    double v[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    pm_gistar *g;
    assert_int_equal(pm_gistar_compute(ctx, w, v, 9, NULL, &g), PM_OK);
    assert_double_equal(g->z[0], -8 / sqrt(150.0 / 9), 1e-12);
    assert_double_equal(g->z[0], -1.959592, 1e-6);
    assert_double_equal(g->z[8], 8 / sqrt(150.0 / 9), 1e-12);
    assert_double_equal(g->z[1], -9 / sqrt(15.0), 1e-12);
    assert_double_equal(g->z[7], 9 / sqrt(15.0), 1e-12);
    assert_double_equal(g->z[3], -3 / sqrt(15.0), 1e-12);
    assert_double_equal(g->p[0], 0.050044, 1e-6);
    assert_double_equal(g->p[1], 0.020137, 1e-6);
    assert_true(isnan(g->z[4]) && isnan(g->p[4]));
    assert_int_equal(g->bin[4], 0);
    assert_int_equal(g->n_no_variance, 1);
    assert_int_equal(g->n_island, 0);
    signed char bins[9] = {-1, -2, 0, 0, 0, 0, 0, 2, 1};
    assert_memory_equal(g->bin, bins, 9);
    pm_gistar_free(g);
    pm_weights_free(w);
    pm_ctx_free(ctx);
}

/* The same lattice with FDR.  Defined p-values, sorted: 0.0201 (units 1,
 * 7), 0.0500 (0, 8), 0.327 (2, 6), 0.439 (3, 5); m = 8.  Adjusted:
 * 8·0.0201/2 = 0.0806 → bin ±1; 8·0.0500/4 = 0.1001 → bin 0. */
static void gistar_fdr_weakens_the_bins(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    pm_weights *w = lattice(ctx, 3);
    double v[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    pm_gistar_opts o = {.fdr = 1};
    pm_gistar *g;
    assert_int_equal(pm_gistar_compute(ctx, w, v, 9, &o, &g), PM_OK);
    assert_double_equal(g->p_fdr[1], 8 * g->p[1] / 2, 1e-15);
    assert_double_equal(g->p_fdr[0], 8 * g->p[0] / 4, 1e-15);
    signed char bins[9] = {0, -1, 0, 0, 0, 0, 0, 1, 0};
    assert_memory_equal(g->bin, bins, 9);
    assert_true(isnan(g->p_fdr[4]));
    pm_gistar_free(g);
    pm_weights_free(w);
    pm_ctx_free(ctx);
}

/* p = {0.01, 0.04, 0.03, 0.20, NAN}: m = 4; sorted 0.01, 0.03, 0.04, 0.20
 * → 4p/k = 0.04, 0.06, 0.0533, 0.20 → running minimum from the top:
 * 0.04, 0.0533, 0.0533, 0.20. */
static void fdr_bh_matches_hand_values(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    double p[5] = {0.01, 0.04, 0.03, 0.20, NAN}, q[5];
    assert_int_equal(pm_fdr_bh(ctx, p, 5, q), PM_OK);
    assert_double_equal(q[0], 0.04, 1e-15);
    assert_double_equal(q[1], 0.16 / 3, 1e-15);
    assert_double_equal(q[2], 0.16 / 3, 1e-15);
    assert_double_equal(q[3], 0.20, 1e-15);
    assert_true(isnan(q[4]));
    assert_int_equal(pm_fdr_bh(ctx, p, 5, p), PM_OK);   /* in place */
    assert_double_equal(p[1], 0.16 / 3, 1e-15);
    pm_ctx_free(ctx);
}

static void gistar_undefined_units_are_nan_with_reasons(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    size_t off[] = {0, 1, 2, 2}, nb[] = {1, 0};
    double wt[] = {1, 1};
    pm_weights *w;
    assert_int_equal(pm_weights_from_csr(ctx, 3, off, nb, wt, &w), PM_OK);
    double v[3] = {1, 5, 9};
    pm_gistar *g;
    assert_int_equal(pm_gistar_compute(ctx, w, v, 3, NULL, &g), PM_OK);
    assert_true(isnan(g->z[2]));          /* the island */
    assert_int_equal(g->n_island, 1);
    assert_false(isnan(g->z[0]));
    pm_gistar_free(g);
    double same[3] = {4, 4, 4};
    assert_int_equal(pm_gistar_compute(ctx, w, same, 3, NULL, &g), PM_OK);
    assert_true(isnan(g->z[0]) && isnan(g->z[1]));
    assert_int_equal(g->n_no_variance, 2);
    pm_gistar_free(g);
    v[1] = NAN;
    g = (pm_gistar *)1;
    assert_int_equal(pm_gistar_compute(ctx, w, v, 3, NULL, &g), PM_E_INPUT_VALUE);
    assert_null(g);
    assert_non_null(strstr(pm_ctx_errmsg(ctx), "unit 1"));
    assert_int_equal(pm_gistar_compute(ctx, w, v, 2, NULL, &g), PM_E_USAGE);
    pm_weights_row_standardise(w);
    v[1] = 5;
    assert_int_equal(pm_gistar_compute(ctx, w, v, 3, NULL, &g), PM_E_USAGE);
    pm_weights_free(w);
    pm_ctx_free(ctx);
}

/* ---- local Moran ---------------------------------------------------------------- */

/* Values 1..9: z = x − 5, Σz² = 60.  Corner 0: z = −4, neighbours 1, 3, 4
 * with z −3, −1, 0: lag = −4/3, I = 8 · (−4) · (−4/3) / 60 = 0.711111, LL. */
static void moran_lattice_matches_hand_values(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    pm_weights *w = lattice(ctx, 3);
    double v[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    pm_moran_opts o;
    pm_moran_opts_default(&o);
    o.permutations = 0;
    pm_moran *m;
    assert_int_equal(pm_moran_local(ctx, w, v, 9, &o, &m), PM_OK);
    assert_double_equal(m->lag[0], -4.0 / 3, 1e-15);
    assert_double_equal(m->I[0], 128.0 / 180, 1e-15);
    assert_int_equal(m->quadrant[0], PM_QUAD_LL);
    assert_int_equal(m->quadrant[8], PM_QUAD_HH);
    assert_double_equal(m->I[4], 0, 1e-15);
    assert_true(isnan(m->p[0]));
    assert_int_equal(m->cluster[0], PM_QUAD_NONE);
    assert_string_equal(pm_quadrant_name(PM_QUAD_HL), "HL");
    pm_moran_free(m);
    pm_weights_free(w);
    pm_ctx_free(ctx);
}

/* A 7 × 7 lattice, the top-left 3 × 3 block high: its middle (unit 8) is
 * a significant HH; the same seed gives the same p-values, another seed
 * others. */
static void moran_finds_a_cluster_deterministically(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    pm_weights *w = lattice(ctx, 7);
    double v[49] = {0};
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++)
            v[7 * r + c] = 10;
    v[30] = 1, v[44] = 2;   /* a little noise */
    pm_moran_opts o;
    pm_moran_opts_default(&o);
    pm_moran *a, *b, *c;
    assert_int_equal(pm_moran_local(ctx, w, v, 49, &o, &a), PM_OK);
    assert_int_equal(a->quadrant[8], PM_QUAD_HH);
    assert_true(a->p[8] <= 0.01);
    assert_int_equal(a->cluster[8], PM_QUAD_HH);
    assert_true(a->p[48] > 0.05);
    assert_int_equal(a->cluster[48], PM_QUAD_NONE);
    for (int i = 0; i < 49; i++)
        assert_true(a->p[i] >= 1.0 / 1000 && a->p[i] <= 0.5 + 1e-12);
    assert_int_equal(pm_moran_local(ctx, w, v, 49, &o, &b), PM_OK);
    assert_memory_equal(a->p, b->p, 49 * sizeof *a->p);
    o.seed = 777;
    assert_int_equal(pm_moran_local(ctx, w, v, 49, &o, &c), PM_OK);
    assert_memory_not_equal(a->p, c->p, 49 * sizeof *a->p);
    pm_moran_free(a);
    pm_moran_free(b);
    pm_moran_free(c);
    pm_weights_free(w);
    pm_ctx_free(ctx);
}

static void moran_islands_and_constant_values_are_undefined(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    size_t off[] = {0, 1, 2, 2}, nb[] = {1, 0};
    double wt[] = {1, 1};
    pm_weights *w;
    assert_int_equal(pm_weights_from_csr(ctx, 3, off, nb, wt, &w), PM_OK);
    double v[3] = {1, 5, 9};
    pm_moran *m;
    assert_int_equal(pm_moran_local(ctx, w, v, 3, NULL, &m), PM_OK);
    assert_true(isnan(m->I[2]) && isnan(m->p[2]));
    assert_int_equal(m->n_island, 1);
    assert_int_equal(m->quadrant[2], PM_QUAD_NONE);
    pm_moran_free(m);
    double same[3] = {2, 2, 2};
    assert_int_equal(pm_moran_local(ctx, w, same, 3, NULL, &m), PM_OK);
    assert_true(isnan(m->I[0]));
    pm_moran_free(m);
    pm_moran_opts o;
    pm_moran_opts_default(&o);
    o.alpha = 0;
    assert_int_equal(pm_moran_local(ctx, w, v, 3, &o, &m), PM_E_USAGE);
    pm_weights_free(w);
    pm_ctx_free(ctx);
}

/* ---- Mann-Kendall -------------------------------------------------------------------- */

/* 1 2 3 4 5: S = 10 (all 10 pairs rise), Var = 5·4·15/18 = 16.667,
 * z = (10 − 1)/√16.667 = 2.204541, p = 0.02749. */
static void mann_kendall_rising_series(void **state)
{
    (void)state;
    double x[5] = {1, 2, 3, 4, 5};
    pm_mk mk;
    pm_mann_kendall(x, 5, &mk);
    assert_int_equal(mk.n, 5);
    assert_double_equal(mk.s, 10, 0);
    assert_double_equal(mk.var, 300.0 / 18, 1e-12);
    assert_double_equal(mk.z, 9 / sqrt(300.0 / 18), 1e-12);
    assert_double_equal(mk.z, 2.204541, 1e-6);
    assert_double_equal(mk.p, 0.027486, 1e-6);
}

/* 1 2 2 3: pairs + + + 0 + +: S = 5; one tie group of t = 2:
 * Var = (4·3·13 − 2·1·9)/18 = 138/18 = 7.667, z = 4/√7.667 = 1.444630,
 * p = 0.148562.  A NAN in the series is skipped. */
static void mann_kendall_ties_and_gaps(void **state)
{
    (void)state;
    double x[5] = {1, 2, NAN, 2, 3};
    pm_mk mk;
    pm_mann_kendall(x, 5, &mk);
    assert_int_equal(mk.n, 4);
    assert_double_equal(mk.s, 5, 0);
    assert_double_equal(mk.var, 138.0 / 18, 1e-12);
    assert_double_equal(mk.z, 1.444630, 1e-6);
    assert_double_equal(mk.p, 0.148562, 1e-6);
    double fall[3] = {3, 1, 2};      /* S = −1 − 1 + 1 = −1: z = 0, p = 1 */
    pm_mann_kendall(fall, 3, &mk);
    assert_double_equal(mk.s, -1, 0);
    assert_double_equal(mk.z, 0, 0);
    assert_double_equal(mk.p, 1, 1e-15);
    double flat[4] = {2, 2, 2, 2};   /* Var = 0: undefined */
    pm_mann_kendall(flat, 4, &mk);
    assert_true(isnan(mk.z) && isnan(mk.p));
    pm_mann_kendall(x, 2, &mk);      /* too short */
    assert_true(isnan(mk.p));
}

/* ---- emerging hot spots ---------------------------------------------------------------- */

typedef struct ehs_case {
    signed char bin[10];
    int z_trend;                 /* z = bin + z_trend · t (t = 0..9) */
    pm_ehs_class expect;
} ehs_case;

static pm_ehs_class classify_case(const ehs_case *c, int sign)
{
    double z[10];
    signed char bin[10];
    for (int t = 0; t < 10; t++) {
        bin[t] = (signed char)(sign * c->bin[t]);
        /* alternating wiggle: no trend unless z_trend says so */
        z[t] = sign * (c->bin[t] * 1.0 + c->z_trend * 0.5 * t + (t % 2) * 0.25);
    }
    return pm_ehs_classify(z, bin, 10, NULL, NULL);
}

static void emerging_classes_of_constructed_series(void **state)
{
    (void)state;
    static const ehs_case cases[] = {
        {{0, 0, 0, 0, 0, 0, 0, 0, 0, 2}, 0, PM_EHS_NEW_HOT},
        {{0, 0, 0, 0, 0, 0, 0, 1, 2, 3}, 0, PM_EHS_CONSECUTIVE_HOT},
        {{3, 3, 3, 3, 3, 3, 3, 3, 3, 3}, 1, PM_EHS_INTENSIFYING_HOT},
        {{3, 3, 3, 3, 3, 3, 3, 3, 3, 3}, 0, PM_EHS_PERSISTENT_HOT},
        {{0, 3, 3, 3, 3, 3, 3, 3, 3, 3}, 0, PM_EHS_PERSISTENT_HOT},   /* 90 % exactly */
        {{3, 3, 3, 3, 3, 3, 3, 3, 3, 3}, -1, PM_EHS_DIMINISHING_HOT},
        {{1, 0, 0, 2, 0, 0, 1, 0, 0, 2}, 0, PM_EHS_SPORADIC_HOT},
        {{2, 0, 0, 0, 0, 0, 0, 2, 2, 2}, 0, PM_EHS_SPORADIC_HOT},     /* hot before the run */
        {{-2, 0, 0, 0, 0, 0, 0, 0, 0, 2}, 0, PM_EHS_OSCILLATING_HOT},
        {{-1, 0, 0, 0, 0, 0, 0, 1, 2, 3}, 0, PM_EHS_OSCILLATING_HOT},
        {{2, 2, 2, 2, 2, 2, 2, 2, 2, 0}, 0, PM_EHS_HISTORICAL_HOT},
        {{0, 0, 2, 2, 2, 2, 2, 2, 2, 2}, 0, PM_EHS_CONSECUTIVE_HOT},  /* 80 %: not persistent */
        {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0, PM_EHS_NONE},
        {{2, 0, 2, 0, 0, 0, 0, 0, 0, 0}, 0, PM_EHS_NONE},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        pm_ehs_class hot = classify_case(&cases[k], 1), cold = classify_case(&cases[k], -1);
        pm_ehs_class cold_expect = cases[k].expect == PM_EHS_NONE
                                       ? PM_EHS_NONE
                                       : cases[k].expect - PM_EHS_NEW_HOT + PM_EHS_NEW_COLD;
        if (hot != cases[k].expect || cold != cold_expect)
            fail_msg("case %zu: hot %s (expected %s), cold %s (expected %s)", k,
                     pm_ehs_class_name(hot), pm_ehs_class_name(cases[k].expect),
                     pm_ehs_class_name(cold), pm_ehs_class_name(cold_expect));
    }
}

/* A hot history ending in a cold step is an oscillating cold spot, not a
 * historical hot spot: the final step decides first. */
static void emerging_final_step_decides_first(void **state)
{
    (void)state;
    double z[10] = {3, 3, 3, 3, 3, 3, 3, 3, 3, -3};
    signed char bin[10] = {3, 3, 3, 3, 3, 3, 3, 3, 3, -3};
    assert_int_equal(pm_ehs_classify(z, bin, 10, NULL, NULL), PM_EHS_OSCILLATING_COLD);
    /* min_bin 2: the 90 % steps (bin ±1) no longer count */
    signed char weak[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    pm_ehs_opts o;
    pm_ehs_opts_default(&o);
    assert_int_equal(pm_ehs_classify(z, weak, 10, &o, NULL), PM_EHS_PERSISTENT_HOT);
    o.min_bin = 2;
    assert_int_equal(pm_ehs_classify(z, weak, 10, &o, NULL), PM_EHS_NONE);
    assert_string_equal(pm_ehs_class_name(PM_EHS_HISTORICAL_COLD), "historical cold spot");
    assert_string_equal(pm_ehs_class_name(PM_EHS_NONE), "no pattern");
}

/* Two units over 10 steps built as Gi* results: unit 0 intensifies, unit 1
 * is a new cold spot. */
static void emerging_over_gistar_steps(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    double z[10][2], p[10][2];
    signed char bin[10][2];
    pm_gistar g[10];
    const pm_gistar *steps[10];
    for (int t = 0; t < 10; t++) {
        z[t][0] = 2 + 0.3 * t, bin[t][0] = t < 5 ? 2 : 3;
        z[t][1] = t == 9 ? -2.5 : 0.1 * (t % 3), bin[t][1] = t == 9 ? -2 : 0;
        p[t][0] = p[t][1] = 0.5;
        g[t] = (pm_gistar){.n = 2, .z = z[t], .p = p[t], .p_fdr = p[t], .bin = bin[t]};
        steps[t] = &g[t];
    }
    pm_emerging *e;
    assert_int_equal(pm_emerging_compute(ctx, steps, 10, NULL, &e), PM_OK);
    assert_int_equal(e->cls[0], PM_EHS_INTENSIFYING_HOT);
    assert_int_equal(e->cls[1], PM_EHS_NEW_COLD);
    assert_double_equal(e->trend[0].s, 45, 0);
    assert_int_equal(e->count[PM_EHS_INTENSIFYING_HOT], 1);
    assert_int_equal(e->count[PM_EHS_NONE], 0);
    pm_emerging_free(e);
    g[3].n = 3;
    assert_int_equal(pm_emerging_compute(ctx, steps, 10, NULL, &e), PM_E_USAGE);
    assert_int_equal(pm_emerging_compute(ctx, steps, 0, NULL, &e), PM_E_USAGE);
    pm_ctx_free(ctx);
}

/* ---- allocation failures ------------------------------------------------------------ */

static void statistics_survive_allocation_failures(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    pm_weights *w = lattice(ctx, 4);
    double v[16];
    for (int i = 0; i < 16; i++)
        v[i] = (i * 7) % 5;
    pm_gistar *steps[3] = {0};
    for (int kind = 0; kind < 3; kind++) {
        int failures = 0;
        for (long n = 1;; n++) {
            void *out = (void *)1;
            pm_alloc_fail_at(n);
            int rc = kind == 0   ? pm_gistar_compute(ctx, w, v, 16, NULL, (pm_gistar **)&out)
                     : kind == 1 ? pm_moran_local(ctx, w, v, 16, NULL, (pm_moran **)&out)
                                 : pm_emerging_compute(ctx, (const pm_gistar *const *)steps, 3,
                                                       NULL, (pm_emerging **)&out);
            pm_alloc_fail_at(0);
            if (rc == PM_OK) {
                if (kind == 0)
                    pm_gistar_free(out);
                else if (kind == 1)
                    pm_moran_free(out);
                else
                    pm_emerging_free(out);
                break;
            }
            failures++;
            assert_int_equal(rc, PM_E_NOMEM);
            assert_null(out);
        }
        assert_true(failures >= 3);
        if (kind == 0)   /* the steps for the emerging test */
            for (int t = 0; t < 3; t++)
                assert_int_equal(pm_gistar_compute(ctx, w, v, 16, NULL, &steps[t]), PM_OK);
    }
    for (int t = 0; t < 3; t++)
        pm_gistar_free(steps[t]);
    pm_weights_free(w);
    pm_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gistar_lattice_matches_hand_values),
        cmocka_unit_test(gistar_fdr_weakens_the_bins),
        cmocka_unit_test(fdr_bh_matches_hand_values),
        cmocka_unit_test(gistar_undefined_units_are_nan_with_reasons),
        cmocka_unit_test(moran_lattice_matches_hand_values),
        cmocka_unit_test(moran_finds_a_cluster_deterministically),
        cmocka_unit_test(moran_islands_and_constant_values_are_undefined),
        cmocka_unit_test(mann_kendall_rising_series),
        cmocka_unit_test(mann_kendall_ties_and_gaps),
        cmocka_unit_test(emerging_classes_of_constructed_series),
        cmocka_unit_test(emerging_final_step_decides_first),
        cmocka_unit_test(emerging_over_gistar_steps),
        cmocka_unit_test(statistics_survive_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
