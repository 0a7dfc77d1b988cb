#!/bin/sh
# `make demo`: the main job on the sample data the repository ships —
# Russia's 85 federal subjects (Natural Earth) grouped into federal
# districts, and synthetic complaints clustered around GeoNames towns.
set -e
BIN=${1:-build/problemap}
OUT=out/demo
mkdir -p "$OUT"
rm -f "$OUT/cube.pmc"   # the demo starts from an empty cube
B="--boundaries data/ru_regions.geojson --id-field iso --name-field name_ru --parent-field federal_district"
$BIN generate $B --n 200000 --seed 2025 --start 2025-09-01 --days 91 --utc-offset +03:00 \
    --output "$OUT/complaints.csv"
$BIN geocode $B --complaints "$OUT/complaints.csv" --utc-offset +03:00 \
    --output "$OUT/placed.csv" --rejects "$OUT/rejects.csv" --summary "$OUT/placed-summary.json"
$BIN cube -q $B --complaints "$OUT/complaints.csv" --utc-offset +03:00 --period week \
    --rejects "$OUT/cube-rejects.csv" --cube "$OUT/cube.pmc" \
    --from 2025-11-03 --to 2025-11-30 --report "$OUT/report.png" --report "$OUT/report.pdf" \
    --title "Обращения граждан — Российская Федерация (синтетические данные)" \
    --attribution "Границы: Natural Earth (общественное достояние)"
# The tables: the last four weeks (2025-11-03 .. 2025-11-30), with the change
# against the four weeks before.
$BIN export -q $B --cube "$OUT/cube.pmc" --from 2025-11-03 --to 2025-11-30 \
    --geojson "$OUT/districts.geojson" --regions-geojson "$OUT/regions.geojson" \
    --csv "$OUT/districts.csv" --executors-csv "$OUT/executors.csv" \
    --topics-csv "$OUT/topics.csv" --summary "$OUT/summary.json" --simplify 2000
# The map's dataset: the complaints placed and projected once, for the tiles and the server.
$BIN dataset -q $B --complaints "$OUT/complaints.csv" --utc-offset +03:00 \
    --rejects "$OUT/dataset-rejects.csv" --out "$OUT/map.pmdata"
# Heat-map tiles for a web map (50 km kernel: a country-wide view), zoom 3 to 6.
$BIN tiles -q $B --dataset "$OUT/map.pmdata" --out "$OUT/tiles" --mbtiles "$OUT/heat.mbtiles" \
    --min-zoom 3 --max-zoom 6 --radius-m 50000 \
    --attribution "Границы: Natural Earth; города: GeoNames (CC BY 4.0)"
# Statistics: hot spots, emerging hot spots over the last 8 weeks, surge alerts at a false
# discovery rate of 5 %, and the report with its analytics page.
$BIN analyze -q $B --complaints "$OUT/complaints.csv" --utc-offset +03:00 \
    --rejects "$OUT/analyze-rejects.csv" --to 2025-11-30 --fdr \
    --hotspots "$OUT/hotspots.geojson" --emerging "$OUT/emerging.geojson" \
    --alerts "$OUT/alerts.csv" --report "$OUT/analytics.pdf" 2>/dev/null
cat <<MSG

problemap demo — outputs in $OUT/:
  complaints.csv        200 000 synthetic complaints (the input; seed 2025)
  placed.csv            every accepted complaint with its region (district_id), federal
                        district (region_id) and placement (inside, border, snapped, by_code, outside)
  rejects.csv           every rejected record: line, id, field, reason
  placed-summary.json   counts: read, accepted, rejected, placed, outside
  cube.pmc              the cube snapshot (week × region × topic × source × status × executor)
  cube-rejects.csv      the rejects of the cube run (the same records as rejects.csv)
The tables below cover the last four weeks (2025-11-03 to 2025-11-30), with the change
against the four weeks before:
  districts.geojson     one feature per region with its figures (open it in QGIS)
  regions.geojson       the same per federal district
  districts.csv         the same table for a spreadsheet
  executors.csv         answer times, overdue and rating per executor
  topics.csv            figures per topic
  summary.json          period, totals, top regions, topics, slowest executors
  report.png, .pdf      the one-page report for officials: map, top 10, topics, answers
  map.pmdata            the map's dataset: placed complaints and heat-map points (no texts),
                        which the tiles and the live map start from (docs/dataset.md)
  tiles/                heat-map tiles z3-z6 (z/x/y.png) with tilejson.json, for Leaflet
  heat.mbtiles          the same tiles as MBTiles (QGIS: Layer > Add Raster Layer)
  hotspots.geojson      Gi* hot spots and local Moran's I per region (docs/analytics.md)
  emerging.geojson      emerging hot spots over the last 8 weeks
  alerts.csv            surge alerts: region x topic weeks far above their forecast
  analytics.pdf         the report with its second page: emerging hot spots and surges
MSG

# The live map: `problemap serve` on the same data, in the background, so a
# person can open the printed address (PM_DEMO_SERVE=0 skips it; PM_DEMO_LISTEN
# changes the address).  A server left by an earlier demo is stopped first.
[ "${PM_DEMO_SERVE:-1}" = 0 ] && exit 0
LISTEN=${PM_DEMO_LISTEN:-127.0.0.1:8080}
if [ -f "$OUT/serve.pid" ]; then
    kill "$(cat "$OUT/serve.pid")" 2>/dev/null && sleep 1
    rm -f "$OUT/serve.pid"
fi
setsid "$BIN" serve -q $B --dataset "$OUT/map.pmdata" --period week --listen "$LISTEN" \
    --title "Обращения граждан — Российская Федерация (синтетические данные)" \
    --attribution "Границы: Natural Earth (общественное достояние)" \
    </dev/null >"$OUT/serve.log" 2>&1 &
echo $! >"$OUT/serve.pid"
i=0
while [ $i -lt 60 ] && ! grep -q "listening on" "$OUT/serve.log"; do
    kill -0 "$(cat "$OUT/serve.pid")" 2>/dev/null || break
    sleep 0.5; i=$((i + 1))
done
if grep -q "listening on" "$OUT/serve.log"; then
    url=$(grep -o "http://[^ ]*" "$OUT/serve.log" | head -n 1)
    cat <<MSG

The live map is running: open $url in a browser
(heat map, districts by figure, grid; filters by topic, period and source; click a
district for its figures; report and GeoJSON links).  Its log: $OUT/serve.log.
Stop it with:  kill \$(cat $OUT/serve.pid)
MSG
else
    echo "problemap demo: the map server did not start (port in use?); see $OUT/serve.log" >&2
    cat "$OUT/serve.log" >&2
    exit 1
fi
