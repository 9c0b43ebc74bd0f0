#!/usr/bin/env python3
"""NNI itself as the accuracy anchor of sqz's NNI-style recipe (issue 21, item 4).

Runs NNI 3.0's own pruners on the shipped MiniLM spam teacher (models/minilm-spam) with the step
budget of recipes/compress/nni_minilm_spam.yaml (600 steps of 16 examples, AdamW lr 1e-4, weight
decay 0.01, 30 warm-up steps, linear decay), in NNI's published order for BERT
(examples/tutorials/new_pruning_bert_glue.py): movement pruning of attention heads with layer-wise
distillation, heads cut out, then Taylor pruning of FFN neurons on an AGP schedule with
distillation, neurons cut out. Half of the budget per phase. Writes one JSON object:
sparsity reached, parameters, dev accuracy / macro-F1 (all of dev), wall time per phase, and
batch-1 latency of the cut PyTorch model (seq 128, 2 threads) against the teacher's.

NNI's ModelSpeedup is not used: its concrete tracer cannot trace on Python 3.11 (Debian 12's, the
one Debian's torch 1.13 is built for). ConcreteProxy.__bool__ finds the calling instruction at
index f_lasti // 2 of dis.get_instructions(), which 3.11's inline CACHE entries shift, so every
`x is not None and ...` in transformers' forward raises "TypeError: __bool__ should return bool,
returned ConcreteProxy". The heads are cut with transformers' prune_heads (what NNI's
TransformersAttentionReplacer calls) and the FFN neurons by slicing the two Linears, from NNI's
masks.

Runs in third_party/venv-nni (python/requirements-nni.txt; scripts/install_deps.sh --nni).
  third_party/venv-nni/bin/python scripts/nni_anchor.py --out docs/results/nni-anchor/nni.json
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import nni
from nni.compression.distillation import DynamicLayerwiseDistiller
from nni.compression.pruning import AGPPruner, MovementPruner, TaylorPruner
from nni.compression.utils import TorchEvaluator
from transformers import AutoTokenizer, BertForSequenceClassification
from transformers.pytorch_utils import prune_linear_layer


def read_split(path, tokenizer, label2id, max_length):
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            ex = json.loads(line)
            if ex["label"] not in label2id:
                sys.exit(f"{path}:{n}: label {ex['label']!r} is not one of the teacher's {sorted(label2id)}")
            enc = tokenizer(ex["text"], truncation=True, max_length=max_length)
            rows.append((enc["input_ids"], enc["token_type_ids"], label2id[ex["label"]]))
    if not rows:
        sys.exit(f"{path}: no examples")
    return rows


def collate(rows):
    """Pads to the longest row of the batch, as sqz's batches are padded."""
    t = max(len(r[0]) for r in rows)
    ids = torch.zeros(len(rows), t, dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for i, (a, b, _) in enumerate(rows):
        ids[i, : len(a)] = torch.tensor(a)
        types[i, : len(b)] = torch.tensor(b)
        mask[i, : len(a)] = 1
    labels = torch.tensor([r[2] for r in rows])
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask, "labels": labels}


def batches_forever(rows, batch_size, seed):
    rng = random.Random(seed)
    epoch_rows = list(rows)
    while True:
        rng.shuffle(epoch_rows)
        for i in range(0, len(epoch_rows) - batch_size + 1, batch_size):
            yield collate(epoch_rows[i : i + batch_size])


def evaluate(model, rows, batch_size=64):
    model.eval()
    preds, gold = [], []
    with torch.no_grad():
        for i in range(0, len(rows), batch_size):
            b = collate(rows[i : i + batch_size])
            gold += b.pop("labels").tolist()
            preds += model(**b).logits.argmax(-1).tolist()
    model.train()
    acc = sum(p == g for p, g in zip(preds, gold)) / len(gold)
    f1s = []
    for c in sorted(set(gold)):
        tp = sum(p == c and g == c for p, g in zip(preds, gold))
        fp = sum(p == c and g != c for p, g in zip(preds, gold))
        fn = sum(p != c and g == c for p, g in zip(preds, gold))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return {"accuracy": acc, "macro_f1": sum(f1s) / len(f1s), "examples": len(gold)}


