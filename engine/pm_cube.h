/* pm_cube.h — the cube: placed complaints aggregated per district × topic ×
 * period (and source, status, executor), with the figures a coordination
 * centre reads: counts, rates, answer times, open and overdue, change, and
 * ratings.  docs/cube.md describes every figure and how it is computed.
 *
 * Cells.  A cell is one combination of (district, topic, period, source,
 * status, executor) that has at least one complaint.  It keeps, exactly:
 * the count, the number answered and answered within 24 h, and two sorted
 * lists — the answer delays in seconds of its answered complaints and the
 * creation times of its open ones.  Cells merge exactly (sum the counts,
 * merge the lists), so every roll-up (all topics, a period range,
 * district → region, per executor) is computed from cells, never by
 * re-reading complaints, and the median and 90th percentile are exact.
 *
 * Periods are local: a complaint's day, ISO week or month is taken at the
 * region's UTC offset (opts.utc_offset_s; Russia has no DST).  Period
 * indexes: day = local days since 1970-01-01; week = ISO weeks since the
 * week of 1970-01-05 (a Monday), so week w starts on local day 4 + 7w;
 * month = year * 12 + (month - 1).
 *
 * Incremental.  pm_cube_add() adds a placed batch to an existing cube; the
 * result equals one built from all complaints at once (cells are sorted on
 * output, so the snapshot bytes are equal too).  The cube remembers a
 * 64-bit hash of every complaint id it holds and rejects a complaint whose
 * id it already has (reason "duplicate id (already in the cube)"), so
 * adding the same file twice changes nothing.  (Two different ids share a
 * hash with probability ~n²/2^65: 5·10⁻⁶ at 13.7 M complaints.)
 *
 * Only placed complaints enter (district >= 0: inside, border, snapped,
 * by_code); outside ones are counted in pm_cube_outside() only.
 *
 * Snapshot.  pm_cube_write() stores the cube in a versioned binary file
 * of checksummed sections (docs/cube.md), written to a temporary name and
 * renamed; pm_cube_read() checks magic, version, checksums and that the
 * districts are the same (by id list) before trusting a byte of it.
 */
#ifndef PM_CUBE_H
#define PM_CUBE_H

#include "pm_complaint.h"
#include "pm_ctx.h"
#include "pm_district.h"
#include "pm_locate.h"
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum pm_period_kind { PM_PERIOD_DAY = 0, PM_PERIOD_WEEK = 1, PM_PERIOD_MONTH = 2 } pm_period_kind;

/* "day", "week", "month" → kind; -1 if unknown. */
int pm_period_kind_parse(const char *s);
const char *pm_period_kind_name(pm_period_kind k);
/* The period index of UTC time t at the offset. */
int64_t pm_period_of(pm_period_kind k, int64_t t, long utc_offset_s);
/* UTC time at which period p starts (local midnight at the offset). */
int64_t pm_period_start(pm_period_kind k, int64_t p, long utc_offset_s);
/* "2025-03-01", "2025-W09" (ISO week-numbering year), "2025-03"; buf >= 16. */
void pm_period_label(pm_period_kind k, int64_t p, char *buf);

typedef struct pm_cube_opts {
    pm_period_kind period;
    long utc_offset_s;       /* the region's offset, seconds east of UTC */
} pm_cube_opts;

typedef struct pm_cube pm_cube;

/* An empty cube over ds (borrowed; must outlive the cube) with n_topics
 * topics.  The district areas (geodesic, km²) are computed here once.
 * Caller frees with pm_cube_free(). */
int pm_cube_new(pm_ctx *ctx, const pm_districts *ds, size_t n_topics, const pm_cube_opts *opts,
                pm_cube **out);
/* (opts may be NULL: day, UTC.  PM_E_USAGE for n_topics 0 or > 65536, an
 * unknown period kind or an offset beyond ±18 h.) */
void pm_cube_free(pm_cube *cube);
/* A cube that takes one batch and is never written (tables or a report
 * straight from a file) has no use for the set of its complaints' ids
 * (about 10 bytes a complaint, and a hash of each id): this drops it.
 * The batch's own duplicate ids are then the caller's to refuse, as the
 * intake's exact check does.  Only on a cube that has taken nothing
 * (PM_E_USAGE otherwise); afterwards a second batch, and pm_cube_write,
 * fail with PM_E_USAGE. */
int pm_cube_keep_no_ids(pm_ctx *ctx, pm_cube *cube);

/* Rejected complaints (already in the cube) go here, like the intake's. */
typedef int (*pm_cube_reject_fn)(void *user, uint64_t line, const char *id, const char *field,
                                 const char *reason);

