#!/usr/bin/env python3
"""Carve a validation split out of a task's train.jsonl, so recipes can be tuned without dev.

Lines are kept in file order and cut into contiguous blocks; every `--every`-th block is held
out. Contiguous blocks matter: the data files keep the passages of one document (an address, an
e-mail thread) together, and a random split would put neighbours of a held-out passage in train.

    python3 scripts/holdout_split.py ../shared/data/sotu-party runs/heldout/sotu-party

writes OUT/train.jsonl and OUT/dev.jsonl (the held-out part, named dev so `sqz train --set
data=OUT` evaluates on it) and prints the counts.
"""
import argparse
import os
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("task_dir", help="directory holding train.jsonl")
    ap.add_argument("out_dir", help="directory to write train.jsonl and dev.jsonl into")
    ap.add_argument("--blocks", type=int, default=50, help="number of contiguous blocks")
    ap.add_argument("--every", type=int, default=10, help="hold out every N-th block")
    args = ap.parse_args()

    src = os.path.join(args.task_dir, "train.jsonl")
    try:
        with open(src, encoding="utf-8") as f:
            lines = [l for l in f if l.strip()]
    except OSError as e:
        sys.exit(f"holdout_split: cannot read {src}: {e.strerror}")
    if len(lines) < args.blocks:
        sys.exit(f"holdout_split: {src} has {len(lines)} lines, fewer than --blocks {args.blocks}")

    keep, held = [], []
    for i, line in enumerate(lines):
        block = i * args.blocks // len(lines)
        (held if block % args.every == args.every // 2 else keep).append(line)

    os.makedirs(args.out_dir, exist_ok=True)
    for name, rows in (("train.jsonl", keep), ("dev.jsonl", held)):
        tmp = os.path.join(args.out_dir, name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(rows)
        os.replace(tmp, os.path.join(args.out_dir, name))
    print(f"{src}: {len(keep)} train, {len(held)} held out -> {args.out_dir}")


if __name__ == "__main__":
    main()
