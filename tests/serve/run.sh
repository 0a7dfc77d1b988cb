#!/bin/sh
# `problemap serve` end to end: starts the server on a free port over the
# sample boundaries (data/ru_regions.geojson) with 20 000 synthetic
# complaints whose text and author columns hold a canary, and talks to it
# with curl as the viewer, a browser and an attacker would.
#   tests/serve/run.sh BUILD/problemap
# Needs curl, python3 (independent checks of PNG, JSON and GeoJSON), and cc
# with cmocka for the caches' own test (tests/serve/test_lru.c).
BIN=$(realpath "$1")
ROOT=$(pwd)
T=$(mktemp -d /tmp/pm_serve.XXXXXX)
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT INT TERM
export PROBLEMAP_DATA="$ROOT/data"
N=${PM_SERVE_N:-20000}
CANARY="CANARY-7f3a9c"
pass=0; fail=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "$2" ] && [ -f "$2" ] && sed 's/^/     /' "$2" | head -30; }
check() { if [ "$1" = "$2" ]; then ok "$3"; else echo "got '$1', want '$2'" >"$T/why"; bad "$3" "$T/why"; fi; }
mkdir -p "$T/r"
started=$(date +%s)

# --- the caches, alone (C, cmocka, ASan+UBSan)
if cc -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Wshadow -Wvla -Werror -g -O1 \
        -pthread -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all \
        $(pkg-config --cflags geos proj jansson) -o "$T/test_lru" "$ROOT/tests/serve/test_lru.c" \
        "$ROOT/apps/serve_cache.c" "$ROOT/engine/alloc.c" -lcmocka >"$T/why" 2>&1; then
    "$T/test_lru" >"$T/why" 2>&1 && ok "LRU caches and ETags (tests/serve/test_lru.c)" || bad "LRU caches" "$T/why"
else
    bad "building tests/serve/test_lru.c" "$T/why"
fi

# --- the data: synthetic complaints; every text and author is the canary
cp "$ROOT/data/ru_regions.geojson" "$T/b.geojson"
"$BIN" generate --boundaries "$T/b.geojson" --id-field iso --name-field name_ru \
    --parent-field federal_district --n "$N" --seed 11 --start 2025-09-01 --days 91 \
    --utc-offset +03:00 --output "$T/gen.csv" 2>/dev/null
python3 - "$T/gen.csv" "$T/c.csv" "$CANARY" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline='', encoding='utf-8')))
head = rows[0]; text = head.index('text'); head.append('author')
for r in rows[1:]:
    if len(r) > text:
        r[text] = sys.argv[3] + ' жалоба: течёт крыша, кв. 5'
    r.append(sys.argv[3] + ' Иванова Мария Петровна')
csv.writer(open(sys.argv[2], 'w', newline='', encoding='utf-8'), lineterminator='\n').writerows(rows)
PY

# start EXTRA_ARGS...: the server on a free port; sets PID, PORT, U.  The complaints
# come from $DATA (default: the CSV, placed at start).
DATA_CSV="--complaints $T/c.csv --utc-offset +03:00 --rejects $T/rejects.csv"
DATA=$DATA_CSV
start() {
    : >"$T/stderr"
    "$BIN" serve --boundaries "$T/b.geojson" --id-field iso --name-field name_ru \
        --parent-field federal_district $DATA --listen 127.0.0.1:0 --access-log "$T/access.log" \
        --threads 2 "$@" 2>"$T/stderr" &
    PID=$!
    PORT=""
    for i in $(seq 1 300); do
        PORT=$(sed -n 's#.*listening on http://127.0.0.1:\([0-9]*\)/.*#\1#p' "$T/stderr")
        [ -n "$PORT" ] && break
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    U="http://127.0.0.1:$PORT"
}
# get NAME PATH [curl args]: the body into $T/r/NAME, prints the status.
get() {
    name=$1 path=$2; shift 2
    curl -s -o "$T/r/$name" -w '%{http_code}' "$@" "$U$path"
}
generation() { curl -s "$U/health" | sed -n 's/.*"generation":\([0-9]*\).*/\1/p'; }
# repeat N TEXT: TEXT N times (joined by nothing)
repeat() { i=0; while [ $i -lt "$1" ]; do printf '%s' "$2"; i=$((i + 1)); done; }

start
[ -n "$PORT" ] && ok "serve starts and prints its port ($PORT)" || { bad "serve starts" "$T/stderr"; exit 1; }

