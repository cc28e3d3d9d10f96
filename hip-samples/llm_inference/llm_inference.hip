// Greedy decoding with a Llama-style model whose weights live in one
// malloc'd block that can be larger than the GPU's memory. The kernels read
// the weights in place; the kernel's memory manager pages them in and out.
// A CPU reference of the same model checks the logits of the first tokens.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <vector>

#include "hip_common.hpp"
#include "llm_checkpoint.hpp"
#include "llm_model.hpp"
#include "llm_reference.hpp"
#include "llm_sampler.hpp"
#include "llm_tokenizer.hpp"

namespace {

using namespace gmem_samples;
using namespace gmem_samples::llm;

constexpr const char* kUsage =
    "usage: llm_inference [--checkpoint FILE | --weights SIZE | --weights-factor F]\n"
    "                     [--tokenizer FILE --prompt TEXT | --prompt-tokens T1,T2,...]\n"
    "                     [--tokens N] [--temperature T] [--top-p P] [--check-positions K]\n"
    "                     [--seed S] [--device D]\n"
    "  --checkpoint FILE    llama2.c format checkpoint (e.g. stories15M.bin)\n"
    "  --weights SIZE       synthetic model of at least SIZE bytes (e.g. 96G)\n"
    "  --weights-factor F   synthetic model of F x the GPU's memory (default 1.5)\n"
    "  --tokenizer FILE     llama2.c tokenizer (tokenizer.bin): the prompt is text\n"
    "                       and the output is printed as text\n"
    "  --prompt TEXT        prompt text (with --tokenizer; default empty)\n"
    "  --prompt-tokens      prompt token ids (default 1, the llama BOS token)\n"
    "  --tokens N           tokens to generate (default 16)\n"
    "  --temperature T      0 (default): greedy; else sampled at T\n"
    "  --top-p P            nucleus sampling threshold (default 0.9)\n"
    "  --check-positions K  the CPU reference checks the first K positions and the\n"
    "                       last one, past the first attention block (default 2)\n"
    "  --seed S             synthetic weight and sampling seed (default 1)\n"
    "  --device D           GPU to use (default 0)\n";

// GPU logits must match the CPU's within this share of the largest logit:
// both accumulate in a different order, the CPU in double.
constexpr double kLogitTolerance = 2e-3;
constexpr int kBlock = 256;

__device__ float block_sum(float value, float* shared) {
  shared[threadIdx.x] = value;
  __syncthreads();
  for (int half = kBlock / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) shared[threadIdx.x] += shared[threadIdx.x + half];
    __syncthreads();
  }
  const float total = shared[0];
  __syncthreads();
  return total;
}

__device__ float block_max(float value, float* shared) {
  shared[threadIdx.x] = value;
  __syncthreads();
  for (int half = kBlock / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half)
      shared[threadIdx.x] = fmaxf(shared[threadIdx.x], shared[threadIdx.x + half]);
    __syncthreads();
  }
  const float largest = shared[0];
  __syncthreads();
  return largest;
}

__global__ void copy_row(float* out, const float* table, int row, int size) {
  const float* source = table + static_cast<std::size_t>(row) * size;
  for (int i = threadIdx.x; i < size; i += blockDim.x) out[i] = source[i];
}

// One block; the vectors are at most a few thousand floats.
__global__ void rmsnorm_kernel(float* out, const float* x, const float* weight, int size) {
  __shared__ float shared[kBlock];
  float squares = 0.0f;
  for (int i = threadIdx.x; i < size; i += kBlock) squares += x[i] * x[i];
  const float scale = rsqrtf(block_sum(squares, shared) / size + kRmsNormEpsilon);
  for (int i = threadIdx.x; i < size; i += kBlock) out[i] = x[i] * scale * weight[i];
}

// One block per output row: consecutive threads read consecutive weights,
// so each row streams through memory once.
__global__ void matvec_kernel(float* out, const float* matrix, const float* x, int cols) {
  __shared__ float shared[kBlock];
  const float* row = matrix + static_cast<std::size_t>(blockIdx.x) * cols;
  float sum = 0.0f;
  for (int c = threadIdx.x; c < cols; c += kBlock) sum += row[c] * x[c];
  sum = block_sum(sum, shared);
  if (threadIdx.x == 0) out[blockIdx.x] = sum;
}

