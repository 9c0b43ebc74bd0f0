// What the encoder and decoder benches share: a case with named fields, the one loop that checks
// a case against its reference and then times it, the model under test (and its 2:4 copy), and
// the parts of the report both tables print.
#pragma once
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>

#include "data/evaluate.h"
#include "eval/bench.h"
#include "eval/latency.h"
#include "eval/onnxruntime_peer.h"
#include "eval/python_peers.h"
#include "models/registry.h"
#include "runtime/engine.h"
#include "runtime/linear_op.h"
#include "runtime/op_profile.h"

namespace sqz::eval {

// One row of a bench table: an engine run on the same input as libtorch fp32.
struct BenchCase {
  std::string name;                    // "libtorch-fp32", "sqz-int8", "onnxruntime-int8", ...
  std::string engine = "", precision = "";  // what runs it, as the encoder table's JSON says
  bool baseline = false;               // libtorch fp32: the reference of the ratios; never refused by its check
  double tolerance = 0;                // max |output - reference| / max |reference| before timing
  std::function<torch::Tensor()> reference = {};  // unset: the check is skipped (error 0)
  // One run: its output, and the wall ms of each timed phase (encoder: the forward; decoder:
  // prefill, then decode per token).
  std::function<torch::Tensor(std::vector<double>* phase_ms)> run;
  std::function<void()> attach = {}, detach = {};  // peers that patch the model, for their own run only
  // Set for a peer that timed its runs itself (in its own process) during its checked run.
  std::function<std::vector<TimingStats>()> own_timings = {};
  // Called once the row is timed: profiles, the decoder's weight-stream floor.
  std::function<void(io::json& row)> on_timed = {};
  // --task: the case's score on the split, computed while the case is attached.
  std::function<io::json()> score = {};
};

// Scores for --task / --split: one data::evaluate_split per case, the logits coming from the
// libtorch model (as a peer has patched it) or from an engine.
class TaskScorer {
 public:
  TaskScorer(const BenchOptions& o, const models::LoadedModel& loaded);
  bool enabled() const { return tokenizer_ != nullptr; }
  bool language_model() const;
  std::function<io::json()> libtorch(models::TransformerModel& model) const;
  std::function<io::json()> classifier(std::function<torch::Tensor(const models::ModelInputs&)> logits) const;
  std::function<io::json()> lm(std::function<torch::Tensor(const torch::Tensor& ids, const torch::Tensor& mask)> logits) const;
  // A classification task's first `batch` examples of the split (repeated when it has fewer), each
  // tokenized, truncated and right-padded to `seq`: the input every case is checked and timed on,
  // since random ids give a fine-tuned classifier logits near zero that int8 rightly moves by a
  // lot. Unset (no --task, or a language model): random ids.
  std::optional<models::ModelInputs> example_inputs(int64_t batch, int64_t seq) const;

 private:
  io::json run(models::TransformerModel* model, data::EvalOptions eo) const;
  const BenchOptions& o_;
  const models::LoadedModel& loaded_;
  std::unique_ptr<io::Tokenizer> tokenizer_;
};

// Milliseconds from a to b on the steady clock.
double ms_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b);

// A run whose one phase is the whole call.
std::function<torch::Tensor(std::vector<double>*)> timed_whole(std::function<torch::Tensor()> fn);

// The check, then (if it passed) `warmup` + `runs` timed runs: a row with case, batch,
// max_rel_err, status and, when timed, `*phases` filled (one TimingStats per phase). Exceptions
// become a "failed: ..." status; the case's detach always runs.
io::json check_then_time(BenchCase& c, const BenchOptions& o, int64_t batch, std::vector<TimingStats>* phases);

// Every case --case selects, in order (the baseline first), through check_then_time, each row
// appended to `rows` with its reproduce line. `timed_fields(row, phases, baseline)` adds the timing
// fields of a row that passed its check; `baseline` holds the baseline's phases (empty before it).
using TimedFields = std::function<void(io::json& row, const std::vector<TimingStats>& phases, const std::vector<TimingStats>& baseline)>;
void run_cases(std::vector<BenchCase>& cases, const BenchOptions& o, int64_t batch, bool decoder, const TimedFields& timed_fields,
               io::json& rows);

