#!/usr/bin/env bash
# GPUSQ-TLM (2:4 + int8 QAT + distillation) on every shipped teacher; reports in runs/gpusq/*/report.md.
set -euo pipefail
cd "$(dirname "$0")/.."
SQZ=${SQZ:-build/src/sqz}
EXTRA=("$@")
for task in spam sotu-party wordnet-supersense; do
  len=128; [ "$task" = wordnet-supersense ] && len=64
  $SQZ compress --recipe recipes/gpusq_bert_spam.yaml --overwrite --set train.model=models/bert-$task --set train.task=$task \
    --set train.data=../shared/data/$task --set train.max_length=$len --set distill.teacher=models/bert-$task \
    --set out=runs/gpusq/bert-$task "${EXTRA[@]}"
done
$SQZ compress --recipe recipes/gpusq_gpt2_lm_books.yaml --overwrite "${EXTRA[@]}"
