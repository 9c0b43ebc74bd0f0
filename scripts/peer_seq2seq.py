#!/usr/bin/env python3
"""CTranslate2 as a `sqz bench` peer of encoder-decoders (BART, T5; src/eval/python_peers.cc).

    peer_seq2seq.py ctranslate2 VARIANT MODEL_DIR ONNX_DIR WORK_DIR INPUTS.json OUT.json RUNS WARMUP THREADS

MODEL_DIR (an HF BartForConditionalGeneration or T5ForConditionalGeneration dir) converted by
CTranslate2's Transformers converter (VARIANT fp32: float32, int8: its int8 weights and GEMMs),
run by its Translator, greedy, never stopping early. The check reads the first decoder step's
logits (return_logits_vocab, with min_decoding_length 0 so that EOS is not masked). Each timed
run is one translate_batch call of decode_steps + 1 tokens split by its per-token callback, as
peer_decoder.py times CTranslate2's Generator: until the first token (encode the source + the
first step, the bench's "prefill"), then per token. ONNX_DIR is unused (no ONNX graph of an
encoder-decoder is written).
INPUTS.json: batch, seq, input_ids (the sources), decode_steps.
OUT.json: values (the first step's logits, first run), prefill_ms, decode_ms_per_token, version.
"""
import json
import sys
import time

import numpy as np

from peer_decoder import timed_tokens
from peer_encoder import ctranslate2_model


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


def main():
    engine, variant, model_dir, _onnx_dir, work_dir, inputs, out = sys.argv[1:8]
    runs, warmup, threads = (int(a) for a in sys.argv[8:11])
    if engine != "ctranslate2":
        sys.exit(f"peer_seq2seq.py: unknown engine {engine!r} (ctranslate2)")
    x = json.load(open(inputs))
    run, version = ctranslate2_runner(variant, model_dir, work_dir, threads, x)
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
