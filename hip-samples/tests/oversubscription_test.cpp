#include <gtest/gtest.h>

#include "oversubscription_plan.hpp"

namespace gmem_samples::oversubscription {
namespace {

constexpr std::uint64_t kGiB = 1ull << 30;

TEST(OversubscriptionPlan, PlentyOfHostMemoryGivesExactMultiples) {
  const Plan plan = plan_runs(64 * kGiB, 1024 * kGiB, {0.5, 1.5, 2, 4});
  ASSERT_EQ(plan.runs.size(), 4u);
  EXPECT_TRUE(plan.notes.empty());
  EXPECT_EQ(plan.runs[0].bytes, 32 * kGiB);
  EXPECT_EQ(plan.runs[1].bytes, 96 * kGiB);
  EXPECT_EQ(plan.runs[2].bytes, 128 * kGiB);
  EXPECT_EQ(plan.runs[3].bytes, 256 * kGiB);
  for (const auto& run : plan.runs) {
    EXPECT_FALSE(run.capped);
    EXPECT_DOUBLE_EQ(run.actual_factor, run.requested_factor);
  }
}

TEST(OversubscriptionPlan, SizesAreWholeBlocks) {
  const std::uint64_t odd_gpu = 64 * kGiB - 12345;
  const Plan plan = plan_runs(odd_gpu, std::nullopt, {1.5});
  ASSERT_EQ(plan.runs.size(), 1u);
  EXPECT_EQ(plan.runs[0].bytes % kSizeGranularity, 0u);
  EXPECT_LE(plan.runs[0].bytes, static_cast<std::uint64_t>(1.5 * odd_gpu));
  EXPECT_GT(plan.runs[0].bytes + kSizeGranularity, static_cast<std::uint64_t>(1.5 * odd_gpu));
  ASSERT_EQ(plan.notes.size(), 1u);
  EXPECT_NE(plan.notes[0].find("host memory size unknown"), std::string::npos);
}

TEST(OversubscriptionPlan, CapsToHostMemoryAndSkipsRepeats) {
  // 64 GiB GPU, 200 GiB available: limit is 85% = 170 GiB.
  const Plan plan = plan_runs(64 * kGiB, 200 * kGiB, {1.5, 2, 4, 8});
  ASSERT_EQ(plan.runs.size(), 3u);
  EXPECT_EQ(plan.runs[1].bytes, 128 * kGiB);
  const PlannedRun& capped = plan.runs[2];
  EXPECT_TRUE(capped.capped);
  EXPECT_DOUBLE_EQ(capped.requested_factor, 4.0);
  EXPECT_EQ(capped.bytes % kSizeGranularity, 0u);
  EXPECT_LE(capped.bytes, static_cast<std::uint64_t>(0.85 * 200 * kGiB));
  EXPECT_GT(capped.bytes, static_cast<std::uint64_t>(0.85 * 200 * kGiB) - kSizeGranularity);
  EXPECT_NEAR(capped.actual_factor, 170.0 / 64.0, 0.01);
  ASSERT_EQ(plan.notes.size(), 2u);
  EXPECT_NE(plan.notes[0].find("4.00x capped to 2.66x"), std::string::npos) << plan.notes[0];
  EXPECT_NE(plan.notes[1].find("8.00x skipped"), std::string::npos) << plan.notes[1];
  EXPECT_NE(plan.notes[1].find("already run"), std::string::npos) << plan.notes[1];
}

TEST(OversubscriptionPlan, HostSmallerThanGpuCannotOversubscribe) {
  const Plan plan = plan_runs(64 * kGiB, 48 * kGiB, {0.5, 2});
  ASSERT_EQ(plan.runs.size(), 1u);  // only the fits-in-memory baseline
  EXPECT_EQ(plan.runs[0].bytes, 32 * kGiB);
  ASSERT_EQ(plan.notes.size(), 1u);
  EXPECT_NE(plan.notes[0].find("2.00x skipped: needs 128.00 GiB"), std::string::npos)
      << plan.notes[0];
}

TEST(OversubscriptionPlan, RejectsBadInput) {
  EXPECT_THROW(plan_runs(0, 100 * kGiB, {2}), UsageError);
  EXPECT_THROW(plan_runs(kGiB, 100 * kGiB, {0}), UsageError);
  EXPECT_THROW(plan_runs(kGiB, 100 * kGiB, {-1}), UsageError);
  EXPECT_THROW(plan_runs(kGiB, 100 * kGiB, {2}, 0.0), UsageError);
}

TEST(OversubscriptionPlan, ValueAfterPassesAppliesEachPass) {
  const std::uint32_t start = pattern_value(77, 11);
  EXPECT_EQ(value_after_passes(77, 11, 0), start);
  EXPECT_EQ(value_after_passes(77, 11, 2), stream_pass_update(stream_pass_update(start, 0), 1));
  EXPECT_NE(value_after_passes(77, 11, 2), value_after_passes(77, 11, 3));
}

TEST(OversubscriptionChunks, CoverTheBufferInWholeBlocksWithAShortLastOne) {
  const std::uint64_t mib = 1ull << 20;
  const auto chunks = split_into_chunks(9 * mib, 4 * mib);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].offset, 0u);
  EXPECT_EQ(chunks[1].offset, 4 * mib);
  EXPECT_EQ(chunks[2].offset, 8 * mib);
  EXPECT_EQ(chunks[2].bytes, 1 * mib);
  std::uint64_t covered = 0;
  for (const auto& chunk : split_into_chunks(1000 * mib, 3 * mib)) {
    EXPECT_EQ(chunk.offset, covered);
    EXPECT_EQ(chunk.offset % (2 * mib), 0u);  // 3 MiB became 4 MiB steps
    covered += chunk.bytes;
  }
  EXPECT_EQ(covered, 1000 * mib);
  EXPECT_THROW(split_into_chunks(0, mib), UsageError);
  EXPECT_THROW(split_into_chunks(mib, 0), UsageError);
}

TEST(OversubscriptionChunks, DefaultIsAnEighthOfTheGpuBetween2MiBAnd1GiB) {
  EXPECT_EQ(default_chunk_bytes(4ull << 30), 512ull << 20);
  EXPECT_EQ(default_chunk_bytes(64ull << 30), 1ull << 30);
  EXPECT_EQ(default_chunk_bytes(8ull << 20), 2ull << 20);
  EXPECT_EQ(default_chunk_bytes((4ull << 30) + 12345) % (2ull << 20), 0u);
}

}  // namespace
}  // namespace gmem_samples::oversubscription
