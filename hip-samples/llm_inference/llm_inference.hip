// Decoding with a Llama-style model whose weights live in one malloc'd
// block that can be larger than the GPU's memory. The kernels read the
// weights in place; the kernel's memory manager pages them in and out, with
// or without MemoryHints (pinned hot set, next layer prefetched). A
// baseline streams the same weights with double-buffered hipMemcpyAsync.
// A CPU reference of the same model checks the logits of every run.
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
#include "memory_hints.hpp"

namespace {

using namespace gmem_samples;
using namespace gmem_samples::llm;

constexpr const char* kUsage =
    "usage: llm_inference [--checkpoint FILE | --weights SIZE | --weights-factor F]\n"
    "                     [--tokenizer FILE --prompt TEXT | --prompt-tokens T1,T2,...]\n"
    "                     [--tokens N] [--temperature T] [--top-p P] [--check-positions K]\n"
    "                     [--seed S] [--device D] [--hints on|off|both] [--baseline on|off]\n"
    "                     [--pin-fraction F]\n"
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
    "  --device D           GPU to use (default 0)\n"
    "  --hints              on: pin the hot set, prefetch the next layer while one\n"
    "                       runs; off: no hints; both (default): both, side by side\n"
    "  --baseline           on (default): also stream the same weights with\n"
    "                       double-buffered hipMemcpyAsync, timed alongside\n"
    "  --pin-fraction F     share of GPU memory for the pinned hot set (default 0.25;\n"
    "                       0: pin nothing)\n";

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

// Where the decoder finds each layer's weights. The decoder calls layer()
// before it queues layer l's kernels on `compute` and layer_done() after,
// so a source can order copies or prefetches around the kernels.
class LayerSource {
 public:
  virtual ~LayerSource() = default;
  virtual std::string name() const = 0;
  // Writes token's embedding row to the device vector x.
  virtual void embed(int token, float* x, hipStream_t compute) = 0;
  virtual LayerWeights layer(int layer, hipStream_t compute) = 0;
  virtual void layer_done(int layer, hipStream_t compute) = 0;
  // The final norm and classifier, after the last layer.
  virtual const float* rms_final(hipStream_t compute) = 0;
  virtual const float* classifier() = 0;
};

// Activations and the KV cache: small and hot, so they get device memory.
class DeviceDecoder {
 public:
  DeviceDecoder(const ModelConfig& config, int max_positions)
      : config_(config), max_positions_(max_positions) {
    const std::size_t dim = config.dim, hidden = config.hidden_dim, kv = config.kv_dim();
    const std::size_t cache = static_cast<std::size_t>(config.n_layers) * max_positions * kv;
    GMEM_HIP_CHECK(hipStreamCreateWithFlags(&stream_, hipStreamNonBlocking));
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
    (void)hipStreamSynchronize(stream_);
    for (float* buffer : owned_) (void)hipFree(buffer);
    (void)hipStreamDestroy(stream_);
  }
  DeviceDecoder(const DeviceDecoder&) = delete;
  DeviceDecoder& operator=(const DeviceDecoder&) = delete;

  hipStream_t stream() const { return stream_; }

