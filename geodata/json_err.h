/* json_err.h — internal: jansson load errors in our terms, for every
 * reader that loads JSON (boundaries, topics, mappings, complaints). */
#ifndef PM_JSON_ERR_H
#define PM_JSON_ERR_H

#include <jansson.h>
#include <stddef.h>

/* PM_E_NOMEM, PM_E_IO (cannot open) or PM_E_INPUT. */
int pm_json_error_status(const json_error_t *err);

/* jansson's message without the input it quotes ("... near 'xyz'"): in a
 * complaint file that input may be a citizen's text, which must never
 * reach a reject reason or a log.  Writes into buf (n bytes). */
void pm_json_error_text_private(const json_error_t *err, char *buf, size_t n);

#endif
