// Quantization-aware training's fake quantizers as autograd Functions: the forward pass rounds
// exactly as qmath does, the backward pass is each method's estimator. All scales and clip
// values are shaped to broadcast against group_view(x) (one per tensor, channel or group).
#pragma once
#include "compress/quant/qmath.h"

namespace sqz::quant {

// LSQ (Esser et al. 2020): learned step `scale` with a fixed zero point. Gradients: x gets 1
// where x/scale + zero lands inside [qmin, qmax] and 0 outside; scale gets
// (round(v) - v) inside and (qmin|qmax - zero) outside (v = x/scale + zero - zero), each times
// `grad_factor` (LSQ's 1/sqrt(elements per scale * qmax)). Same numbers as ATen's
// _fake_quantize_learnable_per_{tensor,channel}_affine.
torch::Tensor lsq_fake_quantize(const torch::Tensor& x, const torch::Tensor& scale, const torch::Tensor& zero_point,
                                const QuantSpec& spec, double grad_factor);
// LSQ's gradient scale for a tensor quantized with `spec`.
double lsq_grad_factor(const torch::Tensor& x, const QuantSpec& spec);

// PACT (Choi et al. 2018), symmetric form for signed inputs: clip to [-alpha, alpha], then
// quantize with scale alpha / qmax. alpha's gradient comes only from clipped elements
// (+1 above, -1 below); x's gradient is 1 inside the clip range, 0 outside.
torch::Tensor pact_fake_quantize(const torch::Tensor& x, const torch::Tensor& alpha, const QuantSpec& spec);

// QuantGPT's module-dependent dynamic scaling (Tao et al. 2022): the clip value is
// alpha = gamma * mean|w| per slice, so the learned `gamma` stays relative to the weights'
// current magnitude. With u = clip(w / alpha, -1, 1) and w_hat = alpha * round(qmax u) / qmax,
// gamma's gradient uses both sides of the clip range: mean|w| * (round(qmax u)/qmax - u) inside
// and mean|w| * sign(w) outside (PACT uses only the outside). w's gradient: 1 inside, 0 outside
// (mean|w| is treated as a constant).
torch::Tensor quantgpt_fake_quantize(const torch::Tensor& w, const torch::Tensor& gamma, const QuantSpec& spec);
// mean|w| per slice of group_view(w), the reference magnitude of quantgpt_fake_quantize.
torch::Tensor mean_abs(const torch::Tensor& w, const QuantSpec& spec);

// TernaryBERT's weight ternarization (TWN): delta = 0.7 mean|w|, alpha = mean of |w| over
// |w| > delta, w_hat = alpha * sign(w) * [|w| > delta], per slice. Straight-through gradient.
torch::Tensor ternary_fake_quantize(const torch::Tensor& w, const QuantSpec& spec);
// BinaryConnect with a scale (BWN / BinaryBERT's start): w_hat = mean|w| * sign(w), per slice; STE.
torch::Tensor binary_fake_quantize(const torch::Tensor& w, const QuantSpec& spec);

}  // namespace sqz::quant
