// GMEM under adversarial use: each case reproduces a defect a reviewer
// found in the core (one process seeing another's memory, a device writing
// past other devices' copies) and must keep failing if the protection that
// fixes it goes.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "gmem_device.h"
#include "gmem_fixture.h"

namespace gmem_test {
namespace {

constexpr size_t kBlock = 2 * kMiB;
constexpr uint8_t kOtherProcessByte = 0x5b;

// The same hazards on both devices for the scope of a case.
struct HazardsOnBoth {
  HazardsOnBoth(Device &a, Device &b, const tgm_hazards &h) : first(a, h), second(b, h) {}
  bool ok() const { return first.status() == 0 && second.status() == 0; }
  HazardScope first, second;
};

// The 2 MiB-aligned block inside a mapping of two blocks.
uint8_t *AlignedBlock(const Mapping &m) {
  return reinterpret_cast<uint8_t *>((m.addr() + kBlock - 1) & ~(kBlock - 1));
}

// A 2 MiB-aligned block of a fresh mapping, filled with a pattern and
// advised read-mostly; `ref` is what it must read as.
struct ReadMostlyBlock {
  explicit ReadMostlyBlock(uint32_t seed) : m(2 * kBlock), b(AlignedBlock(m)) {
    if (!m.get()) return;
    Pattern(b, kBlock, seed);
    ref.assign(b, b + kBlock);
    advised = Hmadvise(0, addr(), kBlock, HMADV_READ_MOSTLY);
  }
  bool ok() const { return m.get() && advised == 0; }
  uintptr_t addr() const { return reinterpret_cast<uintptr_t>(b); }

  Mapping m;
  uint8_t *b;
  std::vector<uint8_t> ref;
  long advised = -1;
};

// The first reader takes the block, the second gets read-only copies.
::testing::AssertionResult TakeThenDuplicate(Device &first, Device &second,
                                             const ReadMostlyBlock &rm) {
  const uint64_t want = Fnv(rm.ref.data(), kBlock);
  if (first.Checksum(rm.b, kBlock) != want) return ::testing::AssertionFailure() << "first read";
  uint64_t before = second.Counters().duplicated;
  if (second.Checksum(rm.b, kBlock) != want) return ::testing::AssertionFailure() << "second read";
  uint64_t copied = second.Counters().duplicated - before;
  if (copied != kBlock / kPage)
    return ::testing::AssertionFailure() << copied << " pages copied, not the block";
  return ::testing::AssertionSuccess();
}

// Bytes of `got` that differ from `want`, and of those, how many hold
// `foreign` (data that is not this process's).
struct Diff {
  size_t differ = 0;
  size_t foreign = 0;
};
Diff Compare(const std::vector<uint8_t> &got, const std::vector<uint8_t> &want,
             uint8_t foreign) {
  Diff d;
  for (size_t i = 0; i < got.size(); i++) {
    if (got[i] == want[i]) continue;
    d.differ++;
    d.foreign += got[i] == foreign;
  }
  return d;
}

// A second process fills all the device memory it can get on device
// `index` with kOtherProcessByte and holds it until told to go. Returns its
// pid; `ready` is readable once it holds the memory (or has failed).
pid_t HoldAllDeviceMemory(int index, int ready_fd, int go_fd) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  Device d(index);
  int status = 0;
  if (!d.ok() || d.Attach() != 0) status = 2;
  tgm_counters c = d.Counters();
  uint64_t usable = std::min(c.total, c.limit ? c.limit : c.total);
  size_t room = usable > c.resident ? (usable - c.resident) & ~(kPage - 1) : 0;
  Mapping y(room ? room : kPage);
  if (!status && (!y.get() || d.Fill(y.get(), room, kOtherProcessByte) != 0)) status = 3;
  char byte = static_cast<char>(status);
  if (write(ready_fd, &byte, 1) != 1) _exit(4);
  if (read(go_fd, &byte, 1) != 1) _exit(5);
  _exit(status);
}

// How often the device's page table updates, pins and duplications started
// again (sysfs map_retries); 0 if the kernel has no such count.
uint64_t MapRetries(Device &d) {
  std::string s = ReadSysfs(d.hnid(), "map_retries");
  return s.empty() ? 0 : std::stoull(s);
}

// Read-mostly copies on device 1, then a fork: the fork write-protects the
// parent's pages (MMU_NOTIFY_PROTECTION_PAGE). GMEM must not give the
// copies' device pages back while device 1's page table still maps them:
// another process that then fills device 1 would have its bytes read
// through this process's stale entries.
TEST_F(GmemTest, ReadMostlyCopiesNotReusedWhileMappedAfterFork) {
  ReadMostlyBlock rm(41);
  ASSERT_TRUE(rm.ok());
  ASSERT_TRUE(TakeThenDuplicate(dev(0), dev(1), rm));
  uint8_t *b = rm.b;
  const std::vector<uint8_t> &ref = rm.ref;

  int ready[2], go[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(go), 0);
  // The fork of the other process is the protection change.
  pid_t other = HoldAllDeviceMemory(1, ready[1], go[0]);
  ASSERT_GT(other, 0);
  char status = 0;
  ASSERT_EQ(read(ready[0], &status, 1), 1);
  EXPECT_EQ(status, 0) << "the other process could not fill device 1";

  std::vector<uint8_t> got(kBlock);
  EXPECT_EQ(dev(1).Read(b, kBlock, got.data()), 0);
  Diff d = Compare(got, ref, kOtherProcessByte);
  EXPECT_EQ(d.differ, 0u) << d.foreign << " bytes of the other process's memory";
  EXPECT_EQ(dev(0).Checksum(b, kBlock), Fnv(ref.data(), kBlock));
  EXPECT_EQ(Fnv(b, kBlock), Fnv(ref.data(), kBlock));

  ASSERT_EQ(write(go[1], "g", 1), 1);
  int wstatus = 0;
  ASSERT_EQ(waitpid(other, &wstatus, 0), other);
  EXPECT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) << wstatus;
  for (int fd : {ready[0], ready[1], go[0], go[1]}) close(fd);
}

// Read-mostly coherence: the device that took the block on a read must not
// get a writable entry, or its later write lands without a fault while
// device 1 keeps reading its stale copy.
TEST_F(GmemTest, ReadMostlyWriteByFirstReaderReachesOtherCopies) {
  ReadMostlyBlock rm(43);
  ASSERT_TRUE(rm.ok());
  ASSERT_TRUE(TakeThenDuplicate(dev(0), dev(1), rm));
  uint8_t *b = rm.b;
  std::vector<uint8_t> ref = rm.ref;
  EXPECT_EQ(dev(0).Counters().mapped_write, 0u)
      << "a read of read-mostly data mapped device 0 writable";

  ASSERT_EQ(dev(0).Fill(b + kPage, kPage, 0x77), 0);
  memset(ref.data() + kPage, 0x77, kPage);
  std::vector<uint8_t> got(kBlock);
  ASSERT_EQ(dev(1).Read(b, kBlock, got.data()), 0);
  EXPECT_EQ(Compare(got, ref, 0).differ, 0u) << "device 1 read its stale copy";
  EXPECT_EQ(Fnv(b, kBlock), Fnv(ref.data(), kBlock));
}

// The same when device 0 took the block by writing it: its writable entries
// must become read-only before device 1 copies the block, so that its next
// write faults and ends the copies instead of landing unseen.
TEST_F(GmemTest, ReadMostlyWriteByWriterAfterDuplicationReachesOtherCopies) {
  ReadMostlyBlock rm(47);
  ASSERT_TRUE(rm.ok());
  uint8_t *b = rm.b;
  ASSERT_EQ(dev(0).Fill(b, kBlock, 0x11), 0);  // device 0 takes the block, writable
  std::vector<uint8_t> ref(kBlock, 0x11);
  tgm_counters before = dev(1).Counters();
  ASSERT_EQ(dev(1).Checksum(b, kBlock), Fnv(ref.data(), kBlock));
  ASSERT_EQ(dev(1).Counters().duplicated - before.duplicated, kBlock / kPage);
  EXPECT_EQ(dev(0).Counters().mapped_write, 0u) << "device 0 kept writable entries";

  uint64_t faults = 0;
  ASSERT_EQ(dev(0).gmem::Device::Fill(b, kPage, 0x22, &faults), 0);
  EXPECT_GT(faults, 0u) << "device 0 wrote read-mostly data without a fault";
  memset(ref.data(), 0x22, kPage);
  std::vector<uint8_t> got(kBlock);
  ASSERT_EQ(dev(1).Read(b, kBlock, got.data()), 0);
  EXPECT_EQ(Compare(got, ref, 0x11).differ, 0u) << "device 1 read its stale copy";
  EXPECT_EQ(Fnv(b, kBlock), Fnv(ref.data(), kBlock));
}

