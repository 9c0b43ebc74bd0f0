// `sqz bench` on encoder-decoders (BART, T5): per run, encode a source of --seq tokens and take the
// first decoder step (the "prefill" phase: what a request costs before its first token), then
// --decode-steps greedy tokens against the self- and cross-attention caches (per-token decode).
// The table is the decoders'; each case's first-step logits are checked against libtorch fp32.
// Peers: libtorch's dynamic int8, ONNX Runtime and OpenVINO on scripts/onnx_seq2seq.py's graphs
// (fp32, int8), CTranslate2 (fp32, int8).
#include <chrono>

#include "core/error.h"
#include "eval/bandwidth.h"
#include "eval/bench_case.h"
#include "eval/libtorch_int8_peer.h"
#include "kernels/cpu_isa.h"
#include "kernels/parallel.h"
#include "models/generation.h"
#include "nn/threads.h"
#include "runtime/encoder_decoder.h"

namespace sqz::eval {

namespace {

// One request on libtorch: the first step's logits [batch, vocab]; phases {encode + first step ms,
// decode ms per token}.
torch::Tensor libtorch_seq2seq(models::TransformerModel& m, const torch::Tensor& source, int64_t steps, std::vector<double>* ms) {
  models::DecodingSteps decoding(m, source, torch::ones_like(source), "bench");
  auto t0 = std::chrono::steady_clock::now();
  auto logits = decoding.next_logits(torch::full({source.size(0), 1}, *m.info().decoder_start_token_id, torch::kLong));
  auto t1 = std::chrono::steady_clock::now();
  auto next = logits.argmax(-1, true);
  for (int64_t s = 0; s < steps; ++s) next = decoding.next_logits(next).argmax(-1, true);
  auto t2 = std::chrono::steady_clock::now();
  *ms = {ms_between(t0, t1), ms_between(t1, t2) / static_cast<double>(std::max<int64_t>(steps, 1))};
  return logits;
}

// The same request on sqz's engine.
torch::Tensor sqz_seq2seq(const runtime::EncoderDecoder& e, const torch::Tensor& source, int64_t steps, std::vector<double>* ms) {
  const int64_t batch = source.size(0), len = source.size(1), vocab = e.vocab_size();
  auto ids = source.contiguous();
  std::vector<int64_t> step(static_cast<size_t>(batch), e.decoder_start_token_id());
  auto t0 = std::chrono::steady_clock::now();
  auto cache = e.new_cache(e.encode(ids.data_ptr<int64_t>(), nullptr, batch, len), nullptr, batch, len, steps + 1);
  auto logits = e.decode(cache, step.data(), 1, false);
  auto t1 = std::chrono::steady_clock::now();
  auto first = torch::from_blob(logits.data(), {batch, vocab}, torch::kFloat32).clone();
  for (int64_t s = 0; s < steps; ++s) {
    for (int64_t b = 0; b < batch; ++b) step[b] = std::max_element(&logits[b * vocab], &logits[(b + 1) * vocab]) - &logits[b * vocab];
    logits = e.decode(cache, step.data(), 1, false);
  }
  auto t2 = std::chrono::steady_clock::now();
  *ms = {ms_between(t0, t1), ms_between(t1, t2) / static_cast<double>(std::max<int64_t>(steps, 1))};
  return first;
}

using SqzSeq2Seq = SqzEngineCase<runtime::EncoderDecoder>;

// The checks' reference: `m`'s logits at the first decoder step.
std::function<torch::Tensor()> first_step_logits(models::TransformerModel* m, const torch::Tensor& source) {
  return [m, source] {
    models::DecodingSteps decoding(*m, source, torch::ones_like(source), "bench");
    return decoding.next_logits(torch::full({source.size(0), 1}, *m->info().decoder_start_token_id, torch::kLong));
  };
}

void add_sqz_cases(const BenchOptions& o, const std::vector<SqzSeq2Seq>& engines, const torch::Tensor& source, std::vector<BenchCase>& cases) {
  for (const auto& e : engines) {
    runtime::EncoderDecoder* engine = e.engine;
    cases.push_back({.name = e.name, .engine = "sqz runtime", .precision = runtime::precision_name(engine->options().precision),
                     .tolerance = engine_tolerance(engine->options().precision),
                     .reference = e.reference ? first_step_logits(e.reference, source) : nullptr,
                     .run = [engine, source, steps = o.decode_steps](std::vector<double>* ms) { return sqz_seq2seq(*engine, source, steps, ms); },
                     .on_timed = [engine](io::json& row) { row["weight_bytes"] = engine->weight_bytes(); }});
  }
}

// fp32 and int8 graphs of scripts/onnx_seq2seq.py: one node process per case checks and times it.
void add_seq2seq_onnxruntime_cases(const BenchOptions& o, const OnnxRuntimePeer& ort, models::TransformerModel& model, const torch::Tensor& source,
                           std::vector<BenchCase>& cases) {
  for (const std::string variant : {"fp32", "int8"}) {
    if (!case_selected(o, "onnxruntime-" + variant)) continue;
    auto timed = std::make_shared<OnnxRuntimeDecodeRun>();
    auto run = [&o, &ort, variant, timed, source](std::vector<double>*) {
      *timed = run_onnxruntime_seq2seq(ort, variant, source, o.decode_steps, o.runs, o.warmup, o.threads);
      return torch::tensor(timed->first_logits).reshape({source.size(0), -1});
    };
    cases.push_back({.name = "onnxruntime-" + variant, .engine = "ONNX Runtime " + ort.version + " (onnxruntime-node, CPU)",
                     .precision = variant == "fp32" ? "fp32" : ort.int8_precision(), .tolerance = variant == "fp32" ? 1e-4 : 0.2,
                     .reference = first_step_logits(&model, source), .run = run, .own_timings = [timed] {
                       return std::vector<TimingStats>{timing_stats(timed->prefill_ms), timing_stats(timed->decode_ms_per_token)};
                     }});
  }
}

// CTranslate2 (its own Transformers converter) and OpenVINO (the ONNX graphs): one Python process
// per case checks and times it.
void add_seq2seq_python_peer_cases(const BenchOptions& o, const std::vector<PythonPeer>& peers, const OnnxRuntimePeer& files,
                           models::TransformerModel& model, const torch::Tensor& source, std::vector<BenchCase>& cases) {
  for (const auto& peer : peers)
    for (const auto& variant : peer.variants) {
      if (!case_selected(o, peer.case_name(variant))) continue;
      auto timed = std::make_shared<OnnxRuntimeDecodeRun>();
      auto run = [&o, &peer, &files, variant, timed, source](std::vector<double>*) {
        *timed = run_python_peer_seq2seq(peer, files, variant, source, o.decode_steps, o.runs, o.warmup, o.threads);
        return torch::tensor(timed->first_logits).reshape({source.size(0), -1});
      };
      cases.push_back({.name = peer.case_name(variant), .engine = peer.description(), .precision = peer.precision(variant),
                       .tolerance = peer.tolerance(variant), .reference = first_step_logits(&model, source), .run = run,
                       .own_timings = [timed] {
                         return std::vector<TimingStats>{timing_stats(timed->prefill_ms), timing_stats(timed->decode_ms_per_token)};
                       }});
    }
}

// Random source ids, specials aside (ids below 4 are BART's and most tokenizers' special tokens).
torch::Tensor random_source(int64_t vocab, int64_t batch, int64_t seq, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed + 1);
  return torch::randint(std::min<int64_t>(4, vocab - 1), vocab, {batch, seq}, gen, torch::kLong);
}

// max_positions 0: no position table (T5), no limit.
void check_lengths(const BenchOptions& o, int64_t max_positions) {
  if (max_positions <= 0) return;
  if (o.seq > max_positions) fail_invalid("bench: --seq ", o.seq, " exceeds the model's max_position_embeddings (", max_positions, ")");
  if (o.decode_steps + 1 > max_positions)
    fail_invalid("bench: --decode-steps ", o.decode_steps, " plus the start token exceed the model's max_position_embeddings (",
                 max_positions, ")");
}

io::json header(const BenchOptions& o, const std::string& model_name, const std::string& model_type) {
  return {{"model", model_name}, {"model_type", model_type}, {"prompt", o.seq}, {"decode_steps", o.decode_steps},
          {"threads", o.threads}, {"warmup", o.warmup}, {"runs", o.runs}, {"isa", kernels::isa_name(kernels::active_isa())},
          {"read_bandwidth_gbps", measure_read_bandwidth_gbps()},
          {"phases", "prefill = encode the source + the first decoder step; decode = each greedy step after it"},
          {"rows", io::json::array()}, {"skipped", io::json::array()}};
}

}  // namespace

