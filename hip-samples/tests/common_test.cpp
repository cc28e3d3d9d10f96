#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <numeric>
#include <vector>

#include "host_common.hpp"

namespace gmem_samples {
namespace {

TEST(ResultLine, FormatsFieldsInOrder) {
  ResultLine line("demo");
  line.add("bytes", std::uint64_t{4096}).add("rate", 1.23456, 3).add("note", "two words");
  EXPECT_EQ(line.format("PASS"), "RESULT sample=demo status=PASS bytes=4096 rate=1.235 note=two_words");
}

TEST(ResultLine, StatusFollowsExitCode) {
  EXPECT_STREQ(status_for_exit_code(kExitVerified), "PASS");
  EXPECT_STREQ(status_for_exit_code(kExitMismatch), "FAIL");
  EXPECT_STREQ(status_for_exit_code(kExitCannotRun), "SKIP");
  EXPECT_STREQ(status_for_exit_code(kExitError), "ERROR");
  EXPECT_STREQ(status_for_exit_code(139), "ERROR");
}

TEST(Sizes, ParsesSuffixes) {
  EXPECT_EQ(parse_byte_size("4096"), 4096u);
  EXPECT_EQ(parse_byte_size("64K"), 65536u);
  EXPECT_EQ(parse_byte_size("512M"), 512ull << 20);
  EXPECT_EQ(parse_byte_size("1.5G"), 3ull << 29);
  EXPECT_EQ(parse_byte_size("2GiB"), 2ull << 30);
  EXPECT_EQ(parse_byte_size("1t"), 1ull << 40);
}

TEST(Sizes, RejectsGarbage) {
  EXPECT_THROW(parse_byte_size(""), UsageError);
  EXPECT_THROW(parse_byte_size("G"), UsageError);
  EXPECT_THROW(parse_byte_size("12Q"), UsageError);
  EXPECT_THROW(parse_byte_size("-1G"), UsageError);
  EXPECT_THROW(parse_byte_size("0"), UsageError);
}

TEST(Sizes, GigabytesPerSecond) {
  EXPECT_DOUBLE_EQ(gigabytes_per_second(2'000'000'000, 2.0), 1.0);
  EXPECT_DOUBLE_EQ(gigabytes_per_second(100, 0.0), 0.0);
  EXPECT_EQ(format_gib(3ull << 29), "1.50 GiB");
}

TEST(Numbers, ParsesListsAndRejectsBadValues) {
  EXPECT_EQ(parse_double_list("0.5,1.5,4", "--factors"), (std::vector<double>{0.5, 1.5, 4.0}));
  EXPECT_EQ(parse_int_list("1,22,333", "--tokens"), (std::vector<int>{1, 22, 333}));
  EXPECT_THROW(parse_double_list("1,,2", "--factors"), UsageError);
  EXPECT_THROW(parse_double_list("1,x", "--factors"), UsageError);
  EXPECT_THROW(parse_double_list("-2", "--factors"), UsageError);
  EXPECT_THROW(parse_int_list("1,-2", "--tokens"), UsageError);
  EXPECT_THROW(parse_int_list("99999999999", "--tokens"), UsageError);
  EXPECT_THROW(parse_unsigned("12a", "--n"), UsageError);
  EXPECT_EQ(parse_unsigned("0", "--n"), 0u);
  EXPECT_THROW(parse_positive_double("1.5x", "--f"), UsageError);
}

TEST(CommandLine, AcceptsBothValueForms) {
  const char* argv[] = {"prog", "--size=2G", "--device", "1", "--verbose"};
  CommandLine args(5, argv, {"size", "device"}, {"verbose"});
  EXPECT_EQ(args.value_or("size", ""), "2G");
  EXPECT_EQ(args.value_or("device", ""), "1");
  EXPECT_TRUE(args.has("verbose"));
  EXPECT_FALSE(args.has("missing"));
  EXPECT_EQ(args.value_or("missing", "fallback"), "fallback");
}

TEST(CommandLine, HelpIsItsOwnOutcomeWhereverItStands) {
  const char* alone[] = {"sample", "--help"};
  EXPECT_THROW(CommandLine(2, alone, {"size"}, {}), HelpRequested);
  const char* after_options[] = {"sample", "--size", "4K", "-h"};
  EXPECT_THROW(CommandLine(4, after_options, {"size"}, {}), HelpRequested);
}

TEST(CommandLine, RejectsUnknownAndIncomplete) {
  const char* unknown[] = {"prog", "--sise=2G"};
  EXPECT_THROW(CommandLine(2, unknown, {"size"}, {}), UsageError);
  const char* dangling[] = {"prog", "--size"};
  EXPECT_THROW(CommandLine(2, dangling, {"size"}, {}), UsageError);
  const char* positional[] = {"prog", "2G"};
  EXPECT_THROW(CommandLine(2, positional, {"size"}, {}), UsageError);
  const char* flag_with_value[] = {"prog", "--verbose=1"};
  EXPECT_THROW(CommandLine(2, flag_with_value, {}, {"verbose"}), UsageError);
}

TEST(Xnack, ReadsModeFromArchitectureName) {
  EXPECT_EQ(xnack_mode_from_arch_name("gfx90a:sramecc+:xnack+"), XnackMode::kEnabled);
  EXPECT_EQ(xnack_mode_from_arch_name("gfx942:sramecc+:xnack-"), XnackMode::kDisabled);
  EXPECT_EQ(xnack_mode_from_arch_name("gfx1030"), XnackMode::kNotReported);
  EXPECT_EQ(xnack_mode_from_arch_name("gfx90a:xnack"), XnackMode::kNotReported);
  EXPECT_EQ(base_arch_name("gfx90a:sramecc+:xnack+"), "gfx90a");
  EXPECT_EQ(base_arch_name("gfx908"), "gfx908");
}

TEST(MallocAccess, ThePageableAttributeDecides) {
  EXPECT_TRUE(assess_malloc_access(true, "gfx90a:sramecc+:xnack+").usable);
  EXPECT_TRUE(assess_malloc_access(true, "gfx90a:sramecc+:xnack+").explanation.empty());
  // The xnack+ substring alone is not enough: the kernel must mirror the process.
  const MallocAccess no_hmm = assess_malloc_access(false, "gfx90a:sramecc+:xnack+");
  EXPECT_FALSE(no_hmm.usable);
  EXPECT_NE(no_hmm.explanation.find("no pageable memory access"), std::string::npos);
  EXPECT_NE(no_hmm.explanation.find("CONFIG_HSA_AMD_SVM"), std::string::npos);
}

TEST(MallocAccess, TheArchitectureNameExplainsARefusal) {
  const MallocAccess off = assess_malloc_access(false, "gfx942:sramecc+:xnack-");
  EXPECT_FALSE(off.usable);
  EXPECT_NE(off.explanation.find("HSA_XNACK=1"), std::string::npos);
  const MallocAccess none = assess_malloc_access(false, "gfx1030");
  EXPECT_FALSE(none.usable);
  EXPECT_NE(none.explanation.find("has no XNACK"), std::string::npos);
}

TEST(MallocAccess, UsableWithoutXnackPlusSaysWhyItTrustsTheRuntime) {
  const MallocAccess apu = assess_malloc_access(true, "gfx942:sramecc+:xnack-");
  EXPECT_TRUE(apu.usable);
  EXPECT_NE(apu.explanation.find("xnack-"), std::string::npos);
  const MallocAccess unlisted = assess_malloc_access(true, "gfx1100");
  EXPECT_TRUE(unlisted.usable);
  EXPECT_NE(unlisted.explanation.find("does not list xnack"), std::string::npos);
}

TEST(SideBySide, OneRowPerFigureOneColumnPerMode) {
  SideBySide table("experiment");
  table.set("cold", "hints on", "1.5 ms");
  table.set("prefetched", "hints on", "0.25 ms");
  table.set("cold", "hints off", "10.0 ms");
  EXPECT_EQ(table.format(),
            "  experiment  hints on  hints off\n"
            "  cold          1.5 ms    10.0 ms\n"
            "  prefetched   0.25 ms          -\n");
}

TEST(SideBySide, ALaterValueReplacesTheCell) {
  SideBySide table("x");
  table.set("a", "b", "1");
  table.set("a", "b", "22");
  EXPECT_EQ(table.format(), "  x   b\n  a  22\n");
}

TEST(HostMemory, ParsesMemAvailable) {
  const std::string meminfo =
      "MemTotal:       32768000 kB\nMemFree:         1000 kB\nMemAvailable:   16384000 kB\n";
  EXPECT_EQ(parse_meminfo_available(meminfo), std::optional<std::uint64_t>(16384000ull * 1024));
  EXPECT_FALSE(parse_meminfo_available("MemTotal: 1 kB\n").has_value());
  EXPECT_FALSE(parse_meminfo_available("MemAvailable: lots\n").has_value());
}

TEST(HostMemory, ThisHostReportsSomething) {
  const auto available = host_available_bytes();
  ASSERT_TRUE(available.has_value());
  EXPECT_GT(*available, 0u);
}

TEST(ParallelFor, VisitsEveryIndexOnce) {
  for (std::size_t count : {std::size_t{0}, std::size_t{1}, std::size_t{1000}, std::size_t{1} << 20}) {
    std::vector<std::atomic<int>> visits(count);
    parallel_for(count, [&](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) ++visits[i];
    });
    EXPECT_TRUE(std::all_of(visits.begin(), visits.end(), [](const auto& v) { return v == 1; }))
        << "count " << count;
  }
}

TEST(Pattern, NeighboursAndSeedsDiffer) {
  EXPECT_NE(pattern_value(0, 1), pattern_value(1, 1));
  EXPECT_NE(pattern_value(5, 1), pattern_value(5, 2));
  EXPECT_EQ(pattern_value(123456789, 3), pattern_value(123456789, 3));
  EXPECT_NE(stream_pass_update(7, 0), stream_pass_update(7, 1));
}

TEST(Checksum, ParallelMatchesSerialAndExpected) {
  const std::size_t count = (1u << 20) + 3;
  std::vector<std::uint32_t> data(count);
  for (std::size_t i = 0; i < count; ++i) data[i] = pattern_value(i, 9);
  const std::uint64_t serial = checksum_range(data.data(), 0, count);
  EXPECT_EQ(checksum_parallel(data.data(), count), serial);
  EXPECT_EQ(checksum_expected_parallel(count, [](std::uint64_t i) { return pattern_value(i, 9); }),
            serial);
  // Chunks at an offset add up to the whole.
  EXPECT_EQ(checksum_range(data.data(), 0, 100) + checksum_range(data.data() + 100, 100, count - 100),
            serial);
}

TEST(Checksum, DetectsSwappedAndChangedElements) {
  std::vector<std::uint32_t> data(4096);
  std::iota(data.begin(), data.end(), 0u);
  const std::uint64_t original = checksum_range(data.data(), 0, data.size());
  std::swap(data[10], data[3000]);
  EXPECT_NE(checksum_range(data.data(), 0, data.size()), original);
  std::swap(data[10], data[3000]);
  data[4095] ^= 1u;
  EXPECT_NE(checksum_range(data.data(), 0, data.size()), original);
}

TEST(Checksum, FirstMismatchFindsLowestIndex) {
  const std::size_t count = 1u << 20;
  std::vector<std::uint32_t> data(count);
  for (std::size_t i = 0; i < count; ++i) data[i] = static_cast<std::uint32_t>(i);
  auto identity = [](std::uint64_t i) { return static_cast<std::uint32_t>(i); };
  EXPECT_FALSE(first_mismatch(data.data(), count, identity).has_value());
  data[count - 1] = 0;
  data[700000] = 1;
  data[300000] = 2;
  EXPECT_EQ(first_mismatch(data.data(), count, identity), std::optional<std::uint64_t>(300000));
}

}  // namespace
}  // namespace gmem_samples
