#!/usr/bin/env python3
"""CTranslate2, OpenVINO and PyTorch 2.x as `sqz bench` peers of encoder-decoders (BART, T5; src/eval/python_peers.cc).

    peer_seq2seq.py ENGINE VARIANT MODEL_DIR ONNX_DIR WORK_DIR INPUTS.json OUT.json RUNS WARMUP THREADS

ENGINE ctranslate2: MODEL_DIR (an HF BartForConditionalGeneration or T5ForConditionalGeneration dir) converted by
CTranslate2's Transformers converter (VARIANT fp32: float32, int8: its int8 weights and GEMMs),
run by its Translator, greedy, never stopping early. The check reads the first decoder step's
logits (return_logits_vocab, with min_decoding_length 0 so that EOS is not masked). Each timed
run is one translate_batch call of decode_steps + 1 tokens split by its per-token callback, as
peer_decoder.py times CTranslate2's Generator: until the first token (encode the source + the
first step, the bench's "prefill"), then per token. ENGINE openvino: the graphs of
scripts/onnx_seq2seq.py in ONNX_DIR/model-VARIANT (fp32 for VARIANT bf16, at bf16 inference
precision) compiled for the CPU; each run encodes the sources and takes the first decoder step
(the prefill), then feeds each step's presents back as the next past, as scripts/ort_seq2seq.js.
ENGINE pytorch2: scripts/peer_pytorch2.py (transformers on PyPI's torch 2.x, in third_party/venv-torch2).
INPUTS.json: batch, seq, input_ids (the sources), decode_steps.
OUT.json: values (the first step's logits, first run), prefill_ms, decode_ms_per_token, version.
"""
import json
import sys
import time

import numpy as np

from peer_decoder import timed_tokens
from peer_encoder import ctranslate2_model, openvino_compiled


def converter_config_keys(model_dir):
    """Keys CTranslate2's loaders read that a config may lack; the bench's saved copy gets them.
    BART: `normalize_before`, which older BART configs carried (False: BART is post-LN) and
    transformers no longer writes. T5: `decoder_start_token_id`, which T5 takes to be the pad id
    when unset (as sqz and transformers' T5 checkpoints do)."""
    path = f"{model_dir}/config.json"
    config = json.load(open(path))
    if config.get("model_type") == "bart" and "normalize_before" not in config:
        config["normalize_before"] = False
    if config.get("model_type") == "t5" and config.get("decoder_start_token_id") is None:
        config["decoder_start_token_id"] = config.get("pad_token_id", 0)
    json.dump(config, open(path, "w"))


def ctranslate2_runner(variant, model_dir, work_dir, threads, x):
    import ctranslate2

    converter_config_keys(model_dir)
    out, compute = ctranslate2_model(variant, model_dir, work_dir)
    translator = ctranslate2.Translator(out, device="cpu", compute_type=compute, intra_threads=threads)
    vocabulary = json.load(open(f"{out}/shared_vocabulary.json"))
    ids = np.asarray(x["input_ids"], dtype=np.int64).reshape(x["batch"], x["seq"]).tolist()
    sources = [[vocabulary[i] for i in row] for row in ids]

    def translate(n, **extra):  # n greedy tokens, never stopping early
        return translator.translate_batch(sources, beam_size=1, max_decoding_length=n, min_decoding_length=n, end_token=[], **extra)

    def run():
        checked = translator.translate_batch(sources, beam_size=1, max_decoding_length=1, min_decoding_length=0,
                                             return_logits_vocab=True)
        first = np.stack([np.asarray(r.logits[0][0]).reshape(-1) for r in checked])
        steps = x["decode_steps"]
        prefill, decode = timed_tokens(lambda on_token: translate(steps + 1, callback=on_token), steps)
        return first, prefill, decode

    return run, ctranslate2.__version__


def openvino_runner(variant, onnx_dir, threads, x):
    import openvino as ov

    encoder = openvino_compiled(variant, onnx_dir, threads, "encoder_model.onnx")
    decoder = openvino_compiled(variant, onnx_dir, threads, "decoder_model.onnx")
    graphs = f"{onnx_dir}/model-{'int8' if variant == 'int8' else 'fp32'}"
    shapes = json.load(open(f"{graphs}/cache_shapes.json"))
    encode, step = encoder.create_infer_request(), decoder.create_infer_request()
    b, layers = x["batch"], shapes["layers"]
    ids = np.asarray(x["input_ids"], dtype=np.int64).reshape(b, x["seq"])
    mask = np.ones_like(ids)

    def run():
        t0 = time.perf_counter()
        encoded = encode.infer({"input_ids": ids, "attention_mask": mask})
        feeds = {"decoder_input_ids": np.full((b, 1), shapes["decoder_start_token_id"], np.int64), "encoder_attention_mask": mask}
        for i in range(layers):
            for kind in ("key", "value"):
                feeds[f"past_{kind}_{i}"] = np.zeros((b, shapes["heads"][i], 0, shapes["head_dim"]), np.float32)
                feeds[f"cross_{kind}_{i}"] = np.array(encoded[encoder.output(f"cross_{kind}_{i}")])
        out = step.infer(feeds)
        t1 = time.perf_counter()
        logits = np.array(out[decoder.output("logits")])
        first = logits.copy()
        for _ in range(x["decode_steps"]):
            feeds["decoder_input_ids"] = logits.argmax(-1).astype(np.int64).reshape(b, 1)
            for i in range(layers):
                for kind in ("key", "value"):
                    feeds[f"past_{kind}_{i}"] = np.array(out[decoder.output(f"present_{kind}_{i}")])
            out = step.infer(feeds)
            logits = np.array(out[decoder.output("logits")])
        t2 = time.perf_counter()
        return first, (t1 - t0) * 1e3, (t2 - t1) * 1e3 / max(x["decode_steps"], 1)

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
        from peer_pytorch2 import seq2seq_runner
        run, version = seq2seq_runner(variant, model_dir, threads, x)
    else:
        sys.exit(f"peer_seq2seq.py: unknown engine {engine!r} (ctranslate2, openvino, pytorch2)")
    first, _, _ = run()
    for _ in range(warmup):
        run()
    prefill, decode = [], []
    for _ in range(runs):
        _, p, d = run()
        prefill.append(p)
        decode.append(d)
    json.dump({"values": np.asarray(first, dtype=np.float32).reshape(-1).tolist(), "prefill_ms": prefill,
               "decode_ms_per_token": decode, "version": version}, open(out, "w"))


if __name__ == "__main__":
    main()
