#!/bin/sh
# Personal-data canaries through every command-line output: complaints whose
# text and author hold a unique marker, in CSV and NDJSON (a few rows made
# unparsable or invalid, so rejects carry them past the readers); then every
# output of geocode, cube, export, tiles, analyze and report, every stderr,
# is searched for the marker — PDF streams inflated (zlib), SVG as text, PNG
# text chunks and MBTiles as raw bytes.  None may hold it.
#   tests/e2e/canary.sh BUILD/problemap        (run from the repository root)
# The rejects file is the user's own data (docs/input-formats.md: line, id,
# field, reason — text and author are never read), so it must not hold the
# marker either; a reject reason for unparsable JSON must not quote the line.
BIN=$(realpath "$1")
ROOT=$(pwd)
T=$(mktemp -d /tmp/pm_canary.XXXXXX)
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM
export PROBLEMAP_DATA="$ROOT/data"
CANARY="CANARY-e2e-5d81b0"
B="--boundaries $ROOT/data/ru_regions.geojson --id-field iso --name-field name_ru --parent-field federal_district"
O="$T/out"; mkdir -p "$O"
fail=0
step() { # name, command...: runs it, stderr kept as $O/<name>.stderr
    name=$1; shift
    "$@" >"$O/$name.stdout" 2>"$O/$name.stderr" ||
        { echo "FAIL canary: '$name' exited $? ($(head -c 300 "$O/$name.stderr"))"; fail=1; }
}

"$BIN" generate $B --n 6000 --seed 5 --start 2025-01-06 --days 84 --utc-offset +03:00 \
    --output "$T/gen.csv" 2>/dev/null || { echo "FAIL canary: generate"; exit 1; }
python3 - "$T/gen.csv" "$T/c.csv" "$T/c.ndjson" "$CANARY" <<'PY'
import csv, json, sys
rows = list(csv.reader(open(sys.argv[1], newline='', encoding='utf-8')))
head = rows[0] + ['author']
text = head.index('text')
out = []
for i, r in enumerate(rows[1:]):
    r = r + [''] * (len(head) - 1 - len(r))
    r[text] = sys.argv[4] + ' текст жалобы, кв. 5'
    r.append(sys.argv[4] + ' Иванова Мария Петровна')
    if i % 97 == 0:
        r[head.index('topic')] = ''          # rejected: the reject must not carry text or author
    out.append(r)
half = len(out) // 2
with open(sys.argv[2], 'w', newline='', encoding='utf-8') as f:
    csv.writer(f, lineterminator='\n').writerows([head] + out[:half])
with open(sys.argv[3], 'w', encoding='utf-8') as f:
    for r in out[half:]:
        f.write(json.dumps(dict(zip(head, r)), ensure_ascii=False) + '\n')
    f.write('{"id": "broken", "text": "%s", "author": ' % sys.argv[4] + '\n')   # not JSON
PY

for f in c.csv c.ndjson; do
    step "geocode-$f" "$BIN" geocode -q $B --complaints "$T/$f" --utc-offset +03:00 \
        --output "$O/placed-$f.csv" --rejects "$O/rejects-$f.csv" --summary "$O/summary-$f.json"
done
step cube "$BIN" cube -q $B --complaints "$T/c.csv" --utc-offset +03:00 --rejects "$O/cube-rejects.csv" \
    --cube "$O/c.pmc" --period week --geojson "$O/d.geojson" --regions-geojson "$O/r.geojson" \
    --csv "$O/d.csv" --executors-csv "$O/e.csv" --topics-csv "$O/t.csv" --summary "$O/s.json"
step export "$BIN" export -q $B --cube "$O/c.pmc" --report "$O/report.png" --report "$O/report.pdf" \
    --report "$O/report.svg"
step tiles "$BIN" tiles -q $B --complaints "$T/c.ndjson" --utc-offset +03:00 --rejects "$O/tiles-rejects.csv" \
    --out "$O/tiles" --mbtiles "$O/heat.mbtiles" --min-zoom 3 --max-zoom 5
step dataset "$BIN" dataset -q $B --complaints "$T/c.ndjson" --utc-offset +03:00 \
    --rejects "$O/ds-rejects.csv" --out "$O/map.pmdata"
step analyze "$BIN" analyze -q $B --complaints "$T/c.csv" --utc-offset +03:00 --rejects "$O/an-rejects.csv" \
    --hotspots "$O/h.geojson" --hotspots-csv "$O/h.csv" --emerging "$O/em.geojson" \
    --forecast "$O/f.csv" --alerts "$O/a.csv" --recurrence "$O/rec.csv"

python3 - "$O" "$CANARY" >"$T/found" 2>&1 <<'PY'
import os, re, sys, zlib
root, mark = sys.argv[1], sys.argv[2].encode()
files = 0; found = []
for d, _, names in os.walk(root):
    for n in names:
        p = os.path.join(d, n); files += 1
        data = open(p, 'rb').read()
        blobs = [data]
        if n.endswith('.pdf'):   # inflate every FlateDecode stream
            for m in re.finditer(rb'stream\r?\n', data):
                try: blobs.append(zlib.decompressobj().decompress(data[m.end():]))
                except zlib.error: pass
        if n.endswith('.png') or n.endswith('.mbtiles'):   # zTXt/iTXt chunks and compressed cells
            for m in re.finditer(rb'x[\x01\x5e\x9c\xda]', data):
                try: blobs.append(zlib.decompressobj().decompress(data[m.start():m.start() + 65536]))
                except zlib.error: pass
        if any(mark in b for b in blobs):
            found.append(os.path.relpath(p, root))
print(files, 'files searched')
for f in found: print('marker found in', f)
sys.exit(1 if found else 0)
PY
[ $? -eq 0 ] || { echo "FAIL canary: complaint text or author in an output:"; sed 's/^/     /' "$T/found"; fail=1; }
grep -q "$CANARY" "$T/c.csv" && grep -q "$CANARY" "$T/c.ndjson" || { echo "FAIL canary: not planted"; fail=1; }
[ "$fail" -eq 0 ] && echo "ok   canary: no complaint text or author in $(head -1 "$T/found") (CSV, GeoJSON, PDF streams, SVG, PNG, MBTiles, the map's dataset, rejects, stderr)"
exit $fail
