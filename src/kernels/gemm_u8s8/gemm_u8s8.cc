#include "kernels/gemm_u8s8/gemm_u8s8.h"

#include "kernels/parallel.h"

namespace sqz::kernels {

void pack_s8_weights_into(const int8_t* w, int64_t n, int64_t k, int64_t ldw, PackedS8Weights& p) {
  p.n = n;
  p.k = k;
  p.n_blocks = (n + kPackCols - 1) / kPackCols;
  p.k_groups = (k + kPackK - 1) / kPackK;
  p.data.assign(static_cast<size_t>(p.n_blocks * p.k_groups * kPackCols * kPackK), 0);
  p.column_sums.assign(static_cast<size_t>(p.n_blocks * kPackCols), 0);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t kk = 0; kk < k; ++kk) {
      int8_t v = w[j * ldw + kk];
      int64_t nb = j / kPackCols, lane = j % kPackCols, g = kk / kPackK, t = kk % kPackK;
      p.data[static_cast<size_t>(((nb * p.k_groups + g) * kPackCols + lane) * kPackK + t)] = v;
      p.column_sums[static_cast<size_t>(j)] += v;
    }
}

PackedS8Weights pack_s8_weights(const int8_t* w, int64_t n, int64_t k, int64_t ldw) {
  PackedS8Weights p;
  pack_s8_weights_into(w, n, k, ldw, p);
  return p;
}

void unpack_s8_weights(const PackedS8Weights& p, int8_t* w) {
  for (int64_t j = 0; j < p.n; ++j)
    for (int64_t kk = 0; kk < p.k; ++kk) {
      int64_t nb = j / kPackCols, lane = j % kPackCols, g = kk / kPackK, t = kk % kPackK;
      w[j * p.k + kk] = p.data[static_cast<size_t>(((nb * p.k_groups + g) * kPackCols + lane) * kPackK + t)];
    }
}

void gemm_u8s8s32(const uint8_t* a, int64_t m, int64_t lda, const PackedS8Weights& w, int32_t* c, int64_t ldc, Isa isa) {
  if (m <= 0 || w.n <= 0) return;
  parallel_for(w.n_blocks, [&](int64_t nb0, int64_t nb1) {
    switch (isa) {
      case Isa::kAvx512Vnni:
        if (amx_int8_enabled()) return gemm_u8s8s32_amx(a, m, lda, w, nb0, nb1, c, ldc);
        return gemm_u8s8s32_avx512vnni(a, m, lda, w, nb0, nb1, c, ldc);
      case Isa::kAvx2: return gemm_u8s8s32_avx2(a, m, lda, w, nb0, nb1, c, ldc);
      case Isa::kRef: return gemm_u8s8s32_ref(a, m, lda, w, nb0, nb1, c, ldc);
    }
  });
}

}  // namespace sqz::kernels
