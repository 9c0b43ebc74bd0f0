"""compressed-tensors interop, both directions, with the real `compressed-tensors` library.

The venv's torch is Debian's 1.13 (the libtorch sqz links); compressed-tensors >= 0.5 needs torch
>= 2.1 (float8 dtypes at import), so the version that runs here is 0.4.0, and transformers 4.46's
own compressed-tensors loader needs >= 0.7. The checks therefore use compressed-tensors' API
directly, as transformers' loader does: build the HF model from config.json, load the plain
tensors, and let ModelCompressor.decompress apply the quantization config (its activation
fake-quantization included) and write the dequantized weights.

sqz -> compressed-tensors: a SmoothQuant export with factors of its own (post-LN BERT,
`sqz-smoothed-int-quantized`) must be refused by compressed-tensors, not misread; a W8A8 int8 export (static per-tensor activations, `int-quantized`),
a W4 group-64 GPTQ export (`pack-quantized`) and the shipped GPUSQ model (2:4 + int8 QAT, dense
sparsity storage) are decompressed by compressed-tensors; its logits on 16 dev examples must equal
`sqz forward`'s within TOL_W8A8 / TOL_WEIGHT_ONLY with the same predictions. (0.4.0 has no
`sparse-24-bitmask` format, so that storage is not checked here.)
compressed-tensors -> sqz: compressed-tensors quantizes bert-spam itself (W8A8 static and W4
weight-only, calibrated on train examples), compresses and saves it; `sqz forward` on that
directory must give compressed-tensors' fake-quantized logits within the same tolerances.

Usage: python compressed_tensors_test.py SQZ_BINARY
"""
import json
import os
import sys
import tempfile

import numpy as np
import torch

from sqz_cli import REPO, SHARED, sqz, sqz_forward

SPAM = os.path.join(SHARED, "data", "spam")
TEACHER = os.path.join(REPO, "models", "bert-spam")
GPUSQ = os.path.join(REPO, "models", "minilm-spam-gpusq")
# Activation fake-quantization rounds at the same points in both, but a value on a rounding
# boundary can land on either side after float reordering: a few 1e-3 on logits of size ~3.
TOL_W8A8 = 1e-2
TOL_WEIGHT_ONLY = 1e-4


