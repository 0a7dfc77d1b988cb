/* topics.c — the topic catalogue and source categories (see pm_topics.h).
 *
 * Lookups run once per complaint, so they go through hash tables (the
 * engine's string table), never a scan:
 *   cats   exact (trimmed) source categories added by a mapping;
 *   names  folded keys: codes, Russian and English names, aliases, and the
 *          folded form of each category.
 * A query is trimmed, tried in cats, then folded and tried in names.
 * Folding lower-cases ASCII and Cyrillic letters (А-Я, Ё and the other
 * U+0400..U+042F capitals); both are byte-length preserving in UTF-8.
 *
 * In the catalogue a key may not name two topics (an alias of "roads"
 * equal to a name of "transport" is an error).  A category may be mapped
 * again to the same topic; to another one it is an error.  The folded form
 * of a category that clashes with a catalogue key is dropped: the catalogue
 * wins for case-insensitive matches, the mapping for exact ones.
 */
#include "pm_topics.h"
#include "json_err.h"
#include "../engine/pm_alloc.h"
#include "../engine/strtab.h"

#include <jansson.h>
#include <string.h>

#define KEY_MAX 512          /* keys and queries are at most KEY_MAX-1 bytes */
#define TOPICS_MAX 65535     /* topic indexes are uint16_t */

typedef struct topic {
    char *code, *name_ru, *name_en;
    char color[8];
} topic;

/* A string table whose entry k names topic of[k]. */
typedef struct keymap {
    pm_strtab *tab;
    uint16_t *of;
    size_t cap;
} keymap;

struct pm_topics {
    topic *v;
    size_t n;
    pm_strtab *codes;   /* folded code; index i is topic i */
    keymap names;
    keymap cats;
};

/* ---- keys ---------------------------------------------------------------- */

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Lower-cases ASCII and Cyrillic capitals of s[0..n) into out (n bytes). */
static void fold(const char *s, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z') {
            out[i] = (char)(c + 32);
        } else if (c == 0xD0 && i + 1 < n) {
            unsigned char c2 = (unsigned char)s[i + 1];
            if (c2 >= 0x80 && c2 <= 0x8F) {          /* Ѐ..Џ (Ё) → ѐ..џ */
                out[i] = (char)0xD1;
                out[i + 1] = (char)(c2 + 0x10);
            } else if (c2 >= 0x90 && c2 <= 0x9F) {   /* А..П → а..п */
                out[i] = (char)0xD0;
                out[i + 1] = (char)(c2 + 0x20);
            } else if (c2 >= 0xA0 && c2 <= 0xAF) {   /* Р..Я → р..я */
                out[i] = (char)0xD1;
                out[i + 1] = (char)(c2 - 0x20);
            } else {
                out[i] = (char)c;
                out[i + 1] = (char)c2;
            }
            i++;
        } else {
            out[i] = (char)c;
        }
    }
}

/* s trimmed (and folded when asked) into buf[KEY_MAX].  Its length, or -1
 * when empty or too long. */
static long key_prepare(const char *s, int folded, char *buf)
{
    while (is_blank(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && is_blank(s[n - 1]))
        n--;
    if (n == 0 || n >= KEY_MAX)
        return -1;
    if (folded)
        fold(s, n, buf);
    else
        memcpy(buf, s, n);
    buf[n] = '\0';
    return (long)n;
}

static long keymap_find(const keymap *km, const char *key)
{
    int64_t k = pm_strtab_find(km->tab, key);
    return k < 0 ? -1 : km->of[k];
}

/* Adds key → topic.  0 when added or already naming topic; 1 when it names
 * another topic (*other); -1 when out of memory (nothing added). */
static int keymap_put(keymap *km, const char *key, uint16_t topic_i, long *other)
{
    if (pm_strtab_count(km->tab) >= km->cap) {   /* room first: intern cannot be undone */
        size_t cap = km->cap ? km->cap * 2 : 64;
        uint16_t *of = pm_reallocarray(km->of, cap, sizeof *of);
        if (!of)
            return -1;
        km->of = of;
        km->cap = cap;
    }
    int added = 0;
    int64_t k = pm_strtab_intern(km->tab, key, &added);
    if (k < 0)
        return -1;
    if (added) {
        km->of[k] = topic_i;
        return 0;
    }
    *other = km->of[k];
    return km->of[k] == topic_i ? 0 : 1;
}

static void keymap_free(keymap *km)
{
    pm_strtab_free(km->tab);
    pm_free(km->of);
}

/* ---- catalogue ----------------------------------------------------------- */

void pm_topics_free(pm_topics *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        pm_free(t->v[i].code);
        pm_free(t->v[i].name_ru);
        pm_free(t->v[i].name_en);
    }
    pm_free(t->v);
    pm_strtab_free(t->codes);
    keymap_free(&t->names);
    keymap_free(&t->cats);
    pm_free(t);
}

