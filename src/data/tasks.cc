#include "data/tasks.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <numeric>
#include <random>
#include <string_view>

#include "core/error.h"
#include "core/format.h"
#include "core/log.h"
#include "io/json_file.h"

namespace sqz::data {

namespace {

void shuffle_order(std::vector<int64_t>& order, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
}

}  // namespace

const std::vector<TaskSpec>& tasks() {
  static const std::vector<TaskSpec> all = {
      {"lm-books", TaskKind::kLanguageModel, "train.txt", "dev.txt"},
      {"spam", TaskKind::kClassification, "train.jsonl", "dev.jsonl"},
      {"sotu-party", TaskKind::kClassification, "train.jsonl", "dev.jsonl"},
      {"wordnet-supersense", TaskKind::kClassification, "train.jsonl", "dev.jsonl"},
      {"cmudict-g2p", TaskKind::kSeq2Seq, "train.jsonl", "dev.jsonl"},
  };
  return all;
}

const TaskSpec& find_task(const std::string& name) {
  std::string known;
  for (const auto& t : tasks()) {
    if (t.name == name) return t;
    known += (known.empty() ? "" : ", ") + t.name;
  }
  fail_invalid("unknown task '", name, "' (known: ", known, ")");
}

const char* task_kind_name(TaskKind kind) {
  switch (kind) {
    case TaskKind::kLanguageModel: return "language-modelling";
    case TaskKind::kClassification: return "classification";
    case TaskKind::kSeq2Seq: return "seq2seq";
  }
  return "?";
}

namespace {

// Calls `row(object, line_no)` for each non-blank line of a JSONL file; errors name the file and
// line (not JSON, a missing string field via string_field), and an empty file is refused.
void for_each_jsonl(const fs::path& path, const std::function<void(const io::json&, int64_t)>& row) {
  std::ifstream in(path);
  if (!in) fail_not_found(path.string(), ": cannot open");
  std::string line;
  int64_t line_no = 0, rows = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    io::json j;
    try {
      j = io::json::parse(line);
    } catch (const io::json::parse_error& e) {
      fail_data(path.string(), ":", line_no, ": not valid JSON (", e.what(), ")");
    }
    row(j, line_no);
    ++rows;
  }
  if (rows == 0) fail_data(path.string(), ": no examples (empty file)");
}

std::string string_field(const io::json& j, const char* name, const fs::path& path, int64_t line_no) {
  if (!j.contains(name) || !j[name].is_string()) fail_data(path.string(), ":", line_no, ": missing string field '", name, "'");
  return j[name].get<std::string>();
}

}  // namespace

std::vector<TextExample> read_classification_jsonl(const fs::path& path) {
  std::vector<TextExample> out;
  for_each_jsonl(path, [&](const io::json& j, int64_t line_no) {
    TextExample ex;
    if (j.contains("text_a")) {
      ex.text = string_field(j, "text_a", path, line_no);
      ex.text_b = string_field(j, "text_b", path, line_no);
    } else {
      ex.text = string_field(j, "text", path, line_no);
    }
    ex.label = string_field(j, "label", path, line_no);
    out.push_back(std::move(ex));
  });
  return out;
}

std::string read_lm_text(const fs::path& path) {
  std::string text = read_text_file(path);
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) fail_data(path.string(), ": no text (empty file)");
  return text;
}

LabelSet::LabelSet(const std::vector<TextExample>& train) {
  std::set<std::string> seen;
  for (const auto& e : train) seen.insert(e.label);
  *this = LabelSet(std::vector<std::string>(seen.begin(), seen.end()));
}

LabelSet::LabelSet(std::vector<std::string> names) : names_(std::move(names)) {
  for (size_t i = 0; i < names_.size(); ++i) ids_[names_[i]] = static_cast<int64_t>(i);
}

int64_t LabelSet::id(const std::string& label, const std::string& where) const {
  auto it = ids_.find(label);
  if (it == ids_.end()) {
    std::string known;
    for (const auto& n : names_) known += (known.empty() ? "" : ", ") + n;
    fail_data(where, ": label '", label, "' never occurs in training (known: ", known.substr(0, 300), ")");
  }
  return it->second;
}

ClassificationData::ClassificationData(const std::vector<TextExample>& examples, const io::Tokenizer& tok,
                                       const LabelSet& labels, int64_t max_length, const std::string& source,
                                       dist::Group* group) {
  auto pad = tok.special_id("pad");
  if (!pad) pad = tok.special_id("eos");
  pad_id_ = pad.value_or(0);
  for (size_t i = 0; i < examples.size(); ++i)
    labels_.push_back(labels.id(examples[i].label, source + ": example " + std::to_string(i + 1)));
  // A record: the ids' length, the ids, the token types.
  auto records = encode_sharded(
      static_cast<int64_t>(examples.size()),
      [&](int64_t i) {
        const auto& e = examples[static_cast<size_t>(i)];
        auto enc = tok.encode(e.text, e.text_b.empty() ? nullptr : &e.text_b, max_length);
        Record r{static_cast<int64_t>(enc.ids.size())};
        r.insert(r.end(), enc.ids.begin(), enc.ids.end());
        r.insert(r.end(), enc.type_ids.begin(), enc.type_ids.end());
        return r;
      },
      group, source);
  for (const auto& r : records) {
    const auto ids_end = r.begin() + 1 + r[0];
    ids_.emplace_back(r.begin() + 1, ids_end);
    types_.emplace_back(ids_end, r.end());
  }
  order_.resize(ids_.size());
  std::iota(order_.begin(), order_.end(), 0);
}

