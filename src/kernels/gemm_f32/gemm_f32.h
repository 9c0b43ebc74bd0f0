// GEMM fp32: c[m][j] = sum_k a[m][k] * w[j][k] (+ epilogue), a row-major [M, K], the weights
// pre-packed once into column panels of 16 (two ymm / one zmm), k-major inside a panel:
// panel p holds w[16p .. 16p+15][k] for k = 0..K-1, 16 floats per k, zero-padded past N.
// The same packing serves Linear weights ([N, K], packed once at load) and attention's K and V
// (packed per call from strided views), so one microkernel runs every fp32 product.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/cpu_isa.h"
#include "kernels/eltwise/eltwise.h"

namespace sqz::kernels {

constexpr int64_t kF32PanelCols = 16;

struct PackedF32Weights {
  int64_t n = 0, k = 0, panels = 0;
  std::vector<float> data;  // panels * k * 16
};

// Element (j, kk) of the logical [n, k] matrix is w[j * stride_n + kk * stride_k]: a Linear
// weight is (ldw, 1); a [k, n] row-major matrix (attention's V) is (1, ldw).
PackedF32Weights pack_f32_weights(const float* w, int64_t n, int64_t k, int64_t stride_n, int64_t stride_k);
// The logical [n, k] row-major matrix back from its panels (what a runtime dir stores).
void unpack_f32_weights(const PackedF32Weights& p, float* w);
// Packs into `out`, reusing its storage (attention packs per head per call).
void pack_f32_weights_into(const float* w, int64_t n, int64_t k, int64_t stride_n, int64_t stride_k, PackedF32Weights& out);

// What happens to each output after the sum: c = act(alpha * sum + bias[j]) (+ residual[m][j]).
struct GemmF32Epilogue {
  float alpha = 1.0f;
  const float* bias = nullptr;      // [n]
  const float* residual = nullptr;  // [m, n] with row stride ldr; must not alias c (c holds partial sums)
  int64_t ldr = 0;
  Activation activation = Activation::kNone;  // before the residual is added
};

// Applies `e` to columns [j0, j1) of rows [0, m) of c in place (every float GEMM's last step).
void apply_gemm_f32_epilogue(const GemmF32Epilogue& e, int64_t m, int64_t j0, int64_t j1, float* c, int64_t ldc, Isa isa);

// Panels are split across the kernels' threads; a call inside a parallel region runs serially.
void gemm_f32(const float* a, int64_t m, int64_t lda, const PackedF32Weights& w, float* c, int64_t ldc,
              const GemmF32Epilogue& epilogue = {}, Isa isa = active_isa());

// Per-ISA kernels: panels [p0, p1) of c = a * w^T, no epilogue (each in its own file).
void gemm_f32_panels_ref(const float* a, int64_t m, int64_t lda, const PackedF32Weights& w, int64_t p0, int64_t p1,
                         float* c, int64_t ldc);
void gemm_f32_panels_6x16_avx2(const float* a, int64_t m, int64_t lda, const PackedF32Weights& w, int64_t p0, int64_t p1,
                               float* c, int64_t ldc);
void gemm_f32_panels_avx512(const float* a, int64_t m, int64_t lda, const PackedF32Weights& w, int64_t p0, int64_t p1,
                            float* c, int64_t ldc);

}  // namespace sqz::kernels