# --- health and metadata
get health.json /health >"$T/code"
python3 - "$T/r/health.json" "$N" >"$T/why" 2>&1 <<'PY' && ok "/health: status, generation 1, counts, loaded_at" || bad "/health" "$T/why"
import json, sys, re
h = json.load(open(sys.argv[1]))
assert h['status'] == 'ok' and h['generation'] == 1, h
assert 0.8 * int(sys.argv[2]) < h['complaints'] <= int(sys.argv[2]), h
assert h['districts'] == 86, h
assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ', h['loaded_at']), h
PY
curl -s -D "$T/h" -o /dev/null "$U/health"
grep -qi '^cache-control: no-store' "$T/h" && grep -qi '^content-type: application/json' "$T/h" &&
    ok "/health: no-store, application/json" || bad "/health headers" "$T/h"
get meta.json /api/meta.json >/dev/null
python3 - "$T/r/meta.json" >"$T/why" 2>&1 <<'PY' && ok "/api/meta.json: title, bounds, centre, topics with counts, sources, days, figures, layers" || bad "meta" "$T/why"
import json, sys
m = json.load(open(sys.argv[1]))
assert m['layers'] == ['heat', 'choropleth', 'grid', 'hotspots'] and m['generation'] == 1
w, s, e, n = m['bounds']; assert w < e and s < n and 41 < s < 45 and 80 < n < 83, m['bounds']
assert len(m['center']) == 2
codes = {t['code']: t for t in m['topics']}
assert 'housing' in codes and codes['housing']['count'] > 0 and codes['housing']['color'].startswith('#')
assert all(set(t) == {'code', 'name_ru', 'color', 'count'} for t in m['topics'])
assert sum(t['count'] for t in m['topics']) == sum(x['count'] for x in m['sources']) > 0
assert m['days'] == {'first': '2025-09-01', 'last': '2025-11-30'}, m['days']
assert any(f['name'] == 'complaints' and f['title_ru'] for f in m['figures'])
PY

# --- tiles
get tj.json "/tiles/heat.json?topic=roads&topic=housing&topic=roads&from=2025-10-01" >/dev/null
python3 - "$T/r/tj.json" >"$T/why" 2>&1 <<'PY' && ok "TileJSON 3.0.0: normalised tile URL, zooms, bounds, legend" || bad "TileJSON" "$T/why"
import json, sys
j = json.load(open(sys.argv[1]))
assert j['tilejson'] == '3.0.0' and j['minzoom'] == 0 and j['maxzoom'] == 18
assert j['tiles'] == ['/tiles/heat/{z}/{x}/{y}.png?topic=housing&topic=roads&from=2025-10-01&g=1'], j['tiles']
assert len(j['bounds']) == 4 and len(j['center']) == 3
assert j['problemap_legend']['kind'] == 'heat' and len(j['problemap_legend']['stops']) > 2
PY
# tile addresses around Moscow
set -- $(python3 -c '
import math
lon, lat = 37.62, 55.75
for z in (6, 7):
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.log(math.tan(math.radians(lat)) + 1 / math.cos(math.radians(lat))) / math.pi) / 2 * n)
    print(z, x, y)')
