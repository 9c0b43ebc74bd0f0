#include "compress/quant/observer.h"

#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"

namespace sqz::quant {

const char* observer_name(ObserverKind k) {
  switch (k) {
    case ObserverKind::kMinMax: return "minmax";
    case ObserverKind::kMovingAverage: return "moving_average";
    case ObserverKind::kPercentile: return "percentile";
    case ObserverKind::kMse: return "mse";
    case ObserverKind::kKl: return "kl";
  }
  return "?";
}

ObserverKind parse_observer(const std::string& name, const std::string& source) {
  for (auto k : {ObserverKind::kMinMax, ObserverKind::kMovingAverage, ObserverKind::kPercentile, ObserverKind::kMse, ObserverKind::kKl})
    if (name == observer_name(k)) return k;
  fail_invalid(source, ": observer '", name, "' is not one of minmax, moving_average, percentile, mse, kl");
}

Observer::Observer(ObserverSpec spec, QuantSpec quant, std::string source)
    : spec_(spec), quant_(quant), source_(std::move(source)) {
  if (quant_.granularity != Granularity::kTensor)
    fail_invalid(source_, ": static activation ranges are per tensor (per-token scales are dynamic)");
  if (spec_.kind == ObserverKind::kPercentile && (spec_.percentile <= 50 || spec_.percentile > 100))
    fail_invalid(source_, ": percentile must be in (50, 100], got ", spec_.percentile);
  if (spec_.momentum < 0 || spec_.momentum >= 1) fail_invalid(source_, ": momentum must be in [0, 1), got ", spec_.momentum);
}

void Observer::observe(const torch::Tensor& x_in, bool counts) {
  torch::NoGradGuard no_grad;
  const int64_t channels = x_in.size(-1);
  auto x = x_in.detach().to(torch::kFloat32).reshape({-1, channels});
  if (!counts) x = x.slice(0, 0, 0);
  const bool shared = group_ && group_->distributed();
  const bool needs_values = spec_.kind == ObserverKind::kPercentile || spec_.kind == ObserverKind::kMse || spec_.kind == ObserverKind::kKl;
  auto flat = x.reshape({-1});
  // The ranks' shares are consecutive rows of one batch: gathered in rank order they are its values in order.
  if (shared && needs_values) flat = group_->gather_all(flat.contiguous());
  constexpr float kInf = std::numeric_limits<float>::infinity();
  torch::Tensor lo = flat.numel() ? flat.min() : torch::tensor(kInf), hi = flat.numel() ? flat.max() : torch::tensor(-kInf);
  auto absmax = x.size(0) ? std::get<0>(x.abs().max(0)) : torch::zeros({channels});
  if (shared) {  // one reduction: the minimum over ranks of [lo, -hi, -max|x| per channel]
    auto packed = torch::cat({lo.reshape({1}), -hi.reshape({1}), -absmax});
    group_->min(packed);
    lo = packed[0], hi = -packed[1], absmax = -packed.slice(0, 2);
  }
  if (lo.item<float>() == kInf) return;  // nothing observed (on any rank)
  channel_absmax_ = channel_absmax_.defined() ? torch::maximum(channel_absmax_, absmax) : absmax;
  if (spec_.kind == ObserverKind::kPercentile) {
    const double p = spec_.percentile / 100.0;
    auto k_hi = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(p * flat.numel())), 1, flat.numel());
    auto k_lo = std::clamp<int64_t>(static_cast<int64_t>(std::floor((1 - p) * flat.numel())) + 1, 1, flat.numel());
    lo = std::get<0>(flat.kthvalue(k_lo));
    hi = std::get<0>(flat.kthvalue(k_hi));
  }
  const bool average = spec_.kind == ObserverKind::kMovingAverage || spec_.kind == ObserverKind::kPercentile;
  if (batches_ == 0) {
    lo_ = lo, hi_ = hi;
  } else if (spec_.kind == ObserverKind::kMovingAverage) {
    lo_ = spec_.momentum * lo_ + (1 - spec_.momentum) * lo;
    hi_ = spec_.momentum * hi_ + (1 - spec_.momentum) * hi;
  } else if (average) {  // percentile: running mean of the per-batch percentiles
    lo_ = lo_ + (lo - lo_) / static_cast<double>(batches_ + 1);
    hi_ = hi_ + (hi - hi_) / static_cast<double>(batches_ + 1);
  } else {
    lo_ = torch::minimum(lo_, lo), hi_ = torch::maximum(hi_, hi);
  }
  if (spec_.kind == ObserverKind::kMse || spec_.kind == ObserverKind::kKl) {
    const int64_t stride = std::max<int64_t>(1, flat.numel() / spec_.sample_size);
    auto part = flat.slice(0, 0, flat.numel(), stride);
    sample_ = sample_.defined() ? torch::cat({sample_, part}) : part;
  }
  ++batches_;
}