static pm_topics *topics_new(size_t n)
{
    pm_topics *t = pm_calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->v = pm_calloc(n, sizeof *t->v);
    t->codes = pm_strtab_new();
    t->names.tab = pm_strtab_new();
    t->cats.tab = pm_strtab_new();
    if (!t->v || !t->codes || !t->names.tab || !t->cats.tab) {
        pm_topics_free(t);
        return NULL;
    }
    return t;
}

static int is_code_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* "#rrggbb" in any case → lower case into out[8]. */
static int color_parse(const char *s, char *out)
{
    if (strlen(s) != 7 || s[0] != '#')
        return -1;
    for (int i = 1; i < 7; i++)
        if (!is_hex(s[i]))
            return -1;
    fold(s, 8, out);
    return 0;
}

/* Where an entry's error is reported: "path: topic 3 (\"roads\")". */
typedef struct entry {
    pm_ctx *ctx;
    const char *path;
    size_t no;          /* 1-based */
    const char *code;   /* NULL until known */
} entry;

#define ENTRY_ERR(e, code_, fmt, ...)                                                              \
    ((e)->code ? PM_ERR((e)->ctx, code_, "%s: topic %zu (\"%s\"): " fmt, (e)->path, (e)->no,        \
                        (e)->code, __VA_ARGS__)                                                     \
               : PM_ERR((e)->ctx, code_, "%s: topic %zu: " fmt, (e)->path, (e)->no, __VA_ARGS__))

/* A required non-empty string member of o. */
static int member_str(const entry *e, json_t *o, const char *name, const char **out)
{
    json_t *v = json_object_get(o, name);
    if (!v)
        return ENTRY_ERR(e, PM_E_INPUT_FIELD, "missing %s", name);
    if (!json_is_string(v) || json_string_length(v) == 0)
        return ENTRY_ERR(e, PM_E_INPUT_VALUE, "%s is not a non-empty string", name);
    *out = json_string_value(v);
    return PM_OK;
}

/* Adds a folded name (code, name or alias) of topic i. */
static int add_name(const entry *e, pm_topics *t, size_t i, const char *what, const char *s)
{
    char key[KEY_MAX];
    if (key_prepare(s, 1, key) < 0)
        return ENTRY_ERR(e, PM_E_INPUT_VALUE, "%s \"%.64s\" is blank or longer than %d bytes", what,
                         s, KEY_MAX - 1);
    long other = -1;
    int r = keymap_put(&t->names, key, (uint16_t)i, &other);
    if (r < 0)
        return PM_ERR(e->ctx, PM_E_NOMEM, "%s: out of memory", e->path);
    if (r > 0)
        return ENTRY_ERR(e, PM_E_INPUT_VALUE, "%s \"%s\" already names topic \"%s\"", what, s,
                         t->v[other].code);
    return PM_OK;
}

static int add_aliases(const entry *e, pm_topics *t, size_t i, json_t *o)
{
    json_t *a = json_object_get(o, "aliases");
    if (!a)
        return PM_OK;
    if (!json_is_array(a))
        return ENTRY_ERR(e, PM_E_INPUT_VALUE, "%s is not an array", "aliases");
    size_t k;
    json_t *v;
    json_array_foreach(a, k, v) {
        if (!json_is_string(v))
            return ENTRY_ERR(e, PM_E_INPUT_VALUE, "alias %zu is not a string", k + 1);
        int rc = add_name(e, t, i, "alias", json_string_value(v));
        if (rc)
            return rc;
    }
    return PM_OK;
}

static int dup_names(const entry *e, topic *tp, const char *code, const char *ru, const char *en)
{
    tp->code = pm_strdup(code);
    tp->name_ru = pm_strdup(ru);
    tp->name_en = pm_strdup(en);
    if (!tp->code || !tp->name_ru || !tp->name_en)
        return PM_ERR(e->ctx, PM_E_NOMEM, "%s: out of memory", e->path);
    return PM_OK;
}

/* Topic i of the catalogue from the JSON object o. */
static int topic_load(entry *e, pm_topics *t, size_t i, json_t *o)
{
    if (!json_is_object(o))
        return ENTRY_ERR(e, PM_E_INPUT, "%s", "not an object");
    const char *code, *ru, *en, *color;
    int rc = member_str(e, o, "code", &code);
    if (rc)
        return rc;
    for (const char *c = code; *c; c++)
        if (!is_code_char(*c))
            return ENTRY_ERR(e, PM_E_INPUT_VALUE, "code \"%s\" is not an ASCII identifier", code);
    e->code = code;
    char key[KEY_MAX];
    if (key_prepare(code, 1, key) < 0)
        return ENTRY_ERR(e, PM_E_INPUT_VALUE, "code longer than %d bytes", KEY_MAX - 1);
    int added = 0;
    int64_t k = pm_strtab_intern(t->codes, key, &added);
    if (k < 0)
        return PM_ERR(e->ctx, PM_E_NOMEM, "%s: out of memory", e->path);
    if (!added)
        return ENTRY_ERR(e, PM_E_INPUT_VALUE, "duplicate code (first used by topic %lld)",
                         (long long)k + 1);
    if ((rc = member_str(e, o, "name_ru", &ru)) || (rc = member_str(e, o, "name_en", &en)) ||
        (rc = member_str(e, o, "color", &color)))
        return rc;
    topic *tp = &t->v[i];
    if (color_parse(color, tp->color) != 0)
        return ENTRY_ERR(e, PM_E_INPUT_VALUE, "bad colour \"%s\" (expected \"#rrggbb\")", color);
    if ((rc = dup_names(e, tp, code, ru, en)))
        return rc;
    if ((rc = add_name(e, t, i, "code", code)) || (rc = add_name(e, t, i, "name_ru", ru)) ||
        (rc = add_name(e, t, i, "name_en", en)))
        return rc;
    return add_aliases(e, t, i, o);
}

