/* out.c — output files written to a temporary name and renamed into place,
 * and RFC 4180 CSV rows (see pm_out.h).
 *
 * Two cases bypass the temporary: "-" (stdout) and a target that exists and
 * is not a regular file (/dev/null, a FIFO, a terminal), which is opened
 * and written directly — renaming over it would replace a device node
 * (as root, `--output /dev/null` used to turn /dev/null into a file).
 * Temporaries <target>.tmp.XXXXXX left by a killed run are removed by the
 * next open of the same target. */
#include "pm_out.h"
#include "../engine/pm_alloc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct pm_outfile {
    FILE *f;
    char *path;   /* target; NULL for stdout */
    char *tmp;    /* temporary beside it; NULL when written directly */
};

#define TMP_SUFFIX ".tmp.XXXXXX"

/* name is base + ".tmp." + six letters or digits (mkstemp's). */
static int is_temp_of(const char *name, const char *base, size_t base_len)
{
    if (strncmp(name, base, base_len) != 0 || strncmp(name + base_len, ".tmp.", 5) != 0)
        return 0;
    const char *rest = name + base_len + 5;
    if (strlen(rest) != 6)
        return 0;
    for (; *rest; rest++)
        if (!isalnum((unsigned char)*rest))
            return 0;
    return 1;
}

/* Removes the temporaries of target left beside it by a killed run
 * (tmp is a buffer of strlen(target) + sizeof TMP_SUFFIX bytes). */
static void remove_stale(pm_ctx *ctx, const char *target, char *tmp)
{
    const char *slash = strrchr(target, '/');
    const char *base = slash ? slash + 1 : target;
    size_t dir_len = (size_t)(base - target), base_len = strlen(base);
    memcpy(tmp, target, dir_len);
    tmp[dir_len] = '\0';
    DIR *d = opendir(dir_len ? tmp : ".");
    if (!d)
        return; /* a missing directory is reported when the temporary is made */
    for (struct dirent *e; (e = readdir(d));) {
        if (!is_temp_of(e->d_name, base, base_len))
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            pm_ctx_log(ctx, PM_LOG_INFO, "removed %.*s%s, left by an earlier run", (int)dir_len,
                       target, e->d_name);
    }
    closedir(d);
}

/* A target that exists and is not a regular file is written in place. */
static int open_direct(pm_ctx *ctx, pm_outfile *of)
{
    of->f = fopen(of->path, "w");
    if (!of->f) {
        int e = errno;
        pm_outfile_abort(of);
        return PM_ERR(ctx, PM_E_IO, "cannot write %s: %s", of->path, strerror(e));
    }
    return PM_OK;
}

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
    of->tmp = pm_malloc(len + sizeof TMP_SUFFIX);
    if (!of->path || !of->tmp) {
        pm_outfile_abort(of);
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory opening %s", path);
    }
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        pm_free(of->tmp);
        of->tmp = NULL;
        int rc = open_direct(ctx, of);
        *out = rc ? NULL : of;
        return rc;
    }
    remove_stale(ctx, path, of->tmp);
    memcpy(of->tmp, path, len);
    memcpy(of->tmp + len, TMP_SUFFIX, sizeof TMP_SUFFIX);
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
    /* fsync only what is renamed into place (it fails on /dev/null). */
    int bad = fflush(of->f) != 0 || ferror(of->f) || (of->tmp && fsync(fileno(of->f)) != 0);
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
    if (of->tmp && rename(of->tmp, of->path) != 0) {
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
