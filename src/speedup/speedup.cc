#include "speedup/speedup.h"

#include <set>

#include "compress/selector.h"
#include "compress/site.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "models/registry.h"

namespace sqz::speedup {

namespace {

// Rows (dim 0 of the logical [out, in] weight) or columns fully zero in `m`, per group of `width`.
std::vector<bool> groups_all_zero(const torch::Tensor& m, int64_t dim, int64_t groups) {
  auto per = m.ne(0).any(1 - dim).reshape({groups, -1}).any(1);  // true = something kept
  std::vector<bool> out(groups);
  for (int64_t g = 0; g < groups; ++g) out[g] = !per[g].item<bool>();
  return out;
}

torch::Tensor mask_of(const nn::Linear& l) {
  auto w = l->logical_weight().detach();
  auto* site = dynamic_cast<compress::Site*>(l->site.get());
  return site ? site->mask(w) : torch::ones_like(w);
}

std::vector<int64_t> kept(const std::vector<bool>& removed) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < removed.size(); ++i)
    if (!removed[i]) out.push_back(static_cast<int64_t>(i));
  return out;
}

void require_structure(models::TransformerModel& model, const models::ModelStructure& s) {
  if (s.attention.empty())
    fail_unimplemented("speedup: '", model.info().model_type, "' has no dependency groups in sqz yet");
}

std::vector<int64_t> all_hidden(const models::ModelStructure& s) {
  std::vector<int64_t> all;
  if (!s.hidden.norms.empty() && s.hidden.norms.front()->weight.defined())
    for (int64_t d = 0; d < s.hidden.norms.front()->weight.size(0); ++d) all.push_back(d);
  return all;
}

// Index list -> tensor of rows [g*width, (g+1)*width) for each kept group g.
torch::Tensor expand_groups(const std::vector<int64_t>& groups, int64_t width) {
  std::vector<int64_t> idx;
  for (int64_t g : groups)
    for (int64_t i = 0; i < width; ++i) idx.push_back(g * width + i);
  return torch::tensor(idx, torch::kLong);
}

}  // namespace

GroupKeep groups_from_masks(models::TransformerModel& model) {
  torch::NoGradGuard no_grad;
  auto s = model.structure();
  require_structure(model, s);
  GroupKeep keep;
  for (const auto& b : s.attention) {
    // Grouped-query attention: each group is a K/V head with its query heads (AttentionBlock::groups).
    const int64_t groups = b.groups();
    std::vector<bool> removed(groups, false);
    if (b.num_heads > 0) {
      removed = groups_all_zero(mask_of(b.head_cols), 1, groups);
      // A head emptied on its input side only (every query/key/value row) still adds O * value
      // bias: a group pruned by halves, which cannot be cut out exactly.
      std::vector<bool> rows_gone(groups, true);
      for (size_t i = 0; i < b.head_rows.size(); ++i) {
        auto gone = groups_all_zero(mask_of(b.head_rows[i]).index_select(0, b.head_row_indices(i)), 0, groups);
        for (int64_t h = 0; h < groups; ++h) rows_gone[h] = rows_gone[h] && gone[h];
      }
      for (int64_t h = 0; h < groups; ++h)
        if (rows_gone[h] && !removed[h])
          fail_invalid("speedup: layer ", b.layer, b.grouped_query() ? " key/value group " : " head ", h,
                       ": its query, key and value rows are fully masked but the output projection keeps its ", b.group_cols(),
                       " columns; prune heads as whole groups (granularity: head)");
    }
    keep.heads.push_back(kept(removed));
  }
  // Neurons go with their FFN-output column; a masked input row alone stays (its zeros are baked).
  for (const auto& f : s.ffn) {
    int64_t width = f.neuron_cols->in_features();
    keep.neurons.push_back(width == 0 ? std::vector<int64_t>{} : kept(groups_all_zero(mask_of(f.neuron_cols), 1, width)));
  }
  keep.hidden = all_hidden(s);
  if (!s.hidden.norms.empty() && s.hidden.norms.front()->keep.defined()) {
    auto idx = torch::nonzero(s.hidden.norms.front()->keep).flatten().contiguous();
    keep.hidden.assign(idx.data_ptr<int64_t>(), idx.data_ptr<int64_t>() + idx.numel());
  }
  return keep;
}

