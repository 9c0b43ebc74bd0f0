// LLaMA: pre-RMSNorm decoder with rotary positions, grouped-query attention and a SwiGLU MLP.
// Qwen2 is the same network with biases on q/k/v only (HF generates modeling_qwen2 from
// modeling_llama), so it is this file's second model_type.
#include <cmath>

#include "io/gguf.h"
#include "io/tokenizers/gguf_vocab.h"
#include "models/registry.h"
#include "nn/attention.h"
#include "nn/layers.h"

namespace sqz::models {
namespace {

struct LlamaConfig {
  std::string model_type;  // llama | qwen2
  int64_t vocab_size, hidden, intermediate, layers, heads, kv_heads, head_dim, max_positions, num_labels;
  double eps, init_std, rope_theta, attention_dropout;
  std::string act;
  bool qkv_bias, o_bias, mlp_bias, tie;
  std::optional<int64_t> pad, bos, eos;
  torch::Tensor inv_freq;  // [head_dim / 2], after any rope_scaling
  LayerShapes shapes;      // query heads and FFN width per layer (after structured pruning)

  static LlamaConfig parse(const io::JsonFields& j, const std::string& model_type) {
    LlamaConfig c;
    c.model_type = model_type;
    const bool qwen2 = model_type == "qwen2";
    c.vocab_size = j.get_positive_int("vocab_size", 32000);
    c.hidden = j.get_positive_int("hidden_size", 4096);
    c.intermediate = j.get_positive_int("intermediate_size", 11008);
    c.layers = j.get_positive_int("num_hidden_layers", 32);
    c.heads = j.get_positive_int("num_attention_heads", 32);
    c.kv_heads = j.get_positive_int("num_key_value_heads", c.heads);
    c.head_dim = j.get_positive_int("head_dim", c.hidden / c.heads);
    c.max_positions = j.get_positive_int("max_position_embeddings", 2048);
    c.eps = j.get_float("rms_norm_eps", 1e-6);
    c.init_std = j.get_float("initializer_range", 0.02);
    c.rope_theta = j.get_float("rope_theta", 10000.0);
    c.attention_dropout = j.get_float("attention_dropout", 0.0);
    c.act = j.get_string("hidden_act", "silu");
    c.qkv_bias = qwen2 || j.get_bool("attention_bias", false);
    c.o_bias = !qwen2 && j.get_bool("attention_bias", false);
    c.mlp_bias = !qwen2 && j.get_bool("mlp_bias", false);
    c.tie = j.get_bool("tie_word_embeddings", false);
    if (qwen2 && j.get_bool("use_sliding_window", false))
      fail_unimplemented(j.source(), ": field 'use_sliding_window' = true (Qwen2 sliding-window attention) is not supported");
    c.pad = config_token_id(j, "pad_token_id");
    // LlamaConfig defaults BOS/EOS to 1/2; Qwen2Config has no defaults.
    c.bos = qwen2 ? config_token_id(j, "bos_token_id") : config_token_id(j, "bos_token_id").value_or(1);
    c.eos = qwen2 ? config_token_id(j, "eos_token_id") : config_token_id(j, "eos_token_id").value_or(2);
    c.num_labels = config_num_labels(j);
    if (c.heads % c.kv_heads != 0)
      j.fail_field("num_key_value_heads", to_text("a divisor of num_attention_heads (", c.heads, ")"));
    if (c.head_dim % 2 != 0) j.fail_field("head_dim", "an even number (rotary pairs)");
    c.inv_freq = rope_inv_freq(j, c);
    c.shapes = parse_layer_shapes(j, c.layers, c.heads, c.intermediate);
    // Under grouped-query attention heads go in whole groups: a K/V head with every query head reading it.
    const int64_t per_group = c.heads / c.kv_heads;
    for (int64_t l = 0; l < c.layers; ++l) {
      const auto& kept = c.shapes.kept_heads[l];  // ascending
      bool whole = kept.size() % per_group == 0;
      for (size_t i = 0; whole && i < kept.size(); ++i) {
        const int64_t first = kept[i - i % per_group];
        whole = first % per_group == 0 && kept[i] == first + static_cast<int64_t>(i % per_group);
      }
      if (!whole)
        j.fail_field("pruned_heads", to_text("whole key/value groups for layer ", l, ": query heads g*", per_group, " .. g*", per_group, "+",
                                             per_group - 1, " together (", c.heads, " query heads on ", c.kv_heads, " key/value heads)"));
    }
    return c;
  }

