#include "runtime/bert_encoder.h"

#include <cmath>

#include "core/error.h"
#include "runtime/block.h"
#include "kernels/eltwise/eltwise.h"
#include "kernels/parallel.h"
#include "runtime/runtime_dir.h"

namespace sqz::runtime {

struct BertEncoder::Layer {
  BlockOps ops;
  std::vector<float> attn_gamma, attn_beta, ffn_gamma, ffn_beta;
};

BertEncoder::~BertEncoder() = default;

BertEncoder::BertEncoder(const models::LoadedModel& loaded, const EngineOptions& options) : options_(options) {
  auto& model = *loaded.model;
  const auto& info = model.info();
  const std::string source = (loaded.dir / "config.json").string();
  if (info.model_type != "bert")
    fail_unimplemented(source, ": the runtime engine runs model_type 'bert' (encoders); this model is '", info.model_type,
                       "' — use the libtorch path (without --engine runtime)");
  if (info.head_class != "BertModel" && info.head_class != "BertForSequenceClassification")
    fail_unimplemented(source, ": the runtime engine runs BertModel and BertForSequenceClassification; this model is ",
                       info.head_class);
  const std::string act = loaded.config.get_string("hidden_act", "gelu");
  if (act != "gelu") fail_unimplemented(source, ": field 'hidden_act' = '", act, "'; the runtime engine runs 'gelu' (erf)");
  eps_ = static_cast<float>(loaded.config.get_float("layer_norm_eps", 1e-12));

  std::map<std::string, torch::Tensor> params;
  for (const auto& p : model.named_parameters()) params[p.key()] = p.value();
  const std::string pre = info.base_prefix + ".";
  auto get = [&](const std::string& name) { return to_vector(model_tensor(params, name)); };
  const auto& word = model_tensor(params, pre + "embeddings.word_embeddings.weight");
  vocab_ = word.size(0);
  hidden_ = word.size(1);
  word_ = to_vector(word);
  position_ = get(pre + "embeddings.position_embeddings.weight");
  max_positions_ = static_cast<int64_t>(position_.size()) / hidden_;
  token_type_ = get(pre + "embeddings.token_type_embeddings.weight");
  type_vocab_ = static_cast<int64_t>(token_type_.size()) / hidden_;
  emb_gamma_ = get(pre + "embeddings.LayerNorm.weight");
  emb_beta_ = get(pre + "embeddings.LayerNorm.bias");

  const auto structure = model.structure();
  for (size_t i = 0; i < structure.attention.size(); ++i) {
    auto layer = std::make_unique<Layer>();
    const std::string lp = pre + "encoder.layer." + std::to_string(i) + ".";
    layer->ops = make_block_ops(structure.attention[i], structure.ffn[i], hidden_, options.precision, lp.substr(0, lp.size() - 1));
    layer->attn_gamma = get(lp + "attention.output.LayerNorm.weight");
    layer->attn_beta = get(lp + "attention.output.LayerNorm.bias");
    layer->ffn_gamma = get(lp + "output.LayerNorm.weight");
    layer->ffn_beta = get(lp + "output.LayerNorm.bias");
    layers_.push_back(std::move(layer));
  }
  // The pooler and classifier are a vanishing share of the work: fp32 whatever the precision.
  if (params.count(pre + "pooler.dense.weight")) {
    auto w = get(pre + "pooler.dense.weight"), b = get(pre + "pooler.dense.bias");
    pooler_ = std::make_unique<LinearOp>(w.data(), hidden_, hidden_, b.data(), Precision::kFp32);
  }
  if (info.head_class == "BertForSequenceClassification") {
    auto w = get("classifier.weight"), b = get("classifier.bias");
    num_labels_ = static_cast<int64_t>(b.size());
    classifier_ = std::make_unique<LinearOp>(w.data(), num_labels_, hidden_, b.data(), Precision::kFp32);
  }
}

nlohmann::json BertEncoder::save(RuntimeDirWriter& out) const {
  const int64_t h = hidden_;
  out.add_floats("embeddings.word", word_, {vocab_, h});
  out.add_floats("embeddings.position", position_, {max_positions_, h});
  out.add_floats("embeddings.token_type", token_type_, {type_vocab_, h});
  out.add_floats("embeddings.norm.weight", emb_gamma_, {h});
  out.add_floats("embeddings.norm.bias", emb_beta_, {h});
  nlohmann::json layers = nlohmann::json::array();
  for (size_t i = 0; i < layers_.size(); ++i) {
    const auto& l = *layers_[i];
    const std::string p = "layers." + std::to_string(i);
    layers.push_back(save_block_ops(l.ops, out, p, h));
    out.add_floats(p + ".attn_norm.weight", l.attn_gamma, {h});
    out.add_floats(p + ".attn_norm.bias", l.attn_beta, {h});
    out.add_floats(p + ".ffn_norm.weight", l.ffn_gamma, {h});
    out.add_floats(p + ".ffn_norm.bias", l.ffn_beta, {h});
  }
  return {{"engine", "bert-encoder"},
          {"precision", precision_name(options_.precision)},
          {"int8_attention", options_.int8_attention},
          {"hidden", h},
          {"vocab", vocab_},
          {"max_positions", max_positions_},
          {"type_vocab", type_vocab_},
          {"layer_norm_eps", eps_},
          {"layers", layers},
          {"pooler", pooler_ ? pooler_->save(out, "pooler") : nlohmann::json()},
          {"classifier", classifier_ ? classifier_->save(out, "classifier") : nlohmann::json()}};
}

BertEncoder::BertEncoder(const RuntimeDirReader& dir, const EngineOptions& options) : options_(options) {
  const auto& m = dir.manifest();
  if (m.get_string("engine") != "bert-encoder") m.fail_field("engine", "'bert-encoder' (this dir holds another engine)");
  options_.precision = precision_field(m);
  options_.int8_attention = options.int8_attention || m.get_bool("int8_attention", false);
  hidden_ = m.get_positive_int("hidden");
  vocab_ = m.get_positive_int("vocab");
  max_positions_ = m.get_positive_int("max_positions");
  type_vocab_ = m.get_positive_int("type_vocab");
  eps_ = static_cast<float>(m.get_float("layer_norm_eps"));
  const int64_t h = hidden_;
  word_ = dir.floats("embeddings.word", {vocab_, h});
  position_ = dir.floats("embeddings.position", {max_positions_, h});
  token_type_ = dir.floats("embeddings.token_type", {type_vocab_, h});
  emb_gamma_ = dir.floats("embeddings.norm.weight", {h});
  emb_beta_ = dir.floats("embeddings.norm.bias", {h});
  const auto& layers = m.value().contains("layers") ? m.value()["layers"] : nlohmann::json();
  if (!layers.is_array()) m.fail_field("layers", "an array of blocks");
  for (size_t i = 0; i < layers.size(); ++i) {
    auto layer = std::make_unique<Layer>();
    const std::string p = "layers." + std::to_string(i), where = "layers[" + std::to_string(i) + "]";
    layer->ops = load_block_ops(dir, dir.object(layers, i, where), where, p, h);
    layer->attn_gamma = dir.floats(p + ".attn_norm.weight", {h});
    layer->attn_beta = dir.floats(p + ".attn_norm.bias", {h});
    layer->ffn_gamma = dir.floats(p + ".ffn_norm.weight", {h});
    layer->ffn_beta = dir.floats(p + ".ffn_norm.bias", {h});
    layers_.push_back(std::move(layer));
  }
  if (m.has("pooler")) {
    pooler_ = std::make_unique<LinearOp>(LinearOp::load(dir, dir.object(m.value(), "pooler", "pooler"), "pooler", h, h));
  }
  if (m.has("classifier")) {
    classifier_ = std::make_unique<LinearOp>(
        LinearOp::load(dir, dir.object(m.value(), "classifier", "classifier"), "classifier", std::nullopt, h));
    num_labels_ = classifier_->out_features();
  }
}

torch::Tensor BertEncoder::logits(const models::ModelInputs& in) const {
  if (!classifier_) fail_invalid("runtime: this model has no classification head");
  auto ids = in.input_ids.contiguous();
  auto mask = in.attention_mask.defined() ? in.attention_mask.to(torch::kLong).contiguous() : torch::Tensor();
  auto types = in.token_type_ids.defined() ? in.token_type_ids.contiguous() : torch::Tensor();
  auto r = forward(ids.data_ptr<int64_t>(), mask.defined() ? mask.data_ptr<int64_t>() : nullptr,
                   types.defined() ? types.data_ptr<int64_t>() : nullptr, ids.size(0), ids.size(1));
  return torch::from_blob(r.logits.data(), {r.batch, r.num_labels}, torch::kFloat32).clone();
}

int64_t BertEncoder::weight_bytes() const {
  int64_t bytes = 4 * static_cast<int64_t>(word_.size() + position_.size() + token_type_.size());
  for (const auto& l : layers_)
    for (const LinearOp* op : {&l->ops.qkv, &l->ops.attn_out, &l->ops.ffn_in, &l->ops.ffn_out}) bytes += op->weight_bytes();
  return bytes;
}

EncoderOutputs BertEncoder::forward(const int64_t* ids, const int64_t* mask, const int64_t* types, int64_t batch,
                                    int64_t seq) const {
  if (seq > max_positions_)
    fail_invalid("runtime: sequence length ", seq, " exceeds the model's max_position_embeddings (", max_positions_, ")");
  kernels::set_num_threads(options_.threads);
  const int64_t m = batch * seq, h = hidden_;
  EncoderOutputs out;
  out.batch = batch;
  out.seq = seq;
  out.hidden = h;
  std::vector<float>& x = out.last_hidden_state;
  x.resize(static_cast<size_t>(m * h));
  {
    ScopedOpTimer timer(profile_, "embeddings + LayerNorm");
    for (int64_t t = 0; t < m; ++t) {
      const int64_t id = ids[t], type = types ? types[t] : 0;
      if (id < 0 || id >= vocab_) fail_invalid("runtime: token id ", id, " is outside the vocabulary (", vocab_, ")");
      if (type < 0 || type >= type_vocab_) fail_invalid("runtime: token type ", type, " is outside type_vocab_size (", type_vocab_, ")");
      const float* w = &word_[id * h];
      const float* p = &position_[(t % seq) * h];
      const float* ty = &token_type_[type * h];
      float* row = &x[t * h];
      for (int64_t d = 0; d < h; ++d) row[d] = w[d] + ty[d] + p[d];
    }
    kernels::layer_norm_rows(x.data(), m, h, h, emb_gamma_.data(), emb_beta_.data(), eps_, x.data(), h);
  }

  thread_local std::vector<float> attn_scratch;  // see encoder_self_attention
  std::vector<float>& attn = attn_scratch;
  attn.resize(static_cast<size_t>(m * h));
  for (const auto& layer : layers_) {
    encoder_self_attention(layer->ops, x.data(), batch, seq, h, mask, options_.int8_attention, x.data(), attn.data(), profile_);
    {
      ScopedOpTimer t(profile_, "LayerNorm");
      kernels::layer_norm_rows(attn.data(), m, h, h, layer->attn_gamma.data(), layer->attn_beta.data(), eps_, attn.data(), h);
    }
    encoder_ffn(layer->ops, attn.data(), m, h, kernels::Activation::kGelu, attn.data(), x.data(), profile_);
    ScopedOpTimer t(profile_, "LayerNorm");
    kernels::layer_norm_rows(x.data(), m, h, h, layer->ffn_gamma.data(), layer->ffn_beta.data(), eps_, x.data(), h);
  }
  ScopedOpTimer head_timer(profile_, "pooler + classifier");
  if (classifier_) {
    std::vector<float> first(static_cast<size_t>(batch * h)), pooled(first.size());
    for (int64_t b = 0; b < batch; ++b) std::copy(&x[b * seq * h], &x[b * seq * h] + h, &first[b * h]);
    const float* feature = first.data();
    if (pooler_) {
      pooler_->forward(first.data(), batch, h, pooled.data(), h);
      for (auto& v : pooled) v = std::tanh(v);
      feature = pooled.data();
    }
    out.num_labels = num_labels_;
    out.logits.resize(static_cast<size_t>(batch * num_labels_));
    classifier_->forward(feature, batch, h, out.logits.data(), num_labels_);
  }
  return out;
}

}  // namespace sqz::runtime
