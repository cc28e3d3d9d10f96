// A GPU checksum of a uint32 buffer (the same terms as checksum_range()):
// each block reduces its threads' sums in shared memory and stores one
// partial; the host adds the partials. One store per block, so the kernel
// measures reading the data, not contention on one atomic in host memory.
#pragma once

#include <numeric>
#include <vector>

#include "hip_common.hpp"

namespace gmem_samples {

constexpr unsigned kChecksumBlock = 256;

__global__ void checksum_blocks_kernel(const std::uint32_t* data, std::uint64_t count,
                                       unsigned long long* partials) {
  __shared__ unsigned long long shared[kChecksumBlock];
  const std::uint64_t stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  unsigned long long local = 0;
  for (std::uint64_t i = static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       i < count; i += stride)
    local += checksum_term(i, data[i]);
  shared[threadIdx.x] = local;
  __syncthreads();
  for (unsigned half = kChecksumBlock / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) partials[blockIdx.x] = shared[0];
}

// Owns the partial sums in device memory for one device.
class GpuChecksum {
 public:
  explicit GpuChecksum(unsigned blocks = 8192) : blocks_(blocks), host_partials_(blocks) {
    GMEM_HIP_CHECK(hipMalloc(&partials_, blocks_ * sizeof(unsigned long long)));
  }
  ~GpuChecksum() { (void)hipFree(partials_); }
  GpuChecksum(const GpuChecksum&) = delete;
  GpuChecksum& operator=(const GpuChecksum&) = delete;

  // Queues the kernel on `stream`; result() waits for it.
  void launch(const std::uint32_t* data, std::uint64_t count, hipStream_t stream) {
    grid_ = grid_for(count, kChecksumBlock, blocks_);
    hipLaunchKernelGGL(checksum_blocks_kernel, dim3(grid_), dim3(kChecksumBlock), 0, stream, data,
                       count, partials_);
    GMEM_HIP_CHECK_LAUNCH();
    stream_ = stream;
  }
  std::uint64_t result() {
    GMEM_HIP_CHECK(hipMemcpyAsync(host_partials_.data(), partials_,
                                  grid_ * sizeof(unsigned long long), hipMemcpyDeviceToHost,
                                  stream_));
    GMEM_HIP_CHECK(hipStreamSynchronize(stream_));
    return std::accumulate(host_partials_.begin(), host_partials_.begin() + grid_,
                           std::uint64_t{0});
  }

 private:
  unsigned blocks_;
  unsigned grid_ = 0;
  hipStream_t stream_ = nullptr;
  unsigned long long* partials_ = nullptr;
  std::vector<unsigned long long> host_partials_;
};

}  // namespace gmem_samples
