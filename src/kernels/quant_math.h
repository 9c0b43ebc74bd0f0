// The scalar quantization formulas of the runtime, torch-free: the kernels' activation
// quantization and the runtime's int8 packing of float weights. The libtorch fake-quant code
// (compress/quant/qmath.cc) computes its own on tensors, with the same rounding (half to even);
// an exported model carries its codes, so the runtime never recomputes them. Asymmetric uint8: q = clamp(round(x / scale) + zero, 0, 255),
// x ~= scale * (q - zero); the range always includes 0 so that zero padding stays exact.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace sqz::kernels {

struct AffineParams {
  float scale;
  int32_t zero;
};

inline AffineParams affine_u8_params(float lo, float hi) {
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  // A constant-zero row still needs a usable scale: any positive value represents it exactly.
  float scale = hi > lo ? (hi - lo) / 255.0f : 1.0f;
  int32_t zero = static_cast<int32_t>(std::nearbyint(-lo / scale));
  return {scale, std::clamp(zero, 0, 255)};
}

inline uint8_t quantize_u8(float x, AffineParams p) {
  float q = std::nearbyint(x / p.scale) + static_cast<float>(p.zero);
  return static_cast<uint8_t>(std::clamp(q, 0.0f, 255.0f));
}

// Symmetric int8 for weights: scale = max|w| / 127, q in [-127, 127].
inline float symmetric_s8_scale(float absmax) { return absmax > 0 ? absmax / 127.0f : 1.0f; }

inline int8_t quantize_s8(float w, float scale) {
  return static_cast<int8_t>(std::clamp(std::nearbyint(w / scale), -127.0f, 127.0f));
}

}  // namespace sqz::kernels