__global__ void rope_kernel(float* vector, int heads, int head_size, int position) {
  const int pairs = heads * head_size / 2;
  for (int pair = blockIdx.x * blockDim.x + threadIdx.x; pair < pairs;
       pair += gridDim.x * blockDim.x) {
    const int index = pair * 2;
    const int pair_start = index % head_size;
    const float frequency = powf(kRopeBase, -static_cast<float>(pair_start) / head_size);
    float s, c;
    sincosf(position * frequency, &s, &c);
    const float even = vector[index], odd = vector[index + 1];
    vector[index] = even * c - odd * s;
    vector[index + 1] = even * s + odd * c;
  }
}

// One block per query head; scores has room for [n_heads][positions].
__global__ void attention_kernel(float* out, const float* q, const float* keys, const float* values,
                                 float* scores, int position, int head_size, int kv_dim,
                                 int heads_per_kv, int max_positions) {
  __shared__ float shared[kBlock];
  const int head = blockIdx.x;
  const int kv_offset = (head / heads_per_kv) * head_size;
  const float* head_q = q + head * head_size;
  float* head_scores = scores + static_cast<std::size_t>(head) * max_positions;
  const float inverse_sqrt = rsqrtf(static_cast<float>(head_size));

  float largest = -INFINITY;
  for (int t = threadIdx.x; t <= position; t += kBlock) {
    const float* key = keys + static_cast<std::size_t>(t) * kv_dim + kv_offset;
    float dot = 0.0f;
    for (int i = 0; i < head_size; ++i) dot += head_q[i] * key[i];
    head_scores[t] = dot * inverse_sqrt;
    largest = fmaxf(largest, head_scores[t]);
  }
  largest = block_max(largest, shared);
  float total = 0.0f;
  for (int t = threadIdx.x; t <= position; t += kBlock) {
    head_scores[t] = expf(head_scores[t] - largest);
    total += head_scores[t];
  }
  total = block_sum(total, shared);  // also orders the score writes before the reads below
  for (int i = threadIdx.x; i < head_size; i += kBlock) {
    float sum = 0.0f;
    for (int t = 0; t <= position; ++t)
      sum += head_scores[t] * values[static_cast<std::size_t>(t) * kv_dim + kv_offset + i];
    out[head * head_size + i] = sum / total;
  }
}

__global__ void swiglu_kernel(float* gate, const float* up, int size) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < size; i += gridDim.x * blockDim.x) {
    const float g = gate[i];
    gate[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

__global__ void add_kernel(float* x, const float* delta, int size) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < size; i += gridDim.x * blockDim.x)
    x[i] += delta[i];
}

// Activations and the KV cache: small and hot, so they get device memory.
class DeviceDecoder {
 public:
  DeviceDecoder(const ModelConfig& config, const Weights& weights, int max_positions)
      : config_(config), weights_(weights), max_positions_(max_positions) {
    const std::size_t dim = config.dim, hidden = config.hidden_dim, kv = config.kv_dim();
    const std::size_t cache = static_cast<std::size_t>(config.n_layers) * max_positions * kv;
    x_ = device_floats(dim);
    normed_ = device_floats(dim);
    q_ = device_floats(dim);
    attended_ = device_floats(dim);
    projected_ = device_floats(dim);
    gate_ = device_floats(hidden);
    up_ = device_floats(hidden);
    logits_ = device_floats(config.vocab_size);
    scores_ = device_floats(static_cast<std::size_t>(config.n_heads) * max_positions);
    keys_ = device_floats(cache);
    values_ = device_floats(cache);
  }
  ~DeviceDecoder() {
    for (float* buffer : owned_) (void)hipFree(buffer);
  }
  DeviceDecoder(const DeviceDecoder&) = delete;
  DeviceDecoder& operator=(const DeviceDecoder&) = delete;

