// ViT: images cut into patches by a strided convolution, a learned CLS token and position table,
// then pre-LN encoder layers (BERT's module names, LayerNorm before attention and FFN), a final
// LayerNorm, and the CLS state read by the pooler or the classifier. Positions are not interpolated:
// the image must have the config's size.
#include <cmath>

#include "core/error.h"
#include "core/format.h"
#include "models/registry.h"
#include "nn/attention.h"

namespace sqz::models {
namespace {

struct VitConfig {
  int64_t hidden, layers, heads, intermediate, image_size, patch_size, channels, num_labels, head_dim;
  double eps, hidden_dropout, attention_dropout, init_std;
  bool qkv_bias;
  std::string act;
  LayerShapes shapes;  // heads and FFN width per layer (after structured pruning)

  static VitConfig parse(const io::JsonFields& j) {
    VitConfig c;
    c.hidden = j.get_positive_int("hidden_size", 768);
    c.layers = j.get_positive_int("num_hidden_layers", 12);
    c.heads = j.get_positive_int("num_attention_heads", 12);
    c.intermediate = j.get_positive_int("intermediate_size", 3072);
    if (j.has("image_size") && !j.value()["image_size"].is_number_integer()) j.fail_field("image_size", "one integer (square images)");
    if (j.has("patch_size") && !j.value()["patch_size"].is_number_integer()) j.fail_field("patch_size", "one integer (square patches)");
    c.image_size = j.get_positive_int("image_size", 224);
    c.patch_size = j.get_positive_int("patch_size", 16);
    if (c.image_size % c.patch_size != 0) j.fail_field("image_size", to_text("a multiple of patch_size (", c.patch_size, ")"));
    c.channels = j.get_positive_int("num_channels", 3);
    c.eps = j.get_float("layer_norm_eps", 1e-12);
    c.hidden_dropout = j.get_float("hidden_dropout_prob", 0.0);
    c.attention_dropout = j.get_float("attention_probs_dropout_prob", 0.0);
    c.init_std = j.get_float("initializer_range", 0.02);
    c.qkv_bias = j.get_bool("qkv_bias", true);
    c.act = j.get_string("hidden_act", "gelu");
    c.num_labels = config_num_labels(j);
    c.head_dim = config_head_dim(j, "hidden_size", c.hidden, "num_attention_heads", c.heads);
    c.shapes = parse_layer_shapes(j, c.layers, c.heads, c.intermediate);
    return c;
  }
  int64_t num_patches() const { return (image_size / patch_size) * (image_size / patch_size); }
};

class VitLayerImpl : public torch::nn::Module {
 public:
  VitLayerImpl(const VitConfig& c, int64_t index) : num_heads(c.shapes.heads[index]), c_(c) {
    const int64_t width = num_heads * c.head_dim, ffn = c.shapes.ffn[index];
    auto attention = register_module("attention", std::make_shared<torch::nn::Module>());
    auto self = attention->register_module("attention", std::make_shared<torch::nn::Module>());
    query = self->register_module("query", nn::make_linear(c.hidden, width, c.qkv_bias));
    key = self->register_module("key", nn::make_linear(c.hidden, width, c.qkv_bias));
    value = self->register_module("value", nn::make_linear(c.hidden, width, c.qkv_bias));
    auto attention_output = attention->register_module("output", std::make_shared<torch::nn::Module>());
    attention_out = attention_output->register_module("dense", nn::make_linear(width, c.hidden));
    auto intermediate = register_module("intermediate", std::make_shared<torch::nn::Module>());
    ffn_in = intermediate->register_module("dense", nn::make_linear(c.hidden, ffn));
    auto output = register_module("output", std::make_shared<torch::nn::Module>());
    ffn_out = output->register_module("dense", nn::make_linear(ffn, c.hidden));
    layernorm_before = register_module("layernorm_before", nn::LayerNorm(c.hidden, c.eps));
    layernorm_after = register_module("layernorm_after", nn::LayerNorm(c.hidden, c.eps));
    act_ = nn::activation_by_name(c.act, "config.json hidden_act");
  }

  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* probs) {
    auto h = layernorm_before(x);
    auto q = nn::split_heads(query(h), num_heads), k = nn::split_heads(key(h), num_heads), v = nn::split_heads(value(h), num_heads);
    auto r = nn::dot_product_attention(q, k, v, {}, 1.0 / std::sqrt(static_cast<double>(c_.head_dim)), c_.attention_dropout,
                                       is_training(), probs != nullptr);
    if (probs) *probs = r.probs;
    auto y = x + torch::dropout(attention_out(nn::merge_heads(r.context)), c_.hidden_dropout, is_training());
    return y + torch::dropout(ffn_out(act_(ffn_in(layernorm_after(y)))), c_.hidden_dropout, is_training());
  }

  nn::Linear query{nullptr}, key{nullptr}, value{nullptr}, attention_out{nullptr}, ffn_in{nullptr}, ffn_out{nullptr};
  nn::LayerNorm layernorm_before{nullptr}, layernorm_after{nullptr};
  int64_t num_heads;

 private:
  VitConfig c_;
  nn::Activation act_;
};
TORCH_MODULE(VitLayer);

class VitModel : public TransformerModel {
 public:
  enum class Head { kBase, kImageClassification };

