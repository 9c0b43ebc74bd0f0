// A quantizer attaches fake quantization to the Linear layers a selector picks: weights
// (min-max / MSE round-to-nearest, GPTQ, LSQ, PACT, QuantGPT, ternary, binary) and inputs
// (static ranges from an observer, dynamic per token, LSQ, PACT). In `ptq` mode it calibrates
// on a few batches after training; in `qat` mode it is live during training from `start_step`
// on, so masks (e.g. 2:4) and quantization train together, as GPUSQ-TLM does.
#pragma once
#include <yaml-cpp/yaml.h>

#include <map>
#include <optional>

#include "compress/quant/observer.h"
#include "compress/selector.h"

namespace sqz::quant {

enum class WeightMethod { kMinMax, kMse, kGptq, kLsq, kPact, kQuantGpt, kTernary, kBinary };
enum class ActivationMethod { kStatic, kDynamic, kLsq, kPact };
std::string weight_method_name(WeightMethod m);
std::string activation_method_name(ActivationMethod m);

struct WeightQuant {
  QuantSpec spec{8, true, Granularity::kChannel, 128};
  WeightMethod method = WeightMethod::kMinMax;
  double damp = 0.01;  // GPTQ: fraction of mean(diag H) added to the diagonal
};

struct ActivationQuant {
  QuantSpec spec{8, false, Granularity::kTensor, 128};
  ActivationMethod method = ActivationMethod::kStatic;
  ObserverSpec observer;
};

struct QuantizerSpec {
  std::string name;
  compress::Selector targets;
  bool qat = false;
  int64_t start_step = 0;  // qat: fake quantization starts at this optimizer step
  std::optional<WeightQuant> weight;
  std::optional<ActivationQuant> activation;
  // SmoothQuant's migration strength alpha (0..1); unset = no smoothing. PTQ with activations only.
  std::optional<double> smooth_alpha;
  // What SmoothQuant does with a target whose input no pre-LN norm produces alone (post-LN
  // encoders' Q/K/V and FFN inputs, every model's attention output and FFN down projection):
  // false ("skip") leaves it unsmoothed; true ("scale") gives it its own factor s, dividing the
  // input by s before it is quantized and quantizing W diag(s) (the float model is unchanged).
  bool smooth_unfoldable = false;
  std::string source;

  static QuantizerSpec parse(const YAML::Node& node, const std::string& source);
  YAML::Node to_yaml() const;
};

// What export writes for one quantized layer: integer codes on the fake-quantized grid and the
// parameters that map them back; activation parameters when static.
struct QuantizedLayer {
  std::string name;  // HF module name
  WeightQuant weight;
  torch::Tensor codes;  // int32, logical [out, in]
  QParams weight_qparams;
  std::optional<ActivationQuant> activation;
  std::optional<QParams> input_qparams;  // static activations only
  // SmoothQuant's per-input-channel factor s where no norm could absorb it (undefined = none):
  // `codes` quantize W diag(s), and the input is divided by s before its quantization.
  torch::Tensor input_smoothing;
};

class Quantizer {
 public:
  explicit Quantizer(QuantizerSpec spec);
  ~Quantizer();
  // Selects Linear targets (embeddings are not quantized), checks bits and group sizes against
  // each layer, registers the transforms. Errors before any training or calibration.
  void attach(models::TransformerModel& model);
  // PTQ: inputs seen between begin and end calibrate the observers (and GPTQ's Hessians);
  // end freezes the ranges, runs GPTQ and turns fake quantization on.
  void begin_calibration();
  void end_calibration();
  // SmoothQuant (when spec.smooth_alpha is set), between a first calibration pass and the real
  // one: s_j = max|x_j|^alpha / max|W[:, j]|^(1 - alpha) per input channel of every pre-LN norm's
  // readers among the targets (ModelStructure::smoothable); the norm's weight and bias are divided
  // by s, the readers' weight columns multiplied by s (the float model is unchanged), and the
  // observers start again. With spec.smooth_unfoldable every other target gets its own s from its
  // input and weight, kept beside it (QuantizedLayer::input_smoothing). Errors when nothing can
  // be smoothed. Returns the norms folded plus the layers given factors of their own.
  int smooth(models::TransformerModel& model);
  // QAT: fake quantization turns on at spec.start_step; learned scales initialise from the
  // first batch they see.
  void before_step(int64_t step);
  std::vector<torch::Tensor> trainable() const;
  bool active() const { return active_; }
  // QAT's state under `prefix`: whether it is on, learned scales and whether they were
  // initialised, the static observers' ranges.
  void save_state(const std::string& prefix, train::StateDict& state) const;
  void load_state(const std::string& prefix, const train::StateDict& state);
  // Data parallelism: from now on every rank runs every batch (training or calibration) on its
  // share of the rows, and the batch's statistics are reduced inside the forward pass (observers'
  // ranges, LSQ / PACT initial scales, SmoothQuant's channel maxima) or at end_calibration (GPTQ's
  // Hessians): every rank holds what one process seeing the whole batch would, the same grid.
  // Null: this process alone.
  void join(dist::Group* group);
  // A rank whose share of a batch is empty runs a stand-in row that meets the reductions and
  // contributes nothing to them.
  void set_stand_in(bool on);
  // Codes and parameters of every layer, as the forward pass uses them now.
  std::vector<QuantizedLayer> snapshot() const;
  // A loaded export: fixed input parameters per layer name (weights are already on their grid);
  // turns the quantizer on.
  // `smoothing`: SmoothQuant factors of the layers that carry their own (QuantizedLayer::input_smoothing).
  void activate_frozen(const std::map<std::string, QParams>& inputs, const std::map<std::string, torch::Tensor>& smoothing = {});
  const QuantizerSpec& spec() const { return spec_; }
  std::string status() const;
  // The first layer whose learned scale, or whose fake-quantized weight, is not finite ("" = none).
  std::string describe_nonfinite() const;

  struct Layer;

 private:
  QuantizerSpec spec_;
  void check_smoothable(models::TransformerModel& model) const;

  std::vector<std::shared_ptr<Layer>> layers_;
  bool active_ = false, smoothed_ = false;
};

}  // namespace sqz::quant
