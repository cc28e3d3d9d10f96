#include "llm_model.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "host_common.hpp"

namespace gmem_samples::llm {
namespace {

// Upper bounds that keep every offset far from uint64 overflow and every
// per-layer index inside int32 on the GPU.
constexpr std::int32_t kMaxDimension = 1 << 20;
constexpr std::int32_t kMaxLayers = 1 << 16;

void require_positive(std::int32_t value, const char* name) {
  if (value <= 0)
    throw ModelError(std::string(name) + " must be positive, got " + std::to_string(value));
  if (value > kMaxDimension)
    throw ModelError(std::string(name) + " is implausibly large: " + std::to_string(value));
}

std::uint64_t u64(std::int32_t value) { return static_cast<std::uint64_t>(value); }

std::uint64_t layer_floats(const ModelConfig& c) {
  const std::uint64_t dim = u64(c.dim), hidden = u64(c.hidden_dim), kv = u64(c.kv_dim());
  return 2 * dim                 // two RMSNorm weight vectors
         + 2 * dim * dim         // wq, wo
         + 2 * kv * dim          // wk, wv
         + 3 * hidden * dim;     // w1, w2, w3
}

std::uint64_t fixed_floats(const ModelConfig& c) {
  const std::uint64_t table = u64(c.vocab_size) * u64(c.dim);
  return table + u64(c.dim) + (c.shared_classifier ? 0 : table);
}

// splitmix64 finaliser: a well-mixed 64-bit hash of the offset.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Uniform in [-1, 1).
float unit_noise(std::uint64_t seed, std::uint64_t offset) {
  const std::uint64_t bits = mix(seed * 0x632BE59BD9B4E019ull + offset) >> 40;  // 24 bits
  return static_cast<float>(bits) / static_cast<float>(1u << 23) - 1.0f;
}

}  // namespace

void validate(const ModelConfig& c) {
  require_positive(c.dim, "dim");
  require_positive(c.hidden_dim, "hidden_dim");
  require_positive(c.n_heads, "n_heads");
  require_positive(c.n_kv_heads, "n_kv_heads");
  require_positive(c.vocab_size, "vocab_size");
  require_positive(c.seq_len, "seq_len");
  if (c.n_layers <= 0 || c.n_layers > kMaxLayers)
    throw ModelError("n_layers must be in 1.." + std::to_string(kMaxLayers) + ", got " +
                     std::to_string(c.n_layers));
  if (c.dim % c.n_heads != 0)
    throw ModelError("dim " + std::to_string(c.dim) + " is not divisible by n_heads " +
                     std::to_string(c.n_heads));
  if (c.head_size() % 2 != 0)
    throw ModelError("head size dim/n_heads = " + std::to_string(c.head_size()) +
                     " must be even for rotary embeddings");
  if (c.n_kv_heads > c.n_heads || c.n_heads % c.n_kv_heads != 0)
    throw ModelError("n_heads " + std::to_string(c.n_heads) + " must be a multiple of n_kv_heads " +
                     std::to_string(c.n_kv_heads));
}

std::string describe(const ModelConfig& c) {
  return "dim=" + std::to_string(c.dim) + " hidden_dim=" + std::to_string(c.hidden_dim) +
         " n_layers=" + std::to_string(c.n_layers) + " n_heads=" + std::to_string(c.n_heads) +
         " n_kv_heads=" + std::to_string(c.n_kv_heads) + " vocab_size=" +
         std::to_string(c.vocab_size) + " seq_len=" + std::to_string(c.seq_len) +
         (c.shared_classifier ? " (shared classifier)" : " (separate classifier)");
}

WeightLayout layout_for(const ModelConfig& c) {
  validate(c);
  const std::uint64_t dim = u64(c.dim), hidden = u64(c.hidden_dim), kv = u64(c.kv_dim());
  const std::uint64_t layers = u64(c.n_layers), vocab = u64(c.vocab_size);
  WeightLayout layout{};
  std::uint64_t next = 0;
  auto place = [&next](std::uint64_t floats) {
    const std::uint64_t offset = next;
    next += floats;
    return offset;
  };
  layout.token_embedding = place(vocab * dim);
  layout.rms_attention = place(layers * dim);
  layout.wq = place(layers * dim * dim);
  layout.wk = place(layers * kv * dim);
  layout.wv = place(layers * kv * dim);
  layout.wo = place(layers * dim * dim);
  layout.rms_ffn = place(layers * dim);
  layout.w1 = place(layers * hidden * dim);
  layout.w2 = place(layers * dim * hidden);
  layout.w3 = place(layers * hidden * dim);
  layout.rms_final = place(dim);
  layout.classifier = c.shared_classifier ? layout.token_embedding : place(vocab * dim);
  layout.total_floats = next;
  return layout;
}

Weights bind_weights(const WeightLayout& layout, const float* block) {
  return Weights{block + layout.token_embedding, block + layout.rms_attention, block + layout.wq,
                 block + layout.wk, block + layout.wv, block + layout.wo, block + layout.rms_ffn,
                 block + layout.w1, block + layout.w2, block + layout.w3, block + layout.rms_final,
                 block + layout.classifier};
}

void FreeDeleter::operator()(void* pointer) const { std::free(pointer); }

WeightBlock allocate_weights(const WeightLayout& layout) {
  // Plain malloc on purpose: the whole point is that the GPU reads it as is.
  auto* block = static_cast<float*>(std::malloc(layout.bytes()));
  if (block == nullptr)
    throw ModelError("cannot malloc " + format_gib(layout.bytes()) + " for the weights");
  return WeightBlock(block);
}

void fill_synthetic_weights(const ModelConfig& c, const WeightLayout& layout, float* block,
                            std::uint64_t seed) {
  const float embedding_scale = 1.0f;
  const float input_scale = 1.0f / std::sqrt(static_cast<float>(c.dim));
  const float hidden_scale = 1.0f / std::sqrt(static_cast<float>(c.hidden_dim));
  struct Range {
    std::uint64_t begin, end;
    float scale;
    float bias;  // RMSNorm gains sit around 1, matrices around 0
  };
  const std::uint64_t d = u64(c.dim);
  const Range ranges[] = {
      {layout.token_embedding, layout.rms_attention, embedding_scale, 0.0f},
      {layout.rms_attention, layout.wq, 0.1f, 1.0f},
      {layout.wq, layout.rms_ffn, input_scale, 0.0f},  // wq, wk, wv, wo: fan-in dim
      {layout.rms_ffn, layout.w1, 0.1f, 1.0f},
      {layout.w1, layout.w2, input_scale, 0.0f},
      {layout.w2, layout.w3, hidden_scale, 0.0f},
      {layout.w3, layout.rms_final, input_scale, 0.0f},
      {layout.rms_final, layout.rms_final + d, 0.1f, 1.0f},
      {c.shared_classifier ? layout.total_floats : layout.classifier, layout.total_floats,
       input_scale, 0.0f},
  };
  for (const Range& range : ranges) {
    if (range.begin >= range.end) continue;
    parallel_for(range.end - range.begin, [&](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) {
        const std::uint64_t offset = range.begin + i;
        block[offset] = range.bias + range.scale * unit_noise(seed, offset);
      }
    });
  }
}

