// sqz info MODEL_DIR: architecture, parameter count and bytes, and a per-module table.
#include <iomanip>
#include <iostream>

#include "compress/quant/export.h"
#include "cli/commands.h"
#include "io/safetensors.h"
#include "models/registry.h"

namespace sqz::cli {

namespace {

// Groups parameters by module path up to the first layer index ("bert.encoder.layer.3"), or
// two levels deep where there is none ("bert.embeddings").
std::string group_of(const std::string& name) {
  std::vector<std::string> parts;
  for (size_t start = 0, dot; (dot = name.find('.', start)) != std::string::npos; start = dot + 1)
    parts.push_back(name.substr(start, dot - start));
  size_t keep = std::min<size_t>(parts.size(), 2);
  for (size_t i = 0; i < parts.size(); ++i)
    if (!parts[i].empty() && std::all_of(parts[i].begin(), parts[i].end(), ::isdigit)) {
      keep = i + 1;
      break;
    }
  std::string group;
  for (size_t i = 0; i < keep; ++i) group += (i ? "." : "") + parts[i];
  return group.empty() ? "(root)" : group;
}

void run_info(const std::string& dir, bool as_json) {
  auto loaded = quant::load_any_model(dir);
  auto& model = *loaded.model;
  const auto& info = model.info();
  io::Checkpoint ckpt(dir);
  std::map<std::string, uint64_t> bytes_by_dtype;
  for (const auto& n : ckpt.names()) {
    const auto& e = ckpt.entry(n);
    bytes_by_dtype[e.dtype_name] += e.end - e.begin;
  }
  std::vector<std::pair<std::string, int64_t>> groups;
  for (auto& item : model.named_parameters()) {
    std::string g = group_of(models::hf_name(info, item.key()));
    if (groups.empty() || groups.back().first != g) groups.emplace_back(g, 0);
    groups.back().second += item.value().numel();
  }
  int64_t params = models::count_parameters(model);
  if (as_json) {
    io::json j = {{"model_type", info.model_type}, {"architecture", info.head_class}, {"parameters", params},
                  {"checkpoint_bytes", ckpt.total_bytes()}, {"bytes_by_dtype", bytes_by_dtype},
                  {"hidden_size", info.hidden_size}, {"num_layers", info.num_layers}, {"vocab_size", info.vocab_size},
                  {"max_positions", info.max_positions}};
    io::json mods = io::json::array();
    for (const auto& [g, n] : groups) mods.push_back({{"module", g}, {"parameters", n}});
    j["modules"] = mods;
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::cout << "model dir      " << dir << "\n"
            << "model_type     " << info.model_type << "\n"
            << "architecture   " << info.head_class << "\n"
            << "layers         " << info.num_layers << "\n"
            << "hidden size    " << info.hidden_size << "\n"
            << "vocab size     " << info.vocab_size << "\n"
            << "max positions  " << (info.max_positions ? std::to_string(info.max_positions) : "unlimited") << "\n"
            << "parameters     " << params << " (" << std::fixed << std::setprecision(2) << params / 1e6 << " M)\n"
            << "checkpoint     " << ckpt.total_bytes() << " bytes";
  for (const auto& [dt, b] : bytes_by_dtype) std::cout << "  [" << dt << ": " << b << "]";
  std::cout << "\n\n" << std::left << std::setw(44) << "module" << std::right << std::setw(14) << "parameters" << std::setw(9) << "share" << "\n";
  for (const auto& [g, n] : groups)
    std::cout << std::left << std::setw(44) << g << std::right << std::setw(14) << n << std::setw(8) << std::setprecision(1)
              << 100.0 * n / std::max<int64_t>(params, 1) << "%\n";
}

}  // namespace

void add_info_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Show a model's architecture, parameter count, bytes and per-module table");
  auto dir = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("model_dir", *dir, "Hugging Face model directory")->required();
  cmd->add_flag("--json", *as_json, "print JSON instead of a table");
  cmd->callback([=] { run_info(*dir, *as_json); });
}

}  // namespace sqz::cli
