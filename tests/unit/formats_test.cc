// The torch-free format readers on bytes in memory: what the fuzz targets drive, checked on the
// hostile cases of issue 23 and on real files from the fixtures. Built by the sanitizer build too.
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/fs.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "io/json_file.h"
#include "io/npy_header.h"
#include "io/safetensors_header.h"
#include "train/recipe.h"
#include "unit/test_paths.h"

namespace sqz {
namespace {

std::string safetensors_bytes(const std::string& header_json, size_t data_bytes) {
  std::string out(8, '\0');
  const uint64_t n = header_json.size();
  std::memcpy(out.data(), &n, 8);
  return out + header_json + std::string(data_bytes, '\0');
}

std::string parse_error(const std::string& bytes) {
  return testing::error_of([&] {
    io::parse_safetensors_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "x.safetensors");
  });
}

TEST(SafetensorsHeader, ParsesAFixtureCheckpoint) {
  const std::string bytes = read_text_file(testing::fixtures_dir() / "bert-mlm" / "model" / "model.safetensors");
  auto h = io::parse_safetensors_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "bert");
  ASSERT_FALSE(h.entries.empty());
  uint64_t covered = 0;
  for (const auto& [name, e] : h.entries) covered += e.end - e.begin;
  EXPECT_EQ(covered, bytes.size() - h.data_offset);  // the fixture's tensors fill its buffer exactly
}

// 4194304 * 549755813889 * 8 wraps to exactly 32 MiB in 64 bits: the product must be exact.
TEST(SafetensorsHeader, AShapeWhoseByteCountWrapsIsRefused) {
  const std::string err = parse_error(
      safetensors_bytes(R"({"w":{"dtype":"F64","shape":[4194304,549755813889],"data_offsets":[0,33554432]}})", 33554432));
  EXPECT_NE(err.find("tensor 'w'"), std::string::npos) << err;
  EXPECT_NE(err.find("larger than 2^63 bytes"), std::string::npos) << err;
}

TEST(SafetensorsHeader, OverlapsAreFoundBeyondNeighbours) {
  const std::string err = parse_error(safetensors_bytes(
      R"({"a":{"dtype":"U8","shape":[100],"data_offsets":[0,100]},"b":{"dtype":"U8","shape":[10],"data_offsets":[10,20]},)"
      R"("c":{"dtype":"U8","shape":[10],"data_offsets":[30,40]}})", 100));
  EXPECT_NE(err.find("overlap"), std::string::npos) << err;
}

TEST(SafetensorsHeader, EachBrokenFieldIsNamed) {
  EXPECT_NE(parse_error("1234").find("truncated"), std::string::npos);
  EXPECT_NE(parse_error(safetensors_bytes("{\"w\":", 0)).find("not valid JSON"), std::string::npos);
  EXPECT_NE(parse_error(safetensors_bytes(R"({"w":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}})", 4)).find("unknown dtype 'F12'"),
            std::string::npos);
  EXPECT_NE(parse_error(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4)).find("shape entries"),
            std::string::npos);
  EXPECT_NE(parse_error(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4)).find("run past the end"),
            std::string::npos);
  EXPECT_NE(parse_error(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4)).find("needs 8"),
            std::string::npos);
}

TEST(NpyHeader, ReadsAFixtureAndRefusesWrongLengths) {
  const std::string bytes = read_text_file(testing::fixtures_dir() / "bert-mlm" / "inputs" / "input_ids.npy");
  auto h = io::parse_npy_header(bytes, "ids.npy");
  EXPECT_EQ(h.descr, "<i8");
  ASSERT_EQ(h.shape.size(), 2u);
  EXPECT_EQ(h.data_bytes, static_cast<uint64_t>(h.shape[0] * h.shape[1] * 8));
  const std::string err = testing::error_of([&] { io::parse_npy_header(bytes.substr(0, bytes.size() - 1), "ids.npy"); });
  EXPECT_NE(err.find("ids.npy: expected"), std::string::npos) << err;
  std::string huge = bytes;
  const auto at = huge.find("'shape': (");
  ASSERT_NE(at, std::string::npos);
  huge.replace(at, 10, "'shape': (9999999999999999,");  // the header keeps its length: more digits, fewer spaces
  EXPECT_NE(testing::error_of([&] { io::parse_npy_header(huge, "ids.npy"); }).find("ids.npy"), std::string::npos);
}

std::string gguf_header(uint64_t tensors, uint64_t kvs) {
  std::string out = "GGUF";
  const uint32_t version = 3;
  out.append(reinterpret_cast<const char*>(&version), 4);
  out.append(reinterpret_cast<const char*>(&tensors), 8);
  out.append(reinterpret_cast<const char*>(&kvs), 8);
  return out;
}

