"""pysal_oracle.py — checks the library's spatial weights and local
statistics against libpysal (Debian's python3-libpysal 4.7, which has no
esda: Gi* and local Moran are computed here with numpy from esda's own
formulas, on libpysal's weights).

    python3 pysal_oracle.py DRIVER REPO_ROOT WORKDIR

For each boundary file: our queen neighbours (GEOS, tests/analytics/
oracle_driver.c) must equal libpysal's Queen.from_iterable on the same
polygons (libpysal.cg shapes built from the GeoJSON, no shapely or
geopandas needed) as identical sets; Gi* z-scores and local Moran's I must
agree within 1e-9 on the driver's fixed count vector.  Islands: pysal
gives an island a Gi* (the unit alone) and a local I of 0; we give NAN
(docs/analytics.md), so islands are checked to be the same units and NAN.
For points: distance-band and k-nearest-neighbour weights against
libpysal's DistanceBand and KNN, on a regular grid (exact ties at the band
distance) and on seeded random points (no ties, so KNN is unique).
For the equal-area grid (engine/pm_cellgrid.h): the cell centres the
driver prints, on the shipped regions (50 km hexagons and squares) and
on the OSM districts of Kemerovo when present (2 km): the default band
(the nearest ring) equals DistanceBand(binary=True) on the same centres,
the k nearest equal KNN(k) wherever the k-th neighbour is unique (a grid
has exact ties; rows with a tie at the k-th distance are counted and
left out), and Gi* over both within 1e-9 of numpy's esda formula (on
pysal's band weights; on our k nearest).
"""
import json
import os
import subprocess
import sys
import warnings

warnings.filterwarnings("ignore")  # libpysal: "geopandas not available", remote data sets

import numpy as np  # noqa: E402
from libpysal import cg, weights  # noqa: E402
from scipy import sparse  # noqa: E402  (libpysal depends on scipy)
from scipy.spatial import cKDTree  # noqa: E402

TOL = 1e-9
results = {"passed": 0, "failed": 0}


def check(ok, what, detail=""):
    results["passed" if ok else "failed"] += 1
    print(("ok      " if ok else "FAILED  ") + what + ("" if ok else ": " + detail))


def run_driver(driver, *args):
    out = subprocess.run([driver, *map(str, args)], check=True, capture_output=True, text=True)
    return [line.split(",") for line in out.stdout.splitlines()]


def pysal_polygon(geom):
    """A libpysal.cg.Polygon with every ring of a GeoJSON (Multi)Polygon."""
    polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
    parts, holes = [], []
    for rings in polys:
        parts.append([cg.Point(tuple(p)) for p in rings[0]])
        holes.extend([cg.Point(tuple(p)) for p in r] for r in rings[1:])
    return cg.Polygon(parts, holes if holes else None)


def esda_gistar(w, y):
    """esda.G_Local(y, w, transform='B', star=True).Zs, as esda computes it."""
    W = w.sparse.tocsr().astype(float)
    W.data[:] = 1.0
    W = (W + sparse.identity(w.n, format="csr")).tocsr()  # star: the unit itself, weight 1
    n = w.n
    statistic = np.asarray(W @ y).ravel() / y.sum()
    mean = y.sum() / n
    var = (y ** 2).sum() / n - mean ** 2
    card = np.asarray(W.sum(axis=1)).squeeze()
    expected = card / n
    variance = card * (n - card) / (n - 1) * (1 / n ** 2) * (var / mean ** 2)
    return (statistic - expected) / np.sqrt(variance)


def esda_local_moran(w, y):
    """esda.Moran_Local(y, w).Is and .q (row-standardised weights)."""
    n = w.n
    z = y - y.mean()
    z = z / y.std()
    W = w.sparse.tocsr().astype(float)
    rows = np.asarray(W.sum(axis=1)).squeeze()
    lag = np.where(rows > 0, np.asarray(W @ z).ravel() / np.where(rows > 0, rows, 1), 0.0)
    I = (n - 1) * z * lag / (z * z).sum()
    zp, lp = z > 0, lag > 0
    q = np.where(zp & lp, 1, np.where(~zp & lp, 2, np.where(~zp & ~lp, 3, 4)))
    return I, q


