"""`sqz export --format gguf` read by the real readers:
- the `gguf` package parses the file; every tensor it dequantizes (gguf.quants) equals what
  `sqz import-gguf` reads back from the same file, bit for bit, and is within the type's error of
  the original weight (llama.cpp's row order for q/k undone);
- transformers' own GGUF loader builds a LlamaForCausalLM from the file whose logits equal
  `sqz forward` on the imported dir within 1e-4, and whose tokenizer gives the original
  tokenizer's ids;
- llama.cpp itself (llama-cpp-python, when `scripts/install_deps.sh --llamacpp` built it; a named
  skip otherwise) decodes greedily from the file the tokens `sqz generate` gives on its import;
for F16, Q8_0 and Q4_K on a random Llama built here by transformers (hidden 256, so Q4_K's
256-value rows apply) with the gpt2-lm fixture's byte-level BPE, and for Q4_K (what users deploy;
the other types' code paths are the random Llama's) on SmolLM2-135M-Instruct when
models/pretrained has it: each type on a 135M model costs ~50 s of Python dequantization.

Usage: python gguf_export_test.py SQZ_BINARY
"""
import json
import os
import shutil
import tempfile

import numpy as np
import torch

from sqz_cli import REPO, SHARED, sqz, sqz_forward, sqz_ids

GPT2_TOK = os.path.join(SHARED, "fixtures", "gpt2-lm", "model")
SMOL = os.path.join(REPO, "models", "pretrained", "smollm2-135m-instruct")
SMOL_GGUF = os.path.join(REPO, "models", "pretrained", "smollm2-135m-instruct-q4_1", "model.gguf")
TEXTS = ["Hello world", "café naïve Résumé 123456", "emoji 🤖 and tabs\tnewlines\n", "  spaced   out  "]
# Largest |dequantized - original| relative to the row's max |w|: half a step of each grid.
REL_ERROR = {"F16": 1e-3, "Q8_0": 1 / 127, "Q4_K": 0.2}
# llama.cpp's logits against sqz's on the same file, relative to the largest |logit|: its f16 and
# quantized products also round the activations (f16, q8 blocks).
LOGIT_ERROR = {"f16": 0.01, "q8_0": 0.05, "q4_k": 0.08}


