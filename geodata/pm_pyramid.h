/* pm_pyramid.h — a tile pyramid on disk: a z/x/y.png directory with a
 * TileJSON 3.0 file, and/or an MBTiles 1.3 file (SQLite), the formats
 * Leaflet, QGIS and MapLibre tools read.
 *
 * Nothing half-written is ever left where the user looks: tiles go into a
 * temporary directory (and a temporary .mbtiles) beside the targets, and
 * pm_pyramid_commit() renames them into place at the end (an existing
 * target is replaced only then); pm_pyramid_abort() — or a crash — leaves
 * the previous pyramid intact and only a temporary named *.tmp.* behind,
 * which the next run removes.  Empty tiles are simply not put.
 */
#ifndef PM_PYRAMID_H
#define PM_PYRAMID_H

#include "../engine/pm_ctx.h"
#include <stddef.h>
#include <stdint.h>

typedef struct pm_pyramid_meta {
    const char *name;         /* the layer's name */
    const char *description;  /* may be NULL */
    const char *attribution;  /* may be NULL */
    int minzoom, maxzoom;
    double bounds[4];         /* lon/lat: west, south, east, north */
    int tile_size;            /* 256 or 512 */
    const char *legend_json;  /* may be NULL: a JSON value stored as the
                               * TileJSON member "problemap_legend" and the
                               * MBTiles metadata row "problemap_legend" */
} pm_pyramid_meta;

typedef struct pm_pyramid pm_pyramid;

/* dir and mbtiles name the targets; either may be NULL (not both).  The
 * TileJSON is dir/tilejson.json with "tiles": ["{z}/{x}/{y}.png"] relative
 * to it (a server may rewrite it).  Caller ends with commit or abort. */
int pm_pyramid_open(pm_ctx *ctx, const char *dir, const char *mbtiles, const pm_pyramid_meta *meta,
                    pm_pyramid **out);
/* An existing dir target must be empty or a pyramid (has tilejson.json),
 * else PM_E_USAGE; stale <target>.tmp.XXXXXX / .old.tmp.XXXXXX siblings
 * are removed. */
/* Stores one PNG tile (XYZ numbering; MBTiles rows use the TMS row
 * 2^z − 1 − y, as the spec says). */
int pm_pyramid_put(pm_ctx *ctx, pm_pyramid *p, int z, uint32_t x, uint32_t y, const uint8_t *png,
                   size_t len);
/* A tile outside 0..24 / 2^z, empty data or a tile put twice: PM_E_USAGE
 * (the pyramid stays usable); a write error: PM_E_IO, and commit will then
 * refuse (PM_E_IO) and abort. */
size_t pm_pyramid_count(const pm_pyramid *p);
/* Writes the metadata and moves everything into place; frees p. */
int pm_pyramid_commit(pm_ctx *ctx, pm_pyramid *p);
/* Removes the temporaries; frees p.  NULL is fine. */
void pm_pyramid_abort(pm_pyramid *p);

#endif
