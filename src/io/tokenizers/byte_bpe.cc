#include "io/tokenizers/byte_bpe.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <fstream>
#include <limits>

#include "core/error.h"
#include "io/json_file.h"
#include "io/tokenizers/unicode.h"

namespace sqz::io {

namespace {

// GPT-2's pre-tokenizer pattern (contractions, letters, numbers, other, whitespace).
const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to 256 + n.
const std::vector<char32_t>& byte_code_points() {
  static const std::vector<char32_t> table = [] {
    std::vector<char32_t> t(256);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[b] = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
    }
    return t;
  }();
  return table;
}

struct Gpt2Regex {
  pcre2_code* code;
  Gpt2Regex() {
    int err = 0;
    PCRE2_SIZE offset = 0;
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kGpt2Pattern), PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err,
                         &offset, nullptr);
    SQZ_CHECK(code != nullptr, "GPT-2 pre-tokenizer regex failed to compile (PCRE2 error ", err, ")");
  }
  ~Gpt2Regex() { pcre2_code_free(code); }
};

// Whether a tokenizer.json pre-tokenizer (alone or in a Sequence) splits every digit on its own.
bool splits_digits(const json& pre) {
  if (!pre.is_object()) return false;
  if (pre.value("type", "") == "Digits") return pre.value("individual_digits", false);
  if (pre.value("type", "") == "Sequence" && pre.contains("pretokenizers") && pre["pretokenizers"].is_array())
    for (const auto& p : pre["pretokenizers"])
      if (splits_digits(p)) return true;
  return false;
}

// Digits(individual_digits): each numeric code point becomes a piece of its own.
std::vector<std::string> split_each_digit(const std::string& text) {
  std::vector<std::string> pieces;
  std::string run;
  for (char32_t c : unicode::decode_utf8(text)) {
    if (unicode::is_numeric(c)) {
      if (!run.empty()) pieces.push_back(std::move(run));
      run.clear();
      pieces.push_back(unicode::encode_utf8(c));
    } else {
      run += unicode::encode_utf8(c);
    }
  }
  if (!run.empty()) pieces.push_back(std::move(run));
  return pieces;
}

}  // namespace

std::string gpt2_byte_symbol(uint8_t byte) { return unicode::encode_utf8(byte_code_points()[byte]); }

std::vector<std::string> gpt2_pre_tokenize(const std::string& text) {
  static const Gpt2Regex regex;
  std::string chunk = unicode::replace_invalid_utf8(text);
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(regex.code, nullptr);
  std::vector<std::string> out;
  PCRE2_SIZE start = 0;
  while (start < chunk.size()) {
    int rc = pcre2_match(regex.code, reinterpret_cast<PCRE2_SPTR>(chunk.data()), chunk.size(), start, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc < 0) break;
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    if (ov[1] == ov[0]) {
      start = ov[1] + 1;
      continue;
    }
    std::string mapped;
    for (size_t i = ov[0]; i < ov[1]; ++i) mapped += unicode::encode_utf8(byte_code_points()[static_cast<uint8_t>(chunk[i])]);
    out.push_back(std::move(mapped));
    start = ov[1];
  }
  pcre2_match_data_free(md);
  return out;
}

