/* out.c — output files written to a temporary name and renamed into place,
 * and RFC 4180 CSV rows (see pm_out.h). */
#include "pm_out.h"
#include "../engine/pm_alloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct pm_outfile {
    FILE *f;
    char *path;   /* target; NULL for stdout */
    char *tmp;    /* temporary beside it */
};

int pm_outfile_open(pm_ctx *ctx, const char *path, pm_outfile **out)
{
    *out = NULL;
    pm_outfile *of = pm_calloc(1, sizeof *of);
    if (!of)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory opening %s", path);
    if (strcmp(path, "-") == 0) {
        of->f = stdout;
        *out = of;
        return PM_OK;
    }
    size_t len = strlen(path);
    of->path = pm_strdup(path);
    of->tmp = pm_malloc(len + sizeof ".tmp.XXXXXX");
    if (!of->path || !of->tmp) {
        pm_outfile_abort(of);
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory opening %s", path);
    }
    memcpy(of->tmp, path, len);
    memcpy(of->tmp + len, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
    int fd = mkstemp(of->tmp);
    if (fd < 0) {
        int e = errno;
        pm_free(of->tmp);
        of->tmp = NULL;
        pm_outfile_abort(of);
        return PM_ERR(ctx, PM_E_IO, "cannot create %s: %s", path, strerror(e));
    }
    /* mkstemp makes 0600; output files are ordinary files (0644 less umask). */
    mode_t um = umask(0);
    umask(um);
    fchmod(fd, 0666 & ~um);
    of->f = fdopen(fd, "w");
    if (!of->f) {
        int e = errno;
        close(fd);
        pm_outfile_abort(of);
        return PM_ERR(ctx, PM_E_IO, "cannot write %s: %s", path, strerror(e));
    }
    *out = of;
    return PM_OK;
}

FILE *pm_outfile_stream(pm_outfile *of) { return of->f; }

int pm_outfile_commit(pm_ctx *ctx, pm_outfile *of)
{
    if (!of->path) { /* stdout */
        int bad = fflush(of->f) != 0 || ferror(of->f);
        pm_free(of);
        return bad ? PM_ERR(ctx, PM_E_IO, "error writing to standard output") : PM_OK;
    }
    int bad = fflush(of->f) != 0 || ferror(of->f) || fsync(fileno(of->f)) != 0;
    int e = errno;
    if (fclose(of->f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    of->f = NULL;
    if (bad) {
        int rc = PM_ERR(ctx, PM_E_IO, "error writing %s: %s", of->path, strerror(e));
        pm_outfile_abort(of);
        return rc;
    }
    if (rename(of->tmp, of->path) != 0) {
        e = errno;
        int rc = PM_ERR(ctx, PM_E_IO, "cannot rename %s to %s: %s", of->tmp, of->path, strerror(e));
        pm_outfile_abort(of);
        return rc;
    }
    pm_free(of->tmp);
    pm_free(of->path);
    pm_free(of);
    return PM_OK;
}

void pm_outfile_abort(pm_outfile *of)
{
    if (!of)
        return;
    if (of->f && of->f != stdout)
        fclose(of->f);
    if (of->tmp)
        unlink(of->tmp);
    pm_free(of->tmp);
    pm_free(of->path);
    pm_free(of);
}

void pm_csv_write_row(FILE *f, char delim, size_t n, const char *const *fields)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            putc(delim, f);
        const char *s = fields[i] ? fields[i] : "";
        const char special[] = {delim, '"', '\r', '\n', '\0'};
        if (!s[strcspn(s, special)]) {
            fputs(s, f);
            continue;
        }
        putc('"', f);
        for (; *s; s++) {
            if (*s == '"')
                putc('"', f);
            putc(*s, f);
        }
        putc('"', f);
    }
    putc('\n', f);
}
