// Helpers of the GMEM guest suites: the simulated device in the shapes the
// tests read best in, self-unmapping anonymous mappings and a fixture with
// both devices attached.
#ifndef GMEM_TESTS_GMEM_GMEM_FIXTURE_H
#define GMEM_TESTS_GMEM_GMEM_FIXTURE_H

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "gmem_device.h"

namespace gmem_test {

constexpr size_t kPage = gmem::kPageSize;
using gmem::Hmadvise;
using gmem::kMiB;

inline uint64_t Fnv(const void *p, size_t n) { return gmem::Fnv1a(p, n); }

// The shared device view, with the shapes these tests read best in.
class Device : public gmem::Device {
 public:
  using gmem::Device::Device;
  int Read(const void *addr, size_t len, void *dst) { return gmem::Device::Read(addr, len, dst); }
  int Write(void *addr, size_t len, const void *src) { return gmem::Device::Write(addr, len, src); }
  int Fill(void *addr, size_t len, uint8_t v) { return gmem::Device::Fill(addr, len, v); }
  int Add(void *addr, size_t len, uint32_t v) { return gmem::Device::Add(addr, len, v); }
  uint64_t Checksum(const void *addr, size_t len, int *err = nullptr) {
    uint64_t hash = 0;
    int ret = gmem::Device::Checksum(addr, len, &hash);
    if (err) *err = ret;
    return hash;
  }
  tgm_counters Counters() {
    tgm_counters c = {};
    gmem::Device::Counters(&c);
    return c;
  }
  int hnid() { return static_cast<int>(Counters().hnid); }
};

// Runs `body` in a child process and returns its exit status (0: passed);
// gtest assertions do not cross fork(), so the body returns a code that
// names the failed check.
template <typename Body>
int InChild(Body body) {
  pid_t pid = fork();
  if (pid == 0) _exit(body());
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Hazards of a device for one case: set on construction, all off again at
// the end (they outlive the process otherwise).
class HazardScope {
 public:
  HazardScope(Device &dev, const tgm_hazards &h) : dev_(dev) { set_ = dev_.SetHazards(h); }
  ~HazardScope() { dev_.SetHazards(tgm_hazards{}); }
  int status() const { return set_; }

 private:
  Device &dev_;
  int set_;
};

// Device 0 with the hazards of @flags while this lives, through a file of
// its own.
struct HazardousDevice {
  static tgm_hazards Hazards(uint32_t flags) {
    tgm_hazards hz = {};
    hz.flags = flags;
    return hz;
  }
  explicit HazardousDevice(uint32_t flags) : hazards(ctl, Hazards(flags)) {}
  bool ok() const { return ctl.ok() && hazards.status() == 0; }

  Device ctl{0};
  HazardScope hazards;
};

// The device memory limit of a device for one case, given back at the end.
class LimitScope {
 public:
  explicit LimitScope(Device &dev) : dev_(dev), limit_(dev.Counters().limit) {}
  ~LimitScope() { dev_.SetLimit(limit_); }

 private:
  Device &dev_;
  uint64_t limit_;
};

// A figure of /proc/meminfo in KiB, by its key ("Slab:"); -1 if absent.
inline long MeminfoKiB(const std::string &wanted) {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  long value = 0;
  while (meminfo >> key >> value) {
    if (key == wanted) return value;
    meminfo.ignore(256, '\n');
  }
  return -1;
}

inline std::string ReadSysfs(int hnid, const char *file) {
  std::ifstream in("/sys/kernel/mm/gmem/nodes/node" + std::to_string(hnid) + "/" + file);
  std::string s;
  std::getline(in, s);
  return s;
}

// Anonymous mapping that unmaps itself.
class Mapping {
 public:
  explicit Mapping(size_t len, int prot = PROT_READ | PROT_WRITE, int flags = 0) : len_(len) {
    void *p = mmap(nullptr, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
    p_ = p == MAP_FAILED ? nullptr : static_cast<uint8_t *>(p);
  }
  ~Mapping() {
    if (p_) munmap(p_, len_);
  }
  Mapping(const Mapping &) = delete;
  Mapping &operator=(const Mapping &) = delete;
  uint8_t *get() const { return p_; }
  uintptr_t addr() const { return reinterpret_cast<uintptr_t>(p_); }
  size_t size() const { return len_; }
  void forget() { p_ = nullptr; }

 private:
  uint8_t *p_;
  size_t len_;
};

inline void Pattern(uint8_t *p, size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  for (size_t i = 0; i < n; i++) p[i] = static_cast<uint8_t>(rng());
}

// fail_page_alloc or failslab, aimed at one task: the next `times` (-1: any
// number of) allocations of that kind by a task that wrote 1 to
// /proc/self/make-it-fail fail, each with `percent` probability. All knobs
// go back to off when the scope ends, whatever the case did.
class InjectedFailures {
 public:
  InjectedFailures(const char *kind, long times, int percent = 100)
      : dir_(std::string("/sys/kernel/debug/") + kind + "/") {
    available_ = access(Knob("times").c_str(), W_OK) == 0;
    if (!available_) return;
    const bool pages = std::string(kind) == "fail_page_alloc";
    ok_ = Set("task-filter", "Y") && Set("ignore-gfp-wait", "N") &&
          (!pages || (Set("ignore-gfp-highmem", "N") && Set("min-order", "0"))) && Set("verbose", "0") &&
          Set("interval", "1") && Set("space", "0") && Set("times", std::to_string(times)) &&
          Set("probability", std::to_string(percent));
  }
  ~InjectedFailures() {
    if (!available_) return;
    Set("probability", "0");
    Set("times", "1");
  }
  bool available() const { return available_; }
  bool ok() const { return ok_; }
  long left() const {
    std::ifstream in(Knob("times"));
    long v = -1;
    in >> v;
    return v;
  }
  // In the calling task: from now on its allocations may fail.
  static bool Target(bool on) {
    int fd = open("/proc/self/make-it-fail", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = Target(fd, on);
    close(fd);
    return ok;
  }
  // The same through a file opened before: with failslab the open itself
  // fails while the task is a target, so switching it off needs this.
  static bool Target(int make_it_fail_fd, bool on) { return write(make_it_fail_fd, on ? "1" : "0", 1) == 1; }

 private:
  std::string Knob(const char *name) const { return dir_ + name; }
  bool Set(const char *name, const std::string &value) {
    std::ofstream out(Knob(name));
    out << value << "\n";
    out.flush();
    return static_cast<bool>(out);
  }
  std::string dir_;
  bool available_ = false;
  bool ok_ = false;
};

class GmemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 2; i++) {
      dev_[i] = std::make_unique<Device>(i);
      ASSERT_TRUE(dev_[i]->ok()) << "open /dev/test_gmem" << i << ": " << strerror(errno);
      ASSERT_EQ(dev_[i]->Attach(), 0);
    }
  }
  Device &dev(int i = 0) { return *dev_[i]; }

  std::unique_ptr<Device> dev_[2];
};

}  // namespace gmem_test

#endif  // GMEM_TESTS_GMEM_GMEM_FIXTURE_H
