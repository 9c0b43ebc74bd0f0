#include "runtime/linear_op.h"

#include <cmath>

#include "io/compressed_tensors.h"
#include "core/error.h"
#include "runtime/runtime_dir.h"

namespace sqz::runtime {

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::kFp32: return "fp32";
    case Precision::kInt8: return "int8";
    case Precision::kInt8Sparse24: return "int8-2:4";
    case Precision::kBf16: return "bf16";
    case Precision::kInt8Blocks: return "int8-block";
  }
  return "?";
}

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::kFp32;
  if (name == "int8") return Precision::kInt8;
  if (name == "int8-2:4") return Precision::kInt8Sparse24;
  if (name == "bf16") return Precision::kBf16;
  if (name == "int8-block") return Precision::kInt8Blocks;
  fail_invalid("precision '", name, "' is not one of: fp32, bf16, int8, int8-2:4, int8-block");
}

Precision precision_field(const io::JsonFields& fields) {
  const auto name = fields.get_string("precision");
  for (auto p : {Precision::kFp32, Precision::kBf16, Precision::kInt8, Precision::kInt8Sparse24, Precision::kInt8Blocks})
    if (name == precision_name(p)) return p;
  fields.fail_field("precision", "one of fp32, bf16, int8, int8-2:4, int8-block");
}

namespace {

kernels::Int8Packing int8_packing(Precision p) {
  if (p == Precision::kInt8Sparse24) return kernels::Int8Packing::kSparse24;
  if (p == Precision::kInt8Blocks) return kernels::Int8Packing::kBlocks4x4;
  return kernels::Int8Packing::kDense;
}

std::string default_precision_name(const nlohmann::json& config) {
  if (!io::is_quantized_export(config)) return config.contains("torch_dtype") && config["torch_dtype"] == "bfloat16" ? "bf16" : "fp32";
  const auto& q = *io::compressed_tensors_config(config);
  if (!q.contains("sparsity_config") || !q["sparsity_config"].is_object()) return "int8";
  const auto& sc = q["sparsity_config"];
  const std::string structure = sc.value("sparsity_structure", "");
  if (structure == "2:4") return "int8-2:4";
  // Unstructured (what sqz declares for block-pruned weights) and mostly zero: the kernel that
  // skips zero 4 x 4 blocks.
  const double sparsity = sc.contains("global_sparsity") && sc["global_sparsity"].is_number() ? sc["global_sparsity"].get<double>() : 0.0;
  return structure == "unstructured" && sparsity >= 0.5 ? "int8-block" : "int8";
}

// The block-sparse packing as it runs: blocks' values [blocks, 16] (4 outputs x 4 inputs each),
// their k groups [blocks] and each output group's first block [groups + 1].
void save_blocks(RuntimeDirWriter& out, const std::string& name, const kernels::PackedS8BlockSparse& p) {
  const int64_t blocks = p.blocks();
  out.add(name + ".block_values", torch::from_blob(const_cast<int8_t*>(p.values.data()), {blocks, 16}, torch::kInt8).clone());
  out.add(name + ".block_k", torch::from_blob(const_cast<int32_t*>(p.block_k.data()), {blocks}, torch::kInt32).clone());
  out.add(name + ".group_start",
          torch::from_blob(const_cast<int32_t*>(p.group_start.data()), {p.n_groups + 1}, torch::kInt32).clone());
}

// What save_blocks wrote, validated, as dense [out, in] codes (packed again by the caller).
torch::Tensor load_blocks(const RuntimeDirReader& in, const io::JsonFields& entry, const std::string& name, int64_t out,
                          int64_t inputs) {
  const int64_t blocks = entry.get_int_in("blocks", 0, INT32_MAX);
  kernels::PackedS8BlockSparse p;
  p.n = out;
  p.k = inputs;
  p.n_groups = (out + kernels::kBlockOutputs - 1) / kernels::kBlockOutputs;
  p.k_groups = (inputs + kernels::kBlockK - 1) / kernels::kBlockK;
  if (blocks > p.n_groups * p.k_groups) entry.fail_field("blocks", "at most " + std::to_string(p.n_groups * p.k_groups) + " blocks");
  auto values = in.tensor(name + ".block_values", torch::kInt8, {blocks, 16}).contiguous();
  auto ks = in.tensor(name + ".block_k", torch::kInt32, {blocks}).contiguous();
  auto starts = in.tensor(name + ".group_start", torch::kInt32, {p.n_groups + 1}).contiguous();
  p.values.assign(values.data_ptr<int8_t>(), values.data_ptr<int8_t>() + blocks * 16);
  p.block_k.assign(ks.data_ptr<int32_t>(), ks.data_ptr<int32_t>() + blocks);
  p.group_start.assign(starts.data_ptr<int32_t>(), starts.data_ptr<int32_t>() + p.n_groups + 1);
  p.column_sums.assign(static_cast<size_t>(p.n_groups * kernels::kBlockOutputs), 0);
  if (auto why = kernels::validate_block_sparse(p); !why.empty()) fail_data(in.weights_path(), ": ", name, " blocks: ", why);
  auto codes = torch::empty({out, inputs}, torch::kInt8);
  kernels::unpack_s8_block_sparse(p, codes.data_ptr<int8_t>());
  return codes;
}

}  // namespace

