// Training recipes (YAML): any text is either a validated recipe that writes back out, or a
// refusal naming the field.
#include "fuzz_util.h"
#include "train/recipe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  sqz::fuzz::refusals_allowed([&] {
    auto recipe = sqz::train::TrainRecipe::from_yaml_text(text, "fuzz.yaml", {});
    sqz::train::TrainRecipe::from_yaml_text(recipe.to_yaml(), "fuzz-roundtrip.yaml", {});
  });
  return 0;
}
