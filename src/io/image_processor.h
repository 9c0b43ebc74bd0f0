// The image side of a vision model dir: HF's ViTImageProcessor as its preprocessor_config.json
// configures it. Raw uint8 RGB images are resized exactly as Pillow resizes an 8-bit image (HF
// hands uint8 arrays to PIL), then rescaled and normalized in HF's precision, channels first.
#pragma once
#include <cstdint>
#include <vector>

#include "core/fs.h"
#include "io/json_file.h"

namespace sqz::io {

// Pillow's resampling filters by their enum value (PIL.Image.Resampling); NEAREST is not offered.
enum class ResampleFilter { kLanczos = 1, kBilinear = 2, kBicubic = 3, kBox = 4, kHamming = 5 };

struct ImageProcessorConfig {
  bool do_resize = true, do_rescale = true, do_normalize = true;
  int64_t height = 224, width = 224;
  ResampleFilter resample = ResampleFilter::kBilinear;
  double rescale_factor = 1.0 / 255.0;
  std::vector<float> image_mean{0.5f, 0.5f, 0.5f}, image_std{0.5f, 0.5f, 0.5f};

  // Reads DIR/preprocessor_config.json; errors name the file and the field.
  static ImageProcessorConfig from_model_dir(const fs::path& dir);
  static ImageProcessorConfig parse(const JsonFields& j);
};

// Pillow's Image.resize of an 8-bit [H, W, C] image to [out_h, out_w, C]: separable passes
// (horizontal, then vertical) with fixed-point coefficients and rounding, as Resample.c does them.
std::vector<uint8_t> resize_image_u8(const uint8_t* image, int64_t height, int64_t width, int64_t channels, int64_t out_h,
                                     int64_t out_w, ResampleFilter filter);

// uint8 images [B, H, W, C] (C = the mean/std length) -> pixel_values [B, C, h, w] as float32.
// `out_h`/`out_w` receive the output size.
std::vector<float> preprocess_images(const ImageProcessorConfig& config, const uint8_t* images, int64_t batch, int64_t height,
                                     int64_t width, int64_t channels, int64_t& out_h, int64_t& out_w);

}  // namespace sqz::io
