// Structure-aware fuzzing of the loaders that link torch (issue 23). The libFuzzer build is
// torch-free because clang cannot compile Debian's libtorch 1.13 headers in C++20, so
// config.json -> model (every family), manifest.json -> runtime engine and the compress recipes
// are fuzzed here:
// seeded mutations of a valid file's fields (removed; zero, negative, huge, fractional; another
// type; another field's value), each of which must load and run or be refused with an sqz::Error
// that names the file. Any other outcome (another exception type, a crash) fails the test and
// prints the mutations that caused it. SQZ_MUTATIONS sets the count per seed file (default 300);
// SQZ_MUTATION_SEED picks another sequence.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>

#include <yaml-cpp/yaml.h>

#include "compress/recipe.h"
#include "runtime/engine.h"
#include "runtime/runtime_dir.h"
#include "unit/test_util.h"
#include "unit/tiny_models.h"

namespace sqz {
namespace {

int64_t env_int(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoll(v) : fallback;
}

// Every value in the document with its JSON pointer (the root excluded).
void collect_pointers(const io::json& value, const io::json::json_pointer& at, std::vector<io::json::json_pointer>& out) {
  if (value.is_object())
    for (const auto& [key, child] : value.items()) {
      out.push_back(at / key);
      collect_pointers(child, at / key, out);
    }
  else if (value.is_array())
    for (size_t i = 0; i < value.size(); ++i) {
      out.push_back(at / i);
      collect_pointers(value[i], at / i, out);
    }
}

// The values a field is replaced with: boundaries of every integer reader, fractions, other types.
std::vector<io::json> replacement_values() {
  return {0, -1, 1, 2, 3, 5, 7, 1000003, int64_t{1} << 31, int64_t{1} << 40, INT64_MAX, INT64_MIN, 1e30, -1e30, 0.5, -0.5,
          1.0, "x", "", nullptr, true, false, io::json::array(), io::json::object(), io::json::array({0, 0})};
}

// Applies 1 to 3 random mutations to `doc`; returns what it did, one line each.
std::string mutate(io::json& doc, std::mt19937_64& rng) {
  static const auto values = replacement_values();
  std::string done;
  const int count = 1 + static_cast<int>(rng() % 3);
  for (int i = 0; i < count; ++i) {
    std::vector<io::json::json_pointer> pointers;
    collect_pointers(doc, io::json::json_pointer(), pointers);
    if (pointers.empty()) break;
    const auto& at = pointers[rng() % pointers.size()];
    const auto kind = rng() % 8;
    if (kind == 0 && doc[at.parent_pointer()].is_object()) {
      done += "  remove " + at.to_string() + "\n";
      doc[at.parent_pointer()].erase(at.back());
    } else if (kind == 1) {
      const auto& from = pointers[rng() % pointers.size()];
      io::json value = doc[from];
      done += "  " + at.to_string() + " = " + from.to_string() + "'s value\n";
      doc[at] = std::move(value);
    } else {
      const auto& value = values[rng() % values.size()];
      done += "  " + at.to_string() + " = " + value.dump() + "\n";
      doc[at] = value;
    }
  }
  return done;
}

// Runs `load` and then `use` on what it loaded; fails the test unless loading succeeds or throws an
// sqz::Error naming `file` or another file of its dir (a layer count read from config.json is
// refused as tensors missing from model.safetensors), and using it succeeds or throws an
// sqz::Error (a position table shorter than the input is the caller's limit, not the file's).
// SQZ_MUTATION_TRACE=1 prints each case's mutations first (a crash then shows its cause) and each refusal.
template <typename Loaded>
void expect_loads_or_refuses(const std::function<Loaded()>& load, const std::function<void(Loaded&)>& use, const fs::path& file,
                             const std::string& mutations) {
  if (env_int("SQZ_MUTATION_TRACE", 0)) std::fprintf(stderr, "case:\n%s", mutations.c_str());
  std::optional<Loaded> loaded;
  try {
    loaded.emplace(load());
  } catch (const Error& e) {
    const std::string message = e.what();
    if (env_int("SQZ_MUTATION_TRACE", 0)) std::fprintf(stderr, "refused: %s\n", message.c_str());
    const bool names_file = message.find(file.filename().string()) != std::string::npos;
    EXPECT_TRUE(names_file || message.find(file.parent_path().string()) != std::string::npos)
        << "the error names no file of " << file.parent_path() << ": " << message << "\nmutations:\n" << mutations;
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "loading: not an sqz::Error: " << e.what() << "\nmutations:\n" << mutations;
    return;
  }
  try {
    use(*loaded);
  } catch (const Error&) {
  } catch (const std::exception& e) {
    ADD_FAILURE() << "running what loaded: not an sqz::Error: " << e.what() << "\nmutations:\n" << mutations;
  }
}

// RoBERTa: padding-aware positions start after pad_token_id.
io::json roberta_config() {
  auto c = testing::tiny_bert_config();
  c["model_type"] = "roberta";
  c["pad_token_id"] = 1;
  c["architectures"] = {"RobertaForSequenceClassification"};
  return c;
}

// The seed configs: one small model of each family the registry builds.
std::vector<std::pair<std::string, io::json>> seed_configs() {
  std::vector<std::pair<std::string, io::json>> seeds;
  for (const char* arch : {"bert", "gpt2", "opt", "qwen2", "gpt_neox", "distilbert"}) seeds.emplace_back(arch, testing::arch_config(arch));
  seeds.emplace_back("roberta", roberta_config());
  seeds.emplace_back("llama-gqa", testing::tiny_llama_config(2));
  seeds.emplace_back("t5", testing::tiny_t5_config());
  seeds.emplace_back("bart", testing::tiny_bart_config());
  seeds.emplace_back("vit", testing::tiny_vit_config());
  return seeds;
}

// A forward pass on whatever the model takes, so a config that loads also runs (or is refused).
void run_forward(models::TransformerModel& model) {
  torch::NoGradGuard no_grad;
  models::ModelInputs in;
  if (model.info().model_type == "vit") {
    in.pixel_values = torch::zeros({1, 3, 16, 16});
  } else {
    in.input_ids = torch::tensor({{2, 3, 4, 2}}, torch::kLong);
    in.attention_mask = torch::ones({1, 4}, torch::kLong);
  }
  model.forward(in);
}

TEST(LoaderMutations, EveryFamilysConfigLoadsOrIsRefusedByName) {
  const int64_t mutations = env_int("SQZ_MUTATIONS", 300);
  std::mt19937_64 rng(static_cast<uint64_t>(env_int("SQZ_MUTATION_SEED", 1)));
  for (const auto& [name, config] : seed_configs()) {
    SCOPED_TRACE(name);
    testing::ScratchDir dir("mutated-config");
    auto model = testing::tiny_model(config);
    models::save_model(*model, config, dir.path());
    const auto valid = io::read_json_file(dir / "config.json");
    for (int64_t i = 0; i < mutations; ++i) {
      io::json doc = valid;
      const std::string done = mutate(doc, rng);
      io::write_json_file_atomic(dir / "config.json", doc);
      expect_loads_or_refuses<models::LoadedModel>([&] { return models::load_model(dir.path()); },
                                                   [](models::LoadedModel& m) { run_forward(*m.model); }, dir / "config.json", done);
      if (::testing::Test::HasFailure()) return;  // one finding at a time: its mutations are printed
    }
  }
}

// The runtime dir of the engine built from `config` at `precision`.
void pack(const io::json& config, const std::string& precision, const fs::path& dir) {
  auto model = testing::tiny_model(config);
  models::save_model(*model, config, dir);
  auto engine = runtime::build_engine(models::load_model(dir), precision, 1);
  runtime::RuntimeDirWriter writer;
  const auto manifest = engine.encoder   ? engine.encoder->save(writer)
                        : engine.decoder ? engine.decoder->save(writer)
                        : engine.seq2seq ? engine.seq2seq->save(writer)
                                         : engine.vision->save(writer);
  writer.write(dir, manifest);
}

// A forward pass of whichever engine the dir opened as (the text engines; ViT and seq2seq load only).
void run_engine(const runtime::Engine& engine) {
  const std::vector<int64_t> ids = {2, 3, 4, 2}, mask = {1, 1, 1, 1};
  if (engine.encoder) engine.encoder->forward(ids.data(), mask.data(), nullptr, 1, 4);
  if (engine.decoder) {
    auto cache = engine.decoder->new_cache(1, 8);
    engine.decoder->forward(cache, ids.data(), 4, true);
  }
}

TEST(LoaderMutations, EveryRuntimeManifestOpensOrIsRefusedByName) {
  const int64_t mutations = env_int("SQZ_MUTATIONS", 300);
  std::mt19937_64 rng(static_cast<uint64_t>(env_int("SQZ_MUTATION_SEED", 1)));
  auto as_lm = [](io::json c, const char* head) {
    c["architectures"] = {head};
    return c;
  };
  const std::vector<std::tuple<std::string, io::json, std::string>> seeds = {
      {"bert int8", testing::tiny_bert_config(), "int8"},
      {"llama-gqa int8", as_lm(testing::tiny_llama_config(2), "LlamaForCausalLM"), "int8"},
      {"gpt2 int8-block", as_lm(testing::tiny_gpt2_config(), "GPT2LMHeadModel"), "int8-block"},
      {"t5 bf16", testing::tiny_t5_config(), "bf16"},
      {"vit fp32", testing::tiny_vit_config(), "fp32"}};
  for (const auto& [name, config, precision] : seeds) {
    SCOPED_TRACE(name);
    testing::ScratchDir dir("mutated-manifest");
    pack(config, precision, dir.path());
    const auto valid = io::read_json_file(dir / runtime::kManifestFile);
    for (int64_t i = 0; i < mutations; ++i) {
      io::json doc = valid;
      const std::string done = mutate(doc, rng);
      io::write_json_file_atomic(dir / runtime::kManifestFile, doc);
      expect_loads_or_refuses<runtime::Engine>([&] { return runtime::open_runtime_dir(dir.path(), "", 1); }, run_engine,
                                               dir / runtime::kManifestFile, done);
      if (::testing::Test::HasFailure()) return;
    }
  }
}

// A YAML document as JSON (scalars as strings), which is YAML again when dumped: the recipe
// mutations reuse the JSON ones.
io::json yaml_as_json(const YAML::Node& node) {
  if (node.IsMap()) {
    io::json out = io::json::object();
    for (const auto& kv : node) out[kv.first.as<std::string>()] = yaml_as_json(kv.second);
    return out;
  }
  if (node.IsSequence()) {
    io::json out = io::json::array();
    for (const auto& item : node) out.push_back(yaml_as_json(item));
    return out;
  }
  return node.IsScalar() ? io::json(node.as<std::string>()) : io::json();
}

// Every shipped compress recipe, mutated: it parses and writes itself back out, or is refused naming
// the recipe file.
TEST(LoaderMutations, EveryCompressRecipeParsesOrIsRefusedByName) {
  const int64_t mutations = env_int("SQZ_MUTATIONS", 300);
  std::mt19937_64 rng(static_cast<uint64_t>(env_int("SQZ_MUTATION_SEED", 1)));
  std::vector<fs::path> recipes;
  for (const auto& e : fs::recursive_directory_iterator(fs::path(SQZ_SOURCE_DIR) / "recipes"))
    if (e.path().extension() == ".yaml" && e.path().parent_path().filename() != "teachers") recipes.push_back(e.path());
  std::sort(recipes.begin(), recipes.end());
  ASSERT_GE(recipes.size(), 10u);
  testing::ScratchDir dir("mutated-recipe");
  const fs::path file = dir / "recipe.yaml";
  for (const auto& recipe : recipes) {
    SCOPED_TRACE(recipe.filename().string());
    const auto valid = yaml_as_json(YAML::LoadFile(recipe.string()));
    for (int64_t i = 0; i < mutations; ++i) {
      io::json doc = valid;
      const std::string done = mutate(doc, rng);
      expect_loads_or_refuses<compress::CompressRecipe>(
          [&] { return compress::CompressRecipe::from_yaml_text(doc.dump(), file.string(), {}); },
          [&](compress::CompressRecipe& r) { compress::CompressRecipe::from_yaml_text(r.to_yaml(), file.string(), {}); }, file,
          done);
      if (::testing::Test::HasFailure()) return;
    }
  }
}

// What the mutations found, each refused by name now: a layer count the checkpoint does not hold
// (100000 tiny BERT layers took 24 GB before the first missing tensor was noticed), a size past
// int64 storage, a decoder start token or a pad outside the vocabulary (an index error in the
// first forward; RoBERTa's positions start at its pad), a block-sparse Linear whose manifest widens its dense shape to 2^40 inputs, a Linear
// precision no engine has.
TEST(LoaderMutations, WhatTheyFoundIsRefusedByName) {
  auto refusal = [](const io::json& config, const std::string& key, const io::json& value) {
    testing::ScratchDir dir("found-config");
    models::save_model(*testing::tiny_model(config), config, dir.path());
    auto edited = io::read_json_file(dir / "config.json");
    edited[key] = value;
    io::write_json_file_atomic(dir / "config.json", edited);
    return testing::error_of([&] { models::load_model(dir.path()); });
  };
  auto expect_names = [](const std::string& error, std::initializer_list<const char*> parts) {
    for (const char* p : parts) EXPECT_NE(error.find(p), std::string::npos) << "'" << p << "' not in: " << error;
  };
  expect_names(refusal(testing::tiny_bert_config(), "num_hidden_layers", 100000), {"config.json", "num_hidden_layers", "at most 2"});
  // Sizes are refused past 2^31 (4 * n_embd overflowed int64 in GPT-2's defaults; UBSan found it),
  // and one within it still has to fit the tensor budget.
  expect_names(refusal(testing::tiny_bert_config(), "vocab_size", INT64_MAX), {"config.json", "vocab_size", "below 2^31"});
  expect_names(refusal(testing::tiny_gpt2_config(), "n_embd", INT64_MAX), {"config.json", "n_embd", "below 2^31"});
  expect_names(refusal(testing::tiny_bert_config(), "vocab_size", INT32_MAX), {"config.json", "past the budget"});
  expect_names(refusal(testing::tiny_bart_config(), "decoder_start_token_id", int64_t{1} << 40),
               {"config.json", "decoder_start_token_id", "[0, 41)"});
  expect_names(refusal(testing::tiny_t5_config(), "num_layers", 3), {"config.json", "num_layers", "at most 2"});
  expect_names(refusal(roberta_config(), "pad_token_id", INT64_MIN), {"config.json", "pad_token_id", "[0, 97)"});
  expect_names(refusal(roberta_config(), "max_position_embeddings", 2), {"config.json", "max_position_embeddings", "more than pad_token_id + 1"});

  auto manifest_refusal = [](const std::string& precision, const std::function<void(io::json&)>& edit) {
    testing::ScratchDir dir("found-manifest");
    io::json config = testing::tiny_gpt2_config();
    config["architectures"] = {"GPT2LMHeadModel"};
    pack(config, precision, dir.path());
    auto manifest = io::read_json_file(dir / runtime::kManifestFile);
    edit(manifest);
    io::write_json_file_atomic(dir / runtime::kManifestFile, manifest);
    return testing::error_of([&] { runtime::open_runtime_dir(dir.path(), "", 1); });
  };
  expect_names(manifest_refusal("int8-block", [](io::json& m) { m["layers"][0]["ffn_out"]["in"] = int64_t{1} << 40; }),
               {"manifest.json", "'in'", "48"});
  expect_names(manifest_refusal("int8", [](io::json& m) { m["layers"][1]["qkv"]["precision"] = "x"; }),
               {"manifest.json", "precision", "one of fp32"});
}

}  // namespace
}  // namespace sqz
