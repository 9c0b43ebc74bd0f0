#include "runtime/engine.h"

#include "core/error.h"
#include "runtime/runtime_dir.h"

namespace sqz::runtime {

Engine build_engine(const models::LoadedModel& loaded, const std::string& precision, int threads) {
  const EngineOptions options{resolve_precision(precision, loaded.config.value()), threads};
  Engine e;
  e.bos_token_id = loaded.model->info().bos_token_id;
  e.eos_token_id = loaded.model->info().eos_token_id;
  if (loaded.model->info().is_decoder)
    e.decoder = std::make_unique<Decoder>(loaded, options);
  else
    e.encoder = std::make_unique<BertEncoder>(loaded, options);
  return e;
}

Engine open_runtime_dir(const fs::path& dir, const std::string& precision, int threads) {
  RuntimeDirReader reader(dir);
  const auto packed = reader.manifest().get_string("precision");
  if (!precision.empty() && parse_precision(precision) != parse_precision(packed))
    fail_invalid(reader.manifest().source(), ": this runtime dir was packed for precision ", packed, ", not ", precision,
                 "; pack the model dir again (sqz pack MODEL_DIR --precision ", precision, " --out DIR)");
  const EngineOptions options{parse_precision(packed), threads};
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
