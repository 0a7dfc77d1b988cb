/* snap.c — snapshot files of sections (see pm_snap.h), and the read-only
 * file mapping that both snapshot readers (this one and the cube's) use.
 *
 * Header (HEADER_SIZE bytes, little-endian):
 *    0  magic (8 bytes)          8  version (u32)     12  section count (u32)
 *   16  file size (u64)         24  the section table, TABLE_ENTRY bytes each:
 *       tag (u32), element size (u32), offset (u64), length (u64), XXH3-64 (u64)
 *   HEADER_HASH_AT  XXH3-64 of the bytes before it
 * then zeros to HEADER_SIZE; sections follow, each on a multiple of ALIGN. */
#include "pm_snap.h"
#include "pm_alloc.h"
#include "../geodata/pm_out.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define TABLE_AT 24
#define TABLE_ENTRY 32
#define HEADER_HASH_AT (TABLE_AT + PM_SNAP_MAX_SECTIONS * TABLE_ENTRY)
#define HEADER_SIZE 4096
#define ALIGN 64

_Static_assert(HEADER_HASH_AT + 8 <= HEADER_SIZE, "the section table fits the header");

typedef struct entry {
    uint32_t tag, elem;
    uint64_t off, len, hash;
} entry;

static int host_little_endian(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

/* A tag for messages: its four characters, or '?' for one not printable. */
static void tag_name(uint32_t tag, char out[5])
{
    for (int i = 0; i < 4; i++) {
        unsigned char c = (unsigned char)(tag >> (8 * i));
        out[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    out[4] = 0;
}

/* ---- mapping -------------------------------------------------------------------- */

int pm_file_map(pm_ctx *ctx, const char *path, const unsigned char **data, size_t *size)
{
    static const unsigned char empty[1];
    *data = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);   /* a FIFO must not hang us */
    if (fd < 0)
        return PM_ERR(ctx, PM_E_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    int rc = PM_OK;
    if (fstat(fd, &sb) != 0) {
        rc = PM_ERR(ctx, PM_E_IO, "cannot read %s: %s", path, strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
        rc = PM_ERR(ctx, PM_E_IO, "cannot read %s: not a regular file", path);
    } else if ((uintmax_t)sb.st_size > SIZE_MAX / 2) {
        rc = PM_ERR(ctx, PM_E_NOMEM, "%s is too large (%jd bytes)", path, (intmax_t)sb.st_size);
    } else if (sb.st_size == 0) {
        *data = empty;
    } else {
        void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED)
            rc = PM_ERR(ctx, errno == ENOMEM ? PM_E_NOMEM : PM_E_IO, "cannot map %s: %s", path,
                        strerror(errno));
        else
            *data = m;
    }
    close(fd);
    if (rc == PM_OK)
        *size = (size_t)sb.st_size;
    return rc;
}

void pm_file_unmap(const unsigned char *data, size_t size)
{
    if (size)
        munmap((void *)data, size);
}

/* ---- writing ---------------------------------------------------------------------- */

struct pm_snap_writer {
    pm_outfile *of;
    FILE *f;
    const char *path;            /* the caller's, for messages */
    unsigned char magic[8];
    uint32_t version;
    entry sec[PM_SNAP_MAX_SECTIONS];
    uint32_t n;
    int open;                    /* a section begun and not ended */
    uint64_t pos;
    XXH3_state_t *xs;
    int failed;                  /* sticky: the first error's code */
};

static int w_fail(pm_ctx *ctx, pm_snap_writer *w, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int w_fail(pm_ctx *ctx, pm_snap_writer *w, int code, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (!w->failed)
        w->failed = code;
    return PM_ERR(ctx, code, "writing %s: %s", w->path, what);
}

/* The sticky status, as an error in ctx. */
static int w_status(pm_ctx *ctx, pm_snap_writer *w)
{
    return w->failed ? PM_ERR(ctx, w->failed, "writing %s: an earlier step failed", w->path)
                     : PM_OK;
}

static int w_write(pm_ctx *ctx, pm_snap_writer *w, const void *p, size_t n)
{
    if (n && fwrite(p, 1, n, w->f) != n)
        return w_fail(ctx, w, PM_E_IO, "%s", strerror(errno));
    w->pos += n;
    return PM_OK;
}

static int w_pad(pm_ctx *ctx, pm_snap_writer *w)
{
    static const unsigned char zeros[ALIGN];
    size_t k = (size_t)((ALIGN - w->pos % ALIGN) % ALIGN);
    return w_write(ctx, w, zeros, k);
}

int pm_snap_writer_new(pm_ctx *ctx, const char *path, const char magic[8], uint32_t version,
                       pm_snap_writer **out)
{
    *out = NULL;
    if (!host_little_endian())
        return PM_ERR(ctx, PM_E_USAGE, "%s: snapshots are little-endian; this machine is not", path);
    if (strcmp(path, "-") == 0)
        return PM_ERR(ctx, PM_E_USAGE, "a snapshot is written to a file, not to standard output");
    pm_snap_writer *w = pm_calloc(1, sizeof *w);
    if (!w || !(w->xs = XXH3_createState())) {
        pm_free(w);
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory writing %s", path);
    }
    w->path = path;
    memcpy(w->magic, magic, 8);
    w->version = version;
    int rc = pm_outfile_open(ctx, path, &w->of);
    if (rc == PM_OK) {
        static const unsigned char zeros[HEADER_SIZE];   /* the header's room */
        w->f = pm_outfile_stream(w->of);
        rc = w_write(ctx, w, zeros, sizeof zeros);
    }
    if (rc != PM_OK) {
        pm_snap_writer_free(w);
        return rc;
    }
    *out = w;
    return PM_OK;
}

int pm_snap_begin(pm_ctx *ctx, pm_snap_writer *w, uint32_t tag, size_t elem)
{
    int rc = w_status(ctx, w);
    if (rc != PM_OK)
        return rc;
    char name[5];
    tag_name(tag, name);
    if (w->open)
        return w_fail(ctx, w, PM_E_USAGE, "section '%s' begun inside another", name);
    if (w->n == PM_SNAP_MAX_SECTIONS)
        return w_fail(ctx, w, PM_E_USAGE, "more than %d sections", PM_SNAP_MAX_SECTIONS);
    if (elem == 0 || elem > UINT32_MAX)
        return w_fail(ctx, w, PM_E_USAGE, "section '%s': element size %zu", name, elem);
    for (uint32_t i = 0; i < w->n; i++)
        if (w->sec[i].tag == tag)
            return w_fail(ctx, w, PM_E_USAGE, "section '%s' written twice", name);
    w->sec[w->n] = (entry){tag, (uint32_t)elem, w->pos, 0, 0};
    w->open = 1;
    XXH3_64bits_reset(w->xs);
    return PM_OK;
}

int pm_snap_append(pm_ctx *ctx, pm_snap_writer *w, const void *p, size_t bytes)
{
    int rc = w_status(ctx, w);
    if (rc == PM_OK && !w->open)
        rc = w_fail(ctx, w, PM_E_USAGE, "bytes outside a section");
    if (rc == PM_OK && bytes) {
        XXH3_64bits_update(w->xs, p, bytes);
        rc = w_write(ctx, w, p, bytes);
    }
    return rc;
}

int pm_snap_end(pm_ctx *ctx, pm_snap_writer *w)
{
    int rc = w_status(ctx, w);
    if (rc != PM_OK)
        return rc;
    if (!w->open)
        return w_fail(ctx, w, PM_E_USAGE, "a section ended that was not begun");
    entry *e = &w->sec[w->n];
    e->len = w->pos - e->off;
    if (e->len % e->elem) {
        char name[5];
        tag_name(e->tag, name);
        return w_fail(ctx, w, PM_E_USAGE, "section '%s': %" PRIu64 " bytes, not whole elements "
                      "of %" PRIu32, name, e->len, e->elem);
    }
    e->hash = XXH3_64bits_digest(w->xs);
    w->open = 0;
    w->n++;
    return w_pad(ctx, w);
}

int pm_snap_put(pm_ctx *ctx, pm_snap_writer *w, uint32_t tag, const void *p, size_t elem, size_t n)
{
    if (elem && n > SIZE_MAX / elem)
        return w_fail(ctx, w, PM_E_USAGE, "a section of %zu elements of %zu bytes", n, elem);
    int rc = pm_snap_begin(ctx, w, tag, elem);
    if (rc == PM_OK)
        rc = pm_snap_append(ctx, w, p, n * elem);
    return rc == PM_OK ? pm_snap_end(ctx, w) : rc;
}

static void encode_header(const pm_snap_writer *w, unsigned char *h)
{
    memset(h, 0, HEADER_SIZE);
    memcpy(h, w->magic, 8);
    pm_le_put(h + 8, w->version, 4);
    pm_le_put(h + 12, w->n, 4);
    pm_le_put(h + 16, w->pos, 8);
    for (uint32_t i = 0; i < w->n; i++) {
        unsigned char *t = h + TABLE_AT + (size_t)i * TABLE_ENTRY;
        pm_le_put(t, w->sec[i].tag, 4);
        pm_le_put(t + 4, w->sec[i].elem, 4);
        pm_le_put(t + 8, w->sec[i].off, 8);
        pm_le_put(t + 16, w->sec[i].len, 8);
        pm_le_put(t + 24, w->sec[i].hash, 8);
    }
    pm_le_put(h + HEADER_HASH_AT, XXH3_64bits(h, HEADER_HASH_AT), 8);
}

int pm_snap_writer_commit(pm_ctx *ctx, pm_snap_writer *w)
{
    int rc = w_status(ctx, w);
    if (rc == PM_OK && w->open)
        rc = w_fail(ctx, w, PM_E_USAGE, "a section was not ended");
    unsigned char *h = rc == PM_OK ? pm_malloc(HEADER_SIZE) : NULL;
    if (rc == PM_OK && !h)
        rc = PM_ERR(ctx, PM_E_NOMEM, "out of memory writing %s", w->path);
    if (rc == PM_OK) {
        encode_header(w, h);
        if (fseek(w->f, 0, SEEK_SET) != 0 || fwrite(h, 1, HEADER_SIZE, w->f) != HEADER_SIZE)
            rc = PM_ERR(ctx, PM_E_IO, "writing %s: %s", w->path, strerror(errno));
    }
    pm_free(h);
    if (rc == PM_OK) {
        rc = pm_outfile_commit(ctx, w->of);
        w->of = NULL;
    }
    pm_snap_writer_free(w);
    return rc;
}

void pm_snap_writer_free(pm_snap_writer *w)
{
    if (!w)
        return;
    pm_outfile_abort(w->of);
    XXH3_freeState(w->xs);
    pm_free(w);
}

/* ---- reading ---------------------------------------------------------------------- */

struct pm_snap {
    char *path;
    const unsigned char *p;
    size_t size;
    entry sec[PM_SNAP_MAX_SECTIONS];
    unsigned char checked[PM_SNAP_MAX_SECTIONS];
    uint32_t n;
};

static int damaged(pm_ctx *ctx, const char *path, const char *what)
{
    return PM_ERR(ctx, PM_E_INPUT, "%s: damaged: %s", path, what);
}

/* By offset, an empty section before one that starts where it does (the
 * writer puts the next section right there). */
static int cmp_entry_off(const void *a, const void *b)
{
    const entry *x = *(const entry *const *)a, *y = *(const entry *const *)b;
    if (x->off != y->off)
        return (x->off > y->off) - (x->off < y->off);
    return (x->len > y->len) - (x->len < y->len);
}

/* The header's frame and table (see the top of the file). */
static int check_header(pm_ctx *ctx, pm_snap *s, const char magic[8], uint32_t version)
{
    const unsigned char *h = s->p;
    const char *path = s->path;
    if (s->size < HEADER_SIZE || memcmp(h, magic, 8) != 0)
        return PM_ERR(ctx, PM_E_INPUT, "%s: not a problemap snapshot of this kind (no '%.6s' "
                      "header)", path, magic);
    uint32_t v = (uint32_t)pm_le_get(h + 8, 4);
    if (v != version)
        return PM_ERR(ctx, PM_E_INPUT, "%s: version %" PRIu32 "; this problemap reads version "
                      "%" PRIu32 " (write it again)", path, v, version);
    if (pm_le_get(h + HEADER_HASH_AT, 8) != XXH3_64bits(h, HEADER_HASH_AT))
        return damaged(ctx, path, "the header's checksum does not match");
    if (pm_le_get(h + 16, 8) != s->size)
        return PM_ERR(ctx, PM_E_INPUT, "%s: damaged: %zu bytes where the header says %" PRIu64
                      " (cut short, or written over?)", path, s->size, pm_le_get(h + 16, 8));
    s->n = (uint32_t)pm_le_get(h + 12, 4);
    if (s->n > PM_SNAP_MAX_SECTIONS)
        return damaged(ctx, path, "too many sections");
    const entry *by_off[PM_SNAP_MAX_SECTIONS];
    for (uint32_t i = 0; i < s->n; i++) {
        const unsigned char *t = h + TABLE_AT + (size_t)i * TABLE_ENTRY;
        entry *e = &s->sec[i];
        *e = (entry){(uint32_t)pm_le_get(t, 4), (uint32_t)pm_le_get(t + 4, 4), pm_le_get(t + 8, 8),
                     pm_le_get(t + 16, 8), pm_le_get(t + 24, 8)};
        if (e->elem == 0 || e->off % ALIGN || e->off < HEADER_SIZE || e->off > s->size ||
            e->len > s->size - e->off || e->len % e->elem)
            return damaged(ctx, path, "a section lies outside the file or is not aligned");
        for (uint32_t j = 0; j < i; j++)
            if (s->sec[j].tag == e->tag)
                return damaged(ctx, path, "a section is there twice");
        by_off[i] = e;
    }
    qsort(by_off, s->n, sizeof *by_off, cmp_entry_off);
    for (uint32_t i = 1; i < s->n; i++)
        if (by_off[i]->off < by_off[i - 1]->off + by_off[i - 1]->len)
            return damaged(ctx, path, "two sections overlap");
    return PM_OK;
}

int pm_snap_open(pm_ctx *ctx, const char *path, const char magic[8], uint32_t version,
                 pm_snap **out)
{
    *out = NULL;
    if (!host_little_endian())
        return PM_ERR(ctx, PM_E_USAGE, "%s: snapshots are little-endian; this machine is not", path);
    pm_snap *s = pm_calloc(1, sizeof *s);
    if (!s || !(s->path = pm_strdup(path))) {
        pm_free(s);
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory reading %s", path);
    }
    int rc = pm_file_map(ctx, path, &s->p, &s->size);
    if (rc == PM_OK)
        rc = check_header(ctx, s, magic, version);
    if (rc != PM_OK) {
        pm_snap_free(s);
        return rc;
    }
    *out = s;
    return PM_OK;
}

void pm_snap_free(pm_snap *s)
{
    if (!s)
        return;
    if (s->p)
        pm_file_unmap(s->p, s->size);
    pm_free(s->path);
    pm_free(s);
}

const char *pm_snap_path(const pm_snap *s) { return s->path; }

int pm_snap_damaged(pm_ctx *ctx, const pm_snap *s, uint32_t tag, const char *fmt, ...)
{
    char what[256], name[5];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    tag_name(tag, name);
    return PM_ERR(ctx, PM_E_INPUT, "%s: damaged: section '%s': %s", s->path, name, what);
}

int pm_snap_section(pm_ctx *ctx, pm_snap *s, uint32_t tag, size_t elem, size_t want,
                    const void **data, size_t *count)
{
    *data = NULL;
    if (count)
        *count = 0;
    uint32_t i = 0;
    while (i < s->n && s->sec[i].tag != tag)
        i++;
    if (i == s->n)
        return pm_snap_damaged(ctx, s, tag, "missing");
    const entry *e = &s->sec[i];
    if (e->elem != elem)
        return pm_snap_damaged(ctx, s, tag, "elements of %" PRIu32 " bytes, not %zu", e->elem, elem);
    size_t n = (size_t)(e->len / e->elem);
    if (want != SIZE_MAX && n != want)
        return pm_snap_damaged(ctx, s, tag, "%zu elements where %zu belong", n, want);
    if (!s->checked[i]) {
        if (XXH3_64bits(s->p + e->off, (size_t)e->len) != e->hash)
            return pm_snap_damaged(ctx, s, tag, "its checksum does not match");
        s->checked[i] = 1;
    }
    *data = s->p + e->off;
    if (count)
        *count = n;
    return PM_OK;
}
