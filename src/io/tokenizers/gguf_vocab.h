// The tokenizer a GGUF file carries (tokenizer.ggml.* metadata) written as Hugging Face files:
// tokenizer.json, tokenizer_config.json and special_tokens_map.json.
#pragma once
#include <map>

#include "io/gguf_writer.h"
#include "io/json_file.h"

namespace sqz::io {

// Byte-level BPE vocabularies (tokenizer.ggml.model "gpt2") with the pre-tokenizers sqz runs
// (tokenizer.ggml.pre "default", "gpt-2" — or "gpt2", as sqz wrote it before —, "smollm"); any other is refused by name.
// The special tokens a GGUF names (tokenizer.ggml.<role>_token_id) by their HF role: bos, eos,
// unk, pad, sep, cls, mask. An id outside [0, vocab_size) fails naming the field.
std::map<std::string, int64_t> gguf_special_token_ids(const JsonFields& metadata, int64_t vocab_size);

void write_gguf_tokenizer(const JsonFields& metadata, const fs::path& dir, int64_t model_max_length);

// The other direction: a model dir's byte-level BPE tokenizer (tokenizer.json, or vocab.json +
// merges.txt) as tokenizer.ggml.* metadata — tokens by id, their types (3 = special added token,
// 4 = other added token, 1 = the rest), merges, the llama.cpp pre-tokenizer name ("gpt2" for
// GPT-2's ByteLevel alone, "smollm" for single digits then ByteLevel), the special token ids and
// add_bos_token. Other tokenizer kinds and pre-tokenizers are refused naming the file.
std::vector<std::pair<std::string, GgufValue>> gguf_tokenizer_metadata(const fs::path& dir);

}  // namespace sqz::io