/* Adds the placed complaints of cs.  *added (may be NULL) receives the
 * number that entered the cube.  All or nothing: on error the cube's
 * cells, totals and ids are as before (its dictionaries may have gained
 * unused strings).  A nonzero return of reject stops the add and is
 * returned.  Complaints with placement PM_PLACE_UNKNOWN_CODE or
 * PM_PLACE_REJECTED are skipped; one whose period does not fit 32 bits is
 * rejected ("created_at", "date out of range").  PM_E_USAGE when pl does
 * not fit cs, the districts or the topics. */
int pm_cube_add(pm_ctx *ctx, pm_cube *cube, const pm_complaints *cs, const pm_placed *pl,
                pm_cube_reject_fn reject, void *reject_user, uint64_t *added);
/* The same for complaints [from, to) of cs only (pl must hold them).
 * PM_E_USAGE when the range is not within cs and pl. */
int pm_cube_add_range(pm_ctx *ctx, pm_cube *cube, const pm_complaints *cs, const pm_placed *pl,
                      size_t from, size_t to, pm_cube_reject_fn reject, void *reject_user,
                      uint64_t *added);

/* Adding a batch that is still being read, block by block, so that most
 * of the work is done while the rest is read: _new() starts at complaint
 * from of cs; each _take() looks at the complaints up to to (duplicates
 * and dates are rejected then, in order, through reject; pl must hold
 * them); _finish() puts them all into the cube at once.  The cube is
 * untouched until _finish() (but for strings its dictionaries gain) and
 * ends as one pm_cube_add_range(from, to) would leave it, with the same
 * rejects; after a failed _take() only _free() is left.  cs may grow
 * between takes (its first complaints do not change); the cube must not
 * change until _finish(). */
typedef struct pm_cube_adder pm_cube_adder;
int pm_cube_adder_new(pm_ctx *ctx, pm_cube *cube, const pm_complaints *cs, size_t from,
                      pm_cube_adder **out);
int pm_cube_adder_take(pm_ctx *ctx, pm_cube_adder *a, const pm_placed *pl, size_t to,
                       pm_cube_reject_fn reject, void *reject_user);
int pm_cube_adder_finish(pm_ctx *ctx, pm_cube_adder *a, uint64_t *added);
void pm_cube_adder_free(pm_cube_adder *a);

uint64_t pm_cube_total(const pm_cube *cube);     /* complaints in cells */
uint64_t pm_cube_outside(const pm_cube *cube);   /* outside, counted only */
size_t pm_cube_cells(const pm_cube *cube);
const pm_cube_opts *pm_cube_options(const pm_cube *cube);
/* First and last period with a complaint: returns 1, or 0 (both set to 0)
 * when the cube is empty. */
int pm_cube_period_span(const pm_cube *cube, int64_t *first, int64_t *last);
double pm_cube_district_area_km2(const pm_cube *cube, size_t district);

/* Dictionaries of the cube (sources, statuses, executors): index ↔ string.
 * pm_cube_dict_str gives "" for PM_NONE; NULL for an index beyond the
 * dictionary or a column other than source, status, executor. */
size_t pm_cube_dict_count(const pm_cube *cube, pm_dict_col col);
const char *pm_cube_dict_str(const pm_cube *cube, pm_dict_col col, uint32_t idx);
long pm_cube_dict_find(const pm_cube *cube, pm_dict_col col, const char *s);

/* ---- queries ------------------------------------------------------------ */

typedef enum pm_level {
    PM_LEVEL_DISTRICT = 0,   /* one row per district (all districts, empty ones too) */
    PM_LEVEL_REGION = 1,     /* one row per region */
    PM_LEVEL_EXECUTOR = 2,   /* one row per executor that has complaints */
    PM_LEVEL_TOPIC = 3,      /* one row per topic */
    PM_LEVEL_TOTAL = 4       /* one row */
} pm_level;

/* What to count.  Empty sets (n == 0) mean "all"; f may be NULL
 * (everything).  PM_NONE in a set selects complaints without that value. */
typedef struct pm_filter {
    const uint16_t *topics; size_t n_topics;
    const uint32_t *sources; size_t n_sources;     /* cube dictionary indexes */
    const uint32_t *statuses; size_t n_statuses;
    const uint32_t *executors; size_t n_executors;
    int has_range;           /* else the whole span of the cube */
    int64_t period_from, period_to;   /* period indexes, inclusive */
    int64_t report_time;     /* UTC; 0: the end of the range (start of the period after it) */
    uint64_t min_count;      /* rows with fewer complaints are suppressed (0: none) */
    uint64_t min_sample;     /* rows with fewer are not rated (0: default 30) */
} pm_filter;

