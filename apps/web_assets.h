/* web_assets.h — the viewer's files (web/) and Leaflet (Debian's
 * libjs-leaflet), embedded in the program at build time by
 * tools/embed_web.sh, so `problemap serve` needs nothing on disk and no
 * network: the coordination centre may sit on a closed network. */
#ifndef PM_WEB_ASSETS_H
#define PM_WEB_ASSETS_H

#include <stddef.h>

typedef struct web_asset {
    const char *path;              /* URL path, e.g. "/index.html", "/leaflet/leaflet.js" */
    const unsigned char *data;
    size_t len;
    const char *content_type;      /* e.g. "text/html; charset=utf-8" */
} web_asset;

/* The asset at an exact URL path; NULL if none ("/" is "/index.html"). */
const web_asset *web_asset_find(const char *path);

#endif
