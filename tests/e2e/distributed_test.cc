// Data-parallel runs as a user starts them: 2 local ranks (--nproc) train like 1 process and
// evaluate to the same result; manual ranks (--rank/--world-size/--master) as on two hosts,
// also in two network namespaces when the test may make them; a killed or frozen rank stops
// the other with a named error inside the timeout, the checkpoint stays whole and --resume goes
// on; ranks that differ are refused; the group listens only on the address it was given.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "io/json_file.h"
#include "unit/test_util.h"

namespace sqz {
namespace {

using Clock = std::chrono::steady_clock;

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t n = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
  close(fd);
  return ntohs(a.sin_port);
}

// The GPT-2 fixture with dropout off: ranks draw their dropout masks from one seed, so only a
// model without dropout can follow the single process's curve step for step.
fs::path dropout_free_gpt2(const fs::path& dir) {
  fs::copy(testing::fixtures_dir() / "gpt2-lm" / "model", dir, fs::copy_options::recursive);
  auto config = io::read_json_object(dir / "config.json");
  for (const char* key : {"attn_pdrop", "embd_pdrop", "resid_pdrop"}) config[key] = 0.0;
  io::write_json_file_atomic(dir / "config.json", config);
  return dir;
}

fs::path write_recipe(const testing::ScratchDir& tmp, const std::string& extra = "") {
  const fs::path model = tmp / "gpt2";
  if (!fs::exists(model)) dropout_free_gpt2(model);
  const std::string recipe = "model: " + model.string() + "\ntask: lm-books\ndata: " + (testing::shared_dir() / "data" / "lm-books").string() +
                             "\nmax_length: 32\nbatch_size: 8\nsteps: 6\neval_every: 3\nsave_every: 3\nlr: 0.003\nwarmup_steps: 2\n"
                             "threads: 1\neval_batches: 4\nout: " + (tmp / "run").string() + "\n" + extra;
  write_file_atomic(tmp / "r.yaml", recipe);
  return tmp / "r.yaml";
}

std::vector<std::string> rank_args(int rank, int port, int timeout_s) {
  return {"--rank", std::to_string(rank), "--world-size", "2", "--master", "127.0.0.1:" + std::to_string(port), "--dist-timeout",
          std::to_string(timeout_s)};
}

std::vector<std::string> cat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The exit status of `pid` once it ends, or -1 when it is still running after `seconds`.
int wait_for_exit(pid_t pid, double seconds) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  int status = 0;
  while (Clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

bool wait_for_file(const fs::path& p, double seconds) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  while (!fs::exists(p) && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return fs::exists(p);
}

// Two manual ranks (as on two hosts) on a free loopback port, each with its own arguments, its
// stderr in dir/r0.log and dir/r1.log. A rank still running when the test ends is killed.
class TwoRanks {
 public:
  TwoRanks(const fs::path& dir, const std::vector<std::string>& args0, const std::vector<std::string>& args1, int timeout_s)
      : dir_(dir), port_(free_port()) {
    pid_[0] = testing::spawn_sqz(cat(args0, rank_args(0, port_, timeout_s)), dir / "r0.log");
    pid_[1] = testing::spawn_sqz(cat(args1, rank_args(1, port_, timeout_s)), dir / "r1.log");
  }
  ~TwoRanks() {
    for (int r : {0, 1}) signal(r, SIGKILL), wait(r, 10);
  }
  bool started() const { return pid_[0] > 0 && pid_[1] > 0; }
  pid_t pid(int rank) const { return pid_[rank]; }
  int port() const { return port_; }
  void signal(int rank, int sig) const {
    if (pid_[rank] > 0 && !ended_[rank]) kill(pid_[rank], sig);
  }
  // Rank `rank`'s exit status once it ends, or -1 when it still runs after `seconds`.
  int wait(int rank, double seconds) {
    if (ended_[rank] || pid_[rank] <= 0) return status_[rank];
    status_[rank] = wait_for_exit(pid_[rank], seconds);
    ended_[rank] = status_[rank] != -1;
    return status_[rank];
  }
  std::string log(int rank) const { return read_text_file(dir_ / ("r" + std::to_string(rank) + ".log")); }

 private:
  fs::path dir_;
  int port_;
  pid_t pid_[2] = {-1, -1};
  int status_[2] = {-1, -1};
  bool ended_[2] = {false, false};
};

void expect_same_curve(const std::vector<io::json>& one, const std::vector<io::json>& two, double rel) {
  ASSERT_EQ(one.size(), two.size());
  for (size_t i = 0; i < one.size(); ++i) {
    EXPECT_EQ(one[i]["step"], two[i]["step"]);
    for (const char* key : {"train_loss", "perplexity"}) {
      const double a = one[i][key].get<double>(), b = two[i][key].get<double>();
      EXPECT_NEAR(b, a, rel * std::abs(a)) << key << " at step " << one[i]["step"];
    }
  }
}

TEST(Distributed, TwoLocalRanksTrainLikeOneProcess) {
  testing::ScratchDir tmp("dist");
  const fs::path recipe = write_recipe(tmp);
  auto one = testing::run_sqz("train --recipe " + recipe.string() + " --set out=" + (tmp / "one").string());
  ASSERT_EQ(one.code, 0) << one.output;
  auto two = testing::run_sqz("train --recipe " + recipe.string() + " --set out=" + (tmp / "two").string() + " --nproc 2");
  ASSERT_EQ(two.code, 0) << two.output;
  EXPECT_NE(two.output.find("launching 2 ranks"), std::string::npos) << two.output;
  // Rank 1's progress and messages stay off the terminal: one summary line, from rank 0.
  EXPECT_EQ(two.output.find("rank 1"), std::string::npos) << two.output;
  EXPECT_NE(two.output.find("\"ranks\":2"), std::string::npos) << two.output;
  // The same global batch of 8 (4 per rank) and seed: float sums in another order, nothing more.
  expect_same_curve(testing::read_json_lines(tmp / "one" / "train_log.jsonl"), testing::read_json_lines(tmp / "two" / "train_log.jsonl"), 1e-5);
  // The gradient sums started while backward ran (train::GradientBuckets), not after it.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(two.output, m, std::regex(R"((\d+) of (\d+) bucket sums started while backward still ran)"))) << two.output;
  EXPECT_GT(std::stoi(m[1]), 0) << m[0];
  EXPECT_GT(std::stoi(m[2]), 0) << m[0];
  // Each rank tokenized its half of the training text's documents (rank 0 speaks: [0, n/2)) and
  // gathered the other half; the curve above shows the gathered data is one process's.
  ASSERT_TRUE(std::regex_search(two.output, m, std::regex(R"(language-modelling text: tokenized units \[0, (\d+)\) of (\d+) on this rank \([0-9.]+ s\), the rest on the other 1 rank)")))
      << two.output;
  EXPECT_EQ(std::stoi(m[1]), std::stoi(m[2]) / 2) << m[0];
  // A batch that does not split over the ranks is refused before training.
  auto odd = testing::run_sqz("train --recipe " + recipe.string() + " --set out=" + (tmp / "odd").string() + " --set batch_size=7 --nproc 2");
  EXPECT_NE(odd.code, 0);
  EXPECT_NE(odd.output.find("batch_size"), std::string::npos) << odd.output;
  EXPECT_FALSE(fs::exists(tmp / "odd" / "train_log.jsonl"));
}

// Masked LM: the ranks' shares hold different numbers of masked targets (and padded rows of one
// batch different numbers of real tokens), so each share's mean divides by the whole batch's count.
TEST(Distributed, TwoLocalRanksTrainAMaskedLmLikeOneProcess) {
  testing::ScratchDir tmp("dist");
  fs::copy(testing::fixtures_dir() / "bert-mlm" / "model", tmp / "bert", fs::copy_options::recursive);
  auto config = io::read_json_object(tmp / "bert" / "config.json");
  for (const char* key : {"hidden_dropout_prob", "attention_probs_dropout_prob"}) config[key] = 0.0;
  io::write_json_file_atomic(tmp / "bert" / "config.json", config);
  write_file_atomic(tmp / "r.yaml", "model: " + (tmp / "bert").string() + "\ntask: lm-books\ndata: " +
                                        (testing::shared_dir() / "data" / "lm-books").string() +
                                        "\nobjective: mlm\nmax_length: 32\nbatch_size: 8\nsteps: 6\neval_every: 3\nsave_every: 3\nlr: 0.003\n"
                                        "warmup_steps: 2\nthreads: 1\neval_batches: 4\n");
  const std::string train = "train --recipe " + (tmp / "r.yaml").string();
  auto one = testing::run_sqz(train + " --set out=" + (tmp / "one").string());
  ASSERT_EQ(one.code, 0) << one.output;
  auto two = testing::run_sqz(train + " --set out=" + (tmp / "two").string() + " --nproc 2");
  ASSERT_EQ(two.code, 0) << two.output;
  expect_same_curve(testing::read_json_lines(tmp / "one" / "train_log.jsonl"), testing::read_json_lines(tmp / "two" / "train_log.jsonl"), 1e-5);
}

TEST(Distributed, EvalSplitsTheDevSetAndGathersOneResult) {
  const std::string base = "eval " + (fs::path(SQZ_SOURCE_DIR) / "models" / "bert-spam").string() + " --task spam --split " +
                           (testing::shared_dir() / "data" / "spam" / "dev.jsonl").string() + " --batch-size 16";
  // 7 batches over 2 ranks (4 + 3), and 1 batch (rank 1 scores nothing).
  for (const std::string limit : {" --max-batches 7", " --max-batches 1"}) {
    auto one = testing::run_sqz(base + limit), two = testing::run_sqz(base + limit + " --nproc 2");
    ASSERT_EQ(one.code, 0) << one.output;
    ASSERT_EQ(two.code, 0) << two.output;
    auto a = io::json::parse(one.output.substr(one.output.rfind('{'))), b = io::json::parse(two.output.substr(two.output.rfind('{')));
    EXPECT_EQ(a["examples"], b["examples"]);
    EXPECT_EQ(a["accuracy"], b["accuracy"]);
    EXPECT_EQ(a["macro_f1"], b["macro_f1"]);
    EXPECT_EQ(b["ranks"], 2);
  }
  auto lm = "eval " + (testing::fixtures_dir() / "gpt2-lm" / "model").string() + " --task lm-books --split " +
            (testing::shared_dir() / "data" / "lm-books" / "dev.txt").string() + " --max-length 32 --batch-size 8 --max-batches 5";
  auto one = testing::run_sqz(lm), two = testing::run_sqz(lm + " --nproc 2");
  ASSERT_EQ(one.code, 0) << one.output;
  ASSERT_EQ(two.code, 0) << two.output;
  const double p1 = io::json::parse(one.output.substr(one.output.rfind('{')))["perplexity"].get<double>();
  const double p2 = io::json::parse(two.output.substr(two.output.rfind('{')))["perplexity"].get<double>();
  EXPECT_NEAR(p2, p1, 1e-9 * p1);
  // Seq2seq: each rank tokenized half of the sources and targets; greedy decoding of its share.
  auto g2p = "eval " + (fs::path(SQZ_SOURCE_DIR) / "models" / "bart-g2p").string() + " --task cmudict-g2p --split " +
             (testing::shared_dir() / "data" / "cmudict-g2p" / "dev.jsonl").string() + " --batch-size 32 --max-batches 3";
  auto s1 = testing::run_sqz(g2p), s2 = testing::run_sqz(g2p + " --nproc 2");
  ASSERT_EQ(s1.code, 0) << s1.output;
  ASSERT_EQ(s2.code, 0) << s2.output;
  const auto a = io::json::parse(s1.output.substr(s1.output.rfind('{'))), b = io::json::parse(s2.output.substr(s2.output.rfind('{')));
  EXPECT_EQ(a["examples"], b["examples"]);
  EXPECT_EQ(a["wer"], b["wer"]);
  EXPECT_EQ(a["per"], b["per"]);
  EXPECT_NEAR(b["perplexity"].get<double>(), a["perplexity"].get<double>(), 1e-9 * a["perplexity"].get<double>());
  EXPECT_NE(s2.output.find("dev.jsonl: tokenized units [0, "), std::string::npos) << s2.output;
}

// Rank 1 is SIGKILLed mid-training (as the OOM killer would): rank 0 stops at once with a named
// error, the checkpoint it wrote is whole, and both ranks resume from it.
TEST(Distributed, KilledRankStopsTheOtherAndTheRunResumes) {
  testing::ScratchDir tmp("dist");
  const fs::path recipe = write_recipe(tmp);
  const std::vector<std::string> train{"train", "--recipe", recipe.string(), "--set", "steps=100000", "--set", "eval_every=100000"};
  TwoRanks ranks(tmp.path(), train, train, 20);
  ASSERT_TRUE(ranks.started());
  const fs::path state = tmp / "run" / "checkpoint" / "trainer_state.json";
  const bool saved = wait_for_file(state, 120);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ranks.signal(1, SIGKILL);
  const auto killed = Clock::now();
  ranks.wait(1, 10);
  const int status = ranks.wait(0, 40);
  const double stopped_after = std::chrono::duration<double>(Clock::now() - killed).count();
  ASSERT_TRUE(saved) << ranks.log(0);
  ASSERT_NE(status, -1) << "rank 0 still runs 40 s after rank 1 was killed";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0);
  const std::string log = ranks.log(0);
  EXPECT_NE(log.find("rank 0 of 2: another rank stopped or stopped answering"), std::string::npos) << log;
  EXPECT_LT(stopped_after, 20.0) << log;
  std::printf("rank 0 stopped %.2f s after rank 1 was killed\n", stopped_after);
  const int64_t at = io::read_json_file(state)["step"].get<int64_t>();
  auto resumed = testing::run_sqz("train --recipe " + recipe.string() + " --resume --nproc 2 --set steps=" + std::to_string(at + 3) +
                                  " --set eval_every=1000 --set save_every=1000");
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming from"), std::string::npos) << resumed.output;
  EXPECT_EQ(io::read_json_file(state)["step"].get<int64_t>(), at + 3);
}

// A rank that stops answering without closing its connections (SIGSTOP) is found by the timeout.
TEST(Distributed, FrozenRankEndsTheRunAtTheTimeout) {
  testing::ScratchDir tmp("dist");
  const fs::path recipe = write_recipe(tmp);
  const std::vector<std::string> train{"train", "--recipe", recipe.string(), "--set", "steps=100000", "--set", "eval_every=100000"};
  TwoRanks ranks(tmp.path(), train, train, 5);
  ASSERT_TRUE(ranks.started());
  const bool saved = wait_for_file(tmp / "run" / "checkpoint" / "trainer_state.json", 120);
  ranks.signal(1, SIGSTOP);
  const auto frozen = Clock::now();
  const int status = ranks.wait(0, 40);
  const double stopped_after = std::chrono::duration<double>(Clock::now() - frozen).count();
  ASSERT_TRUE(saved) << ranks.log(0);
  ASSERT_NE(status, -1) << "rank 0 still runs 40 s after rank 1 froze";
  const std::string log = ranks.log(0);
  EXPECT_NE(log.find("(timeout 5 s)"), std::string::npos) << log;
  EXPECT_GE(stopped_after, 4.0) << log;
  EXPECT_LT(stopped_after, 20.0) << log;
  std::printf("rank 0 stopped %.2f s after rank 1 froze (timeout 5 s)\n", stopped_after);
}

TEST(Distributed, RanksThatDifferAreRefusedByName) {
  testing::ScratchDir tmp("dist");
  const std::vector<std::string> train{"train", "--recipe", write_recipe(tmp).string()};
  TwoRanks ranks(tmp.path(), train, cat(train, {"--set", "lr=0.01"}), 20);
  ASSERT_TRUE(ranks.started());
  const int s0 = ranks.wait(0, 60), s1 = ranks.wait(1, 60);
  ASSERT_NE(s0, -1);
  ASSERT_NE(s1, -1);
  EXPECT_EQ(WEXITSTATUS(s0), 2);
  EXPECT_EQ(WEXITSTATUS(s1), 2);
  const std::string log0 = ranks.log(0), log1 = ranks.log(1);
  EXPECT_NE(log0.find("rank 1 runs another recipe than rank 0"), std::string::npos) << log0;
  EXPECT_NE(log0.find("rank 1: 'lr: 0.01'"), std::string::npos) << log0;
  EXPECT_NE(log1.find("sqz: rank 1: error"), std::string::npos) << log1;
  EXPECT_FALSE(fs::exists(tmp / "run"));
}

TEST(Distributed, BadGroupFlagsAreRefused) {
  testing::ScratchDir tmp("dist");
  const std::string train = "train --recipe " + write_recipe(tmp).string();
  const std::vector<std::pair<std::string, std::string>> cases{
      {" --nproc 0", "--nproc"},
      {" --rank 2 --world-size 2 --master 127.0.0.1:2000", "--rank"},
      {" --rank 0 --world-size 2", "--master"},
      {" --rank 0 --world-size 2 --master 127.0.0.1", "--master"},
      {" --rank 0 --world-size 2 --master 127.0.0.1:70000", "--master"},
      {" --rank 0 --world-size 2 --master 127.0.0.1:0", "--master"},
      {" --rank 0 --world-size 2 --master no.such.host.invalid:2000", "no.such.host.invalid"},
      {" --nproc 2 --rank 0 --world-size 2 --master 127.0.0.1:2000", "--nproc"},
      {" --nproc 2 --dist-timeout 0", "--dist-timeout"},
  };
  for (const auto& [flags, named] : cases) {
    auto r = testing::run_sqz(train + flags);
    EXPECT_EQ(r.code, 2) << flags << "\n" << r.output;
    EXPECT_NE(r.output.find(named), std::string::npos) << flags << "\n" << r.output;
  }
  // A port that something else holds: rank 0 says so instead of waiting.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  listen(fd, 1);
  socklen_t n = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
  const std::string held = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  auto r = testing::run_sqz(train + " --rank 0 --world-size 2 --dist-timeout 5 --master " + held);
  close(fd);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find(held), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(tmp / "run"));
}

