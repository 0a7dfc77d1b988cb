"""Checks a hot-spot pyramid written by `problemap tiles --layer hotspots`
over data/ru_regions.geojson with the planted surge (planted_surge.py,
roads, its last week):
    check_hotspots.py PYRAMID_DIR
The legend has the seven Gi* bins cold to hot in the RdBu-reversed colours,
with Russian labels, and counts the 86 regions less the 3 islands; the
surging region (Tula) is drawn dark red (hot spot, 99 %), a region far
from it (Novosibirsk) very light grey (not significant), and an island
(Kaliningrad) grey and hatched (no data)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pngcheck import pixel_at  # noqa: E402

d = sys.argv[1]
lg = json.load(open(os.path.join(d, "tilejson.json")))["problemap_legend"]
assert lg["kind"] == "hotspots" and "Gi*" in lg["title"], lg
bins = lg["classes"]
assert [c["bin"] for c in bins] == [-3, -2, -1, 0, 1, 2, 3], bins
assert [c["color"] for c in bins] == ["#2166ac", "#67a9cf", "#d1e5f0", "#f7f7f7",
                                      "#fddbc7", "#ef8a62", "#b2182b"], bins
assert bins[6]["label"] == "горячая точка, 99 %" and bins[3]["label"] == "не значимо", bins
assert sum(c["count"] for c in bins) == 83 and bins[6]["count"] >= 1, bins
assert lg["nodata"]["label"] == "нет данных", lg


def rgb(hexa):
    return tuple(int(hexa[i:i + 2], 16) for i in (1, 3, 5))


tula = pixel_at(d, 37.5, 53.9, 5)
assert tula == rgb("#b2182b") + (255,), ("Tula", tula)
nsk = pixel_at(d, 82.92, 55.03, 5)
assert nsk == rgb("#f7f7f7") + (255,), ("Novosibirsk", nsk)
kgd = pixel_at(d, 21.2, 54.7, 5)
assert kgd[3] == 255 and kgd[0] == kgd[1] == kgd[2] and 0x9e - 1 <= kgd[0] <= 0xd9, ("Kaliningrad", kgd)
print("hot", bins[6]["count"], "at 99 %; ok")
