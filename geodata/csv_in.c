/* csv_in.c — CSV records (RFC 4180) for the record sink (see pm_record.h).
 *
 * The file is read into one buffer and split in place by a small state
 * machine (field start, unquoted, quoted, quote inside quoted, CR): each
 * field's bytes stay where they were read, unquoted ("" → ") by moving
 * them down over the quotes, and the byte after a field (its delimiter or
 * line end, already read) becomes its NUL.  An unquoted field needs no
 * copy at all.  Runs of plain bytes are found sixteen at a time (SSE2)
 * or with a per-reader byte-class table.  A row that runs past the data
 * read so far is moved to the start of the buffer before the next read;
 * the buffer grows only for a row longer than itself, so the steady state
 * does no allocation.
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
#ifdef __SSE2__
#include <emmintrin.h>
#endif

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
    unsigned char *block;           /* cap + 1 bytes: data [0, len), read up to pos */
    size_t pos, len, cap;
    uint64_t line;                  /* line of the next unread byte */
    /* the current row: its fields, NUL-terminated, from block + row */
    size_t row, row_len;            /* offset in block; bytes up to the last NUL */
    size_t *starts;                 /* offset of each field from the row's start */
    size_t nfields, starts_cap;
    uint64_t row_line;
    int row_quoted, row_nul, row_unterminated;
} csv_reader;

static int csv_nomem(csv_reader *r)
{
    return PM_ERR(r->ctx, PM_E_NOMEM, "%s: out of memory at line %" PRIu64, r->name, r->line);
}

/* Makes room and reads more after the data held: the current row (from
 * r->row) moves to the start of the buffer, which doubles when the row
 * fills it.  *got = bytes read, 0 at the end of the input. */
static int csv_fill(csv_reader *r, size_t *got)
{
    *got = 0;
    if (r->row > 0) {
        memmove(r->block, r->block + r->row, r->len - r->row);
        r->len -= r->row;
        r->pos -= r->row;
        r->row = 0;
    }
    if (r->len == r->cap) {
        if (r->cap > SIZE_MAX / 2 - 1)
            return csv_nomem(r);
        unsigned char *b = pm_realloc(r->block, 2 * r->cap + 1);
        if (!b)
            return csv_nomem(r);
        r->block = b;
        r->cap *= 2;
    }
    *got = fread(r->block + r->len, 1, r->cap - r->len, r->f);
    r->len += *got;
    if (ferror(r->f)) {
        int e = errno;
        return PM_ERR(r->ctx, PM_E_IO, "%s: read error near line %" PRIu64 ": %s", r->name,
                      r->line, strerror(e));
    }
    return PM_OK;
}

/* Ends the field whose bytes were moved down to w (an offset in block). */
static int csv_end_field(csv_reader *r, size_t *w, size_t *field)
{
    if (r->nfields == r->starts_cap) {
        size_t cap = r->starts_cap ? r->starts_cap * 2 : 64;
        size_t *s = pm_reallocarray(r->starts, cap, sizeof *s);
        if (!s)
            return csv_nomem(r);
        r->starts = s;
        r->starts_cap = cap;
    }
    r->starts[r->nfields++] = *field - r->row;
    r->block[(*w)++] = '\0';   /* over a byte already read: w never passes pos */
    *field = *w;
    r->row_len = *w - r->row;
    return PM_OK;
}

/* The first byte at or after p (before end) that stop marks; end if none. */
static const unsigned char *csv_scan(const csv_reader *r, int quoted, const unsigned char *p,
                                     const unsigned char *end)
{
    const unsigned char *stop = quoted ? r->stop_quoted : r->stop_plain;
#ifdef __SSE2__
    const __m128i zero = _mm_setzero_si128(), lf = _mm_set1_epi8('\n');
    const __m128i a = _mm_set1_epi8(quoted ? '"' : r->delim), b = _mm_set1_epi8('\r');
    for (; end - p >= 16; p += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, zero), _mm_cmpeq_epi8(v, lf)),
                                 _mm_cmpeq_epi8(v, a));
        if (!quoted)
            m = _mm_or_si128(m, _mm_cmpeq_epi8(v, b));
        int bits = _mm_movemask_epi8(m);
        if (bits)
            return p + __builtin_ctz((unsigned)bits);
    }
#endif
    while (p < end && !stop[*p])
        p++;
    return p;
}

/* Reads the next row: its fields from block + r->row at r->starts.  *got
 * is 0 at the end of the input.  A row with a NUL byte or an unterminated
 * quote is still returned, with row_nul / row_unterminated set. */
