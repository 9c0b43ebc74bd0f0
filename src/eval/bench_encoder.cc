// `sqz bench` on encoders: one forward of [batch, seq] random ids per run, the logits checked.
#include <thread>

#include "core/format.h"
#include "eval/bench_case.h"
#include "eval/libtorch_int8_peer.h"
#include "eval/onnxruntime_peer.h"
#include "kernels/cpu_isa.h"
#include "nn/threads.h"
#include "runtime/bert_encoder.h"

namespace sqz::eval {

namespace {

// Per-op wall time of an engine over `runs` forwards.
template <typename Forward>
io::json profile_engine(runtime::BertEncoder& engine, const Forward& forward, int runs) {
  runtime::OpProfile profile;
  engine.set_profile(&profile);
  for (int i = 0; i < runs; ++i) forward();
  engine.set_profile(nullptr);
  return profile_rows(profile, runs);
}

// sqz's engines, built once for every batch: fp32, bf16, int8, int8 with int8 attention, 2:4.
struct SqzEncoders {
  std::vector<std::pair<std::string, std::unique_ptr<runtime::BertEncoder>>> engines;
  std::optional<models::LoadedModel> sparse;  // what the 2:4 engine runs (its check compares with it in libtorch)
  std::optional<models::LoadedModel> blocks;  // what the int8-block engine runs (likewise)
};

// The engines --case selects; one that cannot be built (or cannot apply) is skipped with its reason.
void build_sqz_encoders(const BenchOptions& o, models::LoadedModel& loaded, SqzEncoders& s, io::json& result) {
  using runtime::Precision;
  auto add = [&](const std::string& name, const models::LoadedModel& m, runtime::EngineOptions eo) {
    if (!case_selected(o, name)) return;
    try {
      s.engines.emplace_back(name, std::make_unique<runtime::BertEncoder>(m, eo));
    } catch (const std::exception& e) {
      skip_case(result, name, e.what());
    }
  };
  add("sqz-fp32", loaded, {Precision::kFp32, o.threads});
  add("sqz-bf16", loaded, {Precision::kBf16, o.threads});
  add("sqz-int8", loaded, {Precision::kInt8, o.threads});
  runtime::EngineOptions int8_attention{Precision::kInt8, o.threads};
  int8_attention.int8_attention = true;
  add("sqz-int8-attn-int8", loaded, int8_attention);
  if (case_selected(o, "sqz-int8-block")) {
    s.blocks = block_sparse_model(o, loaded);
    add("sqz-int8-block", *s.blocks, {Precision::kInt8Blocks, o.threads});
  }
  if (!case_selected(o, "sqz-int8-2:4")) return;
  if (auto why = sparse_24_unfit(*loaded.model); !why.empty()) return skip_case(result, "sqz-int8-2:4", why);
  s.sparse = sparse_24_model(o, loaded);
  add("sqz-int8-2:4", *s.sparse, {Precision::kInt8Sparse24, o.threads});
}

// What an encoder bench runs on: the split's first examples with --task, else random ids.
models::ModelInputs encoder_inputs(const BenchOptions& o, const TaskScorer& scorer, int64_t vocab_size, int64_t batch) {
  if (auto real = scorer.example_inputs(batch, o.seq)) return *real;
  auto gen = at::detail::createCPUGenerator(o.seed + 1);
  models::ModelInputs in;
  in.input_ids = torch::randint(vocab_size, {batch, o.seq}, gen, torch::kLong);
  in.attention_mask = torch::ones({batch, o.seq}, torch::kLong);
  in.token_type_ids = torch::zeros({batch, o.seq}, torch::kLong);
  return in;
}

std::string input_description(const BenchOptions& o, const TaskScorer& scorer) {
  if (scorer.enabled() && !scorer.language_model()) return "the first examples of " + o.split + ", padded to seq";
  return "random ids";
}

// One batch — the split's first examples with --task, else random ids without padding — and
// libtorch fp32's logits on it (every check's reference but the 2:4 case's).
struct EncoderBatch {
  EncoderBatch(models::TransformerModel& model, const BenchOptions& o, const TaskScorer& scorer, int64_t batch)
      : batch(batch), seq(o.seq) {
    inputs = encoder_inputs(o, scorer, model.info().vocab_size, batch);
    if (!model.info().uses_token_type_ids) inputs.token_type_ids = torch::Tensor();
    ids = inputs.input_ids.contiguous();
    mask = inputs.attention_mask.contiguous();
    reference = model.forward(inputs).at("logits");
  }
  std::function<torch::Tensor()> libtorch_reference() const {
    return [r = reference] { return r; };
  }
  int64_t batch, seq;
  models::ModelInputs inputs;
  torch::Tensor ids, mask, reference;
};

// libtorch fp32 (the baseline) and its dynamic int8 Linear on each quantized engine.
void add_libtorch_cases(models::TransformerModel& model, const EncoderBatch& in, const TaskScorer& scorer, std::vector<BenchCase>& cases) {
  auto logits = [&model, &in] { return model.forward(in.inputs).at("logits"); };
  cases.push_back({.name = "libtorch-fp32", .engine = "libtorch " TORCH_VERSION " eager", .precision = "fp32", .baseline = true,
                   .run = timed_whole(logits), .score = scorer.libtorch(model)});
  for (const auto& peer : libtorch_int8_peers(model))
    cases.push_back({.name = peer.name, .engine = "libtorch quantized::linear_dynamic (" + peer.engine + ")", .precision = "int8 dyn",
                     .tolerance = 0.2, .reference = in.libtorch_reference(), .run = timed_whole(logits), .attach = peer.attach,
                     .detach = peer.detach, .score = scorer.libtorch(model)});
}

void add_sqz_cases(const BenchOptions& o, SqzEncoders& sqz_engines, const EncoderBatch& in, const TaskScorer& scorer,
                   std::vector<BenchCase>& cases) {
  for (auto& [name, engine] : sqz_engines.engines) {
    runtime::BertEncoder* e = engine.get();
    auto forward = [&in, e] { return e->forward(in.ids.data_ptr<int64_t>(), in.mask.data_ptr<int64_t>(), nullptr, in.batch, in.seq); };
    std::function<torch::Tensor()> reference = in.libtorch_reference();
    if (e->options().precision == runtime::Precision::kInt8Sparse24)
      reference = [&in, &sqz_engines] { return sqz_engines.sparse->model->forward(in.inputs).at("logits"); };
    if (e->options().precision == runtime::Precision::kInt8Blocks)
      reference = [&in, &sqz_engines] { return sqz_engines.blocks->model->forward(in.inputs).at("logits"); };
    cases.push_back({.name = name, .engine = "sqz runtime", .precision = runtime::precision_name(e->options().precision),
                     .tolerance = engine_tolerance(e->options().precision), .reference = reference,
                     .run = timed_whole([forward, batch = in.batch] {
                       auto r = forward();
                       return torch::from_blob(r.logits.data(), {batch, r.num_labels}, torch::kFloat32).clone();
                     }),
                     .on_timed = [&o, e, forward](io::json& row) {
                       if (o.profile) row["profile"] = profile_engine(*e, forward, o.runs);
                     },
                     .score = scorer.classifier([e](const models::ModelInputs& x) { return e->logits(x); })});
  }
}

// fp32 and int8: one node process per case checks and times it; run() keeps the timing.
void add_onnxruntime_cases(const BenchOptions& o, const OnnxRuntimePeer& ort, const EncoderBatch& in, std::vector<BenchCase>& cases) {
  for (const std::string variant : {"fp32", "int8"}) {
    if (!case_selected(o, "onnxruntime-" + variant)) continue;
    auto timing = std::make_shared<TimingStats>();
    auto run = [&o, &ort, &in, variant, timing] {
      const int64_t* types = in.inputs.token_type_ids.defined() ? in.inputs.token_type_ids.data_ptr<int64_t>() : nullptr;
      auto r = run_onnxruntime(ort, variant, in.ids.data_ptr<int64_t>(), in.mask.data_ptr<int64_t>(), types, in.batch, in.seq, o.runs,
                               o.warmup, o.threads);
      *timing = r.timing;
      return torch::tensor(r.output).reshape({in.batch, -1});
    };
    cases.push_back({.name = "onnxruntime-" + variant, .engine = "ONNX Runtime " + ort.version + " (onnxruntime-node, CPU)",
                     .precision = variant == "fp32" ? "fp32" : ort.int8_precision(), .tolerance = variant == "fp32" ? 1e-4 : 0.2,
                     .reference = in.libtorch_reference(), .run = timed_whole(run),
                     .own_timings = [timing] { return std::vector<TimingStats>{*timing}; }});
  }
}

// CTranslate2 and OpenVINO: one Python process per case checks and times it, as ONNX Runtime's.
void add_python_peer_cases(const BenchOptions& o, const std::vector<PythonPeer>& peers, const OnnxRuntimePeer& files, const EncoderBatch& in,
                           std::vector<BenchCase>& cases) {
  for (const auto& peer : peers)
    for (const auto& variant : peer.variants) {
      if (!case_selected(o, peer.case_name(variant))) continue;
      auto timing = std::make_shared<TimingStats>();
      auto run = [&o, &peer, &files, &in, variant, timing] {
        const int64_t* types = in.inputs.token_type_ids.defined() ? in.inputs.token_type_ids.data_ptr<int64_t>() : nullptr;
        auto r = run_python_peer(peer, files, variant, in.ids.data_ptr<int64_t>(), in.mask.data_ptr<int64_t>(), types, in.batch, in.seq,
                                 o.runs, o.warmup, o.threads);
        *timing = r.timing;
        return torch::tensor(r.output).reshape({in.batch, -1});
      };
      cases.push_back({.name = peer.case_name(variant), .engine = peer.description(), .precision = peer.precision(variant),
                       .tolerance = peer.tolerance(variant), .reference = in.libtorch_reference(), .run = timed_whole(run),
                       .own_timings = [timing] { return std::vector<TimingStats>{*timing}; }});
    }
}

}  // namespace

io::json run_encoder_bench(const BenchOptions& o, models::LoadedModel& loaded, const std::string& model_name) {
  auto& model = *loaded.model;
  model.eval();
  torch::NoGradGuard no_grad;
  const int saved_threads = torch::get_num_threads();
  set_torch_threads(o.threads);

  io::json result = {{"model", model_name}, {"model_type", model.info().model_type}, {"seq", o.seq}, {"threads", o.threads},
                     {"warmup", o.warmup}, {"runs", o.runs}, {"isa", kernels::isa_name(kernels::active_isa())},
                     {"rows", io::json::array()}, {"skipped", io::json::array()}};
  const TaskScorer scorer(o, loaded);
  result["input"] = input_description(o, scorer);
  SqzEncoders sqz_engines;
  if (!o.peers_only) build_sqz_encoders(o, loaded, sqz_engines, result);
  const int peak_threads = o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());
  measure_peaks(peak_threads);
  // Peers in their own processes, timed in the parent only.
  const bool classifier = model.info().model_type == "bert" && model.info().head_class == "BertForSequenceClassification";
  ProcessPeers peers = process_peers_or_skip(
      o, loaded,
      classifier ? "" : "the ONNX exporter (scripts/onnx_bert.py) and the peers' runner (scripts/peer_encoder.py) take BERT sequence classifiers; "
                        "this model is " + model.info().head_class,
      result);

