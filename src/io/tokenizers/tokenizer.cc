#include "io/tokenizers/tokenizer.h"

#include <algorithm>

#include "core/error.h"
#include "io/json_file.h"
#include "io/tokenizers/byte_bpe.h"
#include "io/tokenizers/sentencepiece.h"
#include "io/tokenizers/wordpiece.h"

namespace sqz::io {

namespace {

const char* kRoles[] = {"bos", "eos", "unk", "pad", "cls", "sep", "mask"};

std::string token_content(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return "";
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) s.replace(pos, from.size(), to);
}

}  // namespace

std::string clean_up_tokenization(const std::string& text) {
  std::string s = text;
  for (const char* p : {" .", " ?", " !", " ,"}) replace_all(s, p, std::string(p + 1));
  replace_all(s, " ' ", "'");
  for (const char* p : {" n't", " 'm", " 's", " 've", " 're"}) replace_all(s, p, std::string(p + 1));
  return s;
}

void Tokenizer::add_token(const std::string& content, int64_t id) {
  if (id < 0) fail_data(source_, ": token '", content, "' has negative id ", id);
  // The id table is as long as the largest id: one absurd id must not allocate gigabytes.
  if (id >= kMaxTokenId) fail_data(source_, ": token '", content, "' has id ", id, "; ids must be below ", kMaxTokenId);
  vocab_[content] = id;
  if (static_cast<size_t>(id) >= id_to_token_.size()) id_to_token_.resize(id + 1);
  id_to_token_[id] = content;
}

void Tokenizer::load_common(const fs::path& dir) {
  json config = json::object();
  if (fs::exists(dir / "tokenizer_config.json")) config = read_json_object(dir / "tokenizer_config.json");
  json special_map = json::object();
  if (fs::exists(dir / "special_tokens_map.json")) special_map = read_json_object(dir / "special_tokens_map.json");
  for (const char* role : kRoles) {
    std::string key = std::string(role) + "_token";
    std::string v = special_map.contains(key) ? token_content(special_map[key]) : "";
    if (v.empty() && config.contains(key)) v = token_content(config[key]);
    if (!v.empty()) special_[role] = v;
  }
  if (config.contains("added_tokens_decoder") && config["added_tokens_decoder"].is_object()) {
    for (auto& [id_text, tok] : config["added_tokens_decoder"].items()) {
      if (!tok.is_object())
        fail_data((dir / "tokenizer_config.json").string(), ": added_tokens_decoder['", id_text, "'] must be an object");
      AddedToken t;
      t.content = token_content(tok);
      try {
        t.id = std::stoll(id_text);
      } catch (...) {
        fail_data((dir / "tokenizer_config.json").string(), ": added_tokens_decoder key '", id_text, "' is not an id");
      }
      t.special = tok.value("special", true);
      t.lstrip = tok.value("lstrip", false);
      t.rstrip = tok.value("rstrip", false);
      if (!vocab_.count(t.content) || vocab_[t.content] != t.id) add_token(t.content, t.id);
      added_.push_back(t);
    }
  }
  // Special tokens of the map that the vocab holds are split out too, as HF registers them.
  for (const auto& [role, content] : special_) {
    bool known = std::any_of(added_.begin(), added_.end(), [&](const AddedToken& t) { return t.content == content; });
    if (!known && vocab_.count(content)) added_.push_back({content, vocab_[content], true, false, false});
  }
  clean_up_spaces_ = config.value("clean_up_tokenization_spaces", false);
  // HF writes 1e30 (a float, or an integer above int64) for "no limit": only an int64 is a limit.
  const json& max_length = config.contains("model_max_length") ? config["model_max_length"] : json();
  if (max_length.is_number_integer() && !(max_length.is_number_unsigned() && max_length.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)))
    model_max_length_ = max_length.get<int64_t>();
}

