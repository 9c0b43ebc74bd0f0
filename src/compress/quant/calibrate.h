// Post-training quantization of a model: the recipe's PTQ quantizers attached, SmoothQuant's
// smoothing (when asked) on ranges of its own pass, then the observers calibrated on the first
// batches of the task's training split (the task's forward pass, teacher-forced for seq2seq).
#pragma once
#include "compress/recipe.h"
#include "io/tokenizers/tokenizer.h"

namespace sqz::quant {

// The layers the export writes (codes, scales, activation ranges). `model` is left with its
// quantizers attached, so it computes what the export will. With a data-parallel `group`, every
// rank calls it on the same model and runs its share of each calibration batch; the ranges and
// Hessians are the group's (those of one process calibrating on the whole batches) on every rank.
std::vector<QuantizedLayer> post_training_quantize(const compress::CompressRecipe& r, models::TransformerModel& model,
                                                   const io::Tokenizer& tok, const io::JsonFields& config, dist::Group* group = nullptr);

}  // namespace sqz::quant
