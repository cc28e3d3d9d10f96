#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "llm_reference.hpp"
#include "llm_test_model.hpp"

namespace gmem_samples::llm {
namespace {

using testing::TinyModel;

TEST(LlmReference, RmsNormByHand) {
  // x = (3, 4): mean square 12.5, so out = x / sqrt(12.5 + 1e-5) * weight.
  const float x[] = {3.0f, 4.0f}, weight[] = {1.0f, 2.0f};
  float out[2];
  rmsnorm(out, x, weight, 2);
  EXPECT_NEAR(out[0], 0.848528f, 1e-5f);
  EXPECT_NEAR(out[1], 2.262741f, 1e-5f);
}

TEST(LlmReference, MatvecByHand) {
  const float matrix[] = {1, 2, 3, 4, 5, 6};  // 2 rows x 3 cols
  const float x[] = {1, 0, -1};
  float out[2];
  matvec(out, matrix, x, 2, 3);
  EXPECT_FLOAT_EQ(out[0], -2.0f);
  EXPECT_FLOAT_EQ(out[1], -2.0f);
}

TEST(LlmReference, LargeMatvecMatchesSerialSum) {
  // Big enough for the threaded path; every row must be computed exactly once.
  const int rows = 3000, cols = 700;
  std::vector<float> matrix(static_cast<std::size_t>(rows) * cols), x(cols), out(rows, -1.0f);
  for (std::size_t i = 0; i < matrix.size(); ++i) matrix[i] = static_cast<float>(i % 7) - 3.0f;
  for (int c = 0; c < cols; ++c) x[c] = static_cast<float>(c % 5);
  matvec(out.data(), matrix.data(), x.data(), rows, cols);
  for (int r = 0; r < rows; ++r) {
    double sum = 0;
    for (int c = 0; c < cols; ++c) sum += matrix[static_cast<std::size_t>(r) * cols + c] * x[c];
    ASSERT_FLOAT_EQ(out[r], static_cast<float>(sum)) << "row " << r;
  }
}

TEST(LlmReference, SoftmaxAndSiluByHand) {
  float x[] = {0.0f, std::log(3.0f)};  // e^0 : e^ln3 = 1 : 3
  softmax(x, 2);
  EXPECT_NEAR(x[0], 0.25f, 1e-6f);
  EXPECT_NEAR(x[1], 0.75f, 1e-6f);
  float big[] = {1000.0f, 1000.0f};  // stable for large inputs
  softmax(big, 2);
  EXPECT_NEAR(big[0], 0.5f, 1e-6f);
  EXPECT_FLOAT_EQ(silu(0.0f), 0.0f);
  EXPECT_NEAR(silu(1.0f), 1.0f / (1.0f + std::exp(-1.0f)), 1e-6f);
}

TEST(LlmReference, RopeRotatesPairsByPositionAndFrequency) {
  // Head size 4: pair 0 turns by pos * 1, pair 2 by pos * 10000^(-2/4) = pos / 100.
  float v[] = {1, 0, 1, 0};
  rope(v, 1, 4, 0);
  EXPECT_FLOAT_EQ(v[0], 1.0f);
  EXPECT_FLOAT_EQ(v[1], 0.0f);
  rope(v, 1, 4, 2);
  EXPECT_NEAR(v[0], std::cos(2.0f), 1e-6f);
  EXPECT_NEAR(v[1], std::sin(2.0f), 1e-6f);
  EXPECT_NEAR(v[2], std::cos(0.02f), 1e-6f);
  EXPECT_NEAR(v[3], std::sin(0.02f), 1e-6f);
  float two_heads[] = {0, 1, 0, 1};  // each head of size 2 turns by the same angle
  rope(two_heads, 2, 2, 1);
  EXPECT_NEAR(two_heads[0], -std::sin(1.0f), 1e-6f);
  EXPECT_NEAR(two_heads[2], -std::sin(1.0f), 1e-6f);
}

// Attention only: wq = wk = 0 makes every score 0, so attention averages the
// values; wv = wo = I; w1 = 0 switches the FFN off (silu(0) = 0).
// Embeddings e0 = (1, 0), e1 = (0, 2); every RMSNorm gain is 1.
//   pos 0, token 1: x = (0, 2), v0 = rmsnorm(x) = (0, sqrt2), x = (0, 2 + sqrt2),
//     final norm (0, sqrt2): logits = (e0.n, e1.n) = (0, 2 sqrt2) = (0, 2.828425)
//   pos 1, token 0: x = (1, 0), v1 = (sqrt2, 0), mean(v0, v1) = (0.707107, 0.707107),
//     x = (1.707107, 0.707107), rms = sqrt((2.914214 + 0.5) / 2) = 1.306563,
//     n = (1.306559, 0.541196): logits = (1.306559, 1.082391)
TEST(LlmReference, TinyAttentionModelByHand) {
  TinyModel m;
  const WeightLayout& l = m.layout;
  m.set(l.token_embedding, {1, 0, 0, 2});
  m.set(l.rms_attention, {1, 1});
  m.set(l.wv, {1, 0, 0, 1});
  m.set(l.wo, {1, 0, 0, 1});
  m.set(l.rms_ffn, {1, 1});
  m.set(l.w2, {1, 0, 0, 1});
  m.set(l.w3, {1, 0, 0, 1});
  m.set(l.rms_final, {1, 1});
  ReferenceDecoder decoder(m.config, m.weights());
  const auto first = decoder.forward(1, 0);
  EXPECT_NEAR(first[0], 0.0f, 1e-6f);
  EXPECT_NEAR(first[1], 2.828425f, 1e-5f);
  const auto second = decoder.forward(0, 1);
  EXPECT_NEAR(second[0], 1.306559f, 1e-5f);
  EXPECT_NEAR(second[1], 1.082391f, 1e-5f);
  EXPECT_EQ(argmax(second), 0);
}

// FFN only: wo = 0 removes attention; w1 = w3 = w2 = I gives
// x += silu(n) * n with n = rmsnorm(x). Embeddings e0 = (1, 0), e1 = (1, 2),
// final gain (1, 0.5).
//   token 1: x = (1, 2), rms = sqrt(2.5), n = (0.632455, 1.264909),
//     silu(n) * n = (0.261217, 1.247787), x = (1.261217, 3.247787),
//     final n = (0.511937, 0.659150): logits = (0.511937, 1.830238)
TEST(LlmReference, TinyFeedForwardModelByHand) {
  TinyModel m;
  const WeightLayout& l = m.layout;
  m.set(l.token_embedding, {1, 0, 1, 2});
  m.set(l.rms_attention, {1, 1});
  m.set(l.wv, {1, 0, 0, 1});
  m.set(l.rms_ffn, {1, 1});
  m.set(l.w1, {1, 0, 0, 1});
  m.set(l.w2, {1, 0, 0, 1});
  m.set(l.w3, {1, 0, 0, 1});
  m.set(l.rms_final, {1, 0.5f});
  ReferenceDecoder decoder(m.config, m.weights());
  const auto logits = decoder.forward(1, 0);
  EXPECT_NEAR(logits[0], 0.511937f, 1e-5f);
  EXPECT_NEAR(logits[1], 1.830238f, 1e-5f);
}

TEST(LlmReference, GroupedQueryHeadsShareOneKeyValueHead) {
  // dim 4, two query heads of size 2, one KV head: with wq = 0 both heads
  // average the same values, so both halves of the attention output match.
  ModelConfig c = testing::tiny_config();
  c.dim = 4;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  c.vocab_size = 4;
  const WeightLayout l = layout_for(c);
  std::vector<float> block(l.total_floats, 0.0f);
  for (int i = 0; i < 16; ++i) block[l.token_embedding + i] = static_cast<float>(i % 5) - 1.0f;
  for (int i = 0; i < 4; ++i) block[l.rms_attention + i] = block[l.rms_final + i] = 1.0f;
  block[l.wv + 0] = 1.0f;      // v = (n0, n1): kv_dim 2 x dim 4
  block[l.wv + 4 + 1] = 1.0f;
  for (int i = 0; i < 4; ++i) block[l.wo + i * 4 + i] = 1.0f;  // wo = I
  ReferenceDecoder decoder(c, bind_weights(l, block.data()));
  const auto logits = decoder.forward(2, 0);
  ASSERT_EQ(block[l.token_embedding + 8], 2.0f);  // the embedding assumed below
  ASSERT_EQ(block[l.token_embedding + 10], -1.0f);
  // Token 2's embedding is (2, 3, -1, 0); n = x / rms; attention adds
  // (n0, n1, n0, n1), which the final norm and the embedding classifier see.
  const std::vector<double> x{2, 3, -1, 0};
  const double rms = std::sqrt((4 + 9 + 1 + 0) / 4.0 + 1e-5);
  std::vector<double> y{x[0] + x[0] / rms, x[1] + x[1] / rms, x[2] + x[0] / rms, x[3] + x[1] / rms};
  double squares = 0;
  for (double v : y) squares += v * v;
  const double final_rms = std::sqrt(squares / 4 + 1e-5);
  for (int token = 0; token < 4; ++token) {
    double expected = 0;
    for (int i = 0; i < 4; ++i) expected += block[l.token_embedding + token * 4 + i] * y[i] / final_rms;
    EXPECT_NEAR(logits[token], expected, 1e-5) << "token " << token;
  }
}

TEST(LlmReference, RejectsOutOfOrderPositionsAndBadTokens) {
  TinyModel m;
  ReferenceDecoder decoder(m.config, m.weights());
  EXPECT_THROW(decoder.forward(0, 1), std::out_of_range);
  EXPECT_THROW(decoder.forward(2, 0), std::out_of_range);
  EXPECT_NO_THROW(decoder.forward(0, 0));
}

TEST(LlmReference, RelativeDifferenceAndArgmax) {
  EXPECT_DOUBLE_EQ(max_relative_difference({1, 2, 4}, {1, 2, 4}), 0.0);
  EXPECT_NEAR(max_relative_difference({1, 2, 4.04f}, {1, 2, 4}), 0.01, 1e-6);
  EXPECT_THROW(max_relative_difference({1}, {1, 2}), std::invalid_argument);
  EXPECT_EQ(argmax({0.5f, 3.0f, 3.0f, -1.0f}), 1);
}

}  // namespace
}  // namespace gmem_samples::llm
