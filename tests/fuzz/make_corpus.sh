#!/bin/sh
# Rebuilds the seed corpora tests/fuzz/corpus/<target>/ from the test
# fixtures (small files only) and, for the cube snapshot, from snapshots
# (and the map's dataset) that the program writes over three districts "A", "B", "C" and the
# three-topic catalogue of fuzz_util.h.  Run from the repository root:
#   sh tests/fuzz/make_corpus.sh [build/problemap]
# The corpora are committed; a fuzzer's new inputs are not (tools/fuzz.sh
# works in a copy).
set -e
BIN=${1:-build/problemap}
C=tests/fuzz/corpus
F=tests/fixtures
mkdir -p $C/boundaries $C/csv $C/ndjson $C/geojson_points $C/open311 $C/topics $C/mapping \
    $C/time $C/tile_path $C/cube $C/dataset
for f in $F/boundaries/*.geojson; do cp "$f" $C/boundaries/; done
cp $F/records/quoted.csv $F/records/semicolon_bom_crlf.csv $F/intake/semicolon.csv $C/csv/
cp $F/records/complaints.ndjson $C/ndjson/records.ndjson
cp $F/intake/complaints.ndjson $C/ndjson/intake.ndjson
cp $F/records/points.geojson $C/geojson_points/
cp $F/records/requests_open311.json $F/intake/open311.json $C/open311/
cp data/topics.json $C/topics/
cp data/mappings/nyc311.json $F/intake/open311_mapping.json $C/mapping/
printf '2024-03-01T12:00:00+07:00' >$C/time/iso_offset
printf '2024-03-01 12:00:00.250Z' >$C/time/iso_frac
printf '2024-03-01' >$C/time/iso_date
printf '03/01/2024 10:00:00 PM\000%%m/%%d/%%Y %%I:%%M:%%S %%p' >$C/time/format_ampm
printf '2024-03-01 12:00 +0300\000%%Y-%%m-%%d %%H:%%M %%z' >$C/time/format_z
printf 'heat/3/4/2.png' >$C/tile_path/heat
printf 'choropleth/18/262143/0@2x.png' >$C/tile_path/choro_2x
printf 'grid.json' >$C/tile_path/json
printf 'heat/3/8/2.png' >$C/tile_path/off_grid

# The cube: three 1° squares and a few complaints, day and week periods.
T=$(mktemp -d /tmp/pm_corpus.XXXXXX)
trap 'rm -rf "$T"' EXIT
sq() { echo "{\"type\":\"Feature\",\"properties\":{\"id\":\"$1\",\"population\":1000},\"geometry\":{\"type\":\"Polygon\",\"coordinates\":[[[$2,0],[$3,0],[$3,1],[$2,1],[$2,0]]]}}"; }
echo "{\"type\":\"FeatureCollection\",\"features\":[$(sq A 0 1),$(sq B 1 2),$(sq C 2 3)]}" >$T/b.geojson
python3 - "$T/topics.json" <<'PY'
import re, sys
src = open("tests/fuzz/fuzz_util.h", encoding="utf-8").read()
body = src[src.index("FUZZ_TOPICS[] ="):src.index(";", src.index("FUZZ_TOPICS[] ="))]
text = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', body)).replace('\\"', '"')
open(sys.argv[1], "w", encoding="utf-8").write(text)
PY
cat >$T/c.csv <<'CSV'
id,created_at,lon,lat,topic,source,status,answered_at,executor
1,2024-03-01T10:00:00Z,0.5,0.5,housing,web,closed,2024-03-01T12:00:00Z,Vodokanal
2,2024-03-01T11:00:00Z,1.5,0.5,roads,phone,open,,
3,2024-03-02T09:00:00Z,2.5,0.5,other,web,closed,2024-03-05T09:00:00Z,Dorogi
4,2024-03-09T09:00:00Z,0.2,0.8,roads,,open,,
5,2024-03-09T09:00:00Z,7,7,roads,,open,,
CSV
for p in day week; do
    "$BIN" cube -q --boundaries $T/b.geojson --topics $T/topics.json --complaints $T/c.csv \
        --period $p --cube $C/cube/$p.pmc --rejects $T/r.csv
done
# The map's dataset over the same: compact columns, and whole coordinates (one
# with nine decimals).
"$BIN" dataset -q --boundaries $T/b.geojson --topics $T/topics.json --complaints $T/c.csv \
    --out $C/dataset/compact.pmdata --rejects $T/r.csv
cat $T/c.csv - >$T/c2.csv <<'CSV'
6,2024-03-09T09:00:00Z,2.123456789,0.5,housing,sms,closed,2024-03-09T10:00:00Z,Vodokanal
CSV
"$BIN" dataset -q --boundaries $T/b.geojson --topics $T/topics.json --complaints $T/c2.csv \
    --out $C/dataset/wide.pmdata --rejects $T/r.csv
