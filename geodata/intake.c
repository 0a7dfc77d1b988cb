/* intake.c — records to checked complaints (see pm_complaints_in.h).
 *
 * A pm_mapping says where each of our fields comes from; the intake is the
 * pm_record_sink the readers write to.  For each record it
 *   1. finds the source fields of our fields (cached per key set: the
 *      lookup through names and aliases runs once per CSV file, not once
 *      per row);
 *   2. takes the first non-empty value of each field, trimmed of ASCII
 *      blanks (for topic: every non-empty candidate, tried in order);
 *   3. checks them in a fixed order, the first failure being the reject:
 *      id, UTF-8, created_at, coordinates, topic, answered_at, duplicate id;
 *   4. adds the complaint (pm_complaints_add).
 * Only out of memory (or a reject callback asking to stop) ends a read.
 *
 * Choices:
 * - a record's own source value wins; the mapping's constant "source" fills
 *   in when it has none;
 * - with a time_format, a time that does not fit it is still accepted in
 *   ISO 8601 (unambiguous, and what Open311's updated_datetime uses);
 * - numbers are converted here, not with strtod, so the result does not
 *   depend on the process locale;
 * - a missing topic is rejected even with a default_topic (the default is
 *   for categories we do not know, not for records without one).
 */
#include "pm_complaints_in.h"
#include "json_err.h"
#include "utf8.h"
#include "../engine/pm_alloc.h"
#include "../engine/strtab.h"

#include <jansson.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Our fields, then the ones read only to derive others. */
enum { SLOT_UPDATED = PM_F_N, SLOTS };
#define MAX_CAND 6   /* most source names per field */

static const char *const field_names[PM_F_N] = {
    "id", "created_at", "lon", "lat", "topic", "source", "status", "answered_at", "executor",
    "district_code"};

/* Canonical name first, then aliases, in order of preference. */
static const char *const aliases[SLOTS][MAX_CAND + 1] = {
    [PM_F_ID] = {"id", "service_request_id", "unique key", "complaint_id"},
    [PM_F_CREATED_AT] = {"created_at", "created", "requested_datetime", "created date", "date"},
    [PM_F_LON] = {"lon", "lng", "long", "longitude", "x"},
    [PM_F_LAT] = {"lat", "latitude", "y"},
    [PM_F_TOPIC] = {"topic", "topic_code", "category", "service_code", "service_name",
                    "complaint type"},
    [PM_F_SOURCE] = {"source", "channel"},
    [PM_F_STATUS] = {"status"},
    [PM_F_ANSWERED_AT] = {"answered_at", "closed_at", "closed date"},
    [PM_F_EXECUTOR] = {"executor", "agency_responsible", "agency"},
    [PM_F_DISTRICT_CODE] = {"district_code", "district", "oktmo"},
    [SLOT_UPDATED] = {"updated_datetime"},
};

const char *pm_field_name(pm_field f)
{
    return (unsigned)f < PM_F_N ? field_names[f] : "?";
}

struct pm_mapping {
    char *col[PM_F_N];     /* explicit source name; NULL: canonical name and aliases */
    char *time_format;     /* NULL: ISO 8601 */
    long utc_offset_s;
    char *source;          /* constant source, or NULL */
    int decimal_comma;
    char *default_topic;   /* code, or NULL */
};

/* Where each slot's values are in records with a given key set. */
typedef struct keycache {
    char *keys;            /* the key set: n NUL-terminated strings back to back */
    size_t n, len;
    int have;
    int cand[SLOTS][MAX_CAND];
    int ncand[SLOTS];
} keycache;

struct pm_intake {
    pm_ctx *ctx;           /* of the thread that adds complaints */
    pm_ctx *check_ctx;     /* of the thread that checks records (ctx on one thread) */
    const pm_topics *topics;
    pm_complaints *cs;
    pm_reject_fn reject;
    void *reject_user;
    pm_record_sink sink;
    pm_intake_counts counts;
    /* settings copied from the mapping */
    char *col[PM_F_N];
    char *time_format;
    long utc_offset_s;
    char *source;
    int decimal_comma;     /* the mapping's setting */
    int rec_decimal_comma; /* for the current record: the mapping's, or a ';' CSV */
    long default_topic;    /* -1: none */
    pm_strtab *topic_seen; /* topic values looked up so far (topic_find) */
    long *topic_of;        /* by topic_seen's index: pm_topics_find's answer */
    size_t topic_cap;
    keycache kc;
    int warned[PM_F_N];    /* a mapped column was found missing */
    char *scratch;         /* the current record's trimmed values */
    size_t scratch_cap;
    int threads;           /* pm_intake_set_threads */
    uint64_t progress_every;
    void (*progress)(void *user, uint64_t n);
    void *progress_user;
    size_t block_every;    /* pm_intake_set_block */
    pm_intake_block_fn block;
    void *block_user;
    size_t block_from;     /* complaints before this were handed to block */
};

/* ---- small string helpers ------------------------------------------------ */

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static int ascii_lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int ascii_casecmp(const char *a, const char *b)
{
    for (; *a && ascii_lower((unsigned char)*a) == ascii_lower((unsigned char)*b); a++, b++)
        ;
    return ascii_lower((unsigned char)*a) - ascii_lower((unsigned char)*b);
}

static int utf8_valid_str(const char *s)
{
    return pm_utf8_valid(s, strlen(s));
}

/* At most max bytes of the valid UTF-8 string s, cut at a character
 * boundary: the length to print. */
static int utf8_cut(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return (int)n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return (int)max;
}

/* ---- numbers ------------------------------------------------------------- */

enum { NUM_OK = 0, NUM_SYNTAX, NUM_INFINITE };

/* "nan", "inf", "infinity" in any case: what printf and strtod write for
 * non-finite numbers. */
static int is_nonfinite_word(const char *s)
{
    return ascii_casecmp(s, "nan") == 0 || ascii_casecmp(s, "inf") == 0 ||
           ascii_casecmp(s, "infinity") == 0;
}

/* [+-]digits[.digits][(e|E)[+-]digits], ',' for '.' when decimal_comma.
 * The conversion is exact for up to 15-16 significant digits and an
 * exponent within ±22 (every coordinate seen in practice), within an ulp
 * otherwise. */
