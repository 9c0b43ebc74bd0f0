#include "eval/bench_case.h"

#include <algorithm>
#include <chrono>

#include "compress/pruner.h"
#include "compress/quant/export.h"
#include "core/format.h"
#include "core/log.h"
#include "core/progress.h"
#include "kernels/machine_peaks.h"
#include "data/tasks.h"
#include "io/tokenizers/tokenizer.h"

namespace sqz::eval {

namespace {

bool blocks_are_2_4(models::TransformerModel& model) {
  for (auto& l : model.structure().block_linears())
    if (l->in_features() % 4 != 0 || io::count_nm_violations(l->logical_weight().detach(), 2, 4) > 0) return false;
  return true;
}

}  // namespace

double ms_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::function<torch::Tensor(std::vector<double>*)> timed_whole(std::function<torch::Tensor()> fn) {
  return [fn = std::move(fn)](std::vector<double>* ms) {
    auto t0 = std::chrono::steady_clock::now();
    auto out = fn();
    ms->assign(1, ms_between(t0, std::chrono::steady_clock::now()));
    return out;
  };
}

io::json check_then_time(BenchCase& c, const BenchOptions& o, int64_t batch, std::vector<TimingStats>* phases) {
  io::json row = {{"case", c.name}, {"batch", batch}};
  if (!c.engine.empty()) row.update({{"engine", c.engine}, {"precision", c.precision}});
  phases->clear();
  try {
    const torch::Tensor reference = c.reference ? c.reference() : torch::Tensor();  // before a peer patches the model
    if (c.attach) c.attach();
    std::vector<double> ms;
    const torch::Tensor output = c.run(&ms);
    const double err = reference.defined() ? max_rel_err(output, reference) : 0.0;
    if (reference.defined()) row["max_rel_err"] = err;
    if (!c.baseline && !(err <= c.tolerance)) {
      row["status"] = "check failed: error " + format_fixed(err, 6) + " > " + format_fixed(c.tolerance, 6);
    } else if (c.own_timings) {
      *phases = c.own_timings();
    } else {
      for (int i = 0; i < o.warmup; ++i) c.run(&ms);
      std::vector<std::vector<double>> samples;
      for (int i = 0; i < std::max(o.runs, 1); ++i) {
        c.run(&ms);
        samples.resize(ms.size());
        for (size_t p = 0; p < ms.size(); ++p) samples[p].push_back(ms[p]);
      }
      for (auto& s : samples) phases->push_back(timing_stats(std::move(s)));
    }
    if (!row.contains("status") && c.score && batch == o.batches.front()) row["eval"] = c.score();
    if (!row.contains("status")) {
      const bool untimed = phases->empty() || std::any_of(phases->begin(), phases->end(), [](const TimingStats& t) { return t.runs == 0; });
      if (untimed) throw std::runtime_error("no timed runs");
      row["status"] = "ok";
    }
  } catch (const std::exception& e) {
    row["status"] = std::string("failed: ") + e.what();
    phases->clear();
  }
  if (c.detach) c.detach();
  return row;
}

TaskScorer::TaskScorer(const BenchOptions& o, const models::LoadedModel& loaded) : o_(o), loaded_(loaded) {
  if (o.task.empty() != o.split.empty()) fail_invalid("bench: --task and --split go together");
  if (o.task.empty()) return;
  if (!o.preset.empty()) fail_invalid("bench --task: a preset has random weights and no tokenizer; give a model dir");
  data::find_task(o.task);
  tokenizer_ = io::load_tokenizer(o.model_dir);
}

bool TaskScorer::language_model() const { return data::find_task(o_.task).kind == data::TaskKind::kLanguageModel; }

io::json TaskScorer::run(models::TransformerModel* model, data::EvalOptions eo) const {
  eo.max_batches = o_.eval_batches;
  eo.batch_size = o_.eval_batch_size;
  io::json r = data::evaluate_split(model, *tokenizer_, loaded_.config, o_.task, o_.split, o_.max_length, eo);
  io::json kept = io::json::object();
  for (const char* k : {"accuracy", "macro_f1", "perplexity", "bits_per_byte", "examples", "tokens"})
    if (r.contains(k)) kept[k] = r[k];
  return kept;
}

std::function<io::json()> TaskScorer::libtorch(models::TransformerModel& model) const {
  if (!enabled()) return {};
  return [this, &model] { return run(&model, data::EvalOptions{}); };
}

std::function<io::json()> TaskScorer::classifier(std::function<torch::Tensor(const models::ModelInputs&)> logits) const {
  if (!enabled() || language_model()) return {};
  return [this, logits] {
    data::EvalOptions eo;
    eo.classification_logits = logits;
    return run(nullptr, eo);
  };
}

std::function<io::json()> TaskScorer::lm(std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)> logits) const {
  if (!enabled() || !language_model()) return {};
  return [this, logits] {
    data::EvalOptions eo;
    eo.lm_logits = [logits](const data::Batch& b) { return logits(b.input_ids, b.attention_mask); };
    return run(nullptr, eo);
  };
}

