#include "runtime/engine.h"

#include "core/error.h"
#include "runtime/runtime_dir.h"

namespace sqz::runtime {

std::string Engine::name() const {
  return std::string("runtime ") + precision_name(precision()) + (options().int8_attention ? " + int8 attention" : "");
}

void Engine::require_text(const std::string& who) const {
  if (vision) fail_unimplemented(who, ": the runtime's ViT engine runs in sqz forward and sqz pack; this command takes text models");
}

int64_t Engine::vocab_size() const {
  require_text("vocab_size");
  return encoder ? encoder->vocab_size() : decoder ? decoder->vocab_size() : seq2seq->vocab_size();
}

int64_t Engine::max_positions() const {
  require_text("max_positions");
  return encoder ? encoder->max_positions() : decoder ? decoder->max_positions() : seq2seq->max_positions();
}

Engine build_engine(const models::LoadedModel& loaded, const std::string& precision, int threads, bool int8_attention) {
  EngineOptions options{resolve_precision(precision, loaded.config.value()), threads};
  options.int8_attention = int8_attention;
  Engine e;
  e.bos_token_id = loaded.model->info().bos_token_id;
  e.eos_token_id = loaded.model->info().eos_token_id;
  if (loaded.model->info().is_decoder)
    e.decoder = std::make_unique<Decoder>(loaded, options);
  else if (loaded.model->info().is_encoder_decoder)
    e.seq2seq = std::make_unique<EncoderDecoder>(loaded, options);
  else if (loaded.model->info().model_type == "vit")
    e.vision = std::make_unique<VitEncoder>(loaded, options);
  else
    e.encoder = std::make_unique<BertEncoder>(loaded, options);
  return e;
}

Engine open_runtime_dir(const fs::path& dir, const std::string& precision, int threads, bool int8_attention) {
  RuntimeDirReader reader(dir);
  const Precision packed_precision = precision_field(reader.manifest());
  const auto packed = reader.manifest().get_string("precision");
  if (!precision.empty() && parse_precision(precision) != packed_precision)
    fail_invalid(reader.manifest().source(), ": this runtime dir was packed for precision ", packed, ", not ", precision,
                 "; pack the model dir again (sqz pack MODEL_DIR --precision ", precision, " --out DIR)");
  EngineOptions options{packed_precision, threads};
  options.int8_attention = int8_attention;
  const auto kind = reader.manifest().get_string("engine");
  Engine e;
  e.bos_token_id = reader.manifest().get_optional_int("bos_token_id");
  e.eos_token_id = reader.manifest().get_optional_int("eos_token_id");
  if (kind == "decoder")
    e.decoder = std::make_unique<Decoder>(reader, options);
  else if (kind == "bert-encoder")
    e.encoder = std::make_unique<BertEncoder>(reader, options);
  else if (kind == "encoder-decoder")
    e.seq2seq = std::make_unique<EncoderDecoder>(reader, options);
  else if (kind == "vit-encoder")
    e.vision = std::make_unique<VitEncoder>(reader, options);
  else
    reader.manifest().fail_field("engine", "'bert-encoder', 'decoder', 'encoder-decoder' or 'vit-encoder'");
  return e;
}

}  // namespace sqz::runtime
