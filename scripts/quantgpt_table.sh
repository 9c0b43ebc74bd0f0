#!/usr/bin/env bash
# QuantGPT replication on a decoder: PACT, LSQ and QuantGPT at each weight width (A8), the same
# recipe and budget for each (steps, lr, data, logit distillation); only QuantGPT adds the
# contrastive term. Prints a markdown table of dev perplexity (the recipe's eval batches) at the end.
# MODEL=gpt2 (default): the from-scratch GPT-2 teacher, W2/W4/W8; MODEL=smollm2: the pretrained
# SmolLM2-135M-Instruct, W2/W4 (BITS overrides the widths).
# latency.enabled=false: these tables compare quality; each recipe run alone benches every engine.
set -euo pipefail
cd "$(dirname "$0")/.."
SQZ=${SQZ:-build/src/sqz}
MODEL=${MODEL:-gpt2}
case "$MODEL" in
  gpt2) default_bits="2 4 8" ;;
  smollm2) default_bits="2 4" ;;
  *) echo "MODEL must be gpt2 or smollm2, got '$MODEL'" >&2; exit 2 ;;
esac
BITS=${BITS:-$default_bits}
RECIPE=recipes/quant/quantgpt_${MODEL}_lm_books.yaml
EXTRA=("$@")  # e.g. --set train.threads=1
for bits in $BITS; do
  for method in pact lsq quantgpt; do
    ctr=0; [ "$method" = quantgpt ] && ctr=0.1
    $SQZ compress --set latency.enabled=false --recipe $RECIPE --overwrite --set quantize.0.weight.bits=$bits \
      --set quantize.0.weight.method=$method --set distill.contrastive_weight=$ctr \
      --set out=runs/quant/qat-$method-w$bits-$MODEL-lm-books "${EXTRA[@]}"
  done
done
echo "| bits | PACT | LSQ | QuantGPT | dense |"
echo "|---|---|---|---|---|"
for bits in $BITS; do
  row="| W$bits A8 |"
  for method in pact lsq quantgpt; do
    row="$row $(python3 -c "import json;print('%.2f'%json.load(open('runs/quant/qat-$method-w$bits-$MODEL-lm-books/report.json'))['compressed']['eval']['perplexity'])") |"
  done
  row="$row $(python3 -c "import json;print('%.2f'%json.load(open('runs/quant/qat-pact-w$bits-$MODEL-lm-books/report.json'))['dense']['eval']['perplexity'])") |"
  echo "$row"
done
