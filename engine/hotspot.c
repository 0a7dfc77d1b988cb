/* hotspot.c — local spatial statistics (pm_hotspot.h): Getis-Ord Gi*,
 * Benjamini–Hochberg, local Moran's I with conditional permutations,
 * Mann-Kendall and the emerging hot spot classes.  The formulas are in
 * the header; the emerging rules in docs/analytics.md. */
#include "pm_hotspot.h"
#include "pm_alloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MORAN_PERMUTATIONS 999
#define MORAN_SEED 12345
#define MORAN_ALPHA 0.05
#define MAX_PERMUTATIONS 1000000u

static double p_two_sided(double z) { return erfc(fabs(z) / sqrt(2.0)); }

/* Checks values and gives their mean and population variance (two-pass). */
static int value_moments(pm_ctx *ctx, const double *x, size_t n, double *mean, double *var)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            return PM_ERR(ctx, PM_E_INPUT_VALUE, "unit %zu: value %g is not a finite number", i,
                          x[i]);
        sum += x[i];
    }
    *mean = n ? sum / (double)n : NAN;
    double ss = 0;
    for (size_t i = 0; i < n; i++)
        ss += (x[i] - *mean) * (x[i] - *mean);
    *var = n ? ss / (double)n : NAN;
    return PM_OK;
}

static int check_count(pm_ctx *ctx, const pm_weights *w, size_t n)
{
    if (pm_weights_count(w) != n)
        return PM_ERR(ctx, PM_E_USAGE, "%zu values for weights over %zu units", n,
                      pm_weights_count(w));
    return PM_OK;
}

/* ---- Benjamini–Hochberg ------------------------------------------------------ */

typedef struct pidx {
    double p;
    size_t i;
} pidx;

