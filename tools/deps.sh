#!/bin/sh
# Installs what problemap needs from Debian 12 packages, only what is missing
# (idempotent).  Called by `make deps`, `make demo` and `make test`.
set -e
PKGS="build-essential pkg-config libgeos-dev libproj-dev proj-data libcairo2-dev libjansson-dev
libpq-dev libcmocka-dev libpng-dev gdal-bin postgresql-15 postgresql-15-postgis-3 fonts-dejavu-core bc time"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing"
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
        echo "deps: missing packages:$missing — run 'make deps' as root" >&2; exit 1; fi
fi
export DEBIAN_FRONTEND=noninteractive
${SUDO:-} apt-get update -qq
${SUDO:-} apt-get install -y -qq --no-install-recommends $missing