// sqz compress on 2 ranks: movement heads on an AGP schedule, Taylor FFN neurons, distillation
// (bert-spam with dropout off): the same curve, the same heads and neurons kept, the same weights.
// Local addresses ("a.b.c.d:port") of the TCP sockets `pid` listens on, from /proc.
std::vector<std::string> listening_addresses(pid_t pid) {
  std::set<std::string> inodes;
  for (const auto& fd : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    std::error_code ec;
    const std::string target = fs::read_symlink(fd.path(), ec).string();
    if (target.rfind("socket:[", 0) == 0) inodes.insert(target.substr(8, target.size() - 9));
  }
  std::vector<std::string> out;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string slot, local, remote, state, queues, timer, retr, uid, timeout, inode;
      f >> slot >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >> inode;
      if (state != "0A" || !inodes.count(inode)) continue;
      const auto colon = local.find(':');
      if (local.size() - colon - 1 != 4 || colon != 8) {  // an IPv6 socket: print as is
        out.push_back(local);
        continue;
      }
      const uint32_t ip = static_cast<uint32_t>(std::stoul(local.substr(0, colon), nullptr, 16));
      const int port = static_cast<int>(std::stoul(local.substr(colon + 1), nullptr, 16));
      out.push_back(std::to_string(ip & 0xff) + "." + std::to_string((ip >> 8) & 0xff) + "." + std::to_string((ip >> 16) & 0xff) + "." +
                    std::to_string(ip >> 24) + ":" + std::to_string(port));
    }
  }
  return out;
}

