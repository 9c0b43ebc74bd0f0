#include "kernels/gemm_bf16/gemm_bf16.h"

#include <algorithm>

#include "kernels/parallel.h"

namespace sqz::kernels {

PackedBf16Weights pack_bf16_weights(const float* w, int64_t n, int64_t k, int64_t ldw) {
  PackedBf16Weights out;
  out.n = n;
  out.k = k;
  out.k_pairs = (k + 1) / 2;
  out.panels = (n + kBf16PanelCols - 1) / kBf16PanelCols;
  out.data.assign(static_cast<size_t>(out.panels * out.k_pairs * 2 * kBf16PanelCols), 0);
  if (out.data.empty()) return out;  // k == 0: no column pointer may be formed into an empty buffer (UBSan)
  for (int64_t j = 0; j < n; ++j) {
    uint16_t* col = out.data.data() + (j / kBf16PanelCols) * out.k_pairs * 2 * kBf16PanelCols + 2 * (j % kBf16PanelCols);
    for (int64_t kk = 0; kk < k; ++kk) col[(kk / 2) * 2 * kBf16PanelCols + (kk % 2)] = float_to_bf16(w[j * ldw + kk]);
  }
  return out;
}

void unpack_bf16_weights(const PackedBf16Weights& p, uint16_t* w) {
  if (p.data.empty()) return;
  for (int64_t j = 0; j < p.n; ++j) {
    const uint16_t* col = p.data.data() + (j / kBf16PanelCols) * p.k_pairs * 2 * kBf16PanelCols + 2 * (j % kBf16PanelCols);
    for (int64_t kk = 0; kk < p.k; ++kk) w[j * p.k + kk] = col[(kk / 2) * 2 * kBf16PanelCols + (kk % 2)];
  }
}

namespace {

// Which kernel an ISA tier runs: AVX-512 BF16 is a separate feature from the tier's VNNI.
bool use_avx512bf16(Isa isa) { return isa == Isa::kAvx512Vnni && cpu_has_avx512bf16(); }

void round_rows(const float* a, int64_t m, int64_t k, int64_t lda, uint32_t* out, Isa isa) {
  const int64_t pairs = (k + 1) / 2;
  parallel_for(m, [&](int64_t i0, int64_t i1) {
    if (use_avx512bf16(isa))
      round_rows_to_bf16_avx512bf16(a + i0 * lda, i1 - i0, k, lda, out + i0 * pairs);
    else
      round_rows_to_bf16_ref(a + i0 * lda, i1 - i0, k, lda, out + i0 * pairs);
  });
}

}  // namespace

void gemm_bf16(const float* a, int64_t m, int64_t lda, const PackedBf16Weights& w, float* c, int64_t ldc,
               const GemmF32Epilogue& epilogue, Isa isa) {
  if (m <= 0 || w.n <= 0) return;
  // The rounded activations, reused across calls; bound to a plain reference so that the
  // parallel region's workers use this thread's buffer, not their own thread_local one.
  thread_local std::vector<uint32_t> rounded_storage;
  std::vector<uint32_t>& rounded = rounded_storage;
  rounded.resize(static_cast<size_t>(std::max<int64_t>(1, m * w.k_pairs)));
  round_rows(a, m, w.k, lda, rounded.data(), isa);
  const uint32_t* ab = rounded.data();
  parallel_for(w.panels, [&](int64_t p0, int64_t p1) {
    if (use_avx512bf16(isa) && amx_bf16_enabled())
      gemm_bf16_panels_amx(ab, m, w.k_pairs, w, p0, p1, c, ldc);
    else if (use_avx512bf16(isa))
      gemm_bf16_panels_avx512bf16(ab, m, w.k_pairs, w, p0, p1, c, ldc);
    else if (isa != Isa::kRef)
      gemm_bf16_panels_avx2(ab, m, w.k_pairs, w, p0, p1, c, ldc);
    else
      gemm_bf16_panels_ref(ab, m, w.k_pairs, w, p0, p1, c, ldc);
    apply_gemm_f32_epilogue(epilogue, m, p0 * kBf16PanelCols, std::min(w.n, p1 * kBf16PanelCols), c, ldc, isa);
  });
}

}  // namespace sqz::kernels
