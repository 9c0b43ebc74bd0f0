#!/usr/bin/env bash
# Rebuilds the shipped teachers in models/ from ../shared/data: tokenizers, GPT-2 LM, BERT MLM
# pretraining, BERT fine-tuning per task, then dev evaluation with `sqz eval`.
# Run from the repo root after scripts/build.sh. Takes about 5 hours on 2 cores.
# Each step's stdout (JSON lines) and stderr (progress) land in runs/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/teachers.sh
mkdir -p runs/tokenizers

$SQZ train-tokenizer --kind bpe --input "$DATA/lm-books/train.txt" --vocab-size 8192 --out runs/tokenizers/bpe-8k --overwrite
$SQZ train-tokenizer --kind wordpiece --input "$DATA/lm-books/train.txt" --vocab-size 8192 --out runs/tokenizers/wordpiece-8k --overwrite

train gpt2-lm-books recipes/teachers/gpt2-lm-books.yaml &
train bert-mlm-lm-books recipes/teachers/bert-mlm-lm-books.yaml
wait
# The spam and sotu-party recipes start from this MLM body.
rm -rf models/bert-mlm-lm-books
cp -r runs/bert-mlm-lm-books/best models/bert-mlm-lm-books
cp recipes/teachers/bert-mlm-lm-books.yaml models/bert-mlm-lm-books/recipe.yaml
tail -n 1 runs/logs/bert-mlm-lm-books.out > models/bert-mlm-lm-books/train_summary.json
# Phase 2 continues phase 1 (3000 steps; the shipped model is this run's best, see its card).
train gpt2-lm-books-continue recipes/teachers/gpt2-lm-books-continue.yaml
cp runs/logs/gpt2-lm-books-continue.out runs/logs/gpt2-lm-books.out
ship gpt2-lm-books runs/gpt2-lm-books-continue lm-books "$DATA/lm-books/dev.txt" 128
# The curriculum body (16- then 128-token blocks) that the wordnet-supersense teacher starts from.
train bert-mlm-lm-books-short recipes/teachers/bert-mlm-lm-books-short.yaml
train bert-mlm-lm-books-curriculum recipes/teachers/bert-mlm-lm-books-long.yaml
ship bert-mlm-lm-books-curriculum runs/bert-mlm-lm-books-long lm-books "$DATA/lm-books/dev.txt" 128

train bert-spam recipes/teachers/bert-spam.yaml &
train bert-sotu-party recipes/teachers/bert-sotu-party.yaml
wait
train bert-wordnet-supersense recipes/teachers/bert-wordnet-supersense.yaml  # 2 threads
ship bert-spam runs/bert-spam spam "$DATA/spam/dev.jsonl" 256
ship bert-sotu-party runs/bert-sotu-party sotu-party "$DATA/sotu-party/dev.jsonl" 128
ship bert-wordnet-supersense runs/bert-wordnet-supersense wordnet-supersense "$DATA/wordnet-supersense/dev.jsonl" 64
