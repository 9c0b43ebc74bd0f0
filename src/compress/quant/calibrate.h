// Post-training quantization of a model: the recipe's PTQ quantizers attached, SmoothQuant's
// smoothing (when asked) on ranges of its own pass, then the observers calibrated on the first
// batches of the task's training split.
#pragma once
#include "compress/recipe.h"
#include "io/tokenizers/tokenizer.h"

namespace sqz::quant {

// The layers the export writes (codes, scales, activation ranges). `model` is left with its
// quantizers attached, so it computes what the export will.
std::vector<QuantizedLayer> post_training_quantize(const compress::CompressRecipe& r, models::TransformerModel& model,
                                                   const io::Tokenizer& tok, const io::JsonFields& config);

}  // namespace sqz::quant
