// The int8 Linear's two element-wise passes, per ISA: quantizing activation rows to u8 (dynamic
// per row, or one static range) and turning the s32 GEMM result back into fp32 with the
// zero-point correction, bias and residual. Both follow quant_math.h exactly: the SIMD versions
// divide, round half to even and clamp like the scalar formulas, so the codes are bit-identical.
#pragma once
#include <cstdint>

#include "kernels/cpu_isa.h"
#include "kernels/eltwise/eltwise.h"
#include "kernels/quant_math.h"

namespace sqz::kernels {

// q [m, k] (row stride k) from x [m, k] (row stride ldx). params[i] is computed (per-row range,
// including 0) unless `fixed` is given, in which case every row uses it.
void quantize_rows_u8(const float* x, int64_t m, int64_t k, int64_t ldx, uint8_t* q, AffineParams* params,
                      const AffineParams* fixed = nullptr, Isa isa = active_isa());

struct DequantizeArgs {
  const int32_t* acc;           // [m, n], row stride n
  const AffineParams* a;        // per row
  const float* w_scale;         // [n]
  const int32_t* column_sums;   // [n]
  const float* bias = nullptr;  // [n]
  const float* residual = nullptr;
  int64_t ldr = 0;
  Activation activation = Activation::kNone;  // applied after the bias, row by row (while in cache)
};
// y[i][j] = act(a[i].scale * w_scale[j] * (acc[i][j] - a[i].zero * column_sums[j]) + bias[j]) + residual[i][j]
void dequantize_rows(const DequantizeArgs& args, int64_t m, int64_t n, float* y, int64_t ldy, Isa isa = active_isa());

void quantize_rows_u8_ref(const float* x, int64_t m, int64_t k, int64_t ldx, uint8_t* q, AffineParams* params,
                          const AffineParams* fixed);
void quantize_rows_u8_avx2(const float* x, int64_t m, int64_t k, int64_t ldx, uint8_t* q, AffineParams* params,
                           const AffineParams* fixed);
void dequantize_rows_ref(const DequantizeArgs& args, int64_t m, int64_t n, float* y, int64_t ldy);
void dequantize_rows_avx2(const DequantizeArgs& args, int64_t m, int64_t n, float* y, int64_t ldy);
void quantize_rows_u8_avx512(const float* x, int64_t m, int64_t k, int64_t ldx, uint8_t* q, AffineParams* params,
                             const AffineParams* fixed);
void dequantize_rows_avx512(const DequantizeArgs& args, int64_t m, int64_t n, float* y, int64_t ldy);

}  // namespace sqz::kernels
