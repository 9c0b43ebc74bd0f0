#include "runtime/encoder_decoder.h"

#include <cmath>

#include "core/error.h"
#include "kernels/eltwise/eltwise.h"
#include "kernels/parallel.h"
#include "runtime/runtime_dir.h"

namespace sqz::runtime {

namespace {
constexpr int64_t kPositionOffset = 2;  // BART's learned position table starts two rows in (HF's offset)

// HF's T5 _relative_position_bucket in fp32 as torch computes it: exact buckets for small
// distances, log-spaced ones up to max_distance; bidirectional stacks split the buckets between
// the two directions.
int64_t t5_bucket(int64_t relative, bool bidirectional, int64_t buckets, int64_t max_distance) {
  int64_t out = 0, distance = 0;
  if (bidirectional) {
    buckets /= 2;
    if (relative > 0) out += buckets;
    distance = std::abs(relative);
  } else {
    distance = -std::min<int64_t>(relative, 0);
  }
  const int64_t max_exact = buckets / 2;
  if (distance < max_exact) return out + distance;
  const float scaled = std::log(static_cast<float>(distance) / static_cast<float>(max_exact)) /
                       static_cast<float>(std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact))) *
                       static_cast<float>(buckets - max_exact);
  return out + std::min<int64_t>(max_exact + static_cast<int64_t>(scaled), buckets - 1);
}

}  // namespace

EncoderDecoder::~EncoderDecoder() = default;

nlohmann::json EncoderDecoder::save(RuntimeDirWriter& out) const {
  const int64_t h = hidden_;
  out.add_floats("embeddings.shared", shared_, {vocab_, h});
  auto vec = [&](const std::string& name, const std::vector<float>& v, std::vector<int64_t> shape) {
    if (!v.empty()) out.add_floats(name, v, shape);
  };
  auto norm = [&](const std::string& p, const char* name, const std::vector<float>& g, const std::vector<float>& b) {
    vec(p + "." + name + ".weight", g, {h});
    vec(p + "." + name + ".bias", b, {h});
  };
  for (auto [stack, name] : {std::pair{encoder_stack_.get(), std::string("encoder")}, {decoder_stack_.get(), std::string("decoder")}}) {
    vec(name + ".positions", stack->positions, {max_positions_ + kPositionOffset, h});
    norm(name, "norm", stack->norm_gamma, stack->norm_beta);
    vec(name + ".final_norm.weight", stack->final_gamma, {h});
    vec(name + ".position_bias", stack->bias_table, {buckets_, bias_heads_});
  }
  nlohmann::json encoder = nlohmann::json::array(), decoder = nlohmann::json::array();
  for (size_t i = 0; i < encoder_.size(); ++i) {
    const auto& l = *encoder_[i];
    const std::string p = "encoder.layers." + std::to_string(i);
    auto entry = save_block_ops(l.ops, out, p, h);
    if (t5_) entry["bias_heads"] = l.bias_heads;
    encoder.push_back(entry);
    norm(p, "attn_norm", l.attn_gamma, l.attn_beta);
    norm(p, "ffn_norm", l.ffn_gamma, l.ffn_beta);
  }
  for (size_t i = 0; i < decoder_.size(); ++i) {
    const auto& l = *decoder_[i];
    const std::string p = "decoder.layers." + std::to_string(i);
    auto entry = save_block_ops(l.ops, out, p, h);
    entry["cross"] = save_cross_attention_ops(l.cross, out, p + ".cross", h);
    if (t5_) entry["bias_heads"] = l.bias_heads;
    decoder.push_back(entry);
    norm(p, "self_norm", l.self_gamma, l.self_beta);
    norm(p, "cross_norm", l.cross_gamma, l.cross_beta);
    norm(p, "ffn_norm", l.ffn_gamma, l.ffn_beta);
  }
  return {{"engine", "encoder-decoder"},
          {"family", t5_ ? "t5" : "bart"},
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
          {"relative_buckets", buckets_},
          {"relative_max_distance", max_distance_},
          {"bias_heads", bias_heads_},
          {"encoder_layers", encoder},
          {"decoder_layers", decoder},
          {"lm_head", lm_head_->save(out, "lm_head")}};
}

