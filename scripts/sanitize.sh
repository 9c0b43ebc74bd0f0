#!/usr/bin/env bash
# The sanitizer build (issue 23): clang-19 with AddressSanitizer + UndefinedBehaviorSanitizer and
# libFuzzer, over what needs no torch (kernels, file formats, tokenizers, recipe reader) in
# build-san/. Builds it, runs its tests (kernel and format tests, every fuzz target replaying its
# regression inputs), then fuzzes each target for SQZ_FUZZ_SECONDS seconds (default 30; 0 skips).
# Usage: scripts/sanitize.sh [--build-only | --torch]
# --torch: instead, the torch-linked unit tests (every model loader, the loader mutations, the
# runtime engines, compression) built by gcc with ASan + UBSan in build-asan/ and run in one
# process (about 10 minutes to build on 2 cores, 45 s to run; scripts/test.sh runs it).
set -euo pipefail
cd "$(dirname "$0")/.."
# Reports name files and lines: the symbolizer of the clang that built them.
export PATH="/usr/lib/llvm-19/bin:$PATH"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
if [ "${1:-}" = "--torch" ]; then
  if [ ! -f build-asan/build.ninja ]; then
    cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
      -DSQZ_SANITIZE=address,undefined >/dev/null
  fi
  cmake --build build-asan -j "${SQZ_JOBS:-2}" --target sqz_unit_tests
  exec build-asan/tests/sqz_unit_tests --gtest_brief=1
fi
if [ ! -f build-san/build.ninja ]; then
  CC=clang-19 CXX=clang++-19 cmake -S . -B build-san -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSQZ_TORCH_FREE_ONLY=ON -DSQZ_SANITIZE=address,undefined -DSQZ_FUZZ=ON >/dev/null
fi
cmake --build build-san -j "${SQZ_JOBS:-2}"
[ "${1:-}" = "--build-only" ] && exit 0
ctest --test-dir build-san -j 2 --output-on-failure
seconds="${SQZ_FUZZ_SECONDS:-30}"
[ "$seconds" -gt 0 ] && bash scripts/fuzz.sh "$seconds"
exit 0
