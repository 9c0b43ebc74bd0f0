#include "data/objectives.h"

#include "core/error.h"

namespace sqz::data {

namespace {
constexpr int64_t kIgnoreIndex = -100;
}

Objective parse_objective(const std::string& name, TaskKind task, bool is_decoder) {
  if (name == "mlm") return Objective::kMaskedLM;
  if (name == "clm") return Objective::kCausalLM;
  if (name == "classification") return Objective::kClassification;
  if (name == "seq2seq") return Objective::kSeq2Seq;
  if (task == TaskKind::kClassification) return Objective::kClassification;
  if (task == TaskKind::kLanguageModel) return is_decoder ? Objective::kCausalLM : Objective::kMaskedLM;
  return Objective::kSeq2Seq;
}

const char* objective_name(Objective o) {
  switch (o) {
    case Objective::kMaskedLM: return "mlm";
    case Objective::kCausalLM: return "clm";
    case Objective::kClassification: return "classification";
    case Objective::kSeq2Seq: return "seq2seq";
  }
  return "?";
}

MlmSpecialIds mlm_special_ids(const io::Tokenizer& tok, const std::string& source) {
  auto mask = tok.special_id("mask");
  if (!mask) fail_invalid(source, ": masked LM needs a mask token");
  MlmSpecialIds ids{*mask, {}, tok.vocab_size()};
  for (const char* role : {"cls", "sep", "pad", "bos", "eos", "unk"})
    if (auto id = tok.special_id(role)) ids.never_mask.push_back(*id);
  return ids;
}

torch::Tensor mask_tokens(torch::Tensor& input_ids, const torch::Tensor& attention_mask, const MlmSpecialIds& ids,
                          double probability, torch::Generator& gen) {
  auto labels = input_ids.clone();
  auto eligible = attention_mask.to(torch::kBool);
  for (int64_t s : ids.never_mask) eligible = eligible.logical_and(input_ids.ne(s));
  auto chosen = torch::bernoulli(torch::full(input_ids.sizes(), probability), gen).to(torch::kBool).logical_and(eligible);
  labels.masked_fill_(chosen.logical_not(), kIgnoreIndex);
  auto to_mask = torch::bernoulli(torch::full(input_ids.sizes(), 0.8), gen).to(torch::kBool).logical_and(chosen);
  input_ids.masked_fill_(to_mask, ids.mask_id);
  auto to_random = torch::bernoulli(torch::full(input_ids.sizes(), 0.5), gen).to(torch::kBool)
                       .logical_and(chosen).logical_and(to_mask.logical_not());
  auto random_ids = torch::randint(ids.vocab_size, input_ids.sizes(), gen, torch::kLong);
  input_ids.copy_(torch::where(to_random, random_ids, input_ids));
  return labels;
}

models::ModelInputs batch_inputs(const models::TransformerModel& model, const Batch& batch) {
  models::ModelInputs in;
  in.input_ids = batch.input_ids;
  in.attention_mask = batch.attention_mask;
  if (model.info().uses_token_type_ids && batch.token_type_ids.defined()) in.token_type_ids = batch.token_type_ids;
  if (model.info().is_encoder_decoder && batch.decoder_input_ids.defined()) in.decoder_input_ids = batch.decoder_input_ids;
  return in;
}

int64_t target_count(const Batch& batch, Objective objective) {
  switch (objective) {
    case Objective::kClassification: return batch.labels.size(0);
    case Objective::kSeq2Seq:
    case Objective::kMaskedLM: return batch.labels.ne(kIgnoreIndex).sum().item<int64_t>();
    case Objective::kCausalLM: return batch.attention_mask.slice(1, 1).ne(0).sum().item<int64_t>();
  }
  return 0;
}

Batch share_of(const Batch& whole, int64_t begin, int64_t end, Objective objective) {
  Batch share = batch_rows(whole, begin, end);
  share.whole = BatchCounts{whole.input_ids.size(0), target_count(whole, objective), real_positions(whole).sum().item<int64_t>()};
  return share;
}

RankShare rank_share(const Batch& whole, Objective objective, const dist::Group* group) {
  const int64_t rows = whole.input_ids.size(0);
  const auto [begin, end] = group ? dist::shard(rows, group->rank(), group->size()) : std::pair<int64_t, int64_t>{0, rows};
  const bool stand_in = begin == end;
  return {share_of(whole, stand_in ? 0 : begin, stand_in ? 1 : end, objective), stand_in};
}

LossResult loss_from_logits(const torch::Tensor& logits, const Batch& batch, Objective objective) {
  namespace F = torch::nn::functional;
  LossResult r;
  switch (objective) {
    case Objective::kClassification:
      r.loss = F::cross_entropy(logits, batch.labels);
      break;
    case Objective::kSeq2Seq:  // labels [B, Tt] aligned with the decoder's positions, -100 at padding
    case Objective::kMaskedLM: {
      auto flat_labels = batch.labels.reshape({-1});
      if (logits.dim() == 2) flat_labels = flat_labels.masked_select(flat_labels.ne(kIgnoreIndex));  // scored rows only
      r.loss = F::cross_entropy(logits.reshape({-1, logits.size(-1)}), flat_labels,
                                F::CrossEntropyFuncOptions().ignore_index(kIgnoreIndex));
      break;
    }
    case Objective::kCausalLM: {
      auto targets = batch.input_ids.slice(1, 1).masked_fill(batch.attention_mask.slice(1, 1).eq(0), kIgnoreIndex);
      auto pred = logits.slice(1, 0, -1);
      r.loss = F::cross_entropy(pred.reshape({-1, pred.size(-1)}), targets.reshape({-1}),
                                F::CrossEntropyFuncOptions().ignore_index(kIgnoreIndex));
      break;
    }
  }
  r.targets = target_count(batch, objective);
  if (batch.whole) {
    // A share without targets (MLM masked none of its tokens) adds nothing; the mean over none is NaN.
    r.loss = r.targets == 0 ? logits.sum() * 0.0 : r.loss * batch.share_of_mean(r.targets, batch.whole->targets);
  }
  return r;
}

LossResult compute_loss(models::TransformerModel& model, const Batch& batch, Objective objective, bool hidden_states,
                        bool attentions, bool all_logits) {
  models::ModelInputs in = batch_inputs(model, batch);
  in.output_hidden_states = hidden_states;
  in.output_attentions = attentions;
  if (objective == Objective::kMaskedLM && !all_logits) in.logit_rows = batch.labels.ne(kIgnoreIndex);
  auto outputs = model.forward(in);
  LossResult r = loss_from_logits(outputs.at("logits"), batch, objective);
  r.outputs = std::move(outputs);
  return r;
}

}  // namespace sqz::data