// HMADV_NO_ACCESS is a permission: once hmadvise() returns, the device
// reaches none of the range, not even through a fault that read the
// attributes before the change and maps the block after it. Each round, a
// second thread starts a device access that faults (slowly: the block
// migrates and page table updates wait 10 ms), the access is taken away
// meanwhile, and once that access has finished a device read must be
// refused.
TEST_F(GmemTest, NoAccessHoldsAgainstFaultsInFlight) {
  const int kRounds = 20;
  tgm_hazards slow = {};
  slow.flags = TGM_HAZARD_SLOW_MAP;
  slow.map_delay_us = 10000;
  HazardScope hazards(dev(0), slow);
  ASSERT_EQ(hazards.status(), 0);
  Mapping m(2 * kBlock);
  ASSERT_NE(m.get(), nullptr);
  uint8_t *b = AlignedBlock(m);
  Pattern(b, kBlock, 53);
  const int hnid = dev(0).hnid();
  const uintptr_t start = reinterpret_cast<uintptr_t>(b);
  std::atomic<int> started{0}, finished{0};
  std::thread faulter([&] {
    // Accesses of one file run in parallel (test_gmem takes its lock for
    // reading), as a GPU's queues fault while the process advises.
    for (int round = 1; round <= kRounds; round++) {
      while (started.load() < round) std::this_thread::yield();
      dev(0).Checksum(b, kBlock);
      finished.store(round);
    }
  });
  int granted_after_revoke = 0, refused = 0;
  std::vector<uint8_t> page(kPage);
  for (int round = 1; round <= kRounds; round++) {
    // Home first, so that the access migrates the block.
    ASSERT_EQ(Hmadvise(0, start, kBlock, HMADV_PREFETCH), 0);
    ASSERT_EQ(Hmadvise(hnid, start, kBlock, HMADV_UNSET_NO_ACCESS), 0);
    started.store(round);
    usleep(2000);
    ASSERT_EQ(Hmadvise(hnid, start, kBlock, HMADV_NO_ACCESS), 0);
    while (finished.load() < round) std::this_thread::yield();
    int ret = dev(0).Read(b + (round % 512) * kPage, kPage, page.data());
    granted_after_revoke += ret == 0;
    refused += ret == -EPERM;
  }
  faulter.join();
  EXPECT_EQ(granted_after_revoke, 0)
      << "device reads that succeeded after HMADV_NO_ACCESS returned, of " << kRounds;
  EXPECT_EQ(refused, kRounds);
}

TEST_F(GmemTest, HazardsRejectBadSettings) {
  tgm_hazards h = {};
  h.flags = 1U << 31;
  EXPECT_EQ(dev(0).SetHazards(h), -EINVAL) << "unknown flag";
  h = {};
  h.flags = TGM_HAZARD_SLOW_MAP;
  h.map_delay_us = 100001;
  EXPECT_EQ(dev(0).SetHazards(h), -EINVAL) << "delay too long";
  h = {};
  h.flags = TGM_HAZARD_SLOW_COPY;
  h.copy_delay_us = 100001;
  EXPECT_EQ(dev(0).SetHazards(h), -EINVAL) << "copy delay too long";
  h = {};
  h.pad = 1;
  EXPECT_EQ(dev(0).SetHazards(h), -EINVAL) << "pad set";
  h = {};
  h.flags = TGM_HAZARD_ASYNC_COPY;
  h.async_delay_us = 100001;
  EXPECT_EQ(dev(0).SetHazards(h), -EINVAL) << "copy job delay too long";
  h = {};
  h.flags = TGM_HAZARD_EVICT;
  h.evict_interval_us = 1000;
  h.evict_pages = 16;
  EXPECT_EQ(dev(0).SetHazards(h), -EINVAL) << "device 0 leaves its memory to GMEM: nobody else uses it";
  h.evict_interval_us = 999;
  EXPECT_EQ(dev(1).SetHazards(h), -EINVAL) << "eviction interval too short";
  h.evict_interval_us = 1000;
  h.evict_pages = 0;
  EXPECT_EQ(dev(1).SetHazards(h), -EINVAL) << "evicting no pages";
  h.evict_pages = 513;
  EXPECT_EQ(dev(1).SetHazards(h), -EINVAL) << "evicting too many pages at once";
  h = {};
  h.flags = TGM_HAZARD_LATE_FAULTS;
  h.late_interval_us = 99;
  EXPECT_EQ(dev(0).SetHazards(h), -EINVAL) << "late faults too often";
  h.late_interval_us = 1000001;
  EXPECT_EQ(dev(0).SetHazards(h), -EINVAL) << "late faults too rare";
  h = {};
  h.flags = TGM_HAZARD_SLOW_MAP;
  h.map_delay_us = 250;
  ASSERT_EQ(dev(0).SetHazards(h), 0);
  tgm_hazards got = {};
  ASSERT_EQ(dev(1).GetHazards(&got), 0);
  EXPECT_EQ(got.flags, 0u) << "hazards are per device";
  ASSERT_EQ(dev(0).GetHazards(&got), 0);
  EXPECT_EQ(got.flags, TGM_HAZARD_SLOW_MAP);
  EXPECT_EQ(got.map_delay_us, 250u);
  // The device still works, only slower.
  Mapping m(kBlock);
  ASSERT_NE(m.get(), nullptr);
  ASSERT_EQ(dev(0).Fill(m.get(), kBlock, 9), 0);
  EXPECT_EQ(m.get()[kBlock - 1], 9);
  ASSERT_EQ(dev(0).SetHazards(tgm_hazards{}), 0);
}

// Writes the device's sysfs pin_limit; false if the kernel refused it.
bool WritePinLimit(int hnid, const std::string &value) {
  std::ofstream out("/sys/kernel/mm/gmem/nodes/node" + std::to_string(hnid) + "/pin_limit");
  out << value;
  out.flush();
  return out.good();
}

// mm->pinned_vm of this process, in bytes ("VmPin" of /proc/self/status).
long VmPinBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmPin:", 0) == 0) return std::stol(line.substr(6)) * 1024;
  return -1;
}

// A process reaches a device only through a device its driver attached to
// it. A child of an attached process is a new address space: until it
// attaches itself, every device hint is refused, host hints are not.
TEST_F(GmemTest, HmadviseReachesOnlyDevicesAttachedToTheProcess) {
  Mapping m(kBlock);
  ASSERT_NE(m.get(), nullptr);
  const int hnid = dev(0).hnid();
  const uintptr_t a = m.addr();
  int status = InChild([&] {
    if (Hmadvise(hnid, a, kPage, HMADV_PREFETCH) != -EACCES) return 1;
    if (Hmadvise(hnid, a, kPage, HMADV_PIN) != -EACCES) return 2;
    if (Hmadvise(hnid, a, kPage, HMADV_PREFERRED_LOC) != -EACCES) return 3;
    if (Hmadvise(hnid, a, kPage, HMADV_NO_ACCESS) != -EACCES) return 4;
    if (Hmadvise(hnid, a, 0, HMADV_PREFETCH) != -EACCES) return 5;
    if (Hmadvise(0, a, kPage, HMADV_PREFETCH) != 0) return 6;  // host memory
    Device d(0);
    if (!d.ok() || d.Attach() != 0) return 7;
    if (Hmadvise(hnid, a, kPage, HMADV_PREFETCH) != 0) return 8;
    if (d.Detach() != 0) return 9;
    if (Hmadvise(hnid, a, kPage, HMADV_PREFETCH) != -EACCES) return 10;
    return 0;
  });
  EXPECT_EQ(status, 0) << "check " << status << " of the child failed";
  EXPECT_EQ(Hmadvise(hnid, a, kPage, HMADV_PREFETCH), 0) << "the parent is attached";
}