  static torch::Tensor rope_inv_freq(const io::JsonFields& j, const LlamaConfig& c) {
    auto dims = torch::arange(0, c.head_dim, 2, torch::kLong).to(torch::kFloat32) / static_cast<double>(c.head_dim);
    auto inv_freq = 1.0 / torch::pow(torch::tensor(c.rope_theta, torch::kFloat32), dims);
    if (!j.has("rope_scaling")) return inv_freq;
    io::JsonFields s(j.value()["rope_scaling"], j.source() + " rope_scaling");
    std::string type = s.has("rope_type") ? s.get_string("rope_type") : s.get_string("type", "default");
    if (type == "default") return inv_freq;
    double factor = s.get_float("factor");
    if (type == "linear") return inv_freq / factor;
    if (type == "llama3") {
      double low = s.get_float("low_freq_factor"), high = s.get_float("high_freq_factor");
      double old_len = s.get_float("original_max_position_embeddings");
      double low_wavelen = old_len / low, high_wavelen = old_len / high;
      auto wavelen = 2 * M_PI / inv_freq;
      auto scaled = torch::where(wavelen > low_wavelen, inv_freq / factor, inv_freq);
      auto smooth = (old_len / wavelen - low) / (high - low);
      auto smoothed = (1 - smooth) * scaled / factor + smooth * scaled;
      auto medium = wavelen.ge(high_wavelen).logical_and(wavelen.le(low_wavelen));
      return torch::where(medium, smoothed, scaled);
    }
    fail_unimplemented(j.source(), ": rope_scaling type '", type, "' is not supported (default, linear, llama3)");
  }
};

class LlamaLayerImpl : public torch::nn::Module {
 public:
  LlamaLayerImpl(const LlamaConfig& c, int64_t index)
      : num_heads(c.shapes.heads[index]),
        num_kv_heads(c.shapes.heads[index] / (c.heads / c.kv_heads)),
        c_(c),
        index_(index) {
    auto attn = register_module("self_attn", std::make_shared<torch::nn::Module>());
    const int64_t ffn = c.shapes.ffn[index];
    q_proj = attn->register_module("q_proj", nn::make_linear(c.hidden, num_heads * c.head_dim, c.qkv_bias));
    k_proj = attn->register_module("k_proj", nn::make_linear(c.hidden, num_kv_heads * c.head_dim, c.qkv_bias));
    v_proj = attn->register_module("v_proj", nn::make_linear(c.hidden, num_kv_heads * c.head_dim, c.qkv_bias));
    o_proj = attn->register_module("o_proj", nn::make_linear(num_heads * c.head_dim, c.hidden, c.o_bias));
    auto mlp = register_module("mlp", std::make_shared<torch::nn::Module>());
    gate_proj = mlp->register_module("gate_proj", nn::make_linear(c.hidden, ffn, c.mlp_bias));
    up_proj = mlp->register_module("up_proj", nn::make_linear(c.hidden, ffn, c.mlp_bias));
    down_proj = mlp->register_module("down_proj", nn::make_linear(ffn, c.hidden, c.mlp_bias));
    input_layernorm = register_module("input_layernorm", nn::RMSNorm(c.hidden, c.eps));
    post_attention_layernorm = register_module("post_attention_layernorm", nn::RMSNorm(c.hidden, c.eps));
    act_ = nn::activation_by_name(c.act, "config.json hidden_act");
  }

  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& allowed, KVCache* cache, torch::Tensor* probs) {
    auto y = num_heads == 0 ? attention_bias_only(x, probs) : x + attention(x, cos, sin, allowed, cache, probs);
    auto m = post_attention_layernorm(y);
    return y + down_proj(act_(gate_proj(m)) * up_proj(m));
  }

  nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
  nn::RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  int64_t num_heads, num_kv_heads;

