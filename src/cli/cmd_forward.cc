// sqz forward MODEL_DIR --inputs DIR --out DIR: HF-named .npy inputs in, HF-named .npy outputs out.
#include <iostream>

#include "compress/quant/export.h"
#include "cli/commands.h"
#include "core/fs.h"
#include "io/image_processor.h"
#include "io/npy.h"
#include "models/registry.h"
#include "runtime/engine.h"
#include "runtime/runtime_dir.h"

namespace sqz::cli {

namespace {

struct ForwardArgs {
  std::string model_dir, inputs, out, head;
  bool hidden_states = false, attentions = false, overwrite = false, int8_attention = false;
  int threads = 0;
  std::string engine, precision;
};

// The encoder engines' outputs under HF names: last_hidden_state (+ logits).
std::map<std::string, torch::Tensor> encoder_outputs(runtime::EncoderOutputs& r) {
  std::map<std::string, torch::Tensor> out;
  out["last_hidden_state"] = torch::from_blob(r.last_hidden_state.data(), {r.batch, r.seq, r.hidden}, torch::kFloat32).clone();
  if (!r.logits.empty()) out["logits"] = torch::from_blob(r.logits.data(), {r.batch, r.num_labels}, torch::kFloat32).clone();
  return out;
}

// The encoder-decoder engine: logits [B, T, vocab] of the decoder inputs (input_ids shifted right
// when not given, as HF's BART does) and encoder_last_hidden_state.
std::map<std::string, torch::Tensor> seq2seq_forward(const runtime::EncoderDecoder& engine, const models::ModelInputs& in,
                                                     const fs::path& in_dir) {
  if (in.token_type_ids.defined()) fail_invalid((in_dir / "token_type_ids.npy").string(), ": BART takes no token_type_ids");
  auto ids = in.input_ids.contiguous();
  auto mask = in.attention_mask.defined() ? in.attention_mask.to(torch::kLong).contiguous() : torch::ones_like(ids);
  auto dec = (in.decoder_input_ids.defined() ? in.decoder_input_ids
                                             : models::shift_tokens_right(ids, engine.pad_token_id(), engine.decoder_start_token_id(),
                                                                          (in_dir / "input_ids.npy").string()))
                 .contiguous();
  auto dec_mask = in.decoder_attention_mask.defined() ? in.decoder_attention_mask.to(torch::kLong).contiguous() : torch::Tensor();
  const int64_t batch = ids.size(0), seq = ids.size(1), steps = dec.size(1);
  auto memory = engine.encode(ids.data_ptr<int64_t>(), mask.data_ptr<int64_t>(), batch, seq);
  auto cache = engine.new_cache(memory, mask.data_ptr<int64_t>(), batch, seq, steps);
  auto logits = engine.decode(cache, dec.data_ptr<int64_t>(), steps, true, dec_mask.defined() ? dec_mask.data_ptr<int64_t>() : nullptr);
  std::map<std::string, torch::Tensor> out;
  out["logits"] = torch::from_blob(logits.data(), {batch, steps, engine.vocab_size()}, torch::kFloat32).clone();
  out["encoder_last_hidden_state"] = torch::from_blob(memory.data(), {batch, seq, engine.hidden_size()}, torch::kFloat32).clone();
  return out;
}

// The runtime engine's outputs under HF names: BERT and ViT last_hidden_state (+ logits), decoder
// logits, encoder-decoder logits and encoder_last_hidden_state.
std::map<std::string, torch::Tensor> runtime_forward(const runtime::Engine& engine, const models::ModelInputs& in,
                                                     const ForwardArgs& a, const fs::path& in_dir) {
  if (a.hidden_states || a.attentions) fail_invalid("forward: --engine runtime writes final outputs only (no --hidden-states/--attentions)");
  if (in.position_ids.defined()) fail_invalid((in_dir / "position_ids.npy").string(), ": --engine runtime uses default positions");
  if (engine.vision) {
    if (!in.pixel_values.defined()) fail_not_found((in_dir / "pixel_values.npy").string(), ": the ViT engine needs pixel_values.npy or images.npy");
    auto r = engine.vision->forward(in.pixel_values);
    return encoder_outputs(r);
  }
  if (in.pixel_values.defined()) fail_invalid(in_dir.string(), ": pixel values given to a text model");
  auto ids = in.input_ids.contiguous();
  const int64_t batch = ids.size(0), seq = ids.size(1);
  std::map<std::string, torch::Tensor> out;
  if (engine.seq2seq) return seq2seq_forward(*engine.seq2seq, in, in_dir);
  if (engine.decoder) {
    if (in.token_type_ids.defined())
      fail_invalid((in_dir / "token_type_ids.npy").string(), ": the runtime's decoders take no token_type_ids");
    auto cache = engine.decoder->new_cache(batch, seq);
    auto mask = in.attention_mask.defined() ? in.attention_mask.to(torch::kLong).contiguous() : torch::Tensor();
    auto logits = engine.decoder->forward(cache, ids.data_ptr<int64_t>(), seq, true, mask.defined() ? mask.data_ptr<int64_t>() : nullptr);
    out["logits"] = torch::from_blob(logits.data(), {batch, seq, engine.decoder->vocab_size()}, torch::kFloat32).clone();
    return out;
  }
  auto mask = in.attention_mask.defined() ? in.attention_mask.contiguous() : torch::Tensor();
  auto types = in.token_type_ids.defined() ? in.token_type_ids.contiguous() : torch::Tensor();
  auto r = engine.encoder->forward(ids.data_ptr<int64_t>(), mask.defined() ? mask.data_ptr<int64_t>() : nullptr,
                                   types.defined() ? types.data_ptr<int64_t>() : nullptr, batch, seq);
  return encoder_outputs(r);
}

torch::Tensor read_index_input(const fs::path& file) {
  auto t = io::read_npy(file);
  if (t.scalar_type() != torch::kLong && t.scalar_type() != torch::kInt && t.scalar_type() != torch::kBool)
    fail_invalid(file.string(), ": expected an integer array (int64), got ", c10::toString(t.scalar_type()));
  if (t.dim() != 2) fail_invalid(file.string(), ": expected rank 2 [batch, seq], got shape ", t.sizes());
  return t.to(torch::kLong);
}

// Raw uint8 images [B, H, W, C] through the model dir's image processor (preprocessor_config.json).
torch::Tensor preprocess_image_file(const fs::path& file, const std::string& model_dir) {
  auto raw = io::read_npy(file);
  if (raw.scalar_type() != torch::kByte) fail_invalid(file.string(), ": expected uint8 images, got ", c10::toString(raw.scalar_type()));
  if (raw.dim() != 4) fail_invalid(file.string(), ": expected rank 4 [batch, height, width, channels], got shape ", raw.sizes());
  raw = raw.contiguous();
  const auto config = io::ImageProcessorConfig::from_model_dir(model_dir);
  int64_t h = 0, w = 0;
  auto px = io::preprocess_images(config, raw.data_ptr<uint8_t>(), raw.size(0), raw.size(1), raw.size(2), raw.size(3), h, w);
  return torch::from_blob(px.data(), {raw.size(0), raw.size(3), h, w}, torch::kFloat32).clone();
}

// [layers+1, B, T, H] in one file; OPT with project_out ends on a narrower state (as in HF's
// tuple): one file per state then, <name>_<i>.npy.
void write_states(const fs::path& dir, const std::string& name, const std::vector<torch::Tensor>& states) {
  bool same_shape = true;
  for (const auto& h : states) same_shape = same_shape && h.sizes() == states.front().sizes();
  if (same_shape) {
    io::write_npy(dir / (name + ".npy"), torch::stack(states));
    return;
  }
  for (size_t i = 0; i < states.size(); ++i) io::write_npy(dir / (name + "_" + std::to_string(i) + ".npy"), states[i]);
}

void run_forward(const ForwardArgs& a) {
  apply_threads(a.threads);
  fs::path in_dir(a.inputs);
  if (!fs::is_directory(in_dir)) fail_not_found(in_dir.string(), ": inputs directory not found");
  const bool images = fs::exists(in_dir / "images.npy");
  if (images && fs::exists(in_dir / "pixel_values.npy"))
    fail_invalid(in_dir.string(), ": both images.npy and pixel_values.npy given; give one");
  const bool pixels = images || fs::exists(in_dir / "pixel_values.npy");
  if (!pixels && !fs::exists(in_dir / "input_ids.npy"))
    fail_not_found((in_dir / "input_ids.npy").string(), ": file not found (or images.npy / pixel_values.npy for a vision model)");
  const std::string engine = resolve_engine(a.engine, a.model_dir);
  refuse_runtime_options_on_libtorch(engine, a.precision, a.int8_attention);
  models::ModelInputs in;
  if (fs::exists(in_dir / "input_ids.npy")) in.input_ids = read_index_input(in_dir / "input_ids.npy");
  if (images) {
    in.pixel_values = preprocess_image_file(in_dir / "images.npy", a.model_dir);
  } else if (pixels) {
    in.pixel_values = io::read_npy(in_dir / "pixel_values.npy");
    if (!in.pixel_values.is_floating_point())
      fail_invalid((in_dir / "pixel_values.npy").string(), ": expected a float array (normalized pixels), got ",
                   c10::toString(in.pixel_values.scalar_type()));
  }
  if (fs::exists(in_dir / "attention_mask.npy")) in.attention_mask = read_index_input(in_dir / "attention_mask.npy");
  if (fs::exists(in_dir / "token_type_ids.npy")) in.token_type_ids = read_index_input(in_dir / "token_type_ids.npy");
  if (fs::exists(in_dir / "position_ids.npy")) in.position_ids = read_index_input(in_dir / "position_ids.npy");
  if (fs::exists(in_dir / "decoder_input_ids.npy")) in.decoder_input_ids = read_index_input(in_dir / "decoder_input_ids.npy");
  if (fs::exists(in_dir / "decoder_attention_mask.npy"))
    in.decoder_attention_mask = read_index_input(in_dir / "decoder_attention_mask.npy");
  in.output_hidden_states = a.hidden_states;
  in.output_attentions = a.attentions;
  models::ModelOutputs out;
  if (runtime::is_runtime_dir(a.model_dir)) {
    if (!a.head.empty()) fail_invalid("forward: --head applies to model dirs; a runtime dir runs the head it was packed with");
    auto packed = runtime::open_runtime_dir(a.model_dir, a.precision, a.threads, a.int8_attention);
    if (!packed.vision) {
      models::ModelInfo info;  // what validate_inputs checks: the vocabulary and the position table
      info.vocab_size = packed.vocab_size();
      info.max_positions = packed.max_positions();
      info.is_encoder_decoder = packed.seq2seq != nullptr;
      models::validate_inputs(info, in, in_dir.string());  // the errors name the array
    }
    out.tensors = runtime_forward(packed, in, a, in_dir);
  } else {
    auto loaded = quant::load_any_model(a.model_dir, [&] { models::LoadOptions o; o.head = a.head; return o; }());
    models::validate_inputs(loaded.model->info(), in, in_dir.string());
    if (in.token_type_ids.defined() && !loaded.model->info().uses_token_type_ids && loaded.model->info().model_type != "gpt2")
      fail_invalid((in_dir / "token_type_ids.npy").string(), ": ", loaded.model->info().model_type, " takes no token_type_ids");
    torch::NoGradGuard no_grad;
    if (engine == "runtime")
      out.tensors = runtime_forward(runtime::build_engine(loaded, a.precision, a.threads, a.int8_attention), in, a, in_dir);
    else
      out = loaded.model->forward(in);
  }
  if (images) out.tensors["pixel_values"] = in.pixel_values;  // what the image processor made of them
  StagingDir staging(a.out, a.overwrite);
  for (const auto& [name, t] : out.tensors) io::write_npy(staging.path() / (name + ".npy"), t.to(torch::kFloat32));
  if (a.hidden_states) {
    write_states(staging.path(), "hidden_states", out.hidden_states);
    if (!out.encoder_hidden_states.empty()) write_states(staging.path(), "encoder_hidden_states", out.encoder_hidden_states);
  }
  if (a.attentions) io::write_npy(staging.path() / "attentions.npy", torch::stack(out.attentions));
  staging.commit();
  for (const auto& [name, t] : out.tensors) std::cout << name << " " << t.sizes() << "\n";
}

}  // namespace

void add_forward_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("forward", "Run a model on .npy inputs (HF argument names) and write .npy outputs");
  auto a = std::make_shared<ForwardArgs>();
  cmd->add_option("model_dir", a->model_dir, "Hugging Face model directory")->required();
  cmd->add_option("--inputs", a->inputs, "directory with input_ids.npy [attention_mask.npy token_type_ids.npy position_ids.npy decoder_input_ids.npy "
                  "decoder_attention_mask.npy], or for ViT images.npy (uint8 [B, H, W, 3], through the model's preprocessor_config.json) or pixel_values.npy")
      ->required();
  cmd->add_option("--out", a->out, "output directory (logits.npy, last_hidden_state.npy, ...)")->required();
  cmd->add_option("--head", a->head, "HF class to run instead of config.architectures[0] (e.g. BertModel)");
  cmd->add_flag("--hidden-states", a->hidden_states, "also write hidden_states.npy [layers+1, B, T, H] (hidden_states_<i>.npy per state when their widths differ; "
                "encoder-decoders: the decoder's, and encoder_hidden_states.npy)");
  cmd->add_flag("--attentions", a->attentions, "also write attentions.npy [layers, B, heads, T, T]");
  cmd->add_flag("--overwrite", a->overwrite, "replace an existing output directory");
  add_engine_option(cmd, &a->engine);
  add_precision_option(cmd, &a->precision, &a->int8_attention);
  add_threads_option(cmd, &a->threads);
  cmd->callback([a] { run_forward(*a); });
}

}  // namespace sqz::cli
