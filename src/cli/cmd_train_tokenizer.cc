// sqz train-tokenizer --kind wordpiece|bpe --input FILE --vocab-size N --out DIR
#include <iostream>

#include "cli/commands.h"
#include "core/error.h"
#include "io/tokenizers/tokenizer.h"
#include "train/tokenizer_trainer.h"

namespace sqz::cli {

namespace {

struct TokArgs {
  std::string kind, input, out;
  train::TokenizerTrainOptions options;
  bool overwrite = false;
};

void run(const TokArgs& a) {
  std::string text = read_text_file(a.input);
  if (a.options.vocab_size < 300) fail_invalid("--vocab-size must be at least 300, got ", a.options.vocab_size);
  StagingDir staging(a.out, a.overwrite);
  if (a.kind == "bpe") train::train_byte_bpe_tokenizer(text, a.options, staging.path());
  else if (a.kind == "wordpiece") train::train_wordpiece_tokenizer(text, a.options, staging.path());
  else fail_invalid("--kind must be 'bpe' or 'wordpiece', got '", a.kind, "'");
  auto tok = io::load_tokenizer(staging.path());
  staging.commit();
  std::cout << "wrote " << a.out << ": " << a.kind << " tokenizer, " << tok->vocab_size() << " tokens\n";
}

}  // namespace

void add_train_tokenizer_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train-tokenizer", "Train a WordPiece or byte-level BPE tokenizer and save HF files");
  auto a = std::make_shared<TokArgs>();
  cmd->add_option("--kind", a->kind, "wordpiece (BERT) or bpe (GPT-2 byte-level)")->required();
  cmd->add_option("--input", a->input, "training text")->required()->check(CLI::ExistingFile);
  cmd->add_option("--vocab-size", a->options.vocab_size, "vocabulary size, special tokens included")->check(positive());
  cmd->add_option("--min-frequency", a->options.min_frequency, "minimum pair count for a merge")->check(positive());
  cmd->add_option("--model-max-length", a->options.model_max_length, "tokenizer_config model_max_length")->check(positive());
  cmd->add_option("--out", a->out, "output directory")->required();
  cmd->add_flag("--overwrite", a->overwrite, "replace an existing output directory");
  cmd->callback([a] { run(*a); });
}

}  // namespace sqz::cli
