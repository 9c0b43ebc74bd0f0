// Code-point level helpers over utf8proc, with the character classes HF's tokenizers use.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace sqz::io::unicode {

// Invalid bytes decode to U+FFFD (one per maximal invalid subpart, as Python's errors="replace").
std::vector<char32_t> decode_utf8(const std::string& text);
std::string encode_utf8(char32_t cp);
std::string encode_utf8(const std::vector<char32_t>& cps);
std::string replace_invalid_utf8(const std::string& bytes);
// RFC 3629 UTF-8 (no overlong forms, surrogates or code points beyond U+10FFFF): what JSON output
// requires of every string.
bool is_valid_utf8(const std::string& bytes);

bool is_whitespace(char32_t cp);   // BERT's _is_whitespace
bool is_control(char32_t cp);      // BERT's _is_control
bool is_punctuation(char32_t cp);  // BERT's _is_punctuation (ASCII symbols count too)
bool is_cjk(char32_t cp);          // BERT's _is_chinese_char
bool is_mark_nonspacing(char32_t cp);
bool is_numeric(char32_t cp);      // Unicode N* (Nd, Nl, No): Rust's char::is_numeric
char32_t to_lower(char32_t cp);
std::string lower(const std::string& text);
std::string nfd(const std::string& text);
std::string nfc(const std::string& text);

}  // namespace sqz::io::unicode