std::vector<Record> encode_sharded(int64_t n, const std::function<Record(int64_t)>& encode, dist::Group* group,
                                   const std::string& what) {
  std::vector<Record> records(static_cast<size_t>(n));
  const int size = group ? group->size() : 1, rank = group ? group->rank() : 0;
  const auto [begin, end] = dist::shard(n, rank, size);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = begin; i < end; ++i) records[static_cast<size_t>(i)] = encode(i);
  if (size == 1) return records;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // This rank's part as one flat tensor: its records' lengths, then their ids.
  std::vector<int64_t> flat;
  for (int64_t i = begin; i < end; ++i) flat.push_back(static_cast<int64_t>(records[static_cast<size_t>(i)].size()));
  for (int64_t i = begin; i < end; ++i) flat.insert(flat.end(), records[static_cast<size_t>(i)].begin(), records[static_cast<size_t>(i)].end());
  log_info(what, ": tokenized units [", begin, ", ", end, ") of ", n, " on this rank (", format_fixed(seconds, 2),
           " s), the rest on the other ", size - 1, size == 2 ? " rank" : " ranks", ", gathered");
  const torch::Tensor all =
      group->gather_all(torch::from_blob(flat.data(), {static_cast<int64_t>(flat.size())}, torch::kLong).clone());
  const int64_t* v = all.data_ptr<int64_t>();
  int64_t at = 0;
  for (int q = 0; q < size; ++q) {
    const auto [b, e] = dist::shard(n, q, size);
    const int64_t* lengths = v + at;
    at += e - b;
    for (int64_t i = b; i < e; ++i) {
      const int64_t len = lengths[i - b];
      if (q != rank) records[static_cast<size_t>(i)].assign(v + at, v + at + len);
      at += len;
    }
  }
  if (at != all.numel()) fail_data("encode_sharded: the ranks' parts of ", what, " hold ", all.numel(), " values, expected ", at);
  return records;
}

std::vector<Seq2SeqExample> read_seq2seq_jsonl(const fs::path& path) {
  std::vector<Seq2SeqExample> out;
  for_each_jsonl(path, [&](const io::json& j, int64_t line_no) {
    out.push_back({string_field(j, "source", path, line_no), string_field(j, "target", path, line_no)});
  });
  return out;
}

void ClassificationData::shuffle(uint64_t seed) { shuffle_order(order_, seed); }

Batch ClassificationData::batch(int64_t begin, int64_t end) const {
  end = std::min(end, size());
  int64_t b = end - begin, t = 0;
  for (int64_t i = begin; i < end; ++i) t = std::max<int64_t>(t, ids_[order_[i]].size());
  Batch out{torch::full({b, t}, pad_id_, torch::kLong), torch::zeros({b, t}, torch::kLong), torch::zeros({b, t}, torch::kLong),
            torch::empty({b}, torch::kLong)};
  auto ids = out.input_ids.accessor<int64_t, 2>();
  auto mask = out.attention_mask.accessor<int64_t, 2>();
  auto types = out.token_type_ids.accessor<int64_t, 2>();
  auto labels = out.labels.accessor<int64_t, 1>();
  for (int64_t r = 0; r < b; ++r) {
    int64_t ex = order_[begin + r];
    for (size_t j = 0; j < ids_[ex].size(); ++j) {
      ids[r][j] = ids_[ex][j];
      mask[r][j] = 1;
      types[r][j] = types_[ex][j];
    }
    labels[r] = labels_[ex];
  }
  return out;
}

Batch batch_rows(const Batch& b, int64_t begin, int64_t end) {
  auto rows = [&](const torch::Tensor& t) { return t.defined() ? t.slice(0, begin, end) : t; };
  return {rows(b.input_ids), rows(b.attention_mask), rows(b.token_type_ids), rows(b.labels), rows(b.decoder_input_ids), b.whole};
}

torch::Tensor real_positions(const Batch& b) {
  return b.decoder_input_ids.defined() ? b.labels.ne(-100) : b.attention_mask.to(torch::kBool);
}

