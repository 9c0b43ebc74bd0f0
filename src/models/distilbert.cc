// DistilBERT: BERT's post-LN layers with q_lin/k_lin/v_lin/out_lin names, no token types, no pooler.
#include <cmath>

#include "models/registry.h"
#include "nn/attention.h"
#include "nn/layers.h"

namespace sqz::models {
namespace {

// DistilBERT's LayerNorms use a fixed eps, not a config field.
constexpr double kDistilLayerNormEps = 1e-12;

struct DistilConfig {
  int64_t vocab_size, dim, layers, heads, hidden_dim, max_positions, pad, num_labels;
  double dropout, attention_dropout, qa_dropout, seq_classif_dropout, init_std;
  std::string act;
  bool sinusoidal;
  int64_t head_dim;
  LayerShapes shapes;  // heads and FFN width per layer (after structured pruning)

  static DistilConfig parse(const io::JsonFields& j) {
    DistilConfig c;
    c.vocab_size = j.get_positive_int("vocab_size", 30522);
    c.dim = j.get_positive_int("dim", 768);
    c.layers = j.get_positive_int("n_layers", 6);
    c.heads = j.get_positive_int("n_heads", 12);
    c.hidden_dim = j.get_positive_int("hidden_dim", 3072);
    c.max_positions = j.get_positive_int("max_position_embeddings", 512);
    c.pad = config_input_token_id(j, "pad_token_id", 0, c.vocab_size);
    c.dropout = j.get_float("dropout", 0.1);
    c.attention_dropout = j.get_float("attention_dropout", 0.1);
    c.qa_dropout = j.get_float("qa_dropout", 0.1);
    c.seq_classif_dropout = j.get_float("seq_classif_dropout", 0.2);
    c.init_std = j.get_float("initializer_range", 0.02);
    c.act = j.get_string("activation", "gelu");
    c.sinusoidal = j.get_bool("sinusoidal_pos_embds", false);
    c.num_labels = config_num_labels(j);
    c.head_dim = config_head_dim(j, "dim", c.dim, "n_heads", c.heads);
    c.shapes = parse_layer_shapes(j, c.layers, c.heads, c.hidden_dim);
    return c;
  }
};

class DistilLayerImpl : public torch::nn::Module {
 public:
  DistilLayerImpl(const DistilConfig& c, int64_t index) : num_heads(c.shapes.heads[index]), c_(c) {
    const int64_t attn_width = num_heads * c.head_dim, ffn_width = c.shapes.ffn[index];
    auto attn = register_module("attention", std::make_shared<torch::nn::Module>());
    q_lin = attn->register_module("q_lin", nn::make_linear(c.dim, attn_width));
    k_lin = attn->register_module("k_lin", nn::make_linear(c.dim, attn_width));
    v_lin = attn->register_module("v_lin", nn::make_linear(c.dim, attn_width));
    out_lin = attn->register_module("out_lin", nn::make_linear(attn_width, c.dim));
    sa_layer_norm = register_module("sa_layer_norm", nn::LayerNorm(c.dim, kDistilLayerNormEps));
    auto ffn = register_module("ffn", std::make_shared<torch::nn::Module>());
    lin1 = ffn->register_module("lin1", nn::make_linear(c.dim, ffn_width));
    lin2 = ffn->register_module("lin2", nn::make_linear(ffn_width, c.dim));
    output_layer_norm = register_module("output_layer_norm", nn::LayerNorm(c.dim, kDistilLayerNormEps));
    act_ = nn::activation_by_name(c.act, "config.json activation");
  }

  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& allowed, torch::Tensor* probs) {
    auto h = sa_layer_norm(attention(x, allowed, probs) + x);
    auto f = torch::dropout(lin2(act_(lin1(h))), c_.dropout, is_training());
    return output_layer_norm(f + h);
  }

  nn::Linear q_lin{nullptr}, k_lin{nullptr}, v_lin{nullptr}, out_lin{nullptr}, lin1{nullptr}, lin2{nullptr};
  nn::LayerNorm sa_layer_norm{nullptr}, output_layer_norm{nullptr};
  int64_t num_heads;

 private:
  // The attention block's output (out_lin's bias alone once every head is pruned).
  torch::Tensor attention(const torch::Tensor& x, const torch::Tensor& allowed, torch::Tensor* probs) {
    if (num_heads == 0) {
      if (probs) *probs = torch::zeros({x.size(0), 0, x.size(1), x.size(1)}, x.options());
      return out_lin->bias.expand_as(x);
    }
    auto q = nn::split_heads(q_lin(x), num_heads), k = nn::split_heads(k_lin(x), num_heads),
         v = nn::split_heads(v_lin(x), num_heads);
    double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
    auto r = nn::dot_product_attention(q, k, v, allowed, scale, c_.attention_dropout, is_training(), probs != nullptr);
    if (probs) *probs = r.probs;
    return out_lin(nn::merge_heads(r.context));
  }

