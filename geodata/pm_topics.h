/* pm_topics.h — the topic catalogue (industry blocks) and source categories.
 *
 * The catalogue is a JSON file shipped with the program (data/topics.json):
 *   {"version": 1, "topics": [{"code": "housing", "name_ru": "ЖКХ",
 *     "name_en": "Housing and utilities", "color": "#1f77b4",
 *     "aliases": ["жилищно-коммунальное хозяйство", ...]}, ...]}
 * Codes are stable ASCII identifiers; the index of a topic is its position
 * in the file and never changes for a given catalogue.  A topic is found
 * by code (ASCII case-insensitive), by Russian or English name or by an
 * alias (exact after trimming and, for ASCII letters, case folding; Russian
 * names are also matched case-insensitively for Cyrillic letters).
 *
 * A mapping from a source's own categories (e.g. NYC 311 "Complaint Type")
 * to topic codes can be added with pm_topics_add_category().
 */
#ifndef PM_TOPICS_H
#define PM_TOPICS_H

#include "../engine/pm_ctx.h"
#include <stddef.h>

typedef struct pm_topics pm_topics;

/* Reads the catalogue; errors name the file and the offending entry.
 * Caller frees with pm_topics_free(). */
int pm_topics_load(pm_ctx *ctx, const char *path, pm_topics **out);
void pm_topics_free(pm_topics *t);

size_t pm_topics_count(const pm_topics *t);
const char *pm_topic_code(const pm_topics *t, size_t i);
const char *pm_topic_name_ru(const pm_topics *t, size_t i);
const char *pm_topic_name_en(const pm_topics *t, size_t i);
const char *pm_topic_color(const pm_topics *t, size_t i);   /* "#rrggbb" */

/* Index of the topic named by s (code, name, alias or mapped source
 * category), or -1. */
long pm_topics_find(const pm_topics *t, const char *s);

/* Maps a source category to the topic with code topic_code (which must
 * exist: PM_E_INPUT_VALUE otherwise). */
int pm_topics_add_category(pm_ctx *ctx, pm_topics *t, const char *category,
                           const char *topic_code);

#endif
