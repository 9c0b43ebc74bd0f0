// OPT: decoder with learned positions offset by 2, pre- or post-LN (do_layer_norm_before), and
// optional project_in/project_out when word_embed_proj_dim differs from hidden_size.
#include <cmath>

#include "models/registry.h"
#include "nn/attention.h"
#include "nn/layers.h"

namespace sqz::models {
namespace {

// OPT's position table keeps two extra rows at the front (fairseq legacy).
constexpr int64_t kOptPositionOffset = 2;

struct OptConfig {
  int64_t vocab_size, hidden, layers, heads, ffn_dim, max_positions, word_embed_proj_dim, num_labels;
  double dropout, attention_dropout, init_std;
  std::string act;
  bool pre_ln, bias, ln_affine, remove_final_ln, tie;
  std::optional<int64_t> pad, bos, eos;
  int64_t head_dim;
  LayerShapes shapes;  // heads and FFN width per layer (after structured pruning)

  static OptConfig parse(const io::JsonFields& j) {
    OptConfig c;
    c.vocab_size = j.get_positive_int("vocab_size", 50272);
    c.hidden = j.get_positive_int("hidden_size", 768);
    c.layers = j.get_positive_int("num_hidden_layers", 12);
    c.heads = j.get_positive_int("num_attention_heads", 12);
    c.ffn_dim = j.get_positive_int("ffn_dim", 3072);
    c.max_positions = j.get_positive_int("max_position_embeddings", 2048);
    c.word_embed_proj_dim = j.get_positive_int("word_embed_proj_dim", c.hidden);
    c.dropout = j.get_float("dropout", 0.1);
    c.attention_dropout = j.get_float("attention_dropout", 0.0);
    c.init_std = j.get_float("init_std", 0.02);
    c.act = j.get_string("activation_function", "relu");
    c.pre_ln = j.get_bool("do_layer_norm_before", true);
    c.bias = j.get_bool("enable_bias", true);
    c.ln_affine = j.get_bool("layer_norm_elementwise_affine", true);
    c.remove_final_ln = j.get_bool("_remove_final_layer_norm", false);
    c.tie = j.get_bool("tie_word_embeddings", true);
    c.pad = config_token_id(j, "pad_token_id").value_or(1);
    c.bos = config_token_id(j, "bos_token_id").value_or(2);
    c.eos = config_token_id(j, "eos_token_id").value_or(2);
    c.num_labels = config_num_labels(j);
    c.head_dim = config_head_dim(j, "hidden_size", c.hidden, "num_attention_heads", c.heads);
    c.shapes = parse_layer_shapes(j, c.layers, c.heads, c.ffn_dim);
    return c;
  }
};

class OptLayerImpl : public torch::nn::Module {
 public:
  OptLayerImpl(const OptConfig& c, int64_t index) : num_heads(c.shapes.heads[index]), c_(c), index_(index) {
    auto lin = [&](int64_t in, int64_t out) { return nn::make_linear(in, out, c.bias); };
    const int64_t attn_width = num_heads * c.head_dim, ffn = c.shapes.ffn[index];
    auto attn = register_module("self_attn", std::make_shared<torch::nn::Module>());
    q_proj = attn->register_module("q_proj", lin(c.hidden, attn_width));
    k_proj = attn->register_module("k_proj", lin(c.hidden, attn_width));
    v_proj = attn->register_module("v_proj", lin(c.hidden, attn_width));
    out_proj = attn->register_module("out_proj", lin(attn_width, c.hidden));
    attn_norm = register_module("self_attn_layer_norm", nn::LayerNorm(c.hidden, 1e-5, c.ln_affine));
    fc1 = register_module("fc1", lin(c.hidden, ffn));
    fc2 = register_module("fc2", lin(ffn, c.hidden));
    ffn_norm = register_module("final_layer_norm", nn::LayerNorm(c.hidden, 1e-5, c.ln_affine));
    act_ = nn::activation_by_name(c.act, "config.json activation_function");
  }

  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& allowed, KVCache* cache, torch::Tensor* probs) {
    auto y = num_heads == 0 ? attention_bias_only(x, probs) : x + torch::dropout(attention(x, allowed, cache, probs), c_.dropout, is_training());
    if (!c_.pre_ln) y = attn_norm(y);
    auto f = c_.pre_ln ? ffn_norm(y) : y;
    f = torch::dropout(fc2(act_(fc1(f))), c_.dropout, is_training());
    auto z = y + f;
    return c_.pre_ln ? z : ffn_norm(z);
  }

  nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr}, fc1{nullptr}, fc2{nullptr};
  nn::LayerNorm attn_norm{nullptr}, ffn_norm{nullptr};
  int64_t num_heads;

 private:
  torch::Tensor attention(const torch::Tensor& x, const torch::Tensor& allowed, KVCache* cache, torch::Tensor* probs) {
    auto h = c_.pre_ln ? attn_norm(x) : x;
    auto q = nn::split_heads(q_proj(h), num_heads), k = nn::split_heads(k_proj(h), num_heads),
         v = nn::split_heads(v_proj(h), num_heads);
    if (cache) std::tie(k, v) = cache->update(index_, k, v);
    double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
    auto r = nn::dot_product_attention(q, k, v, allowed, scale, c_.attention_dropout, is_training(), probs != nullptr);
    if (probs) *probs = r.probs;
    return out_proj(nn::merge_heads(r.context));
  }
  // Every head pruned: the attention block adds only out_proj's bias.
  torch::Tensor attention_bias_only(const torch::Tensor& x, torch::Tensor* probs) {
    if (probs) *probs = torch::zeros({x.size(0), 0, x.size(1), x.size(1)}, x.options());
    return out_proj->bias.defined() ? x + out_proj->bias : x;
  }

  OptConfig c_;
  int64_t index_;
  nn::Activation act_;
};
TORCH_MODULE(OptLayer);

class OptModel : public TransformerModel {
 public:
  enum class Head { kBase, kLM, kSequenceClassification };

