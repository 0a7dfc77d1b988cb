/* cube_io.c — the cube's snapshot file: writing (to a temporary name,
 * renamed into place) and reading back with every length checked before
 * it is trusted.  The byte layout is in docs/cube.md; in short, all
 * little-endian, version 2:
 *
 *   header (224 bytes): magic "PMCUBE\0\0", version 2, header size, file
 *     size, period kind, UTC offset, topics, districts, cells, answered,
 *     open, ids, outside, dictionary sizes, section count (5); the section
 *     table (offset, length, XXH3-64 of the section's bytes, for each); the
 *     XXH3-64 of all that
 *   five sections, each starting on a multiple of 8 (zeros between):
 *     strings: district ids, dictionaries (u32 length + bytes each)
 *     cells sorted by key (40 bytes each)
 *     answer delays (u32), cell by cell, sorted
 *     open creation times (i64), cell by cell, sorted
 *     id hashes (u64, ascending)
 *
 * Each section has its own checksum, so a reader checks only what it uses:
 * one that only queries the cube never reads the id hashes (most of the
 * file), and keeps the two lists where they are, in the mapping.  Version 1
 * (one CRC-32 over the file, no padding, the same sections in the same
 * order) is still read.
 *
 * Cells, lists and hashes are written sorted, so the file depends only on
 * what the cube holds, not on the order it was built in. */
#include "cube_impl.h"
#include "pm_alloc.h"
#include "pm_snap.h"
#include "../geodata/pm_out.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <xxhash.h>
#include <zlib.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char MAGIC[8] = {'P', 'M', 'C', 'U', 'B', 'E', 0, 0};
#define VERSION 2
#define HEADER_SIZE_V1 96
#define FIELDS_SIZE 96          /* the header's fields, the same in both versions */
#define TABLE_AT FIELDS_SIZE    /* version 2: the section table ... */
#define HEADER_HASH_AT (TABLE_AT + N_SECTIONS * 24)   /* ... and the header's hash */
#define HEADER_SIZE (HEADER_HASH_AT + 8)
#define CELL_SIZE 40
#define ALIGN 8                 /* sections start on a multiple of ALIGN */
#define BUF_SIZE (64 * 1024)

/* The sections of a version 2 file, in file order. */
enum { SEC_STRINGS, SEC_CELLS, SEC_DELAYS, SEC_OPENS, SEC_IDS, N_SECTIONS };
static const char *const SECTION_NAME[N_SECTIONS] = {
    "strings", "cells", "answer times", "open times", "id hashes"};
static const size_t SECTION_ELEM[N_SECTIONS] = {1, CELL_SIZE, 4, 8, 8};

typedef struct section {
    uint64_t off, len, hash;
} section;

/* ---- CRC-32 (IEEE 802.3): zlib's, several bytes a step (version 1) ------- */

/* Running CRC: start with 0. */
static uint32_t crc_update(uint32_t crc, const unsigned char *p, size_t n)
{
    return (uint32_t)crc32_z(crc, p, n);
}

/* Open times are written as u64 with the sign bit flipped, so that the
 * unsigned order is the signed one (and the radix sort applies). */
static uint64_t time_key(int64_t t) { return (uint64_t)t ^ ((uint64_t)1 << 63); }
static int64_t key_time(uint64_t k) { return (int64_t)(k ^ ((uint64_t)1 << 63)); }

/* ---- the header and the layout --------------------------------------------- */

typedef struct header {
    uint32_t version, header_size, period, n_topics, n_districts, dict_n[PM_CUBE_NDICT];
    uint32_t n_sections;  /* version 2 */
    int32_t offset;
    uint64_t file_size, n_cells, n_answered, n_open, n_ids, outside;
    section sec[N_SECTIONS];   /* version 2 */
    uint64_t header_hash;      /* version 2 */
} header;

static uint64_t align_up(uint64_t x) { return (x + (ALIGN - 1)) & ~(uint64_t)(ALIGN - 1); }

/* The version 2 sections for h's counts and a strings section of
 * strings_len bytes, in a file of at most limit bytes: offsets and lengths
 * into sec (hashes left alone), the file's size into *end.  Returns -1, or
 * the first section that does not fit. */
static int layout(const header *h, uint64_t strings_len, uint64_t limit, section *sec,
                  uint64_t *end)
{
    const uint64_t count[N_SECTIONS] = {strings_len, h->n_cells, h->n_answered, h->n_open,
                                        h->n_ids};
    uint64_t off = HEADER_SIZE;
    for (int i = 0; i < N_SECTIONS; i++) {
        if (off > limit || count[i] > (limit - off) / SECTION_ELEM[i])
            return i;
        sec[i].off = off;
        sec[i].len = count[i] * SECTION_ELEM[i];
        off += sec[i].len;
        *end = off;
        off = i + 1 < N_SECTIONS ? align_up(off) : off;
    }
    return -1;
}

