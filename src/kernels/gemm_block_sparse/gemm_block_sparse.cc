#include "kernels/gemm_block_sparse/gemm_block_sparse.h"

#include <cstring>

#include "kernels/parallel.h"

namespace sqz::kernels {

namespace {

bool block_is_zero(const int8_t* w, int64_t n, int64_t k, int64_t ldw, int64_t o, int64_t g) {
  for (int64_t j = o * kBlockOutputs; j < std::min(n, (o + 1) * kBlockOutputs); ++j)
    for (int64_t kk = g * kBlockK; kk < std::min(k, (g + 1) * kBlockK); ++kk)
      if (w[j * ldw + kk] != 0) return false;
  return true;
}

}  // namespace

double PackedS8BlockSparse::density() const {
  return n_groups * k_groups == 0 ? 0.0 : static_cast<double>(blocks()) / static_cast<double>(n_groups * k_groups);
}

double block_sparsity(const int8_t* w, int64_t n, int64_t k, int64_t ldw) {
  const int64_t groups = (n + kBlockOutputs - 1) / kBlockOutputs, kg = (k + kBlockK - 1) / kBlockK;
  if (groups * kg == 0) return 0.0;
  int64_t zero = 0;
  for (int64_t o = 0; o < groups; ++o)
    for (int64_t g = 0; g < kg; ++g) zero += block_is_zero(w, n, k, ldw, o, g);
  return static_cast<double>(zero) / static_cast<double>(groups * kg);
}

PackedS8BlockSparse pack_s8_block_sparse(const int8_t* w, int64_t n, int64_t k, int64_t ldw) {
  PackedS8BlockSparse p;
  p.n = n;
  p.k = k;
  p.n_groups = (n + kBlockOutputs - 1) / kBlockOutputs;
  p.k_groups = (k + kBlockK - 1) / kBlockK;
  p.group_start.assign(static_cast<size_t>(p.n_groups + 1), 0);
  p.column_sums.assign(static_cast<size_t>(p.n_groups * kBlockOutputs), 0);
  for (int64_t o = 0; o < p.n_groups; ++o) {
    for (int64_t g = 0; g < p.k_groups; ++g) {
      if (block_is_zero(w, n, k, ldw, o, g)) continue;
      p.block_k.push_back(static_cast<int32_t>(g));
      for (int64_t i = 0; i < kBlockOutputs; ++i)
        for (int64_t t = 0; t < kBlockK; ++t) {
          const int64_t j = o * kBlockOutputs + i, kk = g * kBlockK + t;
          const int8_t v = j < n && kk < k ? w[j * ldw + kk] : int8_t{0};
          p.values.push_back(v);
          p.column_sums[static_cast<size_t>(o * kBlockOutputs + i)] += v;
        }
    }
    p.group_start[static_cast<size_t>(o + 1)] = static_cast<int32_t>(p.block_k.size());
  }
  return p;
}

void unpack_s8_block_sparse(const PackedS8BlockSparse& p, int8_t* w) {
  std::memset(w, 0, static_cast<size_t>(p.n * p.k));
  for (int64_t o = 0; o < p.n_groups; ++o)
    for (int64_t b = p.group_start[o]; b < p.group_start[o + 1]; ++b)
      for (int64_t i = 0; i < kBlockOutputs; ++i)
        for (int64_t t = 0; t < kBlockK; ++t) {
          const int64_t j = o * kBlockOutputs + i, kk = p.block_k[b] * kBlockK + t;
          if (j < p.n && kk < p.k) w[j * p.k + kk] = p.values[static_cast<size_t>(b * 16 + i * kBlockK + t)];
        }
}

std::string validate_block_sparse(const PackedS8BlockSparse& p) {
  if (p.n < 0 || p.k < 0 || p.n_groups != (p.n + kBlockOutputs - 1) / kBlockOutputs || p.k_groups != (p.k + kBlockK - 1) / kBlockK)
    return "shape and group counts disagree";
  if (static_cast<int64_t>(p.group_start.size()) != p.n_groups + 1 || p.group_start[0] != 0)
    return "group_start must hold n_groups + 1 offsets from 0";
  if (p.values.size() != p.block_k.size() * 16) return "values must hold 16 bytes per block";
  if (static_cast<int64_t>(p.column_sums.size()) != p.n_groups * kBlockOutputs) return "column_sums size";
  for (int64_t o = 0; o < p.n_groups; ++o) {
    const int32_t b0 = p.group_start[o], b1 = p.group_start[o + 1];
    if (b1 < b0 || b1 > p.blocks()) return "group_start not ascending or past the blocks at group " + std::to_string(o);
    for (int32_t b = b0; b < b1; ++b) {
      if (p.block_k[b] < 0 || p.block_k[b] >= p.k_groups) return "block " + std::to_string(b) + ": k group out of range";
      if (b > b0 && p.block_k[b] <= p.block_k[b - 1]) return "block " + std::to_string(b) + ": k groups not ascending";
    }
  }
  if (p.group_start[p.n_groups] != p.blocks()) return "group_start does not end at the block count";
  return "";
}

int64_t block_sparse_rows_padded(int64_t m) { return m <= 4 ? m : (m + kBlockRows - 1) / kBlockRows * kBlockRows; }

void pack_block_sparse_activations(const uint8_t* a, int64_t m, int64_t lda, int64_t k, std::vector<uint8_t>& at, Isa isa) {
  const int64_t m_pad = block_sparse_rows_padded(m), groups = (k + kBlockK - 1) / kBlockK, full = k / kBlockK;
  at.resize(static_cast<size_t>(groups * m_pad * kBlockK));
  if (isa == Isa::kAvx512Vnni && m > 4) return pack_block_sparse_activations_avx512(a, m, lda, k, at.data());
  uint32_t* out = reinterpret_cast<uint32_t*>(at.data());
  // Rows in blocks of 16 so that the 16 source rows stay in L1 while their words are spread.
  for (int64_t r0 = 0; r0 < m_pad; r0 += kBlockRows) {
    const int64_t r1 = std::min(m_pad, r0 + kBlockRows);
    for (int64_t g = 0; g < groups; ++g)
      for (int64_t r = r0; r < r1; ++r) {
        uint32_t word = 0;
        if (r < m) std::memcpy(&word, a + r * lda + g * kBlockK, static_cast<size_t>(g < full ? kBlockK : k - g * kBlockK));
        out[g * m_pad + r] = word;
      }
  }
}

void gemm_u8s8s32_block_sparse(const uint8_t* a, int64_t m, int64_t lda, const PackedS8BlockSparse& w, int32_t* c,
                               int64_t ldc, Isa isa) {
  if (m <= 0 || w.n <= 0) return;
  thread_local std::vector<uint8_t> at;
  pack_block_sparse_activations(a, m, lda, w.k, at, isa);
  // Each thread takes a run of output groups holding an equal share of the blocks.
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(num_threads(), w.n_groups));
  std::vector<int64_t> split(static_cast<size_t>(parts + 1), w.n_groups);
  split[0] = 0;
  for (int64_t p = 1, o = 0; p < parts; ++p) {
    const int64_t target = w.blocks() * p / parts;
    while (o < w.n_groups && w.group_start[o] < target) ++o;
    split[p] = std::max(o, split[p - 1]);
  }
  const uint8_t* panels = at.data();
  parallel_for(parts, [&](int64_t p0, int64_t p1) {
    const int64_t o0 = split[p0], o1 = split[p1];
    if (o0 >= o1) return;
    switch (isa) {
      case Isa::kAvx512Vnni: return gemm_u8s8s32_block_sparse_avx512vnni(panels, m, w, o0, o1, c, ldc);
      case Isa::kAvx2: return gemm_u8s8s32_block_sparse_avx2(panels, m, w, o0, o1, c, ldc);
      case Isa::kRef: return gemm_u8s8s32_block_sparse_ref(panels, m, w, o0, o1, c, ldc);
    }
  });
}

}  // namespace sqz::kernels