  std::vector<float> forward(int token, int position, LayerSource& source) {
    const ModelConfig& c = config_;
    const int dim = c.dim, kv_dim = c.kv_dim(), hidden = c.hidden_dim;
    const std::size_t kv = kv_dim;
    source.embed(token, x_, stream_);
    for (int layer = 0; layer < c.n_layers; ++layer) {
      const LayerWeights w = source.layer(layer, stream_);
      const std::size_t l = layer;
      float* keys = keys_ + l * max_positions_ * kv;
      float* values = values_ + l * max_positions_ * kv;
      rmsnorm(normed_, x_, w.rms_attention, dim);
      matvec(q_, w.wq, normed_, dim, dim);
      matvec(keys + position * kv, w.wk, normed_, kv_dim, dim);
      matvec(values + position * kv, w.wv, normed_, kv_dim, dim);
      rope(q_, c.n_heads, position);
      rope(keys + position * kv, c.n_kv_heads, position);
      hipLaunchKernelGGL(attention_kernel, dim3(c.n_heads), dim3(kBlock), 0, stream_, attended_, q_,
                         keys, values, scores_, position, c.head_size(), kv_dim,
                         c.n_heads / c.n_kv_heads, max_positions_);
      matvec(projected_, w.wo, attended_, dim, dim);
      add(x_, projected_, dim);
      rmsnorm(normed_, x_, w.rms_ffn, dim);
      matvec(gate_, w.w1, normed_, hidden, dim);
      matvec(up_, w.w3, normed_, hidden, dim);
      hipLaunchKernelGGL(swiglu_kernel, dim3(grid_for(hidden, kBlock)), dim3(kBlock), 0, stream_,
                         gate_, up_, hidden);
      matvec(projected_, w.w2, gate_, dim, hidden);
      add(x_, projected_, dim);
      GMEM_HIP_CHECK_LAUNCH();
      source.layer_done(layer, stream_);
    }
    rmsnorm(normed_, x_, source.rms_final(stream_), dim);
    matvec(logits_, source.classifier(), normed_, c.vocab_size, dim);
    GMEM_HIP_CHECK_LAUNCH();
    std::vector<float> logits(c.vocab_size);
    GMEM_HIP_CHECK(hipMemcpyAsync(logits.data(), logits_, logits.size() * sizeof(float),
                                  hipMemcpyDeviceToHost, stream_));
    GMEM_HIP_CHECK(hipStreamSynchronize(stream_));
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
    hipLaunchKernelGGL(rmsnorm_kernel, dim3(1), dim3(kBlock), 0, stream_, out, x, weight, size);
  }
  void matvec(float* out, const float* matrix, const float* x, int rows, int cols) {
    hipLaunchKernelGGL(matvec_kernel, dim3(rows), dim3(kBlock), 0, stream_, out, matrix, x, cols);
  }
  void rope(float* vector, int heads, int position) {
    const int pairs = heads * config_.head_size() / 2;
    hipLaunchKernelGGL(rope_kernel, dim3(grid_for(pairs, kBlock)), dim3(kBlock), 0, stream_, vector,
                       heads, config_.head_size(), position);
  }
  void add(float* x, const float* delta, int size) {
    hipLaunchKernelGGL(add_kernel, dim3(grid_for(size, kBlock)), dim3(kBlock), 0, stream_, x, delta,
                       size);
  }

  ModelConfig config_;
  std::size_t max_positions_;
  hipStream_t stream_ = nullptr;
  std::vector<float*> owned_;
  float *x_, *normed_, *q_, *attended_, *projected_, *gate_, *up_, *logits_, *scores_, *keys_,
      *values_;
};

class Event {
 public:
  Event() { GMEM_HIP_CHECK(hipEventCreateWithFlags(&event_, hipEventDisableTiming)); }
  ~Event() { (void)hipEventDestroy(event_); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  void record(hipStream_t stream) { GMEM_HIP_CHECK(hipEventRecord(event_, stream)); }
  void wait_on(hipStream_t stream) { GMEM_HIP_CHECK(hipStreamWaitEvent(stream, event_, 0)); }

 private:
  hipEvent_t event_{};
};

class SideStream {
 public:
  SideStream() { GMEM_HIP_CHECK(hipStreamCreateWithFlags(&stream_, hipStreamNonBlocking)); }
  ~SideStream() {
    (void)hipStreamSynchronize(stream_);
    (void)hipStreamDestroy(stream_);
  }
  SideStream(const SideStream&) = delete;
  SideStream& operator=(const SideStream&) = delete;
  operator hipStream_t() const { return stream_; }