std::optional<models::ModelInputs> TaskScorer::example_inputs(int64_t batch, int64_t seq) const {
  if (!enabled() || language_model()) return std::nullopt;
  const auto examples = data::read_classification_jsonl(o_.split);
  const int64_t pad = tokenizer_->special_id("pad").value_or(0);
  models::ModelInputs in;
  in.input_ids = torch::full({batch, seq}, pad, torch::kLong);
  in.attention_mask = torch::zeros({batch, seq}, torch::kLong);
  in.token_type_ids = torch::zeros({batch, seq}, torch::kLong);
  for (int64_t b = 0; b < batch; ++b) {
    const auto& e = examples[static_cast<size_t>(b) % examples.size()];
    const io::Encoding enc = tokenizer_->encode(e.text, e.text_b.empty() ? nullptr : &e.text_b, seq);
    for (size_t t = 0; t < enc.ids.size(); ++t) {
      in.input_ids[b][static_cast<int64_t>(t)] = enc.ids[t];
      in.attention_mask[b][static_cast<int64_t>(t)] = 1;
      if (!enc.type_ids.empty()) in.token_type_ids[b][static_cast<int64_t>(t)] = enc.type_ids[t];
    }
  }
  return in;
}

void run_cases(std::vector<BenchCase>& cases, const BenchOptions& o, int64_t batch, bool decoder, const TimedFields& timed_fields,
               io::json& rows) {
  std::vector<TimingStats> baseline;
  // One line per case on stderr: a bench that scores every engine on a split runs for minutes.
  const auto selected = std::count_if(cases.begin(), cases.end(), [&](const BenchCase& c) { return case_selected(o, c.name); });
  int64_t done = 0;
  for (auto& c : cases) {
    if (!case_selected(o, c.name)) continue;
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<TimingStats> phases;
    io::json row = check_then_time(c, o, batch, &phases);
    log_info("bench ", o.preset.empty() ? o.shown_model_dir() : o.preset, ": ", c.name, " at batch ", batch, ": ",
             row["status"].get<std::string>(), " in ", format_duration(seconds_since(t0)), " (", ++done, " of ", selected, ")");
    if (row["status"] == "ok") {
      if (c.baseline) baseline = phases;
      timed_fields(row, phases, baseline);
      if (c.on_timed) c.on_timed(row);
    }
    row["reproduce"] = reproduce_line(o, batch, c.name, decoder);
    rows.push_back(row);
  }
}

bool case_selected(const BenchOptions& o, const std::string& name) {
  return o.cases.empty() || name == "libtorch-fp32" || std::find(o.cases.begin(), o.cases.end(), name) != o.cases.end();
}

std::string reproduce_line(const BenchOptions& o, int64_t batch, const std::string& name, bool decoder) {
  return "sqz bench " + (o.preset.empty() ? o.shown_model_dir() : "--preset " + o.preset) + " --batch " + std::to_string(batch) +
         " --seq " + std::to_string(o.seq) + (decoder ? " --decode-steps " + std::to_string(o.decode_steps) : "") +
         " --threads " + std::to_string(o.threads) + " --runs " + std::to_string(o.runs) + " --case " + name +
         // The task also decides the input (its first examples), so a row reproduces only with it.
         (o.task.empty() ? "" : " --task " + o.task + " --split " + o.split + " --max-length " + std::to_string(o.max_length));
}

