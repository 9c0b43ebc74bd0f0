#include "io/json_file.h"

#include <cmath>

namespace sqz::io {

json read_json_file(const fs::path& path) {
  if (!fs::exists(path)) fail_not_found(path.string(), ": file not found");
  try {
    return json::parse(read_text_file(path));
  } catch (const json::exception& e) {  // parse_error, and out_of_range for numbers beyond a double
    fail_data(path.string(), ": not valid JSON (", e.what(), ")");
  }
}

json read_json_object(const fs::path& path) {
  json value = read_json_file(path);
  if (!value.is_object()) fail_data(path.string(), ": expected a JSON object at the top level, got ", value.type_name());
  return value;
}

void write_json_file_atomic(const fs::path& path, const json& value) { write_file_atomic(path, value.dump(2) + "\n"); }

const json* JsonFields::find(const std::string& key) const {
  if (!value_.is_object()) fail_data(source_, ": expected a JSON object at the top level");
  auto it = value_.find(key);
  if (it == value_.end() || it->is_null()) return nullptr;
  return &*it;
}

void JsonFields::fail_field(const std::string& key, const std::string& expected) const {
  const json* v = find(key);
  fail_invalid(source_, ": field '", key, "' expected ", expected, ", got ", v ? v->dump() : std::string("nothing"));
}

int64_t JsonFields::get_int(const std::string& key, std::optional<int64_t> fallback) const {
  const json* v = find(key);
  if (!v) {
    if (fallback) return *fallback;
    fail_field(key, "an integer");
  }
  // Exact or refused: an unsigned above INT64_MAX would wrap, and casting a float outside int64's
  // range (1e30) is undefined behaviour.
  if (v->is_number_unsigned()) {
    if (v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) fail_field(key, "an integer within int64's range");
    return static_cast<int64_t>(v->get<uint64_t>());
  }
  if (v->is_number_integer()) return v->get<int64_t>();
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) fail_field(key, "an integer within int64's range");
    if (d == std::trunc(d)) return static_cast<int64_t>(d);
  }
  fail_field(key, "an integer");
}

// Sizes and counts stay below 2^31 (no model a machine holds has a dimension near it), so that the
// products of two of them that the loaders compute cannot overflow int64.
int64_t JsonFields::get_positive_int(const std::string& key, std::optional<int64_t> fallback) const {
  const int64_t v = get_int(key, fallback);
  if (v <= 0) fail_field(key, "a positive integer");
  if (v > INT32_MAX) fail_field(key, "a positive integer below 2^31");
  return v;
}

int64_t JsonFields::get_int_in(const std::string& key, int64_t lo, int64_t hi) const {
  const int64_t v = get_int(key);
  if (v < lo || v > hi) fail_field(key, to_text("an integer from ", lo, " to ", hi));
  return v;
}

std::optional<int64_t> JsonFields::get_optional_int(const std::string& key) const {
  if (!find(key)) return std::nullopt;
  return get_int(key);
}

double JsonFields::get_float(const std::string& key, std::optional<double> fallback) const {
  const json* v = find(key);
  if (!v) {
    if (fallback) return *fallback;
    fail_field(key, "a number");
  }
  if (!v->is_number()) fail_field(key, "a number");
  return v->get<double>();
}

bool JsonFields::get_bool(const std::string& key, std::optional<bool> fallback) const {
  const json* v = find(key);
  if (!v) {
    if (fallback) return *fallback;
    fail_field(key, "true or false");
  }
  if (!v->is_boolean()) fail_field(key, "true or false");
  return v->get<bool>();
}

std::string JsonFields::get_string(const std::string& key, std::optional<std::string> fallback) const {
  const json* v = find(key);
  if (!v) {
    if (fallback) return *fallback;
    fail_field(key, "a string");
  }
  if (!v->is_string()) fail_field(key, "a string");
  return v->get<std::string>();
}

}  // namespace sqz::io
