#include "models/layer_surgery.h"

#include "core/error.h"

namespace sqz::models {

std::optional<LayerName> split_layer_name(const ArchSpec& arch, const std::string& hf_name) {
  const std::string list = arch.layers_module + ".";
  for (size_t at = hf_name.find(list); at != std::string::npos; at = hf_name.find(list, at + 1)) {
    if (at != 0 && hf_name[at - 1] != '.') continue;  // "decoder.layers" must not match "xdecoder.layers"
    size_t digits = at + list.size(), end = digits;
    while (end < hf_name.size() && std::isdigit(static_cast<unsigned char>(hf_name[end]))) ++end;
    if (end == digits || end >= hf_name.size() || hf_name[end] != '.') continue;
    return LayerName{hf_name.substr(0, digits), std::stoll(hf_name.substr(digits, end - digits)), hf_name.substr(end)};
  }
  return std::nullopt;
}

LayerSubset keep_layers(const LoadedModel& loaded, const std::vector<int64_t>& layers, const std::string& source) {
  const ModelInfo& info = loaded.model->info();
  const ArchSpec& arch = find_architecture(info.model_type, loaded.config.source());
  const int64_t n = info.num_layers;
  std::map<int64_t, int64_t> new_index;
  for (size_t i = 0; i < layers.size(); ++i) {
    const int64_t l = layers[i];
    if (l < 0 || l >= n || new_index.count(l))
      fail_invalid(source, ": student.layers must be distinct layer indices in [0, ", n, "), got ", l);
    new_index[l] = static_cast<int64_t>(i);
  }
  LayerSubset out;
  for (auto& item : loaded.model->named_parameters()) {
    std::string name = hf_name(info, item.key());
    if (auto split = split_layer_name(arch, name)) {
      auto it = new_index.find(split->index);
      if (it == new_index.end()) continue;
      name = to_text(split->before, it->second, split->after);
    }
    out.tensors.emplace_back(name, item.value().detach());
  }
  io::json c = loaded.config.value();
  c[arch.layer_count_key] = static_cast<int64_t>(layers.size());
  if (c.contains("pruned_heads")) {
    io::json heads = io::json::object();
    for (const auto& [old, idx] : new_index)
      if (c["pruned_heads"].contains(std::to_string(old))) heads[std::to_string(idx)] = c["pruned_heads"][std::to_string(old)];
    c["pruned_heads"] = heads;
  }
  if (c.contains("sqz_intermediate_sizes")) {
    io::json sizes = io::json::array();
    for (int64_t l : layers) sizes.push_back(c["sqz_intermediate_sizes"][l]);
    c["sqz_intermediate_sizes"] = sizes;
  }
  out.config = std::move(c);
  return out;
}

}  // namespace sqz::models