TEST(Gguf, CountsBeyondTheFileAreRefusedBeforeAllocating) {
  const std::string kv_err = testing::error_of([] { io::GgufFile(gguf_header(0, uint64_t{1} << 62), "m.gguf"); });
  EXPECT_NE(kv_err.find("m.gguf: metadata_kv_count"), std::string::npos) << kv_err;
  const std::string t_err = testing::error_of([] { io::GgufFile(gguf_header(uint64_t{1} << 62, 0), "m.gguf"); });
  EXPECT_NE(t_err.find("m.gguf: tensor_count"), std::string::npos) << t_err;
  const std::string magic = testing::error_of([] { io::GgufFile(std::string("GGML") + std::string(20, '\0'), "m.gguf"); });
  EXPECT_NE(magic.find("not a GGUF file"), std::string::npos) << magic;
  EXPECT_EQ(io::GgufFile(gguf_header(0, 0), "m.gguf").tensors().size(), 0u);
}

// ggml's block encoders against their own decoder: F16 rounds to nearest even (with subnormals
// and overflow), Q8_0 and Q4_K stay within half a step of their grids.
TEST(GgufBlocks, EncodersRoundTripWithinTheirGrids) {
  const auto f16 = *io::ggml_type(1), q8 = *io::ggml_type(8), q4k = *io::ggml_type(12);
  const std::vector<std::pair<float, float>> halves = {
      {0.0f, 0.0f}, {1.0f, 1.0f}, {-2.5f, -2.5f}, {65504.0f, 65504.0f}, {0.1f, 0.0999755859375f},
      {1.0f + 1.0f / 2048, 1.0f},                       // a tie rounds to the even mantissa
      {1.0f + 3.0f / 2048, 1.0f + 2.0f / 1024},         // the other tie rounds up to even
      {5.9604644775390625e-08f, 5.9604644775390625e-08f},  // 2^-24, the smallest subnormal
      {1e-8f, 0.0f}, {65520.0f, INFINITY}};
  for (const auto& [in, want] : halves) {
    uint8_t b[2];
    float back;
    io::quantize_row(f16, &in, b, 1);
    io::dequantize_row(f16, b, &back, 1);
    EXPECT_EQ(back, want) << in;
  }
  std::vector<float> x(512);
  uint64_t state = 12345;
  for (auto& v : x) {  // a fixed pseudo-random spread with one outlier per block
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    v = static_cast<float>(static_cast<int64_t>(state >> 40) % 2001 - 1000) / 1000.0f;
  }
  x[7] = 9.0f, x[300] = -7.0f;
  for (const auto& type : {q8, q4k}) {
    std::vector<uint8_t> blocks(x.size() / type.block_values * type.block_bytes);
    std::vector<float> back(x.size());
    io::quantize_row(type, x.data(), blocks.data(), static_cast<int64_t>(x.size()));
    io::dequantize_row(type, blocks.data(), back.data(), static_cast<int64_t>(x.size()));
    // Per sub-block of 32: its range, and (Q4_K) the super-block's largest scale and min, in
    // which units the sub-block's 6-bit scale and min are rounded.
    auto range = [&](size_t start, float* lo, float* hi) {
      *lo = 0.0f, *hi = x[start];
      for (size_t i = start; i < start + 32; ++i) *lo = std::min(*lo, x[i]), *hi = std::max(*hi, x[i]);
    };
    for (size_t start = 0; start < x.size(); start += 32) {
      float lo, hi, err = 0.0f;
      range(start, &lo, &hi);
      for (size_t i = start; i < start + 32; ++i) err = std::max(err, std::fabs(back[i] - x[i]));
      float bound = 0.5f * std::max(-lo, std::fabs(hi)) / 127.0f * 1.01f;  // Q8_0: half a step (+ fp16 d)
      if (type.id == 12) {
        float max_scale = 0.0f, max_min = 0.0f;
        for (size_t s = start / 256 * 256; s < start / 256 * 256 + 256; s += 32) {
          float l, h;
          range(s, &l, &h);
          max_scale = std::max(max_scale, (h - l) / 15.0f), max_min = std::max(max_min, -l);
        }
        // Half a step, plus 15 steps' worth of the scale's rounding and the min's rounding.
        bound = (0.5f * (hi - lo) / 15.0f + 15.0f * 0.5f * max_scale / 63.0f + 0.5f * max_min / 63.0f) * 1.01f;
      }
      EXPECT_LE(err, bound) << type.name << " block at " << start;
    }
  }
}

