// GMEM oversubscription guest tests: the simulated device's memory is
// shrunk through its runtime limit, and GMEM must keep every byte while it
// evicts, pins, throttles thrashing blocks and moves blocks between devices.
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "gmem_device.h"
#include "gmem_fixture.h"

namespace {

using namespace gmem_test;

constexpr size_t kBlock = 2 * kMiB;
constexpr uint64_t kLimit = 4 * kMiB;

// Sets a thrash control tunable for one test and restores it afterwards.
class ScopedTunable {
 public:
  ScopedTunable(const char *name, long value) : name_(name), old_(gmem::ReadTunable(name)) {
    ret_ = gmem::WriteTunable(name_, value);
  }
  ~ScopedTunable() {
    if (old_ >= 0) gmem::WriteTunable(name_, old_);
  }
  ScopedTunable(const ScopedTunable &) = delete;
  ScopedTunable &operator=(const ScopedTunable &) = delete;
  int result() const { return ret_; }

 private:
  std::string name_;
  long old_;
  int ret_ = 0;
};

// Both devices attached, device 0 limited to kLimit for the test.
class OversubTest : public GmemTest {
 protected:
  void SetUp() override {
    GmemTest::SetUp();
    if (HasFatalFailure()) return;
    total_ = dev().Counters().total;
    ASSERT_EQ(dev().SetLimit(kLimit), 0);
  }
  void TearDown() override {
    if (dev_[0]) dev().SetLimit(total_);
  }
  uint64_t total_ = 0;
};

// 20 device passes over an array `factor` times larger than the device.
class StreamTest : public OversubTest, public ::testing::WithParamInterface<int> {};

TEST_P(StreamTest, TwentyPassesByteExact) {
  const size_t size = static_cast<size_t>(GetParam()) * kLimit;
  Mapping m(size);
  ASSERT_NE(m.get(), nullptr);
  Pattern(m.get(), size, 100 + GetParam());
  std::vector<uint8_t> ref(m.get(), m.get() + size);
  tgm_counters c0 = dev().Counters();
  for (int pass = 0; pass < 20; pass++) {
    for (size_t off = 0; off < size; off += kBlock)
      ASSERT_EQ(dev().Add(m.get() + off, kBlock, pass + 1), 0) << "pass " << pass;
    gmem::AddToWords(ref.data(), size, pass + 1);
  }
  tgm_counters c1 = dev().Counters();
  EXPECT_LE(c1.resident, kLimit);
  EXPECT_GT(c1.evicted, c0.evicted);
  EXPECT_EQ(dev().Checksum(m.get(), size), Fnv(ref.data(), size));
  EXPECT_EQ(memcmp(m.get(), ref.data(), size), 0);
  RecordProperty("evicted_pages", std::to_string(c1.evicted - c0.evicted));
  RecordProperty("throttled_blocks", std::to_string(c1.thrash_throttled - c0.thrash_throttled));
}

INSTANTIATE_TEST_SUITE_P(Oversubscription, StreamTest, ::testing::Values(2, 4, 8),
                         [](const ::testing::TestParamInfo<int> &info) {
                           return std::to_string(info.param) + "x";
                         });

// Threads on disjoint quarters of a buffer 4x the device, random device
// and CPU accesses, each thread checking against its own reference copy.
TEST_F(OversubTest, RandomAccessThreadsMatchModel) {
  const size_t size = 4 * kLimit, nthreads = 4, part = size / nthreads;
  Mapping m(size);
  ASSERT_NE(m.get(), nullptr);
  memset(m.get(), 0, size);
  std::vector<std::string> errors(nthreads);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < nthreads; t++) {
    threads.emplace_back([&, t] {
      uint8_t *base = m.get() + t * part;
      std::vector<uint8_t> ref(part, 0);
      std::mt19937 rng(1234 + t);
      for (int op = 0; op < 300 && errors[t].empty(); op++) {
        size_t len = (1 + rng() % 64) * 4096;
        size_t off = (rng() % ((part - len) / 4)) * 4;
        uint32_t v = rng();
        int ret = 0;
        switch (rng() % 4) {
          case 0:
            ret = dev(t % 2).Add(base + off, len, v);
            gmem::AddToWords(ref.data() + off, len, v);
            break;
          case 1:
            gmem::AddToWords(base + off, len, v);
            gmem::AddToWords(ref.data() + off, len, v);
            break;
          case 2:
            if (dev(t % 2).Checksum(base + off, len, &ret) != Fnv(ref.data() + off, len) && !ret)
              errors[t] = "device checksum differs at op " + std::to_string(op);
            break;
          default:
            if (memcmp(base + off, ref.data() + off, len))
              errors[t] = "CPU view differs at op " + std::to_string(op);
        }
        if (ret) errors[t] = "device access failed: " + std::string(strerror(-ret));
      }
      if (errors[t].empty() && memcmp(base, ref.data(), part))
        errors[t] = "final contents differ";
    });
  }
  for (auto &th : threads) th.join();
  for (size_t t = 0; t < nthreads; t++) EXPECT_EQ(errors[t], "") << "thread " << t;
  EXPECT_LE(dev().Counters().resident, kLimit);
}

