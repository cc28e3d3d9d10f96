// GMEM under adversarial use: each case reproduces a defect a reviewer
// found in the core (one process seeing another's memory, a device writing
// past other devices' copies) and must keep failing if the protection that
// fixes it goes.
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "gmem_device.h"
#include "gmem_fixture.h"

namespace gmem_test {
namespace {

constexpr size_t kBlock = 2 * kMiB;
constexpr uint8_t kOtherProcessByte = 0x5b;

// The 2 MiB-aligned block inside a mapping of two blocks.
uint8_t *AlignedBlock(const Mapping &m) {
  return reinterpret_cast<uint8_t *>((m.addr() + kBlock - 1) & ~(kBlock - 1));
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

// Read-mostly copies on device 1, then a fork: the fork write-protects the
// parent's pages (MMU_NOTIFY_PROTECTION_PAGE). GMEM must not give the
// copies' device pages back while device 1's page table still maps them:
// another process that then fills device 1 would have its bytes read
// through this process's stale entries.
TEST_F(GmemTest, ReadMostlyCopiesNotReusedWhileMappedAfterFork) {
  Mapping m(2 * kBlock);
  ASSERT_NE(m.get(), nullptr);
  uint8_t *b = AlignedBlock(m);
  Pattern(b, kBlock, 41);
  std::vector<uint8_t> ref(b, b + kBlock);
  ASSERT_EQ(Hmadvise(0, reinterpret_cast<uintptr_t>(b), kBlock, HMADV_READ_MOSTLY), 0);
  ASSERT_EQ(dev(0).Checksum(b, kBlock), Fnv(ref.data(), kBlock));  // takes the block
  tgm_counters before = dev(1).Counters();
  ASSERT_EQ(dev(1).Checksum(b, kBlock), Fnv(ref.data(), kBlock));  // copies
  ASSERT_EQ(dev(1).Counters().duplicated - before.duplicated, kBlock / kPage);

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
  Mapping m(2 * kBlock);
  ASSERT_NE(m.get(), nullptr);
  uint8_t *b = AlignedBlock(m);
  Pattern(b, kBlock, 43);
  std::vector<uint8_t> ref(b, b + kBlock);
  ASSERT_EQ(Hmadvise(0, reinterpret_cast<uintptr_t>(b), kBlock, HMADV_READ_MOSTLY), 0);
  ASSERT_EQ(dev(0).Checksum(b, kBlock), Fnv(ref.data(), kBlock));
  ASSERT_EQ(dev(1).Checksum(b, kBlock), Fnv(ref.data(), kBlock));
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
  Mapping m(2 * kBlock);
  ASSERT_NE(m.get(), nullptr);
  uint8_t *b = AlignedBlock(m);
  Pattern(b, kBlock, 47);
  ASSERT_EQ(Hmadvise(0, reinterpret_cast<uintptr_t>(b), kBlock, HMADV_READ_MOSTLY), 0);
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

// An empty range does nothing, but the node is still checked, as madvise()
// checks its arguments before it looks at the length: a caller probing a
// node with len 0 must not be told that a node which does not exist is fine.
TEST(GmemSyscallHardening, EmptyRangeStillChecksTheNode) {
  EXPECT_EQ(Hmadvise(0, kPage, 0, HMADV_PREFETCH), 0);
  EXPECT_EQ(Hmadvise(1000, kPage, 0, HMADV_PREFETCH), -ENODEV);
  EXPECT_EQ(Hmadvise(1000, kPage, 0, HMADV_PIN), -ENODEV);
  EXPECT_EQ(Hmadvise(-2, kPage, 0, HMADV_PREFETCH), -EINVAL);
  EXPECT_EQ(Hmadvise(-1, kPage, 0, HMADV_READ_MOSTLY), -EINVAL);
  EXPECT_EQ(Hmadvise(0, kPage, 0, HMADV_ACCESSED_BY), -EINVAL) << "a host node for a device hint";
}

}  // namespace
}  // namespace gmem_test