EncoderDecoder::EncoderDecoder(const RuntimeDirReader& dir, const EngineOptions& options)
    : options_(options), encoder_stack_(std::make_unique<Stack>()), decoder_stack_(std::make_unique<Stack>()) {
  const auto& m = dir.manifest();
  if (m.get_string("engine") != "encoder-decoder") m.fail_field("engine", "'encoder-decoder' (this dir holds another engine)");
  const std::string family = m.get_string("family", "bart");
  if (family != "bart" && family != "t5") m.fail_field("family", "'bart' or 't5'");
  t5_ = family == "t5";
  options_.precision = precision_field(m);
  options_.int8_attention = options.int8_attention || m.get_bool("int8_attention", false);
  hidden_ = m.get_positive_int("hidden");
  vocab_ = m.get_positive_int("vocab");
  max_positions_ = t5_ ? m.get_int_in("max_positions", 0, 0) : m.get_positive_int("max_positions");  // T5: no position table
  decoder_start_ = m.get_int_in("decoder_start_token_id", 0, vocab_ - 1);
  eos_ = m.get_int_in("eos_token_id", 0, vocab_ - 1);
  pad_ = m.get_int_in("pad_token_id", 0, vocab_ - 1);
  embed_scale_ = static_cast<float>(m.get_float("embed_scale"));
  eps_ = static_cast<float>(m.get_float("norm_eps"));
  activation_ = parse_activation(m, "activation");
  if (t5_) {
    buckets_ = m.get_int("relative_buckets");
    max_distance_ = m.get_int("relative_max_distance");
    bias_heads_ = m.get_int("bias_heads");
    if (buckets_ < 4 || max_distance_ <= buckets_ / 2 || bias_heads_ <= 0)
      m.fail_field("relative_buckets", "at least 4, relative_max_distance above half of it and bias_heads > 0");
  }
  const int64_t h = hidden_;
  shared_ = dir.floats("embeddings.shared", {vocab_, h});
  decoder_stack_->bidirectional = false;
  for (auto [stack, name] : {std::pair{encoder_stack_.get(), std::string("encoder")}, {decoder_stack_.get(), std::string("decoder")}}) {
    if (t5_) {
      stack->final_gamma = dir.floats(name + ".final_norm.weight", {h});
      stack->bias_table = dir.floats(name + ".position_bias", {buckets_, bias_heads_});
    } else {
      stack->positions = dir.floats(name + ".positions", {max_positions_ + kPositionOffset, h});
      stack->norm_gamma = dir.floats(name + ".norm.weight", {h});
      stack->norm_beta = dir.floats(name + ".norm.bias", {h});
    }
  }
  auto layers = [&](const char* key) -> const nlohmann::json& {
    if (!m.value().contains(key) || !m.value()[key].is_array()) m.fail_field(key, "an array of blocks");
    return m.value()[key];
  };
  // A norm's gamma, and its beta for BART's LayerNorms.
  auto norm = [&](const std::string& p, std::vector<float>& gamma, std::vector<float>& beta) {
    gamma = dir.floats(p + ".weight", {h});
    if (!t5_) beta = dir.floats(p + ".bias", {h});
  };
  // T5: the unpruned head each head reads its bias from, one per head, each below bias_heads.
  auto bias_heads = [&](const io::JsonFields& entry, const std::string& where, int64_t heads) {
    std::vector<int64_t> kept;
    if (!t5_) return kept;
    const auto& v = entry.value().contains("bias_heads") ? entry.value()["bias_heads"] : nlohmann::json();
    if (v.is_array())
      for (const auto& x : v)
        if (x.is_number_integer() && x.get<int64_t>() >= 0 && x.get<int64_t>() < bias_heads_) kept.push_back(x.get<int64_t>());
    if (!v.is_array() || static_cast<int64_t>(kept.size()) != heads || static_cast<int64_t>(v.size()) != heads)
      fail_invalid(m.source(), ": ", where, ".bias_heads must list ", heads, " head indices below bias_heads (", bias_heads_, ")");
    return kept;
  };
  const auto& enc = layers("encoder_layers");
  for (size_t i = 0; i < enc.size(); ++i) {
    auto l = std::make_unique<EncoderLayer>();
    const std::string p = "encoder.layers." + std::to_string(i), where = "encoder_layers[" + std::to_string(i) + "]";
    const auto entry = dir.object(enc, i, where);
    l->ops = load_block_ops(dir, entry, where, p, h);
    l->bias_heads = bias_heads(entry, where, l->ops.heads);
    norm(p + ".attn_norm", l->attn_gamma, l->attn_beta);
    norm(p + ".ffn_norm", l->ffn_gamma, l->ffn_beta);
    encoder_.push_back(std::move(l));
  }
  const auto& dec = layers("decoder_layers");
  for (size_t i = 0; i < dec.size(); ++i) {
    auto l = std::make_unique<DecoderLayer>();
    const std::string p = "decoder.layers." + std::to_string(i), where = "decoder_layers[" + std::to_string(i) + "]";
    const auto entry = dir.object(dec, i, where);
    l->ops = load_block_ops(dir, entry, where, p, h);
    l->cross = load_cross_attention_ops(dir, dir.object(entry.value(), "cross", where + ".cross"), where + ".cross", p + ".cross", h);
    l->bias_heads = bias_heads(entry, where, l->ops.heads);
    norm(p + ".self_norm", l->self_gamma, l->self_beta);
    norm(p + ".cross_norm", l->cross_gamma, l->cross_beta);
    norm(p + ".ffn_norm", l->ffn_gamma, l->ffn_beta);
    decoder_.push_back(std::move(l));
  }
  lm_head_ = std::make_unique<LinearOp>(LinearOp::load(dir, dir.object(m.value(), "lm_head", "lm_head"), "lm_head", vocab_, h));
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

void EncoderDecoder::norm(const float* x, int64_t m, const std::vector<float>& gamma, const std::vector<float>& beta, float* y) const {
  ScopedOpTimer t(profile_, t5_ ? "RMS norm" : "LayerNorm");
  if (t5_) kernels::rms_norm_rows(x, m, hidden_, hidden_, gamma.data(), eps_, y, hidden_);
  else kernels::layer_norm_rows(x, m, hidden_, hidden_, gamma.data(), beta.data(), eps_, y, hidden_);
}

// BART: x = layernorm_embedding(shared[id] * embed_scale + positions[past + s + 2]); T5: x = shared[id].
void EncoderDecoder::embed(const Stack& stack, const int64_t* ids, int64_t batch, int64_t steps, int64_t past, float* x) const {
  ScopedOpTimer timer(profile_, "embeddings");
  const int64_t h = hidden_;
  if (past + steps > position_limit())
    fail_invalid("runtime: ", past + steps, " positions exceed the model's max_position_embeddings (", max_positions_, ")");
  for (int64_t t = 0; t < batch * steps; ++t) {
    const int64_t id = ids[t];
    if (id < 0 || id >= vocab_) fail_invalid("runtime: token id ", id, " is outside the vocabulary (", vocab_, ")");
    const float* w = &shared_[id * h];
    if (stack.positions.empty()) {
      std::copy(w, w + h, x + t * h);
      continue;
    }
    const float* p = &stack.positions[(past + t % steps + kPositionOffset) * h];
    for (int64_t d = 0; d < h; ++d) x[t * h + d] = w[d] * embed_scale_ + p[d];
  }
  if (!stack.norm_gamma.empty())
    kernels::layer_norm_rows(x, batch * steps, h, h, stack.norm_gamma.data(), stack.norm_beta.data(), eps_, x, h);
}

std::vector<float> EncoderDecoder::position_bias(const Stack& stack, int64_t past, int64_t rows, int64_t keys) const {
  if (stack.bias_table.empty()) return {};
  ScopedOpTimer t(profile_, "relative position bias");
  std::vector<float> bias(static_cast<size_t>(bias_heads_ * rows * keys));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < keys; ++j) {
      const int64_t bucket = t5_bucket(j - (past + i), stack.bidirectional, buckets_, max_distance_);
      for (int64_t head = 0; head < bias_heads_; ++head) bias[(head * rows + i) * keys + j] = stack.bias_table[bucket * bias_heads_ + head];
    }
  return bias;
}