// Pinned device memory is charged like memory a driver pins for the
// process: VmPin grows and shrinks with it, RLIMIT_MEMLOCK limits a
// process without CAP_IPC_LOCK, and the charge goes with UNPIN and munmap.
TEST_F(GmemTest, PinIsChargedAgainstRlimitMemlock) {
  const int hnid = dev(0).hnid();
  int status = InChild([&] {
    Device d(0);
    if (!d.ok() || d.Attach() != 0) return 1;
    Mapping m(4 * kBlock);
    if (!m.get()) return 2;
    memset(m.get(), 1, m.size());
    rlimit lim = {kMiB, kMiB};
    if (setrlimit(RLIMIT_MEMLOCK, &lim) != 0) return 3;
    // An unprivileged user from here on: no CAP_IPC_LOCK.
    if (setgid(65534) != 0 || setuid(65534) != 0) return 4;
    long base = VmPinBytes();
    if (base < 0) return 5;
    if (Hmadvise(hnid, m.addr(), 2 * kMiB, HMADV_PIN) != -EPERM) return 6;
    if (VmPinBytes() != base) return 7;  // nothing charged, nothing pinned
    if (std::stoull(ReadSysfs(hnid, "pinned")) != 0) return 8;
    if (Hmadvise(hnid, m.addr(), kMiB / 2, HMADV_PIN) != 0) return 9;
    if (VmPinBytes() != base + static_cast<long>(kMiB / 2)) return 10;
    // Pinning it again costs nothing more; more than the rest of the limit fails.
    if (Hmadvise(hnid, m.addr(), kMiB / 2, HMADV_PIN) != 0) return 11;
    if (VmPinBytes() != base + static_cast<long>(kMiB / 2)) return 12;
    if (Hmadvise(hnid, m.addr() + kMiB, kMiB, HMADV_PIN) != -EPERM) return 13;
    if (Hmadvise(hnid, m.addr(), kMiB / 4, HMADV_UNPIN) != 0) return 14;
    if (VmPinBytes() != base + static_cast<long>(kMiB / 4)) return 15;
    // munmap: the charge goes once GMEM looks at the address space again.
    if (munmap(m.get(), kMiB / 2) != 0) return 16;
    if (Hmadvise(0, m.addr() + kMiB, kPage, HMADV_PREFETCH) != 0) return 17;
    if (VmPinBytes() != base) return 18;
    return 0;
  });
  EXPECT_EQ(status, 0) << "check " << status << " of the unprivileged child failed";
  // Root (CAP_IPC_LOCK) is not limited by RLIMIT_MEMLOCK.
  Mapping m(kBlock);
  ASSERT_NE(m.get(), nullptr);
  rlimit old = {}, lim = {0, 0};
  ASSERT_EQ(getrlimit(RLIMIT_MEMLOCK, &old), 0);
  ASSERT_EQ(setrlimit(RLIMIT_MEMLOCK, &lim), 0);
  long base = VmPinBytes();
  EXPECT_EQ(Hmadvise(hnid, m.addr(), kBlock, HMADV_PIN), 0);
  EXPECT_EQ(VmPinBytes(), base + static_cast<long>(kBlock));
  EXPECT_EQ(Hmadvise(hnid, m.addr(), kBlock, HMADV_UNPIN), 0);
  EXPECT_EQ(VmPinBytes(), base);
  ASSERT_EQ(setrlimit(RLIMIT_MEMLOCK, &old), 0);
}

// The administrator caps what processes may pin on a device.
TEST_F(GmemTest, PinLimitCapsEveryProcess) {
  const int hnid = dev(0).hnid();
  const std::string total = ReadSysfs(hnid, "total");
  ASSERT_EQ(ReadSysfs(hnid, "pin_limit"), total) << "the default is the whole device";
  auto write = [&](const std::string &v) { return WritePinLimit(hnid, v); };
  ASSERT_TRUE(write(std::to_string(kMiB)));
  EXPECT_EQ(ReadSysfs(hnid, "pin_limit"), std::to_string(kMiB));
  Mapping m(kBlock);
  ASSERT_NE(m.get(), nullptr);
  EXPECT_EQ(Hmadvise(hnid, m.addr(), kBlock, HMADV_PIN), -ENOSPC);
  EXPECT_EQ(Hmadvise(hnid, m.addr(), kMiB, HMADV_PIN), 0);
  EXPECT_FALSE(write(std::to_string(kMiB / 2))) << "below what is pinned";
  EXPECT_FALSE(write(std::to_string(std::stoull(total) + kPage))) << "over the device";
  EXPECT_FALSE(write("lots")) << "not a number";
  EXPECT_EQ(Hmadvise(hnid, m.addr(), kMiB, HMADV_UNPIN), 0);
  EXPECT_TRUE(write(total));
  EXPECT_EQ(ReadSysfs(hnid, "pin_limit"), total);
}

// A read of a read-mostly block whose faulting page is not in the primary
// device's memory (dropped with MADV_DONTNEED here) must map that page,
// not copy the others and leave the device faulting forever.
TEST_F(GmemTest, ReadMostlyFaultOnAPageOutsideThePrimaryCompletes) {
  ReadMostlyBlock rm(67);
  ASSERT_TRUE(rm.ok());
  uint8_t *b = rm.b;
  ASSERT_EQ(dev(0).Checksum(b, kBlock), Fnv(b, kBlock));  // the block goes to device 0
  uint8_t *x = b + 7 * kPage;
  ASSERT_EQ(madvise(x, kPage, MADV_DONTNEED), 0);
  std::vector<uint8_t> got(kPage, 0xff);
  EXPECT_EQ(dev(1).Read(x, kPage, got.data()), 0);
  EXPECT_EQ(std::count(got.begin(), got.end(), 0), static_cast<long>(kPage)) << "not the zero page";
  EXPECT_EQ(x[0], 0);
}

// Copies made while the range was read-mostly outlive the attribute: a
// device that writes after HMADV_UNSET_READ_MOSTLY, where nothing moves the
// block (HMADV_ACCESSED_BY), must still end them.
TEST_F(GmemTest, ReadMostlyUnsetThenWriteReachesOtherCopies) {
  ReadMostlyBlock rm(71);
  ASSERT_TRUE(rm.ok());
  ASSERT_TRUE(TakeThenDuplicate(dev(0), dev(1), rm));
  uint8_t *b = rm.b;
  std::vector<uint8_t> ref = rm.ref;
  const uintptr_t start = rm.addr();
  ASSERT_EQ(Hmadvise(0, start, kBlock, HMADV_UNSET_READ_MOSTLY), 0);
  // Device 0 maps the block where it is (its own memory): nothing moves.
  ASSERT_EQ(Hmadvise(dev(0).hnid(), start, kBlock, HMADV_ACCESSED_BY), 0);
  ASSERT_EQ(dev(0).Fill(b + kPage, kPage, 0x77), 0);
  memset(ref.data() + kPage, 0x77, kPage);
  std::vector<uint8_t> got(kBlock);
  ASSERT_EQ(dev(1).Read(b, kBlock, got.data()), 0);
  EXPECT_EQ(Compare(got, ref, 0).differ, 0u) << "device 1 read its stale copy";
}

// GM_ATTR_PINNED belongs to the range, not to a device: HMADV_UNPIN given
// with any device unpins the pages wherever they are.
TEST_F(GmemTest, UnpinThroughAnyDeviceUnpinsEveryDevice) {
  Mapping m(kBlock);
  ASSERT_NE(m.get(), nullptr);
  const int h0 = dev(0).hnid(), h1 = dev(1).hnid();
  const uint64_t pinned0 = std::stoull(ReadSysfs(h0, "pinned"));
  ASSERT_EQ(Hmadvise(h0, m.addr(), kBlock, HMADV_PIN), 0);
  EXPECT_EQ(std::stoull(ReadSysfs(h0, "pinned")) - pinned0, kBlock);
  ASSERT_EQ(Hmadvise(h1, m.addr(), kBlock, HMADV_UNPIN), 0);
  EXPECT_EQ(std::stoull(ReadSysfs(h0, "pinned")), pinned0) << "device 0 kept the pages pinned";
}

// A pin refused for the limit must not give back what earlier pins cost.
TEST_F(GmemTest, RefusedPinKeepsTheChargeOfEarlierPins) {
  int status = InChild([&] {
    Mapping m(4 * kMiB);
    if (!m.get()) return 1;
    rlimit lim = {kMiB, kMiB};
    if (setrlimit(RLIMIT_MEMLOCK, &lim) != 0) return 2;
    if (setgid(65534) != 0 || setuid(65534) != 0) return 3;
    long base = VmPinBytes();
    // Host memory: pinned in place, charged all the same.
    if (Hmadvise(0, m.addr(), kMiB / 2, HMADV_PIN) != 0) return 4;
    if (VmPinBytes() != base + static_cast<long>(kMiB / 2)) return 5;
    if (Hmadvise(0, m.addr() + kMiB, 2 * kMiB, HMADV_PIN) != -EPERM) return 6;
    if (VmPinBytes() != base + static_cast<long>(kMiB / 2)) return 7;
    if (Hmadvise(0, m.addr(), kMiB / 2, HMADV_UNPIN) != 0) return 8;
    if (VmPinBytes() != base) return 9;
    return 0;
  });
  EXPECT_EQ(status, 0) << "check " << status << " of the unprivileged child failed";
}

