#!/usr/bin/python3
"""Writes a Hugging Face BERT encoder (BertModel or BertForSequenceClassification: config.json +
model.safetensors) as an ONNX graph for ONNX Runtime, the peer `sqz bench` measures against.

  /usr/bin/python3 scripts/onnx_bert.py MODEL_DIR OUT.onnx [--int8 [--weight-bits 7] [--int8-form qdq]]

--int8 writes what ONNX Runtime's dynamic quantization produces for Linear layers: activations
quantized per call (DynamicQuantizeLinear, u8), weights int8 symmetric per output channel,
MatMulInteger, then the scales; everything else stays fp32 — the same scheme as sqz's int8.
--int8-form qdq writes the same arithmetic in the QDQ form deployment tools exchange:
DynamicQuantizeLinear -> DequantizeLinear on the activations, int8 weights -> DequantizeLinear
(per output channel, axis 1), then a float MatMul; ONNX Runtime fuses the pattern back into
integer kernels.
--weight-bits 7 keeps weights in [-63, 63] (ONNX Runtime's reduce_range): on x86 CPUs without
VNNI its u8 x s8 kernels add pairs of products in int16 (vpmaddubsw), which saturates at 8 bits.
Uses Debian's python3-onnx and python3-numpy (opset 17, which has LayerNormalization).
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": None, "I64": np.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = data[base + a:base + b]
        if info["dtype"] == "BF16":
            u16 = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            arr = u16.view(np.float32)
        elif info["dtype"] in DTYPES:
            arr = np.frombuffer(raw, dtype=DTYPES[info["dtype"]])
        else:
            sys.exit(f"{path}: tensor '{name}' has dtype {info['dtype']}; this exporter reads F32, F16, BF16")
        out[name] = arr.reshape(info["shape"]).astype(np.float32) if arr.dtype != np.int64 else arr.reshape(info["shape"])
    return out


class Graph:
    def __init__(self, weights, int8, weight_bits=8, int8_form="dynamic"):
        self.w, self.int8, self.qdq = weights, int8, int8 and int8_form == "qdq"
        self.qmax = float(2 ** (weight_bits - 1) - 1)
        self.nodes, self.inits, self.count = [], [], 0

    def name(self, hint):
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, array, hint="c"):
        n = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(array), n))
        return n

    def op(self, op_type, inputs, hint=None, outputs=1, **attrs):
        outs = [self.name(hint or op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, **attrs))
        return outs[0] if outputs == 1 else outs

    def linear(self, x, prefix):
        """x @ W^T + b for an nn.Linear stored as [out, in]."""
        w, b = self.w[prefix + ".weight"], self.w.get(prefix + ".bias")
        if not self.int8:
            y = self.op("MatMul", [x, self.const(w.T.copy(), "w")])
        else:
            scale = np.maximum(np.abs(w).max(axis=1), 1e-30) / self.qmax
            q = np.clip(np.rint(w / scale[:, None]), -self.qmax, self.qmax).astype(np.int8)
            xq, xs, xz = self.op("DynamicQuantizeLinear", [x], outputs=3)
            if self.qdq:
                xd = self.op("DequantizeLinear", [xq, xs, xz])
                wd = self.op("DequantizeLinear", [self.const(q.T.copy(), "wq"), self.const(scale.astype(np.float32), "ws"),
                                                  self.const(np.zeros(w.shape[0], np.int8), "wz")], axis=1)
                y = self.op("MatMul", [xd, wd])
                return self.op("Add", [y, self.const(b, "b")]) if b is not None else y
            acc = self.op("MatMulInteger", [xq, self.const(q.T.copy(), "wq"), xz, self.const(np.zeros(w.shape[0], np.int8), "wz")])
            y = self.op("Mul", [self.op("Cast", [acc], to=TensorProto.FLOAT), self.op("Mul", [xs, self.const(scale.astype(np.float32), "ws")])])
        return self.op("Add", [y, self.const(b, "b")]) if b is not None else y

    def save(self, name, inputs, outputs, path):
        """Checks the graph as an opset-17 model and writes it atomically (temporary file, rename)."""
        graph = helper.make_graph(self.nodes, name + ("_int8_qdq" if self.qdq else "_int8" if self.int8 else ""), inputs, outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="sqz")
        onnx.checker.check_model(model)
        onnx.save(model, path + ".tmp")
        os.replace(path + ".tmp", path)

    def layer_norm(self, x, prefix, eps):
        return self.op("LayerNormalization", [x, self.const(self.w[prefix + ".weight"]), self.const(self.w[prefix + ".bias"])],
                       axis=-1, epsilon=eps)


def gelu(g, x):  # erf GELU, HF's "gelu"
    inner = g.op("Erf", [g.op("Mul", [x, g.const(np.float32(1 / math.sqrt(2)))])])
    return g.op("Mul", [g.op("Mul", [x, g.const(np.float32(0.5))]), g.op("Add", [inner, g.const(np.float32(1.0))])])


def parse_exporter_args(doc, model_types):
    """MODEL_DIR OUT.onnx [--int8 [--weight-bits 7] [--int8-form qdq]] and the model's config.json, refused unless its model_type is one of `model_types`."""
    p = argparse.ArgumentParser(description=doc.split("\n")[0])
    p.add_argument("model_dir")
    p.add_argument("out")
    p.add_argument("--int8", action="store_true")
    p.add_argument("--weight-bits", type=int, choices=(7, 8), default=8, help="int8 weights' range: 8 (±127) or 7 (±63)")
    p.add_argument("--int8-form", choices=("dynamic", "qdq"), default="dynamic",
                   help="dynamic: MatMulInteger as ONNX Runtime's dynamic quantization writes it; qdq: QuantizeLinear/DequantizeLinear pairs")
    a = p.parse_args()
    if a.int8_form == "qdq" and not a.int8:
        p.error("--int8-form qdq needs --int8")
    cfg = json.load(open(f"{a.model_dir}/config.json"))
    if cfg.get("model_type") not in model_types:
        sys.exit(f"{a.model_dir}/config.json: field 'model_type' is '{cfg.get('model_type')}'; this exporter writes "
                 + ", ".join(f"'{t}'" for t in model_types))
    return a, cfg