static int catalogue_load(pm_ctx *ctx, const char *path, json_t *root, pm_topics **out)
{
    if (!json_is_object(root))
        return PM_ERR(ctx, PM_E_INPUT, "%s: not a JSON object", path);
    json_t *ver = json_object_get(root, "version");
    if (ver && !(json_is_integer(ver) && json_integer_value(ver) == 1))
        return PM_ERR(ctx, PM_E_INPUT_VALUE, "%s: unsupported version (expected 1)", path);
    json_t *arr = json_object_get(root, "topics");
    if (!json_is_array(arr))
        return PM_ERR(ctx, PM_E_INPUT_FIELD, "%s: no \"topics\" array", path);
    size_t n = json_array_size(arr);
    if (n == 0)
        return PM_ERR(ctx, PM_E_INPUT_EMPTY, "%s: the \"topics\" array is empty", path);
    if (n > TOPICS_MAX)
        return PM_ERR(ctx, PM_E_INPUT_VALUE, "%s: %zu topics, more than %d", path, n, TOPICS_MAX);
    pm_topics *t = topics_new(n);
    if (!t)
        return PM_ERR(ctx, PM_E_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) {
        entry e = {ctx, path, i + 1, NULL};
        int rc = topic_load(&e, t, i, json_array_get(arr, i));
        t->n = i + 1;   /* topic i holds allocations to free, even partly loaded */
        if (rc) {
            pm_topics_free(t);
            return rc;
        }
    }
    *out = t;
    return PM_OK;
}

int pm_topics_load(pm_ctx *ctx, const char *path, pm_topics **out)
{
    *out = NULL;
    json_error_t err;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        return PM_ERR(ctx, pm_json_error_status(&err), "%s:%d:%d: %s", path, err.line,
                      err.column, err.text);
    }
    int rc = catalogue_load(ctx, path, root, out);
    json_decref(root);
    return rc;
}

size_t pm_topics_count(const pm_topics *t) { return t->n; }
const char *pm_topic_code(const pm_topics *t, size_t i) { return t->v[i].code; }
const char *pm_topic_name_ru(const pm_topics *t, size_t i) { return t->v[i].name_ru; }
const char *pm_topic_name_en(const pm_topics *t, size_t i) { return t->v[i].name_en; }
const char *pm_topic_color(const pm_topics *t, size_t i) { return t->v[i].color; }

long pm_topics_find(const pm_topics *t, const char *s)
{
    char key[KEY_MAX];
    long n = s ? key_prepare(s, 0, key) : -1;
    if (n < 0)
        return -1;
    long i = keymap_find(&t->cats, key);
    if (i >= 0)
        return i;
    fold(key, (size_t)n, key);
    return keymap_find(&t->names, key);
}

int pm_topics_add_category(pm_ctx *ctx, pm_topics *t, const char *category,
                           const char *topic_code)
{
    char key[KEY_MAX];
    int64_t ti = key_prepare(topic_code, 1, key) < 0 ? -1 : pm_strtab_find(t->codes, key);
    if (ti < 0)
        return PM_ERR(ctx, PM_E_INPUT_VALUE, "category \"%.64s\": no topic with code \"%.64s\"",
                      category, topic_code);
    long n = key_prepare(category, 0, key);
    if (n < 0)
        return PM_ERR(ctx, PM_E_INPUT_VALUE, "category \"%.64s\" is blank or longer than %d bytes",
                      category, KEY_MAX - 1);
    long other = -1;
    int r = keymap_put(&t->cats, key, (uint16_t)ti, &other);
    if (r > 0)
        return PM_ERR(ctx, PM_E_INPUT_VALUE, "category \"%s\" is already mapped to topic \"%s\"", key,
                      t->v[other].code);
    fold(key, (size_t)n, key);
    if (r < 0 || keymap_put(&t->names, key, (uint16_t)ti, &other) < 0)
        return PM_ERR(ctx, PM_E_NOMEM, "out of memory adding category \"%.64s\"", category);
    return PM_OK;
}
