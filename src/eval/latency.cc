#include "eval/latency.h"

#include <algorithm>
#include <chrono>
#include <set>

#include "nn/threads.h"

namespace sqz::eval {

io::json LatencyResult::to_json(const LatencyOptions& o) const {
  return {{"batch", o.batch}, {"seq", o.seq}, {"threads", o.threads}, {"runs", o.runs}, {"median_ms", median_ms},
          {"p10_ms", p10_ms}, {"p90_ms", p90_ms}, {"gflops", gflops}};
}

double forward_flops(models::TransformerModel& model, int64_t batch, int64_t seq) {
  // Blocks' Linear layers run on every token; the rest (pooler, classifier) once per example.
  auto st = model.structure();
  std::set<const void*> per_token;
  for (const auto& l : st.block_linears()) per_token.insert(l.get());
  double flops = 0;
  for (const auto& m : model.modules(/*include_self=*/false))
    if (auto* l = dynamic_cast<nn::LinearImpl*>(m.get())) {
      double rows = static_cast<double>(per_token.count(l) || per_token.empty() ? batch * seq : batch);
      flops += 2.0 * rows * static_cast<double>(l->in_features() * l->out_features());
    }
  for (const auto& a : st.attention)  // QK^T and P.V per head
    flops += 2.0 * 2.0 * static_cast<double>(batch * seq * seq) * static_cast<double>(a.num_heads * a.head_dim);
  return flops;
}

TimingStats timing_stats(std::vector<double> ms) {
  if (ms.empty()) return {};
  std::sort(ms.begin(), ms.end());
  auto at = [&](double q) { return ms[static_cast<size_t>(q * static_cast<double>(ms.size() - 1) + 0.5)]; };
  return {at(0.5), at(0.1), at(0.9), static_cast<int>(ms.size())};
}

TimingStats time_calls(const std::function<void()>& fn, int warmup, int runs) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> ms;
  for (int i = 0; i < std::max(runs, 1); ++i) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return timing_stats(std::move(ms));
}

LatencyResult measure_latency(models::TransformerModel& model, const LatencyOptions& o) {
  torch::NoGradGuard no_grad;
  int saved_threads = torch::get_num_threads();
  if (o.threads > 0) set_torch_threads(o.threads);
  bool was_training = model.is_training();
  model.eval();
  auto gen = at::detail::createCPUGenerator(1234);
  models::ModelInputs in;
  in.input_ids = torch::randint(model.info().vocab_size, {o.batch, o.seq}, gen, torch::kLong);
  in.attention_mask = torch::ones({o.batch, o.seq}, torch::kLong);
  auto t = time_calls([&] { model.forward(in); }, o.warmup, o.runs);
  LatencyResult r{t.median_ms, t.p10_ms, t.p90_ms, forward_flops(model, o.batch, o.seq) / 1e9};
  set_torch_threads(saved_threads);
  if (was_training) model.train();
  return r;
}

}  // namespace sqz::eval