std::vector<std::string> Tokenizer::tokenize(const std::string& text_in) const {
  std::string text = prepare(text_in);
  // Split on added tokens, longest match at the earliest position.
  std::vector<std::pair<std::string, const AddedToken*>> parts;
  size_t start = 0, pos = 0;
  while (pos < text.size()) {
    const AddedToken* best = nullptr;
    for (const auto& t : added_)
      if (!t.content.empty() && text.compare(pos, t.content.size(), t.content) == 0 &&
          (!best || t.content.size() > best->content.size()))
        best = &t;
    if (!best) {
      ++pos;
      continue;
    }
    if (pos > start) parts.emplace_back(text.substr(start, pos - start), nullptr);
    parts.emplace_back(best->content, best);
    pos += best->content.size();
    start = pos;
  }
  if (start < text.size()) parts.emplace_back(text.substr(start), nullptr);
  for (size_t i = 0; i < parts.size(); ++i) {
    const AddedToken* t = parts[i].second;
    if (!t) continue;
    auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
    if (t->rstrip && i + 1 < parts.size() && !parts[i + 1].second) {
      auto& s = parts[i + 1].first;
      s.erase(s.begin(), std::find_if(s.begin(), s.end(), [&](char c) { return !is_space(c); }));
    }
    if (t->lstrip && i > 0 && !parts[i - 1].second) {
      auto& s = parts[i - 1].first;
      s.erase(std::find_if(s.rbegin(), s.rend(), [&](char c) { return !is_space(c); }).base(), s.end());
    }
  }
  std::vector<std::string> out;
  for (const auto& [chunk, tok] : parts) {
    if (tok) {
      out.push_back(chunk);
    } else if (!chunk.empty()) {
      auto pieces = tokenize_chunk(chunk);
      out.insert(out.end(), pieces.begin(), pieces.end());
    }
  }
  return out;
}

std::vector<int64_t> Tokenizer::with_special_tokens(const std::vector<int64_t>& a, const std::vector<int64_t>* b,
                                                    std::vector<int64_t>* type_ids) const {
  std::vector<int64_t> ids = a;
  if (b) ids.insert(ids.end(), b->begin(), b->end());
  if (type_ids) type_ids->assign(ids.size(), 0);
  return ids;
}

int64_t Tokenizer::num_special_tokens(bool pair) const {
  std::vector<int64_t> empty;
  return static_cast<int64_t>(with_special_tokens(empty, pair ? &empty : nullptr, nullptr).size());
}

Encoding Tokenizer::encode(const std::string& text, const std::string* pair, std::optional<int64_t> max_length) const {
  auto to_ids = [&](const std::string& t) {
    std::vector<int64_t> ids;
    for (const auto& tok : tokenize(t)) {
      auto id = token_to_id(tok);
      if (!id) id = special_id("unk");
      if (!id) fail_data(source_, ": token '", tok, "' is not in the vocabulary and there is no unk token");
      ids.push_back(*id);
    }
    return ids;
  };
  std::vector<int64_t> a = to_ids(text), b;
  if (pair) b = to_ids(*pair);
  if (max_length) {
    int64_t budget = *max_length - num_special_tokens(pair != nullptr);
    if (budget < 0) budget = 0;
    // longest_first: trim the longer sequence one token at a time.
    while (static_cast<int64_t>(a.size() + b.size()) > budget) {
      if (b.size() > a.size()) b.pop_back();
      else a.pop_back();
    }
  }
  Encoding e;
  e.ids = with_special_tokens(a, pair ? &b : nullptr, &e.type_ids);
  return e;
}

