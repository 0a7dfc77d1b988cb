/* pm_civil.h — the proleptic Gregorian calendar in integers (Howard
 * Hinnant's days_from_civil / civil_from_days), without mktime, time
 * zones or locale: the one place every date in the library is computed.
 * Day 0 is 1970-01-01. */
#ifndef PM_CIVIL_H
#define PM_CIVIL_H

#include <stdint.h>

/* Floor division and modulo (the result rounds toward −∞; b > 0). */
int64_t pm_floor_div(int64_t a, int64_t b);
int64_t pm_floor_mod(int64_t a, int64_t b);

/* Days since 1970-01-01 of y-m-d (m 1–12, d 1–31; not range-checked). */
int64_t pm_days_from_civil(int64_t y, int m, int d);
/* The date of day z. */
void pm_civil_from_days(int64_t z, int64_t *y, int *m, int *d);

#endif