Precision resolve_precision(const std::string& requested, const nlohmann::json& config) {
  return parse_precision(requested.empty() ? default_precision_name(config) : requested);
}

LinearOp::LinearOp(const float* w, int64_t out, int64_t in, const float* bias, Precision precision, const std::string& name)
    : out_(out), in_(in), precision_(precision) {
  if (is_int8(precision)) {
    try {
      int8_ = kernels::make_int8_linear(w, out, in, bias, int8_packing(precision));
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

void LinearOp::forward_requantize(const float* x, int64_t m, int64_t ldx, kernels::QuantizedRows& out,
                                  kernels::Activation activation) const {
  if (!is_int8(precision_)) fail_invalid("runtime: forward_requantize on a ", precision_name(precision_), " Linear");
  kernels::int8_linear_forward_requantize(int8_, x, m, ldx, out, kernels::active_isa(), activation);
}

void LinearOp::forward_quantized(const kernels::QuantizedRows& in, float* y, int64_t ldy, const float* residual, int64_t ldr) const {
  if (!is_int8(precision_)) fail_invalid("runtime: forward_quantized on a ", precision_name(precision_), " Linear");
  kernels::int8_linear_forward_quantized(int8_, in, y, ldy, kernels::active_isa(), residual, ldr);
}

int64_t LinearOp::weight_bytes() const {
  if (precision_ == Precision::kBf16) return static_cast<int64_t>(2 * bf16_.data.size() + 4 * bias_.size());
  if (is_int8(precision_)) {
    // 2:4: the kept values plus one 2-bit position each, as the export stores them; blocks: the
    // stored blocks with their k groups and the group offsets.
    int64_t w = static_cast<int64_t>(int8_.weights.data.size());
    if (int8_.sparse) w = static_cast<int64_t>(int8_.sparse->values.size() * 5 / 4);
    if (int8_.blocks) w = static_cast<int64_t>(int8_.blocks->values.size() + 4 * (int8_.blocks->block_k.size() + int8_.blocks->group_start.size()));
    return w + static_cast<int64_t>(4 * (int8_.w_scale.size() + int8_.bias.size()));
  }
  return static_cast<int64_t>(4 * (f32_.data.size() + bias_.size()));
}

nlohmann::json LinearOp::save(RuntimeDirWriter& out, const std::string& name) const {
  const std::vector<int64_t> shape{out_, in_};
  const auto& bias = is_int8(precision_) ? int8_.bias : bias_;
  if (is_int8(precision_)) {
    if (int8_.static_input) fail_unimplemented(name, ": a static input range cannot be stored in a runtime dir yet");
    if (int8_.blocks) {
      save_blocks(out, name, *int8_.blocks);
    } else {
      auto codes = torch::empty(shape, torch::kInt8);
      kernels::unpack_int8_linear_codes(int8_, codes.data_ptr<int8_t>());
      if (int8_.sparse) {
        if (in_ % 4 != 0) fail_unimplemented(name, ": 2:4 weights with ", in_, " inputs (not a multiple of 4) cannot be stored");
        auto parts = io::compress_24_bitmask(codes);
        out.add(name + ".compressed", parts[0]);
        out.add(name + ".bitmask", parts[1]);
        out.add(name + ".shape", parts[2]);
      } else {
        out.add(name + ".weight", codes);
      }
    }
    out.add_floats(name + ".weight_scale", int8_.w_scale, {out_});
  } else if (precision_ == Precision::kBf16) {
    auto bits = torch::empty(shape, torch::kBFloat16);
    kernels::unpack_bf16_weights(bf16_, reinterpret_cast<uint16_t*>(bits.data_ptr()));
    out.add(name + ".weight", bits);
  } else {
    std::vector<float> w(static_cast<size_t>(out_ * in_));
    kernels::unpack_f32_weights(f32_, w.data());
    out.add_floats(name + ".weight", w, shape);
  }
  if (!bias.empty()) out.add_floats(name + ".bias", bias, {out_});
  nlohmann::json entry = {{"precision", precision_name(precision_)}, {"out", out_}, {"in", in_}, {"bias", !bias.empty()}};
  if (int8_.blocks) entry["blocks"] = int8_.blocks->blocks();
  return entry;
}

LinearOp LinearOp::load(const RuntimeDirReader& in, const io::JsonFields& entry, const std::string& name,
                        std::optional<int64_t> expected_out, int64_t expected_in) {
  const Precision precision = precision_field(entry);
  const int64_t out = entry.get_int_in("out", 0, INT32_MAX), inputs = entry.get_int("in");
  if (expected_out && out != *expected_out) entry.fail_field("out", to_text(*expected_out, ", as the model's structure implies"));
  if (inputs != expected_in) entry.fail_field("in", to_text(expected_in, ", as the model's structure implies"));
  const std::vector<int64_t> shape{out, inputs};
  std::vector<float> bias;
  if (entry.get_bool("bias")) bias = in.floats(name + ".bias", {out});
  const float* b = bias.empty() ? nullptr : bias.data();
  if (!is_int8(precision)) {
    auto w = precision == Precision::kBf16 ? in.tensor(name + ".weight", torch::kBFloat16, shape).to(torch::kFloat32)
                                           : in.tensor(name + ".weight", torch::kFloat32, shape);
    return LinearOp(w.data_ptr<float>(), out, inputs, b, precision, name);
  }
  const bool sparse = precision == Precision::kInt8Sparse24;
  auto scales = in.floats(name + ".weight_scale", {out});
  for (int64_t j = 0; j < out; ++j)
    if (!std::isfinite(scales[j]) || scales[j] < 0)
      fail_data(in.weights_path(), ": tensor '", name, ".weight_scale' row ", j, " is ", scales[j], "; expected a finite scale >= 0");
  torch::Tensor codes;
  if (precision == Precision::kInt8Blocks) {
    codes = load_blocks(in, entry, name, out, inputs);
  } else if (sparse) {
    const std::string where = in.weights_path() + ": " + name;
    codes = io::decompress_24_bitmask(in.tensor(name + ".compressed", torch::kInt8, {out, inputs / 2}),
                                         in.tensor(name + ".bitmask", torch::kUInt8, {out, (inputs + 7) / 8}),
                                         in.tensor(name + ".shape", torch::kInt64, {2, 1}), where);
    if (codes.size(0) != out || codes.size(1) != inputs)
      fail_data(where, ".shape: [", codes.size(0), ", ", codes.size(1), "]; the manifest says [", out, ", ", inputs, "]");
  } else {
    codes = in.tensor(name + ".weight", torch::kInt8, shape);
  }
  LinearOp op;
  op.out_ = out;
  op.in_ = inputs;
  op.precision_ = precision;
  op.int8_ = kernels::make_int8_linear_from_codes(codes.contiguous().data_ptr<int8_t>(), scales.data(), out, inputs, b, int8_packing(precision));
  return op;
}

}  // namespace sqz::runtime
