#!/bin/sh
# Runs every cmocka unit test binary given; fails if any fails.  Tests find
# their fixtures relative to the repository root, where make runs them.
failed=0; passed=0
for t in "$@"; do
    if "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $t" >&2; fi
done
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
