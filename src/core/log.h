// Diagnostics go to stderr so that stdout stays machine-readable (JSON lines, ids, tables).
#pragma once
#include <iostream>

#include "core/error.h"

namespace sqz {

// A data-parallel rank other than 0 is quiet (no progress bars, no info lines: rank 0 speaks for
// the group) and names itself in its warnings and errors. Defined in core/progress.cc.
void set_rank_diagnostics(int rank);
bool diagnostics_quiet();
const std::string& diagnostics_prefix();  // "sqz: " or "sqz: rank 1: "

template <typename... Args>
void log_warning(const Args&... args) {
  std::cerr << diagnostics_prefix() << "warning: " << to_text(args...) << "\n";
}

template <typename... Args>
void log_info(const Args&... args) {
  if (!diagnostics_quiet()) std::cerr << diagnostics_prefix() << to_text(args...) << "\n";
}

}  // namespace sqz
