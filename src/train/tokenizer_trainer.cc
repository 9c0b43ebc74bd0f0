#include "train/tokenizer_trainer.h"

#include <map>
#include <queue>
#include <set>
#include <unordered_map>

#include "core/error.h"
#include "io/json_file.h"
#include "io/tokenizers/byte_bpe.h"
#include "io/tokenizers/unicode.h"
#include "io/tokenizers/wordpiece.h"

namespace sqz::train {

namespace {

using Pair = std::pair<int32_t, int32_t>;

struct PairHash {
  size_t operator()(const Pair& p) const { return std::hash<int64_t>()((int64_t(p.first) << 32) | uint32_t(p.second)); }
};

// BPE over a weighted word list. Symbols are strings; `join` builds a merged symbol (WordPiece
// drops the "##" of the right side). Pair counts are updated incrementally and the best pair
// comes from a lazy max-heap, so training a few thousand merges over 10 MB takes seconds.
struct BpeResult {
  std::vector<std::string> symbols;                      // id -> string, alphabet first
  std::vector<std::pair<std::string, std::string>> merges;
};

BpeResult run_bpe(const std::map<std::vector<std::string>, int64_t>& word_counts, std::vector<std::string> alphabet,
                  int64_t max_symbols, int64_t min_frequency,
                  const std::function<std::string(const std::string&, const std::string&)>& join) {
  BpeResult r;
  std::unordered_map<std::string, int32_t> id_of;
  auto intern = [&](const std::string& s) {
    auto it = id_of.find(s);
    if (it != id_of.end()) return it->second;
    int32_t id = static_cast<int32_t>(r.symbols.size());
    r.symbols.push_back(s);
    id_of.emplace(s, id);
    return id;
  };
  std::sort(alphabet.begin(), alphabet.end());
  for (const auto& a : alphabet) intern(a);
  std::vector<std::vector<int32_t>> words;
  std::vector<int64_t> counts;
  for (const auto& [w, c] : word_counts) {
    std::vector<int32_t> ids;
    for (const auto& sym : w) ids.push_back(intern(sym));
    words.push_back(std::move(ids));
    counts.push_back(c);
  }
  std::unordered_map<Pair, int64_t, PairHash> pair_count;
  std::unordered_map<Pair, std::set<int32_t>, PairHash> where;
  for (size_t w = 0; w < words.size(); ++w)
    for (size_t i = 0; i + 1 < words[w].size(); ++i) {
      Pair p{words[w][i], words[w][i + 1]};
      pair_count[p] += counts[w];
      where[p].insert(static_cast<int32_t>(w));
    }
  // Heap entries: count, then the lexicographically smaller pair of strings wins ties.
  auto cmp = [&](const std::pair<int64_t, Pair>& a, const std::pair<int64_t, Pair>& b) {
    if (a.first != b.first) return a.first < b.first;
    return std::tie(r.symbols[a.second.first], r.symbols[a.second.second]) >
           std::tie(r.symbols[b.second.first], r.symbols[b.second.second]);
  };
  std::priority_queue<std::pair<int64_t, Pair>, std::vector<std::pair<int64_t, Pair>>, decltype(cmp)> heap(cmp);
  for (const auto& [p, c] : pair_count) heap.push({c, p});
  while (static_cast<int64_t>(r.symbols.size()) < max_symbols && !heap.empty()) {
    auto [count, best] = heap.top();
    heap.pop();
    auto it = pair_count.find(best);
    if (it == pair_count.end() || it->second != count) continue;  // stale entry
    if (count < min_frequency) break;
    std::string merged = join(r.symbols[best.first], r.symbols[best.second]);
    int32_t new_id = intern(merged);
    r.merges.emplace_back(r.symbols[best.first], r.symbols[best.second]);
    std::set<Pair> touched;
    for (int32_t w : std::set<int32_t>(where[best])) {
      auto& ids = words[w];
      int64_t c = counts[w];
      for (size_t i = 0; i + 1 < ids.size(); ++i) {
        Pair p{ids[i], ids[i + 1]};
        pair_count[p] -= c;
        touched.insert(p);
      }
      std::vector<int32_t> next;
      for (size_t i = 0; i < ids.size();) {
        if (i + 1 < ids.size() && ids[i] == best.first && ids[i + 1] == best.second) {
          next.push_back(new_id);
          i += 2;
        } else {
          next.push_back(ids[i++]);
        }
      }
      ids.swap(next);
      for (size_t i = 0; i + 1 < ids.size(); ++i) {
        Pair p{ids[i], ids[i + 1]};
        pair_count[p] += c;
        where[p].insert(w);
        touched.insert(p);
      }
    }
    for (const auto& p : touched) {
      auto pc = pair_count.find(p);
      if (pc == pair_count.end()) continue;
      if (pc->second <= 0) {
        pair_count.erase(pc);
        where.erase(p);
      } else {
        heap.push({pc->second, p});
      }
    }
  }
  return r;
}

void write_special_tokens_map(const fs::path& dir, const io::json& map) {
  io::write_json_file_atomic(dir / "special_tokens_map.json", map);
}

}  // namespace

void train_byte_bpe_tokenizer(const std::string& text, const TokenizerTrainOptions& o, const fs::path& out_dir) {
  std::map<std::vector<std::string>, int64_t> words;
  for (const auto& w : io::gpt2_pre_tokenize(text)) {
    std::vector<std::string> syms;
    for (char32_t c : io::unicode::decode_utf8(w)) syms.push_back(io::unicode::encode_utf8(c));
    ++words[syms];
  }
  // Every byte is in the alphabet, so any text can be encoded.
  std::vector<std::string> alphabet;
  for (int b = 0; b < 256; ++b) alphabet.push_back(io::gpt2_byte_symbol(static_cast<uint8_t>(b)));
  const std::string eos = "<|endoftext|>";
  auto bpe = run_bpe(words, alphabet, o.vocab_size - 1, o.min_frequency,
                     [](const std::string& a, const std::string& b) { return a + b; });
  io::json vocab = io::json::object();
  for (size_t i = 0; i < bpe.symbols.size(); ++i) vocab[bpe.symbols[i]] = i;
  int64_t eos_id = static_cast<int64_t>(bpe.symbols.size());
  vocab[eos] = eos_id;
  fs::create_directories(out_dir);
  io::write_json_file_atomic(out_dir / "vocab.json", vocab);
  std::string merges = "#version: 0.2\n";
  for (const auto& [a, b] : bpe.merges) merges += a + " " + b + "\n";
  write_file_atomic(out_dir / "merges.txt", merges);
  io::json added = {{std::to_string(eos_id),
                     {{"content", eos}, {"lstrip", false}, {"normalized", true}, {"rstrip", false}, {"single_word", false}, {"special", true}}}};
  io::write_json_file_atomic(out_dir / "tokenizer_config.json",
                             {{"tokenizer_class", "GPT2Tokenizer"}, {"add_prefix_space", false}, {"add_bos_token", false},
                              {"bos_token", eos}, {"eos_token", eos}, {"unk_token", eos}, {"pad_token", nullptr},
                              {"added_tokens_decoder", added}, {"model_max_length", o.model_max_length},
                              {"clean_up_tokenization_spaces", false}, {"errors", "replace"}});
  write_special_tokens_map(out_dir, {{"bos_token", eos}, {"eos_token", eos}, {"unk_token", eos}});
}

void train_wordpiece_tokenizer(const std::string& text, const TokenizerTrainOptions& o, const fs::path& out_dir) {
  const std::vector<std::string> specials = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  std::map<std::vector<std::string>, int64_t> words;
  std::set<std::string> alphabet;
  for (const auto& w : io::bert_basic_tokenize(text, {})) {
    std::vector<std::string> syms;
    bool first = true;
    for (char32_t c : io::unicode::decode_utf8(w)) {
      syms.push_back((first ? "" : "##") + io::unicode::encode_utf8(c));
      first = false;
      alphabet.insert(syms.back());
    }
    ++words[syms];
  }
  auto bpe = run_bpe(words, std::vector<std::string>(alphabet.begin(), alphabet.end()),
                     o.vocab_size - static_cast<int64_t>(specials.size()), o.min_frequency,
                     [](const std::string& a, const std::string& b) { return a + (b.rfind("##", 0) == 0 ? b.substr(2) : b); });
  std::string vocab;
  for (const auto& s : specials) vocab += s + "\n";
  for (const auto& s : bpe.symbols) vocab += s + "\n";
  fs::create_directories(out_dir);
  write_file_atomic(out_dir / "vocab.txt", vocab);
  io::json added = io::json::object();
  for (size_t i = 0; i < specials.size(); ++i)
    added[std::to_string(i)] = {{"content", specials[i]}, {"lstrip", false}, {"normalized", false}, {"rstrip", false},
                                {"single_word", false}, {"special", true}};
  io::write_json_file_atomic(out_dir / "tokenizer_config.json",
                             {{"tokenizer_class", "BertTokenizer"}, {"do_lower_case", true}, {"do_basic_tokenize", true},
                              {"tokenize_chinese_chars", true}, {"strip_accents", nullptr}, {"unk_token", "[UNK]"},
                              {"sep_token", "[SEP]"}, {"pad_token", "[PAD]"}, {"cls_token", "[CLS]"}, {"mask_token", "[MASK]"},
                              {"added_tokens_decoder", added}, {"model_max_length", o.model_max_length},
                              {"clean_up_tokenization_spaces", true}});
  write_special_tokens_map(out_dir, {{"unk_token", "[UNK]"}, {"sep_token", "[SEP]"}, {"pad_token", "[PAD]"},
                                     {"cls_token", "[CLS]"}, {"mask_token", "[MASK]"}});
}

}  // namespace sqz::train