/* The version 2 header, with its hash. */
static void encode_header(const header *h, unsigned char out[HEADER_SIZE])
{
    unsigned char *p = out;
    memset(out, 0, HEADER_SIZE);
    memcpy(p, MAGIC, sizeof MAGIC);
    pm_le_put(p + 8, h->version, 4);
    pm_le_put(p + 12, h->header_size, 4);
    pm_le_put(p + 16, h->file_size, 8);
    pm_le_put(p + 24, h->period, 4);
    pm_le_put(p + 28, (uint32_t)h->offset, 4);
    pm_le_put(p + 32, h->n_topics, 4);
    pm_le_put(p + 36, h->n_districts, 4);
    pm_le_put(p + 40, h->n_cells, 8);
    pm_le_put(p + 48, h->n_answered, 8);
    pm_le_put(p + 56, h->n_open, 8);
    pm_le_put(p + 64, h->n_ids, 8);
    pm_le_put(p + 72, h->outside, 8);
    for (int k = 0; k < PM_CUBE_NDICT; k++)
        pm_le_put(p + 80 + 4 * k, h->dict_n[k], 4);
    pm_le_put(p + 92, h->n_sections, 4);
    for (int i = 0; i < N_SECTIONS; i++) {
        pm_le_put(p + TABLE_AT + 24 * i, h->sec[i].off, 8);
        pm_le_put(p + TABLE_AT + 24 * i + 8, h->sec[i].len, 8);
        pm_le_put(p + TABLE_AT + 24 * i + 16, h->sec[i].hash, 8);
    }
    pm_le_put(p + HEADER_HASH_AT, XXH3_64bits(out, HEADER_HASH_AT), 8);
}

/* The header's fields; the section table and the header's hash too when
 * there is room for them (version 2). */
static void decode_header(const unsigned char *p, size_t size, header *h)
{
    h->version = (uint32_t)pm_le_get(p + 8, 4);
    h->header_size = (uint32_t)pm_le_get(p + 12, 4);
    h->file_size = pm_le_get(p + 16, 8);
    h->period = (uint32_t)pm_le_get(p + 24, 4);
    h->offset = (int32_t)(uint32_t)pm_le_get(p + 28, 4);
    h->n_topics = (uint32_t)pm_le_get(p + 32, 4);
    h->n_districts = (uint32_t)pm_le_get(p + 36, 4);
    h->n_cells = pm_le_get(p + 40, 8);
    h->n_answered = pm_le_get(p + 48, 8);
    h->n_open = pm_le_get(p + 56, 8);
    h->n_ids = pm_le_get(p + 64, 8);
    h->outside = pm_le_get(p + 72, 8);
    for (int k = 0; k < PM_CUBE_NDICT; k++)
        h->dict_n[k] = (uint32_t)pm_le_get(p + 80 + 4 * k, 4);
    h->n_sections = (uint32_t)pm_le_get(p + 92, 4);
    if (size < HEADER_SIZE)
        return;
    for (int i = 0; i < N_SECTIONS; i++) {
        h->sec[i].off = pm_le_get(p + TABLE_AT + 24 * i, 8);
        h->sec[i].len = pm_le_get(p + TABLE_AT + 24 * i + 8, 8);
        h->sec[i].hash = pm_le_get(p + TABLE_AT + 24 * i + 16, 8);
    }
    h->header_hash = pm_le_get(p + HEADER_HASH_AT, 8);
}

/* ---- writing ---------------------------------------------------------------- */

typedef struct writer {
    FILE *f;
    XXH3_state_t *xs;      /* the current section's hash */
    int hashing;           /* in a section (not the header or padding) */
    uint64_t pos;          /* bytes written, buffered ones too */
    size_t n;
    int failed;
    unsigned char buf[BUF_SIZE];
} writer;

static void w_flush(writer *w)
{
    if (w->hashing)
        XXH3_64bits_update(w->xs, w->buf, w->n);
    if (w->n && fwrite(w->buf, 1, w->n, w->f) != w->n)
        w->failed = 1;
    w->n = 0;
}

static void w_bytes(writer *w, const void *p, size_t n)
{
    const unsigned char *s = p;
    w->pos += n;
    while (n) {
        if (w->n == BUF_SIZE)
            w_flush(w);
        size_t k = BUF_SIZE - w->n < n ? BUF_SIZE - w->n : n;
        memcpy(w->buf + w->n, s, k);
        w->n += k;
        s += k;
        n -= k;
    }
}

static void w_le(writer *w, uint64_t v, int bytes)
{
    unsigned char b[8];
    pm_le_put(b, v, bytes);
    w_bytes(w, b, (size_t)bytes);
}

static void w_str(writer *w, const char *s)
{
    size_t len = strlen(s);
    w_le(w, len, 4);
    w_bytes(w, s, len);
}

static void w_section_begin(writer *w)
{
    w_flush(w);
    XXH3_64bits_reset(w->xs);
    w->hashing = 1;
}

/* Ends the section (its hash into *hash) and pads to the next ALIGN. */
static void w_section_end(writer *w, uint64_t *hash)
{
    static const unsigned char zeros[ALIGN];
    w_flush(w);
    w->hashing = 0;
    *hash = XXH3_64bits_digest(w->xs);
    w_bytes(w, zeros, (size_t)(align_up(w->pos) - w->pos));
}

/* What the writer needs besides the cube: cells in key order and scratch
 * for sorting lists and hashes. */
typedef struct wscratch {
    const pm_cell **order;
    uint64_t *a, *b;       /* the longest list's elements each */
    uint64_t *ids;         /* the id hashes, sorted */
} wscratch;

static int order_cmp(const void *x, const void *y)
{
    return pm_cell_key_cmp(&(*(const pm_cell *const *)x)->key, &(*(const pm_cell *const *)y)->key);
}

