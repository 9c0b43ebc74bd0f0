// GEMM u8 (activations, row-major [M, K]) x s8 (weights, logically [N, K] as nn.Linear stores
// them) -> s32 [M, N], with the weights pre-packed once into the layout VNNI consumes: blocks of
// 16 output columns x 4 consecutive k, 64 bytes each (one zmm), k-blocks contiguous per column
// block. N is padded to 16 and K to 4 with zeros. The packing is plain data, shared by every ISA.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/cpu_isa.h"

namespace sqz::kernels {

constexpr int64_t kPackCols = 16;  // output columns per block (int32 lanes of a zmm)
constexpr int64_t kPackK = 4;      // k per 32-bit lane (vpdpbusd)

struct PackedS8Weights {
  int64_t n = 0, k = 0;              // logical sizes
  int64_t n_blocks = 0, k_groups = 0;
  std::vector<int8_t> data;          // n_blocks * k_groups * 64 bytes, 64-byte aligned use not required
  std::vector<int32_t> column_sums;  // sum_k w[n][k], for the activation zero-point correction
};

// w: [n, k] row-major with row stride ldw.
PackedS8Weights pack_s8_weights(const int8_t* w, int64_t n, int64_t k, int64_t ldw);
// The same into `out`, reusing its buffers (attention packs K and V on every call).
void pack_s8_weights_into(const int8_t* w, int64_t n, int64_t k, int64_t ldw, PackedS8Weights& out);
// The [n, k] row-major codes back from the packing.
void unpack_s8_weights(const PackedS8Weights& p, int8_t* w);

// c[m][j] = sum_k a[m][k] * w[j][k], exactly (int32), for j < w.n. c has row stride ldc.
void gemm_u8s8s32(const uint8_t* a, int64_t m, int64_t lda, const PackedS8Weights& w, int32_t* c, int64_t ldc,
                  Isa isa = active_isa());

// The per-ISA kernels behind gemm_u8s8s32 (each in its own file, compiled with its own flags):
// column blocks [nb0, nb1) of c; gemm_u8s8s32 splits the blocks across the kernels' threads.
void gemm_u8s8s32_ref(const uint8_t* a, int64_t m, int64_t lda, const PackedS8Weights& w, int64_t nb0, int64_t nb1,
                      int32_t* c, int64_t ldc);
void gemm_u8s8s32_avx2(const uint8_t* a, int64_t m, int64_t lda, const PackedS8Weights& w, int64_t nb0, int64_t nb1,
                       int32_t* c, int64_t ldc);
void gemm_u8s8s32_avx512vnni(const uint8_t* a, int64_t m, int64_t lda, const PackedS8Weights& w, int64_t nb0, int64_t nb1,
                             int32_t* c, int64_t ldc);
// AMX-INT8 tiles where they fit (amx_int8_enabled(); gemm_u8s8s32 picks it within kAvx512Vnni),
// the VNNI kernel for the rest; call only where amx_int8_enabled() holds.
void gemm_u8s8s32_amx(const uint8_t* a, int64_t m, int64_t lda, const PackedS8Weights& w, int64_t nb0, int64_t nb1, int32_t* c,
                      int64_t ldc);

}  // namespace sqz::kernels
