#include "runtime/encoder_decoder.h"

#include <cmath>

#include "core/error.h"
#include "kernels/eltwise/eltwise.h"
#include "kernels/parallel.h"
#include "runtime/block.h"
#include "runtime/runtime_dir.h"

namespace sqz::runtime {

namespace {
constexpr int64_t kPositionOffset = 2;  // BART's learned position table starts two rows in (HF's offset)
}

struct EncoderDecoder::EncoderLayer {
  BlockOps ops;  // self-attention and FFN
  std::vector<float> attn_gamma, attn_beta, ffn_gamma, ffn_beta;
};

struct EncoderDecoder::DecoderLayer {
  BlockOps ops;  // self-attention and FFN
  CrossAttentionOps cross;
  std::vector<float> self_gamma, self_beta, cross_gamma, cross_beta, ffn_gamma, ffn_beta;
};

EncoderDecoder::~EncoderDecoder() = default;

namespace {

kernels::Activation bart_activation(const io::JsonFields& config, const std::string& source) {
  const std::string act = config.get_string("activation_function", "gelu");
  if (act == "gelu") return kernels::Activation::kGelu;
  if (act == "relu") return kernels::Activation::kRelu;
  if (act == "gelu_new" || act == "gelu_pytorch_tanh") return kernels::Activation::kGeluTanh;
  fail_unimplemented(source, ": field 'activation_function' = '", act, "'; the runtime runs BART with gelu, gelu_new or relu");
}

}  // namespace

EncoderDecoder::EncoderDecoder(const models::LoadedModel& loaded, const EngineOptions& options) : options_(options) {
  auto& model = *loaded.model;
  const auto& info = model.info();
  const auto& config = loaded.config;
  const std::string source = (loaded.dir / "config.json").string();
  if (info.model_type != "bart" || info.head_class != "BartForConditionalGeneration")
    fail_unimplemented(source, ": the runtime's encoder-decoder engine runs BartForConditionalGeneration; this model is ",
                       info.model_type, " ", info.head_class, " — use the libtorch path (without --engine runtime)");
  if (!info.decoder_start_token_id || !info.eos_token_id || !info.pad_token_id)
    fail_invalid(source, ": decoding needs decoder_start_token_id, eos_token_id and pad_token_id");
  decoder_start_ = *info.decoder_start_token_id;
  eos_ = *info.eos_token_id;
  pad_ = *info.pad_token_id;
  activation_ = bart_activation(config, source);
  // As models/bart.cc reads it: SpeedUp pins sqz_embed_scale when it cuts hidden dimensions.
  embed_scale_ = static_cast<float>(config.has("sqz_embed_scale") ? config.get_float("sqz_embed_scale", 1.0)
                                    : config.get_bool("scale_embedding", false) ? std::sqrt(static_cast<double>(info.hidden_size))
                                                                                 : 1.0);

  std::map<std::string, torch::Tensor> params;
  for (const auto& p : model.named_parameters()) params[p.key()] = p.value();
  auto get = [&](const std::string& name) { return to_vector(model_tensor(params, name)); };
  const auto& shared = model_tensor(params, "model.shared.weight");
  vocab_ = shared.size(0);
  hidden_ = shared.size(1);
  shared_ = to_vector(shared);
  encoder_positions_ = get("model.encoder.embed_positions.weight");
  decoder_positions_ = get("model.decoder.embed_positions.weight");
  max_positions_ = static_cast<int64_t>(decoder_positions_.size()) / hidden_ - kPositionOffset;
  if (static_cast<int64_t>(encoder_positions_.size()) != (max_positions_ + kPositionOffset) * hidden_)
    fail_invalid(source, ": the encoder's and decoder's position tables differ in size");
  encoder_norm_gamma_ = get("model.encoder.layernorm_embedding.weight");
  encoder_norm_beta_ = get("model.encoder.layernorm_embedding.bias");
  decoder_norm_gamma_ = get("model.decoder.layernorm_embedding.weight");
  decoder_norm_beta_ = get("model.decoder.layernorm_embedding.bias");

  const auto structure = model.structure();
  auto ffn_of = [&](const std::string& stack, int64_t index) -> const models::FfnBlock& {
    for (const auto& f : structure.ffn)
      if (f.stack == stack && f.index_in_stack() == index) return f;
    fail_invalid(source, ": no FFN for ", stack, " layer ", index);
  };
  for (const auto& a : structure.attention) {
    const int64_t i = a.index_in_stack();
    const std::string lp = "model." + std::string(a.stack == "encoder" ? "encoder" : "decoder") + ".layers." + std::to_string(i);
    if (a.stack == "encoder") {
      auto l = std::make_unique<EncoderLayer>();
      l->ops = make_block_ops(a, ffn_of("encoder", i), hidden_, options.precision, lp);
      l->attn_gamma = get(lp + ".self_attn_layer_norm.weight");
      l->attn_beta = get(lp + ".self_attn_layer_norm.bias");
      l->ffn_gamma = get(lp + ".final_layer_norm.weight");
      l->ffn_beta = get(lp + ".final_layer_norm.bias");
      encoder_.push_back(std::move(l));
    } else if (a.stack == "decoder") {
      auto l = std::make_unique<DecoderLayer>();
      l->ops = make_block_ops(a, ffn_of("decoder", i), hidden_, options.precision, lp);
      l->self_gamma = get(lp + ".self_attn_layer_norm.weight");
      l->self_beta = get(lp + ".self_attn_layer_norm.bias");
      l->cross_gamma = get(lp + ".encoder_attn_layer_norm.weight");
      l->cross_beta = get(lp + ".encoder_attn_layer_norm.bias");
      l->ffn_gamma = get(lp + ".final_layer_norm.weight");
      l->ffn_beta = get(lp + ".final_layer_norm.bias");
      decoder_.push_back(std::move(l));
    } else {  // "cross": the decoder layer added just before it
      if (decoder_.empty() || static_cast<int64_t>(decoder_.size()) != i + 1)
        fail_invalid(source, ": cross-attention of decoder layer ", i, " comes before its self-attention");
      decoder_.back()->cross = make_cross_attention_ops(a, hidden_, options.precision, lp);
    }
  }
  auto head = params.count("lm_head.weight") ? get("lm_head.weight") : shared_;
  auto bias = get("final_logits_bias");
  const Precision head_precision = !options.lm_head_follows_precision ? Precision::kFp32
                                   : is_int8(options.precision)       ? Precision::kInt8
                                                                      : options.precision;
  lm_head_ = std::make_unique<LinearOp>(head.data(), vocab_, hidden_, bias.data(), head_precision, "lm_head");
}

nlohmann::json EncoderDecoder::save(RuntimeDirWriter& out) const {
  const int64_t h = hidden_, rows = max_positions_ + kPositionOffset;
  out.add_floats("embeddings.shared", shared_, {vocab_, h});
  out.add_floats("encoder.positions", encoder_positions_, {rows, h});
  out.add_floats("decoder.positions", decoder_positions_, {rows, h});
  out.add_floats("encoder.norm.weight", encoder_norm_gamma_, {h});
  out.add_floats("encoder.norm.bias", encoder_norm_beta_, {h});
  out.add_floats("decoder.norm.weight", decoder_norm_gamma_, {h});
  out.add_floats("decoder.norm.bias", decoder_norm_beta_, {h});
  auto norms = [&](const std::string& p, const char* name, const std::vector<float>& g, const std::vector<float>& b) {
    out.add_floats(p + "." + name + ".weight", g, {h});
    out.add_floats(p + "." + name + ".bias", b, {h});
  };
  nlohmann::json encoder = nlohmann::json::array(), decoder = nlohmann::json::array();
  for (size_t i = 0; i < encoder_.size(); ++i) {
    const auto& l = *encoder_[i];
    const std::string p = "encoder.layers." + std::to_string(i);
    encoder.push_back(save_block_ops(l.ops, out, p, h));
    norms(p, "attn_norm", l.attn_gamma, l.attn_beta);
    norms(p, "ffn_norm", l.ffn_gamma, l.ffn_beta);
  }
  for (size_t i = 0; i < decoder_.size(); ++i) {
    const auto& l = *decoder_[i];
    const std::string p = "decoder.layers." + std::to_string(i);
    auto entry = save_block_ops(l.ops, out, p, h);
    entry["cross"] = save_cross_attention_ops(l.cross, out, p + ".cross", h);
    decoder.push_back(entry);
    norms(p, "self_norm", l.self_gamma, l.self_beta);
    norms(p, "cross_norm", l.cross_gamma, l.cross_beta);
    norms(p, "ffn_norm", l.ffn_gamma, l.ffn_beta);
  }
  return {{"engine", "encoder-decoder"},
          {"precision", precision_name(options_.precision)},
          {"int8_attention", options_.int8_attention},
          {"hidden", h},
          {"vocab", vocab_},
          {"max_positions", max_positions_},
          {"decoder_start_token_id", decoder_start_},
          {"eos_token_id", eos_},
          {"pad_token_id", pad_},
          {"embed_scale", embed_scale_},
          {"norm_eps", eps_},
          {"activation", activation_name(activation_)},
          {"encoder_layers", encoder},
          {"decoder_layers", decoder},
          {"lm_head", lm_head_->save(out, "lm_head")}};
}

EncoderDecoder::EncoderDecoder(const RuntimeDirReader& dir, const EngineOptions& options) : options_(options) {
  const auto& m = dir.manifest();
  if (m.get_string("engine") != "encoder-decoder") m.fail_field("engine", "'encoder-decoder' (this dir holds another engine)");
  options_.precision = parse_precision(m.get_string("precision"));
  options_.int8_attention = options.int8_attention || m.get_bool("int8_attention", false);
  for (const char* key : {"hidden", "vocab", "max_positions"})
    if (m.get_int(key) <= 0) m.fail_field(key, "a count > 0");
  hidden_ = m.get_int("hidden");
  vocab_ = m.get_int("vocab");
  max_positions_ = m.get_int("max_positions");
  for (const char* key : {"decoder_start_token_id", "eos_token_id", "pad_token_id"})
    if (m.get_int(key) < 0 || m.get_int(key) >= vocab_) m.fail_field(key, "a token id below vocab");
  decoder_start_ = m.get_int("decoder_start_token_id");
  eos_ = m.get_int("eos_token_id");
  pad_ = m.get_int("pad_token_id");
  embed_scale_ = static_cast<float>(m.get_float("embed_scale"));
  eps_ = static_cast<float>(m.get_float("norm_eps"));
  activation_ = parse_activation(m, "activation");
  const int64_t h = hidden_, rows = max_positions_ + kPositionOffset;
  shared_ = dir.floats("embeddings.shared", {vocab_, h});
  encoder_positions_ = dir.floats("encoder.positions", {rows, h});
  decoder_positions_ = dir.floats("decoder.positions", {rows, h});
  encoder_norm_gamma_ = dir.floats("encoder.norm.weight", {h});
  encoder_norm_beta_ = dir.floats("encoder.norm.bias", {h});
  decoder_norm_gamma_ = dir.floats("decoder.norm.weight", {h});
  decoder_norm_beta_ = dir.floats("decoder.norm.bias", {h});
  auto layers = [&](const char* key) -> const nlohmann::json& {
    if (!m.value().contains(key) || !m.value()[key].is_array()) m.fail_field(key, "an array of blocks");
    return m.value()[key];
  };
  auto norm = [&](const std::string& name) { return dir.floats(name, {h}); };
  const auto& enc = layers("encoder_layers");
  for (size_t i = 0; i < enc.size(); ++i) {
    auto l = std::make_unique<EncoderLayer>();
    const std::string p = "encoder.layers." + std::to_string(i), where = "encoder_layers[" + std::to_string(i) + "]";
    l->ops = load_block_ops(dir, dir.object(enc, i, where), where, p, h);
    l->attn_gamma = norm(p + ".attn_norm.weight");
    l->attn_beta = norm(p + ".attn_norm.bias");
    l->ffn_gamma = norm(p + ".ffn_norm.weight");
    l->ffn_beta = norm(p + ".ffn_norm.bias");
    encoder_.push_back(std::move(l));
  }
  const auto& dec = layers("decoder_layers");
  for (size_t i = 0; i < dec.size(); ++i) {
    auto l = std::make_unique<DecoderLayer>();
    const std::string p = "decoder.layers." + std::to_string(i), where = "decoder_layers[" + std::to_string(i) + "]";
    const auto entry = dir.object(dec, i, where);
    l->ops = load_block_ops(dir, entry, where, p, h);
    l->cross = load_cross_attention_ops(dir, dir.object(entry.value(), "cross", where + ".cross"), where + ".cross", p + ".cross", h);
    l->self_gamma = norm(p + ".self_norm.weight");
    l->self_beta = norm(p + ".self_norm.bias");
    l->cross_gamma = norm(p + ".cross_norm.weight");
    l->cross_beta = norm(p + ".cross_norm.bias");
    l->ffn_gamma = norm(p + ".ffn_norm.weight");
    l->ffn_beta = norm(p + ".ffn_norm.bias");
    decoder_.push_back(std::move(l));
  }
  lm_head_ = std::make_unique<LinearOp>(LinearOp::load(dir, dir.object(m.value(), "lm_head", "lm_head"), "lm_head"));
  if (lm_head_->out_features() != vocab_ || lm_head_->in_features() != h) m.fail_field("lm_head", "a [vocab, hidden] Linear");
}

int64_t EncoderDecoder::weight_bytes() const {
  int64_t bytes = lm_head_->weight_bytes();
  for (const auto& l : encoder_)
    for (const LinearOp* op : {&l->ops.qkv, &l->ops.attn_out, &l->ops.ffn_in, &l->ops.ffn_out}) bytes += op->weight_bytes();
  for (const auto& l : decoder_)
    for (const LinearOp* op : {&l->ops.qkv, &l->ops.attn_out, &l->cross.q, &l->cross.kv, &l->cross.out, &l->ops.ffn_in, &l->ops.ffn_out})
      bytes += op->weight_bytes();
  return bytes;
}

void EncoderDecoder::norm(float* x, int64_t m, const std::vector<float>& gamma, const std::vector<float>& beta) const {
  ScopedOpTimer t(profile_, "LayerNorm");
  kernels::layer_norm_rows(x, m, hidden_, hidden_, gamma.data(), beta.data(), eps_, x, hidden_);
}

// x = layernorm_embedding(shared[id] * embed_scale + positions[past + s + 2]).
void EncoderDecoder::embed(const std::vector<float>& positions, const std::vector<float>& gamma, const std::vector<float>& beta,
                           const int64_t* ids, int64_t batch, int64_t steps, int64_t past, float* x) const {
  ScopedOpTimer timer(profile_, "embeddings");
  const int64_t h = hidden_;
  if (past + steps > max_positions_)
    fail_invalid("runtime: ", past + steps, " positions exceed the model's max_position_embeddings (", max_positions_, ")");
  for (int64_t t = 0; t < batch * steps; ++t) {
    const int64_t id = ids[t];
    if (id < 0 || id >= vocab_) fail_invalid("runtime: token id ", id, " is outside the vocabulary (", vocab_, ")");
    const float* w = &shared_[id * h];
    const float* p = &positions[(past + t % steps + kPositionOffset) * h];
    for (int64_t d = 0; d < h; ++d) x[t * h + d] = w[d] * embed_scale_ + p[d];
  }
  kernels::layer_norm_rows(x, batch * steps, h, h, gamma.data(), beta.data(), eps_, x, h);
}

std::vector<float> EncoderDecoder::encode(const int64_t* ids, const int64_t* mask, int64_t batch, int64_t seq) const {
  kernels::set_num_threads(options_.threads);
  const int64_t m = batch * seq, h = hidden_;
  std::vector<float> x(static_cast<size_t>(m * h)), attn(x.size());
  embed(encoder_positions_, encoder_norm_gamma_, encoder_norm_beta_, ids, batch, seq, 0, x.data());
  for (const auto& l : encoder_) {  // post-LN, as BERT
    encoder_self_attention(l->ops, x.data(), batch, seq, h, mask, options_.int8_attention, x.data(), attn.data(), profile_);
    norm(attn.data(), m, l->attn_gamma, l->attn_beta);
    encoder_ffn(l->ops, attn.data(), m, h, activation_, attn.data(), x.data(), profile_);
    norm(x.data(), m, l->ffn_gamma, l->ffn_beta);
  }
  return x;
}

EncoderDecoder::Cache EncoderDecoder::new_cache(const std::vector<float>& memory, const int64_t* mask, int64_t batch,
                                                int64_t source_len, int64_t capacity) const {
  if (capacity > max_positions_)
    fail_invalid("runtime: ", capacity, " positions exceed the model's max_position_embeddings (", max_positions_, ")");
  if (static_cast<int64_t>(memory.size()) != batch * source_len * hidden_)
    fail_invalid("runtime: the encoder output holds ", memory.size(), " values, not [", batch, ", ", source_len, ", ", hidden_, "]");
  kernels::set_num_threads(options_.threads);
  Cache c;
  c.batch = batch;
  c.source_len = source_len;
  c.capacity = capacity;
  c.source_mask = mask ? std::vector<int64_t>(mask, mask + batch * source_len) : std::vector<int64_t>(static_cast<size_t>(batch * source_len), 1);
  c.key_mask.assign(static_cast<size_t>(batch * capacity), 1);
  ScopedOpTimer t(profile_, "cross-attention K/V Linear");
  for (const auto& l : decoder_) {
    c.keys.emplace_back(static_cast<size_t>(batch * l->ops.kv_heads * capacity * l->ops.head_dim));
    c.values.emplace_back(c.keys.back().size());
    c.cross.emplace_back(static_cast<size_t>(batch * source_len * 2 * l->cross.width()));
    if (l->cross.heads > 0) l->cross.kv.forward(memory.data(), batch * source_len, hidden_, c.cross.back().data(), 2 * l->cross.width());
  }
  return c;
}

// One post-LN decoder layer: x = norm(x + self(x)); x = norm(x + cross(x)); x = norm(x + ffn(x)).
void EncoderDecoder::decoder_layer(const DecoderLayer& l, size_t li, Cache& cache, int64_t steps, std::vector<float>& x,
                                   std::vector<float>& y) const {
  const int64_t batch = cache.batch, m = batch * steps, h = hidden_;
  const BlockOps& ops = l.ops;
  if (ops.heads == 0) {
    for (int64_t t = 0; t < m; ++t)
      for (int64_t d = 0; d < h; ++d) y[t * h + d] = x[t * h + d] + ops.attn_bias_only[d];
  } else {
    std::vector<float> qkv(static_cast<size_t>(m * ops.qkv_width())), ctx(static_cast<size_t>(m * ops.q_width()));
    {
      ScopedOpTimer t(profile_, "Q/K/V Linear");
      ops.qkv.forward(x.data(), m, h, qkv.data(), ops.qkv_width());
    }
    {
      ScopedOpTimer t(profile_, "KV cache append + attention");
      const KvCacheView view{cache.keys[li].data(), cache.values[li].data(), cache.key_mask.data(), cache.capacity};
      cached_self_attention(ops, qkv.data(), batch, steps, cache.length, view, options_.int8_attention, {}, ctx.data());
    }
    ScopedOpTimer t(profile_, "attention output Linear + residual");
    ops.attn_out.forward(ctx.data(), m, ops.q_width(), y.data(), h, x.data(), h);
  }
  norm(y.data(), m, l.self_gamma, l.self_beta);
  const CrossAttentionOps& c = l.cross;
  if (c.heads == 0) {
    for (int64_t t = 0; t < m; ++t)
      for (int64_t d = 0; d < h; ++d) x[t * h + d] = y[t * h + d] + c.bias_only[d];
  } else {
    const int64_t w = c.width(), hd = c.head_dim, src = cache.source_len;
    std::vector<float> q(static_cast<size_t>(m * w)), ctx(q.size());
    {
      ScopedOpTimer t(profile_, "cross-attention Q Linear");
      c.q.forward(y.data(), m, h, q.data(), w);
    }
    {
      ScopedOpTimer t(profile_, "cross-attention");
      const auto attend = options_.int8_attention ? attend_head_int8 : attend_head;
      const float* kv = cache.cross[li].data();
      kernels::parallel_for(batch * c.heads, [&](int64_t begin, int64_t end) {
        for (int64_t task = begin; task < end; ++task) {
          const int64_t b = task / c.heads, head = task % c.heads;
          const float* k = kv + b * src * 2 * w + head * hd;
          attend(q.data() + b * steps * w + head * hd, w, k, 2 * w, k + w, 2 * w, steps, src, hd, cache.source_mask.data() + b * src, -1,
                 ctx.data() + b * steps * w + head * hd, w);
        }
      });
    }
    ScopedOpTimer t(profile_, "cross-attention output Linear + residual");
    c.out.forward(ctx.data(), m, w, x.data(), h, y.data(), h);
  }
  norm(x.data(), m, l.cross_gamma, l.cross_beta);
  encoder_ffn(ops, x.data(), m, h, activation_, x.data(), y.data(), profile_);
  norm(y.data(), m, l.ffn_gamma, l.ffn_beta);
  std::swap(x, y);
}

std::vector<float> EncoderDecoder::decode(Cache& cache, const int64_t* ids, int64_t steps, bool all_logits,
                                          const int64_t* decoder_mask) const {
  const int64_t batch = cache.batch, past = cache.length, h = hidden_, m = batch * steps;
  if (past + steps > cache.capacity)
    fail_invalid("runtime: ", past + steps, " positions exceed the cache capacity (", cache.capacity, ")");
  if (decoder_mask)
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t s = 0; s < steps; ++s) {
        const int64_t v = decoder_mask[b * steps + s];
        if (v != 0 && v != 1) fail_invalid("runtime: decoder_attention_mask holds ", v, "; expected 0 (padding) or 1");
        cache.key_mask[b * cache.capacity + past + s] = v;
      }
  kernels::set_num_threads(options_.threads);
  std::vector<float> x(static_cast<size_t>(m * h)), y(x.size());
  embed(decoder_positions_, decoder_norm_gamma_, decoder_norm_beta_, ids, batch, steps, past, x.data());
  for (size_t li = 0; li < decoder_.size(); ++li) decoder_layer(*decoder_[li], li, cache, steps, x, y);
  cache.length += steps;
  ScopedOpTimer timer(profile_, "LM head");
  const int64_t rows = all_logits ? m : batch;
  std::vector<float> last(static_cast<size_t>(rows * h));
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t t = all_logits ? r : r * steps + steps - 1;
    std::copy(&x[t * h], &x[t * h] + h, &last[r * h]);
  }
  std::vector<float> logits(static_cast<size_t>(rows * vocab_));
  lm_head_->forward(last.data(), rows, h, logits.data(), vocab_);
  return logits;
}