static int scratch_new(const pm_cube *cube, wscratch *s)
{
    const pm_cell_store *st = &cube->st;
    size_t longest = 0;
    for (size_t c = 0; c < st->n; c++) {
        longest = st->cells[c].delays.len > longest ? st->cells[c].delays.len : longest;
        longest = st->cells[c].opens.len > longest ? st->cells[c].opens.len : longest;
    }
    s->order = pm_calloc(st->n ? st->n : 1, sizeof *s->order);
    s->a = pm_calloc(longest ? longest : 1, sizeof *s->a);
    s->b = pm_calloc(longest ? longest : 1, sizeof *s->b);
    s->ids = pm_malloc((cube->ids.n ? cube->ids.n : 1) * sizeof *s->ids);
    if (!s->order || !s->a || !s->b || !s->ids)
        return -1;
    for (size_t c = 0; c < st->n; c++)
        s->order[c] = &st->cells[c];
    qsort(s->order, st->n, sizeof *s->order, order_cmp);
    return 0;
}

static void scratch_free(wscratch *s)
{
    pm_free(s->order);
    pm_free(s->a);
    pm_free(s->b);
    pm_free(s->ids);
}

/* The id set's hashes in increasing order into out.  Each lies at or after
 * its home slot, homes increasing with the hash, so in slot order they are
 * sorted but for the few a probe moved past others, and for those that
 * wrapped from the last slots to the first: taken in home order (the
 * first run's wrapped ones last), an insertion sort finishes in about one
 * pass, with no second array of every hash. */
static void ids_sorted(const pm_idset *s, uint64_t *out)
{
    size_t n = 0, run = 0;   /* the first run of full slots: 0 .. run - 1 */
    while (run < s->nslots && s->slots[run])
        run++;
    for (size_t i = 0; i < run; i++)
        if (pm_idset_home(s, s->slots[i]) <= i)
            out[n++] = s->slots[i];
    for (size_t i = run; i < s->nslots; i++)
        if (s->slots[i])
            out[n++] = s->slots[i];
    for (size_t i = 0; i < run; i++)
        if (pm_idset_home(s, s->slots[i]) > i)
            out[n++] = s->slots[i];
    for (size_t i = 1; i < n; i++) {
        uint64_t v = out[i];
        size_t j = i;
        for (; j > 0 && out[j - 1] > v; j--)
            out[j] = out[j - 1];
        out[j] = v;
    }
}

static uint64_t n_answered(const pm_cube *cube)
{
    uint64_t n = 0;
    for (size_t c = 0; c < cube->st.n; c++)
        n += cube->st.cells[c].delays.len;
    return n;
}

static uint64_t strings_size(const pm_cube *cube)
{
    uint64_t n = 0;
    for (size_t d = 0; d < cube->n_districts; d++)
        n += 4 + strlen(pm_district_id(cube->ds, d));
    for (int k = 0; k < PM_CUBE_NDICT; k++)
        for (size_t i = 0; i < pm_strtab_count(cube->dict[k]); i++)
            n += 4 + strlen(pm_strtab_str(cube->dict[k], i));
    return n;
}

/* The header for cube, but for the sections' hashes. */
static void header_of(const pm_cube *cube, header *h)
{
    uint64_t answered = n_answered(cube);
    memset(h, 0, sizeof *h);
    h->version = VERSION;
    h->header_size = HEADER_SIZE;
    h->period = (uint32_t)cube->opts.period;
    h->offset = (int32_t)cube->opts.utc_offset_s;
    h->n_topics = (uint32_t)cube->n_topics;
    h->n_districts = (uint32_t)cube->n_districts;
    h->n_cells = cube->st.n;
    h->n_answered = answered;
    h->n_open = cube->total - answered;
    h->n_ids = cube->ids.n;
    h->outside = cube->outside;
    for (int k = 0; k < PM_CUBE_NDICT; k++)
        h->dict_n[k] = (uint32_t)pm_strtab_count(cube->dict[k]);
    h->n_sections = N_SECTIONS;
    layout(h, strings_size(cube), UINT64_MAX, h->sec, &h->file_size);
}

static void write_cells(writer *w, const pm_cube *cube, wscratch *s)
{
    for (size_t c = 0; c < cube->st.n; c++) {
        const pm_cell *cell = s->order[c];
        const pm_cell_key *k = &cell->key;
        w_le(w, k->district, 4);
        w_le(w, k->topic, 2);
        w_le(w, 0, 2);
        w_le(w, (uint64_t)(int64_t)k->period, 8);
        w_le(w, k->source, 4);
        w_le(w, k->status, 4);
        w_le(w, k->executor, 4);
        w_le(w, cell->answered_24h, 4);
        w_le(w, cell->delays.len, 4);
        w_le(w, cell->opens.len, 4);
    }
}

static void write_delays(writer *w, const pm_cube *cube, wscratch *s)
{
    for (size_t c = 0; c < cube->st.n; c++) {
        const pm_cell *cell = s->order[c];
        uint32_t *a = (uint32_t *)s->a;
        if (!cell->delays.len)
            continue;
        memcpy(a, pm_store_delays(&cube->st, cell), cell->delays.len * sizeof *a);
        pm_sort_u32(a, (uint32_t *)s->b, cell->delays.len);
        for (uint32_t i = 0; i < cell->delays.len; i++)
            w_le(w, a[i], 4);
    }
}

