#include "core/fs.h"

#include <unistd.h>

#include <fstream>
#include <random>

#include "core/error.h"

namespace sqz {

namespace {

fs::path temp_sibling(const fs::path& target) {
  std::random_device rd;
  auto name = to_text(".", target.filename().string(), ".tmp-", getpid(), "-", rd() % 1000000);
  return target.parent_path() / name;
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
  std::error_code ec;
  if (fs::exists(final_)) {
    // Move the old directory aside first so a failed rename never loses both copies.
    fs::path old = temp_sibling(final_);
    fs::rename(final_, old, ec);
    if (ec) fail_invalid(final_.string(), ": cannot replace existing directory: ", ec.message());
    fs::rename(staging_, final_, ec);
    if (ec) {
      fs::rename(old, final_);
      fail_invalid(final_.string(), ": cannot move finished output into place: ", ec.message());
    }
    fs::remove_all(old, ec);
  } else {
    fs::rename(staging_, final_, ec);
    if (ec) fail_invalid(final_.string(), ": cannot move finished output into place: ", ec.message());
  }
  committed_ = true;
}

}  // namespace sqz