Z6="$1/$2/$3" Z7="$4/$5/$6"
cat >"$T/png.py" <<'PY'
# png.py FILE WIDTH [nonempty]: a valid PNG of WIDTH x WIDTH (RGBA), and
# with "nonempty" some pixel is not blank (filtered rows of a blank image
# are all zero, whatever the filter).
import struct, sys, zlib
d = open(sys.argv[1], 'rb').read()
assert d[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
pos, idat, ihdr = 8, b'', None
while pos < len(d):
    n, kind = struct.unpack('>I4s', d[pos:pos + 8]); body = d[pos + 8:pos + 8 + n]
    assert zlib.crc32(kind + body) & 0xffffffff == struct.unpack('>I', d[pos + 8 + n:pos + 12 + n])[0], 'bad CRC'
    if kind == b'IHDR': ihdr = struct.unpack('>IIBBBBB', body)
    if kind == b'IDAT': idat += body
    pos += 12 + n
w, h = ihdr[0], ihdr[1]
assert (w, h) == (int(sys.argv[2]), int(sys.argv[2])), (w, h)
raw = zlib.decompress(idat); stride = 1 + w * 4
assert len(raw) == h * stride, 'truncated'
if len(sys.argv) > 3:
    assert any(raw[r * stride + 1:(r + 1) * stride].strip(b'\0') for r in range(h)), 'blank tile'
PY
code=$(get heat.png "/tiles/heat/$Z6.png")
[ "$code" = 200 ] && python3 "$T/png.py" "$T/r/heat.png" 256 nonempty >"$T/why" 2>&1 &&
    ok "heat tile $Z6 over Moscow: a 256 px PNG with colour" || bad "heat tile $Z6 ($code)" "$T/why"
code=$(get heat2x.png "/tiles/heat/$Z6@2x.png")
[ "$code" = 200 ] && python3 "$T/png.py" "$T/r/heat2x.png" 512 nonempty >"$T/why" 2>&1 &&
    ok "@2x heat tile: 512 px" || bad "@2x tile ($code)" "$T/why"
code=$(get choro.png "/tiles/choropleth/$Z6.png?figure=complaints_per_km2")
[ "$code" = 200 ] && python3 "$T/png.py" "$T/r/choro.png" 256 nonempty >"$T/why" 2>&1 &&
    ok "choropleth tile (complaints_per_km2)" || bad "choropleth tile ($code)" "$T/why"
code=$(get grid.png "/tiles/grid/$Z7.png?weight=open")
[ "$code" = 200 ] && python3 "$T/png.py" "$T/r/grid.png" 256 nonempty >"$T/why" 2>&1 &&
    ok "grid tile (weight=open)" || bad "grid tile ($code)" "$T/why"
code=$(get grid3395.png "/tiles/grid/$Z7.png?grid=3395")
[ "$code" = 200 ] && python3 "$T/png.py" "$T/r/grid3395.png" 256 >"$T/why" 2>&1 &&
    ok "grid tile on EPSG:3395" || bad "grid 3395 ($code)" "$T/why"
# EPSG:3395's points are built on a helper thread at load (--threads 2): its heat tile is
# the one 'problemap tiles' draws, byte for byte
code=$(get heat3395.png "/tiles/heat/$Z6.png?grid=3395")
"$BIN" tiles -q --boundaries "$T/b.geojson" --id-field iso --name-field name_ru \
    --parent-field federal_district --complaints "$T/c.csv" --utc-offset +03:00 \
    --rejects "$T/tiles-rejects.csv" --grid 3395 --min-zoom 6 --max-zoom 6 --out "$T/t3395" \
    2>"$T/why" && [ "$code" = 200 ] &&
    python3 "$T/png.py" "$T/r/heat3395.png" 256 nonempty >>"$T/why" 2>&1 &&
    cmp "$T/r/heat3395.png" "$T/t3395/$Z6.png" >>"$T/why" 2>&1 &&
    ok "heat tile on EPSG:3395: the same bytes as 'problemap tiles --grid 3395'" ||
    bad "heat 3395 ($code)" "$T/why"
# hot spots: the Gi* bins of a figure, seven classes cold to hot; islands (Kaliningrad,
# Sakhalin) are "нет данных"; fdr=1 is kept in the tile URL, fdr=0 (the default) dropped
get hot.json "/tiles/hotspots.json?fdr=1&topic=roads&figure=complaints" >/dev/null
get hot0.json "/tiles/hotspots.json?fdr=0" >/dev/null
python3 - "$T/r/hot.json" "$T/r/hot0.json" >"$T/why" 2>&1 <<'PY' && ok "hot-spot TileJSON: 7 Gi* classes cold to hot, no data for islands, fdr in the tile URL" || bad "hot-spot TileJSON" "$T/why"
import json, sys
j, j0 = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert j['tiles'] == ['/tiles/hotspots/{z}/{x}/{y}.png?topic=roads&fdr=1&g=1'], j['tiles']
assert j0['tiles'] == ['/tiles/hotspots/{z}/{x}/{y}.png?g=1'], j0['tiles']
leg = j['problemap_legend']
assert leg['kind'] == 'hotspots' and leg['fdr'] is True and leg['figure'] == 'complaints', leg
assert [c['bin'] for c in leg['classes']] == [-3, -2, -1, 0, 1, 2, 3], leg['classes']
assert [c['color'] for c in leg['classes']] == ['#2166ac', '#67a9cf', '#d1e5f0', '#f7f7f7', '#fddbc7', '#ef8a62', '#b2182b']
assert leg['classes'][0]['label'] == 'холодная точка, 99 %' and leg['classes'][3]['label'] == 'не значимо'
assert leg['classes'][6]['label'] == 'горячая точка, 99 %'
assert sum(c['count'] for c in leg['classes']) == 86 - 3, leg['classes']   # 3 islands
assert leg['nodata']['label'] == 'нет данных' and 'Gi*' in leg['title']
assert j0['problemap_legend']['fdr'] is False
PY
code=$(get hot.png "/tiles/hotspots/$Z6.png?fdr=1")
[ "$code" = 200 ] && python3 "$T/png.py" "$T/r/hot.png" 256 nonempty >"$T/why" 2>&1 &&
    ok "hot-spot tile (fdr=1): a 256 px PNG with colour" || bad "hot-spot tile ($code)" "$T/why"
code=$(get empty.png "/tiles/heat/6/0/0.png")
[ "$code" = 200 ] && python3 "$T/png.py" "$T/r/empty.png" 1 >"$T/why" 2>&1 &&
    ok "an empty tile is 200 with a tiny transparent PNG" || bad "empty tile ($code)" "$T/why"

# --- caching: ETag and 304, Cache-Control
curl -s -D "$T/h1" -o /dev/null "$U/tiles/heat/$Z6.png"
etag=$(sed -n 's/^[Ee][Tt][Aa][Gg]: *\([^\r]*\).*/\1/p' "$T/h1")
code=$(curl -s -o "$T/r/304" -w '%{http_code}' -H "If-None-Match: $etag" "$U/tiles/heat/$Z6.png")
[ -n "$etag" ] && [ "$code" = 304 ] && [ ! -s "$T/r/304" ] && grep -qi '^cache-control: public, max-age=300' "$T/h1" &&
    grep -qi '^content-type: image/png' "$T/h1" && ok "tiles: strong ETag, If-None-Match gives 304, public max-age=300" ||
    bad "ETag/304 (etag $etag, code $code)" "$T/h1"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'If-None-Match: "nope", W/"other"' "$U/tiles/heat/$Z6.png")
