/* json_err.c — jansson load errors in our terms (see json_err.h). */
#include "json_err.h"
#include "../engine/pm_ctx.h"

#include <stdio.h>
#include <string.h>

int pm_json_error_status(const json_error_t *err)
{
    switch (json_error_code(err)) {
    case json_error_out_of_memory: return PM_E_NOMEM;
    case json_error_cannot_open_file: return PM_E_IO;
    default: return PM_E_INPUT;
    }
}

void pm_json_error_text_private(const json_error_t *err, char *buf, size_t n)
{
    snprintf(buf, n, "%s", err->text);
    char *near = strstr(buf, " near ");
    if (near)
        *near = '\0';
}
