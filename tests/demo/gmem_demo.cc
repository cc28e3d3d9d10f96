// gmem-demo: plain malloc'd arrays computed on by the simulated GMEM device.
//
// The device (lib/test_gmem.c) reaches the process' memory only through
// GMEM: its first touch of a page faults through gm_dev_fault() and
// migrates the block into device memory; a CPU touch of a device-resident
// page migrates it back. hmadvise() moves ranges ahead of use. Every step
// prints what it did and how the device counters moved, and checks both
// the data and the counters; the exit status is 0 only if every check held.
//
// Part 2 shrinks the device memory (TGM_IOC_SET_LIMIT) below the working
// set so the device can only finish by evicting: the oversubscription case.
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "gmem_device.h"

namespace {

using gmem::kMiB;
using gmem::kPageSize;

struct Options {
  int device = 0;
  size_t array_bytes = 16 * kMiB;       // each array of part 1
  size_t oversub_limit = 4 * kMiB;      // device memory during part 2
  size_t oversub_factor = 8;            // part 2's array is this many limits
  int oversub_passes = 3;
};

void Usage(const char *prog) {
  std::printf(
      "usage: %s [--small] [--device N] [--array-mib N] [--limit-mib N]\n"
      "          [--factor N] [--passes N]\n"
      "  --small        quick self-check sizes (2 MiB arrays, 2 MiB limit)\n"
      "  --device N     /dev/test_gmemN (default 0)\n"
      "  --array-mib N  size of each array of part 1 (default 16)\n"
      "  --limit-mib N  device memory during part 2 (default 4)\n"
      "  --factor N     part 2's array is N times that memory (default 8)\n"
      "  --passes N     device passes over part 2's array (default 3)\n",
      prog);
}

bool ParseOptions(int argc, char **argv, Options *opt) {
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i];
    auto number = [&](long min) -> long {
      if (i + 1 >= argc) return -1;
      char *end = nullptr;
      long v = std::strtol(argv[++i], &end, 10);
      return (*end || v < min) ? -1 : v;
    };
    long v = 0;
    if (arg == "--small") {
      opt->array_bytes = 2 * kMiB;
      opt->oversub_limit = 2 * kMiB;
      opt->oversub_passes = 2;
    } else if (arg == "--device" && (v = number(0)) >= 0) {
      opt->device = static_cast<int>(v);
    } else if (arg == "--array-mib" && (v = number(1)) > 0) {
      opt->array_bytes = v * kMiB;
    } else if (arg == "--limit-mib" && (v = number(1)) > 0) {
      opt->oversub_limit = v * kMiB;
    } else if (arg == "--factor" && (v = number(2)) > 0) {
      opt->oversub_factor = v;
    } else if (arg == "--passes" && (v = number(1)) > 0) {
      opt->oversub_passes = static_cast<int>(v);
    } else {
      if (arg != "--help" && arg != "-h") std::fprintf(stderr, "bad argument: %s\n", arg.c_str());
      Usage(argv[0]);
      return false;
    }
  }
  return true;
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string Mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(bytes) / kMiB);
  return buf;
}

// What the report shows: the node's public counters (sysfs, what any tool
// would read) plus this process' device page-table view (counter ioctl).
struct Snapshot {
  uint64_t faults = 0, to_device = 0, to_host = 0, evicted = 0;
  uint64_t resident = 0, limit = 0, tlb_invl = 0;
  uint64_t mapped_device = 0, mapped_host = 0;
};

class Demo {
 public:
  explicit Demo(const Options &opt) : opt_(opt), dev_(opt.device) {}

  int Run();

 private:
  bool Setup();
  void PartFits();
  void ComputeOnFittingArrays(uint32_t *a, uint8_t *b, size_t n);
  void PartOversubscribed();