std::string packed_case_name(const runtime::EngineOptions& options) {
  if (options.precision == runtime::Precision::kInt8 && options.int8_attention) return "sqz-int8-attn-int8";
  return std::string("sqz-") + runtime::precision_name(options.precision);
}

double engine_tolerance(runtime::Precision p) {
  switch (p) {
    case runtime::Precision::kFp32: return 1e-4;
    case runtime::Precision::kBf16: return 0.05;
    default: return 0.2;
  }
}

models::LoadedModel bench_model(const BenchOptions& o) {
  if (!o.preset.empty()) {
    io::JsonFields config(bench_preset_config(o.preset), "preset " + o.preset);
    torch::manual_seed(o.seed);
    auto model = models::build_model(config);
    models::init_weights(*model);
    return {model, config, {}};
  }
  auto loaded = quant::load_any_model(o.model_dir);
  for (const auto& m : loaded.model->modules(/*include_self=*/false))
    if (auto* l = dynamic_cast<nn::LinearImpl*>(m.get())) l->site = nullptr;
  return loaded;
}

std::string sparse_24_unfit(models::TransformerModel& model) {
  std::map<const void*, std::string> names;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) names[item.value().get()] = item.key();
  for (auto& l : model.structure().block_linears())
    if (l->in_features() % 4 != 0)
      return to_text(models::hf_name(model.info(), names[l.get()]), " has ", l->in_features(), " inputs, not a multiple of 4");
  return "";
}

bool any_selected(const BenchOptions& o, const std::vector<std::string>& names) {
  return std::any_of(names.begin(), names.end(), [&](const std::string& n) { return case_selected(o, n); });
}

models::LoadedModel sparse_24_model(const BenchOptions& o, const models::LoadedModel& loaded) {
  if (blocks_are_2_4(*loaded.model)) return loaded;
  models::LoadedModel sparse = bench_model(o);
  sparse.model->eval();
  torch::NoGradGuard no_grad;
  for (auto& l : sparse.model->structure().block_linears()) {
    auto w = l->logical_weight();
    w.mul_(compress::nm_keep_mask(w.abs(), 2, 4));
  }
  return sparse;
}

models::LoadedModel block_sparse_model(const BenchOptions& o, const models::LoadedModel& loaded) {
  torch::NoGradGuard no_grad;
  double zero = 0, total = 0;
  for (auto& l : loaded.model->structure().block_linears()) {
    auto per_block = compress::block_sums(l->logical_weight().abs());
    zero += per_block.eq(0).sum().item<double>();
    total += static_cast<double>(per_block.numel());
  }
  if (total > 0 && zero / total >= 0.5) return loaded;
  models::LoadedModel copy = bench_model(o);
  copy.model->eval();
  for (auto& l : copy.model->structure().block_linears()) {
    auto w = l->logical_weight();
    w.mul_(compress::block_keep_mask(w.abs(), kBenchBlockSparsity));
  }
  return copy;
}

void skip_case(io::json& result, const std::string& name, const std::string& why) {
  const std::string reason = why.substr(0, why.find('\n'));
  // Cases of one engine family skipped for one reason are one line: "sqz-*: ...".
  const std::string family = name.substr(0, name.find('-') + 1);
  for (auto& s : result["skipped"])
    if (s["reason"] == reason && s["case"].get<std::string>().rfind(family, 0) == 0) {
      s["case"] = family + "*";
      return;
    }
  result["skipped"].push_back({{"case", name}, {"reason", reason}});
}

std::unique_ptr<OnnxRuntimePeer> onnxruntime_or_skip(models::LoadedModel& loaded, io::json& result) {
  if (auto why = onnxruntime_missing(); !why.empty()) {
    skip_case(result, "onnxruntime-*", why);
    return nullptr;
  }
  try {
    return prepare_onnxruntime(loaded);
  } catch (const std::exception& e) {
    skip_case(result, "onnxruntime-*", e.what());
    return nullptr;
  }
}

