// T5: pre-norm encoder-decoder with RMS-style T5LayerNorm, no biases, unscaled attention plus a
// bucketed relative position bias (computed by each stack's first block, shared by the rest),
// ReLU (v1.0) or gated-GELU (v1.1) feed-forward, and a tied head that rescales by d_model^-0.5.
#include <cmath>

#include "core/error.h"
#include "core/format.h"
#include "models/registry.h"
#include "nn/attention.h"

namespace sqz::models {
namespace {

struct T5Config {
  int64_t vocab_size, d_model, d_kv, d_ff, encoder_layers, decoder_layers, num_heads, buckets, max_distance;
  double dropout, eps, init_factor;
  std::string act;
  bool gated, tie;
  std::optional<int64_t> pad, eos;
  int64_t decoder_start;
  LayerShapes encoder, decoder, cross;  // per layer after structured pruning

  static T5Config parse(const io::JsonFields& j) {
    T5Config c;
    c.vocab_size = j.get_positive_int("vocab_size", 32128);
    c.d_model = j.get_positive_int("d_model", 512);
    c.d_kv = j.get_positive_int("d_kv", 64);
    c.d_ff = j.get_positive_int("d_ff", 2048);
    c.encoder_layers = j.get_positive_int("num_layers", 6);
    c.decoder_layers = j.has("num_decoder_layers") ? j.get_positive_int("num_decoder_layers") : c.encoder_layers;
    c.num_heads = j.get_positive_int("num_heads", 8);
    c.buckets = j.get_positive_int("relative_attention_num_buckets", 32);
    c.max_distance = j.get_positive_int("relative_attention_max_distance", 128);
    // The log-spaced buckets start at half the decoder's buckets: below that the bucket formula divides by zero.
    if (c.buckets < 4) j.fail_field("relative_attention_num_buckets", "at least 4");
    if (c.max_distance <= c.buckets / 2)
      j.fail_field("relative_attention_max_distance", to_text("more than half of relative_attention_num_buckets (", c.buckets / 2, ")"));
    c.dropout = j.get_float("dropout_rate", 0.1);
    c.eps = j.get_float("layer_norm_epsilon", 1e-6);
    c.init_factor = j.get_float("initializer_factor", 1.0);
    // HF: "gated-ACT" or "ACT"; "gated-gelu" means gelu_new for backward compatibility.
    const std::string proj = j.get_string("feed_forward_proj", "relu");
    c.gated = proj.rfind("gated-", 0) == 0;
    c.act = c.gated ? proj.substr(6) : proj;
    if (c.act.empty() || c.act.find('-') != std::string::npos)
      j.fail_field("feed_forward_proj", "'ACT' or 'gated-ACT' (e.g. 'relu', 'gated-gelu')");
    if (proj == "gated-gelu") c.act = "gelu_new";
    c.tie = j.get_bool("tie_word_embeddings", true);
    c.pad = config_input_token_id(j, "pad_token_id", 0, c.vocab_size);
    c.eos = config_token_id(j, "eos_token_id").value_or(1);
    c.decoder_start = config_input_token_id(j, "decoder_start_token_id", *c.pad, c.vocab_size);
    c.encoder = parse_layer_shapes(j, c.encoder_layers, c.num_heads, c.d_ff, "encoder");
    c.decoder = parse_layer_shapes(j, c.decoder_layers, c.num_heads, c.d_ff, "decoder");
    c.cross = parse_layer_shapes(j, c.decoder_layers, c.num_heads, c.d_ff, "cross");
    return c;
  }
};

// HF's _relative_position_bucket (Mesh TensorFlow): exact buckets for small distances, log-spaced
// ones up to max_distance; bidirectional stacks split the buckets between the two directions.
torch::Tensor relative_position_bucket(const torch::Tensor& relative, bool bidirectional, int64_t buckets, int64_t max_distance) {
  torch::Tensor out = torch::zeros_like(relative), distance;
  if (bidirectional) {
    buckets /= 2;
    out = out + relative.gt(0).to(torch::kLong) * buckets;
    distance = relative.abs();
  } else {
    distance = -torch::min(relative, torch::zeros_like(relative));
  }
  const int64_t max_exact = buckets / 2;
  auto is_small = distance.lt(max_exact);
  auto large = max_exact + (torch::log(distance.to(torch::kFloat32) / static_cast<double>(max_exact)) /
                            std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)) *
                            static_cast<double>(buckets - max_exact))
                               .to(torch::kLong);
  large = torch::min(large, torch::full_like(large, buckets - 1));
  return out + torch::where(is_small, distance, large);
}