// A device removed at run time (unbind, hot-unplug) while processes have
// data on it and GMEM works on it from other threads: every byte comes
// home exactly, the device's node and its operations are gone with a
// clear errno, and a device plugged in again starts afresh.
TEST_F(GmemTest, UnplugWhileInUseBringsEveryByteHome) {
  const size_t len = 8 * kMiB;
  const int hnid = dev(1).hnid();
  Mapping mine(len), busy(2 * kBlock);
  ASSERT_NE(mine.get(), nullptr);
  ASSERT_NE(busy.get(), nullptr);
  Pattern(mine.get(), len, 61);
  std::vector<uint8_t> want(mine.get(), mine.get() + len);
  ASSERT_EQ(dev(1).Add(mine.get(), len, 5), 0);  // on the device, changed there
  gmem::AddToWords(want.data(), len, 5);

  // Another process with data on the device, which it checks after.
  int ready[2], go[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(go), 0);
  pid_t other = fork();
  ASSERT_GE(other, 0);
  if (other == 0) {
    Device d(1);
    Mapping m(4 * kMiB);
    char byte = 1, token;
    if (d.ok() && d.Attach() == 0 && m.get() && d.Fill(m.get(), m.size(), 0x3c) == 0) byte = 0;
    if (write(ready[1], &byte, 1) != 1 || read(go[0], &token, 1) != 1) _exit(2);
    for (size_t i = 0; i < m.size(); i++)
      if (m.get()[i] != 0x3c) _exit(3);
    _exit(byte);
  }
  char byte = 1;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  ASSERT_EQ(byte, 0) << "the other process could not use device 1";
  // Hints for this device end with it: a new device at the same node id
  // must not find them.
  Mapping hinted(kBlock);
  ASSERT_NE(hinted.get(), nullptr);
  ASSERT_EQ(Hmadvise(hnid, hinted.addr(), kBlock, HMADV_NO_ACCESS), 0);
  ASSERT_EQ(Hmadvise(hnid, hinted.addr(), kBlock, HMADV_PREFERRED_LOC), 0);

  // GMEM keeps moving memory to and from the device while it goes, with
  // copies slow enough that some are in flight when it does.
  tgm_hazards slow = {};
  slow.flags = TGM_HAZARD_SLOW_COPY;
  slow.copy_delay_us = 20000;
  Device ctl(1);
  ASSERT_TRUE(ctl.ok());
  HazardScope hazards(ctl, slow);  // off again once the device is back
  ASSERT_EQ(hazards.status(), 0);
  // Whatever fails below, later cases find the device plugged in.
  struct PlugBack {
    Device &dev;
    ~PlugBack() { dev.Plug(); }
  } plug_back{ctl};
  std::atomic<bool> stop{false};
  std::atomic<long> prefetches{0}, refused{0};
  std::thread mover([&] {
    while (!stop.load()) {
      long ret = Hmadvise(hnid, busy.addr(), busy.size(), HMADV_PREFETCH);
      if (ret == 0) prefetches++;
      if (ret == -ENODEV || ret == -EACCES) refused++;
      Hmadvise(0, busy.addr(), busy.size(), HMADV_PREFETCH);
    }
  });
  usleep(20000);
  ASSERT_EQ(ctl.Unplug(), 0);
  usleep(20000);
  stop = true;
  mover.join();
  EXPECT_GT(prefetches.load(), 0) << "nothing was in flight";
  EXPECT_GT(refused.load(), 0) << "hmadvise() kept reaching the removed device";

  EXPECT_EQ(memcmp(mine.get(), want.data(), len), 0) << "data on the device did not come home";
  ASSERT_EQ(write(go[1], "g", 1), 1);
  int status = 0;
  ASSERT_EQ(waitpid(other, &status, 0), other);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the other process's data: " << status;
  for (int fd : {ready[0], ready[1], go[0], go[1]}) close(fd);

  EXPECT_EQ(Hmadvise(hnid, mine.addr(), kPage, HMADV_PREFETCH), -ENODEV);
  EXPECT_EQ(dev(1).Fill(mine.get(), kPage, 1), -ENODEV);
  EXPECT_EQ(ctl.Unplug(), -EBUSY) << "unplugged already";
  EXPECT_TRUE(ReadSysfs(hnid, "total").empty()) << "the node is still in sysfs";

  ASSERT_EQ(ctl.Plug(), 0);
  EXPECT_EQ(ctl.Plug(), -EBUSY);
  {
    Device fresh(1);
    ASSERT_TRUE(fresh.ok());
    ASSERT_EQ(fresh.Attach(), 0);
    EXPECT_EQ(fresh.hnid(), hnid);
    EXPECT_EQ(fresh.Counters().resident, 0u);
    ASSERT_EQ(fresh.Fill(mine.get(), kMiB, 0x42), 0);
    EXPECT_EQ(fresh.Checksum(mine.get(), kMiB), Fnv(std::vector<uint8_t>(kMiB, 0x42).data(), kMiB));
    EXPECT_EQ(fresh.Fill(hinted.get(), kBlock, 0x24), 0) << "the old device's HMADV_NO_ACCESS";
    std::vector<tgm_range> ranges;
    ASSERT_EQ(fresh.Ranges(hinted.addr(), kBlock, &ranges), 0);
    for (const tgm_range &r : ranges) EXPECT_NE(r.preferred, hnid) << "the old device's preference";
  }
  // The fixture's file was detached by the unplug: it attaches again.
  EXPECT_EQ(dev(1).Attach(), 0);
}

// With the devices' TLBs on, every GMEM operation that changes what a
// device may reach has invalidated the cached translations by the time it
// returns: no later access uses a stale one (tlb_stale), and every read is
// byte-exact.
TEST_F(GmemTest, TlbHazardNoStaleTranslationAfterChanges) {
  tgm_hazards tlb = {};
  tlb.flags = TGM_HAZARD_TLB;
  HazardScope h0(dev(0), tlb), h1(dev(1), tlb);
  ASSERT_EQ(h0.status(), 0);
  ASSERT_EQ(h1.status(), 0);
  const uint64_t stale0 = dev(0).Counters().tlb_stale, stale1 = dev(1).Counters().tlb_stale;
  const uint64_t hits0 = dev(0).Counters().tlb_hits;
  ReadMostlyBlock rm(79);
  ASSERT_TRUE(rm.ok());
  ASSERT_EQ(Hmadvise(0, rm.addr(), kBlock, HMADV_UNSET_READ_MOSTLY), 0);
  uint8_t *b = rm.b;
  std::vector<uint8_t> &ref = rm.ref;
  auto device_reads_right = [&](Device &d, const char *after) {
    std::vector<uint8_t> got(kBlock);
    int ret = d.Read(b, kBlock, got.data());
    EXPECT_EQ(ret, 0) << after;
    EXPECT_EQ(ret ? 1 : Compare(got, ref, 0).differ, 0u) << after;
  };

  ASSERT_EQ(dev(0).Add(b, kBlock, 1), 0);  // the block moves to device 0
  gmem::AddToWords(ref.data(), kBlock, 1);
  device_reads_right(dev(0), "a fault");
  device_reads_right(dev(0), "a read through the TLB");
  b[5 * kPage] ^= 0xff;  // the CPU takes the block back
  ref[5 * kPage] ^= 0xff;
  device_reads_right(dev(0), "a CPU write");
  ASSERT_EQ(Hmadvise(dev(0).hnid(), rm.addr(), kBlock, HMADV_PREFETCH), 0);
  device_reads_right(dev(0), "a prefetch to the device");
  ASSERT_EQ(Hmadvise(0, rm.addr(), kBlock, HMADV_PREFETCH), 0);
  device_reads_right(dev(0), "a prefetch home");
  ASSERT_EQ(Hmadvise(0, rm.addr(), kBlock, HMADV_READ_MOSTLY), 0);
  ASSERT_TRUE(TakeThenDuplicate(dev(0), dev(1), rm));
  ASSERT_EQ(dev(0).Fill(b, kPage, 0x5a), 0);  // ends device 1's copies
  memset(ref.data(), 0x5a, kPage);
  device_reads_right(dev(1), "a write to read-mostly memory");
  ASSERT_EQ(mprotect(b, kBlock, PROT_READ), 0);
  EXPECT_EQ(dev(0).Fill(b, kPage, 1), -EACCES) << "wrote through a cached writable entry";
  ASSERT_EQ(mprotect(b, kBlock, PROT_READ | PROT_WRITE), 0);
  device_reads_right(dev(0), "mprotect");
  // A new mapping at the same address: nothing of the old one may show.
  ASSERT_EQ(mmap(b, kBlock, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0), b);
  memset(b, 0x33, kBlock);
  std::fill(ref.begin(), ref.end(), 0x33);
  device_reads_right(dev(0), "munmap and a new mapping");
  device_reads_right(dev(1), "munmap and a new mapping");

  EXPECT_GT(dev(0).Counters().tlb_hits, hits0) << "the TLB was not used";
  EXPECT_EQ(dev(0).Counters().tlb_stale, stale0) << "stale translations on device 0";
  EXPECT_EQ(dev(1).Counters().tlb_stale, stale1) << "stale translations on device 1";
}

