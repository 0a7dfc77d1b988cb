#!/bin/sh
# End-to-end tests: run build/problemap as a user would, on fixtures, and
# compare its outputs with expected files, a brute-force oracle and PostGIS.
#   tests/e2e/run.sh BUILD/problemap
# Tiers: cases/ (small hand-made fixtures with expected outputs and golden
# messages) always; the real-data tier when ../shared/data exists; the
# PostGIS oracle when PostgreSQL 15 + PostGIS are installed (make deps).
BIN=$(realpath "$1")
ROOT=$(pwd)
SHARED=${PM_SHARED_DATA:-$ROOT/../shared/data}
T=$(mktemp -d /tmp/pm_e2e.XXXXXX)
PG_DIR=""
cleanup() {
    [ -n "$PG_DIR" ] && sh "$ROOT/tests/pg/cluster.sh" stop "$PG_DIR"
    rm -rf "$T"
}
trap cleanup EXIT INT TERM
export PROBLEMAP_DATA="$ROOT/data"
# Points per real-data region (the sanitizer run uses fewer: same paths, less time).
NREAL=${PM_E2E_N:-100000}
pass=0; fail=0; skip=0
ok()   { pass=$((pass + 1)); echo "ok   $1"; }
bad()  { fail=$((fail + 1)); echo "FAIL $1"; [ -n "$2" ] && sed 's/^/     /' "$2" | head -40; }
skipped() { skip=$((skip + 1)); echo "skip $1: $2"; }

