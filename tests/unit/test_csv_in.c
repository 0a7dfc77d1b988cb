/* test_csv_in.c — the CSV reader (pm_csv_read), pm_record_get, format
 * names and pm_records_read_path on CSV inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../engine/pm_alloc.h"
#include "../../geodata/pm_record.h"
#include "record_collect.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURES "tests/fixtures/records/"
#define NYC_SAMPLE "../shared/data/nyc311_sample_2011.csv"



static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* An input stream holding s (n bytes, NULs allowed). */
static FILE *mem(const char *s, size_t n)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(fwrite(s, 1, n, f), n);
    rewind(f);
    return f;
}

/* Reads CSV text s into c; returns the status. */
static int read_csv_n(pm_ctx *ctx, const char *s, size_t n, char delim, collected *c,
                      char *delim_out)
{
    pm_record_sink sink = {on_record, on_reject, c};
    FILE *f = mem(s, n);
    int st = pm_csv_read(ctx, f, "test.csv", delim, &sink, delim_out);
    fclose(f);
    return st;
}

static int read_csv(pm_ctx *ctx, const char *s, collected *c)
{
    return read_csv_n(ctx, s, strlen(s), 0, c, NULL);
}

static int setup(void **state)
{
    *state = pm_ctx_new();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    pm_ctx_free(*state);
    return 0;
}

/* ---- quoting, line endings, delimiters ---- */

static void quoted_fields_keep_delimiters_quotes_and_newlines(void **state)
{
    collected c = {0};
    assert_int_equal(read_csv(*state, "id,text,n\n"
                                      "1,\"a, b\",2\n"
                                      "2,\"say \"\"hi\"\"\",3\n"
                                      "3,\"two\nlines\",4\n"
                                      "4,x,5\n",
                              &c),
                     PM_OK);
    assert_int_equal(c.nrec, 4);
    assert_string_equal(c.recs[0], "L2 id=1|text=a, b|n=2");
    assert_string_equal(c.recs[1], "L3 id=2|text=say \"hi\"|n=3");
    assert_string_equal(c.recs[2], "L4 id=3|text=two\nlines|n=4");
    assert_string_equal(c.recs[3], "L6 id=4|text=x|n=5"); /* line 5 was inside the quotes */
    assert_int_equal(c.nrej, 0);
    collected_free(&c);
}

static void crlf_line_ends_are_removed_but_quoted_crlf_kept(void **state)
{
    collected c = {0};
    assert_int_equal(read_csv(*state, "a,b\r\n1,2\r\n3,\"x\r\ny\"\r\n5,6", &c), PM_OK);
    assert_int_equal(c.nrec, 3);
    assert_string_equal(c.recs[0], "L2 a=1|b=2");
    assert_string_equal(c.recs[1], "L3 a=3|b=x\r\ny");
    assert_string_equal(c.recs[2], "L5 a=5|b=6"); /* last line without a newline */
    collected_free(&c);
}

static void bom_is_stripped(void **state)
{
    collected c = {0};
    assert_int_equal(read_csv(*state, "\xEF\xBB\xBFid,name\n1,x\n", &c), PM_OK);
    assert_string_equal(c.recs[0], "L2 id=1|name=x");
    collected_free(&c);
}

static void semicolon_is_detected_from_header(void **state)
{
    collected c = {0};
    char d = 0;
    const char *s = "id;name;lat\n1;\"a;b\",c;55,1\n";
    assert_int_equal(read_csv_n(*state, s, strlen(s), 0, &c, &d), PM_OK);
    assert_int_equal(d, ';');
    assert_string_equal(c.recs[0], "L2 id=1|name=a;b,c|lat=55,1");
    collected_free(&c);
}

static void tab_is_detected_and_ties_go_to_comma(void **state)
{
    collected c = {0};
    char d = 0;
    const char *tsv = "id\tname\t\"x,y;z\"\n1\ta\tb\n";
    assert_int_equal(read_csv_n(*state, tsv, strlen(tsv), 0, &c, &d), PM_OK);
    assert_int_equal(d, '\t');
    assert_string_equal(c.recs[0], "L2 id=1|name=a|x,y;z=b");
    collected_free(&c);
    const char *tie = "a;b,c\n1;2,3\n";
    assert_int_equal(read_csv_n(*state, tie, strlen(tie), 0, &c, &d), PM_OK);
    assert_int_equal(d, ',');
    assert_string_equal(c.recs[0], "L2 a;b=1;2|c=3");
    collected_free(&c);
}

