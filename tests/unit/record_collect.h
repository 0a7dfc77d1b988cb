/* record_collect.h — for the reader tests: a pm_record_sink that keeps what
 * it is given as text ("L<line> key=value|key=value" per record,
 * "L<line> [id]: reason" per reject), so tests compare strings. */
#ifndef PM_TEST_RECORD_COLLECT_H
#define PM_TEST_RECORD_COLLECT_H

#include "../../geodata/pm_record.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct collected {
    char **recs;       /* "L<line> key=value|key=value" */
    size_t nrec;
    char **rejs;       /* "L<line> [id]: reason" */
    size_t nrej;
    size_t stop_after; /* stop with PM_E_INPUT_VALUE after this many records; 0: never */
} collected;

static void push(char ***arr, size_t *n, char *s)
{
    *arr = realloc(*arr, (*n + 1) * sizeof **arr);
    (*arr)[(*n)++] = s;
}

static int on_record(void *user, const pm_record *rec)
{
    collected *c = user;
    size_t size = 32;
    for (size_t i = 0; i < rec->n; i++)
        size += strlen(rec->keys[i]) + strlen(rec->values[i]) + 2;
    char *s = malloc(size);
    size_t len = (size_t)sprintf(s, "L%" PRIu64 " ", rec->line);
    for (size_t i = 0; i < rec->n; i++)
        len += (size_t)sprintf(s + len, "%s%s=%s", i ? "|" : "", rec->keys[i], rec->values[i]);
    push(&c->recs, &c->nrec, s);
    return c->stop_after && c->nrec >= c->stop_after ? PM_E_INPUT_VALUE : 0;
}

static int on_reject(void *user, uint64_t line, const char *id, const char *field,
                     const char *reason)
{
    collected *c = user;
    (void)field;
    char *s = malloc(strlen(reason) + (id ? strlen(id) : 0) + 40);
    sprintf(s, "L%" PRIu64 "%s%s%s: %s", line, id ? " [" : "", id ? id : "", id ? "]" : "",
            reason);
    push(&c->rejs, &c->nrej, s);
    return 0;
}

static void collected_free(collected *c)
{
    for (size_t i = 0; i < c->nrec; i++)
        free(c->recs[i]);
    for (size_t i = 0; i < c->nrej; i++)
        free(c->rejs[i]);
    free(c->recs);
    free(c->rejs);
    memset(c, 0, sizeof *c);
}

#endif
