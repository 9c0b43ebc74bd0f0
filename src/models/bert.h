// BERT-style post-LN encoder, shared by the bert and roberta families (their modules and HF
// names are the same; roberta differs in position ids and heads).
#pragma once
#include "models/model.h"
#include "nn/attention.h"
#include "nn/layers.h"

namespace sqz::models {

struct BertConfig {
  int64_t vocab_size, hidden_size, num_layers, num_heads, intermediate_size;
  int64_t max_positions, type_vocab_size;
  double layer_norm_eps, hidden_dropout, attention_dropout;
  std::optional<double> classifier_dropout;
  std::string hidden_act;
  int64_t pad_token_id;
  double initializer_range;
  int64_t num_labels;
  bool roberta_positions = false;  // position ids count real tokens from pad_token_id + 1
  // Per layer after structured pruning: heads kept (HF's config.pruned_heads) and FFN width
  // (sqz_intermediate_sizes, which HF configs cannot express).
  std::vector<int64_t> layer_heads, layer_intermediate;
  // hidden_size / num_attention_heads, unless hidden dimensions were pruned (sqz_attention_head_size).
  int64_t head_dim = 0;
  static BertConfig parse(const io::JsonFields& config, int64_t default_pad, int64_t default_type_vocab);
};

class BertEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit BertEmbeddingsImpl(const BertConfig& c);
  torch::Tensor forward(const torch::Tensor& input_ids, torch::Tensor token_type_ids, torch::Tensor position_ids);
  nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr}, token_type_embeddings{nullptr};
  nn::LayerNorm LayerNorm{nullptr};

 private:
  BertConfig c_;
};
TORCH_MODULE(BertEmbeddings);

class BertLayerImpl : public torch::nn::Module {
 public:
  BertLayerImpl(const BertConfig& c, int64_t index);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& allowed, torch::Tensor* probs);
  nn::Linear query{nullptr}, key{nullptr}, value{nullptr}, attn_out{nullptr}, ffn_in{nullptr}, ffn_out{nullptr};
  nn::LayerNorm attn_norm{nullptr}, ffn_norm{nullptr};
  int64_t num_heads;  // per layer: fewer after head pruning (0 = the attention block only adds its bias)
  int64_t head_dim;

 private:
  BertConfig c_;
  nn::Activation act_;
};
TORCH_MODULE(BertLayer);

// embeddings + encoder (+ pooler): HF's BertModel / RobertaModel under `prefix`.
class BertBackboneImpl : public torch::nn::Module {
 public:
  BertBackboneImpl(const BertConfig& c, bool with_pooler);
  ModelOutputs forward(const ModelInputs& in);
  BertEmbeddings embeddings{nullptr};
  std::vector<BertLayer> layers;
  nn::Linear pooler{nullptr};
};
TORCH_MODULE(BertBackbone);

}  // namespace sqz::models
