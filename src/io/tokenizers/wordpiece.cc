#include "io/tokenizers/wordpiece.h"

#include <fstream>

#include "core/error.h"
#include "io/json_file.h"
#include "io/tokenizers/unicode.h"

namespace sqz::io {

namespace {

// HF's WordpieceTokenizer maps longer words to [UNK] without trying.
constexpr size_t kMaxCharsPerWord = 100;

std::vector<std::string> split_whitespace(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (char32_t c : unicode::decode_utf8(text)) {
    if (unicode::is_whitespace(c)) {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += unicode::encode_utf8(c);
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

}  // namespace

WordPieceTokenizer::WordPieceTokenizer(const fs::path& dir) {
  source_ = (dir / "vocab.txt").string();
  std::ifstream in(dir / "vocab.txt");
  if (!in) fail_not_found(source_, ": cannot open");
  std::string line;
  int64_t id = 0;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // HF strips the trailing newline only; duplicate lines keep the last id, as HF's dict does.
    add_token(line, id++);
  }
  if (id == 0) fail_data(source_, ": empty vocabulary");
  load_common(dir);
  if (fs::exists(dir / "tokenizer_config.json")) {
    JsonFields c = JsonFields::from_file(dir / "tokenizer_config.json");
    basic_options_.lowercase = c.get_bool("do_lower_case", true);
    if (c.has("strip_accents")) basic_options_.strip_accents = c.get_bool("strip_accents");
    basic_options_.chinese_chars = c.get_bool("tokenize_chinese_chars", true);
    basic_ = c.get_bool("do_basic_tokenize", true);
  }
  if (!special_.count("unk")) special_["unk"] = "[UNK]";
}

std::vector<std::string> bert_basic_tokenize(const std::string& text, const BasicTokenizeOptions& o) {
  std::string cleaned;
  for (char32_t c : unicode::decode_utf8(text)) {
    if (c == 0 || c == 0xFFFD || unicode::is_control(c)) continue;
    if (unicode::is_whitespace(c)) {
      cleaned += ' ';
    } else if (o.chinese_chars && unicode::is_cjk(c)) {
      cleaned += ' ' + unicode::encode_utf8(c) + ' ';
    } else {
      cleaned += unicode::encode_utf8(c);
    }
  }
  std::vector<std::string> out;
  for (std::string token : split_whitespace(unicode::nfc(cleaned))) {
    bool strip = o.strip_accents.value_or(o.lowercase);
    if (o.lowercase) token = unicode::lower(token);
    if (strip) {
      std::string kept;
      for (char32_t c : unicode::decode_utf8(unicode::nfd(token)))
        if (!unicode::is_mark_nonspacing(c)) kept += unicode::encode_utf8(c);
      token = kept;
    }
    std::string cur;
    for (char32_t c : unicode::decode_utf8(token)) {
      if (unicode::is_punctuation(c)) {
        if (!cur.empty()) out.push_back(cur);
        cur.clear();
        out.push_back(unicode::encode_utf8(c));
      } else {
        cur += unicode::encode_utf8(c);
      }
    }
    if (!cur.empty()) out.push_back(cur);
  }
  return out;
}

void WordPieceTokenizer::wordpiece(const std::string& word, std::vector<std::string>& out) const {
  const std::string unk = special_.at("unk");
  std::vector<char32_t> chars = unicode::decode_utf8(word);
  if (chars.size() > kMaxCharsPerWord) {
    out.push_back(unk);
    return;
  }
  std::vector<std::string> pieces;
  size_t start = 0;
  while (start < chars.size()) {
    size_t end = chars.size();
    std::string found;
    while (start < end) {
      std::string sub = unicode::encode_utf8(std::vector<char32_t>(chars.begin() + start, chars.begin() + end));
      if (start > 0) sub = "##" + sub;
      if (vocab_.count(sub)) {
        found = sub;
        break;
      }
      --end;
    }
    if (found.empty()) {
      out.push_back(unk);
      return;
    }
    pieces.push_back(found);
    start = end;
  }
  out.insert(out.end(), pieces.begin(), pieces.end());
}

std::vector<std::string> WordPieceTokenizer::tokenize_chunk(const std::string& chunk) const {
  std::vector<std::string> out;
  auto words = basic_ ? bert_basic_tokenize(chunk, basic_options_) : split_whitespace(chunk);
  for (const auto& w : words) wordpiece(w, out);
  return out;
}

std::vector<int64_t> WordPieceTokenizer::with_special_tokens(const std::vector<int64_t>& a, const std::vector<int64_t>* b,
                                                             std::vector<int64_t>* type_ids) const {
  auto cls = special_id("cls"), sep = special_id("sep");
  if (!cls || !sep) fail_data(source_, ": [CLS] and [SEP] tokens are required for BERT-style inputs");
  std::vector<int64_t> ids{*cls};
  ids.insert(ids.end(), a.begin(), a.end());
  ids.push_back(*sep);
  size_t first = ids.size();
  if (b) {
    ids.insert(ids.end(), b->begin(), b->end());
    ids.push_back(*sep);
  }
  if (type_ids) {
    type_ids->assign(ids.size(), 0);
    for (size_t i = first; i < ids.size(); ++i) (*type_ids)[i] = 1;
  }
  return ids;
}

std::string WordPieceTokenizer::tokens_to_string(const std::vector<std::string>& tokens) const {
  std::string text;
  for (size_t i = 0; i < tokens.size(); ++i) text += (i ? " " : "") + tokens[i];
  for (size_t pos = text.find(" ##"); pos != std::string::npos; pos = text.find(" ##", pos)) text.erase(pos, 3);
  return text;
}

}  // namespace sqz::io
