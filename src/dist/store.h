// The rendezvous key-value store the ranks of a group meet through, as a c10d::Store so Gloo's
// process group uses it directly. c10d's TCPStore (libtorch 1.13) listens on every interface of
// rank 0's host; this one binds only the address given in --master, so nothing listens beyond it.
// Rank 0 serves (one thread per connected rank); every rank, rank 0 included, is a client.
#pragma once
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

namespace sqz::dist {

// ADDR:PORT as given to --master: an IPv4 address, a host name, or [IPv6]; port in 1..65535.
struct Endpoint {
  std::string host;
  uint16_t port = 0;
  std::string text() const;
};
Endpoint parse_endpoint(const std::string& spec, const std::string& flag);

// Serves the store on exactly `at`; fails naming the address when this host does not have it or
// the port is taken.
class StoreServer {
 public:
  explicit StoreServer(const Endpoint& at);
  ~StoreServer();
  StoreServer(const StoreServer&) = delete;
  StoreServer& operator=(const StoreServer&) = delete;

 private:
  void accept_loop();
  void serve(int fd);

  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, std::vector<uint8_t>> data_;
  std::vector<int> client_fds_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

class StoreClient : public c10d::Store {
 public:
  // Connects, retrying until `timeout` (rank 0 may not listen yet).
  StoreClient(const Endpoint& at, std::chrono::milliseconds timeout);
  ~StoreClient() override;

  void set(const std::string& key, const std::vector<uint8_t>& value) override;
  std::vector<uint8_t> get(const std::string& key) override;  // waits for the key up to the timeout
  int64_t add(const std::string& key, int64_t value) override;
  bool deleteKey(const std::string& key) override;
  bool check(const std::vector<std::string>& keys) override;
  int64_t getNumKeys() override;
  void wait(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override;

 private:
  std::vector<uint8_t> call(uint8_t op, const std::string& key, const std::vector<uint8_t>& value, int64_t number);

  Endpoint at_;
  int fd_ = -1;
  std::mutex mutex_;
};

}  // namespace sqz::dist
