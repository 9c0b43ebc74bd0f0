// Wall-clock latency of a model's forward pass on this machine (libtorch eager), and the
// matmul FLOPs it implies, so that a report can set the two side by side.
#pragma once
#include <functional>
#include <vector>

#include "io/json_file.h"
#include "models/model.h"

namespace sqz::eval {

struct LatencyOptions {
  int64_t batch = 1, seq = 128;
  int threads = 2;
  int warmup = 3, runs = 20;
};

struct LatencyResult {
  double median_ms = 0, p10_ms = 0, p90_ms = 0;
  double gflops = 0;  // 2 x multiply-adds of one forward pass (see forward_flops)
  io::json to_json(const LatencyOptions& o) const;
};

// Median and spread of `runs` calls of fn after `warmup` untimed ones.
struct TimingStats {
  double median_ms = 0, p10_ms = 0, p90_ms = 0;
  int runs = 0;
};
TimingStats time_calls(const std::function<void()>& fn, int warmup, int runs);
// The same statistics of times measured elsewhere (e.g. by a peer in another process).
TimingStats timing_stats(std::vector<double> ms);

// Random in-vocabulary ids, no padding; restores libtorch's thread count afterwards.
LatencyResult measure_latency(models::TransformerModel& model, const LatencyOptions& options);

// Multiply-add FLOPs of one forward pass at [batch, seq] (Linear layers and attention).
double forward_flops(models::TransformerModel& model, int64_t batch, int64_t seq);

}  // namespace sqz::eval