  DistilConfig c_;
  nn::Activation act_;
};
TORCH_MODULE(DistilLayer);

class DistilBertModel : public TransformerModel {
 public:
  enum class Head { kBase, kSequenceClassification, kMaskedLM, kTokenClassification, kQuestionAnswering };

  DistilBertModel(const DistilConfig& c, const std::string& head_class, Head head)
      : TransformerModel(make_info(c, head_class, head)), c_(c), head_(head) {
    auto base = register_module("distilbert", std::make_shared<torch::nn::Module>());
    auto emb = base->register_module("embeddings", std::make_shared<torch::nn::Module>());
    word_embeddings = emb->register_module("word_embeddings", nn::Embedding(c.vocab_size, c.dim, c.pad));
    position_embeddings = emb->register_module("position_embeddings", nn::Embedding(c.max_positions, c.dim));
    emb_norm = emb->register_module("LayerNorm", nn::LayerNorm(c.dim, kDistilLayerNormEps));
    auto transformer = base->register_module("transformer", std::make_shared<torch::nn::Module>());
    auto list = transformer->register_module("layer", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.layers; ++i) {
      layers.push_back(DistilLayer(c, i));
      list->push_back(layers.back());
    }
    switch (head) {
      case Head::kBase: break;
      case Head::kSequenceClassification:
        pre_classifier = register_module("pre_classifier", nn::make_linear(c.dim, c.dim));
        classifier = register_module("classifier", nn::make_linear(c.dim, c.num_labels));
        break;
      case Head::kTokenClassification: classifier = register_module("classifier", nn::make_linear(c.dim, c.num_labels)); break;
      case Head::kQuestionAnswering: classifier = register_module("qa_outputs", nn::make_linear(c.dim, c.num_labels)); break;
      case Head::kMaskedLM:
        vocab_transform = register_module("vocab_transform", nn::make_linear(c.dim, c.dim));
        vocab_layer_norm = register_module("vocab_layer_norm", nn::LayerNorm(c.dim, kDistilLayerNormEps));
        auto projector = register_module("vocab_projector", std::make_shared<torch::nn::Module>());
        vocab_bias = projector->register_parameter("bias", torch::zeros({c.vocab_size}));
        act_ = nn::activation_by_name(c.act, "config.json activation");
        break;
    }
  }

  // Heads, FFN neurons and hidden dims (embeddings, every post-LN norm, the Linears reading and
  // writing the stream, the heads' readers and the MLM transform, which also writes the tied space).
  ModelStructure structure() override {
    ModelStructure s;
    for (size_t i = 0; i < layers.size(); ++i) {
      auto& l = layers[i];
      s.attention.push_back({static_cast<int64_t>(i), l->num_heads, c_.head_dim, {l->q_lin, l->k_lin, l->v_lin}, {}, l->out_lin});
      s.ffn.push_back({static_cast<int64_t>(i), {l->lin1}, l->lin2});
      s.hidden.norms.insert(s.hidden.norms.end(), {l->sa_layer_norm, l->output_layer_norm});
      s.hidden.readers.insert(s.hidden.readers.end(), {l->q_lin, l->k_lin, l->v_lin, l->lin1});
      s.hidden.writers.insert(s.hidden.writers.end(), {l->out_lin, l->lin2});
    }
    s.hidden.embeddings = {word_embeddings, position_embeddings};
    s.hidden.norms.push_back(emb_norm);
    for (auto lin : {pre_classifier, classifier, vocab_transform})
      if (lin) s.hidden.readers.push_back(lin);
    // pre_classifier's output is not the stream, but HF sizes it by `dim` too: it narrows with it.
    if (pre_classifier) s.hidden.writers.push_back(pre_classifier);
    if (vocab_transform) {
      s.hidden.writers.push_back(vocab_transform);
      s.hidden.norms.push_back(vocab_layer_norm);
    }
    s.shape_keys = {{{"", "hidden_dim"}}, "dim", /*hf_pruned_heads=*/true};
    return s;
  }

