/* pm_complaint.h — a batch of complaints, kept as columns.
 *
 * Only what the engine needs is kept: id, times, position, topic, source,
 * status, executor, an optional district code and the input line.  Complaint
 * text and author are never stored here, so nothing downstream can output
 * them.
 *
 * Times are seconds since 1970-01-01 UTC.  PM_TIME_NONE marks a missing
 * answered_at.  lon/lat are degrees (EPSG:4326); NAN when the complaint
 * came without coordinates (it is then placed by district code).
 *
 * Strings that repeat (source, status, executor, district code) are kept
 * once in a dictionary per column and referenced by index, in a column as
 * narrow as the dictionary allows; pm_complaints_dict_str() turns an index
 * back into its string.
 */
#ifndef PM_COMPLAINT_H
#define PM_COMPLAINT_H

#include "pm_ctx.h"
#include "pm_snap.h"
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#define PM_TIME_NONE INT64_MIN
#define PM_NONE UINT32_MAX   /* no value in a dictionary column */

typedef enum pm_dict_col {
    PM_DICT_SOURCE = 0,
    PM_DICT_STATUS = 1,
    PM_DICT_EXECUTOR = 2,
    PM_DICT_DISTRICT_CODE = 3,
    PM_DICT_N = 4
} pm_dict_col;

typedef struct pm_complaint {
    const char *id;         /* required, unique in the batch */
    int64_t created_at;     /* required */
    int64_t answered_at;    /* PM_TIME_NONE if not answered */
    double lon, lat;        /* NAN, NAN if absent */
    uint16_t topic;         /* index into the topic catalogue */
    const char *source;     /* NULL or "" if absent; likewise below */
    const char *status;
    const char *executor;
    const char *district_code;
    uint64_t line;          /* input line (or record number) it came from */
} pm_complaint;

typedef struct pm_complaints pm_complaints;

pm_complaints *pm_complaints_new(void);
void pm_complaints_free(pm_complaints *cs);

/* Appends a copy of c.  Fails with PM_E_INPUT_VALUE when the id is already
 * in the batch ("duplicate id"), PM_E_NOMEM when out of memory. */
int pm_complaints_add(pm_ctx *ctx, pm_complaints *cs, const pm_complaint *c);
/* An index for pm_complaints_add_indexed: look the complaint's string up. */
#define PM_DICT_LOOKUP (UINT32_MAX - 1)
/* pm_complaints_add for a caller that knows some dictionary indexes
 * already (it saw the value before), so the value need not be hashed and
 * looked up again.  idx[k] is column k's index (PM_NONE for no value), or
 * PM_DICT_LOOKUP to intern c's string as pm_complaints_add does.  On
 * success idx holds the indexes used; on failure it is unchanged.
 * PM_E_USAGE for an index the column does not have. */
int pm_complaints_add_indexed(pm_ctx *ctx, pm_complaints *cs, const pm_complaint *c,
                              uint32_t idx[PM_DICT_N]);
/* Makes room for n more complaints, so that adding them moves no column
 * and rehashes no id (a file's size tells roughly how many are coming;
 * fewer or more are fine).  PM_E_NOMEM when out of memory, or when the
 * batch would pass the ids' 32-bit limit (nothing allocated then). */
int pm_complaints_reserve(pm_ctx *ctx, pm_complaints *cs, size_t n);
/* A hint that a complaint with this id will be added soon: its place in
 * the id table is fetched into the cache meanwhile.  Changes nothing. */
void pm_complaints_prefetch_id(const pm_complaints *cs, const char *id);

/* Faults in the columns' pages for complaints [from, to) (within the
 * capacity) without changing them, so that adding those complaints later
 * does not: for a helper thread running ahead of the adding one.  It reads
 * only where the fixed-width columns are, so the adding thread may go on
 * meanwhile as long as it stays within the capacity (nothing they hold
 * moves then).  The dictionary columns, which move when they widen and
 * take a byte or two a complaint, are left to the adding thread. */
void pm_complaints_prefault(const pm_complaints *cs, size_t from, size_t to);

size_t pm_complaints_count(const pm_complaints *cs);
/* How many complaints the columns have room for (≥ the count). */
size_t pm_complaints_capacity(const pm_complaints *cs);

/* Column access, pm_complaints_count() elements: borrowed arrays, or views
 * of the columns kept compact, read with their inline readers. */
/* The longitudes or latitudes, borrowed: read them with pm_coord_at.  They
 * are kept as int32 ten-millionths of a degree (OpenStreetMap's fixed
 * point, ~1 cm; 4 bytes a complaint) as long as every one comes back
 * bit for bit, or as the degrees themselves from the first one that would
 * not (more than seven decimals, -0). */
#define PM_COORD_E7_NONE INT32_MIN   /* no position (NAN) */
typedef struct pm_coord_column {
    const int32_t *e7;     /* degrees × 10^7 */
    const double *wide;    /* the degrees themselves, when not NULL */
} pm_coord_column;
pm_coord_column pm_complaints_lon(const pm_complaints *cs);
pm_coord_column pm_complaints_lat(const pm_complaints *cs);
/* Complaint i's coordinate (degrees), or NAN.  A division, not a product
 * with 1e-7: it is correctly rounded, so k / 1e7 is the double nearest the
 * decimal k·10^-7, the one the input's text gave. */