ByteBpeTokenizer::ByteBpeTokenizer(const fs::path& dir) {
  for (int b = 0; b < 256; ++b) unicode_to_byte_[byte_code_points()[b]] = static_cast<uint8_t>(b);
  std::vector<std::pair<std::string, std::string>> merges;
  if (fs::exists(dir / "vocab.json") && fs::exists(dir / "merges.txt")) {
    source_ = (dir / "vocab.json").string();
    json vocab = read_json_file(dir / "vocab.json");
    if (!vocab.is_object()) fail_data(source_, ": expected an object of token -> id");
    for (auto& [tok, id] : vocab.items()) {
      if (!id.is_number_integer()) fail_data(source_, ": id of token '", tok, "' is not an integer");
      add_token(tok, id.get<int64_t>());
    }
    std::ifstream in(dir / "merges.txt");
    std::string line;
    int64_t line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
      auto space = line.find(' ');
      if (space == std::string::npos || space == 0 || space + 1 >= line.size())
        fail_data((dir / "merges.txt").string(), ":", line_no, ": expected two tokens separated by a space, got '", line, "'");
      merges.emplace_back(line.substr(0, space), line.substr(space + 1));
    }
  } else {
    source_ = (dir / "tokenizer.json").string();
    json tj = read_json_file(dir / "tokenizer.json");
    if (!tj.contains("model") || !tj["model"].contains("vocab") || !tj["model"].contains("merges"))
      fail_data(source_, ": expected model.vocab and model.merges (a BPE tokenizer)");
    if (!tj["model"]["vocab"].is_object()) fail_data(source_, ": model.vocab must be an object of token -> id");
    for (auto& [tok, id] : tj["model"]["vocab"].items()) {
      if (!id.is_number_integer()) fail_data(source_, ": model.vocab id of token '", tok, "' is not an integer");
      add_token(tok, id.get<int64_t>());
    }
    for (const auto& m : tj["model"]["merges"]) {
      if (m.is_string()) {
        std::string s = m.get<std::string>();
        auto space = s.find(' ');
        if (space == std::string::npos) fail_data(source_, ": merge '", s, "' lacks a space");
        merges.emplace_back(s.substr(0, space), s.substr(space + 1));
      } else if (m.is_array() && m.size() == 2) {
        merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      } else {
        fail_data(source_, ": merges entries must be strings or pairs");
      }
    }
    split_digits_ = splits_digits(tj.value("pre_tokenizer", json()));
    if (tj.contains("added_tokens") && tj["added_tokens"].is_array())
      for (const auto& t : tj["added_tokens"]) {
        // An entry without its id or content would silently become token 0 or the empty string.
        if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() || !t.contains("content") || !t["content"].is_string())
          fail_data(source_, ": added_tokens entry ", t.dump(), " needs an integer 'id' and a string 'content'");
        AddedToken a{t["content"].get<std::string>(), t["id"].get<int64_t>(), t.value("special", true), t.value("lstrip", false),
                     t.value("rstrip", false)};
        add_token(a.content, a.id);
        added_.push_back(a);
      }
  }
  for (size_t i = 0; i < merges.size(); ++i) merge_rank_.emplace(merges[i], static_cast<int64_t>(i));
  load_common(dir);
  if (fs::exists(dir / "tokenizer_config.json")) {
    JsonFields c = JsonFields::from_file(dir / "tokenizer_config.json");
    add_prefix_space_ = c.get_bool("add_prefix_space", false);
    add_bos_ = c.get_bool("add_bos_token", false);
  }
}

std::string ByteBpeTokenizer::prepare(const std::string& text) const {
  return add_prefix_space_ ? " " + text : text;
}

std::vector<std::string> ByteBpeTokenizer::bpe(const std::string& word) const {
  std::vector<std::string> parts;
  for (char32_t c : unicode::decode_utf8(word)) parts.push_back(unicode::encode_utf8(c));
  while (parts.size() > 1) {
    int64_t best_rank = std::numeric_limits<int64_t>::max();
    std::pair<std::string, std::string> best;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      auto it = merge_rank_.find({parts[i], parts[i + 1]});
      if (it != merge_rank_.end() && it->second < best_rank) {
        best_rank = it->second;
        best = it->first;
      }
    }
    if (best_rank == std::numeric_limits<int64_t>::max()) break;
    std::vector<std::string> merged;
    for (size_t i = 0; i < parts.size();) {
      if (i + 1 < parts.size() && parts[i] == best.first && parts[i + 1] == best.second) {
        merged.push_back(parts[i] + parts[i + 1]);
        i += 2;
      } else {
        merged.push_back(parts[i++]);
      }
    }
    parts.swap(merged);
  }
  return parts;
}

std::vector<std::string> ByteBpeTokenizer::tokenize_chunk(const std::string& chunk) const {
  std::vector<std::string> out;
  for (const auto& part : split_digits_ ? split_each_digit(chunk) : std::vector<std::string>{chunk})
    for (const auto& word : gpt2_pre_tokenize(part))
      for (auto& piece : bpe(word)) out.push_back(std::move(piece));
  return out;
}

std::vector<int64_t> ByteBpeTokenizer::with_special_tokens(const std::vector<int64_t>& a, const std::vector<int64_t>* b,
                                                           std::vector<int64_t>* type_ids) const {
  std::vector<int64_t> ids;
  auto bos = special_id("bos");
  if (add_bos_ && bos) ids.push_back(*bos);
  ids.insert(ids.end(), a.begin(), a.end());
  if (b) {
    if (add_bos_ && bos) ids.push_back(*bos);
    ids.insert(ids.end(), b->begin(), b->end());
  }
  if (type_ids) type_ids->assign(ids.size(), 0);
  return ids;
}

std::string ByteBpeTokenizer::tokens_to_string(const std::vector<std::string>& tokens) const {
  std::string bytes;
  for (const auto& t : tokens)
    for (char32_t c : unicode::decode_utf8(t)) {
      auto it = unicode_to_byte_.find(c);
      if (it != unicode_to_byte_.end()) bytes += static_cast<char>(it->second);
      else bytes += unicode::encode_utf8(c);
    }
  return unicode::replace_invalid_utf8(bytes);
}

}  // namespace sqz::io
