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
}

}  // namespace
}  // namespace sqz