check "$code" 200 "another ETag gives the tile (200)"
code=$(curl -s -o /dev/null -w '%{http_code}' -I "$U/tiles/heat/$Z6.png")
check "$code" 200 "HEAD of a tile"

# --- tables and reports
code=$(get districts.geojson "/api/districts.geojson?topic=roads&from=2025-10-01&to=2025-11-30")
python3 - "$T/r/districts.geojson" >"$T/why" 2>&1 <<'PY' && [ "$code" = 200 ] && ok "districts GeoJSON: 86 features with figures, simplified" || bad "districts GeoJSON ($code)" "$T/why"
import json, sys
g = json.load(open(sys.argv[1]))
assert g['type'] == 'FeatureCollection' and len(g['features']) == 86
f = g['features'][0]['properties']
for k in ('id', 'name', 'complaints', 'complaints_per_km2', 'answered_within_24h_share', 'rating_index', 'area_km2'):
    assert k in f, k
assert sum(x['properties']['complaints'] or 0 for x in g['features']) > 0
PY
curl -s -D "$T/h" -o /dev/null "$U/api/districts.geojson?topic=roads&from=2025-10-01&to=2025-11-30"
grep -qi '^content-type: application/geo+json' "$T/h" && ok "districts GeoJSON: application/geo+json" || bad "geojson type" "$T/h"
code=$(get summary.json "/api/summary.json?source=vk")
python3 - "$T/r/summary.json" >"$T/why" 2>&1 <<'PY' && [ "$code" = 200 ] && ok "summary.json with a source filter" || bad "summary ($code)" "$T/why"
import json, sys
s = json.load(open(sys.argv[1]))
assert s['filter']['sources'] == ['vk'] and s['totals']['complaints'] > 0 and s['topics']
PY
# the server's cube (fed block by block while it reads, as 'problemap cube' feeds its own)
# gives the summary that 'problemap cube' writes from the same files
code=$(get summary-all.json "/api/summary.json")
"$BIN" cube -q --boundaries "$T/b.geojson" --id-field iso --name-field name_ru \
    --parent-field federal_district --complaints "$T/c.csv" --utc-offset +03:00 \
    --rejects "$T/cube-rejects.csv" --summary "$T/cube-summary.json" 2>"$T/why" &&
    [ "$code" = 200 ] && cmp "$T/r/summary-all.json" "$T/cube-summary.json" >>"$T/why" 2>&1 &&
    ok "summary.json = the summary 'problemap cube' writes" || bad "summary against cube ($code)" "$T/why"
