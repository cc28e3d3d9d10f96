// Picking the next token from the logits: greedy at temperature 0, else
// softmax at the temperature and nucleus (top-p) sampling.
#pragma once

#include <cstdint>
#include <vector>

#include "llm_reference.hpp"  // argmax

namespace gmem_samples::llm {

struct SamplerSettings {
  float temperature = 0.0f;  // 0: always the largest logit
  float top_p = 0.9f;        // 1 or more: sample from the whole distribution
};

// `coin` is uniform in [0, 1); the same logits and coin give the same
// token. With top_p < 1 only the most likely tokens whose probabilities
// add up to more than top_p take part, renormalised.
int sample_token(const std::vector<float>& logits, const SamplerSettings& settings,
                 float coin);

// xorshift64*: a small, reproducible source of coins for the sampler.
class CoinSource {
 public:
  explicit CoinSource(std::uint64_t seed) : state_(seed != 0 ? seed : 0x9e3779b97f4a7c15ULL) {}
  float next();

 private:
  std::uint64_t state_;
};

}  // namespace gmem_samples::llm
