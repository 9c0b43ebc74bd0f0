#!/usr/bin/env python3
"""CTranslate2, OpenVINO and PyTorch 2.x as `sqz bench` peers of decoders (src/eval/python_peers.cc).

    peer_decoder.py ENGINE VARIANT MODEL_DIR ONNX_DIR WORK_DIR INPUTS.json OUT.json RUNS WARMUP THREADS

Each run prefills the prompt and then greedily decodes INPUTS' decode_steps tokens, as
scripts/ort_decode.js does for ONNX Runtime. ENGINE ctranslate2: MODEL_DIR (an HF GPT-2, OPT or
Llama causal LM) converted by CTranslate2's Transformers converter (fp32: float32, int8: int8);
the check reads the prompt's last logits from Generator.forward_batch; each timed run is one
Generator.generate_batch call of decode_steps + 1 tokens, split by its per-token callback: the
prefill until the first token, decode per token after it. ENGINE openvino: ONNX_DIR/model-VARIANT.onnx (scripts/onnx_decoder.py,
KV cache as explicit inputs) compiled for the CPU at f32 (or bf16 for VARIANT bf16, on the fp32
graph), each step's presents fed back as the next past.
ENGINE pytorch2: scripts/peer_pytorch2.py (transformers on PyPI's torch 2.x, in third_party/venv-torch2).
INPUTS.json: batch, seq, input_ids, decode_steps, layers, heads (each layer's K/V heads), head_dim.
OUT.json: values (the prompt's last logits, first run), tokens, prefill_ms, decode_ms_per_token, version.
"""
import json
import sys
import time

import numpy as np

from peer_encoder import ctranslate2_model, openvino_compiled


def ctranslate2_runner(variant, model_dir, work_dir, threads, x):
    import ctranslate2

    out, compute = ctranslate2_model(variant, model_dir, work_dir)
    gen = ctranslate2.Generator(out, device="cpu", compute_type=compute, intra_threads=threads)
    b, seq, steps = x["batch"], x["seq"], x["decode_steps"]
    prompts = np.asarray(x["input_ids"], dtype=np.int64).reshape(b, seq).tolist()
    vocabulary = json.load(open(f"{out}/vocabulary.json"))
    words = [[vocabulary[i] for i in row] for row in prompts]

    def run():
        first = np.asarray(gen.forward_batch(prompts))[:, -1]
        # The prompt and steps + 1 greedy tokens, never stopping early: the first is the prefill's.
        prefill, decode = timed_tokens(lambda on_token: gen.generate_batch(
            words, max_length=steps + 1, min_length=steps + 1, sampling_topk=1, end_token=[], include_prompt_in_result=False,
            callback=on_token), steps)
        return first, [], prefill, decode

    return run, ctranslate2.__version__


def timed_tokens(call, steps):
    """One CTranslate2 greedy call timed by phase through its per-token callback: ms until the
    first token (the prefill) and ms per token after it, over `steps` (both from the same run)."""
    stamps = []

    def on_token(_result):
        stamps.append(time.perf_counter())
        return False  # go on

    t0 = time.perf_counter()
    call(on_token)
    return (stamps[0] - t0) * 1e3, (stamps[-1] - stamps[0]) * 1e3 / max(steps, 1)


def openvino_runner(variant, onnx_dir, threads, x):
    import openvino as ov

    compiled = openvino_compiled(variant, onnx_dir, threads)
    request = compiled.create_infer_request()
    b, layers, heads, hd = x["batch"], x["layers"], x["heads"], x["head_dim"]
    ids = np.asarray(x["input_ids"], dtype=np.int64).reshape(b, x["seq"])
    kinds = [f"{kind}_{i}" for i in range(layers) for kind in ("key", "value")]

    def run():
        feeds = {"input_ids": ids}
        feeds.update({f"past_{kind}_{i}": np.zeros((b, heads[i], 0, hd), dtype=np.float32) for i in range(layers) for kind in ("key", "value")})
        t0 = time.perf_counter()
        out = request.infer(feeds)
        t1 = time.perf_counter()
        logits = np.array(out[compiled.output("logits")])
        first, tokens = logits.copy(), []
        for _ in range(x["decode_steps"]):
            nxt = logits.argmax(-1).astype(np.int64).reshape(b, 1)
            tokens.append(nxt[:, 0].tolist())
            step = {"input_ids": nxt}
            step.update({f"past_{k}": np.array(out[compiled.output(f"present_{k}")]) for k in kinds})
            out = request.infer(step)
            logits = np.array(out[compiled.output("logits")])
        t2 = time.perf_counter()
        return first, tokens, (t1 - t0) * 1e3, (t2 - t1) * 1e3 / max(x["decode_steps"], 1)

    return run, ov.__version__.split("-")[0]


def main():
    engine, variant, model_dir, onnx_dir, work_dir, inputs, out = sys.argv[1:8]
    runs, warmup, threads = (int(a) for a in sys.argv[8:11])
    x = json.load(open(inputs))
    if engine == "ctranslate2":
        run, version = ctranslate2_runner(variant, model_dir, work_dir, threads, x)
    elif engine == "openvino":
        run, version = openvino_runner(variant, onnx_dir, threads, x)
    elif engine == "pytorch2":
        from peer_pytorch2 import decoder_runner
        run, version = decoder_runner(variant, model_dir, threads, x)
    else:
        sys.exit(f"peer_decoder.py: unknown engine {engine!r} (ctranslate2, openvino, pytorch2)")
    first, tokens, _, _ = run()
    for _ in range(warmup):
        run()
    prefill, decode = [], []
    for _ in range(runs):
        _, _, p, d = run()
        prefill.append(p)
        decode.append(d)
    json.dump({"values": np.asarray(first, dtype=np.float32).reshape(-1).tolist(), "tokens": tokens, "prefill_ms": prefill,
               "decode_ms_per_token": decode, "version": version}, open(out, "w"))


if __name__ == "__main__":
    main()
