// Dev-set evaluation of any loadable model: accuracy and macro-F1 for classification,
// perplexity and bits per byte for language modelling (masked-token perplexity for MLM models).
#pragma once
#include "core/fs.h"
#include "io/json_file.h"
#include "io/tokenizers/tokenizer.h"
#include "models/model.h"
#include "data/tasks.h"
#include "data/objectives.h"
#include "dist/group.h"

namespace sqz::data {

struct EvalOptions {
  int64_t batch_size = 16;
  int64_t max_batches = 0;  // 0 = all
  uint64_t seed = 0;        // for MLM masking
  double mlm_probability = 0.15;
  // When set, receives the logits of the first few batches (to compare two versions of a model).
  std::vector<torch::Tensor>* logits_out = nullptr;
  // Classification: where logits come from; unset = the model's own forward (libtorch). `sqz eval
  // --engine runtime` points it at the runtime engine so accuracy is measured on what is deployed.
  std::function<torch::Tensor(const models::ModelInputs&)> classification_logits{};
  // Causal LM: where logits [batch, seq, vocab] come from; unset = the model's own forward.
  std::function<torch::Tensor(const Batch&)> lm_logits{};
  // Called after each batch with the batches done and the batches this evaluation runs; it may
  // throw to stop (sqz compress stops a full-dev eval on Ctrl-C / SIGTERM this way).
  std::function<void(int64_t done, int64_t total)> after_batch{};
  int64_t num_beams = 1;  // seq2seq: greedy (1) or beam search
  // Data parallelism: each rank scores batches rank, rank + size, ... of the same plan and the
  // result is the whole split's, on every rank (null = this process scores every batch).
  dist::Group* group = nullptr;
  // Seq2seq on an engine (both set): teacher-forced logits [batch, target, vocab] of a batch, and
  // its decoding [batch, n] within `room` new tokens (greedy, or beam search with num_beams;
  // pad, or -1, after each row's end).
  std::function<torch::Tensor(const Batch&)> seq2seq_logits{};
  std::function<torch::Tensor(const Batch&, int64_t room)> seq2seq_decode{};
};
constexpr int64_t kKeptLogitBatches = 8;

// One JSON object: metric values, examples/tokens counted, elapsed seconds. `model` may be null
// when options.classification_logits (classification) or options.lm_logits (causal LM) is set:
// an engine without a libtorch model.
io::json evaluate_classification(models::TransformerModel* model, const ClassificationData& data,
                                 int64_t num_classes, const EvalOptions& options);
io::json evaluate_lm(models::TransformerModel* model, const LmData& data, Objective objective,
                     const MlmSpecialIds* mlm, const EvalOptions& options);

// Encoder-decoders on source/target pairs: teacher-forced perplexity of the targets, and greedy
// (or beam search) decoding scored as word error rate (the whole token sequence must match) and token error rate
// (edit distance over reference length; phonemes for g2p), both on the decoded, whitespace-split text.
// `model` may be null when options.seq2seq_logits and seq2seq_decode are set.
io::json evaluate_seq2seq(models::TransformerModel* model, const io::Tokenizer& tokenizer, const Seq2SeqData& data,
                          const EvalOptions& options);

// What `sqz eval` reports for `model` on a task's split file (labels from config id2label).
io::json evaluate_split(models::TransformerModel* model, const io::Tokenizer& tokenizer, const io::JsonFields& config,
                        const std::string& task, const fs::path& split, int64_t max_length, const EvalOptions& options);

// The model's forward pass (the task's loss, nothing scored) on the first `options.max_batches`
// batches of a split in file order: calibration. With options.group every rank runs every batch on
// its contiguous share of the rows, padded as the whole batch (MLM masks drawn for the whole
// batch), so that reductions inside the forward pass see what one process sees; a rank without
// rows runs the batch's first row between stand_in(true) and stand_in(false). Returns the batches run.
int64_t forward_split(models::TransformerModel& model, const io::Tokenizer& tokenizer, const io::JsonFields& config, const std::string& task,
                      const fs::path& split, int64_t max_length, const EvalOptions& options, const std::function<void(bool)>& stand_in);

// The headline number of an eval result, larger is better (accuracy, -WER, or -perplexity).
double primary_score(const io::json& result);

}  // namespace sqz::data
