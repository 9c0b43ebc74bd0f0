#include "dist/store.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "core/error.h"

namespace sqz::dist {

namespace {

// A request is: op, key, value, number; a reply is: status, value, number. Strings and byte
// values go as a 32-bit length and the bytes; the number as 64 bits.
enum Op : uint8_t { kSet = 1, kGet, kAdd, kDelete, kCheck, kNumKeys, kWait };
enum Status : uint8_t { kOk = 0, kTimedOut = 1 };
constexpr uint32_t kMaxField = 1u << 30;

bool write_all(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w, n -= static_cast<size_t>(w);
  }
  return true;
}

bool read_all(int fd, void* data, size_t n) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    ssize_t r = ::recv(fd, p, n, 0);
    if (r <= 0) return false;
    p += r, n -= static_cast<size_t>(r);
  }
  return true;
}

bool write_bytes(int fd, const std::vector<uint8_t>& v) {
  uint32_t n = static_cast<uint32_t>(v.size());
  return write_all(fd, &n, 4) && (n == 0 || write_all(fd, v.data(), n));
}

bool read_bytes(int fd, std::vector<uint8_t>& v) {
  uint32_t n = 0;
  if (!read_all(fd, &n, 4) || n > kMaxField) return false;
  v.resize(n);
  return n == 0 || read_all(fd, v.data(), n);
}

std::vector<uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

// Keys travel as one value, each followed by a zero byte.
std::vector<uint8_t> join_keys(const std::vector<std::string>& keys) {
  std::vector<uint8_t> out;
  for (const auto& k : keys) {
    out.insert(out.end(), k.begin(), k.end());
    out.push_back(0);
  }
  return out;
}

std::vector<std::string> split_keys(const std::vector<uint8_t>& v) {
  std::vector<std::string> keys(1);
  for (uint8_t c : v) {
    if (c == 0) keys.emplace_back();
    else keys.back().push_back(static_cast<char>(c));
  }
  keys.pop_back();
  return keys;
}

struct Resolved {
  sockaddr_storage addr{};
  socklen_t len = 0;
};

Resolved resolve(const Endpoint& at) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = ::getaddrinfo(at.host.c_str(), std::to_string(at.port).c_str(), &hints, &res);
  if (rc != 0 || !res) fail_invalid("--master ", at.text(), ": cannot resolve '", at.host, "' (", gai_strerror(rc), ")");
  Resolved r;
  std::memcpy(&r.addr, res->ai_addr, res->ai_addrlen);
  r.len = res->ai_addrlen;
  ::freeaddrinfo(res);
  return r;
}

}  // namespace

std::string Endpoint::text() const {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Endpoint parse_endpoint(const std::string& spec, const std::string& flag) {
  const size_t colon = spec.rfind(':');
  if (colon == std::string::npos || colon + 1 == spec.size())
    fail_invalid(flag, " '", spec, "': expected ADDR:PORT (e.g. 10.0.0.1:29500 or [::1]:29500)");
  Endpoint e;
  e.host = spec.substr(0, colon);
  if (e.host.size() >= 2 && e.host.front() == '[' && e.host.back() == ']') e.host = e.host.substr(1, e.host.size() - 2);
  if (e.host.empty()) fail_invalid(flag, " '", spec, "': the address is empty");
  const std::string port = spec.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) < 1 || std::stoi(port) > 65535)
    fail_invalid(flag, " '", spec, "': port '", port, "' is not in 1..65535");
  e.port = static_cast<uint16_t>(std::stoi(port));
  return e;
}

StoreServer::StoreServer(const Endpoint& at) {
  Resolved r = resolve(at);
  listen_fd_ = ::socket(r.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) fail_invalid("--master ", at.text(), ": cannot open a socket (", std::strerror(errno), ")");
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&r.addr), r.len) != 0 || ::listen(listen_fd_, 64) != 0) {
    const int err = errno;
    ::close(listen_fd_);
    fail_invalid("--master ", at.text(), ": rank 0 cannot listen there (", std::strerror(err),
                 err == EADDRNOTAVAIL ? "; the address must be one of rank 0's own" : "", ")");
  }
  acceptor_ = std::thread([this] { accept_loop(); });
}

StoreServer::~StoreServer() {
  stopping_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (int fd : client_fds_) ::shutdown(fd, SHUT_RDWR);
  }
  changed_.notify_all();
  acceptor_.join();
  for (auto& t : threads_) t.join();
  ::close(listen_fd_);
}

void StoreServer::accept_loop() {
  while (!stopping_) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping_ || (errno != EINTR && errno != ECONNABORTED)) return;
      continue;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    client_fds_.push_back(fd);
    threads_.emplace_back([this, fd] { serve(fd); });
  }
}

