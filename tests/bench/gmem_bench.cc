// gmem-bench: GMEM's simulated device (lib/test_gmem.c) against the
// kernel's HMM test driver (lib/test_hmm.c, /dev/hmm_dmirror0) on the same
// sizes, in the same boot. It prints figures, it does not pass or fail:
// under QEMU TCG absolute times mean little, ratios inside one run do.
//
// What is measured (each a median over --reps rounds, after one untimed
// warm-up round; every round uses fresh, CPU-populated memory):
//   first touch  device reads a host-resident buffer: GMEM faults and
//                migrates it on first touch (TGM_IOC_READ); dmirror has no
//                migrate-on-fault; HMM_DMIRROR_MIGRATE_TO_DEV migrates and
//                reads the range back to user space: the same work done.
//   fault-back   the buffer is in device memory; the CPU reads one word per
//                page, each first touch faults it back to host memory.
//   prefetch     hmadvise(HMADV_PREFETCH) against dmirror's migration (its
//                ioctl always reads the data back, so its migration alone
//                is estimated by subtracting a timed HMM_DMIRROR_READ), and
//                against memcpy() of the same size between populated host
//                buffers (what a copy costs in this guest).
//   CPU faults   write faults on fresh anonymous memory in a process
//                attached to a GMEM device versus in a plain process.
//   oversub      the device streams over arrays 1x, 2x, 4x and 8x its
//                (runtime-limited) memory, with GMEM's thrash control off
//                and on: throughput relative to 1x, evictions, throttling.
// Each GMEM and each dmirror measurement runs in its own child process, so
// neither driver's MMU notifiers slow the other down.
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <test_hmm_uapi.h>

#include "gmem_device.h"

namespace {

using gmem::kMiB;
using gmem::kPageSize;

constexpr size_t kBlock = 2 * kMiB;

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// An anonymous mapping aligned to 2 MiB, so that GMEM's blocks and the
// buffer coincide and no neighbour's pages are counted.
class Buffer {
 public:
  explicit Buffer(size_t len) : len_(len) {
    raw_len_ = len + kBlock;
    void *p = mmap(nullptr, raw_len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;
    raw_ = static_cast<uint8_t *>(p);
    uintptr_t aligned = (reinterpret_cast<uintptr_t>(raw_) + kBlock - 1) & ~(kBlock - 1);
    data_ = reinterpret_cast<uint8_t *>(aligned);
  }
  ~Buffer() {
    if (raw_) munmap(raw_, raw_len_);
  }
  Buffer(const Buffer &) = delete;
  Buffer &operator=(const Buffer &) = delete;

  bool ok() const { return data_ != nullptr; }
  uint8_t *data() const { return data_; }
  uintptr_t addr() const { return reinterpret_cast<uintptr_t>(data_); }
  size_t size() const { return len_; }
  uint64_t *word(size_t i) const { return reinterpret_cast<uint64_t *>(data_) + i; }

  // Populate every page with a value the fault-back check can recognise.
  void Populate(uint64_t seed) const {
    for (size_t off = 0; off < len_; off += sizeof(uint64_t))
      *reinterpret_cast<uint64_t *>(data_ + off) = seed ^ off;
  }
  // CPU reads one word per page (the faulting access); false if a word
  // is not what Populate() wrote.
  bool TouchPagesAndCheck(uint64_t seed) const {
    bool good = true;
    for (size_t off = 0; off < len_; off += kPageSize)
      good &= *reinterpret_cast<volatile uint64_t *>(data_ + off) == (seed ^ off);
    return good;
  }

 private:
  uint8_t *raw_ = nullptr;
  uint8_t *data_ = nullptr;
  size_t raw_len_ = 0;
  size_t len_;
};

// Runs `body` in a forked child and returns the plain value it returned,
// or `failed` if the child did not finish (its message is on stderr).
template <typename T>
T InChildValue(const std::function<T()> &body, T failed) {
  int fds[2];
  if (pipe(fds) != 0) return failed;
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) return failed;
  if (pid == 0) {
    close(fds[0]);
    T value = body();
    ssize_t written = write(fds[1], &value, sizeof(value));
    _exit(written == sizeof(value) ? 0 : 1);
  }
  close(fds[1]);
  T value = failed;
  if (read(fds[0], &value, sizeof(value)) != sizeof(value)) value = failed;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return failed;
  return value;
}

// The seconds `body` reported in a child, negative if it failed.
double InChild(const std::function<double()> &body) { return InChildValue<double>(body, -1); }

double Fail(const char *what, int err) {
  std::fprintf(stderr, "gmem-bench: %s: %s\n", what, std::strerror(err));
  return -1;
}

// ---- GMEM side: a child attached to /dev/test_gmem0 ------------------------

struct GmemChild {
  gmem::Device dev{0};
  int hnid = -1;

