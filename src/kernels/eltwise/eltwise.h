// Row-wise and element-wise ops of a Transformer layer, on raw fp32 rows (row stride ld):
// LayerNorm, exact (erf) GELU, softmax. Reference versions use libm; the AVX2 and AVX-512 ones
// use the same polynomial exp / erf (|error| < 2e-7, tested against the reference).
#pragma once
#include <cstdint>

#include "kernels/cpu_isa.h"

namespace sqz::kernels {

// y = (x - mean) / sqrt(var + eps) * gamma + beta per row of n; y may alias x.
void layer_norm_rows(const float* x, int64_t m, int64_t n, int64_t ldx, const float* gamma, const float* beta, float eps,
                     float* y, int64_t ldy, Isa isa = active_isa());
// y = x / sqrt(mean(x^2) + eps) * gamma per row of n (Llama's RMSNorm); y may alias x. One
// implementation for every ISA (a sum of squares and a scale, which the compiler vectorises).
void rms_norm_rows(const float* x, int64_t m, int64_t n, int64_t ldx, const float* gamma, float eps, float* y, int64_t ldy);
// x = silu(x) * u = x / (1 + exp(-x)) * u per element of rows of n (SwiGLU); x is overwritten.
void silu_mul_rows(float* x, int64_t ldx, const float* u, int64_t ldu, int64_t m, int64_t n, Isa isa = active_isa());
// x = x / (1 + exp(-x)) in place (SiLU, Llama's "silu").
void silu_rows(float* x, int64_t m, int64_t n, int64_t ld, Isa isa = active_isa());
// x = x * 0.5 * (1 + erf(x / sqrt(2))) in place, HF's "gelu".
void gelu_rows(float* x, int64_t m, int64_t n, int64_t ld, Isa isa = active_isa());
// x = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) in place, HF's "gelu_new" (GPT-2).
void gelu_tanh_rows(float* x, int64_t m, int64_t n, int64_t ld, Isa isa = active_isa());
// The activation a Linear's epilogue may apply to its output (FFN input layers).
enum class Activation { kNone, kGelu, kGeluTanh, kRelu, kSilu };
// `activation` in place on rows of n (kNone: nothing).
void activate_rows(Activation activation, float* x, int64_t m, int64_t n, int64_t ld, Isa isa = active_isa());
// Softmax of each row in place. Entries at -infinity get probability 0; a row that is all
// -infinity becomes all zeros (nothing to attend to) rather than NaN.
void softmax_rows(float* x, int64_t m, int64_t n, int64_t ld, Isa isa = active_isa());

void layer_norm_rows_ref(const float* x, int64_t m, int64_t n, int64_t ldx, const float* gamma, const float* beta, float eps,
                         float* y, int64_t ldy);
void gelu_rows_ref(float* x, int64_t m, int64_t n, int64_t ld);
void gelu_tanh_rows_ref(float* x, int64_t m, int64_t n, int64_t ld);
void silu_rows_ref(float* x, int64_t m, int64_t n, int64_t ld);
void silu_rows_avx2(float* x, int64_t m, int64_t n, int64_t ld);
void silu_rows_avx512(float* x, int64_t m, int64_t n, int64_t ld);
void gelu_tanh_rows_avx2(float* x, int64_t m, int64_t n, int64_t ld);
void softmax_rows_ref(float* x, int64_t m, int64_t n, int64_t ld);
void layer_norm_rows_avx2(const float* x, int64_t m, int64_t n, int64_t ldx, const float* gamma, const float* beta, float eps,
                          float* y, int64_t ldy);
void gelu_rows_avx2(float* x, int64_t m, int64_t n, int64_t ld);
void softmax_rows_avx2(float* x, int64_t m, int64_t n, int64_t ld);
void layer_norm_rows_avx512(const float* x, int64_t m, int64_t n, int64_t ldx, const float* gamma, const float* beta,
                            float eps, float* y, int64_t ldy);
void gelu_rows_avx512(float* x, int64_t m, int64_t n, int64_t ld);
void gelu_tanh_rows_avx512(float* x, int64_t m, int64_t n, int64_t ld);
void softmax_rows_avx512(float* x, int64_t m, int64_t n, int64_t ld);

}  // namespace sqz::kernels
