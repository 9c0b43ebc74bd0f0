#!/usr/bin/env bash
# Fuzzes each loader (the libFuzzer targets of tests/fuzz, built with ASan + UBSan by
# scripts/sanitize.sh) for SECONDS each, from seeds written by tests/fuzz/make_seeds.py plus the
# corpus earlier runs grew (build-san/fuzz/corpus/). Prints a table (target, executions, corpus
# size, findings) and exits 1 when any target found a crash, leak, timeout or OOM; the inputs are
# left in build-san/fuzz/findings/<target>/ (add them to tests/fuzz/regressions/<target>/).
# Usage: scripts/fuzz.sh SECONDS [TARGET...]   (targets default to all; SQZ_FUZZ_RUNS=N stops a
# target after N executions when that comes first; SQZ_FUZZ_REPORT names the report file;
# SQZ_FUZZ_JOBS targets at a time, one per core by default)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}"
shift
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fuzz_safetensors fuzz_npy fuzz_gguf fuzz_tokenizer_files fuzz_encode fuzz_recipe fuzz_image_processor)
bash scripts/sanitize.sh --build-only >/dev/null
# Reports name files and lines: the symbolizer of the clang that built them.
export PATH="/usr/lib/llvm-19/bin:$PATH"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
python=python3
[ -x third_party/venv/bin/python ] && python=third_party/venv/bin/python
work=build-san/fuzz
rm -rf "$work/seeds"
"$python" tests/fuzz/make_seeds.py ../shared "$work/seeds" >/dev/null
report="${SQZ_FUZZ_REPORT:-$work/report.md}"
runs=()
[ -n "${SQZ_FUZZ_RUNS:-}" ] && runs=(-runs="$SQZ_FUZZ_RUNS")
mkdir -p "$work"
printf '| target | seconds | executions | exec/s | corpus | findings |\n|---|---|---|---|---|---|\n' >"$report"
# One target's run; its log holds libFuzzer's final stats.
fuzz_one() {
  local t="$1" corpus="$work/corpus/$1" findings="$work/findings/$1"
  rm -rf "$findings"
  mkdir -p "$corpus" "$findings" "$work/seeds/$t"
  build-san/tests/fuzz/"$t" "$corpus" "$work/seeds/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -artifact_prefix="$findings/" -print_final_stats=1 "${runs[@]}" >"$work/$t.log" 2>&1 || true
}
# Targets run SQZ_FUZZ_JOBS at a time (default: one per core), each on one core.
jobs="${SQZ_FUZZ_JOBS:-$(nproc)}"
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  fuzz_one "$t" &
done
wait
failed=0
for t in "${targets[@]}"; do
  corpus="$work/corpus/$t" findings="$work/findings/$t" log="$work/$t.log"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  found=$(find "$findings" -type f | wc -l)
  [ "$found" -gt 0 ] && failed=1 && echo "fuzz: $t found $found input(s) in $findings; see $log"
  printf '| %s | %s | %s | %s | %s | %s |\n' "$t" "$seconds" "${execs:-?}" "${rate:-?}" "$(find "$corpus" -type f | wc -l)" "$found" >>"$report"
done
cat "$report"
exit $failed
