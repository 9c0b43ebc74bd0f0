// The quantizer recipe entries: parsing and writing back the YAML of quantize: items.
#include "compress/quant/quantizer.h"

#include <map>

#include "compress/quant/fake_quant.h"
#include "compress/quant/gptq.h"
#include "compress/site.h"
#include "core/error.h"
#include "core/log.h"

namespace sqz::quant {

namespace {

const std::map<std::string, WeightMethod> kWeightMethods = {
    {"minmax", WeightMethod::kMinMax}, {"mse", WeightMethod::kMse},           {"gptq", WeightMethod::kGptq},
    {"lsq", WeightMethod::kLsq},       {"pact", WeightMethod::kPact},         {"quantgpt", WeightMethod::kQuantGpt},
    {"ternary", WeightMethod::kTernary}, {"binary", WeightMethod::kBinary}};
const std::map<std::string, ActivationMethod> kActivationMethods = {
    {"static", ActivationMethod::kStatic}, {"dynamic", ActivationMethod::kDynamic},
    {"lsq", ActivationMethod::kLsq},       {"pact", ActivationMethod::kPact}};

template <typename E>
E lookup(const std::map<std::string, E>& values, const std::string& v, const std::string& what, const std::string& where) {
  auto it = values.find(v);
  if (it != values.end()) return it->second;
  std::string known;
  for (const auto& [k, e] : values) known += (known.empty() ? "" : ", ") + k;
  fail_invalid(where, ": ", what, " '", v, "' is not one of: ", known);
}
template <typename E>
std::string name_of(const std::map<std::string, E>& values, E e) {
  for (const auto& [k, v] : values)
    if (v == e) return k;
  return "?";
}

void check_keys(const YAML::Node& n, std::initializer_list<const char*> known, const std::string& where) {
  for (const auto& kv : n) {
    std::string k = kv.first.as<std::string>();
    bool ok = false;
    for (const char* c : known) ok = ok || k == c;
    if (!ok) fail_invalid(where, ": unknown key '", k, "'");
  }
}

QuantSpec parse_quant_spec(const YAML::Node& n, QuantSpec s, const std::string& where) {
  if (n["bits"]) s.bits = n["bits"].as<int>();
  if (n["symmetric"]) s.symmetric = n["symmetric"].as<bool>();
  if (n["granularity"]) s.granularity = parse_granularity(n["granularity"].as<std::string>(), where);
  if (n["group_size"]) s.group_size = n["group_size"].as<int64_t>();
  if (s.bits < 2 || s.bits > 8) fail_invalid(where, ": bits = ", s.bits, " is outside 2..8");
  return s;
}

YAML::Node quant_spec_yaml(const QuantSpec& s) {
  YAML::Node n;
  n["bits"] = s.bits;
  n["symmetric"] = s.symmetric;
  n["granularity"] = granularity_name(s.granularity);
  if (s.granularity == Granularity::kGroup) n["group_size"] = s.group_size;
  return n;
}

}  // namespace

std::string weight_method_name(WeightMethod m) { return name_of(kWeightMethods, m); }
std::string activation_method_name(ActivationMethod m) { return name_of(kActivationMethods, m); }

QuantizerSpec QuantizerSpec::parse(const YAML::Node& n, const std::string& source) {
  QuantizerSpec s;
  s.source = source;
  check_keys(n, {"name", "targets", "mode", "start_step", "weight", "activation", "smoothquant"}, source);
  s.name = n["name"] ? n["name"].as<std::string>() : "quantizer";
  if (!n["targets"]) fail_invalid(source, ": a quantizer needs targets (e.g. targets: {types: [linear]})");
  s.targets = compress::Selector::parse(n["targets"], source + " targets");
  std::string mode = n["mode"] ? n["mode"].as<std::string>() : "ptq";
  if (mode != "ptq" && mode != "qat") fail_invalid(source, ": mode '", mode, "' is not one of: ptq, qat");
  s.qat = mode == "qat";
  if (n["start_step"]) s.start_step = n["start_step"].as<int64_t>();
  if (s.start_step < 0) fail_invalid(source, ": start_step must be >= 0");
  if (auto w = n["weight"]) {
    check_keys(w, {"bits", "symmetric", "granularity", "group_size", "method", "damp"}, source + " weight");
    WeightQuant q;
    q.spec = parse_quant_spec(w, q.spec, source + " weight");
    if (q.spec.granularity == Granularity::kToken) fail_invalid(source, " weight: granularity 'token' is for activations");
    if (w["method"]) q.method = lookup(kWeightMethods, w["method"].as<std::string>(), "weight method", source);
    if (w["damp"]) q.damp = w["damp"].as<double>();
    const bool learned = q.method == WeightMethod::kLsq || q.method == WeightMethod::kPact || q.method == WeightMethod::kQuantGpt;
    if (learned && !s.qat) fail_invalid(source, ": weight method '", weight_method_name(q.method), "' learns its scale: use mode: qat");
    if (q.method == WeightMethod::kGptq && s.qat) fail_invalid(source, ": GPTQ is one-shot post-training quantization: use mode: ptq");
    // Learned weight scales keep a zero point of 0, so they need the symmetric grid.
    if ((learned || q.method == WeightMethod::kTernary || q.method == WeightMethod::kBinary) && !q.spec.symmetric)
      fail_invalid(source, ": weight method '", weight_method_name(q.method), "' is symmetric (set symmetric: true)");
    if (q.method == WeightMethod::kTernary || q.method == WeightMethod::kBinary) q.spec.bits = 2;  // codes in {-1, 0, 1}
    s.weight = q;
  }
  if (auto a = n["activation"]) {
    check_keys(a, {"bits", "symmetric", "granularity", "method", "observer", "percentile", "momentum"}, source + " activation");
    ActivationQuant q;
    q.spec = parse_quant_spec(a, q.spec, source + " activation");
    if (a["method"]) q.method = lookup(kActivationMethods, a["method"].as<std::string>(), "activation method", source);
    if (q.method == ActivationMethod::kDynamic) q.spec.granularity = Granularity::kToken;
    if (q.method != ActivationMethod::kDynamic && q.spec.granularity != Granularity::kTensor)
      fail_invalid(source, ": activation method '", activation_method_name(q.method), "' uses one range per tensor; per-token scales are method: dynamic");
    if ((q.method == ActivationMethod::kLsq || q.method == ActivationMethod::kPact) && !s.qat)
      fail_invalid(source, ": activation method '", activation_method_name(q.method), "' learns its range: use mode: qat");
    if (q.method == ActivationMethod::kPact) q.spec.symmetric = true;
    if (a["observer"]) q.observer.kind = parse_observer(a["observer"].as<std::string>(), source);
    else if (s.qat) q.observer.kind = ObserverKind::kMovingAverage;
    if (a["percentile"]) q.observer.percentile = a["percentile"].as<double>();
    if (a["momentum"]) q.observer.momentum = a["momentum"].as<double>();
    s.activation = q;
  }
  if (!s.weight && !s.activation) fail_invalid(source, ": a quantizer needs weight:, activation: or both");
  if (auto sq = n["smoothquant"]) {
    check_keys(sq, {"alpha", "unfoldable"}, source + " smoothquant");
    double alpha = sq["alpha"] ? sq["alpha"].as<double>() : 0.5;
    if (!(alpha >= 0.0 && alpha <= 1.0)) fail_invalid(source, ": smoothquant alpha = ", alpha, " is outside 0..1");
    if (s.qat) fail_invalid(source, ": smoothquant rescales weights once before calibration: use mode: ptq");
    if (!s.activation || !s.weight)
      fail_invalid(source, ": smoothquant moves activation range into the weights, so it needs both weight: and activation:");
    s.smooth_alpha = alpha;
    const std::string unfoldable = sq["unfoldable"] ? sq["unfoldable"].as<std::string>() : "skip";
    if (unfoldable != "skip" && unfoldable != "scale")
      fail_invalid(source, ": smoothquant unfoldable '", unfoldable, "' is not one of: skip, scale");
    s.smooth_unfoldable = unfoldable == "scale";
  }
  return s;
}

YAML::Node QuantizerSpec::to_yaml() const {
  YAML::Node n;
  n["name"] = name;
  n["targets"] = targets.to_yaml();
  n["mode"] = qat ? "qat" : "ptq";
  if (qat) n["start_step"] = start_step;
  if (weight) {
    auto w = quant_spec_yaml(weight->spec);
    w["method"] = weight_method_name(weight->method);
    if (weight->method == WeightMethod::kGptq) w["damp"] = weight->damp;
    n["weight"] = w;
  }
  if (smooth_alpha) {
    n["smoothquant"]["alpha"] = *smooth_alpha;
    n["smoothquant"]["unfoldable"] = smooth_unfoldable ? "scale" : "skip";
  }
  if (activation) {
    auto a = quant_spec_yaml(activation->spec);
    a["method"] = activation_method_name(activation->method);
    if (activation->method == ActivationMethod::kStatic) a["observer"] = observer_name(activation->observer.kind);
    n["activation"] = a;
  }
  return n;
}

}  // namespace sqz::quant
