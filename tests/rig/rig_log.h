// Parsers for what comes back from a guest run: the kernel log (splats and
// KTAP from KUnit) and the output of the test programs (kselftest TAP,
// GoogleTest). Line based and tolerant of printk timestamps, because the
// kernel log interleaves with everything.
#pragma once

#include <string>
#include <vector>

namespace rig {

enum class Outcome { kPassed, kFailed, kSkipped };

const char *OutcomeName(Outcome outcome);

struct TestCase {
  std::string name;  // dotted: "suite.case" (KTAP), "fixture.variant.test"
  Outcome outcome = Outcome::kFailed;
  std::string log;   // the lines the case printed, for the ctest output
};

// A kernel log problem that fails a run: the matching line and a few lines
// of context after it.
struct Splat {
  size_t line_number = 0;  // 1-based
  std::string excerpt;
};

// Removes a leading printk timestamp such as "[    1.234567] ".
std::string StripPrintkPrefix(const std::string &line);

// Kernel WARNING, BUG, Oops, panic, lockdep reports, list corruption,
// KASAN/UBSAN, RCU stalls, hung tasks, and failed KUnit cases.
std::vector<Splat> FindSplats(const std::vector<std::string> &lines);

// KUnit's KTAP output in a kernel log: one case per subtest, named
// "suite.case". A suite whose plan was not completed (the kernel died, or
// the log was cut) yields a failed "suite.incomplete" case.
std::vector<TestCase> ParseKtap(const std::vector<std::string> &lines);

// kselftest harness TAP ("ok 3 hmm.hmm_device_private.anon_read",
// "# SKIP ..." directives, "#  RUN" / "#  OK" blocks).
std::vector<TestCase> ParseKselftest(const std::vector<std::string> &lines);

// GoogleTest's default console output ("[ RUN      ] A.B" ...
// "[       OK ] A.B", "[  FAILED  ] A.B", "[  SKIPPED ] A.B").
std::vector<TestCase> ParseGtest(const std::vector<std::string> &lines);

// Comparison of one suite's results on our kernel with the unpatched base
// kernel: a regression is a case that passed on the base and does not now.
struct Comparison {
  size_t base_passed = 0;
  size_t passed = 0;
  std::vector<std::string> regressions;
  bool Ok() const { return passed >= base_passed && regressions.empty(); }
};
Comparison CompareWithBase(const std::vector<TestCase> &base,
                           const std::vector<TestCase> &now);

std::vector<std::string> SplitLines(const std::string &text);

}  // namespace rig
