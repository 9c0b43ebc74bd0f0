#include "compress/quant/export.h"

#include <regex>
#include <set>

#include "core/error.h"
#include "core/log.h"
#include "io/compressed_tensors.h"
#include "io/safetensors.h"

namespace sqz::quant {

namespace {

io::json weight_args(const WeightQuant& w) {
  io::json a = {{"num_bits", w.spec.bits},  {"type", "int"},       {"symmetric", w.spec.symmetric},
                {"strategy", granularity_name(w.spec.granularity)}, {"dynamic", false}, {"group_size", nullptr}};
  if (w.spec.granularity == Granularity::kGroup) a["group_size"] = w.spec.group_size;
  return a;
}

io::json activation_args(const ActivationQuant& q) {
  return {{"num_bits", q.spec.bits}, {"type", "int"}, {"symmetric", q.spec.symmetric},
          {"strategy", granularity_name(q.spec.granularity)}, {"dynamic", q.method == ActivationMethod::kDynamic}};
}

QuantSpec spec_from_args(const io::json& a, const std::string& where) {
  QuantSpec s;
  if (!a.contains("num_bits") || !a.contains("strategy")) fail_data(where, ": expected num_bits and strategy");
  if (a.value("type", "int") != "int") fail_unimplemented(where, ": type '", a["type"].get<std::string>(), "' (sqz reads int)");
  s.bits = a["num_bits"].get<int>();
  s.symmetric = a.value("symmetric", true);
  s.granularity = parse_granularity(a["strategy"].get<std::string>(), where + " strategy");
  if (s.granularity == Granularity::kGroup) s.group_size = a["group_size"].get<int64_t>();
  if (s.bits < 2 || s.bits > 8) fail_data(where, ": num_bits ", s.bits, " is outside 2..8");
  return s;
}

// Asymmetric codes live in [0, 2^b - 1] in sqz and are stored signed, as compressed-tensors does.
int64_t signed_offset(const QuantSpec& s) { return s.symmetric ? 0 : (int64_t{1} << (s.bits - 1)); }

// Scales as compressed-tensors shapes them: tensor [1], channel [out, 1], group [out, in/g].
torch::Tensor stored_qparam(const torch::Tensor& t, const QuantSpec& s) {
  if (s.granularity == Granularity::kTensor) return t.reshape({1});
  if (s.granularity == Granularity::kGroup) return t.squeeze(-1);
  return t.reshape({t.size(0), 1});
}
torch::Tensor group_shaped(const torch::Tensor& t, const QuantSpec& s) {
  if (s.granularity == Granularity::kTensor) return t.reshape({1, 1});
  if (s.granularity == Granularity::kGroup) return t.unsqueeze(-1);
  return t.reshape({t.size(0), 1});
}

}  // namespace

void export_compressed_tensors(models::TransformerModel& model, const io::json& config, const std::vector<QuantizedLayer>& layers,
                               const SparsityExport& sparsity, const fs::path& dir) {
  torch::NoGradGuard no_grad;
  std::map<std::string, const QuantizedLayer*> by_name;
  for (const auto& l : layers) by_name[l.name] = &l;
  std::map<std::string, compress::LayerTarget> targets;
  for (auto& t : compress::list_layers(model)) targets.emplace(t.name, t);

  if (sparsity.n > 0)
    for (const auto& name : sparsity.targets) {
      // A quantized weight is zero where its code equals the zero point (asymmetric codes are not 0).
      auto w = by_name.count(name) ? dequantize(by_name[name]->codes, by_name[name]->weight_qparams, by_name[name]->weight.spec)
                                   : targets.at(name).weight();
      if (int64_t bad = io::count_nm_violations(w, sparsity.n, sparsity.m); bad > 0)
        fail_invalid(name, ".weight: ", bad, " groups of ", sparsity.m, " hold more than ", sparsity.n,
                     " nonzeros; refusing to export it as ", sparsity.n, ":", sparsity.m, " sparse");
    }

  bool all_int8 = true;
  int ragged = 0;
  for (const auto& l : layers) {
    all_int8 = all_int8 && l.weight.spec.bits == 8;
    ragged += l.codes.defined() && l.weight.spec.granularity == Granularity::kGroup && l.codes.size(1) % l.weight.spec.group_size != 0;
  }
  if (ragged > 0)
    log_warning(ragged, " quantized layers end in a shorter weight group (the group size does not divide their input width): sqz reads "
                "them back, but compressed-tensors 0.4 refuses such groups");
  std::map<const void*, std::string> storage_owner;
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  const bool bitmask = sparsity.format == io::kSparse24Bitmask;
  if (bitmask && (sparsity.n != 2 || sparsity.m != 4))
    fail_invalid("sparsity format ", io::kSparse24Bitmask, " stores 2:4 weights; this model is pruned ", sparsity.n, ":", sparsity.m);
  if (!bitmask && sparsity.format != "dense")
    fail_invalid("sparsity format '", sparsity.format, "' is not one of: dense, ", io::kSparse24Bitmask);
  if (bitmask && !all_int8) fail_invalid("sparsity format ", io::kSparse24Bitmask, " stores int8 or float values; packed (2-7 bit) weights need format dense");
  const std::set<std::string> sparse_targets(sparsity.targets.begin(), sparsity.targets.end());
  // Stores a weight ([out, in], the Linear layout) whole, or as its 2:4 bitmask tensors.
  auto store_weight = [&](const std::string& module, const torch::Tensor& w) {
    if (!bitmask || !sparse_targets.count(module)) {
      tensors.emplace_back(module + ".weight", w);
      return;
    }
    auto parts = io::compress_24_bitmask(w);
    tensors.emplace_back(module + ".compressed", parts[0]);
    tensors.emplace_back(module + ".bitmask", parts[1]);
    tensors.emplace_back(module + ".shape", parts[2]);
  };
  for (auto& item : model.named_parameters()) {
    std::string name = models::hf_name(model.info(), item.key());
    auto [it, fresh] = storage_owner.emplace(item.value().data_ptr(), name);
    const std::string module = name.size() > 7 && name.substr(name.size() - 7) == ".weight" ? name.substr(0, name.size() - 7) : "";
    auto q = by_name.find(module);
    if (q == by_name.end() || !q->second->codes.defined()) {
      if (bitmask && sparse_targets.count(module)) store_weight(module, targets.at(module).weight().contiguous());
      else tensors.emplace_back(name, item.value());
      continue;
    }
    if (!fresh) fail_invalid(name, ": tied to ", it->second, "; exclude it from quantization (its tensor is stored once)");
    const auto& l = *q->second;
    const auto& s = l.weight.spec;
    const int64_t off = signed_offset(s);
    auto codes = l.codes - off;
    if (bitmask && sparse_targets.count(module) && stored_qparam(l.weight_qparams.zero_point, s).ne(off).any().item<bool>())
      fail_invalid(name, ": asymmetric weights store a pruned zero as their zero point, not 0; ", io::kSparse24Bitmask,
                   " needs symmetric weights (or format dense)");
    if (all_int8) {
      store_weight(module, codes.to(torch::kInt8));
    } else {
      tensors.emplace_back(module + ".weight_packed", io::pack_codes(codes, s.bits));
      tensors.emplace_back(module + ".weight_shape", torch::tensor({codes.size(0), codes.size(1)}, torch::kInt32));
    }
    tensors.emplace_back(module + ".weight_scale", stored_qparam(l.weight_qparams.scale, s).to(torch::kFloat32));
    tensors.emplace_back(module + ".weight_zero_point", (stored_qparam(l.weight_qparams.zero_point, s) - off).to(torch::kInt8));
  }
  for (const auto& l : layers)
    if (l.input_qparams) {
      const int64_t off = signed_offset(l.activation->spec);
      tensors.emplace_back(l.name + ".input_scale", l.input_qparams->scale.reshape({1}).to(torch::kFloat32));
      tensors.emplace_back(l.name + ".input_zero_point", (l.input_qparams->zero_point.reshape({1}) - off).to(torch::kInt8));
    }
  io::json smoothed = io::json::array();
  for (const auto& l : layers)
    if (l.input_smoothing.defined()) {
      tensors.emplace_back(l.name + ".input_smoothing", l.input_smoothing.reshape({-1}).to(torch::kFloat32).contiguous());
      smoothed.push_back(l.name);
    }
  for (const auto& [name, _] : by_name)
    if (!targets.count(name)) fail_invalid(name, ": quantized layer not found in the model being exported");

  // One config group per distinct scheme, each listing its modules by name.
  io::json groups = io::json::object();
  std::map<std::string, std::string> scheme_group;
  for (const auto& l : layers) {
    io::json g = {{"weights", weight_args(l.weight)}, {"input_activations", l.activation ? activation_args(*l.activation) : io::json()},
                  {"output_activations", nullptr}};
    std::string key = g.dump();
    if (!scheme_group.count(key)) {
      std::string gname = "group_" + std::to_string(scheme_group.size());
      scheme_group[key] = gname;
      g["targets"] = io::json::array();
      groups[gname] = g;
    }
    groups[scheme_group[key]]["targets"].push_back(l.name);
  }
  io::json c = config;
  io::json ignore = io::json::array();
  for (const auto& [name, t] : targets)
    if (t.type == "linear" && !by_name.count(name)) ignore.push_back(name);
  std::string format = all_int8 ? "int-quantized" : "pack-quantized";
  // Smoothing factors of their own are sqz's extension: a format compressed-tensors does not know,
  // so its readers refuse the export instead of computing W diag(s) x.
  if (!smoothed.empty()) format = io::kSmoothedPrefix + format;
  c["quantization_config"] = {{"quant_method", io::kQuantMethod}, {"format", format},
                              {"quantization_status", "compressed"}, {"config_groups", groups}, {"ignore", ignore}};
  if (!smoothed.empty()) c["quantization_config"]["input_smoothing"] = smoothed;
  if (sparsity.declared()) {
    int64_t zeros = 0, total = 0;
    for (const auto& name : sparsity.targets) {
      auto w = targets.at(name).weight();
      zeros += w.eq(0).sum().item<int64_t>();
      total += w.numel();
    }
    c["quantization_config"]["sparsity_config"] = {
        {"format", sparsity.format}, {"sparsity_structure", sparsity.structure()},
        {"targets", sparsity.targets}, {"ignore", io::json::array()},
        {"global_sparsity", total ? static_cast<double>(zeros) / static_cast<double>(total) : 0.0}};
  }
  c["architectures"] = {model.info().head_class};
  c["model_type"] = model.info().model_type;
  fs::create_directories(dir);
  io::write_safetensors(dir / "model.safetensors", tensors);
  io::write_json_file_atomic(dir / "config.json", c);
}

namespace {

// compressed-tensors' target rules: a module name, "re:<regex>" over module names, or a class
// name ("Linear"), minus `ignore` (names or "re:"); only Linear layers are quantized.
std::vector<std::string> resolve_targets(const io::json& wanted, const io::json& ignore,
                                         const std::map<std::string, compress::LayerTarget>& layers, const std::string& where) {
  auto matches = [&](const std::string& pattern, const std::string& name) {
    if (pattern.rfind("re:", 0) != 0) return pattern == name;
    try {
      return std::regex_match(name, std::regex(pattern.substr(3)));
    } catch (const std::regex_error& e) {
      fail_data(where, ": '", pattern, "' is not a valid regular expression (", e.what(), ")");
    }
  };
  std::vector<std::string> out;
  for (const auto& t : wanted) {
    if (!t.is_string()) fail_data(where, ": targets must be strings, found ", t.dump());
    const std::string target = t.get<std::string>();
    const bool by_class = target == "Linear", by_regex = target.rfind("re:", 0) == 0;
    bool any = false;
    for (const auto& [name, layer] : layers) {
      if (layer.type != "linear" || !(by_class || matches(target, name))) continue;
      bool ignored = false;
      for (const auto& i : ignore) ignored = ignored || (i.is_string() && matches(i.get<std::string>(), name));
      if (!ignored) out.push_back(name);
      any = true;
    }
    if (!any && !by_regex) fail_data(where, ": target '", target, "' is neither a linear layer nor 'Linear'");
  }
  return out;
}

}  // namespace

models::LoadedModel load_any_model(const fs::path& dir, const models::LoadOptions& options_in) {
  auto config = io::JsonFields::from_file(dir / "config.json");
  if (!io::is_quantized_export(config.value())) return models::load_model(dir, options_in);
  const auto& qc = *io::compressed_tensors_config(config.value());
  const std::string where = (dir / "config.json").string() +
                            (config.value().contains("quantization_config") ? " quantization_config" : " compression_config");
  if (!qc.contains("config_groups") || !qc["config_groups"].is_object()) fail_data(where, ": expected an object 'config_groups'");
  // Layouts (GPT-2's Conv1D stores [in, out]) come from the architecture itself.
  auto probe = models::build_model(config, options_in.head);
  std::map<std::string, compress::LayerTarget> targets;
  for (auto& t : compress::list_layers(*probe)) targets.emplace(t.name, t);
  io::Checkpoint ckpt(dir);
  models::LoadOptions options = options_in;
  std::vector<std::unique_ptr<Quantizer>> activations;
  std::vector<std::map<std::string, QParams>> inputs;
  auto read = [&](const std::string& name) {
    if (!ckpt.contains(name)) fail_data((dir / "model.safetensors").string(), ": tensor '", name, "' is missing");
    options.consumed.insert(name);
    return ckpt.tensor(name);
  };
  // 2:4 weights stored as sparse-24-bitmask come back dense ([out, in], like every stored weight).
  std::set<std::string> bitmask_targets;
  if (qc.contains("sparsity_config") && qc["sparsity_config"].is_object()) {
    const auto& sc = qc["sparsity_config"];
    const std::string format = sc.value("format", "dense");
    if (format == io::kSparse24Bitmask) {
      if (!sc.contains("targets") || !sc["targets"].is_array()) fail_data(where, ".sparsity_config: expected a 'targets' list");
      for (const auto& t : sc["targets"]) bitmask_targets.insert(t.get<std::string>());
    } else if (format != "dense") {
      fail_unimplemented(where, ".sparsity_config.format '", format, "' (sqz reads dense and ", io::kSparse24Bitmask, ")");
    }
  }
  // SmoothQuant factors kept beside their layers: the codes quantize W diag(s).
  std::map<std::string, torch::Tensor> smoothing;
  if (qc.contains("input_smoothing")) {
    if (!qc["input_smoothing"].is_array()) fail_data(where, ".input_smoothing: expected a list of module names");
    for (const auto& t : qc["input_smoothing"]) {
      if (!t.is_string() || !targets.count(t.get<std::string>()) || targets.at(t.get<std::string>()).type != "linear")
        fail_data(where, ".input_smoothing: ", t.dump(), " is not a linear layer of ", probe->info().head_class);
      const std::string name = t.get<std::string>();
      auto s = read(name + ".input_smoothing").to(torch::kFloat32);
      const int64_t in = targets.at(name).weight().size(1);
      if (s.dim() != 1 || s.size(0) != in || !(s > 0).all().item<bool>() || !torch::isfinite(s).all().item<bool>())
        fail_data((dir / "model.safetensors").string(), ": '", name, ".input_smoothing' must hold ", in, " positive finite factors, found shape ",
                  s.sizes());
      smoothing[name] = s;
    }
  }
  std::set<std::string> smoothing_read;  // smoothed layers whose input a config group quantizes
  auto stored_weight = [&](const std::string& name) {
    if (!bitmask_targets.count(name)) return read(name + ".weight");
    return io::decompress_24_bitmask(read(name + ".compressed"), read(name + ".bitmask"), read(name + ".shape"),
                                 (dir / "model.safetensors").string() + ": " + name);
  };
  for (const auto& [gname, g] : qc["config_groups"].items()) {
    const std::string gwhere = where + ".config_groups." + gname;
    if (!g.contains("targets") || !g["targets"].is_array()) fail_data(gwhere, ": expected a 'targets' list of module names");
    std::optional<QuantSpec> ws;
    if (g.contains("weights") && !g["weights"].is_null()) ws = spec_from_args(g["weights"], gwhere + ".weights");
    std::optional<ActivationQuant> aq;
    if (g.contains("input_activations") && !g["input_activations"].is_null()) {
      ActivationQuant q;
      q.spec = spec_from_args(g["input_activations"], gwhere + ".input_activations");
      q.method = g["input_activations"].value("dynamic", false) ? ActivationMethod::kDynamic : ActivationMethod::kStatic;
      aq = q;
    }
    QuantizerSpec qs;
    qs.name = gname;
    qs.activation = aq;
    qs.source = gwhere;
    std::map<std::string, QParams> group_inputs;
    for (const auto& name : resolve_targets(g["targets"], qc.value("ignore", io::json::array()), targets, gwhere)) {
      auto lt = targets.find(name);
      qs.targets.names.push_back(name);
      if (ws) {
        torch::Tensor codes = ckpt.contains(name + ".weight_packed")
                                  ? io::unpack_codes(read(name + ".weight_packed"), ws->bits, read(name + ".weight_shape")[1].item<int64_t>())
                                  : stored_weight(name).to(torch::kInt64);
        auto logical = lt->second.weight();
        if (codes.sizes() != logical.sizes())
          fail_data((dir / "model.safetensors").string(), ": '", name, "' codes have shape ", codes.sizes(), ", config implies ",
                    logical.sizes());
        auto scale = group_shaped(read(name + ".weight_scale").to(torch::kFloat32), *ws);
        // Symmetric schemes may omit the zero point (compressed-tensors then reads it as 0).
        auto zero = ckpt.contains(name + ".weight_zero_point") || !ws->symmetric
                        ? group_shaped(read(name + ".weight_zero_point").to(torch::kFloat32), *ws)
                        : torch::zeros_like(scale);
        QParams p{scale, zero};
        auto w = dequantize(codes, p, *ws);  // signed codes and zero points: the same values
        if (auto sm = smoothing.find(name); sm != smoothing.end()) w = w / sm->second;
        const bool in_out = lt->second.linear->options().layout == nn::WeightLayout::kInOut;
        options.tensors[name + ".weight"] = in_out ? w.t().contiguous() : w;
        bitmask_targets.erase(name);
      }
      if (aq) smoothing_read.insert(name);
      if (aq && aq->method == ActivationMethod::kStatic) {
        const int64_t off = signed_offset(aq->spec);
        group_inputs[name] = QParams{read(name + ".input_scale").to(torch::kFloat32).reshape({1, 1}),
                                     read(name + ".input_zero_point").to(torch::kFloat32).reshape({1, 1}) + off};
      }
    }
    if (aq) {
      activations.push_back(std::make_unique<Quantizer>(qs));
      inputs.push_back(group_inputs);
    }
  }
  for (const auto& [name, _] : smoothing)
    if (!smoothing_read.count(name))
      fail_data(where, ".input_smoothing: '", name, "' has no quantized input activations to divide by its factors");
  for (const auto& name : bitmask_targets) {  // 2:4 targets left in float
    auto lt = targets.find(name);
    if (lt == targets.end() || lt->second.type != "linear")
      fail_data(where, ".sparsity_config: target '", name, "' is not a linear layer of ", probe->info().head_class);
    auto w = stored_weight(name).to(torch::kFloat32);
    if (w.sizes() != lt->second.weight().sizes())
      fail_data((dir / "model.safetensors").string(), ": '", name, "' has shape ", w.sizes(), ", config implies ", lt->second.weight().sizes());
    const bool in_out = lt->second.linear->options().layout == nn::WeightLayout::kInOut;
    options.tensors[name + ".weight"] = in_out ? w.t().contiguous() : w;
  }
  auto loaded = models::load_model(dir, options);
  for (size_t i = 0; i < activations.size(); ++i) {
    activations[i]->attach(*loaded.model);
    activations[i]->activate_frozen(inputs[i], smoothing);
  }
  return loaded;
}

}  // namespace sqz::quant
