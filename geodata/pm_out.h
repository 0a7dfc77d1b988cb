/* pm_out.h — writing output files safely, and CSV rows.
 *
 * No output file is ever left half-written: pm_outfile_open() writes to a
 * temporary file beside the target (same directory, so rename is atomic),
 * pm_outfile_commit() flushes, fsyncs and renames it over the target, and
 * pm_outfile_abort() removes it.  "-" writes to stdout directly.
 */
#ifndef PM_OUT_H
#define PM_OUT_H

#include "../engine/pm_ctx.h"
#include <stddef.h>
#include <stdio.h>

typedef struct pm_outfile pm_outfile;

int pm_outfile_open(pm_ctx *ctx, const char *path, pm_outfile **out);
/* The stream to write to (borrowed). */
FILE *pm_outfile_stream(pm_outfile *of);
/* Flush, check for write errors (PM_E_IO naming the file), rename into
 * place; frees of in every case. */
int pm_outfile_commit(pm_ctx *ctx, pm_outfile *of);
/* Drop the temporary file; frees of.  NULL is fine. */
void pm_outfile_abort(pm_outfile *of);

/* Writes one CSV row of n fields (RFC 4180: a field with the delimiter, a
 * quote, CR or LF is quoted, quotes doubled; NULL is empty), ending in LF. */
void pm_csv_write_row(FILE *f, char delim, size_t n, const char *const *fields);

#endif