std::vector<float> EncoderDecoder::encode(const int64_t* ids, const int64_t* mask, int64_t batch, int64_t seq) const {
  kernels::set_num_threads(options_.threads);
  const int64_t m = batch * seq, h = hidden_;
  std::vector<float> x(static_cast<size_t>(m * h)), y(x.size()), normed(t5_ ? x.size() : 0);
  embed(*encoder_stack_, ids, batch, seq, 0, x.data());
  const auto bias_values = position_bias(*encoder_stack_, 0, seq, seq);
  for (const auto& l : encoder_) {
    const ScoreBias bias{bias_values.empty() ? nullptr : bias_values.data(), &l->bias_heads, seq, seq};
    if (t5_) {  // pre-LN: x += attention(norm(x)); x += ffn(norm(x))
      norm(x.data(), m, l->attn_gamma, l->attn_beta, normed.data());
      encoder_self_attention(l->ops, normed.data(), batch, seq, h, mask, options_.int8_attention, x.data(), y.data(), profile_, bias);
      norm(y.data(), m, l->ffn_gamma, l->ffn_beta, normed.data());
      encoder_ffn(l->ops, normed.data(), m, h, activation_, y.data(), x.data(), profile_);
    } else {  // post-LN, as BERT: x = norm(x + attention(x)); x = norm(x + ffn(x))
      encoder_self_attention(l->ops, x.data(), batch, seq, h, mask, options_.int8_attention, x.data(), y.data(), profile_, bias);
      norm(y.data(), m, l->attn_gamma, l->attn_beta, y.data());
      encoder_ffn(l->ops, y.data(), m, h, activation_, y.data(), x.data(), profile_);
      norm(x.data(), m, l->ffn_gamma, l->ffn_beta, x.data());
    }
  }
  if (!encoder_stack_->final_gamma.empty()) norm(x.data(), m, encoder_stack_->final_gamma, {}, x.data());
  return x;
}

