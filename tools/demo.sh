#!/bin/sh
# `make demo`: the main job on the sample data the repository ships —
# Russia's 85 federal subjects (Natural Earth) grouped into federal
# districts, and synthetic complaints clustered around GeoNames towns.
set -e
BIN=${1:-build/problemap}
OUT=out/demo
mkdir -p "$OUT"
B="--boundaries data/ru_regions.geojson --id-field iso --name-field name_ru --parent-field federal_district"
$BIN generate $B --n 200000 --seed 2025 --start 2025-09-01 --days 91 --utc-offset +03:00 \
    --output "$OUT/complaints.csv"
$BIN geocode $B --complaints "$OUT/complaints.csv" --utc-offset +03:00 \
    --output "$OUT/placed.csv" --rejects "$OUT/rejects.csv" --summary "$OUT/summary.json"
cat <<MSG

problemap demo — outputs in $OUT/:
  complaints.csv   200 000 synthetic complaints (the input; seed 2025)
  placed.csv       every accepted complaint with its region (district_id), federal district
                   (region_id) and placement (inside, border, snapped, by_code, outside)
  rejects.csv      every rejected record: line, id, field, reason
  summary.json     counts: read, accepted, rejected, placed, outside
MSG