code=$(get report.png "/api/report.png?figure=complaints_per_km2")
[ "$code" = 200 ] && head -c 8 "$T/r/report.png" | od -An -c | grep -q 'P   N   G' && ok "report.png is a PNG" || bad "report.png ($code)"
code=$(get report.pdf "/api/report.pdf?topic=health")
[ "$code" = 200 ] && head -c 5 "$T/r/report.pdf" | grep -q '%PDF-' && ok "report.pdf is a PDF" || bad "report.pdf ($code)"
get index.html / >"$T/code"
[ "$(cat "$T/code")" = 200 ] && grep -qi '<html' "$T/r/index.html" && ok "the viewer at /" || bad "viewer at /"
check "$(get leaflet.js /leaflet/leaflet.js)" 200 "embedded Leaflet"

# --- hostile input: each a 4xx with a short message, then the server still answers
: >"$T/hostile"
hostile() { # want path [curl args]
    want=$1 path=$2; shift 2
    code=$(curl -s -o "$T/r/hostile.$want" -w '%{http_code}' "$@" "$U$path")
    echo "$code $want $path" | cut -c1-120 >>"$T/hostile"
    [ "$code" = "$want" ]
}
long=$(repeat 500 aaaaaaaaaa)
many="topic=roads$(repeat 39 '&topic=roads')"
huge=$(repeat 4000 bbbbbbbbbb)
allgood=1
for t in "400 /tiles/heat/19/0/0.png" "400 /tiles/heat/3/8/0.png" "400 /tiles/heat/3/0/8.png" \
         "400 /tiles/heat/a/b/c.png" "400 /tiles/heat/-1/0/0.png" "400 /tiles/heat/99999999/0/0.png" \
         "404 /tiles/nosuch/1/0/0.png" "404 /tiles/nosuch.json" "404 /tiles/heat/1/0/0.jpg" \
         "400 /tiles/heat.json?nosuch=1" "400 /tiles/heat.json?topic=nosuch" \
         "400 /tiles/heat.json?source=nosuch" "400 /tiles/heat.json?from=2025-13-01" \
         "400 /tiles/heat.json?from=2025-02-30" "400 /tiles/heat.json?from=yesterday" \
         "400 /tiles/heat.json?from=2025-10-10&to=2025-10-01" "400 /tiles/heat.json?to=2025-10-10&to=2025-10-11" \
         "400 /tiles/heat.json?weight=heavy" "400 /tiles/heat.json?weight=one&weight=open" \
         "400 /tiles/heat.json?grid=4326" "400 /tiles/heat.json?figure=x" \
         "400 /tiles/hotspots.json?fdr=2" "400 /tiles/hotspots.json?fdr=yes" "400 /tiles/hotspots.json?fdr=1&fdr=1" \
         "400 /tiles/heat.json?topic" "400 /tiles/heat.json?topic=" "400 /api/meta.json?topic=roads" \
         "400 /api/report.png?figure=nosuch" "404 /etc/passwd" "404 /api/nosuch" \
         "400 /tiles/heat.json?$many" "414 /tiles/heat.json?topic=$long" "414 /tiles/heat.json?topic=$huge"; do
    hostile ${t%% *} "${t#* }" || allgood=0
done
for p in "/../etc/passwd" "/%2e%2e/etc/passwd" "/leaflet/%2e%2e/%2e%2e/etc/passwd" "/tiles/..%2fheat.json" "/leaflet/..%5c..%5cx"; do
    hostile 400 "$p" --path-as-is || allgood=0
done
hostile 405 /health -X POST -d 'x=1' || allgood=0
hostile 405 /tiles/heat/1/0/0.png -X DELETE || allgood=0
hostile 400 "/tiles/heat.json?topic=%00x" || allgood=0
[ $allgood = 1 ] && ok "hostile requests: bad z/x/y, zoom, layer, parameters, dates, traversal, long URL, methods → 4xx" || bad "hostile requests" "$T/hostile"
curl -s -D "$T/h" -o "$T/r/err" "$U/tiles/heat.json?topic=nosuch"
grep -qi '^content-type: text/plain' "$T/h" && [ "$(wc -c <"$T/r/err")" -lt 200 ] && grep -q 'unknown topic' "$T/r/err" &&
    ok "errors are a short plain-text message" || bad "error body" "$T/h"
