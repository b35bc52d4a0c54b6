#!/usr/bin/env bash
# Runs kiln's fuzz targets briefly (scripts/dev.sh test does, after building them):
#   fuzz/run.sh [<build dir, default build-fuzz>] [<seconds per target, default 20>]
# 0 seconds: only replay the seeds and corpora (libFuzzer's own 0 would mean "no limit").
# Seeds are written afresh by kiln_fuzz_seeds (kiln-written files, and ../shared/fixtures when it
# is there); new inputs libFuzzer finds accumulate in <build>/fuzz/corpus/<target>; the inputs of
# bugs already fixed, fuzz/corpus/<target>/, run first each time. A crash, sanitizer report, leak,
# hang (-timeout) or allocation over -malloc_limit_mb fails the run with the input saved under
# <build>/fuzz/artifacts/ (replay: <build>/fuzz/kiln_fuzz_<target> <that file>).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build-fuzz}"
SECONDS_PER_TARGET="${2:-20}"
OUT="$BUILD/fuzz"
FIXTURES="$ROOT/../shared/fixtures"

# The targets' scratch files, removed even when one crashes.
export KILN_FUZZ_TMP
KILN_FUZZ_TMP="$(mktemp -d "$( [ -d /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/kiln_fuzz_run.XXXXXX")"
trap 'rm -rf "$KILN_FUZZ_TMP"' EXIT

rm -rf "$OUT/seeds"
if [ -d "$FIXTURES" ]; then
  "$OUT/kiln_fuzz_seeds" "$OUT/seeds" "$FIXTURES" >/dev/null
else
  "$OUT/kiln_fuzz_seeds" "$OUT/seeds" >/dev/null
fi
mkdir -p "$OUT/artifacts"

status=0
for target in bundle_reader checkpoint_state object_graph saved_model event_reader; do
  dirs=("$OUT/corpus/$target" "$OUT/seeds/$target")
  mkdir -p "${dirs[0]}"
  [ -d "$ROOT/fuzz/corpus/$target" ] && dirs+=("$ROOT/fuzz/corpus/$target")
  extra=()
  if [ "$SECONDS_PER_TARGET" -gt 0 ]; then extra+=("-max_total_time=$SECONDS_PER_TARGET"); else extra+=("-runs=0"); fi
  [ -f "$ROOT/fuzz/$target.dict" ] && extra+=("-dict=$ROOT/fuzz/$target.dict")
  log="$OUT/$target.log"
  # A smaller ASan quarantine than the 256 MB default: every input allocates afresh, and the
  # page faults of ever-new memory cost more than the parsing. -malloc_limit_mb: no input here
  # (at most 32 KiB) justifies a large buffer, so one means a size field was trusted.
  if ASAN_OPTIONS=quarantine_size_mb=32:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    timeout $((SECONDS_PER_TARGET + 120)) "$OUT/kiln_fuzz_$target" -timeout=10 -rss_limit_mb=2048 \
    -malloc_limit_mb=128 -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$target-" "${extra[@]}" \
    "${dirs[@]}" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    inputs=$(find "$OUT/corpus/$target" -type f | wc -l)
    printf '%-18s %9s executions in %s s (%s/s), corpus %s inputs\n' "$target" "$runs" \
      "$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log")" "$rate" "$inputs"
  else
    echo "fuzz target $target FAILED (log: $log):" >&2
    grep -v -e '^#' -e 'NEW_FUNC' -e '# Uses:' "$log" | tail -60 >&2
    status=1
  fi
done
exit $status
