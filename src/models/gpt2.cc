// GPT-2: pre-LN decoder, Conv1D weights stored [in, out], fused c_attn = Q|K|V, tied lm_head.
#include <cmath>

#include "models/registry.h"
#include "nn/attention.h"
#include "nn/layers.h"

namespace sqz::models {
namespace {

struct Gpt2Config {
  int64_t vocab_size, n_embd, n_layer, n_head, n_inner, n_positions, num_labels;
  double eps, resid_pdrop, embd_pdrop, attn_pdrop, initializer_range;
  std::string act;
  bool scale_attn_weights, scale_by_layer, tie;
  std::optional<int64_t> pad, bos, eos;
  int64_t head_dim;
  LayerShapes layers;  // heads and FFN width per layer (after structured pruning)

  static Gpt2Config parse(const io::JsonFields& j) {
    Gpt2Config c;
    c.vocab_size = j.get_positive_int("vocab_size", 50257);
    c.n_embd = j.get_positive_int("n_embd", 768);
    c.n_layer = j.get_positive_int("n_layer", 12);
    c.n_head = j.get_positive_int("n_head", 12);
    c.n_inner = j.get_positive_int("n_inner", 4 * c.n_embd);
    c.n_positions = j.get_positive_int("n_positions", 1024);
    c.eps = j.get_float("layer_norm_epsilon", 1e-5);
    c.resid_pdrop = j.get_float("resid_pdrop", 0.1);
    c.embd_pdrop = j.get_float("embd_pdrop", 0.1);
    c.attn_pdrop = j.get_float("attn_pdrop", 0.1);
    c.initializer_range = j.get_float("initializer_range", 0.02);
    c.act = j.get_string("activation_function", "gelu_new");
    c.scale_attn_weights = j.get_bool("scale_attn_weights", true);
    c.scale_by_layer = j.get_bool("scale_attn_by_inverse_layer_idx", false);
    c.tie = j.get_bool("tie_word_embeddings", true);
    c.pad = config_token_id(j, "pad_token_id");
    c.bos = config_token_id(j, "bos_token_id").value_or(50256);
    c.eos = config_token_id(j, "eos_token_id").value_or(50256);
    c.num_labels = config_num_labels(j);
    c.head_dim = config_head_dim(j, "n_embd", c.n_embd, "n_head", c.n_head);
    c.layers = parse_layer_shapes(j, c.n_layer, c.n_head, c.n_inner);
    return c;
  }
};

nn::Linear conv1d(int64_t in, int64_t out) { return nn::Linear(nn::LinearOptions{in, out, true, nn::WeightLayout::kInOut}); }

class Gpt2BlockImpl : public torch::nn::Module {
 public:
  Gpt2BlockImpl(const Gpt2Config& c, int64_t index) : c_(c), index_(index), num_heads(c.layers.heads[index]) {
    const int64_t attn_width = num_heads * c.head_dim, ffn = c.layers.ffn[index];
    ln_1 = register_module("ln_1", nn::LayerNorm(c.n_embd, c.eps));
    auto attn = register_module("attn", std::make_shared<torch::nn::Module>());
    c_attn = attn->register_module("c_attn", conv1d(c.n_embd, 3 * attn_width));
    attn_proj = attn->register_module("c_proj", conv1d(attn_width, c.n_embd));
    ln_2 = register_module("ln_2", nn::LayerNorm(c.n_embd, c.eps));
    auto mlp = register_module("mlp", std::make_shared<torch::nn::Module>());
    c_fc = mlp->register_module("c_fc", conv1d(c.n_embd, ffn));
    mlp_proj = mlp->register_module("c_proj", conv1d(ffn, c.n_embd));
    act_ = nn::activation_by_name(c.act, "config.json activation_function");
  }

  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& allowed, KVCache* cache, torch::Tensor* probs) {
    if (num_heads == 0) {  // every head pruned: the attention adds only its output bias
      if (probs) *probs = torch::zeros({x.size(0), 0, x.size(1), x.size(1)}, x.options());
      auto h = x + attn_proj->bias;
      return h + torch::dropout(mlp_proj(act_(c_fc(ln_2(h)))), c_.resid_pdrop, is_training());
    }
    auto qkv = c_attn(ln_1(x)).chunk(3, -1);
    auto q = nn::split_heads(qkv[0], num_heads), k = nn::split_heads(qkv[1], num_heads), v = nn::split_heads(qkv[2], num_heads);
    if (cache) std::tie(k, v) = cache->update(index_, k, v);
    double scale = c_.scale_attn_weights ? 1.0 / std::sqrt(static_cast<double>(q.size(-1))) : 1.0;
    if (c_.scale_by_layer) scale /= static_cast<double>(index_ + 1);
    auto r = nn::dot_product_attention(q, k, v, allowed, scale, c_.attn_pdrop, is_training(), probs != nullptr);
    if (probs) *probs = r.probs;
    auto h = x + torch::dropout(attn_proj(nn::merge_heads(r.context)), c_.resid_pdrop, is_training());
    return h + torch::dropout(mlp_proj(act_(c_fc(ln_2(h)))), c_.resid_pdrop, is_training());
  }

  nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  nn::Linear c_attn{nullptr}, attn_proj{nullptr}, c_fc{nullptr}, mlp_proj{nullptr};

 private:
  Gpt2Config c_;
  int64_t index_;
  nn::Activation act_;

 public:
  int64_t num_heads;
};
TORCH_MODULE(Gpt2Block);

class Gpt2Model : public TransformerModel {
 public:
  enum class Head { kBase, kLM, kSequenceClassification };

  Gpt2Model(const Gpt2Config& c, const std::string& head_class, Head head)
      : TransformerModel(make_info(c, head_class, head)), c_(c), head_(head) {
    auto t = register_module("transformer", std::make_shared<torch::nn::Module>());
    wte = t->register_module("wte", nn::Embedding(c.vocab_size, c.n_embd));
    wpe = t->register_module("wpe", nn::Embedding(c.n_positions, c.n_embd));
    auto list = t->register_module("h", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.n_layer; ++i) {
      blocks.push_back(Gpt2Block(c, i));
      list->push_back(blocks.back());
    }
    ln_f = t->register_module("ln_f", nn::LayerNorm(c.n_embd, c.eps));
    if (head == Head::kLM && !c.tie)
      lm_head = register_module("lm_head", nn::make_linear(c.n_embd, c.vocab_size, false));
    if (head == Head::kSequenceClassification)
      score = register_module("score", nn::make_linear(c.n_embd, c.num_labels, false));
  }

  ModelStructure structure() override {
    ModelStructure s;
    for (size_t i = 0; i < blocks.size(); ++i) {
      auto& b = blocks[i];
      int64_t width = b->num_heads * c_.head_dim;
      s.attention.push_back({static_cast<int64_t>(i), b->num_heads, c_.head_dim, {b->c_attn, b->c_attn, b->c_attn},
                             {0, width, 2 * width}, b->attn_proj});
      s.ffn.push_back({static_cast<int64_t>(i), {b->c_fc}, b->mlp_proj});
      s.hidden.norms.insert(s.hidden.norms.end(), {b->ln_1, b->ln_2});
      s.hidden.readers.insert(s.hidden.readers.end(), {b->c_attn, b->c_fc});
      s.hidden.writers.insert(s.hidden.writers.end(), {b->attn_proj, b->mlp_proj});
      s.smoothable.push_back({b->ln_1->weight, b->ln_1->bias, {b->c_attn}});
      s.smoothable.push_back({b->ln_2->weight, b->ln_2->bias, {b->c_fc}});
    }
    s.hidden.embeddings = {wte, wpe};
    s.hidden.norms.push_back(ln_f);
    for (auto lin : {lm_head, score})
      if (lin) s.hidden.readers.push_back(lin);
    s.shape_keys = {{{"", "n_inner"}}, "n_embd", /*hf_pruned_heads=*/true};
    return s;
  }