EncoderDecoder::Cache EncoderDecoder::new_cache(const std::vector<float>& memory, const int64_t* mask, int64_t batch,
                                                int64_t source_len, int64_t capacity) const {
  if (capacity > position_limit())
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

// One decoder layer, three sublayers (self-attention, cross-attention, FFN), each y = x + f(in):
// pre-LN (T5) reads in = norm(x); post-LN (BART) reads x and normalizes the sum.
void EncoderDecoder::decoder_layer(const DecoderLayer& l, size_t li, Cache& cache, int64_t steps, const std::vector<float>& bias_values,
                                   std::vector<float>& x, std::vector<float>& y) const {
  const int64_t batch = cache.batch, m = batch * steps, h = hidden_;
  std::vector<float> normed(t5_ ? x.size() : 0);
  auto input = [&](const std::vector<float>& from, const std::vector<float>& gamma, const std::vector<float>& beta) {
    if (!t5_) return from.data();
    norm(from.data(), m, gamma, beta, normed.data());
    return static_cast<const float*>(normed.data());
  };
  auto finish = [&](std::vector<float>& sum, const std::vector<float>& gamma, const std::vector<float>& beta) {
    if (!t5_) norm(sum.data(), m, gamma, beta, sum.data());
  };
  const BlockOps& ops = l.ops;
  const float* in = input(x, l.self_gamma, l.self_beta);
  if (ops.heads == 0) {
    for (int64_t t = 0; t < m; ++t)
      for (int64_t d = 0; d < h; ++d) y[t * h + d] = x[t * h + d] + ops.attn_bias_only[d];
  } else {
    std::vector<float> qkv(static_cast<size_t>(m * ops.qkv_width())), ctx(static_cast<size_t>(m * ops.q_width()));
    {
      ScopedOpTimer t(profile_, "Q/K/V Linear");
      ops.qkv.forward(in, m, h, qkv.data(), ops.qkv_width());
    }
    {
      ScopedOpTimer t(profile_, "KV cache append + attention");
      const KvCacheView view{cache.keys[li].data(), cache.values[li].data(), cache.key_mask.data(), cache.capacity};
      const ScoreBias bias{bias_values.empty() ? nullptr : bias_values.data(), &l.bias_heads, steps, cache.length + steps};
      cached_self_attention(ops, qkv.data(), batch, steps, cache.length, view, options_.int8_attention, {}, ctx.data(), bias);
    }
    ScopedOpTimer t(profile_, "attention output Linear + residual");
    ops.attn_out.forward(ctx.data(), m, ops.q_width(), y.data(), h, x.data(), h);
  }
  finish(y, l.self_gamma, l.self_beta);
  const CrossAttentionOps& c = l.cross;
  in = input(y, l.cross_gamma, l.cross_beta);
  if (c.heads == 0) {
    for (int64_t t = 0; t < m; ++t)
      for (int64_t d = 0; d < h; ++d) x[t * h + d] = y[t * h + d] + c.bias_only[d];
  } else {
    const int64_t w = c.width(), hd = c.head_dim, src = cache.source_len;
    std::vector<float> q(static_cast<size_t>(m * w)), ctx(q.size());
    {
      ScopedOpTimer t(profile_, "cross-attention Q Linear");
      c.q.forward(in, m, h, q.data(), w);
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
                 ctx.data() + b * steps * w + head * hd, w, nullptr);
        }
      });
    }
    ScopedOpTimer t(profile_, "cross-attention output Linear + residual");
    c.out.forward(ctx.data(), m, w, x.data(), h, y.data(), h);
  }
  finish(x, l.cross_gamma, l.cross_beta);
  encoder_ffn(ops, input(x, l.ffn_gamma, l.ffn_beta), m, h, activation_, x.data(), y.data(), profile_);
  finish(y, l.ffn_gamma, l.ffn_beta);
  std::swap(x, y);
}