ModelConfig synthetic_base_config() {
  ModelConfig c;
  c.dim = 4096;
  c.hidden_dim = 11008;
  c.n_layers = 1;
  c.n_heads = 32;
  c.n_kv_heads = 8;
  c.vocab_size = 32000;
  c.seq_len = 512;
  c.shared_classifier = false;
  return c;
}

ModelConfig config_for_weight_bytes(const ModelConfig& base, std::uint64_t target_bytes) {
  ModelConfig c = base;
  c.n_layers = 1;
  validate(c);
  const std::uint64_t target_floats = (target_bytes + sizeof(float) - 1) / sizeof(float);
  const std::uint64_t fixed = fixed_floats(c), per_layer = layer_floats(c);
  std::uint64_t layers = 1;
  if (target_floats > fixed + per_layer) layers = (target_floats - fixed + per_layer - 1) / per_layer;
  if (layers > static_cast<std::uint64_t>(kMaxLayers))
    throw ModelError("a " + format_gib(target_bytes) + " model needs " + std::to_string(layers) +
                     " layers of this shape, more than " + std::to_string(kMaxLayers));
  c.n_layers = static_cast<std::int32_t>(layers);
  return c;
}

std::uint64_t LayerSlices::floats() const {
  std::uint64_t total = 0;
  for (int i = 0; i < kTensors; ++i) total += (*this)[i].count;
  return total;
}

LayerSlices layer_slices(const ModelConfig& c, const WeightLayout& l, int layer) {
  if (layer < 0 || layer >= c.n_layers)
    throw ModelError("layer " + std::to_string(layer) + " is outside 0.." +
                     std::to_string(c.n_layers - 1));
  const std::uint64_t n = u64(layer), dim = u64(c.dim), hidden = u64(c.hidden_dim),
                      kv = u64(c.kv_dim());
  const auto slice = [n](std::uint64_t tensor, std::uint64_t per_layer) {
    return TensorSlice{tensor + n * per_layer, per_layer};
  };
  return LayerSlices{slice(l.rms_attention, dim), slice(l.wq, dim * dim), slice(l.wk, kv * dim),
                     slice(l.wv, kv * dim),       slice(l.wo, dim * dim), slice(l.rms_ffn, dim),
                     slice(l.w1, hidden * dim),   slice(l.w2, dim * hidden),
                     slice(l.w3, hidden * dim)};
}

LayerSlices packed_layer(const ModelConfig& c) {
  const WeightLayout layout = layout_for(c);
  LayerSlices packed = layer_slices(c, layout, 0);
  std::uint64_t next = 0;
  for (TensorSlice* slice = &packed.rms_attention; slice <= &packed.w3; ++slice) {
    slice->offset = next;
    next += slice->count;
  }
  return packed;
}

LayerWeights bind_layer(const LayerSlices& s, const float* base) {
  return LayerWeights{base + s.rms_attention.offset, base + s.wq.offset, base + s.wk.offset,
                      base + s.wv.offset,            base + s.wo.offset, base + s.rms_ffn.offset,
                      base + s.w1.offset,            base + s.w2.offset, base + s.w3.offset};
}

TensorSlice classifier_slice(const ModelConfig& c, const WeightLayout& l) {
  const std::uint64_t table = u64(c.vocab_size) * u64(c.dim);
  // rms_final and a separate classifier are adjacent at the block's end.
  if (!c.shared_classifier) return TensorSlice{l.rms_final, u64(c.dim) + table};
  return TensorSlice{l.token_embedding, table};
}

int hot_layers_within(const ModelConfig& c, const WeightLayout& l, std::uint64_t budget_bytes) {
  const std::uint64_t fixed = classifier_slice(c, l).count * sizeof(float);
  if (fixed > budget_bytes) return 0;
  const std::uint64_t per_layer = layer_slices(c, l, 0).bytes();
  return static_cast<int>(std::min<std::uint64_t>((budget_bytes - fixed) / per_layer, u64(c.n_layers)));
}

}  // namespace gmem_samples::llm
