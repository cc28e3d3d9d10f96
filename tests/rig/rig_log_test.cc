#include "rig_log.h"

#include <gtest/gtest.h>

namespace rig {
namespace {

std::vector<std::string> Lines(const std::string &text) { return SplitLines(text); }

TEST(StripPrintkPrefix, RemovesTimestampOnly) {
  EXPECT_EQ(StripPrintkPrefix("[    1.234567] hello [2.0] x"), "hello [2.0] x");
  EXPECT_EQ(StripPrintkPrefix("[12345.000001]     # Subtest: a"), "    # Subtest: a");
  EXPECT_EQ(StripPrintkPrefix("no prefix"), "no prefix");
}

TEST(SplitLines, DropsCarriageReturns) {
  auto lines = Lines("a\r\nb\n\nc");
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], "a");
  EXPECT_EQ(lines[2], "");
  EXPECT_EQ(lines[3], "c");
}

TEST(FindSplats, CleanLogHasNone) {
  auto log = Lines(
      "[    0.000000] Linux version 6.12.117\n"
      "[    0.100000] kfd kfd: amdgpu: Allocated 3969056 bytes on gart\n"
      "[    0.200000] Memory: 4000000K/4194304K available\n"
      "[    0.300000] WARNING_COUNT is a sysctl name, not a warning\n"
      "[    0.400000]     ok 1 list_test_list_init\n"
      "[    0.500000]     ok 2 some_case # SKIP not on this machine\n");
  EXPECT_TRUE(FindSplats(log).empty());
}

TEST(FindSplats, ReportsEachKindOnce) {
  auto log = Lines(
      "[    1.0] ------------[ cut here ]------------\n"
      "[    1.1] WARNING: CPU: 0 PID: 1 at mm/gmem.c:10 gm_dev_fault+0x1/0x2\n"
      "[    1.2] Call Trace:\n"
      "[    1.3]  <TASK>\n"
      "[   20.0] ======================================================\n"
      "[   20.1] WARNING: possible circular locking dependency detected\n");
  auto splats = FindSplats(log);
  ASSERT_EQ(splats.size(), 2u);
  EXPECT_EQ(splats[0].line_number, 2u);
  EXPECT_NE(splats[0].excerpt.find("Call Trace"), std::string::npos);
  EXPECT_EQ(splats[1].line_number, 6u);
}

TEST(FindSplats, CatchesBugsPanicsAndCorruption) {
  for (const char *line :
       {"[ 2.0] BUG: kernel NULL pointer dereference, address: 0000000000000008",
        "[ 2.0] kernel BUG at mm/migrate_device.c:123!",
        "[ 2.0] Kernel panic - not syncing: Fatal exception",
        "[ 2.0] list_add corruption. prev->next should be next",
        "[ 2.0] page dumped because: VM_BUG_ON_PAGE(PageLRU(page))",
        "[ 2.0] WARNING: suspicious RCU usage",
        "[ 2.0] INFO: task kworker:12 blocked for more than 120 seconds.",
        "[ 2.0] BUG: KASAN: slab-use-after-free in gm_dev_fault+0x1c/0x90",
        "[ 2.0] kmemleak: 3 new suspected memory leaks (see /sys/kernel/debug/kmemleak)",
        "[ 2.0]     not ok 3 gmem_attr_split"}) {
    EXPECT_EQ(FindSplats(Lines(line)).size(), 1u) << line;
  }
}

const char *kKunitLog =
    "[    3.0] KTAP version 1\n"
    "[    3.0] 1..2\n"
    "[    3.1]     KTAP version 1\n"
    "[    3.1]     # Subtest: list-kunit-test\n"
    "[    3.1]     # module: list_test\n"
    "[    3.1]     1..3\n"
    "[    3.2]     ok 1 list_test_list_init\n"
    "[    3.2]     # list_test_list_add: EXPECTATION FAILED at lib/list-test.c:40\n"
    "[    3.2]     not ok 2 list_test_list_add\n"
    "[    3.3]         KTAP version 1\n"
    "[    3.3]         # Subtest: list_test_param\n"
    "[    3.3]         ok 1 first\n"
    "[    3.3]         ok 2 second\n"
    "[    3.3]     ok 3 list_test_param\n"
    "[    3.4] # list-kunit-test: pass:2 fail:1 skip:0 total:3\n"
    "[    3.4] not ok 1 list-kunit-test\n"
    "[    3.5]     KTAP version 1\n"
    "[    3.5]     # Subtest: gmem-attr\n"
    "[    3.5]     1..2\n"
    "[    3.5]     ok 1 split # SKIP no device\n";