/* One row of a query.  NAN where a figure has no value (no population, no
 * answered complaint, no previous complaints ...). */
typedef struct pm_row {
    size_t key;              /* district, region, executor or topic index; 0 for TOTAL */
    uint64_t count;
    uint64_t answered, answered_24h, open, overdue;
    double share_24h;        /* answered_24h / answered */
    double median_h, p90_h;  /* time to answer, hours, exact (nearest rank) */
    double overdue_share;    /* overdue / count */
    double area_km2;         /* districts and regions */
    double population;       /* sum over districts with population; NAN if none */
    double per_km2, per_10k; /* count / area, count / population × 10 000 */
    double eb_per_10k;       /* Empirical-Bayes smoothed rate (Marshall's global estimator) */
    uint64_t prev_count;     /* same filter, the previous range of the same length */
    double change_abs, change_pct;
    double index;            /* the rating index (docs/cube.md); NAN if not rated */
    uint32_t rank;           /* 1 = most problematic; 0 = not rated */
    int suppressed;          /* count < min_count: figures must not be shown */
} pm_row;

/* Runs a query; *rows (caller frees with pm_free) gets *n rows, in key
 * order.  PM_E_USAGE for a bad filter (unknown index, empty range).
 * Read-only: several threads may query one cube at once. */
int pm_cube_query(pm_ctx *ctx, const pm_cube *cube, pm_level level, const pm_filter *f,
                  pm_row **rows, size_t *n);

/* ---- cells ---------------------------------------------------------------- */

/* One cell as the cube keeps it: the exact lists behind every figure
 * (what the database's cube_cells table stores).  Pointers are borrowed
 * and valid until the cube changes. */
typedef struct pm_cube_cell {
    size_t district;
    uint16_t topic;
    int64_t period;
    const char *source, *status, *executor;   /* NULL: none */
    uint64_t answered, answered_24h, open;    /* count = answered + open */
    const uint32_t *delays_s;                 /* answered of them: answer delays, seconds */
    const int64_t *open_created;              /* open of them: creation times (UTC) */
} pm_cube_cell;

/* Calls fn for every cell (in no particular order); stops at the first
 * non-zero return of fn and returns it.  Allocates nothing. */
typedef int (*pm_cube_cell_fn)(void *user, const pm_cube_cell *c);
int pm_cube_each_cell(const pm_cube *cube, pm_cube_cell_fn fn, void *user);

/* ---- snapshot ----------------------------------------------------------- */

int pm_cube_write(pm_ctx *ctx, const pm_cube *cube, const char *path);
/* The same snapshot to f, which must be at its start and seekable (the
 * header is written last, at offset 0; f is left at the end): a temporary
 * file or an open_memstream(), for a snapshot kept inside another file.
 * name is for messages.  f is neither flushed nor closed. */
int pm_cube_write_stream(pm_ctx *ctx, const pm_cube *cube, FILE *f, const char *name);
/* Reads a snapshot written over the same districts (same ids in the same
 * order; PM_E_INPUT_VALUE otherwise); errors name the file and what is
 * wrong (not a cube, version, checksum, truncated). */
int pm_cube_read(pm_ctx *ctx, const char *path, const pm_districts *ds, size_t n_topics,
                 pm_cube **out);
/* The same for a cube that will only be queried (`problemap export`): the
 * cube keeps no set of the id hashes, as pm_cube_keep_no_ids() leaves a
 * cube after its one batch: pm_cube_add() and pm_cube_write() fail with
 * PM_E_USAGE.  That set is most of a read cube's memory and of the time to
 * build it (13.7 M complaints: 128 MiB).  Every byte it reads is checked as
 * pm_cube_read() checks it; from a version 2 file it reads no id hashes
 * (only their count is checked), and its lists stay in the file's mapping,
 * which the cube holds until pm_cube_free(). */
int pm_cube_read_query_only(pm_ctx *ctx, const char *path, const pm_districts *ds,
                            size_t n_topics, pm_cube **out);
/* The same from a snapshot's size bytes at data (a section of a larger
 * mapped file; name for messages), which must start on a multiple of 8
 * bytes (PM_E_USAGE) and stay there, unchanged, until pm_cube_free(): the
 * lists stay in it and it is never unmapped or freed here. */
int pm_cube_read_query_only_region(pm_ctx *ctx, const char *name, const unsigned char *data,
                                   size_t size, const pm_districts *ds, size_t n_topics,
                                   pm_cube **out);

#endif
