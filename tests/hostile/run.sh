#!/bin/sh
# The hostile-input catalogue (tests/hostile/gen.py), end to end:
#   tests/hostile/run.sh BUILD/problemap
# PM_HOSTILE_FAST=1 skips the 1 M-vertex and 100 k-polygon cases.
# Run from the repository root.
PROBLEMAP_DATA="$(pwd)/data" exec python3 "$(dirname "$0")/hostile.py" "$1"
