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

namespace {

}  // namespace

torch::Tensor DecodingSteps::next_logits(const torch::Tensor& step) {
  const bool seq2seq = model_.info().is_encoder_decoder;
  ModelInputs in;
  in.cache = &cache_;
  if (seq2seq) {
    in.input_ids = source_;
    in.attention_mask = source_mask_;
    in.decoder_input_ids = step;
    in.encoder_last_hidden_state = memory_;
  } else {
    in.input_ids = step;
  }
  validate_inputs(model_.info(), in, who_);
  auto out = model_.forward(in);
  if (seq2seq && !memory_.defined()) memory_ = out.at("encoder_last_hidden_state");
  return out.at("logits").select(1, -1);
}

torch::Tensor generate(TransformerModel& model, const torch::Tensor& prompt, const GenerationOptions& o) {
  const ModelInfo& info = model.info();
  if (!info.is_decoder && !info.is_encoder_decoder)
    fail_invalid(info.head_class, " is neither a decoder nor an encoder-decoder; generate needs a language-model head");
  if (prompt.dim() != 2 || prompt.size(0) != 1 || prompt.size(1) == 0)
    fail_invalid("generate: prompt must be [1, T] with T > 0, got ", prompt.sizes());
  if (o.max_new_tokens < 0) fail_invalid("--max-new-tokens must be >= 0, got ", o.max_new_tokens);
  if (o.sample && o.temperature <= 0) fail_invalid("--temperature must be > 0 when sampling, got ", o.temperature);
  if (o.top_p <= 0 || o.top_p > 1) fail_invalid("--top-p must be in (0, 1], got ", o.top_p);
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(o.seed);
  DecodingSteps steps(model, prompt, {}, "generate");
  std::vector<int64_t> ids(prompt.data_ptr<int64_t>(), prompt.data_ptr<int64_t>() + prompt.numel());
  torch::Tensor step = prompt;
  int64_t decoded = static_cast<int64_t>(ids.size());  // positions the decoder has seen
  if (info.is_encoder_decoder) {
    if (!info.decoder_start_token_id) fail_invalid("config.json: decoder_start_token_id is not set; generate cannot start");
    step = torch::tensor({*info.decoder_start_token_id}, torch::kLong).view({1, 1});
    decoded = 1;
  }
  for (int64_t i = 0; i < o.max_new_tokens; ++i) {
    if (info.max_positions > 0 && decoded >= info.max_positions) break;
    auto logits = steps.next_logits(step).select(0, 0);
    int64_t next = pick_token(logits, o, gen);
    if (i == 0 && o.forced_bos_token_id) next = *o.forced_bos_token_id;
    if (i == o.max_new_tokens - 1 && o.forced_eos_token_id) next = *o.forced_eos_token_id;
    ids.push_back(next);
    ++decoded;
    if (o.stop_at_eos && info.eos_token_id && next == *info.eos_token_id) break;
    step = torch::tensor({next}, torch::kLong).view({1, 1});
  }
  return torch::tensor(ids, torch::kLong).view({1, -1});
}

torch::Tensor generate_seq2seq_greedy(TransformerModel& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                      int64_t max_new_tokens) {
  const ModelInfo& info = model.info();
  if (!info.is_encoder_decoder) fail_invalid(info.head_class, " is not an encoder-decoder");
  if (!info.decoder_start_token_id || !info.eos_token_id || !info.pad_token_id)
    fail_invalid("config.json: batched generation needs decoder_start_token_id, eos_token_id and pad_token_id");
  torch::NoGradGuard no_grad;
  const int64_t b = input_ids.size(0);
  DecodingSteps steps(model, input_ids, attention_mask, "generate");
  auto step = torch::full({b, 1}, *info.decoder_start_token_id, torch::kLong);
  auto done = torch::zeros({b}, torch::kBool);
  std::vector<torch::Tensor> picked;
  for (int64_t i = 0; i < max_new_tokens; ++i) {
    if (info.max_positions > 0 && i + 1 >= info.max_positions) break;
    auto next = steps.next_logits(step).argmax(-1).masked_fill(done, *info.pad_token_id);
    picked.push_back(next);
    done = done.logical_or(next.eq(*info.eos_token_id));
    if (done.all().item<bool>()) break;
    step = next.view({b, 1});
  }
  return picked.empty() ? torch::empty({b, 0}, torch::kLong) : torch::stack(picked, 1);
}

}  // namespace sqz::models
