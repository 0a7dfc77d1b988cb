/* fuzz_csv.c — complaints as csv (the reader, then the intake's checks);
 * read = accepted + rejected on every input.  See fuzz_util.h. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_complaints(data, size, PM_FMT_CSV);
}
