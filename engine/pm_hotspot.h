/* pm_hotspot.h — local spatial statistics over units (districts or grid
 * cells) with one value each: Getis-Ord Gi* hot spots, Anselin's local
 * Moran's I, the Mann-Kendall trend test and emerging hot spots over time.
 * docs/analytics.md gives every rule in full; tests/analytics/ checks the
 * numbers against pysal.
 *
 * Getis-Ord Gi* (the star version: the unit is its own neighbour with
 * weight 1), with x the n values, x̄ their mean, S² = Σx²/n − x̄² (the
 * population variance) and w_ij the weights plus w_ii = 1:
 *
 *            Σ_j w_ij x_j − x̄ W_i                 W_i  = Σ_j w_ij
 *   z_i = ---------------------------------        S1_i = Σ_j w_ij²
 *         S √((n S1_i − W_i²) / (n − 1))
 *
 * With binary weights this is exactly pysal's esda.G_Local(y, w,
 * transform="B", star=True).Zs.  p is two-sided from the normal
 * distribution, p = erfc(|z|/√2); the bin is ±3, ±2, ±1 for p < 0.01,
 * 0.05, 0.10 (sign of z; 99/95/90 % confidence), else 0.  With fdr, the
 * bins use Benjamini–Hochberg adjusted p-values over the defined units.
 * Undefined (z, p NAN, bin 0): an island (no neighbours: its "local sum"
 * is the unit alone, which says nothing about clustering), a unit whose
 * neighbourhood is every unit, and every unit when all values are equal.
 *
 * Local Moran's I (Anselin 1995) on row-standardised weights, as esda's
 * Moran_Local: z_i = x_i − x̄, lag_i = Σ_j w_ij z_j / Σ_j w_ij,
 * I_i = (n − 1) z_i lag_i / Σ_k z_k².  Conditional permutation: for unit
 * i, its own value fixed, the others' values are drawn without
 * replacement into its neighbours' places, `permutations` times; the
 * folded pseudo p-value is (min(larger, perms − larger) + 1)/(perms + 1)
 * where larger counts the draws with I >= the observed I.  Draws come
 * from a seeded xoshiro256** stream per unit, so the result depends only
 * on the seed, never on other units or threads.
 *
 * Mann-Kendall: S = Σ_{i<j} sign(x_j − x_i); Var(S) = [n(n−1)(2n+5) −
 * Σ_t t(t−1)(2t+5)]/18 over groups of t tied values; z = (S − sign S)/
 * √Var; p = erfc(|z|/√2).
 *
 * Every result struct is owned by the caller and freed with its _free.
 * Results are plain arrays indexed by unit, in the order of the values.
 */
#ifndef PM_HOTSPOT_H
#define PM_HOTSPOT_H

#include "pm_ctx.h"
#include "pm_district.h"
#include "pm_weights.h"
#include <stddef.h>
#include <stdint.h>

/* ---- Getis-Ord Gi* --------------------------------------------------------- */

typedef struct pm_gistar_opts {
    int fdr;          /* bins from Benjamini–Hochberg adjusted p-values */
    double snap_m;    /* pm_gistar_districts(): the queen snapping tolerance */
} pm_gistar_opts;

typedef struct pm_gistar {
    size_t n;
    double *z;             /* NAN: undefined */
    double *p;             /* two-sided normal p-value; NAN: undefined */
    double *p_fdr;         /* Benjamini–Hochberg adjusted p (always computed) */
    signed char *bin;      /* -3..3 (from p, or from p_fdr with opts.fdr) */
    size_t n_island;       /* undefined: no neighbours */
    size_t n_no_variance;  /* undefined: all values equal, or a neighbourhood of everyone */
    int fdr;
} pm_gistar;

/* Gi* of values[0..n-1] over w (n must be w's count; w must not be
 * row-standardised: PM_E_USAGE).  opts may be NULL (no FDR).  A value
 * that is not finite is PM_E_INPUT_VALUE naming the unit.  Caller frees
 * with pm_gistar_free(). */
int pm_gistar_compute(pm_ctx *ctx, const pm_weights *w, const double *values, size_t n,
                      const pm_gistar_opts *opts, pm_gistar **out);

/* The same over the queen contiguity of ds (pm_weights_queen with
 * opts->snap_m); values[i] belongs to district i. */
int pm_gistar_districts(pm_ctx *ctx, const pm_districts *ds, const double *values,
                        const pm_gistar_opts *opts, pm_gistar **out);
void pm_gistar_free(pm_gistar *g);

/* Benjamini–Hochberg adjusted p-values of p[0..n-1] into q (may be p);
 * NAN entries stay NAN and do not count in m.  PM_E_NOMEM only. */
int pm_fdr_bh(pm_ctx *ctx, const double *p, size_t n, double *q);

/* ---- local Moran's I ----------------------------------------------------------- */

