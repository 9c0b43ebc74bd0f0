// Knowledge distillation from a dense teacher: soft-label KL on logits with temperature, the
// task's hard-label loss, hidden-state MSE over a layer mapping (with a learned projection when
// widths differ) and attention-map MSE; each term weighted by the recipe. Checked against the
// student before the first step: same tokenizer, same labels, compatible shapes.
#pragma once
#include <yaml-cpp/yaml.h>

#include "io/tokenizers/tokenizer.h"
#include "models/registry.h"
#include "nn/layers.h"
#include "data/tasks.h"
#include "data/objectives.h"
#include "dist/group.h"
#include "train/state_dict.h"

namespace sqz::compress {

struct DistillSpec {
  std::string teacher;  // HF dir (defaults to the compressed model's starting point)
  double temperature = 2.0;
  double logits_weight = 1.0;  // KL(teacher || student) on softened logits, times T^2
  double labels_weight = 1.0;  // the task's own loss (hard labels)
  double hidden_weight = 0.0;
  double attention_weight = 0.0;
  // student hidden_states index -> teacher index (0 = embeddings, i = after layer i). Default:
  // the last of each, and student layer i to teacher layer i * T/S.
  std::vector<std::pair<int64_t, int64_t>> hidden_map, attention_map;
  bool project = true;  // learn a projection when the widths differ; false makes that an error
  // QuantGPT's token-level contrastive distillation on the last hidden states: each student token
  // must pick its own teacher token (positive) out of a momentum memory of the teacher's
  // representations of the sequence's other tokens (negatives). InfoNCE with a temperature.
  double contrastive_weight = 0.0;
  double contrastive_temperature = 0.1;
  double contrastive_momentum = 0.5;  // memory[token] = m * memory[token] + (1 - m) * teacher representation
  std::string source;

  static DistillSpec parse(const YAML::Node& node, const std::string& source);
  YAML::Node to_yaml() const;
};

class Distiller {
 public:
  explicit Distiller(DistillSpec spec) : spec_(std::move(spec)) {}
  // Loads the teacher and checks it against the student; errors name both sides.
  void attach(models::TransformerModel& student, const io::Tokenizer& student_tokenizer, const io::json& student_config,
              const std::string& head);
  bool wants_hidden_states() const { return spec_.hidden_weight > 0 || spec_.contrastive_weight > 0; }
  bool wants_attentions() const { return spec_.attention_weight > 0; }
  // The KL term compares the student's logits with the teacher's at every position.
  bool wants_logits() const { return spec_.logits_weight > 0; }
  // labels_weight * task loss + the distillation terms on this batch.
  torch::Tensor loss(const data::Batch& batch, const data::LossResult& task);
  std::vector<torch::Tensor> trainable();
  // The learned projections and the contrastive memory, under `prefix`.
  void save_state(const std::string& prefix, train::StateDict& state) const;
  void load_state(const std::string& prefix, const train::StateDict& state);
  // Data parallelism, after each step: the contrastive memory rows any rank updated since the last
  // call become the mean of the ranks' rows (renormalised), so every rank holds one memory.
  void synchronize(dist::Group& group);
  // A data-parallel stand-in row (see train::TrainHooks::stand_in) leaves the memory as it is.
  void set_stand_in(bool on) { stand_in_ = on; }
  // The last batch's terms, for the progress bar and the log.
  std::string status() const;
  const DistillSpec& spec() const { return spec_; }

 private:
  DistillSpec spec_;
  std::shared_ptr<models::TransformerModel> teacher_;
  std::vector<torch::nn::Linear> projections_;  // one per hidden link, identity when unset
  // The student's residual-stream norm: when hidden dimensions are pruned, its mask limits the
  // hidden-state loss to the kept dimensions (read at loss time; pruners attach later).
  nn::LayerNorm student_norm_{nullptr};
  torch::Tensor contrastive(const data::Batch& batch, const torch::Tensor& student, const torch::Tensor& teacher);
  torch::Tensor memory_, memory_seen_;  // [vocab, width] normalised teacher token representations
  torch::Tensor memory_hit_;             // [vocab] rows updated since the last synchronize
  bool stand_in_ = false;
  void update_memory(const torch::Tensor& flat_ids, const torch::Tensor& positives, const torch::Tensor& real);
  double last_kl_ = 0, last_hidden_ = 0, last_attention_ = 0, last_contrastive_ = 0;
};

}  // namespace sqz::compress