LmData::LmData(const std::string& text, const io::Tokenizer& tok, int64_t block_size, dist::Group* group) : block_(block_size) {
  if (block_size < 2) fail_invalid("language modelling needs a block size of at least 2, got ", block_size);
  bytes_ = static_cast<int64_t>(text.size());
  // Documents are separated by blank lines; each is tokenized with the tokenizer's own special
  // tokens (e.g. [CLS] .. [SEP] for BERT), then streamed.
  std::vector<std::string_view> docs;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find("\n\n", start);
    if (end == std::string::npos) end = text.size();
    std::string_view doc(text.data() + start, end - start);
    if (doc.find_first_not_of(" \t\r\n") != std::string_view::npos) docs.push_back(doc);
    start = end + 2;
  }
  const auto eos = tok.special_id("eos");
  auto records = encode_sharded(
      static_cast<int64_t>(docs.size()),
      [&](int64_t i) {
        Record ids = tok.encode(std::string(docs[static_cast<size_t>(i)])).ids;
        if (eos && (ids.empty() || ids.back() != *eos)) ids.push_back(*eos);
        return ids;
      },
      group, "language-modelling text");
  for (const auto& ids : records) stream_.insert(stream_.end(), ids.begin(), ids.end());
  int64_t n = num_tokens() / block_;
  if (n == 0) fail_data("language-modelling text has ", num_tokens(), " tokens, fewer than one block of ", block_);
  order_.resize(n);
  std::iota(order_.begin(), order_.end(), 0);
}

void LmData::shuffle(uint64_t seed) { shuffle_order(order_, seed); }

Batch LmData::batch(int64_t begin, int64_t end) const {
  end = std::min(end, num_blocks());
  int64_t b = end - begin;
  Batch out{torch::empty({b, block_}, torch::kLong), torch::ones({b, block_}, torch::kLong), {}, {}};
  for (int64_t r = 0; r < b; ++r)
    std::copy_n(stream_.begin() + order_[begin + r] * block_, block_, out.input_ids[r].data_ptr<int64_t>());
  return out;
}

Seq2SeqData::Seq2SeqData(const std::vector<Seq2SeqExample>& examples, const io::Tokenizer& tok, int64_t max_length,
                         int64_t decoder_start_token_id, const std::string& source, dist::Group* group)
    : decoder_start_(decoder_start_token_id) {
  auto pad = tok.special_id("pad");
  if (!pad) fail_invalid(source, ": seq2seq batches need the tokenizer's pad token");
  pad_id_ = *pad;
  // A record: the source's length, the source's ids, the target's.
  auto records = encode_sharded(
      static_cast<int64_t>(examples.size()),
      [&](int64_t i) {
        const auto& e = examples[static_cast<size_t>(i)];
        auto src = tok.encode(e.source, nullptr, max_length).ids, tgt = tok.encode(e.target, nullptr, max_length).ids;
        Record r{static_cast<int64_t>(src.size())};
        r.insert(r.end(), src.begin(), src.end());
        r.insert(r.end(), tgt.begin(), tgt.end());
        return r;
      },
      group, source);
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    const auto src_end = r.begin() + 1 + r[0];
    sources_.emplace_back(r.begin() + 1, src_end);
    targets_.emplace_back(src_end, r.end());
    if (sources_.back().empty() || targets_.back().empty())
      fail_data(source, ": example ", i + 1, " has an empty source or target after tokenization");
  }
  order_.resize(sources_.size());
  std::iota(order_.begin(), order_.end(), 0);
}

void Seq2SeqData::shuffle(uint64_t seed) { shuffle_order(order_, seed); }

Batch Seq2SeqData::batch(int64_t begin, int64_t end) const {
  end = std::min(end, size());
  const int64_t b = end - begin;
  int64_t ts = 0, tt = 0;
  for (int64_t i = begin; i < end; ++i) {
    ts = std::max<int64_t>(ts, sources_[order_[i]].size());
    tt = std::max<int64_t>(tt, targets_[order_[i]].size());
  }
  Batch out{torch::full({b, ts}, pad_id_, torch::kLong), torch::zeros({b, ts}, torch::kLong), {},
            torch::full({b, tt}, int64_t{-100}, torch::kLong), torch::full({b, tt}, pad_id_, torch::kLong)};
  auto ids = out.input_ids.accessor<int64_t, 2>();
  auto mask = out.attention_mask.accessor<int64_t, 2>();
  auto labels = out.labels.accessor<int64_t, 2>();
  auto dec = out.decoder_input_ids.accessor<int64_t, 2>();
  for (int64_t r = 0; r < b; ++r) {
    const auto& src = sources_[order_[begin + r]];
    const auto& tgt = targets_[order_[begin + r]];
    for (size_t j = 0; j < src.size(); ++j) {
      ids[r][j] = src[j];
      mask[r][j] = 1;
    }
    dec[r][0] = decoder_start_;
    for (size_t j = 0; j < tgt.size(); ++j) {
      labels[r][j] = tgt[j];
      if (j + 1 < static_cast<size_t>(tt)) dec[r][j + 1] = tgt[j];
    }
  }
  return out;
}

}  // namespace sqz::data
