// Small user-space view of the simulated GMEM device (/dev/test_gmemN,
// lib/test_gmem.c) and of hmadvise(), shared by the guest demo and the
// guest benchmark and the GMEM guest suite. Errors are returned as -errno so callers can print them.
#ifndef GMEM_TESTS_GMEM_GMEM_DEVICE_H
#define GMEM_TESTS_GMEM_GMEM_DEVICE_H

#include <fcntl.h>
#include <linux/gmem.h>
#include <linux/test_gmem.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace gmem {

// PROVISIONAL in linux/gmem.h: the number the series gives hmadvise().
constexpr long kHmadviseSyscall = 463;
constexpr size_t kPageSize = 4096;
constexpr size_t kMiB = size_t{1} << 20;

inline long Hmadvise(int hnid, uintptr_t start, size_t len, int behavior) {
  long ret = syscall(kHmadviseSyscall, hnid, start, len, behavior);
  return ret < 0 ? -errno : ret;
}

// hmadvise() wants page-aligned starts, malloc() gives 16-byte alignment:
// advise the whole pages the buffer lies in (they belong to the same
// mapping, so this never reaches outside the allocation's VMA).
inline long HmadviseBuffer(int hnid, const void *buf, size_t len, int behavior) {
  uintptr_t start = reinterpret_cast<uintptr_t>(buf) & ~(kPageSize - 1);
  uintptr_t end = (reinterpret_cast<uintptr_t>(buf) + len + kPageSize - 1) & ~(kPageSize - 1);
  return Hmadvise(hnid, start, end - start, behavior);
}

// 64-bit FNV-1a, the hash TGM_IOC_CHECKSUM computes on the device.
inline uint64_t Fnv1a(const void *data, size_t len) {
  const uint8_t *bytes = static_cast<const uint8_t *>(data);
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < len; i++) hash = (hash ^ bytes[i]) * 0x100000001b3ULL;
  return hash;
}

// What TGM_IOC_ADD does on the device, on CPU memory: adds `v` to every
// 32-bit word of [p, p + n), for reference copies.
inline void AddToWords(uint8_t *p, size_t n, uint32_t v) {
  for (size_t i = 0; i + 4 <= n; i += 4) {
    uint32_t w;
    std::memcpy(&w, p + i, 4);
    w += v;
    std::memcpy(p + i, &w, 4);
  }
}

// One open /dev/test_gmemN; the process attaches itself with Attach().
class Device {
 public:
  explicit Device(int index) : path_("/dev/test_gmem" + std::to_string(index)) {
    fd_ = open(path_.c_str(), O_RDWR | O_CLOEXEC);
    open_errno_ = fd_ < 0 ? errno : 0;
  }
  ~Device() {
    if (fd_ >= 0) close(fd_);
  }
  Device(const Device &) = delete;
  Device &operator=(const Device &) = delete;

  bool ok() const { return fd_ >= 0; }
  int open_errno() const { return open_errno_; }
  const std::string &path() const { return path_; }

  int Attach() { return Ioctl(TGM_IOC_ATTACH, nullptr); }
  int Detach() { return Ioctl(TGM_IOC_DETACH, nullptr); }

  // One device access; `faults` (if given) receives the device faults the
  // access took, `result` the checksum.
  int Access(unsigned long cmd, const void *addr, size_t len, void *ptr, uint64_t value,
             uint64_t *result = nullptr, uint64_t *faults = nullptr) {
    tgm_access acc = {};
    acc.addr = reinterpret_cast<uintptr_t>(addr);
    acc.len = len;
    acc.ptr = reinterpret_cast<uintptr_t>(ptr);
    acc.value = value;
    int ret = Ioctl(cmd, &acc);
    if (result) *result = acc.result;
    if (faults) *faults = acc.faults;
    return ret;
  }
  int Fill(void *addr, size_t len, uint8_t byte, uint64_t *faults = nullptr) {
    return Access(TGM_IOC_FILL, addr, len, nullptr, byte, nullptr, faults);
  }
  int Add(void *addr, size_t len, uint32_t addend, uint64_t *faults = nullptr) {
    return Access(TGM_IOC_ADD, addr, len, nullptr, addend, nullptr, faults);
  }
  int Checksum(const void *addr, size_t len, uint64_t *hash, uint64_t *faults = nullptr) {
    return Access(TGM_IOC_CHECKSUM, addr, len, nullptr, 0, hash, faults);
  }
  int Read(const void *addr, size_t len, void *dst, uint64_t *faults = nullptr) {
    return Access(TGM_IOC_READ, addr, len, dst, 0, nullptr, faults);
  }
  int Write(void *addr, size_t len, const void *src, uint64_t *faults = nullptr) {
    return Access(TGM_IOC_WRITE, addr, len, const_cast<void *>(src), 0, nullptr, faults);
  }
  int Counters(tgm_counters *out) { return Ioctl(TGM_IOC_COUNTERS, out); }
  int SetLimit(uint64_t bytes) { return Ioctl(TGM_IOC_SET_LIMIT, &bytes); }
  // A hint given through the driver (gm_as_advise()), as amdkfd would.
  int Advise(int hnid, uintptr_t addr, size_t len, int behavior) {
    tgm_advise a = {};
    a.addr = addr;
    a.len = len;
    a.hnid = hnid;
    a.behavior = behavior;
    return Ioctl(TGM_IOC_ADVISE, &a);
  }
  // The advised ranges of [addr, addr + len), as the driver sees them.
  // Changes this device's driver bits and test_gmem's word on a range.
  int RangeBits(uintptr_t addr, size_t len, uint32_t flags_mask, uint32_t flags, uint64_t word_mask,
                uint64_t word) {
    tgm_range_bits b = {};
    b.addr = addr;
    b.len = len;
    b.flags_mask = flags_mask;
    b.flags_value = flags;
    b.word_mask = word_mask;
    b.word_value = word;
    return Ioctl(TGM_IOC_RANGE_BITS, &b);
  }
  // What the last pmap_enter() of this context got.
  int LastMap(tgm_last_map *out) { return Ioctl(TGM_IOC_LAST_MAP, out); }

