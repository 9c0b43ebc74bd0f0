// One Linear layer as the runtime holds it: fp32 weights packed for gemm_f32, or int8 codes
// packed for the VNNI layout with per-channel scales. Built once at load; forward is raw
// pointers only.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "kernels/gemm_f32/gemm_f32.h"
#include "kernels/gemm_u8s8/linear_int8.h"

namespace sqz::runtime {

// int8-2:4: int8 weights that keep 2 of every 4 along the input, on the 2:4 sparse kernel.
enum class Precision { kFp32, kInt8, kInt8Sparse24 };
const char* precision_name(Precision p);
Precision parse_precision(const std::string& name);
// What a model dir was exported for: "int8-2:4" for a compressed-tensors export whose sparsity
// config says 2:4, "int8" for another quantized export, else "fp32".
std::string default_precision_name(const nlohmann::json& config);  // "fp32" | "int8" | "int8-2:4"; else an error

class LinearOp {
 public:
  LinearOp() = default;
  // w: [out, in] row-major fp32 (int8 quantizes it symmetric per output channel). `name` is
  // what an error says when int8-2:4 meets a weight that is not 2:4.
  LinearOp(const float* w, int64_t out, int64_t in, const float* bias, Precision precision, const std::string& name = "");
  // y [m, out] = act(x [m, in] W^T + b) (+ residual [m, out]); row strides given. The
  // activation runs in the epilogue, on each output row while it is in cache.
  void forward(const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy, const float* residual = nullptr,
               int64_t ldr = 0, kernels::Activation activation = kernels::Activation::kNone) const;
  int64_t out_features() const { return out_; }
  int64_t in_features() const { return in_; }
  Precision precision() const { return precision_; }
  // Bytes the packed weights occupy (what a deployment ships).
  int64_t weight_bytes() const;

 private:
  int64_t out_ = 0, in_ = 0;
  Precision precision_ = Precision::kFp32;
  kernels::PackedF32Weights f32_;
  std::vector<float> bias_;
  kernels::Int8Linear int8_;
};

}  // namespace sqz::runtime
