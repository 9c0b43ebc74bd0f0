// The compressors of a recipe joined to the trainer's loop: pruners (scores, masks, schedules),
// QAT quantizers and the distiller, as one train::TrainHooks.
#pragma once
#include <memory>
#include <optional>

#include "compress/recipe.h"
#include "compress/quant/export.h"
#include "train/trainer.h"

namespace sqz::compress {

class CompressHooks : public train::TrainHooks {
 public:
  explicit CompressHooks(const CompressRecipe& r);
  void on_start(models::TransformerModel& model, const io::Tokenizer& tok, const io::json& config) override;
  std::vector<ParamGroup> extra_parameters() override;
  bool wants_hidden_states() const override { return distiller && distiller->wants_hidden_states(); }
  bool wants_attentions() const override { return distiller && distiller->wants_attentions(); }
  bool wants_all_logits() const override { return distiller && distiller->wants_logits(); }
  torch::Tensor total_loss(const data::Batch& batch, const data::LossResult& task, int64_t step) override;
  void after_backward(int64_t step) override;
  void before_step(int64_t step) override;
  std::string status() const override;
  std::string describe_nonfinite() const override;
  void save_state(train::StateDict& state) const override;
  void load_state(const train::StateDict& state) override;
  void join(dist::Group& group) override;
  void stand_in(bool on) override;
  void synchronize(dist::Group& group) override;
  std::vector<torch::Tensor> averaged_gradients() override;

  std::vector<std::unique_ptr<Pruner>> pruners;
  std::vector<std::unique_ptr<quant::Quantizer>> quantizers;  // QAT
  std::optional<Distiller> distiller;

 private:
  double lr_;
};

// The sparsity the export declares: the N:M structure (verified) and the targets of the N:M
// pruners, two different structures in one model refused; without N:M, the targets of the block
// pruners, declared unstructured.
quant::SparsityExport nm_sparsity(const std::vector<std::unique_ptr<Pruner>>& pruners);

}  // namespace sqz::compress
