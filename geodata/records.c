/* records.c — what all record readers share (see pm_record.h): field
 * look-up, format names, and opening a path and choosing its reader.
 *
 * Choosing the reader for PM_FMT_AUTO: by extension (.csv/.tsv/.txt →
 * CSV, .ndjson/.jsonl → NDJSON, .geojson → GeoJSON, .json → the JSON
 * reader decides from the content); for any other name, by the first
 * non-blank byte ('[' or '{' → JSON, decided from the content; anything
 * else → CSV).  The stream is rewound after that peek; when it cannot be
 * (a pipe on stdin), only the first non-blank byte is pushed back, so
 * blank lines before a CSV header on a pipe are not counted in line
 * numbers.
 */
#include "pm_record.h"
#include "../engine/pm_alloc.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

const char *pm_record_get(const pm_record *rec, const char *key)
{
    for (size_t i = 0; i < rec->n; i++)
        if (strcmp(rec->keys[i], key) == 0)
            return rec->values[i];
    for (size_t i = 0; i < rec->n; i++)
        if (strcasecmp(rec->keys[i], key) == 0)
            return rec->values[i];
    return NULL;
}

static const char *const format_names[] = {
    [PM_FMT_AUTO] = "auto",       [PM_FMT_CSV] = "csv",         [PM_FMT_NDJSON] = "ndjson",
    [PM_FMT_GEOJSON] = "geojson", [PM_FMT_OPEN311] = "open311",
};
enum { N_FORMATS = sizeof format_names / sizeof *format_names };

int pm_input_format_parse(const char *name)
{
    for (int f = PM_FMT_AUTO; f < N_FORMATS; f++)
        if (strcasecmp(name, format_names[f]) == 0)
            return f;
    return -1;
}

const char *pm_input_format_name(pm_input_format f)
{
    return (unsigned)f < N_FORMATS ? format_names[f] : "unknown";
}

/* Format by the path's extension; PM_FMT_AUTO when it does not say. */
static pm_input_format format_by_extension(const char *path)
{
    static const struct {
        const char *ext;
        pm_input_format fmt;
    } exts[] = {
        {".csv", PM_FMT_CSV},       {".tsv", PM_FMT_CSV},         {".txt", PM_FMT_CSV},
        {".ndjson", PM_FMT_NDJSON}, {".jsonl", PM_FMT_NDJSON},    {".geojson", PM_FMT_GEOJSON},
    };
    const char *dot = strrchr(path, '.');
    if (!dot || strchr(dot, '/'))
        return PM_FMT_AUTO;
    for (size_t i = 0; i < sizeof exts / sizeof *exts; i++)
        if (strcasecmp(dot, exts[i].ext) == 0)
            return exts[i].fmt;
    return PM_FMT_AUTO;
}

static int is_json_path(const char *path)
{
    const char *dot = strrchr(path, '.');
    return dot && strcasecmp(dot, ".json") == 0;
}

/* The first byte that is not blank (nor a UTF-8 BOM); the stream is put
 * back at its start (or, when it cannot seek, just before that byte). */
static int peek_first_byte(FILE *f)
{
    int c;
    do
        c = getc(f);
    while (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == 0xEF || c == 0xBB ||
           c == 0xBF);
    if (fseek(f, 0, SEEK_SET) != 0 && c != EOF)
        ungetc(c, f);
    clearerr(f);
    return c;
}

static pm_input_format guess_format(FILE *f, const char *path)
{
    pm_input_format fmt = format_by_extension(path);
    if (fmt != PM_FMT_AUTO || is_json_path(path))
        return fmt;
    int c = peek_first_byte(f);
    return c == '[' || c == '{' ? PM_FMT_AUTO : PM_FMT_CSV;
}

int pm_records_read_path(pm_ctx *ctx, const char *path, pm_input_format fmt, char delim,
                         const pm_record_sink *sink)
{
    int is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "<stdin>" : path;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f)
        return PM_ERR(ctx, PM_E_IO, "cannot open %s: %s", path, strerror(errno));
    if (fmt == PM_FMT_AUTO)
        fmt = guess_format(f, path);   /* AUTO now means "JSON, by content" */
    int st = fmt == PM_FMT_CSV ? pm_csv_read(ctx, f, name, delim, sink, NULL)
                               : pm_json_read(ctx, f, name, fmt, sink);
    if (!is_stdin)
        fclose(f);
    return st;
}

uint64_t pm_records_estimate(const char *path, pm_input_format fmt)
{
    enum { SAMPLE = 1 << 20 };
    /* Only a regular file is opened: reading a pipe (bash's <(zcat ...),
     * a FIFO) here would take its first bytes from the real read. */
    struct stat sb;
    if (strcmp(path, "-") == 0 || stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) ||
        sb.st_size <= 0)
        return 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    if (fmt == PM_FMT_AUTO)
        fmt = guess_format(f, path);
    uint64_t n = 0;
    char *buf = NULL;
    if ((fmt == PM_FMT_CSV || fmt == PM_FMT_NDJSON) && (buf = pm_malloc(SAMPLE))) {
        size_t got = fread(buf, 1, SAMPLE, f), lines = 0;
        for (const char *p = buf; (p = memchr(p, '\n', got - (size_t)(p - buf))); p++)
            lines++;
        if (got && lines)   /* one line is a record, give or take a header */
            n = (uint64_t)((double)lines * ((double)sb.st_size / (double)got));
    }
    pm_free(buf);
    fclose(f);
    return n;
}
