#include "llm_reference.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "host_common.hpp"

namespace gmem_samples::llm {

void rmsnorm(float* out, const float* x, const float* weight, int size) {
  double sum_of_squares = 0.0;
  for (int i = 0; i < size; ++i) sum_of_squares += static_cast<double>(x[i]) * x[i];
  const double scale = 1.0 / std::sqrt(sum_of_squares / size + kRmsNormEpsilon);
  for (int i = 0; i < size; ++i) out[i] = static_cast<float>(x[i] * scale * weight[i]);
}

void matvec(float* out, const float* matrix, const float* x, int rows, int cols) {
  auto rows_range = [&](std::size_t begin, std::size_t end) {
    for (std::size_t r = begin; r < end; ++r) {
      const float* row = matrix + r * static_cast<std::size_t>(cols);
      double sum = 0.0;
      for (int c = 0; c < cols; ++c) sum += static_cast<double>(row[c]) * x[c];
      out[r] = static_cast<float>(sum);
    }
  };
  // Threads only pay off for big matrices. parallel_for splits a count of
  // matrix elements; chunk bounds are rounded up to whole rows.
  if (static_cast<std::uint64_t>(rows) * cols >= (1u << 20)) {
    const std::size_t unit = static_cast<std::size_t>(cols);
    parallel_for(static_cast<std::size_t>(rows) * unit, [&](std::size_t begin, std::size_t end) {
      rows_range((begin + unit - 1) / unit, (end + unit - 1) / unit);
    });
  } else {
    rows_range(0, static_cast<std::size_t>(rows));
  }
}

void rope(float* vector, int heads, int head_size, int position) {
  for (int head = 0; head < heads; ++head) {
    float* h = vector + static_cast<std::size_t>(head) * head_size;
    for (int pair_start = 0; pair_start < head_size; pair_start += 2) {
      const double frequency =
          std::pow(static_cast<double>(kRopeBase), -static_cast<double>(pair_start) / head_size);
      const double angle = position * frequency;
      const double c = std::cos(angle), s = std::sin(angle);
      const double even = h[pair_start], odd = h[pair_start + 1];
      h[pair_start] = static_cast<float>(even * c - odd * s);
      h[pair_start + 1] = static_cast<float>(even * s + odd * c);
    }
  }
}

void softmax(float* x, int size) {
  const float largest = *std::max_element(x, x + size);
  double total = 0.0;
  for (int i = 0; i < size; ++i) {
    x[i] = std::exp(x[i] - largest);
    total += x[i];
  }
  for (int i = 0; i < size; ++i) x[i] = static_cast<float>(x[i] / total);
}

float silu(float x) { return x / (1.0f + std::exp(-x)); }

ReferenceDecoder::ReferenceDecoder(const ModelConfig& config, const Weights& weights)
    : config_(config), weights_(weights) {
  validate(config_);
  const std::size_t cache = static_cast<std::size_t>(config_.n_layers) * config_.seq_len *
                            config_.kv_dim();
  key_cache_.assign(cache, 0.0f);
  value_cache_.assign(cache, 0.0f);
}

std::vector<float> ReferenceDecoder::forward(int token, int position) {
  const ModelConfig& c = config_;
  if (token < 0 || token >= c.vocab_size) throw std::out_of_range("token id out of range");
  if (position != next_position_ || position >= c.seq_len)
    throw std::out_of_range("positions must be consecutive and below seq_len");
  ++next_position_;

  const int dim = c.dim, kv_dim = c.kv_dim(), hidden = c.hidden_dim, head_size = c.head_size();
  const int heads_per_kv = c.n_heads / c.n_kv_heads;
  const auto d = static_cast<std::size_t>(dim), kv = static_cast<std::size_t>(kv_dim),
             h = static_cast<std::size_t>(hidden);
  std::vector<float> x(weights_.token_embedding + token * d, weights_.token_embedding + (token + 1) * d);
  std::vector<float> normed(d), q(d), attended(d), projected(d), gate(h), up(h), scores(c.seq_len);

  for (int layer = 0; layer < c.n_layers; ++layer) {
    const auto l = static_cast<std::size_t>(layer);
    float* keys = key_cache_.data() + (l * c.seq_len) * kv;
    float* values = value_cache_.data() + (l * c.seq_len) * kv;
    float* key = keys + position * kv;
    float* value = values + position * kv;

    rmsnorm(normed.data(), x.data(), weights_.rms_attention + l * d, dim);
    matvec(q.data(), weights_.wq + l * d * d, normed.data(), dim, dim);
    matvec(key, weights_.wk + l * kv * d, normed.data(), kv_dim, dim);
    matvec(value, weights_.wv + l * kv * d, normed.data(), kv_dim, dim);
    rope(q.data(), c.n_heads, head_size, position);
    rope(key, c.n_kv_heads, head_size, position);

    for (int head = 0; head < c.n_heads; ++head) {
      const int kv_head = head / heads_per_kv;  // grouped-query attention
      const float* head_q = q.data() + head * head_size;
      for (int t = 0; t <= position; ++t) {
        const float* head_k = keys + t * kv + kv_head * head_size;
        double dot = 0.0;
        for (int i = 0; i < head_size; ++i) dot += static_cast<double>(head_q[i]) * head_k[i];
        scores[t] = static_cast<float>(dot / std::sqrt(static_cast<double>(head_size)));
      }
      softmax(scores.data(), position + 1);
      float* out = attended.data() + head * head_size;
      for (int i = 0; i < head_size; ++i) {
        double sum = 0.0;
        for (int t = 0; t <= position; ++t)
          sum += static_cast<double>(scores[t]) * values[t * kv + kv_head * head_size + i];
        out[i] = static_cast<float>(sum);
      }
    }
    matvec(projected.data(), weights_.wo + l * d * d, attended.data(), dim, dim);
    for (std::size_t i = 0; i < d; ++i) x[i] += projected[i];

    rmsnorm(normed.data(), x.data(), weights_.rms_ffn + l * d, dim);
    matvec(gate.data(), weights_.w1 + l * h * d, normed.data(), hidden, dim);
    matvec(up.data(), weights_.w3 + l * h * d, normed.data(), hidden, dim);
    for (std::size_t i = 0; i < h; ++i) gate[i] = silu(gate[i]) * up[i];
    matvec(projected.data(), weights_.w2 + l * d * h, gate.data(), dim, hidden);
    for (std::size_t i = 0; i < d; ++i) x[i] += projected[i];
  }
  rmsnorm(normed.data(), x.data(), weights_.rms_final, dim);
  std::vector<float> logits(static_cast<std::size_t>(c.vocab_size));
  matvec(logits.data(), weights_.classifier, normed.data(), c.vocab_size, dim);
  return logits;
}

int argmax(const std::vector<float>& logits) {
  if (logits.empty()) throw std::invalid_argument("argmax of an empty vector");
  return static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

double max_relative_difference(const std::vector<float>& candidate,
                               const std::vector<float>& reference) {
  if (candidate.size() != reference.size() || reference.empty())
    throw std::invalid_argument("logit vectors differ in size");
  double largest_reference = 0.0, largest_difference = 0.0;
  for (std::size_t i = 0; i < reference.size(); ++i) {
    largest_reference = std::max(largest_reference, std::fabs(static_cast<double>(reference[i])));
    largest_difference = std::max(
        largest_difference, std::fabs(static_cast<double>(candidate[i]) - reference[i]));
  }
  return largest_difference / std::max(largest_reference, 1e-30);
}

}  // namespace gmem_samples::llm
