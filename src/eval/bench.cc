#include "eval/bench.h"

#include <unistd.h>

#include "core/error.h"
#include "core/format.h"
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

// The headline times of a row and the name of each one's ratio to libtorch fp32.
struct Headline {
  std::string time, ratio;
};
const std::vector<Headline>& headlines(bool decoder) {
  static const std::vector<Headline> encoder{{"median_ms", "speedup_vs_libtorch_fp32"}};
  static const std::vector<Headline> dec{{"prefill_ms", "prefill_speedup_vs_libtorch_fp32"},
                                         {"decode_ms_per_token", "decode_speedup_vs_libtorch_fp32"}};
  return decoder ? dec : encoder;
}

// The row of case `name` at `batch` that ran, or null.
const io::json* find_row(const io::json& result, const io::json& batch, const std::string& name) {
  for (const auto& r : result["rows"])
    if (r["batch"] == batch && r["case"] == name && r["status"] == "ok") return &r;
  return nullptr;
}

// Ratios against libtorch fp32 of the same batch, after the peers' timings may have changed.
void recompute_ratios(io::json& result, bool decoder) {
  for (auto& row : result["rows"]) {
    if (row["status"] != "ok") continue;
    const io::json* base = find_row(result, row["batch"], "libtorch-fp32");
    if (!base) continue;
    for (const auto& h : headlines(decoder)) row[h.ratio] = (*base)[h.time].get<double>() / row[h.time].get<double>();
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

namespace {

std::string model_name(const BenchOptions& o) {
  return o.preset.empty() ? o.model_dir : o.preset + " (random weights, seed " + std::to_string(o.seed) + ")";
}

// One model's bench: every case, then the libtorch peers again in their own process.
io::json bench_one(const BenchOptions& o, models::LoadedModel& loaded) {
  const bool decoder = loaded.model->info().is_decoder;
  io::json result = decoder ? run_decoder_bench(o, loaded, model_name(o)) : run_encoder_bench(o, loaded, model_name(o));
  if (o.peers_in_child && !o.peers_only) time_peers_in_child(o, decoder, result);
  return result;
}

void print_table(const io::json& result, bool decoder, std::ostream& out) {
  if (decoder) print_decoder_table(result, out);
  else print_encoder_table(result, out);
}

// Per compressed row that ran: its speed-up over the baseline on the same engine and over the
// baseline on libtorch fp32 (decoders: prefill and per-token decode apart).
io::json compare(const io::json& baseline, const io::json& compressed, bool decoder) {
  io::json rows = io::json::array();
  for (const auto& r : compressed["rows"]) {
    if (r["status"] != "ok") continue;
    io::json row = {{"case", r["case"]}, {"batch", r["batch"]}};
    const io::json* same = find_row(baseline, r["batch"], r["case"].get<std::string>());
    const io::json* torch_fp32 = find_row(baseline, r["batch"], "libtorch-fp32");
    if (r.contains("eval")) row["compressed_eval"] = r["eval"];
    if (same && same->contains("eval")) row["baseline_eval"] = (*same)["eval"];
    for (const auto& h : headlines(decoder)) {
      const std::string& k = h.time;
      row["compressed_" + k] = r[k];
      if (same) row.update({{"baseline_" + k, (*same)[k]}, {"speedup_vs_baseline_same_engine_" + k, (*same)[k].get<double>() / r[k].get<double>()}});
      if (torch_fp32) row["speedup_vs_baseline_libtorch_fp32_" + k] = (*torch_fp32)[k].get<double>() / r[k].get<double>();
    }
    rows.push_back(row);
  }
  return rows;
}

void print_comparison(const io::json& rows, bool decoder, const std::string& baseline, const std::string& compressed, std::ostream& out) {
  out << "\n## " << compressed << " against " << baseline << "\n\n";
  bool scored = false;
  for (const auto& r : rows) scored = scored || r.contains("compressed_eval");
  out << "| case | batch |";
  for (const auto& h : headlines(decoder)) out << " baseline " << h.time << " | compressed " << h.time << " | vs baseline, same engine | vs baseline libtorch fp32 |";
  if (scored) out << " baseline dev score | compressed dev score |";
  out << "\n|---|---|";
  for (size_t i = 0; i < headlines(decoder).size() * 4 + (scored ? 2 : 0); ++i) out << "---|";
  out << "\n";
  auto num = [](const io::json& row, const std::string& key, int digits, const char* suffix) {
    return row.contains(key) ? format_fixed(row[key].get<double>(), digits) + suffix : std::string("-");
  };
  for (const auto& r : rows) {
    out << "| " << r["case"].get<std::string>() << " | " << r["batch"].get<int64_t>() << " |";
    for (const auto& h : headlines(decoder))
      out << " " << num(r, "baseline_" + h.time, 2, "") << " | " << num(r, "compressed_" + h.time, 2, "") << " | "
          << num(r, "speedup_vs_baseline_same_engine_" + h.time, 2, "x") << " | "
          << num(r, "speedup_vs_baseline_libtorch_fp32_" + h.time, 2, "x") << " |";
    if (scored)
      out << " " << score_text(io::json{{"eval", r.value("baseline_eval", io::json())}}) << " | "
          << score_text(io::json{{"eval", r.value("compressed_eval", io::json())}}) << " |";
    out << "\n";
  }
}

}  // namespace

io::json run_bench(const BenchOptions& o, std::ostream& out) {
  models::LoadedModel loaded = bench_model(o);
  const bool decoder = loaded.model->info().is_decoder;
  if (o.baseline_dir.empty()) {
    io::json result = bench_one(o, loaded);
    print_table(result, decoder, out);
    return result;
  }
  if (!o.preset.empty()) fail_invalid("--baseline compares two model dirs; --preset has no baseline");
  BenchOptions ob = o;
  ob.model_dir = o.baseline_dir;
  ob.baseline_dir.clear();
  models::LoadedModel base = bench_model(ob);
  if (base.model->info().is_decoder != decoder)
    fail_invalid("--baseline ", o.baseline_dir, ": a ", base.model->info().is_decoder ? "decoder" : "encoder", ", but ", o.model_dir,
                 " is a", decoder ? " decoder" : "n encoder");
  BenchOptions oc = o;
  oc.baseline_dir.clear();
  io::json result = {{"baseline", bench_one(ob, base)}, {"compressed", bench_one(oc, loaded)}};
  result["comparison"] = compare(result["baseline"], result["compressed"], decoder);
  out << "## baseline: " << o.baseline_dir << "\n\n";
  print_table(result["baseline"], decoder, out);
  out << "\n## compressed: " << o.model_dir << "\n\n";
  print_table(result["compressed"], decoder, out);
  print_comparison(result["comparison"], decoder, o.baseline_dir, o.model_dir, out);
  return result;
}

}  // namespace sqz::eval
