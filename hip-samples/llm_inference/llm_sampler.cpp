#include "llm_sampler.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace gmem_samples::llm {

int sample_token(const std::vector<float>& logits, const SamplerSettings& settings,
                 float coin) {
  if (settings.temperature <= 0.0f) return argmax(logits);
  // Softmax at the temperature, shifted by the maximum for stability.
  const float largest = logits[static_cast<std::size_t>(argmax(logits))];
  std::vector<double> probabilities(logits.size());
  double sum = 0;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    probabilities[i] = std::exp(static_cast<double>(logits[i] - largest) / settings.temperature);
    sum += probabilities[i];
  }
  for (double& p : probabilities) p /= sum;

  std::vector<int> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::size_t kept = order.size();
  if (settings.top_p < 1.0f) {
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      return probabilities[static_cast<std::size_t>(a)] > probabilities[static_cast<std::size_t>(b)];
    });
    double cumulative = 0;
    for (std::size_t i = 0; i < order.size(); ++i) {
      cumulative += probabilities[static_cast<std::size_t>(order[i])];
      if (cumulative > settings.top_p) {
        kept = i + 1;
        break;
      }
    }
  }
  double total = 0;
  for (std::size_t i = 0; i < kept; ++i) total += probabilities[static_cast<std::size_t>(order[i])];
  const double target = static_cast<double>(coin) * total;
  double cumulative = 0;
  for (std::size_t i = 0; i < kept; ++i) {
    cumulative += probabilities[static_cast<std::size_t>(order[i])];
    if (target < cumulative) return order[i];
  }
  return order[kept - 1];  // rounding left the coin just past the end
}

float CoinSource::next() {
  state_ ^= state_ >> 12;
  state_ ^= state_ << 25;
  state_ ^= state_ >> 27;
  const std::uint64_t mixed = state_ * 0x2545F4914F6CDD1DULL;
  return static_cast<float>(mixed >> 40) / 16777216.0f;  // 24 bits in [0, 1)
}

}  // namespace gmem_samples::llm