 private:
  hipStream_t stream_ = nullptr;
};

// The GMEM way: kernels read the malloc'd weights in place. With hints on,
// the hot set (classifier and the first layers that fit in --pin-fraction
// of GPU memory) is pinned on the GPU, and while layer l runs the next
// weights that are not pinned (layer l+1, or the classifier after the last
// layer, or layer 0 of the next token) are prefetched on a second stream;
// each layer's kernels wait for its prefetch.
class MallocLayers final : public LayerSource {
 public:
  MallocLayers(const ModelConfig& config, const WeightLayout& layout, const float* block,
               MemoryHints& hints, int device, std::uint64_t pin_budget)
      : config_(config), layout_(layout), block_(block), weights_(bind_weights(layout, block)),
        hints_(hints), device_(device), units_(config.n_layers + 1), pinned_(units_, false),
        ready_(units_) {
    if (!hints_.enabled() || pin_budget == 0) return;
    if (unit_bytes(config.n_layers) <= pin_budget) {
      pinned_[config.n_layers] = pin_unit(config.n_layers);
      for (int layer = 0; layer < hot_layers_within(config, layout, pin_budget); ++layer)
        pinned_[layer] = pin_unit(layer);
    }
    int pinned_layers = 0;
    std::uint64_t pinned_bytes = 0;
    for (int unit = 0; unit < units_; ++unit)
      if (pinned_[unit]) {
        pinned_layers += unit < config.n_layers ? 1 : 0;
        pinned_bytes += unit_bytes(unit);
      }
    std::printf("  hot set pinned on GPU %d: %s%d of %d layers = %s\n", device,
                pinned_[config.n_layers] ? "classifier and " : "", pinned_layers, config.n_layers,
                format_gib(pinned_bytes).c_str());
  }
  std::string name() const override {
    return std::string("malloc'd weights, hints ") + hints_mode_name(hints_.mode());
  }
  void embed(int token, float* x, hipStream_t compute) override {
    hipLaunchKernelGGL(copy_row, dim3(1), dim3(kBlock), 0, compute, x, weights_.token_embedding,
                       token, config_.dim);
  }
  LayerWeights layer(int layer, hipStream_t compute) override {
    if (hints_.enabled()) {
      if (!started_) {  // nothing was prefetched ahead of the very first layer
        started_ = true;
        prefetch(layer, compute);
      }
      prefetch(next_unit(layer), compute);
      if (!pinned_[layer]) ready_[layer].wait_on(compute);
    }
    return bind_layer(layer_slices(config_, layout_, layer), block_);
  }
  void layer_done(int, hipStream_t) override {}
  const float* rms_final(hipStream_t compute) override {
    if (hints_.enabled()) {
      prefetch(0, compute);  // the next token starts with layer 0
      if (!pinned_[config_.n_layers]) ready_[config_.n_layers].wait_on(compute);
    }
    return weights_.rms_final;
  }
  const float* classifier() override { return weights_.classifier; }
  void finish() {
    GMEM_HIP_CHECK(hipStreamSynchronize(prefetch_stream_));
    hints_.check_async();
  }

 private:
  int next_unit(int unit) const { return (unit + 1) % units_; }
  std::uint64_t unit_bytes(int unit) const {
    return unit == config_.n_layers ? classifier_slice(config_, layout_).count * sizeof(float)
                                    : layer_slices(config_, layout_, unit).bytes();
  }
  // A layer's tensors lie in nine places of the block, so hints go tensor
  // by tensor; the classifier is one range.
  template <typename Each>
  void for_each_range(int unit, Each&& each) const {
    if (unit == config_.n_layers) {
      const TensorSlice range = classifier_slice(config_, layout_);
      each(block_ + range.offset, range.count * sizeof(float));
      return;
    }
    const LayerSlices slices = layer_slices(config_, layout_, unit);
    for (int i = 0; i < LayerSlices::kTensors; ++i)
      each(block_ + slices[i].offset, slices[i].count * sizeof(float));
  }
  bool pin_unit(int unit) {
    bool all = true;
    for_each_range(unit, [&](const float* start, std::size_t bytes) {
      all = hints_.pin(start, bytes, device_) && all;
    });
    return all;
  }
  // Queues the unit's prefetch behind what `compute` has queued so far.
  void prefetch(int unit, hipStream_t compute) {
    if (pinned_[unit]) return;
    started_event_.record(compute);
    started_event_.wait_on(prefetch_stream_);
    for_each_range(unit, [&](const float* start, std::size_t bytes) {
      hints_.prefetch_async(start, bytes, device_, prefetch_stream_);
    });
    ready_[unit].record(prefetch_stream_);
  }

