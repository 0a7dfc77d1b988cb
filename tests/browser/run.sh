#!/bin/sh
# tests/browser/run.sh — the viewer (web/) in headless Chromium against a real
# `problemap serve`: 20 000 synthetic complaints over Russia's regions
# (data/ru_regions.geojson), the server on a free local port, then
# tests/browser/viewer.test.cjs.  Builds nothing.
#
# Usage: tests/browser/run.sh PATH/TO/problemap
# Exit: 0 passed, 1 failed, 2 bad usage, 77 skipped (no node, playwright-core
# or Chromium).  The screenshot goes to build/test-out/viewer.png; the
# server's log is printed when something fails.
set -u

[ $# -eq 1 ] || { echo "usage: $0 PATH/TO/problemap" >&2; exit 2; }
root=$(cd "$(dirname "$0")/../.." && pwd) || exit 2
case $1 in
/*) prog=$1 ;;
*) prog=$(pwd)/$1 ;;
esac
[ -x "$prog" ] || { echo "$0: $prog is not an executable" >&2; exit 2; }
chromium=${CHROMIUM:-/usr/bin/chromium}
for need in "$(command -v node)" "$root/build/npm/node_modules/playwright-core/package.json" "$chromium"; do
    [ -n "$need" ] && [ -e "$need" ] || { echo "SKIP browser test: missing ${need:-node}"; exit 77; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pm-browser.XXXXXX") || exit 1
pid= npid=
cleanup() {
    [ -z "$npid" ] || kill "$npid" 2>/dev/null   # the node test (it closes its browser)
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null
        n=0
        while kill -0 "$pid" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
    echo "FAIL $*" >&2
    if [ -s "$tmp/serve.log" ]; then
        echo "--- server log (last 30 lines) ---" >&2
        tail -n 30 "$tmp/serve.log" >&2
    fi
    exit 1
}

cd "$root" || exit 1
B="--boundaries data/ru_regions.geojson --id-field iso --name-field name_ru --parent-field federal_district"
# shellcheck disable=SC2086  # $B is a list of options
"$prog" generate $B --n 20000 --seed 2025 --start 2025-09-01 --days 91 --utc-offset +03:00 \
    --output "$tmp/complaints.csv" >"$tmp/generate.log" 2>&1 || fail "generate: $(tail -n 3 "$tmp/generate.log")"

# A token, as a deployment beyond loopback must have: the viewer passes it on.
token=t$$-browser-test
printf '%s\n' "$token" >"$tmp/token"
# shellcheck disable=SC2086
"$prog" serve $B --complaints "$tmp/complaints.csv" --utc-offset +03:00 \
    --rejects "$tmp/rejects.csv" --listen 127.0.0.1:0 --token-file "$tmp/token" \
    --access-log "$tmp/access.log" --title "Обращения граждан — Российская Федерация (синтетические данные)" \
    --attribution "Границы: Natural Earth (общественное достояние)" >"$tmp/serve.log" 2>&1 &
pid=$!

# Up to 60 s for the server to place the complaints, say where it listens
# ("listening on http://127.0.0.1:PORT/") and answer /health.
i=0 base=
while :; do
    kill -0 "$pid" 2>/dev/null || { wait "$pid"; pid=; fail "the server exited before answering /health"; }
    [ -n "$base" ] || base=$(sed -n 's|.*listening on \(http://[^ /]*\)/.*|\1|p' "$tmp/serve.log" | head -n 1)
    if [ -n "$base" ] && node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1),
            () => process.exit(1))' "$base/health?token=$token" 2>/dev/null; then
        break
    fi
    i=$((i + 1))
    [ $i -le 120 ] || fail "the server did not answer /health within 60 s"
    sleep 0.5
done

mkdir -p build/test-out
# In the background so that a signal is handled at once (the trap runs
# between commands, and `wait` is one that a signal interrupts).
CHROMIUM=$chromium PM_TOKEN=$token node tests/browser/viewer.test.cjs "$base" build/test-out/viewer.png &
npid=$!
wait "$npid" || { npid=; fail "viewer test"; }
npid=
echo "browser test passed"
