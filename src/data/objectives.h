// Training objectives as loss functions of (model, batch): masked LM, causal LM, sequence
// classification and sequence-to-sequence (teacher-forced target tokens). Each returns the mean loss and the number of target tokens/examples.
#pragma once
#include "io/tokenizers/tokenizer.h"
#include "models/model.h"
#include "data/tasks.h"
#include "dist/group.h"

namespace sqz::data {

enum class Objective { kMaskedLM, kCausalLM, kClassification, kSeq2Seq };

Objective parse_objective(const std::string& name, TaskKind task, bool is_decoder);
const char* objective_name(Objective o);

struct MlmSpecialIds {
  int64_t mask_id;
  std::vector<int64_t> never_mask;  // [CLS], [SEP], [PAD], ...
  int64_t vocab_size;
};

// The mask token and the tokens masking never touches, from the tokenizer's special tokens.
MlmSpecialIds mlm_special_ids(const io::Tokenizer& tokenizer, const std::string& source);

// BERT's masking: `probability` of the non-special tokens become targets; of those 80% turn
// into [MASK], 10% into a random token, 10% stay. Returns labels (-100 = not a target).
torch::Tensor mask_tokens(torch::Tensor& input_ids, const torch::Tensor& attention_mask, const MlmSpecialIds& ids,
                          double probability, torch::Generator& gen);

struct LossResult {
  torch::Tensor loss;  // mean over targets
  int64_t targets = 0;
  models::ModelOutputs outputs;  // what the model returned (distillation reads it)
};

// The model inputs of a batch (token types only for families that use them).
models::ModelInputs batch_inputs(const models::TransformerModel& model, const Batch& batch);

// How many targets `objective` has in `batch` (classification: rows; LMs and seq2seq: the tokens
// the loss scores).
int64_t target_count(const Batch& batch, Objective objective);

// Rows [begin, end) of `whole` (batch_rows) that know the whole batch's counts (Batch::whole): a
// data-parallel rank's share, whose loss is its part of the whole batch's.
Batch share_of(const Batch& whole, int64_t begin, int64_t end, Objective objective);

// This rank's contiguous share of `whole` (all of it without a group). A rank the batch has no
// rows for gets the batch's first row as a stand-in: it meets every reduction inside the forward
// pass and must count nowhere.
struct RankShare {
  Batch batch;
  bool stand_in = false;
};
RankShare rank_share(const Batch& whole, Objective objective, const dist::Group* group);

// The loss of `objective` on logits already computed for `batch` (by the model, or by the
// runtime engine): the mean, and the number of targets; `outputs` is left empty.
// Masked-LM logits may be [B, T, V] or, scored at the labelled positions only, [N, V].
LossResult loss_from_logits(const torch::Tensor& logits, const Batch& batch, Objective objective);

// `hidden_states` / `attentions` turn them on in the outputs, and `all_logits` keeps masked-LM
// logits at every position (distillation reads them); otherwise MLM scores labelled rows only.
LossResult compute_loss(models::TransformerModel& model, const Batch& batch, Objective objective,
                        bool hidden_states = false, bool attentions = false, bool all_logits = false);

}  // namespace sqz::data
