#!/bin/sh
# Build and run one cmocka unit test against a chosen set of library sources,
# without building the whole library (useful while other modules are being
# written).  usage: tools/quicktest.sh [--asan] test_name [extra.c ...]
# The engine core (alloc, ctx, strtab, district, complaint) is always linked.
set -e
san=""
if [ "$1" = "--asan" ]; then san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"; shift; fi
name=$1; shift
out=/tmp/pmqt; mkdir -p $out
PKGS="geos proj cairo pangocairo libpng zlib libxxhash sqlite3 jansson libpq"
gcc -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Wshadow -Wvla -Werror -g -O1 -pthread $san \
    $(pkg-config --cflags $PKGS) -o $out/$name tests/unit/$name.c \
    engine/alloc.c engine/ctx.c engine/strtab.c engine/civil.c engine/district.c engine/complaint.c "$@" \
    $(pkg-config --libs $PKGS) -lcmocka -lm
exec $out/$name
