// GPT-NeoX (Pythia, GPT-NeoX-20B): pre-LN decoder with a parallel residual (attention and MLP
// both read the block input), partial rotary positions (the first rotary_pct of each head) and a
// fused query_key_value whose rows are grouped per head ([heads, q|k|v, head_size]), unlike
// GPT-2's [q|k|v, heads, head_size]. Untied embed_out by default.
#include <cmath>

#include "models/registry.h"
#include "nn/attention.h"
#include "nn/layers.h"

namespace sqz::models {
namespace {

struct NeoxConfig {
  int64_t vocab_size, hidden, intermediate, layers, heads, head_dim, rotary_dims, max_positions, num_labels;
  double eps, init_std, rotary_base, hidden_dropout, attention_dropout;
  std::string act;
  bool parallel_residual, bias, tie;
  std::optional<int64_t> pad, bos, eos;
  torch::Tensor inv_freq;  // [rotary_dims / 2]
  LayerShapes shapes;      // heads and FFN width per layer (after structured pruning)

  static NeoxConfig parse(const io::JsonFields& j) {
    NeoxConfig c;
    c.vocab_size = j.get_positive_int("vocab_size", 50432);
    c.hidden = j.get_positive_int("hidden_size", 6144);
    c.intermediate = j.get_positive_int("intermediate_size", 24576);
    c.layers = j.get_positive_int("num_hidden_layers", 44);
    c.heads = j.get_positive_int("num_attention_heads", 64);
    c.head_dim = config_head_dim(j, "hidden_size", c.hidden, "num_attention_heads", c.heads);
    c.shapes = parse_layer_shapes(j, c.layers, c.heads, c.intermediate);
    const double pct = j.get_float("rotary_pct", 0.25);
    if (!(pct > 0.0 && pct <= 1.0)) j.fail_field("rotary_pct", "a fraction in (0, 1]");
    c.rotary_dims = static_cast<int64_t>(static_cast<double>(c.head_dim) * pct);  // HF: int(head_size * rotary_pct)
    if (c.rotary_dims < 2 || c.rotary_dims % 2 != 0)
      j.fail_field("rotary_pct", to_text("a share of the head size (", c.head_dim, ") that is an even number >= 2"));
    c.max_positions = j.get_positive_int("max_position_embeddings", 2048);
    c.eps = j.get_float("layer_norm_eps", 1e-5);
    c.init_std = j.get_float("initializer_range", 0.02);
    c.rotary_base = j.get_float("rotary_emb_base", 10000.0);
    c.hidden_dropout = j.get_float("hidden_dropout", 0.0);
    c.attention_dropout = j.get_float("attention_dropout", 0.0);
    c.act = j.get_string("hidden_act", "gelu");
    c.parallel_residual = j.get_bool("use_parallel_residual", true);
    c.bias = j.get_bool("attention_bias", true);
    c.tie = j.get_bool("tie_word_embeddings", false);
    c.pad = config_token_id(j, "pad_token_id");
    c.bos = config_token_id(j, "bos_token_id").value_or(0);
    c.eos = config_token_id(j, "eos_token_id").value_or(2);
    c.num_labels = config_num_labels(j);
    if (j.has("rope_scaling") && !j.value()["rope_scaling"].is_null())
      fail_unimplemented(j.source(), ": field 'rope_scaling' is not supported for gpt_neox");
    auto dims = torch::arange(0, c.rotary_dims, 2, torch::kLong).to(torch::kFloat32) / static_cast<double>(c.rotary_dims);
    c.inv_freq = 1.0 / torch::pow(torch::tensor(c.rotary_base, torch::kFloat32), dims);
    return c;
  }
};

class NeoxLayerImpl : public torch::nn::Module {
 public:
  NeoxLayerImpl(const NeoxConfig& c, int64_t index) : num_heads(c.shapes.heads[index]), c_(c), index_(index) {
    const int64_t width = num_heads * c.head_dim, ffn = c.shapes.ffn[index];
    input_layernorm = register_module("input_layernorm", nn::LayerNorm(c.hidden, c.eps));
    post_attention_layernorm = register_module("post_attention_layernorm", nn::LayerNorm(c.hidden, c.eps));
    auto attn = register_module("attention", std::make_shared<torch::nn::Module>());
    query_key_value = attn->register_module("query_key_value", nn::make_linear(c.hidden, 3 * width, c.bias));
    dense = attn->register_module("dense", nn::make_linear(width, c.hidden, c.bias));
    auto mlp = register_module("mlp", std::make_shared<torch::nn::Module>());
    dense_h_to_4h = mlp->register_module("dense_h_to_4h", nn::make_linear(c.hidden, ffn, true));
    dense_4h_to_h = mlp->register_module("dense_4h_to_h", nn::make_linear(ffn, c.hidden, true));
    act_ = nn::activation_by_name(c.act, "config.json hidden_act");
  }

  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin, const torch::Tensor& allowed,
                        KVCache* cache, torch::Tensor* probs) {
    auto a = torch::dropout(attention(input_layernorm(x), cos, sin, allowed, cache, probs), c_.hidden_dropout, is_training());
    auto mlp = [&](const torch::Tensor& h) {
      return torch::dropout(dense_4h_to_h(act_(dense_h_to_4h(post_attention_layernorm(h)))), c_.hidden_dropout, is_training());
    };
    if (c_.parallel_residual) return x + a + mlp(x);
    auto y = x + a;
    return y + mlp(y);
  }