  ModelConfig config_;
  WeightLayout layout_;
  const float* block_;
  Weights weights_;
  MemoryHints& hints_;
  int device_;
  int units_;  // layers, then the classifier
  std::vector<bool> pinned_;
  std::vector<Event> ready_;
  Event started_event_;
  SideStream prefetch_stream_;
  bool started_ = false;
};

// What a ROCm user writes without GMEM: the weights stay in host memory
// (page-locked with hipHostRegister when the runtime allows it) and each
// layer is copied with hipMemcpyAsync into one of two device buffers on a
// copy stream, the next layer while the current one computes. The final
// norm and classifier are copied to the GPU once.
class StreamedLayers final : public LayerSource {
 public:
  StreamedLayers(const ModelConfig& config, const WeightLayout& layout, const float* block)
      : config_(config), layout_(layout), block_(block), weights_(bind_weights(layout, block)),
        packed_(packed_layer(config)) {
    const hipError_t registered =
        hipHostRegister(const_cast<float*>(block), layout.bytes(), hipHostRegisterDefault);
    registered_ = registered == hipSuccess;
    if (!registered_) {
      (void)hipGetLastError();
      std::printf("  note: hipHostRegister of the weights failed (%s); copies are from pageable "
                  "memory, staged by the runtime\n",
                  hipGetErrorName(registered));
    }
    for (float*& buffer : buffers_) GMEM_HIP_CHECK(hipMalloc(&buffer, packed_.bytes()));
    const std::uint64_t dim = config.dim, table = std::uint64_t(config.vocab_size) * dim;
    GMEM_HIP_CHECK(hipMalloc(&rms_final_, dim * sizeof(float)));
    GMEM_HIP_CHECK(hipMalloc(&classifier_, table * sizeof(float)));
    GMEM_HIP_CHECK(hipMemcpy(rms_final_, weights_.rms_final, dim * sizeof(float),
                             hipMemcpyHostToDevice));
    GMEM_HIP_CHECK(hipMemcpy(classifier_, weights_.classifier, table * sizeof(float),
                             hipMemcpyHostToDevice));
    std::printf("  device memory: 2 layer buffers of %s, classifier %s%s\n",
                format_gib(packed_.bytes()).c_str(), format_gib(table * sizeof(float)).c_str(),
                registered_ ? "; weights page-locked with hipHostRegister" : "");
  }
  ~StreamedLayers() override {
    (void)hipStreamSynchronize(copy_stream_);
    for (float* buffer : buffers_) (void)hipFree(buffer);
    (void)hipFree(rms_final_);
    (void)hipFree(classifier_);
    if (registered_) (void)hipHostUnregister(const_cast<float*>(block_));
  }
  std::string name() const override { return "hipMemcpyAsync double-buffered"; }
  void embed(int token, float* x, hipStream_t compute) override {
    GMEM_HIP_CHECK(hipMemcpyAsync(x, weights_.token_embedding + std::size_t(token) * config_.dim,
                                  config_.dim * sizeof(float), hipMemcpyHostToDevice, compute));
  }
  LayerWeights layer(int layer, hipStream_t compute) override {
    if (step_ == 0) copy(layer, 0);
    // The next layer goes into the other buffer once the kernels that read
    // it last (the step before this one) are done.
    const int next = (layer + 1) % config_.n_layers;
    const int other = (step_ + 1) % 2;
    if (step_ >= 1) consumed_[other].wait_on(copy_stream_);
    copy(next, other);
    copied_[step_ % 2].wait_on(compute);
    return bind_layer(packed_, buffers_[step_ % 2]);
  }
  void layer_done(int, hipStream_t compute) override {
    consumed_[step_ % 2].record(compute);
    ++step_;
  }
  const float* rms_final(hipStream_t) override { return rms_final_; }
  const float* classifier() override { return classifier_; }