// An empty range does nothing, but the node is still checked, as madvise()
// checks its arguments before it looks at the length: a caller probing a
// node with len 0 must not be told that a node which does not exist is fine.
// A driver's memory manager takes a part of device memory back (amdgpu's
// TTM evicting a buffer GMEM's pages came from): the driver reuses that
// memory once gm_dev_evict_range() returns, so the range must be empty
// then, whatever was in it: pinned pages, pages that prefer the device,
// read-mostly copies another device's data was duplicated into, and pages
// a migration still has locked. Every byte stays exact, through TLBs that
// keep what is not invalidated.
TEST_F(GmemTest, EvictRangeEmptiesPinnedCopiedAndBusyPages) {
  Device ctl(0);
  ASSERT_TRUE(ctl.ok());
  tgm_hazards hz = {};
  hz.flags = TGM_HAZARD_TLB | TGM_HAZARD_SLOW_COPY;
  hz.copy_delay_us = 100000;
  HazardScope hazards(ctl, hz);
  ASSERT_EQ(hazards.status(), 0);
  const int hnid = dev(0).hnid();
  const uint64_t total = dev(0).Counters().total;

  Mapping pin_m(2 * kBlock), pref_m(2 * kBlock), busy_m(2 * kBlock);
  ASSERT_TRUE(pin_m.get() && pref_m.get() && busy_m.get());
  uint8_t *pinned = AlignedBlock(pin_m), *preferred = AlignedBlock(pref_m), *busy = AlignedBlock(busy_m);
  Pattern(pinned, kBlock, 81);
  Pattern(preferred, kBlock, 82);
  Pattern(busy, kBlock, 83);
  std::vector<uint8_t> want_pinned(pinned, pinned + kBlock), want_preferred(preferred, preferred + kBlock),
      want_busy(busy, busy + kBlock);
  ASSERT_EQ(Hmadvise(hnid, reinterpret_cast<uintptr_t>(pinned), kBlock, HMADV_PIN), 0);
  ASSERT_EQ(Hmadvise(hnid, reinterpret_cast<uintptr_t>(preferred), kBlock, HMADV_PREFERRED_LOC), 0);
  ASSERT_EQ(dev(0).Add(preferred, kBlock, 3), 0);
  gmem::AddToWords(want_preferred.data(), kBlock, 3);
  ReadMostlyBlock rm(84);
  ASSERT_TRUE(rm.ok());
  ASSERT_TRUE(TakeThenDuplicate(dev(1), dev(0), rm));  // copies in device 0's memory
  const uint64_t settled = dev(0).Counters().resident;
  ASSERT_GE(settled, 3 * kBlock);

  // A prefetch whose copy is in flight: its device pages are allocated and
  // locked until the copy ends.
  std::atomic<long> prefetched{1};
  std::thread mover([&] { prefetched = Hmadvise(hnid, reinterpret_cast<uintptr_t>(busy), kBlock, HMADV_PREFETCH); });
  bool in_flight = false;
  for (int i = 0; i < 2000 && !in_flight; i++) {
    in_flight = dev(0).Counters().resident >= settled + kBlock;
    if (!in_flight) usleep(200);
  }
  hz.flags = TGM_HAZARD_TLB;  // the eviction's own copies run at full speed
  ASSERT_EQ(ctl.SetHazards(hz), 0);
  uint64_t evicted = 0;
  int ret = dev(0).EvictRange(0, total, &evicted);
  tgm_counters after = dev(0).Counters();
  mover.join();
  EXPECT_TRUE(in_flight) << "the prefetch was not in flight";
  EXPECT_EQ(prefetched.load(), 0);
  EXPECT_EQ(ret, 0);
  EXPECT_EQ(after.resident, 0u) << "pages left in the range the driver takes back";
  EXPECT_EQ(after.pinned, 0u);
  EXPECT_GE(evicted, settled) << "pinned, preferred and busy pages count as evicted";
  EXPECT_EQ(dev(0).Counters().resident, 0u) << "the in-flight migration landed after the eviction";

  // Device 0 reads the read-mostly block through its TLB again: its copies
  // are gone, so it must get fresh ones, not the memory they were in.
  EXPECT_EQ(dev(0).Checksum(rm.b, kBlock), Fnv(rm.ref.data(), kBlock));
  EXPECT_EQ(dev(0).Checksum(pinned, kBlock), Fnv(want_pinned.data(), kBlock));
  EXPECT_EQ(dev(0).Counters().tlb_stale, 0u);
  EXPECT_EQ(memcmp(pinned, want_pinned.data(), kBlock), 0);
  EXPECT_EQ(memcmp(preferred, want_preferred.data(), kBlock), 0);
  EXPECT_EQ(memcmp(busy, want_busy.data(), kBlock), 0);
  EXPECT_EQ(memcmp(rm.b, rm.ref.data(), kBlock), 0);
  EXPECT_EQ(Hmadvise(hnid, reinterpret_cast<uintptr_t>(pinned), kBlock, HMADV_UNPIN), 0);
}

// A CPU touch of data on a device while host memory runs out: the page
// that would take the data cannot be allocated. That is an out-of-memory
// fault, which the fault handler retries (or the OOM killer resolves), not
// a bus error: the process lives and reads its data once memory is there.
TEST_F(GmemTest, CpuFaultOnDeviceDataWithoutHostMemoryIsRetried) {
  constexpr long kFailures = 4;
  InjectedFailures failures("fail_page_alloc", kFailures);
  if (!failures.available())
    GTEST_SKIP() << "no /sys/kernel/debug/fail_page_alloc (CONFIG_FAIL_PAGE_ALLOC, "
                    "CONFIG_FAULT_INJECTION_DEBUG_FS)";
  // One page: the block GMEM moves back is the page itself, so the first
  // page allocation of the fault is the one for the data.
  Mapping m(kPage);
  ASSERT_NE(m.get(), nullptr);
  Pattern(m.get(), kPage, 71);
  std::vector<uint8_t> want(m.get(), m.get() + kPage);
  const uint64_t resident = dev(0).Counters().resident;
  ASSERT_EQ(dev(0).Add(m.get(), kPage, 9), 0);  // the data is on the device now
  gmem::AddToWords(want.data(), kPage, 9);
  ASSERT_EQ(dev(0).Counters().resident, resident + kPage);
  ASSERT_TRUE(failures.ok()) << "could not set up fail_page_alloc";

  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (!InjectedFailures::Target(true)) _exit(2);
    int same = memcmp(m.get(), want.data(), kPage) == 0;
    InjectedFailures::Target(false);
    _exit(same ? 0 : 3);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  long injected = kFailures - failures.left();
  EXPECT_GT(injected, 0) << "no allocation failed: the case proves nothing";
  ASSERT_FALSE(WIFSIGNALED(status)) << "the fault killed the process with signal " << WTERMSIG(status);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
}

TEST(GmemSyscallHardening, EmptyRangeStillChecksTheNode) {
  EXPECT_EQ(Hmadvise(0, kPage, 0, HMADV_PREFETCH), 0);
  EXPECT_EQ(Hmadvise(1000, kPage, 0, HMADV_PREFETCH), -ENODEV);
  EXPECT_EQ(Hmadvise(1000, kPage, 0, HMADV_PIN), -ENODEV);
  EXPECT_EQ(Hmadvise(-2, kPage, 0, HMADV_PREFETCH), -EINVAL);
  EXPECT_EQ(Hmadvise(-1, kPage, 0, HMADV_READ_MOSTLY), -EINVAL);
  EXPECT_EQ(Hmadvise(0, kPage, 0, HMADV_ACCESSED_BY), -EINVAL) << "a host node for a device hint";
}

// MAP_PEER_SHARED is accepted and ignored: it must not change what else the
// flags say. A value inside the MAP_HUGE_* field would turn a plain
// MAP_HUGETLB mapping of the default huge page size into a request for
// another size, and fail.
TEST(GmemSyscallHardening, MapPeerSharedLeavesHugePageSizeAlone) {
  const size_t len = 2 * kMiB;
  const int base = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB;
  void *plain = mmap(nullptr, len, PROT_READ | PROT_WRITE, base, -1, 0);
  if (plain == MAP_FAILED) GTEST_SKIP() << "no huge pages here (boot with hugepages=N): " << strerror(errno);
  munmap(plain, len);
  EXPECT_EQ(MAP_PEER_SHARED & (MAP_HUGE_MASK << MAP_HUGE_SHIFT), 0) << "inside the huge page size field";
  void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE, base | MAP_PEER_SHARED, -1, 0);
  ASSERT_NE(p, MAP_FAILED) << strerror(errno);
  static_cast<volatile uint8_t *>(p)[0] = 1;
  munmap(p, len);
}

