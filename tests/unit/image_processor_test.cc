// The ViT image processor: Pillow's fixed-point resize on cases worked by hand, HF's rescale and
// normalize, and each refused preprocessor_config.json field named. (Exactness against the real
// ViTImageProcessor and Pillow over random images is tests/reference/live_parity_test.py.)
#include <gtest/gtest.h>

#include <algorithm>

#include "core/error.h"
#include "io/image_processor.h"

namespace sqz {
namespace {

using io::ResampleFilter;

TEST(ImageResize, TwoByTwoToOneAveragesWithPillowRounding) {
  // Downscaling by 2 widens the triangle to 2 pixels: both inputs weigh 1/2 on each axis. Rows
  // first: (10 + 13) / 2 = 11.5 -> 12, (20 + 31) / 2 = 25.5 -> 26; then (12 + 26) / 2 = 19.
  const uint8_t image[] = {10, 13, 20, 31};
  auto out = io::resize_image_u8(image, 2, 2, 1, 1, 1, ResampleFilter::kBilinear);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], 19);
}

TEST(ImageResize, SameSizeIsACopyAndFlatImagesStayFlat) {
  std::vector<uint8_t> image(5 * 7 * 3);
  for (size_t i = 0; i < image.size(); ++i) image[i] = static_cast<uint8_t>(i * 37);
  EXPECT_EQ(io::resize_image_u8(image.data(), 5, 7, 3, 5, 7, ResampleFilter::kBicubic), image);
  std::vector<uint8_t> flat(9 * 4 * 3, 201);
  for (auto f : {ResampleFilter::kBilinear, ResampleFilter::kBicubic, ResampleFilter::kLanczos, ResampleFilter::kBox,
                 ResampleFilter::kHamming}) {
    auto up = io::resize_image_u8(flat.data(), 9, 4, 3, 13, 11, f);
    ASSERT_EQ(up.size(), 13u * 11u * 3u);
    for (uint8_t v : up) ASSERT_EQ(v, 201) << static_cast<int>(f);
  }
}

TEST(ImageResize, BicubicOvershootIsClippedToTheByteRange) {
  // A step edge upscaled with the cubic's negative lobes rings past 0 and 255; Pillow clips.
  const uint8_t edge[] = {0, 0, 255, 255};
  auto out = io::resize_image_u8(edge, 1, 4, 1, 1, 16, ResampleFilter::kBicubic);
  EXPECT_EQ(out.front(), 0);
  EXPECT_EQ(out.back(), 255);
  EXPECT_TRUE(std::is_sorted(out.begin(), out.end()));
}

TEST(ImagePreprocess, RescalesNormalizesAndMovesChannelsFirst) {
  io::ImageProcessorConfig c;
  c.do_resize = false;
  const uint8_t image[] = {255, 0, 51, 0, 255, 102};  // [1, 1, 2, 3]
  int64_t h = 0, w = 0;
  auto px = io::preprocess_images(c, image, 1, 1, 2, 3, h, w);
  EXPECT_EQ(h, 1);
  EXPECT_EQ(w, 2);
  const std::vector<float> want = {1.0f, -1.0f, -1.0f, 1.0f, (0.2f - 0.5f) / 0.5f, (0.4f - 0.5f) / 0.5f};
  ASSERT_EQ(px.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_FLOAT_EQ(px[i], want[i]) << i;
  auto e = [&] {
    try {
      io::preprocess_images(c, image, 1, 1, 3, 2, h, w);
    } catch (const Error& err) {
      return std::string(err.what());
    }
    return std::string();
  }();
  EXPECT_NE(e.find("images have 2 channels, the image processor normalizes 3"), std::string::npos) << e;
}

TEST(ImageProcessorConfig, ReadsHfFieldsAndNamesBadOnes) {
  auto parse = [](io::json j) { return io::ImageProcessorConfig::parse(io::JsonFields(std::move(j), "preprocessor_config.json")); };
  auto c = parse({{"image_processor_type", "ViTImageProcessor"}, {"size", {{"height", 24}, {"width", 20}}}, {"resample", 3},
                  {"image_mean", {0.485, 0.456, 0.406}}, {"image_std", 0.25}});
  EXPECT_EQ(c.height, 24);
  EXPECT_EQ(c.width, 20);
  EXPECT_EQ(c.resample, ResampleFilter::kBicubic);
  EXPECT_FLOAT_EQ(c.image_mean[2], 0.406f);
  EXPECT_EQ(c.image_std, std::vector<float>(3, 0.25f));
  EXPECT_EQ(parse({{"feature_extractor_type", "ViTFeatureExtractor"}, {"size", 384}}).width, 384);
  auto error = [&](io::json j) {
    try {
      parse(std::move(j));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error({{"image_processor_type", "ConvNextImageProcessor"}}).find("image_processor_type"), std::string::npos);
  EXPECT_NE(error({{"resample", 0}}).find("resample"), std::string::npos);
  EXPECT_NE(error({{"size", {{"height", 0}, {"width", 4}}}}).find("size"), std::string::npos);
  EXPECT_NE(error({{"image_mean", {0.5, 0.5}}}).find("image_std"), std::string::npos);
  EXPECT_NE(error({{"image_std", {0.5, 0.0, 0.5}}}).find("non-zero"), std::string::npos);
  // A size whose pixels cannot be held is refused when images are resized to it, before allocating.
  auto huge = parse({{"size", {{"height", 1 << 20}, {"width", 1 << 20}}}});
  const uint8_t pixel[] = {1, 2, 3};
  int64_t h = 0, w = 0;
  std::string e;
  try {
    io::preprocess_images(huge, pixel, 1, 1, 1, 3, h, w);
  } catch (const Error& err) {
    e = err.what();
  }
  EXPECT_NE(e.find("exceeds 2^30 elements"), std::string::npos) << e;
}

}  // namespace
}  // namespace sqz
