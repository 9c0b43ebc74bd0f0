// The tokenizer a GGUF file carries (tokenizer.ggml.* metadata) written as Hugging Face files:
// tokenizer.json, tokenizer_config.json and special_tokens_map.json.
#pragma once
#include "io/json_file.h"

namespace sqz::io {

// Byte-level BPE vocabularies (tokenizer.ggml.model "gpt2") with the pre-tokenizers sqz runs
// (tokenizer.ggml.pre "default", "gpt2", "smollm"); any other is refused by name.
void write_gguf_tokenizer(const JsonFields& metadata, const fs::path& dir, int64_t model_max_length);

}  // namespace sqz::io