 private:
  void copy(int layer, int buffer) {
    const LayerSlices source = layer_slices(config_, layout_, layer);
    for (int i = 0; i < LayerSlices::kTensors; ++i)
      GMEM_HIP_CHECK(hipMemcpyAsync(buffers_[buffer] + packed_[i].offset, block_ + source[i].offset,
                                    source[i].count * sizeof(float), hipMemcpyHostToDevice,
                                    copy_stream_));
    copied_[buffer].record(copy_stream_);
  }

  ModelConfig config_;
  WeightLayout layout_;
  const float* block_;
  Weights weights_;
  LayerSlices packed_;
  bool registered_ = false;
  float* buffers_[2] = {nullptr, nullptr};
  float* rms_final_ = nullptr;
  float* classifier_ = nullptr;
  Event copied_[2], consumed_[2];
  SideStream copy_stream_;
  std::uint64_t step_ = 0;
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

struct DecodeRun {
  std::string name;
  std::string key_suffix;  // of its RESULT keys
  std::vector<int> tokens;
  std::vector<std::vector<float>> checked_logits;  // at checked_positions
  double first_token_seconds = 0;
  double total_seconds = 0;
  double tokens_per_second = 0;
  double weight_gbps = 0;
};

struct DecodeSettings {
  std::vector<int> prompt;
  int to_generate = 0;
  int total_positions = 0;
  std::vector<int> checked_positions;
  SamplerSettings sampling;
  std::uint64_t seed = 1;
  const Tokenizer* tokenizer = nullptr;
  bool print_text = false;
};

// Decodes the prompt plus to_generate tokens through `source`. Every run
// samples with coins from the same seed, so identical logits give
// identical tokens.
DecodeRun decode(const ModelConfig& config, const WeightLayout& layout, LayerSource& source,
                 const DecodeSettings& settings) {
  DecodeRun run;
  run.name = source.name();
  DeviceDecoder decoder(config, settings.total_positions);
  CoinSource coins(settings.seed);
  run.tokens = settings.prompt;
  if (settings.print_text)
    std::printf("  %s", settings.tokenizer ? ("text: " + settings.tokenizer->decode_all(settings.prompt)).c_str()
                                           : "generated token ids:");
  WallTimer timer;
  for (int position = 0; position < settings.total_positions; ++position) {
    std::vector<float> logits = decoder.forward(run.tokens[position], position, source);
    if (std::find(settings.checked_positions.begin(), settings.checked_positions.end(), position) !=
        settings.checked_positions.end())
      run.checked_logits.push_back(logits);
    if (position + 1 < static_cast<int>(run.tokens.size())) continue;  // still reading the prompt
    run.tokens.push_back(sample_token(logits, settings.sampling, coins.next()));
    if (run.tokens.size() == settings.prompt.size() + 1) run.first_token_seconds = timer.seconds();
    if (settings.print_text) {
      if (settings.tokenizer)
        std::printf("%s", settings.tokenizer->decode(run.tokens[run.tokens.size() - 2], run.tokens.back()).c_str());
      else
        std::printf(" %d", run.tokens.back());
      std::fflush(stdout);
    }
  }
  run.total_seconds = timer.seconds();
  if (settings.print_text) std::printf("\n");
  run.tokens_per_second = settings.to_generate > 1
                              ? (settings.to_generate - 1) / (run.total_seconds - run.first_token_seconds)
                              : 0.0;
  run.weight_gbps =
      gigabytes_per_second(layout.bytes(), run.total_seconds / settings.total_positions);
  std::printf("  time to first token: %.2f s, decode: %.3f tokens/s (%.2f GB/s of weights)\n",
              run.first_token_seconds, run.tokens_per_second, run.weight_gbps);
  return run;
}

int run(ResultLine& result, int argc, char** argv) {
  CommandLine args(argc, argv,
                   {"checkpoint", "weights", "weights-factor", "prompt-tokens", "tokens",
                    "check-positions", "seed", "device", "tokenizer", "prompt", "temperature",
                    "top-p", "hints", "baseline", "pin-fraction"},
                   {});
  const int device = static_cast<int>(parse_unsigned(args.value_or("device", "0"), "--device"));
  DecodeSettings settings;
  settings.prompt = parse_int_list(args.value_or("prompt-tokens", "1"), "--prompt-tokens");
  settings.sampling.temperature = static_cast<float>(
      parse_one_double(args.value_or("temperature", "0"), "--temperature"));
  settings.sampling.top_p =
      static_cast<float>(parse_one_double(args.value_or("top-p", "0.9"), "--top-p"));
  if (settings.sampling.temperature < 0 || settings.sampling.top_p <= 0)
    throw UsageError("--temperature must be >= 0 and --top-p > 0");
  settings.seed = parse_unsigned(args.value_or("seed", "1"), "--seed");
  const std::string tokenizer_path = args.value_or("tokenizer", "");
  if (tokenizer_path.empty() && !args.value_or("prompt", "").empty())
    throw UsageError("--prompt needs --tokenizer (or give --prompt-tokens)");
  settings.to_generate = static_cast<int>(parse_unsigned(args.value_or("tokens", "16"), "--tokens"));
  const int check_positions =
      static_cast<int>(parse_unsigned(args.value_or("check-positions", "2"), "--check-positions"));
  if (settings.to_generate < 1) throw UsageError("--tokens must be at least 1");
  if (check_positions < 1)
    throw UsageError("--check-positions must be at least 1: results are only trusted when checked");
  const std::vector<HintsMode> modes = parse_hints_modes(args.value_or("hints", "both"));
  const std::string baseline = args.value_or("baseline", "on");
  if (baseline != "on" && baseline != "off") throw UsageError("--baseline must be on or off");
  const double pin_fraction = parse_one_double(args.value_or("pin-fraction", "0.25"), "--pin-fraction");
  if (pin_fraction >= 1) throw UsageError("--pin-fraction must be below 1");

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
    settings.prompt = tokenizer->encode(args.value_or("prompt", ""), true, false);
    std::printf("prompt: %zu tokens\n", settings.prompt.size());
  }
  settings.tokenizer = tokenizer.get();
  for (int token : settings.prompt)
    if (token >= config.vocab_size)
      throw UsageError("prompt token " + std::to_string(token) + " is outside the vocabulary of " +
                       std::to_string(config.vocab_size));
  settings.total_positions = static_cast<int>(settings.prompt.size()) + settings.to_generate - 1;
  if (settings.total_positions > config.seq_len)
    throw UsageError("prompt + generated tokens exceed the model's seq_len " +
                     std::to_string(config.seq_len));
  // The first positions, and the last one: later positions attend over a
  // longer KV cache, past the first attention block.
  for (int position = 0; position < std::min(check_positions, settings.total_positions); ++position)
    settings.checked_positions.push_back(position);
  if (settings.checked_positions.back() != settings.total_positions - 1)
    settings.checked_positions.push_back(settings.total_positions - 1);