def unpermute(w, heads):
    """llama.cpp's interleaved q/k rows back to HF's rotate-half order."""
    shape = w.shape
    return w.reshape(heads, shape[0] // heads // 2, 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def check_file(name, model_dir, gguf_path, tmp):
    import gguf
    from safetensors.numpy import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer
    reader = gguf.GGUFReader(gguf_path)
    imported = os.path.join(tmp, "imported")
    shutil.rmtree(imported, ignore_errors=True)
    sqz("import-gguf", gguf_path, "--out", imported)
    ours = load_file(os.path.join(imported, "model.safetensors"))
    original = {k: v.astype(np.float32) for k, v in load_file(os.path.join(model_dir, "model.safetensors")).items()}
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    heads, kv_heads = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    names = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
    block = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm", "attn_q": "self_attn.q_proj",
             "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
             "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
    types, worst = {}, {}
    for t in reader.tensors:
        base, leaf = t.name.rsplit(".", 1)
        if base.startswith("blk."):
            _, layer, part = base.split(".", 2)
            hf = f"model.layers.{layer}.{block[part]}.{leaf}"
        else:
            hf = f"{names[base]}.{leaf}"
        w = gguf.quants.dequantize(t.data, t.tensor_type).reshape([int(d) for d in reversed(t.shape)]).astype(np.float32)
        if base.endswith("attn_q") or base.endswith("attn_k"):
            w = unpermute(w, heads if base.endswith("attn_q") else kv_heads)
        assert np.array_equal(w, ours[hf]), f"{name}: {t.name} dequantized by gguf differs from sqz import-gguf"
        ref = original.get(hf)
        if ref is None and hf == "lm_head.weight":
            ref = original["model.embed_tokens.weight"]
        tname = t.tensor_type.name
        scale = np.abs(ref).max(axis=-1, keepdims=True) if ref.ndim == 2 else np.abs(ref).max()
        rel = float((np.abs(w - ref) / np.maximum(scale, 1e-12)).max())
        worst[tname] = max(worst.get(tname, 0.0), rel)
        types[tname] = types.get(tname, 0) + 1
    for tname, rel in worst.items():
        assert rel <= REL_ERROR.get(tname, 0.0), f"{name}: {tname} tensors differ from the original by {rel:.3g} of the row max"
    # transformers' GGUF loader: logits and tokenizer. (LlamaForCausalLM.from_pretrained in 4.46 does
    # not pass gguf_file to its config and builds the default 7B shape; the Auto class does.)
    hf_model = AutoModelForCausalLM.from_pretrained(tmp, gguf_file=os.path.basename(gguf_path)).eval()
    if not any(t.name == "output.weight" for t in reader.tensors):
        # Tied embeddings: 4.46's GGUF loader leaves lm_head untied (random) when there is no
        # output.weight, as llama.cpp's convert writes tied models; tie it as config.json would.
        hf_model.lm_head.weight = hf_model.model.embed_tokens.weight
    hf_tok = AutoTokenizer.from_pretrained(tmp, gguf_file=os.path.basename(gguf_path))
    orig_tok = AutoTokenizer.from_pretrained(model_dir)
    # transformers' GGUF tokenizer adds a BOS of its own accord (as pretrained_test.py notes), so
    # its ids are compared without special tokens; sqz's import of the file with them.
    sqz_token_ids = sqz_ids(imported, TEXTS)
    for text, got in zip(TEXTS, sqz_token_ids):
        want = orig_tok(text, add_special_tokens=False)["input_ids"]
        assert hf_tok(text, add_special_tokens=False)["input_ids"] == want, \
            f"{name} {text!r}: GGUF tokenizer {hf_tok(text, add_special_tokens=False)['input_ids']} original {want}"
        assert got == orig_tok(text)["input_ids"], f"{name} {text!r}: sqz on the import {got} original {orig_tok(text)['input_ids']}"
    ids = np.array([orig_tok(TEXTS[0] + " " + TEXTS[1])["input_ids"]], dtype=np.int64)
    got = sqz_forward(imported, tmp, input_ids=ids, attention_mask=np.ones_like(ids))["logits"]
    with torch.no_grad():
        want = hf_model(torch.from_numpy(ids)).logits.numpy()
    diff = float(np.abs(got - want).max())
    assert diff <= 1e-4, f"{name}: transformers on the GGUF vs sqz on its import: max |logit diff| {diff:.3g}"
    detail = ", ".join(f"{k} x{v} (max rel. error {worst[k]:.2g})" for k, v in sorted(types.items()))
    return f"ok {name}: gguf reads {len(reader.tensors)} tensors equal to sqz's import; {detail}; " \
           f"transformers' GGUF model within {diff:.2g} of sqz; tokenizer ids equal"


def check_llama_cpp(name, gguf_path, imported, tmp, greedy_must_match, steps=12):
    """llama.cpp itself (llama-cpp-python, when scripts/install_deps.sh --llamacpp built it) on the
    file, against sqz on its import of the same file: sqz's greedy continuation fed to llama.cpp,
    whose logits at every position must be within LOGIT_ERROR of sqz forward's (llama.cpp also
    quantizes the activations of q8_0 / q4_k products, so a random model's near ties may decode
    differently); with greedy_must_match its own greedy tokens must equal sqz's."""
    try:
        import llama_cpp
    except ImportError:
        return f"SKIPPED llama.cpp on {name}: llama-cpp-python not installed (scripts/install_deps.sh --llamacpp)"
    out = json.loads(sqz("generate", imported, "--prompt", "The old man and the sea", "--max-new-tokens", str(steps), "--ids"))
    ids = out["prompt_ids"] + out["new_ids"]
    ours = sqz_forward(imported, tmp, input_ids=np.array([ids], dtype=np.int64), attention_mask=np.ones((1, len(ids)), np.int64))["logits"][0]
    llm = llama_cpp.Llama(model_path=gguf_path, n_ctx=256, n_threads=2, n_batch=64, logits_all=True, verbose=False)
    llm.eval(ids)
    theirs = np.array(llm.scores[:len(ids)])
    err = float(np.abs(theirs - ours).max() / np.abs(ours).max())
    kind = os.path.basename(gguf_path).split("-")[-1].split(".")[0]
    assert err <= LOGIT_ERROR[kind], f"{name}: llama.cpp's logits differ from sqz's by {err:.3g} relative (> {LOGIT_ERROR[kind]})"
    line = f"ok llama.cpp {llama_cpp.__version__} on {name}: logits over {len(ids)} positions within {err:.2g} relative of sqz's"
    if greedy_must_match:
        llm.reset()
        llm.eval(out["prompt_ids"])
        new = []
        for _ in range(len(out["new_ids"])):
            token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            new.append(token)
            llm.eval([token])
        assert new == out["new_ids"], f"{name}: llama.cpp greedy {new} sqz on the import {out['new_ids']}"
        line += f", {len(new)} greedy tokens equal"
    llm.close()
    return line


def tiny_llama(tmp):
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=857, hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=128, bos_token_id=856, eos_token_id=856,
                         tie_word_embeddings=False)
    d = os.path.join(tmp, "tiny-llama")
    LlamaForCausalLM(config).save_pretrained(d, safe_serialization=True)
    for f in ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(os.path.join(GPT2_TOK, f), d)
    return d


def main():
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        models = [("random Llama (GQA 4/2, untied)", tiny_llama(tmp), ("f16", "q8_0", "q4_k"))]
        smol = SMOL
        if not os.path.isdir(smol) and os.path.isfile(SMOL_GGUF):  # what install_deps fetches: the Q4_1 GGUF
            smol = os.path.join(tmp, "smollm2-135m-instruct")
            sqz("import-gguf", SMOL_GGUF, "--out", smol)
        if os.path.isdir(smol):
            models.append(("SmolLM2-135M-Instruct", smol, ("q4_k",)))
        else:
            lines.append("SKIPPED SmolLM2-135M-Instruct: not fetched (scripts/install_deps.sh)")
        for name, d, types in models:
            for t in types:
                path = os.path.join(tmp, f"model-{t}.gguf")
                report = json.loads(sqz("export", d, "--format", "gguf", "--type", t, "--out", path, "--overwrite"))
                lines.append(check_file(f"{name} {t}", d, path, tmp) + f"; {report['bytes'] / 1e6:.1f} MB")
                lines.append(check_llama_cpp(f"{name} {t}", path, os.path.join(tmp, "imported"), tmp,
                                             greedy_must_match=t == "f16" or name.startswith("SmolLM2")))
                os.remove(path)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
