/* utf8.h — internal: strict UTF-8 validation of input text (the intake's
 * check of the complaint values it uses). */
#ifndef PM_UTF8_H
#define PM_UTF8_H

#include <stddef.h>

/* 1 when the n bytes at s are strict UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF), else 0.  NUL bytes count as ASCII. */
int pm_utf8_valid(const char *s, size_t n);

#endif