GroupKeep groups_from_zeros(models::TransformerModel& model) {
  torch::NoGradGuard no_grad;
  auto s = model.structure();
  require_structure(model, s);
  GroupKeep keep;
  for (const auto& b : s.attention)
    keep.heads.push_back(b.num_heads == 0 ? std::vector<int64_t>{} : kept(groups_all_zero(b.head_cols->logical_weight(), 1, b.groups())));
  for (const auto& f : s.ffn) {
    int64_t width = f.neuron_cols->in_features();
    keep.neurons.push_back(width == 0 ? std::vector<int64_t>{} : kept(groups_all_zero(f.neuron_cols->logical_weight(), 1, width)));
  }
  keep.hidden = all_hidden(s);
  return keep;
}

void bake_masks(models::TransformerModel& model) {
  torch::NoGradGuard no_grad;
  for (auto& t : compress::list_layers(model)) {
    auto* site = dynamic_cast<compress::Site*>(t.site->get());
    if (!site) continue;
    auto w = t.weight();
    w.mul_(site->mask(w));  // the logical view shares storage with the parameter
    if (auto out = site->output_mask(); out.defined() && !t.linear.is_empty() && t.linear->bias.defined()) t.linear->bias.mul_(out);
    t.site->reset();
  }
  for (const auto& m : model.modules(/*include_self=*/false))
    if (auto* n = dynamic_cast<nn::LayerNormImpl*>(m.get()); n && n->keep.defined()) {
      if (n->weight.defined()) n->weight.mul_(n->keep);
      if (n->bias.defined()) n->bias.mul_(n->keep);
    }
}

io::json SpeedupReport::to_json() const {
  io::json layers_j = io::json::array();
  for (const auto& l : layers) {
    io::json row = {{"name", l.name},
                    {"heads_before", l.heads_before},
                    {"heads_after", l.heads_after},
                    {"neurons_before", l.neurons_before},
                    {"neurons_after", l.neurons_after}};
    if (l.cross_heads_before > 0) {
      row["cross_heads_before"] = l.cross_heads_before;
      row["cross_heads_after"] = l.cross_heads_after;
    }
    layers_j.push_back(row);
  }
  return {{"layers", layers_j},         {"params_before", params_before}, {"params_after", params_after},
          {"hidden_before", hidden_before}, {"hidden_after", hidden_after},   {"hf_loadable", hf_loadable}};
}

bool can_shrink(models::TransformerModel& model) { return !model.structure().shape_keys.ffn.empty(); }

namespace {

std::string stack_label(const std::string& stack, int64_t index) { return stack.empty() ? std::to_string(index) : stack + " " + std::to_string(index); }

// HF's pruned_heads (and sqz's per-stack form) counts heads in the original numbering: the heads
// already listed in `pruned`, plus those of the `kept` current heads' complement.
std::vector<int64_t> heads_gone(const io::json& pruned, const std::string& layer_key, int64_t current_heads, const std::vector<int64_t>& kept) {
  std::set<int64_t> gone;
  if (pruned.contains(layer_key))
    for (const auto& h : pruned[layer_key]) gone.insert(h.get<int64_t>());
  std::vector<int64_t> remaining;
  for (int64_t h = 0; h < current_heads + static_cast<int64_t>(gone.size()); ++h)
    if (!gone.count(h)) remaining.push_back(h);
  std::set<int64_t> kept_now(kept.begin(), kept.end());
  for (size_t i = 0; i < remaining.size(); ++i)
    if (!kept_now.count(static_cast<int64_t>(i))) gone.insert(remaining[i]);
  return {gone.begin(), gone.end()};
}

}  // namespace