void StoreServer::serve(int fd) {
  uint8_t op = 0;
  std::vector<uint8_t> key_bytes, value;
  int64_t number = 0;
  while (!stopping_ && read_all(fd, &op, 1) && read_bytes(fd, key_bytes) && read_bytes(fd, value) && read_all(fd, &number, 8)) {
    const std::string key(key_bytes.begin(), key_bytes.end());
    uint8_t status = kOk;
    std::vector<uint8_t> reply;
    int64_t reply_number = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    auto wait_for = [&](const std::vector<std::string>& keys) {
      auto all_there = [&] {
        for (const auto& k : keys)
          if (!data_.count(k)) return stopping_.load();
        return true;
      };
      if (!changed_.wait_for(lock, std::chrono::milliseconds(number), all_there) || stopping_) status = kTimedOut;
    };
    switch (op) {
      case kSet: data_[key] = value, changed_.notify_all(); break;
      case kGet:
        wait_for({key});
        if (status == kOk) reply = data_[key];
        break;
      case kAdd: {
        auto& v = data_[key];
        int64_t now = v.empty() ? 0 : std::stoll(std::string(v.begin(), v.end()));
        reply_number = now + number;
        v = bytes_of(std::to_string(reply_number));
        changed_.notify_all();
        break;
      }
      case kDelete: reply_number = static_cast<int64_t>(data_.erase(key)); break;
      case kCheck: {
        reply_number = 1;
        for (const auto& k : split_keys(value)) reply_number &= data_.count(k) ? 1 : 0;
        break;
      }
      case kNumKeys: reply_number = static_cast<int64_t>(data_.size()); break;
      case kWait: wait_for(split_keys(value)); break;
      default: return;  // not a client of this store: drop the connection
    }
    lock.unlock();
    if (!write_all(fd, &status, 1) || !write_bytes(fd, reply) || !write_all(fd, &reply_number, 8)) break;
  }
}

StoreClient::StoreClient(const Endpoint& at, std::chrono::milliseconds timeout) : c10d::Store(timeout), at_(at) {
  Resolved r = resolve(at);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last_error;
  while (true) {
    fd_ = ::socket(r.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&r.addr), r.len) == 0) break;
    last_error = std::strerror(errno);
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (std::chrono::steady_clock::now() >= deadline)
      fail_invalid("--master ", at.text(), ": rank 0's store did not answer within ", timeout.count() / 1000, " s (", last_error, ")");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

StoreClient::~StoreClient() {
  if (fd_ >= 0) ::close(fd_);
}

std::vector<uint8_t> StoreClient::call(uint8_t op, const std::string& key, const std::vector<uint8_t>& value, int64_t number) {
  std::lock_guard<std::mutex> lock(mutex_);
  uint8_t status = 0;
  std::vector<uint8_t> reply;
  int64_t reply_number = 0;
  if (!write_all(fd_, &op, 1) || !write_bytes(fd_, bytes_of(key)) || !write_bytes(fd_, value) || !write_all(fd_, &number, 8) ||
      !read_all(fd_, &status, 1) || !read_bytes(fd_, reply) || !read_all(fd_, &reply_number, 8))
    fail_invalid("the group's store at ", at_.text(), " went away (rank 0 stopped)");
  if (status == kTimedOut)
    fail_invalid("waited ", number / 1000, " s for '", key.empty() ? std::string(value.begin(), value.end()) : key,
                 "' in the group's store at ", at_.text(), ": a rank did not arrive");
  std::vector<uint8_t> number_bytes(8);
  std::memcpy(number_bytes.data(), &reply_number, 8);
  return op == kGet ? reply : number_bytes;
}

namespace {
int64_t as_number(const std::vector<uint8_t>& v) {
  int64_t n = 0;
  std::memcpy(&n, v.data(), 8);
  return n;
}
}  // namespace

void StoreClient::set(const std::string& key, const std::vector<uint8_t>& value) { call(kSet, key, value, 0); }
std::vector<uint8_t> StoreClient::get(const std::string& key) { return call(kGet, key, {}, timeout_.count()); }
int64_t StoreClient::add(const std::string& key, int64_t value) { return as_number(call(kAdd, key, {}, value)); }
bool StoreClient::deleteKey(const std::string& key) { return as_number(call(kDelete, key, {}, 0)) > 0; }
bool StoreClient::check(const std::vector<std::string>& keys) { return as_number(call(kCheck, "", join_keys(keys), 0)) != 0; }
int64_t StoreClient::getNumKeys() { return as_number(call(kNumKeys, "", {}, 0)); }
void StoreClient::wait(const std::vector<std::string>& keys) { wait(keys, timeout_); }
void StoreClient::wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) {
  call(kWait, "", join_keys(keys), timeout.count());
}

}  // namespace sqz::dist
