// The demo's self-verification as guest test cases: run the gmem-demo
// binary (installed next to this one in /tests) and judge its exit status
// and report, so that `scripts/check` keeps `scripts/demo` working.
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

namespace {

struct RunResult {
  int exit_status = -1;
  std::string output;
};

std::string DemoPath() {
  char self[PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (len <= 0) return "/tests/gmem-demo";
  std::string dir(self, static_cast<size_t>(len));
  return dir.substr(0, dir.rfind('/')) + "/gmem-demo";
}

RunResult RunDemo(const std::string &args) {
  RunResult result;
  std::string command = DemoPath() + " " + args + " 2>&1";
  FILE *pipe = popen(command.c_str(), "r");
  if (!pipe) return result;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) result.output.append(buf, n);
  int status = pclose(pipe);
  if (status != -1 && WIFEXITED(status)) result.exit_status = WEXITSTATUS(status);
  return result;
}

TEST(DemoTest, SmallSizesVerifyEverything) {
  RunResult run = RunDemo("--small");
  EXPECT_EQ(run.exit_status, 0) << run.output;
  EXPECT_NE(run.output.find("0 failed"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("everything verified"), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find("FAIL"), std::string::npos) << run.output;
  // The report shows the counters it judged.
  EXPECT_NE(run.output.find("evictions"), std::string::npos) << run.output;
}

TEST(DemoTest, MissingDeviceIsAClearError) {
  RunResult run = RunDemo("--device 7");
  EXPECT_EQ(run.exit_status, 2) << run.output;
  EXPECT_NE(run.output.find("cannot open /dev/test_gmem7"), std::string::npos) << run.output;
}

TEST(DemoTest, BadArgumentPrintsUsage) {
  RunResult run = RunDemo("--array-mib zero");
  EXPECT_EQ(run.exit_status, 2) << run.output;
  EXPECT_NE(run.output.find("usage:"), std::string::npos) << run.output;
}

}  // namespace
