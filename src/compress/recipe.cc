#include "compress/recipe.h"

#include <yaml-cpp/yaml.h>

#include "core/error.h"

namespace sqz::compress {

namespace {

// --set a.b.0.c=value: walks maps by key and sequences by index, creating map entries.
void apply_override(YAML::Node root, const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) fail_invalid("--set '", assignment, "': expected key=value");
  std::string path = assignment.substr(0, eq);
  YAML::Node value;
  try {
    value = YAML::Load(assignment.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    fail_invalid("--set '", assignment, "': value is not valid YAML (", e.msg, ")");
  }
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    auto dot = path.find('.', start);
    parts.push_back(path.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  YAML::Node node = root;
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& p = parts[i];
    bool last = i + 1 == parts.size();
    if (node.IsSequence()) {
      size_t idx = 0;
      try {
        idx = std::stoul(p);
      } catch (const std::exception&) {
        fail_invalid("--set '", assignment, "': '", p, "' should be a list index");
      }
      if (idx >= node.size()) fail_invalid("--set '", assignment, "': index ", idx, " but the list has ", node.size(), " entries");
      if (last) node[idx] = value;
      else node.reset(node[idx]);
    } else {
      if (last) node[p] = value;
      else {
        if (!node[p]) node[p] = YAML::Node(YAML::NodeType::Map);
        YAML::Node child = node[p];
        node.reset(child);
      }
    }
  }
}

}  // namespace

CompressRecipe CompressRecipe::from_yaml_text(const std::string& text, const std::string& source,
                                              const std::vector<std::string>& overrides) {
  YAML::Node root = train::load_yaml(text, source);
  if (!root.IsMap()) fail_invalid(source, ": a compress recipe must be a mapping (train, student, distill, prune, speedup, latency, out)");
  for (const auto& o : overrides) apply_override(root, o);
  CompressRecipe r;
  r.source = source;
  for (const auto& kv : root) {
    std::string key = kv.first.as<std::string>();
    std::string where = to_text(source, ":", kv.first.Mark().line + 1);
    const YAML::Node& v = kv.second;
    try {
      if (key == "train") {
        // The trainer's own output goes under the compress output dir.
        YAML::Node t = YAML::Clone(v);
        if (!t["out"]) t["out"] = "unused";
        if (t["steps"] && t["steps"].IsScalar() && t["steps"].as<std::string>() == "0") {
          r.train_steps_zero = true;
          t["steps"] = 1;
        }
        r.train = train::TrainRecipe::from_node(t, source, {});
      } else if (key == "student") {
        for (const auto& s : v) {
          const std::string sk = s.first.as<std::string>();
          if (sk == "layers") r.student.layers = s.second.as<std::vector<int64_t>>();
          else if (sk == "hidden") r.student.hidden = s.second.as<int64_t>();
          else fail_invalid(where, ": unknown student key '", sk, "' (known: layers, hidden)");
        }
      } else if (key == "distill") {
        r.distill = DistillSpec::parse(v, where);
      } else if (key == "prune") {
        if (!v.IsSequence()) fail_invalid(where, ": 'prune' must be a list of pruners");
        for (size_t i = 0; i < v.size(); ++i) {
          r.prune.push_back(PrunerSpec::parse(v[i], to_text(source, ":", v[i].Mark().line + 1, " prune[", i, "]")));
          if (r.prune.back().name.empty()) r.prune.back().name = to_text("prune", i);
        }
      } else if (key == "quantize") {
        if (!v.IsSequence()) fail_invalid(where, ": 'quantize' must be a list of quantizers");
        for (size_t i = 0; i < v.size(); ++i) {
          r.quantize.push_back(quant::QuantizerSpec::parse(v[i], to_text(source, ":", v[i].Mark().line + 1, " quantize[", i, "]")));
          if (!v[i]["name"]) r.quantize.back().name = to_text("quantize", i);
        }
      } else if (key == "calibration") {
        for (const auto& c : v) {
          if (c.first.as<std::string>() != "batches")
            fail_invalid(where, ": unknown calibration key '", c.first.as<std::string>(), "' (known: batches)");
          r.calibration_batches = c.second.as<int64_t>();
        }
      } else if (key == "export") {
        for (const auto& e : v) {
          if (e.first.as<std::string>() != "sparsity_format")
            fail_invalid(where, ": unknown export key '", e.first.as<std::string>(), "' (known: sparsity_format)");
          r.sparsity_format = e.second.as<std::string>();
          if (r.sparsity_format != "dense" && r.sparsity_format != "sparse-24-bitmask")
            fail_invalid(where, ": export.sparsity_format '", r.sparsity_format, "' is not one of: dense, sparse-24-bitmask");
        }
      } else if (key == "speedup") {
        r.speedup = v.as<bool>();
      } else if (key == "latency") {
        for (const auto& l : v) {
          std::string lk = l.first.as<std::string>();
          if (lk == "batch_sizes") r.latency.batch_sizes = l.second.as<std::vector<int64_t>>();
          else if (lk == "seq") r.latency.seq = l.second.as<int64_t>();
          else if (lk == "threads") r.latency.threads = l.second.as<int>();
          else if (lk == "runs") r.latency.runs = l.second.as<int>();
          else if (lk == "warmup") r.latency.warmup = l.second.as<int>();
          else if (lk == "enabled") r.latency.enabled = l.second.as<bool>();
          else if (lk == "decode_steps") r.latency.decode_steps = l.second.as<int64_t>();
          else if (lk == "cases") r.latency.cases = l.second.as<std::vector<std::string>>();
          else if (lk == "score_batches") r.latency.score_batches = l.second.as<int64_t>();
          else fail_invalid(where, ": unknown latency key '", lk,
                            "' (known: batch_sizes, seq, decode_steps, threads, runs, warmup, cases, score_batches, enabled)");
        }
      } else if (key == "eval_batches") {
        r.eval_batches = v.as<int64_t>();
      } else if (key == "out") {
        r.out = v.as<std::string>();
      } else {
        fail_invalid(where, ": unknown compress recipe key '", key,
                     "' (known: train, student, distill, prune, quantize, calibration, export, speedup, latency, eval_batches, out)");
      }
    } catch (const YAML::Exception&) {
      fail_invalid(where, ": recipe key '", key, "' has a value of the wrong type");
    }
  }
  if (r.eval_batches < 0) fail_invalid(source, ": eval_batches is ", r.eval_batches, "; expected >= 0 (0 = the whole dev split)");
  if (!root["train"]) fail_invalid(source, ": 'train' is required (model, task, data, steps, ...)");
  if (r.train.model.empty()) fail_invalid(source, ": train.model is required (the HF dir to compress)");
  if (r.out.empty()) fail_invalid(source, ": 'out' is required");
  if (r.latency.runs < 1 || r.latency.seq < 1 || r.latency.threads < 1 || r.latency.decode_steps < 0 || r.latency.warmup < 0)
    fail_invalid(source, ": latency runs, seq and threads must be >= 1, decode_steps and warmup >= 0");
  if (r.latency.score_batches < -1)
    fail_invalid(source, ": latency.score_batches is ", r.latency.score_batches, "; expected -1 (as eval_batches), 0 (the whole split) or more");
  if (r.latency.enabled && r.latency.batch_sizes.empty()) fail_invalid(source, ": latency.batch_sizes is empty (or set latency.enabled: false)");
  for (int64_t b : r.latency.batch_sizes)
    if (b < 1) fail_invalid(source, ": latency.batch_sizes has ", b, "; each batch size must be >= 1");
  for (size_t i = 0; i < r.prune.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (r.prune[i].name == r.prune[j].name) fail_invalid(source, ": two pruners are named '", r.prune[i].name, "'");
  if (r.distill && r.distill->teacher.empty()) r.distill->teacher = r.train.model;
  bool ptq = false, qat = false;
  for (const auto& q : r.quantize) ptq = ptq || !q.qat, qat = qat || q.qat;
  if (r.student.hidden < 0) fail_invalid(source, ": student.hidden must be a positive width (0 = keep all), got ", r.student.hidden);
  if (r.train_steps_zero && (!r.prune.empty() || r.distill || !r.student.empty() || qat))
    fail_invalid(source, ": train.steps is 0, but pruning, distillation, a student or QAT need training steps");
  if (qat)
    for (const auto& p : r.prune)
      if (is_group(p.granularity))
        fail_invalid(p.source, ": structural pruning (", granularity_name(p.granularity),
                     ") and QAT in one run are not supported: SpeedUp would reshape the quantized layers. Prune first, then "
                     "quantize the pruned model in a second recipe (or use PTQ, which runs after SpeedUp)");
  if (ptq && r.calibration_batches < 1)
    fail_invalid(source, ": calibration.batches must be >= 1 for post-training quantization, got ", r.calibration_batches);
  for (size_t i = 0; i < r.quantize.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (r.quantize[i].name == r.quantize[j].name) fail_invalid(source, ": two quantizers are named '", r.quantize[i].name, "'");
  if (r.sparsity_format != "dense") {
    bool two_four = false;
    for (const auto& p : r.prune) two_four = two_four || (p.granularity == Granularity::kNM && p.n == 2 && p.m == 4);
    if (r.quantize.empty() || !two_four)
      fail_invalid(source, ": export.sparsity_format ", r.sparsity_format,
                   " stores the weights of a 2:4 pruner in a compressed-tensors export: it needs a 2:4 pruner and a quantize: stage");
  }
  return r;
}

CompressRecipe CompressRecipe::load(const fs::path& path, const std::vector<std::string>& overrides) {
  return from_yaml_text(read_text_file(path), path.string(), overrides);
}

std::string CompressRecipe::to_yaml() const {
  YAML::Node root;
  root["train"] = YAML::Load(train.to_yaml());
  root["train"].remove("out");
  if (train_steps_zero) root["train"]["steps"] = 0;
  if (!student.layers.empty()) root["student"]["layers"] = student.layers;
  if (student.hidden > 0) root["student"]["hidden"] = student.hidden;
  if (distill) root["distill"] = distill->to_yaml();
  for (const auto& p : prune) root["prune"].push_back(p.to_yaml());
  for (const auto& q : quantize) root["quantize"].push_back(q.to_yaml());
  if (!quantize.empty()) root["calibration"]["batches"] = calibration_batches;
  if (sparsity_format != "dense") root["export"]["sparsity_format"] = sparsity_format;
  root["speedup"] = speedup;
  root["latency"]["batch_sizes"] = latency.batch_sizes;
  root["latency"]["seq"] = latency.seq;
  root["latency"]["threads"] = latency.threads;
  root["latency"]["decode_steps"] = latency.decode_steps;
  root["latency"]["runs"] = latency.runs;
  root["latency"]["warmup"] = latency.warmup;
  if (!latency.cases.empty()) root["latency"]["cases"] = latency.cases;
  root["latency"]["score_batches"] = latency.score_batches;
  root["latency"]["enabled"] = latency.enabled;
  root["eval_batches"] = eval_batches;
  root["out"] = out;
  YAML::Emitter e;
  e << root;
  return std::string(e.c_str()) + "\n";
}

}  // namespace sqz::compress