  nn::LayerNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  nn::Linear query_key_value{nullptr}, dense{nullptr}, dense_h_to_4h{nullptr}, dense_4h_to_h{nullptr};
  int64_t num_heads;

 private:
  // q, k and v of each head are adjacent rows of query_key_value: [B, T, heads, 3 * head_size].
  torch::Tensor attention(const torch::Tensor& h, const torch::Tensor& cos, const torch::Tensor& sin, const torch::Tensor& allowed,
                          KVCache* cache, torch::Tensor* probs) {
    const int64_t b = h.size(0), t = h.size(1), hs = c_.head_dim, rd = c_.rotary_dims;
    auto qkv = query_key_value(h).view({b, t, num_heads, 3 * hs}).permute({0, 2, 1, 3});
    auto q = qkv.slice(-1, 0, hs), k = qkv.slice(-1, hs, 2 * hs), v = qkv.slice(-1, 2 * hs, 3 * hs);
    auto rotate = [&](const torch::Tensor& x) {
      return torch::cat({nn::apply_rotary(x.slice(-1, 0, rd), cos, sin), x.slice(-1, rd, hs)}, -1);
    };
    q = rotate(q), k = rotate(k);
    if (cache) std::tie(k, v) = cache->update(index_, k, v.contiguous());
    const double scale = 1.0 / std::sqrt(static_cast<double>(hs));
    auto r = nn::dot_product_attention(q, k, v, allowed, scale, c_.attention_dropout, is_training(), probs != nullptr);
    if (probs) *probs = r.probs;
    return dense(nn::merge_heads(r.context));
  }

  NeoxConfig c_;
  int64_t index_;
  nn::Activation act_;
};
TORCH_MODULE(NeoxLayer);

class NeoxModel : public TransformerModel {
 public:
  enum class Head { kBase, kLM, kSequenceClassification };

  NeoxModel(const NeoxConfig& c, const std::string& head_class, Head head)
      : TransformerModel(make_info(c, head_class, head)), c_(c), head_(head) {
    auto base = register_module("gpt_neox", std::make_shared<torch::nn::Module>());
    embed_in = base->register_module("embed_in", nn::Embedding(c.vocab_size, c.hidden, c.pad));
    auto list = base->register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.layers; ++i) {
      layers.push_back(NeoxLayer(c, i));
      list->push_back(layers.back());
    }
    final_layer_norm = base->register_module("final_layer_norm", nn::LayerNorm(c.hidden, c.eps));
    if (head == Head::kLM && !c.tie)
      embed_out = register_module("embed_out", nn::make_linear(c.hidden, c.vocab_size, false));
    if (head == Head::kSequenceClassification)
      score = register_module("score", nn::make_linear(c.hidden, c.num_labels, false));
  }

  torch::Tensor rotary_inv_freq() const override { return c_.inv_freq; }

