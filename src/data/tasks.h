// The tasks sqz trains and evaluates on, and readers for their files: plain text for language
// modelling, JSONL with text/label (or text_a/text_b/label) for classification, source/target
// for seq2seq. `--task NAME --data DIR` is all a user types.
#pragma once
#include <torch/torch.h>

#include <map>

#include "core/fs.h"
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

struct Batch {
  torch::Tensor input_ids, attention_mask, token_type_ids, labels;
};

// Tokenized classification data, batched in order or shuffled by a seeded generator.
class ClassificationData {
 public:
  ClassificationData(const std::vector<TextExample>& examples, const io::Tokenizer& tok, const LabelSet& labels,
                     int64_t max_length, const std::string& source);
  int64_t size() const { return static_cast<int64_t>(ids_.size()); }
  // Examples [begin, end) of the current order, padded to the longest.
  Batch batch(int64_t begin, int64_t end) const;
  void shuffle(uint64_t seed);

 private:
  std::vector<std::vector<int64_t>> ids_, types_;
  std::vector<int64_t> labels_, order_;
  int64_t pad_id_ = 0;
};

// One token stream cut into fixed blocks for language modelling.
class LmData {
 public:
  LmData(const std::string& text, const io::Tokenizer& tok, int64_t block_size);
  int64_t num_blocks() const { return static_cast<int64_t>(order_.size()); }
  int64_t num_tokens() const { return static_cast<int64_t>(stream_.size()); }
  int64_t num_bytes() const { return bytes_; }
  Batch batch(int64_t begin, int64_t end) const;  // blocks [begin, end) of the current order
  void shuffle(uint64_t seed);

 private:
  std::vector<int64_t> stream_, order_;
  int64_t block_ = 0, bytes_ = 0;
};

}  // namespace sqz::data
