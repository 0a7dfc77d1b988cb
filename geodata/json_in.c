/* json_in.c — JSON records for the record sink (see pm_record.h):
 * NDJSON (one object per line), GeoJSON FeatureCollections of points and
 * Open311 (GeoReport v2) request arrays, parsed with jansson.
 *
 * NDJSON is read line by line from large blocks, so a bad line (not JSON,
 * not an object, invalid UTF-8, too deep) is rejected alone and reading
 * goes on.  GeoJSON and Open311 are whole documents: the file is read into
 * memory and parsed at once, so a syntax error anywhere is an error for
 * the whole file (PM_E_INPUT with jansson's line and column); a feature or
 * element that does not fit is rejected by its 1-based position.
 *
 * PM_FMT_AUTO decides from the first value of the file: an array is
 * Open311, a FeatureCollection (alone in the file) GeoJSON, and an object
 * written on one line, alone or followed by more lines, NDJSON.
 *
 * Members: scalars only, in the object's order; nested objects and
 * arrays are skipped.  Integers are written as they are, reals with the
 * fewest of 15, 16 or 17 significant digits that read back as the same
 * double (55.36, not 55.359999999999999), true/false, null as "".  A
 * string holding "\u0000" cannot be a C string: that record is rejected.
 * Objects with a repeated member keep the last one (jansson's rule).
 * A Point with empty coordinates is read as having no location, like a
 * null geometry.
 */
#include "pm_record.h"
#include "json_err.h"
#include "../engine/pm_alloc.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum { JSON_BLOCK = 1 << 20, NUM_LEN = 32 };

/* The fields of the record being built; grown once, reused. */
typedef struct json_fields {
    const char **keys;
    const char **values;
    char (*num)[NUM_LEN];   /* text of a number, per field */
    size_t n, cap;
} json_fields;

typedef struct json_reader {
    pm_ctx *ctx;
    const char *name;
    const pm_record_sink *sink;
    json_fields fields;
} json_reader;

static int json_nomem(json_reader *jr)
{
    return PM_ERR(jr->ctx, PM_E_NOMEM, "%s: out of memory", jr->name);
}

