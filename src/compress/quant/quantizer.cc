#include "compress/quant/quantizer.h"

#include <limits>
#include <map>
#include <set>

#include "compress/quant/fake_quant.h"
#include "compress/quant/gptq.h"
#include "compress/site.h"
#include "core/error.h"
#include "core/log.h"

namespace sqz::quant {

// One quantized Linear: its learned parameters, observer and frozen parameters.
struct Quantizer::Layer {
  std::string name;
  // Not owning: the Linear's site owns this layer (its transforms capture it), so a shared handle
  // here would be a cycle that keeps every quantized model alive (LeakSanitizer found it).
  nn::LinearImpl* linear = nullptr;
  compress::Site* site = nullptr;
  std::optional<WeightQuant> wq;
  std::optional<ActivationQuant> aq;
  std::unique_ptr<Observer> observer;
  std::unique_ptr<HessianAccumulator> hessian;
  torch::Tensor w_param, a_param, a_zero;  // LSQ scale / PACT alpha / QuantGPT gamma; activation scale or alpha
  bool w_initialised = false, a_initialised = false;
  std::optional<QParams> a_frozen;
  torch::Tensor gptq_weight;
  std::optional<QParams> gptq_qparams;  // the grid GPTQ rounded to (per channel or group)
  torch::Tensor input_absmax;           // SmoothQuant's first pass: max |x| per input channel
  torch::Tensor smoothing;              // SmoothQuant's own factor s of this layer (undefined = none)
  bool calibrating = false, active = false, smoothing_pass = false;
  std::string source;
  // Data parallelism (see Quantizer::join): every rank runs every batch on its share of the rows;
  // a stand-in's rows only meet the reductions.
  dist::Group* group = nullptr;
  bool stand_in = false;

  void reset_calibration() {
    if (observer) observer = std::make_unique<Observer>(aq->observer, aq->spec, source + " (" + name + ")"), observer->join(group);
    if (hessian) hessian = std::make_unique<HessianAccumulator>();
  }

  bool shared() const { return group && group->distributed(); }

  // The batch's [min, max] of x over the group (a stand-in contributes nothing): what one process
  // sees in the whole batch. Reduced only in training, where every rank runs every batch.
  std::pair<torch::Tensor, torch::Tensor> batch_range(const torch::Tensor& x, const QuantSpec& s) {
    auto [lo, hi] = min_max(x, s);
    if (!shared() || !linear->is_training()) return {lo, hi};
    constexpr float kInf = std::numeric_limits<float>::infinity();
    auto packed = torch::cat({stand_in ? torch::full_like(lo, kInf) : lo, stand_in ? torch::full_like(hi, kInf) : -hi}).contiguous();
    group->min(packed);
    return {packed.slice(0, 0, lo.size(0)).reshape(lo.sizes()), -packed.slice(0, lo.size(0)).reshape(hi.sizes())};
  }

  // The weight the grid is fitted to: masked, and times the smoothing factors per input channel.
  torch::Tensor masked_weight() const {
    auto w = site->masked_weight(linear->logical_weight());
    return smoothing.defined() ? w * smoothing : w;
  }

  // Parameters of the weight grid for the weight `w` the forward pass sees (masked).
  QParams weight_qparams(const torch::Tensor& w) {
    const auto& s = wq->spec;
    torch::NoGradGuard no_grad;
    switch (wq->method) {
      case WeightMethod::kMinMax: return dynamic_qparams(w, s);
      case WeightMethod::kMse: return mse_qparams(w, s);
      case WeightMethod::kGptq:
        if (!gptq_qparams) fail_invalid(name, ": GPTQ parameters exist only after calibration");
        return *gptq_qparams;
      case WeightMethod::kLsq: return {w_param.detach().clone(), torch::zeros_like(w_param)};
      case WeightMethod::kPact: return {w_param.detach() / static_cast<double>(qmax(s)), torch::zeros_like(w_param)};
      case WeightMethod::kQuantGpt:
        return {w_param.detach() * mean_abs(w, s) / static_cast<double>(qmax(s)), torch::zeros_like(w_param)};
      case WeightMethod::kTernary:
      case WeightMethod::kBinary: {
        auto v = group_view(quantize_weight(w).detach(), s).abs();
        auto scale = std::get<0>(v.max(-1, true));
        return {torch::where(scale > 0, scale, torch::ones_like(scale)), torch::zeros_like(scale)};
      }
    }
    return {};
  }

