#include "io/tokenizers/gguf_vocab.h"

#include "core/error.h"

namespace sqz::io {

namespace {

// llama.cpp's token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
constexpr int64_t kControl = 3, kUserDefined = 4;

json byte_level(bool add_prefix_space, bool trim_offsets) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", add_prefix_space}, {"trim_offsets", trim_offsets}, {"use_regex", true}};
}

// The Hugging Face pre-tokenizer for llama.cpp's pre-tokenizer name.
json pre_tokenizer_for(const JsonFields& meta) {
  const std::string pre = meta.get_string("tokenizer.ggml.pre", "default");
  if (pre == "default" || pre == "gpt2") return byte_level(false, true);
  if (pre == "smollm")  // digits one by one, then GPT-2's regex (SmolLM's own tokenizer.json)
    return {{"type", "Sequence"},
            {"pretokenizers", json::array({{{"type", "Digits"}, {"individual_digits", true}}, byte_level(false, true)})}};
  fail_unimplemented(meta.source(), ": tokenizer.ggml.pre '", pre, "' is not supported (supported: default, gpt2, smollm)");
}

const json& string_array(const JsonFields& meta, const std::string& key) {
  if (!meta.has(key) || !meta.value()[key].is_array()) meta.fail_field(key, "an array");
  for (const auto& v : meta.value()[key])
    if (!v.is_string()) meta.fail_field(key, "an array of strings");
  return meta.value()[key];
}

// bos before each sequence, as sqz's byte-level BPE adds it when add_bos_token is set.
json bos_template(const std::string& bos, const json& vocab) {
  auto special = [&](int type_id) {
    json s = json::object();
    s["SpecialToken"] = {{"id", bos}, {"type_id", type_id}};
    return s;
  };
  auto sequence = [](const char* id, int type_id) {
    json s = json::object();
    s["Sequence"] = {{"id", id}, {"type_id", type_id}};
    return s;
  };
  json post = json::object();
  post["type"] = "TemplateProcessing";
  post["single"] = json::array({special(0), sequence("A", 0)});
  post["pair"] = json::array({special(0), sequence("A", 0), special(1), sequence("B", 1)});
  post["special_tokens"] = json::object();
  post["special_tokens"][bos] = {{"id", bos}, {"ids", json::array({vocab[bos]})}, {"tokens", json::array({bos})}};
  return post;
}

}  // namespace

std::map<std::string, int64_t> gguf_special_token_ids(const JsonFields& meta, int64_t vocab_size) {
  std::map<std::string, int64_t> ids;
  // llama.cpp's role names, then HF's.
  for (const auto& [role, hf_role] : std::vector<std::pair<std::string, std::string>>{
           {"bos", "bos"}, {"eos", "eos"}, {"unknown", "unk"}, {"padding", "pad"}, {"sep", "sep"}, {"cls", "cls"}, {"mask", "mask"}}) {
    const std::string key = "tokenizer.ggml." + role + "_token_id";
    if (!meta.has(key)) continue;
    const int64_t id = meta.get_int(key);
    if (id < 0 || id >= vocab_size) meta.fail_field(key, to_text("a token id in [0, ", vocab_size, ")"));
    ids[hf_role] = id;
  }
  return ids;
}

void write_gguf_tokenizer(const JsonFields& meta, const fs::path& dir, int64_t model_max_length) {
  const std::string model = meta.get_string("tokenizer.ggml.model");
  if (model != "gpt2")
    fail_unimplemented(meta.source(), ": tokenizer.ggml.model '", model, "' is not supported (supported: gpt2, byte-level BPE)");
  const json& tokens = string_array(meta, "tokenizer.ggml.tokens");
  const json& merges = string_array(meta, "tokenizer.ggml.merges");
  const int64_t n = static_cast<int64_t>(tokens.size());
  std::vector<int64_t> types(n, 1);
  if (meta.has("tokenizer.ggml.token_type")) {
    const json& t = meta.value()["tokenizer.ggml.token_type"];
    if (!t.is_array() || static_cast<int64_t>(t.size()) != n)
      meta.fail_field("tokenizer.ggml.token_type", to_text("an array of ", n, " integers (one per token)"));
    for (int64_t i = 0; i < n; ++i) {
      if (!t[i].is_number_integer()) meta.fail_field("tokenizer.ggml.token_type", "an array of integers");
      types[i] = t[i].get<int64_t>();
    }
  }
  json vocab = json::object(), added = json::array(), added_decoder = json::object();
  for (int64_t id = 0; id < n; ++id) {
    const std::string& tok = tokens[id].get_ref<const std::string&>();
    if (vocab.contains(tok))
      fail_data(meta.source(), ": tokenizer.ggml.tokens holds '", tok, "' twice (ids ", vocab[tok].get<int64_t>(), " and ", id, ")");
    vocab[tok] = id;
    if (types[id] == kControl || types[id] == kUserDefined) {
      const bool special = types[id] == kControl;
      added.push_back({{"id", id}, {"content", tok}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                       {"normalized", !special}, {"special", special}});
      added_decoder[std::to_string(id)] = {{"content", tok},  {"lstrip", false},     {"normalized", !special},
                                           {"rstrip", false}, {"single_word", false}, {"special", special}};
    }
  }
  for (const auto& m : merges)
    if (m.get_ref<const std::string&>().find(' ') == std::string::npos)
      fail_data(meta.source(), ": tokenizer.ggml.merges entry '", m.get<std::string>(), "' has no space between its two parts");
  json config = {{"tokenizer_class", "GPT2Tokenizer"},   {"add_prefix_space", false},
                 {"clean_up_tokenization_spaces", false}, {"model_max_length", model_max_length},
                 {"added_tokens_decoder", added_decoder}};
  json special_map = json::object();
  for (const auto& [role, id] : gguf_special_token_ids(meta, n)) {
    special_map[role + "_token"] = tokens[id];
    config[role + "_token"] = tokens[id];
  }
  const bool add_bos = meta.get_bool("tokenizer.ggml.add_bos_token", false);
  if (add_bos && !special_map.contains("bos_token"))
    meta.fail_field("tokenizer.ggml.bos_token_id", "a token id (tokenizer.ggml.add_bos_token is true)");
  config["add_bos_token"] = add_bos;
  if (meta.has("tokenizer.chat_template")) config["chat_template"] = meta.get_string("tokenizer.chat_template");
  json post = byte_level(true, false);
  if (add_bos) post = bos_template(special_map["bos_token"].get<std::string>(), vocab);
  json tokenizer = {{"version", "1.0"},
                    {"truncation", nullptr},
                    {"padding", nullptr},
                    {"added_tokens", added},
                    {"normalizer", nullptr},
                    {"pre_tokenizer", pre_tokenizer_for(meta)},
                    {"post_processor", post},
                    {"decoder", byte_level(true, true)},
                    {"model",
                     {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
                      {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
                      {"ignore_merges", false}, {"vocab", vocab}, {"merges", merges}}}};
  write_json_file_atomic(dir / "tokenizer.json", tokenizer);
  write_json_file_atomic(dir / "tokenizer_config.json", config);
  write_json_file_atomic(dir / "special_tokens_map.json", special_map);
}

}  // namespace sqz::io