TEST(Distributed, GroupListensOnlyOnTheAddressGiven) {
  testing::ScratchDir tmp("dist");
  const std::vector<std::string> train{"train", "--recipe", write_recipe(tmp).string(), "--set", "steps=100000", "--set", "eval_every=100000"};
  TwoRanks ranks(tmp.path(), train, train, 20);
  ASSERT_TRUE(ranks.started());
  const bool training = wait_for_file(tmp / "run" / "checkpoint" / "trainer_state.json", 120);
  const auto at0 = listening_addresses(ranks.pid(0)), at1 = listening_addresses(ranks.pid(1));
  ASSERT_TRUE(training) << ranks.log(0);
  bool store_found = false;
  for (const auto& a : at0) store_found |= a == "127.0.0.1:" + std::to_string(ranks.port());
  EXPECT_TRUE(store_found) << "rank 0 does not listen on the store's address";
  for (const auto* at : {&at0, &at1})
    for (const auto& a : *at) EXPECT_EQ(a.rfind("127.0.0.1:", 0), 0u) << "a socket listens on " << a;
}

// Two hosts: each rank in its own network namespace, joined by a veth pair with its own
// addresses, as two machines on one link. Needs CAP_NET_ADMIN (root in CI containers).
class NetworkNamespaces {
 public:
  NetworkNamespaces() : tag_(std::to_string(getpid() % 100000)) {
    if (geteuid() != 0) {
      why_not_ = "needs root (CAP_NET_ADMIN) to make network namespaces";
      return;
    }
    const std::string a = ns(0), b = ns(1), va = "sqzva" + tag_, vb = "sqzvb" + tag_;
    const std::string script = "ip netns add " + a + " && ip netns add " + b + " && ip link add " + va + " type veth peer name " + vb +
                               " && ip link set " + va + " netns " + a + " && ip link set " + vb + " netns " + b + " && ip -n " + a +
                               " addr add 10.213.0.1/24 dev " + va + " && ip -n " + b + " addr add 10.213.0.2/24 dev " + vb + " && ip -n " +
                               a + " link set " + va + " up && ip -n " + b + " link set " + vb + " up && ip -n " + a +
                               " link set lo up && ip -n " + b + " link set lo up";
    if (std::system((script + " 2>/dev/null").c_str()) != 0) why_not_ = "`ip netns` / veth could not be set up here";
  }
  ~NetworkNamespaces() { std::system(("ip netns del " + ns(0) + " 2>/dev/null; ip netns del " + ns(1) + " 2>/dev/null").c_str()); }
  const std::string& why_not() const { return why_not_; }
  std::string ns(int host) const { return (host == 0 ? "sqzhosta" : "sqzhostb") + tag_; }

