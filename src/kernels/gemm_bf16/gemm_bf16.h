// GEMM bf16: c[m][j] = sum_k bf16(a[m][k]) * bf16(w[j][k]) summed in fp32 (+ the fp32 epilogue).
// Half the weight bytes of fp32 and, on AVX-512 BF16, one vdpbf16ps does two multiply-adds per
// lane: the float path for layers left unquantized. Weights are rounded and packed once into
// column panels of 16, k-major in pairs: panel p, pair q holds (w[j][2q], w[j][2q+1]) for the
// 16 columns j of the panel, one 32-bit lane each (vdpbf16ps' layout), zero-padded past n and k.
// Activations are rounded to bf16 per call (the same rounding for every ISA, so every ISA sums
// the same products).
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/cpu_isa.h"
#include "kernels/gemm_f32/gemm_f32.h"

namespace sqz::kernels {

constexpr int64_t kBf16PanelCols = 16;

// Round to nearest even, as vcvtne2ps2bf16 does: subnormal inputs become signed zero, NaN stays
// a (quiet) NaN.
uint16_t float_to_bf16(float x);
float bf16_to_float(uint16_t x);

struct PackedBf16Weights {
  int64_t n = 0, k = 0, k_pairs = 0, panels = 0;
  std::vector<uint16_t> data;  // panels * k_pairs * 32
};

// w: [n, k] row-major with row stride ldw (a Linear weight).
PackedBf16Weights pack_bf16_weights(const float* w, int64_t n, int64_t k, int64_t ldw);
// The rounded [n, k] row-major bf16 bit patterns back from the packing.
void unpack_bf16_weights(const PackedBf16Weights& p, uint16_t* w);

// Panels are split across the kernels' threads; a call inside a parallel region runs serially.
// The epilogue is the fp32 GEMM's (alpha, bias, activation, residual).
void gemm_bf16(const float* a, int64_t m, int64_t lda, const PackedBf16Weights& w, float* c, int64_t ldc,
               const GemmF32Epilogue& epilogue = {}, Isa isa = active_isa());

// Per-ISA kernels: panels [p0, p1) of c = a * w^T, no epilogue. `a` holds the activations
// already rounded, as bf16 pairs: row i, pair q at a[i * lda_pairs + q] (low half = even k).
void gemm_bf16_panels_ref(const uint32_t* a, int64_t m, int64_t lda_pairs, const PackedBf16Weights& w, int64_t p0,
                          int64_t p1, float* c, int64_t ldc);
void gemm_bf16_panels_avx2(const uint32_t* a, int64_t m, int64_t lda_pairs, const PackedBf16Weights& w, int64_t p0,
                           int64_t p1, float* c, int64_t ldc);
void gemm_bf16_panels_avx512bf16(const uint32_t* a, int64_t m, int64_t lda_pairs, const PackedBf16Weights& w,
                                 int64_t p0, int64_t p1, float* c, int64_t ldc);
// AMX-BF16 tiles where they fit, the AVX-512 BF16 kernel for the rest; call only where
// amx_bf16_enabled() holds (gemm_bf16 picks it within kAvx512Vnni). Sums in another order than
// the vector kernels (within the same fp32 error bound).
void gemm_bf16_panels_amx(const uint32_t* a, int64_t m, int64_t lda_pairs, const PackedBf16Weights& w, int64_t p0,
                          int64_t p1, float* c, int64_t ldc);

// Rows of fp32 activations [m, k] (row stride lda) to bf16 pairs [m, ceil(k/2)] (odd k padded
// with zero). The AVX-512 BF16 version converts 32 values per instruction; same results.
void round_rows_to_bf16_ref(const float* a, int64_t m, int64_t k, int64_t lda, uint32_t* out);
void round_rows_to_bf16_avx512bf16(const float* a, int64_t m, int64_t k, int64_t lda, uint32_t* out);

}  // namespace sqz::kernels
