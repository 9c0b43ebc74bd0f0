#include "kernels/cpu_isa.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace sqz::kernels {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kRef: return "ref";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512Vnni: return "avx512vnni";
  }
  return "?";
}

Isa cpu_max_isa() {
  static const Isa isa = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512vnni"))
      return Isa::kAvx512Vnni;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::kAvx2;
    return Isa::kRef;
  }();
  return isa;
}

bool cpu_has_avx512vbmi() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vbmi") != 0;
  }();
  return has;
}

bool cpu_has_avx512bf16() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") != 0;
  }();
  return has;
}

namespace {

// CPUID leaf 7 EDX bit `bit` (AMX-BF16 22, AMX-TILE 24, AMX-INT8 25).
bool cpuid7_edx_bit(int bit) {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  return (edx >> bit) & 1;
}

// The tile unit may be used: kAvx512Vnni tier, AMX-TILE, SQZ_AMX not "0", and the OS granted
// the tile state to this process (asked once; the grant is process-wide).
bool amx_tiles_usable() {
  static const bool usable = [] {
    if (active_isa() != Isa::kAvx512Vnni) return false;
    const char* env = std::getenv("SQZ_AMX");
    if (env && std::strcmp(env, "0") == 0) return false;
    if (!cpuid7_edx_bit(24)) return false;
#ifdef SYS_arch_prctl
    // Linux hands out the 8 KiB tile state only on request: ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA.
    constexpr long kReqXcompPerm = 0x1023, kXtileData = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXtileData) == 0;
#else
    return false;
#endif
  }();
  return usable;
}

}  // namespace

bool amx_int8_enabled() {
  static const bool enabled = amx_tiles_usable() && cpuid7_edx_bit(25);
  return enabled;
}

bool amx_bf16_enabled() {
  static const bool enabled = amx_tiles_usable() && cpuid7_edx_bit(22) && cpu_has_avx512bf16();
  return enabled;
}

Isa active_isa() {
  static const Isa isa = [] {
    Isa best = cpu_max_isa();
    const char* env = std::getenv("SQZ_ISA");
    if (!env || !*env) {
      // Said once per process: a CPU without AVX2 + FMA gets correct but slow reference kernels.
      if (best == Isa::kRef) std::fprintf(stderr, "sqz: this CPU has no AVX2/FMA; kernels run their scalar reference versions\n");
      return best;
    }
    for (Isa want : {Isa::kRef, Isa::kAvx2, Isa::kAvx512Vnni})
      if (std::strcmp(env, isa_name(want)) == 0) {
        if (static_cast<int>(want) > static_cast<int>(best)) {
          std::fprintf(stderr, "sqz: SQZ_ISA=%s is not supported by this CPU; using %s\n", env, isa_name(best));
          return best;
        }
        return want;
      }
    std::fprintf(stderr, "sqz: unknown SQZ_ISA=%s (ref, avx2, avx512vnni); using %s\n", env, isa_name(best));
    return best;
  }();
  return isa;
}

std::vector<Isa> runnable_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kRef, Isa::kAvx2, Isa::kAvx512Vnni})
    if (static_cast<int>(isa) <= static_cast<int>(cpu_max_isa())) out.push_back(isa);
  return out;
}

}  // namespace sqz::kernels
