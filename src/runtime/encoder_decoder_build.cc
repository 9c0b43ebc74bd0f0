// The encoder-decoder engine built from a loaded model: where BART and T5 keep what the engine
// reads, and the settings each family's config chooses.
#include <cmath>

#include "core/error.h"
#include "runtime/encoder_decoder.h"

namespace sqz::runtime {

namespace {

kernels::Activation activation_by_hf_name(const std::string& act, const std::string& source, const std::string& field) {
  if (act == "gelu") return kernels::Activation::kGelu;
  if (act == "relu") return kernels::Activation::kRelu;
  if (act == "gelu_new" || act == "gelu_pytorch_tanh") return kernels::Activation::kGeluTanh;
  if (act == "silu" || act == "swish") return kernels::Activation::kSilu;
  fail_unimplemented(source, ": field '", field, "' = '", act, "'; the runtime runs gelu, gelu_new, relu and silu");
}

struct Params {
  std::map<std::string, torch::Tensor> tensors;
  explicit Params(models::TransformerModel& model) {
    for (const auto& p : model.named_parameters()) tensors[p.key()] = p.value();
  }
  std::vector<float> get(const std::string& name) const { return to_vector(model_tensor(tensors, name)); }
  bool has(const std::string& name) const { return tensors.count(name) > 0; }
};

// The FFN group of `stack`'s layer `index`.
const models::FfnBlock& ffn_of(const models::ModelStructure& s, const std::string& stack, int64_t index, const std::string& source) {
  for (const auto& f : s.ffn)
    if (f.stack == stack && f.index_in_stack() == index) return f;
  fail_invalid(source, ": no FFN for ", stack, " layer ", index);
}

}  // namespace

EncoderDecoder::EncoderDecoder(const models::LoadedModel& loaded, const EngineOptions& options)
    : options_(options), encoder_stack_(std::make_unique<Stack>()), decoder_stack_(std::make_unique<Stack>()) {
  const auto& info = loaded.model->info();
  const std::string source = (loaded.dir / "config.json").string();
  t5_ = info.model_type == "t5" && info.head_class == "T5ForConditionalGeneration";
  if (!t5_ && (info.model_type != "bart" || info.head_class != "BartForConditionalGeneration"))
    fail_unimplemented(source, ": the runtime's encoder-decoder engine runs BartForConditionalGeneration and T5ForConditionalGeneration; ",
                       "this model is ", info.model_type, " ", info.head_class, " — use the libtorch path (without --engine runtime)");
  if (!info.decoder_start_token_id || !info.eos_token_id || !info.pad_token_id)
    fail_invalid(source, ": decoding needs decoder_start_token_id, eos_token_id and pad_token_id");
  decoder_start_ = *info.decoder_start_token_id;
  eos_ = *info.eos_token_id;
  pad_ = *info.pad_token_id;
  decoder_stack_->bidirectional = false;
  if (t5_) build_t5(loaded, source);
  else build_bart(loaded, source);
}

void EncoderDecoder::build_bart(const models::LoadedModel& loaded, const std::string& source) {
  auto& model = *loaded.model;
  const auto& config = loaded.config;
  activation_ = activation_by_hf_name(config.get_string("activation_function", "gelu"), source, "activation_function");
  // As models/bart.cc reads it: SpeedUp pins sqz_embed_scale when it cuts hidden dimensions.
  embed_scale_ = static_cast<float>(config.has("sqz_embed_scale") ? config.get_float("sqz_embed_scale", 1.0)
                                    : config.get_bool("scale_embedding", false) ? std::sqrt(static_cast<double>(model.info().hidden_size))
                                                                                 : 1.0);
  eps_ = 1e-5f;
  const Params p(model);
  shared_ = p.get("model.shared.weight");
  vocab_ = model_tensor(p.tensors, "model.shared.weight").size(0);
  hidden_ = model_tensor(p.tensors, "model.shared.weight").size(1);
  for (auto [stack, name] : {std::pair{encoder_stack_.get(), "encoder"}, {decoder_stack_.get(), "decoder"}}) {
    stack->positions = p.get("model." + std::string(name) + ".embed_positions.weight");
    stack->norm_gamma = p.get("model." + std::string(name) + ".layernorm_embedding.weight");
    stack->norm_beta = p.get("model." + std::string(name) + ".layernorm_embedding.bias");
  }
  max_positions_ = static_cast<int64_t>(decoder_stack_->positions.size()) / hidden_ - 2;
  if (encoder_stack_->positions.size() != decoder_stack_->positions.size())
    fail_invalid(source, ": the encoder's and decoder's position tables differ in size");

  const auto structure = model.structure();
  for (const auto& a : structure.attention) {
    const int64_t i = a.index_in_stack();
    const std::string lp = "model." + std::string(a.stack == "encoder" ? "encoder" : "decoder") + ".layers." + std::to_string(i);
    if (a.stack == "encoder") {
      auto l = std::make_unique<EncoderLayer>();
      l->ops = make_block_ops(a, ffn_of(structure, "encoder", i, source), hidden_, options_.precision, lp);
      l->attn_gamma = p.get(lp + ".self_attn_layer_norm.weight");
      l->attn_beta = p.get(lp + ".self_attn_layer_norm.bias");
      l->ffn_gamma = p.get(lp + ".final_layer_norm.weight");
      l->ffn_beta = p.get(lp + ".final_layer_norm.bias");
      encoder_.push_back(std::move(l));
    } else if (a.stack == "decoder") {
      auto l = std::make_unique<DecoderLayer>();
      l->ops = make_block_ops(a, ffn_of(structure, "decoder", i, source), hidden_, options_.precision, lp);
      l->self_gamma = p.get(lp + ".self_attn_layer_norm.weight");
      l->self_beta = p.get(lp + ".self_attn_layer_norm.bias");
      l->cross_gamma = p.get(lp + ".encoder_attn_layer_norm.weight");
      l->cross_beta = p.get(lp + ".encoder_attn_layer_norm.bias");
      l->ffn_gamma = p.get(lp + ".final_layer_norm.weight");
      l->ffn_beta = p.get(lp + ".final_layer_norm.bias");
      decoder_.push_back(std::move(l));
    } else {  // "cross": the decoder layer added just before it
      if (static_cast<int64_t>(decoder_.size()) != i + 1)
        fail_invalid(source, ": cross-attention of decoder layer ", i, " comes before its self-attention");
      decoder_.back()->cross = make_cross_attention_ops(a, hidden_, options_.precision, lp);
    }
  }
  auto head = p.has("lm_head.weight") ? p.get("lm_head.weight") : shared_;
  auto bias = p.get("final_logits_bias");
  lm_head_ = std::make_unique<LinearOp>(head.data(), vocab_, hidden_, bias.data(), lm_head_precision(options_), "lm_head");
}

void EncoderDecoder::build_t5(const models::LoadedModel& loaded, const std::string& source) {
  auto& model = *loaded.model;
  const auto& config = loaded.config;
  // HF: "ACT" or "gated-ACT"; "gated-gelu" means gelu_new.
  const std::string proj = config.get_string("feed_forward_proj", "relu");
  const std::string act = proj == "gated-gelu" ? "gelu_new" : proj.rfind("gated-", 0) == 0 ? proj.substr(6) : proj;
  activation_ = activation_by_hf_name(act, source, "feed_forward_proj");
  eps_ = static_cast<float>(config.get_float("layer_norm_epsilon", 1e-6));
  buckets_ = config.get_positive_int("relative_attention_num_buckets", 32);
  max_distance_ = config.get_positive_int("relative_attention_max_distance", 128);
  bias_heads_ = config.get_positive_int("num_heads", 8);
  max_positions_ = 0;  // relative positions: no table to run out of
  const Params p(model);
  shared_ = p.get("shared.weight");
  vocab_ = model_tensor(p.tensors, "shared.weight").size(0);
  hidden_ = model_tensor(p.tensors, "shared.weight").size(1);
  for (auto [stack, name] : {std::pair{encoder_stack_.get(), "encoder"}, {decoder_stack_.get(), "decoder"}}) {
    stack->final_gamma = p.get(std::string(name) + ".final_layer_norm.weight");
    stack->bias_table = p.get(std::string(name) + ".block.0.layer.0.SelfAttention.relative_attention_bias.weight");
  }
  const int64_t d_ff = config.get_positive_int("d_ff", 2048), layers = config.get_positive_int("num_layers", 6);
  const auto encoder_shapes = models::parse_layer_shapes(config, layers, bias_heads_, d_ff, "encoder");
  const auto decoder_shapes = models::parse_layer_shapes(config, config.has("num_decoder_layers") ? config.get_positive_int("num_decoder_layers") : layers,
                                                         bias_heads_, d_ff, "decoder");
  const auto structure = model.structure();
  for (const auto& a : structure.attention) {
    const int64_t i = a.index_in_stack();
    const std::string lp = (a.stack == "encoder" ? "encoder" : "decoder") + std::string(".block.") + std::to_string(i) + ".layer.";
    if (a.stack == "encoder") {  // T5 scores are not scaled by 1/sqrt(d_kv)
      auto l = std::make_unique<EncoderLayer>();
      l->ops = make_block_ops(a, ffn_of(structure, "encoder", i, source), hidden_, options_.precision, lp, /*scale_queries=*/false);
      l->attn_gamma = p.get(lp + "0.layer_norm.weight");
      l->ffn_gamma = p.get(lp + "1.layer_norm.weight");
      l->bias_heads = encoder_shapes.kept_heads.at(static_cast<size_t>(i));
      encoder_.push_back(std::move(l));
    } else if (a.stack == "decoder") {
      auto l = std::make_unique<DecoderLayer>();
      l->ops = make_block_ops(a, ffn_of(structure, "decoder", i, source), hidden_, options_.precision, lp, /*scale_queries=*/false);
      l->self_gamma = p.get(lp + "0.layer_norm.weight");
      l->cross_gamma = p.get(lp + "1.layer_norm.weight");
      l->ffn_gamma = p.get(lp + "2.layer_norm.weight");
      l->bias_heads = decoder_shapes.kept_heads.at(static_cast<size_t>(i));
      decoder_.push_back(std::move(l));
    } else {
      if (static_cast<int64_t>(decoder_.size()) != i + 1)
        fail_invalid(source, ": cross-attention of decoder layer ", i, " comes before its self-attention");
      decoder_.back()->cross = make_cross_attention_ops(a, hidden_, options_.precision, lp, /*scale_queries=*/false);
    }
  }
  // The tied head reads the decoder output rescaled by d_model^-0.5: folded into its weights.
  auto head = shared_;
  if (p.has("lm_head.weight")) head = p.get("lm_head.weight");
  else
    for (auto& v : head) v *= static_cast<float>(std::pow(static_cast<double>(hidden_), -0.5));
  lm_head_ = std::make_unique<LinearOp>(head.data(), vocab_, hidden_, nullptr, lm_head_precision(options_), "lm_head");
}

}  // namespace sqz::runtime
