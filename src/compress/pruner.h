// A pruner is a metric (how important each weight or group is), a sparsity rule (which of them
// to drop: element ratio per layer or global, N:M, rows/columns, 4 x 4 blocks, attention heads,
// FFN neurons)
// and a schedule (one-shot, iterative, cubic AGP ramp). It never owns the training loop: the
// trainer calls before_step / after_backward, and masks reach the weights through sites.
#pragma once
#include <yaml-cpp/yaml.h>

#include <functional>
#include <memory>

#include "compress/selector.h"
#include "train/state_dict.h"

namespace sqz::compress {

// kBlock: blocks of 4 outputs x 4 consecutive inputs (kBlockRows x kBlockCols), the shape the
// runtime's int8-block kernel skips when a whole block is zero.
enum class Granularity { kElement, kNM, kRow, kColumn, kHead, kNeuron, kHidden, kBlock };
constexpr int64_t kBlockRows = 4, kBlockCols = 4;
// Heads, neurons and hidden dimensions are dependency groups that SpeedUp can cut out.
bool is_group(Granularity g);
enum class Metric { kMagnitude, kL2, kTaylor, kMovement };
enum class Scope { kLayer, kGlobal };

struct Schedule {
  enum class Kind { kOneShot, kIterative, kAgp };
  Kind kind = Kind::kOneShot;
  int64_t start = 0, end = 0, every = 1;
  // The sparsity held from `step` on (piecewise constant between update steps), for a final `target`.
  double sparsity_at(int64_t step, double target) const;
  bool updates_at(int64_t step) const;
};

struct PrunerSpec {
  std::string name;
  Selector targets;
  Granularity granularity = Granularity::kElement;
  Metric metric = Metric::kMagnitude;
  Scope scope = Scope::kLayer;
  double sparsity = 0.5;
  int64_t n = 2, m = 4;  // N:M keeps n of every m consecutive weights along the input dimension
  Schedule schedule;
  // Movement pruning (Sanh et al. 2020): learned scores; hard = top-k by score at the scheduled
  // sparsity, soft = keep scores above `threshold`, pushed down by `regularization` * mean sigmoid(score).
  bool soft = false;
  double threshold = 0.0, regularization = 0.0, score_lr = 1e-2;
  bool allow_empty_layers = false;  // heads/neurons: may a layer lose all of them (its block then adds only a bias)
  std::string source;

  static PrunerSpec parse(const YAML::Node& node, const std::string& source);
  YAML::Node to_yaml() const;
};

const char* granularity_name(Granularity g);
// N:M: 1 at the n largest entries of `importance` ([out, in]) in every group of m along `in`
// (in must be a multiple of m), 0 elsewhere.
torch::Tensor nm_keep_mask(const torch::Tensor& importance, int64_t n, int64_t m);
// Blocks: 1 on the 4 x 4 blocks of `importance` ([out, in]) with the largest sums, 0 on the
// `sparsity` fraction with the smallest (ties by position), spread over [out, in].
torch::Tensor block_keep_mask(const torch::Tensor& importance, double sparsity);
// Sums of `x` ([out, in]) over its 4 x 4 blocks (edge blocks partial): [out/4, in/4] rounded up.
torch::Tensor block_sums(const torch::Tensor& x);

// Importance of each hidden dim: `elementwise` (|w| or w^2) summed over its group, the columns of
// every embedding and reader and the rows of every writer. The hidden pruner ranks by it, and a
// narrower FastFormers student keeps its top dims.
torch::Tensor hidden_group_importance(const models::HiddenGroup& group, int64_t width,
                                      const std::function<torch::Tensor(const torch::Tensor&)>& elementwise);
const char* metric_name(Metric m);

class Pruner {
 public:
  explicit Pruner(PrunerSpec spec);
  ~Pruner();
  // Picks the targets, checks shapes and ratios (errors before any training), registers the
  // masks on the layers' sites. `base_lr` scales movement scores' learning rate.
  void attach(models::TransformerModel& model, double base_lr);
  void before_step(int64_t step);
  void after_backward();
  torch::Tensor regularizer() const;  // undefined when the pruner adds none
  std::vector<torch::Tensor> trainable() const;
  // The gates whose gradients after_backward reads (Taylor); empty for the other metrics.
  std::vector<torch::Tensor> gates() const;
  double score_lr_scale() const { return score_lr_scale_; }

  struct UnitReport {
    std::string name;
    int64_t layer;
    int64_t kept, total;
  };
  std::vector<UnitReport> report() const;
  double sparsity() const;  // pruned fraction over everything this pruner targets
  // Masks, accumulated importance, movement scores and the schedule's last target, under `prefix`.
  void save_state(const std::string& prefix, train::StateDict& state) const;
  void load_state(const std::string& prefix, const train::StateDict& state);
  const PrunerSpec& spec() const { return spec_; }

  struct Unit;

 private:
  void update_masks(double sparsity);
  PrunerSpec spec_;
  std::vector<std::unique_ptr<Unit>> units_;
  double score_lr_scale_ = 1.0;
  double current_target_ = -1;
};

}  // namespace sqz::compress
