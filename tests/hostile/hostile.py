"""hostile.py BIN — runs problemap over the hostile-input catalogue (gen.py)
and over every complaints fixture, and checks for each: the documented exit
status; for a failure, a message naming the file and the line/column or
feature; for a success, the rejects (line and reason), the good records kept
and nothing lost: read = accepted + rejected, the rejects file holds the
rejected, and the accepted are the cube's complaints (the sum of the
per-district counts) plus those outside every district.
PM_HOSTILE_FAST=1 skips the two big boundary cases (1 M vertices, 100 k
polygons), e.g. under ASan.  Python 3 standard library only."""
import csv
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen  # noqa: E402

BIN = os.path.abspath(sys.argv[1])
FAST = os.environ.get("PM_HOSTILE_FAST") == "1"
csv.field_size_limit(1 << 30)
passed = failed = 0


def run(args, cwd):
    p = subprocess.run([BIN] + args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode, p.stderr.decode("utf-8", "replace")


def read_rejects(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def cube_counts(d, complaints, extra):
    """Runs `cube` over the three squares; returns (exit, stderr, facts)."""
    for f in ("d.csv", "r.csv"):
        if os.path.exists(os.path.join(d, f)):
            os.remove(os.path.join(d, f))
    code, err = run(["cube", "--boundaries", "three.geojson", "--complaints", complaints,
                     "--period", "day", "--csv", "d.csv", "--rejects", "r.csv",
                     "--no-topology-check"] + extra, d)
    return code, err


def nothing_lost(d, err, want_rejects=None, want_accepted=None):
    """The checks of a run that completed; returns a list of problems."""
    bad = []
    m = re.search(r"read (\d+), accepted (\d+)(?: \((\d+) into the cube[^)]*\))?, rejected (\d+)",
                  err)
    h = re.search(r"the cube now holds (\d+) complaints", err)
    if not m or not h:
        return ["no counts on stderr"]
    read, acc, into, rej = (int(x) if x is not None else None for x in m.groups())
    held = int(h.group(1))
    into = acc if into is None else into
    if read != acc + rej:
        bad.append("read %d != accepted %d + rejected %d" % (read, acc, rej))
    rows = read_rejects(os.path.join(d, "r.csv"))
    if len(rows) != rej:
        bad.append("rejects file has %d rows, stderr says %d" % (len(rows), rej))
    with open(os.path.join(d, "d.csv"), newline="", encoding="utf-8") as f:
        cells = sum(int(r["complaints"]) for r in csv.DictReader(f))
    if cells != held or held != into or into > acc:
        bad.append("cube holds %d (per district %d), %d went in, %d accepted"
                   % (held, cells, into, acc))
    if want_accepted is not None and acc != want_accepted:
        bad.append("accepted %d, want %d" % (acc, want_accepted))
    by_line = {}
    for r in rows:
        if not r["reason"]:
            bad.append("reject without a reason on line %s" % r["line"])
        by_line.setdefault(int(r["line"]), []).append(r["reason"])
    for line, why in (want_rejects or {}).items():
        if not any(re.search(why, x) for x in by_line.get(line, [])):
            bad.append("line %d: want a reject matching %r, got %r" % (line, why,
                                                                       by_line.get(line)))
    return bad


def report(name, problems, err, secs):
    global passed, failed
    if problems:
        failed += 1
        print("FAIL hostile: %s" % name)
        for p in problems:
            print("     " + p)
        for line in err.strip().splitlines()[-6:]:
            print("     | " + line[:300])
    else:
        passed += 1
        print("ok   hostile: %s (%.1f s)" % (name, secs))


def check_case(d, c):
    t0 = time.time()
    if c["kind"] == "complaints":
        extra = ["--format", c["format"]] if c["format"] else []
        code, err = cube_counts(d, c["file"], extra)
    elif c["kind"] == "boundaries":
        code, err = run(["geocode", "--boundaries", c["file"], "--complaints", "good.csv",
                         "--output", "p.csv", "--rejects", "r.csv", "--summary", "s.json"] + c["args"], d)
    else:
        opt = "--topics" if c["kind"] == "topics" else "--mapping"
        code, err = run(["cube", "--boundaries", "three.geojson", "--complaints", "good.csv",
                         opt, c["file"], "--csv", "d.csv"], d)
    problems = []
    if code != c["exit"]:
        problems.append("exit %d, want %d" % (code, c["exit"]))
    if "Sanitizer" in err or "runtime error" in err:
        problems.append("sanitizer report")
    if c["message"] and not re.search(c["message"], err):
        problems.append("stderr does not match %r" % c["message"])
    if code == 0 and c["kind"] == "complaints":
        problems += nothing_lost(d, err, c["rejects"], c["accepted"])
    if code == 0 and c["kind"] == "boundaries":
        m = re.search(r"(\d+) features, (\d+) districts in \d+ regions?, \d+ repaired, (\d+) rejected",
                      err)
        if not m or int(m.group(1)) != int(m.group(2)) + int(m.group(3)):
            problems.append("features != districts + rejected")
        s = json.load(open(os.path.join(d, "s.json")))
        if s["read"] != s["accepted"] + s["rejected"] or s["placed"] != c["accepted"]:
            problems.append("complaints: %r" % s)
    report(c["name"], problems, err, time.time() - t0)


def fixtures(d):
    """Every complaints file among the fixtures: nothing lost."""
    root = os.getcwd()
    files = sorted(glob.glob("tests/fixtures/records/*") + glob.glob("tests/fixtures/intake/*")
                   + glob.glob("tests/e2e/cases/*/complaints.csv"))
    for f in files:
        if f.endswith("_mapping.json") or f.endswith("ru_region.json"):
            continue
        extra = []
        if f.endswith("open311.json") and "intake" in f:
            extra = ["--mapping", os.path.join(root, "tests/fixtures/intake/open311_mapping.json")]
        if f.endswith("complaints_lines.json"):
            extra = ["--format", "ndjson"]
        t0 = time.time()
        code, err = cube_counts(d, os.path.join(root, f), extra)
        problems = ["exit %d" % code] if code != 0 else nothing_lost(d, err)
        report("fixture %s" % f, problems, err, time.time() - t0)


def main():
    with tempfile.TemporaryDirectory(prefix="pm_hostile.") as d:
        for c in gen.cases(d):
            if c["slow"] and FAST:
                print("skip hostile: %s (PM_HOSTILE_FAST=1)" % c["name"])
                continue
            check_case(d, c)
        fixtures(d)
    print("hostile: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
