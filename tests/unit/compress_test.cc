// Pruners, distiller and SpeedUp on tiny BERTs: every pruner's mask shape and ratio, masked
// model == shrunk model (the SpeedUp equivalence) for every pruner kind, schedules, and the
// errors a bad recipe must raise before training starts.
#include <yaml-cpp/yaml.h>

#include "compress/distiller.h"
#include "compress/pruner.h"
#include "compress/recipe.h"
#include "compress/site.h"
#include "core/error.h"
#include "eval/plot.h"
#include "io/tokenizers/tokenizer.h"
#include "kernels/gemm_block_sparse/gemm_block_sparse.h"
#include "models/registry.h"
#include "pipeline/stages.h"
#include "speedup/speedup.h"
#include "unit/pruner_cases.h"
#include "unit/test_util.h"
#include "unit/tiny_models.h"

namespace sqz {
namespace {

using compress::Pruner;
using compress::PrunerSpec;
using io::json;
using testing::arch_config;
using testing::ArchPruner;
using testing::inputs;
using testing::prune_with;
using testing::pruner_cases;
using testing::spec;
using testing::tiny_bert;
using testing::tiny_bert_config;
using testing::tiny_gpt2_config;
using testing::tiny_model;

torch::Tensor logits(models::TransformerModel& m) {
  torch::NoGradGuard g;
  return m.forward(inputs()).at("logits");
}

void prune(Pruner& p, models::TransformerModel& m) {
  prune_with(p, m, [&m](int i) {
    return torch::nn::functional::cross_entropy(m.forward(inputs(10 + i)).at("logits"), torch::tensor({0, 1, 2}));
  });
}

class PrunerTest : public ::testing::TestWithParam<ArchPruner> {
 protected:
  void SetUp() override {
    // Llama's RMSNorm has no keep mask: hidden dims are not described (tested to be refused below).
    if ((arch() == "llama" || arch() == "qwen2") && yaml().find("granularity: hidden") != std::string::npos) GTEST_SKIP();
  }
  const std::string& arch() const { return std::get<0>(GetParam()); }
  const std::string& yaml() const { return std::get<1>(GetParam()).yaml; }
};

TEST_P(PrunerTest, MaskShapeAndRatio) {
  auto m = tiny_model(arch_config(arch()));
  Pruner p(spec(yaml()));
  prune(p, *m);
  const auto& s = p.spec();
  auto report = p.report();
  ASSERT_FALSE(report.empty());
  int64_t kept = 0, total = 0;
  for (const auto& u : report) {
    kept += u.kept, total += u.total;
    if (s.scope == compress::Scope::kLayer && !(s.metric == compress::Metric::kMovement && s.soft))
      EXPECT_EQ(u.total - u.kept, std::llround(s.sparsity * static_cast<double>(u.total))) << u.name;
  }
  if (s.scope == compress::Scope::kGlobal) {
    int64_t pruned = total - kept, want = std::llround(s.sparsity * static_cast<double>(total));
    // Structured global pruning keeps at least one group per layer.
    EXPECT_LE(pruned, want);
    EXPECT_GE(pruned, want - static_cast<int64_t>(report.size()));
  }
  if (s.metric == compress::Metric::kMovement && s.soft) {
    EXPECT_TRUE(p.regularizer().defined());
    EXPECT_GT(p.sparsity(), 0.1);  // randn scores: ~31% above 0.5
  }
  if (s.granularity == compress::Granularity::kNM) {
    // Every group of m consecutive input weights keeps exactly n in every targeted layer.
    for (const auto& t : compress::list_layers(*m)) {
      auto* site = dynamic_cast<compress::Site*>(t.site->get());
      if (!site) continue;
      auto w = t.weight();
      auto eff = site->effective_weight(w).detach();
      auto nonzero = eff.ne(0).reshape({w.size(0), w.size(1) / s.m, s.m}).sum(2);
      EXPECT_TRUE(nonzero.eq(s.n).all().item<bool>()) << t.name;
    }
  }
  if (s.granularity == compress::Granularity::kBlock) {
    // The pruned 4 x 4 blocks are whole zero blocks of the effective weight: what the runtime's
    // int8-block kernel skips.
    for (const auto& t : compress::list_layers(*m)) {
      auto* site = dynamic_cast<compress::Site*>(t.site->get());
      if (!site) continue;
      auto eff = site->effective_weight(t.weight()).detach().contiguous();
      auto codes = eff.ne(0).to(torch::kInt8).contiguous();
      const double zero_blocks = kernels::block_sparsity(codes.data_ptr<int8_t>(), eff.size(0), eff.size(1), eff.size(1));
      const double blocks = static_cast<double>(((eff.size(0) + 3) / 4) * ((eff.size(1) + 3) / 4));
      EXPECT_GE(zero_blocks + 1e-9, std::llround(s.sparsity * blocks) / blocks) << t.name;
    }
  }
  if (s.granularity == compress::Granularity::kHead)
    for (const auto& u : report) EXPECT_GE(u.kept, 1) << u.name;
}

TEST_P(PrunerTest, MaskedModelEqualsShrunkModel) {
  auto m = tiny_model(arch_config(arch()));
  auto dense = logits(*m);
  Pruner p(spec(yaml()));
  prune(p, *m);
  auto masked = logits(*m);
  EXPECT_GT((masked - dense).abs().max().item<double>(), 1e-6) << "the pruner changed nothing";
  auto keep = speedup::groups_from_masks(*m);
  speedup::bake_masks(*m);
  EXPECT_TRUE(testing::all_close(logits(*m), masked, 1e-6, 1e-5));
  testing::ScratchDir dir("speedup");
  auto config = arch_config(arch());
  auto report = speedup::shrink_and_save(*m, config, keep, dir.path());
  auto shrunk = models::load_model(dir.path());
  EXPECT_TRUE(testing::all_close(logits(*shrunk.model), masked, 1e-5, 1e-4));
  EXPECT_EQ(models::count_parameters(*shrunk.model), report.params_after);
  bool structured = compress::is_group(p.spec().granularity);
  if (structured) {
    EXPECT_LT(report.params_after, report.params_before);
    // The same groups are found again from the zeros of the baked weights (`sqz speedup`).
    auto from_zeros = speedup::groups_from_zeros(*m);
    EXPECT_EQ(from_zeros.heads, keep.heads);
    EXPECT_EQ(from_zeros.neurons, keep.neurons);
  } else {
    // Finer masks may still empty whole groups (a column, by chance a neuron): SpeedUp cuts those.
    EXPECT_LE(report.params_after, report.params_before);
  }
}

// Grouped-query Llama (6 query heads on 3 K/V heads): a head group is one K/V head with the two
// query heads reading it, so head pruning removes whole groups and SpeedUp cuts rows of q, k and v
// and columns of o_proj; the config lists the query heads, which the loader accepts only as whole
// groups. Hidden dims are refused (RMSNorm has no keep mask).
io::json gqa_llama_config() {
  auto c = testing::tiny_llama_config(3);
  c["num_attention_heads"] = 6;
  c["head_dim"] = 8;
  return c;
}

TEST(PrunerGqa, LlamaGroupedQueryPrunesKeyValueGroups) {
  auto m = tiny_model(gqa_llama_config());
  Pruner hidden(spec("granularity: hidden\nmetric: l2\nsparsity: 0.25"));
  auto e = testing::error_of([&] { hidden.attach(*m, 1e-3); });
  EXPECT_NE(e.find("hidden-dimension groups of 'llama' are not described yet"), std::string::npos) << e;

  auto dense = logits(*m);
  Pruner heads(spec("name: heads\ngranularity: head\nmetric: l2\nsparsity: 0.34"));
  Pruner neurons(spec("name: ffn\ngranularity: neuron\nmetric: magnitude\nsparsity: 0.5"));
  prune(heads, *m);
  prune(neurons, *m);
  auto masked = logits(*m);
  EXPECT_GT((masked - dense).abs().max().item<double>(), 1e-6);
  auto keep = speedup::groups_from_masks(*m);
  ASSERT_EQ(keep.heads.size(), 2u);
  ASSERT_EQ(keep.heads[0].size(), 2u);  // of 3 groups
  speedup::bake_masks(*m);
  EXPECT_EQ(speedup::groups_from_zeros(*m).heads, keep.heads);
  testing::ScratchDir dir("speedup-gqa");
  auto report = speedup::shrink_and_save(*m, gqa_llama_config(), keep, dir.path());
  auto shrunk = models::load_model(dir.path());
  EXPECT_TRUE(testing::all_close(logits(*shrunk.model), masked, 1e-5, 1e-4));
  EXPECT_EQ(report.layers[0].neurons_after, 24);
  EXPECT_EQ(report.layers[0].heads_after, 4);
  auto s = shrunk.model->structure();
  EXPECT_EQ(s.attention[0].num_heads, 4);
  EXPECT_EQ(s.attention[0].kv_heads, 2);
  auto config = io::read_json_file(dir.path() / "config.json");
  const int64_t gone = 3 - keep.heads[0][0] - keep.heads[0][1];  // the group not kept (0 + 1 + 2 = 3)
  EXPECT_EQ(config["pruned_heads"]["0"], io::json({2 * gone, 2 * gone + 1})) << config.dump();

  // Pruning the shrunk model again counts heads in the original numbering, still in whole groups.
  Pruner again(spec("name: heads\ngranularity: head\nmetric: l2\nsparsity: 0.5"));
  prune(again, *shrunk.model);
  auto masked2 = logits(*shrunk.model);
  auto keep2 = speedup::groups_from_masks(*shrunk.model);
  speedup::bake_masks(*shrunk.model);
  testing::ScratchDir dir2("speedup-gqa-2");
  speedup::shrink_and_save(*shrunk.model, config, keep2, dir2.path());
  auto config2 = io::read_json_file(dir2.path() / "config.json");
  EXPECT_EQ(config2["pruned_heads"]["0"].size(), 4u) << config2.dump();
  auto twice = models::load_model(dir2.path());
  EXPECT_EQ(twice.model->structure().attention[0].num_heads, 2);
  EXPECT_TRUE(testing::all_close(logits(*twice.model), masked2, 1e-5, 1e-4));
}

TEST(PrunerGqa, ConfigWithPartOfAGroupPrunedIsRefused) {
  for (const io::json& gone : {io::json({1}), io::json({1, 2}), io::json({0, 1, 3}), io::json({0, 1, 2, 3, 5})}) {
    auto c = gqa_llama_config();
    c["pruned_heads"] = {{"1", gone}};
    auto e = testing::error_of([&] { models::build_model(io::JsonFields(c, "config.json")); });
    EXPECT_NE(e.find("pruned_heads"), std::string::npos) << e;
    EXPECT_NE(e.find("whole key/value groups for layer 1"), std::string::npos) << e;
  }
}

INSTANTIATE_TEST_SUITE_P(Pruners, PrunerTest, ::testing::Combine(::testing::Values("bert", "distilbert", "gpt2", "opt", "llama", "qwen2", "gpt_neox"), ::testing::ValuesIn(pruner_cases())),
                         [](const auto& info) { return std::get<0>(info.param) + "_" + std::get<1>(info.param).name; });

// Hidden dimensions run through every head type's layers: MLM transform, RoBERTa's classifier.
TEST(HiddenPruning, MaskedEqualsShrunkForOtherHeads) {
  for (auto [type, head] : {std::pair<std::string, std::string>{"bert", "BertForMaskedLM"}, {"roberta", "RobertaForSequenceClassification"},
                            {"bert", "BertForTokenClassification"}, {"distilbert", "DistilBertForMaskedLM"},
                            {"distilbert", "DistilBertForTokenClassification"}}) {
    auto c = type == "distilbert" ? arch_config("distilbert") : tiny_bert_config();
    c["model_type"] = type;
    c["architectures"] = {head};
    if (type == "roberta") c["pad_token_id"] = 1;
    torch::manual_seed(3);
    auto m = models::build_model(io::JsonFields(c, "test"), head);
    models::init_weights(*m);
    m->eval();
    Pruner p(spec("granularity: hidden\nmetric: magnitude\nsparsity: 0.375"));
    prune(p, *m);
    auto masked = logits(*m);
    auto keep = speedup::groups_from_masks(*m);
    EXPECT_EQ(keep.hidden.size(), 20u) << head;
    speedup::bake_masks(*m);
    testing::ScratchDir dir("hidden");
    auto report = speedup::shrink_and_save(*m, c, keep, dir.path());
    EXPECT_FALSE(report.hf_loadable);
    auto shrunk = models::load_model(dir.path());
    EXPECT_EQ(shrunk.model->info().hidden_size, 20) << head;
    EXPECT_TRUE(testing::all_close(logits(*shrunk.model), masked, 1e-5, 1e-4)) << head;
  }
}

TEST(Selector, NamesRegexTypesRolesLayersExclude) {
  auto m = tiny_bert();
  auto all = compress::list_layers(*m);
  auto pick = [&](const std::string& yaml) {
    std::vector<std::string> names;
    for (const auto& t : compress::Selector::parse(YAML::Load(yaml), "test").select(all)) names.push_back(t.name);
    return names;
  };
  EXPECT_EQ(pick("types: [embedding]"),
            (std::vector<std::string>{"bert.embeddings.word_embeddings", "bert.embeddings.position_embeddings",
                                      "bert.embeddings.token_type_embeddings"}));
  EXPECT_EQ(pick("roles: [q]\nlayers: [1]"), (std::vector<std::string>{"bert.encoder.layer.1.attention.self.query"}));
  EXPECT_EQ(pick("regex: ['.*layer\\.0\\..*dense']\nexclude: ['.*attention.*']"),
            (std::vector<std::string>{"bert.encoder.layer.0.intermediate.dense", "bert.encoder.layer.0.output.dense"}));
  EXPECT_EQ(pick("names: [classifier, bert.pooler.dense]"), (std::vector<std::string>{"bert.pooler.dense", "classifier"}));
  EXPECT_EQ(pick("types: linear\nexclude: ['.*layer.*']"), (std::vector<std::string>{"bert.pooler.dense", "classifier"}));
  EXPECT_NE(testing::error_of([&] { pick("regex: ['(']"); }).find("not a valid regex"), std::string::npos);
  EXPECT_NE(testing::error_of([&] { pick("kinds: [linear]"); }).find("unknown targets key 'kinds'"), std::string::npos);
}

TEST(Schedule, AgpIterativeOneShot) {
  compress::Schedule agp{compress::Schedule::Kind::kAgp, 10, 50, 10};
  EXPECT_DOUBLE_EQ(agp.sparsity_at(0, 0.8), 0.0);
  EXPECT_DOUBLE_EQ(agp.sparsity_at(10, 0.8), 0.0);
  EXPECT_NEAR(agp.sparsity_at(20, 0.8), 0.8 * (1 - std::pow(0.75, 3)), 1e-12);
  EXPECT_NEAR(agp.sparsity_at(29, 0.8), 0.8 * (1 - std::pow(0.75, 3)), 1e-12);  // held between updates
  EXPECT_DOUBLE_EQ(agp.sparsity_at(50, 0.8), 0.8);
  EXPECT_DOUBLE_EQ(agp.sparsity_at(500, 0.8), 0.8);
  EXPECT_TRUE(agp.updates_at(30));
  EXPECT_FALSE(agp.updates_at(35));
  EXPECT_FALSE(agp.updates_at(60));
  compress::Schedule it{compress::Schedule::Kind::kIterative, 0, 30, 10};
  EXPECT_DOUBLE_EQ(it.sparsity_at(0, 0.8), 0.2);
  EXPECT_DOUBLE_EQ(it.sparsity_at(15, 0.8), 0.4);
  EXPECT_DOUBLE_EQ(it.sparsity_at(30, 0.8), 0.8);
  compress::Schedule once{compress::Schedule::Kind::kOneShot, 5, 0, 1};
  EXPECT_DOUBLE_EQ(once.sparsity_at(4, 0.5), 0.0);
  EXPECT_DOUBLE_EQ(once.sparsity_at(5, 0.5), 0.5);
}

TEST(BertPrunedConfig, PrunedHeadsAndFfnWidthsBuildSmallerLayers) {
  auto c = tiny_bert_config();
  c["pruned_heads"] = {{"0", {1, 3}}, {"1", json::array({0})}};
  c["sqz_intermediate_sizes"] = {20, 7};
  auto m = tiny_bert(c);
  auto s = m->structure();
  EXPECT_EQ(s.attention[0].num_heads, 2);
  EXPECT_EQ(s.attention[1].num_heads, 3);
  EXPECT_EQ(s.attention[0].head_rows[0]->out_features(), 16);
  EXPECT_EQ(s.ffn[1].neuron_cols->in_features(), 7);
  EXPECT_EQ(logits(*m).sizes(), (std::vector<int64_t>{3, 3}));
  c["pruned_heads"] = {{"0", {4}}};
  EXPECT_NE(testing::error_of([&] { tiny_bert(c); }).find("pruned_heads"), std::string::npos);
  c.erase("pruned_heads");
  c["sqz_intermediate_sizes"] = {20};
  EXPECT_NE(testing::error_of([&] { tiny_bert(c); }).find("a list of 2 FFN widths"), std::string::npos);
}

TEST(PrunerErrors, BadSpecsAreNamedBeforeTraining) {
  auto err = [](const std::string& yaml) {
    return testing::error_of([&] {
      auto m = tiny_bert();
      Pruner p(spec(yaml));
      p.attach(*m, 1e-3);
    });
  };
  EXPECT_NE(err("sparsity: 1.0").find("outside [0, 1)"), std::string::npos);
  EXPECT_NE(err("sparsity: -0.1").find("outside [0, 1)"), std::string::npos);
  EXPECT_NE(err("granularity: nm\nn: 2\nm: 3").find("does not divide"), std::string::npos);
  EXPECT_NE(err("granularity: nm\nn: 4\nm: 4").find("0 < n < m"), std::string::npos);
  EXPECT_NE(err("targets: {names: [bert.encoder.layer.9.attention.self.query]}").find("no module named 'bert.encoder.layer.9"),
            std::string::npos);
  EXPECT_NE(err("targets: {regex: ['nothing.*']}").find("select no layer"), std::string::npos);
  EXPECT_NE(err("targets: {roles: [mlp]}").find("unknown role 'mlp'"), std::string::npos);
  EXPECT_NE(err("granularity: head\nsparsity: 0.9").find("would prune all 4 heads of layer 0"), std::string::npos);
  EXPECT_NE(err("granularity: head\nmetric: taylor").find("schedule.start must be > 0"), std::string::npos);
  EXPECT_NE(err("granularity: blocks").find("granularity 'blocks' is not one of"), std::string::npos);
  EXPECT_NE(err("sparsty: 0.5").find("unknown pruner key 'sparsty'"), std::string::npos);
}

TEST(PrunerErrors, WholeLayerDroppedOnlyWhenAllowed) {
  auto m = tiny_bert();
  auto masked_before = logits(*m);
  Pruner p(spec("granularity: head\nmetric: l2\nsparsity: 0.9\nallow_empty_layers: true\ntargets: {layers: [0]}"));
  prune(p, *m);
  EXPECT_EQ(p.report()[0].kept, 0);
  auto masked = logits(*m);
  auto keep = speedup::groups_from_masks(*m);
  EXPECT_TRUE(keep.heads[0].empty());
  speedup::bake_masks(*m);
  testing::ScratchDir dir("drop");
  speedup::shrink_and_save(*m, tiny_bert_config(), keep, dir.path());
  auto shrunk = models::load_model(dir.path());
  EXPECT_EQ(shrunk.model->structure().attention[0].num_heads, 0);
  EXPECT_TRUE(testing::all_close(logits(*shrunk.model), masked, 1e-5, 1e-4));
}

TEST(SpeedupErrors, GroupMaskedOnOneSideIsRefused) {
  auto m = tiny_bert();
  // Head 0's rows of Q, K and V masked (8 each), its output columns not: half a group.
  auto structure = m->structure();
  for (auto& lin : structure.attention[0].head_rows)
    compress::site_of(lin->site, "qkv").add_factor("test", [] {
      auto f = torch::ones({32, 1});
      f.slice(0, 0, 8).zero_();
      return f;
    });
  auto e = testing::error_of([&] { speedup::groups_from_masks(*m); });
  EXPECT_NE(e.find("layer 0 head 0: its query, key and value rows are fully masked but the output projection keeps its 8 columns"), std::string::npos) << e;
}

TEST(Distiller, TeacherMustShareTokenizerAndWidthsNeedProjection) {
  fs::path spam = fs::path(SQZ_SOURCE_DIR) / "models" / "bert-spam";
  auto tok = io::load_tokenizer(spam);
  auto student = tiny_bert(tiny_bert_config(8192, 32));
  json cfg = tiny_bert_config(8192, 32);
  auto attach = [&](const std::string& yaml) {
    compress::Distiller d(compress::DistillSpec::parse(YAML::Load(yaml), "test recipe"));
    d.attach(*student, *tok, cfg, "BertForSequenceClassification");
    return d.trainable().size();
  };
  auto other = testing::fixtures_dir() / "bert-mlm" / "model";
  EXPECT_NE(testing::error_of([&] { attach("teacher: " + other.string()); }).find("tokenizer has 791 tokens"), std::string::npos);
  auto e = testing::error_of([&] { attach("teacher: " + spam.string() + "\nhidden_weight: 1\nproject: false"); });
  EXPECT_NE(e.find("links a 32-wide student state to a 256-wide teacher state"), std::string::npos) << e;
  // 2 student layers -> teacher layers 2 and 4, each link a 32->256 projection (weight + bias).
  EXPECT_EQ(attach("teacher: " + spam.string() + "\nhidden_weight: 1"), 4u);
  EXPECT_NE(testing::error_of([&] { attach("teacher: " + spam.string() + "\nhidden_weight: 1\nhidden_map: [[3, 1]]"); })
                .find("indices run 0..2 (student)"),
            std::string::npos);
}

// A distiller from the shipped spam teacher, attached to `student`, with extra distill keys.
std::unique_ptr<compress::Distiller> spam_distiller(models::TransformerModel& student, const io::json& student_config,
                                                    const std::string& keys) {
  fs::path spam = fs::path(SQZ_SOURCE_DIR) / "models" / "bert-spam";
  auto d = std::make_unique<compress::Distiller>(compress::DistillSpec::parse(YAML::Load("teacher: " + spam.string() + "\n" + keys), "test"));
  d->attach(student, *io::load_tokenizer(spam), student_config, "BertForSequenceClassification");
  return d;
}

TEST(Distiller, ContrastiveTermPicksTheTeachersOwnTokenAndIgnoresPadding) {
  fs::path spam = fs::path(SQZ_SOURCE_DIR) / "models" / "bert-spam";
  auto student = models::load_model(spam);
  const std::string keys = "logits_weight: 0\nlabels_weight: 0\ncontrastive_weight: 1";
  auto d = spam_distiller(*student.model, student.config.value(), keys);
  torch::manual_seed(7);
  auto ids = torch::randint(5, 8000, {2, 12}, torch::kLong);
  auto mask = torch::ones({2, 12}, torch::kLong);
  mask[1].slice(0, 8).fill_(0);
  data::Batch b{ids, mask, torch::zeros({2, 12}, torch::kLong), torch::tensor({0, 1})};
  auto same = d->loss(b, data::compute_loss(*student.model, b, data::Objective::kClassification, true)).item<double>();
  // Changing padded positions' ids changes nothing.
  data::Batch b2 = b;
  b2.input_ids = ids.clone();
  b2.input_ids[1].slice(0, 8).fill_(3);
  // (the memory now holds the first batch; a fresh distiller sees the same state)
  auto d2 = spam_distiller(*student.model, student.config.value(), keys);
  auto task2 = data::compute_loss(*student.model, b2, data::Objective::kClassification, true);
  EXPECT_NEAR(d2->loss(b2, task2).item<double>(), same, 1e-4);
  {
    torch::NoGradGuard g;
    for (auto& p : student.model->parameters()) p.add_(torch::randn(p.sizes()) * 0.1);
  }
  auto task = data::compute_loss(*student.model, b, data::Objective::kClassification, true);
  auto perturbed = d->loss(b, task);
  EXPECT_GT(perturbed.item<double>(), same + 0.1);
  perturbed.backward();  // gradients reach the student
  EXPECT_GT(student.model->parameters()[0].grad().abs().sum().item<double>(), 0.0);
}

TEST(Distiller, LossIsZeroAgainstItselfAndGrowsWithDifference) {
  auto teacher = models::load_model(fs::path(SQZ_SOURCE_DIR) / "models" / "bert-spam");
  auto d = spam_distiller(*teacher.model, teacher.config.value(), "hidden_weight: 1\nattention_weight: 1\nlabels_weight: 0");
  data::Batch b{torch::randint(5, 8000, {2, 10}, torch::kLong), torch::ones({2, 10}, torch::kLong), torch::zeros({2, 10}, torch::kLong),
                 torch::tensor({0, 1})};
  auto task = data::compute_loss(*teacher.model, b, data::Objective::kClassification, true, true);
  EXPECT_NEAR(d->loss(b, task).item<double>(), 0.0, 1e-6);
  {
    torch::NoGradGuard g;
    for (auto& p : teacher.model->parameters()) p.add_(torch::randn(p.sizes()) * 0.05);
  }
  task = data::compute_loss(*teacher.model, b, data::Objective::kClassification, true, true);
  EXPECT_GT(d->loss(b, task).item<double>(), 1e-3);
}

TEST(CompressRecipe, OverridesByPathAndErrorsNameTheKey) {
  std::string text =
      "train: {model: m, task: spam, data: d}\nprune:\n  - {granularity: head, sparsity: 0.5}\nout: o\n";
  auto r = compress::CompressRecipe::from_yaml_text(text, "r.yaml", {"prune.0.sparsity=0.25", "train.steps=7"});
  EXPECT_DOUBLE_EQ(r.prune[0].sparsity, 0.25);
  EXPECT_EQ(r.train.steps, 7);
  EXPECT_EQ(r.prune[0].name, "prune0");
  auto err = [&](const std::string& t, std::vector<std::string> o = {}) {
    return testing::error_of([&] { compress::CompressRecipe::from_yaml_text(t, "r.yaml", o); });
  };
  EXPECT_NE(err(text + "speed_up: true\n").find("r.yaml:5: unknown compress recipe key 'speed_up'"), std::string::npos);
  EXPECT_NE(err(text, {"prune.3.sparsity=0.1"}).find("index 3 but the list has 1"), std::string::npos);
  EXPECT_NE(err("train: {model: m, task: spam, data: d, stepz: 3}\nout: o\n").find("unknown recipe key 'stepz'"), std::string::npos);
  EXPECT_NE(err("train: {task: spam, data: d}\nout: o\n").find("give 'model'"), std::string::npos);
  // The effective recipe reads back to the same thing.
  auto again = compress::CompressRecipe::from_yaml_text(r.to_yaml(), "again", {});
  EXPECT_EQ(again.to_yaml(), r.to_yaml());
}

}  // namespace
}  // namespace sqz

