/* pm_complaints_in.h — from records to checked complaints, with rejects.
 *
 * The one place where a complaint's fields are checked, whatever the input
 * format.  A pm_mapping names, for each of our fields, the source field it
 * comes from; without one, the canonical names (and common aliases: "long"
 * and "longitude" for lon, "latitude" for lat, "service_request_id" for
 * id, "requested_datetime" for created_at, ...) are recognised.
 *
 * Our fields: id, created_at, lon, lat, topic, source, status,
 * answered_at, executor, district_code (text and author are recognised and
 * never read).  Required: id, created_at, topic, and lon+lat or
 * district_code.
 *
 * A record that fails a check goes to the rejects sink with its line, id
 * (when readable), field and reason:
 *   missing value, bad UTF-8, unparsable date, unparsable number, NaN or
 *   infinite coordinate, lat/lon out of range, lat/lon look swapped,
 *   only one of lat/lon, no coordinates and no district code, unknown
 *   topic, answered before created, duplicate id.
 * Counts: read = accepted + rejected, always.
 */
#ifndef PM_COMPLAINTS_IN_H
#define PM_COMPLAINTS_IN_H

#include "../engine/pm_complaint.h"
#include "../engine/pm_ctx.h"
#include "pm_record.h"
#include "pm_topics.h"
#include <stdint.h>

typedef enum pm_field {
    PM_F_ID = 0, PM_F_CREATED_AT, PM_F_LON, PM_F_LAT, PM_F_TOPIC, PM_F_SOURCE,
    PM_F_STATUS, PM_F_ANSWERED_AT, PM_F_EXECUTOR, PM_F_DISTRICT_CODE, PM_F_N
} pm_field;

/* "id", "created_at", ... */
const char *pm_field_name(pm_field f);

typedef struct pm_mapping pm_mapping;

/* A column mapping file (JSON):
 *   {"columns": {"id": "Unique Key", "created_at": "Created Date",
 *                "lat": "Latitude", "lon": "Longitude",
 *                "topic": "Complaint Type", "answered_at": "Closed Date",
 *                "executor": "Agency", "status": "Status"},
 *    "time_format": "%m/%d/%Y %I:%M:%S %p",   (optional, strptime-like)
 *    "utc_offset": "-05:00",                   (optional; for times without one)
 *    "source": "nyc311",                       (optional constant source)
 *    "decimal_comma": false,                   (optional)
 *    "topics": {"Noise - Residential": "housing", ...},
 *    "default_topic": "other"}                 (optional: unknown categories)
 * Topic entries are added to t (pm_topics_add_category).  Caller frees
 * with pm_mapping_free(). */
int pm_mapping_load(pm_ctx *ctx, const char *path, pm_topics *t, pm_mapping **out);
/* The built-in mapping: canonical names and aliases, ISO 8601 times. */
int pm_mapping_default(pm_ctx *ctx, pm_mapping **out);
void pm_mapping_free(pm_mapping *m);

/* Times written without an offset are taken at utc_offset_s (seconds east
 * of UTC; the region's offset, e.g. 25200 for UTC+7).  Default 0. */
void pm_mapping_set_utc_offset(pm_mapping *m, long utc_offset_s);
/* Decimal comma in lon/lat (set automatically when the CSV delimiter is ';'). */
void pm_mapping_set_decimal_comma(pm_mapping *m, int on);

typedef int (*pm_reject_fn)(void *user, uint64_t line, const char *id, const char *field,
                            const char *reason);

typedef struct pm_intake_counts {
    uint64_t read, accepted, rejected;
} pm_intake_counts;

typedef struct pm_intake pm_intake;

/* An intake adds checked complaints to cs (borrowed) and sends rejects to
 * reject(user, ...).  Its pm_record_sink (pm_intake_sink) is what readers
 * write to.  The topics t are borrowed too and must not change while the
 * intake lives (it remembers its answers for the topic values it has
 * seen).  Caller frees with pm_intake_free(). */
int pm_intake_new(pm_ctx *ctx, const pm_topics *t, const pm_mapping *m, pm_complaints *cs,
                  pm_reject_fn reject, void *reject_user, pm_intake **out);
void pm_intake_free(pm_intake *in);
const pm_record_sink *pm_intake_sink(pm_intake *in);
pm_intake_counts pm_intake_counts_get(const pm_intake *in);

/* Reads one input file into the intake (format by pm_records_read_path;
 * a ';' CSV turns on decimal comma). */
int pm_intake_read_path(pm_ctx *ctx, pm_intake *in, const char *path, pm_input_format fmt);
/* With threads >= 2, pm_intake_read_path reads and checks on a thread of
 * its own while the caller's thread adds the checked complaints in input
 * order: the same complaints, rejects (in the same order), counts and
 * errors as on one thread.  Default 1. */
void pm_intake_set_threads(pm_intake *in, int threads);
/* pm_intake_read_path calls fn(user, n) on the caller's thread each time
 * the records read reach a multiple of every (progress on a terminal). */
void pm_intake_set_progress(pm_intake *in, uint64_t every, void (*fn)(void *user, uint64_t n),
                            void *user);
/* Blocks of complaints for work that can start while the rest is read
 * (placing, aggregating).  From now on, each time every more complaints
 * have been accepted into the batch since the last block, fn(user, from,
 * to) is called on the adding thread: complaints [from, to) of the batch
 * are complete and will not change (the columns may still move as the
 * batch grows: take pointers afresh).  The rest, fewer than every, is the
 * caller's once the read is over.  A nonzero return stops the read, which
 * returns it (fn sets the error in the intake's context).  fn NULL: off. */
typedef int (*pm_intake_block_fn)(void *user, size_t from, size_t to);
void pm_intake_set_block(pm_intake *in, size_t every, pm_intake_block_fn fn, void *user);

/* Parses an ISO 8601 timestamp ("2024-03-01T12:00:00+07:00", "...Z",
 * "2024-03-01 12:00:00", "2024-03-01T12:00", "2024-03-01"; fractional
 * seconds allowed and dropped) to seconds since the epoch, UTC.  Without an
 * offset the time is taken at default_offset_s.  -1 when unparsable. */
int pm_time_parse_iso8601(const char *s, long default_offset_s, int64_t *out);
/* Parses s by an strptime-like format (%Y %m %d %H %I %M %S %p, literal
 * characters; %z an offset) at offset_s unless %z is present. -1 if not. */
int pm_time_parse_format(const char *s, const char *fmt, long offset_s, int64_t *out);
/* Formats t as "YYYY-MM-DDTHH:MM:SSZ" into buf (at least 21 bytes). */
void pm_time_format_utc(int64_t t, char *buf);

#endif
