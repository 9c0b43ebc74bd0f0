#include "models/bert.h"

#include <cmath>
#include <set>

#include "models/registry.h"

namespace sqz::models {

BertConfig BertConfig::parse(const io::JsonFields& j, int64_t default_pad, int64_t default_type_vocab) {
  BertConfig c;
  c.vocab_size = j.get_positive_int("vocab_size", 30522);
  c.hidden_size = j.get_positive_int("hidden_size", 768);
  c.num_layers = j.get_positive_int("num_hidden_layers", 12);
  c.num_heads = j.get_positive_int("num_attention_heads", 12);
  c.intermediate_size = j.get_positive_int("intermediate_size", 3072);
  c.max_positions = j.get_positive_int("max_position_embeddings", 512);
  c.type_vocab_size = j.get_positive_int("type_vocab_size", default_type_vocab);
  c.layer_norm_eps = j.get_float("layer_norm_eps", 1e-12);
  c.hidden_dropout = j.get_float("hidden_dropout_prob", 0.1);
  c.attention_dropout = j.get_float("attention_probs_dropout_prob", 0.1);
  if (j.has("classifier_dropout")) c.classifier_dropout = j.get_float("classifier_dropout");
  c.hidden_act = j.get_string("hidden_act", "gelu");
  c.pad_token_id = config_input_token_id(j, "pad_token_id", default_pad, c.vocab_size);
  c.initializer_range = j.get_float("initializer_range", 0.02);
  c.num_labels = config_num_labels(j);
  c.head_dim = config_head_dim(j, "hidden_size", c.hidden_size, "num_attention_heads", c.num_heads);
  auto shapes = parse_layer_shapes(j, c.num_layers, c.num_heads, c.intermediate_size);
  c.layer_heads = shapes.heads;
  c.layer_intermediate = shapes.ffn;
  std::string pos = j.get_string("position_embedding_type", "absolute");
  if (pos != "absolute")
    fail_unimplemented(j.source(), ": field 'position_embedding_type' = '", pos, "' is not supported (only 'absolute')");
  return c;
}

BertEmbeddingsImpl::BertEmbeddingsImpl(const BertConfig& c) : c_(c) {
  word_embeddings = register_module("word_embeddings", nn::Embedding(c.vocab_size, c.hidden_size, c.pad_token_id));
  position_embeddings = register_module(
      "position_embeddings",
      nn::Embedding(c.max_positions, c.hidden_size, c.roberta_positions ? std::optional<int64_t>(c.pad_token_id) : std::nullopt));
  token_type_embeddings = register_module("token_type_embeddings", nn::Embedding(c.type_vocab_size, c.hidden_size));
  LayerNorm = register_module("LayerNorm", nn::LayerNorm(c.hidden_size, c.layer_norm_eps));
}

torch::Tensor BertEmbeddingsImpl::forward(const torch::Tensor& ids, torch::Tensor types, torch::Tensor positions) {
  if (!positions.defined()) {
    if (c_.roberta_positions) {
      // RoBERTa: padding tokens keep position pad_token_id; real tokens count up from it.
      auto real = ids.ne(c_.pad_token_id).to(torch::kLong);
      positions = torch::cumsum(real, 1) * real + c_.pad_token_id;
    } else {
      positions = torch::arange(ids.size(1), torch::kLong).unsqueeze(0).expand_as(ids);
    }
  }
  if (!types.defined()) types = torch::zeros_like(ids);
  auto x = word_embeddings(ids) + token_type_embeddings(types) + position_embeddings(positions);
  x = LayerNorm(x);
  return torch::dropout(x, c_.hidden_dropout, is_training());
}

BertLayerImpl::BertLayerImpl(const BertConfig& c, int64_t index)
    : num_heads(c.layer_heads[index]), head_dim(c.head_dim), c_(c) {
  const int64_t attn = num_heads * head_dim, ffn = c.layer_intermediate[index];
  auto attention = register_module("attention", std::make_shared<torch::nn::Module>());
  auto self = attention->register_module("self", std::make_shared<torch::nn::Module>());
  query = self->register_module("query", nn::make_linear(c.hidden_size, attn));
  key = self->register_module("key", nn::make_linear(c.hidden_size, attn));
  value = self->register_module("value", nn::make_linear(c.hidden_size, attn));
  auto attn_output = attention->register_module("output", std::make_shared<torch::nn::Module>());
  attn_out = attn_output->register_module("dense", nn::make_linear(attn, c.hidden_size));
  attn_norm = attn_output->register_module("LayerNorm", nn::LayerNorm(c.hidden_size, c.layer_norm_eps));
  auto intermediate = register_module("intermediate", std::make_shared<torch::nn::Module>());
  ffn_in = intermediate->register_module("dense", nn::make_linear(c.hidden_size, ffn));
  auto output = register_module("output", std::make_shared<torch::nn::Module>());
  ffn_out = output->register_module("dense", nn::make_linear(ffn, c.hidden_size));
  ffn_norm = output->register_module("LayerNorm", nn::LayerNorm(c.hidden_size, c.layer_norm_eps));
  act_ = nn::activation_by_name(c.hidden_act, "config.json hidden_act");
}

torch::Tensor BertLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& allowed, torch::Tensor* probs) {
  if (num_heads == 0) {  // every head pruned: the block adds only its output bias
    if (probs) *probs = torch::zeros({x.size(0), 0, x.size(1), x.size(1)}, x.options());
    auto h = attn_norm(attn_out->bias + x);
    auto f = torch::dropout(ffn_out(act_(ffn_in(h))), c_.hidden_dropout, is_training());
    return ffn_norm(f + h);
  }
  auto q = nn::split_heads(query(x), num_heads);
  auto k = nn::split_heads(key(x), num_heads);
  auto v = nn::split_heads(value(x), num_heads);
  double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto r = nn::dot_product_attention(q, k, v, allowed, scale, c_.attention_dropout, is_training(), probs != nullptr);
  if (probs) *probs = r.probs;
  auto a = torch::dropout(attn_out(nn::merge_heads(r.context)), c_.hidden_dropout, is_training());
  auto h = attn_norm(a + x);
  auto f = torch::dropout(ffn_out(act_(ffn_in(h))), c_.hidden_dropout, is_training());
  return ffn_norm(f + h);
}

