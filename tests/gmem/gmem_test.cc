// GMEM guest tests: the simulated devices of lib/test_gmem.c use plain
// process memory through GMEM; hmadvise() moves it and changes placement.
#include <fcntl.h>
#include <linux/gmem.h>
#include <linux/test_gmem.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "gmem_device.h"
#include "gmem_fixture.h"
#include "model_stress.h"

namespace {

using namespace gmem_test;

TEST_F(GmemTest, NodesInSysfs) {
  for (int i = 0; i < 2; i++) {
    tgm_counters c = dev(i).Counters();
    EXPECT_GE(c.hnid, 1);
    EXPECT_EQ(ReadSysfs(static_cast<int>(c.hnid), "name"), "test_gmem" + std::to_string(i));
    EXPECT_EQ(std::stoull(ReadSysfs(static_cast<int>(c.hnid), "total")), c.total);
    EXPECT_GE(c.total, 2 * kMiB);
  }
  EXPECT_EQ(dev(1).hnid(), dev(0).hnid() + 1);
}

TEST_F(GmemTest, AttachTwiceIsEexist) {
  EXPECT_EQ(dev().Attach(), -EEXIST);
}

TEST_F(GmemTest, MallocCoherentBothWays) {
  const size_t n = 4 * kMiB;
  uint8_t *buf = static_cast<uint8_t *>(malloc(n));
  ASSERT_NE(buf, nullptr);
  Pattern(buf, n, 1);
  tgm_counters before = dev().Counters();
  // Device sees CPU writes.
  EXPECT_EQ(dev().Checksum(buf, n), Fnv(buf, n));
  tgm_counters after = dev().Counters();
  EXPECT_GT(after.migrated_to, before.migrated_to);
  EXPECT_GT(after.mapped_device, 0u);
  std::vector<uint8_t> copy(n);
  ASSERT_EQ(dev().Read(buf, n, copy.data()), 0);
  EXPECT_EQ(memcmp(copy.data(), buf, n), 0);  // CPU touch migrates back
  // CPU sees device writes.
  std::vector<uint8_t> src(n);
  Pattern(src.data(), n, 2);
  ASSERT_EQ(dev().Write(buf, n, src.data()), 0);
  EXPECT_EQ(memcmp(buf, src.data(), n), 0);
  // Unaligned sub-range writes are byte exact.
  ASSERT_EQ(dev().Fill(buf + 4093, 7, 0xab), 0);
  for (size_t i = 4090; i < 4103; i++)
    EXPECT_EQ(buf[i], (i >= 4093 && i < 4100) ? 0xab : src[i]) << i;
  free(buf);
}

TEST_F(GmemTest, MmapAndStackMemory) {
  Mapping m(1 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  ASSERT_EQ(dev().Fill(m.get(), m.size(), 0x5a), 0);
  for (size_t i = 0; i < m.size(); i += 511) ASSERT_EQ(m.get()[i], 0x5a);

  alignas(64) uint32_t stack[2048];
  for (uint32_t i = 0; i < 2048; i++) stack[i] = i;
  ASSERT_EQ(dev().Add(stack, sizeof(stack), 3), 0);
  for (uint32_t i = 0; i < 2048; i++) ASSERT_EQ(stack[i], i + 3);
}

TEST_F(GmemTest, UntouchedMemoryReadsZero) {
  Mapping m(2 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  std::vector<uint8_t> zero(m.size(), 0);
  EXPECT_EQ(dev().Checksum(m.get(), m.size()), Fnv(zero.data(), zero.size()));
  EXPECT_EQ(memcmp(m.get(), zero.data(), m.size()), 0);
}

TEST_F(GmemTest, PrefetchToDeviceAndBack) {
  Mapping m(4 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  Pattern(m.get(), m.size(), 3);
  uint64_t sum = Fnv(m.get(), m.size());
  tgm_counters c0 = dev().Counters();
  ASSERT_EQ(Hmadvise(dev().hnid(), m.addr(), m.size(), HMADV_PREFETCH), 0);
  tgm_counters c1 = dev().Counters();
  EXPECT_EQ(c1.migrated_to - c0.migrated_to, m.size() / kPage);
  EXPECT_EQ(c1.resident - c0.resident, m.size());
  // Already there: the device maps without migrating.
  EXPECT_EQ(dev().Checksum(m.get(), m.size()), sum);
  tgm_counters c2 = dev().Counters();
  EXPECT_EQ(c2.migrated_to, c1.migrated_to);
  // Back to host node 0.
  ASSERT_EQ(Hmadvise(0, m.addr(), m.size(), HMADV_PREFETCH), 0);
  tgm_counters c3 = dev().Counters();
  EXPECT_EQ(c3.migrated_from - c2.migrated_from, m.size() / kPage);
  EXPECT_EQ(c3.resident, c0.resident);
  EXPECT_EQ(Fnv(m.get(), m.size()), sum);
}

TEST_F(GmemTest, PrefetchMovesBetweenDevices) {
  Mapping m(2 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  Pattern(m.get(), m.size(), 4);
  uint64_t sum = Fnv(m.get(), m.size());
  ASSERT_EQ(Hmadvise(dev(0).hnid(), m.addr(), m.size(), HMADV_PREFETCH), 0);
  uint64_t r1 = dev(1).Counters().resident;
  ASSERT_EQ(Hmadvise(dev(1).hnid(), m.addr(), m.size(), HMADV_PREFETCH), 0);
  EXPECT_EQ(dev(1).Counters().resident - r1, m.size());
  EXPECT_EQ(dev(1).Checksum(m.get(), m.size()), sum);
  EXPECT_EQ(Fnv(m.get(), m.size()), sum);
}

TEST_F(GmemTest, DontneedDeviceKeepsData) {
  Mapping m(2 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  Pattern(m.get(), m.size(), 5);
  uint64_t sum = Fnv(m.get(), m.size());
  uint64_t r0 = dev().Counters().resident;
  ASSERT_EQ(dev().Checksum(m.get(), m.size()), sum);
  EXPECT_EQ(dev().Counters().resident - r0, m.size());
  ASSERT_EQ(Hmadvise(dev().hnid(), m.addr(), m.size(), HMADV_DONTNEED), 0);
  tgm_counters c = dev().Counters();
  EXPECT_EQ(c.resident, r0);
  EXPECT_EQ(c.mapped_device, 0u);
  EXPECT_EQ(Fnv(m.get(), m.size()), sum);
}

TEST_F(GmemTest, DontneedNoNodeDiscards) {
  Mapping m(2 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  memset(m.get(), 0x77, m.size());
  uint64_t r0 = dev().Counters().resident;
  ASSERT_EQ(dev().Fill(m.get(), m.size(), 0x66), 0);
  ASSERT_EQ(Hmadvise(HMADV_NODE_NONE, m.addr(), m.size(), HMADV_DONTNEED), 0);
  EXPECT_EQ(dev().Counters().resident, r0);
  for (size_t i = 0; i < m.size(); i += 4096) ASSERT_EQ(m.get()[i], 0);
  std::vector<uint8_t> zero(m.size(), 0);
  EXPECT_EQ(dev().Checksum(m.get(), m.size()), Fnv(zero.data(), zero.size()));
}

// HMADV_PREFETCH with no node brings device pages home where the memory
// policy of the range puts them (amdkfd's SYSMEM prefetch names no node).
// The guest has one NUMA node, so this shows the pages and data come home,
// not which node they land on.
TEST_F(GmemTest, PrefetchWithoutANodeBringsPagesHome) {
  HazardousDevice hazardous(TGM_HAZARD_TLB | TGM_HAZARD_ASYNC_COPY);
  ASSERT_TRUE(hazardous.ok());
  Mapping m(4 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  memset(m.get(), 0x11, m.size());
  const tgm_counters c0 = dev().Counters();
  ASSERT_EQ(dev().Fill(m.get(), m.size(), 0x5a), 0);
  ASSERT_EQ(dev().Counters().resident - c0.resident, m.size()) << "the fill did not migrate";
  ASSERT_EQ(Hmadvise(HMADV_NODE_NONE, m.addr(), m.size(), HMADV_PREFETCH), 0);
  const tgm_counters c1 = dev().Counters();
  EXPECT_EQ(c1.resident, c0.resident);
  EXPECT_EQ(c1.migrated_from - c0.migrated_from, m.size() / kPage);
  std::vector<uint8_t> want(m.size(), 0x5a);
  EXPECT_EQ(Fnv(m.get(), m.size()), Fnv(want.data(), want.size()));
  EXPECT_EQ(dev().Checksum(m.get(), m.size()), Fnv(want.data(), want.size()));
  EXPECT_EQ(dev().Counters().tlb_stale, c0.tlb_stale);
}

TEST_F(GmemTest, AccessedByMapsInPlace) {
  Mapping m(2 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  Pattern(m.get(), m.size(), 6);
  ASSERT_EQ(Hmadvise(dev().hnid(), m.addr(), m.size(), HMADV_ACCESSED_BY), 0);
  tgm_counters c0 = dev().Counters();
  EXPECT_EQ(dev().Checksum(m.get(), m.size()), Fnv(m.get(), m.size()));
  tgm_counters c1 = dev().Counters();
  EXPECT_EQ(c1.migrated_to, c0.migrated_to);
  EXPECT_GT(c1.remote_mapped, c0.remote_mapped);
  EXPECT_GT(c1.mapped_host, 0u);
  // Device writes land in host memory directly.
  ASSERT_EQ(dev().Fill(m.get(), kPage, 0x42), 0);
  EXPECT_EQ(m.get()[0], 0x42);
  EXPECT_EQ(dev().Counters().migrated_to, c0.migrated_to);
  // The other device still migrates.
  EXPECT_EQ(dev(1).Checksum(m.get(), m.size()), Fnv(m.get(), m.size()));
  EXPECT_GT(dev(1).Counters().migrated_to, 0u);
  ASSERT_EQ(Hmadvise(dev().hnid(), m.addr(), m.size(), HMADV_UNSET_ACCESSED_BY), 0);
}

TEST_F(GmemTest, PreferredLocation) {
  Mapping m(2 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  memset(m.get(), 1, m.size());
  ASSERT_EQ(Hmadvise(0, m.addr(), m.size(), HMADV_PREFERRED_LOC), 0);
  uint64_t to = dev().Counters().migrated_to;
  ASSERT_EQ(dev().Fill(m.get(), m.size(), 2), 0);
  EXPECT_EQ(dev().Counters().migrated_to, to);
  EXPECT_EQ(m.get()[12345], 2);
  // Preferred on device 1: device 0 maps in place, device 1 migrates.
  ASSERT_EQ(Hmadvise(dev(1).hnid(), m.addr(), m.size(), HMADV_PREFERRED_LOC), 0);
  uint64_t to1 = dev(1).Counters().migrated_to;
  EXPECT_EQ(dev(1).Checksum(m.get(), m.size()), Fnv(m.get(), m.size()));
  EXPECT_EQ(dev(1).Counters().migrated_to - to1, m.size() / kPage);
  ASSERT_EQ(Hmadvise(0, m.addr(), m.size(), HMADV_UNSET_PREFERRED_LOC), 0);
  ASSERT_EQ(Hmadvise(0, m.addr(), m.size(), HMADV_PREFETCH), 0);
  to = dev().Counters().migrated_to;
  EXPECT_EQ(dev().Checksum(m.get(), m.size()), Fnv(m.get(), m.size()));
  EXPECT_EQ(dev().Counters().migrated_to - to, m.size() / kPage);
}

// Read-mostly: the first reader takes the block, other readers get
// read-only copies; a device write or a CPU access collapses them.
TEST_F(GmemTest, ReadMostlyDuplicatesOnTwoDevices) {
  const size_t block = 2 * kMiB, pages = block / kPage;
  Mapping m(2 * block);
  ASSERT_NE(m.get(), nullptr);
  uint8_t *b = reinterpret_cast<uint8_t *>((m.addr() + block - 1) & ~(block - 1));
  Pattern(b, block, 3);
  std::vector<uint8_t> ref(b, b + block);
  ASSERT_EQ(Hmadvise(0, reinterpret_cast<uintptr_t>(b), block, HMADV_READ_MOSTLY), 0);
  tgm_counters a0 = dev(0).Counters(), b0 = dev(1).Counters();

  EXPECT_EQ(dev(0).Checksum(b, block), Fnv(ref.data(), block));
  tgm_counters a1 = dev(0).Counters();
  EXPECT_EQ(a1.migrated_to - a0.migrated_to, pages) << "the first reader takes the block";
  EXPECT_EQ(dev(1).Checksum(b, block), Fnv(ref.data(), block));
  tgm_counters b1 = dev(1).Counters();
  EXPECT_EQ(b1.duplicated - b0.duplicated, pages) << "the second reader gets copies";
  EXPECT_EQ(b1.migrated_to, b0.migrated_to);
  EXPECT_EQ(dev(0).Counters().migrated_from, a1.migrated_from) << "the block left device 0";
  EXPECT_EQ(dev(0).Counters().resident - a0.resident, block);
  EXPECT_EQ(b1.resident - b0.resident, block);
  // Both read again at local speed: nothing moves, nothing is copied.
  EXPECT_EQ(dev(0).Checksum(b, block), Fnv(ref.data(), block));
  EXPECT_EQ(dev(1).Checksum(b, block), Fnv(ref.data(), block));
  EXPECT_EQ(dev(0).Counters().migrated_to, a1.migrated_to);
  EXPECT_EQ(dev(1).Counters().duplicated, b1.duplicated);
  EXPECT_EQ(dev(1).Counters().faults, b1.faults);

  // A write by device 1 collapses the copies: the block moves to it.
  ASSERT_EQ(dev(1).Fill(b, kPage, 0x77), 0);
  memset(ref.data(), 0x77, kPage);
  tgm_counters a2 = dev(0).Counters(), b2 = dev(1).Counters();
  EXPECT_EQ(a2.migrated_from - a1.migrated_from, pages);
  EXPECT_EQ(b2.migrated_to - b1.migrated_to, pages);
  EXPECT_EQ(b2.resident - b0.resident, block) << "device 1's copies were not dropped";
  // Device 0 now duplicates from device 1 and sees the write.
  EXPECT_EQ(dev(0).Checksum(b, block), Fnv(ref.data(), block));
  EXPECT_EQ(dev(0).Counters().duplicated - a2.duplicated, pages);
  // The CPU takes the block back; every copy goes.
  EXPECT_EQ(memcmp(b, ref.data(), block), 0);
  EXPECT_EQ(dev(0).Counters().resident, a0.resident);
  EXPECT_EQ(dev(1).Counters().resident, b0.resident);
}

TEST_F(GmemTest, PinOnTheHostStaysInPlace) {
  Mapping m(2 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  memset(m.get(), 3, m.size());
  ASSERT_EQ(Hmadvise(0, m.addr(), m.size(), HMADV_PIN), 0);
  uint64_t to = dev(1).Counters().migrated_to;
  ASSERT_EQ(dev(1).Fill(m.get(), m.size(), 5), 0);
  EXPECT_EQ(dev(1).Counters().migrated_to, to);
  EXPECT_EQ(m.get()[m.size() - 1], 5);
  ASSERT_EQ(Hmadvise(0, m.addr(), m.size(), HMADV_UNPIN), 0);
  // Hints apply at the next fault: drop device 1's writable remote mapping.
  ASSERT_EQ(Hmadvise(dev(1).hnid(), m.addr(), m.size(), HMADV_DONTNEED), 0);
  ASSERT_EQ(dev(1).Fill(m.get(), m.size(), 6), 0);
  EXPECT_GT(dev(1).Counters().migrated_to, to);
}

TEST_F(GmemTest, NoAccessIsEperm) {
  Mapping m(1 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  memset(m.get(), 1, m.size());
  ASSERT_EQ(dev().Fill(m.get(), m.size(), 9), 0);
  ASSERT_EQ(Hmadvise(dev().hnid(), m.addr(), m.size(), HMADV_NO_ACCESS), 0);
  EXPECT_EQ(dev().Counters().mapped_device, 0u);
  int err = 0;
  dev().Checksum(m.get(), m.size(), &err);
  EXPECT_EQ(err, -EPERM);
  EXPECT_EQ(dev(1).Fill(m.get(), kPage, 8), 0);  // only device 0 is excluded
  ASSERT_EQ(Hmadvise(dev().hnid(), m.addr(), m.size(), HMADV_UNSET_NO_ACCESS), 0);
  dev().Checksum(m.get(), m.size(), &err);
  EXPECT_EQ(err, 0);
  EXPECT_EQ(m.get()[0], 8);
  EXPECT_EQ(m.get()[kPage], 9);
}

TEST_F(GmemTest, ReadOnlyAndProtNone) {
  Mapping ro(1 * kMiB, PROT_READ);
  ASSERT_NE(ro.get(), nullptr);
  uint64_t to = dev().Counters().migrated_to;
  EXPECT_EQ(dev().Fill(ro.get(), ro.size(), 1), -EACCES);
  EXPECT_EQ(dev().Counters().migrated_to, to);
  std::vector<uint8_t> zero(ro.size(), 0);
  int err = 0;
  EXPECT_EQ(dev().Checksum(ro.get(), ro.size(), &err), Fnv(zero.data(), zero.size()));
  EXPECT_EQ(err, 0);

  Mapping none(1 * kMiB, PROT_NONE);
  ASSERT_NE(none.get(), nullptr);
  to = dev().Counters().migrated_to;
  dev().Checksum(none.get(), none.size(), &err);
  EXPECT_EQ(err, -EACCES);
  EXPECT_EQ(dev().Fill(none.get(), none.size(), 1), -EACCES);
  EXPECT_EQ(dev().Counters().migrated_to, to);
}

TEST_F(GmemTest, UnmappedIsEfault) {
  Mapping m(1 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  uint8_t *p = m.get();
  munmap(p, m.size());
  m.forget();
  int err = 0;
  dev().Checksum(p, kPage, &err);
  EXPECT_EQ(err, -EFAULT);
}

// Devices that cannot fault (gm_as_map_range()).

// Device faults a checksum of [p, p + n) takes; its error in *err.
uint64_t ChecksumFaults(Device &d, const void *p, size_t n, uint64_t *hash, int *err) {
  uint64_t faults = 0;
  *err = static_cast<gmem::Device &>(d).Checksum(p, n, hash, &faults);
  return faults;
}

// The simulated device updates its page table as a GPU driver does: only
// with the table reserved by pmap_prepare(), and unmapping allocates and
// may sleep. Faults, mapping without faults and read-only duplicates must
// all reserve first; lockdep (on in the test kernel) checks the lock order.
TEST_F(GmemTest, EveryPageTableUpdateIsReservedFirst) {
  const size_t block = 2 * kMiB;
  Mapping m(3 * block);
  ASSERT_NE(m.get(), nullptr);
  uint8_t *b = reinterpret_cast<uint8_t *>((m.addr() + block - 1) & ~(block - 1));
  Pattern(b, 2 * block, 9);
  uint64_t want = Fnv(b, block);
  tgm_counters a0 = dev(0).Counters(), b0 = dev(1).Counters();

  EXPECT_EQ(dev(0).Checksum(b, block), want);  // device faults
  ASSERT_EQ(dev(1).MapRange(reinterpret_cast<uintptr_t>(b) + block, block, true), 0);
  ASSERT_EQ(Hmadvise(0, reinterpret_cast<uintptr_t>(b), block, HMADV_READ_MOSTLY), 0);
  EXPECT_EQ(dev(1).Checksum(b, block), want);  // a read-only duplicate
  tgm_counters a1 = dev(0).Counters(), b1 = dev(1).Counters();
  EXPECT_GT(a1.pmap_enter, a0.pmap_enter);
  EXPECT_GT(b1.pmap_enter, b0.pmap_enter);
  EXPECT_GT(b1.duplicated, b0.duplicated);
  EXPECT_GE(a1.pmap_prepare - a0.pmap_prepare, a1.pmap_enter - a0.pmap_enter);
  EXPECT_GE(b1.pmap_prepare - b0.pmap_prepare, b1.pmap_enter - b0.pmap_enter);
  EXPECT_EQ(a1.enter_unprepared, 0u);
  EXPECT_EQ(b1.enter_unprepared, 0u);

  // Unmapping goes through the sleeping pmap_release() of both devices.
  ASSERT_EQ(munmap(m.get(), m.size()), 0);
  m.forget();
  EXPECT_GT(dev(0).Counters().pmap_release, a1.pmap_release);
  EXPECT_GT(dev(1).Counters().pmap_release, b1.pmap_release);
}

// Device 1 allocates its device pages itself, as a GPU driver sharing its
// memory through TTM does; device 0 leaves that to GMEM. Data must come
// back byte-exact through the pages the driver chose, and every page it
// handed out is given back once the memory is gone.
TEST_F(GmemTest, DriverAllocatedDevicePages) {
  Mapping m(4 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  Pattern(m.get(), m.size(), 77);
  std::vector<uint8_t> want(m.get(), m.get() + m.size());
  tgm_counters a0 = dev(0).Counters(), b0 = dev(1).Counters();

  ASSERT_EQ(dev(1).Add(m.get(), m.size(), 3), 0);  // migrates, then writes
  tgm_counters b1 = dev(1).Counters();
  EXPECT_EQ(b1.own_allocs - b0.own_allocs, m.size() / kPage);
  EXPECT_EQ(b1.migrated_to - b0.migrated_to, m.size() / kPage);
  // The driver may not sleep while allocating: GMEM asks it first.
  EXPECT_GT(b1.own_reserves, b0.own_reserves);
  EXPECT_EQ(b1.own_unreserved, b0.own_unreserved) << "allocated without a reservation";
  EXPECT_EQ(dev(0).Counters().own_allocs, a0.own_allocs) << "device 0 uses GMEM's allocator";
  EXPECT_EQ(a0.own_allocs, 0u);

  // Back to the CPU: every byte went through the driver's pages.
  for (size_t i = 0; i < want.size(); i += 4) {
    uint32_t word;
    memcpy(&word, &want[i], 4);
    word += 3;
    memcpy(&want[i], &word, 4);
  }
  EXPECT_EQ(Fnv(m.get(), m.size()), Fnv(want.data(), want.size()));
  EXPECT_EQ(dev(1).Counters().own_frees - b0.own_frees, m.size() / kPage);

  // And again into the device, then gone with the mapping.
  EXPECT_EQ(dev(1).Checksum(m.get(), m.size()), Fnv(want.data(), want.size()));
  ASSERT_EQ(munmap(m.get(), m.size()), 0);
  m.forget();
  tgm_counters b2 = dev(1).Counters();
  EXPECT_EQ(b2.own_allocs - b0.own_allocs, 2 * m.size() / kPage);
  EXPECT_EQ(b2.own_frees, b2.own_allocs) << "pages never given back";
}

TEST_F(GmemTest, MapRangeNeedsNoDeviceFault) {
  Mapping m(4 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  Pattern(m.get(), m.size(), 41);
  uint64_t want = Fnv(m.get(), m.size());
  tgm_counters before = dev().Counters();
  ASSERT_EQ(dev().MapRange(m.addr(), m.size(), true), 0);
  tgm_counters after = dev().Counters();
  EXPECT_EQ(after.faults, before.faults) << "mapping is not faulting";
  EXPECT_EQ(after.migrated_to, before.migrated_to + m.size() / kPage)
      << "placed as a fault would: in device memory";
  EXPECT_EQ(after.mapped_device, m.size() / kPage);
  EXPECT_EQ(after.mapped_write, m.size() / kPage);

  uint64_t hash = 0;
  int err = 0;
  EXPECT_EQ(ChecksumFaults(dev(), m.get(), m.size(), &hash, &err), 0u);
  EXPECT_EQ(err, 0);
  EXPECT_EQ(hash, want);
  uint64_t faults = 1;
  EXPECT_EQ(static_cast<gmem::Device &>(dev()).Add(m.get(), m.size(), 1, &faults), 0);
  EXPECT_EQ(faults, 0u) << "mapped writable";

  // A CPU access takes the block back: the device must map it again.
  m.get()[0] ^= 1;
  EXPECT_GT(ChecksumFaults(dev(), m.get(), m.size(), &hash, &err), 0u);
  EXPECT_EQ(err, 0);
}

TEST_F(GmemTest, MapRangePopulatesUntouchedMemoryInPlace) {
  Mapping m(4 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  ASSERT_EQ(Hmadvise(0, m.addr(), m.size(), HMADV_PREFERRED_LOC), 0);
  tgm_counters before = dev().Counters();
  ASSERT_EQ(dev().MapRange(m.addr(), m.size(), false), 0);
  tgm_counters after = dev().Counters();
  // Host memory preferred: the never-touched pages are faulted in on the
  // host and mapped where they are, read-only as asked.
  EXPECT_EQ(after.resident, before.resident);
  EXPECT_EQ(after.mapped_host, m.size() / kPage);
  EXPECT_EQ(after.mapped_write, 0u);
  EXPECT_EQ(after.faults, before.faults);
  uint64_t hash = 0;
  int err = 0;
  std::vector<uint8_t> zero(m.size(), 0);
  EXPECT_EQ(ChecksumFaults(dev(), m.get(), m.size(), &hash, &err), 0u);
  EXPECT_EQ(err, 0);
  EXPECT_EQ(hash, Fnv(zero.data(), zero.size()));
}

TEST_F(GmemTest, MapRangeOnlyMapsWhatWasAsked) {
  Mapping m(4 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  ASSERT_EQ(Hmadvise(0, m.addr(), m.size(), HMADV_PREFERRED_LOC), 0);
  // One page in the middle of a 2 MiB block.
  ASSERT_EQ(dev().MapRange(m.addr() + kMiB, kPage, true), 0);
  EXPECT_EQ(dev().Counters().mapped_host, 1u);
  EXPECT_EQ(dev().Counters().mapped_write, 1u);
}

TEST_F(GmemTest, MapRangeMapsReadOnlyVmasReadOnly) {
  Mapping ro(1 * kMiB, PROT_READ);
  ASSERT_NE(ro.get(), nullptr);
  ASSERT_EQ(dev().MapRange(ro.addr(), ro.size(), true), 0);
  EXPECT_EQ(dev().Counters().mapped_write, 0u);
  uint64_t hash = 0;
  int err = 0;
  EXPECT_EQ(ChecksumFaults(dev(), ro.get(), ro.size(), &hash, &err), 0u);
  EXPECT_EQ(err, 0);
  EXPECT_EQ(dev().Fill(ro.get(), ro.size(), 1), -EACCES);

  Mapping none(1 * kMiB, PROT_NONE);
  ASSERT_NE(none.get(), nullptr);
  EXPECT_EQ(dev().MapRange(none.addr(), none.size(), false), -EACCES);
}

TEST_F(GmemTest, MapRangeStopsAtTheFirstHoleOrNoAccess) {
  Mapping m(3 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  memset(m.get(), 7, m.size());
  ASSERT_EQ(munmap(m.get() + kMiB, kMiB), 0);
  EXPECT_EQ(dev().MapRange(m.addr(), m.size(), true), -EFAULT);
  // What came before the hole is mapped.
  uint64_t hash = 0;
  int err = 0;
  EXPECT_EQ(ChecksumFaults(dev(), m.get(), kMiB, &hash, &err), 0u);
  EXPECT_EQ(err, 0);

  ASSERT_EQ(Hmadvise(dev().hnid(), m.addr() + 2 * kMiB, kMiB, HMADV_NO_ACCESS), 0);
  EXPECT_EQ(dev().MapRange(m.addr() + 2 * kMiB, kMiB, false), -EPERM);

  EXPECT_EQ(dev().MapRange(m.addr() + 8, kPage, false), -EINVAL);
  EXPECT_EQ(dev().MapRange(m.addr(), kPage - 1, false), -EINVAL);
  EXPECT_EQ(dev().MapRange(m.addr(), 0, false), -EINVAL);
  EXPECT_EQ(dev().MapRange(~uintptr_t{0} & ~(kPage - 1), 2 * kPage, false), -EINVAL);
}

// Driver state on ranges, handed to pmap_enter (struct gm_map_attrs).

tgm_last_map LastMap(Device &d) {
  tgm_last_map last = {};
  EXPECT_EQ(d.LastMap(&last), 0);
  return last;
}

TEST_F(GmemTest, PmapEnterGetsTheDriverStateOfTheRange) {
  Mapping m(4 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  memset(m.get(), 3, m.size());
  ASSERT_EQ(dev().RangeBits(m.addr(), 2 * kMiB, 0xff, 0x5a, ~0ull, 0xabcdef0123ull), 0);
  uint64_t hash = 0;
  int err = 0;
  ChecksumFaults(dev(), m.get(), kPage, &hash, &err);
  ASSERT_EQ(err, 0);
  tgm_last_map last = LastMap(dev());
  EXPECT_EQ(last.va, m.addr());
  EXPECT_EQ(last.npages, 2 * kMiB / kPage) << "one block, one call";
  EXPECT_EQ(last.drv_flags, 0x5au);
  EXPECT_EQ(last.word, 0xabcdef0123ull);
  // The other block has none.
  ChecksumFaults(dev(), m.get() + 2 * kMiB, kPage, &hash, &err);
  ASSERT_EQ(err, 0);
  last = LastMap(dev());
  EXPECT_EQ(last.va, m.addr() + 2 * kMiB);
  EXPECT_EQ(last.drv_flags, 0u);
  EXPECT_EQ(last.word, 0u);
  // The other device sees the word but not this device's bits.
  ChecksumFaults(dev(1), m.get() + kPage, kPage, &hash, &err);
  ASSERT_EQ(err, 0);
  last = LastMap(dev(1));
  EXPECT_EQ(last.drv_flags, 0u);
  EXPECT_EQ(last.word, 0xabcdef0123ull);
}

TEST_F(GmemTest, ChangedDriverStateUnmapsOnlyWhatChanged) {
  Mapping m(4 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  memset(m.get(), 9, m.size());
  ASSERT_EQ(dev().MapRange(m.addr(), m.size(), true), 0);
  uint64_t mapped = dev().Counters().mapped_device;
  ASSERT_EQ(mapped, m.size() / kPage);

  // Setting what is already there changes nothing: the mapping stays.
  ASSERT_EQ(dev().RangeBits(m.addr(), m.size(), 0x1, 0, 0x1, 0), 0);
  EXPECT_EQ(dev().Counters().mapped_device, mapped);

  // New bits on the first block: its PTEs go, the other block stays.
  ASSERT_EQ(dev().RangeBits(m.addr(), 2 * kMiB, 0x1, 0x1, 0, 0), 0);
  EXPECT_EQ(dev().Counters().mapped_device, mapped / 2);
  uint64_t hash = 0;
  int err = 0;
  EXPECT_GT(ChecksumFaults(dev(), m.get(), 2 * kMiB, &hash, &err), 0u);
  EXPECT_EQ(err, 0);
  EXPECT_EQ(LastMap(dev()).drv_flags, 0x1u);
  EXPECT_EQ(ChecksumFaults(dev(), m.get() + 2 * kMiB, 2 * kMiB, &hash, &err), 0u);

  // A word change reaches every device of the driver, here the second one.
  ASSERT_EQ(dev(1).MapRange(m.addr(), 2 * kMiB, false), 0);
  ASSERT_GT(dev(1).Counters().mapped_host + dev(1).Counters().mapped_device, 0u);
  ASSERT_EQ(dev().RangeBits(m.addr(), 2 * kMiB, 0, 0, 0xf0, 0x70), 0);
  EXPECT_EQ(dev(1).Counters().mapped_host + dev(1).Counters().mapped_device, 0u);
  EXPECT_EQ(dev(1).MapRange(m.addr(), 2 * kMiB, false), 0);
  EXPECT_EQ(LastMap(dev(1)).word, 0x70u);
  // Data never changed along the way.
  std::vector<uint8_t> want(m.size(), 9);
  EXPECT_EQ(Fnv(m.get(), m.size()), Fnv(want.data(), want.size()));
}

// Ranges a device that cannot fault keeps mapped: quiesce and restore.

// Quiesces not followed by a resume. Contexts detached while quiesced
// (earlier tests unmapping kept memory at exit) stay counted, so tests
// compare against the figure they started with.
int64_t Unresumed(Device &d) {
  tgm_counters c = d.Counters();
  return static_cast<int64_t>(c.quiesced - c.resumed);
}

// Polls until the device runs again after every new quiesce, up to 10 s.
bool WaitForResume(Device &d, int64_t base) {
  for (int i = 0; i < 1000; i++) {
    if (Unresumed(d) == base) return true;
    usleep(10000);
  }
  return false;
}

TEST_F(GmemTest, KeptRangesAreMappedAgainAfterCpuChanges) {
  Mapping m(4 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  memset(m.get(), 1, m.size());
  int64_t base = Unresumed(dev());
  ASSERT_EQ(dev().KeepMapped(m.addr(), m.size(), true), 0);
  ASSERT_TRUE(WaitForResume(dev(), base));
  tgm_counters before = dev().Counters();
  uint64_t hash = 0;
  int err = 0;
  EXPECT_EQ(ChecksumFaults(dev(), m.get(), m.size(), &hash, &err), 0u);
  EXPECT_EQ(err, 0);

  // The CPU takes one block back: the device stops before losing its PTEs.
  m.get()[kMiB] = 7;
  EXPECT_GT(dev().Counters().quiesced, before.quiesced);
  ASSERT_TRUE(WaitForResume(dev(), base)) << "never resumed";
  // Everything is mapped again, with the new data.
  std::vector<uint8_t> want(m.size(), 1);
  want[kMiB] = 7;
  EXPECT_EQ(ChecksumFaults(dev(), m.get(), m.size(), &hash, &err), 0u);
  EXPECT_EQ(err, 0);
  EXPECT_EQ(hash, Fnv(want.data(), want.size()));
  EXPECT_EQ(dev().Counters().mapped_device + dev().Counters().mapped_host, m.size() / kPage);
}

// New driver state for kept memory (amdkfd's SVM flags change the memory
// type of GPU PTEs) takes the PTEs away like a CPU change: the device stops
// first and runs again once the range is mapped with the new state.
TEST_F(GmemTest, KeptRangesAreMappedAgainWithNewDriverState) {
  Mapping m(4 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  memset(m.get(), 3, m.size());
  int64_t base = Unresumed(dev());
  ASSERT_EQ(dev().KeepMapped(m.addr(), m.size(), true), 0);
  ASSERT_TRUE(WaitForResume(dev(), base));
  tgm_counters before = dev().Counters();

  ASSERT_EQ(dev().RangeBits(m.addr(), 2 * kMiB, 0x1, 0x1, 0, 0), 0);
  EXPECT_GT(dev().Counters().quiesced, before.quiesced) << "PTEs went while running";
  ASSERT_TRUE(WaitForResume(dev(), base)) << "never resumed";
  EXPECT_EQ(dev().Counters().mapped_device + dev().Counters().mapped_host, m.size() / kPage);
  uint64_t hash = 0;
  int err = 0;
  EXPECT_EQ(ChecksumFaults(dev(), m.get(), m.size(), &hash, &err), 0u);
  EXPECT_EQ(err, 0);
  EXPECT_EQ(hash, Fnv(m.get(), m.size()));

  // The same bits again change nothing: no stop.
  uint64_t quiesced = dev().Counters().quiesced;
  ASSERT_EQ(dev().RangeBits(m.addr(), 2 * kMiB, 0x1, 0x1, 0, 0), 0);
  EXPECT_EQ(dev().Counters().quiesced, quiesced);
}

// Kept ranges that do not fit in device memory together: mapping one
// evicts the other, restoring that one evicts the first again. The restore
// must see its own evictions, and a device that cannot fault may run again
// only once every kept page is mapped (in place, for what does not fit).
TEST_F(GmemTest, KeptRangesThatDoNotFitStayMapped) {
  constexpr size_t kBlock = 2 * kMiB;
  Device ctl(0);
  ASSERT_TRUE(ctl.ok());
  LimitScope limit_back(ctl);
  tgm_hazards hz = {};
  hz.flags = TGM_HAZARD_NO_FAULTS | TGM_HAZARD_TLB;
  HazardScope hazards(ctl, hz);
  ASSERT_EQ(hazards.status(), 0);
  ASSERT_EQ(dev().SetLimit(kBlock), 0);  // room for one of the two blocks
  Mapping m(3 * kBlock);
  ASSERT_NE(m.get(), nullptr);
  uint8_t *kept = reinterpret_cast<uint8_t *>((m.addr() + kBlock - 1) & ~(kBlock - 1));
  const uintptr_t addr = reinterpret_cast<uintptr_t>(kept);
  Pattern(kept, 2 * kBlock, 91);
  tgm_counters before = dev().Counters();
  int64_t base = Unresumed(dev());
  ASSERT_EQ(dev().KeepMapped(addr, 2 * kBlock, true), 0);
  for (int round = 0; round < 3; round++) {
    ASSERT_TRUE(WaitForResume(dev(), base)) << "round " << round << ": never resumed";
    int err = 0;
    uint64_t hash = dev().Checksum(kept, 2 * kBlock, &err);
    EXPECT_EQ(err, 0) << "round " << round << ": the device found kept memory unmapped";
    EXPECT_EQ(hash, Fnv(kept, 2 * kBlock)) << "round " << round;
    // The CPU takes a page of each block back: both are restored again.
    kept[round] ^= 0xff;
    kept[kBlock + round] ^= 0xff;
  }
  ASSERT_TRUE(WaitForResume(dev(), base));
  int err = 0;
  EXPECT_EQ(dev().Checksum(kept, 2 * kBlock, &err), Fnv(kept, 2 * kBlock));
  EXPECT_EQ(err, 0);
  tgm_counters after = dev().Counters();
  EXPECT_EQ(after.nofault_misses, before.nofault_misses) << "accesses found no PTE";
  EXPECT_EQ(after.nofault_stalls, before.nofault_stalls) << "the device was never resumed";
  EXPECT_EQ(after.tlb_stale, before.tlb_stale);
  EXPECT_LE(after.resident, kBlock);
  EXPECT_EQ(dev().KeepMapped(addr, 2 * kBlock, false), 0);
}

// A CPU change of one kept page is restored alone: the other kept ranges
// keep their PTEs and are not mapped again (amdkfd with XNACK off restores
// on every invalidation of a process, so a pass over every kept range is
// paid per CPU change). Under a caching TLB and asynchronous copies, on a
// device that cannot fault.
TEST_F(GmemTest, KeptRestoreMapsOnlyWhatChanged) {
  constexpr size_t kBig = 16 * kMiB;
  HazardousDevice hazardous(TGM_HAZARD_NO_FAULTS | TGM_HAZARD_TLB | TGM_HAZARD_ASYNC_COPY);
  ASSERT_TRUE(hazardous.ok());
  Mapping big(kBig), small(2 * kMiB);
  ASSERT_NE(big.get(), nullptr);
  ASSERT_NE(small.get(), nullptr);
  Pattern(big.get(), big.size(), 17);
  Pattern(small.get(), small.size(), 29);
  const int64_t base = Unresumed(dev());
  ASSERT_EQ(dev().KeepMapped(big.addr(), big.size(), true), 0);
  ASSERT_EQ(dev().KeepMapped(small.addr(), small.size(), true), 0);
  ASSERT_TRUE(WaitForResume(dev(), base));
  const tgm_counters before = dev().Counters();

  small.get()[kPage] ^= 0xff;  // the CPU takes one page back
  EXPECT_GT(dev().Counters().quiesced, before.quiesced);
  ASSERT_TRUE(WaitForResume(dev(), base)) << "never resumed";
  const tgm_counters after = dev().Counters();
  const uint64_t prepares = after.pmap_prepare - before.pmap_prepare;
  const uint64_t enters = after.pmap_enter - before.pmap_enter;
  std::printf("restore of one changed page beside %zu MiB kept: %llu pmap_prepare, %llu pmap_enter\n",
              kBig / kMiB, static_cast<unsigned long long>(prepares),
              static_cast<unsigned long long>(enters));
  // The small range spans at most two blocks; the big one is eight.
  EXPECT_LE(prepares, 2u) << "the restore mapped kept memory nothing changed";
  EXPECT_LE(enters, 2u);
  EXPECT_GE(enters, 1u) << "the changed page was not mapped again";
  int err = 0;
  EXPECT_EQ(dev().Checksum(small.get(), small.size(), &err), Fnv(small.get(), small.size()));
  EXPECT_EQ(dev().Checksum(big.get(), big.size(), &err), Fnv(big.get(), big.size()));
  EXPECT_EQ(err, 0) << "the device found kept memory unmapped";
  EXPECT_EQ(dev().Counters().nofault_misses, before.nofault_misses);
  EXPECT_EQ(dev().Counters().tlb_stale, before.tlb_stale);
  EXPECT_EQ(dev().KeepMapped(big.addr(), big.size(), false), 0);
  EXPECT_EQ(dev().KeepMapped(small.addr(), small.size(), false), 0);
}

// Mapping what a prefetch moved (amdkfd with XNACK on maps the GPU a
// prefetch targets) must not evict what it moved first: with
// TGM_MAP_IN_ROOM a block that does not fit is mapped where it is. Without
// the flag the same mapping makes room, as a fault would.
TEST_F(GmemTest, MappingInRoomEvictsNothing) {
  constexpr size_t kBlock = 2 * kMiB;
  HazardousDevice hazardous(TGM_HAZARD_TLB | TGM_HAZARD_ASYNC_COPY);
  ASSERT_TRUE(hazardous.ok());
  LimitScope limit_back(hazardous.ctl);
  ASSERT_EQ(dev().SetLimit(kBlock), 0);  // room for one block
  Mapping m(5 * kBlock);
  ASSERT_NE(m.get(), nullptr);
  uint8_t *two = reinterpret_cast<uint8_t *>((m.addr() + kBlock - 1) & ~(kBlock - 1));
  const uintptr_t addr = reinterpret_cast<uintptr_t>(two);
  Pattern(two, 4 * kBlock, 47);

  tgm_counters before = dev().Counters();
  ASSERT_EQ(dev().MapRange(addr, 2 * kBlock, true, TGM_MAP_IN_ROOM), 0);
  tgm_counters after = dev().Counters();
  EXPECT_EQ(after.evicted, before.evicted) << "mapping in room evicted";
  EXPECT_EQ(after.migrated_to - before.migrated_to, kBlock / kPage) << "the first block fits";
  EXPECT_EQ(after.mapped_device, kBlock / kPage);
  EXPECT_EQ(after.mapped_host, kBlock / kPage) << "the second block is mapped where it is";
  EXPECT_EQ(dev().Checksum(two, 2 * kBlock), Fnv(two, 2 * kBlock));
  EXPECT_EQ(dev().MapRange(addr, kBlock, true, 0x80), -EINVAL) << "unknown flag accepted";

  // The next two blocks without the flag: room is made, as a fault would.
  before = dev().Counters();
  ASSERT_EQ(dev().MapRange(addr + 2 * kBlock, 2 * kBlock, true), 0);
  after = dev().Counters();
  EXPECT_GT(after.evicted, before.evicted);
  EXPECT_EQ(dev().Checksum(two, 4 * kBlock), Fnv(two, 4 * kBlock));
  EXPECT_EQ(after.tlb_stale, before.tlb_stale);
}

// Mapping in room evicts nothing also when the room goes between GMEM's
// look at it and the migration: block X first comes home from device 1,
// whose copies are slow, and meanwhile another mapping takes device 0's
// one free block for block Y. X then stays where it is, mapped in host
// memory, instead of evicting Y.
TEST_F(GmemTest, MappingInRoomEvictsNothingWhenTheRoomIsTaken) {
  constexpr size_t kBlock = 2 * kMiB;
  LimitScope limit_back(dev(0));
  ASSERT_EQ(dev(0).SetLimit(kBlock), 0);  // room for one block
  tgm_hazards hz = {};
  hz.flags = TGM_HAZARD_SLOW_COPY;
  hz.copy_delay_us = 100000;
  HazardScope slow(dev(1), hz);
  ASSERT_EQ(slow.status(), 0);
  Mapping m(3 * kBlock);
  ASSERT_NE(m.get(), nullptr);
  uint8_t *x = reinterpret_cast<uint8_t *>((m.addr() + kBlock - 1) & ~(kBlock - 1));
  uint8_t *y = x + kBlock;
  const uintptr_t xa = reinterpret_cast<uintptr_t>(x), ya = reinterpret_cast<uintptr_t>(y);
  Pattern(x, 2 * kBlock, 53);
  ASSERT_EQ(dev(1).Add(x, kBlock, 0), 0);  // X moves to device 1
  ASSERT_EQ(dev(1).Counters().resident, kBlock);

  const tgm_counters before = dev(0).Counters();
  int x_ret = -1;
  std::thread mapper([&] { x_ret = dev(0).MapRange(xa, kBlock, false, TGM_MAP_IN_ROOM); });
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  const int y_ret = dev(0).MapRange(ya, kBlock, false, TGM_MAP_IN_ROOM);
  mapper.join();
  const tgm_counters after = dev(0).Counters();
  EXPECT_EQ(x_ret, 0);
  EXPECT_EQ(y_ret, 0);
  EXPECT_EQ(after.migrated_to - before.migrated_to, kBlock / kPage) << "one block fits";
  EXPECT_EQ(after.evicted, before.evicted) << "the mapping of X evicted Y, which took the room meanwhile";
  EXPECT_EQ(dev(0).Checksum(x, 2 * kBlock), Fnv(x, 2 * kBlock));
}

// Kept memory that the CPU cannot fault in either (a shared file mapping
// past the end of its file, after ftruncate) is the device's problem, as
// unreadable memory is: the restore skips it and lets the device run,
// rather than retrying every 10 ms for ever with the device stopped.
TEST_F(GmemTest, KeptMemoryCutFromItsFileDoesNotStopTheDevice) {
  HazardousDevice nofault(TGM_HAZARD_NO_FAULTS);
  ASSERT_TRUE(nofault.ok());
  int fd = memfd_create("gmem-kept", MFD_CLOEXEC);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_EQ(ftruncate(fd, 2 * kMiB), 0);
  void *p = mmap(nullptr, 2 * kMiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(p, MAP_FAILED) << strerror(errno);
  memset(p, 3, 2 * kMiB);
  const uintptr_t addr = reinterpret_cast<uintptr_t>(p);
  const int64_t base = Unresumed(dev());
  ASSERT_EQ(dev().KeepMapped(addr, 2 * kMiB, true), 0);
  ASSERT_TRUE(WaitForResume(dev(), base)) << "never resumed before the truncate";
  ASSERT_EQ(ftruncate(fd, 0), 0);
  EXPECT_TRUE(WaitForResume(dev(), base)) << "the device stayed stopped after the truncate";
  EXPECT_EQ(dev().KeepMapped(addr, 2 * kMiB, false), 0);
  munmap(p, 2 * kMiB);
  close(fd);
}

// A restore that meets a page the CPU cannot fault in skips that page
// only: the readable pages before it in the same block are mapped again.
// The file is cut to 40 KiB under a kept 2 MiB mapping, then the CPU drops
// every PTE of the mapping; the device, which cannot fault, must still read
// the ten pages the file holds, with the caching TLB and asynchronous
// copies of a GPU.
TEST_F(GmemTest, KeptRestoreMapsThePagesBeforeAnUnreadableOne) {
  HazardousDevice nofault(TGM_HAZARD_NO_FAULTS | TGM_HAZARD_TLB | TGM_HAZARD_ASYNC_COPY);
  ASSERT_TRUE(nofault.ok());
  constexpr size_t kKept = 40 * 1024;
  int fd = memfd_create("gmem-kept-cut", MFD_CLOEXEC);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_EQ(ftruncate(fd, 2 * kMiB), 0);
  void *p = mmap(nullptr, 2 * kMiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(p, MAP_FAILED) << strerror(errno);
  Pattern(static_cast<uint8_t *>(p), 2 * kMiB, 7);
  const uint64_t want = Fnv(p, kKept);
  const uintptr_t addr = reinterpret_cast<uintptr_t>(p);
  const int64_t base = Unresumed(dev());
  ASSERT_EQ(dev().KeepMapped(addr, 2 * kMiB, true), 0);
  ASSERT_TRUE(WaitForResume(dev(), base));
  ASSERT_EQ(ftruncate(fd, kKept), 0);
  ASSERT_TRUE(WaitForResume(dev(), base));
  ASSERT_EQ(madvise(p, 2 * kMiB, MADV_DONTNEED), 0);
  ASSERT_TRUE(WaitForResume(dev(), base)) << "the device stayed stopped";
  const uint64_t misses = dev().Counters().nofault_misses;
  int err = 0;
  const uint64_t got = dev().Checksum(p, kKept, &err);
  EXPECT_EQ(err, 0) << "the restore left the readable pages before the cut unmapped";
  EXPECT_EQ(got, want);
  EXPECT_EQ(dev().Counters().nofault_misses, misses);
  EXPECT_EQ(dev().KeepMapped(addr, 2 * kMiB, false), 0);
  munmap(p, 2 * kMiB);
  close(fd);
}

// A restore whose mapping of a block is interrupted so often that it maps
// the block a page at a time must not lose the pages it mapped first when
// its next step migrates the block again (the migration invalidates the
// whole block, raised by the restorer itself). The interruptions come from
// churn outside the kept memory but in its notifier span, so they add no
// restore pass of their own, and slow page table updates widen the window.
TEST_F(GmemTest, KeptRestoreMappingAPageAtATimeKeepsEveryPage) {
  constexpr size_t kSpan = 64 * kMiB, kKept = 2 * kMiB;
  Device ctl(0);
  ASSERT_TRUE(ctl.ok());
  tgm_hazards hz = {};
  hz.flags = TGM_HAZARD_NO_FAULTS | TGM_HAZARD_TLB | TGM_HAZARD_SLOW_MAP;
  hz.map_delay_us = 5000;
  HazardScope hazards(ctl, hz);
  ASSERT_EQ(hazards.status(), 0);
  Mapping m(2 * kSpan);
  ASSERT_NE(m.get(), nullptr);
  uint8_t *kept = reinterpret_cast<uint8_t *>((m.addr() + kSpan - 1) & ~(kSpan - 1));
  uint8_t *churn = kept + 8 * kMiB;  // same 64 MiB span, not kept
  const uintptr_t addr = reinterpret_cast<uintptr_t>(kept);
  Pattern(kept, kKept, 95);
  const int64_t base = Unresumed(dev());
  ASSERT_EQ(dev().KeepMapped(addr, kKept, true), 0);
  ASSERT_TRUE(WaitForResume(dev(), base));

  const uint64_t retries = std::stoull("0" + ReadSysfs(dev().hnid(), "map_retries"));
  std::atomic<bool> stop{false};
  std::thread churner([&] {
    while (!stop.load()) {
      churn[0] = 1;
      madvise(churn, kPage, MADV_DONTNEED);
    }
  });
  kept[100 * kPage] ^= 0xff;  // the block comes home; the restore moves it back
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  stop = true;
  churner.join();
  ASSERT_TRUE(WaitForResume(dev(), base)) << "the device stayed stopped";
  const uint64_t restarted = std::stoull("0" + ReadSysfs(dev().hnid(), "map_retries")) - retries;
  std::printf("restore restarted by the churn: %llu times\n", static_cast<unsigned long long>(restarted));
  EXPECT_GT(restarted, 4u) << "the churn never made the restore map a page at a time";

  const uint64_t misses = dev().Counters().nofault_misses;
  int err = 0;
  const uint64_t got = dev().Checksum(kept, kKept, &err);
  EXPECT_EQ(err, 0) << "the device resumed with kept memory unmapped";
  EXPECT_EQ(got, Fnv(kept, kKept));
  EXPECT_EQ(dev().Counters().nofault_misses, misses);
  EXPECT_EQ(dev().KeepMapped(addr, kKept, false), 0);
}

// Two devices that cannot fault keep one range mapped, and the range
// prefers device 0. Without peer mappings neither can map the other's
// memory, so a restore that moved the block to its own device would take
// it from the other, whose restore would take it back, for ever. The
// block stays in host memory, both devices run, and nothing migrates once
// they do.
TEST_F(GmemTest, TwoDevicesKeepingOneRangeDoNotTakeItFromEachOther) {
  constexpr size_t kKept = 2 * kMiB;
  tgm_hazards hz = {};
  hz.flags = TGM_HAZARD_NO_FAULTS | TGM_HAZARD_TLB;
  HazardScope first(dev(0), hz), second(dev(1), hz);
  ASSERT_EQ(first.status(), 0);
  ASSERT_EQ(second.status(), 0);
  Mapping m(2 * kKept);
  ASSERT_NE(m.get(), nullptr);
  uint8_t *kept = reinterpret_cast<uint8_t *>((m.addr() + kKept - 1) & ~(kKept - 1));
  const uintptr_t addr = reinterpret_cast<uintptr_t>(kept);
  Pattern(kept, kKept, 97);
  ASSERT_EQ(Hmadvise(dev(0).hnid(), addr, kKept, HMADV_PREFERRED_LOC), 0);
  const int64_t base0 = Unresumed(dev(0)), base1 = Unresumed(dev(1));
  ASSERT_EQ(dev(0).KeepMapped(addr, kKept, true), 0);
  ASSERT_EQ(dev(1).KeepMapped(addr, kKept, true), 0);
  EXPECT_TRUE(WaitForResume(dev(0), base0)) << "device 0 stayed stopped";
  EXPECT_TRUE(WaitForResume(dev(1), base1)) << "device 1 stayed stopped";

  const tgm_counters a0 = dev(0).Counters(), b0 = dev(1).Counters();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const tgm_counters a1 = dev(0).Counters(), b1 = dev(1).Counters();
  const uint64_t moved = (a1.migrated_to - a0.migrated_to) + (b1.migrated_to - b0.migrated_to);
  std::printf("pages moved between the devices in 500 ms while both ran: %llu\n",
              static_cast<unsigned long long>(moved));
  EXPECT_EQ(moved, 0u) << "the restores took the block from each other";
  int err0 = 0, err1 = 0;
  EXPECT_EQ(dev(0).Checksum(kept, kKept, &err0), Fnv(kept, kKept));
  EXPECT_EQ(dev(1).Checksum(kept, kKept, &err1), Fnv(kept, kKept));
  EXPECT_EQ(err0, 0);
  EXPECT_EQ(err1, 0);
  EXPECT_EQ(dev(0).KeepMapped(addr, kKept, false), 0);
  EXPECT_EQ(dev(1).KeepMapped(addr, kKept, false), 0);
}

// Memory a device kept mapped is kept no more once it is unmapped: other
// memory mapped at the same address later is not the device's, and CPU
// changes to it must not stop the device.
TEST_F(GmemTest, UnmappedKeptMemoryStopsTheDeviceNoMore) {
  HazardousDevice nofault(TGM_HAZARD_NO_FAULTS);
  ASSERT_TRUE(nofault.ok());
  Mapping m(2 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  memset(m.get(), 1, m.size());
  const int64_t base = Unresumed(dev());
  ASSERT_EQ(dev().KeepMapped(m.addr(), m.size(), true), 0);
  ASSERT_TRUE(WaitForResume(dev(), base));
  ASSERT_EQ(munmap(m.get(), m.size()), 0);
  ASSERT_TRUE(WaitForResume(dev(), base)) << "the unmap of kept memory left the device stopped";
  void *again = mmap(m.get(), m.size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  ASSERT_EQ(again, static_cast<void *>(m.get())) << strerror(errno);
  memset(m.get(), 2, m.size());
  const uint64_t quiesced = dev().Counters().quiesced;
  ASSERT_EQ(madvise(m.get(), kPage, MADV_DONTNEED), 0);
  EXPECT_EQ(dev().Counters().quiesced, quiesced) << "new memory at the old address stopped the device";
  EXPECT_TRUE(WaitForResume(dev(), base));
}

// The device is detached while its kept ranges are being restored: the
// pass under way must map nothing more into the page table gm_as_detach()
// emptied (a driver may go on using that table, as amdkfd does its GPU VM,
// and no invalidation would ever reach those PTEs), nor resume the device.
TEST_F(GmemTest, DetachDuringRestoreMapsNothing) {
  Device ctl(0);
  ASSERT_TRUE(ctl.ok());
  tgm_hazards hz = {};
  hz.flags = TGM_HAZARD_SLOW_MAP;
  hz.map_delay_us = 50000;  // each page table update of the pass waits
  HazardScope hazards(ctl, hz);
  ASSERT_EQ(hazards.status(), 0);
  Mapping m(8 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  memset(m.get(), 5, m.size());
  int64_t base = Unresumed(dev());
  ASSERT_EQ(dev().KeepMapped(m.addr(), m.size(), true), 0);
  ASSERT_TRUE(WaitForResume(dev(), base));
  const tgm_counters before = ctl.Counters();
  for (size_t off = 0; off < m.size(); off += 2 * kMiB) m.get()[off] = 6;  // restore queued
  usleep(120000);  // the pass is mapping by now
  const tgm_counters during = ctl.Counters();
  ASSERT_EQ(dev().Detach(), 0);
  const tgm_counters after = ctl.Counters();
  EXPECT_GT(during.pmap_prepare, before.pmap_prepare) << "no restore was under way";
  EXPECT_EQ(after.enter_detached, before.enter_detached) << "PTEs entered after the detach";
  EXPECT_EQ(dev().Attach(), 0);
}

TEST_F(GmemTest, RestoreMapsPastMemoryItCannotMap) {
  Mapping m(3 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  memset(m.get(), 4, m.size());
  int64_t base = Unresumed(dev());
  ASSERT_EQ(dev().KeepMapped(m.addr(), m.size(), true), 0);
  ASSERT_TRUE(WaitForResume(dev(), base));
  // The middle MiB becomes unreadable; the device still runs.
  ASSERT_EQ(mprotect(m.get() + kMiB, kMiB, PROT_NONE), 0);
  ASSERT_TRUE(WaitForResume(dev(), base));
  // A change behind it must still be mapped again.
  m.get()[2 * kMiB + 5] = 9;
  ASSERT_TRUE(WaitForResume(dev(), base));
  std::vector<uint8_t> want(kMiB, 4);
  want[5] = 9;
  uint64_t hash = 0;
  int err = 0;
  EXPECT_EQ(ChecksumFaults(dev(), m.get() + 2 * kMiB, kMiB, &hash, &err), 0u);
  EXPECT_EQ(err, 0);
  EXPECT_EQ(hash, Fnv(want.data(), want.size()));
  ASSERT_EQ(mprotect(m.get() + kMiB, kMiB, PROT_READ | PROT_WRITE), 0);
}

TEST_F(GmemTest, OnlyChangesOfKeptRangesQuiesce) {
  Mapping kept(2 * kMiB), other(2 * kMiB);
  ASSERT_NE(kept.get(), nullptr);
  ASSERT_NE(other.get(), nullptr);
  memset(kept.get(), 2, kept.size());
  memset(other.get(), 3, other.size());
  int64_t base = Unresumed(dev());
  ASSERT_EQ(dev().KeepMapped(kept.addr(), kept.size(), true), 0);
  ASSERT_TRUE(WaitForResume(dev(), base));
  uint64_t quiesced = dev().Counters().quiesced;
  // The device uses other memory too, but only kept memory stops it.
  ASSERT_EQ(dev().Fill(other.get(), other.size(), 4), 0);
  other.get()[0] = 5;
  munmap(other.get(), other.size());
  other.forget();
  EXPECT_EQ(dev().Counters().quiesced, quiesced);
  // No longer kept: a CPU change leaves the device running.
  ASSERT_EQ(dev().KeepMapped(kept.addr(), kept.size(), false), 0);
  kept.get()[0] = 6;
  EXPECT_EQ(dev().Counters().quiesced, quiesced);
  EXPECT_EQ(Unresumed(dev()), base);
}

TEST_F(GmemTest, KeepMappedNeedsAMappedRange) {
  Mapping m(2 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  ASSERT_EQ(munmap(m.get() + kMiB, kMiB), 0);
  EXPECT_EQ(dev().KeepMapped(m.addr(), m.size(), true), -EFAULT);
  EXPECT_EQ(dev().KeepMapped(m.addr() + 1, kPage, true), -EINVAL);
}

TEST_F(GmemTest, MunmapWhileResident) {
  uint64_t r0 = dev().Counters().resident;
  Mapping m(4 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  ASSERT_EQ(dev().Fill(m.get(), m.size(), 7), 0);
  EXPECT_EQ(dev().Counters().resident - r0, m.size());
  uint64_t rel = dev().Counters().pmap_release;
  uint8_t *p = m.get();
  munmap(p + kMiB, kMiB);
  EXPECT_GT(dev().Counters().pmap_release, rel);
  EXPECT_EQ(dev().Counters().resident - r0, m.size() - kMiB);
  int err = 0;
  dev().Checksum(p + kMiB, kPage, &err);
  EXPECT_EQ(err, -EFAULT);
  EXPECT_EQ(p[0], 7);
  EXPECT_EQ(p[3 * kMiB], 7);
  munmap(p, m.size());
  m.forget();
  EXPECT_EQ(dev().Counters().resident, r0);
}

TEST_F(GmemTest, MprotectWhileResident) {
  Mapping m(2 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  ASSERT_EQ(dev().Fill(m.get(), m.size(), 0x11), 0);
  EXPECT_GT(dev().Counters().mapped_write, 0u);
  ASSERT_EQ(mprotect(m.get(), m.size(), PROT_READ), 0);
  EXPECT_EQ(dev().Counters().mapped_write, 0u);
  EXPECT_EQ(dev().Fill(m.get(), m.size(), 0x22), -EACCES);
  int err = 0;
  std::vector<uint8_t> ref(m.size(), 0x11);
  EXPECT_EQ(dev().Checksum(m.get(), m.size(), &err), Fnv(ref.data(), ref.size()));
  EXPECT_EQ(err, 0);
  ASSERT_EQ(mprotect(m.get(), m.size(), PROT_NONE), 0);
  dev().Checksum(m.get(), m.size(), &err);
  EXPECT_EQ(err, -EACCES);
  ASSERT_EQ(mprotect(m.get(), m.size(), PROT_READ | PROT_WRITE), 0);
  EXPECT_EQ(memcmp(m.get(), ref.data(), m.size()), 0);
}

// Transparent huge pages used in place by the device, then split under it:
// a PROT_READ page and a hole in the middle of the huge page must reach the
// device page table, while the rest keeps working.
long AnonHugeKiB() { return MeminfoKiB("AnonHugePages:"); }

TEST_F(GmemTest, ThpSplitWhileMappedInPlace) {
  const size_t huge = 2 * kMiB;
  Mapping mapping(2 * huge);
  ASSERT_NE(mapping.get(), nullptr);
  uint8_t *block = reinterpret_cast<uint8_t *>((mapping.addr() + huge - 1) & ~(huge - 1));
  long before = AnonHugeKiB();
  ASSERT_EQ(madvise(block, huge, MADV_HUGEPAGE), 0) << strerror(errno);
  Pattern(block, huge, 9);
  if (AnonHugeKiB() < before + 2048) GTEST_SKIP() << "the kernel gave no THP for the block";

  ASSERT_EQ(Hmadvise(dev().hnid(), reinterpret_cast<uintptr_t>(block), huge, HMADV_ACCESSED_BY),
            0);
  EXPECT_EQ(dev().Checksum(block, huge), Fnv(block, huge));
  EXPECT_GT(dev().Counters().mapped_host, 0u);

  // Splits the PMD: one page read-only, one page gone.
  uint8_t *ro_page = block + 100 * kPage;
  uint8_t *hole = block + 300 * kPage;
  ASSERT_EQ(mprotect(ro_page, kPage, PROT_READ), 0);
  ASSERT_EQ(munmap(hole, kPage), 0);
  EXPECT_EQ(dev().Fill(ro_page, kPage, 0x66), -EACCES);
  EXPECT_EQ(dev().Fill(hole, kPage, 0x66), -EFAULT);
  ASSERT_EQ(dev().Fill(block + 200 * kPage, kPage, 0x77), 0);
  EXPECT_EQ(block[200 * kPage], 0x77);
  EXPECT_EQ(block[200 * kPage + kPage - 1], 0x77);
  int err = 0;
  EXPECT_EQ(dev().Checksum(block, 100 * kPage, &err), Fnv(block, 100 * kPage));
  EXPECT_EQ(err, 0);
  EXPECT_EQ(dev().Checksum(ro_page, kPage, &err), Fnv(ro_page, kPage));  // still readable
  EXPECT_EQ(err, 0);
  ASSERT_EQ(Hmadvise(dev().hnid(), reinterpret_cast<uintptr_t>(block), huge,
                     HMADV_UNSET_ACCESSED_BY),
            -ENOMEM);  // the hole leaves the range partly unmapped: ENOMEM, as madvise
}

TEST_F(GmemTest, ForkSharesThenCopies) {
  Mapping m(2 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  ASSERT_EQ(dev().Fill(m.get(), m.size(), 0x31), 0);  // device resident
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    char go;
    if (read(pipefd[0], &go, 1) != 1) _exit(2);
    for (size_t i = 0; i < m.size(); i++)
      if (m.get()[i] != 0x31) _exit(1);
    m.get()[0] = 0x99;
    _exit(0);
  }
  // Parent writes through the device after fork: COW must keep the child's copy.
  ASSERT_EQ(dev().Fill(m.get(), m.size(), 0x32), 0);
  ASSERT_EQ(write(pipefd[1], "g", 1), 1);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  close(pipefd[0]);
  close(pipefd[1]);
  std::vector<uint8_t> ref(m.size(), 0x32);
  EXPECT_EQ(memcmp(m.get(), ref.data(), m.size()), 0);
}

TEST_F(GmemTest, TwoDevicesSameBuffer) {
  Mapping m(2 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  ASSERT_EQ(dev(0).Fill(m.get(), m.size(), 0), 0);
  for (int round = 0; round < 4; round++) {
    ASSERT_EQ(dev(round & 1).Add(m.get(), m.size(), 1), 0);
  }
  uint32_t *w = reinterpret_cast<uint32_t *>(m.get());
  for (size_t i = 0; i < m.size() / 4; i += 97) ASSERT_EQ(w[i], 4u) << i;
  EXPECT_GT(dev(0).Counters().migrated_from, 0u);
  EXPECT_GT(dev(1).Counters().migrated_from, 0u);
}

TEST_F(GmemTest, OversubscribedStreamIsByteExact) {
  tgm_counters c0 = dev().Counters();
  ASSERT_EQ(dev().SetLimit(4 * kMiB), 0);
  Mapping m(16 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  Pattern(m.get(), m.size(), 7);
  std::vector<uint8_t> ref(m.get(), m.get() + m.size());
  for (int pass = 0; pass < 3; pass++) {
    for (size_t off = 0; off < m.size(); off += 2 * kMiB)
      ASSERT_EQ(dev().Add(m.get() + off, 2 * kMiB, 1), 0);
    uint32_t *r = reinterpret_cast<uint32_t *>(ref.data());
    for (size_t i = 0; i < ref.size() / 4; i++) r[i] += 1;
  }
  tgm_counters c1 = dev().Counters();
  EXPECT_LE(c1.resident, 4 * kMiB);
  EXPECT_GT(c1.evicted, c0.evicted);
  EXPECT_EQ(dev().Checksum(m.get(), m.size()), Fnv(ref.data(), ref.size()));
  EXPECT_EQ(memcmp(m.get(), ref.data(), m.size()), 0);
  ASSERT_EQ(dev().SetLimit(c0.total), 0);
}

TEST_F(GmemTest, LimitBelowResidentEvicts) {
  Mapping m(4 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  ASSERT_EQ(dev().Fill(m.get(), m.size(), 0x3c), 0);
  uint64_t total = dev().Counters().total;
  ASSERT_EQ(dev().SetLimit(0), 0);
  EXPECT_EQ(dev().Counters().resident, 0u);
  for (size_t i = 0; i < m.size(); i += 1000) ASSERT_EQ(m.get()[i], 0x3c);
  ASSERT_EQ(dev().SetLimit(total), 0);
}

// A driver's hints (gm_as_advise()) and hmadvise() share one attribute
// store, which the driver walks with gm_as_walk_ranges().
TEST_F(GmemTest, DriverHintsShareTheAttributeStore) {
  Mapping m(16 * kPage);
  ASSERT_NE(m.get(), nullptr);
  const int hnid = dev().hnid(), other = dev(1).hnid();
  std::vector<tgm_range> r;
  ASSERT_EQ(dev().Ranges(m.addr(), m.size(), &r), 0);
  EXPECT_TRUE(r.empty()) << "fresh memory has only default attributes";

  // The driver prefers itself for pages 0-7, user space pins pages 4-11
  // on the host node; the driver then sees three ranges.
  ASSERT_EQ(dev().Advise(hnid, m.addr(), 8 * kPage, HMADV_PREFERRED_LOC), 0);
  ASSERT_EQ(Hmadvise(0, m.addr() + 4 * kPage, 8 * kPage, HMADV_PIN), 0);
  ASSERT_EQ(dev().Ranges(m.addr(), m.size(), &r), 0);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].start, m.addr());
  EXPECT_EQ(r[0].end, m.addr() + 4 * kPage);
  EXPECT_EQ(r[0].preferred, hnid);
  EXPECT_EQ(r[0].pinned, 0);
  EXPECT_EQ(r[1].end, m.addr() + 8 * kPage);
  EXPECT_EQ(r[1].preferred, hnid);
  EXPECT_EQ(r[1].pinned, 1);
  EXPECT_EQ(r[2].start, m.addr() + 8 * kPage);
  EXPECT_EQ(r[2].end, m.addr() + 12 * kPage);
  EXPECT_EQ(r[2].preferred, -1);
  EXPECT_EQ(r[2].pinned, 1);
  // Clipped to the asked interval.
  ASSERT_EQ(dev().Ranges(m.addr() + 2 * kPage, 4 * kPage, &r), 0);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].start, m.addr() + 2 * kPage);
  EXPECT_EQ(r[1].end, m.addr() + 6 * kPage);
  // Accessed-by is a device mask: device 1's index.
  ASSERT_EQ(dev().Advise(other, m.addr() + 12 * kPage, kPage, HMADV_ACCESSED_BY), 0);
  ASSERT_EQ(dev().Ranges(m.addr() + 12 * kPage, kPage, &r), 0);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].accessed_by, 1u << 1);

  // The driver's prefetch moves memory like hmadvise() does, with its errors.
  uint64_t to = dev().Counters().migrated_to;
  ASSERT_EQ(dev().Advise(hnid, m.addr() + 12 * kPage, 4 * kPage, HMADV_PREFETCH), 0);
  EXPECT_EQ(dev().Counters().migrated_to - to, 4u);
  EXPECT_EQ(dev().Advise(hnid, m.addr() + 1, kPage, HMADV_PREFETCH), -EINVAL);
  EXPECT_EQ(dev().Advise(1 << 20, m.addr(), kPage, HMADV_PREFERRED_LOC), -ENODEV);

  // munmap drops the attributes: a new mapping there starts clean.
  uintptr_t addr = m.addr();
  munmap(m.get(), m.size());
  m.forget();
  void *again = mmap(reinterpret_cast<void *>(addr), 16 * kPage, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  ASSERT_NE(again, MAP_FAILED);
  ASSERT_EQ(dev().Ranges(addr, 16 * kPage, &r), 0);
  EXPECT_TRUE(r.empty());
  munmap(again, 16 * kPage);
}

// CPU-side changes to memory the device never mapped do not reach it: no
// page table release, no TLB invalidation.
TEST_F(GmemTest, UnrelatedMunmapLeavesTheDeviceAlone) {
  Mapping used(2 * kMiB);
  ASSERT_NE(used.get(), nullptr);
  ASSERT_EQ(dev().Fill(used.get(), used.size(), 7), 0);
  tgm_counters c0 = dev().Counters();
  for (int i = 0; i < 8; i++) {
    Mapping other(kMiB);
    ASSERT_NE(other.get(), nullptr);
    memset(other.get(), i, other.size());
    ASSERT_EQ(mprotect(other.get(), other.size(), PROT_READ), 0);
  }  // each unmapped here
  tgm_counters c1 = dev().Counters();
  EXPECT_EQ(c1.pmap_release, c0.pmap_release);
  EXPECT_EQ(c1.pmap_protect, c0.pmap_protect);
  EXPECT_EQ(c1.tlb_invl, c0.tlb_invl);
  // What the device did map still gets invalidated.
  ASSERT_EQ(mprotect(used.get(), kPage, PROT_READ), 0);
  EXPECT_GT(dev().Counters().tlb_invl, c1.tlb_invl);
  EXPECT_EQ(used.get()[kPage], 7);
}

// Evicting a mapped block unmaps it page by page; GMEM defers the device
// TLB invalidations and issues them coalesced, one call per context.
TEST_F(GmemTest, EvictionCoalescesTlbInvalidations) {
  Mapping m(2 * kMiB, PROT_READ | PROT_WRITE);
  ASSERT_NE(m.get(), nullptr);
  ASSERT_EQ(dev().Fill(m.get(), m.size(), 0x5a), 0);
  tgm_counters c0 = dev().Counters();
  ASSERT_GT(c0.mapped_device, 0u);
  uint64_t freed = 0;
  ASSERT_EQ(dev().Evict(c0.resident, &freed), 0);
  tgm_counters c1 = dev().Counters();
  uint64_t evicted = c1.evicted - c0.evicted;
  EXPECT_GE(evicted, c0.mapped_device);
  EXPECT_EQ(c1.mapped_device, 0u);
  EXPECT_GE(c1.tlb_coalesced - c0.tlb_coalesced, 1u);
  // Without coalescing this is one invalidation per evicted page.
  EXPECT_LE(c1.tlb_invl - c0.tlb_invl, 8u) << evicted << " pages evicted";
  EXPECT_LE(c1.tlb_ranges - c0.tlb_ranges, 8u);
  for (size_t i = 0; i < m.size(); i += 4093) ASSERT_EQ(m.get()[i], 0x5a) << i;
}

TEST_F(GmemTest, ExitMidMigrationFreesDeviceMemory) {
  int hnid = dev().hnid();
  for (int iter = 0; iter < 3; iter++) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      Device d(0);
      if (!d.ok() || d.Attach()) _exit(2);
      size_t n = 32 * kMiB;
      void *p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) _exit(3);
      std::thread t([&] { d.Fill(p, n, 1); });
      t.detach();
      usleep(2000 * (iter + 1));
      _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  // This process holds device memory of its own: close it first.
  dev_[0].reset();
  dev_[1].reset();
  uint64_t resident = 1;
  for (int i = 0; i < 200 && resident; i++) {
    resident = std::stoull(ReadSysfs(hnid, "resident"));
    if (resident) usleep(10000);
  }
  EXPECT_EQ(resident, 0u) << "device memory left after the processes exited";
}

TEST(GmemSyscall, ProbeAndBadBehavior) {
  EXPECT_EQ(Hmadvise(0, 0, 0, 0), -EINVAL);
  EXPECT_EQ(Hmadvise(0, 0, 0, 0x100a), -EINVAL);
  EXPECT_EQ(Hmadvise(0, 0, 0, HMADV_PREFETCH), 0);
  EXPECT_EQ(Hmadvise(0, 1, kPage, HMADV_PREFETCH), -EINVAL);
  EXPECT_EQ(Hmadvise(0, ~0UL & ~(kPage - 1), 2 * kPage, HMADV_PREFETCH), -EINVAL);
  EXPECT_EQ(Hmadvise(-2, kPage, kPage, HMADV_PREFETCH), -EINVAL);
  EXPECT_EQ(Hmadvise(-1, kPage, kPage, HMADV_READ_MOSTLY), -EINVAL);
  // -1 prefetches home where the memory policy says: the range is checked.
  EXPECT_EQ(Hmadvise(-1, kPage, kPage, HMADV_PREFETCH), -ENOMEM);
  EXPECT_EQ(Hmadvise(1000, kPage, kPage, HMADV_PREFETCH), -ENODEV);
  EXPECT_EQ(Hmadvise(0, kPage, kPage, HMADV_PREFETCH), -ENOMEM);
}

TEST(GmemSyscall, MapPeerSharedAccepted) {
  void *p = mmap(nullptr, kMiB, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_PEER_SHARED, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  Device d(0);
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d.Attach(), 0);
  EXPECT_EQ(d.Fill(p, kMiB, 0x12), 0);
  EXPECT_EQ(static_cast<uint8_t *>(p)[kMiB - 1], 0x12);
  munmap(p, kMiB);
}

// The reference model of hmadvise()'s argument checks.
struct Model {
  int nr_host_nodes;
  int dev_hnids[2];
  uintptr_t mapped_lo, mapped_hi, hole_lo, hole_hi;

  static bool Valid(int b) {
    return b == HMADV_DONTNEED || b == HMADV_PREFETCH ||
           (b >= HMADV_PREFERRED_LOC && b <= HMADV_UNSET_NO_ACCESS);
  }
  static bool NeedsDevice(int b) {
    return b == HMADV_DONTNEED || b == HMADV_ACCESSED_BY || b == HMADV_UNSET_ACCESSED_BY ||
           b == HMADV_NO_ACCESS || b == HMADV_UNSET_NO_ACCESS;
  }
  long Expect(int hnid, uintptr_t start, size_t len_in, int b) const {
    if (!Valid(b)) return -EINVAL;
    if (start & (kPage - 1)) return -EINVAL;
    size_t len = (len_in + kPage - 1) & ~(kPage - 1);
    if (len_in && !len) return -EINVAL;
    uintptr_t end = start + len;
    if (end < start) return -EINVAL;
    // The node is checked before an empty range succeeds.
    if (hnid < -1) return -EINVAL;
    if (hnid == -1) {
      if (b != HMADV_DONTNEED && b != HMADV_PREFETCH) return -EINVAL;
    } else if (hnid < nr_host_nodes) {
      if (NeedsDevice(b)) return -EINVAL;
    } else if (hnid != dev_hnids[0] && hnid != dev_hnids[1]) {
      return -ENODEV;
    } else if (hnid != dev_hnids[0]) {
      return -EACCES;  // only device 0 is attached to this process
    }
    if (end == start) return 0;
    // Holes: everything outside [mapped_lo, mapped_hi) and inside the hole.
    if (start < mapped_lo || end > mapped_hi) return -ENOMEM;
    if (start < hole_hi && end > hole_lo) return -ENOMEM;
    return 0;
  }
};

int CountHostNodes() {
  int n = 0;
  while (access(("/sys/devices/system/node/node" + std::to_string(n)).c_str(), F_OK) == 0) n++;
  return n ? n : 1;
}

TEST(GmemSyscall, RandomizedArguments) {
  Device d0(0), d1(1);
  ASSERT_TRUE(d0.ok() && d1.ok());
  ASSERT_EQ(d0.Attach(), 0);
  const size_t pages = 32;
  // Reserve a region with 16 unmapped guard pages on each side, more than
  // any call below reaches past it, and a hole inside.
  const size_t guard = 16;
  Mapping m((pages + 2 * guard) * kPage, PROT_NONE);
  ASSERT_NE(m.get(), nullptr);
  uintptr_t lo = m.addr() + guard * kPage, hi = lo + pages * kPage;
  ASSERT_EQ(mprotect(reinterpret_cast<void *>(lo), pages * kPage, PROT_READ | PROT_WRITE), 0);
  munmap(m.get(), guard * kPage);
  munmap(reinterpret_cast<void *>(hi), guard * kPage);
  uintptr_t hole = lo + 20 * kPage;
  munmap(reinterpret_cast<void *>(hole), 2 * kPage);

  Model model{CountHostNodes(), {d0.hnid(), d1.hnid()}, lo, hi, hole, hole + 2 * kPage};
  std::mt19937_64 rng(0x6d656d67);
  const int behaviors[] = {0, -1, 1, 3, HMADV_DONTNEED, 5, 25, HMADV_PREFETCH, 27, 0xfff,
                           HMADV_PREFERRED_LOC, HMADV_UNSET_PREFERRED_LOC, HMADV_ACCESSED_BY,
                           HMADV_UNSET_ACCESSED_BY, HMADV_READ_MOSTLY, HMADV_UNSET_READ_MOSTLY,
                           HMADV_PIN, HMADV_UNPIN, HMADV_NO_ACCESS, HMADV_UNSET_NO_ACCESS, 0x100a,
                           0x7fffffff};
  const int hnids[] = {-1000, -2, -1, 0, 1, model.dev_hnids[0], model.dev_hnids[1],
                       model.dev_hnids[1] + 1, 64, 1 << 20};
  long calls = 0, ok = 0;
  for (; calls < 100000; calls++) {
    int b = behaviors[rng() % (sizeof(behaviors) / sizeof(behaviors[0]))];
    int hnid = hnids[rng() % (sizeof(hnids) / sizeof(hnids[0]))];
    uintptr_t start;
    switch (rng() % 6) {
      case 0: start = lo + (rng() % pages) * kPage; break;
      case 1: start = lo + rng() % (pages * kPage); break;
      case 2: start = ~0UL & ~(kPage - 1); break;
      case 3: start = 0; break;
      case 4: start = lo - kPage; break;
      default: start = lo + (rng() % 4) * kPage; break;
    }
    size_t len;
    switch (rng() % 6) {
      case 0: len = 0; break;
      case 1: len = 1 + rng() % kPage; break;
      case 2: len = (1 + rng() % 8) * kPage; break;
      case 3: len = ~0UL - rng() % 3; break;
      case 4: len = hi - start; break;
      default: len = rng() % (4 * kPage); break;
    }
    // Never let a call reach the test's own mappings outside the region.
    if (start == 0 && len > 4 * kPage && len < (1UL << 63)) len = 4 * kPage;
    long want = model.Expect(hnid, start, len, b);
    long got = Hmadvise(hnid, start, len, b);
    ASSERT_EQ(got, want) << "hmadvise(" << hnid << ", 0x" << std::hex << start << ", 0x" << len
                         << ", 0x" << b << ") call " << std::dec << calls;
    ok += got == 0;
  }
  EXPECT_GT(ok, 1000);
  // The device still works on the advised memory.
  EXPECT_EQ(Hmadvise(d0.hnid(), lo, 4 * kPage, HMADV_UNSET_NO_ACCESS), 0);
  EXPECT_EQ(d0.Fill(reinterpret_cast<void *>(lo), 4 * kPage, 1), 0);
}

// Threads ping-pong blocks between two devices only in the oversubscription
// suite: that is thrashing, which needs GMEM's thrash control.
TEST_F(GmemTest, MultiThreadedStressMatchesModel) {
  StressResult r = RunModelStress(dev(0), dev(1), StressOptions{});
  for (const auto &failure : r.failures) ADD_FAILURE() << failure;
  EXPECT_EQ(r.operations, 4 * 600);
}

}  // namespace