namespace {

// The Python peers whose cases are selected and whose packages import; a skip line for the others.
std::vector<PythonPeer> python_peers_or_skip(const BenchOptions& o, models::LoadedModel& loaded, io::json& result) {
  std::vector<PythonPeer> peers;
  // CTranslate2's converter and PyTorch 2 read the checkpoint through transformers; OpenVINO runs
  // the ONNX graph, which takes its shapes from the weights.
  const std::string hf_unreadable = models::sqz_only_shape(*loaded.model, loaded.config.value());
  for (const std::string engine : {"ctranslate2", "openvino", "pytorch2"}) {
    std::vector<std::string> names;
    for (const auto& c : python_peer_cases())
      if (c.rfind(engine + "-", 0) == 0) names.push_back(c);
    if (!any_selected(o, names)) continue;
    if (engine != "openvino" && !hf_unreadable.empty()) {
      skip_case(result, engine + "-*", "it loads the model with transformers, which cannot: " + hf_unreadable);
      continue;
    }
    std::string why;
    if (auto peer = find_python_peer(engine, &why)) peers.push_back(*peer);
    else skip_case(result, engine + "-*", why);
  }
  return peers;
}

}  // namespace

ProcessPeers process_peers_or_skip(const BenchOptions& o, models::LoadedModel& loaded, const std::string& unsupported, io::json& result) {
  ProcessPeers p;
  const bool want_ort = any_selected(o, {"onnxruntime-fp32", "onnxruntime-int8"}), want_python = any_selected(o, python_peer_cases());
  if (o.peers_only || !(want_ort || want_python)) return p;
  if (!unsupported.empty()) {
    if (want_ort) skip_case(result, "onnxruntime-*", unsupported);
    if (want_python) skip_case(result, "ctranslate2-*, openvino-*, pytorch2-*", unsupported);
    return p;
  }
  if (want_ort) p.ort = onnxruntime_or_skip(loaded, result);
  if (want_python) p.python = python_peers_or_skip(o, loaded, result);
  if (!p.python.empty() && !p.ort) {
    try {
      p.files = prepare_onnxruntime(loaded);
    } catch (const std::exception& e) {
      skip_case(result, "ctranslate2-*, openvino-*, pytorch2-*", e.what());
      p.python.clear();
    }
  }
  return p;
}

io::json profile_rows(const runtime::OpProfile& profile, int64_t per) {
  io::json rows = io::json::array();
  for (const auto& r : profile.rows())
    rows.push_back({{"op", r.op}, {"ms", r.total_ms / static_cast<double>(per)}, {"calls", r.calls / per},
                    {"share", r.total_ms / profile.total_ms()}});
  return rows;
}

void print_profile_tables(const io::json& result, std::ostream& out, const std::string& part, const std::string& unit) {
  for (const auto& r : result["rows"]) {
    if (!r.contains("profile")) continue;
    const auto& rows = part.empty() ? r["profile"] : r["profile"][part];
    out << "\nper-op time, " << r["case"].get<std::string>() << ", batch " << r["batch"].get<int64_t>()
        << (part.empty() ? "" : ", " + part) << " (--profile: wall ms per " << unit << ", summed over layers)\n\n"
        << "| op | ms | share | calls |\n|---|---|---|---|\n";
    for (const auto& p : rows)
      out << "| " << p["op"].get<std::string>() << " | " << format_fixed(p["ms"].get<double>(), 3) << " | "
          << format_fixed(100.0 * p["share"].get<double>(), 1) << "% | " << p["calls"].get<int64_t>() << " |\n";
  }
}

std::string score_text(const io::json& row) {
  if (!row.contains("eval")) return "-";
  const auto& e = row["eval"];
  if (e.contains("accuracy"))
    return "acc " + format_fixed(e["accuracy"].get<double>(), 4) + ", F1 " + format_fixed(e["macro_f1"].get<double>(), 4);
  if (e.contains("perplexity")) return "ppl " + format_fixed(e["perplexity"].get<double>(), 2);
  return "-";
}

bool has_scores(const io::json& result) {
  for (const auto& r : result["rows"])
    if (r.contains("eval")) return true;
  return false;
}