  for (int64_t batch : o.batches) {
    EncoderBatch in(model, o, scorer, batch);
    std::vector<BenchCase> cases;
    add_libtorch_cases(model, in, scorer, cases);
    add_sqz_cases(o, sqz_engines, in, scorer, cases);
    if (peers.ort) add_onnxruntime_cases(o, *peers.ort, in, cases);
    if (peers.shared_files()) add_python_peer_cases(o, peers.python, *peers.shared_files(), in, cases);
    run_cases(cases, o, batch, /*decoder=*/false, encoder_timed_fields(batch, forward_flops(model, batch, o.seq) / 1e9), result["rows"]);
  }
  add_peak_fractions(result, peak_threads);
  set_torch_threads(saved_threads);
  return result;
}

io::json run_packed_encoder_bench(const BenchOptions& o, const runtime::BertEncoder& engine, const TaskScorer& scorer, io::json result) {
  result["input"] = input_description(o, scorer);
  for (int64_t batch : o.batches) {
    const models::ModelInputs in = encoder_inputs(o, scorer, engine.vocab_size(), batch);
    const torch::Tensor ids = in.input_ids.contiguous(), mask = in.attention_mask.contiguous();
    const runtime::BertEncoder* e = &engine;
    std::vector<BenchCase> cases{{.name = packed_case_name(engine.options()), .engine = "sqz runtime (runtime dir)",
                                  .precision = runtime::precision_name(engine.options().precision),
                                  .run = timed_whole([e, ids, mask, batch, seq = o.seq] {
                                    auto r = e->forward(ids.data_ptr<int64_t>(), mask.data_ptr<int64_t>(), nullptr, batch, seq);
                                    return torch::from_blob(r.logits.data(), {batch, r.num_labels}, torch::kFloat32).clone();
                                  }),
                                  .score = scorer.classifier([e](const models::ModelInputs& x) { return e->logits(x); })}};
    run_cases(cases, o, batch, /*decoder=*/false, encoder_timed_fields(batch, 0.0), result["rows"]);
  }
  return result;
}

