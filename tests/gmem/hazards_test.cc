// The simulated device with a GPU's hazards: copies that complete out of
// order, another user of device memory taking it back at random times,
// faults that come back late, all of them at once, and all of them while
// allocations fail. Each case checks every byte and names the protection
// whose removal makes it fail (docs/testing.md).
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "gmem_device.h"
#include "gmem_fixture.h"
#include "model_stress.h"

namespace gmem_test {
namespace {

constexpr size_t kBlock = 2 * kMiB;

uint8_t *BlockAligned(const Mapping &m) {
  return reinterpret_cast<uint8_t *>((m.addr() + kBlock - 1) & ~(kBlock - 1));
}

tgm_hazards AsyncCopies(uint32_t max_delay_us) {
  tgm_hazards hz = {};
  hz.flags = TGM_HAZARD_ASYNC_COPY;
  hz.async_delay_us = max_delay_us;
  return hz;
}

// Every migration in both directions, between the devices and back home,
// copies on an engine whose jobs finish out of order: GMEM may use a page
// only once the device's copy op returned, and the device's op only once
// the batch's fence signaled. (Removing the fence wait in tgm_copy() makes
// the checksums differ.)
TEST_F(GmemTest, AsyncCopiesLandBeforeTheirPagesAreUsed) {
  HazardScope h0(dev(0), AsyncCopies(400)), h1(dev(1), AsyncCopies(400));
  ASSERT_EQ(h0.status(), 0);
  ASSERT_EQ(h1.status(), 0);
  const size_t len = 8 * kMiB;
  Mapping m(len + kBlock);
  ASSERT_NE(m.get(), nullptr);
  uint8_t *b = BlockAligned(m);
  Pattern(b, len, 5);
  std::vector<uint8_t> want(b, b + len);
  const tgm_counters before = dev(0).Counters();
  const tgm_counters before1 = dev(1).Counters();

  ASSERT_EQ(Hmadvise(dev(0).hnid(), reinterpret_cast<uintptr_t>(b), len, HMADV_PREFETCH), 0);
  EXPECT_EQ(dev(0).Checksum(b, len), Fnv(want.data(), len)) << "host to device 0";
  ASSERT_EQ(dev(0).Add(b, len, 3), 0);
  gmem::AddToWords(want.data(), len, 3);
  EXPECT_EQ(dev(1).Checksum(b, len), Fnv(want.data(), len)) << "device 0 to device 1";
  ASSERT_EQ(dev(1).Add(b, len, 7), 0);
  gmem::AddToWords(want.data(), len, 7);
  EXPECT_EQ(memcmp(b, want.data(), len), 0) << "device 1 to host, by CPU faults";

  const tgm_counters after = dev(0).Counters();
  const tgm_counters after1 = dev(1).Counters();
  EXPECT_GE(after.migrated_to - before.migrated_to, len / kPage);
  EXPECT_GE(after1.migrated_from - before1.migrated_from, len / kPage);
  // The counters are per device: jobs of both devices' copies.
  const uint64_t jobs = after.copy_jobs - before.copy_jobs + after1.copy_jobs - before1.copy_jobs;
  const uint64_t reordered =
      after.copy_reordered - before.copy_reordered + after1.copy_reordered - before1.copy_reordered;
  EXPECT_GE(jobs, 4 * len / kPage / 4) << "four full moves of the range, four pages a job";
  EXPECT_GT(reordered, 0u) << "the engine never completed jobs out of order: the hazard did not work";
}

tgm_hazards OtherUser(uint32_t interval_us, uint32_t pages) {
  tgm_hazards hz = {};
  hz.flags = TGM_HAZARD_EVICT;
  hz.evict_interval_us = interval_us;
  hz.evict_pages = pages;
  return hz;
}

// Device 1 shares its memory with another user, which takes random ranges
// back through the driver's eviction path and overwrites them while it
// holds them. GMEM must move every page of ours out of the range first,
// read-only copies included, and refuse (EBUSY) while one is busy.
// (Without gm_dev_drop_copies_in() in gm_dev_evict_range(), device 1 reads
// the other user's bytes through its copies.)
TEST_F(GmemTest, MemoryAnotherUserTakesBackLosesNothing) {
  HazardScope h1(dev(1), OtherUser(2000, 256));
  ASSERT_EQ(h1.status(), 0);
  const size_t len = 16 * kMiB, rm_len = 4 * kMiB;
  Mapping m(len + kBlock), rm(rm_len + kBlock);
  ASSERT_NE(m.get(), nullptr);
  ASSERT_NE(rm.get(), nullptr);
  uint8_t *b = BlockAligned(m), *r = BlockAligned(rm);
  Pattern(b, len, 9);
  Pattern(r, rm_len, 11);
  std::vector<uint8_t> want(b, b + len), want_rm(r, r + rm_len);
  // Read-mostly data whose primary is on device 0: device 1 reads it
  // through copies in its own memory.
  ASSERT_EQ(Hmadvise(0, reinterpret_cast<uintptr_t>(r), rm_len, HMADV_READ_MOSTLY), 0);
  ASSERT_EQ(dev(0).Add(r, rm_len, 1), 0);
  gmem::AddToWords(want_rm.data(), rm_len, 1);
  const tgm_counters before = dev(1).Counters();
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int round = 0;
  for (; round < 60 && std::chrono::steady_clock::now() < end; round++) {
    ASSERT_EQ(dev(1).Add(b, len, round + 1), 0) << "round " << round;
    gmem::AddToWords(want.data(), len, round + 1);
    ASSERT_EQ(dev(1).Checksum(b, len), Fnv(want.data(), len)) << "device read, round " << round;
    ASSERT_EQ(dev(1).Checksum(r, rm_len), Fnv(want_rm.data(), rm_len)) << "read of copies, round " << round;
    if (round % 4 == 3) {
      ASSERT_EQ(memcmp(b, want.data(), len), 0) << "CPU read, round " << round;
    }
    const tgm_counters now = dev(1).Counters();
    if (round >= 16 && now.evicted > before.evicted && now.evict_taken > before.evict_taken) break;
  }
  EXPECT_EQ(memcmp(b, want.data(), len), 0);
  EXPECT_EQ(memcmp(r, want_rm.data(), rm_len), 0);
  const tgm_counters after = dev(1).Counters();
  EXPECT_GT(after.duplicated, before.duplicated) << "device 1 never read through copies";
  EXPECT_GT(after.evict_taken, before.evict_taken) << "the other user never got memory";
  EXPECT_GT(after.evicted, before.evicted) << "the other user never took pages of ours, in " << round << " rounds";
}

tgm_hazards LateFaults(uint32_t interval_us) {
  tgm_hazards hz = {};
  hz.flags = TGM_HAZARD_LATE_FAULTS;
  hz.late_interval_us = interval_us;
  return hz;
}

// Faults come back after the memory they were for was unmapped, mapped
// anew at the same address, or made read-only. GMEM serves them or fails
// them cleanly; either way the memory now at the address is the process's
// own and correct. A process exiting with late faults queued is part of it.
TEST_F(GmemTest, LateFaultsOnMemoryThatChangedAreDropped) {
  HazardScope h0(dev(0), LateFaults(200)), h1(dev(1), LateFaults(300));
  ASSERT_EQ(h0.status(), 0);
  ASSERT_EQ(h1.status(), 0);
  const size_t len = kMiB;
  void *where = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(where, MAP_FAILED);
  uint8_t *b = static_cast<uint8_t *>(where);
  const tgm_counters before0 = dev(0).Counters(), before1 = dev(1).Counters();
  std::vector<uint8_t> want(len);
  for (int round = 0; round < 40; round++) {
    Device &d = dev(round % 2);
    // New memory at the same address, with the faults of the old one queued.
    ASSERT_EQ(mmap(b, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0), where);
    Pattern(b, len, 100 + round);
    want.assign(b, b + len);
    ASSERT_EQ(d.Add(b, len, round), 0) << "round " << round;
    gmem::AddToWords(want.data(), len, round);
    if (round % 3 == 2) {
      ASSERT_EQ(mprotect(b, len, PROT_READ), 0);
      EXPECT_EQ(d.Checksum(b, len), Fnv(want.data(), len)) << "read-only, round " << round;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ASSERT_EQ(memcmp(b, want.data(), len), 0) << "round " << round;
    // A hole for a while: late faults find nothing there.
    ASSERT_EQ(munmap(b, len), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  // A process that exits while its faults are queued.
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    Device d(0);
    if (!d.ok() || d.Attach()) _exit(2);
    Mapping cm(len);
    if (!cm.get()) _exit(3);
    Pattern(cm.get(), len, 7);
    _exit(d.Fill(cm.get(), len, 1) ? 4 : 0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const tgm_counters after0 = dev(0).Counters(), after1 = dev(1).Counters();
  const uint64_t served = after0.late_served - before0.late_served + after1.late_served - before1.late_served;
  const uint64_t dropped = after0.late_dropped - before0.late_dropped + after1.late_dropped - before1.late_dropped;
  EXPECT_GT(dropped, 0u) << "no late fault met a hole or read-only memory (" << served << " served)";
  EXPECT_GT(served, 0u) << "no late fault met memory it could map";
}

// Read-mostly copies are made again over the copies a device already has
// (a late fault on a duplicated block, or two engines faulting it at
// once): the device may keep reading an old copy through its cached
// translation until the invalidation that follows, since GMEM frees the
// old copy only after it. Reads from several engines must never count as
// stale. (With the TLB's keep rule comparing access only, not pages, the
// replaced copies counted as stale and the reads failed with EIO.)
TEST_F(GmemTest, ReplacedCopiesStayReadableUntilTheirInvalidation) {
  tgm_hazards hz = LateFaults(100);
  hz.flags |= TGM_HAZARD_TLB;
  HazardScope h0(dev(0), hz);
  ASSERT_EQ(h0.status(), 0);
  const size_t len = 2 * kBlock;
  Mapping m(len + kBlock);
  ASSERT_NE(m.get(), nullptr);
  uint8_t *b = BlockAligned(m);
  Pattern(b, len, 21);
  std::vector<uint8_t> want(b, b + len);
  ASSERT_EQ(Hmadvise(0, reinterpret_cast<uintptr_t>(b), len, HMADV_READ_MOSTLY), 0);
  ASSERT_EQ(dev(1).Add(b, len, 2), 0);
  gmem::AddToWords(want.data(), len, 2);
  const uint64_t hash = Fnv(want.data(), len);
  const tgm_counters before = dev(0).Counters();
  std::atomic<int> failures{0}, first_err{0};
  auto reader = [&] {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(6);
    while (std::chrono::steady_clock::now() < end) {
      int err = 0;
      if (dev(0).Checksum(b, len, &err) != hash || err) {
        if (!failures++) first_err = err;
      }
    }
  };
  std::vector<std::thread> readers;
  for (int i = 0; i < 3; i++) readers.emplace_back(reader);
  // Copies dropped now and then (a CPU write), so that faults come again.
  for (int i = 0; i < 30; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    b[kPage * i] = want[kPage * i];
  }
  for (auto &t : readers) t.join();
  const tgm_counters after = dev(0).Counters();
  EXPECT_EQ(failures.load(), 0) << "first error " << first_err.load();
  EXPECT_EQ(after.tlb_stale - before.tlb_stale, 0u);
  EXPECT_GT(after.duplicated, before.duplicated) << "device 0 never read through copies";
  EXPECT_GT(after.late_served, before.late_served) << "no late fault came back";
}

// Hazard settings from several threads at once, while the other user runs
// and a writer checks every byte: the device ends with the settings the
// last call made, and its other user runs when they say so. (Unserialized,
// a worker queued by one call was cancelled by another, or poisoned pages
// GMEM had been handed again.)
TEST_F(GmemTest, HazardSettingsFromManyThreadsAgree) {
  const size_t len = 8 * kMiB;
  Mapping m(len + kBlock);
  ASSERT_NE(m.get(), nullptr);
  uint8_t *b = BlockAligned(m);
  Pattern(b, len, 31);
  std::vector<uint8_t> want(b, b + len);
  std::atomic<bool> stop{false};
  auto toggler = [&](int seed) {
    for (int i = 0; !stop; i++)
      dev(1).SetHazards((i + seed) % 2 ? OtherUser(1000, 128) : tgm_hazards{});
  };
  std::thread t1(toggler, 0), t2(toggler, 1);
  for (int round = 0; round < 20; round++) {
    ASSERT_EQ(dev(1).Add(b, len, 1), 0) << "round " << round;
    gmem::AddToWords(want.data(), len, 1);
    ASSERT_EQ(dev(1).Checksum(b, len), Fnv(want.data(), len)) << "round " << round;
  }
  stop = true;
  t1.join();
  t2.join();
  EXPECT_EQ(memcmp(b, want.data(), len), 0);
  HazardScope h1(dev(1), OtherUser(1000, 128));
  ASSERT_EQ(h1.status(), 0);
  const uint64_t taken = dev(1).Counters().evict_taken;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_GT(dev(1).Counters().evict_taken, taken) << "the other user is on but never runs";
}

// Hazards and unplugging disturb every user of a device: a process
// without CAP_SYS_ADMIN may read the settings but not change them, nor
// unplug the device (trinity runs as such a user).
TEST_F(GmemTest, HazardsAndUnplugNeedCapSysAdmin) {
  int status = InChild([&] {
    Device d(1);
    if (!d.ok()) return 1;
    if (setgid(65534) != 0 || setuid(65534) != 0) return 2;
    tgm_hazards hz = {};
    if (d.GetHazards(&hz) != 0) return 7;
    if (d.SetHazards(OtherUser(1000, 128)) != -EPERM) return 3;
    if (d.SetHazards(tgm_hazards{}) != -EPERM) return 4;
    if (d.Unplug() != -EPERM) return 5;
    if (d.Plug() != -EPERM) return 6;
    return 0;
  });
  EXPECT_EQ(status, 0) << "check " << status << " of the unprivileged child failed";
  tgm_hazards now = {};
  ASSERT_EQ(dev(1).GetHazards(&now), 0);
  EXPECT_EQ(now.flags, 0u) << "an unprivileged call changed the hazards";
}

// The hazards of a device that faults, all at once on both devices (the
// other user only where it exists, on device 1), under the model stress.
void AllHazards(tgm_hazards *h0, tgm_hazards *h1) {
  *h0 = {};
  h0->flags = TGM_HAZARD_SLOW_MAP | TGM_HAZARD_TLB | TGM_HAZARD_ASYNC_COPY | TGM_HAZARD_LATE_FAULTS;
  h0->map_delay_us = 50;
  h0->async_delay_us = 200;
  h0->late_interval_us = 1000;
  *h1 = *h0;
  h1->flags |= TGM_HAZARD_EVICT;
  h1->evict_interval_us = 5000;
  h1->evict_pages = 128;
  if (const char *mask = getenv("TGM_HAZARD_MASK")) {
    h0->flags &= strtoul(mask, nullptr, 0);
    h1->flags &= strtoul(mask, nullptr, 0);
  }
}

std::string HazardFigures(const tgm_counters &a, const tgm_counters &b) {
  return "copy jobs " + std::to_string(a.copy_jobs + b.copy_jobs) + " (" +
         std::to_string(a.copy_reordered + b.copy_reordered) + " out of order), TLB hits " +
         std::to_string(a.tlb_hits + b.tlb_hits) + ", pages the other user took " + std::to_string(b.evict_taken) +
         " (refused " + std::to_string(b.evict_busy) + "), late faults served " +
         std::to_string(a.late_served + b.late_served) + ", dropped " +
         std::to_string(a.late_dropped + b.late_dropped);
}

TEST_F(GmemTest, AllHazardsStressMatchesModel) {
  tgm_hazards hz0, hz1;
  AllHazards(&hz0, &hz1);
  HazardScope h0(dev(0), hz0), h1(dev(1), hz1);
  ASSERT_EQ(h0.status(), 0);
  ASSERT_EQ(h1.status(), 0);
  StressOptions opt;
  opt.iterations = 400;
  opt.time_limit = std::chrono::seconds(90);
  StressResult r = RunModelStress(dev(0), dev(1), opt);
  for (const auto &failure : r.failures) ADD_FAILURE() << failure;
  EXPECT_GT(r.operations, 4 * 50) << "the stress hardly ran before its time was up";
  const std::string figures = HazardFigures(dev(0).Counters(), dev(1).Counters());
  RecordProperty("hazards", figures);
  std::printf("[ hazards  ] %ld operations; %s\n", r.operations, figures.c_str());
}

// The same stress while a tenth of the slab and page allocations of
// every device operation and hint fail (failslab and fail_page_alloc, aimed
// at the stress threads only while they are in the kernel for the device).
// Every operation either takes effect or fails cleanly (ENOMEM, EBUSY,
// EAGAIN, EINTR, EFAULT) without having touched a byte; the log stays clean and
// kmemleak finds nothing at the end of the run.
TEST_F(GmemTest, AllHazardsStressUnderAllocationFailures) {
  InjectedFailures slab("failslab", -1, 10), pages("fail_page_alloc", -1, 10);
  if (!slab.available() || !pages.available())
    GTEST_SKIP() << "no failslab or fail_page_alloc in debugfs (CONFIG_FAILSLAB, CONFIG_FAIL_PAGE_ALLOC, "
                    "CONFIG_FAULT_INJECTION_DEBUG_FS)";
  ASSERT_TRUE(slab.ok() && pages.ok()) << "could not set up the fault injection";
  tgm_hazards hz0, hz1;
  AllHazards(&hz0, &hz1);
  HazardScope h0(dev(0), hz0), h1(dev(1), hz1);
  ASSERT_EQ(h0.status(), 0);
  ASSERT_EQ(h1.status(), 0);
  StressOptions opt;
  opt.iterations = 400;
  opt.time_limit = std::chrono::seconds(90);
  opt.single_page = true;
  opt.inject = true;
  StressResult r = RunModelStress(dev(0), dev(1), opt);
  for (const auto &failure : r.failures) ADD_FAILURE() << failure;
  EXPECT_GT(r.clean_errors, 0) << "no allocation failed: the injection did not reach the device paths";
  RecordProperty("injected_errors", std::to_string(r.clean_errors));
  std::printf("[ injected ] %ld operations, %ld failed cleanly\n", r.operations, r.clean_errors);
}

}  // namespace
}  // namespace gmem_test
