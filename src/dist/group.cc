// c10d's Gloo headers are compiled only with this defined (libtorch 1.13 was built with Gloo).
#define USE_C10D_GLOO 1
#include "dist/group.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <sstream>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#include "core/error.h"
#include "core/log.h"
#include "dist/store.h"

namespace sqz::dist {

namespace {

// The address this host reaches `master` from (a connected UDP socket sends nothing): Gloo binds
// its connections there, so on a multi-homed host it listens on that one interface only.
std::string local_address_towards(const Endpoint& master) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_DGRAM;
  if (::getaddrinfo(master.host.c_str(), std::to_string(master.port).c_str(), &hints, &res) != 0 || !res)
    fail_invalid("--master ", master.text(), ": cannot resolve '", master.host, "'");
  int fd = ::socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  const bool ok = fd >= 0 && ::connect(fd, res->ai_addr, res->ai_addrlen) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0;
  const int err = errno;
  if (fd >= 0) ::close(fd);
  ::freeaddrinfo(res);
  if (!ok) fail_invalid("--master ", master.text(), ": no route from this host (", std::strerror(err), ")");
  char text[INET6_ADDRSTRLEN] = {0};
  const void* addr = local.ss_family == AF_INET6 ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr)
                                                 : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&local)->sin_addr);
  ::inet_ntop(local.ss_family, addr, text, sizeof text);
  return text;
}

}  // namespace

void GroupSpec::validate() const {
  if (world_size < 1) fail_invalid("--world-size ", world_size, ": expected a number >= 1");
  if (rank < 0 || rank >= world_size) fail_invalid("--rank ", rank, ": expected 0..", world_size - 1, " for --world-size ", world_size);
  if (world_size > 1 && master.empty()) fail_invalid("--world-size ", world_size, " needs --master ADDR:PORT (rank 0's address)");
  if (timeout_s < 1) fail_invalid("--dist-timeout ", timeout_s, ": expected seconds >= 1");
  if (!master.empty()) parse_endpoint(master, "--master");
}

std::pair<int64_t, int64_t> shard(int64_t n, int rank, int size) {
  return {n * rank / size, n * (rank + 1) / size};
}

Group::Group(const GroupSpec& spec) : rank_(spec.rank), size_(spec.world_size), master_(spec.master), timeout_(spec.timeout_s) {
  spec.validate();
  if (size_ == 1) return;
  const Endpoint at = parse_endpoint(spec.master, "--master");
  if (rank_ == 0) server_ = std::make_unique<StoreServer>(at);
  store_ = c10::make_intrusive<StoreClient>(at, std::chrono::milliseconds(timeout_));
  auto options = c10d::ProcessGroupGloo::Options::create(std::chrono::milliseconds(timeout_));
  try {
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(local_address_towards(at)));
    pg_ = c10::make_intrusive<c10d::ProcessGroupGloo>(c10::make_intrusive<c10d::PrefixStore>("gloo", store_), rank_, size_, options);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail_lost("connecting the group", e);
  }
  log_info("rank ", rank_, " of ", size_, " joined the group at ", at.text());
}

Group::Group() = default;

Group::~Group() {
  pending_.clear();
  pg_.reset();
  store_.reset();
  server_.reset();
}

void Group::fail_lost(const std::string& what, const std::exception& e) const {
  std::string why = e.what();
  if (auto* c = dynamic_cast<const c10::Error*>(&e)) why = c->what_without_backtrace();
  if (why.size() > 300) why = why.substr(0, 300) + "...";
  fail(ErrorKind::kUnavailable, "rank ", rank_, " of ", size_, ": another rank stopped or stopped answering while ", what, " (timeout ",
               timeout_.count(), " s): ", why);
}

namespace {

// The first line where two multi-line values differ, each side named by its rank (whole values
// when they are one line each).
std::string first_difference(int rank_a, const std::string& a, int rank_b, const std::string& b) {
  std::istringstream in_a(a), in_b(b);
  std::string line_a, line_b;
  for (int line = 1;; ++line) {
    const bool more_a = static_cast<bool>(std::getline(in_a, line_a)), more_b = static_cast<bool>(std::getline(in_b, line_b));
    if (!more_a) line_a = "<end>";
    if (!more_b) line_b = "<end>";
    if (line_a != line_b || (!more_a && !more_b))
      return to_text("rank ", rank_a, ": '", line_a, "'; rank ", rank_b, ": '", line_b, "'");
  }
}

}  // namespace

void Group::agree(const std::string& what, const std::string& value) {
  if (size_ == 1) return;
  auto bytes = [](const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); };
  store_->set("agree/" + what + "/" + std::to_string(rank_), bytes(value));
  for (int r = 0; r < size_; ++r) {
    if (r == rank_ || (rank_ != 0 && r != 0)) continue;  // rank 0 checks everyone; the others check rank 0
    auto got = store_->get("agree/" + what + "/" + std::to_string(r));
    std::string theirs(got.begin(), got.end());
    if (theirs != value)
      fail_invalid("rank ", std::max(r, rank_), " runs another ", what, " than rank 0 (", first_difference(rank_, value, r, theirs),
                   "): every rank must run the same ", what);
  }
}

