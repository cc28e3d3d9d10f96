#include "rig_log.h"

#include <array>
#include <cctype>
#include <map>
#include <regex>

namespace rig {

const char *OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kPassed: return "passed";
    case Outcome::kSkipped: return "skipped";
    case Outcome::kFailed: break;
  }
  return "failed";
}

std::vector<std::string> SplitLines(const std::string &text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    // Serial consoles add carriage returns.
    while (!line.empty() && (line.back() == '\r' || line.back() == '\0'))
      line.pop_back();
    lines.push_back(std::move(line));
    start = end + 1;
  }
  return lines;
}

std::string StripPrintkPrefix(const std::string &line) {
  static const std::regex prefix(R"(^\s*\[\s*\d+\.\d+\]\s?)");
  return std::regex_replace(line, prefix, "", std::regex_constants::format_first_only);
}

namespace {

bool StartsWith(const std::string &s, const std::string &prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

std::string TrimLeft(const std::string &s) {
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

// A TAP result line: "ok 1 name # SKIP why" / "not ok 2 name".
struct TapResult {
  bool ok = false;
  bool skip = false;
  std::string name;
};

bool ParseTapResult(const std::string &text, TapResult *result) {
  static const std::regex tap(R"(^(not ok|ok) +\d+ *(?:- *)?([^#]*?) *(#.*)?$)");
  std::smatch m;
  if (!std::regex_match(text, m, tap)) return false;
  result->ok = m[1] == "ok";
  result->name = m[2];
  std::string directive = m[3];
  for (auto &c : directive) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  result->skip = directive.find("SKIP") != std::string::npos;
  return true;
}

Outcome ToOutcome(const TapResult &r) {
  if (r.skip) return Outcome::kSkipped;
  return r.ok ? Outcome::kPassed : Outcome::kFailed;
}

}  // namespace

std::vector<Splat> FindSplats(const std::vector<std::string> &lines) {
  // Each pattern is something a healthy test kernel never prints.
  static const std::array<std::regex, 1> patterns = {std::regex(
      R"((^|[^_])WARNING:|^BUG:|kernel BUG at|^Oops|Kernel panic|)"
      R"(general protection fault|Unable to handle kernel|)"
      R"(possible circular locking|possible recursive locking|)"
      R"(inconsistent lock state|lock held when returning|)"
      R"(suspicious RCU usage|DEBUG_LOCKS_WARN_ON|lockdep is turned off|)"
      R"(list_add corruption|list_del corruption|page dumped because|)"
      R"(VM_BUG_ON|UBSAN:|KASAN:|KFENCE:|detected stall|)"
      R"(blocked for more than|new suspected memory leak|^\s*not ok \d+ )")};
  std::vector<size_t> hits;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string text = StripPrintkPrefix(lines[i]);
    bool hit = false;
    for (const auto &re : patterns) hit = hit || std::regex_search(text, re);
    if (!hit) continue;
    // A KTAP "not ok" that only reports a skip is not a failure.
    TapResult tap;
    if (ParseTapResult(TrimLeft(text), &tap) && tap.skip) continue;
    hits.push_back(i);
  }
  // One report per problem: its line and the context up to the next one.
  std::vector<Splat> splats;
  for (size_t h = 0; h < hits.size(); ++h) {
    size_t end = std::min(lines.size(), hits[h] + 12);
    if (h + 1 < hits.size()) end = std::min(end, hits[h + 1]);
    Splat splat;
    splat.line_number = hits[h] + 1;
    for (size_t j = hits[h]; j < end; ++j) splat.excerpt += lines[j] + "\n";
    splats.push_back(std::move(splat));
  }
  return splats;
}

std::vector<TestCase> ParseKtap(const std::vector<std::string> &lines) {
  // KUnit nests: a suite is a subtest of the top level, its cases are
  // subtests of the suite (indented by 4), parameterised cases one deeper.
  // We report cases; a suite without cases is reported as one case.
  static const std::regex suite_name_re(R"(^ *# Subtest: (\S+))");
  static const std::regex plan_re(R"(^ *1\.\.(\d+))");
  std::vector<TestCase> cases;
  std::string suite;
  size_t suite_indent = 0;
  long planned = -1;
  long seen = 0;
  std::string pending_log;
  bool in_ktap = false;

  auto finish_suite = [&](bool complete) {
    if (!suite.empty() && !complete && (planned < 0 || seen < planned)) {
      TestCase incomplete;
      incomplete.name = suite + ".incomplete";
      incomplete.outcome = Outcome::kFailed;
      incomplete.log = "suite planned " + std::to_string(planned) + " cases, " +
                       std::to_string(seen) + " reported: the kernel log ends inside it\n" +
                       pending_log;
      cases.push_back(std::move(incomplete));
    }
    suite.clear();
    planned = -1;
    seen = 0;
    pending_log.clear();
  };

  for (const auto &raw : lines) {
    std::string text = StripPrintkPrefix(raw);
    if (text.find("KTAP version") != std::string::npos ||
        text.find("TAP version") != std::string::npos) {
      in_ktap = true;
    }
    if (!in_ktap) continue;
    std::string trimmed = TrimLeft(text);
    size_t indent = text.size() - trimmed.size();
    std::smatch m;
    if (std::regex_search(text, m, suite_name_re) && indent == 4) {
      finish_suite(false);
      suite = m[1];
      suite_indent = indent;
      continue;
    }
    if (suite.empty()) continue;
    if (std::regex_search(text, m, plan_re) && indent == suite_indent) {
      planned = std::stol(m[1]);
      continue;
    }
    TapResult tap;
    if (ParseTapResult(trimmed, &tap)) {
      if (indent == suite_indent) {  // a case of the current suite
        TestCase tc;
        tc.name = suite + "." + tap.name;
        tc.outcome = ToOutcome(tap);
        tc.log = pending_log;
        cases.push_back(std::move(tc));
        ++seen;
        pending_log.clear();
      } else if (indent < suite_indent) {  // the suite's own result line
        if (seen == 0) {
          TestCase tc;
          tc.name = suite;
          tc.outcome = ToOutcome(tap);
          tc.log = pending_log;
          cases.push_back(std::move(tc));
          seen = planned;
        }
        finish_suite(true);
      } else {
        pending_log += trimmed + "\n";  // a parameterised sub-case
      }
      continue;
    }
    if (indent >= suite_indent) pending_log += trimmed + "\n";
  }
  finish_suite(false);
  return cases;
}

std::vector<TestCase> ParseKselftest(const std::vector<std::string> &lines) {
  std::vector<TestCase> cases;
  std::string log;
  for (const auto &raw : lines) {
    std::string text = StripPrintkPrefix(raw);
    TapResult tap;
    if (ParseTapResult(text, &tap)) {
      TestCase tc;
      tc.name = tap.name;
      tc.outcome = ToOutcome(tap);
      tc.log = log;
      cases.push_back(std::move(tc));
      log.clear();
      continue;
    }
    if (StartsWith(text, "#  RUN")) log.clear();
    log += text + "\n";
  }
  return cases;
}

std::vector<TestCase> ParseGtest(const std::vector<std::string> &lines) {
  static const std::regex run_re(R"(^\[ RUN      \] (\S+))");
  static const std::regex end_re(R"(^\[ +(OK|FAILED|SKIPPED) +\] (\S+)(?: \(\d+ ms\))?$)");
  std::vector<TestCase> cases;
  std::map<std::string, size_t> index;
  std::string current;
  std::string log;
  for (const auto &raw : lines) {
    std::smatch m;
    if (std::regex_search(raw, m, run_re)) {
      if (!current.empty()) {  // the previous case never ended: it crashed
        TestCase tc{current, Outcome::kFailed, log + "(no result: the test binary died)\n"};
        cases.push_back(std::move(tc));
      }
      current = m[1];
      log.clear();
      continue;
    }
    if (std::regex_search(raw, m, end_re) && m[2] == current) {
      Outcome outcome = m[1] == "OK" ? Outcome::kPassed
                        : m[1] == "SKIPPED" ? Outcome::kSkipped
                                            : Outcome::kFailed;
      index[current] = cases.size();
      cases.push_back(TestCase{current, outcome, log});
      current.clear();
      log.clear();
      continue;
    }
    if (!current.empty()) log += raw + "\n";
  }
  if (!current.empty())
    cases.push_back(TestCase{current, Outcome::kFailed, log + "(no result: the test binary died)\n"});
  return cases;
}

Comparison CompareWithBase(const std::vector<TestCase> &base,
                           const std::vector<TestCase> &now) {
  Comparison result;
  std::map<std::string, Outcome> now_by_name;
  for (const auto &tc : now) {
    now_by_name[tc.name] = tc.outcome;
    if (tc.outcome == Outcome::kPassed) ++result.passed;
  }
  for (const auto &tc : base) {
    if (tc.outcome != Outcome::kPassed) continue;
    ++result.base_passed;
    auto it = now_by_name.find(tc.name);
    if (it == now_by_name.end() || it->second != Outcome::kPassed)
      result.regressions.push_back(tc.name);
  }
  return result;
}

}  // namespace rig