// Churn two spans (128 MiB) away from the memory the devices use: it must
// restart none of their faults. With one notifier over the whole address
// space every invalidation anywhere restarted every fault in flight, and a
// read-mostly duplication, which copies the block between its look at the
// CPU page table and its update (slow copies make that 40 ms here), never
// survived the churn: the block was migrated instead of duplicated.
TEST_F(GmemTest, ChurnInAnotherSpanRestartsNoFaultAndNoDuplication) {
  constexpr size_t kSpan = 64 * kMiB;
  tgm_hazards hz = {};
  hz.flags = TGM_HAZARD_SLOW_COPY;
  hz.copy_delay_us = 20000;
  HazardsOnBoth slow(dev(0), dev(1), hz);
  ASSERT_TRUE(slow.ok());
  EXPECT_FALSE(ReadSysfs(dev(0).hnid(), "map_retries").empty()) << "no map_retries in sysfs";
  Mapping m(4 * kSpan);
  ASSERT_TRUE(m.get());
  uint8_t *block = reinterpret_cast<uint8_t *>((m.addr() + kSpan - 1) & ~(kSpan - 1));
  uint8_t *churn = block + 2 * kSpan;
  Pattern(block, kBlock, 91);
  const uint64_t want = Fnv(block, kBlock);
  ASSERT_EQ(Hmadvise(0, reinterpret_cast<uintptr_t>(block), kBlock, HMADV_READ_MOSTLY), 0);
  const uint64_t retries0 = MapRetries(dev(0)), retries1 = MapRetries(dev(1));

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> invalidations{0};
  std::thread churner([&] {
    while (!stop.load()) {
      churn[0] = 1;
      madvise(churn, kPage, MADV_DONTNEED);
      invalidations++;
    }
  });
  const uint64_t churned_before = invalidations.load();
  const uint64_t dup_before = dev(1).Counters().duplicated;
  const uint64_t first = dev(0).Checksum(block, kBlock);
  const uint64_t second = dev(1).Checksum(block, kBlock);
  const uint64_t copied = dev(1).Counters().duplicated - dup_before;
  const uint64_t churned = invalidations.load() - churned_before;
  stop = true;
  churner.join();

  EXPECT_EQ(first, want);
  EXPECT_EQ(second, want);
  EXPECT_GT(churned, 10u) << "the churn did not run alongside the faults";
  EXPECT_EQ(copied, kBlock / kPage) << "the duplication was undone by " << churned
                                    << " invalidations elsewhere";
  EXPECT_EQ(MapRetries(dev(0)) - retries0, 0u);
  EXPECT_EQ(MapRetries(dev(1)) - retries1, 0u);
}

// GMEM's own migrations still take the migrating device's PTEs away: the
// device may be using the old pages while they are copied. Here device 0
// adds to a block it maps in place (ACCESSED_BY) while GMEM moves the
// block into its memory and back, with slow copies. An invalidation
// skipped because GMEM itself raised it (range->owner) would leave device
// 0 writing to the source pages after they were copied, and lose adds.
TEST_F(GmemTest, DeviceWritesDuringItsOwnMigrationAreNotLost) {
  tgm_hazards hz = {};
  hz.flags = TGM_HAZARD_SLOW_COPY | TGM_HAZARD_TLB;
  hz.copy_delay_us = 20000;
  HazardScope slow(dev(0), hz);
  ASSERT_EQ(slow.status(), 0);
  Mapping m(2 * kBlock);
  ASSERT_TRUE(m.get());
  uint8_t *block = AlignedBlock(m);
  const uintptr_t addr = reinterpret_cast<uintptr_t>(block);
  Pattern(block, kBlock, 93);
  std::vector<uint8_t> want(block, block + kBlock);
  const int hnid = dev(0).hnid();
  ASSERT_EQ(Hmadvise(hnid, addr, kBlock, HMADV_ACCESSED_BY), 0);

  constexpr size_t kAddLen = 16 * kPage;
  std::atomic<bool> done{false};
  std::atomic<int> adds{0}, failed{0}, first_error{0};
  std::thread writer([&] {
    while (!done.load()) {
      int ret = dev(0).Add(block, kAddLen, 1);
      if (ret != 0 && !failed++) first_error = ret;
      adds++;
    }
  });
  int moves = 0, adds_during = -adds.load();
  for (; moves < 16; moves++) {
    long ret = Hmadvise(moves % 2 ? 0 : hnid, addr, kBlock, HMADV_PREFETCH);
    if (ret != 0) {
      ADD_FAILURE() << "prefetch " << moves << ": " << ret;
      break;
    }
  }
  adds_during += adds.load();
  done = true;
  writer.join();
  ASSERT_EQ(failed.load(), 0) << "of " << adds.load() << " device adds; the first: "
                              << strerror(-first_error.load());
  EXPECT_GT(adds_during, 8) << "the writes did not overlap the migrations";
  gmem::AddToWords(want.data(), kAddLen, static_cast<uint32_t>(adds.load()));
  size_t differ = 0;
  for (size_t i = 0; i < kBlock; i++) differ += block[i] != want[i];
  EXPECT_EQ(differ, 0u) << "device writes lost across " << moves << " migrations";
}