BertBackboneImpl::BertBackboneImpl(const BertConfig& c, bool with_pooler) {
  embeddings = register_module("embeddings", BertEmbeddings(c));
  auto encoder = register_module("encoder", std::make_shared<torch::nn::Module>());
  auto list = encoder->register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_layers; ++i) {
    layers.push_back(BertLayer(c, i));
    list->push_back(layers.back());
  }
  if (with_pooler) {
    auto p = register_module("pooler", std::make_shared<torch::nn::Module>());
    pooler = p->register_module("dense", nn::make_linear(c.hidden_size, c.hidden_size));
  }
}

ModelOutputs BertBackboneImpl::forward(const ModelInputs& in) {
  ModelOutputs out;
  auto x = embeddings(in.input_ids, in.token_type_ids, in.position_ids);
  auto allowed = nn::attention_allowed(in.attention_mask, x.size(0), x.size(1), x.size(1), /*causal=*/false);
  if (in.output_hidden_states) out.hidden_states.push_back(x);
  for (auto& layer : layers) {
    torch::Tensor probs;
    x = layer->forward(x, allowed, in.output_attentions ? &probs : nullptr);
    if (in.output_attentions) out.attentions.push_back(probs);
    if (in.output_hidden_states) out.hidden_states.push_back(x);
  }
  out.tensors["last_hidden_state"] = x;
  if (pooler) out.tensors["pooler_output"] = torch::tanh(pooler(x.select(1, 0)));
  return out;
}

namespace {

ModelInfo bert_info(const BertConfig& c, const std::string& type, const std::string& head, const std::string& prefix) {
  ModelInfo i;
  i.model_type = type;
  i.head_class = head;
  i.base_prefix = prefix;
  i.vocab_size = c.vocab_size;
  i.hidden_size = c.hidden_size;
  i.num_layers = c.num_layers;
  // RoBERTa's table reserves the first pad_token_id + 1 rows.
  i.max_positions = c.roberta_positions ? c.max_positions - c.pad_token_id - 1 : c.max_positions;
  i.uses_token_type_ids = true;
  i.init_std = c.initializer_range;
  i.pad_token_id = c.pad_token_id;
  return i;
}

// One class for every BERT/RoBERTa head: which submodules exist depends on the head name.
class BertFamilyModel : public TransformerModel {
 public:
  enum class Head { kBase, kSequenceClassification, kMaskedLM, kTokenClassification, kQuestionAnswering };