SpeedupReport shrink_and_save(models::TransformerModel& model, const io::json& config, const GroupKeep& keep, const fs::path& dir) {
  torch::NoGradGuard no_grad;
  const std::string type = model.info().model_type;
  auto s = model.structure();
  const models::ShapeKeys& keys = s.shape_keys;
  if (keys.ffn.empty()) fail_unimplemented("speedup: shrinking '", type, "' models is not implemented (the family names no shape keys)");
  SpeedupReport report;
  report.params_before = models::count_parameters(model);
  // Every parameter by HF name; the pruned layers' entries are replaced below.
  std::map<std::string, torch::Tensor> tensors;
  for (auto& item : model.named_parameters()) tensors[models::hf_name(model.info(), item.key())] = item.value().detach();
  std::map<const void*, std::string> names;
  for (const auto& t : compress::list_layers(model))
    if (!t.linear.is_empty()) names[t.linear.get()] = t.name;
  auto select = [&](const nn::Linear& l, bool rows, const torch::Tensor& idx) {
    const std::string& n = names.at(l.get());
    bool out_in = l->options().layout == nn::WeightLayout::kOutIn;
    int64_t dim = rows == out_in ? 0 : 1;
    tensors[n + ".weight"] = tensors.at(n + ".weight").index_select(dim, idx).contiguous();
    if (rows && l->bias.defined()) tensors[n + ".bias"] = tensors.at(n + ".bias").index_select(0, idx).contiguous();
  };
  io::json c = config;
  // One report row per transformer layer (its FFN block), with its self- and cross-attention.
  std::map<std::pair<std::string, int64_t>, size_t> row_of;
  for (size_t l = 0; l < s.ffn.size(); ++l) {
    const auto& f = s.ffn[l];
    const auto& kn = keep.neurons.at(l);
    auto nidx = torch::tensor(kn, torch::kLong);
    for (const auto& r : f.neuron_rows) select(r, true, nidx);
    select(f.neuron_cols, false, nidx);
    row_of[{f.stack, f.index_in_stack()}] = report.layers.size();
    report.layers.push_back({stack_label(f.stack, f.index_in_stack()), 0, 0, f.neuron_cols->in_features(), static_cast<int64_t>(kn.size())});
  }
  std::map<std::string, io::json> pruned_by_stack;  // config key -> {layer: [original heads]}
  bool heads_pruned = false;
  for (size_t a = 0; a < s.attention.size(); ++a) {
    const auto& b = s.attention[a];
    const auto& kh = keep.heads.at(a);
    // Rows per Linear: a fused QKV Linear keeps its heads' rows in each of its segments.
    std::vector<std::pair<nn::Linear, std::vector<torch::Tensor>>> row_sets;
    for (size_t i = 0; i < b.head_rows.size(); ++i) {
      auto idx = b.head_row_indices(i).view({b.groups(), b.group_rows(i)}).index_select(0, torch::tensor(kh, torch::kLong)).reshape({-1});
      auto it = std::find_if(row_sets.begin(), row_sets.end(), [&](const auto& p) { return p.first.get() == b.head_rows[i].get(); });
      if (it == row_sets.end()) row_sets.push_back({b.head_rows[i], {idx}});
      else it->second.push_back(idx);
    }
    // Ascending rows keep the layout: [q|k|v, heads, d] (GPT-2) and [heads, q|k|v, d] (GPT-NeoX) alike.
    for (const auto& [lin, parts] : row_sets) select(lin, true, std::get<0>(torch::sort(torch::cat(parts))));
    select(b.head_cols, false, expand_groups(kh, b.group_cols()));
    // The config records query heads; a kept group keeps all of its own.
    std::vector<int64_t> kept_queries;
    for (int64_t g : kh)
      for (int64_t j = 0; j < b.query_heads_per_group(); ++j) kept_queries.push_back(g * b.query_heads_per_group() + j);
    const std::string key = models::stack_config_key(models::ShapeKey::kPrunedHeads, b.stack);
    if (!pruned_by_stack.count(key))
      pruned_by_stack[key] = c.contains(key) && c[key].is_object() ? c[key] : io::json::object();
    io::json& pruned = pruned_by_stack[key];
    const std::string layer_key = std::to_string(b.index_in_stack());
    auto gone = heads_gone(pruned, layer_key, b.num_heads, kept_queries);
    if (!gone.empty()) pruned[layer_key] = gone;
    heads_pruned = heads_pruned || !pruned.empty();
    const bool cross = b.stack == "cross";
    auto& row = report.layers.at(row_of.at({cross ? std::string("decoder") : b.stack, b.index_in_stack()}));
    (cross ? row.cross_heads_before : row.heads_before) = b.num_heads;
    (cross ? row.cross_heads_after : row.heads_after) = static_cast<int64_t>(kept_queries.size());
  }
  for (const auto& [key, pruned] : pruned_by_stack)
    if (!pruned.empty()) c[key] = pruned;
  // HF reads pruned_heads for some families only, and never sqz's per-stack keys.
  if (heads_pruned && (!keys.hf_pruned_heads || pruned_by_stack.size() > 1 || !pruned_by_stack.count("pruned_heads")))
    report.hf_loadable = false;
  report.hidden_before = static_cast<int64_t>(all_hidden(s).size());
  report.hidden_after = static_cast<int64_t>(keep.hidden.size());
  if (report.hidden_after < report.hidden_before) {
    // The residual stream narrows: every embedding, norm, reader and writer of it.
    std::map<const void*, std::string> module_names;
    for (const auto& item : model.named_modules("", false)) module_names[item.value().get()] = models::hf_name(model.info(), item.key());
    auto idx = torch::tensor(keep.hidden, torch::kLong);
    for (const auto& e : s.hidden.embeddings) {
      auto n = module_names.at(e.get()) + ".weight";
      tensors[n] = tensors.at(n).index_select(1, idx).contiguous();
    }
    for (const auto& nrm : s.hidden.norms)
      for (const char* p : {".weight", ".bias"})
        if (auto n = module_names.at(nrm.get()) + p; tensors.count(n)) tensors[n] = tensors.at(n).index_select(0, idx).contiguous();
    for (const auto& r : s.hidden.readers) select(r, false, idx);
    for (const auto& w : s.hidden.writers) select(w, true, idx);
    c[keys.hidden] = report.hidden_after;
    // OPT without a projection keeps word_embed_proj_dim = hidden_size; a stale value would add one.
    if (type == "opt" && c.value("word_embed_proj_dim", report.hidden_before) == report.hidden_before)
      c["word_embed_proj_dim"] = report.hidden_after;
    // HF derives the head size from hidden_size / num_attention_heads; sqz keeps it explicit.
    for (const auto& b : s.attention)
      if (b.head_dim != s.attention.front().head_dim)
        fail_unimplemented("speedup: cutting hidden dimensions of a model whose stacks have different head sizes (", s.attention.front().head_dim,
                           " and ", b.head_dim, ")");
    c["sqz_attention_head_size"] = s.attention.front().head_dim;
    c.update(keys.pin_on_hidden_cut);
    report.hf_loadable = false;
  }
  // FFN widths: the family's key when every layer that reads it has one width, else per-layer lists.
  std::map<std::string, std::set<int64_t>> widths_by_key;
  std::map<std::string, std::vector<int64_t>> widths_by_stack;
  for (size_t l = 0; l < s.ffn.size(); ++l) {
    widths_by_key[keys.ffn.at(s.ffn[l].stack)].insert(static_cast<int64_t>(keep.neurons.at(l).size()));
    widths_by_stack[s.ffn[l].stack].push_back(static_cast<int64_t>(keep.neurons.at(l).size()));
  }
  for (const auto& [stack, widths] : widths_by_stack) {
    const std::string& width_key = keys.ffn.at(stack);
    const std::string sizes_key = models::stack_config_key(models::ShapeKey::kIntermediateSizes, stack);
    if (widths_by_key.at(width_key).size() == 1) {
      c[width_key] = widths.front();
      c.erase(sizes_key);
    } else {
      c[sizes_key] = widths;
      report.hf_loadable = false;
    }
  }
  std::vector<std::pair<std::string, torch::Tensor>> list(tensors.begin(), tensors.end());
  for (const auto& [n, t] : list) report.params_after += t.numel();
  io::write_safetensors(dir / "model.safetensors", list);
  c["architectures"] = {model.info().head_class};
  io::write_json_file_atomic(dir / "config.json", c);
  return report;
}

}  // namespace sqz::speedup
