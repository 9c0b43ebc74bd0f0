#include "io/image_processor.h"

#include <algorithm>
#include <cmath>

#include "core/checked_size.h"
#include "core/error.h"
#include "core/format.h"

namespace sqz::io {

namespace {

// Pillow keeps 8-bit coefficients in fixed point with this many fraction bits (two bits of
// headroom for negative lobes and sums above one).
constexpr int kPrecisionBits = 32 - 8 - 2;

struct Filter {
  double (*weight)(double x);
  double support;
};

double box(double x) { return x > -0.5 && x <= 0.5 ? 1.0 : 0.0; }
double triangle(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}
double hamming(double x) {
  x = std::fabs(x);
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x *= M_PI;
  return std::sin(x) / x * (0.54f + 0.46f * std::cos(x));  // float constants, as Pillow writes them
}
double cubic(double x) {  // Keys' cubic convolution, a = -0.5
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}
double sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= M_PI;
  return std::sin(x) / x;
}
double lanczos(double x) { return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0; }

Filter filter_of(ResampleFilter f) {
  switch (f) {
    case ResampleFilter::kBox: return {box, 0.5};
    case ResampleFilter::kBilinear: return {triangle, 1.0};
    case ResampleFilter::kHamming: return {hamming, 1.0};
    case ResampleFilter::kBicubic: return {cubic, 2.0};
    case ResampleFilter::kLanczos: return {lanczos, 3.0};
  }
  return {triangle, 1.0};
}

// For each output pixel along one axis: the first input pixel it reads, how many, and their
// fixed-point weights (normalized to sum to one before rounding).
struct AxisTaps {
  std::vector<int64_t> first, count;
  std::vector<int32_t> weights;  // [out, ksize]
  int64_t ksize = 0;
};

AxisTaps axis_taps(int64_t in_size, int64_t out_size, const Filter& filter) {
  // Pillow computes the box edges in float and the scale in double.
  const double scale = static_cast<double>(static_cast<float>(in_size)) / static_cast<double>(out_size);
  const double filter_scale = std::max(scale, 1.0);
  const double support = filter.support * filter_scale, inverse = 1.0 / filter_scale;
  AxisTaps t;
  t.ksize = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  t.first.resize(out_size);
  t.count.resize(out_size);
  t.weights.assign(static_cast<size_t>(out_size * t.ksize), 0);
  std::vector<double> k(static_cast<size_t>(t.ksize));
  for (int64_t o = 0; o < out_size; ++o) {
    const double center = (static_cast<double>(o) + 0.5) * scale;
    const int64_t lo = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
    const int64_t hi = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), in_size);
    double total = 0.0;
    for (int64_t x = 0; x < hi - lo; ++x) {
      k[x] = filter.weight((static_cast<double>(x + lo) - center + 0.5) * inverse);
      total += k[x];
    }
    for (int64_t x = 0; x < hi - lo; ++x) {
      const double w = (total != 0.0 ? k[x] / total : k[x]) * static_cast<double>(1 << kPrecisionBits);
      t.weights[o * t.ksize + x] = static_cast<int32_t>(w < 0 ? w - 0.5 : w + 0.5);
    }
    t.first[o] = lo;
    t.count[o] = hi - lo;
  }
  return t;
}

// Element count of an image array; a config or array whose size cannot be held is refused.
int64_t checked_product(const std::vector<int64_t>& dims, const char* what) {
  std::vector<uint64_t> u(dims.begin(), dims.end());
  auto n = checked_byte_size(u, 1, uint64_t{1} << 30);
  if (!n) fail_invalid(what, ": ", to_text(dims.size()), " dimensions whose product exceeds 2^30 elements");
  return static_cast<int64_t>(*n);
}

uint8_t clip8(int32_t acc) {
  const int32_t v = acc >> kPrecisionBits;  // arithmetic shift: negative sums clip to 0
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// One pass along an axis of an [outer, size, inner] array (inner = channels for the horizontal
// pass, width * channels for the vertical one).
std::vector<uint8_t> resample_axis(const uint8_t* in, int64_t outer, int64_t size, int64_t inner, int64_t out_size,
                                   const AxisTaps& t) {
  std::vector<uint8_t> out(static_cast<size_t>(checked_product({outer, out_size, inner}, "resized image")));
  for (int64_t a = 0; a < outer; ++a)
    for (int64_t o = 0; o < out_size; ++o) {
      const int32_t* w = &t.weights[o * t.ksize];
      for (int64_t c = 0; c < inner; ++c) {
        int32_t acc = 1 << (kPrecisionBits - 1);
        for (int64_t x = 0; x < t.count[o]; ++x) acc += static_cast<int32_t>(in[(a * size + t.first[o] + x) * inner + c]) * w[x];
        out[(a * out_size + o) * inner + c] = clip8(acc);
      }
    }
  return out;
}

}  // namespace

