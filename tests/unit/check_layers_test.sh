#!/usr/bin/env bash
# scripts/check_layers.py must fail on each kind of violation and pass a clean tree.
set -euo pipefail
check="$(dirname "$0")/../../scripts/check_layers.py"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mk() { mkdir -p "$(dirname "$tmp/$1")"; printf '%s\n' "$2" > "$tmp/$1"; }
expect_fail() {  # name, file, content, message fragment
  rm -rf "$tmp/src"; mk src/core/ok.h '#pragma once'; mk "src/$2" "$3"
  if out=$(python3 "$check" "$tmp/src" 2>&1); then echo "FAIL: $1 passed the check"; exit 1; fi
  grep -qF "$4" <<<"$out" || { echo "FAIL: $1: expected '$4' in:"; echo "$out"; exit 1; }
  echo "ok: $1"
}
expect_fail "upward include" train/loop.cc '#include "eval/latency.h"' "'train' includes 'eval/latency.h' from a higher layer"
expect_fail "runtime reaching into compress" runtime/op.cc '#include "compress/quant/export.h"' "'runtime' must not include 'compress'"
expect_fail "torch in core" core/t.cc '#include <torch/torch.h>' "'core' must not include torch"
expect_fail "unknown folder" misc/x.cc '#include "core/ok.h"' "folder 'misc' is not in the layer order"
expect_fail "long file" io/big.cc "$(seq 1 501 | sed 's#^#// #')" "501 lines"
rm -rf "$tmp/src"; mk src/core/ok.h '#pragma once'; mk src/cli/main.cc $'#include "core/ok.h"\n#include "pipeline/compress_run.h"\n#include <vector>'
python3 "$check" "$tmp/src" > /dev/null || { echo "FAIL: a clean tree was refused"; exit 1; }
echo "ok: a clean tree passes"