  ModelOutputs forward(const ModelInputs& in) override {
    ModelOutputs out;
    auto positions = in.position_ids.defined() ? in.position_ids : default_positions(in);
    auto x = wte(in.input_ids) + wpe(positions);
    if (in.token_type_ids.defined()) x = x + wte(in.token_type_ids);
    x = torch::dropout(x, c_.embd_pdrop, is_training());
    int64_t past = in.cache ? in.cache->length() : 0;
    auto allowed = nn::attention_allowed(in.attention_mask, x.size(0), x.size(1), past + x.size(1), /*causal=*/true);
    for (auto& block : blocks) {
      if (in.output_hidden_states) out.hidden_states.push_back(x);
      torch::Tensor probs;
      x = block->forward(x, allowed, in.cache, in.output_attentions ? &probs : nullptr);
      if (in.output_attentions) out.attentions.push_back(probs);
    }
    x = ln_f(x);
    if (in.output_hidden_states) out.hidden_states.push_back(x);
    out.tensors["last_hidden_state"] = x;
    if (head_ == Head::kLM)
      out.tensors["logits"] = lm_head ? lm_head(x) : torch::nn::functional::linear(x, wte->weight);
    if (head_ == Head::kSequenceClassification) out.tensors["logits"] = pool_last_token(score(x), in.input_ids, c_.pad);
    return out;
  }

  void init_weights_extra() override {
    // GPT-2 scales residual projections by 1/sqrt(2 * n_layer) (HF _init_weights).
    torch::NoGradGuard no_grad;
    double std = c_.initializer_range / std::sqrt(2.0 * c_.n_layer);
    for (auto& b : blocks) {
      b->attn_proj->weight.normal_(0.0, std);
      b->mlp_proj->weight.normal_(0.0, std);
    }
  }

  nn::Embedding wte{nullptr}, wpe{nullptr};
  std::vector<Gpt2Block> blocks;
  nn::LayerNorm ln_f{nullptr};
  nn::Linear lm_head{nullptr}, score{nullptr};

 private:
  static ModelInfo make_info(const Gpt2Config& c, const std::string& head_class, Head head) {
    ModelInfo i;
    i.model_type = "gpt2";
    i.head_class = head_class;
    i.base_prefix = "transformer";
    i.base_is_root = head == Head::kBase;
    i.vocab_size = c.vocab_size;
    i.hidden_size = c.n_embd;
    i.num_layers = c.n_layer;
    i.max_positions = c.n_positions;
    i.is_decoder = true;
    i.init_std = c.initializer_range;
    i.pad_token_id = c.pad;
    i.bos_token_id = c.bos;
    i.eos_token_id = c.eos;
    return i;
  }
  Gpt2Config c_;
  Head head_;
};

}  // namespace

ArchSpec gpt2_arch() {
  return {.model_type = "gpt2",
          .is_decoder = true,
          .head_classes = {"GPT2Model", "GPT2LMHeadModel", "GPT2ForSequenceClassification"},
          .head_aliases = {{"GPT2DoubleHeadsModel", "GPT2LMHeadModel"}},
          .build = [](const io::JsonFields& j, const std::string& head) -> std::shared_ptr<TransformerModel> {
            using H = Gpt2Model::Head;
            H h = head == "GPT2LMHeadModel" ? H::kLM : head == "GPT2ForSequenceClassification" ? H::kSequenceClassification : H::kBase;
            return std::make_shared<Gpt2Model>(Gpt2Config::parse(j), head, h);
          },
          .layers_module = "h",
          .layer_count_key = "n_layer"};
}

}  // namespace sqz::models