io::json run_seq2seq_bench(const BenchOptions& o, models::LoadedModel& loaded, const std::string& model_name) {
  if (!o.task.empty()) fail_invalid("bench --task: seq2seq tasks are scored by sqz eval (with --engine runtime for the engine)");
  auto& model = *loaded.model;
  const auto& info = model.info();
  if (!info.decoder_start_token_id) fail_invalid(loaded.config.source(), ": decoder_start_token_id is not set; decoding cannot start");
  check_lengths(o, info.max_positions);
  model.eval();
  torch::NoGradGuard no_grad;
  const int saved_threads = torch::get_num_threads();
  set_torch_threads(o.threads);
  kernels::set_num_threads(o.threads);
  io::json result = header(o, model_name, info.model_type);
  std::optional<models::LoadedModel> sparse;
  std::optional<models::LoadedModel> blocks;  // what the int8-block engine runs
  std::vector<std::unique_ptr<runtime::EncoderDecoder>> owned;
  std::vector<SqzSeq2Seq> engines;
  if (!o.peers_only) build_sqz_engines(o, loaded, sparse, blocks, owned, engines, result);
  // Peers in their own processes, timed in the parent only.
  const ProcessPeers peers = process_peers_or_skip(o, loaded, "", result);
  for (int64_t batch : o.batches) {
    const torch::Tensor source = random_source(info.vocab_size, batch, o.seq, o.seed);
    auto generate = [&model, source, steps = o.decode_steps](std::vector<double>* ms) { return libtorch_seq2seq(model, source, steps, ms); };
    std::vector<BenchCase> cases;
    cases.push_back({.name = "libtorch-fp32", .engine = "libtorch " TORCH_VERSION " eager", .precision = "fp32", .baseline = true,
                     .reference = first_step_logits(&model, source), .run = generate});
    for (const auto& peer : libtorch_int8_peers(model))
      cases.push_back({.name = peer.name, .engine = "libtorch quantized::linear_dynamic (" + peer.engine + ")", .precision = "int8 dyn",
                       .tolerance = 0.2, .reference = first_step_logits(&model, source), .run = generate, .attach = peer.attach,
                       .detach = peer.detach});
    add_sqz_cases(o, engines, source, cases);
    if (peers.ort) add_seq2seq_onnxruntime_cases(o, *peers.ort, model, source, cases);
    if (peers.shared_files()) add_seq2seq_python_peer_cases(o, peers.python, *peers.shared_files(), model, source, cases);
    run_cases(cases, o, batch, /*decoder=*/true, decoder_timed_fields(batch), result["rows"]);
  }
  set_torch_threads(saved_threads);
  return result;
}

io::json run_packed_seq2seq_bench(const BenchOptions& o, runtime::EncoderDecoder& engine, io::json result) {
  if (!o.task.empty()) fail_invalid("bench --task: seq2seq tasks are scored by sqz eval (with --engine runtime for the engine)");
  check_lengths(o, engine.max_positions());
  kernels::set_num_threads(o.threads);
  auto h = header(o, result["model"].get<std::string>(), result["model_type"].get<std::string>());
  for (const char* key : {"prompt", "decode_steps", "read_bandwidth_gbps", "phases"}) result[key] = h[key];
  for (int64_t batch : o.batches) {
    std::vector<BenchCase> cases;
    std::vector<SqzSeq2Seq> engines{{packed_case_name(engine.options()), &engine, nullptr}};
    add_sqz_cases(o, engines, random_source(engine.vocab_size(), batch, o.seq, o.seed), cases);
    run_cases(cases, o, batch, /*decoder=*/true, decoder_timed_fields(batch), result["rows"]);
  }
  return result;
}

}  // namespace sqz::eval