  BertFamilyModel(const BertConfig& c, const std::string& type, const std::string& head_class, Head head,
                  const std::string& prefix, bool roberta)
      : TransformerModel(bert_info(c, type, head_class, prefix)), c_(c), head_(head), roberta_(roberta) {
    bool pooler = head == Head::kBase || (head == Head::kSequenceClassification && !roberta);
    info_.base_is_root = head == Head::kBase;
    backbone_ = register_module(prefix, BertBackbone(c, pooler));
    double cls_dropout = c.classifier_dropout.value_or(c.hidden_dropout);
    switch (head) {
      case Head::kBase: break;
      case Head::kSequenceClassification:
        dropout_ = cls_dropout;
        if (roberta) {
          auto cls = register_module("classifier", std::make_shared<torch::nn::Module>());
          cls_dense_ = cls->register_module("dense", nn::make_linear(c.hidden_size, c.hidden_size));
          classifier_ = cls->register_module("out_proj", nn::make_linear(c.hidden_size, c.num_labels));
        } else {
          classifier_ = register_module("classifier", nn::make_linear(c.hidden_size, c.num_labels));
        }
        break;
      case Head::kTokenClassification:
        dropout_ = cls_dropout;
        classifier_ = register_module("classifier", nn::make_linear(c.hidden_size, c.num_labels));
        break;
      case Head::kQuestionAnswering:
        classifier_ = register_module("qa_outputs", nn::make_linear(c.hidden_size, c.num_labels));
        break;
      case Head::kMaskedLM: {
        std::shared_ptr<torch::nn::Module> holder;
        if (roberta) {
          holder = register_module("lm_head", std::make_shared<torch::nn::Module>());
          cls_dense_ = holder->register_module("dense", nn::make_linear(c.hidden_size, c.hidden_size));
          mlm_norm_ = holder->register_module("layer_norm", nn::LayerNorm(c.hidden_size, c.layer_norm_eps));
          mlm_act_ = nn::activation_by_name("gelu", "");
        } else {
          auto cls = register_module("cls", std::make_shared<torch::nn::Module>());
          holder = cls->register_module("predictions", std::make_shared<torch::nn::Module>());
          auto transform = holder->register_module("transform", std::make_shared<torch::nn::Module>());
          cls_dense_ = transform->register_module("dense", nn::make_linear(c.hidden_size, c.hidden_size));
          mlm_norm_ = transform->register_module("LayerNorm", nn::LayerNorm(c.hidden_size, c.layer_norm_eps));
          mlm_act_ = nn::activation_by_name(c.hidden_act, "config.json hidden_act");
        }
        mlm_bias_ = holder->register_parameter("bias", torch::zeros({c.vocab_size}));
        break;
      }
    }
  }

  ModelStructure structure() override {
    ModelStructure s;
    for (size_t i = 0; i < backbone_->layers.size(); ++i) {
      auto& l = backbone_->layers[i];
      s.attention.push_back({static_cast<int64_t>(i), l->num_heads, l->head_dim, {l->query, l->key, l->value}, {}, l->attn_out});
      s.ffn.push_back({static_cast<int64_t>(i), {l->ffn_in}, l->ffn_out});
      s.hidden.norms.insert(s.hidden.norms.end(), {l->attn_norm, l->ffn_norm});
      s.hidden.readers.insert(s.hidden.readers.end(), {l->query, l->key, l->value, l->ffn_in});
      s.hidden.writers.insert(s.hidden.writers.end(), {l->attn_out, l->ffn_out});
    }
    auto& e = backbone_->embeddings;
    s.hidden.embeddings = {e->word_embeddings, e->position_embeddings, e->token_type_embeddings};
    s.hidden.norms.push_back(e->LayerNorm);
    // Head layers whose output lives in the hidden space (pooler, classifier/MLM transform) are
    // both readers and writers; the final classifier only reads.
    for (auto lin : {backbone_->pooler, cls_dense_})
      if (lin) {
        s.hidden.readers.push_back(lin);
        s.hidden.writers.push_back(lin);
      }
    if (mlm_norm_) s.hidden.norms.push_back(mlm_norm_);
    if (classifier_) s.hidden.readers.push_back(classifier_);
    s.shape_keys = {{{"", "intermediate_size"}}, "hidden_size", /*hf_pruned_heads=*/true};
    return s;
  }

