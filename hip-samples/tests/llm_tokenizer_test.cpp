// The llama2.c tokenizer format and the sampler, on a tokenizer file the
// test writes itself.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "llm_sampler.hpp"
#include "llm_tokenizer.hpp"

namespace gmem_samples::llm {
namespace {

// The layout every llama2.c tokenizer has (unk, BOS, EOS, 256 byte tokens)
// and a few merges whose scores make the merge order matter.
struct TestVocabulary {
  std::vector<std::string> pieces;
  std::vector<float> scores;

  TestVocabulary() {
    add("<unk>", 0);
    add("\n<s>\n", 0);
    add("\n</s>\n", 0);
    for (int byte = 0; byte < 256; ++byte) {
      char text[8];
      std::snprintf(text, sizeof(text), "<0x%02X>", byte);
      add(text, 0);
    }
    for (const char* single : {" ", "a", "c", "e", "h", "l", "o"}) add(single, -1);
    // Leftmost-first merging would join " h" first and never reach
    // " hello"; best-score-first must.
    add(" h", 1.0f);
    add("he", 3.0f);
    add("ll", 2.0f);
    add("llo", 2.5f);
    add("hello", 4.0f);
    add(" hello", 5.0f);
  }
  void add(const std::string& piece, float score) {
    pieces.push_back(piece);
    scores.push_back(score);
  }
  int id(const std::string& piece) const {
    for (std::size_t i = 0; i < pieces.size(); ++i)
      if (pieces[i] == piece) return static_cast<int>(i);
    return -1;
  }
};

class TokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "gmem-tokenizer-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    folder_ = pattern;
    path_ = folder_ + "/tokenizer.bin";
    write_tokenizer_file(path_, vocabulary_.pieces, vocabulary_.scores);
  }
  void TearDown() override { std::filesystem::remove_all(folder_); }
  int vocab_size() const { return static_cast<int>(vocabulary_.pieces.size()); }

  TestVocabulary vocabulary_;
  std::string folder_, path_;
};

TEST_F(TokenizerTest, LoadReadsBackEveryPieceOfTheFile) {
  Tokenizer tokenizer = Tokenizer::load(path_, vocab_size());
  ASSERT_EQ(tokenizer.vocab_size(), vocab_size());
  for (int i = 0; i < vocab_size(); ++i)
    EXPECT_EQ(tokenizer.piece(i), vocabulary_.pieces[static_cast<std::size_t>(i)]);
}

TEST_F(TokenizerTest, EncodeMergesTheBestScoringPairFirst) {
  Tokenizer tokenizer = Tokenizer::load(path_, vocab_size());
  EXPECT_EQ(tokenizer.encode("hello", true, false),
            (std::vector<int>{kBosToken, vocabulary_.id(" hello")}));
  EXPECT_EQ(tokenizer.encode("hello", false, true),
            (std::vector<int>{vocabulary_.id(" hello"), kEosToken}));
  // "hello hello": the second word keeps its space through the merges.
  EXPECT_EQ(tokenizer.encode("hello hello", false, false),
            (std::vector<int>{vocabulary_.id(" hello"), vocabulary_.id(" hello")}));
  EXPECT_EQ(tokenizer.encode("", true, false), (std::vector<int>{kBosToken}));
}

TEST_F(TokenizerTest, CharactersOutsideTheVocabularyBecomeByteTokens) {
  Tokenizer tokenizer = Tokenizer::load(path_, vocab_size());
  // 'é' is C3 A9 in UTF-8 and no piece of the vocabulary.
  EXPECT_EQ(tokenizer.encode("\xc3\xa9", false, false),
            (std::vector<int>{vocabulary_.id(" "), kFirstByteToken + 0xc3,
                              kFirstByteToken + 0xa9}));
  EXPECT_EQ(tokenizer.decode(vocabulary_.id("a"), kFirstByteToken + 0x0a), "\n");
}

TEST_F(TokenizerTest, DecodeOfEncodeGivesTheTextBack) {
  Tokenizer tokenizer = Tokenizer::load(path_, vocab_size());
  for (const std::string text :
       {"hello", "hello hello", "ach", "caf\xc3\xa9 ole", "a\nb", "l\xe2\x82\xac" "o",
        "  hello"}) {
    EXPECT_EQ(tokenizer.decode_all(tokenizer.encode(text, true, true)), text) << text;
  }
}

