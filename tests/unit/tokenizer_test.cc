#include "io/tokenizers/tokenizer.h"

#include "io/tokenizers/unicode.h"
#include "unit/test_util.h"

namespace sqz {
namespace {

TEST(Unicode, DecodesInvalidBytesLikePython) {
  // "a", a lone continuation byte, a truncated 3-byte sequence, then "b".
  std::string s = std::string("a") + "\x80" + "\xE2\x82" + "b";
  auto cps = io::unicode::decode_utf8(s);
  ASSERT_EQ(cps.size(), 4u);
  EXPECT_EQ(cps[1], 0xFFFDu);
  EXPECT_EQ(cps[2], 0xFFFDu);
  EXPECT_EQ(cps[3], U'b');
  EXPECT_EQ(io::unicode::encode_utf8(io::unicode::decode_utf8("日本語 🐳")), "日本語 🐳");
}

TEST(Unicode, CharacterClasses) {
  using namespace io::unicode;
  EXPECT_TRUE(is_punctuation(U'$'));   // ASCII symbol counts as punctuation for BERT
  EXPECT_TRUE(is_punctuation(U'—'));
  EXPECT_FALSE(is_punctuation(U'a'));
  EXPECT_TRUE(is_whitespace(0x00A0));
  EXPECT_TRUE(is_control(0x0007));
  EXPECT_FALSE(is_control(U'\t'));
  EXPECT_TRUE(is_cjk(U'語'));
  EXPECT_EQ(nfd("é").size(), 3u);  // e + combining acute
  EXPECT_EQ(lower("ÀB"), "àb");
}

TEST(Tokenizer, CleanUpTokenizationAsHF) {
  EXPECT_EQ(io::clean_up_tokenization("hello , world ! it ' s ok . do n't"), "hello, world! it's ok. don't");
}

TEST(Tokenizer, WordPieceTruncatesLongestFirstAndPads) {
  auto tok = io::load_tokenizer(testing::fixtures_dir() / "bert-seqcls" / "model");
  std::string a = "the whale swam under the deep dark sea", b = "call me";
  auto enc = tok->encode(a, &b, 8);
  EXPECT_EQ(enc.ids.size(), 8u);
  EXPECT_EQ(enc.ids.front(), *tok->special_id("cls"));
  EXPECT_EQ(enc.type_ids.back(), 1);
  auto batch = tok->encode_batch({"the whale", "call me ishmael, some years ago"}, nullptr, 64);
  EXPECT_EQ(batch.input_ids.size(0), 2);
  EXPECT_EQ(batch.attention_mask[0].sum().item<int64_t>(), static_cast<int64_t>(tok->encode("the whale").ids.size()));
  EXPECT_EQ(batch.input_ids[0][batch.input_ids.size(1) - 1].item<int64_t>(), *tok->special_id("pad"));
}

TEST(Tokenizer, ByteBpeSplitsSpecialTokens) {
  auto tok = io::load_tokenizer(testing::fixtures_dir() / "gpt2-lm" / "model");
  auto eos = *tok->special_id("eos");
  auto ids = tok->encode("Call me<|endoftext|> again").ids;
  EXPECT_NE(std::find(ids.begin(), ids.end(), eos), ids.end());
  EXPECT_EQ(tok->decode(tok->encode("Ishmael. Some years ago").ids), "Ishmael. Some years ago");
}

}  // namespace
}  // namespace sqz