static void write_opens(writer *w, const pm_cube *cube, wscratch *s)
{
    for (size_t c = 0; c < cube->st.n; c++) {
        const pm_cell *cell = s->order[c];
        const int64_t *t = pm_store_opens(&cube->st, cell);
        for (uint32_t i = 0; i < cell->opens.len; i++)
            s->a[i] = time_key(t[i]);
        pm_sort_u64(s->a, s->b, cell->opens.len);
        for (uint32_t i = 0; i < cell->opens.len; i++)
            w_le(w, (uint64_t)key_time(s->a[i]), 8);
    }
}

/* The header goes in last, over a placeholder, when the sections' hashes
 * are known. */
static void write_cube(writer *w, const pm_cube *cube, wscratch *s)
{
    header h;
    unsigned char head[HEADER_SIZE] = {0};
    header_of(cube, &h);
    w_bytes(w, head, sizeof head);
    w_section_begin(w);
    for (size_t d = 0; d < cube->n_districts; d++)
        w_str(w, pm_district_id(cube->ds, d));
    for (int k = 0; k < PM_CUBE_NDICT; k++)
        for (size_t i = 0; i < pm_strtab_count(cube->dict[k]); i++)
            w_str(w, pm_strtab_str(cube->dict[k], i));
    w_section_end(w, &h.sec[SEC_STRINGS].hash);
    w_section_begin(w);
    write_cells(w, cube, s);
    w_section_end(w, &h.sec[SEC_CELLS].hash);
    w_section_begin(w);
    write_delays(w, cube, s);
    w_section_end(w, &h.sec[SEC_DELAYS].hash);
    w_section_begin(w);
    write_opens(w, cube, s);
    w_section_end(w, &h.sec[SEC_OPENS].hash);
    w_section_begin(w);
    ids_sorted(&cube->ids, s->ids);
    for (size_t i = 0; i < cube->ids.n; i++)
        w_le(w, s->ids[i], 8);
    w_section_end(w, &h.sec[SEC_IDS].hash);
    w_flush(w);
    if (w->pos != h.file_size)   /* the layout the header gives is the one written */
        w->failed = 1;
    encode_header(&h, head);
    /* and back to the end: what an open_memstream() keeps is up to where it stands */
    if (fseek(w->f, 0, SEEK_SET) != 0 || fwrite(head, 1, sizeof head, w->f) != sizeof head ||
        fseek(w->f, (long)h.file_size, SEEK_SET) != 0)
        w->failed = 1;
}

int pm_cube_write_stream(pm_ctx *ctx, const pm_cube *cube, FILE *f, const char *name)
{
    if (cube->no_ids)
        return PM_ERR(ctx, PM_E_USAGE, "%s: the cube keeps no ids (a later batch could not be "
                      "checked against them), so it is not written", name);
    wscratch s = {0};
    writer *w = pm_calloc(1, sizeof *w);
    XXH3_state_t *xs = XXH3_createState();
    int rc = PM_OK;
    if (!w || !xs || scratch_new(cube, &s) != 0) {
        rc = PM_ERR(ctx, PM_E_NOMEM, "out of memory writing %s", name);
    } else {
        w->xs = xs;
        w->f = f;
        write_cube(w, cube, &s);
        if (w->failed)
            rc = PM_ERR(ctx, PM_E_IO, "error writing %s: %s", name, strerror(errno));
    }
    pm_free(w);
    XXH3_freeState(xs);
    scratch_free(&s);
    return rc;
}

int pm_cube_write(pm_ctx *ctx, const pm_cube *cube, const char *path)
{
    pm_outfile *of = NULL;
    int rc = pm_outfile_open(ctx, path, &of);
    if (rc == PM_OK)
        rc = pm_cube_write_stream(ctx, cube, pm_outfile_stream(of), path);
    if (rc == PM_OK)
        return pm_outfile_commit(ctx, of);
    pm_outfile_abort(of);
    return rc;
}

/* ---- reading ------------------------------------------------------------------ */

typedef struct reader {
    pm_ctx *ctx;
    const char *path;
    const unsigned char *p;
    size_t pos, end;      /* end: where the section (version 1: the CRC) starts */
    const header *h;
} reader;

__attribute__((format(printf, 2, 3)))
static int damaged(reader *r, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return PM_ERR(r->ctx, PM_E_INPUT, "%s: damaged cube (%s at byte %zu)", r->path, what, r->pos);
}

/* 1 when n more bytes are there. */
static int has(const reader *r, uint64_t n) { return n <= r->end - r->pos; }
/* 1 when n more items of size bytes each are there (no overflow). */
static int has_n(const reader *r, uint64_t n, size_t size) { return n <= (r->end - r->pos) / size; }

static uint64_t r_le(reader *r, int bytes)
{
    uint64_t v = pm_le_get(r->p + r->pos, bytes);
    r->pos += (size_t)bytes;
    return v;
}

/* A string (u32 length + bytes, no terminator): *s points into the file;
 * -1 when it runs past the end. */
static int r_str(reader *r, char **s, size_t *len)
{
    if (!has(r, 4))
        return -1;
    uint64_t n = r_le(r, 4);
    if (!has(r, n))
        return -1;
    *s = (char *)r->p + r->pos;
    *len = (size_t)n;
    r->pos += (size_t)n;
    return 0;
}

