"""Checks choropleth and grid pyramids written by `problemap tiles`:
    check_choro_grid.py CHORO_DIR GRID_DIR DISTRICTS_CSV
Legends are well formed (classes ascending), a district's interior pixel at
z5 has the class colour of its complaint count in the cube's own table, and
central Moscow's grid cell has a class colour at 80 % alpha.  PNGs are
decoded with zlib alone (pngcheck.py), independently of the program's
encoder."""
import csv, json, os, sys


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pngcheck import png_rgba, tile_pixel  # noqa: E402


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