def make_evaluator(model, train_rows, args, steps, seed):
    """NNI re-creates the traced optimizer and scheduler on its wrapped model."""
    warmup = args.warmup_steps

    def schedule(step):
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (steps - step) / max(1, steps - warmup))

    optimizer = nni.trace(torch.optim.AdamW)(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scheduler = nni.trace(torch.optim.lr_scheduler.LambdaLR)(optimizer, schedule)

    def training_step(batch, model):
        return model(**batch).loss

    def training_func(model, optimizers, training_step, lr_schedulers=None, max_steps=None, max_epochs=None):
        total = max_steps or steps
        stream = batches_forever(train_rows, args.batch_size, seed)
        model.train()
        t0 = time.time()
        for step in range(total):
            loss = training_step(next(stream), model)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizers.step()
            optimizers.zero_grad()
            if lr_schedulers is not None:
                lr_schedulers.step()
            if (step + 1) % 50 == 0 or step + 1 == total:
                print(f"nni_anchor: step {step + 1}/{total} loss {loss.item():.4f} ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)

    return TorchEvaluator(training_func, optimizer, training_step, scheduler)


def distiller_for(student, teacher, evaluator, layers, labels_weight):
    """Hidden states of every layer (MSE to the same teacher layer) and the logits (KL at T=2),
    the labels' loss weighted as sqz's recipe weights it."""
    config = [{"op_names": [f"bert.encoder.layer.{i}"], "link": [f"bert.encoder.layer.{i}"], "lambda": 1.0, "apply_method": "mse"}
              for i in range(layers)]
    config.append({"op_names": ["classifier"], "link": ["classifier"], "lambda": 1.0, "apply_method": "kl"})

    def teacher_predict(batch, teacher_model):
        return teacher_model(**batch)

    return DynamicLayerwiseDistiller(student, config, evaluator, teacher, teacher_predict, origin_loss_lambda=labels_weight)


def cut_heads(model, masks, head_dim):
    """The heads NNI's masks zeroed in all of q, k and v, cut out with transformers' own
    prune_heads (what NNI's TransformersAttentionReplacer calls inside ModelSpeedup)."""
    dead = {}
    for i in range(len(model.bert.encoder.layer)):
        alive = None
        for m in ("query", "key", "value"):
            rows = masks[f"bert.encoder.layer.{i}.attention.self.{m}"]["weight"].sum(1) != 0
            heads = rows.view(-1, head_dim).any(1)
            alive = heads if alive is None else alive | heads
        dead[i] = [h for h in range(alive.numel()) if not alive[h]]
    model.prune_heads(dead)
    return dead


def cut_ffn(model, masks):
    """The FFN neurons NNI's masks zeroed: rows of intermediate.dense, columns of output.dense."""
    for i, layer in enumerate(model.bert.encoder.layer):
        keep = (masks[f"bert.encoder.layer.{i}.intermediate.dense"]["weight"].sum(1) != 0).nonzero().squeeze(1)
        layer.intermediate.dense = prune_linear_layer(layer.intermediate.dense, keep, dim=0)
        layer.output.dense = prune_linear_layer(layer.output.dense, keep, dim=1)


def count(model):
    heads = [l.attention.self.num_attention_heads for l in model.bert.encoder.layer]
    ffn = [l.intermediate.dense.out_features for l in model.bert.encoder.layer]
    params = sum(p.numel() for p in model.parameters())
    encoder = sum(p.numel() for p in model.bert.encoder.parameters())
    return {"heads_per_layer": heads, "ffn_per_layer": ffn, "parameters": params, "encoder_parameters": encoder}


def latency_ms(model, seq, runs, threads):
    torch.set_num_threads(threads)
    model.eval()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1000, 2000, (1, seq), generator=g)
    mask = torch.ones_like(ids)
    times = []
    with torch.no_grad():
        for i in range(runs + 3):
            t = time.perf_counter()
            model(input_ids=ids, attention_mask=mask)
            if i >= 3:
                times.append((time.perf_counter() - t) * 1000)
    model.train()
    return float(np.median(times))


def write_json(result, path):
    tmp = path + ".tmp"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, path)


