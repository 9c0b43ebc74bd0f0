#include "core/error.h"

namespace sqz {

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidArgument: return "invalid argument";
    case ErrorKind::kDataLoss: return "bad data";
    case ErrorKind::kNotFound: return "not found";
    case ErrorKind::kUnimplemented: return "unsupported";
    case ErrorKind::kUnavailable: return "peer lost";
    case ErrorKind::kInternal: return "internal error";
  }
  return "error";
}

}  // namespace sqz
