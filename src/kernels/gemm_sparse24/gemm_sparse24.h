// 2:4 semi-structured sparse int8 GEMM: u8 activations [M, K] x s8 weights [N, K] whose every
// group of 4 consecutive k (from k = 0) holds at most 2 non-zeros -> s32 [M, N]. Only the kept
// values are stored: per column and per window of 8 k (two groups), 4 values and the position
// of each inside the window (0..7), so the kernel does half the multiply-adds of the dense one
// and gathers the matching activations with byte shuffles.
//
// Layout (shared by every ISA): blocks of 16 columns, windows of 8 k; per block and window,
// values[16 x 4] in the order of the dense kernels' 4-column quads (column-major quads of 4
// columns x 4 kept values — which is also one column per 32-bit lane, as vpdpbusd wants) and the
// same-shaped positions, which are AVX-512's vpshufb controls as they stand. AVX2 kernels for
// many rows (prefill) read vpshufb controls precomputed from the positions; kernels for one or
// two rows (decode, bound by weight bandwidth) read only the values and the 2-bit positions:
// 80 bytes per 16 columns x 8 k against the dense int8 packing's 128. A group with fewer than 2
// non-zeros pads with zero values at unused positions of the group.
// Where shuffles issue at half the rate of vpdpbusd (AMD Zen 5: one zmm vpshufb per cycle, two
// vpdpbusd), the gather costs what it saves, so prefill runs at the dense kernel's speed; decode
// gains from the smaller weights.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu_isa.h"

namespace sqz::kernels {

constexpr int64_t kSparseWindow = 8;  // k per window = two 2:4 groups
constexpr int64_t kSparseCols = 16;

struct PackedS8Sparse24 {
  int64_t n = 0, k = 0, n_blocks = 0, windows = 0;
  std::vector<int8_t> values;        // n_blocks * windows * 64
  std::vector<uint8_t> positions;    // same shape: position in the window, 0..7
  std::vector<uint32_t> positions2;   // the same positions, 2 bits each (within their group): one word per quad
  std::vector<uint8_t> shuffle_avx2;  // derived at pack time: per block, window and quad, a 32-byte vpshufb control
  std::vector<int32_t> column_sums;  // sum of the kept values per column (zero-point correction)
};

// Where `w` ([n, k], row stride ldw) breaks 2:4: "" when it does not, else which row and group.
std::string find_sparse24_violation(const int8_t* w, int64_t n, int64_t k, int64_t ldw);
// Throws std::invalid_argument naming the row and group when `w` is not 2:4.
PackedS8Sparse24 pack_s8_sparse24(const int8_t* w, int64_t n, int64_t k, int64_t ldw);
// The dense [n, k] row-major codes back from the packing (zeros where nothing is kept).
void unpack_s8_sparse24(const PackedS8Sparse24& p, int8_t* w);
// Checks a packing's positions (each in 0..7, each in its value's own group, no duplicates);
// "" = valid. For packings that come from files rather than from pack_s8_sparse24.
std::string validate_sparse24(const PackedS8Sparse24& p);

// c[m][j] = sum_k a[m][k] * w[j][k] (exact int32), for j < n; column blocks split across threads.
void gemm_u8s8s32_sparse24(const uint8_t* a, int64_t m, int64_t lda, const PackedS8Sparse24& w, int32_t* c, int64_t ldc,
                           Isa isa = active_isa());

void gemm_u8s8s32_sparse24_ref(const uint8_t* a, int64_t m, int64_t lda, const PackedS8Sparse24& w, int64_t nb0, int64_t nb1,
                               int32_t* c, int64_t ldc);
void gemm_u8s8s32_sparse24_avx2(const uint8_t* a, int64_t m, int64_t lda, const PackedS8Sparse24& w, int64_t nb0, int64_t nb1,
                                int32_t* c, int64_t ldc);
void gemm_u8s8s32_sparse24_avx512vnni(const uint8_t* a, int64_t m, int64_t lda, const PackedS8Sparse24& w, int64_t nb0,
                                      int64_t nb1, int32_t* c, int64_t ldc);

}  // namespace sqz::kernels
