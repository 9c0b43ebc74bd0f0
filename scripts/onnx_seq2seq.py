#!/usr/bin/python3
"""Writes a Hugging Face encoder-decoder (BartForConditionalGeneration or
T5ForConditionalGeneration: config.json + model.safetensors) as two ONNX graphs with a KV cache,
for ONNX Runtime (the peer `sqz bench` measures BART and T5 against) and `sqz export`.

  /usr/bin/python3 scripts/onnx_seq2seq.py MODEL_DIR OUT_DIR [--int8 [--weight-bits 7] [--int8-form qdq]]

OUT_DIR/encoder_model.onnx: input_ids, attention_mask [batch, src] -> encoder_last_hidden_state
[batch, src, d_model] and, per decoder layer i, cross_key_i / cross_value_i [batch, heads_i, src,
head_dim]: the encoder output projected once by that layer's cross-attention, as CTranslate2 and
sqz's engine keep it.
OUT_DIR/decoder_model.onnx: decoder_input_ids [batch, new], encoder_attention_mask [batch, src],
per decoder layer past_key_i / past_value_i [batch, heads_i, past, head_dim] (past = 0 for the
first step) and cross_key_i / cross_value_i -> logits [batch, vocab] of the last new position and
present_key_i / present_value_i (past + new). New tokens see every past token and the new ones
before them; positions continue from past.
OUT_DIR/cache_shapes.json: {"layers", "heads" (per decoder layer), "head_dim",
"decoder_start_token_id"}: what a runner needs to start the cache.
Families as their HF modules compute them: BART (post-LN, learned positions offset by 2,
layernorm_embedding, embeddings scaled by sqrt(d_model) when scale_embedding, queries scaled by
head_dim^-0.5, final_logits_bias; heads per layer from the weights, so pruned models export) and
T5 (RMS LayerNorm, unscaled scores, bucketed relative position bias from the first block, ReLU
or gated FFN, the tied head's d_model^-0.5). --int8 as in onnx_bert.py, LM head included.
"""
import json
import math
import os
import sys

import numpy as np
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_bert import Graph, gelu, parse_exporter_args, read_safetensors  # noqa: E402
from onnx_decoder import gelu_new, i64, rms_norm  # noqa: E402

ACTIVATIONS = {"gelu": gelu, "gelu_new": gelu_new, "relu": lambda g, x: g.op("Relu", [x])}


def activation(name, model_dir, field):
    if name not in ACTIVATIONS:
        sys.exit(f"{model_dir}/config.json: field '{field}' is '{name}'; this exporter writes " + ", ".join(ACTIVATIONS))
    return ACTIVATIONS[name]


def t5_buckets(relative, bidirectional, buckets, max_distance):
    """HF's T5Attention._relative_position_bucket on int64 relative positions (float32 logs)."""
    out = np.zeros_like(relative)
    if bidirectional:
        buckets //= 2
        out += (relative > 0).astype(np.int64) * buckets
        n = np.abs(relative)
    else:
        n = -np.minimum(relative, 0)
    max_exact = buckets // 2
    with np.errstate(divide="ignore"):
        ratio = np.log(n.astype(np.float32) / np.float32(max_exact)) / np.float32(math.log(max_distance / max_exact))
        large = max_exact + (ratio * np.float32(buckets - max_exact)).astype(np.int64)
    return out + np.where(n < max_exact, n, np.minimum(large, buckets - 1))


