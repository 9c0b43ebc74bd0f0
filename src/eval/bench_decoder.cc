// `sqz bench` on decoders: prefill a prompt of --seq tokens, then --decode-steps greedy tokens
// against the KV cache; prefill and per-token decode time are reported apart (they stress
// different things: compute, then weight bandwidth).
#include <chrono>

#include "core/format.h"
#include "eval/bandwidth.h"
#include "eval/bench_case.h"
#include "eval/libtorch_int8_peer.h"
#include "eval/onnxruntime_peer.h"
#include "kernels/cpu_isa.h"
#include "kernels/parallel.h"
#include "nn/threads.h"
#include "runtime/decoder.h"

namespace sqz::eval {

namespace {

// `steps` greedy tokens after a prefill that returned `logits`, against its `cache`.
void decode_greedy(const runtime::Decoder& d, runtime::Decoder::Cache& cache, std::vector<float> logits, int64_t steps) {
  for (int64_t s = 0; s < steps; ++s) logits = d.forward(cache, d.greedy_next(logits).data(), 1, false);
}

// A decoder's per-op wall time over `runs` generations: {prefill: per prompt, decode: per token}.
io::json profile_decoder(runtime::Decoder& decoder, const torch::Tensor& prompt, int runs, int64_t decode_steps) {
  runtime::OpProfile prefill, decode;
  const int64_t batch = prompt.size(0), len = prompt.size(1);
  auto ids = prompt.contiguous();
  for (int i = 0; i < runs; ++i) {
    auto cache = decoder.new_cache(batch, len + decode_steps);
    decoder.set_profile(&prefill);
    auto logits = decoder.forward(cache, ids.data_ptr<int64_t>(), len, false);
    decoder.set_profile(&decode);
    decode_greedy(decoder, cache, std::move(logits), decode_steps);
  }
  decoder.set_profile(nullptr);
  return {{"prefill", profile_rows(prefill, runs)}, {"decode", profile_rows(decode, runs * std::max<int64_t>(decode_steps, 1))}};
}

// One generation on libtorch: the prompt's last logits; phases {prefill ms, decode ms per token}.
torch::Tensor libtorch_generate(models::TransformerModel& m, const torch::Tensor& prompt, int64_t steps, std::vector<double>* ms) {
  models::KVCache cache;
  models::ModelInputs in;
  in.input_ids = prompt;
  in.cache = &cache;
  auto t0 = std::chrono::steady_clock::now();
  auto logits = m.forward(in).at("logits").select(1, -1);
  auto t1 = std::chrono::steady_clock::now();
  auto next = logits.argmax(-1, true);
  for (int64_t s = 0; s < steps; ++s) {
    in.input_ids = next;
    next = m.forward(in).at("logits").select(1, -1).argmax(-1, true);
  }
  auto t2 = std::chrono::steady_clock::now();
  *ms = {ms_between(t0, t1), ms_between(t1, t2) / static_cast<double>(std::max<int64_t>(steps, 1))};
  return logits;
}

// The same on sqz's decoder.
torch::Tensor sqz_generate(const runtime::Decoder& d, const torch::Tensor& prompt, int64_t steps, std::vector<double>* ms) {
  const int64_t batch = prompt.size(0), len = prompt.size(1);
  auto cache = d.new_cache(batch, len + steps);
  auto ids = prompt.contiguous();
  auto t0 = std::chrono::steady_clock::now();
  auto logits = d.forward(cache, ids.data_ptr<int64_t>(), len, false);
  auto t1 = std::chrono::steady_clock::now();
  auto first = torch::from_blob(logits.data(), {batch, d.vocab_size()}, torch::kFloat32).clone();
  decode_greedy(d, cache, std::move(logits), steps);
  auto t2 = std::chrono::steady_clock::now();
  *ms = {ms_between(t0, t1), ms_between(t1, t2) / static_cast<double>(std::max<int64_t>(steps, 1))};
  return first;
}

using SqzDecoder = SqzEngineCase<runtime::Decoder>;

// The checks' reference: `m`'s logits at the prompt's last position.
std::function<torch::Tensor()> last_logits(models::TransformerModel* m, const torch::Tensor& prompt) {
  return [m, prompt] {
    models::ModelInputs in;
    in.input_ids = prompt;
    return m->forward(in).at("logits").select(1, -1);
  };
}

// libtorch fp32 (the baseline) and its dynamic int8 Linear on each quantized engine.
void add_libtorch_cases(const BenchOptions& o, models::TransformerModel& model, const torch::Tensor& prompt, const TaskScorer& scorer,
                        std::vector<BenchCase>& cases) {
  auto generate = [&model, prompt, steps = o.decode_steps](std::vector<double>* ms) { return libtorch_generate(model, prompt, steps, ms); };
  cases.push_back({.name = "libtorch-fp32", .baseline = true, .reference = last_logits(&model, prompt), .run = generate,
                   .score = scorer.libtorch(model)});
  for (const auto& peer : libtorch_int8_peers(model))
    cases.push_back({.name = peer.name, .tolerance = 0.2, .reference = last_logits(&model, prompt), .run = generate,
                     .attach = peer.attach, .detach = peer.detach, .score = scorer.libtorch(model)});
}

void add_sqz_cases(const BenchOptions& o, std::vector<SqzDecoder>& engines, const torch::Tensor& prompt, double bandwidth,
                   const TaskScorer& scorer, std::vector<BenchCase>& cases) {
  for (auto& e : engines) {
    runtime::Decoder* d = e.engine;
    cases.push_back({.name = e.name, .tolerance = engine_tolerance(d->options().precision), .reference = e.reference ? last_logits(e.reference, prompt) : nullptr,
                     .run = [d, prompt, steps = o.decode_steps](std::vector<double>* ms) { return sqz_generate(*d, prompt, steps, ms); },
                     .on_timed = [&o, d, prompt, bandwidth](io::json& row) {
                       // Reading every weight once per step at the measured bandwidth: the floor for batch-1 decode.
                       const double floor_ms = static_cast<double>(d->weight_bytes()) / (bandwidth * 1e9) * 1e3;
                       row.update({{"weight_bytes", d->weight_bytes()}, {"weight_stream_ms", floor_ms},
                                   {"decode_vs_weight_stream", row["decode_ms_per_token"].get<double>() / floor_ms}});
                       if (o.profile) row["profile"] = profile_decoder(*d, prompt, o.runs, o.decode_steps);
                     },
                     .score = scorer.lm([d](const torch::Tensor& ids, const torch::Tensor& mask) { return runtime::prefill_logits(*d, ids, mask); })});
  }
}

// fp32 and int8: one node process per case checks and times it; run() keeps the timings.
void add_onnxruntime_cases(const BenchOptions& o, const OnnxRuntimePeer& ort, models::TransformerModel& model, const torch::Tensor& prompt,
                           std::vector<BenchCase>& cases) {
  for (const std::string variant : {"fp32", "int8"}) {
    if (!case_selected(o, "onnxruntime-" + variant)) continue;
    auto timed = std::make_shared<OnnxRuntimeDecodeRun>();
    auto run = [&o, &ort, &model, variant, timed, prompt](std::vector<double>*) {
      *timed = run_onnxruntime_decoder(ort, variant, model, prompt, o.decode_steps, o.runs, o.warmup, o.threads);
      return torch::tensor(timed->first_logits).reshape({prompt.size(0), -1});
    };
    cases.push_back({.name = "onnxruntime-" + variant, .engine = "ONNX Runtime " + ort.version + " (onnxruntime-node, CPU)",
                     .precision = variant == "fp32" ? "fp32" : ort.int8_precision(), .tolerance = variant == "fp32" ? 1e-4 : 0.2,
                     .reference = last_logits(&model, prompt),
                     .run = run, .own_timings = [timed] {
                       return std::vector<TimingStats>{timing_stats(timed->prefill_ms), timing_stats(timed->decode_ms_per_token)};
                     }});
  }
}

// CTranslate2 and OpenVINO: one Python process per case checks and times it, as ONNX Runtime's.
void add_python_peer_cases(const BenchOptions& o, const std::vector<PythonPeer>& peers, const OnnxRuntimePeer& files,
                           models::TransformerModel& model, const torch::Tensor& prompt, std::vector<BenchCase>& cases) {
  for (const auto& peer : peers)
    for (const auto& variant : peer.variants) {
      if (!case_selected(o, peer.case_name(variant))) continue;
      auto timed = std::make_shared<OnnxRuntimeDecodeRun>();
      auto run = [&o, &peer, &files, &model, variant, timed, prompt](std::vector<double>*) {
        *timed = run_python_peer_decoder(peer, files, variant, model, prompt, o.decode_steps, o.runs, o.warmup, o.threads);
        return torch::tensor(timed->first_logits).reshape({prompt.size(0), -1});
      };
      cases.push_back({.name = peer.case_name(variant), .engine = peer.description(), .precision = peer.precision(variant),
                       .tolerance = peer.tolerance(variant), .reference = last_logits(&model, prompt), .run = run,
                       .own_timings = [timed] {
                         return std::vector<TimingStats>{timing_stats(timed->prefill_ms), timing_stats(timed->decode_ms_per_token)};
                       }});
    }
}

}  // namespace

io::json run_decoder_bench(const BenchOptions& o, models::LoadedModel& loaded, const std::string& model_name) {
  auto& model = *loaded.model;
  model.eval();
  torch::NoGradGuard no_grad;
  const int saved_threads = torch::get_num_threads();
  set_torch_threads(o.threads);
  kernels::set_num_threads(o.threads);
  const double bandwidth = measure_read_bandwidth_gbps();
  io::json result = {{"model", model_name}, {"model_type", model.info().model_type}, {"prompt", o.seq},
                     {"decode_steps", o.decode_steps}, {"threads", o.threads}, {"warmup", o.warmup}, {"runs", o.runs},
                     {"isa", kernels::isa_name(kernels::active_isa())}, {"read_bandwidth_gbps", bandwidth},
                     {"rows", io::json::array()}, {"skipped", io::json::array()}};
  const TaskScorer scorer(o, loaded);
  std::optional<models::LoadedModel> sparse;  // what the 2:4 engine runs
  std::optional<models::LoadedModel> blocks;  // what the int8-block engine runs
  std::vector<std::unique_ptr<runtime::Decoder>> owned;
  std::vector<SqzDecoder> engines;
  if (!o.peers_only) build_sqz_engines(o, loaded, sparse, blocks, owned, engines, result);
  // Peers in their own processes, timed in the parent only.
  const std::string type = model.info().model_type;
  ProcessPeers peers = process_peers_or_skip(
      o, loaded, onnx_exporter_for(type).empty() ? "the peers' exporters and runners take GPT-2, OPT and Llama decoders; this model is " + type : "",
      result);

  for (int64_t batch : o.batches) {
    auto gen = at::detail::createCPUGenerator(o.seed + 1);
    const torch::Tensor prompt = torch::randint(model.info().vocab_size, {batch, o.seq}, gen, torch::kLong);
    std::vector<BenchCase> cases;
    add_libtorch_cases(o, model, prompt, scorer, cases);
    add_sqz_cases(o, engines, prompt, bandwidth, scorer, cases);
    if (peers.ort) add_onnxruntime_cases(o, *peers.ort, model, prompt, cases);
    if (peers.shared_files()) add_python_peer_cases(o, peers.python, *peers.shared_files(), model, prompt, cases);
    run_cases(cases, o, batch, /*decoder=*/true, decoder_timed_fields(batch), result["rows"]);
  }
  set_torch_threads(saved_threads);
  return result;
}

io::json run_packed_decoder_bench(const BenchOptions& o, runtime::Decoder& decoder, const TaskScorer& scorer, io::json result) {
  kernels::set_num_threads(o.threads);
  const double bandwidth = measure_read_bandwidth_gbps();
  result.update({{"prompt", o.seq}, {"decode_steps", o.decode_steps}, {"read_bandwidth_gbps", bandwidth}});
  for (int64_t batch : o.batches) {
    auto gen = at::detail::createCPUGenerator(o.seed + 1);
    const torch::Tensor prompt = torch::randint(decoder.vocab_size(), {batch, o.seq}, gen, torch::kLong);
    std::vector<BenchCase> cases;
    std::vector<SqzDecoder> engines{{packed_case_name(decoder.options()), &decoder, nullptr}};
    add_sqz_cases(o, engines, prompt, bandwidth, scorer, cases);
    run_cases(cases, o, batch, /*decoder=*/true, decoder_timed_fields(batch), result["rows"]);
  }
  return result;
}

void print_decoder_table(const io::json& result, std::ostream& out) {
  out << "sqz bench: " << result["model"].get<std::string>() << ", prompt " << result["prompt"].get<int64_t>() << " then "
      << result["decode_steps"].get<int64_t>() << " greedy tokens, " << result["threads"].get<int>() << " threads, median of "
      << result["runs"].get<int>() << " runs after " << result["warmup"].get<int>() << " warm-up; sqz kernels: "
      << result["isa"].get<std::string>() << "; measured read bandwidth " << format_fixed(result["read_bandwidth_gbps"].get<double>(), 1)
      << " GB/s\n";
  if (result.contains("phases")) out << result["phases"].get<std::string>() << "\n";
  out << "\n";
  const bool scored = has_scores(result);
  out << "| case | batch | prefill ms | decode ms/token | tokens/s | prefill vs libtorch | decode vs libtorch | decode / weight-stream time | max rel err | setting |" << (scored ? " dev score |" : "") << " status |\n";
  out << "|---|---|---|---|---|---|---|---|---|---|" << (scored ? "---|" : "") << "---|\n";
  for (const auto& r : result["rows"]) {
    auto num = [&](const char* key, int digits, const std::string& suffix = "") {
      return r.contains(key) ? format_fixed(r[key].get<double>(), digits) + suffix : std::string("-");
    };
    out << "| " << r["case"].get<std::string>() << " | " << r["batch"].get<int64_t>() << " | " << num("prefill_ms", 1) << " | "
        << num("decode_ms_per_token", 2) << " | " << num("decode_tokens_per_s", 1) << " | "
        << num("prefill_speedup_vs_libtorch_fp32", 2, "x") << " | " << num("decode_speedup_vs_libtorch_fp32", 2, "x") << " | " << num("decode_vs_weight_stream", 2, "x")
        << " | " << num("max_rel_err", 6) << " | " << r.value("setting", std::string("-")) << " | "
        << (scored ? score_text(r) + " | " : "") << r["status"].get<std::string>() << " |\n";
  }
  print_profile_tables(result, out, "prefill", "prompt");
  print_profile_tables(result, out, "decode", "token");
  print_footer(result, out);
}

}  // namespace sqz::eval