  // The baseline goes first: hipHostRegister of the weights is refused by
  // amdkfd once the GPU has touched them as shared virtual memory.
  std::vector<DecodeRun> runs;
  if (baseline == "on") {
    std::printf("%s:\n", "hipMemcpyAsync double-buffered (weights copied layer by layer)");
    StreamedLayers streamed(config, model.layout, model.weights.get());
    settings.print_text = runs.empty();
    runs.push_back(decode(config, model.layout, streamed, settings));
    runs.back().key_suffix = "_memcpy";
  }
  const auto pin_budget = static_cast<std::uint64_t>(pin_fraction * static_cast<double>(gpu.total_bytes));
  for (const HintsMode mode : modes) {
    MemoryHints hints(mode);
    std::printf("malloc'd weights read in place, hints %s:\n", hints.describe().c_str());
    MallocLayers in_place(config, model.layout, model.weights.get(), hints, device, pin_budget);
    settings.print_text = runs.empty();
    runs.push_back(decode(config, model.layout, in_place, settings));
    in_place.finish();
    runs.back().key_suffix = hints.enabled() ? "" : "_nohints";
    for (const std::string& declined : hints.declined())
      std::printf("  not applied on this kernel: %s\n", declined.c_str());
  }
  if (runs.size() > 1 && tokenizer == nullptr) {
    std::printf("generated token ids:");
    for (std::size_t i = settings.prompt.size(); i < runs[0].tokens.size(); ++i)
      std::printf(" %d", runs[0].tokens[i]);
    std::printf("\n");
  }

