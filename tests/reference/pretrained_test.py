"""sqz on the real pretrained checkpoints of models/pretrained (scripts/fetch_models.py), checked
live against transformers:
- all-MiniLM-L6-v2 (BertModel): sqz's WordPiece ids equal BertTokenizerFast's on hard strings;
  `sqz forward` last_hidden_state and pooler_output equal transformers' within 1e-4 (padded batch).
- SmolLM2-135M-Instruct (GGUF Q4_1): `sqz import-gguf` writes an HF Llama dir whose every tensor
  equals what transformers' own GGUF loader dequantizes (lm_head aside: transformers 4.46 does not
  tie it for a GGUF without output.weight); sqz's ids equal transformers' GGUF tokenizer's;
  transformers loads the imported dir and its logits equal `sqz forward`'s within 1e-4; greedy
  `sqz generate` gives transformers' tokens.
A model that was not fetched is skipped with a line saying so.

Usage: python pretrained_test.py SQZ_BINARY
"""
import json
import os
import tempfile

import numpy as np
import torch

from sqz_cli import REPO, greedy, sqz, sqz_forward, sqz_ids

PRETRAINED = os.path.join(REPO, "models", "pretrained")
TEXTS = ["Hello world", "café naïve Résumé", "数字と漢字", "emoji 🤖 and numbers 12345", "  spaced   out  ",
         "don't stop-believing, it's 3.14!", "supercalifragilisticexpialidocious" * 2, "tabs\tand\nnewlines"]


def assert_close(name, got, want, mask, tol=1e-4):
    diff = np.abs(got - want)[mask.astype(bool)].max()
    assert diff <= tol, f"{name}: max |sqz - transformers| = {diff:.3g} > {tol}"
    return diff


def check_minilm(tmp):
    from transformers import AutoTokenizer, BertModel
    d = os.path.join(PRETRAINED, "all-minilm-l6-v2")
    if not os.path.isdir(d):
        print("SKIPPED all-minilm-l6-v2: not fetched (scripts/install_deps.sh)")
        return
    tok = AutoTokenizer.from_pretrained(d)
    for text, got in zip(TEXTS, sqz_ids(d, TEXTS)):
        assert got == tok(text)["input_ids"], f"{text!r}: sqz {got} transformers {tok(text)['input_ids']}"
    enc = tok(TEXTS, padding=True, return_tensors="np")
    outs = sqz_forward(d, tmp, input_ids=enc["input_ids"].astype(np.int64),
                       attention_mask=enc["attention_mask"].astype(np.int64),
                       token_type_ids=enc["token_type_ids"].astype(np.int64))
    model = BertModel.from_pretrained(d).eval()
    with torch.no_grad():
        ref = model(**{k: torch.from_numpy(v.astype(np.int64)) for k, v in enc.items()})
    mask = enc["attention_mask"][..., None].repeat(ref.last_hidden_state.shape[-1], -1)
    d1 = assert_close("last_hidden_state", outs["last_hidden_state"], ref.last_hidden_state.numpy(), mask)
    d2 = assert_close("pooler_output", outs["pooler_output"], ref.pooler_output.numpy(), np.ones_like(outs["pooler_output"]))
    print(f"ok all-minilm-l6-v2: ids equal on {len(TEXTS)} strings; hidden states within {d1:.2g}, pooler {d2:.2g}")


def check_smollm2(tmp):
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM
    src = os.path.join(PRETRAINED, "smollm2-135m-instruct-q4_1")
    if not os.path.isfile(os.path.join(src, "model.gguf")):
        print("SKIPPED smollm2-135m-instruct-q4_1: not fetched (scripts/install_deps.sh)")
        return
    d = os.path.join(tmp, "smollm2")
    sqz("import-gguf", os.path.join(src, "model.gguf"), "--out", d)
    from safetensors.numpy import load_file
    ours = load_file(os.path.join(d, "model.safetensors"))
    theirs = AutoModelForCausalLM.from_pretrained(src, gguf_file="model.gguf").state_dict()
    compared = 0
    for name, t in theirs.items():
        if name == "lm_head.weight":
            continue
        assert np.array_equal(ours[name], t.numpy()), f"{name} differs from transformers' GGUF loader"
        compared += 1
    assert compared == len(ours), (compared, len(ours))
    hf_tok = AutoTokenizer.from_pretrained(src, gguf_file="model.gguf")
    for text, got in zip(TEXTS, sqz_ids(d, TEXTS)):
        want = hf_tok(text, add_special_tokens=False)["input_ids"]
        assert got == want, f"{text!r}: sqz {got} transformers (GGUF tokenizer) {want}"
    model = LlamaForCausalLM.from_pretrained(d).eval()
    ids = np.array([sqz_ids(d, ["The capital of France is"])[0]], dtype=np.int64)
    outs = sqz_forward(d, tmp, input_ids=ids, attention_mask=np.ones_like(ids))
    with torch.no_grad():
        ref = model(torch.from_numpy(ids)).logits.numpy()
    diff = assert_close("logits", outs["logits"], ref, np.ones_like(ref))
    gen = json.loads(sqz("generate", d, "--prompt", "The capital of France is", "--max-new-tokens", "12", "--ids"))
    want = greedy(model, ids, 12, model.config.eos_token_id)
    assert gen["new_ids"] == want, f"greedy: sqz {gen['new_ids']} transformers {want}"
    print(f"ok smollm2-135m-instruct: {compared} tensors equal transformers' GGUF loader; ids equal; "
          f"logits within {diff:.2g}; greedy continuation {gen['text']!r}")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        check_minilm(tmp)
        check_smollm2(tmp)


if __name__ == "__main__":
    main()
