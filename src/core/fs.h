// File helpers that never leave partial output behind: everything is written to a temporary
// sibling first and renamed into place only when complete.
#pragma once
#include <filesystem>
#include <string>
#include <string_view>

namespace sqz {

namespace fs = std::filesystem;

std::string read_text_file(const fs::path& path);
void write_file_atomic(const fs::path& path, std::string_view bytes);

// A directory that appears at `final_path` only when commit() is called; destroyed otherwise.
// Refuses an existing `final_path` unless `overwrite` is set (then it is replaced on commit).
class StagingDir {
 public:
  StagingDir(fs::path final_path, bool overwrite);
  ~StagingDir();
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;

  const fs::path& path() const { return staging_; }
  const fs::path& final_path() const { return final_; }
  void commit();

 private:
  fs::path final_;
  fs::path staging_;
  bool overwrite_;
  bool committed_ = false;
};

// A private directory under the system's temp dir (mkdtemp), removed with its contents at
// destruction: scratch space a process needs for its own run only.
class TempDir {
 public:
  explicit TempDir(const std::string& tag);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// The work directory of a long job that can continue after it was killed: `final_path` with
// ".partial" appended, next to it. commit() moves it to `final_path`; destruction without commit
// removes it unless keep() was called (a SIGKILL leaves it, which is the point).
// An existing .partial is continued when `resume`, removed when `overwrite`, refused otherwise.
class ResumableDir {
 public:
  // Holds an exclusive lock (OUT.partial/.lock) for its life: a second run on the same OUT is
  // refused by name, not left to delete the first one's work.
  ResumableDir(fs::path final_path, bool overwrite, bool resume);
  ~ResumableDir();
  ResumableDir(const ResumableDir&) = delete;
  ResumableDir& operator=(const ResumableDir&) = delete;

  const fs::path& path() const { return work_; }
  // Where the work directory of `final_path` is, for processes that read it without owning it.
  static fs::path work_path(fs::path final_path);
  bool resumed() const { return resumed_; }  // an earlier run's directory is being continued
  void keep() { keep_ = true; }
  void commit();

 private:
  // Locks work_/.lock (creating it); false when another process holds it.
  bool lock();
  void unlock();
  fs::path final_, work_;
  bool overwrite_, resumed_ = false, keep_ = false, committed_ = false;
  int lock_fd_ = -1;
  // The work directory this object created or continued: the destructor removes only that one,
  // never a directory another run has since made at the same path.
  uint64_t dev_ = 0, ino_ = 0;
};

}  // namespace sqz
