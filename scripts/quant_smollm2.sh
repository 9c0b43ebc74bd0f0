#!/usr/bin/env bash
# Weight-only GPTQ against round-to-nearest (min-max) on SmolLM2-135M-Instruct (the GGUF import of
# models/pretrained.lock.json): W4 and W3, groups of 128 and 64 input columns (128 does not divide
# the 576-wide hidden size: each row of q/k/v/gate/up ends in a 64-wide group). Perplexity on the
# first EVAL_BATCHES (default 8) lm-books dev batches of 16 x 128 tokens. lm_head (tied to the
# embedding) stays float, as in recipes/quant/w4_gptq_gpt2_lm_books.yaml. Prints the table; run
# dirs are runs/quant/smollm2-w<bits>-g<group>-<method>/.
#   usage: [WEIGHT_GROUPS="128 64"] [EVAL_BATCHES=8] scripts/quant_smollm2.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SQZ=${SQZ:-build/src/sqz}
MODEL=models/pretrained/smollm2-135m-instruct
BATCHES=${EVAL_BATCHES:-8}
[ -f "$MODEL/config.json" ] || { echo "quant_smollm2: $MODEL is missing (bash scripts/install_deps.sh brings it)" >&2; exit 1; }
runs=()
for bits in 4 3; do
  for group in ${WEIGHT_GROUPS:-128 64}; do
    for method in minmax gptq; do
      out=runs/quant/smollm2-w$bits-g$group-$method
      $SQZ compress --recipe recipes/quant/w4_gptq_gpt2_lm_books.yaml --overwrite --set latency.enabled=false \
        --set train.model=$MODEL --set eval_batches=$BATCHES --set quantize.0.weight.bits=$bits \
        --set quantize.0.weight.group_size=$group --set quantize.0.weight.method=$method --set out=$out >/dev/null
      runs+=("$out")
    done
  done
done
python3 - "${runs[@]}" <<'PY'
import json, sys
import yaml
rows = [json.load(open(f"{d}/report.json")) | {"dir": d, "resolved": yaml.safe_load(open(f"{d}/recipe.yaml"))} for d in sys.argv[1:]]
dense = rows[0]["dense"]["eval"]
print(f"dense (Q4_1 weights in fp32): perplexity {dense['perplexity']:.2f}, bits/byte {dense['bits_per_byte']:.4f}, {dense['tokens']} tokens")
print("| bits | group | method | perplexity | change | bits/byte | run dir |\n|---|---|---|---|---|---|---|")
for r in rows:
    q = r["resolved"]["quantize"][0]["weight"]
    e = r["compressed"]["eval"]
    print(f"| W{q['bits']} | {q['group_size']} | {'GPTQ' if q['method'] == 'gptq' else 'RTN'} | {e['perplexity']:.2f} | "
          f"{100 * (e['perplexity'] / dense['perplexity'] - 1):+.1f}% | {e['bits_per_byte']:.4f} | `{r['dir']}` |")
PY