void Observer::save_state(const std::string& prefix, train::StateDict& state) const {
  state.put_value(prefix + "batches", batches_);
  state.put(prefix + "lo", lo_);
  state.put(prefix + "hi", hi_);
  state.put(prefix + "channel_absmax", channel_absmax_);
  state.put(prefix + "sample", sample_);
}

void Observer::load_state(const std::string& prefix, const train::StateDict& state) {
  batches_ = state.value(prefix + "batches").get<int64_t>();
  lo_ = state.get(prefix + "lo"), hi_ = state.get(prefix + "hi");
  channel_absmax_ = state.get(prefix + "channel_absmax"), sample_ = state.get(prefix + "sample");
}

QParams Observer::qparams() const {
  if (batches_ == 0) fail_invalid(source_, ": the observer saw no calibration batches (calibration.batches must be >= 1)");
  if (spec_.kind == ObserverKind::kMse) return mse_qparams(sample_, quant_);
  if (spec_.kind == ObserverKind::kKl) {
    const double t = kl_threshold(sample_, quant_.bits);
    return qparams_from_range(lo_.clamp_min(-t).reshape({1, 1}), hi_.clamp_max(t).reshape({1, 1}), quant_);
  }
  return qparams_from_range(lo_.reshape({1, 1}), hi_.reshape({1, 1}), quant_);
}

QParams mse_qparams(const torch::Tensor& x, const QuantSpec& spec) {
  torch::NoGradGuard no_grad;
  auto xf = x.detach().to(torch::kFloat32);
  auto [lo, hi] = min_max(xf, spec);
  torch::Tensor best_err;
  QParams best;
  for (int i = 0; i <= 14; ++i) {
    const double ratio = 1.0 - 0.05 * i;
    auto p = qparams_from_range(lo * ratio, hi * ratio, spec);
    auto err = group_view(fake_quantize(xf, p, spec) - xf, spec).pow(2).sum(-1, /*keepdim=*/true);
    if (!best_err.defined()) {
      best_err = err, best = p;
      continue;
    }
    auto better = err < best_err;
    best_err = torch::where(better, err, best_err);
    best.scale = torch::where(better, p.scale, best.scale);
    best.zero_point = torch::where(better, p.zero_point, best.zero_point);
  }
  return best;
}

double kl_threshold(const torch::Tensor& x, int bits) {
  constexpr int64_t kBins = 2048;
  auto a = x.detach().to(torch::kFloat64).abs().reshape({-1});
  const double amax = a.numel() ? a.max().item<double>() : 0.0;
  if (amax <= 0) return 0.0;
  auto h = torch::histc(a, kBins, 0.0, amax).contiguous();
  std::vector<double> hist(h.data_ptr<double>(), h.data_ptr<double>() + kBins);
  const int64_t levels = int64_t{1} << (bits - 1);
  double best_kl = std::numeric_limits<double>::infinity();
  int64_t best_bins = kBins;
  std::vector<double> p, q;
  for (int64_t n = levels; n <= kBins; ++n) {
    p.assign(hist.begin(), hist.begin() + n);
    for (int64_t j = n; j < kBins; ++j) p[n - 1] += hist[j];  // clipped values land in the last bin
    q.assign(n, 0.0);
    for (int64_t l = 0; l < levels; ++l) {  // merge P's bins into `levels` groups, spread each back
      const int64_t begin = l * n / levels, end = (l + 1) * n / levels;
      double sum = 0;
      int64_t nonzero = 0;
      for (int64_t j = begin; j < end; ++j) sum += hist[j], nonzero += hist[j] > 0;
      for (int64_t j = begin; j < end; ++j) q[j] = hist[j] > 0 ? sum / static_cast<double>(nonzero) : 0.0;
    }
    double p_total = 0, q_total = 0;
    for (int64_t j = 0; j < n; ++j) p_total += p[j], q_total += q[j];
    if (p_total <= 0 || q_total <= 0) continue;
    double kl = 0;
    for (int64_t j = 0; j < n; ++j) {
      if (p[j] <= 0) continue;
      const double pj = p[j] / p_total, qj = std::max(q[j] / q_total, 1e-12);  // Q is 0 where only clipped mass sits
      kl += pj * std::log(pj / qj);
    }
    if (kl < best_kl) best_kl = kl, best_bins = n;
  }
  return amax * static_cast<double>(best_bins) / static_cast<double>(kBins);
}

}  // namespace sqz::quant
