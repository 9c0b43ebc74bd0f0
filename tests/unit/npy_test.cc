#include "io/npy.h"

#include <fstream>

#include "core/error.h"
#include "unit/test_util.h"

namespace sqz {
namespace {

TEST(Npy, RoundTrips) {
  testing::ScratchDir dir("npy");
  for (auto t : {torch::randn({2, 3, 4}), torch::randint(0, 100, {5}, torch::kLong), torch::randint(0, 9, {2, 2}, torch::kInt32),
                 torch::zeros({0}), torch::tensor(3.5f)}) {
    io::write_npy(dir / "a.npy", t);
    auto got = io::read_npy(dir / "a.npy");
    EXPECT_EQ(got.scalar_type(), t.scalar_type());
    EXPECT_TRUE(torch::equal(got, t)) << t.sizes();
  }
}

TEST(Npy, HeaderIsNumpyCompatible) {
  auto bytes = io::encode_npy(torch::zeros({2, 9}, torch::kLong));
  EXPECT_EQ(bytes.substr(0, 6), "\x93NUMPY");
  EXPECT_NE(bytes.find("'descr': '<i8', 'fortran_order': False, 'shape': (2, 9), }"), std::string::npos);
  EXPECT_EQ((bytes.size() - 2 * 9 * 8) % 64, 0u);
}

TEST(Npy, ReadsFixtureInputs) {
  auto ids = io::read_npy(testing::fixtures_dir() / "bert-mlm" / "inputs" / "input_ids.npy");
  EXPECT_EQ(ids.scalar_type(), torch::kLong);
  EXPECT_EQ(ids.dim(), 2);
}

TEST(Npy, RejectsBadFiles) {
  testing::ScratchDir dir("npy");
  std::ofstream(dir / "bad.npy") << "hello";
  EXPECT_THROW(io::read_npy(dir / "bad.npy"), Error);
  auto good = io::encode_npy(torch::zeros({4}));
  std::ofstream(dir / "short.npy", std::ios::binary) << good.substr(0, good.size() - 3);
  try {
    io::read_npy(dir / "short.npy");
    FAIL() << "truncated .npy accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("data bytes"), std::string::npos) << e.what();
  }
  // A header that declares terabytes (or a product beyond 2^64) over a few bytes of data is refused
  // before anything is allocated.
  auto with_shape = [&](const std::string& shape) {
    std::string bytes = io::encode_npy(torch::zeros({4}));
    const auto at = bytes.find("(4,)");
    bytes.replace(at, 4, shape);
    bytes[8] = static_cast<char>(static_cast<uint8_t>(bytes[8]) + shape.size() - 4);  // header length, little-endian low byte
    std::ofstream(dir / "huge.npy", std::ios::binary) << bytes;
    return testing::error_of([&] { io::read_npy(dir / "huge.npy"); });
  };
  auto tera = with_shape("(1000000,1000000)");
  EXPECT_NE(tera.find("expected 4000000000000 data bytes for shape (1000000,1000000)"), std::string::npos) << tera;
  auto wraps = with_shape("(4294967296,4294967296)");
  EXPECT_NE(wraps.find("expected more than 2^63 data bytes"), std::string::npos) << wraps;
  auto long_digits = with_shape("(99999999999999999999,)");
  EXPECT_NE(long_digits.find("has a dimension beyond int64"), std::string::npos) << long_digits;
}

}  // namespace
}  // namespace sqz