# slow clients: 50 connections that send half a request and wait
python3 - "$PORT" >"$T/why" 2>&1 <<'PY' &
import socket, sys, time
socks = []
for i in range(50):
    s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
    s.sendall(b'GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ')
    socks.append(s)
time.sleep(3)
PY
slow=$!
sleep 1
check "$(get health2.json /health)" 200 "the server still answers /health after all that (and with 50 slow clients connected)"
wait $slow
kill -0 "$PID" 2>/dev/null && ok "the server is still running" || bad "server died" "$T/stderr"

# --- reload: SIGHUP under load; a failed reload keeps the data; a changed file reloads
g0=$(generation)
: >"$T/codes"
(for i in $(seq 1 80); do curl -s -o /dev/null -w '%{http_code}\n' "$U/tiles/heat/$Z6.png?from=2025-09-0$((i % 9 + 1))"; done >"$T/codes") &
loop=$!
sleep 0.3
kill -HUP "$PID"
for i in $(seq 1 900); do [ "$(generation)" != "$g0" ] && break; sleep 0.1; done
wait $loop
g1=$(generation)
bad_codes=$(grep -vc '^200$' "$T/codes")
[ "$g1" = $((g0 + 1)) ] && [ "$bad_codes" = 0 ] && [ "$(wc -l <"$T/codes")" = 80 ] &&
    ok "SIGHUP: generation $g0 → $g1 while 80 tile requests all got 200" ||
    { echo "generation $g0 -> $g1, non-200: $bad_codes" >"$T/why"; bad "SIGHUP reload" "$T/why"; }
# after a reload the TileJSON names new tile URLs (browsers keep tiles for max-age); g is
# accepted on tiles, and must be a number
get tj2.json "/tiles/heat.json" >/dev/null
c_ok=$(get gtile.png "/tiles/heat/$Z6.png?g=$g1"); c_bad=$(get gbad.txt "/tiles/heat/$Z6.png?g=x1")
grep -q "png?g=$g1\"" "$T/r/tj2.json" && [ "$c_ok" = 200 ] && [ "$c_bad" = 400 ] &&
    ok "TileJSON tile URLs carry the generation (g=$g1); g=x1 is a 400" || bad "tile URL generation ($c_ok $c_bad)" "$T/r/tj2.json"
printf '{"type": "FeatureCollection", "features": [' >"$T/b.geojson"   # broken, truncated
kill -HUP "$PID"
for i in $(seq 1 900); do grep -q 'reload failed' "$T/stderr" && break; sleep 0.1; done
[ "$(generation)" = "$g1" ] && [ "$(get health3.json /health)" = 200 ] && grep -q 'reload failed' "$T/stderr" &&
    ok "a failed reload (broken boundaries) logs why and keeps serving generation $g1" || bad "failed reload" "$T/stderr"
cp "$ROOT/data/ru_regions.geojson" "$T/b.geojson"   # fixed: the watcher notices the change
for i in $(seq 1 900); do [ "$(generation)" != "$g1" ] && break; sleep 0.1; done
[ "$(generation)" = $((g1 + 1)) ] && ok "a changed input file is reloaded by itself (generation $((g1 + 1)))" ||
    bad "reload on file change" "$T/stderr"
check "$(get heat-after.png "/tiles/heat/$Z6.png")" 200 "tiles after the reloads"

# --- the canary: no complaint text or author in any response or log
for p in /health /api/meta.json "/api/summary.json" "/api/districts.geojson" "/tiles/choropleth.json" "/tiles/grid.json?weight=wait_h"; do
    curl -s "$U$p" >>"$T/r/all-again"
done
if grep -rl "$CANARY" "$T/r" "$T/access.log" "$T/stderr" "$T/rejects.csv" >"$T/why" 2>&1; then bad "canary found in" "$T/why"
elif ! grep -q "$CANARY" "$T/c.csv"; then bad "canary missing from the input"
else ok "the complaints' text and author (canary) appear in no response, no log"; fi
grep -q '"GET /tiles/heat/[0-9/]*.png HTTP/1.1" 200 [0-9]* "-" "curl/' "$T/access.log" &&
    ok "access log in Combined Log Format" || bad "access log" "$T/access.log"
mv "$T/access.log" "$T/access.log.1"
kill -USR1 "$PID"
for i in $(seq 1 50); do get usr1 /health >/dev/null; [ -s "$T/access.log" ] && break; sleep 0.1; done
grep -q '"GET /health ' "$T/access.log" 2>/dev/null && ok "SIGUSR1 reopens the access log (logrotate)" || bad "SIGUSR1 reopen" "$T/stderr"

