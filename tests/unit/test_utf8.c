/* test_utf8.c — strict UTF-8 validation (geodata/utf8.c), against a
 * decoder written here from the definition (RFC 3629: the shortest form,
 * no surrogates, nothing above U+10FFFF), on every short sequence and on
 * long mixed strings that take the sixteen-byte path at every offset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../geodata/utf8.h"

#include <stdio.h>
#include <string.h>

/* The oracle: decode each character to its code point, then judge it. */
static int ref_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned b = s[i];
        size_t len;
        uint32_t cp, min;
        if (b < 0x80) {
            i++;
            continue;
        } else if ((b & 0xE0) == 0xC0) {
            len = 2, cp = b & 0x1F, min = 0x80;
        } else if ((b & 0xF0) == 0xE0) {
            len = 3, cp = b & 0x0F, min = 0x800;
        } else if ((b & 0xF8) == 0xF0) {
            len = 4, cp = b & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            return 0;
        i += len;
    }
    return 1;
}

static void agree(const unsigned char *s, size_t n)
{
    int want = ref_valid(s, n), got = pm_utf8_valid((const char *)s, n);
    if (want != got) {
        char hex[3 * 256 + 1] = "";
        for (size_t i = 0; i < n && i < 256; i++)
            snprintf(hex + 3 * i, 4, "%02X ", s[i]);
        fail_msg("%zu bytes %s: valid %d, expected %d", n, hex, got, want);
    }
}

static void test_examples(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int valid;
    } ex[] = {
        {"", 1},
        {"plain ascii, longer than sixteen bytes", 1},
        {"Фонд капитального ремонта", 1},
        {"обращение №1: протекает крыша", 1},   /* № is three bytes */
        {"\xF0\x9F\x99\x82 ok", 1},              /* U+1F642 */
        {"Фонд капитальн\xC0\xAFого", 0},        /* overlong '/' among two-byte characters */
        {"Фонд капитально\xD0", 0},              /* a lead with nothing after it */
        {"ФондФондФонд\xED\xA0\x80", 0},         /* surrogate */
        {"abcdefghijklmno\xD0\x96pqrstuvwxyz", 1},   /* a lead in the sixteenth byte */
        {"abcdefghijklmno\xD0" "bcdefghijklmnopq", 0},
        {"abcdefghijklmnop\x96" "bcdefghijklmnop", 0},   /* continuation starting a run */
    };
    for (size_t i = 0; i < sizeof ex / sizeof *ex; i++) {
        size_t n = strlen(ex[i].s);
        assert_int_equal(ref_valid((const unsigned char *)ex[i].s, n), ex[i].valid);
        if (pm_utf8_valid(ex[i].s, n) != ex[i].valid)
            fail_msg("example %zu \"%s\": expected %d", i, ex[i].s, ex[i].valid);
    }
    /* NUL counts as ASCII */
    assert_true(pm_utf8_valid("a\0b\0\xD0\x96", 6));
}

/* Every string of one and two bytes; every first two bytes of three and
 * four with continuations and non-continuations after them. */
static void test_every_short_sequence(void **state)
{
    (void)state;
    static const unsigned char tails[] = {0x7F, 0x80, 0xBF, 0xC0};
    unsigned char s[4];
    for (unsigned a = 0; a < 256; a++) {
        s[0] = (unsigned char)a;
        agree(s, 1);
        for (unsigned b = 0; b < 256; b++) {
            s[1] = (unsigned char)b;
            agree(s, 2);
            for (size_t c = 0; c < sizeof tails; c++) {
                s[2] = tails[c];
                agree(s, 3);
                for (size_t d = 0; d < sizeof tails; d += 2) {
                    s[3] = tails[d];
                    agree(s, 4);
                }
            }
        }
    }
}

/* Random strings of valid characters, one in three with a bad piece at a
 * random place, and every prefix of them (characters cut anywhere,
 * including at the end of a sixteen-byte run). */
static void test_mixed_strings(void **state)
{
    (void)state;
    static const char *const good[] = {
        "a", " ", "z", "0", "\x7F", "\0",
        "Ф", "о", "н", "д", "\xC2\x80", "\xDF\xBF",                 /* two bytes */
        "№", "\xE0\xA0\x80", "\xED\x9F\xBF", "\xEE\x80\x80", "\xEF\xBF\xBF",
        "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF", "\xF3\xBF\xBF\xBF",
    };
    static const char *const bad[] = {
        "\xC0\xAF", "\xC1\xBF", "\x80", "\xBF", "\xFF", "\xFE", "\xF5\x80\x80\x80",
        "\xED\xA0\x80", "\xE0\x9F\xBF", "\xF0\x8F\xBF\xBF", "\xF4\x90\x80\x80",
        "\xD0", "\xE2\x84", "\xF0\x90\x80", "\xD0\xD0",
    };
    size_t ngood = sizeof good / sizeof *good, nbad = sizeof bad / sizeof *bad;
    uint64_t x = 0x9E3779B97F4A7C15u;   /* xorshift, fixed seed */
#define NEXT() (x ^= x << 13, x ^= x >> 7, x ^= x << 17, x)
    unsigned char s[512];
    for (int round = 0; round < 20000; round++) {
        size_t n = 0, pieces = 1 + NEXT() % 60;
        size_t bad_at = NEXT() % 3 == 0 ? NEXT() % pieces : SIZE_MAX;
        int cyrillic_run = NEXT() % 2;   /* mostly two-byte characters, or any */
        for (size_t p = 0; p < pieces; p++) {
            const char *piece;
            size_t len;
            if (p == bad_at) {
                piece = bad[NEXT() % nbad];
                len = strlen(piece);
            } else {
                size_t g = cyrillic_run && NEXT() % 8 ? 6 + NEXT() % 6 : NEXT() % ngood;
                piece = good[g];
                len = g == 5 ? 1 : strlen(piece);   /* good[5] is a NUL byte */
            }
            memcpy(s + n, piece, len);
            n += len;
        }
        for (size_t cut = 0; cut <= n; cut++)
            agree(s, cut);
        /* and from every start, so the runs fall at every offset */
        for (size_t from = 1; from < n && from < 17; from++)
            agree(s + from, n - from);
    }
#undef NEXT
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_examples),
        cmocka_unit_test(test_every_short_sequence),
        cmocka_unit_test(test_mixed_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
