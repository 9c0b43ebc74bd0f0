#include "io/gguf_blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace sqz::io {

namespace {

// Every type ggml defines, with its block geometry, so that a file holding one we do not decode
// is still measured correctly and refused by name.
constexpr GgmlType kTypes[] = {
    {0, "F32", 1, 4, true},        {1, "F16", 1, 2, true},        {2, "Q4_0", 32, 18, true},
    {3, "Q4_1", 32, 20, true},     {6, "Q5_0", 32, 22, true},     {7, "Q5_1", 32, 24, true},
    {8, "Q8_0", 32, 34, true},     {9, "Q8_1", 32, 36, false},    {10, "Q2_K", 256, 84, false},
    {11, "Q3_K", 256, 110, false}, {12, "Q4_K", 256, 144, true},  {13, "Q5_K", 256, 176, true},
    {14, "Q6_K", 256, 210, true},  {15, "Q8_K", 256, 292, false}, {16, "IQ2_XXS", 256, 66, false},
    {17, "IQ2_XS", 256, 74, false}, {18, "IQ3_XXS", 256, 98, false}, {19, "IQ1_S", 256, 50, false},
    {20, "IQ4_NL", 32, 18, false}, {21, "IQ3_S", 256, 110, false}, {22, "IQ2_S", 256, 82, false},
    {23, "IQ4_XS", 256, 136, false}, {24, "I8", 1, 1, false},      {25, "I16", 1, 2, false},
    {26, "I32", 1, 4, false},      {27, "I64", 1, 8, false},      {28, "F64", 1, 8, false},
    {29, "IQ1_M", 256, 56, false}, {30, "BF16", 1, 2, true},      {34, "TQ1_0", 256, 54, false},
    {35, "TQ2_0", 256, 66, false},
};

float fp16_to_float(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ffu, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {  // subnormal: normalise the mantissa
    exp = 113;
    while (!(mant & 0x400u)) {
      mant <<= 1;
      --exp;
    }
    bits = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float read_fp16(const uint8_t* p);

// Round to nearest even, as F16C's vcvtps2ph (what ggml uses) does; overflow goes to infinity.
uint16_t float_to_fp16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));  // inf, nan
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds beyond the largest half
  if (abs < 0x38800000u) {  // subnormal half (or zero): scale into the 10-bit mantissa, round to even
    float a;
    std::memcpy(&a, &abs, 4);
    const float scaled = a * 16777216.0f;  // 2^24: one half-subnormal step becomes 1
    const uint32_t q = static_cast<uint32_t>(scaled);
    const float rest = scaled - static_cast<float>(q);
    const uint32_t r = q + ((rest > 0.5f || (rest == 0.5f && (q & 1u))) ? 1u : 0u);
    return static_cast<uint16_t>(sign | r);
  }
  const uint32_t mant = abs & 0x7fffffu;
  uint32_t h = ((abs >> 23) - 112) << 10 | (mant >> 13);
  const uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is correct
  return static_cast<uint16_t>(sign | h);
}

void write_fp16(uint8_t* p, float f) {
  const uint16_t h = float_to_fp16(f);
  std::memcpy(p, &h, 2);
}

void encode_q8_0(const float* x, uint8_t* b) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  write_fp16(b, d);
  for (int j = 0; j < 32; ++j) b[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::lround(x[j] * id)));
}

