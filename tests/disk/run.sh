#!/bin/sh
# Full and interrupted disks: every writer of the command line, made to fail
# while it writes, must leave the previous output byte-identical and no
# partial file behind.
#   tests/disk/run.sh BUILD/problemap          (run from the repository root)
# For each writer (geocode CSV, rejects, summary; cube GeoJSON, CSV, summary,
# snapshot; tiles pyramid directory and MBTiles; report PNG, PDF, SVG;
# analyze outputs):
#   1. a normal run makes the previous output, which is saved;
#   2. RLIMIT_FSIZE (`ulimit -f`, half the output's size, SIGXFSZ ignored so
#      the write fails with EFBIG): exit status non-zero, a message naming
#      the file, the previous output identical, no *.tmp.* left;
#   3. ENOSPC: the same on a small tmpfs holding the previous output, the
#      rest of it filled (needs root to mount; skipped with a message
#      otherwise).
# Then killed midway: SIGKILL while a large geocode CSV / tile pyramid is
# being written leaves the previous output identical; the temporary the
# killed run left (<target>.tmp.XXXXXX) is removed by the next run.
BIN=$(realpath "$1")
ROOT=$(pwd)
T=$(mktemp -d /tmp/pm_disk.XXXXXX)
MNT=""
cleanup() {
    [ -n "$MNT" ] && umount "$MNT" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export PROBLEMAP_DATA="$ROOT/data"
pass=0; fail=0; skip=0
ok()   { pass=$((pass + 1)); echo "ok   $1"; }
bad()  { fail=$((fail + 1)); echo "FAIL $1"; [ -n "$2" ] && sed 's/^/     /' "$2" | head -20; }
skipped() { skip=$((skip + 1)); echo "skip $1: $2"; }

B="--boundaries $ROOT/data/ru_regions.geojson --id-field iso --name-field name_ru --parent-field federal_district"
"$BIN" generate $B --n 20000 --seed 11 --output "$T/gen.csv" 2>"$T/why" || { bad "generate" "$T/why"; exit 1; }
# Rejects: every row of a copy with an unparsable date.  (The snapshot
# writer re-adds the same complaints: all are rejects, "duplicate id", which
# go to '-' so that the limit falls on the snapshot.)
sed '2,$ s/,2025-/,X2025-/' "$T/gen.csv" >"$T/bad.csv"
"$BIN" cube -q $B --complaints "$T/gen.csv" --rejects $T/rej.csv --cube "$T/base.pmc" 2>"$T/why" || { bad "cube snapshot" "$T/why"; exit 1; }

# The writers: name|target (relative to the output directory O)|arguments.
cat >"$T/writers" <<EOF
geocode-csv|p.csv|geocode -q $B --complaints $T/gen.csv --output @O@/p.csv
rejects|r.csv|geocode -q $B --complaints $T/bad.csv --output - --rejects @O@/r.csv
geocode-summary|s.json|geocode -q $B --complaints $T/gen.csv --output - --summary @O@/s.json
cube-geojson|d.geojson|export -q $B --cube $T/base.pmc --geojson @O@/d.geojson
cube-csv|d.csv|export -q $B --cube $T/base.pmc --csv @O@/d.csv
cube-summary|cs.json|export -q $B --cube $T/base.pmc --summary @O@/cs.json
cube-snapshot|c.pmc|cube -q $B --complaints $T/gen.csv --rejects - --cube @O@/c.pmc
tiles-dir|tiles|tiles -q $B --complaints $T/gen.csv --rejects $T/rej.csv --out @O@/tiles --min-zoom 3 --max-zoom 5
mbtiles|t.mbtiles|tiles -q $B --complaints $T/gen.csv --rejects $T/rej.csv --mbtiles @O@/t.mbtiles --min-zoom 3 --max-zoom 5
report-png|report.png|export -q $B --cube $T/base.pmc --report @O@/report.png
report-pdf|report.pdf|export -q $B --cube $T/base.pmc --report @O@/report.pdf
report-svg|report.svg|export -q $B --cube $T/base.pmc --report @O@/report.svg
analyze-hotspots|h.geojson|analyze -q $B --complaints $T/gen.csv --rejects $T/rej.csv --hotspots @O@/h.geojson
analyze-forecast|f.csv|analyze -q $B --complaints $T/gen.csv --rejects $T/rej.csv --forecast @O@/f.csv
EOF

# run DIR ARGS [LIMIT]: the writer's command with its output in DIR; with
# LIMIT, under `ulimit -f LIMIT` (512-byte blocks in dash) and SIGXFSZ
# ignored (inherited through exec), so an over-long write fails with EFBIG.
# Standard output goes to /dev/null (no size limit there), which is where
# '--output -' and '--rejects -' send what the writer under test is not.
run() {
    cmd=$(echo "$2" | sed "s#@O@#$1#g")
    if [ -n "$3" ]; then
        sh -c "ulimit -f $3; trap '' XFSZ; exec \"$BIN\" $cmd" >/dev/null 2>"$T/err"
    else
        sh -c "exec \"$BIN\" $cmd" >/dev/null 2>"$T/err"
    fi
}

# Bytes of the largest file of a file or directory (RLIMIT_FSIZE is per file).
largest() { find "$1" -type f -printf '%s\n' | sort -n | tail -1; }

# same SAVED TARGET: byte-identical file or tree.
same() { diff -r "$1" "$2" >/dev/null 2>&1; }

# judge NAME MODE DIR TARGET: the checks after a run that had to fail.
judge() {
    name=$1 mode=$2 dir=$3 target=$4 why="$T/why"
    : >"$why"
    [ "$code" -ne 0 ] || echo "exit status 0" >>"$why"
    [ "$code" -lt 128 ] || echo "killed by signal $((code - 128))" >>"$why"
    grep -q "$(basename "$target")" "$T/err" || { echo "no message naming $(basename "$target"):"; cat "$T/err"; } >>"$why"
    same "$T/saved" "$dir/$target" || echo "the previous $target changed" >>"$why"
    left=$(ls -a "$dir" | grep '\.tmp\.')
    [ -z "$left" ] || echo "left behind: $left" >>"$why"
    if [ -s "$why" ]; then bad "$name: $mode" "$why"; else ok "$name: $mode (exit $code: $(head -c 120 "$T/err"))"; fi
}

can_mount=0
if [ "$(id -u)" = 0 ] && mkdir -p "$T/mnt" && mount -t tmpfs -o size=64k tmpfs "$T/mnt" 2>/dev/null; then
    umount "$T/mnt"; can_mount=1
fi
[ $can_mount = 1 ] || skipped "ENOSPC (all writers)" "cannot mount a tmpfs (needs root)"

while IFS='|' read -r name target args; do
    O="$T/o_$name"; mkdir -p "$O"
    run "$O" "$args" || { bad "$name: the normal run" "$T/err"; continue; }
    rm -rf "$T/saved"; cp -a "$O/$target" "$T/saved"
    # RLIMIT_FSIZE at half the largest file (at least one 512-byte block).
    blocks=$(($(largest "$O/$target") / 1024))
    if [ "$blocks" -lt 1 ]; then
        skipped "$name: RLIMIT_FSIZE" "the output is under 1 KB"
    else
        run "$O" "$args" "$blocks"; code=$?
        judge "$name" "RLIMIT_FSIZE $((blocks / 2)) KB" "$O" "$target"
    fi
    # ENOSPC: a tmpfs holding the previous output, the rest filled up.
    if [ $can_mount = 1 ]; then
        size=$(($(du -sk "$O/$target" | cut -f1) + 256))
        MNT="$T/mnt"; mount -t tmpfs -o size=${size}k tmpfs "$MNT"
        cp -a "$T/saved" "$MNT/$target"
        cat /dev/zero >"$MNT/filler" 2>/dev/null
        run "$MNT" "$args"; code=$?
        judge "$name" "ENOSPC (tmpfs ${size} KB, full)" "$MNT" "$target"
        umount "$MNT"; MNT=""
    fi
done <"$T/writers"

# --- killed midway: SIGKILL once the temporary exists and is growing.
"$BIN" generate $B --n 600000 --seed 12 --output "$T/big.csv" 2>"$T/why" || bad "generate 600 000" "$T/why"
kill_midway() {
    name=$1 dir=$2 target=$3 args=$4
    run "$dir" "$args" || { bad "$name: the normal run" "$T/err"; return; }
    rm -rf "$T/saved"; cp -a "$dir/$target" "$T/saved"
    a=$(echo "$args" | sed "s#@O@#$dir#g")
    sh -c "exec \"$BIN\" $a" >/dev/null 2>&1 &
    pid=$!
    i=0
    while [ $i -lt 600 ] && ! ls -a "$dir" | grep -q "^$target\.tmp\." && kill -0 $pid 2>/dev/null; do
        sleep 0.05; i=$((i + 1))
    done
    sleep 0.3
    kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
    : >"$T/why"
    same "$T/saved" "$dir/$target" || echo "the previous $target changed" >>"$T/why"
    left=$(ls -a "$dir" | grep "^$target\.tmp\.")
    [ -n "$left" ] || echo "the run ended before it was killed (no temporary seen): the input is too small" >>"$T/why"
    run "$dir" "$args" || cat "$T/err" >>"$T/why"
    left=$(ls -a "$dir" | grep '\.tmp\.')
    [ -z "$left" ] || echo "the next run did not remove: $left" >>"$T/why"
    [ -s "$T/why" ] && bad "$name: killed midway" "$T/why" ||
        ok "$name: SIGKILL midway leaves the previous output; the next run removes the temporary"
}
mkdir -p "$T/k"
kill_midway geocode-csv "$T/k" p.csv "geocode -q $B --complaints $T/big.csv --rejects $T/rej.csv --output @O@/p.csv --threads 1"
kill_midway tiles-dir "$T/k" tiles "tiles -q $B --complaints $T/big.csv --rejects $T/rej.csv --out @O@/tiles --min-zoom 3 --max-zoom 7"

echo "disk: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