static int number_parse(const char *s, int decimal_comma, double *out)
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    int neg = *s == '-';
    if (*s == '+' || *s == '-')
        s++;
    uint64_t mant = 0;
    int ndig = 0;           /* significant digits in mant */
    long exp10 = 0;
    int int_digits = 0, frac_digits = 0;
    for (; *s >= '0' && *s <= '9'; s++, int_digits++) {
        if (ndig < 19) {
            mant = mant * 10 + (uint64_t)(*s - '0');
            ndig += mant != 0;
        } else {
            exp10++;        /* digits past the 19th: only their magnitude counts */
        }
    }
    if (int_digits == 0)
        return is_nonfinite_word(s) ? NUM_INFINITE : NUM_SYNTAX;
    if (*s == '.' || (decimal_comma && *s == ',')) {
        for (s++; *s >= '0' && *s <= '9'; s++, frac_digits++) {
            if (ndig < 19) {
                mant = mant * 10 + (uint64_t)(*s - '0');
                ndig += mant != 0;
                exp10--;
            }
        }
        if (frac_digits == 0)
            return NUM_SYNTAX;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        int eneg = *s == '-';
        if (*s == '+' || *s == '-')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return NUM_SYNTAX;
        long e = 0;
        for (; *s >= '0' && *s <= '9'; s++)
            if (e < 100000)
                e = e * 10 + (*s - '0');
        exp10 += eneg ? -e : e;
    }
    if (*s)
        return NUM_SYNTAX;
    double v;
    if (mant == 0)
        v = 0.0;
    else if (mant <= (1ULL << 53) && exp10 >= -22 && exp10 <= 22)
        v = exp10 >= 0 ? (double)mant * pow10[exp10] : (double)mant / pow10[-exp10];
    else if (exp10 > 400)
        v = INFINITY;
    else if (exp10 < -400)
        v = 0.0;
    else
        v = (double)((long double)mant * powl(10.0L, (long double)exp10));
    if (!isfinite(v))
        return NUM_INFINITE;
    *out = neg ? -v : v;
    return NUM_OK;
}

/* ---- mapping ------------------------------------------------------------- */

void pm_mapping_free(pm_mapping *m)
{
    if (!m)
        return;
    for (int f = 0; f < PM_F_N; f++)
        pm_free(m->col[f]);
    pm_free(m->time_format);
    pm_free(m->source);
    pm_free(m->default_topic);
    pm_free(m);
}

int pm_mapping_default(pm_ctx *ctx, pm_mapping **out)
{
    *out = pm_calloc(1, sizeof **out);
    return *out ? PM_OK : PM_ERR(ctx, PM_E_NOMEM, "out of memory");
}

void pm_mapping_set_utc_offset(pm_mapping *m, long utc_offset_s) { m->utc_offset_s = utc_offset_s; }
void pm_mapping_set_decimal_comma(pm_mapping *m, int on) { m->decimal_comma = on != 0; }

/* Only the directives pm_time_parse_format knows; %Y %m %d present; %I
 * with %p. */
static int time_format_valid(const char *fmt)
{
    int seen[128] = {0};
    for (const char *f = fmt; *f; f++) {
        if (*f != '%')
            continue;
        f++;
        if (!*f || !strchr("YmdHIMSpz%", *f))
            return 0;
        seen[(unsigned char)*f] = 1;
    }
    return seen['Y'] && seen['m'] && seen['d'] && seen['I'] == seen['p'];
}

/* "+07:00", "-0500", "+07", "Z", or an integer number of seconds. */
static int offset_parse(json_t *v, long *out)
{
    if (json_is_integer(v)) {
        json_int_t s = json_integer_value(v);
        if (s < -18 * 3600 || s > 18 * 3600)
            return -1;
        *out = (long)s;
        return 0;
    }
    const char *s = json_string_value(v);
    char buf[40];
    int64_t utc, local;
    if (!s || strlen(s) > 8)
        return -1;
    /* An offset is what turns a wall-clock time into UTC: reuse that parser. */
    snprintf(buf, sizeof buf, "2000-01-01T00:00:00%s", s);
    if (pm_time_parse_iso8601(buf, 0, &local) != 0 ||
        pm_time_parse_iso8601("2000-01-01T00:00:00Z", 0, &utc) != 0)
        return -1;
    *out = (long)(utc - local);
    return 0;
}

/* A string member of the mapping, copied into *dst (NULL when absent). */
static int mapping_str(pm_ctx *ctx, const char *path, json_t *root, const char *name, char **dst)
{
    json_t *v = json_object_get(root, name);
    if (!v)
        return PM_OK;
    if (!json_is_string(v) || json_string_length(v) == 0)
        return PM_ERR(ctx, PM_E_INPUT_VALUE, "%s: \"%s\" is not a non-empty string", path, name);
    *dst = pm_strdup(json_string_value(v));
    return *dst ? PM_OK : PM_ERR(ctx, PM_E_NOMEM, "%s: out of memory", path);
}

static int mapping_columns(pm_ctx *ctx, const char *path, json_t *cols, pm_mapping *m)
{
    if (!cols)
        return PM_OK;
    if (!json_is_object(cols))
        return PM_ERR(ctx, PM_E_INPUT_VALUE, "%s: \"columns\" is not an object", path);
    const char *key;
    json_t *v;
    json_object_foreach(cols, key, v) {
        if (strcmp(key, "text") == 0 || strcmp(key, "author") == 0)
            continue;   /* recognised, never read */
        int f = 0;
        while (f < PM_F_N && strcmp(key, field_names[f]) != 0)
            f++;
        if (f == PM_F_N)
            return PM_ERR(ctx, PM_E_INPUT_VALUE,
                          "%s: columns: unknown field \"%s\" (expected id, created_at, lon, lat, "
                          "topic, source, status, answered_at, executor or district_code)",
                          path, key);
        if (!json_is_string(v) || json_string_length(v) == 0)
            return PM_ERR(ctx, PM_E_INPUT_VALUE, "%s: columns: \"%s\" is not a non-empty string",
                          path, key);
        if (!(m->col[f] = pm_strdup(json_string_value(v))))
            return PM_ERR(ctx, PM_E_NOMEM, "%s: out of memory", path);
    }
    return PM_OK;
}

static int mapping_topics(pm_ctx *ctx, const char *path, json_t *topics, pm_topics *t)
{
    if (!topics)
        return PM_OK;
    if (!json_is_object(topics))
        return PM_ERR(ctx, PM_E_INPUT_VALUE, "%s: \"topics\" is not an object", path);
    if (!t)
        return PM_ERR(ctx, PM_E_USAGE, "%s: has topics but no catalogue was given", path);
    const char *key;
    json_t *v;
    json_object_foreach(topics, key, v) {
        if (!json_is_string(v))
            return PM_ERR(ctx, PM_E_INPUT_VALUE, "%s: topics: \"%s\" is not a string", path, key);
        int rc = pm_topics_add_category(ctx, t, key, json_string_value(v));
        if (rc) {
            char msg[768];
            snprintf(msg, sizeof msg, "%s", pm_ctx_errmsg(ctx));
            return PM_ERR(ctx, rc, "%s: topics: %s", path, msg);
        }
    }
    return PM_OK;
}

static int mapping_default_topic(pm_ctx *ctx, const char *path, const pm_topics *t, pm_mapping *m)
{
    if (!m->default_topic || !t)
        return PM_OK;   /* without a catalogue, checked by pm_intake_new */
    long i = pm_topics_find(t, m->default_topic);
    if (i < 0)
        return PM_ERR(ctx, PM_E_INPUT_VALUE, "%s: default_topic \"%s\" is not in the catalogue", path,
                      m->default_topic);
    char *code = pm_strdup(pm_topic_code(t, (size_t)i));
    if (!code)
        return PM_ERR(ctx, PM_E_NOMEM, "%s: out of memory", path);
    pm_free(m->default_topic);
    m->default_topic = code;
    return PM_OK;
}

