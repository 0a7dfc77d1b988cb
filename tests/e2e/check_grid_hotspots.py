"""Grid hot spots end to end (`problemap analyze --grid-hotspots`):
    check_grid_hotspots.py BIN REGIONS.geojson WORKDIR
Cuts Tula and its five neighbours out of REGIONS, writes complaints with
coordinates (seeded): road complaints spread uniformly over the six
regions' boxes, water complaints (to be filtered out by --topic roads),
and a planted cluster of road complaints within 3 km of a point south of
Tula.  Runs analyze on a 2 km square grid and on a hexagonal one, and
checks that ogrinfo reads the GeoJSON, that the cells' counts add up to
the road complaints inside the study area (tested here, independently,
against the cells' polygons), and that the cell of the cluster's centre
is a 99 % hot spot (gi_bin 3).  Exit 0 when all holds, 1 with a message."""
import csv, datetime, json, math, random, subprocess, sys

BIN, REGIONS, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
KEEP = {"RU-TUL", "RU-MOS", "RU-KLU", "RU-ORL", "RU-LIP", "RU-RYA"}
CLUSTER = (37.62, 54.05)   # lon, lat: south of Tula's centre
rng = random.Random(2026)

src = json.load(open(REGIONS, encoding="utf-8"))
feats = [f for f in src["features"] if f["properties"]["iso"] in KEEP]
bounds_path = WORK + "/grid_regions.geojson"
json.dump({"type": "FeatureCollection", "features": feats}, open(bounds_path, "w", encoding="utf-8"))


def coords(geom):
    polys = geom["coordinates"] if geom["type"] == "MultiPolygon" else [geom["coordinates"]]
    for p in polys:
        for ring in p:
            yield from ring


xs = [c[0] for f in feats for c in coords(f["geometry"])]
ys = [c[1] for f in feats for c in coords(f["geometry"])]
box = (min(xs), min(ys), max(xs), max(ys))

start = datetime.datetime(2025, 6, 2, 9, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=3)))
points = []   # (lon, lat, topic)
for _ in range(4000):
    points.append((rng.uniform(box[0], box[2]), rng.uniform(box[1], box[3]), "roads"))
for _ in range(1500):
    points.append((rng.uniform(box[0], box[2]), rng.uniform(box[1], box[3]), "water"))
for _ in range(150):   # within 3 km of the cluster's centre
    r, a = 3000 * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
    points.append((CLUSTER[0] + r * math.cos(a) / (111320 * math.cos(math.radians(CLUSTER[1]))),
                   CLUSTER[1] + r * math.sin(a) / 110574, "roads"))
csv_path = WORK + "/grid_complaints.csv"
with open(csv_path, "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["id", "created_at", "topic", "lon", "lat", "source"])
    for i, (lon, lat, topic) in enumerate(points):
        t = start + datetime.timedelta(days=rng.randrange(56), minutes=rng.randrange(600))
        w.writerow(["g%06d" % i, t.isoformat(), topic, "%.7f" % lon, "%.7f" % lat, "portal"])


def inside(lon, lat, ring):
    """Even-odd rule on one ring (the test's own, independent of GEOS)."""
    c = False
    for (x0, y0), (x1, y1) in zip(ring, ring[1:]):
        if (y0 > lat) != (y1 > lat) and lon < x0 + (lat - y0) * (x1 - x0) / (y1 - y0):
            c = not c
    return c


def fail(msg):
    print(msg)
    sys.exit(1)


for shape in ("square", "hex"):
    out = "%s/grid_%s.geojson" % (WORK, shape)
    cmd = [BIN, "analyze", "-q", "--boundaries", bounds_path, "--id-field", "iso", "--name-field",
           "name_ru", "--complaints", csv_path, "--rejects", WORK + "/grid_rej.csv", "--topic", "roads",
           "--grid-hotspots", out, "--grid-hotspots-csv", out + ".csv", "--grid-m", "2000",
           "--grid-shape", shape]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        fail("%s: exit %d: %s" % (" ".join(cmd), r.returncode, r.stderr))
    info = subprocess.run(["ogrinfo", "-ro", "-so", "-al", out], capture_output=True, text=True)
    cells = json.load(open(out, encoding="utf-8"))["features"]
    if info.returncode != 0 or "Feature Count: %d" % len(cells) not in info.stdout:
        fail("%s: ogrinfo does not read %d features: %s%s" % (out, len(cells), info.stdout, info.stderr))
    rows = list(csv.DictReader(open(out + ".csv", encoding="utf-8")))
    if len(rows) != len(cells):
        fail("%s: %d CSV rows for %d cells" % (shape, len(rows), len(cells)))
    # the cells' polygons, indexed by a 0.05° bucket of their bounding boxes
    buckets = {}
    for k, c in enumerate(cells):
        ring = c["geometry"]["coordinates"][0]
        lo = [min(p[i] for p in ring) for i in (0, 1)]
        hi = [max(p[i] for p in ring) for i in (0, 1)]
        for bx in range(int(lo[0] / 0.05), int(hi[0] / 0.05) + 1):
            for by in range(int(lo[1] / 0.05), int(hi[1] / 0.05) + 1):
                buckets.setdefault((bx, by), []).append(k)
    expect = [0] * len(cells)
    on_edge = 0
    for lon, lat, topic in points:
        if topic != "roads":
            continue
        hits = [k for k in buckets.get((int(lon / 0.05), int(lat / 0.05)), [])
                if inside(lon, lat, cells[k]["geometry"]["coordinates"][0])]
        if len(hits) > 1:
            on_edge += 1
        if hits:
            expect[hits[0]] += 1
    got = [c["properties"]["count"] for c in cells]
    if sum(got) != sum(expect) or on_edge:
        fail("%s: the cells count %d road complaints, the polygons hold %d (%d on an edge)" %
             (shape, sum(got), sum(expect), on_edge))
    wrong = sum(1 for a, b in zip(got, expect) if a != b)
    if wrong > 2:   # a point within centimetres of a cell's edge may go either way
        fail("%s: %d cells count otherwise than their polygons" % (shape, wrong))
    hot = [k for k in buckets.get((int(CLUSTER[0] / 0.05), int(CLUSTER[1] / 0.05)), [])
           if inside(CLUSTER[0], CLUSTER[1], cells[k]["geometry"]["coordinates"][0])]
    if len(hot) != 1:
        fail("%s: the cluster's centre is in %d cells" % (shape, len(hot)))
    p = cells[hot[0]]["properties"]
    if p["gi_bin"] != 3 or p["district_id"] != "RU-TUL":
        fail("%s: the cluster's cell is %s" % (shape, json.dumps(p)))
    hot3 = sum(1 for c in cells if c["properties"]["gi_bin"] == 3)
    print("%s: %d cells, %d road complaints in them, cluster cell gi_z %.2f, %d cells at 99 %%" %
          (shape, len(cells), sum(got), p["gi_z"], hot3))
