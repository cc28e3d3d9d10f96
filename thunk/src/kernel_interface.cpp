#include "kernel_interface.h"

#include <cerrno>

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#if GMEM_THUNK_HAVE_LIBHSAKMT
#include <hsakmt.h>
#endif

#include "gmem/hmadvise_abi.h"

namespace gmem::thunk {
namespace {

class SystemKernelInterface final : public KernelInterface {
 public:
  int hmadvise(int hnid, unsigned long start, std::size_t len,
               int behavior) override {
    // Arguments five and six are passed as zero so the call is
    // deterministic whatever the registers held.
#ifdef HSA_GMEM_NR_HMADVISE
    long result = syscall(HSA_GMEM_NR_HMADVISE, hnid, start, len, behavior, 0L, 0L);
    return result == 0 ? 0 : errno;
#else
    (void)hnid, (void)start, (void)len, (void)behavior;
    return ENOSYS;
#endif
  }

  int madvise(void* start, std::size_t len, int advice) override {
    return ::madvise(start, len, advice) == 0 ? 0 : errno;
  }

#if GMEM_THUNK_HAVE_LIBHSAKMT
  HSAKMT_STATUS open_kfd() override { return hsaKmtOpenKFD(); }
  HSAKMT_STATUS close_kfd() override { return hsaKmtCloseKFD(); }

  HSAKMT_STATUS get_kfd_version(HsaVersionInfo* version) override {
    return hsaKmtGetVersion(version);
  }

  HSAKMT_STATUS acquire_system_properties(
      HsaSystemProperties* properties) override {
    return hsaKmtAcquireSystemProperties(properties);
  }

  HSAKMT_STATUS svm_set_attr(void* start, HSAuint64 size,
                             unsigned int attribute_count,
                             HSA_SVM_ATTRIBUTE* attributes,
                             int* os_error) override {
    errno = 0;
    HSAKMT_STATUS status =
        hsaKmtSVMSetAttr(start, size, attribute_count, attributes);
    *os_error = status == HSAKMT_STATUS_SUCCESS ? 0 : errno;
    return status;
  }

  HSAKMT_STATUS svm_get_attr(void* start, HSAuint64 size,
                             unsigned int attribute_count,
                             HSA_SVM_ATTRIBUTE* attributes,
                             int* os_error) override {
    errno = 0;
    HSAKMT_STATUS status =
        hsaKmtSVMGetAttr(start, size, attribute_count, attributes);
    *os_error = status == HSAKMT_STATUS_SUCCESS ? 0 : errno;
    return status;
  }
#else
  // Built without a public libhsakmt (ROCm 6.3 and later): the kfd backend
  // is absent and its open fails, so selection moves on or explains.
  HSAKMT_STATUS open_kfd() override { return HSAKMT_STATUS_NOT_SUPPORTED; }
  HSAKMT_STATUS close_kfd() override { return HSAKMT_STATUS_NOT_SUPPORTED; }
  HSAKMT_STATUS get_kfd_version(HsaVersionInfo*) override {
    return HSAKMT_STATUS_NOT_SUPPORTED;
  }
  HSAKMT_STATUS acquire_system_properties(HsaSystemProperties*) override {
    return HSAKMT_STATUS_NOT_SUPPORTED;
  }
  HSAKMT_STATUS svm_set_attr(void*, HSAuint64, unsigned int, HSA_SVM_ATTRIBUTE*,
                             int* os_error) override {
    *os_error = 0;
    return HSAKMT_STATUS_NOT_SUPPORTED;
  }
  HSAKMT_STATUS svm_get_attr(void*, HSAuint64, unsigned int, HSA_SVM_ATTRIBUTE*,
                             int* os_error) override {
    *os_error = 0;
    return HSAKMT_STATUS_NOT_SUPPORTED;
  }
#endif
};

}  // namespace

std::unique_ptr<KernelInterface> make_system_kernel_interface() {
  return std::make_unique<SystemKernelInterface>();
}

}  // namespace gmem::thunk
