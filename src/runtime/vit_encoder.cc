#include "runtime/vit_encoder.h"

#include "core/error.h"
#include "kernels/eltwise/eltwise.h"
#include "kernels/parallel.h"
#include "runtime/block.h"
#include "runtime/runtime_dir.h"

namespace sqz::runtime {

struct VitEncoder::Layer {
  BlockOps ops;
  std::vector<float> before_gamma, before_beta, after_gamma, after_beta;
};

VitEncoder::~VitEncoder() = default;

VitEncoder::VitEncoder(const models::LoadedModel& loaded, const EngineOptions& options) : options_(options) {
  auto& model = *loaded.model;
  const auto& info = model.info();
  const std::string source = (loaded.dir / "config.json").string();
  if (info.model_type != "vit") fail_unimplemented(source, ": the ViT engine runs model_type 'vit'; this model is '", info.model_type, "'");
  const std::string act = loaded.config.get_string("hidden_act", "gelu");
  if (act != "gelu") fail_unimplemented(source, ": field 'hidden_act' = '", act, "'; the runtime engine runs 'gelu' (erf)");
  eps_ = static_cast<float>(loaded.config.get_float("layer_norm_eps", 1e-12));
  image_size_ = info.image_size;
  channels_ = info.num_channels;

  std::map<std::string, torch::Tensor> params;
  for (const auto& p : model.named_parameters()) params[p.key()] = p.value();
  auto get = [&](const std::string& name) { return to_vector(model_tensor(params, name)); };
  const auto& patch_w = model_tensor(params, "vit.embeddings.patch_embeddings.projection.weight");  // [hidden, C, p, p]
  hidden_ = patch_w.size(0);
  patch_size_ = patch_w.size(2);
  auto pw = to_vector(patch_w), pb = get("vit.embeddings.patch_embeddings.projection.bias");
  patch_ = std::make_unique<LinearOp>(pw.data(), hidden_, channels_ * patch_size_ * patch_size_, pb.data(), Precision::kFp32);
  cls_ = get("vit.embeddings.cls_token");
  position_ = get("vit.embeddings.position_embeddings");
  final_gamma_ = get("vit.layernorm.weight");
  final_beta_ = get("vit.layernorm.bias");

  const auto structure = model.structure();
  for (size_t i = 0; i < structure.attention.size(); ++i) {
    auto layer = std::make_unique<Layer>();
    const std::string lp = "vit.encoder.layer." + std::to_string(i);
    layer->ops = make_block_ops(structure.attention[i], structure.ffn[i], hidden_, options.precision, lp);
    layer->before_gamma = get(lp + ".layernorm_before.weight");
    layer->before_beta = get(lp + ".layernorm_before.bias");
    layer->after_gamma = get(lp + ".layernorm_after.weight");
    layer->after_beta = get(lp + ".layernorm_after.bias");
    layers_.push_back(std::move(layer));
  }
  if (params.count("classifier.weight")) {
    auto w = get("classifier.weight"), b = get("classifier.bias");
    num_labels_ = static_cast<int64_t>(b.size());
    classifier_ = std::make_unique<LinearOp>(w.data(), num_labels_, hidden_, b.data(), Precision::kFp32);
  }
}

nlohmann::json VitEncoder::save(RuntimeDirWriter& out) const {
  const int64_t h = hidden_;
  out.add_floats("embeddings.cls", cls_, {h});
  out.add_floats("embeddings.position", position_, {tokens(), h});
  out.add_floats("final_norm.weight", final_gamma_, {h});
  out.add_floats("final_norm.bias", final_beta_, {h});
  nlohmann::json layers = nlohmann::json::array();
  for (size_t i = 0; i < layers_.size(); ++i) {
    const auto& l = *layers_[i];
    const std::string p = "layers." + std::to_string(i);
    layers.push_back(save_block_ops(l.ops, out, p, h));
    out.add_floats(p + ".norm_before.weight", l.before_gamma, {h});
    out.add_floats(p + ".norm_before.bias", l.before_beta, {h});
    out.add_floats(p + ".norm_after.weight", l.after_gamma, {h});
    out.add_floats(p + ".norm_after.bias", l.after_beta, {h});
  }
  return {{"engine", "vit-encoder"},
          {"precision", precision_name(options_.precision)},
          {"int8_attention", options_.int8_attention},
          {"hidden", h},
          {"image_size", image_size_},
          {"patch_size", patch_size_},
          {"channels", channels_},
          {"layer_norm_eps", eps_},
          {"patch", patch_->save(out, "embeddings.patch")},
          {"layers", layers},
          {"classifier", classifier_ ? classifier_->save(out, "classifier") : nlohmann::json()}};
}

VitEncoder::VitEncoder(const RuntimeDirReader& dir, const EngineOptions& options) : options_(options) {
  const auto& m = dir.manifest();
  if (m.get_string("engine") != "vit-encoder") m.fail_field("engine", "'vit-encoder' (this dir holds another engine)");
  options_.precision = precision_field(m);
  options_.int8_attention = options.int8_attention || m.get_bool("int8_attention", false);
  hidden_ = m.get_positive_int("hidden");
  image_size_ = m.get_positive_int("image_size");
  patch_size_ = m.get_positive_int("patch_size");
  channels_ = m.get_positive_int("channels");
  if (image_size_ % patch_size_ != 0) m.fail_field("image_size", "a multiple of patch_size");
  eps_ = static_cast<float>(m.get_float("layer_norm_eps"));
  const int64_t h = hidden_;
  patch_ = std::make_unique<LinearOp>(
      LinearOp::load(dir, dir.object(m.value(), "patch", "patch"), "embeddings.patch", h, channels_ * patch_size_ * patch_size_));
  cls_ = dir.floats("embeddings.cls", {h});
  position_ = dir.floats("embeddings.position", {tokens(), h});
  final_gamma_ = dir.floats("final_norm.weight", {h});
  final_beta_ = dir.floats("final_norm.bias", {h});
  const auto& layers = m.value().contains("layers") ? m.value()["layers"] : nlohmann::json();
  if (!layers.is_array()) m.fail_field("layers", "an array of blocks");
  for (size_t i = 0; i < layers.size(); ++i) {
    auto layer = std::make_unique<Layer>();
    const std::string p = "layers." + std::to_string(i), where = "layers[" + std::to_string(i) + "]";
    layer->ops = load_block_ops(dir, dir.object(layers, i, where), where, p, h);
    layer->before_gamma = dir.floats(p + ".norm_before.weight", {h});
    layer->before_beta = dir.floats(p + ".norm_before.bias", {h});
    layer->after_gamma = dir.floats(p + ".norm_after.weight", {h});
    layer->after_beta = dir.floats(p + ".norm_after.bias", {h});
    layers_.push_back(std::move(layer));
  }
  if (m.has("classifier")) {
    classifier_ = std::make_unique<LinearOp>(
        LinearOp::load(dir, dir.object(m.value(), "classifier", "classifier"), "classifier", std::nullopt, h));
    num_labels_ = classifier_->out_features();
  }
}

int64_t VitEncoder::weight_bytes() const {
  int64_t bytes = patch_->weight_bytes() + 4 * static_cast<int64_t>(cls_.size() + position_.size());
  for (const auto& l : layers_)
    for (const LinearOp* op : {&l->ops.qkv, &l->ops.attn_out, &l->ops.ffn_in, &l->ops.ffn_out}) bytes += op->weight_bytes();
  return bytes;
}

EncoderOutputs VitEncoder::forward(const torch::Tensor& pixel_values) const {
  if (pixel_values.dim() != 4 || pixel_values.size(1) != channels_ || pixel_values.size(2) != image_size_ ||
      pixel_values.size(3) != image_size_)
    fail_invalid("runtime: pixel_values has shape ", pixel_values.sizes(), "; the ViT engine expects [batch, ", channels_, ", ",
                 image_size_, ", ", image_size_, "] (positions are not interpolated)");
  auto px = pixel_values.to(torch::kFloat32).contiguous();
  return forward(px.data_ptr<float>(), px.size(0));
}

EncoderOutputs VitEncoder::forward(const float* pixels, int64_t batch) const {
  kernels::set_num_threads(options_.threads);
  const int64_t h = hidden_, p = patch_size_, g = grid(), seq = tokens(), m = batch * seq, k = channels_ * p * p;
  EncoderOutputs out;
  out.batch = batch;
  out.seq = seq;
  out.hidden = h;
  std::vector<float>& x = out.last_hidden_state;
  x.resize(static_cast<size_t>(m * h));
  {
    ScopedOpTimer timer(profile_, "patch embedding + CLS + positions");
    // Each patch's pixels as one row in the convolution weight's (channel, y, x) order; the
    // projection writes row 1 + patch of its image, after the CLS row.
    std::vector<float> rows(static_cast<size_t>(batch * g * g * k));
    kernels::parallel_for(batch * g * g, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t b = r / (g * g), py = (r / g) % g, pxi = r % g;
        float* dst = &rows[r * k];
        for (int64_t c = 0; c < channels_; ++c)
          for (int64_t y = 0; y < p; ++y) {
            const float* src = pixels + ((b * channels_ + c) * image_size_ + py * p + y) * image_size_ + pxi * p;
            std::copy(src, src + p, dst + (c * p + y) * p);
          }
      }
    });
    for (int64_t b = 0; b < batch; ++b) {
      patch_->forward(&rows[b * g * g * k], g * g, k, &x[(b * seq + 1) * h], h);
      std::copy(cls_.begin(), cls_.end(), &x[b * seq * h]);
      for (int64_t i = 0; i < seq * h; ++i) x[b * seq * h + i] += position_[i];
    }
  }
  // Pre-LN: the residual stream x stays un-normalized; each half reads its LayerNorm's output.
  thread_local std::vector<float> normed_scratch, next_scratch;  // see encoder_self_attention
  std::vector<float>& normed = normed_scratch;
  std::vector<float>& next = next_scratch;
  normed.resize(x.size());
  next.resize(x.size());
  for (const auto& layer : layers_) {
    {
      ScopedOpTimer t(profile_, "LayerNorm");
      kernels::layer_norm_rows(x.data(), m, h, h, layer->before_gamma.data(), layer->before_beta.data(), eps_, normed.data(), h);
    }
    encoder_self_attention(layer->ops, normed.data(), batch, seq, h, nullptr, options_.int8_attention, x.data(), next.data(), profile_);
    {
      ScopedOpTimer t(profile_, "LayerNorm");
      kernels::layer_norm_rows(next.data(), m, h, h, layer->after_gamma.data(), layer->after_beta.data(), eps_, normed.data(), h);
    }
    encoder_ffn(layer->ops, normed.data(), m, h, kernels::Activation::kGelu, next.data(), x.data(), profile_);
  }
  ScopedOpTimer head_timer(profile_, "final LayerNorm + classifier");
  kernels::layer_norm_rows(x.data(), m, h, h, final_gamma_.data(), final_beta_.data(), eps_, x.data(), h);
  if (classifier_) {
    out.num_labels = num_labels_;
    out.logits.resize(static_cast<size_t>(batch * num_labels_));
    classifier_->forward(x.data(), batch, seq * h, out.logits.data(), num_labels_);  // row stride seq * h: the CLS rows
  }
  return out;
}

}  // namespace sqz::runtime
