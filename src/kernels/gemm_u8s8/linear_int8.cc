#include "kernels/gemm_u8s8/linear_int8.h"

#include <stdexcept>
#include <string>

#include "kernels/parallel.h"

namespace sqz::kernels {

Int8Linear make_int8_linear_from_codes(const int8_t* q, const float* scales, int64_t n, int64_t k, const float* bias,
                                       Int8Packing packing) {
  Int8Linear layer;
  if (packing == Int8Packing::kDense) {
    layer.weights = pack_s8_weights(q, n, k, k);
  } else {
    // The sparse packings keep the dense one's n, k and column sums only.
    if (packing == Int8Packing::kSparse24) layer.sparse = pack_s8_sparse24(q, n, k, k);
    else layer.blocks = pack_s8_block_sparse(q, n, k, k);
    layer.weights.n = n;
    layer.weights.k = k;
    layer.weights.column_sums = layer.sparse ? layer.sparse->column_sums : layer.blocks->column_sums;
  }
  layer.w_scale.assign(scales, scales + n);
  if (bias) layer.bias.assign(bias, bias + n);
  return layer;
}

void unpack_int8_linear_codes(const Int8Linear& layer, int8_t* codes) {
  if (layer.blocks) return unpack_s8_block_sparse(*layer.blocks, codes);
  if (layer.sparse) return unpack_s8_sparse24(*layer.sparse, codes);
  unpack_s8_weights(layer.weights, codes);
}

Int8Linear make_int8_linear(const float* w, int64_t n, int64_t k, const float* bias, Int8Packing packing) {
  std::vector<int8_t> q(static_cast<size_t>(n * k));
  std::vector<float> scales(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) {
    float absmax = 0;
    for (int64_t kk = 0; kk < k; ++kk) absmax = std::max(absmax, std::fabs(w[j * k + kk]));
    scales[j] = symmetric_s8_scale(absmax);
    for (int64_t kk = 0; kk < k; ++kk) q[j * k + kk] = quantize_s8(w[j * k + kk], scales[j]);
  }
  return make_int8_linear_from_codes(q.data(), scales.data(), n, k, bias, packing);
}

namespace {

// Scratch reused across calls (a forward pass makes several calls per layer); per calling thread.
struct Int8Scratch {
  QuantizedRows input;
  std::vector<int32_t> acc;
};
Int8Scratch& scratch() {
  thread_local Int8Scratch s;
  return s;
}

void quantize_input(const Int8Linear& layer, const float* x, int64_t m, int64_t ldx, QuantizedRows& in, Isa isa) {
  const int64_t k = layer.weights.k;
  in.m = m;
  in.k = k;
  in.codes.resize(static_cast<size_t>(m * k));
  in.params.resize(static_cast<size_t>(m));
  uint8_t* qd = in.codes.data();
  AffineParams* pd = in.params.data();
  const AffineParams* fixed = layer.static_input ? &*layer.static_input : nullptr;
  parallel_for(m, [&](int64_t r0, int64_t r1) { quantize_rows_u8(x + r0 * ldx, r1 - r0, k, ldx, qd + r0 * k, pd + r0, fixed, isa); });
}

// acc [m, n] = codes W^T on the kernel of the layer's packing.
const int32_t* int8_gemm(const Int8Linear& layer, const QuantizedRows& in, std::vector<int32_t>& acc, Isa isa) {
  const auto& w = layer.weights;
  if (in.k != w.k) throw std::invalid_argument("int8 Linear: input rows of " + std::to_string(in.k) + ", weights of " + std::to_string(w.k));
  acc.resize(static_cast<size_t>(in.m * w.n));
  if (layer.blocks) gemm_u8s8s32_block_sparse(in.codes.data(), in.m, w.k, *layer.blocks, acc.data(), w.n, isa);
  else if (layer.sparse) gemm_u8s8s32_sparse24(in.codes.data(), in.m, w.k, *layer.sparse, acc.data(), w.n, isa);
  else gemm_u8s8s32(in.codes.data(), in.m, w.k, w, acc.data(), w.n, isa);
  return acc.data();
}

DequantizeArgs dequantize_args(const Int8Linear& layer, const int32_t* acc, const QuantizedRows& in, const float* residual,
                               int64_t ldr, Activation activation) {
  return {acc, in.params.data(), layer.w_scale.data(), layer.weights.column_sums.data(),
          layer.bias.empty() ? nullptr : layer.bias.data(), residual, ldr, activation};
}

void dequantize_output(const DequantizeArgs& args, int64_t m, int64_t n, float* y, int64_t ldy, Isa isa) {
  parallel_for(m, [&](int64_t r0, int64_t r1) {
    DequantizeArgs rows = args;
    rows.acc += r0 * n;
    rows.a += r0;
    if (rows.residual) rows.residual += r0 * args.ldr;
    dequantize_rows(rows, r1 - r0, n, y + r0 * ldy, ldy, isa);
  });
}

}  // namespace

void int8_linear_forward(const Int8Linear& layer, const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy, Isa isa,
                         const float* residual, int64_t ldr, Activation activation) {
  auto& s = scratch();
  quantize_input(layer, x, m, ldx, s.input, isa);
  const int32_t* acc = int8_gemm(layer, s.input, s.acc, isa);
  dequantize_output(dequantize_args(layer, acc, s.input, residual, ldr, activation), m, layer.weights.n, y, ldy, isa);
}

void int8_linear_forward_quantized(const Int8Linear& layer, const QuantizedRows& in, float* y, int64_t ldy, Isa isa,
                                   const float* residual, int64_t ldr, Activation activation) {
  auto& s = scratch();
  const int32_t* acc = int8_gemm(layer, in, s.acc, isa);
  dequantize_output(dequantize_args(layer, acc, in, residual, ldr, activation), in.m, layer.weights.n, y, ldy, isa);
}

void int8_linear_forward_requantize(const Int8Linear& layer, const float* x, int64_t m, int64_t ldx, QuantizedRows& out,
                                    Isa isa, Activation activation) {
  auto& s = scratch();
  quantize_input(layer, x, m, ldx, s.input, isa);
  const int32_t* acc = int8_gemm(layer, s.input, s.acc, isa);
  const int64_t n = layer.weights.n;
  out.m = m;
  out.k = n;
  out.codes.resize(static_cast<size_t>(m * n));
  out.params.resize(static_cast<size_t>(m));
  const DequantizeArgs args = dequantize_args(layer, acc, s.input, nullptr, 0, activation);
  uint8_t* codes = out.codes.data();
  AffineParams* params = out.params.data();
  parallel_for(m, [&](int64_t r0, int64_t r1) {
    thread_local std::vector<float> row;  // one output row, dequantized and activated, in L1
    row.resize(static_cast<size_t>(n));
    for (int64_t i = r0; i < r1; ++i) {
      DequantizeArgs one = args;
      one.acc += i * n;
      one.a += i;
      dequantize_rows(one, 1, n, row.data(), n, isa);
      quantize_rows_u8(row.data(), 1, n, n, codes + i * n, params + i, nullptr, isa);
    }
  });
}

}  // namespace sqz::kernels