def check_districts(driver, path, id_field, name):
    with open(path, encoding="utf-8") as f:
        fc = json.load(f)
    ids = [feat["properties"][id_field] for feat in fc["features"]]
    wq = weights.Queen.from_iterable([pysal_polygon(ft["geometry"]) for ft in fc["features"]],
                                     ids=ids)
    rows = run_driver(driver, "districts", path, id_field, 0)
    ours = {i: set() for i in ids}
    islands, value, gi, lisa = set(), {}, {}, {}
    for r in rows:
        if r[0] == "nb":
            ours[r[1]].add(r[2])
        elif r[0] == "island":
            islands.add(r[1])
        elif r[0] == "value":
            value[r[1]] = float(r[2])
        elif r[0] == "gi":
            gi[r[1]] = float(r[2])
        elif r[0] == "lisa":
            lisa[r[1]] = (float(r[2]), int(r[3]))
    theirs = {i: set(wq.neighbors[i]) for i in ids}
    diff = [i for i in ids if ours[i] != theirs[i]]
    links = sum(len(s) for s in theirs.values())
    check(not diff, f"{name}: queen neighbours of {len(ids)} units ({links} links) equal pysal's",
          "; ".join(f"{i}: ours-only {sorted(ours[i] - theirs[i])}, pysal-only "
                    f"{sorted(theirs[i] - ours[i])}" for i in diff[:5]))
    pysal_islands = {i for i in ids if not theirs[i]}
    check(islands == pysal_islands, f"{name}: islands {sorted(islands)} are pysal's islands",
          f"pysal: {sorted(pysal_islands)}")

    # The statistics on pysal's weights, in the driver's (sorted id) order.
    order = sorted(ids, key=lambda s: s.encode("utf-8"))
    w = weights.W({i: list(wq.neighbors[i]) for i in order}, id_order=order, silence_warnings=True)
    y = np.array([value[i] for i in order])
    z_pysal = esda_gistar(w, y)
    I_pysal, q_pysal = esda_local_moran(w, y)
    worst, nan_ok, quad_ok = 0.0, True, True
    for k, i in enumerate(order):
        if i in pysal_islands:
            nan_ok &= np.isnan(gi[i]) and np.isnan(lisa[i][0])
            continue
        worst = max(worst, abs(gi[i] - z_pysal[k]), abs(lisa[i][0] - I_pysal[k]))
        quad_ok &= lisa[i][1] == q_pysal[k]
    check(worst <= TOL, f"{name}: Gi* z and local Moran I within {TOL} of esda's formulas "
          f"(largest difference {worst:.2e})", f"largest difference {worst:.3e}")
    check(nan_ok, f"{name}: islands have NAN Gi* and local I (pysal: the unit alone, I = 0)")
    check(quad_ok, f"{name}: local Moran quadrants equal esda's")


def pairs_of(w, ids):
    return {(a, b) for a in ids for b in w.neighbors[a]}


def check_points(driver, workdir, name, pts, d, k, check_knn):
    path = os.path.join(workdir, name + ".csv")
    np.savetxt(path, pts, delimiter=",", fmt="%.17g")
    rows = run_driver(driver, "points", path, repr(d), k)
    band = {(int(r[1]), int(r[2])) for r in rows if r[0] == "band"}
    knn = {(int(r[1]), int(r[2])) for r in rows if r[0] == "knn"}
    ids = list(range(len(pts)))
    wb = weights.DistanceBand(pts, threshold=d, binary=True, silence_warnings=True)
    check(band == pairs_of(wb, ids), f"{name}: distance band {d} m: {len(band)} pairs equal pysal's",
          f"ours-only {sorted(band - pairs_of(wb, ids))[:5]}, pysal-only "
          f"{sorted(pairs_of(wb, ids) - band)[:5]}")
    if not check_knn:  # a grid has ties at the k-th distance: pysal's choice is arbitrary
        return
    wk = weights.KNN(pts, k=k)
    check(knn == pairs_of(wk, ids), f"{name}: {k} nearest neighbours equal pysal's",
          f"ours-only {sorted(knn - pairs_of(wk, ids))[:5]}, pysal-only "
          f"{sorted(pairs_of(wk, ids) - knn)[:5]}")


