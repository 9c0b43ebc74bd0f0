#include "kernels/quantize/quantize_rows.h"

#include <algorithm>

namespace sqz::kernels {

void quantize_rows_u8_ref(const float* x, int64_t m, int64_t k, int64_t ldx, uint8_t* q, AffineParams* params,
                          const AffineParams* fixed) {
  for (int64_t i = 0; i < m; ++i) {
    const float* row = x + i * ldx;
    if (fixed) {
      params[i] = *fixed;
    } else {
      float lo = 0, hi = 0;
      for (int64_t kk = 0; kk < k; ++kk) {
        lo = std::min(lo, row[kk]);
        hi = std::max(hi, row[kk]);
      }
      params[i] = affine_u8_params(lo, hi);
    }
    for (int64_t kk = 0; kk < k; ++kk) q[i * k + kk] = quantize_u8(row[kk], params[i]);
  }
}

void dequantize_rows_ref(const DequantizeArgs& d, int64_t m, int64_t n, float* y, int64_t ldy) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float v = d.a[i].scale * d.w_scale[j] * static_cast<float>(d.acc[i * n + j] - d.a[i].zero * d.column_sums[j]);
      if (d.bias) v += d.bias[j];
      if (d.residual) v += d.residual[i * d.ldr + j];
      y[i * ldy + j] = v;
    }
}

void quantize_rows_u8(const float* x, int64_t m, int64_t k, int64_t ldx, uint8_t* q, AffineParams* params,
                      const AffineParams* fixed, Isa isa) {
  switch (isa) {
    case Isa::kAvx512Vnni: return quantize_rows_u8_avx512(x, m, k, ldx, q, params, fixed);
    case Isa::kAvx2: return quantize_rows_u8_avx2(x, m, k, ldx, q, params, fixed);
    case Isa::kRef: return quantize_rows_u8_ref(x, m, k, ldx, q, params, fixed);
  }
}

namespace {

void dequantize_rows_on(const DequantizeArgs& args, int64_t m, int64_t n, float* y, int64_t ldy, Isa isa) {
  switch (isa) {
    case Isa::kAvx512Vnni: return dequantize_rows_avx512(args, m, n, y, ldy);
    case Isa::kAvx2: return dequantize_rows_avx2(args, m, n, y, ldy);
    case Isa::kRef: return dequantize_rows_ref(args, m, n, y, ldy);
  }
}

}  // namespace

void dequantize_rows(const DequantizeArgs& args, int64_t m, int64_t n, float* y, int64_t ldy, Isa isa) {
  if (args.activation == Activation::kNone) return dequantize_rows_on(args, m, n, y, ldy, isa);
  for (int64_t i = 0; i < m; ++i) {  // one row at a time: the activation reads it from L1
    DequantizeArgs row = args;
    row.acc += i * n;
    row.a += i;
    row.residual = nullptr;  // added after the activation
    float* out = y + i * ldy;
    dequantize_rows_on(row, 1, n, out, ldy, isa);
    activate_rows(args.activation, out, 1, n, ldy, isa);
    if (args.residual)
      for (int64_t j = 0; j < n; ++j) out[j] += args.residual[i * args.ldr + j];
  }
}

}  // namespace sqz::kernels