std::vector<float> EncoderDecoder::decode(Cache& cache, const int64_t* ids, int64_t steps, bool all_logits,
                                          const int64_t* decoder_mask) const {
  const int64_t batch = cache.batch, past = cache.length, h = hidden_, m = batch * steps;
  if (past + steps > cache.capacity)
    fail_invalid("runtime: ", past + steps, " positions exceed the cache capacity (", cache.capacity, ")");
  record_key_mask(decoder_mask, batch, steps, past, cache.capacity, cache.key_mask.data(), "decoder_attention_mask");
  kernels::set_num_threads(options_.threads);
  std::vector<float> x(static_cast<size_t>(m * h)), y(x.size());
  embed(*decoder_stack_, ids, batch, steps, past, x.data());
  const auto bias = position_bias(*decoder_stack_, past, steps, past + steps);
  for (size_t li = 0; li < decoder_.size(); ++li) decoder_layer(*decoder_[li], li, cache, steps, bias, x, y);
  cache.length += steps;
  ScopedOpTimer timer(profile_, "LM head");
  const int64_t rows = all_logits ? m : batch;
  std::vector<float> last(static_cast<size_t>(rows * h));
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t t = all_logits ? r : r * steps + steps - 1;
    std::copy(&x[t * h], &x[t * h] + h, &last[r * h]);
  }
  if (!decoder_stack_->final_gamma.empty()) norm(last.data(), rows, decoder_stack_->final_gamma, {}, last.data());
  std::vector<float> logits(static_cast<size_t>(rows * vocab_));
  lm_head_->forward(last.data(), rows, h, logits.data(), vocab_);
  return logits;
}

std::vector<int64_t> EncoderDecoder::generate_greedy(const int64_t* ids, const int64_t* mask, int64_t batch, int64_t seq,
                                                     int64_t max_new_tokens, int64_t* generated, const Forced& forced) const {
  // As models::generate_seq2seq_greedy: at most max_positions - 1 steps (T5: no limit).
  const int64_t limit = std::max<int64_t>(0, max_positions_ > 0 ? std::min(max_new_tokens, max_positions_ - 1) : max_new_tokens);
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
