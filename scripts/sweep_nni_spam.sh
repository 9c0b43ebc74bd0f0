#!/usr/bin/env bash
# NNI's accuracy-vs-sparsity chart on a spam teacher: the NNI-style recipe at four pruning levels
# (heads, FFN neurons, hidden dims moved in lockstep).
#   bash scripts/sweep_nni_spam.sh          # from-scratch BERT teacher, 250 steps per point
#   bash scripts/sweep_nni_spam.sh minilm   # pretrained MiniLM teacher, 400 steps per point, to 85% removed
# Writes runs/compress/sweep-nni-<bert|minilm>-spam/{sweep.md,sweep.svg,sweep.json,point-*/}.
set -euo pipefail
cd "$(dirname "$0")/.."
teacher=${1:-bert}
case "$teacher" in
  bert)
    steps=250; end=170
    sweeps=(--sweep prune.0.sparsity=0.25,0.5,0.5,0.75 --sweep prune.1.sparsity=0.25,0.5,0.7,0.8
            --sweep prune.2.sparsity=0.0,0.125,0.25,0.375) ;;
  minilm)
    steps=400; end=270
    sweeps=(--sweep prune.0.sparsity=0.5,0.5,0.75,0.83 --sweep prune.1.sparsity=0.5,0.7,0.8,0.9
            --sweep prune.2.sparsity=0.125,0.25,0.375,0.5) ;;
  *) echo "usage: $0 [bert|minilm]" >&2; exit 2 ;;
esac
build/src/sqz compress --recipe "recipes/compress/nni_${teacher}_spam.yaml" --overwrite \
  --set out="runs/compress/sweep-nni-${teacher}-spam" --set train.steps=$steps --set train.eval_every=$steps \
  --set prune.0.schedule.end=$end --set prune.1.schedule.end=$end --set prune.2.schedule.end=$end \
  --set prune.0.schedule.every=10 --set prune.1.schedule.every=10 --set prune.2.schedule.every=10 \
  --set latency.runs=10 \
  "${sweeps[@]}"
