#include "compress/quant/export.h"

#include "core/error.h"
#include "core/log.h"
#include "io/safetensors.h"

namespace sqz::quant {

namespace {

const char* kQuantMethod = "compressed-tensors";

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

// b-bit signed codes, biased to unsigned fields, 32/b per int32, little end first.
torch::Tensor pack_codes(const torch::Tensor& codes, int bits) {
  const int64_t per = 32 / bits, rows = codes.size(0), cols = codes.size(1);
  const int64_t words = (cols + per - 1) / per;
  auto u = (codes.to(torch::kInt64) + (int64_t{1} << (bits - 1))).contiguous();
  auto padded = torch::zeros({rows, words * per}, torch::kInt64);
  padded.slice(1, 0, cols).copy_(u);
  auto fields = padded.reshape({rows, words, per});
  auto place = torch::pow(2, torch::arange(per, torch::kInt64) * bits);  // field j at bit j * bits
  auto packed = (fields * place).sum(-1);                                   // < 2^32
  return torch::where(packed >= (int64_t{1} << 31), packed - (int64_t{1} << 32), packed).to(torch::kInt32);
}

torch::Tensor unpack_codes(const torch::Tensor& packed, int bits, int64_t cols) {
  const int64_t per = 32 / bits;
  auto w = packed.to(torch::kInt64);
  w = torch::where(w < 0, w + (int64_t{1} << 32), w);  // the unsigned 32-bit word
  auto place = torch::pow(2, torch::arange(per, torch::kInt64) * bits);
  auto fields = torch::remainder(torch::div(w.unsqueeze(-1), place, "floor"), int64_t{1} << bits);
  return fields.reshape({packed.size(0), -1}).slice(1, 0, cols) - (int64_t{1} << (bits - 1));
}

}  // namespace

bool is_quantized_export(const io::json& config) {
  return config.contains("quantization_config") && config["quantization_config"].value("quant_method", "") == kQuantMethod;
}

int64_t count_nm_violations(const torch::Tensor& w, int64_t n, int64_t m) {
  if (w.size(1) % m != 0) return w.size(0) * w.size(1) / m + 1;
  auto nz = w.ne(0).reshape({w.size(0), -1, m}).sum(-1);
  return (nz > n).sum().item<int64_t>();
}

void export_compressed_tensors(models::TransformerModel& model, const io::json& config, const std::vector<QuantizedLayer>& layers,
                               const SparsityExport& sparsity, const fs::path& dir) {
  torch::NoGradGuard no_grad;
  std::map<std::string, const QuantizedLayer*> by_name;
  for (const auto& l : layers) by_name[l.name] = &l;
  std::map<std::string, compress::LayerTarget> targets;
  for (auto& t : compress::list_layers(model)) targets.emplace(t.name, t);

  if (sparsity.n > 0)
    for (const auto& name : sparsity.targets) {
      auto w = by_name.count(name) ? by_name[name]->codes : targets.at(name).weight();
      if (int64_t bad = count_nm_violations(w, sparsity.n, sparsity.m); bad > 0)
        fail_invalid(name, ".weight: ", bad, " groups of ", sparsity.m, " hold more than ", sparsity.n,
                     " nonzeros; refusing to export it as ", sparsity.n, ":", sparsity.m, " sparse");
    }

  bool all_int8 = true;
  for (const auto& l : layers) all_int8 = all_int8 && l.weight.spec.bits == 8;
  std::map<const void*, std::string> storage_owner;
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (auto& item : model.named_parameters()) {
    std::string name = models::hf_name(model.info(), item.key());
    auto [it, fresh] = storage_owner.emplace(item.value().data_ptr(), name);
    const std::string module = name.size() > 7 && name.substr(name.size() - 7) == ".weight" ? name.substr(0, name.size() - 7) : "";
    auto q = by_name.find(module);
    if (q == by_name.end() || !q->second->codes.defined()) {
      tensors.emplace_back(name, item.value());
      continue;
    }
    if (!fresh) fail_invalid(name, ": tied to ", it->second, "; exclude it from quantization (its tensor is stored once)");
    const auto& l = *q->second;
    const auto& s = l.weight.spec;
    const int64_t off = signed_offset(s);
    auto codes = l.codes - off;
    if (all_int8) {
      tensors.emplace_back(name, codes.to(torch::kInt8));
    } else {
      tensors.emplace_back(module + ".weight_packed", pack_codes(codes, s.bits));
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
  c["quantization_config"] = {{"quant_method", kQuantMethod}, {"format", all_int8 ? "int-quantized" : "pack-quantized"},
                              {"quantization_status", "compressed"}, {"config_groups", groups}, {"ignore", ignore}};
  if (sparsity.n > 0) {
    int64_t zeros = 0, total = 0;
    for (const auto& name : sparsity.targets) {
      auto w = targets.at(name).weight();
      zeros += w.eq(0).sum().item<int64_t>();
      total += w.numel();
    }
    c["quantization_config"]["sparsity_config"] = {
        {"format", "dense"}, {"sparsity_structure", std::to_string(sparsity.n) + ":" + std::to_string(sparsity.m)},
        {"targets", sparsity.targets}, {"ignore", io::json::array()},
        {"global_sparsity", total ? static_cast<double>(zeros) / static_cast<double>(total) : 0.0}};
  }
  c["architectures"] = {model.info().head_class};
  c["model_type"] = model.info().model_type;
  fs::create_directories(dir);
  io::write_safetensors(dir / "model.safetensors", tensors);
  io::write_json_file_atomic(dir / "config.json", c);
}

models::LoadedModel load_any_model(const fs::path& dir, const models::LoadOptions& options_in) {
  auto config = io::JsonFields::from_file(dir / "config.json");
  if (!is_quantized_export(config.value())) return models::load_model(dir, options_in);
  const std::string where = (dir / "config.json").string() + " quantization_config";
  const auto& qc = config.value()["quantization_config"];
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
    for (const auto& t : g["targets"]) {
      const std::string name = t.get<std::string>();
      auto lt = targets.find(name);
      if (lt == targets.end() || lt->second.type != "linear")
        fail_data(gwhere, ": target '", name, "' is not a linear layer of ", probe->info().head_class);
      qs.targets.names.push_back(name);
      if (ws) {
        torch::Tensor codes = ckpt.contains(name + ".weight_packed")
                                  ? unpack_codes(read(name + ".weight_packed"), ws->bits, read(name + ".weight_shape")[1].item<int64_t>())
                                  : read(name + ".weight").to(torch::kInt64);
        auto logical = lt->second.weight();
        if (codes.sizes() != logical.sizes())
          fail_data((dir / "model.safetensors").string(), ": '", name, "' codes have shape ", codes.sizes(), ", config implies ",
                    logical.sizes());
        QParams p{group_shaped(read(name + ".weight_scale").to(torch::kFloat32), *ws),
                  group_shaped(read(name + ".weight_zero_point").to(torch::kFloat32), *ws)};
        auto w = dequantize(codes, p, *ws);  // signed codes and zero points: the same values
        const bool in_out = lt->second.linear->options().layout == nn::WeightLayout::kInOut;
        options.tensors[name + ".weight"] = in_out ? w.t().contiguous() : w;
      }
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
  auto loaded = models::load_model(dir, options);
  for (size_t i = 0; i < activations.size(); ++i) {
    activations[i]->attach(*loaded.model);
    activations[i]->activate_frozen(inputs[i]);
  }
  return loaded;
}

}  // namespace sqz::quant
