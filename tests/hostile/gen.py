"""gen.py — writes the hostile-input catalogue into a directory, at test
time (the big cases are tens of MB and are not committed).

cases(dir) writes every case and returns them as a list of dicts:
  name      the case
  kind      "complaints" (read against three 1-degree squares) or
            "boundaries" (read with a small complaints file)
  file      the hostile file (in dir)
  format    --format for complaints, or None
  exit      the documented exit status (docs/errors.md)
  message   for exit 1: a regex stderr must match (names the file, and the
            line/column or feature)
  rejects   for exit 0: {line: reason regex} that must be in the rejects file
  accepted  for exit 0: the number of complaints kept (None: not checked)
  slow      a case that may be skipped under ASan (PM_HOSTILE_FAST=1)
  args      more options for the run
Python 3 standard library only.
"""
import json
import math
import os

GOOD = [  # id, created_at, lon, lat, topic: inside A, B, C
    ("g1", "2024-03-01T10:00:00Z", 0.5, 0.5, "housing"),
    ("g2", "2024-03-01T11:00:00Z", 1.5, 0.5, "roads"),
    ("g3", "2024-03-02T09:00:00Z", 2.5, 0.5, "ecology"),
]
HEADER = "id,created_at,lon,lat,topic"


def square(i, x0, y0, d=1.0):
    return {"type": "Feature", "properties": {"id": i, "population": 1000},
            "geometry": {"type": "Polygon", "coordinates": [[
                [x0, y0], [x0 + d, y0], [x0 + d, y0 + d], [x0, y0 + d], [x0, y0]]]}}


def collection(features):
    return {"type": "FeatureCollection", "features": features}


def boundaries():
    return collection([square("A", 0, 0), square("B", 1, 0), square("C", 2, 0)])


def good_csv_rows():
    return ["%s,%s,%s,%s,%s" % g for g in GOOD]


def good_ndjson_lines():
    return [json.dumps({"id": g[0], "created_at": g[1], "lon": g[2], "lat": g[3],
                        "topic": g[4]}) for g in GOOD]


def write(d, name, data):
    path = os.path.join(d, name)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))
    return name


def case(name, kind, file, exit, message=None, rejects=None, accepted=None, fmt=None,
         slow=False, args=()):
    return {"name": name, "kind": kind, "file": file, "format": fmt, "exit": exit,
            "message": message, "rejects": rejects or {}, "accepted": accepted, "slow": slow,
            "args": list(args)}


