#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ (a separate SwiftPM package that depends on this one by path) and runs each
# for FUZZ_SECONDS (default 20) from its committed seed corpus fuzz/corpus/<target>/. Fails on any crash, trap,
# sanitizer report, timeout or out-of-memory, and prints executions per second and total executions per target.
#   FUZZ_SECONDS=300 scripts/fuzz.sh            a longer campaign (see docs/fuzzing.md)
#   FUZZ_TARGETS="FuzzConfig" scripts/fuzz.sh   only some targets
# New inputs found go to fuzz/.build/corpus/<target>/ (git-ignored); crashing inputs to fuzz/.build/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-20}"
# Swift's own crash backtracer trips AddressSanitizer while it reads the crashed process; libFuzzer reports anyway.
export SWIFT_BACKTRACE=enable=no
scratch=fuzz/.build
targets="${FUZZ_TARGETS:-$(cd fuzz/Sources && ls -d Fuzz* | tr '\n' ' ')}"

mkdir -p "$scratch"
echo "building fuzz targets ($targets) with -sanitize=fuzzer,address"
# ld.gold warns about every ASan symbol it cannot export; those lines are noise.
if ! swift build -c debug --package-path fuzz --scratch-path "$scratch" \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library >"$scratch/build.log" 2>&1; then
    grep -v "ld.gold: warning: Cannot export local symbol" "$scratch/build.log" | tail -40
    echo "fuzz build failed" >&2
    exit 1
fi
bin="$(swift build -c debug --package-path fuzz --scratch-path "$scratch" --show-bin-path)"

failed=0
for target in $targets; do
    work="$scratch/corpus/$target"
    artifacts="$scratch/artifacts/$target"
    mkdir -p "$work" "$artifacts"
    log="$scratch/$target.log"
    set +e
    "$bin/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "$work" "fuzz/corpus/$target" >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    if [ "$rc" -ne 0 ]; then
        failed=1
        echo "$target: FAILED (exit $rc) after ${execs:-?} executions; crashing input in $artifacts/"
        grep -E "ERROR|Fatal error|deadly signal|SUMMARY|precondition|out-of-memory|timeout" "$log" | head -10 || true
        ls "$artifacts" | head -5
    else
        echo "$target: ok, ${seconds}s, ${execs:-?} executions, ${rate:-?} exec/s, coverage ${cov:-?}, peak RSS ${rss:-?} MB"
    fi
done
exit "$failed"