class T5AttentionImpl : public torch::nn::Module {
 public:
  // `kept`: the original indices of this block's heads (its columns of the stack's position bias);
  // the first block's bias table keeps every head, as in HF's prune_heads.
  T5AttentionImpl(const T5Config& c, const std::vector<int64_t>& kept, bool relative_bias)
      : num_heads(static_cast<int64_t>(kept.size())), dropout_(c.dropout) {
    const int64_t inner = num_heads * c.d_kv;
    if (num_heads < c.num_heads) bias_heads_ = torch::tensor(kept, torch::kLong);
    q = register_module("q", nn::make_linear(c.d_model, inner, false));
    k = register_module("k", nn::make_linear(c.d_model, inner, false));
    v = register_module("v", nn::make_linear(c.d_model, inner, false));
    o = register_module("o", nn::make_linear(inner, c.d_model, false));
    if (relative_bias) relative_attention_bias = register_module("relative_attention_bias", nn::Embedding(c.buckets, c.num_heads));
  }
  std::pair<torch::Tensor, torch::Tensor> keys_values(const torch::Tensor& source) {
    return {nn::split_heads(k(source), num_heads), nn::split_heads(v(source), num_heads)};
  }
  torch::Tensor attend(const torch::Tensor& x, const torch::Tensor& keys, const torch::Tensor& values, const torch::Tensor& allowed,
                       const torch::Tensor& bias, torch::Tensor* probs) {
    auto own_bias = bias.defined() && bias_heads_.defined() ? bias.index_select(1, bias_heads_) : bias;
    auto r = nn::dot_product_attention(nn::split_heads(q(x), num_heads), keys, values, allowed, /*scale=*/1.0, dropout_,
                                       is_training(), probs != nullptr, own_bias);
    if (probs) *probs = r.probs;
    return o(nn::merge_heads(r.context));
  }
  // [1, H, T, S] for queries at positions past..past+T-1 over keys 0..S-1.
  torch::Tensor position_bias(int64_t past, int64_t query_len, int64_t key_len, bool bidirectional, const T5Config& c) {
    auto context = torch::arange(past, past + query_len, torch::kLong).unsqueeze(1);
    auto memory = torch::arange(key_len, torch::kLong).unsqueeze(0);
    auto bucket = relative_position_bucket(memory - context, bidirectional, c.buckets, c.max_distance);
    return relative_attention_bias(bucket).permute({2, 0, 1}).unsqueeze(0);
  }

  nn::Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
  nn::Embedding relative_attention_bias{nullptr};
  int64_t num_heads;

 private:
  double dropout_;
  torch::Tensor bias_heads_;  // undefined when every head is kept
};
TORCH_MODULE(T5Attention);

// block.N.layer: [0] self-attention, [1] cross-attention (decoder), last the feed-forward; each
// reads its own T5LayerNorm and adds to the residual stream.
class T5BlockImpl : public torch::nn::Module {
 public:
  T5BlockImpl(const T5Config& c, bool decoder, int64_t index) : c_(c), index_(index) {
    const LayerShapes& shapes = decoder ? c.decoder : c.encoder;
    const int64_t d_ff = shapes.ffn[index];
    auto list = register_module("layer", torch::nn::ModuleList());
    auto self = std::make_shared<torch::nn::Module>();
    self_attn = self->register_module("SelfAttention", T5Attention(c, shapes.kept_heads[index], index == 0));
    self_norm = self->register_module("layer_norm", nn::RMSNorm(c.d_model, c.eps));
    list->push_back(self);
    if (decoder) {
      auto cross = std::make_shared<torch::nn::Module>();
      cross_attn = cross->register_module("EncDecAttention", T5Attention(c, c.cross.kept_heads[index], false));
      cross_norm = cross->register_module("layer_norm", nn::RMSNorm(c.d_model, c.eps));
      list->push_back(cross);
    }
    auto ff = std::make_shared<torch::nn::Module>();
    auto dense = ff->register_module("DenseReluDense", std::make_shared<torch::nn::Module>());
    if (c.gated) {
      wi_0 = dense->register_module("wi_0", nn::make_linear(c.d_model, d_ff, false));
      wi_1 = dense->register_module("wi_1", nn::make_linear(c.d_model, d_ff, false));
    } else {
      wi = dense->register_module("wi", nn::make_linear(c.d_model, d_ff, false));
    }
    wo = dense->register_module("wo", nn::make_linear(d_ff, c.d_model, false));
    ff_norm = ff->register_module("layer_norm", nn::RMSNorm(c.d_model, c.eps));
    list->push_back(ff);
    act_ = nn::activation_by_name(c.act, "config.json feed_forward_proj");
  }