  // Keeps [addr, addr + len) mapped as a device that cannot fault would.
  int KeepMapped(uintptr_t addr, size_t len, bool on) {
    tgm_keep_mapped k = {};
    k.addr = addr;
    k.len = len;
    k.on = on;
    return Ioctl(TGM_IOC_KEEP_MAPPED, &k);
  }

  // Maps [addr, addr + len) without device faults (gm_as_map_range()).
  int MapRange(uintptr_t addr, size_t len, bool write, uint32_t flags = 0) {
    tgm_map_range m = {};
    m.addr = addr;
    m.len = len;
    m.write = write;
    m.flags = flags;
    return Ioctl(TGM_IOC_MAP_RANGE, &m);
  }
  int Ranges(uintptr_t addr, size_t len, std::vector<tgm_range> *out, uint32_t max = 64) {
    out->assign(max, tgm_range{});
    tgm_ranges q = {};
    q.addr = addr;
    q.len = len;
    q.ptr = reinterpret_cast<uintptr_t>(out->data());
    q.max = max;
    int ret = Ioctl(TGM_IOC_RANGES, &q);
    out->resize(ret ? 0 : std::min<uint32_t>(q.count, max));
    return ret;
  }
  // Evict what is in use in [offset, offset + size) of device memory.
  int EvictRange(uint64_t offset, uint64_t size, uint64_t *evicted) {
    tgm_evict_range r = {};
    r.offset = offset;
    r.size = size;
    int ret = Ioctl(TGM_IOC_EVICT_RANGE, &r);
    if (evicted) *evicted = ret ? 0 : r.evicted;
    return ret;
  }
  // The device's hazards (TGM_HAZARD_*): it behaves like a GPU, not an
  // ideal device. Per device, for every process using it.
  int SetHazards(const tgm_hazards &h) {
    tgm_hazards copy = h;
    return Ioctl(TGM_IOC_SET_HAZARDS, &copy);
  }
  int GetHazards(tgm_hazards *out) { return Ioctl(TGM_IOC_GET_HAZARDS, out); }
  // Hot-unplug the device as its driver's remove would, and plug it in
  // again (a new GMEM device). Any open file of the device can do both,
  // with CAP_SYS_ADMIN.
  int Unplug() { return Ioctl(TGM_IOC_UNPLUG, nullptr); }
  int Plug() { return Ioctl(TGM_IOC_PLUG, nullptr); }
  // Driver-requested eviction: `freed` receives the bytes GMEM evicted.
  int Evict(uint64_t bytes, uint64_t *freed) {
    int ret = Ioctl(TGM_IOC_EVICT, &bytes);
    if (freed) *freed = ret ? 0 : bytes;
    return ret;
  }

 private:
  int Ioctl(unsigned long cmd, void *arg) { return ioctl(fd_, cmd, arg) < 0 ? -errno : 0; }

  std::string path_;
  int fd_ = -1;
  int open_errno_ = 0;
};

// One value of /sys/kernel/mm/gmem/nodes/node<hnid>/<file>; empty if absent.
inline std::string ReadNodeFile(int hnid, const std::string &file) {
  std::ifstream in("/sys/kernel/mm/gmem/nodes/node" + std::to_string(hnid) + "/" + file);
  std::string value;
  std::getline(in, value);
  return value;
}

// A GMEM tunable in /sys/kernel/mm/gmem/ (thrash control), or -1 if absent.
inline long ReadTunable(const std::string &name) {
  std::ifstream in("/sys/kernel/mm/gmem/" + name);
  long value = -1;
  in >> value;
  return in ? value : -1;
}

// Writes a tunable; -errno of the write (EINVAL for a refused value).
inline int WriteTunable(const std::string &name, long value) {
  int fd = open(("/sys/kernel/mm/gmem/" + name).c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  std::string text = std::to_string(value) + "\n";
  ssize_t n = write(fd, text.data(), text.size());
  int ret = n < 0 ? -errno : 0;
  close(fd);
  return ret;
}

}  // namespace gmem

#endif  // GMEM_TESTS_GMEM_GMEM_DEVICE_H
