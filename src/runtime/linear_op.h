// One Linear layer as the runtime holds it: fp32 weights packed for gemm_f32, bf16 weights for
// gemm_bf16, or int8 codes packed for the VNNI layout with per-channel scales. Built once at load; forward is raw
// pointers only.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "kernels/gemm_bf16/gemm_bf16.h"
#include "kernels/gemm_f32/gemm_f32.h"
#include "io/json_file.h"
#include "kernels/gemm_u8s8/linear_int8.h"

namespace sqz::runtime {

class RuntimeDirWriter;
class RuntimeDirReader;

// int8-2:4: int8 weights that keep 2 of every 4 along the input, on the 2:4 sparse kernel.
// int8-block: int8 weights stored as their non-zero blocks of 4 outputs x 4 inputs, on the
// block-sparse kernel (which skips the zero blocks: pays from about half the blocks zero).
// bf16: weights and activations rounded to bf16, products summed in fp32 (AVX-512 BF16).
enum class Precision { kFp32, kInt8, kInt8Sparse24, kBf16, kInt8Blocks };
inline bool is_int8(Precision p) {
  return p == Precision::kInt8 || p == Precision::kInt8Sparse24 || p == Precision::kInt8Blocks;
}
const char* precision_name(Precision p);
Precision parse_precision(const std::string& name);
// A manifest's "precision" field (the engine's or one Linear's); another name is refused naming it.
Precision precision_field(const io::JsonFields& fields);
// `requested` (a --precision value) or, when empty, what the model dir was exported for:
// int8-2:4 for a compressed-tensors export whose sparsity config says 2:4, int8-block for one
// that says unstructured with a global sparsity of at least 0.5, int8 for another
// quantized export, bf16 for a checkpoint saved in bfloat16 (config torch_dtype), else fp32.
Precision resolve_precision(const std::string& requested, const nlohmann::json& config);

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
  // int8 only: the output as u8 rows for the next int8 Linear (the requantizing epilogue), not in
  // fp32; then that Linear's forward_quantized. Bit for bit what forward then forward give.
  void forward_requantize(const float* x, int64_t m, int64_t ldx, kernels::QuantizedRows& out,
                          kernels::Activation activation = kernels::Activation::kNone) const;
  void forward_quantized(const kernels::QuantizedRows& in, float* y, int64_t ldy, const float* residual = nullptr,
                         int64_t ldr = 0) const;
  int64_t out_features() const { return out_; }
  int64_t in_features() const { return in_; }
  Precision precision() const { return precision_; }
  // Bytes the packed weights occupy (what a deployment ships).
  int64_t weight_bytes() const;

  // Stores the weights as they run (runtime_dir.h) under `name` ("<name>.weight", ...) and
  // returns the manifest's entry for them: precision, out, in, bias.
  nlohmann::json save(RuntimeDirWriter& out, const std::string& name) const;
  // What save wrote, checked against `entry` and packed for this CPU. The shape the caller's
  // structure implies ([out, in]; out unset where the Linear decides it, e.g. a classifier's labels)
  // is checked before any weight is read: a block-sparse Linear's dense shape is the manifest's word.
  static LinearOp load(const RuntimeDirReader& in, const io::JsonFields& entry, const std::string& name,
                       std::optional<int64_t> expected_out, int64_t expected_in);

 private:
  int64_t out_ = 0, in_ = 0;
  Precision precision_ = Precision::kFp32;
  kernels::PackedF32Weights f32_;
  kernels::PackedBf16Weights bf16_;
  std::vector<float> bias_;
  kernels::Int8Linear int8_;
};

}  // namespace sqz::runtime
