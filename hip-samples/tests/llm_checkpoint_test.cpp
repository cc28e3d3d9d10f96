#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "llm_checkpoint.hpp"
#include "llm_reference.hpp"

namespace gmem_samples::llm {
namespace {

// Writes checkpoints byte by byte from the format description, independent
// of the reader: header, tensors up to rms_final, two rotary tables, then
// the classifier if the vocabulary size is negative.
class CheckpointFile {
 public:
  explicit CheckpointFile(const std::string& name)
      : path_(::testing::TempDir() + "gmem_samples_" + name + ".bin") {}
  ~CheckpointFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

  void write(const std::array<std::int32_t, 7>& header, const std::vector<float>& floats,
             std::size_t drop_bytes = 0, std::size_t extra_bytes = 0) const {
    std::string bytes(reinterpret_cast<const char*>(header.data()), sizeof(header));
    bytes.append(reinterpret_cast<const char*>(floats.data()), floats.size() * sizeof(float));
    bytes.resize(bytes.size() - drop_bytes);
    bytes.append(extra_bytes, '\0');
    std::ofstream(path_, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }

 private:
  std::string path_;
};

// dim 4, hidden 6, 2 layers, 2 heads, 1 KV head (head size 2, kv_dim 2),
// vocabulary 5, seq_len 3.
constexpr std::int32_t kDim = 4, kHidden = 6, kLayers = 2, kHeads = 2, kKvHeads = 1, kVocab = 5,
                       kSeqLen = 3;
constexpr std::size_t kBodyFloats = kVocab * kDim                    // embedding
                                    + kLayers * kDim                  // rms attention
                                    + kLayers * (kDim * kDim * 2)     // wq, wo
                                    + kLayers * (2 * kDim * 2)        // wk, wv (kv_dim 2)
                                    + kLayers * kDim                  // rms ffn
                                    + kLayers * (3 * kHidden * kDim)  // w1, w2, w3
                                    + kDim;                           // rms final
constexpr std::size_t kRotaryFloats = 2 * kSeqLen * (kDim / kHeads / 2);

std::vector<float> numbered(std::size_t count, float start) {
  std::vector<float> values(count);
  for (std::size_t i = 0; i < count; ++i) values[i] = start + static_cast<float>(i);
  return values;
}

TEST(LlmCheckpoint, ReadsSharedClassifierCheckpoint) {
  CheckpointFile file("shared");
  std::vector<float> floats = numbered(kBodyFloats, 1.0f);
  const std::vector<float> rotary(kRotaryFloats, -7.0f);  // must be skipped
  floats.insert(floats.end(), rotary.begin(), rotary.end());
  file.write({kDim, kHidden, kLayers, kHeads, kKvHeads, kVocab, kSeqLen}, floats);

  const LoadedModel model = load_checkpoint(file.path());
  EXPECT_EQ(model.config.dim, kDim);
  EXPECT_EQ(model.config.hidden_dim, kHidden);
  EXPECT_EQ(model.config.n_layers, kLayers);
  EXPECT_EQ(model.config.n_heads, kHeads);
  EXPECT_EQ(model.config.n_kv_heads, kKvHeads);
  EXPECT_EQ(model.config.vocab_size, kVocab);
  EXPECT_EQ(model.config.seq_len, kSeqLen);
  EXPECT_TRUE(model.config.shared_classifier);
  ASSERT_EQ(model.layout.total_floats, kBodyFloats);
  for (std::size_t i = 0; i < kBodyFloats; ++i)
    ASSERT_EQ(model.weights[i], static_cast<float>(i + 1)) << "float " << i;
  const Weights w = bind_weights(model.layout, model.weights.get());
  EXPECT_EQ(w.classifier, w.token_embedding);
  EXPECT_EQ(w.rms_final[kDim - 1], static_cast<float>(kBodyFloats));
  EXPECT_EQ(checkpoint_file_bytes(model.config),
            kCheckpointHeaderBytes + (kBodyFloats + kRotaryFloats) * sizeof(float));
}

TEST(LlmCheckpoint, NegativeVocabularyMeansSeparateClassifier) {
  CheckpointFile file("unshared");
  std::vector<float> floats = numbered(kBodyFloats, 0.0f);
  floats.insert(floats.end(), kRotaryFloats, 99.0f);
  const std::vector<float> classifier = numbered(kVocab * kDim, 1000.0f);
  floats.insert(floats.end(), classifier.begin(), classifier.end());
  file.write({kDim, kHidden, kLayers, kHeads, kKvHeads, -kVocab, kSeqLen}, floats);

  const LoadedModel model = load_checkpoint(file.path());
  EXPECT_FALSE(model.config.shared_classifier);
  EXPECT_EQ(model.config.vocab_size, kVocab);
  const Weights w = bind_weights(model.layout, model.weights.get());
  EXPECT_NE(w.classifier, w.token_embedding);
  for (int i = 0; i < kVocab * kDim; ++i) ASSERT_EQ(w.classifier[i], 1000.0f + i);
  // The loaded model runs in the reference decoder.
  ReferenceDecoder decoder(model.config, w);
  EXPECT_EQ(decoder.forward(3, 0).size(), static_cast<std::size_t>(kVocab));
}

std::string error_of(const std::string& path) {
  try {
    load_checkpoint(path);
  } catch (const CheckpointError& error) {
    return error.what();
  }
  return "";
}

TEST(LlmCheckpoint, TruncatedFileIsReportedWithBothSizes) {
  CheckpointFile file("truncated");
  std::vector<float> floats(kBodyFloats + kRotaryFloats, 0.5f);
  file.write({kDim, kHidden, kLayers, kHeads, kKvHeads, kVocab, kSeqLen}, floats, 4);
  const std::size_t expected = kCheckpointHeaderBytes + floats.size() * sizeof(float);
  const std::string error = error_of(file.path());
  EXPECT_NE(error.find("is truncated"), std::string::npos) << error;
  EXPECT_NE(error.find("needs " + std::to_string(expected) + " bytes, file has " +
                       std::to_string(expected - 4)),
            std::string::npos)
      << error;
}

TEST(LlmCheckpoint, WrongSizesInTheHeaderAreReported) {
  CheckpointFile file("wrong_sizes");
  // A body for vocabulary 5 under a header claiming 6: 16 bytes too few.
  std::vector<float> floats(kBodyFloats + kRotaryFloats, 0.5f);
  file.write({kDim, kHidden, kLayers, kHeads, kKvHeads, kVocab + 1, kSeqLen}, floats);
  EXPECT_NE(error_of(file.path()).find("is truncated"), std::string::npos);
  // The same body with a shared-classifier header but extra trailing bytes.
  file.write({kDim, kHidden, kLayers, kHeads, kKvHeads, kVocab, kSeqLen}, floats, 0, 8);
  EXPECT_NE(error_of(file.path()).find("longer than its header says"), std::string::npos);
}

TEST(LlmCheckpoint, InvalidHeadersAreReported) {
  CheckpointFile file("bad_header");
  file.write({kDim, kHidden, kLayers, 3, kKvHeads, kVocab, kSeqLen}, {});
  EXPECT_NE(error_of(file.path()).find("invalid checkpoint header: dim 4 is not divisible by n_heads 3"),
            std::string::npos)
      << error_of(file.path());
  file.write({kDim, 0, kLayers, kHeads, kKvHeads, kVocab, kSeqLen}, {});
  EXPECT_NE(error_of(file.path()).find("hidden_dim must be positive"), std::string::npos);
  file.write({kDim, kHidden, kLayers, kHeads, kKvHeads, INT32_MIN, kSeqLen}, {});
  EXPECT_NE(error_of(file.path()).find("vocab_size must be positive"), std::string::npos);
}

TEST(LlmCheckpoint, ShortAndMissingFilesAreReported) {
  CheckpointFile file("short");
  file.write({1, 2, 3, 4, 5, 6, 7}, {}, 10);
  EXPECT_NE(error_of(file.path()).find("less than the 28-byte header"), std::string::npos)
      << error_of(file.path());
  const std::string missing = error_of(::testing::TempDir() + "gmem_samples_no_such_file.bin");
  EXPECT_NE(missing.find("cannot open checkpoint"), std::string::npos) << missing;
  EXPECT_NE(missing.find("No such file"), std::string::npos) << missing;
}

}  // namespace
}  // namespace gmem_samples::llm
