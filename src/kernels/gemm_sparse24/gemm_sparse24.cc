#include "kernels/gemm_sparse24/gemm_sparse24.h"

#include <algorithm>
#include <stdexcept>

#include "kernels/parallel.h"

namespace sqz::kernels {

namespace {

// Index of (column lane 0..15, slot 0..3) inside a block-window's 64 bytes: quads of 4 columns,
// each column's 4 slots contiguous (the dense AVX2 kernel's order).
inline int64_t slot_index(int64_t lane, int64_t slot) { return (lane / 4) * 16 + (lane % 4) * 4 + slot; }

}  // namespace

std::string find_sparse24_violation(const int8_t* w, int64_t n, int64_t k, int64_t ldw) {
  for (int64_t j = 0; j < n; ++j)
    for (int64_t g = 0; g * 4 < k; ++g) {
      int nonzero = 0;
      for (int64_t t = g * 4; t < std::min(k, g * 4 + 4); ++t) nonzero += w[j * ldw + t] != 0;
      if (nonzero > 2)
        return "row " + std::to_string(j) + ", group " + std::to_string(g) + " (k " + std::to_string(g * 4) + ".." +
               std::to_string(std::min(k, g * 4 + 4) - 1) + ") has " + std::to_string(nonzero) + " non-zeros, 2:4 allows 2";
    }
  return "";
}

void unpack_s8_sparse24(const PackedS8Sparse24& p, int8_t* w) {
  std::fill(w, w + p.n * p.k, int8_t{0});
  for (int64_t j = 0; j < p.n; ++j) {
    const int64_t nb = j / kSparseCols, lane = j % kSparseCols;
    for (int64_t win = 0; win < p.windows; ++win)
      for (int64_t slot = 0; slot < 4; ++slot) {
        const size_t at = static_cast<size_t>((nb * p.windows + win) * 64 + slot_index(lane, slot));
        const int64_t kk = win * kSparseWindow + p.positions[at];
        if (p.values[at] != 0) w[j * p.k + kk] = p.values[at];  // padding slots hold zeros
      }
  }
}

PackedS8Sparse24 pack_s8_sparse24(const int8_t* w, int64_t n, int64_t k, int64_t ldw) {
  if (auto why = find_sparse24_violation(w, n, k, ldw); !why.empty()) throw std::invalid_argument("not 2:4 sparse: " + why);
  PackedS8Sparse24 p;
  p.n = n;
  p.k = k;
  p.n_blocks = (n + kSparseCols - 1) / kSparseCols;
  p.windows = (k + kSparseWindow - 1) / kSparseWindow;
  const size_t bytes = static_cast<size_t>(p.n_blocks * p.windows * 64);
  p.values.assign(bytes, 0);
  p.positions.assign(bytes, 0);
  p.shuffle_avx2.assign(bytes * 2, 0);
  p.column_sums.assign(static_cast<size_t>(p.n_blocks * kSparseCols), 0);
  // Padding columns (j >= n) get zero values at valid, distinct positions like any other.
  auto weight = [&](int64_t j, int64_t kk) -> int8_t { return j < n && kk < k ? w[j * ldw + kk] : 0; };
  for (int64_t j = 0; j < p.n_blocks * kSparseCols; ++j) {
    const int64_t nb = j / kSparseCols, lane = j % kSparseCols;
    for (int64_t win = 0; win < p.windows; ++win) {
      const int64_t base = (nb * p.windows + win) * 64;
      for (int64_t half = 0; half < 2; ++half) {
        // Two slots per group: its non-zeros first, then unused positions with value 0.
        const int64_t g0 = win * kSparseWindow + half * 4;
        int64_t slot = half * 2;
        for (int64_t t = 0; t < 4 && slot < half * 2 + 2; ++t)
          if (weight(j, g0 + t) != 0) {
            p.values[base + slot_index(lane, slot)] = weight(j, g0 + t);
            p.positions[base + slot_index(lane, slot)] = static_cast<uint8_t>(half * 4 + t);
            p.column_sums[j] += weight(j, g0 + t);
            ++slot;
          }
        for (int64_t t = 0; slot < half * 2 + 2; ++t) {  // pad: a position of this group not yet used
          const uint8_t pos = static_cast<uint8_t>(half * 4 + t);
          if (slot == half * 2 + 1 && p.positions[base + slot_index(lane, half * 2)] == pos) continue;
          p.positions[base + slot_index(lane, slot)] = pos;
          ++slot;
        }
      }
    }
  }
  p.positions2.assign(static_cast<size_t>(p.n_blocks * p.windows * 4), 0);
  for (int64_t i = 0; i < p.n_blocks * p.windows * 4; ++i)
    for (int64_t l = 0; l < 16; ++l) p.positions2[static_cast<size_t>(i)] |= uint32_t(p.positions[static_cast<size_t>(i * 16 + l)] & 3) << (2 * l);
  // AVX2: the activation window is 8 int16 copied into both 128-bit halves; quad q of a block is
  // one ymm of 16 int16 (columns 4q..4q+3 x 4 slots), so each int16 lane takes bytes 2p, 2p+1.
  for (int64_t i = 0; i < p.n_blocks * p.windows; ++i)
    for (int64_t b = 0; b < 64; ++b) {
      const uint8_t pos = p.positions[static_cast<size_t>(i * 64 + b)];
      p.shuffle_avx2[static_cast<size_t>(i * 128 + 2 * b)] = static_cast<uint8_t>(2 * pos);
      p.shuffle_avx2[static_cast<size_t>(i * 128 + 2 * b + 1)] = static_cast<uint8_t>(2 * pos + 1);
    }
  return p;
}

std::string validate_sparse24(const PackedS8Sparse24& p) {
  const size_t bytes = static_cast<size_t>(p.n_blocks * p.windows * 64);
  if (p.values.size() != bytes || p.positions.size() != bytes) return "values/positions size does not match the shape";
  for (int64_t i = 0; i < p.n_blocks * p.windows; ++i)
    for (int64_t lane = 0; lane < kSparseCols; ++lane)
      for (int64_t half = 0; half < 2; ++half) {
        const uint8_t a = p.positions[i * 64 + slot_index(lane, half * 2)];
        const uint8_t b = p.positions[i * 64 + slot_index(lane, half * 2 + 1)];
        for (uint8_t pos : {a, b})
          if (pos / 4 != half || pos >= kSparseWindow)
            return "position " + std::to_string(pos) + " at block-window " + std::to_string(i) + ", column " +
                   std::to_string(lane) + " is outside its group " + std::to_string(half);
        if (a == b) return "duplicate position " + std::to_string(a) + " at block-window " + std::to_string(i);
      }
  return "";
}

void gemm_u8s8s32_sparse24(const uint8_t* a, int64_t m, int64_t lda, const PackedS8Sparse24& w, int32_t* c, int64_t ldc,
                           Isa isa) {
  if (m <= 0 || w.n <= 0) return;
  parallel_for(w.n_blocks, [&](int64_t nb0, int64_t nb1) {
    switch (isa) {
      case Isa::kAvx512Vnni: return gemm_u8s8s32_sparse24_avx512vnni(a, m, lda, w, nb0, nb1, c, ldc);
      case Isa::kAvx2: return gemm_u8s8s32_sparse24_avx2(a, m, lda, w, nb0, nb1, c, ldc);
      case Isa::kRef: return gemm_u8s8s32_sparse24_ref(a, m, lda, w, nb0, nb1, c, ldc);
    }
  });
}

}  // namespace sqz::kernels