  OptModel(const OptConfig& c, const std::string& head_class, Head head)
      : TransformerModel(make_info(c, head_class, head)), c_(c), head_(head) {
    auto model = register_module("model", std::make_shared<torch::nn::Module>());
    auto dec = model->register_module("decoder", std::make_shared<torch::nn::Module>());
    embed_tokens = dec->register_module("embed_tokens", nn::Embedding(c.vocab_size, c.word_embed_proj_dim, c.pad));
    embed_positions = dec->register_module("embed_positions", nn::Embedding(c.max_positions + kOptPositionOffset, c.hidden));
    if (c.word_embed_proj_dim != c.hidden) {
      project_out = dec->register_module("project_out", nn::make_linear(c.hidden, c.word_embed_proj_dim, false));
      project_in = dec->register_module("project_in", nn::make_linear(c.word_embed_proj_dim, c.hidden, false));
    }
    if (c.pre_ln && !c.remove_final_ln)
      final_norm = dec->register_module("final_layer_norm", nn::LayerNorm(c.hidden, 1e-5, c.ln_affine));
    auto list = dec->register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.layers; ++i) {
      layers.push_back(OptLayer(c, i));
      list->push_back(layers.back());
    }
    if (head == Head::kLM && !c.tie)
      lm_head = register_module("lm_head", nn::make_linear(c.word_embed_proj_dim, c.vocab_size, false));
    if (head == Head::kSequenceClassification)
      score = register_module("score", nn::make_linear(c.word_embed_proj_dim, c.num_labels, false));
  }

  // Heads, FFN neurons and (when there is no projection between the embedding width and the
  // residual stream) hidden dims; pre-LN norms feed only their block's Linears (SmoothQuant).
  ModelStructure structure() override {
    ModelStructure s;
    for (size_t i = 0; i < layers.size(); ++i) {
      auto& l = layers[i];
      s.attention.push_back({static_cast<int64_t>(i), l->num_heads, c_.head_dim, {l->q_proj, l->k_proj, l->v_proj}, {}, l->out_proj});
      s.ffn.push_back({static_cast<int64_t>(i), {l->fc1}, l->fc2});
      s.hidden.norms.insert(s.hidden.norms.end(), {l->attn_norm, l->ffn_norm});
      s.hidden.readers.insert(s.hidden.readers.end(), {l->q_proj, l->k_proj, l->v_proj, l->fc1});
      s.hidden.writers.insert(s.hidden.writers.end(), {l->out_proj, l->fc2});
      if (c_.pre_ln && c_.ln_affine) {
        s.smoothable.push_back({l->attn_norm->weight, l->attn_norm->bias, {l->q_proj, l->k_proj, l->v_proj}});
        s.smoothable.push_back({l->ffn_norm->weight, l->ffn_norm->bias, {l->fc1}});
      }
    }
    s.hidden.embeddings = {embed_positions};
    if (final_norm) s.hidden.norms.push_back(final_norm);
    if (project_in) {  // the stream starts at project_in and ends at project_out
      s.hidden.writers.push_back(project_in);
      s.hidden.readers.push_back(project_out);
    } else {
      s.hidden.embeddings.push_back(embed_tokens);
      for (auto lin : {lm_head, score})
        if (lin) s.hidden.readers.push_back(lin);
    }
    s.shape_keys = {{{"", "ffn_dim"}}, "hidden_size", /*hf_pruned_heads=*/false};
    return s;
  }

  ModelOutputs forward(const ModelInputs& in) override {
    ModelOutputs out;
    int64_t b = in.input_ids.size(0), t = in.input_ids.size(1);
    int64_t past = in.cache ? in.cache->length() : 0;
    auto mask = in.attention_mask.defined() ? in.attention_mask.to(torch::kLong)
                                            : torch::ones({b, past + t}, torch::kLong);
    torch::Tensor positions = in.position_ids;
    if (!positions.defined()) {
      // HF: cumsum of the mask, minus one, padding at -1; only the new positions.
      positions = (torch::cumsum(mask, 1) * mask - 1).slice(1, past);
    }
    auto x = embed_tokens(in.input_ids);
    if (project_in) x = project_in(x);
    x = x + embed_positions(positions + kOptPositionOffset);
    x = torch::dropout(x, c_.dropout, is_training());
    auto allowed = nn::attention_allowed(mask, b, t, past + t, /*causal=*/true);
    for (auto& layer : layers) {
      if (in.output_hidden_states) out.hidden_states.push_back(x);
      torch::Tensor probs;
      x = layer->forward(x, allowed, in.cache, in.output_attentions ? &probs : nullptr);
      if (in.output_attentions) out.attentions.push_back(probs);
    }
    if (final_norm) x = final_norm(x);
    if (project_out) x = project_out(x);
    if (in.output_hidden_states) out.hidden_states.push_back(x);
    out.tensors["last_hidden_state"] = x;
    if (head_ == Head::kLM)
      out.tensors["logits"] = lm_head ? lm_head(x) : torch::nn::functional::linear(x, embed_tokens->weight);
    if (head_ == Head::kSequenceClassification) out.tensors["logits"] = pool_last_token(score(x), in.input_ids, c_.pad);
    return out;
  }

  nn::Embedding embed_tokens{nullptr}, embed_positions{nullptr};
  nn::Linear project_in{nullptr}, project_out{nullptr}, lm_head{nullptr}, score{nullptr};
  nn::LayerNorm final_norm{nullptr};
  std::vector<OptLayer> layers;

 private:
  static ModelInfo make_info(const OptConfig& c, const std::string& head_class, Head head) {
    ModelInfo i;
    i.model_type = "opt";
    i.head_class = head_class;
    i.base_prefix = "model";
    i.base_is_root = head == Head::kBase;
    i.vocab_size = c.vocab_size;
    i.hidden_size = c.hidden;
    i.num_layers = c.layers;
    i.max_positions = c.max_positions;
    i.is_decoder = true;
    i.init_std = c.init_std;
    i.pad_token_id = c.pad;
    i.bos_token_id = c.bos;
    i.eos_token_id = c.eos;
    return i;
  }
  OptConfig c_;
  Head head_;
};

}  // namespace

ArchSpec opt_arch() {
  return {.model_type = "opt",
          .is_decoder = true,
          .head_classes = {"OPTModel", "OPTForCausalLM", "OPTForSequenceClassification"},
          .head_aliases = {},
          .build = [](const io::JsonFields& j, const std::string& head) -> std::shared_ptr<TransformerModel> {
            using H = OptModel::Head;
            H h = head == "OPTForCausalLM" ? H::kLM : head == "OPTForSequenceClassification" ? H::kSequenceClassification : H::kBase;
            return std::make_shared<OptModel>(OptConfig::parse(j), head, h);
          },
          .layers_module = "decoder.layers",
          .layer_count_key = "num_hidden_layers"};
}

}  // namespace sqz::models