  void init_weight_params(const torch::Tensor& w) {
    torch::NoGradGuard no_grad;
    const auto& s = wq->spec;
    auto p = mse_qparams(w, s);  // learned scales start from the best round-to-nearest grid
    const double qhi = static_cast<double>(qmax(s));
    if (wq->method == WeightMethod::kLsq) w_param.copy_(p.scale);
    if (wq->method == WeightMethod::kPact) w_param.copy_(p.scale * qhi);
    if (wq->method == WeightMethod::kQuantGpt) w_param.copy_(p.scale * qhi / mean_abs(w, s));
    w_initialised = true;
  }

  torch::Tensor quantize_weight(const torch::Tensor& w) {
    const auto& s = wq->spec;
    switch (wq->method) {
      case WeightMethod::kMinMax: return fake_quantize_ste(w, dynamic_qparams(w, s), s);
      case WeightMethod::kMse: return fake_quantize_ste(w, mse_qparams(w, s), s);
      case WeightMethod::kGptq: return gptq_weight;
      case WeightMethod::kLsq: return lsq_fake_quantize(w, w_param, torch::zeros_like(w_param), s, lsq_grad_factor(w, s));
      case WeightMethod::kPact: return pact_fake_quantize(w, w_param, s);
      case WeightMethod::kQuantGpt: return quantgpt_fake_quantize(w, w_param, s);
      case WeightMethod::kTernary: return ternary_fake_quantize(w, s);
      case WeightMethod::kBinary: return binary_fake_quantize(w, s);
    }
    return w;
  }

  // With a smoothing factor the grid is W diag(s)'s, divided back out so that the float product
  // with the input (times s after its own quantization) is W diag(s) times x / s.
  torch::Tensor on_weight(const torch::Tensor& w) {
    if (!active || !wq) return w;
    auto ws = smoothing.defined() ? w * smoothing : w;
    if (w_param.defined() && !w_initialised) init_weight_params(ws.detach());
    auto q = quantize_weight(ws);
    return smoothing.defined() ? q / smoothing : q;
  }

  QParams input_qparams() const {
    if (a_frozen) return *a_frozen;
    return observer->qparams();
  }

  torch::Tensor on_input(const torch::Tensor& x) {
    if (smoothing_pass) {
      torch::NoGradGuard no_grad;
      auto m = std::get<0>(x.detach().abs().reshape({-1, x.size(-1)}).max(0));
      if (stand_in) m.zero_();
      if (shared()) group->max(m);
      input_absmax = input_absmax.defined() ? torch::maximum(input_absmax, m) : m;
      return x;
    }
    if (calibrating) {
      auto xs = smoothing.defined() ? x / smoothing : x;
      if (observer) observer->observe(xs, !stand_in);
      if (hessian && !stand_in) hessian->add(xs);
      return x;
    }
    if (!active || !aq) return x;
    if (smoothing.defined()) return quantize_input(x / smoothing) * smoothing;
    return quantize_input(x);
  }