// Whether --case asks for `name` (libtorch fp32 always runs: every ratio needs it).
bool case_selected(const BenchOptions& o, const std::string& name);

// The command that runs one case of this bench alone.
std::string reproduce_line(const BenchOptions& o, int64_t batch, const std::string& name, bool decoder);

// How far a sqz case's output may be from its libtorch fp32 reference, relative to the largest
// |output|: fp32 only sums in another order; bf16 rounds weights and activations to an 8-bit
// mantissa; int8 quantizes them.
double engine_tolerance(runtime::Precision p);

// The model under test: a preset with random weights, or a model dir (an export dequantized,
// without its activation fake-quant, so the libtorch peer runs the plain float model).
models::LoadedModel bench_model(const BenchOptions& o);

// Why the 2:4 engine cannot run `model` ("" when it can): a block Linear whose input width is not
// a multiple of 4 (e.g. after neuron pruning).
std::string sparse_24_unfit(models::TransformerModel& model);

// The model for the 2:4 case: `loaded` itself when its block weights are 2:4 already (a GPUSQ
// export), else a fresh copy with the 2 largest |w| of every 4 kept along each block Linear's input.
models::LoadedModel sparse_24_model(const BenchOptions& o, const models::LoadedModel& loaded);

// The block sparsity the int8-block case runs at when the model is not block-sparse already.
constexpr double kBenchBlockSparsity = 0.8;
// The model for the int8-block case: `loaded` itself when at least half of its block Linears'
// 4 x 4 blocks are zero already (a block-pruned export), else a fresh copy with the
// kBenchBlockSparsity fraction of each block Linear's blocks of smallest |w| zeroed.
models::LoadedModel block_sparse_model(const BenchOptions& o, const models::LoadedModel& loaded);

// Whether any of `names` is selected by --case.
bool any_selected(const BenchOptions& o, const std::vector<std::string>& names);

// A case (or "sqz-*") not run, with the first line of the reason, in result["skipped"].
void skip_case(io::json& result, const std::string& name, const std::string& why);

// A sqz engine a bench times, and the libtorch model its check compares with (null: no check).
template <class Engine>
struct SqzEngineCase {
  std::string name;
  Engine* engine;
  models::TransformerModel* reference;
};

// The sqz engines --case selects, each an `Engine` built from (a LoadedModel, EngineOptions):
// fp32, bf16, int8, int8-2:4 on `loaded`'s 2:4 copy (kept in `sparse`) and int8-block on its
// block-sparse copy (kept in `blocks`). One that cannot be built, or cannot apply, is skipped
// with its reason.
template <class Engine>
void build_sqz_engines(const BenchOptions& o, models::LoadedModel& loaded, std::optional<models::LoadedModel>& sparse,
                       std::optional<models::LoadedModel>& blocks, std::vector<std::unique_ptr<Engine>>& owned,
                       std::vector<SqzEngineCase<Engine>>& engines, io::json& result) {
  using runtime::Precision;
  auto add = [&](const std::string& name, const models::LoadedModel& m, Precision p) {
    if (!case_selected(o, name)) return;
    try {
      owned.push_back(std::make_unique<Engine>(m, runtime::EngineOptions{p, o.threads}));
      engines.push_back({name, owned.back().get(), m.model.get()});
    } catch (const std::exception& e) {
      skip_case(result, name, e.what());
    }
  };
  add("sqz-fp32", loaded, Precision::kFp32);
  add("sqz-bf16", loaded, Precision::kBf16);
  add("sqz-int8", loaded, Precision::kInt8);
  if (case_selected(o, "sqz-int8-block")) {
    blocks = block_sparse_model(o, loaded);
    add("sqz-int8-block", *blocks, Precision::kInt8Blocks);
  }
  if (!case_selected(o, "sqz-int8-2:4")) return;
  if (auto why = sparse_24_unfit(*loaded.model); !why.empty()) return skip_case(result, "sqz-int8-2:4", why);
  sparse = sparse_24_model(o, loaded);
  add("sqz-int8-2:4", *sparse, Precision::kInt8Sparse24);
}

// ONNX Runtime ready for `loaded`, or null with the reason it is not in result["skipped"].
std::unique_ptr<OnnxRuntimePeer> onnxruntime_or_skip(models::LoadedModel& loaded, io::json& result);