/* Version 2: reading moves to section i, whose hash is checked first.
 * Version 1 reads on, its one CRC checked already. */
static int enter(reader *r, int i)
{
    if (r->h->version == 1)
        return PM_OK;
    const section *sc = &r->h->sec[i];
    r->pos = (size_t)sc->off;
    r->end = (size_t)(sc->off + sc->len);
    if (XXH3_64bits(r->p + r->pos, (size_t)sc->len) != sc->hash)
        return PM_ERR(r->ctx, PM_E_INPUT, "%s: checksum mismatch — the file is damaged (in "
                      "its %s)", r->path, SECTION_NAME[i]);
    return PM_OK;
}

/* The section (version 1: the file) must be read to its end. */
static int leave(reader *r, int i)
{
    if (r->pos == r->end)
        return PM_OK;
    if (r->h->version == 1 && i != SEC_IDS)
        return PM_OK;
    return damaged(r, "%zu bytes left over", r->end - r->pos);
}

/* Version 1: the file's size, then one CRC-32 over all of it. */
static int check_frame_v1(reader *r, size_t size, header *h)
{
    const char *path = r->path;
    if (h->file_size > size)
        return PM_ERR(r->ctx, PM_E_INPUT, "%s: truncated (%zu of %" PRIu64 " bytes)", path, size,
                      h->file_size);
    if (h->file_size < size || h->header_size < HEADER_SIZE_V1 || h->header_size > size - 4)
        return PM_ERR(r->ctx, PM_E_INPUT, "%s: checksum mismatch — the file is damaged "
                      "(%zu bytes, the header says %" PRIu64 ")", path, size, h->file_size);
    uint32_t want = (uint32_t)pm_le_get(r->p + size - 4, 4);
    if (crc_update(0, r->p, size - 4) != want)
        return PM_ERR(r->ctx, PM_E_INPUT, "%s: checksum mismatch — the file is damaged", path);
    r->pos = h->header_size;
    r->end = size - 4;
    return PM_OK;
}

/* Version 2: the header's hash, then the section table against the counts
 * (each section where they put it, the zeros between).  The sections'
 * hashes are checked as each is read (enter()). */
static int check_frame_v2(reader *r, size_t size, header *h)
{
    const char *path = r->path;
    if (size < HEADER_SIZE)
        return PM_ERR(r->ctx, PM_E_INPUT, "%s: truncated (%zu bytes, less than a header)", path,
                      size);
    if (XXH3_64bits(r->p, HEADER_HASH_AT) != h->header_hash)
        return PM_ERR(r->ctx, PM_E_INPUT, "%s: checksum mismatch — the file is damaged (in its "
                      "header)", path);
    if (h->file_size > size)
        return PM_ERR(r->ctx, PM_E_INPUT, "%s: truncated (%zu of %" PRIu64 " bytes)", path, size,
                      h->file_size);
    r->pos = TABLE_AT;
    if (h->file_size < size || h->header_size != HEADER_SIZE || h->n_sections != N_SECTIONS)
        return damaged(r, "%zu bytes, a header of %" PRIu32 " bytes and %" PRIu32 " sections; "
                       "the header says %" PRIu64 " bytes", size, h->header_size, h->n_sections,
                       h->file_size);
    section want[N_SECTIONS];
    uint64_t end = 0;
    switch (layout(h, h->sec[SEC_STRINGS].len, size, want, &end)) {
    case -1:
        break;
    case SEC_STRINGS:
        return damaged(r, "%" PRIu64 " bytes of strings do not fit the file", h->sec[0].len);
    case SEC_CELLS:
        return damaged(r, "%" PRIu64 " cells do not fit the file", h->n_cells);
    case SEC_IDS:
        return damaged(r, "%" PRIu64 " ids do not fit the file", h->n_ids);
    default:
        return damaged(r, "%" PRIu64 " answered and %" PRIu64 " open do not fit the file",
                       h->n_answered, h->n_open);
    }
    for (int i = 0; i < N_SECTIONS; i++)
        if (want[i].off != h->sec[i].off || want[i].len != h->sec[i].len)
            return damaged(r, "the %s are not where the counts put them", SECTION_NAME[i]);
    if (end != size)
        return damaged(r, "%" PRIu64 " bytes left over", (uint64_t)size - end);
    for (int i = 0; i + 1 < N_SECTIONS; i++)
        for (uint64_t b = want[i].off + want[i].len; b < want[i + 1].off; b++)
            if (r->p[b]) {
                r->pos = (size_t)b;
                return damaged(r, "padding after the %s is not zero", SECTION_NAME[i]);
            }
    return PM_OK;
}

/* Magic, version, size and checksums: before anything else is believed. */
static int check_frame(reader *r, size_t size, header *h)
{
    const char *path = r->path;
    if (memcmp(r->p, MAGIC, size < sizeof MAGIC ? size : sizeof MAGIC) != 0)
        return PM_ERR(r->ctx, PM_E_INPUT, "%s: not a problemap cube", path);
    if (size < HEADER_SIZE_V1 + 4)
        return PM_ERR(r->ctx, PM_E_INPUT, "%s: truncated (%zu bytes, less than a header)", path,
                      size);
    decode_header(r->p, size, h);
    r->h = h;
    int rc;
    if (h->version == 1)
        rc = check_frame_v1(r, size, h);
    else if (h->version == VERSION)
        rc = check_frame_v2(r, size, h);
    else
        return PM_ERR(r->ctx, PM_E_INPUT, "%s: cube format version %" PRIu32 " is not supported "
                      "(this build reads versions 1 and %d)", path, h->version, VERSION);
    if (rc == PM_OK && (h->period > PM_PERIOD_MONTH || h->offset < -18 * 3600 ||
                        h->offset > 18 * 3600))
        return PM_ERR(r->ctx, PM_E_INPUT, "%s: damaged cube (period kind %" PRIu32 ", UTC offset "
                      "%" PRId32 ")", path, h->period, h->offset);
    return rc;
}

