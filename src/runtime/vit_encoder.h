// sqz's inference engine for ViT (model_type vit: ViTModel, ViTForImageClassification): the
// patch convolution as one GEMM over the unfolded patches, the CLS token and position table, then
// pre-LN blocks (LayerNorm before attention and before the FFN, residuals around both) on the
// encoder block ops the BERT engine uses, the final LayerNorm, and the classifier on the CLS
// state. The blocks' Linears run at the engine's precision (fp32, bf16, int8, int8-2:4); the
// patch projection, norms and classifier stay fp32. Images must have the config's size.
#pragma once
#include <memory>
#include <vector>

#include "runtime/bert_encoder.h"

namespace sqz::runtime {

class VitEncoder {
 public:
  // Copies (and packs) the weights of a loaded ViT; refuses other families and activations.
  VitEncoder(const models::LoadedModel& loaded, const EngineOptions& options);
  // From a runtime dir (runtime_dir.h) packed with engine "vit-encoder".
  VitEncoder(const RuntimeDirReader& dir, const EngineOptions& options);
  ~VitEncoder();

  nlohmann::json save(RuntimeDirWriter& out) const;

  // pixels: [batch, channels, image_size, image_size] (what the image processor writes).
  // last_hidden_state after the final LayerNorm, [batch, 1 + patches, hidden]; logits when the
  // model has a classifier.
  EncoderOutputs forward(const float* pixels, int64_t batch) const;
  // The same on a libtorch pixel_values tensor, checking its shape.
  EncoderOutputs forward(const torch::Tensor& pixel_values) const;

  int64_t weight_bytes() const;
  int64_t image_size() const { return image_size_; }
  int64_t channels() const { return channels_; }
  const EngineOptions& options() const { return options_; }
  void set_profile(OpProfile* profile) { profile_ = profile; }

 private:
  struct Layer;
  int64_t grid() const { return image_size_ / patch_size_; }
  int64_t tokens() const { return grid() * grid() + 1; }
  EngineOptions options_;
  int64_t hidden_ = 0, image_size_ = 0, patch_size_ = 0, channels_ = 0, num_labels_ = 0;
  float eps_ = 1e-12f;
  std::unique_ptr<LinearOp> patch_;  // [hidden, channels * patch * patch], inputs in (c, y, x) order
  std::vector<float> cls_, position_, final_gamma_, final_beta_;
  std::vector<std::unique_ptr<Layer>> layers_;
  std::unique_ptr<LinearOp> classifier_;
  OpProfile* profile_ = nullptr;
};

}  // namespace sqz::runtime
