// CPU reference of the decoder, written for clarity: the GPU logits are
// checked against it. Each building block is exposed for unit tests.
#pragma once

#include <cstdint>
#include <vector>

#include "llm_model.hpp"

namespace gmem_samples::llm {

constexpr float kRmsNormEpsilon = 1e-5f;
constexpr float kRopeBase = 10000.0f;

// out = x / sqrt(mean(x^2) + eps) * weight, elementwise.
void rmsnorm(float* out, const float* x, const float* weight, int size);
// out[r] = sum_c matrix[r * cols + c] * x[c]; accumulates in double.
void matvec(float* out, const float* matrix, const float* x, int rows, int cols);
// Rotates each (even, odd) pair of every head of `vector` by
// pos * base^(-pair_start / head_size), pair_start = 0, 2, 4, ...
void rope(float* vector, int heads, int head_size, int position);
// In place, numerically stable (subtracts the maximum).
void softmax(float* x, int size);
// SiLU(x) = x * sigmoid(x).
float silu(float x);

class ReferenceDecoder {
 public:
  ReferenceDecoder(const ModelConfig& config, const Weights& weights);
  // Runs one token at `position` (positions must come in order 0, 1, ...)
  // and returns the logits over the vocabulary.
  std::vector<float> forward(int token, int position);

 private:
  ModelConfig config_;
  Weights weights_;
  std::vector<float> key_cache_, value_cache_;  // [layer][position][kv_dim]
  int next_position_ = 0;
};

// Index of the largest logit; the lowest index wins ties.
int argmax(const std::vector<float>& logits);

// max_i |candidate[i] - reference[i]| / max_i |reference[i]|: how far GPU
// logits are from the CPU's, relative to the logit scale.
double max_relative_difference(const std::vector<float>& candidate,
                               const std::vector<float>& reference);

}  // namespace gmem_samples::llm
