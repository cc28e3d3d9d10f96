// Tiny hand-checkable models shared by the LLM tests.
#pragma once

#include <vector>

#include "llm_model.hpp"

namespace gmem_samples::llm::testing {

// dim 2, one layer, one head, vocabulary of two, shared classifier.
inline ModelConfig tiny_config() {
  ModelConfig c;
  c.dim = 2;
  c.hidden_dim = 2;
  c.n_layers = 1;
  c.n_heads = 1;
  c.n_kv_heads = 1;
  c.vocab_size = 2;
  c.seq_len = 4;
  c.shared_classifier = true;
  return c;
}

struct TinyModel {
  ModelConfig config = tiny_config();
  WeightLayout layout = layout_for(config);
  std::vector<float> block = std::vector<float>(layout.total_floats, 0.0f);

  void set(std::uint64_t offset, std::initializer_list<float> values) {
    std::copy(values.begin(), values.end(), block.begin() + static_cast<std::ptrdiff_t>(offset));
  }
  Weights weights() const { return bind_weights(layout, block.data()); }
};

}  // namespace gmem_samples::llm::testing