static int mapping_parse(pm_ctx *ctx, const char *path, json_t *root, pm_topics *t, pm_mapping *m)
{
    static const char *const known[] = {"columns", "time_format", "utc_offset", "source",
                                        "decimal_comma", "topics", "default_topic", "note",
                                        "version", NULL};
    if (!json_is_object(root))
        return PM_ERR(ctx, PM_E_INPUT, "%s: not a JSON object", path);
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        int k = 0;
        while (known[k] && strcmp(known[k], key) != 0)
            k++;
        if (!known[k])
            return PM_ERR(ctx, PM_E_INPUT_VALUE, "%s: unknown member \"%s\"", path, key);
    }
    int rc;
    if ((rc = mapping_columns(ctx, path, json_object_get(root, "columns"), m)) ||
        (rc = mapping_str(ctx, path, root, "time_format", &m->time_format)) ||
        (rc = mapping_str(ctx, path, root, "source", &m->source)) ||
        (rc = mapping_str(ctx, path, root, "default_topic", &m->default_topic)))
        return rc;
    if (m->time_format && !time_format_valid(m->time_format))
        return PM_ERR(ctx, PM_E_INPUT_VALUE,
                      "%s: time_format \"%s\": needs %%Y, %%m and %%d, %%I only with %%p, and "
                      "no directives but %%Y %%m %%d %%H %%I %%M %%S %%p %%z %%%%",
                      path, m->time_format);
    if ((v = json_object_get(root, "utc_offset")) && offset_parse(v, &m->utc_offset_s) != 0)
        return PM_ERR(ctx, PM_E_INPUT_VALUE,
                      "%s: utc_offset is not an offset like \"+07:00\" or a number of seconds", path);
    if ((v = json_object_get(root, "decimal_comma"))) {
        if (!json_is_boolean(v))
            return PM_ERR(ctx, PM_E_INPUT_VALUE, "%s: decimal_comma is not true or false", path);
        m->decimal_comma = json_is_true(v);
    }
    if ((rc = mapping_topics(ctx, path, json_object_get(root, "topics"), t)))
        return rc;
    return mapping_default_topic(ctx, path, t, m);
}

int pm_mapping_load(pm_ctx *ctx, const char *path, pm_topics *t, pm_mapping **out)
{
    *out = NULL;
    json_error_t err;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        return PM_ERR(ctx, pm_json_error_status(&err), "%s:%d:%d: %s", path, err.line,
                      err.column, err.text);
    }
    pm_mapping *m = pm_calloc(1, sizeof *m);
    int rc = m ? mapping_parse(ctx, path, root, t, m) : PM_ERR(ctx, PM_E_NOMEM, "%s: out of memory", path);
    json_decref(root);
    if (rc) {
        pm_mapping_free(m);
        return rc;
    }
    *out = m;
    return PM_OK;
}

/* ---- rejects ------------------------------------------------------------- */

/* Counts a reject and hands it on.  Returns what the callback returns. */
static int reject_send(pm_intake *in, uint64_t line, const char *id, const char *field,
                       const char *reason)
{
    in->counts.read++;
    in->counts.rejected++;
    return in->reject ? in->reject(in->reject_user, line, id, field, reason) : 0;
}

#define QUOTE_MAX 64   /* bytes of a value quoted in a reason */
#define QUOTED(s) utf8_cut((s), QUOTE_MAX), (s), (strlen(s) > QUOTE_MAX ? "..." : "")

/* Rejects from the reader itself (a broken CSV row, a line that is not JSON). */
static int on_reader_reject(void *user, uint64_t line, const char *id, const char *field,
                            const char *reason)
{
    return reject_send(user, line, id, field, reason);
}

/* ---- finding the fields of a record -------------------------------------- */

/* Index of the key name in rec: exact match first, then ASCII
 * case-insensitive; -1 if absent. */
static int key_index(const pm_record *rec, const char *name)
{
    for (size_t i = 0; i < rec->n; i++)
        if (strcmp(rec->keys[i], name) == 0)
            return (int)i;
    for (size_t i = 0; i < rec->n; i++)
        if (ascii_casecmp(rec->keys[i], name) == 0)
            return (int)i;
    return -1;
}

static int keycache_matches(const keycache *kc, const pm_record *rec)
{
    if (!kc->have || kc->n != rec->n)
        return 0;
    if (rec->same_keys)
        return 1;   /* the reader says: as the record before, which set the cache */
    const char *k = kc->keys;
    for (size_t i = 0; i < rec->n; i++) {
        if (strcmp(k, rec->keys[i]) != 0)
            return 0;
        k += strlen(k) + 1;
    }
    return 1;
}

/* Candidate source fields of slot s in rec, in order of preference. */
static void slot_resolve(pm_intake *in, const pm_record *rec, int s)
{
    keycache *kc = &in->kc;
    const char *one[2] = {s < PM_F_N ? in->col[s] : NULL, NULL};
    const char *const *names = one[0] ? one : aliases[s];
    kc->ncand[s] = 0;
    for (int a = 0; names[a] && a < MAX_CAND; a++) {
        int k = key_index(rec, names[a]);
        int seen = k < 0;
        for (int c = 0; c < kc->ncand[s] && !seen; c++)
            seen = kc->cand[s][c] == k;
        if (!seen)
            kc->cand[s][kc->ncand[s]++] = k;
    }
    if (one[0] && kc->ncand[s] == 0 && !in->warned[s]) {
        in->warned[s] = 1;
        pm_ctx_log(in->check_ctx, PM_LOG_WARN, "line %llu: column \"%s\" (mapped to %s) is not in the input",
                   (unsigned long long)rec->line, one[0], field_names[s]);
    }
}

/* Makes the cache describe rec's key set. */
static int keycache_update(pm_intake *in, const pm_record *rec)
{
    keycache *kc = &in->kc;
    if (keycache_matches(kc, rec))
        return PM_OK;
    size_t len = 0;
    for (size_t i = 0; i < rec->n; i++)
        len += strlen(rec->keys[i]) + 1;
    if (len > kc->len || !kc->keys) {
        char *keys = pm_realloc(kc->keys, len);
        if (!keys)
            return PM_ERR(in->check_ctx, PM_E_NOMEM, "line %llu: out of memory",
                          (unsigned long long)rec->line);
        kc->keys = keys;
        kc->len = len;
    }
    char *k = kc->keys;
    for (size_t i = 0; i < rec->n; i++) {
        size_t n = strlen(rec->keys[i]) + 1;
        memcpy(k, rec->keys[i], n);
        k += n;
    }
    kc->n = rec->n;
    kc->have = 1;
    for (int s = 0; s < SLOTS; s++)
        slot_resolve(in, rec, s);
    return PM_OK;
}

/* ---- the values of a record ---------------------------------------------- */

