#include "train/data_parallel.h"

#include <fstream>
#include <set>

#include <torch/csrc/autograd/utils/lambda_post_hook.h>

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

GradientBuckets::GradientBuckets(dist::Group& group, const std::vector<torch::Tensor>& params, int64_t bucket_bytes) : group_(group) {
  if (!group.distributed()) return;
  std::set<const void*> seen;  // a tensor listed twice (tied, or both a parameter and a hook's) counts once
  for (auto it = params.rbegin(); it != params.rend(); ++it)
    if (seen.insert(it->unsafeGetTensorImpl()).second) params_.push_back(*it);
  bucket_of_.resize(params_.size());
  ready_.assign(params_.size(), false);
  int64_t bytes = 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& p = params_[i];
    const int64_t size = p.numel() * static_cast<int64_t>(p.element_size());
    if (buckets_.empty() || bytes + size > bucket_bytes || params_[buckets_.back().params.front()].scalar_type() != p.scalar_type()) {
      buckets_.emplace_back();
      bytes = 0;
    }
    buckets_.back().params.push_back(i);
    buckets_.back().numel += p.numel();
    bucket_of_[i] = buckets_.size() - 1;
    bytes += size;
    // Parameters without an accumulator (no grad required) are sent by finish().
    if (auto acc = p.requires_grad() && p.is_leaf() ? torch::autograd::impl::grad_accumulator(p) : nullptr) {
      const uintptr_t key = acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
          [this, i](const torch::autograd::variable_list& out, const torch::autograd::variable_list&) {
            mark_ready(i);
            return out;
          }));
      hooks_.emplace_back(std::move(acc), key);
    }
  }
  for (auto& b : buckets_)
    b.flat = torch::zeros({b.numel + static_cast<int64_t>(b.params.size())}, params_[b.params.front()].options().requires_grad(false));
}

GradientBuckets::~GradientBuckets() {
  for (auto& [acc, key] : hooks_) acc->del_post_hook(key);
}

void GradientBuckets::arm() { armed_ = group_.distributed(); }

void GradientBuckets::mark_ready(size_t param) {
  if (!armed_ || ready_[param]) return;
  ready_[param] = true;
  ++buckets_[bucket_of_[param]].ready;
  for (; next_ < buckets_.size() && buckets_[next_].ready == buckets_[next_].params.size(); ++next_) {
    start(buckets_[next_]);
    ++sent_during_backward_;
  }
}

void GradientBuckets::start(Bucket& b) {
  torch::NoGradGuard no_grad;
  int64_t at = 0;
  for (size_t j = 0; j < b.params.size(); ++j) {
    const auto& p = params_[b.params[j]];
    const auto& g = p.grad();
    if (g.defined()) b.flat.narrow(0, at, p.numel()).copy_(g.reshape({-1}));
    else b.flat.narrow(0, at, p.numel()).zero_();
    b.flat[b.numel + static_cast<int64_t>(j)] = g.defined() ? 1 : 0;
    at += p.numel();
  }
  group_.start_sum(b.flat);
  ++sent_;
}

void GradientBuckets::finish() {
  if (!group_.distributed()) return;
  armed_ = false;
  for (; next_ < buckets_.size(); ++next_) start(buckets_[next_]);
  group_.wait_sums("summing gradients");
  torch::NoGradGuard no_grad;
  for (auto& b : buckets_) {
    int64_t at = 0;
    for (size_t j = 0; j < b.params.size(); ++j) {
      auto p = params_[b.params[j]];
      if (b.flat[b.numel + static_cast<int64_t>(j)].item<double>() > 0) {
        if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
        p.mutable_grad().copy_(b.flat.narrow(0, at, p.numel()).view_as(p)).div_(group_.size());
      }
      at += p.numel();
    }
    b.ready = 0;
  }
  ready_.assign(ready_.size(), false);
  next_ = 0;
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
