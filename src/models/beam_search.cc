#include "models/beam_search.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "models/generation.h"

namespace sqz::models {

namespace {

// The n best finished hypotheses of one row (HF's BeamHypotheses).
class Hypotheses {
 public:
  Hypotheses(int64_t beams, double length_penalty, bool early_stopping)
      : beams_(beams), length_penalty_(length_penalty), early_stopping_(early_stopping) {}

  void add(std::vector<int64_t> tokens, double sum_logprobs, int64_t generated_len) {
    const double score = sum_logprobs / std::pow(static_cast<double>(generated_len), length_penalty_);
    if (static_cast<int64_t>(kept_.size()) >= beams_ && score <= worst_) return;
    kept_.push_back({score, std::move(tokens)});
    if (static_cast<int64_t>(kept_.size()) > beams_) {
      size_t lowest = 0, second = 1;
      if (kept_[second].score < kept_[lowest].score) std::swap(lowest, second);
      for (size_t i = 2; i < kept_.size(); ++i) {
        if (kept_[i].score < kept_[lowest].score) {
          second = lowest;
          lowest = i;
        } else if (kept_[i].score < kept_[second].score) {
          second = i;
        }
      }
      worst_ = kept_[second].score;
      kept_.erase(kept_.begin() + static_cast<std::ptrdiff_t>(lowest));
    } else {
      worst_ = std::min(score, worst_);
    }
  }

  // No running beam can beat the worst kept hypothesis any more (HF's heuristic for
  // early_stopping=false: the best candidate's sum over the current length).
  bool done(double best_sum_logprobs, int64_t generated_len) const {
    if (static_cast<int64_t>(kept_.size()) < beams_) return false;
    if (early_stopping_) return true;
    return worst_ >= best_sum_logprobs / std::pow(static_cast<double>(generated_len), length_penalty_);
  }

  // The highest score; among equal scores the one added last, as HF's sorted(...).pop() picks.
  const std::vector<int64_t>& best() const {
    size_t at = 0;
    for (size_t i = 1; i < kept_.size(); ++i)
      if (kept_[i].score >= kept_[at].score) at = i;
    return kept_[at].tokens;
  }

 private:
  struct Kept {
    double score;
    std::vector<int64_t> tokens;
  };
  int64_t beams_;
  double length_penalty_;
  bool early_stopping_;
  double worst_ = 1e9;
  std::vector<Kept> kept_;
};

std::vector<int64_t> row_of(const torch::Tensor& seqs, int64_t row) {
  auto r = seqs[row].contiguous();
  return {r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel()};
}

// libtorch's model, one cached step at a time.
class ModelBeamSteps final : public BeamSteps {
 public:
  ModelBeamSteps(TransformerModel& model, torch::Tensor source, torch::Tensor source_mask)
      : steps_(model, std::move(source), std::move(source_mask), "beam search") {}
  torch::Tensor next_logits(const torch::Tensor& newest) override { return steps_.next_logits(newest); }
  void reorder(const torch::Tensor& rows) override {
    KVCache& cache = steps_.cache();
    for (auto* list : {&cache.keys, &cache.values, &cache.cross_keys, &cache.cross_values})
      for (auto& t : *list)
        if (t.defined()) t = t.index_select(0, rows);
  }

