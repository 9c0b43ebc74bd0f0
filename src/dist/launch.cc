#include "dist/launch.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>

#include "core/error.h"

extern char** environ;

namespace sqz::dist {

namespace {

// A port nobody listens on at 127.0.0.1 right now (the kernel's pick; rank 0 binds it next).
int free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    fail_invalid("--nproc: cannot find a free port on 127.0.0.1 (", std::strerror(errno), ")");
  ::close(fd);
  return ntohs(a.sin_port);
}

std::vector<pid_t> g_children;
void forward_signal(int sig) {
  for (pid_t p : g_children)
    if (p > 0) ::kill(p, sig);  // finished ranks are -1, and kill(-1) would reach every process
}

std::string describe(int status) {
  return WIFSIGNALED(status) ? "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")"
                             : "exited with status " + std::to_string(WEXITSTATUS(status));
}

int exit_code(int status) { return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status); }

pid_t spawn_rank(const std::vector<std::string>& argv, const std::vector<std::string>& env, bool quiet) {
  std::vector<char*> a, e;
  for (auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
  a.push_back(nullptr);
  for (auto& s : env) e.push_back(const_cast<char*>(s.c_str()));
  e.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (quiet) posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, a.data(), e.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) fail_invalid("--nproc: cannot start a rank (", std::strerror(rc), ")");
  return pid;
}

}  // namespace

std::vector<std::string> without_nproc(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--nproc") {
      ++i;
      continue;
    }
    if (args[i].rfind("--nproc=", 0) == 0) continue;
    out.push_back(args[i]);
  }
  return out;
}

int local_world_size() {
  const char* v = std::getenv("SQZ_LOCAL_WORLD_SIZE");
  return v && std::atoi(v) > 0 ? std::atoi(v) : 1;
}

int launch_local_ranks(const std::vector<std::string>& args, int nproc, int timeout_s) {
  if (nproc < 1) fail_invalid("--nproc ", nproc, ": expected a number >= 1");
  const std::string master = "127.0.0.1:" + std::to_string(free_loopback_port());
  std::vector<std::string> env;
  for (char** p = environ; *p; ++p)
    if (std::strncmp(*p, "SQZ_LOCAL_WORLD_SIZE=", 21) != 0) env.emplace_back(*p);
  env.push_back("SQZ_LOCAL_WORLD_SIZE=" + std::to_string(nproc));
  std::cerr << "sqz: launching " << nproc << " ranks (group at " << master << ")" << std::endl;
  struct sigaction forward{}, old_int{}, old_term{};
  forward.sa_handler = forward_signal;
  sigaction(SIGINT, &forward, &old_int);
  sigaction(SIGTERM, &forward, &old_term);
  for (int r = 0; r < nproc; ++r) {
    std::vector<std::string> argv{"sqz"};
    argv.insert(argv.end(), args.begin(), args.end());
    for (const std::string& s : {std::string("--rank"), std::to_string(r), std::string("--world-size"), std::to_string(nproc),
                                 std::string("--master"), master, std::string("--dist-timeout"), std::to_string(timeout_s)})
      argv.push_back(s);
    g_children.push_back(spawn_rank(argv, env, /*quiet=*/r != 0));
  }
  int result = 0;
  size_t running = g_children.size();
  auto deadline = std::chrono::steady_clock::time_point::max();
  while (running > 0) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        std::cerr << "sqz: ranks still running " << timeout_s + 30 << " s after a rank failed: terminating them" << std::endl;
        forward_signal(SIGKILL);
        deadline = std::chrono::steady_clock::time_point::max();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    --running;
    int rank = 0;
    for (size_t i = 0; i < g_children.size(); ++i)
      if (g_children[i] == pid) rank = static_cast<int>(i), g_children[i] = -1;
    if (status != 0 && result == 0) {
      std::cerr << "sqz: rank " << rank << " " << describe(status) << "; the other ranks stop at their next collective" << std::endl;
      result = exit_code(status);
      deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s + 30);
    }
  }
  g_children.clear();
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  return result;
}

}  // namespace sqz::dist