  double Open() {
    if (!dev.ok()) return Fail("open /dev/test_gmem0", dev.open_errno());
    int ret = dev.Attach();
    if (ret) return Fail("attach to /dev/test_gmem0", -ret);
    tgm_counters c = {};
    ret = dev.Counters(&c);
    if (ret) return Fail("test_gmem counters", -ret);
    hnid = static_cast<int>(c.hnid);
    return 0;
  }
};

double GmemFirstTouch(size_t n) {
  GmemChild g;
  if (g.Open() < 0) return -1;
  Buffer buf(n);
  std::vector<uint8_t> dst(n);
  if (!buf.ok()) return Fail("mmap", errno);
  buf.Populate(1);
  std::memset(dst.data(), 0, n);
  double t0 = Now();
  int ret = g.dev.Read(buf.data(), n, dst.data());
  double secs = Now() - t0;
  if (ret) return Fail("TGM_IOC_READ", -ret);
  if (std::memcmp(dst.data(), buf.data(), n) != 0) return Fail("GMEM first touch read wrong data", EIO);
  return secs;
}

double GmemPrefetch(size_t n) {
  GmemChild g;
  if (g.Open() < 0) return -1;
  Buffer buf(n);
  if (!buf.ok()) return Fail("mmap", errno);
  buf.Populate(2);
  double t0 = Now();
  long ret = gmem::Hmadvise(g.hnid, buf.addr(), n, HMADV_PREFETCH);
  double secs = Now() - t0;
  if (ret) return Fail("hmadvise(HMADV_PREFETCH)", static_cast<int>(-ret));
  if (!buf.TouchPagesAndCheck(2)) return Fail("GMEM prefetch lost data", EIO);
  return secs;
}

double GmemFaultBack(size_t n) {
  GmemChild g;
  if (g.Open() < 0) return -1;
  Buffer buf(n);
  if (!buf.ok()) return Fail("mmap", errno);
  buf.Populate(3);
  long ret = gmem::Hmadvise(g.hnid, buf.addr(), n, HMADV_PREFETCH);
  if (ret) return Fail("hmadvise(HMADV_PREFETCH)", static_cast<int>(-ret));
  tgm_counters c = {};
  g.dev.Counters(&c);
  if (c.resident < n) return Fail("GMEM: the buffer is not in device memory", EIO);
  double t0 = Now();
  bool good = buf.TouchPagesAndCheck(3);
  double secs = Now() - t0;
  if (!good) return Fail("GMEM fault-back read wrong data", EIO);
  return secs;
}

// ---- dmirror side: a child with /dev/hmm_dmirror0 open ---------------------

struct DmirrorChild {
  int fd = -1;
  ~DmirrorChild() {
    if (fd >= 0) close(fd);
  }
  double Open() {
    fd = open("/dev/hmm_dmirror0", O_RDWR | O_CLOEXEC);
    if (fd < 0) return Fail("open /dev/hmm_dmirror0 (CONFIG_TEST_HMM?)", errno);
    return 0;
  }
  int Command(unsigned long cmd, const Buffer &buf, void *ptr) {
    hmm_dmirror_cmd c = {};
    c.addr = buf.addr();
    c.ptr = reinterpret_cast<uintptr_t>(ptr);
    c.npages = buf.size() / kPageSize;
    if (ioctl(fd, cmd, &c) < 0) return errno;
    return c.cpages == c.npages ? 0 : EAGAIN;  // every page must have moved
  }
};

// HMM_DMIRROR_MIGRATE_TO_DEV migrates and then has the device read the
// range back into ptr (test_hmm verifies migrations that way): migration
// plus a device read, the work GMEM's first-touch TGM_IOC_READ does.
double DmirrorFirstTouch(size_t n) {
  DmirrorChild d;
  if (d.Open() < 0) return -1;
  Buffer buf(n);
  std::vector<uint8_t> dst(n);
  if (!buf.ok()) return Fail("mmap", errno);
  buf.Populate(1);
  std::memset(dst.data(), 0, n);
  double t0 = Now();
  int err = d.Command(HMM_DMIRROR_MIGRATE_TO_DEV, buf, dst.data());
  double secs = Now() - t0;
  if (err) return Fail("HMM_DMIRROR_MIGRATE_TO_DEV", err);
  if (std::memcmp(dst.data(), buf.data(), n) != 0) return Fail("dmirror read wrong data", EIO);
  return secs;
}

// test_hmm has no migrate-only command: its migration always includes the
// read-back, so it is timed as it is (DmirrorFirstTouch) and the read-back
// alone is timed here, on a range already in device memory, to estimate
// the migration by difference.
// Fills @buf with Populate(@seed) and moves it into dmirror's memory
// (untimed); @dst takes the read-back. 0, or Fail()'s value.
double MakeDmirrorResident(DmirrorChild &d, Buffer &buf, std::vector<uint8_t> &dst,
                           uint64_t seed) {
  if (d.Open() < 0) return -1;
  if (!buf.ok()) return Fail("mmap", errno);
  buf.Populate(seed);
  int err = d.Command(HMM_DMIRROR_MIGRATE_TO_DEV, buf, dst.data());
  if (err) return Fail("HMM_DMIRROR_MIGRATE_TO_DEV", err);
  return 0;
}

double DmirrorDeviceRead(size_t n) {
  DmirrorChild d;
  Buffer buf(n);
  std::vector<uint8_t> dst(n);
  if (MakeDmirrorResident(d, buf, dst, 2) < 0) return -1;
  std::memset(dst.data(), 0, n);
  double t0 = Now();
  int err = d.Command(HMM_DMIRROR_READ, buf, dst.data());
  double secs = Now() - t0;
  if (err) return Fail("HMM_DMIRROR_READ", err);
  // dst is compared with what Populate() wrote, without touching buf,
  // which would fault it back.
  for (size_t off = 0; off < n; off += kPageSize)
    if (*reinterpret_cast<uint64_t *>(dst.data() + off) != (2 ^ off))
      return Fail("dmirror device read wrong data", EIO);
  return secs;
}

double DmirrorFaultBack(size_t n) {
  DmirrorChild d;
  Buffer buf(n);
  std::vector<uint8_t> dst(n);
  if (MakeDmirrorResident(d, buf, dst, 3) < 0) return -1;
  double t0 = Now();
  bool good = buf.TouchPagesAndCheck(3);
  double secs = Now() - t0;
  if (!good) return Fail("dmirror fault-back read wrong data", EIO);
  return secs;
}

// ---- baselines -------------------------------------------------------------

double Memcpy(size_t n) {
  Buffer src(n), dst(n);
  if (!src.ok() || !dst.ok()) return Fail("mmap", errno);
  src.Populate(4);
  dst.Populate(5);  // populated: the copy alone is timed, not dst's faults
  double t0 = Now();
  std::memcpy(dst.data(), src.data(), n);
  double secs = Now() - t0;
  if (std::memcmp(dst.data(), src.data(), n) != 0) return Fail("memcpy", EIO);
  return secs;
}

// Write faults on fresh anonymous memory, optionally in a process whose
// address space GMEM tracks (attached, with a device mapping elsewhere).
double CpuFaults(size_t n, bool attached) {
  GmemChild g;
  Buffer in_use(kBlock);
  if (attached) {
    if (g.Open() < 0) return -1;
    if (!in_use.ok()) return Fail("mmap", errno);
    int ret = g.dev.Fill(in_use.data(), kBlock, 1);
    if (ret) return Fail("TGM_IOC_FILL", -ret);
  }
  // Median of a few rounds inside the child: a fault costs microseconds,
  // one round is short enough for a timer tick to matter.
  std::vector<double> rounds;
  for (int round = 0; round < 5; round++) {
    Buffer fresh(n);
    if (!fresh.ok()) return Fail("mmap", errno);
    double t0 = Now();
    for (size_t off = 0; off < n; off += kPageSize) fresh.data()[off] = 1;
    rounds.push_back(Now() - t0);
  }
  std::sort(rounds.begin(), rounds.end());
  return rounds[rounds.size() / 2];
}

// ---- driver and report -----------------------------------------------------

struct Series {
  std::vector<double> secs;
  bool failed = false;
  void Add(double s) {
    if (s < 0) failed = true;
    else secs.push_back(s);
  }
  double Median() const {
    if (failed || secs.empty()) return -1;
    std::vector<double> v = secs;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  }
  // Spread of the rounds: (max - min) / median, to show the noise.
  double Spread() const {
    double m = Median();
    if (m <= 0) return 0;
    auto [lo, hi] = std::minmax_element(secs.begin(), secs.end());
    return (*hi - *lo) / m;
  }
};

// Throughput ratio a/b as the median of the per-round ratios: the two
// were measured back to back in each round, so load on the host that
// drifts between rounds cancels out of each ratio.
double PairedRatio(const Series &a, const Series &b) {
  if (a.failed || b.failed || a.secs.size() != b.secs.size() || a.secs.empty()) return -1;
  std::vector<double> ratios;
  for (size_t i = 0; i < a.secs.size(); i++)
    if (a.secs[i] > 0) ratios.push_back(b.secs[i] / a.secs[i]);
  std::sort(ratios.begin(), ratios.end());
  size_t m = ratios.size();
  return m % 2 ? ratios[m / 2] : (ratios[m / 2 - 1] + ratios[m / 2]) / 2;
}

// dmirror's migration alone, per round: migrate-and-read minus read.
Series Difference(const Series &total, const Series &part) {
  Series d;
  d.failed = total.failed || part.failed || total.secs.size() != part.secs.size();
  if (d.failed) return d;
  for (size_t i = 0; i < total.secs.size(); i++) d.secs.push_back(total.secs[i] - part.secs[i]);
  return d;
}

double MBps(size_t bytes, double secs) { return secs > 0 ? bytes / secs / 1e6 : 0; }

std::string Cell(size_t bytes, const Series &s) {
  char buf[40];
  if (s.Median() < 0) return "failed";
  std::snprintf(buf, sizeof(buf), "%7.0f ±%2.0f%%", MBps(bytes, s.Median()), 100 * s.Spread());
  return buf;
}

std::string Ratio(double ratio) {
  char buf[16];
  if (ratio <= 0) return "  n/a";
  std::snprintf(buf, sizeof(buf), "%5.2fx", ratio);
  return buf;
}

// ---- Oversubscription: the device streams over arrays larger than it -----

struct StreamResult {
  double secs = -1;
  uint64_t evicted = 0;
  uint64_t migrated = 0;
  uint64_t throttled = 0;
};

// `passes` device passes of x += pass over an array of `bytes`, 2 MiB at a
// time, on a device limited to `limit` bytes; timed from host memory.
StreamResult OversubStream(size_t bytes, size_t limit, int passes) {
  StreamResult r;
  GmemChild g;
  if (g.Open() < 0) return r;
  int ret = g.dev.SetLimit(limit);
  if (ret) return Fail("TGM_IOC_SET_LIMIT", -ret), r;
  Buffer buf(bytes);
  if (!buf.ok()) return Fail("mmap", errno), r;
  buf.Populate(7);
  std::vector<uint8_t> expected(buf.data(), buf.data() + bytes);
  gmem::AddToWords(expected.data(), bytes, static_cast<uint32_t>(passes * (passes + 1) / 2));
  tgm_counters c0 = {}, c1 = {};
  g.dev.Counters(&c0);
  double t0 = Now();
  for (int pass = 1; pass <= passes; pass++)
    for (size_t off = 0; off < bytes; off += kBlock)
      if ((ret = g.dev.Add(buf.data() + off, kBlock, pass)) != 0) return Fail("TGM_IOC_ADD", -ret), r;
  double secs = Now() - t0;
  g.dev.Counters(&c1);
  if (std::memcmp(buf.data(), expected.data(), bytes) != 0)
    return Fail("oversubscribed stream lost data", EIO), r;
  r.secs = secs;
  r.evicted = c1.evicted - c0.evicted;
  r.migrated = c1.migrated_to - c0.migrated_to;
  r.throttled = c1.thrash_throttled - c0.thrash_throttled;
  return r;
}

// Prints the oversubscription table; false if a measurement failed.
bool OversubTable(size_t limit_mib, int passes) {
  const long window = gmem::ReadTunable("thrash_window_ms");
  const long window_on = window > 0 ? window : 200;
  const size_t limit = limit_mib * kMiB;
  bool ok = true;
  std::printf("\noversubscription: the device adds to every word of an array, %d passes,\n"
              "  2 MiB at a time, its memory limited to %zu MiB; the array starts in host memory\n",
              passes, limit_mib);
  std::printf("  %-12s  %-14s  %9s  %6s  %13s  %14s  %s\n", "array", "thrash control", "MB/s",
              "vs 1x", "evicted pages", "migrated pages", "throttled blocks");
  for (long w : {0L, window_on}) {
    if (window < 0 || gmem::WriteTunable("thrash_window_ms", w) != 0) {
      std::printf("  cannot set /sys/kernel/mm/gmem/thrash_window_ms\n");
      return false;
    }
    double base = 0;
    for (size_t factor : {1, 2, 4, 8}) {
      const size_t bytes = factor * limit;
      StreamResult r = InChildValue<StreamResult>(
          [=] { return OversubStream(bytes, limit, passes); }, StreamResult{});
      char label[32], control[32];
      std::snprintf(label, sizeof(label), "%zux %3zu MiB", factor, bytes / kMiB);
      std::snprintf(control, sizeof(control), w ? "on (%ld ms)" : "off", w);
      if (r.secs <= 0) {
        std::printf("  %-12s  %-14s  failed\n", label, control);
        ok = false;
        continue;
      }
      double mbps = MBps(bytes * passes, r.secs);
      if (factor == 1) base = mbps;
      std::printf("  %-12s  %-14s  %9.0f  %5.2fx  %13llu  %14llu  %llu\n", label, control, mbps,
                  base > 0 ? mbps / base : 0, static_cast<unsigned long long>(r.evicted),
                  static_cast<unsigned long long>(r.migrated),
                  static_cast<unsigned long long>(r.throttled));
    }
  }
  gmem::WriteTunable("thrash_window_ms", window);
  // The children limited the device: give it all its memory back.
  gmem::Device dev(0);
  tgm_counters c = {};
  if (dev.ok() && dev.Counters(&c) == 0) dev.SetLimit(c.total);
  return ok;
}

struct Options {
  std::vector<size_t> sizes_mib = {2, 16, 64};
  int reps = 5;
  size_t fault_mib = 32;
  size_t oversub_mib = 8;
  int oversub_passes = 20;
  bool oversub_only = false;
};

bool ParseOptions(int argc, char **argv, Options *opt) {
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i];
    if (arg == "--sizes" && i + 1 < argc) {
      opt->sizes_mib.clear();
      std::string list = argv[++i];
      for (size_t pos = 0; pos < list.size();) {
        size_t comma = list.find(',', pos);
        if (comma == std::string::npos) comma = list.size();
        long v = std::strtol(list.substr(pos, comma - pos).c_str(), nullptr, 10);
        if (v <= 0 || v % 2) return false;  // whole GMEM blocks
        opt->sizes_mib.push_back(static_cast<size_t>(v));
        pos = comma + 1;
      }
    } else if (arg == "--reps" && i + 1 < argc) {
      opt->reps = std::atoi(argv[++i]);
      if (opt->reps < 1) return false;
    } else if (arg == "--fault-mib" && i + 1 < argc) {
      opt->fault_mib = std::strtoul(argv[++i], nullptr, 10);
      if (opt->fault_mib < 1) return false;
    } else if (arg == "--oversub-mib" && i + 1 < argc) {
      opt->oversub_mib = std::strtoul(argv[++i], nullptr, 10);
      if (opt->oversub_mib < 2 || opt->oversub_mib % 2) return false;
    } else if (arg == "--oversub-only") {
      opt->oversub_only = true;
    } else if (arg == "--oversub-passes" && i + 1 < argc) {
      opt->oversub_passes = std::atoi(argv[++i]);
      if (opt->oversub_passes < 1) return false;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char **argv) {
  Options opt;
  if (!ParseOptions(argc, argv, &opt)) {
    std::fprintf(stderr,
                 "usage: %s [--sizes MIB,MIB,...] [--reps N] [--fault-mib N]\n"
                 "          [--oversub-mib N] [--oversub-passes N] [--oversub-only]\n"
                 "  sizes are even MiB counts (default 2,16,64), N rounds per figure\n"
                 "  (default 5), --fault-mib is the CPU fault benchmark's size (32),\n"
                 "  --oversub-mib the device memory of the oversubscription runs (even,\n"
                 "  default 8) and --oversub-passes their passes (20); --oversub-only\n"
                 "  skips the comparison with dmirror and the CPU fault figures\n",
                 argv[0]);
    return 2;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  double start = Now();
  std::printf("gmem-bench: GMEM (test_gmem) vs HMM dmirror (test_hmm), medians of %d rounds "
              "after a warm-up round;\nMB/s (±spread = (max-min)/median); ratios are throughput ratios, the median\n"
              "of the per-round ratios (each round measures both sides back to back)\n", opt.reps);

  struct Row {
    size_t bytes;
    Series gmem_touch, dmirror_touch, gmem_back, dmirror_back, gmem_pf, dmirror_read, memcpy_;
  };
  std::vector<Row> rows;
  bool any_failed = false;
  if (opt.oversub_only) {
    any_failed = !OversubTable(opt.oversub_mib, opt.oversub_passes);
    std::printf("\ngmem-bench: %.0f s%s\n", Now() - start,
                any_failed ? ", some measurements FAILED (see the messages above)" : "");
    return any_failed ? 1 : 0;
  }
  for (size_t mib : opt.sizes_mib) {
    Row row{};
    row.bytes = mib * kMiB;
    std::printf("  measuring %zu MiB ...\n", mib);
    // Round 0 warms up: dmirror allocates its device memory on first use,
    // both drivers and the allocator fill their caches.
    for (int round = 0; round <= opt.reps; round++) {
      bool keep = round > 0;
      const size_t n = row.bytes;
      double v;
      v = InChild([n] { return GmemFirstTouch(n); });      if (keep) row.gmem_touch.Add(v);
      v = InChild([n] { return DmirrorFirstTouch(n); });   if (keep) row.dmirror_touch.Add(v);
      v = InChild([n] { return GmemFaultBack(n); });       if (keep) row.gmem_back.Add(v);
      v = InChild([n] { return DmirrorFaultBack(n); });    if (keep) row.dmirror_back.Add(v);
      v = InChild([n] { return GmemPrefetch(n); });        if (keep) row.gmem_pf.Add(v);
      v = InChild([n] { return DmirrorDeviceRead(n); });   if (keep) row.dmirror_read.Add(v);
      v = InChild([n] { return Memcpy(n); });              if (keep) row.memcpy_.Add(v);
    }
    rows.push_back(row);
  }

  std::printf("\nfirst touch: device reads a host-resident buffer (migrates it)\n");
  std::printf("  %6s  %13s  %13s  %s\n", "size", "GMEM MB/s", "dmirror MB/s", "GMEM/dmirror");
  for (const Row &r : rows) {
    std::printf("  %3zu MiB  %13s  %13s  %s\n", r.bytes / kMiB, Cell(r.bytes, r.gmem_touch).c_str(),
                Cell(r.bytes, r.dmirror_touch).c_str(),
                Ratio(PairedRatio(r.gmem_touch, r.dmirror_touch)).c_str());
    any_failed |= r.gmem_touch.failed || r.dmirror_touch.failed;
  }
  std::printf("\nCPU fault-back: CPU reads a device-resident buffer, one word per page\n");
  std::printf("  %6s  %13s  %13s  %s\n", "size", "GMEM MB/s", "dmirror MB/s", "GMEM/dmirror");
  for (const Row &r : rows) {
    std::printf("  %3zu MiB  %13s  %13s  %s\n", r.bytes / kMiB, Cell(r.bytes, r.gmem_back).c_str(),
                Cell(r.bytes, r.dmirror_back).c_str(),
                Ratio(PairedRatio(r.gmem_back, r.dmirror_back)).c_str());
    any_failed |= r.gmem_back.failed || r.dmirror_back.failed;
  }
  std::printf("\nprefetch: hmadvise(HMADV_PREFETCH) vs dmirror migration vs memcpy\n"
              "  (dmirror's migrate ioctl always reads the data back: its migration alone is\n"
              "  estimated as MIGRATE_TO_DEV time minus a HMM_DMIRROR_READ of the resident range)\n");
  std::printf("  %6s  %13s  %13s  %13s  %13s  %12s  %s\n", "size", "GMEM MB/s", "dmirror est.",
              "(its read)", "memcpy MB/s", "GMEM/dmirror", "GMEM/memcpy");
  for (const Row &r : rows) {
    Series dmirror_migrate = Difference(r.dmirror_touch, r.dmirror_read);
    std::string estimate = dmirror_migrate.Median() > 0 ? Cell(r.bytes, dmirror_migrate) : "n/a";
    std::printf("  %3zu MiB  %13s  %13s  %13s  %13s  %12s  %s\n", r.bytes / kMiB,
                Cell(r.bytes, r.gmem_pf).c_str(), estimate.c_str(),
                Cell(r.bytes, r.dmirror_read).c_str(), Cell(r.bytes, r.memcpy_).c_str(),
                Ratio(dmirror_migrate.Median() > 0 ? PairedRatio(r.gmem_pf, dmirror_migrate) : -1)
                    .c_str(),
                Ratio(PairedRatio(r.gmem_pf, r.memcpy_)).c_str());
    any_failed |= r.gmem_pf.failed || r.dmirror_read.failed || r.memcpy_.failed;
  }

  // Alternate plain and attached children so that drift hits both alike.
  const size_t fault_bytes = opt.fault_mib * kMiB;
  Series plain, attached;
  std::printf("\nCPU fault cost: write faults on fresh anonymous memory (%zu MiB, 4 KiB pages)\n",
              opt.fault_mib);
  InChild([fault_bytes] { return CpuFaults(fault_bytes, false); });  // warm-up
  for (int round = 0; round < 2 * opt.reps + 1; round++) {
    // Which child goes first alternates too: the second of a pair may find
    // the page allocator and caches warmed by the first.
    auto run_plain = [&] {
      plain.Add(InChild([fault_bytes] { return CpuFaults(fault_bytes, false); }));
    };
    auto run_attached = [&] {
      attached.Add(InChild([fault_bytes] { return CpuFaults(fault_bytes, true); }));
    };
    if (round % 2) {
      run_attached();
      run_plain();
    } else {
      run_plain();
      run_attached();
    }
  }
  const double pages = static_cast<double>(fault_bytes / kPageSize);
  if (plain.Median() > 0 && attached.Median() > 0) {
    std::printf("  plain process     %6.2f us/fault ±%2.0f%%\n", plain.Median() / pages * 1e6,
                100 * plain.Spread());
    std::printf("  attached to GMEM  %6.2f us/fault ±%2.0f%%\n", attached.Median() / pages * 1e6,
                100 * attached.Spread());
    // Cost ratio attached/plain: the time ratio, i.e. PairedRatio(plain, attached).
    std::printf("  attached/plain    %5.3fx (goal <= 1.05x)\n", PairedRatio(plain, attached));
  } else {
    std::printf("  failed\n");
    any_failed = true;
  }
  any_failed |= !OversubTable(opt.oversub_mib, opt.oversub_passes);
  std::printf("\ngmem-bench: %.0f s%s\n", Now() - start,
              any_failed ? ", some measurements FAILED (see the messages above)" : "");
  return any_failed ? 1 : 0;
}
