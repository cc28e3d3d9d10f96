#include "status.h"

#include <cerrno>
#include <cstring>

namespace gmem::thunk {

Status status_from_errno(int error_number, const std::string& what) {
  const char* name = strerrorname_np(error_number);
  std::string message = what + " failed: " + (name ? name : "errno " + std::to_string(error_number)) +
                        " (" + std::strerror(error_number) + ")";
  switch (error_number) {
    case EINVAL:
      return Status::failure(HSAKMT_STATUS_INVALID_PARAMETER, message);
    case ENODEV:
      return Status::failure(HSAKMT_STATUS_INVALID_NODE_UNIT, message);
    case ENOMEM:
      return Status::failure(HSAKMT_STATUS_NO_MEMORY, message);
    case EBUSY:
    case EAGAIN:
      return Status::failure(HSAKMT_STATUS_UNAVAILABLE, message);
    case ENOSYS:
      return Status::failure(HSAKMT_STATUS_KERNEL_COMMUNICATION_ERROR, message);
    default:
      // EFAULT, EPERM, EACCES and anything unexpected: no closer status
      // exists, the message keeps the errno.
      return Status::failure(HSAKMT_STATUS_ERROR, message);
  }
}

}  // namespace gmem::thunk
