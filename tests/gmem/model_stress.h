// A multi-threaded stress of both devices against a reference model of the
// memory: threads share the address space, the devices, the mmap lock, the
// notifier and the attribute tree, each on its own 2 MiB block, and every
// read is checked byte for byte against what the model says it holds.
#ifndef GMEM_TESTS_GMEM_MODEL_STRESS_H
#define GMEM_TESTS_GMEM_MODEL_STRESS_H

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gmem_fixture.h"

namespace gmem_test {

struct StressOptions {
  int threads = 4;
  int iterations = 600;
  // Each thread stops after this long even if iterations are left.
  std::chrono::seconds time_limit{300};
  // Device operations stay inside one page, so that one that fails has not
  // been applied to any byte (the device accesses memory page by page).
  bool single_page = false;
  // Every device operation and hint runs with this thread a target of the
  // fault injection (/proc/thread-self/make-it-fail); CPU accesses do not.
  bool inject = false;
  // Optional: each thread stops once this says no, after min_iterations.
  std::function<bool()> keep_going;
  int min_iterations = 0;
};

struct StressResult {
  std::vector<std::string> failures;
  long operations = 0;
  // Device operations and hints that failed with an error fault injection
  // may cause (ENOMEM, EBUSY, EAGAIN, EINTR, EFAULT); only with `inject`.
  long clean_errors = 0;
};

namespace stress_detail {

// EFAULT too: a CPU fault that hmm_range_fault() makes on GMEM's behalf and
// that fails for lack of memory (VM_FAULT_OOM) is reported as EFAULT, as
// any failed fault is; the stress only touches memory that is mapped.
inline bool InjectedError(int err) {
  return err == ENOMEM || err == EBUSY || err == EAGAIN || err == EINTR || err == EFAULT;
}

// Opened once per thread: with failslab on, an open would fail.
class Target {
 public:
  explicit Target(bool on) {
    if (on) fd_ = open("/proc/thread-self/make-it-fail", O_WRONLY | O_CLOEXEC);
  }
  ~Target() {
    if (fd_ >= 0) close(fd_);
  }
  bool ok(bool wanted) const { return !wanted || fd_ >= 0; }
  void Set(bool on) {
    if (fd_ >= 0 && write(fd_, on ? "1" : "0", 1) != 1) failed_ = true;
  }
  bool failed() const { return failed_; }

 private:
  int fd_ = -1;
  bool failed_ = false;
};

}  // namespace stress_detail

inline StressResult RunModelStress(Device &d0, Device &d1, const StressOptions &opt) {
  constexpr size_t slice = 2 << 20;  // one migration block per thread
  StressResult result;
  Mapping mapping((opt.threads + 1) * slice);
  if (!mapping.get()) {
    result.failures.push_back("mmap failed");
    return result;
  }
  uint8_t *blocks = reinterpret_cast<uint8_t *>((mapping.addr() + slice - 1) & ~(slice - 1));
  memset(blocks, 0, opt.threads * slice);
  Device *devs[2] = {&d0, &d1};
  std::atomic<int> failures{0};
  std::atomic<long> operations{0}, clean_errors{0};
  std::mutex report_lock;
  const auto deadline = std::chrono::steady_clock::now() + opt.time_limit;
  std::vector<std::thread> workers;
  for (int t = 0; t < opt.threads; t++) {
    workers.emplace_back([&, t] {
      uint8_t *base = blocks + t * slice;
      std::vector<uint8_t> model(slice, 0);
      std::mt19937 rng(1234 + t);
      stress_detail::Target target(opt.inject);
      // Every failure says which operation, where and why.
      auto fail = [&](const char *op, size_t off, size_t len, int err) {
        failures++;
        std::lock_guard<std::mutex> guard(report_lock);
        result.failures.push_back("thread " + std::to_string(t) + ": " + op + " at +" + std::to_string(off) +
                                  " len " + std::to_string(len) +
                                  (err ? std::string(": ") + strerror(err) : std::string(": data mismatch")));
      };
      if (!target.ok(opt.inject)) {
        fail("open /proc/thread-self/make-it-fail", 0, 0, errno);
        return;
      }
      // Runs a device operation or hint (returning 0 or -errno) as a target
      // of the fault injection; true if it took effect.
      auto device_op = [&](const char *op, size_t off, size_t len, auto &&run) {
        target.Set(true);
        int err = -run();
        target.Set(false);
        if (!err) return true;
        if (opt.inject && stress_detail::InjectedError(err)) {
          clean_errors++;
          return false;
        }
        fail(op, off, len, err);
        return false;
      };
      auto more = [&](int it) {
        return it < opt.iterations && !failures && std::chrono::steady_clock::now() < deadline &&
               (it < opt.min_iterations || !opt.keep_going || opt.keep_going());
      };
      for (int it = 0; more(it); it++) {
        operations++;
        size_t off = (rng() % (slice / 4)) * 4;
        size_t len = std::min<size_t>(slice - off, 4 * (1 + rng() % 4096));
        if (opt.single_page) len = std::min(len, kPage - off % kPage);
        Device &d = *devs[rng() % 2];
        switch (rng() % 7) {
          case 0: {
            uint8_t v = rng();
            memset(base + off, v, len);
            memset(model.data() + off, v, len);
            break;
          }
          case 1: {
            uint8_t v = rng();
            if (device_op("device fill", off, len, [&] { return d.Fill(base + off, len, v); }))
              memset(model.data() + off, v, len);
            break;
          }
          case 2: {
            uint32_t v = rng();
            if (device_op("device add", off, len, [&] { return d.Add(base + off, len, v); }))
              gmem::AddToWords(model.data() + off, len, v);
            break;
          }
          case 3: {
            uint64_t sum = 0;
            if (device_op("device checksum", off, len, [&] {
                  int err = 0;
                  sum = d.Checksum(base + off, len, &err);
                  return err;
                }) &&
                sum != Fnv(model.data() + off, len))
              fail("device checksum", off, len, 0);
            break;
          }
          case 4:
            if (memcmp(base + off, model.data() + off, len)) fail("cpu compare", off, len, 0);
            break;
          case 5: {
            int hnid = rng() % 3 == 0 ? 0 : d.hnid();
            uintptr_t s = reinterpret_cast<uintptr_t>(base) + (off & ~(kPage - 1));
            device_op("hmadvise prefetch", off, kPage, [&] { return static_cast<int>(Hmadvise(hnid, s, kPage, HMADV_PREFETCH)); });
            break;
          }
          default: {
            std::vector<uint8_t> out(len);
            if (device_op("device read", off, len, [&] { return d.Read(base + off, len, out.data()); }) &&
                memcmp(out.data(), model.data() + off, len))
              fail("device read", off, len, 0);
            break;
          }
        }
      }
      if (target.failed()) fail("write /proc/thread-self/make-it-fail", 0, 0, EIO);
      if (memcmp(base, model.data(), slice)) fail("final cpu compare", 0, slice, 0);
    });
  }
  for (auto &w : workers) w.join();
  result.operations = operations;
  result.clean_errors = clean_errors;
  return result;
}

}  // namespace gmem_test

#endif  // GMEM_TESTS_GMEM_MODEL_STRESS_H
