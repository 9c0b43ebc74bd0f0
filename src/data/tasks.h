// The tasks sqz trains and evaluates on, and readers for their files: plain text for language
// modelling, JSONL with text/label (or text_a/text_b/label) for classification, source/target
// for seq2seq. `--task NAME --data DIR` is all a user types.
#pragma once
#include <optional>
#include <torch/torch.h>

#include <functional>
#include <map>

#include "core/fs.h"
#include "dist/group.h"
#include "io/tokenizers/tokenizer.h"

namespace sqz::data {

enum class TaskKind { kLanguageModel, kClassification, kSeq2Seq };

struct TaskSpec {
  std::string name;
  TaskKind kind;
  std::string train_file, dev_file;  // relative to the task's data dir
};

const std::vector<TaskSpec>& tasks();
const TaskSpec& find_task(const std::string& name);
const char* task_kind_name(TaskKind kind);

struct TextExample {
  std::string text, text_b;  // text_b empty unless a pair task
  std::string label;
};

// Errors name the file and line: not JSON, missing field, empty file.
std::vector<TextExample> read_classification_jsonl(const fs::path& path);
std::string read_lm_text(const fs::path& path);

// Labels seen in training, sorted, so ids are stable across runs.
class LabelSet {
 public:
  LabelSet() = default;
  explicit LabelSet(const std::vector<TextExample>& train);
  explicit LabelSet(std::vector<std::string> names);
  int64_t id(const std::string& label, const std::string& where) const;
  const std::vector<std::string>& names() const { return names_; }
  int64_t size() const { return static_cast<int64_t>(names_.size()); }

 private:
  std::vector<std::string> names_;
  std::map<std::string, int64_t> ids_;
};

struct Seq2SeqExample {
  std::string source, target;
};
std::vector<Seq2SeqExample> read_seq2seq_jsonl(const fs::path& path);

// The counts a whole global batch's means divide by: rows, targets (as the objective counts them),
// real positions (see real_positions).
struct BatchCounts {
  int64_t rows = 0, targets = 0, positions = 0;
};

struct Batch {
  torch::Tensor input_ids, attention_mask, token_type_ids, labels;
  torch::Tensor decoder_input_ids;  // seq2seq: the labels shifted right from decoder_start_token_id
  // Set on a data-parallel rank's share (data::share_of): the whole batch's counts. Each mean the
  // loss takes over the share divides by the whole batch's count instead of its own, so the ranks'
  // losses add up to the whole batch's mean however rows, tokens and targets split.
  std::optional<BatchCounts> whole;
  // The factor that turns a mean over this batch's `local` items into its part of the whole
  // batch's mean over `whole_count` items: 1 for a whole batch.
  double share_of_mean(int64_t local, int64_t whole_count) const {
    return whole && whole_count > 0 ? static_cast<double>(local) / static_cast<double>(whole_count) : 1.0;
  }
};

// Rows [begin, end) of a batch, padded as the whole batch is: a data-parallel rank's share computes
// at the padded positions exactly what one process computes there (activation ranges see them).
Batch batch_rows(const Batch& batch, int64_t begin, int64_t end);

// The positions whose outputs count: the target positions of seq2seq (labels != -100), else the
// attention mask. [B, T] bool.
torch::Tensor real_positions(const Batch& batch);

// The records `encode(i)` makes of units [0, n) (examples, documents), in order. In a distributed
// group each rank encodes only its contiguous part (dist::shard) and the parts are exchanged, so
// every rank ends up holding what one process would, for 1/size of the tokenizing. `what` names
// the data in the log line each rank writes.
using Record = std::vector<int64_t>;
std::vector<Record> encode_sharded(int64_t n, const std::function<Record(int64_t)>& encode, dist::Group* group,
                                   const std::string& what);

// What the training loop reads, whatever the task: examples (or blocks) batched in the current
// order, reshuffled per epoch by a seeded generator.
class TrainingData {
 public:
  virtual ~TrainingData() = default;
  virtual int64_t size() const = 0;
  virtual Batch batch(int64_t begin, int64_t end) const = 0;
  virtual void shuffle(uint64_t seed) = 0;
};

// Tokenized classification data, batched in order or shuffled by a seeded generator.
class ClassificationData : public TrainingData {
 public:
  // `group`: tokenize this rank's share of the examples and gather the rest (encode_sharded).
  ClassificationData(const std::vector<TextExample>& examples, const io::Tokenizer& tok, const LabelSet& labels,
                     int64_t max_length, const std::string& source, dist::Group* group = nullptr);
  int64_t size() const override { return static_cast<int64_t>(ids_.size()); }
  // Examples [begin, end) of the current order, padded to the longest.
  Batch batch(int64_t begin, int64_t end) const override;
  void shuffle(uint64_t seed) override;

 private:
  std::vector<std::vector<int64_t>> ids_, types_;
  std::vector<int64_t> labels_, order_;
  int64_t pad_id_ = 0;
};

// One token stream cut into fixed blocks for language modelling.
class LmData : public TrainingData {
 public:
  // Documents (separated by blank lines) are the units a `group` shares out (encode_sharded).
  LmData(const std::string& text, const io::Tokenizer& tok, int64_t block_size, dist::Group* group = nullptr);
  int64_t size() const override { return num_blocks(); }
  int64_t num_blocks() const { return static_cast<int64_t>(order_.size()); }
  int64_t num_tokens() const { return static_cast<int64_t>(stream_.size()); }
  int64_t num_bytes() const { return bytes_; }
  Batch batch(int64_t begin, int64_t end) const override;  // blocks [begin, end) of the current order
  void shuffle(uint64_t seed) override;

 private:
  std::vector<int64_t> stream_, order_;
  int64_t block_ = 0, bytes_ = 0;
};

// Source/target pairs for encoder-decoders: input_ids from the source, labels from the target
// (each encoded with the tokenizer's special tokens; padding -100), decoder_input_ids the labels
// shifted right from decoder_start_token_id, as HF's seq2seq training does.
class Seq2SeqData : public TrainingData {
 public:
  Seq2SeqData(const std::vector<Seq2SeqExample>& examples, const io::Tokenizer& tok, int64_t max_length,
              int64_t decoder_start_token_id, const std::string& source, dist::Group* group = nullptr);
  int64_t size() const override { return static_cast<int64_t>(sources_.size()); }
  Batch batch(int64_t begin, int64_t end) const override;
  void shuffle(uint64_t seed) override;

 private:
  std::vector<std::vector<int64_t>> sources_, targets_;
  std::vector<int64_t> order_;
  int64_t pad_id_ = 0, decoder_start_ = 0;
};

}  // namespace sqz::data