  torch::Tensor quantize_input(const torch::Tensor& x) {
    const auto& s = aq->spec;
    switch (aq->method) {
      case ActivationMethod::kStatic: {
        if (linear->is_training() && !a_frozen) observer->observe(x, !stand_in);
        return fake_quantize_ste(x, input_qparams(), s);
      }
      case ActivationMethod::kDynamic: return fake_quantize_ste(x, dynamic_qparams(x, s), s);
      case ActivationMethod::kLsq:
      case ActivationMethod::kPact: {
        if (!a_initialised) {
          torch::NoGradGuard no_grad;
          auto [lo, hi] = batch_range(x, s);
          auto p = qparams_from_range(lo, hi, s);
          if (aq->method == ActivationMethod::kLsq) a_param.copy_(p.scale.reshape({1, 1})), a_zero.copy_(p.zero_point.reshape({1, 1}));
          else a_param.copy_(torch::maximum(lo.abs(), hi.abs()).max().clamp_min(1e-8).reshape({1, 1}));
          a_initialised = true;
        }
        if (aq->method == ActivationMethod::kLsq) return lsq_fake_quantize(x, a_param, a_zero, s, lsq_grad_factor(x, s));
        return pact_fake_quantize(x, a_param, s);
      }
    }
    return x;
  }
};

Quantizer::Quantizer(QuantizerSpec spec) : spec_(std::move(spec)) {}
Quantizer::~Quantizer() = default;

void Quantizer::attach(models::TransformerModel& model) {
  auto targets = spec_.targets.select(compress::list_layers(model));
  for (auto& t : targets) {
    if (t.type != "linear") fail_invalid(spec_.source, ": '", t.name, "' is an ", t.type, "; quantizers target linear layers");
    auto layer = std::make_shared<Layer>();
    layer->name = t.name;
    layer->linear = t.linear.get();
    layer->wq = spec_.weight;
    layer->aq = spec_.activation;
    layer->source = spec_.source;
    const int64_t out = t.linear->out_features(), in = t.linear->in_features();
    if (layer->wq) {
      layer->wq->spec.validate(in, spec_.source + " weight (" + t.name + ")");
      auto shape = group_view(torch::zeros({out, in}), layer->wq->spec).sizes().vec();
      shape.back() = 1;
      if (spec_.qat && (layer->wq->method == WeightMethod::kLsq || layer->wq->method == WeightMethod::kPact ||
                        layer->wq->method == WeightMethod::kQuantGpt))
        layer->w_param = torch::ones(shape).set_requires_grad(true);
      if (layer->wq->method == WeightMethod::kGptq) layer->hessian = std::make_unique<HessianAccumulator>();
    }
    if (layer->aq) {
      if (layer->aq->method == ActivationMethod::kStatic)
        layer->observer = std::make_unique<Observer>(layer->aq->observer, layer->aq->spec, spec_.source + " (" + t.name + ")");
      if (layer->aq->method == ActivationMethod::kLsq || layer->aq->method == ActivationMethod::kPact) {
        layer->a_param = torch::ones({1, 1}).set_requires_grad(true);
        layer->a_zero = torch::zeros({1, 1});
      }
    }
    auto& site = compress::site_of(*t.site, t.name);
    layer->site = &site;
    // The site holds the layer state, so it lives as long as the model does.
    site.add_weight_transform(spec_.name, [layer](const torch::Tensor& w) { return layer->on_weight(w); });
    site.add_input_transform(spec_.name, [layer](const torch::Tensor& x) { return layer->on_input(x); });
    layers_.push_back(layer);
  }
  if (spec_.smooth_alpha) check_smoothable(model);
  log_info("quantizer ", spec_.name, ": ", layers_.size(), " linear layers", spec_.qat ? " (QAT)" : " (PTQ)");
}

// SmoothQuant needs at least one norm whose readers are all targets (and none only partly).
void Quantizer::check_smoothable(models::TransformerModel& model) const {
  if (spec_.smooth_unfoldable) return;  // every target can carry its own factor
  std::map<const nn::LinearImpl*, const Layer*> targeted;
  for (const auto& l : layers_) targeted[l->linear] = l.get();
  int complete = 0;
  for (const auto& group : model.structure().smoothable) {
    size_t hit = 0;
    for (const auto& r : group.readers) hit += targeted.count(r.get());
    if (hit > 0 && hit < group.readers.size())
      fail_invalid(spec_.source, ": smoothquant: a norm's output feeds ", group.readers.size(), " Linears and only ", hit,
                   " are targets; target all of them or none");
    complete += hit > 0;
  }
  if (complete == 0)
    fail_invalid(spec_.source, ": smoothquant found no target that reads a pre-LN norm's output alone (", model.info().model_type,
                 "): it folds 1/s into such a norm (gpt2 ln_1 -> c_attn, opt self_attn_layer_norm -> q/k/v_proj, llama input_layernorm -> "
                 "q/k/v_proj, ...); post-LN norms (bert) also feed the residual: smoothquant: {unfoldable: scale} gives each target its own factor");
}

void Quantizer::begin_calibration() {
  // With SmoothQuant the first pass only records per-channel ranges; smooth() ends it.
  const bool smoothing_first = spec_.smooth_alpha && !smoothed_;
  for (auto& l : layers_) (smoothing_first ? l->smoothing_pass : l->calibrating) = true;
}

namespace {

// s_j = max|x_j|^alpha / max|W[:, j]|^(1 - alpha); a dead channel (no input or no weight) keeps
// s = 1, and the clamp keeps 1/s finite in float32.
torch::Tensor smoothing_factors(const torch::Tensor& act, const torch::Tensor& wmax, double alpha) {
  auto s = act.pow(alpha) / wmax.pow(1.0 - alpha);
  return torch::where((act > 0) & (wmax > 0) & torch::isfinite(s), s, torch::ones_like(s)).clamp(1e-4, 1e4);
}

}  // namespace

int Quantizer::smooth(models::TransformerModel& model) {
  torch::NoGradGuard no_grad;
  if (!spec_.smooth_alpha) fail_invalid(spec_.source, ": smooth() without smoothquant in the spec");
  const double alpha = *spec_.smooth_alpha;
  std::map<const nn::LinearImpl*, Layer*> targeted;
  for (auto& l : layers_) targeted[l->linear] = l.get();
  int smoothed = 0, own = 0;
  std::set<const Layer*> folded;
  for (auto& group : model.structure().smoothable) {
    std::vector<Layer*> readers;
    for (auto& r : group.readers)
      if (auto it = targeted.find(r.get()); it != targeted.end()) readers.push_back(it->second);
    if (readers.size() != group.readers.size()) continue;  // attach() refused partial groups
    const auto& act = readers[0]->input_absmax;  // one input, read by every reader
    if (!act.defined()) fail_invalid(spec_.source, " (", readers[0]->name, "): smoothquant saw no calibration inputs");
    torch::Tensor wmax;
    for (auto* r : readers) {
      auto m = std::get<0>(r->masked_weight().abs().max(0));
      wmax = wmax.defined() ? torch::maximum(wmax, m) : m;
    }
    if (!group.weight.defined()) continue;  // a norm without affine weight has nothing to fold into
    auto s = smoothing_factors(act, wmax, alpha);
    group.weight.div_(s);
    if (group.bias.defined()) group.bias.div_(s);
    for (auto& r : group.readers) r->logical_weight().mul_(s);
    for (auto* r : readers) folded.insert(r);
    ++smoothed;
  }
  if (spec_.smooth_unfoldable)
    for (auto& l : layers_) {
      if (folded.count(l.get())) continue;
      if (!l->input_absmax.defined()) fail_invalid(spec_.source, " (", l->name, "): smoothquant saw no calibration inputs");
      l->smoothing = smoothing_factors(l->input_absmax, std::get<0>(l->masked_weight().abs().max(0)), alpha);
      ++own;
    }
  if (smoothed + own == 0) check_smoothable(model);  // names why
  for (auto& l : layers_) {
    l->smoothing_pass = false;
    l->input_absmax = torch::Tensor();
    l->reset_calibration();
  }
  smoothed_ = true;
  log_info("quantizer ", spec_.name, ": smoothquant (alpha ", alpha, ") folded into ", smoothed, " norms",
           spec_.smooth_unfoldable ? to_text(", own factors on ", own, " layers") : std::string());
  return smoothed + own;
}

void Quantizer::end_calibration() {
  if (spec_.smooth_alpha && !smoothed_) fail_invalid(spec_.source, ": smoothquant needs its own calibration pass and smooth() first");
  for (auto& l : layers_) {
    l->calibrating = false;
    if (l->observer) l->a_frozen = l->observer->qparams();
    if (l->hessian) {
      if (l->group) l->hessian->all_reduce(*l->group, l->linear->in_features());
      auto w = l->masked_weight();
      if (l->hessian->rows() == 0) fail_invalid(spec_.source, " (", l->name, "): GPTQ saw no calibration inputs");
      auto r = gptq_quantize(w, l->hessian->hessian(), l->wq->spec, l->wq->damp, spec_.source + " (" + l->name + ")");
      // Pruned weights stay zero: GPTQ's error feedback may have moved them.
      l->gptq_weight = r.weight * w.ne(0).to(r.weight.scalar_type());
      l->gptq_qparams = r.qparams;
      l->hessian.reset();
    }
    l->active = true;
  }
  active_ = true;
}

void Quantizer::before_step(int64_t step) {
  if (!spec_.qat || active_ || step < spec_.start_step) return;
  for (auto& l : layers_) l->active = true;
  active_ = true;
  log_info("quantizer ", spec_.name, ": fake quantization on from step ", step + 1);
}

std::vector<torch::Tensor> Quantizer::trainable() const {
  std::vector<torch::Tensor> t;
  for (const auto& l : layers_) {
    if (l->w_param.defined()) t.push_back(l->w_param);
    if (l->a_param.defined()) t.push_back(l->a_param);
  }
  return t;
}

void Quantizer::save_state(const std::string& prefix, train::StateDict& state) const {
  state.put_value(prefix + "active", active_);
  for (size_t i = 0; i < layers_.size(); ++i) {
    const auto& l = *layers_[i];
    const std::string p = prefix + "layer." + std::to_string(i) + ".";
    state.put_value(p + "name", l.name);
    state.put_value(p + "flags", {l.active, l.w_initialised, l.a_initialised});
    state.put(p + "w_param", l.w_param);
    state.put(p + "a_param", l.a_param);
    state.put(p + "a_zero", l.a_zero);
    if (l.observer) l.observer->save_state(p + "observer.", state);
  }
}

void Quantizer::load_state(const std::string& prefix, const train::StateDict& state) {
  active_ = state.value(prefix + "active").get<bool>();
  for (size_t i = 0; i < layers_.size(); ++i) {
    auto& l = *layers_[i];
    const std::string p = prefix + "layer." + std::to_string(i) + ".";
    if (state.value(p + "name") != l.name)
      fail_invalid(spec_.source, ": the saved state's layer ", i, " is '", state.value(p + "name").get<std::string>(), "', not '", l.name, "'");
    const auto& flags = state.value(p + "flags");
    l.active = flags.at(0).get<bool>(), l.w_initialised = flags.at(1).get<bool>(), l.a_initialised = flags.at(2).get<bool>();
    const std::pair<const char*, torch::Tensor*> learned[] = {{"w_param", &l.w_param}, {"a_param", &l.a_param}, {"a_zero", &l.a_zero}};
    for (const auto& [key, t] : learned)
      if (t->defined()) state.copy_into(p + key, *t);
    if (l.observer) l.observer->load_state(p + "observer.", state);
  }
}

void Quantizer::join(dist::Group* group) {
  for (auto& l : layers_) {
    l->group = group;
    if (l->observer) l->observer->join(group);
  }
}

void Quantizer::set_stand_in(bool on) {
  for (auto& l : layers_) l->stand_in = on;
}

std::vector<QuantizedLayer> Quantizer::snapshot() const {
  torch::NoGradGuard no_grad;
  std::vector<QuantizedLayer> out;
  if (!active_)
    fail_invalid(spec_.source, ": quantizer ", spec_.name, " never turned on (QAT start_step ", spec_.start_step,
                 " not reached, or PTQ not calibrated), so there is nothing quantized to export");
  for (const auto& l : layers_) {
    QuantizedLayer q;
    q.name = l->name;
    q.activation = l->aq;
    if (l->wq) {
      q.weight = *l->wq;
      auto w = l->masked_weight();
      auto w_hat = l->quantize_weight(w).detach();
      q.weight_qparams = l->weight_qparams(w);
      // Codes from the fake-quantized values themselves, so the export is what was evaluated.
      q.codes = quantize(w_hat, q.weight_qparams, l->wq->spec);
    }
    if (l->smoothing.defined()) q.input_smoothing = l->smoothing.clone();
    if (l->aq && l->aq->method != ActivationMethod::kDynamic) {
      if (l->aq->method == ActivationMethod::kStatic) q.input_qparams = l->input_qparams();
      else if (l->aq->method == ActivationMethod::kLsq) q.input_qparams = QParams{l->a_param.detach().clone(), l->a_zero.clone()};
      else q.input_qparams = QParams{l->a_param.detach() / static_cast<double>(qmax(l->aq->spec)), torch::zeros({1, 1})};
    }
    out.push_back(std::move(q));
  }
  return out;
}

void Quantizer::activate_frozen(const std::map<std::string, QParams>& inputs, const std::map<std::string, torch::Tensor>& smoothing) {
  for (auto& l : layers_) {
    if (auto it = smoothing.find(l->name); it != smoothing.end()) l->smoothing = it->second;
    if (l->aq && l->aq->method == ActivationMethod::kStatic) {
      auto it = inputs.find(l->name);
      if (it == inputs.end()) fail_invalid(spec_.source, ": no input scale for '", l->name, "'");
      l->a_frozen = it->second;
    }
    l->active = true;
  }
  active_ = true;
}

std::string Quantizer::describe_nonfinite() const {
  torch::NoGradGuard no_grad;
  for (const auto& l : layers_) {
    for (const auto* t : {&l->w_param, &l->a_param})
      if (t->defined() && !torch::isfinite(*t).all().item<bool>())
        return to_text("quantizer ", spec_.name, ", module ", l->name, ": learned ", t == &l->w_param ? "weight" : "input",
                       " scale is not finite");
    if (l->active && l->wq && !torch::isfinite(l->quantize_weight(l->masked_weight())).all().item<bool>())
      return to_text("quantizer ", spec_.name, ", module ", l->name, ": fake-quantized weight is not finite");
  }
  return "";
}

std::string Quantizer::status() const { return active_ ? " " + spec_.name + " on" : ""; }

}  // namespace sqz::quant
