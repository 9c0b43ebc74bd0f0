#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (ctest; labels unit, golden,
# e2e, kernel, reference; the `slow` label is excluded unless SQZ_SLOW=1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
# The GGUF checkpoint of models/pretrained.lock.json as an HF dir, by the sqz just built.
third_party/venv/bin/python scripts/fetch_models.py --sqz build/src/sqz
cd build
if [ "${SQZ_SLOW:-0}" = "1" ]; then
  ctest -j 2 --output-on-failure
else
  ctest -j 2 --output-on-failure -LE slow
fi
