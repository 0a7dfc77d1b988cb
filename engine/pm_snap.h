/* pm_snap.h — a snapshot file of sections: arrays written as they are in
 * memory and read back in place, from a read-only mapping (the page
 * cache's pages: no parsing, no copy), so that a large dataset opens in
 * the time its checksums take.
 *
 * A file is a 4096-byte header — magic (8 bytes, the caller's), version,
 * the section count, the file size, a table of up to PM_SNAP_MAX_SECTIONS
 * entries (a four-letter tag, the element size, offset, length and XXH3-64
 * of each section's bytes) and the XXH3-64 of the header itself — then the
 * sections, each starting on a multiple of 64 bytes.  All little-endian:
 * the arrays are the host's own, so a big-endian host refuses to write or
 * read one.  docs/dataset.md has the layout and what the map's dataset
 * puts in it.
 *
 * The writer writes to a temporary name and renames on commit (pm_out.h),
 * so a reader never sees half a file.  The reader checks the header whole
 * at open and a section's length and checksum when it is first asked for
 * it; what a section's values mean is for its owner to check.  Errors name
 * the file and the section's tag. */
#ifndef PM_SNAP_H
#define PM_SNAP_H

#include "pm_ctx.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PM_SNAP_MAX_SECTIONS 120
/* A tag from four characters, as in PM_SNAP_TAG('c','L','O','N'). */
#define PM_SNAP_TAG(a, b, c, d)                                                             \
    ((uint32_t)(unsigned char)(a) | (uint32_t)(unsigned char)(b) << 8 |                     \
     (uint32_t)(unsigned char)(c) << 16 | (uint32_t)(unsigned char)(d) << 24)

/* The whole file, mapped read-only (a private mapping: the page cache's
 * pages, no copy, no fresh memory); unmap with pm_file_unmap().  An empty
 * file is an empty buffer.  Snapshots are replaced by renaming, never in
 * place, so a file cannot shrink under its mapping while it is read (one
 * truncated in place by someone else meanwhile would raise SIGBUS, as under
 * any reader that maps).  PM_E_IO naming the file. */
int pm_file_map(pm_ctx *ctx, const char *path, const unsigned char **data, size_t *size);
void pm_file_unmap(const unsigned char *data, size_t size);

/* Little-endian fields of `bytes` bytes (1 to 8), as both snapshot formats
 * store their headers. */
static inline void pm_le_put(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint64_t pm_le_get(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(&v, p, (size_t)bytes);   /* one load where bytes is a constant */
#else
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
#endif
    return v;
}

/* ---- writing ------------------------------------------------------------------ */

typedef struct pm_snap_writer pm_snap_writer;

/* Starts a snapshot for path (written under a temporary name until
 * pm_snap_writer_commit).  PM_E_IO if it cannot be created. */
int pm_snap_writer_new(pm_ctx *ctx, const char *path, const char magic[8], uint32_t version,
                       pm_snap_writer **out);
/* Appends a section of n elements of elem bytes (p may be NULL when n is
 * 0).  PM_E_USAGE for a tag already written or one section too many;
 * PM_E_IO when the disk refuses.  After an error every later call fails
 * the same way (the status is sticky) and the commit removes the file. */
int pm_snap_put(pm_ctx *ctx, pm_snap_writer *w, uint32_t tag, const void *p, size_t elem, size_t n);
/* A section written in pieces: begin, any number of appends, end. */
int pm_snap_begin(pm_ctx *ctx, pm_snap_writer *w, uint32_t tag, size_t elem);
int pm_snap_append(pm_ctx *ctx, pm_snap_writer *w, const void *p, size_t bytes);
int pm_snap_end(pm_ctx *ctx, pm_snap_writer *w);
/* Writes the header and renames the file into place; frees w either way.
 * On an earlier error, returns it and leaves no file. */
int pm_snap_writer_commit(pm_ctx *ctx, pm_snap_writer *w);
/* Abandons the snapshot (the temporary file is removed); NULL is fine. */
void pm_snap_writer_free(pm_snap_writer *w);

/* ---- reading ------------------------------------------------------------------ */

typedef struct pm_snap pm_snap;

/* Maps path and checks its header: the magic, the version, the size, the
 * header's checksum, and that every section lies in the file, aligned,
 * after the header and apart from the others.  PM_E_IO when it cannot be
 * read; PM_E_INPUT when it is not such a snapshot or is damaged
 * ("F: not a problemap dataset", "F: damaged: ..."). */
int pm_snap_open(pm_ctx *ctx, const char *path, const char magic[8], uint32_t version,
                 pm_snap **out);
void pm_snap_free(pm_snap *s);
const char *pm_snap_path(const pm_snap *s);

/* Section tag: its data, borrowed for the snapshot's life, and its count
 * of elements.  Checks that it is there, that its elements are elem bytes,
 * and (on the first call for it) its checksum: PM_E_INPUT naming
 * the tag otherwise.  With want != SIZE_MAX, the count must be want.  Not
 * thread-safe on a section's first use. */
int pm_snap_section(pm_ctx *ctx, pm_snap *s, uint32_t tag, size_t elem, size_t want,
                    const void **data, size_t *count);

/* A damaged-file error on s naming the section (for owners checking the
 * values): "F: damaged: section 'cTOP': ..." as PM_E_INPUT. */
int pm_snap_damaged(pm_ctx *ctx, const pm_snap *s, uint32_t tag, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
