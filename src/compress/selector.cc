#include "compress/selector.h"

#include <map>
#include <regex>
#include <set>

#include "core/error.h"

namespace sqz::compress {

namespace {

const std::set<std::string> kTypes = {"linear", "embedding"};
const std::set<std::string> kRoles = {"q", "k", "v", "qkv", "o", "ffn_in", "ffn_out"};

bool any_full_match(const std::vector<std::string>& patterns, const std::string& name) {
  for (const auto& p : patterns)
    if (std::regex_match(name, std::regex(p))) return true;
  return false;
}

template <typename T>
bool contains(const std::vector<T>& v, const T& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

std::vector<LayerTarget> list_layers(models::TransformerModel& model) {
  std::map<const void*, std::pair<std::string, int64_t>> roles;
  for (const auto& a : model.structure().attention) {
    const char* qkv[] = {"q", "k", "v"};
    for (size_t i = 0; i < a.head_rows.size() && i < 3; ++i) roles[a.head_rows[i].get()] = {qkv[i], a.layer};
    if (a.head_rows.size() == 3 && a.head_rows[0].get() == a.head_rows[1].get()) roles[a.head_rows[0].get()] = {"qkv", a.layer};
    roles[a.head_cols.get()] = {"o", a.layer};
  }
  for (const auto& f : model.structure().ffn) {
    for (const auto& r : f.neuron_rows) roles[r.get()] = {"ffn_in", f.layer};
    roles[f.neuron_cols.get()] = {"ffn_out", f.layer};
  }
  std::vector<LayerTarget> out;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    std::string name = models::hf_name(model.info(), item.key());
    if (auto lin = std::dynamic_pointer_cast<nn::LinearImpl>(item.value())) {
      LayerTarget t{name, "linear", "", -1, &lin->site, [lin] { return lin->logical_weight(); }, nn::Linear(lin)};
      if (auto it = roles.find(lin.get()); it != roles.end()) std::tie(t.role, t.layer) = it->second;
      out.push_back(t);
    } else if (auto emb = std::dynamic_pointer_cast<nn::EmbeddingImpl>(item.value())) {
      out.push_back({name, "embedding", "", -1, &emb->site, [emb] { return emb->weight; }, nn::Linear(nullptr)});
    }
  }
  return out;
}

bool Selector::matches(const LayerTarget& t) const {
  if (any_full_match(exclude, t.name)) return false;
  if (!names.empty() && !contains(names, t.name)) return false;
  if (!regex.empty() && !any_full_match(regex, t.name)) return false;
  if (!types.empty() && !contains(types, t.type)) return false;
  if (!roles.empty() && !contains(roles, t.role)) return false;
  if (!layers.empty() && !contains(layers, t.layer)) return false;
  return true;
}

std::vector<LayerTarget> Selector::select(const std::vector<LayerTarget>& all) const {
  for (const auto& n : names) {
    bool known = std::any_of(all.begin(), all.end(), [&](const LayerTarget& t) { return t.name == n; });
    if (!known) {
      std::string example = all.empty() ? "" : all.front().name;
      fail_invalid(source, ": no module named '", n, "' in the model (module names look like '", example, "')");
    }
  }
  std::vector<LayerTarget> out;
  for (const auto& t : all)
    if (matches(t)) out.push_back(t);
  if (out.empty()) fail_invalid(source, ": the targets select no layer of the model");
  return out;
}

Selector Selector::parse(const YAML::Node& node, const std::string& source) {
  Selector s;
  s.source = source;
  if (!node || node.IsNull()) return s;
  if (!node.IsMap()) fail_invalid(source, ": 'targets' must be a mapping (names, regex, types, roles, layers, exclude)");
  auto strings = [&](const YAML::Node& n, const std::string& key) {
    std::vector<std::string> v;
    try {
      if (n.IsScalar()) v.push_back(n.as<std::string>());
      else v = n.as<std::vector<std::string>>();
    } catch (const YAML::Exception&) {
      fail_invalid(source, ": targets.", key, " must be a string or a list of strings");
    }
    return v;
  };
  for (const auto& kv : node) {
    std::string key = kv.first.as<std::string>();
    std::string where = to_text(source, " (line ", kv.first.Mark().line + 1, ")");
    if (key == "names") s.names = strings(kv.second, key);
    else if (key == "regex") s.regex = strings(kv.second, key);
    else if (key == "exclude") s.exclude = strings(kv.second, key);
    else if (key == "types") s.types = strings(kv.second, key);
    else if (key == "roles") s.roles = strings(kv.second, key);
    else if (key == "layers") {
      try {
        s.layers = kv.second.IsScalar() ? std::vector<int64_t>{kv.second.as<int64_t>()} : kv.second.as<std::vector<int64_t>>();
      } catch (const YAML::Exception&) {
        fail_invalid(where, ": targets.layers must be layer indices");
      }
    } else {
      fail_invalid(where, ": unknown targets key '", key, "' (known: names, regex, types, roles, layers, exclude)");
    }
  }
  for (const auto& t : s.types)
    if (!kTypes.count(t)) fail_invalid(source, ": targets.types: unknown type '", t, "' (known: linear, embedding)");
  for (const auto& r : s.roles)
    if (!kRoles.count(r)) fail_invalid(source, ": targets.roles: unknown role '", r, "' (known: q, k, v, qkv, o, ffn_in, ffn_out)");
  for (const auto& list : {s.regex, s.exclude})
    for (const auto& p : list) {
      try {
        std::regex re(p);
      } catch (const std::regex_error& e) {
        fail_invalid(source, ": targets: '", p, "' is not a valid regex (", e.what(), ")");
      }
    }
  return s;
}

YAML::Node Selector::to_yaml() const {
  YAML::Node n(YAML::NodeType::Map);
  auto list = [&](const char* key, const std::vector<std::string>& v) {
    if (!v.empty()) n[key] = v;
  };
  list("names", names);
  list("regex", regex);
  list("types", types);
  list("roles", roles);
  list("exclude", exclude);
  if (!layers.empty()) n["layers"] = layers;
  return n;
}

}  // namespace sqz::compress
