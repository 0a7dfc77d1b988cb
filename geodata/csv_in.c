/* csv_in.c — CSV records (RFC 4180) for the record sink (see pm_record.h).
 *
 * The file is read in large blocks and split by a small state machine
 * (field start, unquoted, quoted, quote inside quoted, CR).  Runs of plain
 * bytes are found with a per-reader byte-class table and copied at once.
 * Fields of the current row are written one after another, NUL-terminated,
 * into one reused text buffer; the row's buffers grow to the longest row
 * seen and are never freed before the end, so the steady state does no
 * allocation at all.
 *
 * Leniencies, as in most readers: a quote inside an unquoted field (ab"c)
 * is kept literally; text after a closing quote ("ab"c) is appended to
 * the field (abc); a lone CR not followed by LF is kept as data; empty
 * header names are not checked for repeats (a trailing delimiter).
 * Blank lines (empty or only spaces/tabs) are skipped.  A quoted field may
 * span lines; the record keeps the line it starts on.
 */
#include "pm_record.h"
#include "../engine/pm_alloc.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <strings.h>

enum { CSV_BLOCK = 1 << 20 };

typedef enum csv_state {
    ST_FIELD_START,    /* nothing of the field read yet */
    ST_UNQUOTED,
    ST_QUOTED,
    ST_QUOTE_IN_QUOTED, /* a '"' inside a quoted field: "" or the end */
    ST_CR              /* a '\r' outside quotes: CRLF or data */
} csv_state;

typedef struct csv_reader {
    pm_ctx *ctx;
    FILE *f;
    const char *name;
    char delim;
    unsigned char stop_plain[256];  /* bytes ending a run in an unquoted field */
    unsigned char stop_quoted[256]; /* ... in a quoted field */
    unsigned char *block;
    size_t pos, len;
    uint64_t line;                  /* line of the next unread byte */
    /* the current row */
    char *text;                     /* fields, each NUL-terminated */
    size_t text_len, text_cap, field_start;
    size_t *starts;                 /* offset of each field in text */
    size_t nfields, starts_cap;
    uint64_t row_line;
    int row_quoted, row_nul, row_unterminated;
} csv_reader;

static int csv_nomem(csv_reader *r)
{
    return PM_ERR(r->ctx, PM_E_NOMEM, "%s: out of memory at line %" PRIu64, r->name, r->line);
}

/* Next block into r->block; r->len == 0 at the end of the input. */
static int csv_refill(csv_reader *r)
{
    r->pos = 0;
    r->len = fread(r->block, 1, CSV_BLOCK, r->f);
    if (ferror(r->f)) {
        int e = errno;
        return PM_ERR(r->ctx, PM_E_IO, "%s: read error near line %" PRIu64 ": %s", r->name,
                      r->line, strerror(e));
    }
    return PM_OK;
}

static int csv_reserve(csv_reader *r, size_t n)
{
    if (r->text_cap - r->text_len > n)
        return PM_OK;   /* keeps one byte for the field's NUL */
    size_t cap = r->text_cap ? r->text_cap : 256;
    while (cap - r->text_len <= n) {
        if (cap > SIZE_MAX / 2)
            return csv_nomem(r);
        cap *= 2;
    }
    char *t = pm_realloc(r->text, cap);
    if (!t)
        return csv_nomem(r);
    r->text = t;
    r->text_cap = cap;
    return PM_OK;
}

static int csv_append(csv_reader *r, const unsigned char *s, size_t n)
{
    int st = csv_reserve(r, n);
    if (st)
        return st;
    memcpy(r->text + r->text_len, s, n);
    r->text_len += n;
    return PM_OK;
}

static int csv_append_byte(csv_reader *r, unsigned char c)
{
    return csv_append(r, &c, 1);
}

static int csv_end_field(csv_reader *r)
{
    if (r->nfields == r->starts_cap) {
        size_t cap = r->starts_cap ? r->starts_cap * 2 : 64;
        size_t *s = pm_reallocarray(r->starts, cap, sizeof *s);
        if (!s)
            return csv_nomem(r);
        r->starts = s;
        r->starts_cap = cap;
    }
    int st = csv_reserve(r, 0);
    if (st)
        return st;
    r->starts[r->nfields++] = r->field_start;
    r->text[r->text_len++] = '\0';
    r->field_start = r->text_len;
    return PM_OK;
}

/* The bytes of a plain run start at p; returns where it stops. */
static const unsigned char *csv_scan(const unsigned char *stop, const unsigned char *p,
                                     const unsigned char *end)
{
    while (p < end && !stop[*p])
        p++;
    return p;
}

