#include <gtest/gtest.h>

#include "coherence_model.hpp"

namespace gmem_samples::coherence {
namespace {

TEST(CoherenceModel, SidesAlternateStartingWithTheGpu) {
  EXPECT_EQ(side_of_step(1), Side::kGpu);
  EXPECT_EQ(side_of_step(2), Side::kCpu);
  EXPECT_EQ(side_of_step(3), Side::kGpu);
}

TEST(CoherenceModel, ValueAfterReplaysEachStep) {
  for (std::uint64_t index : {0ull, 1ull, 4097ull, 1ull << 33}) {
    std::uint32_t value = initial_value(index);
    EXPECT_EQ(value_after(index, 0), value);
    for (std::uint32_t step = 1; step <= 9; ++step) {
      value = apply_step(value, index, step);
      EXPECT_EQ(value_after(index, step), value) << "index " << index << " step " << step;
    }
  }
}

TEST(CoherenceModel, EveryStepChangesTheValue) {
  // A step that left values unchanged could not prove the other side saw it.
  for (std::uint32_t step = 1; step <= 16; ++step)
    for (std::uint64_t index = 0; index < 1000; ++index)
      ASSERT_NE(value_after(index, step), value_after(index, step - 1))
          << "index " << index << " step " << step;
}

TEST(CoherenceModel, SkippedOrRepeatedStepIsVisible) {
  const std::uint64_t index = 42;
  const std::uint32_t after_two = value_after(index, 2);
  EXPECT_NE(apply_step(value_after(index, 1), index, 3), value_after(index, 3));  // step 2 skipped
  EXPECT_NE(apply_step(after_two, index, 2), after_two);                           // step 2 twice
}

TEST(CoherenceModel, AtomicTotalAndPingPongValues) {
  EXPECT_EQ(expected_atomic_total(16384, 1000, 8, 1000), 16392000u);
  EXPECT_EQ(ping_value(0), 1u);
  EXPECT_EQ(pong_value(0), 2u);
  EXPECT_EQ(ping_value(1), 3u);
  EXPECT_EQ(describe_step(0), "step 0: CPU fills the buffer");
  EXPECT_NE(describe_step(1).find("GPU checks the CPU's values"), std::string::npos);
}

}  // namespace
}  // namespace gmem_samples::coherence
