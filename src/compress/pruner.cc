#include "compress/pruner.h"

#include <cmath>
#include <map>

#include "compress/site.h"
#include "core/error.h"
#include "core/log.h"

namespace sqz::compress {

// One thing the sparsity rule chooses over: a layer's weight (element, N:M), its rows or
// columns, or a block's heads or neurons. `mask` has the unit's shape; `shape_for` turns a unit
// tensor into the factor each member layer multiplies its weight by.
struct Pruner::Unit {
  std::string name;
  int64_t layer = -1;
  torch::Tensor mask, importance, gate, scores;
  std::function<torch::Tensor()> weight_importance;  // magnitude / L2 from the current weights
};

namespace {

template <typename E>
E parse_enum(const YAML::Node& n, const std::string& key, const std::map<std::string, E>& values, const std::string& where) {
  std::string v = n.as<std::string>();
  auto it = values.find(v);
  if (it == values.end()) {
    std::string known;
    for (const auto& [k, e] : values) known += (known.empty() ? "" : ", ") + k;
    fail_invalid(where, ": ", key, " '", v, "' is not one of: ", known);
  }
  return it->second;
}

const std::map<std::string, Granularity> kGranularities = {
    {"element", Granularity::kElement}, {"nm", Granularity::kNM},       {"row", Granularity::kRow},
    {"column", Granularity::kColumn},   {"head", Granularity::kHead}, {"neuron", Granularity::kNeuron},
    {"hidden", Granularity::kHidden},   {"block", Granularity::kBlock}};
const std::map<std::string, Metric> kMetrics = {
    {"magnitude", Metric::kMagnitude}, {"l1", Metric::kMagnitude}, {"l2", Metric::kL2},
    {"taylor", Metric::kTaylor},       {"movement", Metric::kMovement}};
const std::map<std::string, Schedule::Kind> kSchedules = {
    {"oneshot", Schedule::Kind::kOneShot}, {"iterative", Schedule::Kind::kIterative}, {"agp", Schedule::Kind::kAgp}};

// Per-head (dim 0 of the result) sums of f(w) over a head's rows of each `rows` layer and its
// columns of `cols`.
// Importance of `groups` equal groups: the rows each holds of every `rows` Linear (`row_indices[i]`
// lists them group by group; empty: all rows in order) and its columns of `cols`.
torch::Tensor group_sum(const std::vector<nn::Linear>& rows, const std::vector<torch::Tensor>& row_indices, const nn::Linear& cols,
                        int64_t groups, const std::function<torch::Tensor(const torch::Tensor&)>& f) {
  torch::NoGradGuard no_grad;
  auto total = torch::zeros({groups});
  for (size_t i = 0; i < rows.size(); ++i) {
    auto w = rows[i]->logical_weight();
    if (!row_indices.empty()) w = w.index_select(0, row_indices[i]);
    total += f(w).reshape({groups, -1}).sum(1);
  }
  auto c = f(cols->logical_weight());  // [out, groups * width]
  total += c.reshape({c.size(0), groups, -1}).sum(std::vector<int64_t>{0, 2});
  return total;
}

// A block mask ([out/4, in/4] rounded up) spread over the [out, in] weight it covers; the
// gradient of each block's entry is the sum over its block.
torch::Tensor expand_blocks(const torch::Tensor& blocks, int64_t out, int64_t in) {
  const int64_t bo = blocks.size(0), bi = blocks.size(1);
  return blocks.reshape({bo, 1, bi, 1})
      .expand({bo, kBlockRows, bi, kBlockCols})
      .reshape({bo * kBlockRows, bi * kBlockCols})
      .slice(0, 0, out)
      .slice(1, 0, in);
}

// Zeroes the `k` lowest-importance entries of each tensor's mask, ranking all of them together.
void prune_lowest(std::vector<torch::Tensor*> masks, const std::vector<torch::Tensor>& importance, int64_t k) {
  std::vector<torch::Tensor> flat;
  for (const auto& i : importance) flat.push_back(i.reshape({-1}).to(torch::kFloat64));
  auto all = torch::cat(flat);
  auto keep = torch::ones_like(all);
  if (k > 0) keep.index_fill_(0, std::get<1>(torch::sort(all, /*stable=*/true, 0, false)).slice(0, 0, k), 0.0);
  int64_t offset = 0;
  for (auto* m : masks) {
    auto n = m->numel();
    m->copy_(keep.slice(0, offset, offset + n).reshape(m->sizes()).to(m->scalar_type()));
    offset += n;
  }
}

}  // namespace

bool is_group(Granularity g) { return g == Granularity::kHead || g == Granularity::kNeuron || g == Granularity::kHidden; }

torch::Tensor nm_keep_mask(const torch::Tensor& importance, int64_t n, int64_t m) {
  auto groups = importance.reshape({importance.size(0), importance.size(1) / m, m});
  return torch::zeros_like(groups).scatter_(2, std::get<1>(groups.topk(n, 2)), 1.0).reshape(importance.sizes());
}

torch::Tensor block_sums(const torch::Tensor& x) {
  const int64_t out = x.size(0), in = x.size(1);
  const int64_t bo = (out + kBlockRows - 1) / kBlockRows, bi = (in + kBlockCols - 1) / kBlockCols;
  auto padded = torch::constant_pad_nd(x, {0, bi * kBlockCols - in, 0, bo * kBlockRows - out});
  return padded.reshape({bo, kBlockRows, bi, kBlockCols}).sum(std::vector<int64_t>{1, 3});
}

torch::Tensor block_keep_mask(const torch::Tensor& importance, double sparsity) {
  auto sums = block_sums(importance);
  auto keep = torch::ones_like(sums);
  prune_lowest({&keep}, {sums}, std::llround(sparsity * static_cast<double>(sums.numel())));
  return expand_blocks(keep, importance.size(0), importance.size(1));
}

torch::Tensor hidden_group_importance(const models::HiddenGroup& group, int64_t width,
                                      const std::function<torch::Tensor(const torch::Tensor&)>& elementwise) {
  torch::NoGradGuard no_grad;
  auto total = torch::zeros({width});
  for (const auto& e : group.embeddings) total += elementwise(e->weight).sum(0);
  for (const auto& r : group.readers) total += elementwise(r->logical_weight()).sum(0);
  for (const auto& w : group.writers) total += elementwise(w->logical_weight()).sum(1);
  return total;
}

const char* granularity_name(Granularity g) {
  for (const auto& [k, v] : kGranularities)
    if (v == g) return k.c_str();
  return "?";
}

const char* metric_name(Metric m) {
  switch (m) {
    case Metric::kMagnitude: return "magnitude";
    case Metric::kL2: return "l2";
    case Metric::kTaylor: return "taylor";
    case Metric::kMovement: return "movement";
  }
  return "?";
}

double Schedule::sparsity_at(int64_t step, double target) const {
  if (step < start) return 0.0;
  if (kind == Kind::kOneShot || step >= end || end <= start) return target;
  int64_t t = start + (step - start) / every * every;  // the last update step
  if (kind == Kind::kIterative) {
    int64_t updates = (end - start) / every + 1;
    return target * static_cast<double>((t - start) / every + 1) / static_cast<double>(updates);
  }
  double frac = static_cast<double>(t - start) / static_cast<double>(end - start);  // AGP (Zhu & Gupta 2017)
  return target * (1.0 - std::pow(1.0 - frac, 3.0));
}

bool Schedule::updates_at(int64_t step) const {
  if (kind == Kind::kOneShot) return step == start;
  return step >= start && step <= std::max(end, start) && (step - start) % every == 0;
}

PrunerSpec PrunerSpec::parse(const YAML::Node& node, const std::string& source) {
  PrunerSpec s;
  s.source = source;
  if (!node.IsMap()) fail_invalid(source, ": a pruner must be a mapping");
  for (const auto& kv : node) {
    std::string key = kv.first.as<std::string>();
    std::string where = to_text(source, " (line ", kv.first.Mark().line + 1, ")");
    const YAML::Node& v = kv.second;
    try {
      if (key == "name") s.name = v.as<std::string>();
      else if (key == "targets") s.targets = Selector::parse(v, where);
      else if (key == "granularity") s.granularity = parse_enum(v, key, kGranularities, where);
      else if (key == "metric") s.metric = parse_enum(v, key, kMetrics, where);
      else if (key == "scope") s.scope = parse_enum(v, key, std::map<std::string, Scope>{{"layer", Scope::kLayer}, {"global", Scope::kGlobal}}, where);
      else if (key == "sparsity") s.sparsity = v.as<double>();
      else if (key == "n") s.n = v.as<int64_t>();
      else if (key == "m") s.m = v.as<int64_t>();
      else if (key == "soft") s.soft = v.as<bool>();
      else if (key == "threshold") s.threshold = v.as<double>();
      else if (key == "regularization") s.regularization = v.as<double>();
      else if (key == "score_lr") s.score_lr = v.as<double>();
      else if (key == "allow_empty_layers") s.allow_empty_layers = v.as<bool>();
      else if (key == "schedule") {
        if (!v.IsMap()) fail_invalid(where, ": schedule must be a mapping (kind, start, end, every)");
        for (const auto& skv : v) {
          std::string sk = skv.first.as<std::string>();
          if (sk == "kind") s.schedule.kind = parse_enum(skv.second, "schedule.kind", kSchedules, where);
          else if (sk == "start") s.schedule.start = skv.second.as<int64_t>();
          else if (sk == "end") s.schedule.end = skv.second.as<int64_t>();
          else if (sk == "every") s.schedule.every = skv.second.as<int64_t>();
          else fail_invalid(where, ": unknown schedule key '", sk, "' (known: kind, start, end, every)");
        }
      } else {
        fail_invalid(where, ": unknown pruner key '", key,
                     "' (known: name, targets, granularity, metric, scope, sparsity, n, m, schedule, soft, threshold, "
                     "regularization, score_lr, allow_empty_layers)");
      }
    } catch (const YAML::Exception&) {
      fail_invalid(where, ": pruner key '", key, "' has a value of the wrong type: '", YAML::Dump(v), "'");
    }
  }
  std::string who = to_text(source, s.name.empty() ? "" : " (pruner '" + s.name + "')");
  if (!(s.sparsity >= 0.0 && s.sparsity < 1.0)) fail_invalid(who, ": sparsity ", s.sparsity, " is outside [0, 1)");
  if (s.granularity == Granularity::kNM) {
    if (s.m < 2 || s.n < 1 || s.n >= s.m) fail_invalid(who, ": N:M needs 0 < n < m, got n=", s.n, " m=", s.m);
    s.sparsity = 1.0 - static_cast<double>(s.n) / static_cast<double>(s.m);
  }
  const auto& sc = s.schedule;
  if (sc.start < 0 || sc.every < 1 || (sc.kind != Schedule::Kind::kOneShot && sc.end < sc.start))
    fail_invalid(who, ": schedule needs 0 <= start <= end and every >= 1");
  if (s.metric == Metric::kTaylor && sc.start == 0)
    fail_invalid(who, ": the taylor metric accumulates gradients first; schedule.start must be > 0");
  if (s.metric == Metric::kMovement && s.granularity == Granularity::kNM)
    fail_invalid(who, ": movement scores with N:M are not supported; use magnitude or taylor");
  return s;
}

YAML::Node PrunerSpec::to_yaml() const {
  YAML::Node n;
  n["name"] = name;
  n["targets"] = targets.to_yaml();
  n["granularity"] = granularity_name(granularity);
  n["metric"] = metric_name(metric);
  n["scope"] = scope == Scope::kLayer ? "layer" : "global";
  n["sparsity"] = sparsity;
  if (granularity == Granularity::kNM) {
    n["n"] = this->n;
    n["m"] = m;
  }
  const char* kinds[] = {"oneshot", "iterative", "agp"};
  n["schedule"]["kind"] = kinds[static_cast<int>(schedule.kind)];
  n["schedule"]["start"] = schedule.start;
  n["schedule"]["end"] = schedule.end;
  n["schedule"]["every"] = schedule.every;
  if (metric == Metric::kMovement) {
    n["soft"] = soft;
    n["threshold"] = threshold;
    n["regularization"] = regularization;
    n["score_lr"] = score_lr;
  }
  n["allow_empty_layers"] = allow_empty_layers;
  return n;
}

Pruner::Pruner(PrunerSpec spec) : spec_(std::move(spec)) {}
Pruner::~Pruner() = default;

void Pruner::attach(models::TransformerModel& model, double base_lr) {
  const std::string who = to_text(spec_.source, spec_.name.empty() ? "" : " (pruner '" + spec_.name + "')");
  auto all = list_layers(model);
  Selector sel = spec_.targets;
  bool structured = is_group(spec_.granularity);
  if (spec_.granularity == Granularity::kHidden && !sel.empty())
    fail_invalid(who, ": granularity 'hidden' prunes the whole residual stream at once; it takes no targets");
  if (sel.empty() && !structured) sel.roles = {"q", "k", "v", "qkv", "o", "ffn_in", "ffn_out"};
  std::vector<LayerTarget> chosen;
  if (!sel.empty() || !structured) chosen = sel.select(all);
  auto chosen_has = [&](const nn::Linear& l) {
    if (sel.empty()) return true;
    return std::any_of(chosen.begin(), chosen.end(), [&](const LayerTarget& t) { return !t.linear.is_empty() && t.linear.get() == l.get(); });
  };
  auto name_of = [&](const nn::Linear& l) {
    for (const auto& t : all)
      if (!t.linear.is_empty() && t.linear.get() == l.get()) return t.name;
    return std::string("?");
  };
  // The factor a unit contributes: its mask, with a gradient path for the metric that needs one.
  auto value_of = [this](Unit* u) {
    if (spec_.metric == Metric::kTaylor) return u->mask * u->gate;
    if (spec_.metric == Metric::kMovement) return u->mask + (u->scores - u->scores.detach());
    return u->mask;
  };
  auto new_unit = [&](std::string name, int64_t layer, std::vector<int64_t> shape) {
    auto u = std::make_unique<Unit>();
    u->name = std::move(name);
    u->layer = layer;
    u->mask = torch::ones(shape);
    u->importance = torch::zeros(shape);
    if (spec_.metric == Metric::kTaylor) u->gate = torch::ones(shape).requires_grad_(true);
    if (spec_.metric == Metric::kMovement) u->scores = torch::zeros(shape).requires_grad_(true);
    units_.push_back(std::move(u));
    return units_.back().get();
  };
  auto pow_of = [this](const torch::Tensor& w) { return spec_.metric == Metric::kL2 ? w.pow(2) : w.abs(); };

  if (structured) {
    auto s = model.structure();
    if (s.attention.empty())
      fail_unimplemented(who, ": granularity '", granularity_name(spec_.granularity), "' needs the dependency groups of '",
                         model.info().model_type, "', which sqz does not describe yet");
    if (spec_.granularity == Granularity::kHidden) {
      auto g = s.hidden;
      if (g.norms.empty() || !g.norms.front()->weight.defined())
        fail_unimplemented(who, ": hidden-dimension groups of '", model.info().model_type, "' are not described yet");
      int64_t width = g.norms.front()->weight.size(0);
      Unit* u = new_unit("hidden", -1, {width});
      u->weight_importance = [g, width, pow_of] { return hidden_group_importance(g, width, pow_of); };
      for (auto e : g.embeddings) site_of(e->site, "embedding").add_factor(spec_.name, [u, value_of] { return value_of(u).unsqueeze(0); });
      for (auto r : g.readers) site_of(r->site, name_of(r)).add_factor(spec_.name, [u, value_of] { return value_of(u).unsqueeze(0); });
      for (auto w : g.writers) {
        auto& site = site_of(w->site, name_of(w));
        site.add_factor(spec_.name, [u, value_of] { return value_of(u).unsqueeze(1); });
        site.add_output_factor(spec_.name, [u] { return u->mask; });
      }
      for (auto n : g.norms) n->keep = u->mask;  // shares storage: mask updates reach the norms
    } else if (spec_.granularity == Granularity::kHead) {
      for (const auto& b : s.attention) {
        bool any = chosen_has(b.head_cols);
        for (const auto& r : b.head_rows) any = any || chosen_has(r);
        if (!any || b.num_heads == 0) continue;
        // Grouped-query attention: one unit per K/V head with the query heads that read it.
        const int64_t h = b.groups(), cw = b.group_cols();
        Unit* u = new_unit(to_text("layer ", b.layer, b.grouped_query() ? " key/value groups" : " heads"), b.layer, {h});
        auto rows = b.head_rows;
        auto cols = b.head_cols;
        std::vector<torch::Tensor> row_indices;
        for (size_t i = 0; i < rows.size(); ++i) row_indices.push_back(b.head_row_indices(i));
        u->weight_importance = [rows, row_indices, cols, h, pow_of] { return group_sum(rows, row_indices, cols, h, pow_of); };
        for (size_t i = 0; i < rows.size(); ++i) {
          // A fused QKV Linear gets one factor per segment, ones on the other rows.
          const int64_t out = rows[i]->out_features(), rw = b.group_rows(i);
          site_of(rows[i]->site, name_of(rows[i])).add_factor(spec_.name, [u, rw, out, idx = row_indices[i], value_of] {
            return torch::ones({out}).index_copy(0, idx, value_of(u).repeat_interleave(rw)).unsqueeze(1);
          });
        }
        site_of(cols->site, name_of(cols)).add_factor(spec_.name, [u, cw, value_of] { return value_of(u).repeat_interleave(cw).unsqueeze(0); });
      }
    } else {
      for (const auto& b : s.ffn) {
        bool any = chosen_has(b.neuron_cols);
        for (const auto& r : b.neuron_rows) any = any || chosen_has(r);
        if (!any) continue;
        int64_t width = b.neuron_cols->in_features();
        if (width == 0) continue;
        Unit* u = new_unit(to_text("layer ", b.layer, " neurons"), b.layer, {width});
        auto rows = b.neuron_rows;
        auto cols = b.neuron_cols;
        u->weight_importance = [rows, cols, width, pow_of] { return group_sum(rows, {}, cols, width, pow_of); };
        for (auto r : rows) site_of(r->site, name_of(r)).add_factor(spec_.name, [u, value_of] { return value_of(u).unsqueeze(1); });
        site_of(cols->site, name_of(cols)).add_factor(spec_.name, [u, value_of] { return value_of(u).unsqueeze(0); });
      }
    }
    if (units_.empty()) fail_invalid(who, ": the targets select no attention block or FFN");
  } else {
    for (const auto& t : chosen) {
      auto w = t.weight();
      if (spec_.granularity == Granularity::kNM && w.size(1) % spec_.m != 0)
        fail_invalid(who, ": ", t.name, " has input dimension ", w.size(1), ", which m=", spec_.m, " does not divide (N:M groups run along the input)");
      auto weight = t.weight;
      Unit* u;
      switch (spec_.granularity) {
        case Granularity::kRow:
          u = new_unit(t.name, t.layer, {w.size(0)});
          u->weight_importance = [weight, pow_of] { return pow_of(weight().detach()).sum(1); };
          site_of(*t.site, t.name).add_factor(spec_.name, [u, value_of] { return value_of(u).unsqueeze(1); });
          break;
        case Granularity::kColumn:
          u = new_unit(t.name, t.layer, {w.size(1)});
          u->weight_importance = [weight, pow_of] { return pow_of(weight().detach()).sum(0); };
          site_of(*t.site, t.name).add_factor(spec_.name, [u, value_of] { return value_of(u).unsqueeze(0); });
          break;
        case Granularity::kBlock: {
          const int64_t out = w.size(0), in = w.size(1);
          u = new_unit(t.name, t.layer, {(out + kBlockRows - 1) / kBlockRows, (in + kBlockCols - 1) / kBlockCols});
          u->weight_importance = [weight, pow_of] { return block_sums(pow_of(weight().detach())); };
          site_of(*t.site, t.name).add_factor(spec_.name, [u, value_of, out, in] { return expand_blocks(value_of(u), out, in); });
          break;
        }
        default:
          u = new_unit(t.name, t.layer, {w.size(0), w.size(1)});
          u->weight_importance = [weight, pow_of] { return pow_of(weight().detach()); };
          site_of(*t.site, t.name).add_factor(spec_.name, [u, value_of] { return value_of(u); });
      }
    }
  }
  if (structured && spec_.scope == Scope::kLayer && !spec_.allow_empty_layers)
    for (const auto& u : units_)
      if (std::llround(spec_.sparsity * static_cast<double>(u->mask.numel())) >= u->mask.numel())
        fail_invalid(who, ": sparsity ", spec_.sparsity, " would prune all ", u->mask.numel(), " ",
                     spec_.granularity == Granularity::kHead ? "heads" : spec_.granularity == Granularity::kNeuron ? "neurons" : "dimensions", " of ", u->name,
                     "; lower it, or set allow_empty_layers: true to drop that block");
  score_lr_scale_ = spec_.score_lr / base_lr;
}

void Pruner::update_masks(double target) {
  torch::NoGradGuard no_grad;
  if (spec_.metric == Metric::kMovement && spec_.soft) {
    for (auto& u : units_) u->mask.copy_(u->scores.gt(spec_.threshold).to(torch::kFloat));
    return;
  }
  std::vector<torch::Tensor> importance;
  for (auto& u : units_) {
    switch (spec_.metric) {
      case Metric::kMagnitude:
      case Metric::kL2: importance.push_back(u->weight_importance()); break;
      case Metric::kTaylor: importance.push_back(u->importance.clone()); break;
      case Metric::kMovement: importance.push_back(u->scores.detach().clone()); break;
    }
  }
  if (spec_.granularity == Granularity::kNM) {
    for (size_t i = 0; i < units_.size(); ++i) {
      auto& m = units_[i]->mask;
      if (target <= 0) {
        m.fill_(1.0);
        continue;
      }
      m.copy_(nm_keep_mask(importance[i], spec_.n, spec_.m));
    }
    return;
  }
  if (spec_.scope == Scope::kGlobal) {
    std::vector<torch::Tensor*> masks;
    int64_t total = 0;
    for (auto& u : units_) masks.push_back(&u->mask), total += u->mask.numel();
    prune_lowest(masks, importance, std::llround(target * static_cast<double>(total)));
  } else {
    for (size_t i = 0; i < units_.size(); ++i)
      prune_lowest({&units_[i]->mask}, {importance[i]}, std::llround(target * static_cast<double>(units_[i]->mask.numel())));
  }
  if (is_group(spec_.granularity) && !spec_.allow_empty_layers)
    for (size_t i = 0; i < units_.size(); ++i)
      if (units_[i]->mask.sum().item<double>() == 0) units_[i]->mask[importance[i].argmax()] = 1.0;
}

void Pruner::before_step(int64_t step) {
  double target = spec_.schedule.sparsity_at(step, spec_.sparsity);
  bool movement = spec_.metric == Metric::kMovement;
  // Movement masks follow the learned scores every step; the others change on schedule.
  if (spec_.schedule.updates_at(step) || (movement && (target > 0 || spec_.soft)) || target != current_target_) {
    if (target > 0 || spec_.soft) update_masks(target);
    current_target_ = target;
  }
}

void Pruner::after_backward() {
  if (spec_.metric != Metric::kTaylor) return;
  torch::NoGradGuard no_grad;
  for (auto& u : units_) {
    if (!u->gate.grad().defined()) continue;
    // |dL/dgate| per batch: first-order Taylor estimate of the loss change when the unit goes.
    u->importance += u->gate.grad().abs();
    u->gate.mutable_grad().zero_();
  }
}

torch::Tensor Pruner::regularizer() const {
  if (spec_.metric != Metric::kMovement || spec_.regularization <= 0) return {};
  torch::Tensor r;
  for (const auto& u : units_) {
    auto t = torch::sigmoid(u->scores).mean();
    r = r.defined() ? r + t : t;
  }
  return r * (spec_.regularization / static_cast<double>(units_.size()));
}

std::vector<torch::Tensor> Pruner::trainable() const {
  std::vector<torch::Tensor> out;
  if (spec_.metric == Metric::kMovement)
    for (const auto& u : units_) out.push_back(u->scores);
  return out;
}

std::vector<torch::Tensor> Pruner::gates() const {
  std::vector<torch::Tensor> out;
  for (const auto& u : units_) if (spec_.metric == Metric::kTaylor) out.push_back(u->gate);
  return out;
}

std::vector<Pruner::UnitReport> Pruner::report() const {
  std::vector<UnitReport> out;
  for (const auto& u : units_)
    out.push_back({u->name, u->layer, static_cast<int64_t>(u->mask.sum().item<double>()), u->mask.numel()});
  return out;
}

double Pruner::sparsity() const {
  int64_t kept = 0, total = 0;
  for (const auto& r : report()) kept += r.kept, total += r.total;
  return total == 0 ? 0.0 : 1.0 - static_cast<double>(kept) / static_cast<double>(total);
}

void Pruner::save_state(const std::string& prefix, train::StateDict& state) const {
  state.put_value(prefix + "current_target", current_target_);
  for (size_t i = 0; i < units_.size(); ++i) {
    const std::string unit = prefix + "unit." + std::to_string(i) + ".";
    state.put(unit + "mask", units_[i]->mask);
    state.put(unit + "importance", units_[i]->importance);
    state.put(unit + "scores", units_[i]->scores);
  }
}

void Pruner::load_state(const std::string& prefix, const train::StateDict& state) {
  current_target_ = state.value(prefix + "current_target").get<double>();
  for (size_t i = 0; i < units_.size(); ++i) {
    const std::string unit = prefix + "unit." + std::to_string(i) + ".";
    // In place: hidden-dimension norms share the mask's storage, the optimizer holds the scores.
    state.copy_into(unit + "mask", units_[i]->mask);
    state.copy_into(unit + "importance", units_[i]->importance);
    if (units_[i]->scores.defined()) state.copy_into(unit + "scores", units_[i]->scores);
  }
}

}  // namespace sqz::compress
