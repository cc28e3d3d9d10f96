// The boundary between the thunk and the kernel. Every system call, ioctl
// and libhsakmt call the library makes goes through this interface, so the
// unit tests can put a recording double in its place and check the exact
// bytes the kernel would receive.
#pragma once

#include <cstddef>
#include <memory>

#include <hsakmttypes.h>

namespace gmem::thunk {

class KernelInterface {
 public:
  virtual ~KernelInterface() = default;

  // The raw hmadvise system call. Returns 0, or the errno value it failed with.
  virtual int hmadvise(int hnid, unsigned long start, std::size_t len,
                       int behavior) = 0;
  // madvise(2). Returns 0, or the errno value it failed with.
  virtual int madvise(void* start, std::size_t len, int advice) = 0;

  // libhsakmt entry points, with libhsakmt's own semantics.
  virtual HSAKMT_STATUS open_kfd() = 0;
  virtual HSAKMT_STATUS close_kfd() = 0;
  virtual HSAKMT_STATUS get_kfd_version(HsaVersionInfo* version) = 0;
  virtual HSAKMT_STATUS acquire_system_properties(
      HsaSystemProperties* properties) = 0;
  // `os_error` receives errno as left by the ioctl (0 if none): libhsakmt
  // folds every ioctl failure into HSAKMT_STATUS_ERROR, and the errno is the
  // only hint of what the kernel disliked.
  virtual HSAKMT_STATUS svm_set_attr(void* start, HSAuint64 size,
                                     unsigned int attribute_count,
                                     HSA_SVM_ATTRIBUTE* attributes,
                                     int* os_error) = 0;
  virtual HSAKMT_STATUS svm_get_attr(void* start, HSAuint64 size,
                                     unsigned int attribute_count,
                                     HSA_SVM_ATTRIBUTE* attributes,
                                     int* os_error) = 0;
};

// The real kernel: syscall(2), madvise(2) and libhsakmt.
std::unique_ptr<KernelInterface> make_system_kernel_interface();

}  // namespace gmem::thunk
