#include "compress/hooks.h"

#include <sstream>

#include "core/error.h"

namespace sqz::compress {

CompressHooks::CompressHooks(const CompressRecipe& r) : lr_(r.train.lr) {
  for (const auto& p : r.prune) pruners.push_back(std::make_unique<Pruner>(p));
  for (const auto& q : r.quantize)
    if (q.qat) quantizers.push_back(std::make_unique<quant::Quantizer>(q));
  if (r.distill) distiller.emplace(*r.distill);
}

void CompressHooks::on_start(models::TransformerModel& model, const io::Tokenizer& tok, const io::json& config) {
  if (distiller) distiller->attach(model, tok, config, model.info().head_class);
  for (auto& p : pruners) p->attach(model, lr_);
  for (auto& q : quantizers) q->attach(model);
}

std::vector<train::TrainHooks::ParamGroup> CompressHooks::extra_parameters() {
  std::vector<ParamGroup> g;
  for (auto& p : pruners)
    if (!p->trainable().empty()) g.push_back({p->trainable(), p->score_lr_scale()});
  for (auto& q : quantizers)
    if (!q->trainable().empty()) g.push_back({q->trainable(), 1.0});
  if (distiller && !distiller->trainable().empty()) g.push_back({distiller->trainable(), 1.0});
  return g;
}

torch::Tensor CompressHooks::total_loss(const data::Batch& batch, const data::LossResult& task, int64_t) {
  torch::Tensor loss = distiller ? distiller->loss(batch, task) : task.loss;
  // Terms that do not depend on the data count once per whole batch: a share adds its rows' part.
  const double of_rows = batch.share_of_mean(batch.input_ids.size(0), batch.whole ? batch.whole->rows : 0);
  for (auto& p : pruners)
    if (auto reg = p->regularizer(); reg.defined()) loss = loss + reg * of_rows;
  return loss;
}

void CompressHooks::after_backward(int64_t) {
  for (auto& p : pruners) p->after_backward();
}

void CompressHooks::before_step(int64_t step) {
  for (auto& p : pruners) p->before_step(step);
  for (auto& q : quantizers) q->before_step(step);
}

std::string CompressHooks::status() const {
  std::ostringstream s;
  s.precision(2);
  for (const auto& p : pruners) s << " " << p->spec().name << " " << std::fixed << p->sparsity();
  for (const auto& q : quantizers) s << q->status();
  if (distiller) s << distiller->status();
  return s.str();
}

std::string CompressHooks::describe_nonfinite() const {
  for (const auto& q : quantizers)
    if (auto d = q->describe_nonfinite(); !d.empty()) return d;
  return "";
}

void CompressHooks::save_state(train::StateDict& state) const {
  for (size_t i = 0; i < pruners.size(); ++i) pruners[i]->save_state("pruner." + std::to_string(i) + ".", state);
  for (size_t i = 0; i < quantizers.size(); ++i) quantizers[i]->save_state("quantizer." + std::to_string(i) + ".", state);
  if (distiller) distiller->save_state("distiller.", state);
}

void CompressHooks::load_state(const train::StateDict& state) {
  for (size_t i = 0; i < pruners.size(); ++i) pruners[i]->load_state("pruner." + std::to_string(i) + ".", state);
  for (size_t i = 0; i < quantizers.size(); ++i) quantizers[i]->load_state("quantizer." + std::to_string(i) + ".", state);
  if (distiller) distiller->load_state("distiller.", state);
}

void CompressHooks::join(dist::Group& group) {
  for (auto& q : quantizers) q->join(&group);
}

void CompressHooks::stand_in(bool on) {
  for (auto& q : quantizers) q->set_stand_in(on);
  if (distiller) distiller->set_stand_in(on);
}

void CompressHooks::synchronize(dist::Group& group) {
  if (group.distributed() && distiller) distiller->synchronize(group);
}

std::vector<torch::Tensor> CompressHooks::averaged_gradients() {
  std::vector<torch::Tensor> out;
  for (const auto& p : pruners)
    for (auto& g : p->gates()) out.push_back(g);
  return out;
}

quant::SparsityExport nm_sparsity(const std::vector<std::unique_ptr<Pruner>>& pruners) {
  quant::SparsityExport nm;
  for (const auto& p : pruners) {
    if (p->spec().granularity != Granularity::kNM) continue;
    if (nm.n > 0 && (nm.n != p->spec().n || nm.m != p->spec().m))
      fail_invalid(p->spec().source, ": two N:M structures in one model (", nm.n, ":", nm.m, " and ", p->spec().n, ":", p->spec().m,
                   ") cannot be declared in one sparsity_config");
    nm.n = p->spec().n, nm.m = p->spec().m;
    for (const auto& u : p->report()) nm.targets.push_back(u.name);
  }
  if (nm.n > 0) return nm;
  // No N:M: block pruners' targets are declared unstructured (see SparsityExport).
  for (const auto& p : pruners)
    if (p->spec().granularity == Granularity::kBlock)
      for (const auto& u : p->report()) nm.targets.push_back(u.name);
  return nm;
}

}  // namespace sqz::compress
