// Block-sparse int8 GEMM shaped for VNNI: u8 activations [M, K] x s8 weights [N, K] in which
// whole blocks of 4 outputs x 4 consecutive inputs are zero -> s32 [M, N]. Only the non-zero
// blocks are stored (16 bytes each, one 32-bit word per output = the 4 k bytes vpdpbusd takes),
// listed per group of 4 outputs with each block's k group; the kernel never touches a zero block.
//
// Why 4 x 4 and rows in vector lanes (the dense kernel has outputs in lanes): a block's 4 weight
// words are broadcast (a memory operand of vpdpbusd), and one load of 16 rows x the block's 4
// activations per vector serves all 4 outputs, so each block costs one activation load per 4
// multiply-adds, as the dense kernel's broadcasts do. With outputs in lanes a skipped block would
// have to be zero for 16 outputs at once; with a 1 x 4 block each output would need its own
// activation load per multiply-add. The activations are therefore regrouped once per call into
// k-group-major panels: at[g][row][4] (rows padded to 16 with zeros).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu_isa.h"

namespace sqz::kernels {

constexpr int64_t kBlockOutputs = 4;  // outputs per block
constexpr int64_t kBlockK = 4;        // consecutive k per block (one vpdpbusd lane)
constexpr int64_t kBlockRows = 16;    // activation rows per vector (int32 lanes of a zmm)

struct PackedS8BlockSparse {
  int64_t n = 0, k = 0, n_groups = 0, k_groups = 0;
  std::vector<int32_t> group_start;  // n_groups + 1: group o's blocks are [group_start[o], group_start[o + 1])
  std::vector<int32_t> block_k;      // per block: its k group (k / 4), ascending within a group
  std::vector<int8_t> values;        // 16 per block: [output][k], one 32-bit word per output
  std::vector<int32_t> column_sums;  // n_groups * 4: sum of the kept weights per output (zero-point correction)

  int64_t blocks() const { return static_cast<int64_t>(block_k.size()); }
  // Fraction of the n x k blocks stored.
  double density() const;
};

// Keeps every 4 x 4 block of w ([n, k], row stride ldw) that holds a non-zero.
PackedS8BlockSparse pack_s8_block_sparse(const int8_t* w, int64_t n, int64_t k, int64_t ldw);
// The dense [n, k] row-major codes back from the packing (zeros in the blocks not stored).
void unpack_s8_block_sparse(const PackedS8BlockSparse& p, int8_t* w);
// Checks a packing read from a file: sizes, offsets ascending, k groups in range and ascending
// within each group; "" = valid, else what is wrong.
std::string validate_block_sparse(const PackedS8BlockSparse& p);
// Fraction of w's 4 x 4 blocks that are all zero (what the packing skips).
double block_sparsity(const int8_t* w, int64_t n, int64_t k, int64_t ldw);

// The activations regrouped as the kernels read them: at[g][r][t] = a[r][4 g + t], k padded to a
// multiple of 4 with zeros and rows to m_pad = block_sparse_rows_padded(m): a multiple of 16, or
// m itself for up to 4 rows (decode), which the kernels read one row at a time.
int64_t block_sparse_rows_padded(int64_t m);
void pack_block_sparse_activations(const uint8_t* a, int64_t m, int64_t lda, int64_t k, std::vector<uint8_t>& at,
                                   Isa isa = active_isa());
// The AVX-512 version (16 x 16 word transposes) for m > 4; `at` sized by the caller.
void pack_block_sparse_activations_avx512(const uint8_t* a, int64_t m, int64_t lda, int64_t k, uint8_t* at);

// c[m][j] = sum_k a[m][k] * w[j][k] (exact int32) for j < w.n; output groups split across threads
// by their block counts.
void gemm_u8s8s32_block_sparse(const uint8_t* a, int64_t m, int64_t lda, const PackedS8BlockSparse& w, int32_t* c,
                               int64_t ldc, Isa isa = active_isa());

// The per-ISA kernels: output groups [o0, o1) of c from the regrouped activations `at` (m real
// rows, block_sparse_rows_padded(m) stored).
void gemm_u8s8s32_block_sparse_ref(const uint8_t* at, int64_t m, const PackedS8BlockSparse& w, int64_t o0, int64_t o1,
                                   int32_t* c, int64_t ldc);
void gemm_u8s8s32_block_sparse_avx2(const uint8_t* at, int64_t m, const PackedS8BlockSparse& w, int64_t o0, int64_t o1,
                                    int32_t* c, int64_t ldc);
void gemm_u8s8s32_block_sparse_avx512vnni(const uint8_t* at, int64_t m, const PackedS8BlockSparse& w, int64_t o0,
                                          int64_t o1, int32_t* c, int64_t ldc);

}  // namespace sqz::kernels
