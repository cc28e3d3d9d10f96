// A small Llama-style decoder: shape, weight layout in one malloc'd block,
// seeded synthetic weights and sizing to a byte target. Host code; the GPU
// kernels read the same block through the same Weights pointers.
//
// Tensor order in the block (all float32, matrices row-major [out][in]):
//   token_embedding [vocab][dim]
//   rms_attention   [layers][dim]
//   wq [layers][dim][dim]      wk [layers][kv_dim][dim]
//   wv [layers][kv_dim][dim]   wo [layers][dim][dim]
//   rms_ffn         [layers][dim]
//   w1 [layers][hidden][dim]   w2 [layers][dim][hidden]   w3 [layers][hidden][dim]
//   rms_final       [dim]
//   classifier      [vocab][dim]   only when not shared with the embedding
// This is the order of the llama2.c checkpoint format without its two
// rotary tables, so a checkpoint is read straight into the block.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

namespace gmem_samples::llm {

class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ModelConfig {
  std::int32_t dim = 0;
  std::int32_t hidden_dim = 0;
  std::int32_t n_layers = 0;
  std::int32_t n_heads = 0;
  std::int32_t n_kv_heads = 0;
  std::int32_t vocab_size = 0;
  std::int32_t seq_len = 0;
  bool shared_classifier = true;  // classifier reuses token_embedding

  std::int32_t head_size() const { return dim / n_heads; }
  std::int32_t kv_dim() const { return head_size() * n_kv_heads; }
};

// Throws ModelError naming the first field that is out of range or
// inconsistent (positive sizes, dim divisible into even-sized heads,
// n_heads a multiple of n_kv_heads, sizes small enough not to overflow).
void validate(const ModelConfig& config);
std::string describe(const ModelConfig& config);

// Offsets (in floats) of each tensor in the weight block.
struct WeightLayout {
  std::uint64_t token_embedding, rms_attention, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final,
      classifier;
  std::uint64_t total_floats;
  std::uint64_t bytes() const { return total_floats * sizeof(float); }
};

WeightLayout layout_for(const ModelConfig& config);

// Pointers into one weight block, per tensor (all layers).
struct Weights {
  const float* token_embedding;
  const float* rms_attention;
  const float* wq;
  const float* wk;
  const float* wv;
  const float* wo;
  const float* rms_ffn;
  const float* w1;
  const float* w2;
  const float* w3;
  const float* rms_final;
  const float* classifier;
};

Weights bind_weights(const WeightLayout& layout, const float* block);

// One layer's share of a tensor: `count` floats at `offset` (in floats).
struct TensorSlice {
  std::uint64_t offset = 0;
  std::uint64_t count = 0;
};
// The nine tensors of one layer, in block order. In the weight block they
// are nine separate places; in a packed layer (packed_layer()) they are
// back to back from offset 0, which is how the streaming baseline copies a
// layer into one device buffer.
struct LayerSlices {
  TensorSlice rms_attention, wq, wk, wv, wo, rms_ffn, w1, w2, w3;
  static constexpr int kTensors = 9;
  const TensorSlice& operator[](int i) const { return (&rms_attention)[i]; }
  std::uint64_t floats() const;
  std::uint64_t bytes() const { return floats() * sizeof(float); }
};
LayerSlices layer_slices(const ModelConfig& config, const WeightLayout& layout, int layer);
LayerSlices packed_layer(const ModelConfig& config);

// Pointers to one layer's tensors.
struct LayerWeights {
  const float *rms_attention, *wq, *wk, *wv, *wo, *rms_ffn, *w1, *w2, *w3;
};
LayerWeights bind_layer(const LayerSlices& slices, const float* base);

// The weights every token reads last: final norm and classifier (which is
// the token embedding when shared).
TensorSlice classifier_slice(const ModelConfig& config, const WeightLayout& layout);
// How many of the first layers, after the classifier, fit in budget_bytes:
// the hot set to keep resident. 0 when not even the classifier fits.
int hot_layers_within(const ModelConfig& config, const WeightLayout& layout,
                      std::uint64_t budget_bytes);

struct FreeDeleter {
  void operator()(void* pointer) const;
};
using WeightBlock = std::unique_ptr<float[], FreeDeleter>;

// malloc()s a block for the layout; throws ModelError with the size on failure.
WeightBlock allocate_weights(const WeightLayout& layout);

// Fills the block with deterministic weights: each value depends only on
// (seed, offset), so any thread split gives the same model. Scales keep
// activations of order 1 through many layers.
void fill_synthetic_weights(const ModelConfig& config, const WeightLayout& layout, float* block,
                            std::uint64_t seed);

// Llama-7B-like shapes with grouped-query attention, for synthetic models.
ModelConfig synthetic_base_config();
// `base` with the fewest layers (>= 1) whose weights take at least
// `target_bytes`. Throws ModelError if one layer more would overflow int32.
ModelConfig config_for_weight_bytes(const ModelConfig& base, std::uint64_t target_bytes);

}  // namespace gmem_samples::llm
