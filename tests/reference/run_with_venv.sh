#!/usr/bin/env bash
# Runs a reference test (a Python script) with the project's venv; without the venv
# (scripts/install_deps.sh makes it) the test is skipped with one line saying so (exit 77).
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
PY="$REPO/third_party/venv/bin/python"
if [ ! -x "$PY" ]; then
  echo "SKIPPED: no venv at third_party/venv (run scripts/install_deps.sh)"
  exit 77
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec "$PY" "$@"
