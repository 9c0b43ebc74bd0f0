// Diagnostics go to stderr so that stdout stays machine-readable (JSON lines, ids, tables).
#pragma once
#include <iostream>

#include "core/error.h"

namespace sqz {

template <typename... Args>
void log_warning(const Args&... args) {
  std::cerr << "sqz: warning: " << to_text(args...) << "\n";
}

template <typename... Args>
void log_info(const Args&... args) {
  std::cerr << "sqz: " << to_text(args...) << "\n";
}

}  // namespace sqz
