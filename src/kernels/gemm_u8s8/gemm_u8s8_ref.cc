// Reference: reads the packed layout element by element; every fast kernel is tested against it.
#include "kernels/gemm_u8s8/gemm_u8s8.h"

namespace sqz::kernels {

void gemm_u8s8s32_ref(const uint8_t* a, int64_t m, int64_t lda, const PackedS8Weights& w, int32_t* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < w.n; ++j) {
      int32_t acc = 0;
      int64_t nb = j / kPackCols, lane = j % kPackCols;
      for (int64_t kk = 0; kk < w.k; ++kk) {
        int64_t g = kk / kPackK, t = kk % kPackK;
        acc += static_cast<int32_t>(a[i * lda + kk]) *
               static_cast<int32_t>(w.data[static_cast<size_t>(((nb * w.k_groups + g) * kPackCols + lane) * kPackK + t)]);
      }
      c[i * ldc + j] = acc;
    }
}

}  // namespace sqz::kernels
