/* test_out.c — output files (temporary name, rename) and CSV rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../engine/pm_alloc.h"
#include "../../geodata/pm_out.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

static char dir[] = "/tmp/pm_test_out_XXXXXX";

static int files_in_dir(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void commit_replaces_target_atomically(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    char path[128];
    snprintf(path, sizeof path, "%s/a.csv", dir);
    FILE *f = fopen(path, "w");
    fputs("old\n", f);
    fclose(f);
    pm_outfile *of;
    assert_int_equal(pm_outfile_open(ctx, path, &of), PM_OK);
    fputs("new\n", pm_outfile_stream(of));
    assert_string_equal(slurp(path), "old\n"); /* untouched until commit */
    assert_int_equal(files_in_dir(), 2);      /* target + temporary */
    assert_int_equal(pm_outfile_commit(ctx, of), PM_OK);
    assert_string_equal(slurp(path), "new\n");
    assert_int_equal(files_in_dir(), 1);
    unlink(path);
    pm_ctx_free(ctx);
}

static void abort_leaves_previous_file_and_no_temporary(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    char path[128];
    snprintf(path, sizeof path, "%s/b.csv", dir);
    FILE *f = fopen(path, "w");
    fputs("keep\n", f);
    fclose(f);
    pm_outfile *of;
    assert_int_equal(pm_outfile_open(ctx, path, &of), PM_OK);
    fputs("half-writ", pm_outfile_stream(of));
    pm_outfile_abort(of);
    assert_string_equal(slurp(path), "keep\n");
    assert_int_equal(files_in_dir(), 1);
    unlink(path);
    pm_ctx_free(ctx);
}

static void full_disk_is_an_error_and_keeps_previous_file(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    char path[128];
    snprintf(path, sizeof path, "%s/c.csv", dir);
    FILE *f = fopen(path, "w");
    fputs("previous\n", f);
    fclose(f);
    /* RLIMIT_FSIZE stands in for a full disk: writes past 4 KiB fail. */
    struct rlimit old, lim = {4096, 4096};
    getrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_IGN);
    lim.rlim_max = old.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    pm_outfile *of;
    assert_int_equal(pm_outfile_open(ctx, path, &of), PM_OK);
    for (int i = 0; i < 10000; i++)
        fputs("0123456789", pm_outfile_stream(of));
    int rc = pm_outfile_commit(ctx, of);
    setrlimit(RLIMIT_FSIZE, &old);
    assert_int_equal(rc, PM_E_IO);
    assert_non_null(strstr(pm_ctx_errmsg(ctx), path));
    assert_string_equal(slurp(path), "previous\n");
    assert_int_equal(files_in_dir(), 1);
    unlink(path);
    pm_ctx_free(ctx);
}

static void missing_directory_names_the_file(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    pm_outfile *of;
    assert_int_equal(pm_outfile_open(ctx, "/nonexistent/dir/x.csv", &of), PM_E_IO);
    assert_non_null(strstr(pm_ctx_errmsg(ctx), "/nonexistent/dir/x.csv"));
    assert_null(of);
    pm_ctx_free(ctx);
}

/* A device (or FIFO) is written in place: renaming a temporary over it
 * would replace the device node (as root, --output /dev/null used to). */
static void a_device_is_written_in_place(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    pm_outfile *of;
    assert_int_equal(pm_outfile_open(ctx, "/dev/null", &of), PM_OK);
    fputs("nothing\n", pm_outfile_stream(of));
    assert_int_equal(pm_outfile_commit(ctx, of), PM_OK);
    struct stat st;
    assert_int_equal(stat("/dev/null", &st), 0);
    assert_true(S_ISCHR(st.st_mode));
    pm_ctx_free(ctx);
}

/* A killed run's temporary (target.tmp. + six characters) goes when the
 * target is next opened; other files that look alike stay. */
static void stale_temporaries_of_the_target_are_removed(void **state)
{
    (void)state;
    pm_ctx *ctx = pm_ctx_new();
    char path[128], stale[160], other[160], longer[160];
    snprintf(path, sizeof path, "%s/x.csv", dir);
    snprintf(stale, sizeof stale, "%s.tmp.ABC123", path);
    snprintf(longer, sizeof longer, "%s.tmp.toolong", path);
    snprintf(other, sizeof other, "%s/y.csv.tmp.ABC123", dir);
    const char *const made[3] = {stale, longer, other};
    for (int i = 0; i < 3; i++) {
        FILE *f = fopen(made[i], "w");
        assert_non_null(f);
        fclose(f);
    }
    pm_outfile *of;
    assert_int_equal(pm_outfile_open(ctx, path, &of), PM_OK);
    assert_int_equal(access(stale, F_OK), -1);
    assert_int_equal(access(longer, F_OK), 0);
    assert_int_equal(access(other, F_OK), 0);
    assert_int_equal(pm_outfile_commit(ctx, of), PM_OK);
    unlink(path);
    unlink(longer);
    unlink(other);
    assert_int_equal(files_in_dir(), 0);
    pm_ctx_free(ctx);
}

static void csv_row_quotes_only_when_needed(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    const char *row[] = {"plain", "a,b", "say \"hi\"", "two\nlines", NULL, "Ёлка;"};
    pm_csv_write_row(f, ',', 6, row);
    pm_csv_write_row(f, ';', 6, row);
    fclose(f);
    assert_string_equal(buf, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",,Ёлка;\n"
                             "plain;a,b;\"say \"\"hi\"\"\";\"two\nlines\";;\"Ёлка;\"\n");
    free(buf);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(commit_replaces_target_atomically),
        cmocka_unit_test(abort_leaves_previous_file_and_no_temporary),
        cmocka_unit_test(full_disk_is_an_error_and_keeps_previous_file),
        cmocka_unit_test(missing_directory_names_the_file),
        cmocka_unit_test(a_device_is_written_in_place),
        cmocka_unit_test(stale_temporaries_of_the_target_are_removed),
        cmocka_unit_test(csv_row_quotes_only_when_needed),
    };
    return cmocka_run_group_tests_name("out", tests, setup, teardown);
}
