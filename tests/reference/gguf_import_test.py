"""`sqz import-gguf` against the `gguf` package: small Llama GGUF files written by gguf's own
GGUFWriter, one tensor type per matrix (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K,
Q6_K, rotated over three files so every type lands on a rotary q/k matrix too). Every tensor sqz
writes must equal gguf's own dequantize, with the q/k rows put back in HF order. The tokenizer
written from the GGUF vocabulary must tokenize as `transformers` does with that tokenizer.json.
Then the hostile files: each must be refused with a named error and leave no output dir.

Usage: python gguf_import_test.py SQZ_BINARY
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from safetensors.numpy import load_file

SQZ = sys.argv[1]
rng = np.random.default_rng(0)

HIDDEN, FFN, LAYERS, HEADS, KV_HEADS = 256, 512, 2, 4, 2
HEAD_DIM = HIDDEN // HEADS
TYPES = [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q4_K, T.Q5_K, T.Q6_K]
# Block bytes of the K-quants, whose quantizers gguf does not implement: random blocks with finite
# fp16 scales are written raw instead, which exercises every bit of the format just as well.
K_LAYOUT = {T.Q4_K: ("d", "dmin", 12, 128), T.Q5_K: ("d", "dmin", 12, 32, 128), T.Q6_K: (128, 64, "s16", "d")}

HARD_STRINGS = [
    "", " ", "Hello world", "  leading and trailing  ", "tabs\tand\nnewlines\r\n", "café naïve résumé",
    "Cafe\u0301 (NFD) vs Café (NFC)", "数字と漢字の混在", "emoji 🤖🚀 and 👩‍👩‍👧", "control \x01\x02 chars",
    "numbers 12345 and 3.14159 and ١٢٣", "supercalifragilisticexpialidocious" * 3, "don't won't it's",
    "<|special|> not special", "a" * 300, "MiXeD CaSe WoRdS", "   \n\n   ", "x=1;y=22;z=333",
]


def k_quant_bytes(qtype, rows, cols):
    blocks = rows * cols // 256
    parts = []
    for p in K_LAYOUT[qtype]:
        if p in ("d", "dmin"):
            parts.append(rng.uniform(-0.05, 0.05, (blocks, 1)).astype(np.float16).view(np.uint8))
        elif p == "s16":
            parts.append(rng.integers(-128, 128, (blocks, 16), dtype=np.int8).view(np.uint8))
        else:
            parts.append(rng.integers(0, 256, (blocks, p), dtype=np.uint8))
    if qtype == T.Q6_K:  # ql, qh, scales, d
        parts = [parts[0], parts[1], parts[2], parts[3]]
    return np.concatenate(parts, axis=1).reshape(rows, -1)


def add_tensor(w, name, shape, qtype):
    rows, cols = shape
    if qtype in K_LAYOUT:
        w.add_tensor(name, k_quant_bytes(qtype, rows, cols), raw_dtype=qtype)
        return
    x = rng.standard_normal((rows, cols)).astype(np.float32) * 0.05
    if qtype == T.F32:
        w.add_tensor(name, x)
    elif qtype == T.F16:
        w.add_tensor(name, x.astype(np.float16))
    else:
        w.add_tensor(name, gguf.quants.quantize(x, qtype), raw_dtype=qtype)


def train_vocab():
    """A byte-level BPE trained by `tokenizers` on the hard strings: tokens, merges, added tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(HARD_STRINGS * 5 + ["the quick brown fox jumps over the lazy dog 0123456789"] * 20, trainer)
    state = json.loads(tok.to_str())["model"]
    tokens = [t for t, _ in sorted(state["vocab"].items(), key=lambda kv: kv[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in state["merges"]]
    types = [3 if t.startswith("<|") else 1 for t in tokens]
    return tokens, merges, types


def write_llama(path, rotation, pre="smollm", tokenizer=None):
    w = gguf.GGUFWriter(path, "llama")
    tokens, merges, types = tokenizer or train_vocab()
    w.add_block_count(LAYERS)
    w.add_context_length(128)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(False)
    vocab = len(tokens)
    matrices = [("token_embd.weight", (vocab, HIDDEN)), ("output.weight", (vocab, HIDDEN))]
    for i in range(LAYERS):
        matrices += [(f"blk.{i}.attn_q.weight", (HIDDEN, HIDDEN)), (f"blk.{i}.attn_k.weight", (KV_HEADS * HEAD_DIM, HIDDEN)),
                     (f"blk.{i}.attn_v.weight", (KV_HEADS * HEAD_DIM, HIDDEN)), (f"blk.{i}.attn_output.weight", (HIDDEN, HIDDEN)),
                     (f"blk.{i}.ffn_gate.weight", (FFN, HIDDEN)), (f"blk.{i}.ffn_up.weight", (FFN, HIDDEN)),
                     (f"blk.{i}.ffn_down.weight", (HIDDEN, FFN))]
    for k, (name, shape) in enumerate(matrices):
        add_tensor(w, name, shape, TYPES[(k + rotation) % len(TYPES)])
    for name in ["output_norm.weight"] + [f"blk.{i}.{n}.weight" for i in range(LAYERS) for n in ("attn_norm", "ffn_norm")]:
        w.add_tensor(name, (1 + 0.1 * rng.standard_normal(HIDDEN)).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def hf_name(gguf_name):
    top = {"token_embd.weight": "model.embed_tokens.weight", "output.weight": "lm_head.weight",
           "output_norm.weight": "model.norm.weight"}
    if gguf_name in top:
        return top[gguf_name]
    parts = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm", "attn_q": "self_attn.q_proj",
             "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
             "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
    _, layer, part, leaf = gguf_name.split(".")
    return f"model.layers.{layer}.{parts[part]}.{leaf}"


def hf_rows(x, heads):
    """llama.cpp's interleaved rotary rows back to HF's half-split order (transformers' reverse permute)."""
    return x.reshape(heads, x.shape[0] // heads // 2, 2, *x.shape[1:]).swapaxes(1, 2).reshape(x.shape)


def sqz(*args, ok=True):
    r = subprocess.run([SQZ, *args], capture_output=True, text=True)
    if ok and r.returncode != 0:
        raise AssertionError(f"sqz {' '.join(args)} failed ({r.returncode}): {r.stderr}")
    return r


def check_tensors(gguf_path, out):
    reader = gguf.GGUFReader(gguf_path)
    written = load_file(os.path.join(out, "model.safetensors"))
    seen = set()
    for t in reader.tensors:
        want = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        if ".attn_q." in t.name:
            want = hf_rows(want, HEADS)
        elif ".attn_k." in t.name:
            want = hf_rows(want, KV_HEADS)
        got = written[hf_name(t.name)]
        assert got.dtype == np.float32 and got.shape == want.shape, (t.name, got.shape, want.shape)
        if not np.array_equal(got, want):
            bad = np.argwhere(got != want)[0]
            raise AssertionError(f"{t.name} ({t.tensor_type.name}) differs at {bad}: sqz {got[tuple(bad)]} gguf {want[tuple(bad)]}")
        seen.add(t.tensor_type.name)
    assert set(written) == {hf_name(t.name) for t in reader.tensors}, sorted(set(written))
    return seen


def sqz_token_ids(model_dir, texts):
    args = ["tokenize", model_dir]
    for t in texts:
        args += ["--text", t]
    lines = sqz(*args).stdout.splitlines()
    assert len(lines) == len(texts), lines
    return [json.loads(line)["input_ids"] for line in lines]


def check_tokenizer(out):
    from transformers import PreTrainedTokenizerFast
    hf = PreTrainedTokenizerFast(tokenizer_file=os.path.join(out, "tokenizer.json"))
    for s, got in zip(HARD_STRINGS, sqz_token_ids(out, HARD_STRINGS)):
        want = hf(s, add_special_tokens=False)["input_ids"]
        assert got == want, f"tokenize {s!r}: sqz {got} transformers {want}"


def check_refused(name, data, expect, tmp):
    path = os.path.join(tmp, name + ".gguf")
    with open(path, "wb") as f:
        f.write(data)
    out = os.path.join(tmp, name + "-out")
    r = sqz("import-gguf", path, "--out", out, ok=False)
    assert r.returncode == 2, f"{name}: exit {r.returncode}, stderr {r.stderr}"
    assert expect in r.stderr and path in r.stderr, f"{name}: expected '{expect}' and the file name in: {r.stderr}"
    assert not os.path.exists(out), f"{name}: left {out} behind"


def main():
    with tempfile.TemporaryDirectory() as tmp:
        vocab = train_vocab()
        types_seen = set()
        for rotation in (0, 4, 8):
            path = os.path.join(tmp, f"tiny-{rotation}.gguf")
            write_llama(path, rotation, tokenizer=vocab)
            out = os.path.join(tmp, f"tiny-{rotation}")
            sqz("import-gguf", path, "--out", out)
            types_seen |= check_tensors(path, out)
            config = json.load(open(os.path.join(out, "config.json")))
            assert config["num_key_value_heads"] == KV_HEADS and config["tie_word_embeddings"] is False, config
        assert types_seen >= {t.name for t in TYPES}, types_seen
        print(f"ok: every tensor equals gguf's dequantize ({', '.join(sorted(types_seen))})")
        check_tokenizer(os.path.join(tmp, "tiny-0"))
        print(f"ok: tokenizer.json from the GGUF vocab tokenizes {len(HARD_STRINGS)} hard strings as transformers does")

        good = open(os.path.join(tmp, "tiny-0.gguf"), "rb").read()
        n_tensors = int.from_bytes(good[8:16], "little")
        check_refused("bad-magic", b"GGUG" + good[4:], "not a GGUF file", tmp)
        check_refused("old-version", good[:4] + (1).to_bytes(4, "little") + good[8:], "GGUF version 1", tmp)
        check_refused("truncated-header", good[:200], "truncated", tmp)
        check_refused("truncated-data", good[:-1000], "lie outside it", tmp)
        check_refused("kv-count-overflow", good[:16] + (2**64 - 1).to_bytes(8, "little") + good[24:], "metadata_kv_count", tmp)
        check_refused("tensor-count-overflow", good[:8] + (2**62).to_bytes(8, "little") + good[16:], "tensor_count", tmp)
        # The first tensor info's offset field: find it by the writer's layout (name, n_dims, dims, type, offset).
        reader = gguf.GGUFReader(os.path.join(tmp, "tiny-0.gguf"))
        first = reader.tensors[0]
        info_start = good.find(first.name.encode()) - 8
        n_dims = int.from_bytes(good[info_start + 8 + len(first.name):][:4], "little")
        offset_pos = info_start + 8 + len(first.name) + 4 + 8 * n_dims + 4
        assert int.from_bytes(good[offset_pos:offset_pos + 8], "little") == 0, "first tensor info not where expected"
        bad = bytearray(good)
        bad[offset_pos:offset_pos + 8] = (2**63).to_bytes(8, "little")
        check_refused("offset-out-of-range", bytes(bad), "lie outside it", tmp)
        dims_pos = info_start + 8 + len(first.name) + 4
        bad = bytearray(good)
        bad[dims_pos:dims_pos + 8] = (2**40).to_bytes(8, "little")
        bad[dims_pos + 8:dims_pos + 16] = (2**40).to_bytes(8, "little")
        check_refused("numel-overflow", bytes(bad), "overflows", tmp)
        type_pos = dims_pos + 8 * n_dims
        bad = bytearray(good)
        bad[type_pos:type_pos + 4] = (10).to_bytes(4, "little")  # Q2_K: known to ggml, not decoded by sqz
        check_refused("undecoded-type", bytes(bad), "Q2_K", tmp)
        bad[type_pos:type_pos + 4] = (99).to_bytes(4, "little")
        check_refused("unknown-type", bytes(bad), "unknown ggml type id 99", tmp)
        assert n_tensors == len(reader.tensors)
        print("ok: hostile files refused by name, nothing written")


if __name__ == "__main__":
    main()