  torch::Tensor forward(const torch::Tensor& x_in, const torch::Tensor& allowed, const torch::Tensor& bias, KVCache* cache,
                        const torch::Tensor& memory, const torch::Tensor& memory_allowed, torch::Tensor* probs) {
    auto h = self_norm(x_in);
    auto [k, v] = self_attn->keys_values(h);
    if (cache) std::tie(k, v) = cache->update(index_, k, v);
    auto x = x_in + drop(self_attn->attend(h, k, v, allowed, bias, probs));
    if (cross_attn) {
      h = cross_norm(x);
      auto [ck, cv] = models::cross_keys_values(cache, static_cast<size_t>(index_), [&] { return cross_attn->keys_values(memory); });
      x = x + drop(cross_attn->attend(h, ck, cv, memory_allowed, {}, nullptr));
    }
    h = ff_norm(x);
    auto f = wi_0 ? act_(wi_0(h)) * wi_1(h) : act_(wi(h));
    return x + drop(wo(drop(f)));
  }

  T5Attention self_attn{nullptr}, cross_attn{nullptr};
  nn::RMSNorm self_norm{nullptr}, cross_norm{nullptr}, ff_norm{nullptr};
  nn::Linear wi{nullptr}, wi_0{nullptr}, wi_1{nullptr}, wo{nullptr};

 private:
  torch::Tensor drop(const torch::Tensor& t) { return torch::dropout(t, c_.dropout, is_training()); }

  T5Config c_;
  int64_t index_;
  nn::Activation act_;
};
TORCH_MODULE(T5Block);

struct T5Stack {
  std::vector<T5Block> blocks;
  nn::RMSNorm final_layer_norm{nullptr};
  bool decoder;

  T5Stack(torch::nn::Module& parent, const T5Config& c, int64_t layers, bool is_decoder) : decoder(is_decoder) {
    auto list = parent.register_module("block", torch::nn::ModuleList());
    for (int64_t i = 0; i < layers; ++i) {
      blocks.push_back(T5Block(c, is_decoder, i));
      list->push_back(blocks.back());
    }
    final_layer_norm = parent.register_module("final_layer_norm", nn::RMSNorm(c.d_model, c.eps));
  }
};

class T5Model : public TransformerModel {
 public:
  enum class Head { kBase, kConditionalGeneration, kEncoder };

  T5Model(const T5Config& c, const std::string& head_class, Head head)
      : TransformerModel(make_info(c, head_class, head)), c_(c), head_(head) {
    shared = register_module("shared", nn::Embedding(c.vocab_size, c.d_model));
    encoder_ = std::make_unique<T5Stack>(*register_module("encoder", std::make_shared<torch::nn::Module>()), c, c.encoder_layers, false);
    if (head != Head::kEncoder)
      decoder_ = std::make_unique<T5Stack>(*register_module("decoder", std::make_shared<torch::nn::Module>()), c, c.decoder_layers, true);
    if (head == Head::kConditionalGeneration && !c.tie) lm_head = register_module("lm_head", nn::make_linear(c.d_model, c.vocab_size, false));
  }

