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

std::string status_name(HSAKMT_STATUS status) {
  switch (status) {
    case HSAKMT_STATUS_SUCCESS: return "HSAKMT_STATUS_SUCCESS";
    case HSAKMT_STATUS_ERROR: return "HSAKMT_STATUS_ERROR";
    case HSAKMT_STATUS_DRIVER_MISMATCH: return "HSAKMT_STATUS_DRIVER_MISMATCH";
    case HSAKMT_STATUS_INVALID_PARAMETER: return "HSAKMT_STATUS_INVALID_PARAMETER";
    case HSAKMT_STATUS_INVALID_HANDLE: return "HSAKMT_STATUS_INVALID_HANDLE";
    case HSAKMT_STATUS_INVALID_NODE_UNIT: return "HSAKMT_STATUS_INVALID_NODE_UNIT";
    case HSAKMT_STATUS_NO_MEMORY: return "HSAKMT_STATUS_NO_MEMORY";
    case HSAKMT_STATUS_BUFFER_TOO_SMALL: return "HSAKMT_STATUS_BUFFER_TOO_SMALL";
    case HSAKMT_STATUS_NOT_IMPLEMENTED: return "HSAKMT_STATUS_NOT_IMPLEMENTED";
    case HSAKMT_STATUS_NOT_SUPPORTED: return "HSAKMT_STATUS_NOT_SUPPORTED";
    case HSAKMT_STATUS_UNAVAILABLE: return "HSAKMT_STATUS_UNAVAILABLE";
    case HSAKMT_STATUS_OUT_OF_RESOURCES: return "HSAKMT_STATUS_OUT_OF_RESOURCES";
    case HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED:
      return "HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED";
    case HSAKMT_STATUS_KERNEL_COMMUNICATION_ERROR:
      return "HSAKMT_STATUS_KERNEL_COMMUNICATION_ERROR";
    case HSAKMT_STATUS_KERNEL_ALREADY_OPENED: return "HSAKMT_STATUS_KERNEL_ALREADY_OPENED";
    case HSAKMT_STATUS_MEMORY_ALIGNMENT: return "HSAKMT_STATUS_MEMORY_ALIGNMENT";
    default: return "HSAKMT_STATUS " + std::to_string(static_cast<int>(status));
  }
}

}  // namespace gmem::thunk
