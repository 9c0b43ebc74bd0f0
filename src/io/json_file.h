// Reading typed fields from JSON files (config.json, tokenizer_config.json, ...) with errors that
// name the file and the field, and HF's defaults where a field is absent or null.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>

#include "core/error.h"
#include "core/fs.h"

namespace sqz::io {

using json = nlohmann::json;

json read_json_file(const fs::path& path);
// The same, refusing anything but an object at the top level (config and tokenizer files).
json read_json_object(const fs::path& path);
void write_json_file_atomic(const fs::path& path, const json& value);

class JsonFields {
 public:
  JsonFields(json value, std::string source) : value_(std::move(value)), source_(std::move(source)) {}
  static JsonFields from_file(const fs::path& path) { return JsonFields(read_json_file(path), path.string()); }

  const json& value() const { return value_; }
  json& value() { return value_; }
  const std::string& source() const { return source_; }
  bool has(const std::string& key) const { return value_.contains(key) && !value_[key].is_null(); }

  int64_t get_int(const std::string& key, std::optional<int64_t> fallback = std::nullopt) const;
  double get_float(const std::string& key, std::optional<double> fallback = std::nullopt) const;
  bool get_bool(const std::string& key, std::optional<bool> fallback = std::nullopt) const;
  std::string get_string(const std::string& key, std::optional<std::string> fallback = std::nullopt) const;
  std::optional<int64_t> get_optional_int(const std::string& key) const;
  // An integer in [1, 2^31) (sizes, counts); anything else fails naming the field.
  int64_t get_positive_int(const std::string& key, std::optional<int64_t> fallback = std::nullopt) const;
  // An integer in [lo, hi] (offsets, ids, counts that may be 0); anything else fails naming the field and the range.
  int64_t get_int_in(const std::string& key, int64_t lo, int64_t hi) const;

  [[noreturn]] void fail_field(const std::string& key, const std::string& expected) const;

 private:
  const json* find(const std::string& key) const;
  json value_;
  std::string source_;
};

}  // namespace sqz::io