  std::vector<float> forward(int token, int position) {
    const ModelConfig& c = config_;
    const int dim = c.dim, kv_dim = c.kv_dim(), hidden = c.hidden_dim;
    const std::size_t d = dim, kv = kv_dim, h = hidden;
    hipLaunchKernelGGL(copy_row, dim3(1), dim3(kBlock), 0, nullptr, x_, weights_.token_embedding,
                       token, dim);
    for (int layer = 0; layer < c.n_layers; ++layer) {
      const std::size_t l = layer;
      float* keys = keys_ + l * max_positions_ * kv;
      float* values = values_ + l * max_positions_ * kv;
      rmsnorm(normed_, x_, weights_.rms_attention + l * d, dim);
      matvec(q_, weights_.wq + l * d * d, normed_, dim, dim);
      matvec(keys + position * kv, weights_.wk + l * kv * d, normed_, kv_dim, dim);
      matvec(values + position * kv, weights_.wv + l * kv * d, normed_, kv_dim, dim);
      rope(q_, c.n_heads, position);
      rope(keys + position * kv, c.n_kv_heads, position);
      hipLaunchKernelGGL(attention_kernel, dim3(c.n_heads), dim3(kBlock), 0, nullptr, attended_, q_,
                         keys, values, scores_, position, c.head_size(), kv_dim,
                         c.n_heads / c.n_kv_heads, max_positions_);
      matvec(projected_, weights_.wo + l * d * d, attended_, dim, dim);
      add(x_, projected_, dim);
      rmsnorm(normed_, x_, weights_.rms_ffn + l * d, dim);
      matvec(gate_, weights_.w1 + l * h * d, normed_, hidden, dim);
      matvec(up_, weights_.w3 + l * h * d, normed_, hidden, dim);
      hipLaunchKernelGGL(swiglu_kernel, dim3(grid_for(h, kBlock)), dim3(kBlock), 0, nullptr, gate_,
                         up_, hidden);
      matvec(projected_, weights_.w2 + l * d * h, gate_, dim, hidden);
      add(x_, projected_, dim);
    }
    rmsnorm(normed_, x_, weights_.rms_final, dim);
    matvec(logits_, weights_.classifier, normed_, c.vocab_size, dim);
    GMEM_HIP_CHECK_LAUNCH();
    std::vector<float> logits(c.vocab_size);
    GMEM_HIP_CHECK(hipMemcpy(logits.data(), logits_, logits.size() * sizeof(float),
                             hipMemcpyDeviceToHost));
    return logits;
  }

 private:
  float* device_floats(std::size_t count) {
    float* buffer = nullptr;
    GMEM_HIP_CHECK(hipMalloc(&buffer, std::max<std::size_t>(count, 1) * sizeof(float)));
    owned_.push_back(buffer);
    return buffer;
  }
  void rmsnorm(float* out, const float* x, const float* weight, int size) {
    hipLaunchKernelGGL(rmsnorm_kernel, dim3(1), dim3(kBlock), 0, nullptr, out, x, weight, size);
  }
  void matvec(float* out, const float* matrix, const float* x, int rows, int cols) {
    hipLaunchKernelGGL(matvec_kernel, dim3(rows), dim3(kBlock), 0, nullptr, out, matrix, x, cols);
  }
  void rope(float* vector, int heads, int position) {
    const int pairs = heads * config_.head_size() / 2;
    hipLaunchKernelGGL(rope_kernel, dim3(grid_for(pairs, kBlock)), dim3(kBlock), 0, nullptr, vector,
                       heads, config_.head_size(), position);
  }
  void add(float* x, const float* delta, int size) {
    hipLaunchKernelGGL(add_kernel, dim3(grid_for(size, kBlock)), dim3(kBlock), 0, nullptr, x, delta,
                       size);
  }

  ModelConfig config_;
  Weights weights_;
  std::size_t max_positions_;
  std::vector<float*> owned_;
  float *x_, *normed_, *q_, *attended_, *projected_, *gate_, *up_, *logits_, *scores_, *keys_,
      *values_;
};

struct Model {
  ModelConfig config;
  WeightLayout layout;
  WeightBlock weights;
};

