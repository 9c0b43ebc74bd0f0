#include "eval/bench.h"

#include <unistd.h>

#include "core/error.h"
#include "core/format.h"
#include "core/log.h"
#include "core/process.h"
#include "eval/bench_case.h"
#include "eval/python_peers.h"
#include "kernels/cpu_isa.h"
#include "nn/threads.h"
#include "runtime/runtime_dir.h"

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
  if (preset == "vit-base")  // ViT-B/16 at 224 x 224, an ImageNet-1k classifier's shape
    return {{"model_type", "vit"}, {"hidden_size", 768}, {"num_hidden_layers", 12}, {"num_attention_heads", 12},
            {"intermediate_size", 3072}, {"image_size", 224}, {"patch_size", 16}, {"num_channels", 3}, {"hidden_act", "gelu"},
            {"num_labels", 1000}, {"architectures", {"ViTForImageClassification"}}};
  if (preset == "bart-base")  // facebook/bart-base's shape
    return {{"model_type", "bart"}, {"vocab_size", 50265}, {"d_model", 768}, {"encoder_layers", 6}, {"decoder_layers", 6},
            {"encoder_attention_heads", 12}, {"decoder_attention_heads", 12}, {"encoder_ffn_dim", 3072}, {"decoder_ffn_dim", 3072},
            {"max_position_embeddings", 1024}, {"activation_function", "gelu"}, {"scale_embedding", false},
            {"architectures", {"BartForConditionalGeneration"}}};
  if (preset == "t5-small")  // t5-small's shape (v1.0: ReLU, tied head)
    return {{"model_type", "t5"}, {"vocab_size", 32128}, {"d_model", 512}, {"d_kv", 64}, {"d_ff", 2048}, {"num_layers", 6},
            {"num_heads", 8}, {"feed_forward_proj", "relu"}, {"architectures", {"T5ForConditionalGeneration"}}};
  fail_invalid("--preset '", preset, "' is not one of: bert-base, gpt2, vit-base, bart-base, t5-small");
}

