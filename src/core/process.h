// Running another program and waiting for it: what `sqz bench` needs to time its peers in their
// own processes (libtorch with another OpenMP setting, ONNX Runtime under Node.js).
#pragma once
#include <string>
#include <vector>

#include "core/fs.h"

namespace sqz {

// Runs argv[0] (looked up in PATH unless it holds a '/') with `extra_env` applied to this process's
// environment: "NAME=value" replaces any inherited NAME, a bare "NAME" removes it. stdout and
// stderr go to `log`; with an empty `log`, both go to this process's stderr (it shows progress).
// Returns the exit status, 128 + signal when killed, or -1 when it could not start.
int run_process(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env, const fs::path& log);

// The last `max_chars` characters of a log file ("" when unreadable), for error messages.
std::string log_tail(const fs::path& log, size_t max_chars = 400);

}  // namespace sqz