static int cmp_pidx(const void *a, const void *b)
{
    const pidx *x = a, *y = b;
    if (x->p != y->p)
        return x->p < y->p ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

int pm_fdr_bh(pm_ctx *ctx, const double *p, size_t n, double *q)
{
    pidx *v = pm_calloc(n ? n : 1, sizeof *v);
    if (!v)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory adjusting %zu p-values", n);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(p[i]))
            v[m++] = (pidx){p[i], i};
    qsort(v, m, sizeof *v, cmp_pidx);
    /* q_(k) = min over j >= k of m p_(j) / j, capped at 1. */
    double run = 1.0;
    for (size_t k = m; k-- > 0;) {
        run = fmin(run, (double)m * v[k].p / (double)(k + 1));
        v[k].p = run;
    }
    for (size_t i = 0; i < n; i++)
        if (isnan(p[i]))
            q[i] = NAN;
    for (size_t k = 0; k < m; k++)
        q[v[k].i] = v[k].p;
    pm_free(v);
    return PM_OK;
}

/* ---- Gi* ------------------------------------------------------------------------ */

static signed char confidence_bin(double z, double p)
{
    if (isnan(p))
        return 0;
    int level = p < 0.01 ? 3 : p < 0.05 ? 2 : p < 0.10 ? 1 : 0;
    return (signed char)(z < 0 ? -level : level);
}

void pm_gistar_free(pm_gistar *g)
{
    if (!g)
        return;
    pm_free(g->z);
    pm_free(g->p);
    pm_free(g->p_fdr);
    pm_free(g->bin);
    pm_free(g);
}

static pm_gistar *gistar_alloc(size_t n)
{
    pm_gistar *g = pm_calloc(1, sizeof *g);
    if (!g)
        return NULL;
    size_t m = n ? n : 1;
    g->n = n;
    g->z = pm_calloc(m, sizeof *g->z);
    g->p = pm_calloc(m, sizeof *g->p);
    g->p_fdr = pm_calloc(m, sizeof *g->p_fdr);
    g->bin = pm_calloc(m, sizeof *g->bin);
    if (!g->z || !g->p || !g->p_fdr || !g->bin) {
        pm_gistar_free(g);
        return NULL;
    }
    return g;
}

/* z of unit i (formula in the header); NAN when undefined, with the
 * reason counted in g. */
static double gistar_z(const pm_weights *w, const double *x, size_t n, double mean, double sd,
                       size_t i, pm_gistar *g)
{
    const size_t *nb;
    const double *wt;
    size_t k = pm_weights_row(w, i, &nb, &wt);
    if (k == 0) {
        g->n_island++;
        return NAN;
    }
    double wi = 1.0, s1 = 1.0, lsum = x[i];
    for (size_t t = 0; t < k; t++) {
        wi += wt[t];
        s1 += wt[t] * wt[t];
        lsum += wt[t] * x[nb[t]];
    }
    double spread = ((double)n * s1 - wi * wi) / (double)(n - 1);
    if (!(sd > 0) || !(spread > 0)) {
        g->n_no_variance++;
        return NAN;
    }
    return (lsum - mean * wi) / (sd * sqrt(spread));
}

int pm_gistar_compute(pm_ctx *ctx, const pm_weights *w, const double *values, size_t n,
                      const pm_gistar_opts *opts, pm_gistar **out)
{
    *out = NULL;
    int rc = check_count(ctx, w, n);
    if (rc)
        return rc;
    if (pm_weights_is_row_standardised(w))
        return PM_ERR(ctx, PM_E_USAGE, "Gi*: the weights must be binary, not row-standardised");
    double mean, var;
    if ((rc = value_moments(ctx, values, n, &mean, &var)))
        return rc;
    pm_gistar *g = gistar_alloc(n);
    if (!g)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory for the Gi* of %zu units", n);
    g->fdr = opts && opts->fdr;
    for (size_t i = 0; i < n; i++) {
        g->z[i] = n < 2 ? NAN : gistar_z(w, values, n, mean, sqrt(var), i, g);
        if (n < 2)
            g->n_no_variance++;
        g->p[i] = isnan(g->z[i]) ? NAN : p_two_sided(g->z[i]);
    }
    if ((rc = pm_fdr_bh(ctx, g->p, n, g->p_fdr))) {
        pm_gistar_free(g);
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        g->bin[i] = confidence_bin(g->z[i], g->fdr ? g->p_fdr[i] : g->p[i]);
    *out = g;
    return PM_OK;
}

int pm_gistar_districts(pm_ctx *ctx, const pm_districts *ds, const double *values,
                        const pm_gistar_opts *opts, pm_gistar **out)
{
    pm_weights *w;
    *out = NULL;
    int rc = pm_weights_queen(ctx, ds, opts ? opts->snap_m : 0, &w);
    if (rc)
        return rc;
    rc = pm_gistar_compute(ctx, w, values, pm_districts_count(ds), opts, out);
    pm_weights_free(w);
    return rc;
}

/* ---- the random stream (xoshiro256** seeded by splitmix64) ------------------------ */

typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* The stream of unit i under seed. */
static void rng_seed(rng *r, uint64_t seed, size_t i)
{
    uint64_t x = seed ^ (0xd1b54a32d192ed03u * ((uint64_t)i + 1));
    for (int k = 0; k < 4; k++)
        r->s[k] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* Uniform in [0, m): a 53-bit uniform double scaled (exact for m < 2^53;
 * the bias is far below anything a permutation test can see). */
static size_t rng_below(rng *r, size_t m)
{
    size_t k = (size_t)((double)(rng_next(r) >> 11) * 0x1.0p-53 * (double)m);
    return k < m ? k : m - 1;
}

/* ---- local Moran's I --------------------------------------------------------------- */

const char *pm_quadrant_name(pm_quadrant q)
{
    static const char *const names[] = {"", "HH", "LH", "LL", "HL"};
    return (unsigned)q < 5 ? names[q] : "";
}

void pm_moran_opts_default(pm_moran_opts *o)
{
    *o = (pm_moran_opts){MORAN_PERMUTATIONS, MORAN_SEED, MORAN_ALPHA};
}

void pm_moran_free(pm_moran *m)
{
    if (!m)
        return;
    pm_free(m->I);
    pm_free(m->lag);
    pm_free(m->p);
    pm_free(m->quadrant);
    pm_free(m->cluster);
    pm_free(m);
}

static pm_moran *moran_alloc(size_t n)
{
    pm_moran *m = pm_calloc(1, sizeof *m);
    if (!m)
        return NULL;
    size_t k = n ? n : 1;
    m->n = n;
    m->I = pm_calloc(k, sizeof *m->I);
    m->lag = pm_calloc(k, sizeof *m->lag);
    m->p = pm_calloc(k, sizeof *m->p);
    m->quadrant = pm_calloc(k, 1);
    m->cluster = pm_calloc(k, 1);
    if (!m->I || !m->lag || !m->p || !m->quadrant || !m->cluster) {
        pm_moran_free(m);
        return NULL;
    }
    return m;
}

/* esda's quadrants: a zero value or lag counts as low. */
static pm_quadrant quadrant_of(double z, double lag)
{
    if (z > 0)
        return lag > 0 ? PM_QUAD_HH : PM_QUAD_HL;
    return lag > 0 ? PM_QUAD_LH : PM_QUAD_LL;
}

/* The folded pseudo p-value of unit i, whose observed statistic is I_obs:
 * `permutations` draws of its k neighbours' values (weights wt, sum wsum)
 * from the other units; I of a draw = scale · z_i · lag.  idx is the
 * identity permutation of 0..n-1 and is restored on return; swaps has
 * room for k entries. */
static double moran_p(const pm_moran_opts *o, size_t *idx, const double *z, size_t n, size_t i,
                      size_t k, const double *wt, double wsum, double scale, double I_obs,
                      size_t *swaps)
{
    rng r;
    rng_seed(&r, o->seed, i);
    size_t last = n - 1, tmp;
    /* Unit i out of the way: the draws come from idx[0 .. n-2]. */
    tmp = idx[i], idx[i] = idx[last], idx[last] = tmp;
    size_t larger = 0, perms = o->permutations;
    for (size_t s = 0; s < perms; s++) {
        double lag = 0;
        for (size_t t = 0; t < k; t++) {
            size_t pick = t + rng_below(&r, last - t);
            swaps[t] = pick;
            tmp = idx[t], idx[t] = idx[pick], idx[pick] = tmp;
            lag += wt[t] * z[idx[t]];
        }
        for (size_t t = k; t-- > 0;)
            tmp = idx[t], idx[t] = idx[swaps[t]], idx[swaps[t]] = tmp;
        larger += scale * z[i] * (lag / wsum) >= I_obs;
    }
    tmp = idx[i], idx[i] = idx[last], idx[last] = tmp;
    if (perms - larger < larger)
        larger = perms - larger;
    return (double)(larger + 1) / (double)(perms + 1);
}

int pm_moran_local(pm_ctx *ctx, const pm_weights *w, const double *values, size_t n,
                   const pm_moran_opts *opts, pm_moran **out)
{
    *out = NULL;
    pm_moran_opts o;
    if (opts)
        o = *opts;
    else
        pm_moran_opts_default(&o);
    int rc = check_count(ctx, w, n);
    if (rc)
        return rc;
    if (o.permutations > MAX_PERMUTATIONS || !(o.alpha > 0 && o.alpha < 1))
        return PM_ERR(ctx, PM_E_USAGE, "local Moran: %u permutations (at most %u), alpha %g "
                      "(in 0..1)", o.permutations, MAX_PERMUTATIONS, o.alpha);
    double mean, var;
    if ((rc = value_moments(ctx, values, n, &mean, &var)))
        return rc;
    pm_moran *m = moran_alloc(n);
    double *z = pm_calloc(n ? n : 1, sizeof *z);
    size_t *idx = pm_calloc(n ? n : 1, sizeof *idx);
    size_t max_k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = pm_weights_row(w, i, NULL, NULL);
        max_k = k > max_k ? k : max_k;
    }
    size_t *swaps = pm_calloc(max_k ? max_k : 1, sizeof *swaps);
    if (!m || !z || !idx || !swaps) {
        rc = PM_ERR(ctx, PM_E_NOMEM, "out of memory for the local Moran of %zu units", n);
        goto cleanup;
    }
    double m2 = 0;
    for (size_t i = 0; i < n; i++) {
        z[i] = values[i] - mean;
        m2 += z[i] * z[i];
        idx[i] = i;
    }
    double scale = n > 1 ? (double)(n - 1) / m2 : NAN;
    for (size_t i = 0; i < n; i++) {
        const size_t *nb;
        const double *wt;
        size_t k = pm_weights_row(w, i, &nb, &wt);
        m->I[i] = m->lag[i] = m->p[i] = NAN;
        if (k == 0) {
            m->n_island++;
            continue;
        }
        double wsum = 0, lag = 0;
        for (size_t t = 0; t < k; t++) {
            wsum += wt[t];
            lag += wt[t] * z[nb[t]];
        }
        m->lag[i] = lag / wsum;
        if (!(m2 > 0))
            continue;   /* all values equal: I undefined */
        m->I[i] = scale * z[i] * m->lag[i];
        m->quadrant[i] = (unsigned char)quadrant_of(z[i], m->lag[i]);
        if (o.permutations)
            m->p[i] = moran_p(&o, idx, z, n, i, k, wt, wsum, scale, m->I[i], swaps);
        if (m->p[i] <= o.alpha)
            m->cluster[i] = m->quadrant[i];
    }
    *out = m;
    m = NULL;
cleanup:
    pm_moran_free(m);
    pm_free(z);
    pm_free(idx);
    pm_free(swaps);
    return rc;
}

/* ---- Mann-Kendall ------------------------------------------------------------------ */

static int sign_of(double d) { return (d > 0) - (d < 0); }

void pm_mann_kendall(const double *x, size_t n, pm_mk *out)
{
    *out = (pm_mk){0, 0, 0, NAN, NAN};
    double s = 0, ties = 0;
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            continue;
        used++;
        int first = 1;
        double t = 0;
        for (size_t j = 0; j < n; j++) {
            if (!isfinite(x[j]))
                continue;
            if (j > i)
                s += sign_of(x[j] - x[i]);
            if (x[j] == x[i]) {
                first &= j >= i;
                t++;
            }
        }
        if (first)   /* each group of ties counted once, at its first member */
            ties += t * (t - 1) * (2 * t + 5);
    }
    double m = (double)used;
    out->n = used;
    out->s = s;
    out->var = (m * (m - 1) * (2 * m + 5) - ties) / 18.0;
    if (used < 3 || !(out->var > 0))
        return;
    out->z = (s - sign_of(s)) / sqrt(out->var);
    out->p = p_two_sided(out->z);
}

/* ---- emerging hot spots ---------------------------------------------------------------- */

const char *pm_ehs_class_name(pm_ehs_class c)
{
    static const char *const names[PM_EHS_CLASSES] = {
        "no pattern",
        "new hot spot", "consecutive hot spot", "intensifying hot spot", "persistent hot spot",
        "diminishing hot spot", "sporadic hot spot", "oscillating hot spot", "historical hot spot",
        "new cold spot", "consecutive cold spot", "intensifying cold spot", "persistent cold spot",
        "diminishing cold spot", "sporadic cold spot", "oscillating cold spot",
        "historical cold spot"};
    return (unsigned)c < PM_EHS_CLASSES ? names[c] : "";
}

void pm_ehs_opts_default(pm_ehs_opts *o) { *o = (pm_ehs_opts){1, 0.05}; }

/* The eight patterns of one kind (hot: sign 1, cold: -1), as offsets
 * from PM_EHS_NEW_HOT / PM_EHS_NEW_COLD. */
enum { NEW, CONSECUTIVE, INTENSIFYING, PERSISTENT, DIMINISHING, SPORADIC, OSCILLATING, HISTORICAL };

typedef struct series_facts {
    size_t n, hot, cold;      /* steps; significant steps of this kind; of the other kind */
    size_t final_run;         /* significant steps of this kind ending at the last step */
    int last;                 /* the last step is of this kind */
    int trend;                /* significant Mann-Kendall trend of z: 1 up, -1 down, 0 */
} series_facts;

static series_facts facts_of(const signed char *bin, size_t n, int sign, int min_bin, int trend)
{
    series_facts f = {.n = n, .trend = trend};
    for (size_t t = 0; t < n; t++) {
        int b = bin[t] * sign;
        f.hot += b >= min_bin;
        f.cold += -b >= min_bin;
    }
    while (f.final_run < n && bin[n - 1 - f.final_run] * sign >= min_bin)
        f.final_run++;
    f.last = f.final_run > 0;
    return f;
}

/* The pattern (offset) whose final step is of this kind, or -1. */
static int pattern_final(const series_facts *f, int sign)
{
    if (!f->last)
        return -1;
    if (10 * f->hot >= 9 * f->n) {   /* at least 90 % of the steps */
        if (f->trend == sign)
            return INTENSIFYING;
        if (f->trend == -sign)
            return DIMINISHING;
        return PERSISTENT;
    }
    if (f->cold > 0)
        return OSCILLATING;
    if (f->hot == 1)
        return NEW;
    if (f->final_run == f->hot)
        return CONSECUTIVE;
    return SPORADIC;
}

pm_ehs_class pm_ehs_classify(const double *z, const signed char *bin, size_t n_steps,
                             const pm_ehs_opts *opts, pm_mk *trend)
{
    pm_ehs_opts o;
    if (opts)
        o = *opts;
    else
        pm_ehs_opts_default(&o);
    if (o.min_bin < 1)
        o.min_bin = 1;
    pm_mk mk;
    pm_mann_kendall(z, n_steps, &mk);
    if (trend)
        *trend = mk;
    int tr = mk.p < o.trend_alpha ? sign_of(mk.s) : 0;
    series_facts hot = facts_of(bin, n_steps, 1, o.min_bin, tr);
    series_facts cold = facts_of(bin, n_steps, -1, o.min_bin, tr);
    int k;
    if (n_steps == 0)
        return PM_EHS_NONE;
    if ((k = pattern_final(&hot, 1)) >= 0)
        return (pm_ehs_class)(PM_EHS_NEW_HOT + k);
    if ((k = pattern_final(&cold, -1)) >= 0)
        return (pm_ehs_class)(PM_EHS_NEW_COLD + k);
    if (10 * hot.hot >= 9 * n_steps)
        return PM_EHS_HISTORICAL_HOT;
    if (10 * cold.hot >= 9 * n_steps)
        return PM_EHS_HISTORICAL_COLD;
    return PM_EHS_NONE;
}

void pm_emerging_free(pm_emerging *e)
{
    if (!e)
        return;
    pm_free(e->cls);
    pm_free(e->trend);
    pm_free(e);
}

int pm_emerging_compute(pm_ctx *ctx, const pm_gistar *const *steps, size_t n_steps,
                        const pm_ehs_opts *opts, pm_emerging **out)
{
    *out = NULL;
    if (n_steps == 0)
        return PM_ERR(ctx, PM_E_USAGE, "emerging hot spots: no time steps");
    size_t n = steps[0]->n;
    for (size_t t = 1; t < n_steps; t++)
        if (steps[t]->n != n)
            return PM_ERR(ctx, PM_E_USAGE, "emerging hot spots: step %zu has %zu units, step 0 "
                          "has %zu", t, steps[t]->n, n);
    pm_emerging *e = pm_calloc(1, sizeof *e);
    double *z = pm_calloc(n_steps, sizeof *z);
    signed char *bin = pm_calloc(n_steps, sizeof *bin);
    int rc = PM_OK;
    if (e) {
        e->n = n;
        e->n_steps = n_steps;
        e->cls = pm_calloc(n ? n : 1, sizeof *e->cls);
        e->trend = pm_calloc(n ? n : 1, sizeof *e->trend);
    }
    if (!e || !z || !bin || !e->cls || !e->trend) {
        rc = PM_ERR(ctx, PM_E_NOMEM, "out of memory for the emerging hot spots of %zu units", n);
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t t = 0; t < n_steps; t++) {
            z[t] = steps[t]->z[i];
            bin[t] = steps[t]->bin[i];
        }
        pm_ehs_class c = pm_ehs_classify(z, bin, n_steps, opts, &e->trend[i]);
        e->cls[i] = (unsigned char)c;
        e->count[c]++;
    }
    *out = e;
    e = NULL;
cleanup:
    pm_emerging_free(e);
    pm_free(z);
    pm_free(bin);
    return rc;
}