/* One step of the machine on the byte at r->pos, for the states that
 * read runs (unquoted and quoted).  *done is set at the end of the row. */
static int csv_step_run(csv_reader *r, csv_state *state, int *done)
{
    const unsigned char *p = r->block + r->pos, *end = r->block + r->len;
    int quoted = *state == ST_QUOTED;
    const unsigned char *q = csv_scan(quoted ? r->stop_quoted : r->stop_plain, p, end);
    int st = csv_append(r, p, (size_t)(q - p));
    r->pos = (size_t)(q - r->block);
    if (st || q == end)
        return st;
    unsigned char c = *q;
    r->pos++;
    if (c == '\0') {
        r->row_nul = 1;
        return PM_OK;
    }
    if (quoted) {
        if (c == '"') {
            *state = ST_QUOTE_IN_QUOTED;
            return PM_OK;
        }
        r->line++;  /* '\n' inside quotes is data */
        return csv_append_byte(r, c);
    }
    if (c == (unsigned char)r->delim) {
        *state = ST_FIELD_START;
        return csv_end_field(r);
    }
    if (c == '\r') {
        *state = ST_CR;
        return PM_OK;
    }
    r->line++;      /* '\n' */
    *done = 1;
    return csv_end_field(r);
}

/* Reads the next row into r (fields in text/starts).  *got is 0 at the
 * end of the input.  A row with a NUL byte or an unterminated quote is
 * still returned, with row_nul / row_unterminated set. */
static int csv_next_row(csv_reader *r, int *got)
{
    r->text_len = r->field_start = r->nfields = 0;
    r->row_quoted = r->row_nul = r->row_unterminated = 0;
    *got = 0;
    csv_state state = ST_FIELD_START;
    int started = 0, done = 0, st = PM_OK;
    while (!done && !st) {
        if (r->pos == r->len) {
            if ((st = csv_refill(r)))
                return st;
            if (r->len == 0) {
                if (!started)
                    return PM_OK;
                r->row_unterminated = state == ST_QUOTED;
                *got = 1;
                return csv_end_field(r);   /* a trailing CR is dropped */
            }
        }
        if (!started) {
            started = 1;
            r->row_line = r->line;
        }
        unsigned char c = r->block[r->pos];
        switch (state) {
        case ST_FIELD_START:
            if (c == '"') {
                r->pos++;
                r->row_quoted = 1;
                state = ST_QUOTED;
                break;
            }
            state = ST_UNQUOTED;
            /* fallthrough */
        case ST_UNQUOTED:
        case ST_QUOTED:
            st = csv_step_run(r, &state, &done);
            break;
        case ST_QUOTE_IN_QUOTED:
            state = ST_UNQUOTED;  /* closing quote; what follows is unquoted */
            if (c == '"') {       /* "" is one quote */
                r->pos++;
                state = ST_QUOTED;
                st = csv_append_byte(r, c);
            }
            break;
        case ST_CR:
            state = ST_UNQUOTED;
            if (c == '\n') {
                r->pos++;
                r->line++;
                done = 1;
                st = csv_end_field(r);
            } else {
                st = csv_append_byte(r, '\r');
            }
            break;
        }
    }
    *got = !st;
    return st;
}

static int csv_row_is_blank(const csv_reader *r)
{
    if (r->nfields != 1 || r->row_quoted)
        return 0;
    return r->text[strspn(r->text, " \t")] == '\0';
}

/* The delimiter of the header line (the first line of the block from pos):
 * the most frequent of ',', ';', '\t' outside quotes; ties go to ','. */
static char csv_detect_delim(const csv_reader *r)
{
    size_t comma = 0, semi = 0, tab = 0;
    int in_quotes = 0;
    for (size_t i = r->pos; i < r->len; i++) {
        unsigned char c = r->block[i];
        if (c == '"')
            in_quotes = !in_quotes;
        else if (in_quotes)
            continue;
        else if (c == '\n')
            break;
        else if (c == ',')
            comma++;
        else if (c == ';')
            semi++;
        else if (c == '\t')
            tab++;
    }
    char best = ',';
    size_t n = comma;
    if (semi > n)
        best = ';', n = semi;
    if (tab > n)
        best = '\t';
    return best;
}

static void csv_set_classes(csv_reader *r)
{
    memset(r->stop_plain, 0, sizeof r->stop_plain);
    memset(r->stop_quoted, 0, sizeof r->stop_quoted);
    r->stop_plain[(unsigned char)r->delim] = 1;
    r->stop_plain['\r'] = r->stop_plain['\n'] = r->stop_plain['\0'] = 1;
    r->stop_quoted['"'] = r->stop_quoted['\n'] = r->stop_quoted['\0'] = 1;
}

