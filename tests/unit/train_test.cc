// Metrics against hand-computed values, data readers and their errors, recipes, schedules.
#include <dlfcn.h>
#include <torch/torch.h>

#include <fstream>

#include "core/error.h"
#include "nn/threads.h"
#include "data/metrics.h"
#include "io/tokenizers/tokenizer.h"
#include "models/registry.h"
#include "data/tasks.h"
#include "data/objectives.h"
#include "train/recipe.h"
#include "train/state_dict.h"
#include "train/trainer.h"
#include "io/safetensors.h"
#include "unit/test_util.h"

namespace sqz {
namespace {


// A recipe's `threads: 1` must hold for the matmuls too: OpenBLAS keeps its own thread count.
TEST(Threads, TorchThreadCountReachesOpenBlas) {
  using GetThreads = int (*)();
  const auto openblas_get = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (!openblas_get) GTEST_SKIP() << "libtorch does not run on OpenBLAS here";
  const int saved = torch::get_num_threads();
  set_torch_threads(1);
  EXPECT_EQ(torch::get_num_threads(), 1);
  EXPECT_EQ(openblas_get(), 1);
  set_torch_threads(2);
  EXPECT_EQ(openblas_get(), 2);
  set_torch_threads(saved);
}

TEST(Metrics, HandComputed) {
  // gold 0 0 1 1 2, predicted 0 1 1 1 0: class 0 P=1/2 R=1/2 F1=.5; class 1 P=2/3 R=1 F1=.8; class 2 F1=0.
  std::vector<int64_t> gold{0, 0, 1, 1, 2}, pred{0, 1, 1, 1, 0};
  EXPECT_DOUBLE_EQ(data::accuracy(pred, gold), 0.6);
  EXPECT_NEAR(data::macro_f1(pred, gold, 3), (0.5 + 0.8 + 0.0) / 3, 1e-12);
  EXPECT_NEAR(data::macro_f1(gold, gold, 3), 1.0, 1e-12);
  EXPECT_NEAR(data::perplexity(std::log(10.0) * 4, 4), 10.0, 1e-9);
  EXPECT_NEAR(data::bits_per_byte(std::log(2.0) * 8, 4), 2.0, 1e-12);
  EXPECT_THROW(data::accuracy({1}, {}), Error);
  // kitten -> sitting: substitute k, substitute e, insert g.
  auto chars = [](const std::string& w) {
    std::vector<std::string> out;
    for (char c : w) out.emplace_back(1, c);
    return out;
  };
  EXPECT_EQ(data::edit_distance(chars("kitten"), chars("sitting")), 3);
  EXPECT_EQ(data::edit_distance({}, chars("abc")), 3);
  EXPECT_EQ(data::edit_distance({"AA1", "K"}, {"AA1", "K"}), 0);
}

TEST(Schedule, LinearWarmupThenDecay) {
  EXPECT_NEAR(train::linear_schedule(0, 9, 100), 0.1, 1e-12);
  EXPECT_NEAR(train::linear_schedule(9, 10, 100), 10.0 / 11.0, 1e-12);
  EXPECT_NEAR(train::linear_schedule(10, 10, 100), 1.0, 1e-12);
  EXPECT_NEAR(train::linear_schedule(55, 10, 100), 0.5, 1e-12);
  EXPECT_NEAR(train::linear_schedule(100, 10, 100), 0.0, 1e-12);
}

// A resumable run's state file: tensors of every kind a compressor keeps (0-dim observer ranges,
// bool memories, int generator states) and scalars come back as saved; a missing key, a shape
// that changed and a file that is not a state file are named errors.
TEST(StateDict, RoundTripsAndNamesWhatIsMissing) {
  testing::ScratchDir dir("state");
  train::StateDict s;
  auto mask = torch::tensor({1.f, 0.f, 1.f, 1.f});
  s.put("pruner.0.unit.0.mask", mask);
  s.put("observer.lo", torch::tensor(-2.5f));
  s.put("memory_seen", torch::tensor({true, false}));
  s.put("rng", at::detail::getDefaultCPUGenerator().get_state());
  s.put("never_created", torch::Tensor());
  s.put_value("current_target", 0.375);
  s.put_value("flags", {true, false});
  s.save(dir / "state.safetensors");
  auto back = train::StateDict::load(dir / "state.safetensors");
  EXPECT_FALSE(back.has("never_created"));
  EXPECT_FALSE(back.get("never_created").defined());
  EXPECT_TRUE(torch::equal(back.get("observer.lo"), torch::tensor(-2.5f)));
  EXPECT_EQ(back.get("observer.lo").dim(), 0);
  EXPECT_TRUE(torch::equal(back.get("memory_seen"), torch::tensor({true, false})));
  EXPECT_TRUE(torch::equal(back.get("rng"), at::detail::getDefaultCPUGenerator().get_state()));
  EXPECT_EQ(back.value("current_target").get<double>(), 0.375);
  EXPECT_EQ(back.value("flags"), io::json({true, false}));
  // In place: a tensor sharing the destination's storage sees the restored values.
  auto dst = torch::ones({4});
  auto view = dst.view({2, 2});
  back.copy_into("pruner.0.unit.0.mask", dst);
  EXPECT_TRUE(torch::equal(view.reshape({4}), mask));
  auto e = testing::error_of([&] { back.copy_into("pruner.1.unit.0.mask", dst); });
  EXPECT_NE(e.find("no saved state 'pruner.1.unit.0.mask'"), std::string::npos) << e;
  EXPECT_NE(e.find("state.safetensors"), std::string::npos) << e;
  e = testing::error_of([&] { back.copy_into("pruner.0.unit.0.mask", torch::ones({5})); });
  EXPECT_NE(e.find("has shape [4] but the run has [5]"), std::string::npos) << e;
  e = testing::error_of([&] { back.value("schedule"); });
  EXPECT_NE(e.find("no saved value 'schedule'"), std::string::npos) << e;
  io::write_safetensors(dir / "plain.safetensors", {{"w", torch::ones({2})}});
  e = testing::error_of([&] { train::StateDict::load(dir / "plain.safetensors"); });
  EXPECT_NE(e.find("plain.safetensors: no 'sqz_state' metadata"), std::string::npos) << e;
}

TEST(Data, JsonlErrorsNameFileAndLine) {
  testing::ScratchDir dir("data");
  std::ofstream(dir / "a.jsonl") << "{\"text\": \"hi\", \"label\": \"x\"}\n{not json}\n";
  auto e = testing::error_of([&] { data::read_classification_jsonl(dir / "a.jsonl"); });
  EXPECT_NE(e.find("a.jsonl:2: not valid JSON"), std::string::npos) << e;
  std::ofstream(dir / "b.jsonl") << "{\"text\": \"hi\", \"label\": \"x\"}\n{\"text\": \"yo\"}\n";
  e = testing::error_of([&] { data::read_classification_jsonl(dir / "b.jsonl"); });
  EXPECT_NE(e.find("b.jsonl:2: missing string field 'label'"), std::string::npos) << e;
  std::ofstream(dir / "c.jsonl") << "\n";
  e = testing::error_of([&] { data::read_classification_jsonl(dir / "c.jsonl"); });
  EXPECT_NE(e.find("empty file"), std::string::npos) << e;
}

TEST(Data, UnknownDevLabelIsAnError) {
  data::LabelSet labels(std::vector<data::TextExample>{{"a", "", "ham"}, {"b", "", "spam"}});
  EXPECT_EQ(labels.id("spam", "x"), 1);
  auto e = testing::error_of([&] { labels.id("eggs", "dev.jsonl: example 3"); });
  EXPECT_NE(e.find("dev.jsonl: example 3: label 'eggs' never occurs in training"), std::string::npos) << e;
}

TEST(Data, RealTasksReadAndBatch) {
  auto dir = testing::shared_dir() / "data" / "spam";
  auto dev = data::read_classification_jsonl(dir / "dev.jsonl");
  EXPECT_EQ(dev.size(), 588u);
  auto tok = io::load_tokenizer(testing::fixtures_dir() / "bert-seqcls" / "model");
  data::LabelSet labels(dev);
  EXPECT_EQ(labels.names(), (std::vector<std::string>{"ham", "spam"}));
  std::vector<data::TextExample> few(dev.begin(), dev.begin() + 5);
  data::ClassificationData data(few, *tok, labels, 32, "dev");
  auto b = data.batch(0, 4);
  EXPECT_EQ(b.input_ids.size(0), 4);
  EXPECT_LE(b.input_ids.size(1), 32);
  EXPECT_EQ(b.labels.size(0), 4);
  std::string text = data::read_lm_text(testing::shared_dir() / "data" / "lm-books" / "dev.txt").substr(0, 20000);
  data::LmData lm(text, *tok, 16);
  EXPECT_EQ(lm.batch(0, 3).input_ids.sizes(), torch::IntArrayRef({3, 16}));
  EXPECT_EQ(lm.num_blocks(), lm.num_tokens() / 16);
}

// cmudict-g2p through the shipped character/phoneme tokenizer: the source as letters, the labels as
// phonemes with the tokenizer's specials and -100 padding, the decoder inputs the labels shifted
// right from decoder_start_token_id.
TEST(Data, Seq2SeqPairsBatchAsHfShiftsThem) {
  auto dir = testing::shared_dir() / "data" / "cmudict-g2p";
  auto dev = data::read_seq2seq_jsonl(dir / "dev.jsonl");
  EXPECT_EQ(dev.size(), 12277u);
  EXPECT_EQ(dev[1].source, "aachen");
  EXPECT_EQ(dev[1].target, "AA1 K AH0 N");
  auto tok = io::load_tokenizer(fs::path(SQZ_SOURCE_DIR) / "configs" / "g2p-tokenizer");
  std::vector<data::Seq2SeqExample> few(dev.begin(), dev.begin() + 2);
  data::Seq2SeqData data(few, *tok, 32, /*decoder_start_token_id=*/0, "dev");
  auto b = data.batch(0, 2);
  auto want_src = tok->encode("aachen").ids, want_tgt = tok->encode("AA1 K AH0 N").ids;  // [CLS] .. [SEP]
  ASSERT_EQ(b.input_ids.size(1), static_cast<int64_t>(want_src.size()));
  ASSERT_EQ(b.labels.size(1), static_cast<int64_t>(want_tgt.size()));
  for (size_t j = 0; j < want_tgt.size(); ++j) {
    EXPECT_EQ(b.labels[1][j].item<int64_t>(), want_tgt[j]);
    EXPECT_EQ(b.decoder_input_ids[1][j].item<int64_t>(), j == 0 ? 0 : want_tgt[j - 1]);
  }
  EXPECT_EQ(b.labels[0][3].item<int64_t>(), -100);  // "a" -> [CLS] AH0 [SEP], then padding
  EXPECT_EQ(b.attention_mask[0].sum().item<int64_t>(), 3);
  EXPECT_EQ(tok->decode(want_tgt, /*skip_special_tokens=*/true), "AA1 K AH0 N");
  auto e = testing::error_of([&] { data::read_seq2seq_jsonl(dir / "train.jsonl.missing"); });
  EXPECT_NE(e.find("train.jsonl.missing: cannot open"), std::string::npos) << e;
}

TEST(Objectives, MaskingFollowsBertRatesAndSkipsSpecials) {
  auto ids = torch::randint(10, 1000, {64, 128}, torch::kLong);
  ids.select(1, 0).fill_(2);  // [CLS]
  auto mask = torch::ones_like(ids);
  auto original = ids.clone();
  auto gen = at::detail::createCPUGenerator(1);
  data::MlmSpecialIds special{4, {2}, 1000};
  auto labels = data::mask_tokens(ids, mask, special, 0.15, gen);
  auto targets = labels.ne(-100);
  double rate = targets.to(torch::kFloat).mean().item<double>();
  EXPECT_NEAR(rate, 0.15 * 127.0 / 128.0, 0.01);
  EXPECT_FALSE(targets.select(1, 0).any().item<bool>());
  double masked = ids.eq(4).logical_and(targets).sum().item<double>() / targets.sum().item<double>();
  EXPECT_NEAR(masked, 0.8, 0.03);
  EXPECT_TRUE(torch::equal(labels.masked_select(targets), original.masked_select(targets)));
}

// Scoring only the labelled rows (the training default) must give the loss and the gradients of
// scoring every position: the head is per-position, so dropping unlabelled rows changes nothing.
TEST(Objectives, MaskedLmOnLabelledRowsEqualsEveryRow) {
  auto loaded = models::load_model(testing::fixtures_dir() / "bert-mlm" / "model");
  auto& model = *loaded.model;
  model.eval();
  auto tok = io::load_tokenizer(testing::fixtures_dir() / "bert-mlm" / "model");
  auto special = data::mlm_special_ids(*tok, "fixture");
  data::Batch batch;
  batch.input_ids = torch::randint(5, special.vocab_size, {3, 24}, torch::kLong);
  batch.attention_mask = torch::ones_like(batch.input_ids);
  batch.attention_mask.select(0, 2).slice(0, 18).fill_(0);  // one padded sequence
  auto gen = at::detail::createCPUGenerator(3);
  batch.labels = data::mask_tokens(batch.input_ids, batch.attention_mask, special, 0.3, gen);
  auto run = [&](bool all_logits) {
    model.zero_grad();
    auto r = data::compute_loss(model, batch, data::Objective::kMaskedLM, false, false, all_logits);
    r.loss.backward();
    std::vector<torch::Tensor> grads;
    for (auto& p : model.parameters())
      if (p.grad().defined()) grads.push_back(p.grad().clone());
    return std::make_tuple(r, grads);
  };
  auto [all, all_grads] = run(true);
  auto [rows, row_grads] = run(false);
  EXPECT_EQ(all.outputs.at("logits").dim(), 3);
  ASSERT_EQ(rows.outputs.at("logits").dim(), 2);
  EXPECT_EQ(rows.outputs.at("logits").size(0), rows.targets);
  EXPECT_EQ(all.targets, rows.targets);
  EXPECT_GT(rows.targets, 5);
  EXPECT_NEAR(all.loss.item<double>(), rows.loss.item<double>(), 1e-5);
  ASSERT_EQ(all_grads.size(), row_grads.size());
  for (size_t i = 0; i < all_grads.size(); ++i) EXPECT_TRUE(torch::allclose(all_grads[i], row_grads[i], 1e-4, 1e-6)) << i;
}

TEST(Recipe, UnknownKeysAndBadValuesNameTheLine) {
  auto e = testing::error_of([] { train::TrainRecipe::from_yaml_text("task: spam\nstepz: 10\n", "r.yaml", {}); });
  EXPECT_NE(e.find("r.yaml:2: unknown recipe key 'stepz'"), std::string::npos) << e;
  e = testing::error_of([] { train::TrainRecipe::from_yaml_text("steps: many\n", "r.yaml", {}); });
  EXPECT_NE(e.find("r.yaml:1: recipe key 'steps' has a value of the wrong type"), std::string::npos) << e;
  std::string ok = "model: m\ntask: spam\ndata: d\nout: o\n";
  auto r = train::TrainRecipe::from_yaml_text(ok, "r.yaml", {"steps=7", "lr=0.5"});
  EXPECT_EQ(r.steps, 7);
  EXPECT_DOUBLE_EQ(r.lr, 0.5);
  auto again = train::TrainRecipe::from_yaml_text(r.to_yaml(), "copy", {});
  EXPECT_EQ(again.to_yaml(), r.to_yaml());
  e = testing::error_of([&] { train::TrainRecipe::from_yaml_text(ok, "r.yaml", {"bogus=1"}); });
  EXPECT_NE(e.find("unknown recipe key 'bogus'"), std::string::npos) << e;
  e = testing::error_of([] { train::TrainRecipe::from_yaml_text("task: spam\n", "r.yaml", {}); });
  EXPECT_NE(e.find("give 'model'"), std::string::npos) << e;
}

}  // namespace
}  // namespace sqz