static void given_delimiter_is_used(void **state)
{
    collected c = {0};
    char d = 0;
    const char *s = "a,b;c\n1,2;3\n";
    assert_int_equal(read_csv_n(*state, s, strlen(s), ';', &c, &d), PM_OK);
    assert_int_equal(d, ';');
    assert_string_equal(c.recs[0], "L2 a,b=1,2|c=3");
    collected_free(&c);
}

static void header_names_are_trimmed(void **state)
{
    collected c = {0};
    assert_int_equal(read_csv(*state, " id ,\" name \"\n 1 , x \n", &c), PM_OK);
    assert_string_equal(c.recs[0], "L2 id= 1 |name= x "); /* values are not trimmed */
    collected_free(&c);
}

static void stray_quote_in_unquoted_field_is_kept(void **state)
{
    collected c = {0};
    assert_int_equal(read_csv(*state, "a,b\n5\" pipe,\"ab\"c\n", &c), PM_OK);
    assert_string_equal(c.recs[0], "L2 a=5\" pipe|b=abc");
    assert_int_equal(c.nrej, 0);
    collected_free(&c);
}

/* ---- rows ---- */

static void blank_lines_are_skipped(void **state)
{
    collected c = {0};
    assert_int_equal(read_csv(*state, "a,b\n\n1,2\n  \r\n\r\n3,4\n\n", &c), PM_OK);
    assert_int_equal(c.nrec, 2);
    assert_string_equal(c.recs[0], "L3 a=1|b=2");
    assert_string_equal(c.recs[1], "L6 a=3|b=4");
    collected_free(&c);
}

static void row_with_too_many_fields_is_rejected(void **state)
{
    collected c = {0};
    assert_int_equal(read_csv(*state, "a,b,c,d,e\n1,2,3,4,5,6,7\n1,2,3,4,5\n", &c), PM_OK);
    assert_int_equal(c.nrej, 1);
    assert_string_equal(c.rejs[0], "L2: row has 7 fields, header has 5");
    assert_int_equal(c.nrec, 1);
    assert_string_equal(c.recs[0], "L3 a=1|b=2|c=3|d=4|e=5");
    collected_free(&c);
}

static void short_row_gets_empty_fields(void **state)
{
    collected c = {0};
    assert_int_equal(read_csv(*state, "a,b,c\n1\n1,2\n", &c), PM_OK);
    assert_string_equal(c.recs[0], "L2 a=1|b=|c=");
    assert_string_equal(c.recs[1], "L3 a=1|b=2|c=");
    assert_int_equal(c.nrej, 0);
    collected_free(&c);
}

static void row_with_nul_byte_is_rejected(void **state)
{
    collected c = {0};
    const char s[] = "a,b\n1,x\0y\n2,\"q\0\"\n3,z\n";
    assert_int_equal(read_csv_n(*state, s, sizeof s - 1, 0, &c, NULL), PM_OK);
    assert_int_equal(c.nrej, 2);
    assert_string_equal(c.rejs[0], "L2: NUL byte in record");
    assert_string_equal(c.rejs[1], "L3: NUL byte in record");
    assert_int_equal(c.nrec, 1);
    assert_string_equal(c.recs[0], "L4 a=3|b=z");
    collected_free(&c);
}

static void unterminated_quote_is_rejected_and_earlier_rows_kept(void **state)
{
    collected c = {0};
    assert_int_equal(read_csv(*state, "a,b\n1,x\n2,\"open\n3,y\n", &c), PM_OK);
    assert_int_equal(c.nrec, 1);
    assert_string_equal(c.recs[0], "L2 a=1|b=x");
    assert_int_equal(c.nrej, 1);
    assert_string_equal(c.rejs[0], "L3: unterminated quoted field");
    collected_free(&c);
}

