#include <gtest/gtest.h>

#include <stdexcept>

#include "multi_gpu_partition.hpp"

namespace gmem_samples::multi_gpu {
namespace {

void expect_covers(const std::vector<Slice>& slices, std::uint64_t count) {
  std::uint64_t next = 0;
  for (const Slice& slice : slices) {
    EXPECT_EQ(slice.begin, next);
    next += slice.count;
  }
  EXPECT_EQ(next, count);
}

TEST(Partition, EvenSplitOnAlignedBoundaries) {
  const auto slices = partition(1000, 4, 10);
  ASSERT_EQ(slices.size(), 4u);
  expect_covers(slices, 1000);
  for (const Slice& slice : slices) {
    EXPECT_EQ(slice.begin % 10, 0u);
    EXPECT_EQ(slice.count, 250u);
  }
}

TEST(Partition, UnevenBlocksGoToTheFirstSlices) {
  const auto slices = partition(105, 3, 10);  // 11 blocks: 4, 4, 3
  expect_covers(slices, 105);
  EXPECT_EQ(slices[0].count, 40u);
  EXPECT_EQ(slices[1].count, 40u);
  EXPECT_EQ(slices[2].count, 25u);
}

TEST(Partition, MorePartsThanBlocksLeavesEmptySlices) {
  const auto slices = partition(15, 4, 10);
  expect_covers(slices, 15);
  EXPECT_EQ(slices[0].count, 10u);
  EXPECT_EQ(slices[1].count, 5u);
  EXPECT_EQ(slices[2].count, 0u);
  EXPECT_EQ(slices[3].count, 0u);
  EXPECT_EQ(owner_of(slices, 14), 1);
  EXPECT_THROW(owner_of(slices, 15), std::out_of_range);
}

TEST(Partition, RejectsBadArguments) {
  EXPECT_THROW(partition(10, 0, 1), std::invalid_argument);
  EXPECT_THROW(partition(10, 2, 0), std::invalid_argument);
}

TEST(Partition, BlockSlicesOfABlockAlignedBufferStartOnBlocks) {
  const std::uint64_t count = 100'000'000;  // not a whole number of blocks
  const std::uint64_t bytes = block_rounded_bytes(count);
  EXPECT_EQ(bytes % kBlockBytes, 0u);
  EXPECT_GE(bytes, count * 4);
  EXPECT_LT(bytes - count * 4, kBlockBytes);
  const auto slices = partition(count, 3, kBlockBytes / 4);
  EXPECT_TRUE(slices_start_on_blocks(64 * kBlockBytes, slices));
  // What malloc typically returns: 16 bytes past a page. Not aligned, and said so.
  EXPECT_FALSE(slices_start_on_blocks(64 * kBlockBytes + 4096 + 16, slices));
  // Slices on element counts that are not block multiples are caught too.
  EXPECT_FALSE(slices_start_on_blocks(64 * kBlockBytes, partition(count, 3, 1000)));
  EXPECT_EQ(block_rounded_bytes(1), kBlockBytes);
}

TEST(MultiGpuValues, DependOnDeviceOrderAndOwner) {
  EXPECT_EQ(value_after_turns(9, 0), pattern_value(9, kSeed));
  EXPECT_EQ(value_after_turns(9, 2),
            device_update(device_update(pattern_value(9, kSeed), 0, 0), 1, 0));
  // Swapping the order of two GPUs changes the result: order is verified.
  EXPECT_NE(value_after_turns(9, 2),
            device_update(device_update(pattern_value(9, kSeed), 1, 0), 0, 0));
  EXPECT_NE(value_after_concurrent(9, 2, 0), value_after_concurrent(9, 2, 1));
}

}  // namespace
}  // namespace gmem_samples::multi_gpu
