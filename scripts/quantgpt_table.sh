#!/usr/bin/env bash
# QuantGPT replication on the decoder teacher: W2 / W4 / W8 (A8) for PACT, LSQ and QuantGPT, the
# same recipe and budget for each (steps, lr, data, logit distillation); only QuantGPT adds the
# contrastive term. Prints a markdown table of dev perplexity (first 40 dev batches) at the end.
# latency.enabled=false: these tables compare quality; each recipe run alone benches every engine.
set -euo pipefail
cd "$(dirname "$0")/.."
SQZ=${SQZ:-build/src/sqz}
EXTRA=("$@")  # e.g. --set train.threads=1
for bits in 2 4 8; do
  for method in pact lsq quantgpt; do
    ctr=0; [ "$method" = quantgpt ] && ctr=0.1
    $SQZ compress --set latency.enabled=false --recipe recipes/quant/quantgpt_gpt2_lm_books.yaml --overwrite --set quantize.0.weight.bits=$bits \
      --set quantize.0.weight.method=$method --set distill.contrastive_weight=$ctr \
      --set out=runs/quant/qat-$method-w$bits-gpt2-lm-books "${EXTRA[@]}"
  done
done
echo "| bits | PACT | LSQ | QuantGPT | dense |"
echo "|---|---|---|---|---|"
for bits in 2 4 8; do
  row="| W$bits A8 |"
  for method in pact lsq quantgpt; do
    row="$row $(python3 -c "import json;print('%.2f'%json.load(open('runs/quant/qat-$method-w$bits-gpt2-lm-books/report.json'))['compressed']['eval']['perplexity'])") |"
  done
  row="$row $(python3 -c "import json;print('%.2f'%json.load(open('runs/quant/qat-pact-w$bits-gpt2-lm-books/report.json'))['dense']['eval']['perplexity'])") |"
  echo "$row"
done