  // A head is its three adjacent row blocks of query_key_value (q, k, v: a stride of 3 * head_size
  // from head to head) and its columns of dense. Pre-LN: each LayerNorm feeds only its sublayer's
  // Linears (smoothable); the residual stream runs from embed_in through every block to the head.
  ModelStructure structure() override {
    ModelStructure s;
    const int64_t hs = c_.head_dim;
    for (size_t i = 0; i < layers.size(); ++i) {
      auto& l = layers[i];
      const int64_t layer = static_cast<int64_t>(i);
      s.attention.push_back({layer, l->num_heads, hs, {l->query_key_value, l->query_key_value, l->query_key_value}, {0, hs, 2 * hs},
                             l->dense});
      s.attention.back().row_stride = 3 * hs;
      s.ffn.push_back({layer, {l->dense_h_to_4h}, l->dense_4h_to_h});
      s.hidden.norms.insert(s.hidden.norms.end(), {l->input_layernorm, l->post_attention_layernorm});
      s.hidden.readers.insert(s.hidden.readers.end(), {l->query_key_value, l->dense_h_to_4h});
      s.hidden.writers.insert(s.hidden.writers.end(), {l->dense, l->dense_4h_to_h});
      s.smoothable.push_back({l->input_layernorm->weight, l->input_layernorm->bias, {l->query_key_value}});
      s.smoothable.push_back({l->post_attention_layernorm->weight, l->post_attention_layernorm->bias, {l->dense_h_to_4h}});
    }
    s.hidden.embeddings.push_back(embed_in);
    s.hidden.norms.push_back(final_layer_norm);
    for (auto lin : {embed_out, score})
      if (lin) s.hidden.readers.push_back(lin);
    s.shape_keys = {{{"", "intermediate_size"}}, "hidden_size", /*hf_pruned_heads=*/false};
    return s;
  }

  ModelOutputs forward(const ModelInputs& in) override {
    ModelOutputs out;
    const int64_t b = in.input_ids.size(0), t = in.input_ids.size(1);
    const int64_t past = in.cache ? in.cache->length() : 0;
    auto positions = in.position_ids.defined() ? in.position_ids : default_positions(in);
    auto freqs = positions.to(torch::kFloat32).unsqueeze(-1) * c_.inv_freq.view({1, 1, -1});
    auto emb = torch::cat({freqs, freqs}, -1).unsqueeze(1);  // [B, 1, T, rotary_dims]
    auto cos = emb.cos(), sin = emb.sin();
    auto x = torch::dropout(embed_in(in.input_ids), c_.hidden_dropout, is_training());
    auto allowed = nn::attention_allowed(in.attention_mask, b, t, past + t, /*causal=*/true);
    for (auto& layer : layers) {
      if (in.output_hidden_states) out.hidden_states.push_back(x);
      torch::Tensor probs;
      x = layer->forward(x, cos, sin, allowed, in.cache, in.output_attentions ? &probs : nullptr);
      if (in.output_attentions) out.attentions.push_back(probs);
    }
    x = final_layer_norm(x);
    if (in.output_hidden_states) out.hidden_states.push_back(x);
    out.tensors["last_hidden_state"] = x;
    if (head_ == Head::kLM)
      out.tensors["logits"] = embed_out ? embed_out(x) : torch::nn::functional::linear(x, embed_in->weight);
    if (head_ == Head::kSequenceClassification) out.tensors["logits"] = pool_last_token(score(x), in.input_ids, c_.pad);
    return out;
  }

  nn::Embedding embed_in{nullptr};
  std::vector<NeoxLayer> layers;
  nn::LayerNorm final_layer_norm{nullptr};
  nn::Linear embed_out{nullptr}, score{nullptr};

 private:
  static ModelInfo make_info(const NeoxConfig& c, const std::string& head_class, Head head) {
    ModelInfo i;
    i.model_type = "gpt_neox";
    i.head_class = head_class;
    i.base_prefix = "gpt_neox";
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
  NeoxConfig c_;
  Head head_;
};

}  // namespace

ArchSpec gpt_neox_arch() {
  return {.model_type = "gpt_neox",
          .is_decoder = true,
          .head_classes = {"GPTNeoXModel", "GPTNeoXForCausalLM", "GPTNeoXForSequenceClassification"},
          .head_aliases = {},
          .build = [](const io::JsonFields& j, const std::string& head) -> std::shared_ptr<TransformerModel> {
            using H = NeoxModel::Head;
            H h = head == "GPTNeoXForCausalLM" ? H::kLM : head == "GPTNeoXForSequenceClassification" ? H::kSequenceClassification : H::kBase;
            return std::make_shared<NeoxModel>(NeoxConfig::parse(j), head, h);
          },
          .layers_module = "layers",
          .layer_count_key = "num_hidden_layers"};
}

}  // namespace sqz::models