  ModelOutputs forward(const ModelInputs& in) override {
    ModelOutputs out = backbone_->forward(in);
    const auto& h = out.tensors.at("last_hidden_state");
    switch (head_) {
      case Head::kBase: break;
      case Head::kSequenceClassification: {
        torch::Tensor x;
        if (roberta_) {
          x = torch::dropout(h.select(1, 0), dropout_, is_training());
          x = torch::tanh(cls_dense_(x));
        } else {
          x = out.tensors.at("pooler_output");
        }
        out.tensors["logits"] = classifier_(torch::dropout(x, dropout_, is_training()));
        break;
      }
      case Head::kTokenClassification:
        out.tensors["logits"] = classifier_(torch::dropout(h, dropout_, is_training()));
        break;
      case Head::kQuestionAnswering: {
        auto logits = classifier_(h);
        out.tensors["logits"] = logits;
        if (logits.size(-1) == 2) {
          out.tensors["start_logits"] = logits.select(-1, 0).contiguous();
          out.tensors["end_logits"] = logits.select(-1, 1).contiguous();
        }
        break;
      }
      case Head::kMaskedLM: {
        auto x = mlm_norm_(mlm_act_(cls_dense_(in.logit_rows.defined() ? h.index({in.logit_rows}) : h)));
        // The decoder is tied to the word embeddings, as in HF.
        out.tensors["logits"] = torch::nn::functional::linear(x, backbone_->embeddings->word_embeddings->weight, mlm_bias_);
        break;
      }
    }
    return out;
  }

 private:
  BertConfig c_;
  Head head_;
  bool roberta_;
  double dropout_ = 0;
  BertBackbone backbone_{nullptr};
  nn::Linear classifier_{nullptr}, cls_dense_{nullptr};
  nn::LayerNorm mlm_norm_{nullptr};
  nn::Activation mlm_act_;
  torch::Tensor mlm_bias_;
};

std::shared_ptr<TransformerModel> build_family(const io::JsonFields& j, const std::string& head, bool roberta) {
  using H = BertFamilyModel::Head;
  const std::string p = roberta ? "Roberta" : "Bert";
  BertConfig c = BertConfig::parse(j, roberta ? 1 : 0, roberta ? 1 : 2);
  c.roberta_positions = roberta;
  if (roberta && c.max_positions <= c.pad_token_id + 1)  // real tokens' positions start at pad_token_id + 1
    j.fail_field("max_position_embeddings", to_text("more than pad_token_id + 1 (", c.pad_token_id + 1, ")"));
  H h = head == p + "ForSequenceClassification" ? H::kSequenceClassification
        : head == p + "ForMaskedLM"            ? H::kMaskedLM
        : head == p + "ForTokenClassification" ? H::kTokenClassification
        : head == p + "ForQuestionAnswering"   ? H::kQuestionAnswering
                                               : H::kBase;
  if (h == H::kQuestionAnswering && !j.has("num_labels") && !j.has("id2label")) c.num_labels = 2;
  return std::make_shared<BertFamilyModel>(c, roberta ? "roberta" : "bert", head, h, roberta ? "roberta" : "bert", roberta);
}

}  // namespace

ArchSpec bert_arch() {
  return {.model_type = "bert",
          .is_decoder = false,
          .head_classes = {"BertModel", "BertForSequenceClassification", "BertForMaskedLM", "BertForTokenClassification",
           "BertForQuestionAnswering"},
          .head_aliases = {{"BertForPreTraining", "BertForMaskedLM"}, {"BertLMHeadModel", "BertForMaskedLM"}},
          .build = [](const io::JsonFields& j, const std::string& head) { return build_family(j, head, false); },
          .layers_module = "encoder.layer",
          .layer_count_key = "num_hidden_layers"};
}

ArchSpec roberta_arch() {
  return {.model_type = "roberta",
          .is_decoder = false,
          .head_classes = {"RobertaModel", "RobertaForSequenceClassification", "RobertaForMaskedLM", "RobertaForTokenClassification",
           "RobertaForQuestionAnswering"},
          .head_aliases = {{"RobertaForCausalLM", "RobertaForMaskedLM"}},
          .build = [](const io::JsonFields& j, const std::string& head) { return build_family(j, head, true); },
          .layers_module = "encoder.layer",
          .layer_count_key = "num_hidden_layers"};
}

}  // namespace sqz::models
