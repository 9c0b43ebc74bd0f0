// Shared by the AMX kernels (int8, bf16) and the peak loops; include only from code compiled for
// amx-tile: the tile configuration.
#pragma once
#include <cstdint>

namespace sqz::kernels::amx {

// ldtilecfg's 64-byte operand, palette 1.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Tiles 0..count-1 as 16 rows x 64 bytes. ldtilecfg in inline assembly with the configuration as
// a memory operand: GCC 12's _tile_loadconfig does not tell the compiler it reads memory, and
// the stores that fill the configuration were dropped as dead.
inline void configure_16x64_tiles(int count) {
  TileConfig cfg;
  for (int t = 0; t < count; ++t) {
    cfg.rows[t] = 16;
    cfg.colsb[t] = 64;
  }
  asm volatile("ldtilecfg %0" : : "m"(cfg));
}

}  // namespace sqz::kernels::amx