Model build_model(const CommandLine& args, const GpuInfo& gpu) {
  if (auto path = args.value("checkpoint")) {
    if (args.has("weights") || args.has("weights-factor"))
      throw UsageError("--checkpoint cannot be combined with --weights or --weights-factor");
    WallTimer timer;
    LoadedModel loaded = load_checkpoint(*path);
    std::printf("loaded %s (%s) in %.1f s\n", path->c_str(), format_gib(loaded.layout.bytes()).c_str(),
                timer.seconds());
    return Model{loaded.config, loaded.layout, std::move(loaded.weights)};
  }
  if (args.has("weights") && args.has("weights-factor"))
    throw UsageError("give either --weights or --weights-factor");
  const std::uint64_t target =
      args.has("weights")
          ? parse_byte_size(*args.value("weights"))
          : static_cast<std::uint64_t>(
                parse_positive_double(args.value_or("weights-factor", "1.5"), "--weights-factor") *
                static_cast<double>(gpu.total_bytes));
  const ModelConfig config = config_for_weight_bytes(synthetic_base_config(), target);
  const WeightLayout layout = layout_for(config);
  if (auto host = host_available_bytes(); host && layout.bytes() > *host * 0.85)
    throw CannotRun("the " + format_gib(layout.bytes()) + " model does not fit in 85% of the " +
                    format_gib(*host) + " of available host memory; pass a smaller "
                    "--weights or --weights-factor");
  const std::uint64_t seed = parse_unsigned(args.value_or("seed", "1"), "--seed");
  WallTimer timer;
  Model model{config, layout, allocate_weights(layout)};
  fill_synthetic_weights(config, layout, model.weights.get(), seed);
  std::printf("generated %s of synthetic weights (seed %llu) in %.1f s\n",
              format_gib(layout.bytes()).c_str(), static_cast<unsigned long long>(seed),
              timer.seconds());
  return model;
}

// A number >= 0 (parse_double_list takes only positive ones, and a
// temperature of 0 means greedy).
double parse_one_double(const std::string& text, const std::string& what) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(value >= 0) || !std::isfinite(value))
    throw UsageError(what + " must be a number >= 0, got '" + text + "'");
  return value;
}

