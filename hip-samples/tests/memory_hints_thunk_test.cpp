// MemoryHints through the real thunk (its C API and backends), with the
// thunk tests' fake kernel, fake sysfs and fake HIP runtime underneath: what
// a sample's hint becomes at the kernel boundary of a GMEM kernel.
#include <gtest/gtest.h>

#include <dlfcn.h>

#include <cerrno>
#include <cstdlib>
#include <memory>

#include "fake_kernel.h"
#include "fake_runtimes/fake_hip_runtime.h"
#include "fake_sysfs.h"
#include "memory_hints.hpp"
#include "test_hooks.h"

namespace gmem_samples {
namespace {

namespace thunk = gmem::thunk;
using thunk::testing::FakeKernel;
using thunk::testing::ForwardingKernel;

thunk::testing::FakeHipRuntime* fake_hip() {
  static thunk::testing::FakeHipRuntime* runtime = [] {
    void* handle = dlopen(GMEM_FAKE_HIP_RUNTIME, RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) return static_cast<thunk::testing::FakeHipRuntime*>(nullptr);
    auto state = reinterpret_cast<thunk::testing::FakeHipRuntime* (*)()>(
        dlsym(handle, "fake_hip_runtime_state"));
    return state != nullptr ? state() : nullptr;
  }();
  return runtime;
}

// The thunk's standard GMEM machine: CPU node 0 (hnid 0), GPU nodes 1 and 2
// (hnids 2 and 3), which are HIP devices 0 and 1.
class MemoryHintsOnThunkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sysfs_.add_gmem_machine();
    thunk::testing::set_sysfs_root(sysfs_.root());
    thunk::testing::set_hsa_runtime("/nonexistent/libhsa-runtime64.so.1");
    thunk::testing::set_kernel_factory([this] {
      return std::unique_ptr<thunk::KernelInterface>(new ForwardingKernel(kernel_));
    });
    unsetenv("GMEM_THUNK_BACKEND");
    unsetenv("ROCR_VISIBLE_DEVICES");
    unsetenv("HIP_VISIBLE_DEVICES");
    unsetenv("CUDA_VISIBLE_DEVICES");
    kernel_.hmadvise_results = {EINVAL};  // the probe's answer on a GMEM kernel
  }
  void TearDown() override {
    thunk::testing::set_kernel_factory(nullptr);
    thunk::testing::set_sysfs_root("");
    thunk::testing::set_hsa_runtime("");
    thunk::testing::set_hip_runtime(std::nullopt);
  }
  // hmadvise calls after the probe.
  std::vector<thunk::testing::HmadviseRecord> hints() const {
    return {kernel_.hmadvise_calls.begin() + 1, kernel_.hmadvise_calls.end()};
  }

  thunk::testing::FakeSysfs sysfs_;
  FakeKernel kernel_;
  const unsigned long buffer_ = 0x7f0000400000;
  const void* at(unsigned long offset) const { return reinterpret_cast<const void*>(buffer_ + offset); }
};

TEST_F(MemoryHintsOnThunkTest, HintsOnHipDevicesReachHmadviseWithTheirGmemNodes) {
  {
    MemoryHints memory_hints(HintsMode::kOn);
    EXPECT_EQ(memory_hints.describe(), "on: hsakmt-gmem, syscall backend (GMEM kernel)");
    EXPECT_TRUE(memory_hints.prefetch(at(100), 4096, 1));
    EXPECT_TRUE(memory_hints.set_preferred_location(at(0), 4096, 0));
    EXPECT_TRUE(memory_hints.prefetch(at(0), 4096, kHostDevice));
  }
  const auto calls = hints();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0].hnid, 3);  // HIP device 1 = KFD node 2 = hnid 3
  EXPECT_EQ(calls[0].start, buffer_);
  EXPECT_EQ(calls[0].len, 8192u);  // widened to the two pages it touches
  EXPECT_EQ(calls[0].behavior, 26);  // MADV_PREFETCH
  EXPECT_EQ(calls[1].hnid, 2);
  EXPECT_EQ(calls[1].behavior, 0x1000);  // preferred location
  EXPECT_EQ(calls[2].hnid, 0);  // host memory: NUMA node 0
}

TEST_F(MemoryHintsOnThunkTest, APinOnAGmemKernelIsGivenAndReleasedAtTheEnd) {
  {
    MemoryHints memory_hints(HintsMode::kOn);
    EXPECT_TRUE(memory_hints.pin(at(0), 2u << 20, 0));
    EXPECT_TRUE(memory_hints.declined().empty());
  }
  const auto calls = hints();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].behavior, 0x1006);
  EXPECT_EQ(calls[1].behavior, 0x1007);
  EXPECT_EQ(calls[1].len, 2u << 20);
}

TEST_F(MemoryHintsOnThunkTest, AKernelRefusalIsThrownWithTheThunksMessage) {
  MemoryHints memory_hints(HintsMode::kOn);
  kernel_.hmadvise_default = ENOMEM;
  try {
    memory_hints.prefetch(at(0), 4096, 0);
    FAIL() << "no exception";
  } catch (const HintError& error) {
    EXPECT_EQ(error.status(), HSAKMT_STATUS_NO_MEMORY) << error.what();
    EXPECT_NE(std::string(error.what()).find("PREFETCH of 4096 bytes on GPU 0: "),
              std::string::npos)
        << error.what();
  }
}

TEST_F(MemoryHintsOnThunkTest, AStreamOrderedPrefetchRunsWhenTheStreamGetsThere) {
  thunk::testing::FakeHipRuntime* hip = fake_hip();
  ASSERT_NE(hip, nullptr) << "cannot load " << GMEM_FAKE_HIP_RUNTIME;
  hip->reset();
  thunk::testing::set_hip_runtime(GMEM_FAKE_HIP_RUNTIME);
  void* stream = reinterpret_cast<void*>(0xa000);
  MemoryHints memory_hints(HintsMode::kOn);
  EXPECT_TRUE(memory_hints.prefetch_async(at(0), 4096, 0, stream));
  EXPECT_TRUE(hints().empty());
  ASSERT_EQ(hip->run(stream), 1u);
  ASSERT_EQ(hints().size(), 1u);
  EXPECT_EQ(hints()[0].hnid, 2);
  memory_hints.check_async();
}

TEST_F(MemoryHintsOnThunkTest, HintsOffNeverOpensTheThunk) {
  MemoryHints memory_hints(HintsMode::kOff);
  EXPECT_FALSE(memory_hints.prefetch(at(0), 4096, 0));
  EXPECT_TRUE(kernel_.hmadvise_calls.empty());  // not even the probe
}

}  // namespace
}  // namespace gmem_samples