// Packs sub-block scales and mins (6 bits each) as k_scale_min reads them.
void pack_k_scales(const int* sc, const int* mn, uint8_t* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = static_cast<uint8_t>((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    s[j + 4] = static_cast<uint8_t>((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
    s[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0x0f) | ((mn[j + 4] & 0x0f) << 4));
  }
}

void encode_q4_k(const float* x, uint8_t* b) {
  float scale[8], min[8], max_scale = 0.0f, max_min = 0.0f;
  for (int s = 0; s < 8; ++s) {
    float lo = 0.0f, hi = x[32 * s];
    for (int l = 0; l < 32; ++l) lo = std::min(lo, x[32 * s + l]), hi = std::max(hi, x[32 * s + l]);
    scale[s] = std::max(hi - lo, 0.0f) / 15.0f;
    min[s] = -lo;
    max_scale = std::max(max_scale, scale[s]), max_min = std::max(max_min, min[s]);
  }
  write_fp16(b, max_scale / 63.0f);
  write_fp16(b + 2, max_min / 63.0f);
  const float d = read_fp16(b), dmin = read_fp16(b + 2);  // what the decoder will use
  int sc[8], mn[8];
  for (int s = 0; s < 8; ++s) {
    sc[s] = d > 0.0f ? std::clamp(static_cast<int>(std::lround(scale[s] / d)), 0, 63) : 0;
    mn[s] = dmin > 0.0f ? std::clamp(static_cast<int>(std::lround(min[s] / dmin)), 0, 63) : 0;
  }
  pack_k_scales(sc, mn, b + 4);
  uint8_t* qs = b + 16;
  for (int c = 0; c < 4; ++c)
    for (int half = 0; half < 2; ++half) {
      const int s = 2 * c + half;
      const float d1 = d * static_cast<float>(sc[s]), m1 = dmin * static_cast<float>(mn[s]);
      for (int l = 0; l < 32; ++l) {
        const int q = d1 > 0.0f ? std::clamp(static_cast<int>(std::lround((x[32 * s + l] + m1) / d1)), 0, 15) : 0;
        uint8_t& byte = qs[32 * c + l];
        byte = half == 0 ? static_cast<uint8_t>(q) : static_cast<uint8_t>(byte | (q << 4));
      }
    }
}

float read_fp16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_float(h);
}

// Q4_0 / Q4_1: low nibbles are values 0..15 of the block, high nibbles values 16..31;
// (q - offset) * d + m, in ggml's order of operations so that results are bit-identical.
void decode_q4(const uint8_t* qs, float d, float m, int offset, float* y) {
  for (int j = 0; j < 16; ++j) {
    y[j] = ((qs[j] & 0x0f) - offset) * d + m;
    y[j + 16] = ((qs[j] >> 4) - offset) * d + m;
  }
}

// Q5_0 / Q5_1: as Q4 with a fifth bit per value from the 32-bit qh.
void decode_q5(const uint8_t* qh_bytes, const uint8_t* qs, float d, float m, int offset, float* y) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  for (int j = 0; j < 16; ++j) {
    const int lo = (qs[j] & 0x0f) | (((qh >> j) << 4) & 0x10);
    const int hi = (qs[j] >> 4) | ((qh >> (j + 12)) & 0x10);
    y[j] = (lo - offset) * d + m;
    y[j + 16] = (hi - offset) * d + m;
  }
}

// The 6-bit scale and min of sub-block j of a Q4_K / Q5_K super-block, packed in 12 bytes.
void k_scale_min(int j, const uint8_t* s, int* scale, int* min) {
  if (j < 4) {
    *scale = s[j] & 63;
    *min = s[j + 4] & 63;
  } else {
    *scale = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
    *min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Q4_K (qh == nullptr) and Q5_K: 8 sub-blocks of 32 with their own scale and min.
void decode_q45_k(const uint8_t* b, const uint8_t* qh, const uint8_t* qs, float* y) {
  const float d = read_fp16(b), dmin = read_fp16(b + 2);
  const uint8_t* scales = b + 4;
  for (int j = 0, sub = 0; j < 256; j += 64, sub += 2, qs += 32) {
    int sc, mn;
    k_scale_min(sub, scales, &sc, &mn);
    const float d1 = d * sc, m1 = dmin * mn;
    k_scale_min(sub + 1, scales, &sc, &mn);
    const float d2 = d * sc, m2 = dmin * mn;
    const int bit = sub;  // Q5_K: the fifth bits of these two sub-blocks are bits `sub`, `sub + 1` of qh
    for (int l = 0; l < 32; ++l) {
      const int h1 = qh ? ((qh[l] >> bit) & 1) << 4 : 0, h2 = qh ? ((qh[l] >> (bit + 1)) & 1) << 4 : 0;
      y[j + l] = d1 * ((qs[l] & 0x0f) + h1) - m1;
      y[j + 32 + l] = d2 * ((qs[l] >> 4) + h2) - m2;
    }
  }
}

// Q6_K: 16 sub-blocks of 16 with int8 scales; 4 low bits in ql, 2 high bits in qh.
void decode_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = read_fp16(b + 208);
  for (int n = 0; n < 256; n += 128, ql += 64, qh += 32, sc += 8, y += 128)
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * sc[is] * q1;
      y[l + 32] = d * sc[is + 2] * q2;
      y[l + 64] = d * sc[is + 4] * q3;
      y[l + 96] = d * sc[is + 6] * q4;
    }
}

}  // namespace

