#!/usr/bin/env bash
# Fine-tunes the pretrained all-MiniLM-L6-v2 (models/pretrained/, scripts/install_deps.sh) on the
# three classification tasks and ships each as models/minilm-<task>/ in bfloat16 with its dev
# score. Run from the repo root after scripts/build.sh; about 90 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/teachers.sh
[ -f models/pretrained/all-minilm-l6-v2/model.safetensors ] || { echo "run scripts/install_deps.sh first" >&2; exit 1; }
tasks=${*:-spam sotu-party wordnet-supersense}
declare -A LEN=([spam]=128 [sotu-party]=160 [wordnet-supersense]=64)
for task in $tasks; do
  train "minilm-$task" "recipes/teachers/minilm-$task.yaml"
  ship "minilm-$task" "runs/minilm-$task" "$task" "$DATA/$task/dev.jsonl" "${LEN[$task]}" bf16
done