static void ten_megabyte_line_is_read(void **state)
{
    size_t big = 10u << 20;
    char *s = malloc(big + 64);
    size_t n = (size_t)sprintf(s, "id,text\n1,\"");
    memset(s + n, 'x', big);
    n += big;
    n += (size_t)sprintf(s + n, "\"\n2,short\n");
    collected c = {0};
    assert_int_equal(read_csv_n(*state, s, n, 0, &c, NULL), PM_OK);
    assert_int_equal(c.nrec, 2);
    assert_int_equal(strlen(c.recs[0]), strlen("L2 id=1|text=") + big);
    assert_string_equal(c.recs[1], "L3 id=2|text=short");
    free(s);
    collected_free(&c);
}

/* Many rows so that quotes, CRLF and fields straddle the 1 MiB blocks. */
static void rows_across_block_boundaries(void **state)
{
    size_t rows = 60000, cap = rows * 48 + 64, n = 0;
    char *s = malloc(cap);
    n += (size_t)sprintf(s + n, "id,text,n\r\n");
    for (size_t i = 0; i < rows; i++)
        n += (size_t)sprintf(s + n, "%zu,\"q,\"\"x\"\"\r\nz\",%zu\r\n", i, i * 7);
    collected c = {0};
    assert_int_equal(read_csv_n(*state, s, n, 0, &c, NULL), PM_OK);
    assert_int_equal(c.nrec, rows);
    assert_int_equal(c.nrej, 0);
    char want[64];
    for (size_t i = 0; i < rows; i++) {
        sprintf(want, "L%zu id=%zu|text=q,\"x\"\r\nz|n=%zu", 2 + 2 * i, i, i * 7);
        assert_string_equal(c.recs[i], want);
    }
    free(s);
    collected_free(&c);
}

/* Runs of plain bytes are scanned sixteen at a time: a delimiter, quote,
 * CR or LF at every position of a 40-byte field, unquoted and quoted,
 * must end (or not end) the field exactly there. */
static void stop_bytes_are_found_at_every_offset(void **state)
{
    char field[41], in[160], want[96];
    for (size_t at = 0; at < 40; at++) {
        memset(field, 'a' + (int)(at % 26), 40);
        field[40] = '\0';
        /* unquoted: a comma splits the field at `at` */
        field[at] = ',';
        snprintf(in, sizeof in, "a,b\n%s\n", field);
        collected c = {0};
        assert_int_equal(read_csv(*state, in, &c), PM_OK);
        assert_int_equal(c.nrec, 1);
        snprintf(want, sizeof want, "L2 a=%.*s|b=%s", (int)at, field, field + at + 1);
        assert_string_equal(c.recs[0], want);
        collected_free(&c);
        /* quoted: the comma, a CRLF and a doubled quote are data */
        field[at] = ',';
        snprintf(in, sizeof in, "a,b\n\"%.*s\r\n\"\"%s\",z\r\n", (int)at, field, field + at);
        c = (collected){0};
        assert_int_equal(read_csv(*state, in, &c), PM_OK);
        assert_int_equal(c.nrec, 1);
        snprintf(want, sizeof want, "L2 a=%.*s\r\n\"%s|b=z", (int)at, field, field + at);
        assert_string_equal(c.recs[0], want);
        collected_free(&c);
        /* unquoted CRLF after `at` bytes ends the row; the rest is the next */
        field[at] = (char)('a' + (int)(at % 26));
        snprintf(in, sizeof in, "a\n%.*s\r\n%s\n", (int)at, field, field + at);
        c = (collected){0};
        assert_int_equal(read_csv(*state, in, &c), PM_OK);
        assert_int_equal(c.nrec, at == 0 ? 1 : 2);   /* an empty line is skipped */
        snprintf(want, sizeof want, "L2 a=%.*s", (int)at, field);
        if (at > 0)
            assert_string_equal(c.recs[0], want);
        snprintf(want, sizeof want, "L3 a=%s", field + at);
        assert_string_equal(c.recs[c.nrec - 1], want);
        collected_free(&c);
    }
}

/* ---- errors ---- */

static void repeated_header_column_is_an_error(void **state)
{
    collected c = {0};
    assert_int_equal(read_csv(*state, "id,Name,x,y,NAME\n1,2,3,4,5\n", &c), PM_E_INPUT);
    assert_string_equal(pm_ctx_errmsg(*state),
                        "test.csv: header repeats column \"NAME\" (columns 2 and 5)");
    assert_int_equal(c.nrec, 0);
    collected_free(&c);
}