std::optional<GgmlType> ggml_type(uint32_t id) {
  for (const auto& t : kTypes)
    if (t.id == id) return t;
  return std::nullopt;
}

std::string decodable_ggml_type_names() {
  std::string names;
  for (const auto& t : kTypes)
    if (t.decodable) names += (names.empty() ? "" : ", ") + std::string(t.name);
  return names;
}

bool encodable(const GgmlType& type) { return type.id == 0 || type.id == 1 || type.id == 8 || type.id == 12; }

void quantize_row(const GgmlType& type, const float* src, uint8_t* dst, int64_t n) {
  SQZ_CHECK(encodable(type) && n % type.block_values == 0, "quantize_row: ", type.name, " with ", n, " values");
  const int64_t blocks = n / type.block_values;
  for (int64_t i = 0; i < blocks; ++i) {
    const float* x = src + i * type.block_values;
    uint8_t* b = dst + i * type.block_bytes;
    switch (type.id) {
      case 0: std::memcpy(b, x, 4); break;
      case 1: write_fp16(b, *x); break;
      case 8: encode_q8_0(x, b); break;
      case 12: encode_q4_k(x, b); break;
      default: SQZ_CHECK(false, "quantize_row: no encoder for ", type.name);
    }
  }
}

void dequantize_row(const GgmlType& type, const uint8_t* src, float* dst, int64_t n) {
  SQZ_CHECK(type.decodable && n % type.block_values == 0, "dequantize_row: ", type.name, " with ", n, " values");
  const int64_t blocks = n / type.block_values;
  for (int64_t i = 0; i < blocks; ++i) {
    const uint8_t* b = src + i * type.block_bytes;
    float* y = dst + i * type.block_values;
    switch (type.id) {
      case 0: std::memcpy(y, b, 4); break;
      case 1: *y = read_fp16(b); break;
      case 30: {
        uint32_t bits = static_cast<uint32_t>(b[0] | (b[1] << 8)) << 16;
        std::memcpy(y, &bits, 4);
        break;
      }
      case 2: decode_q4(b + 2, read_fp16(b), 0.0f, 8, y); break;
      case 3: decode_q4(b + 4, read_fp16(b), read_fp16(b + 2), 0, y); break;
      case 6: decode_q5(b + 2, b + 6, read_fp16(b), 0.0f, 16, y); break;
      case 7: decode_q5(b + 4, b + 8, read_fp16(b), read_fp16(b + 2), 0, y); break;
      case 8: {
        const float d = read_fp16(b);
        for (int j = 0; j < 32; ++j) y[j] = d * static_cast<int8_t>(b[2 + j]);
        break;
      }
      case 12: decode_q45_k(b, nullptr, b + 16, y); break;
      case 13: decode_q45_k(b, b + 16, b + 48, y); break;
      case 14: decode_q6_k(b, y); break;
      default: SQZ_CHECK(false, "dequantize_row: no decoder for ", type.name);
    }
  }
}

}  // namespace sqz::io