TEST_F(TokenizerTest, OnlyTheFirstPieceAfterBosLosesItsSpace) {
  Tokenizer tokenizer = Tokenizer::load(path_, vocab_size());
  const int hello = vocabulary_.id(" hello");
  EXPECT_EQ(tokenizer.decode(kBosToken, hello), "hello");
  EXPECT_EQ(tokenizer.decode(hello, hello), " hello");
}

TEST_F(TokenizerTest, BrokenFilesAreRefusedWithTheReason) {
  EXPECT_THROW(Tokenizer::load(folder_ + "/missing.bin", vocab_size()), TokenizerError);
  // A model with more tokens than the file: truncated.
  try {
    Tokenizer::load(path_, vocab_size() + 1);
    FAIL() << "a truncated file was accepted";
  } catch (const TokenizerError& error) {
    EXPECT_NE(std::string(error.what()).find("truncated at token"), std::string::npos);
  }
  // Fewer: bytes are left over, so it is another model's tokenizer.
  try {
    Tokenizer::load(path_, vocab_size() - 1);
    FAIL() << "trailing bytes were accepted";
  } catch (const TokenizerError& error) {
    EXPECT_NE(std::string(error.what()).find("not for this model"), std::string::npos);
  }
  // A negative length.
  {
    std::ofstream out(path_, std::ios::binary);
    const std::int32_t max_length = 8, length = -3;
    const float score = 0;
    out.write(reinterpret_cast<const char*>(&max_length), 4);
    out.write(reinterpret_cast<const char*>(&score), 4);
    out.write(reinterpret_cast<const char*>(&length), 4);
  }
  EXPECT_THROW(Tokenizer::load(path_, 1), TokenizerError);
}

TEST(Sampler, TemperatureZeroIsTheLargestLogit) {
  const std::vector<float> logits = {0.5f, 3.0f, -1.0f, 3.0f};
  EXPECT_EQ(argmax(logits), 1);
  for (float coin : {0.0f, 0.5f, 0.999f})
    EXPECT_EQ(sample_token(logits, SamplerSettings{0.0f, 0.9f}, coin), 1);
}

TEST(Sampler, TheCoinWalksTheDistribution) {
  // Probabilities at temperature 1: ~0.00002, ~0.525, ~0.475, ~0.
  const std::vector<float> logits = {0.0f, 10.0f, 9.9f, -5.0f};
  const SamplerSettings whole{1.0f, 1.0f};
  EXPECT_EQ(sample_token(logits, whole, 0.0f), 0);
  EXPECT_EQ(sample_token(logits, whole, 0.3f), 1);
  EXPECT_EQ(sample_token(logits, whole, 0.99f), 2);
}

TEST(Sampler, TopPKeepsOnlyTheMostLikelyTokens) {
  const std::vector<float> logits = {0.0f, 10.0f, 9.9f, -5.0f};
  // 0.525 alone passes 0.5: token 1 is the whole nucleus.
  for (float coin : {0.0f, 0.5f, 0.999f})
    EXPECT_EQ(sample_token(logits, SamplerSettings{1.0f, 0.5f}, coin), 1);
  // At 0.9 the nucleus is tokens 1 and 2, renormalised: a high coin picks 2,
  // never the unlikely 0 or 3.
  EXPECT_EQ(sample_token(logits, SamplerSettings{1.0f, 0.9f}, 0.999f), 2);
  EXPECT_EQ(sample_token(logits, SamplerSettings{1.0f, 0.9f}, 0.0f), 1);
}

TEST(Sampler, CoinsAreReproducibleAndUniformInZeroToOne) {
  CoinSource first(42), second(42), other(43);
  double sum = 0;
  bool differs = false;
  for (int i = 0; i < 4000; ++i) {
    const float coin = first.next();
    ASSERT_GE(coin, 0.0f);
    ASSERT_LT(coin, 1.0f);
    EXPECT_EQ(coin, second.next());
    differs |= coin != other.next();
    sum += coin;
  }
  EXPECT_TRUE(differs);
  EXPECT_NEAR(sum / 4000, 0.5, 0.03);
}

}  // namespace
}  // namespace gmem_samples::llm
