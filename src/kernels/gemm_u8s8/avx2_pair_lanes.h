// Shared by the AVX2 int8 kernels (include only from files compiled with -mavx2): vpmaddwd
// leaves, per column, two int32 partial sums in adjacent lanes; acc[q] covers columns 4q..4q+3.
// Folds the pairs and stores `cols` (<= 16) int32 results.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace sqz::kernels::avx2 {

inline void store_pair_lanes(const __m256i acc[4], int32_t* out, int64_t cols) {
  __m256i lo = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[0], acc[1]), 0xD8);
  __m256i hi = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[2], acc[3]), 0xD8);
  if (cols == 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), lo);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 8), hi);
    return;
  }
  alignas(32) int32_t lanes[16];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), lo);
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes + 8), hi);
  std::memcpy(out, lanes, static_cast<size_t>(cols) * sizeof(int32_t));
}

}  // namespace sqz::kernels::avx2