def time_saved(args):
    """Batch-1 latency of a saved cut student and of the teacher, run when the machine is idle."""
    with open(args.out) as f:
        result = json.load(f)
    torch.set_num_threads(args.threads)
    student = torch.load(args.latency_of)
    teacher = BertForSequenceClassification.from_pretrained(args.teacher, attn_implementation="eager").eval()
    result["teacher_latency_b1_ms"] = latency_ms(teacher, args.max_length, args.latency_runs, args.threads)
    result["latency_b1_ms"] = latency_ms(student, args.max_length, args.latency_runs, args.threads)
    result["latency_speedup"] = result["teacher_latency_b1_ms"] / result["latency_b1_ms"]
    write_json(result, args.out)
    print(json.dumps({k: result[k] for k in ("teacher_latency_b1_ms", "latency_b1_ms", "latency_speedup")}))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--teacher", default="models/minilm-spam")
    p.add_argument("--data", default="../shared/data/spam")
    p.add_argument("--steps", type=int, default=600, help="the whole budget; half per phase")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup-steps", type=int, default=30)
    p.add_argument("--head-sparsity", type=float, default=0.5)
    p.add_argument("--ffn-sparsity", type=float, default=0.5)
    p.add_argument("--labels-weight", type=float, default=0.5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--latency-runs", type=int, default=20)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--out", required=True, help="the JSON result")
    p.add_argument("--save", help="also torch.save the cut student here (for --latency-of)")
    p.add_argument("--latency-of", help="only time this saved student and the teacher, into --out's latency fields")
    args = p.parse_args()
    if args.latency_of:
        return time_saved(args)
    if args.steps < 4 or not (0 < args.head_sparsity < 1) or not (0 < args.ffn_sparsity < 1):
        sys.exit("nni_anchor: --steps must be >= 4 and the sparsities in (0, 1)")
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(args.teacher)
    # Eager attention: the class whose prune_heads NNI's TransformersAttentionReplacer calls.
    teacher = BertForSequenceClassification.from_pretrained(args.teacher, attn_implementation="eager").eval()
    label2id = teacher.config.label2id
    train = read_split(os.path.join(args.data, "train.jsonl"), tokenizer, label2id, args.max_length)
    dev = read_split(os.path.join(args.data, "dev.jsonl"), tokenizer, label2id, args.max_length)
    layers = teacher.config.num_hidden_layers
    heads = teacher.config.num_attention_heads
    head_dim = teacher.config.hidden_size // heads
    hidden = teacher.config.hidden_size
    result = {"nni": nni.__version__, "torch": torch.__version__, "teacher": args.teacher, "steps": args.steps,
              "batch_size": args.batch_size, "threads": args.threads, "teacher_dev": evaluate(teacher, dev), "teacher_shape": count(teacher)}
    result["teacher_latency_b1_ms"] = latency_ms(teacher, args.max_length, args.latency_runs, args.threads)
    half = args.steps // 2

    # Phase 1: movement pruning of heads (q, k, v rows in head-sized blocks, one dependency group
    # per layer so the three keep the same heads), sparsity growing cubically to its target by
    # 2/3 of the phase, with distillation; then the heads are cut out (cut_heads).
    student = copy.deepcopy(teacher).train()
    t0 = time.time()
    ev = make_evaluator(student, train, args, half, seed=0)
    distiller = distiller_for(student, teacher, ev, layers, args.labels_weight)
    head_config = [{"op_names": [f"bert.encoder.layer.{i}.attention.self.{m}" for m in ("query", "key", "value")],
                    "sparse_ratio": args.head_sparsity, "granularity": [head_dim, hidden], "dependency_group_id": f"layer{i}"}
                   for i in range(layers)]
    pruner = MovementPruner.from_compressor(distiller, head_config, warmup_step=args.warmup_steps, cooldown_begin_step=half * 2 // 3)
    pruner.compress(half, None)
    pruner.unwrap_model()
    distiller.unwrap_teacher_model()
    masks = pruner.get_masks()
    student.eval()
    cut_heads(student, masks, head_dim)
    result["heads_phase"] = {"wall_s": time.time() - t0, "dev": evaluate(student, dev), "shape": count(student)}
    print(f"nni_anchor: heads phase {result['heads_phase']}", file=sys.stderr, flush=True)

    # Phase 2: Taylor scores of FFN neurons (rows of intermediate.dense, one global group), AGP to
    # the target over 2/3 of the phase, with distillation; then the neurons are cut out (cut_ffn).
    t0 = time.time()
    ev = make_evaluator(student, train, args, half, seed=1)
    distiller = distiller_for(student, teacher, ev, layers, args.labels_weight)
    ffn_config = [{"op_names": [f"bert.encoder.layer.{i}.intermediate.dense" for i in range(layers)], "sparse_ratio": args.ffn_sparsity,
                   "granularity": "out_channel", "global_group_id": "ffn"}]
    ramp = max(1, half * 2 // 3)
    times = min(10, ramp)
    interval = ramp // times
    taylor = TaylorPruner.from_compressor(distiller, ffn_config, interval)
    agp = AGPPruner(taylor, interval, times)
    agp.compress(half, None)
    agp.unwrap_model()
    distiller.unwrap_teacher_model()
    masks = agp.get_masks()
    student.eval()
    cut_ffn(student, masks)
    result["ffn_phase"] = {"wall_s": time.time() - t0, "dev": evaluate(student, dev), "shape": count(student)}
    result["latency_b1_ms"] = latency_ms(student, args.max_length, args.latency_runs, args.threads)
    result["wall_s"] = result["heads_phase"]["wall_s"] + result["ffn_phase"]["wall_s"]
    if args.save:
        torch.save(student, args.save)
    write_json(result, args.out)
    print(json.dumps({k: result[k] for k in ("teacher_dev", "wall_s", "latency_b1_ms", "teacher_latency_b1_ms")}))
    print(json.dumps(result["ffn_phase"]))


if __name__ == "__main__":
    main()