static inline double pm_coord_at(pm_coord_column c, size_t i)
{
    if (c.wide)
        return c.wide[i];
    return c.e7[i] == PM_COORD_E7_NONE ? NAN : (double)c.e7[i] / 1e7;
}
double pm_complaints_lon_at(const pm_complaints *cs, size_t i);
double pm_complaints_lat_at(const pm_complaints *cs, size_t i);
/* The creation times, borrowed: read them with pm_created_at.  They are
 * kept as seconds from the first complaint's (4 bytes a complaint), or as
 * the times themselves once one lies 68 years or more from it. */
typedef struct pm_created_column {
    const int32_t *rel;   /* created - base */
    int64_t base;
    const int64_t *wide;  /* the times themselves, when not NULL */
} pm_created_column;
pm_created_column pm_complaints_created(const pm_complaints *cs);
/* Complaint i's creation time. */
static inline int64_t pm_created_at(pm_created_column c, size_t i)
{
    return c.wide ? c.wide[i] : c.base + (int64_t)c.rel[i];
}
int64_t pm_complaints_created_at(const pm_complaints *cs, size_t i);
/* The answer times, borrowed: read them with pm_answered_at.  They are
 * kept as waits after creation (4 bytes a complaint), or as the times
 * themselves once one does not fit such a wait (answered before created,
 * or 136 years after). */
typedef struct pm_answered_column {
    pm_created_column created;
    const uint32_t *wait;   /* answered - created; UINT32_MAX: not answered */
    const int64_t *wide;    /* the times themselves, when not NULL */
} pm_answered_column;
pm_answered_column pm_complaints_answered(const pm_complaints *cs);
/* Complaint i's answer time, or PM_TIME_NONE. */
static inline int64_t pm_answered_at(pm_answered_column c, size_t i)
{
    if (c.wide)
        return c.wide[i];
    return c.wait[i] == UINT32_MAX ? PM_TIME_NONE
                                   : pm_created_at(c.created, i) + (int64_t)c.wait[i];
}
int64_t pm_complaints_answered_at(const pm_complaints *cs, size_t i);
const uint16_t *pm_complaints_topic(const pm_complaints *cs);
/* A dictionary column, borrowed: each complaint's index (or PM_NONE),
 * stored 1, 2 or 4 bytes wide, as few as the column's dictionary needs.
 * Read it with pm_dict_column_at.  Adding a complaint may widen a column,
 * which moves it: a view is good until then. */
typedef struct pm_dict_column {
    const void *v;
    unsigned width;   /* bytes a complaint */
} pm_dict_column;
pm_dict_column pm_complaints_dict(const pm_complaints *cs, pm_dict_col col);
/* Complaint i's index in column col: pm_dict_column_at of the column. */
uint32_t pm_complaints_dict_at(const pm_complaints *cs, pm_dict_col col, size_t i);
/* Complaint i's index in column c: the widest value of a width is PM_NONE. */
static inline uint32_t pm_dict_column_at(pm_dict_column c, size_t i)
{
    if (c.width == 1) {
        uint8_t x = ((const uint8_t *)c.v)[i];
        return x == UINT8_MAX ? PM_NONE : x;
    }
    if (c.width == 2) {
        uint16_t x = ((const uint16_t *)c.v)[i];
        return x == UINT16_MAX ? PM_NONE : x;
    }
    return ((const uint32_t *)c.v)[i];
}
/* The input line complaint i came from (i below the count). */
uint64_t pm_complaints_line(const pm_complaints *cs, size_t i);
/* Bytes the lines take.  They are kept as runs of lines that follow each
 * other, so a file read whole needs a few hundred; never more than the
 * larger of a column (8 bytes a complaint of the capacity) and room for
 * 4096 runs. */
size_t pm_complaints_line_bytes(const pm_complaints *cs);
const char *pm_complaints_id(const pm_complaints *cs, size_t i);

/* The string of a dictionary index ("" for PM_NONE). */
const char *pm_complaints_dict_str(const pm_complaints *cs, pm_dict_col col, uint32_t idx);
size_t pm_complaints_dict_count(const pm_complaints *cs, pm_dict_col col);

/* ---- snapshots (pm_snap.h) ------------------------------------------------ */

/* Writes the columns as sections of w: positions, times, topics, the four
 * dictionary columns and their strings; not the ids or the input lines
 * (what the map reads; docs/dataset.md). */
int pm_complaints_snap_write(pm_ctx *ctx, const pm_complaints *cs, pm_snap_writer *w);
/* The batch those sections of s hold, read in place: its columns are the
 * snapshot's (s must outlive it), its dictionaries are built.  Every value
 * is checked to be one a batch can hold (topics below n_topics, indexes in
 * their dictionaries, positions on the globe or none, times within
 * ±31 700 years): PM_E_INPUT naming the section and complaint otherwise.
 * It keeps no ids or lines: pm_complaints_id() is "" and
 * pm_complaints_line() 0; adding to it is PM_E_USAGE. */
int pm_complaints_snap_map(pm_ctx *ctx, pm_snap *s, size_t n_topics, pm_complaints **out);

#endif
