#!/bin/sh
# `make bench`: geocoding speed against PostGIS in the same run, on the same
# points and boundaries, with identical counts checked.  A benchmark, not a
# test: it never fails on a slow machine, only on a wrong answer.
#   BENCH_N (default 1000000) points; BENCH_RUNS (default 3) runs each, median.
# Writes docs/benchmarks.md.
set -e
BIN=$(realpath "${1:-build/problemap}")
ROOT=$(pwd)
N=${BENCH_N:-1000000}
RUNS=${BENCH_RUNS:-3}
SHARED=$ROOT/../shared/data
T=$(mktemp -d /tmp/pm_bench.XXXXXX)
PG_DIR=""
SPID=""
cleanup() {   # under set -e: nothing here may fail
    if [ -n "$SPID" ]; then kill "$SPID" 2>/dev/null || true; fi
    if [ -n "$PG_DIR" ]; then sh "$ROOT/tests/pg/cluster.sh" stop "$PG_DIR" || true; fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export PROBLEMAP_DATA="$ROOT/data"
if [ -f "$SHARED/ru_kemerovo_districts_osm.geojson" ]; then
    BFILE="$SHARED/ru_kemerovo_districts_osm.geojson"; BOPT=""; BNAME="Kemerovo OSM districts (34)"
else
    BFILE="$ROOT/data/ru_regions.geojson"; BOPT="--id-field iso"; BNAME="Russian regions, Natural Earth (86)"
fi
B="--boundaries $BFILE $BOPT --no-topology-check"
echo "bench: generating $N complaints over $BNAME"
"$BIN" generate $B --n "$N" --seed 42 --dirty-share 0 --no-coords-share 0 --output "$T/c.csv" 2>/dev/null

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
secs() { # command... → wall seconds
    s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); printf '%.3f\n' "$(echo "$e - $s" | bc -l)"
}
# serve_up LOG serve-args...: starts \`problemap serve\` on a free port in the background,
# its standard error into LOG, and waits until it listens (or 10 minutes); SPID is its pid.
serve_up() {
    log=$1; shift
    "$BIN" serve -q "$@" --listen 127.0.0.1:0 --access-log /dev/null >"$log" 2>&1 &
    SPID=$!
    i=0; while [ $i -lt 2400 ] && ! grep -q "listening on" "$log"; do sleep 0.25; i=$((i + 1)); done
}
# serve_start serve-args...: the server's own "loaded generation 1 in S s", and its peak RSS
# in MiB after the load, as "S MIB".
serve_start() {
    serve_up "$T/start.log" "$@"
    secs_=$(sed -n 's/.*loaded generation 1 in \([0-9.]*\) s.*/\1/p' "$T/start.log")
    mib_=$(awk '$1 == "VmHWM:" {print int($2 / 1024)}' "/proc/$SPID/status" 2>/dev/null || true)
    kill "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true
    echo "${secs_:-?} ${mib_:-?}"
}

ours_all=$(for i in $(seq "$RUNS"); do secs "$BIN" geocode -q $B --complaints "$T/c.csv" --output "$T/p.csv"; done | median)
ours_1=$(for i in $(seq "$RUNS"); do secs "$BIN" geocode -q $B --complaints "$T/c.csv" --output "$T/p1.csv" --threads 1; done | median)
rss=$( { /usr/bin/time -f "%M" "$BIN" geocode -q $B --complaints "$T/c.csv" --output "$T/p.csv" >/dev/null; } 2>&1 | tail -1)

# the geocoder alone (no CSV): tools/bench_locate.c against the library, raster on and off
PKGS="geos proj cairo pangocairo libpng zlib libxxhash sqlite3 jansson libpq libmicrohttpd"
LIBA=$(dirname "$BIN")/libproblemap.a
cc -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -O2 $(pkg-config --cflags $PKGS) \
    -o "$T/bench_locate" "$ROOT/tools/bench_locate.c" "$LIBA" $(pkg-config --libs $PKGS) -lm -pthread
"$T/bench_locate" "$BFILE" "$(echo "$BOPT" | sed -n 's/--id-field //p' | grep . || echo -)" "$T/c.csv" \
    "$ROOT/data/topics.json" "$RUNS" >"$T/locate.txt"
loc_new=$(awk '$1 == "locator_new" {print $2}' "$T/locate.txt")
loc_raster=$(awk '$1 == "locate_raster" {print $2}' "$T/locate.txt")
loc_exact=$(awk '$1 == "locate_exact" {print $2}' "$T/locate.txt")
loc_n=$(awk '$1 == "points" {print $2}' "$T/locate.txt")

echo "bench: starting a throwaway PostGIS"
eval "$(sh "$ROOT/tests/pg/cluster.sh" start)"
PG_DIR=$PM_PG_DIR
ogr2ogr -f PostgreSQL "PG:host=$PGHOST port=$PGPORT user=postgres dbname=problemap_test" "$BFILE" \
    -nln districts -lco GEOMETRY_NAME=geom -nlt PROMOTE_TO_MULTI