  // Encoder block i is layer i, decoder block j layer E + j with two attention blocks (self, then
  // cross). Each block's T5LayerNorm feeds only its sublayer's Linears (smoothable), except that
  // cross-attention keys/values read the encoder output. The residual stream is not described:
  // T5LayerNorm is an RMS norm, which hidden-dimension pruning does not handle yet.
  ModelStructure structure() override {
    ModelStructure s;
    for (T5Stack* stack : {encoder_.get(), decoder_.get()}) {
      if (!stack) continue;
      const int64_t first = stack == encoder_.get() ? 0 : static_cast<int64_t>(encoder_->blocks.size());
      const std::string name = stack == encoder_.get() ? "encoder" : "decoder";
      for (size_t i = 0; i < stack->blocks.size(); ++i) {
        auto& b = stack->blocks[i];
        const int64_t layer = first + static_cast<int64_t>(i), index = static_cast<int64_t>(i);
        for (const auto& [a, stack_name] : {std::pair{b->self_attn, name}, {b->cross_attn, std::string("cross")}})
          if (a) {
            s.attention.push_back({layer, a->num_heads, c_.d_kv, {a->q, a->k, a->v}, {}, a->o});
            s.attention.back().stack = stack_name;
            s.attention.back().stack_layer = index;
          }
        std::vector<nn::Linear> ffn_in = b->wi ? std::vector<nn::Linear>{b->wi} : std::vector<nn::Linear>{b->wi_0, b->wi_1};
        s.ffn.push_back({layer, ffn_in, b->wo, name, index});
        s.smoothable.push_back({b->self_norm->weight, {}, {b->self_attn->q, b->self_attn->k, b->self_attn->v}});
        if (b->cross_attn) s.smoothable.push_back({b->cross_norm->weight, {}, {b->cross_attn->q}});
        s.smoothable.push_back({b->ff_norm->weight, {}, ffn_in});
      }
    }
    s.shape_keys = {{{"encoder", "d_ff"}, {"decoder", "d_ff"}}, "d_model", /*hf_pruned_heads=*/false};
    return s;
  }

  ModelOutputs forward(const ModelInputs& in) override {
    ModelOutputs out;
    if (head_ == Head::kEncoder) {
      out.tensors["last_hidden_state"] = run_stack(*encoder_, in.input_ids, in.attention_mask, nullptr, {}, {}, in, out.hidden_states, out);
      return out;
    }
    if (!in.decoder_input_ids.defined())
      fail_invalid(info_.head_class, " needs decoder_input_ids (T5 does not derive them from input_ids; for teacher forcing ",
                   "they are the labels shifted right, starting at decoder_start_token_id ", c_.decoder_start, ")");
    auto memory = in.encoder_last_hidden_state.defined()
                      ? in.encoder_last_hidden_state
                      : run_stack(*encoder_, in.input_ids, in.attention_mask, nullptr, {}, {}, in, out.encoder_hidden_states, out);
    auto x = run_stack(*decoder_, in.decoder_input_ids, in.decoder_attention_mask, in.cache, memory, in.attention_mask, in,
                       out.hidden_states, out);
    out.tensors["last_hidden_state"] = x;
    out.tensors["encoder_last_hidden_state"] = memory;
    if (head_ == Head::kConditionalGeneration)
      out.tensors["logits"] = lm_head ? lm_head(x)
                                      : torch::nn::functional::linear(x * std::pow(static_cast<double>(c_.d_model), -0.5), shared->weight);
    return out;
  }

  // HF's T5 _init_weights: fan-in scaled normals instead of one init_std.
  void init_weights_extra() override {
    torch::NoGradGuard no_grad;
    const double f = c_.init_factor, d = static_cast<double>(c_.d_model), inner = static_cast<double>(c_.num_heads * c_.d_kv);  // HF: config sizes
    shared->weight.normal_(0.0, f);
    if (lm_head) lm_head->weight.normal_(0.0, f);
    for (T5Stack* stack : {encoder_.get(), decoder_.get()}) {
      if (!stack) continue;
      stack->final_layer_norm->weight.fill_(f);
      for (auto& b : stack->blocks) {
        for (auto* norm : {&b->self_norm, &b->cross_norm, &b->ff_norm})
          if (*norm) (*norm)->weight.fill_(f);
        for (auto* attn : {&b->self_attn, &b->cross_attn}) {
          if (!*attn) continue;
          auto& a = **attn;
          a.q->weight.normal_(0.0, f * std::pow(d * static_cast<double>(c_.d_kv), -0.5));
          a.k->weight.normal_(0.0, f * std::pow(d, -0.5));
          a.v->weight.normal_(0.0, f * std::pow(d, -0.5));
          a.o->weight.normal_(0.0, f * std::pow(inner, -0.5));
          if (a.relative_attention_bias) a.relative_attention_bias->weight.normal_(0.0, f * std::pow(d, -0.5));
        }
        for (auto* in_proj : {&b->wi, &b->wi_0, &b->wi_1})
          if (*in_proj) (*in_proj)->weight.normal_(0.0, f * std::pow(d, -0.5));
        b->wo->weight.normal_(0.0, f * std::pow(static_cast<double>(c_.d_ff), -0.5));  // HF: config.d_ff, also after pruning
      }
    }
  }

