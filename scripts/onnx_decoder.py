#!/usr/bin/python3
"""Writes a Hugging Face decoder (GPT-2, OPT or Llama causal LM: config.json + model.safetensors)
as an ONNX graph with a KV cache for ONNX Runtime, the peer `sqz bench` measures decoders against.

  /usr/bin/python3 scripts/onnx_decoder.py MODEL_DIR OUT.onnx [--int8 [--weight-bits 7] [--int8-form qdq]]

Inputs: input_ids [batch, new] and, per layer i, past_key_i / past_value_i [batch, kv_heads, past,
head_dim] (past = 0 for a prompt). Outputs: logits [batch, vocab] of the last new position (what
greedy decoding reads) and present_key_i / present_value_i (past + new). Positions continue from
past; new tokens see every past token and the new ones before them. No padding.
Per-layer shapes come from the weights, so a model SpeedUp shrank (heads, K/V groups or FFN
neurons cut out per layer, sqz-only config keys) exports as it is: layer i's past has its own K/V
head count (INPUTS' heads list in scripts/ort_decode.js).
Families as their HF modules compute them: GPT-2 (Conv1D weights, gelu_new), pre-LN OPT (learned
positions offset by 2, relu, Q scaled after its bias), Llama (RMSNorm, rotary positions with
default / linear / llama3 scaling, grouped-query attention, SwiGLU).
--int8 quantizes every Linear and the LM head as onnx_bert.py does (ONNX Runtime's dynamic
quantization: DynamicQuantizeLinear u8 activations, int8 weights per output channel); with
--int8-form qdq in the QDQ form (DequantizeLinear pairs before a float MatMul), as onnx_bert.py.
"""
import math
import os
import sys

import numpy as np
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_bert import Graph, parse_exporter_args, read_safetensors  # noqa: E402


def i64(*values):
    return np.array(values if len(values) != 1 else values[0], np.int64)


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


def rms_norm(g, x, weight, eps):  # Llama: x / sqrt(mean(x^2) + eps) * weight
    var = g.op("ReduceMean", [g.op("Mul", [x, x])], axes=[-1], keepdims=1)
    return g.op("Mul", [g.op("Div", [x, g.op("Sqrt", [g.op("Add", [var, g.const(np.float32(eps))])])]), g.const(weight)])