[ -n "$BOPT" ] && psql -qAt -c "ALTER TABLE districts RENAME COLUMN id TO ogc_id; ALTER TABLE districts RENAME COLUMN iso TO id" >/dev/null
awk -F, 'NR > 1 {print $1 "," $3 "," $4 "," $5}' "$T/p.csv" >"$T/pts.csv"
cat >"$T/load.sql" <<SQL
CREATE TABLE pts (id text, lon float8, lat float8, topic text);
\\copy pts FROM '$T/pts.csv' WITH (FORMAT csv)
ALTER TABLE pts ADD COLUMN geom geometry(Point, 4326);
UPDATE pts SET geom = ST_SetSRID(ST_MakePoint(lon, lat), 4326);
ANALYZE pts;
SQL
load=$(secs psql -qAt -v ON_ERROR_STOP=1 -f "$T/load.sql")
JOIN="SELECT district, topic, count(*) FROM (
        SELECT DISTINCT ON (p.id) p.id, p.topic, d.id AS district
        FROM pts p JOIN districts d ON ST_Intersects(d.geom, p.geom)
        ORDER BY p.id, d.id COLLATE \"C\") s
      GROUP BY district, topic ORDER BY district COLLATE \"C\", topic COLLATE \"C\""
pg=$(for i in $(seq "$RUNS"); do secs psql -qAt -c "$JOIN"; done | median)
psql -qAt -F, -c "$JOIN" >"$T/pg_counts.csv"
python3 - "$T/p.csv" "$T/pg_counts.csv" <<'PY'
import csv, sys, collections
c = collections.Counter()
for r in csv.DictReader(open(sys.argv[1], encoding="utf-8")):
    if r["placement"] in ("inside", "border"):
        c[(r["district_id"], r["topic"])] += 1
pg = {(a, b): int(n) for a, b, n in csv.reader(open(sys.argv[2], encoding="utf-8"))}
assert dict(c) == pg, "counts per district x topic differ from PostGIS"
print("bench: counts per district x topic identical to PostGIS (%d cells)" % len(pg))
PY

# --- the tile server under load (wrk): one tile again and again (the cache), and random
# tiles at z10 and z14 over the districts' extent (nearly every request a miss)
echo "bench: problemap serve under wrk"
serve_up "$T/serve.log" $B --complaints "$T/c.csv"
U=$(grep -o "http://[^ /]*" "$T/serve.log" | head -n 1)
curl -s "$U/api/meta.json" >"$T/meta.json"
read -r W S E NN CLON <<EOF2
$(python3 -c "import json, sys; m = json.load(open(sys.argv[1])); print(*m['bounds'], m['center'][0])" "$T/meta.json")
EOF2
tiles_lua() { # z → a wrk script asking for random tiles of zoom z inside the bounds
    python3 - "$1" "$W" "$S" "$E" "$NN" <<'PY'
import math, sys
z, w, s, e, n = int(sys.argv[1]), *map(float, sys.argv[2:])
e = min(e, 180.0)
t = lambda lon, lat: (int((lon + 180) / 360 * 2**z),
                      int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z))
x0, y1 = t(w, s); x1, y0 = t(e, n)
print("math.randomseed(42)\nrequest = function()\n  return wrk.format('GET', string.format("
      "'/tiles/heat/%d/%%d/%%d.png', math.random(%d, %d), math.random(%d, %d)))\nend" % (z, x0, x1, y0, y1))
