// sqz tokenize MODEL_DIR --text "..." | --file F: one JSON line of ids per text.
#include <fstream>
#include <iostream>

#include "cli/commands.h"
#include "io/json_file.h"
#include "io/tokenizers/tokenizer.h"

namespace sqz::cli {

namespace {

struct TokenizeArgs {
  std::string model_dir, file, pair;
  std::vector<std::string> texts;
  int64_t max_length = 0;
};

void run_tokenize(const TokenizeArgs& a) {
  auto tok = io::load_tokenizer(a.model_dir);
  std::vector<std::string> texts = a.texts;
  if (!a.file.empty()) {
    std::ifstream in(a.file);
    if (!in) fail_not_found(a.file, ": cannot open");
    std::string line;
    while (std::getline(in, line)) texts.push_back(line);
  }
  if (texts.empty()) fail_invalid("tokenize: give --text or --file");
  for (const auto& text : texts) {
    std::optional<int64_t> max_len;
    if (a.max_length > 0) max_len = a.max_length;
    auto enc = tok->encode(text, a.pair.empty() ? nullptr : &a.pair, max_len);
    io::json j = {{"text", text}, {"tokens", tok->tokenize(text)}, {"input_ids", enc.ids}};
    if (!a.pair.empty()) j["token_type_ids"] = enc.type_ids;
    std::cout << j.dump(-1, ' ', false, io::json::error_handler_t::replace) << "\n";
  }
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("tokenize", "Tokenize text with a model dir's tokenizer (JSON lines of ids)");
  auto a = std::make_shared<TokenizeArgs>();
  cmd->add_option("model_dir", a->model_dir, "Hugging Face model directory")->required();
  cmd->add_option("--text", a->texts, "text to tokenize (repeatable)");
  cmd->add_option("--file", a->file, "file with one text per line");
  cmd->add_option("--pair", a->pair, "second segment for every text (sentence pairs)");
  cmd->add_option("--max-length", a->max_length, "truncate to this many ids, special tokens included")->check(positive());
  cmd->callback([a] { run_tokenize(*a); });
}

}  // namespace sqz::cli