namespace sqz {
namespace {

// The stages of `sqz compress` run alone, outside run_compress: the student stage writes a
// shallower model whose blocks are the teacher's, and the attach stage accepts it.
TEST(PipelineStages, StudentAndAttachRunAlone) {
  testing::ScratchDir tmp("stages");
  const fs::path teacher_dir = fs::path(SQZ_SOURCE_DIR) / "models" / "bert-spam";
  const std::string text = "train:\n  model: " + teacher_dir.string() + "\n  task: spam\n  data: " +
                           (testing::shared_dir() / "data" / "spam").string() +
                           "\n  steps: 2\nstudent:\n  layers: [3, 1]\n"
                           "prune:\n  - {name: heads, granularity: head, metric: magnitude, sparsity: 0.5}\nout: " +
                           (tmp / "out").string() + "\n";
  auto r = compress::CompressRecipe::from_yaml_text(text, "r.yaml", {});
  const fs::path dir = pipeline::make_student(r, tmp / "student");
  auto student = models::load_model(dir);
  auto teacher = models::load_model(teacher_dir);
  ASSERT_EQ(student.model->info().num_layers, 2);
  auto param = [](models::LoadedModel& m, const std::string& hf) {
    for (auto& p : m.model->named_parameters())
      if (models::hf_name(m.model->info(), p.key()) == hf) return p.value();
    return torch::Tensor();
  };
  auto q0 = param(student, "bert.encoder.layer.0.attention.self.query.weight");
  ASSERT_TRUE(q0.defined());
  EXPECT_TRUE(torch::equal(q0, param(teacher, "bert.encoder.layer.3.attention.self.query.weight")));
  EXPECT_TRUE(torch::equal(param(student, "bert.encoder.layer.1.output.dense.weight"),
                           param(teacher, "bert.encoder.layer.1.output.dense.weight")));
  pipeline::CompressRun run{r, tmp.path(), r.train, io::load_tokenizer(teacher_dir)};
  run.train.model = dir.string();
  EXPECT_NO_THROW(pipeline::check_attachments(run));
  auto bad = compress::CompressRecipe::from_yaml_text(text, "r.yaml", {"student.layers=[3, 9]"});
  EXPECT_NE(testing::error_of([&] { pipeline::make_student(bad, tmp / "bad"); }).find("r.yaml: student.layers must be distinct layer indices in [0, 4)"),
            std::string::npos);
}

// The sweep chart's line goes through its markers: polyline coordinates to a tenth of a pixel
// (they were once written with one significant digit, "3e+02"), labels above 100 whole.
TEST(Plot, LineChartLineGoesThroughItsMarkers) {
  eval::Series dev{"compressed", {0.9728, 0.9762, 141.0}, {55.7, 72.0, 93.6}};
  auto svg = eval::svg_line_chart("t", {dev}, "x", "y");
  EXPECT_EQ(svg.find("e+0"), std::string::npos) << svg;
  auto line = svg.substr(svg.find("points=\"") + 8);
  line = line.substr(0, line.find('"'));
  auto circle = svg.substr(svg.find("<circle cx=\"") + 12);
  const double cx = std::stod(circle.substr(0, circle.find('"')));
  EXPECT_NEAR(std::stod(line.substr(0, line.find(','))), cx, 0.05) << line;
  EXPECT_NE(svg.find(">141<"), std::string::npos) << svg;
}

}  // namespace
}  // namespace sqz
