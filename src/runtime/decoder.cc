#include "runtime/decoder.h"

#include <cmath>

#include "core/error.h"
#include "runtime/block.h"
#include "kernels/eltwise/eltwise.h"
#include "kernels/parallel.h"
#include "runtime/runtime_dir.h"

namespace sqz::runtime {

struct Decoder::Layer {
  BlockOps ops;
  std::vector<float> ln1_gamma, ln1_beta, ln2_gamma, ln2_beta;
};


Decoder::~Decoder() = default;

namespace {

// Where a family keeps what the engine reads, and how it is configured.
struct DecoderNames {
  std::string embed, positions, final_norm, layer_prefix, norm1, norm2, lm_head = "lm_head.weight";
};

DecoderNames gpt2_names() {
  return {"transformer.wte.weight", "transformer.wpe.weight", "transformer.ln_f", "transformer.h.", "ln_1", "ln_2"};
}
DecoderNames llama_names() {
  return {"model.embed_tokens.weight", "", "model.norm", "model.layers.", "input_layernorm", "post_attention_layernorm"};
}
DecoderNames neox_names() {
  return {"gpt_neox.embed_in.weight", "", "gpt_neox.final_layer_norm", "gpt_neox.layers.", "input_layernorm", "post_attention_layernorm",
          "embed_out.weight"};
}
DecoderNames opt_names() {
  return {"model.decoder.embed_tokens.weight", "model.decoder.embed_positions.weight", "model.decoder.final_layer_norm",
          "model.decoder.layers.", "self_attn_layer_norm", "final_layer_norm"};
}

}  // namespace

Decoder::Decoder(const models::LoadedModel& loaded, const EngineOptions& options) : options_(options) {
  auto& model = *loaded.model;
  const auto& info = model.info();
  const auto& config = loaded.config;
  const std::string source = (loaded.dir / "config.json").string();
  DecoderNames names;
  if (info.model_type == "gpt2" && info.head_class == "GPT2LMHeadModel") {
    names = gpt2_names();
    const std::string act = config.get_string("activation_function", "gelu_new");
    if (act != "gelu_new" && act != "gelu_pytorch_tanh" && act != "gelu")
      fail_unimplemented(source, ": field 'activation_function' = '", act, "'; the runtime runs gelu_new and gelu");
    activation_ = act == "gelu" ? kernels::Activation::kGelu : kernels::Activation::kGeluTanh;
    if (!config.get_bool("scale_attn_weights", true) || config.get_bool("scale_attn_by_inverse_layer_idx", false) ||
        config.get_bool("reorder_and_upcast_attn", false))
      fail_unimplemented(source, ": the runtime runs GPT-2's default attention scaling only (scale_attn_weights true, "
                                 "scale_attn_by_inverse_layer_idx false, reorder_and_upcast_attn false)");
    eps_ = static_cast<float>(config.get_float("layer_norm_epsilon", 1e-5));
  } else if (info.model_type == "opt" && info.head_class == "OPTForCausalLM") {
    names = opt_names();
    if (!config.get_bool("do_layer_norm_before", true))
      fail_unimplemented(source, ": field 'do_layer_norm_before' = false (post-LN OPT); the runtime runs pre-LN decoders");
    if (config.get_int("word_embed_proj_dim", info.hidden_size) != info.hidden_size)
      fail_unimplemented(source, ": field 'word_embed_proj_dim' differs from hidden_size (project_in/out); the runtime has no projection");
    if (!config.get_bool("layer_norm_elementwise_affine", true) || config.get_bool("_remove_final_layer_norm", false))
      fail_unimplemented(source, ": OPT without affine or final LayerNorms is not supported by the runtime");
    const std::string act = config.get_string("activation_function", "relu");
    if (act != "relu") fail_unimplemented(source, ": field 'activation_function' = '", act, "'; the runtime runs OPT with relu");
    activation_ = kernels::Activation::kRelu;
    position_offset_ = 2;
    positions_count_real_ = true;
  } else if ((info.model_type == "llama" && info.head_class == "LlamaForCausalLM") ||
             (info.model_type == "qwen2" && info.head_class == "Qwen2ForCausalLM")) {  // Qwen2: Llama with q/k/v biases
    names = llama_names();
    const std::string act = config.get_string("hidden_act", "silu");
    if (act != "silu") fail_unimplemented(source, ": field 'hidden_act' = '", act, "'; the runtime runs Llama with silu");
    eps_ = static_cast<float>(config.get_float("rms_norm_eps", 1e-6));
    rms_norm_ = true;
    auto inv_freq = model.rotary_inv_freq().to(torch::kFloat32).contiguous();
    inv_freq_.assign(inv_freq.data_ptr<float>(), inv_freq.data_ptr<float>() + inv_freq.numel());
    max_positions_ = config.get_int("max_position_embeddings", 2048);
  } else if (info.model_type == "gpt_neox" && info.head_class == "GPTNeoXForCausalLM") {
    names = neox_names();
    const std::string act = config.get_string("hidden_act", "gelu");
    if (act != "gelu" && act != "gelu_new" && act != "gelu_pytorch_tanh" && act != "relu")
      fail_unimplemented(source, ": field 'hidden_act' = '", act, "'; the runtime runs GPT-NeoX with gelu, gelu_new or relu");
    activation_ = act == "gelu" ? kernels::Activation::kGelu : act == "relu" ? kernels::Activation::kRelu : kernels::Activation::kGeluTanh;
    eps_ = static_cast<float>(config.get_float("layer_norm_eps", 1e-5));
    parallel_residual_ = config.get_bool("use_parallel_residual", true);
    auto inv_freq = model.rotary_inv_freq().to(torch::kFloat32).contiguous();
    inv_freq_.assign(inv_freq.data_ptr<float>(), inv_freq.data_ptr<float>() + inv_freq.numel());
    max_positions_ = config.get_int("max_position_embeddings", 2048);
  } else {
    fail_unimplemented(source, ": the runtime's decoder engine runs GPT2LMHeadModel, OPTForCausalLM, LlamaForCausalLM, Qwen2ForCausalLM ",
                       "and GPTNeoXForCausalLM; this model is ", info.model_type, " ", info.head_class);
  }

  std::map<std::string, torch::Tensor> params;
  for (const auto& p : model.named_parameters()) params[p.key()] = p.value();
  auto get = [&](const std::string& name) { return to_vector(model_tensor(params, name)); };
  const auto& wte = model_tensor(params, names.embed);
  vocab_ = wte.size(0);
  hidden_ = wte.size(1);
  wte_ = to_vector(wte);
  if (!names.positions.empty()) {
    wpe_ = get(names.positions);
    max_positions_ = static_cast<int64_t>(wpe_.size()) / hidden_ - position_offset_;
  }
  lnf_gamma_ = get(names.final_norm + ".weight");
  if (!rms_norm_) lnf_beta_ = get(names.final_norm + ".bias");

  const auto structure = model.structure();
  for (size_t i = 0; i < structure.attention.size(); ++i) {
    auto layer = std::make_unique<Layer>();
    const std::string lp = names.layer_prefix + std::to_string(i) + ".";
    layer->ops = make_block_ops(structure.attention[i], structure.ffn[i], hidden_, options.precision, lp.substr(0, lp.size() - 1));
    layer->ln1_gamma = get(lp + names.norm1 + ".weight");
    layer->ln2_gamma = get(lp + names.norm2 + ".weight");
    if (!rms_norm_) {
      layer->ln1_beta = get(lp + names.norm1 + ".bias");
      layer->ln2_beta = get(lp + names.norm2 + ".bias");
    }
    layers_.push_back(std::move(layer));
  }
  // The LM head is tied to the token embedding unless the checkpoint has its own (it is a quarter
  // of GPT-2 small's weights, so it follows the precision; 2:4 applies to the blocks only).
  auto head = params.count(names.lm_head) ? get(names.lm_head) : wte_;
  lm_head_ = std::make_unique<LinearOp>(head.data(), vocab_, hidden_, nullptr, lm_head_precision(options), "lm_head");
}

nlohmann::json Decoder::save(RuntimeDirWriter& out) const {
  const int64_t h = hidden_;
  out.add_floats("embeddings.word", wte_, {vocab_, h});
  if (!wpe_.empty()) out.add_floats("embeddings.position", wpe_, {static_cast<int64_t>(wpe_.size()) / h, h});
  if (!inv_freq_.empty()) out.add_floats("rotary.inv_freq", inv_freq_, {static_cast<int64_t>(inv_freq_.size())});
  out.add_floats("final_norm.weight", lnf_gamma_, {h});
  if (!rms_norm_) out.add_floats("final_norm.bias", lnf_beta_, {h});
  nlohmann::json layers = nlohmann::json::array();
  for (size_t i = 0; i < layers_.size(); ++i) {
    const auto& l = *layers_[i];
    const std::string p = "layers." + std::to_string(i);
    layers.push_back(save_block_ops(l.ops, out, p, h));
    out.add_floats(p + ".norm1.weight", l.ln1_gamma, {h});
    out.add_floats(p + ".norm2.weight", l.ln2_gamma, {h});
    if (!rms_norm_) {
      out.add_floats(p + ".norm1.bias", l.ln1_beta, {h});
      out.add_floats(p + ".norm2.bias", l.ln2_beta, {h});
    }
  }
  return {{"engine", "decoder"},
          {"precision", precision_name(options_.precision)},
          {"int8_attention", options_.int8_attention},
          {"hidden", h},
          {"vocab", vocab_},
          {"max_positions", max_positions_},
          {"position_offset", position_offset_},
          {"positions_count_real", positions_count_real_},
          {"rms_norm", rms_norm_},
          {"parallel_residual", parallel_residual_},
          {"norm_eps", eps_},
          {"activation", activation_name(activation_)},
          {"rotary_pairs", static_cast<int64_t>(inv_freq_.size())},
          {"layers", layers},
          {"lm_head", lm_head_->save(out, "lm_head")}};
}

Decoder::Decoder(const RuntimeDirReader& dir, const EngineOptions& options) : options_(options) {
  const auto& m = dir.manifest();
  if (m.get_string("engine") != "decoder") m.fail_field("engine", "'decoder' (this dir holds another engine)");
  options_.precision = precision_field(m);
  options_.int8_attention = options.int8_attention || m.get_bool("int8_attention", false);
  hidden_ = m.get_positive_int("hidden");
  vocab_ = m.get_positive_int("vocab");
  max_positions_ = m.get_positive_int("max_positions");
  position_offset_ = m.get_int_in("position_offset", 0, INT32_MAX);
  positions_count_real_ = m.get_bool("positions_count_real");
  rms_norm_ = m.get_bool("rms_norm");
  parallel_residual_ = m.get_bool("parallel_residual", false);
  eps_ = static_cast<float>(m.get_float("norm_eps"));
  activation_ = parse_activation(m, "activation");
  const int64_t h = hidden_;
  wte_ = dir.floats("embeddings.word", {vocab_, h});
  if (dir.has_tensor("embeddings.position")) wpe_ = dir.floats("embeddings.position", {max_positions_ + position_offset_, h});
  const int64_t rotary_pairs = m.get_int_in("rotary_pairs", 0, INT32_MAX);
  if (rotary_pairs > 0) inv_freq_ = dir.floats("rotary.inv_freq", {rotary_pairs});
  if ((rotary_pairs > 0) == !wpe_.empty())
    m.fail_field("rotary_pairs", "> 0 exactly when the dir has no learned position table (embeddings.position)");
  lnf_gamma_ = dir.floats("final_norm.weight", {h});
  if (!rms_norm_) lnf_beta_ = dir.floats("final_norm.bias", {h});
  const auto& layers = m.value().contains("layers") ? m.value()["layers"] : nlohmann::json();
  if (!layers.is_array()) m.fail_field("layers", "an array of blocks");
  for (size_t i = 0; i < layers.size(); ++i) {
    auto layer = std::make_unique<Layer>();
    const std::string p = "layers." + std::to_string(i), where = "layers[" + std::to_string(i) + "]";
    layer->ops = load_block_ops(dir, dir.object(layers, i, where), where, p, h);
    if (rotary_pairs > 0 && layer->ops.heads > 0 && layer->ops.head_dim < 2 * rotary_pairs)
      fail_invalid(m.source(), ": ", where, ".head_dim = ", layer->ops.head_dim, "; rotary_pairs ", rotary_pairs, " rotate ",
                   2 * rotary_pairs, " dims of each head");
    layer->ln1_gamma = dir.floats(p + ".norm1.weight", {h});
    layer->ln2_gamma = dir.floats(p + ".norm2.weight", {h});
    if (!rms_norm_) {
      layer->ln1_beta = dir.floats(p + ".norm1.bias", {h});
      layer->ln2_beta = dir.floats(p + ".norm2.bias", {h});
    }
    layers_.push_back(std::move(layer));
  }
  lm_head_ = std::make_unique<LinearOp>(LinearOp::load(dir, dir.object(m.value(), "lm_head", "lm_head"), "lm_head", vocab_, h));
}

int64_t Decoder::weight_bytes() const {
  int64_t bytes = lm_head_->weight_bytes();
  for (const auto& l : layers_)
    for (const LinearOp* op : {&l->ops.qkv, &l->ops.attn_out, &l->ops.ffn_in, &l->ops.ffn_out}) bytes += op->weight_bytes();
  return bytes;
}

Decoder::Cache Decoder::new_cache(int64_t batch, int64_t capacity) const {
  if (capacity > max_positions_)
    fail_invalid("runtime: ", capacity, " positions exceed the model's position table (", max_positions_, ")");
  Cache c;
  c.batch = batch;
  c.capacity = capacity;
  c.key_mask.assign(static_cast<size_t>(batch * capacity), 1);
  c.real.assign(static_cast<size_t>(batch), 0);
  for (const auto& l : layers_) {
    c.keys.emplace_back(static_cast<size_t>(batch * l->ops.kv_heads * capacity * l->ops.head_dim));
    c.values.emplace_back(c.keys.back().size());
  }
  return c;
}

void Decoder::norm(const float* x, int64_t m, const std::vector<float>& gamma, const std::vector<float>& beta, float* y) const {
  if (rms_norm_) return kernels::rms_norm_rows(x, m, hidden_, hidden_, gamma.data(), eps_, y, hidden_);
  kernels::layer_norm_rows(x, m, hidden_, hidden_, gamma.data(), beta.data(), eps_, y, hidden_);
}

// Rotates pairs (j, j + half) of a head's vector by position * inv_freq[j] (HF's rotate_half).
void Decoder::rotate(float* v, int64_t position) const {
  const int64_t half = static_cast<int64_t>(inv_freq_.size());
  for (int64_t j = 0; j < half; ++j) {
    const float angle = static_cast<float>(position) * inv_freq_[j];  // fp32, as HF computes it
    const float c = std::cos(angle), sn = std::sin(angle), x1 = v[j], x2 = v[j + half];
    v[j] = x1 * c - x2 * sn;
    v[j + half] = x2 * c + x1 * sn;
  }
}

// Token embeddings plus learned positions (none for rotary models, which rotate Q and K instead).
void Decoder::embed(Cache& cache, const int64_t* ids, int64_t steps, float* x) const {
  const int64_t h = hidden_, past = cache.length;
  for (int64_t t = 0; t < cache.batch * steps; ++t) {
    const int64_t id = ids[t], b = t / steps, s = t % steps;
    if (id < 0 || id >= vocab_) fail_invalid("runtime: token id ", id, " is outside the vocabulary (", vocab_, ")");
    std::copy(&wte_[id * h], &wte_[id * h] + h, x + t * h);
    if (wpe_.empty()) continue;
    int64_t position = past + s;
    if (positions_count_real_) {  // OPT: cumsum(mask) * mask - 1, so padding sits at -1
      const bool is_real = cache.key_mask[b * cache.capacity + past + s] != 0;
      position = is_real ? cache.real[b]++ : -1;
    }
    const float* p = &wpe_[(position + position_offset_) * h];
    for (int64_t d = 0; d < h; ++d) x[t * h + d] += p[d];
  }
}

// x += attention(norm(x)) for one layer, appending this step's keys and values to the cache.
void Decoder::attention_block(const Layer& layer, size_t li, Cache& cache, int64_t steps, std::vector<float>& x,
                              std::vector<float>& next) const {
  const BlockOps& ops = layer.ops;
  const int64_t batch = cache.batch, past = cache.length, m = batch * steps, h = hidden_;
  const int64_t qw = ops.q_width(), row = ops.qkv_width();
  std::vector<float> normed(x.size()), qkv(static_cast<size_t>(m * row)), ctx(static_cast<size_t>(m * qw));
  {
    ScopedOpTimer t(profile_, "norm");
    norm(x.data(), m, layer.ln1_gamma, layer.ln1_beta, normed.data());
  }
  {
    ScopedOpTimer t(profile_, "Q/K/V Linear");
    ops.qkv.forward(normed.data(), m, h, qkv.data(), row);
  }
  {
    ScopedOpTimer t(profile_, "KV cache append + attention");
    std::function<void(float*, int64_t)> rotary;
    if (!inv_freq_.empty()) rotary = [this](float* v, int64_t position) { rotate(v, position); };
    const KvCacheView view{cache.keys[li].data(), cache.values[li].data(), cache.key_mask.data(), cache.capacity};
    cached_self_attention(ops, qkv.data(), batch, steps, past, view, options_.int8_attention, rotary, ctx.data());
  }
  ScopedOpTimer t(profile_, "attention output Linear + residual");
  ops.attn_out.forward(ctx.data(), m, qw, next.data(), h, x.data(), h);  // + residual, into a new buffer
  std::swap(x, next);
}

// x += FFN(norm(x)): act(x W_in) W_out, or (silu(x W_gate) * x W_up) W_down when gated.
void Decoder::ffn_block(const Layer& layer, int64_t m, std::vector<float>& x, std::vector<float>& next,
                        const std::vector<float>* normed_from) const {
  const BlockOps& ops = layer.ops;
  const int64_t h = hidden_, width = ops.gated ? 2 * ops.ffn : ops.ffn;
  const bool requantize = ops.ffn_requantizes();
  std::vector<float> normed(x.size()), inner(requantize ? 0 : static_cast<size_t>(m * width));
  thread_local kernels::QuantizedRows inner_codes;  // reused across calls, as in the encoder
  {
    ScopedOpTimer t(profile_, "norm");
    norm((normed_from ? *normed_from : x).data(), m, layer.ln2_gamma, layer.ln2_beta, normed.data());
  }
  {
    ScopedOpTimer t(profile_, ops.gated ? "FFN gate/up Linear + SiLU * up" : "FFN input Linear + activation");
    if (requantize) {
      ops.ffn_in.forward_requantize(normed.data(), m, h, inner_codes, activation_);
    } else {
      ops.ffn_in.forward(normed.data(), m, h, inner.data(), width, nullptr, 0, ops.gated ? kernels::Activation::kNone : activation_);
      if (ops.gated) kernels::silu_mul_rows(inner.data(), width, inner.data() + ops.ffn, width, m, ops.ffn);
    }
  }
  ScopedOpTimer t(profile_, "FFN output Linear + residual");
  if (requantize)
    ops.ffn_out.forward_quantized(inner_codes, next.data(), h, x.data(), h);
  else
    ops.ffn_out.forward(inner.data(), m, width, next.data(), h, x.data(), h);
  std::swap(x, next);
}

std::vector<float> Decoder::forward(Cache& cache, const int64_t* ids, int64_t steps, bool all_logits,
                                    const int64_t* attention_mask) const {
  const int64_t batch = cache.batch, past = cache.length, h = hidden_;
  if (past + steps > cache.capacity)
    fail_invalid("runtime: ", past + steps, " positions exceed the cache capacity (", cache.capacity, ")");
  record_key_mask(attention_mask, batch, steps, past, cache.capacity, cache.key_mask.data(), "attention_mask");
  kernels::set_num_threads(options_.threads);
  const int64_t m = batch * steps;
  // x is the residual stream; the output projections write the sum into `next` (a GEMM's output
  // may not alias its residual input), then the two swap.
  std::vector<float> x(static_cast<size_t>(m * h)), next(x.size());
  {
    ScopedOpTimer t(profile_, "embeddings");
    embed(cache, ids, steps, x.data());
  }
  std::vector<float> block_input;  // a parallel residual's FFN reads the block input, not x + attention
  for (size_t li = 0; li < layers_.size(); ++li) {
    const auto& layer = *layers_[li];
    if (parallel_residual_) block_input = x;
    if (layer.ops.heads == 0) {
      ScopedOpTimer timer(profile_, "attention output (no heads)");
      for (int64_t t = 0; t < m; ++t)
        for (int64_t d = 0; d < h; ++d) x[t * h + d] += layer.ops.attn_bias_only[d];
    } else {
      attention_block(layer, li, cache, steps, x, next);
    }
    ffn_block(layer, m, x, next, parallel_residual_ ? &block_input : nullptr);
  }
  cache.length += steps;
  ScopedOpTimer timer(profile_, "final norm + LM head");
  // Logits: every position, or the last of each sequence.
  const int64_t rows = all_logits ? m : batch;
  std::vector<float> last(static_cast<size_t>(rows * h));
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t t = all_logits ? r : r * steps + steps - 1;
    std::copy(&x[t * h], &x[t * h] + h, &last[r * h]);
  }
  norm(last.data(), rows, lnf_gamma_, lnf_beta_, last.data());
  std::vector<float> logits(static_cast<size_t>(rows * vocab_));
  lm_head_->forward(last.data(), rows, h, logits.data(), vocab_);
  return logits;
}