static void empty_file_is_an_error(void **state)
{
    collected c = {0};
    assert_int_equal(read_csv(*state, "", &c), PM_E_INPUT_EMPTY);
    assert_non_null(strstr(pm_ctx_errmsg(*state), "test.csv"));
    assert_int_equal(read_csv(*state, "\n1,2\n", &c), PM_E_INPUT_EMPTY);
    assert_non_null(strstr(pm_ctx_errmsg(*state), "test.csv: header line is empty"));
    assert_int_equal(read_csv(*state, "\xEF\xBB\xBF", &c), PM_E_INPUT_EMPTY);
    assert_int_equal(c.nrec + c.nrej, 0);
}

static void header_only_file_gives_no_records(void **state)
{
    collected c = {0};
    assert_int_equal(read_csv(*state, "a,b\n", &c), PM_OK);
    assert_int_equal(c.nrec + c.nrej, 0);
}

static void read_error_is_an_io_error(void **state)
{
    FILE *dir = fopen(".", "r"); /* opens, but reading a directory fails */
    assert_non_null(dir);
    collected c = {0};
    pm_record_sink sink = {on_record, on_reject, &c};
    assert_int_equal(pm_csv_read(*state, dir, "somedir", 0, &sink, NULL), PM_E_IO);
    assert_non_null(strstr(pm_ctx_errmsg(*state), "somedir"));
    fclose(dir);
}

static void sink_status_stops_reading(void **state)
{
    collected c = {.stop_after = 2};
    assert_int_equal(read_csv(*state, "a\n1\n2\n3\n4\n", &c), PM_E_INPUT_VALUE);
    assert_int_equal(c.nrec, 2);
    collected_free(&c);
}

static void out_of_memory_is_clean(void **state)
{
    const char *s = "id,text\n1,\"a\nb\"\n2,x\n";
    int done = 0;
    for (long at = 1; !done && at < 100; at++) {
        collected c = {0};
        pm_alloc_fail_at(at);
        int st = read_csv(*state, s, &c);
        pm_alloc_fail_at(0);
        assert_true(st == PM_OK || st == PM_E_NOMEM);
        if (st == PM_E_NOMEM)
            assert_non_null(strstr(pm_ctx_errmsg(*state), "test.csv"));
        done = st == PM_OK;
        if (done)
            assert_int_equal(c.nrec, 2);
        collected_free(&c);
    }
    assert_true(done);
}

/* same_keys: 0 for a read's first record, 1 after it (rejects between). */
static int on_record_same_keys(void *user, const pm_record *rec)
{
    char *flags = user;
    size_t n = strlen(flags);
    flags[n] = (char)('0' + rec->same_keys);
    flags[n + 1] = '\0';
    return 0;
}

static int on_reject_ignore(void *user, uint64_t line, const char *id, const char *field,
                            const char *reason)
{
    (void)user, (void)line, (void)id, (void)field, (void)reason;
    return 0;
}

static void records_after_the_first_have_the_same_keys(void **state)
{
    char flags[16] = "";
    pm_record_sink sink = {on_record_same_keys, on_reject_ignore, flags};
    for (int i = 0; i < 2; i++) {
        const char *s = "a,b\n1,2\n3,4,5\nx\n\n5,6\n";
        FILE *f = mem(s, strlen(s));
        assert_int_equal(pm_csv_read(*state, f, "test.csv", 0, &sink, NULL), PM_OK);
        fclose(f);
    }
    assert_string_equal(flags, "011011");
}

/* ---- pm_record_get, format names, paths ---- */

static void record_get_prefers_exact_then_ignores_case(void **state)
{
    (void)state;
    const char *keys[] = {"Lat", "lat", "ID"};
    const char *values[] = {"1", "2", "x"};
    pm_record rec = {.line = 1, .n = 3, .keys = keys, .values = values};
    assert_string_equal(pm_record_get(&rec, "lat"), "2");
    assert_string_equal(pm_record_get(&rec, "LAT"), "1");
    assert_string_equal(pm_record_get(&rec, "id"), "x");
    assert_null(pm_record_get(&rec, "lon"));
}

