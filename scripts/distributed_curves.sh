#!/usr/bin/env bash
# One process against `--nproc 2` on the real recipes, as docs/distributed.md ("Measured on real
# recipes") reports them: the MiniLM spam teacher recipe (as shipped, and on a dropout-free copy of
# the pretrained checkpoint) and the GPUSQ recipe on a dropout-free copy of the spam teacher,
# shortened. Prints each run's train_log.jsonl side by side. About 15 minutes on 2 cores.
#   bash scripts/distributed_curves.sh [OUT_DIR]        (default /tmp/sqz-distributed-curves)
set -euo pipefail
cd "$(dirname "$0")/.."
SQZ=build/src/sqz
OUT=${1:-/tmp/sqz-distributed-curves}
rm -rf "$OUT" && mkdir -p "$OUT"

# Dropout off: ranks draw their dropout masks from one seed, so only then can 2 ranks follow 1.
nodrop() {
  cp -r "$1" "$2"
  python3 - "$2/config.json" <<'PY'
import json, sys
path = sys.argv[1]
c = json.load(open(path))
c["hidden_dropout_prob"] = 0.0
c["attention_probs_dropout_prob"] = 0.0
json.dump(c, open(path, "w"), indent=2)
PY
}
nodrop models/pretrained/all-minilm-l6-v2 "$OUT/minilm-nodrop"
nodrop models/minilm-spam "$OUT/spam-nodrop"

T="--set steps=100 --set eval_every=25 --set eval_batches=20 --set save_every=100"
run() { echo "== $*" >&2; "$@" > "$OUT/last.log" 2>&1 || { tail -5 "$OUT/last.log"; exit 1; }; }
run $SQZ train --recipe recipes/teachers/minilm-spam.yaml $T --set threads=2 --set out="$OUT/teacher-1"
run $SQZ train --recipe recipes/teachers/minilm-spam.yaml $T --set threads=1 --set out="$OUT/teacher-2" --nproc 2
run $SQZ train --recipe recipes/teachers/minilm-spam.yaml $T --set threads=2 --set model="$OUT/minilm-nodrop" --set out="$OUT/nodrop-1"
run $SQZ train --recipe recipes/teachers/minilm-spam.yaml $T --set threads=1 --set model="$OUT/minilm-nodrop" --set out="$OUT/nodrop-2" --nproc 2
G="--set train.model=$OUT/spam-nodrop --set distill.teacher=$OUT/spam-nodrop --set train.steps=40 --set quantize.0.start_step=20"
G="$G --set train.eval_every=10 --set train.eval_batches=20 --set latency.enabled=false --set eval_batches=20"
run $SQZ compress --recipe recipes/gpusq_minilm_spam.yaml $G --set train.threads=2 --set out="$OUT/gpusq-1"
run $SQZ compress --recipe recipes/gpusq_minilm_spam.yaml $G --set train.threads=1 --set out="$OUT/gpusq-2" --nproc 2

python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
def log(d):
    return [json.loads(line) for line in open(f"{out}/{d}/train_log.jsonl")]
for name, one, two in [("teacher recipe, dropout 0.1", "teacher-1", "teacher-2"),
                       ("teacher recipe, dropout off", "nodrop-1", "nodrop-2"),
                       ("GPUSQ, dropout off, QAT from step 21", "gpusq-1/train", "gpusq-2/train")]:
    print(f"\n{name}\n| step | 1 process train_loss (acc) | 2 ranks train_loss (acc) | rel diff |\n|---|---|---|---|")
    for a, b in zip(log(one), log(two)):
        rel = abs(a["train_loss"] - b["train_loss"]) / abs(a["train_loss"])
        print(f"| {a['step']} | {a['train_loss']:.9f} ({a['accuracy']:.4f}) | {b['train_loss']:.9f} ({b['accuracy']:.4f}) | {rel:.1e} |")
PY