def complaint_cases(d):
    out = []
    rows = good_csv_rows()
    nd = good_ndjson_lines()
    # JSON cut off mid-record: the line is rejected, the others are kept.
    f = write(d, "truncated.ndjson", "\n".join(nd) + '\n{"id": "t1", "created_at": "2024-')
    out.append(case("truncated NDJSON line", "complaints", f, 0,
                    rejects={4: "not valid JSON"}, accepted=3))
    # The same cut in a FeatureCollection: the whole file is unreadable.
    fc = json.dumps(collection([{"type": "Feature", "properties": {"id": "p1",
        "created_at": "2024-03-01", "topic": "roads"},
        "geometry": {"type": "Point", "coordinates": [0.5, 0.5]}}]), indent=1)
    f = write(d, "truncated.geojson", fc[: len(fc) // 2])
    out.append(case("truncated GeoJSON points", "complaints", f, 1,
                    message=r"truncated\.geojson.*line \d+, column \d+"))
    f = write(d, "truncated_open311.json", '[{"service_request_id": "1", "requested_')
    out.append(case("truncated Open311", "complaints", f, 1, fmt="open311",
                    message=r"truncated_open311\.json.*line \d+, column \d+"))
    # Nested 100 000 deep: one line rejected, or the whole collection.
    deep = "[" * 100000 + "]" * 100000
    f = write(d, "deep.ndjson", nd[0] + '\n{"id": "d1", "x": ' + deep + "}\n" + nd[1] + "\n")
    out.append(case("deeply nested NDJSON line", "complaints", f, 0,
                    rejects={2: "not valid JSON"}, accepted=2))
    f = write(d, "deep.geojson", '{"type": "FeatureCollection", "features": ' + deep + "}")
    out.append(case("deeply nested GeoJSON", "complaints", f, 1,
                    message=r"deep\.geojson.*line 1, column \d+"))
    # 10 MB on one line: a CSV field, an NDJSON member (text is never read).
    big = "x" * (10 * 1024 * 1024)
    f = write(d, "long_line.csv", "\n".join([HEADER + ",text", rows[0] + ",short",
                                             rows[1] + "," + big, rows[2] + ",short"]) + "\n")
    out.append(case("10 MB CSV field", "complaints", f, 0, accepted=3))
    f = write(d, "long_line.ndjson", nd[0] + "\n" + nd[1][:-1] + ', "text": "' + big + '"}\n'
              + nd[2] + "\n")
    out.append(case("10 MB NDJSON line", "complaints", f, 0, accepted=3))
    f = write(d, "long_garbage.ndjson", nd[0] + "\n" + big + "\n" + nd[1] + "\n")
    out.append(case("10 MB line that is not JSON", "complaints", f, 0,
                    rejects={2: "not valid JSON"}, accepted=2))
    # NUL bytes: a raw one in a CSV row and in an NDJSON line, an escaped one.
    f = write(d, "nul.csv", (HEADER + "\n" + rows[0] + "\nn1,2024-03-01,0.5,0.5,ro\0ads\n"
                             + rows[1] + "\n").encode())
    out.append(case("NUL byte in a CSV row", "complaints", f, 0,
                    rejects={3: "NUL byte in record"}, accepted=2))
    f = write(d, "nul.ndjson", (nd[0] + '\n{"id": "n1\0"}\n' + nd[1] + '\n'
                                + '{"id": "n2\\u0000", "created_at": "2024-03-01", '
                                  '"lon": 0.5, "lat": 0.5, "topic": "roads"}\n').encode())
    out.append(case("NUL bytes in NDJSON", "complaints", f, 0,
                    rejects={2: "not valid JSON", 4: "NUL character"}, accepted=2))
    # Bytes that are not UTF-8, and a whole file in Windows-1251.
    f = write(d, "bad_utf8.csv", (HEADER + "\n" + rows[0] + "\n").encode()
              + b"u1,2024-03-01,0.5,0.5,ro\xffads\n" + (rows[1] + "\n").encode())
    out.append(case("invalid UTF-8 in a CSV field", "complaints", f, 0,
                    rejects={3: "bad UTF-8"}, accepted=2))
    f = write(d, "bad_utf8.ndjson", (nd[0] + "\n").encode()
              + b'{"id": "u1", "topic": "ro\xffads"}\n' + (nd[1] + "\n").encode())
    out.append(case("invalid UTF-8 in an NDJSON line", "complaints", f, 0,
                    rejects={2: "not valid JSON"}, accepted=2))
    cp = ("id,created_at,lon,lat,topic\n"
          "w1,2024-03-01,0.5,0.5,ЖКХ\n"
          "w2,2024-03-01,1.5,0.5,Дороги\n").encode("cp1251")
    f = write(d, "cp1251.csv", cp + ("w3,2024-03-01,2.5,0.5,ЖКХ\n").encode("utf-8"))
    out.append(case("Windows-1251 CSV", "complaints", f, 0,
                    rejects={2: "bad UTF-8", 3: "bad UTF-8"}, accepted=1))
    # Numbers: overflow, negative zero, NaN, hex floats, infinities, exponents.
    nums = [("1e999", "0.5", "not a finite number|unparsable number"),
            ("0.5", "NaN", "not a finite number|unparsable number"),
            ("0x1p3", "0.5", "unparsable number"),
            ("inf", "0.5", "not a finite number|unparsable number"),
            ("0.5", "-1e999", "not a finite number|unparsable number"),
            ("1,5", "0.5", ".")]  # a comma in a ',' file: a short row with a wrong lon
    lines = [HEADER] + rows
    rej = {}
    for i, (lon, lat, why) in enumerate(nums):
        lines.append("x%d,2024-03-01,%s,%s,roads" % (i, lon, lat))
        rej[len(lines)] = why
    lines.append("x9,2024-03-01,-0,-0,roads")      # 0,0 exactly: null island
    rej[len(lines)] = "null island"
    lines.append("x10,2024-03-01,5e-1,0.5e0,roads")   # exponents are fine
    f = write(d, "numbers.csv", "\n".join(lines) + "\n")
    out.append(case("numbers: 1e999, NaN, 0x1p3, inf, -0", "complaints", f, 0,
                    rejects=rej, accepted=4))
    f = write(d, "numbers.ndjson", "\n".join(nd) + "\n"
              + '{"id": "j1", "created_at": "2024-03-01", "lon": 1e999, "lat": 0.5, "topic": "roads"}\n'
              + '{"id": "j2", "created_at": "2024-03-01", "lon": -0.0, "lat": 0.5, "topic": "roads"}\n'
              + '{"id": "j3", "created_at": "2024-03-01", "lon": 0x1p3, "lat": 0.5, "topic": "roads"}\n'
              + '{"id": "j4", "created_at": "2024-03-01", "lon": "NaN", "lat": 0.5, "topic": "roads"}\n')
    out.append(case("JSON numbers: 1e999, -0.0, 0x1p3, \"NaN\"", "complaints", f, 0,
                    rejects={4: "not valid JSON", 6: "not valid JSON",
                             7: "not a finite number|unparsable number"}, accepted=4))
    # The edges of the world, exactly: accepted (outside every district).
    edge = [(180, 0), (-180, 0), (0.5, 90), (0.5, -90), (180, 90), (-180, -90)]
    f = write(d, "edges.csv", "\n".join([HEADER] + rows + [
        "e%d,2024-03-01,%s,%s,roads" % (i, lon, lat) for i, (lon, lat) in enumerate(edge)]
        + ["e9,2024-03-01,180.0000001,0.5,roads", "e10,2024-03-01,0.5,-90.0000001,roads"]) + "\n")
    out.append(case("coordinates at ±180 / ±90 exactly", "complaints", f, 0,
                    rejects={11: "lon out of range", 12: "lat out of range|look swapped"}, accepted=9))
    # Empty inputs.
    f = write(d, "empty.csv", "")
    out.append(case("empty CSV file", "complaints", f, 1, message=r"empty\.csv.*empty file"))
    f = write(d, "header_only.csv", HEADER + "\n")
    out.append(case("CSV with a header only", "complaints", f, 0, accepted=0))
    f = write(d, "empty.geojson", json.dumps(collection([])))
    out.append(case("empty FeatureCollection of points", "complaints", f, 0, accepted=0))
    f = write(d, "empty_open311.json", "[]")
    out.append(case("empty Open311 array", "complaints", f, 0, accepted=0, fmt="open311"))
    f = write(d, "empty.ndjson", "\n\n")
    out.append(case("NDJSON of blank lines", "complaints", f, 0, accepted=0, fmt="ndjson"))
    # Structure.
    f = write(d, "repeat_header.csv", "id,created_at,lon,lat,topic,LAT\n" + rows[0] + ",1\n")
    out.append(case("CSV header repeats a column", "complaints", f, 1,
                    message=r'repeat_header\.csv.*header repeats column "LAT" \(columns 4 and 6\)'))
    f = write(d, "ragged.csv", "\n".join([HEADER, rows[0], rows[1] + ",extra,more",
                                          "r1,2024-03-01", rows[2],
                                          'r2,2024-03-01,0.5,0.5,"roads']) + "\n")
    out.append(case("ragged CSV and an unterminated quote", "complaints", f, 0,
                    rejects={3: "row has 7 fields, header has 5", 4: "no coordinates",
                             6: "unterminated quoted field"}, accepted=2))
    f = write(d, "dup_ids.csv", "\n".join([HEADER] + rows + [rows[0], rows[1]]) + "\n")
    out.append(case("duplicate ids", "complaints", f, 0,
                    rejects={5: "duplicate id", 6: "duplicate id"}, accepted=3))
    f = write(d, "not_points.geojson", json.dumps(collection([
        {"type": "Feature", "properties": {"id": "p1", "created_at": "2024-03-01",
                                           "topic": "roads"},
         "geometry": {"type": "Point", "coordinates": [0.5, 0.5]}},
        {"type": "Feature", "properties": {"id": "p2"},
         "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}},
        {"type": "Feature", "properties": {"id": "p3", "created_at": "2024-03-01",
                                           "topic": "roads"},
         "geometry": {"type": "Point", "coordinates": ["a", 0.5]}},
        "a string",
    ])))
    out.append(case("GeoJSON features that are not points", "complaints", f, 0,
                    rejects={2: "LineString", 3: ".", 4: "."}, accepted=1))
    return out


def circle(n, cx, cy, r):
    pts = [[round(cx + r * math.cos(2 * math.pi * k / n), 9),
            round(cy + r * math.sin(2 * math.pi * k / n), 9)] for k in range(n)]
    return pts + [pts[0]]


def boundary_cases(d):
    out = []
    b = json.dumps(boundaries(), indent=1)
    f = write(d, "b_truncated.geojson", b[: len(b) * 2 // 3])
    out.append(case("truncated boundaries", "boundaries", f, 1,
                    message=r"b_truncated\.geojson:\d+:\d+"))
    f = write(d, "b_deep.geojson", '{"type": "FeatureCollection", "features": '
              + "[" * 100000 + "]" * 100000 + "}")
    out.append(case("deeply nested boundaries", "boundaries", f, 1,
                    message=r"b_deep\.geojson:1:\d+"))
    f = write(d, "b_empty.geojson", json.dumps(collection([])))
    out.append(case("empty boundary collection", "boundaries", f, 1,
                    message=r"b_empty\.geojson: no usable feature"))
    f = write(d, "b_nul.geojson", b.replace('"B"', '"B\0"').encode())
    out.append(case("NUL byte in boundaries", "boundaries", f, 1, message=r"b_nul\.geojson:\d+:\d+"))
    f = write(d, "b_cp1251.geojson", b.replace('"population"', '"name": "Кемерово", "population"')
              .encode("cp1251"))
    out.append(case("Windows-1251 boundaries", "boundaries", f, 1,
                    message=r"b_cp1251\.geojson:\d+:\d+"))
    f = write(d, "b_1e999.geojson", json.dumps(boundaries()).replace("[2, 0]", "[1e999, 0]", 1))
    out.append(case("boundary coordinate 1e999", "boundaries", f, 1,
                    message=r"b_1e999\.geojson:\d+:\d+"))
    # Rejected features, named; the others kept.
    bad = boundaries()
    bad["features"] += [
        {"type": "Feature", "properties": {"id": "E1"}, "geometry": None},
        {"type": "Feature", "properties": {"id": "E2"},
         "geometry": {"type": "Polygon", "coordinates": []}},
        {"type": "Feature", "properties": {"id": "E3"},
         "geometry": {"type": "Polygon", "coordinates": [[[5, 5], [6, 5], [5, 5]]]}},
        {"type": "Feature", "properties": {"id": "E4"},
         "geometry": {"type": "Polygon", "coordinates": [[[5, 5], [6, 5], [6, 6], [5, 6]]]}},
        {"type": "Feature", "properties": {},
         "geometry": square("x", 7, 7)["geometry"]},
        {"type": "Feature", "properties": {"id": "E6"},
         "geometry": {"type": "Point", "coordinates": [5, 5]}},
        {"type": "Feature", "properties": {"id": "E7"},
         "geometry": {"type": "Polygon", "coordinates": [[[5, 5], ["a", 5], [6, 6], [5, 5]]]}},
        {"type": "Feature", "properties": {"id": "E8"},
         "geometry": {"type": "GeometryCollection", "geometries": []}},
    ]
    f = write(d, "b_rejects.geojson", json.dumps(bad))
    out.append(case("unusable boundary features", "boundaries", f, 0,
                    message=r"b_rejects\.geojson: feature 3 .*E1", accepted=3))
    # Self-touching ring (a hole touching the shell at one point, drawn as
    # one ring) and a bow-tie: repaired, with a warning.
    st = boundaries()
    st["features"].append({"type": "Feature", "properties": {"id": "S1"}, "geometry": {
        "type": "Polygon", "coordinates": [[[10, 0], [14, 0], [14, 4], [12, 4], [11, 2], [13, 2],
                                            [12, 4], [10, 4], [10, 0]]]}})
    st["features"].append({"type": "Feature", "properties": {"id": "S2"}, "geometry": {
        "type": "Polygon", "coordinates": [[[20, 0], [21, 1], [21, 0], [20, 1], [20, 0]]]}})
    f = write(d, "b_selftouch.geojson", json.dumps(st))
    out.append(case("self-touching ring and bow-tie", "boundaries", f, 0,
                    message=r"b_selftouch\.geojson: feature 4", accepted=3))
    # The edges of the world exactly, and -0.
    w = boundaries()
    w["features"] += [square("W1", 179, 89), square("W2", -180, -90), square("W3", -0.0, 5)]
    f = write(d, "b_edges.geojson", json.dumps(w))
    out.append(case("boundaries at ±180 / ±90 exactly", "boundaries", f, 0, accepted=3))
    # Big: one polygon of 1 M vertices around the three squares, and 100 k
    # tiny polygons.
    big = boundaries()
    big["features"].append({"type": "Feature", "properties": {"id": "BIG"}, "geometry": {
        "type": "Polygon", "coordinates": [circle(1000000, 1.5, -20, 10)]}})
    f = write(d, "b_1m.geojson", json.dumps(big, separators=(",", ":")))
    out.append(case("a polygon of 1 M vertices", "boundaries", f, 0, accepted=3, slow=True))
    tiny = boundaries()
    tiny["features"] += [square("T%d" % i, 10 + (i % 316) * 0.01, 10 + (i // 316) * 0.01, 0.005)
                         for i in range(100000)]
    f = write(d, "b_100k.geojson", json.dumps(tiny, separators=(",", ":")))
    # (Without the topology check: it takes ~20 s of CPU on these.)
    out.append(case("100 k tiny polygons", "boundaries", f, 0, accepted=3, slow=True,
                    args=["--no-topology-check"]))
    return out


def other_cases(d):
    out = []
    f = write(d, "topics_trunc.json", '{"version": 1, "topics": [{"code": "housing", "na')
    out.append(case("truncated topic catalogue", "topics", f, 1,
                    message=r"topics_trunc\.json:1:\d+"))
    f = write(d, "mapping_deep.json", '{"columns": ' + "[" * 100000 + "]" * 100000 + "}")
    out.append(case("deeply nested column mapping", "mapping", f, 1,
                    message=r"mapping_deep\.json.*1.*\d+"))
    return out


def cases(d):
    write(d, "three.geojson", json.dumps(boundaries()))
    write(d, "good.csv", "\n".join([HEADER] + good_csv_rows()) + "\n")
    return complaint_cases(d) + boundary_cases(d) + other_cases(d)
