#!/usr/bin/env bash
# What `sqz export --format gguf` costs in perplexity: SmolLM2-135M-Instruct (models/pretrained,
# itself the import of a Q4_1 GGUF) exported as F16, Q8_0 and Q4_K, each file imported back by
# `sqz import-gguf` and evaluated on the first EVAL_BATCHES (default 8) lm-books dev batches of
# 16 x 128 tokens, as scripts/quant_smollm2.sh does. Prints a table; files in runs/gguf/.
#   usage: scripts/gguf_smollm2.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SQZ=${SQZ:-build/src/sqz}
MODEL=models/pretrained/smollm2-135m-instruct
BATCHES=${EVAL_BATCHES:-8}
[ -f "$MODEL/config.json" ] || { echo "gguf_smollm2: $MODEL is missing (bash scripts/install_deps.sh brings it)" >&2; exit 1; }
mkdir -p runs/gguf
evaluate() {  # NAME DIR: the eval JSON into runs/gguf/NAME.eval.json
  $SQZ eval "$2" --task lm-books --split ../shared/data/lm-books/dev.txt --max-length 128 --batch-size 16 \
    --max-batches "$BATCHES" 2>/dev/null | tail -1 > "runs/gguf/$1.eval.json"
}
evaluate model $MODEL
for type in f16 q8_0 q4_k; do
  $SQZ export $MODEL --format gguf --type $type --out runs/gguf/smollm2-$type.gguf --overwrite >/dev/null 2>&1
  $SQZ import-gguf runs/gguf/smollm2-$type.gguf --out runs/gguf/smollm2-$type --overwrite >/dev/null 2>&1
  evaluate $type runs/gguf/smollm2-$type
done
python3 - <<'PY'
import json, os
print("| weights | file MB | perplexity | bits/byte |\n|---|---|---|---|")
for name in ["model", "f16", "q8_0", "q4_k"]:
    e = json.load(open(f"runs/gguf/{name}.eval.json"))
    size = "-" if name == "model" else f"{os.path.getsize(f'runs/gguf/smollm2-{name}.gguf') / 1e6:.1f}"
    print(f"| {'model dir (fp32)' if name == 'model' else 'GGUF ' + name} | {size} | {e['perplexity']:.2f} | {e['bits_per_byte']:.4f} |")
PY