# --- SIGTERM: clean exit 0
kill -TERM "$PID"; wait "$PID"; code=$?; PID=""
check "$code" 0 "SIGTERM: exit 0"
grep -q 'stopped' "$T/stderr" && ! grep -q 'Sanitizer\|runtime error' "$T/stderr" &&
    ok "stopped cleanly (and no sanitizer report, under ASan)" || bad "stop" "$T/stderr"

# --- the dataset snapshot (`problemap dataset`, `serve --dataset`): the same bytes for every
# layer, table and report as from the CSV, without placing; reloaded when replaced
BD="--boundaries $T/b.geojson --id-field iso --name-field name_ru --parent-field federal_district"
"$BIN" dataset -q $BD --complaints "$T/c.csv" --utc-offset +03:00 --rejects "$T/ds-rejects.csv" \
    --out "$T/d.pmdata" 2>"$T/why" && ok "problemap dataset writes the snapshot" || bad "problemap dataset" "$T/why"
SNAP_URLS="/tiles/heat/$Z6.png /tiles/heat/$Z6.png?grid=3395 /tiles/heat/$Z7.png?topic=roads&source=vk
/tiles/heat/$Z6.png?from=2025-10-01&to=2025-10-31 /tiles/heat/$Z6.png?weight=wait_h
/tiles/choropleth/$Z6.png?figure=answered_within_24h_share /tiles/grid/$Z6.png?grid=3395
/tiles/hotspots/$Z6.png /tiles/heat.json /api/summary.json?topic=housing /api/districts.geojson
/api/report.png?from=2025-11-01&to=2025-11-30"
fetch_all() {   # fetch_all DIR: every SNAP_URLS body into DIR, the codes into DIR/codes
    mkdir -p "$1"; k=0
    for u in $SNAP_URLS; do k=$((k + 1)); curl -s -o "$1/$k" -w '%{http_code}\n' "$U$u" >>"$1/codes"; done
}
start; fetch_all "$T/from-csv"; kill -TERM "$PID"; wait "$PID"; PID=""
DATA="--dataset $T/d.pmdata"
start
grep -q 'loaded generation 1' "$T/stderr" && fetch_all "$T/from-snap"
if [ "$(sort -u "$T/from-csv/codes" 2>/dev/null)" = 200 ] && diff -r "$T/from-csv" "$T/from-snap" >"$T/why" 2>&1; then
    ok "serve --dataset: $(wc -l <"$T/from-csv/codes") tiles, tables and a report byte-identical to the CSV's"
else
    cat "$T/from-csv/codes" "$T/stderr" >>"$T/why" 2>/dev/null; bad "serve --dataset against the CSV" "$T/why"
fi
g0=$(generation)
"$BIN" dataset -q $BD --complaints "$T/c.csv" --utc-offset +03:00 --rejects "$T/ds-rejects.csv" \
    --out "$T/d.pmdata" 2>"$T/why"
for i in $(seq 1 900); do [ "$(generation)" != "$g0" ] && break; sleep 0.1; done
[ "$(generation)" = $((g0 + 1)) ] && [ "$(get snap-after.png "/tiles/heat/$Z6.png")" = 200 ] &&
    cmp "$T/r/snap-after.png" "$T/from-csv/1" >>"$T/why" 2>&1 &&
    ok "a replaced snapshot is reloaded by itself, and draws the same" || bad "snapshot reload" "$T/stderr"
kill -TERM "$PID"; wait "$PID"; code=$?; PID=""
[ $code = 0 ] && ! grep -q 'Sanitizer\|runtime error' "$T/stderr" && ok "snapshot server: exit 0, clean" ||
    bad "snapshot server ($code)" "$T/stderr"
DATA=$DATA_CSV
grep -c "$CANARY" "$T/d.pmdata" >"$T/why"; check "$(cat "$T/why")" 0 "the snapshot holds no complaint text or author"
# another --period than the kept cube's (week): the cube is made again from the columns
for src in "--complaints $T/c.csv --utc-offset +03:00 --rejects $T/t-rejects.csv" "--dataset $T/d.pmdata"; do
    k=$(echo "$src" | cut -c3-4)
    "$BIN" tiles -q $BD $src --period month --layer choropleth --figure change_pct \
        --from 2025-11-01 --to 2025-11-30 --min-zoom 3 --max-zoom 4 --out "$T/tm-$k" 2>>"$T/why"
