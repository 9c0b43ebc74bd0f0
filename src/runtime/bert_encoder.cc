#include "runtime/bert_encoder.h"

#include <cmath>
#include <limits>

#include "core/error.h"
#include "kernels/eltwise/eltwise.h"
#include "kernels/parallel.h"

namespace sqz::runtime {

struct BertEncoder::Layer {
  int64_t heads = 0, head_dim = 0, ffn = 0;
  LinearOp qkv, attn_out, ffn_in, ffn_out;
  std::vector<float> attn_bias_only;  // heads == 0: the block adds its output bias alone
  std::vector<float> attn_gamma, attn_beta, ffn_gamma, ffn_beta;
};

namespace {

std::vector<float> to_vector(const torch::Tensor& t, int64_t zeros_if_undefined = 0) {
  if (!t.defined()) return std::vector<float>(static_cast<size_t>(zeros_if_undefined), 0.0f);
  auto c = t.detach().to(torch::kFloat32).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

const torch::Tensor& param(const std::map<std::string, torch::Tensor>& params, const std::string& name) {
  auto it = params.find(name);
  if (it == params.end()) fail_data("runtime: the model has no tensor '", name, "'");
  return it->second;
}

}  // namespace

BertEncoder::~BertEncoder() = default;

BertEncoder::BertEncoder(const models::LoadedModel& loaded, const EngineOptions& options) : options_(options) {
  auto& model = *loaded.model;
  const auto& info = model.info();
  const std::string source = (loaded.dir / "config.json").string();
  if (info.model_type != "bert")
    fail_unimplemented(source, ": the runtime engine runs model_type 'bert' (encoders); this model is '", info.model_type,
                       "' — use the libtorch path (without --engine runtime)");
  if (info.head_class != "BertModel" && info.head_class != "BertForSequenceClassification")
    fail_unimplemented(source, ": the runtime engine runs BertModel and BertForSequenceClassification; this model is ",
                       info.head_class);
  const std::string act = loaded.config.get_string("hidden_act", "gelu");
  if (act != "gelu") fail_unimplemented(source, ": field 'hidden_act' = '", act, "'; the runtime engine runs 'gelu' (erf)");
  eps_ = static_cast<float>(loaded.config.get_float("layer_norm_eps", 1e-12));

  std::map<std::string, torch::Tensor> params;
  for (const auto& p : model.named_parameters()) params[p.key()] = p.value();
  const std::string pre = info.base_prefix + ".";
  auto get = [&](const std::string& name) { return to_vector(param(params, name)); };
  const auto& word = param(params, pre + "embeddings.word_embeddings.weight");
  vocab_ = word.size(0);
  hidden_ = word.size(1);
  word_ = to_vector(word);
  position_ = get(pre + "embeddings.position_embeddings.weight");
  max_positions_ = static_cast<int64_t>(position_.size()) / hidden_;
  token_type_ = get(pre + "embeddings.token_type_embeddings.weight");
  type_vocab_ = static_cast<int64_t>(token_type_.size()) / hidden_;
  emb_gamma_ = get(pre + "embeddings.LayerNorm.weight");
  emb_beta_ = get(pre + "embeddings.LayerNorm.bias");

  const auto structure = model.structure();
  const auto lin = [&](const nn::Linear& l) { return std::make_pair(to_vector(l->logical_weight()), to_vector(l->bias, l->out_features())); };
  for (size_t i = 0; i < structure.attention.size(); ++i) {
    const auto& att = structure.attention[i];
    const auto& ffn = structure.ffn[i];
    auto layer = std::make_unique<Layer>();
    layer->heads = att.num_heads;
    layer->head_dim = att.head_dim;
    const std::string lp = pre + "encoder.layer." + std::to_string(i) + ".";
    auto [ow, ob] = lin(att.head_cols);
    if (att.num_heads > 0) {
      // Q, K and V stacked into one [3A, hidden] weight: one GEMM reads x once.
      std::vector<float> w, b;
      for (const auto& l : att.head_rows) {
        auto [lw, lb] = lin(l);
        w.insert(w.end(), lw.begin(), lw.end());
        b.insert(b.end(), lb.begin(), lb.end());
      }
      layer->qkv = LinearOp(w.data(), 3 * att.num_heads * att.head_dim, hidden_, b.data(), options.precision,
                            lp + "attention.self.{query,key,value}");
      layer->attn_out = LinearOp(ow.data(), hidden_, att.num_heads * att.head_dim, ob.data(), options.precision,
                                 lp + "attention.output.dense");
    } else {
      layer->attn_bias_only = ob;
    }
    auto [iw, ib] = lin(ffn.neuron_rows.at(0));
    auto [fw, fb] = lin(ffn.neuron_cols);
    layer->ffn = ffn.neuron_rows[0]->out_features();
    layer->ffn_in = LinearOp(iw.data(), layer->ffn, hidden_, ib.data(), options.precision, lp + "intermediate.dense");
    layer->ffn_out = LinearOp(fw.data(), hidden_, layer->ffn, fb.data(), options.precision, lp + "output.dense");
    layer->attn_gamma = get(lp + "attention.output.LayerNorm.weight");
    layer->attn_beta = get(lp + "attention.output.LayerNorm.bias");
    layer->ffn_gamma = get(lp + "output.LayerNorm.weight");
    layer->ffn_beta = get(lp + "output.LayerNorm.bias");
    layers_.push_back(std::move(layer));
  }
  // The pooler and classifier are a vanishing share of the work: fp32 whatever the precision.
  if (params.count(pre + "pooler.dense.weight")) {
    auto w = get(pre + "pooler.dense.weight"), b = get(pre + "pooler.dense.bias");
    pooler_ = std::make_unique<LinearOp>(w.data(), hidden_, hidden_, b.data(), Precision::kFp32);
  }
  if (info.head_class == "BertForSequenceClassification") {
    auto w = get("classifier.weight"), b = get("classifier.bias");
    num_labels_ = static_cast<int64_t>(b.size());
    classifier_ = std::make_unique<LinearOp>(w.data(), num_labels_, hidden_, b.data(), Precision::kFp32);
  }
}

torch::Tensor BertEncoder::logits(const models::ModelInputs& in) const {
  if (!classifier_) fail_invalid("runtime: this model has no classification head");
  auto ids = in.input_ids.contiguous();
  auto mask = in.attention_mask.defined() ? in.attention_mask.to(torch::kLong).contiguous() : torch::Tensor();
  auto types = in.token_type_ids.defined() ? in.token_type_ids.contiguous() : torch::Tensor();
  auto r = forward(ids.data_ptr<int64_t>(), mask.defined() ? mask.data_ptr<int64_t>() : nullptr,
                   types.defined() ? types.data_ptr<int64_t>() : nullptr, ids.size(0), ids.size(1));
  return torch::from_blob(r.logits.data(), {r.batch, r.num_labels}, torch::kFloat32).clone();
}

int64_t BertEncoder::weight_bytes() const {
  int64_t bytes = 4 * static_cast<int64_t>(word_.size() + position_.size() + token_type_.size());
  for (const auto& l : layers_)
    for (const LinearOp* op : {&l->qkv, &l->attn_out, &l->ffn_in, &l->ffn_out}) bytes += op->weight_bytes();
  return bytes;
}

EncoderOutputs BertEncoder::forward(const int64_t* ids, const int64_t* mask, const int64_t* types, int64_t batch,
                                    int64_t seq) const {
  if (seq > max_positions_)
    fail_invalid("runtime: sequence length ", seq, " exceeds the model's max_position_embeddings (", max_positions_, ")");
  kernels::set_num_threads(options_.threads);
  const int64_t m = batch * seq, h = hidden_;
  EncoderOutputs out;
  out.batch = batch;
  out.seq = seq;
  out.hidden = h;
  std::vector<float>& x = out.last_hidden_state;
  x.resize(static_cast<size_t>(m * h));
  for (int64_t t = 0; t < m; ++t) {
    const int64_t id = ids[t], type = types ? types[t] : 0;
    if (id < 0 || id >= vocab_) fail_invalid("runtime: token id ", id, " is outside the vocabulary (", vocab_, ")");
    if (type < 0 || type >= type_vocab_) fail_invalid("runtime: token type ", type, " is outside type_vocab_size (", type_vocab_, ")");
    const float* w = &word_[id * h];
    const float* p = &position_[(t % seq) * h];
    const float* ty = &token_type_[type * h];
    float* row = &x[t * h];
    for (int64_t d = 0; d < h; ++d) row[d] = w[d] + ty[d] + p[d];
  }
  kernels::layer_norm_rows(x.data(), m, h, h, emb_gamma_.data(), emb_beta_.data(), eps_, x.data(), h);

  std::vector<float> qkv, ctx, attn(static_cast<size_t>(m * h)), inner;
  for (const auto& layer : layers_) {
    if (layer->heads == 0) {
      for (int64_t t = 0; t < m; ++t)
        for (int64_t d = 0; d < h; ++d) attn[t * h + d] = x[t * h + d] + layer->attn_bias_only[d];
    } else {
      const int64_t a = layer->heads * layer->head_dim, hd = layer->head_dim;
      qkv.resize(static_cast<size_t>(m * 3 * a));
      ctx.resize(static_cast<size_t>(m * a));
      layer->qkv.forward(x.data(), m, h, qkv.data(), 3 * a);
      const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
      // One (sequence, head) pair per task: scores = q k^T * scale, masked, softmax, times v.
      kernels::parallel_for(batch * layer->heads, [&](int64_t begin, int64_t end) {
        thread_local kernels::PackedF32Weights kp, vp;
        thread_local std::vector<float> scores;
        scores.resize(static_cast<size_t>(seq * seq));
        for (int64_t task = begin; task < end; ++task) {
          const int64_t b = task / layer->heads, head = task % layer->heads;
          const float* q = qkv.data() + b * seq * 3 * a + head * hd;
          kernels::pack_f32_weights_into(q + a, seq, hd, 3 * a, 1, kp);
          kernels::pack_f32_weights_into(q + 2 * a, hd, seq, 1, 3 * a, vp);
          kernels::GemmF32Epilogue e;
          e.alpha = scale;
          kernels::gemm_f32(q, seq, 3 * a, kp, scores.data(), seq, e);
          if (mask)
            for (int64_t j = 0; j < seq; ++j)
              if (mask[b * seq + j] == 0)
                for (int64_t i = 0; i < seq; ++i) scores[i * seq + j] = -std::numeric_limits<float>::infinity();
          kernels::softmax_rows(scores.data(), seq, seq, seq);
          kernels::gemm_f32(scores.data(), seq, seq, vp, ctx.data() + b * seq * a + head * hd, a);
        }
      });
      layer->attn_out.forward(ctx.data(), m, a, attn.data(), h, x.data(), h);
    }
    kernels::layer_norm_rows(attn.data(), m, h, h, layer->attn_gamma.data(), layer->attn_beta.data(), eps_, attn.data(), h);
    inner.resize(static_cast<size_t>(m * layer->ffn));
    layer->ffn_in.forward(attn.data(), m, h, inner.data(), layer->ffn);
    kernels::parallel_for(m, [&](int64_t r0, int64_t r1) {
      kernels::gelu_rows(inner.data() + r0 * layer->ffn, r1 - r0, layer->ffn, layer->ffn);
    });
    layer->ffn_out.forward(inner.data(), m, layer->ffn, x.data(), h, attn.data(), h);
    kernels::layer_norm_rows(x.data(), m, h, h, layer->ffn_gamma.data(), layer->ffn_beta.data(), eps_, x.data(), h);
  }
  if (classifier_) {
    std::vector<float> first(static_cast<size_t>(batch * h)), pooled(first.size());
    for (int64_t b = 0; b < batch; ++b) std::copy(&x[b * seq * h], &x[b * seq * h] + h, &first[b * h]);
    const float* feature = first.data();
    if (pooler_) {
      pooler_->forward(first.data(), batch, h, pooled.data(), h);
      for (auto& v : pooled) v = std::tanh(v);
      feature = pooled.data();
    }
    out.num_labels = num_labels_;
    out.logits.resize(static_cast<size_t>(batch * num_labels_));
    classifier_->forward(feature, batch, h, out.logits.data(), num_labels_);
  }
  return out;
}

}  // namespace sqz::runtime