def llama_inv_freq(cfg, head_dim, model_dir):
    """Rotary inverse frequencies as HF's ROPE_INIT_FUNCTIONS compute them (float32)."""
    base = float(cfg.get("rope_theta", 10000.0))
    inv = (1.0 / (base ** (np.arange(0, head_dim, 2, dtype=np.int64).astype(np.float32) / head_dim))).astype(np.float32)
    rs = cfg.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type", "default"))
    if kind == "default":
        return inv
    if kind == "linear":
        return (inv / np.float32(rs["factor"])).astype(np.float32)
    if kind == "llama3":
        factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        low_wavelen, high_wavelen = old / low, old / high
        wavelen = 2 * math.pi / inv
        scaled = np.where(wavelen > low_wavelen, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
        return np.where(medium, smoothed, scaled).astype(np.float32)
    sys.exit(f"{model_dir}/config.json: field 'rope_scaling' type '{kind}'; this exporter writes default, linear and llama3")


def rotate(g, t, cos, sin, half):
    """HF's apply_rotary_pos_emb on t [..., new, head_dim]: t cos + rotate_half(t) sin."""
    first, second = g.op("Split", [t, g.const(i64([half, half]))], axis=-1, outputs=2)
    rotated = g.op("Concat", [g.op("Neg", [second]), first], axis=-1)
    return g.op("Add", [g.op("Mul", [t, cos]), g.op("Mul", [rotated, sin])])


class Family:
    """Where a family keeps its weights and how its blocks compute."""

    def __init__(self, cfg, w, model_dir):
        t = cfg["model_type"]
        self.type = t
        if t == "gpt2":
            self.pre = "transformer." if "transformer.wte.weight" in w else ""
            self.heads, self.hidden, self.layers = cfg["n_head"], cfg["n_embd"], cfg["n_layer"]
            self.kv_heads, self.eps = self.heads, float(cfg.get("layer_norm_epsilon", 1e-5))
            act = cfg.get("activation_function", "gelu_new")
            if act != "gelu_new":
                sys.exit(f"{model_dir}/config.json: field 'activation_function' is '{act}'; this exporter writes 'gelu_new'")
            if not cfg.get("scale_attn_weights", True) or cfg.get("scale_attn_by_inverse_layer_idx", False):
                sys.exit(f"{model_dir}/config.json: non-default attention scaling; this exporter writes 1/sqrt(head_dim)")
            self.embed = self.pre + "wte.weight"
        elif t == "opt":
            self.pre = "model.decoder." if "model.decoder.embed_tokens.weight" in w else "decoder."
            self.heads, self.hidden, self.layers = cfg["num_attention_heads"], cfg["hidden_size"], cfg["num_hidden_layers"]
            self.kv_heads, self.eps = self.heads, 1e-5
            if not cfg.get("do_layer_norm_before", True) or cfg.get("word_embed_proj_dim", self.hidden) != self.hidden:
                sys.exit(f"{model_dir}/config.json: post-LN OPT or OPT with project_in/out; this exporter writes pre-LN OPT without them")
            if cfg.get("activation_function", "relu") != "relu":
                sys.exit(f"{model_dir}/config.json: field 'activation_function' is not 'relu'")
            self.embed = self.pre + "embed_tokens.weight"
        else:
            self.pre = "model." if "model.embed_tokens.weight" in w else ""
            self.heads, self.hidden, self.layers = cfg["num_attention_heads"], cfg["hidden_size"], cfg["num_hidden_layers"]
            self.kv_heads = cfg.get("num_key_value_heads") or self.heads
            self.eps = float(cfg.get("rms_norm_eps", 1e-6))
            if cfg.get("hidden_act", "silu") != "silu":
                sys.exit(f"{model_dir}/config.json: field 'hidden_act' is not 'silu'")
            self.embed = self.pre + "embed_tokens.weight"
        self.head_dim = cfg.get("head_dim") or cfg.get("sqz_attention_head_size") or self.hidden // self.heads
        self.hidden = w[self.embed].shape[1]  # after any hidden-size cut
        self.inv_freq = llama_inv_freq(cfg, self.head_dim, model_dir) if t == "llama" else None

    def layer_heads(self, w, i):
        """(query heads, K/V heads) of layer i, read from its weights (SpeedUp cuts them per layer)."""
        hd = self.head_dim
        if self.type == "gpt2":
            heads = w[f"{self.pre}h.{i}.attn.c_attn.weight"].shape[1] // (3 * hd)  # Conv1D [in, 3 * heads * hd]
            return heads, heads
        lp = f"{self.pre}layers.{i}.self_attn."
        return w[lp + "q_proj.weight"].shape[0] // hd, w[lp + "k_proj.weight"].shape[0] // hd


def main():
    a, cfg = parse_exporter_args(__doc__, ("gpt2", "opt", "llama"))
    w = read_safetensors(f"{a.model_dir}/model.safetensors")
    f = Family(cfg, w, a.model_dir)
    g = Graph(w, a.int8, a.weight_bits, a.int8_form)
    hd = f.head_dim
    layer_heads = [f.layer_heads(w, i) for i in range(f.layers)]
    for i, (heads, kv_heads) in enumerate(layer_heads):
        if heads == 0 or heads % kv_heads:
            sys.exit(f"{a.model_dir}: layer {i} has {heads} query heads on {kv_heads} K/V heads; this exporter writes layers with heads")

    ids = "input_ids"
    past_len = g.op("Gather", [g.op("Shape", ["past_key_0"]), g.const(i64(2))])
    new_len = g.op("Gather", [g.op("Shape", [ids]), g.const(i64(1))])
    total = g.op("Add", [past_len, new_len])
    one = g.const(i64(1))
    positions = g.op("Range", [past_len, total, one])
    x = g.op("Gather", [g.const(w[f.embed]), ids])
    if f.type == "gpt2":
        x = g.op("Add", [x, g.op("Gather", [g.const(w[f.pre + "wpe.weight"]), positions])])
    elif f.type == "opt":  # learned positions, offset by 2 (no padding: position = index)
        x = g.op("Add", [x, g.op("Gather", [g.const(w[f.pre + "embed_positions.weight"]), g.op("Add", [positions, g.const(i64(2))])])])
    else:  # rotary: cos / sin [new, head_dim] of positions * inv_freq, the halves repeated
        freqs = g.op("Mul", [g.op("Unsqueeze", [g.op("Cast", [positions], to=TensorProto.FLOAT), g.const(i64([1]))]), g.const(f.inv_freq)])
        emb = g.op("Concat", [freqs, freqs], axis=1)
        cos, sin = g.op("Cos", [emb]), g.op("Sin", [emb])
    # Causal bias [new, past + new]: key j is visible to new token i when j <= past + i.
    visible = g.op("LessOrEqual", [g.op("Unsqueeze", [g.op("Range", [g.const(i64(0)), total, one]), g.const(i64([0]))]),
                                   g.op("Unsqueeze", [positions, g.const(i64([1]))])])
    bias = g.op("Where", [visible, g.const(np.float32(0.0)), g.const(np.float32(-1e9))])
    # Grouped-query attention without copying K/V: queries as [batch, kv_heads, rep, new, hd]
    # against keys [batch, kv_heads, 1, hd, total] (MatMul broadcasts the rep axis).
    presents = []
    for i in range(f.layers):
        heads, kv_heads = layer_heads[i]
        q_split = g.const(i64([0, 0, kv_heads, heads // kv_heads, hd]))
        kv_split = g.const(i64([0, 0, kv_heads, hd]))
        merge = g.const(i64([0, 0, heads * hd]))
        if f.type == "gpt2":
            lp = f"{f.pre}h.{i}."
            h = g.layer_norm(x, lp + "ln_1", f.eps)
            q, k, v = g.op("Split", [conv1d(g, h, lp + "attn.c_attn"), g.const(i64([heads * hd] * 3))], axis=2, outputs=3)
        elif f.type == "opt":
            lp = f"{f.pre}layers.{i}."
            h = g.layer_norm(x, lp + "self_attn_layer_norm", f.eps)
            q, k, v = (g.linear(h, lp + f"self_attn.{n}_proj") for n in "qkv")
        else:
            lp = f"{f.pre}layers.{i}."
            h = rms_norm(g, x, w[lp + "input_layernorm.weight"], f.eps)
            q, k, v = (g.linear(h, lp + f"self_attn.{n}_proj") for n in "qkv")
        q = g.op("Transpose", [g.op("Reshape", [q, q_split])], perm=[0, 2, 3, 1, 4])  # [b, kvh, rep, new, hd]
        k = g.op("Transpose", [g.op("Reshape", [k, kv_split])], perm=[0, 2, 1, 3])     # [b, kvh, new, hd]
        v = g.op("Transpose", [g.op("Reshape", [v, kv_split])], perm=[0, 2, 1, 3])
        if f.inv_freq is not None:
            q, k = rotate(g, q, cos, sin, hd // 2), rotate(g, k, cos, sin, hd // 2)
        k = g.op("Concat", [f"past_key_{i}", k], axis=2)
        v = g.op("Concat", [f"past_value_{i}", v], axis=2)
        g.nodes.append(helper.make_node("Identity", [k], [f"present_key_{i}"]))
        g.nodes.append(helper.make_node("Identity", [v], [f"present_value_{i}"]))
        presents += [f"present_key_{i}", f"present_value_{i}"]
        kt = g.op("Unsqueeze", [g.op("Transpose", [k], perm=[0, 1, 3, 2]), g.const(i64([2]))])
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, kt]), g.const(np.float32(1 / math.sqrt(hd)))]), bias])
        ctx = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), g.op("Unsqueeze", [v, g.const(i64([2]))])])
        ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 3, 1, 2, 4]), merge])
        if f.type == "gpt2":
            x = g.op("Add", [x, conv1d(g, ctx, lp + "attn.c_proj")])
            h = g.layer_norm(x, lp + "ln_2", f.eps)
            x = g.op("Add", [x, conv1d(g, gelu_new(g, conv1d(g, h, lp + "mlp.c_fc")), lp + "mlp.c_proj")])
        elif f.type == "opt":
            x = g.op("Add", [x, g.linear(ctx, lp + "self_attn.out_proj")])
            h = g.layer_norm(x, lp + "final_layer_norm", f.eps)
            x = g.op("Add", [x, g.linear(g.op("Relu", [g.linear(h, lp + "fc1")]), lp + "fc2")])
        else:
            x = g.op("Add", [x, g.linear(ctx, lp + "self_attn.o_proj")])
            h = rms_norm(g, x, w[lp + "post_attention_layernorm.weight"], f.eps)
            gate = g.linear(h, lp + "mlp.gate_proj")
            swish = g.op("Mul", [gate, g.op("Sigmoid", [gate])])
            x = g.op("Add", [x, g.linear(g.op("Mul", [swish, g.linear(h, lp + "mlp.up_proj")]), lp + "mlp.down_proj")])
    if f.type == "gpt2":
        x = g.layer_norm(x, f.pre + "ln_f", f.eps)
    elif f.type == "opt":
        x = g.layer_norm(x, f.pre + "final_layer_norm", f.eps)
    else:
        x = rms_norm(g, x, w[f.pre + "norm.weight"], f.eps)
    last = g.op("Gather", [x, g.op("Sub", [new_len, one])], axis=1)
    w["lm_head.linear.weight"] = w.get("lm_head.weight", w[f.embed])  # tied unless the checkpoint has its own
    g.nodes.append(helper.make_node("Identity", [g.linear(last, "lm_head.linear")], ["logits"]))

    vocab = w["lm_head.linear.weight"].shape[0]
    inputs = [helper.make_tensor_value_info(ids, TensorProto.INT64, ["batch", "new"])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", vocab])]
    for i, (_, kv_heads) in enumerate(layer_heads):
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_{kind}_{i}", TensorProto.FLOAT, ["batch", kv_heads, "past", hd]))
            outputs.append(helper.make_tensor_value_info(f"present_{kind}_{i}", TensorProto.FLOAT, ["batch", kv_heads, "total", hd]))
    g.save("sqz_" + f.type, inputs, outputs, a.out)


if __name__ == "__main__":
    main()
