#include "data/evaluate.h"

#include <chrono>
#include <sstream>

#include "core/error.h"
#include "core/progress.h"
#include "data/metrics.h"
#include "models/beam_search.h"
#include "models/generation.h"

namespace sqz::data {

namespace {

// Batches an evaluation of `count` examples (or blocks) runs under `o`.
int64_t planned_batches(int64_t count, const EvalOptions& o) {
  const int64_t all = (count + o.batch_size - 1) / o.batch_size;
  return o.max_batches > 0 ? std::min(o.max_batches, all) : all;
}

void after_batch(const EvalOptions& o, int64_t done, int64_t count) {
  if (o.after_batch) o.after_batch(done, planned_batches(count, o));
}

// Whether this rank scores batch `index` (0-based) of the plan.
bool mine(const EvalOptions& o, int64_t index) { return !o.group || index % o.group->size() == o.group->rank(); }

// Sums counters over the group, in place (exact for counts below 2^53).
void sum_over_group(const EvalOptions& o, std::initializer_list<double*> values) {
  if (!o.group || !o.group->distributed()) return;
  std::vector<double> v;
  for (double* p : values) v.push_back(*p);
  auto t = torch::tensor(v, torch::kDouble);
  o.group->sum({t});
  size_t i = 0;
  for (double* p : values) *p = t[static_cast<int64_t>(i++)].item<double>();
}

std::vector<int64_t> gather_over_group(const EvalOptions& o, const std::vector<int64_t>& v) {
  if (!o.group || !o.group->distributed()) return v;
  auto all = o.group->gather_all(torch::tensor(v, torch::kLong)).contiguous();
  return {all.data_ptr<int64_t>(), all.data_ptr<int64_t>() + all.numel()};
}

}  // namespace

io::json evaluate_classification(models::TransformerModel* model, const ClassificationData& data,
                                 int64_t num_classes, const EvalOptions& o) {
  if (!model && !o.classification_logits) fail_invalid("evaluate: no model and no engine to take logits from");
  auto t0 = std::chrono::steady_clock::now();
  torch::NoGradGuard no_grad;
  bool was_training = model && model->is_training();
  if (model) model->eval();
  std::vector<int64_t> predicted, gold;
  int64_t batches = 0;
  for (int64_t i = 0; i < data.size(); i += o.batch_size) {
    if (o.max_batches > 0 && batches >= o.max_batches) break;
    if (!mine(o, batches++)) continue;
    auto batch = data.batch(i, i + o.batch_size);
    models::ModelInputs in;
    in.input_ids = batch.input_ids;
    in.attention_mask = batch.attention_mask;
    if (!model || model->info().uses_token_type_ids) in.token_type_ids = batch.token_type_ids;
    auto logits = o.classification_logits ? o.classification_logits(in) : model->forward(in).at("logits");
    if (o.logits_out && batches <= kKeptLogitBatches) o.logits_out->push_back(logits);
    auto pred = logits.argmax(-1);
    for (int64_t r = 0; r < pred.size(0); ++r) {
      predicted.push_back(pred[r].item<int64_t>());
      gold.push_back(batch.labels[r].item<int64_t>());
    }
    after_batch(o, batches, data.size());
  }
  if (model) model->train(was_training);
  predicted = gather_over_group(o, predicted);
  gold = gather_over_group(o, gold);
  return {{"accuracy", accuracy(predicted, gold)}, {"macro_f1", macro_f1(predicted, gold, num_classes)},
          {"examples", gold.size()}, {"elapsed_s", seconds_since(t0)}};
}

io::json evaluate_lm(models::TransformerModel* model, const LmData& data, Objective objective,
                     const MlmSpecialIds* mlm, const EvalOptions& o) {
  const bool engine = o.lm_logits && objective == Objective::kCausalLM;
  if (!model && !engine) fail_invalid("evaluate: no model, and no engine for ", objective_name(objective), " logits");
  auto t0 = std::chrono::steady_clock::now();
  torch::NoGradGuard no_grad;
  bool was_training = model && model->is_training();
  if (model) model->eval();
  auto gen = at::detail::createCPUGenerator(o.seed);
  double nll = 0;
  int64_t targets = 0, batches = 0;
  for (int64_t i = 0; i < data.num_blocks(); i += o.batch_size) {
    if (o.max_batches > 0 && batches >= o.max_batches) break;
    auto batch = data.batch(i, i + o.batch_size);
    // Every rank draws every batch's mask, so that its own batches get the masks a lone process gives them.
    if (objective == Objective::kMaskedLM) batch.labels = mask_tokens(batch.input_ids, batch.attention_mask, *mlm, o.mlm_probability, gen);
    if (!mine(o, batches++)) continue;
    auto r = engine ? loss_from_logits(o.lm_logits(batch), batch, objective) : compute_loss(*model, batch, objective);
    if (o.logits_out && batches <= kKeptLogitBatches && !engine) o.logits_out->push_back(r.outputs.at("logits"));
    nll += r.loss.item<double>() * static_cast<double>(r.targets);
    targets += r.targets;
    after_batch(o, batches, data.num_blocks());
  }
  if (model) model->train(was_training);
  double all_targets = static_cast<double>(targets);
  sum_over_group(o, {&nll, &all_targets});
  targets = static_cast<int64_t>(all_targets);
  io::json out = {{"perplexity", perplexity(nll, targets)}, {"tokens", targets}, {"elapsed_s", seconds_since(t0)}};
  if (objective == Objective::kCausalLM) {
    // Blocks do not overlap and the first token of each is not predicted: the bytes counted are
    // the text's bytes times the share of the token stream that was scored.
    double scored_bytes = static_cast<double>(data.num_bytes()) * static_cast<double>(targets) / static_cast<double>(data.num_tokens());
    out["bits_per_byte"] = bits_per_byte(nll, scored_bytes);
  } else {
    out["note"] = "masked-token perplexity (MLM)";
  }
  return out;
}

io::json evaluate_seq2seq(models::TransformerModel* model, const io::Tokenizer& tok, const Seq2SeqData& data, const EvalOptions& o) {
  auto t0 = std::chrono::steady_clock::now();
  torch::NoGradGuard no_grad;
  const bool engine = o.seq2seq_logits && o.seq2seq_decode;
  if (!engine && !model) fail_invalid("evaluate: seq2seq needs a model or an encoder-decoder engine");
  const bool was_training = model && model->is_training();
  if (model) model->eval();
  auto words = [&](const torch::Tensor& row_in) {
    const auto row = row_in.contiguous();
    std::vector<int64_t> ids;
    for (const int64_t* p = row.data_ptr<int64_t>(); p != row.data_ptr<int64_t>() + row.numel(); ++p)
      if (*p >= 0) ids.push_back(*p);
    std::vector<std::string> out;
    std::istringstream in(tok.decode(ids, /*skip_special_tokens=*/true));
    for (std::string w; in >> w;) out.push_back(w);
    return out;
  };
  double nll = 0;
  int64_t targets = 0, batches = 0, examples = 0, wrong = 0, edits = 0, reference_tokens = 0;
  Progress progress("eval", planned_batches(data.size(), o));
  for (int64_t i = 0; i < data.size(); i += o.batch_size) {
    if (o.max_batches > 0 && batches >= o.max_batches) break;
    if (!mine(o, batches++)) continue;
    auto batch = data.batch(i, i + o.batch_size);
    auto r = engine ? loss_from_logits(o.seq2seq_logits(batch), batch, Objective::kSeq2Seq) : compute_loss(*model, batch, Objective::kSeq2Seq);
    if (o.logits_out && batches <= kKeptLogitBatches && !engine) o.logits_out->push_back(r.outputs.at("logits"));
    nll += r.loss.item<double>() * static_cast<double>(r.targets);
    targets += r.targets;
    // Room for every reference of the batch plus a few tokens: a longer guess is wrong anyway.
    const int64_t room = batch.labels.size(1) + 4;
    torch::Tensor hyp;
    if (engine) {
      hyp = o.seq2seq_decode(batch, room);
    } else if (o.num_beams > 1) {
      models::BeamSearchOptions beams;
      beams.num_beams = o.num_beams;
      beams.max_new_tokens = room;
      hyp = models::padded_token_rows(models::beam_search(*model, batch.input_ids, batch.attention_mask, beams), room + 1);
    } else {
      hyp = models::generate_seq2seq_greedy(*model, batch.input_ids, batch.attention_mask, room);
    }
    for (int64_t row = 0; row < hyp.size(0); ++row) {
      auto want = words(batch.labels[row]), got = words(hyp[row]);
      wrong += got != want;
      edits += edit_distance(got, want);
      reference_tokens += static_cast<int64_t>(want.size());
      ++examples;
    }
    progress.update(batches, to_text("wer ", static_cast<double>(wrong) / static_cast<double>(examples)));
    after_batch(o, batches, data.size());
  }
  if (model) model->train(was_training);
  double counts[] = {static_cast<double>(targets), static_cast<double>(examples), static_cast<double>(wrong), static_cast<double>(edits),
                     static_cast<double>(reference_tokens)};
  sum_over_group(o, {&nll, &counts[0], &counts[1], &counts[2], &counts[3], &counts[4]});
  targets = static_cast<int64_t>(counts[0]), examples = static_cast<int64_t>(counts[1]), wrong = static_cast<int64_t>(counts[2]);
  edits = static_cast<int64_t>(counts[3]), reference_tokens = static_cast<int64_t>(counts[4]);
  if (examples == 0) fail_invalid("evaluate: no seq2seq examples");
  return {{"wer", static_cast<double>(wrong) / static_cast<double>(examples)},
          {"per", static_cast<double>(edits) / static_cast<double>(std::max<int64_t>(reference_tokens, 1))},
          {"perplexity", perplexity(nll, targets)}, {"examples", examples}, {"tokens", targets},
          {"decoding", o.num_beams > 1 ? "beam " + std::to_string(o.num_beams) : std::string("greedy")},
          {"elapsed_s", seconds_since(t0)}};
}

namespace {

// A split file read for `model` (null: an engine) as the task reads it.
struct SplitData {
  std::unique_ptr<ClassificationData> cls;
  std::unique_ptr<LmData> lm;
  std::unique_ptr<Seq2SeqData> s2s;
  int64_t num_labels = 0;
  Objective objective = Objective::kClassification;
  MlmSpecialIds mlm{};
  const TrainingData& any() const { return cls ? static_cast<const TrainingData&>(*cls) : lm ? static_cast<const TrainingData&>(*lm) : *s2s; }
};

SplitData read_split(models::TransformerModel* model, const io::Tokenizer& tok, const io::JsonFields& config, const std::string& task_name,
                     const fs::path& split, int64_t max_length, const EvalOptions& o) {
  const auto& task = find_task(task_name);
  SplitData d;
  if (task.kind == TaskKind::kClassification) {
    if (!config.has("id2label")) fail_invalid(config.source(), ": no id2label, so the labels are unknown");
    std::vector<std::string> names(config.value()["id2label"].size());
    for (auto& [id, name] : config.value()["id2label"].items()) names.at(std::stoul(id)) = name.get<std::string>();
    LabelSet labels(names);
    d.cls = std::make_unique<ClassificationData>(read_classification_jsonl(split), tok, labels, max_length, split.string(), o.group);
    d.num_labels = labels.size();
    return d;
  }
  if (task.kind == TaskKind::kLanguageModel) {
    // Without a libtorch model the logits come from a decoder engine (o.lm_logits): causal LM.
    if (!model && !o.lm_logits) fail_invalid("evaluate: language modelling needs a model or a decoder engine");
    if (model && model->info().max_positions > 0 && max_length > model->info().max_positions)
      fail_invalid("evaluate: blocks of --max-length ", max_length, " exceed the model's ", model->info().max_positions, " positions (",
                   config.source(), ")");
    d.lm = std::make_unique<LmData>(read_lm_text(split), tok, max_length, o.group);
    d.objective = !model || model->info().is_decoder ? Objective::kCausalLM : Objective::kMaskedLM;
    if (d.objective == Objective::kMaskedLM) d.mlm = mlm_special_ids(tok, config.source());
    return d;
  }
  const bool engine = o.seq2seq_logits && o.seq2seq_decode;
  if (!engine && (!model || !model->info().is_encoder_decoder))
    fail_invalid("evaluate: task '", task_name, "' needs an encoder-decoder (BART, T5) (", config.source(), ")");
  // Without a libtorch model the engine decodes from the config's start token.
  const int64_t start = model ? model->info().decoder_start_token_id.value_or(0) : config.get_int("decoder_start_token_id");
  d.s2s = std::make_unique<Seq2SeqData>(read_seq2seq_jsonl(split), tok, max_length, start, split.string(), o.group);
  d.objective = Objective::kSeq2Seq;
  return d;
}

}  // namespace

io::json evaluate_split(models::TransformerModel* model, const io::Tokenizer& tok, const io::JsonFields& config,
                        const std::string& task_name, const fs::path& split, int64_t max_length, const EvalOptions& o) {
  SplitData d = read_split(model, tok, config, task_name, split, max_length, o);
  if (d.cls) return evaluate_classification(model, *d.cls, d.num_labels, o);
  if (d.lm) return evaluate_lm(model, *d.lm, d.objective, &d.mlm, o);
  return evaluate_seq2seq(model, tok, *d.s2s, o);
}

int64_t forward_split(models::TransformerModel& model, const io::Tokenizer& tok, const io::JsonFields& config, const std::string& task_name,
                      const fs::path& split, int64_t max_length, const EvalOptions& o, const std::function<void(bool)>& stand_in) {
  torch::NoGradGuard no_grad;
  SplitData d = read_split(&model, tok, config, task_name, split, max_length, o);
  const TrainingData& data = d.any();
  const bool was_training = model.is_training();
  model.eval();
  auto gen = at::detail::createCPUGenerator(o.seed);
  const int64_t total = planned_batches(data.size(), o);
  int64_t batches = 0;
  Progress progress("forward", total);
  for (int64_t i = 0; i < data.size() && batches < total; i += o.batch_size) {
    auto whole = data.batch(i, i + o.batch_size);
    if (d.objective == Objective::kMaskedLM) whole.labels = mask_tokens(whole.input_ids, whole.attention_mask, d.mlm, o.mlm_probability, gen);
    const RankShare share = rank_share(whole, d.objective, o.group);
    if (stand_in) stand_in(share.stand_in);
    compute_loss(model, share.batch, d.objective);
    if (stand_in) stand_in(false);
    progress.update(++batches);
    after_batch(o, batches, data.size());
  }
  model.train(was_training);
  return batches;
}

double primary_score(const io::json& r) {
  if (r.contains("accuracy")) return r["accuracy"].get<double>();
  if (r.contains("wer")) return -r["wer"].get<double>();
  return -r["perplexity"].get<double>();
}

}  // namespace sqz::data
