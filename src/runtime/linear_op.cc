#include "runtime/linear_op.h"

#include "compress/quant/export.h"
#include "core/error.h"

namespace sqz::runtime {

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::kFp32: return "fp32";
    case Precision::kInt8: return "int8";
    case Precision::kInt8Sparse24: return "int8-2:4";
    case Precision::kBf16: return "bf16";
  }
  return "?";
}

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::kFp32;
  if (name == "int8") return Precision::kInt8;
  if (name == "int8-2:4") return Precision::kInt8Sparse24;
  if (name == "bf16") return Precision::kBf16;
  fail_invalid("precision '", name, "' is not one of: fp32, bf16, int8, int8-2:4");
}

namespace {

std::string default_precision_name(const nlohmann::json& config) {
  if (!quant::is_quantized_export(config)) return config.contains("torch_dtype") && config["torch_dtype"] == "bfloat16" ? "bf16" : "fp32";
  const auto& q = config["quantization_config"];
  return q.contains("sparsity_config") && q["sparsity_config"].value("sparsity_structure", "") == "2:4" ? "int8-2:4" : "int8";
}

}  // namespace

Precision resolve_precision(const std::string& requested, const nlohmann::json& config) {
  return parse_precision(requested.empty() ? default_precision_name(config) : requested);
}

LinearOp::LinearOp(const float* w, int64_t out, int64_t in, const float* bias, Precision precision, const std::string& name)
    : out_(out), in_(in), precision_(precision) {
  if (is_int8(precision)) {
    try {
      int8_ = kernels::make_int8_linear(w, out, in, bias, precision == Precision::kInt8Sparse24);
    } catch (const std::invalid_argument& e) {
      fail_invalid("runtime precision int8-2:4: weight of ", name.empty() ? "a Linear" : name, " is ", e.what(),
                   " (prune it 2:4 first, e.g. recipes/gpusq_*.yaml, or use --precision int8)");
    }
    return;
  }
  if (precision == Precision::kBf16)
    bf16_ = kernels::pack_bf16_weights(w, out, in, in);
  else
    f32_ = kernels::pack_f32_weights(w, out, in, in, 1);
  if (bias) bias_.assign(bias, bias + out);
}

void LinearOp::forward(const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy, const float* residual,
                       int64_t ldr, kernels::Activation activation) const {
  if (is_int8(precision_))
    return kernels::int8_linear_forward(int8_, x, m, ldx, y, ldy, kernels::active_isa(), residual, ldr, activation);
  kernels::GemmF32Epilogue e;
  e.bias = bias_.empty() ? nullptr : bias_.data();
  e.residual = residual;
  e.ldr = ldr;
  e.activation = activation;
  if (precision_ == Precision::kBf16) return kernels::gemm_bf16(x, m, ldx, bf16_, y, ldy, e);
  kernels::gemm_f32(x, m, ldx, f32_, y, ldy, e);
}

int64_t LinearOp::weight_bytes() const {
  if (precision_ == Precision::kBf16) return static_cast<int64_t>(2 * bf16_.data.size() + 4 * bias_.size());
  if (is_int8(precision_)) {
    // 2:4: the kept values plus one 2-bit position each, as the export stores them.
    const int64_t w = int8_.sparse ? static_cast<int64_t>(int8_.sparse->values.size() * 5 / 4)
                                   : static_cast<int64_t>(int8_.weights.data.size());
    return w + static_cast<int64_t>(4 * (int8_.w_scale.size() + int8_.bias.size()));
  }
  return static_cast<int64_t>(4 * (f32_.data.size() + bias_.size()));
}

}  // namespace sqz::runtime
