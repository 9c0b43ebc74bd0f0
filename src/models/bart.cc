// BART: post-LN encoder-decoder; learned positions offset by 2, layernorm_embedding on both stacks,
// one token embedding (`shared`) read by encoder, decoder and the tied LM head, final_logits_bias.
#include <cmath>

#include "core/error.h"
#include "core/format.h"

#include "models/registry.h"
#include "nn/attention.h"

namespace sqz::models {
namespace {

constexpr int64_t kBartPositionOffset = 2;  // HF's BartLearnedPositionalEmbedding

struct BartStack {  // the encoder's or the decoder's shape
  int64_t layers, heads, ffn, head_dim = 0;
  LayerShapes shapes, cross;  // per layer after structured pruning (cross: the decoder's cross-attention heads)
};

struct BartConfig {
  int64_t vocab_size, d_model, max_positions, num_labels, decoder_start;
  BartStack encoder, decoder;
  double dropout, attention_dropout, activation_dropout, classifier_dropout, init_std, embed_scale;
  std::string act;
  bool scale_embedding, tie;
  std::optional<int64_t> pad, bos, eos;

  static BartConfig parse(const io::JsonFields& j) {
    BartConfig c;
    c.vocab_size = j.get_positive_int("vocab_size", 50265);
    c.d_model = j.get_positive_int("d_model", 1024);
    c.max_positions = j.get_positive_int("max_position_embeddings", 1024);
    c.encoder = {j.get_positive_int("encoder_layers", 12), j.get_positive_int("encoder_attention_heads", 16),
                 j.get_positive_int("encoder_ffn_dim", 4096)};
    c.decoder = {j.get_positive_int("decoder_layers", 12), j.get_positive_int("decoder_attention_heads", 16),
                 j.get_positive_int("decoder_ffn_dim", 4096)};
    c.encoder.head_dim = config_head_dim(j, "d_model", c.d_model, "encoder_attention_heads", c.encoder.heads);
    c.decoder.head_dim = config_head_dim(j, "d_model", c.d_model, "decoder_attention_heads", c.decoder.heads);
    c.encoder.shapes = parse_layer_shapes(j, c.encoder.layers, c.encoder.heads, c.encoder.ffn, "encoder");
    c.decoder.shapes = parse_layer_shapes(j, c.decoder.layers, c.decoder.heads, c.decoder.ffn, "decoder");
    c.decoder.cross = parse_layer_shapes(j, c.decoder.layers, c.decoder.heads, c.decoder.ffn, "cross");
    c.dropout = j.get_float("dropout", 0.1);
    c.attention_dropout = j.get_float("attention_dropout", 0.0);
    c.activation_dropout = j.get_float("activation_dropout", 0.0);
    c.classifier_dropout = j.get_float("classifier_dropout", 0.0);
    c.init_std = j.get_float("init_std", 0.02);
    c.act = j.get_string("activation_function", "gelu");
    c.scale_embedding = j.get_bool("scale_embedding", false);
    // sqrt(d_model) as trained: SpeedUp pins it when it cuts hidden dimensions.
    c.embed_scale = j.has("sqz_embed_scale") ? j.get_float("sqz_embed_scale", 1.0)
                                             : (c.scale_embedding ? std::sqrt(static_cast<double>(c.d_model)) : 1.0);
    c.tie = j.get_bool("tie_word_embeddings", true);
    c.pad = config_input_token_id(j, "pad_token_id", 1, c.vocab_size);
    c.bos = config_token_id(j, "bos_token_id").value_or(0);
    c.eos = config_token_id(j, "eos_token_id").value_or(2);
    c.decoder_start = config_input_token_id(j, "decoder_start_token_id", 2, c.vocab_size);
    c.num_labels = config_num_labels(j);
    return c;
  }
};

// Multi-head attention over keys and values projected from any source: the block's own input
// (self-attention) or the encoder output (cross-attention).
class BartAttentionImpl : public torch::nn::Module {
 public:
  BartAttentionImpl(int64_t d_model, int64_t heads, int64_t head_dim, double dropout)
      : num_heads(heads), head_dim(head_dim), dropout_(dropout) {
    k_proj = register_module("k_proj", nn::make_linear(d_model, heads * head_dim));
    v_proj = register_module("v_proj", nn::make_linear(d_model, heads * head_dim));
    q_proj = register_module("q_proj", nn::make_linear(d_model, heads * head_dim));
    out_proj = register_module("out_proj", nn::make_linear(heads * head_dim, d_model));
  }
  std::pair<torch::Tensor, torch::Tensor> keys_values(const torch::Tensor& source) {
    return {nn::split_heads(k_proj(source), num_heads), nn::split_heads(v_proj(source), num_heads)};
  }
  torch::Tensor attend(const torch::Tensor& x, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& allowed,
                       torch::Tensor* probs) {
    auto q = nn::split_heads(q_proj(x), num_heads);
    double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
    auto r = nn::dot_product_attention(q, k, v, allowed, scale, dropout_, is_training(), probs != nullptr);
    if (probs) *probs = r.probs;
    return out_proj(nn::merge_heads(r.context));
  }

