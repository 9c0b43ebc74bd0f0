// CPU feature detection, done once; SQZ_ISA=ref|avx2|avx512vnni caps what kernels may use
// (tests force each path; a value the CPU cannot run falls back to the best it can).
#pragma once
#include <string>
#include <vector>

namespace sqz::kernels {

// kAvx512Vnni: AVX-512 F/BW/VL + VNNI (the fp32 kernels of this tier use only F).
enum class Isa { kRef = 0, kAvx2 = 1, kAvx512Vnni = 2 };

const char* isa_name(Isa isa);
// What this CPU supports, ignoring SQZ_ISA.
Isa cpu_max_isa();
// What kernels use by default: cpu_max_isa() capped by SQZ_ISA (read once).
Isa active_isa();
// AVX-512 VBMI (vpmultishiftqb, vpermb): Ice Lake / Zen 4 and later have it, Cascade Lake (VNNI)
// does not, so kernels that use it check it on top of kAvx512Vnni.
bool cpu_has_avx512vbmi();
// AVX-512 BF16 (vdpbf16ps, vcvtneps2bf16): Cooper Lake, Sapphire Rapids, Zen 4 and later; the
// bf16 GEMM uses it on top of kAvx512Vnni and its AVX2 version otherwise.
bool cpu_has_avx512bf16();
// AMX-INT8 tiles (Sapphire Rapids and later Xeons): the CPU has them, the OS lets this process
// use them (arch_prctl XTILEDATA permission, requested once) and SQZ_AMX is not "0". The int8
// GEMM then runs on tiles within the kAvx512Vnni tier.
bool amx_int8_enabled();
// AMX-BF16 tiles (tdpbf16ps), on the same conditions plus AVX-512 BF16: the bf16 GEMM runs on
// tiles within the kAvx512Vnni tier.
bool amx_bf16_enabled();

// Every ISA this CPU can run, reference first (for tests and benchmarks).
std::vector<Isa> runnable_isas();

}  // namespace sqz::kernels
