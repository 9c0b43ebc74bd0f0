#include "nn/threads.h"

#include <dlfcn.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>

namespace sqz {

void set_torch_threads(int threads) {
  torch::set_num_threads(threads);
  // Looked up at run time: the BLAS behind libtorch is chosen by Debian's alternatives, and
  // another one simply lacks the symbol.
  using SetThreads = void (*)(int);
  static const auto openblas_set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (openblas_set) openblas_set(threads);
}

namespace {
// Set with the policy, so that a child can be given the default back (and the user's own setting,
// without it, is left alone).
constexpr const char* kPassiveBySqz = "SQZ_OMP_PASSIVE_BY_SQZ";
}  // namespace

void reexec_with_passive_openmp(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY")) return;
  setenv("OMP_WAIT_POLICY", "passive", 1);
  setenv(kPassiveBySqz, "1", 1);
  execv("/proc/self/exe", argv);  // returns only on failure
  unsetenv(kPassiveBySqz);
}

std::string openmp_wait_policy() {
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  return policy ? policy : "default";
}

bool openmp_passive_set_by_sqz() { return std::getenv(kPassiveBySqz) && openmp_wait_policy() == "passive"; }

std::vector<std::string> openmp_default_env() { return {"OMP_WAIT_POLICY", kPassiveBySqz}; }

}  // namespace sqz