 private:
  DecodingSteps steps_;
};

// HF's ForcedBOS (first decoder position) and ForcedEOS (last step max_length allows) processors.
void force_tokens(torch::Tensor& scores, int64_t decoder_len, int64_t max_length, const BeamSearchOptions& o) {
  auto force = [&](int64_t id) {
    scores.fill_(-std::numeric_limits<float>::infinity());
    scores.select(1, id).fill_(0);
  };
  if (decoder_len == 1 && o.forced_bos_token_id) force(*o.forced_bos_token_id);
  if (decoder_len == max_length - 1 && o.forced_eos_token_id) force(*o.forced_eos_token_id);
}

}  // namespace

std::vector<std::vector<int64_t>> beam_search(TransformerModel& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                              const BeamSearchOptions& o) {
  const ModelInfo& info = model.info();
  if (!info.is_decoder && !info.is_encoder_decoder) fail_invalid(info.head_class, " cannot generate: no language-model head");
  if (!info.eos_token_id || (!info.pad_token_id && input_ids.size(0) > 1))
    fail_invalid("config.json: beam search needs eos_token_id (and pad_token_id for a batch)");
  const bool seq2seq = info.is_encoder_decoder;
  if (!seq2seq && input_ids.size(0) != 1) fail_invalid("beam search: a decoder takes one prompt [1, T], got ", input_ids.sizes());
  if (seq2seq && !info.decoder_start_token_id) fail_invalid("config.json: decoder_start_token_id is not set");
  torch::NoGradGuard no_grad;
  const int64_t batch = input_ids.size(0), k = std::max<int64_t>(1, o.num_beams);
  auto source = input_ids.repeat_interleave(k, 0);
  auto source_mask = attention_mask.defined() ? attention_mask.repeat_interleave(k, 0) : torch::Tensor();
  auto start = seq2seq ? torch::full({batch * k, 1}, *info.decoder_start_token_id, torch::kLong) : source.clone();
  ModelBeamSteps steps(model, source, source_mask);
  const BeamTokens tokens{*info.eos_token_id, info.pad_token_id.value_or(*info.eos_token_id), info.max_positions};
  return beam_search(steps, start, batch, tokens, o);
}

std::vector<std::vector<int64_t>> beam_search(BeamSteps& steps, const torch::Tensor& start, int64_t batch, const BeamTokens& tokens,
                                              const BeamSearchOptions& o) {
  if (o.num_beams < 1) fail_invalid("--num-beams must be >= 1, got ", o.num_beams);
  if (o.max_new_tokens < 1) fail_invalid("beam search: --max-new-tokens must be >= 1, got ", o.max_new_tokens);
  torch::NoGradGuard no_grad;
  const int64_t k = o.num_beams, eos = tokens.eos, pad = tokens.pad;
  auto seqs = start.to(torch::kLong);
  const int64_t prompt_len = seqs.size(1);
  int64_t max_length = prompt_len + o.max_new_tokens;
  if (tokens.max_positions > 0) max_length = std::min(max_length, tokens.max_positions);
  auto beam_scores = torch::zeros({batch, k}, torch::kFloat32);
  beam_scores.slice(1, 1).fill_(-1e9);  // the beams start equal: only the first may expand at step one
  beam_scores = beam_scores.view({-1});
  std::vector<Hypotheses> hyps(static_cast<size_t>(batch), Hypotheses(k, o.length_penalty, o.early_stopping));
  std::vector<bool> done(static_cast<size_t>(batch), false);
  torch::Tensor step = seqs;
  for (int64_t cur_len = prompt_len; cur_len < max_length; ++cur_len) {
    auto scores = torch::log_softmax(steps.next_logits(step).to(torch::kFloat32), -1);
    force_tokens(scores, cur_len, max_length, o);
    const int64_t vocab = scores.size(1);
    auto [top, flat] = (scores + beam_scores.unsqueeze(1)).view({batch, k * vocab}).topk(2 * k, 1, true, true);
    auto next_scores = torch::zeros({batch, k}, torch::kFloat32);
    auto next_tokens = torch::full({batch, k}, pad, torch::kLong);
    auto next_rows = torch::zeros({batch, k}, torch::kLong);
    auto top_a = top.accessor<float, 2>();
    auto flat_a = flat.accessor<int64_t, 2>();
    for (int64_t b = 0; b < batch; ++b) {
      if (done[b]) continue;
      int64_t filled = 0;
      for (int64_t rank = 0; rank < 2 * k && filled < k; ++rank) {
        const int64_t row = b * k + flat_a[b][rank] / vocab, token = flat_a[b][rank] % vocab;
        if (token == eos) {
          if (rank < k) hyps[b].add(row_of(seqs, row), top_a[b][rank], cur_len + 1 - prompt_len);
          continue;
        }
        next_scores[b][filled] = top_a[b][rank];
        next_tokens[b][filled] = token;
        next_rows[b][filled] = row;
        ++filled;
      }
      done[b] = hyps[b].done(top[b].max().item<double>(), cur_len + 1 - prompt_len);
    }
    beam_scores = next_scores.view({-1});
    auto rows = next_rows.view({-1});
    seqs = torch::cat({seqs.index_select(0, rows), next_tokens.view({-1, 1})}, 1);
    steps.reorder(rows);
    step = next_tokens.view({-1, 1});
    if (std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
  }
  std::vector<std::vector<int64_t>> result;
  for (int64_t b = 0; b < batch; ++b) {
    if (!done[b])
      for (int64_t j = 0; j < k; ++j)
        hyps[b].add(row_of(seqs, b * k + j), beam_scores[b * k + j].item<double>(), seqs.size(1) - prompt_len);
    auto best = hyps[b].best();
    if (static_cast<int64_t>(best.size()) < max_length) best.push_back(eos);  // finished hypotheses are kept without it
    result.emplace_back(best.begin() + prompt_len, best.end());
  }
  return result;
}

torch::Tensor padded_token_rows(const std::vector<std::vector<int64_t>>& rows, int64_t width, int64_t fill) {
  auto out = torch::full({static_cast<int64_t>(rows.size()), width}, fill, torch::kLong);
  auto a = out.accessor<int64_t, 2>();
  for (size_t r = 0; r < rows.size(); ++r) {
    if (static_cast<int64_t>(rows[r].size()) > width) fail_invalid("beam search: a row of ", rows[r].size(), " tokens exceeds ", width);
    for (size_t j = 0; j < rows[r].size(); ++j) a[static_cast<int64_t>(r)][static_cast<int64_t>(j)] = rows[r][j];
  }
  return out;
}

}  // namespace sqz::models