  // The CPU reads the same malloc'd weights; pages on the GPU come back.
  // The reference runs every position up to the last checked one (its KV
  // cache needs them) on the first run's tokens; every run must have made
  // the same tokens and match at the checked positions.
  const DecodeRun& first = runs.front();
  std::printf("CPU reference over positions 0..%d, checking %zu of them in %zu run(s)...\n",
              settings.checked_positions.back(), settings.checked_positions.size(), runs.size());
  WallTimer cpu_timer;
  ReferenceDecoder reference(config, bind_weights(model.layout, model.weights.get()));
  bool verified = true;
  for (const DecodeRun& run : runs)
    if (run.tokens != first.tokens) {
      verified = false;
      std::printf("  %s generated other tokens than %s: MISMATCH\n", run.name.c_str(),
                  first.name.c_str());
    }
  double worst = 0.0;
  std::size_t next_check = 0;
  for (int position = 0; position <= settings.checked_positions.back(); ++position) {
    const std::vector<float> expected = reference.forward(first.tokens[position], position);
    if (position != settings.checked_positions[next_check]) continue;
    for (const DecodeRun& run : runs) {
      const std::vector<float>& gpu_logits = run.checked_logits[next_check];
      const double difference = max_relative_difference(gpu_logits, expected);
      const bool same_top = argmax(gpu_logits) == argmax(expected);
      worst = std::max(worst, difference);
      const bool ok = difference <= kLogitTolerance;
      verified &= ok;
      std::printf("  position %d, %s: max relative logit difference %.2e (limit %.0e), top token %s: %s\n",
                  position, run.name.c_str(), difference, kLogitTolerance,
                  same_top ? "same" : "differs", ok ? "ok" : "MISMATCH");
    }
    ++next_check;
  }
  std::printf("CPU reference took %.1f s\n", cpu_timer.seconds());

  SideBySide table("path");
  for (const DecodeRun& run : runs) {
    char text[48];
    std::snprintf(text, sizeof text, "%.2f s", run.first_token_seconds);
    table.set(run.name, "first token", text);
    std::snprintf(text, sizeof text, "%.3f", run.tokens_per_second);
    table.set(run.name, "tokens/s", text);
    std::snprintf(text, sizeof text, "%.2f", run.weight_gbps);
    table.set(run.name, "GB/s of weights", text);
    result.add("ttft_s" + run.key_suffix, run.first_token_seconds, 3)
        .add("tokens_per_s" + run.key_suffix, run.tokens_per_second, 3)
        .add("weight_GBps" + run.key_suffix, run.weight_gbps);
  }
  std::printf("%s", table.format().c_str());
  result.add("weights_GiB", to_gib(model.layout.bytes()))
      .add("gpu_factor", static_cast<double>(model.layout.bytes()) / static_cast<double>(gpu.total_bytes))
      .add("max_logit_rel_diff", worst, 6)
      .add("hints", args.value_or("hints", "both"));
  std::printf(verified ? "verified: GPU logits match the CPU reference\n"
                       : "FAILED: GPU logits differ from the CPU reference\n");
  return verified ? kExitVerified : kExitMismatch;
}

}  // namespace

int main(int argc, char** argv) {
  return run_sample_main("llm_inference", kUsage,
                         [&](ResultLine& result) { return run(result, argc, argv); });
}