/* The trimmed values of one record, copied into the intake's scratch. */
typedef struct values {
    const char *v[SLOTS];            /* NULL when absent or empty */
    const char *topic[MAX_CAND];     /* every non-empty topic candidate */
    int ntopic;
    const char *all;                 /* all of them, one after another */
    size_t all_len;
} values;

typedef struct view {
    const char *s;
    size_t n;
} view;

static view trimmed(const char *s)
{
    while (is_blank(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && is_blank(s[n - 1]))
        n--;
    return (view){s, n};
}

static int values_get(pm_intake *in, const pm_record *rec, values *out)
{
    view vw[SLOTS + MAX_CAND];
    const char **dst[SLOTS + MAX_CAND];
    int nv = 0;
    size_t total = 0;
    memset(out, 0, sizeof *out);
    for (int s = 0; s < SLOTS; s++) {
        for (int c = 0; c < in->kc.ncand[s]; c++) {
            view w = trimmed(rec->values[in->kc.cand[s][c]]);
            if (w.n == 0)
                continue;
            vw[nv] = w;
            dst[nv++] = s == PM_F_TOPIC ? &out->topic[out->ntopic++] : &out->v[s];
            total += w.n + 1;
            if (s != PM_F_TOPIC)
                break;   /* the first non-empty value; topic tries them all */
        }
    }
    if (total > in->scratch_cap) {
        char *p = pm_realloc(in->scratch, total);
        if (!p)
            return PM_ERR(in->check_ctx, PM_E_NOMEM, "line %llu: out of memory",
                          (unsigned long long)rec->line);
        in->scratch = p;
        in->scratch_cap = total;
    }
    char *p = in->scratch;
    for (int i = 0; i < nv; i++) {
        memcpy(p, vw[i].s, vw[i].n);
        p[vw[i].n] = '\0';
        *dst[i] = p;
        p += vw[i].n + 1;
    }
    out->all = in->scratch;
    out->all_len = total;
    return PM_OK;
}

/* The field whose value is not UTF-8, or NULL. */
static const char *values_bad_utf8(const values *v)
{
    /* Valid all together is valid one by one: a NUL ends no character. */
    if (!v->all_len || pm_utf8_valid(v->all, v->all_len))
        return NULL;
    for (int s = 0; s < SLOTS; s++)
        if (v->v[s] && !utf8_valid_str(v->v[s]))
            return s == SLOT_UPDATED ? "updated_datetime" : field_names[s];
    for (int i = 0; i < v->ntopic; i++)
        if (!utf8_valid_str(v->topic[i]))
            return field_names[PM_F_TOPIC];
    return NULL;
}

/* The kept field (id, or a dictionary value) too long for the engine's
 * string tables (PM_STRTAB_STR_MAX with its NUL), or NULL. */
static const char *values_too_long(const values *v)
{
    if (v->all_len <= PM_STRTAB_STR_MAX)   /* each value + 1 is part of it */
        return NULL;
    static const int kept[] = {PM_F_ID, PM_F_SOURCE, PM_F_STATUS, PM_F_EXECUTOR,
                               PM_F_DISTRICT_CODE};
    for (size_t k = 0; k < sizeof kept / sizeof kept[0]; k++)
        if (v->v[kept[k]] && strlen(v->v[kept[k]]) >= PM_STRTAB_STR_MAX)
            return field_names[kept[k]];
    return NULL;
}

static int time_parse(const pm_intake *in, const char *s, int64_t *t)
{
    if (in->time_format && pm_time_parse_format(s, in->time_format, in->utc_offset_s, t) == 0)
        return 0;
    return pm_time_parse_iso8601(s, in->utc_offset_s, t);
}

/* ---- the checks ---------------------------------------------------------- */

/* A check's outcome: 0 passed; otherwise the reject's field and reason. */
typedef struct verdict {
    const char *id;        /* the record's id when readable, or NULL */
    const char *field;
    char reason[256];
} verdict;

__attribute__((format(printf, 3, 4)))
static int fail(verdict *vd, const char *field, const char *fmt, ...)
{
    vd->field = field;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(vd->reason, sizeof vd->reason, fmt, ap);
    va_end(ap);
    return 1;
}

static int check_created(const pm_intake *in, const values *v, pm_complaint *c, verdict *vd)
{
    const char *s = v->v[PM_F_CREATED_AT];
    if (!s)
        return fail(vd, "created_at", "missing value");
    if (time_parse(in, s, &c->created_at) != 0)
        return fail(vd, "created_at", "unparsable date \"%.*s%s\"", QUOTED(s));
    return 0;
}

static int check_number(const pm_intake *in, const char *s, const char *field, double *out,
                        verdict *vd)
{
    int r = number_parse(s, in->rec_decimal_comma, out);
    if (r == NUM_SYNTAX)
        return fail(vd, field, "unparsable number \"%.*s%s\"", QUOTED(s));
    if (r == NUM_INFINITE)
        return fail(vd, field, "not a finite number \"%.*s%s\"", QUOTED(s));
    return 0;
}

static int check_coords(const pm_intake *in, const values *v, pm_complaint *c, verdict *vd)
{
    const char *lon = v->v[PM_F_LON], *lat = v->v[PM_F_LAT];
    c->lon = c->lat = NAN;
    if (!lon && !lat)
        return v->v[PM_F_DISTRICT_CODE] ? 0
                                        : fail(vd, "lon,lat", "no coordinates and no district code");
    if (!lon || !lat)
        return fail(vd, "lon,lat", "only one of lat/lon");
    if (check_number(in, lon, "lon", &c->lon, vd) || check_number(in, lat, "lat", &c->lat, vd))
        return 1;
    if (fabs(c->lat) > 90) {
        if (fabs(c->lon) <= 90 && fabs(c->lat) <= 180)
            return fail(vd, "lat,lon", "lat/lon look swapped");
        return fail(vd, "lat", "lat out of range");
    }
    if (fabs(c->lon) > 180)
        return fail(vd, "lon", "lon out of range");
    if (c->lon == 0 && c->lat == 0)
        return fail(vd, "lon,lat", "lat/lon are 0,0 (null island)");
    return 0;
}

/* pm_topics_find, through the answers for the values seen so far (up to
 * TOPIC_SEEN_MAX of them): a file names a dozen topics over and over, and
 * each find copies, folds and looks up twice.  The topics do not change
 * while the intake lives.  When the table cannot grow, the answer is
 * found the long way: the same answer. */
enum { TOPIC_SEEN_MAX = 4096 };

static long topic_find(pm_intake *in, const char *s)
{
    pm_strtab_pos pos;
    int64_t k = pm_strtab_lookup(in->topic_seen, s, &pos);
    if (k >= 0)
        return in->topic_of[k];
    long t = pm_topics_find(in->topics, s);
    size_t n = pm_strtab_count(in->topic_seen);
    if (n >= TOPIC_SEEN_MAX)
        return t;
    if (n == in->topic_cap) {
        size_t cap = n ? 2 * n : 16;
        long *of = pm_reallocarray(in->topic_of, cap, sizeof *of);
        if (!of)
            return t;
        in->topic_of = of;
        in->topic_cap = cap;
    }
    if (pm_strtab_insert(in->topic_seen, s, &pos) >= 0)
        in->topic_of[n] = t;
    return t;
}

static int check_topic(pm_intake *in, const values *v, pm_complaint *c, verdict *vd)
{
    if (v->ntopic == 0)
        return fail(vd, "topic", "missing value");
    for (int i = 0; i < v->ntopic; i++) {
        long t = topic_find(in, v->topic[i]);
        if (t >= 0) {
            c->topic = (uint16_t)t;
            return 0;
        }
    }
    if (in->default_topic >= 0) {
        c->topic = (uint16_t)in->default_topic;
        return 0;
    }
    return fail(vd, "topic", "unknown topic \"%.*s%s\"", QUOTED(v->topic[0]));
}

static int check_answered(const pm_intake *in, const values *v, pm_complaint *c, verdict *vd)
{
    const char *s = v->v[PM_F_ANSWERED_AT];
    const char *status = v->v[PM_F_STATUS];
    /* Open311: a closed request's last update is when it was answered. */
    if (!s && status && ascii_casecmp(status, "closed") == 0)
        s = v->v[SLOT_UPDATED];
    c->answered_at = PM_TIME_NONE;
    if (!s)
        return 0;
    if (time_parse(in, s, &c->answered_at) != 0)
        return fail(vd, "answered_at", "unparsable date \"%.*s%s\"", QUOTED(s));
    if (c->answered_at < c->created_at)
        return fail(vd, "answered_at", "answered before created");
    return 0;
}

/* Every check of one record but the duplicate id: PM_OK with *ok 1 and c
 * filled (its strings in the intake's scratch, valid until the next
 * record), or *ok 0 and the reject in *vd (vd->id may be NULL); an error
 * only when out of memory. */
static int check_record(pm_intake *in, const pm_record *rec, pm_complaint *c, verdict *vd, int *ok)
{
    *ok = 0;
    int rc = keycache_update(in, rec);
    values v;
    if (rc || (rc = values_get(in, rec, &v)))
        return rc;
    const char *id = v.v[PM_F_ID];
    vd->id = NULL;
    if (!id)
        return fail(vd, "id", "missing value"), PM_OK;
    const char *bad = values_bad_utf8(&v);
    if (bad) {
        vd->id = utf8_valid_str(id) ? id : NULL;
        return fail(vd, bad, "bad UTF-8"), PM_OK;
    }
    const char *long_field = values_too_long(&v);
    if (long_field) {
        vd->id = strcmp(long_field, "id") == 0 ? NULL : id;
        return fail(vd, long_field, "longer than 16 MiB"), PM_OK;
    }
    vd->id = id;
    *c = (pm_complaint){.id = id, .line = rec->line};
    in->rec_decimal_comma = in->decimal_comma || rec->delim == ';';
    if (check_created(in, &v, c, vd) || check_coords(in, &v, c, vd) ||
        check_topic(in, &v, c, vd) || check_answered(in, &v, c, vd))
        return PM_OK;
    c->source = v.v[PM_F_SOURCE] ? v.v[PM_F_SOURCE] : in->source;
    c->status = v.v[PM_F_STATUS];
    c->executor = v.v[PM_F_EXECUTOR];
    c->district_code = v.v[PM_F_DISTRICT_CODE];
    *ok = 1;
    return PM_OK;
}

/* Adds a checked complaint c (with its dictionary indexes idx, or NULL to
 * look them all up), or rejects it as a duplicate id; *added (may be NULL)
 * says which. */
static int commit_complaint(pm_intake *in, const pm_complaint *c, uint32_t *idx, int *added)
{
    int rc = idx ? pm_complaints_add_indexed(in->ctx, in->cs, c, idx)
                 : pm_complaints_add(in->ctx, in->cs, c);
    if (added)
        *added = rc == PM_OK;
    if (rc == PM_E_INPUT_VALUE) {
        pm_ctx_clear_error(in->ctx);
        return reject_send(in, c->line, c->id, "id", "duplicate id");
    }
    if (rc)
        return rc;
    in->counts.read++;
    in->counts.accepted++;
    size_t n = pm_complaints_count(in->cs);
    if (in->block && n - in->block_from >= in->block_every) {
        size_t from = in->block_from;
        in->block_from = n;
        return in->block(in->block_user, from, n);
    }
    return PM_OK;
}

static int intake_record(pm_intake *in, const pm_record *rec)
{
    pm_complaint c;
    verdict vd;
    int ok, rc = check_record(in, rec, &c, &vd, &ok);
    if (rc)
        return rc;
    if (!ok)
        return reject_send(in, rec->line, vd.id, vd.field, vd.reason);
    return commit_complaint(in, &c, NULL, NULL);
}

static int on_record(void *user, const pm_record *rec)
{
    return intake_record(user, rec);
}

/* ---- the intake ---------------------------------------------------------- */

void pm_intake_free(pm_intake *in)
{
    if (!in)
        return;
    for (int f = 0; f < PM_F_N; f++)
        pm_free(in->col[f]);
    pm_free(in->time_format);
    pm_free(in->source);
    pm_free(in->kc.keys);
    pm_free(in->scratch);
    pm_strtab_free(in->topic_seen);
    pm_free(in->topic_of);
    pm_free(in);
}

/* *dst = copy of s (NULL stays NULL); 0, or -1 when out of memory. */
static int dup_opt(char **dst, const char *s)
{
    *dst = s ? pm_strdup(s) : NULL;
    return s && !*dst ? -1 : 0;
}

/* The intake keeps its own copy of the mapping's settings. */
static int intake_settings(pm_intake *in, const pm_mapping *m)
{
    int bad = dup_opt(&in->time_format, m->time_format) | dup_opt(&in->source, m->source);
    for (int f = 0; f < PM_F_N; f++)
        bad |= dup_opt(&in->col[f], m->col[f]);
    in->utc_offset_s = m->utc_offset_s;
    in->decimal_comma = m->decimal_comma;
    return bad ? PM_ERR(in->ctx, PM_E_NOMEM, "out of memory") : PM_OK;
}

int pm_intake_new(pm_ctx *ctx, const pm_topics *t, const pm_mapping *m, pm_complaints *cs,
                  pm_reject_fn reject_fn, void *reject_user, pm_intake **out)
{
    *out = NULL;
    long def = -1;
    if (m->default_topic && (def = pm_topics_find(t, m->default_topic)) < 0)
        return PM_ERR(ctx, PM_E_INPUT_VALUE, "default topic \"%s\" is not in the catalogue",
                      m->default_topic);
    pm_intake *in = pm_calloc(1, sizeof *in);
    if (!in)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory");
    *in = (pm_intake){.ctx = ctx, .check_ctx = ctx, .topics = t, .cs = cs, .reject = reject_fn,
                      .reject_user = reject_user, .default_topic = def,
                      .sink = {on_record, on_reader_reject, in}};
    in->topic_seen = pm_strtab_new();
    int rc = in->topic_seen ? intake_settings(in, m) : PM_ERR(ctx, PM_E_NOMEM, "out of memory");
    if (rc) {
        pm_intake_free(in);
        return rc;
    }
    *out = in;
    return PM_OK;
}

const pm_record_sink *pm_intake_sink(pm_intake *in) { return &in->sink; }

void pm_intake_set_block(pm_intake *in, size_t every, pm_intake_block_fn fn, void *user)
{
    in->block_every = every ? every : 1;
    in->block = fn;
    in->block_user = user;
    in->block_from = pm_complaints_count(in->cs);
}

pm_intake_counts pm_intake_counts_get(const pm_intake *in) { return in->counts; }

void pm_intake_set_threads(pm_intake *in, int threads) { in->threads = threads; }

void pm_intake_set_progress(pm_intake *in, uint64_t every, void (*fn)(void *user, uint64_t n),
                            void *user)
{
    in->progress_every = fn ? every : 0;
    in->progress = fn;
    in->progress_user = user;
}

/* ---- reading on two threads ---------------------------------------------- */

/* The reader thread tokenizes and checks records into batches; the
 * caller's thread adds them in input order.  A batch item is a checked
 * complaint or a reject, with its strings in the batch's text. */

/* The queue is deep enough (~21 MiB when full) for the reader to go on
 * while the adding thread works on a block (pm_intake_set_block). */
enum { BATCH_ITEMS = 4096, QUEUE_DEPTH = 64 };
#define NO_STR UINT32_MAX

/* The reader keeps the distinct values of each dictionary column (source,
 * status, executor, district code) it has seen, up to LD_MAX of them, and
 * sends a value's string only the first time, then its index in that list:
 * the adding thread maps the index to the column's dictionary index with
 * one array lookup, instead of hashing and comparing every value again
 * (that was a sixth of its work).  LD_STR: the string is in the item
 * (none, or a value beyond the first LD_MAX). */
enum { LD_MAX = 0xFFFF, LD_STR = 0xFFFF };

typedef struct item {
    uint64_t line;
    double lon, lat;
    int64_t created, answered;
    /* complaint: id, source, status, executor, district code (a dictionary
     * value's only when it is new or LD_STR); reject: id, field, reason */
    uint32_t str[5];
    uint16_t ld[PM_DICT_N];      /* complaint: per dictionary column, its value's index */
    uint16_t topic;
    uint8_t rejected;
} item;

typedef struct batch {
    item items[BATCH_ITEMS];
    size_t n;
    char *text;
    size_t len, cap;
    struct batch *next;
} batch;

typedef struct reader_pipe {
    pm_intake *in;
    const char *path;
    pm_input_format fmt;
    pm_ctx *ctx;                 /* the reader's */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    batch *full, **full_tail;    /* read, in order, not yet added */
    size_t n_full;
    batch *spare;
    batch *cur;                  /* the reader's */
    int done, stop, status;      /* reader finished (with status); adding stopped */
    pm_strtab *seen[PM_DICT_N];  /* the reader's: values seen, by their item index */
    struct seen_value {          /* the adding thread's: value ld of column k */
        char *str;
        uint32_t idx;            /* in the complaints' dictionary, or PM_DICT_LOOKUP */
    } *values[PM_DICT_N];
    size_t n_values[PM_DICT_N], cap_values[PM_DICT_N];
    struct prefault {            /* the helper that faults the columns in ahead */
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t wake;
        const pm_complaints *cs;
        size_t done, want, cap;  /* faulted up to done, asked up to want; cap: the columns' */
        int running, stop;
    } pf;
} reader_pipe;

static void batches_free(batch *b)
{
    while (b) {
        batch *next = b->next;
        pm_free(b->text);
        pm_free(b);
        b = next;
    }
}

/* Copies s (NULL: NO_STR) into b's text; its offset, or -1 when out of memory. */
static int64_t batch_str(batch *b, const char *s)
{
    if (!s)
        return NO_STR;
    size_t n = strlen(s) + 1;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64 * 1024;
        while (b->len + n > cap)
            cap *= 2;
        if (cap >= NO_STR)
            return -1;
        char *t = pm_realloc(b->text, cap);
        if (!t)
            return -1;
        b->text = t;
        b->cap = cap;
    }
    memcpy(b->text + b->len, s, n);
    b->len += n;
    return (int64_t)(b->len - n);
}

