// The one home of sqz's quantization math on tensors (torchao's quant_primitives, ggml's
// quantize_row_*_ref): ranges, qparams, quantize, dequantize, fake-quantize for 2-8 bits,
// symmetric or asymmetric, per tensor / channel / group / token. The per-element formulas are
// those of kernels/quant_math.h (the torch-free scalar version the kernels use); tests hold the
// two to the same numbers. Equations: docs/quantization.md.
#pragma once
#include <torch/torch.h>

#include <string>

namespace sqz::quant {

enum class Granularity { kTensor, kChannel, kGroup, kToken };

struct QuantSpec {
  int bits = 8;
  bool symmetric = true;
  Granularity granularity = Granularity::kTensor;
  // kGroup: consecutive entries of the last dimension sharing a scale; when it does not divide
  // that dimension the last group is shorter (ceil(n / g) groups, as compressed-tensors has them).
  int64_t group_size = 128;
  // Checks bits (2..8) and, for groups, group_size >= 1; errors name `source`.
  void validate(int64_t last_dim, const std::string& source) const;
};

const char* granularity_name(Granularity g);
Granularity parse_granularity(const std::string& name, const std::string& source);

// Integer range: symmetric [-(2^(b-1) - 1), 2^(b-1) - 1] (narrow, so -q is always representable),
// asymmetric [0, 2^b - 1].
int64_t qmin(const QuantSpec& s);
int64_t qmax(const QuantSpec& s);

// Scale and zero point, shaped to broadcast against `group_view(x)`.
struct QParams {
  torch::Tensor scale;       // float32
  torch::Tensor zero_point;  // float32 holding integers (0 when symmetric)
};

// x reshaped so that one qparam covers each slice of its last dimension:
// tensor [1, N]; channel [C, N/C] (dim 0 = output channel); group [..., ceil(n/g), g], a ragged
// last group padded with zeros (every range includes 0, so a zero changes no grid and quantizes
// exactly); token [..., hidden].
torch::Tensor group_view(const torch::Tensor& x, const QuantSpec& s);
// A tensor shaped like group_view(like) back in like's shape, the padding dropped.
torch::Tensor ungroup(const torch::Tensor& v, const torch::Tensor& like, const QuantSpec& s);
// Mean |x| per slice of group_view(x) (keepdim) over its real entries, not the padding.
torch::Tensor group_mean_abs(const torch::Tensor& x, const QuantSpec& s);

// Per-slice minimum and maximum of group_view(x) (keepdim), the observers' raw material.
std::pair<torch::Tensor, torch::Tensor> min_max(const torch::Tensor& x, const QuantSpec& s);

// QParams for ranges [lo, hi] (always widened to include 0, so zero padding stays exact); a
// zero-width range gets scale 1 instead of a division by zero.
QParams qparams_from_range(const torch::Tensor& lo, const torch::Tensor& hi, const QuantSpec& s);

// Convenience: qparams from x's own min/max.
QParams dynamic_qparams(const torch::Tensor& x, const QuantSpec& s);

// Integer codes (int32 tensor, x's shape): clamp(round_half_even(x / scale) + zero, qmin, qmax).
torch::Tensor quantize(const torch::Tensor& x, const QParams& p, const QuantSpec& s);
// scale * (q - zero), float32, q's shape.
torch::Tensor dequantize(const torch::Tensor& q, const QParams& p, const QuantSpec& s);
// dequantize(quantize(x)) in float, x's shape; no gradient of its own.
torch::Tensor fake_quantize(const torch::Tensor& x, const QParams& p, const QuantSpec& s);
// fake_quantize with the straight-through estimator: forward quantized, gradient identity.
torch::Tensor fake_quantize_ste(const torch::Tensor& x, const QParams& p, const QuantSpec& s);

}  // namespace sqz::quant
