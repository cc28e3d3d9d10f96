// How the multi-GPU sample splits one buffer and what every element must
// hold after each phase. Host code, unit-tested without GPUs.
#pragma once

#include <cstdint>
#include <vector>

#include "host_common.hpp"

namespace gmem_samples::multi_gpu {

struct Slice {
  std::uint64_t begin = 0;
  std::uint64_t count = 0;
};

// Splits [0, count) into `parts` contiguous slices whose boundaries fall on
// multiples of `alignment` elements (so two GPUs never share a migration
// block), as evenly as that allows. Slices may be empty when count is small.
// Throws std::invalid_argument for parts < 1 or alignment 0.
std::vector<Slice> partition(std::uint64_t count, int parts, std::uint64_t alignment);

// The migration block both GMEM and amdkfd move: slices start on it.
constexpr std::uint64_t kBlockBytes = 2ull << 20;
// Bytes to allocate for `count` uint32 elements: whole blocks, so an
// aligned_alloc(kBlockBytes, ...) of it is valid and every slice boundary
// that partition() puts on a block multiple is a real block boundary.
std::uint64_t block_rounded_bytes(std::uint64_t count);
// True when every non-empty slice of uint32 elements starts on a
// kBlockBytes boundary of memory at `base`.
bool slices_start_on_blocks(std::uintptr_t base, const std::vector<Slice>& slices);

// Which slice holds `index`.
int owner_of(const std::vector<Slice>& slices, std::uint64_t index);

constexpr std::uint32_t kSeed = 23;

// Update applied by GPU `device` in phase `phase` (0: in turn, 1: concurrent).
GMEM_HD inline std::uint32_t device_update(std::uint32_t value, int device, int phase) {
  return value * 5u + static_cast<std::uint32_t>(device) * 7u + static_cast<std::uint32_t>(phase) + 1u;
}

// After phase 0: every device, in order 0..devices-1, updated every element.
std::uint32_t value_after_turns(std::uint64_t index, int devices);
// After phase 1: the owner of the element's slice updated it once more.
std::uint32_t value_after_concurrent(std::uint64_t index, int devices, int owner);

}  // namespace gmem_samples::multi_gpu
