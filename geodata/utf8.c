/* utf8.c — strict UTF-8 validation (see utf8.h).
 *
 * Complaint values are mostly ASCII with Cyrillic words in between
 * (executors, districts, topics): sixteen bytes are checked at a time
 * (SSE2) as long as they hold only one- and two-byte characters, where
 * it is enough that every continuation byte follows a lead byte
 * C2..DF (and a continuation byte that follows none is an error, as
 * is a lead without one).  Sixteen bytes with any other byte in them (a
 * lead of three or four, or a byte no UTF-8 has) go to the byte-wise
 * check, one character at a time, and the quick way resumes after them. */
#include "utf8.h"

#include <stdint.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* The character at s (s < end) checked byte by byte: its length, or 0
 * when it is not valid. */
static size_t char_len(const unsigned char *s, const unsigned char *end)
{
    unsigned c = *s;
    size_t k;
    unsigned lo = 0x80, hi = 0xBF;   /* bounds of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        k = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        k = 2;
        if (c == 0xE0)
            lo = 0xA0;   /* overlong */
        else if (c == 0xED)
            hi = 0x9F;   /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 3;
        if (c == 0xF0)
            lo = 0x90;   /* overlong */
        else if (c == 0xF4)
            hi = 0x8F;   /* above U+10FFFF */
    } else {
        return 0;
    }
    if ((size_t)(end - s) <= k || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i <= k; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return k + 1;
}

/* How many bytes from s are valid characters found the quick way: runs
 * of sixteen that hold only one- and two-byte characters (a lead in the
 * last byte is left for the next run), then runs of eight ASCII bytes.
 * Stops where that fails, at the start of a character. */
static size_t quick_prefix(const unsigned char *s, const unsigned char *end)
{
    const unsigned char *p = s;
#ifdef __SSE2__
    /* as signed bytes: a continuation 80..BF is below -64, a lead C2..DF
     * above -63 and below -32 */
    const __m128i cont_max = _mm_set1_epi8(-64), lead_min = _mm_set1_epi8(-63),
                  lead_max = _mm_set1_epi8(-32);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        unsigned high = (unsigned)_mm_movemask_epi8(v);
        if (!high) {
            p += 16;
            continue;
        }
        unsigned cont = (unsigned)_mm_movemask_epi8(_mm_cmplt_epi8(v, cont_max));
        unsigned lead = (unsigned)_mm_movemask_epi8(
            _mm_and_si128(_mm_cmpgt_epi8(v, lead_min), _mm_cmplt_epi8(v, lead_max)));
        if ((cont | lead) != high || cont != ((lead << 1) & 0xFFFFu))
            break;
        p += lead & 0x8000u ? 15 : 16;
    }
#endif
    uint64_t w;
    while (end - p >= 8 && (memcpy(&w, p, 8), (w & UINT64_C(0x8080808080808080)) == 0))
        p += 8;
    return (size_t)(p - s);
}

int pm_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str, *end = s + n;
    while (s < end) {
        s += quick_prefix(s, end);
        /* the next sixteen bytes, or what is left, one character at a time */
        const unsigned char *stop = end - s > 16 ? s + 16 : end;
        while (s < stop) {
            size_t k = char_len(s, end);
            if (!k)
                return 0;
            s += k;
        }
    }
    return 1;
}
