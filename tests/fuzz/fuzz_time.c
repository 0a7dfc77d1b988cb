/* fuzz_time.c — the time parsers (geodata/timeparse.c): the input is an
 * ISO 8601 candidate, or, split at its first NUL, a value and an
 * strptime-like format.  A parsed time formats back without trouble. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 2);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = s[size + 1] = '\0';
    int64_t t;
    char buf[32];
    if (pm_time_parse_iso8601(s, 25200, &t) == 0)
        pm_time_format_utc(t, buf);
    const char *fmt = s + strlen(s) + 1;   /* "" when there is no NUL */
    if (pm_time_parse_format(s, fmt, -18000, &t) == 0)
        pm_time_format_utc(t, buf);
    free(s);
    return 0;
}