  nn::Embedding shared{nullptr};
  nn::Linear lm_head{nullptr};

 private:
  // One stack over `ids`; `memory` (the encoder output) for the decoder. States go to `states`,
  // the last stack's attention probabilities to out.attentions.
  torch::Tensor run_stack(T5Stack& stack, const torch::Tensor& ids, const torch::Tensor& mask, KVCache* cache,
                          const torch::Tensor& memory, const torch::Tensor& memory_mask, const ModelInputs& in,
                          std::vector<torch::Tensor>& states, ModelOutputs& out) {
    const int64_t b = ids.size(0), t = ids.size(1), past = cache ? cache->length() : 0;
    const bool last_stack = stack.decoder || head_ == Head::kEncoder;  // its attention probabilities are the outputs
    auto x = torch::dropout(shared(ids), c_.dropout, is_training());
    auto allowed = nn::attention_allowed(mask, b, t, past + t, /*causal=*/stack.decoder);
    auto bias = stack.blocks.front()->self_attn->position_bias(past, t, past + t, /*bidirectional=*/!stack.decoder, c_);
    torch::Tensor memory_allowed;
    if (stack.decoder) memory_allowed = nn::attention_allowed(memory_mask, b, t, memory.size(1), /*causal=*/false);
    for (auto& block : stack.blocks) {
      if (in.output_hidden_states) states.push_back(x);
      torch::Tensor probs;
      x = block->forward(x, allowed, bias, cache, memory, memory_allowed, in.output_attentions && last_stack ? &probs : nullptr);
      if (probs.defined()) out.attentions.push_back(probs);
    }
    x = torch::dropout(stack.final_layer_norm(x), c_.dropout, is_training());
    if (in.output_hidden_states) states.push_back(x);
    return x;
  }

  static ModelInfo make_info(const T5Config& c, const std::string& head_class, Head head) {
    ModelInfo i;
    i.model_type = "t5";
    i.head_class = head_class;
    i.base_prefix = "transformer";  // HF's base_model_prefix; every T5 class keeps its stacks at the root
    i.vocab_size = c.vocab_size;
    i.hidden_size = c.d_model;
    i.num_layers = c.encoder_layers + (head == Head::kEncoder ? 0 : c.decoder_layers);
    i.max_positions = 0;  // relative positions: no learned limit
    i.is_encoder_decoder = head != Head::kEncoder;
    i.decoder_layers = head == Head::kEncoder ? 0 : c.decoder_layers;
    i.init_std = c.init_factor;
    i.pad_token_id = c.pad;
    i.eos_token_id = c.eos;
    i.decoder_start_token_id = c.decoder_start;
    return i;
  }

  T5Config c_;
  Head head_;
  std::unique_ptr<T5Stack> encoder_, decoder_;
};

}  // namespace

ArchSpec t5_arch() {
  return {.model_type = "t5",
          .is_decoder = false,
          .head_classes = {"T5Model", "T5ForConditionalGeneration", "T5EncoderModel"},
          .head_aliases = {},
          .build = [](const io::JsonFields& j, const std::string& head) -> std::shared_ptr<TransformerModel> {
            using H = T5Model::Head;
            H h = head == "T5ForConditionalGeneration" ? H::kConditionalGeneration : head == "T5EncoderModel" ? H::kEncoder : H::kBase;
            return std::make_shared<T5Model>(T5Config::parse(j), head, h);
          },
          .layers_module = "decoder.block",
          .layer_count_key = "num_decoder_layers",
          .encoder_layers_module = "encoder.block",
          .encoder_layer_count_key = "num_layers"};
}

}  // namespace sqz::models
