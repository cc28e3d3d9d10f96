// Checks of the test guest itself: if one of these fails, every other guest
// result is suspect (wrong kernel, missing device, debug options off).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace {

std::string ReadFile(const std::string &path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string RunCommand(const std::string &command) {
  std::string output;
  FILE *pipe = popen(command.c_str(), "r");
  if (!pipe) return output;
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), pipe)) > 0) output.append(chunk, n);
  pclose(pipe);
  return output;
}

bool IsCharDevice(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISCHR(st.st_mode);
}

TEST(Rig, KernelIsTheRigBuild) {
  std::string version = ReadFile("/proc/version");
  EXPECT_NE(version.find("Linux version 6.12."), std::string::npos) << version;
  EXPECT_NE(version.find("rig@gmem"), std::string::npos) << version;
}

TEST(Rig, DebugOptionsAreOn) {
  // lockdep, DEBUG_VM and DEBUG_LIST turn silent corruption into log
  // splats, which the rig fails on; a kernel without them proves less.
  std::string config = RunCommand("zcat /proc/config.gz");
  ASSERT_FALSE(config.empty()) << "no /proc/config.gz (CONFIG_IKCONFIG_PROC)";
  for (const char *option : {"CONFIG_PROVE_LOCKING=y", "CONFIG_DEBUG_VM=y",
                             "CONFIG_DEBUG_LIST=y", "CONFIG_DEVICE_PRIVATE=y",
                             "CONFIG_HSA_AMD_SVM=y", "CONFIG_KUNIT=y"}) {
    EXPECT_NE(config.find(std::string("\n") + option + "\n"), std::string::npos) << option;
  }
  EXPECT_EQ(access("/proc/lockdep", R_OK), 0);
}

TEST(Rig, TwoCpusAndFourGigabytes) {
  EXPECT_EQ(sysconf(_SC_NPROCESSORS_ONLN), 2);
  long pages = sysconf(_SC_PHYS_PAGES);
  long page_size = sysconf(_SC_PAGESIZE);
  EXPECT_GT(pages * page_size, 3L << 30);
}

TEST(Rig, HmmTestDevicesExist) {
  // lib/test_hmm.c registers device-private mirrors 0 and 1, and the
  // device-coherent mirrors 2 and 3 in the memory scripts/vm reserves for
  // them; without those the coherent hmm-tests would be skipped again.
  EXPECT_TRUE(IsCharDevice("/dev/hmm_dmirror0"));
  EXPECT_TRUE(IsCharDevice("/dev/hmm_dmirror1"));
  EXPECT_TRUE(IsCharDevice("/dev/hmm_dmirror2"));
  EXPECT_TRUE(IsCharDevice("/dev/hmm_dmirror3"));
}

TEST(Rig, KfdDeviceAndCpuTopology) {
  ASSERT_TRUE(IsCharDevice("/dev/kfd"));
  std::string props = ReadFile("/sys/class/kfd/kfd/topology/nodes/0/properties");
  ASSERT_FALSE(props.empty()) << "KFD topology has no node 0";
  EXPECT_NE(props.find("cpu_cores_count 2"), std::string::npos) << props;
  EXPECT_EQ(ReadFile("/sys/class/kfd/kfd/topology/nodes/0/gpu_id"), "0\n");
}

TEST(Rig, HugepagesReservedForHmmTests) {
  EXPECT_EQ(ReadFile("/proc/sys/vm/nr_hugepages"), "16\n");
  EXPECT_NE(ReadFile("/sys/kernel/mm/transparent_hugepage/enabled").find("[madvise]"),
            std::string::npos);
}

}  // namespace
