"""PyTorch 2.x from PyPI as a `sqz bench` peer: the runners scripts/peer_encoder.py,
peer_decoder.py and peer_seq2seq.py call for ENGINE pytorch2. They run in third_party/venv-torch2
(scripts/install_deps.sh --torch2, python/requirements-torch2.txt), not in the main venv, whose
torch is Debian's 1.13.

The saved model is loaded by transformers' Auto classes in float32, on `threads` intra-op threads:
VARIANT fp32 runs it eagerly (PyTorch's default attention, SDPA); int8 after
torch.ao.quantization.quantize_dynamic (every nn.Linear, GPT-2's Conv1D turned into nn.Linear first:
int8 weights per output channel, activations quantized per call); compile after torch.compile (the
inductor backend, C++ kernels for the CPU; the check run and the warm-up runs absorb compilation).
"""
import time

import numpy as np


def version():
    import torch

    return torch.__version__.split("+")[0]


def as_linear(model):
    """GPT-2's Conv1D (x @ W + b, W [in, out]) as nn.Linear, so that dynamic quantization sees it."""
    import torch
    from transformers.pytorch_utils import Conv1D

    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, Conv1D):
                linear = torch.nn.Linear(child.weight.shape[0], child.weight.shape[1])
                linear.weight.data = child.weight.data.t().contiguous()
                linear.bias.data = child.bias.data
                setattr(module, child_name, linear)
    return model


def load(kind, variant, model_dir, threads):
    """The model of `kind` (encoder, decoder, seq2seq) prepared for VARIANT."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoModelForSequenceClassification

    torch.set_num_threads(threads)
    cls = {"encoder": AutoModelForSequenceClassification, "decoder": AutoModelForCausalLM, "seq2seq": AutoModelForSeq2SeqLM}[kind]
    model = cls.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    if variant == "int8":
        model = torch.ao.quantization.quantize_dynamic(as_linear(model), {torch.nn.Linear}, dtype=torch.qint8)
    elif variant == "compile":
        model.forward = torch.compile(model.forward)
    elif variant != "fp32":
        raise SystemExit(f"peer_pytorch2.py: unknown variant {variant!r} (fp32, int8, compile)")
    return model


def encoder_runner(variant, model_dir, threads):
    """run(x) -> logits of a BERT classifier; x holds input_ids, attention_mask, token_type_ids."""
    import torch

    model = load("encoder", variant, model_dir, threads)

    def run(x):
        with torch.inference_mode():
            return model(**{k: torch.from_numpy(v) for k, v in x.items()}).logits.numpy()

    return run, version()


def greedy_steps(step, logits, steps):
    """`steps` greedy tokens after the first logits; step(next_ids [b, 1]) returns the next logits."""
    for _ in range(steps):
        logits = step(logits.argmax(-1, keepdim=True))
    return logits


def decoder_runner(variant, model_dir, threads, x):
    """run() -> (the prompt's last logits, [], prefill ms, decode ms per token), with the KV cache."""
    import torch

    model = load("decoder", variant, model_dir, threads)
    ids = torch.from_numpy(np.asarray(x["input_ids"], dtype=np.int64).reshape(x["batch"], x["seq"]))

    def run():
        with torch.inference_mode():
            t0 = time.perf_counter()
            out = model(input_ids=ids, use_cache=True)
            t1 = time.perf_counter()
            first, cache = out.logits[:, -1], [out.past_key_values]

            def step(next_ids):
                o = model(input_ids=next_ids, past_key_values=cache[0], use_cache=True)
                cache[0] = o.past_key_values
                return o.logits[:, -1]

            greedy_steps(step, first, x["decode_steps"])
            t2 = time.perf_counter()
        return first.numpy(), [], (t1 - t0) * 1e3, (t2 - t1) * 1e3 / max(x["decode_steps"], 1)

    return run, version()


def seq2seq_runner(variant, model_dir, threads, x):
    """run() -> (the first decoder step's logits, encode + first step ms, decode ms per token)."""
    import torch

    model = load("seq2seq", variant, model_dir, threads)
    ids = torch.from_numpy(np.asarray(x["input_ids"], dtype=np.int64).reshape(x["batch"], x["seq"]))
    mask = torch.ones_like(ids)
    start = torch.full((x["batch"], 1), model.config.decoder_start_token_id, dtype=torch.long)

    def run():
        with torch.inference_mode():
            t0 = time.perf_counter()
            encoded = model.get_encoder()(input_ids=ids, attention_mask=mask)
            out = model(encoder_outputs=encoded, attention_mask=mask, decoder_input_ids=start, use_cache=True)
            t1 = time.perf_counter()
            first, cache = out.logits[:, -1], [out.past_key_values]

            def step(next_ids):
                o = model(encoder_outputs=encoded, attention_mask=mask, decoder_input_ids=next_ids, past_key_values=cache[0],
                          use_cache=True)
                cache[0] = o.past_key_values
                return o.logits[:, -1]

            greedy_steps(step, first, x["decode_steps"])
            t2 = time.perf_counter()
        return first.numpy(), (t1 - t0) * 1e3, (t2 - t1) * 1e3 / max(x["decode_steps"], 1)

    return run, version()
