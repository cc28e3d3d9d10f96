#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "llm_model.hpp"
#include "llm_test_model.hpp"

namespace gmem_samples::llm {
namespace {

TEST(LlmModel, LayoutFollowsCheckpointOrder) {
  ModelConfig c;
  c.dim = 8;
  c.hidden_dim = 16;
  c.n_layers = 2;
  c.n_heads = 2;
  c.n_kv_heads = 1;  // head size 4, kv_dim 4
  c.vocab_size = 10;
  c.seq_len = 6;
  c.shared_classifier = false;
  const WeightLayout l = layout_for(c);
  EXPECT_EQ(l.token_embedding, 0u);
  EXPECT_EQ(l.rms_attention, 80u);          // 10 * 8
  EXPECT_EQ(l.wq, 80u + 16);                // + 2 layers * 8
  EXPECT_EQ(l.wk, l.wq + 2 * 8 * 8);
  EXPECT_EQ(l.wv, l.wk + 2 * 4 * 8);
  EXPECT_EQ(l.wo, l.wv + 2 * 4 * 8);
  EXPECT_EQ(l.rms_ffn, l.wo + 2 * 8 * 8);
  EXPECT_EQ(l.w1, l.rms_ffn + 2 * 8);
  EXPECT_EQ(l.w2, l.w1 + 2 * 16 * 8);
  EXPECT_EQ(l.w3, l.w2 + 2 * 8 * 16);
  EXPECT_EQ(l.rms_final, l.w3 + 2 * 16 * 8);
  EXPECT_EQ(l.classifier, l.rms_final + 8);
  EXPECT_EQ(l.total_floats, l.classifier + 80);
  EXPECT_EQ(l.bytes(), l.total_floats * 4);

  c.shared_classifier = true;
  const WeightLayout shared = layout_for(c);
  EXPECT_EQ(shared.classifier, shared.token_embedding);
  EXPECT_EQ(shared.total_floats, l.total_floats - 80);
}

ModelConfig small_config(bool shared_classifier) {
  ModelConfig c;
  c.dim = 8;
  c.hidden_dim = 16;
  c.n_layers = 3;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  c.vocab_size = 10;
  c.seq_len = 6;
  c.shared_classifier = shared_classifier;
  return c;
}

TEST(LlmLayers, SlicesPickEachTensorsShareOfOneLayer) {
  const ModelConfig c = small_config(false);
  const WeightLayout l = layout_for(c);
  const LayerSlices second = layer_slices(c, l, 1);
  EXPECT_EQ(second.rms_attention.offset, l.rms_attention + 8);
  EXPECT_EQ(second.wq.offset, l.wq + 64);
  EXPECT_EQ(second.wk.offset, l.wk + 32);
  EXPECT_EQ(second.wk.count, 32u);
  EXPECT_EQ(second.w2.offset, l.w2 + 128);
  EXPECT_EQ(second.w3.count, 128u);
  // Every layer's slices together cover exactly the per-layer tensors.
  std::uint64_t covered = 0;
  for (int layer = 0; layer < c.n_layers; ++layer) covered += layer_slices(c, l, layer).floats();
  EXPECT_EQ(covered, l.rms_final - l.rms_attention);
  EXPECT_THROW(layer_slices(c, l, 3), ModelError);
  EXPECT_THROW(layer_slices(c, l, -1), ModelError);
}

TEST(LlmLayers, APackedLayerHasTheSameTensorsBackToBack) {
  const ModelConfig c = small_config(true);
  const LayerSlices in_block = layer_slices(c, layout_for(c), 2);
  const LayerSlices packed = packed_layer(c);
  EXPECT_EQ(packed.floats(), in_block.floats());
  std::uint64_t next = 0;
  for (int i = 0; i < LayerSlices::kTensors; ++i) {
    EXPECT_EQ(packed[i].offset, next) << "tensor " << i;
    EXPECT_EQ(packed[i].count, in_block[i].count) << "tensor " << i;
    next += packed[i].count;
  }
  std::vector<float> block(packed.floats());
  const LayerWeights bound = bind_layer(packed, block.data());
  EXPECT_EQ(bound.rms_attention, block.data());
  EXPECT_EQ(bound.w3, block.data() + packed.w3.offset);
}

TEST(LlmLayers, HotSetIsTheClassifierThenTheFirstLayersThatFit) {
  const ModelConfig separate = small_config(false);
  const WeightLayout l = layout_for(separate);
  const TensorSlice classifier = classifier_slice(separate, l);
  EXPECT_EQ(classifier.offset, l.rms_final);
  EXPECT_EQ(classifier.offset + classifier.count, l.total_floats);
  const std::uint64_t fixed = classifier.count * 4, layer = layer_slices(separate, l, 0).bytes();
  EXPECT_EQ(hot_layers_within(separate, l, fixed - 1), 0);
  EXPECT_EQ(hot_layers_within(separate, l, fixed + layer - 1), 0);
  EXPECT_EQ(hot_layers_within(separate, l, fixed + 2 * layer), 2);
  EXPECT_EQ(hot_layers_within(separate, l, 1ull << 40), 3);  // never more than the model has
  const ModelConfig shared = small_config(true);
  EXPECT_EQ(classifier_slice(shared, layout_for(shared)).offset, 0u);  // the embedding
}

TEST(LlmModel, ValidateNamesTheBadField) {
  auto expect_error = [](ModelConfig c, const std::string& fragment) {
    try {
      validate(c);
      ADD_FAILURE() << "no error for " << describe(c);
    } catch (const ModelError& error) {
      EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << error.what();
    }
  };
  const ModelConfig good = testing::tiny_config();
  EXPECT_NO_THROW(validate(good));
  ModelConfig c = good;
  c.dim = 0;
  expect_error(c, "dim must be positive");
  c = good;
  c.n_layers = -1;
  expect_error(c, "n_layers");
  c = good;
  c.dim = 6;
  c.n_heads = 4;
  expect_error(c, "not divisible by n_heads");
  c = good;
  c.dim = 6;
  c.n_heads = 2;  // head size 3
  expect_error(c, "must be even");
  c = good;
  c.dim = 12;
  c.n_heads = 3;
  c.n_kv_heads = 2;
  expect_error(c, "multiple of n_kv_heads");
  c = good;
  c.vocab_size = 1 << 30;
  expect_error(c, "implausibly large");
}

TEST(LlmModel, SizingReachesTargetWithFewestLayers) {
  const ModelConfig base = synthetic_base_config();
  for (std::uint64_t target : {1ull << 30, 96ull << 30, 192ull << 30}) {
    const ModelConfig c = config_for_weight_bytes(base, target);
    EXPECT_GE(layout_for(c).bytes(), target);
    if (c.n_layers > 1) {
      ModelConfig one_less = c;
      --one_less.n_layers;
      EXPECT_LT(layout_for(one_less).bytes(), target);
    }
    EXPECT_EQ(c.dim, base.dim);
  }
  EXPECT_EQ(config_for_weight_bytes(base, 1).n_layers, 1);
  EXPECT_THROW(config_for_weight_bytes(base, 1ull << 60), ModelError);
}

TEST(LlmModel, SyntheticWeightsAreSeededAndScaled) {
  ModelConfig c;
  c.dim = 64;
  c.hidden_dim = 128;
  c.n_layers = 3;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.vocab_size = 5000;  // big enough for parallel_for to use several threads
  c.seq_len = 8;
  c.shared_classifier = false;
  const WeightLayout l = layout_for(c);
  std::vector<float> first(l.total_floats), second(l.total_floats), other_seed(l.total_floats);
  fill_synthetic_weights(c, l, first.data(), 7);
  fill_synthetic_weights(c, l, second.data(), 7);
  fill_synthetic_weights(c, l, other_seed.data(), 8);
  EXPECT_EQ(first, second);
  EXPECT_NE(first, other_seed);
  // RMSNorm gains near 1, matrices within +-1/sqrt(fan-in), embedding within +-1.
  for (std::uint64_t i = l.rms_attention; i < l.wq; ++i) ASSERT_NEAR(first[i], 1.0f, 0.1f);
  const float wq_bound = 1.0f / 8.0f;
  for (std::uint64_t i = l.wq; i < l.wk; ++i) ASSERT_LE(std::abs(first[i]), wq_bound);
  for (std::uint64_t i = l.token_embedding; i < l.rms_attention; ++i)
    ASSERT_LE(std::abs(first[i]), 1.0f);
  EXPECT_TRUE(std::any_of(first.begin() + static_cast<std::ptrdiff_t>(l.classifier), first.end(),
                          [](float v) { return v != 0.0f; }));
}

}  // namespace
}  // namespace gmem_samples::llm
