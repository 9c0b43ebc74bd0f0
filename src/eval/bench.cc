#include "eval/bench.h"

#include <unistd.h>

#include "core/error.h"
#include "core/process.h"
#include "eval/bench_case.h"

namespace sqz::eval {

io::json bench_preset_config(const std::string& preset) {
  if (preset == "gpt2")
    return {{"model_type", "gpt2"}, {"vocab_size", 50257}, {"n_embd", 768}, {"n_layer", 12}, {"n_head", 12},
            {"n_positions", 1024}, {"activation_function", "gelu_new"}, {"architectures", {"GPT2LMHeadModel"}}};
  if (preset == "bert-base")
    return {{"model_type", "bert"}, {"vocab_size", 30522}, {"hidden_size", 768}, {"num_hidden_layers", 12},
            {"num_attention_heads", 12}, {"intermediate_size", 3072}, {"max_position_embeddings", 512},
            {"type_vocab_size", 2}, {"hidden_act", "gelu"}, {"num_labels", 2},
            {"architectures", {"BertForSequenceClassification"}}};
  fail_invalid("--preset '", preset, "' is not one of: bert-base, gpt2");
}

namespace {

// The command line of this bench for a child that times only the libtorch peers.
std::vector<std::string> peer_child_args(const BenchOptions& o, const fs::path& json) {
  std::vector<std::string> args{"bench"};
  if (o.preset.empty()) args.push_back(o.model_dir);
  else args.insert(args.end(), {"--preset", o.preset});
  for (int64_t b : o.batches) args.insert(args.end(), {"--batch", std::to_string(b)});
  args.insert(args.end(), {"--seq", std::to_string(o.seq), "--decode-steps", std::to_string(o.decode_steps), "--threads",
                           std::to_string(o.threads), "--runs", std::to_string(o.runs), "--warmup", std::to_string(o.warmup),
                           "--seed", std::to_string(o.seed), "--peers-only", "--json", json.string()});
  for (const auto& c : o.cases) args.insert(args.end(), {"--case", c});
  return args;
}

// The timing fields a row's engine-independent ratios are computed from.
const std::vector<std::string>& timing_keys(bool decoder) {
  static const std::vector<std::string> encoder{"median_ms", "p10_ms", "p90_ms", "sequences_per_s", "gflop_per_s"};
  static const std::vector<std::string> dec{"prefill_ms", "decode_ms_per_token", "decode_tokens_per_s"};
  return decoder ? dec : encoder;
}

// What one timed run of a row costs (encoder: a forward; decoder: prompt + every decode step).
double run_cost_ms(const io::json& row, const io::json& result, bool decoder) {
  if (!decoder) return row["median_ms"].get<double>();
  return row["prefill_ms"].get<double>() + row["decode_ms_per_token"].get<double>() * result["decode_steps"].get<double>();
}

// Ratios against libtorch fp32 of the same batch, after the peers' timings may have changed.
void recompute_ratios(io::json& result, bool decoder) {
  for (auto& row : result["rows"]) {
    if (row["status"] != "ok") continue;
    for (const auto& base : result["rows"]) {
      if (base["case"] != "libtorch-fp32" || base["batch"] != row["batch"] || base["status"] != "ok") continue;
      if (decoder) {
        row["prefill_speedup_vs_libtorch_fp32"] = base["prefill_ms"].get<double>() / row["prefill_ms"].get<double>();
        row["decode_speedup_vs_libtorch_fp32"] =
            base["decode_ms_per_token"].get<double>() / row["decode_ms_per_token"].get<double>();
      } else {
        row["speedup_vs_libtorch_fp32"] = base["median_ms"].get<double>() / row["median_ms"].get<double>();
      }
    }
  }
}

}  // namespace

// In one process libtorch's OpenMP threads spin after each parallel region while OpenBLAS's own
// threads wait for the same cores, which slows libtorch several-fold on a 2-core machine; passive
// OpenMP waiting fixes that but slows sqz's kernels. So each side is timed at its better setting:
// the libtorch peers again in a child process with OMP_WAIT_POLICY=passive, keeping whichever of
// the two timings is faster per row, and saying which in the row's "setting".
void time_peers_in_child(const BenchOptions& o, bool decoder, io::json& result) {
  const std::string tag = "sqz-bench-peers-" + std::to_string(getpid());
  const fs::path json = fs::temp_directory_path() / (tag + ".json"), log = fs::temp_directory_path() / (tag + ".log");
  const std::string passive = "OMP_WAIT_POLICY=passive";
  for (auto& row : result["rows"])
    if (row["case"].get<std::string>().rfind("libtorch-", 0) == 0) row["setting"] = "default";
  std::error_code ec;
  std::vector<std::string> argv = peer_child_args(o, json);
  argv.insert(argv.begin(), fs::read_symlink("/proc/self/exe", ec).string());
  const int rc = ec ? -1 : run_process(argv, {passive}, log);
  io::json child;
  if (rc == 0) try {
      child = io::read_json_file(json);
    } catch (const std::exception&) {
    }
  fs::remove(json, ec);
  if (!child.contains("rows")) {
    result["skipped"].push_back({{"case", "libtorch-* with " + passive},
                                 {"reason", "the child process failed (exit " + std::to_string(rc) + "): " + log_tail(log)}});
    fs::remove(log, ec);
    return;
  }
  fs::remove(log, ec);
  for (auto& row : result["rows"]) {
    if (!row.contains("setting") || row["status"] != "ok") continue;
    for (const auto& c : child["rows"]) {
      if (c["case"] != row["case"] || c["batch"] != row["batch"] || c["status"] != "ok") continue;
      if (run_cost_ms(c, child, decoder) >= run_cost_ms(row, result, decoder)) continue;
      for (const auto& key : timing_keys(decoder)) row[key] = c[key];
      row["setting"] = passive + " (own process)";
    }
  }
  recompute_ratios(result, decoder);
}

io::json run_bench(const BenchOptions& o, std::ostream& out) {
  models::LoadedModel loaded = bench_model(o);
  const std::string model_name =
      o.preset.empty() ? o.model_dir : o.preset + " (random weights, seed " + std::to_string(o.seed) + ")";
  const bool decoder = loaded.model->info().is_decoder;
  io::json result = decoder ? run_decoder_bench(o, loaded, model_name) : run_encoder_bench(o, loaded, model_name);
  if (o.peers_in_child && !o.peers_only) time_peers_in_child(o, decoder, result);
  if (decoder) print_decoder_table(result, out);
  else print_encoder_table(result, out);
  return result;
}

}  // namespace sqz::eval
