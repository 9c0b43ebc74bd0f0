#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (ctest; labels unit, golden,
# e2e, kernel, reference; the `slow` label is excluded unless SQZ_SLOW=1), then the sanitizer
# build's tests and a fuzzing smoke of every loader (scripts/sanitize.sh; SQZ_FUZZ_SECONDS per
# target, 20 by default), then the torch-linked unit tests under gcc's ASan + UBSan
# (scripts/sanitize.sh --torch).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
# The GGUF checkpoint of models/pretrained.lock.json as an HF dir, by the sqz just built.
third_party/venv/bin/python scripts/fetch_models.py --sqz build/src/sqz
if [ "${SQZ_SLOW:-0}" = "1" ]; then
  ctest --test-dir build -j 2 --output-on-failure
else
  ctest --test-dir build -j 2 --output-on-failure -LE slow
fi
SQZ_FUZZ_SECONDS="${SQZ_FUZZ_SECONDS:-20}" bash scripts/sanitize.sh
bash scripts/sanitize.sh --torch
