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

}  // namespace sqz
