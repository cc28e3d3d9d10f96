#include "multi_gpu_partition.hpp"

#include <algorithm>
#include <stdexcept>

namespace gmem_samples::multi_gpu {

std::vector<Slice> partition(std::uint64_t count, int parts, std::uint64_t alignment) {
  if (parts < 1) throw std::invalid_argument("partition needs at least one part");
  if (alignment == 0) throw std::invalid_argument("partition alignment must be positive");
  const std::uint64_t blocks = (count + alignment - 1) / alignment;
  const auto n = static_cast<std::uint64_t>(parts);
  std::vector<Slice> slices;
  std::uint64_t next_block = 0;
  for (std::uint64_t part = 0; part < n; ++part) {
    // The first (blocks % n) slices take one extra block.
    const std::uint64_t slice_blocks = blocks / n + (part < blocks % n ? 1 : 0);
    const std::uint64_t begin = std::min(count, next_block * alignment);
    next_block += slice_blocks;
    const std::uint64_t end = std::min(count, next_block * alignment);
    slices.push_back(Slice{begin, end - begin});
  }
  return slices;
}

std::uint64_t block_rounded_bytes(std::uint64_t count) {
  const std::uint64_t bytes = std::max<std::uint64_t>(count, 1) * sizeof(std::uint32_t);
  return (bytes + kBlockBytes - 1) / kBlockBytes * kBlockBytes;
}

bool slices_start_on_blocks(std::uintptr_t base, const std::vector<Slice>& slices) {
  for (const Slice& slice : slices)
    if (slice.count != 0 && (base + slice.begin * sizeof(std::uint32_t)) % kBlockBytes != 0)
      return false;
  return true;
}

int owner_of(const std::vector<Slice>& slices, std::uint64_t index) {
  for (std::size_t i = 0; i < slices.size(); ++i)
    if (index >= slices[i].begin && index < slices[i].begin + slices[i].count)
      return static_cast<int>(i);
  throw std::out_of_range("index " + std::to_string(index) + " is in no slice");
}

std::uint32_t value_after_turns(std::uint64_t index, int devices) {
  std::uint32_t value = pattern_value(index, kSeed);
  for (int device = 0; device < devices; ++device) value = device_update(value, device, 0);
  return value;
}

std::uint32_t value_after_concurrent(std::uint64_t index, int devices, int owner) {
  return device_update(value_after_turns(index, devices), owner, 1);
}

}  // namespace gmem_samples::multi_gpu
