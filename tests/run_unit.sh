#!/bin/sh
# Runs every cmocka unit test binary given; fails if any fails.  Tests find
# their fixtures relative to the repository root, where make runs them.
# The database test runs inside a throwaway PostGIS cluster (tests/pg/run.sh).
failed=0; passed=0
for t in "$@"; do
    case "$t" in
    */test_db) run="sh tests/pg/run.sh $t" ;;
    *) run="$t" ;;
    esac
    if $run; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $t" >&2; fi
done
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
