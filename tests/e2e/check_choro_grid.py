"""Checks choropleth and grid pyramids written by `problemap tiles`:
    check_choro_grid.py CHORO_DIR GRID_DIR DISTRICTS_CSV
Legends are well formed (classes ascending), a district's interior pixel at
z5 has the class colour of its complaint count in the cube's own table, and
central Moscow's grid cell has a class colour at 80 % alpha.  PNGs are
decoded here with zlib alone (every filter type), independently of the
program's encoder."""
import csv, json, math, os, struct, sys, zlib


def png_rgba(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat, w, h = 8, b"", 0, 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour == 6, (depth, colour)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride, rows, prev = zlib.decompress(idat), 4 * w, [], bytearray(4 * w)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - 4] if i >= 4 else 0
            b, c = prev[i], prev[i - 4] if i >= 4 else 0
            p = a + b - c
            paeth = a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else \
                b if abs(p - b) <= abs(p - c) else c
            line[i] = (line[i] + [0, a, b, (a + b) // 2, paeth][f]) & 255
        rows.append(line)
        prev = line
    return rows


def tile_pixel(lon, lat, z):
    n = 2 ** z
    x = (lon + 180) / 360 * n
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int(x), int(y), int((x % 1) * 256), int((y % 1) * 256)


def legend(d, kind):
    lg = json.load(open(os.path.join(d, "tilejson.json")))["problemap_legend"]
    assert lg["kind"] == kind and lg["title"] and lg["classes"], lg
    for a, b in zip(lg["classes"], lg["classes"][1:]):
        assert a["lo"] <= a["hi"] < b["lo"] <= b["hi"], lg
    return lg


def colour_of(lg, v):
    for c in lg["classes"]:
        if c["lo"] <= v <= c["hi"]:
            return tuple(int(c["color"][i:i + 2], 16) for i in (1, 3, 5))
    raise AssertionError((v, lg))


choro, grid = legend(sys.argv[1], "choropleth"), legend(sys.argv[2], "grid")
counts = {r["id"]: int(r["complaints"]) for r in csv.DictReader(open(sys.argv[3], encoding="utf-8"))}
# interior points: Moscow (RU-MOW), Novosibirsk (RU-NVS), Yakutsk (RU-SA)
for iso, lon, lat in (("RU-MOW", 37.62, 55.75), ("RU-NVS", 82.92, 55.03), ("RU-SA", 129.73, 62.03)):
    tx, ty, px, py = tile_pixel(lon, lat, 5)
    row = png_rgba(os.path.join(sys.argv[1], "5", str(tx), "%d.png" % ty))[py]
    got = tuple(row[4 * px:4 * px + 4])
    assert got[:3] == colour_of(choro, counts[iso]) and got[3] == 255, (iso, got, counts[iso])
tx, ty, px, py = tile_pixel(37.62, 55.75, 4)   # central Moscow's cell (no outlines at z4)
row = png_rgba(os.path.join(sys.argv[2], "4", str(tx), "%d.png" % ty))[py]
got = tuple(row[4 * px:4 * px + 4])
near = lambda a, b: all(abs(x - y) <= 3 for x, y in zip(a, b))
assert abs(got[3] - 204) <= 1 and any(near(got, colour_of(grid, c["hi"])) for c in grid["classes"]), got
print("ok")
