#!/usr/bin/env python3
"""Interpolated bigram baseline on a model dir's tokenizer (ids from `sqz tokenize --file`).

Usage: ngram_baseline.py MODEL_DIR TRAIN_TXT DEV_TXT
Prints dev perplexity per token of p(w|v) = l*c(v,w)/c(v) + (1-l)*(c(w)+1)/(N+V), with l tuned
on nothing (fixed 0.7): a simple, reproducible n-gram reference for the decoder teacher.
"""
import collections, json, math, subprocess, sys

def ids(model, path):
    out = subprocess.run(["build/src/sqz", "tokenize", model, "--file", path], capture_output=True, text=True, check=True)
    for line in out.stdout.splitlines():
        yield json.loads(line)["input_ids"]

model, train, dev = sys.argv[1:4]
uni, bi = collections.Counter(), collections.Counter()
n = 0
for seq in ids(model, train):
    for i, w in enumerate(seq):
        uni[w] += 1; n += 1
        if i: bi[(seq[i - 1], w)] += 1
vocab = len(json.load(open(model + "/vocab.json")))
lam, nll, count = 0.7, 0.0, 0
for seq in ids(model, dev):
    for i in range(1, len(seq)):
        v, w = seq[i - 1], seq[i]
        p_uni = (uni[w] + 1) / (n + vocab)
        p = lam * bi[(v, w)] / uni[v] + (1 - lam) * p_uni if uni[v] else p_uni
        nll -= math.log(p); count += 1
print(json.dumps({"bigram_dev_perplexity": math.exp(nll / count), "dev_tokens": count, "train_tokens": n}))