  Snapshot Take();
  void Begin(const char *fmt, ...) __attribute__((format(printf, 2, 3)));
  void End(const Snapshot &before, uint64_t bytes_moved = 0);
  void PrintNode(const char *title);
  bool Check(bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
  bool DeviceOk(int ret, const char *what);

  Options opt_;
  gmem::Device dev_;
  int hnid_ = -1;
  int step_ = 0;
  double step_start_ = 0;
  int checks_ = 0;
  int failures_ = 0;
};

Snapshot Demo::Take() {
  Snapshot s;
  auto node = [&](const char *file) -> uint64_t {
    std::string v = gmem::ReadNodeFile(hnid_, file);
    return v.empty() ? 0 : std::strtoull(v.c_str(), nullptr, 10);
  };
  s.faults = node("faults");
  s.to_device = node("migrations_to");
  s.to_host = node("migrations_from");
  s.evicted = node("evictions");
  s.resident = node("resident");
  s.limit = node("limit");
  s.tlb_invl = node("tlb_invalidations");
  tgm_counters c = {};
  if (dev_.Counters(&c) == 0) {
    s.mapped_device = c.mapped_device;
    s.mapped_host = c.mapped_host;
  }
  return s;
}

void Demo::Begin(const char *fmt, ...) {
  char what[200];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(what, sizeof(what), fmt, ap);
  va_end(ap);
  std::printf("\n[%2d] %s\n", ++step_, what);
  std::fflush(stdout);
  step_start_ = Now();
}

void Demo::End(const Snapshot &before, uint64_t bytes_moved) {
  double secs = Now() - step_start_;
  Snapshot after = Take();
  std::printf("     %.2f s", secs);
  if (bytes_moved && secs > 0)
    std::printf(" (%.0f MB/s)", static_cast<double>(bytes_moved) / secs / 1e6);
  std::printf(" | device faults %+" PRId64 ", pages to device %+" PRId64 ", to host %+" PRId64
              ", evicted %+" PRId64 "\n",
              static_cast<int64_t>(after.faults - before.faults),
              static_cast<int64_t>(after.to_device - before.to_device),
              static_cast<int64_t>(after.to_host - before.to_host),
              static_cast<int64_t>(after.evicted - before.evicted));
  std::printf("     resident %s of %s | our device PTEs: %" PRIu64 " to device memory, %" PRIu64
              " to host memory\n",
              Mib(after.resident).c_str(), Mib(after.limit).c_str(), after.mapped_device,
              after.mapped_host);
  std::fflush(stdout);
}

void Demo::PrintNode(const char *title) {
  std::printf("\n%s: /sys/kernel/mm/gmem/nodes/node%d/\n", title, hnid_);
  static const char *const kFiles[] = {"name",   "total",           "limit",      "free",
                                       "resident", "faults",        "migrations_to",
                                       "migrations_from", "evictions", "tlb_invalidations",
                                       "remote_mapped"};
  for (const char *file : kFiles)
    std::printf("     %-18s %s\n", file, gmem::ReadNodeFile(hnid_, file).c_str());
  std::fflush(stdout);
}

bool Demo::Check(bool ok, const char *fmt, ...) {
  char what[240];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(what, sizeof(what), fmt, ap);
  va_end(ap);
  checks_++;
  if (!ok) failures_++;
  std::printf("     %s %s\n", ok ? "ok  " : "FAIL", what);
  std::fflush(stdout);
  return ok;
}

bool Demo::DeviceOk(int ret, const char *what) {
  if (ret == 0) return true;
  checks_++;
  failures_++;
  std::printf("     FAIL %s: %s\n", what, std::strerror(-ret));
  std::fflush(stdout);
  return false;
}

bool Demo::Setup() {
  if (!dev_.ok()) {
    std::fprintf(stderr, "error: cannot open %s: %s (a kernel with CONFIG_TEST_GMEM=y?)\n",
                 dev_.path().c_str(), std::strerror(dev_.open_errno()));
    return false;
  }
  int ret = dev_.Attach();
  if (ret != 0) {
    std::fprintf(stderr, "error: attaching to %s: %s\n", dev_.path().c_str(), std::strerror(-ret));
    return false;
  }
  tgm_counters c = {};
  ret = dev_.Counters(&c);
  if (ret != 0) {
    std::fprintf(stderr, "error: reading the counters of %s: %s\n", dev_.path().c_str(),
                 std::strerror(-ret));
    return false;
  }
  hnid_ = static_cast<int>(c.hnid);
  if (gmem::ReadNodeFile(hnid_, "name").empty()) {
    std::fprintf(stderr, "error: no /sys/kernel/mm/gmem/nodes/node%d (a kernel with CONFIG_GMEM?)\n",
                 hnid_);
    return false;
  }
  if (2 * opt_.array_bytes > c.limit) {
    std::fprintf(stderr, "error: two %s arrays do not fit in the device's %s; use --array-mib\n",
                 Mib(opt_.array_bytes).c_str(), Mib(c.limit).c_str());
    return false;
  }
  std::printf("GMEM demo: process %d attached to %s, heterogeneous node %d, %s of device memory\n",
              getpid(), dev_.path().c_str(), hnid_, Mib(c.total).c_str());
  return true;
}

// The device and CPU steps of part 1 on arrays a and b of n bytes; returns
// early when a device call fails (already reported).
void Demo::ComputeOnFittingArrays(uint32_t *a, uint8_t *b, size_t n) {
  const size_t words = n / sizeof(uint32_t);
  const uint64_t pages = n / kPageSize;
  Snapshot s = Take();
  Begin("device: a[i] += 5 (TGM_IOC_ADD; first device touch migrates a)");
  uint64_t faults = 0;
  if (!DeviceOk(dev_.Add(a, n, 5, &faults), "device add")) return;
  End(s, n);
  {
    Snapshot t = Take();
    Check(faults > 0, "the device faulted on a (%" PRIu64 " faults through gm_dev_fault)", faults);
    Check(t.to_device - s.to_device >= pages, "a's %" PRIu64 " pages migrated to the device",
          pages);
  }

  s = Take();
  Begin("device: memset(b, 0x11) (TGM_IOC_FILL on memory the CPU never touched)");
  if (!DeviceOk(dev_.Fill(b, n, 0x11), "device fill")) return;
  End(s, n);

  s = Take();
  Begin("device: checksum of a (TGM_IOC_CHECKSUM), compared with the CPU's expectation");
  {
    // The expected bytes come from a separate host array, so a itself
    // stays on the device for this step.
    std::vector<uint32_t> expected(words);
    for (size_t i = 0; i < words; i++) expected[i] = static_cast<uint32_t>(i) + 5;
    uint64_t hash = 0;
    if (!DeviceOk(dev_.Checksum(a, n, &hash, &faults), "device checksum")) return;
    End(s, n);
    Snapshot t = Take();
    Check(hash == gmem::Fnv1a(expected.data(), n), "device checksum %016" PRIx64 " matches", hash);
    Check(t.to_device == s.to_device && t.to_host == s.to_host,
          "a stayed in device memory: no migration either way");
  }

  s = Take();
  Begin("CPU: check a[i] == i + 5 (CPU faults migrate a back to host memory)");
  {
    size_t bad = 0;
    for (size_t i = 0; i < words; i++) bad += a[i] != static_cast<uint32_t>(i) + 5;
    End(s, n);
    Snapshot t = Take();
    Check(bad == 0, "every word of a is right (%zu wrong)", bad);
    Check(t.to_host - s.to_host >= pages, "a's %" PRIu64 " pages came back to host memory", pages);
  }

  s = Take();
  Begin("hmadvise(node %d, a, HMADV_PREFETCH): move a to the device before it runs", hnid_);
  {
    long ret = gmem::HmadviseBuffer(hnid_, a, n, HMADV_PREFETCH);
    if (!DeviceOk(static_cast<int>(ret), "hmadvise prefetch")) return;
    End(s, n);
    Snapshot t = Take();
    Check(t.to_device - s.to_device >= pages, "a's %" PRIu64 " pages prefetched to the device",
          pages);
    Check(t.faults == s.faults, "prefetching took no device fault");
  }

  s = Take();
  Begin("device: a[i] += 1 on the prefetched array, then its checksum");
  {
    if (!DeviceOk(dev_.Add(a, n, 1, &faults), "device add")) return;
    uint64_t hash = 0;
    if (!DeviceOk(dev_.Checksum(a, n, &hash), "device checksum")) return;
    End(s, 2 * n);
    Snapshot t = Take();
    // a's own pages are all there; the one 2 MiB block a shares with its
    // neighbour b may bring b's part of it along (it moved back to host
    // memory with a in step 5): GMEM migrates whole blocks.
    uint64_t block_pages = 2 * kMiB / kPageSize;
    Check(t.to_device - s.to_device <= block_pages,
          "a was already there: %" PRIu64 " faults only to map it, %" PRIu64
          " pages moved (at most the block a shares with b)",
          faults, t.to_device - s.to_device);
    std::vector<uint32_t> expected(words);
    for (size_t i = 0; i < words; i++) expected[i] = static_cast<uint32_t>(i) + 6;
    Check(hash == gmem::Fnv1a(expected.data(), n), "device checksum %016" PRIx64 " matches", hash);
  }

  s = Take();
  Begin("hmadvise(node 0, b, HMADV_PREFETCH): move b back to host memory in one call");
  {
    long ret = gmem::HmadviseBuffer(0, b, n, HMADV_PREFETCH);
    if (!DeviceOk(static_cast<int>(ret), "hmadvise prefetch to host")) return;
    End(s, n);
    Snapshot t = Take();
    Check(t.to_host - s.to_host >= pages, "b's %" PRIu64 " pages moved to host memory", pages);
  }

  s = Take();
  Begin("CPU: check b[i] == 0x11");
  {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += b[i] != 0x11;
    End(s, n);
    Snapshot t = Take();
    Check(bad == 0, "every byte of b is right (%zu wrong)", bad);
    Check(t.to_host == s.to_host, "reading b migrated nothing: the prefetch had moved it");
  }
}

// Part 1: two malloc'd arrays that fit in device memory.
void Demo::PartFits() {
  const size_t n = opt_.array_bytes;
  const size_t words = n / sizeof(uint32_t);
  std::printf("\n=== Part 1: two malloc'd arrays of %s each, no special allocator ===\n"
              "GMEM migrates 2 MiB blocks: pages sharing a block with an array move with it.\n",
              Mib(n).c_str());

  Snapshot s = Take();
  Begin("CPU: a = malloc(%s), b = malloc(%s); a[i] = i", Mib(n).c_str(), Mib(n).c_str());
  uint32_t *a = static_cast<uint32_t *>(std::malloc(n));
  uint8_t *b = static_cast<uint8_t *>(std::malloc(n));
  if (!a || !b) {
    Check(false, "malloc of %s failed", Mib(n).c_str());
    std::free(a);
    std::free(b);
    return;
  }
  for (size_t i = 0; i < words; i++) a[i] = static_cast<uint32_t>(i);
  End(s);
  const uint64_t resident_at_start = s.resident;

  ComputeOnFittingArrays(a, b, n);

  s = Take();
  Begin("free(a), free(b) while a is in device memory");
  std::free(a);
  std::free(b);
  End(s);
  Check(Take().resident == resident_at_start, "the device memory they used is free again");
}

// Part 2: one array several times larger than the device memory.
void Demo::PartOversubscribed() {
  const size_t limit = opt_.oversub_limit;
  const size_t n = opt_.oversub_factor * limit;
  const size_t words = n / sizeof(uint32_t);
  const size_t chunk = std::min<size_t>(2 * kMiB, limit);
  std::printf("\n=== Part 2: oversubscription, a %s array on %s of device memory (%zux) ===\n",
              Mib(n).c_str(), Mib(limit).c_str(), opt_.oversub_factor);

  tgm_counters c = {};
  if (!DeviceOk(dev_.Counters(&c), "counter ioctl")) return;
  const uint64_t saved_limit = c.limit;

  Snapshot s = Take();
  Begin("device memory limit: %s -> %s (TGM_IOC_SET_LIMIT)", Mib(saved_limit).c_str(),
        Mib(limit).c_str());
  if (!DeviceOk(dev_.SetLimit(limit), "set limit")) return;
  End(s);

  uint32_t *x = static_cast<uint32_t *>(std::malloc(n));
  std::vector<uint32_t> expected(words);
  if (!x) {
    Check(false, "malloc of %s failed", Mib(n).c_str());
  } else {
    s = Take();
    Begin("CPU: x = malloc(%s); x[i] = i * 2654435761", Mib(n).c_str());
    for (size_t i = 0; i < words; i++) {
      x[i] = static_cast<uint32_t>(i * 2654435761u);
      expected[i] = x[i] + static_cast<uint32_t>(opt_.oversub_passes);
    }
    End(s);

    bool device_ok = true;
    uint64_t max_resident = 0;
    for (int pass = 1; pass <= opt_.oversub_passes && device_ok; pass++) {
      s = Take();
      Begin("device: x[i] += 1, pass %d/%d, streamed in %s pieces", pass, opt_.oversub_passes,
            Mib(chunk).c_str());
      for (size_t off = 0; off < n && device_ok; off += chunk) {
        device_ok = DeviceOk(dev_.Add(reinterpret_cast<uint8_t *>(x) + off, chunk, 1),
                             "device add");
        uint64_t resident = Take().resident;
        if (resident > max_resident) max_resident = resident;
      }
      if (device_ok) End(s, n);
    }
    if (device_ok) {
      Check(max_resident <= limit, "device memory in use never exceeded the limit (peak %s)",
            Mib(max_resident).c_str());
      s = Take();
      Begin("device: checksum of x, compared with the CPU's expectation");
      uint64_t hash = 0;
      if (DeviceOk(dev_.Checksum(x, n, &hash), "device checksum")) {
        End(s, n);
        Check(hash == gmem::Fnv1a(expected.data(), n), "device checksum %016" PRIx64 " matches",
              hash);
      }
      s = Take();
      Begin("CPU: check every word of x");
      size_t bad = 0;
      for (size_t i = 0; i < words; i++) bad += x[i] != expected[i];
      End(s, n);
      Check(bad == 0, "x is byte exact after %d passes through %zux oversubscribed memory "
            "(%zu words wrong)", opt_.oversub_passes, opt_.oversub_factor, bad);
    }
    std::free(x);
  }

  s = Take();
  Begin("device memory limit back to %s", Mib(saved_limit).c_str());
  if (DeviceOk(dev_.SetLimit(saved_limit), "set limit")) End(s);
  Snapshot t = Take();
  Check(t.evicted > 0, "the device evicted to make room (%" PRIu64 " pages since boot)", t.evicted);
}

int Demo::Run() {
  double start = Now();
  if (!Setup()) return 2;
  PrintNode("Device before");
  PartFits();
  PartOversubscribed();
  PrintNode("Device after");
  std::printf("\n%d checks, %d failed, %.1f s: %s\n", checks_, failures_, Now() - start,
              failures_ ? "FAILED" : "everything verified");
  return failures_ ? 1 : 0;
}

}  // namespace

int main(int argc, char **argv) {
  Options opt;
  if (!ParseOptions(argc, argv, &opt)) return 2;
  // Output goes to a pipe or serial port: line-buffer it so progress shows.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  Demo demo(opt);
  return demo.Run();
}
