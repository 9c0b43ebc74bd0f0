#include "runtime/engine.h"

#include "core/error.h"
#include "runtime/runtime_dir.h"

namespace sqz::runtime {

std::string Engine::name() const {
  return std::string("runtime ") + precision_name(precision()) + (options().int8_attention ? " + int8 attention" : "");
}

Engine build_engine(const models::LoadedModel& loaded, const std::string& precision, int threads, bool int8_attention) {
  EngineOptions options{resolve_precision(precision, loaded.config.value()), threads};
  options.int8_attention = int8_attention;
  Engine e;
  e.bos_token_id = loaded.model->info().bos_token_id;
  e.eos_token_id = loaded.model->info().eos_token_id;
  if (loaded.model->info().is_decoder)
    e.decoder = std::make_unique<Decoder>(loaded, options);
  else
    e.encoder = std::make_unique<BertEncoder>(loaded, options);
  return e;
}

Engine open_runtime_dir(const fs::path& dir, const std::string& precision, int threads, bool int8_attention) {
  RuntimeDirReader reader(dir);
  const auto packed = reader.manifest().get_string("precision");
  if (!precision.empty() && parse_precision(precision) != parse_precision(packed))
    fail_invalid(reader.manifest().source(), ": this runtime dir was packed for precision ", packed, ", not ", precision,
                 "; pack the model dir again (sqz pack MODEL_DIR --precision ", precision, " --out DIR)");
  EngineOptions options{parse_precision(packed), threads};
  options.int8_attention = int8_attention;
  const auto kind = reader.manifest().get_string("engine");
  Engine e;
  e.bos_token_id = reader.manifest().get_optional_int("bos_token_id");
  e.eos_token_id = reader.manifest().get_optional_int("eos_token_id");
  if (kind == "decoder")
    e.decoder = std::make_unique<Decoder>(reader, options);
  else if (kind == "bert-encoder")
    e.encoder = std::make_unique<BertEncoder>(reader, options);
  else
    reader.manifest().fail_field("engine", "'bert-encoder' or 'decoder'");
  return e;
}

}  // namespace sqz::runtime
