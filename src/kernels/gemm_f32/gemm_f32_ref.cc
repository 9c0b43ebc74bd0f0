// Reference: one dot product per output, read through the packed layout (so packing is tested too).
#include <algorithm>

#include "kernels/gemm_f32/gemm_f32.h"

namespace sqz::kernels {

void gemm_f32_panels_ref(const float* a, int64_t m, int64_t lda, const PackedF32Weights& w, int64_t p0, int64_t p1,
                         float* c, int64_t ldc) {
  for (int64_t p = p0; p < p1; ++p) {
    const float* panel = w.data.data() + p * w.k * kF32PanelCols;
    const int64_t cols = std::min(kF32PanelCols, w.n - p * kF32PanelCols);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        double acc = 0;  // double: the reference should not share the fast kernels' rounding
        for (int64_t kk = 0; kk < w.k; ++kk) acc += double(a[i * lda + kk]) * double(panel[kk * kF32PanelCols + j]);
        c[i * ldc + p * kF32PanelCols + j] = static_cast<float>(acc);
      }
  }
}

}  // namespace sqz::kernels