// A written file is what GgufFile reads: metadata of every type, tensors of every encoded type.
TEST(GgufWriter, ReadsBackWhatWasWritten) {
  testing::ScratchDir dir("gguf-writer");
  io::GgufWriter w;
  w.set("general.architecture", std::string("llama"));
  w.set("llama.block_count", uint32_t{2});
  w.set("llama.rope.freq_base", 10000.0f);
  w.set("tokenizer.ggml.add_bos_token", true);
  w.set("tokenizer.ggml.tokens", std::vector<std::string>{"a", "b", "ab"});
  w.set("tokenizer.ggml.token_type", std::vector<int32_t>{1, 1, 3});
  w.set("llama.block_count", uint32_t{3});  // set again: replaced, not duplicated
  std::vector<float> v(2 * 256);
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(static_cast<float>(i));
  for (uint32_t id : {0u, 1u, 8u, 12u}) w.add_tensor("t" + std::to_string(id), {256, 2}, *io::ggml_type(id), v.data());
  auto e = testing::error_of([&] { w.add_tensor("odd", {100, 2}, *io::ggml_type(12), v.data()); });
  EXPECT_NE(e.find("tensor 'odd' has rows of 100 values, which Q4_K blocks of 256 do not divide"), std::string::npos) << e;
  w.write(dir / "m.gguf");
  io::GgufFile g(dir / "m.gguf");
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.metadata().get_int("llama.block_count"), 3);
  EXPECT_EQ(g.metadata().get_string("general.architecture"), "llama");
  EXPECT_FLOAT_EQ(static_cast<float>(g.metadata().get_float("llama.rope.freq_base")), 10000.0f);
  EXPECT_TRUE(g.metadata().get_bool("tokenizer.ggml.add_bos_token"));
  EXPECT_EQ(g.metadata().value()["tokenizer.ggml.tokens"], io::json({"a", "b", "ab"}));
  EXPECT_EQ(g.metadata().value()["tokenizer.ggml.token_type"], io::json({1, 1, 3}));
  ASSERT_EQ(g.tensors().size(), 4u);
  for (const auto& t : g.tensors()) {
    EXPECT_EQ(t.dims, (std::vector<int64_t>{256, 2})) << t.name;
    EXPECT_EQ(t.offset % 32, 0u) << t.name;
    std::vector<float> back(v.size()), want(v.size());
    g.dequantize_into(t, back.data());
    std::vector<uint8_t> blocks(v.size() / t.type.block_values * t.type.block_bytes);
    io::quantize_row(t.type, v.data(), blocks.data(), static_cast<int64_t>(v.size()));
    io::dequantize_row(t.type, blocks.data(), want.data(), static_cast<int64_t>(v.size()));
    EXPECT_EQ(back, want) << t.name;
  }
}

TEST(TrainRecipe, OutOfRangeFieldsAreRefusedByName) {
  const std::string err = testing::error_of([] {
    train::TrainRecipe::from_yaml_text("model: m\ntask: spam\ndata: d\nout: o\nbatch_size: 0\n", "r.yaml", {});
  });
  EXPECT_NE(err.find("r.yaml"), std::string::npos) << err;
  EXPECT_NE(err.find("batch_size"), std::string::npos) << err;
}

// Sizes stay below 2^31 so that a loader's product of two cannot overflow int64 (UBSan found
// `4 * n_embd` with n_embd = INT64_MAX in GPT-2's default n_inner); ranged fields name their range.
TEST(JsonFields, CountsAndRangesAreRefusedByName) {
  const io::JsonFields f(io::json::parse(R"({"a": 2147483647, "b": 2147483648, "c": 0, "d": 7, "e": 1e30, "f": 3.5})"), "m.json");
  EXPECT_EQ(f.get_positive_int("a"), 2147483647);
  EXPECT_EQ(f.get_int_in("d", 0, 7), 7);
  const auto refusal = [&](auto read) { return testing::error_of([&] { read(); }); };
  EXPECT_NE(refusal([&] { f.get_positive_int("b"); }).find("m.json: field 'b' expected a positive integer below 2^31, got 2147483648"),
            std::string::npos);
  EXPECT_NE(refusal([&] { f.get_positive_int("c"); }).find("m.json: field 'c' expected a positive integer, got 0"), std::string::npos);
  EXPECT_NE(refusal([&] { f.get_int_in("d", 0, 6); }).find("m.json: field 'd' expected an integer from 0 to 6, got 7"), std::string::npos);
  EXPECT_NE(refusal([&] { f.get_int_in("e", 0, 6); }).find("field 'e' expected an integer within int64's range"), std::string::npos);
  EXPECT_NE(refusal([&] { f.get_int_in("f", 0, 6); }).find("field 'f' expected an integer, got 3.5"), std::string::npos);
}

}  // namespace
}  // namespace sqz
