#!/usr/bin/python3
"""Does a masked-LM body use context? Masks every 7th token of the first dev lines, runs the model
with `sqz forward`, and prints top-1 accuracy at the masked positions next to always predicting
the most frequent training token, and how many distinct tokens it predicts there; also the
add-one unigram perplexity of the dev tokens (train counts), the bar a masked-token perplexity
should be far below. A body stuck at the unigram plateau predicts the same few frequent tokens
everywhere.

  /usr/bin/python3 scripts/mlm_probe.py MODEL_DIR [--data ../shared/data/lm-books] [--lines 64] [--max-length 128]
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

SQZ = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "src", "sqz")


def tokenize(model, path, max_length=None):
    limit = ["--max-length", str(max_length)] if max_length else []
    out = subprocess.run([SQZ, "tokenize", model, "--file", path] + limit, check=True, capture_output=True, text=True).stdout
    return [json.loads(line)["input_ids"] for line in out.splitlines()]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model_dir")
    p.add_argument("--data", default=os.path.join(os.path.dirname(SQZ), "..", "..", "..", "shared", "data", "lm-books"))
    p.add_argument("--lines", type=int, default=64)
    p.add_argument("--max-length", type=int, default=128, help="tokens per line (the length the body was trained on)")
    a = p.parse_args()
    vocab = [line.rstrip("\n") for line in open(os.path.join(a.model_dir, "vocab.txt"), encoding="utf-8")]
    mask_id, special = vocab.index("[MASK]"), {vocab.index(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")}
    with tempfile.TemporaryDirectory() as tmp:
        counts = collections.Counter(t for row in tokenize(a.model_dir, os.path.join(a.data, "train.txt")) for t in row if t not in special)
        dev_tokens = [t for row in tokenize(a.model_dir, os.path.join(a.data, "dev.txt")) for t in row if t not in special]
        total = sum(counts.values())
        unigram_nll = -sum(np.log((counts[t] + 1) / (total + len(vocab))) for t in dev_tokens) / len(dev_tokens)
        dev_lines = [l for l in open(os.path.join(a.data, "dev.txt"), encoding="utf-8") if len(l.split()) >= 12][:a.lines]
        with open(os.path.join(tmp, "dev.txt"), "w", encoding="utf-8") as f:
            f.writelines(dev_lines)
        rows = tokenize(a.model_dir, os.path.join(tmp, "dev.txt"), max_length=a.max_length)
        width = max(len(r) for r in rows)
        ids, attn = np.zeros((len(rows), width), np.int64), np.zeros((len(rows), width), np.int64)
        masked = []
        for i, r in enumerate(rows):
            ids[i, :len(r)], attn[i, :len(r)] = r, 1
            for j in range(3, len(r) - 1, 7):
                if r[j] not in special:
                    masked.append((i, j, r[j]))
                    ids[i, j] = mask_id
        os.makedirs(os.path.join(tmp, "in"))
        np.save(os.path.join(tmp, "in", "input_ids.npy"), ids)
        np.save(os.path.join(tmp, "in", "attention_mask.npy"), attn)
        subprocess.run([SQZ, "forward", a.model_dir, "--inputs", os.path.join(tmp, "in"), "--out", os.path.join(tmp, "out")],
                       check=True, capture_output=True)
        logits = np.load(os.path.join(tmp, "out", "logits.npy"))
    top = [int(np.argmax(logits[i, j])) for i, j, _ in masked]
    frequent = counts.most_common(1)[0][0]
    print(json.dumps({"model": a.model_dir, "masked": len(masked),
                      "top1_accuracy": sum(t == want for t, (_, _, want) in zip(top, masked)) / len(masked),
                      "most_frequent_token": vocab[frequent],
                      "most_frequent_token_accuracy": sum(want == frequent for _, _, want in masked) / len(masked),
                      "distinct_predictions": len(set(top)),
                      "unigram_dev_perplexity": float(np.exp(unigram_nll)),
                      "most_predicted": [vocab[t] for t, _ in collections.Counter(top).most_common(5)]}))


if __name__ == "__main__":
    sys.exit(main())
