#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (ctest; labels unit, golden,
# e2e; the `slow` label is excluded unless SQZ_SLOW=1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
cd build
if [ "${SQZ_SLOW:-0}" = "1" ]; then
  ctest -j 2 --output-on-failure
else
  ctest -j 2 --output-on-failure -LE slow
fi