BatchEncoding Tokenizer::encode_batch(const std::vector<std::string>& texts, const std::vector<std::string>* pairs,
                                      int64_t max_length) const {
  std::vector<Encoding> encs;
  size_t longest = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    encs.push_back(encode(texts[i], pairs ? &(*pairs)[i] : nullptr, max_length));
    longest = std::max(longest, encs.back().ids.size());
  }
  auto pad = special_id("pad");
  if (!pad) pad = special_id("eos");
  int64_t pad_id = pad.value_or(0);
  BatchEncoding out;
  out.batch = static_cast<int64_t>(texts.size());
  out.length = static_cast<int64_t>(longest);
  const size_t cells = texts.size() * longest;
  out.input_ids.assign(cells, pad_id);
  out.attention_mask.assign(cells, 0);
  out.token_type_ids.assign(cells, 0);
  for (size_t i = 0; i < encs.size(); ++i)
    for (size_t j = 0; j < encs[i].ids.size(); ++j) {
      out.input_ids[i * longest + j] = encs[i].ids[j];
      out.attention_mask[i * longest + j] = 1;
      out.token_type_ids[i * longest + j] = encs[i].type_ids[j];
    }
  return out;
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  // As the slow tokenizers: runs of ordinary tokens become text, added tokens stay verbatim,
  // and the parts are joined by single spaces.
  std::vector<std::string> parts, run;
  auto flush = [&] {
    if (!run.empty()) parts.push_back(tokens_to_string(run));
    run.clear();
  };
  for (int64_t id : ids) {
    std::string tok = id_to_token(id);
    auto it = std::find_if(added_.begin(), added_.end(), [&](const AddedToken& t) { return t.id == id; });
    if (it != added_.end()) {
      if (skip_special_tokens && it->special) continue;
      flush();
      parts.push_back(tok);
    } else {
      run.push_back(tok);
    }
  }
  flush();
  std::string text;
  for (size_t i = 0; i < parts.size(); ++i) text += (i ? " " : "") + parts[i];
  return clean_up_spaces_ ? clean_up_tokenization(text) : text;
}

int64_t Tokenizer::vocab_size() const { return static_cast<int64_t>(id_to_token_.size()); }

std::optional<int64_t> Tokenizer::token_to_id(const std::string& token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

std::string Tokenizer::id_to_token(int64_t id) const {
  if (id < 0 || id >= vocab_size()) fail_invalid(source_, ": token id ", id, " is outside the vocabulary [0, ", vocab_size(), ")");
  return id_to_token_[id];
}

std::optional<int64_t> Tokenizer::special_id(const std::string& role) const {
  auto it = special_.find(role);
  if (it == special_.end()) return std::nullopt;
  return token_to_id(it->second);
}

int copy_tokenizer_files(const fs::path& from, const fs::path& to) {
  int n = 0;
  for (const char* f : {"vocab.txt", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer.model", "spiece.model",
                        "tokenizer_config.json", "special_tokens_map.json"})
    if (fs::exists(from / f)) {
      fs::copy_file(from / f, to / f, fs::copy_options::overwrite_existing);
      ++n;
    }
  return n;
}

namespace {

std::unique_ptr<Tokenizer> construct_tokenizer(const fs::path& dir) {
  if (fs::exists(dir / "vocab.txt")) return std::make_unique<WordPieceTokenizer>(dir);
  if (fs::exists(dir / "tokenizer.model") || fs::exists(dir / "spiece.model")) return std::make_unique<SentencePieceTokenizer>(dir);
  if ((fs::exists(dir / "vocab.json") && fs::exists(dir / "merges.txt")) || fs::exists(dir / "tokenizer.json"))
    return std::make_unique<ByteBpeTokenizer>(dir);
  fail_not_found(dir.string(), ": no tokenizer files (expected vocab.txt, vocab.json + merges.txt, tokenizer.json or tokenizer.model)");
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const fs::path& dir) {
  try {
    return construct_tokenizer(dir);
  } catch (const json::exception& e) {
    // The readers name the field where they check one; a value of another JSON type than the one
    // read (found by fuzzing) still gets the dir and nlohmann's description instead of a crash.
    fail_data(dir.string(), ": a tokenizer file holds a value of the wrong JSON type (", e.what(), ")");
  }
}

}  // namespace sqz::io
