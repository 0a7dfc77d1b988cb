/* pm_synth.h — a deterministic generator of synthetic complaints.
 *
 * Makes n complaint rows that look like what a regional management centre
 * (ЦУР) receives, for demos, benchmarks and tests of the whole pipeline,
 * rejects path included.  No real person is in them: ids, times, places
 * and texts are all drawn from a seeded PRNG.
 *
 * Determinism: the same options, towns, districts and topics give
 * byte-identical rows on every platform.  The PRNG is our own (xoshiro256**
 * seeded by splitmix64), one stream per row, so row i does not depend on
 * n or on the rows before it.  Besides exact operations (+ - * /, fabs,
 * fmin, fmax, printf's %.6f) only sqrt, log, exp and cos are used; glibc
 * gives the same results for them on x86-64 and aarch64 (another libc may
 * differ in the last bit of log/exp/cos, which moves a row only in the
 * rarest cases).  -std=c11 keeps GCC from fusing multiply-adds; 32-bit x87
 * builds (excess precision) are not covered.  GEOS is only asked for
 * district areas and envelopes.
 *
 * What the rows look like:
 * - where: cluster_share of the rows fall around a town, picked by its
 *   weight, with a Gaussian offset of cluster_sigma_m metres; with
 *   town_heavy_tail the weights are multiplied by a Pareto factor that
 *   depends only on the town's index, so the same few towns dominate for
 *   every seed.  The rest are uniform in the envelope of a district picked
 *   by its approximate area (so some fall outside every district, as real
 *   ones do), or in the towns' bounding box when there are no districts.
 *   no_coords_share of the clean rows have no lon/lat, only the
 *   district_code of a district picked by area.
 * - when: in [start, start + days·86400), with a weekly rhythm (Monday
 *   highest, Saturday and Sunday about 60 % of a weekday) and a daily one
 *   in local time (utc_offset_s): quiet at night, peaks at 10–12 and
 *   18–21.  Written as ISO 8601 with the offset: 2025-03-01T09:15:42+07:00.
 * - what: the caller's topic codes by the caller's weights; source vk,
 *   telegram, ok, gosuslugi, reception or hotline; an executor from a short
 *   list of agencies for the topic; text "Синтетическое обращение №N: " and
 *   a phrase for the topic (some with a comma, to exercise CSV quoting).
 * - answers: a lognormal delay (median ≈ 5.5 h, longer for gosuslugi and
 *   reception, shorter for the hotline): ≈ 85 % of the answers within 24 h,
 *   ≈ 3 % after more than 72 h.  Status "answered" with answered_at; about
 *   4 % are never answered, and a row whose answer would come after the
 *   end of the period is still "open" too (so open rows gather near the
 *   end); open rows have an empty answered_at.
 * - dirty rows: dirty_share of the rows are made bad on purpose, each in
 *   one of the pm_synth_dirty ways (kind = a draw of the row's stream).
 *   Dirty rows always have coordinates before they are spoilt.
 */
#ifndef PM_SYNTH_H
#define PM_SYNTH_H

#include "pm_ctx.h"
#include "pm_district.h"
#include <stddef.h>
#include <stdint.h>

typedef struct pm_synth_town {
    double lon, lat;   /* degrees, EPSG:4326 */
    double weight;     /* >= 0; relative (e.g. 1 each, or a population) */
} pm_synth_town;

typedef struct pm_synth_opts {
    uint64_t seed;
    size_t n;               /* rows to make */
    int64_t start;          /* UTC seconds since 1970: start of the period */
    int days;               /* length of the period in days, >= 1 */
    long utc_offset_s;      /* the region's offset, seconds east of UTC,
                             * a multiple of 60 within ±14 h */
    double cluster_share;   /* [0,1]: share of the rows around towns */
    double cluster_sigma_m; /* > 0: spread around a town, metres */
    double no_coords_share; /* [0,1]: clean rows placed by district code only
                             * (needs districts) */
    double dirty_share;     /* [0,1]: rows spoilt on purpose */
    int town_heavy_tail;    /* nonzero: a few towns dominate (see above) */
} pm_synth_opts;

/* Fills o with the defaults: seed 1, n 1000, start 2025-01-01T00:00:00Z,
 * 90 days, offset 0, cluster_share 0.8, cluster_sigma_m 1500,
 * no_coords_share 0.03, dirty_share 0.02, town_heavy_tail 1. */
void pm_synth_opts_default(pm_synth_opts *o);

/* How a dirty row is spoilt.  The reader's reject reason is in quotes. */
typedef enum pm_synth_dirty {
    PM_SYNTH_CLEAN = 0,
    PM_SYNTH_SWAPPED = 1,        /* lon and lat exchanged: "lat/lon out of range"
                                  * when lon > 90, else "look swapped" or outside */
    PM_SYNTH_NO_TOPIC = 2,       /* topic "": "missing value" */
    PM_SYNTH_UNKNOWN_TOPIC = 3,  /* topic "unknown_topic": "unknown topic" */
    PM_SYNTH_BAD_DATE = 4,       /* created_at "не указано": "unparsable date" */
    PM_SYNTH_ANSWER_FIRST = 5,   /* answered_at before created_at */
    PM_SYNTH_DUP_ID = 6,         /* the id of an earlier row: "duplicate id"
                                  * (the first row gets PM_SYNTH_NO_TOPIC) */
    PM_SYNTH_LAT_95 = 7,         /* lat "95.000000": "lat/lon out of range" */
    PM_SYNTH_DIRTY_N = 8
} pm_synth_dirty;

/* One row, every field a string ready for CSV (UTF-8, not quoted).
 * Valid only during the emit call: copy what you keep. */
typedef struct pm_synth_row {
    char id[32];              /* "c0000001", "c0000002", ... */
    char created_at[32];      /* ISO 8601 with the offset */
    char lon[24], lat[24];    /* 6 decimals; both "" without coordinates */
    char answered_at[32];     /* "" while open */
    char text[256];           /* a synthetic Russian sentence */
    const char *topic;        /* a caller's topic code (borrowed), or as dirty */
    const char *source;       /* static strings */
    const char *status;       /* "answered" or "open" */
    const char *executor;
    const char *district_code;  /* "" or an id of ds (borrowed) */
    int dirty;                /* PM_SYNTH_CLEAN or a pm_synth_dirty */
} pm_synth_row;

/* Makes o->n rows and hands them, in id order, to emit.
 *
 * towns (n_towns, may be 0) and ds (may be NULL; frozen) are borrowed.
 * topic_codes and topic_weights (n_topics >= 1, weights >= 0, not all 0)
 * are borrowed; the codes must be non-empty.
 *
 * Errors: PM_E_USAGE for options out of range, no topics, no towns and no
 * districts, no_coords_share > 0 without districts; PM_E_GEOM when GEOS
 * cannot give a district's area or envelope; PM_E_NOMEM.  A nonzero
 * return from emit stops the run and is returned as is (the callback sets
 * the context's error if it wants one).  Nothing is allocated on return. */
int pm_synth_run(pm_ctx *ctx, const pm_synth_opts *o, const pm_synth_town *towns,
                 size_t n_towns, const pm_districts *ds, const char *const *topic_codes,
                 const double *topic_weights, size_t n_topics,
                 int (*emit)(void *user, const pm_synth_row *row), void *user);

/* "clean", "swapped", "no_topic", "unknown_topic", "bad_date",
 * "answer_first", "dup_id", "lat_95". */
const char *pm_synth_dirty_name(int kind);

#endif
