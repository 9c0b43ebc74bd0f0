#!/usr/bin/env python3
"""CTranslate2, OpenVINO and PyTorch 2.x as `sqz bench` peers for BERT sequence classifiers (src/eval/python_peers.cc).

    peer_encoder.py ENGINE VARIANT MODEL_DIR ONNX_DIR WORK_DIR INPUTS.json OUT.json RUNS WARMUP THREADS

ENGINE ctranslate2: MODEL_DIR (an HF BertForSequenceClassification dir) converted by CTranslate2's
own Transformers converter (VARIANT fp32: float32, int8: its int8 weights and int8 GEMMs); the
encoder returns the pooled output and the model's classifier (numpy, timed with it) gives the
logits. ENGINE openvino: ONNX_DIR/model-fp32.onnx (sqz's ONNX exporter, scripts/onnx_bert.py)
compiled for the CPU with inference precision f32 (VARIANT fp32) or bf16 (VARIANT bf16), or
ONNX_DIR/model-int8.onnx (VARIANT int8: the exporter's int8 QDQ graph).
ENGINE pytorch2: scripts/peer_pytorch2.py (transformers on PyPI's torch 2.x, in third_party/venv-torch2).
INPUTS.json holds batch, seq, input_ids, attention_mask, token_type_ids (row-major lists);
OUT.json gets the first run's logits (`values`), the wall ms of each timed run and the version.
"""
import json
import os
import sys
import time

import numpy as np


def load_inputs(path):
    d = json.load(open(path))
    shape = (d["batch"], d["seq"])
    return {k: np.asarray(d[k], dtype=np.int64).reshape(shape) for k in ("input_ids", "attention_mask", "token_type_ids")}


def ensure_vocabulary(model_dir):
    """CTranslate2's converter copies the tokenizer's vocabulary into its model; a model saved
    without a tokenizer (the bench's saved copy, a `--preset`) gets a placeholder one, a token per
    id (the bench feeds ids, not text): vocab.txt for BERT, a word-level tokenizer.json otherwise."""
    if any(os.path.exists(f"{model_dir}/{f}") for f in ("vocab.txt", "tokenizer.json", "vocab.json", "tokenizer.model")):
        return
    config = json.load(open(f"{model_dir}/config.json"))
    size = config["vocab_size"]
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens = special[:size] + [f"[id{i}]" for i in range(len(special), size)]
    if config.get("model_type") == "bert":
        with open(f"{model_dir}/vocab.txt", "w") as f:
            f.write("\n".join(tokens) + "\n")
        return
    tokenizer = {"version": "1.0", "added_tokens": [], "normalizer": None, "pre_tokenizer": {"type": "Whitespace"},
                 "post_processor": None, "decoder": None,
                 "model": {"type": "WordLevel", "vocab": {t: i for i, t in enumerate(tokens)}, "unk_token": "[UNK]"}}
    json.dump(tokenizer, open(f"{model_dir}/tokenizer.json", "w"))
    # The generic fast tokenizer: a family's own class would add its default special tokens.
    settings = {"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "[UNK]", "bos_token": "[CLS]", "eos_token": "[SEP]",
                "pad_token": "[PAD]"}
    json.dump(settings, open(f"{model_dir}/tokenizer_config.json", "w"))


def ctranslate2_model(variant, model_dir, work_dir):
    """MODEL_DIR converted by CTranslate2's Transformers converter for VARIANT (once per bench run):
    its directory and the compute type to load it with."""
    import ctranslate2

    compute = "int8" if variant == "int8" else "float32"
    out = f"{work_dir}/ct2-{variant}"
    if not os.path.exists(out):
        ensure_vocabulary(model_dir)
        ctranslate2.converters.TransformersConverter(model_dir).convert(out, quantization=compute)
    return out, compute


def openvino_compiled(variant, onnx_dir, threads, part=None):
    """The ONNX graph VARIANT runs, compiled for the CPU with `threads` threads; `part` names one
    graph of an encoder-decoder's directory (encoder_model.onnx, decoder_model.onnx)."""
    import openvino as ov

    config = {"INFERENCE_NUM_THREADS": threads} if threads > 0 else {}
    # Left alone, OpenVINO runs f32 graphs in bf16 on CPUs that have it: fp32 and int8 ask for f32.
    config["INFERENCE_PRECISION_HINT"] = "bf16" if variant == "bf16" else "f32"
    graph = f"{onnx_dir}/model-{'int8' if variant == 'int8' else 'fp32'}" + (f"/{part}" if part else ".onnx")
    core = ov.Core()
    return core.compile_model(core.read_model(graph), "CPU", config)


def ctranslate2_runner(variant, model_dir, work_dir, threads):
    import ctranslate2
    from safetensors.numpy import load_file

    out, compute = ctranslate2_model(variant, model_dir, work_dir)
    encoder = ctranslate2.Encoder(out, device="cpu", compute_type=compute, intra_threads=threads)
    weights = load_file(f"{model_dir}/model.safetensors")
    w, b = weights["classifier.weight"].astype(np.float32), weights["classifier.bias"].astype(np.float32)

    def run(x):
        lengths = x["attention_mask"].sum(1)
        ids = [row[:n].tolist() for row, n in zip(x["input_ids"], lengths)]
        types = [row[:n].tolist() for row, n in zip(x["token_type_ids"], lengths)]
        pooled = np.asarray(encoder.forward_batch(ids, token_type_ids=types).pooler_output)
        return pooled @ w.T + b

    return run, ctranslate2.__version__


def openvino_runner(variant, onnx_dir, threads):
    import openvino as ov

    compiled = openvino_compiled(variant, onnx_dir, threads)
    names = {p.get_any_name() for p in compiled.inputs}
    request = compiled.create_infer_request()

    def run(x):
        return np.asarray(request.infer({k: v for k, v in x.items() if k in names})[compiled.outputs[0]])

    return run, ov.__version__.split("-")[0]


def main():
    engine, variant, model_dir, onnx_dir, work_dir, inputs, out = sys.argv[1:8]
    runs, warmup, threads = (int(a) for a in sys.argv[8:11])
    x = load_inputs(inputs)
    if engine == "ctranslate2":
        run, version = ctranslate2_runner(variant, model_dir, work_dir, threads)
    elif engine == "openvino":
        run, version = openvino_runner(variant, onnx_dir, threads)
    elif engine == "pytorch2":
        from peer_pytorch2 import encoder_runner
        run, version = encoder_runner(variant, model_dir, threads)
    else:
        sys.exit(f"peer_encoder.py: unknown engine {engine!r} (ctranslate2, openvino, pytorch2)")
    first = run(x)
    for _ in range(warmup):
        run(x)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run(x)
        times.append((time.perf_counter() - t0) * 1e3)
    json.dump({"values": first.astype(np.float32).reshape(-1).tolist(), "times_ms": times, "version": version}, open(out, "w"))


if __name__ == "__main__":
    main()
