"""`sqz export --format onnx` of BART and T5 against the real transformers, live: for each random
ConditionalGeneration model of live_parity_test.seq2seq_cases (tied and untied heads, relu and
gelu, scaled embeddings, 1+3 layers, T5 v1.0 and v1.1 with their relative position buckets), two
seeds, sqz writes the encoder and decoder graphs (after its own check on ONNX Runtime) and
OpenVINO runs them at f32 on a right-padded batch:
- the encoder's last hidden state within 1e-4 relative of transformers' at the real positions;
- eight greedy steps through the KV cache: each step's logits within 1e-4 relative of transformers'
  full forward on the same decoder prefix, and the argmax tokens equal.

Usage: python onnx_seq2seq_test.py SQZ_BINARY
"""
import json
import os
import tempfile

import numpy as np
import torch

from live_parity_test import GPT2_TOK, TOL, batch, save, seq2seq_cases
from sqz_cli import sqz

STEPS = 8


def compiled(core, path):
    return core.compile_model(core.read_model(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})


def check_model(name, seed, model, d, tmp, core):
    out = os.path.join(tmp, "onnx")
    sqz("export", d, "--format", "onnx", "--out", out, "--overwrite")
    encoder, decoder = compiled(core, f"{out}/encoder_model.onnx"), compiled(core, f"{out}/decoder_model.onnx")
    shapes = json.load(open(f"{out}/cache_shapes.json"))
    cfg = model.config
    ids, mask = batch(cfg.vocab_size, seed, [7, 12, 3], cfg.pad_token_id, False)
    encoded = encoder({"input_ids": ids, "attention_mask": mask})
    with torch.no_grad():
        want = model.get_encoder()(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state.numpy()
    got = encoded[encoder.output("encoder_last_hidden_state")]
    worst = float(np.abs(got - want)[mask.astype(bool)].max() / np.abs(want).max())
    b = len(ids)
    prefix = np.full((b, 1), shapes["decoder_start_token_id"], np.int64)
    feeds = {"decoder_input_ids": prefix, "encoder_attention_mask": mask}
    for i in range(shapes["layers"]):
        for kind in ("key", "value"):
            feeds[f"past_{kind}_{i}"] = np.zeros((b, shapes["heads"][i], 0, shapes["head_dim"]), np.float32)
            feeds[f"cross_{kind}_{i}"] = encoded[encoder.output(f"cross_{kind}_{i}")]
    for step in range(STEPS):
        result = decoder(feeds)
        logits = result[decoder.output("logits")]
        with torch.no_grad():
            ref = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                        decoder_input_ids=torch.from_numpy(prefix)).logits[:, -1].numpy()
        worst = max(worst, float(np.abs(logits - ref).max() / np.abs(ref).max()))
        tokens, ref_tokens = logits.argmax(-1), ref.argmax(-1)
        assert (tokens == ref_tokens).all(), f"{name} (seed {seed}) step {step}: ONNX greedy {tokens} transformers {ref_tokens}"
        nxt = tokens.astype(np.int64).reshape(b, 1)
        prefix = np.concatenate([prefix, nxt], axis=1)
        feeds["decoder_input_ids"] = nxt
        for i in range(shapes["layers"]):
            for kind in ("key", "value"):
                feeds[f"past_{kind}_{i}"] = result[decoder.output(f"present_{kind}_{i}")]
    assert worst <= TOL, f"{name} (seed {seed}): ONNX graphs differ from transformers by {worst:.3g} relative > {TOL}"
    return f"ok ONNX export of {name} (seed {seed}): encoder and {STEPS} cached steps within {worst:.2g} relative, greedy tokens equal"


def main():
    import openvino as ov

    core, lines = ov.Core(), []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in (0, 1):
            torch.manual_seed(seed)
            for name, model in seq2seq_cases():
                if "ConditionalGeneration" not in name:
                    continue
                model.eval()
                lines.append(check_model(name, seed, model, save(model, tmp, "model", GPT2_TOK), tmp, core))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