TEST(ParseKtap, CasesOfCompleteAndCutSuites) {
  auto cases = ParseKtap(Lines(kKunitLog));
  ASSERT_EQ(cases.size(), 5u);
  EXPECT_EQ(cases[0].name, "list-kunit-test.list_test_list_init");
  EXPECT_EQ(cases[0].outcome, Outcome::kPassed);
  EXPECT_EQ(cases[1].name, "list-kunit-test.list_test_list_add");
  EXPECT_EQ(cases[1].outcome, Outcome::kFailed);
  EXPECT_NE(cases[1].log.find("EXPECTATION FAILED"), std::string::npos);
  EXPECT_EQ(cases[2].name, "list-kunit-test.list_test_param");
  EXPECT_EQ(cases[2].outcome, Outcome::kPassed);
  EXPECT_EQ(cases[3].name, "gmem-attr.split");
  EXPECT_EQ(cases[3].outcome, Outcome::kSkipped);
  // The log ends after one of two planned cases: the kernel died.
  EXPECT_EQ(cases[4].name, "gmem-attr.incomplete");
  EXPECT_EQ(cases[4].outcome, Outcome::kFailed);
}

TEST(ParseKtap, IgnoresTapBeforeKunitStarts) {
  auto cases = ParseKtap(Lines("ok 1 not a kunit line\n[ 1.0] hello\n"));
  EXPECT_TRUE(cases.empty());
}

TEST(ParseKselftest, HarnessOutput) {
  auto cases = ParseKselftest(Lines(
      "TAP version 13\n"
      "1..3\n"
      "# Starting 3 tests from 2 test cases.\n"
      "#  RUN           hmm.hmm_device_private.open_close ...\n"
      "#            OK  hmm.hmm_device_private.open_close\n"
      "ok 1 hmm.hmm_device_private.open_close\n"
      "#  RUN           hmm.hmm_device_private.anon_write_huge ...\n"
      "# hmm-tests.c:123:anon_write_huge:Expected ret (-1) == 0 (0)\n"
      "not ok 2 hmm.hmm_device_private.anon_write_huge\n"
      "#  RUN           hmm.hmm_device_coherent.open_close ...\n"
      "ok 3 hmm.hmm_device_coherent.open_close # SKIP DEVICE_COHERENT not available\n"
      "# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0\n"));
  ASSERT_EQ(cases.size(), 3u);
  EXPECT_EQ(cases[0].outcome, Outcome::kPassed);
  EXPECT_EQ(cases[1].name, "hmm.hmm_device_private.anon_write_huge");
  EXPECT_EQ(cases[1].outcome, Outcome::kFailed);
  EXPECT_NE(cases[1].log.find("Expected ret"), std::string::npos);
  EXPECT_EQ(cases[2].outcome, Outcome::kSkipped);
}

TEST(ParseGtest, OutcomesAndCrash) {
  auto cases = ParseGtest(Lines(
      "[==========] Running 4 tests from 1 test suite.\n"
      "[ RUN      ] Rig.A\n"
      "[       OK ] Rig.A (0 ms)\n"
      "[ RUN      ] Rig.B\n"
      "x.cc:3: Failure\n"
      "[  FAILED  ] Rig.B (1 ms)\n"
      "[ RUN      ] Rig.C\n"
      "[  SKIPPED ] Rig.C (0 ms)\n"
      "[ RUN      ] Rig.D\n"
      "[  FAILED  ] Rig.B (1 ms)\n"));
  ASSERT_EQ(cases.size(), 4u);
  EXPECT_EQ(cases[0].outcome, Outcome::kPassed);
  EXPECT_EQ(cases[1].outcome, Outcome::kFailed);
  EXPECT_NE(cases[1].log.find("Failure"), std::string::npos);
  EXPECT_EQ(cases[2].outcome, Outcome::kSkipped);
  EXPECT_EQ(cases[3].name, "Rig.D");  // started, never finished
  EXPECT_EQ(cases[3].outcome, Outcome::kFailed);
}

TEST(CompareWithBase, RegressionsAndCounts) {
  std::vector<TestCase> base = {{"a", Outcome::kPassed, ""},
                                {"b", Outcome::kPassed, ""},
                                {"c", Outcome::kFailed, ""},
                                {"d", Outcome::kSkipped, ""}};
  std::vector<TestCase> same_or_better = {{"a", Outcome::kPassed, ""},
                                          {"b", Outcome::kPassed, ""},
                                          {"c", Outcome::kPassed, ""},
                                          {"d", Outcome::kSkipped, ""}};
  Comparison good = CompareWithBase(base, same_or_better);
  EXPECT_TRUE(good.Ok());
  EXPECT_EQ(good.base_passed, 2u);
  EXPECT_EQ(good.passed, 3u);

  std::vector<TestCase> worse = {{"a", Outcome::kPassed, ""},
                                 {"b", Outcome::kSkipped, ""},
                                 {"c", Outcome::kPassed, ""}};
  Comparison bad = CompareWithBase(base, worse);
  EXPECT_FALSE(bad.Ok());  // as many passes, but "b" no longer passes
  ASSERT_EQ(bad.regressions.size(), 1u);
  EXPECT_EQ(bad.regressions[0], "b");

  std::vector<TestCase> missing = {{"a", Outcome::kPassed, ""}};
  EXPECT_FALSE(CompareWithBase(base, missing).Ok());
}

}  // namespace
}  // namespace rig
