// trinity, the system call fuzzer, against the memory system calls and the
// device files while the model stress runs on both simulated devices with
// every hazard on, and a randomized hmadvise() caller beside them (trinity
// does not know hmadvise()). The stress stays byte-exact; the kernel log
// check of the guest run catches what the fuzzing breaks.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "gmem_device.h"
#include "gmem_fixture.h"
#include "model_stress.h"

namespace gmem_test {
namespace {

constexpr const char *kTrinity = "/tests/trinity";
constexpr const char *kWorkDir = "/tmp/trinity";
constexpr const char *kTrinityLog = "/tmp/trinity.log";
constexpr int kTrinitySyscalls = 3000;
constexpr int kTrinitySeconds = 180;
constexpr uid_t kNobody = 65534;

// trinity opens only the files under its victim path: device nodes of the
// simulated devices and of /dev/kfd, made there, nothing of /proc or /sys.
bool MakeVictims(const std::string &dir, std::string *why) {
  mkdir(kWorkDir, 0777);
  chmod(kWorkDir, 0777);
  mkdir(dir.c_str(), 0755);
  int made = 0;
  for (const char *dev : {"/dev/test_gmem0", "/dev/test_gmem1", "/dev/kfd"}) {
    struct stat st;
    if (stat(dev, &st) || !S_ISCHR(st.st_mode)) continue;
    std::string node = dir + "/" + (strrchr(dev, '/') + 1);
    unlink(node.c_str());
    if (mknod(node.c_str(), S_IFCHR | 0666, st.st_rdev) == 0) made++;
  }
  if (!made) *why = "no device node could be made in " + dir;
  return made > 0;
}

pid_t StartTrinity(const std::string &victims) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  if (chdir(kWorkDir)) _exit(126);
  // The fuzzer, not the stress, is what the OOM killer should pick.
  if (FILE *f = fopen("/proc/self/oom_score_adj", "w")) {
    fputs("500", f);
    fclose(f);
  }
  // Its output goes to a file the case shows when it fails.
  int log = open(kTrinityLog, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (log < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0) _exit(125);
  // Not as root: a user process is what the kernel must withstand, and
  // trinity would wait ten seconds to be sure about root.
  if (setgid(kNobody) || setuid(kNobody)) _exit(124);
  const std::string syscalls = std::to_string(kTrinitySyscalls);
  std::vector<std::string> args = {kTrinity, "-q", "-l", "off", "-a", "64", "-C", "4", "-N", syscalls,
                                   "-V", victims, "--disable-fds=sockets,perf,pipes,epoll,eventfd,timerfd,drm",
                                   "-s", "1303"};
  for (const char *call : {"mmap", "munmap", "mremap", "mprotect", "madvise", "mlock", "munlock", "msync",
                           "mincore", "brk", "mbind", "migrate_pages", "move_pages", "set_mempolicy",
                           "process_madvise", "ioctl"}) {
    args.push_back("-c");
    args.push_back(call);
  }
  std::vector<char *> argv;
  for (auto &a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  execv(kTrinity, argv.data());
  _exit(127);
}

// Random hints over a region of this process, some of it a hole; only the
// kernel's survival and the stress's bytes are judged, not the results.
long RandomHints(std::atomic<bool> *stop, int hnid0, int hnid1) {
  const size_t pages = 64;
  Mapping m(pages * kPage);
  if (!m.get()) return -1;
  munmap(m.get() + 40 * kPage, 4 * kPage);
  const int behaviors[] = {HMADV_DONTNEED,          HMADV_PREFETCH,       HMADV_PREFERRED_LOC,
                           HMADV_UNSET_PREFERRED_LOC, HMADV_ACCESSED_BY,  HMADV_UNSET_ACCESSED_BY,
                           HMADV_READ_MOSTLY,       HMADV_UNSET_READ_MOSTLY, HMADV_PIN,
                           HMADV_UNPIN,             HMADV_NO_ACCESS,      HMADV_UNSET_NO_ACCESS,
                           0x7fff};
  const int hnids[] = {-1, 0, hnid0, hnid1, hnid1 + 1};
  std::mt19937 rng(77);
  long calls = 0;
  while (!stop->load()) {
    const size_t first = rng() % pages;
    // Never past the region: the next mapping may be the stress's, and a
    // hint there (DONTNEED discards, NO_ACCESS refuses) would break it.
    const size_t len = std::min<size_t>(1 + rng() % 16, pages - first) * kPage;
    const uintptr_t start = m.addr() + first * kPage;
    Hmadvise(hnids[rng() % 5], start, len, behaviors[rng() % 13]);
    if (rng() % 8 == 0) memset(reinterpret_cast<void *>(m.addr() + (rng() % 40) * kPage), 1, kPage);
    calls++;
  }
  return calls;
}

TEST_F(GmemTest, TrinityBesideTheDeviceStress) {
  if (access(kTrinity, X_OK))
    GTEST_SKIP() << "no " << kTrinity << " (Debian package trinity; scripts/initramfs adds it to the guest)";
  const std::string victims = std::string(kWorkDir) + "/victims";
  std::string why;
  ASSERT_TRUE(MakeVictims(victims, &why)) << why;
  tgm_hazards hz0 = {};
  hz0.flags = TGM_HAZARD_SLOW_MAP | TGM_HAZARD_TLB | TGM_HAZARD_ASYNC_COPY | TGM_HAZARD_LATE_FAULTS;
  hz0.map_delay_us = 50;
  hz0.async_delay_us = 200;
  hz0.late_interval_us = 1000;
  tgm_hazards hz1 = hz0;
  hz1.flags |= TGM_HAZARD_EVICT;
  hz1.evict_interval_us = 5000;
  hz1.evict_pages = 128;
  HazardScope h0(dev(0), hz0), h1(dev(1), hz1);
  ASSERT_EQ(h0.status(), 0);
  ASSERT_EQ(h1.status(), 0);

  const auto started = std::chrono::steady_clock::now();
  const pid_t trinity = StartTrinity(victims);
  ASSERT_GT(trinity, 0);
  std::atomic<bool> stop{false};
  long hints = 0;
  std::thread hinter([&] { hints = RandomHints(&stop, dev(0).hnid(), dev(1).hnid()); });
  StressOptions opt;
  opt.iterations = 100000;
  opt.time_limit = std::chrono::seconds(kTrinitySeconds);
  // The stress runs for as long as trinity does, and at least once through.
  std::atomic<bool> trinity_done{false};
  int status = 0;
  std::thread reaper([&] {
    while (std::chrono::steady_clock::now() - started < std::chrono::seconds(kTrinitySeconds)) {
      if (waitpid(trinity, &status, WNOHANG) == trinity) {
        trinity_done = true;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    kill(-trinity, SIGKILL);
    kill(trinity, SIGKILL);
    waitpid(trinity, &status, 0);
  });
  opt.keep_going = [&] { return !trinity_done.load(); };
  opt.min_iterations = 50;
  StressResult r = RunModelStress(dev(0), dev(1), opt);
  reaper.join();
  stop = true;
  hinter.join();
  const long seconds =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started).count();
  for (const auto &failure : r.failures) ADD_FAILURE() << failure;
  EXPECT_TRUE(trinity_done) << "trinity did not finish " << kTrinitySyscalls << " system calls in "
                            << kTrinitySeconds << " s";
  EXPECT_TRUE(WIFEXITED(status)) << "trinity status " << status;
  if (HasFailure()) {
    std::ifstream log(kTrinityLog);
    std::string line, tail[40];
    long n = 0;
    while (std::getline(log, line)) tail[n++ % 40] = line;
    for (long i = std::max(0L, n - 40); i < n; i++) std::printf("trinity| %s\n", tail[i % 40].c_str());
  }
  EXPECT_GT(hints, 0);
  std::printf("[ trinity  ] %d system calls in %ld s; beside them %ld stress operations, %ld hints\n",
              kTrinitySyscalls, seconds, r.operations, hints);
}

}  // namespace
}  // namespace gmem_test