class Family:
    """Where BART and T5 keep their weights, and the pieces in which they differ."""

    def __init__(self, cfg, w, model_dir):
        self.type, self.cfg, self.w, self.dir = cfg["model_type"], cfg, w, model_dir
        if self.type == "bart":
            self.d = cfg.get("d_model", 1024)
            self.head_dim = cfg.get("sqz_attention_head_size") or self.d // cfg.get("decoder_attention_heads", 16)
            self.encoder_head_dim = cfg.get("sqz_attention_head_size") or self.d // cfg.get("encoder_attention_heads", 16)
            self.enc_layers, self.dec_layers = cfg.get("encoder_layers", 12), cfg.get("decoder_layers", 12)
            self.embed = w.get("model.shared.weight", w.get("model.encoder.embed_tokens.weight"))
            default_scale = math.sqrt(self.d) if cfg.get("scale_embedding", False) else 1.0
            self.embed_scale = float(cfg.get("sqz_embed_scale", default_scale))
            self.act = activation(cfg.get("activation_function", "gelu"), model_dir, "activation_function")
            self.start = cfg.get("decoder_start_token_id", 2)
        else:
            self.d, self.head_dim = cfg.get("d_model", 512), cfg.get("d_kv", 64)
            self.encoder_head_dim = self.head_dim
            self.enc_layers = cfg.get("num_layers", 6)
            self.dec_layers = cfg.get("num_decoder_layers") or self.enc_layers
            self.embed, self.embed_scale = w.get("shared.weight", w.get("encoder.embed_tokens.weight")), 1.0
            proj = cfg.get("feed_forward_proj", "relu")
            self.gated = proj.startswith("gated-")
            act = proj[6:] if self.gated else proj
            self.act = activation("gelu_new" if proj == "gated-gelu" else act, model_dir, "feed_forward_proj")
            self.eps = float(cfg.get("layer_norm_epsilon", 1e-6))
            self.start = cfg.get("decoder_start_token_id")
            self.start = cfg.get("pad_token_id", 0) if self.start is None else self.start
            for stack in ("encoder", "decoder"):
                q = w[f"{stack}.block.0.layer.0.SelfAttention.q.weight"]
                if q.shape[0] != cfg.get("num_heads", 8) * self.head_dim:
                    sys.exit(f"{model_dir}: {stack} layer 0 has {q.shape[0] // self.head_dim} heads, config 'num_heads' "
                             f"{cfg.get('num_heads', 8)}; this exporter writes T5 with every head of the position bias table")
        if self.embed is None:
            sys.exit(f"{model_dir}/model.safetensors: no shared input embedding ('model.shared.weight' or 'shared.weight')")

    def head_size(self, prefix):
        """Head size of the attention at `prefix`: BART's encoder and decoder may differ."""
        return self.encoder_head_dim if prefix.startswith(("model.encoder.", "encoder.")) else self.head_dim

    def heads(self, prefix):
        """Heads of the attention whose query projection is `prefix`.q_proj / .q (pruned layers have fewer)."""
        q = self.w[prefix + (".q_proj.weight" if self.type == "bart" else ".q.weight")]
        return q.shape[0] // self.head_size(prefix)

    def position_bias(self, g, stack, queries, keys, bidirectional):
        """T5's bias [1, heads, q, k] for query positions `queries` and key positions `keys` (int64
        1-D): a table of every clipped relative position, gathered (beyond max_distance the bucket
        no longer changes)."""
        far = self.cfg.get("relative_attention_max_distance", 128)
        weight = self.w[f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight"]
        table = weight[t5_buckets(np.arange(-far, far + 1, dtype=np.int64), bidirectional,
                                  self.cfg.get("relative_attention_num_buckets", 32), far)]
        relative = g.op("Sub", [g.op("Unsqueeze", [keys, g.const(i64([0]))]), g.op("Unsqueeze", [queries, g.const(i64([1]))])])
        index = g.op("Add", [g.op("Min", [g.op("Max", [relative, g.const(i64(-far))]), g.const(i64(far))]), g.const(i64(far))])
        bias = g.op("Gather", [g.const(table.astype(np.float32)), index])  # [q, k, heads]
        return g.op("Unsqueeze", [g.op("Transpose", [bias], perm=[2, 0, 1]), g.const(i64([0]))])

    def norm(self, g, x, prefix):
        if self.type == "bart":
            return g.layer_norm(x, prefix, 1e-5)
        return rms_norm(g, x, self.w[prefix + ".weight"], self.eps)


def split_heads(g, x, heads, hd):  # [b, n, heads * hd] -> [b, heads, n, hd]
    return g.op("Transpose", [g.op("Reshape", [x, g.const(i64([0, 0, heads, hd]))])], perm=[0, 2, 1, 3])


def attend(g, q, k, v, bias, width):
    """softmax(q k^T + bias) v for q [b, h, n, hd], k / v [b, h, m, hd]; merged to [b, n, width]."""
    scores = g.op("Add", [g.op("MatMul", [q, g.op("Transpose", [k], perm=[0, 1, 3, 2])]), bias])
    ctx = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
    return g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]), g.const(i64([0, 0, width]))])


