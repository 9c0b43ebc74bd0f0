// ResumableDir (core/fs.h), the work directory of `sqz compress`: one run per output, and a run
// that ends without committing removes only the directory it made. run_process (core/process.h):
// the environment a child gets.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <random>

#include "core/fs.h"
#include "core/process.h"

namespace sqz {
namespace {

struct TempRoot {
  TempRoot() : path(fs::temp_directory_path() / ("sqz-fs-test-" + std::to_string(std::random_device{}()))) { fs::create_directories(path); }
  ~TempRoot() { fs::remove_all(path); }
  fs::path path;
};

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(ResumableDir, ASecondRunOnTheSameOutputIsRefusedByName) {
  TempRoot root;
  ResumableDir first(root.path / "out", false, false);
  for (bool resume : {false, true}) {
    const auto e = error_of([&] { ResumableDir second(root.path / "out", true, resume); });
    EXPECT_NE(e.find("another sqz run is writing here"), std::string::npos) << e;
  }
  EXPECT_TRUE(fs::is_directory(first.path()));  // the refused run touched nothing
}

// What happened by hand: an old run, stopped late, must not delete the directory a new run made
// at the same path after the old one's was removed.
TEST(ResumableDir, AnUncommittedRunRemovesOnlyTheDirectoryItMade) {
  TempRoot root;
  const fs::path work = root.path / "out.partial";
  {
    ResumableDir old_run(root.path / "out", false, false);
    fs::remove_all(work);  // the user clears the output
    ResumableDir new_run(root.path / "out", false, false);
    std::ofstream(work / "step") << "1";
    new_run.keep();  // say the new run is interrupted and keeps its state: it outlives the old one
  }
  EXPECT_TRUE(fs::exists(work / "step"));
  {
    ResumableDir resumed(root.path / "out", false, true);
    EXPECT_TRUE(resumed.resumed());
  }
  EXPECT_FALSE(fs::exists(work));  // its own directory, uncommitted: removed
}

TEST(ResumableDir, CommitMovesTheWorkWithoutItsLock) {
  TempRoot root;
  ResumableDir run(root.path / "out", false, false);
  std::ofstream(run.path() / "model") << "x";
  run.commit();
  EXPECT_TRUE(fs::exists(root.path / "out" / "model"));
  EXPECT_FALSE(fs::exists(root.path / "out" / ".lock"));
  EXPECT_FALSE(fs::exists(root.path / "out.partial"));
  ResumableDir again(root.path / "out2", false, false);  // and the lock does not outlive the run
}

// A bare NAME removes the variable, NAME=value replaces it, the rest is inherited (what gives
// `sqz compress`'s closing bench libgomp's default waiting back).
TEST(RunProcess, ChildEnvironmentReplacesRemovesAndInherits) {
  TempRoot root;
  setenv("SQZ_TEST_KEEP", "kept", 1);
  setenv("SQZ_TEST_DROP", "dropped", 1);
  setenv("SQZ_TEST_SET", "old", 1);
  const fs::path log = root.path / "env.log";
  ASSERT_EQ(run_process({"/usr/bin/env"}, {"SQZ_TEST_DROP", "SQZ_TEST_SET=new"}, log), 0);
  const std::string env = read_text_file(log);
  EXPECT_NE(env.find("SQZ_TEST_KEEP=kept\n"), std::string::npos) << env;
  EXPECT_NE(env.find("SQZ_TEST_SET=new\n"), std::string::npos) << env;
  EXPECT_EQ(env.find("SQZ_TEST_SET=old"), std::string::npos) << env;
  EXPECT_EQ(env.find("SQZ_TEST_DROP"), std::string::npos) << env;
  EXPECT_NE(env.find("PATH="), std::string::npos) << env;
  EXPECT_EQ(run_process({"/nonexistent/program"}, {}, log), -1);
  for (const char* name : {"SQZ_TEST_KEEP", "SQZ_TEST_DROP", "SQZ_TEST_SET"}) unsetenv(name);
}

}  // namespace
}  // namespace sqz