def dev_batch(model_dir, n=16, split="dev.jsonl"):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(model_dir)
    with open(os.path.join(SPAM, split), encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f][:n]
    return tok(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")


def sqz_logits(model_dir, enc, tmp):
    return sqz_forward(model_dir, tmp, **{k: v.numpy().astype(np.int64) for k, v in enc.items()})["logits"]


def decompressed_by_compressed_tensors(model_dir):
    """The HF model that compressed-tensors makes of a compressed directory."""
    from compressed_tensors.compressors import ModelCompressor
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForSequenceClassification
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    qc = cfg.pop("quantization_config")
    model = AutoModelForSequenceClassification.from_config(AutoConfig.for_model(**cfg)).eval()
    own = model.state_dict()
    plain = {k: v.float() for k, v in load_file(os.path.join(model_dir, "model.safetensors")).items()
             if k in own and v.dtype.is_floating_point and v.shape == own[k].shape}
    model.load_state_dict(plain, strict=False)
    # 0.4.0 initialises modules in the "compressed" status as int8 storage; decompressing needs the
    # float ("frozen") modules. Dense sparsity storage holds nothing to decompress (0.4.0's dense
    # sparsity compressor would re-load every tensor, int8 ones included, as float parameters).
    qc["quantization_status"] = "frozen"
    sparsity = qc.pop("sparsity_config", None)
    assert sparsity is None or sparsity["format"] == "dense", f"{model_dir}: sparsity format {sparsity['format']}"
    ModelCompressor.from_compression_config(qc).decompress(model_dir, model)
    return model.eval()


def compare(name, got, want, tol):
    diff = float(np.abs(got - want).max())
    same = float((got.argmax(-1) == want.argmax(-1)).mean())
    assert diff <= tol, f"{name}: max |sqz - compressed-tensors| = {diff:.3g} > {tol}"
    assert same == 1.0, f"{name}: predictions differ on {100 * (1 - same):.0f}% of the batch"
    return f"max |logit diff| {diff:.2g} (|logits| up to {np.abs(want).max():.2g}), predictions equal"


def sqz_exports(tmp):
    """sqz's exports, written by `sqz compress` (PTQ, no training) or shipped."""
    recipes = {
        "W8A8 int8 static (int-quantized)": (
            "quantize:\n  - {targets: {roles: [q, k, v, o, ffn_in, ffn_out]}, weight: {bits: 8},"
            " activation: {bits: 8, symmetric: false}}\n", TOL_W8A8),
        "W4 group-64 GPTQ (pack-quantized)": (
            "quantize:\n  - {targets: {roles: [q, k, v, o, ffn_in, ffn_out]}, weight: {bits: 4, granularity: group,"
            " group_size: 64, method: gptq}}\n", TOL_WEIGHT_ONLY),
    }
    out = []
    for i, (name, (quantize, tol)) in enumerate(recipes.items()):
        recipe = os.path.join(tmp, f"r{i}.yaml")
        with open(recipe, "w") as f:
            f.write(f"train:\n  model: {TEACHER}\n  task: spam\n  data: {SPAM}\n  max_length: 64\n  steps: 0\n"
                    f"  batch_size: 8\n{quantize}calibration: {{batches: 4}}\nlatency: {{enabled: false}}\n"
                    f"eval_batches: 2\nout: {os.path.join(tmp, f'export{i}')}\n")
        sqz("compress", "--recipe", recipe)
        out.append((name, os.path.join(tmp, f"export{i}", "model"), tol))
    if os.path.isdir(GPUSQ):
        out.append(("shipped GPUSQ MiniLM: 2:4 + int8 QAT (int-quantized, dense sparsity)", GPUSQ, TOL_W8A8))
    return out


def check_sqz_to_compressed_tensors(tmp):
    lines = []
    for name, d, tol in sqz_exports(tmp):
        enc = dev_batch(d)
        with torch.no_grad():
            want = decompressed_by_compressed_tensors(d)(**enc).logits.numpy()
        lines.append(f"ok sqz -> compressed-tensors, {name}: " + compare(name, sqz_logits(d, enc, tmp), want, tol))
    return lines


def quantize_with_compressed_tensors(scheme, out_dir):
    """bert-spam quantized, calibrated and compressed by compressed-tensors itself."""
    from compressed_tensors.compressors import ModelCompressor
    from compressed_tensors.quantization import QuantizationConfig, QuantizationStatus, apply_quantization_config
    from compressed_tensors.quantization.lifecycle import apply_quantization_status
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    model = AutoModelForSequenceClassification.from_pretrained(TEACHER).eval()
    targets = ["Linear"]
    group = {"targets": targets, **scheme}
    config = QuantizationConfig(config_groups={"group_0": group}, ignore=["classifier", "bert.pooler.dense"],
                                format="int-quantized" if scheme["weights"]["num_bits"] == 8 else "pack-quantized")
    apply_quantization_config(model, config)
    apply_quantization_status(model, QuantizationStatus.CALIBRATION)
    calib = dev_batch(TEACHER, n=64, split="train.jsonl")
    with torch.no_grad():
        for i in range(0, 64, 16):
            model(**{k: v[i:i + 16] for k, v in calib.items()})
    apply_quantization_status(model, QuantizationStatus.FROZEN)
    compressor = ModelCompressor(quantization_config=config)
    state = compressor.compress(model)
    model.save_pretrained(out_dir, state_dict=state, safe_serialization=True)
    compressor.update_config(out_dir)
    AutoTokenizer.from_pretrained(TEACHER).save_pretrained(out_dir)
    return model


def check_smoothed_export_is_refused(tmp):
    """SmoothQuant factors kept beside their layers are sqz's: compressed-tensors must refuse the format."""
    from compressed_tensors.compressors import ModelCompressor
    recipe = os.path.join(tmp, "smoothed.yaml")
    out = os.path.join(tmp, "smoothed")
    with open(recipe, "w") as f:
        f.write(f"train:\n  model: {TEACHER}\n  task: spam\n  data: {SPAM}\n  max_length: 64\n  steps: 0\n  batch_size: 8\n"
                "quantize:\n  - {targets: {types: [linear]}, weight: {bits: 8}, activation: {bits: 8, symmetric: false},"
                " smoothquant: {alpha: 0.5, unfoldable: scale}}\n"
                f"calibration: {{batches: 2}}\nlatency: {{enabled: false}}\neval_batches: 2\nout: {out}\n")
    sqz("compress", "--recipe", recipe)
    with open(os.path.join(out, "model", "config.json")) as f:
        qc = json.load(f)["quantization_config"]
    assert qc["format"] == "sqz-smoothed-int-quantized" and qc["input_smoothing"], qc.get("format")
    try:
        ModelCompressor.from_compression_config(qc)
    except Exception as e:  # the registry does not know the format
        return [f"ok compressed-tensors refuses sqz's smoothed export ({type(e).__name__}), "
                f"{len(qc['input_smoothing'])} layers with their own factors"]
    raise AssertionError("compressed-tensors accepted format sqz-smoothed-int-quantized: it would compute W diag(s) x")


def check_compressed_tensors_to_sqz(tmp):
    schemes = {
        "W8A8 int8 static": ({"weights": {"num_bits": 8, "type": "int", "symmetric": True, "strategy": "channel"},
                              "input_activations": {"num_bits": 8, "type": "int", "symmetric": False, "strategy": "tensor"}},
                             TOL_W8A8),
        "W4 group-64 weight-only": ({"weights": {"num_bits": 4, "type": "int", "symmetric": True, "strategy": "group",
                                                 "group_size": 64}}, TOL_WEIGHT_ONLY),
    }
    lines = []
    for i, (name, (scheme, tol)) in enumerate(schemes.items()):
        d = os.path.join(tmp, f"ct{i}")
        model = quantize_with_compressed_tensors(scheme, d)
        enc = dev_batch(d)
        with torch.no_grad():
            want = model(**enc).logits.numpy()  # compressed-tensors' own fake-quantized forward
        lines.append(f"ok compressed-tensors -> sqz, {name}: " + compare(name, sqz_logits(d, enc, tmp), want, tol))
    return lines


def main():
    try:
        import compressed_tensors  # noqa: F401
    except Exception as e:  # the venv predates the pin
        print(f"SKIPPED: compressed-tensors does not import in this venv ({e}); run scripts/install_deps.sh")
        sys.exit(77)
    with tempfile.TemporaryDirectory() as tmp:
        lines = check_sqz_to_compressed_tensors(tmp) + check_smoothed_export_is_refused(tmp) + check_compressed_tensors_to_sqz(tmp)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