static const char *item_str(const batch *b, const item *it, int k)
{
    return it->str[k] == NO_STR ? NULL : b->text + it->str[k];
}

/* Hands the reader's batch over, and unless it is the last, takes a
 * fresh one; waits while the queue is full.  Returns PM_E_USAGE when the
 * adding side has stopped (the read then ends). */
static int pipe_push(reader_pipe *p, int last)
{
    pthread_mutex_lock(&p->lock);
    while (p->n_full >= QUEUE_DEPTH && !p->stop)
        pthread_cond_wait(&p->changed, &p->lock);
    int stop = p->stop;
    if (!stop) {
        p->cur->next = NULL;
        *p->full_tail = p->cur;
        p->full_tail = &p->cur->next;
        p->n_full++;
        p->cur = p->spare;
        if (p->cur) {
            p->spare = p->cur->next;
            p->cur->next = NULL;
        }
        pthread_cond_broadcast(&p->changed);
    }
    pthread_mutex_unlock(&p->lock);
    if (stop)
        return PM_ERR(p->ctx, PM_E_USAGE, "reading stopped");
    if (last)
        return PM_OK;
    if (!p->cur && !(p->cur = pm_calloc(1, sizeof *p->cur)))
        return PM_ERR(p->ctx, PM_E_NOMEM, "%s: out of memory", p->path);
    p->cur->n = p->cur->len = 0;
    return PM_OK;
}