def main():
    a, cfg = parse_exporter_args(__doc__, ("bert",))
    if cfg.get("hidden_act", "gelu") != "gelu":
        sys.exit(f"{a.model_dir}/config.json: field 'hidden_act' is '{cfg['hidden_act']}'; this exporter writes 'gelu' (erf)")
    w = read_safetensors(f"{a.model_dir}/model.safetensors")
    pre = "bert." if "bert.embeddings.word_embeddings.weight" in w else ""
    heads, hidden, eps = cfg["num_attention_heads"], cfg["hidden_size"], float(cfg.get("layer_norm_eps", 1e-12))
    # Pruned models (sqz compress, SpeedUp): heads per layer follow the query rows, FFN widths the
    # weights; a narrowed hidden size keeps the head size in sqz_attention_head_size.
    hd = cfg.get("sqz_attention_head_size") or hidden // heads
    g = Graph(w, a.int8, a.weight_bits, a.int8_form)

    ids, mask, types = "input_ids", "attention_mask", "token_type_ids"
    seq_len = g.op("Gather", [g.op("Shape", [ids]), g.const(np.array([1], np.int64))])
    positions = g.op("Slice", [g.const(w[pre + "embeddings.position_embeddings.weight"]), g.const(np.array([0], np.int64)), seq_len,
                               g.const(np.array([0], np.int64))])
    x = g.op("Add", [g.op("Gather", [g.const(w[pre + "embeddings.word_embeddings.weight"]), ids]),
                     g.op("Gather", [g.const(w[pre + "embeddings.token_type_embeddings.weight"]), types])])
    x = g.layer_norm(g.op("Add", [x, positions]), pre + "embeddings.LayerNorm", eps)
    # Padding: -1e9 added to the scores of masked keys, [B, 1, 1, T].
    keep = g.op("Cast", [mask], to=TensorProto.FLOAT)
    bias = g.op("Mul", [g.op("Sub", [g.const(np.float32(1.0)), keep]), g.const(np.float32(-1e9))])
    bias = g.op("Unsqueeze", [bias, g.const(np.array([1, 2], np.int64))])
    for i in range(cfg["num_hidden_layers"]):
        lp = f"{pre}encoder.layer.{i}."
        width = w[lp + "attention.self.query.weight"].shape[0]
        if width == 0:  # every head pruned: the attention adds its output bias only
            x = g.layer_norm(g.op("Add", [x, g.const(w[lp + "attention.output.dense.bias"], "b")]), lp + "attention.output.LayerNorm", eps)
            inner = gelu(g, g.linear(x, lp + "intermediate.dense"))
            x = g.layer_norm(g.op("Add", [g.linear(inner, lp + "output.dense"), x]), lp + "output.LayerNorm", eps)
            continue
        split_heads = g.const(np.array([0, 0, width // hd, hd], np.int64))
        merge_heads = g.const(np.array([0, 0, width], np.int64))
        q, k, v = (g.op("Reshape", [g.linear(x, lp + "attention.self." + n), split_heads]) for n in ("query", "key", "value"))
        q = g.op("Transpose", [q], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [k], perm=[0, 2, 3, 1])
        v = g.op("Transpose", [v], perm=[0, 2, 1, 3])
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k]), g.const(np.float32(1 / math.sqrt(hd)))]), bias])
        ctx = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
        ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge_heads])
        x = g.layer_norm(g.op("Add", [g.linear(ctx, lp + "attention.output.dense"), x]), lp + "attention.output.LayerNorm", eps)
        inner = gelu(g, g.linear(x, lp + "intermediate.dense"))
        x = g.layer_norm(g.op("Add", [g.linear(inner, lp + "output.dense"), x]), lp + "output.LayerNorm", eps)
    outputs = [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", "seq", hidden])]
    if "classifier.weight" in w:
        first = g.op("Gather", [x, g.const(np.array(0, np.int64))], axis=1)
        pooled = g.op("Tanh", [g.linear(first, pre + "pooler.dense")]) if pre + "pooler.dense.weight" in w else first
        g.nodes.append(helper.make_node("Identity", [g.linear(pooled, "classifier")], ["logits"]))
        outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", w["classifier.weight"].shape[0]])]
    else:
        g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
        outputs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", hidden])]
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"]) for n in (ids, mask, types)]
    g.save("sqz_bert", inputs, outputs, a.out)


if __name__ == "__main__":
    main()