 private:
  std::string tag_, why_not_;
};

TEST(Distributed, TwoHostsInNetworkNamespacesTrainLikeOneProcess) {
  NetworkNamespaces hosts;
  if (!hosts.why_not().empty()) GTEST_SKIP() << hosts.why_not();
  testing::ScratchDir tmp("dist");
  const fs::path recipe = write_recipe(tmp);
  auto one = testing::run_sqz("train --recipe " + recipe.string() + " --set out=" + (tmp / "one").string());
  ASSERT_EQ(one.code, 0) << one.output;
  std::vector<pid_t> ranks;
  for (int r = 0; r < 2; ++r) {
    // Each host names its own output dir: only rank 0 writes, so host b's stays absent.
    ranks.push_back(testing::spawn_process({"ip", "netns", "exec", hosts.ns(r), SQZ_BINARY, "train", "--recipe", recipe.string(), "--set",
                                            "out=" + (tmp / ("host" + std::to_string(r))).string(), "--rank", std::to_string(r),
                                            "--world-size", "2", "--master", "10.213.0.1:29500", "--dist-timeout", "30"},
                                           tmp / ("r" + std::to_string(r) + ".log")));
  }
  std::vector<int> status;
  for (pid_t pid : ranks) status.push_back(wait_for_exit(pid, 120));
  for (int r = 0; r < 2; ++r) {
    if (status[r] == -1) kill(ranks[r], SIGKILL), waitpid(ranks[r], nullptr, 0);
    ASSERT_EQ(status[r], 0) << read_text_file(tmp / ("r" + std::to_string(r) + ".log"));
  }
  EXPECT_NE(read_text_file(tmp / "r0.log").find("joined the group at 10.213.0.1:29500"), std::string::npos);
  EXPECT_FALSE(fs::exists(tmp / "host1"));
  expect_same_curve(testing::read_json_lines(tmp / "one" / "train_log.jsonl"), testing::read_json_lines(tmp / "host0" / "train_log.jsonl"), 1e-5);
}

}  // namespace
}  // namespace sqz
