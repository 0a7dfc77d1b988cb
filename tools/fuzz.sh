#!/bin/sh
# Fuzzing the readers (tests/fuzz/fuzz_*.c) with clang's libFuzzer.
#
#   tools/fuzz.sh [TARGET...]      build build-fuzz/ (clang, SAN=fuzz) and run each
#                                  target (default: all) for PM_FUZZ_SECONDS (600),
#                                  PM_FUZZ_JOBS (1) at a time; `make fuzz`
#   tools/fuzz.sh --regress DIR    replay the seed corpora and the regression
#                                  files through the targets built in DIR (without
#                                  libFuzzer); `make test-fuzz-regress`
#
# Each run starts from the committed seeds (tests/fuzz/corpus/<target>/) plus
# what earlier runs found (build-fuzz/corpus/<target>/, not committed).  A
# crash, leak, timeout or out-of-memory input is copied to
# tests/fuzz/regress/<target>/ (commit it: `make test` replays it from then
# on) and the run fails.
set -u
FUZZ=tests/fuzz
SUPP="$(pwd)/tools/lsan.supp"

# max_len and dictionary per target.
target_opts() {
    case "$1" in
    boundaries)     echo "-max_len=65536 -dict=$FUZZ/json.dict" ;;
    geojson_points) echo "-max_len=32768 -dict=$FUZZ/json.dict" ;;
    ndjson|open311|topics) echo "-max_len=16384 -dict=$FUZZ/json.dict" ;;
    mapping)        echo "-max_len=8192 -dict=$FUZZ/json.dict" ;;
    csv)            echo "-max_len=16384 -dict=$FUZZ/csv.dict" ;;
    time)           echo "-max_len=256 -dict=$FUZZ/time.dict" ;;
    tile_path)      echo "-max_len=512" ;;
    cube)           echo "-max_len=8192" ;;
    dataset)        echo "-max_len=12288" ;;   # a 4096-byte header, then the sections
    *)              echo "-max_len=4096" ;;
    esac
}

if [ "${1:-}" = "--regress" ]; then
    dir=$2 failed=0 files=0
    for bin in "$dir"/fuzz_*; do
        t=${bin##*/fuzz_}
        set --
        for f in "$FUZZ/corpus/$t"/* "$FUZZ/regress/$t"/*; do
            [ -f "$f" ] && set -- "$@" "$f"
        done
        [ $# -eq 0 ] && continue
        files=$((files + $#))
        if ! LSAN_OPTIONS="suppressions=$SUPP" "$bin" "$@" >/dev/null 2>"$dir/$t.log"; then
            echo "FAILED: fuzz regression $t (see $dir/$t.log)" >&2
            sed 's/^/     /' "$dir/$t.log" | head -30 >&2
            failed=$((failed + 1))
        fi
    done
    echo "fuzz regressions: $files inputs replayed, $failed target(s) failed"
    [ "$failed" -eq 0 ]
    exit
fi

if [ "${1:-}" = "--one" ]; then   # one target (run by xargs below)
    t=$2 secs=${PM_FUZZ_SECONDS:-600}
    work=build-fuzz/corpus/$t art=build-fuzz/artifacts/$t
    mkdir -p "$work" "$art"
    # shellcheck disable=SC2046
    LSAN_OPTIONS="suppressions=$SUPP" ASAN_OPTIONS="detect_leaks=1" \
        build-fuzz/fuzz/fuzz_$t $(target_opts "$t") -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$art/" \
        "$work" "$FUZZ/corpus/$t" >"build-fuzz/fuzz-$t.log" 2>&1
    rc=$?
    found=0
    for f in "$art"/crash-* "$art"/leak-* "$art"/timeout-* "$art"/oom-* "$art"/slow-unit-*; do
        [ -f "$f" ] || continue
        mkdir -p "$FUZZ/regress/$t"
        cp "$f" "$FUZZ/regress/$t/" && rm -f "$f"
        found=$((found + 1))
    done
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "build-fuzz/fuzz-$t.log")
    if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
        echo "FAILED: fuzz $t (exit $rc, $found input(s) copied to $FUZZ/regress/$t/;" \
            "log build-fuzz/fuzz-$t.log)"
        grep -m1 -A12 'ERROR: \|check failed' "build-fuzz/fuzz-$t.log" | sed 's/^/     /'
        exit 1
    fi
    echo "ok   fuzz $t: ${execs:-?} inputs in ${secs} s"
    exit 0
fi

CC_FUZZ=${PM_FUZZ_CC:-clang}
command -v "$CC_FUZZ" >/dev/null 2>&1 || { echo "fuzz: $CC_FUZZ not found (apt-get install clang)" >&2; exit 1; }
targets="$*"
[ -n "$targets" ] || targets=$(for f in "$FUZZ"/fuzz_*.c; do b=${f##*/fuzz_}; echo "${b%.c}"; done)
bins=$(for t in $targets; do echo "build-fuzz/fuzz/fuzz_$t"; done)
mkdir -p build-fuzz
# shellcheck disable=SC2086
make --no-print-directory -j"${PM_FUZZ_JOBS:-1}" BUILD=build-fuzz CC="$CC_FUZZ" SAN=fuzz \
    CFLAGS="-O1 -g" $bins >build-fuzz/build.log 2>&1 || { tail -20 build-fuzz/build.log >&2; exit 1; }
# shellcheck disable=SC2086
printf '%s\n' $targets | xargs -P "${PM_FUZZ_JOBS:-1}" -I{} sh "$0" --one {}