static int csv_next_row(csv_reader *r, int *got)
{
    r->row = r->pos;
    r->row_len = r->nfields = 0;
    r->row_quoted = r->row_nul = r->row_unterminated = 0;
    r->row_line = r->line;
    *got = 0;
    csv_state state = ST_FIELD_START;
    size_t w = r->pos, field = r->pos;   /* where the field's bytes go; its start */
    int st = PM_OK;
    for (;;) {
        if (r->pos == r->len) {
            size_t shift = r->row, n;
            if ((st = csv_fill(r, &n)))
                return st;
            w -= shift;
            field -= shift;
            if (n == 0) {
                if (r->pos == r->row)
                    return PM_OK;   /* nothing of a row: the end */
                r->row_unterminated = state == ST_QUOTED;
                *got = 1;
                return csv_end_field(r, &w, &field);   /* a trailing CR is dropped */
            }
        }
        unsigned char *blk = r->block;
        unsigned char c = blk[r->pos];
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
        case ST_QUOTED: {
            int quoted = state == ST_QUOTED;
            const unsigned char *q = csv_scan(r, quoted, blk + r->pos, blk + r->len);
            size_t n = (size_t)(q - (blk + r->pos));
            if (w != r->pos)
                memmove(blk + w, blk + r->pos, n);
            w += n;
            r->pos += n;
            if (r->pos == r->len)
                break;
            r->pos++;   /* c = *q, the byte that stopped the run */
            c = *q;
            if (c == '\0') {
                r->row_nul = 1;
            } else if (quoted) {
                if (c == '"') {
                    state = ST_QUOTE_IN_QUOTED;
                } else {
                    r->line++;   /* '\n' inside quotes is data */
                    blk[w++] = c;
                }
            } else if (c == (unsigned char)r->delim) {
                state = ST_FIELD_START;
                if ((st = csv_end_field(r, &w, &field)))
                    return st;
            } else if (c == '\r') {
                state = ST_CR;
            } else {   /* '\n' */
                r->line++;
                *got = 1;
                return csv_end_field(r, &w, &field);
            }
            break;
        }
        case ST_QUOTE_IN_QUOTED:
            state = ST_UNQUOTED;  /* closing quote; what follows is unquoted */
            if (c == '"') {       /* "" is one quote */
                r->pos++;
                state = ST_QUOTED;
                blk[w++] = c;
            }
            break;
        case ST_CR:
            state = ST_UNQUOTED;
            if (c == '\n') {
                r->pos++;
                r->line++;
                *got = 1;
                return csv_end_field(r, &w, &field);
            }
            blk[w++] = '\r';
            break;
        }
    }
}

static const char *csv_field(const csv_reader *r, size_t i)
{
    return (const char *)r->block + r->row + r->starts[i];
}

static int csv_row_is_blank(const csv_reader *r)
{
    if (r->nfields != 1 || r->row_quoted)
        return 0;
    const char *t = csv_field(r, 0);
    return t[strspn(t, " \t")] == '\0';
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
    int sent;             /* a record was sent: the next has the same keys */
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
    size_t n;
    int st = csv_fill(r, &n);
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
    h->text = pm_malloc(r->row_len);
    h->keys = pm_calloc(h->n, sizeof *h->keys);
    h->values = pm_calloc(h->n, sizeof *h->values);
    if (!h->text || !h->keys || !h->values)
        return csv_nomem(r);
    memcpy(h->text, r->block + r->row, r->row_len);
    for (size_t i = 0; i < h->n; i++)
        h->keys[i] = csv_trim(h->text + r->starts[i]);
    return csv_check_repeats(r, h);
}

static int csv_reject(const csv_reader *r, const pm_record_sink *sink, const char *reason)
{
    return sink->reject(sink->user, r->row_line, NULL, NULL, reason);
}

/* Sends the current row to the sink as a record or a reject. */
static int csv_emit_row(const csv_reader *r, csv_header *h, const pm_record_sink *sink)
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
        h->values[i] = i < r->nfields ? csv_field(r, i) : "";
    pm_record rec = {.line = r->row_line, .n = h->n, .keys = h->keys, .values = h->values,
                     .delim = r->delim, .same_keys = h->sent};
    h->sent = 1;
    return sink->record(sink->user, &rec);
}

static int csv_read_rows(csv_reader *r, csv_header *h, const pm_record_sink *sink)
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
    r.cap = CSV_BLOCK;
    r.block = pm_malloc(CSV_BLOCK + 1);
    int st = r.block ? csv_read_header(&r, delim, &h) : csv_nomem(&r);
    if (!st && delim_out)
        *delim_out = r.delim;
    if (!st)
        st = csv_read_rows(&r, &h, sink);
    pm_free(h.text);
    pm_free(h.keys);
    pm_free(h.values);
    pm_free(r.block);
    pm_free(r.starts);
    return st;
}
