#!/bin/sh
# tools/valgrind.sh — the unit suites and a few CLI runs under valgrind
# memcheck: zero errors, zero definite or indirect leaks (`make check-valgrind`).
#   tools/valgrind.sh [BUILD]        (default: build; needs BUILD/tests/test_* and
#                                     BUILD/problemap, i.e. `make all` + the test binaries)
# Run from the repository root.  Exits non-zero when any run has an error.
#
# Valgrind is 20-50x slower than a normal run, so, to stay near 10 minutes
# on 2 cores:
# - the suites run from a shadow copy of the repository root (symlinks in a
#   temporary directory) where ../shared/data does not exist: every
#   real-data tier skips itself cleanly (the ASan run covers those);
# - PM_HEAT_BENCH_N=0 skips test_heat's timings, PM_DB_ORACLE_N=2000 shrinks
#   test_db's 1 M-point PostGIS oracle, PM_PIPELINE_FAIL_STEP=23 tries every
#   23rd allocation of test_pipeline's failure loop (every one under ASan);
# - the slowest tests (SKIP below: brute-force oracles on large synthetic
#   scenes, OCR of reports) are left out: their suites run test by test
#   (cmocka's name filter, argv[1]) without them;
# - test_db runs only when PM_VALGRIND_DB=1 (it needs a PostGIS cluster);
# - two suites run at once (PM_VALGRIND_JOBS).
# Known noise inside system libraries is suppressed by tools/valgrind.supp
# (each entry says why).  Logs: $PM_VALGRIND_LOGS (default /tmp/pm_valgrind.*).
BUILD=${1:-build}
ROOT=$(pwd)
JOBS=${PM_VALGRIND_JOBS:-2}
[ -x "$BUILD/problemap" ] || { echo "valgrind.sh: $BUILD/problemap is not built (make all)" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed" >&2; exit 2; }
LOGS=${PM_VALGRIND_LOGS:-$(mktemp -d /tmp/pm_valgrind.XXXXXX)}
mkdir -p "$LOGS"
SHADOW=$(mktemp -d /tmp/pm_vgroot.XXXXXX)
trap 'rm -rf "$SHADOW"' EXIT
trap 'exit 130' INT TERM
mkdir "$SHADOW/root"
for f in "$ROOT"/* "$ROOT"/.[!.]*; do
    [ -e "$f" ] && ln -s "$f" "$SHADOW/root/$(basename "$f")"
done

VG="valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect --num-callers=30 --track-origins=no \
    --suppressions=$ROOT/tools/valgrind.supp"
export PM_HEAT_BENCH_N=0 PM_DB_ORACLE_N=${PM_DB_ORACLE_N:-2000} PM_PIPELINE_FAIL_STEP=${PM_PIPELINE_FAIL_STEP:-23}
export PROBLEMAP_DATA="$ROOT/data"

# suite:glob of the tests left out (each takes seconds in a normal build).
SKIP="test_locate:!interior_point_is_inside test_locate:!point_in_hole_goes_to_enclave
      test_locate:!snap_distance_is_geodesic test_locate:!no_coordinates_placed_by_code
      test_locate:!batch_error_names_first_bad_complaint
      test_heat:pyramid_* test_heat:vmax_is_99th_* test_heat:density_equals_brute_force_sum
      test_heat:same_density_same_colour_on_two_tiles
      test_report:!test_png_has_the_requested_size test_report:!test_pdf_is_valid_and_converts
      test_report:!test_svg_is_svg test_report:!test_allocation_failures_are_clean
      test_intake:test_number_syntax_accepted"
# test_number_syntax_accepted checks decimal parsing to the last bit, which
# valgrind cannot reproduce: it runs x87 long double arithmetic at 64 bits
# (valgrind's documented limitation), so 55.35470000000000000001 reads as
# 55.35470000000003 under it only.
# (suite:!name keeps only the names so marked: every report test draws whole
# pages, 25-45 s each under valgrind, and every locate test builds its
# locator, ~20 s, so a few stand for the rest; the locator's allocation
# failures are covered under valgrind by test_pipeline's loop.)

# The tests of suite $1 not in SKIP, or nothing when none is skipped.  Names
# are read from the suite's source: cmocka_unit_test*(name) or T(name).
kept_tests() {
    case "$SKIP" in *"$1:"*) ;; *) return ;; esac
    only=0
    case "$SKIP" in *"$1:!"*) only=1 ;; esac
    for n in $(grep -oE '(cmocka_unit_test[a-z_]*|\<T)\([a-z0-9_]+' "tests/unit/$1.c" | sed 's/.*(//'); do
        grep -q "void $n(" "tests/unit/$1.c" || continue   # a macro's parameter, not a test
        skip=$only
        for g in $SKIP; do
            case "$g" in
            "$1:!$n") skip=0 ;;
            "$1:!"*) ;;
            "$1:"*) case "$n" in ${g#*:}) skip=1 ;; esac ;;
            esac
        done
        [ $skip = 1 ] || echo "$n"
    done
}

# One run: name, then the command (run in the shadow root).  Writes
# $LOGS/name.log and $LOGS/name.rc.
vg_one() {
    name=$1; shift
    start=$(date +%s)
    (cd "$SHADOW/root" && exec $VG "$@") >"$LOGS/$name.log" 2>&1
    echo $? >"$LOGS/$name.rc"
    echo "  $name: exit $(cat "$LOGS/$name.rc"), $(($(date +%s) - start)) s"
}

# A suite test by test: name, binary, test names (cmocka's argv[1] filter).
vg_tests() {
    name=$1 bin=$2; shift 2
    start=$(date +%s) rc=0
    : >"$LOGS/$name.log"
    for n in "$@"; do
        t0=$(date +%s)
        (cd "$SHADOW/root" && $VG "$bin" "$n") >>"$LOGS/$name.log" 2>&1 || rc=$?
        echo "($n: $(($(date +%s) - t0)) s)" >>"$LOGS/$name.log"
    done
    echo $rc >"$LOGS/$name.rc"
    echo "  $name: exit $rc, $(($(date +%s) - start)) s ($# tests one by one; slow ones left out)"
}

# Runs the queued jobs (a function and its arguments) JOBS at a time.
running=0
queue() {
    "$@" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then wait; running=0; fi
}

echo "valgrind memcheck: unit suites (logs in $LOGS)"
# The slowest first.
for t in test_report test_pipeline test_locate test_heat test_choro test_cube_out test_topics \
         $(cd "$BUILD/tests" && ls test_* | sort); do
    case " $seen " in *" $t "*) continue ;; esac
    seen="$seen $t"
    case " ${PM_VALGRIND_ONLY:-$t} " in *" $t "*) ;; *) continue ;; esac
    [ -x "$BUILD/tests/$t" ] || { echo "  $t: not built, skipped"; continue; }
    if [ "$t" = test_db ]; then
        [ "${PM_VALGRIND_DB:-0}" = 1 ] || { echo "  test_db: skipped (PM_VALGRIND_DB=1 runs it on a PostGIS cluster)"; continue; }
        printf '#!/bin/sh\nexec %s %s "$@"\n' "$VG" "$ROOT/$BUILD/tests/test_db" >"$SHADOW/test_db_vg"
        chmod +x "$SHADOW/test_db_vg"
        queue vg_one test_db sh "$ROOT/tests/pg/run.sh" "$SHADOW/test_db_vg"
        continue
    fi
    kept=$(kept_tests "$t")
    if [ -n "$kept" ]; then
        queue vg_tests "$t" "$ROOT/$BUILD/tests/$t" $kept
    else
        queue vg_one "$t" "$ROOT/$BUILD/tests/$t"
    fi
done
wait; running=0

if [ -n "${PM_VALGRIND_ONLY:-}" ]; then   # PM_VALGRIND_ONLY="test_a test_b": those suites only
    failed=0
    for rc in "$LOGS"/*.rc; do [ "$(cat "$rc")" = 0 ] || { failed=1; echo "FAIL $(basename "$rc" .rc)"; }; done
    exit $failed
fi
echo "valgrind memcheck: CLI runs"
BIN="$ROOT/$BUILD/problemap"
W="$SHADOW/cli"; mkdir -p "$W"
# The pipeline test's 9 districts (all of Russia's regions take minutes under valgrind);
# the input is made by a normal (not valgrind) run: 2000 points.
B="--boundaries $ROOT/tests/fixtures/pipeline/boundaries.geojson"
"$BIN" generate $B --n 2000 --seed 3 --output "$W/gen.csv" 2>"$LOGS/generate.log" ||
    { echo "  generate failed: $LOGS/generate.log"; exit 1; }
queue vg_one cli_geocode "$BIN" geocode -q $B --complaints "$W/gen.csv" --output "$W/p.csv" \
    --rejects "$W/r.csv" --summary "$W/s.json" --threads 2
queue vg_one cli_cube "$BIN" cube -q $B --complaints "$W/gen.csv" --cube "$W/c.pmc" --period week \
    --geojson "$W/d.geojson" --csv "$W/d.csv" --summary "$W/cs.json"
wait; running=0
queue vg_one cli_export_report "$BIN" export -q $B --cube "$W/c.pmc" --report "$W/report.pdf"
queue vg_one cli_tiles "$BIN" tiles -q $B --complaints "$W/gen.csv" --out "$W/tiles" \
    --mbtiles "$W/t.mbtiles" --min-zoom 3 --max-zoom 4
wait; running=0
queue vg_one cli_analyze "$BIN" analyze -q $B --complaints "$W/gen.csv" --hotspots "$W/h.geojson" --forecast "$W/f.csv" --alerts "$W/a.csv"
queue vg_one cli_bad_input "$BIN" geocode -q $B --complaints "$ROOT/tests/fixtures/records/quoted.csv" \
    --output "$W/bad.csv"
wait

# Expected exit codes: 0 everywhere except cli_bad_input (any non-99: a
# clean error is fine, valgrind's 99 is not).
failed=0; n=0
for rc in "$LOGS"/*.rc; do
    name=$(basename "$rc" .rc); code=$(cat "$rc"); n=$((n + 1))
    case "$name:$code" in
    *:0) ;;
    cli_bad_input:99) failed=$((failed + 1)); echo "FAIL $name: memcheck errors" ;;
    cli_bad_input:*) ;;
    *:99) failed=$((failed + 1)); echo "FAIL $name: memcheck errors (see $LOGS/$name.log)" ;;
    *) failed=$((failed + 1)); echo "FAIL $name: exit $code (see $LOGS/$name.log)" ;;
    esac
done
grep -l "definitely lost\|indirectly lost\|Invalid \(read\|write\|free\)\|uninitialised" "$LOGS"/*.log 2>/dev/null |
    sed 's/^/     memcheck report in /'
echo "valgrind: $((n - failed)) of $n runs clean"
[ "$failed" -eq 0 ]