  nn::Linear k_proj{nullptr}, v_proj{nullptr}, q_proj{nullptr}, out_proj{nullptr};
  int64_t num_heads, head_dim;

 private:
  double dropout_;
};
TORCH_MODULE(BartAttention);

// One layer of either stack: self-attention, cross-attention (decoder only), FFN, each followed by
// its residual add and LayerNorm.
class BartLayerImpl : public torch::nn::Module {
 public:
  BartLayerImpl(const BartConfig& c, const BartStack& stack, bool decoder, int64_t index) : c_(c), index_(index) {
    self_attn = register_module("self_attn", BartAttention(c.d_model, stack.shapes.heads[index], stack.head_dim, c.attention_dropout));
    self_attn_layer_norm = register_module("self_attn_layer_norm", nn::LayerNorm(c.d_model, 1e-5));
    if (decoder) {
      encoder_attn = register_module("encoder_attn", BartAttention(c.d_model, stack.cross.heads[index], stack.head_dim, c.attention_dropout));
      encoder_attn_layer_norm = register_module("encoder_attn_layer_norm", nn::LayerNorm(c.d_model, 1e-5));
    }
    fc1 = register_module("fc1", nn::make_linear(c.d_model, stack.shapes.ffn[index]));
    fc2 = register_module("fc2", nn::make_linear(stack.shapes.ffn[index], c.d_model));
    final_layer_norm = register_module("final_layer_norm", nn::LayerNorm(c.d_model, 1e-5));
    act_ = nn::activation_by_name(c.act, "config.json activation_function");
  }

  // `memory`: the encoder output (decoder layers), with `memory_allowed` its padding.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& allowed, KVCache* cache, const torch::Tensor& memory,
                        const torch::Tensor& memory_allowed, torch::Tensor* probs) {
    auto [k, v] = self_attn->keys_values(x);
    if (cache) std::tie(k, v) = cache->update(index_, k, v);
    auto h = self_attn_layer_norm(x + residual_dropout(self_attn->attend(x, k, v, allowed, probs)));
    if (encoder_attn) {
      auto [ck, cv] = models::cross_keys_values(cache, static_cast<size_t>(index_), [&] { return encoder_attn->keys_values(memory); });
      h = encoder_attn_layer_norm(h + residual_dropout(encoder_attn->attend(h, ck, cv, memory_allowed, nullptr)));
    }
    auto f = torch::dropout(act_(fc1(h)), c_.activation_dropout, is_training());
    return final_layer_norm(h + residual_dropout(fc2(f)));
  }

  BartAttention self_attn{nullptr}, encoder_attn{nullptr};
  nn::LayerNorm self_attn_layer_norm{nullptr}, encoder_attn_layer_norm{nullptr}, final_layer_norm{nullptr};
  nn::Linear fc1{nullptr}, fc2{nullptr};

 private:
  torch::Tensor residual_dropout(const torch::Tensor& t) { return torch::dropout(t, c_.dropout, is_training()); }

