"""Writes a complaint CSV with a planted surge, for `problemap analyze`:
    planted_surge.py REGIONS.geojson OUT.csv
Every region gets Poisson(15) road complaints a week for 14 weeks (from
Monday 2025-06-02), placed by district code (no coordinates), and RU-TUL
gets 80 more in the last week (a new surge).  Seeded: the same file every run."""
import csv, datetime, json, math, random, sys

rng = random.Random(2025)


def poisson(lam):
    # Knuth's method; fine for small rates
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


ids = sorted(f["properties"]["iso"] for f in json.load(open(sys.argv[1], encoding="utf-8"))["features"])
start = datetime.datetime(2025, 6, 2, 9, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=3)))
n = 0
with open(sys.argv[2], "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["id", "created_at", "topic", "district_code", "source"])
    for week in range(14):
        for d in ids:
            k = poisson(15) + (80 if d == "RU-TUL" and week == 13 else 0)
            for _ in range(k):
                t = start + datetime.timedelta(days=7 * week + rng.randrange(7), minutes=rng.randrange(600))
                n += 1
                w.writerow(["s%07d" % n, t.isoformat(), "roads", d, "portal"])