static int read_districts(reader *r, const header *h, const pm_districts *ds)
{
    size_t nd = pm_districts_count(ds);
    if (h->n_districts != nd)
        return PM_ERR(r->ctx, PM_E_INPUT_VALUE, "%s: built over other districts (%" PRIu32
                      " districts, here %zu)", r->path, h->n_districts, nd);
    for (size_t d = 0; d < nd; d++) {
        char *s;
        size_t len;
        if (r_str(r, &s, &len) != 0)
            return damaged(r, "district id %zu runs past the end", d);
        const char *id = pm_district_id(ds, d);
        if (strlen(id) != len || memcmp(id, s, len) != 0)
            return PM_ERR(r->ctx, PM_E_INPUT_VALUE, "%s: built over other districts (district "
                          "%zu is \"%.*s\", here \"%s\")", r->path, d, (int)(len > 200 ? 200 : len),
                          s, id);
    }
    return PM_OK;
}

static int read_dicts(reader *r, const header *h, pm_cube *cube)
{
    char *str = NULL;   /* the current string, NUL-terminated */
    size_t room = 0;
    int rc = PM_OK;
    for (int k = 0; k < PM_CUBE_NDICT && rc == PM_OK; k++) {
        if (!has_n(r, h->dict_n[k], 4)) {
            rc = damaged(r, "dictionary %d claims %" PRIu32 " strings", k, h->dict_n[k]);
            break;
        }
        for (uint32_t i = 0; i < h->dict_n[k] && rc == PM_OK; i++) {
            char *s;
            size_t len;
            if (r_str(r, &s, &len) != 0 || len == 0 || len >= PM_STRTAB_STR_MAX ||
                memchr(s, 0, len)) {
                rc = damaged(r, "dictionary %d string %" PRIu32, k, i);
                break;
            }
            if (len >= room) {
                char *bigger = pm_realloc(str, len + 1);
                if (!bigger) {
                    rc = PM_ERR(r->ctx, PM_E_NOMEM, "out of memory reading %s", r->path);
                    break;
                }
                str = bigger;
                room = len + 1;
            }
            memcpy(str, s, len);
            str[len] = '\0';
            int added = 0;
            if (pm_strtab_intern(cube->dict[k], str, &added) < 0)
                rc = PM_ERR(r->ctx, PM_E_NOMEM, "out of memory reading %s", r->path);
            else if (!added)
                rc = damaged(r, "dictionary %d repeats a string", k);
        }
    }
    pm_free(str);
    return rc;
}

/* One cell record; checks what it refers to and the key order. */
static int read_cell(reader *r, pm_cube *cube, const pm_cell_key *prev, pm_cell *c)
{
    pm_cell_key *k = &c->key;
    memset(c, 0, sizeof *c);
    k->district = (uint32_t)r_le(r, 4);
    k->topic = (uint16_t)r_le(r, 2);
    uint64_t pad = r_le(r, 2);
    int64_t period = (int64_t)r_le(r, 8);
    k->period = (int32_t)(period < INT32_MIN || period > INT32_MAX ? 0 : period);
    uint32_t *dict[PM_CUBE_NDICT] = {&k->source, &k->status, &k->executor};
    int bad_dict = 0;
    for (int i = 0; i < PM_CUBE_NDICT; i++) {
        *dict[i] = (uint32_t)r_le(r, 4);
        bad_dict |= *dict[i] != PM_NONE && *dict[i] >= pm_strtab_count(cube->dict[i]);
    }
    c->answered_24h = (uint32_t)r_le(r, 4);
    c->delays.len = (uint32_t)r_le(r, 4);
    c->opens.len = (uint32_t)r_le(r, 4);
    if (pad || k->period != period || k->district >= cube->n_districts || k->topic >= cube->n_topics || bad_dict ||
        c->answered_24h > c->delays.len || (uint64_t)c->delays.len + c->opens.len == 0)
        return damaged(r, "a cell refers to what the cube has not");
    if (prev && pm_cell_key_cmp(prev, k) >= 0)
        return damaged(r, "cells out of order");
    return PM_OK;
}

/* 1 when the lists of a version 2 file can be used where they lie in the
 * mapping: aligned (ALIGN; the mapping starts on a page), and in the
 * machine's byte order. */
static int lists_in_place(const header *h)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return h->version >= 2;
#else
    (void)h;
    return 0;
#endif
}

/* The cells; their lists get room in the pools, or (in_place) are pointed
 * at the file's sections, which read_lists() then checks where they lie.
 * A cube that keeps no ids never adds, so it needs no key map. */
