// The driver's own SVM ranges on a machine without an AMD GPU: SET_ATTR
// needs the process's GPU VM, so it refuses every request after checking
// the attribute list. Pinned here so the GMEM backend's difference is a
// choice, not an accident.
#include <sys/mman.h>

#include "kfd_fixture.h"

namespace {

using kfdtest::AlignedBuffer;
using kfdtest::KfdTest;

const ::testing::Environment *const kBackend =
    ::testing::AddGlobalTestEnvironment(new kfdtest::SvmBackendEnvironment(false));

class KfdLegacySvm : public KfdTest {
 protected:
  void SetUp() override {
    // Kernels without the GMEM option have only this backend.
    int status = kfdtest::SvmBackendEnvironment::status();
    ASSERT_TRUE(status == 0 || status == -ENOENT) << "svm_gmem=0: " << strerror(-status);
    KfdTest::SetUp();
  }
};

TEST_F(KfdLegacySvm, SetAttrWithoutGpuIsEinval) {
  AlignedBuffer buffer(1 << 20);
  ASSERT_NE(buffer.ptr, nullptr);
  EXPECT_EQ(SetAttr(buffer.addr(), buffer.size,
                    {{KFD_IOCTL_SVM_ATTR_PREFERRED_LOC, KFD_IOCTL_SVM_LOCATION_SYSMEM},
                     {KFD_IOCTL_SVM_ATTR_SET_FLAGS, KFD_IOCTL_SVM_FLAG_GPU_RO}}),
            EINVAL);
  EXPECT_EQ(SetAttr(buffer.addr(), buffer.size, {}), EINVAL);
  // Nothing was registered.
  auto attrs = AllQueryableAttrs();
  ASSERT_EQ(GetAttr(buffer.addr(), buffer.size, &attrs), 0);
  ExpectDefaults(attrs);
}

TEST_F(KfdLegacySvm, SetAttrChecksNoRangeWithoutGpu) {
  // The GPU VM check comes before the range check: a hole is EINVAL too.
  size_t bytes = 1 << 20;
  void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  ASSERT_EQ(munmap(p, bytes), 0);
  EXPECT_EQ(SetAttr(reinterpret_cast<uint64_t>(p), bytes, {}), EINVAL);
}

}  // namespace
