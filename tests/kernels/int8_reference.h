// The plain int32 product the int8 GEMM tests hold every kernel to, on the unpacked weights so
// that the packings are checked too.
#pragma once
#include <cstdint>
#include <vector>

namespace sqz::kernels {

// c [m rows, row stride ldc] with c[i][j] = sum_k a[i][k] w[j][k] for j < n; the entries past n
// in each row hold -7 (what the kernels must leave alone).
inline std::vector<int32_t> reference_s32_product(const std::vector<uint8_t>& a, int64_t m, int64_t lda,
                                                  const std::vector<int8_t>& w, int64_t n, int64_t k, int64_t ldc) {
  std::vector<int32_t> c(static_cast<size_t>(m * ldc), -7);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      int32_t acc = 0;
      for (int64_t kk = 0; kk < k; ++kk) acc += int32_t(a[i * lda + kk]) * int32_t(w[j * k + kk]);
      c[i * ldc + j] = acc;
    }
  return c;
}

// sum_k w[j][k] for each of the n rows of w [n, k].
inline std::vector<int32_t> reference_column_sums(const std::vector<int8_t>& w, int64_t n, int64_t k) {
  std::vector<int32_t> sums(static_cast<size_t>(n), 0);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t kk = 0; kk < k; ++kk) sums[j] += w[j * k + kk];
  return sums;
}

}  // namespace sqz::kernels
