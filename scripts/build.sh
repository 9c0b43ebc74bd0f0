#!/usr/bin/env bash
# Configures and builds sqz into build/ (Release). Extra arguments go to cmake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" > build.log 2>&1 || { cat build.log; exit 1; }
# Two jobs: libtorch translation units take ~2 GB of RAM each.
cmake --build build -j "${SQZ_BUILD_JOBS:-2}"