void print_footer(const io::json& result, std::ostream& out) {
  out << "\n";
  if (result.contains("check")) out << "check: " << result["check"].get<std::string>() << "\n";
  for (const auto& s : result["skipped"])
    out << "skipped " << s["case"].get<std::string>() << ": " << s["reason"].get<std::string>() << "\n";
  std::vector<std::string> engines;  // the peers' libraries and versions, as they reported them
  for (const auto& r : result["rows"])
    if (r.contains("engine") && std::find(engines.begin(), engines.end(), r["engine"].get<std::string>()) == engines.end())
      engines.push_back(r["engine"].get<std::string>());
  if (!engines.empty()) out << "engines: " << join(engines, "; ") << "\n";
  for (const auto& r : result["rows"])
    if (r.contains("setting")) {
      out << "setting: libtorch rows were timed in this process (default) and again in a child process with\n"
             "OMP_WAIT_POLICY=passive; each keeps its faster setting (sqz rows: default, this process)\n";
      break;
    }
  out << "\nreproduce one case:\n";
  for (const auto& r : result["rows"]) out << "  " << r["reproduce"].get<std::string>() << "\n";
}

TimedFields decoder_timed_fields(int64_t batch) {
  return [batch](io::json& row, const std::vector<TimingStats>& t, const std::vector<TimingStats>& base) {
    const double pm = t.at(0).median_ms, dm = t.at(1).median_ms;
    row.update({{"prefill_ms", pm}, {"decode_ms_per_token", dm}, {"decode_tokens_per_s", 1000.0 * static_cast<double>(batch) / dm}});
    if (!base.empty())
      row.update({{"prefill_speedup_vs_libtorch_fp32", base.at(0).median_ms / pm}, {"decode_speedup_vs_libtorch_fp32", base.at(1).median_ms / dm}});
  };
}

void measure_peaks(int threads) {
  kernels::int8_peak_gops(threads);
  kernels::amx_int8_peak_gops(threads);
  kernels::bf16_peak_gflops(threads);
  kernels::amx_bf16_peak_gflops(threads);
  kernels::fp32_peak_gflops(threads);
}

void add_peak_fractions(io::json& result, int threads) {
  const double vnni = kernels::int8_peak_gops(threads), amx = kernels::amx_int8_peak_gops(threads);
  const double bf16 = kernels::bf16_peak_gflops(threads), amx_bf16 = kernels::amx_bf16_peak_gflops(threads);
  const io::json peaks = {{"int8_gops", vnni}, {"amx_int8_gops", amx}, {"fp32_gflops", kernels::fp32_peak_gflops(threads)},
                          {"bf16_gflops", bf16}, {"amx_bf16_gflops", amx_bf16}, {"threads", threads}};
  result["peaks"] = peaks;
  for (auto& row : result["rows"]) {
    if (!row.contains("gflop_per_s") || !row.contains("precision")) continue;
    const std::string precision = row["precision"].get<std::string>();
    double peak = 0;
    // Dense int8 and bf16 GEMMs run on AMX tiles where the CPU has them (sqz's and the peers'
    // alike); the sparse kernels on vpdpbusd.
    if (precision == "int8-2:4" || precision == "int8-block") peak = vnni;
    else if (precision.rfind("int8", 0) == 0) peak = amx > 0 ? amx : vnni;
    else if (precision.rfind("bf16", 0) == 0) peak = amx_bf16 > 0 ? amx_bf16 : bf16;
    else if (precision.rfind("fp32", 0) == 0) peak = peaks["fp32_gflops"].get<double>();
    if (peak > 0) row["peak_fraction"] = row["gflop_per_s"].get<double>() / peak;
  }
}

TimedFields encoder_timed_fields(int64_t batch, double gflop) {
  return [batch, gflop](io::json& row, const std::vector<TimingStats>& t, const std::vector<TimingStats>& base) {
    const TimingStats& f = t.front();
    row.update({{"median_ms", f.median_ms}, {"p10_ms", f.p10_ms}, {"p90_ms", f.p90_ms},
                {"sequences_per_s", 1000.0 * static_cast<double>(batch) / f.median_ms}});
    if (gflop > 0) row["gflop_per_s"] = gflop / (f.median_ms / 1000.0);
    if (!base.empty()) row["speedup_vs_libtorch_fp32"] = base.front().median_ms / f.median_ms;
  };
}

}  // namespace sqz::eval
