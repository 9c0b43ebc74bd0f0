#include "io/tokenizers/sentencepiece.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "build_paths.h"
#include "core/error.h"
#include "io/json_file.h"

extern char** environ;

namespace sqz::io {

class SpmHelperProcess {
 public:
  SpmHelperProcess(const fs::path& helper, const fs::path& model) : model_(model.string()) {
    int to_child[2], from_child[2];
    if (pipe(to_child) != 0 || pipe(from_child) != 0) fail_invalid(model_, ": cannot create pipes for the SentencePiece helper");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, to_child[0], 0);
    posix_spawn_file_actions_adddup2(&actions, from_child[1], 1);
    posix_spawn_file_actions_addclose(&actions, to_child[1]);
    posix_spawn_file_actions_addclose(&actions, from_child[0]);
    std::string exe = helper.string(), arg = model.string();
    char* argv[] = {exe.data(), arg.data(), nullptr};
    int rc = posix_spawn(&pid_, exe.c_str(), &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(to_child[0]);
    close(from_child[1]);
    if (rc != 0) {
      close(to_child[1]);
      close(from_child[0]);
      fail_not_found(exe, ": cannot start the SentencePiece helper (", std::strerror(rc), "); set SQZ_SPM_HELPER");
    }
    // A helper that dies must not kill us with SIGPIPE.
    signal(SIGPIPE, SIG_IGN);
    out_ = fdopen(to_child[1], "w");
    in_ = fdopen(from_child[0], "r");
    json hello = read_reply();
    if (hello.contains("error")) fail_data(model_, ": not a valid SentencePiece model (", hello["error"].get<std::string>(), ")");
  }

  ~SpmHelperProcess() {
    if (out_) fclose(out_);
    if (in_) fclose(in_);
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
  }

  json call(const json& request) {
    std::string line = request.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    if (fwrite(line.data(), 1, line.size(), out_) != line.size() || fflush(out_) != 0)
      fail_invalid(model_, ": the SentencePiece helper stopped");
    json reply = read_reply();
    if (reply.contains("error")) fail_invalid(model_, ": SentencePiece: ", reply["error"].get<std::string>());
    return reply;
  }

 private:
  json read_reply() {
    std::string line;
    int c;
    while ((c = fgetc(in_)) != EOF && c != '\n') line += static_cast<char>(c);
    if (line.empty()) fail_invalid(model_, ": the SentencePiece helper exited without answering");
    return json::parse(line);
  }

  std::string model_;
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  FILE* in_ = nullptr;
};

fs::path spm_helper_path() {
  if (const char* env = std::getenv("SQZ_SPM_HELPER")) return env;
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && fs::exists(self.parent_path() / "sqz-spm-helper")) return self.parent_path() / "sqz-spm-helper";
  return SQZ_SPM_HELPER_BUILD_PATH;
}

SentencePieceTokenizer::SentencePieceTokenizer(const fs::path& dir) {
  fs::path model = fs::exists(dir / "tokenizer.model") ? dir / "tokenizer.model" : dir / "spiece.model";
  source_ = model.string();
  helper_ = std::make_unique<SpmHelperProcess>(spm_helper_path(), model);
  auto pieces = helper_->call({{"op", "vocab"}})["pieces"].get<std::vector<std::string>>();
  for (size_t i = 0; i < pieces.size(); ++i) add_token(pieces[i], static_cast<int64_t>(i));
  // HF's Llama defaults when the config does not say otherwise.
  special_["unk"] = "<unk>";
  special_["bos"] = "<s>";
  special_["eos"] = "</s>";
  load_common(dir);
  if (fs::exists(dir / "tokenizer_config.json")) {
    JsonFields c = JsonFields::from_file(dir / "tokenizer_config.json");
    add_bos_ = c.get_bool("add_bos_token", true);
    add_eos_ = c.get_bool("add_eos_token", false);
  }
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::vector<std::string> SentencePieceTokenizer::tokenize_chunk(const std::string& chunk) const {
  return helper_->call({{"op", "encode"}, {"text", chunk}})["pieces"].get<std::vector<std::string>>();
}

std::vector<int64_t> SentencePieceTokenizer::with_special_tokens(const std::vector<int64_t>& a, const std::vector<int64_t>* b,
                                                                 std::vector<int64_t>* type_ids) const {
  std::vector<int64_t> ids;
  auto add_one = [&](const std::vector<int64_t>& seq) {
    if (add_bos_ && special_id("bos")) ids.push_back(*special_id("bos"));
    ids.insert(ids.end(), seq.begin(), seq.end());
    if (add_eos_ && special_id("eos")) ids.push_back(*special_id("eos"));
  };
  add_one(a);
  if (b) add_one(*b);
  if (type_ids) type_ids->assign(ids.size(), 0);
  return ids;
}

std::string SentencePieceTokenizer::tokens_to_string(const std::vector<std::string>& tokens) const {
  return helper_->call({{"op", "decode"}, {"pieces", tokens}})["text"].get<std::string>();
}

}  // namespace sqz::io
