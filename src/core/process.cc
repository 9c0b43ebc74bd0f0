#include "core/process.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

namespace sqz {

int run_process(const std::vector<std::string>& argv_in, const std::vector<std::string>& extra_env, const fs::path& log) {
  if (argv_in.empty()) return -1;
  std::vector<std::string> args = argv_in, env;
  for (const auto& x : extra_env)
    if (x.find('=') != std::string::npos) env.push_back(x);
  for (char** e = environ; *e; ++e) {
    const std::string entry(*e);
    bool replaced = false;
    for (const auto& x : extra_env) {
      const size_t eq = x.find('=');
      replaced |= entry.rfind(eq == std::string::npos ? x + "=" : x.substr(0, eq + 1), 0) == 0;
    }
    if (!replaced) env.push_back(entry);
  }
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  for (auto& e : env) envp.push_back(e.data());
  argv.push_back(nullptr);
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (log.empty()) {
    posix_spawn_file_actions_adddup2(&actions, 2, 1);
  } else {
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
  }
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0].c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string log_tail(const fs::path& log, size_t max_chars) {
  try {
    std::string text = read_text_file(log);
    return text.size() > max_chars ? "..." + text.substr(text.size() - max_chars) : text;
  } catch (const std::exception&) {
    return "";
  }
}

}  // namespace sqz