def names(f, prefix):
    """Projection names of an attention block: q, k, v, out."""
    if f.type == "bart":
        return [f"{prefix}.{n}_proj" for n in ("q", "k", "v", "out")]
    return [f"{prefix}.{n}" for n in ("q", "k", "v", "o")]


def attention(g, f, x, prefix, kv, bias):
    """One attention block on `x`; kv = (k, v) already split, or None to project them from x.
    Returns (output, k, v). A block with every head pruned adds its output bias only."""
    q_name, k_name, v_name, o_name = names(f, prefix)
    heads, hd = f.heads(prefix), f.head_size(prefix)
    if heads == 0:
        return (g.op("Mul", [x, g.const(np.float32(0))]) if f.type == "t5" else
                g.op("Add", [g.op("Mul", [x, g.const(np.float32(0))]), g.const(f.w[o_name + ".bias"])])), None, None
    q = split_heads(g, g.linear(x, q_name), heads, hd)
    if f.type == "bart":  # HF scales the projected queries
        q = g.op("Mul", [q, g.const(np.float32(hd ** -0.5))])
    k, v = kv if kv is not None else (split_heads(g, g.linear(x, k_name), heads, hd),
                                      split_heads(g, g.linear(x, v_name), heads, hd))
    return g.linear(attend(g, q, k, v, bias, heads * hd), o_name), k, v


def feed_forward(g, f, x, prefix):
    if f.type == "bart":
        return g.linear(f.act(g, g.linear(x, prefix + "fc1")), prefix + "fc2")
    ff = prefix + "DenseReluDense."
    if f.gated:
        return g.linear(g.op("Mul", [f.act(g, g.linear(x, ff + "wi_0")), g.linear(x, ff + "wi_1")]), ff + "wo")
    return g.linear(f.act(g, g.linear(x, ff + "wi")), ff + "wo")


def embed(g, f, ids, stack, positions):
    x = g.op("Gather", [g.const(f.embed), ids])
    if f.embed_scale != 1.0:
        x = g.op("Mul", [x, g.const(np.float32(f.embed_scale))])
    if f.type == "bart":  # learned positions, offset by 2
        table = f.w[f"model.{stack}.embed_positions.weight"]
        x = g.op("Add", [x, g.op("Gather", [g.const(table), g.op("Add", [positions, g.const(i64(2))])])])
        x = f.norm(g, x, f"model.{stack}.layernorm_embedding")
    return x


def padding_bias(g, mask):  # [b, src] 1/0 -> [b, 1, 1, src] of 0 / -1e9
    keep = g.op("Cast", [mask], to=TensorProto.FLOAT)
    bias = g.op("Mul", [g.op("Sub", [g.const(np.float32(1.0)), keep]), g.const(np.float32(-1e9))])
    return g.op("Unsqueeze", [bias, g.const(i64([1, 2]))])


def layer_step(g, f, x, sublayer, norm_prefix):
    """Residual around one sub-layer: post-LN for BART, pre-LN for T5. `sublayer` maps a tensor to
    (output, extra); returns (new x, extra)."""
    if f.type == "bart":
        out, extra = sublayer(x)
        return f.norm(g, g.op("Add", [x, out]), norm_prefix), extra
    out, extra = sublayer(f.norm(g, x, norm_prefix))
    return g.op("Add", [x, out]), extra


