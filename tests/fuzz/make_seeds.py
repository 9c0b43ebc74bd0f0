#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into OUT/<target>/: small valid inputs of each format,
taken from ../shared/fixtures where the files are small, written here where they are not (a
safetensors file of a few tensors, a GGUF holding one tensor of every decoded type and a
byte-level vocabulary, written by the `gguf` package when the venv has it). Standard library only
besides that optional package.

Usage: make_seeds.py SHARED_DIR OUT_DIR
"""
import json
import pathlib
import shutil
import struct
import sys

shared, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
fixtures = shared / "fixtures"


def seed(target, name, data):
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def safetensors(tensors, metadata=None):
    header, offset, blob = {}, 0, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blob += data
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + blob


seed("fuzz_safetensors", "three", safetensors({
    "a.weight": ("F32", [2, 3], bytes(24)), "a.bias": ("BF16", [3], bytes(6)), "ids": ("I64", [2], bytes(16))},
    {"format": "pt"}))
seed("fuzz_safetensors", "empty_tensor", safetensors({"e": ("F16", [0, 4], b""), "u": ("U8", [5], bytes(5))}))
seed("fuzz_safetensors", "no_tensors", safetensors({}))

for npy in sorted(fixtures.glob("*/inputs/*.npy")) + sorted(fixtures.glob("*/outputs/*.npy")):
    if npy.stat().st_size <= 4096:
        seed("fuzz_npy", f"{npy.parent.parent.name}-{npy.name}", npy.read_bytes())

for model in ("bert-mlm", "gpt2-lm"):
    d = fixtures / model / "model"
    config = (d / "tokenizer_config.json").read_bytes()
    if (d / "vocab.txt").exists():
        seed("fuzz_tokenizer_files", f"{model}-wordpiece", b"\x01" + (d / "vocab.txt").read_bytes() + b"\0" + config)
    if (d / "vocab.json").exists():
        merges = (d / "merges.txt").read_bytes()
        seed("fuzz_tokenizer_files", f"{model}-bpe", b"\x02" + (d / "vocab.json").read_bytes() + b"\0" + merges)
seed("fuzz_tokenizer_files", "tokenizer-json", b"\x00" + json.dumps({
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "\u0120": 3}, "merges": ["a b"]},
    "added_tokens": [{"id": 4, "content": "<|endoftext|>", "special": True}]}).encode())

texts = ["Hello, world!", "caf\u00e9 na\u00efve \u6570\u5b57 \U0001F916", "don't  stop\t\n", "[CLS] [SEP] <|endoftext|>"]
for i, text in enumerate(texts):
    seed("fuzz_encode", f"text{i}", text)

recipe_dir = pathlib.Path(__file__).resolve().parents[2] / "recipes"
for r in sorted((recipe_dir / "teachers").glob("*.yaml"))[:4]:
    seed("fuzz_recipe", r.name, r.read_bytes())


def gguf_seed():
    try:
        import numpy as np
        import gguf
    except ImportError:
        return False
    from gguf import GGMLQuantizationType as T
    path = out / "fuzz_gguf" / "every-type.gguf"
    path.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(1)
    w.add_embedding_length(256)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    alphabet = [chr(c) for c in range(33, 127)] + ["\u0120", "\u010a"]
    tokens = ["<|endoftext|>"] + alphabet + ["\u0120t", "he"]
    w.add_token_list(tokens)
    w.add_token_types([3] + [1] * (len(tokens) - 1))
    w.add_token_merges(["\u0120 t", "h e"])
    w.add_bos_token_id(0)
    w.add_eos_token_id(0)
    x = (np.arange(256, dtype=np.float32).reshape(1, 256) - 128) / 64
    w.add_tensor("f32", x)
    w.add_tensor("f16", x.astype(np.float16))
    for t in (T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1):
        w.add_tensor(t.name.lower(), gguf.quants.quantize(x, t), raw_dtype=t)
    for t in (T.Q4_K, T.Q5_K, T.Q6_K):  # gguf has no K-quantizer: one block of zeros is a valid block
        w.add_tensor(t.name.lower(), np.zeros((1, gguf.GGML_QUANT_SIZES[t][1]), dtype=np.uint8), raw_dtype=t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return True


for name, config in (("vit-default", {"image_processor_type": "ViTImageProcessor"}),
                     ("bicubic-rect", {"image_processor_type": "ViTImageProcessor", "size": {"height": 24, "width": 20}, "resample": 3,
                                       "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}),
                     ("no-resize", {"do_resize": False, "do_normalize": False})):
    seed("fuzz_image_processor", name, bytes([7, 12]) + json.dumps(config).encode() + b"\0" + bytes(range(256)))
if not gguf_seed():
    print("make_seeds: the gguf package is not importable; fuzz_gguf starts from a bare header")
seed("fuzz_gguf", "bare-header", b"GGUF" + struct.pack("<IQQ", 3, 0, 0))
print(f"make_seeds: {sum(1 for _ in out.rglob('*') if _.is_file())} seeds in {out}")
