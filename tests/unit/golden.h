/* golden.h — for the image tests: decode a PNG to RGBA, write one, and
 * compare a PNG with a golden reference on decoded pixels with two numbers
 * (the share of pixels changed, the largest channel difference), writing
 * the output and a diff image to build/test-output/ on failure (cairo's
 * buffer-diff approach).  PM_REGEN_GOLDEN=1 rewrites the reference
 * instead.  Tests run from the repository root.
 *
 * Header-only (static functions) because each suite is one object linked
 * against the library; include it after <cmocka.h>. */
#ifndef PM_TEST_GOLDEN_H
#define PM_TEST_GOLDEN_H

#include <errno.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define GOLDEN_OUT_DIR "build/test-output"
#define GOLDEN_UNUSED __attribute__((unused))

typedef struct golden_image {
    int w, h;
    uint8_t *rgba;   /* malloc'd; free() */
} golden_image;

GOLDEN_UNUSED static golden_image golden_decode(const uint8_t *png, size_t len)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    assert_true(png_image_begin_read_from_memory(&im, png, len));
    im.format = PNG_FORMAT_RGBA;
    golden_image out = {(int)im.width, (int)im.height, malloc(PNG_IMAGE_SIZE(im))};
    assert_non_null(out.rgba);
    assert_true(png_image_finish_read(&im, NULL, out.rgba, 0, NULL));
    return out;
}

GOLDEN_UNUSED static int golden_read_file(const char *path, uint8_t **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc((size_t)n + 1);
    assert_non_null(*buf);
    *len = fread(*buf, 1, (size_t)n, f);
    fclose(f);
    return *len == (size_t)n ? 0 : -1;
}

GOLDEN_UNUSED static void golden_write_file(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        fail_msg("%s: %s", path, strerror(errno));
    assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

GOLDEN_UNUSED static void golden_write_png(const char *path, const golden_image *im)
{
    png_image p;
    memset(&p, 0, sizeof p);
    p.version = PNG_IMAGE_VERSION;
    p.width = (png_uint_32)im->w;
    p.height = (png_uint_32)im->h;
    p.format = PNG_FORMAT_RGBA;
    assert_true(png_image_write_to_file(&p, path, 0, im->rgba, 0, NULL));
}

/* The largest channel difference of pixel p between a and b. */
GOLDEN_UNUSED static int golden_pixel_diff(const golden_image *a, const golden_image *b, size_t p)
{
    int m = 0;
    for (int c = 0; c < 4; c++) {
        int d = abs((int)a->rgba[4 * p + c] - (int)b->rgba[4 * p + c]);
        m = d > m ? d : m;
    }
    return m;
}

/* Writes GOLDEN_OUT_DIR/<name>_actual.png and <name>_diff.png (changed
 * pixels red, brighter the more they changed; the rest a faint grey copy). */
GOLDEN_UNUSED static void golden_write_failure(const char *name, const uint8_t *png, size_t len,
                                               const golden_image *got, const golden_image *want)
{
    char path[512];
    if ((mkdir("build", 0777) != 0 && errno != EEXIST) ||
        (mkdir(GOLDEN_OUT_DIR, 0777) != 0 && errno != EEXIST))
        fail_msg("mkdir " GOLDEN_OUT_DIR ": %s", strerror(errno));
    snprintf(path, sizeof path, GOLDEN_OUT_DIR "/%s_actual.png", name);
    golden_write_file(path, png, len);
    golden_image d = {got->w, got->h, malloc((size_t)got->w * got->h * 4)};
    assert_non_null(d.rgba);
    for (size_t p = 0; p < (size_t)got->w * got->h; p++) {
        int m = golden_pixel_diff(got, want, p);
        uint8_t *o = d.rgba + 4 * p;
        if (m) {
            o[0] = 255, o[1] = 0, o[2] = 0, o[3] = (uint8_t)(m * 4 > 191 ? 255 : 64 + m * 4);
        } else {
            o[0] = o[1] = o[2] = 128;
            o[3] = (uint8_t)(want->rgba[4 * p + 3] / 4);
        }
    }
    snprintf(path, sizeof path, GOLDEN_OUT_DIR "/%s_diff.png", name);
    golden_write_png(path, &d);
    free(d.rgba);
}

/* Compares png with the reference at ref_path: at most max_share of the
 * pixels may change, none by more than max_diff in a channel.  With
 * PM_REGEN_GOLDEN=1 the reference is rewritten first. */
GOLDEN_UNUSED static void golden_check(const char *ref_path, const char *name, const uint8_t *png,
                                       size_t len, double max_share, int max_diff)
{
    const char *regen = getenv("PM_REGEN_GOLDEN");
    if (regen && strcmp(regen, "1") == 0) {
        golden_write_file(ref_path, png, len);
        printf("wrote %s\n", ref_path);
    }
    uint8_t *ref = NULL;
    size_t ref_len = 0;
    if (golden_read_file(ref_path, &ref, &ref_len) != 0)
        fail_msg("%s is missing (run from the repository root; PM_REGEN_GOLDEN=1 makes it)",
                 ref_path);
    golden_image want = golden_decode(ref, ref_len), got = golden_decode(png, len);
    assert_true(want.w == got.w && want.h == got.h);
    size_t changed = 0, n = (size_t)got.w * got.h;
    int worst = 0;
    for (size_t p = 0; p < n; p++) {
        int m = golden_pixel_diff(&got, &want, p);
        changed += m > 0;
        worst = m > worst ? m : worst;
    }
    if ((double)changed > max_share * (double)n || worst > max_diff) {
        golden_write_failure(name, png, len, &got, &want);
        fail_msg("golden %s: %zu pixels changed (%.2f %%, at most %.2f %%), largest channel "
                 "difference %d (at most %d); see " GOLDEN_OUT_DIR "/%s_{actual,diff}.png",
                 ref_path, changed, 100.0 * changed / n, 100 * max_share, worst, max_diff, name);
    }
    free(want.rgba);
    free(got.rgba);
    free(ref);
}

#endif
