// `sqz bench` on ViT: one forward of [batch, channels, size, size] random pixels per run, the
// logits (ViTModel: last_hidden_state) checked against libtorch fp32 before anything is timed.
#include "core/error.h"
#include "eval/bench_case.h"
#include "eval/libtorch_int8_peer.h"
#include "kernels/cpu_isa.h"
#include "nn/threads.h"
#include "runtime/vit_encoder.h"

namespace sqz::eval {

namespace {

// sqz's ViT engines, built once for every batch.
struct SqzVisionEngines {
  std::vector<std::pair<std::string, std::unique_ptr<runtime::VitEncoder>>> engines;
  std::optional<models::LoadedModel> sparse;  // what the 2:4 engine runs
};

void build_vision_engines(const BenchOptions& o, models::LoadedModel& loaded, SqzVisionEngines& s, io::json& result) {
  using runtime::Precision;
  auto add = [&](const std::string& name, const models::LoadedModel& m, runtime::EngineOptions eo) {
    if (!case_selected(o, name)) return;
    try {
      s.engines.emplace_back(name, std::make_unique<runtime::VitEncoder>(m, eo));
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
  if (!case_selected(o, "sqz-int8-2:4")) return;
  if (auto why = sparse_24_unfit(*loaded.model); !why.empty()) return skip_case(result, "sqz-int8-2:4", why);
  s.sparse = sparse_24_model(o, loaded);
  add("sqz-int8-2:4", *s.sparse, {Precision::kInt8Sparse24, o.threads});
}

// The compared output: logits, or the last hidden state of a model without a classifier.
torch::Tensor libtorch_output(models::TransformerModel& model, const models::ModelInputs& in) {
  auto out = model.forward(in);
  return out.tensors.count("logits") ? out.at("logits") : out.at("last_hidden_state");
}

torch::Tensor engine_output(runtime::EncoderOutputs r) {
  if (!r.logits.empty()) return torch::from_blob(r.logits.data(), {r.batch, r.num_labels}, torch::kFloat32).clone();
  return torch::from_blob(r.last_hidden_state.data(), {r.batch, r.seq, r.hidden}, torch::kFloat32).clone();
}

// Multiply-adds of one forward: the blocks' Linears and attention over every token, the patch
// convolution, the classifier.
double vision_flops(models::TransformerModel& model, const io::JsonFields& config, int64_t batch, int64_t tokens) {
  const auto& info = model.info();
  const int64_t patch = config.get_int("patch_size", 16), patches = tokens - 1;
  return forward_flops(model, batch, tokens) +
         2.0 * static_cast<double>(batch * patches * info.hidden_size * info.num_channels * patch * patch);
}

}  // namespace

io::json run_vision_bench(const BenchOptions& o, models::LoadedModel& loaded, const std::string& model_name) {
  if (!o.task.empty()) fail_invalid("bench --task: ", o.model_dir, " is a ViT; sqz has no image task to score it on");
  auto& model = *loaded.model;
  model.eval();
  torch::NoGradGuard no_grad;
  const int saved_threads = torch::get_num_threads();
  set_torch_threads(o.threads);
  const auto& info = model.info();
  const int64_t patch = loaded.config.get_int("patch_size", 16), grid = info.image_size / patch, tokens = grid * grid + 1;
  io::json result = {{"model", model_name}, {"model_type", info.model_type}, {"seq", tokens}, {"threads", o.threads},
                     {"warmup", o.warmup}, {"runs", o.runs}, {"isa", kernels::isa_name(kernels::active_isa())},
                     {"rows", io::json::array()}, {"skipped", io::json::array()},
                     {"input", to_text("random pixels [batch, ", info.num_channels, ", ", info.image_size, ", ", info.image_size,
                                       "] (", tokens, " tokens; --seq does not apply)")}};
  SqzVisionEngines sqz_engines;
  if (!o.peers_only) build_vision_engines(o, loaded, sqz_engines, result);
  if (!o.peers_only && any_selected(o, {"onnxruntime-fp32", "onnxruntime-int8"}))
    skip_case(result, "onnxruntime-*", "the ONNX exporters write BERT encoders and GPT-2 / OPT / Llama decoders, not ViT");

  for (int64_t batch : o.batches) {
    auto gen = at::detail::createCPUGenerator(o.seed + 1);
    models::ModelInputs in;
    in.pixel_values = torch::randn({batch, info.num_channels, info.image_size, info.image_size}, gen);
    const torch::Tensor reference = libtorch_output(model, in);
    auto libtorch_reference = [reference] { return reference; };
    auto forward = [&model, &in] { return libtorch_output(model, in); };
    std::vector<BenchCase> cases;
    cases.push_back({.name = "libtorch-fp32", .engine = "libtorch " TORCH_VERSION " eager", .precision = "fp32", .baseline = true,
                     .run = timed_whole(forward)});
    for (const auto& peer : libtorch_int8_peers(model))
      cases.push_back({.name = peer.name, .engine = "libtorch quantized::linear_dynamic (" + peer.engine + ")", .precision = "int8 dyn",
                       .tolerance = 0.2, .reference = libtorch_reference, .run = timed_whole(forward), .attach = peer.attach,
                       .detach = peer.detach});
    for (auto& [name, engine] : sqz_engines.engines) {
      runtime::VitEncoder* e = engine.get();
      const auto precision = e->options().precision;
      std::function<torch::Tensor()> ref = libtorch_reference;
      if (precision == runtime::Precision::kInt8Sparse24) ref = [&in, &sqz_engines] { return libtorch_output(*sqz_engines.sparse->model, in); };
      cases.push_back({.name = name, .engine = "sqz runtime", .precision = runtime::precision_name(precision),
                       .tolerance = engine_tolerance(precision), .reference = ref,
                       .run = timed_whole([e, &in] { return engine_output(e->forward(in.pixel_values)); })});
    }
    run_cases(cases, o, batch, /*decoder=*/false, encoder_timed_fields(batch, vision_flops(model, loaded.config, batch, tokens) / 1e9),
              result["rows"]);
  }
  set_torch_threads(saved_threads);
  return result;
}

}  // namespace sqz::eval
