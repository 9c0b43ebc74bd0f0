// The pruner cases every family's pruning tests run (one of each granularity, metric, scope and
// schedule) and how a test drives a pruner as the trainer would.
#pragma once
#include <yaml-cpp/yaml.h>

#include <functional>

#include "compress/pruner.h"
#include "models/model.h"

namespace sqz::testing {

using compress::Pruner;
using compress::PrunerSpec;

inline PrunerSpec spec(const std::string& yaml) { return PrunerSpec::parse(YAML::Load(yaml), "test recipe"); }

// Runs a pruner as the trainer would: gradients of `loss(i)` for Taylor, random scores for
// movement, then the schedule's final step.
inline void prune_with(Pruner& p, models::TransformerModel& m, const std::function<torch::Tensor(int)>& loss) {
  p.attach(m, 1e-3);
  for (auto& s : p.trainable()) {
    torch::NoGradGuard g;
    s.copy_(torch::randn(s.sizes()));
  }
  if (p.spec().metric == compress::Metric::kTaylor)
    for (int i = 0; i < 2; ++i) {
      m.train();
      loss(i).backward();
      p.after_backward();
      m.zero_grad();
      m.eval();
    }
  int64_t last = std::max(p.spec().schedule.end, p.spec().schedule.start);
  for (int64_t step = 0; step <= last; ++step) p.before_step(step);
}

struct PrunerCase {
  std::string name, yaml;
};
inline void PrintTo(const PrunerCase& c, std::ostream* os) { *os << c.name; }
using ArchPruner = std::tuple<std::string, PrunerCase>;

inline std::vector<PrunerCase> pruner_cases() {
  return {
      {"element_layer_magnitude", "granularity: element\nmetric: magnitude\nsparsity: 0.5"},
      {"element_global_l2", "granularity: element\nmetric: l2\nscope: global\nsparsity: 0.7\nschedule: {kind: agp, start: 0, end: 6, every: 2}"},
      {"element_taylor", "granularity: element\nmetric: taylor\nsparsity: 0.4\nschedule: {kind: oneshot, start: 1}"},
      {"element_movement_hard", "granularity: element\nmetric: movement\nsparsity: 0.6\nschedule: {kind: agp, start: 0, end: 4, every: 1}"},
      {"element_movement_soft", "granularity: element\nmetric: movement\nsoft: true\nthreshold: 0.5\nregularization: 0.1"},
      {"nm_2_4", "granularity: nm\nn: 2\nm: 4\nmetric: magnitude"},
      {"nm_4_8_taylor", "granularity: nm\nn: 4\nm: 8\nmetric: taylor\nschedule: {kind: oneshot, start: 1}"},
      {"blocks_magnitude_agp", "granularity: block\nmetric: magnitude\nsparsity: 0.75\nschedule: {kind: agp, start: 0, end: 4, every: 1}"},
      {"blocks_movement", "granularity: block\nmetric: movement\nsparsity: 0.5\nschedule: {kind: agp, start: 0, end: 4, every: 1}"},
      {"blocks_taylor", "granularity: block\nmetric: taylor\nsparsity: 0.6\nschedule: {kind: oneshot, start: 1}"},
      {"rows_l2", "granularity: row\nmetric: l2\nsparsity: 0.25\ntargets: {roles: [ffn_in]}"},
      {"columns_l1", "granularity: column\nmetric: l1\nsparsity: 0.25\ntargets: {roles: [ffn_out, o]}"},
      {"heads_l2", "granularity: head\nmetric: l2\nsparsity: 0.5"},
      {"heads_taylor_global", "granularity: head\nmetric: taylor\nscope: global\nsparsity: 0.5\nschedule: {kind: iterative, start: 1, end: 3, every: 1}"},
      {"heads_movement", "granularity: head\nmetric: movement\nsparsity: 0.25\ntargets: {layers: [1]}"},
      {"neurons_magnitude", "granularity: neuron\nmetric: magnitude\nsparsity: 0.5"},
      {"hidden_l2", "granularity: hidden\nmetric: l2\nsparsity: 0.25"},
      {"hidden_taylor", "granularity: hidden\nmetric: taylor\nsparsity: 0.5\nschedule: {kind: agp, start: 1, end: 3, every: 1}"},
      {"neurons_taylor_global", "granularity: neuron\nmetric: taylor\nscope: global\nsparsity: 0.6\nschedule: {kind: oneshot, start: 1}"},
  };
}

}  // namespace sqz::testing