  ModelOutputs forward(const ModelInputs& in) override {
    ModelOutputs out;
    auto positions = in.position_ids.defined() ? in.position_ids : default_positions(in);
    auto x = emb_norm(word_embeddings(in.input_ids) + position_embeddings(positions));
    x = torch::dropout(x, c_.dropout, is_training());
    auto allowed = nn::attention_allowed(in.attention_mask, x.size(0), x.size(1), x.size(1), /*causal=*/false);
    if (in.output_hidden_states) out.hidden_states.push_back(x);
    for (auto& layer : layers) {
      torch::Tensor probs;
      x = layer->forward(x, allowed, in.output_attentions ? &probs : nullptr);
      if (in.output_attentions) out.attentions.push_back(probs);
      if (in.output_hidden_states) out.hidden_states.push_back(x);
    }
    out.tensors["last_hidden_state"] = x;
    switch (head_) {
      case Head::kBase: break;
      case Head::kSequenceClassification: {
        auto pooled = torch::relu(pre_classifier(x.select(1, 0)));
        out.tensors["logits"] = classifier(torch::dropout(pooled, c_.seq_classif_dropout, is_training()));
        break;
      }
      case Head::kTokenClassification:
        out.tensors["logits"] = classifier(torch::dropout(x, c_.dropout, is_training()));
        break;
      case Head::kQuestionAnswering: {
        auto logits = classifier(torch::dropout(x, c_.qa_dropout, is_training()));
        out.tensors["logits"] = logits;
        if (logits.size(-1) == 2) {
          out.tensors["start_logits"] = logits.select(-1, 0).contiguous();
          out.tensors["end_logits"] = logits.select(-1, 1).contiguous();
        }
        break;
      }
      case Head::kMaskedLM: {
        auto h = vocab_layer_norm(act_(vocab_transform(in.logit_rows.defined() ? x.index({in.logit_rows}) : x)));
        out.tensors["logits"] = torch::nn::functional::linear(h, word_embeddings->weight, vocab_bias);
        break;
      }
    }
    return out;
  }

  void init_weights_extra() override {
    if (!c_.sinusoidal) return;
    // HF create_sinusoidal_embeddings: sin on even columns, cos on odd ones.
    torch::NoGradGuard no_grad;
    auto pos = torch::arange(c_.max_positions, torch::kFloat64).unsqueeze(1);
    auto j = torch::arange(c_.dim, torch::kFloat64).unsqueeze(0);
    auto angle = pos / torch::pow(10000.0, 2 * torch::floor_divide(j, 2) / static_cast<double>(c_.dim));
    auto w = position_embeddings->weight;
    w.slice(1, 0, c_.dim, 2).copy_(torch::sin(angle.slice(1, 0, c_.dim, 2)));
    w.slice(1, 1, c_.dim, 2).copy_(torch::cos(angle.slice(1, 1, c_.dim, 2)));
  }

  nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr};
  nn::LayerNorm emb_norm{nullptr}, vocab_layer_norm{nullptr};
  std::vector<DistilLayer> layers;
  nn::Linear pre_classifier{nullptr}, classifier{nullptr}, vocab_transform{nullptr};
  torch::Tensor vocab_bias;

 private:
  static ModelInfo make_info(const DistilConfig& c, const std::string& head_class, Head head) {
    ModelInfo i;
    i.model_type = "distilbert";
    i.head_class = head_class;
    i.base_prefix = "distilbert";
    i.base_is_root = head == Head::kBase;
    i.vocab_size = c.vocab_size;
    i.hidden_size = c.dim;
    i.num_layers = c.layers;
    i.max_positions = c.max_positions;
    i.init_std = c.init_std;
    i.pad_token_id = c.pad;
    return i;
  }
  DistilConfig c_;
  Head head_;
  nn::Activation act_;
};

}  // namespace

ArchSpec distilbert_arch() {
  return {.model_type = "distilbert",
          .is_decoder = false,
          .head_classes = {"DistilBertModel", "DistilBertForSequenceClassification", "DistilBertForMaskedLM",
           "DistilBertForTokenClassification", "DistilBertForQuestionAnswering"},
          .head_aliases = {},
          .build = [](const io::JsonFields& j, const std::string& head) -> std::shared_ptr<TransformerModel> {
            using H = DistilBertModel::Head;
            DistilConfig c = DistilConfig::parse(j);
            H h = head == "DistilBertForSequenceClassification" ? H::kSequenceClassification
                  : head == "DistilBertForMaskedLM"             ? H::kMaskedLM
                  : head == "DistilBertForTokenClassification"  ? H::kTokenClassification
                  : head == "DistilBertForQuestionAnswering"    ? H::kQuestionAnswering
                                                                : H::kBase;
            if (h == H::kQuestionAnswering && !j.has("num_labels") && !j.has("id2label")) c.num_labels = 2;
            return std::make_shared<DistilBertModel>(c, head, h);
          },
          .layers_module = "transformer.layer",
          .layer_count_key = "n_layers"};
}

}  // namespace sqz::models