  BartConfig c_;
  int64_t index_;
  nn::Activation act_;
};
TORCH_MODULE(BartLayer);

// Token embedding (scaled, shared), learned positions, layernorm_embedding and the layers.
struct BartStackModules {
  nn::Embedding embed_positions{nullptr};
  nn::LayerNorm layernorm_embedding{nullptr};
  std::vector<BartLayer> layers;

  BartStackModules(torch::nn::Module& parent, const BartConfig& c, const BartStack& stack, bool decoder) {
    embed_positions = parent.register_module("embed_positions", nn::Embedding(c.max_positions + kBartPositionOffset, c.d_model));
    auto list = parent.register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < stack.layers; ++i) {
      layers.push_back(BartLayer(c, stack, decoder, i));
      list->push_back(layers.back());
    }
    layernorm_embedding = parent.register_module("layernorm_embedding", nn::LayerNorm(c.d_model, 1e-5));
  }
};

class BartModel : public TransformerModel {
 public:
  enum class Head { kBase, kConditionalGeneration, kSequenceClassification, kQuestionAnswering };

  BartModel(const BartConfig& c, const std::string& head_class, Head head)
      : TransformerModel(make_info(c, head_class, head)), c_(c), head_(head) {
    auto model = register_module("model", std::make_shared<torch::nn::Module>());
    shared = model->register_module("shared", nn::Embedding(c.vocab_size, c.d_model, c.pad));
    encoder_ = std::make_unique<BartStackModules>(*model->register_module("encoder", std::make_shared<torch::nn::Module>()), c,
                                                  c.encoder, false);
    decoder_ = std::make_unique<BartStackModules>(*model->register_module("decoder", std::make_shared<torch::nn::Module>()), c,
                                                  c.decoder, true);
    if (head == Head::kConditionalGeneration) {
      // A buffer in HF (never trained): a parameter here so that it loads and saves with the rest.
      final_logits_bias = register_parameter("final_logits_bias", torch::zeros({1, c.vocab_size}), /*requires_grad=*/false);
      if (!c.tie) lm_head = register_module("lm_head", nn::make_linear(c.d_model, c.vocab_size, false));
    }
    if (head == Head::kSequenceClassification) {
      auto h = register_module("classification_head", std::make_shared<torch::nn::Module>());
      cls_dense = h->register_module("dense", nn::make_linear(c.d_model, c.d_model));
      cls_out = h->register_module("out_proj", nn::make_linear(c.d_model, c.num_labels));
    }
    if (head == Head::kQuestionAnswering) qa_outputs = register_module("qa_outputs", nn::make_linear(c.d_model, 2));
  }

