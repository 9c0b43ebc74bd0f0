#!/usr/bin/python3
"""Writes a Hugging Face GPT-2 (GPT2LMHeadModel or GPT2Model weights: config.json +
model.safetensors) as an ONNX decoder with a KV cache for ONNX Runtime, the peer `sqz bench`
measures decoders against.

  /usr/bin/python3 scripts/onnx_gpt2.py MODEL_DIR OUT.onnx [--int8]

Inputs: input_ids [batch, new] and, per layer i, past_key_i / past_value_i [batch, heads, past,
head_dim] (past = 0 for a prompt). Outputs: logits [batch, vocab] of the last new position (what
greedy decoding reads) and present_key_i / present_value_i (past + new). Positions continue from
past; new tokens see every past token and the new ones before them. No padding.
--int8 quantizes every Linear and the tied LM head as onnx_bert.py does (ONNX Runtime's dynamic
quantization: DynamicQuantizeLinear u8 activations, int8 weights per output channel).
"""
import math
import os
import sys

import numpy as np
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_bert import Graph, parse_exporter_args, read_safetensors  # noqa: E402


def conv1d(g, x, prefix):
    """GPT-2's Conv1D: x @ W + b with W stored [in, out] (an nn.Linear's weight transposed)."""
    g.w[prefix + ".linear.weight"] = g.w[prefix + ".weight"].T
    g.w[prefix + ".linear.bias"] = g.w[prefix + ".bias"]
    return g.linear(x, prefix + ".linear")


def gelu_new(g, x):  # HF's "gelu_new": 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    cube = g.op("Mul", [g.op("Mul", [x, x]), x])
    inner = g.op("Mul", [g.op("Add", [x, g.op("Mul", [cube, g.const(np.float32(0.044715))])]),
                         g.const(np.float32(math.sqrt(2 / math.pi)))])
    return g.op("Mul", [g.op("Mul", [x, g.const(np.float32(0.5))]), g.op("Add", [g.op("Tanh", [inner]), g.const(np.float32(1.0))])])


def scalar_dim(g, tensor, axis):
    return g.op("Gather", [g.op("Shape", [tensor]), g.const(np.array(axis, np.int64))])


def main():
    a, cfg = parse_exporter_args(__doc__, "gpt2")
    act = cfg.get("activation_function", "gelu_new")
    if act != "gelu_new":
        sys.exit(f"{a.model_dir}/config.json: field 'activation_function' is '{act}'; this exporter writes 'gelu_new'")
    if not cfg.get("scale_attn_weights", True) or cfg.get("scale_attn_by_inverse_layer_idx", False):
        sys.exit(f"{a.model_dir}/config.json: non-default attention scaling; this exporter writes 1/sqrt(head_dim)")
    w = read_safetensors(f"{a.model_dir}/model.safetensors")
    pre = "transformer." if "transformer.wte.weight" in w else ""
    heads, hidden, eps = cfg["n_head"], cfg["n_embd"], float(cfg.get("layer_norm_epsilon", 1e-5))
    hd = hidden // heads
    g = Graph(w, a.int8)

    ids = "input_ids"
    layers = cfg["n_layer"]
    past_len = scalar_dim(g, "past_key_0", 2)
    new_len = scalar_dim(g, ids, 1)
    total = g.op("Add", [past_len, new_len])
    one = g.const(np.array(1, np.int64))
    positions = g.op("Range", [past_len, total, one])
    x = g.op("Add", [g.op("Gather", [g.const(w[pre + "wte.weight"]), ids]), g.op("Gather", [g.const(w[pre + "wpe.weight"]), positions])])
    # Causal bias [new, past + new]: key j is visible to new token i when j <= past + i.
    visible = g.op("LessOrEqual", [g.op("Unsqueeze", [g.op("Range", [g.const(np.array(0, np.int64)), total, one]), g.const(np.array([0], np.int64))]),
                                   g.op("Unsqueeze", [positions, g.const(np.array([1], np.int64))])])
    bias = g.op("Where", [visible, g.const(np.float32(0.0)), g.const(np.float32(-1e9))])
    split_heads = g.const(np.array([0, 0, heads, hd], np.int64))
    merge_heads = g.const(np.array([0, 0, hidden], np.int64))
    presents = []
    for i in range(layers):
        lp = f"{pre}h.{i}."
        h = g.layer_norm(x, lp + "ln_1", eps)
        qkv = conv1d(g, h, lp + "attn.c_attn")
        q, k, v = g.op("Split", [qkv, g.const(np.array([hidden] * 3, np.int64))], axis=2, outputs=3)
        q, k, v = (g.op("Transpose", [g.op("Reshape", [t, split_heads])], perm=[0, 2, 1, 3]) for t in (q, k, v))
        k = g.op("Concat", [f"past_key_{i}", k], axis=2)
        v = g.op("Concat", [f"past_value_{i}", v], axis=2)
        g.nodes.append(helper.make_node("Identity", [k], [f"present_key_{i}"]))
        g.nodes.append(helper.make_node("Identity", [v], [f"present_value_{i}"]))
        presents += [f"present_key_{i}", f"present_value_{i}"]
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, g.op("Transpose", [k], perm=[0, 1, 3, 2])]),
                                           g.const(np.float32(1 / math.sqrt(hd)))]), bias])
        ctx = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
        ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge_heads])
        x = g.op("Add", [x, conv1d(g, ctx, lp + "attn.c_proj")])
        h = g.layer_norm(x, lp + "ln_2", eps)
        x = g.op("Add", [x, conv1d(g, gelu_new(g, conv1d(g, h, lp + "mlp.c_fc")), lp + "mlp.c_proj")])
    x = g.layer_norm(x, pre + "ln_f", eps)
    last = g.op("Gather", [x, g.op("Sub", [new_len, one])], axis=1)
    w["lm_head.linear.weight"] = w.get("lm_head.weight", w[pre + "wte.weight"])
    g.nodes.append(helper.make_node("Identity", [g.linear(last, "lm_head.linear")], ["logits"]))

    vocab = w["lm_head.linear.weight"].shape[0]
    inputs = [helper.make_tensor_value_info(ids, TensorProto.INT64, ["batch", "new"])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", vocab])]
    for i in range(layers):
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_{kind}_{i}", TensorProto.FLOAT, ["batch", heads, "past", hd]))
            outputs.append(helper.make_tensor_value_info(f"present_{kind}_{i}", TensorProto.FLOAT, ["batch", heads, "total", hd]))
    g.save("sqz_gpt2", inputs, outputs, a.out)


if __name__ == "__main__":
    main()
