#include "train/recipe.h"

#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>

#include "core/error.h"

namespace sqz::train {

namespace {

// One table drives parsing, overrides and printing, so the three never disagree.
struct Field {
  std::function<void(TrainRecipe&, const YAML::Node&)> set;
  std::function<std::string(const TrainRecipe&)> get;
};

template <typename T>
Field field(T TrainRecipe::*member) {
  return {[member](TrainRecipe& r, const YAML::Node& n) { r.*member = n.as<T>(); },
          [member](const TrainRecipe& r) {
            YAML::Emitter e;
            e << r.*member;
            return std::string(e.c_str());
          }};
}

const std::map<std::string, Field>& fields() {
  static const std::map<std::string, Field> all = {
      {"model", field(&TrainRecipe::model)},
      {"config", field(&TrainRecipe::config)},
      {"tokenizer", field(&TrainRecipe::tokenizer)},
      {"head", field(&TrainRecipe::head)},
      {"task", field(&TrainRecipe::task)},
      {"data", field(&TrainRecipe::data)},
      {"objective", field(&TrainRecipe::objective)},
      {"max_length", field(&TrainRecipe::max_length)},
      {"steps", field(&TrainRecipe::steps)},
      {"batch_size", field(&TrainRecipe::batch_size)},
      {"grad_accum", field(&TrainRecipe::grad_accum)},
      {"lr", field(&TrainRecipe::lr)},
      {"weight_decay", field(&TrainRecipe::weight_decay)},
      {"warmup_steps", field(&TrainRecipe::warmup_steps)},
      {"max_grad_norm", field(&TrainRecipe::max_grad_norm)},
      {"mlm_probability", field(&TrainRecipe::mlm_probability)},
      {"seed", field(&TrainRecipe::seed)},
      {"threads", field(&TrainRecipe::threads)},
      {"eval_every", field(&TrainRecipe::eval_every)},
      {"eval_batches", field(&TrainRecipe::eval_batches)},
      {"save_every", field(&TrainRecipe::save_every)},
      {"early_stop_patience", field(&TrainRecipe::early_stop_patience)},
      {"out", field(&TrainRecipe::out)},
  };
  return all;
}

void set_field(TrainRecipe& r, const std::string& key, const YAML::Node& value, const std::string& where) {
  auto it = fields().find(key);
  if (it == fields().end()) {
    std::string known;
    for (const auto& [k, f] : fields()) known += (known.empty() ? "" : ", ") + k;
    fail_invalid(where, ": unknown recipe key '", key, "' (known: ", known, ")");
  }
  try {
    it->second.set(r, value);
  } catch (const YAML::Exception&) {
    fail_invalid(where, ": recipe key '", key, "' has a value of the wrong type: '", YAML::Dump(value), "'");
  }
}

void validate(const TrainRecipe& r, const std::string& source) {
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) fail_invalid(source, ": ", what);
  };
  need(!r.model.empty() || !r.config.empty(), "give 'model' (a HF dir) or 'config' (a config.json to initialise)");
  need(r.model.empty() || r.config.empty(), "give only one of 'model' and 'config'");
  need(!r.task.empty(), "'task' is required");
  need(!r.data.empty(), "'data' is required (the task's data dir)");
  need(!r.out.empty(), "'out' is required");
  need(r.objective == "auto" || r.objective == "mlm" || r.objective == "clm" || r.objective == "classification" ||
           r.objective == "seq2seq",
       "'objective' must be auto, mlm, clm, classification or seq2seq, got '" + r.objective + "'");
  need(r.steps > 0, "'steps' must be > 0");
  need(r.batch_size > 0 && r.grad_accum > 0, "'batch_size' and 'grad_accum' must be > 0");
  need(r.max_length >= 2, "'max_length' must be >= 2");
  need(r.lr > 0, "'lr' must be > 0");
  need(r.mlm_probability > 0 && r.mlm_probability < 1, "'mlm_probability' must be in (0, 1)");
  need(r.eval_every > 0 && r.save_every > 0, "'eval_every' and 'save_every' must be > 0");
  need(r.warmup_steps >= 0 && r.eval_batches >= 0 && r.early_stop_patience >= 0, "counts must be >= 0");
  need(r.threads >= 0, "'threads' must be >= 0 (0 = libtorch's default), got " + std::to_string(r.threads));
  need(r.weight_decay >= 0 && r.max_grad_norm >= 0, "'weight_decay' and 'max_grad_norm' must be >= 0 (max_grad_norm 0 = no clipping)");
}

}  // namespace

YAML::Node load_yaml(const std::string& text, const std::string& source) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    fail_invalid(source, ":", e.mark.line + 1, ": not valid YAML (", e.msg, ")");
  }
}

TrainRecipe TrainRecipe::from_yaml_text(const std::string& text, const std::string& source,
                                        const std::vector<std::string>& overrides) {
  return from_node(load_yaml(text, source), source, overrides);
}

TrainRecipe TrainRecipe::from_node(const YAML::Node& root, const std::string& source, const std::vector<std::string>& overrides) {
  TrainRecipe r;
  if (root && !root.IsNull()) {
    if (!root.IsMap()) fail_invalid(source, ": a recipe must be a mapping of key: value");
    for (const auto& kv : root) {
      if (!kv.first.IsScalar())
        fail_invalid(source, ":", kv.first.Mark().line + 1, ": a recipe key must be a plain name, got '", YAML::Dump(kv.first), "'");
      std::string key = kv.first.as<std::string>();
      set_field(r, key, kv.second, to_text(source, ":", kv.first.Mark().line + 1));
    }
  }
  for (const auto& o : overrides) {
    auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0) fail_invalid("--set '", o, "': expected key=value");
    YAML::Node value;
    try {
      value = YAML::Load(o.substr(eq + 1));
    } catch (const YAML::Exception& e) {
      fail_invalid("--set '", o, "': value is not valid YAML (", e.msg, ")");
    }
    set_field(r, o.substr(0, eq), value, "--set");
  }
  validate(r, source);
  return r;
}

TrainRecipe TrainRecipe::load(const fs::path& path, const std::vector<std::string>& overrides) {
  return from_yaml_text(read_text_file(path), path.string(), overrides);
}

std::string TrainRecipe::to_yaml() const {
  std::string out;
  for (const auto& [k, f] : fields()) out += k + ": " + f.get(*this) + "\n";
  return out;
}

}  // namespace sqz::train