static int read_cells(reader *r, const header *h, pm_cube *cube, int keep_ids, int in_place)
{
    pm_cell_store *st = &cube->st;
    if (!has_n(r, h->n_cells, CELL_SIZE) || h->n_cells > UINT32_MAX - 2)
        return damaged(r, "%" PRIu64 " cells do not fit the file", h->n_cells);
    if (h->version == 1) {   /* version 2: checked against the section table */
        uint64_t rest = r->end - r->pos - h->n_cells * CELL_SIZE;
        if (h->n_answered > rest / 4 || h->n_open > (rest - h->n_answered * 4) / 8)
            return damaged(r, "%" PRIu64 " answered and %" PRIu64 " open do not fit the file",
                           h->n_answered, h->n_open);
    }
    int (*reserve)(pm_cell_store *, size_t) = keep_ids ? pm_store_reserve_cells
                                                       : pm_store_reserve_unmapped;
    if (reserve(st, (size_t)h->n_cells) != 0 ||
        (!in_place && (pm_store_reserve_pool(st, 0, (size_t)h->n_answered) != 0 ||
                       pm_store_reserve_pool(st, 1, (size_t)h->n_open) != 0)))
        return PM_ERR(r->ctx, PM_E_NOMEM, "out of memory reading %s", r->path);
    if (in_place) {   /* read-only pages: the cube refuses to add (no ids) */
        pm_pool *pool[2] = {&st->delays, &st->opens};
        const uint64_t n[2] = {h->n_answered, h->n_open};
        for (int i = 0; i < 2; i++) {
            if (n[i] > UINT32_MAX)   /* a pool's limit, as pm_store_reserve_pool()'s */
                return PM_ERR(r->ctx, PM_E_NOMEM, "out of memory reading %s", r->path);
            pool[i]->v = (void *)(r->p + h->sec[SEC_DELAYS + i].off);
            pool[i]->used = pool[i]->cap = pool[i]->live = (size_t)n[i];
        }
    }
    uint64_t answered = 0, open = 0;
    for (uint64_t c = 0; c < h->n_cells; c++) {
        pm_cell cell;
        int rc = read_cell(r, cube, c ? &st->cells[c - 1].key : NULL, &cell);
        if (rc != PM_OK)
            return rc;
        if (cell.delays.len > h->n_answered - answered || cell.opens.len > h->n_open - open)
            return damaged(r, "cells hold more complaints than the header says");
        pm_cell *dst = &st->cells[pm_store_add_reserved(st, &cell.key)];
        dst->answered_24h = cell.answered_24h;
        if (in_place) {
            dst->delays = (pm_cell_list){(uint32_t)answered, cell.delays.len, cell.delays.len};
            dst->opens = (pm_cell_list){(uint32_t)open, cell.opens.len, cell.opens.len};
        } else {
            pm_store_place(st, 0, &dst->delays, cell.delays.len);
            pm_store_place(st, 1, &dst->opens, cell.opens.len);
            dst->delays.len = cell.delays.len;
            dst->opens.len = cell.opens.len;
        }
        answered += cell.delays.len;
        open += cell.opens.len;
    }
    if (answered != h->n_answered || open != h->n_open)
        return damaged(r, "cells hold fewer complaints than the header says");
    return PM_OK;
}

/* The lists, sorted, and each cell's answered_24h matching its delays;
 * copied into the pools unless they are the file's (in_place). */
static int read_lists(reader *r, pm_cube *cube, int in_place)
{
    pm_cell_store *st = &cube->st;
    int rc = enter(r, SEC_DELAYS);
    for (size_t c = 0; c < st->n && rc == PM_OK; c++) {
        pm_cell *cell = &st->cells[c];
        uint32_t *d = pm_store_delays(st, cell), within = 0, prev = 0;
        for (uint32_t i = 0; i < cell->delays.len; i++) {
            uint32_t v = (uint32_t)r_le(r, 4);
            if (!in_place)
                d[i] = v;
            within += v <= 86400;
            if (v < prev)
                return damaged(r, "answer times out of order");
            prev = v;
        }
        if (within != cell->answered_24h)
            return damaged(r, "answered within 24 h does not match the answer times");
    }
    rc = rc == PM_OK ? leave(r, SEC_DELAYS) : rc;
    rc = rc == PM_OK ? enter(r, SEC_OPENS) : rc;
    for (size_t c = 0; c < st->n && rc == PM_OK; c++) {
        pm_cell *cell = &st->cells[c];
        int64_t *t = pm_store_opens(st, cell), prev = INT64_MIN;
        for (uint32_t i = 0; i < cell->opens.len; i++) {
            int64_t v = (int64_t)r_le(r, 8);
            if (!in_place)
                t[i] = v;
            if (v < prev)
                return damaged(r, "open times out of order");
            prev = v;
        }
    }
    return rc == PM_OK ? leave(r, SEC_OPENS) : rc;
}

/* The id hashes, ascending; put into the cube's set when it keeps them.
 * A version 2 cube that keeps none does not read them at all. */