  // Encoder layer i is layer i, decoder layer j is layer E + j; a decoder layer has two attention
  // blocks (self, then cross). The residual stream of both stacks is one hidden group: the shared
  // embedding writes both, and cross-attention keys/values read the encoder's. Post-LN: no norm
  // feeds only Linears, so nothing is smoothable.
  ModelStructure structure() override {
    ModelStructure s;
    const int64_t encoder_layers = static_cast<int64_t>(encoder_->layers.size());
    auto add = [&](const BartAttention& a, int64_t layer, const char* stack, int64_t index) {
      s.attention.push_back({layer, a->num_heads, a->head_dim, {a->q_proj, a->k_proj, a->v_proj}, {}, a->out_proj});
      s.attention.back().stack = stack;
      s.attention.back().stack_layer = index;
      s.hidden.readers.insert(s.hidden.readers.end(), {a->q_proj, a->k_proj, a->v_proj});
      s.hidden.writers.push_back(a->out_proj);
    };
    for (auto* stack : {encoder_.get(), decoder_.get()}) {
      const int64_t first = stack == encoder_.get() ? 0 : encoder_layers;
      const char* name = stack == encoder_.get() ? "encoder" : "decoder";
      s.hidden.embeddings.push_back(stack->embed_positions);
      s.hidden.norms.push_back(stack->layernorm_embedding);
      for (size_t i = 0; i < stack->layers.size(); ++i) {
        auto& l = stack->layers[i];
        const int64_t layer = first + static_cast<int64_t>(i);
        const int64_t index = static_cast<int64_t>(i);
        add(l->self_attn, layer, name, index);
        s.hidden.norms.push_back(l->self_attn_layer_norm);
        if (l->encoder_attn) {
          add(l->encoder_attn, layer, "cross", index);
          s.hidden.norms.push_back(l->encoder_attn_layer_norm);
        }
        s.ffn.push_back({layer, {l->fc1}, l->fc2, name, index});
        s.hidden.readers.push_back(l->fc1);
        s.hidden.writers.push_back(l->fc2);
        s.hidden.norms.push_back(l->final_layer_norm);
      }
    }
    s.hidden.embeddings.push_back(shared);
    for (auto lin : {lm_head, cls_dense, cls_out, qa_outputs})
      if (lin) s.hidden.readers.push_back(lin);
    // The classification head's dense layer is d_model wide on both sides (HF's inner_dim = d_model):
    // it also writes the hidden space, as BERT's pooler does.
    if (cls_dense) s.hidden.writers.push_back(cls_dense);
    s.shape_keys = {{{"encoder", "encoder_ffn_dim"}, {"decoder", "decoder_ffn_dim"}}, "d_model", /*hf_pruned_heads=*/false};
    s.shape_keys.pin_on_hidden_cut["sqz_embed_scale"] = c_.embed_scale;
    return s;
  }

  ModelOutputs forward(const ModelInputs& in) override {
    ModelOutputs out;
    auto memory = in.encoder_last_hidden_state.defined() ? in.encoder_last_hidden_state : encode(in, out);
    auto decoder_ids = in.decoder_input_ids.defined()
                           ? in.decoder_input_ids
                           : shift_tokens_right(in.input_ids, c_.pad, c_.decoder_start, "config.json");
    auto x = decode(decoder_ids, in, memory, out);
    out.tensors["last_hidden_state"] = x;
    out.tensors["encoder_last_hidden_state"] = memory;
    if (head_ == Head::kConditionalGeneration)
      out.tensors["logits"] = (lm_head ? lm_head(x) : torch::nn::functional::linear(x, shared->weight)) + final_logits_bias;
    if (head_ == Head::kSequenceClassification) out.tensors["logits"] = classify(x, in.input_ids);
    if (head_ == Head::kQuestionAnswering) {
      auto se = qa_outputs(x).split(1, -1);
      out.tensors["start_logits"] = se[0].squeeze(-1);
      out.tensors["end_logits"] = se[1].squeeze(-1);
    }
    return out;
  }

  nn::Embedding shared{nullptr};
  torch::Tensor final_logits_bias;
  nn::Linear lm_head{nullptr}, cls_dense{nullptr}, cls_out{nullptr}, qa_outputs{nullptr};

 private:
  torch::Tensor embed(const torch::Tensor& ids, int64_t past, BartStackModules& stack) {
    auto positions = torch::arange(past, past + ids.size(1), torch::kLong) + kBartPositionOffset;
    auto x = shared(ids) * c_.embed_scale + stack.embed_positions(positions).unsqueeze(0);
    return torch::dropout(stack.layernorm_embedding(x), c_.dropout, is_training());
  }

  torch::Tensor encode(const ModelInputs& in, ModelOutputs& out) {
    auto x = embed(in.input_ids, 0, *encoder_);
    const int64_t b = x.size(0), s = x.size(1);
    auto allowed = nn::attention_allowed(in.attention_mask, b, s, s, /*causal=*/false);
    for (auto& layer : encoder_->layers) {
      if (in.output_hidden_states) out.encoder_hidden_states.push_back(x);
      x = layer->forward(x, allowed, nullptr, {}, {}, nullptr);
    }
    if (in.output_hidden_states) out.encoder_hidden_states.push_back(x);
    return x;
  }