// A hint over a huge range that is almost all unmapped: GMEM watches the
// CPU page table only where memory is mapped, so the kernel state the hint
// leaves is that of the one mapped block. Spans made for the whole range
// took 95 MiB of slab for these 16 TiB (and 7 s under QEMU), not freed
// before the process exits.
TEST_F(GmemTest, HintOnAHugeMostlyUnmappedRangeMakesStateOnlyWhereMapped) {
  constexpr uintptr_t kLow = 1ULL << 32;
  constexpr size_t kHuge = 1ULL << 44;
  void *p = mmap(reinterpret_cast<void *>(kLow), kBlock, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  ASSERT_EQ(p, reinterpret_cast<void *>(kLow)) << strerror(errno);
  memset(p, 7, kBlock);
  const long slab_before = MeminfoKiB("Slab:");
  ASSERT_GT(slab_before, 0);
  const long ret = Hmadvise(0, kLow, kHuge, HMADV_PREFERRED_LOC);
  const long slab_after = MeminfoKiB("Slab:");
  EXPECT_EQ(ret, -ENOMEM) << "the range has holes";
  EXPECT_LT(slab_after, slab_before + 4096) << "slab grew by " << slab_after - slab_before
                                            << " KiB for one mapped block";
  // The mapped block still works with the devices.
  EXPECT_EQ(dev(0).Checksum(p, kBlock), Fnv(p, kBlock));
  EXPECT_EQ(Hmadvise(0, kLow, kHuge, HMADV_UNSET_PREFERRED_LOC), -ENOMEM);
  munmap(p, kBlock);
}

// hmadvise() walks a range block by block, and a prefetch to the device
// takes a copy per block: 100 ms each here, 16 blocks. A fatal signal must
// end the call at the next block, not after the whole range: before, the
// killed process stayed in the system call for the rest of it.
TEST_F(GmemTest, FatalSignalEndsALongPrefetchAtTheNextBlock) {
  tgm_hazards hz = {};
  hz.flags = TGM_HAZARD_SLOW_COPY;
  hz.copy_delay_us = 100000;
  HazardScope slow(dev(0), hz);
  ASSERT_EQ(slow.status(), 0);
  constexpr size_t kLen = 16 * kBlock;
  // Seconds from the start of the prefetch (or from the kill, after
  // kill_after_ms) until the child that prefetches is gone.
  auto prefetch_in_child = [&](int kill_after_ms) -> double {
    int ready[2];
    if (pipe(ready) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
      close(ready[0]);
      Device d(0);
      if (!d.ok() || d.Attach() != 0) _exit(2);
      Mapping m(kLen + kBlock);
      uint8_t *b = m.get() ? AlignedBlock(m) : nullptr;
      if (!b) _exit(3);
      memset(b, 1, kLen);
      char byte = 0;
      if (write(ready[1], &byte, 1) != 1) _exit(4);
      _exit(Hmadvise(d.hnid(), reinterpret_cast<uintptr_t>(b), kLen, HMADV_PREFETCH) ? 5 : 0);
    }
    close(ready[1]);
    char byte;
    const bool started = read(ready[0], &byte, 1) == 1;
    close(ready[0]);
    auto t0 = std::chrono::steady_clock::now();
    if (started && kill_after_ms) {
      usleep(kill_after_ms * 1000);
      kill(pid, SIGKILL);
      t0 = std::chrono::steady_clock::now();
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!started) return -1;
    if (!kill_after_ms && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) return -1;
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  const double whole = prefetch_in_child(0);
  const double after_kill = prefetch_in_child(300);
  std::printf("whole prefetch %.2f s, killed one gone %.2f s after the kill\n", whole,
              after_kill);
  ASSERT_GT(whole, 1.0) << "the prefetch was not slow (or failed)";
  ASSERT_GE(after_kill, 0.0);
  EXPECT_LT(after_kill, whole / 3) << "the killed prefetch went on for " << after_kill
                                   << " s of a " << whole << " s prefetch";
}

// A device whose faults ask for the whole block, as a GPU driver's do (a
// retry fault costs the GPU microseconds), gets memory it maps in place
// faulted in and mapped a block at a time. HMM faults in a hole from the
// faulting page to the end of the range, so a device reading upwards
// takes two faults per block either way; one reading downwards, as a
// GPU's waves may, took a fault per page (stock amdkfd faulted in whole
// ranges). The CPU writes the first page, so the block is no hole; no
// THP, which would fault in the whole block at that write.
TEST_F(GmemTest, BlockFaultsMapAWholeBlockInPlace) {
  Mapping m(3 * kBlock);
  ASSERT_TRUE(m.get());
  ASSERT_EQ(madvise(m.get(), m.size(), MADV_NOHUGEPAGE), 0);
  uint8_t *per_page = AlignedBlock(m), *per_block = per_page + kBlock;
  const uintptr_t start = reinterpret_cast<uintptr_t>(per_page);
  ASSERT_EQ(Hmadvise(dev(0).hnid(), start, 2 * kBlock, HMADV_ACCESSED_BY), 0);
  per_page[0] = per_block[0] = 0x5a;
  const tgm_counters before = dev(0).Counters();
  // Every page from the last down; the faults of all the reads.
  auto read_down = [&](uint8_t *block, uint64_t *faults) {
    *faults = 0;
    for (size_t page = kBlock / kPage; page-- > 0;) {
      uint64_t hash = 0, f = 0;
      int err = dev(0).gmem::Device::Checksum(block + page * kPage, kPage, &hash, &f);
      if (err) return err;
      *faults += f;
    }
    return 0;
  };
  uint64_t faults = 0;
  ASSERT_EQ(read_down(per_page, &faults), 0);
  EXPECT_GE(faults, kBlock / kPage - 1) << "without block faults, one per page";
  const uint64_t per_page_faults = faults;

  tgm_hazards hz = {};
  hz.flags = TGM_HAZARD_BLOCK_FAULTS;
  HazardScope block(dev(0), hz);
  ASSERT_EQ(block.status(), 0);
  ASSERT_EQ(read_down(per_block, &faults), 0);
  EXPECT_EQ(faults, 1u) << "the first fault maps the whole block";
  std::printf("[ block    ] a block read downwards: %llu faults, %llu with block faults\n",
              static_cast<unsigned long long>(per_page_faults), static_cast<unsigned long long>(faults));
  std::vector<uint8_t> want(kBlock, 0);
  want[0] = 0x5a;
  EXPECT_EQ(dev(0).Checksum(per_block, kBlock), Fnv(want.data(), kBlock));
  // A write faults once more: the zero pages become the process's own.
  ASSERT_EQ(dev(0).gmem::Device::Fill(per_block, kBlock, 0x3c, &faults), 0);
  EXPECT_EQ(faults, 1u);
  size_t differ = 0;
  for (size_t i = 0; i < kBlock; i++) differ += per_block[i] != 0x3c;
  EXPECT_EQ(differ, 0u) << "the device's writes are not in host memory";
  const tgm_counters after = dev(0).Counters();
  EXPECT_EQ(after.migrated_to, before.migrated_to) << "accessed-by memory moved";
}

// Hints on one range must not send back device faults on another. A fault
// that read the attributes before a change anywhere in the process looked
// again, and after eight such changes gave up with EBUSY, which a GPU
// driver turns into a fatal fault. Here every fault takes 20 ms between its
// look at the attributes and its PTEs (slow page table updates), while
// another thread keeps changing an unrelated range of the same process for
// both devices: no-access on and off, and the drivers' bits.
TEST_F(GmemTest, HintsElsewhereDoNotSendDeviceFaultsBack) {
  tgm_hazards hz = {};
  hz.flags = TGM_HAZARD_SLOW_MAP;
  hz.map_delay_us = 20000;
  HazardsOnBoth slow(dev(0), dev(1), hz);
  ASSERT_TRUE(slow.ok());
  constexpr int kBlocks = 4;
  Mapping m((kBlocks + 1) * kBlock), elsewhere(16 * kPage);
  ASSERT_TRUE(m.get());
  ASSERT_TRUE(elsewhere.get());
  uint8_t *blocks = AlignedBlock(m);
  Pattern(blocks, kBlocks * kBlock, 97);
  // One block is mapped in place and one duplicated: each path checks.
  ASSERT_EQ(Hmadvise(dev(0).hnid(), reinterpret_cast<uintptr_t>(blocks + kBlock), kBlock, HMADV_ACCESSED_BY), 0);
  ASSERT_EQ(Hmadvise(0, reinterpret_cast<uintptr_t>(blocks + 2 * kBlock), kBlock, HMADV_READ_MOSTLY), 0);

  std::atomic<bool> stop{false};
  std::atomic<long> changes{0}, refused{0};
  std::thread hinter([&] {
    for (unsigned i = 0; !stop.load(); i++) {
      Device &d = dev(i % 2);
      const uintptr_t page = elsewhere.addr() + (i / 2 % 16) * kPage;
      const bool on = i / 4 % 2;
      long ret = i / 8 % 2 ? Hmadvise(d.hnid(), page, kPage, on ? HMADV_NO_ACCESS : HMADV_UNSET_NO_ACCESS)
                           : d.RangeBits(page, kPage, 0x1, on, 0, 0);
      (ret ? refused : changes)++;
    }
  });
  const long changes_before = changes.load();
  std::vector<std::string> errors;
  for (int b = 0; b < kBlocks; b++) {
    uint8_t *block = blocks + b * kBlock;
    const uint64_t want = Fnv(block, kBlock);
    for (int d = 0; d < 2; d++) {
      int err = 0;
      const uint64_t sum = dev(d).Checksum(block, kBlock, &err);
      if (err || sum != want)
        errors.push_back("block " + std::to_string(b) + " on device " + std::to_string(d) + ": " +
                         (err ? strerror(-err) : "wrong checksum"));
    }
  }
  const long changed = changes.load() - changes_before;
  stop = true;
  hinter.join();
  for (const auto &e : errors) ADD_FAILURE() << e;
  EXPECT_EQ(refused.load(), 0) << "hints or driver-bit changes refused";
  EXPECT_GT(changed, 100) << "the changes elsewhere did not run alongside the faults";
}

}  // namespace
// Device page table updates run under GMEM's mapping lock, which reclaim
// can need, so they may not reclaim; they must not get the memory reserves
// (PF_MEMALLOC) instead either: those are for the tasks that free memory.
// Faults, migrations between the devices and back, read-mostly copies
// (write-protect), fork (COW write-protect of host pages a device maps),
// an eviction and munmap run every kind of update; the simulated device
// counts the pmap_enter() calls that came with the reserves open (only
// those: reclaim itself rightly runs invalidations with PF_MEMALLOC).
TEST_F(GmemTest, PageTableUpdatesNeverGetTheMemoryReserves) {
  auto total = [&](__u64 tgm_counters::*field) -> uint64_t { return dev(0).Counters().*field + dev(1).Counters().*field; };
  const uint64_t enter0 = total(&tgm_counters::pmap_enter), release0 = total(&tgm_counters::pmap_release),
                 protect0 = total(&tgm_counters::pmap_protect), reserves0 = total(&tgm_counters::with_reserves);

  Mapping m(4 * kBlock);
  ASSERT_TRUE(m.get());
  uint8_t *moved = m.get(), *rm = m.get() + kBlock, *remote = m.get() + 2 * kBlock, *evicted = m.get() + 3 * kBlock;
  Pattern(m.get(), m.size(), 17);
  std::vector<uint8_t> want(m.get(), m.get() + m.size());

  ASSERT_EQ(dev(0).Add(moved, kBlock, 1), 0);
  ASSERT_EQ(dev(1).Add(moved, kBlock, 2), 0);
  gmem::AddToWords(want.data(), kBlock, 3);
  ASSERT_EQ(Hmadvise(dev(0).hnid(), reinterpret_cast<uintptr_t>(rm), kBlock, HMADV_READ_MOSTLY), 0);
  EXPECT_EQ(dev(0).Checksum(rm, kBlock), Fnv(want.data() + kBlock, kBlock));
  EXPECT_EQ(dev(1).Checksum(rm, kBlock), Fnv(want.data() + kBlock, kBlock));
  ASSERT_EQ(Hmadvise(dev(1).hnid(), reinterpret_cast<uintptr_t>(remote), kBlock, HMADV_ACCESSED_BY), 0);
  ASSERT_EQ(Hmadvise(0, reinterpret_cast<uintptr_t>(remote), kBlock, HMADV_PREFERRED_LOC), 0);
  EXPECT_EQ(dev(1).Checksum(remote, kBlock), Fnv(want.data() + 2 * kBlock, kBlock));
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_EQ(dev(0).Add(evicted, kBlock, 4), 0);
  gmem::AddToWords(want.data() + 3 * kBlock, kBlock, 4);
  uint64_t freed = 0;
  ASSERT_EQ(dev(0).Evict(dev(0).Counters().resident, &freed), 0);
  EXPECT_EQ(memcmp(m.get(), want.data(), m.size()), 0);
  munmap(m.get(), m.size());
  m.forget();

  EXPECT_GT(total(&tgm_counters::pmap_enter), enter0);
  EXPECT_GT(total(&tgm_counters::pmap_release), release0);
  EXPECT_GT(total(&tgm_counters::pmap_protect), protect0) << "no write-protect ran: the case misses one kind";
  EXPECT_EQ(total(&tgm_counters::with_reserves), reserves0) << "updates made with PF_MEMALLOC set";
}

// Detaching a device drops the attributes that name it, so that a device
// attached later at the same index does not inherit them. Dropping them
// must not depend on memory: a detach cannot fail, and attributes left
// behind would deny or steer the next device. Here every slab allocation
// of the detaching task fails.
TEST_F(GmemTest, DetachForgetsTheDeviceEvenWithoutMemory) {
  InjectedFailures failures("failslab", 1000);
  if (!failures.available())
    GTEST_SKIP() << "no /sys/kernel/debug/failslab (CONFIG_FAILSLAB, CONFIG_FAULT_INJECTION_DEBUG_FS)";
  ASSERT_TRUE(failures.ok()) << "could not set up failslab";
  Mapping m(kBlock);
  ASSERT_TRUE(m.get());
  Pattern(m.get(), kBlock, 5);
  const uintptr_t a = m.addr();
  const int hnid = dev(0).hnid();
  int status = InChild([&] {
    Device d(0);
    uint8_t byte;
    if (!d.ok() || d.Attach() != 0) return 1;
    if (Hmadvise(hnid, a, kBlock, HMADV_NO_ACCESS) != 0) return 2;
    if (d.Read(m.get(), 1, &byte) != -EPERM) return 3;
    const int target = open("/proc/self/make-it-fail", O_WRONLY | O_CLOEXEC);
    if (target < 0 || !InjectedFailures::Target(target, true)) return 4;
    int probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
    const bool injected = probe < 0 && errno == ENOMEM;
    if (probe >= 0) close(probe);
    int detached = d.Detach();
    if (!InjectedFailures::Target(target, false)) return 10;
    close(target);
    if (!injected) return 9;  // allocations did not fail: the case proves nothing
    if (detached != 0) return 5;
    const int attached = d.Attach();
    if (attached != 0) return 100 - attached;  // 100 + errno
    if (d.Read(m.get(), 1, &byte) != 0) return 7;  // the old NO_ACCESS is gone
    return byte == m.get()[0] ? 0 : 8;
  });
  EXPECT_EQ(status, 0) << "check " << status << " of the child failed (100 + errno: attach)";
}

// Unmapping memory ends its attributes, also when more unmaps come before
// GMEM next looks at them than it can note at once. Here 64 separate
// pages go, then the range with a NO_ACCESS hint, which is mapped again at
// the same address before any hint or fault: the new memory must not be
// denied to the device by the old hint.
TEST_F(GmemTest, ManyUnmapsDoNotLeaveOldHintsOnNewMemory) {
  constexpr int kHoles = 64;
  Mapping others(2 * kHoles * kPage);
  ASSERT_TRUE(others.get());
  Mapping m(2 * kBlock);
  ASSERT_TRUE(m.get());
  uint8_t *r = AlignedBlock(m);
  const int hnid = dev(0).hnid();
  uint8_t byte = 0;
  ASSERT_EQ(Hmadvise(hnid, reinterpret_cast<uintptr_t>(r), kBlock, HMADV_NO_ACCESS), 0);
  ASSERT_EQ(dev(0).Read(r, 1, &byte), -EPERM) << "the hint did not take";
  for (int i = 0; i < kHoles; i++) ASSERT_EQ(munmap(others.get() + 2 * i * kPage, kPage), 0);
  ASSERT_EQ(munmap(r, kBlock), 0);
  void *again = mmap(r, kBlock, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  ASSERT_EQ(again, static_cast<void *>(r)) << strerror(errno);
  memset(r, 0x5a, kBlock);
  EXPECT_EQ(dev(0).Read(r, 1, &byte), 0) << "the unmapped range's NO_ACCESS held for new memory";
  EXPECT_EQ(byte, 0x5a);
}

// pin_limit holds for every page GMEM pins, not only for the hint's own
// check: pages of a pinned range that a forced eviction took home are
// pinned again when they come back, and concurrent pins each pass a check
// made before either pinned. Here block A is pinned up to the limit, then
// evicted, block B pinned in the room that left, and A touched again.
TEST_F(GmemTest, PinLimitHoldsForPinnedPagesThatComeBack) {
  const int hnid = dev(0).hnid();
  auto write = [&](const std::string &v) { return WritePinLimit(hnid, v); };
  struct LimitBack {
    int hnid;
    std::string total;
    ~LimitBack() { WritePinLimit(hnid, total); }
  } back{hnid, ReadSysfs(hnid, "total")};
  Mapping m(3 * kBlock);
  ASSERT_TRUE(m.get());
  uint8_t *a = AlignedBlock(m), *b = a + kBlock;
  Pattern(a, 2 * kBlock, 29);
  const uint64_t want = Fnv(a, kBlock);
  ASSERT_EQ(dev(0).Counters().pinned, 0u) << "pins left over by another case";
  ASSERT_TRUE(write(std::to_string(kBlock)));
  ASSERT_EQ(Hmadvise(hnid, reinterpret_cast<uintptr_t>(a), kBlock, HMADV_PIN), 0);
  ASSERT_EQ(dev(0).Counters().pinned, kBlock);
  uint64_t evicted = 0;
  ASSERT_EQ(dev(0).EvictRange(0, dev(0).Counters().total, &evicted), 0);
  ASSERT_EQ(dev(0).Counters().pinned, 0u) << "the forced eviction left pinned pages";
  ASSERT_EQ(Hmadvise(hnid, reinterpret_cast<uintptr_t>(b), kBlock, HMADV_PIN), 0);
  ASSERT_EQ(dev(0).Counters().pinned, kBlock);
  EXPECT_EQ(dev(0).Checksum(a, kBlock), want);
  EXPECT_LE(dev(0).Counters().pinned, kBlock) << "pinned past pin_limit";
  EXPECT_EQ(Hmadvise(hnid, reinterpret_cast<uintptr_t>(a), 2 * kBlock, HMADV_UNPIN), 0);
  EXPECT_EQ(dev(0).Counters().pinned, 0u);
}

// A pin belongs to the range it was given for. mremap() moves the pages
// to an address no hint covers, and the old range's pin and charge go
// with its unmap: the pages must then be evictable, not pinned with no
// one holding the pin (done again and again, that would pin the whole
// device for nothing).
TEST_F(GmemTest, MremapOfPinnedMemoryLeavesNoOrphanedPins) {
  const int hnid = dev(0).hnid();
  Mapping src(2 * kBlock), dst(2 * kBlock);
  ASSERT_TRUE(src.get() && dst.get());
  uint8_t *a = AlignedBlock(src), *b = AlignedBlock(dst);
  Pattern(a, kBlock, 41);
  std::vector<uint8_t> want(a, a + kBlock);
  ASSERT_EQ(dev(0).Counters().pinned, 0u) << "pins left over by another case";
  const long vmpin = VmPinBytes();
  ASSERT_EQ(Hmadvise(hnid, reinterpret_cast<uintptr_t>(a), kBlock, HMADV_PIN), 0);
  ASSERT_EQ(dev(0).Counters().pinned, kBlock);
  void *moved = mremap(a, kBlock, kBlock, MREMAP_MAYMOVE | MREMAP_FIXED, b);
  ASSERT_EQ(moved, static_cast<void *>(b)) << strerror(errno);
  uint8_t byte = 0;
  ASSERT_EQ(dev(0).Read(b, 1, &byte), 0);  // GMEM catches up with the unmap
  EXPECT_EQ(VmPinBytes(), vmpin) << "the moved range is still charged";
  EXPECT_EQ(dev(0).Counters().pinned, 0u) << "device pages pinned with no pin hint anywhere";
  uint64_t freed = 0;
  ASSERT_EQ(dev(0).Evict(dev(0).Counters().resident, &freed), 0);
  EXPECT_GE(freed, kBlock) << "the moved pages could not be evicted";
  EXPECT_EQ(memcmp(b, want.data(), kBlock), 0);
}

// Read-only copies are device memory like any other: when the device needs
// room they go before data must be evicted or mapped from afar, and the
// next read makes them again. Here device 1 holds copies of three blocks
// and is then limited to what they take: a plain block it reads must
// still come into its memory.
TEST_F(GmemTest, ReadOnlyCopiesMakeRoomWhenTheDeviceIsFull) {
  LimitScope limit_back(dev(1));
  ReadMostlyBlock rm[3] = {ReadMostlyBlock(51), ReadMostlyBlock(52), ReadMostlyBlock(53)};
  for (auto &r : rm) {
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(TakeThenDuplicate(dev(0), dev(1), r));
  }
  const tgm_counters copied = dev(1).Counters();
  ASSERT_GE(copied.resident, 3 * kBlock) << "the copies are not in device 1's memory";
  ASSERT_EQ(dev(1).SetLimit(copied.resident), 0);  // full with copies
  Mapping m(2 * kBlock);
  ASSERT_TRUE(m.get());
  uint8_t *plain = AlignedBlock(m);
  Pattern(plain, kBlock, 54);
  EXPECT_EQ(dev(1).Checksum(plain, kBlock), Fnv(plain, kBlock));
  const tgm_counters after = dev(1).Counters();
  EXPECT_EQ(after.migrated_to - copied.migrated_to, kBlock / kPage) << "the block did not come in";
  EXPECT_EQ(after.remote_mapped, copied.remote_mapped) << "mapped from afar while copies held the room";
  EXPECT_LE(after.resident, copied.resident);
  for (auto &r : rm) EXPECT_EQ(dev(1).Checksum(r.b, kBlock), Fnv(r.ref.data(), kBlock));
}

}  // namespace gmem_test