 private:
  torch::Tensor attention(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin, const torch::Tensor& allowed,
                          KVCache* cache, torch::Tensor* probs) {
    auto h = input_layernorm(x);
    auto q = nn::split_heads(q_proj(h), num_heads), k = nn::split_heads(k_proj(h), num_kv_heads),
         v = nn::split_heads(v_proj(h), num_kv_heads);
    q = nn::apply_rotary(q, cos, sin);
    k = nn::apply_rotary(k, cos, sin);
    if (cache) std::tie(k, v) = cache->update(index_, k, v);
    double scale = 1.0 / std::sqrt(static_cast<double>(c_.head_dim));
    auto r = nn::dot_product_attention(q, k, v, allowed, scale, c_.attention_dropout, is_training(), probs != nullptr);
    if (probs) *probs = r.probs;
    return o_proj(nn::merge_heads(r.context));
  }
  // Every head pruned: the attention block adds only o_proj's bias (if it has one).
  torch::Tensor attention_bias_only(const torch::Tensor& x, torch::Tensor* probs) {
    if (probs) *probs = torch::zeros({x.size(0), 0, x.size(1), x.size(1)}, x.options());
    return o_proj->bias.defined() ? x + o_proj->bias : x;
  }

  LlamaConfig c_;
  int64_t index_;
  nn::Activation act_;
};
TORCH_MODULE(LlamaLayer);

class LlamaModel : public TransformerModel {
 public:
  enum class Head { kBase, kLM, kSequenceClassification };

  LlamaModel(const LlamaConfig& c, const std::string& head_class, Head head)
      : TransformerModel(make_info(c, head_class, head)), c_(c), head_(head) {
    auto model = register_module("model", std::make_shared<torch::nn::Module>());
    embed_tokens = model->register_module("embed_tokens", nn::Embedding(c.vocab_size, c.hidden, c.pad));
    auto list = model->register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.layers; ++i) {
      layers.push_back(LlamaLayer(c, i));
      list->push_back(layers.back());
    }
    norm = model->register_module("norm", nn::RMSNorm(c.hidden, c.eps));
    if (head == Head::kLM && !c.tie)
      lm_head = register_module("lm_head", nn::make_linear(c.hidden, c.vocab_size, false));
    if (head == Head::kSequenceClassification)
      score = register_module("score", nn::make_linear(c.hidden, c.num_labels, false));
  }

  // Heads (grouped-query attention: K/V heads with their query heads), SwiGLU neurons (gate and
  // up rows, down columns) and the RMSNorms SmoothQuant folds into. Hidden dims are not described:
  // RMSNorm has no keep mask yet.
  ModelStructure structure() override {
    ModelStructure s;
    for (size_t i = 0; i < layers.size(); ++i) {
      auto& l = layers[i];
      s.attention.push_back({static_cast<int64_t>(i), l->num_heads, c_.head_dim, {l->q_proj, l->k_proj, l->v_proj}, {}, l->o_proj,
                             l->num_kv_heads});
      s.ffn.push_back({static_cast<int64_t>(i), {l->gate_proj, l->up_proj}, l->down_proj});
      s.smoothable.push_back({l->input_layernorm->weight, {}, {l->q_proj, l->k_proj, l->v_proj}});
      s.smoothable.push_back({l->post_attention_layernorm->weight, {}, {l->gate_proj, l->up_proj}});
    }
    s.shape_keys = {{{"", "intermediate_size"}}, "hidden_size", /*hf_pruned_heads=*/false};
    return s;
  }

  torch::Tensor rotary_inv_freq() const override { return c_.inv_freq; }

  ModelOutputs forward(const ModelInputs& in) override {
    ModelOutputs out;
    int64_t b = in.input_ids.size(0), t = in.input_ids.size(1);
    int64_t past = in.cache ? in.cache->length() : 0;
    auto positions = in.position_ids.defined() ? in.position_ids : default_positions(in);
    // cos/sin as HF: angles in fp32, [B, 1, T, head_dim] to broadcast over heads.
    auto freqs = positions.to(torch::kFloat32).unsqueeze(-1) * c_.inv_freq.view({1, 1, -1});
    auto emb = torch::cat({freqs, freqs}, -1).unsqueeze(1);
    auto cos = emb.cos(), sin = emb.sin();
    auto x = embed_tokens(in.input_ids);
    auto allowed = nn::attention_allowed(in.attention_mask, b, t, past + t, /*causal=*/true);
    for (auto& layer : layers) {
      if (in.output_hidden_states) out.hidden_states.push_back(x);
      torch::Tensor probs;
      x = layer->forward(x, cos, sin, allowed, in.cache, in.output_attentions ? &probs : nullptr);
      if (in.output_attentions) out.attentions.push_back(probs);
    }
    x = norm(x);
    if (in.output_hidden_states) out.hidden_states.push_back(x);
    out.tensors["last_hidden_state"] = x;
    if (head_ == Head::kLM)
      out.tensors["logits"] = lm_head ? lm_head(x) : torch::nn::functional::linear(x, embed_tokens->weight);
    if (head_ == Head::kSequenceClassification) out.tensors["logits"] = pool_last_token(score(x), in.input_ids, c_.pad);
    return out;
  }

