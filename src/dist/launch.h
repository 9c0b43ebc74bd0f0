// `--nproc N`: runs one command as N local ranks of a group, as torchrun does on one host. Each
// rank is this executable again with --rank, --world-size and --master 127.0.0.1:PORT added;
// rank 0 keeps the terminal's output, the others print only their errors. The launcher waits for
// all of them: when one fails, the others stop on their own (their next collective fails, within
// the group's timeout); any still running `timeout_s` + 30 s later are terminated.
#pragma once
#include <string>
#include <vector>

namespace sqz::dist {

// `args`: the command line without argv[0] and without --nproc. Returns the exit status to exit
// with: 0 when every rank succeeded, else the first failed rank's (128 + signal when killed).
int launch_local_ranks(const std::vector<std::string>& args, int nproc, int timeout_s);

// `args` with `--nproc N` / `--nproc=N` removed.
std::vector<std::string> without_nproc(const std::vector<std::string>& args);

// How many ranks share this host (SQZ_LOCAL_WORLD_SIZE, set by the launcher; 1 otherwise): each
// rank's default thread count is the host's cores divided by it.
int local_world_size();

}  // namespace sqz::dist