PY
}
wrk_run() { # label url [script] → "label|req/s|p50|p99"
    out=$(wrk -t2 -c16 -d10s --latency ${3:+-s "$3"} "$2" 2>&1)
    echo "$1|$(echo "$out" | awk '/Requests\/sec/ {print $2}')|$(echo "$out" | awk '$1 == "50%" {print $2}')|$(echo "$out" | awk '$1 == "99%" {print $2}')"
}
curl -s -o /dev/null "$U/tiles/heat.json"   # builds the layer
tiles_lua 10 >"$T/z10.lua"; tiles_lua 14 >"$T/z14.lua"
MID=$(python3 -c "import math, sys; z = 8; lon, lat = float(sys.argv[1]), (float(sys.argv[2]) + float(sys.argv[3])) / 2
print('%d/%d/%d' % (z, (lon + 180) / 360 * 2**z, (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z))" "$CLON" "$S" "$NN")
wrk_cached=$(wrk_run "one z8 tile, cached" "$U/tiles/heat/$MID.png")
wrk_z10=$(wrk_run "random z10 tiles (mostly uncached)" "$U" "$T/z10.lua")
wrk_z14=$(wrk_run "random z14 tiles (uncached; many empty)" "$U" "$T/z14.lua")
kill "$SPID" 2>/dev/null || true
wait "$SPID" 2>/dev/null || true
SPID=""
wrk_rows=$(printf '%s\n' "$wrk_cached" "$wrk_z10" "$wrk_z14" | awk -F'|' '{print "| " $1 " | " $2 " | " $3 " | " $4 " |"}')

# --- scale: the whole pipeline (CSV → checks → geocode → cube → district GeoJSON + report
# PNG, one `problemap cube` run) at each size, its peak memory, and uncached heat tiles
# (tools/bench_tiles.c: z6, z10, z14; radius 2 km, the tiles where the complaints are)
SCALE=${BENCH_SCALE:-"1000000 10000000 13700000"}
TILE_SIZES=${BENCH_TILE_SIZES:-"1000000 10000000"}
cc -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -O2 $(pkg-config --cflags $PKGS) \
    -o "$T/bench_tiles" "$ROOT/tools/bench_tiles.c" "$LIBA" $(pkg-config --libs $PKGS) -lm -pthread
cc -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -O2 $(pkg-config --cflags $PKGS) \
    -o "$T/bench_cube" "$ROOT/tools/bench_cube.c" "$LIBA" $(pkg-config --libs $PKGS) -lm -pthread
scale_rows="" tile_rows="" check_rows="" check_n=""
SNAP_N=$(for n in $SCALE; do echo "$n"; done | sort -n | tail -1)
for n in $SCALE; do
    if [ "$n" = "$N" ]; then f="$T/c.csv"; else
        f="$T/s.csv"
        echo "bench: generating $n complaints"
        "$BIN" generate $B --n "$n" --seed 42 --dirty-share 0 --no-coords-share 0 --output "$f" 2>/dev/null
    fi
    mb=$(( $(stat -c %s "$f") / 1048576 ))
    echo "bench: the whole pipeline on $n complaints ($mb MiB of CSV)"
    s0=$(date +%s.%N)
    rss_n=$( { /usr/bin/time -f "%M" "$BIN" cube -q $B --complaints "$f" --geojson "$T/d.geojson" \
        --report "$T/r.png" >/dev/null; } 2>&1 | tail -1)
    s1=$(date +%s.%N)
    wall=$(printf '%.2f' "$(echo "$s1 - $s0" | bc -l)")
    scale_rows="$scale_rows| $n | $mb | $wall | $(printf '%.2f' "$(echo "$n / $wall / 1000000" | bc -l)") | $(( rss_n / 1024 )) | $(echo "$rss_n * 1024 / $n" | bc) |
"
    if [ "$n" = "$SNAP_N" ]; then   # the kept snapshot of the largest size, and reading it back
        echo "bench: a cube snapshot of $n complaints, and problemap export from it"
        "$BIN" cube -q $B --complaints "$f" --cube "$T/snap.pmc"
        snap_mb=$(( $(stat -c %s "$T/snap.pmc") / 1048576 ))
        snap_export=$(for i in $(seq "$RUNS"); do secs "$BIN" export -q $B --cube "$T/snap.pmc" --csv "$T/e.csv"; done | median)
        snap_rss=$( { /usr/bin/time -f "%M" "$BIN" export -q $B --cube "$T/snap.pmc" --csv "$T/e.csv"; } 2>&1 | tail -1)
        "$BIN" generate $B --n 1000 --seed 42 --dirty-share 0 --no-coords-share 0 \
            --output "$T/small.csv" 2>/dev/null
        "$BIN" cube -q $B --complaints "$T/small.csv" --cube "$T/small.pmc"
        snap_fixed=$(for i in $(seq "$RUNS"); do secs "$BIN" export -q $B --cube "$T/small.pmc" --csv "$T/e.csv"; done | median)
        "$T/bench_cube" "$BFILE" "$(echo "$BOPT" | sed -n 's/--id-field //p' | grep . || echo -)" \
            "$T/small.csv" "$ROOT/data/topics.json" "$T/snap.pmc" 5 >"$T/open.txt"
        snap_open_q=$(awk '$1 == "open_query_only" {printf "%.1f", 1000 * $2}' "$T/open.txt")
        snap_query=$(awk '$1 == "first_query" {printf "%.1f", 1000 * $2}' "$T/open.txt")
        snap_open_r=$(awk '$1 == "open_read" {printf "%.1f", 1000 * $2}' "$T/open.txt")
        rm -f "$T/snap.pmc" "$T/small.pmc" "$T/small.csv" "$T/e.csv"
        echo "bench: problemap serve's start on $n complaints, from the CSV and from a dataset snapshot"
        read -r serve_start serve_rss <<EOF2
$(serve_start $B --complaints "$f" --rejects "$T/start-rejects.csv")
EOF2
        ds_write=$(secs "$BIN" dataset -q $B --complaints "$f" --rejects "$T/start-rejects.csv" --out "$T/map.pmdata")
        ds_mb=$(( $(stat -c %s "$T/map.pmdata") / 1048576 ))
        read -r ds_start ds_rss <<EOF2
$(serve_start $B --dataset "$T/map.pmdata")
EOF2
        rm -f "$T/map.pmdata"
    fi
    case " $TILE_SIZES " in *" $n "*)
        echo "bench: heat tiles over $n complaints"
        "$T/bench_tiles" "$BFILE" "$(echo "$BOPT" | sed -n 's/--id-field //p' | grep . || echo -)" "$f" \
            "$ROOT/data/topics.json" 2000 200 >"$T/tiles.txt"
        lay=$(awk '$1 == "layer_new" {print $2}' "$T/tiles.txt")
        tile_rows="$tile_rows$(awk -v n="$n" -v lay="$lay" '$1 ~ /^z/ {print "| " n " | " substr($1, 2) " | " $3 " | " $5 " | " $7 " | " $9 " | " $11 " | " $13 " | " $15 " | " lay " |"}' "$T/tiles.txt")
"
        if [ -z "$check_n" ]; then   # the accuracy of the fast paths, on the first size
            echo "bench: heat tiles against the exact sum over $n complaints"
            check_n=$n
            PM_BENCH_CHECK=20 "$T/bench_tiles" "$BFILE" "$(echo "$BOPT" | sed -n 's/--id-field //p' | grep . || echo -)" "$f" \
                "$ROOT/data/topics.json" 2000 200 >"$T/check.txt"
            check_rows=$(awk '$1 ~ /^z/ {print "| " substr($1, 2) " | " $4 " | " $6 " | " sprintf("%.1f", 100 * $8) " | " $10 " |"}' "$T/check.txt")
        fi
        ;;
    esac
    [ "$f" = "$T/c.csv" ] || rm -f "$f"
done

r() { printf '%.1f' "$(echo "$1 / $2" | bc -l)"; }
rate() { printf '%.3f' "$(echo "$N / $1 / 1000000" | bc -l)"; }
cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
cat >"$ROOT/docs/benchmarks.md" <<MD
# Benchmarks

Produced by \`make bench\` (tools/bench.sh; BENCH_N=$N, BENCH_RUNS=$RUNS, medians) on $(date -u +%Y-%m-%d),
$(nproc) cores ($cpu), GEOS $(pkg-config --modversion geos), PROJ $(pkg-config --modversion proj),
PostgreSQL $(psql -qAt -c "show server_version") with PostGIS $(psql -qAt -c "select postgis_lib_version()").

Boundaries: $BNAME. Points: $N generated complaints (seed 42, 80 % around towns).
Both sides give identical counts per district × topic (checked in the same run).

| what | time (s) | M points/s |
|---|---|---|
| problemap geocode, whole run (CSV in → checks → locate → CSV out), all cores | $ours_all | $(rate "$ours_all") |
| same, 1 thread | $ours_1 | $(rate "$ours_1") |
| the geocoder alone, raster fast path (\`pm_locate_batch\`, all cores; $loc_n points, no CSV) | $loc_raster | $(printf '%.1f' "$(echo "$loc_n / $loc_raster / 1000000" | bc -l)") |
| the geocoder alone, exact path only (STRtree + prepared GEOS; the same answers) | $loc_exact | $(printf '%.1f' "$(echo "$loc_n / $loc_exact / 1000000" | bc -l)") |
| building the locator (STRtree, prepared geometries, the raster) | $loc_new | |
| PostGIS: COPY + point geometry + ANALYZE | $load | |
| PostGIS: join \`ST_Intersects\` + \`DISTINCT ON\` border rule + count per district × topic | $pg | $(rate "$pg") |

Ratios, PostGIS's join alone against: our whole run **$(r "$pg" "$ours_all")×** (we include reading,
checking and writing; PostGIS's figure excludes loading); the geocoder alone, the same job as the
join, **$(r "$pg" "$loc_raster")×** (raster) and $(r "$pg" "$loc_exact")× (exact path only). Peak RSS of our run: $rss KiB
($(echo "scale=0; $rss * 1024 / $N" | bc) bytes per complaint, input file not counted in it).

## The tile server under load

\`wrk -t2 -c16 -d10s --latency\` against \`problemap serve\` on the same $N complaints (heat layer,
256 px; the server and wrk share the machine's $(nproc) cores):

| requests | req/s | p50 | p99 |
|---|---|---|---|
$wrk_rows

## Scale: the whole pipeline and the tiles

One \`problemap cube\` run per size: CSV in → every check of the spine → geocode → cube →
district GeoJSON + the report PNG (with its heat layer), all cores. Peak RSS is the process's
(the CSV is read in blocks, not held).

| complaints | CSV (MiB) | wall (s) | M/s | peak RSS (MiB) | bytes per complaint |
|---|---|---|---|---|---|
$scale_rows
The same $SNAP_N complaints kept in a cube snapshot (\`problemap cube --cube\`, $snap_mb MiB), and
\`problemap export --csv\` from it: **$snap_export s** (peak RSS $(( snap_rss / 1024 )) MiB), of which
$snap_fixed s is what the same export of a 1000-complaint snapshot takes (reading the boundaries and
the topics, the districts' areas). Opening the snapshot alone (tools/bench_cube.c, median of 5,
the file in the page cache): **$snap_open_q ms** for queries (\`pm_cube_read_query_only\`, as
\`problemap export\`; the first query after it, all districts, $snap_query ms), $snap_open_r ms to add
to it (\`pm_cube_read\`, which also reads and keeps the id hashes).

\`problemap serve\` on the same $SNAP_N complaints, from its start to serving (its own "loaded
generation 1 in" line), and the peak RSS of the load:
- from the CSV: **$serve_start s**, $serve_rss MiB (the pipeline's placing and cube, then the heat
  map's points for both tile grids, EPSG:3395's on a second thread, the choropleths and the
  district neighbours);
- from a dataset snapshot (\`serve --dataset\`, docs/dataset.md; written once by \`problemap
  dataset\` in $ds_write s, $ds_mb MiB): **$ds_start s**, $ds_rss MiB, nearly all of it the file's
  pages (shared with the page cache): the mapping, its checksums and the checks of every value
  (the cube is kept in it, for the default --period).

Uncached 256-px heat tiles (density + colour + PNG) drawn by the library directly
(tools/bench_tiles.c; quartic kernel, radius 2 km on the ground; up to 200 distinct tiles per zoom
under randomly chosen complaints, so where the data are, drawn over again up to 200 draws
when a zoom has fewer; the first tile of a zoom, which
builds the count-pyramid level the zoom needs, is timed apart):

| complaints | zoom | tiles | p50 (ms) | p99 (ms) | max (ms) | tiles/s | mean PNG bytes | first tile (ms) | layer build (s) |
|---|---|---|---|---|---|---|---|---|---|
$tile_rows
The same tiles' densities against the exact sum over every point (\`PM_BENCH_CHECK=20\`, the first
20 tiles of each zoom over $check_n complaints; pixels above 1/1000 of the layer's scale):

| zoom | tiles | pixels | max error (%) | max colour entries (of 256) |
|---|---|---|---|---|
$check_rows

## Notes

The locator answers most points from a raster over the districts (cells wholly inside one
district, in none, or on a border; docs/geocoding.md), falling back to the exact GEOS test only
in border cells, with the same answers as the exact path (the driver checks every point; the
tests check against brute force). On this shared 2-vCPU machine timings move with the load of
the other core.

Heat tiles: a tile whose exact sum would cost more than 2·10⁶ point × pixel updates is drawn
from the layer's count pyramid (render/heat.c): Morton-cell groups at their weighted centroids,
on the pixels or on a lattice interpolated bilinearly, in one of two ways. *Splatting* adds each
group's disc row by row (masked vector loops: four doubles at a time, an AVX2 clone beside the
SSE2 default, chosen at load); its cost is capped at 16·10⁶ units by taking coarser levels, so
no tile's cost grows with N. *Deposit and convolve*, for dense tiles where the kernel spans at
least 5 nodes of the grid (the z8–z12 tiles over a city): the groups of cells ≤ min(node, R/8)
are spread over 4 × 4 nodes with cubic Lagrange weights, and every node sums the kernel's taps
over the nodes within R as long vector rows — a cost of groups + nodes × taps, bounded whatever
N. A cost model picks the cheaper. On dense data this took the p99 on 10 M points from 12–28 ms
(z6–z10, scalar splatting) to the figures above, at the accuracy in the second table (the
colour scale has 256 entries over 3 decades, one entry is 2.7 %). The colour of a pixel is a
binary search over 256 thresholds, not a log. The first tile of a zoom pays for its pyramid
level (one pass over the points), once per layer. A tile allocates and frees a few hundred KiB of
buffers; glibc's malloc, whose thresholds adapt to what was freed before, ended up giving the
heap back and faulting it in again around every tile after some histories of reading (z6/z8
p50 1.4/2.1 → 3.6/4.5 ms on 10 M, ~2000 brk calls for 1000 tiles). \`problemap\` and
bench_tiles therefore keep freed blocks under 2 MiB for reuse (pm_alloc_keep_freed: fixed
mmap and trim thresholds, at most 64 MiB of free heap kept).

The z8 tiles over the cities were the slowest (p99 4.5–5.4 ms on 10 M). The worst of them
deposited ~160 000 groups (cells of R/8 are half a pixel there) in 2.6 ms and summed the taps
in 0.8 ms. Four changes took it to 2.8 ms (best of 15 draws: deposit 1.75 ms, sums 0.5 ms):
- the loops over a box's entries run on a finer Morton cover, cells of at least 1/16 of the
  box's side found by descending a quadtree (at most 17 × 17; a third as many entries beyond
  the box as the cover of 1/4, test_heat), while the cost model keeps counting on the coarse
  cover its budgets were set with;
- the deposit keeps its state in locals (the compiler reloaded the grid's pointers after every
  store through them) and finds each row's non-zero span once, after the deposit, instead of
  tracking it per group;
- the node sums add a row's taps in registers, sixteen outputs at a time, where they made one
  pass over the row per tap (z10's sums 0.75 → 0.5 ms too);
- splatting works on a copy of the tile, whose doubles the compiler read again after every
  store to the accumulator.

Every tile came out byte-identical (\`problemap tiles\` z5–z11 of a 300 000-complaint file), and
the report too. In alternating runs of bench_tiles on 10 M the z8 p99 was 3.6–3.7 ms against
4.5–6.9 ms before; in this run's table it is 4.3 ms (its max, 5.6 ms, is one draw). The
heaviest tiles are now the z6 tiles at the splat's budget: the one holding the whole region
takes 5.0 ms to draw at 2 M complaints (its finest level fits the budget) and 2.9 ms at 10 M
(a coarser one fits). A budget of 8·10⁶ took its p99 at 2 M from 6.1 to 3.7 ms but its error
from 2.8 % to 11 % (4.4 colour entries), so the budget stays.

What this run shows against the targets of issue 7, from profiles (\`perf record\` of
\`problemap cube\` on 13.7 M complaints, per thread):
- **Reading runs on two threads**: the reader with every per-record check on one, the adding
  of checked records in input order (duplicate ids, dictionaries, rejects) on the caller's,
  the same result as one thread byte for byte. Room for the columns and the id table is made
  once, from the file's size and the lines in its first MiB (growing them by doubling copied
  and page-faulted them over and over: a quarter of the adding thread, ~4 s of 17 on 10 M).
  The reader is the busier thread. Its CSV fields are split in place in the read buffer
  (no copy; plain bytes scanned sixteen at a time), ~11 s → ~10 s on 10 M; UTF-8 was
  checked eight ASCII bytes at a time (now sixteen bytes of one- and two-byte text, below).
  What it spent then was spread over the checks (numbers, dates, UTF-8, the column lookup)
  and the fresh pages the columns fill (the kernel's page clearing is ~15 % of all
  samples). Id-table slots are fetched ahead, carry a hash tag (no
  string comparison on a miss), and blocks of 4 MiB and more ask for transparent huge pages.
- **The cube** adopts its first batch instead of copying it and fetches its hash slots ahead:
  ~7.4 s → ~2.3 s on 13.7 M (byte-identical snapshots).
- **Placing and aggregating overlap the reading.** The adding thread had ~2 s of 10 idle
  while the reader parsed, and placing (0.6 s), the cube (2.3 s, one thread) and the outputs
  came one after another after it. Now every 262 144 accepted complaints (\`--block-size\`)
  the adding thread places the block, runs the post checks on it and collects it into a
  \`pm_cube_adder\` (duplicates, cells, counts), while the reader goes on (its queue holds
  64 batches of 4096 records, enough for a block's work); after the read the adder fills the
  cells' lists and the cube adopts them at once. Side by side with the build before
  (alternating runs): 10 M 9.6–9.7 s against 11.3–13.4 s, 13.7 M 12.1–12.5 s against
  12.5–16.4 s (median 12.2 against 14.2), outputs byte-identical; single runs like the
  table's move by seconds with the other core's load. Merging each block into the cube
  instead doubled the cube's work (lookups in the big id set, lists moved) and was slower
  than before. The adding thread is now the busier one (~2/3 of the samples: the kernel
  clearing fresh pages for the columns, the id table and the cube ~13 %, collecting ~16 %),
  the reader ~1/3. The report, the GeoJSON and the adder's last step still run after the
  read, ~2.5 s on 13.7 M; the report projects its heat points with PROJ on every core.
- **Less for the adding thread.** It hashed and compared every complaint's source, status,
  executor and district code to find their dictionary indexes (a sixth of its samples). The
  reader now keeps the values it has seen (up to 65 535 per column) and sends a value's
  string only the first time, then its index in that list, which the adding thread maps
  with one array lookup (\`pm_complaints_add_indexed\`; a value first seen on a duplicate is
  still not added, as on one thread). Side by side, 13.7 M in alternating runs: 10.2–11.1 s
  (median 11.0) against 11.3–13.2 s (median 11.65), 17 MiB less (the queue carries no
  repeated strings). Then the kernel's clearing of fresh pages for the columns, ~14 % of
  all samples and a quarter of the adding thread, went to a helper thread that faults the
  columns in (\`MADV_POPULATE_WRITE\`) 262 144 complaints ahead of the adding thread: the
  adding thread's share of the samples fell from 55 % to 45 %, and the reader (47 %) is the
  busier thread again, so the wall time moves little when the machine is quiet (10.5 against
  10.8 s, 10.8 against 10.9 s) and gains ~1 s when it is loaded (median of 6 pairs 11.8
  against 12.7 s); 12 MiB more (the pages faulted ahead).
- **A lighter reader, a shorter tail.** The reader, the busier thread again, spent 17 % of
  its samples checking UTF-8: the Cyrillic of executors and districts went byte by byte.
  It now checks sixteen bytes at a time (SSE2, geodata/utf8.c) as long as they hold only
  one- and two-byte characters, where a continuation byte must follow a lead C2..DF
  (7.6 % → 2.7 % of all samples; tests hold it to a decoder written from RFC 3629 on every
  short sequence and on mixed strings at every offset). The value tables (the reader's
  values seen, the topics, the dictionaries) hash eight bytes at a time with SplitMix64's
  finalizer instead of FNV-1a's byte-wise multiply chain (13.7 M lookups of an executor's
  name: 0.20 against 0.46 s); the id table keeps FNV-1a on purpose: its weak mixing of the
  last bytes keeps sequential ids ("c0000001", "c0000002", ...) in nearby slots, and finding
  13.7 M such ids took 2.9 s against 4–5 s with the well-mixed hash (which is why trying it
  for every table before made the pipeline no faster). A topic value is answered from the
  values seen before (~2 % of the reader). Together the reader's samples fell by ~12 %,
  and it and the adding thread are now about as busy. After the read, the district query
  sorted every key's answer delays for the exact medians (~0.4 s on one core): the median
  and the 90th percentile are now found by selection (\`pm_select_u32\`, MSD radix over the
  bits where the delays differ; 0.064 s against 0.12 s for the sort alone on 13.7 M), which
  also leaves most of its scratch untouched (peak RSS −45 MiB: a query over all complaints
  at once needs a scratch of them all). Side by side with the build before (alternating
  runs, 13.7 M): 9.8–10.2 s against 10.8–11.2 s in 3 of 4 pairs on a quieter machine, and
  12.8–14.9 s against 14.1–16.2 s (median 13.8 against 15.5) in 6 pairs on a loaded one;
  every output byte-identical (snapshot, tables, summary, rejects, report) on a dirty file;
  \`problemap export\` of a 13.7 M snapshot with its summary 1.2 against 1.5 s.
- So the whole pipeline on 13.7 M went from 53.8 s (29.6 s on a quiet machine) to the time in
  the table above (21–25 s before the reading changes above, 13–17 s after them, then the
  blocks, the lighter adding thread, the lighter reader, the narrower columns below),
  against the < 10 s asked: 8.3–10.3 s when the machine is quiet (the side-by-side runs of
  the cube without ids, below), 12–15 s when it is loaded; single runs of one build, like the
  table's, move that much within the hour. The two threads are now about as busy, with
  ~1.7 of the 2 cores used during the read; what is left is flat (the reader: splitting
  fields ~20 % of it, the checks, the dictionary lookups; the adding thread: collecting
  into cells ~35 %, the id table ~20 %, fresh pages), and the tail after the read is ~2 s
  (the adder's last step, the query, the report's heat points through PROJ on both cores,
  the drawing). Splitting the read over more threads gains nothing on two cores; on more
  it would, with the batches added in order.
- **Memory per complaint** is in the table above against the 64 asked: 63–64 bytes at
  13.7 M in the side-by-side runs below (69 at 10 M: the id table's slots come in powers
  of two, 2^25 at both sizes, and the fixed costs weigh more), 86–88 before the narrower
  coordinates, the id offsets and the cube without ids, 118 before the narrower columns,
  149 before that.
  With \`--cube\` (a snapshot kept, so the cube keeps its ids and writes them) the same run
  peaks at ~1040 MiB, 78 bytes. The massif profile of a 2 M run (valgrind) showed what
  each complaint held: coordinates 16, times 16, the line 8, four dictionary indexes 16,
  topic 2, its placement 9 (district, kind, snap distance), its id ~27 (the string, its
  pointer, its slot in a table at most half full) and the cube's set of id hashes ~10.
  Each column is now as narrow as its values allow, and falls back to the wide form on the
  first value it cannot hold, every value kept exact: coordinates are int32
  ten-millionths of a degree (OpenStreetMap's fixed point) as long as each one decodes,
  k / 10⁷ being correctly rounded, to the very double its text gave (up to seven decimals;
  -0, an eighth decimal or a NAN of another sign turns both columns into doubles),
  creation times are int32 seconds from the first complaint's (68 years either way),
  answer times the wait after creation in a uint32 (an answer before its creation, or 136
  years after, turns them whole), each dictionary index column a byte while its
  dictionary has fewer than 255 values and two below 65 535 (sources, statuses and
  district codes take one, executors two), lines are runs of consecutive lines (a file
  read whole is one run; each rejected or multi-line record starts another, and lines in
  no order turn back into a column once the runs would weigh more), and snap distances
  are kept for the snapped complaints only. An id's string is found by a 4-byte offset
  from the first of its group of 128 (8 bytes a group) where an 8-byte pointer was: the
  string tables' blocks are numbered as one space, and a string of 16 MiB or more, which
  could push a group's offsets past 32 bits, is refused (the intake rejects such a record,
  \`longer than 16 MiB\`). And a cube that is not kept keeps no ids: without \`--cube\`
  (and in the server) the cube takes one batch, whose duplicate ids the intake has refused
  exactly, and is never written, so the set of id hashes (~10 bytes, and hashing every
  id) served nothing; such a cube refuses a second batch and being written. Side by side
  with the build before each step on 13.7 M (alternating runs): peak RSS 1589 → 1147 MiB
  with the narrower times, dictionaries, lines and snaps, 1148 → 1040 MiB with the
  coordinates, 1147 → 983–993 MiB with the id offsets, 986–992 → 846–857 MiB without the
  cube's ids; the wall time no worse at each step (the last: 8.3–10.3 s against 10.1–12.6
  s; ~1 s less system time, fewer fresh pages, and a little more user time, reading a
  narrow column costs some arithmetic); every output byte-identical on a dirty file
  (snapshot, tables, summary, rejects, report, and the geocoded CSV with its 727 snap
  distances, also with an eighth decimal in one record, which takes the double path;
  without \`--cube\` the tables, summary, rejects and report against the build that kept
  the ids). At the peak (massif, 2 M, the report being drawn) each complaint now holds:
  coordinates 8, times 8, topic 2, dictionary indexes 4, its placement 5, its id ~23
  (offset 4, slot ~10, string ~9), the cells and their lists ~8. What is left is flat;
  the next steps would be the columns kept past their block, which only the report's heat
  layer and the adder's last step read after it (binning the heat per block and filling
  the cells' lists per block would drop the coordinates and most of the times, ~12 bytes),
  and a table of ids fuller than half (~5 bytes at 13.7 M, if its probes stay short).
- **The server's start.** It builds its dataset from the complaints, so it starts in about
  the pipeline's time and then some: on 13.4 M complaints it took 19–21 s, of which 6.1–6.8
  and 4.4–4.9 s were the heat map's points for the two tile grids, built one after the
  other, and 1.5–1.8 s the cube, added after the placing. Now the points are projected in
  closed form (PROJ's pass took ~1.5 s a grid; test_heat holds the closed forms to PROJ
  within 1e-6 m), sorted 12 bits a pass (4 passes instead of 6), the two grids are built at
  once on two threads, and the cube is fed block by block while the complaints are read,
  as in \`problemap cube\`. The same file, builds alternating: 21.3 / 19.8 s → 15.6 / 15.3 s
  for the first three steps; with the cube fed, 13.6–14.3 s on a quiet host. Most of what
  is left of a grid's ~5.5 s is first-touch page faults on its records, their sort buffer
  and its columns (~1.9 GB, at ~0.3–0.5 GB/s on this VM); sorting (code, index) keys and
  gathering the columns afterwards touches half of that but was 1.6× slower (random reads).
  The load's peak RSS: 3.0 GiB before (one grid after the other), 4.2 GiB with both at
  once, 3.2 GiB once each grid's sort buffer is freed before its columns are made; 1.8 GiB
  stay. Alternating with the build before this work, on a noisier host: 22.1 / 20.8 s →
  15.4 / 15.7 s. Then the dataset snapshot (docs/dataset.md): \`problemap dataset\` writes the
  placed columns, both grids' points and the cube to one file of XXH3-checked sections
  (engine/snap.c), which \`serve --dataset\` maps read-only and checks value by value: on
  13.4 M complaints the server was loaded after 1.3–1.9 s, its load's peak RSS 1.6 GiB,
  nearly all of it the file's pages. Of that start, most is the checks (the 26 M points'
  positions, codes and order, ~20 % of a \`tiles --dataset\` run in perf; the complaints'
  values ~10 %) and the checksums (~9 %). Before the cube was kept in the file, making it
  again from the columns took 2.5 of a 4.4 s start; a run with another --period still does.
- **The cube snapshot** is mapped (\`mmap\`, read-only) and checked before a byte of it is
  used: the price of refusing a damaged or crafted file without a crash (docs/cube.md).
  Format version 2 cut it into five sections (strings, cells, answer times, open times,
  id hashes), each with its own checksum (XXH3-64, several times zlib's CRC-32 per byte), on
  8-byte boundaries. \`problemap export\` reads it with \`pm_cube_read_query_only\`, which
  now reads only the sections a query needs: not the id hashes, two thirds of the file
  (110 of 165 MiB at 13.7 M); and it keeps the answer and open times where they lie in the
  mapping once checked, instead of copying them out (~53 MiB), and builds no key map of
  the cells (only adding looks a cell up by its key). On the 13.7 M snapshot, the same build
  reading the same cube as version 1 and as version 2, alternating: \`problemap export
  --csv\` 0.46–0.72 s → 0.28–0.30 s, peak RSS 261 → 151 MB, the same CSV; the open alone
  (the harness above) 0.24–0.29 s → 0.078 s. What is left of those 78 ms: the first touch of
  the answer times' 51 MiB with their hash (~29 ms; a fresh mapping's pages fault in on this
  VM at ~2 GB/s, while the hash itself runs at ~15 GB/s), checking their order (~10 ms), the
  districts' geodesic areas that every cube computes from the boundaries (~25 ms), the
  cells (~6 ms) and the open times (~4 ms). A cube read to be added to
  (\`problemap cube --cube\`) reads every section and fills its id set, in one pass over the
  sorted hashes without probing (each goes after the one before, or at its home). Version 1
  files are still read (one CRC-32 over the file, everything copied); writing one again
  makes it version 2. The dataset snapshot keeps a whole cube file as one of its sections
  (\`pm_cube_read_query_only_region\`, the lists left where they lie in the mapping).
MD
cat "$ROOT/docs/benchmarks.md"