std::vector<uint8_t> resize_image_u8(const uint8_t* image, int64_t height, int64_t width, int64_t channels, int64_t out_h,
                                     int64_t out_w, ResampleFilter filter) {
  const Filter f = filter_of(filter);
  std::vector<uint8_t> cur(image, image + checked_product({height, width, channels}, "image"));
  if (out_w != width) cur = resample_axis(cur.data(), height, width, channels, out_w, axis_taps(width, out_w, f));
  if (out_h != height) cur = resample_axis(cur.data(), 1, height, out_w * channels, out_h, axis_taps(height, out_h, f));
  return cur;
}

ImageProcessorConfig ImageProcessorConfig::from_model_dir(const fs::path& dir) {
  const fs::path file = dir / "preprocessor_config.json";
  if (!fs::exists(file))
    fail_not_found(file.string(), ": file not found (raw images need the model's image processor; or give pixel_values.npy)");
  return parse(JsonFields(read_json_object(file), file.string()));
}

ImageProcessorConfig ImageProcessorConfig::parse(const JsonFields& j) {
  const std::string type = j.has("image_processor_type") ? j.get_string("image_processor_type")
                                                          : j.get_string("feature_extractor_type", "ViTImageProcessor");
  if (type != "ViTImageProcessor" && type != "ViTFeatureExtractor")
    j.fail_field("image_processor_type", "ViTImageProcessor (the one sqz implements), got '" + type + "'");
  ImageProcessorConfig c;
  c.do_resize = j.get_bool("do_resize", true);
  c.do_rescale = j.get_bool("do_rescale", true);
  c.do_normalize = j.get_bool("do_normalize", true);
  if (j.has("size")) {
    const auto& s = j.value().at("size");
    if (s.is_number_integer()) {
      c.height = c.width = j.get_positive_int("size");
    } else {
      if (!s.is_object() || !s.contains("height") || !s.contains("width") || !s["height"].is_number_integer() ||
          !s["width"].is_number_integer() || s["height"].get<int64_t>() < 1 || s["width"].get<int64_t>() < 1)
        j.fail_field("size", "{\"height\": H, \"width\": W} with positive integers");
      c.height = s["height"].get<int64_t>();
      c.width = s["width"].get<int64_t>();
    }
  }
  const int64_t resample = j.get_int("resample", 2);
  if (resample < 1 || resample > 5) j.fail_field("resample", "a Pillow filter: 1 (LANCZOS), 2 (BILINEAR), 3 (BICUBIC), 4 (BOX) or 5 (HAMMING)");
  c.resample = static_cast<ResampleFilter>(resample);
  c.rescale_factor = j.get_float("rescale_factor", 1.0 / 255.0);
  for (auto [key, target] : {std::pair{"image_mean", &c.image_mean}, {"image_std", &c.image_std}}) {
    if (!j.has(key)) continue;
    const auto& v = j.value().at(key);
    target->clear();
    if (v.is_number()) target->assign(3, v.get<float>());
    else if (v.is_array() && !v.empty())
      for (const auto& x : v) {
        if (!x.is_number()) j.fail_field(key, "numbers, one per channel");
        target->push_back(x.get<float>());
      }
    else j.fail_field(key, "a number or a list with one number per channel");
  }
  if (c.image_mean.size() != c.image_std.size())
    j.fail_field("image_std", to_text(c.image_mean.size(), " numbers, as many as image_mean"));
  for (float s : c.image_std)
    if (s == 0.0f) j.fail_field("image_std", "non-zero numbers");
  return c;
}

std::vector<float> preprocess_images(const ImageProcessorConfig& c, const uint8_t* images, int64_t batch, int64_t height,
                                     int64_t width, int64_t channels, int64_t& out_h, int64_t& out_w) {
  if (c.do_normalize && channels != static_cast<int64_t>(c.image_mean.size()))
    fail_invalid("images have ", channels, " channels, the image processor normalizes ", c.image_mean.size());
  out_h = c.do_resize ? c.height : height;
  out_w = c.do_resize ? c.width : width;
  const int64_t in_size = checked_product({height, width, channels}, "image");
  const int64_t plane = checked_product({out_h, out_w}, "resized image");
  std::vector<float> out(static_cast<size_t>(checked_product({batch, channels, plane}, "pixel_values")));
  for (int64_t b = 0; b < batch; ++b) {
    const uint8_t* image = images + b * in_size;
    std::vector<uint8_t> resized;
    if (c.do_resize) resized = resize_image_u8(image, height, width, channels, out_h, out_w, c.resample);
    const uint8_t* px = c.do_resize ? resized.data() : image;
    for (int64_t i = 0; i < plane; ++i)
      for (int64_t ch = 0; ch < channels; ++ch) {
        // HF rescales in float64 and stores float32, then normalizes in float32.
        float v = c.do_rescale ? static_cast<float>(static_cast<double>(px[i * channels + ch]) * c.rescale_factor)
                               : static_cast<float>(px[i * channels + ch]);
        if (c.do_normalize) v = (v - c.image_mean[ch]) / c.image_std[ch];
        out[(b * channels + ch) * plane + i] = v;
      }
  }
  return out;
}

}  // namespace sqz::io