typedef enum pm_quadrant {
    PM_QUAD_NONE = 0,   /* undefined, or (in cluster) not significant */
    PM_QUAD_HH = 1,     /* high value, high neighbours (esda's q = 1) */
    PM_QUAD_LH = 2,
    PM_QUAD_LL = 3,
    PM_QUAD_HL = 4
} pm_quadrant;

/* "HH", "LH", "LL", "HL" or "" for none. */
const char *pm_quadrant_name(pm_quadrant q);

typedef struct pm_moran_opts {
    unsigned permutations;   /* 0: no p-values (p NAN); default 999 */
    uint64_t seed;           /* default 12345 */
    double alpha;            /* significance for cluster: p <= alpha; default 0.05 */
} pm_moran_opts;

/* 999 permutations, seed 12345, alpha 0.05. */
void pm_moran_opts_default(pm_moran_opts *o);

typedef struct pm_moran {
    size_t n;
    double *I;               /* NAN: undefined (island, or all values equal) */
    double *lag;             /* row-standardised lag of the centred values */
    double *p;               /* folded pseudo p-value; NAN without permutations */
    unsigned char *quadrant; /* pm_quadrant of every defined unit */
    unsigned char *cluster;  /* quadrant where p <= alpha, else PM_QUAD_NONE */
    size_t n_island;
} pm_moran;

/* Local Moran's I of values over w (rows standardised here, whatever w
 * holds).  opts may be NULL (defaults).  Caller frees with
 * pm_moran_free(). */
int pm_moran_local(pm_ctx *ctx, const pm_weights *w, const double *values, size_t n,
                   const pm_moran_opts *opts, pm_moran **out);
void pm_moran_free(pm_moran *m);

/* ---- Mann-Kendall ------------------------------------------------------------- */

typedef struct pm_mk {
    size_t n;        /* finite values used */
    double s;        /* the statistic S */
    double var;      /* Var(S) with the tie correction */
    double z, p;     /* NAN when n < 3 or var == 0 */
} pm_mk;

/* The test on x[0..n-1] in time order; values that are not finite are
 * skipped.  Allocates nothing (O(n²); series are short). */
void pm_mann_kendall(const double *x, size_t n, pm_mk *out);

/* ---- emerging hot spots ----------------------------------------------------------- */

typedef enum pm_ehs_class {
    PM_EHS_NONE = 0,
    PM_EHS_NEW_HOT, PM_EHS_CONSECUTIVE_HOT, PM_EHS_INTENSIFYING_HOT, PM_EHS_PERSISTENT_HOT,
    PM_EHS_DIMINISHING_HOT, PM_EHS_SPORADIC_HOT, PM_EHS_OSCILLATING_HOT, PM_EHS_HISTORICAL_HOT,
    PM_EHS_NEW_COLD, PM_EHS_CONSECUTIVE_COLD, PM_EHS_INTENSIFYING_COLD, PM_EHS_PERSISTENT_COLD,
    PM_EHS_DIMINISHING_COLD, PM_EHS_SPORADIC_COLD, PM_EHS_OSCILLATING_COLD,
    PM_EHS_HISTORICAL_COLD
} pm_ehs_class;
#define PM_EHS_CLASSES 17

/* "no pattern", "new hot spot", ..., "historical cold spot"; "" if unknown. */
const char *pm_ehs_class_name(pm_ehs_class c);

typedef struct pm_ehs_opts {
    int min_bin;          /* a step is significant when |bin| >= min_bin; default 1 (90 %) */
    double trend_alpha;   /* Mann-Kendall significance (p < trend_alpha); default 0.05 */
} pm_ehs_opts;

void pm_ehs_opts_default(pm_ehs_opts *o);

/* The class of one unit from its Gi* series over n_steps time steps
 * (z[t], bin[t]; NAN z and bin 0 for an undefined step), rules in
 * docs/analytics.md.  trend (may be NULL) gets the Mann-Kendall test of
 * the z series.  opts may be NULL. */
pm_ehs_class pm_ehs_classify(const double *z, const signed char *bin, size_t n_steps,
                             const pm_ehs_opts *opts, pm_mk *trend);

typedef struct pm_emerging {
    size_t n;                /* units */
    size_t n_steps;
    unsigned char *cls;      /* pm_ehs_class per unit */
    pm_mk *trend;            /* Mann-Kendall of each unit's z series */
    size_t count[PM_EHS_CLASSES];   /* units per class */
} pm_emerging;

/* Emerging hot spots from the Gi* of each time step (steps[t], oldest
 * first, all over the same n units: PM_E_USAGE otherwise).  Caller frees
 * with pm_emerging_free(). */
int pm_emerging_compute(pm_ctx *ctx, const pm_gistar *const *steps, size_t n_steps,
                        const pm_ehs_opts *opts, pm_emerging **out);
void pm_emerging_free(pm_emerging *e);

#endif
