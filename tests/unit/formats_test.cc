// The torch-free format readers on bytes in memory: what the fuzz targets drive, checked on the
// hostile cases of issue 23 and on real files from the fixtures. Built by the sanitizer build too.
#include <cstring>

#include "core/error.h"
#include "core/fs.h"
#include "io/gguf.h"
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

TEST(TrainRecipe, OutOfRangeFieldsAreRefusedByName) {
  const std::string err = testing::error_of([] {
    train::TrainRecipe::from_yaml_text("model: m\ntask: spam\ndata: d\nout: o\nbatch_size: 0\n", "r.yaml", {});
  });
  EXPECT_NE(err.find("r.yaml"), std::string::npos) << err;
  EXPECT_NE(err.find("batch_size"), std::string::npos) << err;
}

}  // namespace
}  // namespace sqz
