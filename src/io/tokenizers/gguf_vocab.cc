#include "io/tokenizers/gguf_vocab.h"

#include <sstream>

#include "core/error.h"

namespace sqz::io {

namespace {

// llama.cpp's token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
constexpr int64_t kControl = 3, kUserDefined = 4;

// llama.cpp's special-token role names (tokenizer.ggml.<role>_token_id) and HF's for the same role.
const std::vector<std::pair<std::string, std::string>> kSpecialRoles = {
    {"bos", "bos"}, {"eos", "eos"}, {"unknown", "unk"}, {"padding", "pad"}, {"sep", "sep"}, {"cls", "cls"}, {"mask", "mask"}};

json byte_level(bool add_prefix_space, bool trim_offsets) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", add_prefix_space}, {"trim_offsets", trim_offsets}, {"use_regex", true}};
}

// The Hugging Face pre-tokenizer for llama.cpp's pre-tokenizer name.
json pre_tokenizer_for(const JsonFields& meta) {
  const std::string pre = meta.get_string("tokenizer.ggml.pre", "default");
  // "gpt-2" is llama.cpp's name; "gpt2" is what sqz wrote before it knew that.
  if (pre == "default" || pre == "gpt-2" || pre == "gpt2") return byte_level(false, true);
  if (pre == "smollm")  // digits one by one, then GPT-2's regex (SmolLM's own tokenizer.json)
    return {{"type", "Sequence"},
            {"pretokenizers", json::array({{{"type", "Digits"}, {"individual_digits", true}}, byte_level(false, true)})}};
  fail_unimplemented(meta.source(), ": tokenizer.ggml.pre '", pre, "' is not supported (supported: default, gpt-2, smollm)");
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
  for (const auto& [role, hf_role] : kSpecialRoles) {
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

namespace {

// The llama.cpp pre-tokenizer name of a tokenizer.json pre_tokenizer, as pre_tokenizer_for maps
// them back.
std::string gguf_pre_name(const json& pre, const std::string& where) {
  auto is_byte_level = [](const json& p) { return p.is_object() && p.value("type", "") == "ByteLevel" && p.value("use_regex", true); };
  if (is_byte_level(pre) && !pre.value("add_prefix_space", false)) return "gpt-2";  // llama.cpp's name
  if (pre.is_object() && pre.value("type", "") == "Sequence" && pre.contains("pretokenizers") && pre["pretokenizers"].size() == 2) {
    const auto& digits = pre["pretokenizers"][0];
    if (digits.value("type", "") == "Digits" && digits.value("individual_digits", false) && is_byte_level(pre["pretokenizers"][1]) &&
        !pre["pretokenizers"][1].value("add_prefix_space", false))
      return "smollm";
  }
  fail_unimplemented(where, ": pre_tokenizer ", pre.dump(), " has no llama.cpp name sqz knows (gpt-2: ByteLevel; smollm: Digits then ByteLevel)");
}

// "a b" merge strings from either tokenizer.json form (strings, or [a, b] pairs).
std::vector<std::string> merge_strings(const json& merges, const std::string& where) {
  std::vector<std::string> out;
  for (const auto& m : merges) {
    if (m.is_string()) out.push_back(m.get<std::string>());
    else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) out.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
    else fail_data(where, ": model.merges holds ", m.dump(), " (expected \"a b\" or [a, b])");
  }
  return out;
}

}  // namespace

std::vector<std::pair<std::string, GgufValue>> gguf_tokenizer_metadata(const fs::path& dir) {
  json vocab, added = json::array(), pre;
  std::vector<std::string> merges;
  std::string where;
  if (fs::exists(dir / "tokenizer.json")) {
    where = (dir / "tokenizer.json").string();
    const json t = read_json_file(dir / "tokenizer.json");
    if (!t.contains("model") || t["model"].value("type", "") != "BPE" || !t["model"].contains("vocab") || !t["model"]["vocab"].is_object())
      fail_unimplemented(where, ": only byte-level BPE tokenizers (model.type BPE) can be written to GGUF");
    vocab = t["model"]["vocab"];
    merges = merge_strings(t["model"].value("merges", json::array()), where);
    if (t.contains("added_tokens") && t["added_tokens"].is_array()) added = t["added_tokens"];
    pre = t.value("pre_tokenizer", json());
  } else if (fs::exists(dir / "vocab.json") && fs::exists(dir / "merges.txt")) {
    where = (dir / "vocab.json").string();
    vocab = read_json_file(dir / "vocab.json");
    std::istringstream lines(read_text_file(dir / "merges.txt"));
    for (std::string line; std::getline(lines, line);)
      if (!line.empty() && line.rfind("#version", 0) != 0) merges.push_back(line);
    pre = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  } else {
    fail_unimplemented(dir.string(), ": no byte-level BPE tokenizer (tokenizer.json, or vocab.json + merges.txt) to write to GGUF");
  }
  const JsonFields config = fs::exists(dir / "tokenizer_config.json") ? JsonFields::from_file(dir / "tokenizer_config.json")
                                                                     : JsonFields(json::object(), (dir / "tokenizer_config.json").string());
  for (const auto& a : added)  // added tokens may lie outside model.vocab
    if (a.contains("id") && a.contains("content")) vocab[a["content"].get<std::string>()] = a["id"];
  const int64_t n = static_cast<int64_t>(vocab.size());
  std::vector<std::string> tokens(n);
  std::vector<int32_t> types(n, 1);
  std::vector<bool> seen(n, false);
  for (const auto& [tok, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= n || seen[id.get<int64_t>()])
      fail_data(where, ": token '", tok, "' has id ", id.dump(), "; GGUF needs the ids 0..", n - 1, " once each");
    tokens[id.get<int64_t>()] = tok;
    seen[id.get<int64_t>()] = true;
  }
  for (const auto& a : added)
    if (a.contains("id")) types[a["id"].get<int64_t>()] = a.value("special", false) ? kControl : kUserDefined;
  std::vector<std::pair<std::string, GgufValue>> out = {
      {"tokenizer.ggml.model", std::string("gpt2")}, {"tokenizer.ggml.pre", gguf_pre_name(pre, where)},
      {"tokenizer.ggml.tokens", tokens}, {"tokenizer.ggml.token_type", types}, {"tokenizer.ggml.merges", merges}};
  // Special tokens by their HF role, named in tokenizer_config.json (a string or {"content": ...}).
  for (const auto& [gguf_role, hf_role] : kSpecialRoles) {
    const std::string key = hf_role + "_token";
    if (!config.has(key) || config.value()[key].is_null()) continue;
    const json& v = config.value()[key];
    const std::string content = v.is_object() ? v.value("content", "") : v.is_string() ? v.get<std::string>() : "";
    if (!vocab.contains(content)) config.fail_field(key, "a token of the vocabulary");
    out.emplace_back("tokenizer.ggml." + gguf_role + "_token_id", static_cast<uint32_t>(vocab[content].get<int64_t>()));
  }
  out.emplace_back("tokenizer.ggml.add_bos_token", config.get_bool("add_bos_token", false));
  if (config.has("chat_template") && config.value()["chat_template"].is_string())
    out.emplace_back("tokenizer.chat_template", config.get_string("chat_template"));
  return out;
}

}  // namespace sqz::io