/* The reader's next free item, handing a full batch over first. */
static int pipe_item(reader_pipe *p, item **out)
{
    if (p->cur->n == BATCH_ITEMS) {
        int rc = pipe_push(p, 0);
        if (rc)
            return rc;
    }
    *out = &p->cur->items[p->cur->n];
    return PM_OK;
}

static int pipe_strs(reader_pipe *p, item *it, const char *const *strs, int n, uint64_t line)
{
    for (int k = 0; k < n; k++) {
        int64_t off = batch_str(p->cur, strs[k]);
        if (off < 0)
            return PM_ERR(p->ctx, PM_E_NOMEM, "line %" PRIu64 ": out of memory", line);
        it->str[k] = (uint32_t)off;
    }
    p->cur->n++;
    return PM_OK;
}

static int pipe_reject(void *user, uint64_t line, const char *id, const char *field,
                       const char *reason)
{
    reader_pipe *p = user;
    item *it;
    int rc = pipe_item(p, &it);
    if (rc)
        return rc;
    *it = (item){.line = line, .rejected = 1};
    const char *strs[3] = {id, field, reason};
    return pipe_strs(p, it, strs, 3, line);
}

static int pipe_record(void *user, const pm_record *rec)
{
    reader_pipe *p = user;
    pm_complaint c;
    verdict vd;
    int ok, rc = check_record(p->in, rec, &c, &vd, &ok);
    if (rc)
        return rc;
    if (!ok)
        return pipe_reject(p, rec->line, vd.id, vd.field, vd.reason);
    item *it;
    if ((rc = pipe_item(p, &it)))
        return rc;
    *it = (item){.line = c.line, .lon = c.lon, .lat = c.lat, .created = c.created_at,
                 .answered = c.answered_at, .topic = c.topic};
    const char *strs[5] = {c.id, c.source, c.status, c.executor, c.district_code};
    for (int k = 0; k < PM_DICT_N; k++) {
        const char *v = strs[k + 1];
        it->ld[k] = LD_STR;
        if (!v || !v[0])
            continue;
        pm_strtab_pos pos;
        int64_t ld = pm_strtab_lookup(p->seen[k], v, &pos);
        int added = ld < 0 && pm_strtab_count(p->seen[k]) < LD_MAX;
        if (added && (ld = pm_strtab_insert(p->seen[k], v, &pos)) < 0)
            return PM_ERR(p->ctx, PM_E_NOMEM, "line %" PRIu64 ": out of memory", rec->line);
        if (ld >= 0) {
            it->ld[k] = (uint16_t)ld;
            if (!added)
                strs[k + 1] = NULL;   /* the adding thread has it */
        }
    }
    return pipe_strs(p, it, strs, 5, rec->line);
}

