/* pm_record.h — complaint records as they come out of a file, before checks.
 *
 * Each reader (CSV, JSON: NDJSON, GeoJSON points, Open311) turns its input
 * into a stream of pm_record: the record's fields as (key, value) strings
 * in the source's own names, and the line it starts on.  Mapping source
 * names to our fields and checking values is done in one place
 * (pm_complaints_in.h), whatever the format.
 *
 * A record the reader itself cannot make sense of (an unterminated quote,
 * a line that is not JSON, a row with too many columns) goes to the sink's
 * reject function with its line and reason; reading goes on.  Only an
 * input that cannot be read at all (unreadable file, no header) is an
 * error.
 */
#ifndef PM_RECORD_H
#define PM_RECORD_H

#include "../engine/pm_ctx.h"
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct pm_record {
    uint64_t line;            /* 1-based line where the record starts */
    size_t n;                 /* number of fields */
    const char *const *keys;  /* borrowed for the duration of the callback */
    const char *const *values;/* NUL-terminated; "" for empty */
    char delim;               /* the CSV delimiter it was split on; 0 for JSON.
                               * ';' means a Russian Excel export, whose
                               * numbers have a decimal comma. */
    int same_keys;            /* 1: the same keys as the record before it in this
                               * read (a CSV file's header), so a sink that looked
                               * them up once may skip comparing them; 0: unknown */
} pm_record;

/* Returns 0 to go on, a pm_status to stop reading with that error. */
typedef struct pm_record_sink {
    int (*record)(void *user, const pm_record *rec);
    int (*reject)(void *user, uint64_t line, const char *id, const char *field,
                  const char *reason);
    void *user;
} pm_record_sink;

/* The value of key in rec, or NULL (exact match first, then ASCII
 * case-insensitive). */
const char *pm_record_get(const pm_record *rec, const char *key);

typedef enum pm_input_format {
    PM_FMT_AUTO = 0,     /* by extension, then by the first byte */
    PM_FMT_CSV,
    PM_FMT_NDJSON,
    PM_FMT_GEOJSON,
    PM_FMT_OPEN311       /* a JSON array of GeoReport v2 requests */
} pm_input_format;

/* "csv", "ndjson", "geojson", "open311" → format; -1 if unknown. */
int pm_input_format_parse(const char *name);
const char *pm_input_format_name(pm_input_format f);

/* CSV, RFC 4180: quoted fields with commas, quotes ("") and newlines;
 * UTF-8 with or without BOM; LF or CRLF; the delimiter (',', ';', '\t')
 * detected from the header line unless delim is not 0.  The header names
 * the fields.  A data row with more fields than the header is rejected; a
 * short row gets "" for the missing fields.  A row with a NUL byte is
 * rejected.  *delim_out (may be NULL) receives the delimiter used.
 * name is used in messages (the path, or "<stdin>"). */
int pm_csv_read(pm_ctx *ctx, FILE *f, const char *name, char delim,
                const pm_record_sink *sink, char *delim_out);

/* JSON inputs (jansson).  NDJSON: one object per line, blank lines skipped.
 * GeoJSON: a FeatureCollection of Point features; properties become
 * fields, the point gives "lon" and "lat", a feature "id" member gives
 * "id" when the properties have none.  Open311: a JSON array of request
 * objects (GeoReport v2), their members as fields.  Scalar members only:
 * numbers are written with up to 17 significant digits, true/false as
 * "true"/"false", null as "".  Records are numbered by line (NDJSON) or by
 * feature/element position, 1-based (GeoJSON, Open311). */
int pm_json_read(pm_ctx *ctx, FILE *f, const char *name, pm_input_format fmt,
                 const pm_record_sink *sink);

/* Roughly how many records path holds, from its size and the lines in its
 * first MiB (CSV and NDJSON: a record a line); 0 when that cannot be told
 * (stdin, a pipe, JSON documents, an empty or unreadable file).  A hint
 * for making room, never a count: quoted line breaks, blank lines and the
 * rest of the file make it wrong either way. */
uint64_t pm_records_estimate(const char *path, pm_input_format fmt);

/* Opens path ("-" = stdin), guesses the format when fmt is PM_FMT_AUTO
 * (.csv/.tsv/.txt → CSV, .ndjson/.jsonl → NDJSON, .geojson → GeoJSON,
 * .json → GeoJSON when it holds a FeatureCollection, Open311 when an
 * array; otherwise by the first non-blank byte) and runs the reader. */
int pm_records_read_path(pm_ctx *ctx, const char *path, pm_input_format fmt, char delim,
                         const pm_record_sink *sink);

#endif