def encoder_graph(f, g, cross_names):
    ids, mask = "input_ids", "attention_mask"
    src = g.op("Gather", [g.op("Shape", [ids]), g.const(i64(1))])
    positions = g.op("Range", [g.const(i64(0)), src, g.const(i64(1))])
    x = embed(g, f, ids, "encoder", positions)
    bias = padding_bias(g, mask)
    if f.type == "t5":
        bias = g.op("Add", [bias, f.position_bias(g, "encoder", positions, positions, True)])
    for i in range(f.enc_layers):
        if f.type == "bart":
            lp = f"model.encoder.layers.{i}."
            x, _ = layer_step(g, f, x, lambda h: attention(g, f, h, lp + "self_attn", None, bias)[:2], lp + "self_attn_layer_norm")
            x, _ = layer_step(g, f, x, lambda h: (feed_forward(g, f, h, lp), None), lp + "final_layer_norm")
        else:
            lp = f"encoder.block.{i}.layer."
            x, _ = layer_step(g, f, x, lambda h: attention(g, f, h, lp + "0.SelfAttention", None, bias)[:2], lp + "0.layer_norm")
            x, _ = layer_step(g, f, x, lambda h: (feed_forward(g, f, h, lp + "1."), None), lp + "1.layer_norm")
    if f.type == "t5":
        x = f.norm(g, x, "encoder.final_layer_norm")
    g.nodes.append(helper.make_node("Identity", [x], ["encoder_last_hidden_state"]))
    outputs = [helper.make_tensor_value_info("encoder_last_hidden_state", TensorProto.FLOAT, ["batch", "src", f.d])]
    for i, prefix in enumerate(cross_names):
        heads = f.heads(prefix)
        _, k_name, v_name, _ = names(f, prefix)
        for kind, proj in (("key", k_name), ("value", v_name)):
            g.nodes.append(helper.make_node("Identity", [split_heads(g, g.linear(x, proj), heads, f.head_dim)], [f"cross_{kind}_{i}"]))
            outputs.append(helper.make_tensor_value_info(f"cross_{kind}_{i}", TensorProto.FLOAT, ["batch", heads, "src", f.head_dim]))
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "src"]) for n in (ids, mask)]
    return inputs, outputs


def decoder_layer(g, f, x, i, self_bias, cross_bias, self_prefix, cross_prefix):
    lp = f"model.decoder.layers.{i}." if f.type == "bart" else f"decoder.block.{i}.layer."

    def self_attention(h):
        heads = f.heads(self_prefix)
        _, k_name, v_name, _ = names(f, self_prefix)
        k = g.op("Concat", [f"past_key_{i}", split_heads(g, g.linear(h, k_name), heads, f.head_dim)], axis=2)
        v = g.op("Concat", [f"past_value_{i}", split_heads(g, g.linear(h, v_name), heads, f.head_dim)], axis=2)
        g.nodes.append(helper.make_node("Identity", [k], [f"present_key_{i}"]))
        g.nodes.append(helper.make_node("Identity", [v], [f"present_value_{i}"]))
        return attention(g, f, h, self_prefix, (k, v), self_bias)[0], None

    cross = lambda h: (attention(g, f, h, cross_prefix, (f"cross_key_{i}", f"cross_value_{i}"), cross_bias)[0], None)  # noqa: E731
    if f.type == "bart":
        x, _ = layer_step(g, f, x, self_attention, lp + "self_attn_layer_norm")
        x, _ = layer_step(g, f, x, cross, lp + "encoder_attn_layer_norm")
        x, _ = layer_step(g, f, x, lambda h: (feed_forward(g, f, h, lp), None), lp + "final_layer_norm")
    else:
        x, _ = layer_step(g, f, x, self_attention, lp + "0.layer_norm")
        x, _ = layer_step(g, f, x, cross, lp + "1.layer_norm")
        x, _ = layer_step(g, f, x, lambda h: (feed_forward(g, f, h, lp + "2."), None), lp + "2.layer_norm")
    return x


