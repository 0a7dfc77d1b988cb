/* ramps.c — the heat map's colour ramps as 256-entry tables.
 *
 * Viridis and inferno: matplotlib's 256-entry tables (_cm_listed.py) at
 * t = 0, 1/9, …, 1 (entries round(255 k/9)), as hex in sRGB; YlOrRd:
 * ColorBrewer's 9-class sequential scheme.  Between stops the table is
 * interpolated linearly in sRGB, which stays within a few units of
 * matplotlib's full tables.  Alpha rises linearly with t, from 0 (fully
 * transparent, the background) to PM_HEAT_ALPHA_MAX. */
#include "heat_impl.h"

#include <math.h>

typedef struct ramp_def {
    size_t n;
    const uint32_t *rgb;   /* 0xRRGGBB */
} ramp_def;

static const uint32_t VIRIDIS[] = {0x440154, 0x482878, 0x3e4989, 0x31688e, 0x26828e,
                                   0x1f9e89, 0x35b779, 0x6ece58, 0xb5de2b, 0xfde725};
static const uint32_t INFERNO[] = {0x000004, 0x1b0c41, 0x4a0c6b, 0x781c6d, 0xa52c60,
                                   0xcf4446, 0xed6925, 0xfb9b06, 0xf7d13d, 0xfcffa4};
static const uint32_t YLORRD[] = {0xffffcc, 0xffeda0, 0xfed976, 0xfeb24c, 0xfd8d3c,
                                  0xfc4e2a, 0xe31a1c, 0xbd0026, 0x800026};

static ramp_def ramp_of(pm_ramp r)
{
    switch (r) {
    case PM_RAMP_VIRIDIS: return (ramp_def){sizeof VIRIDIS / sizeof *VIRIDIS, VIRIDIS};
    case PM_RAMP_YLORRD: return (ramp_def){sizeof YLORRD / sizeof *YLORRD, YLORRD};
    default: return (ramp_def){sizeof INFERNO / sizeof *INFERNO, INFERNO};
    }
}

static uint8_t channel(uint32_t rgb, int shift) { return (uint8_t)((rgb >> shift) & 0xff); }

void pm_heat_ramp_lut(pm_ramp ramp, uint8_t lut[256][4])
{
    ramp_def d = ramp_of(ramp);
    for (int i = 0; i < 256; i++) {
        double pos = i / 255.0 * (double)(d.n - 1);
        size_t k = (size_t)pos;
        if (k >= d.n - 1)
            k = d.n - 2;
        double f = pos - (double)k;
        for (int c = 0; c < 3; c++) {
            int shift = 16 - 8 * c;
            double a = channel(d.rgb[k], shift), b = channel(d.rgb[k + 1], shift);
            lut[i][c] = (uint8_t)lround(a + (b - a) * f);
        }
        lut[i][3] = (uint8_t)lround(PM_HEAT_ALPHA_MAX * (i / 255.0));
    }
}