# --- cases/: each directory has `args` (the command line after the program
# name; $CASE is the case directory and $OUT the output directory) and any of
# `expected.exit` (default 0), `expected.stderr`, and expected/FILE for each
# output file compared byte for byte.
for c in "$ROOT"/tests/e2e/cases/*/; do
    [ -f "$c/args" ] || continue
    name=$(basename "$c")
    out="$T/$name"; mkdir -p "$out"
    args=$(sed "s#\$CASE#${c%/}#g; s#\$OUT#$out#g; s#\$ROOT#$ROOT#g" "$c/args")
    (cd "$out" && eval "\"$BIN\" $args" >"$out/stdout" 2>"$out/stderr"); code=$?
    want=0; [ -f "$c/expected.exit" ] && want=$(cat "$c/expected.exit")
    good=1
    if [ "$code" != "$want" ]; then echo "exit $code, expected $want" >"$out/why"; cat "$out/stderr" >>"$out/why"; good=0; fi
    if [ $good = 1 ] && [ -f "$c/expected.stderr" ]; then
        sed "s#$out#\$OUT#g; s#${c%/}#\$CASE#g" "$out/stderr" >"$out/stderr.n"
        diff -u "$c/expected.stderr" "$out/stderr.n" >"$out/why" || good=0
    fi
    if [ $good = 1 ] && [ -d "$c/expected" ]; then
        for f in "$c"/expected/*; do
            diff -u "$f" "$out/$(basename "$f")" >"$out/why" 2>&1 || { good=0; break; }
        done
    fi
    [ $good = 1 ] && ok "case $name" || bad "case $name" "$out/why"
done

# --- help explains every flag
"$BIN" --help >"$T/help" && grep -q geocode "$T/help" && ok "problemap --help" || bad "problemap --help"
"$BIN" geocode --help >"$T/ghelp"
missing=""
for f in boundaries complaints output rejects snap-tolerance id-field name-field parent-field population-field crs format mapping topics utc-offset threads; do
    grep -q -- "--$f" "$T/ghelp" || missing="$missing --$f"
done
[ -z "$missing" ] && ok "geocode --help lists every flag" || { echo "missing:$missing" >"$T/why"; bad "geocode --help" "$T/why"; }

# --- the same answer on 1 thread and on all cores; indexed = brute force
B="--boundaries $ROOT/data/ru_regions.geojson --id-field iso --name-field name_ru --parent-field federal_district"
"$BIN" generate $B --n 20000 --seed 7 --output "$T/gen.csv" 2>"$T/why" &&
"$BIN" geocode -q $B --complaints "$T/gen.csv" --output "$T/p1.csv" --rejects "$T/r1.csv" --threads 1 2>>"$T/why" &&
"$BIN" geocode -q $B --complaints "$T/gen.csv" --output "$T/pn.csv" --rejects "$T/rn.csv" --threads 0 2>>"$T/why" &&
"$BIN" geocode -q $B --complaints "$T/gen.csv" --output "$T/pb.csv" --brute-force 2>>"$T/why" &&
cmp -s "$T/p1.csv" "$T/pn.csv" && cmp -s "$T/p1.csv" "$T/pb.csv" && cmp -s "$T/r1.csv" "$T/rn.csv" &&
[ "$(wc -l <"$T/r1.csv")" -gt 100 ] &&
    ok "ru_regions: 1 thread = all threads = brute force (20 000 points; rejects too)" || bad "ru_regions thread/brute-force identity" "$T/why"

# --- nothing lost: read = accepted + rejected, placed rows = accepted, every reject has a reason
"$BIN" geocode $B --complaints "$T/gen.csv" --output "$T/p.csv" --rejects "$T/r.csv" --summary "$T/s.json" 2>"$T/why"
python3 - "$T/s.json" "$T/p.csv" "$T/r.csv" "$T/gen.csv" >"$T/why2" 2>&1 <<'PY' && ok "read = accepted + rejected, each reject explained" || bad "nothing lost" "$T/why2"
import csv, json, sys
s = json.load(open(sys.argv[1]))
placed = list(csv.DictReader(open(sys.argv[2], encoding="utf-8")))
rej = list(csv.DictReader(open(sys.argv[3], encoding="utf-8")))
inp = list(csv.DictReader(open(sys.argv[4], encoding="utf-8")))
assert s["read"] == len(inp), (s["read"], len(inp))
assert s["read"] == s["accepted"] + s["rejected"], s
assert len(placed) == s["accepted"] and len(rej) == s["rejected"], (len(placed), len(rej), s)
assert all(r["reason"] and r["line"] for r in rej)
assert "text" not in placed[0], "complaint text must never reach an output"
print("ok")
PY

# --- a pipe as the input (bash's <(zcat x.csv.gz) is one): nothing of it is read before the
# reader (the size estimate for making room looks at regular files only), same summary
# (reading it early took its first block, and the read then waited for a writer: a timeout)
mkfifo "$T/gen.fifo"
timeout 60 sh -c 'cat "$1" >"$2"' _ "$T/gen.csv" "$T/gen.fifo" &
timeout 60 "$BIN" geocode $B --complaints "$T/gen.fifo" --output "$T/pf.csv" --summary "$T/sf.json" 2>"$T/why"
wait $!
cmp -s "$T/s.json" "$T/sf.json" && cmp -s "$T/p.csv" "$T/pf.csv" &&
    ok "a FIFO as --complaints reads the same as the file" || bad "FIFO input" "$T/why"

# --- the cube, as a user builds and exports it
C="$T/cube"; mkdir -p "$C"
"$BIN" cube -q $B --complaints "$T/gen.csv" --cube "$C/full.pmc" --period week \
    --geojson "$C/d.geojson" --regions-geojson "$C/r.geojson" --csv "$C/d.csv" \
    --executors-csv "$C/e.csv" --topics-csv "$C/t.csv" --summary "$C/s.json" 2>"$T/why" &&
"$BIN" cube -q $B --complaints "$T/gen.csv" --topic roads --csv "$C/roads.csv" 2>>"$T/why" &&
python3 - "$T/p.csv" "$C/d.csv" "$C/roads.csv" "$C/t.csv" >>"$T/why" 2>&1 <<'PY' && ok "cube: counts per district and per district x topic = an independent count of placed.csv" || bad "cube counts" "$T/why"
import csv, sys, collections
placed = [r for r in csv.DictReader(open(sys.argv[1], encoding="utf-8")) if r["district_id"]]
by_d = collections.Counter(r["district_id"] for r in placed)
by_d_roads = collections.Counter(r["district_id"] for r in placed if r["topic"] == "roads")
by_t = collections.Counter(r["topic"] for r in placed)
def table(path, key):
    return {r[key]: int(r["complaints"]) for r in csv.DictReader(open(path, encoding="utf-8"))}
d, roads, t = table(sys.argv[2], "id"), table(sys.argv[3], "id"), table(sys.argv[4], "topic")
assert {k: v for k, v in d.items() if v} == dict(by_d), "per district"
assert {k: v for k, v in roads.items() if v} == dict(by_d_roads), "per district, roads"
assert {k: v for k, v in t.items() if v} == dict(by_t), "per topic"
print(len(by_d), "districts agree")
PY
# without --cube the cube keeps no ids (never written): the same tables to the byte
"$BIN" cube -q $B --complaints "$T/gen.csv" --period week --geojson "$C/d-nocube.geojson" \
    --csv "$C/d-nocube.csv" --executors-csv "$C/e-nocube.csv" --summary "$C/s-nocube.json" 2>"$T/why" &&
    cmp "$C/d.geojson" "$C/d-nocube.geojson" >>"$T/why" 2>&1 && cmp "$C/d.csv" "$C/d-nocube.csv" >>"$T/why" 2>&1 &&
    cmp "$C/e.csv" "$C/e-nocube.csv" >>"$T/why" 2>&1 && cmp "$C/s.json" "$C/s-nocube.json" >>"$T/why" 2>&1 &&
    ok "cube: without --cube (no id set kept) the same GeoJSON, tables and summary" || bad "cube without --cube" "$T/why"
if command -v ogrinfo >/dev/null; then
    ogrinfo -ro -al -so "$C/d.geojson" >"$T/ogr" 2>&1 && grep -q "Feature Count: 86" "$T/ogr" &&
    ogrinfo -ro -al -so "$C/r.geojson" >>"$T/ogr" 2>&1 &&
        ok "cube: ogrinfo reads districts.geojson (86 features) and regions.geojson" || bad "ogrinfo" "$T/ogr"
else
    skipped "ogrinfo" "gdal-bin not installed"
fi
HINT="$ROOT/build/npm/node_modules/@mapbox/geojsonhint/bin/geojsonhint"
if [ -f "$HINT" ] && command -v node >/dev/null; then
    { node "$HINT" "$C/d.geojson"; node "$HINT" "$C/r.geojson"; } >"$T/hint" 2>&1 && [ ! -s "$T/hint" ] &&
        ok "cube: @mapbox/geojsonhint finds nothing to say" || bad "geojsonhint" "$T/hint"
else
    skipped "geojsonhint" "not installed (make deps)"
fi
# incremental: half A then half B = all at once, to the byte; re-adding changes nothing
head -n 10001 "$T/gen.csv" >"$T/a.csv"
{ head -n 1 "$T/gen.csv"; tail -n +10002 "$T/gen.csv"; } >"$T/b.csv"
"$BIN" cube -q $B --complaints "$T/a.csv" --cube "$C/inc.pmc" --rejects "$C/ra.csv" 2>"$T/why" &&
"$BIN" cube -q $B --complaints "$T/b.csv" --cube "$C/inc.pmc" --rejects "$C/rb.csv" --csv "$C/inc.csv" 2>>"$T/why" &&
"$BIN" cube -q $B --complaints "$T/gen.csv" --cube "$C/all.pmc" --rejects "$C/rall.csv" --csv "$C/all.csv" 2>>"$T/why" &&
cmp "$C/inc.pmc" "$C/all.pmc" >>"$T/why" 2>&1 && cmp "$C/inc.csv" "$C/all.csv" >>"$T/why" 2>&1 &&
    ok "cube: incremental (A then B) = full rebuild, snapshot byte for byte" || bad "cube incremental" "$T/why"
"$BIN" cube -q $B --complaints "$T/gen.csv" --cube "$C/all.pmc" --rejects "$C/again.csv" --csv "$C/again-d.csv" 2>"$T/why" &&
cmp "$C/all.csv" "$C/again-d.csv" >>"$T/why" 2>&1 &&
python3 - "$C/again.csv" "$C/rall.csv" "$T/gen.csv" >>"$T/why" 2>&1 <<'PY' && ok "cube: the same file again adds nothing; each complaint rejected as already in the cube" || bad "cube re-add" "$T/why"
import csv, sys
again = list(csv.DictReader(open(sys.argv[1], encoding="utf-8")))
first = list(csv.DictReader(open(sys.argv[2], encoding="utf-8")))
n = sum(1 for _ in csv.DictReader(open(sys.argv[3], encoding="utf-8")))
dup = [r for r in again if r["reason"] == "duplicate id (already in the cube)"]
assert len(again) == n, (len(again), n)          # every record rejected once
assert len(dup) == n - len(first), (len(dup), n, len(first))
PY
# blocks: complaints are placed (and aggregated) block by block while the rest is read;
# blocks of 7 give the same placements, table, snapshot and rejects as one block (only the
# rejects' order may differ: those found after placing come when their block is done)
cp "$C/all.pmc" "$C/again-blk.pmc"
"$BIN" geocode -q $B --complaints "$T/gen.csv" --output "$T/pk.csv" --rejects "$T/rk.csv" \
    --block-size 7 2>"$T/why" &&
"$BIN" cube -q $B --complaints "$T/gen.csv" --cube "$C/blk.pmc" --rejects "$C/rblk.csv" \
    --csv "$C/blk.csv" --block-size 7 2>>"$T/why" &&
"$BIN" cube -q $B --complaints "$T/gen.csv" --cube "$C/again-blk.pmc" --rejects "$C/again-blk.csv" \
    --block-size 7 2>>"$T/why" &&
cmp "$T/p1.csv" "$T/pk.csv" >>"$T/why" 2>&1 && cmp "$C/blk.pmc" "$C/all.pmc" >>"$T/why" 2>&1 &&
cmp "$C/blk.csv" "$C/all.csv" >>"$T/why" 2>&1 && cmp "$C/again-blk.pmc" "$C/all.pmc" >>"$T/why" 2>&1 &&
[ "$(sort "$T/r1.csv" | cksum)" = "$(sort "$T/rk.csv" | cksum)" ] &&
[ "$(sort "$C/rall.csv" | cksum)" = "$(sort "$C/rblk.csv" | cksum)" ] &&
[ "$(sort "$C/again.csv" | cksum)" = "$(sort "$C/again-blk.csv" | cksum)" ] &&
! cmp -s "$T/r1.csv" "$T/rk.csv" &&
    ok "blocks of 7 while reading = one block: placements, cube, table, rejects (re-adding too)" ||
    bad "--block-size 7" "$T/why"
"$BIN" export -q $B --cube "$C/all.pmc" --csv "$C/exported.csv" 2>"$T/why" && cmp "$C/all.csv" "$C/exported.csv" >>"$T/why" 2>&1 &&
    ok "export: a snapshot's table = the one written when it was built" || bad "export" "$T/why"
"$BIN" export -q $B --cube "$C/all.pmc" --report "$C/report.png" --report "$C/report.pdf" \
    --report "$C/report.svg" --report-figure answered_within_24h_share 2>"$T/why" &&
[ "$(head -c 8 "$C/report.png" | od -An -c | tr -d ' ')" = "211PNG\r\n032\n" ] &&
head -c 5 "$C/report.pdf" | grep -q "%PDF-" && grep -q "<svg" "$C/report.svg" &&
    ok "export: the report as PNG, PDF and SVG" || bad "export: report" "$T/why"
# --- the report of `cube` has the heat layer: exactly the complaints the report selects
# (placed with coordinates, the filter's topic, source and days), counted independently
# from geocode's placed.csv; `export` draws the same report without it (no complaints in
# a snapshot), and a grown snapshot's report leaves it out with a warning.
"$BIN" cube $B --complaints "$T/gen.csv" --utc-offset +03:00 --period month \
    --from 2025-02-01 --to 2025-02-28 --topic roads --source vk \
    --report "$C/heat.png" --report "$C/heat.pdf" --cube "$C/heat.pmc" 2>"$T/heat.log" &&
"$BIN" export -q $B --cube "$C/heat.pmc" --from 2025-02-01 --to 2025-02-28 --topic roads \
    --source vk --report "$C/noheat.png" 2>"$T/why" &&
! cmp -s "$C/heat.png" "$C/noheat.png" && head -c 5 "$C/heat.pdf" | grep -q "%PDF-" &&
python3 - "$T/p.csv" "$T/heat.log" >>"$T/why" 2>&1 <<'PY' && ok "cube --report: the heat layer draws exactly the selected complaints with coordinates" || bad "cube --report heat layer" "$T/why"
import csv, datetime, re, sys
tz = datetime.timezone(datetime.timedelta(hours=3))
lo, hi = datetime.datetime(2025, 2, 1, tzinfo=tz), datetime.datetime(2025, 3, 1, tzinfo=tz)
n = 0
for r in csv.DictReader(open(sys.argv[1], encoding="utf-8")):
    t = datetime.datetime.fromisoformat(r["created_at"].replace("Z", "+00:00"))
    n += (lo <= t < hi and r["topic"] == "roads" and r["source"] == "vk" and r["lon"] != ""
          and r["placement"] in ("inside", "border", "snapped"))
m = re.search(r"heat layer of (\d+) complaints", open(sys.argv[2], encoding="utf-8").read())
assert m and int(m.group(1)) == n > 100, (m and m.group(1), n)
print(n, "complaints on the heat layer")
PY
"$BIN" cube $B --complaints "$T/a.csv" --cube "$C/heat.pmc" --utc-offset +03:00 --period month \
    --report "$C/grown.png" 2>"$T/why" >/dev/null; true
grep -q "warning: the report has no heat layer" "$T/why" && [ -s "$C/grown.png" ] &&
    ok "cube --report on a grown snapshot: no heat layer, said so" || bad "cube --report grown" "$T/why"
# heat-map tiles: a pyramid directory with TileJSON, and MBTiles
"$BIN" tiles -q $B --complaints "$T/gen.csv" --out "$C/tiles" --mbtiles "$C/heat.mbtiles" \
    --min-zoom 2 --max-zoom 4 --radius-m 20000 2>"$T/why" &&
python3 - "$C/tiles" >>"$T/why" 2>&1 <<'PY' && ok "tiles: z/x/y.png pyramid with TileJSON 3.0 (non-empty PNG tiles, legend)" || bad "tiles" "$T/why"
import json, os, sys
d = sys.argv[1]
tj = json.load(open(os.path.join(d, "tilejson.json")))
assert tj["tilejson"] == "3.0.0" and tj["tiles"] == ["{z}/{x}/{y}.png"], tj
assert tj["minzoom"] == 2 and tj["maxzoom"] == 4 and len(tj["bounds"]) == 4
assert tj["problemap_legend"]["stops"], tj.get("problemap_legend")
pngs = [os.path.join(r, f) for r, _, fs in os.walk(d) for f in fs if f.endswith(".png")]
assert len(pngs) > 5, len(pngs)
for p in pngs:
    assert open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n", p
zooms = {int(os.path.relpath(p, d).split(os.sep)[0]) for p in pngs}
assert zooms == {2, 3, 4}, zooms
print(len(pngs), "tiles")
PY
if command -v gdalinfo >/dev/null; then
    gdalinfo "$C/heat.mbtiles" >"$T/gdal" 2>&1 && grep -q "Driver: MBTiles/MBTiles" "$T/gdal" &&
        ok "tiles: gdalinfo opens the MBTiles file" || bad "tiles: MBTiles" "$T/gdal"
else
    skipped "MBTiles check" "gdalinfo not installed"
fi
# choropleth and grid tiles: legends, and pixels checked against the cube's own table
"$BIN" tiles -q $B --complaints "$T/gen.csv" --rejects "$T/tr.csv" --out "$C/choro" --layer choropleth \
    --min-zoom 2 --max-zoom 5 2>"$T/why" &&
"$BIN" tiles -q $B --complaints "$T/gen.csv" --rejects "$T/tr.csv" --out "$C/grid" --mbtiles "$C/grid.mbtiles" \
    --layer grid --cell-m 20000 --min-zoom 3 --max-zoom 5 2>>"$T/why" &&
python3 "$ROOT/tests/e2e/check_choro_grid.py" "$C/choro" "$C/grid" "$C/d.csv" >>"$T/why" 2>&1 &&
    ok "tiles: choropleth and grid pyramids (legends; a district's pixel has its class colour)" || bad "tiles: choropleth/grid" "$T/why"
"$BIN" tiles -q $B --complaints "$T/gen.csv" --rejects "$T/tr.csv" --out "$C/bad" --layer choropleth --figure nope 2>"$T/why"; code1=$?
"$BIN" tiles -q $B --complaints "$T/gen.csv" --rejects "$T/tr.csv" --out "$C/bad" --layer grid --cell-m 50 2>>"$T/why"; code2=$?
[ $code1 = 2 ] && [ $code2 = 2 ] && grep -q "figure" "$T/why" && ! [ -e "$C/bad" ] &&
    ok "tiles: an unknown figure or a cell under 100 m is a usage error" || bad "tiles: usage errors" "$T/why"
ls "$C" | grep -q "\.tmp\." && bad "tiles: a temporary file was left behind" || ok "tiles: no temporary file left behind"
# personal data: the generator's texts never reach an output
if grep -rl "Синтетическое обращение" "$T"/p.csv "$T"/r.csv "$T"/s.json "$C"/*.geojson "$C"/*.csv "$C"/*.json "$C"/*.pmc "$C"/report.* "$C"/tiles "$C"/heat.mbtiles "$C"/choro "$C"/grid "$C"/grid.mbtiles "$C"/heat.* >"$T/leak" 2>/dev/null; then
    bad "complaint text in outputs" "$T/leak"
else
    ok "complaint text is in no output (placed, rejects, GeoJSON, CSV, summary, snapshot, report)"
fi

# --- the real-data tier
if [ -d "$SHARED" ]; then
    for reg in kemerovo krasnodar; do
        f="$SHARED/ru_${reg}_districts_osm.geojson"
        RB="--boundaries $f --no-topology-check"
        "$BIN" generate $RB --n "$NREAL" --seed 11 --cluster-share 0.7 --output "$T/$reg.csv" 2>"$T/why" &&
        "$BIN" geocode -q $RB --complaints "$T/$reg.csv" --output "$T/$reg.idx.csv" 2>>"$T/why" &&
        "$BIN" geocode -q $RB --complaints "$T/$reg.csv" --output "$T/$reg.bf.csv" --brute-force 2>>"$T/why" &&
        cmp "$T/$reg.idx.csv" "$T/$reg.bf.csv" >>"$T/why" 2>&1 &&
            ok "real data: $reg OSM districts, $NREAL points = brute force" || bad "real data: $reg" "$T/why"
    done
    # the cube on real districts: per district x topic = an independent count of the placed rows
    KB="--boundaries $SHARED/ru_kemerovo_districts_osm.geojson --no-topology-check"
    "$BIN" cube -q $KB --complaints "$T/kemerovo.csv" --utc-offset +07:00 --csv "$T/kem-d.csv" 2>"$T/why" &&
    for tp in housing roads; do
        "$BIN" cube -q $KB --complaints "$T/kemerovo.csv" --utc-offset +07:00 --topic $tp --csv "$T/kem-$tp.csv" 2>>"$T/why" || break
    done &&
    python3 - "$T/kemerovo.idx.csv" "$T/kem-d.csv" "$T/kem-housing.csv" "$T/kem-roads.csv" >>"$T/why" 2>&1 <<'PY' && ok "real data: the cube on Kemerovo OSM districts = an independent count (all, housing, roads)" || bad "real data: cube" "$T/why"
import csv, sys, collections
placed = [r for r in csv.DictReader(open(sys.argv[1], encoding="utf-8")) if r["district_id"]]
def table(path):
    return {r["id"]: int(r["complaints"]) for r in csv.DictReader(open(path, encoding="utf-8")) if r["complaints"] != "0"}
for path, topic in ((sys.argv[2], None), (sys.argv[3], "housing"), (sys.argv[4], "roads")):
    want = collections.Counter(r["district_id"] for r in placed if topic in (None, r["topic"]))
    assert table(path) == dict(want), (path, topic)
PY
    NB="--boundaries $SHARED/nyc_boroughs.geojson --no-topology-check"
    for y in 2011 2013; do
        "$BIN" geocode -q $NB --mapping nyc311 --utc-offset -05:00 --complaints "$SHARED/nyc311_sample_$y.csv" \
            --output "$T/nyc$y.idx.csv" --rejects "$T/nyc$y.rej.csv" --summary "$T/nyc$y.json" 2>"$T/why" &&
        "$BIN" geocode -q $NB --mapping nyc311 --utc-offset -05:00 --complaints "$SHARED/nyc311_sample_$y.csv" \
            --output "$T/nyc$y.bf.csv" --rejects "$T/nyc$y.rej2.csv" --brute-force 2>>"$T/why" &&
        cmp "$T/nyc$y.idx.csv" "$T/nyc$y.bf.csv" >>"$T/why" 2>&1 &&
        python3 - "$SHARED/nyc311_sample_$y.csv" "$T/nyc$y.idx.csv" "$T/nyc$y.rej.csv" "$T/nyc$y.json" >>"$T/why" 2>&1 <<'PY' && ok "real data: NYC 311 $y = brute force; every reject explained; boroughs agree" || bad "real data: NYC 311 $y" "$T/why"
import csv, json, sys
src = list(csv.DictReader(open(sys.argv[1], encoding="utf-8", newline="")))
placed = {r["id"]: r for r in csv.DictReader(open(sys.argv[2], encoding="utf-8"))}
rej = list(csv.DictReader(open(sys.argv[3], encoding="utf-8")))
s = json.load(open(sys.argv[4]))
assert s["read"] == len(src) == len(placed) + len(rej), (s, len(src), len(placed), len(rej))
# every row without coordinates is rejected with that reason, and no other row is
nocoord = {r["Unique Key"] for r in src if not r["Latitude"].strip()}
rej_ids = {r["id"] for r in rej}
assert nocoord <= rej_ids, sorted(nocoord - rej_ids)[:5]
assert all(r["reason"] for r in rej)
# the 311 Borough column is an outside source of truth for placed points
name = {"1": "MANHATTAN", "2": "BRONX", "3": "BROOKLYN", "4": "QUEENS", "5": "STATEN ISLAND"}
agree = total = 0
for r in src:
    p = placed.get(r["Unique Key"])
    if p and p["placement"] in ("inside", "border") and r["Borough"] in name.values():
        total += 1
        agree += name[p["district_id"]] == r["Borough"]
assert total > 0 and agree / total > 0.99, (agree, total)
print("placed", len(placed), "rejected", len(rej), "borough agreement", agree, "/", total)
PY
    done
else
    skipped "real-data tier" "$SHARED not found"
fi

# --- PostGIS oracle: ST_Intersects with the border rule gives the same districts
if [ -x /usr/lib/postgresql/15/bin/initdb ] && command -v ogr2ogr >/dev/null && [ -d "$SHARED" ]; then
    if eval "$(sh "$ROOT/tests/pg/cluster.sh" start 2>"$T/pg.err")"; then
        PG_DIR=$PM_PG_DIR
        f="$SHARED/ru_kemerovo_districts_osm.geojson"
        ogr2ogr -f PostgreSQL "PG:host=$PGHOST port=$PGPORT user=postgres dbname=problemap_test" "$f" \
            -nln districts -lco GEOMETRY_NAME=geom -nlt PROMOTE_TO_MULTI 2>"$T/why" &&
        psql -qAt -v ON_ERROR_STOP=1 >>"$T/why" 2>&1 <<SQL &&
CREATE TABLE pts (id text PRIMARY KEY, lon float8, lat float8);
\copy pts FROM PROGRAM 'cut -d, -f1,3,4 $T/kemerovo.idx.csv | tail -n +2' WITH (FORMAT csv)
ALTER TABLE pts ADD COLUMN geom geometry(Point, 4326);
UPDATE pts SET geom = ST_SetSRID(ST_MakePoint(lon, lat), 4326);
CREATE INDEX ON pts USING gist (geom);
ANALYZE;
\copy (SELECT DISTINCT ON (p.id) p.id, d.id FROM pts p JOIN districts d ON ST_Intersects(d.geom, p.geom) ORDER BY p.id, d.id COLLATE "C") TO '$T/pg.csv' WITH (FORMAT csv)
SQL
        psql -qAt -F, -c "SELECT id, ST_Area(geom::geography) / 1e6 FROM districts" >"$T/pg-area.csv" 2>>"$T/why" &&
        python3 - "$T/kem-d.csv" "$T/pg-area.csv" >>"$T/why" 2>&1 <<'PY' && ok "PostGIS oracle: district areas = ST_Area(geography) within 0.1 % (Kemerovo)" || bad "PostGIS area oracle" "$T/why"
import csv, sys
ours = {r["id"]: float(r["area_km2"]) for r in csv.DictReader(open(sys.argv[1], encoding="utf-8"))}
pg = {k: float(v) for k, v in csv.reader(open(sys.argv[2], encoding="utf-8"))}
assert set(ours) == set(pg), set(ours) ^ set(pg)
worst = max(abs(ours[k] - pg[k]) / pg[k] for k in pg)
assert worst < 1e-3, worst
print("worst relative difference", worst)
PY
        # problemap db: migrations twice, a load, the same load again
        DB="--db postgresql:///problemap_test?host=$PGHOST&port=$PGPORT&user=postgres"
        "$BIN" db migrate $DB >"$T/m1" 2>"$T/why" && "$BIN" db migrate $DB >"$T/m2" 2>>"$T/why" &&
        grep -q "(0 migrations applied now)" "$T/m2" &&
        "$BIN" db load -q $DB $KB --complaints "$T/kemerovo.csv" --rejects "$T/dbrej.csv" --batch 20000 2>>"$T/why" &&
        "$BIN" db load -q $DB $KB --complaints "$T/kemerovo.csv" --rejects "$T/dbrej2.csv" --batch 20000 2>>"$T/why" &&
        psql -qAt -c "SELECT count(*) FROM problemap.complaints" >"$T/n_db" 2>>"$T/why" &&
        psql -qAt -c "SELECT count(*) FROM problemap.rejects" >"$T/n_rej" 2>>"$T/why" &&
        python3 - "$T/kemerovo.idx.csv" "$T/n_db" "$T/dbrej.csv" "$T/n_rej" >>"$T/why" 2>&1 <<'PY' && ok "db: migrate is idempotent; load = accepted complaints, loading again adds nothing; rejects in the table" || bad "db load" "$T/why"
import csv, sys
accepted = sum(1 for _ in csv.DictReader(open(sys.argv[1], encoding="utf-8")))
in_db = int(open(sys.argv[2]).read())
rejects = sum(1 for _ in csv.DictReader(open(sys.argv[3], encoding="utf-8")))
in_rej = int(open(sys.argv[4]).read())
assert in_db == accepted, (in_db, accepted)
assert in_rej == 2 * rejects, (in_rej, rejects)   # two loads, each records its rejects
print(in_db, "complaints,", in_rej, "reject rows")
PY
        # the database as the source: geocode --db places what it reads and writes
        # the placements back; they equal the file run's, row for row
        psql -qAt -c "UPDATE problemap.complaints SET district_id = NULL, placement = NULL" >/dev/null 2>>"$T/why" &&
        "$BIN" geocode -q $DB --output "$T/dbplaced.csv" --rejects "$T/dbplaced-rej.csv" 2>>"$T/why" &&
        psql -qAt -F, -c "SELECT id, coalesce(district_id, ''), coalesce(placement, '') FROM problemap.complaints" >"$T/dbback.csv" 2>>"$T/why" &&
        python3 - "$T/kemerovo.idx.csv" "$T/dbplaced.csv" "$T/dbback.csv" >>"$T/why" 2>&1 <<'PY' && ok "db: geocode --db reads PostGIS, places as the file run does, writes the placements back" || bad "geocode --db" "$T/why"
import csv, sys
files = {r["id"]: (r["district_id"], r["placement"]) for r in csv.DictReader(open(sys.argv[1], encoding="utf-8"))}
fromdb = {r["id"]: (r["district_id"], r["placement"]) for r in csv.DictReader(open(sys.argv[2], encoding="utf-8"))}
back = {row[0]: (row[1], row[2]) for row in csv.reader(open(sys.argv[3], encoding="utf-8"))}
assert fromdb == files, [k for k in files if files[k] != fromdb.get(k)][:10]
assert back == files, [k for k in files if files[k] != back.get(k)][:10]
print(len(files), "placements agree (file run, --db run, database)")
PY
        # cube --db: the cube of the database's complaints lands in cube_cells; per district ×
        # topic it equals the placements the database holds, and a second run replaces it
        "$BIN" cube -q $DB --period week --utc-offset +07:00 2>>"$T/why" >/dev/null &&
        "$BIN" cube -q $DB --period week --utc-offset +07:00 2>>"$T/why" >/dev/null &&
        psql -qAt -F, -c "SELECT district_id, topic, sum(count) FROM problemap.cube_cells WHERE period_kind = 'week' GROUP BY 1, 2 ORDER BY 1, 2" >"$T/cells.csv" 2>>"$T/why" &&
        psql -qAt -F, -c "SELECT district_id, topic, count(*) FROM problemap.complaints WHERE district_id IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2" >"$T/placed-db.csv" 2>>"$T/why" &&
        [ -s "$T/cells.csv" ] && cmp "$T/cells.csv" "$T/placed-db.csv" >>"$T/why" 2>&1 &&
            ok "db: cube --db writes cube_cells = the database's placements per district x topic (twice: replaced, not doubled)" || bad "cube --db" "$T/why"
        python3 - "$T/kemerovo.idx.csv" "$T/pg.csv" >>"$T/why" 2>&1 <<'PY' && ok "PostGIS oracle: ST_Intersects + lowest id = ours (Kemerovo, $NREAL points)" || bad "PostGIS oracle" "$T/why"
import csv, sys
ours = {r["id"]: r["district_id"] for r in csv.DictReader(open(sys.argv[1], encoding="utf-8"))
        if r["placement"] in ("inside", "border")}
pg = {row[0]: row[1] for row in csv.reader(open(sys.argv[2], encoding="utf-8"))}
diff = [(k, ours.get(k), pg.get(k)) for k in set(ours) | set(pg) if ours.get(k) != pg.get(k)]
assert not diff, diff[:10]
print(len(ours), "points agree")
PY
    else
        bad "PostGIS cluster start" "$T/pg.err"
    fi
else
    skipped "PostGIS oracle" "PostgreSQL 15/PostGIS, ogr2ogr or shared data missing"
fi

# --- analyze: a planted surge (RU-TUL, roads, the last of 14 weeks, on Poisson(15) a week
# everywhere) is a new hot spot with the highest Gi*, only its queen neighbours are flagged
# with it (Gi* sums a neighbourhood), and it is a surge alert; the layers open in ogrinfo
python3 "$ROOT/tests/e2e/planted_surge.py" "$ROOT/data/ru_regions.geojson" "$T/surge.csv" &&
"$BIN" analyze -q $B --complaints "$T/surge.csv" --rejects "$T/surge-rej.csv" --topic roads --fdr \
    --to 2025-09-07 --hotspots "$C/hot.geojson" --emerging "$C/emerging.geojson" \
    --emerging-csv "$C/emerging.csv" --alerts "$C/alerts.csv" --forecast "$C/forecast.csv" 2>"$T/why" &&
ogrinfo -ro -so -al "$C/hot.geojson" 2>>"$T/why" | grep -q "Feature Count: 86" &&
ogrinfo -ro -so -al "$C/emerging.geojson" 2>>"$T/why" | grep -q "Feature Count: 86" &&
python3 - "$C/emerging.csv" "$C/alerts.csv" "$ROOT/data/ru_regions.geojson" >>"$T/why" 2>&1 <<'PY' && ok "analyze: a planted surge is a new hot spot (highest Gi*, only neighbours with it) and the only surge alert at FDR 5 %" || bad "analyze: planted surge" "$T/why"
import csv, json, sys
em = {r["id"]: r for r in csv.DictReader(open(sys.argv[1], encoding="utf-8"))}
alerts = [r for r in csv.DictReader(open(sys.argv[2], encoding="utf-8"))]
flagged = {k for k, r in em.items() if r["emerging_class"] != "no pattern"}
assert em["RU-TUL"]["emerging_class"] == "new hot spot", em["RU-TUL"]
top = max(em, key=lambda k: float(em[k]["last_gi_z"] or "-inf"))
assert top == "RU-TUL", top
# queen neighbours of RU-TUL, by an independent test: shared boundary vertices
def verts(g):
    polys = g["coordinates"] if g["type"] == "MultiPolygon" else [g["coordinates"]]
    return {(round(x, 9), round(y, 9)) for p in polys for ring in p for x, y in ring}
feats = {f["properties"]["iso"]: verts(f["geometry"]) for f in json.load(open(sys.argv[3], encoding="utf-8"))["features"]}
near = {k for k, v in feats.items() if v & feats["RU-TUL"]}
assert flagged <= near, flagged - near
assert [(r["district_id"], r["topic"], r["surge"]) for r in alerts] == [("RU-TUL", "roads", "true")], alerts
print("flagged", sorted(flagged), "alerts", [r["district_id"] for r in alerts])
PY

# --- analyze --report: the report with its analytics page (a PDF of 2 pages; page 2 names
# the planted surge's region as a new hot spot and lists its surge alert)
"$BIN" analyze -q $B --complaints "$T/surge.csv" --rejects "$T/surge-rej.csv" --topic roads --fdr \
    --to 2025-09-07 --report "$C/analytics.pdf" --report "$C/analytics.png" 2>"$T/why" &&
[ "$(pdfinfo "$C/analytics.pdf" 2>>"$T/why" | awk '/^Pages:/ {print $2}')" = 2 ] &&
pdftotext -f 2 -l 2 "$C/analytics.pdf" - >"$T/an.txt" 2>>"$T/why" &&
grep -q "Всплески обращений" "$T/an.txt" && grep -q "новая горячая точка" "$T/an.txt" &&
grep -q "Тульская область" "$T/an.txt" && grep -q "FDR 5 %" "$T/an.txt" &&
python3 - "$C/analytics.png" >>"$T/why" 2>&1 <<'PY' && ok "analyze --report: a 2-page PDF and a PNG of two A4 pages; page 2 has the surge as a new hot spot and its alert" || bad "analyze --report" "$T/why"
import struct, sys
d = open(sys.argv[1], "rb").read(32)
w, h = struct.unpack(">II", d[16:24])
assert d[:8] == b"\x89PNG\r\n\x1a\n" and abs(h - 2 * w * 210 / 297) <= 4, (w, h)   # two A4 landscape pages
PY

# --- tiles: the hot-spot layer of the planted surge: Tula dark red (hot spot, 99 %), a far
# region not significant, an island hatched as no data; --fdr only with that layer
"$BIN" tiles -q $B --complaints "$T/surge.csv" --rejects "$T/hot-rej.csv" --out "$C/hot" --layer hotspots \
    --topic roads --from 2025-09-01 --to 2025-09-07 --min-zoom 2 --max-zoom 5 2>"$T/why" &&
python3 "$ROOT/tests/e2e/check_hotspots.py" "$C/hot" >>"$T/why" 2>&1 &&
    ok "tiles: hot-spot layer of a planted surge (7 Gi* classes; the surge dark red, far regions not significant, islands no data)" ||
    bad "tiles: hotspots" "$T/why"
"$BIN" tiles -q $B --complaints "$T/surge.csv" --rejects "$T/hot-rej.csv" --out "$C/hot-bad" --layer heat --fdr 2>"$T/why"; code=$?
[ $code = 2 ] && grep -q -- "--fdr is for --layer hotspots" "$T/why" && ! [ -e "$C/hot-bad" ] &&
    ok "tiles: --fdr without --layer hotspots is a usage error" || bad "tiles: --fdr usage" "$T/why"

# --- analyze: Gi* on an equal-area grid (2 km squares and hexagons over Tula and its
# neighbours): ogrinfo reads the layer, the cells' counts add up to the road complaints in
# their polygons (the script's own point-in-polygon), and a planted cluster's cell is gi_bin 3
mkdir -p "$T/grid" &&
python3 "$ROOT/tests/e2e/check_grid_hotspots.py" "$BIN" "$ROOT/data/ru_regions.geojson" "$T/grid" >"$T/grid.log" 2>&1 &&
    ok "analyze: grid hot spots ($(tail -1 "$T/grid.log"))" || bad "analyze: grid hot spots" "$T/grid.log"

# --- hostile inputs (tests/hostile/): exit statuses, messages naming file and line or
# feature, rejects with reasons, the good records kept, nothing lost (read = accepted +
# rejected = the cube's cells + outside) on every case and every complaints fixture
sh "$ROOT/tests/hostile/run.sh" "$BIN" >"$T/hostile" 2>&1 &&
    ok "hostile-input catalogue and nothing-lost sums ($(tail -1 "$T/hostile"))" || bad "hostile-input catalogue" "$T/hostile"

# --- personal-data canaries through every program output (PDF streams inflated, SVG, PNG,
# MBTiles, stderr); full disks (tmpfs, ulimit -f) and runs killed midway leave the previous
# outputs intact and no temporary behind (PM_E2E_DISK=0 skips the latter, as the ASan run does)
sh "$ROOT/tests/e2e/canary.sh" "$BIN" >"$T/canary" 2>&1 &&
    ok "canary: $(tail -1 "$T/canary" | sed 's/^ok *canary: //')" || bad "canary" "$T/canary"
if [ "${PM_E2E_DISK:-1}" = 1 ]; then
    sh "$ROOT/tests/disk/run.sh" "$BIN" >"$T/disk" 2>&1 &&
        ok "disk: ENOSPC, RLIMIT_FSIZE and SIGKILL leave previous outputs intact ($(tail -1 "$T/disk"))" || bad "disk" "$T/disk"
else skipped "disk" "PM_E2E_DISK=0"; fi

# --- analytics: spatial weights, Gi* and local Moran against libpysal + numpy (Debian)
sh "$ROOT/tests/analytics/run.sh" "$(dirname "$BIN")/libproblemap.a" >"$T/analytics.log" 2>&1; rc=$?
if [ $rc -eq 0 ]; then ok "analytics: queen/distance/kNN weights, Gi*, local Moran = libpysal + numpy ($(tail -1 "$T/analytics.log"))"
elif [ $rc -eq 77 ]; then skipped "analytics vs pysal" "$(tail -1 "$T/analytics.log")"
else bad "analytics vs pysal" "$T/analytics.log"; fi

# --- the web map: the server (hostile input, caching, reload, canaries; ~40 s) and the
# viewer in a real browser (headless Debian chromium driven by playwright-core)
sh "$ROOT/tests/serve/run.sh" "$BIN" >"$T/serve.log" 2>&1 &&
    ok "serve: tests/serve/run.sh ($(tail -1 "$T/serve.log"))" || bad "serve" "$T/serve.log"
sh "$ROOT/tests/browser/run.sh" "$BIN" >"$T/browser.log" 2>&1; rc=$?
if [ $rc -eq 0 ]; then ok "viewer: tests/browser/run.sh in headless chromium ($(tail -1 "$T/browser.log"))"
elif [ $rc -eq 77 ]; then skipped "viewer browser test" "$(tail -1 "$T/browser.log")"
else bad "viewer" "$T/browser.log"; fi

echo "e2e: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
