# Shared by the teacher scripts (source it from the repo root): train a recipe, ship its run.
SQZ=build/src/sqz
DATA=${SQZ_DATA:-../shared/data}
mkdir -p runs/logs models

train() {  # train NAME RECIPE
  local name=$1 recipe=$2
  # The last stdout line is a JSON summary with steps, wall_s and the best dev result.
  $SQZ train --recipe "$recipe" --overwrite > "runs/logs/$name.out" 2> "runs/logs/$name.err"
}

ship() {  # ship NAME RUN_DIR TASK SPLIT_FILE MAX_LENGTH [bf16]
  # With bf16 the weights are stored in bfloat16 (half the bytes in git); eval_dev.json is measured
  # on the stored weights either way.
  local name=$1 run=$2 task=$3 split=$4 len=$5 dtype=${6:-}
  rm -rf "models/$name"
  cp -r "$run/best" "models/$name"
  cp "$run/recipe.yaml" "models/$name/recipe.yaml"
  tail -n 1 "runs/logs/$name.out" > "models/$name/train_summary.json"
  [ "$dtype" = bf16 ] && third_party/venv/bin/python scripts/cast_bf16.py "models/$name"
  $SQZ eval "models/$name" --task "$task" --split "$split" --max-length "$len" > "models/$name/eval_dev.json"
  cat "models/$name/eval_dev.json"
}
