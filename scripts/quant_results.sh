#!/usr/bin/env bash
# Post-training quantization results on the shipped teachers (full dev splits): W8A8 on the three
# encoder teachers and the decoder, and W4 / W3 per-group GPTQ vs round-to-nearest on the decoder.
# Reports land in runs/quant/*/report.md; docs/results/quantization.md collects them.
# latency.enabled=false: these tables compare quality; each recipe run alone benches every engine.
set -euo pipefail
cd "$(dirname "$0")/.."
SQZ=${SQZ:-build/src/sqz}
for task in spam sotu-party wordnet-supersense; do
  len=128; [ "$task" = wordnet-supersense ] && len=64
  $SQZ compress --set latency.enabled=false --recipe recipes/quant/w8a8_bert_spam.yaml --overwrite --set train.model=models/bert-$task \
    --set train.task=$task --set train.data=../shared/data/$task --set train.max_length=$len --set out=runs/quant/w8a8-bert-$task
done
$SQZ compress --set latency.enabled=false --recipe recipes/quant/w8a8_gpt2_lm_books.yaml --overwrite
for bits in 4 3; do
  for method in gptq minmax; do
    $SQZ compress --set latency.enabled=false --recipe recipes/quant/w4_gptq_gpt2_lm_books.yaml --overwrite --set quantize.0.weight.bits=$bits \
      --set quantize.0.weight.method=$method --set out=runs/quant/w$bits-$method-gpt2-lm-books
  done
done