std::vector<int64_t> Decoder::greedy_next(const std::vector<float>& logits) const {
  std::vector<int64_t> next(logits.size() / static_cast<size_t>(vocab_));
  for (size_t b = 0; b < next.size(); ++b) {
    const float* row = &logits[b * vocab_];
    next[b] = std::max_element(row, row + vocab_) - row;
  }
  return next;
}

std::vector<int64_t> Decoder::generate_greedy(const int64_t* prompt, int64_t batch, int64_t prompt_len,
                                                  int64_t new_tokens) const {
  auto cache = new_cache(batch, prompt_len + new_tokens);
  const int64_t total = prompt_len + new_tokens;
  std::vector<int64_t> out(static_cast<size_t>(batch * total));
  for (int64_t b = 0; b < batch; ++b) std::copy(prompt + b * prompt_len, prompt + (b + 1) * prompt_len, &out[b * total]);
  std::vector<int64_t> step(prompt, prompt + batch * prompt_len);
  int64_t steps = prompt_len;
  for (int64_t n = 0; n < new_tokens; ++n) {
    step = greedy_next(forward(cache, step.data(), steps, false));
    for (int64_t b = 0; b < batch; ++b) out[b * total + prompt_len + n] = step[b];
    steps = 1;
  }
  return out;
}

torch::Tensor prefill_logits(const Decoder& decoder, const torch::Tensor& ids_in, const torch::Tensor& mask_in) {
  auto ids = ids_in.to(torch::kLong).contiguous();
  auto mask = mask_in.to(torch::kLong).contiguous();
  const int64_t b = ids.size(0), s = ids.size(1);
  auto cache = decoder.new_cache(b, s);
  auto logits = decoder.forward(cache, ids.data_ptr<int64_t>(), s, true, mask.data_ptr<int64_t>());
  return torch::from_blob(logits.data(), {b, s, decoder.vocab_size()}, torch::kFloat32).clone();
}

}  // namespace sqz::runtime
