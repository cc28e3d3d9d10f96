// rig-log: reads guest run logs for scripts/vm and the generated ctest cases.
//
//   rig-log splats LOG...             print kernel-log splats; exit 1 if any
//   rig-log cases FORMAT LOG          "<outcome> <name>" per case
//   rig-log case FORMAT LOG NAME      print one case's log; exit 0 passed,
//                                     1 failed, 77 skipped, 2 not in the log
//       [--base BASE_LOG]             a case that fails here and on the base
//                                     kernel too is reported as skipped
//   rig-log compare FORMAT BASE_LOG LOG   pass counts and regressions against
//                                     the base kernel; exit 1 on regression
// FORMAT is ktap (KUnit in a kernel log), kselftest or gtest.
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "rig_log.h"

namespace {

constexpr int kExitSkipped = 77;  // ctest SKIP_RETURN_CODE
constexpr int kExitMissing = 2;

bool ReadLines(const std::string &path, std::vector<std::string> *lines) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "rig-log: cannot read " << path << "\n";
    return false;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  *lines = rig::SplitLines(buffer.str());
  return true;
}

bool Parse(const std::string &format, const std::vector<std::string> &lines,
           std::vector<rig::TestCase> *cases) {
  if (format == "ktap") *cases = rig::ParseKtap(lines);
  else if (format == "kselftest") *cases = rig::ParseKselftest(lines);
  else if (format == "gtest") *cases = rig::ParseGtest(lines);
  else {
    std::cerr << "rig-log: unknown format '" << format << "' (ktap, kselftest, gtest)\n";
    return false;
  }
  return true;
}

int Usage() {
  std::cerr << "usage: rig-log splats LOG... | cases FORMAT LOG |"
               " case FORMAT LOG NAME [--base BASE_LOG] | compare FORMAT BASE_LOG LOG\n";
  return kExitMissing;
}

}  // namespace

int main(int argc, char **argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return Usage();
  const std::string command = args[0];
  std::vector<std::string> lines;

  if (command == "splats" && args.size() >= 2) {
    size_t total = 0;
    for (size_t i = 1; i < args.size(); ++i) {
      if (!ReadLines(args[i], &lines)) return kExitMissing;
      for (const auto &splat : rig::FindSplats(lines)) {
        std::cout << args[i] << ":" << splat.line_number << ":\n" << splat.excerpt;
        ++total;
      }
    }
    if (total) std::cout << total << " kernel log problem(s) found\n";
    return total ? 1 : 0;
  }
  if (command == "compare" && args.size() == 4) {
    std::vector<std::string> base_lines;
    std::vector<rig::TestCase> base, now;
    if (!ReadLines(args[2], &base_lines) || !ReadLines(args[3], &lines) ||
        !Parse(args[1], base_lines, &base) || !Parse(args[1], lines, &now))
      return kExitMissing;
    rig::Comparison cmp = rig::CompareWithBase(base, now);
    std::cout << "passed on the base kernel: " << cmp.base_passed << " of " << base.size()
              << "\npassed now: " << cmp.passed << " of " << now.size() << "\n";
    for (const auto &name : cmp.regressions) std::cout << "regression: " << name << "\n";
    if (base.empty()) {
      std::cout << "no base results: the baseline run produced no cases\n";
      return 1;
    }
    return cmp.Ok() ? 0 : 1;
  }
  std::string base_log;
  if (command == "case" && args.size() == 6 && args[4] == "--base") {
    base_log = args[5];
    args.resize(4);
  }
  if ((command == "cases" && args.size() == 3) || (command == "case" && args.size() == 4)) {
    std::vector<rig::TestCase> cases;
    if (!ReadLines(args[2], &lines) || !Parse(args[1], lines, &cases)) return kExitMissing;
    if (command == "cases") {
      for (const auto &tc : cases) std::cout << rig::OutcomeName(tc.outcome) << " " << tc.name << "\n";
      return 0;
    }
    for (const auto &tc : cases) {
      if (tc.name != args[3]) continue;
      std::cout << tc.log << tc.name << ": " << rig::OutcomeName(tc.outcome) << "\n";
      if (tc.outcome == rig::Outcome::kSkipped) return kExitSkipped;
      if (tc.outcome == rig::Outcome::kFailed && !base_log.empty()) {
        std::vector<std::string> base_lines;
        std::vector<rig::TestCase> base;
        if (ReadLines(base_log, &base_lines) && Parse(args[1], base_lines, &base)) {
          for (const auto &b : base) {
            if (b.name == tc.name && b.outcome == rig::Outcome::kFailed) {
              std::cout << "known failure: it fails on the unpatched base kernel too ("
                        << base_log << ")\n";
              return kExitSkipped;
            }
          }
        }
      }
      return tc.outcome == rig::Outcome::kPassed ? 0 : 1;
    }
    std::cout << args[3] << ": no result in " << args[2]
              << " (the guest run did not reach it; see the console log)\n";
    return kExitMissing;
  }
  return Usage();
}
