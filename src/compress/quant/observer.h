// Observers turn what calibration sees into quantization parameters (PTQ, and the initial
// ranges of QAT): min-max, moving-average min-max, percentile, MSE-optimal clipping, and the
// KL-divergence (entropy) threshold of TensorRT-style calibration.
// Each also records the per-input-channel |x| maximum that SmoothQuant needs.
#pragma once
#include "compress/quant/qmath.h"
#include "dist/group.h"
#include "train/state_dict.h"

namespace sqz::quant {

enum class ObserverKind { kMinMax, kMovingAverage, kPercentile, kMse, kKl };
const char* observer_name(ObserverKind k);
ObserverKind parse_observer(const std::string& name, const std::string& source);

struct ObserverSpec {
  ObserverKind kind = ObserverKind::kMinMax;
  double momentum = 0.9;       // moving average: range = m * range + (1 - m) * batch range
  double percentile = 99.99;   // percentile: the batch range is [q(100 - p), q(p)], averaged over batches
  int64_t sample_size = 1 << 16;  // MSE, KL: values kept (evenly strided) per batch for the clip search
};

// Static activation ranges, per tensor (one scale for all tokens).
class Observer {
 public:
  Observer(ObserverSpec spec, QuantSpec quant, std::string source);
  // x: [..., channels]. `counts` false: a data-parallel stand-in row (see join) that only meets
  // the group's reduction.
  void observe(const torch::Tensor& x, bool counts = true);
  int64_t batches() const { return batches_; }
  // Errors (naming the layer) when nothing was observed; constant inputs get a defined scale.
  QParams qparams() const;
  const torch::Tensor& channel_absmax() const { return channel_absmax_; }
  // What it has seen so far (ranges, channel maxima, the clip search's sample), under `prefix`.
  void save_state(const std::string& prefix, train::StateDict& state) const;
  void load_state(const std::string& prefix, const train::StateDict& state);
  // Data parallelism: from now on each observe() is one rank's share of a batch whose other rows
  // the other ranks hold, and every rank calls it for every batch. The batch's statistics are
  // reduced inside observe() (range and channel maxima: one min-reduction; percentile, MSE and
  // KL: the whole batch's values gathered in row order), so every rank's observer is what one
  // process observing the whole batch holds. Null: this process alone.
  void join(dist::Group* group) { group_ = group; }

 private:
  ObserverSpec spec_;
  QuantSpec quant_;
  std::string source_;
  int64_t batches_ = 0;
  torch::Tensor lo_, hi_, channel_absmax_, sample_;
  dist::Group* group_ = nullptr;
};

// The clip range in [0.3, 1] x (each slice's min-max) whose fake-quantization error on `x`
// is smallest, per slice of group_view(x); used for weights (per channel / group) and for the
// MSE observer's sample.
QParams mse_qparams(const torch::Tensor& x, const QuantSpec& spec);

// The clip threshold T on |x| that minimises KL(P || Q), P = the histogram of |x| (2048 bins up
// to max |x|) with everything beyond T folded into its last bin, Q = P re-binned to the
// 2^(bits-1) levels a b-bit grid has on one side of zero and spread back evenly over P's nonzero
// bins. Returns max |x| when no clipping wins.
double kl_threshold(const torch::Tensor& x, int bits);

}  // namespace sqz::quant