void print_encoder_table(const io::json& result, std::ostream& out) {
  out << "sqz bench: " << result["model"].get<std::string>() << ", seq " << result["seq"].get<int64_t>() << ", "
      << result["threads"].get<int>() << " threads, median of " << result["runs"].get<int>() << " runs after "
      << result["warmup"].get<int>() << " warm-up; sqz kernels: " << result["isa"].get<std::string>() << "; input: "
      << result.value("input", std::string("random ids")) << "\n\n";
  const bool scored = has_scores(result);
  if (result.contains("peaks")) {
    const auto& p = result["peaks"];
    out << "measured peaks (" << p["threads"].get<int>() << " threads): int8 " << format_fixed(p["int8_gops"].get<double>(), 0)
        << " GOP/s (vpdpbusd)";
    if (p.value("amx_int8_gops", 0.0) > 0) out << ", " << format_fixed(p["amx_int8_gops"].get<double>(), 0) << " GOP/s (AMX tiles)";
    out << ", fp32 " << format_fixed(p["fp32_gflops"].get<double>(), 0) << " GFLOP/s, bf16 "
        << format_fixed(p["bf16_gflops"].get<double>(), 0) << " GFLOP/s (vdpbf16ps)";
    if (p.value("amx_bf16_gflops", 0.0) > 0) out << ", " << format_fixed(p["amx_bf16_gflops"].get<double>(), 0) << " GFLOP/s (AMX bf16 tiles)";
    out << " (of peak: GFLOP/s over the peak of the row's precision, dense int8 and bf16 against AMX where "
        << "the CPU has it; sparse rows count dense-equivalent work against vpdpbusd)\n\n";
  }
  out << "| case | batch | median ms | p10–p90 ms | seq/s | GFLOP/s | of peak | vs libtorch fp32 | max rel err | setting |" << (scored ? " dev score |" : "") << " status |\n";
  out << "|---|---|---|---|---|---|---|---|---|---|" << (scored ? "---|" : "") << "---|\n";
  for (const auto& r : result["rows"]) {
    auto num = [&](const char* key, int digits, const std::string& suffix = "") {
      return r.contains(key) ? format_fixed(r[key].get<double>(), digits) + suffix : std::string("-");
    };
    out << "| " << r["case"].get<std::string>() << " | " << r["batch"].get<int64_t>() << " | " << num("median_ms", 2) << " | "
        << (r.contains("p10_ms") ? num("p10_ms", 2) + "–" + num("p90_ms", 2) : "-") << " | " << num("sequences_per_s", 1) << " | "
        << num("gflop_per_s", 1) << " | " << num("peak_fraction", 2) << " | " << num("speedup_vs_libtorch_fp32", 2, "x") << " | " << num("max_rel_err", 6) << " | "
        << r.value("setting", std::string("-")) << " | " << (scored ? score_text(r) + " | " : "") << r["status"].get<std::string>() << " |\n";
  }
  print_profile_tables(result, out, "", "forward");
  print_footer(result, out);
}

}  // namespace sqz::eval