static void format_names_round_trip(void **state)
{
    (void)state;
    const pm_input_format all[] = {PM_FMT_AUTO, PM_FMT_CSV, PM_FMT_NDJSON, PM_FMT_GEOJSON,
                                   PM_FMT_OPEN311};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        assert_int_equal(pm_input_format_parse(pm_input_format_name(all[i])), all[i]);
    assert_int_equal(pm_input_format_parse("GeoJSON"), PM_FMT_GEOJSON);
    assert_string_equal(pm_input_format_name(PM_FMT_OPEN311), "open311");
    assert_int_equal(pm_input_format_parse("xml"), -1);
}

static void read_path_reads_csv_fixtures(void **state)
{
    collected c = {0};
    pm_record_sink sink = {on_record, on_reject, &c};
    assert_int_equal(pm_records_read_path(*state, FIXTURES "quoted.csv", PM_FMT_AUTO, 0, &sink),
                     PM_OK);
    assert_int_equal(c.nrec, 4);
    assert_string_equal(c.recs[0], "L2 id=1|created_at=2024-03-01T10:00:00+07:00"
                                   "|text=Яма на дороге, у дома 5|lat=55.35|lon=86.08");
    assert_string_equal(c.recs[1], "L3 id=2|created_at=2024-03-02T11:30:00+07:00"
                                   "|text=Жалоба: \"нет света\"|lat=55.36|lon=86.09");
    assert_non_null(strstr(c.recs[2], "|text=Две\nстроки|"));
    assert_true(starts_with(c.recs[3], "L7 id=4|"));
    collected_free(&c);
    assert_int_equal(pm_records_read_path(*state, FIXTURES "semicolon_bom_crlf.csv", PM_FMT_AUTO,
                                          0, &sink),
                     PM_OK);
    assert_int_equal(c.nrec, 2);
    assert_string_equal(c.recs[1],
                        "L3 id=2|created_at=2024-03-02|topic=heating; water|lat=55,36|lon=86,09");
    collected_free(&c);
}

static void read_path_unreadable_file_is_io_error(void **state)
{
    collected c = {0};
    pm_record_sink sink = {on_record, on_reject, &c};
    assert_int_equal(pm_records_read_path(*state, "/nonexistent/x.csv", PM_FMT_AUTO, 0, &sink),
                     PM_E_IO);
    assert_string_equal(pm_ctx_errmsg(*state),
                        "cannot open /nonexistent/x.csv: No such file or directory");
}

static void read_path_unknown_extension_sniffs_csv(void **state)
{
    char path[] = "/tmp/pm_test_csv_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("\n\na,b\n1,2\n", f); /* blank lines first: the header is on line 3 */
    fclose(f);
    collected c = {0};
    pm_record_sink sink = {on_record, on_reject, &c};
    assert_int_equal(pm_records_read_path(*state, path, PM_FMT_AUTO, 0, &sink), PM_E_INPUT_EMPTY);
    remove(path);
    f = fopen(path, "w");
    fputs("a,b\n1,2\n", f);
    fclose(f);
    assert_int_equal(pm_records_read_path(*state, path, PM_FMT_AUTO, 0, &sink), PM_OK);
    assert_int_equal(c.nrec, 1);
    assert_string_equal(c.recs[0], "L2 a=1|b=2");
    remove(path);
    collected_free(&c);
}

/* ---- the real NYC 311 sample (not in the repository) ---- */

static void nyc311_sample_reads_cleanly(void **state)
{
    FILE *probe = fopen(NYC_SAMPLE, "rb");
    if (!probe) {
        print_message("skipped: %s not found (run from the repository root)\n", NYC_SAMPLE);
        skip();
    }
    fclose(probe);
    collected c = {0};
    pm_record_sink sink = {on_record, on_reject, &c};
    assert_int_equal(pm_records_read_path(*state, NYC_SAMPLE, PM_FMT_AUTO, 0, &sink), PM_OK);
    assert_int_equal(c.nrec, 999);
    assert_int_equal(c.nrej, 0);
    assert_true(starts_with(c.recs[0], "L2 Unique Key=19937896|Created Date=03/01/2011 02:27:57 PM|"
                                       "Closed Date=03/14/2011 03:59:20 PM|Agency=DOF|"));
    assert_non_null(strstr(c.recs[1], "|Borough=BROOKLYN|"));
    assert_non_null(strstr(c.recs[1], "|Latitude=40.660811976282695|Longitude=-73.99859430999363"
                                      "|Location=(40.660811976282695, -73.99859430999363)"));
    collected_free(&c);
}