TEST_F(OversubTest, PinnedNeverEvictedAndCapacityChecked) {
  int hnid = dev().hnid();
  Mapping pinned(kBlock), big(3 * kBlock), stream(4 * kLimit);
  ASSERT_TRUE(pinned.get() && big.get() && stream.get());
  Pattern(pinned.get(), pinned.size(), 5);
  std::vector<uint8_t> ref(pinned.get(), pinned.get() + pinned.size());
  ASSERT_EQ(Hmadvise(hnid, pinned.addr(), pinned.size(), HMADV_PIN), 0);
  tgm_counters c0 = dev().Counters();
  EXPECT_EQ(c0.pinned, pinned.size());
  EXPECT_EQ(gmem::ReadNodeFile(hnid, "pinned"), std::to_string(pinned.size()));

  // 2 MiB pinned of 4: another 6 MiB cannot be pinned, and nothing moves.
  memset(big.get(), 7, big.size());
  EXPECT_EQ(Hmadvise(hnid, big.addr(), big.size(), HMADV_PIN), -ENOSPC);
  tgm_counters c1 = dev().Counters();
  EXPECT_EQ(c1.pinned, c0.pinned);
  EXPECT_EQ(c1.migrated_to, c0.migrated_to);
  // The limit cannot drop below the pinned memory.
  EXPECT_EQ(dev().SetLimit(kBlock / 2), -EBUSY);
  EXPECT_EQ(dev().Counters().limit, kLimit);
  // File-backed or shared memory cannot be pinned in device memory.
  void *shared = mmap(nullptr, kBlock, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(shared, MAP_FAILED);
  EXPECT_EQ(Hmadvise(hnid, reinterpret_cast<uintptr_t>(shared), kBlock, HMADV_PIN), -EINVAL);
  munmap(shared, kBlock);

  // Stream 16 MiB through the 2 MiB left: the pinned block stays.
  for (size_t off = 0; off < stream.size(); off += kBlock)
    ASSERT_EQ(dev().Fill(stream.get() + off, kBlock, 1), 0);
  tgm_counters c2 = dev().Counters();
  EXPECT_GT(c2.evicted, c1.evicted);
  EXPECT_EQ(c2.pinned, pinned.size());
  EXPECT_EQ(dev().Checksum(pinned.get(), pinned.size()), Fnv(ref.data(), ref.size()));
  EXPECT_EQ(dev().Counters().migrated_to, c2.migrated_to) << "the pinned block had left";
  uint64_t freed = 0;
  ASSERT_EQ(dev().Evict(total_, &freed), 0);
  EXPECT_EQ(dev().Counters().resident, pinned.size()) << "driver eviction took pinned pages";

  ASSERT_EQ(Hmadvise(hnid, pinned.addr(), pinned.size(), HMADV_UNPIN), 0);
  EXPECT_EQ(dev().Counters().pinned, 0u);
  ASSERT_EQ(dev().SetLimit(0), 0);
  EXPECT_EQ(dev().Counters().resident, 0u);
  EXPECT_EQ(memcmp(pinned.get(), ref.data(), ref.size()), 0);
}

TEST_F(OversubTest, DriverRequestedEviction) {
  Mapping m(kLimit);
  ASSERT_NE(m.get(), nullptr);
  Pattern(m.get(), m.size(), 9);
  std::vector<uint8_t> ref(m.get(), m.get() + m.size());
  ASSERT_EQ(dev().Add(m.get(), m.size(), 3), 0);
  gmem::AddToWords(ref.data(), ref.size(), 3);
  tgm_counters c0 = dev().Counters();
  ASSERT_EQ(c0.resident, m.size());
  uint64_t freed = 0;
  ASSERT_EQ(dev().Evict(kMiB, &freed), 0);
  tgm_counters c1 = dev().Counters();
  EXPECT_GE(freed, kMiB);
  EXPECT_LE(freed, m.size());
  EXPECT_EQ(c0.resident - c1.resident, freed);
  EXPECT_EQ(c1.evicted - c0.evicted, freed / kPage);
  ASSERT_EQ(dev().Evict(total_, &freed), 0);
  EXPECT_EQ(dev().Counters().resident, 0u);
  ASSERT_EQ(dev().Evict(kMiB, &freed), 0);
  EXPECT_EQ(freed, 0u) << "nothing was left to evict";
  EXPECT_EQ(memcmp(m.get(), ref.data(), ref.size()), 0);
}

// A driver's memory manager evicts one of its buffers: GMEM moves exactly
// the pages in that part of device memory, wherever they belong.
TEST_F(OversubTest, DriverEvictsAPartOfDeviceMemory) {
  ASSERT_EQ(dev().SetLimit(total_), 0);
  Mapping m(8 * kMiB);
  ASSERT_NE(m.get(), nullptr);
  Pattern(m.get(), m.size(), 13);
  std::vector<uint8_t> ref(m.get(), m.get() + m.size());
  ASSERT_EQ(dev().Checksum(m.get(), m.size()), Fnv(ref.data(), ref.size()));
  tgm_counters c0 = dev().Counters();
  ASSERT_GE(c0.resident, m.size());
  // The whole device in two halves: together they evict everything.
  uint64_t first = 0, second = 0, again = 1;
  ASSERT_EQ(dev().EvictRange(0, total_ / 2, &first), 0);
  tgm_counters c1 = dev().Counters();
  EXPECT_EQ(c0.resident - c1.resident, first);
  EXPECT_EQ(c1.evicted - c0.evicted, first / kPage);
  ASSERT_EQ(dev().EvictRange(total_ / 2, total_ / 2, &second), 0);
  EXPECT_EQ(first + second, c0.resident);
  EXPECT_EQ(dev().Counters().resident, 0u);
  ASSERT_EQ(dev().EvictRange(0, total_, &again), 0);
  EXPECT_EQ(again, 0u) << "nothing was left there";
  // Bad ranges are refused.
  EXPECT_EQ(dev().EvictRange(1, kPage, nullptr), -EINVAL);
  EXPECT_EQ(dev().EvictRange(0, kPage + 1, nullptr), -EINVAL);
  EXPECT_EQ(dev().EvictRange(total_, kPage, nullptr), -EINVAL);
  EXPECT_EQ(dev().EvictRange(~0ULL & ~(kPage - 1), 2 * kPage, nullptr), -EINVAL);
  EXPECT_EQ(memcmp(m.get(), ref.data(), ref.size()), 0);
}

// Four chunks fit. After re-touching the oldest block, making room for a
// fifth evicts the second-oldest one: least recently used, not first in.
TEST_F(OversubTest, EvictsLeastRecentlyUsedBlock) {
  ScopedTunable off("thrash_window_ms", 0);
  Mapping m(6 * kBlock);
  ASSERT_NE(m.get(), nullptr);
  // Blocks on 2 MiB boundaries, so that each fills exactly one chunk.
  uint8_t *base = reinterpret_cast<uint8_t *>((m.addr() + kBlock - 1) & ~(kBlock - 1));
  auto block = [&](int i) { return base + i * kBlock; };
  ASSERT_EQ(dev().SetLimit(2 * kBlock), 0);
  ASSERT_EQ(dev().Fill(block(0), kBlock, 1), 0);
  ASSERT_EQ(dev().Fill(block(1), kBlock, 2), 0);
  // A device fault on block 0 again: no-access drops its device PTEs
  // and leaves the pages in device memory.
  int hnid = dev().hnid();
  ASSERT_EQ(Hmadvise(hnid, reinterpret_cast<uintptr_t>(block(0)), kBlock, HMADV_NO_ACCESS), 0);
  ASSERT_EQ(Hmadvise(hnid, reinterpret_cast<uintptr_t>(block(0)), kBlock, HMADV_UNSET_NO_ACCESS),
            0);
  tgm_counters c0 = dev().Counters();
  ASSERT_EQ(dev().Fill(block(0), kBlock, 3), 0);
  EXPECT_EQ(dev().Counters().migrated_to, c0.migrated_to) << "block 0 was not resident";
  // Block 2 needs a chunk: block 1 is the least recently used.
  ASSERT_EQ(dev().Fill(block(2), kBlock, 4), 0);
  tgm_counters c1 = dev().Counters();
  EXPECT_EQ(c1.evicted - c0.evicted, kBlock / kPage);
  // A CPU read of block 1 finds it in host memory, of block 0 on the device.
  EXPECT_EQ(block(1)[100], 2);
  EXPECT_EQ(dev().Counters().migrated_from, c1.migrated_from) << "block 1 was still resident";
  EXPECT_EQ(block(0)[100], 3);
  EXPECT_GT(dev().Counters().migrated_from, c1.migrated_from) << "block 0 had been evicted";
}

// A block whose range prefers the device is evicted after the others,
// although it is the least recently used.
TEST_F(OversubTest, PreferredBlockEvictedLast) {
  ScopedTunable off("thrash_window_ms", 0);
  Mapping m(4 * kBlock);
  ASSERT_NE(m.get(), nullptr);
  uint8_t *base = reinterpret_cast<uint8_t *>((m.addr() + kBlock - 1) & ~(kBlock - 1));
  auto block = [&](int i) { return base + i * kBlock; };
  int hnid = dev().hnid();
  ASSERT_EQ(dev().SetLimit(2 * kBlock), 0);
  ASSERT_EQ(Hmadvise(hnid, reinterpret_cast<uintptr_t>(block(0)), kBlock, HMADV_PREFERRED_LOC), 0);
  ASSERT_EQ(dev().Fill(block(0), kBlock, 1), 0);
  ASSERT_EQ(dev().Fill(block(1), kBlock, 2), 0);
  tgm_counters c0 = dev().Counters();
  ASSERT_EQ(dev().Fill(block(2), kBlock, 3), 0);
  tgm_counters c1 = dev().Counters();
  EXPECT_EQ(c1.evicted - c0.evicted, kBlock / kPage);
  EXPECT_EQ(block(1)[7], 2);
  EXPECT_EQ(dev().Counters().migrated_from, c1.migrated_from) << "block 1 was still resident";
  EXPECT_EQ(block(0)[7], 1);
  EXPECT_GT(dev().Counters().migrated_from, c1.migrated_from) << "the preferred block had left";

  // Without the hint it is an ordinary block again: oldest goes first.
  ASSERT_EQ(Hmadvise(hnid, reinterpret_cast<uintptr_t>(block(0)), kBlock,
                     HMADV_UNSET_PREFERRED_LOC), 0);
  ASSERT_EQ(dev().Evict(total_, nullptr), 0);
  ASSERT_EQ(Hmadvise(hnid, reinterpret_cast<uintptr_t>(block(0)), kBlock, HMADV_PREFERRED_LOC), 0);
  ASSERT_EQ(dev().Fill(block(0), kBlock, 4), 0);
  ASSERT_EQ(Hmadvise(hnid, reinterpret_cast<uintptr_t>(block(0)), kBlock,
                     HMADV_UNSET_PREFERRED_LOC), 0);
  ASSERT_EQ(dev().Fill(block(1), kBlock, 5), 0);
  c0 = dev().Counters();
  ASSERT_EQ(dev().Fill(block(2), kBlock, 6), 0);
  c1 = dev().Counters();
  EXPECT_EQ(block(0)[7], 4);
  EXPECT_EQ(dev().Counters().migrated_from, c1.migrated_from) << "block 0 kept its mark";
}

// The CPU and the device take turns writing one block. With thrash
// control the block stops migrating after thrash_threshold round trips.
TEST_F(OversubTest, ThrashControlOnAndOff) {
  EXPECT_EQ(gmem::WriteTunable("thrash_threshold", 1), -EINVAL);
  EXPECT_EQ(gmem::WriteTunable("thrash_window_ms", 60001), -EINVAL);
  EXPECT_EQ(gmem::WriteTunable("thrash_remote_ms", 0), -EINVAL);
  ScopedTunable threshold("thrash_threshold", 3);
  ScopedTunable remote("thrash_remote_ms", 60000);
  ASSERT_EQ(threshold.result(), 0);
  ASSERT_EQ(remote.result(), 0);
  const int rounds = 10;
  for (long window : {0L, 60000L}) {
    SCOPED_TRACE("thrash_window_ms " + std::to_string(window));
    ScopedTunable w("thrash_window_ms", window);
    ASSERT_EQ(w.result(), 0);
    Mapping m(kBlock);
    ASSERT_NE(m.get(), nullptr);
    uint8_t *block = reinterpret_cast<uint8_t *>(m.addr());
    tgm_counters c0 = dev().Counters();
    for (int i = 0; i < rounds; i++) {
      ASSERT_EQ(dev().Fill(block, kPage, static_cast<uint8_t>(i)), 0);
      ASSERT_EQ(block[0], i);
      block[1] = static_cast<uint8_t>(i);  // the CPU writes: the block comes back
    }
    tgm_counters c1 = dev().Counters();
    uint64_t migrations = c1.migrated_to - c0.migrated_to;
    size_t pages = m.size() / kPage;
    if (window == 0) {
      EXPECT_EQ(c1.thrash_throttled, c0.thrash_throttled);
      EXPECT_GE(migrations, rounds * pages / 2) << "expected a migration per round";
    } else {
      EXPECT_EQ(c1.thrash_throttled - c0.thrash_throttled, 1u);
      EXPECT_LE(migrations, 3 * pages) << "the block kept migrating";
      EXPECT_GT(c1.remote_mapped, c0.remote_mapped);
    }
  }
}

TEST_F(OversubTest, BlockFollowsTheFaultingDevice) {
  Mapping m(kBlock);
  ASSERT_NE(m.get(), nullptr);
  Pattern(m.get(), m.size(), 11);
  std::vector<uint8_t> ref(m.get(), m.get() + m.size());
  ASSERT_EQ(dev(0).Add(m.get(), m.size(), 1), 0);
  gmem::AddToWords(ref.data(), ref.size(), 1);
  tgm_counters a0 = dev(0).Counters(), b0 = dev(1).Counters();
  ASSERT_EQ(dev(1).Add(m.get(), m.size(), 2), 0);
  gmem::AddToWords(ref.data(), ref.size(), 2);
  tgm_counters a1 = dev(0).Counters(), b1 = dev(1).Counters();
  EXPECT_GE(a1.migrated_from - a0.migrated_from, 1u);
  EXPECT_GE(b1.migrated_to - b0.migrated_to, a1.migrated_from - a0.migrated_from);
  EXPECT_GT(b1.mapped_device, 0u);
  EXPECT_EQ(dev(1).Checksum(m.get(), m.size()), Fnv(ref.data(), ref.size()));
  EXPECT_EQ(memcmp(m.get(), ref.data(), ref.size()), 0);
}

// Runs `body` in a child process; true if it exited with status 0.
template <typename Body>
pid_t Spawn(Body body) {
  pid_t pid = fork();
  if (pid == 0) _exit(body());
  return pid;
}

bool ExitedOk(pid_t pid) {
  int status = 0;
  return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
         WEXITSTATUS(status) == 0;
}

// One process's stream over 2x the device, checked byte for byte.
int StreamInChild(uint32_t seed) {
  Device d(0);
  if (!d.ok() || d.Attach()) return 2;
  Mapping m(2 * kLimit);
  if (!m.get()) return 3;
  Pattern(m.get(), m.size(), seed);
  std::vector<uint8_t> ref(m.get(), m.get() + m.size());
  for (int pass = 0; pass < 5; pass++) {
    for (size_t off = 0; off < m.size(); off += kBlock)
      if (d.Add(m.get() + off, kBlock, seed + pass)) return 4;
    gmem::AddToWords(ref.data(), ref.size(), seed + pass);
  }
  if (d.Checksum(m.get(), m.size()) != Fnv(ref.data(), ref.size())) return 5;
  return memcmp(m.get(), ref.data(), ref.size()) ? 6 : 0;
}

TEST_F(OversubTest, TwoProcessesUnderPressure) {
  tgm_counters c0 = dev().Counters();
  pid_t a = Spawn([] { return StreamInChild(21); });
  pid_t b = Spawn([] { return StreamInChild(22); });
  EXPECT_TRUE(ExitedOk(a));
  EXPECT_TRUE(ExitedOk(b));
  EXPECT_GT(dev().Counters().evicted, c0.evicted);
}

// Device pages freed by one process and reused for another must not show
// the first one's data: fresh memory reads as zeros on the device.
TEST_F(OversubTest, RecycledDevicePagesAreCleared) {
  ASSERT_TRUE(ExitedOk(Spawn([] {
    Device d(0);
    if (!d.ok() || d.Attach()) return 2;
    Mapping m(kLimit);
    if (!m.get()) return 3;
    return d.Fill(m.get(), m.size(), 0xab) ? 4 : 0;
  })));
  Mapping fresh(kLimit), partial(kLimit);
  ASSERT_TRUE(fresh.get() && partial.get());
  std::vector<uint8_t> zeros(kLimit, 0);
  EXPECT_EQ(dev().Checksum(fresh.get(), fresh.size()), Fnv(zeros.data(), zeros.size()));
  // Pages the CPU wrote only a few bytes of: the rest is zero too.
  for (size_t off = 0; off < partial.size(); off += kPage) partial.get()[off] = 1;
  std::vector<uint8_t> want(kLimit, 0);
  for (size_t off = 0; off < want.size(); off += kPage) want[off] = 1;
  std::vector<uint8_t> seen(kLimit);
  ASSERT_EQ(dev().Read(partial.get(), partial.size(), seen.data()), 0);
  EXPECT_EQ(memcmp(seen.data(), want.data(), want.size()), 0);
}

TEST_F(OversubTest, ExitDuringEvictionFreesEverything) {
  int hnid = dev().hnid();
  for (int iter = 0; iter < 3; iter++) {
    pid_t pid = Spawn([] {
      Device d(0);
      if (!d.ok() || d.Attach()) return 2;
      Mapping m(4 * kLimit);
      if (!m.get()) return 3;
      for (;;)
        for (size_t off = 0; off < m.size(); off += kBlock) d.Fill(m.get() + off, kBlock, 1);
    });
    ASSERT_GT(pid, 0);
    // Evict from here while the child streams, then kill it mid-way.
    for (int i = 0; i < 20 + 10 * iter; i++) {
      uint64_t freed;
      ASSERT_EQ(dev().Evict(kLimit, &freed), 0);
      usleep(1000);
    }
    kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFSIGNALED(status)) << "the child stopped by itself: " << status;
  }
  uint64_t resident = 1;
  for (int i = 0; i < 200 && resident; i++) {
    resident = std::stoull(ReadSysfs(hnid, "resident"));
    if (resident) usleep(10000);
  }
  EXPECT_EQ(resident, 0u) << "device memory left after the processes exited";
}

