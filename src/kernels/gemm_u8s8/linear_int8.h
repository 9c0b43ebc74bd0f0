// An int8 Linear layer for the runtime: weights quantized symmetric per output channel and
// packed once; activations quantized to asymmetric u8 per row (dynamic, per token) at each call,
// or with one static range for the whole tensor (a calibrated `input_scale`); the s32 result is
// dequantized with the zero-point correction, then bias and an optional residual are added:
//   y[m][n] = a_scale[m] * w_scale[n] * (acc[m][n] - a_zero[m] * colsum[n]) + bias[n] (+ r[m][n])
#pragma once
#include <optional>
#include <vector>

#include "kernels/gemm_block_sparse/gemm_block_sparse.h"
#include "kernels/gemm_sparse24/gemm_sparse24.h"
#include "kernels/gemm_u8s8/gemm_u8s8.h"
#include "kernels/quant_math.h"
#include "kernels/quantize/quantize_rows.h"

namespace sqz::kernels {

// How the weight codes are packed, which picks the kernel: dense VNNI blocks, 2:4 (at most 2
// non-zeros in every 4 consecutive inputs), or 4 x 4 block-sparse (only non-zero blocks stored).
enum class Int8Packing { kDense, kSparse24, kBlocks4x4 };

struct Int8Linear {
  PackedS8Weights weights;                  // dense packing (n, k and column_sums serve every packing)
  std::optional<PackedS8Sparse24> sparse;   // set: the 2:4 kernel runs instead of the dense one
  std::optional<PackedS8BlockSparse> blocks;  // set: the block-sparse kernel runs
  std::vector<float> w_scale;               // per output channel
  std::vector<float> bias;                  // empty = none
  std::optional<AffineParams> static_input;  // unset = dynamic per-row ranges
};

// w: float [n, k] row-major (nn.Linear layout), quantized here (round to nearest, absmax/127).
// kSparse24 throws std::invalid_argument naming row and group when the quantized weight is not
// 2:4; kBlocks4x4 takes any weight (it stores the blocks that hold a non-zero).
Int8Linear make_int8_linear(const float* w, int64_t n, int64_t k, const float* bias,
                            Int8Packing packing = Int8Packing::kDense);
// Already-quantized codes (e.g. a compressed-tensors export) with their per-channel scales.
Int8Linear make_int8_linear_from_codes(const int8_t* q, const float* scales, int64_t n, int64_t k, const float* bias,
                                       Int8Packing packing = Int8Packing::kDense);
// The [n, k] weight codes back, whatever the packing.
void unpack_int8_linear_codes(const Int8Linear& layer, int8_t* codes);

// u8 activation rows with their per-row parameters: an int8 Linear's input quantized ahead of
// it, by the previous int8 Linear's requantizing epilogue.
struct QuantizedRows {
  int64_t m = 0, k = 0;
  std::vector<uint8_t> codes;        // [m, k]
  std::vector<AffineParams> params;  // [m]
};

// y [m, n] (row stride ldy) = act(x [m, k] * W^T + b) (+ residual [m, n], row stride ldr; may
// alias y).
void int8_linear_forward(const Int8Linear& layer, const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy,
                         Isa isa = active_isa(), const float* residual = nullptr, int64_t ldr = 0,
                         Activation activation = Activation::kNone);
// The requantizing epilogue: out = u8 rows of act(x W^T + b), each output row dequantized,
// activated and quantized (per row, dynamic) while it is in cache; no fp32 output is written.
// The codes equal what int8_linear_forward then the next Linear's input quantization give.
void int8_linear_forward_requantize(const Int8Linear& layer, const float* x, int64_t m, int64_t ldx, QuantizedRows& out,
                                    Isa isa = active_isa(), Activation activation = Activation::kNone);
// int8_linear_forward on activations quantized ahead (in.k must be the layer's k).
void int8_linear_forward_quantized(const Int8Linear& layer, const QuantizedRows& in, float* y, int64_t ldy,
                                   Isa isa = active_isa(), const float* residual = nullptr, int64_t ldr = 0,
                                   Activation activation = Activation::kNone);

}  // namespace sqz::kernels