/* The size hint: a line a record for CSV and NDJSON, from the first MiB
 * of a bigger file; nothing for what it cannot tell. */
static void estimate_counts_lines_of_csv_and_ndjson(void **state)
{
    (void)state;
    char path[] = "/tmp/pm_test_estimate_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("id,lon,lat\n", f);
    for (int i = 0; i < 100000; i++)   /* ~2.7 MiB: the first MiB is a sample */
        fprintf(f, "c%07d,86.%06d,55.%06d\n", i, i, i * 7 % 1000000);
    fclose(f);
    uint64_t n = pm_records_estimate(path, PM_FMT_AUTO);   /* no extension: sniffed as CSV */
    assert_true(n > 99000 && n < 101100);
    assert_int_equal(pm_records_estimate(path, PM_FMT_GEOJSON), 0);
    f = fopen(path, "w");
    fputs("id\na\nb\n", f);
    fclose(f);
    assert_int_equal(pm_records_estimate(path, PM_FMT_CSV), 3);   /* the header counts */
    f = fopen(path, "w");
    fputs("{\"type\": \"FeatureCollection\",\n\"features\": []}\n", f);
    fclose(f);
    assert_int_equal(pm_records_estimate(path, PM_FMT_AUTO), 0);   /* JSON by content */
    remove(path);
    assert_int_equal(pm_records_estimate(FIXTURES "complaints.ndjson", PM_FMT_AUTO) > 0, 1);
    assert_int_equal(pm_records_estimate(FIXTURES "points.geojson", PM_FMT_AUTO), 0);
    assert_int_equal(pm_records_estimate("-", PM_FMT_CSV), 0);
    assert_int_equal(pm_records_estimate("/nonexistent/x.csv", PM_FMT_CSV), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quoted_fields_keep_delimiters_quotes_and_newlines),
        cmocka_unit_test(crlf_line_ends_are_removed_but_quoted_crlf_kept),
        cmocka_unit_test(bom_is_stripped),
        cmocka_unit_test(semicolon_is_detected_from_header),
        cmocka_unit_test(tab_is_detected_and_ties_go_to_comma),
        cmocka_unit_test(given_delimiter_is_used),
        cmocka_unit_test(header_names_are_trimmed),
        cmocka_unit_test(stray_quote_in_unquoted_field_is_kept),
        cmocka_unit_test(blank_lines_are_skipped),
        cmocka_unit_test(row_with_too_many_fields_is_rejected),
        cmocka_unit_test(short_row_gets_empty_fields),
        cmocka_unit_test(row_with_nul_byte_is_rejected),
        cmocka_unit_test(unterminated_quote_is_rejected_and_earlier_rows_kept),
        cmocka_unit_test(ten_megabyte_line_is_read),
        cmocka_unit_test(rows_across_block_boundaries),
        cmocka_unit_test(stop_bytes_are_found_at_every_offset),
        cmocka_unit_test(records_after_the_first_have_the_same_keys),
        cmocka_unit_test(repeated_header_column_is_an_error),
        cmocka_unit_test(empty_file_is_an_error),
        cmocka_unit_test(header_only_file_gives_no_records),
        cmocka_unit_test(read_error_is_an_io_error),
        cmocka_unit_test(sink_status_stops_reading),
        cmocka_unit_test(out_of_memory_is_clean),
        cmocka_unit_test(record_get_prefers_exact_then_ignores_case),
        cmocka_unit_test(format_names_round_trip),
        cmocka_unit_test(read_path_reads_csv_fixtures),
        cmocka_unit_test(read_path_unreadable_file_is_io_error),
        cmocka_unit_test(read_path_unknown_extension_sniffs_csv),
        cmocka_unit_test(nyc311_sample_reads_cleanly),
        cmocka_unit_test(estimate_counts_lines_of_csv_and_ndjson),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
