#include "io/tokenizers/tokenizer.h"

#include <fstream>

#include "io/tokenizers/unicode.h"
#include "unit/test_paths.h"

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
  ASSERT_EQ(batch.batch, 2);
  ASSERT_EQ(batch.input_ids.size(), static_cast<size_t>(2 * batch.length));
  int64_t real_in_first = 0;
  for (int64_t j = 0; j < batch.length; ++j) real_in_first += batch.attention_mask[j];
  EXPECT_EQ(real_in_first, static_cast<int64_t>(tok->encode("the whale").ids.size()));
  EXPECT_EQ(batch.input_ids[batch.length - 1], *tok->special_id("pad"));
}

// A vocab with one absurd id must not size the id table by it; an added token without an id must
// not become token 0; each refusal names the file and the token.
TEST(Tokenizer, HostileVocabFilesAreRefusedByName) {
  testing::ScratchDir dir("tok-hostile");
  auto error_of = [&](const std::string& tokenizer_json) {
    std::ofstream(dir / "tokenizer.json") << tokenizer_json;
    try {
      io::load_tokenizer(dir.path());
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  std::ofstream(dir / "config.json") << R"({"model_type": "gpt2"})";
  const std::string head = R"({"model": {"type": "BPE", "merges": [], "vocab": {"a": 0, "b": )";
  auto huge = error_of(head + R"(4000000000000}}})");
  EXPECT_NE(huge.find("tokenizer.json: token 'b' has id 4000000000000; ids must be below 16777216"), std::string::npos) << huge;
  auto wrapped = error_of(head + R"(18446744073709551615}}})");
  EXPECT_NE(wrapped.find("token 'b' has negative id"), std::string::npos) << wrapped;
  auto text_id = error_of(head + R"("1"}}})");
  EXPECT_NE(text_id.find("model.vocab id of token 'b' is not an integer"), std::string::npos) << text_id;
  auto no_id = error_of(head + R"(1}}, "added_tokens": [{"content": "<x>", "special": true}]})");
  EXPECT_NE(no_id.find(R"(added_tokens entry {"content":"<x>","special":true} needs an integer 'id')"), std::string::npos) << no_id;
  // HF's "no limit" (1e30 written as an integer) is no limit, not a wrapped negative one.
  std::ofstream(dir / "tokenizer_config.json") << R"({"model_max_length": 1000000000000000019884624838656})";
  EXPECT_EQ(error_of(head + "1}}}"), "no error");
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

#include "io/tokenizers/sentencepiece.h"

namespace sqz {
namespace {

// Trains a small unigram model on real text (lm-books) with the helper, then checks the
// LlamaTokenizer conventions: <s> first, special tokens split out, lossless decode.
TEST(Tokenizer, SentencePieceThroughHelper) {
  testing::ScratchDir dir("spm");
  std::string text = read_text_file(testing::shared_dir() / "data" / "lm-books" / "train.txt").substr(0, 200000);
  write_file_atomic(dir / "corpus.txt", text);
  std::string cmd = io::spm_helper_path().string() + " --train '--input=" + (dir / "corpus.txt").string() +
                    " --model_prefix=" + (dir / "tokenizer").string() +
                    " --vocab_size=300 --model_type=unigram --bos_id=1 --eos_id=2 --unk_id=0 --minloglevel=2' 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto tok = io::load_tokenizer(dir.path());
  EXPECT_EQ(tok->vocab_size(), 300);
  auto ids = tok->encode("Call me Ishmael.").ids;
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids.front(), 1);
  EXPECT_EQ(tok->decode(ids, /*skip_special_tokens=*/true), "Call me Ishmael.");
  auto with_eos = tok->tokenize("whale</s>sea");
  EXPECT_NE(std::find(with_eos.begin(), with_eos.end(), "</s>"), with_eos.end());
}

}  // namespace
}  // namespace sqz
