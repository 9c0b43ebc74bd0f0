// A Hugging Face model dir written as one GGUF file that llama.cpp runs: the family's metadata
// and tensor names (ArchSpec::to_gguf), the byte-level BPE tokenizer as tokenizer.ggml.*, norms
// and biases in F32 and every matrix in the requested type (F16, Q8_0 or Q4_K; a matrix whose
// rows the type's blocks do not divide falls back to Q8_0, then F16). The file is read back and
// imported again before the command returns, and the re-imported model's logits are compared
// with the original's on a random batch.
#pragma once
#include "io/json_file.h"
#include "models/registry.h"

namespace sqz::models {

// "f16", "q8_0" or "q4_k"; anything else is refused naming the flag.
io::json export_gguf(const LoadedModel& loaded, const fs::path& model_dir, const std::string& type, const fs::path& out);

}  // namespace sqz::models
