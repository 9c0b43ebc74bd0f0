#include "train/data_parallel.h"

#include <fstream>

#include "core/error.h"

namespace sqz::train {

namespace {

// FNV-1a over bytes: an identity for equality checks between ranks, not a cryptographic hash.
uint64_t fnv1a(const void* data, size_t n, uint64_t h = 1469598103934665603ull) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

std::string hex(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

uint64_t tensor_hash(const torch::Tensor& t, uint64_t h) {
  auto c = t.detach().contiguous().cpu();
  return fnv1a(c.data_ptr(), static_cast<size_t>(c.numel()) * c.element_size(), h);
}

std::string binary_identity() {
  std::ifstream in("/proc/self/exe", std::ios::binary);
  std::vector<char> buf(1 << 20);
  uint64_t h = 1469598103934665603ull;
  size_t total = 0;
  while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0) {
    h = fnv1a(buf.data(), static_cast<size_t>(in.gcount()), h);
    total += static_cast<size_t>(in.gcount());
  }
  return "sqz 0.1.0, binary " + hex(h) + " (" + std::to_string(total) + " bytes)";
}

// Two numbers per tensor that differ when its values differ: a hash of its bytes split into
// exactly representable halves (so MIN and MAX over the ranks compare them exactly).
void add_digest(std::vector<double>& out, const torch::Tensor& t) {
  const uint64_t h = tensor_hash(t, 1469598103934665603ull);
  out.push_back(static_cast<double>(h >> 32));
  out.push_back(static_cast<double>(h & 0xffffffffull));
}

}  // namespace

void agree_on_the_run(dist::Group& group, const TrainRecipe& recipe, models::TransformerModel& model, const io::json& config) {
  if (!group.distributed()) return;
  group.agree("sqz binary", binary_identity());
  TrainRecipe same = recipe;
  same.out.clear();  // each host may write (rank 0) or not write somewhere else
  const std::string yaml = same.to_yaml();
  group.agree("recipe", yaml);
  uint64_t h = fnv1a(config.dump().data(), config.dump().size());
  for (const auto& p : model.named_parameters()) h = tensor_hash(p.value(), fnv1a(p.key().data(), p.key().size(), h));
  group.agree("model", "config and weights hash " + hex(h));
  std::vector<torch::Tensor> state;
  for (auto& p : model.parameters()) state.push_back(p.detach());
  for (auto& b : model.buffers()) state.push_back(b);
  group.broadcast_from_root(state);
}

void average_gradients(dist::Group& group, const std::vector<torch::Tensor>& params) {
  if (!group.distributed()) return;
  auto has = torch::zeros({static_cast<int64_t>(params.size())}, torch::kFloat);
  for (size_t i = 0; i < params.size(); ++i) has[static_cast<int64_t>(i)] = params[i].grad().defined() ? 1.f : 0.f;
  group.max(has);
  std::vector<torch::Tensor> grads;
  for (size_t i = 0; i < params.size(); ++i) {
    if (has[static_cast<int64_t>(i)].item<float>() == 0.f) continue;
    auto p = params[i];
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad());
  }
  group.mean(grads);
}

void check_ranks_agree(dist::Group& group, models::TransformerModel& model, const TrainHooks& hooks) {
  if (!group.distributed()) return;
  std::vector<std::string> names;
  std::vector<double> digest;
  for (const auto& p : model.named_parameters()) names.push_back(p.key()), add_digest(digest, p.value());
  StateDict state;
  hooks.save_state(state);
  for (const auto& [key, t] : state.tensors()) names.push_back(key), add_digest(digest, t);
  auto lo = torch::tensor(digest, torch::kDouble), hi = lo.clone();
  group.min(lo);
  group.max(hi);
  auto differs = lo.ne(hi).nonzero();
  if (differs.numel() > 0) {
    const auto i = static_cast<size_t>(differs[0][0].item<int64_t>() / 2);
    fail_data("rank ", group.rank(), ": '", names[i], "' differs between the ranks (and ", differs.size(0) / 2 - 1,
              " more at most): data-parallel ranks must hold the same model and compressor state");
  }
}

}  // namespace sqz::train