def bbox_centre(path):
    """The middle of the GeoJSON's lon/lat extent (the analyze default is
    the same idea; any centre gives an equal-area plane)."""
    with open(path, encoding="utf-8") as f:
        fc = json.load(f)
    xs, ys = [], []
    for ft in fc["features"]:
        g = ft["geometry"]
        for poly in ([g["coordinates"]] if g["type"] == "Polygon" else g["coordinates"]):
            for x, y in poly[0]:
                xs.append(x)
                ys.append(y)
    return (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2


def w_from_pairs(pairs, n):
    nb = {i: [] for i in range(n)}
    for a, b in sorted(pairs):
        nb[a].append(b)
    return weights.W(nb, id_order=list(range(n)), silence_warnings=True)


def check_grid(driver, path, id_field, name, cell_m, shape, k, centre=None):
    lon0, lat0 = centre or bbox_centre(path)
    rows = run_driver(driver, "grid", path, id_field, cell_m, shape, k, repr(lon0), repr(lat0))
    pts = np.array([[float(r[2]), float(r[3])] for r in rows if r[0] == "cell"])
    n = len(pts)
    d = float(next(r[1] for r in rows if r[0] == "band_m"))
    band = {(int(r[1]), int(r[2])) for r in rows if r[0] == "band"}
    knn = {(int(r[1]), int(r[2])) for r in rows if r[0] == "knn"}
    y = np.array([float(r[2]) for r in rows if r[0] == "value"])
    gi = np.array([float(r[2]) for r in rows if r[0] == "gi"])
    giknn = np.array([float(r[2]) for r in rows if r[0] == "giknn"])
    ids = list(range(n))
    label = f"{name}: {n} {shape} cells of {cell_m:g} m"
    wb = weights.DistanceBand(pts, threshold=d, binary=True, silence_warnings=True)
    theirs = pairs_of(wb, ids)
    ring = 6 if shape == "hex" else 8
    full = sum(1 for i in ids if len(wb.neighbors[i]) == ring)
    check(band == theirs, f"{label}: band {d:.1f} m, {len(band)} pairs equal DistanceBand's "
          f"({full} cells with all {ring} neighbours)",
          f"ours-only {sorted(band - theirs)[:5]}, pysal-only {sorted(theirs - band)[:5]}")
    # KNN: rows whose k-th neighbour is unique (distance gap > 1e-6 m)
    wk = weights.KNN(pts, k=k)
    dist, _ = cKDTree(pts).query(pts, k=min(k + 2, n))
    unique = [i for i in ids if dist[i][k + 1] - dist[i][k] > 1e-6] if n > k + 1 else ids
    ours_k = {i: set() for i in ids}
    for a, b in knn:
        ours_k[a].add(b)
    diff = [i for i in unique if ours_k[i] != set(wk.neighbors[i])]
    check(not diff, f"{label}: {k} nearest equal KNN's on {len(unique)} cells "
          f"({n - len(unique)} with a tie at the {k}-th distance left out)",
          "; ".join(f"{i}: ours {sorted(ours_k[i])}, pysal {sorted(wk.neighbors[i])}" for i in diff[:3]))
    z_band = esda_gistar(weights.W({i: list(wb.neighbors[i]) for i in ids}, id_order=ids,
                                   silence_warnings=True), y)
    z_knn = esda_gistar(w_from_pairs(knn, n), y)
    islands = np.array([not wb.neighbors[i] for i in ids])
    for tag, ours_z, ref, undefined in (("band", gi, z_band, islands),
                                        ("k nearest", giknn, z_knn, np.zeros(n, bool))):
        fin = np.isfinite(ours_z)
        worst = float(np.max(np.abs(ours_z[fin] - ref[fin]))) if fin.any() else 0.0
        check(worst <= TOL and np.array_equal(~fin, undefined),
              f"{label}: Gi* z over the {tag} within {TOL} of esda's formula on {int(fin.sum())} "
              f"cells, NAN on the {int(undefined.sum())} islands (largest difference {worst:.2e})",
              f"largest difference {worst:.3e}, {int((~fin).sum())} NAN")


def main():
    driver, root, workdir = sys.argv[1:4]
    check_districts(driver, os.path.join(root, "data/ru_regions.geojson"), "iso", "ru_regions")
    shared = os.path.join(root, "../shared/data")
    for f, field in (("ru_kemerovo_districts_osm.geojson", "id"),
                     ("ru_moscow_city_districts_osm.geojson", "id"),
                     ("ru_districts_osm_simplified.geojson", "id")):
        path = os.path.join(shared, f)
        if os.path.exists(path):
            check_districts(driver, path, field, f.replace(".geojson", ""))
        else:
            print(f"skipped {f}: not in ../shared/data")
    gx, gy = np.meshgrid(np.arange(12) * 1000.0, np.arange(9) * 1000.0)
    grid = np.column_stack([gx.ravel(), gy.ravel()]) + [500000.0, -300000.0]
    check_points(driver, workdir, "grid_rook", grid, 1000.0, 4, False)
    check_points(driver, workdir, "grid_queen", grid, 1500.0, 8, False)
    rnd = np.random.RandomState(20261122).uniform(-40000, 40000, size=(500, 2))
    check_points(driver, workdir, "random", rnd, 5000.0, 6, True)
    regions = os.path.join(root, "data/ru_regions.geojson")
    for shape in ("hex", "square"):
        check_grid(driver, regions, "iso", "ru_regions", 50000, shape, 6 if shape == "hex" else 8,
                   centre=(100.0, 60.0))
    kem = os.path.join(shared, "ru_kemerovo_districts_osm.geojson")
    if os.path.exists(kem):
        check_grid(driver, kem, "id", "ru_kemerovo_districts_osm", 2000, "hex", 6)
        check_grid(driver, kem, "id", "ru_kemerovo_districts_osm", 2000, "square", 8)
    else:
        print("skipped the grid on ru_kemerovo_districts_osm: not in ../shared/data")
    print(f"analytics: {results['passed']} passed, {results['failed']} failed")
    sys.exit(1 if results["failed"] else 0)


if __name__ == "__main__":
    main()
