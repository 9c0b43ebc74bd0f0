// Which engine runs a model: the encoder for BERT-family classifiers and encoders, the decoder for
// causal LMs, the encoder-decoder for BART, the ViT encoder for images. One place builds either from a model dir (packing its weights now) or loads it from
// a runtime dir (as `sqz pack` packed it), for the commands that take --engine runtime.
#pragma once
#include <memory>
#include <optional>

#include "runtime/bert_encoder.h"
#include "runtime/decoder.h"
#include "runtime/encoder_decoder.h"
#include "runtime/vit_encoder.h"

namespace sqz::runtime {

struct Engine {
  std::unique_ptr<BertEncoder> encoder;  // exactly one of the four is set
  std::unique_ptr<Decoder> decoder;
  std::unique_ptr<EncoderDecoder> seq2seq;
  std::unique_ptr<VitEncoder> vision;
  std::optional<int64_t> bos_token_id, eos_token_id;  // as the model's family reads its config
  const EngineOptions& options() const {
    return encoder ? encoder->options() : decoder ? decoder->options() : seq2seq ? seq2seq->options() : vision->options();
  }
  Precision precision() const { return options().precision; }
  // How reports name it: "runtime int8", "runtime int8 + int8 attention".
  std::string name() const;
  // Text engines only (a ViT engine is refused, naming `who`).
  int64_t vocab_size() const;
  int64_t max_positions() const;
  void require_text(const std::string& who) const;
};

// From a loaded model dir: `precision` as --precision takes it (empty = what the dir declares).
Engine build_engine(const models::LoadedModel& loaded, const std::string& precision, int threads, bool int8_attention = false);
// From a runtime dir; a `precision` other than the packed one is refused (it needs packing again).
// int8 attention runs when the dir was packed with it or `int8_attention` asks for it.
Engine open_runtime_dir(const fs::path& dir, const std::string& precision, int threads, bool int8_attention = false);

}  // namespace sqz::runtime
