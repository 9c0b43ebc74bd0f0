// An int8 Linear layer for the runtime: weights quantized symmetric per output channel and
// packed once; activations quantized per row (dynamic, asymmetric u8) at each call; the s32
// result dequantized with the zero-point correction and bias added:
//   y[m][n] = a_scale[m] * w_scale[n] * (acc[m][n] - a_zero[m] * colsum[n]) + bias[n]
#pragma once
#include <vector>

#include "kernels/gemm_u8s8/gemm_u8s8.h"
#include "kernels/quant_math.h"

namespace sqz::kernels {

struct Int8Linear {
  PackedS8Weights weights;
  std::vector<float> w_scale;  // per output channel
  std::vector<float> bias;     // empty = none
};

// w: float [n, k] row-major (nn.Linear layout).
Int8Linear make_int8_linear(const float* w, int64_t n, int64_t k, const float* bias);

// Dynamic per-row u8 quantization of x [m, k] (row stride ldx) into q [m, k].
void quantize_rows_u8(const float* x, int64_t m, int64_t k, int64_t ldx, uint8_t* q, AffineParams* params);

// y [m, n] (row stride ldy) = x [m, k] * W^T + b through the int8 kernel of `isa`.
void int8_linear_forward(const Int8Linear& layer, const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy,
                         Isa isa = active_isa());

}  // namespace sqz::kernels