  nn::Embedding embed_tokens{nullptr};
  std::vector<LlamaLayer> layers;
  nn::RMSNorm norm{nullptr};
  nn::Linear lm_head{nullptr}, score{nullptr};

 private:
  static ModelInfo make_info(const LlamaConfig& c, const std::string& head_class, Head head) {
    ModelInfo i;
    i.model_type = c.model_type;
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
  LlamaConfig c_;
  Head head_;
};


// llama.cpp stores q_proj and k_proj rows interleaved per head for its rotary kernel (convert_hf_to_gguf's
// permute); this puts each head's rows back into HF's rotate-half order.
torch::Tensor unpermute_rope_rows(const torch::Tensor& w, int64_t heads) {
  auto shape = w.sizes().vec();
  std::vector<int64_t> split = {heads, shape[0] / heads / 2, 2};
  split.insert(split.end(), shape.begin() + 1, shape.end());
  return w.reshape(split).transpose(1, 2).reshape(shape).contiguous();
}

io::json llama_config_from_gguf(const io::GgufFile& g) {
  const io::JsonFields& m = g.metadata();
  const int64_t layers = m.get_positive_int("llama.block_count"), hidden = m.get_positive_int("llama.embedding_length");
  const int64_t heads = m.get_positive_int("llama.attention.head_count");
  const int64_t kv_heads = m.has("llama.attention.head_count_kv") ? m.get_positive_int("llama.attention.head_count_kv") : heads;
  if (heads % kv_heads != 0) m.fail_field("llama.attention.head_count_kv", to_text("a divisor of head_count (", heads, ")"));
  if (!m.has("llama.attention.key_length") && hidden % heads != 0)
    m.fail_field("llama.attention.head_count", to_text("a divisor of embedding_length (", hidden, ")"));
  const int64_t head_dim = m.has("llama.attention.key_length") ? m.get_positive_int("llama.attention.key_length") : hidden / heads;
  if (m.has("llama.rope.dimension_count") && m.get_int("llama.rope.dimension_count") != head_dim)
    fail_unimplemented(m.source(), ": llama.rope.dimension_count ", m.get_int("llama.rope.dimension_count"),
                       " differs from the head size ", head_dim, " (partial rotary is not a Llama)");
  const io::GgufTensorInfo* embed = g.find("token_embd.weight");
  if (!embed || embed->dims.size() != 2) fail_data(g.path().string(), ": no 2-D tensor 'token_embd.weight'");
  const int64_t vocab = embed->dims[1];
  if (m.has("llama.vocab_size") && m.get_int("llama.vocab_size") != vocab)
    m.fail_field("llama.vocab_size", to_text(vocab, " (the rows of token_embd.weight)"));
  io::json c = {{"architectures", io::json::array({"LlamaForCausalLM"})},
                {"model_type", "llama"},
                {"hidden_act", "silu"},
                {"vocab_size", vocab},
                {"hidden_size", hidden},
                {"intermediate_size", m.get_positive_int("llama.feed_forward_length")},
                {"num_hidden_layers", layers},
                {"num_attention_heads", heads},
                {"num_key_value_heads", kv_heads},
                {"head_dim", head_dim},
                {"max_position_embeddings", m.get_int("llama.context_length", 2048)},
                {"rms_norm_eps", m.get_float("llama.attention.layer_norm_rms_epsilon", 1e-5)},
                {"rope_theta", m.get_float("llama.rope.freq_base", 10000.0)},
                {"attention_bias", g.find("blk.0.attn_q.bias") != nullptr},
                {"mlp_bias", false},
                {"tie_word_embeddings", g.find("output.weight") == nullptr},
                {"initializer_range", 0.02}};
  const std::string scaling = m.get_string("llama.rope.scaling.type", "none");
  if (scaling == "linear") c["rope_scaling"] = {{"rope_type", "linear"}, {"factor", m.get_float("llama.rope.scaling.factor")}};
  else if (scaling != "none") fail_unimplemented(m.source(), ": llama.rope.scaling.type '", scaling, "' is not supported (none, linear)");
  if (g.find("rope_freqs.weight"))
    fail_unimplemented(g.path().string(), ": tensor 'rope_freqs.weight' (Llama 3.1 rope scaling factors) is not imported yet");
  for (const auto& [role, id] : io::gguf_special_token_ids(m, vocab))
    if (role == "bos" || role == "eos" || role == "pad") c[role + "_token_id"] = id;
  return c;
}

GgufConversion llama_from_gguf(const io::GgufFile& g) {
  GgufConversion conv;
  conv.config = llama_config_from_gguf(g);
  const int64_t layers = conv.config["num_hidden_layers"], heads = conv.config["num_attention_heads"],
                kv_heads = conv.config["num_key_value_heads"];
  const std::map<std::string, std::string> top = {
      {"token_embd.weight", "model.embed_tokens.weight"}, {"output_norm.weight", "model.norm.weight"}, {"output.weight", "lm_head.weight"}};
  const std::map<std::string, std::string> block = {
      {"attn_norm", "input_layernorm"}, {"ffn_norm", "post_attention_layernorm"}, {"attn_q", "self_attn.q_proj"},
      {"attn_k", "self_attn.k_proj"},   {"attn_v", "self_attn.v_proj"},           {"attn_output", "self_attn.o_proj"},
      {"ffn_gate", "mlp.gate_proj"},    {"ffn_up", "mlp.up_proj"},                {"ffn_down", "mlp.down_proj"}};
  for (const auto& t : g.tensors()) {
    if (auto it = top.find(t.name); it != top.end()) {
      conv.tensors[t.name] = {it->second, nullptr};
      continue;
    }
    // blk.<layer>.<part>.<weight|bias>
    const auto first = t.name.find('.', 4), last = t.name.rfind('.');
    bool ok = t.name.rfind("blk.", 0) == 0 && first != std::string::npos && last > first;
    int64_t layer = -1;
    if (ok) {
      const std::string digits = t.name.substr(4, first - 4);
      ok = !digits.empty() && digits.size() < 6 && digits.find_first_not_of("0123456789") == std::string::npos;
      if (ok) layer = std::stoll(digits);
    }
    const std::string part = ok ? t.name.substr(first + 1, last - first - 1) : "", leaf = t.name.substr(last + 1);
    auto it = block.find(part);
    if (!ok || it == block.end() || (leaf != "weight" && leaf != "bias"))
      fail_unimplemented(g.path().string(), ": tensor '", t.name, "' has no Llama counterpart");
    if (layer >= layers) fail_data(g.path().string(), ": tensor '", t.name, "' is beyond llama.block_count (", layers, ")");
    GgufConversion::Target target{to_text("model.layers.", layer, ".", it->second, ".", leaf), nullptr};
    if (part == "attn_q" || part == "attn_k") {
      const int64_t n = part == "attn_q" ? heads : kv_heads;
      target.relayout = [n](const torch::Tensor& w) { return unpermute_rope_rows(w, n); };
    }
    conv.tensors[t.name] = target;
  }
  return conv;
}

// The inverse of unpermute_rope_rows: HF's rotate-half rows in llama.cpp's interleaved order.
torch::Tensor permute_rope_rows(const torch::Tensor& w, int64_t heads) {
  auto shape = w.sizes().vec();
  std::vector<int64_t> split = {heads, 2, shape[0] / heads / 2};
  split.insert(split.end(), shape.begin() + 1, shape.end());
  return w.reshape(split).transpose(1, 2).reshape(shape).contiguous();
}

// convert_hf_to_gguf's reading of a Llama config.json, and llama_from_gguf's names backwards.
GgufExportPlan llama_to_gguf(const io::JsonFields& j) {
  const LlamaConfig c = LlamaConfig::parse(j, "llama");
  if (c.shapes.heads != std::vector<int64_t>(c.layers, c.heads) || c.shapes.ffn != std::vector<int64_t>(c.layers, c.intermediate))
    fail_unimplemented(j.source(), ": a structurally pruned Llama (per-layer heads or FFN widths) cannot be written as GGUF");
  if (c.mlp_bias) fail_unimplemented(j.source(), ": field 'mlp_bias' = true has no llama.cpp tensor");
  if (c.act != "silu") fail_unimplemented(j.source(), ": field 'hidden_act' = '", c.act, "'; llama.cpp's llama runs silu");
  GgufExportPlan plan;
  auto u32 = [](int64_t v) { return io::GgufValue(static_cast<uint32_t>(v)); };
  plan.metadata = {{"general.architecture", std::string("llama")},
                   {"llama.vocab_size", u32(c.vocab_size)},
                   {"llama.context_length", u32(c.max_positions)},
                   {"llama.embedding_length", u32(c.hidden)},
                   {"llama.block_count", u32(c.layers)},
                   {"llama.feed_forward_length", u32(c.intermediate)},
                   {"llama.attention.head_count", u32(c.heads)},
                   {"llama.attention.head_count_kv", u32(c.kv_heads)},
                   {"llama.attention.key_length", u32(c.head_dim)},
                   {"llama.attention.value_length", u32(c.head_dim)},
                   {"llama.rope.dimension_count", u32(c.head_dim)},
                   {"llama.rope.freq_base", static_cast<float>(c.rope_theta)},
                   {"llama.attention.layer_norm_rms_epsilon", static_cast<float>(c.eps)}};
  if (j.has("rope_scaling") && !j.value()["rope_scaling"].is_null()) {
    io::JsonFields sc(j.value()["rope_scaling"], j.source() + " rope_scaling");
    const std::string type = sc.has("rope_type") ? sc.get_string("rope_type") : sc.get_string("type", "default");
    if (type == "linear") {
      plan.metadata.emplace_back("llama.rope.scaling.type", std::string("linear"));
      plan.metadata.emplace_back("llama.rope.scaling.factor", static_cast<float>(sc.get_float("factor")));
    } else if (type != "default") {
      fail_unimplemented(j.source(), ": rope_scaling type '", type, "' is not written to GGUF (default, linear)");
    }
  }
  plan.tensors["model.embed_tokens.weight"] = {"token_embd.weight", nullptr};
  plan.tensors["model.norm.weight"] = {"output_norm.weight", nullptr};
  if (!c.tie) plan.tensors["lm_head.weight"] = {"output.weight", nullptr};
  const std::vector<std::pair<std::string, std::string>> block = {
      {"input_layernorm", "attn_norm"}, {"post_attention_layernorm", "ffn_norm"}, {"self_attn.q_proj", "attn_q"},
      {"self_attn.k_proj", "attn_k"},   {"self_attn.v_proj", "attn_v"},           {"self_attn.o_proj", "attn_output"},
      {"mlp.gate_proj", "ffn_gate"},    {"mlp.up_proj", "ffn_up"},                {"mlp.down_proj", "ffn_down"}};
  for (int64_t l = 0; l < c.layers; ++l)
    for (const auto& [hf, gg] : block)
      for (const char* leaf : {"weight", "bias"}) {
        GgufConversion::Target t{to_text("blk.", l, ".", gg, ".", leaf), nullptr};
        if (gg == "attn_q" || gg == "attn_k") {
          const int64_t n = gg == "attn_q" ? c.heads : c.kv_heads;
          t.relayout = [n](const torch::Tensor& w) { return permute_rope_rows(w, n); };
        }
        plan.tensors[to_text("model.layers.", l, ".", hf, ".", leaf)] = t;
      }
  return plan;
}

// The family's two model_types differ only in their config reading and HF class prefix.
ArchSpec llama_family_arch(const std::string& model_type, const std::string& prefix) {
  return {.model_type = model_type,
          .is_decoder = true,
          .head_classes = {prefix + "Model", prefix + "ForCausalLM", prefix + "ForSequenceClassification"},
          .head_aliases = {},
          .build = [model_type, prefix](const io::JsonFields& j, const std::string& head) -> std::shared_ptr<TransformerModel> {
            using H = LlamaModel::Head;
            H h = head == prefix + "ForCausalLM" ? H::kLM : head == prefix + "ForSequenceClassification" ? H::kSequenceClassification : H::kBase;
            return std::make_shared<LlamaModel>(LlamaConfig::parse(j, model_type), head, h);
          },
          .layers_module = "layers",
          .layer_count_key = "num_hidden_layers"};
}

}  // namespace

ArchSpec llama_arch() {
  ArchSpec a = llama_family_arch("llama", "Llama");
  a.gguf_architecture = "llama";
  a.from_gguf = llama_from_gguf;
  a.to_gguf = llama_to_gguf;
  return a;
}

ArchSpec qwen2_arch() { return llama_family_arch("qwen2", "Qwen2"); }

}  // namespace sqz::models