void Group::sum(std::vector<torch::Tensor> tensors, int64_t bucket_bytes) {
  if (size_ == 1 || tensors.empty()) return;
  // Buckets of one dtype, each one flat buffer: few large messages instead of one per tensor.
  std::vector<std::vector<torch::Tensor>> buckets;
  int64_t filled = 0;
  for (const auto& t : tensors) {
    const int64_t bytes = t.numel() * static_cast<int64_t>(t.element_size());
    if (buckets.empty() || filled + bytes > bucket_bytes || buckets.back().front().scalar_type() != t.scalar_type()) {
      buckets.emplace_back();
      filled = 0;
    }
    buckets.back().push_back(t);
    filled += bytes;
  }
  std::vector<torch::Tensor> flats;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  try {
    for (auto& b : buckets) {
      std::vector<torch::Tensor> views;
      for (auto& t : b) views.push_back(t.reshape({-1}));
      flats.push_back(torch::cat(views));
      std::vector<torch::Tensor> one{flats.back()};
      works.push_back(pg_->allreduce(one));  // asynchronous: the buckets travel while the next is packed
    }
    for (auto& w : works) w->wait();
  } catch (const std::exception& e) {
    fail_lost("summing " + std::to_string(tensors.size()) + " tensors", e);
  }
  for (size_t i = 0; i < buckets.size(); ++i) {
    int64_t at = 0;
    for (auto& t : buckets[i]) {
      t.copy_(flats[i].narrow(0, at, t.numel()).view_as(t));
      at += t.numel();
    }
  }
}

void Group::start_sum(torch::Tensor flat) {
  if (size_ == 1) return;
  try {
    std::vector<torch::Tensor> one{std::move(flat)};
    pending_.push_back(pg_->allreduce(one));
  } catch (const std::exception& e) {
    pending_.clear();
    fail_lost("starting a sum", e);
  }
}

void Group::wait_sums(const std::string& what) {
  auto pending = std::move(pending_);
  pending_.clear();
  try {
    for (auto& w : pending) w->wait();
  } catch (const std::exception& e) {
    fail_lost(what, e);
  }
}

void Group::mean(std::vector<torch::Tensor> tensors) {
  if (size_ == 1) return;
  sum(tensors);
  for (auto& t : tensors) t.div_(size_);
}

void Group::reduce(torch::Tensor t, const c10d::ReduceOp& op, const char* what) {
  if (size_ == 1) return;
  try {
    std::vector<torch::Tensor> one{t};
    c10d::AllreduceOptions o;
    o.reduceOp = op;
    pg_->allreduce(one, o)->wait();
  } catch (const std::exception& e) {
    fail_lost(what, e);
  }
}

void Group::max(torch::Tensor t) { reduce(t, c10d::ReduceOp::MAX, "taking a maximum"); }

void Group::min(torch::Tensor t) { reduce(t, c10d::ReduceOp::MIN, "taking a minimum"); }

void Group::broadcast_from_root(std::vector<torch::Tensor> tensors) {
  if (size_ == 1 || tensors.empty()) return;
  try {
    for (auto& t : tensors) {
      std::vector<torch::Tensor> one{t};
      pg_->broadcast(one)->wait();
    }
  } catch (const std::exception& e) {
    fail_lost("receiving rank 0's tensors", e);
  }
}

torch::Tensor Group::gather_all(const torch::Tensor& t) {
  if (size_ == 1) return t;
  try {
    auto lengths = [&] {
      std::vector<std::vector<torch::Tensor>> out(1);
      for (int r = 0; r < size_; ++r) out[0].push_back(torch::zeros({1}, torch::kLong));
      std::vector<torch::Tensor> in{torch::full({1}, t.numel(), torch::kLong)};
      pg_->allgather(out, in)->wait();
      return out[0];
    }();
    int64_t longest = 0;
    for (auto& l : lengths) longest = std::max(longest, l.item<int64_t>());
    std::vector<std::vector<torch::Tensor>> out(1);
    for (int r = 0; r < size_; ++r) out[0].push_back(torch::zeros({longest}, t.options()));
    std::vector<torch::Tensor> in{torch::cat({t.reshape({-1}), torch::zeros({longest - t.numel()}, t.options())})};
    pg_->allgather(out, in)->wait();
    std::vector<torch::Tensor> parts;
    for (int r = 0; r < size_; ++r) parts.push_back(out[0][r].narrow(0, 0, lengths[r].item<int64_t>()));
    return torch::cat(parts);
  } catch (const std::exception& e) {
    fail_lost("gathering results", e);
  }
}

void Group::barrier(std::chrono::seconds timeout) {
  if (size_ == 1) return;
  try {
    c10d::BarrierOptions o;
    o.timeout = timeout.count() > 0 ? std::chrono::milliseconds(timeout) : std::chrono::milliseconds(timeout_);
    pg_->barrier(o)->wait();
  } catch (const std::exception& e) {
    fail_lost("waiting for every rank", e);
  }
}

}  // namespace sqz::dist