done
[ -n "$(ls "$T/tm-co/3" 2>/dev/null)" ] && diff -r "$T/tm-co" "$T/tm-da" >"$T/why" 2>&1 &&
    ok "tiles --dataset --period month (a cube made again): the CSV's tiles" || bad "tiles --period month" "$T/why"
# refusals: other boundaries, other topics, complaints besides, a damaged byte
python3 - "$T/b.geojson" "$T/b2.geojson" <<'PY'
import json, sys
g = json.load(open(sys.argv[1], encoding='utf-8'))
g['features'] = g['features'][1:]
json.dump(g, open(sys.argv[2], 'w', encoding='utf-8'), ensure_ascii=False)
PY
"$BIN" tiles -q --boundaries "$T/b2.geojson" --id-field iso --name-field name_ru \
    --dataset "$T/d.pmdata" --out "$T/t-other" 2>"$T/why"; code=$?
[ $code = 1 ] && grep -q 'made with other boundaries' "$T/why" && ok "a snapshot over other boundaries is refused" ||
    bad "other boundaries ($code)" "$T/why"
python3 -c 'import json,sys; t=json.load(open(sys.argv[1])); t["topics"]=t["topics"][:-1]; json.dump(t,open(sys.argv[2],"w"))' \
    "$ROOT/data/topics.json" "$T/topics2.json" 2>"$T/why"
"$BIN" tiles -q $BD --topics "$T/topics2.json" --dataset "$T/d.pmdata" --out "$T/t-other" 2>"$T/why"; code=$?
[ $code = 1 ] && grep -q 'another topic catalogue' "$T/why" && ok "a snapshot with another topic catalogue is refused" ||
    bad "other topics ($code)" "$T/why"
"$BIN" serve $BD --dataset "$T/d.pmdata" --complaints "$T/c.csv" 2>"$T/why"; code=$?
[ $code = 2 ] && grep -q 'give none of' "$T/why" && ok "--dataset with --complaints is a usage error" ||
    bad "--dataset and --complaints ($code)" "$T/why"
python3 - "$T/d.pmdata" "$T/d-bad.pmdata" <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
b[len(b) // 2] ^= 0x40
open(sys.argv[2], 'wb').write(b)
PY
"$BIN" tiles -q $BD --dataset "$T/d-bad.pmdata" --out "$T/t-other" 2>"$T/why"; code=$?
[ $code = 1 ] && grep -q "d-bad.pmdata: damaged: section '.*': its checksum does not match" "$T/why" &&
    [ ! -e "$T/t-other" ] && ok "a damaged snapshot is refused, naming the section" || bad "damaged snapshot ($code)" "$T/why"

# --- the token
start --token "t0k-$$-abcdefghijklmnopqrstuvwxyz"
TOK="t0k-$$-abcdefghijklmnopqrstuvwxyz"
a=$(get tok1 /health) b=$(get tok2 "/health?token=wrong") c=$(get tok3 "/health?token=$TOK")
d=$(get tok4 /tiles/heat/1/1/0.png -H "Authorization: Bearer $TOK") e=$(get tok5 /viewer.css)
check "$a $b $c $d $e" "401 401 200 200 200" "token: required for data (header or ?token=), not for the viewer's files"
curl -s -D "$T/h" -o /dev/null -H "Authorization: Bearer $TOK" "$U/tiles/heat/1/1/0.png"
grep -qi '^cache-control: private' "$T/h" && ok "token: tiles are private to shared caches" || bad "private" "$T/h"
grep -q "$TOK" "$T/access.log" && bad "token value in the access log" || ok "the token's value is not logged"
kill -TERM "$PID"; wait "$PID"; code=$?; PID=""
[ $code = 0 ] && ! grep -q 'Sanitizer\|runtime error' "$T/stderr" && ok "second server: exit 0, clean" || bad "second server ($code)" "$T/stderr"
"$BIN" serve --boundaries "$T/b.geojson" --complaints "$T/c.csv" --listen 0.0.0.0:0 2>"$T/why"; code=$?
[ $code = 2 ] && grep -q 'without --token' "$T/why" && ok "refuses a non-loopback address without a token" || bad "non-loopback ($code)" "$T/why"

echo "serve: $pass passed, $fail failed ($(($(date +%s) - started)) s)"
[ "$fail" -eq 0 ]
