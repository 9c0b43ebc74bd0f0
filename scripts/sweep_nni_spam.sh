#!/usr/bin/env bash
# NNI's accuracy-vs-sparsity chart on the spam teacher: the NNI-style recipe at four pruning
# levels (heads, FFN neurons, hidden dims moved in lockstep), a 250-step budget per point.
# Writes runs/compress/sweep-nni-bert-spam/{sweep.md,sweep.svg,sweep.json,point-*/}.
set -euo pipefail
cd "$(dirname "$0")/.."
build/src/sqz compress --recipe recipes/compress/nni_bert_spam.yaml --overwrite \
  --set out=runs/compress/sweep-nni-bert-spam --set train.steps=250 --set train.eval_every=250 \
  --set prune.0.schedule.end=170 --set prune.1.schedule.end=170 --set prune.2.schedule.end=170 \
  --set prune.0.schedule.every=10 --set prune.1.schedule.every=10 --set prune.2.schedule.every=10 \
  --set latency.runs=10 \
  --sweep prune.0.sparsity=0.25,0.5,0.5,0.75 \
  --sweep prune.1.sparsity=0.25,0.5,0.7,0.8 \
  --sweep prune.2.sparsity=0.0,0.125,0.25,0.375