std::vector<int64_t> EncoderDecoder::generate_greedy(const int64_t* ids, const int64_t* mask, int64_t batch, int64_t seq,
                                                     int64_t max_new_tokens, int64_t* generated, const Forced& forced) const {
  // As models::generate_seq2seq_greedy: at most max_positions - 1 steps.
  const int64_t limit = std::max<int64_t>(0, std::min(max_new_tokens, max_positions_ - 1));
  auto cache = new_cache(encode(ids, mask, batch, seq), mask, batch, seq, std::max<int64_t>(limit, 1));
  std::vector<int64_t> step(static_cast<size_t>(batch), decoder_start_), picked;
  std::vector<bool> done(static_cast<size_t>(batch), false);
  int64_t n = 0;
  for (; n < limit; ++n) {
    const auto logits = decode(cache, step.data(), 1, false);
    bool all_done = true;
    for (int64_t b = 0; b < batch; ++b) {
      const float* row = &logits[b * vocab_];
      step[b] = std::max_element(row, row + vocab_) - row;  // the first maximum, as argmax
      if (n == 0 && forced.bos) step[b] = *forced.bos;
      if (n == max_new_tokens - 1 && forced.eos) step[b] = *forced.eos;
      if (done[b]) step[b] = pad_;
      done[b] = done[b] || step[b] == eos_;
      all_done = all_done && done[b];
    }
    picked.insert(picked.end(), step.begin(), step.end());
    if (all_done) {
      ++n;
      break;
    }
  }
  std::vector<int64_t> out(static_cast<size_t>(batch * n));  // [batch, n] from the step-major picks
  for (int64_t i = 0; i < n; ++i)
    for (int64_t b = 0; b < batch; ++b) out[b * n + i] = picked[i * batch + b];
  *generated = n;
  return out;
}

torch::Tensor seq2seq_logits(const EncoderDecoder& engine, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                             const torch::Tensor& decoder_input_ids) {
  auto ids = input_ids.to(torch::kLong).contiguous();
  auto mask = attention_mask.defined() ? attention_mask.to(torch::kLong).contiguous() : torch::ones_like(ids);
  auto dec = decoder_input_ids.to(torch::kLong).contiguous();
  const int64_t b = ids.size(0), s = ids.size(1), t = dec.size(1);
  auto cache = engine.new_cache(engine.encode(ids.data_ptr<int64_t>(), mask.data_ptr<int64_t>(), b, s), mask.data_ptr<int64_t>(), b, s, t);
  auto logits = engine.decode(cache, dec.data_ptr<int64_t>(), t, true);
  return torch::from_blob(logits.data(), {b, t, engine.vocab_size()}, torch::kFloat32).clone();
}

}  // namespace sqz::runtime
