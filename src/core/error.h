// Typed errors: every failure a user can cause is one of these, with a message that names
// the file, the field or tensor, what was expected and what was found.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace sqz {

enum class ErrorKind { kInvalidArgument, kDataLoss, kNotFound, kUnimplemented, kUnavailable, kInternal };

const char* error_kind_name(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

// Concatenates anything streamable: to_text("tensor '", name, "' has ", n, " elements").
template <typename... Args>
std::string to_text(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

template <typename... Args>
[[noreturn]] void fail(ErrorKind kind, const Args&... args) {
  throw Error(kind, to_text(args...));
}

template <typename... Args>
[[noreturn]] void fail_invalid(const Args&... args) {
  fail(ErrorKind::kInvalidArgument, args...);
}

template <typename... Args>
[[noreturn]] void fail_data(const Args&... args) {
  fail(ErrorKind::kDataLoss, args...);
}

template <typename... Args>
[[noreturn]] void fail_not_found(const Args&... args) {
  fail(ErrorKind::kNotFound, args...);
}

template <typename... Args>
[[noreturn]] void fail_unimplemented(const Args&... args) {
  fail(ErrorKind::kUnimplemented, args...);
}

#define SQZ_CHECK(cond, ...)                                            \
  do {                                                                  \
    if (!(cond)) ::sqz::fail(::sqz::ErrorKind::kInternal, __VA_ARGS__); \
  } while (0)

}  // namespace sqz
