#include "models/generation.h"

#include "core/error.h"

namespace sqz::models {

namespace {

int64_t pick_token(const torch::Tensor& logits_in, const GenerationOptions& o, torch::Generator& gen) {
  if (!o.sample) return logits_in.argmax(-1).item<int64_t>();
  auto logits = logits_in.to(torch::kFloat32) / std::max(o.temperature, 1e-6);
  if (o.top_k > 0 && o.top_k < logits.size(-1)) {
    auto kth = std::get<0>(logits.topk(o.top_k)).index({-1});
    logits = logits.masked_fill(logits < kth, -std::numeric_limits<float>::infinity());
  }
  if (o.top_p < 1.0) {
    auto [sorted, order] = logits.sort(-1, /*descending=*/true);
    auto cum = sorted.softmax(-1).cumsum(-1);
    // Keep the smallest prefix whose mass reaches top_p (the first token always stays).
    auto drop = (cum - sorted.softmax(-1)) > o.top_p;
    logits = logits.index_put({order.masked_select(drop)}, torch::tensor(-std::numeric_limits<float>::infinity()));
  }
  auto probs = logits.softmax(-1);
  return torch::multinomial(probs, 1, false, gen).item<int64_t>();
}

}  // namespace

torch::Tensor generate(TransformerModel& model, const torch::Tensor& prompt, const GenerationOptions& o) {
  const ModelInfo& info = model.info();
  if (!info.is_decoder) fail_invalid(info.head_class, " is not a decoder; generate needs a causal LM");
  if (prompt.dim() != 2 || prompt.size(0) != 1 || prompt.size(1) == 0)
    fail_invalid("generate: prompt must be [1, T] with T > 0, got ", prompt.sizes());
  if (o.max_new_tokens < 0) fail_invalid("--max-new-tokens must be >= 0, got ", o.max_new_tokens);
  if (o.sample && o.temperature <= 0) fail_invalid("--temperature must be > 0 when sampling, got ", o.temperature);
  if (o.top_p <= 0 || o.top_p > 1) fail_invalid("--top-p must be in (0, 1], got ", o.top_p);
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(o.seed);
  KVCache cache;
  std::vector<int64_t> ids(prompt.data_ptr<int64_t>(), prompt.data_ptr<int64_t>() + prompt.numel());
  torch::Tensor step = prompt;
  for (int64_t i = 0; i < o.max_new_tokens; ++i) {
    if (info.max_positions > 0 && static_cast<int64_t>(ids.size()) >= info.max_positions) break;
    ModelInputs in;
    in.input_ids = step;
    in.cache = &cache;
    validate_inputs(info, in, "generate");
    auto out = model.forward(in);
    auto logits = out.at("logits").select(0, 0).select(0, -1);
    int64_t next = pick_token(logits, o, gen);
    ids.push_back(next);
    if (o.stop_at_eos && info.eos_token_id && next == *info.eos_token_id) break;
    step = torch::tensor({next}, torch::kLong).view({1, 1});
  }
  return torch::tensor(ids, torch::kLong).view({1, -1});
}

}  // namespace sqz::models
