// Quantized (and N:M-sparse) models in the compressed-tensors convention that vLLM, llm-compressor
// and transformers read: config.json gets `quantization_config` (config groups with weight and
// input-activation schemes, explicit module-name targets) and, for N:M sparsity, a
// `sparsity_config`; each quantized Linear stores `weight` as int8 codes (or `weight_packed` +
// `weight_shape` for 2-4 bits, eight 4-bit fields per int32), `weight_scale`,
// `weight_zero_point`, and for static activations `input_scale` / `input_zero_point`.
// Conventions (docs/quantization.md): weights in the Linear layout [out, in] for every family
// (GPT-2's Conv1D included); asymmetric codes are stored signed (q - 2^(b-1)).
#pragma once
#include "compress/quant/quantizer.h"
#include "io/compressed_tensors.h"
#include "models/registry.h"

namespace sqz::quant {

struct SparsityExport {
  int64_t n = 0, m = 0;                // N:M structure to verify and declare (0 = none)
  std::vector<std::string> targets;    // HF module names whose weights must satisfy it
  // n = 0 with targets: block-pruned weights (4 x 4 blocks), declared as compressed-tensors'
  // "unstructured" sparsity (its structures are N:M or unstructured) with their global sparsity;
  // a runtime reading the export picks its int8-block kernel from it.
  bool declared() const { return n > 0 || !targets.empty(); }
  std::string structure() const { return n > 0 ? std::to_string(n) + ":" + std::to_string(m) : "unstructured"; }
  // "dense": weights stored whole, zeros included; "sparse-24-bitmask" (2:4 only): per target
  // `<module>.compressed` [out, in/2] (the two kept values of every group of four, in order),
  // `<module>.bitmask` uint8 [out, ceil(in/8)] (bit j%8 of byte j/8 = position j kept) and
  // `<module>.shape` [[out], [in]], in place of `<module>.weight`.
  std::string format = "dense";
};

// Writes config.json and model.safetensors of `model` into `dir`, replacing the weights of the
// quantized layers by their codes. Refuses (naming the tensor) a weight that violates the N:M
// structure, or a quantized layer whose weight is tied to another tensor.
void export_compressed_tensors(models::TransformerModel& model, const io::json& config, const std::vector<QuantizedLayer>& layers,
                               const SparsityExport& sparsity, const fs::path& dir);

// Loads a model dir sqz can read; a compressed-tensors export is dequantized (exactly the values
// it was evaluated with) and gets its input quantization back, so `sqz eval` measures what was
// exported.
models::LoadedModel load_any_model(const fs::path& dir, const models::LoadOptions& options = {});

}  // namespace sqz::quant
