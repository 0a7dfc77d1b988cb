#!/bin/sh
# Installs what problemap needs, only what is missing (idempotent): Debian 12
# packages, and the npm GeoJSON validator the tests use as an oracle.
# Called by `make deps`, `make demo` and `make test`.
set -e
PKGS="build-essential pkg-config libgeos-dev libproj-dev proj-data libcairo2-dev libjansson-dev
libpq-dev libcmocka-dev libpng-dev zlib1g-dev libxxhash-dev gdal-bin postgresql-15 postgresql-15-postgis-3
fonts-dejavu-core bc time libpango1.0-dev libsqlite3-dev sqlite3 poppler-utils tesseract-ocr tesseract-ocr-rus
libmicrohttpd-dev libjs-leaflet chromium wrk curl python3-libpysal python3-numpy clang libclang-rt-14-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# node and npm may be installed from elsewhere than Debian: any will do.
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
# python3 (the end-to-end tests' independent checks): any will do.
command -v python3 >/dev/null 2>&1 || missing="$missing python3"
if [ -n "$missing" ]; then
    echo "deps: installing:$missing"
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
            echo "deps: missing packages:$missing — run 'make deps' as root" >&2; exit 1; fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    ${SUDO:-} apt-get update -qq
    ${SUDO:-} apt-get install -y -qq --no-install-recommends $missing
fi
# @mapbox/geojsonhint 2.0.1 (3.x fetches a dependency from a git host and does not install here).
if [ ! -f build/npm/node_modules/@mapbox/geojsonhint/bin/geojsonhint ]; then
    echo "deps: npm install @mapbox/geojsonhint@2.0.1 into build/npm"
    mkdir -p build/npm
    npm install --silent --no-audit --no-fund --prefix build/npm @mapbox/geojsonhint@2.0.1 >/dev/null
fi
# playwright-core drives Debian's chromium in the viewer's browser test
# (no browser download: the test points it at /usr/bin/chromium).
if [ ! -f build/npm/node_modules/playwright-core/package.json ]; then
    echo "deps: npm install playwright-core@1.65.1 into build/npm"
    mkdir -p build/npm
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --silent --no-audit --no-fund --prefix build/npm playwright-core@1.65.1 >/dev/null
fi
