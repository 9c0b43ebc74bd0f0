// Reference: walks the kept values and their positions one by one.
#include <algorithm>

#include "kernels/gemm_sparse24/gemm_sparse24.h"

namespace sqz::kernels {

void gemm_u8s8s32_sparse24_ref(const uint8_t* a, int64_t m, int64_t lda, const PackedS8Sparse24& w, int64_t nb0, int64_t nb1,
                               int32_t* c, int64_t ldc) {
  for (int64_t nb = nb0; nb < nb1; ++nb)
    for (int64_t lane = 0; lane < kSparseCols && nb * kSparseCols + lane < w.n; ++lane)
      for (int64_t i = 0; i < m; ++i) {
        int32_t acc = 0;
        for (int64_t win = 0; win < w.windows; ++win)
          for (int64_t slot = 0; slot < 4; ++slot) {
            const int64_t idx = (nb * w.windows + win) * 64 + (lane / 4) * 16 + (lane % 4) * 4 + slot;
            const int64_t kk = win * kSparseWindow + w.positions[idx];
            if (kk < w.k) acc += int32_t(a[i * lda + kk]) * int32_t(w.values[idx]);
          }
        c[i * ldc + nb * kSparseCols + lane] = acc;
      }
}

}  // namespace sqz::kernels
