#!/usr/bin/env bash
# Ships a `sqz compress` output as models/NAME: the compressed model dir with its float weights in
# bfloat16 (scripts/cast_bf16.py; an export keeps its int8 weights and float32 scales), the
# resolved compress recipe as recipe.yaml, and eval_dev.json from `sqz eval` of the stored weights
# on the whole dev split (with the task and max length, which shipped_models_test reads back).
# The card (README.md) is written from the run's report.md.
#   usage: scripts/ship_compressed.sh RUN_DIR NAME TASK MAX_LENGTH
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 4 ] || { sed -n '2,7p' "$0"; exit 2; }
RUN=$1 NAME=$2 TASK=$3 LEN=$4
SQZ=${SQZ:-build/src/sqz}
DEST=models/$NAME
STAGE=models/.$NAME.tmp
[ -f "$RUN/model/config.json" ] || { echo "ship_compressed: $RUN/model is not a model dir" >&2; exit 1; }
SPLIT=../shared/data/$TASK/dev.jsonl
[ "$TASK" = lm-books ] && SPLIT=../shared/data/$TASK/dev.txt
rm -rf "$STAGE"
cp -r "$RUN/model" "$STAGE"
third_party/venv/bin/python scripts/cast_bf16.py "$STAGE"
cp "$RUN/recipe.yaml" "$STAGE/recipe.yaml"
$SQZ eval "$STAGE" --task "$TASK" --split "$SPLIT" --max-length "$LEN" | tail -n 1 > "$STAGE/eval.tmp"
python3 - "$STAGE" "$DEST" "$SPLIT" "$LEN" <<'PY'
import json, os, sys
stage, dest, split, max_length = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
r = json.load(open(os.path.join(stage, "eval.tmp")))
r.update(model=dest, split=split, max_length=max_length)
with open(os.path.join(stage, "eval_dev.json"), "w") as f:
    json.dump(r, f, sort_keys=True, separators=(",", ":"))
os.remove(os.path.join(stage, "eval.tmp"))
print(f"ship_compressed: {dest}: {json.dumps(r)}")
PY
rm -rf "$DEST"
mv "$STAGE" "$DEST"
du -sh "$DEST"
