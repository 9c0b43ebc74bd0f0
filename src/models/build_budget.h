// A memory budget for building a model from a config.json: a file that asks for 2^31 layers, or a
// typo in intermediate_size, must be refused by name, not allocate until the machine kills sqz.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "models/model.h"

namespace sqz::models {

// Runs `build` while counting the CPU tensor memory this thread allocates. Past `budget_bytes`,
// or when libtorch cannot make a tensor (std::bad_alloc; c10's out-of-memory, size overflow or a
// size beyond int64), throws an sqz::Error: `refusal(why)`, `why` saying what happened.
std::shared_ptr<TransformerModel> build_within_budget(const std::function<std::shared_ptr<TransformerModel>()>& build,
                                                      uint64_t budget_bytes,
                                                      const std::function<std::string(const std::string& why)>& refusal);

}  // namespace sqz::models
