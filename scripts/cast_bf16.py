"""Stores a model dir's floating-point weights in bfloat16: model.safetensors is rewritten (temp
file, then rename) and config.json says torch_dtype bfloat16. sqz loads such weights into float32
parameters, so the stored model is the bf16-rounded one; evaluate it after the cast. In a
compressed-tensors export the quantization parameters (weight_scale, input_scale, zero points)
stay float32 and the int8 / packed weights stay as they are: only the float weights that were
not quantized (embeddings, norms, heads) are rounded.

usage: third_party/venv/bin/python scripts/cast_bf16.py MODEL_DIR
"""
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file


def main(model_dir):
    weights = os.path.join(model_dir, "model.safetensors")
    config_path = os.path.join(model_dir, "config.json")
    for path in (weights, config_path):
        if not os.path.isfile(path):
            sys.exit(f"cast_bf16: {path} not found")
    def keep(name):
        return name.endswith(("_scale", "_zero_point", "weight_shape"))

    tensors = {k: (v.to(torch.bfloat16) if v.is_floating_point() and not keep(k) else v) for k, v in load_file(weights).items()}
    with open(config_path) as f:
        config = json.load(f)
    config["torch_dtype"] = "bfloat16"
    save_file(tensors, weights + ".tmp", metadata={"format": "pt"})
    os.chmod(weights + ".tmp", 0o644)  # save_file creates it owner-only
    with open(config_path + ".tmp", "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    os.replace(weights + ".tmp", weights)
    os.replace(config_path + ".tmp", config_path)
    cast = sum(1 for v in tensors.values() if v.dtype == torch.bfloat16)
    print(f"cast_bf16: {model_dir}: {cast} of {len(tensors)} tensors stored as bfloat16 ({os.path.getsize(weights) / 1e6:.1f} MB)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip())
    main(sys.argv[1])
