#!/bin/sh
# Runs the database tests on a throwaway PostgreSQL + PostGIS cluster:
#   tests/pg/run.sh [test binary ...]     (default: build/tests/test_db)
# Starts the cluster with tests/pg/cluster.sh, runs each binary with the
# PG* variables it exports, and always stops and removes the cluster.
# Run from the repository root (the tests read data/ and sql/migrations/).
set -e
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
[ $# -gt 0 ] || set -- build/tests/test_db
for t in "$@"; do
    [ -x "$t" ] || { echo "tests/pg/run.sh: $t is not built" >&2; exit 2; }
done
env=$(sh tests/pg/cluster.sh start) || { echo "tests/pg/run.sh: cannot start the cluster" >&2; exit 1; }
eval "$env"
trap 'sh "$ROOT/tests/pg/cluster.sh" stop "$PM_PG_DIR"' EXIT
trap 'exit 130' INT TERM
failed=0
for t in "$@"; do
    "$t" || { failed=1; echo "FAILED: $t" >&2; }
done
exit $failed