  torch::Tensor decode(const torch::Tensor& ids, const ModelInputs& in, const torch::Tensor& memory, ModelOutputs& out) {
    const int64_t past = in.cache ? in.cache->length() : 0;
    auto x = embed(ids, past, *decoder_);
    const int64_t b = x.size(0), t = x.size(1);
    auto allowed = nn::attention_allowed(in.decoder_attention_mask, b, t, past + t, /*causal=*/true);
    auto memory_allowed = nn::attention_allowed(in.attention_mask, b, t, memory.size(1), /*causal=*/false);
    for (auto& layer : decoder_->layers) {
      if (in.output_hidden_states) out.hidden_states.push_back(x);
      torch::Tensor probs;
      x = layer->forward(x, allowed, in.cache, memory, memory_allowed, in.output_attentions ? &probs : nullptr);
      if (in.output_attentions) out.attentions.push_back(probs);
    }
    if (in.output_hidden_states) out.hidden_states.push_back(x);
    return x;
  }

  // HF: the decoder state at each row's last EOS of input_ids; every row must hold as many EOS.
  torch::Tensor classify(const torch::Tensor& x, const torch::Tensor& input_ids) {
    if (x.size(1) != input_ids.size(1))
      fail_invalid("decoder_input_ids: BART sequence classification reads the decoder at input_ids' EOS positions, so both need ",
                   "the same length (", input_ids.size(1), "), got ", x.size(1));
    auto eos = input_ids.eq(*c_.eos);
    auto counts = eos.sum(1);
    if (counts.min().item<int64_t>() == 0 || counts.min().item<int64_t>() != counts.max().item<int64_t>())
      fail_invalid("input_ids: BART sequence classification needs the same number (at least one) of eos_token_id ", *c_.eos,
                   " in every row");
    auto rows = x.index({eos}).view({x.size(0), -1, x.size(-1)}).select(1, -1);
    auto h = torch::tanh(cls_dense(torch::dropout(rows, c_.classifier_dropout, is_training())));
    return cls_out(torch::dropout(h, c_.classifier_dropout, is_training()));
  }

  static ModelInfo make_info(const BartConfig& c, const std::string& head_class, Head head) {
    ModelInfo i;
    i.model_type = "bart";
    i.head_class = head_class;
    i.base_prefix = "model";
    i.base_is_root = head == Head::kBase;
    i.vocab_size = c.vocab_size;
    i.hidden_size = c.d_model;
    i.num_layers = c.encoder.layers + c.decoder.layers;
    i.max_positions = c.max_positions;
    i.is_encoder_decoder = true;
    i.decoder_layers = c.decoder.layers;
    i.init_std = c.init_std;
    i.pad_token_id = c.pad;
    i.bos_token_id = c.bos;
    i.eos_token_id = c.eos;
    i.decoder_start_token_id = c.decoder_start;
    return i;
  }

  BartConfig c_;
  Head head_;
  std::unique_ptr<BartStackModules> encoder_, decoder_;
};

}  // namespace

ArchSpec bart_arch() {
  return {.model_type = "bart",
          .is_decoder = false,
          .head_classes = {"BartModel", "BartForConditionalGeneration", "BartForSequenceClassification",
                           "BartForQuestionAnswering"},
          .head_aliases = {},
          .build = [](const io::JsonFields& j, const std::string& head) -> std::shared_ptr<TransformerModel> {
            using H = BartModel::Head;
            H h = head == "BartForConditionalGeneration"    ? H::kConditionalGeneration
                  : head == "BartForSequenceClassification" ? H::kSequenceClassification
                  : head == "BartForQuestionAnswering"      ? H::kQuestionAnswering
                                                            : H::kBase;
            return std::make_shared<BartModel>(BartConfig::parse(j), head, h);
          },
          // Layer surgery keeps decoder layers (distilbart's shrink-and-fine-tune students).
          .layers_module = "decoder.layers",
          .layer_count_key = "decoder_layers",
          .encoder_layers_module = "encoder.layers",
          .encoder_layer_count_key = "encoder_layers"};
}

}  // namespace sqz::models
