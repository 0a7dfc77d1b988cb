/* fuzz_tile_path.c — the tile address parser of `problemap serve`
 * (serve_tile_path_parse, apps/serve_http.c): whatever the path, a tile it
 * accepts is on the grid and its layer name is what precedes the numbers. */
#include "fuzz_util.h"
#include "../../apps/serve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    char path[8193];
    memcpy(path, data, size);
    path[size] = '\0';
    char layer[16];
    long zxy[3] = {-1, -1, -1};
    int tile_size = -1;
    serve_tile_addr t = serve_tile_path_parse(path, layer, sizeof layer, zxy, &tile_size);
    if (t != SERVE_TILE_NO_LAYER) {
        FUZZ_CHECK(strlen(layer) > 0 && strlen(layer) < sizeof layer);
        FUZZ_CHECK(strncmp(layer, path, strlen(layer)) == 0);
    }
    if (t == SERVE_TILE_OK) {
        FUZZ_CHECK(tile_size == 256 || tile_size == 512);
        FUZZ_CHECK(zxy[0] >= 0 && zxy[0] <= SERVE_MAX_ZOOM);
        FUZZ_CHECK(zxy[1] >= 0 && zxy[1] < (1L << zxy[0]) && zxy[2] >= 0 && zxy[2] < (1L << zxy[0]));
    }
    return 0;
}