// Thrash control keeps a migration history per block. A block that moved
// once and then stayed quiet for longer than the window has nothing left
// to throttle, so its history goes: otherwise a long-lived process without
// hints holds one entry for every block it ever migrated, until it unmaps
// the memory.
TEST_F(GmemTest, ThrashHistoryOfQuietBlocksIsDropped) {
  constexpr size_t kBlocks = 8;
  constexpr long kWindowMs = 100;
  // A window long enough for all first migrations to stay in it.
  ScopedTunable window("thrash_window_ms", 10000);
  ASSERT_EQ(window.result(), 0);
  ASSERT_GE(gmem::ReadTunable("thrash_blocks"), 0) << "no /sys/kernel/mm/gmem/thrash_blocks";
  tgm_counters c = dev().Counters();
  const uint64_t usable = std::min(c.total, c.limit ? c.limit : c.total);
  ASSERT_GE(usable - c.resident, 2 * kBlocks * kBlock) << "the case needs a device that does not evict";
  Mapping m((2 * kBlocks + 1) * kBlock);
  ASSERT_NE(m.get(), nullptr);
  uint8_t *base = reinterpret_cast<uint8_t *>((m.addr() + kBlock - 1) & ~(kBlock - 1));
  auto block = [&](size_t i) { return base + i * kBlock; };

  // The count covers all processes; what this one does moves it by its
  // own blocks once earlier cases' unmapped histories are gone (they go
  // at this process's first fault).
  for (size_t i = 0; i < kBlocks; i++) ASSERT_EQ(dev().Fill(block(i), kBlock, static_cast<uint8_t>(i)), 0);
  const long after_first = gmem::ReadTunable("thrash_blocks");
  EXPECT_GE(after_first, static_cast<long>(kBlocks)) << "migrations leave no history: thrash control cannot work";
  ASSERT_EQ(gmem::WriteTunable("thrash_window_ms", kWindowMs), 0);
  usleep(3 * kWindowMs * 1000);
  // More blocks migrate once; the first ones have been quiet for three
  // windows by now, so their histories make room for the new ones.
  for (size_t i = kBlocks; i < 2 * kBlocks; i++)
    ASSERT_EQ(dev().Fill(block(i), kBlock, static_cast<uint8_t>(i)), 0);
  const long grown = gmem::ReadTunable("thrash_blocks") - after_first;
  EXPECT_LE(grown, static_cast<long>(kBlocks / 2)) << "the history of quiet blocks is kept";
  for (size_t i = 0; i < 2 * kBlocks; i++) {
    ASSERT_EQ(block(i)[0], static_cast<uint8_t>(i));
    ASSERT_EQ(block(i)[kBlock - 1], static_cast<uint8_t>(i));
  }
}

