// Scalar reference of the block-sparse int8 GEMM: what every other ISA must equal exactly.
#include <algorithm>

#include "kernels/gemm_block_sparse/gemm_block_sparse.h"

namespace sqz::kernels {

void gemm_u8s8s32_block_sparse_ref(const uint8_t* at, int64_t m, const PackedS8BlockSparse& w, int64_t o0, int64_t o1,
                                   int32_t* c, int64_t ldc) {
  const int64_t m_pad = block_sparse_rows_padded(m);
  for (int64_t o = o0; o < o1; ++o) {
    const int64_t outputs = std::min(kBlockOutputs, w.n - o * kBlockOutputs);
    for (int64_t r = 0; r < m; ++r)
      for (int64_t i = 0; i < outputs; ++i) {
        int32_t acc = 0;
        for (int64_t b = w.group_start[o]; b < w.group_start[o + 1]; ++b) {
          const uint8_t* x = at + (w.block_k[b] * m_pad + r) * kBlockK;
          const int8_t* v = w.values.data() + b * 16 + i * kBlockK;
          for (int64_t t = 0; t < kBlockK; ++t) acc += int32_t(x[t]) * int32_t(v[t]);
        }
        c[r * ldc + o * kBlockOutputs + i] = acc;
      }
  }
}

}  // namespace sqz::kernels