  VitModel(const VitConfig& c, const std::string& head_class, Head head)
      : TransformerModel(make_info(c, head_class, head)), c_(c), head_(head) {
    auto vit = register_module("vit", std::make_shared<torch::nn::Module>());
    auto embeddings = vit->register_module("embeddings", std::make_shared<torch::nn::Module>());
    cls_token = embeddings->register_parameter("cls_token", torch::zeros({1, 1, c.hidden}));
    position_embeddings = embeddings->register_parameter("position_embeddings", torch::zeros({1, c.num_patches() + 1, c.hidden}));
    auto patches = embeddings->register_module("patch_embeddings", std::make_shared<torch::nn::Module>());
    auto projection = patches->register_module("projection", std::make_shared<torch::nn::Module>());
    patch_weight = projection->register_parameter("weight", torch::zeros({c.hidden, c.channels, c.patch_size, c.patch_size}));
    patch_bias = projection->register_parameter("bias", torch::zeros({c.hidden}));
    auto encoder = vit->register_module("encoder", std::make_shared<torch::nn::Module>());
    auto list = encoder->register_module("layer", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.layers; ++i) {
      layers.push_back(VitLayer(c, i));
      list->push_back(layers.back());
    }
    layernorm = vit->register_module("layernorm", nn::LayerNorm(c.hidden, c.eps));
    if (head == Head::kBase) {  // HF's ViTModel adds the pooler; the classifier reads the CLS state directly
      auto pooler = vit->register_module("pooler", std::make_shared<torch::nn::Module>());
      pooler_dense = pooler->register_module("dense", nn::make_linear(c.hidden, c.hidden));
    }
    if (head == Head::kImageClassification)
      classifier = register_module("classifier", nn::make_linear(c.hidden, c.num_labels));
  }

  // Pre-LN blocks: each LayerNorm feeds only its block's Linears (smoothable). The residual stream
  // starts at the patch convolution and the CLS/position tables, which are not hidden groups here.
  ModelStructure structure() override {
    ModelStructure s;
    for (size_t i = 0; i < layers.size(); ++i) {
      auto& l = layers[i];
      s.attention.push_back({static_cast<int64_t>(i), l->num_heads, c_.head_dim, {l->query, l->key, l->value}, {}, l->attention_out});
      s.ffn.push_back({static_cast<int64_t>(i), {l->ffn_in}, l->ffn_out});
      s.smoothable.push_back({l->layernorm_before->weight, l->layernorm_before->bias, {l->query, l->key, l->value}});
      s.smoothable.push_back({l->layernorm_after->weight, l->layernorm_after->bias, {l->ffn_in}});
    }
    s.shape_keys = {{{"", "intermediate_size"}}, "hidden_size", /*hf_pruned_heads=*/true};
    return s;
  }

  ModelOutputs forward(const ModelInputs& in) override {
    if (!in.pixel_values.defined()) fail_invalid(info_.head_class, " needs pixel_values [batch, ", c_.channels, ", ", c_.image_size, ", ",
                                                 c_.image_size, "]");
    ModelOutputs out;
    auto patches = torch::conv2d(in.pixel_values.to(patch_weight.scalar_type()), patch_weight, patch_bias, {c_.patch_size, c_.patch_size})
                       .flatten(2)
                       .transpose(1, 2);
    auto x = torch::cat({cls_token.expand({patches.size(0), 1, c_.hidden}), patches}, 1) + position_embeddings;
    x = torch::dropout(x, c_.hidden_dropout, is_training());
    for (auto& layer : layers) {
      if (in.output_hidden_states) out.hidden_states.push_back(x);
      torch::Tensor probs;
      x = layer->forward(x, in.output_attentions ? &probs : nullptr);
      if (in.output_attentions) out.attentions.push_back(probs);
    }
    if (in.output_hidden_states) out.hidden_states.push_back(x);  // HF's last hidden state is before the final LayerNorm
    x = layernorm(x);
    out.tensors["last_hidden_state"] = x;
    auto cls = x.select(1, 0);
    if (pooler_dense) out.tensors["pooler_output"] = torch::tanh(pooler_dense(cls));
    if (classifier) out.tensors["logits"] = classifier(cls);
    return out;
  }

  torch::Tensor cls_token, position_embeddings, patch_weight, patch_bias;
  std::vector<VitLayer> layers;
  nn::LayerNorm layernorm{nullptr};
  nn::Linear pooler_dense{nullptr}, classifier{nullptr};

 private:
  static ModelInfo make_info(const VitConfig& c, const std::string& head_class, Head head) {
    ModelInfo i;
    i.model_type = "vit";
    i.head_class = head_class;
    i.base_prefix = "vit";
    i.base_is_root = head == Head::kBase;
    i.hidden_size = c.hidden;
    i.num_layers = c.layers;
    i.image_size = c.image_size;
    i.num_channels = c.channels;
    i.init_std = c.init_std;
    return i;
  }
  VitConfig c_;
  Head head_;
};

}  // namespace

ArchSpec vit_arch() {
  return {.model_type = "vit",
          .is_decoder = false,
          .head_classes = {"ViTModel", "ViTForImageClassification"},
          .head_aliases = {},
          .build = [](const io::JsonFields& j, const std::string& head) -> std::shared_ptr<TransformerModel> {
            using H = VitModel::Head;
            return std::make_shared<VitModel>(VitConfig::parse(j), head, head == "ViTForImageClassification" ? H::kImageClassification : H::kBase);
          },
          .layers_module = "encoder.layer",
          .layer_count_key = "num_hidden_layers"};
}

}  // namespace sqz::models