def decoder_graph(f, g, self_names, cross_names):
    ids, mask = "decoder_input_ids", "encoder_attention_mask"
    past_len = g.op("Gather", [g.op("Shape", ["past_key_0"]), g.const(i64(2))])
    new_len = g.op("Gather", [g.op("Shape", [ids]), g.const(i64(1))])
    total, one = g.op("Add", [past_len, new_len]), g.const(i64(1))
    positions = g.op("Range", [past_len, total, one])
    x = embed(g, f, ids, "decoder", positions)
    # Causal bias [new, past + new]: key j is visible to new token i when j <= past + i.
    keys = g.op("Range", [g.const(i64(0)), total, one])
    visible = g.op("LessOrEqual", [g.op("Unsqueeze", [keys, g.const(i64([0]))]), g.op("Unsqueeze", [positions, g.const(i64([1]))])])
    self_bias = g.op("Where", [visible, g.const(np.float32(0.0)), g.const(np.float32(-1e9))])
    if f.type == "t5":
        self_bias = g.op("Add", [self_bias, f.position_bias(g, "decoder", positions, keys, False)])
    cross_bias = padding_bias(g, mask)
    for i in range(f.dec_layers):
        x = decoder_layer(g, f, x, i, self_bias, cross_bias, self_names[i], cross_names[i])
    if f.type == "t5":
        x = f.norm(g, x, "decoder.final_layer_norm")
    last = g.op("Gather", [x, g.op("Sub", [new_len, one])], axis=1)
    tied = f.cfg.get("tie_word_embeddings", True)
    if f.type == "t5" and tied:  # HF rescales before the tied head
        last = g.op("Mul", [last, g.const(np.float32(f.d ** -0.5))])
    f.w["lm_head.linear.weight"] = f.w["lm_head.weight"] if "lm_head.weight" in f.w and not (f.type == "t5" and tied) else f.embed
    if "final_logits_bias" in f.w:
        f.w["lm_head.linear.bias"] = f.w["final_logits_bias"].reshape(-1)
    g.nodes.append(helper.make_node("Identity", [g.linear(last, "lm_head.linear")], ["logits"]))
    vocab = f.w["lm_head.linear.weight"].shape[0]
    inputs = [helper.make_tensor_value_info(ids, TensorProto.INT64, ["batch", "new"]),
              helper.make_tensor_value_info(mask, TensorProto.INT64, ["batch", "src"])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", vocab])]
    for i in range(f.dec_layers):
        heads, cross_heads = f.heads(self_names[i]), f.heads(cross_names[i])
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_{kind}_{i}", TensorProto.FLOAT, ["batch", heads, "past", f.head_dim]))
            outputs.append(helper.make_tensor_value_info(f"present_{kind}_{i}", TensorProto.FLOAT, ["batch", heads, "total", f.head_dim]))
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"cross_{kind}_{i}", TensorProto.FLOAT, ["batch", cross_heads, "src", f.head_dim]))
    return inputs, outputs


def main():
    a, cfg = parse_exporter_args(__doc__, ("bart", "t5"))
    w = read_safetensors(f"{a.model_dir}/model.safetensors")
    f = Family(cfg, w, a.model_dir)
    if f.type == "bart":
        self_names = [f"model.decoder.layers.{i}.self_attn" for i in range(f.dec_layers)]
        cross_names = [f"model.decoder.layers.{i}.encoder_attn" for i in range(f.dec_layers)]
    else:
        self_names = [f"decoder.block.{i}.layer.0.SelfAttention" for i in range(f.dec_layers)]
        cross_names = [f"decoder.block.{i}.layer.1.EncDecAttention" for i in range(f.dec_layers)]
    if any(f.heads(n) == 0 for n in self_names + cross_names):
        sys.exit(f"{a.model_dir}: a decoder layer has no attention heads left; this exporter writes decoders whose "
                 "self- and cross-attention keep at least one head")
    os.makedirs(a.out, exist_ok=True)
    enc = Graph(w, a.int8, a.weight_bits, a.int8_form)
    enc.save(f"sqz_{f.type}_encoder", *encoder_graph(f, enc, cross_names), os.path.join(a.out, "encoder_model.onnx"))
    dec = Graph(w, a.int8, a.weight_bits, a.int8_form)
    dec.save(f"sqz_{f.type}_decoder", *decoder_graph(f, dec, self_names, cross_names), os.path.join(a.out, "decoder_model.onnx"))
    shapes = {"layers": f.dec_layers, "heads": [f.heads(n) for n in self_names], "head_dim": f.head_dim,
              "decoder_start_token_id": f.start}
    tmp = os.path.join(a.out, "cache_shapes.json.tmp")
    with open(tmp, "w") as out:
        json.dump(shapes, out)
    os.replace(tmp, os.path.join(a.out, "cache_shapes.json"))


if __name__ == "__main__":
    main()
