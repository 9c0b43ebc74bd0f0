#include "core/fs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <tuple>

#include "core/error.h"

namespace sqz {

namespace {

fs::path temp_sibling(const fs::path& target) {
  std::random_device rd;
  auto name = to_text(".", target.filename().string(), ".tmp-", getpid(), "-", rd() % 1000000);
  return target.parent_path() / name;
}

// Moves a finished directory to `to`, replacing what is there without ever losing both.
void move_into_place(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  if (fs::exists(to)) {
    // Move the old directory aside first so a failed rename never loses both copies.
    fs::path old = temp_sibling(to);
    fs::rename(to, old, ec);
    if (ec) fail_invalid(to.string(), ": cannot replace existing directory: ", ec.message());
    fs::rename(from, to, ec);
    if (ec) {
      fs::rename(old, to);
      fail_invalid(to.string(), ": cannot move finished output into place: ", ec.message());
    }
    fs::remove_all(old, ec);
  } else {
    fs::rename(from, to, ec);
    if (ec) fail_invalid(to.string(), ": cannot move finished output into place: ", ec.message());
  }
}

}  // namespace

std::string read_text_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_not_found(path.string(), ": cannot open file");
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

void write_file_atomic(const fs::path& path, std::string_view bytes) {
  fs::path tmp = temp_sibling(path);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail_invalid(path.string(), ": cannot create file");
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      std::error_code ec;
      fs::remove(tmp, ec);
      fail_invalid(path.string(), ": write failed (disk full?)");
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    fail_invalid(path.string(), ": cannot move finished file into place: ", ec.message());
  }
}

StagingDir::StagingDir(fs::path final_path, bool overwrite)
    : final_(std::move(final_path)), overwrite_(overwrite) {
  if (final_.filename().empty()) final_ = final_.parent_path();
  if (fs::exists(final_) && !overwrite_)
    fail_invalid(final_.string(), ": output directory already exists (pass --overwrite to replace it)");
  fs::path parent = final_.parent_path();
  if (!parent.empty()) fs::create_directories(parent);
  staging_ = temp_sibling(final_);
  fs::create_directories(staging_);
}

StagingDir::~StagingDir() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(staging_, ec);
  }
}

void StagingDir::commit() {
  move_into_place(staging_, final_);
  committed_ = true;
}

namespace {

// st_dev and st_ino of a path (0, 0 when it cannot be read).
std::pair<uint64_t, uint64_t> identity_of(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return {0, 0};
  return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

constexpr const char* kLockFile = ".lock";

}  // namespace

bool ResumableDir::lock() {
  lock_fd_ = ::open((work_ / kLockFile).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) fail_data((work_ / kLockFile).string(), ": cannot create the run's lock file");
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) == 0) return true;
  unlock();
  return false;
}

void ResumableDir::unlock() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
  lock_fd_ = -1;
}

TempDir::TempDir(const std::string& tag) {
  std::string pattern = (fs::temp_directory_path() / ("sqz-" + tag + "-XXXXXX")).string();
  if (!::mkdtemp(pattern.data())) fail_invalid(pattern, ": cannot create a temporary directory (", std::strerror(errno), ")");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

fs::path ResumableDir::work_path(fs::path final_path) {
  if (final_path.filename().empty()) final_path = final_path.parent_path();
  return final_path.parent_path() / (final_path.filename().string() + ".partial");
}

ResumableDir::ResumableDir(fs::path final_path, bool overwrite, bool resume) : final_(std::move(final_path)), overwrite_(overwrite) {
  if (final_.filename().empty()) final_ = final_.parent_path();
  if (fs::exists(final_) && !overwrite_)
    fail_invalid(final_.string(), ": output directory already exists (pass --overwrite to replace it)");
  work_ = work_path(final_);
  if (fs::exists(work_)) {
    if (!lock())
      fail_invalid(work_.string(), ": another sqz run is writing here (it holds ", kLockFile,
                   "); wait for it to finish or stop it, then --resume or --overwrite");
    if (overwrite_) {
      unlock();
      fs::remove_all(work_);
    } else if (resume) {
      resumed_ = true;
    } else {
      unlock();
      fail_invalid(work_.string(), ": an interrupted run's work directory is here; pass --resume to continue it or --overwrite to start over");
    }
  }
  if (!resumed_) {
    fs::create_directories(work_);
    if (!lock()) fail_invalid(work_.string(), ": another sqz run started writing here at the same time");
  }
  std::tie(dev_, ino_) = identity_of(work_);
}

ResumableDir::~ResumableDir() {
  if (!committed_ && !keep_ && identity_of(work_) == std::make_pair(dev_, ino_)) {
    std::error_code ec;
    fs::remove_all(work_, ec);
  }
  unlock();
}

void ResumableDir::commit() {
  std::error_code ec;
  fs::remove(work_ / kLockFile, ec);  // the lock stays held on the unlinked file until unlock()
  move_into_place(work_, final_);
  committed_ = true;
}

}  // namespace sqz