int run(ResultLine& result, int argc, char** argv) {
  CommandLine args(argc, argv,
                   {"checkpoint", "weights", "weights-factor", "prompt-tokens", "tokens",
                    "check-positions", "seed", "device", "tokenizer", "prompt", "temperature",
                    "top-p"},
                   {});
  const int device = static_cast<int>(parse_unsigned(args.value_or("device", "0"), "--device"));
  std::vector<int> prompt = parse_int_list(args.value_or("prompt-tokens", "1"), "--prompt-tokens");
  SamplerSettings sampling;
  sampling.temperature = static_cast<float>(
      parse_one_double(args.value_or("temperature", "0"), "--temperature"));
  sampling.top_p = static_cast<float>(parse_one_double(args.value_or("top-p", "0.9"), "--top-p"));
  if (sampling.temperature < 0 || sampling.top_p <= 0)
    throw UsageError("--temperature must be >= 0 and --top-p > 0");
  CoinSource coins(parse_unsigned(args.value_or("seed", "1"), "--seed"));
  const std::string tokenizer_path = args.value_or("tokenizer", "");
  if (tokenizer_path.empty() && !args.value_or("prompt", "").empty())
    throw UsageError("--prompt needs --tokenizer (or give --prompt-tokens)");
  const int to_generate = static_cast<int>(parse_unsigned(args.value_or("tokens", "16"), "--tokens"));
  const int check_positions =
      static_cast<int>(parse_unsigned(args.value_or("check-positions", "2"), "--check-positions"));
  if (to_generate < 1) throw UsageError("--tokens must be at least 1");
  if (check_positions < 1)
    throw UsageError("--check-positions must be at least 1: results are only trusted when checked");

  const GpuInfo gpu = require_xnack_gpu(device);
  print_gpu(gpu);
  GMEM_HIP_CHECK(hipSetDevice(device));

  Model model = build_model(args, gpu);
  const ModelConfig& config = model.config;
  std::printf("model: %s\nweights: %s in malloc'd memory = %.2fx the GPU's %s\n",
              describe(config).c_str(), format_gib(model.layout.bytes()).c_str(),
              static_cast<double>(model.layout.bytes()) / static_cast<double>(gpu.total_bytes),
              format_gib(gpu.total_bytes).c_str());
  std::unique_ptr<Tokenizer> tokenizer;
  if (!tokenizer_path.empty()) {
    tokenizer = std::make_unique<Tokenizer>(Tokenizer::load(tokenizer_path, config.vocab_size));
    prompt = tokenizer->encode(args.value_or("prompt", ""), true, false);
    std::printf("prompt: %zu tokens\n", prompt.size());
  }
  for (int token : prompt)
    if (token >= config.vocab_size)
      throw UsageError("prompt token " + std::to_string(token) + " is outside the vocabulary of " +
                       std::to_string(config.vocab_size));
  const int total_positions = static_cast<int>(prompt.size()) + to_generate - 1;
  if (total_positions > config.seq_len)
    throw UsageError("prompt + generated tokens exceed the model's seq_len " +
                     std::to_string(config.seq_len));

  const Weights weights = bind_weights(model.layout, model.weights.get());
  DeviceDecoder decoder(config, weights, total_positions);
  std::vector<int> tokens = prompt;
  // The first positions, and the last one: later positions attend over a
  // longer KV cache, past the first attention block.
  std::vector<int> checked_positions;
  for (int position = 0; position < std::min(check_positions, total_positions); ++position)
    checked_positions.push_back(position);
  if (checked_positions.back() != total_positions - 1)
    checked_positions.push_back(total_positions - 1);
  std::vector<std::vector<float>> checked_logits;

  WallTimer timer;
  double first_token_seconds = 0.0;
  if (tokenizer) {
    std::printf("text: %s", tokenizer->decode_all(prompt).c_str());
  } else {
    std::printf("generated token ids:");
  }
  for (int position = 0; position < total_positions; ++position) {
    std::vector<float> logits = decoder.forward(tokens[position], position);
    if (std::find(checked_positions.begin(), checked_positions.end(), position) !=
        checked_positions.end())
      checked_logits.push_back(logits);
    if (position + 1 < static_cast<int>(tokens.size())) continue;  // still reading the prompt
    tokens.push_back(sample_token(logits, sampling, coins.next()));
    if (tokens.size() == prompt.size() + 1) first_token_seconds = timer.seconds();
    if (tokenizer)
      std::printf("%s", tokenizer->decode(tokens[tokens.size() - 2], tokens.back()).c_str());
    else
      std::printf(" %d", tokens.back());
    std::fflush(stdout);
  }
  const double total_seconds = timer.seconds();
  std::printf("\n");
  const double decode_tokens_per_second =
      to_generate > 1 ? (to_generate - 1) / (total_seconds - first_token_seconds) : 0.0;
  const double weight_gbps = gigabytes_per_second(model.layout.bytes(), total_seconds / total_positions);
  std::printf("time to first token: %.2f s, decode: %.3f tokens/s (%.2f GB/s of weights)\n",
              first_token_seconds, decode_tokens_per_second, weight_gbps);

  // The CPU reads the same malloc'd weights; pages on the GPU come back.
  // The reference runs every position up to the last checked one (its KV
  // cache needs them) and compares the checked ones.
  std::printf("CPU reference over positions 0..%d, checking %zu of them...\n",
              checked_positions.back(), checked_positions.size());
  WallTimer cpu_timer;
  ReferenceDecoder reference(config, weights);
  bool verified = true;
  double worst = 0.0;
  std::size_t next_check = 0;
  for (int position = 0; position <= checked_positions.back(); ++position) {
    const std::vector<float> expected = reference.forward(tokens[position], position);
    if (position != checked_positions[next_check]) continue;
    const std::vector<float>& gpu_logits = checked_logits[next_check++];
    const double difference = max_relative_difference(gpu_logits, expected);
    const bool same_top = argmax(gpu_logits) == argmax(expected);
    worst = std::max(worst, difference);
    const bool ok = difference <= kLogitTolerance;
    verified &= ok;
    std::printf("  position %d: max relative logit difference %.2e (limit %.0e), top token %s: %s\n",
                position, difference, kLogitTolerance, same_top ? "same" : "differs",
                ok ? "ok" : "MISMATCH");
  }
  std::printf("CPU reference took %.1f s\n", cpu_timer.seconds());

  result.add("weights_GiB", to_gib(model.layout.bytes()))
      .add("gpu_factor", static_cast<double>(model.layout.bytes()) / static_cast<double>(gpu.total_bytes))
      .add("ttft_s", first_token_seconds, 3)
      .add("tokens_per_s", decode_tokens_per_second, 3)
      .add("weight_GBps", weight_gbps)
      .add("max_logit_rel_diff", worst, 6);
  std::printf(verified ? "verified: GPU logits match the CPU reference\n"
                       : "FAILED: GPU logits differ from the CPU reference\n");
  return verified ? kExitVerified : kExitMismatch;
}

}  // namespace

int main(int argc, char** argv) {
  return run_sample_main("llm_inference", kUsage,
                         [&](ResultLine& result) { return run(result, argc, argv); });
}