// Unmapping memory ends the thrash histories of its blocks, also in a
// process that never gave a hint. The blocks migrate in a fresh process,
// so that the count moves only by its own histories (the sweep that drops
// quiet ones works per process), with a window long enough that none of
// them goes quiet meanwhile.
TEST_F(GmemTest, ThrashHistoryEndsWithTheMemory) {
  constexpr size_t kBlocks = 6;
  ScopedTunable window("thrash_window_ms", 10000);
  ASSERT_EQ(window.result(), 0);
  ASSERT_GE(gmem::ReadTunable("thrash_blocks"), 0) << "no /sys/kernel/mm/gmem/thrash_blocks";
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    Device d(0);
    Mapping small(kPage);
    if (!d.ok() || d.Attach() != 0 || !small.get() || d.Fill(small.get(), kPage, 1) != 0) _exit(10);
    const long before = gmem::ReadTunable("thrash_blocks");
    {
      Mapping m((kBlocks + 1) * kBlock);
      if (!m.get()) _exit(11);
      uint8_t *base = reinterpret_cast<uint8_t *>((m.addr() + kBlock - 1) & ~(kBlock - 1));
      for (size_t i = 0; i < kBlocks; i++)
        if (d.Fill(base + i * kBlock, kBlock, 3) != 0) _exit(12);
      if (gmem::ReadTunable("thrash_blocks") - before < static_cast<long>(kBlocks)) _exit(1);
    }  // munmap
    // The next device fault of this process settles the unmap; its own
    // block gets a history.
    Mapping probe(kPage);
    if (!probe.get() || d.Fill(probe.get(), kPage, 2) != 0) _exit(13);
    _exit(gmem::ReadTunable("thrash_blocks") > before + 1 ? 2 : 0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_NE(WEXITSTATUS(status), 1) << "the migrations left no history";
  EXPECT_NE(WEXITSTATUS(status), 2) << "histories outlive their memory";
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// Two processes keep ranges mapped on a device that cannot fault, more
// than its memory holds together. Restoring one process's kept memory
// must not evict the other's: that would stop the other device context,
// whose restore would evict the first one's again, for ever.
TEST_F(OversubTest, KeptRangesOfTwoProcessesSettle) {
  ScopedTunable no_thrash("thrash_window_ms", 0);  // nothing to hide the ping-pong
  ASSERT_EQ(no_thrash.result(), 0);
  tgm_hazards hz = {};
  hz.flags = TGM_HAZARD_NO_FAULTS;
  HazardScope hazards(dev(), hz);
  ASSERT_EQ(hazards.status(), 0);
  constexpr size_t kKept = 3 * kLimit / 4;  // two of them do not fit
  int ready[2], done[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(done), 0);
  pid_t child[2];
  for (pid_t &pid : child) {
    pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      Device d(0);
      Mapping m(kKept);
      char c = 1;
      if (!d.ok() || d.Attach() != 0 || !m.get()) c = 0;
      if (c) memset(m.get(), 7, kKept);
      if (c && d.KeepMapped(m.addr(), kKept, true) != 0) c = 0;
      if (write(ready[1], &c, 1) != 1) _exit(2);
      if (read(done[0], &c, 1) != 1) _exit(3);
      _exit(0);
    }
  }
  char c = 0;
  for (int i = 0; i < 2; i++) {
    ASSERT_EQ(read(ready[0], &c, 1), 1);
    ASSERT_EQ(c, 1) << "a child could not keep its range mapped";
  }
  usleep(500 * 1000);  // the first restores
  const uint64_t quiesced0 = dev().Counters().quiesced;
  usleep(1000 * 1000);
  const uint64_t quiesced1 = dev().Counters().quiesced;
  const char bye[2] = {1, 1};
  EXPECT_EQ(write(done[1], bye, 2), 2);
  for (pid_t pid : child) {
    int status = 0;
    EXPECT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  }
  for (int fd : {ready[0], ready[1], done[0], done[1]}) close(fd);
  EXPECT_EQ(quiesced1 - quiesced0, 0u) << "the kept ranges kept stopping the device for each other";
}

}  // namespace