static int json_reject(json_reader *jr, uint64_t line, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int json_reject(json_reader *jr, uint64_t line, const char *id, const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    return jr->sink->reject(jr->sink->user, line, id, NULL, reason);
}

/* "an object", "a string", ... for messages. */
static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a value";
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

/* x in buf (NUM_LEN bytes) with the fewest digits that read back as x. */
static void format_real(char *buf, double x)
{
    for (int digits = 15; digits < 17; digits++) {
        snprintf(buf, NUM_LEN, "%.*g", digits, x);
        if (strtod(buf, NULL) == x)
            return;
    }
    snprintf(buf, NUM_LEN, "%.17g", x);
}

/* ---- fields ---- */

/* The index of key among the fields (exact match) or a new field for it
 * (when replace is 0 or the key is not there yet). */
static int fields_slot(json_reader *jr, const char *key, int replace, size_t *idx)
{
    json_fields *jf = &jr->fields;
    for (size_t i = 0; replace && i < jf->n; i++)
        if (strcmp(jf->keys[i], key) == 0) {
            *idx = i;
            return PM_OK;
        }
    if (jf->n == jf->cap) {
        size_t cap = jf->cap ? jf->cap * 2 : 32;
        const char **k = pm_reallocarray(jf->keys, cap, sizeof *k);
        if (!k)
            return json_nomem(jr);
        jf->keys = k;
        const char **v = pm_reallocarray(jf->values, cap, sizeof *v);
        if (!v)
            return json_nomem(jr);
        jf->values = v;
        char (*num)[NUM_LEN] = pm_reallocarray(jf->num, cap, sizeof *num);
        if (!num)
            return json_nomem(jr);
        jf->num = num;
        jf->cap = cap;
    }
    *idx = jf->n++;
    jf->keys[*idx] = key;
    return PM_OK;
}

/* The text of scalar v in field i; 0, or -1 when v is not a scalar. */
static int fields_set_scalar(json_fields *jf, size_t i, const json_t *v)
{
    char *num = jf->num[i];
    switch (json_typeof(v)) {
    case JSON_STRING: jf->values[i] = json_string_value(v); return 0;
    case JSON_INTEGER:
        snprintf(num, NUM_LEN, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL: format_real(num, json_real_value(v)); break;
    case JSON_TRUE: jf->values[i] = "true"; return 0;
    case JSON_FALSE: jf->values[i] = "false"; return 0;
    case JSON_NULL: jf->values[i] = ""; return 0;
    default: return -1;
    }
    jf->values[i] = num;
    return 0;
}

static int is_scalar(const json_t *v)
{
    return !json_is_object(v) && !json_is_array(v);
}

static int has_nul(const json_t *v)
{
    return json_is_string(v) && strlen(json_string_value(v)) != json_string_length(v);
}

/* The scalar members of obj as fields.  *nul_key is set (and nothing
 * added) when a string member holds a NUL character. */
static int fields_from_object(json_reader *jr, const json_t *obj, const char **nul_key)
{
    const char *key;
    json_t *v;
    *nul_key = NULL;
    json_object_foreach((json_t *)obj, key, v) {
        if (has_nul(v)) {
            *nul_key = key;
            return PM_OK;
        }
    }
    json_object_foreach((json_t *)obj, key, v) {
        if (!is_scalar(v))
            continue;
        size_t i = 0;
        int st = fields_slot(jr, key, 0, &i);
        if (st)
            return st;
        fields_set_scalar(&jr->fields, i, v);
    }
    return PM_OK;
}

static int fields_emit(json_reader *jr, uint64_t line)
{
    pm_record rec = {.line = line, .n = jr->fields.n, .keys = jr->fields.keys,
                     .values = jr->fields.values};
    return jr->sink->record(jr->sink->user, &rec);
}

/* An object's members as one record (NDJSON lines, Open311 elements). */
static int object_record(json_reader *jr, uint64_t line, const char *what, const json_t *obj)
{
    const char *nul_key;
    jr->fields.n = 0;
    int st = fields_from_object(jr, obj, &nul_key);
    if (st)
        return st;
    if (nul_key)
        return json_reject(jr, line, NULL, "%smember \"%s\" contains a NUL character", what,
                           nul_key);
    return fields_emit(jr, line);
}

/* ---- NDJSON ---- */

/* Lines of a stream (f) or of a buffer already in memory (f NULL). */
typedef struct line_reader {
    FILE *f;
    char *block;
    size_t pos, len;
    int eof;
    char *buf;              /* a line that crosses blocks */
    size_t blen, bcap;
    uint64_t line;
} line_reader;

static int lines_refill(json_reader *jr, line_reader *lr)
{
    lr->pos = 0;
    lr->len = lr->f ? fread(lr->block, 1, JSON_BLOCK, lr->f) : 0;
    if (lr->f && ferror(lr->f)) {
        int e = errno;
        return PM_ERR(jr->ctx, PM_E_IO, "%s: read error near line %" PRIu64 ": %s", jr->name,
                      lr->line + 1, strerror(e));
    }
    lr->eof = lr->len == 0;
    return PM_OK;
}

static int lines_keep(json_reader *jr, line_reader *lr, const char *s, size_t n)
{
    if (lr->bcap - lr->blen < n) {
        size_t cap = lr->bcap ? lr->bcap : 4096;
        while (cap - lr->blen < n) {
            if (cap > SIZE_MAX / 2)
                return json_nomem(jr);
            cap *= 2;
        }
        char *b = pm_realloc(lr->buf, cap);
        if (!b)
            return json_nomem(jr);
        lr->buf = b;
        lr->bcap = cap;
    }
    memcpy(lr->buf + lr->blen, s, n);
    lr->blen += n;
    return PM_OK;
}

/* The next line (without its '\n') in *s, *n; *got is 0 at the end. */
static int lines_next(json_reader *jr, line_reader *lr, const char **s, size_t *n, int *got)
{
    lr->blen = 0;
    *got = 0;
    for (;;) {
        if (lr->pos == lr->len) {
            int st = lr->eof ? PM_OK : lines_refill(jr, lr);
            if (st)
                return st;
            if (lr->eof) {
                *s = lr->buf, *n = lr->blen, *got = lr->blen > 0;
                lr->line += *got;
                return PM_OK;
            }
        }
        const char *p = lr->block + lr->pos;
        size_t avail = lr->len - lr->pos;
        const char *nl = memchr(p, '\n', avail);
        size_t take = nl ? (size_t)(nl - p) : avail;
        lr->pos += take + (nl != NULL);
        if (nl && lr->blen == 0) {       /* the whole line is in the block */
            *s = p, *n = take, *got = 1;
            lr->line++;
            return PM_OK;
        }
        int st = lines_keep(jr, lr, p, take);
        if (st)
            return st;
        if (nl) {
            *s = lr->buf, *n = lr->blen, *got = 1;
            lr->line++;
            return PM_OK;
        }
    }
}

static int ndjson_line(json_reader *jr, uint64_t line, const char *s, size_t n)
{
    json_error_t err;
    json_t *v = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!v) {
        if (pm_json_error_status(&err) == PM_E_NOMEM)
            return json_nomem(jr);
        char text[160];
        pm_json_error_text_private(&err, text, sizeof text);
        return json_reject(jr, line, NULL, "not valid JSON: %s at column %d", text, err.column);
    }
    int st = json_is_object(v) ? object_record(jr, line, "", v)
                               : json_reject(jr, line, NULL, "line is %s, expected an object",
                                             json_kind(v));
    json_decref(v);
    return st;
}

static int ndjson_read(json_reader *jr, line_reader *lr)
{
    for (;;) {
        const char *s;
        size_t n;
        int got, st = lines_next(jr, lr, &s, &n, &got);
        if (st || !got)
            return st;
        if (lr->line == 1 && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
            s += 3, n -= 3;   /* a UTF-8 BOM */
        if (!is_blank(s, n) && (st = ndjson_line(jr, lr->line, s, n)))
            return st;
    }
}

static int ndjson_read_stream(json_reader *jr, FILE *f)
{
    line_reader lr = {.f = f};
    lr.block = pm_malloc(JSON_BLOCK);
    int st = lr.block ? ndjson_read(jr, &lr) : json_nomem(jr);
    pm_free(lr.block);
    pm_free(lr.buf);
    return st;
}

static int ndjson_read_memory(json_reader *jr, char *buf, size_t len)
{
    line_reader lr = {.block = buf, .len = len, .eof = 1};
    int st = ndjson_read(jr, &lr);
    pm_free(lr.buf);
    return st;
}

/* ---- GeoJSON ---- */

/* Location of a feature's geometry: *has is 0 for a null geometry.
 * Returns 0, or -1 with a reason in why when it is not a usable point. */
static int point_of(const json_t *geom, double *lon, double *lat, int *has, char *why,
                    size_t why_size)
{
    *has = 0;
    if (!geom || json_is_null(geom))
        return 0;
    if (!json_is_object(geom)) {
        snprintf(why, why_size, "geometry is %s, expected an object", json_kind(geom));
        return -1;
    }
    const char *type = json_string_value(json_object_get(geom, "type"));
    if (!type || strcmp(type, "Point") != 0) {
        snprintf(why, why_size, "geometry is a %.40s, expected Point", type ? type : "(no type)");
        return -1;
    }
    const json_t *c = json_object_get(geom, "coordinates");
    if (json_is_array(c) && json_array_size(c) == 0)
        return 0;   /* an empty point */
    if (!json_is_array(c) || json_array_size(c) < 2 || !json_is_number(json_array_get(c, 0)) ||
        !json_is_number(json_array_get(c, 1))) {
        snprintf(why, why_size, "Point coordinates are not [lon, lat] numbers");
        return -1;
    }
    *lon = json_number_value(json_array_get(c, 0));
    *lat = json_number_value(json_array_get(c, 1));
    *has = 1;
    return 0;
}

static int fields_set_number(json_reader *jr, const char *key, double x)
{
    size_t i = 0;
    int st = fields_slot(jr, key, 1, &i);
    if (st)
        return st;
    format_real(jr->fields.num[i], x);
    jr->fields.values[i] = jr->fields.num[i];
    return PM_OK;
}

/* The feature's "id" member, else its properties' "id", as text for
 * rejects (NULL when neither is a string or a number). */
static const char *feature_id(const json_t *feat, const json_t *props, char *buf, size_t size)
{
    const json_t *id = json_object_get(feat, "id");
    if (!id && json_is_object(props))
        id = json_object_get(props, "id");
    if (json_is_string(id) && !has_nul(id))
        return json_string_value(id);
    if (json_is_integer(id))
        snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(id));
    else if (json_is_real(id))
        format_real(buf, json_real_value(id));
    else
        return NULL;
    return buf;
}

/* Why feat (the pos-th feature) is not a record we can read, or NULL. */
static const char *feature_problem(const json_t *feat, const json_t *props, char *why,
                                   size_t size)
{
    const json_t *type = json_object_get(feat, "type");
    if (type && (!json_is_string(type) || strcmp(json_string_value(type), "Feature") != 0))
        snprintf(why, size, "type is not \"Feature\"");
    else if (props && !json_is_object(props) && !json_is_null(props))
        snprintf(why, size, "properties is %s, expected an object", json_kind(props));
    else
        return NULL;
    return why;
}

static int geojson_feature(json_reader *jr, size_t pos, const json_t *feat)
{
    if (!json_is_object(feat))
        return json_reject(jr, pos, NULL, "feature %zu: is %s, expected an object", pos,
                           json_kind(feat));
    const json_t *props = json_object_get(feat, "properties");
    char idbuf[NUM_LEN], why[160];
    const char *id = feature_id(feat, props, idbuf, sizeof idbuf);
    double lon = 0, lat = 0;
    int has_point;
    if (feature_problem(feat, props, why, sizeof why) ||
        point_of(json_object_get(feat, "geometry"), &lon, &lat, &has_point, why, sizeof why))
        return json_reject(jr, pos, id, "feature %zu: %s", pos, why);
    const char *nul_key = NULL;
    jr->fields.n = 0;
    int st = json_is_object(props) ? fields_from_object(jr, props, &nul_key) : PM_OK;
    if (st)
        return st;
    if (nul_key)
        return json_reject(jr, pos, id, "feature %zu: member \"%s\" contains a NUL character",
                           pos, nul_key);
    if (has_point && ((st = fields_set_number(jr, "lon", lon)) ||
                      (st = fields_set_number(jr, "lat", lat))))
        return st;
    const json_t *fid = json_object_get(feat, "id");
    int props_have_id = json_is_object(props) && json_object_get(props, "id");
    if (fid && is_scalar(fid) && !has_nul(fid) && !props_have_id) {
        size_t i = 0;
        if ((st = fields_slot(jr, "id", 1, &i)))
            return st;
        fields_set_scalar(&jr->fields, i, fid);
    }
    return fields_emit(jr, pos);
}

/* A top-level value's description for messages: "a Feature", "an array". */
static const char *top_kind(const json_t *v)
{
    const char *type = json_string_value(json_object_get(v, "type"));
    if (!type)
        return json_kind(v);
    if (strcmp(type, "Feature") == 0)
        return "a Feature";
    if (strcmp(type, "Point") == 0 || strcmp(type, "GeometryCollection") == 0)
        return "a bare geometry";
    return "an object of another type";
}

static int is_feature_collection(const json_t *v)
{
    const char *type = json_string_value(json_object_get(v, "type"));
    return type && strcmp(type, "FeatureCollection") == 0;
}

static int geojson_read(json_reader *jr, const json_t *root)
{
    if (!is_feature_collection(root))
        return PM_ERR(jr->ctx, PM_E_INPUT, "%s: top level is %s, expected a FeatureCollection",
                      jr->name, top_kind(root));
    const json_t *features = json_object_get(root, "features");
    if (!json_is_array(features))
        return PM_ERR(jr->ctx, PM_E_INPUT, "%s: FeatureCollection has no \"features\" array",
                      jr->name);
    for (size_t i = 0; i < json_array_size(features); i++) {
        int st = geojson_feature(jr, i + 1, json_array_get(features, i));
        if (st)
            return st;
    }
    return PM_OK;
}

/* ---- Open311 ---- */

static int open311_read(json_reader *jr, const json_t *root)
{
    if (!json_is_array(root))
        return PM_ERR(jr->ctx, PM_E_INPUT,
                      "%s: top level is %s, expected an array of service requests", jr->name,
                      top_kind(root));
    for (size_t i = 0; i < json_array_size(root); i++) {
        const json_t *el = json_array_get(root, i);
        char what[48];
        snprintf(what, sizeof what, "element %zu: ", i + 1);
        int st = json_is_object(el)
                     ? object_record(jr, i + 1, what, el)
                     : json_reject(jr, i + 1, NULL, "element %zu: is %s, expected an object",
                                   i + 1, json_kind(el));
        if (st)
            return st;
    }
    return PM_OK;
}

/* ---- whole documents ---- */

/* The whole stream into *buf (caller frees), without a UTF-8 BOM. */
static int slurp(json_reader *jr, FILE *f, char **buf, size_t *len)
{
    size_t cap = JSON_BLOCK, n = 0;
    char *b = pm_malloc(cap);
    if (!b)
        return json_nomem(jr);
    for (;;) {
        n += fread(b + n, 1, cap - n, f);
        if (ferror(f)) {
            int e = errno;
            pm_free(b);
            return PM_ERR(jr->ctx, PM_E_IO, "%s: read error: %s", jr->name, strerror(e));
        }
        if (n < cap)
            break;
        char *nb = cap <= SIZE_MAX / 2 ? pm_realloc(b, cap * 2) : NULL;
        if (!nb) {
            pm_free(b);
            return json_nomem(jr);
        }
        b = nb;
        cap *= 2;
    }
    size_t skip = n >= 3 && memcmp(b, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    memmove(b, b + skip, n - skip);
    *buf = b;
    *len = n - skip;
    return PM_OK;
}

static int doc_error(json_reader *jr, const json_error_t *err)
{
    if (pm_json_error_status(err) == PM_E_NOMEM)
        return json_nomem(jr);
    char text[160];
    pm_json_error_text_private(err, text, sizeof text);
    return PM_ERR(jr->ctx, PM_E_INPUT, "%s: not valid JSON at line %d, column %d: %s", jr->name,
                  err->line, err->column, text);
}

static int doc_read(json_reader *jr, const json_t *root, pm_input_format fmt)
{
    return fmt == PM_FMT_GEOJSON ? geojson_read(jr, root) : open311_read(jr, root);
}

static int doc_parse(json_reader *jr, const char *buf, size_t len, json_t **root)
{
    json_error_t err;
    *root = json_loadb(buf, len, JSON_ALLOW_NUL, &err);
    return *root ? PM_OK : doc_error(jr, &err);
}

/* PM_FMT_AUTO: the kind of input from its first value (see the top). */
static int auto_read(json_reader *jr, char *buf, size_t len)
{
    json_error_t err;
    json_t *first = json_loadb(buf, len, JSON_DISABLE_EOF_CHECK | JSON_ALLOW_NUL, &err);
    if (!first)
        return doc_error(jr, &err);
    size_t used = (size_t)err.position;
    size_t start = 0;
    while (start < used && is_blank(buf + start, 1))
        start++;
    int alone = is_blank(buf + used, len - used);
    int one_line = !memchr(buf + start, '\n', used - start);
    int st;
    if (alone && (json_is_array(first) || is_feature_collection(first)))
        st = doc_read(jr, first, json_is_array(first) ? PM_FMT_OPEN311 : PM_FMT_GEOJSON);
    else if (json_is_object(first) && one_line)
        st = ndjson_read_memory(jr, buf, len);
    else if (alone)
        st = geojson_read(jr, first);   /* says what the top level is */
    else {      /* more after a multi-line value: jansson says where */
        json_t *whole;
        st = doc_parse(jr, buf, len, &whole);
        json_decref(whole);
    }
    json_decref(first);
    return st;
}

static int document_read(json_reader *jr, FILE *f, pm_input_format fmt)
{
    char *buf = NULL;
    size_t len = 0;
    int st = slurp(jr, f, &buf, &len);
    if (st)
        return st;
    if (fmt == PM_FMT_AUTO) {
        st = auto_read(jr, buf, len);
        pm_free(buf);
        return st;
    }
    json_t *root;
    st = doc_parse(jr, buf, len, &root);
    pm_free(buf);
    if (st)
        return st;
    st = doc_read(jr, root, fmt);
    json_decref(root);
    return st;
}

int pm_json_read(pm_ctx *ctx, FILE *f, const char *name, pm_input_format fmt,
                 const pm_record_sink *sink)
{
    json_reader jr = {.ctx = ctx, .name = name, .sink = sink};
    int st;
    switch (fmt) {
    case PM_FMT_NDJSON: st = ndjson_read_stream(&jr, f); break;
    case PM_FMT_AUTO:
    case PM_FMT_GEOJSON:
    case PM_FMT_OPEN311: st = document_read(&jr, f, fmt); break;
    default:
        return PM_ERR(ctx, PM_E_USAGE, "%s: format %s is not a JSON format", name,
                      pm_input_format_name(fmt));
    }
    pm_free(jr.fields.keys);
    pm_free(jr.fields.values);
    pm_free(jr.fields.num);
    return st;
}
