// One process's place in a data-parallel group, on libtorch's c10d: Gloo's process group for the
// collectives (NCCL has the same API on GPUs), over the rendezvous store of dist/store.h. A group
// of one (no --world-size) does nothing and costs nothing, so callers never branch on it.
// Every failure of another rank (killed, out of memory, a bad shard, unreachable) surfaces here
// as an sqz error naming the operation, within the group's timeout.
#pragma once
#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <string>

namespace c10d {
class ProcessGroup;
class Store;
class Work;
struct ReduceOp;
}  // namespace c10d

namespace sqz::dist {

class StoreServer;

struct GroupSpec {
  int rank = 0;
  int world_size = 1;
  std::string master;  // ADDR:PORT of rank 0's store; required when world_size > 1
  int timeout_s = 300;   // how long a collective waits for a silent rank
  // Checks the fields together; `flags` names them in errors (--rank, --world-size, --master).
  void validate() const;
};

class Group {
 public:
  Group();  // a group of one
  explicit Group(const GroupSpec& spec);
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_root() const { return rank_ == 0; }
  bool distributed() const { return size_ > 1; }

  // Every rank must pass the same `value` for `what` (recipe, model, sqz version): a rank whose
  // value differs from rank 0's is refused, on every rank, naming `what` and the rank.
  void agree(const std::string& what, const std::string& value);
  // Sums in place, bucketed (tensors of one dtype in flat buffers of `bucket_bytes`).
  void sum(std::vector<torch::Tensor> tensors, int64_t bucket_bytes = 16 << 20);
  void mean(std::vector<torch::Tensor> tensors);  // sum / size
  // Starts summing one flat tensor in place and returns at once (gradient buckets while backward
  // runs); wait_sums() finishes every sum started. Ranks pair their sums in the order started.
  void start_sum(torch::Tensor flat);
  void wait_sums(const std::string& what);
  void max(torch::Tensor t);
  void min(torch::Tensor t);
  void broadcast_from_root(std::vector<torch::Tensor> tensors);
  // All ranks' copies of a 1-D tensor whose length may differ per rank, in rank order, concatenated.
  torch::Tensor gather_all(const torch::Tensor& t);
  // Waits for every rank; `timeout` overrides the group's (e.g. while rank 0 alone measures).
  void barrier(std::chrono::seconds timeout = std::chrono::seconds(0));

 private:
  void reduce(torch::Tensor t, const c10d::ReduceOp& op, const char* what);  // in place, naming `what` when a rank is lost
  [[noreturn]] void fail_lost(const std::string& what, const std::exception& e) const;

  int rank_ = 0, size_ = 1;
  std::string master_;
  std::chrono::seconds timeout_{300};
  std::unique_ptr<StoreServer> server_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroup> pg_;
  std::vector<c10::intrusive_ptr<c10d::Work>> pending_;  // start_sum's, until wait_sums
};

// Splits [0, n) into `size` contiguous parts; part `rank` is [begin, end).
std::pair<int64_t, int64_t> shard(int64_t n, int rank, int size);

}  // namespace sqz::dist