static int read_ids(reader *r, const header *h, pm_cube *cube, int keep_ids)
{
    if (!keep_ids && h->version >= 2)
        return PM_OK;
    int rc = enter(r, SEC_IDS);
    if (rc != PM_OK)
        return rc;
    if (!has_n(r, h->n_ids, 8))
        return damaged(r, "%" PRIu64 " ids do not fit the file", h->n_ids);
    if (keep_ids && pm_idset_reserve(&cube->ids, (size_t)h->n_ids) != 0)
        return PM_ERR(r->ctx, PM_E_NOMEM, "out of memory reading %s", r->path);
    uint64_t prev = 0;
    size_t at = 0;
    for (uint64_t i = 0; i < h->n_ids; i++) {
        uint64_t v = r_le(r, 8);
        if (v <= prev)
            return damaged(r, "id hashes out of order");
        if (keep_ids)
            pm_idset_put_ascending(&cube->ids, v, &at);
        prev = v;
    }
    return leave(r, SEC_IDS);
}

static int read_body(reader *r, const header *h, const pm_districts *ds, size_t n_topics,
                     int keep_ids, pm_cube **out)
{
    if (h->n_topics != n_topics)
        return PM_ERR(r->ctx, PM_E_INPUT_VALUE, "%s: built with %" PRIu32 " topics, the "
                      "catalogue has %zu", r->path, h->n_topics, n_topics);
    int in_place = !keep_ids && lists_in_place(h);
    int rc = enter(r, SEC_STRINGS);
    if (rc == PM_OK)
        rc = read_districts(r, h, ds);
    if (rc != PM_OK)
        return rc;
    pm_cube_opts o = {(pm_period_kind)h->period, (long)h->offset};
    pm_cube *cube = NULL;
    rc = pm_cube_new(r->ctx, ds, n_topics, &o, &cube);
    if (rc == PM_OK)
        rc = read_dicts(r, h, cube);
    rc = rc == PM_OK ? leave(r, SEC_STRINGS) : rc;
    rc = rc == PM_OK ? enter(r, SEC_CELLS) : rc;
    if (rc == PM_OK)
        rc = read_cells(r, h, cube, keep_ids, in_place);
    rc = rc == PM_OK ? leave(r, SEC_CELLS) : rc;
    if (rc == PM_OK)
        rc = read_lists(r, cube, in_place);
    if (rc == PM_OK)
        rc = read_ids(r, h, cube, keep_ids);
    if (rc == PM_OK && h->n_answered + h->n_open + h->outside != h->n_ids)
        rc = damaged(r, "%" PRIu64 " ids for %" PRIu64 " complaints", h->n_ids,
                     h->n_answered + h->n_open + h->outside);
    if (rc != PM_OK) {
        if (cube && in_place)   /* the pools are the file's: not to be freed */
            cube->st.delays.v = cube->st.opens.v = NULL;
        pm_cube_free(cube);
        return rc;
    }
    if (in_place) {   /* the cube now owns the mapping */
        cube->map = r->p;
        cube->map_size = (size_t)h->file_size;
    }
    pm_cube_recount(cube);
    cube->outside = h->outside;
    if (!keep_ids) {   /* as pm_cube_keep_no_ids() leaves a cube after its one batch */
        cube->no_ids = 1;
        cube->took = 1;
    }
    *out = cube;
    return PM_OK;
}

void pm_cube_unmap(pm_cube *cube)
{
    if (!cube->map)
        return;
    cube->st.delays.v = cube->st.opens.v = NULL;
    if (!cube->map_borrowed)
        pm_file_unmap(cube->map, cube->map_size);
    cube->map = NULL;
    cube->map_size = 0;
}

/* A snapshot's bytes in memory: *out may keep its lists there (then
 * (*out)->map is data). */
static int read_region(pm_ctx *ctx, const char *name, const unsigned char *data, size_t size,
                       const pm_districts *ds, size_t n_topics, int keep_ids, pm_cube **out)
{
    *out = NULL;
    reader r = {ctx, name, data, 0, 0, NULL};
    header h = {0};
    int rc = check_frame(&r, size, &h);
    if (rc == PM_OK)
        rc = read_body(&r, &h, ds, n_topics, keep_ids, out);
    return rc;
}

static int read_file(pm_ctx *ctx, const char *path, const pm_districts *ds, size_t n_topics,
                     int keep_ids, pm_cube **out)
{
    *out = NULL;
    const unsigned char *data;
    size_t size;
    int rc = pm_file_map(ctx, path, &data, &size);
    if (rc != PM_OK)
        return rc;
    rc = read_region(ctx, path, data, size, ds, n_topics, keep_ids, out);
    if (!*out || (*out)->map != data)
        pm_file_unmap(data, size);
    return rc;
}

int pm_cube_read_query_only_region(pm_ctx *ctx, const char *name, const unsigned char *data,
                                   size_t size, const pm_districts *ds, size_t n_topics,
                                   pm_cube **out)
{
    if ((uintptr_t)data % ALIGN)
        return PM_ERR(ctx, PM_E_USAGE, "%s: a cube snapshot in memory must start on a multiple "
                      "of %d bytes", name, ALIGN);
    int rc = read_region(ctx, name, data, size, ds, n_topics, 0, out);
    if (*out && (*out)->map == data)
        (*out)->map_borrowed = 1;
    return rc;
}

int pm_cube_read(pm_ctx *ctx, const char *path, const pm_districts *ds, size_t n_topics,
                 pm_cube **out)
{
    return read_file(ctx, path, ds, n_topics, 1, out);
}

int pm_cube_read_query_only(pm_ctx *ctx, const char *path, const pm_districts *ds,
                            size_t n_topics, pm_cube **out)
{
    return read_file(ctx, path, ds, n_topics, 0, out);
}
