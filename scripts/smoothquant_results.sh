#!/usr/bin/env bash
# SmoothQuant on the shipped GPT-2 teacher: W8 per-channel weights with static per-tensor
# activations at 8 and 6 bits, each with and without SmoothQuant (alpha 0.5), full dev split.
# Reports land in runs/quant/sq-*/report.md; docs/results/quantization.md collects them.
# latency.enabled=false: these tables compare quality; each recipe run alone benches every engine.
set -euo pipefail
cd "$(dirname "$0")/.."
SQZ=${SQZ:-build/src/sqz}
for abits in 8 6; do
  $SQZ compress --set latency.enabled=false --recipe recipes/quant/w8a8_gpt2_lm_books.yaml --overwrite "$@" \
    --set quantize.0.activation.bits=$abits --set out=runs/quant/sq-off-a$abits-gpt2-lm-books
  $SQZ compress --set latency.enabled=false --recipe recipes/quant/smoothquant_gpt2_lm_books.yaml --overwrite "$@" \
    --set quantize.0.activation.bits=$abits --set out=runs/quant/sq-on-a$abits-gpt2-lm-books
done
for d in runs/quant/sq-*-gpt2-lm-books; do
  python3 -c "import json,sys; r=json.load(open(sys.argv[1]+'/report.json')); print(sys.argv[1], r['dense']['eval']['perplexity'], r['compressed']['eval']['perplexity'])" "$d"
done