namespace {

// The `sqz bench` command line of `o`'s model and timing settings (no baseline, no scoring).
std::vector<std::string> bench_cli_args(const BenchOptions& o) {
  std::vector<std::string> args{"bench"};
  if (o.preset.empty()) args.push_back(o.model_dir);
  else args.insert(args.end(), {"--preset", o.preset});
  for (int64_t b : o.batches) args.insert(args.end(), {"--batch", std::to_string(b)});
  args.insert(args.end(), {"--seq", std::to_string(o.seq), "--decode-steps", std::to_string(o.decode_steps), "--threads",
                           std::to_string(o.threads), "--runs", std::to_string(o.runs), "--warmup", std::to_string(o.warmup),
                           "--seed", std::to_string(o.seed)});
  for (const auto& c : o.cases) args.insert(args.end(), {"--case", c});
  return args;
}

// The command line of this bench for a child that times only the libtorch peers.
std::vector<std::string> peer_child_args(const BenchOptions& o, const fs::path& json) {
  std::vector<std::string> args = bench_cli_args(o);
  args.insert(args.end(), {"--peers-only", "--json", json.string()});
  return args;
}

// The whole of `o` as a command line, writing its JSON and markdown to the given files.
std::vector<std::string> full_child_args(const BenchOptions& o, const fs::path& json, const fs::path& markdown) {
  std::vector<std::string> args = bench_cli_args(o);
  if (!o.baseline_dir.empty()) args.insert(args.end(), {"--baseline", o.baseline_dir});
  if (!o.task.empty())
    args.insert(args.end(), {"--task", o.task, "--split", o.split, "--max-length", std::to_string(o.max_length), "--max-batches",
                             std::to_string(o.eval_batches), "--batch-size", std::to_string(o.eval_batch_size)});
  if (!o.shown_dir.empty()) args.insert(args.end(), {"--show-as", o.shown_dir});
  if (!o.peers_in_child) args.push_back("--peers-in-process");
  if (o.profile) args.push_back("--profile");
  args.insert(args.end(), {"--json", json.string(), "--markdown", markdown.string()});
  return args;
}

// A `sqz bench` run by this very binary in a child process: its exit status (-1: it did not start,
// e.g. this binary was replaced on disk, rebuilt, while it ran) and the --json it wrote (null when
// it failed or wrote none).
struct BenchChild {
  std::string program;
  int rc = -1;
  io::json json;
};

// Runs this binary with `args` (a command line writing --json to `json`), reads `json` back and
// removes it.
BenchChild run_bench_child(std::vector<std::string> args, const std::vector<std::string>& env, const fs::path& log,
                           const fs::path& json) {
  BenchChild child;
  std::error_code ec;
  child.program = fs::read_symlink("/proc/self/exe", ec).string();
  if (ec) return child;
  args.insert(args.begin(), child.program);
  child.rc = run_process(args, env, log);
  if (child.rc == 0) try {
      child.json = io::read_json_file(json);
    } catch (const std::exception&) {
    }
  fs::remove(json, ec);
  return child;
}

// A temporary file of this process: <tmp>/sqz-<what>-<pid><extension>.
fs::path child_file(const std::string& what, const std::string& extension) {
  return fs::temp_directory_path() / ("sqz-" + what + "-" + std::to_string(getpid()) + extension);
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
  std::string time, ratio, label;
};
const std::vector<Headline>& headlines(bool decoder) {
  static const std::vector<Headline> encoder{{"median_ms", "speedup_vs_libtorch_fp32", "ms"}};
  static const std::vector<Headline> dec{{"prefill_ms", "prefill_speedup_vs_libtorch_fp32", "prefill ms"},
                                         {"decode_ms_per_token", "decode_speedup_vs_libtorch_fp32", "decode ms/token"}};
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
  const fs::path json = child_file("bench-peers", ".json"), log = child_file("bench-peers", ".log");
  const std::string passive = "OMP_WAIT_POLICY=passive";
  for (auto& row : result["rows"])
    if (row["case"].get<std::string>().rfind("libtorch-", 0) == 0) row["setting"] = "default";
  std::error_code ec;
  const BenchChild run = run_bench_child(peer_child_args(o, json), {passive}, log, json);
  const io::json& child = run.json;
  if (!child.contains("rows")) {
    const std::string why = run.rc == -1 ? "could not start " + run.program + " as a child process"
                                         : "the child process failed (exit " + std::to_string(run.rc) + "): " + log_tail(log);
    result["skipped"].push_back({{"case", "libtorch-* with " + passive}, {"reason", why}});
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
  return o.preset.empty() ? o.shown_model_dir() : o.preset + " (random weights, seed " + std::to_string(o.seed) + ")";
}

// What a bench runs, opened before anything is timed: a model dir (or preset) loaded into
// libtorch, or the engine a runtime dir holds.
struct BenchTarget {
  std::optional<models::LoadedModel> loaded;
  std::optional<runtime::Engine> engine;
  // Generates (the prefill + per-token decode table): decoders and encoder-decoders.
  bool decoder() const {
    if (engine) return engine->decoder || engine->seq2seq;
    return loaded->model->info().is_decoder || loaded->model->info().is_encoder_decoder;
  }
  bool seq2seq() const { return engine ? engine->seq2seq != nullptr : loaded->model->info().is_encoder_decoder; }
};

BenchTarget open_target(const BenchOptions& o) {
  BenchTarget t;
  if (o.preset.empty() && runtime::is_runtime_dir(o.model_dir)) {
    if (o.peers_only) fail_invalid("--peers-only: ", o.model_dir, " is a runtime dir, which has no libtorch model");
    t.engine = runtime::open_runtime_dir(o.model_dir, "", o.threads);
    t.engine->require_text("bench");
  } else {
    t.loaded = bench_model(o);
    const auto& info = t.loaded->model->info();
    if (info.is_encoder_decoder && info.head_class != "BartForConditionalGeneration" && info.head_class != "T5ForConditionalGeneration")
      fail_unimplemented("bench: ", o.model_dir, " is a ", info.model_type, " model (", info.head_class,
                         "); sqz bench times BERT and ViT encoders, GPT-2 / OPT / Llama / Qwen2 decoders and "
                         "BART / T5 ForConditionalGeneration for now");
  }
  return t;
}

// A runtime dir's bench: the one engine it holds, at the precision it was packed at.
io::json bench_packed(const BenchOptions& o, runtime::Engine& engine) {
  const models::LoadedModel config_only{nullptr, io::JsonFields::from_file(fs::path(o.model_dir) / "config.json"), o.model_dir};
  const TaskScorer scorer(o, config_only);
  io::json result = {{"model", o.shown_model_dir()}, {"model_type", config_only.config.get_string("model_type", "?")}, {"seq", o.seq},
                     {"threads", o.threads}, {"warmup", o.warmup}, {"runs", o.runs}, {"isa", kernels::isa_name(kernels::active_isa())},
                     {"rows", io::json::array()}, {"skipped", io::json::array()}};
  const std::string packed = packed_case_name(engine.options());
  for (const auto& c : o.cases)
    if (c != packed && c != "libtorch-fp32")
      fail_invalid("--case ", c, ": ", o.model_dir, " is a runtime dir packed as ", packed, ", the one case it can run");
  result["skipped"].push_back({{"case", "libtorch-*, onnxruntime-*, other sqz precisions"},
                               {"reason", "a runtime dir holds only the weights as " + packed +
                                              " runs them; bench the model dir it was packed from (or pass it as --baseline) for the others"}});
  result["check"] = "none: a runtime dir holds no float model to compare " + packed + "'s logits with" +
                    (o.task.empty() ? "; --task scores it on a split" : "; its --task score is the check");
  const int saved_threads = torch::get_num_threads();
  set_torch_threads(o.threads);
  result = engine.decoder   ? run_packed_decoder_bench(o, *engine.decoder, scorer, std::move(result))
           : engine.seq2seq ? run_packed_seq2seq_bench(o, *engine.seq2seq, std::move(result))
                            : run_packed_encoder_bench(o, *engine.encoder, scorer, std::move(result));
  set_torch_threads(saved_threads);
  return result;
}

// One target's bench: every case, then (a loaded model's) libtorch peers again in their own process.
io::json bench_target(const BenchOptions& o, BenchTarget& t) {
  if (t.engine) return bench_packed(o, *t.engine);
  const bool decoder = t.decoder();
  const bool vision = t.loaded->model->info().image_size > 0;
  io::json result = t.seq2seq() ? run_seq2seq_bench(o, *t.loaded, model_name(o))
                    : decoder     ? run_decoder_bench(o, *t.loaded, model_name(o))
                    : vision      ? run_vision_bench(o, *t.loaded, model_name(o))
                                  : run_encoder_bench(o, *t.loaded, model_name(o));
  if (o.peers_in_child && !o.peers_only) time_peers_in_child(o, decoder, result);
  return result;
}

// --case names a case some bench has, or is refused (a typo would otherwise time nothing).
void check_case_names(const BenchOptions& o) {
  static const std::vector<std::string> fixed = [] {
    std::vector<std::string> names{"libtorch-fp32", "sqz-fp32",         "sqz-bf16",       "sqz-int8",        "sqz-int8-attn-int8",
                                   "sqz-int8-2:4",  "sqz-int8-block",   "onnxruntime-fp32", "onnxruntime-int8"};
    for (const auto& c : python_peer_cases()) names.push_back(c);
    return names;
  }();
  for (const auto& c : o.cases)
    if (std::find(fixed.begin(), fixed.end(), c) == fixed.end() && c.rfind("libtorch-int8-dynamic-", 0) != 0)
      fail_invalid("--case '", c, "' is not a bench case; the cases: ", join(fixed, ", "), ", libtorch-int8-dynamic-<engine>");
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

}  // namespace

void print_bench_comparison(const io::json& result, std::ostream& out) {
  const bool decoder = result["compressed"].contains("prompt");
  const io::json& rows = result["comparison"];
  bool scored = false;
  for (const auto& r : rows) scored = scored || r.contains("compressed_eval");
  out << "| case | batch |";
  for (const auto& h : headlines(decoder))
    out << " baseline " << h.label << " | compressed " << h.label << " | vs baseline, same engine | vs baseline libtorch fp32 |";
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

io::json run_bench(const BenchOptions& o, std::ostream& out) {
  check_case_names(o);
  if (o.baseline_dir.empty()) {
    BenchTarget target = open_target(o);
    io::json result = bench_target(o, target);
    print_table(result, target.decoder(), out);
    result["openmp_wait_policy"] = openmp_wait_policy();
    return result;
  }
  if (!o.preset.empty()) fail_invalid("--baseline compares two model dirs; --preset has no baseline");
  BenchOptions ob = o, oc = o;
  ob.model_dir = o.baseline_dir;
  ob.shown_dir.clear();
  ob.baseline_dir.clear();
  oc.baseline_dir.clear();
  // Both opened, and matched, before either is timed.
  BenchTarget base = open_target(ob), compressed = open_target(oc);
  const bool decoder = compressed.decoder();
  if (base.decoder() != decoder)
    fail_invalid("--baseline ", o.baseline_dir, ": a ", base.decoder() ? "decoder" : "encoder", ", but ", o.model_dir, " is a",
                 decoder ? " decoder" : "n encoder");
  io::json result = {{"baseline", bench_target(ob, base)}};
  result["compressed"] = bench_target(oc, compressed);
  result["comparison"] = compare(result["baseline"], result["compressed"], decoder);
  out << "## baseline: " << o.baseline_dir << "\n\n";
  print_table(result["baseline"], decoder, out);
  out << "\n## compressed: " << o.shown_model_dir() << "\n\n";
  print_table(result["compressed"], decoder, out);
  out << "\n## " << o.shown_model_dir() << " against " << o.baseline_dir << "\n\n";
  print_bench_comparison(result, out);
  result["openmp_wait_policy"] = openmp_wait_policy();
  return result;
}

// A process that sqz made wait passively (train, compress) times sqz's kernels up to 2x slower:
// their many short parallel regions then wake sleeping threads each time (measured, Zen 4: a
// pruned MiniLM on sqz int8, batch 1, 3.6-3.9 ms by default, 7.1-7.6 ms passive). libgomp reads
// the policy only when it loads, so the bench runs as its own `sqz bench`.
io::json run_bench_with_default_openmp(const BenchOptions& o, std::ostream& out) {
  if (!openmp_passive_set_by_sqz()) return run_bench(o, out);
  check_case_names(o);
  const fs::path json = child_file("bench", ".json"), markdown = child_file("bench", ".md");
  BenchChild run = run_bench_child(full_child_args(o, json, markdown), openmp_default_env(), "", json);
  std::string tables;
  if (run.json.is_object()) try {
      tables = read_text_file(markdown);
    } catch (const std::exception&) {
      run.json = io::json();
    }
  std::error_code ec;
  fs::remove(markdown, ec);
  if (run.json.is_object()) {
    out << tables;
    return run.json;
  }
  log_warning("bench: the child `sqz bench` ", run.rc == -1 ? "did not start" : "failed (exit " + std::to_string(run.rc) + ")",
              "; timing in this process, where sqz's rows run slower (passive OpenMP waiting)");
  return run_bench(o, out);
}

}  // namespace sqz::eval
