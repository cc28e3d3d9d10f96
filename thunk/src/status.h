// Result of an internal operation: an HSAKMT_STATUS plus the sentence the
// C API hands out through hsaKmtGmemLastErrorMessage().
#pragma once

#include <string>
#include <utility>

#include <hsakmttypes.h>

namespace gmem::thunk {

struct Status {
  HSAKMT_STATUS code = HSAKMT_STATUS_SUCCESS;
  std::string message;

  bool ok() const { return code == HSAKMT_STATUS_SUCCESS; }

  static Status success() { return {}; }
  static Status failure(HSAKMT_STATUS code, std::string message) {
    return {code, std::move(message)};
  }
};

// Status for a failed kernel call that reported errno `error_number`.
// `what` names the call ("hmadvise(...)") for the message.
Status status_from_errno(int error_number, const std::string& what);

// "HSAKMT_STATUS_INVALID_NODE_UNIT"; "HSAKMT_STATUS <n>" for a value
// libhsakmt does not name.
std::string status_name(HSAKMT_STATUS status);

}  // namespace gmem::thunk
