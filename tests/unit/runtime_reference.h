// What the runtime engines are checked against: libtorch models made to compute what the engine
// computes, and the error measure the runtime tests use.
#pragma once
#include <vector>

#include "models/model.h"
#include "runtime/linear_op.h"

namespace sqz::testing {

// max |a - b| / max |b|
double relative_error(const std::vector<float>& got, const torch::Tensor& want);

// What the int8 (or bf16) engine computes, written with torch ops on the model's compression
// sites: int8 quantizes weights symmetric per output channel and inputs asymmetric u8 per token;
// bf16 rounds both to bf16 (torch rounds to nearest even, as the kernels do).
void fake_quantize_like_engine(models::TransformerModel& model, runtime::Precision precision = runtime::Precision::kInt8);

}  // namespace sqz::testing
