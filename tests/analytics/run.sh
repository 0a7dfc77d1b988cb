#!/bin/sh
# The spatial statistics against pysal: builds oracle_driver.c against the
# library and runs pysal_oracle.py on the shipped regions (and the OSM
# districts of ../shared/data when present).
#   usage: sh tests/analytics/run.sh [build/libproblemap.a]
# Needs a python3 with libpysal and numpy (Debian: python3-libpysal,
# python3-numpy); without one the test is skipped with a message (exit 77).
# A library built with ASan + UBSan (make test-asan) gets a driver built so too.
set -e
lib=${1:-build/libproblemap.a}
here=$(dirname "$0")
root=$(cd "$here/../.." && pwd)
out=${TMPDIR:-/tmp}/pm_analytics.$$
mkdir -p "$out"
trap 'rm -rf "$out"' EXIT

py=""
for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 &&
       "$p" -c 'import libpysal, numpy' >/dev/null 2>&1; then py=$p; break; fi
done
if [ -z "$py" ]; then
    echo "analytics: SKIPPED: no python3 with libpysal and numpy (apt-get install python3-libpysal)"
    exit 77
fi

PKGS="geos proj cairo pangocairo libpng zlib libxxhash sqlite3 jansson libpq libmicrohttpd"
san=""
if nm "$lib" 2>/dev/null | grep -q __asan_report; then
    san="-fsanitize=address,undefined -fno-omit-frame-pointer"
fi
${CC:-cc} $san -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Werror -O2 \
    $(pkg-config --cflags $PKGS) -o "$out/oracle_driver" "$here/oracle_driver.c" "$lib" \
    $(pkg-config --libs $PKGS) -lm -pthread

"$py" "$here/pysal_oracle.py" "$out/oracle_driver" "$root" "$out"
