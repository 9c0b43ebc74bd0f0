// GPTQ (Frantar et al. 2023): one-shot weight quantization that quantizes the input columns in
// order and spreads each column's rounding error over the columns not yet quantized, weighted
// by the inverse Hessian of the layer's reconstruction error, H = 2 X^T X / n from calibration.
#pragma once
#include "compress/quant/qmath.h"
#include "dist/group.h"

namespace sqz::quant {

// Accumulates H for one layer from its calibration inputs.
class HessianAccumulator {
 public:
  void add(const torch::Tensor& x);  // x: [..., in]
  int64_t rows() const { return rows_; }
  torch::Tensor hessian() const;  // 2 X^T X / n, [in, in]
  // Data parallelism: X^T X and n summed over the ranks, on every rank (a rank that saw no rows
  // adds zeros of width `in`).
  void all_reduce(dist::Group& group, int64_t in);

 private:
  torch::Tensor sum_;
  int64_t rows_ = 0;
};

struct GptqResult {
  torch::Tensor weight;  // dequantized values, [out, in]
  QParams qparams;       // shaped for group_view of the weight (channel: [out, 1]; group: [out, in/g, 1])
};

// `weight` is the logical [out, in]; `damp` is the fraction of mean(diag H) added to the diagonal.
// Granularity channel or group; errors name `source`.
GptqResult gptq_quantize(const torch::Tensor& weight, const torch::Tensor& hessian, const QuantSpec& spec, double damp,
                         const std::string& source);

}  // namespace sqz::quant
