#include "compress/distiller.h"

#include <sstream>

#include "core/error.h"
#include "core/log.h"

namespace sqz::compress {

namespace {

std::vector<std::pair<int64_t, int64_t>> parse_map(const YAML::Node& n, const std::string& where) {
  std::vector<std::pair<int64_t, int64_t>> out;
  try {
    for (const auto& pair : n) {
      auto v = pair.as<std::vector<int64_t>>();
      if (v.size() != 2) throw YAML::Exception(pair.Mark(), "pair");
      out.emplace_back(v[0], v[1]);
    }
  } catch (const YAML::Exception&) {
    fail_invalid(where, ": a layer map is a list of [student, teacher] index pairs, e.g. [[2, 4], [4, 8]]");
  }
  return out;
}

// The token at each position the distilled outputs (logits, last states) live at (data::real_positions).
using data::real_positions;
torch::Tensor position_tokens(const data::Batch& b) { return b.decoder_input_ids.defined() ? b.decoder_input_ids : b.input_ids; }

// Real-token mask [B, T, 1] for averaging per-token losses (all ones without padding).
torch::Tensor token_weights(const data::Batch& b) { return real_positions(b).to(torch::kFloat).unsqueeze(-1); }

}  // namespace

DistillSpec DistillSpec::parse(const YAML::Node& node, const std::string& source) {
  DistillSpec s;
  s.source = source;
  if (!node.IsMap()) fail_invalid(source, ": 'distill' must be a mapping");
  for (const auto& kv : node) {
    std::string key = kv.first.as<std::string>();
    std::string where = to_text(source, " (line ", kv.first.Mark().line + 1, ")");
    try {
      if (key == "teacher") s.teacher = kv.second.as<std::string>();
      else if (key == "temperature") s.temperature = kv.second.as<double>();
      else if (key == "logits_weight") s.logits_weight = kv.second.as<double>();
      else if (key == "labels_weight") s.labels_weight = kv.second.as<double>();
      else if (key == "hidden_weight") s.hidden_weight = kv.second.as<double>();
      else if (key == "attention_weight") s.attention_weight = kv.second.as<double>();
      else if (key == "hidden_map") s.hidden_map = parse_map(kv.second, where);
      else if (key == "attention_map") s.attention_map = parse_map(kv.second, where);
      else if (key == "project") s.project = kv.second.as<bool>();
      else if (key == "contrastive_weight") s.contrastive_weight = kv.second.as<double>();
      else if (key == "contrastive_temperature") s.contrastive_temperature = kv.second.as<double>();
      else if (key == "contrastive_momentum") s.contrastive_momentum = kv.second.as<double>();
      else
        fail_invalid(where, ": unknown distill key '", key,
                     "' (known: teacher, temperature, logits_weight, labels_weight, hidden_weight, attention_weight, "
                     "hidden_map, attention_map, project, contrastive_weight, contrastive_temperature, contrastive_momentum)");
    } catch (const YAML::Exception&) {
      fail_invalid(where, ": distill key '", key, "' has a value of the wrong type");
    }
  }
  if (s.temperature <= 0) fail_invalid(source, ": distill.temperature must be > 0");
  for (double w : {s.logits_weight, s.labels_weight, s.hidden_weight, s.attention_weight, s.contrastive_weight})
    if (w < 0) fail_invalid(source, ": distill weights must be >= 0");
  if (s.contrastive_temperature <= 0) fail_invalid(source, ": distill.contrastive_temperature must be > 0");
  if (s.contrastive_momentum < 0 || s.contrastive_momentum >= 1) fail_invalid(source, ": distill.contrastive_momentum must be in [0, 1)");
  return s;
}

YAML::Node DistillSpec::to_yaml() const {
  YAML::Node n;
  n["teacher"] = teacher;
  n["temperature"] = temperature;
  n["logits_weight"] = logits_weight;
  n["labels_weight"] = labels_weight;
  n["hidden_weight"] = hidden_weight;
  n["attention_weight"] = attention_weight;
  for (const auto& [s, t] : hidden_map) n["hidden_map"].push_back(std::vector<int64_t>{s, t});
  for (const auto& [s, t] : attention_map) n["attention_map"].push_back(std::vector<int64_t>{s, t});
  n["project"] = project;
  if (contrastive_weight > 0) {
    n["contrastive_weight"] = contrastive_weight;
    n["contrastive_temperature"] = contrastive_temperature;
    n["contrastive_momentum"] = contrastive_momentum;
  }
  return n;
}

void Distiller::attach(models::TransformerModel& student, const io::Tokenizer& student_tok, const io::json& student_config,
                       const std::string& head) {
  const std::string who = spec_.source + ": distill.teacher '" + spec_.teacher + "'";
  // Same token ids must mean the same tokens, or the logits and hidden states do not line up.
  auto teacher_tok = io::load_tokenizer(spec_.teacher);
  if (teacher_tok->vocab_size() != student_tok.vocab_size())
    fail_invalid(who, ": its tokenizer has ", teacher_tok->vocab_size(), " tokens, the student's ", student_tok.vocab_size());
  for (int64_t id = 0; id < student_tok.vocab_size(); ++id)
    if (teacher_tok->id_to_token(id) != student_tok.id_to_token(id))
      fail_invalid(who, ": its tokenizer differs from the student's at id ", id, " ('", teacher_tok->id_to_token(id), "' vs '",
                   student_tok.id_to_token(id), "')");
  models::LoadOptions options;
  options.head = head;
  auto loaded = models::load_model(spec_.teacher, options);
  teacher_ = loaded.model;
  teacher_->eval();
  for (auto& p : teacher_->parameters()) p.requires_grad_(false);
  if (teacher_->info().vocab_size != student.info().vocab_size)
    fail_invalid(who, ": vocab_size ", teacher_->info().vocab_size, " differs from the student's ", student.info().vocab_size);
  const auto& tc = loaded.config.value();
  if (student_config.contains("id2label") && tc.contains("id2label") && tc["id2label"] != student_config["id2label"])
    fail_invalid(who, ": its labels ", tc["id2label"].dump(), " differ from the task's ", student_config["id2label"].dump());

  // Layers whose states the outputs carry: an encoder-decoder's are its decoder's.
  auto output_layers = [](const models::ModelInfo& i) { return i.is_encoder_decoder ? i.decoder_layers : i.num_layers; };
  const int64_t sl = output_layers(student.info()), tl = output_layers(teacher_->info());
  auto default_map = [&] {
    std::vector<std::pair<int64_t, int64_t>> m;
    for (int64_t i = 1; i <= sl; ++i) m.emplace_back(i, i * tl / sl);
    return m;
  };
  if (spec_.hidden_weight > 0 && spec_.hidden_map.empty()) spec_.hidden_map = default_map();
  if (spec_.attention_weight > 0 && spec_.attention_map.empty()) spec_.attention_map = default_map();
  for (const auto& [s, t] : spec_.hidden_map)
    if (s < 0 || s > sl || t < 0 || t > tl)
      fail_invalid(spec_.source, ": distill.hidden_map [", s, ", ", t, "]: indices run 0..", sl, " (student) and 0..", tl, " (teacher)");
  for (const auto& [s, t] : spec_.attention_map)
    if (s < 1 || s > sl || t < 1 || t > tl)
      fail_invalid(spec_.source, ": distill.attention_map [", s, ", ", t, "]: layers run 1..", sl, " (student) and 1..", tl, " (teacher)");
  if (auto st = student.structure(); !st.hidden.norms.empty()) student_norm_ = st.hidden.norms.front();
  const int64_t sw = student.info().hidden_size, tw = teacher_->info().hidden_size;
  for (size_t i = 0; i < spec_.hidden_map.size(); ++i) {
    if (sw == tw) {
      projections_.emplace_back(nullptr);
      continue;
    }
    if (!spec_.project)
      fail_invalid(spec_.source, ": distill.hidden_map [", spec_.hidden_map[i].first, ", ", spec_.hidden_map[i].second,
                   "] links a ", sw, "-wide student state to a ", tw, "-wide teacher state; set project: true to learn a projection");
    projections_.emplace_back(torch::nn::LinearOptions(sw, tw));
  }
  if (spec_.contrastive_weight > 0 && sw != tw)
    fail_invalid(spec_.source, ": contrastive distillation compares ", sw, "-wide student and ", tw,
                 "-wide teacher token states; it needs equal widths (it is for quantized students of the same shape)");
  if (spec_.attention_weight > 0) {
    auto ss = student.structure(), ts = teacher_->structure();
    if (ss.attention.empty() || ts.attention.empty())
      fail_unimplemented(spec_.source, ": attention-map distillation needs attention blocks sqz can describe for '",
                         student.info().model_type, "'");
    for (const auto& [s, t] : spec_.attention_map)
      if (ss.attention[s - 1].num_heads != ts.attention[t - 1].num_heads)
        fail_invalid(spec_.source, ": distill.attention_map [", s, ", ", t, "]: student layer has ", ss.attention[s - 1].num_heads,
                     " heads, teacher layer ", ts.attention[t - 1].num_heads);
  }
}

torch::Tensor Distiller::loss(const data::Batch& batch, const data::LossResult& task) {
  torch::Tensor total = task.loss * spec_.labels_weight;
  // A data-parallel share's means are its part of the whole batch's (data::Batch::whole).
  double of_positions = 1.0, of_rows = 1.0;
  if (batch.whole) {
    of_positions = batch.share_of_mean(real_positions(batch).sum().item<int64_t>(), batch.whole->positions);
    of_rows = batch.share_of_mean(batch.input_ids.size(0), batch.whole->rows);
  }
  models::ModelOutputs t;
  {
    torch::NoGradGuard no_grad;
    auto in = data::batch_inputs(*teacher_, batch);
    in.output_hidden_states = wants_hidden_states();
    in.output_attentions = wants_attentions();
    t = teacher_->forward(in);
  }
  const auto& s = task.outputs;
  if (spec_.logits_weight > 0) {
    const double T = spec_.temperature;
    auto sl = s.at("logits"), tl = t.at("logits");
    auto kl = torch::kl_div(torch::log_softmax(sl / T, -1), torch::log_softmax(tl / T, -1), at::Reduction::None, /*log_target=*/true)
                  .sum(-1);
    torch::Tensor mean;
    if (kl.dim() == 2) {  // per token: average over real tokens
      auto w = real_positions(batch).to(torch::kFloat);
      mean = (kl * w).sum() / w.sum().clamp_min(1.0) * of_positions;
    } else {
      mean = kl.mean() * of_rows;
    }
    auto term = mean * (T * T);
    last_kl_ = term.item<double>();
    total = total + spec_.logits_weight * term;
  }
  if (spec_.hidden_weight > 0) {
    auto w = token_weights(batch);
    torch::Tensor keep = student_norm_ ? student_norm_->keep : torch::Tensor();
    torch::Tensor sum;
    for (size_t i = 0; i < spec_.hidden_map.size(); ++i) {
      auto sh = s.hidden_states.at(spec_.hidden_map[i].first);
      auto th = t.hidden_states.at(spec_.hidden_map[i].second);
      torch::Tensor mse;
      if (projections_[i]) {
        sh = projections_[i](sh);
        mse = ((sh - th).pow(2) * w).sum() / (w.sum() * th.size(-1)).clamp_min(1.0);
      } else if (keep.defined()) {  // pruned hidden dimensions are not the student's to match
        mse = ((sh - th).pow(2) * w * keep).sum() / (w.sum() * keep.sum()).clamp_min(1.0);
      } else {
        mse = ((sh - th).pow(2) * w).sum() / (w.sum() * th.size(-1)).clamp_min(1.0);
      }
      sum = sum.defined() ? sum + mse : mse;
    }
    sum = sum * (of_positions / static_cast<double>(spec_.hidden_map.size()));
    last_hidden_ = sum.item<double>();
    total = total + spec_.hidden_weight * sum;
  }
  if (spec_.contrastive_weight > 0) {
    auto term = contrastive(batch, s.hidden_states.back(), t.hidden_states.back()) * of_positions;
    last_contrastive_ = term.item<double>();
    total = total + spec_.contrastive_weight * term;
  }
  if (spec_.attention_weight > 0) {
    torch::Tensor sum;
    for (const auto& [si, ti] : spec_.attention_map) {
      auto mse = torch::mse_loss(s.attentions.at(si - 1), t.attentions.at(ti - 1));
      sum = sum.defined() ? sum + mse : mse;
    }
    sum = sum * (of_rows / static_cast<double>(spec_.attention_map.size()));  // padded as the whole batch: equal elements per row
    last_attention_ = sum.item<double>();
    total = total + spec_.attention_weight * sum;
  }
  return total;
}

void Distiller::update_memory(const torch::Tensor& flat_ids, const torch::Tensor& positives, const torch::Tensor& real) {
  auto sums = torch::zeros_like(memory_).index_add_(0, flat_ids, positives.reshape({-1, positives.size(-1)}) *
                                                                     real.reshape({-1, 1}).to(positives.scalar_type()));
  auto counts = torch::zeros({memory_.size(0)}).index_add_(0, flat_ids, real.reshape({-1}).to(torch::kFloat));
  auto hit = counts > 0;
  auto mean = sums / counts.clamp_min(1).unsqueeze(1);
  const double m = spec_.contrastive_momentum;
  auto updated = torch::where(memory_seen_.unsqueeze(1), m * memory_ + (1 - m) * mean, mean);
  memory_ = torch::where(hit.unsqueeze(1),
                         torch::nn::functional::normalize(updated, torch::nn::functional::NormalizeFuncOptions().dim(-1)), memory_);
  memory_seen_ = memory_seen_ | hit;
  memory_hit_ = memory_hit_.defined() ? memory_hit_ | hit : hit;
}

torch::Tensor Distiller::contrastive(const data::Batch& batch, const torch::Tensor& student, const torch::Tensor& teacher) {
  const auto ids = position_tokens(batch);  // [B, L]
  const auto real = real_positions(batch);
  auto z = torch::nn::functional::normalize(student, torch::nn::functional::NormalizeFuncOptions().dim(-1));
  torch::Tensor keys, positives;
  {
    torch::NoGradGuard no_grad;
    positives = torch::nn::functional::normalize(teacher.detach(), torch::nn::functional::NormalizeFuncOptions().dim(-1));
    if (!memory_.defined()) {
      memory_ = torch::zeros({teacher_->info().vocab_size, teacher.size(-1)});
      memory_seen_ = torch::zeros({teacher_->info().vocab_size}, torch::kBool);
    }
    // Negatives: the memory of each token of the sequence (its current teacher state until seen).
    auto flat_ids = ids.reshape({-1});
    auto remembered = memory_.index_select(0, flat_ids).reshape(positives.sizes());
    auto seen = memory_seen_.index_select(0, flat_ids).reshape(ids.sizes()).unsqueeze(-1);
    keys = torch::where(seen, remembered, positives);
    // Momentum update with the batch mean of each token's teacher states (a stand-in's are not the batch's).
    if (!stand_in_) update_memory(flat_ids, positives, real);
  }
  // scores[b, i, j]: student token i against key j; the diagonal key is the teacher's own token i.
  auto scores = torch::matmul(z, keys.transpose(1, 2));
  auto diag = (z * positives).sum(-1);  // [B, L]
  const int64_t L = ids.size(1);
  auto eye = torch::eye(L, torch::kBool).unsqueeze(0);
  scores = torch::where(eye, diag.unsqueeze(-1).expand_as(scores), scores) / spec_.contrastive_temperature;
  // Padding and other occurrences of the same token are not negatives.
  auto same_token = ids.unsqueeze(2).eq(ids.unsqueeze(1)) & ~eye;
  auto invalid = same_token | ~real.unsqueeze(1);
  scores = scores.masked_fill(invalid, -1e9);
  auto loss = -torch::log_softmax(scores, -1).diagonal(0, 1, 2);  // [B, L]
  auto w = real.to(loss.scalar_type());
  return (loss * w).sum() / w.sum().clamp_min(1.0);
}

std::vector<torch::Tensor> Distiller::trainable() {
  std::vector<torch::Tensor> out;
  for (auto& p : projections_)
    if (p) for (auto& t : p->parameters()) out.push_back(t);
  return out;
}

void Distiller::save_state(const std::string& prefix, train::StateDict& state) const {
  for (size_t i = 0; i < projections_.size(); ++i)
    if (projections_[i]) {
      state.put(prefix + "projection." + std::to_string(i) + ".weight", projections_[i]->weight);
      state.put(prefix + "projection." + std::to_string(i) + ".bias", projections_[i]->bias);
    }
  state.put(prefix + "memory", memory_);
  state.put(prefix + "memory_seen", memory_seen_);
}

void Distiller::load_state(const std::string& prefix, const train::StateDict& state) {
  for (size_t i = 0; i < projections_.size(); ++i)
    if (projections_[i]) {
      state.copy_into(prefix + "projection." + std::to_string(i) + ".weight", projections_[i]->weight);
      state.copy_into(prefix + "projection." + std::to_string(i) + ".bias", projections_[i]->bias);
    }
  memory_ = state.get(prefix + "memory");
  memory_seen_ = state.get(prefix + "memory_seen");
}

void Distiller::synchronize(dist::Group& group) {
  if (!memory_.defined()) return;
  torch::NoGradGuard no_grad;
  auto hit = memory_hit_.defined() ? memory_hit_.to(torch::kFloat) : torch::zeros({memory_.size(0)});
  group.max(hit);  // the rows some rank updated: one index list on every rank
  auto rows = hit.nonzero().reshape({-1});
  memory_hit_ = torch::Tensor();
  if (rows.numel() == 0) return;
  auto mine = memory_.index_select(0, rows);
  group.mean({mine});
  memory_.index_copy_(0, rows, torch::nn::functional::normalize(mine, torch::nn::functional::NormalizeFuncOptions().dim(-1)));
  memory_seen_.index_fill_(0, rows, true);
}

std::string Distiller::status() const {
  std::ostringstream s;
  s.precision(3);
  if (spec_.logits_weight > 0) s << " kd " << last_kl_;
  if (spec_.hidden_weight > 0) s << " hid " << last_hidden_;
  if (spec_.attention_weight > 0) s << " att " << last_attention_;
  if (spec_.contrastive_weight > 0) s << " ctr " << last_contrastive_;
  return s.str();
}

}  // namespace sqz::compress
