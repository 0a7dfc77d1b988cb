/* pm_figure.h — the cube figures a map can show, and how they are
 * classed, coloured and written, in one place: the report, the choropleth
 * tiles and the viewer's legend use these and so agree with each other.
 *
 * Figures are the property names of pm_cube_out.h ("complaints",
 * "complaints_per_10k", ...), each with a Russian title and a number style.
 *
 * Classes.  Quantile classes over the values that are finite: 5 (6 above
 * 30 values, 7 above 100), fewer when there are fewer distinct values;
 * equal values always share a class.  Each class is shown as the smallest
 * and largest value in it, so no boundary is ambiguous.  Colours:
 * ColorBrewer YlOrRd for the number of classes (1 and 2 classes: the ends
 * of the 3-class scheme, so one class of zeros is not painted alarming
 * orange); no value is grey (PM_FIGURE_NODATA), drawn hatched on maps.
 *
 * Gi* bins.  The fixed classes of a hot-spot map (pm_hotspot.h): class c
 * holds bin c − 3, cold spot at 99/95/90 % confidence, not significant,
 * hot spot at 90/95/99 %, coloured as ArcGIS and GeoDa colour Gi* (the
 * 7-class ColorBrewer RdBu reversed: dark blue … very light grey … dark
 * red).
 *
 * Numbers are written the Russian way: decimal comma, thin spaces between
 * thousands, a true minus sign, "—" for no value.
 */
#ifndef PM_FIGURE_H
#define PM_FIGURE_H

#include "../engine/pm_ctx.h"
#include "../engine/pm_cube.h"
#include <stddef.h>

typedef struct pm_figure pm_figure;

/* By property name; NULL if unknown. */
const pm_figure *pm_figure_find(const char *name);
/* All figures, in a fixed order (i < pm_figure_count()). */
size_t pm_figure_count(void);
const pm_figure *pm_figure_at(size_t i);
/* "complaints, complaints_per_10k, ..." for error messages. */
const char *pm_figure_names(void);

const char *pm_figure_name(const pm_figure *f);
const char *pm_figure_title_ru(const pm_figure *f);   /* legend title */
const char *pm_figure_column_ru(const pm_figure *f);  /* short table heading */
/* 1 for the plain complaint count (tables then need no second column). */
int pm_figure_is_count(const pm_figure *f);
/* 1 when a higher value is the better news (the share answered within
 * 24 h): its classes are coloured the other way round, so red always
 * marks where it is worst. */
int pm_figure_higher_is_better(const pm_figure *f);

/* The figure of a row; NAN when it has none or must not be shown
 * (suppressed rows). */
double pm_figure_value(const pm_figure *f, const pm_row *r);

#define PM_CLASSES_MAX 7
#define PM_FIGURE_NODATA 0xd9d9d9u

typedef struct pm_classes {
    size_t n;                            /* classes; 0 when no value is finite */
    double lo[PM_CLASSES_MAX];           /* smallest value in class c */
    double hi[PM_CLASSES_MAX];           /* largest value in class c */
    double upper[PM_CLASSES_MAX];        /* class c holds v ≤ upper[c] (c < n − 1) */
    int has_nodata;                      /* some value was not finite */
    int decimals;                        /* for signed figures: 1, or 0 when a value reaches 100 */
    int reversed;                        /* colours run the other way (pm_classes_orient) */
    int diverging;                       /* the Gi* bins (pm_classes_gi_bins): RdBu reversed */
} pm_classes;

/* Quantile classes of n values (NAN: no data).  PM_E_NOMEM only. */
int pm_classes_quantile(pm_ctx *ctx, const double *values, size_t n, pm_classes *out);
/* Colours the classes of figure f (may be NULL: as they are) so that red
 * is where it is worst. */
void pm_classes_orient(pm_classes *c, const pm_figure *f);
/* The 7 Gi* bin classes: class c holds the bin value c − 3 (lo = hi =
 * c − 3), diverging.  has_nodata is 0: whoever classes values sets it. */
#define PM_GI_BINS 7
void pm_classes_gi_bins(pm_classes *out);
/* The Russian legend label of Gi* bin −3 .. 3: "холодная точка, 99 %",
 * ..., "не значимо", ..., "горячая точка, 99 %"; "" for another value. */
const char *pm_gi_bin_label_ru(int bin);
/* The class of v; −1 when v is not finite. */
int pm_classes_of(const pm_classes *c, double v);
/* The colour of class cls as 0xRRGGBB; PM_FIGURE_NODATA for −1. */
unsigned pm_classes_colour(const pm_classes *c, int cls);

/* A number with `decimals` decimals, Russian style; "+" before a positive
 * value when plus. */
void pm_format_number(double v, int decimals, int plus, char *buf, size_t cap);
/* A value of figure f as tables and legends write it (c may be NULL: one
 * decimal for signed figures); " %" after shares when unit. */
void pm_figure_format(const pm_figure *f, const pm_classes *c, double v, int unit, char *buf,
                      size_t cap);

#endif
