// Trains tiny models as a user would: the loss falls on real data, a killed run leaves a
// complete checkpoint that --resume continues from, and bad recipes fail before training.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "io/json_file.h"
#include "unit/test_util.h"

namespace sqz {
namespace {

int run_quiet(const std::string& args, std::string* output = nullptr) {
  auto r = testing::run_sqz(args);
  if (output) *output = r.output;
  return r.code;
}

std::string gpt2_recipe(const fs::path& out) {
  auto fx = testing::fixtures_dir() / "gpt2-lm" / "model";
  return "model: " + fx.string() + "\ntask: lm-books\ndata: " + (testing::shared_dir() / "data" / "lm-books").string() +
         "\nmax_length: 32\nbatch_size: 8\nlr: 0.003\nwarmup_steps: 2\nthreads: 1\neval_batches: 2\nout: " + out.string() + "\n";
}

TEST(Train, LossFallsOnRealText) {
  testing::ScratchDir tmp("train");
  write_file_atomic(tmp / "r.yaml", gpt2_recipe(tmp / "run"));
  std::string out;
  ASSERT_EQ(run_quiet("train --recipe " + (tmp / "r.yaml").string() + " --set steps=40 --set eval_every=20", &out), 0) << out;
  auto log = testing::read_json_lines(tmp / "run" / "train_log.jsonl");
  ASSERT_EQ(log.size(), 2u) << out;
  EXPECT_LT(log[1]["perplexity"].get<double>(), log[0]["perplexity"].get<double>()) << out;
  EXPECT_LT(log[1]["train_loss"].get<double>(), log[0]["train_loss"].get<double>()) << out;
  EXPECT_TRUE(fs::exists(tmp / "run" / "best" / "model.safetensors"));
  std::string eval_out;
  ASSERT_EQ(run_quiet("eval " + (tmp / "run" / "best").string() + " --task lm-books --split " +
                          (testing::shared_dir() / "data" / "lm-books" / "dev.txt").string() + " --max-length 32 --batch-size 8 --max-batches 2",
                      &eval_out), 0) << eval_out;
  EXPECT_NEAR(io::json::parse(eval_out)["perplexity"].get<double>(), log[1]["perplexity"].get<double>(), 1e-6);
}

// A T5 from the shipped g2p config (shrunk) trains on cmudict-g2p with teacher forcing: the loss and
// the dev perplexity fall, evals decode greedily for WER/PER, `sqz eval` scores the saved model with
// greedy decoding and beam search (same teacher-forced perplexity), and `sqz generate` answers a word.
TEST(Train, Seq2SeqOnG2p) {
  testing::ScratchDir tmp("train-g2p");
  const fs::path config = testing::write_small_g2p_t5_config(tmp.path());
  const std::string recipe = "config: " + config.string() + "\ntokenizer: " +
                             (fs::path(SQZ_SOURCE_DIR) / "configs" / "g2p-tokenizer").string() + "\ntask: cmudict-g2p\ndata: " +
                             (testing::shared_dir() / "data" / "cmudict-g2p").string() +
                             "\nmax_length: 32\nbatch_size: 32\nsteps: 60\nlr: 0.003\nwarmup_steps: 5\nthreads: 1\neval_every: 30\n"
                             "eval_batches: 2\nseed: 3\nout: " + (tmp / "run").string() + "\n";
  std::ofstream(tmp / "r.yaml") << recipe;
  std::string out;
  ASSERT_EQ(run_quiet("train --recipe " + (tmp / "r.yaml").string(), &out), 0) << out;
  auto log = testing::read_json_lines(tmp / "run" / "train_log.jsonl");
  ASSERT_EQ(log.size(), 2u) << out;
  EXPECT_LT(log[1]["perplexity"].get<double>(), log[0]["perplexity"].get<double>()) << out;
  EXPECT_LT(log[1]["train_loss"].get<double>(), log[0]["train_loss"].get<double>()) << out;
  for (const char* key : {"wer", "per"}) EXPECT_GE(log[1][key].get<double>(), 0.0) << out;
  EXPECT_EQ(log[1]["examples"].get<int64_t>(), 64);
  const fs::path model = tmp / "run" / "best";
  std::string eval_out, beam_out;
  ASSERT_EQ(run_quiet("eval " + model.string() + " --task cmudict-g2p --split " +
                          (testing::shared_dir() / "data" / "cmudict-g2p" / "dev.jsonl").string() + " --max-length 32 --batch-size 32 --max-batches 2",
                      &eval_out), 0) << eval_out;
  auto greedy = io::json::parse(eval_out.substr(eval_out.rfind('{')));
  EXPECT_EQ(greedy["decoding"], "greedy");
  EXPECT_EQ(greedy["examples"].get<int64_t>(), 64);
  ASSERT_EQ(run_quiet("eval " + model.string() + " --task cmudict-g2p --split " +
                          (testing::shared_dir() / "data" / "cmudict-g2p" / "dev.jsonl").string() +
                          " --max-length 32 --batch-size 32 --max-batches 2 --num-beams 3", &beam_out), 0) << beam_out;
  auto beam = io::json::parse(beam_out.substr(beam_out.rfind('{')));
  EXPECT_EQ(beam["decoding"], "beam 3");
  EXPECT_NEAR(beam["perplexity"].get<double>(), greedy["perplexity"].get<double>(), 1e-9);  // decoding does not touch it
  std::string gen;
  ASSERT_EQ(run_quiet("generate " + model.string() + " --prompt aachen --max-new-tokens 12 --ids", &gen), 0) << gen;
  auto g = io::json::parse(gen.substr(gen.rfind('{')));
  EXPECT_FALSE(g["new_ids"].empty());
  EXPECT_EQ(g["prompt_ids"].size(), 8u);  // [CLS] a ##a ##c ##h ##e ##n [SEP]
}

// The same recipe and seed train the same model: a fine-tune whose head starts from random
// weights (the bert-mlm fixture has no classifier) and trains with dropout, run twice.
TEST(Train, SameSeedSameModel) {
  testing::ScratchDir tmp("train-seed");
  const std::string recipe = "model: " + (testing::fixtures_dir() / "bert-mlm" / "model").string() +
                             "\ntask: spam\ndata: " + (testing::shared_dir() / "data" / "spam").string() +
                             "\nobjective: classification\nmax_length: 32\nbatch_size: 8\nsteps: 6\nlr: 0.001\nthreads: 1\n"
                             "eval_every: 6\neval_batches: 2\nseed: 7\n";
  std::ofstream(tmp / "r.yaml") << recipe;
  std::vector<std::string> logs;
  for (const char* out : {"a", "b"}) {
    ASSERT_EQ(run_quiet("train --recipe " + (tmp / "r.yaml").string() + " --set out=" + (tmp / out).string()), 0);
    auto log = testing::read_json_lines(tmp / out / "train_log.jsonl");
    ASSERT_FALSE(log.empty());
    logs.push_back(std::to_string(log.back()["train_loss"].get<double>()));
  }
  EXPECT_EQ(logs[0], logs[1]);
  std::ifstream a(tmp / "a" / "best" / "model.safetensors", std::ios::binary), b(tmp / "b" / "best" / "model.safetensors", std::ios::binary);
  std::string da((std::istreambuf_iterator<char>(a)), {}), db((std::istreambuf_iterator<char>(b)), {});
  EXPECT_FALSE(da.empty());
  EXPECT_TRUE(da == db) << "the two runs saved different weights";
}

TEST(Train, KilledRunResumesFromLastCheckpoint) {
  testing::ScratchDir tmp("train");
  write_file_atomic(tmp / "r.yaml", gpt2_recipe(tmp / "run"));
  const std::string recipe = (tmp / "r.yaml").string();
  const fs::path log = tmp / "log.txt";
  const pid_t pid = testing::spawn_sqz(
      {"train", "--recipe", recipe, "--set", "steps=100000", "--set", "save_every=3", "--set", "eval_every=100000"}, log);
  ASSERT_GT(pid, 0);
  auto state = tmp / "run" / "checkpoint" / "trainer_state.json";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(state) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(pid, SIGKILL);  // no chance to clean up: atomic writes must keep the checkpoint whole
  waitpid(pid, nullptr, 0);
  ASSERT_TRUE(fs::exists(state)) << read_text_file(log);
  int64_t at = io::read_json_file(state)["step"].get<int64_t>();
  EXPECT_GE(at, 3);
  std::string out;
  // Without --resume or --overwrite the existing run is refused.
  EXPECT_NE(run_quiet("train --recipe " + recipe, &out), 0);
  EXPECT_NE(out.find("already exists"), std::string::npos) << out;
  ASSERT_EQ(run_quiet("train --recipe " + recipe + " --resume --set steps=" + std::to_string(at + 4) +
                          " --set eval_every=1000 --set save_every=1000", &out), 0) << out;
  EXPECT_NE(out.find("resuming from"), std::string::npos) << out;
  EXPECT_EQ(io::read_json_file(state)["step"].get<int64_t>(), at + 4);
}

TEST(Train, BadRecipesFailBeforeTraining) {
  testing::ScratchDir tmp("train");
  write_file_atomic(tmp / "r.yaml", gpt2_recipe(tmp / "run") + "bogus_key: 3\n");
  std::string out;
  EXPECT_NE(run_quiet("train --recipe " + (tmp / "r.yaml").string(), &out), 0);
  EXPECT_NE(out.find("r.yaml:11: unknown recipe key 'bogus_key'"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(tmp / "run"));
  write_file_atomic(tmp / "r.yaml", gpt2_recipe(tmp / "run"));
  EXPECT_NE(run_quiet("train --recipe " + (tmp / "r.yaml").string() + " --set task=nope", &out), 0);
  EXPECT_NE(out.find("unknown task 'nope'"), std::string::npos) << out;
}

}  // namespace
}  // namespace sqz
