/* fuzz_boundaries.c — boundary GeoJSON (pm_boundaries_read_geojson) with
 * the topology check on, then the districts frozen.  Every error has a
 * message; accepted + rejected never exceeds the features. */
#include "fuzz_util.h"
#include "../../geodata/pm_boundaries.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pm_ctx *ctx = pm_ctx_new();
    if (!ctx)
        return 0;
    pm_districts *ds = pm_districts_new(ctx);
    int fd;
    char path[64];
    if (ds && fuzz_file(data, size, &fd, path) == 0) {
        pm_boundary_opts opts = {.check_topology = 1};
        pm_boundary_report rep = {0};
        int rc = pm_boundaries_read_geojson(ctx, path, &opts, ds, &rep);
        fuzz_check_status(ctx, rc);
        if (rc == PM_OK) {
            FUZZ_CHECK(rep.accepted + rep.rejected <= rep.features);
            FUZZ_CHECK(pm_districts_count(ds) == rep.accepted);
            fuzz_check_status(ctx, pm_districts_freeze(ctx, ds));
        }
        close(fd);
    }
    pm_districts_free(ctx, ds);
    pm_ctx_free(ctx);
    return 0;
}
