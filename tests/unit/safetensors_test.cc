#include "io/safetensors.h"

#include <fstream>

#include "core/error.h"
#include "unit/test_util.h"

namespace sqz {
namespace {

void write_raw(const fs::path& p, const std::string& header, const std::string& data, std::optional<uint64_t> len = {}) {
  std::ofstream out(p, std::ios::binary);
  uint64_t n = len.value_or(header.size());
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header << data;
}

std::string error_of(const fs::path& p) {
  try {
    io::SafetensorsFile f(p);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Safetensors, RoundTripsEveryDtype) {
  testing::ScratchDir dir("st");
  std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"f32", torch::randn({3, 4})},
      {"f16", torch::randn({5}).to(torch::kFloat16)},
      {"bf16", torch::randn({2, 2}).to(torch::kBFloat16)},
      {"i8", torch::randint(-128, 127, {7}, torch::kInt8)},
      {"u8", torch::randint(0, 255, {7}, torch::kUInt8)},
      {"i16", torch::randint(-1000, 1000, {3}, torch::kInt16)},
      {"i32", torch::randint(-1000, 1000, {3}, torch::kInt32)},
      {"i64", torch::randint(-1000, 1000, {2, 3}, torch::kLong)},
      {"bool", torch::randint(0, 2, {4}).to(torch::kBool)},
      {"empty", torch::zeros({0, 3})},
  };
  io::write_safetensors(dir / "m.safetensors", tensors);
  io::SafetensorsFile f(dir / "m.safetensors");
  EXPECT_EQ(f.metadata().at("format"), "pt");
  for (const auto& [name, t] : tensors) {
    auto got = f.tensor(name);
    EXPECT_EQ(got.scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(got, t)) << name;
  }
}

TEST(Safetensors, TensorsOutliveTheFileObject) {
  testing::ScratchDir dir("st");
  auto t = torch::arange(10, torch::kFloat32);
  io::write_safetensors(dir / "m.safetensors", {{"x", t}});
  torch::Tensor got;
  {
    io::SafetensorsFile f(dir / "m.safetensors");
    got = f.tensor("x");
  }
  got.add_(1);  // private mapping: writable, file untouched
  EXPECT_TRUE(torch::equal(got, t + 1));
  EXPECT_TRUE(torch::equal(io::SafetensorsFile(dir / "m.safetensors").tensor("x"), t));
}

TEST(Safetensors, RejectsHostileFiles) {
  testing::ScratchDir dir("st");
  auto p = dir / "bad.safetensors";
  std::ofstream(p, std::ios::binary) << "abc";
  EXPECT_NE(error_of(p).find("truncated"), std::string::npos) << error_of(p);

  write_raw(p, "{}", "", 1000);
  EXPECT_NE(error_of(p).find("header length 1000"), std::string::npos) << error_of(p);

  write_raw(p, "{not json", "");
  EXPECT_NE(error_of(p).find("not valid JSON"), std::string::npos) << error_of(p);

  write_raw(p, R"({"w":{"dtype":"F7","shape":[1],"data_offsets":[0,4]}})", "abcd");
  EXPECT_NE(error_of(p).find("unknown dtype 'F7'"), std::string::npos) << error_of(p);

  write_raw(p, R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "abcd");
  EXPECT_NE(error_of(p).find("run past the end"), std::string::npos) << error_of(p);

  write_raw(p, R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", "abcdefgh");
  EXPECT_NE(error_of(p).find("needs 12"), std::string::npos) << error_of(p);

  write_raw(p, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
            "abcdefghijkl");
  EXPECT_NE(error_of(p).find("overlap"), std::string::npos) << error_of(p);

  write_raw(p, R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "abcd");
  EXPECT_NE(error_of(p).find("non-negative"), std::string::npos) << error_of(p);

  // A shape whose byte count wraps modulo 2^64 to exactly the bytes present: 4194304 x (2^39 + 1)
  // F64 elements are 2^64 + 2^25 bytes, which wrapped to the 32 MiB this tensor holds.
  write_raw(p, R"({"w":{"dtype":"F64","shape":[4194304,549755813889],"data_offsets":[0,33554432]}})", std::string(33554432, '\0'));
  EXPECT_NE(error_of(p).find("larger than 2^63 bytes"), std::string::npos) << error_of(p);

  // A dimension libtorch cannot hold, hidden behind a zero one (0 bytes): refused, not clamped.
  write_raw(p, R"({"w":{"dtype":"U8","shape":[0,9223372036854775809],"data_offsets":[0,0]}})", "");
  EXPECT_NE(error_of(p).find("has a dimension beyond 2^63"), std::string::npos) << error_of(p);

  // An overlap that is not between neighbours in offset order: the empty tensor e sits between a
  // and c, and a reaches past c's start.
  write_raw(p,
            R"({"a":{"dtype":"U8","shape":[100],"data_offsets":[0,100]},"e":{"dtype":"U8","shape":[0],"data_offsets":[50,50]},)"
            R"("c":{"dtype":"U8","shape":[10],"data_offsets":[60,70]}})",
            std::string(100, 'x'));
  EXPECT_NE(error_of(p).find("tensors 'a' and 'c' overlap"), std::string::npos) << error_of(p);

  EXPECT_NE(error_of(dir / "absent.safetensors").find("not found"), std::string::npos);
}

TEST(Safetensors, ErrorsNameFileAndTensor) {
  testing::ScratchDir dir("st");
  auto p = dir / "named.safetensors";
  write_raw(p, R"({"encoder.w":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}})", "abcdefgh");
  std::string e = error_of(p);
  EXPECT_NE(e.find(p.string()), std::string::npos) << e;
  EXPECT_NE(e.find("encoder.w"), std::string::npos) << e;
}

TEST(Safetensors, ShardedCheckpointsViaIndex) {
  testing::ScratchDir dir("st");
  io::write_safetensors(dir / "model-00001-of-00002.safetensors", {{"a", torch::ones({2})}});
  io::write_safetensors(dir / "model-00002-of-00002.safetensors", {{"b", torch::zeros({3})}});
  std::ofstream(dir / "model.safetensors.index.json")
      << R"({"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}})";
  io::Checkpoint ckpt(dir.path());
  EXPECT_EQ(ckpt.names().size(), 2u);
  EXPECT_TRUE(torch::equal(ckpt.tensor("b"), torch::zeros({3})));
  std::ofstream(dir / "model.safetensors.index.json") << R"({"weight_map":{"c":"model-00001-of-00002.safetensors"}})";
  EXPECT_THROW(io::Checkpoint{dir.path()}, Error);
}

}  // namespace
}  // namespace sqz
