// Reference: reads the packed layout element by element; every fast kernel is tested against it.
#include <algorithm>

#include "kernels/gemm_u8s8/gemm_u8s8.h"

namespace sqz::kernels {

void gemm_u8s8s32_ref(const uint8_t* a, int64_t m, int64_t lda, const PackedS8Weights& w, int64_t nb0, int64_t nb1,
                      int32_t* c, int64_t ldc) {
  const int64_t j1 = std::min(w.n, nb1 * kPackCols);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = nb0 * kPackCols; j < j1; ++j) {
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