// The peers that run in their own processes: ONNX Runtime and the Python peers (CTranslate2,
// OpenVINO) whose cases are selected, all reading one saved copy of the model and its ONNX graphs.
// Each that cannot run is a skip line; `unsupported` says why none can for this model ("" = they can).
struct ProcessPeers {
  std::unique_ptr<OnnxRuntimePeer> ort, files;  // files: the copy when ONNX Runtime does not run
  std::vector<PythonPeer> python;
  const OnnxRuntimePeer* shared_files() const { return ort ? ort.get() : files.get(); }
};
ProcessPeers process_peers_or_skip(const BenchOptions& o, models::LoadedModel& loaded, const std::string& unsupported, io::json& result);

// A profile as rows [{op, ms, calls, share}], ms and calls per one of `per` (forwards, tokens).
io::json profile_rows(const runtime::OpProfile& profile, int64_t per);

// The --profile tables of a result's rows: `part` picks a part of each row's profile ("": all of it).
void print_profile_tables(const io::json& result, std::ostream& out, const std::string& part, const std::string& unit);

// A row's --task score for the tables ("acc 0.9775, F1 0.9510" / "ppl 45.31"; "-" when none), and
// whether any row of a result has one.
std::string score_text(const io::json& row);
bool has_scores(const io::json& result);

// Under either table: the cases not run and why, then one reproduce line per row.
void print_footer(const io::json& result, std::ostream& out);

// The one case of a runtime dir: "sqz-" and the precision it was packed at ("sqz-int8", "sqz-int8-2:4",
// "sqz-int8-attn-int8"), the name the same engine has when built from a model dir, so --baseline
// compares like with like.
std::string packed_case_name(const runtime::EngineOptions& options);

// The timing fields of an encoder (or ViT) row: `gflop` per forward (0: unknown, no GFLOP/s), and
// the ratio to libtorch fp32 when the baseline ran.
TimedFields encoder_timed_fields(int64_t batch, double gflop);
// This machine's measured multiply-add peaks for `threads` cores (kernels/machine_peaks.h), as
// result["peaks"], and each row's `peak_fraction`: its GFLOP/s (dense-equivalent for sparse
// rows, so it can exceed 1) over the peak of its precision (dense int8 rows: AMX tiles where the
// CPU has them, else vpdpbusd; 2:4 and block rows: vpdpbusd; fp32: FMA; bf16: vdpbf16ps). Rows without GFLOP/s, or on a CPU without that peak's instructions, get none.
void add_peak_fractions(io::json& result, int threads);
// Measures (and caches) those peaks now: called before any peer process starts, because a peer's
// idle threads can still spin at the end of the bench (seen: the two-thread peak read as one core's).
void measure_peaks(int threads);
// The timing fields of a decoder (or encoder-decoder) row: prefill and per-token decode, and their
// ratios to libtorch fp32 when the baseline ran.
TimedFields decoder_timed_fields(int64_t batch);

// The encoder, decoder and ViT benches (bench_encoder.cc, bench_decoder.cc, bench_vision.cc). The packed ones time the
// engine a runtime dir holds, with no check (it holds no float model to compare with) and no peers;
// `result` arrives with the header fields set.
io::json run_encoder_bench(const BenchOptions& o, models::LoadedModel& loaded, const std::string& model_name);
void print_encoder_table(const io::json& result, std::ostream& out);
io::json run_vision_bench(const BenchOptions& o, models::LoadedModel& loaded, const std::string& model_name);
io::json run_decoder_bench(const BenchOptions& o, models::LoadedModel& loaded, const std::string& model_name);
void print_decoder_table(const io::json& result, std::ostream& out);
io::json run_packed_encoder_bench(const BenchOptions& o, const runtime::BertEncoder& engine, const TaskScorer& scorer, io::json result);
io::json run_packed_decoder_bench(const BenchOptions& o, runtime::Decoder& decoder, const TaskScorer& scorer, io::json result);
// Encoder-decoders (bench_seq2seq.cc): the decoders' table, prefill being the source's encoding
// and the first decoder step.
io::json run_seq2seq_bench(const BenchOptions& o, models::LoadedModel& loaded, const std::string& model_name);
io::json run_packed_seq2seq_bench(const BenchOptions& o, runtime::EncoderDecoder& engine, io::json result);

}  // namespace sqz::eval