static void *pipe_reader(void *arg)
{
    reader_pipe *p = arg;
    pm_record_sink sink = {pipe_record, pipe_reject, p};
    int rc = pm_records_read_path(p->ctx, p->path, p->fmt, 0, &sink);
    if (p->cur && p->cur->n) {   /* what was read before the end, or before an error */
        int st = pipe_push(p, 1);
        rc = rc ? rc : st;
    }
    pthread_mutex_lock(&p->lock);
    p->done = 1;
    p->status = rc;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

enum { ID_AHEAD = 16 };   /* ids whose place in the id table is fetched ahead */

/* ---- faulting the columns in ahead ----------------------------------------
 *
 * The first write to a fresh page of the columns makes the kernel zero it
 * (and on a virtual machine the host fault it in): a quarter of the adding
 * thread's time on 13.7 M complaints.  A helper thread does it first
 * (pm_complaints_prefault), PREFAULT_AHEAD complaints ahead of the adding
 * one, on the core where the reader has room to spare.  Not further: pages
 * never filled stay untouched.  It stops for good before a batch that could
 * pass the columns' capacity (they would move then), and nothing changes
 * but where the time is spent. */
enum { PREFAULT_AHEAD = 1 << 18, PREFAULT_STEP = 1 << 16 };

static void *prefault_run(void *arg)
{
    struct prefault *pf = arg;
    pthread_mutex_lock(&pf->lock);
    for (;;) {
        while (!pf->stop && pf->done >= pf->want)
            pthread_cond_wait(&pf->wake, &pf->lock);
        if (pf->stop)
            break;
        size_t from = pf->done;
        size_t to = pf->want - from > PREFAULT_STEP ? from + PREFAULT_STEP : pf->want;
        pthread_mutex_unlock(&pf->lock);
        pm_complaints_prefault(pf->cs, from, to);
        pthread_mutex_lock(&pf->lock);
        pf->done = to;
    }
    pthread_mutex_unlock(&pf->lock);
    return NULL;
}

/* Starts the helper over cs's columns from its count up to its capacity;
 * without it (no thread), the adding thread faults its pages itself. */
static void prefault_start(struct prefault *pf, const pm_complaints *cs)
{
    *pf = (struct prefault){.cs = cs, .cap = pm_complaints_capacity(cs)};
    pf->done = pf->want = pm_complaints_count(cs);
    pthread_mutex_init(&pf->lock, NULL);
    pthread_cond_init(&pf->wake, NULL);
    pf->running = pf->cap > pf->done &&
                  pthread_create(&pf->thread, NULL, prefault_run, pf) == 0;
}

static void prefault_stop(struct prefault *pf)
{
    if (pf->running) {
        pthread_mutex_lock(&pf->lock);
        pf->stop = 1;
        pthread_cond_signal(&pf->wake);
        pthread_mutex_unlock(&pf->lock);
        pthread_join(pf->thread, NULL);
        pf->running = 0;
    }
}

static void prefault_end(struct prefault *pf)
{
    prefault_stop(pf);
    pthread_mutex_destroy(&pf->lock);
    pthread_cond_destroy(&pf->wake);
}

/* The adding thread, with `count` complaints, is about to add up to
 * `coming` more: the helper runs ahead of them, or stops if they could
 * pass the capacity. */
static void prefault_ahead(struct prefault *pf, size_t count, size_t coming)
{
    if (!pf->running)
        return;
    if (coming > pf->cap - count) {
        prefault_stop(pf);
        return;
    }
    size_t want = pf->cap - count > PREFAULT_AHEAD ? count + PREFAULT_AHEAD : pf->cap;
    pthread_mutex_lock(&pf->lock);
    if (want > pf->want) {
        pf->want = want;
        pthread_cond_signal(&pf->wake);
    }
    pthread_mutex_unlock(&pf->lock);
}

/* The adding side of a complaint's dictionary values: *val and idx[k]
 * for pm_complaints_add_indexed, from the item and the values seen. */
static int pipe_values(reader_pipe *p, const batch *b, const item *it, const char *val[],
                       uint32_t idx[], struct seen_value *sv[])
{
    for (int k = 0; k < PM_DICT_N; k++) {
        val[k] = item_str(b, it, k + 1);
        idx[k] = PM_DICT_LOOKUP;
        sv[k] = NULL;
        if (it->ld[k] == LD_STR)
            continue;
        size_t ld = it->ld[k];
        if (ld == p->n_values[k]) {   /* new: the reader sent its string */
            if (ld == p->cap_values[k]) {
                size_t cap = ld ? 2 * ld : 16;
                struct seen_value *vs = pm_reallocarray(p->values[k], cap, sizeof *vs);
                if (!vs)
                    return PM_ERR(p->in->ctx, PM_E_NOMEM, "line %" PRIu64 ": out of memory",
                                  it->line);
                p->values[k] = vs;
                p->cap_values[k] = cap;
            }
            if (!val[k])
                return PM_ERR(p->in->ctx, PM_E_USAGE, "line %" PRIu64 ": new value %zu of "
                              "column %d without its string", it->line, ld, k);
            char *str = pm_strdup(val[k]);
            if (!str)
                return PM_ERR(p->in->ctx, PM_E_NOMEM, "line %" PRIu64 ": out of memory",
                              it->line);
            p->values[k][ld] = (struct seen_value){str, PM_DICT_LOOKUP};
            p->n_values[k]++;
        } else if (ld > p->n_values[k]) {
            return PM_ERR(p->in->ctx, PM_E_USAGE, "line %" PRIu64 ": value %zu of column %d "
                          "out of order", it->line, ld, k);
        }
        sv[k] = &p->values[k][ld];
        val[k] = sv[k]->str;
        idx[k] = sv[k]->idx;
    }
    return PM_OK;
}

/* Adds one batch's items, as the one-thread path would have. */
static int pipe_add(reader_pipe *p, const batch *b)
{
    pm_intake *in = p->in;
    for (size_t i = 0; i < b->n; i++) {
        const item *it = &b->items[i];
        if (i + ID_AHEAD < b->n && !b->items[i + ID_AHEAD].rejected)
            pm_complaints_prefetch_id(in->cs, item_str(b, &b->items[i + ID_AHEAD], 0));
        int rc;
        if (it->rejected) {
            rc = reject_send(in, it->line, item_str(b, it, 0), item_str(b, it, 1),
                             item_str(b, it, 2));
        } else {
            const char *val[PM_DICT_N];
            uint32_t idx[PM_DICT_N];
            struct seen_value *sv[PM_DICT_N];
            if ((rc = pipe_values(p, b, it, val, idx, sv)))
                return rc;
            pm_complaint c = {.id = item_str(b, it, 0), .line = it->line, .lon = it->lon,
                              .lat = it->lat, .created_at = it->created,
                              .answered_at = it->answered, .topic = it->topic,
                              .source = val[0], .status = val[1], .executor = val[2],
                              .district_code = val[3]};
            int added = 0;
            rc = commit_complaint(in, &c, idx, &added);
            for (int k = 0; added && k < PM_DICT_N; k++)
                if (sv[k])
                    sv[k]->idx = idx[k];
        }
        if (rc)
            return rc;
        if (in->progress_every && in->counts.read % in->progress_every == 0)
            in->progress(in->progress_user, in->counts.read);
    }
    return PM_OK;
}

/* The caller's side: adds batches as they come, until the reader is done
 * or adding fails (then the reader is told to stop). */
static int pipe_drain(reader_pipe *p)
{
    int rc = PM_OK;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->full && !p->done)
            pthread_cond_wait(&p->changed, &p->lock);
        batch *b = p->full;
        if (!b)
            break;
        p->full = b->next;
        if (!p->full)
            p->full_tail = &p->full;
        p->n_full--;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
        prefault_ahead(&p->pf, pm_complaints_count(p->in->cs), b->n);
        rc = pipe_add(p, b);
        pthread_mutex_lock(&p->lock);
        b->next = p->spare;
        p->spare = b;
        if (rc) {
            p->stop = 1;
            pthread_cond_broadcast(&p->changed);
            break;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

/* The reader's error, moved to the caller's context. */
static int pipe_status(pm_ctx *ctx, const reader_pipe *p)
{
    if (!p->status)
        return PM_OK;
    return pm_ctx_set_error(ctx, p->status, pm_ctx_errfunc(p->ctx), "%s", pm_ctx_errmsg(p->ctx));
}

static void pipe_values_free(reader_pipe *p)
{
    for (int k = 0; k < PM_DICT_N; k++) {
        pm_strtab_free(p->seen[k]);
        for (size_t i = 0; i < p->n_values[k]; i++)
            pm_free(p->values[k][i].str);
        pm_free(p->values[k]);
    }
}

static int read_threaded(pm_ctx *ctx, pm_intake *in, const char *path, pm_input_format fmt,
                         pm_ctx *rctx)
{
    reader_pipe p = {.in = in, .path = path, .fmt = fmt, .ctx = rctx};
    p.full_tail = &p.full;
    if (!(p.cur = pm_calloc(1, sizeof *p.cur)))
        return PM_ERR(ctx, PM_E_NOMEM, "%s: out of memory", path);
    for (int k = 0; k < PM_DICT_N; k++)
        if (!(p.seen[k] = pm_strtab_new())) {
            pipe_values_free(&p);
            pm_free(p.cur);
            return PM_ERR(ctx, PM_E_NOMEM, "%s: out of memory", path);
        }
    pthread_mutex_init(&p.lock, NULL);
    pthread_cond_init(&p.changed, NULL);
    prefault_start(&p.pf, in->cs);
    in->check_ctx = rctx;
    pthread_t reader;
    int rc;
    if (pthread_create(&reader, NULL, pipe_reader, &p) != 0) {
        rc = PM_ERR(ctx, PM_E_THREAD, "%s: cannot start the reader thread", path);
    } else {
        rc = pipe_drain(&p);
        pthread_join(reader, NULL);
        if (!rc)
            rc = pipe_status(ctx, &p);
    }
    prefault_end(&p.pf);
    in->check_ctx = ctx;
    batches_free(p.cur);
    batches_free(p.full);
    batches_free(p.spare);
    pipe_values_free(&p);
    pthread_mutex_destroy(&p.lock);
    pthread_cond_destroy(&p.changed);
    return rc;
}

/* ---- reading a file ------------------------------------------------------ */

/* The one-thread path's progress: a sink in front of the intake's. */
static int progress_record(void *user, const pm_record *rec)
{
    pm_intake *in = user;
    int rc = intake_record(in, rec);
    if (!rc && in->progress_every && in->counts.read % in->progress_every == 0)
        in->progress(in->progress_user, in->counts.read);
    return rc;
}

int pm_intake_read_path(pm_ctx *ctx, pm_intake *in, const char *path, pm_input_format fmt)
{
    in->ctx = in->check_ctx = ctx;
    /* Room for what the file likely holds, made once: growing the columns
     * by doubling copied them over and over, and page-faulted the copies
     * (a quarter of the adding thread on 10 M complaints).  Only a hint:
     * a file whose first MiB misleads (long multi-line texts further on)
     * may not get it, and then the columns grow as they are filled. */
    uint64_t expect = pm_records_estimate(path, fmt);
    if (expect && expect < SIZE_MAX / 2 &&
        pm_complaints_reserve(ctx, in->cs, (size_t)expect + expect / 16) != PM_OK) {
        pm_ctx_log(ctx, PM_LOG_INFO, "%s: no room for the ~%" PRIu64 " complaints it seems to "
                   "hold in one piece; the columns grow as they are read", path, expect);
        pm_ctx_clear_error(ctx);
    }
    pm_ctx *rctx = in->threads > 1 ? pm_ctx_new() : NULL;
    if (rctx) {   /* without one (out of memory), on one thread */
        pm_log_fn log;
        void *log_user;
        pm_ctx_get_log(ctx, &log, &log_user);
        pm_ctx_set_log(rctx, log, log_user);
        int rc = read_threaded(ctx, in, path, fmt, rctx);
        pm_ctx_free(rctx);
        return rc;
    }
    pm_record_sink sink = {progress_record, on_reader_reject, in};
    return pm_records_read_path(ctx, path, fmt, 0, in->progress ? &sink : &in->sink);
}