static char *csv_trim(char *s)
{
    s += strspn(s, " \t");
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

typedef struct csv_header {
    char *text;
    const char **keys;
    const char **values;  /* the row's values, reused */
    size_t n;
} csv_header;

static int csv_check_repeats(csv_reader *r, const csv_header *h)
{
    for (size_t i = 1; i < h->n; i++) {
        if (!h->keys[i][0])
            continue;
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(h->keys[i], h->keys[j]) == 0)
                return PM_ERR(r->ctx, PM_E_INPUT,
                              "%s: header repeats column \"%s\" (columns %zu and %zu)", r->name,
                              h->keys[i], j + 1, i + 1);
    }
    return PM_OK;
}

/* Reads the header line: delimiter, names (trimmed), repeats. */
static int csv_read_header(csv_reader *r, char delim, csv_header *h)
{
    int st = csv_refill(r);
    if (st)
        return st;
    if (r->len >= 3 && memcmp(r->block, "\xEF\xBB\xBF", 3) == 0)
        r->pos = 3;
    r->delim = delim ? delim : csv_detect_delim(r);
    csv_set_classes(r);
    int got;
    if ((st = csv_next_row(r, &got)))
        return st;
    if (!got)
        return PM_ERR(r->ctx, PM_E_INPUT_EMPTY, "%s: empty file, no header line", r->name);
    if (csv_row_is_blank(r))
        return PM_ERR(r->ctx, PM_E_INPUT_EMPTY, "%s: header line is empty", r->name);
    if (r->row_nul)
        return PM_ERR(r->ctx, PM_E_INPUT, "%s: NUL byte in header line", r->name);
    if (r->row_unterminated)
        return PM_ERR(r->ctx, PM_E_INPUT, "%s: unterminated quoted field in header line",
                      r->name);
    h->n = r->nfields;
    h->text = pm_malloc(r->text_len);
    h->keys = pm_calloc(h->n, sizeof *h->keys);
    h->values = pm_calloc(h->n, sizeof *h->values);
    if (!h->text || !h->keys || !h->values)
        return csv_nomem(r);
    memcpy(h->text, r->text, r->text_len);
    for (size_t i = 0; i < h->n; i++)
        h->keys[i] = csv_trim(h->text + r->starts[i]);
    return csv_check_repeats(r, h);
}

static int csv_reject(const csv_reader *r, const pm_record_sink *sink, const char *reason)
{
    return sink->reject(sink->user, r->row_line, NULL, NULL, reason);
}

/* Sends the current row to the sink as a record or a reject. */
static int csv_emit_row(const csv_reader *r, const csv_header *h, const pm_record_sink *sink)
{
    if (r->row_unterminated)
        return csv_reject(r, sink, "unterminated quoted field");
    if (r->row_nul)
        return csv_reject(r, sink, "NUL byte in record");
    if (r->nfields > h->n) {
        char reason[96];
        snprintf(reason, sizeof reason, "row has %zu fields, header has %zu", r->nfields, h->n);
        return csv_reject(r, sink, reason);
    }
    for (size_t i = 0; i < h->n; i++)
        h->values[i] = i < r->nfields ? r->text + r->starts[i] : "";
    pm_record rec = {.line = r->row_line, .n = h->n, .keys = h->keys, .values = h->values,
                     .delim = r->delim};
    return sink->record(sink->user, &rec);
}

static int csv_read_rows(csv_reader *r, const csv_header *h, const pm_record_sink *sink)
{
    for (;;) {
        int got, st = csv_next_row(r, &got);
        if (st || !got)
            return st;
        if (csv_row_is_blank(r))
            continue;
        if ((st = csv_emit_row(r, h, sink)))
            return st;
    }
}

int pm_csv_read(pm_ctx *ctx, FILE *f, const char *name, char delim,
                const pm_record_sink *sink, char *delim_out)
{
    csv_reader r = {.ctx = ctx, .f = f, .name = name, .line = 1};
    csv_header h = {0};
    r.block = pm_malloc(CSV_BLOCK);
    int st = r.block ? csv_read_header(&r, delim, &h) : csv_nomem(&r);
    if (!st && delim_out)
        *delim_out = r.delim;
    if (!st)
        st = csv_read_rows(&r, &h, sink);
    pm_free(h.text);
    pm_free(h.keys);
    pm_free(h.values);
    pm_free(r.block);
    pm_free(r.text);
    pm_free(r.starts);
    return st;
}
